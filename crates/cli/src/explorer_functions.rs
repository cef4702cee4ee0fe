//! The functions host as the Explorer sees it: `tributary serve --functions` hands the
//! server this adapter from the running host's [`HostHandle`] to the server's
//! [`FunctionsHost`] trait (the two crates do not depend on each other).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::Value;
use tributary_functions::{HostError, HostHandle};
use tributary_server::{
    FunctionReport, FunctionsHost, FunctionsReport, HostFuture, HostRefusal, LeaseReport,
    ReplayOutcome, SkippedReport,
};

/// A running host, shown in the Explorer.
pub struct ExplorerFunctions(pub HostHandle);

impl FunctionsHost for ExplorerFunctions {
    fn report(&self) -> HostFuture<'_, FunctionsReport> {
        Box::pin(async move {
            let functions = self
                .0
                .status()
                .await
                .into_iter()
                .map(|status| {
                    let stats = &status.stats;
                    let count =
                        |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
                    FunctionReport {
                        succeeded: count(&stats.n_succeeded),
                        failed: count(&stats.n_failed),
                        timed_out: count(&stats.n_timed_out),
                        retries: count(&stats.n_retries),
                        dead_lettered: count(&stats.n_dead_lettered),
                        changes: count(&stats.n_changes),
                        filtered: count(&stats.n_filtered),
                        leases: status
                            .leases
                            .into_iter()
                            .map(|lease| LeaseReport {
                                token: lease.lease_token,
                                owner: lease.owner,
                                pending: lease.pending,
                                exact: lease.exact,
                                oldest_pending_age_s: lease.oldest_pending_age_s,
                                consecutive_failures: lease.consecutive_failures,
                                last_error: lease.last_error,
                            })
                            .collect(),
                        name: status.name,
                        processor: status.processor,
                        source: status.source,
                        lease_container: status.lease_container,
                        dead_letter_container: status.dead_letter_container,
                        exactly_once: status.exactly_once,
                    }
                })
                .collect();
            let skipped = self
                .0
                .skipped()
                .iter()
                .map(|skipped| SkippedReport {
                    name: skipped.name.clone(),
                    reason: skipped.reason.clone(),
                })
                .collect();
            FunctionsReport { functions, skipped }
        })
    }

    fn dead_letters<'a>(
        &'a self,
        function: &'a str,
    ) -> HostFuture<'a, Result<Vec<Value>, HostRefusal>> {
        Box::pin(async move { self.0.dead_letters(function).await.map_err(refusal) })
    }

    fn replay<'a>(
        &'a self,
        function: &'a str,
        id: &'a str,
    ) -> HostFuture<'a, Result<ReplayOutcome, HostRefusal>> {
        Box::pin(async move {
            Ok(
                match self
                    .0
                    .replay_dead_letter(function, id)
                    .await
                    .map_err(refusal)?
                {
                    Ok(()) => ReplayOutcome::Replayed,
                    Err(error) => ReplayOutcome::FailedAgain(error),
                },
            )
        })
    }
}

impl ExplorerFunctions {
    /// The adapter, shared.
    pub fn shared(handle: HostHandle) -> Arc<dyn FunctionsHost> {
        Arc::new(ExplorerFunctions(handle))
    }
}

fn refusal(error: HostError) -> HostRefusal {
    match error {
        HostError::UnknownFunction(_) | HostError::UnknownDeadLetter { .. } => {
            HostRefusal::NotFound(error.to_string())
        }
        other => HostRefusal::Unavailable(other.to_string()),
    }
}
