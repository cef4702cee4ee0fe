//! What queries read through the partition-key index. A `SELECT VALUE COUNT(1)` (or of `c`,
//! `c.id`, a constant) over a partition key, a feed range or the whole container, with no
//! `WHERE` or one that only pins the partition key, counts the scope's item pointers and
//! reads no item: its metrics say `retrievedDocumentCount=0` and `indexUtilizationRatio=1.00`,
//! and it costs little. Where items can expire (`defaultTtl`), it reads them instead, so an
//! expired item not yet swept is not counted. Index metrics name the partition-key index for
//! a query of one key, and nothing for a scan.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use base64::Engine;
use serde_json::{Value, json};
use tributary_store::{Clock, ManualClock, StoreOptions};

use crate::harness::{Response, TestServer};

/// Items under partition key `a` of container `c`; `b` has [`N_B`].
const N_A: usize = 25;
const N_B: usize = 3;

/// A server with container `c` (`/pk`): [`N_A`] items under `a` (`n` = 0..25), [`N_B`]
/// under `b`.
async fn counted_server() -> TestServer {
    let server = TestServer::with_container().await;
    for n in 0..N_A {
        server
            .create_item("a", &json!({"id": format!("a{n}"), "pk": "a", "n": n}))
            .await;
    }
    for n in 0..N_B {
        server
            .create_item("b", &json!({"id": format!("b{n}"), "pk": "b"}))
            .await;
    }
    server
}

/// A query of `collection` (`/dbs/db/colls/<collection>/docs`) asking for query and index
/// metrics, scoped by `headers` (a partition key, a range), with `parameters`.
async fn query_with(
    server: &TestServer,
    collection: &str,
    sql: &str,
    parameters: Value,
    headers: &[(&str, &str)],
) -> Response {
    let mut request = server
        .request(Method::POST, &format!("/dbs/db/colls/{collection}/docs"))
        .query(sql)
        .header("x-ms-documentdb-populatequerymetrics", "true")
        .header("x-ms-cosmos-populateindexmetrics", "true")
        .body(
            json!({ "query": sql, "parameters": parameters })
                .to_string()
                .into_bytes(),
        );
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await;
    response.expect_status(200);
    response
}

/// [`query_with`] on container `c` without parameters.
async fn query(server: &TestServer, sql: &str, headers: &[(&str, &str)]) -> Response {
    query_with(server, "c", sql, json!([]), headers).await
}

/// Request headers: (name, value) pairs.
type Headers<'a> = &'a [(&'a str, &'a str)];

/// The partition key header for one string key.
fn key_header(key: &str) -> (&'static str, String) {
    ("x-ms-documentdb-partitionkey", json!([key]).to_string())
}

/// The query metrics, by name.
fn metrics(response: &Response) -> HashMap<String, String> {
    let header = response
        .header("x-ms-documentdb-query-metrics")
        .expect("the metrics asked for");
    header
        .split(';')
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("'{pair}' in {header} is not name=value"));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// `retrievedDocumentCount`, `retrievedDocumentSize` and `indexUtilizationRatio`.
fn reads(response: &Response) -> (u64, u64, String) {
    let metrics = metrics(response);
    let number = |name: &str| {
        metrics
            .get(name)
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics:?}"))
    };
    let ratio = metrics
        .get("indexUtilizationRatio")
        .unwrap_or_else(|| panic!("no indexUtilizationRatio in {metrics:?}"))
        .clone();
    (
        number("retrievedDocumentCount"),
        number("retrievedDocumentSize"),
        ratio,
    )
}

/// The page's results.
fn documents(response: &Response) -> Vec<Value> {
    response.json()["Documents"]
        .as_array()
        .expect("a Documents array")
        .clone()
}

fn charge(response: &Response) -> f64 {
    response
        .header("x-ms-request-charge")
        .and_then(|charge| charge.parse().ok())
        .expect("a request charge")
}

