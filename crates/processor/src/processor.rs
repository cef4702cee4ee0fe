//! The public face of the processor: its builder, handlers, notifications and lifecycle.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::clock::{BoxFuture, Clock, SystemClock};
use crate::error::{LeaseStoreError, ProcessorError};
use crate::feed::{Change, ChangeFeed, EpkSpan, FeedFilter, FeedMode, StartFrom};
use crate::host::{Host, WorkerSlot};
use crate::lease::Lease;
use crate::lease_container::{AttachedWrite, LeaseContainer};
use crate::leases::{LeaseStore, OwnedUpdate, lease_prefix};

/// Default time between balancing rounds (as .NET).
pub const DEFAULT_ACQUIRE_INTERVAL: Duration = Duration::from_secs(13);
/// Default time after which an unrenewed lease counts as expired (as .NET).
pub const DEFAULT_EXPIRATION_INTERVAL: Duration = Duration::from_secs(60);
/// Default time between renewals (as .NET).
pub const DEFAULT_RENEW_INTERVAL: Duration = Duration::from_secs(17);
/// Default wait between polls of a source that cannot push (as .NET).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// Default longest wait of one push read (a long-poll) before it is sent again.
pub const DEFAULT_READ_WAIT: Duration = Duration::from_secs(5);
/// Default page size (as .NET).
pub const DEFAULT_MAX_ITEMS: usize = 100;
/// Largest page a processor may ask for.
pub const MAX_MAX_ITEMS: usize = 10_000;
/// Default number of consecutive failed batches after which a lease is reported stuck.
pub const DEFAULT_STUCK_AFTER_FAILURES: u32 = 10;
/// Default first back-off after a failed batch (doubled per failure).
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// Longest back-off after failed batches.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);
/// Most handler calls one lease may run at once ([`ChangeFeedProcessorBuilder::parallelism`]).
pub const MAX_PARALLELISM: usize = 64;
/// Default number of leases one host takes in one balancing round.
pub const DEFAULT_LEASES_PER_CYCLE: usize = 16;

/// An error a handler returns: the batch is not checkpointed and is retried.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// What a handler is told about the batch it gets.
#[derive(Clone, Debug)]
pub struct BatchContext {
    /// The lease's token (`{min}-{max}`, or a range id for a .NET partition-range lease).
    pub lease_token: String,
    /// The EPK span the lease covers.
    pub span: EpkSpan,
    /// 1 for the first delivery of this batch, then 2, 3, ... while it keeps failing.
    pub attempt: u32,
    /// The continuation the batch was read from (`None`: the lease's start position).
    pub from: Option<String>,
    /// The continuation after the batch (what a checkpoint stores).
    pub to: String,
    /// The feed mode.
    pub mode: FeedMode,
    /// How many changes the feed filter left out since the lease's previous batch on this
    /// host: those of this batch's page and of the pages before it where nothing matched
    /// (which are not handed over). Counted again when the batch is delivered again; 0
    /// without a filter.
    pub n_filtered: u64,
}

/// A handler that is checkpointed automatically after it returns `Ok`.
pub type AutoHandler = Arc<
    dyn Fn(BatchContext, Vec<Change>) -> BoxFuture<'static, Result<(), HandlerError>> + Send + Sync,
>;

/// A handler that decides itself when to checkpoint.
pub type ManualHandler = Arc<
    dyn Fn(BatchContext, Vec<Change>, Checkpointer) -> BoxFuture<'static, Result<(), HandlerError>>
        + Send
        + Sync,
>;

/// How batches are handed over.
#[derive(Clone)]
pub(crate) enum Handler {
    Auto(AutoHandler),
    Manual(ManualHandler),
}

/// Why a host stopped working on a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReleaseReason {
    /// The processor was stopped: the lease was checkpointed and left free.
    Shutdown,
    /// Handed to another host that asked for it (after a checkpoint).
    HandedOff {
        /// The host it went to.
        to: String,
    },
    /// Another host took the lease, it was reset, or this host could not renew it in time.
    Lost,
    /// The lease's range split; child leases replaced it.
    Split,
}

/// Called with a lease token (if any) and a message when something fails.
type ErrorCallback = Arc<dyn Fn(Option<&str>, &str) + Send + Sync>;
/// Called with a lease token.
type LeaseCallback = Arc<dyn Fn(&str) + Send + Sync>;
/// Called with a lease token and why it was released.
type ReleaseCallback = Arc<dyn Fn(&str, &ReleaseReason) + Send + Sync>;

