//! `tributary bench soak`: many keep-alive connections sending a mixed load for minutes, to
//! show that the server stays up, answers every request with a success or a 429, and holds
//! bounded memory and file descriptors.
//!
//! The benchmark opens a fresh store in a temporary directory and starts the server in this
//! process (as `bench server` does), or uses a running server (`endpoint`). It creates a
//! database of its own with the container `orders` (`n_feed_ranges` feed ranges), upserts
//! `n_items` documents of 1 KB over 1,000 partition keys, then opens `n_connections`
//! keep-alive HTTP/1.1 connections. For `duration_s` seconds each connection sends one signed
//! request at a time, each drawn from a fixed mix ([`MIX`]):
//!
//! | share | request |
//! |---|---|
//! | 50 % | point read of a random document (`GET .../docs/{id}`) |
//! | 25 % | upsert of a random document (`POST .../docs`, `x-ms-documentdb-is-upsert`) |
//! | 10 % | query of one partition key's documents (`SELECT * ... WHERE c.customerId = @customer`) |
//! | 5 % | cross-partition query with a filter (first page of 100) |
//! | 10 % | one change feed page of the connection's range (100 items), from the etag it kept |
//!
//! Every answer is counted by kind: a success (2xx, or 304 for the feed) with its latency; a
//! 429, which is the server asking the client to slow down and not a failure (the connection
//! waits `x-ms-retry-after-ms` before its next request); or an error: any other status, or a
//! connection that fails (it is opened again). Every second the benchmark samples the
//! process's resident memory (`VmRSS`) and open file descriptors; with an in-process server
//! they cover the server and the load generator, with `endpoint` they are not reported.
//!
//! Latencies go into fixed-size histograms shared by the connections, so the load generator's
//! own memory does not grow with the length of the run.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hyper::Method;
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;
use tributary_server::{AccountKeys, Server, ServerConfig};
use tributary_store::{Durability, MAX_FEED_RANGES, Store, StoreOptions};
use tributary_wire::auth::{EMULATOR_KEY, MasterKey};
use tributary_wire::headers;

use crate::error::BenchError;
use crate::http::{CosmosConnection, Reply};
use crate::latency::{LatencyHistogram, LatencySummary, per_second};
use crate::machine::{self, MachineInfo};
use crate::progress::{self, PhaseProgress};
use crate::server::{
    CONTAINER, create_container, partition_key_header, serialize_durability, upsert_items,
};
use crate::table::{self, Row};
use crate::workload::{
    ITEM_BYTES, N_PARTITION_KEYS, customer_id, order_document, order_id, splitmix64,
};
use crate::{durability_name, new_store_dir};

/// Most connections a soak may open (the server's default connection limit).
pub const MAX_SOAK_CONNECTIONS: usize = tributary_server::DEFAULT_MAX_CONNECTIONS;
/// Longest soak, seconds (a day).
pub const MAX_SOAK_DURATION_S: u64 = 86_400;
/// Most documents a soak may preload.
pub const MAX_SOAK_ITEMS: u64 = 10_000_000;
/// The share of each kind of request in every connection's mix, percent (they add up to 100).
pub const MIX: [(OperationKind, u64); 5] = [
    (OperationKind::PointRead, 50),
    (OperationKind::Upsert, 25),
    (OperationKind::PartitionQuery, 10),
    (OperationKind::CrossPartitionQuery, 5),
    (OperationKind::FeedPage, 10),
];
/// Open files the process needs beyond its sockets: the store's files, the runtime, stdio.
const FD_MARGIN: u64 = 256;
/// Most connections the preload uses.
const PRELOAD_CONNECTIONS: usize = 64;
/// How often memory and file descriptors are sampled.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Samples between two progress lines.
const SAMPLES_PER_PROGRESS_LINE: u64 = 5;
/// How long the benchmark waits after closing connections (the preload's, the soak's) before
/// sampling, so the server has seen them close.
const SETTLE: Duration = Duration::from_secs(1);
/// `x-ms-max-item-count` of change feed pages and cross-partition queries.
const PAGE_ITEMS: &str = "100";
/// What a connection waits after a 429 without `x-ms-retry-after-ms`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_millis(100);
/// The longest `x-ms-retry-after-ms` a connection honours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);
/// What a connection waits before opening itself again after failing to connect.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);
/// Errors quoted in the report.
const MAX_ERROR_EXAMPLES: usize = 10;
/// How much of an error response an example quotes.
const MAX_EXAMPLE_CHARS: usize = 300;
/// Seed of every connection's choice of requests and documents.
const MIX_SEED: u64 = 0x736f_616b_6d69_7865;
/// The port of an `--endpoint` without one (the Cosmos DB emulator's).
const DEFAULT_PORT: u16 = 8081;

