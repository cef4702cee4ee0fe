//! Operators, literals and the undefined rules, evaluated without a FROM clause where possible.

use serde_json::{Value, json};

use crate::support::{case, check_all};

/// `SELECT VALUE <expr>` with no input: one row with the value, or no row when undefined.
fn value(expr: &'static str, expected: Value) -> crate::support::Case {
    let expected = if expected == json!("<undefined>") {
        json!([])
    } else {
        json!([expected])
    };
    case(expr, json!([]), expected)
}

const UNDEFINED: &str = "<undefined>";

#[test]
fn literals_parse_to_json() {
    check_all(vec![
        value("SELECT VALUE 42", json!(42)),
        value("SELECT VALUE -7", json!(-7)),
        value("SELECT VALUE 1.5e3", json!(1500)),
        value("SELECT VALUE .25", json!(0.25)),
        value(
            "SELECT VALUE 'single \\'quoted\\''",
            json!("single 'quoted'"),
        ),
        value(
            "SELECT VALUE \"tab\\tnewline\\n\\u0041\"",
            json!("tab\tnewline\nA"),
        ),
        value("SELECT VALUE true", json!(true)),
        value("SELECT VALUE FALSE", json!(false)),
        value("SELECT VALUE null", json!(null)),
        value("SELECT VALUE undefined", json!(UNDEFINED)),
        value("SELECT VALUE [1, 'a', [null]]", json!([1, "a", [null]])),
        value("SELECT VALUE []", json!([])),
        value("SELECT VALUE {}", json!({})),
        value(
            "SELECT VALUE {a: 1, \"b c\": {d: [true]}}",
            json!({"a": 1, "b c": {"d": [true]}}),
        ),
        value(
            "SELECT VALUE 9007199254740993",
            json!(9_007_199_254_740_993_u64),
        ),
    ]);
}

#[test]
fn comparisons_are_undefined_across_types() {
    check_all(vec![
        value("SELECT VALUE 1 = 1.0", json!(true)),
        value("SELECT VALUE 1 = '1'", json!(UNDEFINED)),
        value("SELECT VALUE 1 != '1'", json!(UNDEFINED)),
        value("SELECT VALUE 1 <> 2", json!(true)),
        value("SELECT VALUE null = null", json!(true)),
        value("SELECT VALUE null = undefined", json!(UNDEFINED)),
        value("SELECT VALUE [1, {a: 2}] = [1, {a: 2.0}]", json!(true)),
        value("SELECT VALUE {a: 1, b: 2} = {b: 2, a: 1}", json!(true)),
        value("SELECT VALUE [1] != [2]", json!(true)),
        value("SELECT VALUE [1] < [2]", json!(UNDEFINED)),
        value("SELECT VALUE 'a' < 'b'", json!(true)),
        value("SELECT VALUE 'B' < 'a'", json!(true)),
        value("SELECT VALUE 2 >= 2", json!(true)),
        value("SELECT VALUE false < true", json!(true)),
        value("SELECT VALUE 1 < 'a'", json!(UNDEFINED)),
        value("SELECT VALUE null < 1", json!(UNDEFINED)),
    ]);
}

#[test]
fn logic_is_three_valued() {
    check_all(vec![
        value("SELECT VALUE true AND undefined", json!(UNDEFINED)),
        value("SELECT VALUE false AND undefined", json!(false)),
        value("SELECT VALUE undefined AND false", json!(false)),
        value("SELECT VALUE true OR undefined", json!(true)),
        value("SELECT VALUE undefined OR true", json!(true)),
        value("SELECT VALUE false OR undefined", json!(UNDEFINED)),
        value("SELECT VALUE NOT undefined", json!(UNDEFINED)),
        value("SELECT VALUE NOT 1", json!(UNDEFINED)),
        value("SELECT VALUE NOT false", json!(true)),
        value("SELECT VALUE 1 AND true", json!(UNDEFINED)),
        value("SELECT VALUE NOT 1 = 2", json!(true)),
        value("SELECT VALUE true OR false AND false", json!(true)),
    ]);
}

#[test]
fn arithmetic_and_strings_need_matching_types() {
    check_all(vec![
        value("SELECT VALUE 1 + 2 * 3", json!(7)),
        value("SELECT VALUE (1 + 2) * 3", json!(9)),
        value("SELECT VALUE 7 / 2", json!(3.5)),
        value("SELECT VALUE 7 % 3", json!(1)),
        value("SELECT VALUE -7 % 3", json!(-1)),
        value("SELECT VALUE 10 - 2 - 3", json!(5)),
        value("SELECT VALUE 1 / 0", json!(UNDEFINED)),
        value("SELECT VALUE 1 + '1'", json!(UNDEFINED)),
        value("SELECT VALUE 'a' + 'b'", json!(UNDEFINED)),
        value("SELECT VALUE 'a' || 'b' || 'c'", json!("abc")),
        value("SELECT VALUE 'a' || 1", json!(UNDEFINED)),
        value("SELECT VALUE -(2)", json!(-2)),
        value("SELECT VALUE +'x'", json!(UNDEFINED)),
        value("SELECT VALUE 0.1 + 0.2", json!(0.300_000_000_000_000_04)),
    ]);
}

