//! The Explorer: its page and files are served to anyone (they hold no data), a browser opening
//! `/` is sent to the page while the SDKs' account reads are untouched, and its feed stream
//! (`/_explorer/feed/dbs/{db}/colls/{coll}`, Server-Sent Events) takes the same signature as a
//! change feed read of the container and pushes each change as it commits.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use serde_json::{Value, json};
use tributary_partition_key::{PartitionKey, PartitionKeyDefinition};
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

/// Opens a stream and answers it with its `open` event's data.
async fn open_stream_reporting(request: TestRequest<'_>) -> (StreamingResponse, Value) {
    let mut stream = request.open().await;
    assert_eq!(stream.status, 200, "the feed stream opens");
    let opened = stream.expect_event(PUSH_WITHIN).await;
    assert_eq!(opened.name, "open", "the first event: {opened:?}");
    (stream, data_json(&opened.data))
}

/// The ids of the next `n` change events of a stream.
async fn next_ids(stream: &mut StreamingResponse, n: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let change = stream.expect_event(PUSH_WITHIN).await;
        assert_eq!(change.name, "change", "{change:?}");
        ids.push(
            data_json(&change.data)["id"]
                .as_str()
                .expect("a change has an id")
                .to_owned(),
        );
    }
    ids
}

/// Waits for a stream's next heartbeat: no change is waiting for it. The stream must have
/// been opened with a short `heartbeat_ms`.
async fn expect_heartbeat(stream: &mut StreamingResponse) {
    let next = stream
        .next_event(PUSH_WITHIN)
        .await
        .expect("a heartbeat comes on a quiet stream");
    assert_eq!(next.name, "", "no more changes, a heartbeat: {next:?}");
}

/// Creates `item` in container `container` under a partition key given as its JSON array.
async fn create_with_key(server: &TestServer, container: &str, key: &Value, item: &Value) {
    server
        .request(Method::POST, &format!("/dbs/db/colls/{container}/docs"))
        .header(headers::X_MS_DOCUMENTDB_PARTITIONKEY, &key.to_string())
        .json(item)
        .send()
        .await
        .expect_status(201);
}

