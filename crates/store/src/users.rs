//! Users and their permissions: the shapes clients see and the records the catalog keeps.
//!
//! A user belongs to a database and holds permissions; a permission grants a mode (read, or
//! everything) on one resource, named by a link (`dbs/db/colls/c`, or by resource ids), and
//! optionally only under one partition key. The store keeps what was sent and checks only its
//! form: the resource need not exist (Cosmos DB accepts a permission on any link), and what a
//! permission allows is the server's business. A user's permissions live in the user's record,
//! so renaming or deleting a user carries or removes them in one write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tributary_partition_key::PartitionKey;

use crate::catalog::{database_rid, validate_id};
use crate::error::{Result, StoreError};

/// Most permissions one user may hold: a user's record holds them all and is rewritten on
/// every change to any of them.
pub const MAX_PERMISSIONS_PER_USER: usize = 1024;

/// Most users one database may have.
pub const MAX_USERS_PER_DATABASE: usize = 100_000;

/// Longest resource link a permission may name, in bytes.
pub const MAX_RESOURCE_LINK_BYTES: usize = 2048;

/// What a permission allows on its resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PermissionMode {
    /// Reads only: point reads, feeds, queries, the change feed.
    Read,
    /// Reads and writes of the resource's items.
    All,
}

impl PermissionMode {
    /// The name Cosmos DB uses in `permissionMode`: `Read` or `All`.
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::Read => "Read",
            PermissionMode::All => "All",
        }
    }
}

/// What a client says a permission is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PermissionDefinition {
    /// Permission id, unique within its user.
    pub id: String,
    /// What it allows.
    pub mode: PermissionMode,
    /// `permissionMode` as the client spelled it (`Read`, `read`, `all`, ...), which Cosmos
    /// DB returns unchanged (both SDKs send lowercase and compare what comes back).
    pub mode_as_sent: String,
    /// The resource's link as sent (name-based or by resource ids), without surrounding `/`.
    pub resource: String,
    /// The partition key the permission is limited to (a JSON array, as in
    /// `x-ms-documentdb-partitionkey`), if any.
    pub resource_partition_key: Option<Value>,
}

impl PermissionDefinition {
    /// Reads a definition from the JSON body Cosmos clients send: `id`, `permissionMode`
    /// (`Read` or `All`, in any case), `resource`, and optionally `resourcePartitionKey` (an
    /// array, or one value that stands for a one-element array). System properties (`_rid`,
    /// `_token`, ...) are ignored.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] naming the missing or invalid field.
    pub fn from_json(value: &Value) -> Result<Self> {
        let object = value.as_object().ok_or_else(|| {
            StoreError::BadRequest("the permission definition must be a JSON object".into())
        })?;
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                StoreError::BadRequest("the permission definition needs a string 'id'".into())
            })?
            .to_owned();
        let mode_as_sent = object
            .get("permissionMode")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mode = match object.get("permissionMode").and_then(Value::as_str) {
            Some(mode) if mode.eq_ignore_ascii_case("read") => PermissionMode::Read,
            Some(mode) if mode.eq_ignore_ascii_case("all") => PermissionMode::All,
            Some(mode) => {
                return Err(StoreError::BadRequest(format!(
                    "'permissionMode' must be 'Read' or 'All', not '{mode}'"
                )));
            }
            None => {
                return Err(StoreError::BadRequest(
                    "the permission definition needs a 'permissionMode' ('Read' or 'All')".into(),
                ));
            }
        };
        let resource = object
            .get("resource")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                StoreError::BadRequest(
                    "the permission definition needs a string 'resource' (a link such as 'dbs/db/colls/c')"
                        .into(),
                )
            })?
            .trim_matches('/')
            .to_owned();
        let resource_partition_key = match object.get("resourcePartitionKey") {
            None | Some(Value::Null) => None,
            Some(Value::Array(components)) => Some(Value::Array(components.clone())),
            Some(single) => Some(Value::Array(vec![single.clone()])),
        };
        let definition = PermissionDefinition {
            id,
            mode,
            mode_as_sent,
            resource,
            resource_partition_key,
        };
        definition.validate()?;
        Ok(definition)
    }

    /// Checks the definition's own rules: a valid id, a mode spelled as itself, a resource link that starts with
    /// `dbs/`, has no empty segment and is at most [`MAX_RESOURCE_LINK_BYTES`] long, and a
    /// partition key that is one.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] naming the rule broken.
    pub fn validate(&self) -> Result<()> {
        validate_id("permission", &self.id)?;
        if !self.mode_as_sent.eq_ignore_ascii_case(self.mode.as_str()) {
            return Err(StoreError::BadRequest(format!(
                "'permissionMode' '{}' does not spell mode {}",
                self.mode_as_sent,
                self.mode.as_str()
            )));
        }
        if self.resource.len() > MAX_RESOURCE_LINK_BYTES {
            return Err(StoreError::BadRequest(format!(
                "the permission's 'resource' is {} bytes long, over {MAX_RESOURCE_LINK_BYTES}",
                self.resource.len()
            )));
        }
        if !self.resource.starts_with("dbs/") || self.resource.split('/').any(str::is_empty) {
            return Err(StoreError::BadRequest(format!(
                "the permission's 'resource' must be a resource link such as 'dbs/db/colls/c', not '{}'",
                self.resource
            )));
        }
        if let Some(partition_key) = &self.resource_partition_key {
            PartitionKey::from_json(partition_key).map_err(|error| {
                StoreError::BadRequest(format!(
                    "the permission's 'resourcePartitionKey' {partition_key} is not a partition key: {error}"
                ))
            })?;
        }
        Ok(())
    }
}

