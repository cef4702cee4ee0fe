//! Server-side scripts of a container: stored procedures, triggers and user-defined functions,
//! the shapes clients see and the records the catalog keeps.
//!
//! A script is an id, a JavaScript `body` and, for a trigger, when it runs (`triggerType`
//! `Pre` or `Post`) and on which operations (`triggerOperation`). The store keeps what was
//! sent and checks only its form: it never runs a script (that is the server's business,
//! through `tributary-scripts`). A container's scripts live in the catalog beside it and are
//! removed with it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::catalog::{container_rid_bytes, database_rid, encode_rid, validate_id};
use crate::error::{Result, StoreError};

/// Most scripts of one kind a container may have.
pub const MAX_SCRIPTS_PER_CONTAINER: usize = 1024;

/// Longest script body, in bytes (Cosmos DB allows 256 KiB per script).
pub const MAX_SCRIPT_BODY_BYTES: usize = 256 * 1024;

/// The three kinds of server-side script.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScriptKind {
    /// A stored procedure (`sprocs`), run on request against one partition key.
    StoredProcedure,
    /// A trigger (`triggers`), run before or after an item write that names it.
    Trigger,
    /// A user-defined function (`udfs`), called from queries as `udf.name(...)`.
    UserDefinedFunction,
}

impl ScriptKind {
    /// What messages call it: `stored procedure`, `trigger`, `user-defined function`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptKind::StoredProcedure => "stored procedure",
            ScriptKind::Trigger => "trigger",
            ScriptKind::UserDefinedFunction => "user-defined function",
        }
    }

    fn key_byte(self) -> u8 {
        match self {
            ScriptKind::StoredProcedure => b's',
            ScriptKind::Trigger => b't',
            ScriptKind::UserDefinedFunction => b'u',
        }
    }
}

/// When a trigger runs: before the write (`Pre`) or after it (`Post`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggerType {
    /// Before the write; it may change the request's body.
    Pre,
    /// After the write, in the same transaction; it sees the response.
    Post,
}

/// Which item writes a trigger runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggerOperation {
    /// Every write.
    All,
    /// Creates (and upserts that create).
    Create,
    /// Updates: replaces (and upserts that replace).
    Update,
    /// Deletes.
    Delete,
    /// Replaces.
    Replace,
}

impl TriggerType {
    /// Its name on the wire: `Pre` or `Post`.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::Pre => "Pre",
            TriggerType::Post => "Post",
        }
    }
}

impl TriggerOperation {
    /// Its name on the wire: `All`, `Create`, `Update`, `Delete` or `Replace`.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerOperation::All => "All",
            TriggerOperation::Create => "Create",
            TriggerOperation::Update => "Update",
            TriggerOperation::Delete => "Delete",
            TriggerOperation::Replace => "Replace",
        }
    }
}

/// When a trigger runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerDefinition {
    /// Before or after the write.
    pub trigger_type: TriggerType,
    /// On which writes.
    pub operation: TriggerOperation,
    /// `triggerType` and `triggerOperation` as the client spelled them (`Pre`, `pre`, ...),
    /// which Cosmos DB returns unchanged (the Python SDK sends lowercase and compares what
    /// comes back).
    pub spelled_as_sent: (String, String),
}

/// What a client says a script is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptDefinition {
    /// Script id, unique among the container's scripts of its kind.
    pub id: String,
    /// The JavaScript text: a function expression.
    pub body: String,
    /// For a trigger: when it runs; `None` for the other kinds.
    pub trigger: Option<TriggerDefinition>,
}

fn parse_name<T: Copy>(
    object: &serde_json::Map<String, Value>,
    field: &str,
    names: &[(&str, T)],
) -> Result<(T, String)> {
    let expected = names
        .iter()
        .map(|(name, _)| format!("'{name}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sent = object.get(field).and_then(Value::as_str).ok_or_else(|| {
        StoreError::BadRequest(format!(
            "the trigger definition needs a string '{field}' (one of {expected})"
        ))
    })?;
    names
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(sent))
        .map(|(_, value)| (*value, sent.to_owned()))
        .ok_or_else(|| {
            StoreError::BadRequest(format!(
                "the trigger's '{field}' must be one of {expected}, not '{sent}'"
            ))
        })
}

