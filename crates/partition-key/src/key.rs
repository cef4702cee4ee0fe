//! Partition key values: parsing them from the wire, extracting them from
//! documents, and mapping them to effective partition keys.

use serde_json::{Map, Number, Value};

use crate::definition::{
    PartitionKeyDefinition, PartitionKeyKind, PartitionKeyVersion, parse_path,
};
use crate::epk::{Epk, EpkRange};
use crate::error::{PartitionKeyError, json_type_name};
use crate::hashing;

/// The most bytes of string data one partition key value may hold, summed over
/// its components (the service's limit for a partition key value is 2 KiB).
pub const MAX_PARTITION_KEY_VALUE_BYTES: usize = 2048;

/// The most components a partition key value may have: one per path.
pub const MAX_COMPONENTS: usize = crate::definition::MAX_PATHS;

/// One component of a partition key value.
#[derive(Clone, Debug, PartialEq)]
pub enum PartitionKeyComponent {
    /// The document has no property at the path (sent by the SDKs as `{}`).
    Undefined,
    /// JSON `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number. Integers are hashed as the nearest `f64`, as on the service,
    /// so `9223372036854775807` and `9223372036854775806` share an EPK.
    Number(f64),
    /// A string.
    String(String),
}

impl PartitionKeyComponent {
    /// Converts one JSON value; `{}` is [`PartitionKeyComponent::Undefined`].
    fn from_json(index: usize, value: &Value) -> Result<Self, PartitionKeyError> {
        match value {
            Value::Null => Ok(PartitionKeyComponent::Null),
            Value::Bool(boolean) => Ok(PartitionKeyComponent::Bool(*boolean)),
            Value::Number(number) => number_to_f64(number)
                .map(PartitionKeyComponent::Number)
                .ok_or(PartitionKeyError::InvalidComponent {
                    index,
                    found: "a number that is not representable as a double",
                }),
            Value::String(string) => Ok(PartitionKeyComponent::String(string.clone())),
            Value::Object(map) if map.is_empty() => Ok(PartitionKeyComponent::Undefined),
            other => Err(PartitionKeyError::InvalidComponent {
                index,
                found: json_type_name(other),
            }),
        }
    }

    /// The JSON form the SDKs send: `{}` for undefined; integral numbers of
    /// magnitude up to 2^53 as JSON integers. A non-finite number, which JSON
    /// cannot carry (and no parser of this crate produces), is written as `null`.
    fn to_json(&self) -> Value {
        match self {
            PartitionKeyComponent::Undefined => Value::Object(Map::new()),
            PartitionKeyComponent::Null => Value::Null,
            PartitionKeyComponent::Bool(boolean) => Value::Bool(*boolean),
            PartitionKeyComponent::Number(number) => number_to_json(*number),
            PartitionKeyComponent::String(string) => Value::String(string.clone()),
        }
    }
}

/// A partition key value: its components in path order.
///
/// Zero components is the *empty* key (`[]` on the wire), used by containers
/// with a system key for documents that lack the key; its EPK is the minimum
/// `""`. For a `MultiHash` definition a value may have fewer components than
/// paths: it is then a *prefix* that stands for an EPK range.
#[derive(Clone, Debug, PartialEq)]
pub struct PartitionKey(pub Vec<PartitionKeyComponent>);

impl PartitionKey {
    /// Parses the `x-ms-documentdb-partitionkey` header: a JSON array such as
    /// `["p1"]`, `[5]`, `[true]`, `[null]`, `[{}]` (undefined), `[]` (empty) or
    /// `["a","b"]` (hierarchical).
    ///
    /// # Errors
    ///
    /// Returns an error if the header is not JSON, not an array, or breaks a
    /// rule of [`PartitionKey::from_json`].
    pub fn from_header(header: &str) -> Result<Self, PartitionKeyError> {
        let value: Value =
            serde_json::from_str(header).map_err(PartitionKeyError::HeaderNotJson)?;
        if !value.is_array() {
            return Err(PartitionKeyError::HeaderNotArray {
                found: json_type_name(&value),
            });
        }
        PartitionKey::from_json(&value)
    }

    /// Converts an already-parsed JSON value: an array of components, or a
    /// single bare component (`"p1"`, `5`, `null`, `{}`, ...).
    ///
    /// # Errors
    ///
    /// Returns an error if a component is an array or a non-empty object, there
    /// are more than [`MAX_COMPONENTS`] components, or the strings add up to
    /// more than [`MAX_PARTITION_KEY_VALUE_BYTES`].
    pub fn from_json(value: &Value) -> Result<Self, PartitionKeyError> {
        let components = match value {
            Value::Array(items) => {
                if items.len() > MAX_COMPONENTS {
                    return Err(PartitionKeyError::TooManyComponents {
                        n_components: items.len(),
                    });
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| PartitionKeyComponent::from_json(index, item))
                    .collect::<Result<Vec<_>, _>>()?
            }
            single => vec![PartitionKeyComponent::from_json(0, single)?],
        };
        let key = PartitionKey(components);
        key.check_size()?;
        Ok(key)
    }

    /// The JSON array form the SDKs send (undefined as `{}`).
    pub fn to_json(&self) -> Value {
        Value::Array(self.0.iter().map(PartitionKeyComponent::to_json).collect())
    }

