//! The byte encodings and hashes behind effective partition keys.
//!
//! Three schemes, all with MurmurHash3 seed 0:
//!
//! * **V2** (`Hash`, version 2): the components are written one after another
//!   in the *hashing encoding* (type marker, then string bytes ending in `0xFF`,
//!   or the little-endian `f64`), hashed with x64 128-bit, and the 16 hash
//!   bytes (low `u64` then high `u64`, each little-endian) are reversed and the
//!   top two bits of the first byte cleared, so every EPK sorts below `"FF"`
//!   (the third cleared bit leaves room "just in case", as the SDKs say).
//! * **MultiHash**: each component is V2-hashed on its own and the 16-byte
//!   pieces are concatenated, so a key prefix is a byte prefix of the full EPK.
//! * **V1** (`Hash`, version 1): strings are first cut to 100 UTF-16 code
//!   units; the hashing encoding (string terminator `0x00` instead of `0xFF`)
//!   is hashed with x86 32-bit; the EPK is the hash (as a number) followed by
//!   the components, all in the order-preserving *binary encoding* (see
//!   [`write_number_v1`] and [`write_string_v1`]).
//!
//! V1 follows the .NET SDK, which is the reference the service's own code and
//! the official Rust driver match (its baseline files are among our test
//! vectors). Where the Python and JS SDKs disagree with each other — negative
//! numbers (Python casts them to `UInt32` first) and `null` (Python writes no
//! byte) — JS is the one that agrees with .NET, so these follow JS. The JS SDK
//! has V1 bugs of its own (a dropped final zero byte in some numbers, long
//! UTF-8 strings written in full) that we do not copy: see the crate docs.

use crate::key::PartitionKeyComponent;

const MARKER_UNDEFINED: u8 = 0x00;
const MARKER_NULL: u8 = 0x01;
const MARKER_FALSE: u8 = 0x02;
const MARKER_TRUE: u8 = 0x03;
const MARKER_NUMBER: u8 = 0x05;
const MARKER_STRING: u8 = 0x08;

/// String terminator in the V2 hashing encoding.
const V2_STRING_SUFFIX: u8 = 0xFF;
/// String terminator in the V1 hashing encoding.
const V1_STRING_SUFFIX: u8 = 0x00;

/// V1 cuts strings to this many UTF-16 code units before hashing and encoding
/// (`Substring(0, 100)` in .NET, `substr(0, 100)` in JS).
const V1_MAX_STRING_UTF16_UNITS: usize = 100;
/// The V1 binary encoding writes a string of at most this many UTF-8 bytes in
/// full plus a terminator; a longer one is cut to this many plus one, unterminated.
const V1_MAX_STRING_BYTES_TO_APPEND: usize = 100;

/// Bytes in one V2 hash (one MultiHash component).
pub(crate) const V2_HASH_BYTES: usize = 16;

/// The V2 EPK bytes of `components` hashed together (`Hash` version 2).
pub(crate) fn epk_v2(components: &[PartitionKeyComponent]) -> [u8; V2_HASH_BYTES] {
    let mut buffer = Vec::new();
    for component in components {
        write_for_hashing(component, V2_STRING_SUFFIX, &mut buffer);
    }
    v2_hash(&buffer)
}

/// The MultiHash EPK bytes: one V2 hash per component, concatenated.
pub(crate) fn epk_multi_hash(components: &[PartitionKeyComponent]) -> Vec<u8> {
    let mut epk = Vec::with_capacity(components.len() * V2_HASH_BYTES);
    let mut buffer = Vec::new();
    for component in components {
        buffer.clear();
        write_for_hashing(component, V2_STRING_SUFFIX, &mut buffer);
        epk.extend_from_slice(&v2_hash(&buffer));
    }
    epk
}

/// The V1 EPK bytes (`Hash` version 1).
pub(crate) fn epk_v1(components: &[PartitionKeyComponent]) -> Vec<u8> {
    let truncated: Vec<PartitionKeyComponent> = components.iter().map(truncate_for_v1).collect();
    let mut hashed = Vec::new();
    for component in &truncated {
        write_for_hashing(component, V1_STRING_SUFFIX, &mut hashed);
    }
    let hash = mur3::murmurhash3_x86_32(&hashed, 0);
    let mut epk = Vec::new();
    write_number_v1(f64::from(hash), &mut epk);
    for component in &truncated {
        write_for_binary_encoding_v1(component, &mut epk);
    }
    epk
}

