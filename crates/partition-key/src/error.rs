//! The one error type of this crate.
//!
//! Every variant names the offending input (a path, a component index, a hex
//! string) so that the server can pass the message through to the client as a
//! Cosmos-style 400 body without adding context of its own.

/// Everything that can go wrong while parsing partition key definitions and
/// values, extracting keys from documents, or computing effective partition keys.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PartitionKeyError {
    /// The partition key definition is not a JSON object.
    #[error("partition key definition must be a JSON object, got {found}")]
    DefinitionNotObject {
        /// The JSON type that was found instead.
        found: &'static str,
    },
    /// The definition has no `paths` field.
    #[error("partition key definition has no \"paths\" field")]
    MissingPaths,
    /// A field of the definition has the wrong JSON type.
    #[error("partition key definition field \"{field}\" must be {expected}, got {found}")]
    InvalidDefinitionField {
        /// The field name as it appears in JSON.
        field: &'static str,
        /// What the field must hold.
        expected: &'static str,
        /// The JSON type that was found instead.
        found: &'static str,
    },
    /// The definition has no paths, or more than [`crate::MAX_PATHS`].
    #[error(
        "{} partition key paths: the definition has {n_paths} paths; it must have between 1 and 3",
        if *n_paths == 0 { "Too few" } else { "Too many" }
    )]
    PathCount {
        /// How many paths the definition has.
        n_paths: usize,
    },
    /// A path is not of the form `/segment[/segment...]`.
    #[error("partition key path {path:?} is invalid: {reason}")]
    InvalidPath {
        /// The path as written in the definition.
        path: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The same path appears twice in one definition.
    #[error("partition key path {path:?} appears more than once in the definition")]
    DuplicatePath {
        /// The repeated path.
        path: String,
    },
    /// `kind` is neither `Hash` nor `MultiHash` (for example the legacy `Range`).
    #[error("partition key kind {kind:?} is not supported; use \"Hash\" or \"MultiHash\"")]
    UnsupportedKind {
        /// The kind as written in the definition.
        kind: String,
    },
    /// `version` is neither 1 nor 2.
    #[error("partition key version {version} is not supported; use 1 or 2")]
    UnsupportedVersion {
        /// The version as written in the definition.
        version: String,
    },
    /// A `Hash` definition has more than one path.
    #[error(
        "a \"Hash\" partition key definition takes exactly one path, got {n_paths}; use \"MultiHash\" for hierarchical keys"
    )]
    HashNeedsOnePath {
        /// How many paths the definition has.
        n_paths: usize,
    },
    /// A `MultiHash` definition asks for hashing version 1.
    #[error("a \"MultiHash\" partition key definition requires version 2")]
    MultiHashNeedsV2,
    /// The `x-ms-documentdb-partitionkey` header is not JSON.
    #[error("partition key header is not valid JSON: {0}")]
    HeaderNotJson(#[source] serde_json::Error),
    /// The partition key header is JSON but not an array.
    #[error("partition key header must be a JSON array such as [\"value\"], got {found}")]
    HeaderNotArray {
        /// The JSON type that was found instead.
        found: &'static str,
    },
    /// A partition key component is an array or a non-empty object.
    #[error(
        "partition key component {index} is {found}; a component must be a string, number, boolean, null or {{}} (undefined)"
    )]
    InvalidComponent {
        /// Zero-based position of the component in the key.
        index: usize,
        /// What was found instead.
        found: &'static str,
    },
    /// A partition key value has more components than any definition allows.
    #[error("partition key value has {n_components} components; at most 3 are allowed")]
    TooManyComponents {
        /// How many components the value has.
        n_components: usize,
    },
    /// The strings of a partition key value are too long.
    #[error(
        "partition key value has {n_bytes} bytes of string data; the limit is {} bytes",
        crate::MAX_PARTITION_KEY_VALUE_BYTES
    )]
    ValueTooLarge {
        /// Total UTF-8 length of the string components.
        n_bytes: usize,
    },
    /// The document a key is extracted from is not a JSON object.
    #[error("document must be a JSON object to extract a partition key, got {found}")]
    DocumentNotObject {
        /// The JSON type that was found instead.
        found: &'static str,
    },
    /// The number of components does not fit the definition.
    #[error(
        "partition key has {n_components} components but the {kind} definition has {n_paths} paths{}",
        if *kind == crate::PartitionKeyKind::MultiHash { " (a MultiHash key may be a prefix, but not longer)" } else { "" }
    )]
    ComponentCountMismatch {
        /// How many components the key has.
        n_components: usize,
        /// How many paths the definition has.
        n_paths: usize,
        /// The definition's kind.
        kind: crate::PartitionKeyKind,
    },
    /// A string is not a valid effective partition key.
    #[error("effective partition key {hex:?} is invalid: {reason}")]
    InvalidEpk {
        /// The string as given.
        hex: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An EPK range whose minimum is not below its maximum.
    #[error("effective partition key range [{min:?}, {max:?}) is empty: min must be below max")]
    EmptyRange {
        /// The inclusive minimum.
        min: String,
        /// The exclusive maximum.
        max: String,
    },
}

/// The JSON type name of a value, for error messages.
pub(crate) fn json_type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(map) if map.is_empty() => "an empty object",
        serde_json::Value::Object(_) => "an object",
    }
}
