//! `tributary leases ...` and `tributary estimate`: inspect and operate on a change feed
//! processor's leases from outside its hosts.
//!
//! A processor's leases are found as its hosts find them: by the processor's name and the
//! monitored container (whose resource ids are part of the lease ids), in the lease
//! container. Writes go through [`LeaseStore::reset`] and [`LeaseStore::release_all`]:
//! each is conditional on the lease's `_etag`, and a lease that changed in between is read
//! again and the change applied again, a bounded number of times. A write changes the etag
//! and clears the owner, so a host working on the lease fails its next checkpoint or renewal
//! and stops working on it: writes here fence running hosts.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::Value;
use tributary_processor::lease::start_property;
use tributary_processor::{
    ChangeFeedEstimator, FAILURES_PROPERTY, LAST_ERROR_PROPERTY, LeaseEstimate, LeaseStore,
    StartFrom,
};

use crate::source::{Source, SourceArgs};
use crate::start_from::{parse_start_from, parse_time_ms};

/// Longest last error shown in a table (`--json` has all of it).
const MAX_TABLE_ERROR_CHARS: usize = 60;

/// Which processor's leases, where.
#[derive(clap::Args, Debug)]
pub struct ProcessorArgs {
    /// The processor's name (as its hosts give it).
    #[arg(long)]
    processor: String,
    /// Database of the monitored container.
    #[arg(long)]
    database: String,
    /// The monitored container.
    #[arg(long)]
    container: String,
    /// Database of the lease container (default: --database).
    #[arg(long)]
    lease_database: Option<String>,
    /// The lease container.
    #[arg(long, default_value = "leases")]
    lease_container: String,
    #[command(flatten)]
    source: SourceArgs,
}

/// Arguments of `tributary leases`.
#[derive(clap::Args, Debug)]
pub struct LeasesArgs {
    #[command(subcommand)]
    command: LeasesCommand,
}