impl ScriptDefinition {
    /// Reads a definition of `kind` from the JSON body Cosmos clients send: `id`, `body` (a
    /// string) and, for a trigger, `triggerType` (`Pre` or `Post`) and `triggerOperation`
    /// (`All`, `Create`, `Update`, `Delete` or `Replace`), in any case. System properties are
    /// ignored.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] naming the missing or invalid field.
    pub fn from_json(kind: ScriptKind, value: &Value) -> Result<Self> {
        let name = kind.as_str();
        let object = value.as_object().ok_or_else(|| {
            StoreError::BadRequest(format!("the {name} definition must be a JSON object"))
        })?;
        let id = object
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                StoreError::BadRequest(format!("the {name} definition needs a string 'id'"))
            })?
            .to_owned();
        let body = match object.get("body") {
            Some(Value::String(body)) => body.clone(),
            Some(other) => {
                return Err(StoreError::BadRequest(format!(
                    "the {name}'s 'body' must be a string of JavaScript, not {other}"
                )));
            }
            None => {
                return Err(StoreError::BadRequest(format!(
                    "the {name} definition needs a 'body': its JavaScript function as a string"
                )));
            }
        };
        let trigger = match kind {
            ScriptKind::Trigger => {
                let (trigger_type, type_as_sent) = parse_name(
                    object,
                    "triggerType",
                    &[("Pre", TriggerType::Pre), ("Post", TriggerType::Post)],
                )?;
                let (operation, operation_as_sent) = parse_name(
                    object,
                    "triggerOperation",
                    &[
                        ("All", TriggerOperation::All),
                        ("Create", TriggerOperation::Create),
                        ("Update", TriggerOperation::Update),
                        ("Delete", TriggerOperation::Delete),
                        ("Replace", TriggerOperation::Replace),
                    ],
                )?;
                Some(TriggerDefinition {
                    trigger_type,
                    operation,
                    spelled_as_sent: (type_as_sent, operation_as_sent),
                })
            }
            ScriptKind::StoredProcedure | ScriptKind::UserDefinedFunction => None,
        };
        let definition = ScriptDefinition { id, body, trigger };
        definition.validate(kind)?;
        Ok(definition)
    }

    /// Checks the definition's own rules: a valid id, a body that is not blank and at most
    /// [`MAX_SCRIPT_BODY_BYTES`] long, trigger settings exactly when `kind` is a trigger.
    ///
    /// # Errors
    /// [`StoreError::BadRequest`] naming the rule broken.
    pub fn validate(&self, kind: ScriptKind) -> Result<()> {
        let name = kind.as_str();
        validate_id(name, &self.id)?;
        if self.body.trim().is_empty() {
            return Err(StoreError::BadRequest(format!(
                "the {name}'s 'body' is empty: it must hold a JavaScript function"
            )));
        }
        if self.body.len() > MAX_SCRIPT_BODY_BYTES {
            return Err(StoreError::BadRequest(format!(
                "the {name}'s 'body' is {} bytes long, over {MAX_SCRIPT_BODY_BYTES}",
                self.body.len()
            )));
        }
        if self.trigger.is_some() != (kind == ScriptKind::Trigger) {
            return Err(StoreError::BadRequest(format!(
                "only a trigger has a trigger type and operation, not a {name}"
            )));
        }
        if let Some(trigger) = &self.trigger {
            let (type_as_sent, operation_as_sent) = &trigger.spelled_as_sent;
            if !type_as_sent.eq_ignore_ascii_case(trigger.trigger_type.as_str())
                || !operation_as_sent.eq_ignore_ascii_case(trigger.operation.as_str())
            {
                return Err(StoreError::BadRequest(format!(
                    "the trigger's spelling '{type_as_sent}'/'{operation_as_sent}' does not name {}/{}",
                    trigger.trigger_type.as_str(),
                    trigger.operation.as_str()
                )));
            }
        }
        Ok(())
    }
}

/// A script's definition and system properties.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptProperties {
    /// Its kind.
    pub kind: ScriptKind,
    /// What the client defined.
    pub definition: ScriptDefinition,
    /// Resource id (base64 of 16 bytes: the container's 8, then the script's 8); a script
    /// deleted and created again under the same id gets a new one.
    pub rid: String,
    /// The container's resource id.
    pub container_rid: String,
    /// The database's resource id.
    pub database_rid: String,
    /// Creation or last replace time, seconds.
    pub ts: u64,
    /// Entity tag (quoted); changes on every replace.
    pub etag: String,
}

