//! SELECT, FROM, JOIN, WHERE, ORDER BY, DISTINCT, TOP and OFFSET/LIMIT.

use serde_json::json;

use crate::support::{case, case_with, check_all, families};

#[test]
fn select_forms_project_as_cosmos_does() {
    let docs = json!([{"id": "1", "a": {"b": 2}, "arr": [10, 20]}]);
    check_all(vec![
        case("SELECT * FROM c", docs.clone(), docs.clone()),
        case("select * from root r", docs.clone(), docs.clone()),
        case("SELECT * FROM products AS p", docs.clone(), docs.clone()),
        case("SELECT VALUE c.id FROM c", docs.clone(), json!(["1"])),
        case("SELECT c.id FROM c", docs.clone(), json!([{"id": "1"}])),
        case("SELECT c.a.b FROM c", docs.clone(), json!([{"b": 2}])),
        case(
            "SELECT c[\"a\"] FROM c",
            docs.clone(),
            json!([{"a": {"b": 2}}]),
        ),
        case(
            "SELECT c.arr[1], c.id FROM c",
            docs.clone(),
            json!([{"$1": 20, "id": "1"}]),
        ),
        case(
            "SELECT 1, c.id, 'x' FROM c",
            docs.clone(),
            json!([{"$1": 1, "id": "1", "$2": "x"}]),
        ),
        case(
            "SELECT c.id AS key, c.a.b + 1 AS next FROM c",
            docs.clone(),
            json!([{"key": "1", "next": 3}]),
        ),
        case(
            "SELECT c.id key FROM c",
            docs.clone(),
            json!([{"key": "1"}]),
        ),
        case("SELECT c FROM c", docs.clone(), json!([{"c": docs[0]}])),
        case(
            "SELECT {id: c.id, \"b\": c.a.b} AS o FROM c",
            docs.clone(),
            json!([{"o": {"id": "1", "b": 2}}]),
        ),
        case(
            "SELECT VALUE {id: c.id, missing: c.nothing} FROM c",
            docs.clone(),
            json!([{"id": "1"}]),
        ),
        case("SELECT c.missing FROM c", docs.clone(), json!([{}])),
        case("SELECT VALUE c.missing FROM c", docs.clone(), json!([])),
        case(
            "SELECT VALUE [c.missing, 1] FROM c",
            docs.clone(),
            json!([[1]]),
        ),
        case(
            "SELECT 'no from' AS x",
            json!([]),
            json!([{"x": "no from"}]),
        ),
        case("SELECT VALUE 1 + 2", docs, json!([3])),
    ]);
}

#[test]
fn keywords_are_case_insensitive_and_usable_as_property_names() {
    let docs = json!([{"value": 1, "order": 2, "top": 3, "select": 4, "from": 5}]);
    check_all(vec![
        case(
            "SeLeCt VaLuE c.value FrOm c WhErE c.order = 2",
            docs.clone(),
            json!([1]),
        ),
        case(
            "SELECT c.value, c.order, c.top, c.select, c.from FROM c",
            docs.clone(),
            docs,
        ),
    ]);
}

#[test]
fn from_variants_bind_subtrees_and_iterate_arrays() {
    let docs = json!([
        {"id": "a", "items": [{"n": 1}, {"n": 2}], "sub": {"x": 1}},
        {"id": "b", "items": [], "sub": {"x": 2}},
        {"id": "c", "items": "not an array"}
    ]);
    check_all(vec![
        case(
            "SELECT VALUE i.n FROM i IN c.items",
            docs.clone(),
            json!([1, 2]),
        ),
        case(
            "SELECT * FROM c IN c.items",
            docs.clone(),
            json!([{"n": 1}, {"n": 2}]),
        ),
        case("SELECT VALUE s.x FROM c.sub s", docs.clone(), json!([1, 2])),
        case("SELECT VALUE sub.x FROM c.sub", docs.clone(), json!([1, 2])),
        case(
            "SELECT VALUE x FROM root.items[0] x",
            docs.clone(),
            json!([{"n": 1}]),
        ),
        case(
            "SELECT VALUE s FROM c[\"sub\"][\"x\"] s",
            docs,
            json!([1, 2]),
        ),
    ]);
}

