//! Databases, containers, resource ids, partition key ranges, and raw signed requests.

use serde_json::json;
use tributary_client::{ClientError, Method, PartitionKeyRange};
use tributary_wire::headers;

use crate::harness::TestServer;

#[tokio::test]
async fn creating_a_database_or_container_twice_is_not_an_error() {
    let server = TestServer::start().await;
    let client = server.client();
    for _ in 0..2 {
        client
            .create_database_if_not_exists("db")
            .await
            .expect("created or already there");
        client
            .create_container_if_not_exists("db", "c", "/pk")
            .await
            .expect("created or already there");
    }
    let container = server.store.read_container("db", "c").expect("it exists");
    assert_eq!(container.definition.partition_key.paths, ["/pk"]);
}

#[tokio::test]
async fn a_container_in_a_missing_database_is_not_found() {
    let server = TestServer::start().await;
    let error = server
        .client()
        .create_container_if_not_exists("nope", "c", "/pk")
        .await
        .expect_err("no database");
    assert!(matches!(error, ClientError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn container_rids_are_the_database_and_container_resource_ids() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    let (database_rid, container_rid) = client.container_rids("db", "c").await.expect("rids");
    assert_eq!(
        database_rid,
        server.store.read_database("db").expect("db").rid
    );
    assert_eq!(
        container_rid,
        server.store.read_container("db", "c").expect("c").rid
    );
    let error = client
        .container_rids("db", "nope")
        .await
        .expect_err("no container");
    assert!(matches!(error, ClientError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn ids_that_need_percent_encoding_reach_the_server_intact() {
    let server = TestServer::start().await;
    let client = server.client();
    client
        .create_database_if_not_exists("my db+1")
        .await
        .expect("created");
    client
        .create_container_if_not_exists("my db+1", "c%é", "/pk")
        .await
        .expect("created");
    assert!(server.store.read_container("my db+1", "c%é").is_ok());
    let (database_rid, _) = client
        .container_rids("my db+1", "c%é")
        .await
        .expect("signed and routed on the decoded names");
    assert_eq!(
        database_rid,
        server.store.read_database("my db+1").expect("db").rid
    );
}

#[tokio::test]
async fn partition_key_ranges_list_only_the_current_ranges() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;
    let ranges = client
        .partition_key_ranges("db", "c")
        .await
        .expect("ranges");
    assert_eq!(
        ranges,
        [PartitionKeyRange {
            id: "0".to_owned(),
            min: String::new(),
            max: "FF".to_owned(),
            parents: Vec::new(),
        }]
    );

    server
        .store
        .split_range("db", "c", 0)
        .await
        .expect("range 0 splits");
    let ranges = client
        .partition_key_ranges("db", "c")
        .await
        .expect("ranges");
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert_eq!(ranges[0].min, "");
    assert_eq!(ranges[0].max, ranges[1].min, "the children tile the parent");
    assert_eq!(ranges[1].max, "FF");
    for range in &ranges {
        assert_eq!(range.parents, ["0"], "{range:?}");
    }
}

#[tokio::test]
async fn send_returns_any_response_whatever_its_status() {
    let server = TestServer::start().await;
    let client = server.client_with_container().await;

    let account = client
        .send(Method::GET, "/", &[], None)
        .await
        .expect("answered");
    assert_eq!(account.status, 200);
    let body: serde_json::Value = serde_json::from_slice(&account.body).expect("JSON");
    assert!(body["writableLocations"].is_array(), "{body}");

    let missing = client
        .send(Method::GET, "dbs/nope", &[], None)
        .await
        .expect("answered");
    assert_eq!(missing.status, 404);

    server
        .store
        .split_range("db", "c", 0)
        .await
        .expect("range 0 splits");
    let gone = client
        .send(
            Method::GET,
            "/dbs/db/colls/c/docs",
            &[
                (headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED),
                (headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID, "0"),
            ],
            None,
        )
        .await
        .expect("answered");
    assert_eq!(gone.status, 410);
    assert_eq!(gone.substatus(), Some(1002));
    assert!(gone.header(headers::X_MS_ACTIVITY_ID).is_some());

    let created = client
        .send(
            Method::POST,
            "/dbs/db/colls/c/docs",
            &[(headers::X_MS_DOCUMENTDB_PARTITIONKEY, r#"["p"]"#)],
            Some(json!({ "id": "raw", "pk": "p" }).to_string().into_bytes()),
        )
        .await
        .expect("answered");
    assert_eq!(created.status, 201, "a body is sent as application/json");
}

#[tokio::test]
async fn an_unsignable_path_is_an_invalid_request() {
    let server = TestServer::start().await;
    let error = server
        .client()
        .send(Method::GET, "/dbs//colls", &[], None)
        .await
        .expect_err("an empty segment cannot be signed");
    assert!(matches!(error, ClientError::InvalidRequest(_)), "{error:?}");
}
