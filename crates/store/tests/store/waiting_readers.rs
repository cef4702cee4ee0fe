//! `Store::read_feed_wait`: woken by a commit to its container (a split included), and an
//! empty page after its timeout when nothing relevant is written.
//!
//! Timeouts are generous: a waiter that wakes proves it by returning the item before its
//! timeout; nothing here measures how fast.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tributary_store::{
    ContainerDefinition, FeedMode, FeedPage, FeedRequest, FeedScope, FeedStart, ItemWrite, Store,
    StoreError, StoreOptions,
};

use crate::support::{DATABASE, open_store, pk};

/// Long enough that only a lost wake-up reaches it.
const WAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// For waits that are expected to time out.
const IDLE_TIMEOUT: Duration = Duration::from_millis(300);

fn multi_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime starts")
}

async fn store_with(dir: &std::path::Path, containers: &[&str]) -> Arc<Store> {
    let store = Arc::new(open_store(dir, StoreOptions::relaxed()));
    store
        .create_database(DATABASE)
        .await
        .expect("database created");
    for container in containers {
        store
            .create_container(DATABASE, ContainerDefinition::new(*container, "/pk"), 1)
            .await
            .expect("container created");
    }
    store
}

fn request_after(scope: FeedScope, lsn: u64) -> FeedRequest {
    FeedRequest {
        scope,
        start: FeedStart::AfterLsn(lsn),
        mode: FeedMode::LatestVersion,
        max_items: 100,
    }
}

fn ids(page: &FeedPage) -> Vec<String> {
    page.changes
        .iter()
        .map(|change| {
            let value: Value = serde_json::from_str(change).expect("changes are JSON");
            value["id"].as_str().expect("an id").to_owned()
        })
        .collect()
}

async fn create(store: &Store, container: &str, id: &str, pk_value: &str) -> u64 {
    store
        .write_item(
            DATABASE,
            container,
            ItemWrite::create(json!({"id": id, "pk": pk_value})),
        )
        .await
        .expect("create succeeds")
        .item
        .expect("item")
        .lsn
}

#[test]
fn read_feed_wait_is_woken_by_a_commit_from_another_task() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    multi_thread_runtime().block_on(async {
        let store = store_with(dir.path(), &["c"]).await;
        let lsn = create(&store, "c", "before", "a").await;
        let waiter = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let page = store
                    .read_feed_wait(
                        DATABASE,
                        "c",
                        &request_after(FeedScope::Container, lsn),
                        WAKE_TIMEOUT,
                    )
                    .await
                    .expect("the wait succeeds");
                (page, started.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let written = create(&store, "c", "new", "b").await;
        let (page, waited) = waiter.await.expect("the waiter does not panic");
        assert_eq!(ids(&page), ["new"], "the waiter returns the new item");
        assert_eq!(page.lsn, written);
        assert!(
            waited < WAKE_TIMEOUT,
            "woken by the commit, not by the timeout ({waited:?})"
        );
    });
}

#[test]
fn read_feed_wait_returns_an_empty_page_after_its_timeout_when_nothing_is_written() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    multi_thread_runtime().block_on(async {
        let store = store_with(dir.path(), &["c"]).await;
        let lsn = create(&store, "c", "only", "a").await;
        let started = tokio::time::Instant::now();
        let page = store
            .read_feed_wait(
                DATABASE,
                "c",
                &request_after(FeedScope::Container, lsn),
                IDLE_TIMEOUT,
            )
            .await
            .expect("the wait succeeds");
        assert!(page.is_empty(), "nothing new: {:?}", page.changes);
        assert_eq!(page.lsn, lsn, "the position stays at the high LSN");
        assert!(
            started.elapsed() >= IDLE_TIMEOUT,
            "it waited for its timeout"
        );
    });
}

#[test]
fn read_feed_wait_is_not_satisfied_by_commits_to_another_container() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    multi_thread_runtime().block_on(async {
        let store = store_with(dir.path(), &["watched", "other"]).await;
        let waiter = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .read_feed_wait(
                        DATABASE,
                        "watched",
                        &request_after(FeedScope::Container, 0),
                        IDLE_TIMEOUT,
                    )
                    .await
                    .expect("the wait succeeds")
            })
        };
        create(&store, "other", "elsewhere", "a").await;
        let page = waiter.await.expect("the waiter does not panic");
        assert!(
            page.is_empty(),
            "a write elsewhere is not a change here: {:?}",
            page.changes
        );
    });
}

