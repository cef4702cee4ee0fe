//! The work on one lease: read a page, hand it to the handler, checkpoint, repeat; follow
//! splits; retry failed batches with back-off; hand the lease over or release it on stop.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::error::LeaseStoreError;
use crate::feed::{
    Change, EpkSpan, FeedPage, FeedPosition, FeedRead, FeedReadOutcome, PhysicalRange,
};
use crate::host::{Host, WorkerCommand, WorkerSlot};
use crate::lease::{HANDOFF_PROPERTY, Lease};
use crate::leases::OwnedUpdate;
use crate::processor::{
    BatchContext, Checkpointer, Handler, HandlerError, MAX_RETRY_BACKOFF, ReleaseReason,
};

/// Lease property holding the number of consecutive failed batches (set once a lease is
/// stuck; removed when a batch succeeds again).
pub const FAILURES_PROPERTY: &str = "tributary.consecutiveFailures";
/// Lease property holding the last handler error of a stuck lease.
pub const LAST_ERROR_PROPERTY: &str = "tributary.lastError";
/// Longest error text kept in a lease.
const MAX_ERROR_CHARS: usize = 500;

/// Works on a lease until told to stop, the lease is lost, or its range splits.
pub(crate) async fn run(host: Arc<Host>, slot: Arc<WorkerSlot>, lease: Lease) {
    let token = lease.token.clone();
    let reason = work(&host, &slot, lease).await;
    host.notifications.released(&token, &reason);
}

/// Where a lease's span is read from.
enum Location {
    /// Within one current range.
    Within(PhysicalRange),
    /// Spread over several ranges (or none is known): the lease must be split.
    Split,
}

fn locate(ranges: &[PhysicalRange], span: &EpkSpan) -> Location {
    let overlapping: Vec<&PhysicalRange> =
        ranges.iter().filter(|r| r.span.overlaps(span)).collect();
    match overlapping.as_slice() {
        [one] if one.span.contains(span) => Location::Within((*one).clone()),
        _ => Location::Split,
    }
}

/// Lease writes after successful batches, made in the background so the next read does not
/// wait for them: one write in flight per lease, and a newer checkpoint replaces a pending
/// older one (checkpoints of one lease are written in order and never move backward).
/// A lease write running in the background.
type LeaseWrite = JoinHandle<Result<OwnedUpdate, LeaseStoreError>>;

struct Checkpoints {
    /// The write in flight, and the continuation it stores.
    in_flight: Option<(LeaseWrite, Option<String>)>,
    /// A write that is due: the continuation to store (`None`: only clear the stuck marks).
    pending: Option<Option<String>>,
}

impl Checkpoints {
    fn new() -> Self {
        Checkpoints {
            in_flight: None,
            pending: None,
        }
    }

    /// Asks for a checkpoint at `continuation` (and clears the stuck marks).
    fn request(&mut self, continuation: Option<String>) {
        let continuation = match (continuation, self.pending.take()) {
            (Some(newer), _) => Some(newer),
            (None, Some(older)) => older,
            (None, None) => None,
        };
        self.pending = Some(continuation);
    }

    /// Collects a finished write (or waits for it when `wait`) and starts the pending one.
    ///
    /// # Errors
    /// `Lost` if a write found the lease owned by another host.
    async fn drive(
        &mut self,
        host: &Arc<Host>,
        slot: &Arc<WorkerSlot>,
        wait: bool,
    ) -> Result<(), ReleaseReason> {
        if let Some((handle, continuation)) =
            self.in_flight.take_if(|(h, _)| wait || h.is_finished())
        {
            let failure = match handle.await {
                Ok(Ok(OwnedUpdate::Written)) => None,
                Ok(Ok(OwnedUpdate::Lost)) => return Err(ReleaseReason::Lost),
                Ok(Err(error)) => Some(error.to_string()),
                Err(join_error) => Some(join_error.to_string()),
            };
            if let Some(failure) = failure {
                host.notifications.error(
                    Some(&slot.token),
                    &format!("checkpointing failed (it is tried again): {failure}"),
                );
                if self.pending.is_none() {
                    self.pending = Some(continuation);
                }
            }
        }
        if self.in_flight.is_none()
            && let Some(continuation) = self.pending.take()
        {
            let (host, slot) = (Arc::clone(host), Arc::clone(slot));
            let stored = continuation.clone();
            let handle = tokio::spawn(async move {
                write(&host, &slot, |lease| {
                    if let Some(continuation) = &stored {
                        lease.continuation = Some(continuation.clone());
                    }
                    lease.properties.remove(FAILURES_PROPERTY);
                    lease.properties.remove(LAST_ERROR_PROPERTY);
                })
                .await
            });
            self.in_flight = Some((handle, continuation));
        }
        Ok(())
    }

