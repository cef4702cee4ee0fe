//! Patch operations and the request body that carries them.

use serde_json::{Map, Number, Value};

use crate::pointer::{Pointer, excerpt};
use crate::{MAX_OPERATIONS, PatchError};

/// One patch operation. Paths are JSON pointers (`/a/b/0`, with `~1` for
/// `/` and `~0` for `~` inside a property name).
#[derive(Debug, Clone, PartialEq)]
pub enum PatchOperation {
    /// `add`: sets an object member (creating or replacing it), or inserts
    /// into an array at an index from 0 to its length (`-` appends).
    Add {
        /// Where to add.
        path: String,
        /// What to add.
        value: Value,
    },
    /// `set`: like `add` on objects; on arrays, replaces the element at an
    /// existing index.
    Set {
        /// Where to set.
        path: String,
        /// The new value.
        value: Value,
    },
    /// `replace`: replaces a member or element that must exist.
    Replace {
        /// What to replace.
        path: String,
        /// The new value.
        value: Value,
    },
    /// `remove`: removes a member or element that must exist; later array
    /// elements shift down.
    Remove {
        /// What to remove.
        path: String,
    },
    /// `incr`: adds `value` to a number, or creates the member with `value`
    /// when it is missing. Two integers give an integer; otherwise a float.
    Increment {
        /// The number to change.
        path: String,
        /// How much to add (may be negative).
        value: Number,
    },
    /// `move`: removes the value at `from` (which must exist) and adds it at
    /// `path`, as `remove` then `add` would.
    Move {
        /// Where the value is now.
        from: String,
        /// Where it goes; not inside `from`.
        path: String,
    },
}

impl PatchOperation {
    /// The operation's name on the wire: `add`, `set`, `replace`, `remove`,
    /// `incr` or `move`.
    pub fn name(&self) -> &'static str {
        match self {
            PatchOperation::Add { .. } => "add",
            PatchOperation::Set { .. } => "set",
            PatchOperation::Replace { .. } => "replace",
            PatchOperation::Remove { .. } => "remove",
            PatchOperation::Increment { .. } => "incr",
            PatchOperation::Move { .. } => "move",
        }
    }

    /// The operation's target path (for `move`, the destination).
    pub fn path(&self) -> &str {
        match self {
            PatchOperation::Add { path, .. }
            | PatchOperation::Set { path, .. }
            | PatchOperation::Replace { path, .. }
            | PatchOperation::Remove { path }
            | PatchOperation::Increment { path, .. }
            | PatchOperation::Move { path, .. } => path,
        }
    }

    /// Parses operation `index` of a request body.
    fn from_json(index: usize, operation: &Value) -> Result<PatchOperation, PatchError> {
        let invalid = |reason: String| PatchError::InvalidOperation { index, reason };
        let Value::Object(fields) = operation else {
            return Err(invalid(format!(
                "expected an object with \"op\" and \"path\", got {}",
                json_type(operation)
            )));
        };
        let op = string_field(fields, "op")
            .map_err(invalid)?
            .ok_or_else(|| invalid("\"op\" is missing".to_owned()))?;
        let path = string_field(fields, "path")
            .map_err(invalid)?
            .ok_or_else(|| invalid("\"path\" is missing".to_owned()))?
            .to_owned();
        let value = || {
            fields
                .get("value")
                .cloned()
                .ok_or_else(|| invalid(format!("\"value\" is missing; '{op}' needs one")))
        };
        let operation = match op.to_ascii_lowercase().as_str() {
            "add" => PatchOperation::Add {
                path,
                value: value()?,
            },
            "set" => PatchOperation::Set {
                path,
                value: value()?,
            },
            "replace" => PatchOperation::Replace {
                path,
                value: value()?,
            },
            "remove" => PatchOperation::Remove { path },
            "incr" => match value()? {
                Value::Number(number) => PatchOperation::Increment {
                    path,
                    value: number,
                },
                other => {
                    return Err(invalid(format!(
                        "\"value\" of 'incr' must be a number, got {}",
                        json_type(&other)
                    )));
                }
            },
            "move" => {
                let from = string_field(fields, "from")
                    .map_err(invalid)?
                    .ok_or_else(|| invalid("\"from\" is missing; 'move' needs one".to_owned()))?
                    .to_owned();
                PatchOperation::Move { from, path }
            }
            _ => {
                return Err(invalid(format!(
                    "unknown \"op\" '{}'; expected add, set, replace, remove, incr or move",
                    excerpt(op)
                )));
            }
        };
        Ok(operation)
    }
}

