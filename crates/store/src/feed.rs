//! Reading the change feed: latest-version and all-versions-and-deletes.
//!
//! Every write of a container gets the next LSN of that container, so one LSN is a complete
//! position in any part of the container's feed: a read of any EPK span returns the changes
//! with LSN above the position, in LSN order. A span's changes live in the segments of the
//! current ranges covering it and of their ancestors (see `ARCHITECTURE.md`); a read scans
//! each of those segments once and merges them by LSN.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_partition_key::{EpkRange, PartitionKey};

use crate::catalog::{ContainerRecord, RangeRecord, container_rid};
use crate::document::expiry_second;
use crate::error::{Result, StoreError};
use crate::records::{
    ChangeLogRecord, FeedRecordView, OperationType, container_prefix, log_key, log_key_lsn,
    time_key,
};
use crate::storage::{Backend, Space, scan};

/// Most changes one page may hold.
pub const MAX_PAGE_ITEMS: usize = 10_000;

/// Which changes a feed read returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedMode {
    /// Each changed item once, at its latest version; deletes are not shown.
    LatestVersion,
    /// Every create, replace and delete, with the previous image where retained.
    AllVersionsAndDeletes,
}

/// Which part of the container a read covers.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedScope {
    /// The whole container.
    Container,
    /// One feed range by id; reading a range that was split fails with
    /// [`StoreError::RangeGone`].
    Range(u32),
    /// Any span of effective partition keys.
    Epk(EpkRange),
    /// The part of one feed range that lies in an EPK span (what the SDKs ask for when they
    /// read a partition key or a sub-range): fails with [`StoreError::RangeGone`] like
    /// [`FeedScope::Range`] if the range was split.
    RangePart {
        /// Feed range id.
        range: u32,
        /// The EPK span within it.
        epk: EpkRange,
    },
    /// One partition key value (or a hierarchical prefix).
    PartitionKey(PartitionKey),
}

/// Where a read starts.
#[derive(Clone, Debug, PartialEq)]
pub enum FeedStart {
    /// From the first change still in the feed.
    Beginning,
    /// From the next change after this call.
    Now,
    /// From changes committed at or after this time (milliseconds since the epoch).
    PointInTime(u64),
    /// From changes with LSN above this one.
    AfterLsn(u64),
    /// From a continuation returned by an earlier page.
    Continuation(String),
}

/// One feed read.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedRequest {
    /// What part of the container.
    pub scope: FeedScope,
    /// From where.
    pub start: FeedStart,
    /// Which mode.
    pub mode: FeedMode,
    /// Page size (at most [`MAX_PAGE_ITEMS`]).
    pub max_items: usize,
}

/// A page of changes.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedPage {
    /// The changes, as JSON text, in LSN order. Empty means "nothing new".
    pub changes: Vec<String>,
    /// The position after this page: pass it back as [`FeedStart::AfterLsn`] to continue.
    pub lsn: u64,
    /// The same position as an opaque, versioned continuation token that also records the
    /// container, scope and mode.
    pub continuation: String,
    /// The container's highest committed LSN when the page was read.
    pub high_lsn: u64,
}

impl FeedPage {
    /// Whether the page has no changes ("not modified").
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// The content of a continuation token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Continuation {
    /// Format version ([`CONTINUATION_VERSION`]).
    pub(crate) v: u32,
    /// The container's resource id.
    pub(crate) rid: String,
    /// The mode the token was taken in.
    pub(crate) mode: FeedMode,
    /// The EPK span read: inclusive lower bound.
    pub(crate) min: String,
    /// Exclusive upper bound.
    pub(crate) max: String,
    /// The position: the read goes on after this LSN.
    pub(crate) lsn: u64,
}

/// The continuation format this release writes and reads.
pub(crate) const CONTINUATION_VERSION: u32 = 1;

