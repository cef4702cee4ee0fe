//! Server-side scripts as resources: stored procedures, triggers and user-defined functions
//! created, listed (paged), queried, read (by name and by `_self`), replaced and deleted with
//! Cosmos DB's statuses, system properties and etag conditions; gone with their container.

use axum::http::Method;
use serde_json::{Value, json};
use tributary_wire::headers;

use crate::harness::TestServer;

/// Each kind's path segment and the key its lists are answered under.
const KINDS: [(&str, &str); 3] = [
    ("sprocs", "StoredProcedures"),
    ("triggers", "Triggers"),
    ("udfs", "UserDefinedFunctions"),
];

fn definition(segment: &str, id: &str, body: &str) -> Value {
    let mut definition = json!({"id": id, "body": body});
    if segment == "triggers" {
        definition["triggerType"] = json!("pre");
        definition["triggerOperation"] = json!("all");
    }
    definition
}

#[tokio::test]
async fn scripts_are_created_read_replaced_and_deleted_with_cosmos_statuses() {
    let server = TestServer::with_container().await;
    let container = server
        .request(Method::GET, "/dbs/db/colls/c")
        .send()
        .await
        .json();
    for (segment, _) in KINDS {
        let feed = format!("/dbs/db/colls/c/{segment}");
        let created = server
            .request(Method::POST, &feed)
            .json(&definition(segment, "s1", "function () {}"))
            .send()
            .await;
        created.expect_status(201);
        let script = created.json();
        assert_eq!(script["body"], "function () {}");
        assert_eq!(created.header(headers::ETAG), script["_etag"].as_str());
        let self_link = script["_self"].as_str().expect("a _self link");
        let container_self = container["_self"].as_str().expect("a container _self");
        assert_eq!(
            self_link,
            format!(
                "{container_self}{segment}/{}/",
                script["_rid"].as_str().expect("a _rid")
            ),
            "a script's _self is dbs/{{dbRid}}/colls/{{collRid}}/{segment}/{{rid}}/"
        );
        if segment == "triggers" {
            assert_eq!(script["triggerType"], "pre", "spelled as sent");
            assert_eq!(script["triggerOperation"], "all");
        }
        server
            .request(Method::POST, &feed)
            .json(&definition(segment, "s1", "function () {}"))
            .send()
            .await
            .expect_error(409);
        let read = server
            .request(Method::GET, &format!("/{self_link}"))
            .signed_as(segment, &script["_rid"].as_str().unwrap().to_lowercase())
            .send()
            .await;
        read.expect_status(200);
        assert_eq!(read.json()["id"], "s1", "read by its _self link");
        server
            .request(Method::PUT, &format!("{feed}/s1"))
            .header(headers::IF_MATCH, "\"stale\"")
            .json(&definition(segment, "s1", "function () { 1; }"))
            .send()
            .await
            .expect_error(412);
        let replaced = server
            .request(Method::PUT, &format!("{feed}/s1"))
            .header(headers::IF_MATCH, script["_etag"].as_str().unwrap())
            .json(&definition(segment, "s1", "function () { 2; }"))
            .send()
            .await;
        replaced.expect_status(200);
        assert_eq!(replaced.json()["body"], "function () { 2; }");
        assert_eq!(replaced.json()["_rid"], script["_rid"]);
        let message = server
            .request(Method::POST, &feed)
            .json(&json!({"id": "nobody"}))
            .send()
            .await
            .expect_error(400);
        assert!(message.contains("'body'"), "{message}");
        server
            .request(Method::DELETE, &format!("{feed}/s1"))
            .send()
            .await
            .expect_status(204);
        server
            .request(Method::GET, &format!("{feed}/s1"))
            .send()
            .await
            .expect_error(404);
        server
            .request(Method::DELETE, &format!("{feed}/s1"))
            .send()
            .await
            .expect_error(404);
    }
}