/// A patch request: the operations, applied in order and all or nothing,
/// and an optional filter predicate.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// The operations, at most [`MAX_OPERATIONS`].
    pub operations: Vec<PatchOperation>,
    /// A SQL filter such as `from c where c.status = 'open'`: the patch
    /// applies only if the document matches (otherwise Cosmos answers 412).
    /// This crate carries it; evaluating it is the caller's job.
    pub condition: Option<String>,
}

impl PatchRequest {
    /// Parses a patch request body: `{"operations": [...], "condition": "..."}`
    /// as the SDKs send it, or a bare array of operations. Each operation is
    /// `{"op": ..., "path": ..., "value": ...}` (`"from"` for `move`). Paths
    /// are checked here, so that a request with a bad path is refused before
    /// the document is read.
    ///
    /// ```
    /// use serde_json::json;
    /// use tributary_patch::{PatchOperation, PatchRequest};
    ///
    /// let request = PatchRequest::from_json(&json!({
    ///     "operations": [{"op": "incr", "path": "/stock", "value": -1}],
    ///     "condition": "from c where c.stock > 0"
    /// }))?;
    /// assert_eq!(request.operations, [PatchOperation::Increment { path: "/stock".into(), value: (-1).into() }]);
    /// assert_eq!(request.condition.as_deref(), Some("from c where c.stock > 0"));
    /// # Ok::<(), tributary_patch::PatchError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`PatchError::InvalidRequest`] or [`PatchError::InvalidOperation`] for
    /// a body of the wrong shape, [`PatchError::NoOperations`],
    /// [`PatchError::TooManyOperations`], and [`PatchError::InvalidPath`] or
    /// [`PatchError::SystemProperty`] for a path that can never apply.
    pub fn from_json(body: &Value) -> Result<Self, PatchError> {
        let invalid = |reason: String| PatchError::InvalidRequest { reason };
        let (operations, condition) = match body {
            Value::Array(operations) => (operations, None),
            Value::Object(fields) => {
                let operations = match fields.get("operations") {
                    Some(Value::Array(operations)) => operations,
                    Some(other) => {
                        return Err(invalid(format!(
                            "\"operations\" must be an array, got {}",
                            json_type(other)
                        )));
                    }
                    None => return Err(invalid("\"operations\" is missing".to_owned())),
                };
                let condition = string_field(fields, "condition")
                    .map_err(invalid)?
                    .map(str::to_owned);
                (operations, condition)
            }
            other => {
                return Err(invalid(format!(
                    "expected an object with \"operations\", or an array of operations, got {}",
                    json_type(other)
                )));
            }
        };
        check_operation_count(operations.len())?;
        let operations = operations
            .iter()
            .enumerate()
            .map(|(index, operation)| PatchOperation::from_json(index, operation))
            .collect::<Result<Vec<_>, _>>()?;
        for (index, operation) in operations.iter().enumerate() {
            Pointer::parse(index, operation.path())?;
            if let PatchOperation::Move { from, .. } = operation {
                Pointer::parse(index, from)?;
            }
        }
        Ok(PatchRequest {
            operations,
            condition,
        })
    }
}

/// Refuses an empty request and one over [`MAX_OPERATIONS`].
pub(crate) fn check_operation_count(n_operations: usize) -> Result<(), PatchError> {
    match n_operations {
        0 => Err(PatchError::NoOperations),
        1..=MAX_OPERATIONS => Ok(()),
        _ => Err(PatchError::TooManyOperations { n_operations }),
    }
}

/// The string in `fields[name]`: `Ok(None)` if absent or null, an error
/// message if it is not a string.
fn string_field<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(format!(
            "\"{name}\" must be a string, got {}",
            json_type(other)
        )),
    }
}

/// The name of a JSON value's type, for error messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
