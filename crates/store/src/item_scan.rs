//! Reading the live items of a scope in feed key order, from a position on: what queries,
//! read feeds and partition-key deletes read.
//!
//! The whole container is one pass over its feed entries. A span of whole feed ranges reads
//! those ranges' feed segments (and their ancestors', filtered by EPK), from the position a
//! page resumes at. A narrower scope (an EPK span inside a range, a partition key) reads the
//! item pointers of its span instead (one contiguous key range, as pointers order by EPK) and
//! the versions they name, all from one snapshot, so a query for one partition key reads
//! that key's items and nothing else.

use std::ops::{Bound, ControlFlow};

use tributary_partition_key::EpkRange;

use crate::Store;
use crate::catalog::{self, ContainerRecord};
use crate::error::{Result, StoreError};
use crate::feed::{self, FeedScope};
use crate::is_expired;
use crate::records::{self, DocPointer, FeedRecordView, container_prefix, log_key};
use crate::storage::{Backend, Space};

/// Where an item stands in a scan: its latest version's feed key (feed range segment, then
/// LSN). Scans visit items in this order; a scan can resume after a position, which stays
/// valid across restarts and splits. An item written after a scan passed it has a new,
/// larger position and is visited again (at its new version) by a scan resumed later: a
/// resumed scan skips no item that was live throughout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemPosition {
    /// The feed range segment the version was written to.
    pub segment: u32,
    /// The version's LSN.
    pub lsn: u64,
}

impl Store {
    /// The number of items in a current feed range: kept with the range, or counted from the
    /// range's item pointers (keys only, no item read) for a range recorded before counts
    /// were kept.
    ///
    /// # Errors
    /// [`StoreError::RangeNotFound`], [`StoreError::RangeGone`] for a split range; storage
    /// errors.
    pub fn range_item_count(&self, database: &str, container: &str, range_id: u32) -> Result<u64> {
        let record = self.container(database, container)?;
        let range = feed::current_range(&record, range_id)?;
        match range.item_count {
            Some(count) => Ok(count),
            None => count_item_pointers(
                self.shared.backend.as_ref(),
                record.cid,
                &range.min,
                &range.max,
            ),
        }
    }

    /// The number of live items in a scope, counted from the item pointers of its EPK span
    /// (keys only, no item read): what an index-only `COUNT` answers. A partition key's span
    /// holds that key's items, and a `MultiHash` prefix's span every key that extends it.
    ///
    /// `None` when pointers cannot tell: in a container with a `defaultTtl` (set to any
    /// value, `-1` included, items can expire) an item past its expiry keeps its pointer
    /// until the sweeper removes it, and only reading the item shows it has expired; the
    /// caller then reads the scope ([`Store::visit_items`] skips expired items).
    ///
    /// # Errors
    /// [`StoreError::RangeGone`] for a split range, [`StoreError::BadRequest`] for an EPK
    /// span outside its range; storage errors.
    pub fn count_items(
        &self,
        database: &str,
        container: &str,
        scope: &FeedScope,
    ) -> Result<Option<u64>> {
        let record = self.container(database, container)?;
        if record.definition.default_ttl.is_some() {
            return Ok(None);
        }
        let span = feed::scope_span(&record, scope)?;
        count_item_pointers(
            self.shared.backend.as_ref(),
            record.cid,
            span.min.as_str(),
            span.max.as_str(),
        )
        .map(Some)
    }

