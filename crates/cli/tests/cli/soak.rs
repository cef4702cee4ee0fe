//! `bench soak`, cheaply: two seconds of 20 connections against an in-process server, and one
//! second of 10 against a running one. Each must see no errors and report every kind of
//! request in the JSON shape scripts read; no speed is asserted.

use serde_json::Value;

use crate::harness::{run, tributary};
use crate::remote::TestServer;

/// The kinds of request every report lists, in order.
const KINDS: [&str; 5] = [
    "point_read",
    "upsert",
    "partition_query",
    "cross_partition_query",
    "feed_page",
];

/// Asserts the report saw no errors and lists every kind with consistent counts; returns the
/// successful requests.
#[track_caller]
fn assert_no_errors(report: &Value) -> u64 {
    assert_eq!(report["errors"], 0, "{report:#}");
    assert_eq!(
        report["error_examples"],
        Value::Array(Vec::new()),
        "{report:#}"
    );
    let operations = report["operations"].as_array().expect("operations");
    let kinds: Vec<&str> = operations
        .iter()
        .map(|operation| operation["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, KINDS, "{report:#}");
    let mut total = 0;
    for operation in operations {
        assert_eq!(operation["errors"], serde_json::json!({}), "{report:#}");
        let count = operation["count"].as_u64().expect("count");
        assert_eq!(
            operation["latency"]["n"].as_u64(),
            Some(count),
            "{report:#}"
        );
        total += count;
    }
    assert_eq!(report["all"]["n"].as_u64(), Some(total), "{report:#}");
    assert!(total > 0, "{report:#}");
    total
}

#[test]
fn a_short_soak_has_no_errors_and_reports_memory_and_open_files() {
    let report = run(tributary(&[
        "bench",
        "soak",
        "--connections",
        "20",
        "--duration",
        "2",
        "--items",
        "200",
        "--durability",
        "relaxed",
        "--json",
    ]))
    .json();
    assert_no_errors(&report);
    assert_eq!(report["parameters"]["n_connections"], 20, "{report:#}");
    if cfg!(target_os = "linux") {
        for gauge in ["rss_mb", "open_fds"] {
            let figure = |at: &str| report[gauge][at].as_f64().expect(gauge);
            assert!(figure("peak") >= figure("start"), "{report:#}");
            assert!(figure("peak") >= figure("end"), "{report:#}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_soak_of_a_running_server_reports_no_memory_and_removes_its_database() {
    let server = TestServer::start().await;
    let (endpoint, key) = (server.endpoint.clone(), server.key.clone());
    let output = tokio::task::spawn_blocking(move || {
        run(tributary(&[
            "bench",
            "soak",
            "--endpoint",
            &endpoint,
            "--key",
            &key,
            "--connections",
            "10",
            "--duration",
            "1",
            "--items",
            "100",
            "--json",
        ]))
    })
    .await
    .expect("the soak runs");
    let report = output.json();
    assert_no_errors(&report);
    assert!(report["rss_mb"].is_null(), "{report:#}");
    assert!(report["open_fds"].is_null(), "{report:#}");
    assert_eq!(
        report["parameters"]["endpoint"],
        serde_json::json!({ "url": server.endpoint }),
        "the key is never reported: {report:#}"
    );
    assert!(server.store.list_databases().is_empty());
}