#[derive(clap::Subcommand, Debug)]
enum LeasesCommand {
    /// List a processor's leases: token, owner, continuation, last write, and whether its
    /// batches keep failing (stuck).
    List {
        #[command(flatten)]
        processor: ProcessorArgs,
        /// Print the leases as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Move every lease of a processor back to a start position: the continuation and owner
    /// are cleared and the lease starts from the given position when a host takes it.
    ///
    /// Running hosts notice at their next checkpoint or renewal and stop working on reset
    /// leases (the write changes the lease's etag and clears its owner, which fences them);
    /// then they take them again, from the new position. A batch in a handler at that moment
    /// is delivered again.
    Reset {
        #[command(flatten)]
        processor: ProcessorArgs,
        #[command(flatten)]
        to: ResetTo,
    },
    /// Free every lease of a processor (clear its owner), so hosts take them at their next
    /// balancing round instead of waiting for them to expire, e.g. after a host died.
    ///
    /// A running owner notices at its next checkpoint or renewal and stops working on the
    /// lease; its position is kept.
    Release {
        #[command(flatten)]
        processor: ProcessorArgs,
    },
    /// Print every document of a processor (leases and bookkeeping) as a JSON array on
    /// stdout: a backup, or a way to move the processor to another lease container.
    Export {
        #[command(flatten)]
        processor: ProcessorArgs,
    },
    /// Write an export back (creating the lease container if missing): each document is
    /// created, or replaces the one with its id. Stop the processor's hosts first.
    Import {
        #[command(flatten)]
        processor: ProcessorArgs,
        /// The export (`-` for stdin).
        file: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
struct ResetTo {
    /// Start from the first change still in the feed.
    #[arg(long)]
    to_beginning: bool,
    /// Start from the first change after a host takes the lease.
    #[arg(long)]
    to_now: bool,
    /// Start from changes made at or after this time (RFC 3339 such as 2026-12-01T10:00:00Z,
    /// or milliseconds since the Unix epoch).
    #[arg(long, value_parser = parse_time_ms, value_name = "TIME")]
    to_time: Option<u64>,
}

impl ResetTo {
    /// Where the reset leases start.
    fn start_from(&self) -> StartFrom {
        match (self.to_beginning, self.to_now, self.to_time) {
            (_, _, Some(ms)) => StartFrom::Time(UNIX_EPOCH + Duration::from_millis(ms)),
            (_, true, _) => StartFrom::Now,
            _ => StartFrom::Beginning,
        }
    }
}

/// Arguments of `tributary estimate`.
#[derive(clap::Args, Debug)]
pub struct EstimateArgs {
    #[command(flatten)]
    processor: ProcessorArgs,
    /// Where the processor starts leases it never checkpointed (as its hosts are
    /// configured): `beginning`, `now` or a time.
    #[arg(long, value_parser = parse_start_from, default_value = "now")]
    start_from: StartFrom,
    /// Print the estimates as a JSON array.
    #[arg(long)]
    json: bool,
}

/// Runs `tributary leases ...`.
///
/// # Errors
/// The source cannot be opened, the monitored or lease container does not exist, a lease
/// kept changing, or the file or stdout failed.
pub async fn run_leases(args: LeasesArgs) -> anyhow::Result<()> {
    let (processor, create) = match &args.command {
        LeasesCommand::Import { processor, .. } => (processor, true),
        LeasesCommand::List { processor, .. }
        | LeasesCommand::Reset { processor, .. }
        | LeasesCommand::Release { processor }
        | LeasesCommand::Export { processor } => (processor, false),
    };
    let source = Source::open(&processor.source)?;
    let result = async {
        let estimator = estimator(&source, processor, StartFrom::Now, create).await?;
        let leases = estimator.leases();
        match &args.command {
            LeasesCommand::List { json, .. } => list(leases, &processor.processor, *json).await,
            LeasesCommand::Reset { to, .. } => {
                let start = to.start_from();
                let n_reset = leases.reset(start).await?;
                println!(
                    "reset {n_reset} leases to start from {}",
                    start_property(start)
                );
                Ok(())
            }
            LeasesCommand::Release { .. } => {
                let n_released = leases.release_all().await?;
                println!("released {n_released} leases");
                Ok(())
            }
            LeasesCommand::Export { .. } => {
                let export = leases.export().await?;
                println!("{}", serde_json::to_string_pretty(&export)?);
                Ok(())
            }
            LeasesCommand::Import { file, .. } => {
                let export = read_export(file)?;
                let n_documents = leases.import(&export).await?;
                println!("imported {n_documents} documents");
                Ok(())
            }
        }
    }
    .await;
    source.close();
    result
}

/// Runs `tributary estimate`.
///
/// # Errors
/// The source cannot be opened, the monitored or lease container does not exist, or
/// reading the feed failed.
pub async fn run_estimate(args: EstimateArgs) -> anyhow::Result<()> {
    let source = Source::open(&args.processor.source)?;
    let result = async {
        let estimator = estimator(&source, &args.processor, args.start_from, false).await?;
        let estimates = estimator.estimate().await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&estimates)?);
        } else if estimates.is_empty() {
            eprintln!("processor '{}' has no leases", args.processor.processor);
        } else {
            print!("{}", estimate_table(&estimates));
        }
        Ok(())
    }
    .await;
    source.close();
    result
}

async fn estimator(
    source: &Source,
    args: &ProcessorArgs,
    start_from: StartFrom,
    create: bool,
) -> anyhow::Result<ChangeFeedEstimator> {
    source
        .check_container(&args.database, &args.container)
        .await?;
    let lease_database = args.lease_database.as_deref().unwrap_or(&args.database);
    let leases = source
        .lease_container(lease_database, &args.lease_container, create)
        .await?;
    // As `tributary serve`: pending changes are counted exactly, by reading (the estimator
    // never waits, so the long-poll header is never sent). A remote feed without it would
    // estimate from session tokens instead, as for Azure Cosmos DB.
    let feed = source.feed(&args.database, &args.container, true);
    Ok(ChangeFeedEstimator::new(&args.processor, feed, leases, start_from).await?)
}

/// A lease as `leases list --json` prints it.
#[derive(serde::Serialize)]
struct LeaseRow {
    id: String,
    token: String,
    owner: Option<String>,
    continuation: Option<String>,
    /// The lease document's `timestamp`: when a host last wrote it.
    timestamp: Option<String>,
    mode: &'static str,
    properties: BTreeMap<String, String>,
}

