//! A failed commit (injected with [`FaultPlan`]) poisons the store: that write fails with
//! [`StoreError::CommitFailed`] (outcome unknown), every later one with
//! [`StoreError::Poisoned`], reads keep working, and after reopening
//! without faults the feed is a gap-free prefix holding every acknowledged write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tributary_store::{
    ContainerDefinition, FaultAction, FaultPlan, FeedMode, FeedScope, FeedStart, ItemWrite, Store,
    StoreError, StoreOptions,
};

use crate::support::{DATABASE, changes, create_container, drain_feed, open_store, pk, runtime};

const CONTAINER: &str = "faults";
/// Commits before the first item write: the database and the container.
const SETUP_COMMITS: u64 = 2;
/// Writes attempted after the failure, each of which must be refused.
const N_WRITES_AFTER_FAILURE: usize = 3;

fn options(fault_plan: Option<Arc<FaultPlan>>) -> StoreOptions {
    StoreOptions {
        fault_plan,
        // No maintenance commits: the plan counts only the test's own commits.
        maintenance_interval: Duration::from_secs(3600),
        ..StoreOptions::default()
    }
}

fn item(n: usize) -> Value {
    json!({"id": format!("item-{n}"), "pk": format!("p{}", n % 3), "n": n})
}

/// Creates the database and container on a store whose plan has not fired yet.
fn set_up(runtime: &tokio::runtime::Runtime, store: &Store) {
    let definition = ContainerDefinition {
        change_feed_retention_minutes: Some(60),
        ..ContainerDefinition::new(CONTAINER, "/pk")
    };
    create_container(runtime, store, definition, 1);
}

fn assert_poisoned<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::Poisoned(reason)) => {
            assert!(reason.contains("injected"), "{what}: {reason}")
        }
        other => panic!("{what}: expected Poisoned, got {other:?}"),
    }
}

/// Reads the all-versions feed from the beginning and checks it holds LSNs `1..=high`
/// exactly once each; returns the `(id, lsn)` of every change.
fn gap_free_versions(store: &Store) -> Vec<(String, u64)> {
    let high_lsn = store
        .read_container(DATABASE, CONTAINER)
        .expect("container")
        .high_lsn;
    let pages = drain_feed(
        store,
        CONTAINER,
        &FeedScope::Container,
        FeedStart::Beginning,
        FeedMode::AllVersionsAndDeletes,
        7,
    )
    .expect("the feed reads");
    let versions: Vec<(String, u64)> = changes(&pages)
        .iter()
        .map(|change| {
            let value: Value = serde_json::from_str(change).expect("changes are JSON");
            let id = value["current"]["id"].as_str().expect("an id").to_owned();
            (id, value["metadata"]["lsn"].as_u64().expect("an LSN"))
        })
        .collect();
    let lsns: Vec<u64> = versions.iter().map(|(_, lsn)| *lsn).collect();
    assert_eq!(
        lsns,
        (1..=high_lsn).collect::<Vec<_>>(),
        "the feed is gap-free up to the high LSN"
    );
    versions
}

