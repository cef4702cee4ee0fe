//! Cosmos binary JSON decoding.
//!
//! `binary_json_vectors.txt` holds documents encoded by the official Rust SDK's own encoder
//! (`azure_data_cosmos_driver` 1.0.0, `binary_json::to_vec`), generated once by a throwaway
//! program: fixed edge cases (every integer, string and container width the encoder picks)
//! and 100 seeded random documents. The server crate cannot reach that encoder (its
//! dev-dependency `azure_data_cosmos` does not re-export the driver), so the bytes live here.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Value, json};
use tributary_wire::binary_json::{BinaryJsonError, MAX_DEPTH, PREAMBLE, decode, is_binary};

const SDK_VECTORS: &str = include_str!("binary_json_vectors.txt");

/// The (document, encoded bytes) pairs of `binary_json_vectors.txt`, parsed once.
fn sdk_vectors() -> &'static [(Value, Vec<u8>)] {
    static VECTORS: OnceLock<Vec<(Value, Vec<u8>)>> = OnceLock::new();
    VECTORS.get_or_init(parse_sdk_vectors)
}

fn parse_sdk_vectors() -> Vec<(Value, Vec<u8>)> {
    let lines: Vec<&str> = SDK_VECTORS
        .lines()
        .filter(|line| !line.starts_with('#'))
        .collect();
    assert_eq!(lines.len() % 2, 0, "vectors come in (json, hex) line pairs");
    lines
        .chunks(2)
        .map(|pair| {
            let document = serde_json::from_str(pair[0]).expect("vector document is JSON");
            (document, hex(pair[1]))
        })
        .collect()
}

