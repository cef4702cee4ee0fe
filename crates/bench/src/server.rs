//! `tributary bench server`: the Cosmos DB REST API over loopback, as an SDK would use it.
//!
//! The benchmark opens a fresh store in a temporary directory, starts the server in this
//! process (plain HTTP on `127.0.0.1`, a free port, the emulator key) and drives it with
//! `n_connections` keep-alive HTTP/1.1 connections, each sending one signed request at a time:
//!
//! 1. **setup**: create the database and a container with `n_feed_ranges` ranges (asked for as
//!    `x-ms-offer-throughput`), and list its partition key ranges.
//! 2. **upserts**: `n_items` documents of about 1 KB, `POST .../docs` with
//!    `x-ms-documentdb-is-upsert: true`.
//! 3. **point reads**: `n_reads` `GET .../docs/{id}` of documents picked at random.
//! 4. **feed catch-up**: for each range, `GET .../docs` with `A-IM: Incremental Feed` and
//!    `x-ms-max-item-count`, following the `etag` in `If-None-Match` until a 304. It must
//!    return every document once.
//! 5. **query pages**: `SELECT * FROM c` across partitions in pages of `feed_page_items`,
//!    following `x-ms-continuation` to the end. It must return every document once.
//! 6. **partition-key queries**: [`N_PARTITION_KEY_QUERIES`] queries
//!    `SELECT * FROM c WHERE c.customerId = @customer`, one key after another; each must
//!    return exactly that key's documents.
//!
//! `ready_ms` is the time from the start of `Store::open` to the first authenticated
//! `GET /` answered; `idle_rss_mb` is the process's resident memory right then. The load
//! generator runs in the same process and on the same runtime as the server, so
//! `peak_rss_mb` covers both, and both share the CPUs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use hyper::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;
use tokio::task::JoinSet;
use tributary_server::{AccountKeys, Server, ServerConfig};
use tributary_store::{Durability, MAX_FEED_RANGES, MAX_PAGE_ITEMS, Store, StoreOptions};
use tributary_wire::auth::{EMULATOR_KEY, MasterKey};
use tributary_wire::headers;

use crate::error::BenchError;
use crate::http::CosmosConnection;
use crate::latency::{LatencySummary, milliseconds, per_second};
use crate::machine::{self, MachineInfo};
use crate::progress::PhaseProgress;
use crate::table::{self, Row};
use crate::workload::{
    ITEM_BYTES, N_PARTITION_KEYS, PARTITION_KEY_PATH, customer_id, order_document, order_id,
    splitmix64,
};
use crate::{durability_name, join_samples, new_store_dir};

/// The benchmark's database.
pub(crate) const DATABASE: &str = "bench";
/// The benchmark's container.
pub(crate) const CONTAINER: &str = "orders";
/// Request units per second the server gives one feed range (`THROUGHPUT_PER_RANGE`).
const THROUGHPUT_PER_RANGE: u32 = 10_000;
/// Most client connections.
pub const MAX_CONNECTIONS: usize = 1024;
/// Most requests one phase may send.
pub const MAX_PHASE_REQUESTS: u64 = 100_000_000;
/// Queries of the partition-key query phase.
pub const N_PARTITION_KEY_QUERIES: u64 = 200;
/// Seed of the point reads' choice of documents.
const READ_SEED: u64 = 0x7269_6275_7461_7279;

/// The sizes of a server benchmark run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerBenchOptions {
    /// Documents upserted.
    pub n_items: u64,
    /// Point reads of random upserted documents.
    pub n_reads: u64,
    /// Concurrent keep-alive connections (one request in flight on each).
    pub n_connections: usize,
    /// `x-ms-max-item-count` of the feed catch-up.
    pub feed_page_items: usize,
    /// Feed ranges of the container.
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

pub(crate) fn serialize_durability<S: serde::Serializer>(
    durability: &Durability,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(durability_name(*durability))
}

impl Default for ServerBenchOptions {
    fn default() -> Self {
        ServerBenchOptions {
            n_items: 50_000,
            n_reads: 50_000,
            n_connections: 32,
            feed_page_items: 1000,
            n_feed_ranges: 4,
            durability: Durability::Fsync,
            parent_dir: None,
            show_progress: false,
        }
    }
}

