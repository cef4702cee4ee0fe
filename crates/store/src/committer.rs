//! The single writer: it gathers concurrent requests into groups and commits each group as
//! one atomic, durable batch (group commit), assigning LSNs in commit order.
//!
//! Architecture invariant: only this thread writes to storage, so LSNs are assigned and
//! become visible strictly in order, and every read-modify-write (ETag checks, 409 on create)
//! sees the latest state.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use tokio::sync::{oneshot, watch};
use tributary_partition_key::PartitionKey;
use tributary_patch::PatchRequest;
use tributary_query::Query;

use crate::catalog::{
    Catalog, ContainerDefinition, ContainerProperties, ContainerRecord, DatabaseProperties,
    DatabaseRecord, FeedState, MAX_FEED_RANGES, RangeRecord, container_rid, database_rid,
    initial_boundaries, item_etag, item_rid, v2_split_point, validate_id,
};
use crate::clock::Clock;
use crate::document::{
    PreparedItem, SystemProperties, expiry_second, finish_body, prepare_item,
    strip_system_properties,
};
use crate::error::{Result, StoreError};
use crate::item::{
    Item, OperationResult, Precondition, TransactionOutcome, WriteOutcome, WriteStatus,
};
use crate::records::{
    COUNTERS_META_KEY, ChangeLogRecord, DocPointer, FeedRecord, OperationType, container_meta_key,
    container_prefix, database_meta_key, decode_ttl_value, doc_key, doc_key_epk_bound,
    encode_ttl_value, log_key, log_key_lsn, log_key_segment, parse_doc_key, time_key, ttl_key,
    ttl_key_lsn,
};
use crate::storage::{Backend, Durability, Space, scan};
use crate::txn::Txn;

/// Most requests in one commit group.
const MAX_GROUP_REQUESTS: usize = 1024;
/// Most items one maintenance pass expires (TTL) per container, so writes never wait long.
const MAX_EXPIRIES_PER_PASS: usize = 512;
/// Most keys one maintenance pass deletes while purging a deleted container or trimming
/// the all-versions log.
const MAX_PURGE_KEYS_PER_PASS: usize = 4096;
/// Key of the catalog record listing containers whose data is still being purged.
const PURGE_META_PREFIX: &[u8] = b"purge\0";

type Reply<T> = oneshot::Sender<Result<T>>;

/// A validated item operation, ready to apply.
#[derive(Debug)]
pub(crate) struct PreparedOp {
    pub kind: PreparedKind,
    pub id: String,
    pub epk: String,
    pub partition_key: PartitionKey,
    pub precondition: Option<Precondition>,
}

/// The operation-specific part of a [`PreparedOp`].
#[derive(Debug)]
pub(crate) enum PreparedKind {
    Create(PreparedItem),
    Upsert(PreparedItem),
    Replace(PreparedItem),
    Delete,
    Patch(PatchRequest, Option<Box<Query>>),
    Read,
}

impl PreparedOp {
    /// Bytes of the item body the operation was given (0 without one).
    pub(crate) fn body_bytes(&self) -> usize {
        match &self.kind {
            PreparedKind::Create(item)
            | PreparedKind::Upsert(item)
            | PreparedKind::Replace(item) => item.user_json.len(),
            PreparedKind::Delete | PreparedKind::Patch(..) | PreparedKind::Read => 0,
        }
    }
}

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
        reply: Reply<DatabaseProperties>,
    },
    ReplaceDatabaseThroughput {
        id: String,
        throughput: u64,
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

/// State shared by the committer and readers.
pub(crate) struct Shared {
    pub backend: Box<dyn Backend>,
    /// The latest committed catalog.
    pub catalog: RwLock<Arc<Catalog>>,
    /// Set after a failed commit: the store accepts no more writes.
    pub poisoned: Mutex<Option<String>>,
    /// Per container: its feed's watermark, for waiting readers.
    pub watches: Mutex<HashMap<u32, watch::Sender<FeedWatermark>>>,
    pub durability: Durability,
    pub split_threshold_bytes: Option<u64>,
    pub maintenance_interval: Duration,
    pub clock: Arc<dyn Clock>,
}

/// What a waiting feed reader watches in one container: the highest committed LSN, and the
/// version of its feed ranges (a split changes the ranges without writing a change, and must
/// wake readers of the split range too). Both only grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FeedWatermark {
    /// The container's highest committed LSN.
    pub high_lsn: u64,
    /// The container's feed-ranges version (one more per split).
    pub ranges_version: u64,
}

impl FeedWatermark {
    /// The watermark of a container as committed.
    pub(crate) fn of(container: &ContainerRecord) -> Self {
        FeedWatermark {
            high_lsn: container.high_lsn(),
            ranges_version: container.feed.ranges_version,
        }
    }

    /// Whether this watermark is past `seen`: a change was committed or the ranges changed.
    pub(crate) fn is_past(&self, seen: &FeedWatermark) -> bool {
        self.high_lsn > seen.high_lsn || self.ranges_version > seen.ranges_version
    }
}

