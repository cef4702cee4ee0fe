//! Feed positions taken before a split resume on the children: every remaining change once,
//! nothing lost, nothing repeated; readers of a split range are told its current ranges.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};
use tributary_store::{
    ContainerDefinition, FeedMode, FeedPage, FeedRequest, FeedScope, FeedStart, ItemWrite,
    ManualClock, RangeRecord, Store, StoreError,
};

use crate::support::{
    DATABASE, START_MS, change_lsn, changes, drain_feed, open_store, pk, quiet_options, runtime,
};

const CONTAINER: &str = "split";
const N_ITEMS: usize = 40;
/// Items deleted before the splits of `split_ranges_tile_the_key_space_and_survive_reopening`.
const N_DELETED: usize = 7;

struct Fixture {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    store: Store,
}

fn fixture(retention_minutes: Option<u64>) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let runtime = runtime();
    let store = open_store(
        dir.path(),
        quiet_options(&Arc::new(ManualClock::new(START_MS))),
    );
    runtime
        .block_on(store.create_database(DATABASE))
        .expect("database created");
    let definition = ContainerDefinition {
        change_feed_retention_minutes: retention_minutes,
        ..ContainerDefinition::new(CONTAINER, "/pk")
    };
    runtime
        .block_on(store.create_container(DATABASE, definition, 1))
        .expect("container created");
    Fixture {
        _dir: dir,
        runtime,
        store,
    }
}

impl Fixture {
    /// Upserts item `n` (one partition key per item) and returns its LSN.
    fn upsert(&self, n: usize, v: u64) -> u64 {
        let body = json!({"id": format!("item-{n}"), "pk": format!("p{n}"), "v": v});
        self.runtime
            .block_on(
                self.store
                    .write_item(DATABASE, CONTAINER, ItemWrite::upsert(body)),
            )
            .expect("upsert succeeds")
            .item
            .expect("item")
            .lsn
    }

    fn split(&self, range_id: u32) -> Vec<RangeRecord> {
        self.runtime
            .block_on(self.store.split_range(DATABASE, CONTAINER, range_id))
            .unwrap_or_else(|e| panic!("split of range {range_id}: {e}"))
    }

    fn read(
        &self,
        scope: FeedScope,
        start: FeedStart,
        max_items: usize,
    ) -> Result<FeedPage, StoreError> {
        self.store.read_feed(
            DATABASE,
            CONTAINER,
            &FeedRequest {
                scope,
                start,
                mode: FeedMode::LatestVersion,
                max_items,
            },
        )
    }

    /// Every latest-version change of a range from `start`, as `(lsn, id)`.
    fn drain_range(&self, range_id: u32, start: FeedStart) -> Vec<(u64, String)> {
        let pages = drain_feed(
            &self.store,
            CONTAINER,
            &FeedScope::Range(range_id),
            start,
            FeedMode::LatestVersion,
            4,
        )
        .unwrap_or_else(|e| panic!("reading range {range_id}: {e}"));
        changes(&pages)
            .iter()
            .map(|change| {
                let value: Value = serde_json::from_str(change).expect("JSON");
                (
                    change_lsn(FeedMode::LatestVersion, change),
                    value["id"].as_str().expect("id").to_owned(),
                )
            })
            .collect()
    }

    fn epk_of(&self, n: usize) -> String {
        self.store
            .effective_partition_key(DATABASE, CONTAINER, &pk(&format!("p{n}")))
            .expect("string keys hash")
            .as_str()
            .to_owned()
    }
}

fn assert_gone(result: Result<FeedPage, StoreError>, range_id: u32, children: &[u32]) {
    match result {
        Err(StoreError::RangeGone {
            range_id: gone,
            replaced_by,
        }) => {
            assert_eq!(gone, range_id.to_string());
            let expected: Vec<String> = children.iter().map(u32::to_string).collect();
            assert_eq!(
                replaced_by, expected,
                "a gone range names its current descendants"
            );
        }
        other => panic!("range {range_id} should be gone, got {other:?}"),
    }
}

