//! A response read whole: status, headers and body.

use bytes::Bytes;
use hyper::HeaderMap;
use tributary_wire::headers;

/// A whole HTTP response, whatever its status.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, at most [`crate::MAX_RESPONSE_BODY_BYTES`] long.
    pub body: Bytes,
}

impl Response {
    /// A header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `x-ms-substatus` value, if present and a number.
    pub fn substatus(&self) -> Option<u32> {
        self.header(headers::X_MS_SUBSTATUS)
            .and_then(|v| v.trim().parse().ok())
    }
}