fn hex(text: &str) -> Vec<u8> {
    assert_eq!(text.len() % 2, 0, "hex has an even length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("vector bytes are hex"))
        .collect()
}

/// `PREAMBLE` followed by `body`.
fn binary(body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![PREAMBLE];
    bytes.extend_from_slice(body);
    bytes
}

#[test]
fn decodes_what_the_rust_sdk_encodes() {
    let vectors = sdk_vectors();
    assert!(vectors.len() > 100, "the vector file is complete");
    for (document, bytes) in vectors {
        let decoded = decode(bytes).unwrap_or_else(|e| panic!("{e} decoding {document}"));
        assert_eq!(&decoded, document);
        // Property order survives: the texts, not just the maps, are equal.
        assert_eq!(decoded.to_string(), document.to_string());
    }
}

#[test]
fn sdk_vectors_cover_every_width_the_encoder_picks() {
    let markers: std::collections::BTreeSet<u8> = sdk_vectors()
        .iter()
        .flat_map(|(_, bytes)| bytes.iter().copied())
        .collect();
    for marker in [
        0xC0, 0xC1, 0xC2, 0xC7, 0xCB, 0xCC, 0xE5, 0xE6, 0xE7, 0xED, 0xEE,
    ] {
        assert!(
            markers.contains(&marker),
            "no vector holds byte 0x{marker:02X}"
        );
    }
}

#[test]
fn property_order_is_kept_as_sent() {
    // {"zeta": 1, "alpha": {"b": 2}}: a length-only object holding a one-property object.
    let bytes = binary(&[
        0xEA, 0x10, 0x84, b'z', b'e', b't', b'a', 0x01, 0x85, b'a', b'l', b'p', b'h', b'a', 0xE9,
        0x81, b'b', 0x02,
    ]);
    let value = decode(&bytes).expect("valid object");
    assert_eq!(value.to_string(), r#"{"zeta":1,"alpha":{"b":2}}"#);
}

#[test]
fn decodes_every_number_form() {
    let cases: Vec<(Vec<u8>, Value)> = vec![
        (vec![0x00], json!(0)),
        (vec![0x1F], json!(31)),
        (vec![0xC8, 0xFF], json!(255)),
        (vec![0xC9, 0x00, 0x80], json!(i16::MIN)),
        (vec![0xCA, 0xFF, 0xFF, 0xFF, 0xFF], json!(-1)),
        (vec![0xCB, 0, 0, 0, 0, 0, 0, 0, 0x80], json!(i64::MIN)),
        (
            vec![0xC7, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            json!(u64::MAX),
        ),
        (vec![0xCC, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F], json!(1.5)),
        (vec![0xCE, 0, 0, 0, 0, 0, 0, 0x04, 0xC0], json!(-2.5)),
        (vec![0xCD, 0x00, 0x00, 0xC0, 0x3F], json!(1.5)),
        (vec![0xCF, 0x00, 0x3E], json!(1.5)),
        (vec![0xCF, 0x01, 0x80], json!(-(2f64.powi(-24)))),
        (vec![0xD7, 0xFE], json!(254)),
        (vec![0xD8, 0xFE], json!(-2)),
        (vec![0xD9, 0xFE, 0xFF], json!(-2)),
        (vec![0xDA, 0x00, 0x00, 0x00, 0x80], json!(i32::MIN)),
        (
            vec![0xDB, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
            json!(-2),
        ),
        (vec![0xDC, 0xFF, 0xFF, 0xFF, 0xFF], json!(u32::MAX)),
    ];
    for (body, expected) in cases {
        assert_eq!(decode(&binary(&body)), Ok(expected), "bytes {body:02X?}");
    }
}

#[test]
fn decodes_literals_strings_and_every_container_form() {
    let cases: Vec<(Vec<u8>, Value)> = vec![
        (vec![0xD0], Value::Null),
        (vec![0xD1], json!(false)),
        (vec![0xD2], json!(true)),
        (vec![0x80], json!("")),
        (vec![0x82, 0xC3, 0xA9], json!("é")),
        (vec![0xC0, 0x01, b'x'], json!("x")),
        (vec![0xC1, 0x01, 0x00, b'x'], json!("x")),
        (vec![0xC2, 0x01, 0x00, 0x00, 0x00, b'x'], json!("x")),
        (vec![0xE0], json!([])),
        (vec![0xE1, 0x05], json!([5])),
        (vec![0xE2, 0x02, 0x01, 0x02], json!([1, 2])),
        (vec![0xE3, 0x02, 0x00, 0x01, 0x02], json!([1, 2])),
        (
            vec![0xE4, 0x02, 0x00, 0x00, 0x00, 0x01, 0x02],
            json!([1, 2]),
        ),
        (vec![0xE5, 0x02, 0x02, 0x01, 0x02], json!([1, 2])),
        (
            vec![0xE6, 0x02, 0x00, 0x02, 0x00, 0x01, 0x02],
            json!([1, 2]),
        ),
        (
            vec![0xE7, 0x02, 0, 0, 0, 0x02, 0, 0, 0, 0x01, 0x02],
            json!([1, 2]),
        ),
        (vec![0xE8], json!({})),
        (vec![0xE9, 0x81, b'a', 0xD2], json!({"a": true})),
        (vec![0xEA, 0x03, 0x81, b'a', 0xD0], json!({"a": null})),
        (vec![0xEB, 0x03, 0x00, 0x81, b'a', 0x01], json!({"a": 1})),
        (vec![0xEC, 0x03, 0, 0, 0, 0x81, b'a', 0x01], json!({"a": 1})),
        (vec![0xED, 0x03, 0x01, 0x81, b'a', 0x01], json!({"a": 1})),
        (
            vec![0xEE, 0x03, 0x00, 0x01, 0x00, 0x81, b'a', 0x01],
            json!({"a": 1}),
        ),
        (
            vec![0xEF, 0x03, 0, 0, 0, 0x01, 0, 0, 0, 0x81, b'a', 0x01],
            json!({"a": 1}),
        ),
        (
            vec![0xED, 0x05, 0x01, 0xC0, 0x01, b'k', 0xE1, 0xE0],
            json!({"k": [[]]}),
        ),
    ];
    for (body, expected) in cases {
        assert_eq!(decode(&binary(&body)), Ok(expected), "bytes {body:02X?}");
    }
}

#[test]
fn repeated_property_keeps_first_place_and_last_value() {
    // {"a": 1, "b": 2, "a": 3}
    let bytes = binary(&[
        0xED, 0x09, 0x03, 0x81, b'a', 0x01, 0x81, b'b', 0x02, 0x81, b'a', 0x03,
    ]);
    let value = decode(&bytes).expect("valid object");
    assert_eq!(value.to_string(), r#"{"a":3,"b":2}"#);
}

#[test]
fn is_binary_looks_at_the_first_byte_only() {
    assert!(is_binary(&[0x80]));
    assert!(is_binary(&[0x80, 0xD0]));
    assert!(!is_binary(b"{\"id\":\"a\"}"));
    assert!(!is_binary(b""));
}

#[test]
fn malformed_buffers_get_the_error_that_names_the_fault() {
    assert_eq!(decode(b""), Err(BinaryJsonError::MissingPreamble));
    assert_eq!(decode(b"{}"), Err(BinaryJsonError::MissingPreamble));
    assert_eq!(
        decode(&[0x80]),
        Err(BinaryJsonError::UnexpectedEnd {
            offset: 1,
            needed: 1
        })
    );
    assert_eq!(
        decode(&binary(&[0xCB, 0x01, 0x02])),
        Err(BinaryJsonError::UnexpectedEnd {
            offset: 2,
            needed: 6
        })
    );
    assert_eq!(
        decode(&binary(&[0x85, b'a'])),
        Err(BinaryJsonError::UnexpectedEnd {
            offset: 2,
            needed: 4
        })
    );
    // The array declares 1 byte but its string needs 2.
    assert_eq!(
        decode(&binary(&[0xE5, 0x01, 0x01, 0x81, b'x'])),
        Err(BinaryJsonError::UnexpectedEnd {
            offset: 5,
            needed: 1
        })
    );
    // A declared length longer than the buffer.
    assert_eq!(
        decode(&binary(&[0xE4, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])),
        Err(BinaryJsonError::UnexpectedEnd {
            offset: 6,
            needed: 0xFFFF_FFFF - 1
        })
    );
    assert_eq!(
        decode(&binary(&[0xD0, 0xD0, 0xD0])),
        Err(BinaryJsonError::TrailingBytes {
            offset: 2,
            n_bytes: 2
        })
    );
    assert_eq!(
        decode(&binary(&[0x20])),
        Err(BinaryJsonError::UnsupportedMarker {
            offset: 1,
            marker: 0x20,
            kind: "system string"
        })
    );
    assert_eq!(
        decode(&binary(&[0xE9, 0x41, 0x01])),
        Err(BinaryJsonError::UnsupportedMarker {
            offset: 2,
            marker: 0x41,
            kind: "user-dictionary string"
        })
    );
    assert_eq!(
        decode(&binary(&[0xFF])),
        Err(BinaryJsonError::UnsupportedMarker {
            offset: 1,
            marker: 0xFF,
            kind: "unassigned"
        })
    );
    assert_eq!(
        decode(&binary(&[0xE9, 0x01, 0x01])),
        Err(BinaryJsonError::NonStringPropertyName {
            offset: 2,
            marker: 0x01
        })
    );
    assert_eq!(
        decode(&binary(&[0x82, 0xC3, 0x28])),
        Err(BinaryJsonError::InvalidUtf8 { offset: 1 })
    );
    assert_eq!(
        decode(&binary(&[0xE5, 0x02, 0x03, 0x01, 0x02])),
        Err(BinaryJsonError::CountMismatch {
            kind: "array",
            offset: 1,
            declared: 3,
            found: 2
        })
    );
    let nan = decode(&binary(&[0xCC, 0, 0, 0, 0, 0, 0, 0xF8, 0x7F])).expect_err("NaN");
    assert!(matches!(
        nan,
        BinaryJsonError::NonFiniteNumber { offset: 1, .. }
    ));
    let infinity = decode(&binary(&[0xCF, 0x00, 0x7C])).expect_err("infinity");
    assert_eq!(
        infinity.to_string(),
        "binary JSON number at offset 1 is inf, which JSON cannot represent"
    );
}

#[test]
fn nesting_is_capped_at_max_depth() {
    // MAX_DEPTH single-item arrays around a null decode; one more is refused.
    let mut bytes = binary(&[0xE1; MAX_DEPTH]);
    bytes.push(0xD0);
    let mut expected = Value::Null;
    for _ in 0..MAX_DEPTH {
        expected = Value::Array(vec![expected]);
    }
    assert_eq!(decode(&bytes), Ok(expected));

    let mut bytes = binary(&[0xE1; MAX_DEPTH + 1]);
    bytes.push(0xD0);
    assert_eq!(
        decode(&bytes),
        Err(BinaryJsonError::TooDeep {
            offset: MAX_DEPTH + 1
        })
    );
    // Far deeper input is refused the same way, without exhausting the stack.
    let bytes = binary(&vec![0xE1; 1_000_000]);
    assert!(matches!(
        decode(&bytes),
        Err(BinaryJsonError::TooDeep { .. })
    ));
}

// Regression (found by the binary_json fuzz target): MAX_DEPTH was 128, so 128 nested
// objects decoded to a value whose JSON text serde_json then refused to parse ("recursion
// limit exceeded"): an item the store would keep but could not read back.
#[test]
fn whatever_decodes_prints_as_json_text_that_parses_back() {
    for depth in [MAX_DEPTH, MAX_DEPTH + 1] {
        // `depth` objects {"": {"": ... 15}}, as the fuzzer built them.
        let mut body = [0xE9, 0x80].repeat(depth);
        body.push(0x0F);
        match decode(&binary(&body)) {
            Ok(value) => {
                assert_eq!(depth, MAX_DEPTH);
                let text = value.to_string();
                assert_eq!(serde_json::from_str::<Value>(&text).ok(), Some(value));
            }
            Err(error) => {
                assert_eq!(depth, MAX_DEPTH + 1);
                assert_eq!(
                    error,
                    BinaryJsonError::TooDeep {
                        offset: 2 * MAX_DEPTH + 1
                    }
                );
            }
        }
    }
    // serde_json's own limit: one level deeper than MAX_DEPTH does not parse as text.
    let text = format!(
        "{}1{}",
        "[".repeat(MAX_DEPTH + 1),
        "]".repeat(MAX_DEPTH + 1)
    );
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

#[test]
fn every_truncated_sdk_vector_is_refused() {
    for (document, bytes) in sdk_vectors().iter().filter(|(_, b)| b.len() < 2_000) {
        for cut in 1..bytes.len() {
            assert!(
                decode(&bytes[..cut]).is_err(),
                "{document} cut to {cut} bytes decoded"
            );
        }
    }
}

proptest! {
    #[test]
    fn random_bytes_after_the_preamble_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&binary(&body));
    }

    #[test]
    fn random_bytes_in_supported_markers_never_panic(
        body in proptest::collection::vec(
            prop_oneof![
                0x00u8..0x20,
                0x80u8..0xC3,
                Just(0xC7u8),
                0xC8u8..0xD3,
                0xD7u8..0xDD,
                0xE0u8..0xF0,
            ],
            0..512,
        )
    ) {
        let _ = decode(&binary(&body));
    }

    #[test]
    fn a_flipped_byte_in_an_sdk_vector_never_panics(index in any::<prop::sample::Index>(), byte in any::<u8>(), vector in 0usize..200) {
        let vectors = sdk_vectors();
        let mut bytes = vectors[vector % vectors.len()].1.clone();
        let at = index.index(bytes.len());
        bytes[at] = byte;
        let _ = decode(&bytes);
    }
}

/// Checks the offsets an error names against the buffer: every offset is inside it, and a
/// cut-off read really runs past its end or its container's.
fn check_error_offsets(bytes: &[u8], error: &BinaryJsonError) {
    let offset = match error {
        BinaryJsonError::MissingPreamble => {
            assert!(!is_binary(bytes), "{error}");
            return;
        }
        BinaryJsonError::UnexpectedEnd { offset, needed } => {
            assert!(*needed > 0, "{error}");
            *offset
        }
        BinaryJsonError::TrailingBytes { offset, n_bytes } => {
            assert_eq!(offset + n_bytes, bytes.len(), "{error}");
            *offset
        }
        BinaryJsonError::UnsupportedMarker { offset, marker, .. }
        | BinaryJsonError::NonStringPropertyName { offset, marker } => {
            assert_eq!(bytes.get(*offset), Some(marker), "{error}");
            *offset
        }
        BinaryJsonError::InvalidUtf8 { offset }
        | BinaryJsonError::NonFiniteNumber { offset, .. }
        | BinaryJsonError::TooDeep { offset }
        | BinaryJsonError::CountMismatch { offset, .. } => *offset,
        other => panic!("an error this test does not know: {other:?}"),
    };
    assert!(offset <= bytes.len(), "{error} in {} bytes", bytes.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// SDK vectors with bytes changed, cut, repeated, inserted or spliced in from another
    /// vector decode to JSON that prints, or give an error whose offsets fit the buffer.
    #[test]
    fn edited_sdk_vectors_decode_or_give_an_error_that_points_inside_them(
        vector in any::<usize>(),
        edits in tributary_mutate::edits(),
    ) {
        let vectors = sdk_vectors();
        let seeds: Vec<&[u8]> = vectors.iter().map(|(_, bytes)| bytes.as_slice()).collect();
        let edited = tributary_mutate::apply(seeds[vector % seeds.len()], &edits, &seeds);
        match decode(&edited) {
            Ok(value) => {
                let text = value.to_string();
                prop_assert_eq!(serde_json::from_str::<Value>(&text).ok(), Some(value));
            }
            Err(error) => check_error_offsets(&edited, &error),
        }
    }

    #[test]
    fn errors_on_random_bytes_point_inside_the_buffer(
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let bytes = binary(&body);
        if let Err(error) = decode(&bytes) {
            check_error_offsets(&bytes, &error);
        }
    }
}