impl Shared {
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().clone()
    }

    /// Watches a container's [`FeedWatermark`]. Every commit published after this call
    /// (a write or a split) is sent to the receiver; a new channel starts from the published
    /// catalog (commits publish the catalog before they take the watches lock, so none falls
    /// between the two).
    pub(crate) fn subscribe(&self, cid: u32) -> watch::Receiver<FeedWatermark> {
        let mut watches = self.watches.lock();
        watches
            .entry(cid)
            .or_insert_with(|| {
                let watermark = self.catalog().containers.get(&cid).map_or(
                    FeedWatermark {
                        high_lsn: 0,
                        ranges_version: 0,
                    },
                    |container| FeedWatermark::of(container),
                );
                watch::channel(watermark).0
            })
            .subscribe()
    }

    pub(crate) fn now_s(&self) -> u64 {
        self.clock.now_ms() / 1000
    }

    /// Validates and prepares an item operation against the container's partition key.
    pub(crate) fn prepare(
        &self,
        container: &ContainerRecord,
        write: crate::item::ItemWrite,
    ) -> Result<PreparedOp> {
        use crate::item::WriteKind;
        let definition = &container.definition.partition_key;
        let with_body = |body: Option<Value>, id: Option<String>, key: Option<PartitionKey>| {
            let body = body.ok_or_else(|| {
                StoreError::BadRequest("this operation needs an item body".into())
            })?;
            let item = prepare_item(definition, body, key.as_ref())?;
            if let Some(id) = id
                && id != item.id
            {
                return Err(StoreError::BadRequest(format!(
                    "the id in the request ('{id}') differs from the item's id ('{}')",
                    item.id
                )));
            }
            Ok(item)
        };
        let keyed = |id: Option<String>,
                     key: Option<PartitionKey>|
         -> Result<(String, PartitionKey, String)> {
            let id =
                id.ok_or_else(|| StoreError::BadRequest("this operation needs an item id".into()))?;
            validate_id("item", &id)?;
            let key = key.ok_or_else(|| {
                StoreError::BadRequest("this operation needs the item's partition key".into())
            })?;
            let epk = key.effective_partition_key(definition)?;
            Ok((id, key, epk.as_str().to_owned()))
        };
        let precondition = write.precondition;
        let (kind, id, partition_key, epk) = match write.kind {
            WriteKind::Create | WriteKind::Upsert | WriteKind::Replace => {
                let item = with_body(write.body, write.id, write.partition_key)?;
                let (id, key, epk) = (
                    item.id.clone(),
                    item.partition_key.clone(),
                    item.epk.clone(),
                );
                let kind = match write.kind {
                    WriteKind::Create => PreparedKind::Create(item),
                    WriteKind::Upsert => PreparedKind::Upsert(item),
                    _ => PreparedKind::Replace(item),
                };
                (kind, id, key, epk)
            }
            WriteKind::Delete => {
                let (id, key, epk) = keyed(write.id, write.partition_key)?;
                (PreparedKind::Delete, id, key, epk)
            }
            WriteKind::Read => {
                let (id, key, epk) = keyed(write.id, write.partition_key)?;
                (PreparedKind::Read, id, key, epk)
            }
            WriteKind::Patch(patch) => {
                let (id, key, epk) = keyed(write.id, write.partition_key)?;
                let condition = match &patch.condition {
                    Some(text) => Some(Box::new(Query::parse_condition(text).map_err(|e| {
                        StoreError::BadRequest(format!("invalid patch condition: {e}"))
                    })?)),
                    None => None,
                };
                (PreparedKind::Patch(patch, condition), id, key, epk)
            }
        };
        if key_is_prefix(&partition_key, container) {
            return Err(StoreError::BadRequest(
                "an item operation needs the full hierarchical partition key, not a prefix".into(),
            ));
        }
        Ok(PreparedOp {
            kind,
            id,
            epk,
            partition_key,
            precondition,
        })
    }
}

fn key_is_prefix(key: &PartitionKey, container: &ContainerRecord) -> bool {
    key.0.len() < container.definition.partition_key.paths.len() && !key.0.is_empty()
}

