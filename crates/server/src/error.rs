//! Errors as the SDKs expect them: a status, an optional sub-status, and a JSON body
//! `{"code", "message"}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tributary_store::StoreError;
use tributary_wire::auth::AuthError;
use tributary_wire::error::{ErrorBody, substatus};
use tributary_wire::headers;

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
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            substatus: None,
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

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let status = error.status_code();
        let substatus = match &error {
            StoreError::RangeGone { .. } => Some(substatus::PARTITION_KEY_RANGE_GONE),
            StoreError::PartitionKeyMismatch { .. } => Some(substatus::PARTITION_KEY_MISMATCH),
            _ => None,
        };
        if status >= 500 {
            tracing::error!(%error, "store failure");
        }
        ApiError {
            status,
            substatus,
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
        let body = serde_json::to_string(&ErrorBody::new(self.status, self.message))
            .expect("error bodies serialize");
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
        if self.status == 429 {
            response_headers.insert(headers::X_MS_RETRY_AFTER_MS, HeaderValue::from(100u32));
        }
        response
    }
}
