//! The parts of the Azure Cosmos DB REST protocol that a Tributary server and
//! a Tributary client share, as plain types and functions.
//!
//! The official SDKs (Python `azure-cosmos`, Node `@azure/cosmos`) talk to a
//! Cosmos endpoint over HTTP with a handful of conventions that both ends
//! must get exactly right, or the SDKs fail in confusing ways:
//!
//! * [`auth`]: every request is signed with the account master key
//!   (HMAC-SHA256 over verb, resource type, resource link and date). The
//!   server rebuilds the resource address from the path, recomputes the
//!   signature and checks the date; a client signs the same way.
//! * [`resource_token`]: the tokens a user's permission hands out, minted and
//!   checked by the server (opaque to clients), signed with a key derived from
//!   the primary master key.
//! * [`headers`]: the header names, the well-known values (`A-IM`, API
//!   version), and parsers for the values that come in several spellings
//!   (`True`/`true`, `-1` page sizes, RFC 1123 dates).
//! * [`error`]: the `{"code","message"}` error body, the code for each
//!   status, and the sub-status codes the SDKs react to.
//! * [`session`]: `x-ms-session-token` values (`0:-1#12`).
//! * [`time`]: RFC 3339 times (`2026-12-01T10:00:00Z`), as change feed start times are
//!   given outside HTTP headers.
//! * [`binary_json`]: a read-only decoder for Cosmos binary JSON, the
//!   encoding the official Rust SDK sends item bodies in (first byte `0x80`).
//!
//! # Example
//!
//! A client signs a request; the server checks it.
//!
//! ```
//! use std::time::SystemTime;
//! use tributary_wire::auth::{self, MasterKey, EMULATOR_KEY, DEFAULT_MAX_CLOCK_SKEW};
//! use tributary_wire::headers::format_http_date;
//!
//! let key = MasterKey::from_base64(EMULATOR_KEY)?;
//! let now = SystemTime::now();
//! let date = format_http_date(now);
//!
//! // Client: sign `GET /dbs/db1/colls/c1/docs/a`.
//! let address = auth::resource_of_path("/dbs/db1/colls/c1/docs/a")?;
//! assert_eq!(address.resource_type, "docs");
//! assert_eq!(address.resource_link, "dbs/db1/colls/c1/docs/a");
//! let authorization = auth::authorization_header(
//!     &key, "GET", &address.resource_type, &address.resource_link, &date,
//! );
//! assert!(authorization.starts_with("type%3Dmaster%26ver%3D1.0%26sig%3D"));
//!
//! // Server: the Python SDK sends the same path with a trailing slash.
//! let address = auth::resource_of_path("/dbs/db1/colls/c1/docs/a/")?;
//! auth::verify(
//!     &key, "GET", &address, Some(&authorization), Some(&date), None,
//!     now, DEFAULT_MAX_CLOCK_SKEW,
//! )?;
//!
//! // A request signed with another key is refused with 401, and the message
//! // shows what the server signed.
//! let other_key = MasterKey::from_base64("c2VjcmV0")?;
//! let forged = auth::authorization_header(
//!     &other_key, "GET", &address.resource_type, &address.resource_link, &date,
//! );
//! let error = auth::verify(
//!     &key, "GET", &address, Some(&forged), Some(&date), None, now, DEFAULT_MAX_CLOCK_SKEW,
//! ).unwrap_err();
//! assert_eq!(error.http_status(), 401);
//! assert!(error.to_string().contains("get\\ndocs\\ndbs/db1/colls/c1/docs/a\\n"));
//! # Ok::<(), auth::AuthError>(())
//! ```
//!
//! # What this crate is not
//!
//! It has no HTTP framework dependency and does no I/O: header values go in
//! as `&str`, and routing, body limits, response building and the mapping of
//! errors to responses belong to the server. It does not know the resource
//! JSON shapes (databases, containers, documents, change feed pages); it does
//! not decide what a resource token grants (the server reads its permission),
//! nor check Microsoft Entra ID (AAD) tokens, which [`auth::verify`] refuses
//! by name; and it does not parse continuation
//! tokens, whose format belongs to whoever issues them.

pub mod auth;
pub mod binary_json;
pub mod error;
pub mod headers;
pub mod resource_token;
pub mod session;
pub mod time;

/// How many characters of an untrusted value an error message quotes.
const MAX_QUOTED_CHARS: usize = 64;

/// At most [`MAX_QUOTED_CHARS`] characters of an untrusted value, followed by
/// `...` when cut, for error messages.
fn quoted_excerpt(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}...", &value[..cut]),
        None => value.to_owned(),
    }
}
