//! Properties over random keys, headers and ranges.

use proptest::prelude::*;
use serde_json::Value;
use tributary_partition_key::{
    Epk, EpkRange, PartitionKey, PartitionKeyComponent, PartitionKeyDefinition, PartitionKeyError,
    PartitionKeyKind, PartitionKeyVersion, epk_midpoint, parse_path,
};

fn component() -> impl Strategy<Value = PartitionKeyComponent> {
    prop_oneof![
        Just(PartitionKeyComponent::Undefined),
        Just(PartitionKeyComponent::Null),
        any::<bool>().prop_map(PartitionKeyComponent::Bool),
        any::<f64>().prop_map(PartitionKeyComponent::Number),
        any::<i64>().prop_map(|n| PartitionKeyComponent::Number(n as f64)),
        ".{0,300}".prop_map(PartitionKeyComponent::String),
    ]
}

fn hash_definition() -> impl Strategy<Value = PartitionKeyDefinition> {
    prop_oneof![Just(PartitionKeyVersion::V1), Just(PartitionKeyVersion::V2)].prop_map(|version| {
        PartitionKeyDefinition {
            paths: vec!["/pk".to_owned()],
            kind: PartitionKeyKind::Hash,
            version,
            system_key: None,
        }
    })
}

fn hierarchical(n_paths: usize) -> PartitionKeyDefinition {
    let paths = ["/a", "/b", "/c"];
    PartitionKeyDefinition::hierarchical(&paths[..n_paths]).expect("valid paths")
}

/// Random JSON of bounded depth and size.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<f64>()
            .prop_map(|n| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number)),
        any::<i64>().prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-c]{1,2}", inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn is_upper_hex(text: &str) -> bool {
    text.bytes()
        .all(|byte| byte.is_ascii_digit() || (b'A'..=b'F').contains(&byte))
}

