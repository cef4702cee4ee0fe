//! Offers (provisioned throughput), manual and autoscale, as the SDKs create, read and replace
//! them: an autoscale offer reports its maximum and increment in `offerAutopilotSettings`, a
//! replace that carries both a current throughput and autoscale settings follows the settings,
//! a maximum under 1,000 RU/s is refused with Cosmos DB's message, and the maximum gives feed
//! ranges (one per 10,000 RU/s) as manual throughput does.

use axum::http::Method;
use serde_json::{Value, json};

use crate::harness::TestServer;

const AUTOSCALE_HEADER: &str = "x-ms-cosmos-offer-autopilot-settings";

/// The one offer whose `offerResourceId` is `rid`.
async fn offer_of(server: &TestServer, rid: &str) -> Value {
    let offers = server.request(Method::GET, "/offers").send().await;
    offers.expect_status(200);
    offers.json()["Offers"]
        .as_array()
        .expect("an offers feed")
        .iter()
        .find(|offer| offer["offerResourceId"] == rid)
        .cloned()
        .unwrap_or_else(|| panic!("no offer for {rid}"))
}

#[tokio::test]
async fn an_autoscale_container_reports_its_maximum_and_a_replace_changes_it() {
    let server = TestServer::start().await;
    server.create_database("db").await;
    let created = server
        .request(Method::POST, "/dbs/db/colls")
        .header(
            AUTOSCALE_HEADER,
            r#"{"maxThroughput": 5000, "autoUpgradePolicy": {"throughputPolicy": {"incrementPercent": 2}}}"#,
        )
        .json(&json!({"id": "auto", "partitionKey": {"paths": ["/pk"], "kind": "Hash"}}))
        .send()
        .await;
    created.expect_status(201);
    let rid = created.json()["_rid"].as_str().expect("a rid").to_owned();
    let mut offer = offer_of(&server, &rid).await;
    let settings = &offer["content"]["offerAutopilotSettings"];
    assert_eq!(settings["maxThroughput"], 5000);
    assert_eq!(
        settings["autoUpgradePolicy"]["throughputPolicy"]["incrementPercent"],
        2
    );
    assert_eq!(offer["content"]["offerThroughput"], 500, "at rest: a tenth");
    // As the SDKs replace: the offer read, its settings changed, the whole offer sent back.
    offer["content"]["offerAutopilotSettings"]["maxThroughput"] = json!(7000);
    let id = offer["id"].as_str().expect("an offer id").to_owned();
    server
        .request(Method::PUT, &format!("/offers/{id}"))
        .json(&offer)
        .send()
        .await
        .expect_status(200);
    let replaced = offer_of(&server, &rid).await;
    assert_eq!(
        replaced["content"]["offerAutopilotSettings"]["maxThroughput"],
        7000
    );
    // Back to manual throughput: no autoscale settings any more.
    let mut manual = replaced.clone();
    manual["content"] = json!({"offerThroughput": 1200});
    server
        .request(Method::PUT, &format!("/offers/{id}"))
        .json(&manual)
        .send()
        .await
        .expect_status(200);
    let manual = offer_of(&server, &rid).await;
    assert_eq!(manual["content"]["offerThroughput"], 1200);
    assert!(manual["content"].get("offerAutopilotSettings").is_none());
}

#[tokio::test]
async fn an_autoscale_maximum_under_1000_is_refused_with_cosmos_dbs_message() {
    let server = TestServer::start().await;
    for header in [r#"{"maxThroughput": -200}"#, r#"{"maxThroughput": 999}"#] {
        let message = server
            .request(Method::POST, "/dbs")
            .header(AUTOSCALE_HEADER, header)
            .json(&json!({"id": "db"}))
            .send()
            .await
            .expect_error(400);
        assert!(
            message.contains("is less than required minimum throughput 1000"),
            "{message}"
        );
    }
    let message = server
        .request(Method::POST, "/dbs")
        .header(AUTOSCALE_HEADER, r#"{"maxThroughput": 4000, "autoUpgradePolicy": {"throughputPolicy": {"incrementPercent": -1}}}"#)
        .json(&json!({"id": "db"}))
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("incrementPercent"), "{message}");
}

/// The number of partition key ranges of container `c` of `db`.
async fn n_ranges(server: &TestServer, container: &str) -> usize {
    let ranges = server
        .request(Method::GET, &format!("/dbs/db/colls/{container}/pkranges"))
        .send()
        .await;
    ranges.expect_status(200);
    ranges.json()["PartitionKeyRanges"]
        .as_array()
        .map_or(0, Vec::len)
}

#[tokio::test]
async fn an_autoscale_maximum_gives_feed_ranges_as_manual_throughput_does() {
    let server = TestServer::start().await;
    server.create_database("db").await;
    let created = server
        .request(Method::POST, "/dbs/db/colls")
        .header(AUTOSCALE_HEADER, r#"{"maxThroughput": 20000}"#)
        .json(&json!({"id": "wide", "partitionKey": {"paths": ["/pk"], "kind": "Hash"}}))
        .send()
        .await;
    created.expect_status(201);
    assert_eq!(
        n_ranges(&server, "wide").await,
        2,
        "one range per 10,000 RU/s"
    );
    let rid = created.json()["_rid"].as_str().expect("a rid").to_owned();
    let mut offer = offer_of(&server, &rid).await;
    offer["content"]["offerAutopilotSettings"]["maxThroughput"] = json!(30000);
    let id = offer["id"].as_str().expect("an offer id").to_owned();
    server
        .request(Method::PUT, &format!("/offers/{id}"))
        .json(&offer)
        .send()
        .await
        .expect_status(200);
    assert_eq!(
        n_ranges(&server, "wide").await,
        3,
        "raising the maximum splits"
    );
}
