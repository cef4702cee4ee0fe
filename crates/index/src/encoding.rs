//! The byte encoding of index terms: a path, then a value, ordered as Cosmos DB orders values.
//!
//! A term is `path ‖ value`. The path is a sequence of steps (`0x02 ‖ escaped name` for a
//! property, `0x03` for an array element) closed by `0x00`. The value is a type tag and its
//! bytes: `0x10` null; `0x20` false, `0x21` true; `0x30 ‖ 8 bytes` a number (IEEE 754 bits
//! made to sort as the numbers do); `0x40 ‖ escaped text` a string. Escaped text is the
//! UTF-8 bytes with `0x00` written `0x00 0xFF`, closed by `0x00 0x01`, or by `0x00 0x02` when
//! the string was longer than [`MAX_INDEXED_STRING_BYTES`] and only its start is kept. Every
//! term is therefore self-delimiting, and terms of one path sort by value: null < false <
//! true < numbers < strings, numbers numerically, strings in UTF-16 code unit order, as the
//! query engine (and Cosmos DB) compares them: the text's UTF-8 lead bytes `0xEE` and `0xEF`
//! (characters U+E000 to U+FFFF, which UTF-16 sorts after the surrogate pairs of U+10000 and
//! up) are written `0xF5` and `0xF6`, two bytes UTF-8 never uses.

use serde_json::Value;

use crate::path::{IndexPath, Step};

/// Longest prefix of a string the index keeps (bytes). Longer strings share the term of
/// their first this-many bytes, so a lookup of one also returns the others with that start.
pub const MAX_INDEXED_STRING_BYTES: usize = 1024;

pub(crate) const PROPERTY: u8 = 0x02;
pub(crate) const ELEMENT: u8 = 0x03;
pub(crate) const PATH_END: u8 = 0x00;
pub(crate) const NULL: u8 = 0x10;
pub(crate) const FALSE: u8 = 0x20;
pub(crate) const TRUE: u8 = 0x21;
pub(crate) const NUMBER: u8 = 0x30;
pub(crate) const STRING: u8 = 0x40;

/// A value the index holds: a JSON scalar.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number (as the 64-bit float Cosmos DB compares).
    Number(f64),
    /// A string.
    String(String),
}

impl Scalar {
    /// The scalar a JSON value is; `None` for arrays and objects.
    pub fn from_json(value: &Value) -> Option<Scalar> {
        match value {
            Value::Null => Some(Scalar::Null),
            Value::Bool(b) => Some(Scalar::Bool(*b)),
            Value::Number(n) => n.as_f64().map(Scalar::Number),
            Value::String(s) => Some(Scalar::String(s.clone())),
            Value::Array(_) | Value::Object(_) => None,
        }
    }
}

/// Appends the encoding of `path` to `out`.
pub(crate) fn encode_path(path: &[Step], out: &mut Vec<u8>) {
    for step in path {
        match step {
            Step::Property(name) => {
                out.push(PROPERTY);
                escape(name.as_bytes(), out);
                out.extend_from_slice(&[0x00, 0x01]);
            }
            Step::Element => out.push(ELEMENT),
        }
    }
    out.push(PATH_END);
}

/// The encoding of `path` alone: the start of every term of that path.
pub(crate) fn path_bytes(path: &IndexPath) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    encode_path(path.steps(), &mut out);
    out
}

/// Appends the encoding of a JSON scalar to `out`; false (nothing appended) for arrays and
/// objects.
pub(crate) fn encode_json_scalar(value: &Value, out: &mut Vec<u8>) -> bool {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Value::Number(n) => match n.as_f64() {
            Some(n) => encode_number(n, out),
            None => return false,
        },
        Value::String(s) => encode_string(s, out),
        Value::Array(_) | Value::Object(_) => return false,
    }
    true
}

/// Appends the encoding of `scalar` to `out`.
pub(crate) fn encode_scalar(scalar: &Scalar, out: &mut Vec<u8>) {
    match scalar {
        Scalar::Null => out.push(NULL),
        Scalar::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Scalar::Number(n) => encode_number(*n, out),
        Scalar::String(s) => encode_string(s, out),
    }
}

fn encode_number(n: f64, out: &mut Vec<u8>) {
    out.push(NUMBER);
    // -0.0 and 0.0 are one number.
    let n = if n == 0.0 { 0.0 } else { n };
    let bits = n.to_bits();
    let ordered = if bits >> 63 == 0 {
        bits | (1 << 63)
    } else {
        !bits
    };
    out.extend_from_slice(&ordered.to_be_bytes());
}

