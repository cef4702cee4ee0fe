//! The single writer: it gathers concurrent requests into groups and commits each group as
//! one atomic, durable batch (group commit), assigning LSNs in commit order.
//!
//! Architecture invariant: only this thread writes to storage, so LSNs are assigned and
//! become visible strictly in order, and every read-modify-write (ETag checks, the conflict on
//! a duplicate create) sees the latest state.
//!
//! This module is the group-commit loop: it takes requests from the queue, applies each group
//! to one [`Txn`], commits it, publishes the catalog and wakes waiting readers, and answers
//! every request. The committer's state sits behind a [`Gate`]: a caller that finds it idle
//! (nothing queued, nobody committing, no concurrent writers lately) commits its own request
//! on its own thread, saving the two thread hand-offs of the queue; otherwise it queues for the
//! committer thread, which gathers everything queued into the next group. The work itself
//! lives in the submodules: `prepare` (caller-side validation), `item_ops`, `catalog_ops`,
//! `maintenance` (TTL, retention, purges), `splits`, and `disk_reserve` (writes wait while
//! the disk is nearly full).

mod catalog_ops;
mod disk_reserve;
mod index_ops;
mod item_ops;
mod maintenance;
mod prepare;
mod script_ops;
mod splits;
mod user_ops;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::oneshot;

use self::catalog_ops::{
    create_container, create_database, delete_container, delete_database, replace_container,
    replace_database_throughput,
};
use self::item_ops::apply_op;
use self::prepare::PreparedOp;
pub(crate) use self::script_ops::ScriptScope;
use self::script_ops::{delete_script, put_script};
use self::splits::split_range;
pub(crate) use self::user_ops::Put;
use self::user_ops::{delete_permission, delete_user, put_permission, put_user};
use crate::catalog::{
    Autoscale, ContainerDefinition, ContainerProperties, DatabaseProperties, RangeRecord,
};
use crate::disk_space::caused_by_full_disk;
use crate::error::{Result, StoreError};
use crate::item::{OperationResult, TransactionOutcome, WriteOutcome};
use crate::scripts::{ScriptDefinition, ScriptProperties};
use crate::shared::{FeedWatermark, Shared};
use crate::txn::Txn;
use crate::users::{PermissionDefinition, PermissionProperties, UserProperties};

pub(crate) use self::disk_reserve::DiskReserve;

/// Most requests in one commit group.
const MAX_GROUP_REQUESTS: usize = 1024;

type Reply<T> = oneshot::Sender<Result<T>>;

/// One operation of a transaction, with the container it targets.
#[derive(Debug)]
pub(crate) struct TransactionOp {
    pub database: String,
    pub container: String,
    /// The container's id when the operation was prepared: if the container was deleted
    /// (and maybe created again) since, the operation fails.
    pub cid: u32,
    pub op: PreparedOp,
}

/// A request to the committer.
pub(crate) enum Request {
    Write {
        database: String,
        container: String,
        cid: u32,
        op: PreparedOp,
        reply: Reply<WriteOutcome>,
    },
    /// Independent item operations on one container, applied in order in one commit group;
    /// each succeeds or fails on its own (a bulk request). Operations that failed to
    /// prepare carry their error and are skipped.
    Bulk {
        database: String,
        container: String,
        cid: u32,
        ops: Vec<Result<PreparedOp>>,
        reply: Reply<Vec<Result<WriteOutcome>>>,
    },
    /// Operations on any containers of any databases, committed all or none.
    Transaction {
        ops: Vec<TransactionOp>,
        reply: Reply<TransactionOutcome>,
    },
    CreateDatabase {
        id: String,
        throughput: Option<u64>,
        autoscale: Option<Autoscale>,
        reply: Reply<DatabaseProperties>,
    },
    ReplaceDatabaseThroughput {
        id: String,
        throughput: u64,
        autoscale: Option<Autoscale>,
        reply: Reply<DatabaseProperties>,
    },
    DeleteDatabase {
        id: String,
        reply: Reply<()>,
    },
    CreateContainer {
        database: String,
        definition: ContainerDefinition,
        initial_ranges: u32,
        reply: Reply<ContainerProperties>,
    },
    ReplaceContainer {
        database: String,
        definition: ContainerDefinition,
        reply: Reply<ContainerProperties>,
    },
    DeleteContainer {
        database: String,
        id: String,
        reply: Reply<()>,
    },
    SplitRange {
        database: String,
        container: String,
        range_id: u32,
        reply: Reply<Vec<RangeRecord>>,
    },
    PutUser {
        database: String,
        id: String,
        put: Put,
        reply: Reply<(UserProperties, bool)>,
    },
    DeleteUser {
        database: String,
        id: String,
        reply: Reply<()>,
    },
    PutPermission {
        database: String,
        user: String,
        definition: PermissionDefinition,
        put: Put,
        reply: Reply<(PermissionProperties, bool)>,
    },
    DeletePermission {
        database: String,
        user: String,
        id: String,
        reply: Reply<()>,
    },
    PutScript {
        scope: ScriptScope,
        definition: ScriptDefinition,
        put: Put,
        if_match: Option<String>,
        reply: Reply<(ScriptProperties, bool)>,
    },
    DeleteScript {
        scope: ScriptScope,
        id: String,
        if_match: Option<String>,
        reply: Reply<()>,
    },
}

