//! Built-in scalar functions.

use serde_json::{Value, json};

use crate::support::{Case, case, check_all};

const UNDEFINED: &str = "<undefined>";

fn value(expr: &'static str, expected: Value) -> Case {
    let expected = if expected == json!(UNDEFINED) {
        json!([])
    } else {
        json!([expected])
    };
    case(expr, json!([]), expected)
}

#[test]
fn type_checks() {
    check_all(vec![
        value("SELECT VALUE IS_DEFINED(undefined)", json!(false)),
        value("SELECT VALUE is_defined(null)", json!(true)),
        value("SELECT VALUE IS_NULL(null)", json!(true)),
        value("SELECT VALUE IS_NULL(undefined)", json!(false)),
        value("SELECT VALUE IS_NUMBER(1.5)", json!(true)),
        value("SELECT VALUE IS_STRING('1')", json!(true)),
        value("SELECT VALUE IS_BOOL(false)", json!(true)),
        value("SELECT VALUE IS_ARRAY([])", json!(true)),
        value("SELECT VALUE IS_OBJECT({})", json!(true)),
        value("SELECT VALUE IS_OBJECT([])", json!(false)),
        value("SELECT VALUE IS_PRIMITIVE('x')", json!(true)),
        value("SELECT VALUE IS_PRIMITIVE([1])", json!(false)),
        value("SELECT VALUE IS_FINITE_NUMBER(3)", json!(true)),
    ]);
}

#[test]
fn string_functions() {
    check_all(vec![
        value("SELECT VALUE CONCAT('a', 'b', 'c')", json!("abc")),
        value("SELECT VALUE CONCAT('a', 1)", json!(UNDEFINED)),
        value("SELECT VALUE CONCAT('a', undefined)", json!(UNDEFINED)),
        value("SELECT VALUE CONTAINS('Hello', 'ell')", json!(true)),
        value("SELECT VALUE CONTAINS('Hello', 'ELL')", json!(false)),
        value("SELECT VALUE CONTAINS('Hello', 'ELL', true)", json!(true)),
        value("SELECT VALUE STARTSWITH('Hello', 'he', true)", json!(true)),
        value("SELECT VALUE ENDSWITH('Hello', 'lo')", json!(true)),
        value("SELECT VALUE StringEquals('abc', 'ABC', true)", json!(true)),
        value("SELECT VALUE CONTAINS(1, 'a')", json!(UNDEFINED)),
        value("SELECT VALUE LOWER('ÀB')", json!("àb")),
        value("SELECT VALUE UPPER('abc')", json!("ABC")),
        value("SELECT VALUE LENGTH('héllo')", json!(5)),
        value("SELECT VALUE SUBSTRING('abcdef', 1, 3)", json!("bcd")),
        value("SELECT VALUE SUBSTRING('abc', 2, 10)", json!("c")),
        value("SELECT VALUE SUBSTRING('abc', -1, 2)", json!("ab")),
        value("SELECT VALUE INDEX_OF('abcabc', 'c')", json!(2)),
        value("SELECT VALUE INDEX_OF('abcabc', 'c', 3)", json!(5)),
        value("SELECT VALUE INDEX_OF('abc', 'z')", json!(-1)),
        value("SELECT VALUE INDEX_OF('héllo', 'l')", json!(2)),
        value("SELECT VALUE REPLACE('a-b-c', '-', '+')", json!("a+b+c")),
        value("SELECT VALUE REPLACE('abc', '', 'x')", json!("abc")),
        value("SELECT VALUE TRIM('  a b  ')", json!("a b")),
        value("SELECT VALUE LTRIM('  a ')", json!("a ")),
        value("SELECT VALUE RTRIM('  a ')", json!("  a")),
        value("SELECT VALUE LEFT('abcdef', 2)", json!("ab")),
        value("SELECT VALUE RIGHT('abcdef', 2)", json!("ef")),
        value("SELECT VALUE RIGHT('ab', 5)", json!("ab")),
        value("SELECT VALUE REVERSE('abc')", json!("cba")),
        value("SELECT VALUE REPLICATE('ab', 3)", json!("ababab")),
        value("SELECT VALUE REPLICATE('a', 10001)", json!(UNDEFINED)),
        value("SELECT VALUE TOSTRING(1)", json!("1")),
        value("SELECT VALUE TOSTRING(1.5)", json!("1.5")),
        value("SELECT VALUE TOSTRING(null)", json!("null")),
        value(
            "SELECT VALUE TOSTRING([1, {a: 'b'}])",
            json!("[1,{\"a\":\"b\"}]"),
        ),
        value("SELECT VALUE TOSTRING(undefined)", json!(UNDEFINED)),
        value("SELECT VALUE StringToNumber(' 1.5 ')", json!(1.5)),
        value("SELECT VALUE StringToNumber('abc')", json!(UNDEFINED)),
        value("SELECT VALUE StringToNumber('2.0')", json!(2)),
        value("SELECT VALUE StringToBoolean('true')", json!(true)),
        value("SELECT VALUE StringToNull('null')", json!(null)),
        value("SELECT VALUE StringToArray('[1, \"a\"]')", json!([1, "a"])),
        value("SELECT VALUE StringToObject('{\"a\": 1}')", json!({"a": 1})),
        value("SELECT VALUE StringToObject('[1]')", json!(UNDEFINED)),
        value(
            "SELECT VALUE RegexMatch('abc123', '^[a-z]+\\\\d+$')",
            json!(true),
        ),
        value("SELECT VALUE RegexMatch('ABC', 'abc', 'i')", json!(true)),
        value("SELECT VALUE RegexMatch('ABC', 'abc')", json!(false)),
    ]);
}