impl Continuation {
    /// The token: base64url (no padding) of the JSON.
    pub(crate) fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("continuations serialize");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// Reads a token made by [`Continuation::encode`].
    ///
    /// # Errors
    /// [`StoreError::InvalidContinuation`] saying what is wrong with it.
    pub(crate) fn decode(token: &str) -> Result<Self> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim())
            .map_err(|_| StoreError::InvalidContinuation("the token is not base64url".into()))?;
        let continuation: Continuation = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::InvalidContinuation(format!("the token is malformed: {e}")))?;
        if continuation.v != CONTINUATION_VERSION {
            return Err(StoreError::InvalidContinuation(format!(
                "token version {} is not supported (expected {CONTINUATION_VERSION})",
                continuation.v
            )));
        }
        Ok(continuation)
    }
}

/// Reads one page of a container's feed.
pub(crate) fn read(
    backend: &dyn Backend,
    container: &ContainerRecord,
    request: &FeedRequest,
    now_s: u64,
) -> Result<FeedPage> {
    let max_items = request.max_items.clamp(1, MAX_PAGE_ITEMS);
    let span = scope_span(container, &request.scope)?;
    let rid = container_rid(container.database_seq, container.cid);
    let high_lsn = container.high_lsn();
    let all_versions = request.mode == FeedMode::AllVersionsAndDeletes;
    if all_versions && !container.definition.keeps_all_versions() {
        return Err(StoreError::OutsideRetention(
            "all-versions-and-deletes mode needs the container's changeFeedPolicy.retentionDuration to be set".into(),
        ));
    }
    let after = match &request.start {
        FeedStart::Beginning if all_versions => container.feed.avad_trimmed_below.saturating_sub(1),
        FeedStart::Beginning => 0,
        FeedStart::Now => high_lsn,
        FeedStart::AfterLsn(lsn) => *lsn,
        FeedStart::PointInTime(ms) => {
            let first = first_lsn_at_or_after(backend, container, ms / 1000, now_s)?;
            first.map_or(high_lsn, |lsn| lsn - 1)
        }
        FeedStart::Continuation(token) => {
            let continuation = Continuation::decode(token)?;
            if continuation.rid != rid {
                return Err(StoreError::InvalidContinuation(format!(
                    "the token is for container resource {}, but this container is {rid} (was it deleted and recreated?)",
                    continuation.rid
                )));
            }
            if continuation.mode != request.mode {
                return Err(StoreError::InvalidContinuation(format!(
                    "the token was taken in {:?} mode, not {:?}",
                    continuation.mode, request.mode
                )));
            }
            if span.min.as_str() < continuation.min.as_str()
                || span.max.as_str() > continuation.max.as_str()
            {
                return Err(StoreError::InvalidContinuation(format!(
                    "the token covers EPKs [{}, {}), which does not include the requested [{}, {})",
                    continuation.min,
                    continuation.max,
                    span.min.as_str(),
                    span.max.as_str()
                )));
            }
            continuation.lsn
        }
    };
    if all_versions && after.saturating_add(1) < container.feed.avad_trimmed_below {
        return Err(StoreError::OutsideRetention(format!(
            "changes after LSN {after} are no longer retained; the oldest retained LSN is {}",
            container.feed.avad_trimmed_below
        )));
    }
    let space = if all_versions {
        Space::Avad
    } else {
        Space::Feed
    };
    // One cursor per segment, merged by LSN: a page reads only as far as it returns.
    let mut cursors: Vec<_> = segments_for_span(container, &span)
        .into_iter()
        .map(|segment| {
            let start = log_key(container.cid, segment, after.saturating_add(1));
            let end = log_key(container.cid, segment, high_lsn.saturating_add(1));
            scan(backend, space, &start, &end).peekable()
        })
        .collect();
    let mut changes: Vec<String> = Vec::new();
    let mut last_lsn = after;
    while changes.len() < max_items {
        let mut next: Option<(usize, u64)> = None;
        for (index, cursor) in cursors.iter_mut().enumerate() {
            let lsn = match cursor.peek() {
                None => continue,
                Some(Err(_)) => {
                    next = Some((index, 0));
                    break;
                }
                Some(Ok((key, _))) => log_key_lsn(key)?,
            };
            if next.is_none_or(|(_, best)| lsn < best) {
                next = Some((index, lsn));
            }
        }
        let Some((index, lsn)) = next else {
            break;
        };
        let (_, value) = cursors[index].next().expect("the cursor had an entry")?;
        let change = if all_versions {
            let record = ChangeLogRecord::decode(&value)?;
            if !span_contains(&span, &record.epk) {
                continue;
            }
            change_json(backend, container, lsn, &record)?
        } else {
            let record = FeedRecordView::decode(&value)?;
            if !span_contains(&span, record.epk) {
                continue;
            }
            let expiry = expiry_second(container.definition.default_ttl, record.ttl, record.ts);
            if expiry.is_some_and(|at| at <= now_s) {
                continue;
            }
            record.body.to_owned()
        };
        assert!(
            lsn > last_lsn,
            "a feed page is in strictly increasing LSN order"
        );
        last_lsn = lsn;
        changes.push(change);
    }
    // A full page ends at its last change; otherwise everything up to the snapshot was read.
    let lsn = if changes.len() == max_items {
        last_lsn
    } else {
        after.max(high_lsn)
    };
    let continuation = Continuation {
        v: CONTINUATION_VERSION,
        rid,
        mode: request.mode,
        min: span.min.as_str().to_owned(),
        max: span.max.as_str().to_owned(),
        lsn,
    }
    .encode();
    Ok(FeedPage {
        changes,
        lsn,
        continuation,
        high_lsn,
    })
}

