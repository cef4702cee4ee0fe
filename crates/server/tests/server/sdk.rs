//! The official Rust SDK, `azure_data_cosmos`, against the server: item CRUD, databases and
//! containers, a query, the change feed in both modes resumed from a continuation token, and
//! a write refused for a full disk.
//!
//! The SDK talks plain HTTP here: it allows `http://` for loopback hosts (its emulator rule),
//! so no TLS stack is built for these tests. Binary encoding is switched off on every client
//! but one, see [`client`].

use std::sync::Arc;
use std::time::Duration;

use azure_data_cosmos::feed::{ChangeFeedPageIterator, ContinuationToken, FeedScope};
use azure_data_cosmos::models::{
    ChangeFeedItem, ChangeFeedOperationType, ChangeFeedPolicy, ContainerProperties,
};
use azure_data_cosmos::options::{
    BinaryEncodingOptions, ChangeFeedMode, ChangeFeedOptions, ChangeFeedStartFrom, FeedOptions,
};
use azure_data_cosmos::{
    AccountEndpoint, AccountReference, ContainerClient, CosmosClient, CosmosRuntime, Query,
    RoutingStrategy,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tributary_store::{DiskSpace, ManualDiskSpace, StoreOptions};
use tributary_wire::auth::EMULATOR_KEY;

use crate::harness::{REQUEST_TIMEOUT, TestServer};

/// Most change feed pages one test reads before deciding the feed never catches up.
const MAX_FEED_POLLS: usize = 50;
/// How many times `azure_data_cosmos` 1.0 sends a create that the server answers with a 5xx
/// other than 503 (here a 507): the first attempt and three failover retries, its default
/// `max_failover_retry_count` (`docs/decisions/0006-disk-full.md`).
const SDK_ATTEMPTS_ON_SERVER_ERROR: u64 = 4;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Doc {
    id: String,
    pk: String,
    /// Absent from the minimal item of a delete.
    #[serde(default)]
    n: i64,
}

fn doc(id: &str, pk: &str, n: i64) -> Doc {
    Doc {
        id: id.to_owned(),
        pk: pk.to_owned(),
        n,
    }
}

/// A client for `server`, signing with the emulator key.
///
/// Binary encoding is off: by default the SDK sends item bodies of create, replace and upsert
/// in Cosmos binary JSON (first byte `0x80`) and asks for binary responses
/// (`x-ms-cosmos-supported-serialization-formats`). The server reads binary bodies and
/// answers in JSON text; [`sdk_writes_items_in_binary_json`] covers that path, and the other
/// tests keep to text. Turning it off is the same as `AZURE_COSMOS_BINARY_ENCODING_ENABLED=false`.
async fn client(server: &TestServer) -> CosmosClient {
    client_with_binary_encoding(server, false).await
}

/// A client for `server` that sends item bodies in Cosmos binary JSON when `binary` is true.
async fn client_with_binary_encoding(server: &TestServer, binary: bool) -> CosmosClient {
    let endpoint: AccountEndpoint = server.endpoint.parse().expect("the endpoint is a URL");
    let account = AccountReference::with_authentication_key(endpoint, EMULATOR_KEY.to_owned());
    // A runtime per test: the SDK's global one would outlive this test's tokio runtime.
    let runtime = CosmosRuntime::builder()
        .build()
        .await
        .expect("the SDK runtime builds");
    CosmosClient::builder()
        .with_runtime(runtime)
        .with_binary_encoding_options(BinaryEncodingOptions::new().with_enabled(binary))
        .build(account, RoutingStrategy::PreferredRegions(Vec::new()))
        .await
        .expect("the SDK connects to the server")
}

/// Creates database `db` and container `c` partitioned on `/pk` through the SDK.
async fn container(client: &CosmosClient, properties: ContainerProperties) -> ContainerClient {
    client
        .create_database("db", None)
        .await
        .expect("the SDK creates a database");
    let database = client.database_client("db");
    database
        .create_container(properties, None)
        .await
        .expect("the SDK creates a container");
    database
        .container_client("c", None)
        .await
        .expect("the SDK reads the container")
}

fn container_properties() -> ContainerProperties {
    ContainerProperties::new("c", "/pk".into())
}

/// Reads pages until one is empty (the feed has caught up) and returns the items seen.
async fn read_until_caught_up(
    pages: &mut ChangeFeedPageIterator<ChangeFeedItem<Doc>>,
) -> Vec<ChangeFeedItem<Doc>> {
    let mut items = Vec::new();
    for _ in 0..MAX_FEED_POLLS {
        let page = tokio::time::timeout(REQUEST_TIMEOUT, pages.next())
            .await
            .expect("a change feed page arrives in time")
            .expect("the change feed stream never ends")
            .expect("the change feed page is read");
        if page.items().is_empty() {
            return items;
        }
        items.extend(page.into_items());
    }
    panic!("the change feed did not catch up within {MAX_FEED_POLLS} pages");
}

fn current_ids(items: &[ChangeFeedItem<Doc>]) -> Vec<String> {
    items
        .iter()
        .map(|item| {
            item.current()
                .expect("a latest-version change has the item")
                .id
                .clone()
        })
        .collect()
}

/// Each change as (operation, id of the item it changed).
fn operations(items: &[ChangeFeedItem<Doc>]) -> Vec<(Option<ChangeFeedOperationType>, String)> {
    items
        .iter()
        .map(|item| {
            let id = item
                .current()
                .or(item.previous())
                .map(|d| d.id.clone())
                .unwrap_or_default();
            (item.operation_type(), id)
        })
        .collect()
}

async fn resume(
    container: &ContainerClient,
    token: ContinuationToken,
    mode: ChangeFeedMode,
) -> ChangeFeedPageIterator<ChangeFeedItem<Doc>> {
    let options = ChangeFeedOptions::default()
        .with_mode(mode)
        .with_feed_options(FeedOptions::default().with_continuation_token(token));
    container
        .query_change_feed::<Doc>(
            FeedScope::full_container(),
            ChangeFeedStartFrom::Now,
            Some(options),
        )
        .await
        .expect("the change feed resumes from a continuation token")
}

#[tokio::test]
async fn sdk_creates_reads_replaces_upserts_and_deletes_items() {
    let server = TestServer::start().await;
    let client = client(&server).await;
    let container = container(&client, container_properties()).await;

    container
        .create_item("p", "a", doc("a", "p", 1), None)
        .await
        .expect("create");
    let read: Doc = container
        .read_item("p", "a", None)
        .await
        .expect("read")
        .into_model()
        .expect("the item deserializes");
    assert_eq!(read, doc("a", "p", 1));

    let duplicate = container
        .create_item("p", "a", doc("a", "p", 9), None)
        .await
        .expect_err("a second create of the same id conflicts");
    assert_eq!(duplicate.status().status_code(), 409);

    container
        .replace_item("p", "a", doc("a", "p", 2), None)
        .await
        .expect("replace");
    container
        .upsert_item("p", "b", doc("b", "p", 3), None)
        .await
        .expect("upsert that creates");
    container
        .upsert_item("p", "a", doc("a", "p", 4), None)
        .await
        .expect("upsert that replaces");
    for (id, n) in [("a", 4), ("b", 3)] {
        let read: Doc = container
            .read_item("p", id, None)
            .await
            .expect("read")
            .into_model()
            .expect("the item deserializes");
        assert_eq!(read, doc(id, "p", n));
    }

    container.delete_item("p", "a", None).await.expect("delete");
    let missing = container
        .read_item("p", "a", None)
        .await
        .expect_err("a deleted item is gone");
    assert_eq!(missing.status().status_code(), 404);

    // What the SDK did is what the store holds.
    let stored = server
        .store
        .scan_items("db", "c", &tributary_store::FeedScope::Container)
        .expect("the store scans the container");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].contains("\"id\":\"b\""), "{stored:?}");
}

