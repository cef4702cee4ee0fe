//! A container's partition key definition and its JSON form.
//!
//! The JSON form is what the SDKs send in the `partitionKey` field of a
//! container body and read back: `{"paths":["/pk"],"kind":"Hash","version":2}`,
//! optionally with `"systemKey": true`. Parsing applies the service's defaults
//! (see [`PartitionKeyDefinition::from_json`]); serializing always writes
//! `kind` and `version` explicitly so that clients hash exactly as we do.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{PartitionKeyError, json_type_name};

/// The most paths a definition may have (hierarchical keys have up to three levels).
pub const MAX_PATHS: usize = 3;

/// How a partition key value is turned into an effective partition key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartitionKeyKind {
    /// One path; all components are hashed together.
    Hash,
    /// Up to three paths (hierarchical keys); each component is hashed on its own
    /// and the hashes are concatenated, so a prefix of the key maps to an EPK range.
    MultiHash,
}

impl PartitionKeyKind {
    /// The name used in JSON: `"Hash"` or `"MultiHash"`.
    pub fn as_str(self) -> &'static str {
        match self {
            PartitionKeyKind::Hash => "Hash",
            PartitionKeyKind::MultiHash => "MultiHash",
        }
    }
}

impl fmt::Display for PartitionKeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hashing scheme version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartitionKeyVersion {
    /// Legacy: MurmurHash3 x86 32-bit plus the (truncated) value in an
    /// order-preserving binary encoding. Variable length.
    V1,
    /// MurmurHash3 x64 128-bit: always 16 bytes (32 hex characters) per hash.
    V2,
}

impl PartitionKeyVersion {
    /// The number used in JSON: 1 or 2.
    pub fn as_number(self) -> u8 {
        match self {
            PartitionKeyVersion::V1 => 1,
            PartitionKeyVersion::V2 => 2,
        }
    }
}

impl fmt::Display for PartitionKeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_number())
    }
}

/// A container's partition key definition.
///
/// (De)serializes in Cosmos JSON form through [`PartitionKeyDefinition::from_json`]
/// and [`PartitionKeyDefinition::to_json`], so deserializing validates and
/// applies defaults.
///
/// The fields are public for convenience; a definition built by hand is
/// checked again wherever it is used, so an invalid one yields an error, never
/// a panic or a wrong hash.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct PartitionKeyDefinition {
    /// The partition key paths, such as `"/pk"` or `"/address/city"`.
    pub paths: Vec<String>,
    /// Hash (one path) or MultiHash (hierarchical, up to three paths).
    pub kind: PartitionKeyKind,
    /// Hashing version.
    pub version: PartitionKeyVersion,
    /// `systemKey` as the client sent it: `true` marks a container migrated
    /// from a non-partitioned one, whose documents without the key get the
    /// empty partition key. Kept so that it is returned unchanged.
    pub system_key: Option<bool>,
}

impl PartitionKeyDefinition {
    /// Builds a definition from the JSON a client sent, applying the service's defaults
    /// and checking it.
    ///
    /// Defaults: a missing (or `null`) `kind` is `Hash` for one path and
    /// `MultiHash` for more. A missing `version` is 1 for `Hash`, as on the real
    /// service (the Node SDK sends no version unless asked to, and the service
    /// then hashes with V1), and 2 for `MultiHash`, which exists only in V2.
    /// `kind` is matched without regard to ASCII case. Unknown fields are ignored.
    ///
    /// # Errors
    ///
    /// Returns an error if the value is not an object, `paths` is missing, not
    /// an array of strings, empty or longer than [`MAX_PATHS`], a path is
    /// malformed (see [`parse_path`]) or repeated, `kind` is not `Hash` or
    /// `MultiHash`, `version` is not 1 or 2, a `Hash` definition has more than
    /// one path, or a `MultiHash` definition asks for version 1.
    pub fn from_json(value: &Value) -> Result<Self, PartitionKeyError> {
        let Value::Object(object) = value else {
            return Err(PartitionKeyError::DefinitionNotObject {
                found: json_type_name(value),
            });
        };
        let paths = read_paths(object)?;
        let kind = match non_null(object, "kind") {
            None if paths.len() > 1 => PartitionKeyKind::MultiHash,
            None => PartitionKeyKind::Hash,
            Some(Value::String(kind)) if kind.eq_ignore_ascii_case("Hash") => {
                PartitionKeyKind::Hash
            }
            Some(Value::String(kind)) if kind.eq_ignore_ascii_case("MultiHash") => {
                PartitionKeyKind::MultiHash
            }
            Some(Value::String(kind)) => {
                return Err(PartitionKeyError::UnsupportedKind { kind: kind.clone() });
            }
            Some(other) => {
                return Err(PartitionKeyError::InvalidDefinitionField {
                    field: "kind",
                    expected: "a string",
                    found: json_type_name(other),
                });
            }
        };
        let version = match non_null(object, "version") {
            None => match kind {
                PartitionKeyKind::Hash => PartitionKeyVersion::V1,
                PartitionKeyKind::MultiHash => PartitionKeyVersion::V2,
            },
            Some(Value::Number(number)) => match number.as_u64() {
                Some(1) => PartitionKeyVersion::V1,
                Some(2) => PartitionKeyVersion::V2,
                _ => {
                    return Err(PartitionKeyError::UnsupportedVersion {
                        version: number.to_string(),
                    });
                }
            },
            Some(other) => {
                return Err(PartitionKeyError::InvalidDefinitionField {
                    field: "version",
                    expected: "the number 1 or 2",
                    found: json_type_name(other),
                });
            }
        };
        let system_key = match non_null(object, "systemKey") {
            None => None,
            Some(Value::Bool(system_key)) => Some(*system_key),
            Some(other) => {
                return Err(PartitionKeyError::InvalidDefinitionField {
                    field: "systemKey",
                    expected: "a boolean",
                    found: json_type_name(other),
                });
            }
        };
        let definition = PartitionKeyDefinition {
            paths,
            kind,
            version,
            system_key,
        };
        definition.validate()?;
        Ok(definition)
    }

