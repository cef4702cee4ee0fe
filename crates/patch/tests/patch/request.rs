//! Parsing patch request bodies.

use serde_json::{Value, json};
use tributary_patch::{
    MAX_OPERATIONS, PatchError, PatchOperation, PatchRequest, SYSTEM_PROPERTIES,
};

fn parse_error(body: Value) -> String {
    PatchRequest::from_json(&body)
        .expect_err("an invalid body")
        .to_string()
}

#[test]
fn from_json_reads_the_sdk_body_with_condition() {
    let request = PatchRequest::from_json(&json!({
        "operations": [
            {"op": "add", "path": "/color", "value": "silver"},
            {"op": "set", "path": "/price", "value": 355.45},
            {"op": "replace", "path": "/name", "value": null},
            {"op": "remove", "path": "/used"},
            {"op": "incr", "path": "/inventory/quantity", "value": 10},
            {"op": "move", "from": "/color", "path": "/inventory/color"}
        ],
        "condition": "from products p where p.used = false"
    }))
    .expect("a valid body");
    assert_eq!(
        request,
        PatchRequest {
            operations: vec![
                PatchOperation::Add {
                    path: "/color".into(),
                    value: json!("silver")
                },
                PatchOperation::Set {
                    path: "/price".into(),
                    value: json!(355.45)
                },
                PatchOperation::Replace {
                    path: "/name".into(),
                    value: Value::Null
                },
                PatchOperation::Remove {
                    path: "/used".into()
                },
                PatchOperation::Increment {
                    path: "/inventory/quantity".into(),
                    value: 10.into()
                },
                PatchOperation::Move {
                    from: "/color".into(),
                    path: "/inventory/color".into()
                },
            ],
            condition: Some("from products p where p.used = false".into()),
        }
    );
    let names: Vec<_> = request
        .operations
        .iter()
        .map(PatchOperation::name)
        .collect();
    assert_eq!(names, ["add", "set", "replace", "remove", "incr", "move"]);
    assert_eq!(request.operations[5].path(), "/inventory/color");
}

#[test]
fn from_json_accepts_a_bare_array_and_a_null_condition() {
    let bare = PatchRequest::from_json(&json!([{"op": "remove", "path": "/a"}])).expect("valid");
    assert_eq!(bare.condition, None);
    assert_eq!(
        bare.operations,
        [PatchOperation::Remove { path: "/a".into() }]
    );
    let null_condition = PatchRequest::from_json(
        &json!({"operations": [{"op": "remove", "path": "/a"}], "condition": null}),
    )
    .expect("valid");
    assert_eq!(null_condition, bare);
}

#[test]
fn from_json_accepts_operation_names_in_any_case() {
    let request =
        PatchRequest::from_json(&json!([{"op": "Incr", "path": "/n", "value": 1}])).expect("valid");
    assert_eq!(request.operations[0].name(), "incr");
}

#[test]
fn from_json_rejects_bodies_of_the_wrong_shape() {
    let prefix = "Invalid patch request: check syntax of patch specification.";
    let cases = [
        (
            json!("add"),
            " expected an object with \"operations\", or an array of operations, got a string",
        ),
        (json!({}), " \"operations\" is missing"),
        (
            json!({"operations": {}}),
            " \"operations\" must be an array, got an object",
        ),
        (
            json!({"operations": [{"op": "remove", "path": "/a"}], "condition": 5}),
            " \"condition\" must be a string, got a number",
        ),
        (
            json!([5]),
            " Operation 0: expected an object with \"op\" and \"path\", got a number",
        ),
        (json!([{"path": "/a"}]), " Operation 0: \"op\" is missing"),
        (
            json!([{"op": 1, "path": "/a"}]),
            " Operation 0: \"op\" must be a string, got a number",
        ),
        (
            json!([{"op": "remove"}]),
            " Operation 0: \"path\" is missing",
        ),
        (
            json!([{"op": "copy", "from": "/a", "path": "/b"}]),
            " Operation 0: unknown \"op\" 'copy'; expected add, set, replace, remove, incr or move",
        ),
        (
            json!([{"op": "add", "path": "/a"}]),
            " Operation 0: \"value\" is missing; 'add' needs one",
        ),
        (
            json!([{"op": "set", "path": "/a"}]),
            " Operation 0: \"value\" is missing; 'set' needs one",
        ),
        (
            json!([{"op": "replace", "path": "/a"}]),
            " Operation 0: \"value\" is missing; 'replace' needs one",
        ),
        (
            json!([{"op": "remove", "path": "/a"}, {"op": "incr", "path": "/n", "value": "1"}]),
            " Operation 1: \"value\" of 'incr' must be a number, got a string",
        ),
        (
            json!([{"op": "move", "path": "/a"}]),
            " Operation 0: \"from\" is missing; 'move' needs one",
        ),
    ];
    for (body, reason) in cases {
        assert_eq!(
            parse_error(body.clone()),
            format!("{prefix}{reason}"),
            "{body}"
        );
    }
}