impl ServerBenchOptions {
    /// Checks every size against its limit.
    ///
    /// # Errors
    /// [`BenchError::InvalidParameter`] naming the first size out of range.
    pub fn validate(&self) -> Result<(), BenchError> {
        let checks: [(bool, String); 5] = [
            (
                (1..=MAX_PHASE_REQUESTS).contains(&self.n_items),
                format!(
                    "items must be 1 to {MAX_PHASE_REQUESTS}, not {}",
                    self.n_items
                ),
            ),
            (
                (1..=MAX_PHASE_REQUESTS).contains(&self.n_reads),
                format!(
                    "reads must be 1 to {MAX_PHASE_REQUESTS}, not {}",
                    self.n_reads
                ),
            ),
            (
                (1..=MAX_CONNECTIONS).contains(&self.n_connections),
                format!(
                    "connections must be 1 to {MAX_CONNECTIONS}, not {}",
                    self.n_connections
                ),
            ),
            (
                (1..=MAX_PAGE_ITEMS).contains(&self.feed_page_items),
                format!(
                    "feed page size must be 1 to {MAX_PAGE_ITEMS}, not {}",
                    self.feed_page_items
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
}

/// What a server benchmark measured. Latencies are per request, as the client saw them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServerBenchReport {
    /// The machine it ran on.
    pub machine: MachineInfo,
    /// The sizes it ran with.
    pub parameters: ServerBenchOptions,
    /// Serialized size of each document sent.
    pub item_bytes: usize,
    /// Distinct partition key values.
    pub n_partition_keys: u64,
    /// From the start of `Store::open` to the first request answered, ms.
    pub ready_ms: f64,
    /// The part of `ready_ms` spent in `Store::open`, ms.
    pub store_open_ms: f64,
    /// Resident memory once the server answered its first request, before any load, MiB.
    pub idle_rss_mb: Option<f64>,
    /// Upserts acknowledged per second.
    pub upserts_per_s: f64,
    /// Median upsert latency.
    pub upsert_p50_ms: f64,
    /// 99th percentile upsert latency.
    pub upsert_p99_ms: f64,
    /// Upsert latency, all figures.
    pub upsert_ms: LatencySummary,
    /// Point reads answered per second.
    pub point_reads_per_s: f64,
    /// Median point read latency.
    pub read_p50_ms: f64,
    /// 99th percentile point read latency.
    pub read_p99_ms: f64,
    /// Point read latency, all figures.
    pub read_ms: LatencySummary,
    /// Change feed items received per second during the catch-up.
    pub feed_items_per_s: f64,
    /// MiB of response bodies received per second during the catch-up.
    pub feed_mb_per_s: f64,
    /// Latency of one change feed page (including the final 304s).
    pub feed_page_ms: LatencySummary,
    /// Documents received per second paging through `SELECT * FROM c`.
    pub query_items_per_s: f64,
    /// Latency of one page of that query.
    pub query_page_ms: LatencySummary,
    /// Partition-key queries answered per second (one at a time).
    pub pk_queries_per_s: f64,
    /// Latency of one partition-key query.
    pub pk_query_ms: LatencySummary,
    /// The process's peak resident memory (server and load generator), MiB.
    pub peak_rss_mb: Option<f64>,
}

impl ServerBenchReport {
    /// The report as a table for humans.
    pub fn render_text(&self) -> String {
        let p = &self.parameters;
        let mut out = format!(
            "tributary bench server: {} upserts and {} point reads of {}-byte items over {} HTTP/1.1 connections, {} partition keys, {} feed ranges, durability {}\n",
            p.n_items,
            p.n_reads,
            self.item_bytes,
            p.n_connections,
            self.n_partition_keys,
            p.n_feed_ranges,
            durability_name(p.durability),
        );
        out.push_str(&format!("machine: {}\n\n", self.machine.describe()));
        out.push_str(&table::render(&[
            Row {
                phase: "upsert (POST docs)".into(),
                rate: format!("{} req/s", table::thousands(self.upserts_per_s)),
                latency: &self.upsert_ms,
            },
            Row {
                phase: "point read (GET docs/{id})".into(),
                rate: format!("{} req/s", table::thousands(self.point_reads_per_s)),
                latency: &self.read_ms,
            },
            Row {
                phase: format!("feed catch-up (range by range, {}/page)", p.feed_page_items),
                rate: format!(
                    "{} items/s ({:.0} MiB/s)",
                    table::thousands(self.feed_items_per_s),
                    self.feed_mb_per_s
                ),
                latency: &self.feed_page_ms,
            },
            Row {
                phase: format!("query pages (SELECT * FROM c, {}/page)", p.feed_page_items),
                rate: format!("{} items/s", table::thousands(self.query_items_per_s)),
                latency: &self.query_page_ms,
            },
            Row {
                phase: "partition-key query (WHERE c.customerId = @customer)".into(),
                rate: format!("{} queries/s", table::thousands(self.pk_queries_per_s)),
                latency: &self.pk_query_ms,
            },
        ]));
        out.push_str(&format!(
            "\nready in {:.1} ms ({:.1} ms opening the store); idle RSS: {}; peak RSS (server and load generator): {}\n",
            self.ready_ms,
            self.store_open_ms,
            table::mebibytes(self.idle_rss_mb),
            table::mebibytes(self.peak_rss_mb)
        ));
        out
    }
}

/// Runs the server benchmark against an in-process server on a fresh temporary store.
///
/// Call it inside a multi-threaded tokio runtime.
///
/// # Errors
/// [`BenchError::InvalidParameter`] for bad options; [`BenchError::Serve`] if the server
/// cannot start; [`BenchError::Status`], [`BenchError::Transport`] or
/// [`BenchError::BadResponse`] for the first request the server got wrong;
/// [`BenchError::FeedCountMismatch`] if the feed does not return every document.
pub async fn run_server_bench(
    options: &ServerBenchOptions,
) -> Result<ServerBenchReport, BenchError> {
    options.validate()?;
    let dir = new_store_dir(options.parent_dir.as_deref())?;
    let started = Instant::now();
    let store = Arc::new(Store::open(
        dir.path(),
        StoreOptions {
            durability: options.durability,
            ..StoreOptions::default()
        },
    )?);
    let store_open_ms = milliseconds(started.elapsed());
    let server = InProcessServer::start(Arc::clone(&store), dir.path()).await?;
    let measured = drive(server.addr, started, options).await;
    let stopped = server.stop().await;
    store.close();
    let peak_rss_mb = machine::peak_rss_mb();
    let measured = measured?;
    stopped?;
    Ok(ServerBenchReport {
        machine: MachineInfo::detect(),
        parameters: options.clone(),
        item_bytes: ITEM_BYTES,
        n_partition_keys: N_PARTITION_KEYS,
        ready_ms: measured.ready_ms,
        store_open_ms,
        idle_rss_mb: measured.idle_rss_mb,
        upserts_per_s: measured.upserts.rate,
        upsert_p50_ms: measured.upserts.latency.p50_ms,
        upsert_p99_ms: measured.upserts.latency.p99_ms,
        upsert_ms: measured.upserts.latency,
        point_reads_per_s: measured.reads.rate,
        read_p50_ms: measured.reads.latency.p50_ms,
        read_p99_ms: measured.reads.latency.p99_ms,
        read_ms: measured.reads.latency,
        feed_items_per_s: measured.feed.items_per_s,
        feed_mb_per_s: measured.feed.mb_per_s,
        feed_page_ms: measured.feed.page_latency,
        query_items_per_s: measured.queries.items_per_s,
        query_page_ms: measured.queries.page_latency,
        pk_queries_per_s: measured.pk_queries.rate,
        pk_query_ms: measured.pk_queries.latency,
        peak_rss_mb,
    })
}

/// The server, started in this process on a free loopback port (plain HTTP, the emulator
/// key) over a store.
pub(crate) struct InProcessServer {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<Result<(), tributary_server::ServeError>>,
}

impl InProcessServer {
    /// Binds and starts serving `store`, whose directory is `data_dir`.
    pub(crate) async fn start(
        store: Arc<Store>,
        data_dir: &std::path::Path,
    ) -> Result<InProcessServer, BenchError> {
        let config = ServerConfig {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            keys: AccountKeys::emulator(),
            tls: None,
            data_dir: data_dir.to_owned(),
            ..ServerConfig::default()
        };
        let server = Server::bind(config, store).await?;
        let addr = server.local_addr().map_err(|source| BenchError::Connect {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            source,
        })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(server.run(async move {
            // A dropped sender stops the server too.
            let _ = stopped.await;
        }));
        Ok(InProcessServer {
            addr,
            stop,
            serving,
        })
    }

    /// Stops the server and waits for it.
    pub(crate) async fn stop(self) -> Result<(), BenchError> {
        let _ = self.stop.send(());
        self.serving
            .await
            .map_err(|e| BenchError::Task(e.to_string()))??;
        Ok(())
    }
}

struct Measured {
    ready_ms: f64,
    idle_rss_mb: Option<f64>,
    upserts: Throughput,
    reads: Throughput,
    feed: FeedCatchUp,
    queries: FeedCatchUp,
    pk_queries: Throughput,
}

/// How fast a phase went: requests per second and their latencies.
pub(crate) struct Throughput {
    /// Requests per second.
    pub rate: f64,
    /// Latency of each request.
    pub latency: LatencySummary,
}

struct FeedCatchUp {
    items_per_s: f64,
    mb_per_s: f64,
    page_latency: LatencySummary,
}

impl FeedCatchUp {
    /// The rates of a read of every document; an error unless it read `expected` of them.
    fn of_complete_read(
        (n_read, n_bytes): (u64, u64),
        expected: u64,
        elapsed: std::time::Duration,
        latencies: Vec<std::time::Duration>,
    ) -> Result<FeedCatchUp, BenchError> {
        if n_read != expected {
            return Err(BenchError::FeedCountMismatch {
                expected,
                actual: n_read,
            });
        }
        Ok(FeedCatchUp {
            items_per_s: per_second(n_read, elapsed),
            mb_per_s: per_second(n_bytes, elapsed) / (1024.0 * 1024.0),
            page_latency: LatencySummary::from_samples(latencies),
        })
    }
}

/// The client side of the benchmark; every connection it opens is closed when it returns.
async fn drive(
    addr: SocketAddr,
    started: Instant,
    options: &ServerBenchOptions,
) -> Result<Measured, BenchError> {
    let key = Arc::new(
        MasterKey::from_base64(EMULATOR_KEY)
            .map_err(|e| BenchError::InvalidParameter(format!("the emulator key: {e}")))?,
    );
    let mut setup = CosmosConnection::connect(addr, Arc::clone(&key)).await?;
    setup.send(Method::GET, "/", &[], None, &[200]).await?;
    let ready_ms = milliseconds(started.elapsed());
    let idle_rss_mb = machine::current_rss_mb();
    let range_ids = create_container(&mut setup, DATABASE, options.n_feed_ranges).await?;
    let progress = PhaseProgress::start("upsert", options.n_items, "items", options.show_progress);
    let upserts = upsert_items(
        addr,
        &key,
        DATABASE,
        options.n_connections,
        options.n_items,
        &progress,
    )
    .await?;
    drop(progress);
    let reads = read_items(addr, &key, options).await?;
    let feed = catch_up(&mut setup, &range_ids, options).await?;
    let queries = page_through_query(&mut setup, options).await?;
    let pk_queries = query_partition_keys(&mut setup, options).await?;
    Ok(Measured {
        ready_ms,
        idle_rss_mb,
        upserts,
        reads,
        feed,
        queries,
        pk_queries,
    })
}

/// Sends one query of the benchmark's container, as a plain REST client sends it (across
/// partitions, no query-plan capabilities); its status must be one of `expected`.
pub(crate) async fn send_query(
    connection: &mut CosmosConnection,
    body: &serde_json::Value,
    extra_headers: &[(&str, &str)],
    expected: &[u16],
) -> Result<crate::http::Reply, BenchError> {
    let path = format!("/dbs/{DATABASE}/colls/{CONTAINER}/docs");
    let mut request_headers = vec![
        (headers::X_MS_DOCUMENTDB_ISQUERY, "true"),
        (headers::X_MS_DOCUMENTDB_QUERY_ENABLECROSSPARTITION, "true"),
        (
            headers::CONTENT_TYPE,
            headers::values::CONTENT_TYPE_QUERY_JSON,
        ),
    ];
    request_headers.extend_from_slice(extra_headers);
    connection
        .send(
            Method::POST,
            &path,
            &request_headers,
            Some(body.to_string().into_bytes()),
            expected,
        )
        .await
}

/// The documents of a query or feed page.
fn page_documents<'a>(reply: &'a crate::http::Reply) -> Result<FeedBody<'a>, BenchError> {
    serde_json::from_slice(&reply.body).map_err(|e| BenchError::BadResponse {
        method: "POST".into(),
        path: format!("/dbs/{DATABASE}/colls/{CONTAINER}/docs (query)"),
        reason: format!("the query page is not the expected JSON: {e}"),
    })
}

/// Pages through `SELECT * FROM c`, following the continuations to the end.
async fn page_through_query(
    connection: &mut CosmosConnection,
    options: &ServerBenchOptions,
) -> Result<FeedCatchUp, BenchError> {
    let body = json!({ "query": "SELECT * FROM c", "parameters": [] });
    let page_items = options.feed_page_items.to_string();
    let progress = PhaseProgress::start(
        "query-pages",
        options.n_items,
        "items",
        options.show_progress,
    );
    let n_done = progress.counter();
    let max_pages = options.n_items.div_ceil(options.feed_page_items as u64) * 2 + 2;
    let mut latencies = Vec::new();
    let (mut n_read, mut n_bytes) = (0u64, 0u64);
    let mut continuation: Option<String> = None;
    let started = Instant::now();
    loop {
        if latencies.len() as u64 >= max_pages {
            return Err(BenchError::FeedNeverEnds { max_pages });
        }
        let mut request_headers = vec![(headers::X_MS_MAX_ITEM_COUNT, page_items.as_str())];
        if let Some(token) = &continuation {
            request_headers.push((headers::X_MS_CONTINUATION, token.as_str()));
        }
        let sent = Instant::now();
        let reply = send_query(connection, &body, &request_headers, &[200]).await?;
        latencies.push(sent.elapsed());
        n_read += page_documents(&reply)?.documents.len() as u64;
        n_bytes += reply.body.len() as u64;
        n_done.store(n_read, Ordering::Relaxed);
        continuation = reply.header(headers::X_MS_CONTINUATION).map(str::to_owned);
        if continuation.is_none() {
            break;
        }
    }
    FeedCatchUp::of_complete_read(
        (n_read, n_bytes),
        options.n_items,
        started.elapsed(),
        latencies,
    )
}

/// Queries [`N_PARTITION_KEY_QUERIES`] partition keys by their value, one after another.
async fn query_partition_keys(
    connection: &mut CosmosConnection,
    options: &ServerBenchOptions,
) -> Result<Throughput, BenchError> {
    let mut latencies = Vec::new();
    let started = Instant::now();
    for n in 0..N_PARTITION_KEY_QUERIES {
        let key = n % N_PARTITION_KEYS;
        let body = json!({
            "query": "SELECT * FROM c WHERE c.customerId = @customer",
            "parameters": [{ "name": "@customer", "value": customer_id(key) }],
        });
        let sent = Instant::now();
        let reply = send_query(
            connection,
            &body,
            &[(headers::X_MS_MAX_ITEM_COUNT, "1000")],
            &[200],
        )
        .await?;
        latencies.push(sent.elapsed());
        // Upserted documents are `0..n_items`; document `m` has key `m % N_PARTITION_KEYS`.
        let expected = options.n_items / N_PARTITION_KEYS
            + u64::from(key < options.n_items % N_PARTITION_KEYS);
        let actual = page_documents(&reply)?.documents.len() as u64;
        if actual != expected || reply.header(headers::X_MS_CONTINUATION).is_some() {
            return Err(BenchError::FeedCountMismatch { expected, actual });
        }
    }
    Ok(Throughput {
        rate: per_second(latencies.len() as u64, started.elapsed()),
        latency: LatencySummary::from_samples(latencies),
    })
}

#[derive(Deserialize)]
struct PartitionKeyRanges {
    #[serde(rename = "PartitionKeyRanges")]
    ranges: Vec<PartitionKeyRange>,
}

#[derive(Deserialize)]
struct PartitionKeyRange {
    id: String,
}

/// Creates `database` and its container [`CONTAINER`] with `n_feed_ranges` feed ranges;
/// returns the container's partition key range ids.
pub(crate) async fn create_container(
    connection: &mut CosmosConnection,
    database: &str,
    n_feed_ranges: u32,
) -> Result<Vec<String>, BenchError> {
    let body = json!({ "id": database });
    connection
        .send(
            Method::POST,
            "/dbs",
            &[],
            Some(body.to_string().into_bytes()),
            &[201],
        )
        .await?;
    let container = json!({
        "id": CONTAINER,
        "partitionKey": { "paths": [PARTITION_KEY_PATH], "kind": "Hash", "version": 2 },
    });
    let throughput = (n_feed_ranges * THROUGHPUT_PER_RANGE).to_string();
    let colls = format!("/dbs/{database}/colls");
    connection
        .send(
            Method::POST,
            &colls,
            &[("x-ms-offer-throughput", &throughput)],
            Some(container.to_string().into_bytes()),
            &[201],
        )
        .await?;
    let path = format!("{colls}/{CONTAINER}/pkranges");
    let reply = connection
        .send(Method::GET, &path, &[], None, &[200])
        .await?;
    let ranges: PartitionKeyRanges =
        serde_json::from_slice(&reply.body).map_err(|e| BenchError::BadResponse {
            method: "GET".into(),
            path: path.clone(),
            reason: format!("the partition key ranges are not the expected JSON: {e}"),
        })?;
    if ranges.ranges.is_empty() {
        return Err(BenchError::BadResponse {
            method: "GET".into(),
            path,
            reason: "the container has no partition key ranges".into(),
        });
    }
    Ok(ranges.ranges.into_iter().map(|range| range.id).collect())
}

/// The partition key header of document `n`: `["customer-0042"]`.
pub(crate) fn partition_key_header(n: u64) -> String {
    json!([customer_id(n)]).to_string()
}

/// Runs `n_requests` requests spread over `n_connections` connections, one in flight on each;
/// `request(connection, i)` sends the `i`-th.
pub(crate) async fn run_load<F, Fut>(
    addr: SocketAddr,
    key: &Arc<MasterKey>,
    n_connections: usize,
    n_requests: u64,
    progress: &PhaseProgress,
    request: F,
) -> Result<Throughput, BenchError>
where
    F: Fn(CosmosConnection, u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<CosmosConnection, BenchError>> + Send,
{
    let mut connections = Vec::with_capacity(n_connections);
    for _ in 0..n_connections {
        connections.push(CosmosConnection::connect(addr, Arc::clone(key)).await?);
    }
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for connection in connections {
        let (next, n_done, request) = (Arc::clone(&next), progress.counter(), request.clone());
        tasks.spawn(async move {
            let mut connection = connection;
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n_requests {
                    return Ok(latencies);
                }
                let sent = Instant::now();
                connection = request(connection, i).await?;
                latencies.push(sent.elapsed());
                n_done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let latencies = join_samples(tasks).await?;
    let elapsed = started.elapsed();
    Ok(Throughput {
        rate: per_second(n_requests, elapsed),
        latency: LatencySummary::from_samples(latencies),
    })
}

/// Upserts documents `0..n_items` into `database`'s [`CONTAINER`] over `n_connections`
/// connections, counting them in `progress`.
pub(crate) async fn upsert_items(
    addr: SocketAddr,
    key: &Arc<MasterKey>,
    database: &str,
    n_connections: usize,
    n_items: u64,
    progress: &PhaseProgress,
) -> Result<Throughput, BenchError> {
    let path: Arc<str> = format!("/dbs/{database}/colls/{CONTAINER}/docs").into();
    run_load(
        addr,
        key,
        n_connections,
        n_items,
        progress,
        move |mut connection, n| {
            let path = Arc::clone(&path);
            async move {
                let body = order_document(n).to_string().into_bytes();
                let partition_key = partition_key_header(n);
                connection
                    .send(
                        Method::POST,
                        &path,
                        &[
                            (headers::X_MS_DOCUMENTDB_PARTITIONKEY, &partition_key),
                            (headers::X_MS_DOCUMENTDB_IS_UPSERT, "true"),
                        ],
                        Some(body),
                        &[200, 201],
                    )
                    .await?;
                Ok(connection)
            }
        },
    )
    .await
}

async fn read_items(
    addr: SocketAddr,
    key: &Arc<MasterKey>,
    options: &ServerBenchOptions,
) -> Result<Throughput, BenchError> {
    let progress = PhaseProgress::start(
        "point-read",
        options.n_reads,
        "reads",
        options.show_progress,
    );
    let n_items = options.n_items;
    run_load(
        addr,
        key,
        options.n_connections,
        options.n_reads,
        &progress,
        move |mut connection, i| async move {
            let n = splitmix64(READ_SEED ^ i) % n_items;
            let path = format!("/dbs/{DATABASE}/colls/{CONTAINER}/docs/{}", order_id(n));
            let partition_key = partition_key_header(n);
            let reply = connection
                .send(
                    Method::GET,
                    &path,
                    &[(headers::X_MS_DOCUMENTDB_PARTITIONKEY, &partition_key)],
                    None,
                    &[200],
                )
                .await?;
            if reply.body.len() < ITEM_BYTES {
                return Err(BenchError::BadResponse {
                    method: "GET".into(),
                    path,
                    reason: format!(
                        "the item body is {} bytes, less than the {ITEM_BYTES} written",
                        reply.body.len()
                    ),
                });
            }
            Ok(connection)
        },
    )
    .await
}

#[derive(Deserialize)]
struct FeedBody<'a> {
    #[serde(rename = "Documents", borrow)]
    documents: Vec<&'a RawValue>,
}

/// Reads every range's change feed from the beginning until a 304, one range after another.
async fn catch_up(
    connection: &mut CosmosConnection,
    range_ids: &[String],
    options: &ServerBenchOptions,
) -> Result<FeedCatchUp, BenchError> {
    let path = format!("/dbs/{DATABASE}/colls/{CONTAINER}/docs");
    let page_items = options.feed_page_items.to_string();
    let progress = PhaseProgress::start(
        "feed-catchup",
        options.n_items,
        "items",
        options.show_progress,
    );
    let n_done = progress.counter();
    // Every page but each range's last should be full; allow twice that, plus the 304s.
    let max_pages =
        options.n_items.div_ceil(options.feed_page_items as u64) * 2 + 2 * range_ids.len() as u64;
    let mut latencies = Vec::new();
    let (mut n_read, mut n_bytes) = (0u64, 0u64);
    let started = Instant::now();
    for range_id in range_ids {
        let mut etag: Option<String> = None;
        loop {
            if latencies.len() as u64 >= max_pages {
                return Err(BenchError::FeedNeverEnds { max_pages });
            }
            let mut request_headers = vec![
                (headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED),
                (
                    headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID,
                    range_id.as_str(),
                ),
                (headers::X_MS_MAX_ITEM_COUNT, page_items.as_str()),
            ];
            if let Some(etag) = &etag {
                request_headers.push((headers::IF_NONE_MATCH, etag.as_str()));
            }
            let sent = Instant::now();
            let reply = connection
                .send(Method::GET, &path, &request_headers, None, &[200, 304])
                .await?;
            latencies.push(sent.elapsed());
            if reply.status == 304 {
                break;
            }
            let bad = |reason: String| BenchError::BadResponse {
                method: "GET".into(),
                path: format!("{path} (range {range_id})"),
                reason,
            };
            let page: FeedBody<'_> = serde_json::from_slice(&reply.body).map_err(|e| {
                bad(format!(
                    "the change feed page is not the expected JSON: {e}"
                ))
            })?;
            if page.documents.is_empty() {
                return Err(bad("a 200 change feed page holds no documents".into()));
            }
            n_read += page.documents.len() as u64;
            n_bytes += reply.body.len() as u64;
            n_done.store(n_read, Ordering::Relaxed);
            let next = reply
                .header(headers::ETAG)
                .ok_or_else(|| bad("the change feed page has no etag".into()))?;
            etag = Some(next.to_owned());
        }
    }
    FeedCatchUp::of_complete_read(
        (n_read, n_bytes),
        options.n_items,
        started.elapsed(),
        latencies,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(ServerBenchOptions::default().validate().is_ok());
    }

    #[test]
    fn zero_connections_are_refused() {
        let options = ServerBenchOptions {
            n_connections: 0,
            ..ServerBenchOptions::default()
        };
        let message = options.validate().unwrap_err().to_string();
        assert!(
            message.contains("connections must be 1 to 1024, not 0"),
            "{message}"
        );
    }

    #[test]
    fn partition_keys_travel_as_a_json_array() {
        assert_eq!(partition_key_header(1042), r#"["customer-0042"]"#);
    }
}
