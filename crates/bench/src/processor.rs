//! `tributary bench processor`: the change feed processor (`tributary-processor`) end to end,
//! on the embedded store and over loopback HTTP, with one host and with two host processes.
//!
//! Every phase uses a container of `n_feed_ranges` feed ranges (one lease each) and a
//! handler that does nothing but record what it saw: the id of each change and, for the
//! documents of the live phases, the time from the write to the handler call. Documents are
//! the 1 KB orders of [`crate::workload`]; a live document also carries `"sentNs"`, the time
//! just before its write was submitted.
//!
//! 1. **embedded**: `n_items` documents are written to a fresh store (atomic commits of
//!    100, 4 in flight), then one processor starts on [`EmbeddedFeed`] with its leases in
//!    an [`EmbeddedLeaseContainer`] of the same store, from the beginning. *Catch-up* is the
//!    time from `start` to the handler having seen every document. Then, with the processor
//!    caught up, a writer submits `n_live_writes` documents at `live_writes_per_s` (each
//!    write its own task, so a slow commit does not delay the next) and *live* is the
//!    write→handler latency of each (it includes the commit's fsync).
//! 2. **HTTP**: the same against `tributary serve` started in this process on a fresh store
//!    (plain HTTP on `127.0.0.1`), the processor reading through [`RemoteFeed`] with the
//!    long-poll extension and keeping its leases in a [`RemoteLeaseContainer`]. Documents are
//!    written into the server's store directly, so the figures are those of the feed path.
//! 3. **failover** (only with a [`ProcessorBenchOptions::host_command`]): a fresh server, the
//!    `n_items` documents, then two host processes (`h1`, `h2`: the host command, which runs
//!    [`run_processor_host`]) with short lease intervals catch up together. Live writes then
//!    stream while `h1` is killed with SIGKILL: *kill→resumed* is the time from the kill to
//!    the first handler call on a lease `h1` held (expected about the expiration interval
//!    plus an acquire interval). A third host `h3` joins, and `h2` gets SIGTERM, on which it
//!    stops its processor (checkpoint, release): *stop→resumed* is the time from the signal
//!    to the first handler call on one of its leases elsewhere (expected at most an acquire
//!    interval). Hosts report what they handle as JSON lines on stdout ([`HostEvent`]);
//!    times across processes are wall-clock nanoseconds of this one machine.
//!
//! A host can also print the documents each handler call got
//! ([`ProcessorHostOptions::report_documents`]): the `tributary` command's multi-process test
//! (`crates/cli/tests/cli/processor_processes.rs`) runs hosts that way.
//!
//! Delivery is at least once: every phase checks that every document was seen and counts
//! the duplicates (a change delivered again after a lease moved).

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tributary_client::CosmosClient;
use tributary_processor::embedded::{EmbeddedFeed, EmbeddedLeaseContainer};
use tributary_processor::remote::{RemoteFeed, RemoteLeaseContainer};
use tributary_processor::{
    Change, ChangeFeed, ChangeFeedProcessorBuilder, HandlerError, LeaseContainer, MAX_MAX_ITEMS,
    StartFrom,
};
use tributary_server::{AccountKeys, Server, ServerConfig};
use tributary_store::{
    ContainerDefinition, Durability, ItemWrite, MAX_FEED_RANGES, MAX_TRANSACTION_OPERATIONS,
    OperationResult, Store, StoreOptions, TransactionOperation,
};
use tributary_wire::auth::EMULATOR_KEY;

use crate::error::BenchError;
use crate::latency::{LatencySummary, milliseconds, per_second};
use crate::machine::{self, MachineInfo};
use crate::progress::PhaseProgress;
use crate::table::{self, Row};
use crate::workload::{
    ITEM_BYTES, N_PARTITION_KEYS, PARTITION_KEY_PATH, order_document, order_number,
};
use crate::{durability_name, new_store_dir};

/// The benchmark's database.
const DATABASE: &str = "bench";
/// The monitored container.
const CONTAINER: &str = "orders";
/// The lease container.
const LEASE_CONTAINER: &str = "leases";
/// The processor's name (the lease prefix).
const PROCESSOR_NAME: &str = "bench-processor";
/// The document field holding the write's submit time, in nanoseconds.
const SENT_FIELD: &str = "sentNs";
/// Transactions kept in flight while the documents to catch up on are written.
const INGEST_TRANSACTIONS_IN_FLIGHT: usize = 4;
/// Most paced writes in flight at once.
const MAX_WRITES_IN_FLIGHT: usize = 256;
/// How often a waiting phase looks at what the handler has seen.
const POLL_INTERVAL: Duration = Duration::from_millis(2);
/// How long the handler may take to see the last live writes once the writer is done.
const LIVE_GRACE: Duration = Duration::from_secs(30);
/// How long a host process may take to start, exit, or get its share of the leases.
const HOST_GRACE: Duration = Duration::from_secs(30);
/// How long live writes stream before a host is killed (every lease in steady state).
const FAILOVER_SETTLE: Duration = Duration::from_secs(1);
/// Host events buffered between a host's stdout reader and the benchmark.
const HOST_EVENT_QUEUE: usize = 4096;
/// Longest host event line read.
const MAX_HOST_LINE_BYTES: usize = 16 * 1024 * 1024;
/// Most documents a processor benchmark writes per phase.
pub const MAX_PROCESSOR_CHANGES: u64 = 10_000_000;
/// Highest paced write rate.
pub const MAX_LIVE_WRITES_PER_S: u64 = 100_000;
/// Shortest and longest lease interval of the failover phase.
pub const LEASE_INTERVAL_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=600_000;

/// The sizes of a processor benchmark run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessorBenchOptions {
    /// Documents written before the processor starts (the catch-up).
    pub n_items: u64,
    /// Documents written at a steady rate while the processor runs (the live phases).
    pub n_live_writes: u64,
    /// Rate of the live writes.
    pub live_writes_per_s: u64,
    /// Most changes per handler call.
    pub max_items: usize,
    /// Feed ranges of the container (one lease each).
    pub n_feed_ranges: u32,
    /// Lease acquire interval of the failover hosts.
    pub acquire_interval_ms: u64,
    /// Lease renew interval of the failover hosts.
    pub renew_interval_ms: u64,
    /// Lease expiration interval of the failover hosts.
    pub expiration_interval_ms: u64,
    /// When commits are acknowledged.
    #[serde(serialize_with = "serialize_durability")]
    pub durability: Durability,
    /// Where the temporary store directories are made (`None`: the system's temp directory).
    pub parent_dir: Option<PathBuf>,
    /// The program and leading arguments that run [`run_processor_host`] in a child process,
    /// which appends `--config <json>` ([`ProcessorHostOptions`]); `None` skips the failover
    /// phase.
    #[serde(skip)]
    pub host_command: Option<Vec<OsString>>,
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

impl Default for ProcessorBenchOptions {
    fn default() -> Self {
        ProcessorBenchOptions {
            n_items: 200_000,
            n_live_writes: 20_000,
            live_writes_per_s: 2_000,
            max_items: 1000,
            n_feed_ranges: 4,
            acquire_interval_ms: 1000,
            renew_interval_ms: 1000,
            expiration_interval_ms: 3000,
            durability: Durability::Fsync,
            parent_dir: None,
            host_command: None,
            show_progress: false,
        }
    }
}

