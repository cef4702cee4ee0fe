//! What the host counts, per function: invocations by outcome, retries, dead-lettered items,
//! changes, invocation duration and lag per lease. Kept in [`FunctionStats`] for
//! `tributary functions status` and reported to the `metrics` facade, which the Prometheus
//! endpoint ([`serve_prometheus`]) renders.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Invocations, labelled `function` and `outcome` (`ok`, `failed`, `timed_out`).
pub const INVOCATIONS: &str = "tributary_function_invocations_total";
/// Retries of failed invocations, labelled `function`.
pub const RETRIES: &str = "tributary_function_retries_total";
/// Items sent to the dead-letter container, labelled `function`.
pub const DEAD_LETTERED: &str = "tributary_function_dead_lettered_total";
/// Changes handed to the function (after its filter), labelled `function`.
pub const CHANGES: &str = "tributary_function_changes_total";
/// Changes skipped by the function's filter, labelled `function`.
pub const FILTERED: &str = "tributary_function_filtered_total";
/// Invocation duration in seconds (a histogram), labelled `function`.
pub const DURATION: &str = "tributary_function_invocation_duration_seconds";
/// Changes not yet processed, labelled `function` and `lease`.
pub const LAG: &str = "tributary_function_lag_changes";

/// Counters of one function.
#[derive(Debug, Default)]
pub struct FunctionStats {
    /// Successful invocations.
    pub n_succeeded: AtomicU64,
    /// Failed invocations (timeouts included).
    pub n_failed: AtomicU64,
    /// Invocations stopped after their timeout.
    pub n_timed_out: AtomicU64,
    /// Retries.
    pub n_retries: AtomicU64,
    /// Dead-lettered items.
    pub n_dead_lettered: AtomicU64,
    /// Changes handed to the function.
    pub n_changes: AtomicU64,
    /// Changes skipped by the filter.
    pub n_filtered: AtomicU64,
}

impl FunctionStats {
    /// Records one invocation.
    pub(crate) fn invocation(&self, function: &str, outcome: Outcome, duration: Duration) {
        let (counter, label) = match outcome {
            Outcome::Succeeded => (&self.n_succeeded, "ok"),
            Outcome::Failed => (&self.n_failed, "failed"),
            Outcome::TimedOut => {
                self.n_failed.fetch_add(1, Ordering::Relaxed);
                (&self.n_timed_out, "timed_out")
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(INVOCATIONS, "function" => function.to_owned(), "outcome" => label)
            .increment(1);
        metrics::histogram!(DURATION, "function" => function.to_owned())
            .record(duration.as_secs_f64());
    }

    /// Records a retry.
    pub(crate) fn retry(&self, function: &str) {
        self.n_retries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(RETRIES, "function" => function.to_owned()).increment(1);
    }

    /// Records dead-lettered items.
    pub(crate) fn dead_lettered(&self, function: &str, n_items: u64) {
        self.n_dead_lettered.fetch_add(n_items, Ordering::Relaxed);
        metrics::counter!(DEAD_LETTERED, "function" => function.to_owned()).increment(n_items);
    }

    /// Records the changes of a batch: handed over and filtered out.
    pub(crate) fn changes(&self, function: &str, n_handed: u64, n_filtered: u64) {
        self.n_changes.fetch_add(n_handed, Ordering::Relaxed);
        self.n_filtered.fetch_add(n_filtered, Ordering::Relaxed);
        metrics::counter!(CHANGES, "function" => function.to_owned()).increment(n_handed);
        metrics::counter!(FILTERED, "function" => function.to_owned()).increment(n_filtered);
    }
}

/// How an invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    Failed,
    TimedOut,
}

/// Records a lease's lag.
pub(crate) fn record_lag(function: &str, lease: &str, n_pending: u64) {
    metrics::gauge!(LAG, "function" => function.to_owned(), "lease" => lease.to_owned())
        .set(n_pending as f64);
}

/// The process's Prometheus recorder, installed at the first call.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(DURATION.to_owned()),
                &[
                    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
                    30.0, 60.0, 300.0,
                ],
            )
            .map_or_else(
                |_| PrometheusBuilder::new().build_recorder(),
                |builder| builder.build_recorder(),
            );
        let handle = recorder.handle();
        // Another recorder may already be installed (an embedding program's): then this
        // handle renders only what it was given, and the program's recorder gets the rest.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics shows nothing");
        }
        handle
    })
}

/// Serves `GET /metrics` (Prometheus text format) on `address` until the task is dropped.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve_prometheus(
    address: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let handle = prometheus();
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| async move {
                    if request.uri().path() == "/metrics" {
                        hyper::Response::builder()
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(http_body_util::Full::new(bytes::Bytes::from(
                                handle.render(),
                            )))
                    } else {
                        hyper::Response::builder()
                            .status(404)
                            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                                b"only /metrics is served here\n",
                            )))
                    }
                },
            );
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(error) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    tracing::debug!(%error, "metrics connection ended");
                }
            });
        }
    });
    Ok((bound, task))
}
