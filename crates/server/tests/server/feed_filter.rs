//! Tributary's change feed filter extension (`x-tributary-feed-filter`): only matching changes
//! are on the page, the etag moves past every change read, a page where nothing matched is a
//! 304 with the advanced etag, the answer counts what was filtered out, a bad filter is a 400
//! naming it, all-versions mode filters on the current image and lets deletes through, and a
//! waiting read waits past changes that do not match.

use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{Value, json};
use tributary_wire::headers;

use crate::harness::{Response, TestServer, document_ids};

/// The filter most tests use.
const SHIPPED: &str = "c.status = 'shipped'";
/// How long a writer waits before committing, so that the feed request is already waiting.
const WRITER_DELAY: Duration = Duration::from_millis(200);
/// The wait a long-poll request asks for when a commit is expected to end it early.
const LONG_WAIT_MS: u64 = 5_000;
/// A request that a commit ends must answer well before [`LONG_WAIT_MS`].
const WOKEN_WITHIN: Duration = Duration::from_secs(4);
/// The wait a request asks for when nothing matching will be written.
const SHORT_WAIT: Duration = Duration::from_millis(1_000);
/// How much earlier than its wait a 304 may come (timer granularity).
const TIMER_SLACK: Duration = Duration::from_millis(50);

/// Creates order `id` (its own partition) with `status`.
async fn order(server: &TestServer, id: &str, status: &str) {
    server
        .create_item(id, &json!({ "id": id, "pk": id, "status": status }))
        .await;
}

/// A change feed request of container `c` in `a_im` mode from `etag` (the beginning if
/// `None`), with `extra` headers.
async fn feed(
    server: &TestServer,
    a_im: &str,
    etag: Option<&str>,
    extra: &[(&str, &str)],
) -> Response {
    let mut request = server
        .request(Method::GET, "/dbs/db/colls/c/docs")
        .header(headers::A_IM, a_im);
    if a_im == headers::values::A_IM_FULL_FIDELITY_FEED {
        request = request.header(
            headers::X_MS_COSMOS_CHANGEFEED_WIRE_FORMAT_VERSION,
            headers::values::CHANGE_FEED_WIRE_FORMAT_VERSION,
        );
    }
    if let Some(etag) = etag {
        request = request.header(headers::IF_NONE_MATCH, etag);
    }
    for (name, value) in extra {
        request = request.header(name, value);
    }
    request.send().await
}

/// A latest-version read from `etag` with the filter `condition` (sent percent-encoded).
async fn filtered(server: &TestServer, etag: Option<&str>, condition: &str) -> Response {
    let encoded = headers::encode_feed_filter(condition);
    feed(
        server,
        headers::values::A_IM_INCREMENTAL_FEED,
        etag,
        &[(headers::X_TRIBUTARY_FEED_FILTER, &encoded)],
    )
    .await
}

fn etag(response: &Response) -> &str {
    response
        .header(headers::ETAG)
        .expect("a change feed answer has an etag")
}

fn n_filtered(response: &Response) -> u64 {
    response
        .header(headers::X_TRIBUTARY_FILTERED_COUNT)
        .expect("a filtered answer counts what it left out")
        .parse()
        .expect("the count is a whole number")
}

#[tokio::test]
async fn a_filtered_page_holds_the_matching_changes_and_its_etag_passes_them_all() {
    let server = TestServer::with_container().await;
    for (id, status) in [
        ("o1", "new"),
        ("o2", "shipped"),
        ("o3", "new"),
        ("o4", "shipped"),
    ] {
        order(&server, id, status).await;
    }
    let unfiltered = server.change_feed(None).await;
    unfiltered.expect_status(200);
    assert_eq!(
        unfiltered.header(headers::X_TRIBUTARY_FILTERED_COUNT),
        None,
        "no filter, no count"
    );

    let page = filtered(&server, None, SHIPPED).await;
    page.expect_status(200);
    assert_eq!(document_ids(&page.json()), ["o2", "o4"]);
    assert_eq!(n_filtered(&page), 2);
    assert_eq!(page.header("x-ms-item-count"), Some("2"));
    assert_eq!(
        etag(&page),
        etag(&unfiltered),
        "past the filtered-out o3 too"
    );

    let next = filtered(&server, Some(etag(&page)), SHIPPED).await;
    next.expect_status(304);
    assert_eq!(etag(&next), etag(&page));
    assert_eq!(n_filtered(&next), 0);
}

