//! Helpers shared by the test modules: opening stores, building keys, draining feeds, naming
//! errors.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tributary_partition_key::PartitionKey;
use tributary_store::{
    Clock, ContainerDefinition, FeedMode, FeedPage, FeedRequest, FeedScope, FeedStart, ManualClock,
    Store, StoreError, StoreOptions,
};

/// The database every test uses.
pub const DATABASE: &str = "db";

/// Most pages one drain may read before the test calls it a runaway feed.
const MAX_PAGES: usize = 100_000;

/// How long [`open_store`] retries while a just-closed store still holds the lock.
const OPEN_RETRY_LIMIT: Duration = Duration::from_secs(10);

/// A single-component partition key value.
pub fn pk(value: &str) -> PartitionKey {
    PartitionKey::from_json(&Value::String(value.to_owned())).expect("a string is a partition key")
}

/// A wall-clock start for manual clocks: 2023-11-14, in milliseconds.
pub const START_MS: u64 = 1_700_000_000_000;

/// Relaxed durability, a manual clock, and no background maintenance (so that nothing
/// happens between the operations a test performs).
pub fn quiet_options(clock: &Arc<ManualClock>) -> StoreOptions {
    StoreOptions {
        clock: Arc::clone(clock) as Arc<dyn Clock>,
        maintenance_interval: Duration::from_secs(3600),
        ..StoreOptions::relaxed()
    }
}

/// Opens a store, retrying briefly if the previous owner of the directory is still
/// releasing it.
pub fn open_store(dir: &Path, options: StoreOptions) -> Store {
    let started = Instant::now();
    loop {
        match Store::open(dir, options.clone()) {
            Ok(store) => return store,
            Err(StoreError::Locked { .. }) if started.elapsed() < OPEN_RETRY_LIMIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(error) => panic!("cannot open the store in {}: {error}", dir.display()),
        }
    }
}

/// Creates database [`DATABASE`] and `definition`'s container in it, with `n_ranges` feed
/// ranges.
pub fn create_container(
    runtime: &tokio::runtime::Runtime,
    store: &Store,
    definition: ContainerDefinition,
    n_ranges: u32,
) {
    runtime
        .block_on(store.create_database(DATABASE))
        .expect("database created");
    runtime
        .block_on(store.create_container(DATABASE, definition, n_ranges))
        .expect("container created");
}

/// A current-thread runtime for driving the store's async API from a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime starts")
}

/// The LSN of one change as the feed reports it: `_lsn` of the item in latest-version mode,
/// `metadata.lsn` in all-versions mode.
pub fn change_lsn(mode: FeedMode, change: &str) -> u64 {
    let value: Value = serde_json::from_str(change).expect("feed changes are JSON");
    let lsn = match mode {
        FeedMode::LatestVersion => &value["_lsn"],
        FeedMode::AllVersionsAndDeletes => &value["metadata"]["lsn"],
    };
    lsn.as_u64()
        .unwrap_or_else(|| panic!("change without an LSN: {change}"))
}

/// Reads a feed from `start` to its end, `max_items` per page, alternating between
/// [`FeedStart::AfterLsn`] and [`FeedStart::Continuation`] to continue. Checks what every
/// paginated read must satisfy: LSNs strictly increase across pages, a full page ends at
/// its last change, positions never move back, and the last page reaches the high LSN.
///
/// # Errors
/// The first failing read's error.
pub fn drain_feed(
    store: &Store,
    container: &str,
    scope: &FeedScope,
    start: FeedStart,
    mode: FeedMode,
    max_items: usize,
) -> Result<Vec<FeedPage>, StoreError> {
    let mut request = FeedRequest {
        scope: scope.clone(),
        start,
        mode,
        max_items,
    };
    let mut pages: Vec<FeedPage> = Vec::new();
    for n in 0..MAX_PAGES {
        let page = store.read_feed(DATABASE, container, &request)?;
        let done = page.changes.len() < max_items;
        request.start = if n % 2 == 0 {
            FeedStart::AfterLsn(page.lsn)
        } else {
            FeedStart::Continuation(page.continuation.clone())
        };
        pages.push(page);
        if done {
            check_pages(&pages, mode, max_items);
            return Ok(pages);
        }
    }
    panic!("the feed of {container} did not end within {MAX_PAGES} pages");
}

