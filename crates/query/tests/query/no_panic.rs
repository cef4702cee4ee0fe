//! Property tests: no input makes the parser or evaluator panic.

use proptest::prelude::*;
use serde_json::json;
use tributary_query::{Parameters, Query, execute};

/// Fragments that make random token soups likely to get deep into the grammar.
const FRAGMENTS: &[&str] = &[
    "SELECT",
    "VALUE",
    "DISTINCT",
    "TOP",
    "*",
    "FROM",
    "c",
    "root",
    "IN",
    "JOIN",
    "t",
    "WHERE",
    "ORDER",
    "BY",
    "DESC",
    "GROUP",
    "OFFSET",
    "LIMIT",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "LIKE",
    "ESCAPE",
    "EXISTS",
    "ARRAY",
    "AS",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    ":",
    "?",
    "??",
    "=",
    "!=",
    "<",
    ">=",
    "+",
    "-",
    "/",
    "%",
    "||",
    "|",
    "&",
    "^",
    "~",
    "<<",
    ">>>",
    "1",
    "0",
    "-2.5e3",
    "'s'",
    "\"d\"",
    "'%_'",
    "true",
    "null",
    "undefined",
    "@p",
    "c.a",
    "c.tags",
    "c[\"a\"]",
    "c.a[0]",
    "COUNT(1)",
    "SUM(c.a)",
    "MAX(",
    "LOWER(",
    "CONCAT(",
    "ARRAY_SLICE(",
    "IS_DEFINED(",
    "udf.",
    "value",
    "order",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..40).prop_map(|parts| parts.join(" "))
}

fn documents() -> Vec<serde_json::Value> {
    vec![
        json!({"a": 1, "tags": ["x", "y"], "s": "text"}),
        json!({"a": "1", "tags": [], "nested": {"a": [1, {"b": null}]}}),
        json!({"a": null}),
        json!({}),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = Query::parse(&text);
        let _ = Query::parse_condition(&text);
    }

    #[test]
    fn token_soups_never_panic_when_parsed_or_run(text in token_soup()) {
        let mut parameters = Parameters::new();
        parameters.insert("@p", json!(2));
        for query in [Query::parse(&text), Query::parse_condition(&text)].into_iter().flatten() {
            let _ = execute(&query, &parameters, &documents());
        }
    }

    #[test]
    fn prefixed_soups_never_panic(tail in token_soup()) {
        let text = format!("SELECT VALUE {tail}");
        if let Ok(query) = Query::parse(&text) {
            let mut parameters = Parameters::new();
            parameters.insert("@p", json!("x"));
            let _ = execute(&query, &parameters, &documents());
        }
    }
}