/// With binary encoding left on, as the SDK ships, create, replace and upsert send Cosmos
/// binary JSON bodies; the server decodes them, keeping every value and the property order.
#[tokio::test]
async fn sdk_writes_items_in_binary_json() {
    let server = TestServer::start().await;
    let client = client_with_binary_encoding(&server, true).await;
    let container = container(&client, container_properties()).await;

    let rich = serde_json::json!({
        "id": "a",
        "pk": "p",
        "zeta": "last letter first",
        "n": 7,
        "big": 1_u64 << 63,
        "negative": -40_000_000_000_i64,
        "ratio": 0.125,
        "flags": [true, false, null],
        "long": "x".repeat(300),
        "nested": {"b": {"c": [1, [2, {"d": "é"}]]}, "a": {}},
    });
    container
        .create_item("p", "a", &rich, None)
        .await
        .expect("create in binary JSON");
    let read: serde_json::Value = container
        .read_item("p", "a", None)
        .await
        .expect("read")
        .into_model()
        .expect("the item deserializes");
    for (name, value) in rich.as_object().expect("an object") {
        assert_eq!(&read[name], value, "property {name}");
    }
    let names: Vec<&String> = read
        .as_object()
        .expect("an object")
        .keys()
        .filter(|name| !name.starts_with('_'))
        .collect();
    let sent: Vec<&String> = rich.as_object().expect("an object").keys().collect();
    assert_eq!(names, sent, "properties keep the order they were sent in");

    container
        .replace_item("p", "a", doc("a", "p", 2), None)
        .await
        .expect("replace in binary JSON");
    container
        .upsert_item("p", "b", doc("b", "p", 3), None)
        .await
        .expect("upsert in binary JSON that creates");
    container
        .upsert_item("p", "a", doc("a", "p", 4), None)
        .await
        .expect("upsert in binary JSON that replaces");
    for (id, n) in [("a", 4), ("b", 3)] {
        let read: Doc = container
            .read_item("p", id, None)
            .await
            .expect("read")
            .into_model()
            .expect("the item deserializes");
        assert_eq!(read, doc(id, "p", n));
    }
}

