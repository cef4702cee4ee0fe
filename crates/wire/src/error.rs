//! The JSON error body, status codes and sub-status codes.
//!
//! Every response with status ≥ 400 carries a JSON body `{"code", "message"}`:
//! the Node SDK throws a `TypeError` on an empty or non-JSON error body, and
//! both SDKs show `message` to the user. A sub-status, where one applies,
//! travels in the `x-ms-substatus` header ([`crate::headers::X_MS_SUBSTATUS`]).

use serde::{Deserialize, Serialize};

/// The body of an error response: `{"code":"NotFound","message":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The status name, as [`code_for_status`] gives it.
    pub code: String,
    /// What went wrong, for a human.
    pub message: String,
    /// More for the client to act on: Cosmos DB puts a query's plan here (as JSON text)
    /// when it answers 400 with sub-status 1004 (the query needs a client-side merge).
    #[serde(
        rename = "additionalErrorInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub additional_error_info: Option<String>,
}

impl ErrorBody {
    /// An error body for `status`, with its code from [`code_for_status`].
    ///
    /// ```
    /// let body = tributary_wire::error::ErrorBody::new(404, "Resource Not Found");
    /// assert_eq!(body.code, "NotFound");
    /// ```
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ErrorBody {
            code: code_for_status(status).to_owned(),
            message: message.into(),
            additional_error_info: None,
        }
    }
}

/// The `code` Cosmos DB puts in an error body for an HTTP status.
///
/// Statuses without a name of their own get the name of their class:
/// `BadRequest` for other 4xx, `InternalServerError` for everything else.
pub fn code_for_status(status: u16) -> &'static str {
    match status {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        408 => "RequestTimeout",
        409 => "Conflict",
        410 => "Gone",
        412 => "PreconditionFailed",
        413 => "RequestEntityTooLarge",
        424 => "FailedDependency",
        429 => "TooManyRequests",
        449 => "RetryWith",
        500 => "InternalServerError",
        503 => "ServiceUnavailable",
        507 => "InsufficientStorage",
        402..=499 => "BadRequest",
        _ => "InternalServerError",
    }
}

/// Sub-status codes, sent in `x-ms-substatus`. Each names the status it goes
/// with; the same number means different things under different statuses.
/// The values are those of the SDKs' `SubStatusCodes` tables.
pub mod substatus {
    /// 400: the partition key in the header does not match the document's.
    pub const PARTITION_KEY_MISMATCH: u32 = 1001;
    /// 400: the query needs a query plan; the SDK retries with one. A server
    /// that runs queries fully itself should never send it.
    pub const CROSS_PARTITION_QUERY_NOT_SERVABLE: u32 = 1004;
    /// 400: `x-ms-cosmos-intended-collection-rid` names another container
    /// (deleted and re-created); Python re-reads the container and retries.
    pub const COLLECTION_RID_MISMATCH: u32 = 1024;

    /// 403: writes are not allowed in this region.
    pub const WRITE_FORBIDDEN: u32 = 3;
    /// 403: the account does not exist; triggers endpoint discovery.
    pub const DATABASE_ACCOUNT_NOT_FOUND: u32 = 1008;

    /// 404: the session token asks for an LSN this replica has not reached;
    /// the SDK retries.
    pub const READ_SESSION_NOT_AVAILABLE: u32 = 1002;
    /// 404: the parent (database or container) of the resource does not exist.
    pub const OWNER_RESOURCE_NOT_FOUND: u32 = 1003;

    /// 410: the name cache is stale; the SDK refreshes it.
    pub const NAME_CACHE_IS_STALE: u32 = 1000;
    /// 410: the partition key range is gone (split or merged); the SDK
    /// re-reads the ranges and continues on the children.
    pub const PARTITION_KEY_RANGE_GONE: u32 = 1002;
    /// 410: a split of this range is in progress.
    pub const COMPLETING_SPLIT: u32 = 1007;
    /// 410: a migration of this range is in progress.
    pub const COMPLETING_PARTITION_MIGRATION: u32 = 1008;
}