/// The changes each child must return after `after`: the latest version of every item in
/// its span, in LSN order.
fn expected_in(
    latest: &BTreeMap<usize, u64>,
    fixture: &Fixture,
    range: &RangeRecord,
    after: u64,
) -> Vec<(u64, String)> {
    let mut expected: Vec<(u64, String)> = latest
        .iter()
        .filter(|(n, lsn)| {
            let epk = fixture.epk_of(**n);
            **lsn > after && range.min <= epk && epk < range.max
        })
        .map(|(n, lsn)| (*lsn, format!("item-{n}")))
        .collect();
    expected.sort();
    expected
}

#[test]
fn a_continuation_taken_before_a_split_resumes_on_each_child_without_loss_or_repeat() {
    let fixture = fixture(None);
    // Latest LSN of each item.
    let mut latest = BTreeMap::new();
    for n in 0..N_ITEMS {
        latest.insert(n, fixture.upsert(n, 0));
    }
    // A reader takes part of the feed and keeps its position.
    let page = fixture
        .read(FeedScope::Range(0), FeedStart::Beginning, 15)
        .expect("range 0 reads");
    assert_eq!(page.changes.len(), 15);
    let (position, continuation) = (page.lsn, page.continuation.clone());
    assert_eq!(position, 15);
    // Some items it has read and some it has not change before the split.
    for n in [1, 3, 20, 30] {
        latest.insert(n, fixture.upsert(n, 1));
    }
    let children = fixture.split(0);
    let child_ids: Vec<u32> = children.iter().map(|c| c.id).collect();
    // And more after it, landing in the children's own segments.
    for n in [2, 5, 21, 39] {
        latest.insert(n, fixture.upsert(n, 2));
    }
    assert_gone(
        fixture.read(
            FeedScope::Range(0),
            FeedStart::Continuation(continuation.clone()),
            10,
        ),
        0,
        &child_ids,
    );
    for start in [
        FeedStart::Continuation(continuation.clone()),
        FeedStart::AfterLsn(position),
    ] {
        let mut all: Vec<(u64, String)> = Vec::new();
        for child in &children {
            let got = fixture.drain_range(child.id, start.clone());
            assert_eq!(
                got,
                expected_in(&latest, &fixture, child, position),
                "child {} from {start:?}",
                child.id
            );
            all.extend(got);
        }
        let ids: BTreeSet<&String> = all.iter().map(|(_, id)| id).collect();
        assert_eq!(ids.len(), all.len(), "no item is returned by both children");
        let expected: BTreeSet<String> = latest
            .iter()
            .filter(|(_, lsn)| **lsn > position)
            .map(|(n, _)| format!("item-{n}"))
            .collect();
        assert_eq!(
            ids.into_iter().cloned().collect::<BTreeSet<_>>(),
            expected,
            "nothing is lost"
        );
    }
    // Splitting a child again: the original position still resumes on the grandchildren.
    let grandchildren = fixture.split(children[0].id);
    latest.insert(7, fixture.upsert(7, 3));
    let current: Vec<u32> = grandchildren
        .iter()
        .map(|c| c.id)
        .chain([children[1].id])
        .collect();
    assert_gone(
        fixture.read(FeedScope::Range(0), FeedStart::AfterLsn(position), 10),
        0,
        &{
            let mut sorted = current.clone();
            sorted.sort_unstable();
            sorted
        },
    );
    assert_gone(
        fixture.read(
            FeedScope::Range(children[0].id),
            FeedStart::Continuation(continuation.clone()),
            10,
        ),
        children[0].id,
        &grandchildren.iter().map(|c| c.id).collect::<Vec<_>>(),
    );
    let mut n_changes = 0;
    for range in grandchildren.iter().chain([&children[1]]) {
        let got = fixture.drain_range(range.id, FeedStart::Continuation(continuation.clone()));
        assert_eq!(
            got,
            expected_in(&latest, &fixture, range, position),
            "range {}",
            range.id
        );
        n_changes += got.len();
    }
    assert_eq!(
        n_changes,
        latest.values().filter(|lsn| **lsn > position).count()
    );
}