#[tokio::test]
async fn sdk_queries_a_container_and_a_partition() {
    let server = TestServer::start().await;
    let client = client(&server).await;
    let container = container(&client, container_properties()).await;
    for (id, pk, n) in [("a", "p", 1), ("b", "p", 2), ("c", "q", 3), ("d", "q", 4)] {
        container
            .create_item(pk, id, doc(id, pk, n), None)
            .await
            .expect("create");
    }

    let query = Query::from("SELECT * FROM c WHERE c.n >= @min")
        .with_parameter("@min", 2)
        .expect("an integer parameter serializes");
    let mut ids: Vec<String> = container
        .query_items::<Doc>(query, FeedScope::full_container(), None)
        .await
        .expect("the query starts")
        .map(|item| item.expect("a query result").id)
        .collect()
        .await;
    ids.sort();
    assert_eq!(ids, ["b", "c", "d"]);

    let mut ids: Vec<String> = container
        .query_items::<Doc>("SELECT * FROM c", FeedScope::partition("q"), None)
        .await
        .expect("the query starts")
        .map(|item| item.expect("a query result").id)
        .collect()
        .await;
    ids.sort();
    assert_eq!(ids, ["c", "d"]);
}

#[tokio::test]
async fn sdk_latest_version_change_feed_resumes_without_loss_or_repeats() {
    let server = TestServer::start().await;
    let client = client(&server).await;
    let container = container(&client, container_properties()).await;
    for (id, pk) in [("a", "p"), ("b", "q"), ("c", "p")] {
        container
            .create_item(pk, id, doc(id, pk, 1), None)
            .await
            .expect("create");
    }

    let mut pages = container
        .query_change_feed::<Doc>(
            FeedScope::full_container(),
            ChangeFeedStartFrom::Beginning,
            None,
        )
        .await
        .expect("the change feed starts");
    let mut first = current_ids(&read_until_caught_up(&mut pages).await);
    first.sort();
    assert_eq!(first, ["a", "b", "c"]);
    let token = pages.to_continuation_token().expect("a continuation token");
    drop(pages);

    container
        .create_item("q", "d", doc("d", "q", 1), None)
        .await
        .expect("create");
    container
        .replace_item("p", "a", doc("a", "p", 2), None)
        .await
        .expect("replace");

    let mut resumed = resume(&container, token, ChangeFeedMode::LatestVersion).await;
    let items = read_until_caught_up(&mut resumed).await;
    let mut second = current_ids(&items);
    second.sort();
    assert_eq!(
        second,
        ["a", "d"],
        "only the changes after the token, once each"
    );
    let replaced = items
        .iter()
        .filter_map(ChangeFeedItem::current)
        .find(|item| item.id == "a")
        .expect("the replaced item is in the feed");
    assert_eq!(replaced.n, 2, "the latest version is shown");
}

#[tokio::test]
async fn sdk_all_versions_and_deletes_change_feed_resumes_without_loss_or_repeats() {
    let server = TestServer::start().await;
    let client = client(&server).await;
    let properties = container_properties().with_change_feed_policy(
        ChangeFeedPolicy::default().with_retention_duration(Duration::from_secs(10 * 60)),
    );
    let container = container(&client, properties).await;
    container
        .create_item("p", "before", doc("before", "p", 0), None)
        .await
        .expect("create");

    let options = ChangeFeedOptions::default().with_mode(ChangeFeedMode::AllVersionsAndDeletes);
    let mut pages = container
        .query_change_feed::<Doc>(
            FeedScope::full_container(),
            ChangeFeedStartFrom::Now,
            Some(options),
        )
        .await
        .expect("the change feed starts from now");
    assert!(
        read_until_caught_up(&mut pages).await.is_empty(),
        "a feed from now does not show earlier changes"
    );

    container
        .create_item("p", "a", doc("a", "p", 1), None)
        .await
        .expect("create");
    container
        .replace_item("p", "a", doc("a", "p", 2), None)
        .await
        .expect("replace");
    let first = read_until_caught_up(&mut pages).await;
    let token = pages.to_continuation_token().expect("a continuation token");
    drop(pages);

    container.delete_item("p", "a", None).await.expect("delete");
    container
        .create_item("q", "b", doc("b", "q", 1), None)
        .await
        .expect("create");

    let mut resumed = resume(&container, token, ChangeFeedMode::AllVersionsAndDeletes).await;
    let second = read_until_caught_up(&mut resumed).await;

    assert_eq!(
        operations(&first),
        [
            (Some(ChangeFeedOperationType::Create), "a".to_owned()),
            (Some(ChangeFeedOperationType::Replace), "a".to_owned()),
        ]
    );
    assert_eq!(
        operations(&second),
        [
            (Some(ChangeFeedOperationType::Delete), "a".to_owned()),
            (Some(ChangeFeedOperationType::Create), "b".to_owned()),
        ]
    );
}

