//! Bulk writes ([`Store::write_items`]): independent operations on one container, applied in
//! the order given in one commit group. Each succeeds or fails on its own, the feed holds the
//! successes in request order, and a failed commit fails every operation that had succeeded.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tributary_store::{
    ContainerDefinition, FaultAction, FaultPlan, ItemWrite, Store, StoreError, StoreOptions,
    WriteKind, WriteStatus,
};

use crate::support::{
    DATABASE, create_container, error_variant, latest_feed_ids, open_store, runtime,
};

const CONTAINER: &str = "bulk";

fn set_up(runtime: &tokio::runtime::Runtime, store: &Store) {
    create_container(
        runtime,
        store,
        ContainerDefinition::new(CONTAINER, "/pk"),
        4,
    );
}

fn feed_ids(store: &Store) -> Vec<String> {
    latest_feed_ids(store, CONTAINER)
}

fn create(id: &str, key: &str) -> ItemWrite {
    ItemWrite::create(json!({ "id": id, "pk": key }))
}

#[test]
fn operations_apply_in_order_and_fail_on_their_own() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = runtime();
    let store = open_store(dir.path(), StoreOptions::relaxed());
    set_up(&runtime, &store);
    runtime
        .block_on(store.write_item(DATABASE, CONTAINER, create("taken", "a")))
        .expect("created");
    let high_before = store
        .read_container(DATABASE, CONTAINER)
        .expect("container")
        .high_lsn;
    let mut writes: Vec<ItemWrite> = (0..50)
        .map(|n| create(&format!("item-{n:02}"), &format!("key-{}", (n * 7) % 13)))
        .collect();
    writes.insert(10, create("taken", "a"));
    writes.insert(
        20,
        ItemWrite {
            kind: WriteKind::Replace,
            ..create("missing", "b")
        },
    );
    writes.insert(
        30,
        ItemWrite {
            body: None,
            ..create("no-body", "c")
        },
    );
    // Two writes of one item in one request: the second sees the first.
    writes.push(ItemWrite {
        kind: WriteKind::Upsert,
        ..create("item-00", "key-0")
    });
    let results = runtime
        .block_on(store.write_items(DATABASE, CONTAINER, writes))
        .expect("the bulk runs");
    assert_eq!(results.len(), 54);
    let failures: Vec<(usize, &str)> = results
        .iter()
        .enumerate()
        .filter_map(|(index, result)| result.as_ref().err().map(|e| (index, error_variant(e))))
        .collect();
    assert_eq!(
        failures,
        [(10, "ItemExists"), (20, "ItemNotFound"), (30, "BadRequest")]
    );
    let last = results[53].as_ref().expect("the upsert succeeded");
    assert_eq!(last.status, WriteStatus::Replaced);
    let lsns: Vec<u64> = results
        .iter()
        .filter_map(|result| result.as_ref().ok())
        .filter_map(|outcome| outcome.item.as_ref().map(|item| item.lsn))
        .collect();
    assert_eq!(
        lsns,
        (high_before + 1..=high_before + 51).collect::<Vec<_>>(),
        "consecutive LSNs in request order"
    );
    let mut expected: Vec<String> = (1..50).map(|n| format!("item-{n:02}")).collect();
    expected.insert(0, "taken".to_owned());
    expected.push("item-00".to_owned());
    assert_eq!(feed_ids(&store), expected);
}

#[test]
fn a_failed_commit_fails_every_operation_and_writes_all_or_nothing() {
    for action in [FaultAction::FailBeforeWrite, FaultAction::FailAfterWrite] {
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = runtime();
        let options = StoreOptions {
            // The database and the container are commits 1 and 2; the bulk is commit 3.
            fault_plan: Some(Arc::new(FaultPlan::new(3, action))),
            maintenance_interval: Duration::from_secs(3600),
            ..StoreOptions::default()
        };
        let store = open_store(dir.path(), options);
        set_up(&runtime, &store);
        let writes = vec![
            create("a", "x"),
            create("b", "y"),
            ItemWrite {
                body: None,
                ..create("c", "z")
            },
        ];
        let results = runtime
            .block_on(store.write_items(DATABASE, CONTAINER, writes))
            .expect("the bulk runs");
        let variants: Vec<&str> = results
            .iter()
            .map(|result| result.as_ref().err().map_or("ok", error_variant))
            .collect();
        assert_eq!(
            variants,
            ["CommitFailed", "CommitFailed", "BadRequest"],
            "{action:?}"
        );
        // A poisoned store takes no more bulks.
        assert!(matches!(
            runtime.block_on(store.write_items(DATABASE, CONTAINER, vec![create("d", "x")])),
            Err(StoreError::Poisoned(_))
        ));
        store.close();
        drop(store);
        let reopened = open_store(dir.path(), StoreOptions::relaxed());
        let ids = feed_ids(&reopened);
        assert!(
            ids.is_empty() || ids == ["a", "b"],
            "{action:?}: all or nothing, got {ids:?}"
        );
        if action == FaultAction::FailBeforeWrite {
            assert!(ids.is_empty());
        }
    }
}
