//! Effective partition keys and half-open ranges of them.
//!
//! An EPK is a byte string written as uppercase hex. Because every byte is two
//! hex digits and `0-9` sort before `A-F`, comparing the hex strings compares
//! the bytes lexicographically; this crate relies on that and never compares
//! bytes separately. `""` is the smallest EPK and `"FF"` the exclusive end of
//! the space: no computed EPK starts with a byte above `0x3F` (V2) or other
//! than `0x05` (V1).
//!
//! Unlike the official Rust driver, trailing `00` bytes are significant here:
//! `"80"` sorts before `"8000"`. The driver treats them as equal because the
//! real service may return hierarchical range boundaries padded to full width;
//! Tributary makes its own boundaries and never pads them.

use std::fmt;
use std::str::FromStr;

use crate::error::PartitionKeyError;

/// An effective partition key: an uppercase hex string of even length.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct Epk(String);

impl Epk {
    /// The smallest EPK, `""`: the inclusive start of the key space.
    pub fn min() -> Self {
        Epk(String::new())
    }

    /// `"FF"`: the exclusive end of the key space.
    pub fn max() -> Self {
        Epk("FF".to_owned())
    }

    /// Parses a hex EPK as it appears in headers (`x-ms-start-epk`) and range
    /// bodies (`minInclusive`), accepting either case and normalizing to upper case.
    ///
    /// # Errors
    ///
    /// Returns [`PartitionKeyError::InvalidEpk`] if the string has an odd
    /// length or a character that is not a hex digit.
    pub fn parse(hex: &str) -> Result<Self, PartitionKeyError> {
        if !hex.len().is_multiple_of(2) {
            return Err(PartitionKeyError::InvalidEpk {
                hex: hex.to_owned(),
                reason: "it has an odd number of hex digits",
            });
        }
        if !hex.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(PartitionKeyError::InvalidEpk {
                hex: hex.to_owned(),
                reason: "it contains a character that is not a hex digit",
            });
        }
        Ok(Epk(hex.to_ascii_uppercase()))
    }

    /// The EPK with these bytes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        let mut hex = String::with_capacity(bytes.len() * 2);
        for byte in bytes {
            hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(DIGITS[usize::from(byte & 0x0F)]));
        }
        Epk(hex)
    }

    /// The bytes this EPK stands for.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0
            .as_bytes()
            .chunks_exact(2)
            .map(|pair| (hex_value(pair[0]) << 4) | hex_value(pair[1]))
            .collect()
    }

    /// The uppercase hex string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the minimum, `""`.
    pub fn is_min(&self) -> bool {
        self.0.is_empty()
    }

    /// The end of the point range `[self, self]` in half-open form: one added
    /// to the last byte, carrying over `FF` bytes, as the Python SDK's
    /// `Range.add_to_effective_partition_key(epk, 1)` does.
    ///
    /// Two inputs have no such successor, and there the Python SDK returns a
    /// value that makes the range empty or inverted; this returns the smallest
    /// string above `self` instead, `self + "00"`: for `""` (the empty key)
    /// that is `"00"`, and for an all-`FF` string it is that string plus `"00"`.
    /// Neither can be the EPK of a non-empty key.
    pub fn successor(&self) -> Epk {
        let mut bytes = self.to_bytes();
        match bytes.iter().rposition(|byte| *byte != 0xFF) {
            Some(last) => {
                bytes[last] += 1;
                for byte in &mut bytes[last + 1..] {
                    *byte = 0x00;
                }
                Epk::from_bytes(&bytes)
            }
            None => Epk(format!("{}00", self.0)),
        }
    }

    /// `self + "FF"`: the exclusive end of the range of every EPK that has
    /// `self` as a prefix (used for `MultiHash` prefixes).
    pub(crate) fn prefix_end(&self) -> Epk {
        Epk(format!("{}FF", self.0))
    }
}

impl fmt::Display for Epk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Epk {
    type Err = PartitionKeyError;

    fn from_str(hex: &str) -> Result<Self, Self::Err> {
        Epk::parse(hex)
    }
}

impl TryFrom<String> for Epk {
    type Error = PartitionKeyError;

    fn try_from(hex: String) -> Result<Self, Self::Error> {
        Epk::parse(&hex)
    }
}

impl From<Epk> for String {
    fn from(epk: Epk) -> Self {
        epk.0
    }
}