#[test]
fn math_functions() {
    check_all(vec![
        value("SELECT VALUE ABS(-4)", json!(4)),
        value("SELECT VALUE CEILING(1.2)", json!(2)),
        value("SELECT VALUE FLOOR(-1.2)", json!(-2)),
        value("SELECT VALUE ROUND(2.5)", json!(3)),
        value("SELECT VALUE ROUND(-2.5)", json!(-3)),
        value("SELECT VALUE TRUNC(-2.7)", json!(-2)),
        value("SELECT VALUE SQRT(16)", json!(4)),
        value("SELECT VALUE SQRT(-1)", json!(UNDEFINED)),
        value("SELECT VALUE POWER(2, 10)", json!(1024)),
        value("SELECT VALUE SQUARE(3)", json!(9)),
        value("SELECT VALUE SIGN(-3)", json!(-1)),
        value("SELECT VALUE EXP(0)", json!(1)),
        value("SELECT VALUE LOG(1)", json!(0)),
        value("SELECT VALUE LOG(8, 2)", json!(3)),
        value("SELECT VALUE LOG10(1000)", json!(3)),
        value("SELECT VALUE ROUND(PI() * 100)", json!(314)),
        value("SELECT VALUE DEGREES(PI())", json!(180)),
        value(
            "SELECT VALUE ROUND(ATN2(35.175643, 129.44) * 1000)",
            json!(1305),
        ),
        value("SELECT VALUE NumberBin(7.5, 2)", json!(6)),
        value("SELECT VALUE ABS('x')", json!(UNDEFINED)),
        value(
            "SELECT VALUE IntAdd(9007199254740992, 1)",
            json!(9_007_199_254_740_993_i64),
        ),
        value("SELECT VALUE IntDiv(7, 2)", json!(3)),
        value("SELECT VALUE IntDiv(7, 0)", json!(UNDEFINED)),
        value(
            "SELECT VALUE IntBitLeftShift(1, 40)",
            json!(1_099_511_627_776_i64),
        ),
        value("SELECT VALUE RAND() >= 0 AND RAND() < 1", json!(true)),
    ]);
}

#[test]
fn array_functions() {
    check_all(vec![
        value(
            "SELECT VALUE ARRAY_CONCAT([1], [2, 3], [])",
            json!([1, 2, 3]),
        ),
        value("SELECT VALUE ARRAY_CONCAT([1], 'x')", json!(UNDEFINED)),
        value(
            "SELECT VALUE ARRAY_CONCAT([1], undefined)",
            json!(UNDEFINED),
        ),
        value("SELECT VALUE ARRAY_CONTAINS([1, 2], 2)", json!(true)),
        value("SELECT VALUE ARRAY_CONTAINS([1, 2], '2')", json!(false)),
        value(
            "SELECT VALUE ARRAY_CONTAINS([{a: 1, b: 2}], {a: 1})",
            json!(false),
        ),
        value(
            "SELECT VALUE ARRAY_CONTAINS([{a: 1, b: 2}], {a: 1}, true)",
            json!(true),
        ),
        value("SELECT VALUE ARRAY_CONTAINS('x', 1)", json!(UNDEFINED)),
        value("SELECT VALUE ARRAY_CONTAINS_ANY([1, 2], 5, 2)", json!(true)),
        value(
            "SELECT VALUE ARRAY_CONTAINS_ALL([1, 2], 1, 5)",
            json!(false),
        ),
        value("SELECT VALUE ARRAY_LENGTH([1, 2, 3])", json!(3)),
        value(
            "SELECT VALUE ARRAY_SLICE([1, 2, 3, 4], 1)",
            json!([2, 3, 4]),
        ),
        value(
            "SELECT VALUE ARRAY_SLICE([1, 2, 3, 4], 1, 2)",
            json!([2, 3]),
        ),
        value("SELECT VALUE ARRAY_SLICE([1, 2, 3, 4], -2, 1)", json!([3])),
        value("SELECT VALUE ARRAY_SLICE([1, 2], 5)", json!([])),
        value(
            "SELECT VALUE SetIntersect([1, 2, 2, 3], [2, 3, 4])",
            json!([2, 3]),
        ),
        value("SELECT VALUE SetUnion([1, 2], [2, 3])", json!([1, 2, 3])),
        value(
            "SELECT VALUE ObjectToArray({a: 1, b: 'x'})",
            json!([{"k": "a", "v": 1}, {"k": "b", "v": "x"}]),
        ),
        value("SELECT VALUE IIF(1 > 0, 'yes', 'no')", json!("yes")),
        value("SELECT VALUE IIF('true', 'yes', 'no')", json!("no")),
    ]);
}

#[test]
fn date_functions_use_the_execution_clock() {
    check_all(vec![
        value(
            "SELECT VALUE GetCurrentDateTime()",
            json!("2024-03-01T12:00:00.0000000Z"),
        ),
        value(
            "SELECT VALUE GetCurrentTimestamp()",
            json!(1_709_294_400_000_i64),
        ),
        value(
            "SELECT VALUE GetCurrentTicks()",
            json!(17_092_944_000_000_000_i64),
        ),
        value(
            "SELECT VALUE DateTimeToTimestamp('2024-03-01T12:00:00.000Z')",
            json!(1_709_294_400_000_i64),
        ),
        value(
            "SELECT VALUE TimestampToDateTime(1709294400123)",
            json!("2024-03-01T12:00:00.1230000Z"),
        ),
        value(
            "SELECT VALUE DateTimeAdd('dd', 1, '2024-02-28T00:00:00Z')",
            json!("2024-02-29T00:00:00.0000000Z"),
        ),
        value(
            "SELECT VALUE DateTimeAdd('month', 1, '2024-01-31T00:00:00Z')",
            json!("2024-02-29T00:00:00.0000000Z"),
        ),
        value(
            "SELECT VALUE DateTimePart('yyyy', '2024-03-01T12:00:00Z')",
            json!(2024),
        ),
        value(
            "SELECT VALUE DateTimeDiff('hh', '2024-03-01T00:00:00Z', '2024-03-02T01:30:00Z')",
            json!(25),
        ),
        value(
            "SELECT VALUE DateTimeToTimestamp('yesterday')",
            json!(UNDEFINED),
        ),
        value(
            "SELECT VALUE GetCurrentDateTime() > '2024-01-01'",
            json!(true),
        ),
    ]);
}

