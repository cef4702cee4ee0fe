//! Background maintenance, run by the committer when it is idle (and between groups once the
//! interval has passed): TTL expiry, all-versions retention trimming, and purging the data of
//! deleted containers. Each pass is bounded and committed as its own group.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tributary_partition_key::PartitionKey;

use super::Committer;
use super::item_ops::{load_existing, write_version};
use crate::catalog::ContainerRecord;
use crate::document::expiry_second;
use crate::error::{Result, StoreError};
use crate::feed::first_lsn_at_or_after;
use crate::records::{
    FeedRecord, OperationType, container_prefix, decode_ttl_value, encode_ttl_value, log_key,
    ttl_key, ttl_key_lsn,
};
use crate::storage::Space;
use crate::txn::Txn;

/// Most items one maintenance pass expires (TTL) per container, so writes never wait long.
const MAX_EXPIRIES_PER_PASS: usize = 512;
/// Most keys one maintenance pass deletes while purging a deleted container or trimming
/// the all-versions log.
const MAX_PURGE_KEYS_PER_PASS: usize = 4096;
/// Key of the catalog record listing containers whose data is still being purged.
pub(super) const PURGE_META_PREFIX: &[u8] = b"purge\0";

impl Committer {
    /// Background work, each step bounded and committed as its own group: TTL expiry,
    /// all-versions retention, and purging deleted containers.
    pub(super) fn maintain(&mut self) {
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
