//! Property tests: any operations on any document either apply completely or
//! leave the document unchanged, and never panic.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use tributary_patch::{
    MAX_OPERATIONS, MAX_PATH_LEN, PatchOperation, PatchRequest, SYSTEM_PROPERTIES, apply,
};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e300f64..1e300).prop_map(Value::from),
        "[a-c]{0,3}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec(("[a-c_]{1,2}", inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn document() -> impl Strategy<Value = Value> {
    proptest::collection::vec(("[a-c]|id|_ts", json_value()), 0..5)
        .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>()))
}

fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        9 => proptest::collection::vec(
            prop_oneof![
                Just("a"), Just("b"), Just("c"), Just("_"), Just("0"), Just("1"), Just("2"),
                Just("-"), Just("01"), Just("~1"), Just("_rid"), Just("id"), Just(""),
            ],
            1..4,
        )
        .prop_map(|segments| format!("/{}", segments.join("/"))),
        1 => ".{0,12}",
    ]
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (-1e300f64..1e300).prop_filter_map("finite", Number::from_f64),
    ]
}

fn operation() -> impl Strategy<Value = PatchOperation> {
    prop_oneof![
        (path(), json_value()).prop_map(|(path, value)| PatchOperation::Add { path, value }),
        (path(), json_value()).prop_map(|(path, value)| PatchOperation::Set { path, value }),
        (path(), json_value()).prop_map(|(path, value)| PatchOperation::Replace { path, value }),
        path().prop_map(|path| PatchOperation::Remove { path }),
        (path(), number()).prop_map(|(path, value)| PatchOperation::Increment { path, value }),
        (path(), path()).prop_map(|(from, path)| PatchOperation::Move { from, path }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn failed_patch_leaves_document_unchanged(
        original in document(),
        operations in proptest::collection::vec(operation(), 0..12),
    ) {
        let mut patched = original.clone();
        if apply(&mut patched, &operations).is_err() {
            prop_assert_eq!(patched, original);
        }
    }

    #[test]
    fn successful_patch_equals_applying_operations_one_at_a_time(
        original in document(),
        operations in proptest::collection::vec(operation(), 1..5),
    ) {
        let mut all_at_once = original.clone();
        let mut one_at_a_time = original.clone();
        let stepwise: Result<(), _> = operations
            .iter()
            .try_for_each(|operation| apply(&mut one_at_a_time, std::slice::from_ref(operation)));
        let combined = apply(&mut all_at_once, &operations);
        prop_assert_eq!(combined.is_ok(), stepwise.is_ok());
        if combined.is_ok() {
            prop_assert_eq!(all_at_once, one_at_a_time);
        }
    }

    #[test]
    fn set_then_lookup_finds_the_value(
        original in document(),
        key in "[a-c]",
        value in json_value(),
    ) {
        let mut patched = original;
        let path = format!("/{key}");
        apply(&mut patched, &[PatchOperation::Set { path: path.clone(), value: value.clone() }])
            .expect("setting a top-level member always works");
        prop_assert_eq!(patched.pointer(&path), Some(&value));
    }
}

/// The body the SDKs send for `operations`: `{"operations": [{"op", "path", "value"|"from"}]}`.
fn request_body(operations: &[PatchOperation], condition: Option<&str>) -> Value {
    let operations: Vec<Value> = operations
        .iter()
        .map(|operation| {
            let mut fields = Map::new();
            fields.insert("op".into(), operation.name().into());
            fields.insert("path".into(), operation.path().into());
            match operation {
                PatchOperation::Add { value, .. }
                | PatchOperation::Set { value, .. }
                | PatchOperation::Replace { value, .. } => {
                    fields.insert("value".into(), value.clone());
                }
                PatchOperation::Increment { value, .. } => {
                    fields.insert("value".into(), Value::Number(value.clone()));
                }
                PatchOperation::Move { from, .. } => {
                    fields.insert("from".into(), from.clone().into());
                }
                PatchOperation::Remove { .. } => {}
            }
            Value::Object(fields)
        })
        .collect();
    let mut body = Map::new();
    body.insert("operations".into(), Value::Array(operations));
    if let Some(condition) = condition {
        body.insert("condition".into(), condition.into());
    }
    Value::Object(body)
}

/// What every accepted request satisfies: 1 to `MAX_OPERATIONS` operations, none on a system
/// property or the root, every path within the limits.
fn check_accepted(request: &PatchRequest) -> Result<(), TestCaseError> {
    prop_assert!((1..=MAX_OPERATIONS).contains(&request.operations.len()));
    for operation in &request.operations {
        let mut paths = vec![operation.path()];
        if let PatchOperation::Move { from, .. } = operation {
            paths.push(from);
        }
        for path in paths {
            prop_assert!(path.len() <= MAX_PATH_LEN, "{}", path);
            // "/" names the member whose name is empty; "" (the root) is refused.
            prop_assert!(path.starts_with('/'), "{}", path);
            let top = path[1..].split('/').next().unwrap_or_default();
            let top = top.replace("~1", "/").replace("~0", "~");
            prop_assert!(!SYSTEM_PROPERTIES.contains(&top.as_str()), "{}", path);
        }
    }
    Ok(())
}

/// Valid request bodies as the SDKs write them: the seeds the edits start from.
const SEED_BODIES: &[&str] = &[
    r#"{"operations":[{"op":"add","path":"/color","value":"silver"},{"op":"remove","path":"/used"}]}"#,
    r#"{"operations":[{"op":"set","path":"/price","value":355.45},{"op":"incr","path":"/inventory/quantity","value":10}],"condition":"from c where c.price > 1"}"#,
    r#"[{"op":"add","path":"/tags/-","value":["a",{"b":null}]},{"op":"move","from":"/color","path":"/inventory/color"}]"#,
    r#"{"operations":[{"op":"replace","path":"/a~1b/0","value":{"x":[1,2,3]}},{"op":"incr","path":"/n","value":-1.5e3}]}"#,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// A request body built from operations parses back to the same operations, or is refused
    /// with a typed error; an accepted request keeps the limits.
    #[test]
    fn request_bodies_parse_back_to_their_operations(
        operations in proptest::collection::vec(operation(), 0..12),
        condition in proptest::option::of("[a-z .=']{0,20}"),
    ) {
        let body = request_body(&operations, condition.as_deref());
        if let Ok(request) = PatchRequest::from_json(&body) {
            check_accepted(&request)?;
            prop_assert_eq!(&request.operations, &operations);
            prop_assert_eq!(request.condition, condition);
        }
    }

    /// Arbitrary JSON is a request that keeps the limits, or a typed error.
    #[test]
    fn arbitrary_json_is_a_valid_request_or_refused(body in json_value()) {
        if let Ok(request) = PatchRequest::from_json(&body) {
            check_accepted(&request)?;
        }
    }

    /// Valid bodies with bytes changed, cut, repeated, inserted or spliced in from another
    /// seed: what still parses as JSON is a request that keeps the limits and applies all or
    /// nothing, or a typed error.
    #[test]
    fn edited_request_bodies_parse_and_apply_all_or_nothing(
        seed in any::<usize>(),
        edits in tributary_mutate::edits(),
        original in document(),
    ) {
        let text = tributary_mutate::apply_to_text(SEED_BODIES[seed % SEED_BODIES.len()], &edits, SEED_BODIES);
        let Ok(body) = serde_json::from_str::<Value>(&text) else {
            return Ok(());
        };
        if let Ok(request) = PatchRequest::from_json(&body) {
            check_accepted(&request)?;
            let mut patched = original.clone();
            if apply(&mut patched, &request.operations).is_err() {
                prop_assert_eq!(patched, original);
            }
        }
    }
}