#[test]
fn read_feed_wait_on_a_partition_key_skips_other_keys_and_returns_its_own() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    multi_thread_runtime().block_on(async {
        let store = store_with(dir.path(), &["c"]).await;
        let waiter = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .read_feed_wait(
                        DATABASE,
                        "c",
                        &request_after(FeedScope::PartitionKey(pk("mine")), 0),
                        WAKE_TIMEOUT,
                    )
                    .await
                    .expect("the wait succeeds")
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        create(&store, "c", "theirs", "other").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mine = create(&store, "c", "mine", "mine").await;
        let page = waiter.await.expect("the waiter does not panic");
        assert_eq!(ids(&page), ["mine"], "only the watched key's change");
        assert_eq!(page.lsn, mine);
    });
}

#[test]
fn read_feed_wait_wakes_every_waiter_of_a_container() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    multi_thread_runtime().block_on(async {
        let store = store_with(dir.path(), &["c"]).await;
        let waiters: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .read_feed_wait(
                            DATABASE,
                            "c",
                            &request_after(FeedScope::Container, 0),
                            WAKE_TIMEOUT,
                        )
                        .await
                        .expect("the wait succeeds")
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        create(&store, "c", "one", "a").await;
        for waiter in waiters {
            let page = waiter.await.expect("the waiter does not panic");
            assert_eq!(ids(&page), ["one"]);
        }
    });
}

/// A waiter whose first read races the first commit to a fresh container must still see
/// that commit: either in its first read or by being woken.
#[test]
fn read_feed_wait_never_misses_a_commit_racing_its_first_read() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    multi_thread_runtime().block_on(async {
        let store = store_with(dir.path(), &[]).await;
        for round in 0..40 {
            let container = format!("race-{round}");
            store
                .create_container(
                    DATABASE,
                    ContainerDefinition::new(container.clone(), "/pk"),
                    1,
                )
                .await
                .expect("container created");
            let waiter = {
                let store = Arc::clone(&store);
                let container = container.clone();
                tokio::spawn(async move {
                    store
                        .read_feed_wait(
                            DATABASE,
                            &container,
                            &request_after(FeedScope::Container, 0),
                            WAKE_TIMEOUT,
                        )
                        .await
                        .expect("the wait succeeds")
                })
            };
            let writer = {
                let store = Arc::clone(&store);
                tokio::spawn(async move { create(&store, &container, "x", "a").await })
            };
            writer.await.expect("the writer does not panic");
            let page = waiter.await.expect("the waiter does not panic");
            assert_eq!(ids(&page), ["x"], "round {round}: the commit was missed");
        }
    });
}

/// A split commits no change, but readers of the split range must learn at once that it is
/// gone (to move to its children), not at their timeout; readers of the whole container keep
/// waiting and get the next change.
#[test]
fn read_feed_wait_on_a_range_split_meanwhile_ends_at_once_with_range_gone() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    multi_thread_runtime().block_on(async {
        let store = store_with(dir.path(), &["c"]).await;
        let lsn = create(&store, "c", "before", "a").await;
        let wait_on = |scope: FeedScope| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let started = tokio::time::Instant::now();
                let result = store
                    .read_feed_wait(DATABASE, "c", &request_after(scope, lsn), WAKE_TIMEOUT)
                    .await;
                (result, started.elapsed())
            })
        };
        let range_waiter = wait_on(FeedScope::Range(0));
        let container_waiter = wait_on(FeedScope::Container);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let children = store
            .split_range(DATABASE, "c", 0)
            .await
            .expect("range 0 splits");

        let (result, waited) = range_waiter.await.expect("the waiter does not panic");
        match result {
            Err(StoreError::RangeGone {
                range_id,
                replaced_by,
            }) => {
                assert_eq!(range_id, "0");
                let child_ids: Vec<String> = children.iter().map(|c| c.id.to_string()).collect();
                assert_eq!(replaced_by, child_ids);
            }
            other => panic!("expected RangeGone, got {other:?}"),
        }
        assert!(
            waited < WAKE_TIMEOUT / 2,
            "woken by the split, not by the timeout ({waited:?})"
        );

        assert!(
            !container_waiter.is_finished(),
            "a split is no change of the whole container"
        );
        let written = create(&store, "c", "after-split", "b").await;
        let (result, waited) = container_waiter.await.expect("the waiter does not panic");
        let page = result.expect("the container wait succeeds");
        assert_eq!(ids(&page), ["after-split"]);
        assert_eq!(page.lsn, written);
        assert!(waited < WAKE_TIMEOUT, "woken by the commit ({waited:?})");
    });
}
