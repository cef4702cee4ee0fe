//! Property tests: no input makes the parser or evaluator panic.

use proptest::prelude::*;
use serde_json::json;
use tributary_query::{Parameters, Query, QueryError, execute};

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

/// Valid queries that between them use every clause and most expression forms: the seeds the
/// edits below start from.
const SEEDS: &[&str] = &[
    "SELECT * FROM c",
    "SELECT * FROM root r WHERE r.id = @p",
    "SELECT DISTINCT VALUE t FROM c JOIN t IN c.tags",
    "SELECT TOP 3 c.a, c.s AS text FROM c WHERE c.a > 0 ORDER BY c.a DESC",
    "SELECT VALUE COUNT(1) FROM c WHERE c.a BETWEEN 1 AND 5",
    "SELECT c.s, COUNT(1) AS n, SUM(c.a) AS total FROM c GROUP BY c.s",
    "SELECT VALUE c.id FROM c ORDER BY c.id OFFSET 1 LIMIT 2",
    "SELECT * FROM c WHERE c.s LIKE 'te%' ESCAPE '!' OR NOT IS_DEFINED(c.tags)",
    "SELECT VALUE {\"a\": c.a, \"b\": [c.a, -2.5e3, null, true], \"c\": c[\"nested\"].a[0]} FROM c",
    "SELECT VALUE ARRAY(SELECT VALUE t FROM t IN c.tags WHERE t != 'x') FROM c",
    "SELECT * FROM c WHERE EXISTS(SELECT VALUE t FROM t IN c.tags WHERE t = 'y')",
    "SELECT VALUE (c.a ?? 0) * 2 + (c.a % 3) - ~c.a | 1 & 7 ^ 2 << 1 >> 1 >>> 1 FROM c",
    "SELECT VALUE CONCAT(LOWER(c.s), UPPER('x'), SUBSTRING(c.s, 0, 2)) || 'z' FROM c",
    "SELECT VALUE c.a > 1 ? 'big' : 'small' FROM c",
    "SELECT * FROM c WHERE c.a IN (1, 2, @p) AND ARRAY_CONTAINS(c.tags, 'x')",
    "SELECT VALUE ARRAY_SLICE(c.tags, 1, 1) FROM c",
    "SELECT c.id FROM c WHERE STARTSWITH(c.s, 'te', true) AND LENGTH(c.s) >= 2",
    "SELECT VALUE MAX(c.a) FROM c",
    "FROM c WHERE c.a = 1",
    "SELECT VALUE DateTimeAdd('hh', 1, '2025-07-01T12:00:00.0000000Z') FROM c",
];

fn parameters() -> Parameters {
    let mut parameters = Parameters::new();
    parameters.insert("@p", json!(1));
    parameters
}

/// The byte position an error names, if it names one.
fn position(error: &QueryError) -> Option<usize> {
    match error {
        QueryError::Syntax { position, .. }
        | QueryError::NestingTooDeep { position, .. }
        | QueryError::UnresolvedIdentifier { position, .. } => Some(*position),
        _ => None,
    }
}

#[test]
fn every_seed_parses_and_runs() {
    for seed in SEEDS {
        let query = Query::parse_condition(seed).unwrap_or_else(|e| panic!("{seed}: {e}"));
        execute(&query, &parameters(), &documents()).unwrap_or_else(|e| panic!("{seed}: {e}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Valid queries with bytes changed, cut, repeated, inserted or spliced in from another
    /// seed: parsing gives a query that runs without panicking, or an error whose position
    /// lies inside the text.
    #[test]
    fn edited_queries_parse_and_run_or_fail_at_a_position_inside_them(
        seed in any::<usize>(),
        edits in tributary_mutate::edits(),
    ) {
        let text = tributary_mutate::apply_to_text(SEEDS[seed % SEEDS.len()], &edits, SEEDS);
        for parsed in [Query::parse(&text), Query::parse_condition(&text), Query::parse_filter(&text)] {
            match parsed {
                Ok(query) => {
                    let _ = execute(&query, &parameters(), &documents());
                }
                Err(error) => {
                    if let Some(at) = position(&error) {
                        prop_assert!(at <= text.len(), "{} in {:?}", error, text);
                    }
                }
            }
        }
    }

    /// Whitespace after the last token changes nothing: the same query, or an error again.
    #[test]
    fn trailing_whitespace_does_not_change_the_parse(
        seed in any::<usize>(),
        edits in tributary_mutate::edits(),
    ) {
        let text = tributary_mutate::apply_to_text(SEEDS[seed % SEEDS.len()], &edits, SEEDS);
        prop_assert_eq!(Query::parse(&text).ok(), Query::parse(&format!("{text} \n")).ok());
    }
}
