//! Users and permissions inside a commit group: created, upserted, replaced (renamed) and
//! deleted, and a database's users removed with it.
//!
//! A user's record holds its permissions, so every operation here rewrites one record (a
//! rename deletes the old key and writes the new one). Every check comes before the first
//! staged write, so a failed operation leaves nothing behind without a savepoint.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::catalog::validate_id;
use crate::error::{Result, StoreError};
use crate::records::{COUNTERS_META_KEY, user_meta_key};
use crate::storage::Space;
use crate::txn::Txn;
use crate::users::{
    MAX_PERMISSIONS_PER_USER, MAX_USERS_PER_DATABASE, PermissionDefinition, PermissionProperties,
    PermissionRecord, UserProperties, UserRecord,
};

/// How a user or permission is written.
#[derive(Debug)]
pub(crate) enum Put {
    /// A new one; an existing id is a conflict.
    Create,
    /// A new one, or the one with the same id replaced.
    Upsert,
    /// The one with this id replaced, possibly under the definition's new id.
    Replace { id: String },
}

/// Stages the catalog's counters (after a sequence number was taken).
pub(super) fn put_counters(txn: &mut Txn<'_>) {
    let counters = serde_json::to_vec(&txn.catalog.counters).expect("counters serialize");
    txn.put(Space::Meta, COUNTERS_META_KEY.to_vec(), counters);
}

fn store_user(txn: &mut Txn<'_>, record: UserRecord) {
    txn.put(
        Space::Meta,
        user_meta_key(record.database_seq, &record.id),
        serde_json::to_vec(&record).expect("catalog records serialize"),
    );
    Arc::make_mut(&mut txn.catalog.users)
        .insert((record.database.clone(), record.id.clone()), record);
}

fn remove_user(txn: &mut Txn<'_>, database: &str, id: &str) -> Option<UserRecord> {
    let key = (database.to_owned(), id.to_owned());
    if !txn.catalog.users.contains_key(&key) {
        return None;
    }
    let record = Arc::make_mut(&mut txn.catalog.users).remove(&key)?;
    txn.delete(Space::Meta, user_meta_key(record.database_seq, id));
    Some(record)
}

/// Writes a user; the outcome says whether it was created.
pub(super) fn put_user(
    txn: &mut Txn<'_>,
    database: &str,
    id: String,
    put: Put,
) -> Result<(UserProperties, bool)> {
    validate_id("user", &id)?;
    let database_seq = txn.catalog.database(database)?.seq;
    let exists = |txn: &Txn<'_>, id: &str| {
        txn.catalog
            .users
            .contains_key(&(database.to_owned(), id.to_owned()))
    };
    let replaced = match &put {
        Put::Create if exists(txn, &id) => return Err(StoreError::UserExists(id)),
        Put::Create => None,
        Put::Upsert => exists(txn, &id).then(|| id.clone()),
        Put::Replace { id: old_id } => {
            txn.catalog.user(database, old_id)?;
            if *old_id != id && exists(txn, &id) {
                return Err(StoreError::UserExists(id));
            }
            Some(old_id.clone())
        }
    };
    let now_s = txn.now_s;
    let record = match replaced {
        Some(old_id) => {
            let mut record =
                remove_user(txn, database, &old_id).expect("the user was checked to exist");
            record.id = id;
            record.ts = now_s;
            record.version += 1;
            record
        }
        None => {
            if txn.catalog.users_of(database).count() >= MAX_USERS_PER_DATABASE {
                return Err(StoreError::LimitReached(format!(
                    "database '{database}' already has {MAX_USERS_PER_DATABASE} users, the most a database may have"
                )));
            }
            txn.catalog.counters.next_user_seq += 1;
            put_counters(txn);
            UserRecord {
                database: database.to_owned(),
                database_seq,
                id,
                seq: txn.catalog.counters.next_user_seq,
                ts: now_s,
                version: 1,
                permissions: BTreeMap::new(),
            }
        }
    };
    let created = record.version == 1;
    let properties = record.properties();
    store_user(txn, record);
    Ok((properties, created))
}

pub(super) fn delete_user(txn: &mut Txn<'_>, database: &str, id: &str) -> Result<()> {
    txn.catalog.user(database, id)?;
    remove_user(txn, database, id);
    Ok(())
}

/// Removes every user of a database (with the database).
pub(super) fn delete_users_of(txn: &mut Txn<'_>, database: &str) {
    let ids: Vec<String> = txn
        .catalog
        .users_of(database)
        .map(|user| user.id.clone())
        .collect();
    for id in ids {
        remove_user(txn, database, &id);
    }
}

/// Writes a permission of a user; the outcome says whether it was created.
pub(super) fn put_permission(
    txn: &mut Txn<'_>,
    database: &str,
    user: &str,
    definition: PermissionDefinition,
    put: Put,
) -> Result<(PermissionProperties, bool)> {
    definition.validate()?;
    let mut record = txn.catalog.user(database, user)?.clone();
    let id = definition.id.clone();
    let replaced = match &put {
        Put::Create if record.permissions.contains_key(&id) => {
            return Err(StoreError::PermissionExists(id));
        }
        Put::Create => None,
        Put::Upsert => record.permissions.contains_key(&id).then(|| id.clone()),
        Put::Replace { id: old_id } => {
            if !record.permissions.contains_key(old_id) {
                return Err(StoreError::PermissionNotFound {
                    user: user.to_owned(),
                    permission: old_id.clone(),
                });
            }
            if *old_id != id && record.permissions.contains_key(&id) {
                return Err(StoreError::PermissionExists(id));
            }
            Some(old_id.clone())
        }
    };
    let now_s = txn.now_s;
    let permission = match replaced {
        Some(old_id) => {
            let mut permission = record
                .permissions
                .remove(&old_id)
                .expect("the permission was checked to exist");
            permission.definition = definition;
            permission.ts = now_s;
            permission.version += 1;
            permission
        }
        None => {
            if record.permissions.len() >= MAX_PERMISSIONS_PER_USER {
                return Err(StoreError::LimitReached(format!(
                    "user '{user}' already has {MAX_PERMISSIONS_PER_USER} permissions, the most a user may have"
                )));
            }
            txn.catalog.counters.next_permission_seq += 1;
            put_counters(txn);
            PermissionRecord {
                seq: txn.catalog.counters.next_permission_seq,
                ts: now_s,
                version: 1,
                definition,
            }
        }
    };
    let created = permission.version == 1;
    let properties = record.permission_properties(&permission);
    record.permissions.insert(id, permission);
    store_user(txn, record);
    Ok((properties, created))
}

pub(super) fn delete_permission(
    txn: &mut Txn<'_>,
    database: &str,
    user: &str,
    id: &str,
) -> Result<()> {
    let mut record = txn.catalog.user(database, user)?.clone();
    if record.permissions.remove(id).is_none() {
        return Err(StoreError::PermissionNotFound {
            user: user.to_owned(),
            permission: id.to_owned(),
        });
    }
    store_user(txn, record);
    Ok(())
}
