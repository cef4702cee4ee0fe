//! The vector and full-text policies of a container, checked by Cosmos DB's rules.
//!
//! Tributary runs no vector or full-text search, but it stores these policies and returns them
//! (a container made here can be re-created on Cosmos DB from its definition), so it refuses
//! the ones Cosmos DB refuses, with its messages: `vectorEmbeddingPolicy` and
//! `indexingPolicy.vectorIndexes`, `fullTextPolicy` and `indexingPolicy.fullTextIndexes`. On a
//! replace, the vector paths of an existing container may not change.

use serde_json::{Map, Value};

use crate::error::{Result, StoreError};

/// Vector data types Cosmos DB accepts.
const DATA_TYPES: &[&str] = &["float32", "float16", "int8", "uint8"];
/// Vector distance functions Cosmos DB accepts.
const DISTANCE_FUNCTIONS: &[&str] = &["cosine", "dotproduct", "euclidean"];
/// Vector index types Cosmos DB accepts.
const VECTOR_INDEX_TYPES: &[&str] = &["flat", "quantizedFlat", "diskANN"];
/// Most dimensions a vector embedding may have.
const MAX_DIMENSIONS: i64 = 4096;
/// Largest `quantizationByteSize` (never more than the embedding's dimensions).
const MAX_QUANTIZATION_BYTES: i64 = 512;
/// `indexingSearchListSize` range of a `diskANN` index.
const SEARCH_LIST_SIZES: (i64, i64) = (25, 500);
/// Most paths in a vector index's `vectorIndexShardKey`.
const MAX_SHARD_PATHS: usize = 1;
/// Languages a full-text policy may name.
const FULL_TEXT_LANGUAGES: &[&str] = &[
    "en-US", "de-DE", "es-ES", "fr-FR", "it-IT", "pt-BR", "pt-PT",
];

/// The generic message Cosmos DB gives a malformed input.
const INVALID_INPUT: &str = "One of the specified inputs is invalid";

fn bad(message: impl Into<String>) -> StoreError {
    StoreError::BadRequest(message.into())
}

/// Checks a container's vector and full-text policies, and the vector and full-text indexes
/// of its indexing policy.
///
/// # Errors
/// [`StoreError::BadRequest`] naming the rule broken, worded as Cosmos DB words it.
pub(crate) fn validate(
    other_properties: &Map<String, Value>,
    indexing_policy: Option<&Value>,
) -> Result<()> {
    let embedding_paths = validate_embeddings(other_properties.get("vectorEmbeddingPolicy"))?;
    let full_text_paths = validate_full_text(other_properties.get("fullTextPolicy"))?;
    let Some(policy) = indexing_policy else {
        return Ok(());
    };
    if let Some(indexes) = policy.get("vectorIndexes") {
        for index in list(indexes, "indexingPolicy.vectorIndexes")? {
            validate_vector_index(index, &embedding_paths)?;
        }
    }
    if let Some(indexes) = policy.get("fullTextIndexes") {
        for index in list(indexes, "indexingPolicy.fullTextIndexes")? {
            let path = index.get("path").and_then(Value::as_str).ok_or_else(|| {
                bad(format!(
                    "{INVALID_INPUT}: a full-text index needs a 'path', not {index}"
                ))
            })?;
            if !path.starts_with('/') {
                return Err(bad(format!(
                    "The Full Text Index contains an invalid Path: {path}. A path must start with '/'."
                )));
            }
            if !full_text_paths.iter().any(|known| known == path) {
                return Err(bad(format!(
                    "The path of the Full Text Index {path} does not match any path of the Full Text Policy."
                )));
            }
        }
    }
    Ok(())
}

