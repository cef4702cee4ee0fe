//! Partition key values: the header, JSON, extraction from documents, and
//! which keys fit which definitions.

use serde_json::json;
use tributary_partition_key::{
    MAX_PARTITION_KEY_VALUE_BYTES, PartitionKey, PartitionKeyComponent as C,
    PartitionKeyDefinition, PartitionKeyError, PartitionKeyKind, PartitionKeyVersion,
};

fn s(text: &str) -> C {
    C::String(text.to_owned())
}

#[test]
fn header_forms_the_sdks_send() {
    let cases = [
        (r#"["p1"]"#, vec![s("p1")]),
        ("[5]", vec![C::Number(5.0)]),
        ("[5.5]", vec![C::Number(5.5)]),
        ("[-1]", vec![C::Number(-1.0)]),
        ("[true]", vec![C::Bool(true)]),
        ("[null]", vec![C::Null]),
        ("[{}]", vec![C::Undefined]),
        ("[]", vec![]),
        (r#"["a","b"]"#, vec![s("a"), s("b")]),
        (
            r#"["a", 1, false]"#,
            vec![s("a"), C::Number(1.0), C::Bool(false)],
        ),
        // Python's json.dumps escapes non-ASCII.
        (r#"["\u00f1\u20ac"]"#, vec![s("ñ€")]),
    ];
    for (header, expected) in cases {
        assert_eq!(
            PartitionKey::from_header(header).unwrap(),
            PartitionKey(expected),
            "{header}"
        );
    }
}

#[test]
fn large_integers_round_to_the_nearest_double() {
    let key = PartitionKey::from_header("[9223372036854775807]").unwrap();
    assert_eq!(
        key,
        PartitionKey(vec![C::Number(9_223_372_036_854_775_808.0)])
    );
    let key = PartitionKey::from_header("[18446744073709551615]").unwrap();
    assert_eq!(
        key,
        PartitionKey(vec![C::Number(18_446_744_073_709_551_616.0)])
    );
}

#[test]
fn bad_headers_are_rejected_with_a_precise_error() {
    let cases = [
        ("", "not valid JSON"),
        ("[p1]", "not valid JSON"),
        (r#""p1""#, "must be a JSON array"),
        ("{}", "must be a JSON array"),
        (r#"[["a"]]"#, "component 0 is an array"),
        (r#"["a", {"x": 1}]"#, "component 1 is an object"),
        (r#"["a","b","c","d"]"#, "4 components; at most 3"),
        ("[1e999]", "not valid JSON"),
    ];
    for (header, expected) in cases {
        let message = PartitionKey::from_header(header)
            .expect_err(&format!("{header:?} should be rejected"))
            .to_string();
        assert!(
            message.contains(expected),
            "{header:?}: {message:?} lacks {expected:?}"
        );
    }
}

#[test]
fn from_json_accepts_a_bare_component() {
    assert_eq!(
        PartitionKey::from_json(&json!("p1")).unwrap(),
        PartitionKey(vec![s("p1")])
    );
    assert_eq!(
        PartitionKey::from_json(&json!(null)).unwrap(),
        PartitionKey(vec![C::Null])
    );
    assert_eq!(
        PartitionKey::from_json(&json!({})).unwrap(),
        PartitionKey(vec![C::Undefined])
    );
    assert!(PartitionKey::from_json(&json!({"a": 1})).is_err());
}

#[test]
fn to_json_is_what_the_sdks_send() {
    let key = PartitionKey(vec![s("a"), C::Number(5.0), C::Undefined]);
    assert_eq!(key.to_json().to_string(), r#"["a",5,{}]"#);
    let key = PartitionKey(vec![C::Number(5.5), C::Null, C::Bool(true)]);
    assert_eq!(key.to_json().to_string(), "[5.5,null,true]");
    assert_eq!(PartitionKey(vec![]).to_json().to_string(), "[]");
    assert_eq!(
        PartitionKey(vec![C::Number(-0.0)]).to_json().to_string(),
        "[-0.0]"
    );
    assert_eq!(
        PartitionKey(vec![C::Number(1e300)]).to_json().to_string(),
        "[1e+300]"
    );
    assert_eq!(
        PartitionKey(vec![C::Number(f64::NAN)])
            .to_json()
            .to_string(),
        "[null]"
    );
}

#[test]
fn header_round_trips_through_to_json() {
    for header in [
        r#"["p1"]"#,
        "[5]",
        "[5.5]",
        "[{}]",
        "[]",
        r#"["a",null,true]"#,
        "[-0.0]",
    ] {
        let key = PartitionKey::from_header(header).unwrap();
        let again = PartitionKey::from_header(&key.to_json().to_string()).unwrap();
        assert_eq!(again, key, "{header}");
    }
}

#[test]
fn negative_zero_hashes_apart_from_zero() {
    // serde_json, like JS's JSON.parse, reads both spellings as negative zero.
    let integer = PartitionKey::from_header("[-0]").unwrap();
    let float = PartitionKey::from_header("[-0.0]").unwrap();
    let zero = PartitionKey::from_header("[0]").unwrap();
    assert_eq!(integer, float);
    let definition = PartitionKeyDefinition::single("/pk");
    let epk = |key: &PartitionKey| key.effective_partition_key(&definition).unwrap();
    // The JS SDK computes the same for JSON.parse("-0").
    assert_eq!(epk(&float).as_str(), "3D018BB1DF3DB27235766E81FD10406E");
    assert_ne!(epk(&float), epk(&zero));
}

#[test]
fn extract_reads_top_level_and_nested_paths() {
    let definition = PartitionKeyDefinition::single("/pk");
    let document = json!({"id": "1", "pk": "p1"});
    assert_eq!(
        PartitionKey::extract(&definition, &document).unwrap(),
        PartitionKey(vec![s("p1")])
    );

    let nested = PartitionKeyDefinition::single("/address/city");
    let document = json!({"id": "1", "address": {"city": "Oslo", "zip": 1}});
    assert_eq!(
        PartitionKey::extract(&nested, &document).unwrap(),
        PartitionKey(vec![s("Oslo")])
    );

    let quoted = PartitionKeyDefinition::single("/\"a/b\"");
    let document = json!({"a/b": 7});
    assert_eq!(
        PartitionKey::extract(&quoted, &document).unwrap(),
        PartitionKey(vec![C::Number(7.0)])
    );
}

#[test]
fn extract_distinguishes_missing_from_null() {
    let definition = PartitionKeyDefinition::single("/pk");
    let missing = PartitionKey::extract(&definition, &json!({"id": "1"})).unwrap();
    assert_eq!(missing, PartitionKey(vec![C::Undefined]));
    let null = PartitionKey::extract(&definition, &json!({"id": "1", "pk": null})).unwrap();
    assert_eq!(null, PartitionKey(vec![C::Null]));
    // The SDKs send these two as [{}] and [null].
    assert_eq!(missing, PartitionKey::from_header("[{}]").unwrap());
    assert_eq!(null, PartitionKey::from_header("[null]").unwrap());
}

#[test]
fn extract_treats_a_path_through_a_non_object_as_missing() {
    let definition = PartitionKeyDefinition::single("/a/b");
    for document in [
        json!({"a": 5}),
        json!({"a": "text"}),
        json!({"a": null}),
        json!({"a": [{"b": 1}]}),
        json!({"a": {}}),
    ] {
        assert_eq!(
            PartitionKey::extract(&definition, &document).unwrap(),
            PartitionKey(vec![C::Undefined]),
            "{document}"
        );
    }
}

#[test]
fn extract_files_objects_and_arrays_under_the_undefined_key() {
    let definition = PartitionKeyDefinition::single("/pk");
    for document in [
        json!({"pk": {"x": 1}}),
        json!({"pk": {}}),
        json!({"pk": [1]}),
    ] {
        assert_eq!(
            PartitionKey::extract(&definition, &document).unwrap(),
            PartitionKey(vec![C::Undefined]),
            "{document}"
        );
    }
    assert!(matches!(
        PartitionKey::extract(&definition, &json!([1])),
        Err(PartitionKeyError::DocumentNotObject { found: "an array" })
    ));
}

#[test]
fn extract_hierarchical_keeps_undefined_levels() {
    let definition =
        PartitionKeyDefinition::hierarchical(&["/tenant", "/user", "/session"]).unwrap();
    let document = json!({"tenant": "t1", "session": 3});
    assert_eq!(
        PartitionKey::extract(&definition, &document).unwrap(),
        PartitionKey(vec![s("t1"), C::Undefined, C::Number(3.0)])
    );
}

#[test]
fn extract_gives_the_empty_key_for_a_missing_system_key() {
    let definition = PartitionKeyDefinition::from_json(&json!({
        "paths": ["/_partitionKey"], "kind": "Hash", "version": 2, "systemKey": true
    }))
    .unwrap();
    let missing = PartitionKey::extract(&definition, &json!({"id": "1"})).unwrap();
    assert_eq!(missing, PartitionKey(vec![]));
    assert_eq!(
        missing
            .effective_partition_key(&definition)
            .unwrap()
            .as_str(),
        ""
    );
    let present = PartitionKey::extract(&definition, &json!({"_partitionKey": "x"})).unwrap();
    assert_eq!(present, PartitionKey(vec![s("x")]));
}

#[test]
fn extract_reports_a_malformed_path() {
    let definition = PartitionKeyDefinition::single("pk");
    assert!(matches!(
        PartitionKey::extract(&definition, &json!({"pk": 1})),
        Err(PartitionKeyError::InvalidPath { .. })
    ));
}

#[test]
fn values_over_the_size_limit_are_rejected() {
    let at_limit = "x".repeat(MAX_PARTITION_KEY_VALUE_BYTES);
    assert!(PartitionKey::from_json(&json!([at_limit])).is_ok());
    let over = "x".repeat(MAX_PARTITION_KEY_VALUE_BYTES + 1);
    assert!(matches!(
        PartitionKey::from_json(&json!([over])),
        Err(PartitionKeyError::ValueTooLarge { n_bytes }) if n_bytes == MAX_PARTITION_KEY_VALUE_BYTES + 1
    ));
    let half = "x".repeat(MAX_PARTITION_KEY_VALUE_BYTES / 2 + 1);
    let definition = PartitionKeyDefinition::hierarchical(&["/a", "/b"]).unwrap();
    assert!(matches!(
        PartitionKey::extract(&definition, &json!({"a": half, "b": half})),
        Err(PartitionKeyError::ValueTooLarge { .. })
    ));
}

#[test]
fn component_count_must_fit_the_definition() {
    let single = PartitionKeyDefinition::single("/pk");
    let two = PartitionKey::from_header(r#"["a","b"]"#).unwrap();
    let error = two.effective_partition_key(&single).unwrap_err();
    assert!(
        matches!(
            error,
            PartitionKeyError::ComponentCountMismatch {
                n_components: 2,
                n_paths: 1,
                ..
            }
        ),
        "{error:?}"
    );

    let hierarchical = PartitionKeyDefinition::hierarchical(&["/a", "/b"]).unwrap();
    let three = PartitionKey::from_header(r#"["a","b","c"]"#).unwrap();
    let message = three
        .effective_partition_key(&hierarchical)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("may be a prefix, but not longer"),
        "{message}"
    );
    let prefix = PartitionKey::from_header(r#"["a"]"#).unwrap();
    assert_eq!(
        prefix
            .effective_partition_key(&hierarchical)
            .unwrap()
            .as_str()
            .len(),
        32
    );
}

#[test]
fn empty_key_has_the_minimum_epk_under_every_definition() {
    let empty = PartitionKey(vec![]);
    let v1 = PartitionKeyDefinition {
        version: PartitionKeyVersion::V1,
        ..PartitionKeyDefinition::single("/pk")
    };
    for definition in [
        PartitionKeyDefinition::single("/pk"),
        v1,
        PartitionKeyDefinition::hierarchical(&["/a", "/b"]).unwrap(),
    ] {
        assert_eq!(
            empty.effective_partition_key(&definition).unwrap().as_str(),
            ""
        );
    }
}

#[test]
fn inconsistent_hand_built_definitions_give_errors_not_hashes() {
    let key = PartitionKey::from_header(r#"["a","b"]"#).unwrap();
    let multi_v1 = PartitionKeyDefinition {
        paths: vec!["/a".to_owned(), "/b".to_owned()],
        kind: PartitionKeyKind::MultiHash,
        version: PartitionKeyVersion::V1,
        system_key: None,
    };
    assert!(matches!(
        key.effective_partition_key(&multi_v1),
        Err(PartitionKeyError::MultiHashNeedsV2)
    ));
    let hash_two_paths = PartitionKeyDefinition {
        kind: PartitionKeyKind::Hash,
        version: PartitionKeyVersion::V2,
        ..multi_v1
    };
    assert!(matches!(
        key.effective_partition_key(&hash_two_paths),
        Err(PartitionKeyError::HashNeedsOnePath { n_paths: 2 })
    ));
    let no_paths = PartitionKeyDefinition {
        paths: vec![],
        ..PartitionKeyDefinition::single("/pk")
    };
    assert!(matches!(
        PartitionKey(vec![]).effective_partition_key(&no_paths),
        Err(PartitionKeyError::PathCount { n_paths: 0 })
    ));
}

#[test]
fn is_prefix_of_only_for_shorter_multi_hash_keys() {
    let hierarchical = PartitionKeyDefinition::hierarchical(&["/a", "/b", "/c"]).unwrap();
    let single = PartitionKeyDefinition::single("/pk");
    let one = PartitionKey(vec![s("a")]);
    let three = PartitionKey(vec![s("a"), s("b"), s("c")]);
    assert!(one.is_prefix_of(&hierarchical));
    assert!(PartitionKey(vec![]).is_prefix_of(&hierarchical));
    assert!(!three.is_prefix_of(&hierarchical));
    assert!(!one.is_prefix_of(&single));
    assert!(!PartitionKey(vec![]).is_prefix_of(&single));
}
