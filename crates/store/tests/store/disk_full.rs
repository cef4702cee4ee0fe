//! A disk below the free-space reserve (its free space injected with [`ManualDiskSpace`])
//! refuses every write with [`StoreError::DiskFull`] before anything is staged: nothing is
//! stored, the feed does not move, reads keep working, background maintenance waits, and
//! writes resume on the same open store once space is freed. An `ENOSPC` inside a commit
//! (the reserve was too small) still poisons the store, with a message that says so. An
//! automatic split waits too; and one test checks the reserve against the operating system's
//! real free space.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tributary_store::{
    Clock, ContainerDefinition, DiskSpace, FaultAction, FaultPlan, FeedMode, FeedScope, FeedStart,
    ItemWrite, ManualClock, ManualDiskSpace, Store, StoreError, StoreOptions,
};

use crate::support::{
    DATABASE, START_MS, changes, create_container, drain_feed, open_store, pk, quiet_options,
    runtime,
};

const CONTAINER: &str = "disk";
const MIB: u64 = 1024 * 1024;
/// The reserve every test keeps.
const RESERVE_BYTES: u64 = 64 * MIB;
/// Free space well above the reserve.
const PLENTY_BYTES: u64 = 10 * 1024 * MIB;
/// Free space below the reserve.
const SHORT_BYTES: u64 = 3 * MIB;
/// How long a test waits for the background sweeper, which runs every few milliseconds here.
const SWEEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Maintenance passes a test lets run below the reserve before checking they wrote nothing.
const N_SKIPPED_PASSES: u64 = 5;

/// Options measuring `disk` before every commit group, with a [`RESERVE_BYTES`] reserve.
fn options(disk: &Arc<ManualDiskSpace>, clock: &Arc<ManualClock>) -> StoreOptions {
    StoreOptions {
        min_free_disk_bytes: RESERVE_BYTES,
        disk_space_check_interval: Duration::ZERO,
        disk_space: Arc::clone(disk) as Arc<dyn DiskSpace>,
        ..quiet_options(clock)
    }
}

fn definition() -> ContainerDefinition {
    ContainerDefinition {
        change_feed_retention_minutes: Some(60),
        ..ContainerDefinition::new(CONTAINER, "/pk")
    }
}

/// The `(id, lsn)` of every change in the container's all-versions feed.
fn all_versions(store: &Store) -> Vec<(String, u64)> {
    let pages = drain_feed(
        store,
        CONTAINER,
        &FeedScope::Container,
        FeedStart::Beginning,
        FeedMode::AllVersionsAndDeletes,
        10,
    )
    .expect("the feed reads below the reserve too");
    changes(&pages)
        .iter()
        .map(|change| {
            let value: Value = serde_json::from_str(change).expect("changes are JSON");
            // A delete has an empty current image and names its item in the metadata.
            let id = value["current"]["id"]
                .as_str()
                .or(value["metadata"]["id"].as_str())
                .expect("an id")
                .to_owned();
            (id, value["metadata"]["lsn"].as_u64().expect("an LSN"))
        })
        .collect()
}

fn assert_disk_full<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    what: &str,
    store_dir: &str,
) {
    match result {
        Err(error @ StoreError::DiskFull { .. }) => {
            let message = error.to_string();
            assert_eq!(
                message,
                format!(
                    "the disk holding {store_dir} has 3 MiB free, below the 64 MiB reserve; \
                     writes resume on their own when space is freed"
                ),
                "{what}"
            );
        }
        other => panic!("{what}: expected DiskFull, got {other:?}"),
    }
}