#[tokio::test]
async fn a_page_where_nothing_matched_is_a_304_that_moves_past_the_changes_read() {
    let server = TestServer::with_container().await;
    let start = server.change_feed(Some("*")).await;
    start.expect_status(304);
    for id in ["o1", "o2", "o3"] {
        order(&server, id, "new").await;
    }
    order(&server, "o4", "shipped").await;

    // Pages of two: the first two changes are read and left out, and the etag moves past them.
    let page_of_two = [(headers::X_MS_MAX_ITEM_COUNT, "2")];
    let mut extra = page_of_two.to_vec();
    extra.push((headers::X_TRIBUTARY_FEED_FILTER, SHIPPED));
    let first = feed(
        &server,
        headers::values::A_IM_INCREMENTAL_FEED,
        Some(etag(&start)),
        &extra,
    )
    .await;
    first.expect_status(304);
    assert_eq!(n_filtered(&first), 2);
    let unfiltered = feed(
        &server,
        headers::values::A_IM_INCREMENTAL_FEED,
        Some(etag(&start)),
        &page_of_two,
    )
    .await;
    assert_eq!(document_ids(&unfiltered.json()), ["o1", "o2"]);
    assert_eq!(etag(&first), etag(&unfiltered), "past o1 and o2");

    let second = feed(
        &server,
        headers::values::A_IM_INCREMENTAL_FEED,
        Some(etag(&first)),
        &extra,
    )
    .await;
    second.expect_status(200);
    assert_eq!(document_ids(&second.json()), ["o4"]);
    assert_eq!(n_filtered(&second), 1);
}

#[tokio::test]
async fn a_filter_that_does_not_parse_is_refused_with_400_naming_it() {
    let server = TestServer::with_container().await;
    order(&server, "o1", "shipped").await;
    for bad in ["c.status =", "c.status = @status", "c.status = 'a' ORDER"] {
        let message = filtered(&server, None, bad).await.expect_error(400);
        assert!(message.contains(bad), "{message}");
        assert!(
            message.contains(headers::X_TRIBUTARY_FEED_FILTER),
            "{message}"
        );
    }
    // Header values are ASCII: raw UTF-8 is refused, the percent-encoded condition works.
    let raw = feed(
        &server,
        headers::values::A_IM_INCREMENTAL_FEED,
        None,
        &[(headers::X_TRIBUTARY_FEED_FILTER, "c.city = 'Zürich'")],
    )
    .await
    .expect_error(400);
    assert!(raw.contains("percent-encode"), "{raw}");
    server
        .create_item("o2", &json!({ "id": "o2", "pk": "o2", "city": "Zürich" }))
        .await;
    let page = filtered(&server, None, "c.city = 'Zürich'").await;
    page.expect_status(200);
    assert_eq!(document_ids(&page.json()), ["o2"]);
}