    /// Writes everything due and waits for it.
    async fn flush(
        &mut self,
        host: &Arc<Host>,
        slot: &Arc<WorkerSlot>,
    ) -> Result<(), ReleaseReason> {
        self.drive(host, slot, true).await?;
        self.drive(host, slot, true).await
    }
}

/// The partition key of a change, as text, from the container's key paths (in
/// all-versions mode, from its current or previous image).
fn partition_key_text(change: &Change, paths: &[String]) -> String {
    let Ok(value) = change.value() else {
        return String::new();
    };
    let image = value
        .get("current")
        .filter(|c| c.is_object())
        .or_else(|| value.get("previous"))
        .unwrap_or(&value);
    let mut key = String::new();
    for path in paths {
        let mut node = Some(image);
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            node = node.and_then(|n| n.get(segment));
        }
        key.push_str(&node.map_or_else(|| "undefined".to_owned(), ToString::to_string));
        key.push('\u{1f}');
    }
    key
}

/// Splits a page into at most `n_lanes` batches by partition key, each in feed order, so
/// that the changes of one partition key stay in one batch.
fn lanes_by_partition_key(
    changes: Vec<Change>,
    paths: &[String],
    n_lanes: usize,
) -> Vec<Vec<Change>> {
    let mut lanes: Vec<Vec<Change>> = (0..n_lanes).map(|_| Vec::new()).collect();
    for change in changes {
        let key = partition_key_text(&change, paths);
        let lane = (crate::balancer::stable_hash(&key) % n_lanes as u64) as usize;
        lanes[lane].push(change);
    }
    lanes.retain(|lane| !lane.is_empty());
    lanes
}

/// Calls the handler on a page: once, or once per partition-key lane at the same time.
async fn invoke(
    host: &Arc<Host>,
    slot: &Arc<WorkerSlot>,
    context: BatchContext,
    changes: Vec<Change>,
) -> Result<(), HandlerError> {
    let config = &host.config;
    match &host.handler {
        Handler::Auto(handler) if config.parallelism > 1 => {
            let lanes =
                lanes_by_partition_key(changes, &host.partition_key_paths, config.parallelism);
            let mut calls = tokio::task::JoinSet::new();
            for lane in lanes {
                calls.spawn(handler(context.clone(), lane));
            }
            let mut outcome = Ok(());
            while let Some(result) = calls.join_next().await {
                let result =
                    result.unwrap_or_else(|e| Err(format!("the handler panicked: {e}").into()));
                if outcome.is_ok() {
                    outcome = result;
                }
            }
            outcome
        }
        Handler::Auto(handler) => handler(context, changes).await,
        Handler::Manual(handler) => {
            let checkpointer = Checkpointer {
                slot: Arc::clone(slot),
                store: host.store.clone(),
                instance: config.instance.clone(),
                continuation: context.to.clone(),
                clock: Arc::clone(&host.clock),
            };
            handler(context, changes, checkpointer).await
        }
    }
}

