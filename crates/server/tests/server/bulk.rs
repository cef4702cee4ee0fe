//! Bulk requests (`x-ms-cosmos-is-batch-request` with `x-ms-cosmos-batch-atomic: false`):
//! every operation succeeds or fails on its own, the changes reach the feed in request order
//! whatever their partition keys, and `Prefer: return=minimal` leaves the bodies out.

use axum::http::Method;
use serde_json::{Value, json};
use tributary_wire::headers;

use crate::harness::{Response, TestServer, document_ids};

async fn bulk(server: &TestServer, operations: &Value, minimal: bool) -> Response {
    let mut request = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .header(headers::X_MS_COSMOS_IS_BATCH_REQUEST, "true")
        .header(headers::X_MS_COSMOS_BATCH_ATOMIC, "false");
    if minimal {
        request = request.header(headers::PREFER, headers::values::PREFER_RETURN_MINIMAL);
    }
    request.json(operations).send().await
}

/// A create of item `id` with partition key `pk`, as the Node SDK's bulk sends it.
fn create(id: &str, pk: &str) -> Value {
    json!({
        "operationType": "Create",
        "partitionKey": json!([pk]).to_string(),
        "resourceBody": { "id": id, "pk": pk },
    })
}

#[tokio::test]
async fn one_writers_bulk_reaches_the_feed_in_request_order() {
    let server = TestServer::with_container().await;
    let mut sent = Vec::new();
    for request in 0..5 {
        // 100 operations over 37 partition keys, interleaved.
        let operations: Vec<Value> = (0..100)
            .map(|n| {
                let id = format!("r{request}-{n:03}");
                sent.push(id.clone());
                create(&id, &format!("key-{}", (n * 7) % 37))
            })
            .collect();
        let response = bulk(&server, &Value::Array(operations), false).await;
        response.expect_status(200);
        let results = response.json();
        assert_eq!(results.as_array().map(Vec::len), Some(100));
        assert!(
            results
                .as_array()
                .into_iter()
                .flatten()
                .all(|r| r["statusCode"] == 201)
        );
    }
    let page = server
        .request(Method::GET, "/dbs/db/colls/c/docs")
        .header(headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED)
        .header(headers::X_MS_MAX_ITEM_COUNT, "1000")
        .send()
        .await;
    page.expect_status(200);
    assert_eq!(document_ids(&page.json()), sent);
}

#[tokio::test]
async fn a_failed_bulk_operation_leaves_the_others_applied() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({ "id": "taken", "pk": "p" }))
        .await;
    let response = bulk(
        &server,
        &json!([
            create("a", "p"),
            create("taken", "p"),
            { "operationType": "Replace", "id": "missing", "partitionKey": "[\"q\"]", "resourceBody": { "id": "missing", "pk": "q" } },
            { "operationType": "Create", "partitionKey": "[\"q\"]", "resourceBody": { "id": "b", "pk": "other" } },
            create("c", "q"),
        ]),
        false,
    )
    .await;
    response.expect_status(207);
    let results = response.json();
    let codes: Vec<u64> = results
        .as_array()
        .expect("an array of results")
        .iter()
        .map(|r| r["statusCode"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(codes, [201, 409, 404, 400, 201]);
    assert_eq!(results[0]["resourceBody"]["id"], "a");
    assert!(
        results[1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("taken")),
        "{results}"
    );
    assert_eq!(server.changed_ids().await, ["taken", "a", "c"]);
}

#[tokio::test]
async fn prefer_return_minimal_leaves_bodies_out_of_bulk_and_batch_results() {
    let server = TestServer::with_container().await;
    let response = bulk(&server, &json!([create("a", "p"), create("b", "q")]), true).await;
    response.expect_status(200);
    for result in response.json().as_array().expect("an array of results") {
        assert_eq!(result["statusCode"], 201);
        assert!(
            result["eTag"].as_str().is_some_and(|e| e.starts_with('"')),
            "{result}"
        );
        assert!(result.get("resourceBody").is_none(), "{result}");
    }
    // In a transactional batch too; a read still returns what it read.
    let response = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .partition_key("p")
        .header(headers::X_MS_COSMOS_IS_BATCH_REQUEST, "true")
        .header(headers::X_MS_COSMOS_BATCH_ATOMIC, "true")
        .header(headers::PREFER, headers::values::PREFER_RETURN_MINIMAL)
        .json(&json!([
            { "operationType": "Upsert", "resourceBody": { "id": "a", "pk": "p", "n": 2 } },
            { "operationType": "Read", "id": "a" },
        ]))
        .send()
        .await;
    response.expect_status(200);
    let results = response.json();
    assert!(results[0].get("resourceBody").is_none(), "{results}");
    assert_eq!(results[1]["resourceBody"]["n"], 2, "{results}");
    // Without the header the bodies are there, as stored (system properties included).
    let response = bulk(&server, &json!([create("c", "p")]), false).await;
    let results = response.json();
    assert_eq!(results[0]["resourceBody"]["id"], "c");
    assert!(results[0]["resourceBody"]["_etag"].is_string(), "{results}");
}