impl ProcessorBenchOptions {
    /// Checks every size against its limit.
    ///
    /// # Errors
    /// [`BenchError::InvalidParameter`] naming the first size out of range.
    pub fn validate(&self) -> Result<(), BenchError> {
        let interval = |name: &str, value: u64| {
            (
                LEASE_INTERVAL_MS_RANGE.contains(&value),
                format!(
                    "{name} interval must be {} to {} ms, not {value}",
                    LEASE_INTERVAL_MS_RANGE.start(),
                    LEASE_INTERVAL_MS_RANGE.end()
                ),
            )
        };
        let checks: [(bool, String); 9] = [
            (
                (1..=MAX_PROCESSOR_CHANGES).contains(&self.n_items),
                format!(
                    "items must be 1 to {MAX_PROCESSOR_CHANGES}, not {}",
                    self.n_items
                ),
            ),
            (
                (1..=MAX_PROCESSOR_CHANGES).contains(&self.n_live_writes),
                format!(
                    "live writes must be 1 to {MAX_PROCESSOR_CHANGES}, not {}",
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
                (1..=MAX_MAX_ITEMS).contains(&self.max_items),
                format!(
                    "max items per batch must be 1 to {MAX_MAX_ITEMS}, not {}",
                    self.max_items
                ),
            ),
            (
                (1..=MAX_FEED_RANGES as u32).contains(&self.n_feed_ranges),
                format!(
                    "feed ranges must be 1 to {MAX_FEED_RANGES}, not {}",
                    self.n_feed_ranges
                ),
            ),
            interval("acquire", self.acquire_interval_ms),
            interval("renew", self.renew_interval_ms),
            interval("expiration", self.expiration_interval_ms),
            (
                self.expiration_interval_ms > self.renew_interval_ms,
                format!(
                    "the expiration interval ({} ms) must be longer than the renew interval ({} ms)",
                    self.expiration_interval_ms, self.renew_interval_ms
                ),
            ),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(BenchError::InvalidParameter(message)),
            None => Ok(()),
        }
    }
}

/// One host catching up and then following live writes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessorRun {
    /// Distinct changes handled per second during the catch-up (from `start`).
    pub catchup_changes_per_s: f64,
    /// From `start` to the handler having seen every document, ms.
    pub catchup_ms: f64,
    /// Handler calls during the catch-up.
    pub catchup_batches: u64,
    /// Changes handled more than once during the catch-up.
    pub catchup_duplicates: u64,
    /// Time between two handler calls of one lease during the catch-up (a feed read, the
    /// handler and a checkpoint).
    pub catchup_batch_cycle_ms: LatencySummary,
    /// The live writes' achieved rate.
    pub live_writes_per_s: f64,
    /// Handler calls during the live phase (each followed by a checkpoint).
    pub live_batches: u64,
    /// Changes handled more than once during the live phase.
    pub live_duplicates: u64,
    /// Median write→handler latency.
    pub live_p50_ms: f64,
    /// 99th percentile write→handler latency.
    pub live_p99_ms: f64,
    /// Write→handler latency, all figures.
    pub live_ms: LatencySummary,
    /// The live writes' own commit latency (submit to acknowledgement, fsync included): the
    /// part of write→handler the store spends before the processor can see the change.
    pub live_write_commit_ms: LatencySummary,
}

/// Two host processes: catch-up together, then a crash and a graceful stop.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailoverReport {
    /// Distinct changes handled per second by both hosts during the catch-up (from spawning
    /// them).
    pub catchup_changes_per_s: f64,
    /// From spawning the hosts to every document handled, ms.
    pub catchup_ms: f64,
    /// Changes each host handled during the catch-up (`h1`, `h2`).
    pub catchup_changes_by_host: Vec<u64>,
    /// Changes handled more than once during the catch-up.
    pub catchup_duplicates: u64,
    /// Time between two handler calls of one lease on one host during the catch-up.
    pub catchup_batch_cycle_ms: LatencySummary,
    /// The leases `h1` held when it was killed.
    pub killed_leases: Vec<String>,
    /// From SIGKILL of `h1` to the first handler call on one of its leases by `h2`, ms.
    pub kill_to_resumed_ms: f64,
    /// From SIGKILL of `h1` until every one of its leases was handled by `h2` again, ms.
    pub kill_to_all_resumed_ms: f64,
    /// The leases `h2` held when it got SIGTERM.
    pub stopped_leases: Vec<String>,
    /// From SIGTERM of `h2` to the first handler call on one of its leases by `h3`, ms.
    pub stop_to_resumed_ms: f64,
    /// From SIGTERM of `h2` until every one of its leases was handled by `h3` again, ms.
    pub stop_to_all_resumed_ms: f64,
    /// From SIGTERM of `h2` to it reporting its processor stopped, ms.
    pub stop_ms: f64,
    /// Documents written while hosts were killed, started and stopped.
    pub live_writes: u64,
    /// Changes handled more than once during that time.
    pub live_duplicates: u64,
    /// Write→handler latency during that time (including the changes that waited for a
    /// lease to move).
    pub live_ms: LatencySummary,
}

/// What a processor benchmark measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProcessorBenchReport {
    /// The machine it ran on.
    pub machine: MachineInfo,
    /// The sizes it ran with.
    pub parameters: ProcessorBenchOptions,
    /// Serialized size of each catch-up document.
    pub item_bytes: usize,
    /// Distinct partition key values.
    pub n_partition_keys: u64,
    /// One processor on the embedded store.
    pub embedded: ProcessorRun,
    /// One processor over loopback HTTP with long-poll.
    pub http: ProcessorRun,
    /// Two host processes over HTTP (absent without a host command).
    pub failover: Option<FailoverReport>,
    /// This process's peak resident memory (store, server, processors), MiB.
    pub peak_rss_mb: Option<f64>,
}

impl ProcessorBenchReport {
    /// The report as a table for humans.
    pub fn render_text(&self) -> String {
        let p = &self.parameters;
        let mut out = format!(
            "tributary bench processor: {} changes to catch up on + {} live writes at {}/s, {}-byte items, {} partition keys, {} feed ranges (leases), up to {} changes per batch, durability {}\n",
            p.n_items,
            p.n_live_writes,
            p.live_writes_per_s,
            self.item_bytes,
            self.n_partition_keys,
            p.n_feed_ranges,
            p.max_items,
            durability_name(p.durability),
        );
        out.push_str(&format!("machine: {}\n\n", self.machine.describe()));
        let mut rows = Vec::new();
        for (name, run) in [
            ("embedded", &self.embedded),
            ("HTTP (long-poll)", &self.http),
        ] {
            rows.push(Row {
                phase: format!("{name} catch-up, 1 host (batch cycle)"),
                rate: format!("{} changes/s", table::thousands(run.catchup_changes_per_s)),
                latency: &run.catchup_batch_cycle_ms,
            });
            rows.push(Row {
                phase: format!("{name} live, 1 host (write→handler)"),
                rate: format!("{} writes/s", table::thousands(run.live_writes_per_s)),
                latency: &run.live_ms,
            });
            rows.push(Row {
                phase: format!("{name} live, the writes' own commit"),
                rate: String::new(),
                latency: &run.live_write_commit_ms,
            });
        }
        if let Some(failover) = &self.failover {
            rows.push(Row {
                phase: "HTTP catch-up, 2 host processes (batch cycle)".into(),
                rate: format!(
                    "{} changes/s",
                    table::thousands(failover.catchup_changes_per_s)
                ),
                latency: &failover.catchup_batch_cycle_ms,
            });
            rows.push(Row {
                phase: "HTTP live across kill and stop (write→handler)".into(),
                rate: String::new(),
                latency: &failover.live_ms,
            });
        }
        out.push_str(&table::render(&rows));
        out.push_str(&format!(
            "\nduplicates (catch-up/live): embedded {}/{}, HTTP {}/{}",
            self.embedded.catchup_duplicates,
            self.embedded.live_duplicates,
            self.http.catchup_duplicates,
            self.http.live_duplicates
        ));
        match &self.failover {
            Some(f) => {
                out.push_str(&format!(
                    ", 2 hosts {}/{}\n",
                    f.catchup_duplicates, f.live_duplicates
                ));
                out.push_str(&format!(
                    "2-host catch-up: {} changes by h1, {} by h2\n",
                    f.catchup_changes_by_host.first().unwrap_or(&0),
                    f.catchup_changes_by_host.get(1).unwrap_or(&0),
                ));
                out.push_str(&format!(
                    "SIGKILL of h1 ({} leases): first of its leases processed again after {:.0} ms, all after {:.0} ms (expiration {} + acquire {} = {} ms)\n",
                    f.killed_leases.len(),
                    f.kill_to_resumed_ms,
                    f.kill_to_all_resumed_ms,
                    p.expiration_interval_ms,
                    p.acquire_interval_ms,
                    p.expiration_interval_ms + p.acquire_interval_ms
                ));
                out.push_str(&format!(
                    "SIGTERM of h2 ({} leases): first of its leases processed again after {:.0} ms, all after {:.0} ms (acquire interval {} ms); h2 stopped in {:.0} ms\n",
                    f.stopped_leases.len(),
                    f.stop_to_resumed_ms,
                    f.stop_to_all_resumed_ms,
                    p.acquire_interval_ms,
                    f.stop_ms
                ));
            }
            None => out.push_str("\nfailover phase not run (no host command)\n"),
        }
        out.push_str(&format!(
            "peak RSS (this process: stores, servers, in-process processors): {}\n",
            table::mebibytes(self.peak_rss_mb)
        ));
        out
    }
}

