//! Change feed pages: starts, positions, scopes, modes, splits, the long-poll wait, and the
//! server-side filter.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tributary_client::{
    ChangeFeedMode, ChangeFeedPage, ChangeFeedRequest, ChangeFeedStart, ClientError, CosmosClient,
    Method,
};

use crate::harness::TestServer;

/// The ids of a page's changes, in order (each change parsed from its raw text).
fn ids(page: &ChangeFeedPage) -> Vec<String> {
    page.changes
        .iter()
        .map(|raw| {
            let change: Value = serde_json::from_str(raw.get()).expect("a change is JSON");
            let id = change["id"]
                .as_str()
                .or_else(|| change["current"]["id"].as_str())
                .or_else(|| change["metadata"]["id"].as_str())
                .unwrap_or_else(|| panic!("a change names its item: {change}"));
            id.to_owned()
        })
        .collect()
}

async fn write(client: &CosmosClient, id: &str, pk: &str) {
    client
        .upsert_document("db", "c", &json!(pk), &json!({ "id": id, "pk": pk }))
        .await
        .expect("written");
}

#[tokio::test]
async fn pages_from_the_beginning_continue_by_etag_and_report_nothing_new_as_not_modified() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    for id in ["a", "b", "c"] {
        write(&client, id, "p").await;
    }

    let first = client
        .change_feed(
            "db",
            "c",
            &ChangeFeedRequest::new(ChangeFeedStart::Beginning, 2),
        )
        .await
        .expect("a page");
    assert!(!first.not_modified);
    assert_eq!(ids(&first), ["a", "b"]);
    assert!(first.session_token.is_some());
    let second = client
        .change_feed(
            "db",
            "c",
            &ChangeFeedRequest::new(ChangeFeedStart::Etag(first.etag.clone()), 2),
        )
        .await
        .expect("a page");
    assert_eq!(ids(&second), ["c"]);
    let caught_up = client
        .change_feed(
            "db",
            "c",
            &ChangeFeedRequest::new(ChangeFeedStart::Etag(second.etag.clone()), 2),
        )
        .await
        .expect("a page");
    assert!(caught_up.not_modified);
    assert!(caught_up.changes.is_empty());
    assert_eq!(caught_up.etag, second.etag, "the position does not move");
}

#[tokio::test]
async fn a_page_keeps_each_change_exactly_as_the_server_sent_it() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    write(&client, "a", "p").await;
    let page = client
        .change_feed(
            "db",
            "c",
            &ChangeFeedRequest::new(ChangeFeedStart::Beginning, 10),
        )
        .await
        .expect("a page");
    let raw = client
        .send(
            Method::GET,
            "/dbs/db/colls/c/docs",
            &[("a-im", "Incremental Feed")],
            None,
        )
        .await
        .expect("answered");
    let raw_text = String::from_utf8(raw.body.to_vec()).expect("UTF-8");
    assert!(
        raw_text.contains(page.changes[0].get()),
        "the change is a verbatim slice of the body: {} in {raw_text}",
        page.changes[0].get()
    );
}

#[tokio::test]
async fn starting_now_skips_what_came_before() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    write(&client, "old", "p").await;
    let now = client
        .change_feed("db", "c", &ChangeFeedRequest::new(ChangeFeedStart::Now, 10))
        .await
        .expect("a page");
    assert!(now.not_modified);
    write(&client, "new", "p").await;
    let next = client
        .change_feed(
            "db",
            "c",
            &ChangeFeedRequest::new(ChangeFeedStart::Etag(now.etag), 10),
        )
        .await
        .expect("a page");
    assert_eq!(ids(&next), ["new"]);
}

#[tokio::test]
async fn starting_at_a_time_skips_changes_made_before_it() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    write(&client, "before", "p").await;
    // If-Modified-Since has second precision: leave more than a second between the writes.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let start = SystemTime::now();
    write(&client, "after", "p").await;
    let page = client
        .change_feed(
            "db",
            "c",
            &ChangeFeedRequest::new(ChangeFeedStart::Time(start), 10),
        )
        .await
        .expect("a page");
    assert_eq!(ids(&page), ["after"]);
}

