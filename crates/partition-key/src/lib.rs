//! Partition keys and effective partition keys (EPKs) for Tributary, computed
//! bit for bit as the official Cosmos DB SDKs and the service compute them.
//!
//! A Cosmos container declares a [`PartitionKeyDefinition`]: one path
//! (`Hash`) or up to three (`MultiHash`, hierarchical keys), and a hashing
//! version. Every document's [`PartitionKey`] is read from those paths
//! ([`PartitionKey::extract`]) or sent by the client in the
//! `x-ms-documentdb-partitionkey` header ([`PartitionKey::from_header`]). The
//! key hashes to an [`Epk`], an uppercase hex string; physical partitions own
//! half-open [`EpkRange`]s that tile `["", "FF")`, and the SDKs address
//! sub-ranges with `x-ms-start-epk` / `x-ms-end-epk`. The server must therefore
//! compute exactly the EPK the SDKs compute, or a change feed scoped to a
//! partition key, or to a feed range, silently misses documents.
//!
//! The three hashing schemes (V2, MultiHash, V1) are described in the
//! `hashing` module. They are checked against the vectors in the project's
//! wire notes, the .NET baseline files carried by the official Rust driver, and
//! the unit tests of the JS, Python and Rust SDKs (see `tests/partition_key/vectors.rs`).
//!
//! # Example
//!
//! ```
//! use serde_json::json;
//! use tributary_partition_key::{PartitionKey, PartitionKeyDefinition};
//!
//! let definition = PartitionKeyDefinition::from_json(&json!({
//!     "paths": ["/pk"], "kind": "Hash", "version": 2
//! }))?;
//! let key = PartitionKey::extract(&definition, &json!({"id": "1", "pk": "p1"}))?;
//! assert_eq!(key, PartitionKey::from_header(r#"["p1"]"#)?);
//!
//! let epk = key.effective_partition_key(&definition)?;
//! assert_eq!(epk.as_str(), "062B23DEC15212F01B9A85F4E93A940C");
//! // What the Python SDK sends as x-ms-start-epk / x-ms-end-epk for this key.
//! let range = key.epk_range(&definition)?;
//! assert_eq!(range.max.as_str(), "062B23DEC15212F01B9A85F4E93A940D");
//!
//! // A hierarchical key's prefix stands for the range of all its completions.
//! let tenants = PartitionKeyDefinition::hierarchical(&["/tenant", "/user"])?;
//! let prefix = PartitionKey::from_header(r#"["a"]"#)?;
//! let full = PartitionKey::from_header(r#"["a","b"]"#)?;
//! let prefix_range = prefix.epk_range(&tenants)?;
//! assert!(prefix_range.contains(&full.effective_partition_key(&tenants)?));
//! # Ok::<(), tributary_partition_key::PartitionKeyError>(())
//! ```
//!
//! # What this crate is not
//!
//! It knows nothing of HTTP, storage or routing tables: it turns values into
//! EPKs and compares them. It is also deliberately incomplete in these ways:
//!
//! * **No `Range` partitioning.** The legacy `"kind": "Range"` is rejected.
//! * **No V1 `MultiHash`, and no multi-path V1.** The service has neither.
//! * **V1 follows .NET, the service's reference, not either SDK's bugs.** On negative
//!   numbers and `null`, where Python and JS disagree, JS agrees with .NET
//!   and so do we (Python casts negative integers to `UInt32` and writes no
//!   byte for `null`; it also hashes integers outside `0..2^32` through a
//!   32-bit cast, and cuts strings to 100 code points rather than 100 UTF-16
//!   units). The JS SDK (4.10.1) has two V1 bugs of its own that we do not
//!   copy: it drops the zero byte that ends the encoding of numbers such as
//!   `0`, `2` and `-2`, and it writes a string whose UTF-8 form is longer than
//!   100 bytes in full with a terminator, where .NET and Python cut it to 101
//!   bytes. For those values a Node client computes a different V1 EPK than
//!   the service; we match the service. `tests/partition_key/sdk_vectors.json`
//!   records every such case. Prefer V2, which every SDK computes identically.
//! * **Trailing zero bytes are significant.** `"80" < "8000"` here, while
//!   the real service treats padded hierarchical range boundaries as equal.
//!   Tributary creates its own boundaries and never pads them.
//! * **No infinity or NaN values.** JSON cannot carry them. The SDKs use an
//!   internal "infinity" key only to name the end of the key space; here that
//!   is [`Epk::max`].
//! * **Negative zero.** JSON `-0` and `-0.0` are negative zero, which, as in
//!   .NET and JS, hashes differently from `0` (Python parses `-0` as the
//!   integer 0).
//! * **Array indexing in paths.** A path that runs into an array gives
//!   `Undefined`; `/tags/0` does not read the first element.
//! * **Size.** A key's strings may hold at most
//!   [`MAX_PARTITION_KEY_VALUE_BYTES`] bytes in total, the service's 2 KiB
//!   limit; longer keys are rejected, not truncated.

mod definition;
mod epk;
mod error;
mod hashing;
mod key;

pub use definition::{
    MAX_PATHS, PartitionKeyDefinition, PartitionKeyKind, PartitionKeyVersion, parse_path,
};
pub use epk::{Epk, EpkRange, epk_midpoint};
pub use error::PartitionKeyError;
pub use key::{MAX_COMPONENTS, MAX_PARTITION_KEY_VALUE_BYTES, PartitionKey, PartitionKeyComponent};
