//! What a query asks of the index, and the byte ranges of terms that answer it.

use std::ops::Bound;

use crate::encoding::{
    NUMBER, STRING, Scalar, encode_scalar, escape_text, indexed_prefix, path_bytes,
};
use crate::path::IndexPath;

/// What values a [`Lookup`] selects at its path.
#[derive(Clone, Debug, PartialEq)]
pub enum LookupKind {
    /// Equal to one of these values (`=`, `IN`, `ARRAY_CONTAINS`).
    Equal(Vec<Scalar>),
    /// Numbers, or strings, between two bounds (`<`, `<=`, `>`, `>=`, `BETWEEN`); an
    /// unbounded side reaches to the end of the bounded side's type.
    Range {
        /// Lower bound.
        low: Bound<Scalar>,
        /// Upper bound.
        high: Bound<Scalar>,
    },
    /// Strings that start with this text (`STARTSWITH`).
    Prefix(String),
}

/// A question for the index: the items with a value at `path` that `kind` selects.
#[derive(Clone, Debug, PartialEq)]
pub struct Lookup {
    /// Where the values are.
    pub path: IndexPath,
    /// Which values.
    pub kind: LookupKind,
}

impl Lookup {
    /// A range lookup, when its bounds are numbers or strings (both of one type; at least one
    /// bound given); `None` otherwise.
    pub fn range(path: IndexPath, low: Bound<Scalar>, high: Bound<Scalar>) -> Option<Lookup> {
        let type_of = |bound: &Bound<Scalar>| match bound {
            Bound::Included(scalar) | Bound::Excluded(scalar) => Some(match scalar {
                Scalar::Number(_) => Some(NUMBER),
                Scalar::String(_) => Some(STRING),
                Scalar::Null | Scalar::Bool(_) => None,
            }),
            Bound::Unbounded => None,
        };
        match (type_of(&low), type_of(&high)) {
            (Some(Some(a)), Some(Some(b))) if a == b => {}
            (Some(Some(_)), None) | (None, Some(Some(_))) => {}
            _ => return None,
        }
        Some(Lookup {
            path,
            kind: LookupKind::Range { low, high },
        })
    }

    /// Whether an index position (a term and what follows it) lies on this lookup's path:
    /// a position from a read of another path cannot resume this one.
    pub fn is_on_path(&self, position: &[u8]) -> bool {
        position.starts_with(&path_bytes(&self.path))
    }

    /// The index the lookup reads, as an indexing policy names it (`/status/?`).
    pub fn index_spec(&self) -> String {
        self.path.to_string()
    }

    /// Whether one item can have several terms in the lookup's ranges, so that a reader
    /// must drop the repeats: a path through array elements, read for more than one value.
    pub fn may_repeat_items(&self) -> bool {
        self.path.has_element()
            && !matches!(&self.kind, LookupKind::Equal(values) if values.len() == 1)
    }

    /// The byte ranges `[start, end)` of the terms that answer the lookup, ascending and not
    /// overlapping. A term is in a range when the key that starts with it is: callers append
    /// their own suffix (which item) to terms, and compare keys against these bounds.
    pub fn term_ranges(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let path = path_bytes(&self.path);
        let with = |tail: &[u8]| {
            let mut bytes = path.clone();
            bytes.extend_from_slice(tail);
            bytes
        };
        let mut ranges = match &self.kind {
            LookupKind::Equal(values) => values
                .iter()
                .map(|value| {
                    let term = term(&path, value);
                    let end = after_prefix(&term);
                    (term, end)
                })
                .collect(),
            LookupKind::Range { low, high } => {
                let tag = [low, high]
                    .into_iter()
                    .find_map(|bound| match bound {
                        Bound::Included(Scalar::Number(_)) | Bound::Excluded(Scalar::Number(_)) => {
                            Some(NUMBER)
                        }
                        Bound::Included(_) | Bound::Excluded(_) => Some(STRING),
                        Bound::Unbounded => None,
                    })
                    .unwrap_or(NUMBER);
                let start = match low {
                    Bound::Unbounded => with(&[tag]),
                    Bound::Included(value) => term(&path, value),
                    Bound::Excluded(value) if is_cut(value) => term(&path, value),
                    Bound::Excluded(value) => after_prefix(&term(&path, value)),
                };
                let end = match high {
                    Bound::Unbounded => with(&[tag + 1]),
                    Bound::Excluded(value) if !is_cut(value) => term(&path, value),
                    Bound::Included(value) | Bound::Excluded(value) => {
                        after_prefix(&term(&path, value))
                    }
                };
                vec![(start, end)]
            }
            LookupKind::Prefix(prefix) => {
                let (kept, _) = indexed_prefix(prefix);
                let mut start = with(&[STRING]);
                escape_text(kept, &mut start);
                let mut end = start.clone();
                // Every byte that can follow an escaped prefix (text, an escaped 0x00, a
                // terminator) is below 0xFF.
                end.push(0xFF);
                vec![(start, end)]
            }
        };
        ranges.retain(|(start, end)| start < end);
        ranges.sort();
        ranges.dedup();
        ranges
    }
}

/// `path ‖ value`.
fn term(path: &[u8], value: &Scalar) -> Vec<u8> {
    let mut bytes = path.to_vec();
    encode_scalar(value, &mut bytes);
    bytes
}

