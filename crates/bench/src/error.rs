//! The benchmarks' error type: every way a run can fail, each naming what went wrong.

use std::net::SocketAddr;

use tributary_server::ServeError;
use tributary_store::StoreError;

/// Why a benchmark run failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A parameter is out of its allowed range.
    #[error("invalid benchmark parameter: {0}")]
    InvalidParameter(String),
    /// The temporary directory for the store could not be made.
    #[error("cannot create a temporary directory for the store: {0}")]
    TempDir(#[source] std::io::Error),
    /// A store operation failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A transaction of the workload was not committed.
    #[error("a transaction of {n_ops} creates was not committed: {reason}")]
    TransactionRejected {
        /// Operations in the transaction.
        n_ops: usize,
        /// The first failing operation's error.
        reason: String,
    },
    /// The in-process server could not start.
    #[error("server: {0}")]
    Serve(#[from] ServeError),
    /// A TCP connection to the server could not be opened.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The server's address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A request could not be sent or its response could not be read.
    #[error("{method} {path} failed on the connection: {reason}")]
    Transport {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// What the HTTP layer reported.
        reason: String,
    },
    /// The server answered with an unexpected status.
    #[error("{method} {path} answered {status} (expected {expected}): {body}")]
    Status {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// The status received.
        status: u16,
        /// The statuses the benchmark accepts here.
        expected: String,
        /// The start of the response body.
        body: String,
    },
    /// A response had the right status but not the expected content.
    #[error("{method} {path}: {reason}")]
    BadResponse {
        /// HTTP method.
        method: String,
        /// Request path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A change feed catch-up did not return every written item exactly once.
    #[error("the change feed returned {actual} items, but {expected} were written")]
    FeedCountMismatch {
        /// Items written.
        expected: u64,
        /// Items the feed returned.
        actual: u64,
    },
    /// A change feed read did not come to an end within its page budget.
    #[error("the change feed did not end within {max_pages} pages")]
    FeedNeverEnds {
        /// The page budget.
        max_pages: u64,
    },
    /// The waiting feed reader did not see every item of the latency phase in time.
    #[error(
        "the feed reader saw {received} of {expected} items within {timeout_ms} ms after the last write"
    )]
    ReaderStalled {
        /// Items the reader saw.
        received: u64,
        /// Items written.
        expected: u64,
        /// How long it was given after the last write.
        timeout_ms: u64,
    },
    /// The change feed processor (or its client) failed.
    #[error("change feed processor: {0}")]
    Processor(String),
    /// A processor host process could not be run, or misbehaved.
    #[error("processor host process: {0}")]
    HostProcess(String),
    /// Something the benchmark waits for did not happen in time.
    #[error("timed out after {timeout_ms} ms waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it was given.
        timeout_ms: u64,
    },
    /// The process may not open enough files for the connections asked for, and its hard
    /// limit does not allow raising that.
    #[error(
        "{n_connections} connections need about {needed} open files, but this process may open {soft} (hard limit {hard}): raise it (ulimit -n {needed}) and run again"
    )]
    FileLimit {
        /// Connections asked for.
        n_connections: usize,
        /// Open files they need, with a margin for the store and the runtime.
        needed: u64,
        /// The soft limit in force.
        soft: u64,
        /// The hard limit.
        hard: u64,
    },
    /// The open file limit could not be raised.
    #[error("cannot raise the open file limit to {target}: {source}")]
    RaiseFileLimit {
        /// The limit asked for.
        target: u64,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--endpoint` is not a URL the benchmark can use.
    #[error("endpoint {url}: {reason}")]
    Endpoint {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A benchmark task panicked or was cancelled.
    #[error("a benchmark task failed: {0}")]
    Task(String),
}