/// Runs the processor benchmark; the failover phase runs only with a host command.
///
/// Call it inside a multi-threaded tokio runtime.
///
/// # Errors
/// [`BenchError::InvalidParameter`] for bad options; [`BenchError::Store`],
/// [`BenchError::Serve`] or [`BenchError::Processor`] if a component fails;
/// [`BenchError::Timeout`] if the handler does not see every document in time;
/// [`BenchError::HostProcess`] if a host process cannot be run or misbehaves.
pub async fn run_processor_bench(
    options: &ProcessorBenchOptions,
) -> Result<ProcessorBenchReport, BenchError> {
    options.validate()?;
    let embedded = run_embedded(options).await?;
    let http = run_http(options).await?;
    let failover = match &options.host_command {
        Some(command) => Some(run_failover(options, command).await?),
        None => None,
    };
    Ok(ProcessorBenchReport {
        machine: MachineInfo::detect(),
        parameters: options.clone(),
        item_bytes: ITEM_BYTES,
        n_partition_keys: N_PARTITION_KEYS,
        embedded,
        http,
        failover,
        peak_rss_mb: machine::peak_rss_mb(),
    })
}

/// A fresh store in a temporary directory with the benchmark's database and container.
async fn open_store(
    options: &ProcessorBenchOptions,
) -> Result<(tempfile::TempDir, Arc<Store>), BenchError> {
    let dir = new_store_dir(options.parent_dir.as_deref())?;
    let store = Arc::new(Store::open(
        dir.path(),
        StoreOptions {
            durability: options.durability,
            ..StoreOptions::default()
        },
    )?);
    store.create_database(DATABASE).await?;
    store
        .create_container(
            DATABASE,
            ContainerDefinition::new(CONTAINER, PARTITION_KEY_PATH),
            options.n_feed_ranges,
        )
        .await?;
    Ok((dir, store))
}

async fn run_embedded(options: &ProcessorBenchOptions) -> Result<ProcessorRun, BenchError> {
    let (_dir, store) = open_store(options).await?;
    ingest(
        &store,
        options.n_items,
        "embedded-ingest",
        options.show_progress,
    )
    .await?;
    let feed = Arc::new(EmbeddedFeed::new(Arc::clone(&store), DATABASE, CONTAINER));
    let leases = EmbeddedLeaseContainer::open(Arc::clone(&store), DATABASE, LEASE_CONTAINER)
        .await
        .map_err(processor_error)?;
    let run = run_one_host(
        &store,
        feed,
        Arc::new(leases),
        options,
        ["embedded-catchup", "embedded-live"],
    )
    .await;
    store.close();
    run
}

/// Starts the server in this process on `store`; returns its address and a sender that
/// stops it.
async fn start_server(
    dir: &tempfile::TempDir,
    store: &Arc<Store>,
) -> Result<(SocketAddr, RunningServer), BenchError> {
    let config = ServerConfig {
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        keys: AccountKeys::emulator(),
        tls: None,
        data_dir: dir.path().to_owned(),
        ..ServerConfig::default()
    };
    let server = Server::bind(config, Arc::clone(store)).await?;
    let addr = server.local_addr().map_err(|source| BenchError::Connect {
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        source,
    })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        // A dropped sender stops the server too.
        let _ = stopped.await;
    }));
    Ok((addr, RunningServer { stop, serving }))
}

struct RunningServer {
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), tributary_server::ServeError>>,
}

impl RunningServer {
    async fn stop(self) -> Result<(), BenchError> {
        let _ = self.stop.send(());
        self.serving
            .await
            .map_err(|e| BenchError::Task(e.to_string()))??;
        Ok(())
    }
}

fn connection_string(addr: SocketAddr) -> String {
    format!(
        "AccountEndpoint=http://127.0.0.1:{}/;AccountKey={EMULATOR_KEY};",
        addr.port()
    )
}

async fn run_http(options: &ProcessorBenchOptions) -> Result<ProcessorRun, BenchError> {
    let (dir, store) = open_store(options).await?;
    ingest(
        &store,
        options.n_items,
        "http-ingest",
        options.show_progress,
    )
    .await?;
    let (addr, server) = start_server(&dir, &store).await?;
    let run = async {
        let client = CosmosClient::from_connection_string(&connection_string(addr))
            .map_err(processor_error)?;
        let feed = Arc::new(RemoteFeed::new(client.clone(), DATABASE, CONTAINER, true));
        let leases = RemoteLeaseContainer::open(client, DATABASE, LEASE_CONTAINER)
            .await
            .map_err(processor_error)?;
        run_one_host(
            &store,
            feed,
            Arc::new(leases),
            options,
            ["http-catchup", "http-live"],
        )
        .await
    }
    .await;
    let stopped = server.stop().await;
    store.close();
    let run = run?;
    stopped?;
    Ok(run)
}

