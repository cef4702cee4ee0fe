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

mod encoding;
mod lookup;
mod path;
mod policy;

pub use encoding::{MAX_INDEXED_STRING_BYTES, Scalar};
pub use lookup::{Lookup, LookupKind};
pub use path::{IndexPath, Step};
pub use policy::{IndexingMode, IndexingPolicy, PolicyError};