#[tokio::test]
async fn script_lists_page_and_queries_filter() {
    let server = TestServer::with_container().await;
    for (segment, key) in KINDS {
        let feed = format!("/dbs/db/colls/c/{segment}");
        for id in ["a", "b", "c", "d", "e"] {
            server
                .request(Method::POST, &feed)
                .json(&definition(segment, id, "function () {}"))
                .send()
                .await
                .expect_status(201);
        }
        let mut ids = Vec::new();
        let mut continuation: Option<String> = None;
        let mut n_pages = 0;
        loop {
            let mut request = server
                .request(Method::GET, &feed)
                .header(headers::X_MS_MAX_ITEM_COUNT, "2");
            if let Some(token) = &continuation {
                request = request.header(headers::X_MS_CONTINUATION, token);
            }
            let page = request.send().await;
            page.expect_status(200);
            n_pages += 1;
            for script in page.json()[key].as_array().expect("a list") {
                ids.push(script["id"].as_str().unwrap().to_owned());
            }
            match page.header(headers::X_MS_CONTINUATION) {
                Some(token) => continuation = Some(token.to_owned()),
                None => break,
            }
        }
        assert_eq!(ids, ["a", "b", "c", "d", "e"]);
        assert_eq!(n_pages, 3);
        let matches = server
            .request(Method::POST, &feed)
            .query("SELECT * FROM root r WHERE r.id = 'c'")
            .send()
            .await;
        matches.expect_status(200);
        assert_eq!(matches.json()[key].as_array().unwrap().len(), 1);
    }
    // Deleting the container deletes its scripts.
    server
        .request(Method::DELETE, "/dbs/db/colls/c")
        .send()
        .await
        .expect_status(204);
    server.create_container("db", "c").await;
    for (segment, key) in KINDS {
        let list = server
            .request(Method::GET, &format!("/dbs/db/colls/c/{segment}"))
            .send()
            .await;
        assert_eq!(list.json()[key], json!([]));
    }
}

/// Creates stored procedure `id` with `body` in container `c`.
async fn create_sproc(server: &TestServer, id: &str, body: &str) {
    server
        .request(Method::POST, "/dbs/db/colls/c/sprocs")
        .json(&json!({"id": id, "body": body}))
        .send()
        .await
        .expect_status(201);
}

/// Executes stored procedure `id` in partition `pk` with `parameters`.
fn execute<'a>(
    server: &'a TestServer,
    id: &str,
    pk: &str,
    parameters: &Value,
) -> crate::harness::TestRequest<'a> {
    server
        .request(Method::POST, &format!("/dbs/db/colls/c/sprocs/{id}"))
        .partition_key(pk)
        .json(parameters)
}

#[tokio::test]
async fn a_stored_procedure_commits_all_its_writes_or_none() {
    let server = TestServer::with_container().await;
    create_sproc(
        &server,
        "pair",
        r#"function (first, second, fail) {
            var c = getContext().getCollection();
            c.createDocument(c.getSelfLink(), {id: first, pk: "p"}, function (err) {
                if (err) throw err;
                c.readDocument(c.getAltLink() + "/docs/" + first, function (err, doc) {
                    if (err) throw err;
                    c.createDocument(c.getAltLink(), {id: second, pk: "p", seen: doc.id}, function (err) {
                        if (err) throw err;
                        if (fail) throw new Error("changed my mind");
                        getContext().getResponse().setBody({written: [first, second]});
                    });
                });
            });
        }"#,
    )
    .await;
    let message = execute(&server, "pair", "p", &json!(["a", "b", true]))
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("changed my mind"), "{message}");
    for id in ["a", "b"] {
        server
            .request(Method::GET, &format!("/dbs/db/colls/c/docs/{id}"))
            .partition_key("p")
            .send()
            .await
            .expect_error(404);
    }
    let done = execute(&server, "pair", "p", &json!(["a", "b", false]))
        .send()
        .await;
    done.expect_status(200);
    assert_eq!(done.json(), json!({"written": ["a", "b"]}));
    let b = server
        .request(Method::GET, "/dbs/db/colls/c/docs/b")
        .partition_key("p")
        .send()
        .await;
    b.expect_status(200);
    assert_eq!(b.json()["seen"], "a", "a read sees the run's own write");
    // A write in another partition fails the run, and nothing of it is kept.
    let message = execute(&server, "pair", "other", &json!(["c", "d", false]))
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("partition"), "{message}");
}

