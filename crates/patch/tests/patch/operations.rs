//! Each operation's semantics and errors, as tables of
//! (document, operations, expected document or error message).

use serde_json::{Value, json};
use tributary_patch::{PatchError, PatchOperation, PatchRequest, apply};

/// Parses `operations` as a request body, applies it to `document`, and
/// returns the patched document or the error message. On error, also checks
/// that the document was left as it was.
fn run(document: &Value, operations: Value) -> Result<Value, String> {
    let request = PatchRequest::from_json(&operations).map_err(|error| error.to_string())?;
    let mut patched = document.clone();
    match apply(&mut patched, &request.operations) {
        Ok(()) => Ok(patched),
        Err(error) => {
            assert_eq!(&patched, document, "a failed patch changed the document");
            Err(error.to_string())
        }
    }
}

/// Runs each case: (name, document, operations, expected).
fn check(cases: Vec<(&str, Value, Value, Result<Value, &str>)>) {
    for (name, document, operations, expected) in cases {
        let expected = expected.map_err(str::to_owned);
        assert_eq!(run(&document, operations), expected, "case: {name}");
    }
}

#[test]
fn add_creates_replaces_and_inserts() {
    check(vec![
        (
            "new member",
            json!({"a": 1}),
            json!([{"op": "add", "path": "/b", "value": 2}]),
            Ok(json!({"a": 1, "b": 2})),
        ),
        (
            "existing member is replaced",
            json!({"a": 1}),
            json!([{"op": "add", "path": "/a", "value": {"x": null}}]),
            Ok(json!({"a": {"x": null}})),
        ),
        (
            "nested member",
            json!({"o": {"p": 1}}),
            json!([{"op": "add", "path": "/o/q", "value": null}]),
            Ok(json!({"o": {"p": 1, "q": null}})),
        ),
        (
            "insert at the front shifts elements",
            json!({"arr": [1, 2]}),
            json!([{"op": "add", "path": "/arr/0", "value": 0}]),
            Ok(json!({"arr": [0, 1, 2]})),
        ),
        (
            "insert in the middle",
            json!({"arr": [1, 3]}),
            json!([{"op": "add", "path": "/arr/1", "value": 2}]),
            Ok(json!({"arr": [1, 2, 3]})),
        ),
        (
            "index equal to the length appends",
            json!({"arr": [1, 2]}),
            json!([{"op": "add", "path": "/arr/2", "value": 3}]),
            Ok(json!({"arr": [1, 2, 3]})),
        ),
        (
            "dash appends",
            json!({"arr": []}),
            json!([{"op": "add", "path": "/arr/-", "value": "x"}]),
            Ok(json!({"arr": ["x"]})),
        ),
        (
            "escaped segments",
            json!({}),
            json!([
                {"op": "add", "path": "/a~1b", "value": 1},
                {"op": "add", "path": "/c~0d", "value": 2}
            ]),
            Ok(json!({"a/b": 1, "c~d": 2})),
        ),
        (
            "into an element of a nested array",
            json!({"rows": [{"cells": [1]}]}),
            json!([{"op": "add", "path": "/rows/0/cells/-", "value": 2}]),
            Ok(json!({"rows": [{"cells": [1, 2]}]})),
        ),
        (
            "index past the length",
            json!({"arr": [1, 2]}),
            json!([{"op": "add", "path": "/arr/3", "value": 4}]),
            Err(
                "For Operation(0): Index(3) to operate on is out of array bounds: the array has 2 elements (path '/arr/3').",
            ),
        ),
        (
            "index with a leading zero",
            json!({"arr": [1, 2]}),
            json!([{"op": "add", "path": "/arr/01", "value": 4}]),
            Err(
                "For Operation(0): '01' in path '/arr/01' is not a valid array index: it has a leading zero or is too large.",
            ),
        ),
        (
            "index that is not a number",
            json!({"arr": [1, 2]}),
            json!([{"op": "add", "path": "/arr/x", "value": 4}]),
            Err(
                "For Operation(0): 'x' in path '/arr/x' is not a valid array index: expected a non-negative integer, or '-' to append.",
            ),
        ),
        (
            "missing parent",
            json!({"o": {}}),
            json!([{"op": "add", "path": "/o/missing/x", "value": 1}]),
            Err(
                "For Operation(0): add operation can only create a child object of an existing node (array or object) and can't create path recursively, no path found beyond: '/o' (path '/o/missing/x').",
            ),
        ),
        (
            "missing top-level parent",
            json!({}),
            json!([{"op": "add", "path": "/a/b", "value": 1}]),
            Err(
                "For Operation(0): add operation can only create a child object of an existing node (array or object) and can't create path recursively, no path found beyond: '' (path '/a/b').",
            ),
        ),
        (
            "parent is a string",
            json!({"name": "bike"}),
            json!([{"op": "add", "path": "/name/x", "value": 1}]),
            Err(
                "For Operation(0): add operation can only create a child object of an existing node (array or object) and can't create path recursively, no path found beyond: '/name' (path '/name/x').",
            ),
        ),
    ]);
}

