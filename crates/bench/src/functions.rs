//! `tributary bench functions`: the functions host (`tributary-functions`) end to end on the
//! embedded store, through three kinds of handler, one after another:
//!
//! - **Rust**: a [`RustHandler`] registered in code that records each change it is given;
//! - **JSON lines**: a worker process speaking `docs/functions-protocol.md`, a `tributary.toml`
//!   app loaded by [`FunctionApp::load`] whose `[worker]` is `python3 worker.py`: a few lines
//!   of standard-library Python written to a temporary app directory at run time, which reads
//!   and parses (`json.loads`) every invoke line and answers it `ok`;
//! - **Python**: Tributary's Python worker running a `function_app.py` written with the
//!   `azure-functions` package, also written at run time: one Cosmos DB trigger function whose
//!   body notes the ids it got and returns `None`. It needs a Python that can import
//!   `azure-functions`, chosen as the host chooses it (`TRIBUTARY_PYTHON`, else the app's
//!   `.venv`, else `python3`); without one the phase is reported as skipped with the reason.
//!
//! One fresh store (a temporary directory) holds one monitored container of `n_feed_ranges`
//! feed ranges. `n_items` documents (the 1 KB orders of [`crate::workload`]) are written first
//! in atomic commits of 100. Each handler kind then gets its own function (so its own leases),
//! starting from the beginning of the feed with the host's default settings (only the lease
//! acquire interval is shortened, which moves the start, not the rate):
//!
//! 1. **catch-up**: from [`FunctionHost::start`] until the handler has been given every
//!    document in the container (the `n_items`, plus the live writes of the kinds before it);
//! 2. **live**: with the host caught up, `n_live_writes` single-document writes paced at
//!    `live_writes_per_s` (each its own task, so a slow commit does not delay the next). The
//!    latency of each spans from its write being acknowledged (`write_item` returned in the
//!    writer) to the start of the invocation that carries it.
//!
//! "Invocation start" is where the function's own code begins: the Rust closure being called,
//! the JSON-lines worker having read and parsed the invoke line, the Python function's body
//! being entered (after the worker parsed the line and built its `DocumentList`). The process
//! handlers note `time.time_ns()` and the ids there and append them as one line to a file in
//! the app directory, which the benchmark follows; both sides read the same wall clock.
//!
//! Delivery is at least once: every phase checks that every document was seen and counts
//! the duplicates.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tributary_functions::definition::{MAX_ITEMS_PER_INVOCATION, ReadFunction, read_function};
use tributary_functions::handler::{Invocation, InvocationOutput, RustHandler};
use tributary_functions::manifest::MANIFEST_FILE;
use tributary_functions::python::{PYTHON_OVERRIDE_VAR, python_interpreter};
use tributary_functions::settings::{LOCAL_SETTINGS_FILE, Settings};
use tributary_functions::{FunctionApp, FunctionHost, HostOptions, PYTHON_APP_FILE};
use tributary_store::{
    ContainerDefinition, Durability, ItemWrite, MAX_FEED_RANGES, MAX_TRANSACTION_OPERATIONS,
    OperationResult, Store, StoreOptions, TransactionOperation,
};
use tributary_wire::auth::EMULATOR_KEY;

use crate::error::BenchError;
use crate::latency::{LatencySummary, milliseconds, per_second};
use crate::machine::{self, MachineInfo};
use crate::processor::MAX_LIVE_WRITES_PER_S;
use crate::progress::PhaseProgress;
use crate::table;
use crate::workload::{
    ITEM_BYTES, N_PARTITION_KEYS, PARTITION_KEY_PATH, order_document, order_number,
};
use crate::{durability_name, new_store_dir};

/// The benchmark's database.
const DATABASE: &str = "bench";
/// The monitored container.
const CONTAINER: &str = "orders";
/// The lease container (and, in the same database, the dead-letter container).
const LEASE_CONTAINER: &str = "leases";
/// The app setting holding the connection string of the embedded store.
const CONNECTION_SETTING: &str = "CosmosBench";
/// The host's instance name.
const INSTANCE_NAME: &str = "bench-host";
/// The lease acquire interval of every function: short, so the leases are taken soon after
/// the start. It does not bound the rate of a lease already owned.
pub const LEASE_ACQUIRE_INTERVAL_MS: u64 = 200;
/// The file, in an app directory, to which the process handlers append one line per
/// invocation: `<time.time_ns()> <id> <id> ...`.
const SIGHTINGS_FILE: &str = "sightings.log";
/// The JSON-lines worker's file name in its app directory.
const JSON_LINES_WORKER_FILE: &str = "worker.py";
/// The interpreter of the JSON-lines worker (looked up on `PATH`).
const JSON_LINES_PYTHON: &str = "python3";
/// Transactions kept in flight while the documents to catch up on are written.
const INGEST_TRANSACTIONS_IN_FLIGHT: usize = 4;
/// Most paced writes in flight at once.
const MAX_WRITES_IN_FLIGHT: usize = 256;
/// How often a waiting phase looks at what the handler has seen, and the sightings file is
/// read for new lines.
const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// How long the handler may take to see the last live writes once the writer is done.
const LIVE_GRACE: Duration = Duration::from_secs(30);
/// Longest line of the sightings file (the ids of one invocation).
const MAX_SIGHTING_LINE_BYTES: usize = 4 * 1024 * 1024;
/// Bytes read from the sightings file at a time.
const SIGHTINGS_READ_BYTES: usize = 256 * 1024;
/// Most documents the benchmark writes per phase.
pub const MAX_FUNCTIONS_CHANGES: u64 = 10_000_000;
/// Catch-up rate the Rust handler should reach with default settings (changes/s).
pub const TARGET_RUST_CHANGES_PER_S: f64 = 50_000.0;
/// Catch-up rate the JSON-lines worker should reach with default settings (changes/s).
pub const TARGET_JSON_LINES_CHANGES_PER_S: f64 = 20_000.0;
/// Catch-up rate the Python worker should reach with default settings (changes/s).
pub const TARGET_PYTHON_CHANGES_PER_S: f64 = 5_000.0;
/// Live p99 the Rust handler and the JSON-lines worker should stay within (ms).
pub const TARGET_P99_MS: f64 = 20.0;
/// Live p99 the Python worker should stay within (ms).
pub const TARGET_PYTHON_P99_MS: f64 = 50.0;