    /// The JSON form, with `kind` and `version` always present and `systemKey`
    /// present only if it was set.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert(
            "paths".to_owned(),
            Value::Array(self.paths.iter().cloned().map(Value::String).collect()),
        );
        object.insert("kind".to_owned(), Value::from(self.kind.as_str()));
        object.insert("version".to_owned(), Value::from(self.version.as_number()));
        if let Some(system_key) = self.system_key {
            object.insert("systemKey".to_owned(), Value::Bool(system_key));
        }
        Value::Object(object)
    }

    /// A single-path `Hash` V2 definition, the kind new containers get from the SDKs.
    ///
    /// This does not check `path`; an invalid path is reported by
    /// [`PartitionKeyDefinition::validate`] and by
    /// [`PartitionKey::extract`](crate::PartitionKey::extract).
    pub fn single(path: &str) -> Self {
        PartitionKeyDefinition {
            paths: vec![path.to_owned()],
            kind: PartitionKeyKind::Hash,
            version: PartitionKeyVersion::V2,
            system_key: None,
        }
    }

    /// A hierarchical (`MultiHash` V2) definition with the given paths, outermost first.
    ///
    /// # Errors
    ///
    /// Returns an error if there are no paths or more than [`MAX_PATHS`], or a
    /// path is malformed or repeated.
    pub fn hierarchical(paths: &[&str]) -> Result<Self, PartitionKeyError> {
        let definition = PartitionKeyDefinition {
            paths: paths.iter().map(|path| (*path).to_owned()).collect(),
            kind: PartitionKeyKind::MultiHash,
            version: PartitionKeyVersion::V2,
            system_key: None,
        };
        definition.validate()?;
        Ok(definition)
    }

    /// Checks everything [`PartitionKeyDefinition::from_json`] checks, for a
    /// definition built by hand.
    ///
    /// # Errors
    ///
    /// See [`PartitionKeyDefinition::from_json`].
    pub fn validate(&self) -> Result<(), PartitionKeyError> {
        self.check_shape()?;
        for (index, path) in self.paths.iter().enumerate() {
            parse_path(path)?;
            if self.paths[..index].contains(path) {
                return Err(PartitionKeyError::DuplicatePath { path: path.clone() });
            }
        }
        Ok(())
    }

    /// The checks that do not look inside paths: path count, and kind against
    /// version. Cheap enough to run on every EPK computation.
    pub(crate) fn check_shape(&self) -> Result<(), PartitionKeyError> {
        let n_paths = self.paths.len();
        if n_paths == 0 || n_paths > MAX_PATHS {
            return Err(PartitionKeyError::PathCount { n_paths });
        }
        match (self.kind, self.version) {
            (PartitionKeyKind::Hash, _) if n_paths != 1 => {
                Err(PartitionKeyError::HashNeedsOnePath { n_paths })
            }
            (PartitionKeyKind::MultiHash, PartitionKeyVersion::V1) => {
                Err(PartitionKeyError::MultiHashNeedsV2)
            }
            _ => Ok(()),
        }
    }
}

impl TryFrom<Value> for PartitionKeyDefinition {
    type Error = PartitionKeyError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        PartitionKeyDefinition::from_json(&value)
    }
}

