//! The range index of a container's items, as Cosmos DB's indexing policy describes it.
//!
//! - [`IndexingPolicy`] reads a container's `indexingPolicy` (mode, included and excluded
//!   paths) and says which paths of an item it indexes.
//! - [`IndexingPolicy::terms`] turns an item into its index terms: one per indexed scalar,
//!   its path and value encoded so that byte order is Cosmos DB's value order (`null` <
//!   booleans < numbers < strings). Array elements are indexed under a `[]` step, whatever
//!   their position, as Cosmos DB's `/tags/[]/?` paths name them.
//! - [`Lookup`] is what a query asks of the index (equal to one of some values, in a range,
//!   starting with a prefix, on one path) and the byte ranges of terms that answer it.
//!
//! The store keeps one key per term and item version; this crate knows nothing of storage.
//! A lookup may return more items than the query wants (long strings are indexed by their
//! first [`MAX_INDEXED_STRING_BYTES`] bytes), never fewer: the caller runs the query's
//! filter on what it reads.
//!
//! # Example
//!
//! ```
//! use tributary_index::{IndexPath, IndexingPolicy, Lookup, LookupKind, Scalar, Step};
//!
//! let policy = IndexingPolicy::from_json(Some(&serde_json::json!({
//!     "includedPaths": [{"path": "/*"}],
//!     "excludedPaths": [{"path": "/notes/?"}],
//! })))
//! .unwrap();
//! let status = IndexPath(vec![Step::Property("status".into())]);
//! assert!(policy.indexes(&status));
//! assert!(!policy.indexes(&IndexPath(vec![Step::Property("notes".into())])));
//!
//! // An item's terms; the one for `status = "open"` lies in the lookup's byte range.
//! let item = serde_json::json!({"id": "1", "status": "open", "notes": "x"});
//! let terms = policy.terms(&item);
//! let lookup = Lookup { path: status, kind: LookupKind::Equal(vec![Scalar::String("open".into())]) };
//! let ranges = lookup.term_ranges();
//! assert!(terms.iter().any(|term| ranges.iter().any(|(start, end)| start <= term && term < end)));
//! ```

mod encoding;
mod lookup;
mod path;
mod policy;

pub use encoding::{MAX_INDEXED_STRING_BYTES, Scalar};
pub use lookup::{Lookup, LookupKind};
pub use path::{IndexPath, Step};
pub use policy::{IndexingMode, IndexingPolicy, PolicyError};