#[test]
fn integers_joins_splits_and_choices() {
    check_all(vec![
        value("SELECT VALUE IS_INTEGER(42)", json!(true)),
        value("SELECT VALUE IS_INTEGER(-7.0)", json!(true)),
        value("SELECT VALUE IS_INTEGER(4.5)", json!(false)),
        value("SELECT VALUE IS_INTEGER(1e300)", json!(false)),
        value("SELECT VALUE IS_INTEGER('1')", json!(false)),
        value(
            "SELECT VALUE STRINGJOIN(['Iropa', 'Mountain', 'Bike'], ' ')",
            json!("Iropa Mountain Bike"),
        ),
        value(
            "SELECT VALUE STRINGJOIN(['6', '7', '4'], 'A')",
            json!("6A7A4"),
        ),
        value(
            "SELECT VALUE STRINGJOIN(['a', 'b'], undefined)",
            json!(UNDEFINED),
        ),
        value("SELECT VALUE STRINGJOIN(['a', 1], '-')", json!(UNDEFINED)),
        value(
            "SELECT VALUE STRINGSPLIT('Handlebar', 'e')",
            json!(["Handl", "bar"]),
        ),
        value(
            "SELECT VALUE STRINGSPLIT('xenmoun mountain bike', 'moun')",
            json!(["xen", " ", "tain bike"]),
        ),
        value("SELECT VALUE STRINGSPLIT('Helmet', '')", json!(["Helmet"])),
        value(
            "SELECT VALUE STRINGSPLIT('Frame', undefined)",
            json!(UNDEFINED),
        ),
        value("SELECT VALUE CHOOSE(2, 'a', 'b', 'c')", json!("b")),
        value("SELECT VALUE CHOOSE(1, 'a')", json!("a")),
        value("SELECT VALUE CHOOSE(0, 'a')", json!(UNDEFINED)),
        value("SELECT VALUE CHOOSE(3, 'a', 'b')", json!(UNDEFINED)),
        value("SELECT VALUE CHOOSE(1.5, 'a', 'b')", json!(UNDEFINED)),
    ]);
}

#[test]
fn array_aggregates_match_the_documented_examples() {
    check_all(vec![
        // ARRAY_AVG's documented example and result.
        value(
            "SELECT VALUE {
                'case1': ARRAY_AVG([1, 2, 3, 4]),
                'case2': ARRAY_AVG([1.0, 2.0, 3.3, 4.7]),
                'case3': ARRAY_AVG([1, -2.7, 3, -4, undefined]),
                'case4': ARRAY_AVG(['abc', 'ABC', 'aBc', 'AbC']),
                'case5': ARRAY_AVG([12, 'abc', true, false, null, undefined])
            }",
            json!({"case1": 2.5, "case2": 2.75, "case3": -0.675}),
        ),
        // ARRAY_MAX's.
        value(
            "SELECT VALUE {
                'case1': ARRAY_MAX([1, 2, 3, 4]),
                'case2': ARRAY_MAX(['abc', 'ABC', 'aBc', 'AbC']),
                'case3': ARRAY_MAX([true, false]),
                'case4': ARRAY_MAX([null, null]),
                'case5': ARRAY_MAX([12, 'abc', true, false, null, undefined])
            }",
            json!({"case1": 4, "case2": "abc", "case3": true, "case4": null, "case5": "abc"}),
        ),
        // ARRAY_MIN's.
        value(
            "SELECT VALUE {
                'case1': ARRAY_MIN([1, 2, 3, 4]),
                'case2': ARRAY_MIN(['abc', 'ABC', 'aBc', 'AbC']),
                'case3': ARRAY_MIN([true, false]),
                'case4': ARRAY_MIN([null, null]),
                'case5': ARRAY_MIN([12, 'abc', true, false, null, undefined])
            }",
            json!({"case1": 1, "case2": "ABC", "case3": false, "case4": null, "case5": null}),
        ),
        // ARRAY_SUM's.
        value(
            "SELECT VALUE {
                'case1': ARRAY_SUM([1, 2, 3, 4]),
                'case2': ARRAY_SUM([1, 2, 3, 4, undefined]),
                'case3': ARRAY_SUM(['abc', 'ABC', 'aBc', 'AbC']),
                'case4': ARRAY_SUM([12, 'abc', true, false, null, undefined])
            }",
            json!({"case1": 10, "case2": 10}),
        ),
        // ARRAY_MEDIAN's.
        value(
            "SELECT VALUE {
                'case1': ARRAY_MEDIAN([1, 2, 3, 4]),
                'case2': ARRAY_MEDIAN([1.0, 2.0, 3.3, 4.7, 7.8]),
                'case3': ARRAY_MEDIAN([1, -2.7, 3, -4, undefined]),
                'case4': ARRAY_MEDIAN(['abc', 'ABC', 'aBc', 'AbC']),
                'case5': ARRAY_MEDIAN([12, 'abc', true, false, null, undefined])
            }",
            json!({"case1": 2.5, "case2": 3.3, "case3": -0.850_000_000_000_000_1}),
        ),
        // Edge cases: empty arrays, nested arrays, non-arrays.
        value("SELECT VALUE ARRAY_SUM([])", json!(0)),
        value("SELECT VALUE ARRAY_AVG([])", json!(UNDEFINED)),
        value("SELECT VALUE ARRAY_MEDIAN([])", json!(UNDEFINED)),
        value("SELECT VALUE ARRAY_MAX([])", json!(UNDEFINED)),
        value("SELECT VALUE ARRAY_MIN([1, [2]])", json!(UNDEFINED)),
        value("SELECT VALUE ARRAY_MAX({a: 1})", json!(UNDEFINED)),
        value("SELECT VALUE ARRAY_SUM('123')", json!(UNDEFINED)),
        value("SELECT VALUE ARRAY_MEDIAN([5, 1, 3])", json!(3)),
        case(
            "SELECT VALUE ARRAY_MAX(c.scores) FROM c",
            json!([{"scores": [1, 5]}, {"scores": [7, 2]}, {"scores": "7"}]),
            json!([5, 7]),
        ),
    ]);
}

