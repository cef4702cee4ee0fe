//! Cosmos DB partial document update ("patch") for `serde_json` documents.
//!
//! A `PATCH` request on a document carries a list of operations, inspired by
//! JSON Patch (RFC 6902) with Cosmos DB's own additions and limits. This
//! crate parses that body ([`PatchRequest::from_json`]) and applies the
//! operations to a document ([`apply`]), with the semantics Microsoft
//! documents in "Partial document update in Azure Cosmos DB":
//!
//! | op | on an object member | on an array element |
//! |---|---|---|
//! | `add` | create or replace | insert at index `0..=len` (`-` appends) |
//! | `set` | create or replace | replace at an existing index |
//! | `replace` | replace; must exist | replace at an existing index |
//! | `remove` | remove; must exist | remove at an existing index, later ones shift down |
//! | `incr` | add to a number, or create it | add to the number at an existing index |
//! | `move` | `remove` at `from`, then `add` at `path` | same |
//!
//! In every case the parent of the target must already exist: patch never
//! creates intermediate objects. Two integers add up to an integer, anything
//! else to a float. The operations apply in order, and all or nothing: on any
//! error the document is left untouched.
//!
//! # Limits
//!
//! * at most [`MAX_OPERATIONS`] (10) operations per request, Cosmos' limit;
//! * no operation may touch a system property ([`SYSTEM_PROPERTIES`]: `id`,
//!   `_rid`, `_etag`, `_ts`, `_self`, `_lsn`, `_attachments`);
//! * paths are at most [`MAX_PATH_LEN`] bytes and [`MAX_PATH_SEGMENTS`]
//!   segments; the document root cannot be patched.
//!
//! # Example
//!
//! ```
//! use serde_json::json;
//! use tributary_patch::{apply, PatchRequest};
//!
//! let mut bicycle = json!({
//!     "id": "e379aea5", "name": "R-410 Road Bicycle", "price": 455.95,
//!     "inventory": {"quantity": 15}, "used": false, "tags": ["r-series"]
//! });
//! let request = PatchRequest::from_json(&json!({"operations": [
//!     {"op": "add", "path": "/color", "value": "silver"},
//!     {"op": "remove", "path": "/used"},
//!     {"op": "set", "path": "/price", "value": 355.45},
//!     {"op": "incr", "path": "/inventory/quantity", "value": 10},
//!     {"op": "add", "path": "/tags/-", "value": "featured-bikes"},
//!     {"op": "move", "from": "/color", "path": "/inventory/color"}
//! ]}))?;
//! apply(&mut bicycle, &request.operations)?;
//! assert_eq!(bicycle, json!({
//!     "id": "e379aea5", "name": "R-410 Road Bicycle", "price": 355.45,
//!     "inventory": {"quantity": 25, "color": "silver"},
//!     "tags": ["r-series", "featured-bikes"]
//! }));
//!
//! let error = PatchRequest::from_json(&json!([{"op": "set", "path": "/_etag", "value": "x"}]))
//!     .unwrap_err();
//! assert!(error.to_string().contains("Can't patch system property '_etag'"));
//! # Ok::<(), tributary_patch::PatchError>(())
//! ```
//!
//! # What this crate is not
//!
//! It does not evaluate the request's `condition` (a SQL filter: the query
//! engine's job), check `If-Match`, or know which property is the
//! container's partition key: the caller must refuse a patch that changes
//! the partition key value, and must set the system properties of the
//! result. It keeps object member order (it relies on `serde_json`'s
//! `preserve_order`, which the workspace enables) and does not implement
//! RFC 6902's `copy` and `test`, which Cosmos DB does not have either.

mod apply;
mod error;
mod pointer;
mod request;

pub use apply::apply;
pub use error::PatchError;
pub use request::{PatchOperation, PatchRequest};

/// The most operations one patch request may carry (Cosmos DB's limit).
pub const MAX_OPERATIONS: usize = 10;

/// Top-level properties no patch operation may touch: the document id and
/// the properties the store maintains.
pub const SYSTEM_PROPERTIES: &[&str] = &[
    "id",
    "_rid",
    "_etag",
    "_ts",
    "_self",
    "_lsn",
    "_attachments",
];

/// The longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 2048;

/// The most segments a path may have.
pub const MAX_PATH_SEGMENTS: usize = 128;