#[tokio::test]
async fn a_partition_key_scope_sees_only_that_partition() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    write(&client, "a1", "a").await;
    write(&client, "b1", "b").await;
    write(&client, "a2", "a").await;
    let request = ChangeFeedRequest {
        partition_key: Some(json!("a")),
        ..ChangeFeedRequest::new(ChangeFeedStart::Beginning, 10)
    };
    let page = client
        .change_feed("db", "c", &request)
        .await
        .expect("a page");
    assert_eq!(ids(&page), ["a1", "a2"]);
}

#[tokio::test]
async fn a_split_range_is_gone_and_its_children_and_epk_spans_carry_on() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    for n in 0..10 {
        write(&client, &format!("i{n}"), &format!("p{n}")).await;
    }
    let by_range = ChangeFeedRequest {
        range_id: Some("0".to_owned()),
        ..ChangeFeedRequest::new(ChangeFeedStart::Beginning, 100)
    };
    let before = client
        .change_feed("db", "c", &by_range)
        .await
        .expect("a page");
    assert_eq!(before.changes.len(), 10);

    server
        .store
        .split_range("db", "c", 0)
        .await
        .expect("range 0 splits");
    let error = client
        .change_feed("db", "c", &by_range)
        .await
        .expect_err("range 0 is gone");
    assert!(error.is_split(), "{error:?}");
    assert!(
        matches!(
            error,
            ClientError::Gone {
                substatus: 1002,
                ..
            }
        ),
        "{error:?}"
    );

    // The children, each from the beginning, hold every item once.
    let mut seen = Vec::new();
    for range in client
        .partition_key_ranges("db", "c")
        .await
        .expect("ranges")
    {
        let request = ChangeFeedRequest {
            range_id: Some(range.id.clone()),
            epk_range: Some((range.min.clone(), range.max.clone())),
            ..ChangeFeedRequest::new(ChangeFeedStart::Beginning, 100)
        };
        let page = client
            .change_feed("db", "c", &request)
            .await
            .expect("a page");
        seen.extend(ids(&page));
    }
    seen.sort();
    let mut expected: Vec<String> = (0..10).map(|n| format!("i{n}")).collect();
    expected.sort();
    assert_eq!(seen, expected);

    // An EPK span over the whole container continues from the old position across the split.
    let by_epk = ChangeFeedRequest {
        epk_range: Some((String::new(), "FF".to_owned())),
        ..ChangeFeedRequest::new(ChangeFeedStart::Etag(before.etag), 100)
    };
    write(&client, "after-split", "q").await;
    let page = client
        .change_feed("db", "c", &by_epk)
        .await
        .expect("a page");
    assert_eq!(ids(&page), ["after-split"]);
}

#[tokio::test]
async fn all_versions_and_deletes_shows_the_delete() {
    let server = TestServer::start().await;
    let client = server.client();
    client
        .create_database_if_not_exists("db")
        .await
        .expect("created");
    // A container with a change feed retention policy, which this mode needs.
    let created = client
        .send(
            Method::POST,
            "/dbs/db/colls",
            &[],
            Some(
                json!({
                    "id": "c",
                    "partitionKey": { "paths": ["/pk"], "kind": "Hash", "version": 2 },
                    "changeFeedPolicy": { "retentionDuration": 60 },
                })
                .to_string()
                .into_bytes(),
            ),
        )
        .await
        .expect("answered");
    assert_eq!(created.status, 201);
    let start = client
        .change_feed(
            "db",
            "c",
            &ChangeFeedRequest {
                mode: ChangeFeedMode::AllVersionsAndDeletes,
                ..ChangeFeedRequest::new(ChangeFeedStart::Now, 10)
            },
        )
        .await
        .expect("a page");
    write(&client, "a", "p").await;
    client
        .delete_document("db", "c", &json!("p"), "a", None)
        .await
        .expect("deleted");
    let page = client
        .change_feed(
            "db",
            "c",
            &ChangeFeedRequest {
                mode: ChangeFeedMode::AllVersionsAndDeletes,
                ..ChangeFeedRequest::new(ChangeFeedStart::Etag(start.etag), 10)
            },
        )
        .await
        .expect("a page");
    let operations: Vec<Value> = page
        .changes
        .iter()
        .map(|raw| {
            let change: Value = serde_json::from_str(raw.get()).expect("JSON");
            change["metadata"]["operationType"].clone()
        })
        .collect();
    assert_eq!(operations, [json!("create"), json!("delete")]);
}