/// One kind of request in the soak's mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationKind {
    /// `GET .../docs/{id}` of a random preloaded document.
    PointRead,
    /// `POST .../docs` with `x-ms-documentdb-is-upsert: true` of a random preloaded document.
    Upsert,
    /// A query of one partition key's documents, with `x-ms-documentdb-partitionkey`.
    PartitionQuery,
    /// A cross-partition query with a filter, first page only.
    CrossPartitionQuery,
    /// One change feed page of one feed range, continuing from the connection's last etag.
    FeedPage,
}

impl OperationKind {
    /// The kind a roll of 0 to 99 picks, by [`MIX`].
    fn pick(roll: u64) -> OperationKind {
        let mut below = 0;
        for (kind, share) in MIX {
            below += share;
            if roll < below {
                return kind;
            }
        }
        OperationKind::PointRead
    }

    /// Where this kind's counters are kept.
    fn index(self) -> usize {
        self as usize
    }

    /// The kind as the table shows it.
    fn label(self) -> &'static str {
        match self {
            OperationKind::PointRead => "point read (GET docs/{id})",
            OperationKind::Upsert => "upsert (POST docs)",
            OperationKind::PartitionQuery => "single-partition query",
            OperationKind::CrossPartitionQuery => "cross-partition query (filter, 100/page)",
            OperationKind::FeedPage => "change feed page (1 range, 100/page)",
        }
    }

    /// The kind in one word, for error lines.
    fn short_name(self) -> &'static str {
        match self {
            OperationKind::PointRead => "point read",
            OperationKind::Upsert => "upsert",
            OperationKind::PartitionQuery => "partition query",
            OperationKind::CrossPartitionQuery => "cross-partition query",
            OperationKind::FeedPage => "feed page",
        }
    }

    /// Whether `status` answers this kind of request successfully.
    fn succeeded(self, status: u16) -> bool {
        match self {
            OperationKind::Upsert => status == 200 || status == 201,
            OperationKind::FeedPage => status == 200 || status == 304,
            _ => status == 200,
        }
    }
}

/// A server that is already running, to soak instead of an in-process one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SoakEndpoint {
    /// `http://host:port` (plain HTTP: the load generator does not speak TLS).
    pub url: String,
    /// The account's read-write master key (base64); never reported.
    #[serde(skip)]
    pub key: String,
}

/// The sizes of a soak.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SoakOptions {
    /// Concurrent keep-alive connections (one request in flight on each).
    pub n_connections: usize,
    /// How long the connections send requests, seconds.
    pub duration_s: u64,
    /// Documents upserted before the soak; reads and upserts pick among them.
    pub n_items: u64,
    /// Feed ranges of the container.
    pub n_feed_ranges: u32,
    /// When commits are acknowledged (in-process server only).
    #[serde(serialize_with = "serialize_durability")]
    pub durability: Durability,
    /// Where the temporary store directory is made (`None`: the system's temp directory;
    /// in-process server only).
    pub parent_dir: Option<PathBuf>,
    /// A running server to soak instead of an in-process one.
    pub endpoint: Option<SoakEndpoint>,
    /// Print progress lines to stderr.
    #[serde(skip)]
    pub show_progress: bool,
}

impl Default for SoakOptions {
    fn default() -> Self {
        SoakOptions {
            n_connections: 1000,
            duration_s: 60,
            n_items: 10_000,
            n_feed_ranges: 4,
            durability: Durability::Fsync,
            parent_dir: None,
            endpoint: None,
            show_progress: false,
        }
    }
}

