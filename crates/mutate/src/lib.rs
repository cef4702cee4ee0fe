//! Structure-aware mutations for property tests: the edits a fuzzer's mutator makes to a valid
//! seed (a changed byte, a cut, a deleted or repeated run, inserted bytes, a splice from another
//! seed), so that the tests reach the decoder's later checks and not only its first one.

use proptest::prelude::*;

/// One edit of a byte string. Positions are taken modulo the length they index (plus one
/// where the end is a valid place), so every edit applies to any string.
#[derive(Clone, Debug)]
pub enum Edit {
    /// Sets the byte at a position.
    Set(usize, u8),
    /// Flips one bit of the byte at a position.
    FlipBit(usize, u8),
    /// Keeps only the bytes before a position.
    Truncate(usize),
    /// Removes up to `n` bytes from a position.
    Delete(usize, usize),
    /// Repeats up to `n` bytes from a position right after themselves.
    Repeat(usize, usize),
    /// Inserts bytes at a position.
    Insert(usize, Vec<u8>),
    /// Inserts up to `n` bytes of another seed, from one of its positions, at a position.
    Splice(usize, usize, usize, usize),
}

/// One to four edits, each any of the kinds above.
pub fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Set(at, byte)),
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Edit::FlipBit(at, bit)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), 1usize..16).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), 1usize..16).prop_map(|(at, n)| Edit::Repeat(at, n)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        (any::<usize>(), any::<usize>(), any::<usize>(), 1usize..32)
            .prop_map(|(at, donor, from, n)| Edit::Splice(at, donor, from, n)),
    ];
    prop::collection::vec(edit, 1..=4)
}

/// `seed` after `edits`; a splice takes its bytes from one of `seeds`.
pub fn apply(seed: &[u8], edits: &[Edit], seeds: &[&[u8]]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for edit in edits {
        let len = bytes.len();
        match edit {
            Edit::Set(at, byte) if len > 0 => bytes[at % len] = *byte,
            Edit::FlipBit(at, bit) if len > 0 => bytes[at % len] ^= 1 << bit,
            Edit::Truncate(at) => bytes.truncate(at % (len + 1)),
            Edit::Delete(at, n) if len > 0 => {
                let start = at % len;
                bytes.drain(start..(start + n).min(len));
            }
            Edit::Repeat(at, n) if len > 0 => {
                let start = at % len;
                let run = bytes[start..(start + n).min(len)].to_vec();
                bytes.splice(start..start, run);
            }
            Edit::Insert(at, inserted) => {
                let at = at % (len + 1);
                bytes.splice(at..at, inserted.iter().copied());
            }
            Edit::Splice(at, donor, from, n) if !seeds.is_empty() => {
                let donor = seeds[donor % seeds.len()];
                let at = at % (len + 1);
                let from = from % (donor.len() + 1);
                let run = &donor[from..(from + n).min(donor.len())];
                bytes.splice(at..at, run.iter().copied());
            }
            _ => {}
        }
    }
    bytes
}

/// [`apply`] for text inputs: the edited bytes, with any broken UTF-8 replaced by U+FFFD.
pub fn apply_to_text(seed: &str, edits: &[Edit], seeds: &[&str]) -> String {
    let seeds: Vec<&[u8]> = seeds.iter().map(|seed| seed.as_bytes()).collect();
    String::from_utf8_lossy(&apply(seed.as_bytes(), edits, &seeds)).into_owned()
}
