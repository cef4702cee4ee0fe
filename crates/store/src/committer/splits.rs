//! Feed range splits: one range into two children at the middle of its EPKs, on request or
//! (after a commit) when a range has grown past the split threshold.

use std::sync::Arc;

use super::Committer;
use crate::catalog::{MAX_FEED_RANGES, RangeRecord, v2_split_point};
use crate::error::{Result, StoreError};
use crate::item_scan::count_item_pointers;
use crate::records::{doc_key_epk_bound, parse_doc_key};
use crate::storage::Space;
use crate::txn::Txn;

impl Committer {
    /// Splits every range past the split threshold, each in its own commit; stops while the
    /// disk is below the free-space reserve (a split writes its children's records).
    pub(super) fn split_oversized_ranges(&mut self) {
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
            if self.disk_reserve.below_reserve().is_some() {
                return;
            }
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

/// Splits a current range into two children at the median EPK of its items.
pub(super) fn split_range(
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
    // The split runs alone, so the committed pointers are all there are.
    let left_count = match range.item_count {
        Some(_) => Some(count_item_pointers(
            txn.backend(),
            cid,
            &range.min,
            &middle,
        )?),
        None => None,
    };
    let container = txn.container_mut(cid);
    let first_lsn = container.feed.next_lsn;
    let left_id = container.feed.next_range_id;
    let right_id = left_id + 1;
    container.feed.next_range_id += 2;
    container.feed.ranges_version += 1;
    let mut ancestors = range.ancestors.clone();
    ancestors.push(range.id);
    let child = |id: u32, min: String, max: String, item_count: Option<u64>| RangeRecord {
        id,
        min,
        max,
        parents: vec![range.id],
        ancestors: ancestors.clone(),
        first_lsn,
        children: Vec::new(),
        approx_bytes: range.approx_bytes / 2,
        item_count,
    };
    let right_count = range
        .item_count
        .zip(left_count)
        .map(|(all, left)| all.saturating_sub(left));
    let children = vec![
        child(left_id, range.min.clone(), middle.clone(), left_count),
        child(right_id, middle, range.max.clone(), right_count),
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