impl Request {
    /// Requests that scan committed data run alone, after the previous group committed.
    fn is_exclusive(&self) -> bool {
        matches!(
            self,
            Request::SplitRange { .. } | Request::ReplaceContainer { .. }
        )
    }
}

/// Who commits next: the committer's state, taken by the committer thread or by a caller
/// that found it idle, and the number of requests queued for the thread.
pub(crate) struct Gate {
    committer: Mutex<Committer>,
    /// Requests sent to the queue and not yet taken by the committer thread. A caller commits
    /// on its own thread only when this is zero, so it never overtakes queued requests.
    queued: AtomicUsize,
    /// Set while writes arrive concurrently: a request found the committer busy, or the last
    /// commit left requests queued or held more than one. Callers then queue, so that
    /// concurrent writes share the committer thread's groups (and their `fdatasync`) instead
    /// of each blocking its caller's thread for a commit of its own; the committer thread
    /// clears it when it commits a lone request with nothing queued behind it.
    contended: AtomicBool,
}

impl Gate {
    pub(crate) fn new(shared: Arc<Shared>, disk_reserve: DiskReserve) -> Gate {
        Gate {
            committer: Mutex::new(Committer {
                shared,
                disk_reserve,
                last_maintenance: Instant::now(),
                index_work_pending: false,
                closed: false,
            }),
            queued: AtomicUsize::new(0),
            contended: AtomicBool::new(false),
        }
    }

    /// Commits `request` alone on the calling thread if writes are not arriving concurrently,
    /// nothing is queued and nobody is committing; gives it back otherwise (or after
    /// [`Gate::close`]), for the queue.
    pub(crate) fn commit_if_idle(&self, request: Request) -> Option<Request> {
        if self.contended.load(Ordering::Acquire) || self.queued.load(Ordering::Acquire) != 0 {
            return Some(request);
        }
        let Some(mut committer) = self.committer.try_lock() else {
            self.contended.store(true, Ordering::Release);
            return Some(request);
        };
        if committer.closed {
            return Some(request);
        }
        committer.process(vec![request]);
        if self.queued.load(Ordering::Acquire) != 0 {
            self.contended.store(true, Ordering::Release);
        }
        None
    }

    /// Notes the size of a group the committer thread just committed: a lone request with
    /// nothing queued behind it means writes have stopped arriving concurrently.
    fn committed_group(&self, n_requests: usize) {
        let contended = n_requests > 1 || self.queued.load(Ordering::Acquire) != 0;
        self.contended.store(contended, Ordering::Release);
    }

    /// Counts a request about to be sent to the queue.
    pub(crate) fn enqueued(&self) {
        self.queued.fetch_add(1, Ordering::AcqRel);
    }

    /// Uncounts a request that could not be sent, or that the committer thread took.
    pub(crate) fn dequeued(&self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }

    /// Waits for a commit in progress on a caller's thread and stops callers from starting
    /// more: after it, only the committer thread commits (what is still queued).
    pub(crate) fn close(&self) {
        self.committer.lock().closed = true;
    }
}

/// How often maintenance passes come while a range index is being built: often enough that
/// a build of a million items takes minutes, not hours, with writes still served between
/// passes.
const INDEX_WORK_INTERVAL: Duration = Duration::from_millis(20);

