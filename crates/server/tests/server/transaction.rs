//! Tributary's cross-container transaction extension (`x-tributary-transaction`): operations
//! in several databases and containers commit together or not at all.

use axum::http::Method;
use serde_json::{Value, json};
use tributary_wire::headers;

use crate::harness::TestServer;

async fn server_with_two_databases() -> TestServer {
    let server = TestServer::start().await;
    for database in ["one", "two"] {
        server.create_database(database).await;
        server.create_container(database, "c").await;
    }
    server
}

async fn read(server: &TestServer, database: &str, id: &str) -> u16 {
    server
        .request(Method::GET, &format!("/dbs/{database}/colls/c/docs/{id}"))
        .partition_key(id)
        .send()
        .await
        .status
}

#[tokio::test]
async fn operations_in_two_databases_commit_together() {
    let server = server_with_two_databases().await;
    let response = server
        .request(Method::POST, "/dbs/one/colls/c/docs")
        .header(headers::X_TRIBUTARY_TRANSACTION, "true")
        .json(&json!([
            {"operationType": "Create", "resourceBody": {"id": "a", "pk": "a"}},
            {"operationType": "Upsert", "database": "two", "container": "c", "resourceBody": {"id": "b", "pk": "b"}},
        ]))
        .send()
        .await;
    response.expect_status(200);
    let results = response.json();
    assert_eq!(results[0]["statusCode"], 201);
    assert_eq!(results[1]["resourceBody"]["id"], "b");
    assert_eq!(read(&server, "one", "a").await, 200);
    assert_eq!(read(&server, "two", "b").await, 200);
}

#[tokio::test]
async fn a_failed_precondition_commits_nothing_anywhere() {
    let server = TestServer::with_container().await;
    server.create_database("one").await;
    server.create_container("one", "c").await;
    server
        .create_item("lease", &json!({"id": "lease", "pk": "lease"}))
        .await;
    let response = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .header(headers::X_TRIBUTARY_TRANSACTION, "true")
        .json(&json!([
            {"operationType": "Replace", "id": "lease", "partitionKey": ["lease"], "ifMatch": "\"stale\"", "resourceBody": {"id": "lease", "pk": "lease", "n": 1}},
            {"operationType": "Upsert", "database": "one", "container": "c", "resourceBody": {"id": "out", "pk": "out"}},
        ]))
        .send()
        .await;
    response.expect_status(207);
    let results = response.json();
    let statuses: Vec<&Value> = results
        .as_array()
        .expect("a list of results")
        .iter()
        .map(|result| &result["statusCode"])
        .collect();
    assert_eq!(statuses, [&json!(412), &json!(424)]);
    assert_eq!(read(&server, "one", "out").await, 404);
}

#[tokio::test]
async fn malformed_transactions_are_refused_with_the_reason() {
    let server = server_with_two_databases().await;
    let cases = [
        (json!({"not": "a list"}), "must be a JSON array"),
        (json!([]), "has no operations"),
        (
            json!([{"operationType": "Upsert", "database": 7, "resourceBody": {"id": "x", "pk": "x"}}]),
            "'database' must be a non-empty string",
        ),
        (
            json!([{"operationType": "Explode", "resourceBody": {}}]),
            "unknown operationType",
        ),
    ];
    for (body, expected) in cases {
        let message = server
            .request(Method::POST, "/dbs/one/colls/c/docs")
            .header(headers::X_TRIBUTARY_TRANSACTION, "true")
            .json(&body)
            .send()
            .await
            .expect_error(400);
        assert!(message.contains(expected), "{body}: {message}");
    }
}