#[test]
fn joins_form_the_cartesian_product_within_each_document() {
    check_all(vec![
        case(
            "SELECT f.id, ch.grade FROM Families f JOIN ch IN f.children",
            families(),
            json!([
                {"id": "AndersenFamily", "grade": 5},
                {"id": "WakefieldFamily", "grade": 1},
                {"id": "WakefieldFamily", "grade": 8}
            ]),
        ),
        case(
            "SELECT VALUE p.givenName FROM f JOIN c IN f.children JOIN p IN c.pets",
            families(),
            json!(["Fluffy", "Goofy", "Shadow"]),
        ),
        case(
            "SELECT VALUE [p.firstName ?? p.givenName, c.grade] \
             FROM f JOIN p IN f.parents JOIN c IN f.children WHERE c.grade > 4",
            families(),
            json!([["Thomas", 5], ["Mary Kay", 5], ["Robin", 8], ["Ben", 8]]),
        ),
        case(
            "SELECT VALUE t FROM c JOIN t IN c.tags",
            json!([{"tags": ["a", "b"]}, {"tags": []}, {"no": "tags"}, {"tags": ["c"]}]),
            json!(["a", "b", "c"]),
        ),
        case(
            "SELECT VALUE x FROM c JOIN (SELECT VALUE t FROM t IN c.tags WHERE t > 'a') x",
            json!([{"tags": ["a", "b", "c"]}]),
            json!(["b", "c"]),
        ),
    ]);
}

#[test]
fn where_keeps_only_rows_whose_filter_is_true() {
    let docs = json!([
        {"id": "1", "n": 1, "s": "x", "flag": true},
        {"id": "2", "n": "1", "flag": false},
        {"id": "3", "n": null},
        {"id": "4"}
    ]);
    check_all(vec![
        case(
            "SELECT VALUE c.id FROM c WHERE c.n = 1",
            docs.clone(),
            json!(["1"]),
        ),
        case(
            "SELECT VALUE c.id FROM c WHERE c.n != 1",
            docs.clone(),
            json!([]),
        ),
        case(
            "SELECT VALUE c.id FROM c WHERE NOT (c.n = 1)",
            docs.clone(),
            json!([]),
        ),
        case(
            "SELECT VALUE c.id FROM c WHERE c.n = null",
            docs.clone(),
            json!(["3"]),
        ),
        case(
            "SELECT VALUE c.id FROM c WHERE c.flag",
            docs.clone(),
            json!(["1"]),
        ),
        case(
            "SELECT VALUE c.id FROM c WHERE NOT c.flag",
            docs.clone(),
            json!(["2"]),
        ),
        case(
            "SELECT VALUE c.id FROM c WHERE NOT IS_DEFINED(c.n)",
            docs.clone(),
            json!(["4"]),
        ),
        case(
            "SELECT VALUE c.id FROM c WHERE c.n = 1 OR c.flag = false",
            docs.clone(),
            json!(["1", "2"]),
        ),
        case(
            "SELECT VALUE c.id FROM c WHERE c.n > 0 AND c.s = 'x'",
            docs.clone(),
            json!(["1"]),
        ),
        case(
            "SELECT VALUE c.id FROM c WHERE c.n",
            docs.clone(),
            json!([]),
        ),
        case(
            "SELECT VALUE c.id FROM c WHERE 1 = 1",
            docs,
            json!(["1", "2", "3", "4"]),
        ),
    ]);
}

#[test]
fn order_by_sorts_across_types_and_keeps_undefined_first() {
    let docs = json!([
        {"id": "s", "v": "b"},
        {"id": "n2", "v": 2},
        {"id": "u"},
        {"id": "t", "v": true},
        {"id": "n1", "v": 1.5},
        {"id": "f", "v": false},
        {"id": "z", "v": null},
        {"id": "a", "v": [1]},
        {"id": "o", "v": {"k": 1}},
        {"id": "s2", "v": "B"}
    ]);
    check_all(vec![
        case(
            "SELECT VALUE c.id FROM c ORDER BY c.v",
            docs.clone(),
            json!(["u", "z", "f", "t", "n1", "n2", "s2", "s", "a", "o"]),
        ),
        case(
            "SELECT VALUE c.id FROM c ORDER BY c.v DESC",
            docs,
            json!(["o", "a", "s", "s2", "n2", "n1", "t", "f", "z", "u"]),
        ),
    ]);
}

