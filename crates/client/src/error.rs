//! What can go wrong talking to a Cosmos endpoint, and how an error response becomes a
//! [`ClientError`].

use std::time::Duration;

use tributary_wire::error::substatus;
use tributary_wire::headers;

use crate::response::Response;

/// How many characters of an error response's message a [`ClientError`] quotes.
pub const MAX_QUOTED_MESSAGE_CHARS: usize = 500;

/// Why a request failed.
///
/// Statuses the callers act on have their own variants (404, 409, 410, 412, 429); every other
/// unexpected status is [`ClientError::Status`]. Messages quote at most
/// [`MAX_QUOTED_MESSAGE_CHARS`] characters of what the server said.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The connection string is not `AccountEndpoint=...;AccountKey=...;`.
    #[error("invalid connection string: {0}")]
    InvalidConnectionString(String),
    /// The endpoint is not an `http://` or `https://` URL with a host.
    #[error("invalid endpoint '{endpoint}': {reason}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The account key is not a valid base64 master key.
    #[error("invalid account key: {0}")]
    InvalidKey(String),
    /// The TLS configuration could not be built.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The request cannot be sent as asked (an unsignable path, a header that is not a valid
    /// header value, a page size of zero).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The connection failed, or broke before the whole response was read.
    #[error("{method} {path}: {reason}")]
    Transport {
        /// The request's verb.
        method: String,
        /// The request's path.
        path: String,
        /// What failed.
        reason: String,
    },
    /// No complete response arrived in time (connecting included).
    #[error("{method} {path}: no complete response within {timeout:?}")]
    Timeout {
        /// The request's verb.
        method: String,
        /// The request's path.
        path: String,
        /// How long the client waited.
        timeout: Duration,
    },
    /// The response body is longer than the client reads.
    #[error("{method} {path}: the response body is larger than {limit_bytes} bytes")]
    ResponseTooLarge {
        /// The request's verb.
        method: String,
        /// The request's path.
        path: String,
        /// The limit, [`crate::MAX_RESPONSE_BODY_BYTES`].
        limit_bytes: usize,
    },
    /// A paged answer had more pages than the client follows.
    #[error("{path}: more than {limit} pages; narrow the request")]
    TooManyPages {
        /// The request's path.
        path: String,
        /// The limit, [`crate::MAX_PAGES`].
        limit: usize,
    },
    /// A successful response that does not have the expected shape.
    #[error("unexpected response: {0}")]
    InvalidResponse(String),
    /// 404: the resource does not exist.
    #[error("not found (404): {message}")]
    NotFound {
        /// The server's message.
        message: String,
    },
    /// 409: a resource with that id already exists.
    #[error("conflict (409): {message}")]
    Conflict {
        /// The server's message.
        message: String,
    },
    /// 412: the `If-Match` etag is no longer the resource's etag.
    #[error("precondition failed (412): {message}")]
    PreconditionFailed {
        /// The server's message.
        message: String,
    },
    /// 410: the resource is gone; for the change feed of a partition key range, sub-status
    /// 1002 means the range was split (see [`ClientError::is_split`]).
    #[error("gone (410, sub-status {substatus}): {message}")]
    Gone {
        /// The `x-ms-substatus` value, 0 if absent.
        substatus: u32,
        /// The server's message.
        message: String,
    },
    /// 429: too many requests; retry after the given time.
    #[error("throttled (429); retry after {retry_after:?}")]
    Throttled {
        /// The server's `x-ms-retry-after-ms`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// Any other status the operation does not expect.
    #[error("unexpected status {status} (sub-status {substatus:?}): {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The `x-ms-substatus` value, if any.
        substatus: Option<u32>,
        /// The server's message, or the start of the body.
        message: String,
    },
}

impl ClientError {
    /// Whether this is the answer to a request on a partition key range that was split (or
    /// is being split or moved): a 410 with sub-status 1002, 1007 or 1008. The caller reads
    /// the current ranges again and continues on the ranges that replaced it.
    pub fn is_split(&self) -> bool {
        matches!(
            self,
            ClientError::Gone { substatus: code, .. }
                if *code == substatus::PARTITION_KEY_RANGE_GONE
                    || *code == substatus::COMPLETING_SPLIT
                    || *code == substatus::COMPLETING_PARTITION_MIGRATION
        )
    }