async fn work(host: &Arc<Host>, slot: &Arc<WorkerSlot>, lease: Lease) -> ReleaseReason {
    let mut command = slot.command.subscribe();
    let config = &host.config;
    let token = lease.token.clone();
    let mut position = host.start_position(&lease);
    let mut n_failures = 0u32;
    let mut checkpoints = Checkpoints::new();
    // A page read ahead while the handler ran, from `position`.
    let mut ahead: Option<FeedPage> = None;
    // Changes the feed filter left out since the last batch handled (reported with the next).
    let mut n_filtered_before = 0u64;
    let Some(span) = lease.span.clone() else {
        // A partition-range lease whose range is gone: its children replace it.
        return split(host, slot, None).await;
    };
    loop {
        if let Err(reason) = checkpoints.drive(host, slot, false).await {
            return reason;
        }
        let current = command.borrow_and_update().clone();
        match current {
            WorkerCommand::Run => {}
            WorkerCommand::Stop | WorkerCommand::HandOff(_) => {
                if let Err(reason) = checkpoints.flush(host, slot).await {
                    return reason;
                }
                let to = match current {
                    WorkerCommand::HandOff(to) => Some(to),
                    _ => None,
                };
                return finish(host, slot, &position, to).await;
            }
            WorkerCommand::Lost => return ReleaseReason::Lost,
        }
        if !slot.is_fresh(host.clock.monotonic(), config.expiration_interval) {
            host.notifications.error(
                Some(&token),
                "the lease could not be renewed in time; leaving it so no two hosts work on it",
            );
            return ReleaseReason::Lost;
        }
        let range = match host.ranges().await {
            Ok(ranges) => match locate(&ranges, &span) {
                Location::Within(range) => range,
                Location::Split => match host.refresh_ranges().await {
                    Ok(ranges) => match locate(&ranges, &span) {
                        Location::Within(range) => range,
                        Location::Split => {
                            return match checkpoints.flush(host, slot).await {
                                Ok(()) => split(host, slot, Some(&span)).await,
                                Err(reason) => reason,
                            };
                        }
                    },
                    Err(error) => {
                        host.notifications
                            .error(Some(&token), &format!("listing ranges failed: {error}"));
                        pause(host, &mut command, config.retry_backoff).await;
                        continue;
                    }
                },
            },
            Err(error) => {
                host.notifications
                    .error(Some(&token), &format!("listing ranges failed: {error}"));
                pause(host, &mut command, config.retry_backoff).await;
                continue;
            }
        };
        let wait = if host.feed.waits_for_changes() {
            config.read_wait
        } else {
            Duration::ZERO
        };
        let page = match ahead.take() {
            Some(page) => page,
            None => {
                if checkpoints.pending.is_some() || checkpoints.in_flight.is_some() {
                    // About to wait for changes: write the checkpoint first.
                    if let Err(reason) = checkpoints.flush(host, slot).await {
                        return reason;
                    }
                }
                let read = FeedRead {
                    range: range.clone(),
                    span: span.clone(),
                    position: position.clone(),
                    mode: config.mode,
                    max_items: config.max_items,
                    wait,
                    filter: config.feed_filter.clone(),
                };
                let started = host.clock.monotonic();
                let outcome = tokio::select! {
                    biased;
                    _ = command.changed() => continue,
                    outcome = host.feed.read(read) => outcome,
                };
                match outcome {
                    Ok(FeedReadOutcome::Page(page))
                        if page.changes.is_empty() && page.n_filtered == 0 =>
                    {
                        position = FeedPosition::Continuation(page.continuation);
                        let waited = host.clock.monotonic().saturating_sub(started);
                        // A source that cannot push (or that answered early) is polled.
                        if wait.is_zero() || waited < wait / 2 {
                            pause(
                                host,
                                &mut command,
                                config.poll_interval.saturating_sub(waited),
                            )
                            .await;
                        }
                        continue;
                    }
                    Ok(FeedReadOutcome::Page(page)) => page,
                    Ok(FeedReadOutcome::Gone) => {
                        // The cached range is gone: look again; a split makes child leases.
                        match host.refresh_ranges().await {
                            Ok(ranges) => match locate(&ranges, &span) {
                                Location::Within(fresh) if fresh.id != range.id => continue,
                                _ => {
                                    return match checkpoints.flush(host, slot).await {
                                        Ok(()) => split(host, slot, Some(&span)).await,
                                        Err(reason) => reason,
                                    };
                                }
                            },
                            Err(error) => {
                                host.notifications.error(
                                    Some(&token),
                                    &format!("listing ranges failed: {error}"),
                                );
                                pause(host, &mut command, config.retry_backoff).await;
                                continue;
                            }
                        }
                    }
                    Err(error) => {
                        host.notifications.error(
                            Some(&token),
                            &format!("reading the change feed failed: {error}"),
                        );
                        pause(host, &mut command, backoff(config.retry_backoff, 1)).await;
                        continue;
                    }
                }
            }
        };
        if page.changes.is_empty() {
            // Every change read failed the feed filter: nothing to hand over, but the lease
            // moves past them at once (and the next read follows without a pause).
            n_filtered_before += page.n_filtered;
            if filtered_page_is_checkpointed(host, slot, &position).await {
                checkpoints.request(Some(page.continuation.clone()));
            }
            position = FeedPosition::Continuation(page.continuation);
            continue;
        }
        if !slot.is_fresh(host.clock.monotonic(), config.expiration_interval) {
            continue;
        }
        // Read the next page while the handler runs (one page ahead, without waiting).
        let read_ahead = {
            let feed = Arc::clone(&host.feed);
            let read = FeedRead {
                range,
                span: span.clone(),
                position: FeedPosition::Continuation(page.continuation.clone()),
                mode: config.mode,
                max_items: config.max_items,
                wait: Duration::ZERO,
                filter: config.feed_filter.clone(),
            };
            tokio::spawn(async move { feed.read(read).await })
        };
        let context = BatchContext {
            lease_token: token.clone(),
            span: span.clone(),
            attempt: n_failures + 1,
            from: match &position {
                FeedPosition::Continuation(c) => Some(c.clone()),
                FeedPosition::Start(_) => None,
            },
            to: page.continuation.clone(),
            mode: config.mode,
            n_filtered: n_filtered_before + page.n_filtered,
        };
        match invoke(host, slot, context, page.changes).await {
            Ok(()) => {
                let was_stuck = n_failures >= config.stuck_after_failures;
                n_failures = 0;
                n_filtered_before = 0;
                position = FeedPosition::Continuation(page.continuation.clone());
                let automatic = matches!(host.handler, Handler::Auto(_));
                if automatic || was_stuck {
                    checkpoints.request(automatic.then_some(page.continuation));
                }
                if let Ok(Ok(FeedReadOutcome::Page(next))) = read_ahead.await
                    && (!next.changes.is_empty() || next.n_filtered > 0)
                {
                    ahead = Some(next);
                }
            }
            Err(error) => {
                read_ahead.abort();
                n_failures += 1;
                let message = error.to_string();
                host.notifications.error(
                    Some(&token),
                    &format!("the handler failed on attempt {n_failures}: {message}"),
                );
                if n_failures >= config.stuck_after_failures {
                    if let Err(reason) = checkpoints.flush(host, slot).await {
                        return reason;
                    }
                    let text: String = message.chars().take(MAX_ERROR_CHARS).collect();
                    let update = write(host, slot, |lease| {
                        lease
                            .properties
                            .insert(FAILURES_PROPERTY.into(), n_failures.to_string());
                        lease
                            .properties
                            .insert(LAST_ERROR_PROPERTY.into(), text.clone());
                    })
                    .await;
                    if matches!(update, Ok(OwnedUpdate::Lost)) {
                        return ReleaseReason::Lost;
                    }
                }
                pause(
                    host,
                    &mut command,
                    backoff(config.retry_backoff, n_failures),
                )
                .await;
            }
        }
    }
}

