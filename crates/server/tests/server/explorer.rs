//! The Explorer: its page and files are served to anyone (they hold no data), a browser opening
//! `/` is sent to the page while the SDKs' account reads are untouched, and its feed stream
//! (`/_explorer/feed/dbs/{db}/colls/{coll}`, Server-Sent Events) takes the same signature as a
//! change feed read of the container and pushes each change as it commits.

use std::time::Duration;

use axum::http::Method;
use serde_json::{Value, json};
use tributary_server::AccountKeys;
use tributary_wire::auth::{KeyKind, MasterKey};
use tributary_wire::headers;

use crate::harness::{StreamingResponse, TestRequest, TestServer};

/// What a browser sends as `Accept` when it opens a page.
const BROWSER_ACCEPT: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
/// A key that is valid base64 but not the server's.
const OTHER_KEY: &str = "dGhpcyBpcyBub3QgdGhlIGFjY291bnQga2V5IGF0IGFsbA==";
/// How long a pushed change may take to arrive; generous for a loaded machine, where it takes
/// milliseconds.
const PUSH_WITHIN: Duration = Duration::from_secs(5);

/// An unsigned GET, as a browser sends it.
fn unsigned<'a>(server: &'a TestServer, path: &str) -> TestRequest<'a> {
    server
        .request(Method::GET, path)
        .without(headers::AUTHORIZATION)
        .without(headers::X_MS_DATE)
}

/// A request for container `c`'s feed stream with `query`, signed as its change feed.
fn feed_stream<'a>(server: &'a TestServer, container: &str, query: &str) -> TestRequest<'a> {
    server
        .request(
            Method::GET,
            &format!("/_explorer/feed/dbs/db/colls/{container}{query}"),
        )
        .signed_as("docs", &format!("dbs/db/colls/{container}"))
}

/// Opens a stream and checks it is an event stream that opens with an `open` event.
async fn open_stream(request: TestRequest<'_>) -> StreamingResponse {
    let mut stream = request.open().await;
    assert_eq!(stream.status, 200, "the feed stream opens");
    assert_eq!(
        stream
            .headers
            .get(headers::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream; charset=utf-8")
    );
    let opened = stream.expect_event(PUSH_WITHIN).await;
    assert_eq!(opened.name, "open", "the first event: {opened:?}");
    stream
}

fn data_json(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("event data is JSON ({e}): {data}"))
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_their_types_and_no_key() {
    let server = TestServer::start().await;
    let page = unsigned(&server, "/_explorer/index.html").send().await;
    page.expect_status(200);
    assert_eq!(
        page.header(headers::CONTENT_TYPE),
        Some("text/html; charset=utf-8")
    );
    let html = String::from_utf8_lossy(&page.body).into_owned();
    assert!(
        html.contains(r#"<script type="module" src="./app.js">"#),
        "{html}"
    );
    let policy = page
        .header("content-security-policy")
        .expect("the page has a content security policy");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));

    let directory = unsigned(&server, "/_explorer/").send().await;
    directory.expect_status(200);
    assert_eq!(directory.body, page.body, "/_explorer/ is the page");
    let bare = unsigned(&server, "/_explorer").send().await;
    bare.expect_status(302);
    assert_eq!(bare.header("location"), Some("/_explorer/index.html"));

    for (file, content_type) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("dom.js", "text/javascript; charset=utf-8"),
        ("items.js", "text/javascript; charset=utf-8"),
        ("query.js", "text/javascript; charset=utf-8"),
        ("feed.js", "text/javascript; charset=utf-8"),
        ("processors.js", "text/javascript; charset=utf-8"),
        ("dashboard.js", "text/javascript; charset=utf-8"),
        ("explorer.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ] {
        let response = unsigned(&server, &format!("/_explorer/{file}"))
            .send()
            .await;
        response.expect_status(200);
        assert_eq!(
            response.header(headers::CONTENT_TYPE),
            Some(content_type),
            "{file}"
        );
        assert!(!response.body.is_empty(), "{file} has content");
    }
    let message = unsigned(&server, "/_explorer/secrets.json")
        .send()
        .await
        .expect_error(404);
    assert!(message.contains("index.html"), "{message}");
    server
        .request(Method::POST, "/_explorer/index.html")
        .send()
        .await
        .expect_error(405);
}