    /// The id of the item whose `_rid` is `rid`, looked for in `scope` (a partition key keeps
    /// the search to that key's items). Reads item pointers only (each holds its item's
    /// creation LSN, which the `_rid` encodes), never an item; `None` when no item of the
    /// scope has that resource id, or `rid` is not one of this container's item ids.
    ///
    /// # Errors
    /// [`StoreError::RangeGone`] for a split range; storage errors.
    pub fn item_id_by_rid(
        &self,
        database: &str,
        container: &str,
        scope: &FeedScope,
        rid: &str,
    ) -> Result<Option<String>> {
        let record = self.container(database, container)?;
        let Some(created_lsn) =
            catalog::item_rid_creation_lsn(record.database_seq, record.cid, rid)
        else {
            return Ok(None);
        };
        let span = feed::scope_span(&record, scope)?;
        let snapshot = self.shared.backend.snapshot();
        for entry in snapshot.scan(
            Space::Docs,
            &records::doc_key_epk_bound(record.cid, span.min.as_str()),
            &records::doc_key_epk_bound(record.cid, span.max.as_str()),
        ) {
            let (key, pointer) = entry?;
            if DocPointer::decode(&pointer)?.created_lsn == created_lsn {
                let (_, id) = records::parse_doc_key(&key)?;
                return Ok(Some(id.to_owned()));
            }
        }
        Ok(None)
    }

    /// The live items of a scope (JSON text, system properties included), in [`ItemPosition`]
    /// order.
    ///
    /// # Errors
    /// [`StoreError::RangeGone`] for a split range; storage errors.
    pub fn scan_items(
        &self,
        database: &str,
        container: &str,
        scope: &FeedScope,
    ) -> Result<Vec<String>> {
        let mut items = Vec::new();
        self.visit_items(database, container, scope, None, |_, body| {
            items.push(body.to_owned());
            ControlFlow::Continue(())
        })?;
        Ok(items)
    }

    /// Visits the live items of a scope in [`ItemPosition`] order, starting after `after`,
    /// until `visit` breaks: a page reads only as far as it needs.
    ///
    /// # Errors
    /// [`StoreError::RangeGone`] for a split range; storage errors.
    pub fn visit_items(
        &self,
        database: &str,
        container: &str,
        scope: &FeedScope,
        after: Option<ItemPosition>,
        visit: impl FnMut(ItemPosition, &str) -> ControlFlow<()>,
    ) -> Result<()> {
        let record = self.container(database, container)?;
        let span = feed::scope_span(&record, scope)?;
        if span.is_full() {
            self.visit_all_items(&record, after, visit)
        } else {
            self.visit_items_in(&record, &span, after, visit)
        }
    }