/// Sequential writes; commit number `SETUP_COMMITS + fail_at` fails with `action`.
fn check_sequential(action: FaultAction, fail_at: usize) {
    let context = format!("{action:?} at write {fail_at}");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = runtime();
    let plan = Arc::new(FaultPlan::new(SETUP_COMMITS + fail_at as u64, action));
    // In LSN order.
    let mut acknowledged = Vec::new();
    {
        let store = open_store(dir.path(), options(Some(plan)));
        set_up(&runtime, &store);
        for n in 1..fail_at {
            let outcome = runtime
                .block_on(store.write_item(DATABASE, CONTAINER, ItemWrite::create(item(n))))
                .unwrap_or_else(|e| panic!("{context}: write {n} before the failure: {e}"));
            let written = outcome.item.expect("a create returns the item");
            assert_eq!(written.lsn, n as u64);
            acknowledged.push(written);
        }
        let failed = runtime.block_on(store.write_item(
            DATABASE,
            CONTAINER,
            ItemWrite::create(item(fail_at)),
        ));
        match failed {
            Err(StoreError::CommitFailed(reason)) => {
                assert!(reason.contains("injected"), "{context}: {reason}")
            }
            other => panic!("{context}: the failing write: expected CommitFailed, got {other:?}"),
        }
        for n in fail_at + 1..=fail_at + N_WRITES_AFTER_FAILURE {
            let later =
                runtime.block_on(store.write_item(DATABASE, CONTAINER, ItemWrite::create(item(n))));
            assert_poisoned(later, &format!("{context}: write {n} after the failure"));
        }
        let batch = runtime.block_on(store.execute_batch(
            DATABASE,
            CONTAINER,
            pk("p0"),
            vec![ItemWrite::create(json!({"id": "batch", "pk": "p0"}))],
        ));
        assert_poisoned(batch, &format!("{context}: a batch after the failure"));
        assert_poisoned(
            runtime.block_on(store.create_database("another")),
            &format!("{context}: a catalog change after the failure"),
        );
        // Reads still work and see every acknowledged write.
        for written in &acknowledged {
            let body: Value = serde_json::from_str(&written.body).expect("JSON");
            let key = pk(body["pk"].as_str().expect("pk"));
            let read = store
                .read_item(DATABASE, CONTAINER, &key, &written.id)
                .unwrap_or_else(|e| {
                    panic!("{context}: reading {} after the failure: {e}", written.id)
                });
            assert_eq!(read.body, written.body);
        }
        let pages = drain_feed(
            &store,
            CONTAINER,
            &FeedScope::Container,
            FeedStart::Beginning,
            FeedMode::LatestVersion,
            10,
        )
        .expect("the feed reads after the failure");
        assert_eq!(
            changes(&pages),
            acknowledged
                .iter()
                .map(|written| written.body.clone())
                .collect::<Vec<_>>(),
            "{context}: the feed shows exactly the acknowledged writes"
        );
    }
    let store = open_store(dir.path(), options(None));
    let versions = gap_free_versions(&store);
    let n_acknowledged = fail_at - 1;
    match action {
        // Nothing of the failed commit reached storage.
        FaultAction::FailBeforeWrite => assert_eq!(versions.len(), n_acknowledged, "{context}"),
        // The failed commit may or may not have survived; nothing after it was written.
        _ => assert!(
            versions.len() == n_acknowledged || versions.len() == n_acknowledged + 1,
            "{context}: {versions:?}"
        ),
    }
    for (index, (id, lsn)) in versions.iter().enumerate() {
        assert_eq!(
            *id,
            format!("item-{}", index + 1),
            "{context}: writes survive in order"
        );
        if let Some(written) = acknowledged.get(index) {
            assert_eq!(written.id, *id, "{context}");
            assert_eq!(written.lsn, *lsn, "{context}");
            let read = store
                .read_item(
                    DATABASE,
                    CONTAINER,
                    &pk(&format!("p{}", (index + 1) % 3)),
                    id,
                )
                .unwrap_or_else(|e| panic!("{context}: acknowledged {id} lost: {e}"));
            assert_eq!(
                read.body, written.body,
                "{context}: {id} survives unchanged"
            );
        }
    }
    // The reopened store accepts writes again, after the recovered prefix.
    let next = runtime
        .block_on(store.write_item(
            DATABASE,
            CONTAINER,
            ItemWrite::create(json!({"id": "after", "pk": "p0"})),
        ))
        .unwrap_or_else(|e| panic!("{context}: writing after reopening: {e}"));
    assert_eq!(
        next.item.expect("item").lsn,
        versions.len() as u64 + 1,
        "{context}"
    );
}

#[test]
fn failed_sync_poisons_the_store_and_recovery_keeps_a_gap_free_prefix() {
    for fail_at in [1, 2, 5] {
        check_sequential(FaultAction::FailAfterWrite, fail_at);
    }
}

#[test]
fn failed_write_poisons_the_store_and_recovery_keeps_exactly_the_acknowledged_writes() {
    for fail_at in [1, 2, 5] {
        check_sequential(FaultAction::FailBeforeWrite, fail_at);
    }
}

/// Concurrent writers: once a commit fails, no writer gets an acknowledgement, and every
/// acknowledged write survives reopening.
#[test]
fn failed_group_commit_refuses_every_later_write_from_every_task() {
    for action in [FaultAction::FailAfterWrite, FaultAction::FailBeforeWrite] {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .expect("a runtime");
        let plan = Arc::new(FaultPlan::new(SETUP_COMMITS + 10, action));
        let acknowledged: Vec<(String, u64)> = {
            let store = Arc::new(open_store(dir.path(), options(Some(plan))));
            set_up(&runtime, &store);
            let tasks: Vec<_> = (0..8)
                .map(|task| {
                    let store = Arc::clone(&store);
                    runtime.spawn(async move {
                        let mut acknowledged = Vec::new();
                        let mut poisoned = false;
                        for n in 0..20 {
                            let body =
                                json!({"id": format!("t{task}-{n}"), "pk": format!("p{}", n % 3)});
                            match store
                                .write_item(DATABASE, CONTAINER, ItemWrite::create(body))
                                .await
                            {
                                Ok(outcome) => {
                                    assert!(
                                        !poisoned,
                                        "a write was acknowledged after a refused one"
                                    );
                                    let item = outcome.item.expect("item");
                                    acknowledged.push((item.id, item.lsn));
                                }
                                // The writes of the failed commit, then every later one.
                                Err(StoreError::CommitFailed(_) | StoreError::Poisoned(_)) => {
                                    poisoned = true
                                }
                                Err(other) => panic!("unexpected error {other}"),
                            }
                        }
                        assert!(poisoned, "the plan fails a commit while this task writes");
                        acknowledged
                    })
                })
                .collect();
            tasks
                .into_iter()
                .flat_map(|task| runtime.block_on(task).expect("writer tasks do not panic"))
                .collect()
        };
        let store = open_store(dir.path(), options(None));
        let versions = gap_free_versions(&store);
        let recovered: BTreeMap<String, u64> = versions.into_iter().collect();
        for (id, lsn) in &acknowledged {
            assert_eq!(
                recovered.get(id),
                Some(lsn),
                "{action:?}: acknowledged {id} at LSN {lsn}"
            );
        }
        if action == FaultAction::FailBeforeWrite {
            assert_eq!(
                recovered.len(),
                acknowledged.len(),
                "{action:?}: only acknowledged writes exist"
            );
        }
    }
}