/// The sizes of a functions benchmark run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunctionsBenchOptions {
    /// Documents written before the first host starts (the catch-up).
    pub n_items: u64,
    /// Documents written at a steady rate while each host runs (the live phase).
    pub n_live_writes: u64,
    /// Rate of the live writes.
    pub live_writes_per_s: u64,
    /// `maxItemsPerInvocation` of every function (`None`: unset, the processor's default page
    /// size, [`tributary_processor::DEFAULT_MAX_ITEMS`]).
    pub max_items: Option<usize>,
    /// Feed ranges of the container (one lease each).
    pub n_feed_ranges: u32,
    /// When commits are acknowledged.
    #[serde(serialize_with = "serialize_durability")]
    pub durability: Durability,
    /// Where the temporary store directory is made (`None`: the system's temp directory).
    pub parent_dir: Option<PathBuf>,
    /// Print progress lines to stderr during long phases.
    #[serde(skip)]
    pub show_progress: bool,
}

fn serialize_durability<S: serde::Serializer>(
    durability: &Durability,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(durability_name(*durability))
}

impl Default for FunctionsBenchOptions {
    fn default() -> Self {
        FunctionsBenchOptions {
            n_items: 100_000,
            n_live_writes: 2_000,
            live_writes_per_s: 500,
            max_items: None,
            n_feed_ranges: 4,
            durability: Durability::Fsync,
            parent_dir: None,
            show_progress: false,
        }
    }
}

impl FunctionsBenchOptions {
    /// Checks every size against its limit.
    ///
    /// # Errors
    /// [`BenchError::InvalidParameter`] naming the first size out of range.
    pub fn validate(&self) -> Result<(), BenchError> {
        let checks: [(bool, String); 5] = [
            (
                (1..=MAX_FUNCTIONS_CHANGES).contains(&self.n_items),
                format!(
                    "items must be 1 to {MAX_FUNCTIONS_CHANGES}, not {}",
                    self.n_items
                ),
            ),
            (
                (1..=MAX_FUNCTIONS_CHANGES).contains(&self.n_live_writes),
                format!(
                    "live writes must be 1 to {MAX_FUNCTIONS_CHANGES}, not {}",
                    self.n_live_writes
                ),
            ),
            (
                (1..=MAX_LIVE_WRITES_PER_S).contains(&self.live_writes_per_s),
                format!(
                    "live write rate must be 1 to {MAX_LIVE_WRITES_PER_S} per second, not {}",
                    self.live_writes_per_s
                ),
            ),
            (
                self.max_items
                    .is_none_or(|n| (1..=MAX_ITEMS_PER_INVOCATION).contains(&n)),
                format!(
                    "max items per invocation must be 1 to {MAX_ITEMS_PER_INVOCATION}, not {}",
                    self.max_items.unwrap_or(0)
                ),
            ),
            (
                (1..=MAX_FEED_RANGES as u32).contains(&self.n_feed_ranges),
                format!(
                    "feed ranges must be 1 to {MAX_FEED_RANGES}, not {}",
                    self.n_feed_ranges
                ),
            ),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(BenchError::InvalidParameter(message)),
            None => Ok(()),
        }
    }

    /// The changes per invocation in effect (the option, else the processor's default).
    pub fn effective_max_items(&self) -> usize {
        self.max_items
            .unwrap_or(tributary_processor::DEFAULT_MAX_ITEMS)
    }
}

/// A kind of handler the benchmark runs, in the order it runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HandlerKind {
    /// A [`RustHandler`] in the host's process.
    Rust,
    /// A worker process speaking the JSON-lines protocol (`python3 worker.py`).
    JsonLines,
    /// Tributary's Python worker running an `azure-functions` app.
    Python,
}

impl HandlerKind {
    /// Every kind, in the order they run.
    pub const ALL: [HandlerKind; 3] = [
        HandlerKind::Rust,
        HandlerKind::JsonLines,
        HandlerKind::Python,
    ];

    /// The function's name, which is also its lease prefix.
    fn function_name(self) -> &'static str {
        match self {
            HandlerKind::Rust => "bench_rust",
            HandlerKind::JsonLines => "bench_json_lines",
            HandlerKind::Python => "bench_python",
        }
    }

    /// A short label for tables.
    pub fn label(self) -> &'static str {
        match self {
            HandlerKind::Rust => "(a) Rust handler",
            HandlerKind::JsonLines => "(b) JSON-lines worker",
            HandlerKind::Python => "(c) Python worker",
        }
    }

    /// The catch-up rate it should reach with default settings.
    pub fn target_changes_per_s(self) -> f64 {
        match self {
            HandlerKind::Rust => TARGET_RUST_CHANGES_PER_S,
            HandlerKind::JsonLines => TARGET_JSON_LINES_CHANGES_PER_S,
            HandlerKind::Python => TARGET_PYTHON_CHANGES_PER_S,
        }
    }

    /// The live p99 it should stay within with default settings.
    pub fn target_p99_ms(self) -> f64 {
        match self {
            HandlerKind::Rust | HandlerKind::JsonLines => TARGET_P99_MS,
            HandlerKind::Python => TARGET_PYTHON_P99_MS,
        }
    }
}

/// One handler kind: what ran, its targets, and what it measured (or why it was skipped).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HandlerReport {
    /// The kind.
    pub kind: HandlerKind,
    /// What exactly ran (the worker command, the interpreter and package versions).
    pub handler: String,
    /// The catch-up target, changes/s (for default settings).
    pub target_changes_per_s: f64,
    /// The live p99 target, ms (for default settings).
    pub target_p99_ms: f64,
    /// The figures, or the reason the kind was not run.
    #[serde(flatten)]
    pub outcome: HandlerOutcome,
}

/// Whether a handler kind ran.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum HandlerOutcome {
    /// It ran; its figures.
    Measured(Box<HandlerRun>),
    /// It could not run here (the Python worker without `azure-functions`).
    Skipped {
        /// One line: why.
        reason: String,
    },
}

/// What one handler kind measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HandlerRun {
    /// Loading the app, the worker process's start and `ready` included, ms.
    pub load_ms: f64,
    /// From [`FunctionHost::start`] to the first invocation, ms (lease acquisition included).
    pub first_invocation_ms: f64,
    /// Documents in the container when the host started, all handled in the catch-up.
    pub n_changes: u64,
    /// From [`FunctionHost::start`] to the start of the invocation that carried the last of
    /// them, seconds.
    pub catchup_seconds: f64,
    /// `n_changes / catchup_seconds`.
    pub catchup_changes_per_s: f64,
    /// Invocations during the catch-up.
    pub catchup_invocations: u64,
    /// Changes per invocation during the catch-up.
    pub catchup_mean_batch: f64,
    /// Changes handed over more than once during the catch-up.
    pub catchup_duplicates: u64,
    /// Documents written one at a time while the host ran.
    pub live_writes: u64,
    /// The live writes' achieved rate.
    pub live_writes_per_s: f64,
    /// Invocations during the live phase.
    pub live_invocations: u64,
    /// Changes per invocation during the live phase.
    pub live_mean_batch: f64,
    /// Changes handed over more than once during the live phase.
    pub live_duplicates: u64,
    /// From the write's acknowledgement (`write_item` returned) to the start of the
    /// invocation carrying it; 0 where the invocation started first.
    pub live_ms: LatencySummary,
    /// Live writes whose invocation started before the writer saw the acknowledgement.
    pub live_seen_before_ack: u64,
    /// From just before the write was submitted to the start of its invocation (the commit
    /// included).
    pub live_from_submit_ms: LatencySummary,
    /// The live writes' own commit: submit to acknowledgement (fsync included).
    pub live_commit_ms: LatencySummary,
    /// Invocations that failed (the host retries them; none expected).
    pub failed_invocations: u64,
    /// Whether the catch-up rate met the target.
    pub throughput_target_met: bool,
    /// Whether the live p99 met the target.
    pub latency_target_met: bool,
}