#[tokio::test]
async fn sdk_gets_a_507_for_a_write_on_a_full_disk_after_its_retries_and_keeps_reading() {
    const MIB: u64 = 1024 * 1024;
    let disk = Arc::new(ManualDiskSpace::new(10 * 1024 * MIB));
    let options = StoreOptions {
        min_free_disk_bytes: 64 * MIB,
        disk_space_check_interval: Duration::ZERO,
        disk_space: Arc::clone(&disk) as Arc<dyn DiskSpace>,
        // No maintenance pass measures the disk while the test counts measurements.
        maintenance_interval: Duration::from_secs(3600),
        ..StoreOptions::relaxed()
    };
    let server = TestServer::start_with_store(options, |_| {}).await;
    let client = client(&server).await;
    let container = container(&client, container_properties()).await;
    container
        .create_item("p", "a", doc("a", "p", 1), None)
        .await
        .expect("create above the reserve");

    disk.set_free_bytes(3 * MIB);
    let measured = disk.n_measurements();
    let refused = container
        .create_item("p", "b", doc("b", "p", 2), None)
        .await
        .expect_err("a write below the reserve fails");
    assert_eq!(refused.status().status_code(), 507, "{refused}");
    // Below the reserve the store measures once per commit group: one measurement is one
    // attempt. The SDK's driver takes a 507 for a generic server error and, a create being
    // safe to repeat in its eyes, sends it again on "failover" without waiting for
    // `x-ms-retry-after-ms`; each attempt was refused, none stored.
    assert_eq!(
        disk.n_measurements(),
        measured + SDK_ATTEMPTS_ON_SERVER_ERROR,
        "attempts of the refused create"
    );
    let missing = container
        .read_item("p", "b", None)
        .await
        .expect_err("no attempt stored the item");
    assert_eq!(missing.status().status_code(), 404);
    let read: Doc = container
        .read_item("p", "a", None)
        .await
        .expect("reads work on a full disk")
        .into_model()
        .expect("the item deserializes");
    assert_eq!(read, doc("a", "p", 1));
}

#[tokio::test]
async fn sdk_orders_across_two_feed_ranges_from_the_servers_plan() {
    let server = TestServer::start().await;
    server.create_database("db").await;
    server
        .request(axum::http::Method::POST, "/dbs/db/colls")
        .header("x-ms-offer-throughput", "20000")
        .json(&serde_json::json!({"id": "c", "partitionKey": {"paths": ["/pk"], "kind": "Hash", "version": 2}}))
        .send()
        .await
        .expect_status(201);
    let client = client(&server).await;
    let container = client
        .database_client("db")
        .container_client("c", None)
        .await
        .expect("the SDK reads the container");
    for n in 0..12 {
        let (id, pk) = (format!("i{n:02}"), format!("key{n}"));
        container
            .create_item(&pk, &id, doc(&id, &pk, n), None)
            .await
            .expect("create");
    }
    let ids: Vec<String> = container
        .query_items::<Doc>(
            "SELECT * FROM c ORDER BY c.n DESC",
            FeedScope::full_container(),
            None,
        )
        .await
        .expect("the query starts")
        .map(|item| item.expect("a query result").id)
        .collect()
        .await;
    let expected: Vec<String> = (0..12).rev().map(|n| format!("i{n:02}")).collect();
    assert_eq!(ids, expected);
    // The SDK's own planner (azure_data_cosmos 1.0) refuses aggregates across partitions
    // before it sends anything (20113, ClientUnsupportedQueryFeature); in one partition the
    // server answers them.
    let refused = container
        .query_items::<u64>(
            "SELECT VALUE COUNT(1) FROM c",
            FeedScope::full_container(),
            None,
        )
        .await
        .err()
        .expect("the SDK refuses a cross-partition aggregate");
    assert!(refused.to_string().contains("20113"), "{refused}");
    let counts: Vec<u64> = container
        .query_items::<u64>(
            "SELECT VALUE COUNT(1) FROM c",
            FeedScope::partition("key3"),
            None,
        )
        .await
        .expect("the query starts")
        .map(|item| item.expect("a query result"))
        .collect()
        .await;
    assert_eq!(counts, [1]);
}