/// Refuses a replace that changes the vector embeddings or vector indexes an existing
/// container has (Cosmos DB rebuilds neither).
///
/// # Errors
/// [`StoreError::BadRequest`] as Cosmos DB words it.
pub(crate) fn check_replace(
    (current_properties, current_indexing): (&Map<String, Value>, Option<&Value>),
    (new_properties, new_indexing): (&Map<String, Value>, Option<&Value>),
) -> Result<()> {
    let embeddings = |properties: &Map<String, Value>| {
        properties
            .get("vectorEmbeddingPolicy")
            .and_then(|policy| policy.get("vectorEmbeddings"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let current = embeddings(current_properties);
    if !is_empty(&current) && current != embeddings(new_properties) {
        return Err(bad(
            "Paths in existing embedding policy cannot be modified in Collection Replace",
        ));
    }
    let vector_indexes = |policy: Option<&Value>| {
        policy
            .and_then(|policy| policy.get("vectorIndexes"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let current = vector_indexes(current_indexing);
    if !is_empty(&current) && current != vector_indexes(new_indexing) {
        return Err(bad(
            "Paths in existing vector indexing policy cannot be modified in Collection Replace",
        ));
    }
    Ok(())
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

fn list<'a>(value: &'a Value, what: &str) -> Result<&'a Vec<Value>> {
    value.as_array().ok_or_else(|| {
        bad(format!(
            "{INVALID_INPUT}: '{what}' must be an array, not {value}"
        ))
    })
}

/// Checks `vectorEmbeddingPolicy`; returns its paths.
fn validate_embeddings(policy: Option<&Value>) -> Result<Vec<(String, i64)>> {
    let Some(policy) = policy.filter(|policy| !policy.is_null()) else {
        return Ok(Vec::new());
    };
    let embeddings = policy.get("vectorEmbeddings").ok_or_else(|| {
        bad(format!(
            "{INVALID_INPUT}: 'vectorEmbeddingPolicy' needs a 'vectorEmbeddings' array"
        ))
    })?;
    let mut paths = Vec::new();
    for embedding in list(embeddings, "vectorEmbeddingPolicy.vectorEmbeddings")? {
        let path = embedding.get("path").and_then(Value::as_str).unwrap_or("");
        if !path.starts_with('/') {
            return Err(bad(format!(
                "The Vector Embedding Policy has an invalid Path:{path}. A path must start with '/'."
            )));
        }
        one_of(embedding, "dataType", DATA_TYPES, "DataType")?;
        let dimensions = embedding
            .get("dimensions")
            .and_then(Value::as_i64)
            .ok_or_else(|| {
                bad(format!(
                    "{INVALID_INPUT}: the vector embedding of '{path}' needs integer 'dimensions'"
                ))
            })?;
        if dimensions < 1 {
            return Err(bad(format!(
                "The Vector Embedding Policy has Dimensions:{dimensions} which is less than the minimum supported value: 1."
            )));
        }
        if dimensions > MAX_DIMENSIONS {
            return Err(bad(format!(
                "The Vector Embedding Policy has Dimensions:{dimensions} which is more than the maximum supported value: {MAX_DIMENSIONS}."
            )));
        }
        one_of(
            embedding,
            "distanceFunction",
            DISTANCE_FUNCTIONS,
            "DistanceFunction",
        )?;
        paths.push((path.to_owned(), dimensions));
    }
    Ok(paths)
}

/// Checks that the embedding's `field` is one of `allowed` (any case); the error names it as
/// Cosmos DB does (`invalid DataType:float33. Supported values are: ...`).
fn one_of(embedding: &Value, field: &str, allowed: &[&str], label: &str) -> Result<()> {
    let value = embedding.get(field).and_then(Value::as_str).unwrap_or("");
    if allowed
        .iter()
        .any(|known| known.eq_ignore_ascii_case(value))
    {
        Ok(())
    } else {
        Err(bad(format!(
            "The Vector Embedding Policy has an invalid {label}:{value}. Supported values are: {}.",
            allowed.join(", ")
        )))
    }
}

/// Checks one entry of `indexingPolicy.vectorIndexes` against the embeddings' paths.
fn validate_vector_index(index: &Value, embeddings: &[(String, i64)]) -> Result<()> {
    let path = index.get("path").and_then(Value::as_str).unwrap_or("");
    let Some(&(_, dimensions)) = embeddings.iter().find(|(known, _)| known == path) else {
        return Err(bad(format!(
            "The Vector Indexing Policy's path::{path} not matching in Embedding's path."
        )));
    };
    let kind = index.get("type").and_then(Value::as_str).unwrap_or("");
    if !VECTOR_INDEX_TYPES.contains(&kind) {
        return Err(bad(format!(
            "The Vector Indexing Policy's Index Type::{kind} is invalid. Supported values are: {}.",
            VECTOR_INDEX_TYPES.join(", ")
        )));
    }
    let range_check = |name: &str, field: &str, (low, high): (i64, i64)| -> Result<()> {
        match index.get(field) {
            None | Some(Value::Null) => Ok(()),
            Some(value) => match value.as_i64() {
                Some(n) if (low..=high).contains(&n) => Ok(()),
                _ => Err(bad(format!(
                    "The Vector Indexing Policy parameter {name} value :: {value} is out of range. The allowed range is between {low} and {high}."
                ))),
            },
        }
    };
    range_check(
        "QuantizationByteSize",
        "quantizationByteSize",
        (1, dimensions.min(MAX_QUANTIZATION_BYTES)),
    )?;
    range_check(
        "IndexingSearchListSize",
        "indexingSearchListSize",
        SEARCH_LIST_SIZES,
    )?;
    if let Some(shard_key) = index.get("vectorIndexShardKey") {
        let paths = shard_key.as_array().ok_or_else(|| {
            bad(format!(
                "{INVALID_INPUT}: 'vectorIndexShardKey' must be an array of paths, not {shard_key}"
            ))
        })?;
        if paths.len() > MAX_SHARD_PATHS {
            return Err(bad(format!(
                "The number of shard paths defined in the Vector Indexing Policy: {} exceeds the maximum: {MAX_SHARD_PATHS}.",
                paths.len()
            )));
        }
        for shard_path in paths {
            match shard_path.as_str() {
                Some(text) if text.starts_with('/') => {}
                _ => {
                    let shown = shard_path
                        .as_str()
                        .map_or_else(|| shard_path.to_string(), str::to_owned);
                    return Err(bad(format!(
                        "The Vector Indexing Policy has an invalid Shard Path: {shown}."
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Checks `fullTextPolicy`; returns its paths.
fn validate_full_text(policy: Option<&Value>) -> Result<Vec<String>> {
    let Some(policy) = policy.filter(|policy| !policy.is_null()) else {
        return Ok(Vec::new());
    };
    let check_language = |language: Option<&Value>, what: &str| -> Result<()> {
        match language {
            None | Some(Value::Null) => Ok(()),
            Some(value) => match value.as_str() {
                Some(text) if FULL_TEXT_LANGUAGES.contains(&text) => Ok(()),
                _ => Err(bad(format!(
                    "The Full Text Policy contains an unsupported {what}: {value}. Supported values are: {}.",
                    FULL_TEXT_LANGUAGES.join(", ")
                ))),
            },
        }
    };
    check_language(policy.get("defaultLanguage"), "default language")?;
    let mut paths = Vec::new();
    if let Some(entries) = policy.get("fullTextPaths") {
        for entry in list(entries, "fullTextPolicy.fullTextPaths")? {
            let path = entry.get("path").and_then(Value::as_str).unwrap_or("");
            if !path.starts_with('/') {
                return Err(bad(format!(
                    "The Full Text Policy contains an invalid Path: {path}. A path must start with '/'."
                )));
            }
            check_language(entry.get("language"), "language")?;
            paths.push(path.to_owned());
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(properties: Value, indexing: Option<Value>) -> std::result::Result<(), String> {
        let Value::Object(properties) = properties else {
            panic!("properties are an object")
        };
        validate(&properties, indexing.as_ref()).map_err(|e| e.to_string())
    }

    fn embedding(dimensions: i64) -> Value {
        json!({"vectorEmbeddingPolicy": {"vectorEmbeddings": [
            {"path": "/v", "dataType": "float32", "dimensions": dimensions, "distanceFunction": "cosine"}
        ]}})
    }

    #[test]
    fn a_valid_policy_passes_and_each_broken_rule_is_named() {
        let index = |entry: Value| Some(json!({"vectorIndexes": [entry]}));
        check(embedding(256), index(json!({"path": "/v", "type": "diskANN", "quantizationByteSize": 96, "indexingSearchListSize": 100, "vectorIndexShardKey": ["/tenant"]}))).expect("valid");
        for (properties, indexing, expected) in [
            (embedding(0), None, "Dimensions:0 which is less than"),
            (
                embedding(5000),
                None,
                "Dimensions:5000 which is more than the maximum supported value",
            ),
            (
                json!({}),
                index(json!({"path": "/v", "type": "flat"})),
                "path::/v not matching in Embedding's path",
            ),
            (
                embedding(8),
                index(json!({"path": "/v", "type": "hnsw"})),
                "Index Type::hnsw is invalid",
            ),
            (
                embedding(8),
                index(json!({"path": "/v", "type": "quantizedFlat", "quantizationByteSize": 9})),
                "QuantizationByteSize value :: 9 is out of range. The allowed range is between 1 and 8.",
            ),
            (
                embedding(8),
                index(json!({"path": "/v", "type": "diskANN", "vectorIndexShardKey": ["a"]})),
                "invalid Shard Path: a.",
            ),
            (
                embedding(8),
                index(json!({"path": "/v", "type": "diskANN", "vectorIndexShardKey": "/a"})),
                INVALID_INPUT,
            ),
            (
                json!({"fullTextPolicy": {"defaultLanguage": "xx-XX"}}),
                None,
                "unsupported default language",
            ),
            (
                json!({"fullTextPolicy": {"fullTextPaths": [{"path": "title"}]}}),
                None,
                "invalid Path: title",
            ),
            (
                json!({}),
                Some(json!({"fullTextIndexes": [{"path": "/t"}]})),
                "does not match any path of the Full Text Policy",
            ),
        ] {
            let message = check(properties, indexing).expect_err(expected);
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn a_replace_keeps_the_vector_paths_but_may_change_the_rest() {
        let Value::Object(current) = embedding(8) else {
            unreachable!()
        };
        let Value::Object(wider) = embedding(16) else {
            unreachable!()
        };
        let flat = json!({"vectorIndexes": [{"path": "/v", "type": "flat"}]});
        let quantized = json!({"vectorIndexes": [{"path": "/v", "type": "quantizedFlat"}]});
        check_replace((&current, Some(&flat)), (&current, Some(&flat))).expect("unchanged");
        let message = check_replace((&current, Some(&flat)), (&wider, Some(&flat))).unwrap_err();
        assert!(
            message.to_string().contains("existing embedding policy"),
            "{message}"
        );
        let message =
            check_replace((&current, Some(&flat)), (&current, Some(&quantized))).unwrap_err();
        assert!(
            message
                .to_string()
                .contains("existing vector indexing policy"),
            "{message}"
        );
        check_replace((&Map::new(), None), (&current, Some(&flat)))
            .expect("adding vectors is allowed");
    }
}