#[tokio::test]
async fn stored_procedures_log_and_are_bounded() {
    let server = TestServer::with_container().await;
    create_sproc(
        &server,
        "logs",
        "function () { console.log('value %s & %d', 'x/y', 7); getContext().getResponse().setBody(1); }",
    )
    .await;
    let quiet = execute(&server, "logs", "p", &json!([])).send().await;
    quiet.expect_status(200);
    assert_eq!(
        quiet.header(headers::X_MS_DOCUMENTDB_SCRIPT_LOG_RESULTS),
        None
    );
    let logged = execute(&server, "logs", "p", &json!([]))
        .header(headers::X_MS_DOCUMENTDB_SCRIPT_ENABLE_LOGGING, "true")
        .send()
        .await;
    assert_eq!(
        logged.header(headers::X_MS_DOCUMENTDB_SCRIPT_LOG_RESULTS),
        Some("value%20x/y%20%26%207")
    );
    create_sproc(&server, "forever", "function () { for (;;) {} }").await;
    let message = execute(&server, "forever", "p", &json!([]))
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("ran longer than its limit"), "{message}");
    let message = execute(&server, "logs", "p", &json!({"not": "an array"}))
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("JSON array"), "{message}");
    let message = server
        .request(Method::POST, "/dbs/db/colls/c/sprocs/logs")
        .json(&json!([]))
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("partition"), "{message}");
    execute(&server, "missing", "p", &json!([]))
        .send()
        .await
        .expect_error(404);
}

#[tokio::test]
async fn concurrent_stored_procedures_lose_no_update() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({"id": "counter", "pk": "p", "n": 0}))
        .await;
    create_sproc(
        &server,
        "increment",
        r#"function () {
            var c = getContext().getCollection();
            c.readDocument(c.getAltLink() + "/docs/counter", function (err, doc) {
                if (err) throw err;
                doc.n += 1;
                c.replaceDocument(doc._self, doc, {etag: doc._etag}, function (err) {
                    if (err) throw err;
                });
            });
        }"#,
    )
    .await;
    let mut n_done = 0;
    for _ in 0..5 {
        let runs = (0..4).map(|_| execute(&server, "increment", "p", &json!([])).send());
        for response in futures::future::join_all(runs).await {
            match response.status {
                200 => n_done += 1,
                // Overtaken on every run: nothing of it was written.
                449 => {}
                other => panic!("unexpected status {other}"),
            }
        }
    }
    let counter = server
        .request(Method::GET, "/dbs/db/colls/c/docs/counter")
        .partition_key("p")
        .send()
        .await
        .json();
    assert!(n_done > 0);
    assert_eq!(counter["n"], n_done, "every run answered 200 counted once");
}

/// Creates trigger `id` of `trigger_type` on `operation` in container `c`.
async fn create_trigger(
    server: &TestServer,
    id: &str,
    trigger_type: &str,
    operation: &str,
    body: &str,
) {
    server
        .request(Method::POST, "/dbs/db/colls/c/triggers")
        .json(&json!({"id": id, "body": body, "triggerType": trigger_type, "triggerOperation": operation}))
        .send()
        .await
        .expect_status(201);
}

