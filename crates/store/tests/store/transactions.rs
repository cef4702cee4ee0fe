//! Transactions: a transaction across databases commits every operation or none, in each
//! container's change feed too, within its own limits; the single-database transaction keeps
//! the Cosmos batch limit.

use serde_json::{Value, json};
use tributary_store::{
    ContainerDefinition, CrossDatabaseOperation, FeedMode, FeedRequest, FeedScope, FeedStart,
    ItemWrite, MAX_CROSS_CONTAINER_TRANSACTION_BYTES, MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS,
    MAX_TRANSACTION_OPERATIONS, OperationResult, Precondition, Store, StoreError, StoreOptions,
    TransactionOperation, TransactionOutcome,
};

use crate::support::{DATABASE, error_variant, open_store, pk, runtime};

/// The second database of these tests, and the container in each.
const OTHER_DATABASE: &str = "other";
const CONTAINER: &str = "items";

/// A store with container [`CONTAINER`] (partition key `/pk`) in [`DATABASE`] and in
/// [`OTHER_DATABASE`].
fn two_databases(dir: &std::path::Path, runtime: &tokio::runtime::Runtime) -> Store {
    let store = open_store(dir, StoreOptions::relaxed());
    for database in [DATABASE, OTHER_DATABASE] {
        runtime
            .block_on(store.create_database(database))
            .expect("database created");
        runtime
            .block_on(store.create_container(
                database,
                ContainerDefinition::new(CONTAINER, "/pk"),
                1,
            ))
            .expect("container created");
    }
    store
}

fn operation(database: &str, container: &str, write: ItemWrite) -> CrossDatabaseOperation {
    CrossDatabaseOperation {
        database: database.to_owned(),
        container: container.to_owned(),
        write,
    }
}

/// One line per operation: `done <status>`, `failed <error variant>` or `not applied`.
fn summary(outcome: &TransactionOutcome) -> Vec<String> {
    outcome
        .results
        .iter()
        .map(|result| match result {
            OperationResult::Done(done) => format!("done {:?}", done.status),
            OperationResult::Failed(error) => format!("failed {}", error_variant(error)),
            OperationResult::NotApplied => "not applied".to_owned(),
        })
        .collect()
}

/// The ids in a container's latest-version feed, in feed order.
fn feed_ids(store: &Store, database: &str) -> Vec<String> {
    let page = store
        .read_feed(
            database,
            CONTAINER,
            &FeedRequest {
                scope: FeedScope::Container,
                start: FeedStart::Beginning,
                mode: FeedMode::LatestVersion,
                max_items: 1000,
            },
        )
        .expect("feed read");
    page.changes
        .iter()
        .map(|change| {
            let value: Value = serde_json::from_str(change).expect("changes are JSON");
            value["id"].as_str().expect("an id").to_owned()
        })
        .collect()
}

fn high_lsn(store: &Store, database: &str) -> u64 {
    store
        .read_container(database, CONTAINER)
        .expect("container")
        .high_lsn
}

#[test]
fn a_transaction_across_databases_commits_in_both_at_once() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = runtime();
    let store = two_databases(dir.path(), &runtime);
    let existing = runtime
        .block_on(store.write_item(
            OTHER_DATABASE,
            CONTAINER,
            ItemWrite::create(json!({"id": "lease", "pk": "l", "n": 1})),
        ))
        .expect("create")
        .item
        .expect("item");

    let outcome = runtime
        .block_on(store.transaction_across_databases(vec![
            operation(
                OTHER_DATABASE,
                CONTAINER,
                ItemWrite::replace("lease", json!({"id": "lease", "pk": "l", "n": 2}))
                    .with_precondition(Precondition::IfMatch(existing.etag.clone())),
            ),
            operation(
                DATABASE,
                CONTAINER,
                ItemWrite::upsert(json!({"id": "out1", "pk": "a"})),
            ),
            operation(
                DATABASE,
                CONTAINER,
                ItemWrite::create(json!({"id": "out2", "pk": "b"})),
            ),
        ]))
        .expect("transaction");

    assert!(outcome.committed);
    assert_eq!(
        summary(&outcome),
        ["done Replaced", "done Created", "done Created"]
    );
    let lease = store
        .read_item(OTHER_DATABASE, CONTAINER, &pk("l"), "lease")
        .expect("lease");
    assert_eq!(lease.to_value()["n"], 2);
    assert_eq!(feed_ids(&store, DATABASE), ["out1", "out2"]);
    assert_eq!(feed_ids(&store, OTHER_DATABASE), ["lease"]);
    assert_eq!(
        (high_lsn(&store, DATABASE), high_lsn(&store, OTHER_DATABASE)),
        (2, 2),
        "each container's changes take its own next LSNs"
    );
}

