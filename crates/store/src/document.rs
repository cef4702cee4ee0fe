//! Turning a client's JSON into a stored item: validation, partition key, system properties.
//!
//! The expensive part (parsing and re-serializing the JSON) happens on the caller's thread in
//! [`prepare_item`]; the committer only splices the system properties into the prepared text
//! with [`finish_body`].

use std::fmt::Write as _;

use serde_json::{Map, Value};
use tributary_index::IndexingPolicy;
use tributary_partition_key::{PartitionKey, PartitionKeyDefinition};

use crate::catalog::validate_id;
use crate::error::{Result, StoreError};

/// Largest item accepted, system properties included (bytes), as in Cosmos DB.
pub const MAX_ITEM_BYTES: usize = 2 * 1024 * 1024;

/// Deepest nesting of arrays and objects in an item, the root object included: as deep as
/// `serde_json` reads JSON text back (its recursion limit of 128 counts one level more), since
/// the store keeps items as text.
pub const MAX_ITEM_DEPTH: usize = 127;

/// Properties the store owns; a client's values for them are ignored.
pub(crate) const SYSTEM_PROPERTIES: [&str; 6] =
    ["_rid", "_self", "_etag", "_ts", "_lsn", "_attachments"];

/// Room reserved for the system properties spliced in by the committer.
const SYSTEM_PROPERTIES_RESERVE: usize = 256;

/// A validated item, ready for the committer.
#[derive(Clone, Debug)]
pub(crate) struct PreparedItem {
    pub id: String,
    pub partition_key: PartitionKey,
    pub epk: String,
    /// Compact JSON object text without system properties.
    pub user_json: String,
    /// The item's own `ttl`, if set.
    pub ttl: Option<i64>,
    /// The item's range index terms (`_ts` aside: the committer adds it), computed under the
    /// policy of the index generation named, when the caller knew it.
    pub index_terms: Option<PreparedTerms>,
}

/// Index terms computed on the caller's thread (see [`PreparedItem::index_terms`]).
#[derive(Clone, Debug)]
pub(crate) struct PreparedTerms {
    /// The index generation whose policy gave the terms.
    pub generation: u32,
    /// The terms, sorted and distinct.
    pub terms: Vec<Vec<u8>>,
}

/// Validates `body` and extracts what the committer needs.
///
/// `header_key` is the partition key the client named separately (a header); when present it
/// must equal the key found in the body. With `index` (a policy and its index generation),
/// the item's index terms are computed here too, off the committer.
pub(crate) fn prepare_item(
    definition: &PartitionKeyDefinition,
    mut body: Value,
    header_key: Option<&PartitionKey>,
    index: Option<(&IndexingPolicy, u32)>,
) -> Result<PreparedItem> {
    check_depth(&body)?;
    let object = body
        .as_object_mut()
        .ok_or_else(|| StoreError::BadRequest("an item must be a JSON object".into()))?;
    for property in SYSTEM_PROPERTIES {
        object.shift_remove(property);
    }
    let id = match object.get("id") {
        Some(Value::String(id)) => id.clone(),
        Some(other) => {
            return Err(StoreError::BadRequest(format!(
                "the item's 'id' must be a string, not {other}"
            )));
        }
        None => {
            return Err(StoreError::BadRequest(
                "the item has no 'id' property".into(),
            ));
        }
    };
    validate_id("item", &id)?;
    let ttl = item_ttl(object)?;
    let partition_key = PartitionKey::extract(definition, &body)?;
    if let Some(header_key) = header_key
        && header_key != &partition_key
    {
        return Err(StoreError::PartitionKeyMismatch {
            document: partition_key.to_json().to_string(),
            request: header_key.to_json().to_string(),
        });
    }
    let epk = partition_key.effective_partition_key(definition)?;
    let user_json = serde_json::to_string(&body)
        .map_err(|e| StoreError::BadRequest(format!("the item cannot be serialized: {e}")))?;
    let size = user_json.len() + SYSTEM_PROPERTIES_RESERVE;
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::DocumentTooLarge {
            size,
            limit: MAX_ITEM_BYTES,
        });
    }
    let index_terms = index.map(|(policy, generation)| PreparedTerms {
        generation,
        terms: policy.terms(&body),
    });
    Ok(PreparedItem {
        id,
        partition_key,
        epk: epk.as_str().to_owned(),
        user_json,
        ttl,
        index_terms,
    })
}

