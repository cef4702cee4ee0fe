//! The processor's errors.

use std::time::Duration;

/// What can go wrong while reading the monitored container's feed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// The monitored container (or its database) does not exist.
    #[error("the monitored container does not exist: {0}")]
    ContainerNotFound(String),
    /// The source asked us to slow down.
    #[error("the change feed source is throttling requests (retry after {retry_after:?})")]
    Throttled {
        /// How long the source asked us to wait, if it said.
        retry_after: Option<Duration>,
    },
    /// The source refused a continuation (for example, it is outside the retention of an
    /// all-versions-and-deletes feed).
    #[error("the change feed source refused the position: {0}")]
    InvalidPosition(String),
    /// Any other failure of the source (network, server error); retried with back-off.
    #[error("the change feed source failed: {0}")]
    Source(String),
}

/// What can go wrong in the lease container.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseStoreError {
    /// A document with this id already exists.
    #[error("lease document '{0}' already exists")]
    Conflict(String),
    /// The document changed since it was read (its `_etag` no longer matches).
    #[error("lease document '{0}' changed since it was read")]
    PreconditionFailed(String),
    /// The document does not exist.
    #[error("lease document '{0}' does not exist")]
    NotFound(String),
    /// A stored document is not a lease this processor can read.
    #[error("lease document '{id}' is malformed: {reason}")]
    Malformed {
        /// The document's id.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other failure (network, server error, throttling); the outcome of a write that
    /// failed this way is unknown.
    #[error("the lease container failed: {0}")]
    Unavailable(String),
    /// The lease container cannot do what was asked: it cannot commit other writes with a
    /// lease, or not this many (see [`LeaseContainer::supports_attached_writes`]). Nothing
    /// was written.
    ///
    /// [`LeaseContainer::supports_attached_writes`]: crate::LeaseContainer::supports_attached_writes
    #[error("unsupported by this lease container: {0}")]
    Unsupported(String),
    /// A write attached to a lease write was refused (its database or container is
    /// missing, its document is invalid, ...), so neither it nor the lease was written.
    #[error(
        "the write to '{database}'/'{container}' attached to the lease write was refused: {reason}"
    )]
    AttachedWriteFailed {
        /// The write's database.
        database: String,
        /// The write's container.
        container: String,
        /// What was wrong.
        reason: String,
    },
}

/// Errors of the processor's public operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessorError {
    /// The builder was given an invalid setting.
    #[error("invalid processor configuration: {0}")]
    Config(String),
    /// `start` was called on a processor that is running.
    #[error("the processor is already running")]
    AlreadyRunning,
    /// A lease's mode differs from the processor's (switching modes on existing leases is
    /// refused, as the .NET SDK does).
    #[error(
        "lease '{lease}' was written by a processor in mode '{lease_mode}', but this processor reads '{processor_mode}'; use another processor name or delete the leases"
    )]
    ModeMismatch {
        /// The lease id.
        lease: String,
        /// The mode recorded in the lease.
        lease_mode: String,
        /// The processor's mode.
        processor_mode: String,
    },
    /// The lease container failed.
    #[error(transparent)]
    LeaseStore(#[from] LeaseStoreError),
    /// The monitored feed failed.
    #[error(transparent)]
    Feed(#[from] FeedError),
    /// Imported lease state is not valid.
    #[error("invalid lease export: {0}")]
    InvalidExport(String),
}
