//! The two commit paths: a write commits on its caller's thread when the committer is idle,
//! and queues for the committer thread otherwise. Concurrent writers on a multi-thread
//! runtime take both; every acknowledged write is in the feed once, each writer's writes in
//! the order it made them, with LSNs that increase without gaps.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tributary_store::{
    ContainerDefinition, FeedMode, FeedScope, FeedStart, ItemWrite, StoreError, StoreOptions,
};

use crate::support::{DATABASE, change_lsn, changes, drain_feed, open_store};

const CONTAINER: &str = "paths";
const WRITERS: usize = 8;
const WRITES_PER_WRITER: usize = 300;

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime starts")
}

fn write(writer: usize, seq: usize) -> ItemWrite {
    // One item per write: the latest-version feed then holds every write.
    ItemWrite::upsert(json!({
        "id": format!("w{writer}-{seq}"),
        "pk": format!("k{}", seq % 7),
        "writer": writer,
        "seq": seq,
    }))
}

#[test]
fn concurrent_writers_on_both_paths_leave_a_gap_free_feed_in_each_writers_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = multi_thread_runtime();
    let store = Arc::new(open_store(dir.path(), StoreOptions::relaxed()));
    runtime.block_on(async {
        store.create_database(DATABASE).await.expect("database");
        store
            .create_container(DATABASE, ContainerDefinition::new(CONTAINER, "/pk"), 2)
            .await
            .expect("container");
        let tasks: Vec<_> = (0..WRITERS)
            .map(|writer| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for seq in 0..WRITES_PER_WRITER {
                        store
                            .write_item(DATABASE, CONTAINER, write(writer, seq))
                            .await
                            .expect("every write is acknowledged");
                        if seq % 50 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("writer task");
        }
    });

    let pages = drain_feed(
        &store,
        CONTAINER,
        &FeedScope::Container,
        FeedStart::Beginning,
        FeedMode::LatestVersion,
        1000,
    )
    .expect("the feed reads");
    let changes = changes(&pages);
    assert_eq!(changes.len(), WRITERS * WRITES_PER_WRITER);
    let mut lsns: Vec<u64> = changes
        .iter()
        .map(|change| change_lsn(FeedMode::LatestVersion, change))
        .collect();
    lsns.sort_unstable();
    // The container's first write took the first LSN after its creation.
    for pair in lsns.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "a gap or a duplicate in the LSNs");
    }
    let mut next_seq: HashMap<u64, u64> = HashMap::new();
    let mut by_lsn: Vec<(u64, Value)> = changes
        .iter()
        .map(|change| {
            let value: Value = serde_json::from_str(change).expect("JSON");
            (change_lsn(FeedMode::LatestVersion, change), value)
        })
        .collect();
    by_lsn.sort_by_key(|(lsn, _)| *lsn);
    for (_, value) in by_lsn {
        let writer = value["writer"].as_u64().expect("writer");
        let seq = value["seq"].as_u64().expect("seq");
        let expected = next_seq.entry(writer).or_insert(0);
        assert_eq!(seq, *expected, "writer {writer}'s writes out of order");
        *expected += 1;
    }
}

#[test]
fn writes_racing_close_are_either_committed_or_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = multi_thread_runtime();
    let store = Arc::new(open_store(dir.path(), StoreOptions::relaxed()));
    let acknowledged = runtime.block_on(async {
        store.create_database(DATABASE).await.expect("database");
        store
            .create_container(DATABASE, ContainerDefinition::new(CONTAINER, "/pk"), 1)
            .await
            .expect("container");
        let tasks: Vec<_> = (0..4)
            .map(|writer| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut acknowledged = 0;
                    for seq in 0..10_000 {
                        match store
                            .write_item(DATABASE, CONTAINER, write(writer, seq))
                            .await
                        {
                            Ok(_) => acknowledged += 1,
                            Err(StoreError::ShutDown) => break,
                            Err(error) => panic!("unexpected error: {error}"),
                        }
                    }
                    acknowledged
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        store.close();
        let mut acknowledged = 0;
        for task in tasks {
            acknowledged += task.await.expect("writer task");
        }
        acknowledged
    });
    drop(store);
    let store = open_store(dir.path(), StoreOptions::relaxed());
    let pages = drain_feed(
        &store,
        CONTAINER,
        &FeedScope::Container,
        FeedStart::Beginning,
        FeedMode::LatestVersion,
        1000,
    )
    .expect("the feed reads");
    assert_eq!(
        changes(&pages).len(),
        acknowledged,
        "the reopened store holds exactly the acknowledged writes"
    );
}
