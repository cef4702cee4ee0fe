//! `tributary feed tail`: follow a container's change feed and print each change as one
//! JSON line.
//!
//! The tail is a change feed processor with its leases in this process's memory: it reads
//! every feed range of the container at once, follows splits, and forgets its position when
//! it exits (nothing is written to the source). Changes of one feed range are printed in
//! order; changes of different ranges interleave. Each batch is written whole and flushed.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;
use tributary_processor::{
    Change, ChangeFeedProcessorBuilder, FeedMode, HandlerError, MAX_MAX_ITEMS,
    MemoryLeaseContainer, StartFrom,
};

use crate::source::{Source, SourceArgs};
use crate::start_from::parse_start_from;

/// The processor name of a tail (its leases live only in memory).
const TAIL_PROCESSOR_NAME: &str = "tributary-tail";
/// Time between the tail's balancing rounds: it is the only host, so new leases after a
/// split are taken quickly.
const TAIL_ACQUIRE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest a stopping tail waits for batches in hand before it exits anyway.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Arguments of `tributary feed`.
#[derive(clap::Args, Debug)]
pub struct FeedArgs {
    #[command(subcommand)]
    command: FeedCommand,
}

#[derive(clap::Subcommand, Debug)]
enum FeedCommand {
    /// Follow a container's change feed across all its feed ranges and print each change as
    /// one JSON line on stdout, until Ctrl-C (or --limit).
    ///
    /// Changes of one feed range are printed in order; ranges interleave. The position is
    /// kept in memory only: nothing is written to the store or server.
    Tail(TailArgs),
}

#[derive(clap::Args, Debug)]
struct TailArgs {
    /// The container's database.
    #[arg(long)]
    database: String,
    /// The container to follow.
    #[arg(long)]
    container: String,
    /// Where to start: `beginning`, `now`, an RFC 3339 time (2026-12-01T10:00:00Z) or
    /// milliseconds since the Unix epoch.
    #[arg(long, value_parser = parse_start_from, default_value = "now")]
    from: StartFrom,
    /// Print every create, replace and delete (all versions and deletes mode) instead of
    /// each changed item's latest version.
    #[arg(long)]
    all_versions: bool,
    /// Most changes read per page.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=MAX_MAX_ITEMS as u64))]
    max_items: u64,
    /// Exit after printing this many changes.
    #[arg(long)]
    limit: Option<u64>,
    #[command(flatten)]
    source: SourceArgs,
}

/// Runs `tributary feed ...`.
///
/// # Errors
/// The source cannot be opened, the container does not exist, the processor cannot start,
/// or stdout fails (a closed pipe ends the tail quietly).
pub async fn run(args: FeedArgs) -> anyhow::Result<()> {
    match args.command {
        FeedCommand::Tail(args) => {
            let source = Source::open(&args.source)?;
            let result = tail(&source, &args).await;
            source.close();
            result
        }
    }
}

async fn tail(source: &Source, args: &TailArgs) -> anyhow::Result<()> {
    source
        .check_container(&args.database, &args.container)
        .await?;
    let feed = source.feed(&args.database, &args.container, true);
    let mode = if args.all_versions {
        FeedMode::AllVersionsAndDeletes
    } else {
        FeedMode::LatestVersion
    };
    // One small read first: a feed the source refuses (all versions on a container without
    // a retention policy) is an error now, not a processor retrying forever.
    let ranges = feed.ranges().await?;
    if let Some(range) = ranges.first() {
        feed.current_position(range.clone(), range.span.clone(), mode)
            .await
            .with_context(|| {
                format!(
                    "cannot read the change feed of '{}' in database '{}'",
                    args.container, args.database
                )
            })?;
    }
    let printer = Arc::new(Printer::new(args.limit));
    let mut finished = printer.finished.subscribe();
    let handler_printer = Arc::clone(&printer);
    let mut builder = ChangeFeedProcessorBuilder::new(
        TAIL_PROCESSOR_NAME,
        feed,
        Arc::new(MemoryLeaseContainer::new()),
    )
    .instance_name(format!("tail-{}", std::process::id()))
    .start_from(args.from)
    .max_items(usize::try_from(args.max_items).unwrap_or(MAX_MAX_ITEMS))
    .lease_acquire_interval(TAIL_ACQUIRE_INTERVAL)
    .handler(move |_context, changes| {
        let printer = Arc::clone(&handler_printer);
        async move { printer.print(&changes) }
    });
    if mode == FeedMode::AllVersionsAndDeletes {
        builder = builder.all_versions_and_deletes();
    }
    let mut processor = builder.build()?;
    if args.limit == Some(0) {
        return Ok(());
    }
    processor
        .start()
        .await
        .context("cannot start following the feed")?;
    tokio::select! {
        _ = finished.wait_for(|outcome| outcome.is_some()) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    if tokio::time::timeout(STOP_TIMEOUT, processor.stop())
        .await
        .is_err()
    {
        tracing::warn!("batches in hand did not finish in {STOP_TIMEOUT:?}; exiting anyway");
    }
    let outcome = printer.finished.borrow().clone();
    match outcome {
        Some(Err(message)) => Err(anyhow::anyhow!("cannot write to stdout: {message}")),
        _ => Ok(()),
    }
}

/// Writes batches to stdout, counting them against the limit.
struct Printer {
    limit: Option<u64>,
    n_printed: Mutex<u64>,
    /// `Some` once the tail should end: `Ok` at the limit or a closed pipe, `Err` when
    /// stdout failed.
    finished: watch::Sender<Option<Result<(), String>>>,
}

impl Printer {
    fn new(limit: Option<u64>) -> Self {
        Printer {
            limit,
            n_printed: Mutex::new(0),
            finished: watch::Sender::new(None),
        }
    }

    /// Prints a batch (up to the limit) as JSON lines and flushes. Once the tail is
    /// finished, batches are refused, so they are not checkpointed.
    fn print(&self, changes: &[Change]) -> Result<(), HandlerError> {
        // One lock for counting and writing: batches of different leases never interleave
        // and never print past the limit.
        let mut n_printed = self
            .n_printed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.finished.borrow().is_some() {
            return Err("the tail has finished".into());
        }
        let remaining = self.limit.map_or(u64::MAX, |limit| limit - *n_printed);
        let n_take = changes
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let mut text = String::new();
        for change in &changes[..n_take] {
            append_line(&mut text, change);
        }
        let mut stdout = std::io::stdout().lock();
        let written = stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush());
        match written {
            Ok(()) => {
                *n_printed += n_take as u64;
                if self.limit.is_some_and(|limit| *n_printed >= limit) {
                    self.finished.send_replace(Some(Ok(())));
                }
                Ok(())
            }
            Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                self.finished.send_replace(Some(Ok(())));
                Err(error.into())
            }
            Err(error) => {
                self.finished.send_replace(Some(Err(error.to_string())));
                Err(error.into())
            }
        }
    }
}

/// Appends a change as one line: its JSON text as stored, re-serialized compactly if it
/// spans several lines.
fn append_line(text: &mut String, change: &Change) {
    let json = change.json();
    if json.contains(['\n', '\r']) {
        match serde_json::from_str::<serde_json::Value>(json) {
            Ok(value) => text.push_str(&value.to_string()),
            // A change is a JSON object; should one not parse, keep it on one line anyway.
            Err(_) => text.push_str(&json.replace(['\n', '\r'], " ")),
        }
    } else {
        text.push_str(json);
    }
    text.push('\n');
}