/// Callbacks for what happens to leases.
#[derive(Clone, Default)]
pub(crate) struct Notifications {
    pub(crate) on_error: Option<ErrorCallback>,
    pub(crate) on_acquired: Option<LeaseCallback>,
    pub(crate) on_released: Option<ReleaseCallback>,
}

impl Notifications {
    pub(crate) fn error(&self, lease_token: Option<&str>, message: &str) {
        tracing::warn!(lease = lease_token.unwrap_or("-"), "{message}");
        if let Some(callback) = &self.on_error {
            callback(lease_token, message);
        }
    }

    pub(crate) fn acquired(&self, lease_token: &str) {
        tracing::info!(lease = lease_token, "lease acquired");
        if let Some(callback) = &self.on_acquired {
            callback(lease_token);
        }
    }

    pub(crate) fn released(&self, lease_token: &str, reason: &ReleaseReason) {
        tracing::info!(lease = lease_token, ?reason, "lease released");
        if let Some(callback) = &self.on_released {
            callback(lease_token, reason);
        }
    }
}

/// The processor's settings.
#[derive(Clone, Debug)]
pub struct ProcessorConfig {
    /// The processor's name: hosts with the same name share the work.
    pub name: String,
    /// This host's name among them (unique per process).
    pub instance: String,
    /// Which changes are read.
    pub mode: FeedMode,
    /// Where leases without a continuation start.
    pub start_from: StartFrom,
    /// Most changes per batch.
    pub max_items: usize,
    /// Wait between polls of a source that cannot push.
    pub poll_interval: Duration,
    /// Longest wait of one push read.
    pub read_wait: Duration,
    /// Time between balancing rounds.
    pub acquire_interval: Duration,
    /// Time without renewal after which another host may take a lease.
    pub expiration_interval: Duration,
    /// Time between renewals.
    pub renew_interval: Duration,
    /// Most leases taken in one balancing round.
    pub leases_per_cycle: usize,
    /// Consecutive failures after which a lease is reported stuck.
    pub stuck_after_failures: u32,
    /// First back-off after a failed batch.
    pub retry_backoff: Duration,
    /// Handler calls one lease runs at once, each on the changes of some partition keys.
    pub parallelism: usize,
    /// Only changes that pass it are handed over; the others still advance the lease.
    pub feed_filter: Option<Arc<FeedFilter>>,
}

/// Builds a [`ChangeFeedProcessor`].
pub struct ChangeFeedProcessorBuilder {
    config: ProcessorConfig,
    feed: Arc<dyn ChangeFeed>,
    leases: Arc<dyn LeaseContainer>,
    clock: Arc<dyn Clock>,
    handler: Option<Handler>,
    notifications: Notifications,
    /// The condition of [`Self::feed_filter`], parsed by [`Self::build`].
    feed_filter: Option<String>,
}