#[test]
fn set_difference_and_set_equal_match_the_documented_examples() {
    check_all(vec![
        // SETDIFFERENCE's documented example and result.
        value(
            "SELECT VALUE {
                'case1': SETDIFFERENCE([1, 2, 3], [1, 2, 6, 7]),
                'case2': SETDIFFERENCE([1, 2, 6, 7], [1, 2, 3]),
                'case3': SETDIFFERENCE([1, 2, 3, 4], [1, 2, 3, 4, 5, 6]),
                'case4': SETDIFFERENCE([], [1, 2, 3]),
                'case5': SETDIFFERENCE([1, 2, 3], []),
                'case6': SETDIFFERENCE([1, 1, 1, 1], [2, 3, 4])
            }",
            json!({"case1": [3], "case2": [6, 7], "case3": [], "case4": [], "case5": [1, 2, 3], "case6": [1]}),
        ),
        // SETEQUAL's.
        value(
            "SELECT VALUE {
                'case1': SETEQUAL([1, 2, 3], [1, 2, 3]),
                'case2': SETEQUAL([1, 2, 3], [3, 2, 1]),
                'case3': SETEQUAL([1, 2, 3, 3], [1, 2, 2, 3, 1, 2]),
                'case4': SETEQUAL([], [1, 2, 3]),
                'case5': SETEQUAL([1, true, 'abc'], [true, 1, 'abc']),
                'case6': SETEQUAL([1, 1, 1, 1], [2, 3, 4])
            }",
            json!({"case1": true, "case2": true, "case3": true, "case4": false, "case5": true, "case6": false}),
        ),
        value(
            "SELECT VALUE SETDIFFERENCE([{a: 1}, [2], 3], [[2]])",
            json!([{"a": 1}, 3]),
        ),
        value("SELECT VALUE SETEQUAL([{a: 1}], [{a: 1}])", json!(true)),
        value("SELECT VALUE SETEQUAL([1], '1')", json!(UNDEFINED)),
        value(
            "SELECT VALUE SETDIFFERENCE(undefined, [1])",
            json!(UNDEFINED),
        ),
    ]);
}

#[test]
fn string_lists_last_index_and_trim_sets_match_the_documented_examples() {
    check_all(vec![
        // CONTAINS_ALL_CI's documented example and result (case4 is undefined, so left out).
        value(
            "SELECT VALUE {
                'case1': CONTAINS_ALL_CI('Have a nice day!', 'have', 'nice', 'day!'),
                'case2': CONTAINS_ALL_CI('Have a nice day!', 'HAVE', 'NICE', 'DAY!'),
                'case3': CONTAINS_ALL_CI('Have a nice day!', 'had', 'nice', 'day!'),
                'case4': CONTAINS_ALL_CI('Have a nice day!', undefined, 'nice', 'day!'),
                'case5': CONTAINS_ALL_CI('Have a nice day!', undefined, 'had')
            }",
            json!({"case1": true, "case2": true, "case3": false, "case5": false}),
        ),
        // CONTAINS_ALL_CS's.
        value(
            "SELECT VALUE {
                'case1': CONTAINS_ALL_CS('Have a nice day!', 'have', 'nice', 'day!'),
                'case2': CONTAINS_ALL_CS('Have a nice day!', 'HAVE', 'NICE', 'DAY!'),
                'case3': CONTAINS_ALL_CS('Have a nice day!', 'had', 'nice', 'day!'),
                'case4': CONTAINS_ALL_CS('Have a nice day!', undefined, 'nice', 'day!'),
                'case5': CONTAINS_ALL_CS('Have a nice day!', undefined, 'had')
            }",
            json!({"case1": false, "case2": false, "case3": false, "case5": false}),
        ),
        // CONTAINS_ANY_CI's (case5 is undefined).
        value(
            "SELECT VALUE {
                'case1': CONTAINS_ANY_CI('Have a nice day!', 'have', 'nice', 'day!'),
                'case2': CONTAINS_ANY_CI('Have a nice day!', 'HAVE', 'NICE', 'DAY!'),
                'case3': CONTAINS_ANY_CI('Have a nice day!', 'had', 'nice', 'day!'),
                'case4': CONTAINS_ANY_CI('Have a nice day!', undefined, 'nice', 'day!'),
                'case5': CONTAINS_ANY_CI('Have a nice day!', undefined, 'had')
            }",
            json!({"case1": true, "case2": true, "case3": true, "case4": true}),
        ),
        // CONTAINS_ANY_CS's.
        value(
            "SELECT VALUE {
                'case1': CONTAINS_ANY_CS('Have a nice day!', 'have', 'nice', 'day!'),
                'case2': CONTAINS_ANY_CS('Have a nice day!', 'HAVE', 'NICE', 'DAY!'),
                'case3': CONTAINS_ANY_CS('Have a nice day!', 'had', 'nice', 'day!'),
                'case4': CONTAINS_ANY_CS('Have a nice day!', undefined, 'nice', 'day!'),
                'case5': CONTAINS_ANY_CS('Have a nice day!', undefined, 'had')
            }",
            json!({"case1": true, "case2": false, "case3": true, "case4": true}),
        ),
        value("SELECT VALUE CONTAINS_ANY_CS(42, 'a')", json!(UNDEFINED)),
        // LASTINDEXOF's documented example and result.
        value(
            "SELECT VALUE {
                'case1': LASTINDEXOF('abcdeabc', 'abc'),
                'case2': LASTINDEXOF('abcdeabc', 'abc', 6),
                'case3': LASTINDEXOF('abcdeabc', 'abc', 7),
                'case4': LASTINDEXOF('abcdeabc', 'fg')
            }",
            json!({"case1": 5, "case2": 0, "case3": 5, "case4": -1}),
        ),
        value("SELECT VALUE LASTINDEXOF('héllo héllo', 'é')", json!(7)),
        value("SELECT VALUE LASTINDEXOF('abc', 'a', -1)", json!(UNDEFINED)),
        value("SELECT VALUE LASTINDEXOF('abc', 1)", json!(UNDEFINED)),
        // LTRIM's documented example and result.
        value(
            "SELECT VALUE {
                whitespaceStart: LTRIM('  AdventureWorks'),
                whitespaceStartEnd: LTRIM('  AdventureWorks  '),
                whitespaceEnd: LTRIM('AdventureWorks  '),
                noWhitespace: LTRIM('AdventureWorks'),
                trimSuffix: LTRIM('AdventureWorks', 'Works'),
                trimPrefix: LTRIM('AdventureWorks', 'Adventure'),
                trimEntireTerm: LTRIM('AdventureWorks', 'AdventureWorks'),
                trimEmptyString: LTRIM('AdventureWorks', '')
            }",
            json!({
                "whitespaceStart": "AdventureWorks",
                "whitespaceStartEnd": "AdventureWorks  ",
                "whitespaceEnd": "AdventureWorks  ",
                "noWhitespace": "AdventureWorks",
                "trimSuffix": "AdventureWorks",
                "trimPrefix": "Works",
                "trimEntireTerm": "",
                "trimEmptyString": "AdventureWorks"
            }),
        ),
        value(
            "SELECT VALUE RTRIM('AdventureWorks', 'Works')",
            json!("Adventure"),
        ),
        value("SELECT VALUE TRIM('xxaxx', 'x')", json!("a")),
        value("SELECT VALUE TRIM('--a-b--', '-')", json!("a-b")),
        value("SELECT VALUE TRIM('abc', 1)", json!(UNDEFINED)),
        value("SELECT VALUE TRIM(1, 'a')", json!(UNDEFINED)),
    ]);
}

