//! TTL expiry by the background sweeper: an expired item disappears from reads at once and
//! is logged as a delete with `timeToLiveExpired` once the sweeper runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tributary_store::{
    Clock, ContainerDefinition, FeedMode, FeedScope, FeedStart, ItemWrite, ManualClock, StoreError,
    StoreOptions,
};

use crate::support::{DATABASE, START_MS, changes, drain_feed, open_store, pk, runtime};

const CONTAINER: &str = "ttl";
/// How long the test waits for the sweeper, which runs every few milliseconds here.
const SWEEP_TIMEOUT: Duration = Duration::from_secs(10);

#[test]
fn the_sweeper_logs_expired_items_as_ttl_deletes_and_keeps_the_others() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let store = open_store(
        dir.path(),
        StoreOptions {
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
            maintenance_interval: Duration::from_millis(10),
            ..StoreOptions::relaxed()
        },
    );
    runtime
        .block_on(store.create_database(DATABASE))
        .expect("database");
    let definition = ContainerDefinition {
        default_ttl: Some(5),
        change_feed_retention_minutes: Some(60),
        ..ContainerDefinition::new(CONTAINER, "/pk")
    };
    runtime
        .block_on(store.create_container(DATABASE, definition, 1))
        .expect("container");
    let write = |body: Value| {
        runtime
            .block_on(store.write_item(DATABASE, CONTAINER, ItemWrite::create(body)))
            .expect("create")
            .item
            .expect("item")
    };
    let short = write(json!({"id": "short", "pk": "a"}));
    let forever = write(json!({"id": "forever", "pk": "a", "ttl": -1}));
    let long = write(json!({"id": "long", "pk": "b", "ttl": 60}));
    clock.advance_ms(6_000);
    // Invisible at once, whether or not the sweeper has run.
    let read = store.read_item(DATABASE, CONTAINER, &pk("a"), "short");
    assert!(
        matches!(read, Err(StoreError::ItemNotFound(_))),
        "an expired item is not readable: {read:?}"
    );
    let started = Instant::now();
    let deletes = loop {
        let pages = drain_feed(
            &store,
            CONTAINER,
            &FeedScope::Container,
            FeedStart::AfterLsn(long.lsn),
            FeedMode::AllVersionsAndDeletes,
            10,
        )
        .expect("all-versions read");
        let found = changes(&pages);
        if !found.is_empty() {
            break found;
        }
        assert!(
            started.elapsed() < SWEEP_TIMEOUT,
            "the sweeper did not expire the item within {SWEEP_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(
        deletes.len(),
        1,
        "only the expired item is deleted: {deletes:?}"
    );
    let delete: Value = serde_json::from_str(&deletes[0]).expect("JSON");
    assert_eq!(delete["metadata"]["operationType"], "delete");
    assert_eq!(delete["metadata"]["timeToLiveExpired"], true);
    assert_eq!(delete["metadata"]["id"], "short");
    assert_eq!(delete["metadata"]["partitionKey"], json!({"pk": "a"}));
    assert_eq!(delete["metadata"]["previousImageLSN"], json!(short.lsn));
    assert_eq!(
        delete["metadata"]["lsn"],
        json!(long.lsn + 1),
        "the expiry takes the next LSN"
    );
    assert_eq!(delete["metadata"]["crts"], json!(clock.now_ms() / 1000));
    assert!(
        delete["current"] == serde_json::json!({}),
        "a delete has an empty current image"
    );
    let latest = drain_feed(
        &store,
        CONTAINER,
        &FeedScope::Container,
        FeedStart::Beginning,
        FeedMode::LatestVersion,
        10,
    )
    .expect("latest-version read");
    assert_eq!(
        changes(&latest),
        vec![forever.body.clone(), long.body.clone()]
    );
    assert_eq!(
        store
            .read_container(DATABASE, CONTAINER)
            .expect("container")
            .high_lsn,
        long.lsn + 1
    );
}