#[test]
fn set_creates_members_and_overwrites_existing_elements() {
    check(vec![
        (
            "new member",
            json!({}),
            json!([{"op": "set", "path": "/a", "value": [1]}]),
            Ok(json!({"a": [1]})),
        ),
        (
            "existing member keeps its position",
            json!({"a": 1, "b": 2}),
            json!([{"op": "set", "path": "/a", "value": 9}]),
            Ok(json!({"a": 9, "b": 2})),
        ),
        (
            "array index is overwritten, not inserted",
            json!({"arr": [1, 2, 3]}),
            json!([{"op": "set", "path": "/arr/1", "value": 9}]),
            Ok(json!({"arr": [1, 9, 3]})),
        ),
        (
            "array index equal to the length",
            json!({"arr": [1]}),
            json!([{"op": "set", "path": "/arr/1", "value": 9}]),
            Err(
                "For Operation(0): Index(1) to operate on is out of array bounds: the array has 1 elements (path '/arr/1').",
            ),
        ),
        (
            "dash",
            json!({"arr": [1]}),
            json!([{"op": "set", "path": "/arr/-", "value": 9}]),
            Err(
                "For Operation(0): '-' in path '/arr/-' is not a valid array index: '-' (past the end) only works with add and move.",
            ),
        ),
        (
            "missing parent",
            json!({}),
            json!([{"op": "set", "path": "/a/b", "value": 1}]),
            Err(
                "For Operation(0): set operation can only create a child object of an existing node (array or object) and can't create path recursively, no path found beyond: '' (path '/a/b').",
            ),
        ),
    ]);
}

#[test]
fn replace_requires_the_target_to_exist() {
    check(vec![
        (
            "existing member",
            json!({"price": 455.95}),
            json!([{"op": "replace", "path": "/price", "value": 355.45}]),
            Ok(json!({"price": 355.45})),
        ),
        (
            "existing element",
            json!({"arr": ["a", "b"]}),
            json!([{"op": "replace", "path": "/arr/0", "value": "z"}]),
            Ok(json!({"arr": ["z", "b"]})),
        ),
        (
            "missing member",
            json!({"price": 1}),
            json!([{"op": "replace", "path": "/priority", "value": "High"}]),
            Err("For Operation(0): Node(/priority) to be replaced is absent."),
        ),
        (
            "element past the end",
            json!({"arr": []}),
            json!([{"op": "replace", "path": "/arr/0", "value": 1}]),
            Err(
                "For Operation(0): Index(0) to operate on is out of array bounds: the array has 0 elements (path '/arr/0').",
            ),
        ),
    ]);
}

#[test]
fn remove_requires_the_target_to_exist() {
    check(vec![
        (
            "member",
            json!({"a": 1, "used": false}),
            json!([{"op": "remove", "path": "/used"}]),
            Ok(json!({"a": 1})),
        ),
        (
            "element shifts the rest down",
            json!({"arr": [1, 2, 3]}),
            json!([{"op": "remove", "path": "/arr/0"}]),
            Ok(json!({"arr": [2, 3]})),
        ),
        (
            "a value is ignored",
            json!({"a": 1}),
            json!([{"op": "remove", "path": "/a", "value": 5}]),
            Ok(json!({})),
        ),
        (
            "missing member",
            json!({}),
            json!([{"op": "remove", "path": "/a"}]),
            Err("For Operation(0): Node(/a) to be removed is absent."),
        ),
        (
            "index equal to the length",
            json!({"arr": [1]}),
            json!([{"op": "remove", "path": "/arr/1"}]),
            Err(
                "For Operation(0): Index(1) to operate on is out of array bounds: the array has 1 elements (path '/arr/1').",
            ),
        ),
        (
            "removed earlier in the same request",
            json!({"a": 1}),
            json!([{"op": "remove", "path": "/a"}, {"op": "remove", "path": "/a"}]),
            Err("For Operation(1): Node(/a) to be removed is absent."),
        ),
    ]);
}

