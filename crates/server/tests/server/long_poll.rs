//! Tributary's long-poll extension to the change feed (`x-tributary-wait-ms`): a request with
//! nothing new waits for a commit instead of answering 304 at once, answers 304 when the wait
//! runs out, and keeps the 410 contract of split ranges (a split ends the wait with 410).
//!
//! Timings are asserted loosely (a writer commits after about 200 ms; a 5 s wait must end well
//! before 4 s), so the tests hold on a loaded machine.

use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::json;
use tributary_wire::headers;

use crate::harness::{Response, TestServer, document_ids};

/// How long a writer waits before committing, so that the feed request is already waiting.
const WRITER_DELAY: Duration = Duration::from_millis(200);
/// The wait a long-poll request asks for when a commit is expected to end it early.
const LONG_WAIT_MS: u64 = 5_000;
/// A request that a commit ends must answer well before [`LONG_WAIT_MS`].
const WOKEN_WITHIN: Duration = Duration::from_secs(4);
/// The wait a request asks for when nothing will be written.
const SHORT_WAIT: Duration = Duration::from_millis(1_000);
/// How much earlier than its wait a 304 may come (timer granularity).
const TIMER_SLACK: Duration = Duration::from_millis(50);

/// Writes item `id` in partition `pk` (creates return 201).
async fn write(server: &TestServer, id: &str) {
    server.create_item(id, &json!({ "id": id, "pk": id })).await;
}

/// The current end of container `c`'s feed: the etag to wait after.
async fn current_etag(server: &TestServer) -> String {
    let response = server.change_feed(Some("*")).await;
    response.expect_status(304);
    response
        .header(headers::ETAG)
        .expect("a 304 change feed answer has an etag")
        .to_owned()
}

/// A latest-version change feed request of container `c` after `etag`, waiting up to `wait_ms`
/// for a change, with extra scope headers.
async fn wait_for_change(
    server: &TestServer,
    etag: &str,
    wait_ms: u64,
    scope: &[(&str, &str)],
) -> (Response, Duration) {
    let mut request = server
        .request(Method::GET, "/dbs/db/colls/c/docs")
        .header(headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED)
        .header(headers::IF_NONE_MATCH, etag)
        .header(headers::X_TRIBUTARY_WAIT_MS, &wait_ms.to_string());
    for (name, value) in scope {
        request = request.header(name, value);
    }
    let started = Instant::now();
    let response = request.send().await;
    (response, started.elapsed())
}

