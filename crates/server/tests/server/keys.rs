//! The account's four keys: each authenticates; requests signed with a read-only key may
//! read, query and follow the change feed, and every write they attempt is answered 403 before
//! it has any effect; and the keys can be swapped from a keys file while requests run.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};
use tributary_server::{AccountKeys, KeysError};
use tributary_wire::auth::{KeyKind, MasterKey};
use tributary_wire::headers;

use crate::harness::{REQUEST_TIMEOUT, TestRequest, TestServer, document_ids};

/// Four distinct generated keys.
fn four_keys() -> AccountKeys {
    AccountKeys::generate().expect("the OS has random bytes")
}

fn master_key(text: &str) -> MasterKey {
    MasterKey::from_base64(text).expect("a generated key is valid base64")
}

/// The key of `kind` in `keys`, decoded.
fn key_of(keys: &AccountKeys, kind: KeyKind) -> MasterKey {
    master_key(keys.get(kind).expect("the key is set"))
}

/// A server accepting `keys`, with database `db`, container `c` (partitioned on `/pk`) and
/// one item, `seed`.
async fn server_with(keys: AccountKeys) -> TestServer {
    let server = TestServer::start_with(|config| config.keys = keys).await;
    server.create_database("db").await;
    server.create_container("db", "c").await;
    server
        .create_item("p", &json!({ "id": "seed", "pk": "p", "n": 1 }))
        .await;
    server
}

#[tokio::test]
async fn each_of_the_four_keys_authenticates_and_no_other_does() {
    let keys = four_keys();
    let server = server_with(keys.clone()).await;
    for kind in KeyKind::ALL {
        let response = server
            .request(Method::GET, "/dbs/db/colls/c/docs/seed")
            .partition_key("p")
            .signed_with(key_of(&keys, kind))
            .send()
            .await;
        response.expect_status(200);
        assert_eq!(response.json()["id"], "seed", "{kind}");
    }
    let stranger = four_keys();
    let message = server
        .request(Method::GET, "/dbs/db/colls/c/docs/seed")
        .partition_key("p")
        .signed_with(key_of(&stranger, KeyKind::Primary))
        .send()
        .await
        .expect_error(401);
    assert!(message.contains("wrong key"), "{message}");
}

#[tokio::test]
async fn the_secondary_key_alone_serves_an_account() {
    let mut keys = four_keys();
    keys.primary_master_key = None;
    keys.primary_readonly_master_key = None;
    let server = server_with(keys.clone()).await;
    server
        .request(Method::GET, "/dbs/db")
        .signed_with(key_of(&keys, KeyKind::SecondaryReadOnly))
        .send()
        .await
        .expect_status(200);
}

/// Requests that only read, each with the status it is answered.
fn reads(server: &TestServer) -> Vec<(&'static str, TestRequest<'_>, u16)> {
    let query = |path: &str| server.request(Method::POST, path).query("SELECT * FROM c");
    vec![
        ("the account", server.request(Method::GET, "/"), 200),
        ("list databases", server.request(Method::GET, "/dbs"), 200),
        ("query databases", query("/dbs"), 200),
        (
            "read a database",
            server.request(Method::GET, "/dbs/db"),
            200,
        ),
        (
            "list containers",
            server.request(Method::GET, "/dbs/db/colls"),
            200,
        ),
        ("query containers", query("/dbs/db/colls"), 200),
        (
            "read a container",
            server.request(Method::GET, "/dbs/db/colls/c"),
            200,
        ),
        (
            "point read",
            server
                .request(Method::GET, "/dbs/db/colls/c/docs/seed")
                .partition_key("p"),
            200,
        ),
        (
            "read feed",
            server.request(Method::GET, "/dbs/db/colls/c/docs"),
            200,
        ),
        ("query items", query("/dbs/db/colls/c/docs"), 200),
        // A query plan is a read: a read-only key gets it.
        (
            "query plan",
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .header(headers::X_MS_COSMOS_IS_QUERY_PLAN_REQUEST, "True")
                .json(&json!({ "query": "SELECT * FROM c" })),
            200,
        ),
        (
            "change feed",
            server
                .request(Method::GET, "/dbs/db/colls/c/docs")
                .header(headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED),
            200,
        ),
        (
            "partition key ranges",
            server.request(Method::GET, "/dbs/db/colls/c/pkranges"),
            200,
        ),
        (
            "list conflicts",
            server.request(Method::GET, "/dbs/db/colls/c/conflicts"),
            200,
        ),
        ("query conflicts", query("/dbs/db/colls/c/conflicts"), 200),
        ("list offers", server.request(Method::GET, "/offers"), 200),
        ("query offers", query("/offers"), 200),
    ]
}

