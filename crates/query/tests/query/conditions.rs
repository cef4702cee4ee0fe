//! `Query::parse_condition` and `matches`, as the store uses them for patch conditions, and
//! `Query::parse_filter`, as change feed filters use it.

use serde_json::json;
use tributary_query::{Parameters, Query, QueryError, execute, matches};

#[test]
fn patch_conditions_filter_single_documents() {
    let document = json!({"id": "1", "stock": 3, "tags": ["sale", "new"], "used": false});
    let table = [
        ("FROM c WHERE c.stock > 0", true),
        ("from products p where p.used = false", true),
        ("FROM c WHERE c.stock > 5", false),
        ("FROM c WHERE c.missing = 1", false),
        ("FROM c WHERE NOT IS_DEFINED(c.missing)", true),
        ("FROM c", true),
        ("FROM c JOIN t IN c.tags WHERE t = 'new'", true),
        ("FROM c JOIN t IN c.tags WHERE t = 'old'", false),
        ("FROM t IN c.tags WHERE t = 'sale'", true),
        ("SELECT * FROM c WHERE c.id = '1'", true),
        ("SELECT VALUE COUNT(1) FROM c WHERE c.id = '2'", false),
    ];
    for (text, expected) in table {
        let query = Query::parse_condition(text).unwrap();
        assert_eq!(
            matches(&query, &Parameters::new(), &document).unwrap(),
            expected,
            "{text}"
        );
    }
}

#[test]
fn feed_filters_are_bare_conditions_a_where_clause_or_a_from_clause() {
    let document = json!({"id": "1", "status": "shipped", "lines": [{"sku": "a"}]});
    let table = [
        ("c.status = 'shipped'", true),
        ("  c.status = 'new'", false),
        ("WHERE c.status = 'shipped'", true),
        ("where c.status = 'new'", false),
        ("FROM c WHERE c.id = '1'", true),
        ("FROM o WHERE o.id = '2'", false),
        ("FROM c JOIN l IN c.lines WHERE l.sku = 'a'", true),
        ("SELECT * FROM c WHERE c.status = 'shipped'", true),
    ];
    for (text, expected) in table {
        let filter = Query::parse_filter(text).unwrap();
        assert_eq!(
            matches(&filter, &Parameters::new(), &document).unwrap(),
            expected,
            "{text}"
        );
    }
}

#[test]
fn a_feed_filter_that_does_not_parse_or_uses_a_parameter_is_refused() {
    for text in ["c.status =", "", "WHERE", "c.status = 'a' ORDER"] {
        assert!(
            matches!(Query::parse_filter(text), Err(QueryError::Syntax { .. })),
            "{text}"
        );
    }
    let error = Query::parse_filter("c.status = @status").unwrap_err();
    assert!(matches!(error, QueryError::Invalid(_)), "{error}");
    assert!(error.to_string().contains("@status"), "{error}");
}

// Regression (found by the edited-query property test): the filter is completed to
// `FROM c WHERE <filter>` before parsing, and errors used to give positions in that text, so an
// empty filter failed "at byte 13".
#[test]
fn a_feed_filter_error_gives_a_position_in_the_filter_as_written() {
    let cases = [
        ("", 0),
        ("c.status =", 10),
        ("  c.status = 'a' ORDER", 17),
        ("WHERE", 5),
        ("WHERE c.a = = 1", 12),
        ("FROM c WHERE", 12),
        ("c.a = zz", 6),
    ];
    for (text, expected) in cases {
        let error = Query::parse_filter(text).expect_err(text);
        let position = match &error {
            QueryError::Syntax { position, .. }
            | QueryError::UnresolvedIdentifier { position, .. } => *position,
            other => panic!("{text}: {other:?}"),
        };
        assert_eq!(position, expected, "{text:?}: {error}");
        assert!(position <= text.len(), "{text:?}: {error}");
    }
}

#[test]
fn conditions_take_parameters_and_reject_unbound_ones() {
    let query = Query::parse_condition("FROM c WHERE c.v = @v").unwrap();
    let mut parameters = Parameters::new();
    let document = json!({"v": [1, 2]});
    assert_eq!(
        matches(&query, &parameters, &document),
        Err(QueryError::UnknownParameter("@v".to_owned()))
    );
    parameters.insert("@v", json!([1, 2]));
    assert_eq!(matches(&query, &parameters, &document), Ok(true));
}

#[test]
fn a_condition_runs_as_select_star() {
    let query = Query::parse_condition("FROM c WHERE c.n >= 2").unwrap();
    assert!(query.selects_star());
    let documents = [json!({"n": 1}), json!({"n": 2}), json!({"n": 3})];
    let rows = execute(&query, &Parameters::new(), &documents).unwrap();
    assert_eq!(rows, [json!({"n": 2}), json!({"n": 3})]);
}

