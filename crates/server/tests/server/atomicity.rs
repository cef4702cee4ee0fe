//! No partial writes: a request that fails leaves no trace, neither in point reads nor in the
//! change feed, and a transactional batch is all or nothing.

use axum::http::Method;
use serde_json::{Value, json};
use tributary_wire::headers;

use crate::harness::TestServer;

/// Sends a transactional batch for partition key `pk` and returns the response.
pub(crate) async fn batch(
    server: &TestServer,
    pk: &str,
    operations: Value,
) -> crate::harness::Response {
    server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .partition_key(pk)
        .header(headers::X_MS_COSMOS_IS_BATCH_REQUEST, "true")
        .header(headers::X_MS_COSMOS_BATCH_ATOMIC, "true")
        .json(&operations)
        .send()
        .await
}

fn status_codes(results: &Value) -> Vec<u64> {
    results
        .as_array()
        .unwrap_or_else(|| panic!("a batch response is an array: {results}"))
        .iter()
        .map(|result| result["statusCode"].as_u64().unwrap_or(0))
        .collect()
}

#[tokio::test]
async fn a_failing_transactional_batch_writes_nothing() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({ "id": "existing", "pk": "p", "n": 1 }))
        .await;
    let response = batch(
        &server,
        "p",
        json!([
            { "operationType": "Create", "resourceBody": { "id": "new-1", "pk": "p" } },
            { "operationType": "Replace", "id": "existing", "resourceBody": { "id": "existing", "pk": "p", "n": 2 } },
            { "operationType": "Create", "resourceBody": { "id": "existing", "pk": "p" } },
            { "operationType": "Create", "resourceBody": { "id": "new-2", "pk": "p" } },
        ]),
    )
    .await;
    assert!(
        response.status == 207 || response.status >= 400,
        "a failed batch is not reported as a plain success: {}",
        response.status
    );
    assert_eq!(status_codes(&response.json()), [424, 424, 409, 424]);
    for id in ["new-1", "new-2"] {
        server
            .request(Method::GET, &format!("/dbs/db/colls/c/docs/{id}"))
            .partition_key("p")
            .send()
            .await
            .expect_error(404);
    }
    let existing = server
        .request(Method::GET, "/dbs/db/colls/c/docs/existing")
        .partition_key("p")
        .send()
        .await;
    existing.expect_status(200);
    assert_eq!(existing.json()["n"], 1, "the replace was rolled back");
    assert_eq!(server.changed_ids().await, ["existing"]);
}

#[tokio::test]
async fn a_batch_whose_operation_targets_another_partition_key_writes_nothing() {
    let server = TestServer::with_container().await;
    let response = batch(
        &server,
        "p",
        json!([
            { "operationType": "Create", "resourceBody": { "id": "a", "pk": "p" } },
            { "operationType": "Create", "resourceBody": { "id": "b", "pk": "q" } },
        ]),
    )
    .await;
    let codes = status_codes(&response.json());
    assert_eq!(codes[0], 424, "{codes:?}");
    assert_eq!(codes[1], 400, "{codes:?}");
    assert_eq!(server.changed_ids().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_malformed_batch_is_a_400_and_writes_nothing() {
    let server = TestServer::with_container().await;
    for operations in [
        json!([
            { "operationType": "Create", "resourceBody": { "id": "a", "pk": "p" } },
            { "operationType": "Explode", "id": "a" },
        ]),
        json!({ "operationType": "Create" }),
        json!([]),
        Value::Array(
            (0..101)
                .map(|n| json!({ "operationType": "Create", "resourceBody": { "id": format!("i{n}"), "pk": "p" } }))
                .collect(),
        ),
    ] {
        batch(&server, "p", operations).await.expect_error(400);
    }
    assert_eq!(server.changed_ids().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_successful_transactional_batch_commits_every_operation() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({ "id": "old", "pk": "p" }))
        .await;
    let response = batch(
        &server,
        "p",
        json!([
            { "operationType": "Create", "resourceBody": { "id": "a", "pk": "p" } },
            { "operationType": "Upsert", "resourceBody": { "id": "b", "pk": "p" } },
            { "operationType": "Delete", "id": "old" },
            { "operationType": "Read", "id": "a" },
        ]),
    )
    .await;
    response.expect_status(200);
    assert_eq!(status_codes(&response.json()), [201, 201, 204, 200]);
    assert_eq!(server.changed_ids().await, ["a", "b"]);
}

#[tokio::test]
async fn refused_item_writes_leave_the_change_feed_untouched() {
    let server = TestServer::with_container().await;
    let created = server
        .create_item("p", &json!({ "id": "a", "pk": "p", "v": 1 }))
        .await;
    let etag = created
        .header(headers::ETAG)
        .expect("a created item has an etag")
        .to_owned();
    let feed_before = server.change_feed(None).await;
    let position = feed_before
        .header(headers::ETAG)
        .expect("feed etag")
        .to_owned();

    let refused: Vec<(u16, crate::harness::TestRequest<'_>)> = vec![
        // 400: no id.
        (
            400,
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .partition_key("p")
                .json(&json!({ "pk": "p" })),
        ),
        // 400: an id that is not a string.
        (
            400,
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .partition_key("p")
                .json(&json!({ "id": 7, "pk": "p" })),
        ),
        // 400: a body that is not an object.
        (
            400,
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .partition_key("p")
                .json(&json!(["a"])),
        ),
        // 409: it exists.
        (
            409,
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .partition_key("p")
                .json(&json!({ "id": "a", "pk": "p", "v": 2 })),
        ),
        // 412: a stale etag.
        (
            412,
            server
                .request(Method::PUT, "/dbs/db/colls/c/docs/a")
                .partition_key("p")
                .header(headers::IF_MATCH, "\"stale\"")
                .json(&json!({ "id": "a", "pk": "p", "v": 3 })),
        ),
        // 404: a rename (the body's id differs from the path's) of an item that does not
        // exist, onto the id of one that does.
        (
            404,
            server
                .request(Method::PUT, "/dbs/db/colls/c/docs/missing")
                .partition_key("p")
                .json(&json!({ "id": "a", "pk": "p", "v": 4 })),
        ),
        // 404: replace of an item that does not exist.
        (
            404,
            server
                .request(Method::PUT, "/dbs/db/colls/c/docs/missing")
                .partition_key("p")
                .json(&json!({ "id": "missing", "pk": "p" })),
        ),
        // 412: a delete with a stale etag.
        (
            412,
            server
                .request(Method::DELETE, "/dbs/db/colls/c/docs/a")
                .partition_key("p")
                .header(headers::IF_MATCH, "\"stale\""),
        ),
        // 400: a patch with an unknown operation.
        (
            400,
            server
                .request(Method::PATCH, "/dbs/db/colls/c/docs/a")
                .partition_key("p")
                .json(&json!({ "operations": [{ "op": "explode", "path": "/v" }] })),
        ),
    ];
    for (status, request) in refused {
        request.send().await.expect_error(status);
    }

    server.change_feed(Some(&position)).await.expect_status(304);
    let item = server
        .request(Method::GET, "/dbs/db/colls/c/docs/a")
        .partition_key("p")
        .send()
        .await;
    item.expect_status(200);
    assert_eq!(item.json()["v"], 1);
    assert_eq!(item.header(headers::ETAG), Some(etag.as_str()));
}