/// Whether a page read from `position` in which every change failed the feed filter is
/// checkpointed. With automatic checkpoints, always: everything before it was handled. With a
/// manual handler, only if the lease's checkpoint is already at `position` (the handler
/// checkpointed every batch it was given), so that checkpointing past the filtered changes
/// never also passes a batch the handler chose not to checkpoint yet.
async fn filtered_page_is_checkpointed(
    host: &Host,
    slot: &WorkerSlot,
    position: &FeedPosition,
) -> bool {
    match &host.handler {
        Handler::Auto(_) => true,
        Handler::Manual(_) => {
            let checkpoint = slot.lease.lock().await.continuation.clone();
            match position {
                FeedPosition::Continuation(continuation) => {
                    checkpoint.as_deref() == Some(continuation.as_str())
                }
                FeedPosition::Start(_) => checkpoint.is_none(),
            }
        }
    }
}

/// The back-off after `n_failures` consecutive failures.
fn backoff(first: Duration, n_failures: u32) -> Duration {
    first
        .saturating_mul(1u32 << n_failures.saturating_sub(1).min(16))
        .min(MAX_RETRY_BACKOFF)
}

/// Sleeps, or returns early when the worker gets a new command.
async fn pause(
    host: &Host,
    command: &mut tokio::sync::watch::Receiver<WorkerCommand>,
    duration: Duration,
) {
    if duration.is_zero() {
        return;
    }
    tokio::select! {
        biased;
        _ = command.changed() => {}
        () = host.clock.sleep(duration) => {}
    }
}