impl SoakOptions {
    /// Checks every size against its limit.
    ///
    /// # Errors
    /// [`BenchError::InvalidParameter`] naming the first size out of range.
    pub fn validate(&self) -> Result<(), BenchError> {
        let checks: [(bool, String); 4] = [
            (
                (1..=MAX_SOAK_CONNECTIONS).contains(&self.n_connections),
                format!(
                    "connections must be 1 to {MAX_SOAK_CONNECTIONS}, not {}",
                    self.n_connections
                ),
            ),
            (
                (1..=MAX_SOAK_DURATION_S).contains(&self.duration_s),
                format!(
                    "duration must be 1 to {MAX_SOAK_DURATION_S} seconds, not {}",
                    self.duration_s
                ),
            ),
            (
                (1..=MAX_SOAK_ITEMS).contains(&self.n_items),
                format!("items must be 1 to {MAX_SOAK_ITEMS}, not {}", self.n_items),
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
}

/// One kind of request over the whole soak.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationReport {
    /// Which kind.
    pub kind: OperationKind,
    /// Its share of the mix, percent.
    pub share_percent: u64,
    /// Requests answered successfully.
    pub count: u64,
    /// Successful requests per second.
    pub per_s: f64,
    /// Latency of the successful requests.
    pub latency: LatencySummary,
    /// Requests answered 429 (not errors).
    pub throttled: u64,
    /// Failed requests by HTTP status (`"500"`), or `"connection"` for a connection that
    /// could not be opened or failed during the request.
    pub errors: BTreeMap<String, u64>,
}

/// Start, peak and end of a figure sampled every second.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Gauge<T> {
    /// Once the documents were loaded, before the soak's connections opened.
    pub start: T,
    /// The highest sample, the start and end included.
    pub peak: T,
    /// After the soak's connections closed.
    pub end: T,
}

/// What a soak measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SoakReport {
    /// The machine it ran on.
    pub machine: MachineInfo,
    /// The machine's 1, 5 and 15 minute load averages before the benchmark started.
    pub load_average_before: Option<[f64; 3]>,
    /// The sizes it ran with.
    pub parameters: SoakOptions,
    /// Serialized size of each document written.
    pub item_bytes: usize,
    /// Distinct partition key values.
    pub n_partition_keys: u64,
    /// Documents preloaded per second.
    pub preload_per_s: f64,
    /// How long the soak's requests ran, seconds (the duration, plus the requests in flight
    /// at its end).
    pub elapsed_s: f64,
    /// Each kind of request, in [`MIX`] order.
    pub operations: Vec<OperationReport>,
    /// Every successful request.
    pub all: LatencySummary,
    /// Successful requests per second, all kinds.
    pub per_s: f64,
    /// Requests answered 429, all kinds.
    pub throttled: u64,
    /// Failed requests, all kinds.
    pub errors: u64,
    /// The first few errors, quoted.
    pub error_examples: Vec<String>,
    /// The process's resident memory, MiB (server and load generator; `None` with an
    /// endpoint or where `/proc` cannot be read).
    pub rss_mb: Option<Gauge<f64>>,
    /// The process's open file descriptors (`None` as for `rss_mb`).
    pub open_fds: Option<Gauge<u64>>,
}

impl SoakReport {
    /// The report as a table for humans.
    pub fn render_text(&self) -> String {
        let p = &self.parameters;
        let target = match &p.endpoint {
            Some(endpoint) => format!("the server at {}", endpoint.url),
            None => format!(
                "an in-process server (durability {})",
                durability_name(p.durability)
            ),
        };
        let mut out = format!(
            "tributary bench soak: {} keep-alive HTTP/1.1 connections for {} s against {target}; {} preloaded {}-byte items over {} partition keys, {} feed ranges\n",
            p.n_connections,
            p.duration_s,
            p.n_items,
            self.item_bytes,
            self.n_partition_keys,
            p.n_feed_ranges,
        );
        let mix: Vec<String> = MIX
            .iter()
            .map(|(kind, share)| format!("{} {share} %", kind.short_name()))
            .collect();
        out.push_str(&format!("mix (fixed): {}\n", mix.join(", ")));
        out.push_str(&format!("machine: {}\n", self.machine.describe()));
        if let Some([one, five, fifteen]) = self.load_average_before {
            out.push_str(&format!(
                "load average before: {one:.2} {five:.2} {fifteen:.2}\n"
            ));
        }
        out.push('\n');
        let mut rows: Vec<Row<'_>> = self
            .operations
            .iter()
            .map(|operation| Row {
                phase: operation.kind.label().into(),
                rate: format!("{} req/s", table::thousands(operation.per_s)),
                latency: &operation.latency,
            })
            .collect();
        rows.push(Row {
            phase: "all".into(),
            rate: format!("{} req/s", table::thousands(self.per_s)),
            latency: &self.all,
        });
        out.push_str(&table::render(&rows));
        out.push_str(&format!(
            "\nelapsed {:.1} s; preload {} items/s\n",
            self.elapsed_s,
            table::thousands(self.preload_per_s)
        ));
        let throttled: Vec<String> = self
            .operations
            .iter()
            .filter(|operation| operation.throttled > 0)
            .map(|operation| format!("{} {}", operation.kind.short_name(), operation.throttled))
            .collect();
        out.push_str(&format!(
            "429s (not errors): {}\n",
            if throttled.is_empty() {
                "none".to_owned()
            } else {
                throttled.join(", ")
            }
        ));
        out.push_str(&format!(
            "errors: {}\n",
            self.error_counts().unwrap_or_else(|| "none".to_owned())
        ));
        for example in &self.error_examples {
            out.push_str(&format!("  {example}\n"));
        }
        match (&self.rss_mb, &self.open_fds) {
            (Some(rss), Some(fds)) => out.push_str(&format!(
                "RSS (server and load generator): start {}, peak {}, end {}\nopen file descriptors: start {}, peak {}, end {}\n",
                table::mebibytes(Some(rss.start)),
                table::mebibytes(Some(rss.peak)),
                table::mebibytes(Some(rss.end)),
                table::thousands(fds.start as f64),
                table::thousands(fds.peak as f64),
                table::thousands(fds.end as f64),
            )),
            _ if p.endpoint.is_some() => out.push_str(
                "RSS and open file descriptors: not reported (the server runs in another process)\n",
            ),
            _ => out.push_str("RSS and open file descriptors: not available on this system\n"),
        }
        out
    }