/// The time index keeps one entry per second with writes for this long...
pub(crate) const TIME_INDEX_FINE_SECONDS: u64 = 24 * 3600;
/// ...and one per bucket of this many seconds (its first second with a write) before that.
pub(crate) const TIME_INDEX_BUCKET_SECONDS: u64 = 60;

/// The LSN a read from second `at` starts at, if any write is at or after it, from the time
/// index: where a point-in-time start begins, and (for the committer) where all-versions
/// retention keeps from.
///
/// Exact for the last [`TIME_INDEX_FINE_SECONDS`]: the first LSN committed at or after `at`.
/// Before that the index may have been thinned to the first second of each bucket
/// ([`TIME_INDEX_BUCKET_SECONDS`]), so the answer rounds down to the first LSN of `at`'s
/// bucket when that bucket has a write at or before `at`: a read may start up to a bucket
/// early, never late (no change at or after `at` is skipped).
pub(crate) fn first_lsn_at_or_after(
    backend: &dyn Backend,
    container: &ContainerRecord,
    at: u64,
    now_s: u64,
) -> Result<Option<u64>> {
    let cid = container.cid;
    let maybe_thinned = at < container.feed.time_index_coarse_before
        || at < now_s.saturating_sub(TIME_INDEX_FINE_SECONDS);
    let start = if maybe_thinned {
        at / TIME_INDEX_BUCKET_SECONDS * TIME_INDEX_BUCKET_SECONDS
    } else {
        at
    };
    let first = scan(
        backend,
        Space::Time,
        &time_key(cid, start),
        &container_prefix(cid + 1),
    )
    .next();
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

fn span_contains(span: &EpkRange, epk: &str) -> bool {
    epk >= span.min.as_str() && epk < span.max.as_str()
}

/// The EPK span a scope covers.
pub(crate) fn scope_span(container: &ContainerRecord, scope: &FeedScope) -> Result<EpkRange> {
    match scope {
        FeedScope::Container => Ok(EpkRange::full()),
        FeedScope::RangePart { range, epk } => {
            let whole = scope_span(container, &FeedScope::Range(*range))?;
            whole.intersect(epk).ok_or_else(|| {
                StoreError::BadRequest(format!(
                    "the EPK span [{}, {}) lies outside feed range {range}",
                    epk.min.as_str(),
                    epk.max.as_str()
                ))
            })
        }
        FeedScope::Range(id) => Ok(current_range(container, *id)?.epk_range()),
        FeedScope::Epk(range) => Ok(range.clone()),
        FeedScope::PartitionKey(key) => Ok(key.epk_range(&container.definition.partition_key)?),
    }
}

/// A current feed range of a container.
///
/// # Errors
/// [`StoreError::RangeNotFound`], or [`StoreError::RangeGone`] for a range that was split.
pub(crate) fn current_range(container: &ContainerRecord, id: u32) -> Result<&RangeRecord> {
    let range = container
        .range(id)
        .ok_or_else(|| StoreError::RangeNotFound(id.to_string()))?;
    if !range.is_current() {
        return Err(StoreError::RangeGone {
            range_id: id.to_string(),
            replaced_by: current_descendants(container, id),
        });
    }
    Ok(range)
}

/// The ids of the current ranges a gone range was split into.
pub(crate) fn current_descendants(container: &ContainerRecord, id: u32) -> Vec<String> {
    container
        .feed
        .ranges
        .iter()
        .filter(|r| r.is_current() && r.ancestors.contains(&id))
        .map(|r| r.id.to_string())
        .collect()
}

/// The segments that can hold changes in `span`: the current ranges overlapping it and all
/// their ancestors, each once, in increasing id order.
fn segments_for_span(container: &ContainerRecord, span: &EpkRange) -> BTreeSet<u32> {
    let mut segments = BTreeSet::new();
    for range in container.feed.ranges.iter().filter(|r| r.is_current()) {
        if range.min.as_str() < span.max.as_str() && span.min.as_str() < range.max.as_str() {
            segments.insert(range.id);
            segments.extend(range.ancestors.iter().copied());
        }
    }
    segments
}

/// Renders an all-versions record in the Cosmos wire shape (`2021-09-15`).
fn change_json(
    backend: &dyn Backend,
    container: &ContainerRecord,
    lsn: u64,
    record: &ChangeLogRecord,
) -> Result<String> {
    let mut metadata = serde_json::Map::new();
    metadata.insert("crts".into(), Value::from(record.crts));
    metadata.insert("lsn".into(), Value::from(lsn));
    metadata.insert(
        "operationType".into(),
        Value::from(record.operation.as_str()),
    );
    if let Some((_, previous_lsn)) = record.previous {
        metadata.insert("previousImageLSN".into(), Value::from(previous_lsn));
    }
    metadata.insert("timeToLiveExpired".into(), Value::from(record.ttl_expired));
    if record.operation == OperationType::Delete {
        metadata.insert("id".into(), Value::from(record.id.clone()));
        metadata.insert(
            "partitionKey".into(),
            partition_key_object(container, record)?,
        );
    }
    let previous = match record.previous {
        Some((segment, previous_lsn)) => backend
            .get(Space::Avad, &log_key(container.cid, segment, previous_lsn))?
            .map(|bytes| ChangeLogRecord::decode(&bytes))
            .transpose()?
            .filter(|previous| !previous.current.is_empty())
            .map(|previous| previous.current),
        None => None,
    };
    let mut out = String::with_capacity(
        record.current.len() + previous.as_ref().map_or(0, String::len) + 200,
    );
    out.push('{');
    // A delete has no current image; Cosmos DB still sends the key, as an empty object.
    out.push_str("\"current\":");
    out.push_str(if record.current.is_empty() {
        "{}"
    } else {
        &record.current
    });
    out.push(',');
    if let Some(previous) = previous {
        out.push_str("\"previous\":");
        out.push_str(&previous);
        out.push(',');
    }
    out.push_str("\"metadata\":");
    out.push_str(&Value::Object(metadata).to_string());
    out.push('}');
    Ok(out)
}

/// `{"<path>": value, ...}` for a deleted item's partition key.
fn partition_key_object(container: &ContainerRecord, record: &ChangeLogRecord) -> Result<Value> {
    let values: Value = serde_json::from_str(&record.partition_key)
        .map_err(|e| StoreError::Corrupt(format!("logged partition key is not JSON: {e}")))?;
    let mut object = serde_json::Map::new();
    if let Value::Array(values) = values {
        for (path, value) in container.definition.partition_key.paths.iter().zip(values) {
            object.insert(path.trim_start_matches('/').to_owned(), value);
        }
    }
    Ok(Value::Object(object))
}