/// A script as the catalog keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScriptRecord {
    pub database_seq: u32,
    pub cid: u32,
    pub kind: ScriptKind,
    /// Unique across the store, never reused.
    pub seq: u64,
    pub ts: u64,
    /// Bumped on every replace.
    pub version: u64,
    pub definition: ScriptDefinition,
}

impl ScriptRecord {
    pub(crate) fn properties(&self) -> ScriptProperties {
        let container = container_rid_bytes(self.database_seq, self.cid);
        let mut rid = [0u8; 16];
        rid[..8].copy_from_slice(&container);
        rid[8..].copy_from_slice(&self.seq.to_be_bytes());
        ScriptProperties {
            kind: self.kind,
            definition: self.definition.clone(),
            rid: encode_rid(&rid),
            container_rid: encode_rid(&container),
            database_rid: database_rid(self.database_seq),
            ts: self.ts,
            etag: format!(
                "\"{:016x}-0003-0000-{:012x}\"",
                self.seq,
                self.version & 0xffff_ffff_ffff
            ),
        }
    }

    /// Reads a script record as stored in the meta keyspace (JSON) and checks it.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the fault.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = |fault: String| StoreError::Corrupt(format!("script record: {fault}"));
        let record: ScriptRecord =
            serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        record
            .definition
            .validate(record.kind)
            .map_err(|e| corrupt(e.to_string()))?;
        Ok(record)
    }
}

/// Key of a catalog record for a script: the container's id, its kind, then the script id.
pub(crate) fn script_meta_key(cid: u32, kind: ScriptKind, id: &str) -> Vec<u8> {
    let mut key = SCRIPT_META_PREFIX.to_vec();
    key.extend_from_slice(&cid.to_be_bytes());
    key.push(kind.key_byte());
    key.extend_from_slice(id.as_bytes());
    key
}

/// The prefix of every script record's key.
pub(crate) const SCRIPT_META_PREFIX: &[u8] = b"sc\0";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_trigger_body_is_read_as_cosmos_sends_it() {
        let definition = ScriptDefinition::from_json(
            ScriptKind::Trigger,
            &json!({"id": "t", "body": "function() {}", "triggerType": "pre",
                    "triggerOperation": "Create", "_rid": "ignored"}),
        )
        .unwrap();
        assert_eq!(
            definition.trigger,
            Some(TriggerDefinition {
                trigger_type: TriggerType::Pre,
                operation: TriggerOperation::Create,
                spelled_as_sent: ("pre".into(), "Create".into()),
            })
        );
        let sproc = ScriptDefinition::from_json(
            ScriptKind::StoredProcedure,
            &json!({"id": "s", "body": "function() {}", "triggerType": "Pre"}),
        )
        .unwrap();
        assert_eq!(sproc.trigger, None);
    }

    #[test]
    fn bad_script_bodies_say_what_is_wrong() {
        for (kind, body, expected) in [
            (ScriptKind::StoredProcedure, json!([]), "JSON object"),
            (
                ScriptKind::StoredProcedure,
                json!({"body": "function() {}"}),
                "string 'id'",
            ),
            (
                ScriptKind::StoredProcedure,
                json!({"id": "s"}),
                "needs a 'body'",
            ),
            (
                ScriptKind::UserDefinedFunction,
                json!({"id": "u", "body": 7}),
                "must be a string",
            ),
            (
                ScriptKind::UserDefinedFunction,
                json!({"id": "u", "body": "  "}),
                "is empty",
            ),
            (
                ScriptKind::Trigger,
                json!({"id": "t", "body": "function() {}", "triggerOperation": "All"}),
                "'triggerType'",
            ),
            (
                ScriptKind::Trigger,
                json!({"id": "t", "body": "function() {}", "triggerType": "Middle", "triggerOperation": "All"}),
                "not 'Middle'",
            ),
            (
                ScriptKind::StoredProcedure,
                json!({"id": "a/b", "body": "function() {}"}),
                "not allowed",
            ),
        ] {
            let error = ScriptDefinition::from_json(kind, &body).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{body}: {error} lacks {expected}"
            );
        }
    }
}
