//! The range index lookups a query's `WHERE` clause allows.
//!
//! A top-level `AND` term of the filter that compares a path of the document with a fixed
//! value (a literal or a parameter) holds only for documents with a matching scalar at that
//! path: `c.status = 'open'`, `c.n IN (1, 2)`, `c.n > 5` (with `c.n <= 9` on the same path,
//! one range), `c.n BETWEEN 1 AND 9`, `STARTSWITH(c.name, 'ab')`, `ARRAY_CONTAINS(c.tags,
//! 'x')`, `c.tags[0] = 'x'` (any element, as the index does not keep positions), or a bare
//! `c.active` (true). Each is a [`Lookup`]; reading the documents one of them selects and
//! running the whole query on those gives the query's answer, since no document outside the
//! lookup can pass the filter.

use std::ops::Bound;

use serde_json::Value;
use tributary_index::{IndexPath, Lookup, LookupKind, Scalar, Step};

use crate::ast::{BinaryOp, Collection, Expr};
use crate::functions::Function;
use crate::{Parameters, Query};

impl Query {
    /// Lookups of the range index each of which selects every document the `WHERE` clause
    /// can accept, most selective kind first (one value, several values, a closed range, a
    /// prefix, an open range). Empty when the query has no `WHERE` term a lookup can answer,
    /// or its `FROM` source is not the whole document.
    pub fn index_lookups(&self, parameters: &Parameters) -> Vec<Lookup> {
        let document_source = self.ast.sources.first().is_some_and(|source| {
            !source.iterate
                && matches!(&source.collection, Collection::Path { steps, .. } if steps.is_empty())
        });
        let terms: &[Expr] = match &self.ast.filter {
            Some(Expr::And(terms)) => terms,
            Some(filter) => std::slice::from_ref(filter),
            None => return Vec::new(),
        };
        if !document_source {
            return Vec::new();
        }
        let mut lookups: Vec<Lookup> = Vec::new();
        for lookup in terms
            .iter()
            .filter_map(|term| term_lookup(term, parameters))
        {
            merge_or_push(&mut lookups, lookup);
        }
        lookups.sort_by_key(rank);
        lookups
    }
}

impl Query {
    /// Whether reading `lookup` through the index visits documents in this query's order:
    /// its one `ORDER BY` item is ascending and is `lookup`'s path, a property path with no
    /// array element (one value per document), and `lookup` selects no strings (the index
    /// keeps only the start of long strings, so strings sharing it are not in value order).
    /// Each document read then sorts at or after every one before it, and a query that keeps
    /// its first `k` results can stop once `k` documents have passed its filter.
    pub fn ordered_by_index(&self, lookup: &Lookup) -> bool {
        let [item] = self.ast.order_by.as_slice() else {
            return false;
        };
        let is_string = |scalar: &Scalar| matches!(scalar, Scalar::String(_));
        let selects_strings = match &lookup.kind {
            LookupKind::Equal(values) => values.iter().any(is_string),
            LookupKind::Range { low, high } => [low, high].into_iter().any(|bound| match bound {
                Bound::Included(value) | Bound::Excluded(value) => is_string(value),
                Bound::Unbounded => false,
            }),
            LookupKind::Prefix(_) => true,
        };
        !item.descending
            && !selects_strings
            && !lookup.path.has_element()
            && document_path(&item.expr).as_ref() == Some(&lookup.path)
    }
}

/// Adds `lookup`, or narrows a range on the same path and of the same type with it: a lower
/// bound from one term and an upper bound from another make one closed range.
fn merge_or_push(lookups: &mut Vec<Lookup>, lookup: Lookup) {
    if let LookupKind::Range { low, high } = &lookup.kind {
        for existing in lookups.iter_mut().filter(|l| l.path == lookup.path) {
            if let LookupKind::Range {
                low: existing_low,
                high: existing_high,
            } = &existing.kind
            {
                let merged = match (existing_low, existing_high, low, high) {
                    (Bound::Unbounded, h, l, Bound::Unbounded)
                    | (l, Bound::Unbounded, Bound::Unbounded, h) => {
                        Lookup::range(lookup.path.clone(), l.clone(), h.clone())
                    }
                    _ => None,
                };
                if let Some(merged) = merged {
                    *existing = merged;
                    return;
                }
            }
        }
    }
    lookups.push(lookup);
}

