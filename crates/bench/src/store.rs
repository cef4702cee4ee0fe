//! `tributary bench store`: the embedded store alone, in this process, on a fresh directory.
//!
//! Four phases run one after the other on one store:
//!
//! 1. **ingest-batch**: `n_items` creates in atomic commits of `batch_size` operations that
//!    span many partition keys ([`Store::transaction`]), `n_batches_in_flight` at a time.
//! 2. **ingest-concurrent**: `n_writers` tasks each write one item at a time
//!    ([`Store::write_item`]) until `n_concurrent_items` are written: this measures how well
//!    the committer groups independent writes into one durable commit.
//! 3. **feed catch-up**: the whole latest-version feed of the container, from the beginning,
//!    in pages of `feed_page_items`, until an empty page. It must return every item once.
//! 4. **commit→reader**: a reader waits on [`Store::read_feed_wait`] while a writer creates
//!    `n_latency_writes` items, one every `latency_interval_ms`. For each item the phase
//!    records when the writer called `write_item` (submit), when the call returned (ack), and
//!    when the reader's page holding it returned (seen). *commit→reader* is submit→seen: it
//!    includes the commit's own fsync. *ack→reader* is ack→seen; it is often zero, because
//!    the commit wakes the reader and the writer at the same moment, and a negative gap is
//!    counted as zero.
//! 5. **partition-key scan**: [`Store::scan_items`] of one partition key (what a query with a
//!    partition key reads), [`PARTITION_KEY_SCANS`] times over the keys in turn, then one scan
//!    of the whole container for comparison. Each scan must return exactly its key's items.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;
use tributary_store::{
    ContainerDefinition, Durability, FeedMode, FeedRequest, FeedScope, FeedStart, ItemWrite,
    MAX_FEED_RANGES, MAX_PAGE_ITEMS, MAX_TRANSACTION_OPERATIONS, OperationResult, Store,
    StoreOptions, TransactionOperation,
};

use crate::error::BenchError;
use crate::latency::{LatencySummary, milliseconds, per_second};
use crate::machine::{self, MachineInfo};
use crate::progress::PhaseProgress;
use crate::table::{self, Row};
use crate::workload::{
    ITEM_BYTES, N_PARTITION_KEYS, PARTITION_KEY_PATH, customer_id, order_document,
};
use crate::{durability_name, join_samples, new_store_dir};
use tributary_partition_key::PartitionKey;

/// The benchmark's database.
const DATABASE: &str = "bench";
/// The benchmark's container.
const CONTAINER: &str = "orders";
/// How long the latency phase's reader waits for a commit before reading again.
const READER_WAIT: Duration = Duration::from_secs(1);
/// How long the reader may take to see the last items once the writer is done.
const READER_GRACE: Duration = Duration::from_secs(10);
/// Partition-key scans of the partition-key scan phase.
pub const PARTITION_KEY_SCANS: u64 = 500;
/// Most concurrent single-item writers.
pub const MAX_WRITERS: usize = 4096;
/// Most transactions in flight at once.
pub const MAX_BATCHES_IN_FLIGHT: usize = 256;
/// Most items one phase may write (about 1 TB of documents).
pub const MAX_PHASE_ITEMS: u64 = 1_000_000_000;
/// Longest pause between two writes of the latency phase.
pub const MAX_LATENCY_INTERVAL_MS: u64 = 10_000;

/// The sizes of a store benchmark run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreBenchOptions {
    /// Items written by ingest-batch.
    pub n_items: u64,
    /// Operations per atomic commit in ingest-batch (1 to 100).
    pub batch_size: usize,
    /// Transactions ingest-batch keeps in flight.
    pub n_batches_in_flight: usize,
    /// Items written by ingest-concurrent.
    pub n_concurrent_items: u64,
    /// Concurrent single-item writers in ingest-concurrent.
    pub n_writers: usize,
    /// Page size of the feed catch-up.
    pub feed_page_items: usize,
    /// Items written in the commit→reader phase.
    pub n_latency_writes: u64,
    /// Pause between two writes of the commit→reader phase.
    pub latency_interval_ms: u64,
    /// Whether the container indexes every path (Cosmos DB's default policy) rather than
    /// nothing (`indexingMode: none`).
    pub indexed: bool,
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

