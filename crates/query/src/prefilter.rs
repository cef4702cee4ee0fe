//! A query's `WHERE` clause evaluated on the few properties of a stored item it reads, before
//! the item is parsed whole.
//!
//! A scan spends most of its time building a `serde_json::Value` of every item. When the query
//! has one source (`FROM c`, no `JOIN`, no `IN`) and its filter reads the document only through
//! top-level properties named in the text (`c.status`, `c.total.net`, `c["id"]`), an item the
//! filter rejects can be told apart from the JSON text: only those properties are parsed, the
//! rest is skipped without allocating. The filter sees an object holding exactly the
//! properties it reads, so it answers as it would on the whole item; an item that passes is
//! then parsed and run through the query as before. Any other shape of query gets no
//! prefilter.

use std::fmt;
use std::time::SystemTime;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};

use crate::ast::{Collection, Expr};
use crate::{Parameters, Query, QueryError};

/// The `WHERE` clause of a query, runnable on an item's JSON text.
#[derive(Debug, Clone)]
pub struct Prefilter<'q> {
    query: &'q Query,
    /// The top-level properties the filter reads, sorted.
    properties: Vec<String>,
}

impl Query {
    /// The query's prefilter, when its filter reads the document only through named
    /// top-level properties of its single `FROM` source; `None` otherwise (no `WHERE`,
    /// `JOIN`s, `FROM c IN ...`, subqueries, user-defined function calls, or the whole
    /// document used as a value).
    pub fn prefilter(&self) -> Option<Prefilter<'_>> {
        let ast = &self.ast;
        let [source] = ast.sources.as_slice() else {
            return None;
        };
        let Collection::Path { steps, .. } = &source.collection else {
            return None;
        };
        if source.iterate || !steps.is_empty() {
            return None;
        }
        let mut properties = Vec::new();
        if !read_properties(ast.filter.as_ref()?, &mut properties) {
            return None;
        }
        properties.sort();
        properties.dedup();
        Some(Prefilter {
            query: self,
            properties,
        })
    }
}

impl Prefilter<'_> {
    /// The top-level properties the filter reads.
    pub fn properties(&self) -> &[String] {
        &self.properties
    }

    /// Whether the item whose JSON text is `body` may pass the filter, with the clock at
    /// `now`: false only when it certainly does not. A `body` that is not a JSON object
    /// passes, for whoever parses it whole to report.
    ///
    /// # Errors
    /// The filter's own errors (a missing parameter).
    pub fn matches_text(
        &self,
        body: &str,
        parameters: &Parameters,
        now: SystemTime,
    ) -> Result<bool, QueryError> {
        let mut deserializer = serde_json::Deserializer::from_str(body);
        let partial = Properties(&self.properties)
            .deserialize(&mut deserializer)
            .and_then(|partial| deserializer.end().map(|()| partial));
        match partial {
            Ok(partial) => crate::matches_at(self.query, parameters, &Value::Object(partial), now),
            Err(_) => Ok(true),
        }
    }
}

/// Collects the top-level properties `expr` reads of the row's source into `properties`;
/// false when it reads the source otherwise (or anything this cannot follow).
fn read_properties(expr: &Expr, properties: &mut Vec<String>) -> bool {
    match expr {
        Expr::Property(inner, name) if is_source(inner) => {
            properties.push(name.clone());
            true
        }
        Expr::Index(inner, index) if is_source(inner) => match index.as_ref() {
            Expr::Literal(Value::String(name)) => {
                properties.push(name.clone());
                true
            }
            _ => false,
        },
        // A user-defined function runs on whole items only: its caller supplies it.
        Expr::Var { .. }
        | Expr::Ident { .. }
        | Expr::UserFunctionCall { .. }
        | Expr::Exists(_)
        | Expr::ArraySubquery(_)
        | Expr::Subquery(_) => false,
        other => other
            .children()
            .into_iter()
            .all(|child| read_properties(child, properties)),
    }
}

/// The row's only source: slot 0 of the current frame.
fn is_source(expr: &Expr) -> bool {
    matches!(expr, Expr::Var { depth: 0, slot: 0 })
}

