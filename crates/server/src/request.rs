//! One parsed request and the response helpers every route uses.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::Value;
use tributary_partition_key::PartitionKey;
use tributary_wire::{binary_json, headers};

use crate::error::ApiError;

/// Number of items in a feed response.
pub(crate) const X_MS_ITEM_COUNT: &str = "x-ms-item-count";
/// The LSN of the write or read, as the real service reports it.
pub(crate) const LSN_HEADER: &str = "lsn";

/// Largest request body accepted: an item is at most 2 MB, a batch of them somewhat more.
pub const MAX_REQUEST_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A request after routing: its verb, decoded path segments, headers and body.
pub(crate) struct RequestContext {
    pub method: Method,
    pub segments: Vec<String>,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
    /// `http` or `https`, and the `Host` the client used: the account document echoes them.
    pub scheme: &'static str,
    pub host: String,
}

impl RequestContext {
    /// A header's value as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    }

    /// Whether the client asked for no body in write responses (`Prefer: return=minimal`:
    /// Python's `no_response=True`, Node's `contentResponseOnWriteEnabled: false`).
    pub fn prefers_minimal(&self) -> bool {
        self.header(headers::PREFER)
            .is_some_and(|p| p.eq_ignore_ascii_case(headers::values::PREFER_RETURN_MINIMAL))
    }

    /// A boolean header (`True`/`true`/`False`/`false`); absent = false.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        flag(&self.headers, name)
    }

    /// The body parsed as JSON text, or decoded from Cosmos binary JSON (first byte `0x80`,
    /// the official Rust SDK's default encoding for item bodies).
    pub fn json(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::bad_request("the request needs a JSON body"));
        }
        if binary_json::is_binary(&self.body) {
            return binary_json::decode(&self.body).map_err(|e| {
                ApiError::bad_request(format!(
                    "the request body is Cosmos binary JSON that cannot be decoded: {e}"
                ))
            });
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
    }

    /// The `x-ms-documentdb-partitionkey` header, parsed.
    pub fn partition_key(&self) -> Result<Option<PartitionKey>, ApiError> {
        match self.header(headers::X_MS_DOCUMENTDB_PARTITIONKEY) {
            None => Ok(None),
            Some(value) => PartitionKey::from_header(value).map(Some).map_err(|e| {
                ApiError::bad_request(format!(
                    "header '{}' is invalid: {e}",
                    headers::X_MS_DOCUMENTDB_PARTITIONKEY
                ))
            }),
        }
    }

    /// `x-ms-max-item-count`, or `default` when absent or -1.
    pub fn max_item_count(&self, default: usize) -> Result<usize, ApiError> {
        match self.header(headers::X_MS_MAX_ITEM_COUNT) {
            None => Ok(default),
            Some(value) => headers::parse_max_item_count(value)
                .map(|n| n.unwrap_or(default))
                .map_err(|e| ApiError::bad_request(e.to_string())),
        }
    }
}

/// A boolean header of `headers` (`True`/`true`/`False`/`false`); absent = false.
pub(crate) fn flag(headers: &HeaderMap, name: &str) -> Result<bool, ApiError> {
    let value = headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    match value {
        None => Ok(false),
        Some(value) => headers::parse_bool_header(value).ok_or_else(|| {
            ApiError::bad_request(format!(
                "header '{name}' must be true or false, not '{value}'"
            ))
        }),
    }
}

/// A response under construction: status, headers and body.
pub(crate) struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
    request_charge: f64,
}

impl Reply {
    /// A JSON response with `body`.
    pub fn json(status: u16, body: impl Into<Body>) -> Reply {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            headers,
            body: body.into(),
            request_charge: 1.0,
        }
    }

    /// A response with a body of another type than JSON (the Explorer's assets, its feed
    /// streams).
    pub fn typed(status: u16, content_type: &'static str, body: impl Into<Body>) -> Reply {
        let mut reply = Reply::json(status, body);
        reply.headers.insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        reply
    }

    /// A response without a body (204, 304).
    pub fn empty(status: u16) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT),
            headers: HeaderMap::new(),
            body: Body::empty(),
            request_charge: 1.0,
        }
    }

    /// Adds a header (values that are not valid header text are dropped).
    pub fn header(mut self, name: &'static str, value: impl AsRef<str>) -> Reply {
        if let Ok(value) = HeaderValue::from_str(value.as_ref()) {
            self.headers.insert(name, value);
        }
        self
    }

    /// Sets the request charge (request units) reported in `x-ms-request-charge`.
    pub fn charge(mut self, request_units: f64) -> Reply {
        self.request_charge = request_units;
        self
    }

    pub fn into_response(self) -> Response {
        let mut response = Response::new(self.body);
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        if let Ok(value) = HeaderValue::from_str(&format!("{:.2}", self.request_charge)) {
            response
                .headers_mut()
                .insert(headers::X_MS_REQUEST_CHARGE, value);
        }
        response
    }
}

/// Request units for reading or writing `n_bytes` of items, roughly as Cosmos DB charges:
/// about 1 RU per KB read, about 5 RU per KB written.
pub(crate) fn charge_for(n_bytes: usize, write: bool) -> f64 {
    let kilobytes = (n_bytes as f64 / 1024.0).max(1.0);
    if write {
        4.0 + kilobytes * 1.5
    } else {
        kilobytes
    }
}

/// `{"_rid": rid, "<key>": [items...], "_count": n}` from items that are already JSON text.
pub(crate) fn feed_body(rid: &str, key: &str, items: &[String]) -> String {
    let capacity = items.iter().map(String::len).sum::<usize>() + items.len() + 64;
    let mut body = String::with_capacity(capacity);
    body.push_str("{\"_rid\":");
    body.push_str(&Value::String(rid.to_owned()).to_string());
    body.push_str(",\"");
    body.push_str(key);
    body.push_str("\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(item);
    }
    body.push_str("],\"_count\":");
    body.push_str(&items.len().to_string());
    body.push('}');
    body
}