#[test]
fn date_time_bins_parts_and_offsets_match_the_documented_examples() {
    check_all(vec![
        // DATETIMEBIN's documented example and result.
        value(
            "SELECT VALUE {
                binDay: DATETIMEBIN('2021-01-08T18:35:00.0000000', 'dd'),
                binHour: DATETIMEBIN('2021-01-08T18:35:00.0000000', 'hh'),
                binSecond: DATETIMEBIN('2021-01-08T18:35:00.0000000', 'ss'),
                binFiveHours: DATETIMEBIN('2021-01-08T18:35:00.0000000', 'hh', 5),
                binSevenDaysUnixEpoch: DATETIMEBIN('2021-01-08T18:35:00.0000000', 'dd', 7),
                binSevenDaysWindowsEpoch: DATETIMEBIN('2021-01-08T18:35:00.0000000', 'dd', 7, '1601-01-01T00:00:00.0000000')
            }",
            json!({
                "binDay": "2021-01-08T00:00:00.0000000Z",
                "binHour": "2021-01-08T18:00:00.0000000Z",
                "binSecond": "2021-01-08T18:35:00.0000000Z",
                "binFiveHours": "2021-01-08T15:00:00.0000000Z",
                "binSevenDaysUnixEpoch": "2021-01-07T00:00:00.0000000Z",
                "binSevenDaysWindowsEpoch": "2021-01-04T00:00:00.0000000Z"
            }),
        ),
        value(
            "SELECT VALUE DATETIMEBIN('2021-01-08T18:35:00.1234567Z', 'ms', 250)",
            json!("2021-01-08T18:35:00.0000000Z"),
        ),
        value(
            "SELECT VALUE DATETIMEBIN('2021-01-08T18:35:00Z', 'mm')",
            json!(UNDEFINED),
        ),
        value(
            "SELECT VALUE DATETIMEBIN('2021-01-08T18:35:00Z', 'hh', 0)",
            json!(UNDEFINED),
        ),
        value(
            "SELECT VALUE DATETIMEBIN('2021-01-08T18:35:00Z', 'hh', 1.5)",
            json!(UNDEFINED),
        ),
        value("SELECT VALUE DATETIMEBIN('yesterday', 'hh')", json!(UNDEFINED)),
        // DATETIMEFROMPARTS's documented example and result.
        value(
            "SELECT VALUE {
                constructMinArguments: DATETIMEFROMPARTS(2017, 4, 20),
                constructMinEquivalent: DATETIMEFROMPARTS(2017, 4, 20, 0, 0, 0, 0),
                constructAllArguments: DATETIMEFROMPARTS(2017, 4, 20, 13, 15, 20, 3456789),
                constructPartialArguments: DATETIMEFROMPARTS(2017, 4, 20, 13, 15),
                constructInvalidArguments: DATETIMEFROMPARTS(-2000, -1, -1)
            }",
            json!({
                "constructMinArguments": "2017-04-20T00:00:00.0000000Z",
                "constructMinEquivalent": "2017-04-20T00:00:00.0000000Z",
                "constructAllArguments": "2017-04-20T13:15:20.3456789Z",
                "constructPartialArguments": "2017-04-20T13:15:00.0000000Z"
            }),
        ),
        value("SELECT VALUE DATETIMEFROMPARTS(2023, 2, 29)", json!(UNDEFINED)),
        value("SELECT VALUE DATETIMEFROMPARTS(2024, 2, 29, 24)", json!(UNDEFINED)),
        value("SELECT VALUE DATETIMEFROMPARTS('2024', 2, 1)", json!(UNDEFINED)),
        // DAY's documented example and result; MONTH and YEAR alike.
        value(
            "SELECT VALUE {
                'case1': DAY('2024-01-10'),
                'case2': DAY('2000-12-12T10:00:00'),
                'case3': DAY('1989-03-03T12:12:12.1234567Z')
            }",
            json!({"case1": 10, "case2": 12, "case3": 3}),
        ),
        value(
            "SELECT VALUE [MONTH('2000-12-12T10:00:00'), YEAR('1989-03-03T12:12:12.1234567Z')]",
            json!([12, 1989]),
        ),
        value("SELECT VALUE YEAR(2024)", json!(UNDEFINED)),
        // IS_DATETIME's documented example and result.
        value(
            "SELECT VALUE {
                'case1': IS_DATETIME('2024-12-12'),
                'case2': IS_DATETIME('2024-12-12Z'),
                'case3': IS_DATETIME('2024-12-12 20:21:25'),
                'case4': IS_DATETIME('2024-12-12T20:21:25Z'),
                'case5': IS_DATETIME('2024-12-12T20:21:25.123'),
                'case6': IS_DATETIME('2024-12-12 20:21:25.123Z'),
                'case7': IS_DATETIME('2024-12-12T20Z'),
                'case8': IS_DATETIME('2024-12-12 20:21:25.')
            }",
            json!({"case1": true, "case2": true, "case3": true, "case4": true,
                   "case5": true, "case6": true, "case7": false, "case8": false}),
        ),
        value("SELECT VALUE IS_DATETIME(20241212)", json!(false)),
        // DATETIMEPART's documented example, on a date-time without the trailing Z.
        value(
            "SELECT VALUE {
                getYear: DATETIMEPART('yyyy', '2016-05-29T08:30:00.1301617'),
                getMonth: DATETIMEPART('mm', '2016-05-29T08:30:00.1301617'),
                getDay: DATETIMEPART('dd', '2016-05-29T08:30:00.1301617'),
                getHour: DATETIMEPART('hh', '2016-05-29T08:30:00.1301617'),
                getMinute: DATETIMEPART('mi', '2016-05-29T08:30:00.1301617'),
                getSecond: DATETIMEPART('ss', '2016-05-29T08:30:00.1301617'),
                getMillisecond: DATETIMEPART('ms', '2016-05-29T08:30:00.1301617'),
                getMicrosecond: DATETIMEPART('mcs', '2016-05-29T08:30:00.1301617'),
                getNanosecond: DATETIMEPART('ns', '2016-05-29T08:30:00.1301617')
            }",
            json!({"getYear": 2016, "getMonth": 5, "getDay": 29, "getHour": 8, "getMinute": 30,
                   "getSecond": 0, "getMillisecond": 130, "getMicrosecond": 130_161,
                   "getNanosecond": 130_161_700}),
        ),
        // NOW and AGO on the test clock (2024-03-01T12:00:00Z); the documented examples use
        // another "now" but the same shifts.
        value(
            "SELECT VALUE {
                'case1': NOW(),
                'case2': NOW('yyyy', 1),
                'case3': NOW('yyyy', -1),
                'case4': NOW('ss', 30),
                'case5': NOW('ms', 4)
            }",
            json!({
                "case1": "2024-03-01T12:00:00.0000000Z",
                "case2": "2025-03-01T12:00:00.0000000Z",
                "case3": "2023-03-01T12:00:00.0000000Z",
                "case4": "2024-03-01T12:00:30.0000000Z",
                "case5": "2024-03-01T12:00:00.0040000Z"
            }),
        ),
        value(
            "SELECT VALUE {
                'case1': AGO('yyyy', 1),
                'case2': AGO('yyyy', -1),
                'case3': AGO('ss', 30),
                'case4': AGO('ms', 4)
            }",
            json!({
                "case1": "2023-03-01T12:00:00.0000000Z",
                "case2": "2025-03-01T12:00:00.0000000Z",
                "case3": "2024-03-01T11:59:30.0000000Z",
                "case4": "2024-03-01T11:59:59.9960000Z"
            }),
        ),
        value("SELECT VALUE AGO('fortnight', 1)", json!(UNDEFINED)),
        value("SELECT VALUE NOW('dd')", json!(UNDEFINED)),
    ]);
}

