//! The public shapes of item operations: what a caller asks for and what it gets back.

use serde_json::Value;
use tributary_partition_key::PartitionKey;
use tributary_patch::PatchRequest;

use crate::error::StoreError;

/// A stored item version as returned to callers.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The item's id.
    pub id: String,
    /// The full JSON text, system properties included.
    pub body: String,
    /// `_etag` (quoted).
    pub etag: String,
    /// `_lsn`: the LSN of this version.
    pub lsn: u64,
    /// `_ts`: seconds since the epoch.
    pub ts: u64,
}

impl Item {
    /// Parses the body.
    ///
    /// # Panics
    /// Never for items produced by the store: their bodies are always valid JSON.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.body).expect("stored item bodies are valid JSON")
    }
}

/// A condition on the item's current `_etag`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// `If-Match`: the item must exist with this etag (`*` = any).
    IfMatch(String),
    /// `If-None-Match`: the item must not have this etag (`*` = must not exist).
    IfNoneMatch(String),
}

/// What a write does.
#[derive(Clone, Debug)]
pub enum WriteKind {
    /// Insert; fails with [`StoreError::ItemExists`] if the id exists under the partition key.
    Create,
    /// Insert or replace.
    Upsert,
    /// Replace an existing item; fails with [`StoreError::ItemNotFound`] if missing.
    Replace,
    /// Delete an existing item; fails with [`StoreError::ItemNotFound`] if missing.
    Delete,
    /// Apply partial-update operations to an existing item.
    Patch(PatchRequest),
    /// Read (only inside a transactional batch).
    Read,
}

/// One item operation.
#[derive(Clone, Debug)]
pub struct ItemWrite {
    /// What to do.
    pub kind: WriteKind,
    /// The item id: required for replace, delete, patch and read; for create and upsert the
    /// body's id is used (and must equal this one if both are given). A replace whose body
    /// carries another id renames the item (`ItemExists` if that id is taken).
    pub id: Option<String>,
    /// The partition key; required when there is no body to take it from.
    pub partition_key: Option<PartitionKey>,
    /// The new item for create, upsert and replace.
    pub body: Option<Value>,
    /// Optional ETag condition.
    pub precondition: Option<Precondition>,
}

impl ItemWrite {
    /// A create of `body`.
    pub fn create(body: Value) -> Self {
        ItemWrite {
            kind: WriteKind::Create,
            id: None,
            partition_key: None,
            body: Some(body),
            precondition: None,
        }
    }

    /// An upsert of `body`.
    pub fn upsert(body: Value) -> Self {
        ItemWrite {
            kind: WriteKind::Upsert,
            ..ItemWrite::create(body)
        }
    }

    /// A replace of item `id` by `body`.
    pub fn replace(id: impl Into<String>, body: Value) -> Self {
        ItemWrite {
            kind: WriteKind::Replace,
            id: Some(id.into()),
            ..ItemWrite::create(body)
        }
    }

    /// A delete of item `id` under `partition_key`.
    pub fn delete(partition_key: PartitionKey, id: impl Into<String>) -> Self {
        ItemWrite {
            kind: WriteKind::Delete,
            id: Some(id.into()),
            partition_key: Some(partition_key),
            body: None,
            precondition: None,
        }
    }

    /// A patch of item `id` under `partition_key`.
    pub fn patch(partition_key: PartitionKey, id: impl Into<String>, patch: PatchRequest) -> Self {
        ItemWrite {
            kind: WriteKind::Patch(patch),
            ..ItemWrite::delete(partition_key, id)
        }
    }

    /// A read of item `id` (for transactional batches).
    pub fn read(partition_key: PartitionKey, id: impl Into<String>) -> Self {
        ItemWrite {
            kind: WriteKind::Read,
            ..ItemWrite::delete(partition_key, id)
        }
    }

    /// Adds an ETag condition.
    pub fn with_precondition(mut self, precondition: Precondition) -> Self {
        self.precondition = Some(precondition);
        self
    }

    /// Names the partition key explicitly (it must match the body's).
    pub fn with_partition_key(mut self, partition_key: PartitionKey) -> Self {
        self.partition_key = Some(partition_key);
        self
    }
}

/// What happened to the item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteStatus {
    /// A new item was created.
    Created,
    /// An existing item was replaced or patched.
    Replaced,
    /// The item was deleted.
    Deleted,
    /// The item was read (batches only).
    Read,
}

/// The result of one successful operation.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteOutcome {
    /// What happened.
    pub status: WriteStatus,
    /// The item after the operation (`None` for deletes).
    pub item: Option<Item>,
}

/// One operation's result inside a transaction.
#[derive(Debug)]
pub enum OperationResult {
    /// The operation succeeded (and was committed with the others).
    Done(WriteOutcome),
    /// The operation failed, so nothing in the transaction was committed.
    Failed(StoreError),
    /// The operation was not applied because another one failed (Cosmos DB answers such an
    /// operation with 424, Failed Dependency).
    NotApplied,
}

/// The result of a transaction: one entry per operation, in order.
#[derive(Debug)]
pub struct TransactionOutcome {
    /// Whether every operation succeeded and all were committed together.
    pub committed: bool,
    /// Per-operation results.
    pub results: Vec<OperationResult>,
}

/// One operation of a multi-container transaction.
#[derive(Clone, Debug)]
pub struct TransactionOperation {
    /// Container id (in the transaction's database).
    pub container: String,
    /// The operation.
    pub write: ItemWrite,
}

/// Most operations in one transaction, as in Cosmos DB's transactional batch.
pub const MAX_TRANSACTION_OPERATIONS: usize = 100;

/// One operation of a transaction across databases
/// ([`Store::transaction_across_databases`](crate::Store::transaction_across_databases)).
#[derive(Clone, Debug)]
pub struct CrossDatabaseOperation {
    /// Database id.
    pub database: String,
    /// Container id (in `database`).
    pub container: String,
    /// The operation.
    pub write: ItemWrite,
}

/// Most operations in one transaction across databases. Far above
/// [`MAX_TRANSACTION_OPERATIONS`]: such transactions come from callers in this process (a
/// functions host commits a batch's outputs with its lease checkpoint), never from the wire.
pub const MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS: usize = 10_000;

/// Most bytes of item bodies (as given, without system properties) that one transaction
/// across databases may write, so that one commit group stays bounded in memory.
pub const MAX_CROSS_CONTAINER_TRANSACTION_BYTES: usize = 64 * 1024 * 1024;
