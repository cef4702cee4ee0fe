//! The range index of a container's items (terms from `tributary_index`): its state in the
//! catalog, and the reads of queries that use it. The committer keeps it in step with every
//! write and builds it after a policy change (`committer/index_ops.rs`).
//!
//! Each key is `cid | generation | term | segment | lsn`: a term of one item version and the
//! feed key of that version, so a lookup reads index keys in term order and fetches each
//! version with one point read. Replacing the indexing policy starts a new generation: the
//! committer builds it item by item in the background, queries read items without the index
//! until it is complete, and the old generation's keys are deleted behind it.

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use tributary_index::{IndexingMode, IndexingPolicy, Lookup};

use crate::Store;
use crate::catalog::ContainerRecord;
use crate::error::{Result, StoreError};
use crate::feed::{self, FeedScope};
use crate::is_expired;
use crate::item_scan::whole_range_segments;
use crate::records::{FeedRecordView, index_key_version, index_prefix, log_key};
use crate::storage::Space;

/// The range index of one container, as the catalog records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct IndexState {
    /// The generation written by item writes and read by queries; a new policy starts a new
    /// one.
    pub generation: u32,
    /// Present while the generation is being built from the container's items.
    pub build: Option<IndexBuild>,
    /// Older generations whose keys maintenance is still deleting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stale_generations: Vec<u32>,
    /// The container's policy, parsed on first use (never stored; a new definition gets a
    /// new state, see [`IndexState::after_policy_change`]).
    #[serde(skip)]
    policy: PolicyCache,
}

/// How far a build has come.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IndexBuild {
    /// The last item indexed, as `(epk, id)`; `None` before the first.
    pub after: Option<(String, String)>,
    /// Items indexed so far.
    pub items_done: u64,
}

/// A parsed policy shared by the copies of a container record. Equal to every other cache:
/// it is derived from the definition, which the record compares.
#[derive(Clone, Debug, Default)]
struct PolicyCache(OnceLock<Arc<IndexingPolicy>>);

impl PartialEq for PolicyCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl IndexState {
    /// The state of a new, empty container: generation 0, complete.
    pub(crate) fn built() -> IndexState {
        IndexState {
            generation: 0,
            build: None,
            stale_generations: Vec::new(),
            policy: PolicyCache::default(),
        }
    }

    /// The state of a container recorded before the store kept indexes: its items are
    /// indexed from the start.
    pub(crate) fn unbuilt() -> IndexState {
        IndexState {
            build: Some(IndexBuild::default()),
            ..IndexState::built()
        }
    }

    /// The state after the container's policy became `policy`: a new generation, built from
    /// the start unless it indexes nothing, the current one left for maintenance to delete.
    pub(crate) fn after_policy_change(&self, policy: &IndexingPolicy) -> IndexState {
        let mut stale_generations = self.stale_generations.clone();
        stale_generations.push(self.generation);
        IndexState {
            generation: self.generation + 1,
            build: (policy.mode() == IndexingMode::Consistent).then(IndexBuild::default),
            stale_generations,
            policy: PolicyCache::default(),
        }
    }
}

impl ContainerRecord {
    /// The container's indexing policy. A stored policy that no longer reads (written before
    /// policies were checked) indexes nothing, so queries read every item.
    pub(crate) fn indexing_policy(&self) -> &Arc<IndexingPolicy> {
        self.index.policy.0.get_or_init(|| {
            let policy = IndexingPolicy::from_json(self.definition.indexing_policy.as_ref())
                .unwrap_or_else(|error| {
                    tracing::warn!(container = %self.definition.id, %error, "indexing policy not usable; the container is not indexed");
                    IndexingPolicy::none()
                });
            Arc::new(policy)
        })
    }

    /// How far the current index generation is built (percent, 100 when complete).
    pub(crate) fn index_progress_percent(&self) -> u8 {
        let Some(build) = &self.index.build else {
            return 100;
        };
        let total: u64 = self
            .feed
            .ranges
            .iter()
            .filter(|range| range.is_current())
            .filter_map(|range| range.item_count)
            .sum();
        match total {
            0 => 0,
            total => (build.items_done.saturating_mul(100) / total).min(99) as u8,
        }
    }
}

