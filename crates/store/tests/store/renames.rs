//! A replace whose body carries another id renames the item, as on Cosmos DB: one commit
//! deletes the old id and creates the new one.

use serde_json::json;
use tributary_store::{
    ContainerDefinition, FeedMode, FeedScope, FeedStart, ItemWrite, Precondition, StoreError,
    StoreOptions, WriteStatus,
};

use crate::support::{
    DATABASE, change_lsn, changes, create_container, drain_feed, latest_feed_ids, open_store, pk,
    runtime,
};

const CONTAINER: &str = "renames";

#[test]
fn a_replace_with_another_id_renames_the_item_in_one_commit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = runtime();
    let store = open_store(dir.path(), StoreOptions::relaxed());
    let definition = ContainerDefinition {
        change_feed_retention_minutes: Some(60),
        ..ContainerDefinition::new(CONTAINER, "/pk")
    };
    create_container(&runtime, &store, definition, 1);
    for id in ["old", "taken"] {
        runtime
            .block_on(store.write_item(
                DATABASE,
                CONTAINER,
                ItemWrite::upsert(json!({"id": id, "pk": "p"})),
            ))
            .expect("written");
    }
    let old = store
        .read_item(DATABASE, CONTAINER, &pk("p"), "old")
        .expect("old");

    let onto_taken = runtime.block_on(store.write_item(
        DATABASE,
        CONTAINER,
        ItemWrite::replace("old", json!({"id": "taken", "pk": "p"})),
    ));
    assert!(
        matches!(onto_taken, Err(StoreError::ItemExists(ref id)) if id == "taken"),
        "{onto_taken:?}"
    );
    let stale = runtime.block_on(store.write_item(
        DATABASE,
        CONTAINER,
        ItemWrite {
            precondition: Some(Precondition::IfMatch("\"stale\"".into())),
            ..ItemWrite::replace("old", json!({"id": "new", "pk": "p"}))
        },
    ));
    assert!(
        matches!(stale, Err(StoreError::PreconditionFailed(_))),
        "{stale:?}"
    );

    let renamed = runtime
        .block_on(store.write_item(
            DATABASE,
            CONTAINER,
            ItemWrite {
                precondition: Some(Precondition::IfMatch(old.etag.clone())),
                ..ItemWrite::replace("old", json!({"id": "new", "pk": "p", "v": 2}))
            },
        ))
        .expect("renamed");
    assert_eq!(renamed.status, WriteStatus::Replaced);
    let item = renamed.item.expect("the new version");
    assert_eq!(item.id, "new");
    assert!(matches!(
        store.read_item(DATABASE, CONTAINER, &pk("p"), "old"),
        Err(StoreError::ItemNotFound(_))
    ));
    assert_eq!(
        store
            .read_item(DATABASE, CONTAINER, &pk("p"), "new")
            .expect("new")
            .lsn,
        item.lsn
    );

    let ids = latest_feed_ids(&store, CONTAINER);
    assert_eq!(ids, ["taken", "new"]);
    let all = drain_feed(
        &store,
        CONTAINER,
        &FeedScope::Container,
        FeedStart::Beginning,
        FeedMode::AllVersionsAndDeletes,
        100,
    )
    .expect("feed");
    let log: Vec<(u64, String)> = changes(&all)
        .iter()
        .map(|change| {
            let value: serde_json::Value = serde_json::from_str(change).expect("JSON");
            (
                change_lsn(FeedMode::AllVersionsAndDeletes, change),
                value["metadata"]["operationType"]
                    .as_str()
                    .expect("an operation")
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        log,
        [
            (1, "create".into()),
            (2, "create".into()),
            (3, "delete".into()),
            (4, "create".into())
        ],
        "the rename is the old id's delete and the new id's create, in one commit"
    );
}