#[test]
fn document_id_reads_the_items_resource_id() {
    let products = json!([
        {"id": "5741047452", "name": "Joltage Kid's Vest", "_rid": "36ZyAPW+uN8NAAAAAAAAAA=="},
        {"id": "other", "_rid": "36ZyAPW+uN8BAAAAAAAAAA=="},
        {"id": "no-rid"}
    ]);
    check_all(vec![
        // DOCUMENTID's documented example: this _rid is document 13.
        case(
            "SELECT p.id, p._rid, DOCUMENTID(p) AS documentId FROM product p WHERE p.id = '5741047452'",
            products.clone(),
            json!([{"id": "5741047452", "_rid": "36ZyAPW+uN8NAAAAAAAAAA==", "documentId": 13}]),
        ),
        case(
            "SELECT p.id, DOCUMENTID(p) AS documentId FROM product p WHERE DOCUMENTID(p) >= 5 AND DOCUMENTID(p) <= 15",
            products.clone(),
            json!([{"id": "5741047452", "documentId": 13}]),
        ),
        case(
            "SELECT VALUE DOCUMENTID(p) FROM p",
            products,
            json!([13, 1]),
        ),
        // Tributary writes '-' for '/' in resource ids; both read the same.
        case(
            "SELECT VALUE DOCUMENTID({_rid: 'AAAAAYAAAAIqAAAAAAAAAA=='})",
            json!([]),
            json!([42]),
        ),
        case(
            "SELECT VALUE DOCUMENTID({_rid: 'AAAAAQ=='})",
            json!([]),
            json!([]),
        ),
        case("SELECT VALUE DOCUMENTID('x')", json!([]), json!([])),
    ]);
}