#[tokio::test]
async fn a_waiting_change_feed_request_is_answered_by_the_next_commit() {
    let server = TestServer::with_container().await;
    write(&server, "before").await;
    let etag = current_etag(&server).await;

    let ((response, elapsed), ()) =
        tokio::join!(wait_for_change(&server, &etag, LONG_WAIT_MS, &[]), async {
            tokio::time::sleep(WRITER_DELAY).await;
            write(&server, "during").await;
        },);

    response.expect_status(200);
    assert_eq!(document_ids(&response.json()), ["during"]);
    assert_ne!(response.header(headers::ETAG), Some(etag.as_str()));
    assert!(
        elapsed < WOKEN_WITHIN,
        "the commit should end the {LONG_WAIT_MS} ms wait early, took {elapsed:?}"
    );
    assert!(
        elapsed >= WRITER_DELAY - TIMER_SLACK,
        "the request should have waited for the write, answered after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_waiting_change_feed_request_answers_304_when_the_wait_runs_out() {
    let server = TestServer::with_container().await;
    write(&server, "before").await;
    let etag = current_etag(&server).await;

    let wait_ms = SHORT_WAIT.as_millis() as u64;
    let (response, elapsed) = wait_for_change(&server, &etag, wait_ms, &[]).await;

    response.expect_status(304);
    assert_eq!(
        response.header(headers::ETAG),
        Some(etag.as_str()),
        "the position has not moved"
    );
    assert!(
        elapsed >= SHORT_WAIT - TIMER_SLACK,
        "a 304 should come only after the wait, came after {elapsed:?}"
    );
    assert!(
        elapsed < WOKEN_WITHIN,
        "the wait should end on time, took {elapsed:?}"
    );
}

#[tokio::test]
async fn a_wait_on_a_range_split_meanwhile_ends_in_410_at_the_split() {
    let server = TestServer::with_container().await;
    write(&server, "before").await;
    let etag = current_etag(&server).await;

    let ((response, elapsed), ()) = tokio::join!(
        wait_for_change(
            &server,
            &etag,
            LONG_WAIT_MS,
            &[(headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID, "0")],
        ),
        async {
            tokio::time::sleep(WRITER_DELAY).await;
            server
                .store
                .split_range("db", "c", 0)
                .await
                .expect("range 0 splits");
        },
    );

    // A split commits no change, but it wakes the readers of the split range: the request
    // gets its 410 at once, not a 304 at the end of its wait.
    response.expect_error(410);
    assert_eq!(response.header(headers::X_MS_SUBSTATUS), Some("1002"));
    assert!(
        elapsed < WOKEN_WITHIN,
        "the split should end the {LONG_WAIT_MS} ms wait early, took {elapsed:?}"
    );
    assert!(
        elapsed >= WRITER_DELAY - TIMER_SLACK,
        "the request should have waited for the split, answered after {elapsed:?}"
    );

    // From then on, a request on the split range gets 410 at once, without waiting.
    let (response, elapsed) = wait_for_change(
        &server,
        &etag,
        LONG_WAIT_MS,
        &[(headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID, "0")],
    )
    .await;
    response.expect_error(410);
    assert_eq!(response.header(headers::X_MS_SUBSTATUS), Some("1002"));
    assert!(
        elapsed < WOKEN_WITHIN,
        "a split range should be refused at once, took {elapsed:?}"
    );
}

#[tokio::test]
async fn a_wait_by_epk_range_survives_a_split_and_gets_the_next_change() {
    let server = TestServer::with_container().await;
    write(&server, "before").await;
    let etag = current_etag(&server).await;
    let whole_container = [
        (headers::X_MS_START_EPK, ""),
        (headers::X_MS_END_EPK, "FF"),
        (
            headers::X_MS_READ_KEY_TYPE,
            headers::values::READ_KEY_TYPE_EPK_RANGE,
        ),
    ];

    let ((response, elapsed), ()) = tokio::join!(
        wait_for_change(&server, &etag, LONG_WAIT_MS, &whole_container),
        async {
            tokio::time::sleep(WRITER_DELAY).await;
            server
                .store
                .split_range("db", "c", 0)
                .await
                .expect("range 0 splits");
            write(&server, "after-split").await;
        },
    );

    response.expect_status(200);
    assert_eq!(document_ids(&response.json()), ["after-split"]);
    assert!(
        elapsed < WOKEN_WITHIN,
        "the commit should end the wait early, took {elapsed:?}"
    );

    // The same EPK span keeps working after the split: the next change arrives too.
    let next_etag = response
        .header(headers::ETAG)
        .expect("a 200 page has an etag")
        .to_owned();
    let ((response, _), ()) = tokio::join!(
        wait_for_change(&server, &next_etag, LONG_WAIT_MS, &whole_container),
        async {
            tokio::time::sleep(WRITER_DELAY).await;
            write(&server, "later").await;
        },
    );
    response.expect_status(200);
    assert_eq!(document_ids(&response.json()), ["later"]);
}

#[tokio::test]
async fn an_invalid_wait_is_a_400_that_names_the_header() {
    let server = TestServer::with_container().await;
    for value in ["soon", "-5", "1.5", "99999999999999999999999"] {
        let response = server
            .request(Method::GET, "/dbs/db/colls/c/docs")
            .header(headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED)
            .header(headers::X_TRIBUTARY_WAIT_MS, value)
            .send()
            .await;
        let message = response.expect_error(400);
        assert!(
            message.contains(headers::X_TRIBUTARY_WAIT_MS),
            "the message for '{value}' should name the header: {message}"
        );
    }
}