/// What a functions benchmark measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunctionsBenchReport {
    /// The machine it ran on.
    pub machine: MachineInfo,
    /// The sizes it ran with.
    pub parameters: FunctionsBenchOptions,
    /// Changes per invocation in effect.
    pub max_items_per_invocation: usize,
    /// The lease acquire interval of every function, ms.
    pub lease_acquire_interval_ms: u64,
    /// Serialized size of each document.
    pub item_bytes: usize,
    /// Distinct partition key values.
    pub n_partition_keys: u64,
    /// Each handler kind, in the order they ran.
    pub handlers: Vec<HandlerReport>,
    /// This process's peak resident memory (store, host, Rust handler), MiB.
    pub peak_rss_mb: Option<f64>,
}

impl FunctionsBenchReport {
    /// The report as tables for humans.
    pub fn render_text(&self) -> String {
        let p = &self.parameters;
        let max_items = match p.max_items {
            Some(n) => n.to_string(),
            None => format!(
                "unset (the processor's page size, {})",
                self.max_items_per_invocation
            ),
        };
        let mut out = format!(
            "tributary bench functions: {} documents to catch up on, then {} live writes at {}/s, per handler kind; {}-byte items, {} partition keys, {} feed ranges (leases), max items per invocation {max_items}, lease acquire interval {} ms (start only), durability {}\n",
            p.n_items,
            p.n_live_writes,
            p.live_writes_per_s,
            self.item_bytes,
            self.n_partition_keys,
            p.n_feed_ranges,
            self.lease_acquire_interval_ms,
            durability_name(p.durability),
        );
        out.push_str(&format!("machine: {}\n", self.machine.describe()));
        if p.max_items.is_some() || p.durability != Durability::Fsync {
            out.push_str("(the targets are for default settings: fsync, max items unset)\n");
        }

        out.push_str("\ncatch-up: from FunctionHost::start to the invocation carrying the last document in the container\n");
        let mut rows = vec![
            [
                "handler",
                "changes",
                "seconds",
                "changes/s",
                "invocations",
                "mean batch",
                "1st call ms",
                "load ms",
                "target",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for report in &self.handlers {
            match &report.outcome {
                HandlerOutcome::Measured(run) => rows.push(vec![
                    report.kind.label().to_owned(),
                    table::thousands(run.n_changes as f64),
                    format!("{:.2}", run.catchup_seconds),
                    table::thousands(run.catchup_changes_per_s),
                    table::thousands(run.catchup_invocations as f64),
                    format!("{:.1}", run.catchup_mean_batch),
                    format!("{:.0}", run.first_invocation_ms),
                    format!("{:.0}", run.load_ms),
                    format!(
                        "≥ {}/s {}",
                        table::thousands(report.target_changes_per_s),
                        met(run.throughput_target_met)
                    ),
                ]),
                HandlerOutcome::Skipped { .. } => rows.push(skipped_row(report.kind, 9)),
            }
        }
        out.push_str(&columns(&rows));

        out.push_str(&format!(
            "\nlive: {} writes at {}/s; latency from the write's acknowledgement (write_item returned in the writer) to the start of the invocation carrying it, ms\n",
            p.n_live_writes, p.live_writes_per_s
        ));
        let mut rows = vec![
            [
                "handler",
                "p50",
                "p90",
                "p99",
                "max",
                "n",
                "before ack",
                "mean batch",
                "commit p99",
                "submit→call p99",
                "target",
            ]
            .map(str::to_owned)
            .to_vec(),
        ];
        for report in &self.handlers {
            match &report.outcome {
                HandlerOutcome::Measured(run) => rows.push(vec![
                    report.kind.label().to_owned(),
                    format!("{:.2}", run.live_ms.p50_ms),
                    format!("{:.2}", run.live_ms.p90_ms),
                    format!("{:.2}", run.live_ms.p99_ms),
                    format!("{:.2}", run.live_ms.max_ms),
                    run.live_ms.n.to_string(),
                    run.live_seen_before_ack.to_string(),
                    format!("{:.2}", run.live_mean_batch),
                    format!("{:.2}", run.live_commit_ms.p99_ms),
                    format!("{:.2}", run.live_from_submit_ms.p99_ms),
                    format!(
                        "p99 ≤ {:.0} {}",
                        report.target_p99_ms,
                        met(run.latency_target_met)
                    ),
                ]),
                HandlerOutcome::Skipped { .. } => rows.push(skipped_row(report.kind, 11)),
            }
        }
        out.push_str(&columns(&rows));

        out.push('\n');
        for report in &self.handlers {
            out.push_str(&format!("{}: {}\n", report.kind.label(), report.handler));
            match &report.outcome {
                HandlerOutcome::Measured(run) => {
                    if run.failed_invocations > 0
                        || run.catchup_duplicates + run.live_duplicates > 0
                    {
                        out.push_str(&format!(
                            "    {} failed invocations, {} duplicates (catch-up) / {} (live)\n",
                            run.failed_invocations, run.catchup_duplicates, run.live_duplicates
                        ));
                    }
                }
                HandlerOutcome::Skipped { reason } => {
                    out.push_str(&format!("    skipped: {reason}\n"));
                }
            }
        }
        out.push_str(&format!(
            "invocation start: the Rust closure called; the JSON-lines worker done parsing the invoke line; the Python function's body entered\npeak RSS (this process: store, host, Rust handler): {}\n",
            table::mebibytes(self.peak_rss_mb)
        ));
        out
    }
}

fn met(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn skipped_row(kind: HandlerKind, n_columns: usize) -> Vec<String> {
    let mut row = vec![kind.label().to_owned(), "skipped".to_owned()];
    row.resize(n_columns, String::new());
    row
}

/// Rows as aligned columns: the first left-aligned, the others right-aligned.
fn columns(rows: &[Vec<String>]) -> String {
    let n_columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n_columns)
        .map(|column| {
            rows.iter()
                .filter_map(|row| row.get(column))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            let padding = " ".repeat(widths[column] - cell.chars().count());
            if column == 0 {
                line.push_str(cell);
                line.push_str(&padding);
            } else {
                line.push_str("  ");
                line.push_str(&padding);
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Runs the functions benchmark: the documents are written, then each handler kind catches
/// up and follows live writes, one after another.
///
/// Call it inside a multi-threaded tokio runtime. `python3` must be on `PATH` for the
/// JSON-lines worker.
///
/// # Errors
/// [`BenchError::InvalidParameter`] for bad options; [`BenchError::Store`] if the store
/// fails; [`BenchError::Processor`] if the functions host cannot load or start an app, or
/// its files cannot be written; [`BenchError::Timeout`] if a handler does not see every
/// document in time.
pub async fn run_functions_bench(
    options: &FunctionsBenchOptions,
) -> Result<FunctionsBenchReport, BenchError> {
    options.validate()?;
    let store_dir = new_store_dir(options.parent_dir.as_deref())?;
    let apps_dir = tempfile::Builder::new()
        .prefix("tributary-bench-apps-")
        .tempdir()
        .map_err(BenchError::TempDir)?;
    let store = Arc::new(Store::open(
        store_dir.path(),
        StoreOptions {
            durability: options.durability,
            ..StoreOptions::default()
        },
    )?);
    let measured = run_kinds(&store, apps_dir.path(), options).await;
    store.close();
    Ok(FunctionsBenchReport {
        machine: MachineInfo::detect(),
        parameters: options.clone(),
        max_items_per_invocation: options.effective_max_items(),
        lease_acquire_interval_ms: LEASE_ACQUIRE_INTERVAL_MS,
        item_bytes: ITEM_BYTES,
        n_partition_keys: N_PARTITION_KEYS,
        handlers: measured?,
        peak_rss_mb: machine::peak_rss_mb(),
    })
}

async fn run_kinds(
    store: &Arc<Store>,
    apps_dir: &Path,
    options: &FunctionsBenchOptions,
) -> Result<Vec<HandlerReport>, BenchError> {
    store.create_database(DATABASE).await?;
    store
        .create_container(
            DATABASE,
            ContainerDefinition::new(CONTAINER, PARTITION_KEY_PATH),
            options.n_feed_ranges,
        )
        .await?;
    ingest(store, options.n_items, options.show_progress).await?;
    let mut n_documents = options.n_items;
    let mut reports = Vec::new();
    for kind in HandlerKind::ALL {
        let app_dir = apps_dir.join(kind.function_name());
        std::fs::create_dir(&app_dir).map_err(|error| file_error(&app_dir, &error))?;
        let (description, app) = match prepare_app(kind, &app_dir, options).await? {
            Ok(prepared) => prepared,
            Err(reason) => {
                if options.show_progress {
                    eprintln!("{}: skipped: {reason}", kind.function_name());
                }
                reports.push(HandlerReport {
                    kind,
                    handler: handler_description(kind, None),
                    target_changes_per_s: kind.target_changes_per_s(),
                    target_p99_ms: kind.target_p99_ms(),
                    outcome: HandlerOutcome::Skipped { reason },
                });
                continue;
            }
        };
        let run = run_one_kind(store, kind, app, &app_dir, n_documents, options).await?;
        n_documents += run.live_writes;
        reports.push(HandlerReport {
            kind,
            handler: description,
            target_changes_per_s: kind.target_changes_per_s(),
            target_p99_ms: kind.target_p99_ms(),
            outcome: HandlerOutcome::Measured(Box::new(run)),
        });
    }
    Ok(reports)
}

/// An app ready to start, or why the kind cannot run here.
type PreparedApp = Result<(String, LoadedApp), String>;

/// An app definition, and where its handler reports what it sees.
enum LoadedApp {
    /// The Rust function, registered when its phase starts (its handler records into the
    /// phase's sightings).
    Rust,
    /// An app directory loaded by [`FunctionApp::load`]; the handler appends to its
    /// sightings file. `load_ms` is how long loading took.
    Directory { app: FunctionApp, load_ms: f64 },
}

/// Writes the kind's app files and loads the app.
async fn prepare_app(
    kind: HandlerKind,
    app_dir: &Path,
    options: &FunctionsBenchOptions,
) -> Result<PreparedApp, BenchError> {
    let settings_json = serde_json::json!({
        "IsEncrypted": false,
        "Values": { CONNECTION_SETTING: embedded_connection_string() },
    });
    match kind {
        HandlerKind::Rust => Ok(Ok((handler_description(kind, None), LoadedApp::Rust))),
        HandlerKind::JsonLines => {
            write_file(&app_dir.join(JSON_LINES_WORKER_FILE), JSON_LINES_WORKER)?;
            write_file(&app_dir.join(MANIFEST_FILE), &json_lines_manifest(options))?;
            write_file(
                &app_dir.join(LOCAL_SETTINGS_FILE),
                &settings_json.to_string(),
            )?;
            write_file(&app_dir.join(SIGHTINGS_FILE), "")?;
            let loaded = load_app(app_dir).await?;
            Ok(Ok((handler_description(kind, None), loaded)))
        }
        HandlerKind::Python => {
            let python = match python_preflight(app_dir).await? {
                Ok(python) => python,
                Err(reason) => return Ok(Err(reason)),
            };
            write_file(
                &app_dir.join(PYTHON_APP_FILE),
                &python_function_app(options),
            )?;
            write_file(
                &app_dir.join(LOCAL_SETTINGS_FILE),
                &settings_json.to_string(),
            )?;
            write_file(&app_dir.join(SIGHTINGS_FILE), "")?;
            let loaded = load_app(app_dir).await?;
            Ok(Ok((handler_description(kind, Some(&python)), loaded)))
        }
    }
}

async fn load_app(app_dir: &Path) -> Result<LoadedApp, BenchError> {
    let started = Instant::now();
    let app = FunctionApp::load(app_dir)
        .await
        .map_err(|error| host_error("cannot load the benchmark app", &error))?;
    Ok(LoadedApp::Directory {
        app,
        load_ms: milliseconds(started.elapsed()),
    })
}

fn handler_description(kind: HandlerKind, python: Option<&str>) -> String {
    match kind {
        HandlerKind::Rust => {
            "a RustHandler closure in the host's process that notes the id of every change".into()
        }
        HandlerKind::JsonLines => format!(
            "`{JSON_LINES_PYTHON} {JSON_LINES_WORKER_FILE}` from a tributary.toml app: stdlib Python that json.loads each invoke line, notes its ids and answers ok"
        ),
        HandlerKind::Python => match python {
            Some(python) => format!(
                "Tributary's Python worker under {python}: function_app.py with one cosmos_db_trigger function that notes its ids and returns None"
            ),
            None => "Tributary's Python worker with an azure-functions function_app.py".into(),
        },
    }
}

/// The Python the host would run the Python worker with for `app_dir`, described
/// (`/path/python (Python 3.13.0, azure-functions 2.3.0)`), or the one-line reason it cannot
/// run an `azure-functions` app.
async fn python_preflight(app_dir: &Path) -> Result<Result<String, String>, BenchError> {
    const PROBE: &str = "import sys, azure.functions as f; print('Python', sys.version.split()[0] + ', azure-functions', f.__version__)";
    let python = python_interpreter(app_dir);
    let probed = {
        let python = python.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(&python)
                .args(["-c", PROBE])
                .stdin(Stdio::null())
                .output()
        })
        .await
        .map_err(|error| BenchError::Task(error.to_string()))?
    };
    let shown = python.display();
    Ok(match probed {
        Err(error) => Err(format!(
            "cannot run {shown}: {error}; set {PYTHON_OVERRIDE_VAR} to a Python with azure-functions"
        )),
        Ok(output) if output.status.success() => Ok(format!(
            "{shown} ({})",
            String::from_utf8_lossy(&output.stdout).trim()
        )),
        Ok(output) => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last_line = stderr.lines().rev().find(|line| !line.trim().is_empty());
            Err(format!(
                "azure-functions cannot be imported by {shown} ({}); set {PYTHON_OVERRIDE_VAR} to a Python that has it",
                last_line.unwrap_or("no error message").trim()
            ))
        }
    })
}

/// A connection string that the host resolves to its embedded store (it names localhost).
fn embedded_connection_string() -> String {
    format!("AccountEndpoint=https://localhost:8081/;AccountKey={EMULATOR_KEY};")
}

/// The Rust function's definition, from the same bindings a `function.json` would give.
fn rust_definition(
    options: &FunctionsBenchOptions,
) -> Result<tributary_functions::definition::FunctionDefinition, BenchError> {
    let mut trigger = serde_json::json!({
        "type": "cosmosDBTrigger",
        "direction": "in",
        "name": "documents",
        "connection": CONNECTION_SETTING,
        "databaseName": DATABASE,
        "containerName": CONTAINER,
        "leaseContainerName": LEASE_CONTAINER,
        "createLeaseContainerIfNotExists": true,
        "startFromBeginning": true,
        "leaseAcquireInterval": LEASE_ACQUIRE_INTERVAL_MS,
    });
    if let Some(max_items) = options.max_items {
        trigger["maxItemsPerInvocation"] = serde_json::Value::from(max_items);
    }
    let name = HandlerKind::Rust.function_name();
    match read_function(name, &[trigger], None) {
        Ok(ReadFunction::Run(definition)) => Ok(*definition),
        Ok(ReadFunction::Skip(skipped)) => Err(BenchError::Processor(format!(
            "the benchmark's Rust function is not run: {}",
            skipped.reason
        ))),
        Err(error) => Err(host_error(
            "the benchmark's Rust function is invalid",
            &error,
        )),
    }
}

/// The JSON-lines worker: answers every invoke `ok` after parsing it, and appends
/// `<time.time_ns()> <id> ...` for it to the sightings file.
const JSON_LINES_WORKER: &str = r#""""A no-op worker for `tributary bench functions` (docs/functions-protocol.md)."""
import json
import os
import sys
import time

sightings = os.open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "sightings.log"),
                    os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
out = sys.stdout.buffer
out.write(b'{"type": "ready", "functions": []}\n')
out.flush()
for line in sys.stdin.buffer:
    message = json.loads(line)
    if message.get("type") != "invoke":
        continue
    seen_ns = time.time_ns()
    ids = " ".join(document["id"] for document in message["documents"])
    os.write(sightings, f"{seen_ns} {ids}\n".encode())
    out.write(b'{"type": "result", "id": %d, "ok": true}\n' % message["id"])
    out.flush()
"#;

/// The trigger options every function gets, as `tributary.toml` / decorator keywords.
fn trigger_options(options: &FunctionsBenchOptions, python: bool) -> String {
    let (yes, assign) = if python {
        ("True", "=")
    } else {
        ("true", " = ")
    };
    let mut text = format!(
        "connection{assign}\"{CONNECTION_SETTING}\", database_name{assign}\"{DATABASE}\", container_name{assign}\"{CONTAINER}\", lease_container_name{assign}\"{LEASE_CONTAINER}\", create_lease_container_if_not_exists{assign}{yes}, start_from_beginning{assign}{yes}, lease_acquire_interval{assign}{LEASE_ACQUIRE_INTERVAL_MS}"
    );
    if let Some(max_items) = options.max_items {
        let _ = write!(text, ", max_items_per_invocation{assign}{max_items}");
    }
    text
}

fn json_lines_manifest(options: &FunctionsBenchOptions) -> String {
    format!(
        "# tributary bench functions: a no-op JSON-lines worker.\n[worker]\ncommand = [\"{JSON_LINES_PYTHON}\", \"{JSON_LINES_WORKER_FILE}\"]\n\n[[function]]\nname = \"{}\"\nhandler = \"worker\"\ntrigger = {{ {} }}\n",
        HandlerKind::JsonLines.function_name(),
        trigger_options(options, false)
    )
}

fn python_function_app(options: &FunctionsBenchOptions) -> String {
    format!(
        r#""""A no-op function for `tributary bench functions`: it notes when it was called, with which ids."""
import os
import time

import azure.functions as func

app = func.FunctionApp()
sightings = os.open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "sightings.log"),
                    os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


@app.cosmos_db_trigger(arg_name="documents", {})
def {}(documents: func.DocumentList) -> None:
    seen_ns = time.time_ns()
    ids = " ".join(document["id"] for document in documents)
    os.write(sightings, f"{{seen_ns}} {{ids}}\n".encode())
    return None
"#,
        trigger_options(options, true),
        HandlerKind::Python.function_name(),
    )
}

fn write_file(path: &Path, contents: &str) -> Result<(), BenchError> {
    std::fs::write(path, contents).map_err(|error| file_error(path, &error))
}

fn file_error(path: &Path, error: &std::io::Error) -> BenchError {
    BenchError::Processor(format!(
        "cannot write the benchmark app file {}: {error}",
        path.display()
    ))
}

fn host_error(what: &str, error: &impl std::fmt::Display) -> BenchError {
    BenchError::Processor(format!("functions host: {what}: {error}"))
}

/// One handler kind: start the host, catch up on `n_documents`, follow the live writes.
async fn run_one_kind(
    store: &Arc<Store>,
    kind: HandlerKind,
    loaded: LoadedApp,
    app_dir: &Path,
    n_documents: u64,
    options: &FunctionsBenchOptions,
) -> Result<HandlerRun, BenchError> {
    let n_total = n_documents + options.n_live_writes;
    let sightings = Arc::new(Sightings::new(n_total));
    let (app, load_ms, tail) = match loaded {
        LoadedApp::Rust => {
            let recording = {
                let sightings = Arc::clone(&sightings);
                RustHandler::new(move |invocation: Invocation| {
                    sightings.record_changes(unix_ns(), &invocation);
                    std::future::ready(Ok(InvocationOutput::default()))
                })
            };
            let app = FunctionApp::new(Settings::from_pairs([(
                CONNECTION_SETTING.to_owned(),
                embedded_connection_string(),
            )]))
            .function(rust_definition(options)?, Arc::new(recording));
            (app, 0.0, None)
        }
        LoadedApp::Directory { app, load_ms } => {
            let tail = SightingsTail::start(app_dir.join(SIGHTINGS_FILE), Arc::clone(&sightings))?;
            (app, load_ms, Some(tail))
        }
    };
    let name = kind.function_name();
    let started_ns = unix_ns();
    let host = FunctionHost::start(
        app,
        HostOptions {
            embedded: Some(Arc::clone(store)),
            embedded_port: None,
            instance_name: INSTANCE_NAME.to_owned(),
        },
    )
    .await
    .map_err(|error| host_error("cannot start", &error))?;
    let measured = async {
        let progress = PhaseProgress::start(
            progress_phase(kind, false),
            n_documents,
            "changes",
            options.show_progress,
        );
        sightings
            .wait_for(
                0,
                n_documents,
                catch_up_timeout(n_documents),
                &progress,
                "the catch-up",
            )
            .await?;
        drop(progress);
        let catch_up = sightings.take_phase();
        let catchup_ns = catch_up
            .last_new_ns
            .unwrap_or(started_ns)
            .saturating_sub(started_ns);
        let first_ns = catch_up
            .first_invocation_ns
            .unwrap_or(started_ns)
            .saturating_sub(started_ns);

        let progress = PhaseProgress::start(
            progress_phase(kind, true),
            options.n_live_writes,
            "changes",
            options.show_progress,
        );
        let writing = Duration::from_secs_f64(
            options.n_live_writes as f64 / options.live_writes_per_s as f64,
        );
        let (written, ()) = tokio::try_join!(
            paced_writes(
                store,
                n_documents,
                options.n_live_writes,
                options.live_writes_per_s,
            ),
            sightings.wait_for(
                n_documents,
                n_total,
                writing + LIVE_GRACE,
                &progress,
                "the live writes",
            ),
        )?;
        drop(progress);
        let live = sightings.take_phase();
        let statuses = host.status().await;
        let failed_invocations = statuses
            .iter()
            .filter(|status| status.name == name)
            .map(|status| status.stats.n_failed.load(Ordering::Relaxed))
            .sum();
        Ok::<_, BenchError>((
            catch_up,
            catchup_ns,
            first_ns,
            live,
            written,
            failed_invocations,
        ))
    }
    .await;
    host.stop().await;
    if let Some(tail) = tail {
        tail.finish()?;
    }
    let (catch_up, catchup_ns, first_ns, live, written, failed_invocations) = measured?;

    let mut live_ms = Vec::with_capacity(written.writes.len());
    let mut live_from_submit_ms = Vec::with_capacity(written.writes.len());
    let mut live_commit_ms = Vec::with_capacity(written.writes.len());
    let mut live_seen_before_ack = 0;
    for write in &written.writes {
        let seen_ns = sightings.first_seen_ns(write.n).unwrap_or(write.ack_ns);
        if seen_ns < write.ack_ns {
            live_seen_before_ack += 1;
        }
        live_ms.push(Duration::from_nanos(seen_ns.saturating_sub(write.ack_ns)));
        live_from_submit_ms.push(Duration::from_nanos(
            seen_ns.saturating_sub(write.submit_ns),
        ));
        live_commit_ms.push(Duration::from_nanos(
            write.ack_ns.saturating_sub(write.submit_ns),
        ));
    }
    let catchup_elapsed = Duration::from_nanos(catchup_ns);
    let catchup_changes_per_s = per_second(n_documents, catchup_elapsed);
    let live_ms = LatencySummary::from_samples(live_ms);
    Ok(HandlerRun {
        load_ms,
        first_invocation_ms: milliseconds(Duration::from_nanos(first_ns)),
        n_changes: n_documents,
        catchup_seconds: catchup_elapsed.as_secs_f64(),
        catchup_changes_per_s,
        catchup_invocations: catch_up.n_invocations,
        catchup_mean_batch: mean(catch_up.n_changes, catch_up.n_invocations),
        catchup_duplicates: catch_up.n_duplicates,
        live_writes: written.writes.len() as u64,
        live_writes_per_s: per_second(written.writes.len() as u64, written.elapsed),
        live_invocations: live.n_invocations,
        live_mean_batch: mean(live.n_changes, live.n_invocations),
        live_duplicates: live.n_duplicates,
        throughput_target_met: catchup_changes_per_s >= kind.target_changes_per_s(),
        latency_target_met: live_ms.p99_ms <= kind.target_p99_ms(),
        live_ms,
        live_seen_before_ack,
        live_from_submit_ms: LatencySummary::from_samples(live_from_submit_ms),
        live_commit_ms: LatencySummary::from_samples(live_commit_ms),
        failed_invocations,
    })
}

/// The name progress lines give a phase.
fn progress_phase(kind: HandlerKind, live: bool) -> &'static str {
    match (kind, live) {
        (HandlerKind::Rust, false) => "rust-catchup",
        (HandlerKind::Rust, true) => "rust-live",
        (HandlerKind::JsonLines, false) => "json-lines-catchup",
        (HandlerKind::JsonLines, true) => "json-lines-live",
        (HandlerKind::Python, false) => "python-catchup",
        (HandlerKind::Python, true) => "python-live",
    }
}

