//! A container's scripts inside a commit group: created, upserted, replaced (renamed) and
//! deleted, and a container's scripts removed with it.
//!
//! Every check comes before the first staged write, so a failed operation leaves nothing
//! behind without a savepoint.

use std::sync::Arc;

use super::user_ops::{Put, put_counters};
use crate::error::{Result, StoreError};
use crate::scripts::{
    MAX_SCRIPTS_PER_CONTAINER, ScriptDefinition, ScriptKind, ScriptProperties, ScriptRecord,
    script_meta_key,
};
use crate::storage::Space;
use crate::txn::Txn;

/// Where a script request points: its container and kind.
#[derive(Debug)]
pub(crate) struct ScriptScope {
    pub database: String,
    pub container: String,
    pub kind: ScriptKind,
}

fn store_script(txn: &mut Txn<'_>, record: ScriptRecord) {
    txn.put(
        Space::Meta,
        script_meta_key(record.cid, record.kind, &record.definition.id),
        serde_json::to_vec(&record).expect("catalog records serialize"),
    );
    Arc::make_mut(&mut txn.catalog.scripts).insert(
        (record.cid, record.kind, record.definition.id.clone()),
        record,
    );
}

fn remove_script(txn: &mut Txn<'_>, cid: u32, kind: ScriptKind, id: &str) -> Option<ScriptRecord> {
    let key = (cid, kind, id.to_owned());
    if !txn.catalog.scripts.contains_key(&key) {
        return None;
    }
    let record = Arc::make_mut(&mut txn.catalog.scripts).remove(&key)?;
    txn.delete(Space::Meta, script_meta_key(cid, kind, id));
    Some(record)
}

/// Fails unless `if_match` (an `If-Match` etag, `*` for any) matches the script's etag.
fn check_if_match(record: &ScriptRecord, if_match: Option<&str>) -> Result<()> {
    let Some(expected) = if_match else {
        return Ok(());
    };
    let etag = record.properties().etag;
    if expected == "*" || expected == etag {
        return Ok(());
    }
    Err(StoreError::PreconditionFailed(format!(
        "the {}'s etag is {etag}, not {expected}",
        record.kind.as_str()
    )))
}

/// Writes a script; the outcome says whether it was created.
pub(super) fn put_script(
    txn: &mut Txn<'_>,
    scope: &ScriptScope,
    definition: ScriptDefinition,
    put: Put,
    if_match: Option<&str>,
) -> Result<(ScriptProperties, bool)> {
    let kind = scope.kind;
    definition.validate(kind)?;
    let container = txn.catalog.container(&scope.database, &scope.container)?;
    let (cid, database_seq) = (container.cid, container.database_seq);
    let id = definition.id.clone();
    let existing = |txn: &Txn<'_>, id: &str| {
        txn.catalog
            .scripts
            .get(&(cid, kind, id.to_owned()))
            .cloned()
    };
    let exists_error = |id: String| StoreError::ScriptExists {
        kind: kind.as_str(),
        id,
    };
    let replaced = match &put {
        Put::Create if existing(txn, &id).is_some() => return Err(exists_error(id)),
        Put::Create => None,
        Put::Upsert => existing(txn, &id),
        Put::Replace { id: old_id } => {
            let old = txn
                .catalog
                .script(&scope.database, &scope.container, kind, old_id)?
                .clone();
            if *old_id != id && existing(txn, &id).is_some() {
                return Err(exists_error(id));
            }
            Some(old)
        }
    };
    if let Some(old) = &replaced {
        check_if_match(old, if_match)?;
    }
    let now_s = txn.now_s;
    let record = match replaced {
        Some(old) => {
            remove_script(txn, cid, kind, &old.definition.id);
            ScriptRecord {
                ts: now_s,
                version: old.version + 1,
                definition,
                ..old
            }
        }
        None => {
            if txn.catalog.scripts_of(cid, kind).count() >= MAX_SCRIPTS_PER_CONTAINER {
                return Err(StoreError::LimitReached(format!(
                    "container '{}' already has {MAX_SCRIPTS_PER_CONTAINER} {}s, the most a container may have",
                    scope.container,
                    kind.as_str()
                )));
            }
            txn.catalog.counters.next_script_seq += 1;
            put_counters(txn);
            ScriptRecord {
                database_seq,
                cid,
                kind,
                seq: txn.catalog.counters.next_script_seq,
                ts: now_s,
                version: 1,
                definition,
            }
        }
    };
    let created = record.version == 1;
    let properties = record.properties();
    store_script(txn, record);
    Ok((properties, created))
}

pub(super) fn delete_script(
    txn: &mut Txn<'_>,
    scope: &ScriptScope,
    id: &str,
    if_match: Option<&str>,
) -> Result<()> {
    let record = txn
        .catalog
        .script(&scope.database, &scope.container, scope.kind, id)?;
    check_if_match(record, if_match)?;
    let cid = record.cid;
    remove_script(txn, cid, scope.kind, id);
    Ok(())
}

/// Removes every script of a container (with the container).
pub(super) fn delete_scripts_of(txn: &mut Txn<'_>, cid: u32) {
    let keys: Vec<(ScriptKind, String)> = txn
        .catalog
        .scripts
        .range((cid, ScriptKind::StoredProcedure, String::new())..)
        .take_while(|((owner, _, _), _)| *owner == cid)
        .map(|((_, kind, id), _)| (*kind, id.clone()))
        .collect();
    for (kind, id) in keys {
        remove_script(txn, cid, kind, &id);
    }
}