/// Smaller is more selective.
fn rank(lookup: &Lookup) -> u8 {
    match &lookup.kind {
        LookupKind::Equal(values) if values.len() == 1 => 0,
        LookupKind::Equal(_) => 1,
        LookupKind::Range {
            low: Bound::Unbounded,
            ..
        }
        | LookupKind::Range {
            high: Bound::Unbounded,
            ..
        } => 4,
        LookupKind::Range { .. } => 2,
        LookupKind::Prefix(_) => 3,
    }
}

/// The lookup one `AND` term allows, if any.
fn term_lookup(term: &Expr, parameters: &Parameters) -> Option<Lookup> {
    let fixed = |expr: &Expr| fixed_scalar(expr, parameters);
    let is_false = |expr: Option<&Expr>| match expr {
        None => true,
        Some(expr) => matches!(expr, Expr::Literal(Value::Bool(false))),
    };
    match term {
        Expr::Binary(op, left, right) => {
            let (path, value, op) = match (document_path(left), document_path(right)) {
                (Some(path), None) => (path, fixed(right)?, *op),
                (None, Some(path)) => (path, fixed(left)?, flipped(*op)?),
                _ => return None,
            };
            match op {
                BinaryOp::Eq => Some(Lookup {
                    path,
                    kind: LookupKind::Equal(vec![value]),
                }),
                BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge
                    if !path.has_element() =>
                {
                    let (low, high) = match op {
                        BinaryOp::Lt => (Bound::Unbounded, Bound::Excluded(value)),
                        BinaryOp::Le => (Bound::Unbounded, Bound::Included(value)),
                        BinaryOp::Gt => (Bound::Excluded(value), Bound::Unbounded),
                        _ => (Bound::Included(value), Bound::Unbounded),
                    };
                    Lookup::range(path, low, high)
                }
                _ => None,
            }
        }
        Expr::In {
            value,
            list,
            negated: false,
        } => {
            let path = document_path(value)?;
            let values = list.iter().map(fixed).collect::<Option<Vec<_>>>()?;
            if values.is_empty() || (path.has_element() && values.len() > 1) {
                return None;
            }
            Some(Lookup {
                path,
                kind: LookupKind::Equal(values),
            })
        }
        Expr::Between {
            value,
            low,
            high,
            negated: false,
        } => {
            let path = document_path(value).filter(|path| !path.has_element())?;
            Lookup::range(
                path,
                Bound::Included(fixed(low)?),
                Bound::Included(fixed(high)?),
            )
        }
        Expr::Call {
            function: Function::StartsWith,
            args,
        } if is_false(args.get(2)) => {
            let path = document_path(args.first()?).filter(|path| !path.has_element())?;
            match fixed(args.get(1)?)? {
                Scalar::String(prefix) => Some(Lookup {
                    path,
                    kind: LookupKind::Prefix(prefix),
                }),
                _ => None,
            }
        }
        Expr::Call {
            function: Function::ArrayContains,
            args,
        } if is_false(args.get(2)) => {
            let IndexPath(mut steps) = document_path(args.first()?)?;
            steps.push(Step::Element);
            Some(Lookup {
                path: IndexPath(steps),
                kind: LookupKind::Equal(vec![fixed(args.get(1)?)?]),
            })
        }
        bare => Some(Lookup {
            path: document_path(bare)?,
            kind: LookupKind::Equal(vec![Scalar::Bool(true)]),
        }),
    }
}

/// The comparison `value op path` written as `path op' value`.
fn flipped(op: BinaryOp) -> Option<BinaryOp> {
    Some(match op {
        BinaryOp::Eq => BinaryOp::Eq,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        _ => return None,
    })
}