    /// The error for a response whose status the operation does not expect.
    pub(crate) fn from_response(response: &Response) -> ClientError {
        let message = error_message(response);
        match response.status {
            404 => ClientError::NotFound { message },
            409 => ClientError::Conflict { message },
            412 => ClientError::PreconditionFailed { message },
            410 => ClientError::Gone {
                substatus: response.substatus().unwrap_or(0),
                message,
            },
            429 => ClientError::Throttled {
                retry_after: response
                    .header(headers::X_MS_RETRY_AFTER_MS)
                    .and_then(|ms| ms.trim().parse::<f64>().ok())
                    .filter(|ms| ms.is_finite() && *ms >= 0.0)
                    .map(|ms| Duration::from_secs_f64(ms / 1000.0)),
            },
            status => ClientError::Status {
                status,
                substatus: response.substatus(),
                message,
            },
        }
    }
}

/// The `message` of a Cosmos error body (`{"code", "message"}`), or else the start of the
/// body as text; at most [`MAX_QUOTED_MESSAGE_CHARS`] characters.
fn error_message(response: &Response) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|body| body.get("message")?.as_str().map(str::to_owned));
    let text = match from_json {
        Some(message) => message,
        None if response.body.is_empty() => format!("(no body; status {})", response.status),
        None => String::from_utf8_lossy(&response.body).into_owned(),
    };
    quoted(&text)
}

/// At most [`MAX_QUOTED_MESSAGE_CHARS`] characters of `text`, followed by `...` when cut.
pub(crate) fn quoted(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use hyper::HeaderMap;

    use super::*;

    fn response(status: u16, headers: &[(&'static str, &str)], body: &str) -> Response {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("a valid header value"));
        }
        Response {
            status,
            headers: map,
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn statuses_become_the_variants_callers_act_on() {
        let cases = [
            (
                response(404, &[], r#"{"code":"NotFound","message":"no such item"}"#),
                ClientError::NotFound {
                    message: "no such item".to_owned(),
                },
            ),
            (
                response(409, &[], "taken"),
                ClientError::Conflict {
                    message: "taken".to_owned(),
                },
            ),
            (
                response(412, &[], ""),
                ClientError::PreconditionFailed {
                    message: "(no body; status 412)".to_owned(),
                },
            ),
            (
                response(410, &[("x-ms-substatus", "1002")], r#"{"message":"split"}"#),
                ClientError::Gone {
                    substatus: 1002,
                    message: "split".to_owned(),
                },
            ),
            (
                response(429, &[("x-ms-retry-after-ms", "250")], ""),
                ClientError::Throttled {
                    retry_after: Some(Duration::from_millis(250)),
                },
            ),
            (
                response(429, &[("x-ms-retry-after-ms", "soon")], ""),
                ClientError::Throttled { retry_after: None },
            ),
            (
                response(503, &[("x-ms-substatus", "7")], "busy"),
                ClientError::Status {
                    status: 503,
                    substatus: Some(7),
                    message: "busy".to_owned(),
                },
            ),
        ];
        for (response, expected) in cases {
            assert_eq!(ClientError::from_response(&response), expected);
        }
    }

    #[test]
    fn a_split_is_a_410_with_a_partition_gone_substatus() {
        for (substatus, is_split) in [
            (1002, true),
            (1007, true),
            (1008, true),
            (1000, false),
            (0, false),
        ] {
            let error = ClientError::Gone {
                substatus,
                message: String::new(),
            };
            assert_eq!(error.is_split(), is_split, "sub-status {substatus}");
        }
        let not_gone = ClientError::Status {
            status: 404,
            substatus: Some(1002),
            message: String::new(),
        };
        assert!(!not_gone.is_split());
    }

    #[test]
    fn a_long_message_is_cut() {
        let long = "x".repeat(MAX_QUOTED_MESSAGE_CHARS + 10);
        let ClientError::Status { message, .. } =
            ClientError::from_response(&response(500, &[], &long))
        else {
            panic!("a 500 is a Status error");
        };
        assert_eq!(message.chars().count(), MAX_QUOTED_MESSAGE_CHARS + 3);
        assert!(message.ends_with("..."));
    }
}
