//! Property tests: any operations on any document either apply completely or
//! leave the document unchanged, and never panic.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use tributary_patch::{PatchOperation, apply};

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
