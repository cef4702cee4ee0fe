//! One host of a processor: the balancing loop (bootstrap, observe, take leases, ask for
//! hand-offs), the renewal loop, and the slots of the leases it works on.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::balancer::{self, LeaseView};
use crate::clock::Clock;
use crate::error::{LeaseStoreError, ProcessorError};
use crate::feed::{ChangeFeed, FeedPosition, FeedReadOutcome, PhysicalRange, StartFrom};
use crate::lease::{HANDOFF_PROPERTY, Lease, LeaseVersion};
use crate::leases::{LeaseStore, OwnedUpdate};
use crate::processor::{Handler, Notifications, ProcessorConfig};
use crate::worker;

/// What a lease's worker is told to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WorkerCommand {
    /// Keep processing.
    Run,
    /// Finish the batch in hand, checkpoint, leave the lease free.
    Stop,
    /// Finish the batch in hand, checkpoint, give the lease to this host.
    HandOff(String),
    /// Stop at once: the lease is someone else's.
    Lost,
}

/// A lease this host works on: its current stored state and the worker's controls.
pub(crate) struct WorkerSlot {
    /// The lease as last written or read (held while writing it).
    pub(crate) lease: tokio::sync::Mutex<Lease>,
    /// Monotonic time at which the last successful write of the lease was sent.
    last_renewed: Mutex<Duration>,
    /// The worker's instructions.
    pub(crate) command: watch::Sender<WorkerCommand>,
    /// The lease token (for messages).
    pub(crate) token: String,
}

impl WorkerSlot {
    /// Records a successful write sent at `sent_at`, and a hand-off request it carried.
    pub(crate) fn renewed(&self, sent_at: Duration, lease: &Lease) {
        {
            let mut last = self
                .last_renewed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *last = (*last).max(sent_at);
        }
        if let Some(to) = lease.handoff_to() {
            let to = to.to_owned();
            self.command.send_if_modified(|command| {
                if *command == WorkerCommand::Run {
                    *command = WorkerCommand::HandOff(to);
                    true
                } else {
                    false
                }
            });
        }
    }

    /// Tells the worker the lease is gone.
    pub(crate) fn mark_lost(&self) {
        self.command.send_replace(WorkerCommand::Lost);
    }

    /// Whether the lease was renewed recently enough that no other host can have taken it:
    /// other hosts wait the full expiration interval, measured from when they saw the last
    /// write, which was sent before they saw it. A margin covers clock rate differences.
    pub(crate) fn is_fresh(&self, now: Duration, expiration: Duration) -> bool {
        let last = *self
            .last_renewed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        now.saturating_sub(last) < expiration.mul_f64(0.8)
    }
}

/// What this host last saw of a lease it does not own.
struct Observation {
    etag: String,
    since: Duration,
}

struct RunningWorker {
    slot: Arc<WorkerSlot>,
    task: JoinHandle<()>,
    token: String,
}