#[test]
fn below_the_reserve_every_write_is_refused_and_not_stored_while_reads_work() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let dir_text = dir.path().display().to_string();
    let disk = Arc::new(ManualDiskSpace::new(PLENTY_BYTES));
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let store = open_store(dir.path(), options(&disk, &clock));
    create_container(&runtime, &store, definition(), 1);
    let kept = runtime
        .block_on(store.write_item(
            DATABASE,
            CONTAINER,
            ItemWrite::create(json!({"id": "kept", "pk": "a", "n": 1})),
        ))
        .expect("a write above the reserve")
        .item
        .expect("a create returns the item");
    let before = all_versions(&store);
    assert_eq!(before, vec![("kept".to_owned(), kept.lsn)]);

    disk.set_free_bytes(SHORT_BYTES);
    let create = |id: &str| ItemWrite::create(json!({"id": id, "pk": "a"}));
    assert_disk_full(
        runtime.block_on(store.write_item(DATABASE, CONTAINER, create("new"))),
        "a create",
        &dir_text,
    );
    assert_disk_full(
        runtime.block_on(store.write_item(
            DATABASE,
            CONTAINER,
            ItemWrite::upsert(json!({"id": "kept", "pk": "a", "n": 2})),
        )),
        "an upsert",
        &dir_text,
    );
    assert_disk_full(
        runtime.block_on(store.write_item(DATABASE, CONTAINER, ItemWrite::delete(pk("a"), "kept"))),
        "a delete",
        &dir_text,
    );
    assert_disk_full(
        runtime.block_on(store.write_items(
            DATABASE,
            CONTAINER,
            vec![create("bulk-1"), create("bulk-2")],
        )),
        "a bulk request",
        &dir_text,
    );
    assert_disk_full(
        runtime.block_on(store.execute_batch(
            DATABASE,
            CONTAINER,
            pk("a"),
            vec![create("batch-1"), create("batch-2")],
        )),
        "a transactional batch",
        &dir_text,
    );
    assert_disk_full(
        runtime.block_on(store.create_database("other")),
        "a database create",
        &dir_text,
    );
    assert_disk_full(
        runtime.block_on(store.create_container(
            DATABASE,
            ContainerDefinition::new("other", "/pk"),
            1,
        )),
        "a container create",
        &dir_text,
    );
    assert_disk_full(
        runtime.block_on(store.delete_container(DATABASE, CONTAINER)),
        "a container delete",
        &dir_text,
    );
    assert_disk_full(
        runtime.block_on(store.split_range(DATABASE, CONTAINER, 0)),
        "a split",
        &dir_text,
    );

    let read = store
        .read_item(DATABASE, CONTAINER, &pk("a"), "kept")
        .expect("a point read below the reserve");
    assert_eq!(
        read.lsn, kept.lsn,
        "the refused upsert and delete left it as it was"
    );
    assert!(matches!(
        store.read_item(DATABASE, CONTAINER, &pk("a"), "new"),
        Err(StoreError::ItemNotFound(_))
    ));
    let scanned = store
        .scan_items(DATABASE, CONTAINER, &FeedScope::Container)
        .expect("a scan (what queries read) below the reserve");
    assert_eq!(
        scanned.len(),
        1,
        "only the item written before: {scanned:?}"
    );
    assert_eq!(all_versions(&store), before, "the feed did not move");
    assert_eq!(
        store
            .read_container(DATABASE, CONTAINER)
            .expect("the container is still there")
            .high_lsn,
        kept.lsn
    );
    assert_eq!(store.list_databases().len(), 1, "no database was created");
}

#[test]
fn writes_resume_on_the_same_open_store_once_space_is_freed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let dir_text = dir.path().display().to_string();
    let disk = Arc::new(ManualDiskSpace::new(PLENTY_BYTES));
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let store = open_store(dir.path(), options(&disk, &clock));
    create_container(&runtime, &store, definition(), 1);
    let write = |id: &str| {
        runtime.block_on(store.write_item(
            DATABASE,
            CONTAINER,
            ItemWrite::create(json!({"id": id, "pk": "a"})),
        ))
    };
    let first = write("first")
        .expect("above the reserve")
        .item
        .expect("item");
    disk.set_free_bytes(SHORT_BYTES);
    for attempt in 0..3 {
        assert_disk_full(write("refused"), &format!("attempt {attempt}"), &dir_text);
    }
    disk.set_free_bytes(PLENTY_BYTES);
    let second = write("second")
        .expect("space is back: the next write commits, no restart")
        .item
        .expect("item");
    assert_eq!(second.lsn, first.lsn + 1, "the refused writes took no LSN");
    let refused_after = write("refused")
        .expect("the id of a refused write was never stored")
        .item
        .expect("item");
    assert_eq!(refused_after.lsn, second.lsn + 1);
    assert_eq!(
        all_versions(&store),
        vec![
            ("first".to_owned(), first.lsn),
            ("second".to_owned(), second.lsn),
            ("refused".to_owned(), refused_after.lsn),
        ],
        "a gap-free feed of the acknowledged writes only"
    );
}

