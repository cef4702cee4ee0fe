//! Checks of the store's decoders of untrusted bytes, for the fuzz targets in `fuzz/` and for
//! this crate's property tests (the `fuzzing` feature makes this module public).
//!
//! The decoders themselves are private: on-disk records (read back from a possibly damaged
//! disk) and feed continuation tokens (sent by clients). Each `check_*` function decodes its
//! input and panics only when a property fails, so a fuzzer reports exactly the inputs that
//! break one:
//!
//! - a decoder never panics, and refuses bad input with its typed error
//!   ([`StoreError::Corrupt`] for records, [`StoreError::InvalidContinuation`] for tokens);
//! - whatever decodes re-encodes to bytes that decode to the same value (a canonical form);
//! - a decoded container record can be used: every EPK falls in one current range;
//! - a decoded user record's permissions are valid definitions.
//!
//! The `valid_*` functions give well-formed inputs, the seeds that the property tests and the
//! fuzz corpora mutate.

use crate::catalog::{ContainerDefinition, ContainerRecord, FeedState, RangeRecord};
use crate::error::StoreError;
use crate::feed::{CONTINUATION_VERSION, Continuation, FeedMode};
use crate::records::{
    ChangeLogRecord, DocPointer, FeedRecordView, OperationType, decode_ttl_value, doc_key,
    encode_ttl_value, parse_doc_key,
};
use crate::users::{PermissionDefinition, PermissionRecord, UserRecord};

/// Decodes `bytes` with every record decoder (doc pointers, feed records, change-log records,
/// expiry values, doc keys) and checks the properties above.
///
/// # Panics
/// When a decoder panics, returns an error other than [`StoreError::Corrupt`], or decodes a
/// record that does not survive re-encoding.
pub fn check_record_decoders(bytes: &[u8]) {
    if let Some(pointer) = accepted(DocPointer::decode(bytes)) {
        assert_eq!(
            DocPointer::decode(&pointer.encode()).ok(),
            Some(pointer),
            "doc pointer"
        );
    }
    if let Some(view) = accepted(FeedRecordView::decode(bytes)) {
        let again = view.encode();
        let reread = FeedRecordView::decode(&again).expect("a re-encoded feed record decodes");
        assert_eq!(
            (
                reread.ts,
                reread.ttl,
                reread.created_lsn,
                reread.epk,
                reread.id,
                reread.body
            ),
            (
                view.ts,
                view.ttl,
                view.created_lsn,
                view.epk,
                view.id,
                view.body
            ),
            "feed record"
        );
    }
    if let Some(record) = accepted(ChangeLogRecord::decode(bytes)) {
        assert_eq!(
            ChangeLogRecord::decode(&record.encode()).ok(),
            Some(record),
            "change log record"
        );
    }
    if let Some((segment, key)) = accepted(decode_ttl_value(bytes)) {
        assert_eq!(
            decode_ttl_value(&encode_ttl_value(segment, &key)).ok(),
            Some((segment, key)),
            "expiry value"
        );
    }
    if let Some((epk, id)) = accepted(parse_doc_key(bytes)) {
        let cid = u32::from_be_bytes(bytes[..4].try_into().expect("a doc key has a cid"));
        assert_eq!(doc_key(cid, epk, id), bytes, "doc key");
    }
}

/// Decodes `bytes` as a container record of the catalog and checks the properties above.
///
/// # Panics
/// When decoding panics or fails with an error other than [`StoreError::Corrupt`], when a
/// decoded record does not survive re-encoding, or when an EPK has no current range in it.
pub fn check_container_record(bytes: &[u8]) {
    let Some(mut record) = accepted(ContainerRecord::decode(bytes)) else {
        return;
    };
    let again = serde_json::to_vec(&record).expect("container records serialize");
    assert_eq!(
        ContainerRecord::decode(&again).ok().as_ref(),
        Some(&record),
        "container record"
    );
    assert!(record.high_lsn() < u64::MAX);
    for epk in [
        "",
        "0",
        "3FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        "7F",
        "FE",
        "FEFF",
    ] {
        record.range_for_epk_mut(epk);
    }
}