#[test]
fn spatial_predicates_match_the_documented_examples() {
    check_all(vec![
        // ST_WITHIN's documented example and result.
        value(
            "SELECT VALUE {
              isHeadquartersWithinCampus: ST_WITHIN({
                  'type': 'Point',
                  'coordinates': [-122.12824857332558, 47.6395516675712]
              }, {
                  'type': 'Polygon',
                  'coordinates': [ [
                      [-122.13236581015025, 47.64606476313813],
                      [-122.13221982500913, 47.633757091363975],
                      [-122.11840598103835, 47.641749416109235],
                      [-122.12061400629656, 47.64589264786028],
                      [-122.13236581015025, 47.64606476313813]
                  ] ]
              })
            }",
            json!({"isHeadquartersWithinCampus": true}),
        ),
        // ST_INTERSECTS's documented example and result.
        value(
            "SELECT VALUE {
              highWayAndCampusIntersect: ST_INTERSECTS({
                  'type': 'Polygon',
                  'coordinates': [ [
                      [-122.13693695285855, 47.64996065621003],
                      [-122.1351662656516, 47.64627863318731],
                      [-122.13488295569863, 47.646326350048696],
                      [-122.1366182291613, 47.650016321952904],
                      [-122.13693695285855, 47.64996065621003]
                  ] ]
              }, {
                  'type': 'Polygon',
                  'coordinates': [ [
                      [-122.14034847687708, 47.6494835188378],
                      [-122.14014779899375, 47.64625477474044],
                      [-122.13256925774829, 47.646207057813655],
                      [-122.13254564858545, 47.64941990019193],
                      [-122.14034847687708, 47.6494835188378]
                  ] ]
              })
            }",
            json!({"highWayAndCampusIntersect": true}),
        ),
    ]);
}

