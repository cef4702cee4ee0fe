//! Users, permissions and resource tokens: user and permission CRUD with Cosmos DB's status
//! codes and bodies, and what a token grants: its resource and what lies below it, in its
//! mode, under its partition key, until it expires or its permission is deleted or replaced;
//! forged or altered tokens, other containers and management requests are refused.

use std::time::Duration;

use axum::http::Method;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use tributary_wire::headers;

use crate::harness::{Response, TestRequest, TestServer};

/// Database `db` with containers `c` and `other` (both on `/pk`), items `a` (pk `p1`) and `b`
/// (pk `p2`) in `c`, and user `ada`.
async fn server_with_user() -> TestServer {
    let server = TestServer::with_container().await;
    server.create_container("db", "other").await;
    server
        .create_item("p1", &json!({"id": "a", "pk": "p1"}))
        .await;
    server
        .create_item("p2", &json!({"id": "b", "pk": "p2"}))
        .await;
    server
        .request(Method::POST, "/dbs/db/users")
        .json(&json!({"id": "ada"}))
        .send()
        .await
        .expect_status(201);
    server
}

/// Creates a permission of `ada` and returns its token.
async fn permission_token(server: &TestServer, permission: Value) -> String {
    let response = server
        .request(Method::POST, "/dbs/db/users/ada/permissions")
        .json(&permission)
        .send()
        .await;
    response.expect_status(201);
    response.json()["_token"]
        .as_str()
        .expect("a permission has a token")
        .to_owned()
}

/// A request sent with `token` (URL-encoded, as the SDKs send it) instead of a master key.
fn with_token<'a>(request: TestRequest<'a>, token: &str) -> TestRequest<'a> {
    let encoded = utf8_percent_encode(token, NON_ALPHANUMERIC).to_string();
    request.header(headers::AUTHORIZATION, &encoded)
}

async fn read_item(server: &TestServer, token: &str, id: &str, pk: &str) -> Response {
    with_token(
        server
            .request(Method::GET, &format!("/dbs/db/colls/c/docs/{id}"))
            .partition_key(pk),
        token,
    )
    .send()
    .await
}

async fn create_item(server: &TestServer, token: &str, container: &str, item: Value) -> Response {
    let pk = item["pk"].as_str().expect("a pk").to_owned();
    with_token(
        server
            .request(Method::POST, &format!("/dbs/db/colls/{container}/docs"))
            .partition_key(&pk)
            .json(&item),
        token,
    )
    .send()
    .await
}