/// Decodes `bytes` as a user record of the catalog (with its permissions) and checks the
/// properties above.
///
/// # Panics
/// When decoding panics or fails with an error other than [`StoreError::Corrupt`], or when a
/// decoded record does not survive re-encoding.
pub fn check_user_record(bytes: &[u8]) {
    let Some(record) = accepted(UserRecord::decode(bytes)) else {
        return;
    };
    let again = serde_json::to_vec(&record).expect("user records serialize");
    assert_eq!(
        UserRecord::decode(&again).ok().as_ref(),
        Some(&record),
        "user record"
    );
    for permission in record.permissions.values() {
        let properties = record.permission_properties(permission);
        assert_eq!(properties.definition, permission.definition);
    }
}

/// A well-formed user record (JSON, as stored) with two permissions: the seed for mutation.
pub fn valid_user_record() -> Vec<u8> {
    let permission = |seq, body| PermissionRecord {
        seq,
        ts: 1_700_000_000,
        version: 1,
        definition: PermissionDefinition::from_json(&body).expect("a valid permission"),
    };
    let permissions = [
        permission(
            1,
            serde_json::json!({"id": "read", "permissionMode": "read", "resource": "dbs/db/colls/orders"}),
        ),
        permission(
            2,
            serde_json::json!({"id": "tenant", "permissionMode": "All", "resource": "dbs/AAAAAQ==/colls/AAAAAYAAAAM=", "resourcePartitionKey": ["t1", 5]}),
        ),
    ];
    let record = UserRecord {
        database: "db".into(),
        database_seq: 1,
        id: "ada".into(),
        seq: 4,
        ts: 1_700_000_000,
        version: 2,
        permissions: permissions
            .into_iter()
            .map(|p| (p.definition.id.clone(), p))
            .collect(),
    };
    serde_json::to_vec(&record).expect("user records serialize")
}

/// Decodes `token` as a feed continuation token and checks the properties above.
///
/// # Panics
/// When decoding panics or fails with an error other than
/// [`StoreError::InvalidContinuation`], or when a decoded token does not survive re-encoding.
pub fn check_continuation(token: &str) {
    match Continuation::decode(token) {
        Ok(continuation) => assert_eq!(
            Continuation::decode(&continuation.encode()).ok(),
            Some(continuation),
            "continuation"
        ),
        Err(StoreError::InvalidContinuation(_)) => {}
        Err(other) => panic!("a bad token gave {other:?}, not InvalidContinuation"),
    }
}