#[test]
fn splitting_a_split_range_names_its_current_descendants() {
    let fixture = fixture(None);
    for n in 0..N_ITEMS {
        fixture.upsert(n, 0);
    }
    let children = fixture.split(0);
    let grandchildren = fixture.split(children[0].id);
    let mut current: Vec<String> = grandchildren
        .iter()
        .chain([&children[1]])
        .map(|range| range.id.to_string())
        .collect();
    current.sort();
    match fixture
        .runtime
        .block_on(fixture.store.split_range(DATABASE, CONTAINER, 0))
    {
        Err(StoreError::RangeGone {
            range_id,
            replaced_by,
        }) => {
            assert_eq!(range_id, "0");
            assert_eq!(
                replaced_by, current,
                "the ranges to use now, not the gone child"
            );
        }
        other => panic!("splitting a split range must fail with RangeGone, got {other:?}"),
    }
    match fixture
        .runtime
        .block_on(fixture.store.split_range(DATABASE, CONTAINER, 999))
    {
        Err(error) => assert!(matches!(error, StoreError::RangeNotFound(_)), "{error}"),
        Ok(children) => panic!("range 999 does not exist, yet it split into {children:?}"),
    }
}

#[test]
fn split_ranges_tile_the_key_space_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let continuation;
    let before: Vec<RangeRecord>;
    {
        let store = open_store(dir.path(), quiet_options(&clock));
        runtime
            .block_on(store.create_database(DATABASE))
            .expect("database");
        runtime
            .block_on(store.create_container(
                DATABASE,
                ContainerDefinition::new(CONTAINER, "/pk"),
                1,
            ))
            .expect("container");
        for n in 0..N_ITEMS {
            let body = json!({"id": format!("item-{n}"), "pk": format!("p{n}")});
            runtime
                .block_on(store.write_item(DATABASE, CONTAINER, ItemWrite::create(body)))
                .expect("create");
        }
        let page = store
            .read_feed(
                DATABASE,
                CONTAINER,
                &FeedRequest {
                    scope: FeedScope::Range(0),
                    start: FeedStart::Beginning,
                    mode: FeedMode::LatestVersion,
                    max_items: 10,
                },
            )
            .expect("read");
        continuation = page.continuation;
        for n in 0..N_DELETED {
            runtime
                .block_on(store.write_item(
                    DATABASE,
                    CONTAINER,
                    ItemWrite::delete(pk(&format!("p{n}")), format!("item-{n}")),
                ))
                .expect("delete");
        }
        let children = runtime
            .block_on(store.split_range(DATABASE, CONTAINER, 0))
            .expect("split");
        runtime
            .block_on(store.split_range(DATABASE, CONTAINER, children[1].id))
            .expect("split again");
        // Each current range counts exactly its items, without a scan.
        let mut n_counted = 0;
        for range in store
            .read_container(DATABASE, CONTAINER)
            .expect("container")
            .feed_ranges
        {
            let scanned = store
                .scan_items(DATABASE, CONTAINER, &FeedScope::Range(range.id))
                .expect("scan")
                .len() as u64;
            assert_eq!(range.item_count, Some(scanned), "range {}", range.id);
            assert_eq!(
                store
                    .range_item_count(DATABASE, CONTAINER, range.id)
                    .expect("count"),
                scanned
            );
            n_counted += scanned;
        }
        assert_eq!(n_counted, (N_ITEMS - N_DELETED) as u64);
        assert!(matches!(
            store.range_item_count(DATABASE, CONTAINER, 0),
            Err(StoreError::RangeGone { .. })
        ));
        before = store
            .read_container(DATABASE, CONTAINER)
            .expect("container")
            .feed_ranges;
    }
    let store = open_store(dir.path(), quiet_options(&clock));
    let properties = store
        .read_container(DATABASE, CONTAINER)
        .expect("container");
    assert_eq!(properties.feed_ranges, before, "ranges survive reopening");
    assert_eq!(properties.high_lsn, (N_ITEMS + N_DELETED) as u64);
    let mut bounds: Vec<(&str, &str)> = before
        .iter()
        .map(|r| (r.min.as_str(), r.max.as_str()))
        .collect();
    bounds.sort_unstable();
    assert_eq!(bounds.first().map(|b| b.0), Some(""));
    assert_eq!(bounds.last().map(|b| b.1), Some("FF"));
    for pair in bounds.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "current ranges tile the key space");
    }
    let mut resumed = 0;
    for range in &before {
        let pages = drain_feed(
            &store,
            CONTAINER,
            &FeedScope::Range(range.id),
            FeedStart::Continuation(continuation.clone()),
            FeedMode::LatestVersion,
            3,
        )
        .expect("the pre-split continuation works after reopening");
        resumed += changes(&pages).len();
    }
    assert_eq!(resumed, N_ITEMS - 10, "the remaining changes, each once");
}