#[tokio::test]
async fn triggers_change_the_write_and_commit_with_it_or_stop_it() {
    let server = TestServer::with_container().await;
    create_trigger(
        &server,
        "stamp",
        "Pre",
        "All",
        r#"function () {
            var item = getContext().getRequest().getBody();
            item.stamped = getContext().getRequest().getOperationType();
            getContext().getRequest().setBody(item);
        }"#,
    )
    .await;
    create_trigger(
        &server,
        "audit",
        "Post",
        "All",
        r#"function () {
            var written = getContext().getResponse().getBody();
            if (written.veto) throw new Error("vetoed " + written.id);
            var c = getContext().getCollection();
            c.upsertDocument(c.getAltLink(), {id: "audit", pk: written.pk, last: written.id});
        }"#,
    )
    .await;
    create_trigger(&server, "on-delete", "Post", "Delete", "function () { }").await;
    let created = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .partition_key("p")
        .header(headers::X_MS_DOCUMENTDB_PRE_TRIGGER_INCLUDE, "stamp")
        .header(headers::X_MS_DOCUMENTDB_POST_TRIGGER_INCLUDE, "audit")
        .json(&json!({"id": "a", "pk": "p"}))
        .send()
        .await;
    created.expect_status(201);
    let item = created.json();
    assert_eq!(item["stamped"], "Create");
    assert!(item["_rid"].is_string(), "the answer is the stored item");
    assert_eq!(created.header(headers::ETAG), item["_etag"].as_str());
    let audit = server
        .request(Method::GET, "/dbs/db/colls/c/docs/audit")
        .partition_key("p")
        .send()
        .await;
    assert_eq!(
        audit.json()["last"],
        "a",
        "the post-trigger's write committed"
    );
    // A post-trigger that throws stops the write: neither item nor audit changes.
    let message = server
        .request(Method::PUT, "/dbs/db/colls/c/docs/a")
        .partition_key("p")
        .header(headers::X_MS_DOCUMENTDB_POST_TRIGGER_INCLUDE, "audit")
        .json(&json!({"id": "a", "pk": "p", "veto": true}))
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("vetoed a"), "{message}");
    let a = server
        .request(Method::GET, "/dbs/db/colls/c/docs/a")
        .partition_key("p")
        .send()
        .await
        .json();
    assert_eq!(a["veto"], Value::Null);
    // A trigger named for the wrong step, or the wrong operation, is refused.
    for (header, id) in [
        (headers::X_MS_DOCUMENTDB_PRE_TRIGGER_INCLUDE, "audit"),
        (headers::X_MS_DOCUMENTDB_POST_TRIGGER_INCLUDE, "on-delete"),
    ] {
        server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .partition_key("p")
            .header(header, id)
            .json(&json!({"id": "b", "pk": "p"}))
            .send()
            .await
            .expect_error(400);
    }
    server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .partition_key("p")
        .header(headers::X_MS_DOCUMENTDB_PRE_TRIGGER_INCLUDE, "nothere")
        .json(&json!({"id": "b", "pk": "p"}))
        .send()
        .await
        .expect_error(404);
    server
        .request(Method::GET, "/dbs/db/colls/c/docs/b")
        .partition_key("p")
        .send()
        .await
        .expect_error(404);
    let message = server
        .request(Method::PATCH, "/dbs/db/colls/c/docs/a")
        .partition_key("p")
        .header(headers::X_MS_DOCUMENTDB_PRE_TRIGGER_INCLUDE, "stamp")
        .json(&json!({"operations": [{"op": "set", "path": "/x", "value": 1}]}))
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("not on a patch"), "{message}");
    server
        .request(Method::DELETE, "/dbs/db/colls/c/docs/a")
        .partition_key("p")
        .header(headers::X_MS_DOCUMENTDB_POST_TRIGGER_INCLUDE, "on-delete")
        .send()
        .await
        .expect_status(204);
    server
        .request(Method::GET, "/dbs/db/colls/c/docs/a")
        .partition_key("p")
        .send()
        .await
        .expect_error(404);
}

#[tokio::test]
async fn queries_call_the_containers_user_defined_functions() {
    let server = TestServer::with_container().await;
    server
        .request(Method::POST, "/dbs/db/colls/c/udfs")
        .json(&json!({"id": "tax", "body": "function (price) { return price * 0.25; }"}))
        .send()
        .await
        .expect_status(201);
    server
        .request(Method::POST, "/dbs/db/colls/c/udfs")
        .json(&json!({"id": "fails", "body": "function () { throw new Error('no tax today'); }"}))
        .send()
        .await
        .expect_status(201);
    for (id, price) in [("a", 100), ("b", 8)] {
        server
            .create_item("p", &json!({"id": id, "pk": "p", "price": price}))
            .await;
    }
    let answer = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .query(
            "SELECT c.id, udf.tax(c.price) AS tax FROM c WHERE udf.tax(c.price) > 5 ORDER BY c.id",
        )
        .send()
        .await;
    answer.expect_status(200);
    assert_eq!(answer.json()["Documents"], json!([{"id": "a", "tax": 25}]));
    let message = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .query("SELECT VALUE udf.fails() FROM c")
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("no tax today"), "{message}");
    server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .query("SELECT VALUE udf.missing(c.price) FROM c")
        .send()
        .await
        .expect_error(404);
}

#[tokio::test]
async fn a_batch_naming_triggers_is_refused_and_writes_nothing() {
    let server = TestServer::with_container().await;
    create_trigger(&server, "stamp", "Pre", "All", "function () { }").await;
    let message = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .partition_key("p")
        .header(headers::X_MS_COSMOS_IS_BATCH_REQUEST, "true")
        .header(headers::X_MS_COSMOS_BATCH_ATOMIC, "true")
        .header(headers::X_MS_DOCUMENTDB_PRE_TRIGGER_INCLUDE, "stamp")
        .json(&json!([{"operationType": "Create", "resourceBody": {"id": "a", "pk": "p"}}]))
        .send()
        .await
        .expect_error(400);
    assert!(
        message.contains("triggers do not run on batch"),
        "{message}"
    );
    assert!(server.changed_ids().await.is_empty(), "nothing was written");
}