fn check_pages(pages: &[FeedPage], mode: FeedMode, max_items: usize) {
    let mut previous_lsn = 0;
    let mut previous_position = 0;
    for page in pages {
        assert!(
            page.changes.len() <= max_items,
            "a page holds at most max_items changes"
        );
        for change in &page.changes {
            let lsn = change_lsn(mode, change);
            assert!(
                lsn > previous_lsn,
                "feed LSNs must strictly increase: {lsn} after {previous_lsn}"
            );
            previous_lsn = lsn;
        }
        assert!(
            page.lsn >= previous_position,
            "a feed position never moves back"
        );
        previous_position = page.lsn;
        if page.changes.len() == max_items {
            assert_eq!(
                page.lsn, previous_lsn,
                "a full page ends at its last change"
            );
        }
    }
    let last = pages.last().expect("a drain reads at least one page");
    assert!(
        last.lsn >= last.high_lsn,
        "the last page reaches the high LSN"
    );
}

/// Every change of a drain, in order.
pub fn changes(pages: &[FeedPage]) -> Vec<String> {
    pages
        .iter()
        .flat_map(|page| page.changes.iter().cloned())
        .collect()
}

/// The ids of a container's latest-version feed, from the beginning, in feed order (a
/// container-wide read merges ranges by LSN: commit order).
pub fn latest_feed_ids(store: &Store, container: &str) -> Vec<String> {
    let pages = drain_feed(
        store,
        container,
        &FeedScope::Container,
        FeedStart::Beginning,
        FeedMode::LatestVersion,
        1000,
    )
    .expect("the feed reads");
    changes(&pages)
        .iter()
        .map(|change| {
            let change: Value = serde_json::from_str(change).expect("changes are JSON");
            change["id"].as_str().expect("an id").to_owned()
        })
        .collect()
}

/// The name of a store error's variant, for tests that compare expected failures as data;
/// errors no test expects are "another error".
pub fn error_variant(error: &StoreError) -> &'static str {
    match error {
        StoreError::DatabaseNotFound(_) => "DatabaseNotFound",
        StoreError::ContainerNotFound { .. } => "ContainerNotFound",
        StoreError::ItemNotFound(_) => "ItemNotFound",
        StoreError::ItemExists(_) => "ItemExists",
        StoreError::PreconditionFailed(_) => "PreconditionFailed",
        StoreError::BadRequest(_) => "BadRequest",
        StoreError::Poisoned(_) => "Poisoned",
        StoreError::CommitFailed(_) => "CommitFailed",
        _ => "another error",
    }
}

/// Rewrites every container record (`meta` keys `co\0...`) of a closed store with `edit`,
/// through fjall directly: how a test makes a store look as an older release wrote it.
pub fn rewrite_container_records(dir: &Path, edit: impl Fn(&mut Value)) {
    let database = fjall::Database::builder(dir).open().expect("fjall opens");
    let meta = database
        .keyspace("meta", fjall::KeyspaceCreateOptions::default)
        .expect("meta keyspace");
    let records: Vec<(Vec<u8>, Vec<u8>)> = meta
        .prefix(b"co\0")
        .map(|guard| {
            let (key, value) = guard.into_inner().expect("a container record");
            (key.to_vec(), value.to_vec())
        })
        .collect();
    assert!(!records.is_empty());
    for (key, value) in records {
        let mut record: Value = serde_json::from_slice(&value).expect("JSON record");
        edit(&mut record);
        meta.insert(key, serde_json::to_vec(&record).expect("JSON"))
            .expect("record rewritten");
    }
    database
        .persist(fjall::PersistMode::SyncAll)
        .expect("persisted");
}
