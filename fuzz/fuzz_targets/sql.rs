//! The SQL parser and evaluator: any text parses (as a query, a condition and a feed filter)
//! to a query that runs over a few documents without panicking, or to an error whose byte
//! position lies inside the text.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use tributary_query::{Parameters, Query, QueryError, execute};

fn documents() -> &'static [Value] {
    static DOCUMENTS: OnceLock<Vec<Value>> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        vec![
            json!({"id": "1", "a": 1, "tags": ["x", "y"], "s": "text", "n": 2.5}),
            json!({"id": "2", "a": "1", "tags": [], "nested": {"a": [1, {"b": null}]}}),
            json!({"id": "3", "a": null, "s": "2025-07-01T12:00:00.0000000Z"}),
            json!({}),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parameters = Parameters::new();
    parameters.insert("@p", json!(1));
    for parsed in [
        Query::parse(text),
        Query::parse_condition(text),
        Query::parse_filter(text),
    ] {
        match parsed {
            Ok(query) => {
                let _ = execute(&query, &parameters, documents());
            }
            Err(
                QueryError::Syntax { position, .. }
                | QueryError::NestingTooDeep { position, .. }
                | QueryError::UnresolvedIdentifier { position, .. },
            ) => assert!(position <= text.len(), "position {position} in {text:?}"),
            Err(_) => {}
        }
    }
});