/// One processor: catch up on `n_items` documents, then follow `n_live_writes` paced writes.
async fn run_one_host(
    store: &Arc<Store>,
    feed: Arc<dyn ChangeFeed>,
    leases: Arc<dyn LeaseContainer>,
    options: &ProcessorBenchOptions,
    phase_names: [&'static str; 2],
) -> Result<ProcessorRun, BenchError> {
    let n_total = options.n_items + options.n_live_writes;
    let recorder = Arc::new(Recorder::new(n_total));
    let handler_recorder = Arc::clone(&recorder);
    let mut processor = ChangeFeedProcessorBuilder::new(PROCESSOR_NAME, feed, leases)
        .instance_name("bench-host")
        .start_from(StartFrom::Beginning)
        .max_items(options.max_items)
        .handler(move |context, changes| {
            handler_recorder.record(&context.lease_token, &changes);
            std::future::ready(Ok::<(), HandlerError>(()))
        })
        .build()
        .map_err(processor_error)?;
    let measured = async {
        let started = Instant::now();
        processor.start().await.map_err(processor_error)?;
        let progress = PhaseProgress::start(
            phase_names[0],
            options.n_items,
            "changes",
            options.show_progress,
        );
        let deadline = catch_up_timeout(options.n_items);
        recorder
            .wait_for(options.n_items, deadline, &progress, "the catch-up")
            .await?;
        drop(progress);
        let catch_up = recorder.take_phase();
        let catchup_elapsed = catch_up
            .last_new_at
            .map_or(started.elapsed(), |at| at.duration_since(started));

        let progress = PhaseProgress::start(
            phase_names[1],
            options.n_live_writes,
            "changes",
            options.show_progress,
        );
        let origin = recorder.origin;
        let written = paced_writes(
            store,
            options.n_items,
            options.n_live_writes,
            options.live_writes_per_s,
            Arc::new(move || origin.elapsed().as_nanos() as u64),
            Arc::new(AtomicBool::new(false)),
        )
        .await?;
        recorder
            .wait_for(n_total, LIVE_GRACE, &progress, "the live writes")
            .await?;
        let live = recorder.take_phase();
        Ok::<_, BenchError>(ProcessorRun {
            catchup_changes_per_s: per_second(options.n_items, catchup_elapsed),
            catchup_ms: milliseconds(catchup_elapsed),
            catchup_batches: catch_up.n_batches,
            catchup_duplicates: catch_up.n_duplicates,
            catchup_batch_cycle_ms: LatencySummary::from_samples(catch_up.batch_cycles),
            live_writes_per_s: per_second(written.n_written, written.elapsed),
            live_batches: live.n_batches,
            live_duplicates: live.n_duplicates,
            live_p50_ms: 0.0,
            live_p99_ms: 0.0,
            live_ms: LatencySummary::from_samples(live.latencies),
            live_write_commit_ms: LatencySummary::from_samples(written.commit_latencies),
        })
    }
    .await;
    processor.stop().await;
    let mut run = measured?;
    run.live_p50_ms = run.live_ms.p50_ms;
    run.live_p99_ms = run.live_ms.p99_ms;
    Ok(run)
}

/// How long a catch-up of `n_items` may take: a minute, plus a millisecond per change.
fn catch_up_timeout(n_items: u64) -> Duration {
    Duration::from_secs(60) + Duration::from_millis(n_items)
}

fn processor_error(error: impl std::fmt::Display) -> BenchError {
    BenchError::Processor(error.to_string())
}

/// The fields of a change the handler looks at.
#[derive(Deserialize)]
struct SeenChange<'a> {
    id: &'a str,
    #[serde(rename = "sentNs")]
    sent_ns: Option<u64>,
}

/// What the in-process handler saw.
struct Recorder {
    /// The origin of the documents' `sentNs`.
    origin: Instant,
    /// Deliveries of document `n`.
    deliveries: Vec<AtomicU32>,
    /// Documents delivered at least once.
    n_distinct: AtomicU64,
    state: Mutex<PhaseSamples>,
}

/// What the handler saw during one phase.
#[derive(Default)]
struct PhaseSamples {
    n_batches: u64,
    n_duplicates: u64,
    n_foreign: u64,
    latencies: Vec<Duration>,
    batch_cycles: Vec<Duration>,
    last_call: HashMap<String, Instant>,
    last_new_at: Option<Instant>,
}

impl Recorder {
    fn new(n_documents: u64) -> Self {
        Recorder {
            origin: Instant::now(),
            deliveries: (0..n_documents).map(|_| AtomicU32::new(0)).collect(),
            n_distinct: AtomicU64::new(0),
            state: Mutex::new(PhaseSamples::default()),
        }
    }