#[tokio::test]
async fn in_all_versions_mode_the_filter_sees_the_current_image_and_deletes_pass() {
    let server = TestServer::start().await;
    server.create_database("db").await;
    server
        .request(Method::POST, "/dbs/db/colls")
        .json(&json!({
            "id": "c",
            "partitionKey": { "paths": ["/pk"], "kind": "Hash", "version": 2 },
            "changeFeedPolicy": { "retentionDuration": 10 },
        }))
        .send()
        .await
        .expect_status(201);
    let start = server.change_feed(Some("*")).await;
    order(&server, "o1", "new").await;
    order(&server, "o2", "shipped").await;
    server
        .request(Method::PUT, "/dbs/db/colls/c/docs/o1")
        .partition_key("o1")
        .json(&json!({ "id": "o1", "pk": "o1", "status": "shipped" }))
        .send()
        .await
        .expect_status(200);
    server
        .request(Method::DELETE, "/dbs/db/colls/c/docs/o2")
        .partition_key("o2")
        .send()
        .await
        .expect_status(204);

    let page = feed(
        &server,
        headers::values::A_IM_FULL_FIDELITY_FEED,
        Some(etag(&start)),
        &[(headers::X_TRIBUTARY_FEED_FILTER, SHIPPED)],
    )
    .await;
    page.expect_status(200);
    let body = page.json();
    let seen: Vec<(String, String)> = body["Documents"]
        .as_array()
        .expect("a Documents array")
        .iter()
        .map(|change: &Value| {
            let operation = change["metadata"]["operationType"]
                .as_str()
                .expect("an operation type");
            let id = change["current"]["id"]
                .as_str()
                .or_else(|| change["metadata"]["id"].as_str())
                .expect("an id");
            (operation.to_owned(), id.to_owned())
        })
        .collect();
    let expected = [("create", "o2"), ("replace", "o1"), ("delete", "o2")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(operation, id)| ((*operation).to_owned(), (*id).to_owned()))
        .collect();
    assert_eq!(seen, expected, "o1's create (status new) is left out");
    assert_eq!(n_filtered(&page), 1);
}

#[tokio::test]
async fn a_waiting_filtered_read_waits_past_changes_that_do_not_match() {
    let server = TestServer::with_container().await;
    let start = server.change_feed(Some("*")).await;
    let wait_ms = LONG_WAIT_MS.to_string();
    let extra = [
        (headers::X_TRIBUTARY_FEED_FILTER, SHIPPED),
        (headers::X_TRIBUTARY_WAIT_MS, wait_ms.as_str()),
    ];
    let started = Instant::now();
    let (page, ()) = tokio::join!(
        feed(
            &server,
            headers::values::A_IM_INCREMENTAL_FEED,
            Some(etag(&start)),
            &extra,
        ),
        async {
            tokio::time::sleep(WRITER_DELAY).await;
            order(&server, "o1", "new").await;
            tokio::time::sleep(WRITER_DELAY).await;
            order(&server, "o2", "shipped").await;
        },
    );
    let elapsed = started.elapsed();
    page.expect_status(200);
    assert_eq!(document_ids(&page.json()), ["o2"]);
    assert_eq!(n_filtered(&page), 1, "o1 was read and left out");
    assert!(
        elapsed >= WRITER_DELAY * 2 - TIMER_SLACK,
        "the read should have waited on past o1, answered after {elapsed:?}"
    );
    assert!(
        elapsed < WOKEN_WITHIN,
        "o2 should end the wait, took {elapsed:?}"
    );
}

#[tokio::test]
async fn a_waiting_filtered_read_that_finds_no_match_answers_304_past_what_it_read() {
    let server = TestServer::with_container().await;
    let start = server.change_feed(Some("*")).await;
    let wait_ms = SHORT_WAIT.as_millis().to_string();
    let extra = [
        (headers::X_TRIBUTARY_FEED_FILTER, SHIPPED),
        (headers::X_TRIBUTARY_WAIT_MS, wait_ms.as_str()),
    ];
    let started = Instant::now();
    let (page, ()) = tokio::join!(
        feed(
            &server,
            headers::values::A_IM_INCREMENTAL_FEED,
            Some(etag(&start)),
            &extra,
        ),
        async {
            tokio::time::sleep(WRITER_DELAY).await;
            order(&server, "o1", "new").await;
        },
    );
    let elapsed = started.elapsed();
    page.expect_status(304);
    assert_eq!(n_filtered(&page), 1);
    assert_ne!(etag(&page), etag(&start), "the etag moved past o1");
    assert!(
        elapsed >= SHORT_WAIT - TIMER_SLACK,
        "the read should have waited its whole wait, answered after {elapsed:?}"
    );
    assert!(
        elapsed < WOKEN_WITHIN,
        "the wait should end on time, took {elapsed:?}"
    );
    let after = server.change_feed(Some(etag(&page))).await;
    after.expect_status(304);
}
