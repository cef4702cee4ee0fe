//! Errors: syntax with positions, binding, unknown functions and parameters, limits.

use serde_json::json;
use tributary_query::{
    MAX_COMPUTED_STRING_BYTES, MAX_NESTING_DEPTH, MAX_QUERY_TEXT_BYTES, Parameters, Query,
    QueryError, execute,
};

fn parse_error(text: &str) -> QueryError {
    match Query::parse(text) {
        Ok(query) => panic!("{text} parsed as {query:?}"),
        Err(error) => error,
    }
}

#[test]
fn syntax_errors_name_the_token_and_its_position() {
    let table = [
        (
            "SELECT * FROM c WHERE",
            21,
            "Syntax error, unexpected end of query.",
        ),
        (
            "SELECT * FORM c",
            9,
            "Syntax error, incorrect syntax near 'FORM'.",
        ),
        (
            "SELECT c.a FROM c WHERE c.a = = 1",
            30,
            "Syntax error, incorrect syntax near '='.",
        ),
        (
            "SELECT VALUE FROM c",
            13,
            "Syntax error, incorrect syntax near 'FROM'.",
        ),
        (
            "SELECT TOP -1 * FROM c",
            11,
            "Syntax error, incorrect syntax near '-'.",
        ),
        (
            "SELECT TOP 1.5 * FROM c",
            11,
            "Syntax error, incorrect syntax near '1.5'.",
        ),
        (
            "SELECT * FROM c OFFSET 1",
            24,
            "Syntax error, unexpected end of query.",
        ),
        (
            "SELECT 'abc FROM c",
            7,
            "Syntax error, unterminated string literal.",
        ),
        (
            "SELECT * FROM c WHERE c.a # 1",
            26,
            "Syntax error, incorrect syntax near '#'.",
        ),
        (
            "SELECT select FROM c",
            7,
            "Syntax error, incorrect syntax near 'select'.",
        ),
    ];
    for (text, position, message) in table {
        assert_eq!(
            parse_error(text),
            QueryError::Syntax {
                position,
                message: message.to_owned()
            },
            "{text}"
        );
    }
}

#[test]
fn vector_full_text_and_date_format_functions_say_they_are_not_supported() {
    for (text, kind) in [
        (
            "SELECT VALUE VectorDistance(c.v, [1, 2]) FROM c",
            "vector search",
        ),
        (
            "SELECT * FROM c WHERE FullTextContains(c.t, 'bike')",
            "full-text search",
        ),
        (
            "SELECT * FROM c WHERE FullTextContainsAll(c.t, 'a', 'b')",
            "full-text search",
        ),
        (
            "SELECT * FROM c WHERE FullTextContainsAny(c.t, 'a', 'b')",
            "full-text search",
        ),
        (
            "SELECT VALUE FullTextScore(c.t, 'bike') FROM c",
            "full-text search",
        ),
        ("SELECT VALUE RRF(c.a, c.b) FROM c", "hybrid search"),
        (
            "SELECT TOP 10 * FROM c ORDER BY RANK FullTextScore(c.t, 'bike')",
            "full-text or hybrid search",
        ),
        (
            "SELECT VALUE DateTimeFormat(c.when, 'yyyyMMdd') FROM c",
            "date formatting",
        ),
    ] {
        let message = Query::parse(text).expect_err(text).to_string();
        assert!(message.contains(kind), "{text}: {message}");
        assert!(message.contains("does not support"), "{text}: {message}");
    }
}

#[test]
fn unknown_functions_and_wrong_arity_are_named() {
    assert_eq!(
        parse_error("SELECT VALUE NO_SUCH(c.a) FROM c"),
        QueryError::UnknownFunction("NO_SUCH".to_owned())
    );
    assert_eq!(
        parse_error("SELECT VALUE LOWER('a', 'b')"),
        QueryError::WrongArgumentCount {
            function: "LOWER".to_owned(),
            expected: "1".to_owned(),
            found: 2
        }
    );
    let message = parse_error("SELECT VALUE CONTAINS('a')").to_string();
    assert!(message.contains("2 or 3"), "{message}");
}

#[test]
fn identifiers_must_name_an_alias_in_scope() {
    assert_eq!(
        parse_error("SELECT id FROM c"),
        QueryError::UnresolvedIdentifier {
            name: "id".to_owned(),
            position: 7
        }
    );
    assert!(matches!(
        parse_error("SELECT products.id FROM products p"),
        QueryError::UnresolvedIdentifier { .. }
    ));
    assert!(matches!(
        parse_error("SELECT VALUE x FROM c JOIN t IN x.tags"),
        QueryError::UnresolvedIdentifier { .. }
    ));
    assert!(matches!(
        parse_error("SELECT VALUE 1 FROM c WHERE EXISTS(SELECT VALUE 1 FROM root r)"),
        QueryError::UnresolvedIdentifier { .. }
    ));
}