    fn record(&self, lease: &str, changes: &[Change]) {
        let now = Instant::now();
        let now_ns = now.duration_since(self.origin).as_nanos() as u64;
        let mut latencies = Vec::new();
        let (mut n_new, mut n_duplicates, mut n_foreign) = (0, 0, 0);
        for change in changes {
            let Ok(seen) = serde_json::from_str::<SeenChange<'_>>(change.json()) else {
                n_foreign += 1;
                continue;
            };
            let counter = order_number(seen.id).and_then(|n| self.deliveries.get(n as usize));
            let Some(counter) = counter else {
                n_foreign += 1;
                continue;
            };
            if counter.fetch_add(1, Ordering::Relaxed) == 0 {
                n_new += 1;
            } else {
                n_duplicates += 1;
            }
            if let Some(sent_ns) = seen.sent_ns {
                latencies.push(Duration::from_nanos(now_ns.saturating_sub(sent_ns)));
            }
        }
        let mut state = lock(&self.state);
        self.n_distinct.fetch_add(n_new, Ordering::Relaxed);
        state.n_batches += 1;
        state.n_duplicates += n_duplicates;
        state.n_foreign += n_foreign;
        state.latencies.extend(latencies);
        if let Some(previous) = state.last_call.insert(lease.to_owned(), now) {
            state.batch_cycles.push(now.duration_since(previous));
        }
        if n_new > 0 {
            state.last_new_at = Some(now);
        }
    }

    /// Waits until `target` distinct documents were seen.
    async fn wait_for(
        &self,
        target: u64,
        timeout: Duration,
        progress: &PhaseProgress,
        what: &str,
    ) -> Result<(), BenchError> {
        let counter = progress.counter();
        let started = Instant::now();
        loop {
            let n_distinct = self.n_distinct.load(Ordering::Relaxed);
            counter.store(n_distinct, Ordering::Relaxed);
            if n_distinct >= target {
                return Ok(());
            }
            if started.elapsed() > timeout {
                let n_foreign = lock(&self.state).n_foreign;
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

    /// This phase's samples; the next phase starts with none.
    fn take_phase(&self) -> PhaseSamples {
        std::mem::take(&mut *lock(&self.state))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The samples stay usable if a handler panicked while holding the lock.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Writes documents `0..n_items` in atomic commits of 100, a few in flight.
async fn ingest(
    store: &Arc<Store>,
    n_items: u64,
    phase: &'static str,
    show_progress: bool,
) -> Result<(), BenchError> {
    let batch_size = MAX_TRANSACTION_OPERATIONS as u64;
    let n_batches = n_items.div_ceil(batch_size);
    let next_batch = Arc::new(AtomicU64::new(0));
    let progress = PhaseProgress::start(phase, n_items, "items", show_progress);
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

struct PacedWrites {
    n_written: u64,
    elapsed: Duration,
    /// Each write's submit→acknowledgement time.
    commit_latencies: Vec<Duration>,
}

/// Writes documents `first..first + limit` at `per_s`, each stamped with `stamp()` in
/// `sentNs` just before it is submitted, until `stop` is set. Each write is its own task
/// (at most [`MAX_WRITES_IN_FLIGHT`]), so a slow commit does not hold back the next write.
async fn paced_writes(
    store: &Arc<Store>,
    first: u64,
    limit: u64,
    per_s: u64,
    stamp: Arc<dyn Fn() -> u64 + Send + Sync>,
    stop: Arc<AtomicBool>,
) -> Result<PacedWrites, BenchError> {
    let in_flight = Arc::new(Semaphore::new(MAX_WRITES_IN_FLIGHT));
    let started = tokio::time::Instant::now();
    let mut tasks: JoinSet<Result<(), BenchError>> = JoinSet::new();
    let mut n_written = 0;
    let commit_latencies: Arc<std::sync::Mutex<Vec<Duration>>> = Arc::default();
    for i in 0..limit {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let due = started + Duration::from_secs_f64(i as f64 / per_s as f64);
        tokio::time::sleep_until(due).await;
        while let Some(joined) = tasks.try_join_next() {
            joined.map_err(|e| BenchError::Task(e.to_string()))??;
        }
        let permit = Arc::clone(&in_flight)
            .acquire_owned()
            .await
            .map_err(|e| BenchError::Task(e.to_string()))?;
        let (store, stamp) = (Arc::clone(store), Arc::clone(&stamp));
        let commit_latencies = Arc::clone(&commit_latencies);
        tasks.spawn(async move {
            let mut document = order_document(first + i);
            document[SENT_FIELD] = serde_json::Value::from(stamp());
            let submitted = Instant::now();
            store
                .write_item(DATABASE, CONTAINER, ItemWrite::create(document))
                .await?;
            let took = submitted.elapsed();
            commit_latencies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(took);
            drop(permit);
            Ok(())
        });
        n_written += 1;
    }
    let elapsed = started.elapsed();
    join_all(tasks).await?;
    let commit_latencies = std::mem::take(
        &mut *commit_latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    Ok(PacedWrites {
        n_written,
        elapsed,
        commit_latencies,
    })
}

/// Wall-clock nanoseconds since the Unix epoch: the time base shared by host processes.
fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

// ---------------------------------------------------------------------------------------
// Host processes.

/// What a host process is told (as `--config <json>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessorHostOptions {
    /// The server's connection string.
    pub connection_string: String,
    /// This host's instance name.
    pub instance: String,
    /// Most changes per handler call.
    pub max_items: usize,
    /// Lease acquire interval.
    pub acquire_interval_ms: u64,
    /// Lease renew interval.
    pub renew_interval_ms: u64,
    /// Lease expiration interval.
    pub expiration_interval_ms: u64,
    /// Report every handler call as [`HostEvent::Delivered`] (the documents themselves, the
    /// batch's continuations, a batch number) instead of [`HostEvent::Batch`], and failures
    /// as [`HostEvent::Error`]: what a test of delivery across processes checks.
    #[serde(default)]
    pub report_documents: bool,
    /// With `report_documents`, how long the handler works on a batch after printing it
    /// (the window in which a crash makes the batch be delivered again).
    #[serde(default)]
    pub handler_delay_ms: u64,
}

/// One line a host process prints on stdout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum HostEvent {
    /// The processor started.
    Started {
        /// Wall-clock ns.
        at_ns: u64,
    },
    /// The host took a lease.
    Acquired {
        /// The lease token.
        lease: String,
        /// Wall-clock ns.
        at_ns: u64,
    },
    /// The host stopped working on a lease.
    Released {
        /// The lease token.
        lease: String,
        /// Wall-clock ns.
        at_ns: u64,
        /// Why ([`tributary_processor::ReleaseReason`], debug-formatted).
        #[serde(default)]
        reason: String,
    },
    /// The handler was called.
    Batch {
        /// The lease token.
        lease: String,
        /// Wall-clock ns of the call.
        at_ns: u64,
        /// The document numbers of the changes.
        ids: Vec<u64>,
        /// Write→handler ns of the changes that carry `sentNs`.
        latency_ns: Vec<u64>,
    },
    /// The handler was called (with [`ProcessorHostOptions::report_documents`]); printed and
    /// flushed by the handler, so before the batch's checkpoint.
    Delivered {
        /// This host's instance name.
        instance: String,
        /// The handler calls of this process before this one.
        batch: u64,
        /// The lease token.
        lease: String,
        /// The continuation the batch was read from (`None`: the lease's start position).
        from: Option<String>,
        /// The continuation after the batch.
        to: String,
        /// Wall-clock ns of the call.
        at_ns: u64,
        /// The changes, as the feed returned them (with `_lsn`).
        documents: Vec<serde_json::Value>,
    },
    /// The processor reported a failure (with [`ProcessorHostOptions::report_documents`]).
    Error {
        /// The lease token, if the failure concerns one lease.
        lease: Option<String>,
        /// What failed.
        message: String,
        /// Wall-clock ns.
        at_ns: u64,
    },
    /// The processor stopped (after SIGTERM or the end of stdin).
    Stopped {
        /// Wall-clock ns.
        at_ns: u64,
    },
}

fn emit(event: &HostEvent) {
    if let Ok(line) = serde_json::to_string(event) {
        let mut out = std::io::stdout().lock();
        // A closed stdout means the benchmark is gone; stdin's end stops this host.
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn batch_event(lease: &str, changes: &[Change]) -> HostEvent {
    let at_ns = unix_ns();
    let mut ids = Vec::with_capacity(changes.len());
    let mut latency_ns = Vec::new();
    for change in changes {
        if let Ok(seen) = serde_json::from_str::<SeenChange<'_>>(change.json())
            && let Some(n) = order_number(seen.id)
        {
            ids.push(n);
            if let Some(sent_ns) = seen.sent_ns {
                latency_ns.push(at_ns.saturating_sub(sent_ns));
            }
        }
    }
    HostEvent::Batch {
        lease: lease.to_owned(),
        at_ns,
        ids,
        latency_ns,
    }
}

/// Runs one processor host against a server until SIGTERM or the end of stdin, printing a
/// [`HostEvent`] per line on stdout; on either it stops the processor gracefully.
///
/// # Errors
/// [`BenchError::Processor`] if the processor cannot start; [`BenchError::HostProcess`]
/// if the signal handler cannot be installed.
pub async fn run_processor_host(options: &ProcessorHostOptions) -> Result<(), BenchError> {
    // First, so that a SIGTERM during the start is a request to stop, not a crash.
    let stop_requested = stop_requested()?;
    let client = CosmosClient::from_connection_string(&options.connection_string)
        .map_err(processor_error)?;
    let feed = Arc::new(RemoteFeed::new(client.clone(), DATABASE, CONTAINER, true));
    let leases = RemoteLeaseContainer::open(client, DATABASE, LEASE_CONTAINER)
        .await
        .map_err(processor_error)?;
    let builder = ChangeFeedProcessorBuilder::new(PROCESSOR_NAME, feed, Arc::new(leases))
        .instance_name(options.instance.clone())
        .start_from(StartFrom::Beginning)
        .max_items(options.max_items)
        .lease_acquire_interval(Duration::from_millis(options.acquire_interval_ms))
        .lease_renew_interval(Duration::from_millis(options.renew_interval_ms))
        .lease_expiration_interval(Duration::from_millis(options.expiration_interval_ms))
        .on_lease_acquired(|lease| {
            emit(&HostEvent::Acquired {
                lease: lease.to_owned(),
                at_ns: unix_ns(),
            });
        })
        .on_lease_released(|lease, reason| {
            emit(&HostEvent::Released {
                lease: lease.to_owned(),
                at_ns: unix_ns(),
                reason: format!("{reason:?}"),
            });
        });
    let builder = if options.report_documents {
        let instance = options.instance.clone();
        let handler_delay = Duration::from_millis(options.handler_delay_ms);
        // Held while a batch is printed, so the numbers are in the order of the lines.
        let n_batches = Mutex::new(0u64);
        builder
            .on_error(|lease, message| {
                emit(&HostEvent::Error {
                    lease: lease.map(str::to_owned),
                    message: message.to_owned(),
                    at_ns: unix_ns(),
                });
            })
            .handler(move |context, changes| {
                let mut n_batch = lock(&n_batches);
                emit(&HostEvent::Delivered {
                    instance: instance.clone(),
                    batch: *n_batch,
                    lease: context.lease_token,
                    from: context.from,
                    to: context.to,
                    at_ns: unix_ns(),
                    documents: changes
                        .iter()
                        .map(|change| {
                            change
                                .value()
                                .unwrap_or_else(|e| serde_json::Value::String(e.to_string()))
                        })
                        .collect(),
                });
                *n_batch += 1;
                drop(n_batch);
                async move {
                    tokio::time::sleep(handler_delay).await;
                    Ok::<(), HandlerError>(())
                }
            })
    } else {
        builder.handler(|context, changes| {
            emit(&batch_event(&context.lease_token, &changes));
            std::future::ready(Ok::<(), HandlerError>(()))
        })
    };
    let mut processor = builder.build().map_err(processor_error)?;
    processor.start().await.map_err(processor_error)?;
    emit(&HostEvent::Started { at_ns: unix_ns() });
    stop_requested.await;
    processor.stop().await;
    emit(&HostEvent::Stopped { at_ns: unix_ns() });
    Ok(())
}

/// Completes on SIGTERM, or when stdin ends (the benchmark that started this host is gone).
fn stop_requested() -> Result<impl Future<Output = ()>, BenchError> {
    let (stdin_closed, stdin_closed_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = [0u8; 256];
        while matches!(stdin.read(&mut buffer), Ok(n) if n > 0) {}
        let _ = stdin_closed.send(());
    });
    #[cfg(unix)]
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| BenchError::HostProcess(format!("cannot listen for SIGTERM: {e}")))?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = terminate.recv() => {}
            _ = stdin_closed_rx => {}
        }
        #[cfg(not(unix))]
        let _ = stdin_closed_rx.await;
    })
}

/// A host process; killed if still running when dropped.
struct HostProcess {
    name: String,
    child: Child,
}

impl HostProcess {
    fn spawn(
        command: &[OsString],
        options: &ProcessorHostOptions,
        index: usize,
        events: mpsc::Sender<(usize, HostMessage)>,
    ) -> Result<Self, BenchError> {
        let (program, leading) = command
            .split_first()
            .ok_or_else(|| BenchError::InvalidParameter("the host command is empty".into()))?;
        let config = serde_json::to_string(options)
            .map_err(|e| BenchError::HostProcess(format!("cannot encode the host config: {e}")))?;
        let mut process = Command::new(program);
        process
            .args(leading)
            .arg("--config")
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            process.env("RUST_LOG", "warn,fjall=warn,lsm_tree=warn");
        }
        let mut child = process.spawn().map_err(|e| {
            BenchError::HostProcess(format!("cannot start {}: {e}", program.to_string_lossy()))
        })?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::HostProcess("the host has no stdout".into()))?;
        std::thread::spawn(move || read_host_events(index, stdout, events));
        Ok(HostProcess {
            name: options.instance.clone(),
            child,
        })
    }

    fn kill(&mut self) -> Result<(), BenchError> {
        self.child
            .kill()
            .map_err(|e| BenchError::HostProcess(format!("cannot kill {}: {e}", self.name)))
    }

    #[cfg(unix)]
    fn terminate(&mut self) -> Result<(), BenchError> {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .map_err(|e| BenchError::HostProcess(format!("cannot send SIGTERM to {}: {e}", self.name)))
    }

    #[cfg(not(unix))]
    fn terminate(&mut self) -> Result<(), BenchError> {
        // Closing stdin asks the host to stop.
        drop(self.child.stdin.take());
        Ok(())
    }

    /// Waits for the process to exit; kills it if it takes longer than `timeout`.
    async fn wait(&mut self, timeout: Duration) -> Result<(), BenchError> {
        let started = Instant::now();
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(BenchError::HostProcess(format!(
                        "{} exited with {status}",
                        self.name
                    )));
                }
                Ok(None) if started.elapsed() > timeout => {
                    self.kill()?;
                    return Err(BenchError::Timeout {
                        what: format!("{} exiting", self.name),
                        timeout_ms: timeout.as_millis() as u64,
                    });
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => {
                    return Err(BenchError::HostProcess(format!(
                        "cannot wait for {}: {e}",
                        self.name
                    )));
                }
            }
        }
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A line from a host, or the end of its output.
enum HostMessage {
    Event(HostEvent),
    Garbage(String),
    Closed,
}

