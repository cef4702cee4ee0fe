//! Queries read only what their scope needs: one whose filter fixes the partition key (by a
//! literal or a parameter, also a hierarchical key's prefix) reads that key's items alone, as
//! the query metrics' `retrievedDocumentCount` shows, and answers exactly what a scan of the
//! whole container would.

use axum::http::Method;
use serde_json::{Value, json};

use crate::harness::{Response, TestServer};

/// Items per partition key value.
const PER_KEY: usize = 10;

/// A query of container `c`, with parameters, asking for the query metrics.
async fn query(server: &TestServer, path: &str, sql: &str, parameters: Value) -> Response {
    let response = server
        .request(Method::POST, path)
        .query(sql)
        .header("x-ms-documentdb-populatequerymetrics", "true")
        .body(
            json!({ "query": sql, "parameters": parameters })
                .to_string()
                .into_bytes(),
        )
        .send()
        .await;
    response.expect_status(200);
    response
}

/// The `retrievedDocumentCount` of a query's metrics: the items it read from the store.
fn retrieved(response: &Response) -> u64 {
    let metrics = response
        .header("x-ms-documentdb-query-metrics")
        .expect("the metrics asked for");
    metrics
        .split(';')
        .find_map(|pair| pair.strip_prefix("retrievedDocumentCount="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retrievedDocumentCount in {metrics}"))
}

fn ids(response: &Response) -> Vec<String> {
    crate::harness::document_ids(&response.json())
}

#[tokio::test]
async fn a_query_that_fixes_the_partition_key_reads_only_that_keys_items() {
    let server = TestServer::with_container().await;
    for pk in ["a", "b", "c"] {
        for n in 0..PER_KEY {
            server
                .create_item(pk, &json!({"id": format!("{pk}{n}"), "pk": pk, "n": n}))
                .await;
        }
    }
    let path = "/dbs/db/colls/c/docs";
    let everything = query(&server, path, "SELECT * FROM c", json!([])).await;
    assert_eq!(retrieved(&everything), 3 * PER_KEY as u64);
    let expected: Vec<String> = (0..PER_KEY).map(|n| format!("b{n}")).collect();
    for (sql, parameters) in [
        ("SELECT * FROM c WHERE c.pk = 'b'", json!([])),
        (
            "SELECT * FROM c WHERE c.n >= 0 AND @key = c.pk",
            json!([{"name": "@key", "value": "b"}]),
        ),
    ] {
        let pinned = query(&server, path, sql, parameters).await;
        assert_eq!(ids(&pinned), expected, "{sql}");
        assert_eq!(retrieved(&pinned), PER_KEY as u64, "{sql} reads one key");
    }
    // Two keys are not one: the whole container is read, the answer is the same.
    let either = query(
        &server,
        path,
        "SELECT VALUE c.id FROM c WHERE c.pk = 'a' OR c.pk = 'b'",
        json!([]),
    )
    .await;
    assert_eq!(retrieved(&either), 3 * PER_KEY as u64);
    assert_eq!(
        either.json()["Documents"].as_array().map(Vec::len),
        Some(2 * PER_KEY)
    );
    // A key no item has: nothing read, nothing answered.
    let none = query(
        &server,
        path,
        "SELECT * FROM c WHERE c.pk = 'zzz'",
        json!([]),
    )
    .await;
    assert_eq!(retrieved(&none), 0);
    assert!(ids(&none).is_empty());
}

#[tokio::test]
async fn a_query_that_fixes_a_hierarchical_keys_prefix_reads_only_that_prefix() {
    let server = TestServer::start().await;
    server.create_database("db").await;
    server
        .request(Method::POST, "/dbs/db/colls")
        .json(&json!({
            "id": "h",
            "partitionKey": { "paths": ["/tenant", "/user"], "kind": "MultiHash", "version": 2 },
        }))
        .send()
        .await
        .expect_status(201);
    for tenant in ["t1", "t2"] {
        for user in ["u1", "u2"] {
            for n in 0..PER_KEY {
                server
                    .request(Method::POST, "/dbs/db/colls/h/docs")
                    .header(
                        "x-ms-documentdb-partitionkey",
                        &json!([tenant, user]).to_string(),
                    )
                    .json(&json!({"id": format!("{tenant}{user}{n}"), "tenant": tenant, "user": user}))
                    .send()
                    .await
                    .expect_status(201);
            }
        }
    }
    let path = "/dbs/db/colls/h/docs";
    let tenant = query(
        &server,
        path,
        "SELECT * FROM c WHERE c.tenant = 't2'",
        json!([]),
    )
    .await;
    assert_eq!(ids(&tenant).len(), 2 * PER_KEY);
    assert_eq!(retrieved(&tenant), 2 * PER_KEY as u64, "one tenant's items");
    let user = query(
        &server,
        path,
        "SELECT * FROM c WHERE c.user = 'u1' AND c.tenant = 't2'",
        json!([]),
    )
    .await;
    assert_eq!(ids(&user).len(), PER_KEY);
    assert_eq!(
        retrieved(&user),
        PER_KEY as u64,
        "one tenant's user's items"
    );
    // The second path alone is no prefix: every item is read.
    let by_user = query(
        &server,
        path,
        "SELECT * FROM c WHERE c.user = 'u1'",
        json!([]),
    )
    .await;
    assert_eq!(ids(&by_user).len(), 2 * PER_KEY);
    assert_eq!(retrieved(&by_user), 4 * PER_KEY as u64);
}