    /// One line naming the errors by kind and status, or `None` when there were none.
    pub fn error_summary(&self) -> Option<String> {
        let counts = self.error_counts()?;
        Some(format!(
            "{} of the soak's requests failed ({counts}); 429s, not failures: {}",
            self.errors, self.throttled
        ))
    }

    /// `point read: 2 × 500, upsert: 1 × connection`, or `None` without errors.
    fn error_counts(&self) -> Option<String> {
        let parts: Vec<String> = self
            .operations
            .iter()
            .filter(|operation| !operation.errors.is_empty())
            .map(|operation| {
                let counts: Vec<String> = operation
                    .errors
                    .iter()
                    .map(|(what, n)| format!("{n} × {what}"))
                    .collect();
                format!("{}: {}", operation.kind.short_name(), counts.join(", "))
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

/// Runs a soak against an in-process server on a fresh temporary store, or against
/// `options.endpoint`. Raises the process's open file limit if the connections need it.
///
/// Call it inside a multi-threaded tokio runtime. Failed requests during the soak do not fail
/// it: they are counted in the report ([`SoakReport::error_summary`]).
///
/// # Errors
/// [`BenchError::InvalidParameter`] for bad options; [`BenchError::Endpoint`] for an endpoint
/// that is not `http://host:port`; [`BenchError::FileLimit`] or
/// [`BenchError::RaiseFileLimit`] when the process may not open enough files;
/// [`BenchError::Serve`] if the server cannot start; [`BenchError::Status`],
/// [`BenchError::Transport`], [`BenchError::Connect`] or [`BenchError::BadResponse`] for the
/// first failure of the setup (creating the container, preloading, opening connections).
pub async fn run_soak_bench(options: &SoakOptions) -> Result<SoakReport, BenchError> {
    options.validate()?;
    let load_average_before = machine::load_average();
    ensure_file_limit(options.n_connections, options.endpoint.is_none())?;
    let mut report = match &options.endpoint {
        Some(endpoint) => {
            let addr = resolve_endpoint(&endpoint.url).await?;
            let key = MasterKey::from_base64(&endpoint.key)
                .map_err(|e| BenchError::InvalidParameter(format!("the key: {e}")))?;
            drive(addr, Arc::new(key), options).await?
        }
        None => soak_in_process(options).await?,
    };
    report.load_average_before = load_average_before;
    Ok(report)
}

/// Starts a server on a fresh store in this process, soaks it, and stops it.
async fn soak_in_process(options: &SoakOptions) -> Result<SoakReport, BenchError> {
    let dir = new_store_dir(options.parent_dir.as_deref())?;
    let store = Arc::new(Store::open(
        dir.path(),
        StoreOptions {
            durability: options.durability,
            ..StoreOptions::default()
        },
    )?);
    let config = ServerConfig {
        addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: 0,
        keys: AccountKeys::emulator(),
        tls: None,
        data_dir: dir.path().to_owned(),
        ..ServerConfig::default()
    };
    let server = Server::bind(config, Arc::clone(&store)).await?;
    let addr = server.local_addr().map_err(|source| BenchError::Connect {
        addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        source,
    })?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        // A dropped sender stops the server too.
        let _ = stopped.await;
    }));
    let key = MasterKey::from_base64(EMULATOR_KEY)
        .map_err(|e| BenchError::InvalidParameter(format!("the emulator key: {e}")))?;
    let measured = drive(addr, Arc::new(key), options).await;
    let _ = stop.send(());
    let served = serving.await;
    store.close();
    let measured = measured?;
    served.map_err(|e| BenchError::Task(e.to_string()))??;
    Ok(measured)
}

/// The address of `http://host[:port][/]`.
async fn resolve_endpoint(url: &str) -> Result<SocketAddr, BenchError> {
    let bad = |reason: &str| BenchError::Endpoint {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Err(bad(
            "the soak's client speaks plain HTTP only: serve with --http and give http://host:port",
        ));
    }
    let authority = lower
        .strip_prefix("http://")
        .ok_or_else(|| bad("must be http://host:port"))?
        .trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') {
        return Err(bad("must be http://host:port, without a path"));
    }
    let with_port = match authority.rsplit_once(':') {
        Some((_, port)) if port.parse::<u16>().is_ok() => authority.to_owned(),
        _ => format!("{authority}:{DEFAULT_PORT}"),
    };
    tokio::net::lookup_host(&with_port)
        .await
        .map_err(|e| bad(&format!("cannot resolve it: {e}")))?
        .next()
        .ok_or_else(|| bad("resolves to no address"))
}

/// Open files `n_connections` need: one socket each, two with the server in this process.
fn files_needed(n_connections: usize, in_process: bool) -> u64 {
    let per_connection = if in_process { 2 } else { 1 };
    n_connections as u64 * per_connection + FD_MARGIN
}

