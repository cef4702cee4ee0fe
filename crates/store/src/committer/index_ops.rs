//! Keeping the range index in step with the items (see `crate::index`): the keys of each
//! version written or removed, in the write's own commit; the build of a new generation
//! after a policy change, a bounded number of items per maintenance pass; and the deletion
//! of the generations it replaced.

use std::sync::Arc;

use serde_json::Value;
use tributary_index::{IndexPath, IndexingMode, Scalar, Step};

use super::item_ops::{Existing, load_existing};
use crate::document::PreparedItem;
use crate::error::{Result, StoreError};
use crate::index::IndexBuild;
use crate::records::{container_prefix, doc_key, index_key, index_prefix, parse_doc_key};
use crate::storage::Space;
use crate::txn::Txn;

/// Most items one maintenance pass indexes while building a generation.
const MAX_BUILD_ITEMS_PER_PASS: usize = 2048;
/// Most keys of replaced generations one maintenance pass deletes per container.
const MAX_STALE_KEYS_PER_PASS: usize = 8192;

/// A version an item write creates: the item, and where it is stored.
pub(super) struct NewVersion<'a> {
    pub item: &'a PreparedItem,
    pub segment: u32,
    pub lsn: u64,
    pub ts: u64,
}

/// Stages the index keys of one item change: the old version's keys go, the new version's
/// come (its prepared terms when they were computed under the current generation, and its
/// `_ts`).
pub(super) fn index_change(
    txn: &mut Txn<'_>,
    cid: u32,
    old: Option<&Existing>,
    new: Option<NewVersion<'_>>,
) -> Result<()> {
    let record = &txn.catalog.containers[&cid];
    let policy = Arc::clone(record.indexing_policy());
    if policy.mode() == IndexingMode::None {
        return Ok(());
    }
    let generation = record.index.generation;
    if let Some(old) = old {
        let body: Value = serde_json::from_str(&old.record.body).map_err(stored_not_json)?;
        for term in policy.terms(&body) {
            let key = index_key(cid, generation, &term, old.pointer.segment, old.pointer.lsn);
            txn.delete(Space::Index, key);
        }
    }
    if let Some(new) = new {
        let computed;
        let terms = match &new.item.index_terms {
            Some(prepared) if prepared.generation == generation => &prepared.terms,
            _ => {
                let body: Value =
                    serde_json::from_str(&new.item.user_json).map_err(stored_not_json)?;
                computed = policy.terms(&body);
                &computed
            }
        };
        let ts_path = IndexPath(vec![Step::Property("_ts".into())]);
        let ts_term = policy.term(&ts_path, &Scalar::Number(new.ts as f64));
        for term in terms.iter().chain(&ts_term) {
            let key = index_key(cid, generation, term, new.segment, new.lsn);
            txn.put(Space::Index, key, Vec::new());
        }
    }
    Ok(())
}

/// Indexes the next items of a container whose current generation is being built, at most
/// [`MAX_BUILD_ITEMS_PER_PASS`]; whether items remain.
pub(super) fn build_step(txn: &mut Txn<'_>, cid: u32) -> Result<bool> {
    let record = &txn.catalog.containers[&cid];
    let Some(build) = record.index.build.clone() else {
        return Ok(false);
    };
    let policy = Arc::clone(record.indexing_policy());
    let generation = record.index.generation;
    let start = match &build.after {
        Some((epk, id)) => {
            let mut key = doc_key(cid, epk, id);
            key.push(0);
            key
        }
        None => container_prefix(cid),
    };
    let keys: Vec<Vec<u8>> = txn
        .backend_scan(Space::Docs, &start, &container_prefix(cid + 1))
        .take(MAX_BUILD_ITEMS_PER_PASS)
        .map(|entry| entry.map(|(key, _)| key.to_vec()))
        .collect::<Result<_>>()?;
    let finished = keys.len() < MAX_BUILD_ITEMS_PER_PASS;
    let mut puts = Vec::new();
    for key in &keys {
        // Read through the group: an item this pass expired is gone.
        let Some(existing) = load_existing(txn, cid, key)? else {
            continue;
        };
        let body: Value = serde_json::from_str(&existing.record.body).map_err(stored_not_json)?;
        for term in policy.terms(&body) {
            let (segment, lsn) = (existing.pointer.segment, existing.pointer.lsn);
            puts.push(index_key(cid, generation, &term, segment, lsn));
        }
    }
    for key in puts {
        txn.put(Space::Index, key, Vec::new());
    }
    let after = match keys.last() {
        Some(last) => {
            let (epk, id) = parse_doc_key(last)?;
            Some((epk.to_owned(), id.to_owned()))
        }
        None => build.after.clone(),
    };
    let items_done = build.items_done + keys.len() as u64;
    let container = txn.container_mut(cid);
    container.index.build = if finished {
        tracing::info!(
            container = %container.definition.id,
            generation,
            items = items_done,
            "range index built"
        );
        None
    } else {
        Some(IndexBuild { after, items_done })
    };
    Ok(!finished)
}

/// Deletes keys of generations the container's policy replaced, at most
/// [`MAX_STALE_KEYS_PER_PASS`]; whether keys remain.
pub(super) fn delete_stale_generations(txn: &mut Txn<'_>, cid: u32) -> Result<bool> {
    let stale = txn.catalog.containers[&cid].index.stale_generations.clone();
    if stale.is_empty() {
        return Ok(false);
    }
    let mut budget = MAX_STALE_KEYS_PER_PASS;
    let mut remaining = Vec::new();
    for generation in stale {
        let start = index_prefix(cid, generation);
        let end = match generation.checked_add(1) {
            Some(next) => index_prefix(cid, next),
            None => container_prefix(cid + 1),
        };
        if budget == 0
            || !super::maintenance::delete_keys_in(txn, Space::Index, &start, &end, &mut budget)?
        {
            remaining.push(generation);
        }
    }
    let more = !remaining.is_empty();
    txn.container_mut(cid).index.stale_generations = remaining;
    Ok(more)
}

fn stored_not_json(error: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("a stored item is not JSON: {error}"))
}