impl ChangeFeedProcessorBuilder {
    /// A processor named `name` over `feed`, keeping its leases in `leases`. The instance
    /// name defaults to `{hostname}-{pid}`.
    pub fn new(
        name: impl Into<String>,
        feed: Arc<dyn ChangeFeed>,
        leases: Arc<dyn LeaseContainer>,
    ) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        ChangeFeedProcessorBuilder {
            config: ProcessorConfig {
                name: name.into(),
                instance: format!("{host}-{}", std::process::id()),
                mode: FeedMode::LatestVersion,
                start_from: StartFrom::Now,
                max_items: DEFAULT_MAX_ITEMS,
                poll_interval: DEFAULT_POLL_INTERVAL,
                read_wait: DEFAULT_READ_WAIT,
                acquire_interval: DEFAULT_ACQUIRE_INTERVAL,
                expiration_interval: DEFAULT_EXPIRATION_INTERVAL,
                renew_interval: DEFAULT_RENEW_INTERVAL,
                leases_per_cycle: DEFAULT_LEASES_PER_CYCLE,
                stuck_after_failures: DEFAULT_STUCK_AFTER_FAILURES,
                retry_backoff: DEFAULT_RETRY_BACKOFF,
                parallelism: 1,
                feed_filter: None,
            },
            feed,
            leases,
            clock: Arc::new(SystemClock::new()),
            handler: None,
            notifications: Notifications::default(),
            feed_filter: None,
        }
    }

    /// This host's name (unique among the processor's hosts).
    pub fn instance_name(mut self, instance: impl Into<String>) -> Self {
        self.config.instance = instance.into();
        self
    }

    /// Where leases without a continuation start (default: now).
    pub fn start_from(mut self, start: StartFrom) -> Self {
        self.config.start_from = start;
        self
    }

    /// Most changes per batch (default 100).
    pub fn max_items(mut self, max_items: usize) -> Self {
        self.config.max_items = max_items;
        self
    }

    /// Wait between polls of a source that cannot push (default 5 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval;
        self
    }

    /// Longest wait of one push read (default 5 s).
    pub fn read_wait(mut self, wait: Duration) -> Self {
        self.config.read_wait = wait;
        self
    }

    /// Time between balancing rounds (default 13 s).
    pub fn lease_acquire_interval(mut self, interval: Duration) -> Self {
        self.config.acquire_interval = interval;
        self
    }

    /// Time without renewal after which a lease counts as expired (default 60 s).
    pub fn lease_expiration_interval(mut self, interval: Duration) -> Self {
        self.config.expiration_interval = interval;
        self
    }

    /// Time between renewals (default 17 s).
    pub fn lease_renew_interval(mut self, interval: Duration) -> Self {
        self.config.renew_interval = interval;
        self
    }

    /// Most leases taken in one balancing round (default 16; .NET takes one).
    pub fn leases_per_cycle(mut self, n_leases: usize) -> Self {
        self.config.leases_per_cycle = n_leases;
        self
    }

    /// Consecutive failed batches after which a lease is reported stuck (default 10).
    pub fn stuck_after_failures(mut self, n_failures: u32) -> Self {
        self.config.stuck_after_failures = n_failures;
        self
    }

    /// First back-off after a failed batch, doubled per failure up to 60 s (default 1 s).
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.config.retry_backoff = backoff;
        self
    }

    /// Runs up to `n_calls` handler calls of one lease at once (default 1): each page is split
    /// by partition key into up to `n_calls` batches, so the changes of one partition key
    /// still arrive in order, in one batch; the page is checkpointed when all its batches
    /// succeeded (if one fails, the whole page is delivered again). Only with
    /// [`Self::handler`] (automatic checkpoints).
    pub fn parallelism(mut self, n_calls: usize) -> Self {
        self.config.parallelism = n_calls;
        self
    }

    /// Hands over only the changes that meet `condition`, a SQL condition over `c`
    /// (`c.status = 'shipped'`; a `WHERE` or a whole `FROM c WHERE ...` is fine too). The
    /// condition is evaluated where the change is read: by the embedded store's feed as the
    /// page comes out of the store, by a Tributary server before the change leaves it, and on
    /// arrival against Azure Cosmos DB. Changes that fail it still advance the lease: a page
    /// where nothing matched is checkpointed without a handler call (with a manual handler,
    /// only when the handler had checkpointed everything before it). In all-versions mode the
    /// condition sees each create's or replace's `current` image, and deletes always pass.
    /// The estimator counts every change, filtered out or not. Checked by [`Self::build`].
    pub fn feed_filter(mut self, condition: impl Into<String>) -> Self {
        self.feed_filter = Some(condition.into());
        self
    }

    /// Reads all versions and deletes instead of latest versions.
    pub fn all_versions_and_deletes(mut self) -> Self {
        self.config.mode = FeedMode::AllVersionsAndDeletes;
        self
    }

    /// The clock (tests and simulations inject theirs).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Handles batches; each batch that returns `Ok` is checkpointed.
    pub fn handler<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(BatchContext, Vec<Change>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.handler = Some(Handler::Auto(Arc::new(move |context, changes| {
            Box::pin(handler(context, changes))
        })));
        self
    }

    /// Handles batches and checkpoints when it chooses, through the [`Checkpointer`].
    pub fn manual_checkpoint_handler<F, Fut>(mut self, handler: F) -> Self
    where
        F: Fn(BatchContext, Vec<Change>, Checkpointer) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), HandlerError>> + Send + 'static,
    {
        self.handler = Some(Handler::Manual(Arc::new(
            move |context, changes, checkpointer| Box::pin(handler(context, changes, checkpointer)),
        )));
        self
    }

    /// Called with the lease token (if any) and a message when something fails.
    pub fn on_error(
        mut self,
        callback: impl Fn(Option<&str>, &str) + Send + Sync + 'static,
    ) -> Self {
        self.notifications.on_error = Some(Arc::new(callback));
        self
    }

    /// Called with the lease token when this host starts working on a lease.
    pub fn on_lease_acquired(mut self, callback: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.notifications.on_acquired = Some(Arc::new(callback));
        self
    }

    /// Called when this host stops working on a lease, and why.
    pub fn on_lease_released(
        mut self,
        callback: impl Fn(&str, &ReleaseReason) + Send + Sync + 'static,
    ) -> Self {
        self.notifications.on_released = Some(Arc::new(callback));
        self
    }

    /// Checks the settings and builds the processor (not started).
    ///
    /// # Errors
    /// [`ProcessorError::Config`] naming the setting that is wrong.
    pub fn build(mut self) -> Result<ChangeFeedProcessor, ProcessorError> {
        if let Some(condition) = self.feed_filter.take() {
            let filter = FeedFilter::parse(&condition).map_err(|error| {
                ProcessorError::Config(format!(
                    "the feed filter '{condition}' is not a valid SQL condition: {error}"
                ))
            })?;
            self.config.feed_filter = Some(Arc::new(filter));
        }
        let config = &self.config;
        let bad = |message: String| Err(ProcessorError::Config(message));
        if config.name.is_empty() {
            return bad("the processor name must not be empty".into());
        }
        if config.instance.is_empty() {
            return bad("the instance name must not be empty".into());
        }
        if config.max_items == 0 || config.max_items > MAX_MAX_ITEMS {
            return bad(format!(
                "max items must be between 1 and {MAX_MAX_ITEMS}, not {}",
                config.max_items
            ));
        }
        if config.renew_interval.is_zero()
            || config.acquire_interval.is_zero()
            || config.expiration_interval.is_zero()
        {
            return bad("lease intervals must be above zero".into());
        }
        if config.renew_interval * 2 > config.expiration_interval {
            return bad(format!(
                "the renew interval ({:?}) must be at most half the expiration interval ({:?}), or leases expire while their owner is alive",
                config.renew_interval, config.expiration_interval
            ));
        }
        if config.leases_per_cycle == 0 {
            return bad("leases per cycle must be at least 1".into());
        }
        if config.parallelism == 0 || config.parallelism > MAX_PARALLELISM {
            return bad(format!(
                "parallelism must be between 1 and {MAX_PARALLELISM}, not {}",
                config.parallelism
            ));
        }
        let Some(handler) = self.handler else {
            return bad("a handler is required (handler or manual_checkpoint_handler)".into());
        };
        if config.parallelism > 1 && matches!(handler, Handler::Manual(_)) {
            return bad(
                "parallelism above 1 needs automatic checkpoints (handler, not manual_checkpoint_handler)"
                    .into(),
            );
        }
        Ok(ChangeFeedProcessor {
            config: self.config,
            feed: self.feed,
            leases: self.leases,
            clock: self.clock,
            handler,
            notifications: self.notifications,
            running: None,
        })
    }
}

