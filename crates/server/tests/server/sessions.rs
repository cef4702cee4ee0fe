//! Session tokens: responses name the feed range a request reached, with the container's
//! paths the SDKs file them under; a request's token must parse and must not be ahead of the
//! container.

use axum::http::Method;
use serde_json::json;
use tributary_wire::headers;

use crate::harness::TestServer;

/// Range ids and LSNs of a session token header.
fn tokens(value: &str) -> Vec<(String, u64)> {
    value
        .split(',')
        .map(|token| {
            let (range, vector) = token.split_once(':').expect("range:vector");
            let (version, lsn) = vector.split_once('#').expect("version#lsn");
            assert_eq!(version, "-1");
            (range.to_owned(), lsn.parse().expect("an LSN"))
        })
        .collect()
}

#[tokio::test]
async fn item_batch_feed_and_query_responses_name_the_ranges_they_reached() {
    let server = TestServer::with_container().await;
    for n in 0..20 {
        server
            .create_item(
                &format!("p{n}"),
                &json!({"id": format!("i{n}"), "pk": format!("p{n}")}),
            )
            .await;
    }
    let children = server.store.split_range("db", "c", 0).await.expect("split");
    let rid = server
        .request(Method::GET, "/dbs/db/colls/c")
        .send()
        .await
        .json()["_rid"]
        .as_str()
        .expect("rid")
        .to_owned();

    let created = server
        .create_item("p3", &json!({"id": "new", "pk": "p3"}))
        .await;
    let token = created
        .header(headers::X_MS_SESSION_TOKEN)
        .expect("a session token");
    let [(range, lsn)] = &tokens(token)[..] else {
        panic!("one token for one item: {token}");
    };
    assert!(
        children.iter().any(|child| &child.id.to_string() == range),
        "{range}"
    );
    assert_eq!(*lsn, 21, "the write's LSN");
    assert_eq!(
        created.header(headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID),
        Some(range.as_str())
    );
    assert_eq!(
        created.header(headers::X_MS_ALT_CONTENT_PATH),
        Some("dbs/db/colls/c")
    );
    assert_eq!(
        created.header(headers::X_MS_CONTENT_PATH),
        Some(rid.as_str())
    );

    let read = server
        .request(Method::GET, "/dbs/db/colls/c/docs/new")
        .partition_key("p3")
        .header(headers::X_MS_SESSION_TOKEN, token)
        .send()
        .await;
    read.expect_status(200);
    assert_eq!(
        read.header(headers::X_MS_SESSION_TOKEN),
        Some(token),
        "nothing written since"
    );

    let deleted = server
        .request(Method::DELETE, "/dbs/db/colls/c/docs/new")
        .partition_key("p3")
        .send()
        .await;
    deleted.expect_status(204);
    let after_delete = tokens(
        deleted
            .header(headers::X_MS_SESSION_TOKEN)
            .expect("a token"),
    );
    assert_eq!(
        after_delete,
        [(range.clone(), 22)],
        "a delete reports its LSN too"
    );

    let batch = crate::atomicity::batch(
        &server,
        "p3",
        json!([{"operationType": "Create", "resourceBody": {"id": "b", "pk": "p3"}}]),
    )
    .await;
    batch.expect_status(200);
    let batch_tokens = tokens(batch.header(headers::X_MS_SESSION_TOKEN).expect("a token"));
    assert_eq!(
        batch_tokens,
        [(range.clone(), 23)],
        "a batch names its key's range"
    );

    let feed = server.change_feed(None).await;
    feed.expect_status(200);
    let feed_tokens = tokens(feed.header(headers::X_MS_SESSION_TOKEN).expect("a token"));
    assert_eq!(
        feed_tokens.len(),
        children.len(),
        "the container's feed names every range"
    );
    assert!(
        feed_tokens.iter().all(|(_, lsn)| *lsn == 23),
        "{feed_tokens:?}"
    );

    let query = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .query("SELECT * FROM c")
        .header(headers::X_MS_DOCUMENTDB_QUERY_ENABLECROSSPARTITION, "true")
        .send()
        .await;
    query.expect_status(200);
    let across = tokens(query.header(headers::X_MS_SESSION_TOKEN).expect("a token"));
    let mut ranges: Vec<String> = across.iter().map(|(range, _)| range.clone()).collect();
    ranges.sort();
    let mut expected: Vec<String> = children.iter().map(|child| child.id.to_string()).collect();
    expected.sort();
    assert_eq!(
        ranges, expected,
        "a cross-partition query names every range it read"
    );
    assert!(
        query
            .header(headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID)
            .is_none()
    );
}

#[tokio::test]
async fn a_request_token_must_parse_and_must_not_be_ahead_of_the_container() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({"id": "a", "pk": "p"}))
        .await;
    let read = |token: &'static str| {
        server
            .request(Method::GET, "/dbs/db/colls/c/docs/a")
            .partition_key("p")
            .header(headers::X_MS_SESSION_TOKEN, token)
    };
    read("0:-1#1").send().await.expect_status(200);
    read("0:-1#0,7:-1#1").send().await.expect_status(200);
    let message = read("garbage").send().await.expect_error(400);
    assert!(
        message.contains("session token provided is invalid"),
        "{message}"
    );
    let ahead = read("0:-1#99").send().await;
    let message = ahead.expect_error(404);
    assert_eq!(ahead.header(headers::X_MS_SUBSTATUS), Some("1002"));
    assert!(
        message.contains("read session is not available"),
        "{message}"
    );
}
