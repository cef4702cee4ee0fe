//! Cosmos binary JSON item bodies: `decode` gives JSON that prints and parses back to itself,
//! or an error whose offsets lie inside the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary_wire::binary_json::{BinaryJsonError, PREAMBLE, decode};

fuzz_target!(|data: &[u8]| {
    // Input without the preamble gets one, so the fuzzer spends its time past the first byte.
    let mut bytes = Vec::with_capacity(data.len() + 1);
    if data.first() != Some(&PREAMBLE) {
        bytes.push(PREAMBLE);
    }
    bytes.extend_from_slice(data);
    match decode(&bytes) {
        Ok(value) => {
            let text = value.to_string();
            let again: serde_json::Value =
                serde_json::from_str(&text).expect("decoded JSON prints");
            assert_eq!(again, value);
        }
        Err(error) => {
            let offset = match &error {
                BinaryJsonError::MissingPreamble => unreachable!("every input gets the preamble"),
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
                other => panic!("an error this target does not know: {other:?}"),
            };
            assert!(offset <= bytes.len(), "{error} in {} bytes", bytes.len());
        }
    }
});