fn read_host_events(
    index: usize,
    stdout: std::process::ChildStdout,
    events: mpsc::Sender<(usize, HostMessage)>,
) {
    let mut reader = std::io::BufReader::new(stdout);
    let mut line = String::new();
    loop {
        line.clear();
        let message = match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.len() > MAX_HOST_LINE_BYTES => {
                HostMessage::Garbage(format!("a line of {} bytes", line.len()))
            }
            Ok(_) => match serde_json::from_str::<HostEvent>(line.trim_end()) {
                Ok(event) => HostMessage::Event(event),
                Err(_) => HostMessage::Garbage(line.chars().take(200).collect()),
            },
        };
        if events.blocking_send((index, message)).is_err() {
            return;
        }
    }
    let _ = events.blocking_send((index, HostMessage::Closed));
}

/// What the benchmark knows of the host processes, from their events.
struct Cluster {
    /// Deliveries of document `n` (grown as live documents arrive).
    deliveries: Vec<u32>,
    n_distinct: u64,
    n_duplicates: u64,
    last_new_at_ns: u64,
    changes_by_host: Vec<u64>,
    owned: Vec<BTreeSet<String>>,
    closed: Vec<bool>,
    stopped_at_ns: Vec<Option<u64>>,
    latencies: Vec<Duration>,
    batch_cycles: Vec<Duration>,
    last_batch_ns: HashMap<(usize, String), u64>,
    /// Handler calls being looked for: by this host, on these leases, after this time.
    watch: Option<Watch>,
}

struct Watch {
    host: usize,
    leases: BTreeSet<String>,
    after_ns: u64,
    first_ns: Option<u64>,
    resumed: BTreeSet<String>,
    all_ns: Option<u64>,
}

impl Cluster {
    fn new(n_hosts: usize) -> Self {
        Cluster {
            deliveries: Vec::new(),
            n_distinct: 0,
            n_duplicates: 0,
            last_new_at_ns: 0,
            changes_by_host: vec![0; n_hosts],
            owned: vec![BTreeSet::new(); n_hosts],
            closed: vec![false; n_hosts],
            stopped_at_ns: vec![None; n_hosts],
            latencies: Vec::new(),
            batch_cycles: Vec::new(),
            last_batch_ns: HashMap::new(),
            watch: None,
        }
    }