#[test]
fn a_failing_operation_in_one_database_commits_nothing_in_either() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = runtime();
    let store = two_databases(dir.path(), &runtime);
    let existing = runtime
        .block_on(store.write_item(
            OTHER_DATABASE,
            CONTAINER,
            ItemWrite::create(json!({"id": "lease", "pk": "l"})),
        ))
        .expect("create")
        .item
        .expect("item");
    let output = |id: &str| {
        operation(
            DATABASE,
            CONTAINER,
            ItemWrite::upsert(json!({"id": id, "pk": "a"})),
        )
    };
    let lease_replace = |etag: &str| {
        operation(
            OTHER_DATABASE,
            CONTAINER,
            ItemWrite::replace("lease", json!({"id": "lease", "pk": "l", "n": 2}))
                .with_precondition(Precondition::IfMatch(etag.to_owned())),
        )
    };
    // (what fails, the operations, the expected per-operation results)
    let cases: Vec<(&str, Vec<CrossDatabaseOperation>, Vec<&str>)> = vec![
        (
            "a stale etag on the last operation",
            vec![output("o1"), output("o2"), lease_replace("\"stale\"")],
            vec!["not applied", "not applied", "failed PreconditionFailed"],
        ),
        (
            "a stale etag on the first operation",
            vec![lease_replace("\"stale\""), output("o1")],
            vec!["failed PreconditionFailed", "not applied"],
        ),
        (
            "a create of an existing item",
            vec![
                output("o1"),
                operation(
                    OTHER_DATABASE,
                    CONTAINER,
                    ItemWrite::create(json!({"id": "lease", "pk": "l"})),
                ),
            ],
            vec!["not applied", "failed ItemExists"],
        ),
        (
            "a missing database",
            vec![
                lease_replace(&existing.etag),
                operation(
                    "nowhere",
                    CONTAINER,
                    ItemWrite::upsert(json!({"id": "x", "pk": "a"})),
                ),
            ],
            vec!["not applied", "failed DatabaseNotFound"],
        ),
        (
            "a missing container",
            vec![
                lease_replace(&existing.etag),
                operation(
                    DATABASE,
                    "nowhere",
                    ItemWrite::upsert(json!({"id": "x", "pk": "a"})),
                ),
            ],
            vec!["not applied", "failed ContainerNotFound"],
        ),
        (
            "an item without an id",
            vec![
                lease_replace(&existing.etag),
                operation(DATABASE, CONTAINER, ItemWrite::upsert(json!({"pk": "a"}))),
            ],
            vec!["not applied", "failed BadRequest"],
        ),
    ];
    for (what, operations, expected) in cases {
        let outcome = runtime
            .block_on(store.transaction_across_databases(operations))
            .expect("transaction");
        assert!(!outcome.committed, "{what}");
        assert_eq!(summary(&outcome), expected, "{what}");
        assert_eq!(feed_ids(&store, DATABASE), Vec::<String>::new(), "{what}");
        assert_eq!(feed_ids(&store, OTHER_DATABASE), ["lease"], "{what}");
        assert_eq!(
            (high_lsn(&store, DATABASE), high_lsn(&store, OTHER_DATABASE)),
            (0, 1),
            "{what}: no LSN was taken"
        );
        let lease = store
            .read_item(OTHER_DATABASE, CONTAINER, &pk("l"), "lease")
            .expect("lease");
        assert_eq!(lease.etag, existing.etag, "{what}: the lease is unchanged");
    }
}

#[test]
fn a_transaction_across_databases_holds_up_to_its_own_limit() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = runtime();
    let store = two_databases(dir.path(), &runtime);
    let upserts = |n_ops: usize| -> Vec<CrossDatabaseOperation> {
        (0..n_ops)
            .map(|n| {
                let database = if n % 2 == 0 { DATABASE } else { OTHER_DATABASE };
                operation(
                    database,
                    CONTAINER,
                    ItemWrite::upsert(json!({"id": format!("i{n}"), "pk": format!("k{}", n % 7)})),
                )
            })
            .collect()
    };

    let outcome = runtime
        .block_on(
            store.transaction_across_databases(upserts(MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS)),
        )
        .expect("a transaction at the limit");
    assert!(outcome.committed);
    assert_eq!(
        outcome.results.len(),
        MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS
    );
    let half = MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS as u64 / 2;
    assert_eq!(
        (high_lsn(&store, DATABASE), high_lsn(&store, OTHER_DATABASE)),
        (half, half)
    );

    let refused = |result: Result<TransactionOutcome, StoreError>| match result {
        Err(error @ StoreError::BadRequest(_)) => error.to_string(),
        other => panic!("expected a bad request, got {other:?}"),
    };
    assert_eq!(
        refused(runtime.block_on(store.transaction_across_databases(upserts(
            MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS + 1
        )))),
        format!(
            "a transaction across databases holds at most \
             {MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS} operations, not {}",
            MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS + 1
        )
    );
    assert_eq!(
        refused(runtime.block_on(store.transaction_across_databases(Vec::new()))),
        "a transaction across databases needs at least one operation"
    );
    // Items of 1 MiB each: the byte limit is passed before the operation limit.
    let filler = "x".repeat(1024 * 1024);
    let n_big = MAX_CROSS_CONTAINER_TRANSACTION_BYTES / filler.len() + 1;
    let big: Vec<CrossDatabaseOperation> = (0..n_big)
        .map(|n| {
            operation(
                DATABASE,
                CONTAINER,
                ItemWrite::upsert(json!({"id": format!("big{n}"), "pk": "a", "filler": filler})),
            )
        })
        .collect();
    let message = refused(runtime.block_on(store.transaction_across_databases(big)));
    assert!(
        message.starts_with(&format!(
            "a transaction across databases writes at most {MAX_CROSS_CONTAINER_TRANSACTION_BYTES} bytes of items"
        )),
        "{message}"
    );
    assert_eq!(
        (high_lsn(&store, DATABASE), high_lsn(&store, OTHER_DATABASE)),
        (half, half),
        "refused transactions write nothing"
    );

    // The single-database transaction keeps the Cosmos batch limit.
    let batch: Vec<TransactionOperation> = (0..=MAX_TRANSACTION_OPERATIONS)
        .map(|n| TransactionOperation {
            container: CONTAINER.to_owned(),
            write: ItemWrite::upsert(json!({"id": format!("b{n}"), "pk": "a"})),
        })
        .collect();
    assert_eq!(
        refused(runtime.block_on(store.transaction(DATABASE, batch))),
        format!(
            "a batch holds at most {MAX_TRANSACTION_OPERATIONS} operations, not {}",
            MAX_TRANSACTION_OPERATIONS + 1
        )
    );
}
