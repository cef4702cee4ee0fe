//! Point reads, conditional writes and queries of documents, and many tasks sharing a client.

use serde_json::{Value, json};
use tributary_client::ClientError;

use crate::harness::TestServer;

#[tokio::test]
async fn a_document_is_created_read_replaced_and_deleted_with_etag_checks() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    let pk = json!("p");

    let created = client
        .create_document("db", "c", &pk, &json!({ "id": "a", "pk": "p", "n": 1 }))
        .await
        .expect("created");
    assert!(
        created.etag.starts_with('"') && created.etag.ends_with('"'),
        "the etag keeps its quotes: {}",
        created.etag
    );
    assert_eq!(created.body["n"], 1);
    assert!(created.body["_rid"].is_string(), "{}", created.body);

    let again = client
        .create_document("db", "c", &pk, &json!({ "id": "a", "pk": "p" }))
        .await
        .expect_err("the id is taken");
    assert!(matches!(again, ClientError::Conflict { .. }), "{again:?}");

    let read = client
        .read_document("db", "c", &pk, "a")
        .await
        .expect("read")
        .expect("it exists");
    assert_eq!(read.etag, created.etag);
    assert_eq!(read.body["n"], 1);
    assert_eq!(
        client
            .read_document("db", "c", &pk, "missing")
            .await
            .expect("read"),
        None
    );

    let replaced = client
        .replace_document(
            "db",
            "c",
            &pk,
            "a",
            &json!({ "id": "a", "pk": "p", "n": 2 }),
            Some(&created.etag),
        )
        .await
        .expect("the etag matches");
    assert_ne!(replaced.etag, created.etag);
    assert_eq!(replaced.body["n"], 2);

    let stale = client
        .replace_document(
            "db",
            "c",
            &pk,
            "a",
            &json!({ "id": "a", "pk": "p", "n": 3 }),
            Some(&created.etag),
        )
        .await
        .expect_err("the etag is stale");
    assert!(
        matches!(stale, ClientError::PreconditionFailed { .. }),
        "{stale:?}"
    );

    let unconditional = client
        .replace_document(
            "db",
            "c",
            &pk,
            "a",
            &json!({ "id": "a", "pk": "p", "n": 4 }),
            None,
        )
        .await
        .expect("no condition");
    assert_eq!(unconditional.body["n"], 4);

    let missing = client
        .replace_document("db", "c", &pk, "b", &json!({ "id": "b", "pk": "p" }), None)
        .await
        .expect_err("no such document");
    assert!(
        matches!(missing, ClientError::NotFound { .. }),
        "{missing:?}"
    );

    let stale = client
        .delete_document("db", "c", &pk, "a", Some(&replaced.etag))
        .await
        .expect_err("the etag is stale");
    assert!(
        matches!(stale, ClientError::PreconditionFailed { .. }),
        "{stale:?}"
    );
    client
        .delete_document("db", "c", &pk, "a", Some(&unconditional.etag))
        .await
        .expect("the etag matches");
    let gone = client
        .delete_document("db", "c", &pk, "a", None)
        .await
        .expect_err("already deleted");
    assert!(matches!(gone, ClientError::NotFound { .. }), "{gone:?}");
    assert_eq!(
        client
            .read_document("db", "c", &pk, "a")
            .await
            .expect("read"),
        None
    );
}

#[tokio::test]
async fn upsert_creates_then_replaces() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    let pk = json!("p");
    let first = client
        .upsert_document("db", "c", &pk, &json!({ "id": "u", "pk": "p", "v": 1 }))
        .await
        .expect("created");
    let second = client
        .upsert_document("db", "c", &pk, &json!({ "id": "u", "pk": "p", "v": 2 }))
        .await
        .expect("replaced");
    assert_ne!(first.etag, second.etag);
    let read = client
        .read_document("db", "c", &pk, "u")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read.body["v"], 2);
}

#[tokio::test]
async fn partition_keys_of_every_kind_and_ids_with_odd_characters_round_trip() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    let cases = [
        (json!("é 😀"), json!({ "id": "x y+z%é", "pk": "é 😀" })),
        (json!(42), json!({ "id": "number", "pk": 42 })),
        (json!(true), json!({ "id": "bool", "pk": true })),
        (json!(null), json!({ "id": "null", "pk": null })),
        (json!({}), json!({ "id": "undefined" })),
    ];
    for (pk, body) in cases {
        let id = body["id"].as_str().expect("string id");
        client
            .create_document("db", "c", &pk, &body)
            .await
            .unwrap_or_else(|e| panic!("create {body}: {e}"));
        let read = client
            .read_document("db", "c", &pk, id)
            .await
            .unwrap_or_else(|e| panic!("read {body}: {e}"))
            .unwrap_or_else(|| panic!("{body} is found by its partition key {pk}"));
        assert_eq!(read.body["id"], body["id"]);
    }
}

#[tokio::test]
async fn a_query_with_parameters_follows_continuations_across_pages() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    // More than two of the server's default 100-result pages.
    for n in 0..250 {
        let pk = json!(format!("p{}", n % 7));
        client
            .create_document(
                "db",
                "c",
                &pk,
                &json!({ "id": format!("i{n}"), "pk": pk, "n": n }),
            )
            .await
            .expect("created");
    }
    let results = client
        .query_documents(
            "db",
            "c",
            "SELECT VALUE c.n FROM c WHERE c.n >= @min AND c.kind = @kind",
            &[("@min", json!(10)), ("@kind", Value::Null)],
        )
        .await
        .expect("the query runs");
    assert!(results.is_empty(), "no document has kind null: {results:?}");

    let results = client
        .query_documents(
            "db",
            "c",
            "SELECT VALUE c.n FROM c WHERE c.n >= @min",
            &[("@min", json!(10))],
        )
        .await
        .expect("the query runs");
    let mut numbers: Vec<i64> = results.iter().filter_map(Value::as_i64).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (10..250).collect::<Vec<_>>(), "every result once");

    let error = client
        .query_documents("db", "c", "SELECT FROM WHERE", &[])
        .await
        .expect_err("not SQL");
    assert!(
        matches!(error, ClientError::Status { status: 400, .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn clones_of_one_client_serve_many_tasks_at_once() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    let n_tasks = 40;
    let mut tasks = Vec::new();
    for task in 0..n_tasks {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..5 {
                let pk = json!(format!("t{task}"));
                client
                    .create_document(
                        "db",
                        "c",
                        &pk,
                        &json!({ "id": format!("{task}-{n}"), "pk": pk }),
                    )
                    .await
                    .expect("created");
            }
        }));
    }
    for task in tasks {
        task.await.expect("the task finishes");
    }
    let count = client
        .query_documents("db", "c", "SELECT VALUE COUNT(1) FROM c", &[])
        .await
        .expect("counted");
    assert_eq!(count, [json!(n_tasks * 5)]);
}