/// A change feed processor: spreads a container's feed over hosts through leases and hands
/// each batch of changes to a handler. See the crate documentation.
pub struct ChangeFeedProcessor {
    config: ProcessorConfig,
    feed: Arc<dyn ChangeFeed>,
    leases: Arc<dyn LeaseContainer>,
    clock: Arc<dyn Clock>,
    handler: Handler,
    notifications: Notifications,
    running: Option<(Arc<Host>, Vec<JoinHandle<()>>)>,
}

impl ChangeFeedProcessor {
    /// Starts the processor: creates the leases if this is the processor's first start,
    /// then balances, renews and processes in background tasks until [`Self::stop`].
    ///
    /// # Errors
    /// [`ProcessorError::AlreadyRunning`]; [`ProcessorError::ModeMismatch`] if existing
    /// leases were written in another mode; the feed or the lease container failed.
    pub async fn start(&mut self) -> Result<(), ProcessorError> {
        if self.running.is_some() {
            return Err(ProcessorError::AlreadyRunning);
        }
        let scope = self.feed.lease_scope().await?;
        let store = LeaseStore::new(
            Arc::clone(&self.leases),
            lease_prefix(&self.config.name, &scope),
            Arc::clone(&self.clock),
        );
        for lease in store.list().await? {
            if lease.mode != self.config.mode {
                return Err(ProcessorError::ModeMismatch {
                    lease: lease.id,
                    lease_mode: lease.mode.lease_value().into(),
                    processor_mode: self.config.mode.lease_value().into(),
                });
            }
        }
        let partition_key_paths = if self.config.parallelism > 1 {
            self.feed.partition_key_paths().await?
        } else {
            Vec::new()
        };
        let host = Host::new(
            self.config.clone(),
            Arc::clone(&self.feed),
            store,
            Arc::clone(&self.clock),
            self.handler.clone(),
            self.notifications.clone(),
            partition_key_paths,
        );
        host.balance_round().await?;
        let tasks = vec![
            tokio::spawn(Arc::clone(&host).balance_loop()),
            tokio::spawn(Arc::clone(&host).renew_loop()),
        ];
        self.running = Some((host, tasks));
        Ok(())
    }

