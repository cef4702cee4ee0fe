//! User-defined functions: `udf.name(...)` parsed, named, printed, and called through the
//! caller's `UserFunctions` with evaluated arguments; without one, or from a computed
//! property, refused.

use std::cell::RefCell;
use std::time::SystemTime;

use serde_json::{Value, json};
use tributary_query::{
    ComputedProperties, Parameters, Query, QueryError, QueryPlan, UserFunctions,
    execute_with_functions,
};

/// `double(x)` is `2x`, `nothing()` is undefined, `broken()` fails; every call is recorded.
#[derive(Default)]
struct Recorded {
    calls: RefCell<Vec<(String, Vec<Value>)>>,
}

impl UserFunctions for Recorded {
    fn call(&self, name: &str, arguments: &[Value]) -> Result<Option<Value>, String> {
        self.calls
            .borrow_mut()
            .push((name.to_owned(), arguments.to_vec()));
        match name {
            "double" => Ok(Some(json!(arguments[0].as_f64().unwrap_or(0.0) * 2.0))),
            "nothing" => Ok(None),
            _ => Err(format!("{name} is broken")),
        }
    }
}

#[test]
fn user_functions_are_called_with_evaluated_arguments() {
    let query = Query::parse(
        "SELECT VALUE {d: udf.double(c.n + 1), n: udf.nothing(c.missing)} FROM c WHERE udf.double(c.n) > 2",
    )
    .unwrap();
    assert_eq!(query.user_function_names(), ["double", "nothing"]);
    let documents = [json!({"n": 1}), json!({"n": 2})];
    let functions = Recorded::default();
    let rows = execute_with_functions(
        &query,
        &Parameters::new(),
        documents.iter(),
        SystemTime::now(),
        &functions,
    )
    .unwrap();
    assert_eq!(
        rows,
        [json!({"d": 6.0})],
        "an undefined result leaves the property out"
    );
    assert!(
        functions
            .calls
            .borrow()
            .contains(&("nothing".to_owned(), vec![Value::Null])),
        "an undefined argument is passed as null"
    );
    let error = execute_with_functions(
        &Query::parse("SELECT VALUE udf.broken() FROM c").unwrap(),
        &Parameters::new(),
        documents.iter(),
        SystemTime::now(),
        &functions,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the user-defined function 'udf.broken' failed: broken is broken"
    );
}

#[test]
fn user_functions_need_a_caller_that_supplies_them() {
    let query = Query::parse("SELECT VALUE udf.double(c.n) FROM c").unwrap();
    let error =
        tributary_query::execute(&query, &Parameters::new(), [&json!({"n": 1})]).unwrap_err();
    assert!(matches!(error, QueryError::UnknownFunction(name) if name == "udf.double"));
    let computed = ComputedProperties::new(&[(
        "twice".to_owned(),
        "SELECT VALUE udf.double(c.n) FROM c".to_owned(),
    )]);
    assert!(
        computed
            .unwrap_err()
            .to_string()
            .contains("cannot call user-defined functions")
    );
}

#[test]
fn a_filter_calling_a_user_function_gets_no_prefilter() {
    let query = Query::parse("SELECT * FROM c WHERE udf.double(c.n) > 2").unwrap();
    assert!(
        query.prefilter().is_none(),
        "the function runs on whole items only"
    );
}

#[test]
fn plans_keep_user_function_calls_in_their_rewritten_queries() {
    let plan = QueryPlan::new(
        "SELECT * FROM c ORDER BY udf.double(c.n)",
        &Parameters::new(),
    )
    .unwrap();
    assert!(
        plan.rewritten_query.contains("udf.double(c.n)"),
        "{}",
        plan.rewritten_query
    );
}
