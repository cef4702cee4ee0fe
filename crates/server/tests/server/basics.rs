//! Happy paths the SDKs depend on: the account document, the change feed's 200/304 and
//! etags, partition key range caching, the 410 a client must see for a split range, a
//! container's usage and per-range statistics, and items reached by their `_self` links.

use axum::http::Method;
use serde_json::json;
use tributary_wire::headers;

use crate::harness::{TestServer, document_ids};

#[tokio::test]
async fn the_account_document_points_clients_back_at_the_host_they_used() {
    let server = TestServer::start().await;
    for host in ["tributary.test:8081", "127.0.0.1:9999", "[::1]:443"] {
        let response = server
            .request(Method::GET, "/")
            .header("host", host)
            .send()
            .await;
        response.expect_status(200);
        let account = response.json();
        let expected = format!("http://{host}/");
        for locations in ["writableLocations", "readableLocations"] {
            assert_eq!(
                account[locations][0]["databaseAccountEndpoint"], expected,
                "{locations}: {account}"
            );
        }
        assert!(
            account.get("thinClientWritableLocations").is_none(),
            "Gateway 2.0 is not advertised: {account}"
        );
    }
}

#[tokio::test]
async fn the_change_feed_answers_200_then_304_with_an_etag_on_both() {
    let server = TestServer::with_container().await;
    for id in ["a", "b"] {
        server
            .create_item("p", &json!({ "id": id, "pk": "p" }))
            .await;
    }
    let first = server.change_feed(None).await;
    first.expect_status(200);
    assert_eq!(document_ids(&first.json()), ["a", "b"]);
    assert_eq!(first.header("x-ms-item-count"), Some("2"));
    let etag = first
        .header(headers::ETAG)
        .expect("a 200 page has an etag")
        .to_owned();

    let caught_up = server.change_feed(Some(&etag)).await;
    caught_up.expect_status(304);
    assert!(caught_up.body.is_empty(), "a 304 has no body");
    assert_eq!(
        caught_up.header(headers::ETAG),
        Some(etag.as_str()),
        "a 304 repeats the position"
    );

    server
        .create_item("p", &json!({ "id": "c", "pk": "p" }))
        .await;
    let next = server.change_feed(Some(&etag)).await;
    next.expect_status(200);
    assert_eq!(document_ids(&next.json()), ["c"]);
    let next_etag = next.header(headers::ETAG).expect("etag");
    assert_ne!(next_etag, etag, "the position moves with the feed");
}

#[tokio::test]
async fn the_change_feed_pages_by_max_item_count_without_loss_or_repeats() {
    let server = TestServer::with_container().await;
    let ids: Vec<String> = (0..7).map(|n| format!("i{n}")).collect();
    for id in &ids {
        server
            .create_item("p", &json!({ "id": id, "pk": "p" }))
            .await;
    }
    let mut seen = Vec::new();
    let mut etag: Option<String> = None;
    for _ in 0..10 {
        let response = server
            .request(Method::GET, "/dbs/db/colls/c/docs")
            .header(headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED)
            .header(headers::X_MS_MAX_ITEM_COUNT, "3");
        let response = match &etag {
            Some(etag) => response.header(headers::IF_NONE_MATCH, etag),
            None => response,
        }
        .send()
        .await;
        etag = Some(response.header(headers::ETAG).expect("etag").to_owned());
        if response.status == 304 {
            break;
        }
        response.expect_status(200);
        let page = document_ids(&response.json());
        assert!(page.len() <= 3, "{page:?}");
        seen.extend(page);
    }
    assert_eq!(seen, ids);
}

#[tokio::test]
async fn change_feed_from_now_skips_existing_items() {
    let server = TestServer::with_container().await;
    server
        .create_item("p", &json!({ "id": "before", "pk": "p" }))
        .await;
    let now = server.change_feed(Some("*")).await;
    now.expect_status(304);
    let etag = now
        .header(headers::ETAG)
        .expect("a 304 from now has an etag")
        .to_owned();
    server
        .create_item("p", &json!({ "id": "after", "pk": "p" }))
        .await;
    let response = server.change_feed(Some(&etag)).await;
    response.expect_status(200);
    assert_eq!(document_ids(&response.json()), ["after"]);
}

#[tokio::test]
async fn partition_key_ranges_answer_304_to_a_matching_if_none_match() {
    let server = TestServer::with_container().await;
    let path = "/dbs/db/colls/c/pkranges";
    let ranges = server.request(Method::GET, path).send().await;
    ranges.expect_status(200);
    let etag = ranges
        .header(headers::ETAG)
        .expect("pkranges carry an etag")
        .to_owned();
    let body = ranges.json();
    assert_eq!(body["PartitionKeyRanges"][0]["id"], "0", "{body}");
    assert_eq!(body["PartitionKeyRanges"][0]["minInclusive"], "", "{body}");
    assert_eq!(
        body["PartitionKeyRanges"][0]["maxExclusive"], "FF",
        "{body}"
    );

    let cached = server
        .request(Method::GET, path)
        .header(headers::IF_NONE_MATCH, &etag)
        .send()
        .await;
    cached.expect_status(304);
    assert_eq!(cached.header(headers::ETAG), Some(etag.as_str()));

    server
        .request(Method::GET, path)
        .header(headers::IF_NONE_MATCH, "\"some-other-version\"")
        .send()
        .await
        .expect_status(200);
}

