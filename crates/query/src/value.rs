//! Values during evaluation, and how the query language compares them.
//!
//! A [`Val`] is a JSON value that may be *undefined* (a missing property, a type mismatch) and
//! that either borrows from a document, a literal or a parameter, or owns a computed value. Only
//! computed values are allocated; reading `c.a.b` from a document copies nothing.
//!
//! Ordering across types (used by `ORDER BY`, `MIN`, `MAX`) is
//! undefined < null < false < true < numbers < strings < arrays < objects. Numbers compare as
//! f64; strings compare ordinally by UTF-16 code unit, like .NET's ordinal comparison.

use std::cmp::Ordering;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::{Number, Value};

/// A value during evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    /// No value: a missing property, or the result of an operation on mismatched types.
    Undefined,
    /// A value borrowed from a document, literal or parameter.
    Ref(&'a Value),
    /// A value computed during evaluation.
    Owned(Value),
}

impl<'a> Val<'a> {
    /// The JSON value, or `None` when undefined.
    pub(crate) fn get(&self) -> Option<&Value> {
        match self {
            Val::Undefined => None,
            Val::Ref(value) => Some(value),
            Val::Owned(value) => Some(value),
        }
    }

    pub(crate) fn is_defined(&self) -> bool {
        !matches!(self, Val::Undefined)
    }

    /// The owned JSON value (cloning a borrowed one), or `None` when undefined.
    pub(crate) fn into_value(self) -> Option<Value> {
        match self {
            Val::Undefined => None,
            Val::Ref(value) => Some(value.clone()),
            Val::Owned(value) => Some(value),
        }
    }

    pub(crate) fn from_option(value: Option<Value>) -> Val<'a> {
        value.map_or(Val::Undefined, Val::Owned)
    }

    pub(crate) fn bool(value: bool) -> Val<'a> {
        Val::Owned(Value::Bool(value))
    }

    /// A number result; non-finite values (which JSON cannot hold) are undefined.
    pub(crate) fn number(value: f64) -> Val<'a> {
        Val::from_option(number_value(value))
    }

    pub(crate) fn string(value: String) -> Val<'a> {
        Val::Owned(Value::String(value))
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        self.get().and_then(Value::as_f64)
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        self.get().and_then(Value::as_str)
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        self.get().and_then(Value::as_bool)
    }

    pub(crate) fn as_array(&self) -> Option<&Vec<Value>> {
        self.get().and_then(Value::as_array)
    }

    /// True only for the boolean `true`; what `WHERE` keeps.
    pub(crate) fn is_true(&self) -> bool {
        self.as_bool() == Some(true)
    }

    /// Looks up a property; undefined unless this is an object that has it.
    pub(crate) fn property(self, name: &str) -> Val<'a> {
        match self {
            Val::Undefined => Val::Undefined,
            Val::Ref(value) => value.get(name).map_or(Val::Undefined, Val::Ref),
            Val::Owned(Value::Object(mut map)) => Val::from_option(map.swap_remove(name)),
            Val::Owned(_) => Val::Undefined,
        }
    }

    /// Looks up an array element; undefined unless this is an array that long.
    pub(crate) fn element(self, index: usize) -> Val<'a> {
        match self {
            Val::Undefined => Val::Undefined,
            Val::Ref(value) => value.get(index).map_or(Val::Undefined, Val::Ref),
            Val::Owned(Value::Array(mut items)) if index < items.len() => {
                Val::Owned(items.swap_remove(index))
            }
            Val::Owned(_) => Val::Undefined,
        }
    }
}

/// Builds a JSON number from an f64 the way query results print numbers: integral values within
/// ±2^53 print without a fraction (`3`, not `3.0`). Non-finite values give `None`.
pub(crate) fn number_value(value: f64) -> Option<Value> {
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;
    if !value.is_finite() {
        return None;
    }
    if value.fract() == 0.0 && value.abs() <= MAX_SAFE_INTEGER {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the value is integral and within ±2^53, so the cast is exact"
        )]
        let integer = value as i64;
        return Some(Value::from(integer));
    }
    Number::from_f64(value).map(Value::Number)
}

/// The rank of a value's type in the cross-type sort order.
fn type_rank(value: Option<&Value>) -> u8 {
    match value {
        None => 0,
        Some(Value::Null) => 1,
        Some(Value::Bool(_)) => 2,
        Some(Value::Number(_)) => 3,
        Some(Value::String(_)) => 4,
        Some(Value::Array(_)) => 5,
        Some(Value::Object(_)) => 6,
    }
}

/// Compares strings by UTF-16 code unit, as Cosmos' ordinal comparison does.
pub(crate) fn compare_strings(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

fn number_of(number: &Number) -> f64 {
    number.as_f64().unwrap_or(f64::NAN)
}

fn compare_numbers(a: &Number, b: &Number) -> Ordering {
    number_of(a).total_cmp(&number_of(b))
}

/// The total order used to sort values of any type (`ORDER BY`, `MIN`, `MAX`).
pub(crate) fn sort_order(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let by_type = type_rank(a).cmp(&type_rank(b));
    if by_type != Ordering::Equal {
        return by_type;
    }
    match (a, b) {
        (Some(Value::Bool(x)), Some(Value::Bool(y))) => x.cmp(y),
        (Some(Value::Number(x)), Some(Value::Number(y))) => compare_numbers(x, y),
        (Some(Value::String(x)), Some(Value::String(y))) => compare_strings(x, y),
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for (left, right) in x.iter().zip(y) {
                let order = sort_order(Some(left), Some(right));
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut left: Vec<_> = x.iter().collect();
            let mut right: Vec<_> = y.iter().collect();
            left.sort_by(|p, q| compare_strings(p.0, q.0));
            right.sort_by(|p, q| compare_strings(p.0, q.0));
            for ((left_key, left_value), (right_key, right_value)) in left.iter().zip(&right) {
                let order = compare_strings(left_key, right_key)
                    .then_with(|| sort_order(Some(left_value), Some(right_value)));
                if order != Ordering::Equal {
                    return order;
                }
            }
            left.len().cmp(&right.len())
        }
        _ => Ordering::Equal,
    }
}

/// Compares two values with `<`, `<=`, `>`, `>=`: only primitives of the same type compare;
/// anything else is undefined (`None`).
pub(crate) fn compare_relational(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        (Value::Number(x), Value::Number(y)) => number_of(x).partial_cmp(&number_of(y)),
        (Value::String(x), Value::String(y)) => Some(compare_strings(x, y)),
        _ => None,
    }
}