#[tokio::test]
async fn a_wait_is_ended_by_the_next_write() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    write(&client, "before", "p").await;
    let now = client
        .change_feed("db", "c", &ChangeFeedRequest::new(ChangeFeedStart::Now, 10))
        .await
        .expect("a page");
    let waiting = ChangeFeedRequest {
        wait: Some(Duration::from_secs(5)),
        ..ChangeFeedRequest::new(ChangeFeedStart::Etag(now.etag.clone()), 10)
    };
    let started = Instant::now();
    let (page, ()) = tokio::join!(client.change_feed("db", "c", &waiting), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        write(&client, "during", "p").await;
    });
    let page = page.expect("a page");
    assert_eq!(ids(&page), ["during"]);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the write ends the wait early: {:?}",
        started.elapsed()
    );

    let short = ChangeFeedRequest {
        wait: Some(Duration::from_millis(300)),
        ..ChangeFeedRequest::new(ChangeFeedStart::Etag(page.etag.clone()), 10)
    };
    let started = Instant::now();
    let idle = client.change_feed("db", "c", &short).await.expect("a page");
    assert!(idle.not_modified);
    assert_eq!(idle.etag, page.etag);
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_filter_is_sent_encoded_and_the_page_counts_what_it_left_out() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    for (id, city) in [("a", "Zürich"), ("b", "Bern"), ("c", "Zug")] {
        client
            .upsert_document(
                "db",
                "c",
                &json!("p"),
                &json!({ "id": id, "pk": "p", "city": city }),
            )
            .await
            .expect("written");
    }
    let unfiltered = client
        .change_feed(
            "db",
            "c",
            &ChangeFeedRequest::new(ChangeFeedStart::Beginning, 10),
        )
        .await
        .expect("a page");
    assert_eq!(unfiltered.n_filtered, None, "no filter sent, none counted");
    // Non-ASCII text and a '%' both survive the header.
    let request = ChangeFeedRequest {
        filter: Some("c.city = 'Zürich' OR c.city LIKE 'Zu%'".to_owned()),
        ..ChangeFeedRequest::new(ChangeFeedStart::Beginning, 10)
    };
    let page = client
        .change_feed("db", "c", &request)
        .await
        .expect("a page");
    assert_eq!(ids(&page), ["a", "c"]);
    assert_eq!(page.n_filtered, Some(1));
    assert_eq!(page.etag, unfiltered.etag, "the position passes 'b' too");

    let nothing = ChangeFeedRequest {
        filter: Some("c.city = 'Basel'".to_owned()),
        ..ChangeFeedRequest::new(ChangeFeedStart::Beginning, 10)
    };
    let page = client
        .change_feed("db", "c", &nothing)
        .await
        .expect("a page");
    assert!(page.not_modified);
    assert_eq!(page.n_filtered, Some(3));
    assert_eq!(page.etag, unfiltered.etag);

    let bad = ChangeFeedRequest {
        filter: Some("c.city =".to_owned()),
        ..ChangeFeedRequest::new(ChangeFeedStart::Beginning, 10)
    };
    let error = client
        .change_feed("db", "c", &bad)
        .await
        .expect_err("a filter that does not parse");
    assert!(
        matches!(error, ClientError::Status { status: 400, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("c.city ="), "{error}");
}

#[tokio::test]
async fn a_page_of_zero_items_is_refused_before_sending() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    let error = client
        .change_feed(
            "db",
            "c",
            &ChangeFeedRequest::new(ChangeFeedStart::Beginning, 0),
        )
        .await
        .expect_err("zero items");
    assert!(matches!(error, ClientError::InvalidRequest(_)), "{error:?}");
}

#[tokio::test]
async fn the_change_feed_works_over_tls() {
    let server = TestServer::start_tls().await;
    let client = server.client_with_container().await;
    write(&client, "a", "p").await;
    let page = client
        .change_feed(
            "db",
            "c",
            &ChangeFeedRequest::new(ChangeFeedStart::Beginning, 10),
        )
        .await
        .expect("a page over HTTPS");
    assert_eq!(ids(&page), ["a"]);
    let read = client
        .read_document("db", "c", &json!("p"), "a")
        .await
        .expect("read over HTTPS");
    assert!(read.is_some());
}