#[tokio::test]
async fn a_read_only_key_reads_queries_and_follows_the_change_feed() {
    let keys = four_keys();
    let server = server_with(keys.clone()).await;
    for kind in [KeyKind::PrimaryReadOnly, KeyKind::SecondaryReadOnly] {
        for (name, request, status) in reads(&server) {
            let response = request.signed_with(key_of(&keys, kind)).send().await;
            assert_eq!(
                response.status,
                status,
                "{name} with the {kind}: {}",
                String::from_utf8_lossy(&response.body)
            );
        }
    }
    let read_only = key_of(&keys, KeyKind::PrimaryReadOnly);
    let page = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .query("SELECT * FROM c WHERE c.n = 1")
        .signed_with(read_only.clone())
        .send()
        .await;
    page.expect_status(200);
    assert_eq!(document_ids(&page.json()), ["seed"]);
    let changes = server
        .request(Method::GET, "/dbs/db/colls/c/docs")
        .header(headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED)
        .signed_with(read_only)
        .send()
        .await;
    changes.expect_status(200);
    assert_eq!(document_ids(&changes.json()), ["seed"]);
}

/// A write, the status a read-write key gets for it, and what it is.
struct Write<'a> {
    name: &'static str,
    request: TestRequest<'a>,
    status_with_read_write_key: u16,
}

/// Every kind of write the server serves (and one it does not: a stored procedure execute).
/// Each is built to succeed with a read-write key, so a 403 is the key's doing.
fn writes<'a>(server: &'a TestServer, offer_id: &str) -> Vec<Write<'a>> {
    let item = |id: &str| json!({ "id": id, "pk": "p", "n": 2 });
    let write = |name, request, status_with_read_write_key| Write {
        name,
        request,
        status_with_read_write_key,
    };
    vec![
        write(
            "create",
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .partition_key("p")
                .json(&item("created")),
            201,
        ),
        write(
            "upsert",
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .partition_key("p")
                .header(headers::X_MS_DOCUMENTDB_IS_UPSERT, "True")
                .json(&item("upserted")),
            201,
        ),
        write(
            "replace",
            server
                .request(Method::PUT, "/dbs/db/colls/c/docs/seed")
                .partition_key("p")
                .json(&item("seed")),
            200,
        ),
        write(
            "patch",
            server
                .request(Method::PATCH, "/dbs/db/colls/c/docs/seed")
                .partition_key("p")
                .json(&json!({ "operations": [{ "op": "incr", "path": "/n", "value": 1 }] })),
            200,
        ),
        write(
            "transactional batch",
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .partition_key("p")
                .header(headers::X_MS_COSMOS_IS_BATCH_REQUEST, "True")
                .header(headers::X_MS_COSMOS_BATCH_ATOMIC, "True")
                .json(&json!([{ "operationType": "Create", "resourceBody": item("batched") }])),
            200,
        ),
        write(
            "bulk",
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .header(headers::X_MS_COSMOS_IS_BATCH_REQUEST, "True")
                .header(headers::X_MS_COSMOS_BATCH_ATOMIC, "False")
                .json(&json!([{
                    "operationType": "Create",
                    "partitionKey": "[\"p\"]",
                    "resourceBody": item("bulked"),
                }])),
            200,
        ),
        write(
            "a batch that also says it is a query",
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .partition_key("p")
                .header(headers::X_MS_COSMOS_IS_BATCH_REQUEST, "True")
                .header(headers::X_MS_DOCUMENTDB_ISQUERY, "True")
                .json(&json!([{ "operationType": "Create", "resourceBody": item("sneaky") }])),
            200,
        ),
        write(
            "Tributary transaction",
            server
                .request(Method::POST, "/dbs/db/colls/c/docs")
                .header(headers::X_TRIBUTARY_TRANSACTION, "true")
                .json(&json!([{ "operationType": "Create", "resourceBody": item("transacted") }])),
            200,
        ),
        write(
            "replace the offer",
            server
                .request(Method::PUT, &format!("/offers/{offer_id}"))
                .json(&json!({ "content": { "offerThroughput": 500 } })),
            200,
        ),
        write(
            "replace the container",
            server.request(Method::PUT, "/dbs/db/colls/c").json(&json!({
                "id": "c",
                "partitionKey": { "paths": ["/pk"], "kind": "Hash", "version": 2 },
                "defaultTtl": 3600,
            })),
            200,
        ),
        write(
            "create a container",
            server.request(Method::POST, "/dbs/db/colls").json(&json!({
                "id": "c2",
                "partitionKey": { "paths": ["/pk"], "kind": "Hash", "version": 2 },
            })),
            201,
        ),
        write(
            "create a database",
            server
                .request(Method::POST, "/dbs")
                .json(&json!({ "id": "db2" })),
            201,
        ),
        write(
            "execute a stored procedure",
            server
                .request(Method::POST, "/dbs/db/colls/c/sprocs/count")
                .partition_key("p")
                .json(&json!([])),
            404,
        ),
        write(
            "delete an item",
            server
                .request(Method::DELETE, "/dbs/db/colls/c/docs/seed")
                .partition_key("p"),
            204,
        ),
        write(
            "delete a partition key",
            server
                .request(
                    Method::POST,
                    "/dbs/db/colls/c/operations/partitionkeydelete",
                )
                .partition_key("p"),
            200,
        ),
        write(
            "delete the container",
            server.request(Method::DELETE, "/dbs/db/colls/c"),
            204,
        ),
        write(
            "delete the database",
            server.request(Method::DELETE, "/dbs/db"),
            204,
        ),
    ]
}

