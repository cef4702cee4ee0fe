//! Helpers shared by the table-driven tests.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use tributary_query::{Parameters, Query, QueryError, execute_at};

/// One table row: a query, its parameters (the wire array), the input documents and the
/// expected results in order.
pub struct Case {
    pub query: &'static str,
    pub parameters: Value,
    pub documents: Value,
    pub expected: Value,
}

/// A case without parameters.
pub fn case(query: &'static str, documents: Value, expected: Value) -> Case {
    Case {
        query,
        parameters: json!([]),
        documents,
        expected,
    }
}

/// A case with parameters.
pub fn case_with(
    query: &'static str,
    parameters: Value,
    documents: Value,
    expected: Value,
) -> Case {
    Case {
        query,
        parameters,
        documents,
        expected,
    }
}

/// The instant the date functions see in tests: 2024-03-01T12:00:00Z.
pub fn test_now() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_709_294_400)
}

/// Parses and runs a query text over documents.
pub fn run(query: &str, parameters: &Value, documents: &Value) -> Result<Vec<Value>, QueryError> {
    let query = Query::parse(query)?;
    let parameters = Parameters::from_json(parameters)?;
    let documents = documents.as_array().cloned().unwrap_or_default();
    execute_at(&query, &parameters, &documents, test_now())
}

/// Runs every case and reports all failures together.
pub fn check_all(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for case in &cases {
        match run(case.query, &case.parameters, &case.documents) {
            Ok(rows) => {
                let actual = Value::Array(rows);
                if actual != case.expected {
                    failures.push(format!(
                        "{}\n    expected {}\n    actual   {}",
                        case.query, case.expected, actual
                    ));
                }
            }
            Err(error) => failures.push(format!("{}\n    error: {error}", case.query)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Families with nested arrays, used by several tables.
pub fn families() -> Value {
    json!([
        {
            "id": "AndersenFamily",
            "lastName": "Andersen",
            "parents": [{"firstName": "Thomas"}, {"firstName": "Mary Kay"}],
            "children": [{"firstName": "Henriette", "grade": 5, "pets": [{"givenName": "Fluffy"}]}],
            "address": {"state": "WA", "county": "King", "city": "Seattle"},
            "creationDate": 1431620472,
            "isRegistered": true
        },
        {
            "id": "WakefieldFamily",
            "parents": [{"familyName": "Wakefield", "givenName": "Robin"}, {"familyName": "Miller", "givenName": "Ben"}],
            "children": [
                {"familyName": "Merriam", "givenName": "Jesse", "grade": 1,
                 "pets": [{"givenName": "Goofy"}, {"givenName": "Shadow"}]},
                {"familyName": "Miller", "givenName": "Lisa", "grade": 8}
            ],
            "address": {"state": "NY", "county": "Manhattan", "city": "NY"},
            "creationDate": 1431620462,
            "isRegistered": false
        }
    ])
}