/// A time as RFC 3339 UTC with milliseconds, `2026-12-03T10:00:00.000Z`.
fn rfc3339(time: SystemTime) -> String {
    let ms = time
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis();
    let (days, ms_of_day) = ((ms / 86_400_000) as i64, ms % 86_400_000);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    )
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
            feed_stream(&server, "c", "?colour=blue"),
            400,
        ),
        (
            "a start time without its zone",
            feed_stream(&server, "c", "?start=2026-12-03T10:00:00"),
            400,
        ),
        (
            "a range that is not a number",
            feed_stream(&server, "c", "?range=first"),
            400,
        ),
        (
            "a range that does not exist",
            feed_stream(&server, "c", "?range=7"),
            404,
        ),
        (
            "a pk that is not JSON",
            feed_stream(&server, "c", "?pk=customer-1"),
            400,
        ),
        (
            "a pk with two components for a one-path key",
            feed_stream(&server, "c", "?pk=%5B%22a%22%2C%22b%22%5D"),
            400,
        ),
        (
            "a range and a pk",
            feed_stream(&server, "c", "?range=0&pk=%22a%22"),
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

#[tokio::test]
async fn the_refusals_of_range_pk_and_start_say_what_is_wrong() {
    let server = TestServer::with_container().await;
    for (query, status, expected) in [
        ("?range=7", 404, "feed range '7' does not exist"),
        ("?pk=customer-1", 400, "pk must be a partition key as JSON"),
        (
            "?pk=%5B%22a%22%2C%22b%22%5D",
            400,
            "pk does not fit the container's partition key definition: partition key has 2 components but the Hash definition has 1 paths",
        ),
        ("?pk=1&range=0", 400, "give range or pk, not both"),
        ("?start=soon", 400, "an RFC 3339 time such as"),
    ] {
        let message = feed_stream(&server, "c", query)
            .send()
            .await
            .expect_error(status);
        assert!(message.contains(expected), "{query}: {message}");
    }
}

#[tokio::test]
async fn a_stream_narrowed_to_a_partition_key_gets_its_changes_only_and_survives_a_split() {
    let server = TestServer::with_container().await;
    server
        .create_item("p1", &json!({ "id": "mine-before", "pk": "p1" }))
        .await;
    let (mut stream, opened) =
        open_stream_reporting(feed_stream(&server, "c", "?pk=%22p1%22&heartbeat_ms=100")).await;
    assert_eq!(
        (&opened["pk"], &opened["range"], &opened["start"]),
        (&json!(["p1"]), &Value::Null, &json!("now")),
        "{opened}"
    );
    for (id, pk) in [
        ("other-1", "p0"),
        ("mine-1", "p1"),
        ("other-2", "p2"),
        ("mine-2", "p1"),
    ] {
        server.create_item(pk, &json!({ "id": id, "pk": pk })).await;
    }
    // Feed order is commit order: had the others passed, they would come between.
    assert_eq!(next_ids(&mut stream, 2).await, ["mine-1", "mine-2"]);
    expect_heartbeat(&mut stream).await;

    // A split of the key's range does not end the stream: its scope is the key's EPK.
    for n in 0..20 {
        let pk = format!("filler-{n}");
        server
            .create_item(&pk, &json!({ "id": format!("filler-{n}"), "pk": pk }))
            .await;
    }
    server
        .store
        .split_range("db", "c", 0)
        .await
        .expect("range 0 splits");
    server
        .create_item("p1", &json!({ "id": "mine-after-split", "pk": "p1" }))
        .await;
    assert_eq!(next_ids(&mut stream, 1).await, ["mine-after-split"]);

    // From the beginning, the key's change made before the stream comes first.
    let (mut from_start, _) = open_stream_reporting(feed_stream(
        &server,
        "c",
        "?pk=%22p1%22&start=beginning&heartbeat_ms=100",
    ))
    .await;
    assert_eq!(
        next_ids(&mut from_start, 4).await,
        ["mine-before", "mine-1", "mine-2", "mine-after-split"]
    );
    expect_heartbeat(&mut from_start).await;
}

#[tokio::test]
async fn a_hierarchical_key_or_its_prefix_narrows_the_stream() {
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
    for (id, tenant, user) in [
        ("x-y", "x", "y"),
        ("x-z", "x", "z"),
        ("w-y", "w", "y"),
        ("x-y-2", "x", "y"),
    ] {
        create_with_key(
            &server,
            "h",
            &json!([tenant, user]),
            &json!({ "id": id, "tenant": tenant, "user": user }),
        )
        .await;
    }
    for (pk, expected) in [
        ("%5B%22x%22%2C%22y%22%5D", vec!["x-y", "x-y-2"]),
        ("%5B%22x%22%5D", vec!["x-y", "x-z", "x-y-2"]),
    ] {
        let (mut stream, opened) = open_stream_reporting(feed_stream(
            &server,
            "h",
            &format!("?pk={pk}&start=beginning&heartbeat_ms=100"),
        ))
        .await;
        assert_eq!(
            next_ids(&mut stream, expected.len()).await,
            expected,
            "{opened}"
        );
        expect_heartbeat(&mut stream).await;
    }
    let message = feed_stream(&server, "h", "?pk=%5B%22x%22%2C%22y%22%2C%22z%22%5D")
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("3 components"), "{message}");
}

