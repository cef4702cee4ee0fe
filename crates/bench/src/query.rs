//! `tributary bench query`: the SQL queries of issue 10's benchmark, over the REST API on
//! loopback, against a container of `n_items` orders.
//!
//! The store is filled directly (transactions of [`LOAD_BATCH`] creates; loading is not
//! measured), then the server starts in this process (plain HTTP on `127.0.0.1`) and one
//! keep-alive connection sends each query as a plain REST client does: across partitions,
//! without the SDKs' query-plan capabilities, so the server answers the whole query, following
//! `x-ms-continuation` until the last page. A query's latency is that of all its pages.
//!
//! Each document is the workload's order ([`order_document`]) with a `bucket` property,
//! `n % (n_items / 100)`, so an equality filter on it matches 100 documents whatever the size.
//!
//! | query | text | expected |
//! |---|---|---|
//! | equality | `SELECT * FROM c WHERE c.bucket = @b` | 100 documents |
//! | range, `ORDER BY`, `TOP 100` | `SELECT TOP 100 * FROM c WHERE c.total >= @low ORDER BY c.total` | 100 documents, in order |
//! | one partition key | `SELECT * FROM c WHERE c.customerId = @customer` (the key pinned by the filter) | that key's documents |
//! | `GROUP BY` aggregate | `SELECT c.status, COUNT(1) AS orders, SUM(c.total) AS revenue FROM c GROUP BY c.status` | 5 rows |
//! | full scan | `SELECT * FROM c WHERE c.total + 1 < 0` (arithmetic: no index lookup answers it) | nothing (every document read) |
//! | paging | `SELECT * FROM c`, pages of [`PAGE_ITEMS`], the first [`PAGED_RESULTS`] results | each page timed |
//!
//! A query the server refuses (for example a `GROUP BY` whose input passes the query memory
//! limit) is reported with the server's message, not as a benchmark failure; a wrong result
//! is a failure.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tributary_store::{
    ContainerDefinition, Durability, ItemWrite, MAX_FEED_RANGES, OperationResult, Store,
    StoreOptions, TransactionOperation,
};
use tributary_wire::auth::{EMULATOR_KEY, MasterKey};
use tributary_wire::headers;

use crate::error::BenchError;
use crate::http::CosmosConnection;
use crate::latency::{LatencySummary, per_second};
use crate::machine::{self, MachineInfo};
use crate::progress::PhaseProgress;
use crate::server::{CONTAINER, DATABASE, InProcessServer, send_query};
use crate::table::{self, Row};
use crate::workload::{N_PARTITION_KEYS, PARTITION_KEY_PATH, customer_id, order_document};
use crate::{durability_name, new_store_dir};

/// Documents that match one equality filter.
pub const BUCKET_SIZE: u64 = 100;
/// Creates per loading transaction.
const LOAD_BATCH: u64 = 100;
/// Loading transactions in flight.
const LOAD_BATCHES_IN_FLIGHT: usize = 8;
/// `x-ms-max-item-count` of the paging query.
pub const PAGE_ITEMS: u64 = 1_000;
/// Results the paging query reads (fewer when the container holds fewer).
pub const PAGED_RESULTS: u64 = 100_000;
/// Pages whose latency is compared at each end of the paging query.
const END_PAGES: usize = 10;
/// `x-ms-max-item-count` of the other queries.
const QUERY_PAGE_ITEMS: &str = "1000";
/// Fewest and most documents.
const ITEMS_RANGE: (u64, u64) = (1_000, 10_000_000);
/// Most runs of each query.
pub const MAX_RUNS: usize = 10_000;

/// The sizes of a query benchmark run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueryBenchOptions {
    /// Documents in the container.
    pub n_items: u64,
    /// Runs of each query (with different parameters).
    pub n_runs: usize,
    /// Feed ranges of the container.
    pub n_feed_ranges: u32,
    /// When commits are acknowledged (loading only).
    #[serde(serialize_with = "crate::server::serialize_durability")]
    pub durability: Durability,
    /// Where the temporary store directory is made (`None`: the system's temp directory).
    pub parent_dir: Option<PathBuf>,
    /// Print progress lines to stderr during long phases.
    #[serde(skip)]
    pub show_progress: bool,
}