fn encode_string(s: &str, out: &mut Vec<u8>) {
    out.push(STRING);
    let (kept, truncated) = indexed_prefix(s);
    escape_text(kept, out);
    out.extend_from_slice(if truncated {
        &[0x00, 0x02]
    } else {
        &[0x00, 0x01]
    });
}

/// The start of `s` the index keeps (at most [`MAX_INDEXED_STRING_BYTES`] bytes, cut at a
/// character boundary), and whether that is less than all of it.
pub(crate) fn indexed_prefix(s: &str) -> (&str, bool) {
    if s.len() <= MAX_INDEXED_STRING_BYTES {
        return (s, false);
    }
    let mut end = MAX_INDEXED_STRING_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// Appends the bytes of `text` in UTF-16 order (see the module's documentation), escaped as
/// [`escape`] does (no terminator).
pub(crate) fn escape_text(text: &str, out: &mut Vec<u8>) {
    for &byte in text.as_bytes() {
        match byte {
            0xEE => out.push(0xF5),
            0xEF => out.push(0xF6),
            0 => out.extend_from_slice(&[0x00, 0xFF]),
            byte => out.push(byte),
        }
    }
}

/// Appends `bytes` with every `0x00` written `0x00 0xFF` (no terminator).
pub(crate) fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        out.push(byte);
        if byte == 0 {
            out.push(0xFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn encoded(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(encode_json_scalar(value, &mut out));
        out
    }

    #[test]
    fn types_order_as_cosmos_orders_them() {
        let ordered = [
            Value::Null,
            Value::Bool(false),
            Value::Bool(true),
            serde_json::json!(-1e300),
            serde_json::json!(-1),
            serde_json::json!(0),
            serde_json::json!(0.5),
            serde_json::json!(7),
            serde_json::json!(1e300),
            serde_json::json!(""),
            serde_json::json!("\u{0}"),
            serde_json::json!("a"),
            serde_json::json!("a\u{0}"),
            serde_json::json!("ab"),
            serde_json::json!("é"),
            // UTF-16 order: a surrogate pair (U+1F600) before U+FF21.
            serde_json::json!("\u{1F600}"),
            serde_json::json!("\u{FF21}"),
        ];
        for pair in ordered.windows(2) {
            assert!(encoded(&pair[0]) < encoded(&pair[1]), "{pair:?}");
        }
        assert_eq!(
            encoded(&serde_json::json!(-0.0)),
            encoded(&serde_json::json!(0))
        );
        assert_eq!(
            encoded(&serde_json::json!(5)),
            encoded(&serde_json::json!(5.0))
        );
    }

    #[test]
    fn long_strings_keep_their_start_and_say_so() {
        let long = "x".repeat(MAX_INDEXED_STRING_BYTES + 10);
        let longer = format!("{long}yz");
        assert_eq!(
            encoded(&Value::from(long.clone())),
            encoded(&Value::from(longer))
        );
        let exact = "x".repeat(MAX_INDEXED_STRING_BYTES);
        assert!(encoded(&Value::from(exact)) < encoded(&Value::from(long)));
        // A cut never splits a character.
        let wide = "é".repeat(MAX_INDEXED_STRING_BYTES);
        let (kept, truncated) = indexed_prefix(&wide);
        assert!(truncated && kept.len() <= MAX_INDEXED_STRING_BYTES);
    }

    proptest! {
        #[test]
        fn numbers_encode_in_numeric_order(a in any::<f64>(), b in any::<f64>()) {
            prop_assume!(a.is_finite() && b.is_finite());
            let (ea, eb) = (encoded(&serde_json::json!(a)), encoded(&serde_json::json!(b)));
            let expected = if a == b { std::cmp::Ordering::Equal } else { a.partial_cmp(&b).unwrap() };
            prop_assert_eq!(ea.cmp(&eb), expected);
        }

        #[test]
        fn short_strings_encode_in_utf16_order(a in ".{0,12}", b in ".{0,12}") {
            let (ea, eb) = (encoded(&Value::from(a.clone())), encoded(&Value::from(b.clone())));
            prop_assert_eq!(ea.cmp(&eb), a.encode_utf16().cmp(b.encode_utf16()));
        }

        #[test]
        fn paths_are_prefix_free(a in proptest::collection::vec(".{0,4}", 0..4), b in proptest::collection::vec(".{0,4}", 0..4)) {
            let path = |names: &Vec<String>| {
                let steps: Vec<Step> = names.iter().cloned().map(Step::Property).collect();
                path_bytes(&IndexPath(steps))
            };
            let (pa, pb) = (path(&a), path(&b));
            if a != b {
                prop_assert!(!pa.starts_with(&pb) && !pb.starts_with(&pa));
            }
        }
    }
}