/// MurmurHash3 x64 128 of `data`, as EPK bytes: reversed, top two bits cleared.
fn v2_hash(data: &[u8]) -> [u8; V2_HASH_BYTES] {
    let (low, high) = mur3::murmurhash3_x64_128(data, 0);
    // Little-endian low then high, reversed, is big-endian high then low.
    let mut bytes = [0u8; V2_HASH_BYTES];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    bytes[0] &= 0x3F;
    bytes
}

/// The hashing encoding of one component: a type marker, then the value.
fn write_for_hashing(component: &PartitionKeyComponent, string_suffix: u8, out: &mut Vec<u8>) {
    match component {
        PartitionKeyComponent::Undefined => out.push(MARKER_UNDEFINED),
        PartitionKeyComponent::Null => out.push(MARKER_NULL),
        PartitionKeyComponent::Bool(false) => out.push(MARKER_FALSE),
        PartitionKeyComponent::Bool(true) => out.push(MARKER_TRUE),
        PartitionKeyComponent::Number(number) => {
            out.push(MARKER_NUMBER);
            out.extend_from_slice(&number.to_le_bytes());
        }
        PartitionKeyComponent::String(string) => {
            out.push(MARKER_STRING);
            out.extend_from_slice(string.as_bytes());
            out.push(string_suffix);
        }
    }
}

/// The V1 binary encoding of one (already truncated) component.
fn write_for_binary_encoding_v1(component: &PartitionKeyComponent, out: &mut Vec<u8>) {
    match component {
        PartitionKeyComponent::Undefined => out.push(MARKER_UNDEFINED),
        PartitionKeyComponent::Null => out.push(MARKER_NULL),
        PartitionKeyComponent::Bool(false) => out.push(MARKER_FALSE),
        PartitionKeyComponent::Bool(true) => out.push(MARKER_TRUE),
        PartitionKeyComponent::Number(number) => write_number_v1(*number, out),
        PartitionKeyComponent::String(string) => write_string_v1(string, out),
    }
}

/// V1 strings: the marker, each UTF-8 byte plus one (so that `0x00` can end
/// the string and shorter strings sort first), then `0x00`; a string of more
/// than 100 bytes is cut to its first 101 bytes and written without the `0x00`.
fn write_string_v1(string: &str, out: &mut Vec<u8>) {
    out.push(MARKER_STRING);
    let bytes = string.as_bytes();
    let is_short = bytes.len() <= V1_MAX_STRING_BYTES_TO_APPEND;
    let kept = if is_short {
        bytes
    } else {
        &bytes[..V1_MAX_STRING_BYTES_TO_APPEND + 1]
    };
    // UTF-8 never contains 0xFF, so the saturation only mirrors the reference.
    out.extend(kept.iter().map(|byte| byte.saturating_add(1)));
    if is_short {
        out.push(0x00);
    }
}

/// V1 numbers: the marker, then the order-preserving `u64` form of the double
/// written as its top 8 bits, followed by 7-bit groups each in the high bits of
/// a byte whose low bit says "more follows", stopping once the remaining bits
/// are zero (the last byte has its low bit clear).
fn write_number_v1(number: f64, out: &mut Vec<u8>) {
    out.push(MARKER_NUMBER);
    let mut payload = order_preserving_bits(number);
    out.push(top_byte(payload));
    payload <<= 8;
    let mut pending: Option<u8> = None;
    while payload != 0 {
        if let Some(byte) = pending {
            out.push(byte);
        }
        pending = Some(top_byte(payload) | 0x01);
        payload <<= 7;
    }
    out.push(pending.unwrap_or(0) & 0xFE);
}

fn top_byte(payload: u64) -> u8 {
    payload.to_be_bytes()[0]
}

/// Maps a double to a `u64` whose unsigned order is the numeric order:
/// positive numbers get their sign bit set, negative ones are negated.
fn order_preserving_bits(number: f64) -> u64 {
    const SIGN: u64 = 1 << 63;
    let bits = number.to_bits();
    if bits < SIGN {
        bits ^ SIGN
    } else {
        bits.wrapping_neg()
    }
}