/// Well-formed records of each kind, as stored: seeds for mutation.
pub fn valid_records() -> Vec<Vec<u8>> {
    let feed_record = |ttl, body| {
        FeedRecordView {
            ts: 1_700_000_000,
            ttl,
            created_lsn: 3,
            epk: "0A1B2C3D4E5F60718293A4B5C6D7E8F9",
            id: "item-1",
            body,
        }
        .encode()
    };
    let change = |operation, previous, current: &str| {
        ChangeLogRecord {
            operation,
            crts: 1_700_000_001,
            ttl_expired: false,
            previous,
            id: "item-1".into(),
            epk: "0A1B".into(),
            partition_key: r#"["p"]"#.into(),
            current: current.into(),
        }
        .encode()
    };
    vec![
        DocPointer {
            segment: 2,
            lsn: 41,
            created_lsn: 7,
        }
        .encode(),
        feed_record(Some(60), r#"{"id":"item-1","pk":"p","n":[1,2.5,"x"]}"#),
        feed_record(None, "{}"),
        change(OperationType::Create, None, r#"{"id":"item-1"}"#),
        change(
            OperationType::Replace,
            Some((1, 9)),
            r#"{"id":"item-1","v":2}"#,
        ),
        change(OperationType::Delete, Some((0, 12)), ""),
        encode_ttl_value(4, &doc_key(9, "0A1B", "item-1")),
        doc_key(9, "0A1B", "item-1"),
    ]
}

/// A well-formed container record (JSON, as stored) with two current ranges and one split
/// parent: the seed for mutation.
pub fn valid_container_record() -> Vec<u8> {
    let range = |id, min: &str, max: &str, children: Vec<u32>| RangeRecord {
        id,
        min: min.into(),
        max: max.into(),
        parents: if id == 0 { Vec::new() } else { vec![0] },
        ancestors: if id == 0 { Vec::new() } else { vec![0] },
        first_lsn: if id == 0 { 1 } else { 5 },
        children,
        approx_bytes: 1024,
        item_count: Some(2),
    };
    let record = ContainerRecord {
        database: "db".into(),
        cid: 3,
        database_seq: 1,
        definition: ContainerDefinition {
            default_ttl: Some(3600),
            change_feed_retention_minutes: Some(60),
            ..ContainerDefinition::new("orders", "/customer")
        },
        ts: 1_700_000_000,
        version: 2,
        feed: FeedState {
            next_lsn: 9,
            next_range_id: 3,
            ranges: vec![
                range(0, "", "FF", vec![1, 2]),
                range(1, "", "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", Vec::new()),
                range(2, "1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "FF", Vec::new()),
            ],
            ranges_version: 2,
            last_ts: 1_700_000_000,
            avad_trimmed_below: 1,
            avad_since_lsn: 1,
            time_index_coarse_before: 1_699_913_580,
        },
        index: crate::index::IndexState::unbuilt(),
    };
    serde_json::to_vec(&record).expect("container records serialize")
}

/// Well-formed continuation tokens, one per mode: seeds for mutation.
pub fn valid_continuations() -> Vec<String> {
    [FeedMode::LatestVersion, FeedMode::AllVersionsAndDeletes]
        .into_iter()
        .map(|mode| {
            Continuation {
                v: CONTINUATION_VERSION,
                rid: "AAAAAQAAAAM=".into(),
                mode,
                min: String::new(),
                max: "FF".into(),
                lsn: 42,
            }
            .encode()
        })
        .collect()
}

/// The decoded value, or `None` for the typed refusal of damaged bytes.
///
/// # Panics
/// On any error other than [`StoreError::Corrupt`].
fn accepted<T>(result: crate::error::Result<T>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(StoreError::Corrupt(_)) => None,
        Err(other) => panic!("damaged bytes gave {other:?}, not Corrupt"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use tributary_mutate::{Edit, apply, apply_to_text, edits};

    fn container_record_json() -> Value {
        serde_json::from_slice(&valid_container_record()).expect("the seed is JSON")
    }

    fn decode_json(value: &Value) -> crate::error::Result<ContainerRecord> {
        ContainerRecord::decode(value.to_string().as_bytes())
    }

    #[test]
    fn seeds_decode_and_survive_reencoding() {
        for record in valid_records() {
            check_record_decoders(&record);
        }
        check_container_record(&valid_container_record());
        ContainerRecord::decode(&valid_container_record()).expect("the seed record decodes");
        check_user_record(&valid_user_record());
        UserRecord::decode(&valid_user_record()).expect("the seed user record decodes");
        for token in valid_continuations() {
            check_continuation(&token);
            Continuation::decode(&token).expect("the seed token decodes");
        }
    }

    // Regression: a container record read back from a damaged meta keyspace used to go
    // through `check_ranges`, whose assertions panicked while the store opened.
    #[test]
    fn container_record_whose_ranges_leave_a_gap_is_corrupt_not_a_panic() {
        let mut value = container_record_json();
        value["feed"]["ranges"][2]["min"] = json!("3F");
        let error = decode_json(&value).expect_err("a gap between ranges");
        assert!(
            matches!(&error, StoreError::Corrupt(fault) if fault.contains("tile the EPK space")),
            "{error:?}"
        );
        check_container_record(value.to_string().as_bytes());
    }

    #[test]
    fn container_record_without_current_ranges_is_corrupt_not_a_panic() {
        for ranges in [
            json!([]),
            json!([{"id": 0, "min": "", "max": "7F", "parents": [],
            "ancestors": [], "first_lsn": 1, "children": [], "approx_bytes": 0}]),
        ] {
            let mut value = container_record_json();
            value["feed"]["ranges"] = ranges;
            let error = decode_json(&value).expect_err("ranges do not cover the EPK space");
            assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
        }
    }

    // Regression: `high_lsn` is `next_lsn - 1`, which overflowed for a record with 0.
    #[test]
    fn container_record_with_next_lsn_zero_is_corrupt_not_an_overflow() {
        let mut value = container_record_json();
        value["feed"]["next_lsn"] = json!(0);
        let error = decode_json(&value).expect_err("LSNs start at 1");
        assert!(
            matches!(&error, StoreError::Corrupt(fault) if fault.contains("next LSN is 0")),
            "{error:?}"
        );
    }

    #[test]
    fn container_record_with_an_invalid_definition_is_corrupt() {
        let mut value = container_record_json();
        value["definition"]["partition_key"]["paths"] = json!([]);
        let error = decode_json(&value).expect_err("no partition key path");
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
        let mut value = container_record_json();
        value["definition"]["id"] = json!("a/b");
        let error = decode_json(&value).expect_err("an id with a slash");
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
    }

    #[test]
    fn bad_tokens_get_invalid_continuation_naming_the_fault() {
        let cases = [
            ("not base64!", "not base64url"),
            ("e30", "malformed"),
            ("", "malformed"),
        ];
        for (token, fault) in cases {
            let error = Continuation::decode(token).expect_err(token);
            assert!(
                matches!(&error, StoreError::InvalidContinuation(text) if text.contains(fault)),
                "{token}: {error:?}"
            );
        }
        let mut future = Continuation::decode(&valid_continuations()[0]).expect("a seed");
        future.v = 2;
        let error = Continuation::decode(&future.encode()).expect_err("version 2");
        assert!(
            error.to_string().contains("version 2 is not supported"),
            "{error}"
        );
    }

    fn mode() -> impl Strategy<Value = FeedMode> {
        prop_oneof![
            Just(FeedMode::LatestVersion),
            Just(FeedMode::AllVersionsAndDeletes)
        ]
    }

    fn operation() -> impl Strategy<Value = OperationType> {
        prop_oneof![
            Just(OperationType::Create),
            Just(OperationType::Replace),
            Just(OperationType::Delete)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_bytes_are_decoded_or_refused_as_corrupt(
            bytes in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            check_record_decoders(&bytes);
            check_container_record(&bytes);
            check_user_record(&bytes);
        }

        #[test]
        fn edited_user_records_are_decoded_or_refused_as_corrupt(edits in edits()) {
            let seed = valid_user_record();
            check_user_record(&apply(&seed, &edits, &[&seed]));
        }

        #[test]
        fn arbitrary_text_is_a_token_or_invalid_continuation(token in "\\PC{0,120}") {
            check_continuation(&token);
        }

        #[test]
        fn edited_records_are_decoded_or_refused_as_corrupt(
            seed in any::<usize>(),
            edits in edits(),
        ) {
            let records = valid_records();
            let seeds: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
            let edited = apply(seeds[seed % seeds.len()], &edits, &seeds);
            check_record_decoders(&edited);
        }

        #[test]
        fn edited_container_records_are_decoded_or_refused_as_corrupt(edits in edits()) {
            let seed = valid_container_record();
            check_container_record(&apply(&seed, &edits, &[&seed]));
        }

        /// Values spliced into the record's JSON, not bytes: reaches the checks after the
        /// JSON parses (ranges, LSN counter, definition).
        #[test]
        fn container_records_with_edited_fields_are_decoded_or_refused_as_corrupt(
            range in 0usize..4,
            field in prop::sample::select(vec!["min", "max", "children", "id", "first_lsn"]),
            value in prop_oneof![
                Just(json!("")), Just(json!("FF")), Just(json!("7F")), Just(json!([])),
                Just(json!([5])), Just(json!(0)), Just(json!(null)),
            ],
            next_lsn in prop_oneof![Just(0u64), Just(1), Just(u64::MAX)],
        ) {
            let mut value_json = container_record_json();
            value_json["feed"]["next_lsn"] = json!(next_lsn);
            if let Some(target) = value_json["feed"]["ranges"].get_mut(range) {
                target[field] = value;
            }
            check_container_record(value_json.to_string().as_bytes());
        }

        #[test]
        fn edited_tokens_are_decoded_or_refused_as_invalid(
            seed in any::<usize>(),
            edits in edits(),
            in_json in any::<bool>(),
        ) {
            let tokens = valid_continuations();
            let seeds: Vec<&str> = tokens.iter().map(String::as_str).collect();
            let token = seeds[seed % seeds.len()];
            let edited = if in_json {
                // Edit the JSON inside, then encode it again: reaches the field checks.
                use base64::Engine as _;
                let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                let json = engine.decode(token).expect("seeds are base64url");
                engine.encode(apply(&json, &edits, &[&json]))
            } else {
                apply_to_text(token, &edits, &seeds)
            };
            check_continuation(&edited);
        }

        #[test]
        fn every_continuation_round_trips(
            rid in "\\PC{0,20}",
            mode in mode(),
            min in "[0-9A-F]{0,32}",
            max in "[0-9A-F]{0,32}",
            lsn in any::<u64>(),
        ) {
            let continuation = Continuation { v: CONTINUATION_VERSION, rid, mode, min, max, lsn };
            prop_assert_eq!(Continuation::decode(&continuation.encode()).ok(), Some(continuation));
        }

        #[test]
        fn every_record_round_trips(
            segment in any::<u32>(),
            lsns in any::<(u64, u64)>(),
            ttl in any::<Option<i64>>(),
            operation in operation(),
            previous in any::<Option<(u32, u64)>>(),
            epk in "[0-9A-F]{0,64}",
            id in "\\PC{0,40}",
            body in "\\PC{0,80}",
        ) {
            let pointer = DocPointer { segment, lsn: lsns.0, created_lsn: lsns.1 };
            prop_assert_eq!(DocPointer::decode(&pointer.encode()).ok(), Some(pointer));
            let view = FeedRecordView {
                ts: lsns.0, ttl, created_lsn: lsns.1, epk: &epk, id: &id, body: &body,
            };
            let bytes = view.encode();
            let back = FeedRecordView::decode(&bytes).expect("an encoded record decodes");
            prop_assert_eq!(
                (back.ts, back.ttl, back.created_lsn, back.epk, back.id, back.body),
                (lsns.0, ttl, lsns.1, epk.as_str(), id.as_str(), body.as_str())
            );
            let change = ChangeLogRecord {
                operation,
                crts: lsns.0,
                ttl_expired: ttl.is_some(),
                previous,
                id: id.clone(),
                epk: epk.clone(),
                partition_key: body.clone(),
                current: body.clone(),
            };
            prop_assert_eq!(ChangeLogRecord::decode(&change.encode()).ok(), Some(change));
            let key = doc_key(segment, &epk, &id);
            prop_assert_eq!(parse_doc_key(&key).ok(), Some((epk.as_str(), id.as_str())));
            let expiry = encode_ttl_value(segment, &key);
            prop_assert_eq!(decode_ttl_value(&expiry).ok(), Some((segment, key)));
        }
    }

    /// Writes the seeds into `fuzz/seeds/records` and `fuzz/seeds/continuation`, the starting
    /// corpora of the fuzz targets: `cargo test -p tributary-store --lib -- --ignored
    /// write_fuzz_seeds`.
    #[test]
    #[ignore = "writes files under fuzz/seeds; run by hand when the record formats change"]
    fn write_fuzz_seeds() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
        let write = |target: &str, name: String, bytes: &[u8]| {
            let dir = seeds.join(target);
            std::fs::create_dir_all(&dir).expect("seed directory");
            std::fs::write(dir.join(name), bytes).expect("seed file");
        };
        let mut records = valid_records();
        records.push(valid_container_record());
        records.push(valid_user_record());
        for (n, record) in records.iter().enumerate() {
            check_record_decoders(record);
            write("records", format!("record-{n}"), record);
        }
        for (n, token) in valid_continuations().iter().enumerate() {
            Continuation::decode(token).expect("a seed token decodes");
            write("continuation", format!("token-{n}"), token.as_bytes());
        }
    }

    #[test]
    fn edits_change_the_seed_the_way_they_say() {
        let seed = b"abcdef";
        assert_eq!(apply(seed, &[Edit::Truncate(9)], &[]), b"ab");
        assert_eq!(apply(seed, &[Edit::Set(7, b'z')], &[]), b"azcdef");
        assert_eq!(apply(seed, &[Edit::FlipBit(0, 0)], &[]), b"`bcdef");
        assert_eq!(apply(seed, &[Edit::Delete(4, 9)], &[]), b"abcd");
        assert_eq!(apply(seed, &[Edit::Repeat(0, 2)], &[]), b"ababcdef");
        assert_eq!(
            apply(seed, &[Edit::Insert(6, b"xy".to_vec())], &[]),
            b"abcdefxy"
        );
        assert_eq!(
            apply(seed, &[Edit::Splice(1, 0, 1, 2)], &[b"XYZW"]),
            b"aYZbcdef"
        );
        assert_eq!(apply(b"", &[Edit::Set(3, 1), Edit::Delete(0, 1)], &[]), b"");
    }
}