/// The decoded `x-ms-cosmos-index-utilization` header.
fn index_utilization(response: &Response) -> Value {
    let header = response
        .header("x-ms-cosmos-index-utilization")
        .expect("the index metrics asked for");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(header)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The single-path indexes an index utilization says were used, each as (index spec,
/// filter expression).
fn utilized_specs(response: &Response) -> Vec<(String, String)> {
    let utilization = index_utilization(response);
    for list in [
        "PotentialSingleIndexes",
        "UtilizedCompositeIndexes",
        "PotentialCompositeIndexes",
    ] {
        assert_eq!(utilization[list], json!([]), "{list}");
    }
    utilization["UtilizedSingleIndexes"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|used| {
            assert_eq!(used["FilterPreciseSet"], true);
            assert_eq!(used["IndexPreciseSet"], true);
            assert_eq!(used["IndexImpactScore"], "High");
            let text = |key: &str| used[key].as_str().expect("a string").to_owned();
            (text("IndexSpec"), text("FilterExpression"))
        })
        .collect()
}

#[tokio::test]
async fn a_count_of_a_partition_key_counts_its_pointers_and_reads_no_item() {
    let server = counted_server().await;
    let (name, value) = key_header("a");
    let by_header = query(&server, "SELECT VALUE COUNT(1) FROM c", &[(name, &value)]).await;
    assert_eq!(documents(&by_header), [json!(N_A)]);
    assert_eq!(reads(&by_header), (0, 0, "1.00".to_owned()));
    assert!(by_header.header("x-ms-continuation").is_none());
    assert!(charge(&by_header) < 20.0, "{}", charge(&by_header));
    for (sql, parameters, expected) in [
        (
            "SELECT VALUE COUNT(c) FROM c WHERE c.pk = 'a'",
            json!([]),
            N_A,
        ),
        (
            "SELECT VALUE COUNT(c.id) FROM c WHERE @key = c.pk",
            json!([{"name": "@key", "value": "b"}]),
            N_B,
        ),
        ("SELECT VALUE COUNT('any') FROM c", json!([]), N_A + N_B),
        (
            "SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'zzz'",
            json!([]),
            0,
        ),
    ] {
        let counted = query_with(&server, "c", sql, parameters, &[]).await;
        assert_eq!(documents(&counted), [json!(expected)], "{sql}");
        assert_eq!(reads(&counted), (0, 0, "1.00".to_owned()), "{sql}");
    }
    // A deleted item's pointer goes with it.
    server
        .request(Method::DELETE, "/dbs/db/colls/c/docs/a0")
        .partition_key("a")
        .send()
        .await
        .expect_status(204);
    let after_delete = query(&server, "SELECT VALUE COUNT(1) FROM c", &[(name, &value)]).await;
    assert_eq!(documents(&after_delete), [json!(N_A - 1)]);
}

#[tokio::test]
async fn a_count_that_not_every_document_adds_to_reads_the_items() {
    let server = counted_server().await;
    let (name, value) = key_header("a");
    let scope = [(name, value.as_str())];
    // (query, headers, answer, items read)
    let table: [(&str, Headers<'_>, usize, u64); 4] = [
        // Only the items that have `n` count.
        (
            "SELECT VALUE COUNT(c.n) FROM c",
            &[],
            N_A,
            (N_A + N_B) as u64,
        ),
        // A filter on another property.
        (
            "SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'a' AND c.n >= 10",
            &[],
            N_A - 10,
            N_A as u64,
        ),
        // A filter on the key within a scope the request names: it narrows that scope.
        (
            "SELECT VALUE COUNT(1) FROM c WHERE c.pk = 'b'",
            &scope,
            0,
            N_A as u64,
        ),
        // Not a bare count.
        (
            "SELECT VALUE COUNT(1) + 1 FROM c",
            &scope,
            N_A + 1,
            N_A as u64,
        ),
    ];
    for (sql, headers, expected, n_read) in table {
        let response = query(&server, sql, headers).await;
        assert_eq!(documents(&response), [json!(expected)], "{sql}");
        let (retrieved, retrieved_bytes, _) = reads(&response);
        assert_eq!(retrieved, n_read, "{sql}");
        assert!(retrieved_bytes > 0, "{sql}");
    }
}

#[tokio::test]
async fn a_count_of_a_feed_range_or_a_hierarchical_key_counts_its_pointers() {
    let server = crate::query_plans::two_range_server().await;
    let ranges = server
        .request(Method::GET, "/dbs/db/colls/wide/pkranges")
        .send()
        .await;
    ranges.expect_status(200);
    let mut total = 0;
    for range in ranges.json()["PartitionKeyRanges"]
        .as_array()
        .expect("ranges")
    {
        let id = range["id"].as_str().expect("an id");
        let sql = "SELECT VALUE COUNT(1) FROM c";
        let headers = [("x-ms-documentdb-partitionkeyrangeid", id)];
        let counted = query_with(&server, "wide", sql, json!([]), &headers).await;
        assert_eq!(reads(&counted), (0, 0, "1.00".to_owned()), "range {id}");
        let read = query_with(
            &server,
            "wide",
            "SELECT VALUE c.id FROM c",
            json!([]),
            &headers,
        )
        .await;
        assert_eq!(
            documents(&counted),
            [json!(documents(&read).len())],
            "range {id}"
        );
        total += documents(&read).len();
    }
    assert_eq!(total, 20);

    server
        .request(Method::POST, "/dbs/db/colls")
        .json(&json!({
            "id": "h",
            "partitionKey": {"paths": ["/state", "/city", "/zip"], "kind": "MultiHash", "version": 2},
        }))
        .send()
        .await
        .expect_status(201);
    for (state, city, zip, n_items) in [
        ("CA", "Oxnard", "93033", 7),
        ("CA", "Ojai", "93023", 2),
        ("WA", "Seattle", "98101", 4),
    ] {
        for n in 0..n_items {
            server
                .request(Method::POST, "/dbs/db/colls/h/docs")
                .header(
                    "x-ms-documentdb-partitionkey",
                    &json!([state, city, zip]).to_string(),
                )
                .json(
                    &json!({"id": format!("{zip}-{n}"), "state": state, "city": city, "zip": zip}),
                )
                .send()
                .await
                .expect_status(201);
        }
    }
    let full_key = json!(["CA", "Oxnard", "93033"]).to_string();
    let prefix = json!(["CA"]).to_string();
    let sql = "SELECT VALUE COUNT(1) FROM c";
    let by_key = [("x-ms-documentdb-partitionkey", full_key.as_str())];
    let by_prefix = [("x-ms-documentdb-partitionkey", prefix.as_str())];
    for (headers, sql, expected) in [
        (&by_key[..], sql, 7),
        (&by_prefix[..], sql, 9),
        (
            &[][..],
            "SELECT VALUE COUNT(1) FROM c WHERE c.state = 'CA' AND c.city = 'Ojai'",
            2,
        ),
    ] {
        let counted = query_with(&server, "h", sql, json!([]), headers).await;
        assert_eq!(documents(&counted), [json!(expected)], "{sql} {headers:?}");
        assert_eq!(
            reads(&counted),
            (0, 0, "1.00".to_owned()),
            "{sql} {headers:?}"
        );
    }
    // A filter on the key's second path without its first pins no prefix: the items the
    // range index on `/city/?` selects are read.
    let unpinned = query_with(
        &server,
        "h",
        "SELECT VALUE COUNT(1) FROM c WHERE c.city = 'Ojai'",
        json!([]),
        &[],
    )
    .await;
    assert_eq!(documents(&unpinned), [json!(2)]);
    assert_eq!(reads(&unpinned).0, 2);
}

#[tokio::test]
async fn where_items_can_expire_a_count_reads_them_and_leaves_out_the_expired() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let options = StoreOptions {
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        // No sweep removes the expired item during the test: only reading tells.
        maintenance_interval: Duration::from_secs(3600),
        ..StoreOptions::relaxed()
    };
    let server = TestServer::start_with_store(options, |_| {}).await;
    server.create_database("db").await;
    server
        .request(Method::POST, "/dbs/db/colls")
        .json(&json!({
            "id": "c",
            "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2},
            "defaultTtl": -1,
        }))
        .send()
        .await
        .expect_status(201);
    for n in 0..3 {
        server
            .create_item("a", &json!({"id": format!("kept{n}"), "pk": "a"}))
            .await;
    }
    server
        .create_item("a", &json!({"id": "brief", "pk": "a", "ttl": 5}))
        .await;
    let (name, value) = key_header("a");
    let sql = "SELECT VALUE COUNT(1) FROM c";
    let before = query(&server, sql, &[(name, &value)]).await;
    assert_eq!(documents(&before), [json!(4)]);
    clock.advance_ms(10_000);
    let after = query(&server, sql, &[(name, &value)]).await;
    assert_eq!(
        documents(&after),
        [json!(3)],
        "the expired item is not counted"
    );
    let (retrieved, _, ratio) = reads(&after);
    assert_eq!(retrieved, 3, "the live items were read");
    assert_eq!(ratio, "0.33", "one result of three documents read");
}

#[tokio::test]
async fn index_metrics_name_the_partition_key_index_and_the_range_index_a_query_read() {
    let server = counted_server().await;
    let (name, value) = key_header("a");
    let key_index = || vec![("/pk/?".to_owned(), String::new())];
    let by_header = query(&server, "SELECT * FROM c", &[(name, &value)]).await;
    assert_eq!(utilized_specs(&by_header), key_index());
    let pinned = query(&server, "SELECT * FROM c WHERE c.pk = 'b'", &[]).await;
    assert_eq!(utilized_specs(&pinned), key_index());
    let count = query(&server, "SELECT VALUE COUNT(1) FROM c", &[(name, &value)]).await;
    assert_eq!(utilized_specs(&count), key_index());
    // Across the container, the range index on `/n/?` chose the items read.
    let ranged = query(&server, "SELECT * FROM c WHERE c.n > 3", &[]).await;
    assert_eq!(
        utilized_specs(&ranged),
        [("/n/?".to_owned(), "(ROOT.n > 3)".to_owned())]
    );
    let scan = query(&server, "SELECT * FROM c WHERE c.n + 1 > 3", &[]).await;
    assert_eq!(utilized_specs(&scan), Vec::<(String, String)>::new());
    // Without the request header, no index metrics.
    let unasked = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .query("SELECT * FROM c")
        .send()
        .await;
    unasked.expect_status(200);
    assert!(unasked.header("x-ms-cosmos-index-utilization").is_none());
}

#[tokio::test]
async fn the_index_utilization_ratio_of_a_scan_is_the_share_of_documents_read_it_kept() {
    let server = counted_server().await;
    let (name, value) = key_header("a");
    // (query, ratio): 5 of the 25 items read are kept; all of them; none.
    for (sql, ratio) in [
        ("SELECT * FROM c WHERE c.n < 5", "0.20"),
        ("SELECT c.id FROM c", "1.00"),
        ("SELECT * FROM c WHERE c.n > 100", "0.00"),
    ] {
        let response = query(&server, sql, &[(name, &value)]).await;
        let (retrieved, _, actual) = reads(&response);
        assert_eq!(retrieved, N_A as u64, "{sql}");
        assert_eq!(actual, ratio, "{sql}");
    }
}