    /// Every live item of a container: one pass over its feed entries.
    fn visit_all_items(
        &self,
        record: &ContainerRecord,
        after: Option<ItemPosition>,
        mut visit: impl FnMut(ItemPosition, &str) -> ControlFlow<()>,
    ) -> Result<()> {
        let now_s = self.shared.now_s();
        let start = match after {
            Some(position) => Bound::Excluded(log_key(record.cid, position.segment, position.lsn)),
            None => Bound::Included(container_prefix(record.cid)),
        };
        let end = Bound::Excluded(container_prefix(record.cid + 1));
        for entry in self.shared.backend.scan(Space::Feed, start, end, false) {
            let (key, value) = entry?;
            let feed_record = FeedRecordView::decode(&value)?;
            if is_expired(record, feed_record.ts, feed_record.ttl, now_s) {
                continue;
            }
            let position = ItemPosition {
                segment: records::log_key_segment(&key)?,
                lsn: records::log_key_lsn(&key)?,
            };
            if visit(position, feed_record.body).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The live items whose EPK lies in `span`. A span made of whole current feed ranges
    /// reads those ranges' feed segments from `after` on ([`Store::visit_segments`]), so a
    /// page costs what it returns; any other span (a partition key, part of a range) reads its
    /// item pointers, sorted by position, then the versions they name.
    fn visit_items_in(
        &self,
        record: &ContainerRecord,
        span: &EpkRange,
        after: Option<ItemPosition>,
        mut visit: impl FnMut(ItemPosition, &str) -> ControlFlow<()>,
    ) -> Result<()> {
        if let Some(segments) = whole_range_segments(record, span) {
            return self.visit_segments(record, &segments, span, after, visit);
        }
        let now_s = self.shared.now_s();
        let snapshot = self.shared.backend.snapshot();
        let mut positions = Vec::new();
        for entry in snapshot.scan(
            Space::Docs,
            &records::doc_key_epk_bound(record.cid, span.min.as_str()),
            &records::doc_key_epk_bound(record.cid, span.max.as_str()),
        ) {
            let (_, pointer) = entry?;
            let pointer = DocPointer::decode(&pointer)?;
            let position = ItemPosition {
                segment: pointer.segment,
                lsn: pointer.lsn,
            };
            if after.is_none_or(|after| position > after) {
                positions.push(position);
            }
        }
        positions.sort_unstable();
        for position in positions {
            let value = snapshot
                .get(
                    Space::Feed,
                    &log_key(record.cid, position.segment, position.lsn),
                )?
                .ok_or_else(|| {
                    StoreError::Corrupt("an item pointer names a missing feed entry".into())
                })?;
            let feed_record = FeedRecordView::decode(&value)?;
            if is_expired(record, feed_record.ts, feed_record.ttl, now_s) {
                continue;
            }
            if visit(position, feed_record.body).is_break() {
                break;
            }
        }
        Ok(())
    }
}

impl Store {
    /// The live items in `segments` (ascending) whose EPK lies in `span`, in position order
    /// from `after` on, all read from one snapshot. A segment holds the latest versions
    /// written to its range: those of a current range, and, in its ancestors' segments,
    /// versions written before the splits, some of them in sibling ranges (skipped here).
    fn visit_segments(
        &self,
        record: &ContainerRecord,
        segments: &[u32],
        span: &EpkRange,
        after: Option<ItemPosition>,
        mut visit: impl FnMut(ItemPosition, &str) -> ControlFlow<()>,
    ) -> Result<()> {
        let now_s = self.shared.now_s();
        let snapshot = self.shared.backend.snapshot();
        let (min, max) = (span.min.as_str(), span.max.as_str());
        for &segment in segments {
            let first_lsn = match after {
                Some(after) if after.segment > segment => continue,
                Some(after) if after.segment == segment => after.lsn.saturating_add(1),
                _ => 0,
            };
            for entry in snapshot.scan(
                Space::Feed,
                &log_key(record.cid, segment, first_lsn),
                &segment_end(record.cid, segment),
            ) {
                let (key, value) = entry?;
                let feed_record = FeedRecordView::decode(&value)?;
                if feed_record.epk < min
                    || feed_record.epk >= max
                    || is_expired(record, feed_record.ts, feed_record.ttl, now_s)
                {
                    continue;
                }
                let position = ItemPosition {
                    segment,
                    lsn: records::log_key_lsn(&key)?,
                };
                if visit(position, feed_record.body).is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// The first key after every feed entry of `segment`.
fn segment_end(cid: u32, segment: u32) -> Vec<u8> {
    match segment.checked_add(1) {
        Some(next) => log_key(cid, next, 0),
        None => container_prefix(cid + 1),
    }
}

/// When `span` is exactly a union of current feed ranges, the segments holding their items
/// (theirs and their ancestors'), ascending; `None` for any other span.
pub(crate) fn whole_range_segments(record: &ContainerRecord, span: &EpkRange) -> Option<Vec<u32>> {
    let mut segments = Vec::new();
    for range in record.feed.ranges.iter().filter(|range| range.is_current()) {
        let epks = range.epk_range();
        if !epks.overlaps(span) {
            continue;
        }
        if epks.min < span.min || epks.max > span.max {
            return None;
        }
        segments.push(range.id);
        segments.extend(&range.ancestors);
    }
    // The current ranges tile the key space, so the overlapping ones, all inside the span,
    // cover it exactly; none overlaps an empty span.
    if segments.is_empty() {
        return None;
    }
    segments.sort_unstable();
    segments.dedup();
    Some(segments)
}

/// Counts a container's committed item pointers whose EPK lies in `[min, max)`.
pub(crate) fn count_item_pointers(
    backend: &dyn Backend,
    cid: u32,
    min: &str,
    max: &str,
) -> Result<u64> {
    let start = records::doc_key_epk_bound(cid, min);
    let end = records::doc_key_epk_bound(cid, max);
    let mut count = 0;
    for entry in crate::storage::scan(backend, Space::Docs, &start, &end) {
        entry?;
        count += 1;
    }
    Ok(count)
}