#[test]
fn order_by_several_keys_is_stable() {
    let docs = json!([
        {"id": "1", "a": 2, "b": "x"},
        {"id": "2", "a": 1, "b": "y"},
        {"id": "3", "a": 2, "b": "a"},
        {"id": "4", "a": 1, "b": "y"},
        {"id": "5", "a": 1, "b": "z"}
    ]);
    check_all(vec![
        case(
            "SELECT VALUE c.id FROM c ORDER BY c.a ASC, c.b DESC",
            docs.clone(),
            json!(["5", "2", "4", "1", "3"]),
        ),
        case(
            "SELECT VALUE c.id FROM c ORDER BY c.a DESC, c.b",
            docs.clone(),
            json!(["3", "1", "2", "4", "5"]),
        ),
        case(
            "SELECT TOP 2 VALUE c.id FROM c ORDER BY c.b",
            docs.clone(),
            json!(["3", "1"]),
        ),
        case(
            "SELECT VALUE c.id FROM c ORDER BY c.id DESC OFFSET 1 LIMIT 2",
            docs,
            json!(["4", "3"]),
        ),
    ]);
}

#[test]
fn distinct_top_and_offset_limit_compose_in_cosmos_order() {
    let docs = json!([
        {"c": "x", "n": 1}, {"c": "y", "n": 2}, {"c": "x", "n": 3},
        {"c": "z", "n": 4}, {"n": 5}, {"c": "y", "n": 6}
    ]);
    check_all(vec![
        case(
            "SELECT DISTINCT VALUE c.c FROM c",
            docs.clone(),
            json!(["x", "y", "z"]),
        ),
        case(
            "SELECT DISTINCT c.c FROM c",
            docs.clone(),
            json!([{"c": "x"}, {"c": "y"}, {"c": "z"}, {}]),
        ),
        case("SELECT TOP 2 VALUE c.n FROM c", docs.clone(), json!([1, 2])),
        case("SELECT TOP 0 VALUE c.n FROM c", docs.clone(), json!([])),
        case(
            "SELECT VALUE c.n FROM c OFFSET 2 LIMIT 3",
            docs.clone(),
            json!([3, 4, 5]),
        ),
        case(
            "SELECT VALUE c.n FROM c OFFSET 10 LIMIT 3",
            docs.clone(),
            json!([]),
        ),
        case(
            "SELECT DISTINCT TOP 2 VALUE c.c FROM c",
            docs.clone(),
            json!(["x", "y"]),
        ),
        case(
            "SELECT DISTINCT VALUE c.c FROM c ORDER BY c.c DESC",
            docs.clone(),
            json!(["z", "y", "x"]),
        ),
        case(
            "SELECT DISTINCT VALUE {a: c.n - c.n} FROM c",
            docs.clone(),
            json!([{"a": 0}]),
        ),
        case_with(
            "SELECT TOP @n VALUE c.n FROM c",
            json!([{"name": "@n", "value": 3}]),
            docs.clone(),
            json!([1, 2, 3]),
        ),
        case_with(
            "SELECT VALUE c.n FROM c OFFSET @skip LIMIT @take",
            json!([{"name": "@skip", "value": 4}, {"name": "@take", "value": 10}]),
            docs,
            json!([5, 6]),
        ),
    ]);
}

#[test]
fn parameters_bind_any_json_value() {
    let docs = json!([{"id": "1", "tags": ["a"], "o": {"k": 1}}, {"id": "2", "tags": ["b"]}]);
    check_all(vec![
        case_with(
            "SELECT VALUE c.id FROM c WHERE c.id = @id",
            json!([{"name": "@id", "value": "2"}]),
            docs.clone(),
            json!(["2"]),
        ),
        case_with(
            "SELECT VALUE c.id FROM c WHERE c.tags = @tags OR c.o = @o",
            json!([{"name": "@tags", "value": ["b"]}, {"name": "@o", "value": {"k": 1}}]),
            docs.clone(),
            json!(["1", "2"]),
        ),
        case_with(
            "SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(@ids, c.id)",
            json!([{"name": "@ids", "value": ["1", "3"]}]),
            docs.clone(),
            json!(["1"]),
        ),
        case_with(
            "SELECT VALUE IS_DEFINED(@u)",
            json!([{"name": "@u"}]),
            docs,
            json!([false]),
        ),
    ]);
}