#[tokio::test]
async fn a_split_range_answers_410_with_substatus_1002_and_new_ranges_are_listed() {
    let server = TestServer::with_container().await;
    for n in 0..20 {
        server
            .create_item(
                &format!("p{n}"),
                &json!({ "id": format!("i{n}"), "pk": format!("p{n}") }),
            )
            .await;
    }
    let path = "/dbs/db/colls/c/pkranges";
    let before = server.request(Method::GET, path).send().await;
    let old_etag = before.header(headers::ETAG).expect("etag").to_owned();

    let children = server
        .store
        .split_range("db", "c", 0)
        .await
        .expect("range 0 splits");
    assert_eq!(children.len(), 2);

    let from_parent = server
        .request(Method::GET, "/dbs/db/colls/c/docs")
        .header(headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED)
        .header(headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID, "0")
        .send()
        .await;
    from_parent.expect_error(410);
    assert_eq!(from_parent.header(headers::X_MS_SUBSTATUS), Some("1002"));

    // The cached range set is stale: the same If-None-Match now gets the new ranges.
    let after = server
        .request(Method::GET, path)
        .header(headers::IF_NONE_MATCH, &old_etag)
        .send()
        .await;
    after.expect_status(200);
    let body = after.json();
    let ranges = body["PartitionKeyRanges"].as_array().expect("ranges");
    assert_eq!(ranges.len(), 2, "{body}");
    assert_eq!(ranges[0]["minInclusive"], "");
    assert_eq!(ranges[0]["maxExclusive"], ranges[1]["minInclusive"]);
    assert_eq!(ranges[1]["maxExclusive"], "FF");
    for range in ranges {
        assert_eq!(range["parents"], json!(["0"]), "{range}");
    }

    // Reading each child range from the beginning finds every item exactly once.
    let mut seen = Vec::new();
    for range in ranges {
        let id = range["id"].as_str().expect("string id");
        let response = server
            .request(Method::GET, "/dbs/db/colls/c/docs")
            .header(headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED)
            .header(headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID, id)
            .send()
            .await;
        if response.status == 304 {
            continue;
        }
        response.expect_status(200);
        seen.extend(document_ids(&response.json()));
    }
    seen.sort();
    let mut expected: Vec<String> = (0..20).map(|n| format!("i{n}")).collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn queries_page_with_continuations_without_loss_or_repeats() {
    let server = TestServer::with_container().await;
    for n in 0..5 {
        server
            .create_item("p", &json!({ "id": format!("i{n}"), "pk": "p", "n": n }))
            .await;
    }
    let mut seen = Vec::new();
    let mut continuation: Option<String> = None;
    for _ in 0..10 {
        let request = server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .query("SELECT * FROM c WHERE c.n >= 1 ORDER BY c.n")
            .header(headers::X_MS_MAX_ITEM_COUNT, "2");
        let request = match &continuation {
            Some(token) => request.header(headers::X_MS_CONTINUATION, token),
            None => request,
        };
        let response = request.send().await;
        response.expect_status(200);
        seen.extend(document_ids(&response.json()));
        continuation = response
            .header(headers::X_MS_CONTINUATION)
            .map(str::to_owned);
        if continuation.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["i1", "i2", "i3", "i4"]);
}

#[tokio::test]
async fn every_response_names_its_activity_and_charge() {
    let server = TestServer::with_container().await;
    let response = server
        .request(Method::GET, "/dbs/db")
        .header(
            headers::X_MS_ACTIVITY_ID,
            "6f1c2a8e-0000-4000-8000-000000000001",
        )
        .send()
        .await;
    response.expect_status(200);
    assert_eq!(
        response.header(headers::X_MS_ACTIVITY_ID),
        Some("6f1c2a8e-0000-4000-8000-000000000001")
    );
    assert!(response.header(headers::X_MS_REQUEST_CHARGE).is_some());
    let refused = server.request(Method::GET, "/dbs/nope").send().await;
    refused.expect_error(404);
    assert!(refused.header(headers::X_MS_ACTIVITY_ID).is_some());
}

#[tokio::test]
async fn an_item_request_for_a_re_created_container_answers_400_with_substatus_1024() {
    let server = TestServer::with_container().await;
    let old = container_rid(&server).await;
    server
        .request(Method::DELETE, "/dbs/db/colls/c")
        .send()
        .await
        .expect_status(204);
    server.create_container("db", "c").await;
    let new = container_rid(&server).await;
    assert_ne!(old, new);
    server
        .create_item("p", &json!({"id": "a", "pk": "p"}))
        .await;
    let read = |rid: String| {
        server
            .request(Method::GET, "/dbs/db/colls/c/docs/a")
            .partition_key("p")
            .header(headers::X_MS_COSMOS_INTENDED_COLLECTION_RID, &rid)
            .send()
    };
    let stale = read(old).await;
    let message = stale.expect_error(400);
    assert_eq!(stale.header(headers::X_MS_SUBSTATUS), Some("1024"));
    assert!(message.contains("deleted and re-created"), "{message}");
    read(new).await.expect_status(200);
}

/// The `_rid` of container `c` of `db`.
async fn container_rid(server: &TestServer) -> String {
    server
        .request(Method::GET, "/dbs/db/colls/c")
        .send()
        .await
        .json()["_rid"]
        .as_str()
        .expect("a rid")
        .to_owned()
}

#[tokio::test]
async fn container_usage_and_range_statistics_count_the_live_items() {
    let server = TestServer::start().await;
    server.create_database("db").await;
    server
        .request(Method::POST, "/dbs/db/colls")
        .header("x-ms-offer-throughput", "20000")
        .json(&json!({"id": "counted", "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2}}))
        .send()
        .await
        .expect_status(201);
    for n in 0..15 {
        let pk = format!("key{n}");
        server
            .request(Method::POST, "/dbs/db/colls/counted/docs")
            .partition_key(&pk)
            .json(&json!({"id": format!("i{n}"), "pk": pk, "text": "x".repeat(500)}))
            .send()
            .await
            .expect_status(201);
    }
    for n in 0..3 {
        server
            .request(Method::DELETE, &format!("/dbs/db/colls/counted/docs/i{n}"))
            .partition_key(&format!("key{n}"))
            .send()
            .await
            .expect_status(204);
    }
    let read = server
        .request(Method::GET, "/dbs/db/colls/counted")
        .header("x-ms-documentdb-populatequotainfo", "true")
        .header("x-ms-documentdb-populatepartitionstatistics", "true")
        .send()
        .await;
    read.expect_status(200);
    let usage = read.header("x-ms-resource-usage").expect("usage header");
    assert!(usage.contains("documentsCount=12;"), "{usage}");
    let statistics = read.json()["statistics"].clone();
    let statistics = statistics.as_array().expect("statistics per range");
    assert_eq!(statistics.len(), 2);
    let counted: u64 = statistics
        .iter()
        .map(|range| range["documentCount"].as_u64().expect("a count"))
        .sum();
    assert_eq!(counted, 12);
    let kilobytes: u64 = statistics
        .iter()
        .map(|range| range["sizeInKB"].as_u64().expect("a size"))
        .sum();
    assert!(kilobytes >= 6, "12 items of ~520 bytes: {kilobytes} KB");
}

#[tokio::test]
async fn an_item_is_reached_by_its_self_link_after_it_was_replaced() {
    let server = TestServer::with_container().await;
    let mut links = Vec::new();
    for n in 0..5 {
        let created = server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .partition_key(&format!("p{n}"))
            .json(&json!({"id": format!("i{n}"), "pk": format!("p{n}"), "v": 0}))
            .send()
            .await;
        created.expect_status(201);
        links.push(format!(
            "/{}",
            created.json()["_self"].as_str().expect("_self")
        ));
    }
    // The replace writes a new version (its creation's feed entry is gone); the `_rid`, and
    // so the link, stays.
    server
        .request(Method::PUT, "/dbs/db/colls/c/docs/i2")
        .partition_key("p2")
        .json(&json!({"id": "i2", "pk": "p2", "v": 1}))
        .send()
        .await
        .expect_status(200);
    let with_key = server
        .request(Method::GET, &links[2])
        .partition_key("p2")
        .send()
        .await;
    with_key.expect_status(200);
    assert_eq!(with_key.json()["v"], json!(1));
    // Under another partition key, or in another container, the link names nothing.
    server
        .request(Method::GET, &links[2])
        .partition_key("p3")
        .send()
        .await
        .expect_error(404);
    server.create_container("db", "other").await;
    let other = server
        .request(Method::GET, "/dbs/db/colls/other")
        .send()
        .await
        .json();
    let item_rid = links[2]
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .expect("rid");
    let foreign = format!(
        "/{}docs/{item_rid}/",
        other["_self"].as_str().expect("container _self")
    );
    server
        .request(Method::GET, &foreign)
        .partition_key("p2")
        .send()
        .await
        .expect_error(404);
    server
        .request(Method::DELETE, &links[4])
        .partition_key("p4")
        .send()
        .await
        .expect_status(204);
    server
        .request(Method::GET, &links[4])
        .partition_key("p4")
        .send()
        .await
        .expect_error(404);
}