#[tokio::test]
async fn users_are_created_listed_renamed_upserted_and_deleted_with_cosmos_statuses() {
    let server = server_with_user().await;
    let user = server
        .request(Method::GET, "/dbs/db/users/ada")
        .send()
        .await;
    user.expect_status(200);
    let body = user.json();
    assert_eq!(body["id"], "ada");
    assert_eq!(body["_permissions"], "permissions/");
    for key in ["_rid", "_self", "_etag"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
    assert!(body["_ts"].is_u64());
    assert_eq!(user.header(headers::ETAG), body["_etag"].as_str());

    let duplicate = server
        .request(Method::POST, "/dbs/db/users")
        .json(&json!({"id": "ada"}))
        .send()
        .await
        .expect_error(409);
    assert!(duplicate.contains("ada"), "{duplicate}");
    let bad = server
        .request(Method::POST, "/dbs/db/users")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .expect_error(400);
    assert!(bad.contains("'id'"), "{bad}");
    server
        .request(Method::POST, "/dbs/nodb/users")
        .json(&json!({"id": "x"}))
        .send()
        .await
        .expect_error(404);

    let upserted = server
        .request(Method::POST, "/dbs/db/users")
        .header(headers::X_MS_DOCUMENTDB_IS_UPSERT, "True")
        .json(&json!({"id": "bob"}))
        .send()
        .await;
    upserted.expect_status(201);
    server
        .request(Method::POST, "/dbs/db/users")
        .header(headers::X_MS_DOCUMENTDB_IS_UPSERT, "True")
        .json(&json!({"id": "bob"}))
        .send()
        .await
        .expect_status(200);

    let renamed = server
        .request(Method::PUT, "/dbs/db/users/bob")
        .json(&json!({"id": "carol"}))
        .send()
        .await;
    renamed.expect_status(200);
    assert_eq!(renamed.json()["id"], "carol");
    assert_eq!(renamed.json()["_rid"], upserted.json()["_rid"]);
    server
        .request(Method::PUT, "/dbs/db/users/carol")
        .json(&json!({"id": "ada"}))
        .send()
        .await
        .expect_error(409);

    let list = server.request(Method::GET, "/dbs/db/users").send().await;
    list.expect_status(200);
    let ids: Vec<String> = list.json()["Users"]
        .as_array()
        .expect("a Users array")
        .iter()
        .filter_map(|u| u["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(ids, ["ada", "carol"]);
    assert_eq!(list.json()["_count"], 2);
    let queried = server
        .request(Method::POST, "/dbs/db/users")
        .query("SELECT * FROM root r WHERE r.id = 'carol'")
        .send()
        .await;
    queried.expect_status(200);
    assert_eq!(queried.json()["Users"][0]["id"], "carol");

    server
        .request(Method::DELETE, "/dbs/db/users/carol")
        .send()
        .await
        .expect_status(204);
    server
        .request(Method::DELETE, "/dbs/db/users/carol")
        .send()
        .await
        .expect_error(404);
    server
        .request(Method::GET, "/dbs/db/users/bob")
        .send()
        .await
        .expect_error(404);
}

#[tokio::test]
async fn permissions_carry_a_token_and_keep_what_was_sent() {
    let server = server_with_user().await;
    let created = server
        .request(Method::POST, "/dbs/db/users/ada/permissions")
        .json(&json!({
            "id": "read-c", "permissionMode": "Read", "resource": "dbs/db/colls/c",
            "resourcePartitionKey": ["p1"],
        }))
        .send()
        .await;
    created.expect_status(201);
    let body = created.json();
    assert_eq!(body["permissionMode"], "Read");
    assert_eq!(body["resource"], "dbs/db/colls/c");
    assert_eq!(body["resourcePartitionKey"], json!(["p1"]));
    assert!(
        body["_token"]
            .as_str()
            .is_some_and(|t| t.starts_with("type=resource&ver=1.0&sig=")),
        "{body}"
    );
    for key in ["_rid", "_self", "_etag"] {
        assert!(body[key].is_string(), "{key} in {body}");
    }

    server
        .request(Method::POST, "/dbs/db/users/ada/permissions")
        .json(&json!({"id": "read-c", "permissionMode": "All", "resource": "dbs/db"}))
        .send()
        .await
        .expect_error(409);
    for (bad, expected) in [
        (
            json!({"id": "x", "permissionMode": "Write", "resource": "dbs/db"}),
            "'Read' or 'All'",
        ),
        (json!({"id": "x", "permissionMode": "All"}), "'resource'"),
        (
            json!({"id": "x", "permissionMode": "All", "resource": "colls/c"}),
            "resource link",
        ),
    ] {
        let message = server
            .request(Method::POST, "/dbs/db/users/ada/permissions")
            .json(&bad)
            .send()
            .await
            .expect_error(400);
        assert!(message.contains(expected), "{bad}: {message}");
    }
    server
        .request(Method::POST, "/dbs/db/users/nobody/permissions")
        .json(&json!({"id": "x", "permissionMode": "All", "resource": "dbs/db"}))
        .send()
        .await
        .expect_error(404);

    for expiry in ["0", "18001", "soon"] {
        let message = server
            .request(Method::GET, "/dbs/db/users/ada/permissions/read-c")
            .header(headers::X_MS_DOCUMENTDB_EXPIRY_SECONDS, expiry)
            .send()
            .await
            .expect_error(400);
        assert!(message.contains("18000"), "{expiry}: {message}");
    }
    let read = server
        .request(Method::GET, "/dbs/db/users/ada/permissions/read-c")
        .header(headers::X_MS_DOCUMENTDB_EXPIRY_SECONDS, "18000")
        .send()
        .await;
    read.expect_status(200);
    assert_eq!(read.json()["_rid"], body["_rid"]);

    let upserted = server
        .request(Method::POST, "/dbs/db/users/ada/permissions")
        .header(headers::X_MS_DOCUMENTDB_IS_UPSERT, "true")
        .json(&json!({"id": "read-c", "permissionMode": "All", "resource": "dbs/db/colls/c"}))
        .send()
        .await;
    upserted.expect_status(200);
    assert_eq!(upserted.json()["permissionMode"], "All");
    assert_ne!(upserted.json()["_etag"], body["_etag"]);

    let replaced = server
        .request(Method::PUT, "/dbs/db/users/ada/permissions/read-c")
        .json(&json!({"id": "all-c", "permissionMode": "All", "resource": "dbs/db/colls/c"}))
        .send()
        .await;
    replaced.expect_status(200);
    assert_eq!(replaced.json()["id"], "all-c");
    let list = server
        .request(Method::GET, "/dbs/db/users/ada/permissions")
        .send()
        .await;
    list.expect_status(200);
    assert_eq!(list.json()["_count"], 1);
    assert_eq!(list.json()["Permissions"][0]["id"], "all-c");
    assert!(list.json()["Permissions"][0]["_token"].is_string());
    server
        .request(Method::DELETE, "/dbs/db/users/ada/permissions/all-c")
        .send()
        .await
        .expect_status(204);
    server
        .request(Method::GET, "/dbs/db/users/ada/permissions/all-c")
        .send()
        .await
        .expect_error(404);
}

#[tokio::test]
async fn a_read_token_reads_its_container_and_writes_nothing() {
    let server = server_with_user().await;
    let token = permission_token(
        &server,
        json!({"id": "read-c", "permissionMode": "Read", "resource": "dbs/db/colls/c"}),
    )
    .await;
    for path in [
        "/",
        "/dbs/db",
        "/dbs/db/colls/c",
        "/dbs/db/colls/c/pkranges",
    ] {
        with_token(server.request(Method::GET, path), &token)
            .send()
            .await
            .expect_status(200);
    }
    let item = read_item(&server, &token, "a", "p1").await;
    item.expect_status(200);
    assert_eq!(item.json()["id"], "a");
    let feed = with_token(server.request(Method::GET, "/dbs/db/colls/c/docs"), &token)
        .send()
        .await;
    feed.expect_status(200);
    assert_eq!(feed.json()["_count"], 2);
    let query = with_token(
        server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .query("SELECT * FROM c"),
        &token,
    )
    .send()
    .await;
    query.expect_status(200);

    let message = create_item(&server, &token, "c", json!({"id": "new", "pk": "p1"}))
        .await
        .expect_error(403);
    assert!(message.contains("Read"), "{message}");
    with_token(
        server
            .request(Method::DELETE, "/dbs/db/colls/c/docs/a")
            .partition_key("p1"),
        &token,
    )
    .send()
    .await
    .expect_error(403);
    // Other containers, and management of containers, databases, users and permissions.
    with_token(
        server.request(Method::GET, "/dbs/db/colls/other/docs"),
        &token,
    )
    .send()
    .await
    .expect_error(403);
    for (method, path) in [
        (Method::DELETE, "/dbs/db/colls/c"),
        (Method::DELETE, "/dbs/db"),
        (Method::GET, "/dbs"),
        (Method::GET, "/dbs/db/users"),
        (Method::GET, "/dbs/db/users/ada/permissions/read-c"),
        (Method::GET, "/offers"),
    ] {
        with_token(server.request(method.clone(), path), &token)
            .send()
            .await
            .expect_error(403);
    }
    with_token(
        server
            .request(Method::POST, "/dbs/db/colls")
            .json(&json!({"id": "x", "partitionKey": {"paths": ["/pk"]}})),
        &token,
    )
    .send()
    .await
    .expect_error(403);
}

#[tokio::test]
async fn an_all_token_limited_to_a_partition_key_writes_only_there() {
    let server = server_with_user().await;
    let token = permission_token(
        &server,
        json!({
            "id": "tenant", "permissionMode": "All", "resource": "dbs/db/colls/c",
            "resourcePartitionKey": ["p1"],
        }),
    )
    .await;
    create_item(&server, &token, "c", json!({"id": "mine", "pk": "p1"}))
        .await
        .expect_status(201);
    read_item(&server, &token, "a", "p1")
        .await
        .expect_status(200);
    let message = create_item(&server, &token, "c", json!({"id": "theirs", "pk": "p2"}))
        .await
        .expect_error(403);
    assert!(message.contains("[\"p1\"]"), "{message}");
    read_item(&server, &token, "b", "p2")
        .await
        .expect_error(403);
    // A cross-partition query names no key: refused; the same query in p1 is served.
    let message = with_token(
        server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .query("SELECT * FROM c"),
        &token,
    )
    .send()
    .await
    .expect_error(403);
    assert!(message.contains("cross-partition"), "{message}");
    let query = with_token(
        server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .query("SELECT * FROM c")
            .partition_key("p1"),
        &token,
    )
    .send()
    .await;
    query.expect_status(200);
    assert_eq!(query.json()["_count"], 2, "a and mine");
    with_token(
        server
            .request(Method::DELETE, "/dbs/db/colls/c/docs/mine")
            .partition_key("p1"),
        &token,
    )
    .send()
    .await
    .expect_status(204);
    create_item(&server, &token, "other", json!({"id": "x", "pk": "p1"}))
        .await
        .expect_error(403);

    // A range or EPK scope, and bulk operations, would reach past the key: refused. A
    // transactional batch is one key, checked by the store: served.
    for (header, value) in [
        (headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID, "0"),
        (headers::X_MS_START_EPK, ""),
    ] {
        let message = with_token(
            server
                .request(Method::GET, "/dbs/db/colls/c/docs")
                .partition_key("p1")
                .header(header, value),
            &token,
        )
        .send()
        .await
        .expect_error(403);
        assert!(message.contains(header), "{message}");
    }
    // An EPK span inside the key's span (as the Python SDK's partition-key change feed sends
    // it, with a range id and no key header) is served, and holds only that key's items; a
    // wider span is refused.
    let span = pk_value("p1")
        .epk_range(&tributary_partition_key::PartitionKeyDefinition::single(
            "/pk",
        ))
        .expect("a key of the container");
    let feed = with_token(
        server
            .request(Method::GET, "/dbs/db/colls/c/docs")
            .header(headers::A_IM, "Incremental Feed")
            .header(headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID, "0")
            .header(headers::X_MS_START_EPK, span.min.as_str())
            .header(headers::X_MS_END_EPK, span.max.as_str()),
        &token,
    )
    .send()
    .await;
    feed.expect_status(200);
    assert_eq!(crate::harness::document_ids(&feed.json()), ["a"]);
    with_token(
        server
            .request(Method::GET, "/dbs/db/colls/c/docs")
            .header(headers::A_IM, "Incremental Feed")
            .header(headers::X_MS_START_EPK, "")
            .header(headers::X_MS_END_EPK, "FF"),
        &token,
    )
    .send()
    .await
    .expect_error(403);

    let bulk = json!([{"operationType": "Create", "partitionKey": "[\"p2\"]", "resourceBody": {"id": "sneaky", "pk": "p2"}}]);
    let message = with_token(
        server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .header(headers::X_MS_COSMOS_IS_BATCH_REQUEST, "true")
            .header(headers::X_MS_COSMOS_BATCH_ATOMIC, "false")
            .partition_key("p1")
            .json(&bulk),
        &token,
    )
    .send()
    .await
    .expect_error(403);
    assert!(message.contains("bulk"), "{message}");
    let batch = json!([{"operationType": "Create", "resourceBody": {"id": "batched", "pk": "p1"}}]);
    with_token(
        server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .header(headers::X_MS_COSMOS_IS_BATCH_REQUEST, "true")
            .header(headers::X_MS_COSMOS_BATCH_ATOMIC, "true")
            .partition_key("p1")
            .json(&batch),
        &token,
    )
    .send()
    .await
    .expect_status(200);
    assert!(
        server
            .store
            .read_item("db", "c", &pk_value("p2"), "sneaky")
            .is_err(),
        "nothing reached partition p2"
    );
}

fn pk_value(pk: &str) -> tributary_partition_key::PartitionKey {
    tributary_partition_key::PartitionKey::from_json(&json!([pk])).expect("a string key")
}

#[tokio::test]
async fn a_new_primary_master_key_invalidates_every_token() {
    let keys = tributary_server::AccountKeys::generate().expect("random keys");
    let server = TestServer::start_with(|config| config.keys = keys.clone()).await;
    server.create_database("db").await;
    server.create_container("db", "c").await;
    server
        .create_item("p1", &json!({"id": "a", "pk": "p1"}))
        .await;
    server
        .request(Method::POST, "/dbs/db/users")
        .json(&json!({"id": "ada"}))
        .send()
        .await
        .expect_status(201);
    let token = permission_token(
        &server,
        json!({"id": "p", "permissionMode": "Read", "resource": "dbs/db/colls/c"}),
    )
    .await;
    read_item(&server, &token, "a", "p1")
        .await
        .expect_status(200);

    // The secondary key changes: tokens still hold.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("keys.json");
    let mut rotated = keys.clone();
    rotated.secondary_master_key = tributary_server::AccountKeys::generate()
        .expect("random keys")
        .secondary_master_key;
    std::fs::write(
        &path,
        serde_json::to_string(&rotated).expect("keys serialize"),
    )
    .expect("the keys file is written");
    server.key_ring.reload_file(&path).expect("valid keys");
    read_item(&server, &token, "a", "p1")
        .await
        .expect_status(200);

    // The primary key changes: every token minted under it is refused.
    rotated.primary_master_key = tributary_server::AccountKeys::generate()
        .expect("random keys")
        .primary_master_key;
    std::fs::write(
        &path,
        serde_json::to_string(&rotated).expect("keys serialize"),
    )
    .expect("the keys file is written");
    server.key_ring.reload_file(&path).expect("valid keys");
    let message = read_item(&server, &token, "a", "p1")
        .await
        .expect_error(401);
    assert!(message.contains("another primary master key"), "{message}");
}

#[tokio::test]
async fn an_item_token_reaches_that_item_and_the_container_properties_the_sdks_read() {
    let server = server_with_user().await;
    let token = permission_token(
        &server,
        json!({"id": "doc-a", "permissionMode": "All", "resource": "dbs/db/colls/c/docs/a"}),
    )
    .await;
    with_token(server.request(Method::GET, "/dbs/db/colls/c"), &token)
        .send()
        .await
        .expect_status(200);
    read_item(&server, &token, "a", "p1")
        .await
        .expect_status(200);
    read_item(&server, &token, "b", "p2")
        .await
        .expect_error(403);
    with_token(server.request(Method::GET, "/dbs/db/colls/c/docs"), &token)
        .send()
        .await
        .expect_error(403);
    with_token(
        server
            .request(Method::DELETE, "/dbs/db/colls/c/docs/a")
            .partition_key("p1"),
        &token,
    )
    .send()
    .await
    .expect_status(204);
}

#[tokio::test]
async fn a_database_token_reaches_every_container_of_its_database() {
    let server = server_with_user().await;
    let token = permission_token(
        &server,
        json!({"id": "db-read", "permissionMode": "Read", "resource": "dbs/db"}),
    )
    .await;
    for path in [
        "/dbs/db",
        "/dbs/db/colls",
        "/dbs/db/colls/c",
        "/dbs/db/colls/other/pkranges",
        "/dbs/db/colls/other/docs",
    ] {
        with_token(server.request(Method::GET, path), &token)
            .send()
            .await
            .expect_status(200);
    }
    read_item(&server, &token, "b", "p2")
        .await
        .expect_status(200);
    create_item(&server, &token, "other", json!({"id": "x", "pk": "p1"}))
        .await
        .expect_error(403);
    for (method, path) in [
        (Method::GET, "/dbs/db/users"),
        (Method::DELETE, "/dbs/db/colls/c"),
    ] {
        with_token(server.request(method, path), &token)
            .send()
            .await
            .expect_error(403);
    }
}

#[tokio::test]
async fn a_token_by_resource_ids_works_like_one_by_names() {
    let server = server_with_user().await;
    let container = server
        .request(Method::GET, "/dbs/db/colls/c")
        .send()
        .await
        .json();
    let self_link = container["_self"]
        .as_str()
        .expect("a _self link")
        .to_owned();
    let token = permission_token(
        &server,
        json!({"id": "by-rid", "permissionMode": "Read", "resource": self_link}),
    )
    .await;
    read_item(&server, &token, "a", "p1")
        .await
        .expect_status(200);
    with_token(
        server.request(Method::GET, "/dbs/db/colls/other/docs"),
        &token,
    )
    .send()
    .await
    .expect_error(403);
}

#[tokio::test]
async fn deleted_replaced_expired_forged_and_altered_tokens_are_refused() {
    let server = server_with_user().await;
    let permission = json!({"id": "p", "permissionMode": "Read", "resource": "dbs/db/colls/c"});
    let token = permission_token(&server, permission.clone()).await;
    read_item(&server, &token, "a", "p1")
        .await
        .expect_status(200);

    // Altered: one character of the claims changed; forged: claims of another permission
    // under this signature; a token of another account's key.
    let mut altered = token.clone();
    let last = altered.pop().expect("a token is not empty");
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let message = read_item(&server, &altered, "a", "p1")
        .await
        .expect_error(401);
    assert!(message.contains("resource token is invalid"), "{message}");
    let (signature, _) = token.split_once(';').expect("signature;claims");
    let (_, other_claims) = permission_token(
        &server,
        json!({"id": "q", "permissionMode": "All", "resource": "dbs/db"}),
    )
    .await
    .split_once(';')
    .map(|(s, c)| (s.to_owned(), c.to_owned()))
    .expect("signature;claims");
    let forged = format!("{signature};{other_claims}");
    read_item(&server, &forged, "a", "p1")
        .await
        .expect_error(401);
    let stranger = TestServer::start_with(|config| {
        config.keys = tributary_server::AccountKeys::generate().expect("random keys");
    })
    .await;
    stranger.create_database("db").await;
    read_item(&stranger, &token, "a", "p1")
        .await
        .expect_error(401);

    // Replaced: the old token no longer works, the new one does.
    let replaced = server
        .request(Method::PUT, "/dbs/db/users/ada/permissions/p")
        .json(&permission)
        .send()
        .await;
    replaced.expect_status(200);
    let message = read_item(&server, &token, "a", "p1")
        .await
        .expect_error(401);
    assert!(message.contains("replaced"), "{message}");
    let fresh = replaced.json()["_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    read_item(&server, &fresh, "a", "p1")
        .await
        .expect_status(200);

    // Deleted with its user.
    server
        .request(Method::DELETE, "/dbs/db/users/ada")
        .send()
        .await
        .expect_status(204);
    let message = read_item(&server, &fresh, "a", "p1")
        .await
        .expect_error(401);
    assert!(message.contains("deleted"), "{message}");

    // Expired: a one-second token, a second later.
    server
        .request(Method::POST, "/dbs/db/users")
        .json(&json!({"id": "ada"}))
        .send()
        .await
        .expect_status(201);
    let short = server
        .request(Method::POST, "/dbs/db/users/ada/permissions")
        .header(headers::X_MS_DOCUMENTDB_EXPIRY_SECONDS, "1")
        .json(&permission)
        .send()
        .await;
    short.expect_status(201);
    let short = short.json()["_token"].as_str().expect("a token").to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let message = read_item(&server, &short, "a", "p1")
        .await
        .expect_error(401);
    assert!(message.contains("expired"), "{message}");
}

#[tokio::test]
async fn read_only_keys_read_users_but_not_permissions() {
    let keys = tributary_server::AccountKeys::generate().expect("random keys");
    let read_only = tributary_wire::auth::MasterKey::from_base64(
        keys.get(tributary_wire::auth::KeyKind::PrimaryReadOnly)
            .expect("generated keys include a read-only key"),
    )
    .expect("base64");
    let primary = tributary_wire::auth::MasterKey::from_base64(
        keys.get(tributary_wire::auth::KeyKind::Primary)
            .expect("a primary key"),
    )
    .expect("base64");
    let server = TestServer::start_with(|config| config.keys = keys).await;
    server.create_database("db").await;
    server
        .request(Method::POST, "/dbs/db/users")
        .signed_with(primary)
        .json(&json!({"id": "ada"}))
        .send()
        .await
        .expect_status(201);
    server
        .request(Method::GET, "/dbs/db/users/ada")
        .signed_with(read_only.clone())
        .send()
        .await
        .expect_status(200);
    let message = server
        .request(Method::GET, "/dbs/db/users/ada/permissions")
        .signed_with(read_only.clone())
        .send()
        .await
        .expect_error(403);
    assert!(message.contains("cannot read permissions"), "{message}");
    server
        .request(Method::POST, "/dbs/db/users")
        .signed_with(read_only)
        .json(&json!({"id": "bob"}))
        .send()
        .await
        .expect_error(403);
}

#[tokio::test]
async fn users_and_permissions_are_read_by_their_resource_id_links() {
    let server = server_with_user().await;
    permission_token(
        &server,
        json!({"id": "p", "permissionMode": "Read", "resource": "dbs/db/colls/c"}),
    )
    .await;
    let user = server
        .request(Method::GET, "/dbs/db/users/ada")
        .send()
        .await
        .json();
    let user_link = user["_self"].as_str().expect("a _self link").to_owned();
    let by_rid = server
        .request(
            Method::GET,
            &format!("/{}", user_link.trim_end_matches('/')),
        )
        .send()
        .await
        .json();
    assert_eq!(by_rid["id"], "ada", "{by_rid}");
    let permission = server
        .request(Method::GET, "/dbs/db/users/ada/permissions/p")
        .send()
        .await
        .json();
    let permission_link = permission["_self"].as_str().expect("a _self link");
    let by_rid = server
        .request(
            Method::GET,
            &format!("/{}", permission_link.trim_end_matches('/')),
        )
        .send()
        .await
        .json();
    assert_eq!(by_rid["id"], "p");
    let missing = format!("/{}", user_link.trim_end_matches('/'))
        .replace(user["_rid"].as_str().expect("a rid"), "AAAAAAAAAAA=");
    let message = server
        .request(Method::GET, &missing)
        .send()
        .await
        .expect_error(404);
    assert!(message.contains("no user has the resource id"), "{message}");
}