/// A string component cut to 100 UTF-16 code units, as .NET and JS do. A
/// surrogate pair split by the cut leaves a lone high surrogate, which both
/// encode to UTF-8 as U+FFFD; so do we.
fn truncate_for_v1(component: &PartitionKeyComponent) -> PartitionKeyComponent {
    let PartitionKeyComponent::String(string) = component else {
        return component.clone();
    };
    let mut n_units = 0;
    let mut truncated = String::new();
    for character in string.chars() {
        let width = character.len_utf16();
        if n_units + width > V1_MAX_STRING_UTF16_UNITS {
            if n_units < V1_MAX_STRING_UTF16_UNITS {
                truncated.push(char::REPLACEMENT_CHARACTER);
            }
            return PartitionKeyComponent::String(truncated);
        }
        n_units += width;
        truncated.push(character);
    }
    component.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02X}")).collect()
    }

    #[test]
    fn v2_hashes_several_components_in_one_buffer() {
        // JS SDK test/internal/unit/hashing/v2.spec.ts, an eight-component key.
        let components = [
            PartitionKeyComponent::String("redmond".to_owned()),
            PartitionKeyComponent::Number(50.0),
            PartitionKeyComponent::Number(5.5),
            PartitionKeyComponent::Bool(true),
            PartitionKeyComponent::Bool(false),
            PartitionKeyComponent::Null,
            PartitionKeyComponent::String(String::new()),
            PartitionKeyComponent::Number(12313.1221),
        ];
        assert_eq!(
            hex(&epk_v2(&components)),
            "1A5E512F591E980E07A6D8AD5BD5AB2F"
        );
        // Rust driver: 5, "redmond", true, null hashed together.
        let components = [
            PartitionKeyComponent::Number(5.0),
            PartitionKeyComponent::String("redmond".to_owned()),
            PartitionKeyComponent::Bool(true),
            PartitionKeyComponent::Null,
        ];
        assert_eq!(
            hex(&epk_v2(&components)),
            "3032DECBE2AB1768D8E0AEDEA35881DF"
        );
    }

    #[test]
    fn v1_hashing_encoding_matches_dotnet_baseline() {
        // Raw MurmurHash3 x86 32 values from the .NET PartitionKeyHashBaselineTest
        // files (shipped with the official Rust driver), before truncation.
        let cases = [
            (PartitionKeyComponent::Undefined, 0x514E_28B7_u32),
            (PartitionKeyComponent::Null, 0xE45A_D1AB),
            (PartitionKeyComponent::Bool(true), 0x5E2A_8076),
            (PartitionKeyComponent::Bool(false), 0x6C27_D09F),
            (PartitionKeyComponent::Number(0.0), 0x1EDA_80A6),
            (PartitionKeyComponent::Number(-0.0), 0xB03D_A650),
            (PartitionKeyComponent::Number(1.0), 0xE165_5A93),
            (PartitionKeyComponent::Number(-1.0), 0x452B_DBE7),
            (PartitionKeyComponent::Number(5e-324), 0xAC83_D318),
            (PartitionKeyComponent::Number(f64::MAX), 0x378B_3C46),
            (PartitionKeyComponent::Number(f64::MIN), 0xE38D_D8A1),
            (
                PartitionKeyComponent::Number(f64::from_bits(0xFFF8_0000_0000_0000)),
                0xAF04_DA37,
            ),
            (
                PartitionKeyComponent::Number(f64::NEG_INFINITY),
                0x0F5A_6CC5,
            ),
            (PartitionKeyComponent::Number(f64::INFINITY), 0xD2F8_4F93),
            (
                PartitionKeyComponent::Number(9_223_372_036_854_775_807_i64 as f64),
                0x1732_A96D,
            ),
            (PartitionKeyComponent::Number(i64::MIN as f64), 0x69AF_2787),
            (
                PartitionKeyComponent::Number(9_007_199_254_740_991.0),
                0x13F6_9B8A,
            ),
            (
                PartitionKeyComponent::Number(9_007_199_254_740_990.0),
                0xE574_4366,
            ),
            (
                PartitionKeyComponent::Number(9_007_199_254_740_992.0),
                0xA30C_CE12,
            ),
            (PartitionKeyComponent::String(String::new()), 0x3CCC_B0FF),
            (
                PartitionKeyComponent::String("asdf".to_owned()),
                0xB02B_ABC2,
            ),
            (PartitionKeyComponent::String("a".repeat(99)), 0xCCC1_22D9),
            (PartitionKeyComponent::String("a".repeat(100)), 0xD584_3D83),
            (PartitionKeyComponent::String("a".repeat(101)), 0x3B1B_5D8D),
            (PartitionKeyComponent::String("a".repeat(2048)), 0x9C91_058D),
            (
                PartitionKeyComponent::String("/path1".to_owned()),
                0xA6C6_298A,
            ),
            (
                PartitionKeyComponent::String("/path2".to_owned()),
                0x9D00_8F2C,
            ),
            (
                PartitionKeyComponent::String("/path3".to_owned()),
                0x3E47_FEA2,
            ),
        ];
        for (component, expected) in cases {
            let mut buffer = Vec::new();
            write_for_hashing(&component, V1_STRING_SUFFIX, &mut buffer);
            assert_eq!(
                mur3::murmurhash3_x86_32(&buffer, 0),
                expected,
                "V1 hash of {component:?}"
            );
        }
    }

    #[test]
    fn v2_hashes_non_finite_numbers_like_dotnet() {
        // Values JSON cannot carry, but the hashing itself is total.
        let cases = [
            (
                f64::from_bits(0xFFF8_0000_0000_0000),
                "1AA4222583D70ECAA0922D8CA8EDFCB1",
            ),
            (f64::NEG_INFINITY, "1B63B3FB266DB3B6CD3BC79FE893CDE8"),
            (f64::INFINITY, "3889F7F08A8CE2A5C9829BBB1944B4FF"),
        ];
        for (number, expected) in cases {
            assert_eq!(
                hex(&epk_v2(&[PartitionKeyComponent::Number(number)])),
                expected
            );
        }
    }

    #[test]
    fn v1_number_encoding_stops_when_remaining_bits_are_zero() {
        let encode = |number: f64| {
            let mut out = Vec::new();
            write_number_v1(number, &mut out);
            hex(&out)
        };
        assert_eq!(encode(5.0), "05C014");
        assert_eq!(encode(-1.0), "054010");
        // Nothing left after the top byte: .NET and Python still write the
        // final (zero) byte; the JS SDK drops it.
        assert_eq!(encode(0.0), "058000");
        assert_eq!(encode(-0.0), "058000");
        assert_eq!(encode(2.0), "05C000");
        assert_eq!(encode(f64::MAX), "05FFEFFFFFFFFFFFFFFE");
    }

    #[test]
    fn v1_order_preserving_bits_sort_like_numbers() {
        let numbers = [
            f64::NEG_INFINITY,
            f64::MIN,
            -1.0,
            -f64::MIN_POSITIVE,
            0.0,
            f64::from_bits(1),
            1.0,
            f64::MAX,
            f64::INFINITY,
        ];
        for pair in numbers.windows(2) {
            assert!(
                order_preserving_bits(pair[0]) < order_preserving_bits(pair[1]),
                "{} should encode below {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn v1_truncation_counts_utf16_units_and_replaces_a_split_pair() {
        let long = "a".repeat(150);
        assert_eq!(
            truncate_for_v1(&PartitionKeyComponent::String(long)),
            PartitionKeyComponent::String("a".repeat(100))
        );
        // 99 units, then a character outside the BMP (two units) that does not fit.
        let split = format!("{}😀tail", "a".repeat(99));
        assert_eq!(
            truncate_for_v1(&PartitionKeyComponent::String(split)),
            PartitionKeyComponent::String(format!("{}\u{FFFD}", "a".repeat(99)))
        );
        // 50 two-unit characters fit exactly.
        let emoji = "😀".repeat(50);
        assert_eq!(
            truncate_for_v1(&PartitionKeyComponent::String(emoji.clone())),
            PartitionKeyComponent::String(emoji)
        );
    }

    #[test]
    fn v1_long_utf8_string_is_cut_to_101_bytes_without_terminator() {
        // 100 two-byte characters: 100 UTF-16 units (no truncation) but 200 bytes.
        let mut out = Vec::new();
        write_string_v1(&"ñ".repeat(100), &mut out);
        assert_eq!(out.len(), 1 + 101);
        assert_eq!(out[0], MARKER_STRING);
        assert_eq!(&out[1..3], &[0xC4, 0xB2]);
        assert_ne!(out.last(), Some(&0x00));
    }
}