impl From<PartitionKeyDefinition> for Value {
    fn from(definition: PartitionKeyDefinition) -> Self {
        definition.to_json()
    }
}

/// A field's value, treating an explicit JSON `null` like an absent field.
fn non_null<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    object.get(field).filter(|value| !value.is_null())
}

fn read_paths(object: &Map<String, Value>) -> Result<Vec<String>, PartitionKeyError> {
    let Some(paths) = non_null(object, "paths") else {
        return Err(PartitionKeyError::MissingPaths);
    };
    let Value::Array(items) = paths else {
        return Err(PartitionKeyError::InvalidDefinitionField {
            field: "paths",
            expected: "an array of strings",
            found: json_type_name(paths),
        });
    };
    if items.is_empty() || items.len() > MAX_PATHS {
        return Err(PartitionKeyError::PathCount {
            n_paths: items.len(),
        });
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(path) => Ok(path.clone()),
            other => Err(PartitionKeyError::InvalidDefinitionField {
                field: "paths",
                expected: "an array of strings",
                found: json_type_name(other),
            }),
        })
        .collect()
}

/// Splits a partition key path into the property names it walks, outermost first.
///
/// The syntax is the SDKs' (`parsePath` in the JS SDK, `ParsePaths` in the
/// Python SDK): a path is one or more `/segment`s. A segment is either bare
/// (surrounding whitespace trimmed) or quoted with `"` or `'`, in which case
/// it may contain `/` and the quote character escaped as `\"` (the text
/// between the quotes is taken as is, backslashes included, like the SDKs do).
/// Unlike the SDKs, empty segments (`"/"`, `"/a//b"`, `"/a/"`) are rejected,
/// since no document property can be reached through them.
///
/// # Errors
///
/// Returns [`PartitionKeyError::InvalidPath`] if the path does not start with
/// `/`, has an empty segment, an unterminated quote, or text after a closing quote.
pub fn parse_path(path: &str) -> Result<Vec<String>, PartitionKeyError> {
    let invalid = |reason: String| PartitionKeyError::InvalidPath {
        path: path.to_owned(),
        reason,
    };
    if !path.starts_with('/') {
        return Err(invalid("it must start with '/'".to_owned()));
    }
    let mut segments = Vec::new();
    // Byte offset of the '/' that starts the next segment.
    let mut position = 0;
    while position < path.len() {
        let rest = &path[position + 1..];
        let (segment, consumed) = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => {
                let body = &rest[1..];
                let close = find_closing_quote(body, quote).ok_or_else(|| {
                    invalid(format!(
                        "the quote at byte {} is never closed",
                        position + 1
                    ))
                })?;
                let after = &body[close + 1..];
                if !(after.is_empty() || after.starts_with('/')) {
                    return Err(invalid(format!(
                        "text follows the closing quote at byte {}",
                        position + 2 + close
                    )));
                }
                (body[..close].to_owned(), 1 + close + 1)
            }
            _ => {
                let end = rest.find('/').unwrap_or(rest.len());
                (rest[..end].trim().to_owned(), end)
            }
        };
        if segment.is_empty() {
            return Err(invalid(format!("segment {} is empty", segments.len() + 1)));
        }
        segments.push(segment);
        position += 1 + consumed;
    }
    Ok(segments)
}

/// The byte offset in `body` of the first `quote` not preceded by a backslash.
fn find_closing_quote(body: &str, quote: char) -> Option<usize> {
    let mut previous = None;
    for (offset, character) in body.char_indices() {
        if character == quote && previous != Some('\\') {
            return Some(offset);
        }
        previous = Some(character);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_path_splits_nested_and_quoted_segments() {
        assert_eq!(parse_path("/pk").unwrap(), ["pk"]);
        assert_eq!(parse_path("/a/b/c").unwrap(), ["a", "b", "c"]);
        assert_eq!(parse_path("/ a /b").unwrap(), ["a", "b"]);
        assert_eq!(parse_path("/\"a/b\"/c").unwrap(), ["a/b", "c"]);
        assert_eq!(parse_path("/'a/b'").unwrap(), ["a/b"]);
        assert_eq!(
            parse_path("/\"say \\\"hi\\\"\"").unwrap(),
            ["say \\\"hi\\\""]
        );
        assert_eq!(parse_path("/ñ/€").unwrap(), ["ñ", "€"]);
    }

    #[test]
    fn parse_path_rejects_malformed_paths() {
        for path in [
            "", "pk", "/", "/a//b", "/a/", "/ ", "/\"open", "/\"a\"b", "/'it''s'",
        ] {
            assert!(
                matches!(parse_path(path), Err(PartitionKeyError::InvalidPath { .. })),
                "{path:?} should be rejected"
            );
        }
    }
}