fn mean(total: u64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { total as f64 / n as f64 }
}

/// How long a catch-up of `n_changes` may take: a minute, plus a millisecond per change.
fn catch_up_timeout(n_changes: u64) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(n_changes)
}

/// Wall-clock nanoseconds since the Unix epoch: the time base shared with the workers
/// (`time.time_ns()`).
fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The counts stay usable if a handler panicked while holding the lock.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The field of a change the Rust handler looks at.
#[derive(Deserialize)]
struct ChangeId<'a> {
    id: &'a str,
}

/// What the handler of one kind was given: when each document was first seen, and counts
/// per phase.
struct Sightings {
    /// Wall-clock ns of the invocation that first carried document `n` (0: not yet).
    first_seen_ns: Vec<AtomicU64>,
    /// Documents seen at least once.
    n_distinct: AtomicU64,
    phase: Mutex<PhaseCounts>,
}

/// The counts of one phase.
#[derive(Default)]
struct PhaseCounts {
    n_invocations: u64,
    n_changes: u64,
    n_duplicates: u64,
    /// Changes that are not benchmark documents (none expected).
    n_foreign: u64,
    first_invocation_ns: Option<u64>,
    /// The latest invocation that carried a document seen for the first time.
    last_new_ns: Option<u64>,
}

