//! `TOP` and `OFFSET ... LIMIT` over results that stream: pages read on from where the last
//! ended, count results against the window, and stop reading once it is full; they give what
//! the query without the window gives, cut to the window.

use axum::http::Method;
use serde_json::{Value, json};

use crate::harness::{TestServer, document_ids};
use crate::query_plans::two_range_server;

/// Every page of `sql` over container `wide`, `page_size` at most each, as a plain client
/// (no SDK capabilities: the server answers whole), with each page's
/// `retrievedDocumentCount`.
async fn pages(server: &TestServer, sql: &str, page_size: usize) -> Vec<(Vec<String>, u64)> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let mut request = server
            .request(Method::POST, "/dbs/db/colls/wide/docs")
            .query(sql)
            .header("x-ms-documentdb-populatequerymetrics", "true")
            .header("x-ms-max-item-count", &page_size.to_string());
        if let Some(token) = &token {
            request = request.header("x-ms-continuation", token);
        }
        let page = request.send().await;
        page.expect_status(200);
        let metrics = page
            .header("x-ms-documentdb-query-metrics")
            .expect("query metrics");
        let n_read = metrics
            .split(';')
            .find_map(|pair| pair.strip_prefix("retrievedDocumentCount="))
            .and_then(|n| n.parse().ok())
            .expect("retrievedDocumentCount");
        pages.push((ids_of(&page.json()), n_read));
        token = page.header("x-ms-continuation").map(str::to_owned);
        if token.is_none() {
            return pages;
        }
    }
    panic!("{sql}: did not end within 100 pages");
}

/// The ids of a page's documents, or of its `{"id": ...}` rows.
fn ids_of(page: &Value) -> Vec<String> {
    match page["Documents"].get(0) {
        Some(Value::String(_)) => page["Documents"]
            .as_array()
            .expect("documents")
            .iter()
            .map(|id| id.as_str().expect("an id").to_owned())
            .collect(),
        _ => document_ids(page),
    }
}

fn all(pages: &[(Vec<String>, u64)]) -> Vec<String> {
    pages.iter().flat_map(|(ids, _)| ids.clone()).collect()
}

#[tokio::test]
async fn top_and_offset_limit_page_through_the_window_of_the_unwindowed_results() {
    let server = two_range_server().await;
    let everything = all(&pages(&server, "SELECT VALUE c.id FROM c", 1000).await);
    assert_eq!(everything.len(), 20);
    for page_size in [1, 3, 7, 1000] {
        let top = pages(&server, "SELECT TOP 7 VALUE c.id FROM c", page_size).await;
        assert_eq!(all(&top), everything[..7], "TOP 7, pages of {page_size}");
        let window = pages(
            &server,
            "SELECT VALUE c.id FROM c OFFSET 5 LIMIT 8",
            page_size,
        )
        .await;
        assert_eq!(
            all(&window),
            everything[5..13],
            "OFFSET 5 LIMIT 8, pages of {page_size}"
        );
        let past_the_end = pages(
            &server,
            "SELECT VALUE c.id FROM c OFFSET 18 LIMIT 8",
            page_size,
        )
        .await;
        assert_eq!(all(&past_the_end), everything[18..]);
        assert!(all(&pages(&server, "SELECT TOP 0 VALUE c.id FROM c", page_size).await).is_empty());
    }
    // A filter and a projection count the rows they give, not the items read.
    let odd: Vec<String> = all(&pages(&server, "SELECT VALUE c.id FROM c WHERE c.odd", 1000).await);
    let top_odd = pages(&server, "SELECT TOP 3 c.id FROM c WHERE c.odd", 2).await;
    assert_eq!(all(&top_odd), odd[..3]);
}

#[tokio::test]
async fn a_top_reads_only_as_far_as_its_window_reaches() {
    let server = two_range_server().await;
    let top = pages(&server, "SELECT TOP 2 * FROM c", 100).await;
    assert_eq!(all(&top).len(), 2);
    let n_read: u64 = top.iter().map(|(_, n)| n).sum();
    assert_eq!(n_read, 2, "{top:?}");
    // With a JOIN, one item gives several rows; the window cuts inside an item.
    for n in 0..5 {
        server
            .request(Method::POST, "/dbs/db/colls/wide/docs")
            .partition_key("tagged")
            .json(&json!({"id": format!("t{n}"), "pk": "tagged", "tags": ["a", "b"]}))
            .send()
            .await
            .expect_status(201);
    }
    let joined = pages(
        &server,
        "SELECT TOP 3 VALUE c.id FROM c JOIN t IN c.tags",
        100,
    )
    .await;
    let rows = all(&joined);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0], rows[1]);
    assert_ne!(rows[1], rows[2]);
}
