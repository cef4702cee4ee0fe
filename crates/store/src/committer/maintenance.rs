//! Background maintenance, run by the committer when it is idle (and between groups once the
//! interval has passed): TTL expiry, all-versions retention trimming, thinning the time index,
//! and purging the data of deleted containers. Each pass is bounded and committed as its own group.

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tributary_partition_key::PartitionKey;

use super::item_ops::{load_existing, write_version};
use super::{Committer, index_ops};
use crate::catalog::ContainerRecord;
use crate::document::expiry_second;
use crate::error::{Result, StoreError};
use crate::feed::{TIME_INDEX_BUCKET_SECONDS, TIME_INDEX_FINE_SECONDS, first_lsn_at_or_after};
use crate::records::{
    FeedRecord, OperationType, container_prefix, decode_ttl_value, encode_ttl_value, log_key,
    time_key, time_key_second, ttl_key, ttl_key_lsn,
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
    /// Background work, each step bounded and committed as its own group: building range
    /// indexes, TTL expiry, all-versions retention, and purging deleted containers and
    /// replaced index generations. Skipped while the disk is below the free-space reserve:
    /// purges and expiries write too (a delete is a new record until compaction), and the
    /// next pass after space is freed catches up. Sets
    /// [`Committer::index_work_pending`] when an index build or deletion has more to do, so
    /// the next pass comes soon.
    pub(super) fn maintain(&mut self) {
        self.last_maintenance = Instant::now();
        self.index_work_pending = false;
        if self.shared.poisoned.lock().is_some() || self.disk_reserve.below_reserve().is_some() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let catalog = (*shared.catalog()).clone();
        let now_s = shared.now_s();
        let mut txn = Txn::new(shared.backend.as_ref(), catalog, now_s);
        let mut index_work_pending = false;
        let step: Result<()> = (|| {
            let cids: Vec<u32> = txn.catalog.containers.keys().copied().collect();
            for cid in cids {
                index_work_pending |= index_ops::build_step(&mut txn, cid)?;
                index_work_pending |= index_ops::delete_stale_generations(&mut txn, cid)?;
                expire_items(&mut txn, cid)?;
                trim_all_versions(&mut txn, cid)?;
                coarsen_time_index(&mut txn, cid)?;
            }
            purge_deleted_containers(&mut txn)?;
            Ok(())
        })();
        match step {
            Ok(()) => {
                if let Some(reason) = self.commit(txn) {
                    tracing::error!(%reason, "maintenance commit failed");
                } else {
                    self.index_work_pending = index_work_pending;
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
            Space::Index,
        ] {
            let (start, end) = (container_prefix(cid), container_prefix(cid + 1));
            done &= delete_keys_in(txn, space, &start, &end, &mut budget)?;
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

/// Deletes the committed keys of `space` in `[start, end)`, at most `budget` of them (which
/// it lowers by as many); whether none is left.
pub(super) fn delete_keys_in(
    txn: &mut Txn<'_>,
    space: Space,
    start: &[u8],
    end: &[u8],
    budget: &mut usize,
) -> Result<bool> {
    let keys: Vec<Vec<u8>> = txn
        .backend_scan(space, start, end)
        .take(*budget + 1)
        .map(|entry| entry.map(|(key, _)| key.to_vec()))
        .collect::<Result<_>>()?;
    let complete = keys.len() <= *budget;
    for key in keys.into_iter().take(*budget) {
        txn.delete(space, key);
        *budget -= 1;
    }
    Ok(complete)
}

/// Thins the time index of seconds older than [`TIME_INDEX_FINE_SECONDS`] to one entry per
/// [`TIME_INDEX_BUCKET_SECONDS`] (the first second with a write in each bucket), so the index
/// grows by at most one key per minute of writes instead of one per second. Whole buckets
/// only, at most [`MAX_PURGE_KEYS_PER_PASS`] keys read per pass; progress is kept in the
/// container's `time_index_coarse_before`.
fn coarsen_time_index(txn: &mut Txn<'_>, cid: u32) -> Result<()> {
    let Some(container) = txn.catalog.containers.get(&cid).cloned() else {
        return Ok(());
    };
    let target = txn.now_s.saturating_sub(TIME_INDEX_FINE_SECONDS) / TIME_INDEX_BUCKET_SECONDS
        * TIME_INDEX_BUCKET_SECONDS;
    let from = container.feed.time_index_coarse_before;
    if target <= from {
        return Ok(());
    }
    let mut entries: Vec<(u64, Vec<u8>)> = txn
        .backend_scan(Space::Time, &time_key(cid, from), &time_key(cid, target))
        .take(MAX_PURGE_KEYS_PER_PASS + 1)
        .map(|entry| {
            let (key, _) = entry?;
            Ok((time_key_second(&key)?, key.to_vec()))
        })
        .collect::<Result<_>>()?;
    let mut coarse_before = target;
    if entries.len() > MAX_PURGE_KEYS_PER_PASS {
        // The last bucket read may go on past what was read: leave it for the next pass.
        let last = entries.last().map_or(from, |(second, _)| *second);
        coarse_before = last / TIME_INDEX_BUCKET_SECONDS * TIME_INDEX_BUCKET_SECONDS;
        entries.retain(|(second, _)| *second < coarse_before);
    }
    let mut bucket_seen = None;
    for (second, key) in entries {
        let bucket = second / TIME_INDEX_BUCKET_SECONDS;
        if bucket_seen == Some(bucket) {
            txn.delete(Space::Time, key);
        } else {
            bucket_seen = Some(bucket);
        }
    }
    txn.container_mut(cid).feed.time_index_coarse_before = coarse_before;
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
    let keep_from = first_lsn_at_or_after(txn.backend(), &container, horizon_s, txn.now_s)?
        .unwrap_or(container.feed.next_lsn);
    if keep_from <= container.feed.avad_trimmed_below {
        return Ok(());
    }
    let mut budget = MAX_PURGE_KEYS_PER_PASS;
    let mut complete = true;
    for range in &container.feed.ranges {
        let start = log_key(cid, range.id, 0);
        let end = log_key(cid, range.id, keep_from);
        complete &= delete_keys_in(txn, Space::Avad, &start, &end, &mut budget)?;
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use serde_json::{Value, json};

    use crate::clock::{Clock, ManualClock};
    use crate::feed::{TIME_INDEX_BUCKET_SECONDS, TIME_INDEX_FINE_SECONDS};
    use crate::records::container_prefix;
    use crate::storage::{Space, scan};
    use crate::{
        ContainerDefinition, FeedMode, FeedRequest, FeedScope, FeedStart, ItemWrite, Store,
        StoreOptions,
    };

    /// A start second that is not on a bucket boundary.
    const T0: u64 = 1_700_000_000;
    const WRITES: u64 = 200;

    fn time_index_len(store: &Store, cid: u32) -> usize {
        scan(
            store.shared.backend.as_ref(),
            Space::Time,
            &container_prefix(cid),
            &container_prefix(cid + 1),
        )
        .count()
    }

    /// The `_ts` of every change a point-in-time read from `at` returns.
    fn timestamps_from(store: &Store, at: u64) -> Vec<u64> {
        let request = FeedRequest {
            scope: FeedScope::Container,
            start: FeedStart::PointInTime(at * 1000),
            mode: FeedMode::LatestVersion,
            max_items: 1000,
        };
        let page = store.read_feed("db", "c", &request).expect("feed page");
        page.changes
            .iter()
            .map(|change| {
                let value: Value = serde_json::from_str(change).expect("JSON");
                value["_ts"].as_u64().expect("_ts")
            })
            .collect()
    }

    #[tokio::test]
    async fn the_time_index_is_thinned_to_a_bucket_past_a_day_and_starts_are_never_late() {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::new(T0 * 1000));
        let store = Store::open(
            dir.path(),
            StoreOptions {
                clock: Arc::clone(&clock) as Arc<dyn Clock>,
                maintenance_interval: Duration::from_secs(3600),
                ..StoreOptions::relaxed()
            },
        )
        .expect("store");
        store.create_database("db").await.expect("database");
        store
            .create_container("db", ContainerDefinition::new("c", "/pk"), 2)
            .await
            .expect("container");
        let cid = store.container("db", "c").expect("container").cid;
        for i in 0..WRITES {
            let item = json!({"id": format!("i{i}"), "pk": format!("k{}", i % 5)});
            store
                .write_item("db", "c", ItemWrite::upsert(item))
                .await
                .expect("write");
            clock.advance_ms(1000);
        }
        let written: Vec<u64> = (T0..T0 + WRITES).collect();
        assert_eq!(time_index_len(&store, cid), WRITES as usize);
        // Within the day: a start is exact.
        for at in T0 - 2..T0 + WRITES + 2 {
            let expected: Vec<u64> = written.iter().copied().filter(|ts| *ts >= at).collect();
            assert_eq!(timestamps_from(&store, at), expected, "exact start at {at}");
        }

        clock.advance_ms((TIME_INDEX_FINE_SECONDS + 120) * 1000);
        store.gate.committer.lock().maintain();
        let buckets: std::collections::BTreeSet<u64> = written
            .iter()
            .map(|ts| ts / TIME_INDEX_BUCKET_SECONDS)
            .collect();
        assert_eq!(
            time_index_len(&store, cid),
            buckets.len(),
            "one key per bucket"
        );
        store.gate.committer.lock().maintain();
        assert_eq!(
            time_index_len(&store, cid),
            buckets.len(),
            "thinning is idempotent"
        );

        // Past the day: a start may round down to its bucket's first write, never later.
        for at in T0 - 2..T0 + WRITES + 2 {
            let got = timestamps_from(&store, at);
            let bucket_start = at / TIME_INDEX_BUCKET_SECONDS * TIME_INDEX_BUCKET_SECONDS;
            let expected: Vec<u64> = written
                .iter()
                .copied()
                .filter(|ts| *ts >= at.min(bucket_start.max(T0)))
                .collect();
            assert_eq!(
                got, expected,
                "a start at {at} begins at its bucket's first write"
            );
        }
    }
}