/// The value of one uppercase hex digit. An `Epk` holds nothing else (every
/// constructor validates or generates its string), so the last arm is never taken.
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// A half-open range `[min, max)` of EPKs; never empty.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "RawEpkRange", into = "RawEpkRange")]
pub struct EpkRange {
    /// Inclusive start.
    pub min: Epk,
    /// Exclusive end.
    pub max: Epk,
}

impl EpkRange {
    /// The whole key space `["", "FF")`.
    pub fn full() -> Self {
        EpkRange {
            min: Epk::min(),
            max: Epk::max(),
        }
    }

    /// The range `[min, max)`.
    ///
    /// # Errors
    ///
    /// Returns [`PartitionKeyError::EmptyRange`] unless `min < max`.
    pub fn new(min: Epk, max: Epk) -> Result<Self, PartitionKeyError> {
        if min >= max {
            return Err(PartitionKeyError::EmptyRange {
                min: min.0,
                max: max.0,
            });
        }
        Ok(EpkRange { min, max })
    }

    /// Whether `min <= epk < max`.
    pub fn contains(&self, epk: &Epk) -> bool {
        self.min <= *epk && *epk < self.max
    }

    /// Whether the two ranges share at least one EPK.
    pub fn overlaps(&self, other: &EpkRange) -> bool {
        self.min < other.max && other.min < self.max
    }

    /// The EPKs in both ranges, if there are any.
    pub fn intersect(&self, other: &EpkRange) -> Option<EpkRange> {
        let min = (&self.min).max(&other.min);
        let max = (&self.max).min(&other.max);
        (min < max).then(|| EpkRange {
            min: min.clone(),
            max: max.clone(),
        })
    }

    /// Whether this is `["", "FF")`.
    pub fn is_full(&self) -> bool {
        self.min.is_min() && self.max.0 == "FF"
    }
}

impl fmt::Display for EpkRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:?}, {:?})", self.min.0, self.max.0)
    }
}

/// The serde form of [`EpkRange`], in the field names of a partition key range body.
#[derive(serde::Serialize, serde::Deserialize)]
struct RawEpkRange {
    #[serde(rename = "minInclusive")]
    min: Epk,
    #[serde(rename = "maxExclusive")]
    max: Epk,
}

impl TryFrom<RawEpkRange> for EpkRange {
    type Error = PartitionKeyError;

    fn try_from(raw: RawEpkRange) -> Result<Self, Self::Error> {
        EpkRange::new(raw.min, raw.max)
    }
}

impl From<EpkRange> for RawEpkRange {
    fn from(range: EpkRange) -> Self {
        RawEpkRange {
            min: range.min,
            max: range.max,
        }
    }
}

/// An EPK strictly inside `range`, near its middle, if one exists.
///
/// Meant for splitting a range that has no documents to take a median from.
/// Both bounds are padded with `00` bytes to a common length and averaged as
/// big-endian integers; if they are adjacent at that length, one more byte of
/// precision is used. No EPK lies strictly between `x` and `x + "00"` (or
/// between equal bounds), and there this returns `None`.
pub fn epk_midpoint(range: &EpkRange) -> Option<Epk> {
    let mut low = range.min.to_bytes();
    let mut high = range.max.to_bytes();
    let width = low.len().max(high.len());
    low.resize(width, 0x00);
    high.resize(width, 0x00);
    if low >= high {
        // max is min followed by zero bytes (or, for a hand-built range, below it).
        return None;
    }
    let mut middle = halve(&add(&low, &high));
    if middle <= low {
        // Adjacent at this width: use one more byte.
        low.push(0x00);
        high.push(0x00);
        middle = halve(&add(&low, &high));
    }
    let middle = Epk::from_bytes(&middle);
    range.contains(&middle).then_some(middle)
}

/// `a + b` for equal-length big-endian integers, with one extra leading byte.
fn add(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut sum = vec![0u8; a.len() + 1];
    let mut carry = 0u16;
    for index in (0..a.len()).rev() {
        let total = u16::from(a[index]) + u16::from(b[index]) + carry;
        sum[index + 1] = total.to_be_bytes()[1];
        carry = total >> 8;
    }
    sum[0] = carry.to_be_bytes()[1];
    sum
}

/// Half of a big-endian integer with one extra leading byte, dropping that byte.
fn halve(sum: &[u8]) -> Vec<u8> {
    let mut half = Vec::with_capacity(sum.len().saturating_sub(1));
    let mut remainder = 0u16;
    for (index, byte) in sum.iter().enumerate() {
        let value = (remainder << 8) | u16::from(*byte);
        if index > 0 {
            half.push((value >> 1).to_be_bytes()[1]);
        }
        remainder = value & 1;
    }
    half
}