impl Sightings {
    fn new(n_documents: u64) -> Self {
        Sightings {
            first_seen_ns: (0..n_documents).map(|_| AtomicU64::new(0)).collect(),
            n_distinct: AtomicU64::new(0),
            phase: Mutex::new(PhaseCounts::default()),
        }
    }

    /// The Rust handler's invocation: the ids of its changes, seen at `at_ns`.
    fn record_changes(&self, at_ns: u64, invocation: &Invocation) {
        let ids = invocation.changes.iter().map(|change| {
            serde_json::from_str::<ChangeId<'_>>(change.json())
                .map(|change| change.id)
                .unwrap_or("")
        });
        self.record(at_ns, ids);
    }

    /// One invocation, started at `at_ns`, carrying these ids.
    fn record<'a>(&self, at_ns: u64, ids: impl Iterator<Item = &'a str>) {
        // 0 marks "not seen".
        let at_ns = at_ns.max(1);
        let (mut n_changes, mut n_new, mut n_duplicates, mut n_foreign) = (0, 0, 0, 0);
        for id in ids {
            n_changes += 1;
            let slot = order_number(id).and_then(|n| self.first_seen_ns.get(n as usize));
            match slot {
                None => n_foreign += 1,
                Some(slot) => {
                    if slot
                        .compare_exchange(0, at_ns, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                    {
                        n_new += 1;
                    } else {
                        n_duplicates += 1;
                    }
                }
            }
        }
        let mut phase = lock(&self.phase);
        phase.n_invocations += 1;
        phase.n_changes += n_changes;
        phase.n_duplicates += n_duplicates;
        phase.n_foreign += n_foreign;
        phase.first_invocation_ns = Some(phase.first_invocation_ns.map_or(at_ns, |t| t.min(at_ns)));
        if n_new > 0 {
            phase.last_new_ns = Some(phase.last_new_ns.map_or(at_ns, |t| t.max(at_ns)));
        }
        // Under the lock, so a waiter that sees the count sees the phase's times too.
        self.n_distinct.fetch_add(n_new, Ordering::Relaxed);
    }

    fn first_seen_ns(&self, n: u64) -> Option<u64> {
        let seen = self.first_seen_ns.get(n as usize)?.load(Ordering::Relaxed);
        (seen > 0).then_some(seen)
    }

    /// Waits until `target` distinct documents were seen; `progress` counts those beyond
    /// `already_seen`.
    async fn wait_for(
        &self,
        already_seen: u64,
        target: u64,
        timeout: Duration,
        progress: &PhaseProgress,
        what: &str,
    ) -> Result<(), BenchError> {
        let counter = progress.counter();
        let started = Instant::now();
        loop {
            let n_distinct = self.n_distinct.load(Ordering::Relaxed);
            counter.store(n_distinct.saturating_sub(already_seen), Ordering::Relaxed);
            if n_distinct >= target {
                return Ok(());
            }
            if started.elapsed() > timeout {
                let n_foreign = lock(&self.phase).n_foreign;
                return Err(BenchError::Timeout {
                    what: format!(
                        "{what}: the handler saw {n_distinct} of {target} documents ({n_foreign} unexpected changes)"
                    ),
                    timeout_ms: timeout.as_millis() as u64,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// This phase's counts; the next phase starts from zero.
    fn take_phase(&self) -> PhaseCounts {
        std::mem::take(&mut *lock(&self.phase))
    }
}

/// A thread that follows a sightings file and records each line's invocation.
struct SightingsTail {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl SightingsTail {
    fn start(path: PathBuf, sightings: Arc<Sightings>) -> Result<Self, BenchError> {
        let file = File::open(&path).map_err(|error| {
            BenchError::Processor(format!("cannot open {}: {error}", path.display()))
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || follow_sightings(file, &path, &sightings, &stop))
        };
        Ok(SightingsTail {
            stop,
            thread: Some(thread),
        })
    }

    /// Reads what is left and stops.
    fn finish(mut self) -> Result<(), BenchError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(Err(reason))) => Err(BenchError::Processor(reason)),
            Some(Err(_)) => Err(BenchError::Task(
                "the thread following the sightings file panicked".into(),
            )),
            Some(Ok(Ok(()))) | None => Ok(()),
        }
    }
}

impl Drop for SightingsTail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads `file` as it grows until `stop` is set and nothing is left, recording each complete
/// line `<ns> <id> <id> ...` as one invocation.
fn follow_sightings(
    mut file: File,
    path: &Path,
    sightings: &Sightings,
    stop: &AtomicBool,
) -> Result<(), String> {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; SIGHTINGS_READ_BYTES];
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let n_read = file
            .read(&mut chunk)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        if n_read == 0 {
            if stopping {
                return Ok(());
            }
            std::thread::sleep(POLL_INTERVAL);
            continue;
        }
        pending.extend_from_slice(&chunk[..n_read]);
        let mut consumed = 0;
        while let Some(end) = pending[consumed..].iter().position(|byte| *byte == b'\n') {
            let line = &pending[consumed..consumed + end];
            consumed += end + 1;
            let line = std::str::from_utf8(line)
                .map_err(|_| format!("{} has a line that is not UTF-8", path.display()))?;
            let mut words = line.split_ascii_whitespace();
            let at_ns = words
                .next()
                .and_then(|word| word.parse::<u64>().ok())
                .ok_or_else(|| {
                    format!(
                        "{} has a line that does not start with a time: {}",
                        path.display(),
                        line.chars().take(100).collect::<String>()
                    )
                })?;
            sightings.record(at_ns, words);
        }
        pending.drain(..consumed);
        if pending.len() > MAX_SIGHTING_LINE_BYTES {
            return Err(format!(
                "{} has a line longer than {MAX_SIGHTING_LINE_BYTES} bytes",
                path.display()
            ));
        }
    }
}

/// Writes documents `0..n_items` in atomic commits of 100, a few in flight.
async fn ingest(store: &Arc<Store>, n_items: u64, show_progress: bool) -> Result<(), BenchError> {
    let batch_size = MAX_TRANSACTION_OPERATIONS as u64;
    let n_batches = n_items.div_ceil(batch_size);
    let next_batch = Arc::new(AtomicU64::new(0));
    let progress = PhaseProgress::start("functions-ingest", n_items, "items", show_progress);
    let mut tasks = JoinSet::new();
    for _ in 0..INGEST_TRANSACTIONS_IN_FLIGHT {
        let (store, next_batch, n_done) = (
            Arc::clone(store),
            Arc::clone(&next_batch),
            progress.counter(),
        );
        tasks.spawn(async move {
            loop {
                let batch = next_batch.fetch_add(1, Ordering::Relaxed);
                if batch >= n_batches {
                    return Ok(());
                }
                let first = batch * batch_size;
                let end = (first + batch_size).min(n_items);
                let operations: Vec<TransactionOperation> = (first..end)
                    .map(|n| TransactionOperation {
                        container: CONTAINER.to_owned(),
                        write: ItemWrite::create(order_document(n)),
                    })
                    .collect();
                let n_ops = operations.len();
                let outcome = store.transaction(DATABASE, operations).await?;
                if !outcome.committed {
                    let reason = outcome
                        .results
                        .into_iter()
                        .find_map(|result| match result {
                            OperationResult::Failed(error) => Some(error.to_string()),
                            _ => None,
                        })
                        .unwrap_or_else(|| "no operation reported an error".to_owned());
                    return Err(BenchError::TransactionRejected { n_ops, reason });
                }
                n_done.fetch_add(end - first, Ordering::Relaxed);
            }
        });
    }
    join_all(tasks).await
}

async fn join_all(mut tasks: JoinSet<Result<(), BenchError>>) -> Result<(), BenchError> {
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(|e| BenchError::Task(e.to_string()));
        if let Err(error) = result.and_then(|r| r) {
            tasks.abort_all();
            return Err(error);
        }
    }
    Ok(())
}

