//! Errors as the SDKs expect them: a status, an optional sub-status, and a JSON body
//! `{"code", "message"}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tributary_store::StoreError;
use tributary_wire::auth::AuthError;
use tributary_wire::error::{ErrorBody, substatus};
use tributary_wire::headers;

/// How long a client is told to wait before retrying a write refused for a full disk
/// (`x-ms-retry-after-ms` on a 507): freeing space is an operator's work, not a moment's.
pub(crate) const DISK_FULL_RETRY_AFTER_MS: u32 = 1_000;

/// A request that cannot be served, as the client will see it.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// `x-ms-substatus`, where one applies.
    pub substatus: Option<u32>,
    /// What went wrong.
    pub message: String,
    /// `additionalErrorInfo` of the body: for a query the gateway does not serve whole
    /// (sub-status 1004), its query plan as JSON text.
    pub additional_error_info: Option<String>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            substatus: None,
            additional_error_info: None,
            message: message.into(),
        }
    }

    /// A 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, message)
    }

    /// A 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, message)
    }
}

/// The Cosmos DB status code a store error is answered with.
pub(crate) fn store_error_status(error: &StoreError) -> u16 {
    match error {
        StoreError::DatabaseNotFound(_)
        | StoreError::ContainerNotFound { .. }
        | StoreError::ItemNotFound(_)
        | StoreError::UserNotFound { .. }
        | StoreError::PermissionNotFound { .. }
        | StoreError::ScriptNotFound { .. }
        | StoreError::RangeNotFound(_) => 404,
        StoreError::DatabaseExists(_)
        | StoreError::ContainerExists(_)
        | StoreError::UserExists(_)
        | StoreError::PermissionExists(_)
        | StoreError::ScriptExists { .. }
        | StoreError::ItemExists(_) => 409,
        // Cosmos DB answers a resource quota reached with 403.
        StoreError::LimitReached(_) => 403,
        StoreError::PreconditionFailed(_) => 412,
        StoreError::BadRequest(_)
        | StoreError::PartitionKeyMismatch { .. }
        | StoreError::PartitionKey(_)
        | StoreError::InvalidContinuation(_)
        | StoreError::OutsideRetention(_) => 400,
        StoreError::DocumentTooLarge { .. } => 413,
        StoreError::Overloaded(_) => 429,
        StoreError::RangeGone { .. } => 410,
        StoreError::DiskFull { .. } => 507,
        StoreError::Poisoned(_)
        | StoreError::CommitFailed(_)
        | StoreError::Storage { .. }
        | StoreError::Locked { .. }
        | StoreError::Corrupt(_)
        | StoreError::ShutDown => 503,
        // `StoreError` is non-exhaustive: a kind of failure this server does not know yet is
        // its own fault until it is mapped here.
        _ => 500,
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let status = store_error_status(&error);
        let substatus = match &error {
            StoreError::RangeGone { .. } => Some(substatus::PARTITION_KEY_RANGE_GONE),
            StoreError::PartitionKeyMismatch { .. } => Some(substatus::PARTITION_KEY_MISMATCH),
            _ => None,
        };
        // The store logs entering and leaving the disk-full state once; per request it
        // would flood the log while the disk stays full.
        if status >= 500 && !matches!(error, StoreError::DiskFull { .. }) {
            tracing::error!(%error, "store failure");
        }
        ApiError {
            status,
            substatus,
            additional_error_info: None,
            message: error.to_string(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ApiError::new(error.http_status(), error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = ErrorBody::new(self.status, self.message);
        body.additional_error_info = self.additional_error_info;
        let body = serde_json::to_string(&body).expect("error bodies serialize");
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, body).into_response();
        let response_headers = response.headers_mut();
        response_headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(substatus) = self.substatus {
            response_headers.insert(headers::X_MS_SUBSTATUS, HeaderValue::from(substatus));
        }
        match self.status {
            429 => {
                response_headers.insert(headers::X_MS_RETRY_AFTER_MS, HeaderValue::from(100u32));
            }
            507 => {
                response_headers.insert(
                    headers::X_MS_RETRY_AFTER_MS,
                    HeaderValue::from(DISK_FULL_RETRY_AFTER_MS),
                );
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_failures_that_a_retry_elsewhere_can_fix_are_503() {
        for error in [
            StoreError::Poisoned("injected".into()),
            StoreError::Locked {
                path: "/data".into(),
                holder: None,
            },
            StoreError::Corrupt("a bad record".into()),
            StoreError::ShutDown,
        ] {
            assert_eq!(store_error_status(&error), 503, "{error}");
        }
    }

    #[test]
    fn a_full_committer_queue_is_a_429_with_the_sdks_retry_after_header() {
        let response = ApiError::from(StoreError::Overloaded(10)).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response
                .headers()
                .get(headers::X_MS_RETRY_AFTER_MS)
                .and_then(|v| v.to_str().ok()),
            Some("100")
        );
    }

    #[test]
    fn a_full_disk_is_a_507_naming_the_cause_with_a_retry_after_header() {
        let response = ApiError::from(StoreError::DiskFull {
            path: "/data".into(),
            free_bytes: 5 * 1024 * 1024,
            reserve_bytes: 256 * 1024 * 1024,
        })
        .into_response();
        assert_eq!(response.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(
            response
                .headers()
                .get(headers::X_MS_RETRY_AFTER_MS)
                .and_then(|v| v.to_str().ok()),
            Some("1000")
        );
    }

    #[test]
    fn client_errors_keep_their_cosmos_status_and_substatus() {
        let cases = [
            (StoreError::ItemNotFound("a".into()), 404, None),
            (StoreError::ItemExists("a".into()), 409, None),
            (StoreError::PreconditionFailed("etag".into()), 412, None),
            (StoreError::Overloaded(10), 429, None),
            (
                StoreError::RangeGone {
                    range_id: "0".into(),
                    replaced_by: vec!["1".into(), "2".into()],
                },
                410,
                Some(substatus::PARTITION_KEY_RANGE_GONE),
            ),
        ];
        for (error, status, expected_substatus) in cases {
            let api = ApiError::from(error);
            assert_eq!(
                (api.status, api.substatus),
                (status, expected_substatus),
                "{}",
                api.message
            );
        }
    }
}
