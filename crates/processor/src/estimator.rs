//! How far behind a processor is: pending changes per lease (exact in items on Tributary)
//! and the age of the oldest one; a pull API and a push variant.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::{Clock, SystemClock};
use crate::error::ProcessorError;
use crate::feed::{
    ChangeFeed, EpkSpan, FeedMode, FeedPosition, PendingOutcome, PhysicalRange, StartFrom,
};
use crate::lease_container::LeaseContainer;
use crate::leases::{LeaseStore, lease_prefix};
use crate::worker::{FAILURES_PROPERTY, LAST_ERROR_PROPERTY};

// The start rule lives with the lease documents; re-exported here for existing paths.

/// The lag of one lease.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LeaseEstimate {
    /// The lease document's id.
    pub lease_id: String,
    /// The lease token.
    pub lease_token: String,
    /// The owning host, if any.
    pub owner: Option<String>,
    /// The lease's continuation (its checkpoint).
    pub continuation: Option<String>,
    /// Changes after the checkpoint.
    pub pending: u64,
    /// Whether `pending` is an exact count.
    pub exact: bool,
    /// Seconds since the oldest pending change was made, if any.
    pub oldest_pending_age_s: Option<u64>,
    /// Consecutive failed batches (recorded once a lease is stuck).
    pub consecutive_failures: u32,
    /// The last handler error of a stuck lease.
    pub last_error: Option<String>,
}

impl LeaseEstimate {
    /// Whether the lease's batches keep failing.
    pub fn is_stuck(&self) -> bool {
        self.consecutive_failures > 0
    }
}

/// Estimates a processor's lag from its leases, from any process.
pub struct ChangeFeedEstimator {
    feed: Arc<dyn ChangeFeed>,
    store: LeaseStore,
    start_from: StartFrom,
}

impl ChangeFeedEstimator {
    /// The estimator of the processor `name` over `feed` with leases in `leases`;
    /// `start_from` is the processor's setting (used for leases never checkpointed).
    ///
    /// # Errors
    /// The feed failed to name its container.
    pub async fn new(
        name: &str,
        feed: Arc<dyn ChangeFeed>,
        leases: Arc<dyn LeaseContainer>,
        start_from: StartFrom,
    ) -> Result<Self, ProcessorError> {
        let scope = feed.lease_scope().await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
        Ok(ChangeFeedEstimator {
            feed,
            store: LeaseStore::new(leases, lease_prefix(name, &scope), clock),
            start_from,
        })
    }

    /// The processor's lease store (to list, reset or release its leases).
    pub fn leases(&self) -> &LeaseStore {
        &self.store
    }

    /// Estimates every lease, by lease token.
    ///
    /// # Errors
    /// The feed or the lease container failed.
    pub async fn estimate(&self) -> Result<Vec<LeaseEstimate>, ProcessorError> {
        let leases = self.store.list().await?;
        let ranges = self.feed.ranges().await?;
        let now_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut estimates = Vec::with_capacity(leases.len());
        for lease in leases {
            let position = match &lease.continuation {
                Some(c) => FeedPosition::Continuation(c.clone()),
                None => FeedPosition::Start(crate::lease::start_of(&lease, self.start_from)),
            };
            let mode = lease.mode;
            let span = lease.span.clone().or_else(|| {
                ranges
                    .iter()
                    .find(|r| r.id == lease.token)
                    .map(|r| r.span.clone())
            });
            let (pending, exact, oldest) = match span {
                Some(span) => self.pending_in(&ranges, &span, position, mode).await?,
                None => (0, false, None),
            };
            estimates.push(LeaseEstimate {
                lease_id: lease.id.clone(),
                lease_token: lease.token.clone(),
                owner: lease.owner.clone(),
                continuation: lease.continuation.clone(),
                pending,
                exact,
                oldest_pending_age_s: oldest.map(|ts| now_s.saturating_sub(ts)),
                consecutive_failures: lease
                    .properties
                    .get(FAILURES_PROPERTY)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                last_error: lease.properties.get(LAST_ERROR_PROPERTY).cloned(),
            });
        }
        estimates.sort_by(|a, b| a.lease_token.cmp(&b.lease_token));
        Ok(estimates)
    }

    /// Pending changes of a span that may now cover several ranges (after a split the
    /// processor has not handled yet): the sum over them.
    async fn pending_in(
        &self,
        ranges: &[PhysicalRange],
        span: &EpkSpan,
        position: FeedPosition,
        mode: FeedMode,
    ) -> Result<(u64, bool, Option<u64>), ProcessorError> {
        let (mut total, mut exact, mut oldest) = (0u64, true, None::<u64>);
        for range in ranges.iter().filter(|r| r.span.overlaps(span)) {
            let part = range.span.intersection(span);
            match self
                .feed
                .pending(range.clone(), part, position.clone(), mode)
                .await?
            {
                PendingOutcome::Pending(pending) => {
                    total += pending.n_changes;
                    exact &= pending.exact;
                    oldest = match (oldest, pending.oldest_ts) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                PendingOutcome::Gone => exact = false,
            }
        }
        Ok((total, exact, oldest))
    }

    /// Calls `report` with the estimate every `interval` until the returned task is
    /// aborted (the push variant); errors are reported as `Err`.
    pub fn spawn_push(
        self,
        interval: Duration,
        report: impl Fn(Result<Vec<LeaseEstimate>, ProcessorError>) + Send + Sync + 'static,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                report(self.estimate().await);
                tokio::time::sleep(interval).await;
            }
        })
    }
}