#[test]
fn member_order_is_kept_by_set_replace_add_and_remove() {
    let patched = run(
        &json!({"a": 1, "b": 2, "c": 3, "d": 4}),
        json!([
            {"op": "remove", "path": "/a"},
            {"op": "set", "path": "/b", "value": 20},
            {"op": "replace", "path": "/c", "value": 30},
            {"op": "add", "path": "/d", "value": 40},
            {"op": "add", "path": "/e", "value": 50}
        ]),
    )
    .expect("a valid patch");
    assert_eq!(patched.to_string(), r#"{"b":20,"c":30,"d":40,"e":50}"#);
}

#[test]
fn incr_adds_or_creates_numbers() {
    check(vec![
        (
            "integer plus integer",
            json!({"inventory": {"quantity": 15}}),
            json!([{"op": "incr", "path": "/inventory/quantity", "value": 10}]),
            Ok(json!({"inventory": {"quantity": 25}})),
        ),
        (
            "negative increment",
            json!({"n": 1}),
            json!([{"op": "incr", "path": "/n", "value": -3}]),
            Ok(json!({"n": -2})),
        ),
        (
            "integer plus float",
            json!({"n": 1}),
            json!([{"op": "incr", "path": "/n", "value": 1.5}]),
            Ok(json!({"n": 2.5})),
        ),
        (
            "float plus integer",
            json!({"price": 455.5}),
            json!([{"op": "incr", "path": "/price", "value": 50}]),
            Ok(json!({"price": 505.5})),
        ),
        (
            "missing member is created with the increment",
            json!({}),
            json!([{"op": "incr", "path": "/visits", "value": 1}]),
            Ok(json!({"visits": 1})),
        ),
        (
            "array element",
            json!({"counts": [1, 2]}),
            json!([{"op": "incr", "path": "/counts/1", "value": 5}]),
            Ok(json!({"counts": [1, 7]})),
        ),
        (
            "past i64 into u64",
            json!({"n": i64::MAX}),
            json!([{"op": "incr", "path": "/n", "value": 1}]),
            Ok(json!({"n": 9_223_372_036_854_775_808_u64})),
        ),
        (
            "not a number",
            json!({"name": "bike"}),
            json!([{"op": "incr", "path": "/name", "value": 1}]),
            Err("For Operation(0): Node(/name) isn't a number."),
        ),
        (
            "null is not a number",
            json!({"n": null}),
            json!([{"op": "incr", "path": "/n", "value": 1}]),
            Err("For Operation(0): Node(/n) isn't a number."),
        ),
        (
            "integer overflow",
            json!({"n": u64::MAX}),
            json!([{"op": "incr", "path": "/n", "value": 1}]),
            Err("For Operation(0): incrementing Node(/n) gives a number out of range."),
        ),
        (
            "integer underflow",
            json!({"n": i64::MIN}),
            json!([{"op": "incr", "path": "/n", "value": -1}]),
            Err("For Operation(0): incrementing Node(/n) gives a number out of range."),
        ),
        (
            "float overflow",
            json!({"n": 1e308}),
            json!([{"op": "incr", "path": "/n", "value": 1e308}]),
            Err("For Operation(0): incrementing Node(/n) gives a number out of range."),
        ),
        (
            "array element past the end",
            json!({"counts": []}),
            json!([{"op": "incr", "path": "/counts/0", "value": 1}]),
            Err(
                "For Operation(0): Index(0) to operate on is out of array bounds: the array has 0 elements (path '/counts/0').",
            ),
        ),
    ]);
}

#[test]
fn incr_keeps_integers_integral_and_floats_floating() {
    let patched = run(
        &json!({"i": 1, "f": 1.0, "g": 1}),
        json!([
            {"op": "incr", "path": "/i", "value": 2},
            {"op": "incr", "path": "/f", "value": 2},
            {"op": "incr", "path": "/g", "value": 2.0}
        ]),
    )
    .expect("a valid patch");
    assert_eq!(patched.to_string(), r#"{"i":3,"f":3.0,"g":3.0}"#);
}

#[test]
fn move_removes_then_adds() {
    check(vec![
        (
            "rename",
            json!({"a": 1, "b": 2}),
            json!([{"op": "move", "from": "/a", "path": "/c"}]),
            Ok(json!({"b": 2, "c": 1})),
        ),
        (
            "into an existing object",
            json!({"color": "silver", "inventory": {"quantity": 25}}),
            json!([{"op": "move", "from": "/color", "path": "/inventory/color"}]),
            Ok(json!({"inventory": {"quantity": 25, "color": "silver"}})),
        ),
        (
            "replaces an existing target",
            json!({"a": 1, "b": 2}),
            json!([{"op": "move", "from": "/a", "path": "/b"}]),
            Ok(json!({"b": 1})),
        ),
        (
            "array element to a member",
            json!({"arr": ["x", "y"]}),
            json!([{"op": "move", "from": "/arr/0", "path": "/first"}]),
            Ok(json!({"arr": ["y"], "first": "x"})),
        ),
        (
            "within an array, the target index counts after the removal",
            json!({"arr": ["a", "b", "c"]}),
            json!([{"op": "move", "from": "/arr/0", "path": "/arr/2"}]),
            Ok(json!({"arr": ["b", "c", "a"]})),
        ),
        (
            "onto itself",
            json!({"a": 1, "b": 2}),
            json!([{"op": "move", "from": "/a", "path": "/a"}]),
            Ok(json!({"a": 1, "b": 2})),
        ),
        (
            "a parent up into its own place",
            json!({"o": {"p": {"q": 1}}}),
            json!([{"op": "move", "from": "/o/p", "path": "/o"}]),
            Ok(json!({"o": {"q": 1}})),
        ),
        (
            "missing source",
            json!({}),
            json!([{"op": "move", "from": "/missing", "path": "/a"}]),
            Err("For Operation(0): Node(/missing) to be moved is absent."),
        ),
        (
            "missing source onto itself",
            json!({}),
            json!([{"op": "move", "from": "/missing", "path": "/missing"}]),
            Err("For Operation(0): Node(/missing) to be moved is absent."),
        ),
        (
            "into its own child",
            json!({"o": {"p": 1}}),
            json!([{"op": "move", "from": "/o", "path": "/o/p/q"}]),
            Err("For Operation(0): 'path' /o/p/q can't be a JSON child of the 'from' location /o."),
        ),
        (
            "destination parent missing",
            json!({"a": 1}),
            json!([{"op": "move", "from": "/a", "path": "/x/y"}]),
            Err(
                "For Operation(0): move operation can only create a child object of an existing node (array or object) and can't create path recursively, no path found beyond: '' (path '/x/y').",
            ),
        ),
    ]);
}

#[test]
fn operations_apply_in_order_and_all_or_nothing() {
    check(vec![
        (
            "later operations see earlier ones",
            json!({}),
            json!([
                {"op": "add", "path": "/o", "value": {}},
                {"op": "add", "path": "/o/tags", "value": []},
                {"op": "add", "path": "/o/tags/-", "value": "x"},
                {"op": "replace", "path": "/o/tags/0", "value": "y"},
                {"op": "incr", "path": "/o/n", "value": 1},
                {"op": "incr", "path": "/o/n", "value": 1}
            ]),
            Ok(json!({"o": {"tags": ["y"], "n": 2}})),
        ),
        (
            "a failing third operation undoes the first two",
            json!({"a": 1}),
            json!([
                {"op": "set", "path": "/a", "value": 2},
                {"op": "add", "path": "/b", "value": 3},
                {"op": "replace", "path": "/c", "value": 4}
            ]),
            Err("For Operation(2): Node(/c) to be replaced is absent."),
        ),
    ]);
}

#[test]
fn apply_checks_what_from_json_checks() {
    let mut document = json!({"id": "1", "_ts": 5});
    let cases: Vec<(Vec<PatchOperation>, PatchError)> = vec![
        (vec![], PatchError::NoOperations),
        (
            vec![PatchOperation::Remove { path: "/a".into() }; 11],
            PatchError::TooManyOperations { n_operations: 11 },
        ),
        (
            vec![PatchOperation::Set {
                path: "/id".into(),
                value: json!("2"),
            }],
            PatchError::SystemProperty {
                index: 0,
                path: "/id".into(),
                property: "id".into(),
            },
        ),
        (
            vec![
                PatchOperation::Add {
                    path: "/x".into(),
                    value: json!(1),
                },
                PatchOperation::Move {
                    from: "/_ts".into(),
                    path: "/ts".into(),
                },
            ],
            PatchError::SystemProperty {
                index: 1,
                path: "/_ts".into(),
                property: "_ts".into(),
            },
        ),
        (
            vec![PatchOperation::Remove { path: "a".into() }],
            PatchError::InvalidPath {
                index: 0,
                path: "a".into(),
                reason: "it must start with '/'".into(),
            },
        ),
    ];
    for (operations, expected) in cases {
        assert_eq!(apply(&mut document, &operations), Err(expected));
        assert_eq!(document, json!({"id": "1", "_ts": 5}));
    }
}