/// Writes a change to the worker's lease (conditional, fenced by ownership).
async fn write(
    host: &Host,
    slot: &WorkerSlot,
    change: impl Fn(&mut Lease),
) -> Result<OwnedUpdate, crate::error::LeaseStoreError> {
    let sent_at = host.clock.monotonic();
    let mut lease = slot.lease.lock().await;
    let update = host
        .store
        .update_owned(&mut lease, &host.config.instance, change)
        .await?;
    match update {
        OwnedUpdate::Written => slot.renewed(sent_at, &lease),
        OwnedUpdate::Lost => slot.mark_lost(),
    }
    Ok(update)
}

/// Checkpoints (automatic mode) and gives the lease up: free, or to `handoff_to`.
async fn finish(
    host: &Host,
    slot: &WorkerSlot,
    position: &FeedPosition,
    handoff_to: Option<String>,
) -> ReleaseReason {
    let continuation = match (position, &host.handler) {
        (FeedPosition::Continuation(c), Handler::Auto(_)) => Some(c.clone()),
        _ => None,
    };
    let mut lease = slot.lease.lock().await;
    let result = host
        .store
        .update_owned(&mut lease, &host.config.instance, |lease| {
            if let Some(continuation) = &continuation {
                lease.continuation = Some(continuation.clone());
            }
            lease.owner = handoff_to.clone();
            lease.properties.remove(HANDOFF_PROPERTY);
        })
        .await;
    match result {
        Ok(OwnedUpdate::Written) => match handoff_to {
            Some(to) => ReleaseReason::HandedOff { to },
            None => ReleaseReason::Shutdown,
        },
        Ok(OwnedUpdate::Lost) => ReleaseReason::Lost,
        Err(error) => {
            host.notifications.error(
                Some(&lease.token),
                &format!("releasing the lease failed (it will expire instead): {error}"),
            );
            ReleaseReason::Lost
        }
    }
}

/// Replaces the worker's lease by leases for the current ranges overlapping its span, each
/// starting at the lease's checkpoint, owned by this host; then deletes it.
async fn split(host: &Arc<Host>, slot: &WorkerSlot, span: Option<&EpkSpan>) -> ReleaseReason {
    let ranges = match host.refresh_ranges().await {
        Ok(ranges) => ranges,
        Err(error) => {
            host.notifications.error(
                None,
                &format!("listing ranges after a split failed: {error}"),
            );
            return ReleaseReason::Lost;
        }
    };
    let mut lease = slot.lease.lock().await;
    let children: Vec<EpkSpan> = match span {
        Some(span) => ranges
            .iter()
            .filter(|r| r.span.overlaps(span))
            .map(|r| r.span.intersection(span))
            .collect(),
        None => ranges
            .iter()
            .filter(|r| r.parents.contains(&lease.token))
            .map(|r| r.span.clone())
            .collect(),
    };
    if children.is_empty() {
        host.notifications.error(
            Some(&lease.token),
            "the lease's range is gone and no current range replaces it",
        );
        return ReleaseReason::Lost;
    }
    for child_span in children {
        let mut child = Lease::new_epk(host.store.prefix(), child_span, host.config.mode);
        if child.id == lease.id {
            continue;
        }
        child.continuation = lease.continuation.clone();
        child.owner = Some(host.config.instance.clone());
        child.properties = lease.properties.clone();
        child.properties.remove(HANDOFF_PROPERTY);
        if let Err(error) = host.store.create(&child).await {
            host.notifications.error(
                Some(&lease.token),
                &format!("creating a child lease after a split failed: {error}"),
            );
            return ReleaseReason::Lost;
        }
    }
    loop {
        match host.store.delete(&lease).await {
            Ok(()) | Err(crate::error::LeaseStoreError::NotFound(_)) => break,
            Err(crate::error::LeaseStoreError::PreconditionFailed(_)) => {
                match host.store.read(&lease.id).await {
                    Ok(Some(fresh)) if fresh.is_owned_by(&host.config.instance) => *lease = fresh,
                    // Someone else's now: they will split it in turn.
                    _ => break,
                }
            }
            Err(error) => {
                host.notifications.error(
                    Some(&lease.token),
                    &format!("deleting a split lease failed: {error}"),
                );
                break;
            }
        }
    }
    host.wake_balancer.notify_one();
    ReleaseReason::Split
}
