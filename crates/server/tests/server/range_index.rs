//! Queries through the range index. The same items in a container indexed by the default
//! policy, one with `indexingMode: none` and one that excludes `/status/?`: every query gives
//! the same results in all three (paged with page sizes 1, 7 and 1000), and where the index
//! answers the filter, only the matching items are read (`retrievedDocumentCount`). A policy
//! replaced on a live container is built in the background, reported in the container's
//! index transformation progress, and used once built; a continuation made through the
//! index that the new policy no longer offers is a 400 that says to start again.

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};

use crate::harness::{Response, TestServer, retrieved_documents};

/// Items in each container.
const N_ITEMS: usize = 120;
const STATUSES: [&str; 3] = ["open", "closed", "held"];

/// The container ids and their indexing policies.
fn containers() -> [(&'static str, Value); 3] {
    [
        ("indexed", json!({"indexingMode": "consistent"})),
        ("plain", json!({"indexingMode": "none", "automatic": false})),
        (
            "excluded",
            json!({
                "indexingMode": "consistent",
                "includedPaths": [{"path": "/*"}],
                "excludedPaths": [{"path": "/status/?"}],
            }),
        ),
    ]
}

fn item(n: usize) -> Value {
    json!({
        "id": format!("i{n:03}"),
        "pk": format!("p{}", n % 5),
        "n": n,
        "status": STATUSES[n % 3],
        "name": format!("name{:03}", (n * 37) % N_ITEMS),
        "tags": [format!("t{}", n % 4), "all"],
        "nested": {"level": n % 7},
    })
}

/// A server with the three containers of [`containers`], each over two feed ranges, holding
/// the same [`N_ITEMS`] items.
async fn server_with_items() -> TestServer {
    let server = TestServer::start().await;
    server.create_database("db").await;
    for (id, policy) in containers() {
        server
            .request(Method::POST, "/dbs/db/colls")
            .header("x-ms-offer-throughput", "20000")
            .json(&json!({
                "id": id,
                "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2},
                "indexingPolicy": policy,
            }))
            .send()
            .await
            .expect_status(201);
        for n in 0..N_ITEMS {
            let item = item(n);
            server
                .request(Method::POST, &format!("/dbs/db/colls/{id}/docs"))
                .partition_key(item["pk"].as_str().expect("a string key"))
                .json(&item)
                .send()
                .await
                .expect_status(201);
        }
    }
    server
}

/// One page of `sql` over `container`, asking for query metrics.
async fn page(
    server: &TestServer,
    container: &str,
    sql: &str,
    page_size: usize,
    continuation: Option<&str>,
) -> Response {
    let mut request = server
        .request(Method::POST, &format!("/dbs/db/colls/{container}/docs"))
        .query(sql)
        .header("x-ms-documentdb-populatequerymetrics", "true")
        .header("x-ms-max-item-count", &page_size.to_string());
    if let Some(token) = continuation {
        request = request.header("x-ms-continuation", token);
    }
    request.send().await
}

/// Every result of `sql` over `container` with pages of `page_size`, and the documents read.
async fn all_results(
    server: &TestServer,
    container: &str,
    sql: &str,
    page_size: usize,
) -> (Vec<Value>, u64) {
    let mut results = Vec::new();
    let mut n_read = 0;
    let mut continuation: Option<String> = None;
    for _ in 0..=N_ITEMS * 2 + 4 {
        let response = page(server, container, sql, page_size, continuation.as_deref()).await;
        response.expect_status(200);
        let documents = response.json()["Documents"]
            .as_array()
            .expect("a Documents array")
            .clone();
        assert!(documents.len() <= page_size, "{sql}: a page over its size");
        results.extend(documents);
        n_read += retrieved_documents(&response);
        continuation = response.header("x-ms-continuation").map(str::to_owned);
        if continuation.is_none() {
            return (results, n_read);
        }
    }
    panic!("{sql} over {container}: the continuations never ended");
}

/// Results as sorted JSON texts without their system properties, which differ from one
/// container to the next (queries without `ORDER BY` promise no order).
fn sorted(results: &[Value]) -> Vec<String> {
    let mut texts: Vec<String> = results
        .iter()
        .map(|result| match result {
            Value::Object(object) => {
                let mut object = object.clone();
                object.retain(|key, _| !key.starts_with('_'));
                Value::Object(object).to_string()
            }
            other => other.to_string(),
        })
        .collect();
    texts.sort();
    texts
}

/// The items [`item`] makes that `keep` keeps.
fn count_items(keep: impl Fn(&Value) -> bool) -> u64 {
    (0..N_ITEMS).map(item).filter(|item| keep(item)).count() as u64
}

#[tokio::test]
async fn indexed_filters_read_only_their_items_and_answer_as_a_scan_does() {
    let server = server_with_items().await;
    let n_open = count_items(|i| i["status"] == "open");
    let n_all = N_ITEMS as u64;
    // (query, items read in `indexed`, in `excluded`): the most selective kind of term is
    // read through the index (one value before a range), `/status/?` only in `indexed`.
    let cases: Vec<(&str, u64, u64)> = vec![
        ("SELECT * FROM c WHERE c.status = 'open'", n_open, n_all),
        (
            "SELECT c.id, c.n FROM c WHERE c.n >= 30 AND c.n < 50",
            20,
            20,
        ),
        (
            "SELECT c.id FROM c WHERE c.n BETWEEN 10 AND 12 AND c.status = 'held'",
            count_items(|i| i["status"] == "held"),
            3,
        ),
        (
            "SELECT * FROM c WHERE c.status IN ('held', 'closed')",
            n_all - n_open,
            n_all,
        ),
        (
            "SELECT c.id FROM c WHERE STARTSWITH(c.name, 'name01')",
            10,
            10,
        ),
        (
            "SELECT c.id FROM c WHERE c.nested.level = 3",
            count_items(|i| i["nested"]["level"] == 3),
            count_items(|i| i["nested"]["level"] == 3),
        ),
        ("SELECT c.id FROM c WHERE c.id = 'i042'", 1, 1),
        ("SELECT c.id FROM c WHERE c.n > 1000", 0, 0),
    ];
    for (sql, n_indexed, n_excluded) in cases {
        let (expected, n_scanned) = all_results(&server, "plain", sql, 1000).await;
        assert_eq!(n_scanned, n_all, "{sql}: the unindexed container scans");
        for page_size in [1, 7, 1000] {
            let (indexed, n_read) = all_results(&server, "indexed", sql, page_size).await;
            assert_eq!(sorted(&indexed), sorted(&expected), "{sql} by {page_size}");
            assert_eq!(n_read, n_indexed, "{sql} by {page_size}: items read");
            let (excluded, n_read) = all_results(&server, "excluded", sql, page_size).await;
            assert_eq!(sorted(&excluded), sorted(&expected), "{sql} by {page_size}");
            assert_eq!(n_read, n_excluded, "{sql} by {page_size}: excluded path");
        }
    }
}

#[tokio::test]
async fn whole_input_queries_read_the_indexed_items_and_order_as_a_scan_does() {
    let server = server_with_items().await;
    for sql in [
        "SELECT TOP 5 c.id, c.n FROM c WHERE c.n > 40 ORDER BY c.n DESC",
        "SELECT c.id FROM c WHERE c.status = 'open' ORDER BY c.name",
        "SELECT VALUE COUNT(1) FROM c WHERE c.n < 25",
        "SELECT DISTINCT VALUE c.status FROM c WHERE c.n >= 100",
        "SELECT c.status, COUNT(1) AS n FROM c WHERE c.n < 60 GROUP BY c.status",
        "SELECT VALUE c.id FROM c WHERE ARRAY_CONTAINS(c.tags, 't2')",
        "SELECT VALUE c.id FROM c WHERE c.tags[0] = 't1' ORDER BY c.id",
    ] {
        let (expected, n_scanned) = all_results(&server, "plain", sql, 1000).await;
        assert_eq!(n_scanned, N_ITEMS as u64, "{sql}");
        let (indexed, n_read) = all_results(&server, "indexed", sql, 1000).await;
        if sql.contains("ORDER BY") {
            assert_eq!(indexed, expected, "{sql}");
        } else {
            assert_eq!(sorted(&indexed), sorted(&expected), "{sql}");
        }
        assert!(n_read < N_ITEMS as u64, "{sql}: read {n_read} items");
    }
}

#[tokio::test]
async fn an_ascending_order_by_on_the_indexed_path_stops_reading_at_its_window() {
    let server = server_with_items().await;
    // (query, items read through the index): read in `n` order, the first rows found end it.
    for (sql, n_expected_reads) in [
        (
            "SELECT TOP 5 c.id, c.n FROM c WHERE c.n > 40 ORDER BY c.n",
            5,
        ),
        (
            "SELECT c.id, c.n FROM c WHERE c.n >= 10 ORDER BY c.n OFFSET 3 LIMIT 4",
            7,
        ),
        (
            "SELECT TOP 3 c.id FROM c WHERE c.n IN (7, 3, 90, 5) ORDER BY c.n ASC",
            3,
        ),
        // One value on another path ranks before the range: read through `/status/?`, not
        // in `n` order, every held item is read.
        (
            "SELECT TOP 4 c.id, c.n FROM c WHERE c.n > 40 AND c.status = 'held' ORDER BY c.n",
            40,
        ),
    ] {
        let (expected, _) = all_results(&server, "plain", sql, 1000).await;
        let (indexed, n_read) = all_results(&server, "indexed", sql, 1000).await;
        assert_eq!(indexed, expected, "{sql}");
        assert_eq!(n_read, n_expected_reads, "{sql}");
    }
}

#[tokio::test]
async fn a_replaced_policy_is_built_in_the_background_and_then_used() {
    let server = server_with_items().await;
    let sql = "SELECT c.id FROM c WHERE c.status = 'closed'";
    let n_closed = count_items(|i| i["status"] == "closed");
    // A continuation made through the index of `indexed`.
    let first = page(&server, "indexed", sql, 2, None).await;
    first.expect_status(200);
    let token = first
        .header("x-ms-continuation")
        .expect("more pages")
        .to_owned();
    // `plain` gains an index, `indexed` loses its own.
    for (id, policy) in [
        ("plain", json!({"indexingMode": "consistent"})),
        (
            "indexed",
            json!({"indexingMode": "none", "automatic": false}),
        ),
    ] {
        server
            .request(Method::PUT, &format!("/dbs/db/colls/{id}"))
            .json(&json!({
                "id": id,
                "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2},
                "indexingPolicy": policy,
            }))
            .send()
            .await
            .expect_status(200);
    }
    let mut progress = Vec::new();
    for _ in 0..500 {
        let read = server
            .request(Method::GET, "/dbs/db/colls/plain")
            .header("x-ms-documentdb-populatequotainfo", "true")
            .send()
            .await;
        read.expect_status(200);
        let percent: u8 = read
            .header("x-ms-documentdb-collection-index-transformation-progress")
            .and_then(|percent| percent.parse().ok())
            .expect("a progress percent");
        progress.push(percent);
        if percent == 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(progress.last(), Some(&100), "the build ended: {progress:?}");
    assert!(
        progress.windows(2).all(|pair| pair[0] <= pair[1]),
        "{progress:?}"
    );
    let (results, n_read) = all_results(&server, "plain", sql, 1000).await;
    assert_eq!(results.len() as u64, n_closed);
    assert_eq!(n_read, n_closed, "the new index is used once built");
    let (results, n_read) = all_results(&server, "indexed", sql, 1000).await;
    assert_eq!(results.len() as u64, n_closed);
    assert_eq!(
        n_read, N_ITEMS as u64,
        "without an index every item is read"
    );
    let stale = page(&server, "indexed", sql, 2, Some(&token)).await;
    let message = stale.expect_error(400);
    assert!(message.contains("run the query again"), "{message}");
}

#[tokio::test]
async fn writes_between_pages_are_seen_by_the_index() {
    let server = server_with_items().await;
    let sql = "SELECT c.id FROM c WHERE c.status = 'open'";
    let first = page(&server, "indexed", sql, 5, None).await;
    first.expect_status(200);
    let token = first
        .header("x-ms-continuation")
        .expect("more pages")
        .to_owned();
    // Item i000 (open, already returned) and i003 (open) are closed, i001 opened.
    for (n, status) in [(0, "closed"), (3, "closed"), (1, "open")] {
        let mut changed = item(n);
        changed["status"] = json!(status);
        server
            .request(
                Method::PUT,
                &format!(
                    "/dbs/db/colls/indexed/docs/{}",
                    changed["id"].as_str().expect("an id")
                ),
            )
            .partition_key(changed["pk"].as_str().expect("a key"))
            .json(&changed)
            .send()
            .await
            .expect_status(200);
    }
    let mut seen: Vec<String> = first.json()["Documents"]
        .as_array()
        .expect("documents")
        .iter()
        .map(|d| d["id"].as_str().expect("an id").to_owned())
        .collect();
    let mut continuation = Some(token);
    while let Some(token) = continuation {
        let response = page(&server, "indexed", sql, 5, Some(&token)).await;
        response.expect_status(200);
        for document in response.json()["Documents"].as_array().expect("documents") {
            seen.push(document["id"].as_str().expect("an id").to_owned());
        }
        continuation = response.header("x-ms-continuation").map(str::to_owned);
    }
    let unique: std::collections::HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no item twice: {seen:?}");
    assert!(
        !seen.contains(&"i003".to_owned()),
        "a closed item is not returned"
    );
    let still_open = count_items(|i| i["status"] == "open") - 2;
    for n in (6..N_ITEMS).step_by(3) {
        assert!(
            seen.contains(&format!("i{n:03}")),
            "i{n:03} is still open: {seen:?}"
        );
    }
    assert!(seen.len() as u64 >= still_open, "{seen:?}");
}

#[tokio::test]
async fn a_continuation_from_another_indexed_query_is_refused() {
    let server = server_with_items().await;
    let first = page(
        &server,
        "indexed",
        "SELECT c.id FROM c WHERE c.status = 'open'",
        2,
        None,
    )
    .await;
    first.expect_status(200);
    let token = first
        .header("x-ms-continuation")
        .expect("more pages")
        .to_owned();
    let other = page(
        &server,
        "indexed",
        "SELECT c.id FROM c WHERE c.n > 3",
        2,
        Some(&token),
    )
    .await;
    let message = other.expect_error(400);
    assert!(message.contains("run the query"), "{message}");
}