/// Refuses an item nested deeper than [`MAX_ITEM_DEPTH`], without recursion.
fn check_depth(body: &Value) -> Result<()> {
    let mut pending = vec![(body, 1)];
    while let Some((value, depth)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(members) => Box::new(members.values()),
            _ => continue,
        };
        if depth > MAX_ITEM_DEPTH {
            return Err(StoreError::BadRequest(format!(
                "the item nests arrays and objects deeper than {MAX_ITEM_DEPTH} levels"
            )));
        }
        pending.extend(children.map(|child| (child, depth + 1)));
    }
    Ok(())
}

/// Reads and checks the item-level `ttl` property.
fn item_ttl(object: &Map<String, Value>) -> Result<Option<i64>> {
    match object.get("ttl") {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(ttl) if ttl == -1 || ttl > 0 => Ok(Some(ttl)),
            _ => Err(StoreError::BadRequest(format!(
                "the item's 'ttl' must be -1 or a positive whole number of seconds, not {n}"
            ))),
        },
        Some(other) => Err(StoreError::BadRequest(format!(
            "the item's 'ttl' must be -1 or a positive whole number of seconds, not {other}"
        ))),
    }
}

/// The system properties of one stored version.
pub(crate) struct SystemProperties<'a> {
    pub rid: &'a str,
    pub self_link: &'a str,
    pub etag: &'a str,
    pub ts: u64,
    pub lsn: u64,
}

/// Appends the system properties to a prepared JSON object's text.
pub(crate) fn finish_body(user_json: &str, system: &SystemProperties<'_>) -> String {
    debug_assert!(user_json.starts_with('{') && user_json.ends_with('}'));
    let mut body = String::with_capacity(user_json.len() + SYSTEM_PROPERTIES_RESERVE);
    body.push_str(&user_json[..user_json.len() - 1]);
    if user_json.len() > 2 {
        body.push(',');
    }
    body.push_str("\"_rid\":");
    push_json_string(&mut body, system.rid);
    body.push_str(",\"_self\":");
    push_json_string(&mut body, system.self_link);
    body.push_str(",\"_etag\":");
    push_json_string(&mut body, system.etag);
    body.push_str(",\"_attachments\":\"attachments/\",\"_ts\":");
    // Writing to a String cannot fail.
    let _ = write!(body, "{},\"_lsn\":{}}}", system.ts, system.lsn);
    body
}

/// Appends `text` as a JSON string. System properties are ASCII without control characters
/// (base64, hex, `/`, `-` and the etag's quotes), so only `"` and `\` need escaping; anything
/// else goes through serde_json.
fn push_json_string(out: &mut String, text: &str) {
    if !text.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()) {
        out.push_str(&serde_json::to_string(text).expect("strings serialize"));
        return;
    }
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Removes the system properties from a stored body, giving the client's own JSON object.
pub(crate) fn strip_system_properties(body: &str) -> Result<Value> {
    let mut value: Value = serde_json::from_str(body)
        .map_err(|e| StoreError::Corrupt(format!("stored item is not JSON: {e}")))?;
    if let Some(object) = value.as_object_mut() {
        for property in SYSTEM_PROPERTIES {
            object.shift_remove(property);
        }
    }
    Ok(value)
}

/// The seconds after its `_ts` an item lives, or `None` if it never expires.
pub(crate) fn effective_ttl(default_ttl: Option<i64>, item_ttl: Option<i64>) -> Option<u64> {
    let default_ttl = default_ttl?;
    match item_ttl {
        Some(-1) => None,
        Some(ttl) if ttl > 0 => Some(ttl as u64),
        _ if default_ttl > 0 => Some(default_ttl as u64),
        _ => None,
    }
}