#[test]
fn only_queries_over_documents_that_need_no_whole_input_answer_item_by_item() {
    for (text, expected) in [
        ("SELECT * FROM c WHERE c.a = 1", true),
        ("SELECT t FROM c JOIN t IN c.tags", true),
        ("SELECT * FROM t IN c.tags", true),
        ("SELECT * FROM c ORDER BY c.a", false),
        ("SELECT VALUE 1", false),
        ("SELECT VALUE COUNT(1) FROM c", false),
    ] {
        assert_eq!(
            Query::parse(text).unwrap().answers_item_by_item(),
            expected,
            "{text}"
        );
    }
}

#[test]
fn needs_full_scan_flags_clauses_that_see_all_input() {
    let table = [
        ("SELECT * FROM c WHERE c.a = 1", false),
        ("SELECT c.a FROM c JOIN t IN c.tags", false),
        ("SELECT * FROM c ORDER BY c.a", true),
        ("SELECT VALUE COUNT(1) FROM c", true),
        ("SELECT c.a FROM c GROUP BY c.a", true),
        ("SELECT DISTINCT c.a FROM c", true),
        ("SELECT TOP 5 * FROM c", true),
        ("SELECT * FROM c OFFSET 0 LIMIT 5", true),
        (
            "SELECT VALUE ARRAY(SELECT VALUE COUNT(1) FROM t IN c.tags) FROM c",
            false,
        ),
    ];
    for (text, expected) in table {
        assert_eq!(
            Query::parse(text).unwrap().needs_full_scan(),
            expected,
            "{text}"
        );
    }
}

#[test]
fn execution_stops_reading_once_top_is_satisfied() {
    let query = Query::parse("SELECT TOP 2 VALUE c.n FROM c").unwrap();
    let documents: Vec<_> = (0..10).map(|n| json!({"n": n})).collect();
    let mut n_read = 0;
    let rows = execute(
        &query,
        &Parameters::new(),
        documents.iter().inspect(|_| n_read += 1),
    )
    .unwrap();
    assert_eq!(rows, [json!(0), json!(1)]);
    assert_eq!(n_read, 2);
}

#[test]
fn parameter_names_are_reported_in_order_of_use() {
    let query =
        Query::parse("SELECT TOP @top VALUE c FROM c WHERE c.a = @a AND c.b = @b OR c.c = @a")
            .unwrap();
    assert_eq!(query.parameter_names(), ["@top", "@a", "@b"]);
}

#[test]
fn pinned_value_finds_an_equality_on_the_document_path() {
    let pk = vec!["pk".to_owned()];
    let nested = vec!["address".to_owned(), "state".to_owned()];
    let mut parameters = Parameters::new();
    parameters.insert("@pk", json!(1));
    let pins = |text: &str, path: &[String]| {
        Query::parse(text)
            .unwrap()
            .pinned_value(path, &parameters)
            .is_some()
    };
    assert!(pins("SELECT * FROM c WHERE c.pk = @pk", &pk));
    assert!(pins("SELECT * FROM c WHERE 'a' = c.pk", &pk));
    assert!(pins(
        "SELECT * FROM root r WHERE r.x > 1 AND r['pk'] = 3",
        &pk
    ));
    assert!(pins(
        "SELECT * FROM c WHERE c.address.state = 'WA'",
        &nested
    ));
    assert!(!pins("SELECT * FROM c", &pk), "no filter");
    assert!(
        !pins("SELECT * FROM c WHERE c.pk = '1' OR c.pk = '2'", &pk),
        "two values"
    );
    assert!(
        !pins("SELECT * FROM c WHERE c.pk = c.other", &pk),
        "not a fixed value"
    );
    assert!(
        !pins("SELECT * FROM c WHERE c.address = 'WA'", &nested),
        "a parent path"
    );
    assert!(
        !pins("SELECT * FROM t IN c.tags WHERE t.pk = 1", &pk),
        "not the document"
    );
    assert!(!pins("SELECT * FROM c WHERE c.pk != 1", &pk));
}

#[test]
fn pinned_value_is_the_literal_or_the_bound_parameter() {
    let pk = vec!["pk".to_owned()];
    let mut parameters = Parameters::new();
    parameters.insert("@pk", json!("tenant-1"));
    let pinned = |text: &str| Query::parse(text).unwrap().pinned_value(&pk, &parameters);
    assert_eq!(pinned("SELECT * FROM c WHERE c.pk = 3"), Some(json!(3)));
    assert_eq!(
        pinned("SELECT * FROM c WHERE c.x > 1 AND @pk = c.pk"),
        Some(json!("tenant-1"))
    );
    assert_eq!(
        pinned("SELECT * FROM c WHERE c.pk = null"),
        Some(json!(null))
    );
    assert_eq!(
        pinned("SELECT * FROM c WHERE c.pk = @other"),
        None,
        "unbound"
    );
    assert_eq!(pinned("SELECT * FROM c WHERE c.pk > 3"), None);
    let undefined = Parameters::from_json(&json!([{"name": "@pk"}])).unwrap();
    assert_eq!(
        Query::parse("SELECT * FROM c WHERE c.pk = @pk")
            .unwrap()
            .pinned_value(&pk, &undefined),
        None,
        "bound to undefined"
    );
}