proptest! {
    #[test]
    fn v2_epk_is_32_upper_hex_digits_starting_at_most_3(component in component()) {
        let definition = PartitionKeyDefinition::single("/pk");
        let epk = PartitionKey(vec![component]).effective_partition_key(&definition).unwrap();
        prop_assert_eq!(epk.as_str().len(), 32);
        prop_assert!(is_upper_hex(epk.as_str()));
        prop_assert!(epk.as_str().as_bytes()[0] <= b'3');
        prop_assert!(epk < Epk::max());
    }

    #[test]
    fn multi_hash_epk_is_one_masked_hash_per_component(key in prop::collection::vec(component(), 0..=3)) {
        let definition = hierarchical(3);
        let epk = PartitionKey(key.clone()).effective_partition_key(&definition).unwrap();
        prop_assert_eq!(epk.as_str().len(), 32 * key.len());
        for (piece, component) in epk.as_str().as_bytes().chunks(32).zip(&key) {
            prop_assert!(piece[0] <= b'3');
            let alone = PartitionKey(vec![component.clone()])
                .effective_partition_key(&PartitionKeyDefinition::single("/pk"))
                .unwrap();
            prop_assert_eq!(piece, alone.as_str().as_bytes());
        }
    }

    #[test]
    fn v1_epk_starts_with_the_hash_as_a_number(component in component()) {
        let definition = PartitionKeyDefinition {
            version: PartitionKeyVersion::V1,
            ..PartitionKeyDefinition::single("/pk")
        };
        let epk = PartitionKey(vec![component]).effective_partition_key(&definition).unwrap();
        // The number marker, then the top byte of a u32 hash as an order-preserving
        // double: C0 or C1 for hashes of 2 and more, BF for 1, 80 for 0.
        let top = epk.as_str().get(2..4);
        prop_assert!(epk.as_str().starts_with("05"), "{}", epk);
        prop_assert!(matches!(top, Some("C0" | "C1" | "BF" | "80")), "{}", epk);
        prop_assert!(is_upper_hex(epk.as_str()));
        prop_assert!(epk < Epk::max());
    }

    #[test]
    fn key_range_contains_its_own_epk(
        definition in hash_definition(),
        component in component(),
    ) {
        let key = PartitionKey(vec![component]);
        let epk = key.effective_partition_key(&definition).unwrap();
        let range = key.epk_range(&definition).unwrap();
        prop_assert!(range.contains(&epk));
        prop_assert_eq!(range.min, epk);
    }

    #[test]
    fn prefix_range_contains_every_completion(
        key in prop::collection::vec(component(), 1..=3),
        prefix_len in 0usize..=3,
    ) {
        let definition = hierarchical(key.len());
        let full = PartitionKey(key.clone());
        let prefix = PartitionKey(key[..prefix_len.min(key.len())].to_vec());
        let covered = prefix.epk_range(&definition).unwrap();
        let epk = full.effective_partition_key(&definition).unwrap();
        prop_assert!(covered.contains(&epk), "{} not in {}", epk, covered);
        prop_assert!(EpkRange::full().intersect(&covered) == Some(covered.clone()));
    }

    #[test]
    fn header_parsing_never_panics(header in ".{0,200}") {
        let _ = PartitionKey::from_header(&header);
    }

    #[test]
    fn json_handling_never_panics(value in json(), definition_body in json()) {
        let _ = PartitionKey::from_json(&value);
        let _ = PartitionKeyDefinition::from_json(&definition_body);
        for definition in [PartitionKeyDefinition::single("/a/b"), hierarchical(3)] {
            if let Ok(key) = PartitionKey::extract(&definition, &value) {
                let epk = key.effective_partition_key(&definition).unwrap();
                prop_assert!(key.epk_range(&definition).unwrap().contains(&epk));
            }
        }
    }

    #[test]
    fn header_round_trips(key in prop::collection::vec(component(), 0..=3)) {
        // Non-finite numbers have no JSON form; every other key survives.
        prop_assume!(key.iter().all(|c| !matches!(c, PartitionKeyComponent::Number(n) if !n.is_finite())));
        prop_assume!(key.iter().map(|c| match c { PartitionKeyComponent::String(s) => s.len(), _ => 0 }).sum::<usize>() <= 2048);
        let key = PartitionKey(key);
        let again = PartitionKey::from_header(&key.to_json().to_string()).unwrap();
        prop_assert_eq!(again, key);
    }

    #[test]
    fn epk_parse_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..50)) {
        let epk = Epk::from_bytes(&bytes);
        prop_assert_eq!(epk.to_bytes(), bytes);
        prop_assert_eq!(Epk::parse(&epk.as_str().to_ascii_lowercase()).unwrap(), epk.clone());
        prop_assert!(epk < epk.successor());
    }

    #[test]
    fn order_of_epks_is_order_of_bytes(
        a in prop::collection::vec(any::<u8>(), 0..20),
        b in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        prop_assert_eq!(Epk::from_bytes(&a).cmp(&Epk::from_bytes(&b)), a.cmp(&b));
    }

    #[test]
    fn midpoint_is_strictly_inside_when_it_exists(
        a in prop::collection::vec(any::<u8>(), 0..20),
        b in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        let (low, high) = if a < b { (a, b) } else { (b, a) };
        prop_assume!(low != high);
        let range = EpkRange::new(Epk::from_bytes(&low), Epk::from_bytes(&high)).unwrap();
        match epk_midpoint(&range) {
            Some(middle) => prop_assert!(range.min < middle && middle < range.max),
            // Nothing lies strictly between x and x followed by zero bytes.
            None => {
                prop_assert!(high.starts_with(&low));
                prop_assert!(high[low.len()..].iter().all(|byte| *byte == 0));
            }
        }
    }
}

/// Valid `x-ms-documentdb-partitionkey` values as the SDKs send them: the seeds the edits start
/// from.
const SEED_HEADERS: &[&str] = &[
    r#"["p1"]"#,
    "[5]",
    "[true]",
    "[null]",
    "[{}]",
    "[]",
    r#"["a",2.5,false]"#,
    "[-1e308]",
    r#"["\u00e9\u0000x"]"#,
    r#"["tenant",{},"user"]"#,
];