    /// Extracts the key of `document` according to `definition`.
    ///
    /// Each path walks nested objects (`/a/b` reads `document.a.b`). A missing
    /// property, a path that runs into a non-object on the way, or an object or
    /// array at the path gives [`PartitionKeyComponent::Undefined`] (as Cosmos DB
    /// and the SDKs treat them); JSON `null` gives
    /// [`PartitionKeyComponent::Null`]. As in the JS SDK, a single-path
    /// definition with `systemKey: true` gives the empty key when the property
    /// is missing.
    ///
    /// # Errors
    ///
    /// Returns an error if the document is not an object, a path is malformed,
    /// or the strings add up to
    /// more than [`MAX_PARTITION_KEY_VALUE_BYTES`].
    pub fn extract(
        definition: &PartitionKeyDefinition,
        document: &Value,
    ) -> Result<Self, PartitionKeyError> {
        if !document.is_object() {
            return Err(PartitionKeyError::DocumentNotObject {
                found: json_type_name(document),
            });
        }
        let mut components = Vec::with_capacity(definition.paths.len());
        for path in &definition.paths {
            let mut current = Some(document);
            for segment in parse_path(path)? {
                current = current.and_then(|value| value.as_object()?.get(&segment));
            }
            let component = match current {
                // An object or array is no key value: Cosmos DB files such an item under the
                // undefined key, and the SDKs send `[{}]` for it.
                None | Some(Value::Array(_) | Value::Object(_)) => PartitionKeyComponent::Undefined,
                Some(value) => PartitionKeyComponent::from_json(components.len(), value)?,
            };
            components.push(component);
        }
        if definition.system_key == Some(true) && components == [PartitionKeyComponent::Undefined] {
            components.clear();
        }
        let key = PartitionKey(components);
        key.check_size()?;
        Ok(key)
    }

    /// The effective partition key under `definition`.
    ///
    /// The empty key maps to the minimum EPK `""`. For `MultiHash` a prefix
    /// (fewer components than paths) is allowed and gives the prefix's EPK,
    /// which is a byte prefix of the EPK of every full key that extends it.
    ///
    /// # Errors
    ///
    /// Returns an error if the key has more components than the definition has
    /// paths, a non-empty `Hash` key does not have exactly one component per
    /// path, or the definition itself is inconsistent (see
    /// [`PartitionKeyDefinition::validate`]; path syntax is not re-checked here).
    pub fn effective_partition_key(
        &self,
        definition: &PartitionKeyDefinition,
    ) -> Result<Epk, PartitionKeyError> {
        definition.check_shape()?;
        let n_components = self.0.len();
        let n_paths = definition.paths.len();
        let fits = match definition.kind {
            PartitionKeyKind::Hash => n_components == 0 || n_components == n_paths,
            PartitionKeyKind::MultiHash => n_components <= n_paths,
        };
        if !fits {
            return Err(PartitionKeyError::ComponentCountMismatch {
                n_components,
                n_paths,
                kind: definition.kind,
            });
        }
        if self.0.is_empty() {
            return Ok(Epk::min());
        }
        let bytes = match (definition.kind, definition.version) {
            (PartitionKeyKind::Hash, PartitionKeyVersion::V1) => hashing::epk_v1(&self.0),
            (PartitionKeyKind::Hash, PartitionKeyVersion::V2) => hashing::epk_v2(&self.0).to_vec(),
            (PartitionKeyKind::MultiHash, _) => hashing::epk_multi_hash(&self.0),
        };
        Ok(Epk::from_bytes(&bytes))
    }

    /// The range of EPKs this key covers.
    ///
    /// A full key covers the single point `[epk, epk]`, returned in half-open
    /// form as `[epk, successor)` where the successor adds one to the last byte
    /// (the Python SDK's `Range.to_normalized_range`; see [`Epk::successor`]).
    /// A `MultiHash` prefix covers `[epk, epk + "FF")`, every key that extends
    /// it; the empty prefix therefore covers the whole space `["", "FF")`.
    ///
    /// # Errors
    ///
    /// As for [`PartitionKey::effective_partition_key`].
    pub fn epk_range(
        &self,
        definition: &PartitionKeyDefinition,
    ) -> Result<EpkRange, PartitionKeyError> {
        let epk = self.effective_partition_key(definition)?;
        let max = if self.is_prefix_of(definition) {
            epk.prefix_end()
        } else {
            epk.successor()
        };
        EpkRange::new(epk, max)
    }

    /// Whether this key is a `MultiHash` prefix: fewer components than the
    /// definition has paths (the empty key included).
    pub fn is_prefix_of(&self, definition: &PartitionKeyDefinition) -> bool {
        definition.kind == PartitionKeyKind::MultiHash && self.0.len() < definition.paths.len()
    }

    fn check_size(&self) -> Result<(), PartitionKeyError> {
        let n_bytes: usize = self
            .0
            .iter()
            .map(|component| match component {
                PartitionKeyComponent::String(string) => string.len(),
                _ => 0,
            })
            .sum();
        if n_bytes > MAX_PARTITION_KEY_VALUE_BYTES {
            return Err(PartitionKeyError::ValueTooLarge { n_bytes });
        }
        Ok(())
    }
}

/// A JSON number as the nearest double. Integers beyond 2^53 round, exactly
/// as `(double)long` does in .NET and `Number` parsing does in JS.
fn number_to_f64(number: &Number) -> Option<f64> {
    number.as_f64().filter(|value| value.is_finite())
}

/// The largest magnitude below which every integer is exactly a double.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

fn number_to_json(number: f64) -> Value {
    let is_plain_integer = number.fract() == 0.0
        && number.abs() <= MAX_SAFE_INTEGER
        && !(number == 0.0 && number.is_sign_negative());
    if is_plain_integer {
        // Exact: |number| <= 2^53 and integral, so the cast loses nothing.
        Value::from(number as i64)
    } else {
        Number::from_f64(number).map_or(Value::Null, Value::Number)
    }
}