/// One live write: its document number and wall-clock ns just before it was submitted and
/// just after it was acknowledged.
struct LiveWrite {
    n: u64,
    submit_ns: u64,
    ack_ns: u64,
}

struct PacedWrites {
    writes: Vec<LiveWrite>,
    /// From the first write's due time to the last write's submission.
    elapsed: Duration,
}

/// Writes documents `first..first + n_writes` at `per_s`, each its own task (at most
/// [`MAX_WRITES_IN_FLIGHT`]), so a slow commit does not hold back the next write.
async fn paced_writes(
    store: &Arc<Store>,
    first: u64,
    n_writes: u64,
    per_s: u64,
) -> Result<PacedWrites, BenchError> {
    let in_flight = Arc::new(Semaphore::new(MAX_WRITES_IN_FLIGHT));
    let started = tokio::time::Instant::now();
    let mut tasks: JoinSet<Result<LiveWrite, BenchError>> = JoinSet::new();
    let mut writes = Vec::with_capacity(n_writes as usize);
    for i in 0..n_writes {
        let due = started + Duration::from_secs_f64(i as f64 / per_s as f64);
        tokio::time::sleep_until(due).await;
        while let Some(joined) = tasks.try_join_next() {
            writes.push(joined.map_err(|e| BenchError::Task(e.to_string()))??);
        }
        let permit = Arc::clone(&in_flight)
            .acquire_owned()
            .await
            .map_err(|e| BenchError::Task(e.to_string()))?;
        let store = Arc::clone(store);
        let n = first + i;
        tasks.spawn(async move {
            let document = order_document(n);
            let submit_ns = unix_ns();
            store
                .write_item(DATABASE, CONTAINER, ItemWrite::create(document))
                .await?;
            let ack_ns = unix_ns();
            drop(permit);
            Ok(LiveWrite {
                n,
                submit_ns,
                ack_ns,
            })
        });
    }
    let elapsed = started.elapsed();
    while let Some(joined) = tasks.join_next().await {
        writes.push(joined.map_err(|e| BenchError::Task(e.to_string()))??);
    }
    Ok(PacedWrites { writes, elapsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(FunctionsBenchOptions::default().validate().is_ok());
        assert_eq!(FunctionsBenchOptions::default().effective_max_items(), 100);
    }

    #[test]
    fn an_out_of_range_max_items_is_named() {
        let options = FunctionsBenchOptions {
            max_items: Some(0),
            ..FunctionsBenchOptions::default()
        };
        let message = options.validate().unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid benchmark parameter: max items per invocation must be 1 to 10000, not 0"
        );
    }

    #[test]
    fn sightings_count_first_deliveries_and_duplicates() {
        let sightings = Sightings::new(3);
        sightings.record(10, ["order-000000000", "order-000000001"].into_iter());
        sightings.record(
            20,
            ["order-000000001", "customer-1", "order-000000002"].into_iter(),
        );
        assert_eq!(sightings.n_distinct.load(Ordering::Relaxed), 3);
        assert_eq!(sightings.first_seen_ns(1), Some(10));
        assert_eq!(sightings.first_seen_ns(2), Some(20));
        let phase = sightings.take_phase();
        assert_eq!(
            (
                phase.n_invocations,
                phase.n_changes,
                phase.n_duplicates,
                phase.n_foreign
            ),
            (2, 5, 1, 1)
        );
        assert_eq!(
            (phase.first_invocation_ns, phase.last_new_ns),
            (Some(10), Some(20))
        );
        assert_eq!(sightings.take_phase().n_invocations, 0);
    }

    #[test]
    fn the_manifest_and_the_python_app_carry_the_trigger_options() {
        let options = FunctionsBenchOptions {
            max_items: Some(500),
            ..FunctionsBenchOptions::default()
        };
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            json_lines_manifest(&options),
        )
        .expect("the manifest is written");
        let parsed = tributary_functions::manifest::Manifest::load(dir.path())
            .expect("the manifest parses")
            .expect("the manifest exists");
        let (definition, _) = parsed.functions[0].definition().expect("a valid function");
        assert_eq!(definition.trigger.max_items_per_invocation, Some(500));
        assert!(definition.trigger.start_from_beginning);
        assert_eq!(
            definition.trigger.lease_acquire_interval,
            Duration::from_millis(LEASE_ACQUIRE_INTERVAL_MS)
        );
        let app = python_function_app(&FunctionsBenchOptions::default());
        assert!(
            app.contains("start_from_beginning=True, lease_acquire_interval=200)"),
            "{app}"
        );
        assert!(app.contains("def bench_python(documents"), "{app}");
    }

    #[test]
    fn columns_align_right_after_the_first() {
        let text = columns(&[
            vec!["a".into(), "1".into()],
            vec!["long".into(), "1,000".into()],
        ]);
        assert_eq!(text, "a         1\nlong  1,000\n");
    }
}
