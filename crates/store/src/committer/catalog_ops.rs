//! Catalog operations inside a commit group: databases and containers created, replaced and
//! deleted (a database with its users), shared throughput, the id counters, and the expiry index rebuilt when a
//! container's `defaultTtl` changes; a changed indexing policy starts a new index generation.

use std::sync::Arc;

use tributary_index::IndexingPolicy;

use super::maintenance::PURGE_META_PREFIX;
use super::script_ops::delete_scripts_of;
use super::user_ops::delete_users_of;
use crate::catalog::{
    Autoscale, ContainerDefinition, ContainerProperties, ContainerRecord, DatabaseProperties,
    DatabaseRecord, FeedState, MAX_FEED_RANGES, RangeRecord, initial_boundaries, validate_id,
};
use crate::document::expiry_second;
use crate::error::{Result, StoreError};
use crate::index::IndexState;
use crate::records::{
    COUNTERS_META_KEY, FeedRecord, container_meta_key, container_prefix, database_meta_key,
    doc_key, encode_ttl_value, log_key_lsn, log_key_segment, ttl_key,
};
use crate::storage::Space;
use crate::txn::Txn;

pub(super) fn create_database(
    txn: &mut Txn<'_>,
    id: String,
    throughput: Option<u64>,
    autoscale: Option<Autoscale>,
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
        autoscale: autoscale.filter(|_| throughput.is_some()),
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

pub(super) fn replace_database_throughput(
    txn: &mut Txn<'_>,
    id: &str,
    throughput: u64,
    autoscale: Option<Autoscale>,
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
    record.autoscale = autoscale;
    let bytes = serde_json::to_vec(&*record).expect("catalog records serialize");
    let properties = record.properties();
    txn.put(Space::Meta, database_meta_key(id), bytes);
    Ok(properties)
}

fn put_counters(txn: &mut Txn<'_>) {
    let counters = serde_json::to_vec(&txn.catalog.counters).expect("counters serialize");
    txn.put(Space::Meta, COUNTERS_META_KEY.to_vec(), counters);
}

pub(super) fn delete_database(txn: &mut Txn<'_>, id: &str) -> Result<()> {
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
    delete_users_of(txn, id);
    txn.catalog.databases.remove(id);
    txn.delete(Space::Meta, database_meta_key(id));
    Ok(())
}

pub(super) fn create_container(
    txn: &mut Txn<'_>,
    database: &str,
    definition: ContainerDefinition,
    initial_ranges: u32,
) -> Result<ContainerProperties> {
    definition.validate()?;
    checked_indexing_policy(&definition)?;
    // Checked on writes only: a stored definition from before these rules still opens.
    crate::search_policies::validate(
        &definition.other_properties,
        definition.indexing_policy.as_ref(),
    )?;
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
            item_count: Some(0),
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
            time_index_coarse_before: 0,
        },
        definition,
        index: IndexState::built(),
    };
    let properties = record.properties();
    txn.catalog.containers.insert(cid, Arc::new(record));
    txn.catalog.container_ids.insert(name, cid);
    txn.container_mut(cid);
    Ok(properties)
}

pub(super) fn replace_container(
    txn: &mut Txn<'_>,
    database: &str,
    definition: ContainerDefinition,
) -> Result<ContainerProperties> {
    definition.validate()?;
    let policy = checked_indexing_policy(&definition)?;
    // Checked on writes only: a stored definition from before these rules still opens.
    crate::search_policies::validate(
        &definition.other_properties,
        definition.indexing_policy.as_ref(),
    )?;
    let cid = txn.catalog.container(database, &definition.id)?.cid;
    let now_s = txn.now_s;
    let container = txn.container_mut(cid);
    if container.definition.partition_key != definition.partition_key {
        return Err(StoreError::BadRequest(
            "a container's partition key cannot be changed".into(),
        ));
    }
    crate::search_policies::check_replace(
        (
            &container.definition.other_properties,
            container.definition.indexing_policy.as_ref(),
        ),
        (
            &definition.other_properties,
            definition.indexing_policy.as_ref(),
        ),
    )?;
    let ttl_changed = container.definition.default_ttl != definition.default_ttl;
    let policy_changed = **container.indexing_policy() != policy;
    container.definition = definition;
    if policy_changed {
        // A new generation, built in the background; queries read items until it is.
        container.index = container.index.after_policy_change(&policy);
    }
    container.version += 1;
    container.ts = now_s;
    let default_ttl = container.definition.default_ttl;
    if ttl_changed {
        rebuild_expiry_index(txn, cid, default_ttl)?;
    }
    Ok(txn.catalog.containers[&cid].properties())
}

/// The indexing policy of a definition sent by a client.
///
/// # Errors
/// [`StoreError::BadRequest`] naming what is wrong with it.
fn checked_indexing_policy(definition: &ContainerDefinition) -> Result<IndexingPolicy> {
    IndexingPolicy::from_json(definition.indexing_policy.as_ref())
        .map_err(|error| StoreError::BadRequest(error.to_string()))
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

pub(super) fn delete_container(txn: &mut Txn<'_>, database: &str, id: &str) -> Result<()> {
    let cid = txn.catalog.container(database, id)?.cid;
    txn.catalog.containers.remove(&cid);
    txn.catalog
        .container_ids
        .remove(&(database.to_owned(), id.to_owned()));
    txn.delete(Space::Meta, container_meta_key(cid));
    delete_scripts_of(txn, cid);
    let mut purge_key = PURGE_META_PREFIX.to_vec();
    purge_key.extend_from_slice(&cid.to_be_bytes());
    txn.put(Space::Meta, purge_key, Vec::new());
    Ok(())
}
