//! The store's error type: every way a request can fail, each naming what is wrong.

use std::path::PathBuf;

use tributary_partition_key::PartitionKeyError;

/// Everything a store operation can fail with.
///
/// Each variant is one kind of failure a caller can act on (absent, already there, a condition
/// that did not hold, a malformed request, busy, unavailable), so a server can choose its
/// answer without inspecting messages.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named database does not exist.
    #[error("database '{0}' does not exist")]
    DatabaseNotFound(String),
    /// The named container does not exist in the database.
    #[error("container '{container}' does not exist in database '{database}'")]
    ContainerNotFound {
        /// Database id.
        database: String,
        /// Container id.
        container: String,
    },
    /// The named user does not exist in the database.
    #[error("user '{user}' does not exist in database '{database}'")]
    UserNotFound {
        /// Database id.
        database: String,
        /// User id.
        user: String,
    },
    /// The named permission does not exist for the user.
    #[error("permission '{permission}' does not exist for user '{user}'")]
    PermissionNotFound {
        /// User id.
        user: String,
        /// Permission id.
        permission: String,
    },
    /// The named script does not exist in the container.
    #[error("{kind} '{id}' does not exist")]
    ScriptNotFound {
        /// What kind of script (`stored procedure`, `trigger`, `user-defined function`).
        kind: &'static str,
        /// Script id.
        id: String,
    },
    /// A script of this kind with this id already exists in the container.
    #[error("{kind} '{id}' already exists")]
    ScriptExists {
        /// What kind of script.
        kind: &'static str,
        /// Script id.
        id: String,
    },
    /// A user with this id already exists in the database.
    #[error("user '{0}' already exists")]
    UserExists(String),
    /// A permission with this id already exists for the user.
    #[error("permission '{0}' already exists for this user")]
    PermissionExists(String),
    /// A limit on users or permissions was reached; the message names it.
    #[error("{0}")]
    LimitReached(String),
    /// No item with this id exists under this partition key (or it has expired).
    #[error("item '{0}' does not exist")]
    ItemNotFound(String),
    /// A database with this id already exists.
    #[error("database '{0}' already exists")]
    DatabaseExists(String),
    /// A container with this id already exists in the database.
    #[error("container '{0}' already exists")]
    ContainerExists(String),
    /// An item with this id already exists under this partition key.
    #[error("an item with id '{0}' already exists under this partition key")]
    ItemExists(String),
    /// An `If-Match`/`If-None-Match` condition or a patch condition did not hold.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    /// The request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// A document exceeds the size limit.
    #[error("the document is {size} bytes, over the limit of {limit} bytes")]
    DocumentTooLarge {
        /// Serialized size of the document.
        size: usize,
        /// The limit it exceeded.
        limit: usize,
    },
    /// The partition key sent with a write is not the one the document holds.
    #[error(
        "the partition key extracted from the document ({document}) does not match the one specified in the request ({request})"
    )]
    PartitionKeyMismatch {
        /// The key found in the document, as JSON.
        document: String,
        /// The key the request named, as JSON.
        request: String,
    },
    /// The partition key value or definition is invalid.
    #[error("partition key: {0}")]
    PartitionKey(#[from] PartitionKeyError),
    /// The feed range no longer exists: it was split into the listed ranges.
    #[error("feed range '{range_id}' is gone; it was split into {replaced_by:?}")]
    RangeGone {
        /// Id of the range that was asked for.
        range_id: String,
        /// Ids of the current ranges that cover it.
        replaced_by: Vec<String>,
    },
    /// The feed range id was never part of this container.
    #[error("feed range '{0}' does not exist")]
    RangeNotFound(String),
    /// A change feed read asked for history that retention has already removed, or
    /// all-versions mode on a container without a retention policy.
    #[error("{0}")]
    OutsideRetention(String),
    /// A continuation token could not be used; the message says why.
    #[error("invalid continuation: {0}")]
    InvalidContinuation(String),
    /// An earlier storage failure (such as a failed fsync) stopped the store from accepting
    /// writes; reopen it to recover.
    #[error("the store stopped accepting writes after a storage failure: {0}")]
    Poisoned(String),
    /// The commit this operation was part of failed (a failed fsync, say): the operation may
    /// or may not be stored — read it back before relying on either — and the store accepts
    /// no more writes until it is reopened.
    #[error(
        "the commit of this operation failed ({0}): it may or may not have been stored; read it back before retrying. The store accepts no more writes until it is reopened"
    )]
    CommitFailed(String),
    /// The storage engine, or the file system under it, failed. The message says what the
    /// store was doing and includes the engine's message, so it reads as one line;
    /// [`std::error::Error::source`] gives the engine's error itself.
    #[error("storage failure: {context}: {source}")]
    Storage {
        /// What the store was doing, such as "cannot commit a batch".
        context: String,
        /// The error the storage engine or the operating system reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The data directory is held by another process (another store is open on it, such as
    /// a running `tributary serve`): one directory has one store at a time.
    #[error(
        "the data directory {} is in use by {} (it holds the directory's lock)",
        path.display(),
        holder.as_deref().unwrap_or("another process")
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
        /// The process holding it, as it recorded itself when it opened the directory
        /// (`process <pid> (<command line>)`), if it did.
        holder: Option<String>,
    },
    /// The disk holding the data directory has less free space than the store keeps in
    /// reserve ([`crate::StoreOptions::min_free_disk_bytes`]): the write was refused before
    /// anything of it was staged, so it is certainly not stored. Reads still work, and writes
    /// are accepted again, with no restart, as soon as enough space is free.
    #[error(
        "the disk holding {} has {} MiB free, below the {} MiB reserve; writes resume on their own when space is freed",
        path.display(),
        crate::disk_space::mib(*free_bytes),
        crate::disk_space::mib(*reserve_bytes)
    )]
    DiskFull {
        /// The data directory.
        path: PathBuf,
        /// Bytes free on its disk when last measured.
        free_bytes: u64,
        /// The reserve the store keeps free.
        reserve_bytes: u64,
    },
    /// Stored bytes failed to decode or a journal failed its check: the data changed on disk.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The store is shutting down.
    #[error("the store is shut down")]
    ShutDown,
    /// Too many requests are waiting for the committer; retry shortly.
    #[error("the store is busy: {0} requests are already waiting to be committed; retry shortly")]
    Overloaded(usize),
}

impl StoreError {
    /// A [`StoreError::Storage`]: what the store was doing, and the error that stopped it.
    pub(crate) fn storage(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Storage {
            context: context.into(),
            source: Box::new(source),
        }
    }
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
