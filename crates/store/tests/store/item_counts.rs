//! Each feed range keeps its item count in the catalog, so statistics need no scan; a range
//! recorded before counts were kept is counted from its item pointers. A scope's items are
//! counted from its pointers too (an index-only `COUNT`), unless items can expire.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use tributary_partition_key::{EpkRange, PartitionKey, PartitionKeyDefinition};
use tributary_store::{ContainerDefinition, FeedScope, ItemWrite, ManualClock, Store};

use crate::support::{
    DATABASE, START_MS, open_store, pk, quiet_options, rewrite_container_records, runtime,
};

const CONTAINER: &str = "counted";

fn write(runtime: &tokio::runtime::Runtime, store: &Store, write: ItemWrite) {
    runtime
        .block_on(store.write_item(DATABASE, CONTAINER, write))
        .expect("write succeeds");
}

fn item(n: usize) -> Value {
    json!({"id": format!("item-{n}"), "pk": format!("p{n}")})
}

/// The current ranges' counts as the catalog keeps them, and as `range_item_count` answers.
fn counts(store: &Store) -> Vec<(Option<u64>, u64)> {
    store
        .read_container(DATABASE, CONTAINER)
        .expect("container")
        .feed_ranges
        .iter()
        .map(|range| {
            let answered = store
                .range_item_count(DATABASE, CONTAINER, range.id)
                .expect("count");
            (range.item_count, answered)
        })
        .collect()
}

/// Rewrites every container record of a closed store as one written before counts were kept.
fn forget_counts(dir: &Path) {
    rewrite_container_records(dir, |record| {
        for range in record["feed"]["ranges"].as_array_mut().expect("ranges") {
            range
                .as_object_mut()
                .expect("range")
                .remove("item_count")
                .expect("a kept count");
        }
    });
}

#[test]
fn counts_follow_writes_and_a_range_without_one_is_counted_from_its_pointers() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    {
        let store = open_store(dir.path(), quiet_options(&clock));
        runtime
            .block_on(store.create_database(DATABASE))
            .expect("database");
        runtime
            .block_on(store.create_container(
                DATABASE,
                ContainerDefinition::new(CONTAINER, "/pk"),
                2,
            ))
            .expect("container");
        assert_eq!(counts(&store), vec![(Some(0), 0), (Some(0), 0)]);
        for n in 0..12 {
            write(&runtime, &store, ItemWrite::create(item(n)));
        }
        // Replacing an item leaves the count alone; deleting lowers it.
        write(&runtime, &store, ItemWrite::upsert(item(3)));
        for n in 0..2 {
            write(
                &runtime,
                &store,
                ItemWrite::delete(pk(&format!("p{n}")), format!("item-{n}")),
            );
        }
        let kept = counts(&store);
        assert!(kept.iter().all(|(kept, answered)| *kept == Some(*answered)));
        assert_eq!(kept.iter().map(|(_, n)| n).sum::<u64>(), 10);
    }
    forget_counts(dir.path());
    let store = open_store(dir.path(), quiet_options(&clock));
    let before: Vec<(Option<u64>, u64)> = counts(&store);
    assert!(before.iter().all(|(kept, _)| kept.is_none()), "{before:?}");
    assert_eq!(before.iter().map(|(_, n)| n).sum::<u64>(), 10);
    write(&runtime, &store, ItemWrite::create(item(20)));
    let range = store
        .read_container(DATABASE, CONTAINER)
        .expect("container")
        .feed_ranges[0]
        .id;
    runtime
        .block_on(store.split_range(DATABASE, CONTAINER, range))
        .expect("split");
    let after = counts(&store);
    assert!(after.iter().all(|(kept, _)| kept.is_none()), "{after:?}");
    assert_eq!(after.iter().map(|(_, n)| n).sum::<u64>(), 11);
}

/// A hierarchical key value (or prefix) from its components.
fn key(components: &[&str]) -> PartitionKey {
    PartitionKey::from_json(&json!(components)).expect("strings make a key")
}

#[test]
fn a_scope_is_counted_from_its_pointers_as_its_items_are_read() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let store = open_store(dir.path(), quiet_options(&clock));
    runtime
        .block_on(store.create_database(DATABASE))
        .expect("database");
    let mut definition = ContainerDefinition::new(CONTAINER, "/tenant");
    definition.partition_key =
        PartitionKeyDefinition::hierarchical(&["/tenant", "/user"]).expect("two paths");
    runtime
        .block_on(store.create_container(DATABASE, definition, 2))
        .expect("container");
    for (tenant, user, n_items) in [("t1", "u1", 5), ("t1", "u2", 3), ("t2", "u1", 4)] {
        for n in 0..n_items {
            let body = json!({"id": format!("{tenant}{user}-{n}"), "tenant": tenant, "user": user});
            write(&runtime, &store, ItemWrite::create(body));
        }
    }
    write(
        &runtime,
        &store,
        ItemWrite::delete(key(&["t1", "u1"]), "t1u1-0"),
    );
    let ranges = store
        .read_container(DATABASE, CONTAINER)
        .expect("container")
        .feed_ranges;
    let mut scopes = vec![
        FeedScope::Container,
        FeedScope::PartitionKey(key(&["t1", "u1"])),
        FeedScope::PartitionKey(key(&["t1"])),
        FeedScope::PartitionKey(key(&["t2", "u9"])),
        FeedScope::Epk(EpkRange::full()),
    ];
    scopes.extend(ranges.iter().map(|range| FeedScope::Range(range.id)));
    let expected = [11, 4, 7, 0, 11];
    for (n, scope) in scopes.iter().enumerate() {
        let read = store
            .scan_items(DATABASE, CONTAINER, scope)
            .expect("scan")
            .len() as u64;
        let counted = store
            .count_items(DATABASE, CONTAINER, scope)
            .expect("count");
        assert_eq!(counted, Some(read), "{scope:?}");
        if let Some(expected) = expected.get(n) {
            assert_eq!(read, *expected, "{scope:?}");
        }
    }
}

#[test]
fn a_container_whose_items_can_expire_is_not_counted_from_its_pointers() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let store = open_store(dir.path(), quiet_options(&clock));
    runtime
        .block_on(store.create_database(DATABASE))
        .expect("database");
    let mut definition = ContainerDefinition::new(CONTAINER, "/pk");
    definition.default_ttl = Some(-1);
    runtime
        .block_on(store.create_container(DATABASE, definition, 1))
        .expect("container");
    write(
        &runtime,
        &store,
        ItemWrite::create(json!({"id": "brief", "pk": "p", "ttl": 5})),
    );
    write(&runtime, &store, ItemWrite::create(item(1)));
    clock.advance_ms(10_000);
    // The expired item keeps its pointer (no sweep ran), so only reading tells.
    let scope = FeedScope::Container;
    assert_eq!(
        store
            .count_items(DATABASE, CONTAINER, &scope)
            .expect("count"),
        None
    );
    assert_eq!(
        store
            .scan_items(DATABASE, CONTAINER, &scope)
            .expect("scan")
            .len(),
        1
    );
}