#[test]
fn all_versions_on_a_child_show_previous_images_written_before_the_split() {
    let fixture = fixture(Some(60));
    for n in 0..N_ITEMS {
        fixture.upsert(n, 0);
    }
    let position = N_ITEMS as u64;
    let children = fixture.split(0);
    let replaced = fixture.upsert(4, 1);
    for child in &children {
        let pages = drain_feed(
            &fixture.store,
            CONTAINER,
            &FeedScope::Range(child.id),
            FeedStart::AfterLsn(position),
            FeedMode::AllVersionsAndDeletes,
            5,
        )
        .expect("all-versions read of a child");
        let got = changes(&pages);
        if child.min <= fixture.epk_of(4) && fixture.epk_of(4) < child.max {
            assert_eq!(got.len(), 1, "child {}: {got:?}", child.id);
            let change: Value = serde_json::from_str(&got[0]).expect("JSON");
            assert_eq!(change["metadata"]["operationType"], "replace");
            assert_eq!(change["metadata"]["lsn"], json!(replaced));
            assert_eq!(
                change["metadata"]["previousImageLSN"],
                json!(5),
                "item-4 was written at LSN 5"
            );
            assert_eq!(
                change["previous"]["v"],
                json!(0),
                "the previous image comes from the parent's segment"
            );
            assert_eq!(change["current"]["v"], json!(1));
        } else {
            assert!(got.is_empty(), "child {}: {got:?}", child.id);
        }
    }
}

/// The live items of a scope as `(position, id)`, from `after` on.
fn visit(
    store: &Store,
    scope: &FeedScope,
    after: Option<tributary_store::ItemPosition>,
) -> Vec<(tributary_store::ItemPosition, String)> {
    let mut items = Vec::new();
    store
        .visit_items(DATABASE, CONTAINER, scope, after, |position, body| {
            let value: Value = serde_json::from_str(body).expect("JSON");
            items.push((position, value["id"].as_str().expect("id").to_owned()));
            std::ops::ControlFlow::Continue(())
        })
        .expect("the scope is read");
    items
}

#[test]
fn a_split_ranges_items_are_read_from_its_segments_and_resume_after_any_position() {
    let fixture = fixture(None);
    for n in 0..N_ITEMS {
        fixture.upsert(n, 1);
    }
    let children = fixture.split(0);
    // Writes after the split land in the children's own segments; some items move there.
    for n in (0..N_ITEMS).step_by(3) {
        fixture.upsert(n, 2);
    }
    for n in (1..N_ITEMS).step_by(5) {
        fixture
            .runtime
            .block_on(fixture.store.write_item(
                DATABASE,
                CONTAINER,
                ItemWrite::delete(pk(&format!("p{n}")), format!("item-{n}")),
            ))
            .expect("delete succeeds");
    }
    let grandchildren = fixture.split(children[1].id);
    for n in (0..N_ITEMS).step_by(4) {
        fixture.upsert(n, 3);
    }
    let whole = visit(&fixture.store, &FeedScope::Container, None);
    let current = [&children[0], &grandchildren[0], &grandchildren[1]];
    let mut seen = BTreeSet::new();
    for range in current {
        let span = range.epk_range();
        let expected: Vec<_> = whole
            .iter()
            .filter(|(_, id)| {
                let n: usize = id["item-".len()..].parse().expect("a number");
                span.contains(
                    &tributary_partition_key::Epk::parse(&fixture.epk_of(n)).expect("an EPK"),
                )
            })
            .cloned()
            .collect();
        let items = visit(&fixture.store, &FeedScope::Range(range.id), None);
        assert_eq!(items, expected, "range {}", range.id);
        for (i, (position, _)) in items.iter().enumerate() {
            assert_eq!(
                visit(&fixture.store, &FeedScope::Range(range.id), Some(*position)),
                items[i + 1..].to_vec(),
                "range {} after {position:?}",
                range.id
            );
        }
        seen.extend(items.into_iter().map(|(_, id)| id));
    }
    // Deleted, unless written again after the delete.
    let deleted = (1..N_ITEMS).step_by(5).filter(|n| n % 4 != 0).count();
    let live = N_ITEMS - deleted;
    assert_eq!(seen.len(), live, "every live item in exactly one range");
    assert_eq!(whole.len(), live);
}
