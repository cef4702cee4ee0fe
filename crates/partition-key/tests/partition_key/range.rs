//! EPKs, EPK ranges, the ranges keys cover, and midpoints for splitting.

use serde_json::json;
use tributary_partition_key::{
    Epk, EpkRange, PartitionKey, PartitionKeyDefinition, PartitionKeyError, PartitionKeyKind,
    PartitionKeyVersion, epk_midpoint,
};

fn epk(hex: &str) -> Epk {
    Epk::parse(hex).unwrap()
}

fn range(min: &str, max: &str) -> EpkRange {
    EpkRange::new(epk(min), epk(max)).unwrap()
}

#[test]
fn parse_normalizes_case_and_rejects_non_hex() {
    assert_eq!(epk("3aab").as_str(), "3AAB");
    assert_eq!(epk(""), Epk::min());
    assert_eq!(epk("ff"), Epk::max());
    for (bad, reason) in [
        ("3", "odd number"),
        ("0G", "not a hex digit"),
        ("  ", "not a hex digit"),
    ] {
        let message = Epk::parse(bad).unwrap_err().to_string();
        assert!(message.contains(reason), "{bad:?}: {message}");
    }
    assert_eq!("0a".parse::<Epk>().unwrap().as_str(), "0A");
}

#[test]
fn bytes_round_trip() {
    let original = epk("00FF3A80");
    assert_eq!(original.to_bytes(), [0x00, 0xFF, 0x3A, 0x80]);
    assert_eq!(Epk::from_bytes(&original.to_bytes()), original);
}

#[test]
fn order_is_byte_order() {
    let sorted = ["", "00", "0000", "05C1", "3F", "80", "8000", "A0", "FF"];
    for pair in sorted.windows(2) {
        assert!(epk(pair[0]) < epk(pair[1]), "{} < {}", pair[0], pair[1]);
    }
}

#[test]
fn successor_adds_one_to_the_last_byte_like_python() {
    let cases = [
        (
            "062B23DEC15212F01B9A85F4E93A940C",
            "062B23DEC15212F01B9A85F4E93A940D",
        ),
        ("30", "31"),
        ("3AFF", "3B00"),
        ("01FFFF", "020000"),
        // Where Python returns an empty or inverted range, we append "00".
        ("", "00"),
        ("FF", "FF00"),
    ];
    for (input, expected) in cases {
        assert_eq!(epk(input).successor().as_str(), expected, "{input}");
        assert!(epk(input) < epk(input).successor());
    }
}

#[test]
fn new_requires_min_below_max() {
    assert!(matches!(
        EpkRange::new(epk("80"), epk("80")),
        Err(PartitionKeyError::EmptyRange { .. })
    ));
    assert!(EpkRange::new(epk("90"), epk("80")).is_err());
    assert!(EpkRange::new(epk("80"), epk("8000")).is_ok());
}

#[test]
fn contains_is_half_open() {
    let r = range("20", "40");
    assert!(r.contains(&epk("20")));
    assert!(r.contains(&epk("3FFF")));
    assert!(!r.contains(&epk("40")));
    assert!(!r.contains(&epk("1F")));
    assert!(EpkRange::full().contains(&Epk::min()));
    assert!(!EpkRange::full().contains(&Epk::max()));
}

#[test]
fn overlaps_and_intersect_agree() {
    let cases = [
        (range("", "80"), range("80", "FF"), None),
        (range("", "80"), range("7F", "FF"), Some(range("7F", "80"))),
        (range("10", "20"), range("", "FF"), Some(range("10", "20"))),
        (range("10", "20"), range("30", "40"), None),
    ];
    for (a, b, expected) in cases {
        assert_eq!(a.intersect(&b), expected, "{a} and {b}");
        assert_eq!(b.intersect(&a), expected, "{b} and {a}");
        assert_eq!(a.overlaps(&b), expected.is_some(), "{a} overlaps {b}");
    }
}

#[test]
fn is_full_only_for_the_whole_space() {
    assert!(EpkRange::full().is_full());
    assert!(range("", "FF").is_full());
    assert!(!range("", "80").is_full());
    assert!(!range("00", "FF").is_full());
}

