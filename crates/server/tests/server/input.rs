//! Bad input: malformed bodies, oversized bodies and items, unparsable headers, bad query
//! text and continuations, unknown routes and verbs. Each is refused with the status Cosmos
//! DB uses and a JSON `{code, message}` body whose message says what is wrong.

use axum::http::Method;
use serde_json::json;
use tributary_wire::headers;

use crate::harness::TestServer;

/// The server's request body limit (`tributary_server`'s `MAX_REQUEST_BODY_BYTES`).
const MAX_REQUEST_BODY_BYTES: usize = 4 * 1024 * 1024;
/// The largest item Cosmos DB accepts (`tributary_store::MAX_ITEM_BYTES`).
const MAX_ITEM_BYTES: usize = 2 * 1024 * 1024;

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400_that_says_so() {
    let server = TestServer::with_container().await;
    for body in [&b"{\"id\": \"a\", "[..], b"not json", b"\x80\x01binary"] {
        let message = server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .partition_key("p")
            .header(headers::CONTENT_TYPE, "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect_error(400);
        assert!(message.contains("JSON"), "{message}");
    }
    let message = server
        .request(Method::POST, "/dbs")
        .body(b"[1, 2".to_vec())
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("JSON"), "{message}");
    assert_eq!(server.changed_ids().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_body_over_the_request_limit_is_a_413() {
    let server = TestServer::with_container().await;
    let padding = "x".repeat(MAX_REQUEST_BODY_BYTES);
    let message = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .partition_key("p")
        .json(&json!({ "id": "big", "pk": "p", "padding": padding }))
        .send()
        .await
        .expect_error(413);
    assert!(
        message.contains(&MAX_REQUEST_BODY_BYTES.to_string()),
        "{message}"
    );
    assert_eq!(server.changed_ids().await, Vec::<String>::new());
}

#[tokio::test]
async fn an_item_over_2_mb_is_a_413_and_is_not_stored() {
    let server = TestServer::with_container().await;
    let padding = "x".repeat(MAX_ITEM_BYTES);
    for method in [Method::POST, Method::PUT] {
        let path = if method == Method::PUT {
            "/dbs/db/colls/c/docs/big"
        } else {
            "/dbs/db/colls/c/docs"
        };
        let message = server
            .request(method, path)
            .partition_key("p")
            .header(headers::X_MS_DOCUMENTDB_IS_UPSERT, "true")
            .json(&json!({ "id": "big", "pk": "p", "padding": padding }))
            .send()
            .await
            .expect_error(413);
        assert!(message.contains(&MAX_ITEM_BYTES.to_string()), "{message}");
    }
    // Just under the limit is accepted.
    let padding = "x".repeat(MAX_ITEM_BYTES - 1024);
    server
        .create_item("p", &json!({ "id": "fits", "pk": "p", "padding": padding }))
        .await;
    assert_eq!(server.changed_ids().await, ["fits"]);
}

#[tokio::test]
async fn an_unparsable_partition_key_header_is_a_400_naming_the_header() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({ "id": "a", "pk": "p" }))
        .await;
    for value in ["p", "[p]", "{\"a\":1}", "[[1]]", "[\"p\""] {
        for (method, path) in [
            (Method::GET, "/dbs/db/colls/c/docs/a"),
            (Method::DELETE, "/dbs/db/colls/c/docs/a"),
            (Method::POST, "/dbs/db/colls/c/docs"),
        ] {
            let message = server
                .request(method.clone(), path)
                .header(headers::X_MS_DOCUMENTDB_PARTITIONKEY, value)
                .json(&json!({ "id": "b", "pk": "p" }))
                .send()
                .await
                .expect_error(400);
            assert!(
                message.contains(headers::X_MS_DOCUMENTDB_PARTITIONKEY),
                "{method} with partition key {value}: {message}"
            );
        }
    }
    assert_eq!(server.changed_ids().await, ["a"]);
}

#[tokio::test]
async fn a_partition_key_header_that_disagrees_with_the_body_is_a_400() {
    let server = TestServer::with_container().await;
    server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .partition_key("q")
        .json(&json!({ "id": "a", "pk": "p" }))
        .send()
        .await
        .expect_error(400);
    assert_eq!(server.changed_ids().await, Vec::<String>::new());
}