/// True for a string the index keeps only the start of: its term stands for every string
/// with that start, so a bound on it must include them all.
fn is_cut(value: &Scalar) -> bool {
    matches!(value, Scalar::String(s) if indexed_prefix(s).1)
}

/// The smallest byte string above every string that starts with `prefix`.
fn after_prefix(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    // Only a prefix of 0xFF bytes gets here; no term starts that way.
    vec![0xFF; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;
    use crate::IndexingPolicy;
    use crate::path::Step;

    fn field(name: &str) -> IndexPath {
        IndexPath(vec![Step::Property(name.into())])
    }

    /// The items of `items` whose terms fall in the lookup's ranges.
    fn selected(lookup: &Lookup, items: &[Value]) -> Vec<usize> {
        let policy = IndexingPolicy::default();
        let ranges = lookup.term_ranges();
        items
            .iter()
            .enumerate()
            .filter(|(_, item)| {
                policy.terms(item).iter().any(|term| {
                    // A stored key is the term and an item suffix.
                    let mut key = term.clone();
                    key.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9]);
                    ranges
                        .iter()
                        .any(|(start, end)| *start <= key && key < *end)
                })
            })
            .map(|(i, _)| i)
            .collect()
    }

    fn items() -> Vec<Value> {
        vec![
            json!({"a": 1}),
            json!({"a": 2.5}),
            json!({"a": "2"}),
            json!({"a": "apple"}),
            json!({"a": "apricot"}),
            json!({"a": null}),
            json!({"a": true}),
            json!({"b": 1}),
            json!({"a": [1, 3]}),
            json!({"a": {"a": 1}}),
        ]
    }

    #[test]
    fn equality_selects_the_value_of_that_type_at_that_path() {
        let lookup = |values: Vec<Scalar>| Lookup {
            path: field("a"),
            kind: LookupKind::Equal(values),
        };
        assert_eq!(selected(&lookup(vec![Scalar::Number(1.0)]), &items()), [0]);
        assert_eq!(
            selected(
                &lookup(vec![Scalar::Number(2.5), Scalar::String("2".into())]),
                &items()
            ),
            [1, 2]
        );
        assert_eq!(selected(&lookup(vec![Scalar::Null]), &items()), [5]);
        assert_eq!(selected(&lookup(vec![Scalar::Bool(true)]), &items()), [6]);
        let elements = Lookup {
            path: IndexPath(vec![Step::Property("a".into()), Step::Element]),
            kind: LookupKind::Equal(vec![Scalar::Number(3.0)]),
        };
        assert_eq!(selected(&elements, &items()), [8]);
        assert!(!elements.may_repeat_items());
    }

    #[test]
    fn ranges_stay_within_their_type() {
        let number = |low, high| Lookup::range(field("a"), low, high).unwrap();
        assert_eq!(
            selected(
                &number(Bound::Excluded(Scalar::Number(1.0)), Bound::Unbounded),
                &items()
            ),
            [1]
        );
        assert_eq!(
            selected(
                &number(
                    Bound::Included(Scalar::Number(1.0)),
                    Bound::Included(Scalar::Number(2.5))
                ),
                &items()
            ),
            [0, 1]
        );
        assert_eq!(
            selected(
                &number(
                    Bound::Unbounded,
                    Bound::Excluded(Scalar::String("apricot".into()))
                ),
                &items()
            ),
            [2, 3]
        );
        assert!(
            Lookup::range(
                field("a"),
                Bound::Included(Scalar::Number(1.0)),
                Bound::Included(Scalar::String("x".into()))
            )
            .is_none()
        );
        assert!(
            Lookup::range(field("a"), Bound::Included(Scalar::Null), Bound::Unbounded).is_none()
        );
    }

    #[test]
    fn prefixes_select_strings_that_start_with_them() {
        let lookup = Lookup {
            path: field("a"),
            kind: LookupKind::Prefix("ap".into()),
        };
        assert_eq!(selected(&lookup, &items()), [3, 4]);
        let everything = Lookup {
            path: field("a"),
            kind: LookupKind::Prefix(String::new()),
        };
        assert_eq!(selected(&everything, &items()), [2, 3, 4]);
    }

    proptest! {
        /// A lookup never misses an item whose value it selects, long strings included.
        #[test]
        fn string_ranges_select_exactly_or_more(values in proptest::collection::vec("[ab\u{0}]{0,3}|x{1020,1030}[ab]?", 1..12), low in "[ab]{0,3}|x{1020,1030}[ab]?", high in "[ab]{0,3}|x{1020,1030}[ab]?") {
            let items: Vec<Value> = values.iter().map(|v| json!({"a": v})).collect();
            let lookup = Lookup::range(field("a"), Bound::Excluded(Scalar::String(low.clone())), Bound::Included(Scalar::String(high.clone()))).unwrap();
            let chosen = selected(&lookup, &items);
            for (i, value) in values.iter().enumerate() {
                if value.as_str() > low.as_str() && value.as_str() <= high.as_str() {
                    prop_assert!(chosen.contains(&i), "{value:?} missed");
                }
            }
            let prefix = Lookup { path: field("a"), kind: LookupKind::Prefix(low.clone()) };
            let chosen = selected(&prefix, &items);
            for (i, value) in values.iter().enumerate() {
                if value.starts_with(low.as_str()) {
                    prop_assert!(chosen.contains(&i), "{value:?} missed by prefix");
                }
            }
        }
    }
}