#[test]
fn spatial_predicates_handle_lines_holes_and_multipolygons() {
    check_all(vec![
        // A point in the ring but inside the hole is not in the polygon.
        value(
            "SELECT VALUE [
                ST_WITHIN({type: 'Point', coordinates: [0.2, 0.2]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], [[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6], [0.4, 0.4]]]}),
                ST_WITHIN({type: 'Point', coordinates: [0.5, 0.5]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], [[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6], [0.4, 0.4]]]}),
                ST_INTERSECTS({type: 'Point', coordinates: [0.5, 0.5]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], [[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6], [0.4, 0.4]]]}),
                ST_WITHIN({type: 'Point', coordinates: [1.5, 0.5]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]})
            ]",
            json!([true, false, false, false]),
        ),
        // A point on the boundary touches the polygon but is not within it.
        value(
            "SELECT VALUE [
                ST_INTERSECTS({type: 'Point', coordinates: [0, 0.5]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
                ST_WITHIN({type: 'Point', coordinates: [0, 0.5]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]})
            ]",
            json!([true, false]),
        ),
        // Lines: crossing, missing, touching at an end, and lying inside a polygon.
        value(
            "SELECT VALUE [
                ST_INTERSECTS({type: 'LineString', coordinates: [[-1, 0.5], [2, 0.5]]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
                ST_INTERSECTS({type: 'LineString', coordinates: [[-1, 2], [2, 2]]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
                ST_INTERSECTS({type: 'LineString', coordinates: [[0, 0], [1, 1]]}, {type: 'LineString', coordinates: [[0, 1], [1, 0]]}),
                ST_INTERSECTS({type: 'LineString', coordinates: [[0, 0], [1, 0]]}, {type: 'LineString', coordinates: [[1, 0], [2, 1]]}),
                ST_INTERSECTS({type: 'LineString', coordinates: [[0, 0], [1, 0]]}, {type: 'LineString', coordinates: [[0, 1], [1, 1]]}),
                ST_WITHIN({type: 'LineString', coordinates: [[0.1, 0.1], [0.9, 0.9]]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
                ST_WITHIN({type: 'LineString', coordinates: [[0.1, 0.1], [1.9, 0.9]]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
                ST_WITHIN({type: 'Point', coordinates: [0.5, 0]}, {type: 'LineString', coordinates: [[0, 0], [1, 0]]})
            ]",
            json!([true, false, true, true, false, true, false, true]),
        ),
        // Polygons: nested, overlapping, apart; a MultiPolygon holding a point in either part.
        value(
            "SELECT VALUE [
                ST_WITHIN({type: 'Polygon', coordinates: [[[0.1, 0.1], [0.3, 0.1], [0.3, 0.3], [0.1, 0.3], [0.1, 0.1]]]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
                ST_WITHIN({type: 'Polygon', coordinates: [[[0.5, 0.5], [1.5, 0.5], [1.5, 1.5], [0.5, 1.5], [0.5, 0.5]]]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
                ST_INTERSECTS({type: 'Polygon', coordinates: [[[0.5, 0.5], [1.5, 0.5], [1.5, 1.5], [0.5, 1.5], [0.5, 0.5]]]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
                ST_INTERSECTS({type: 'Polygon', coordinates: [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
                ST_WITHIN({type: 'Point', coordinates: [5.5, 5.5]}, {type: 'MultiPolygon', coordinates: [[[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]], [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]]]}),
                ST_WITHIN({type: 'Point', coordinates: [3, 3]}, {type: 'MultiPolygon', coordinates: [[[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]], [[[5, 5], [6, 5], [6, 6], [5, 6], [5, 5]]]]})
            ]",
            json!([true, false, true, false, true, false]),
        ),
        // The polygon is the smaller region its ring bounds, whichever way the ring turns; a
        // point on the far side of the globe is not inside it.
        value(
            "SELECT VALUE [
                ST_WITHIN({type: 'Point', coordinates: [0.5, 0.5]}, {type: 'Polygon', coordinates: [[[0, 0], [0, 1], [1, 1], [1, 0], [0, 0]]]}),
                ST_WITHIN({type: 'Point', coordinates: [-179.5, -0.5]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]})
            ]",
            json!([true, false]),
        ),
        // Invalid geometries and other values are undefined.
        value(
            "SELECT VALUE ST_WITHIN({type: 'Point', coordinates: [200, 0]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]})",
            json!(UNDEFINED),
        ),
        value("SELECT VALUE ST_INTERSECTS('x', 1)", json!(UNDEFINED)),
    ]);
}

#[test]
fn distances_reach_lines_and_polygons() {
    check_all(vec![
        // ST_DISTANCE's documented example: 3.345269817267368 and 1907.438421299902 km from the
        // reference point (Tributary's WGS-84 geodesic agrees to within a metre).
        case(
            "SELECT o.name, ABS(ST_DISTANCE(o.location, {
                'type': 'Point', 'coordinates': [-122.11758113953535, 47.66901087006131]
             }) / 1000 - o.documented) < 0.001 AS agrees
             FROM offices o WHERE o.category = 'business-offices'",
            json!([
                {"name": "Headquarters", "category": "business-offices", "documented": 3.345_269_817_267_368,
                 "location": {"type": "Point", "coordinates": [-122.128_268_223_046_72, 47.639_802_393_357_18]}},
                {"name": "Research and development", "category": "business-offices", "documented": 1_907.438_421_299_902,
                 "location": {"type": "Point", "coordinates": [-96.843_686_647_659_94, 46.812_977_943_146_63]}}
            ]),
            json!([{"name": "Headquarters", "agrees": true}, {"name": "Research and development", "agrees": true}]),
        ),
        // Inside a polygon, on a line, or touching: 0.
        value(
            "SELECT VALUE [
                ST_DISTANCE({type: 'Point', coordinates: [0.5, 0.5]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}),
                ST_DISTANCE({type: 'Point', coordinates: [0.5, 0]}, {type: 'LineString', coordinates: [[0, 0], [1, 0]]}),
                ST_DISTANCE({type: 'LineString', coordinates: [[-1, 0.5], [2, 0.5]]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]})
            ]",
            json!([0, 0, 0]),
        ),
        // From a point to the middle of an edge: the nearest point is inside the edge, not a
        // vertex. 0.1 degree of latitude at the equator is about 11,057 m.
        value(
            "SELECT VALUE ROUND(ST_DISTANCE({type: 'Point', coordinates: [0.5, -0.1]}, {type: 'LineString', coordinates: [[0, 0], [1, 0]]}))",
            json!(11_057),
        ),
        value(
            "SELECT VALUE ROUND(ST_DISTANCE({type: 'Point', coordinates: [0.5, -0.1]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}))",
            json!(11_057),
        ),
        // From inside a polygon's hole to the hole's edge: 0.1 degree of longitude.
        value(
            "SELECT VALUE ROUND(ST_DISTANCE({type: 'Point', coordinates: [0.5, 0.5]}, {type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], [[0.4, 0.4], [0.6, 0.4], [0.6, 0.6], [0.4, 0.6], [0.4, 0.4]]]}) / 100)",
            json!(111),
        ),
        value(
            "SELECT VALUE ST_DISTANCE({type: 'Point', coordinates: [0, 0]}, {type: 'Circle', coordinates: [0, 0]})",
            json!(UNDEFINED),
        ),
    ]);
}

#[test]
fn trigonometry_integers_ticks_and_geometry_checks() {
    check_all(vec![
        value(
            "SELECT VALUE [ROUND(DEGREES(ACOS(0))), ROUND(DEGREES(ASIN(1))), ROUND(DEGREES(ATAN(1)))]",
            json!([90, 90, 45]),
        ),
        value(
            "SELECT VALUE [COS(0), SIN(0), TAN(0), ROUND(COT(RADIANS(45)) * 1000)]",
            json!([1, 0, 0, 1000]),
        ),
        value(
            "SELECT VALUE [IntSub(7, 9), IntMul(6, 7), IntMod(7, 3), IntBitAnd(12, 10), IntBitOr(12, 10), IntBitXor(12, 10), IntBitNot(0), IntBitRightShift(256, 4)]",
            json!([-2, 42, 1, 8, 14, 6, -1, 16]),
        ),
        value(
            "SELECT VALUE IntMul(9223372036854775807, 2)",
            json!(UNDEFINED),
        ),
        value(
            "SELECT VALUE [GetCurrentDateTimeStatic(), GetCurrentTimestampStatic(), GetCurrentTicksStatic()]",
            json!([
                "2024-03-01T12:00:00.0000000Z",
                1_709_294_400_000_i64,
                17_092_944_000_000_000_i64
            ]),
        ),
        value(
            "SELECT VALUE DateTimeToTicks('2024-03-01T12:00:00.0000001Z')",
            json!(17_092_944_000_000_001_i64),
        ),
        value(
            "SELECT VALUE TicksToDateTime(17092944000000010)",
            json!("2024-03-01T12:00:00.0000010Z"),
        ),
        value(
            "SELECT VALUE ROUND(ST_AREA({type: 'Polygon', coordinates: [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}) / 1000000)",
            json!(12_309),
        ),
        value(
            "SELECT VALUE [ST_ISVALID({type: 'Point', coordinates: [31.9, -4.8]}), ST_ISVALID({type: 'Point', coordinates: [31.9, -94.8]})]",
            json!([true, false]),
        ),
        value(
            "SELECT VALUE ST_ISVALIDDETAILED({type: 'Point', coordinates: [31.9, -4.8]})",
            json!({"valid": true, "reason": "Valid Geometry"}),
        ),
    ]);
}