/// Runs the committer until every sender is dropped.
pub(crate) fn run(shared: Arc<Shared>, requests: Receiver<Request>) {
    let mut committer = Committer {
        shared,
        last_maintenance: Instant::now(),
    };
    let mut pending: Option<Request> = None;
    loop {
        let first = match pending.take() {
            Some(request) => request,
            None => match requests.recv_timeout(committer.shared.maintenance_interval) {
                Ok(request) => request,
                Err(RecvTimeoutError::Timeout) => {
                    committer.maintain();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            },
        };
        let mut group = vec![first];
        if !group[0].is_exclusive() {
            while group.len() < MAX_GROUP_REQUESTS {
                match requests.try_recv() {
                    Ok(request) if request.is_exclusive() => {
                        pending = Some(request);
                        break;
                    }
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
        }
        committer.process(group);
        if committer.last_maintenance.elapsed() >= committer.shared.maintenance_interval {
            committer.maintain();
        }
    }
}

struct Committer {
    shared: Arc<Shared>,
    last_maintenance: Instant,
}

/// A reply waiting for its group to commit.
#[expect(
    clippy::large_enum_variant,
    reason = "one short-lived value per request in a group; boxing would add an allocation per write"
)]
enum Pending {
    Write(Reply<WriteOutcome>, Result<WriteOutcome>),
    Bulk(Reply<Vec<Result<WriteOutcome>>>, Vec<Result<WriteOutcome>>),
    Transaction(Reply<TransactionOutcome>, Result<TransactionOutcome>),
    Database(Reply<DatabaseProperties>, Result<DatabaseProperties>),
    Container(Reply<ContainerProperties>, Result<ContainerProperties>),
    Unit(Reply<()>, Result<()>),
    Ranges(Reply<Vec<RangeRecord>>, Result<Vec<RangeRecord>>),
}

impl Pending {
    fn send(self, commit_error: Option<&str>) {
        fn deliver<T>(reply: Reply<T>, result: Result<T>, commit_error: Option<&str>) {
            let result = match (result, commit_error) {
                (Ok(_), Some(error)) => Err(StoreError::Poisoned(error.to_owned())),
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
                        (Ok(_), Some(error)) => Err(StoreError::Poisoned(error.to_owned())),
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
        }
    }
}

impl Committer {
    fn process(&self, group: Vec<Request>) {
        if let Some(reason) = self.shared.poisoned.lock().clone() {
            for request in group {
                reject(request, &reason);
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
    fn commit(&self, txn: Txn<'_>) -> Option<String> {
        if txn.is_empty() {
            return None;
        }
        let (mutations, catalog, touched) = txn.finish();
        let auto_split = self.shared.split_threshold_bytes;
        match self
            .shared
            .backend
            .commit(mutations, self.shared.durability)
        {
            Ok(()) => {
                let catalog = Arc::new(catalog);
                *self.shared.catalog.write() = Arc::clone(&catalog);
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
                let reason = error.to_string();
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
                reply,
            } => Pending::Database(reply, create_database(txn, id, throughput)),
            Request::ReplaceDatabaseThroughput {
                id,
                throughput,
                reply,
            } => Pending::Database(reply, replace_database_throughput(txn, &id, throughput)),
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
        }
    }

    /// Background work, each step bounded and committed as its own group: TTL expiry,
    /// all-versions retention, and purging deleted containers.
    fn maintain(&mut self) {
        self.last_maintenance = Instant::now();
        if self.shared.poisoned.lock().is_some() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let catalog = (*shared.catalog()).clone();
        let now_s = shared.now_s();
        let mut txn = Txn::new(shared.backend.as_ref(), catalog, now_s);
        let step: Result<()> = (|| {
            let cids: Vec<u32> = txn.catalog.containers.keys().copied().collect();
            for cid in cids {
                expire_items(&mut txn, cid)?;
                trim_all_versions(&mut txn, cid)?;
            }
            purge_deleted_containers(&mut txn)?;
            Ok(())
        })();
        match step {
            Ok(()) => {
                if let Some(reason) = self.commit(txn) {
                    tracing::error!(%reason, "maintenance commit failed");
                }
            }
            Err(error) => tracing::error!(%error, "maintenance failed; will retry"),
        }
    }

    fn split_oversized_ranges(&self) {
        let Some(threshold) = self.shared.split_threshold_bytes else {
            return;
        };
        let catalog = self.shared.catalog();
        let oversized: Vec<(String, String, u32)> = catalog
            .containers
            .values()
            .flat_map(|c| {
                let n_current = c.feed.ranges.iter().filter(|r| r.is_current()).count();
                c.feed
                    .ranges
                    .iter()
                    .filter(move |r| {
                        r.is_current() && r.approx_bytes > threshold && n_current < MAX_FEED_RANGES
                    })
                    .map(|r| (c.database.clone(), c.definition.id.clone(), r.id))
            })
            .collect();
        for (database, container, range_id) in oversized {
            let shared = Arc::clone(&self.shared);
            let catalog = (*shared.catalog()).clone();
            let mut txn = Txn::new(shared.backend.as_ref(), catalog, shared.now_s());
            match split_range(&mut txn, &database, &container, range_id) {
                Ok(children) => {
                    tracing::info!(%database, %container, range_id, ?children, "split an oversized feed range");
                    if self.commit(txn).is_some() {
                        return;
                    }
                }
                Err(error) => tracing::warn!(%error, "could not split an oversized feed range"),
            }
        }
    }
}

fn reject(request: Request, reason: &str) {
    fn fail<T>(reply: Reply<T>, reason: &str) {
        // A caller that stopped waiting is not an error.
        let _ = reply.send(Err(StoreError::Poisoned(reason.to_owned())));
    }
    match request {
        Request::Write { reply, .. } => fail(reply, reason),
        Request::Bulk { reply, .. } => fail(reply, reason),
        Request::Transaction { reply, .. } => fail(reply, reason),
        Request::CreateDatabase { reply, .. }
        | Request::ReplaceDatabaseThroughput { reply, .. } => fail(reply, reason),
        Request::DeleteDatabase { reply, .. } | Request::DeleteContainer { reply, .. } => {
            fail(reply, reason)
        }
        Request::CreateContainer { reply, .. } | Request::ReplaceContainer { reply, .. } => {
            fail(reply, reason)
        }
        Request::SplitRange { reply, .. } => fail(reply, reason),
    }
}

fn checked_container<'t>(
    txn: &'t Txn<'_>,
    database: &str,
    container: &str,
    cid: u32,
) -> Result<&'t Arc<ContainerRecord>> {
    match txn.catalog.containers.get(&cid) {
        Some(record) => Ok(record),
        None => Err(StoreError::ContainerNotFound {
            database: database.to_owned(),
            container: container.to_owned(),
        }),
    }
}

/// The live version of an item: its pointer and record, unless absent or expired.
struct Existing {
    pointer: DocPointer,
    record: FeedRecord,
}

fn load_existing(txn: &Txn<'_>, cid: u32, key: &[u8]) -> Result<Option<Existing>> {
    let Some(pointer) = txn.get(Space::Docs, key)? else {
        return Ok(None);
    };
    let pointer = DocPointer::decode(&pointer)?;
    let record = txn
        .get(Space::Feed, &log_key(cid, pointer.segment, pointer.lsn))?
        .ok_or_else(|| StoreError::Corrupt("an item pointer names a missing feed entry".into()))?;
    Ok(Some(Existing {
        pointer,
        record: FeedRecord::decode(&record)?,
    }))
}

fn check_precondition(precondition: Option<&Precondition>, existing: Option<&Item>) -> Result<()> {
    match (precondition, existing) {
        (None, _) => Ok(()),
        (Some(Precondition::IfMatch(etag)), Some(item)) if etag == "*" || *etag == item.etag => {
            Ok(())
        }
        (Some(Precondition::IfMatch(etag)), Some(item)) => Err(StoreError::PreconditionFailed(
            format!("the item's etag is {}, not {etag}", item.etag),
        )),
        (Some(Precondition::IfMatch(_)), None) => Err(StoreError::PreconditionFailed(
            "If-Match was given but the item does not exist".into(),
        )),
        (Some(Precondition::IfNoneMatch(etag)), Some(item))
            if etag == "*" || *etag == item.etag =>
        {
            Err(StoreError::PreconditionFailed(format!(
                "If-None-Match {etag} matched the item's etag {}",
                item.etag
            )))
        }
        (Some(Precondition::IfNoneMatch(_)), _) => Ok(()),
    }
}

fn item_of(cid: u32, record: &FeedRecord, lsn: u64) -> Item {
    Item {
        id: record.id.clone(),
        body: record.body.clone(),
        etag: item_etag(cid, lsn),
        lsn,
        ts: record.ts,
    }
}

/// Applies one item operation to the group.
///
/// Every check that can fail runs before the operation stages anything, so a failed
/// operation leaves nothing behind.
fn apply_op(
    txn: &mut Txn<'_>,
    database: &str,
    container_name: &str,
    cid: u32,
    op: PreparedOp,
) -> Result<WriteOutcome> {
    let container = Arc::clone(checked_container(txn, database, container_name, cid)?);
    let key = doc_key(cid, &op.epk, &op.id);
    let mut existing = load_existing(txn, cid, &key)?;
    // An item that has expired but that the sweeper has not reached yet counts as absent;
    // its expiry is logged just before this operation's own write, once every check passed.
    let mut expired = None;
    if let Some(live) = &existing {
        let expiry = expiry_second(
            container.definition.default_ttl,
            live.record.ttl,
            live.record.ts,
        );
        if expiry.is_some_and(|at| at <= txn.now_s) {
            expired = existing.take();
        }
    }
    let current = existing
        .as_ref()
        .map(|e| item_of(cid, &e.record, e.pointer.lsn));
    let not_found = || StoreError::ItemNotFound(op.id.clone());
    match &op.kind {
        PreparedKind::Replace(_)
        | PreparedKind::Delete
        | PreparedKind::Patch(..)
        | PreparedKind::Read
            if current.is_none() =>
        {
            return Err(not_found());
        }
        PreparedKind::Create(_) if current.is_some() => {
            return Err(StoreError::ItemExists(op.id.clone()));
        }
        _ => {}
    }
    check_precondition(op.precondition.as_ref(), current.as_ref())?;
    let (operation, status, new_item) = match op.kind {
        PreparedKind::Read => {
            return Ok(WriteOutcome {
                status: WriteStatus::Read,
                item: current,
            });
        }
        PreparedKind::Create(item) => (OperationType::Create, WriteStatus::Created, Some(item)),
        PreparedKind::Upsert(item) if current.is_none() => {
            (OperationType::Create, WriteStatus::Created, Some(item))
        }
        PreparedKind::Upsert(item) | PreparedKind::Replace(item) => {
            (OperationType::Replace, WriteStatus::Replaced, Some(item))
        }
        PreparedKind::Delete => (OperationType::Delete, WriteStatus::Deleted, None),
        PreparedKind::Patch(patch, condition) => {
            let live = existing.as_ref().expect("checked above");
            let mut document = strip_system_properties(&live.record.body)?;
            if let Some(condition) = condition {
                let holds = tributary_query::matches(
                    &condition,
                    &tributary_query::Parameters::new(),
                    &document,
                )
                .map_err(|e| StoreError::BadRequest(format!("patch condition: {e}")))?;
                if !holds {
                    return Err(StoreError::PreconditionFailed(
                        "the patch condition does not hold for the item".into(),
                    ));
                }
            }
            tributary_patch::apply(&mut document, &patch.operations)
                .map_err(|e| StoreError::BadRequest(e.to_string()))?;
            let item = prepare_item(&container.definition.partition_key, document, None)?;
            if item.partition_key != op.partition_key || item.id != op.id {
                return Err(StoreError::BadRequest(
                    "a patch must not change the item's id or partition key".into(),
                ));
            }
            (OperationType::Replace, WriteStatus::Replaced, Some(item))
        }
    };
    if let Some(expired) = expired {
        write_version(
            txn,
            cid,
            &key,
            &op.partition_key,
            None,
            Some(&expired),
            OperationType::Delete,
            true,
        )?;
    }
    let item = write_version(
        txn,
        cid,
        &key,
        &op.partition_key,
        new_item.as_ref(),
        existing.as_ref(),
        operation,
        false,
    )?;
    Ok(WriteOutcome { status, item })
}

/// Writes one new version of an item (or its deletion), with its feed, change-log, expiry and
/// time-index entries. Returns the new version.
#[expect(
    clippy::too_many_arguments,
    reason = "one call per kind of write; a struct would only rename these"
)]
fn write_version(
    txn: &mut Txn<'_>,
    cid: u32,
    key: &[u8],
    partition_key: &PartitionKey,
    new_item: Option<&PreparedItem>,
    existing: Option<&Existing>,
    operation: OperationType,
    ttl_expired: bool,
) -> Result<Option<Item>> {
    let now_s = txn.now_s;
    let (epk, id) = {
        let (epk, id) = parse_doc_key(key)?;
        (epk.to_owned(), id.to_owned())
    };
    let container = txn.container_mut(cid);
    let database_seq = container.database_seq;
    let default_ttl = container.definition.default_ttl;
    let keeps_all_versions = container.definition.keeps_all_versions();
    let lsn = container.feed.next_lsn;
    assert!(lsn > container.high_lsn(), "LSNs strictly increase");
    container.feed.next_lsn += 1;
    let previous_ts = container.feed.last_ts;
    let ts = now_s.max(previous_ts);
    container.feed.last_ts = ts;
    if keeps_all_versions && container.feed.avad_since_lsn == 0 {
        container.feed.avad_since_lsn = lsn;
    }
    let range = container.range_for_epk_mut(&epk);
    let segment = range.id;
    let old_bytes = existing.map_or(0, |e| e.record.body.len() as u64);
    let new_bytes = new_item.map_or(0, |i| i.user_json.len() as u64);
    range.approx_bytes = (range.approx_bytes + new_bytes).saturating_sub(old_bytes);
    if ts > previous_ts {
        txn.put(Space::Time, time_key(cid, ts), lsn.to_be_bytes().to_vec());
    }
    txn.touched.push((cid, lsn));

    if let Some(old) = existing {
        txn.delete(
            Space::Feed,
            log_key(cid, old.pointer.segment, old.pointer.lsn),
        );
    }
    let created_lsn = existing.map_or(lsn, |e| e.pointer.created_lsn);
    let new_version = match new_item {
        Some(item) => {
            let rid = item_rid(database_seq, cid, created_lsn);
            let self_link = format!(
                "dbs/{}/colls/{}/docs/{}/",
                database_rid(database_seq),
                container_rid(database_seq, cid),
                rid
            );
            let etag = item_etag(cid, lsn);
            let body = finish_body(
                &item.user_json,
                &SystemProperties {
                    rid: &rid,
                    self_link: &self_link,
                    etag: &etag,
                    ts,
                    lsn,
                },
            );
            let record = FeedRecord {
                ts,
                ttl: item.ttl,
                epk: epk.clone(),
                id: id.clone(),
                created_lsn,
                body,
            };
            txn.put(Space::Feed, log_key(cid, segment, lsn), record.encode());
            txn.put(
                Space::Docs,
                key.to_vec(),
                DocPointer {
                    segment,
                    lsn,
                    created_lsn,
                }
                .encode(),
            );
            if let Some(expiry) = expiry_second(default_ttl, item.ttl, ts) {
                txn.put(
                    Space::Ttl,
                    ttl_key(cid, expiry, lsn),
                    encode_ttl_value(segment, key),
                );
            }
            Some(item_of(cid, &record, lsn))
        }
        None => {
            txn.delete(Space::Docs, key.to_vec());
            None
        }
    };
    if keeps_all_versions {
        let record = ChangeLogRecord {
            operation,
            crts: ts,
            ttl_expired,
            previous: existing.map(|e| (e.pointer.segment, e.pointer.lsn)),
            id,
            epk,
            partition_key: partition_key.to_json().to_string(),
            current: new_version
                .as_ref()
                .map(|v| v.body.clone())
                .unwrap_or_default(),
        };
        txn.put(Space::Avad, log_key(cid, segment, lsn), record.encode());
    }
    Ok(new_version)
}

fn create_database(
    txn: &mut Txn<'_>,
    id: String,
    throughput: Option<u64>,
) -> Result<DatabaseProperties> {
    validate_id("database", &id)?;
    if txn.catalog.databases.contains_key(&id) {
        return Err(StoreError::DatabaseExists(id));
    }
    txn.catalog.counters.next_database_seq += 1;
    let record = DatabaseRecord {
        id: id.clone(),
        seq: txn.catalog.counters.next_database_seq,
        ts: txn.now_s,
        throughput,
    };
    put_counters(txn);
    txn.put(
        Space::Meta,
        database_meta_key(&id),
        serde_json::to_vec(&record).expect("catalog records serialize"),
    );
    let properties = record.properties();
    txn.catalog.databases.insert(id, record);
    Ok(properties)
}

fn replace_database_throughput(
    txn: &mut Txn<'_>,
    id: &str,
    throughput: u64,
) -> Result<DatabaseProperties> {
    let record = txn
        .catalog
        .databases
        .get_mut(id)
        .ok_or_else(|| StoreError::DatabaseNotFound(id.to_owned()))?;
    if record.throughput.is_none() {
        return Err(StoreError::BadRequest(format!(
            "database '{id}' has no shared throughput to replace"
        )));
    }
    record.throughput = Some(throughput);
    let bytes = serde_json::to_vec(&*record).expect("catalog records serialize");
    let properties = record.properties();
    txn.put(Space::Meta, database_meta_key(id), bytes);
    Ok(properties)
}

fn put_counters(txn: &mut Txn<'_>) {
    let counters = serde_json::to_vec(&txn.catalog.counters).expect("counters serialize");
    txn.put(Space::Meta, COUNTERS_META_KEY.to_vec(), counters);
}

fn delete_database(txn: &mut Txn<'_>, id: &str) -> Result<()> {
    txn.catalog.database(id)?;
    let containers: Vec<String> = txn
        .catalog
        .container_ids
        .keys()
        .filter(|(database, _)| database == id)
        .map(|(_, container)| container.clone())
        .collect();
    for container in containers {
        delete_container(txn, id, &container)?;
    }
    txn.catalog.databases.remove(id);
    txn.delete(Space::Meta, database_meta_key(id));
    Ok(())
}

fn create_container(
    txn: &mut Txn<'_>,
    database: &str,
    definition: ContainerDefinition,
    initial_ranges: u32,
) -> Result<ContainerProperties> {
    definition.validate()?;
    let database_seq = txn.catalog.database(database)?.seq;
    let name = (database.to_owned(), definition.id.clone());
    if txn.catalog.container_ids.contains_key(&name) {
        return Err(StoreError::ContainerExists(definition.id));
    }
    let n_ranges = initial_ranges.clamp(1, MAX_FEED_RANGES as u32);
    let mut bounds = vec![String::new()];
    bounds.extend(initial_boundaries(&definition.partition_key, n_ranges));
    bounds.push("FF".to_owned());
    let ranges = bounds
        .windows(2)
        .enumerate()
        .map(|(i, pair)| RangeRecord {
            id: i as u32,
            min: pair[0].clone(),
            max: pair[1].clone(),
            parents: Vec::new(),
            ancestors: Vec::new(),
            first_lsn: 1,
            children: Vec::new(),
            approx_bytes: 0,
        })
        .collect::<Vec<_>>();
    txn.catalog.counters.next_cid += 1;
    let cid = txn.catalog.counters.next_cid;
    put_counters(txn);
    let record = ContainerRecord {
        database: database.to_owned(),
        cid,
        database_seq,
        ts: txn.now_s,
        version: 1,
        feed: FeedState {
            next_lsn: 1,
            next_range_id: ranges.len() as u32,
            ranges,
            ranges_version: 1,
            last_ts: 0,
            avad_trimmed_below: 0,
            avad_since_lsn: 0,
        },
        definition,
    };
    let properties = record.properties();
    txn.catalog.containers.insert(cid, Arc::new(record));
    txn.catalog.container_ids.insert(name, cid);
    txn.container_mut(cid);
    Ok(properties)
}

fn replace_container(
    txn: &mut Txn<'_>,
    database: &str,
    definition: ContainerDefinition,
) -> Result<ContainerProperties> {
    definition.validate()?;
    let cid = txn.catalog.container(database, &definition.id)?.cid;
    let now_s = txn.now_s;
    let container = txn.container_mut(cid);
    if container.definition.partition_key != definition.partition_key {
        return Err(StoreError::BadRequest(
            "a container's partition key cannot be changed".into(),
        ));
    }
    let ttl_changed = container.definition.default_ttl != definition.default_ttl;
    container.definition = definition;
    container.version += 1;
    container.ts = now_s;
    let default_ttl = container.definition.default_ttl;
    if ttl_changed {
        rebuild_expiry_index(txn, cid, default_ttl)?;
    }
    Ok(txn.catalog.containers[&cid].properties())
}

/// Recomputes every expiry entry of a container after its `defaultTtl` changed.
fn rebuild_expiry_index(txn: &mut Txn<'_>, cid: u32, default_ttl: Option<i64>) -> Result<()> {
    let prefix = container_prefix(cid);
    let end = container_prefix(cid + 1);
    let stale: Vec<Vec<u8>> = txn
        .backend_scan(Space::Ttl, &prefix, &end)
        .map(|entry| entry.map(|(key, _)| key.to_vec()))
        .collect::<Result<_>>()?;
    for key in stale {
        txn.delete(Space::Ttl, key);
    }
    let mut fresh = Vec::new();
    for entry in txn.backend_scan(Space::Feed, &prefix, &end) {
        let (key, value) = entry?;
        let record = FeedRecord::decode(&value)?;
        if let Some(expiry) = expiry_second(default_ttl, record.ttl, record.ts) {
            let lsn = log_key_lsn(&key)?;
            let segment = log_key_segment(&key)?;
            let item_key = doc_key(cid, &record.epk, &record.id);
            fresh.push((
                ttl_key(cid, expiry, lsn),
                encode_ttl_value(segment, &item_key),
            ));
        }
    }
    for (key, value) in fresh {
        txn.put(Space::Ttl, key, value);
    }
    Ok(())
}

fn delete_container(txn: &mut Txn<'_>, database: &str, id: &str) -> Result<()> {
    let cid = txn.catalog.container(database, id)?.cid;
    txn.catalog.containers.remove(&cid);
    txn.catalog
        .container_ids
        .remove(&(database.to_owned(), id.to_owned()));
    txn.delete(Space::Meta, container_meta_key(cid));
    let mut purge_key = PURGE_META_PREFIX.to_vec();
    purge_key.extend_from_slice(&cid.to_be_bytes());
    txn.put(Space::Meta, purge_key, Vec::new());
    Ok(())
}

/// Deletes the data of deleted containers, a bounded number of keys per pass.
fn purge_deleted_containers(txn: &mut Txn<'_>) -> Result<()> {
    let mut end = PURGE_META_PREFIX.to_vec();
    end.push(0xff);
    let pending: Vec<Vec<u8>> = txn
        .backend_scan(Space::Meta, PURGE_META_PREFIX, &end)
        .map(|entry| entry.map(|(key, _)| key.to_vec()))
        .collect::<Result<_>>()?;
    let mut budget = MAX_PURGE_KEYS_PER_PASS;
    for purge_key in pending {
        let cid_bytes: [u8; 4] = purge_key[PURGE_META_PREFIX.len()..]
            .try_into()
            .map_err(|_| StoreError::Corrupt("purge record key".into()))?;
        let cid = u32::from_be_bytes(cid_bytes);
        let mut done = true;
        for space in [
            Space::Docs,
            Space::Feed,
            Space::Avad,
            Space::Ttl,
            Space::Time,
        ] {
            let keys: Vec<Vec<u8>> = txn
                .backend_scan(space, &container_prefix(cid), &container_prefix(cid + 1))
                .take(budget + 1)
                .map(|entry| entry.map(|(key, _)| key.to_vec()))
                .collect::<Result<_>>()?;
            if keys.len() > budget {
                done = false;
            }
            for key in keys.into_iter().take(budget) {
                txn.delete(space, key);
                budget -= 1;
            }
            if budget == 0 {
                return Ok(());
            }
        }
        if done {
            txn.delete(Space::Meta, purge_key);
        }
    }
    Ok(())
}

/// Expires items whose time has come, at most [`MAX_EXPIRIES_PER_PASS`] per container.
fn expire_items(txn: &mut Txn<'_>, cid: u32) -> Result<()> {
    let Some(container) = txn.catalog.containers.get(&cid).cloned() else {
        return Ok(());
    };
    if container.definition.default_ttl.is_none() {
        return Ok(());
    }
    let start = container_prefix(cid);
    let end = ttl_key(cid, txn.now_s + 1, 0);
    let due: Vec<(Vec<u8>, Vec<u8>)> = txn
        .backend_scan(Space::Ttl, &start, &end)
        .take(MAX_EXPIRIES_PER_PASS)
        .map(|entry| entry.map(|(k, v)| (k.to_vec(), v.to_vec())))
        .collect::<Result<_>>()?;
    for (entry_key, value) in due {
        txn.delete(Space::Ttl, entry_key.clone());
        let entry_lsn = ttl_key_lsn(&entry_key)?;
        let (_, item_key) = decode_ttl_value(&value)?;
        let Some(live) = load_existing(txn, cid, &item_key)? else {
            continue;
        };
        if live.pointer.lsn != entry_lsn {
            // A newer version replaced the one this entry was for.
            continue;
        }
        match expiry_second(
            container.definition.default_ttl,
            live.record.ttl,
            live.record.ts,
        ) {
            Some(at) if at <= txn.now_s => {
                let partition_key = partition_key_of(&container, &live.record)?;
                write_version(
                    txn,
                    cid,
                    &item_key,
                    &partition_key,
                    None,
                    Some(&live),
                    OperationType::Delete,
                    true,
                )?;
            }
            Some(at) => {
                txn.put(
                    Space::Ttl,
                    ttl_key(cid, at, entry_lsn),
                    encode_ttl_value(live.pointer.segment, &item_key),
                );
            }
            None => {}
        }
    }
    Ok(())
}

fn partition_key_of(container: &ContainerRecord, record: &FeedRecord) -> Result<PartitionKey> {
    let body: Value = serde_json::from_str(&record.body)
        .map_err(|e| StoreError::Corrupt(format!("stored item is not JSON: {e}")))?;
    Ok(PartitionKey::extract(
        &container.definition.partition_key,
        &body,
    )?)
}

/// Removes all-versions records older than the container's retention, bounded per pass.
fn trim_all_versions(txn: &mut Txn<'_>, cid: u32) -> Result<()> {
    let Some(container) = txn.catalog.containers.get(&cid).cloned() else {
        return Ok(());
    };
    let Some(minutes) = container
        .definition
        .change_feed_retention_minutes
        .filter(|m| *m > 0)
    else {
        return Ok(());
    };
    let horizon_s = txn.now_s.saturating_sub(minutes * 60);
    // The first LSN committed at or after the horizon; everything below it is out.
    let keep_from =
        first_lsn_at_or_after(txn.backend(), cid, horizon_s)?.unwrap_or(container.feed.next_lsn);
    if keep_from <= container.feed.avad_trimmed_below {
        return Ok(());
    }
    let mut budget = MAX_PURGE_KEYS_PER_PASS;
    let mut complete = true;
    for range in &container.feed.ranges {
        let start = log_key(cid, range.id, 0);
        let end = log_key(cid, range.id, keep_from);
        let keys: Vec<Vec<u8>> = txn
            .backend_scan(Space::Avad, &start, &end)
            .take(budget + 1)
            .map(|entry| entry.map(|(key, _)| key.to_vec()))
            .collect::<Result<_>>()?;
        if keys.len() > budget {
            complete = false;
        }
        for key in keys.into_iter().take(budget) {
            txn.delete(Space::Avad, key);
            budget -= 1;
        }
        if budget == 0 {
            complete = false;
            break;
        }
    }
    if complete {
        txn.container_mut(cid).feed.avad_trimmed_below = keep_from;
    }
    Ok(())
}

/// The first LSN committed at or after second `at`, if any.
pub(crate) fn first_lsn_at_or_after(
    backend: &dyn Backend,
    cid: u32,
    at: u64,
) -> Result<Option<u64>> {
    let start = time_key(cid, at);
    let end = container_prefix(cid + 1);
    let first = scan(backend, Space::Time, &start, &end).next();
    match first {
        Some(entry) => {
            let (_, value) = entry?;
            let bytes: [u8; 8] = value
                .as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("time index value".into()))?;
            Ok(Some(u64::from_be_bytes(bytes)))
        }
        None => Ok(None),
    }
}