/// The second at which an item expires, if it does.
pub(crate) fn expiry_second(
    default_ttl: Option<i64>,
    item_ttl: Option<i64>,
    ts: u64,
) -> Option<u64> {
    effective_ttl(default_ttl, item_ttl).map(|ttl| ts.saturating_add(ttl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition() -> PartitionKeyDefinition {
        PartitionKeyDefinition::single("/pk")
    }

    #[test]
    fn a_header_key_that_differs_from_the_document_is_a_mismatch() {
        let header = PartitionKey::from_header(r#"["other"]"#).unwrap();
        let error = prepare_item(
            &definition(),
            json!({"id": "a", "pk": "p"}),
            Some(&header),
            None,
        )
        .map(|_| ())
        .unwrap_err();
        assert!(
            matches!(&error, StoreError::PartitionKeyMismatch { document, request }
                if document == r#"["p"]"# && request == r#"["other"]"#),
            "{error:?}"
        );
    }

    #[test]
    fn system_properties_are_spliced_after_user_properties() {
        let prepared = prepare_item(
            &definition(),
            json!({"id": "a", "pk": "p", "_etag": "x"}),
            None,
            None,
        )
        .unwrap();
        assert_eq!(prepared.user_json, r#"{"id":"a","pk":"p"}"#);
        let body = finish_body(
            &prepared.user_json,
            &SystemProperties {
                rid: "r\\",
                self_link: "s\u{e9}\n",
                etag: "\"e\"",
                ts: 5,
                lsn: 9,
            },
        );
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["_etag"], "\"e\"");
        assert_eq!(value["_rid"], "r\\");
        assert_eq!(value["_self"], "s\u{e9}\n");
        assert_eq!(value["_ts"], 5);
        assert_eq!(value["_lsn"], 9);
        assert_eq!(value["id"], "a");
    }

    /// `depth` nested objects, the outermost an item: `{"id": "a", "pk": "p", "n": {"n": ...}}`.
    fn nested_item(depth: usize) -> Value {
        let mut value = json!(1);
        for _ in 1..depth {
            value = json!({ "n": value });
        }
        json!({"id": "a", "pk": "p", "n": value})
    }

    // Regression (found through the binary_json fuzz target): an item nested deeper than
    // serde_json reads back was stored, and reading it panicked in `Item::to_value`.
    #[test]
    fn an_item_nested_deeper_than_json_text_can_be_read_back_is_refused() {
        let deepest = prepare_item(&definition(), nested_item(MAX_ITEM_DEPTH), None, None)
            .expect("MAX_ITEM_DEPTH levels are accepted");
        let text = finish_body(
            &deepest.user_json,
            &SystemProperties {
                rid: "r",
                self_link: "s",
                etag: "e",
                ts: 1,
                lsn: 2,
            },
        );
        serde_json::from_str::<Value>(&text).expect("the stored text parses back");
        let error = prepare_item(&definition(), nested_item(MAX_ITEM_DEPTH + 1), None, None)
            .expect_err("one level deeper");
        assert!(
            matches!(&error, StoreError::BadRequest(reason) if reason.contains("deeper than 127")),
            "{error:?}"
        );
        // Far deeper is refused the same way (the check does not recurse).
        let mut deep = json!(null);
        for _ in 0..1_000 {
            deep = Value::Array(vec![deep]);
        }
        let body = json!({"id": "a", "pk": "p", "deep": deep});
        assert!(prepare_item(&definition(), body, None, None).is_err());
    }

    #[test]
    fn invalid_items_are_rejected_with_a_reason() {
        let cases = [
            (json!([1]), "JSON object"),
            (json!({"pk": "p"}), "no 'id'"),
            (json!({"id": 5}), "must be a string"),
            (json!({"id": "a/b"}), "not allowed"),
            (
                json!({"id": "x".repeat(1024)}),
                "1024 bytes long, over 1023",
            ),
            (json!({"id": "a", "ttl": 0}), "'ttl'"),
            (json!({"id": "a", "ttl": null}), "'ttl'"),
        ];
        for (body, expected) in cases {
            let error = prepare_item(&definition(), body.clone(), None, None).unwrap_err();
            assert!(error.to_string().contains(expected), "{body}: {error}");
        }
        // Items may have longer ids than databases and containers.
        prepare_item(
            &definition(),
            json!({"id": "x".repeat(1023), "pk": "p"}),
            None,
            None,
        )
        .unwrap();
        let multibyte = "é".repeat(512);
        let error = prepare_item(&definition(), json!({"id": multibyte}), None, None).unwrap_err();
        assert!(error.to_string().contains("1024 bytes long"), "{error}");
    }

    #[test]
    fn header_key_must_match_body_key() {
        let header = PartitionKey::from_header(r#"["other"]"#).unwrap();
        let error = prepare_item(
            &definition(),
            json!({"id": "a", "pk": "p"}),
            Some(&header),
            None,
        )
        .unwrap_err();
        assert!(
            matches!(error, StoreError::PartitionKeyMismatch { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn oversized_items_are_rejected() {
        let body = json!({"id": "a", "pk": "p", "big": "x".repeat(MAX_ITEM_BYTES)});
        let error = prepare_item(&definition(), body, None, None).unwrap_err();
        assert!(
            matches!(error, StoreError::DocumentTooLarge { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn ttl_rules_follow_cosmos() {
        assert_eq!(effective_ttl(None, Some(10)), None);
        assert_eq!(effective_ttl(Some(-1), None), None);
        assert_eq!(effective_ttl(Some(-1), Some(10)), Some(10));
        assert_eq!(effective_ttl(Some(5), None), Some(5));
        assert_eq!(effective_ttl(Some(5), Some(-1)), None);
        assert_eq!(effective_ttl(Some(5), Some(20)), Some(20));
    }
}