#[test]
fn aggregate_accessors_describe_the_selection() {
    let query = |text: &str| Query::parse(text).unwrap();
    let count = query("SELECT COUNT(1) FROM c");
    assert!(count.has_aggregates() && !count.selects_value() && !count.has_group_by());
    let value = query("SELECT VALUE MAX(c.v) FROM c");
    assert!(value.has_aggregates() && value.selects_value());
    let grouped = query("SELECT c.k, COUNT(1) AS n FROM c GROUP BY c.k");
    assert!(grouped.has_aggregates() && grouped.has_group_by());
    assert!(!query("SELECT * FROM c").has_aggregates());
}

#[test]
fn counts_documents_only_when_the_one_result_is_the_number_of_documents_read() {
    let pk = vec!["pk".to_owned()];
    let (tenant, user) = (vec!["tenant".to_owned()], vec!["user".to_owned()]);
    let mut parameters = Parameters::new();
    parameters.insert("@pk", json!("a"));
    // (query, the paths the caller pinned, counts documents only)
    let table: &[(&str, &[&Vec<String>], bool)] = &[
        ("SELECT VALUE COUNT(1) FROM c", &[], true),
        ("select value count('x') from c", &[], true),
        ("SELECT VALUE COUNT(null) FROM c", &[], true),
        ("SELECT VALUE COUNT(c) FROM c", &[], true),
        ("SELECT VALUE COUNT(r) FROM root r", &[], true),
        ("SELECT VALUE COUNT(c.id) FROM c", &[], true),
        ("SELECT VALUE COUNT(c['id']) FROM c", &[], true),
        (
            "SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'a'",
            &[&pk],
            true,
        ),
        (
            "SELECT VALUE COUNT(1) FROM c WHERE @pk = c.pk",
            &[&pk],
            true,
        ),
        (
            "SELECT VALUE COUNT(1) FROM c WHERE c.user = 'u' AND c.tenant = 't'",
            &[&tenant, &user],
            true,
        ),
        // Not every document counts, or not once.
        ("SELECT VALUE COUNT(c.n) FROM c", &[], false),
        ("SELECT VALUE COUNT(undefined) FROM c", &[], false),
        ("SELECT VALUE COUNT(@pk) FROM c", &[], false),
        ("SELECT VALUE COUNT(1) FROM c JOIN t IN c.tags", &[], false),
        ("SELECT VALUE COUNT(1) FROM t IN c.tags", &[], false),
        ("SELECT VALUE COUNT(1) FROM c.address", &[], false),
        ("SELECT VALUE COUNT(1) FROM c WHERE c.n > 1", &[], false),
        // The filter pins what the caller did not narrow by, or more, or the same path twice.
        ("SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'a'", &[], false),
        ("SELECT VALUE COUNT(1) FROM c", &[&pk], false),
        (
            "SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'a' AND c.n = 1",
            &[&pk],
            false,
        ),
        (
            "SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'a' AND c.pk = 'b'",
            &[&pk],
            false,
        ),
        (
            "SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'a' OR c.pk = 'b'",
            &[&pk],
            false,
        ),
        // Another shape of answer.
        ("SELECT COUNT(1) FROM c", &[], false),
        ("SELECT VALUE COUNT(1) + 1 FROM c", &[], false),
        ("SELECT VALUE [COUNT(1), COUNT(1)] FROM c", &[], false),
        ("SELECT VALUE COUNT(1) FROM c GROUP BY c.pk", &[], false),
        ("SELECT DISTINCT VALUE COUNT(1) FROM c", &[], false),
        ("SELECT TOP 0 VALUE COUNT(1) FROM c", &[], false),
        ("SELECT VALUE COUNT(1) FROM c OFFSET 1 LIMIT 1", &[], false),
        ("SELECT VALUE SUM(1) FROM c", &[], false),
    ];
    let documents = [
        json!({"id": "1", "pk": "a", "tenant": "t", "user": "u", "tags": [1, 2]}),
        json!({"id": "2", "pk": "a", "tenant": "t", "user": "u", "n": 5}),
    ];
    for (text, pinned_paths, expected) in table {
        let query = Query::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let pinned_paths: Vec<Vec<String>> = pinned_paths.iter().map(|p| (*p).clone()).collect();
        assert_eq!(
            query.counts_documents_only(&pinned_paths),
            *expected,
            "{text} with {pinned_paths:?}"
        );
        if *expected {
            // What a count of the (pinned) documents answers is what running it answers.
            assert_eq!(
                execute(&query, &parameters, &documents).unwrap(),
                [json!(documents.len())],
                "{text}"
            );
        }
    }
}