    fn apply(&mut self, host: usize, message: HostMessage) -> Result<(), BenchError> {
        let event = match message {
            HostMessage::Event(event) => event,
            HostMessage::Garbage(line) => {
                return Err(BenchError::HostProcess(format!(
                    "host {} printed something that is not an event: {line}",
                    host + 1
                )));
            }
            HostMessage::Closed => {
                self.closed[host] = true;
                self.owned[host].clear();
                return Ok(());
            }
        };
        match event {
            HostEvent::Started { .. } | HostEvent::Error { .. } => {}
            HostEvent::Delivered { .. } => {
                return Err(BenchError::HostProcess(format!(
                    "host {} reported documents, which it was not asked to",
                    host + 1
                )));
            }
            HostEvent::Acquired { lease, .. } => {
                for owned in &mut self.owned {
                    owned.remove(&lease);
                }
                self.owned[host].insert(lease);
            }
            HostEvent::Released { lease, .. } => {
                self.owned[host].remove(&lease);
            }
            HostEvent::Stopped { at_ns } => self.stopped_at_ns[host] = Some(at_ns),
            HostEvent::Batch {
                lease,
                at_ns,
                ids,
                latency_ns,
            } => {
                for n in &ids {
                    let n = usize::try_from(*n).unwrap_or(usize::MAX);
                    if n >= MAX_PROCESSOR_CHANGES as usize * 2 {
                        return Err(BenchError::HostProcess(format!(
                            "host {} handled document {n}, which was never written",
                            host + 1
                        )));
                    }
                    if n >= self.deliveries.len() {
                        self.deliveries.resize(n + 1, 0);
                    }
                    self.deliveries[n] += 1;
                    if self.deliveries[n] == 1 {
                        self.n_distinct += 1;
                        self.last_new_at_ns = self.last_new_at_ns.max(at_ns);
                    } else {
                        self.n_duplicates += 1;
                    }
                }
                self.changes_by_host[host] += ids.len() as u64;
                self.latencies
                    .extend(latency_ns.into_iter().map(Duration::from_nanos));
                if let Some(previous) = self.last_batch_ns.insert((host, lease.clone()), at_ns) {
                    self.batch_cycles
                        .push(Duration::from_nanos(at_ns.saturating_sub(previous)));
                }
                if let Some(watch) = &mut self.watch
                    && watch.host == host
                    && at_ns > watch.after_ns
                    && watch.leases.contains(&lease)
                {
                    watch.first_ns.get_or_insert(at_ns);
                    watch.resumed.insert(lease);
                    if watch.resumed.len() == watch.leases.len() {
                        watch.all_ns.get_or_insert(at_ns);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether every document `0..n` was handled at least once.
    fn saw_all(&self, n: u64) -> bool {
        self.n_distinct >= n && self.deliveries.len() as u64 >= n
    }
}

/// The benchmark's end of the host processes' event streams.
struct Hosts {
    events: mpsc::Receiver<(usize, HostMessage)>,
    cluster: Cluster,
}

impl Hosts {
    /// Applies host events until `done` holds; a [`BenchError::Timeout`] naming `what` if it
    /// does not within `timeout`.
    async fn until(
        &mut self,
        what: &str,
        timeout: Duration,
        progress: Option<&Arc<AtomicU64>>,
        mut done: impl FnMut(&Cluster) -> bool,
    ) -> Result<(), BenchError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(counter) = progress {
                counter.store(self.cluster.n_distinct, Ordering::Relaxed);
            }
            if done(&self.cluster) {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some((host, message))) => self.cluster.apply(host, message)?,
                Ok(None) => {
                    return Err(BenchError::HostProcess("every host's output ended".into()));
                }
                Err(_) => {
                    return Err(BenchError::Timeout {
                        what: what.to_owned(),
                        timeout_ms: timeout.as_millis() as u64,
                    });
                }
            }
        }
    }

    /// Applies host events for `duration`.
    async fn for_a_while(&mut self, duration: Duration) -> Result<(), BenchError> {
        match self.until("", duration, None, |_| false).await {
            Err(BenchError::Timeout { .. }) | Ok(()) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

async fn run_failover(
    options: &ProcessorBenchOptions,
    command: &[OsString],
) -> Result<FailoverReport, BenchError> {
    let (dir, store) = open_store(options).await?;
    ingest(
        &store,
        options.n_items,
        "failover-ingest",
        options.show_progress,
    )
    .await?;
    let (addr, server) = start_server(&dir, &store).await?;
    let measured = drive_hosts(options, command, &store, addr).await;
    let stopped = server.stop().await;
    store.close();
    let report = measured?;
    stopped?;
    Ok(report)
}

/// The failover phase's script: two hosts catch up; live writes; SIGKILL `h1`; `h3` joins;
/// SIGTERM `h2`; every document handled; `h3` stops.
async fn drive_hosts(
    options: &ProcessorBenchOptions,
    command: &[OsString],
    store: &Arc<Store>,
    addr: SocketAddr,
) -> Result<FailoverReport, BenchError> {
    let host_options = |instance: &str| ProcessorHostOptions {
        connection_string: connection_string(addr),
        instance: instance.to_owned(),
        max_items: options.max_items,
        acquire_interval_ms: options.acquire_interval_ms,
        renew_interval_ms: options.renew_interval_ms,
        expiration_interval_ms: options.expiration_interval_ms,
        report_documents: false,
        handler_delay_ms: 0,
    };
    let acquire = Duration::from_millis(options.acquire_interval_ms);
    let renew = Duration::from_millis(options.renew_interval_ms);
    let expiration = Duration::from_millis(options.expiration_interval_ms);
    let (sender, events) = mpsc::channel(HOST_EVENT_QUEUE);
    let mut hosts = Hosts {
        events,
        cluster: Cluster::new(3),
    };
    let n_items = options.n_items;

    // Two hosts catch up together.
    let spawned_ns = unix_ns();
    let mut h1 = HostProcess::spawn(command, &host_options("h1"), 0, sender.clone())?;
    let mut h2 = HostProcess::spawn(command, &host_options("h2"), 1, sender.clone())?;
    let progress = PhaseProgress::start(
        "failover-catchup",
        n_items,
        "changes",
        options.show_progress,
    );
    hosts
        .until(
            "the two hosts' catch-up",
            catch_up_timeout(n_items) + HOST_GRACE,
            Some(&progress.counter()),
            |cluster| cluster.saw_all(n_items),
        )
        .await?;
    drop(progress);
    let catchup_ns = hosts.cluster.last_new_at_ns.saturating_sub(spawned_ns);
    let catchup_elapsed = Duration::from_nanos(catchup_ns);
    let catchup_changes_by_host = hosts.cluster.changes_by_host[..2].to_vec();
    let catchup_duplicates = hosts.cluster.n_duplicates;
    let catchup_batch_cycle_ms =
        LatencySummary::from_samples(std::mem::take(&mut hosts.cluster.batch_cycles));
    hosts.cluster.latencies.clear();
    let duplicates_before_live = hosts.cluster.n_duplicates;

    // Live writes stream from here to the end.
    let stop_writing = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (Arc::clone(store), Arc::clone(&stop_writing));
        let per_s = options.live_writes_per_s;
        tokio::spawn(async move {
            paced_writes(
                &store,
                n_items,
                MAX_PROCESSOR_CHANGES,
                per_s,
                Arc::new(unix_ns),
                stop,
            )
            .await
        })
    };
    let scripted = async {
        // Both hosts hold leases, then a second of steady state.
        let balance_timeout = HOST_GRACE + (acquire + renew) * 4;
        hosts
            .until(
                "both hosts holding leases",
                balance_timeout,
                None,
                |cluster| !cluster.owned[0].is_empty() && !cluster.owned[1].is_empty(),
            )
            .await?;
        // Balanced, so that no hand-off is pending when h1 dies: h2 must take h1's leases
        // because they expire, not because it asked for them.
        let balanced = |a: usize, b: usize| {
            move |cluster: &Cluster| cluster.owned[a].len().abs_diff(cluster.owned[b].len()) <= 1
        };
        if hosts
            .until("h1 and h2 balanced", balance_timeout, None, balanced(0, 1))
            .await
            .is_err()
        {
            eprintln!("failover: h1 and h2 did not balance their leases; killing h1 anyway");
        }
        hosts.for_a_while(FAILOVER_SETTLE).await?;

        // SIGKILL h1.
        let killed_leases = hosts.cluster.owned[0].clone();
        if killed_leases.is_empty() {
            return Err(BenchError::HostProcess(
                "h1 holds no lease to fail over".into(),
            ));
        }
        let killed_ns = unix_ns();
        h1.kill()?;
        hosts.cluster.watch = Some(Watch {
            host: 1,
            leases: killed_leases.clone(),
            after_ns: killed_ns,
            first_ns: None,
            resumed: BTreeSet::new(),
            all_ns: None,
        });
        let takeover_timeout = HOST_GRACE + expiration + acquire * 4;
        hosts
            .until(
                "h2 handling every lease of the killed h1",
                takeover_timeout,
                None,
                |cluster| cluster.watch.as_ref().is_some_and(|w| w.all_ns.is_some()),
            )
            .await?;
        let watch = hosts.cluster.watch.take();
        let (kill_first, kill_all) = watch
            .map(|w| {
                (
                    w.first_ns.unwrap_or(killed_ns),
                    w.all_ns.unwrap_or(killed_ns),
                )
            })
            .unwrap_or((killed_ns, killed_ns));
        let _ = h1.wait(HOST_GRACE).await;

        // h3 joins and takes its share from h2 (hand-offs), then h2 gets SIGTERM.
        let h3 = HostProcess::spawn(command, &host_options("h3"), 2, sender.clone())?;
        hosts
            .until("h3 holding a lease", balance_timeout, None, |cluster| {
                !cluster.owned[2].is_empty()
            })
            .await?;
        if hosts
            .until("h2 and h3 balanced", balance_timeout, None, balanced(1, 2))
            .await
            .is_err()
        {
            eprintln!("failover: h2 and h3 did not balance their leases; stopping h2 anyway");
        }
        hosts.for_a_while(FAILOVER_SETTLE).await?;
        let stopped_leases = hosts.cluster.owned[1].clone();
        if stopped_leases.is_empty() {
            return Err(BenchError::HostProcess(
                "h2 holds no lease to hand over".into(),
            ));
        }
        let terminated_ns = unix_ns();
        h2.terminate()?;
        hosts.cluster.watch = Some(Watch {
            host: 2,
            leases: stopped_leases.clone(),
            after_ns: terminated_ns,
            first_ns: None,
            resumed: BTreeSet::new(),
            all_ns: None,
        });
        hosts
            .until(
                "h3 handling every lease of the stopped h2",
                HOST_GRACE + acquire * 4,
                None,
                |cluster| cluster.watch.as_ref().is_some_and(|w| w.all_ns.is_some()),
            )
            .await?;
        let watch = hosts.cluster.watch.take();
        let (stop_first, stop_all) = watch
            .map(|w| {
                (
                    w.first_ns.unwrap_or(terminated_ns),
                    w.all_ns.unwrap_or(terminated_ns),
                )
            })
            .unwrap_or((terminated_ns, terminated_ns));
        hosts
            .until("h2 stopping", HOST_GRACE, None, |cluster| cluster.closed[1])
            .await?;
        h2.wait(HOST_GRACE).await?;
        let stopped_ns = hosts.cluster.stopped_at_ns[1].ok_or_else(|| {
            BenchError::HostProcess("h2 exited without stopping its processor".into())
        })?;
        Ok::<_, BenchError>((
            h3,
            killed_leases,
            kill_first.saturating_sub(killed_ns),
            kill_all.saturating_sub(killed_ns),
            stopped_leases,
            stop_first.saturating_sub(terminated_ns),
            stop_all.saturating_sub(terminated_ns),
            stopped_ns.saturating_sub(terminated_ns),
        ))
    }
    .await;
    stop_writing.store(true, Ordering::Relaxed);
    let written = writer
        .await
        .map_err(|e| BenchError::Task(e.to_string()))??;
    let (
        mut h3,
        killed_leases,
        kill_ns,
        kill_all_ns,
        stopped_leases,
        stop_ns,
        stop_all_ns,
        stop_ms_ns,
    ) = scripted?;
    let n_total = n_items + written.n_written;
    hosts
        .until(
            "h3 handling the last live writes",
            LIVE_GRACE + expiration,
            None,
            |cluster| cluster.saw_all(n_total),
        )
        .await?;
    h3.terminate()?;
    hosts
        .until("h3 stopping", HOST_GRACE, None, |cluster| cluster.closed[2])
        .await?;
    h3.wait(HOST_GRACE).await?;
    let ms = |ns: u64| milliseconds(Duration::from_nanos(ns));
    Ok(FailoverReport {
        catchup_changes_per_s: per_second(n_items, catchup_elapsed),
        catchup_ms: milliseconds(catchup_elapsed),
        catchup_changes_by_host,
        catchup_duplicates,
        catchup_batch_cycle_ms,
        killed_leases: killed_leases.into_iter().collect(),
        kill_to_resumed_ms: ms(kill_ns),
        kill_to_all_resumed_ms: ms(kill_all_ns),
        stopped_leases: stopped_leases.into_iter().collect(),
        stop_to_resumed_ms: ms(stop_ns),
        stop_to_all_resumed_ms: ms(stop_all_ns),
        stop_ms: ms(stop_ms_ns),
        live_writes: written.n_written,
        live_duplicates: hosts.cluster.n_duplicates - duplicates_before_live,
        live_ms: LatencySummary::from_samples(std::mem::take(&mut hosts.cluster.latencies)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(ProcessorBenchOptions::default().validate().is_ok());
    }

    #[test]
    fn an_expiration_shorter_than_renewal_is_refused() {
        let options = ProcessorBenchOptions {
            renew_interval_ms: 5000,
            expiration_interval_ms: 3000,
            ..ProcessorBenchOptions::default()
        };
        let message = options.validate().unwrap_err().to_string();
        assert!(
            message.contains(
                "expiration interval (3000 ms) must be longer than the renew interval (5000 ms)"
            ),
            "{message}"
        );
    }

    #[test]
    fn host_events_are_one_json_object_per_line() {
        let event = HostEvent::Batch {
            lease: "-FF".into(),
            at_ns: 7,
            ids: vec![1, 2],
            latency_ns: vec![30],
        };
        let line = serde_json::to_string(&event).unwrap();
        assert_eq!(
            line,
            r#"{"event":"batch","lease":"-FF","at_ns":7,"ids":[1,2],"latency_ns":[30]}"#
        );
        assert_eq!(serde_json::from_str::<HostEvent>(&line).unwrap(), event);
    }

    #[test]
    fn the_cluster_times_the_first_call_on_a_moved_lease() {
        let mut cluster = Cluster::new(2);
        let batch = |lease: &str, at_ns, ids: Vec<u64>| {
            HostMessage::Event(HostEvent::Batch {
                lease: lease.into(),
                at_ns,
                ids,
                latency_ns: Vec::new(),
            })
        };
        cluster.apply(0, batch("a", 10, vec![0, 1])).unwrap();
        cluster.watch = Some(Watch {
            host: 1,
            leases: BTreeSet::from(["a".to_owned()]),
            after_ns: 20,
            first_ns: None,
            resumed: BTreeSet::new(),
            all_ns: None,
        });
        cluster.apply(1, batch("a", 15, vec![1])).unwrap();
        cluster.apply(1, batch("b", 25, vec![2])).unwrap();
        assert_eq!(cluster.watch.as_ref().unwrap().first_ns, None);
        cluster.apply(1, batch("a", 30, vec![1, 3])).unwrap();
        assert_eq!(cluster.watch.as_ref().unwrap().first_ns, Some(30));
        assert_eq!(cluster.watch.as_ref().unwrap().all_ns, Some(30));
        assert!(cluster.saw_all(4));
        assert_eq!(cluster.n_duplicates, 2);
    }
}