/// Equality as `=` sees it: `None` (undefined) across types, deep equality within a type.
pub(crate) fn equals(a: &Value, b: &Value) -> Option<bool> {
    if type_rank(Some(a)) != type_rank(Some(b)) {
        return None;
    }
    Some(deep_equal(a, b))
}

/// Structural equality: numbers by f64 value, objects regardless of property order.
pub(crate) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Number(x), Value::Number(y)) => number_of(x) == number_of(y),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, value)| y.get(key).is_some_and(|other| deep_equal(value, other)))
        }
        _ => false,
    }
}

/// Feeds a value into a hasher consistently with [`deep_equal`].
fn hash_value(value: &Value, state: &mut impl Hasher) {
    match value {
        Value::Null => state.write_u8(1),
        Value::Bool(flag) => {
            state.write_u8(2);
            flag.hash(state);
        }
        Value::Number(number) => {
            state.write_u8(3);
            let float = number_of(number);
            // -0.0 equals 0.0, so both must hash alike.
            let float = if float == 0.0 { 0.0 } else { float };
            state.write_u64(float.to_bits());
        }
        Value::String(text) => {
            state.write_u8(4);
            text.hash(state);
        }
        Value::Array(items) => {
            state.write_u8(5);
            state.write_usize(items.len());
            for item in items {
                hash_value(item, state);
            }
        }
        Value::Object(map) => {
            state.write_u8(6);
            state.write_usize(map.len());
            // Property order does not matter for equality, so combine entry hashes commutatively.
            let mut combined: u64 = 0;
            for (key, item) in map {
                let mut entry = DefaultHasher::new();
                key.hash(&mut entry);
                hash_value(item, &mut entry);
                combined = combined.wrapping_add(entry.finish());
            }
            state.write_u64(combined);
        }
    }
}

/// A possibly undefined value usable as a hash-map key under deep equality (for `DISTINCT`,
/// `GROUP BY` and `IN`).
#[derive(Debug, Clone)]
pub(crate) struct ValueKey(pub(crate) Option<Value>);

impl PartialEq for ValueKey {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => deep_equal(a, b),
            _ => false,
        }
    }
}

impl Eq for ValueKey {}

impl Hash for ValueKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.0 {
            None => state.write_u8(0),
            Some(value) => hash_value(value, state),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cross_type_sort_order_puts_undefined_first_and_objects_last() {
        let values = [
            None,
            Some(json!(null)),
            Some(json!(false)),
            Some(json!(true)),
            Some(json!(-1)),
            Some(json!(2.5)),
            Some(json!("A")),
            Some(json!("a")),
            Some(json!([1])),
            Some(json!({"a": 1})),
        ];
        for pair in values.windows(2) {
            assert_eq!(
                sort_order(pair[0].as_ref(), pair[1].as_ref()),
                Ordering::Less,
                "{pair:?}"
            );
        }
    }

    #[test]
    fn equality_is_undefined_across_types_and_deep_within_a_type() {
        assert_eq!(equals(&json!(1), &json!("1")), None);
        assert_eq!(equals(&json!(1), &json!(1.0)), Some(true));
        assert_eq!(
            equals(
                &json!({"a": 1, "b": [1, 2]}),
                &json!({"b": [1, 2.0], "a": 1})
            ),
            Some(true)
        );
        assert_eq!(equals(&json!([1]), &json!(["1"])), Some(false));
    }

    #[test]
    fn relational_comparison_rejects_objects_and_mixed_types() {
        assert_eq!(compare_relational(&json!([1]), &json!([2])), None);
        assert_eq!(compare_relational(&json!(1), &json!("2")), None);
        assert_eq!(
            compare_relational(&json!("b"), &json!("a")),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn string_order_is_by_utf16_code_unit() {
        // U+FF5E sorts after U+1F600 in UTF-8 byte order but before it in UTF-16.
        assert_eq!(compare_strings("\u{1F600}", "\u{FF5E}"), Ordering::Less);
    }

    #[test]
    fn value_keys_hash_equal_values_alike() {
        use std::collections::HashSet;
        let mut set = HashSet::new();
        set.insert(ValueKey(Some(json!({"a": 1, "b": 2}))));
        assert!(set.contains(&ValueKey(Some(json!({"b": 2.0, "a": 1})))));
        assert!(!set.contains(&ValueKey(None)));
    }

    #[test]
    fn numbers_print_without_fraction_when_integral() {
        assert_eq!(number_value(3.0), Some(json!(3)));
        assert_eq!(number_value(-0.0), Some(json!(0)));
        assert_eq!(number_value(0.5), Some(json!(0.5)));
        assert_eq!(number_value(f64::INFINITY), None);
    }
}