/// The offer of container `c`, and its body.
async fn container_offer(server: &TestServer) -> Value {
    let offers = server.request(Method::GET, "/offers").send().await;
    offers.expect_status(200);
    offers.json()["Offers"]
        .as_array()
        .expect("an Offers array")
        .iter()
        .find(|offer| {
            offer["resource"]
                .as_str()
                .is_some_and(|resource| resource.contains("/colls/"))
        })
        .cloned()
        .expect("the container has an offer")
}

#[tokio::test]
async fn a_read_only_key_cannot_write_anything_and_its_writes_change_nothing() {
    let keys = four_keys();
    let server = server_with(keys.clone()).await;
    let offer = container_offer(&server).await;
    let offer_id = offer["id"].as_str().expect("an offer id").to_owned();
    let container_before = server
        .request(Method::GET, "/dbs/db/colls/c")
        .send()
        .await
        .json();

    for kind in [KeyKind::PrimaryReadOnly, KeyKind::SecondaryReadOnly] {
        for write in writes(&server, &offer_id) {
            let response = write.request.signed_with(key_of(&keys, kind)).send().await;
            let message = response.expect_error(403);
            assert!(
                message.contains("read-only") && message.contains(kind.azure_name()),
                "{} with the {kind}: the message names the read-only key: {message}",
                write.name
            );
            assert_eq!(
                response.header(headers::X_MS_SUBSTATUS),
                None,
                "{}",
                write.name
            );
        }
    }

    // Nothing changed: the feed still holds only the seed, at its first version.
    assert_eq!(server.changed_ids().await, ["seed"]);
    let seed = server
        .request(Method::GET, "/dbs/db/colls/c/docs/seed")
        .partition_key("p")
        .send()
        .await;
    assert_eq!(seed.json()["n"], 1);
    assert_eq!(server.store.list_databases().len(), 1);
    assert_eq!(container_offer(&server).await, offer);
    assert_eq!(
        server
            .request(Method::GET, "/dbs/db/colls/c")
            .send()
            .await
            .json(),
        container_before
    );

    // The same requests signed with a read-write key are real writes.
    for write in writes(&server, &offer_id) {
        let response = write
            .request
            .signed_with(key_of(&keys, KeyKind::Secondary))
            .send()
            .await;
        assert_eq!(
            response.status,
            write.status_with_read_write_key,
            "{} with the secondary read-write key: {}",
            write.name,
            String::from_utf8_lossy(&response.body)
        );
    }
    assert_eq!(
        server.store.list_databases().len(),
        1,
        "db2 created, db deleted"
    );
}

/// Writes `keys` to `path` as a keys file.
fn write_keys_file(path: &Path, keys: &AccountKeys) {
    let text = serde_json::to_string_pretty(keys).expect("keys serialize");
    std::fs::write(path, text).expect("the keys file is written");
}