/// What the soft open file limit must be raised to (`None`: it is enough already), given
/// the limits in force (`None` is unlimited).
fn raised_file_limit(
    n_connections: usize,
    needed: u64,
    soft: Option<u64>,
    hard: Option<u64>,
) -> Result<Option<u64>, BenchError> {
    match (soft, hard) {
        (None, _) => Ok(None),
        (Some(soft), _) if soft >= needed => Ok(None),
        (Some(_), None) => Ok(Some(needed)),
        (Some(_), Some(hard)) if hard >= needed => Ok(Some(hard)),
        (Some(soft), Some(hard)) => Err(BenchError::FileLimit {
            n_connections,
            needed,
            soft,
            hard,
        }),
    }
}

/// Raises the soft open file limit to the hard one if the connections need more than the
/// soft one allows.
#[cfg(unix)]
fn ensure_file_limit(n_connections: usize, in_process: bool) -> Result<(), BenchError> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let needed = files_needed(n_connections, in_process);
    let limit = getrlimit(Resource::Nofile);
    if let Some(target) = raised_file_limit(n_connections, needed, limit.current, limit.maximum)? {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(target),
                maximum: limit.maximum,
            },
        )
        .map_err(|e| BenchError::RaiseFileLimit {
            target,
            source: e.into(),
        })?;
    }
    Ok(())
}

/// Elsewhere the limit is left to the system: a connection that cannot open is an error of
/// the soak.
#[cfg(not(unix))]
fn ensure_file_limit(n_connections: usize, in_process: bool) -> Result<(), BenchError> {
    let _ = files_needed(n_connections, in_process);
    Ok(())
}