async fn list(leases: &LeaseStore, processor: &str, json: bool) -> anyhow::Result<()> {
    let mut listed = leases.list().await?;
    listed.sort_by(|a, b| a.token.cmp(&b.token));
    let rows: Vec<LeaseRow> = listed
        .into_iter()
        .map(|lease| LeaseRow {
            timestamp: lease.last_write,
            id: lease.id,
            token: lease.token,
            owner: lease.owner,
            continuation: lease.continuation,
            mode: lease.mode.lease_value(),
            properties: lease.properties,
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        eprintln!("processor '{processor}' has no leases");
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut other: Vec<String> = row
                .properties
                .iter()
                .filter(|(key, _)| {
                    key.as_str() != FAILURES_PROPERTY && key.as_str() != LAST_ERROR_PROPERTY
                })
                .map(|(key, value)| format!("{key}={value}"))
                .collect();
            other.sort();
            vec![
                row.token.clone(),
                or_dash(row.owner.as_deref()),
                or_dash(row.continuation.as_deref()),
                or_dash(row.timestamp.as_deref()),
                stuck_cell(
                    row.properties
                        .get(FAILURES_PROPERTY)
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0),
                ),
                or_dash(
                    row.properties
                        .get(LAST_ERROR_PROPERTY)
                        .map(|e| shortened(e))
                        .as_deref(),
                ),
                if other.is_empty() {
                    "-".into()
                } else {
                    other.join(",")
                },
            ]
        })
        .collect();
    print!(
        "{}",
        render_table(
            &[
                "LEASE",
                "OWNER",
                "CONTINUATION",
                "LAST WRITE",
                "STUCK",
                "LAST ERROR",
                "PROPERTIES"
            ],
            &table
        )
    );
    Ok(())
}

fn read_export(file: &Path) -> anyhow::Result<Value> {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the export from stdin")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))
}

fn estimate_table(estimates: &[LeaseEstimate]) -> String {
    let mut rows: Vec<Vec<String>> = estimates
        .iter()
        .map(|estimate| {
            vec![
                estimate.lease_token.clone(),
                or_dash(estimate.owner.as_deref()),
                pending_cell(estimate.pending, estimate.exact),
                estimate
                    .oldest_pending_age_s
                    .map_or_else(|| "-".into(), |age| age.to_string()),
                stuck_cell(estimate.consecutive_failures),
                or_dash(estimate.last_error.as_deref().map(shortened).as_deref()),
            ]
        })
        .collect();
    let total: u64 = estimates.iter().map(|e| e.pending).sum();
    let oldest = estimates
        .iter()
        .filter_map(|e| e.oldest_pending_age_s)
        .max();
    let n_stuck = estimates.iter().filter(|e| e.is_stuck()).count();
    rows.push(vec![
        format!("total ({} leases)", estimates.len()),
        String::new(),
        pending_cell(total, estimates.iter().all(|e| e.exact)),
        oldest.map_or_else(|| "-".into(), |age| age.to_string()),
        if n_stuck == 0 {
            "-".into()
        } else {
            format!("{n_stuck} stuck")
        },
        String::new(),
    ]);
    render_table(
        &[
            "LEASE",
            "OWNER",
            "PENDING",
            "OLDEST PENDING (s)",
            "STUCK",
            "LAST ERROR",
        ],
        &rows,
    )
}

/// A pending count, marked `~` when it is an estimate.
fn pending_cell(pending: u64, exact: bool) -> String {
    if exact {
        pending.to_string()
    } else {
        format!("~{pending}")
    }
}

/// `-`, or how many consecutive batches failed.
fn stuck_cell(consecutive_failures: u32) -> String {
    if consecutive_failures == 0 {
        "-".into()
    } else {
        format!("yes ({consecutive_failures} failures)")
    }
}

fn or_dash(text: Option<&str>) -> String {
    text.map_or_else(|| "-".into(), str::to_owned)
}

/// At most [`MAX_TABLE_ERROR_CHARS`] characters, on one line.
fn shortened(text: &str) -> String {
    let line = text.replace(['\n', '\r'], " ");
    match line.char_indices().nth(MAX_TABLE_ERROR_CHARS) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
fn render_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let headers: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&headers).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let table = render_table(
            &["A", "LONG HEADER", "C"],
            &[
                vec!["wide cell".into(), "x".into(), "last".into()],
                vec!["y".into(), String::new(), "z".into()],
            ],
        );
        assert_eq!(
            table,
            "A          LONG HEADER  C\n\
             wide cell  x            last\n\
             y                       z\n"
        );
    }

    #[test]
    fn long_errors_are_shortened_to_one_line() {
        let error = format!("first\nsecond {}", "x".repeat(100));
        let shown = shortened(&error);
        assert!(!shown.contains('\n'));
        assert!(shown.ends_with("..."));
        assert_eq!(shown.chars().count(), MAX_TABLE_ERROR_CHARS + 3);
    }
}
