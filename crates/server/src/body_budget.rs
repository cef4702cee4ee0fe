//! The server's budget for request bodies in memory: a request reserves its body's size
//! (its `content-length`, or the largest body allowed when it sends none) before the body is
//! read, and holds it until it is answered. Past the budget the answer is `429` with
//! `x-ms-retry-after-ms`, which the SDKs retry, so a flood of large writes costs bounded
//! memory instead of a queue that grows until the process is killed.

use std::sync::Arc;

use axum::body::{Body, HttpBody as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;
use crate::request::MAX_REQUEST_BODY_BYTES;

/// The bytes of request bodies the server holds at once.
pub(crate) struct BodyBudget {
    bytes: Arc<Semaphore>,
    limit: usize,
}

impl BodyBudget {
    /// A budget of `limit` bytes; never less than one largest body, so any valid request
    /// can be served alone.
    pub(crate) fn new(limit: usize) -> BodyBudget {
        let limit = limit.max(MAX_REQUEST_BODY_BYTES);
        BodyBudget {
            bytes: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// Reserves the body a request announces (its exact size when known, as from
    /// `content-length`, else the largest body allowed); the reservation lasts as long as the
    /// returned permit. `None` for a request without a body.
    ///
    /// # Errors
    /// 413 when the announced body is larger than any request may be; 429 when the budget
    /// is spent by requests in progress.
    pub(crate) fn reserve(&self, body: &Body) -> Result<Option<OwnedSemaphorePermit>, ApiError> {
        if body.is_end_stream() {
            return Ok(None);
        }
        let bytes = match body.size_hint().exact() {
            Some(0) => return Ok(None),
            Some(length) if length > MAX_REQUEST_BODY_BYTES as u64 => {
                return Err(body_too_large());
            }
            Some(length) => length as usize,
            // A chunked body may be as large as any body: it reserves the most.
            None => MAX_REQUEST_BODY_BYTES,
        };
        let permits = u32::try_from(bytes).expect("a body is at most MAX_REQUEST_BODY_BYTES");
        Arc::clone(&self.bytes)
            .try_acquire_many_owned(permits)
            .map(Some)
            .map_err(|_| {
                tracing::warn!(
                    limit_bytes = self.limit,
                    "request refused: request bodies in progress fill the server's memory budget"
                );
                ApiError::new(
                    429,
                    format!(
                        "the server is holding {} MiB of request bodies in progress, its limit \
                         (--max-request-memory-mib); retry shortly",
                        self.limit / (1024 * 1024)
                    ),
                )
            })
    }
}

/// The 413 for a body larger than [`MAX_REQUEST_BODY_BYTES`].
pub(crate) fn body_too_large() -> ApiError {
    ApiError::new(
        413,
        format!("the request body is larger than {MAX_REQUEST_BODY_BYTES} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(bytes: usize) -> Body {
        Body::from(vec![b'x'; bytes])
    }

    #[test]
    fn bodies_past_the_budget_wait_for_the_ones_in_progress_to_be_answered() {
        let budget = BodyBudget::new(MAX_REQUEST_BODY_BYTES);
        let half = MAX_REQUEST_BODY_BYTES / 2;
        let first = budget.reserve(&body_of(half)).expect("fits");
        let second = budget.reserve(&body_of(half)).expect("fits");
        let refused = budget
            .reserve(&body_of(1))
            .expect_err("the budget is spent");
        assert_eq!(refused.status, 429);
        assert!(
            refused.message.contains("retry shortly"),
            "{}",
            refused.message
        );
        drop(first);
        assert!(budget.reserve(&body_of(1)).expect("fits again").is_some());
        drop(second);
    }

    #[test]
    fn empty_bodies_reserve_nothing_unknown_sizes_the_most_and_oversized_ones_are_refused() {
        let budget = BodyBudget::new(0);
        let all = budget
            .reserve(&body_of(MAX_REQUEST_BODY_BYTES))
            .expect("the budget holds at least one largest body");
        assert!(budget.reserve(&Body::empty()).expect("no body").is_none());
        assert_eq!(
            budget
                .reserve(&body_of(MAX_REQUEST_BODY_BYTES + 1))
                .expect_err("too large")
                .status,
            413
        );
        drop(all);
        let stream = Body::from_stream(futures::stream::iter([Ok::<_, std::io::Error>(
            bytes::Bytes::from_static(b"{}"),
        )]));
        let _most = budget.reserve(&stream).expect("fits alone");
        assert_eq!(
            budget
                .reserve(&body_of(1))
                .expect_err("the unknown size reserved all")
                .status,
            429
        );
    }
}