#[test]
fn bitwise_operators_follow_javascript() {
    check_all(vec![
        value("SELECT VALUE 100 >> 2", json!(25)),
        value("SELECT VALUE 100 << 2", json!(400)),
        value("SELECT VALUE 100 >>> 0", json!(100)),
        value("SELECT VALUE -1 >>> 28", json!(15)),
        value("SELECT VALUE 100 & 1000", json!(96)),
        value("SELECT VALUE 100 | 1000", json!(1004)),
        value("SELECT VALUE 100 ^ 1000", json!(908)),
        value("SELECT VALUE ~5", json!(-6)),
    ]);
}

#[test]
fn coalesce_conditional_in_between_like() {
    check_all(vec![
        value("SELECT VALUE undefined ?? 'fallback'", json!("fallback")),
        value("SELECT VALUE null ?? 'fallback'", json!(null)),
        value("SELECT VALUE 1 > 0 ? 'yes' : 'no'", json!("yes")),
        value("SELECT VALUE 'x' ? 'yes' : 'no'", json!("no")),
        value("SELECT VALUE true ? false ? 1 : 2 : 3", json!(2)),
        value("SELECT VALUE 2 IN (1, 2, 3)", json!(true)),
        value("SELECT VALUE '2' IN (1, 2, 3)", json!(false)),
        value("SELECT VALUE 4 NOT IN (1, 2, 3)", json!(true)),
        value("SELECT VALUE undefined IN (1)", json!(UNDEFINED)),
        value("SELECT VALUE [1] IN ([1], [2])", json!(true)),
        value("SELECT VALUE 5 BETWEEN 1 AND 10", json!(true)),
        value("SELECT VALUE 5 NOT BETWEEN 1 AND 10", json!(false)),
        value("SELECT VALUE 'b' BETWEEN 'a' AND 'c'", json!(true)),
        value("SELECT VALUE 5 BETWEEN 'a' AND 10", json!(UNDEFINED)),
        value("SELECT VALUE 11 BETWEEN 'a' AND 10", json!(false)),
        value("SELECT VALUE 'Road Bike' LIKE 'Road%'", json!(true)),
        value("SELECT VALUE 'Road Bike' NOT LIKE '%Bike'", json!(false)),
        value(
            "SELECT VALUE '20% off' LIKE '%20^%%' ESCAPE '^'",
            json!(true),
        ),
        value("SELECT VALUE 5 LIKE '5'", json!(UNDEFINED)),
        value(
            "SELECT VALUE 1 = 1 AND 2 BETWEEN 1 AND 3 AND 'a' IN ('a')",
            json!(true),
        ),
    ]);
}

#[test]
fn property_access_works_on_documents_and_computed_values() {
    let docs = json!([{"a": {"b": [10, {"c": "deep"}]}, "k": "a", "i": 1}]);
    check_all(vec![
        case(
            "SELECT VALUE c.a.b[1].c FROM c",
            docs.clone(),
            json!(["deep"]),
        ),
        case(
            "SELECT VALUE c[c.k].b[c.i].c FROM c",
            docs.clone(),
            json!(["deep"]),
        ),
        case("SELECT VALUE c.a.b[5] FROM c", docs.clone(), json!([])),
        case("SELECT VALUE c.a.b[-1] FROM c", docs.clone(), json!([])),
        case("SELECT VALUE c.a.b.c FROM c", docs.clone(), json!([])),
        case("SELECT VALUE c.a['b'][0] FROM c", docs.clone(), json!([10])),
        case(
            "SELECT VALUE {x: {y: 3}}.x.y FROM c",
            docs.clone(),
            json!([3]),
        ),
        case("SELECT VALUE [7, 8][1] FROM c", docs, json!([8])),
    ]);
}

#[test]
fn subqueries_exists_array_and_scalar() {
    let docs = json!([
        {"id": "1", "tags": [{"n": "a", "v": 1}, {"n": "b", "v": 5}]},
        {"id": "2", "tags": [{"n": "c", "v": 2}]},
        {"id": "3"}
    ]);
    check_all(vec![
        case(
            "SELECT VALUE c.id FROM c WHERE EXISTS(SELECT VALUE t FROM t IN c.tags WHERE t.v > 4)",
            docs.clone(),
            json!(["1"]),
        ),
        case(
            "SELECT c.id, ARRAY(SELECT VALUE t.n FROM t IN c.tags) AS names FROM c",
            docs.clone(),
            json!([
                {"id": "1", "names": ["a", "b"]},
                {"id": "2", "names": ["c"]},
                {"id": "3", "names": []}
            ]),
        ),
        case(
            "SELECT VALUE (SELECT VALUE SUM(t.v) FROM t IN c.tags) FROM c",
            docs.clone(),
            json!([6, 2, 0]),
        ),
        case(
            "SELECT VALUE c.id FROM c WHERE (SELECT VALUE COUNT(1) FROM t IN c.tags) = 1",
            docs.clone(),
            json!(["2"]),
        ),
        case(
            "SELECT VALUE EXISTS(SELECT VALUE 1 FROM t IN c.tags) FROM c",
            docs,
            json!([true, true, false]),
        ),
    ]);
}