/// A GET of database `db` signed with `key`: its status.
async fn status_with(server: &TestServer, key: &MasterKey) -> u16 {
    server
        .request(Method::GET, "/dbs/db")
        .signed_with(key.clone())
        .send()
        .await
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_from_the_keys_file_while_requests_signed_with_the_primary_run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("keys.json");
    let old = four_keys();
    write_keys_file(&path, &old);
    let loaded = AccountKeys::read_file(&path).expect("the keys file is valid");
    assert_eq!(loaded, old);
    let server = Arc::new(server_with(loaded).await);
    let primary = key_of(&old, KeyKind::Primary);
    let old_secondary = key_of(&old, KeyKind::Secondary);
    assert_eq!(status_with(&server, &old_secondary).await, 200);

    // Requests signed with the primary, back to back, for as long as the swaps go on.
    let swapping = Arc::new(AtomicUsize::new(1));
    let n_sent = Arc::new(AtomicUsize::new(0));
    let steady = tokio::spawn({
        let (server, swapping, n_sent, primary) = (
            Arc::clone(&server),
            Arc::clone(&swapping),
            Arc::clone(&n_sent),
            primary.clone(),
        );
        async move {
            let mut failures = Vec::new();
            while swapping.load(Ordering::SeqCst) == 1 {
                let status = status_with(&server, &primary).await;
                if status != 200 {
                    failures.push(status);
                }
                n_sent.fetch_add(1, Ordering::SeqCst);
            }
            failures
        }
    });

    // The secondary is regenerated, over and over, while the primary stays; each swap waits
    // for a request signed with the primary to complete after it, so they interleave.
    let wait_for_a_request = || async {
        let n_before = n_sent.load(Ordering::SeqCst);
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            while n_sent.load(Ordering::SeqCst) <= n_before {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("the steady requests go on");
    };
    let mut new = old.clone();
    for _ in 0..40 {
        new.secondary_master_key = four_keys().secondary_master_key;
        write_keys_file(&path, &new);
        server
            .key_ring
            .reload_file(&path)
            .expect("the new keys file is valid");
        wait_for_a_request().await;
    }
    // Past the first swap, the old secondary no longer opens anything; the new one does.
    assert_eq!(status_with(&server, &old_secondary).await, 401);
    let new_secondary = key_of(&new, KeyKind::Secondary);
    assert_eq!(status_with(&server, &new_secondary).await, 200);
    wait_for_a_request().await;
    swapping.store(0, Ordering::SeqCst);
    let failures = steady.await.expect("the steady requests ran");
    assert_eq!(
        failures,
        Vec::<u16>::new(),
        "requests signed with the primary failed"
    );
    assert!(n_sent.load(Ordering::SeqCst) >= 41);

    // A file that is refused leaves the keys in force as they were.
    let refused: [(&str, String); 4] = [
        ("not JSON", "{\"primaryMasterKey\": ".to_owned()),
        (
            "a misspelt name",
            json!({ "primaryKey": new.primary_master_key }).to_string(),
        ),
        (
            "read-only keys only",
            json!({ "primaryReadonlyMasterKey": new.primary_readonly_master_key }).to_string(),
        ),
        (
            "a key that is not base64",
            json!({ "primaryMasterKey": new.primary_master_key, "secondaryMasterKey": "not base64!" })
                .to_string(),
        ),
    ];
    for (name, text) in refused {
        std::fs::write(&path, &text).expect("the keys file is written");
        let error = server.key_ring.reload_file(&path).expect_err(name);
        assert!(
            matches!(&error, KeysError::File { path: named, .. } if *named == path),
            "{name}: {error:?}"
        );
        assert_eq!(status_with(&server, &new_secondary).await, 200, "{name}");
        assert_eq!(status_with(&server, &primary).await, 200, "{name}");
    }
    let error = server
        .key_ring
        .reload_file(&dir.path().join("missing.json"))
        .expect_err("a missing file");
    assert!(error.to_string().contains("missing.json"), "{error}");
    let message = {
        std::fs::write(
            &path,
            json!({ "primaryMasterKey": new.primary_master_key, "secondaryMasterKey": "not base64!" })
                .to_string(),
        )
        .expect("written");
        server
            .key_ring
            .reload_file(&path)
            .expect_err("bad base64")
            .to_string()
    };
    assert!(
        message.contains("secondaryMasterKey") && !message.contains("not base64!"),
        "the error names the key, not its text: {message}"
    );

    // The read-only keys rotate the same way; dropping one takes effect at once.
    let mut read_only_dropped = new.clone();
    read_only_dropped.secondary_readonly_master_key = None;
    write_keys_file(&path, &read_only_dropped);
    server.key_ring.reload_file(&path).expect("valid");
    let secondary_read_only = key_of(&new, KeyKind::SecondaryReadOnly);
    assert_eq!(status_with(&server, &secondary_read_only).await, 401);
    assert_eq!(
        status_with(&server, &key_of(&new, KeyKind::PrimaryReadOnly)).await,
        200
    );
}