/// Valid container `partitionKey` definitions: the seeds the edits start from.
const SEED_DEFINITIONS: &[&str] = &[
    r#"{"paths":["/pk"],"kind":"Hash","version":2}"#,
    r#"{"paths":["/a/b"],"kind":"Hash"}"#,
    r#"{"paths":["/tenant","/user","/session"],"kind":"MultiHash","version":2}"#,
    r#"{"paths":["/\"a b\"/'c/d'"],"kind":"Hash","version":1,"systemKey":false}"#,
];

/// Checks what every accepted key satisfies: it survives the header form, and its EPK lies
/// in its own range under every definition it fits.
fn check_key(key: &PartitionKey) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        &PartitionKey::from_header(&key.to_json().to_string()).unwrap(),
        key
    );
    let definitions = [
        PartitionKeyDefinition::single("/pk"),
        PartitionKeyDefinition {
            version: PartitionKeyVersion::V1,
            ..PartitionKeyDefinition::single("/pk")
        },
        hierarchical(3),
    ];
    for definition in definitions {
        if let Ok(epk) = key.effective_partition_key(&definition) {
            prop_assert!(key.epk_range(&definition).unwrap().contains(&epk));
            prop_assert!(epk <= Epk::max());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Valid headers with bytes changed, cut, repeated, inserted or spliced in from another
    /// seed: a key that round-trips and hashes into its own range, or a typed error.
    #[test]
    fn edited_headers_give_a_key_that_round_trips_or_a_typed_error(
        seed in any::<usize>(),
        edits in tributary_mutate::edits(),
    ) {
        let header = tributary_mutate::apply_to_text(SEED_HEADERS[seed % SEED_HEADERS.len()], &edits, SEED_HEADERS);
        if let Ok(key) = PartitionKey::from_header(&header) {
            check_key(&key)?;
        }
    }

    #[test]
    fn arbitrary_headers_give_a_key_that_round_trips_or_a_typed_error(header in "\\PC{0,80}") {
        if let Ok(key) = PartitionKey::from_header(&header) {
            check_key(&key)?;
        }
    }

    /// Valid definitions, edited: a definition that validates and survives its JSON form, or
    /// a typed error.
    #[test]
    fn edited_definitions_round_trip_or_give_a_typed_error(
        seed in any::<usize>(),
        edits in tributary_mutate::edits(),
    ) {
        let text = tributary_mutate::apply_to_text(SEED_DEFINITIONS[seed % SEED_DEFINITIONS.len()], &edits, SEED_DEFINITIONS);
        let Ok(body) = serde_json::from_str::<Value>(&text) else {
            return Ok(());
        };
        if let Ok(definition) = PartitionKeyDefinition::from_json(&body) {
            prop_assert!(definition.validate().is_ok());
            prop_assert_eq!(PartitionKeyDefinition::from_json(&definition.to_json()).ok(), Some(definition.clone()));
            for path in &definition.paths {
                let segments = parse_path(path).unwrap();
                prop_assert!(!segments.is_empty());
            }
        }
    }

    /// Any text is an EPK (its hex digits, uppercased) or `InvalidEpk`.
    #[test]
    fn epk_text_parses_to_its_uppercase_or_invalid_epk(text in "[0-9a-fA-F]{0,12}|\\PC{0,12}") {
        match Epk::parse(&text) {
            Ok(epk) => {
                prop_assert_eq!(epk.as_str(), text.to_ascii_uppercase());
                prop_assert_eq!(Epk::from_bytes(&epk.to_bytes()), epk);
            }
            Err(error) => prop_assert!(matches!(error, PartitionKeyError::InvalidEpk { .. }), "{:?}", error),
        }
    }

    /// Any path parses into non-empty segments or gives `InvalidPath`.
    #[test]
    fn paths_parse_into_segments_or_invalid_path(
        seed in prop::sample::select(vec!["/pk", "/a/b", "/\"a b\"/'c/d'", "/'it\\'s'"]),
        edits in tributary_mutate::edits(),
    ) {
        let path = tributary_mutate::apply_to_text(seed, &edits, &["/\"", "'/"]);
        match parse_path(&path) {
            Ok(segments) => prop_assert!(!segments.is_empty()),
            Err(error) => prop_assert!(matches!(error, PartitionKeyError::InvalidPath { .. }), "{:?}", error),
        }
    }
}