#[test]
fn serde_uses_partition_key_range_field_names_and_validates() {
    let r = range("", "80");
    let text = serde_json::to_string(&r).unwrap();
    assert_eq!(text, r#"{"minInclusive":"","maxExclusive":"80"}"#);
    assert_eq!(serde_json::from_str::<EpkRange>(&text).unwrap(), r);
    assert!(
        serde_json::from_str::<EpkRange>(r#"{"minInclusive":"80","maxExclusive":"80"}"#).is_err()
    );
    assert!(serde_json::from_str::<Epk>(r#""zz""#).is_err());
    assert_eq!(
        serde_json::from_str::<Epk>(r#""3a""#).unwrap().as_str(),
        "3A"
    );
}

#[test]
fn full_key_covers_its_point() {
    let definition = PartitionKeyDefinition::single("/pk");
    let key = PartitionKey::from_json(&json!(["p1"])).unwrap();
    let covered = key.epk_range(&definition).unwrap();
    let own = key.effective_partition_key(&definition).unwrap();
    assert_eq!(covered.min, own);
    assert_eq!(covered.max, own.successor());

    let hierarchical = PartitionKeyDefinition::hierarchical(&["/a", "/b"]).unwrap();
    let full = PartitionKey::from_json(&json!(["a", "b"])).unwrap();
    let covered = full.epk_range(&hierarchical).unwrap();
    assert_eq!(covered.max, covered.min.successor());
    assert_eq!(covered.min.as_str().len(), 64);
}

#[test]
fn prefix_covers_every_completion() {
    let definition =
        PartitionKeyDefinition::hierarchical(&["/tenant", "/user", "/session"]).unwrap();
    let prefix = PartitionKey::from_json(&json!(["tenant1"])).unwrap();
    let covered = prefix.epk_range(&definition).unwrap();
    assert_eq!(covered.min.as_str().len(), 32);
    assert_eq!(covered.max.as_str(), format!("{}FF", covered.min));
    for completion in [
        json!(["tenant1", "u"]),
        json!(["tenant1", 5, null]),
        json!(["tenant1", {}, {}]),
    ] {
        let full = PartitionKey::from_json(&completion).unwrap();
        assert!(
            covered.contains(&full.effective_partition_key(&definition).unwrap()),
            "{completion}"
        );
    }
    let other = PartitionKey::from_json(&json!(["tenant2", "u"])).unwrap();
    assert!(!covered.contains(&other.effective_partition_key(&definition).unwrap()));
}

#[test]
fn empty_key_ranges() {
    let hierarchical = PartitionKeyDefinition::hierarchical(&["/a", "/b"]).unwrap();
    assert!(
        PartitionKey(vec![])
            .epk_range(&hierarchical)
            .unwrap()
            .is_full()
    );
    let single = PartitionKeyDefinition::single("/pk");
    assert_eq!(
        PartitionKey(vec![]).epk_range(&single).unwrap(),
        range("", "00")
    );
}

#[test]
fn v1_key_range_is_a_point() {
    let definition = PartitionKeyDefinition {
        paths: vec!["/pk".to_owned()],
        kind: PartitionKeyKind::Hash,
        version: PartitionKeyVersion::V1,
        system_key: None,
    };
    let key = PartitionKey::from_json(&json!(["p1"])).unwrap();
    assert_eq!(
        key.epk_range(&definition).unwrap(),
        range("05C1CFEDCF076008713200", "05C1CFEDCF076008713201")
    );
}

#[test]
fn midpoint_splits_inside_the_range() {
    let cases = [
        (range("", "FF"), Some("7F")),
        (range("", "80"), Some("40")),
        (range("3A", "3C"), Some("3B")),
        (range("3A", "3B"), Some("3A80")),
        (range("3A", "3A01"), Some("3A0080")),
        (range("", "0002"), Some("0001")),
        (range("80", "8000"), None),
        (range("", "00"), None),
    ];
    for (r, expected) in cases {
        let middle = epk_midpoint(&r);
        assert_eq!(middle.as_ref().map(Epk::as_str), expected, "{r}");
        if let Some(middle) = middle {
            assert!(r.min < middle && middle < r.max, "{middle} inside {r}");
        }
    }
}