/// The path of a document property an expression reads (`c.a.b`, `c["a"]`, `c.a[0]`, the
/// last as any element); `None` for anything else, or the document itself.
fn document_path(expr: &Expr) -> Option<IndexPath> {
    let mut steps = Vec::new();
    let mut current = expr;
    loop {
        match current {
            Expr::Var { depth: 0, slot: 0 } => break,
            Expr::Property(parent, name) => {
                steps.push(Step::Property(name.clone()));
                current = parent;
            }
            Expr::Index(parent, index) => {
                match index.as_ref() {
                    Expr::Literal(Value::String(name)) => steps.push(Step::Property(name.clone())),
                    Expr::Literal(Value::Number(n)) if n.is_u64() => steps.push(Step::Element),
                    _ => return None,
                }
                current = parent;
            }
            _ => return None,
        }
    }
    if steps.is_empty() {
        return None;
    }
    steps.reverse();
    Some(IndexPath(steps))
}

/// The scalar a literal or bound parameter is; `None` for anything else (an unbound or
/// undefined parameter, an array or object).
fn fixed_scalar(expr: &Expr, parameters: &Parameters) -> Option<Scalar> {
    match expr {
        Expr::Literal(value) => Scalar::from_json(value),
        Expr::Parameter(name) => Scalar::from_json(parameters.get(name).flatten()?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lookups(text: &str) -> Vec<String> {
        let mut parameters = Parameters::new();
        parameters.insert("@n", json!(5));
        parameters.insert("@o", json!({"x": 1}));
        Query::parse(text)
            .unwrap()
            .index_lookups(&parameters)
            .iter()
            .map(|lookup| format!("{} {:?}", lookup.index_spec(), lookup.kind))
            .collect()
    }

    #[test]
    fn comparisons_with_fixed_values_become_lookups() {
        assert_eq!(
            lookups("SELECT * FROM c WHERE c.a.b = 'x' AND 3 < c.n"),
            [
                "/a/b/? Equal([String(\"x\")])",
                "/n/? Range { low: Excluded(Number(3.0)), high: Unbounded }"
            ]
        );
        assert_eq!(
            lookups("SELECT * FROM c WHERE c.n >= @n AND c.n < 9 AND c.m IN (1, 'a')"),
            [
                "/m/? Equal([Number(1.0), String(\"a\")])",
                "/n/? Range { low: Included(Number(5.0)), high: Excluded(Number(9.0)) }"
            ]
        );
        assert_eq!(
            lookups(
                "SELECT * FROM c WHERE STARTSWITH(c.name, 'ab') AND ARRAY_CONTAINS(c.tags, 2) AND c.ok"
            ),
            [
                "/tags/[]/? Equal([Number(2.0)])",
                "/ok/? Equal([Bool(true)])",
                "/name/? Prefix(\"ab\")"
            ]
        );
        assert_eq!(
            lookups("SELECT * FROM c WHERE c.t[0] = 1 AND c['x y'] BETWEEN 'a' AND 'b'"),
            [
                "/t/[]/? Equal([Number(1.0)])",
                "/\"x y\"/? Range { low: Included(String(\"a\")), high: Included(String(\"b\")) }"
            ]
        );
    }

    #[test]
    fn terms_no_lookup_can_answer_are_left_to_the_filter() {
        for query in [
            "SELECT * FROM c",
            "SELECT * FROM c WHERE c.a = 1 OR c.b = 2",
            "SELECT * FROM c WHERE c.a != 1",
            "SELECT * FROM c WHERE c.a = c.b",
            "SELECT * FROM c WHERE c.a = @o",
            "SELECT * FROM c WHERE c.a = @missing",
            "SELECT * FROM c WHERE STARTSWITH(c.a, 'x', true)",
            "SELECT * FROM c WHERE ARRAY_CONTAINS(c.a, {'x': 1}, true)",
            "SELECT * FROM c WHERE c.t[0] > 1",
            "SELECT * FROM c WHERE c.t[0] IN (1, 2)",
            "SELECT * FROM c WHERE c.a > null",
            "SELECT * FROM c WHERE NOT c.a",
            "SELECT * FROM t IN c.tags WHERE t = 1",
            "SELECT * FROM c.inner x WHERE x.a = 1",
        ] {
            assert!(lookups(query).is_empty(), "{query}: {:?}", lookups(query));
        }
    }

    #[test]
    fn a_join_keeps_the_lookups_on_the_document() {
        assert_eq!(
            lookups("SELECT t FROM c JOIN t IN c.tags WHERE c.kind = 'a' AND t = 1"),
            ["/kind/? Equal([String(\"a\")])"]
        );
    }

    /// A scalar of the kinds the filters below compare: numbers, and strings over characters
    /// that order differently in UTF-8 and UTF-16 (U+E000 and up against surrogate pairs).
    fn any_scalar() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let text = proptest::collection::vec(
            prop_oneof![
                Just('a'),
                Just('b'),
                Just('\u{0}'),
                Just('\u{e9}'),
                Just('\u{E000}'),
                Just('\u{FF21}'),
                Just('\u{1F600}'),
            ],
            0..4,
        )
        .prop_map(|chars| Value::from(chars.into_iter().collect::<String>()));
        prop_oneof![
            text,
            (-3i64..4).prop_map(Value::from),
            Just(json!(0.5)),
            Just(Value::Null),
            Just(Value::Bool(true)),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(8192))]

        /// Every document a filter accepts has its value's index term inside the ranges of
        /// the filter's lookup: reading through the index misses nothing a scan finds.
        #[test]
        fn a_lookup_reads_every_document_its_filter_accepts(
            value in any_scalar(),
            bound in any_scalar(),
            other in any_scalar(),
            filter in 0usize..8,
        ) {
            let filter = [
                "c.v = @b",
                "c.v < @b",
                "c.v <= @b",
                "c.v > @b",
                "c.v >= @b",
                "c.v BETWEEN @b AND @o",
                "c.v IN (@b, @o)",
                "STARTSWITH(c.v, @b)",
            ][filter];
            let mut parameters = Parameters::new();
            parameters.insert("@b", bound);
            parameters.insert("@o", other);
            let query = Query::parse(&format!("SELECT * FROM c WHERE {filter}")).unwrap();
            let document = json!({"id": "x", "v": value});
            let accepted = crate::matches(&query, &parameters, &document).unwrap();
            let lookups = query.index_lookups(&parameters);
            if !accepted || lookups.is_empty() {
                return Ok(());
            }
            let policy = tributary_index::IndexingPolicy::default();
            let scalar = Scalar::from_json(&value).unwrap();
            let term = policy.term(&lookups[0].path, &scalar).unwrap();
            // Keys are the term and then which item: the lowest and a high such suffix.
            let keys = [[term.as_slice(), &[0]].concat(), [term.as_slice(), &[0xFF; 12]].concat()];
            let ranges = lookups[0].term_ranges();
            for key in keys {
                proptest::prop_assert!(
                    ranges.iter().any(|(start, end)| *start <= key && key < *end),
                    "{filter} accepts {value} but its lookup {:?} misses it",
                    lookups[0]
                );
            }
        }
    }

    #[test]
    fn an_ascending_order_by_on_a_numeric_lookups_path_is_read_in_order() {
        let ordered = |text: &str| {
            let query = Query::parse(text).unwrap();
            let lookups = query.index_lookups(&Parameters::new());
            query.ordered_by_index(&lookups[0])
        };
        assert!(ordered("SELECT TOP 5 * FROM c WHERE c.n > 3 ORDER BY c.n"));
        assert!(ordered(
            "SELECT TOP 5 * FROM c WHERE c.a.n IN (1, 2) ORDER BY c.a.n ASC"
        ));
        assert!(!ordered(
            "SELECT TOP 5 * FROM c WHERE c.n > 3 ORDER BY c.n DESC"
        ));
        assert!(!ordered("SELECT TOP 5 * FROM c WHERE c.n > 3 ORDER BY c.m"));
        assert!(!ordered(
            "SELECT TOP 5 * FROM c WHERE c.n > 3 ORDER BY c.n, c.m"
        ));
        assert!(!ordered(
            "SELECT TOP 5 * FROM c WHERE c.s > 'a' ORDER BY c.s"
        ));
        assert!(!ordered(
            "SELECT TOP 5 * FROM c WHERE c.t[0] = 1 ORDER BY c.t[0]"
        ));
    }
}
