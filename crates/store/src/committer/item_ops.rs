//! Item operations inside a commit group: the existence, ETag and patch-condition checks, and
//! the writes of a new version (or a deletion) with its feed, change-log, expiry and
//! time-index entries.

use std::sync::Arc;

use tributary_partition_key::PartitionKey;

use super::index_ops::{NewVersion, index_change};
use super::prepare::{PreparedKind, PreparedOp};
use crate::catalog::{ContainerRecord, item_etag, item_rid, item_self_link};
use crate::document::{
    PreparedItem, SystemProperties, expiry_second, finish_body, prepare_item,
    strip_system_properties,
};
use crate::error::{Result, StoreError};
use crate::item::{Item, Precondition, WriteOutcome, WriteStatus};
use crate::records::{
    ChangeLogRecord, DocPointer, FeedRecord, FeedRecordView, OperationType, doc_key,
    encode_ttl_value, log_key, parse_doc_key, time_key, ttl_key,
};
use crate::storage::Space;
use crate::txn::Txn;

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
pub(super) struct Existing {
    pub(super) pointer: DocPointer,
    pub(super) record: FeedRecord,
}

pub(super) fn load_existing(txn: &Txn<'_>, cid: u32, key: &[u8]) -> Result<Option<Existing>> {
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
pub(super) fn apply_op(
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
    // An upsert's If-Match guards the replace it makes of an existing item; where there is
    // none it creates the item, as on Cosmos DB (the SDKs pass an etag to any write).
    let creates_by_upsert = matches!(op.kind, PreparedKind::Upsert(_)) && current.is_none();
    if !creates_by_upsert {
        check_precondition(op.precondition.as_ref(), current.as_ref())?;
    }
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
            // The committer computes the terms of a patched item itself.
            let item = prepare_item(&container.definition.partition_key, document, None, None)?;
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
    if let Some(renamed) = new_item.as_ref().filter(|item| item.id != op.id) {
        let default_ttl = container.definition.default_ttl;
        let item = rename(
            txn,
            cid,
            (&key, existing.as_ref()),
            &op.partition_key,
            renamed,
            default_ttl,
        )?;
        return Ok(WriteOutcome { status, item });
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

/// A replace whose body carries another id: the item at `old_key` is deleted and the new
/// version created under its new id, in this commit (two LSNs: the feed shows the new id, and
/// the all-versions log the delete of the old one and the create of the new). Refused with
/// `ItemExists` when an item already has the new id.
fn rename(
    txn: &mut Txn<'_>,
    cid: u32,
    (old_key, existing): (&[u8], Option<&Existing>),
    partition_key: &PartitionKey,
    renamed: &PreparedItem,
    default_ttl: Option<i64>,
) -> Result<Option<Item>> {
    let new_key = doc_key(cid, &renamed.epk, &renamed.id);
    let mut taken = load_existing(txn, cid, &new_key)?;
    if let Some(live) = &taken {
        let expiry = expiry_second(default_ttl, live.record.ttl, live.record.ts);
        if expiry.is_none_or(|at| at > txn.now_s) {
            return Err(StoreError::ItemExists(renamed.id.clone()));
        }
    }
    if let Some(expired) = taken.take() {
        write_version(
            txn,
            cid,
            &new_key,
            partition_key,
            None,
            Some(&expired),
            OperationType::Delete,
            true,
        )?;
    }
    write_version(
        txn,
        cid,
        old_key,
        partition_key,
        None,
        existing,
        OperationType::Delete,
        false,
    )?;
    write_version(
        txn,
        cid,
        &new_key,
        partition_key,
        Some(renamed),
        None,
        OperationType::Create,
        false,
    )
}

/// Writes one new version of an item (or its deletion), with its feed, change-log, expiry and
/// time-index entries. Returns the new version.
#[expect(
    clippy::too_many_arguments,
    reason = "one call per kind of write; a struct would only rename these"
)]
pub(super) fn write_version(
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
    if let Some(count) = &mut range.item_count {
        // The item's pointer is added, replaced or removed below.
        *count =
            (*count + u64::from(new_item.is_some())).saturating_sub(u64::from(existing.is_some()));
    }
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
    let new_version = new_item.map(|item| NewVersion {
        item,
        segment,
        lsn,
        ts,
    });
    index_change(txn, cid, existing, new_version)?;
    let created_lsn = existing.map_or(lsn, |e| e.pointer.created_lsn);
    let new_version = match new_item {
        Some(item) => {
            let rid = item_rid(database_seq, cid, created_lsn);
            let self_link = item_self_link(database_seq, cid, &rid);
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
            let record = FeedRecordView {
                ts,
                ttl: item.ttl,
                epk: &epk,
                id: &id,
                created_lsn,
                body: &body,
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
            // The body moves into the outcome; it is not copied again.
            Some(Item {
                id: id.clone(),
                body,
                etag,
                lsn,
                ts,
            })
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