#[test]
fn ttl_expiry_waits_below_the_reserve_and_catches_up_once_space_is_freed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let disk = Arc::new(ManualDiskSpace::new(PLENTY_BYTES));
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let store = open_store(
        dir.path(),
        StoreOptions {
            maintenance_interval: Duration::from_millis(5),
            clock: Arc::clone(&clock) as Arc<dyn Clock>,
            ..options(&disk, &clock)
        },
    );
    let definition = ContainerDefinition {
        default_ttl: Some(5),
        ..definition()
    };
    create_container(&runtime, &store, definition, 1);
    let item = runtime
        .block_on(store.write_item(
            DATABASE,
            CONTAINER,
            ItemWrite::create(json!({"id": "short", "pk": "a"})),
        ))
        .expect("a write above the reserve")
        .item
        .expect("item");
    disk.set_free_bytes(SHORT_BYTES);
    clock.advance_ms(6_000);

    // Every maintenance pass below the reserve measures the disk (and nothing else does
    // here): once enough passes have measured, enough sweeps had their chance to write. A
    // sweep that wrote ends the wait early, and fails the check after it.
    let measured = disk.n_measurements();
    let started = Instant::now();
    while disk.n_measurements() < measured + N_SKIPPED_PASSES && all_versions(&store).len() == 1 {
        assert!(
            started.elapsed() < SWEEP_TIMEOUT,
            "maintenance did not run within {SWEEP_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        all_versions(&store),
        vec![("short".to_owned(), item.lsn)],
        "no expiry was logged below the reserve"
    );

    disk.set_free_bytes(PLENTY_BYTES);
    let started = Instant::now();
    loop {
        let versions = all_versions(&store);
        if versions.len() == 2 {
            assert_eq!(
                versions[1],
                ("short".to_owned(), item.lsn + 1),
                "the TTL delete"
            );
            break;
        }
        assert!(
            started.elapsed() < SWEEP_TIMEOUT,
            "the sweeper did not catch up within {SWEEP_TIMEOUT:?} once space was freed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_enospc_inside_a_commit_poisons_the_store_with_a_disk_full_message_naming_the_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let dir_text = dir.path().display().to_string();
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    // Commits 1 and 2 create the database and the container; the first item write fails.
    let store = open_store(
        dir.path(),
        StoreOptions {
            fault_plan: Some(Arc::new(FaultPlan::new(3, FaultAction::FailNoSpace))),
            ..quiet_options(&clock)
        },
    );
    create_container(&runtime, &store, definition(), 1);
    let write = |id: &str| {
        runtime.block_on(store.write_item(
            DATABASE,
            CONTAINER,
            ItemWrite::create(json!({"id": id, "pk": "a"})),
        ))
    };
    match write("lost") {
        Err(StoreError::CommitFailed(reason)) => {
            assert!(
                reason.starts_with(&format!(
                    "disk full: the disk holding {dir_text} ran out of space during a commit; \
                     the free-space reserve of 256 MiB was too small ("
                )),
                "{reason}"
            );
        }
        other => panic!("expected CommitFailed, got {other:?}"),
    }
    match write("later") {
        Err(StoreError::Poisoned(reason)) => assert!(reason.contains("disk full"), "{reason}"),
        other => panic!("expected Poisoned, got {other:?}"),
    }
    assert!(
        all_versions(&store).is_empty(),
        "reads still work, and the failed write is not visible"
    );
}

#[test]
fn the_operating_systems_free_space_is_what_the_reserve_is_checked_against() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let write = |store: &Store, id: &str| {
        runtime.block_on(store.write_item(
            DATABASE,
            CONTAINER,
            ItemWrite::create(json!({"id": id, "pk": "a"})),
        ))
    };
    {
        let store = open_store(
            dir.path(),
            StoreOptions {
                min_free_disk_bytes: 0,
                ..quiet_options(&clock)
            },
        );
        create_container(&runtime, &store, definition(), 1);
        write(&store, "kept").expect("no reserve: the write commits");
    }
    // No disk has this much free: `statvfs` itself refuses the write.
    let store = open_store(
        dir.path(),
        StoreOptions {
            min_free_disk_bytes: u64::MAX,
            ..quiet_options(&clock)
        },
    );
    match write(&store, "refused") {
        Err(StoreError::DiskFull {
            path,
            free_bytes,
            reserve_bytes,
        }) => {
            assert_eq!(path, dir.path());
            assert!(free_bytes > 0, "the disk's real free space");
            assert_eq!(reserve_bytes, u64::MAX);
        }
        other => panic!("expected DiskFull, got {other:?}"),
    }
    store
        .read_item(DATABASE, CONTAINER, &pk("a"), "kept")
        .expect("reads do not look at the reserve");
}

/// Free space that is plenty up to a chosen measurement and short after it, until freed: a
/// disk that fills between a write's own check and the work that follows its commit.
struct RunsOut {
    n_measurements: AtomicU64,
    /// The last measurement (1-based) that sees plenty.
    last_plenty: AtomicU64,
}

impl RunsOut {
    /// The next measurement sees plenty, every later one a full disk.
    fn after_next_measurement(&self) {
        let next = self.n_measurements.load(Ordering::SeqCst) + 1;
        self.last_plenty.store(next, Ordering::SeqCst);
    }

    /// Plenty from now on.
    fn free(&self) {
        self.last_plenty.store(u64::MAX, Ordering::SeqCst);
    }
}

impl DiskSpace for RunsOut {
    fn free_bytes(&self, _path: &Path) -> std::io::Result<u64> {
        let n = self.n_measurements.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(if n <= self.last_plenty.load(Ordering::SeqCst) {
            PLENTY_BYTES
        } else {
            SHORT_BYTES
        })
    }
}

#[test]
fn an_automatic_split_waits_when_the_disk_fills_after_the_write_that_triggers_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let disk = Arc::new(RunsOut {
        n_measurements: AtomicU64::new(0),
        last_plenty: AtomicU64::new(u64::MAX),
    });
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let store = open_store(
        dir.path(),
        StoreOptions {
            // Any range holding an item is past the threshold: every write triggers a split.
            split_threshold_bytes: Some(1),
            min_free_disk_bytes: RESERVE_BYTES,
            disk_space_check_interval: Duration::ZERO,
            disk_space: Arc::clone(&disk) as Arc<dyn DiskSpace>,
            ..quiet_options(&clock)
        },
    );
    create_container(&runtime, &store, definition(), 1);
    let n_current_ranges = || {
        store
            .read_container(DATABASE, CONTAINER)
            .expect("the container")
            .feed_ranges
            .iter()
            .filter(|range| range.is_current())
            .count()
    };
    let write = |id: &str| {
        runtime
            .block_on(store.write_item(
                DATABASE,
                CONTAINER,
                ItemWrite::create(json!({"id": id, "pk": id})),
            ))
            .expect("the write's own check saw space")
    };

    disk.after_next_measurement();
    write("first");
    assert_eq!(n_current_ranges(), 1, "no split on a full disk");
    disk.free();
    write("second");
    // Each split's commit looks for oversized ranges again, and with a 1-byte threshold the
    // children are oversized too: many splits, at least one.
    assert!(
        n_current_ranges() > 1,
        "the split happens once space is back"
    );
}