#[tokio::test]
async fn an_invalid_max_item_count_is_a_400() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({ "id": "a", "pk": "p" }))
        .await;
    for value in ["0", "-2", "ten", "1.5", "99999999999999999999"] {
        let change_feed = server
            .request(Method::GET, "/dbs/db/colls/c/docs")
            .header(headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED)
            .header(headers::X_MS_MAX_ITEM_COUNT, value);
        let read_feed = server
            .request(Method::GET, "/dbs/db/colls/c/docs")
            .header(headers::X_MS_MAX_ITEM_COUNT, value);
        let query = server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .query("SELECT * FROM c")
            .header(headers::X_MS_MAX_ITEM_COUNT, value);
        for (what, request) in [
            ("change feed", change_feed),
            ("read feed", read_feed),
            ("query", query),
        ] {
            let message = request.send().await.expect_error(400);
            assert!(
                message.contains("x-ms-max-item-count"),
                "{what} with {value}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn an_if_none_match_that_is_not_a_feed_etag_is_a_400_on_the_change_feed() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({ "id": "a", "pk": "p" }))
        .await;
    for etag in ["\"abc\"", "-1", "\"1.5\"", "W/\"3\""] {
        let message = server.change_feed(Some(etag)).await.expect_error(400);
        assert!(message.contains("If-None-Match"), "{etag}: {message}");
    }
}

#[tokio::test]
async fn an_unknown_a_im_is_a_400() {
    let server = TestServer::with_container().await;
    let message = server
        .request(Method::GET, "/dbs/db/colls/c/docs")
        .header(headers::A_IM, "Everything")
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("A-IM"), "{message}");
}

#[tokio::test]
async fn a_query_syntax_error_is_a_400_with_its_position() {
    let server = TestServer::with_container().await;
    for (sql, position) in [
        ("SELECT * FROM c WHERE", "at byte 21"),
        ("SELECT * FORM c", "at byte 9"),
        ("SELECT c.id FROM c WHERE c.n = 'unterminated", "at byte 31"),
    ] {
        let message = server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .query(sql)
            .send()
            .await
            .expect_error(400);
        assert!(message.contains(position), "{sql}: {message}");
    }
}

#[tokio::test]
async fn a_query_body_without_query_text_is_a_400() {
    let server = TestServer::with_container().await;
    for body in [
        json!({ "parameters": [] }),
        json!(42),
        json!({ "query": 1 }),
    ] {
        server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .header(headers::X_MS_DOCUMENTDB_ISQUERY, "true")
            .json(&body)
            .send()
            .await
            .expect_error(400);
    }
}

#[tokio::test]
async fn an_invalid_continuation_is_a_400() {
    let server = TestServer::with_container().await;
    for n in 0..3 {
        server
            .create_item("p", &json!({ "id": format!("i{n}"), "pk": "p" }))
            .await;
    }
    for token in [
        "not base64!",
        "bm90IGpzb24=",
        "eyJvZmZzZXQiOi0xfQ==",
        "\"\"",
    ] {
        let query = server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .query("SELECT * FROM c")
            .header(headers::X_MS_CONTINUATION, token);
        let read_feed = server
            .request(Method::GET, "/dbs/db/colls/c/docs")
            .header(headers::X_MS_CONTINUATION, token);
        for (what, request) in [("query", query), ("read feed", read_feed)] {
            let message = request.send().await.expect_error(400);
            assert!(
                message.contains("continuation"),
                "{what} with {token}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let server = TestServer::with_container().await;
    for (method, path) in [
        (Method::GET, "/nothing"),
        (Method::GET, "/dbs/db/colls/c/schemas"),
        (Method::GET, "/dbs/db/colls/c/udfs/u/extra"),
        (Method::POST, "/dbs/db/colls/c/docs/a/attachments"),
    ] {
        let message = server.request(method, path).send().await.expect_error(404);
        assert!(message.contains("no resource"), "{path}: {message}");
    }
}

#[tokio::test]
async fn missing_resources_are_json_404s() {
    let server = TestServer::with_container().await;
    for path in [
        "/dbs/nope",
        "/dbs/nope/colls/c",
        "/dbs/db/colls/nope",
        "/dbs/db/colls/c/docs/nope",
        "/dbs/db/colls/nope/pkranges",
    ] {
        let message = server
            .request(Method::GET, path)
            .partition_key("p")
            .send()
            .await
            .expect_error(404);
        assert!(message.contains("nope"), "{path}: {message}");
    }
}

#[tokio::test]
async fn a_verb_a_resource_does_not_support_is_a_json_405() {
    let server = TestServer::with_container().await;
    for (method, path) in [
        (Method::DELETE, "/dbs/db/colls/c/docs"),
        (Method::PUT, "/dbs/db/colls"),
        (Method::POST, "/dbs/db"),
        (Method::POST, "/dbs/db/colls/c/docs/a"),
        (Method::PATCH, "/dbs/db/colls/c"),
    ] {
        let message = server
            .request(method.clone(), path)
            .json(&json!({}))
            .send()
            .await
            .expect_error(405);
        assert!(
            message.contains(method.as_str()),
            "{method} {path}: {message}"
        );
    }
}

#[tokio::test]
async fn an_item_id_with_a_slash_is_a_400() {
    let server = TestServer::with_container().await;
    let message = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .partition_key("p")
        .json(&json!({ "id": "a/b", "pk": "p" }))
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("a/b"), "{message}");
    for method in [Method::PUT, Method::DELETE, Method::GET] {
        let message = server
            .request(method.clone(), "/dbs/db/colls/c/docs/a%2Fb")
            .partition_key("p")
            .json(&json!({ "id": "a/b", "pk": "p" }))
            .send()
            .await
            .expect_error(400);
        assert!(message.contains("a/b"), "{method}: {message}");
    }
    assert_eq!(server.changed_ids().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_database_or_container_id_with_a_slash_is_a_400() {
    let server = TestServer::with_container().await;
    server
        .request(Method::POST, "/dbs")
        .json(&json!({ "id": "x/y" }))
        .send()
        .await
        .expect_error(400);
    server
        .request(Method::POST, "/dbs/db/colls")
        .json(&json!({ "id": "x/y", "partitionKey": { "paths": ["/pk"], "kind": "Hash" } }))
        .send()
        .await
        .expect_error(400);
    assert_eq!(server.store.list_databases().len(), 1);
    assert_eq!(
        server.store.list_containers("db").map(|c| c.len()).ok(),
        Some(1)
    );
}

#[tokio::test]
async fn a_path_that_does_not_decode_is_a_json_400() {
    let server = TestServer::with_container().await;
    for path in ["/dbs//colls", "/dbs/%FF%FE", "/dbs/db/colls/c/docs/%C3%28"] {
        let message = server
            .request(Method::GET, path)
            .send()
            .await
            .expect_error(400);
        assert!(message.contains("path"), "{path}: {message}");
    }
}