impl Store {
    /// The first of `lookups` the container's index can answer now: its policy indexes the
    /// lookup's path and the current generation is built. `None` when none can (the query
    /// then reads the items of its scope).
    ///
    /// # Errors
    /// [`StoreError::ContainerNotFound`].
    pub fn usable_lookup<'l>(
        &self,
        database: &str,
        container: &str,
        lookups: &'l [Lookup],
    ) -> Result<Option<&'l Lookup>> {
        let record = self.container(database, container)?;
        if record.index.build.is_some() {
            return Ok(None);
        }
        let policy = record.indexing_policy();
        Ok(lookups.iter().find(|lookup| policy.indexes(&lookup.path)))
    }

    /// Visits the live items of `scope` that `lookup` selects, in index order (by value),
    /// after the index position `after`, until `visit` breaks. Each item is visited once
    /// (a lookup that can meet an item at several values drops the repeats). The position
    /// given to `visit` resumes the read after that item, across restarts.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] when the index cannot answer the lookup now (see
    /// [`Store::usable_lookup`]) or `after` is not a position on its path; [`StoreError::RangeGone`] for a split range; storage
    /// errors.
    pub fn visit_indexed_items(
        &self,
        database: &str,
        container: &str,
        scope: &FeedScope,
        (lookup, after): (&Lookup, Option<&[u8]>),
        mut visit: impl FnMut(&[u8], &str) -> ControlFlow<()>,
    ) -> Result<()> {
        let record = self.container(database, container)?;
        if record.index.build.is_some() || !record.indexing_policy().indexes(&lookup.path) {
            return Err(StoreError::BadRequest(format!(
                "the index {} cannot answer this query now",
                lookup.index_spec()
            )));
        }
        if after.is_some_and(|after| !lookup.is_on_path(after)) {
            return Err(StoreError::BadRequest(format!(
                "the index position to resume from is not on {}: the query is not the one \
                 that made it, or the container's indexing policy changed since; run the query \
                 again from the start",
                lookup.index_spec()
            )));
        }
        let span = feed::scope_span(&record, scope)?;
        let (min, max) = (span.min.as_str(), span.max.as_str());
        // A span of whole feed ranges holds only versions written to their segments (or to
        // their ancestors'): entries of other segments are passed over unread.
        let segments = match span.is_full() {
            true => None,
            false => whole_range_segments(&record, &span),
        };
        let now_s = self.shared.now_s();
        let prefix = index_prefix(record.cid, record.index.generation);
        let mut seen = lookup.may_repeat_items().then(HashSet::new);
        let snapshot = self.shared.backend.snapshot();
        for (start, end) in lookup.term_ranges() {
            let with_prefix = |bytes: &[u8]| [prefix.as_slice(), bytes].concat();
            let mut start = with_prefix(&start);
            let end = with_prefix(&end);
            if let Some(after) = after {
                let resume = [prefix.as_slice(), after, &[0]].concat();
                if resume >= end {
                    continue;
                }
                start = start.max(resume);
            }
            for entry in snapshot.scan(Space::Index, &start, &end) {
                let (key, _) = entry?;
                let (segment, lsn) = index_key_version(&key)?;
                if segments
                    .as_ref()
                    .is_some_and(|segments| !segments.contains(&segment))
                {
                    continue;
                }
                if let Some(seen) = &mut seen
                    && !seen.insert((segment, lsn))
                {
                    continue;
                }
                let value = snapshot
                    .get(Space::Feed, &log_key(record.cid, segment, lsn))?
                    .ok_or_else(|| {
                        StoreError::Corrupt("an index entry names a missing item version".into())
                    })?;
                let item = FeedRecordView::decode(&value)?;
                if item.epk < min
                    || item.epk >= max
                    || is_expired(&record, item.ts, item.ttl, now_s)
                {
                    continue;
                }
                if visit(&key[prefix.len()..], item.body).is_break() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}
