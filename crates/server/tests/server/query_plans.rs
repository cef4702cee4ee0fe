//! Query plans, as the Cosmos DB gateway hands them to an SDK that runs a query across
//! partitions itself: a container-wide query whose ranges' answers need a merge is refused
//! with 400/1004 and its plan (only to a client that says it is an SDK); the plan request
//! answers the plan; the rewritten query answers each range in the shape the SDKs merge.

use axum::http::Method;
use serde_json::{Value, json};

use crate::harness::{Response, TestServer};

/// Sent by every official SDK on every request; a client without it gets whole answers.
const SDK_CAPABILITIES: &str = "x-ms-cosmos-sdk-supportedcapabilities";

/// A server with container `wide` of two feed ranges (20,000 RU/s), holding `n` = 0..20
/// under 20 partition keys.
pub(crate) async fn two_range_server() -> TestServer {
    two_range_server_with(|n| format!("key{n}")).await
}

/// As [`two_range_server`], item `n` under partition key `key_of(n)`.
async fn two_range_server_with(key_of: impl Fn(usize) -> String) -> TestServer {
    let server = TestServer::start().await;
    server.create_database("db").await;
    server
        .request(Method::POST, "/dbs/db/colls")
        .header("x-ms-offer-throughput", "20000")
        .json(&json!({"id": "wide", "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2}}))
        .send()
        .await
        .expect_status(201);
    for n in 0..20 {
        let pk = key_of(n);
        server
            .request(Method::POST, "/dbs/db/colls/wide/docs")
            .partition_key(&pk)
            .json(&json!({"id": format!("i{n:02}"), "pk": pk, "n": n, "odd": n % 2 == 1}))
            .send()
            .await
            .expect_status(201);
    }
    server
}

async fn send_query(server: &TestServer, sql: &str, sdk: bool) -> Response {
    let mut request = server
        .request(Method::POST, "/dbs/db/colls/wide/docs")
        .query(sql);
    if sdk {
        request = request.header(SDK_CAPABILITIES, "1");
    }
    request.send().await
}

async fn plan_of(server: &TestServer, sql: &str) -> Response {
    server
        .request(Method::POST, "/dbs/db/colls/wide/docs")
        .query(sql)
        .without("x-ms-documentdb-isquery")
        .header("x-ms-cosmos-is-query-plan-request", "True")
        .header("x-ms-cosmos-query-version", "1.4")
        .send()
        .await
}

/// Every feed range's id.
async fn range_ids(server: &TestServer) -> Vec<String> {
    let ranges = server
        .request(Method::GET, "/dbs/db/colls/wide/pkranges")
        .send()
        .await;
    ranges.expect_status(200);
    ranges.json()["PartitionKeyRanges"]
        .as_array()
        .expect("a range list")
        .iter()
        .map(|range| range["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// The documents one feed range answers to `sql`, as an SDK asks for them.
async fn range_answer(server: &TestServer, sql: &str, range: &str) -> Vec<Value> {
    let answer = server
        .request(Method::POST, "/dbs/db/colls/wide/docs")
        .query(sql)
        .header("x-ms-documentdb-partitionkeyrangeid", range)
        .send()
        .await;
    answer.expect_status(200);
    answer.json()["Documents"]
        .as_array()
        .expect("documents")
        .clone()
}

#[tokio::test]
async fn a_query_that_needs_a_merge_hands_an_sdk_its_plan_and_anyone_else_the_answer() {
    let server = two_range_server().await;
    let sql = "SELECT VALUE c.n FROM c ORDER BY c.n DESC";
    let whole = send_query(&server, sql, false).await;
    whole.expect_status(200);
    let expected: Vec<Value> = (0..20).rev().map(Value::from).collect();
    assert_eq!(whole.json()["Documents"], json!(expected));

    let refused = send_query(&server, sql, true).await;
    refused.expect_status(400);
    assert_eq!(refused.header("x-ms-substatus"), Some("1004"));
    let body = refused.json();
    let plan: Value = serde_json::from_str(
        body["additionalErrorInfo"]
            .as_str()
            .expect("the plan, as JSON text"),
    )
    .expect("the plan parses");
    assert_eq!(plan["queryInfo"]["orderBy"], json!(["Descending"]));
    assert_eq!(plan["queryRanges"][0]["min"], "");
    assert_eq!(plan["queryRanges"][0]["max"], "FF");

    // What the gateway serves whole, it serves to an SDK too: a plain filter, a GROUP BY,
    // and a query whose filter fixes the partition key.
    for sql in [
        "SELECT * FROM c WHERE c.odd",
        "SELECT c.odd, COUNT(1) AS n FROM c GROUP BY c.odd",
        "SELECT * FROM c WHERE c.pk = 'key3' ORDER BY c.n",
    ] {
        send_query(&server, sql, true).await.expect_status(200);
    }
}

#[tokio::test]
async fn a_container_of_one_range_hands_the_plan_out_too_as_the_gateway_does() {
    // The SDKs fill their routing-map cache on this path even for one physical partition
    // (the suite's test_partition_split_query.py counts on it).
    let server = TestServer::with_container().await;
    server
        .create_item("a", &json!({"id": "one", "pk": "a", "n": 1}))
        .await;
    let refused = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .query("SELECT * FROM c ORDER BY c.n")
        .header(SDK_CAPABILITIES, "1")
        .send()
        .await;
    refused.expect_status(400);
    assert_eq!(refused.header("x-ms-substatus"), Some("1004"));
}

#[tokio::test]
async fn each_range_answers_the_rewritten_query_in_the_shape_the_sdks_merge() {
    let server = two_range_server().await;
    let plan = plan_of(&server, "SELECT c.id FROM c WHERE c.odd ORDER BY c.n").await;
    plan.expect_status(200);
    let plan = plan.json();
    assert_eq!(plan["partitionedQueryExecutionInfoVersion"], 2);
    assert_eq!(plan["queryInfo"]["orderByExpressions"], json!(["c.n"]));
    let rewritten = plan["queryInfo"]["rewrittenQuery"]
        .as_str()
        .expect("a rewritten query")
        .replace("{documentdb-formattableorderbyquery-filter}", "true");
    let ranges = range_ids(&server).await;
    assert_eq!(ranges.len(), 2);
    let mut merged = Vec::new();
    for range in &ranges {
        let rows = range_answer(&server, &rewritten, range).await;
        let keys: Vec<i64> = rows
            .iter()
            .map(|row| row["orderByItems"][0]["item"].as_i64().expect("a sort key"))
            .collect();
        assert!(keys.is_sorted(), "range {range} answers in order: {keys:?}");
        for row in &rows {
            assert!(row["_rid"].is_string(), "{row}");
            assert_eq!(
                row["payload"].as_object().map(|o| o.len()),
                Some(1),
                "{row}"
            );
        }
        merged.extend(rows);
    }
    merged.sort_by_key(|row| row["orderByItems"][0]["item"].as_i64());
    let ids: Vec<&str> = merged
        .iter()
        .map(|row| row["payload"]["id"].as_str().expect("an id"))
        .collect();
    let expected: Vec<String> = (0..20)
        .filter(|n| n % 2 == 1)
        .map(|n| format!("i{n:02}"))
        .collect();
    assert_eq!(ids, expected);

    // An aggregate's partials, one per range, add up to the whole count.
    let plan = plan_of(&server, "SELECT VALUE COUNT(1) FROM c")
        .await
        .json();
    assert_eq!(plan["queryInfo"]["aggregates"], json!(["Count"]));
    let rewritten = plan["queryInfo"]["rewrittenQuery"]
        .as_str()
        .expect("a query")
        .to_owned();
    let mut total = 0;
    for range in &ranges {
        total += range_answer(&server, &rewritten, range).await[0][0]["item"]
            .as_i64()
            .expect("a partial count");
    }
    assert_eq!(total, 20);
}

#[tokio::test]
async fn a_plan_is_refused_with_a_reason_where_no_client_merge_is_planned() {
    let server = two_range_server().await;
    let message = plan_of(&server, "SELECT c.odd, COUNT(1) AS n FROM c GROUP BY c.odd")
        .await
        .expect_error(400);
    assert!(message.contains("GROUP BY"), "{message}");
    let message = plan_of(&server, "SELECT * FROM c ORDER BY")
        .await
        .expect_error(400);
    assert!(message.contains("Syntax error"), "{message}");
    // A pinned partition key narrows the plan's ranges to that key's.
    let plan = plan_of(&server, "SELECT * FROM c WHERE c.pk = 'key3' ORDER BY c.n")
        .await
        .json();
    let range = &plan["queryRanges"][0];
    assert_ne!(range["min"], "");
    assert!(range["min"].as_str() < range["max"].as_str(), "{range}");
}

/// The pages of `SELECT c.id FROM c` across the container, `page_size` at most each, calling
/// `between` after the first page.
async fn plain_query_pages(
    server: &TestServer,
    page_size: usize,
    between: impl AsyncFnOnce(),
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    let mut between = Some(between);
    for _ in 0..100 {
        let mut request = server
            .request(Method::POST, "/dbs/db/colls/wide/docs")
            .query("SELECT c.id FROM c")
            .header(SDK_CAPABILITIES, "1")
            .header("x-ms-max-item-count", &page_size.to_string());
        if let Some(token) = &token {
            request = request.header("x-ms-continuation", token);
        }
        let page = request.send().await;
        page.expect_status(200);
        pages.push(crate::harness::document_ids(&page.json()));
        token = page.header("x-ms-continuation").map(str::to_owned);
        if let Some(between) = between.take() {
            between().await;
        }
        if token.is_none() {
            return pages;
        }
    }
    panic!("the query did not end within 100 pages");
}

fn sorted(pages: &[Vec<String>]) -> Vec<String> {
    let mut ids: Vec<String> = pages.concat();
    ids.sort();
    ids
}

fn all_ids() -> Vec<String> {
    (0..20).map(|n| format!("i{n:02}")).collect()
}

#[tokio::test]
async fn a_plain_query_across_ranges_is_paged_one_range_at_a_time() {
    // As the gateway pages it: a page never holds two ranges' items, so 20 items over two
    // ranges take two pages even when a page could hold them all.
    let server = two_range_server().await;
    let pages = plain_query_pages(&server, 100, async || {}).await;
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert_eq!(sorted(&pages), all_ids());
    // A range with no items still gives its (empty) page, with a continuation past it.
    let server = two_range_server_with(|_| "one key".to_owned()).await;
    let pages = plain_query_pages(&server, 100, async || {}).await;
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert!(pages.iter().any(Vec::is_empty), "{pages:?}");
    assert_eq!(sorted(&pages), all_ids());
}

#[tokio::test]
async fn a_split_between_pages_neither_loses_nor_repeats_an_item() {
    let server = two_range_server().await;
    let pages = plain_query_pages(&server, 3, async || {
        let offers = server.request(Method::GET, "/offers").send().await;
        offers.expect_status(200);
        let mut offer = offers.json()["Offers"][0].clone();
        offer["content"]["offerThroughput"] = json!(40000);
        let id = offer["id"].as_str().expect("an offer id").to_owned();
        server
            .request(Method::PUT, &format!("/offers/{id}"))
            .json(&offer)
            .send()
            .await
            .expect_status(200);
        assert_eq!(range_ids(&server).await.len(), 4, "the container split");
    })
    .await;
    assert_eq!(sorted(&pages), all_ids());
}
