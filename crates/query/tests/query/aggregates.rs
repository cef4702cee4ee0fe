//! Aggregates with and without GROUP BY, including the empty-input rules.

use serde_json::json;

use crate::support::{case, check_all, families};

fn prices() -> serde_json::Value {
    json!([
        {"cat": "a", "price": 10, "name": "x"},
        {"cat": "b", "price": 5, "name": "y"},
        {"cat": "a", "price": 20},
        {"cat": "b", "price": "free"},
        {"price": 1}
    ])
}

#[test]
fn aggregates_over_all_rows() {
    check_all(vec![
        case("SELECT VALUE COUNT(1) FROM c", prices(), json!([5])),
        case("SELECT COUNT(1) AS n FROM c", prices(), json!([{"n": 5}])),
        case(
            "SELECT COUNT(c.name) AS n FROM c",
            prices(),
            json!([{"n": 2}]),
        ),
        case("SELECT VALUE count(c.cat) FROM c", prices(), json!([4])),
        case("SELECT VALUE MIN(c.price) FROM c", prices(), json!([1])),
        case(
            "SELECT VALUE MAX(c.price) FROM c",
            prices(),
            json!(["free"]),
        ),
        case("SELECT VALUE SUM(c.price) FROM c", prices(), json!([])),
        case(
            "SELECT VALUE SUM(c.price) FROM c WHERE IS_NUMBER(c.price)",
            prices(),
            json!([36]),
        ),
        case(
            "SELECT VALUE AVG(c.price) FROM c WHERE IS_NUMBER(c.price)",
            prices(),
            json!([9]),
        ),
        case(
            "SELECT COUNT(1) AS n, SUM(c.price) AS total, MAX(c.name) AS last FROM c WHERE c.cat = 'a'",
            prices(),
            json!([{"n": 2, "total": 30, "last": "x"}]),
        ),
        case(
            "SELECT VALUE SUM(c.price) / COUNT(1) FROM c WHERE c.cat = 'a'",
            prices(),
            json!([15]),
        ),
        case("SELECT COUNT(1) FROM c", prices(), json!([{"$1": 5}])),
        case(
            "SELECT VALUE COUNT(1) FROM f JOIN ch IN f.children",
            families(),
            json!([3]),
        ),
        case(
            "SELECT VALUE MAX(c.v) FROM c",
            json!([{"v": [1]}, {"v": 2}]),
            json!([]),
        ),
    ]);
}

#[test]
fn aggregates_over_no_rows_follow_cosmos() {
    let none = json!([]);
    check_all(vec![
        case("SELECT VALUE COUNT(1) FROM c", none.clone(), json!([0])),
        case("SELECT VALUE SUM(c.x) FROM c", none.clone(), json!([0])),
        case("SELECT VALUE MIN(c.x) FROM c", none.clone(), json!([])),
        case("SELECT VALUE MAX(c.x) FROM c", none.clone(), json!([])),
        case("SELECT VALUE AVG(c.x) FROM c", none.clone(), json!([])),
        case(
            "SELECT COUNT(1) AS n FROM c",
            none.clone(),
            json!([{"n": 0}]),
        ),
        case("SELECT MAX(c.x) AS m FROM c", none.clone(), json!([{}])),
        case(
            "SELECT c.k, COUNT(1) AS n FROM c GROUP BY c.k",
            none,
            json!([]),
        ),
    ]);
}

#[test]
fn group_by_forms_one_result_per_distinct_key() {
    check_all(vec![
        case(
            "SELECT c.cat, COUNT(1) AS n FROM c GROUP BY c.cat",
            prices(),
            json!([{"cat": "a", "n": 2}, {"cat": "b", "n": 2}, {"n": 1}]),
        ),
        case(
            "SELECT VALUE c.cat FROM c GROUP BY c.cat",
            prices(),
            json!(["a", "b"]),
        ),
        case(
            "SELECT c.cat AS category, MAX(c.price) AS highest FROM c WHERE IS_DEFINED(c.cat) GROUP BY c.cat",
            prices(),
            json!([{"category": "a", "highest": 20}, {"category": "b", "highest": "free"}]),
        ),
        case(
            "SELECT VALUE {k: LOWER(c.cat), n: COUNT(1)} FROM c WHERE IS_DEFINED(c.cat) GROUP BY LOWER(c.cat)",
            prices(),
            json!([{"k": "a", "n": 2}, {"k": "b", "n": 2}]),
        ),
        case(
            "SELECT c.a, c.b, COUNT(1) AS n FROM c GROUP BY c.a, c.b",
            json!([{"a": 1, "b": 1}, {"a": 1, "b": 2}, {"a": 1.0, "b": 1}, {"a": "1", "b": 1}]),
            json!([
                {"a": 1, "b": 1, "n": 2},
                {"a": 1, "b": 2, "n": 1},
                {"a": "1", "b": 1, "n": 1}
            ]),
        ),
        case(
            "SELECT 'constant' AS k, COUNT(1) AS n FROM c GROUP BY c.cat OFFSET 1 LIMIT 1",
            prices(),
            json!([{"k": "constant", "n": 2}]),
        ),
        case(
            "SELECT TOP 1 c.cat FROM c GROUP BY c.cat",
            prices(),
            json!([{"cat": "a"}]),
        ),
    ]);
}