#[test]
fn language_rules_are_enforced_at_parse_time() {
    let table = [
        "SELECT * FROM c JOIN t IN c.tags",
        "SELECT *",
        "SELECT * FROM c WHERE COUNT(1) > 1",
        "SELECT VALUE COUNT(MAX(c.a)) FROM c",
        "SELECT c.a, COUNT(1) FROM c",
        "SELECT c.b, COUNT(1) FROM c GROUP BY c.a",
        "SELECT c.a FROM c GROUP BY c.a ORDER BY c.a",
        "SELECT * FROM c JOIN c IN c.tags",
        "SELECT c.a, c.b.a FROM c",
        "SELECT VALUE {a: 1, a: 2}",
        "SELECT * FROM c GROUP BY COUNT(1)",
    ];
    for text in table {
        assert!(
            matches!(parse_error(text), QueryError::Invalid(_)),
            "{text} should be invalid"
        );
    }
}

#[test]
fn unbound_parameters_fail_before_reading_documents() {
    let query = Query::parse("SELECT * FROM c WHERE c.a = @a").unwrap();
    let documents: [serde_json::Value; 0] = [];
    assert_eq!(
        execute(&query, &Parameters::new(), &documents),
        Err(QueryError::UnknownParameter("@a".to_owned()))
    );
}