fn serialize_durability<S: serde::Serializer>(
    durability: &Durability,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(durability_name(*durability))
}

impl Default for StoreBenchOptions {
    fn default() -> Self {
        StoreBenchOptions {
            n_items: 100_000,
            batch_size: MAX_TRANSACTION_OPERATIONS,
            n_batches_in_flight: 4,
            n_concurrent_items: 50_000,
            n_writers: 64,
            feed_page_items: 1000,
            n_latency_writes: 2000,
            latency_interval_ms: 2,
            indexed: true,
            n_feed_ranges: 4,
            durability: Durability::Fsync,
            parent_dir: None,
            show_progress: false,
        }
    }
}

impl StoreBenchOptions {
    /// Checks every size against its limit.
    ///
    /// # Errors
    /// [`BenchError::InvalidParameter`] naming the first size out of range.
    pub fn validate(&self) -> Result<(), BenchError> {
        let checks: [(bool, String); 9] = [
            (
                (1..=MAX_PHASE_ITEMS).contains(&self.n_items),
                format!("items must be 1 to {MAX_PHASE_ITEMS}, not {}", self.n_items),
            ),
            (
                (1..=MAX_TRANSACTION_OPERATIONS).contains(&self.batch_size),
                format!(
                    "batch size must be 1 to {MAX_TRANSACTION_OPERATIONS}, not {}",
                    self.batch_size
                ),
            ),
            (
                (1..=MAX_BATCHES_IN_FLIGHT).contains(&self.n_batches_in_flight),
                format!(
                    "batches in flight must be 1 to {MAX_BATCHES_IN_FLIGHT}, not {}",
                    self.n_batches_in_flight
                ),
            ),
            (
                (1..=MAX_PHASE_ITEMS).contains(&self.n_concurrent_items),
                format!(
                    "concurrent items must be 1 to {MAX_PHASE_ITEMS}, not {}",
                    self.n_concurrent_items
                ),
            ),
            (
                (1..=MAX_WRITERS).contains(&self.n_writers),
                format!("writers must be 1 to {MAX_WRITERS}, not {}", self.n_writers),
            ),
            (
                (1..=MAX_PAGE_ITEMS).contains(&self.feed_page_items),
                format!(
                    "feed page size must be 1 to {MAX_PAGE_ITEMS}, not {}",
                    self.feed_page_items
                ),
            ),
            (
                (1..=MAX_PHASE_ITEMS).contains(&self.n_latency_writes),
                format!(
                    "latency writes must be 1 to {MAX_PHASE_ITEMS}, not {}",
                    self.n_latency_writes
                ),
            ),
            (
                (1..=MAX_LATENCY_INTERVAL_MS).contains(&self.latency_interval_ms),
                format!(
                    "latency interval must be 1 to {MAX_LATENCY_INTERVAL_MS} ms, not {}",
                    self.latency_interval_ms
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

/// What a store benchmark measured. Rates are per second of wall-clock time of the phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoreBenchReport {
    /// The machine it ran on.
    pub machine: MachineInfo,
    /// The sizes it ran with.
    pub parameters: StoreBenchOptions,
    /// Serialized size of each document (before system properties).
    pub item_bytes: usize,
    /// Distinct partition key values.
    pub n_partition_keys: u64,
    /// ingest-batch: documents committed per second.
    pub ingest_batch_docs_per_s: f64,
    /// ingest-batch: latency of one transaction, from call to committed.
    pub ingest_batch_commit_ms: LatencySummary,
    /// ingest-concurrent: documents committed per second.
    pub ingest_concurrent_docs_per_s: f64,
    /// ingest-concurrent: latency of one `write_item`.
    pub ingest_concurrent_write_ms: LatencySummary,
    /// feed catch-up: items read per second.
    pub feed_catchup_items_per_s: f64,
    /// feed catch-up: MiB of item JSON read per second.
    pub feed_catchup_mb_per_s: f64,
    /// feed catch-up: latency of one page read.
    pub feed_catchup_page_ms: LatencySummary,
    /// Median time from a writer's `write_item` call to a waiting reader holding the item.
    pub commit_to_reader_p50_ms: f64,
    /// 99th percentile of the same.
    pub commit_to_reader_p99_ms: f64,
    /// Submit→seen, all figures.
    pub commit_to_reader_ms: LatencySummary,
    /// Median time from `write_item` returning to a waiting reader holding the item.
    pub ack_to_reader_p50_ms: f64,
    /// 99th percentile of the same.
    pub ack_to_reader_p99_ms: f64,
    /// Ack→seen, all figures.
    pub ack_to_reader_ms: LatencySummary,
    /// Latency of the paced single writes of the commit→reader phase.
    pub latency_phase_write_ms: LatencySummary,
    /// partition-key scan: scans of one partition key's items per second.
    pub pk_scans_per_s: f64,
    /// partition-key scan: items one scan returned, on average.
    pub pk_scan_items: f64,
    /// partition-key scan: latency of one scan.
    pub pk_scan_ms: LatencySummary,
    /// partition-key scan: the one scan of the whole container, for comparison.
    pub container_scan_ms: LatencySummary,
    /// Size of the store directory at the end, MiB.
    pub store_disk_mb: f64,
    /// The process's peak resident memory, MiB (`VmHWM`).
    pub peak_rss_mb: Option<f64>,
}

impl StoreBenchReport {
    /// The report as a table for humans.
    pub fn render_text(&self) -> String {
        let p = &self.parameters;
        let mut out = format!(
            "tributary bench store: {} + {} + {} items of {} bytes, {} partition keys, {} feed ranges, durability {}, {}\n",
            p.n_items,
            p.n_concurrent_items,
            p.n_latency_writes,
            self.item_bytes,
            self.n_partition_keys,
            p.n_feed_ranges,
            durability_name(p.durability),
            if p.indexed {
                "every path indexed"
            } else {
                "indexingMode none"
            },
        );
        out.push_str(&format!("machine: {}\n\n", self.machine.describe()));
        out.push_str(&table::render(&[
            Row {
                phase: format!(
                    "ingest-batch ({}/commit, {} in flight)",
                    p.batch_size, p.n_batches_in_flight
                ),
                rate: format!("{} docs/s", table::thousands(self.ingest_batch_docs_per_s)),
                latency: &self.ingest_batch_commit_ms,
            },
            Row {
                phase: format!("ingest-concurrent ({} writers)", p.n_writers),
                rate: format!(
                    "{} docs/s",
                    table::thousands(self.ingest_concurrent_docs_per_s)
                ),
                latency: &self.ingest_concurrent_write_ms,
            },
            Row {
                phase: format!(
                    "feed catch-up (whole container, {}/page)",
                    p.feed_page_items
                ),
                rate: format!(
                    "{} items/s ({:.0} MiB/s)",
                    table::thousands(self.feed_catchup_items_per_s),
                    self.feed_catchup_mb_per_s
                ),
                latency: &self.feed_catchup_page_ms,
            },
            Row {
                phase: format!("paced writes (1 per {} ms)", p.latency_interval_ms),
                rate: String::new(),
                latency: &self.latency_phase_write_ms,
            },
            Row {
                phase: "commit→reader (submit→seen)".into(),
                rate: String::new(),
                latency: &self.commit_to_reader_ms,
            },
            Row {
                phase: "ack→reader (ack→seen)".into(),
                rate: String::new(),
                latency: &self.ack_to_reader_ms,
            },
            Row {
                phase: format!("partition-key scan ({:.0} items/scan)", self.pk_scan_items),
                rate: format!("{} scans/s", table::thousands(self.pk_scans_per_s)),
                latency: &self.pk_scan_ms,
            },
            Row {
                phase: "container scan (once, for comparison)".into(),
                rate: String::new(),
                latency: &self.container_scan_ms,
            },
        ]));
        out.push_str(&format!(
            "\nlatencies are per operation: a commit of {} items, a write, a page read, a change seen by the reader\n",
            p.batch_size
        ));
        out.push_str(&format!(
            "peak RSS: {}; store on disk: {:.1} MiB\n",
            table::mebibytes(self.peak_rss_mb),
            self.store_disk_mb
        ));
        out
    }
}

/// Runs the store benchmark on a fresh temporary store, removed afterwards.
///
/// Call it inside a multi-threaded tokio runtime.
///
/// # Errors
/// [`BenchError::InvalidParameter`] for bad options; [`BenchError::Store`] or
/// [`BenchError::TransactionRejected`] if a write fails; [`BenchError::FeedCountMismatch`]
/// if the feed does not return every item; [`BenchError::ReaderStalled`] if the waiting
/// reader misses items.
pub async fn run_store_bench(options: &StoreBenchOptions) -> Result<StoreBenchReport, BenchError> {
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
            ContainerDefinition {
                indexing_policy: (!options.indexed)
                    .then(|| serde_json::json!({"indexingMode": "none", "automatic": false})),
                ..ContainerDefinition::new(CONTAINER, PARTITION_KEY_PATH)
            },
            options.n_feed_ranges,
        )
        .await?;
    let measured = run_phases(&store, options).await;
    store.close();
    let store_disk_mb = machine::directory_bytes(dir.path()) as f64 / (1024.0 * 1024.0);
    let peak_rss_mb = machine::peak_rss_mb();
    let phases = measured?;
    Ok(StoreBenchReport {
        machine: MachineInfo::detect(),
        parameters: options.clone(),
        item_bytes: ITEM_BYTES,
        n_partition_keys: N_PARTITION_KEYS,
        ingest_batch_docs_per_s: phases.batch.rate,
        ingest_batch_commit_ms: phases.batch.latency,
        ingest_concurrent_docs_per_s: phases.concurrent.rate,
        ingest_concurrent_write_ms: phases.concurrent.latency,
        feed_catchup_items_per_s: phases.catch_up.items_per_s,
        feed_catchup_mb_per_s: phases.catch_up.mb_per_s,
        feed_catchup_page_ms: phases.catch_up.page_latency,
        commit_to_reader_p50_ms: phases.reader.submit_to_seen.p50_ms,
        commit_to_reader_p99_ms: phases.reader.submit_to_seen.p99_ms,
        commit_to_reader_ms: phases.reader.submit_to_seen,
        ack_to_reader_p50_ms: phases.reader.ack_to_seen.p50_ms,
        ack_to_reader_p99_ms: phases.reader.ack_to_seen.p99_ms,
        ack_to_reader_ms: phases.reader.ack_to_seen,
        latency_phase_write_ms: phases.reader.write_latency,
        pk_scans_per_s: phases.scans.pk_scans_per_s,
        pk_scan_items: phases.scans.pk_scan_items,
        pk_scan_ms: phases.scans.pk_scan_latency,
        container_scan_ms: phases.scans.container_scan_latency,
        store_disk_mb,
        peak_rss_mb,
    })
}

struct Phases {
    batch: Throughput,
    concurrent: Throughput,
    catch_up: CatchUp,
    reader: ReaderLatency,
    scans: Scans,
}

async fn run_phases(store: &Arc<Store>, options: &StoreBenchOptions) -> Result<Phases, BenchError> {
    let batch = ingest_batches(store, options).await?;
    let concurrent = ingest_concurrently(store, options).await?;
    let catch_up = catch_up(store, options).await?;
    let reader = commit_to_reader(store, options).await?;
    let scans = scan_partition_keys(store, options).await?;
    Ok(Phases {
        batch,
        concurrent,
        catch_up,
        reader,
        scans,
    })
}

struct Scans {
    pk_scans_per_s: f64,
    pk_scan_items: f64,
    pk_scan_latency: LatencySummary,
    container_scan_latency: LatencySummary,
}

/// Scans [`PARTITION_KEY_SCANS`] partition keys in turn, then the whole container once; every
/// scan must return exactly the items written under its key.
async fn scan_partition_keys(
    store: &Arc<Store>,
    options: &StoreBenchOptions,
) -> Result<Scans, BenchError> {
    let n_items = options.n_items + options.n_concurrent_items + options.n_latency_writes;
    let progress = PhaseProgress::start(
        "partition-key-scan",
        PARTITION_KEY_SCANS,
        "scans",
        options.show_progress,
    );
    let n_done = progress.counter();
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let mut latencies = Vec::new();
        let mut n_returned = 0u64;
        let started = Instant::now();
        for n in 0..PARTITION_KEY_SCANS {
            let key = n % N_PARTITION_KEYS;
            let scope = FeedScope::PartitionKey(
                PartitionKey::from_json(&serde_json::Value::String(customer_id(key)))
                    .map_err(tributary_store::StoreError::from)?,
            );
            let scan_started = Instant::now();
            let items = store.scan_items(DATABASE, CONTAINER, &scope)?;
            latencies.push(scan_started.elapsed());
            // Items `m` with `m % N_PARTITION_KEYS == key`: every phase numbers its items on
            // from the one before, so they are `0..n_items`.
            let expected = n_items / N_PARTITION_KEYS + u64::from(key < n_items % N_PARTITION_KEYS);
            if items.len() as u64 != expected {
                return Err(BenchError::FeedCountMismatch {
                    expected,
                    actual: items.len() as u64,
                });
            }
            n_returned += items.len() as u64;
            n_done.store(n + 1, Ordering::Relaxed);
        }
        let elapsed = started.elapsed();
        let container_started = Instant::now();
        let all = store.scan_items(DATABASE, CONTAINER, &FeedScope::Container)?;
        let container_scan = container_started.elapsed();
        if all.len() as u64 != n_items {
            return Err(BenchError::FeedCountMismatch {
                expected: n_items,
                actual: all.len() as u64,
            });
        }
        Ok(Scans {
            pk_scans_per_s: per_second(latencies.len() as u64, elapsed),
            pk_scan_items: n_returned as f64 / latencies.len().max(1) as f64,
            pk_scan_latency: LatencySummary::from_samples(latencies),
            container_scan_latency: LatencySummary::from_samples(vec![container_scan]),
        })
    })
    .await
    .map_err(|e| BenchError::Task(e.to_string()))?
}

/// A write phase's rate and per-operation latencies.
struct Throughput {
    rate: f64,
    latency: LatencySummary,
}

/// Documents `0..n_items`, in transactions of `batch_size` consecutive documents, which
/// therefore span `batch_size` partition keys.
async fn ingest_batches(
    store: &Arc<Store>,
    options: &StoreBenchOptions,
) -> Result<Throughput, BenchError> {
    let n_items = options.n_items;
    let batch_size = options.batch_size as u64;
    let n_batches = n_items.div_ceil(batch_size);
    let next_batch = Arc::new(AtomicU64::new(0));
    let progress = PhaseProgress::start("ingest-batch", n_items, "items", options.show_progress);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..options.n_batches_in_flight {
        let (store, next_batch, n_done) = (
            Arc::clone(store),
            Arc::clone(&next_batch),
            progress.counter(),
        );
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let batch = next_batch.fetch_add(1, Ordering::Relaxed);
                if batch >= n_batches {
                    return Ok(latencies);
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
                let submitted = Instant::now();
                let outcome = store.transaction(DATABASE, operations).await?;
                latencies.push(submitted.elapsed());
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
    let latencies = join_samples(tasks).await?;
    let elapsed = started.elapsed();
    Ok(Throughput {
        rate: per_second(n_items, elapsed),
        latency: LatencySummary::from_samples(latencies),
    })
}

/// Documents `n_items..n_items + n_concurrent_items`, one `write_item` at a time per writer.
async fn ingest_concurrently(
    store: &Arc<Store>,
    options: &StoreBenchOptions,
) -> Result<Throughput, BenchError> {
    let first = options.n_items;
    let end = first + options.n_concurrent_items;
    let next = Arc::new(AtomicU64::new(first));
    let progress = PhaseProgress::start(
        "ingest-concurrent",
        options.n_concurrent_items,
        "items",
        options.show_progress,
    );
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..options.n_writers {
        let (store, next, n_done) = (Arc::clone(store), Arc::clone(&next), progress.counter());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    return Ok(latencies);
                }
                let write = ItemWrite::create(order_document(n));
                let submitted = Instant::now();
                store.write_item(DATABASE, CONTAINER, write).await?;
                latencies.push(submitted.elapsed());
                n_done.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let latencies = join_samples(tasks).await?;
    let elapsed = started.elapsed();
    Ok(Throughput {
        rate: per_second(options.n_concurrent_items, elapsed),
        latency: LatencySummary::from_samples(latencies),
    })
}

struct CatchUp {
    items_per_s: f64,
    mb_per_s: f64,
    page_latency: LatencySummary,
}

/// Reads the container's latest-version feed from the beginning until an empty page, on a
/// blocking thread (feed reads are synchronous).
async fn catch_up(store: &Arc<Store>, options: &StoreBenchOptions) -> Result<CatchUp, BenchError> {
    let expected = options.n_items + options.n_concurrent_items;
    let page_items = options.feed_page_items;
    let progress = PhaseProgress::start("feed-catchup", expected, "items", options.show_progress);
    let n_done = progress.counter();
    let store = Arc::clone(store);
    let (n_read, n_bytes, elapsed, latencies) = tokio::task::spawn_blocking(move || {
        // Every page but the last should be full; allow twice that, plus the empty last page.
        let max_pages = expected.div_ceil(page_items as u64) * 2 + 2;
        let mut latencies = Vec::new();
        let (mut n_read, mut n_bytes) = (0u64, 0u64);
        let mut start = FeedStart::Beginning;
        let started = Instant::now();
        loop {
            if latencies.len() as u64 >= max_pages {
                return Err(BenchError::FeedNeverEnds { max_pages });
            }
            let request = FeedRequest {
                scope: FeedScope::Container,
                start,
                mode: FeedMode::LatestVersion,
                max_items: page_items,
            };
            let page_started = Instant::now();
            let page = store.read_feed(DATABASE, CONTAINER, &request)?;
            latencies.push(page_started.elapsed());
            if page.is_empty() {
                return Ok((n_read, n_bytes, started.elapsed(), latencies));
            }
            n_read += page.changes.len() as u64;
            n_bytes += page.changes.iter().map(|c| c.len() as u64).sum::<u64>();
            n_done.store(n_read, Ordering::Relaxed);
            start = FeedStart::Continuation(page.continuation);
        }
    })
    .await
    .map_err(|e| BenchError::Task(e.to_string()))??;
    if n_read != expected {
        return Err(BenchError::FeedCountMismatch {
            expected,
            actual: n_read,
        });
    }
    Ok(CatchUp {
        items_per_s: per_second(n_read, elapsed),
        mb_per_s: per_second(n_bytes, elapsed) / (1024.0 * 1024.0),
        page_latency: LatencySummary::from_samples(latencies),
    })
}

struct ReaderLatency {
    submit_to_seen: LatencySummary,
    ack_to_seen: LatencySummary,
    write_latency: LatencySummary,
}

/// Only the id of a change: all the reader needs to match it to its write.
#[derive(Deserialize)]
struct ChangeId {
    id: String,
}

/// A paced writer and a waiting reader; see the module documentation.
async fn commit_to_reader(
    store: &Arc<Store>,
    options: &StoreBenchOptions,
) -> Result<ReaderLatency, BenchError> {
    let first = options.n_items + options.n_concurrent_items;
    let n_writes = options.n_latency_writes;
    // The reader's position is taken before the first write, so it sees every one.
    let position = store.read_feed(
        DATABASE,
        CONTAINER,
        &FeedRequest {
            scope: FeedScope::Container,
            start: FeedStart::Now,
            mode: FeedMode::LatestVersion,
            max_items: options.feed_page_items,
        },
    )?;
    let n_seen = Arc::new(AtomicU64::new(0));
    let mut reader = {
        let (store, n_seen) = (Arc::clone(store), Arc::clone(&n_seen));
        let page_items = options.feed_page_items;
        tokio::spawn(async move {
            let mut seen_at: Vec<Option<Instant>> = vec![None; n_writes as usize];
            let mut start = FeedStart::Continuation(position.continuation);
            while n_seen.load(Ordering::Relaxed) < n_writes {
                let request = FeedRequest {
                    scope: FeedScope::Container,
                    start,
                    mode: FeedMode::LatestVersion,
                    max_items: page_items,
                };
                let page = store
                    .read_feed_wait(DATABASE, CONTAINER, &request, READER_WAIT)
                    .await?;
                let now = Instant::now();
                for change in &page.changes {
                    let index = serde_json::from_str::<ChangeId>(change)
                        .ok()
                        .and_then(|change| crate::workload::order_number(&change.id))
                        .and_then(|n| n.checked_sub(first))
                        .filter(|index| *index < n_writes);
                    if let Some(index) = index
                        && seen_at[index as usize].is_none()
                    {
                        seen_at[index as usize] = Some(now);
                        n_seen.fetch_add(1, Ordering::Relaxed);
                    }
                }
                start = FeedStart::Continuation(page.continuation);
            }
            Ok::<_, BenchError>(seen_at)
        })
    };
    let progress = PhaseProgress::start(
        "commit-to-reader",
        n_writes,
        "writes",
        options.show_progress,
    );
    let n_done = progress.counter();
    let mut writes = Vec::with_capacity(n_writes as usize);
    let mut pace = tokio::time::interval(Duration::from_millis(options.latency_interval_ms));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in first..first + n_writes {
        pace.tick().await;
        let write = ItemWrite::create(order_document(n));
        let submitted = Instant::now();
        let written = store.write_item(DATABASE, CONTAINER, write).await;
        let acked = Instant::now();
        if let Err(error) = written {
            reader.abort();
            return Err(error.into());
        }
        writes.push((submitted, acked));
        n_done.fetch_add(1, Ordering::Relaxed);
    }
    let seen_at = match tokio::time::timeout(READER_GRACE, &mut reader).await {
        Ok(joined) => joined.map_err(|e| BenchError::Task(e.to_string()))??,
        Err(_) => {
            reader.abort();
            return Err(BenchError::ReaderStalled {
                received: n_seen.load(Ordering::Relaxed),
                expected: n_writes,
                timeout_ms: milliseconds(READER_GRACE) as u64,
            });
        }
    };
    let mut submit_to_seen = Vec::with_capacity(writes.len());
    let mut ack_to_seen = Vec::with_capacity(writes.len());
    let mut write_latency = Vec::with_capacity(writes.len());
    for ((submitted, acked), seen) in writes.into_iter().zip(seen_at) {
        // The reader stops only once it has seen every write.
        let seen = seen.ok_or(BenchError::ReaderStalled {
            received: n_seen.load(Ordering::Relaxed),
            expected: n_writes,
            timeout_ms: milliseconds(READER_GRACE) as u64,
        })?;
        submit_to_seen.push(seen.saturating_duration_since(submitted));
        ack_to_seen.push(seen.saturating_duration_since(acked));
        write_latency.push(acked - submitted);
    }
    Ok(ReaderLatency {
        submit_to_seen: LatencySummary::from_samples(submit_to_seen),
        ack_to_seen: LatencySummary::from_samples(ack_to_seen),
        write_latency: LatencySummary::from_samples(write_latency),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(StoreBenchOptions::default().validate().is_ok());
    }

    #[test]
    fn out_of_range_sizes_are_named() {
        let cases: [(StoreBenchOptions, &str); 4] = [
            (
                StoreBenchOptions {
                    batch_size: 101,
                    ..StoreBenchOptions::default()
                },
                "batch size must be 1 to 100, not 101",
            ),
            (
                StoreBenchOptions {
                    n_items: 0,
                    ..StoreBenchOptions::default()
                },
                "items must be 1 to",
            ),
            (
                StoreBenchOptions {
                    latency_interval_ms: 0,
                    ..StoreBenchOptions::default()
                },
                "latency interval must be 1 to",
            ),
            (
                StoreBenchOptions {
                    n_feed_ranges: 0,
                    ..StoreBenchOptions::default()
                },
                "feed ranges must be 1 to",
            ),
        ];
        for (options, expected) in cases {
            let message = options.validate().unwrap_err().to_string();
            assert!(message.contains(expected), "{message}");
        }
    }
}