/// The counters of one kind of request, shared by every connection.
struct KindCounters {
    latency: LatencyHistogram,
    throttled: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

/// What every connection of the soak shares.
struct Soak {
    addr: SocketAddr,
    key: Arc<MasterKey>,
    /// `/dbs/{database}/colls/orders/docs`.
    docs_path: String,
    range_ids: Vec<String>,
    n_items: u64,
    deadline: Instant,
    kinds: [KindCounters; MIX.len()],
    all: LatencyHistogram,
    n_succeeded: AtomicU64,
    n_throttled: AtomicU64,
    n_errors: AtomicU64,
    error_examples: Mutex<Vec<String>>,
}

impl Soak {
    /// Counts a failed request of `kind`; `example` describes it, for the first few.
    fn error(&self, kind: OperationKind, what: String, example: impl FnOnce() -> String) {
        self.n_errors.fetch_add(1, Ordering::Relaxed);
        let mut errors = lock(&self.kinds[kind.index()].errors);
        *errors.entry(what).or_default() += 1;
        drop(errors);
        let mut examples = lock(&self.error_examples);
        if examples.len() < MAX_ERROR_EXAMPLES {
            examples.push(format!("{}: {}", kind.short_name(), example()));
        }
    }
}

/// Locks a counter; a panicked holder left only counts behind, which stay usable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The client side: set up, preload, soak, clean up. The load average is left for the caller
/// to fill in.
async fn drive(
    addr: SocketAddr,
    key: Arc<MasterKey>,
    options: &SoakOptions,
) -> Result<SoakReport, BenchError> {
    let measure_process = options.endpoint.is_none();
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let database = format!("soak-{millis}");
    let mut setup = CosmosConnection::connect(addr, Arc::clone(&key)).await?;
    setup.send(Method::GET, "/", &[], None, &[200]).await?;
    let range_ids = create_container(&mut setup, &database, options.n_feed_ranges).await?;
    drop(setup);
    let progress = PhaseProgress::start("preload", options.n_items, "items", options.show_progress);
    let preload = upsert_items(
        addr,
        &key,
        &database,
        options.n_connections.min(PRELOAD_CONNECTIONS),
        options.n_items,
        &progress,
    )
    .await?;
    drop(progress);
    // Let the server see the preload's connections close before the first sample.
    tokio::time::sleep(SETTLE).await;
    let start_rss = measure_process.then(machine::current_rss_mb).flatten();
    let start_fds = measure_process.then(machine::open_fds).flatten();
    let mut connections = Vec::with_capacity(options.n_connections);
    for _ in 0..options.n_connections {
        connections.push(CosmosConnection::connect(addr, Arc::clone(&key)).await?);
    }
    let started = Instant::now();
    let soak = Arc::new(Soak {
        addr,
        key: Arc::clone(&key),
        docs_path: format!("/dbs/{database}/colls/{CONTAINER}/docs"),
        range_ids,
        n_items: options.n_items,
        deadline: started + Duration::from_secs(options.duration_s),
        kinds: std::array::from_fn(|_| KindCounters {
            latency: LatencyHistogram::new(),
            throttled: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
        }),
        all: LatencyHistogram::new(),
        n_succeeded: AtomicU64::new(0),
        n_throttled: AtomicU64::new(0),
        n_errors: AtomicU64::new(0),
        error_examples: Mutex::new(Vec::new()),
    });
    let (stop_sampling, stopped) = tokio::sync::oneshot::channel();
    let sampler = tokio::spawn(sample(
        Arc::clone(&soak),
        options.duration_s,
        measure_process,
        options.show_progress,
        stopped,
    ));
    let mut tasks = JoinSet::new();
    for (index, connection) in connections.into_iter().enumerate() {
        tasks.spawn(run_connection(Arc::clone(&soak), index, connection));
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| BenchError::Task(e.to_string()))?;
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    let _ = stop_sampling.send(());
    let peaks = sampler.await.map_err(|e| BenchError::Task(e.to_string()))?;
    let end_rss = measure_process.then(machine::current_rss_mb).flatten();
    let end_fds = measure_process.then(machine::open_fds).flatten();
    if !measure_process {
        // The soak's database would stay on a server that outlives the benchmark.
        let mut cleanup = CosmosConnection::connect(addr, Arc::clone(&key)).await?;
        cleanup
            .send(
                Method::DELETE,
                &format!("/dbs/{database}"),
                &[],
                None,
                &[204],
            )
            .await?;
    }

    let operations: Vec<OperationReport> = MIX
        .iter()
        .map(|(kind, share)| {
            let counters = &soak.kinds[kind.index()];
            let latency = counters.latency.summary();
            OperationReport {
                kind: *kind,
                share_percent: *share,
                count: latency.n as u64,
                per_s: per_second(latency.n as u64, elapsed),
                latency,
                throttled: counters.throttled.load(Ordering::Relaxed),
                errors: lock(&counters.errors).clone(),
            }
        })
        .collect();
    let all = soak.all.summary();
    Ok(SoakReport {
        machine: MachineInfo::detect(),
        load_average_before: None,
        parameters: options.clone(),
        item_bytes: ITEM_BYTES,
        n_partition_keys: N_PARTITION_KEYS,
        preload_per_s: preload.rate,
        elapsed_s: elapsed.as_secs_f64(),
        operations,
        per_s: per_second(all.n as u64, elapsed),
        all,
        throttled: soak.n_throttled.load(Ordering::Relaxed),
        errors: soak.n_errors.load(Ordering::Relaxed),
        error_examples: lock(&soak.error_examples).clone(),
        rss_mb: gauge(start_rss, peaks.rss_mb, end_rss),
        open_fds: gauge(start_fds, peaks.open_fds, end_fds),
    })
}

/// A gauge of a start, the highest sample (if any was taken) and an end.
fn gauge<T: PartialOrd + Copy>(
    start: Option<T>,
    peak: Option<T>,
    end: Option<T>,
) -> Option<Gauge<T>> {
    let (start, end) = (start?, end?);
    let peak = [peak, Some(end)]
        .into_iter()
        .flatten()
        .fold(
            start,
            |highest, value| if value > highest { value } else { highest },
        );
    Some(Gauge { start, peak, end })
}

/// The highest samples taken.
struct Peaks {
    rss_mb: Option<f64>,
    open_fds: Option<u64>,
}

/// Samples memory and file descriptors every second until stopped, and prints a progress
/// line every few samples.
async fn sample(
    soak: Arc<Soak>,
    duration_s: u64,
    measure_process: bool,
    show_progress: bool,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) -> Peaks {
    let started = Instant::now();
    let mut peaks = Peaks {
        rss_mb: None,
        open_fds: None,
    };
    let mut interval = tokio::time::interval(SAMPLE_INTERVAL);
    interval.tick().await;
    let mut n_samples = 0u64;
    let mut last_succeeded = 0;
    loop {
        tokio::select! {
            _ = &mut stopped => return peaks,
            _ = interval.tick() => {}
        }
        n_samples += 1;
        let (rss_mb, open_fds) = if measure_process {
            (machine::current_rss_mb(), machine::open_fds())
        } else {
            (None, None)
        };
        peaks.rss_mb = match (peaks.rss_mb, rss_mb) {
            (Some(peak), Some(now)) => Some(peak.max(now)),
            (peak, now) => peak.or(now),
        };
        peaks.open_fds = peaks.open_fds.max(open_fds);
        if show_progress && n_samples.is_multiple_of(SAMPLES_PER_PROGRESS_LINE) {
            let succeeded = soak.n_succeeded.load(Ordering::Relaxed);
            let recent = per_second(
                succeeded - last_succeeded,
                SAMPLE_INTERVAL * SAMPLES_PER_PROGRESS_LINE as u32,
            );
            last_succeeded = succeeded;
            let mut line = format!(
                "{}/{duration_s} s, {} requests ({} req/s), {} 429s, {} errors",
                started.elapsed().as_secs(),
                table::thousands(succeeded as f64),
                table::thousands(recent),
                soak.n_throttled.load(Ordering::Relaxed),
                soak.n_errors.load(Ordering::Relaxed),
            );
            if let (Some(rss_mb), Some(open_fds)) = (rss_mb, open_fds) {
                line.push_str(&format!(
                    ", RSS {}, {} open fds",
                    table::mebibytes(Some(rss_mb)),
                    table::thousands(open_fds as f64)
                ));
            }
            progress::emit("soak", format_args!("{line}"));
        }
    }
}

/// One connection's loop until the deadline: draw a request from the mix, send it, count the
/// answer. A connection that fails, or that the server closes, is opened again.
async fn run_connection(soak: Arc<Soak>, index: usize, connection: CosmosConnection) {
    let range_id = &soak.range_ids[index % soak.range_ids.len()];
    let mut connection = Some(connection);
    let mut feed_etag: Option<String> = None;
    let mut random = splitmix64(MIX_SEED ^ index as u64);
    while Instant::now() < soak.deadline {
        random = splitmix64(random);
        let kind = OperationKind::pick(random % 100);
        let n = splitmix64(random) % soak.n_items;
        let live = match connection.as_mut() {
            Some(live) => live,
            None => match CosmosConnection::connect(soak.addr, Arc::clone(&soak.key)).await {
                Ok(live) => connection.insert(live),
                Err(error) => {
                    soak.error(kind, "connection".into(), || error.to_string());
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        let sent = Instant::now();
        let answer = send(live, &soak, kind, n, range_id, feed_etag.as_deref()).await;
        let latency = sent.elapsed();
        let reply = match answer {
            Ok(reply) => reply,
            Err(error) => {
                soak.error(kind, "connection".into(), || error.to_string());
                connection = None;
                continue;
            }
        };
        if reply
            .header(hyper::header::CONNECTION.as_str())
            .is_some_and(|value| value.eq_ignore_ascii_case("close"))
        {
            connection = None;
        }
        if kind.succeeded(reply.status) {
            soak.kinds[kind.index()].latency.record(latency);
            soak.all.record(latency);
            soak.n_succeeded.fetch_add(1, Ordering::Relaxed);
            if kind == OperationKind::FeedPage
                && let Some(etag) = reply.header(headers::ETAG)
            {
                feed_etag = Some(etag.to_owned());
            }
        } else if reply.status == 429 {
            soak.kinds[kind.index()]
                .throttled
                .fetch_add(1, Ordering::Relaxed);
            soak.n_throttled.fetch_add(1, Ordering::Relaxed);
            let wait = retry_after(&reply);
            tokio::time::sleep_until((Instant::now() + wait).min(soak.deadline).into()).await;
        } else {
            soak.error(kind, reply.status.to_string(), || {
                let text = String::from_utf8_lossy(&reply.body);
                let quoted: String = text.chars().take(MAX_EXAMPLE_CHARS).collect();
                format!("{} {quoted}", reply.status)
            });
        }
    }
}

/// How long a 429 asks the client to wait, at most [`MAX_RETRY_AFTER`].
fn retry_after(reply: &Reply) -> Duration {
    reply
        .header(headers::X_MS_RETRY_AFTER_MS)
        .and_then(|ms| ms.trim().parse().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_millis)
        .min(MAX_RETRY_AFTER)
}

/// Sends one request of `kind` about document `n`.
async fn send(
    connection: &mut CosmosConnection,
    soak: &Soak,
    kind: OperationKind,
    n: u64,
    range_id: &str,
    feed_etag: Option<&str>,
) -> Result<Reply, BenchError> {
    let path = soak.docs_path.as_str();
    let partition_key = partition_key_header(n);
    match kind {
        OperationKind::PointRead => {
            connection
                .request(
                    Method::GET,
                    &format!("{path}/{}", order_id(n)),
                    &[(headers::X_MS_DOCUMENTDB_PARTITIONKEY, &partition_key)],
                    None,
                )
                .await
        }
        OperationKind::Upsert => {
            connection
                .request(
                    Method::POST,
                    path,
                    &[
                        (headers::X_MS_DOCUMENTDB_PARTITIONKEY, &partition_key),
                        (headers::X_MS_DOCUMENTDB_IS_UPSERT, "true"),
                    ],
                    Some(order_document(n).to_string().into_bytes()),
                )
                .await
        }
        OperationKind::PartitionQuery => {
            let query = json!({
                "query": "SELECT * FROM c WHERE c.customerId = @customer",
                "parameters": [{ "name": "@customer", "value": customer_id(n) }],
            });
            connection
                .request(
                    Method::POST,
                    path,
                    &[
                        (headers::X_MS_DOCUMENTDB_ISQUERY, "true"),
                        (
                            headers::CONTENT_TYPE,
                            headers::values::CONTENT_TYPE_QUERY_JSON,
                        ),
                        (headers::X_MS_DOCUMENTDB_PARTITIONKEY, &partition_key),
                    ],
                    Some(query.to_string().into_bytes()),
                )
                .await
        }
        OperationKind::CrossPartitionQuery => {
            let query = json!({
                "query": "SELECT c.id, c.customerId, c.total FROM c WHERE c.status = @status AND c.total > @min",
                "parameters": [
                    { "name": "@status", "value": "shipped" },
                    { "name": "@min", "value": n % 200 },
                ],
            });
            connection
                .request(
                    Method::POST,
                    path,
                    &[
                        (headers::X_MS_DOCUMENTDB_ISQUERY, "true"),
                        (
                            headers::CONTENT_TYPE,
                            headers::values::CONTENT_TYPE_QUERY_JSON,
                        ),
                        (headers::X_MS_DOCUMENTDB_QUERY_ENABLECROSSPARTITION, "true"),
                        (headers::X_MS_MAX_ITEM_COUNT, PAGE_ITEMS),
                    ],
                    Some(query.to_string().into_bytes()),
                )
                .await
        }
        OperationKind::FeedPage => {
            let mut feed_headers = vec![
                (headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED),
                (headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID, range_id),
                (headers::X_MS_MAX_ITEM_COUNT, PAGE_ITEMS),
            ];
            if let Some(etag) = feed_etag {
                feed_headers.push((headers::IF_NONE_MATCH, etag));
            }
            connection
                .request(Method::GET, path, &feed_headers, None)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(SoakOptions::default().validate().is_ok());
    }

    #[test]
    fn a_zero_duration_is_refused() {
        let options = SoakOptions {
            duration_s: 0,
            ..SoakOptions::default()
        };
        let message = options.validate().unwrap_err().to_string();
        assert!(
            message.contains("duration must be 1 to 86400 seconds, not 0"),
            "{message}"
        );
    }

    #[test]
    fn the_mix_adds_up_to_a_hundred_in_index_order() {
        assert_eq!(MIX.iter().map(|(_, share)| share).sum::<u64>(), 100);
        for (index, (kind, _)) in MIX.iter().enumerate() {
            assert_eq!(kind.index(), index);
        }
        let mut picked = [0u64; MIX.len()];
        for roll in 0..100 {
            picked[OperationKind::pick(roll).index()] += 1;
        }
        assert_eq!(picked, MIX.map(|(_, share)| share));
    }

    #[test]
    fn the_file_limit_is_raised_to_the_hard_limit_only_when_needed() {
        assert_eq!(files_needed(1000, true), 2256);
        assert_eq!(files_needed(1000, false), 1256);
        assert_eq!(
            raised_file_limit(1000, 2256, Some(4096), Some(4096)).unwrap(),
            None
        );
        assert_eq!(raised_file_limit(1000, 2256, None, None).unwrap(), None);
        assert_eq!(
            raised_file_limit(1000, 2256, Some(1024), Some(524_288)).unwrap(),
            Some(524_288)
        );
        assert_eq!(
            raised_file_limit(1000, 2256, Some(1024), None).unwrap(),
            Some(2256)
        );
        let message = raised_file_limit(1000, 2256, Some(1024), Some(1024))
            .unwrap_err()
            .to_string();
        assert_eq!(
            message,
            "1000 connections need about 2256 open files, but this process may open 1024 (hard limit 1024): raise it (ulimit -n 2256) and run again"
        );
    }

    #[tokio::test]
    async fn endpoints_must_be_plain_http_without_a_path() {
        let addr = resolve_endpoint("http://127.0.0.1:9000/").await.unwrap();
        assert_eq!(addr, "127.0.0.1:9000".parse().unwrap());
        let addr = resolve_endpoint("HTTP://127.0.0.1").await.unwrap();
        assert_eq!(addr.port(), DEFAULT_PORT);
        for url in [
            "https://127.0.0.1:8081",
            "127.0.0.1:8081",
            "http://127.0.0.1:8081/dbs",
        ] {
            assert!(resolve_endpoint(url).await.is_err(), "{url}");
        }
    }

    #[test]
    fn error_summaries_name_each_kind_and_status() {
        let mut report_operations: Vec<OperationReport> = MIX
            .iter()
            .map(|(kind, share)| OperationReport {
                kind: *kind,
                share_percent: *share,
                count: 0,
                per_s: 0.0,
                latency: LatencySummary::from_samples(Vec::new()),
                throttled: 0,
                errors: BTreeMap::new(),
            })
            .collect();
        report_operations[0].errors.insert("500".into(), 2);
        report_operations[1].errors.insert("connection".into(), 1);
        let report = SoakReport {
            machine: MachineInfo::detect(),
            load_average_before: None,
            parameters: SoakOptions::default(),
            item_bytes: ITEM_BYTES,
            n_partition_keys: N_PARTITION_KEYS,
            preload_per_s: 0.0,
            elapsed_s: 1.0,
            operations: report_operations,
            all: LatencySummary::from_samples(Vec::new()),
            per_s: 0.0,
            throttled: 7,
            errors: 3,
            error_examples: Vec::new(),
            rss_mb: None,
            open_fds: None,
        };
        assert_eq!(
            report.error_summary().unwrap(),
            "3 of the soak's requests failed (point read: 2 × 500; upsert: 1 × connection); 429s, not failures: 7"
        );
    }
}