#[test]
fn count_parameters_must_be_non_negative_integers() {
    let query = Query::parse("SELECT TOP @n * FROM c").unwrap();
    for bad in [json!(-1), json!(1.5), json!("3"), json!(null)] {
        let mut parameters = Parameters::new();
        parameters.insert("@n", bad.clone());
        assert!(
            matches!(
                execute(&query, &parameters, &[json!({})]),
                Err(QueryError::InvalidCount { clause: "TOP", .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn malformed_parameter_lists_are_rejected() {
    for bad in [
        json!({"name": "@a"}),
        json!([{"value": 1}]),
        json!([{"name": "a", "value": 1}]),
        json!([{"name": "@a", "value": 1}, {"name": "@a", "value": 2}]),
    ] {
        assert!(
            matches!(
                Parameters::from_json(&bad),
                Err(QueryError::InvalidParameters(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn scalar_subqueries_may_return_at_most_one_value() {
    let query = Query::parse("SELECT VALUE (SELECT VALUE t FROM t IN c.tags) FROM c").unwrap();
    assert_eq!(
        execute(&query, &Parameters::new(), &[json!({"tags": [1, 2]})]),
        Err(QueryError::SubqueryCardinality { n_values: 2 })
    );
}

#[test]
fn invalid_regular_expressions_are_errors() {
    let query = Query::parse("SELECT VALUE RegexMatch(c.s, '(') FROM c").unwrap();
    assert!(matches!(
        execute(&query, &Parameters::new(), &[json!({"s": "x"})]),
        Err(QueryError::InvalidRegex { .. })
    ));
}

#[test]
fn limits_reject_oversized_and_deeply_nested_queries() {
    let long = format!(
        "SELECT * FROM c WHERE c.a = '{}'",
        "x".repeat(MAX_QUERY_TEXT_BYTES)
    );
    assert!(matches!(
        Query::parse(&long),
        Err(QueryError::QueryTooLong { .. })
    ));
    let deep = format!(
        "SELECT VALUE {}1{}",
        "(".repeat(MAX_NESTING_DEPTH * 2),
        ")".repeat(MAX_NESTING_DEPTH * 2)
    );
    assert!(matches!(
        Query::parse(&deep),
        Err(QueryError::NestingTooDeep { .. })
    ));
    let deep_not = format!("SELECT VALUE {}true", "NOT ".repeat(10_000));
    assert!(matches!(
        Query::parse(&deep_not),
        Err(QueryError::NestingTooDeep { .. })
    ));
    let shallow = format!("SELECT VALUE {}1{}", "(".repeat(20), ")".repeat(20));
    assert!(Query::parse(&shallow).is_ok());
}

#[test]
fn long_and_or_chains_are_flat_but_long_arithmetic_chains_count_as_nesting() {
    let conditions: Vec<String> = (0..2000).map(|i| format!("c.a != {i}")).collect();
    let text = format!("SELECT VALUE c.a FROM c WHERE {}", conditions.join(" AND "));
    let query = Query::parse(&text).unwrap();
    let rows = execute(
        &query,
        &Parameters::new(),
        &[json!({"a": -1}), json!({"a": 5})],
    )
    .unwrap();
    assert_eq!(rows, [json!(-1)]);

    let either: Vec<String> = (0..2000).map(|i| format!("c.a = {i}")).collect();
    let text = format!("SELECT VALUE c.a FROM c WHERE {}", either.join(" OR "));
    let query = Query::parse(&text).unwrap();
    let rows = execute(
        &query,
        &Parameters::new(),
        &[json!({"a": -1}), json!({"a": 5})],
    )
    .unwrap();
    assert_eq!(rows, [json!(5)]);

    let sum = format!("SELECT VALUE {}", vec!["1"; 10_000].join(" + "));
    assert!(matches!(
        Query::parse(&sum),
        Err(QueryError::NestingTooDeep { .. })
    ));
}

/// The deepest query each shape allows, found by growing it until the parser refuses.
fn deepest_accepted(build: impl Fn(usize) -> String) -> String {
    let mut deepest = None;
    for depth in 1..=MAX_NESTING_DEPTH * 4 {
        let text = build(depth);
        if Query::parse(&text).is_err() {
            break;
        }
        deepest = Some(text);
    }
    deepest.expect("depth 1 must parse")
}

#[test]
fn the_deepest_accepted_queries_run_on_a_small_stack() {
    let shapes: Vec<String> = vec![
        deepest_accepted(|n| format!("SELECT VALUE {}c.a{} FROM c", "(".repeat(n), ")".repeat(n))),
        deepest_accepted(|n| format!("SELECT VALUE {}1{} FROM c", "[".repeat(n), "]".repeat(n))),
        deepest_accepted(|n| format!("SELECT VALUE {}c.a FROM c", "- ".repeat(n))),
        deepest_accepted(|n| format!("SELECT VALUE {} FROM c", vec!["c.a"; n].join(" + "))),
        deepest_accepted(|n| {
            format!(
                "SELECT VALUE {}1{} FROM c",
                "ARRAY(SELECT VALUE ".repeat(n),
                ")".repeat(n)
            )
        }),
        deepest_accepted(|n| format!("SELECT VALUE {}true FROM c", "NOT ".repeat(n))),
    ];
    let worker = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            for text in &shapes {
                let query = Query::parse(text).unwrap();
                execute(&query, &Parameters::new(), &[json!({"a": 1})]).unwrap();
            }
        })
        .unwrap();
    worker
        .join()
        .expect("evaluation overflowed a 256 KiB stack");
}

#[test]
fn joins_and_subqueries_share_one_row_budget_per_document() {
    // 8^7 = 2,097,152 rows from joins alone.
    let joins = "SELECT VALUE 1 FROM c JOIN a IN c.x JOIN b IN c.x JOIN d IN c.x JOIN e IN c.x \
                 JOIN f IN c.x JOIN g IN c.x JOIN h IN c.x";
    // 8^4 rows, each running a subquery of 8^3 rows: the same product, split across levels.
    let nested = "SELECT VALUE 1 FROM c JOIN a IN c.x JOIN b IN c.x JOIN d IN c.x JOIN h IN c.x \
                  WHERE EXISTS(SELECT VALUE 1 FROM e IN c.x JOIN f IN c.x JOIN g IN c.x WHERE g < 0)";
    let document = json!({"x": [0, 1, 2, 3, 4, 5, 6, 7]});
    for text in [joins, nested] {
        let query = Query::parse(text).unwrap();
        assert!(
            matches!(
                execute(&query, &Parameters::new(), std::slice::from_ref(&document)),
                Err(QueryError::TooManyJoinRows { .. })
            ),
            "{text}"
        );
    }
    // The budget is per document: many small documents are fine.
    let query = Query::parse("SELECT VALUE COUNT(1) FROM c JOIN a IN c.x JOIN b IN c.x").unwrap();
    let documents = vec![document; 20_000];
    assert_eq!(
        execute(&query, &Parameters::new(), &documents).unwrap(),
        [json!(1_280_000)]
    );
}

#[test]
fn string_building_is_capped() {
    let query = Query::parse(
        "SELECT VALUE [LENGTH(c.s || c.s), LENGTH(CONCAT(c.s, c.s, c.s)), \
         LENGTH(REPLACE(c.s, 'a', c.s))] FROM c",
    )
    .unwrap();
    let small = json!({"s": "ab"});
    assert_eq!(
        execute(&query, &Parameters::new(), &[small]).unwrap(),
        [json!([4, 6, 3])]
    );
    let big = json!({"s": "a".repeat(MAX_COMPUTED_STRING_BYTES / 2 + 1)});
    assert_eq!(
        execute(&query, &Parameters::new(), &[big]).unwrap(),
        [json!([])]
    );
}
