//! Runs each benchmark with tiny sizes: the code paths work and the reports are complete.
//! Nothing here asserts a speed.

mod functions;
mod processor;
mod server;
mod store;

/// Every number in a JSON report that must be measured, by key.
fn positive_number(report: &serde_json::Value, key: &str) -> f64 {
    let value = report
        .get(key)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("the report has no number '{key}': {report}"));
    assert!(value > 0.0, "'{key}' is {value}, not positive");
    value
}