/// Runs the committer thread until every sender is dropped.
pub(crate) fn run(gate: Arc<Gate>, requests: Receiver<Request>) {
    let maintenance_interval = gate.committer.lock().shared.maintenance_interval;
    let mut pending: Option<Request> = None;
    loop {
        let interval = if gate.committer.lock().index_work_pending {
            INDEX_WORK_INTERVAL.min(maintenance_interval)
        } else {
            maintenance_interval
        };
        let first = match pending.take() {
            Some(request) => request,
            None => match requests.recv_timeout(interval) {
                Ok(request) => {
                    gate.dequeued();
                    request
                }
                Err(RecvTimeoutError::Timeout) => {
                    gate.committer.lock().maintain();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        // Taken before gathering, so what queued while a caller was committing joins this
        // group.
        let mut committer = gate.committer.lock();
        let mut group = vec![first];
        if !group[0].is_exclusive() {
            while group.len() < MAX_GROUP_REQUESTS {
                match requests.try_recv() {
                    Ok(request) => {
                        gate.dequeued();
                        if request.is_exclusive() {
                            pending = Some(request);
                            break;
                        }
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
        }
        let n_requests = group.len();
        committer.process(group);
        gate.committed_group(n_requests);
        let due = if committer.index_work_pending {
            INDEX_WORK_INTERVAL.min(maintenance_interval)
        } else {
            maintenance_interval
        };
        if committer.last_maintenance.elapsed() >= due {
            committer.maintain();
        }
    }
}

struct Committer {
    shared: Arc<Shared>,
    /// Refuses writes while the disk is nearly full.
    disk_reserve: DiskReserve,
    last_maintenance: Instant,
    /// Set by the last maintenance pass when a range index build (or the deletion of a
    /// replaced generation) has more to do: passes then come every
    /// [`INDEX_WORK_INTERVAL`] instead of every maintenance interval.
    index_work_pending: bool,
    /// Set by [`Gate::close`]: callers no longer commit on their own threads.
    closed: bool,
}

/// A reply waiting for its group to commit.
enum Pending {
    Write(Reply<WriteOutcome>, Result<WriteOutcome>),
    Bulk(Reply<Vec<Result<WriteOutcome>>>, Vec<Result<WriteOutcome>>),
    Transaction(Reply<TransactionOutcome>, Result<TransactionOutcome>),
    Database(Reply<DatabaseProperties>, Result<DatabaseProperties>),
    Container(Reply<ContainerProperties>, Result<ContainerProperties>),
    Unit(Reply<()>, Result<()>),
    Ranges(Reply<Vec<RangeRecord>>, Result<Vec<RangeRecord>>),
    User(
        Reply<(UserProperties, bool)>,
        Result<(UserProperties, bool)>,
    ),
    Permission(
        Reply<(PermissionProperties, bool)>,
        Result<(PermissionProperties, bool)>,
    ),
    Script(
        Reply<(ScriptProperties, bool)>,
        Result<(ScriptProperties, bool)>,
    ),
}

impl Pending {
    fn send(self, commit_error: Option<&str>) {
        fn deliver<T>(reply: Reply<T>, result: Result<T>, commit_error: Option<&str>) {
            let result = match (result, commit_error) {
                (Ok(_), Some(error)) => Err(StoreError::CommitFailed(error.to_owned())),
                (result, _) => result,
            };
            // The caller may have given up waiting; nothing to do then.
            let _ = reply.send(result);
        }
        match self {
            Pending::Write(r, v) => deliver(r, v, commit_error),
            Pending::Bulk(reply, results) => {
                let results = results
                    .into_iter()
                    .map(|result| match (result, commit_error) {
                        (Ok(_), Some(error)) => Err(StoreError::CommitFailed(error.to_owned())),
                        (result, _) => result,
                    })
                    .collect();
                // The caller may have given up waiting; nothing to do then.
                let _ = reply.send(Ok(results));
            }
            Pending::Transaction(r, v) => deliver(r, v, commit_error),
            Pending::Database(r, v) => deliver(r, v, commit_error),
            Pending::Container(r, v) => deliver(r, v, commit_error),
            Pending::Unit(r, v) => deliver(r, v, commit_error),
            Pending::Ranges(r, v) => deliver(r, v, commit_error),
            Pending::User(r, v) => deliver(r, v, commit_error),
            Pending::Permission(r, v) => deliver(r, v, commit_error),
            Pending::Script(r, v) => deliver(r, v, commit_error),
        }
    }
}

impl Committer {
    fn process(&mut self, group: Vec<Request>) {
        if let Some(reason) = self.shared.poisoned.lock().clone() {
            for request in group {
                reject(request, || StoreError::Poisoned(reason.clone()));
            }
            return;
        }
        // Every request writes: below the reserve none is applied, so none is stored.
        if let Some(free_bytes) = self.disk_reserve.below_reserve() {
            for request in group {
                reject(request, || self.disk_reserve.disk_full(free_bytes));
            }
            return;
        }
        let shared = Arc::clone(&self.shared);
        let catalog = (*shared.catalog()).clone();
        let mut txn = Txn::new(shared.backend.as_ref(), catalog, shared.now_s());
        let mut replies = Vec::with_capacity(group.len());
        for request in group {
            replies.push(self.apply(&mut txn, request));
        }
        let error = self.commit(txn);
        for reply in replies {
            reply.send(error.as_deref());
        }
    }

    /// Commits a group; on failure poisons the store and returns the reason.
    fn commit(&mut self, txn: Txn<'_>) -> Option<String> {
        if txn.is_empty() {
            return None;
        }
        let (mutations, catalog, touched) = txn.finish();
        let auto_split = self.shared.split_threshold_bytes;
        let n_bytes: usize = mutations
            .iter()
            .map(|(_, key, value)| key.len() + value.as_ref().map_or(0, Vec::len))
            .sum();
        let write_started = Instant::now();
        let written = self
            .shared
            .backend
            .commit(mutations, self.shared.durability);
        let write_time = write_started.elapsed();
        match written {
            Ok(()) => {
                self.disk_reserve.wrote(n_bytes as u64);
                let catalog = Arc::new(catalog);
                let previous =
                    std::mem::replace(&mut *self.shared.catalog.write(), Arc::clone(&catalog));
                let mut n_item_changes = 0;
                for (cid, high_lsn) in &touched {
                    let before_lsn = previous.containers.get(cid).map_or(0, |c| c.high_lsn());
                    assert!(
                        *high_lsn >= before_lsn,
                        "container {cid}'s published LSN moved back from {before_lsn} to {high_lsn}"
                    );
                    n_item_changes += high_lsn - before_lsn;
                }
                self.shared
                    .commit_stats
                    .committed(write_time, n_item_changes);
                let watches = self.shared.watches.lock();
                for (cid, high_lsn) in touched {
                    if let Some(sender) = watches.get(&cid) {
                        // A split touches its container without a new LSN: the ranges
                        // version is what wakes the readers of the split range.
                        let ranges_version = catalog.containers.get(&cid).map_or_else(
                            || sender.borrow().ranges_version,
                            |c| c.feed.ranges_version,
                        );
                        sender.send_replace(FeedWatermark {
                            high_lsn,
                            ranges_version,
                        });
                    }
                }
                drop(watches);
                if auto_split.is_some() {
                    self.split_oversized_ranges();
                }
                None
            }
            Err(error) => {
                // The engine may have written part of the batch: its outcome is unknown, so
                // a full disk here is as fatal as a failed fsync. The reserve exists so that
                // this does not happen.
                let reason = if caused_by_full_disk(&error) {
                    self.disk_reserve.ran_out_of_space(&error)
                } else {
                    error.to_string()
                };
                tracing::error!(%reason, "commit failed; the store stops accepting writes");
                *self.shared.poisoned.lock() = Some(reason.clone());
                Some(reason)
            }
        }
    }

    fn apply(&self, txn: &mut Txn<'_>, request: Request) -> Pending {
        match request {
            Request::Write {
                database,
                container,
                cid,
                op,
                reply,
            } => {
                // No savepoint: `apply_op` stages nothing before its last check passed.
                Pending::Write(reply, apply_op(txn, &database, &container, cid, op))
            }
            Request::Bulk {
                database,
                container,
                cid,
                ops,
                reply,
            } => {
                // In request order; a failed operation stages nothing (as for `Write`), so
                // the others are unaffected.
                let results = ops
                    .into_iter()
                    .map(|op| op.and_then(|op| apply_op(txn, &database, &container, cid, op)))
                    .collect();
                Pending::Bulk(reply, results)
            }
            Request::Transaction { ops, reply } => {
                let savepoint = txn.savepoint();
                let n_ops = ops.len();
                let mut results = Vec::with_capacity(n_ops);
                let mut failed = false;
                for TransactionOp {
                    database,
                    container,
                    cid,
                    op,
                } in ops
                {
                    if failed {
                        results.push(OperationResult::NotApplied);
                        continue;
                    }
                    match apply_op(txn, &database, &container, cid, op) {
                        Ok(outcome) => results.push(OperationResult::Done(outcome)),
                        Err(error) => {
                            failed = true;
                            results.push(OperationResult::Failed(error));
                        }
                    }
                }
                if !failed {
                    txn.release(savepoint);
                } else {
                    txn.rollback(savepoint);
                    for result in &mut results {
                        if matches!(result, OperationResult::Done(_)) {
                            *result = OperationResult::NotApplied;
                        }
                    }
                }
                debug_assert_eq!(results.len(), n_ops);
                Pending::Transaction(
                    reply,
                    Ok(TransactionOutcome {
                        committed: !failed,
                        results,
                    }),
                )
            }
            Request::CreateDatabase {
                id,
                throughput,
                autoscale,
                reply,
            } => Pending::Database(reply, create_database(txn, id, throughput, autoscale)),
            Request::ReplaceDatabaseThroughput {
                id,
                throughput,
                autoscale,
                reply,
            } => Pending::Database(
                reply,
                replace_database_throughput(txn, &id, throughput, autoscale),
            ),
            Request::DeleteDatabase { id, reply } => {
                Pending::Unit(reply, delete_database(txn, &id))
            }
            Request::CreateContainer {
                database,
                definition,
                initial_ranges,
                reply,
            } => Pending::Container(
                reply,
                create_container(txn, &database, definition, initial_ranges),
            ),
            Request::ReplaceContainer {
                database,
                definition,
                reply,
            } => {
                let savepoint = txn.savepoint();
                let result = replace_container(txn, &database, definition);
                match result {
                    Ok(_) => txn.release(savepoint),
                    Err(_) => txn.rollback(savepoint),
                }
                Pending::Container(reply, result)
            }
            Request::DeleteContainer {
                database,
                id,
                reply,
            } => Pending::Unit(reply, delete_container(txn, &database, &id)),
            Request::SplitRange {
                database,
                container,
                range_id,
                reply,
            } => Pending::Ranges(reply, split_range(txn, &database, &container, range_id)),
            Request::PutUser {
                database,
                id,
                put,
                reply,
            } => Pending::User(reply, put_user(txn, &database, id, put)),
            Request::DeleteUser {
                database,
                id,
                reply,
            } => Pending::Unit(reply, delete_user(txn, &database, &id)),
            Request::PutPermission {
                database,
                user,
                definition,
                put,
                reply,
            } => Pending::Permission(
                reply,
                put_permission(txn, &database, &user, definition, put),
            ),
            Request::DeletePermission {
                database,
                user,
                id,
                reply,
            } => Pending::Unit(reply, delete_permission(txn, &database, &user, &id)),
            Request::PutScript {
                scope,
                definition,
                put,
                if_match,
                reply,
            } => Pending::Script(
                reply,
                put_script(txn, &scope, definition, put, if_match.as_deref()),
            ),
            Request::DeleteScript {
                scope,
                id,
                if_match,
                reply,
            } => Pending::Unit(reply, delete_script(txn, &scope, &id, if_match.as_deref())),
        }
    }
}

/// Answers `request` with `error()` without applying it.
fn reject(request: Request, error: impl Fn() -> StoreError) {
    fn fail<T>(reply: Reply<T>, error: StoreError) {
        // A caller that stopped waiting is not an error.
        let _ = reply.send(Err(error));
    }
    match request {
        Request::Write { reply, .. } => fail(reply, error()),
        Request::Bulk { reply, .. } => fail(reply, error()),
        Request::Transaction { reply, .. } => fail(reply, error()),
        Request::CreateDatabase { reply, .. }
        | Request::ReplaceDatabaseThroughput { reply, .. } => fail(reply, error()),
        Request::DeleteDatabase { reply, .. }
        | Request::DeleteContainer { reply, .. }
        | Request::DeleteUser { reply, .. }
        | Request::DeletePermission { reply, .. }
        | Request::DeleteScript { reply, .. } => fail(reply, error()),
        Request::PutScript { reply, .. } => fail(reply, error()),
        Request::PutUser { reply, .. } => fail(reply, error()),
        Request::PutPermission { reply, .. } => fail(reply, error()),
        Request::CreateContainer { reply, .. } | Request::ReplaceContainer { reply, .. } => {
            fail(reply, error())
        }
        Request::SplitRange { reply, .. } => fail(reply, error()),
    }
}