impl Default for QueryBenchOptions {
    fn default() -> Self {
        QueryBenchOptions {
            n_items: 100_000,
            n_runs: 20,
            n_feed_ranges: 4,
            durability: Durability::Fsync,
            parent_dir: None,
            show_progress: false,
        }
    }
}

impl QueryBenchOptions {
    /// Checks every size against its limit.
    ///
    /// # Errors
    /// [`BenchError::InvalidParameter`] naming the first size out of range.
    pub fn validate(&self) -> Result<(), BenchError> {
        let (fewest, most) = ITEMS_RANGE;
        let checks = [
            (
                (fewest..=most).contains(&self.n_items),
                format!("items must be {fewest} to {most}, not {}", self.n_items),
            ),
            (
                (1..=MAX_RUNS).contains(&self.n_runs),
                format!("runs must be 1 to {MAX_RUNS}, not {}", self.n_runs),
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

/// One query's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueryFigures {
    /// What it is.
    pub name: String,
    /// Its text.
    pub text: String,
    /// Latency of a whole query (every page), or `None` if the server refused it.
    pub latency: Option<LatencySummary>,
    /// Documents (or rows) each run returned.
    pub results_per_run: u64,
    /// Documents the container holds per second of query (for the full scan).
    pub scanned_items_per_s: Option<f64>,
    /// The server's message when it refused the query.
    pub refused: Option<String>,
}

/// What paging through results measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PagingFigures {
    /// Results read.
    pub n_results: u64,
    /// Latency of every page.
    pub page_ms: LatencySummary,
    /// Median latency of the first [`END_PAGES`] pages.
    pub first_pages_p50_ms: f64,
    /// Median latency of the last [`END_PAGES`] pages.
    pub last_pages_p50_ms: f64,
    /// Results per second over the whole read.
    pub results_per_s: f64,
}

/// What a query benchmark measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QueryBenchReport {
    /// The machine it ran on.
    pub machine: MachineInfo,
    /// The sizes it ran with.
    pub parameters: QueryBenchOptions,
    /// Documents loaded per second (store transactions; not a query figure).
    pub load_items_per_s: f64,
    /// The queries, in the order they ran.
    pub queries: Vec<QueryFigures>,
    /// Paging through `SELECT * FROM c`.
    pub paging: PagingFigures,
    /// The process's peak resident memory (server and client), MiB.
    pub peak_rss_mb: Option<f64>,
}

impl QueryBenchReport {
    /// The report as a table for humans.
    pub fn render_text(&self) -> String {
        let p = &self.parameters;
        let mut out = format!(
            "tributary bench query: {} documents of ~1 KB over {} partition keys, {} feed ranges, {} runs per query (loaded at {} items/s, durability {})\n",
            p.n_items,
            N_PARTITION_KEYS,
            p.n_feed_ranges,
            p.n_runs,
            table::thousands(self.load_items_per_s),
            durability_name(p.durability),
        );
        out.push_str(&format!("machine: {}\n\n", self.machine.describe()));
        let mut rows = Vec::new();
        let mut refusals = Vec::new();
        for query in &self.queries {
            match &query.latency {
                Some(latency) => rows.push(Row {
                    phase: query.name.clone(),
                    rate: match query.scanned_items_per_s {
                        Some(rate) => format!("{} items/s scanned", table::thousands(rate)),
                        None => format!("{} results", query.results_per_run),
                    },
                    latency,
                }),
                None => refusals.push(format!(
                    "{}: refused: {}",
                    query.name,
                    query.refused.as_deref().unwrap_or("?")
                )),
            }
        }
        rows.push(Row {
            phase: format!(
                "paging (SELECT * FROM c, {PAGE_ITEMS}/page, {} results)",
                self.paging.n_results
            ),
            rate: format!("{} results/s", table::thousands(self.paging.results_per_s)),
            latency: &self.paging.page_ms,
        });
        out.push_str(&table::render(&rows));
        out.push_str(&format!(
            "\npaging: first {END_PAGES} pages p50 {:.1} ms, last {END_PAGES} pages p50 {:.1} ms\n",
            self.paging.first_pages_p50_ms, self.paging.last_pages_p50_ms
        ));
        for refusal in refusals {
            out.push_str(&format!("{refusal}\n"));
        }
        out.push_str(&format!(
            "peak RSS (server and client): {}\n",
            table::mebibytes(self.peak_rss_mb)
        ));
        out
    }
}

/// Document `n` of a container of `n_items`: the workload's order with its `bucket`.
fn query_document(n: u64, n_items: u64) -> Value {
    let mut document = order_document(n);
    document["bucket"] = json!(n % n_buckets(n_items));
    document
}

fn n_buckets(n_items: u64) -> u64 {
    (n_items / BUCKET_SIZE).max(1)
}

/// Runs the query benchmark against an in-process server on a fresh temporary store.
///
/// Call it inside a multi-threaded tokio runtime.
///
/// # Errors
/// [`BenchError::InvalidParameter`] for bad options; [`BenchError::Serve`] if the server
/// cannot start; [`BenchError::TransactionRejected`] if loading fails;
/// [`BenchError::BadResponse`] for a query whose results are wrong.
pub async fn run_query_bench(options: &QueryBenchOptions) -> Result<QueryBenchReport, BenchError> {
    options.validate()?;
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
    let load_items_per_s = load(&store, options).await?;
    let server = InProcessServer::start(Arc::clone(&store), dir.path()).await?;
    let measured = measure(server.addr, options).await;
    let stopped = server.stop().await;
    store.close();
    let peak_rss_mb = machine::peak_rss_mb();
    let (queries, paging) = measured?;
    stopped?;
    Ok(QueryBenchReport {
        machine: MachineInfo::detect(),
        parameters: options.clone(),
        load_items_per_s,
        queries,
        paging,
        peak_rss_mb,
    })
}

/// Fills the container; answers the documents loaded per second.
async fn load(store: &Arc<Store>, options: &QueryBenchOptions) -> Result<f64, BenchError> {
    let n_items = options.n_items;
    let progress = PhaseProgress::start("load", n_items, "items", options.show_progress);
    let next_batch = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let n_batches = n_items.div_ceil(LOAD_BATCH);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..LOAD_BATCHES_IN_FLIGHT {
        let (store, next_batch, n_done) = (
            Arc::clone(store),
            Arc::clone(&next_batch),
            progress.counter(),
        );
        tasks.spawn(async move {
            loop {
                let batch = next_batch.fetch_add(1, Ordering::Relaxed);
                if batch >= n_batches {
                    return Ok::<(), BenchError>(());
                }
                let first = batch * LOAD_BATCH;
                let end = (first + LOAD_BATCH).min(n_items);
                let operations: Vec<TransactionOperation> = (first..end)
                    .map(|n| TransactionOperation {
                        container: CONTAINER.to_owned(),
                        write: ItemWrite::create(query_document(n, n_items)),
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
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|e| BenchError::Task(e.to_string()))??;
    }
    Ok(per_second(n_items, started.elapsed()))
}

/// A query's parameters for run `run`, and a check of its results.
struct QuerySpec {
    name: &'static str,
    text: &'static str,
    parameters: fn(u64, u64) -> Value,
    check: fn(&[Value], u64, u64) -> Result<(), String>,
    /// Report the container's size over the latency as a scan rate.
    is_scan: bool,
}

/// The queries, in the order they run.
fn specs() -> [QuerySpec; 5] {
    [
        QuerySpec {
            name: "equality (c.bucket = @b)",
            text: "SELECT * FROM c WHERE c.bucket = @b",
            parameters: |run, n_items| json!([{"name": "@b", "value": (run * 7_919) % n_buckets(n_items)}]),
            check: |rows, _, n_items| {
                let expected = if n_items >= BUCKET_SIZE {
                    BUCKET_SIZE
                } else {
                    n_items
                };
                count_is(rows, expected)
            },
            is_scan: false,
        },
        QuerySpec {
            name: "range + ORDER BY + TOP 100",
            text: "SELECT TOP 100 * FROM c WHERE c.total >= @low ORDER BY c.total",
            parameters: |run, _| json!([{"name": "@low", "value": (run % 50) as f64 * 10.0}]),
            check: |rows, _, _| {
                count_is(rows, 100)?;
                let totals: Vec<f64> = rows
                    .iter()
                    .filter_map(|row| row["total"].as_f64())
                    .collect();
                if totals.len() != rows.len() || totals.windows(2).any(|pair| pair[0] > pair[1]) {
                    return Err("the results are not ordered by total".into());
                }
                Ok(())
            },
            is_scan: false,
        },
        QuerySpec {
            name: "one partition key (WHERE c.customerId = @customer)",
            text: "SELECT * FROM c WHERE c.customerId = @customer",
            parameters: |run, _| json!([{"name": "@customer", "value": customer_id(run * 37)}]),
            check: |rows, run, n_items| {
                let key = (run * 37) % N_PARTITION_KEYS;
                let expected =
                    n_items / N_PARTITION_KEYS + u64::from(key < n_items % N_PARTITION_KEYS);
                count_is(rows, expected)
            },
            is_scan: false,
        },
        QuerySpec {
            name: "GROUP BY aggregate (whole container)",
            text: "SELECT c.status, COUNT(1) AS orders, SUM(c.total) AS revenue FROM c GROUP BY c.status",
            parameters: |_, _| json!([]),
            check: |rows, _, n_items| {
                let orders: u64 = rows.iter().filter_map(|row| row["orders"].as_u64()).sum();
                let statuses: BTreeSet<String> = rows
                    .iter()
                    .filter_map(|row| row["status"].as_str().map(str::to_owned))
                    .collect();
                if orders != n_items || statuses.len() != rows.len() {
                    return Err(format!("{} rows counting {orders} orders", rows.len()));
                }
                Ok(())
            },
            is_scan: false,
        },
        QuerySpec {
            name: "full scan (c.total + 1 < 0, no match)",
            text: "SELECT * FROM c WHERE c.total + 1 < 0",
            parameters: |_, _| json!([]),
            check: |rows, _, _| count_is(rows, 0),
            is_scan: true,
        },
    ]
}

fn count_is(rows: &[Value], expected: u64) -> Result<(), String> {
    if rows.len() as u64 == expected {
        Ok(())
    } else {
        Err(format!("{} results, expected {expected}", rows.len()))
    }
}

/// Runs every query, then the paging read.
async fn measure(
    addr: std::net::SocketAddr,
    options: &QueryBenchOptions,
) -> Result<(Vec<QueryFigures>, PagingFigures), BenchError> {
    let key = Arc::new(
        MasterKey::from_base64(EMULATOR_KEY)
            .map_err(|e| BenchError::InvalidParameter(format!("the emulator key: {e}")))?,
    );
    let mut connection = CosmosConnection::connect(addr, key).await?;
    let mut queries = Vec::new();
    for spec in specs() {
        queries.push(run_query(&mut connection, &spec, options).await?);
    }
    let paging = page_through(&mut connection, options).await?;
    Ok((queries, paging))
}

/// Runs one query `n_runs` times, each to its last page.
async fn run_query(
    connection: &mut CosmosConnection,
    spec: &QuerySpec,
    options: &QueryBenchOptions,
) -> Result<QueryFigures, BenchError> {
    let progress = PhaseProgress::start(
        "query",
        options.n_runs as u64,
        "runs",
        options.show_progress,
    );
    let n_done = progress.counter();
    let mut latencies = Vec::new();
    let mut results_per_run = 0;
    for run in 0..options.n_runs as u64 {
        let body =
            json!({"query": spec.text, "parameters": (spec.parameters)(run, options.n_items)});
        let sent = Instant::now();
        let rows = match all_pages(connection, &body).await? {
            Ok(rows) => rows,
            Err(refusal) => {
                return Ok(QueryFigures {
                    name: spec.name.into(),
                    text: spec.text.into(),
                    latency: None,
                    results_per_run: 0,
                    scanned_items_per_s: None,
                    refused: Some(refusal),
                });
            }
        };
        latencies.push(sent.elapsed());
        (spec.check)(&rows, run, options.n_items).map_err(|reason| BenchError::BadResponse {
            method: "POST".into(),
            path: format!("/dbs/{DATABASE}/colls/{CONTAINER}/docs ({})", spec.text),
            reason,
        })?;
        results_per_run = rows.len() as u64;
        n_done.fetch_add(1, Ordering::Relaxed);
    }
    let latency = LatencySummary::from_samples(latencies);
    let scanned_items_per_s = spec
        .is_scan
        .then(|| options.n_items as f64 / (latency.p50_ms / 1000.0));
    Ok(QueryFigures {
        name: spec.name.into(),
        text: spec.text.into(),
        latency: Some(latency),
        results_per_run,
        scanned_items_per_s,
        refused: None,
    })
}

/// Every result of a query, following continuations; `Ok(Err(message))` when the server
/// answers 400 (a query it refuses).
async fn all_pages(
    connection: &mut CosmosConnection,
    body: &Value,
) -> Result<Result<Vec<Value>, String>, BenchError> {
    let mut rows = Vec::new();
    let mut continuation: Option<String> = None;
    loop {
        let mut request_headers = vec![(headers::X_MS_MAX_ITEM_COUNT, QUERY_PAGE_ITEMS)];
        if let Some(token) = &continuation {
            request_headers.push((headers::X_MS_CONTINUATION, token.as_str()));
        }
        let reply = match send_query(connection, body, &request_headers, &[200, 400]).await? {
            reply if reply.status == 400 => {
                let error: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
                let message = error["message"].as_str().unwrap_or("400").to_owned();
                return Ok(Err(message));
            }
            reply => reply,
        };
        let page: Value = serde_json::from_slice(&reply.body).map_err(|e| bad_page(&e))?;
        if let Some(documents) = page["Documents"].as_array() {
            rows.extend(documents.iter().cloned());
        }
        continuation = reply.header(headers::X_MS_CONTINUATION).map(str::to_owned);
        if continuation.is_none() {
            return Ok(Ok(rows));
        }
    }
}

fn bad_page(error: &serde_json::Error) -> BenchError {
    BenchError::BadResponse {
        method: "POST".into(),
        path: format!("/dbs/{DATABASE}/colls/{CONTAINER}/docs (query)"),
        reason: format!("the query page is not the expected JSON: {error}"),
    }
}

/// Reads the first [`PAGED_RESULTS`] results of `SELECT * FROM c` page by page.
async fn page_through(
    connection: &mut CosmosConnection,
    options: &QueryBenchOptions,
) -> Result<PagingFigures, BenchError> {
    let wanted = PAGED_RESULTS.min(options.n_items);
    let progress = PhaseProgress::start("paging", wanted, "results", options.show_progress);
    let n_done = progress.counter();
    let body = json!({"query": "SELECT * FROM c", "parameters": []});
    let page_items = PAGE_ITEMS.to_string();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut n_results = 0u64;
    let mut continuation: Option<String> = None;
    let started = Instant::now();
    while n_results < wanted {
        let mut request_headers = vec![(headers::X_MS_MAX_ITEM_COUNT, page_items.as_str())];
        if let Some(token) = &continuation {
            request_headers.push((headers::X_MS_CONTINUATION, token.as_str()));
        }
        let sent = Instant::now();
        let reply = send_query(connection, &body, &request_headers, &[200]).await?;
        latencies.push(sent.elapsed());
        let page: Value = serde_json::from_slice(&reply.body).map_err(|e| bad_page(&e))?;
        n_results += page["Documents"].as_array().map_or(0, Vec::len) as u64;
        n_done.store(n_results, Ordering::Relaxed);
        continuation = reply.header(headers::X_MS_CONTINUATION).map(str::to_owned);
        if continuation.is_none() {
            break;
        }
    }
    let elapsed = started.elapsed();
    if n_results < wanted {
        return Err(BenchError::FeedCountMismatch {
            expected: wanted,
            actual: n_results,
        });
    }
    let ends = END_PAGES.min(latencies.len());
    let median = |pages: &[Duration]| LatencySummary::from_samples(pages.to_vec()).p50_ms;
    Ok(PagingFigures {
        n_results,
        first_pages_p50_ms: median(&latencies[..ends]),
        last_pages_p50_ms: median(&latencies[latencies.len() - ends..]),
        results_per_s: per_second(n_results, elapsed),
        page_ms: LatencySummary::from_samples(latencies),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bucket_holds_bucket_size_documents() {
        let n_items = 10_000;
        let mut counts = std::collections::BTreeMap::new();
        for n in 0..n_items {
            *counts
                .entry(
                    query_document(n, n_items)["bucket"]
                        .as_u64()
                        .expect("a bucket"),
                )
                .or_insert(0u64) += 1;
        }
        assert_eq!(counts.len() as u64, n_items / BUCKET_SIZE);
        assert!(counts.values().all(|&count| count == BUCKET_SIZE));
    }

    #[test]
    fn sizes_out_of_range_are_refused() {
        let options = QueryBenchOptions {
            n_items: 10,
            ..QueryBenchOptions::default()
        };
        assert!(options.validate().is_err());
        assert!(QueryBenchOptions::default().validate().is_ok());
    }
}
