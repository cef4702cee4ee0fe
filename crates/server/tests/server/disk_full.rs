//! A full disk over HTTP: while the store's disk is below its free-space reserve (injected
//! with [`ManualDiskSpace`]) a write is answered `507 Insufficient Storage`, naming the cause,
//! with `x-ms-retry-after-ms`; point reads, queries and the change feed answer 200; and writes
//! are accepted again once space is freed, on the same running server.

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use serde_json::json;
use tributary_store::{DiskSpace, ManualDiskSpace, StoreOptions};
use tributary_wire::headers;

use crate::harness::{TestServer, document_ids};

const MIB: u64 = 1024 * 1024;

#[tokio::test]
async fn below_the_reserve_writes_are_507_with_the_cause_and_reads_are_200_until_space_is_freed() {
    let disk = Arc::new(ManualDiskSpace::new(10 * 1024 * MIB));
    let options = StoreOptions {
        min_free_disk_bytes: 64 * MIB,
        disk_space_check_interval: Duration::ZERO,
        disk_space: Arc::clone(&disk) as Arc<dyn DiskSpace>,
        ..StoreOptions::relaxed()
    };
    let server = TestServer::start_with_store(options, |_| {}).await;
    server.create_database("db").await;
    server.create_container("db", "c").await;
    server
        .create_item("a", &json!({"id": "kept", "pk": "a"}))
        .await;

    disk.set_free_bytes(3 * MIB);
    let refused = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .partition_key("a")
        .json(&json!({"id": "refused", "pk": "a"}))
        .send()
        .await;
    let message = refused.expect_error(507);
    assert!(message.starts_with("the disk holding "), "{message}");
    assert!(
        message.ends_with(
            " has 3 MiB free, below the 64 MiB reserve; writes resume on their own when space is freed"
        ),
        "{message}"
    );
    assert_eq!(
        refused.header(headers::X_MS_RETRY_AFTER_MS),
        Some("1000"),
        "the client is told when to try again"
    );
    server
        .request(Method::DELETE, "/dbs/db/colls/c/docs/kept")
        .partition_key("a")
        .send()
        .await
        .expect_error(507);
    server
        .request(Method::POST, "/dbs")
        .json(&json!({"id": "other"}))
        .send()
        .await
        .expect_error(507);

    let read = server
        .request(Method::GET, "/dbs/db/colls/c/docs/kept")
        .partition_key("a")
        .send()
        .await;
    read.expect_status(200);
    assert_eq!(read.json()["id"], "kept", "the refused delete left it");
    let query = server
        .request(Method::POST, "/dbs/db/colls/c/docs")
        .query("SELECT * FROM c")
        .send()
        .await;
    query.expect_status(200);
    assert_eq!(document_ids(&query.json()), vec!["kept"]);
    assert_eq!(
        server.changed_ids().await,
        vec!["kept"],
        "the change feed answers, without the refused writes"
    );

    disk.set_free_bytes(10 * 1024 * MIB);
    server
        .create_item("a", &json!({"id": "refused", "pk": "a"}))
        .await;
    assert_eq!(server.changed_ids().await, vec!["kept", "refused"]);
}