#[test]
fn from_json_limits_the_number_of_operations() {
    let operation = json!({"op": "incr", "path": "/n", "value": 1});
    let ten = Value::Array(vec![operation.clone(); MAX_OPERATIONS]);
    assert_eq!(
        PatchRequest::from_json(&ten)
            .expect("ten is allowed")
            .operations
            .len(),
        10
    );
    let eleven = Value::Array(vec![operation; MAX_OPERATIONS + 1]);
    assert_eq!(
        PatchRequest::from_json(&eleven),
        Err(PatchError::TooManyOperations { n_operations: 11 })
    );
    assert_eq!(
        parse_error(eleven),
        "The number of patch operations can't exceed 10; this request has 11."
    );
    assert_eq!(
        PatchRequest::from_json(&json!({"operations": []})),
        Err(PatchError::NoOperations)
    );
}

#[test]
fn from_json_refuses_every_system_property() {
    for property in SYSTEM_PROPERTIES {
        for body in [
            json!([{"op": "set", "path": format!("/{property}"), "value": 1}]),
            json!([{"op": "remove", "path": format!("/{property}/x")}]),
            json!([{"op": "move", "from": format!("/{property}"), "path": "/copy"}]),
        ] {
            assert_eq!(
                PatchRequest::from_json(&body),
                Err(PatchError::SystemProperty {
                    index: 0,
                    path: body[0]
                        .get("from")
                        .unwrap_or(&body[0]["path"])
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    property: (*property).to_owned(),
                }),
                "{body}"
            );
        }
    }
    let message = parse_error(json!([{"op": "set", "path": "/_etag", "value": "x"}]));
    assert_eq!(
        message,
        "Invalid patch request: Can't patch system property '_etag' (operation 0, path '/_etag')."
    );
}

#[test]
fn from_json_allows_system_property_names_below_the_root_and_ttl() {
    let request = PatchRequest::from_json(&json!([
        {"op": "set", "path": "/nested/_rid", "value": 1},
        {"op": "set", "path": "/ttl", "value": 60},
        {"op": "set", "path": "/ids", "value": []}
    ]));
    assert!(request.is_ok(), "{request:?}");
}

#[test]
fn from_json_rejects_invalid_paths() {
    let long_path = format!("/{}", "a".repeat(3000));
    let deep_path = "/a".repeat(129);
    let cases = [
        (
            "",
            "the document root can't be patched; name a property, e.g. '/name'",
        ),
        ("name", "it must start with '/'"),
        (
            "/a~2b",
            "'~' must be followed by '0' (for '~') or '1' (for '/')",
        ),
        (
            "/a~",
            "'~' must be followed by '0' (for '~') or '1' (for '/')",
        ),
        (
            long_path.as_str(),
            "it is 3001 bytes long; the limit is 2048",
        ),
        (deep_path.as_str(), "it has more than 128 segments"),
    ];
    for (path, reason) in cases {
        let error =
            PatchRequest::from_json(&json!([{"op": "remove", "path": path}])).expect_err(path);
        let PatchError::InvalidPath {
            index,
            reason: actual,
            ..
        } = error
        else {
            panic!("{path}: expected InvalidPath, got {error:?}");
        };
        assert_eq!((index, actual.as_str()), (0, reason), "{path}");
    }
}