#[test]
fn a_top_or_offset_limit_over_streamed_results_is_a_row_window() {
    use tributary_query::{Parameters, Query, RowWindow, execute};

    let mut parameters = Parameters::new();
    parameters.insert("@n", json!(4));
    parameters.insert("@bad", json!(-1));
    let window = |text: &str| {
        Query::parse(text)
            .expect("the query parses")
            .row_window(&parameters)
    };
    assert_eq!(
        window("SELECT TOP 5 * FROM c"),
        Some(RowWindow { skip: 0, take: 5 })
    );
    assert_eq!(
        window("SELECT c.id FROM c WHERE c.x > 1 OFFSET 3 LIMIT @n"),
        Some(RowWindow { skip: 3, take: 4 })
    );
    for not_streamed in [
        "SELECT * FROM c",
        "SELECT TOP 5 * FROM c ORDER BY c.id",
        "SELECT DISTINCT TOP 5 c.a FROM c",
        "SELECT TOP 5 VALUE COUNT(1) FROM c",
        "SELECT TOP 5 c.a FROM c GROUP BY c.a",
        "SELECT TOP 5 VALUE 1",
        "SELECT TOP @bad * FROM c",
        "SELECT TOP @missing * FROM c",
    ] {
        assert_eq!(window(not_streamed), None, "{not_streamed}");
    }
    // The window over the query without it gives what the query gives.
    let documents: Vec<_> = (0..10).map(|n| json!({"id": n, "tags": [1, 2]})).collect();
    for text in [
        "SELECT VALUE c.id FROM c JOIN t IN c.tags OFFSET 3 LIMIT 6",
        "SELECT TOP 7 VALUE c.id FROM c JOIN t IN c.tags",
    ] {
        let query = Query::parse(text).expect("the query parses");
        let RowWindow { skip, take } = query.row_window(&parameters).expect("a window");
        let whole = execute(&query, &parameters, &documents).expect("runs");
        let streamed: Vec<_> = execute(&query.without_row_window(), &parameters, &documents)
            .expect("runs")
            .into_iter()
            .skip(skip as usize)
            .take(take as usize)
            .collect();
        assert_eq!(streamed, whole, "{text}");
    }
}

#[test]
fn top_documents_picked_chunk_by_chunk_give_what_the_whole_input_gives() {
    use tributary_query::{Parameters, Query, execute};

    let mut parameters = Parameters::new();
    parameters.insert("@k", json!(5));
    // Ties, undefined and mixed-type keys, nested values, documents the filter drops.
    let documents: Vec<_> = (0..40)
        .map(|n| match n % 5 {
            0 => json!({"id": n, "g": n % 3, "sub": {"v": n}}),
            1 => json!({"id": n, "g": "text", "sub": {"v": -n}}),
            2 => json!({"id": n, "sub": {}}),
            3 => json!({"id": n, "g": n % 3, "skip": true}),
            _ => json!({"id": n, "g": null, "sub": {"v": n / 2}}),
        })
        .collect();
    for text in [
        "SELECT TOP 5 * FROM c ORDER BY c.g",
        "SELECT TOP @k c.id, c.g FROM c WHERE NOT IS_DEFINED(c.skip) ORDER BY c.g DESC",
        "SELECT c.id FROM c ORDER BY c.g, c.id DESC OFFSET 3 LIMIT 9",
        "SELECT TOP 7 r.sub.v FROM root r ORDER BY r.sub.v",
        "SELECT TOP 100 c.id FROM c ORDER BY c.sub.v",
    ] {
        let query = Query::parse(text).expect("the query parses");
        let picker = query
            .top_documents_query(&parameters, 1000)
            .expect("a candidate query");
        let whole = execute(&query, &parameters, &documents).expect("runs");
        for chunk_size in [1, 3, 40] {
            let mut candidates: Vec<serde_json::Value> = Vec::new();
            for chunk in documents.chunks(chunk_size) {
                let input: Vec<_> = candidates.iter().chain(chunk).collect();
                candidates = execute(&picker, &parameters, input).expect("runs");
            }
            let answered = execute(&query, &parameters, &candidates).expect("runs");
            assert_eq!(answered, whole, "{text}, chunks of {chunk_size}");
        }
    }
    for not_picked in [
        "SELECT TOP 5 * FROM c",
        "SELECT * FROM c ORDER BY c.g",
        "SELECT TOP 5 VALUE t FROM c JOIN t IN c.tags ORDER BY c.g",
        "SELECT TOP 5 VALUE x FROM x IN c.tags ORDER BY x",
        "SELECT TOP 5 VALUE s.v FROM c.sub s ORDER BY s.v",
        "SELECT TOP 5 VALUE c.sub.v FROM c ORDER BY c.sub.v",
        "SELECT DISTINCT TOP 5 c.g FROM c ORDER BY c.g",
        "SELECT TOP 2000 * FROM c ORDER BY c.g",
    ] {
        let query = Query::parse(not_picked).expect("the query parses");
        assert!(
            query.top_documents_query(&parameters, 1000).is_none(),
            "{not_picked}"
        );
    }
}