#[tokio::test]
async fn a_browser_opening_the_root_is_sent_to_the_page_and_api_clients_are_not() {
    let server = TestServer::start().await;
    let browser = unsigned(&server, "/")
        .header(headers::ACCEPT, BROWSER_ACCEPT)
        .send()
        .await;
    browser.expect_status(302);
    assert_eq!(browser.header("location"), Some("/_explorer/index.html"));

    // The SDKs read the account signed, asking for JSON; a signed request asking for HTML
    // is a client too.
    for accept in ["application/json", BROWSER_ACCEPT] {
        let account = server
            .request(Method::GET, "/")
            .header(headers::ACCEPT, accept)
            .send()
            .await;
        account.expect_status(200);
        assert_eq!(account.json()["id"], "tributary", "accept {accept}");
    }
    // Without a signature and without asking for HTML, it is an API request refused.
    unsigned(&server, "/")
        .header(headers::ACCEPT, "application/json")
        .send()
        .await
        .expect_error(401);
}

#[tokio::test]
async fn the_feed_stream_refuses_a_request_without_a_good_signature() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({ "id": "secret", "pk": "p" }))
        .await;
    let refusals = [
        (
            "no signature",
            unsigned(&server, "/_explorer/feed/dbs/db/colls/c?start=beginning"),
        ),
        (
            "signed with another key",
            feed_stream(&server, "c", "?start=beginning")
                .signed_with(MasterKey::from_base64(OTHER_KEY).expect("valid base64")),
        ),
        (
            "signed for its path instead of the container's feed",
            server.request(
                Method::GET,
                "/_explorer/feed/dbs/db/colls/c?start=beginning",
            ),
        ),
        (
            "signed for another container",
            server
                .request(
                    Method::GET,
                    "/_explorer/feed/dbs/db/colls/c?start=beginning",
                )
                .signed_as("docs", "dbs/db/colls/other"),
        ),
    ];
    for (name, request) in refusals {
        let response = request.send().await;
        let message = response.expect_error(401);
        assert!(
            !String::from_utf8_lossy(&response.body).contains("secret"),
            "{name}: no data in a refusal"
        );
        assert!(!message.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn a_read_only_key_may_open_the_feed_stream() {
    let keys = AccountKeys::generate().expect("the OS has random bytes");
    let read_only = MasterKey::from_base64(
        keys.get(KeyKind::PrimaryReadOnly)
            .expect("generated keys have a read-only key"),
    )
    .expect("a generated key is valid base64");
    let server = TestServer::start_with(|config| config.keys = keys).await;
    server.create_database("db").await;
    server.create_container("db", "c").await;
    server
        .create_item("p", &json!({ "id": "a", "pk": "p" }))
        .await;
    let mut stream =
        open_stream(feed_stream(&server, "c", "?start=beginning").signed_with(read_only)).await;
    let change = stream.expect_event(PUSH_WITHIN).await;
    assert_eq!(change.name, "change");
    assert_eq!(data_json(&change.data)["id"], "a");
}

#[tokio::test]
async fn a_change_written_after_the_stream_opened_arrives_as_an_event() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({ "id": "before", "pk": "p" }))
        .await;
    let mut stream = open_stream(feed_stream(&server, "c", "?start=now")).await;
    for (id, pk) in [("first", "p"), ("second", "q")] {
        server
            .create_item(pk, &json!({ "id": id, "pk": pk, "n": 1 }))
            .await;
        let change = stream.expect_event(PUSH_WITHIN).await;
        assert_eq!(change.name, "change", "{change:?}");
        let document = data_json(&change.data);
        assert_eq!(
            document["id"], id,
            "a change from now on, not 'before': {document}"
        );
        assert_eq!(document["n"], 1);
    }
    // From the beginning, the change made before comes first.
    let mut from_start = open_stream(feed_stream(&server, "c", "?start=beginning")).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let change = from_start.expect_event(PUSH_WITHIN).await;
        ids.push(
            data_json(&change.data)["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert_eq!(ids, ["before", "first", "second"]);
}

#[tokio::test]
async fn all_versions_mode_streams_deletes_where_the_container_keeps_them() {
    let server = TestServer::start().await;
    server.create_database("db").await;
    server
        .request(Method::POST, "/dbs/db/colls")
        .json(&json!({
            "id": "kept",
            "partitionKey": { "paths": ["/pk"], "kind": "Hash", "version": 2 },
            "changeFeedPolicy": { "retentionDuration": 10 },
        }))
        .send()
        .await
        .expect_status(201);
    let mut stream = open_stream(feed_stream(
        &server,
        "kept",
        "?start=now&mode=all-versions-and-deletes",
    ))
    .await;
    server
        .request(Method::POST, "/dbs/db/colls/kept/docs")
        .partition_key("p")
        .json(&json!({ "id": "a", "pk": "p" }))
        .send()
        .await
        .expect_status(201);
    server
        .request(Method::DELETE, "/dbs/db/colls/kept/docs/a")
        .partition_key("p")
        .send()
        .await
        .expect_status(204);
    let mut operations = Vec::new();
    for _ in 0..2 {
        let change = data_json(&stream.expect_event(PUSH_WITHIN).await.data);
        operations.push(change["metadata"]["operationType"].clone());
    }
    assert_eq!(operations, [json!("create"), json!("delete")]);
}

#[tokio::test]
async fn a_quiet_stream_sends_heartbeats() {
    let server = TestServer::with_container().await;
    let mut stream = open_stream(feed_stream(&server, "c", "?heartbeat_ms=100")).await;
    let heartbeat = stream
        .next_event(PUSH_WITHIN)
        .await
        .expect("a heartbeat comes on a quiet stream");
    assert_eq!(
        (heartbeat.name.as_str(), heartbeat.data.as_str()),
        ("", "heartbeat")
    );
}

#[tokio::test]
async fn a_missing_container_a_bad_path_or_a_bad_parameter_is_refused_before_streaming() {
    let server = TestServer::with_container().await;
    for (name, request, status) in [
        (
            "a missing container",
            feed_stream(&server, "absent", ""),
            404,
        ),
        (
            "a missing database",
            server
                .request(Method::GET, "/_explorer/feed/dbs/nodb/colls/c")
                .signed_as("docs", "dbs/nodb/colls/c"),
            404,
        ),
        (
            "a path that is not a container's",
            server
                .request(Method::GET, "/_explorer/feed/dbs/db")
                .signed_as("docs", "dbs/db"),
            404,
        ),
        (
            "a bad start",
            feed_stream(&server, "c", "?start=yesterday"),
            400,
        ),
        (
            "an unknown parameter",
            feed_stream(&server, "c", "?range=0"),
            400,
        ),
        (
            "all versions on a container that keeps none",
            feed_stream(&server, "c", "?mode=all-versions-and-deletes"),
            400,
        ),
    ] {
        let response = request.send().await;
        assert_eq!(
            response.status,
            status,
            "{name}: {}",
            String::from_utf8_lossy(&response.body)
        );
        response.expect_error(status);
    }
}

#[tokio::test]
async fn a_stream_ends_with_an_error_event_when_its_container_is_deleted() {
    let server = TestServer::with_container().await;
    let mut stream = open_stream(feed_stream(&server, "c", "?heartbeat_ms=100")).await;
    server
        .request(Method::DELETE, "/dbs/db/colls/c")
        .send()
        .await
        .expect_status(204);
    let ended = stream.expect_event(PUSH_WITHIN).await;
    assert_eq!(ended.name, "error", "{ended:?}");
    assert_eq!(data_json(&ended.data)["code"], "NotFound");
    assert!(
        stream.next_event(PUSH_WITHIN).await.is_none(),
        "the stream ends after its error"
    );
}

#[tokio::test]
async fn a_stream_ends_when_its_client_goes_and_past_the_limit_the_answer_is_429() {
    let server = TestServer::start_with(|config| config.max_feed_streams = 1).await;
    server.create_database("db").await;
    server.create_container("db", "c").await;
    let first = open_stream(feed_stream(&server, "c", "")).await;
    let refused = feed_stream(&server, "c", "").send().await;
    let message = refused.expect_error(429);
    assert!(message.contains("1 feed streams open"), "{message}");
    assert!(refused.header(headers::X_MS_RETRY_AFTER_MS).is_some());
    // The client goes: its stream ends and gives its place back.
    drop(first);
    let deadline = tokio::time::Instant::now() + PUSH_WITHIN;
    loop {
        let mut next = feed_stream(&server, "c", "").open().await;
        if next.status == 200 {
            assert_eq!(next.expect_event(PUSH_WITHIN).await.name, "open");
            break;
        }
        assert_eq!(next.status, 429);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream of a client that went still holds its place after {PUSH_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The Explorer's metrics snapshot, signed as a read of the account.
fn metrics(server: &TestServer) -> TestRequest<'_> {
    server
        .request(Method::GET, "/_explorer/metrics")
        .signed_as("", "")
}

/// A number of the snapshot at a JSON pointer; panics if it is not one.
fn number(snapshot: &Value, pointer: &str) -> u64 {
    snapshot
        .pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is a number in {snapshot}"))
}

#[tokio::test]
async fn the_metrics_snapshot_refuses_a_request_without_a_good_signature() {
    let server = TestServer::with_container().await;
    let refusals = [
        ("no signature", unsigned(&server, "/_explorer/metrics")),
        (
            "signed with another key",
            metrics(&server).signed_with(MasterKey::from_base64(OTHER_KEY).expect("valid base64")),
        ),
        (
            "signed for a container instead of the account",
            metrics(&server).signed_as("docs", "dbs/db/colls/c"),
        ),
    ];
    for (name, request) in refusals {
        let response = request.send().await;
        let message = response.expect_error(401);
        assert!(
            !String::from_utf8_lossy(&response.body).contains("requests"),
            "{name}: no counters in a refusal"
        );
        assert!(!message.is_empty(), "{name}");
    }
    server
        .request(Method::POST, "/_explorer/metrics")
        .signed_as("", "")
        .send()
        .await
        .expect_error(405);
    metrics(&server)
        .without(headers::AUTHORIZATION)
        .send()
        .await
        .expect_error(401);
}

#[tokio::test]
async fn the_metrics_snapshot_moves_with_writes_and_feed_reads() {
    let server = TestServer::with_container().await;
    let before = metrics(&server).send().await;
    before.expect_status(200);
    assert_eq!(
        before.header(headers::CONTENT_TYPE),
        Some("application/json")
    );
    let before = before.json();
    for id in ["a", "b", "c"] {
        server
            .create_item("p", &json!({ "id": id, "pk": "p" }))
            .await;
    }
    server.change_feed(None).await.expect_status(200);
    let mut stream = open_stream(feed_stream(&server, "c", "?start=beginning")).await;
    for _ in 0..3 {
        assert_eq!(stream.expect_event(PUSH_WITHIN).await.name, "change");
    }
    let after = metrics(&server).send().await;
    after.expect_status(200);
    let after = after.json();

    // Three creates, one feed read and the stream, one snapshot: 2xx answers.
    assert!(
        number(&after, "/requests/2xx") >= number(&before, "/requests/2xx") + 6,
        "{before} → {after}"
    );
    assert_eq!(
        number(&after, "/itemChangesCommitted") - number(&before, "/itemChangesCommitted"),
        3,
        "one change per created item: {before} → {after}"
    );
    let n_commits = number(&after, "/commits") - number(&before, "/commits");
    assert!((1..=3).contains(&n_commits), "{before} → {after}");
    assert_eq!(
        number(&after, "/feedItemsServed") - number(&before, "/feedItemsServed"),
        6,
        "three changes read from the feed, three pushed on the stream"
    );
    assert!(number(&after, "/fsync/commits") >= 3, "{after}");
    assert_eq!(number(&after, "/fsync/windowS"), 10);
    assert!(number(&after, "/fsync/p99Us") >= number(&after, "/fsync/p50Us"));
    assert!(number(&after, "/fsync/maxUs") >= number(&after, "/fsync/p99Us"));
    assert!(number(&after, "/openConnections") >= 1, "{after}");
    assert!(number(&after, "/storeBytes") > 0, "{after}");
    assert!(number(&after, "/uptimeMs") >= number(&before, "/uptimeMs"));
    if cfg!(target_os = "linux") {
        assert!(number(&after, "/processRssBytes") > 0, "{after}");
    }
    server
        .request(Method::GET, "/dbs/db/colls/c/docs/missing")
        .partition_key("p")
        .send()
        .await
        .expect_error(404);
    let last = metrics(&server).send().await.json();
    assert_eq!(
        number(&last, "/requests/4xx"),
        number(&after, "/requests/4xx") + 1,
        "the 404 counted: {after} → {last}"
    );
    drop(stream);
}

#[tokio::test]
async fn a_read_only_key_may_read_the_metrics_snapshot() {
    let keys = AccountKeys::generate().expect("the OS has random bytes");
    let read_only = MasterKey::from_base64(
        keys.get(KeyKind::SecondaryReadOnly)
            .expect("generated keys have a read-only key"),
    )
    .expect("a generated key is valid base64");
    let server = TestServer::start_with(|config| config.keys = keys).await;
    let snapshot = metrics(&server).signed_with(read_only).send().await;
    snapshot.expect_status(200);
    assert!(snapshot.json()["requests"]["2xx"].is_u64());
}