/// A user's system properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserProperties {
    /// The database id.
    pub database: String,
    /// User id.
    pub id: String,
    /// Resource id (base64 of 8 bytes: the database's 4, then the user's 4).
    pub rid: String,
    /// The database's resource id.
    pub database_rid: String,
    /// Creation or last replace time, seconds.
    pub ts: u64,
    /// Entity tag (quoted); changes on every replace.
    pub etag: String,
}

/// A permission's definition and system properties.
#[derive(Clone, Debug, PartialEq)]
pub struct PermissionProperties {
    /// The database id.
    pub database: String,
    /// The user id.
    pub user: String,
    /// What the client defined.
    pub definition: PermissionDefinition,
    /// Resource id (base64 of 16 bytes: the user's 8, then the permission's 8); a permission
    /// deleted and created again under the same id gets a new one.
    pub rid: String,
    /// The user's resource id.
    pub user_rid: String,
    /// The database's resource id.
    pub database_rid: String,
    /// Creation or last replace time, seconds.
    pub ts: u64,
    /// Entity tag (quoted); changes on every replace.
    pub etag: String,
}

/// A permission as the catalog keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct PermissionRecord {
    /// Unique across the store, never reused.
    pub seq: u64,
    pub ts: u64,
    /// Bumped on every replace.
    pub version: u64,
    pub definition: PermissionDefinition,
}

/// A user as the catalog keeps it, with its permissions by id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    pub database: String,
    pub database_seq: u32,
    pub id: String,
    /// Unique across the store, never reused.
    pub seq: u32,
    pub ts: u64,
    /// Bumped on every replace.
    pub version: u64,
    pub permissions: BTreeMap<String, PermissionRecord>,
}

impl UserRecord {
    fn rid_bytes(&self) -> [u8; 8] {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&self.database_seq.to_be_bytes());
        bytes[4..].copy_from_slice(&self.seq.to_be_bytes());
        bytes
    }

    pub(crate) fn properties(&self) -> UserProperties {
        UserProperties {
            database: self.database.clone(),
            id: self.id.clone(),
            rid: crate::catalog::encode_rid(&self.rid_bytes()),
            database_rid: database_rid(self.database_seq),
            ts: self.ts,
            etag: format!("\"{:08x}-0001-0000-0000-{:012x}\"", self.seq, self.version),
        }
    }

    pub(crate) fn permission_properties(&self, record: &PermissionRecord) -> PermissionProperties {
        let user = self.properties();
        let mut rid = [0u8; 16];
        rid[..8].copy_from_slice(&self.rid_bytes());
        rid[8..].copy_from_slice(&record.seq.to_be_bytes());
        PermissionProperties {
            database: self.database.clone(),
            user: self.id.clone(),
            definition: record.definition.clone(),
            rid: crate::catalog::encode_rid(&rid),
            user_rid: user.rid,
            database_rid: user.database_rid,
            ts: record.ts,
            etag: format!(
                "\"{:016x}-0002-0000-{:012x}\"",
                record.seq,
                record.version & 0xffff_ffff_ffff
            ),
        }
    }

    /// Reads a user record as stored in the meta keyspace (JSON) and checks its ids.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the fault.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = |fault: String| StoreError::Corrupt(format!("user record: {fault}"));
        let record: UserRecord =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        validate_id("user", &record.id).map_err(|e| corrupt(e.to_string()))?;
        for (id, permission) in &record.permissions {
            if *id != permission.definition.id {
                return Err(corrupt(format!(
                    "permission '{}' is filed under '{id}'",
                    permission.definition.id
                )));
            }
            permission
                .definition
                .validate()
                .map_err(|e| corrupt(e.to_string()))?;
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_permission_body_is_read_as_cosmos_sends_it() {
        let definition = PermissionDefinition::from_json(&json!({
            "id": "p", "permissionMode": "read", "resource": "dbs/db/colls/c/",
            "resourcePartitionKey": ["tenant-1"], "_token": "ignored"
        }))
        .unwrap();
        assert_eq!(definition.mode, PermissionMode::Read);
        assert_eq!(definition.mode_as_sent, "read");
        assert_eq!(definition.resource, "dbs/db/colls/c");
        assert_eq!(definition.resource_partition_key, Some(json!(["tenant-1"])));
        let single = PermissionDefinition::from_json(
            &json!({"id": "p", "permissionMode": "All", "resource": "dbs/d", "resourcePartitionKey": 1}),
        )
        .unwrap();
        assert_eq!(single.resource_partition_key, Some(json!([1])));
    }

    #[test]
    fn bad_permission_bodies_say_what_is_wrong() {
        for (body, expected) in [
            (json!([]), "JSON object"),
            (
                json!({"permissionMode": "All", "resource": "dbs/d"}),
                "string 'id'",
            ),
            (
                json!({"id": "p", "permissionMode": "Write", "resource": "dbs/d"}),
                "'Read' or 'All'",
            ),
            (json!({"id": "p", "resource": "dbs/d"}), "permissionMode"),
            (json!({"id": "p", "permissionMode": "All"}), "'resource'"),
            (
                json!({"id": "p", "permissionMode": "All", "resource": "colls/c"}),
                "resource link",
            ),
            (
                json!({"id": "a/b", "permissionMode": "All", "resource": "dbs/d"}),
                "not allowed",
            ),
            (
                json!({"id": "p", "permissionMode": "All", "resource": "dbs/d", "resourcePartitionKey": [[1]]}),
                "not a partition key",
            ),
        ] {
            let error = PermissionDefinition::from_json(&body).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{body}: {error} lacks {expected}"
            );
        }
    }
}