/// A processor's host: shared by its loops and workers.
pub(crate) struct Host {
    pub(crate) config: ProcessorConfig,
    pub(crate) feed: Arc<dyn ChangeFeed>,
    pub(crate) store: LeaseStore,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) handler: Handler,
    pub(crate) notifications: Notifications,
    /// The monitored container's partition key paths (read when batches are split by
    /// partition key).
    pub(crate) partition_key_paths: Vec<String>,
    workers: Mutex<BTreeMap<String, RunningWorker>>,
    observations: Mutex<BTreeMap<String, Observation>>,
    /// Leases this host asked their owners for (while any, it balances more often).
    handoff_requests: Mutex<BTreeSet<String>>,
    /// When the next lease owned by another host expires unless renewed (monotonic).
    next_expiry: Mutex<Option<Duration>>,
    lock_observation: Mutex<Option<Observation>>,
    ranges: Mutex<Vec<PhysicalRange>>,
    /// Wakes the balancing loop early (after a split made child leases, or a hand-off).
    pub(crate) wake_balancer: Notify,
    shutting_down: watch::Sender<bool>,
    tie_breaker: u64,
    me: std::sync::Weak<Host>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Host {
    pub(crate) fn new(
        config: ProcessorConfig,
        feed: Arc<dyn ChangeFeed>,
        store: LeaseStore,
        clock: Arc<dyn Clock>,
        handler: Handler,
        notifications: Notifications,
        partition_key_paths: Vec<String>,
    ) -> Arc<Host> {
        let tie_breaker = balancer::tie_breaker_of(&config.instance);
        Arc::new_cyclic(|me| Host {
            config,
            feed,
            store,
            clock,
            handler,
            notifications,
            partition_key_paths,
            workers: Mutex::new(BTreeMap::new()),
            observations: Mutex::new(BTreeMap::new()),
            handoff_requests: Mutex::new(BTreeSet::new()),
            next_expiry: Mutex::new(None),
            lock_observation: Mutex::new(None),
            ranges: Mutex::new(Vec::new()),
            wake_balancer: Notify::new(),
            shutting_down: watch::channel(false).0,
            tie_breaker,
            me: me.clone(),
        })
    }

    /// Balances every acquire interval (sooner when woken, or while a hand-off is pending).
    /// Rounds start every acquire interval from the previous round's start (not its end, so
    /// slow rounds do not drift), and also when an observed lease expires.
    pub(crate) async fn balance_loop(self: Arc<Self>) {
        let mut shutting_down = self.shutting_down.subscribe();
        let mut round_started = self.clock.monotonic();
        loop {
            let pending_handoffs = !lock(&self.handoff_requests).is_empty();
            let interval = if pending_handoffs {
                self.config
                    .acquire_interval
                    .min(self.config.renew_interval / 4)
            } else {
                self.config.acquire_interval
            };
            let now = self.clock.monotonic();
            let mut sleep = interval.saturating_sub(now.saturating_sub(round_started));
            if let Some(expiry) = *lock(&self.next_expiry)
                && expiry > now
            {
                sleep = sleep.min(expiry - now);
            }
            tokio::select! {
                biased;
                _ = shutting_down.wait_for(|s| *s) => return,
                () = self.wake_balancer.notified() => {}
                () = self.clock.sleep(sleep) => {}
            }
            round_started = self.clock.monotonic();
            if let Err(error) = self.balance_round().await {
                self.notifications
                    .error(None, &format!("balancing failed: {error}"));
            }
        }
    }

    /// Renews every lease this host works on, every renew interval.
    pub(crate) async fn renew_loop(self: Arc<Self>) {
        let mut shutting_down = self.shutting_down.subscribe();
        loop {
            tokio::select! {
                biased;
                _ = shutting_down.wait_for(|s| *s) => return,
                () = self.clock.sleep(self.config.renew_interval) => {}
            }
            let slots: Vec<(String, Arc<WorkerSlot>)> = lock(&self.workers)
                .values()
                .map(|w| (w.token.clone(), Arc::clone(&w.slot)))
                .collect();
            for (token, slot) in slots {
                if *slot.command.borrow() != WorkerCommand::Run {
                    continue;
                }
                let sent_at = self.clock.monotonic();
                let mut lease = slot.lease.lock().await;
                match self
                    .store
                    .update_owned(&mut lease, &self.config.instance, |_| {})
                    .await
                {
                    Ok(OwnedUpdate::Written) => slot.renewed(sent_at, &lease),
                    Ok(OwnedUpdate::Lost) => slot.mark_lost(),
                    Err(error) => self
                        .notifications
                        .error(Some(&token), &format!("renewing the lease failed: {error}")),
                }
            }
        }
    }

    /// One balancing round: create the leases on a first start, observe, take what this
    /// host should have.
    pub(crate) async fn balance_round(&self) -> Result<(), ProcessorError> {
        self.reap_finished_workers();
        if *self.shutting_down.borrow() {
            return Ok(());
        }
        if !self.ensure_initialized().await? {
            return Ok(());
        }
        let mut leases: Vec<Lease> = self
            .store
            .list()
            .await?
            .into_iter()
            .filter(|lease| lease.mode == self.config.mode)
            .collect();
        self.resolve_spans(&mut leases).await?;
        let now = self.clock.monotonic();
        let expired = self.observe(&leases, now);
        // Leases written to this host (a hand-off, or a restart under the same name).
        let running: Vec<String> = lock(&self.workers).keys().cloned().collect();
        for lease in &leases {
            if lease.is_owned_by(&self.config.instance) && !running.contains(&lease.id) {
                self.start_owned(lease.clone()).await;
            }
        }
        let n_running = lock(&self.workers).len();
        let views: Vec<LeaseView<'_>> = leases
            .iter()
            .map(|lease| LeaseView {
                lease,
                expired: expired.contains(&lease.id),
            })
            .collect();
        let plan = balancer::plan(
            &views,
            &self.config.instance,
            n_running,
            self.config.leases_per_cycle,
            self.tie_breaker,
        );
        for id in plan.take {
            if let Some(lease) = leases.iter().find(|l| l.id == id) {
                self.acquire(lease.clone()).await;
            }
        }
        match plan.request_handoff {
            Some(id) => {
                if let Some(lease) = leases.iter().find(|l| l.id == id) {
                    self.request_handoff(lease.clone()).await;
                }
            }
            None => lock(&self.handoff_requests).clear(),
        }
        Ok(())
    }

    /// Creates the leases on the processor's first start (under the `.lock` document), and
    /// says whether they exist.
    async fn ensure_initialized(&self) -> Result<bool, ProcessorError> {
        if self.store.is_initialized().await? {
            return Ok(true);
        }
        match self.store.lock(&self.config.instance).await? {
            Ok(()) => {}
            Err((_, etag)) => {
                // Another host is creating them. Break its lock if it has not changed for
                // the expiration interval (that host died while creating).
                let now = self.clock.monotonic();
                let break_lock = {
                    let mut seen = lock(&self.lock_observation);
                    match seen.as_ref() {
                        Some(observation) if observation.etag == etag => {
                            let stale = now.saturating_sub(observation.since)
                                >= self.config.expiration_interval;
                            if stale {
                                *seen = None;
                            }
                            stale
                        }
                        _ => {
                            *seen = Some(Observation {
                                etag: etag.clone(),
                                since: now,
                            });
                            false
                        }
                    }
                };
                if break_lock {
                    self.store.unlock(Some(&etag)).await?;
                }
                return Ok(false);
            }
        }
        let created = self.create_initial_leases().await;
        let unlocked = self.store.unlock(None).await;
        created?;
        unlocked?;
        Ok(true)
    }

    async fn create_initial_leases(&self) -> Result<(), ProcessorError> {
        if self.store.is_initialized().await? {
            return Ok(());
        }
        let ranges = self.refresh_ranges().await?;
        for range in ranges {
            let mut lease =
                Lease::new_epk(self.store.prefix(), range.span.clone(), self.config.mode);
            if self.config.start_from == StartFrom::Now {
                match self
                    .feed
                    .current_position(range.clone(), range.span.clone(), self.config.mode)
                    .await?
                {
                    FeedReadOutcome::Page(page) => lease.continuation = Some(page.continuation),
                    // Split since listed: the next round starts over with the new ranges.
                    FeedReadOutcome::Gone => return Ok(()),
                }
            }
            self.store.create(&lease).await?;
        }
        self.store.mark_initialized().await?;
        Ok(())
    }

    /// The current ranges, read again from the source.
    pub(crate) async fn refresh_ranges(&self) -> Result<Vec<PhysicalRange>, ProcessorError> {
        let ranges = self.feed.ranges().await?;
        *lock(&self.ranges) = ranges.clone();
        Ok(ranges)
    }

    /// The cached ranges (read once if none are cached).
    pub(crate) async fn ranges(&self) -> Result<Vec<PhysicalRange>, ProcessorError> {
        let cached = lock(&self.ranges).clone();
        if cached.is_empty() {
            self.refresh_ranges().await
        } else {
            Ok(cached)
        }
    }

    /// Gives partition-range leases (version 0) the span of their range, where it exists.
    async fn resolve_spans(&self, leases: &mut [Lease]) -> Result<(), ProcessorError> {
        if leases.iter().all(|lease| lease.span.is_some()) {
            return Ok(());
        }
        let ranges = self.refresh_ranges().await?;
        for lease in leases
            .iter_mut()
            .filter(|l| l.version == LeaseVersion::PartitionKeyRange && l.span.is_none())
        {
            if let Some(range) = ranges.iter().find(|r| r.id == lease.token) {
                lease.span = Some(range.span.clone());
            }
        }
        Ok(())
    }

    /// Records etag changes; returns the ids of leases whose owner has not written them for
    /// the expiration interval, on this host's clock.
    fn observe(&self, leases: &[Lease], now: Duration) -> Vec<String> {
        let mut observations = lock(&self.observations);
        observations.retain(|id, _| leases.iter().any(|l| &l.id == id));
        let mut expired = Vec::new();
        let mut next_expiry: Option<Duration> = None;
        for lease in leases {
            let observation = observations
                .entry(lease.id.clone())
                .or_insert_with(|| Observation {
                    etag: lease.etag.clone(),
                    since: now,
                });
            if observation.etag != lease.etag {
                observation.etag = lease.etag.clone();
                observation.since = now;
            }
            if !lease.is_free() && !lease.is_owned_by(&self.config.instance) {
                let expiry = observation.since + self.config.expiration_interval;
                if now >= expiry {
                    expired.push(lease.id.clone());
                } else {
                    next_expiry = Some(next_expiry.map_or(expiry, |e| e.min(expiry)));
                }
            }
        }
        *lock(&self.next_expiry) = next_expiry;
        expired
    }

    /// Takes a free or expired lease (a write conditional on the etag listed).
    async fn acquire(&self, mut lease: Lease) {
        lease.owner = Some(self.config.instance.clone());
        lease.properties.remove(HANDOFF_PROPERTY);
        let sent_at = self.clock.monotonic();
        match self.store.write(&lease).await {
            Ok(stored) => self.start_worker(stored, sent_at),
            Err(LeaseStoreError::PreconditionFailed(_) | LeaseStoreError::NotFound(_)) => {}
            Err(error) => self.notifications.error(
                Some(&lease.token),
                &format!("taking the lease failed: {error}"),
            ),
        }
    }

    /// Starts working on a lease the store says is this host's (renewing it first).
    async fn start_owned(&self, mut lease: Lease) {
        let sent_at = self.clock.monotonic();
        let handed_to_me = lease.handoff_to() == Some(self.config.instance.as_str());
        let result = self
            .store
            .update_owned(&mut lease, &self.config.instance, |lease| {
                if handed_to_me {
                    lease.properties.remove(HANDOFF_PROPERTY);
                }
            })
            .await;
        match result {
            Ok(OwnedUpdate::Written) => self.start_worker(lease, sent_at),
            Ok(OwnedUpdate::Lost) => {}
            Err(error) => self.notifications.error(
                Some(&lease.token),
                &format!("taking the lease failed: {error}"),
            ),
        }
    }

    /// Asks the owner of a lease to hand it over (it does at its next renewal or checkpoint,
    /// after the batch in hand). A lease is never taken from a live owner: an owner that
    /// ignores the request (a host that does not know hand-offs) keeps the lease until it
    /// stops or its lease expires, so no two hosts ever handle one lease at once.
    async fn request_handoff(&self, mut lease: Lease) {
        lock(&self.handoff_requests).insert(lease.id.clone());
        if lease.handoff_to() == Some(self.config.instance.as_str()) {
            return;
        }
        lease
            .properties
            .insert(HANDOFF_PROPERTY.into(), self.config.instance.clone());
        if let Err(error) = self.store.write(&lease).await
            && !matches!(
                error,
                LeaseStoreError::PreconditionFailed(_) | LeaseStoreError::NotFound(_)
            )
        {
            self.notifications.error(
                Some(&lease.token),
                &format!("asking for the lease failed: {error}"),
            );
        }
    }

    fn start_worker(&self, lease: Lease, sent_at: Duration) {
        let Some(host) = self.self_arc() else { return };
        if *self.shutting_down.borrow() {
            return;
        }
        let slot = Arc::new(WorkerSlot {
            lease: tokio::sync::Mutex::new(lease.clone()),
            last_renewed: Mutex::new(sent_at),
            command: watch::channel(WorkerCommand::Run).0,
            token: lease.token.clone(),
        });
        lock(&self.handoff_requests).remove(&lease.id);
        self.notifications.acquired(&lease.token);
        let task = tokio::spawn(worker::run(host, Arc::clone(&slot), lease.clone()));
        lock(&self.workers).insert(
            lease.id.clone(),
            RunningWorker {
                slot,
                task,
                token: lease.token,
            },
        );
    }

    fn reap_finished_workers(&self) {
        lock(&self.workers).retain(|_, worker| !worker.task.is_finished());
    }

    /// Stops every worker gracefully and waits for them.
    pub(crate) async fn shutdown(&self) {
        self.shutting_down.send_replace(true);
        let workers: Vec<RunningWorker> = std::mem::take(&mut *lock(&self.workers))
            .into_values()
            .collect();
        for worker in &workers {
            worker.slot.command.send_if_modified(|command| {
                if *command == WorkerCommand::Run {
                    *command = WorkerCommand::Stop;
                    true
                } else {
                    false
                }
            });
        }
        for worker in workers {
            let _ = worker.task.await;
        }
    }

    /// Ends every worker at once (a crash: nothing checkpointed or released).
    pub(crate) fn abort_workers(&self) {
        self.shutting_down.send_replace(true);
        for worker in std::mem::take(&mut *lock(&self.workers)).into_values() {
            worker.task.abort();
        }
    }

    /// The tokens of the leases being worked on.
    pub(crate) fn owned_lease_tokens(&self) -> Vec<String> {
        let mut tokens: Vec<String> = lock(&self.workers)
            .values()
            .filter(|w| !w.task.is_finished())
            .map(|w| w.token.clone())
            .collect();
        tokens.sort();
        tokens
    }

    /// The position a lease without a continuation starts at.
    pub(crate) fn start_position(&self, lease: &Lease) -> FeedPosition {
        match &lease.continuation {
            Some(continuation) => FeedPosition::Continuation(continuation.clone()),
            None => FeedPosition::Start(crate::lease::start_of(lease, self.config.start_from)),
        }
    }

    fn self_arc(&self) -> Option<Arc<Host>> {
        self.me.upgrade()
    }
}