/// Splits a current range into two children at the median EPK of its items.
fn split_range(
    txn: &mut Txn<'_>,
    database: &str,
    container_name: &str,
    range_id: u32,
) -> Result<Vec<RangeRecord>> {
    let container = txn.catalog.container(database, container_name)?.clone();
    let cid = container.cid;
    let range = container
        .range(range_id)
        .ok_or_else(|| StoreError::RangeNotFound(range_id.to_string()))?
        .clone();
    if !range.is_current() {
        return Err(StoreError::RangeGone {
            range_id: range_id.to_string(),
            replaced_by: crate::feed::current_descendants(&container, range_id),
        });
    }
    if container
        .feed
        .ranges
        .iter()
        .filter(|r| r.is_current())
        .count()
        >= MAX_FEED_RANGES
    {
        return Err(StoreError::BadRequest(format!(
            "the container already has the maximum of {MAX_FEED_RANGES} feed ranges"
        )));
    }
    // V2 hashes are uniform, so the middle of the hash space halves the items, and it is
    // where Azure Cosmos DB splits; V1 EPKs are not uniform, so split at the median item.
    let hash_middle = match container.definition.partition_key.version {
        tributary_partition_key::PartitionKeyVersion::V2 => v2_split_point(&range),
        tributary_partition_key::PartitionKeyVersion::V1 => None,
    };
    let middle = match hash_middle {
        Some(middle) => Some(middle),
        None => median_epk(txn, cid, &range)?
            .filter(|epk| epk.as_str() > range.min.as_str() && epk.as_str() < range.max.as_str()),
    }
    .or_else(|| {
        tributary_partition_key::epk_midpoint(&range.epk_range()).map(|e| e.as_str().to_owned())
    })
    .ok_or_else(|| {
        StoreError::BadRequest(format!("feed range {range_id} is too narrow to split"))
    })?;
    let container = txn.container_mut(cid);
    let first_lsn = container.feed.next_lsn;
    let left_id = container.feed.next_range_id;
    let right_id = left_id + 1;
    container.feed.next_range_id += 2;
    container.feed.ranges_version += 1;
    let mut ancestors = range.ancestors.clone();
    ancestors.push(range.id);
    let child = |id: u32, min: String, max: String| RangeRecord {
        id,
        min,
        max,
        parents: vec![range.id],
        ancestors: ancestors.clone(),
        first_lsn,
        children: Vec::new(),
        approx_bytes: range.approx_bytes / 2,
    };
    let children = vec![
        child(left_id, range.min.clone(), middle.clone()),
        child(right_id, middle, range.max.clone()),
    ];
    let parent = container
        .feed
        .ranges
        .iter_mut()
        .find(|r| r.id == range_id)
        .expect("range exists");
    parent.children = vec![left_id, right_id];
    container.feed.ranges.extend(children.iter().cloned());
    let high_lsn = container.high_lsn();
    txn.touched.push((cid, high_lsn));
    Ok(children)
}

/// The EPK of the middle item of a range, by key order.
fn median_epk(txn: &Txn<'_>, cid: u32, range: &RangeRecord) -> Result<Option<String>> {
    let start = doc_key_epk_bound(cid, &range.min);
    let end = doc_key_epk_bound(cid, &range.max);
    let n_items = txn.backend_scan(Space::Docs, &start, &end).count();
    if n_items < 2 {
        return Ok(None);
    }
    match txn.backend_scan(Space::Docs, &start, &end).nth(n_items / 2) {
        Some(entry) => {
            let (key, _) = entry?;
            let (epk, _) = parse_doc_key(&key)?;
            Ok(Some(epk.to_owned()))
        }
        None => Ok(None),
    }
}