    /// Stops the processor: each lease's batch in hand finishes and is checkpointed, then
    /// its lease is released (left free for another host to take at once).
    pub async fn stop(&mut self) {
        if let Some((host, tasks)) = self.running.take() {
            host.shutdown().await;
            for task in tasks {
                task.abort();
                let _ = task.await;
            }
        }
    }

    /// The lease tokens this host works on now.
    pub fn owned_leases(&self) -> Vec<String> {
        match &self.running {
            Some((host, _)) => host.owned_lease_tokens(),
            None => Vec::new(),
        }
    }

    /// The processor's settings.
    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }
}

impl Drop for ChangeFeedProcessor {
    /// Dropping a running processor without [`ChangeFeedProcessor::stop`] ends its tasks at
    /// once, as a crash would: nothing is checkpointed or released, and its leases expire.
    fn drop(&mut self) {
        if let Some((host, tasks)) = self.running.take() {
            host.abort_workers();
            for task in tasks {
                task.abort();
            }
        }
    }
}

/// Checkpoints the batch it was given with (manual-checkpoint handlers).
pub struct Checkpointer {
    pub(crate) slot: Arc<WorkerSlot>,
    pub(crate) store: LeaseStore,
    pub(crate) instance: String,
    pub(crate) continuation: String,
    pub(crate) clock: Arc<dyn Clock>,
}

/// Why a manual checkpoint failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The lease is no longer this host's: the batch will be delivered again elsewhere.
    #[error("the lease is no longer owned by this host")]
    LeaseLost,
    /// The lease container failed.
    #[error(transparent)]
    LeaseStore(#[from] LeaseStoreError),
}

impl Checkpointer {
    /// Stores the position after this batch in the lease.
    ///
    /// # Errors
    /// [`CheckpointError::LeaseLost`] if another host owns the lease now.
    pub async fn checkpoint(&self) -> Result<(), CheckpointError> {
        self.store_checkpoint(None).await
    }

    /// Stores the position after this batch in the lease and upserts `writes` (a handler's
    /// outputs) in the same atomic transaction: the writes are committed exactly when the
    /// checkpoint is. As [`Checkpointer::checkpoint`], it writes only while this host owns
    /// the lease and never moves it backward, and it retries over this host's own
    /// renewals; if the lease was lost, nothing is written.
    ///
    /// Only lease containers that share a transactional store with the writes' containers
    /// support it ([`LeaseContainer::supports_attached_writes`]): the embedded store's.
    ///
    /// # Errors
    /// [`CheckpointError::LeaseLost`] if another host owns the lease now;
    /// [`LeaseStoreError::Unsupported`] if the lease container cannot attach writes (or not
    /// this many); [`LeaseStoreError::AttachedWriteFailed`] naming the container of a write
    /// that was refused; the lease container failed. Nothing was written in any of these
    /// cases, except that after [`LeaseStoreError::Unavailable`] the outcome is unknown.
    pub async fn checkpoint_with_writes(
        &self,
        writes: Vec<AttachedWrite>,
    ) -> Result<(), CheckpointError> {
        self.store_checkpoint(Some(&writes)).await
    }

    async fn store_checkpoint(
        &self,
        writes: Option<&[AttachedWrite]>,
    ) -> Result<(), CheckpointError> {
        let sent_at = self.clock.monotonic();
        let mut lease = self.slot.lease.lock().await;
        let continuation = self.continuation.clone();
        let change = |lease: &mut Lease| {
            lease.continuation = Some(continuation.clone());
        };
        match self
            .store
            .update_owned_with_writes(&mut lease, &self.instance, change, writes)
            .await?
        {
            OwnedUpdate::Written => {
                self.slot.renewed(sent_at, &lease);
                Ok(())
            }
            OwnedUpdate::Lost => {
                self.slot.mark_lost();
                Err(CheckpointError::LeaseLost)
            }
        }
    }

    /// The continuation a checkpoint stores.
    pub fn continuation(&self) -> &str {
        &self.continuation
    }
}