#[tokio::test]
async fn a_stream_narrowed_to_a_feed_range_gets_its_changes_only_until_the_range_splits() {
    let server = TestServer::with_container().await;
    let write = |id: String, pk: String| {
        let server = &server;
        async move {
            server
                .create_item(&pk, &json!({ "id": id, "pk": pk }))
                .await;
        }
    };
    for n in 0..20 {
        write(format!("before-{n}"), format!("p{n}")).await;
    }
    let children = server
        .store
        .split_range("db", "c", 0)
        .await
        .expect("range 0 splits");
    for n in 0..20 {
        write(format!("after-{n}"), format!("p{n}")).await;
    }
    let range = &children[0];
    let span = range.epk_range();
    let definition = PartitionKeyDefinition::single("/pk");
    let in_range = |n: usize| {
        let key = PartitionKey::from_json(&json!(format!("p{n}"))).expect("a key");
        span.contains(&key.effective_partition_key(&definition).expect("an EPK"))
    };
    let expected: Vec<String> = ["before", "after"]
        .iter()
        .flat_map(|when| {
            (0..20)
                .filter(|&n| in_range(n))
                .map(move |n| format!("{when}-{n}"))
        })
        .collect();
    assert!(
        !expected.is_empty() && expected.len() < 40,
        "the split leaves some keys on each side: {expected:?}"
    );

    let (mut stream, opened) = open_stream_reporting(feed_stream(
        &server,
        "c",
        &format!("?range={}&start=beginning&heartbeat_ms=100", range.id),
    ))
    .await;
    assert_eq!(opened["range"], json!(range.id), "{opened}");
    assert_eq!(next_ids(&mut stream, expected.len()).await, expected);
    expect_heartbeat(&mut stream).await;

    // The split parent is refused before streaming, with what to do.
    let gone = feed_stream(&server, "c", "?range=0").send().await;
    let message = gone.expect_error(410);
    assert!(
        message.contains("split") && message.contains("pick a current one"),
        "{message}"
    );
    assert_eq!(gone.header(headers::X_MS_SUBSTATUS), Some("1002"));

    // Split while streaming: the stream ends with an error event saying so.
    server
        .store
        .split_range("db", "c", range.id)
        .await
        .expect("the child range splits");
    let ended = stream.expect_event(PUSH_WITHIN).await;
    assert_eq!(ended.name, "error", "{ended:?}");
    let error = data_json(&ended.data);
    assert_eq!(error["code"], "Gone", "{error}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("split") && m.contains("pick a current one")),
        "{error}"
    );
    assert!(
        stream.next_event(PUSH_WITHIN).await.is_none(),
        "the stream ends after its error"
    );
}

#[tokio::test]
async fn a_stream_started_from_a_time_skips_the_changes_before_it() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({ "id": "earlier", "pk": "p" }))
        .await;
    // The feed's times are whole seconds: start in a later second than the first write's.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis() as u64;
    let start = rfc3339(UNIX_EPOCH + Duration::from_millis(now_ms / 1000 * 1000));
    server
        .create_item("q", &json!({ "id": "later", "pk": "q" }))
        .await;
    let (mut stream, opened) = open_stream_reporting(feed_stream(
        &server,
        "c",
        &format!("?start={start}&heartbeat_ms=100"),
    ))
    .await;
    assert_eq!(opened["start"], json!(start), "reported as asked: {opened}");
    assert_eq!(next_ids(&mut stream, 1).await, ["later"]);
    expect_heartbeat(&mut stream).await;
    server
        .create_item("p", &json!({ "id": "after-open", "pk": "p" }))
        .await;
    assert_eq!(next_ids(&mut stream, 1).await, ["after-open"]);

    // With a pk too: only that key's changes from that time.
    let (mut narrowed, _) = open_stream_reporting(feed_stream(
        &server,
        "c",
        &format!("?start={start}&pk=%22p%22&heartbeat_ms=100"),
    ))
    .await;
    assert_eq!(next_ids(&mut narrowed, 1).await, ["after-open"]);
    expect_heartbeat(&mut narrowed).await;
}

#[test]
fn rfc3339_formats_utc_times() {
    assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_millis(1_796_292_000_250)),
        "2026-12-03T10:00:00.250Z"
    );
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::from_millis(1_709_251_199_000)),
        "2024-02-29T23:59:59.000Z"
    );
}
