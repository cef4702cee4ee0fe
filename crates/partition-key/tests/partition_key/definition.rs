//! Partition key definitions: defaults, validation and the JSON round trip.

use serde_json::{Value, json};
use tributary_partition_key::{
    PartitionKeyDefinition, PartitionKeyError, PartitionKeyKind, PartitionKeyVersion,
};

fn parse(value: Value) -> Result<PartitionKeyDefinition, PartitionKeyError> {
    PartitionKeyDefinition::from_json(&value)
}

#[test]
fn explicit_fields_are_kept() {
    let definition = parse(json!({"paths": ["/pk"], "kind": "Hash", "version": 2})).unwrap();
    assert_eq!(definition, PartitionKeyDefinition::single("/pk"));
}

#[test]
fn missing_version_means_v1_like_the_service() {
    // The Node SDK sends `{"paths": ["/pk"]}` unless told otherwise.
    let definition = parse(json!({"paths": ["/pk"]})).unwrap();
    assert_eq!(definition.kind, PartitionKeyKind::Hash);
    assert_eq!(definition.version, PartitionKeyVersion::V1);
    let definition = parse(json!({"paths": ["/pk"], "kind": "Hash", "version": null})).unwrap();
    assert_eq!(definition.version, PartitionKeyVersion::V1);
}

#[test]
fn several_paths_default_to_multi_hash_v2() {
    let definition = parse(json!({"paths": ["/tenant", "/user"]})).unwrap();
    assert_eq!(definition.kind, PartitionKeyKind::MultiHash);
    assert_eq!(definition.version, PartitionKeyVersion::V2);
    let definition = parse(json!({"paths": ["/tenant", "/user"], "kind": "MultiHash"})).unwrap();
    assert_eq!(definition.version, PartitionKeyVersion::V2);
}

#[test]
fn kind_is_matched_without_case() {
    let definition = parse(json!({"paths": ["/a", "/b"], "kind": "multihash", "version": 2}));
    assert_eq!(definition.unwrap().kind, PartitionKeyKind::MultiHash);
}

#[test]
fn to_json_always_writes_kind_and_version() {
    let definition = parse(json!({"paths": ["/pk"]})).unwrap();
    assert_eq!(
        definition.to_json(),
        json!({"paths": ["/pk"], "kind": "Hash", "version": 1})
    );
    let hierarchical = PartitionKeyDefinition::hierarchical(&["/a", "/b", "/c"]).unwrap();
    assert_eq!(
        hierarchical.to_json(),
        json!({"paths": ["/a", "/b", "/c"], "kind": "MultiHash", "version": 2})
    );
}

#[test]
fn system_key_is_preserved() {
    let body =
        json!({"paths": ["/_partitionKey"], "kind": "Hash", "version": 2, "systemKey": true});
    let definition = parse(body.clone()).unwrap();
    assert_eq!(definition.system_key, Some(true));
    assert_eq!(definition.to_json(), body);
    let without = parse(json!({"paths": ["/pk"], "kind": "Hash", "version": 2})).unwrap();
    assert_eq!(without.system_key, None);
    assert!(without.to_json().get("systemKey").is_none());
}

#[test]
fn serde_round_trips_through_the_cosmos_form() {
    let definition = PartitionKeyDefinition::hierarchical(&["/a", "/b"]).unwrap();
    let text = serde_json::to_string(&definition).unwrap();
    assert_eq!(
        text,
        r#"{"paths":["/a","/b"],"kind":"MultiHash","version":2}"#
    );
    let back: PartitionKeyDefinition = serde_json::from_str(&text).unwrap();
    assert_eq!(back, definition);
    let defaulted: PartitionKeyDefinition = serde_json::from_str(r#"{"paths":["/pk"]}"#).unwrap();
    assert_eq!(defaulted.version, PartitionKeyVersion::V1);
    let invalid = serde_json::from_str::<PartitionKeyDefinition>(r#"{"paths":[]}"#);
    let message = invalid.unwrap_err().to_string();
    assert!(message.contains("0 paths"), "{message}");
}

#[test]
fn invalid_definitions_are_rejected_with_a_precise_error() {
    let cases = [
        (json!("/pk"), "must be a JSON object"),
        (json!({}), "no \"paths\" field"),
        (
            json!({"paths": "/pk"}),
            "\"paths\" must be an array of strings, got a string",
        ),
        (
            json!({"paths": [1]}),
            "\"paths\" must be an array of strings, got a number",
        ),
        (json!({"paths": []}), "has 0 paths"),
        (json!({"paths": ["/a", "/b", "/c", "/d"]}), "has 4 paths"),
        (json!({"paths": ["pk"]}), "must start with '/'"),
        (json!({"paths": ["/a//b"]}), "segment 2 is empty"),
        (json!({"paths": ["/a", "/a"]}), "appears more than once"),
        (
            json!({"paths": ["/a"], "kind": "Range"}),
            "kind \"Range\" is not supported",
        ),
        (
            json!({"paths": ["/a"], "kind": 1}),
            "\"kind\" must be a string",
        ),
        (
            json!({"paths": ["/a"], "version": 3}),
            "version 3 is not supported",
        ),
        (
            json!({"paths": ["/a"], "version": "2"}),
            "\"version\" must be the number 1 or 2",
        ),
        (
            json!({"paths": ["/a", "/b"], "kind": "Hash"}),
            "exactly one path, got 2",
        ),
        (
            json!({"paths": ["/a", "/b"], "version": 1}),
            "requires version 2",
        ),
        (
            json!({"paths": ["/a"], "systemKey": "yes"}),
            "\"systemKey\" must be a boolean",
        ),
    ];
    for (body, expected) in cases {
        let error = parse(body.clone()).expect_err(&format!("{body} should be rejected"));
        let message = error.to_string();
        assert!(
            message.contains(expected),
            "{body}: {message:?} lacks {expected:?}"
        );
    }
}

#[test]
fn hierarchical_validates_its_paths() {
    assert!(matches!(
        PartitionKeyDefinition::hierarchical(&[]),
        Err(PartitionKeyError::PathCount { n_paths: 0 })
    ));
    assert!(matches!(
        PartitionKeyDefinition::hierarchical(&["/a", "b"]),
        Err(PartitionKeyError::InvalidPath { .. })
    ));
}

#[test]
fn validate_catches_a_hand_built_definition() {
    let definition = PartitionKeyDefinition {
        paths: vec!["/a".to_owned(), "/b".to_owned()],
        kind: PartitionKeyKind::MultiHash,
        version: PartitionKeyVersion::V1,
        system_key: None,
    };
    assert!(matches!(
        definition.validate(),
        Err(PartitionKeyError::MultiHashNeedsV2)
    ));
    assert!(PartitionKeyDefinition::single("nope").validate().is_err());
    assert!(PartitionKeyDefinition::single("/ok").validate().is_ok());
}