/// Deserializes a JSON object keeping only the named properties.
struct Properties<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for Properties<'_> {
    type Value = Map<String, Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Properties<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut kept = Map::new();
        while let Some(wanted) = map.next_key_seed(Wanted(self.0))? {
            match wanted {
                Some(index) => {
                    let value = map.next_value::<Value>()?;
                    kept.insert(self.0[index].clone(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(kept)
    }
}

/// A key: the index of the property it names among the wanted ones, without allocating.
struct Wanted<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for Wanted<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Wanted<'_> {
    type Value = Option<usize>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a property name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|name| name == key))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::matches_at;

    fn properties(text: &str) -> Option<Vec<String>> {
        let query = Query::parse(text).expect("a query");
        query
            .prefilter()
            .map(|prefilter| prefilter.properties().to_vec())
    }

    #[test]
    fn a_filter_over_named_properties_has_a_prefilter() {
        assert_eq!(
            properties("SELECT * FROM c WHERE c.status = 'paid' AND c.total.net > 3"),
            Some(vec!["status".into(), "total".into()])
        );
        assert_eq!(
            properties("SELECT r.id FROM root r WHERE r[\"a b\"] = 1 OR STARTSWITH(r.id, 'x')"),
            Some(vec!["a b".into(), "id".into()])
        );
        assert_eq!(
            properties("SELECT * FROM c WHERE c.x IN (1, 2) AND NOT IS_DEFINED(c.y)"),
            Some(vec!["x".into(), "y".into()])
        );
    }

    #[test]
    fn other_queries_have_none() {
        for text in [
            "SELECT * FROM c",
            "SELECT * FROM c WHERE IS_DEFINED(c)",
            "SELECT * FROM c WHERE c = {}",
            "SELECT * FROM c WHERE c[@name] = 1",
            "SELECT c.id FROM c JOIN i IN c.items WHERE i.sku = 'a'",
            "SELECT * FROM i IN c.items WHERE i.sku = 'a'",
            "SELECT * FROM c.items i WHERE i.sku = 'a'",
            "SELECT * FROM c WHERE EXISTS(SELECT VALUE i FROM i IN c.items WHERE i.q > 1)",
            "SELECT * FROM c WHERE ARRAY_LENGTH(ARRAY(SELECT VALUE 1 FROM i IN c.items)) > 1",
        ] {
            assert_eq!(properties(text), None, "{text}");
        }
    }

    #[test]
    fn escaped_keys_are_matched_and_non_objects_passed_on() {
        let query = Query::parse("SELECT * FROM c WHERE c.status = 'paid'").expect("a query");
        let prefilter = query.prefilter().expect("a prefilter");
        let now = SystemTime::now();
        let params = Parameters::new();
        assert!(
            prefilter
                .matches_text(
                    r#"{"st\u0061tus": "paid", "x": [1, {"y": 2}]}"#,
                    &params,
                    now
                )
                .expect("an object")
        );
        assert!(
            !prefilter
                .matches_text(r#"{"status": "pending"}"#, &params, now)
                .expect("an object")
        );
        // Not objects: left to the whole parse to report.
        assert!(prefilter.matches_text("[1]", &params, now).expect("passes"));
        assert!(
            prefilter
                .matches_text(r#"{"status": "pending"} x"#, &params, now)
                .expect("passes")
        );
    }

    /// Filters whose prefilter must agree with the query run on the whole item.
    const FILTERS: &[&str] = &[
        "SELECT * FROM c WHERE c.a = 1",
        "SELECT * FROM c WHERE c.a > c.b",
        "SELECT * FROM c WHERE c.a.x = 'q' OR c.b[0] = 2",
        "SELECT * FROM c WHERE NOT IS_DEFINED(c.b)",
        "SELECT * FROM c WHERE c.a IN (1, 'q', null, true)",
        "SELECT * FROM c WHERE IS_STRING(c.a) AND STARTSWITH(c.a, 'q')",
        "SELECT * FROM c WHERE (c.a ?? c.b) = 2",
        "SELECT * FROM c WHERE ARRAY_CONTAINS(c.b, 2)",
        "SELECT * FROM c WHERE c.a BETWEEN 0 AND 5",
        "SELECT * FROM c WHERE c.b = @p",
    ];

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..8).prop_map(|n| json!(n)),
            prop_oneof![Just("q"), Just("qq"), Just("x")].prop_map(|s| json!(s)),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![Just("x".to_owned()), Just("y".to_owned())],
                    inner,
                    0..2
                )
                .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn document() -> impl Strategy<Value = Value> {
        prop::collection::btree_map(
            prop_oneof![
                Just("a".to_owned()),
                Just("b".to_owned()),
                Just("z".to_owned())
            ],
            value(),
            0..4,
        )
        .prop_map(|map| Value::Object(map.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn the_prefilter_agrees_with_the_whole_item(document in document(), p in value()) {
            let now = SystemTime::now();
            let params = Parameters::from_json(&json!([{"name": "@p", "value": p}]))
                .expect("parameters");
            let text = document.to_string();
            for filter in FILTERS {
                let query = Query::parse(filter).expect("a query");
                let prefilter = query.prefilter().expect("a prefilter");
                let whole = matches_at(&query, &params, &document, now).expect("runs");
                let partial = prefilter.matches_text(&text, &params, now).expect("runs");
                prop_assert_eq!(whole, partial, "{} on {}", filter, text);
            }
        }
    }
}
