//! End-to-end benchmarks of Tributary: what `tributary bench store`,
//! `tributary bench server`, `tributary bench query`, `tributary bench soak`, `tributary bench processor` and
//! `tributary bench functions` run.
//!
//! Each benchmark builds a fresh store in a temporary directory (removed afterwards), runs a
//! fixed workload of 1 KB order documents over 1,000 partition keys, and returns a report:
//! rates, per-operation latency percentiles, memory, and the machine it ran on. A report
//! renders as a table for people ([`StoreBenchReport::render_text`]) and serializes to one
//! JSON object for scripts (`serde::Serialize`).
//!
//! - [`run_store_bench`] drives the embedded [`tributary_store::Store`] directly: batched and
//!   concurrent ingest (group commit), a full change feed catch-up, and the time from a
//!   commit to a waiting feed reader.
//! - [`run_server_bench`] starts the Cosmos DB REST server in this process on loopback and
//!   drives it over keep-alive HTTP/1.1 connections with signed requests, as an SDK would:
//!   upserts, point reads and a change feed catch-up, plus startup time and idle memory.
//! - [`run_query_bench`] fills a container through the store and sends issue 10's queries
//!   (an equality filter, a range with `ORDER BY` and `TOP`, one partition key, a `GROUP BY`
//!   aggregate, a full scan, paging) to the in-process server over loopback.
//! - [`run_soak_bench`] drives the same server (in this process, or one already running) with
//!   a fixed mix of reads, upserts, queries and change feed pages over many connections for
//!   minutes, counting 429s apart from errors and sampling memory and file descriptors.
//! - [`run_processor_bench`] runs the change feed processor (`tributary-processor`) on the
//!   embedded store and over loopback HTTP: catch-up rate, write→handler latency, and, with
//!   host processes ([`run_processor_host`]), how fast leases move after a crash or a stop.
//! - [`run_functions_bench`] runs the functions host (`tributary-functions`) on the embedded
//!   store through a Rust handler, a JSON-lines worker process and the Python worker:
//!   catch-up rate and write→invocation latency against each kind's target.
//!
//! What it is not: a test suite (nothing here asserts a speed; the figures depend on the
//! machine and its disk), a comparison with other databases, or a micro-benchmark of one
//! function (those belong in each crate's `benches/`). The workload is fixed on purpose so
//! that runs on different machines and commits can be compared.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use tributary_bench::{StoreBenchOptions, run_store_bench};
//! let options = StoreBenchOptions {
//!     n_items: 200,
//!     n_concurrent_items: 100,
//!     n_latency_writes: 20,
//!     latency_interval_ms: 1,
//!     durability: tributary_store::Durability::Relaxed,
//!     ..StoreBenchOptions::default()
//! };
//! let report = run_store_bench(&options).await.unwrap();
//! assert!(report.ingest_batch_docs_per_s > 0.0);
//! println!("{}", report.render_text());
//! # });
//! ```

mod error;
mod functions;
mod http;
mod latency;
mod machine;
mod processor;
mod progress;
mod query;
mod server;
mod soak;
mod store;
mod table;
pub mod workload;

use std::path::Path;
use std::time::Duration;

use tokio::task::JoinSet;
use tributary_store::Durability;

pub use error::BenchError;
pub use functions::{
    FunctionsBenchOptions, FunctionsBenchReport, HandlerKind, HandlerOutcome, HandlerReport,
    HandlerRun, LEASE_ACQUIRE_INTERVAL_MS, MAX_FUNCTIONS_CHANGES, TARGET_JSON_LINES_CHANGES_PER_S,
    TARGET_P99_MS, TARGET_PYTHON_CHANGES_PER_S, TARGET_PYTHON_P99_MS, TARGET_RUST_CHANGES_PER_S,
    run_functions_bench,
};
pub use latency::LatencySummary;
pub use machine::{MachineInfo, current_rss_mb, peak_rss_mb};
pub use processor::{
    FailoverReport, HostEvent, LEASE_INTERVAL_MS_RANGE, MAX_LIVE_WRITES_PER_S,
    MAX_PROCESSOR_CHANGES, ProcessorBenchOptions, ProcessorBenchReport, ProcessorHostOptions,
    ProcessorRun, run_processor_bench, run_processor_host,
};
pub use query::{
    BUCKET_SIZE, MAX_RUNS, PAGE_ITEMS, PAGED_RESULTS, PagingFigures, QueryBenchOptions,
    QueryBenchReport, QueryFigures, run_query_bench,
};
pub use server::{
    MAX_CONNECTIONS, MAX_PHASE_REQUESTS, ServerBenchOptions, ServerBenchReport, run_server_bench,
};
pub use soak::{
    Gauge, MAX_SOAK_CONNECTIONS, MAX_SOAK_DURATION_S, MAX_SOAK_ITEMS, MIX, OperationKind,
    OperationReport, SoakEndpoint, SoakOptions, SoakReport, run_soak_bench,
};
pub use store::{
    MAX_BATCHES_IN_FLIGHT, MAX_LATENCY_INTERVAL_MS, MAX_PHASE_ITEMS, MAX_WRITERS,
    StoreBenchOptions, StoreBenchReport, run_store_bench,
};

/// `fsync` or `relaxed`, as the command line spells it.
pub fn durability_name(durability: Durability) -> &'static str {
    match durability {
        Durability::Fsync => "fsync",
        Durability::Relaxed => "relaxed",
    }
}

/// A new, empty directory for a benchmark's store, under `parent` or the system's temp
/// directory; removed when dropped.
fn new_store_dir(parent: Option<&Path>) -> Result<tempfile::TempDir, BenchError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("tributary-bench-");
    match parent {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    }
    .map_err(BenchError::TempDir)
}

/// Waits for every task and merges their latency samples; the first failure wins.
async fn join_samples(
    mut tasks: JoinSet<Result<Vec<Duration>, BenchError>>,
) -> Result<Vec<Duration>, BenchError> {
    let mut samples = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(task_samples)) => samples.extend(task_samples),
            Ok(Err(error)) => {
                tasks.abort_all();
                return Err(error);
            }
            Err(error) => {
                tasks.abort_all();
                return Err(BenchError::Task(error.to_string()));
            }
        }
    }
    Ok(samples)
}
