//! The range index: lookups return exactly the live items whose values they select, after
//! any sequence of creates, replaces and deletes; a changed indexing policy is built in the
//! background before queries use it; the index survives a restart.

use std::collections::BTreeMap;
use std::ops::{Bound, ControlFlow};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::{Value, json};
use tributary_index::{IndexPath, Lookup, LookupKind, Scalar, Step};
use tributary_store::{
    Clock, ContainerDefinition, FeedScope, ItemWrite, ManualClock, Store, StoreOptions,
};

use crate::support::{
    DATABASE, START_MS, create_container, open_store, pk, quiet_options, rewrite_container_records,
    runtime,
};

const CONTAINER: &str = "indexed";
/// How long a test waits for a background index build.
const BUILD_TIMEOUT: Duration = Duration::from_secs(20);

fn path(names: &[&str]) -> IndexPath {
    IndexPath(
        names
            .iter()
            .map(|name| match *name {
                "[]" => Step::Element,
                name => Step::Property(name.to_owned()),
            })
            .collect(),
    )
}

/// Options whose maintenance passes (which build indexes) come every 10 ms.
fn building_options(clock: &Arc<ManualClock>) -> StoreOptions {
    StoreOptions {
        clock: Arc::clone(clock) as Arc<dyn Clock>,
        maintenance_interval: Duration::from_millis(10),
        ..StoreOptions::relaxed()
    }
}

/// The ids of the items `lookup` selects, in index order; each at most once.
fn looked_up(store: &Store, lookup: &Lookup, scope: &FeedScope) -> Vec<String> {
    let mut ids = Vec::new();
    store
        .visit_indexed_items(DATABASE, CONTAINER, scope, (lookup, None), |_, body| {
            let item: Value = serde_json::from_str(body).expect("items are JSON");
            ids.push(item["id"].as_str().expect("an id").to_owned());
            ControlFlow::Continue(())
        })
        .expect("the lookup reads");
    ids
}

/// Whether a scalar at some value of `item` at `steps` satisfies `test`.
fn any_value(item: &Value, steps: &[Step], test: &dyn Fn(&Value) -> bool) -> bool {
    match (steps.split_first(), item) {
        (None, Value::Array(_) | Value::Object(_)) => false,
        (None, value) => test(value),
        (Some((Step::Property(name), rest)), Value::Object(object)) => object
            .get(name)
            .is_some_and(|child| any_value(child, rest, test)),
        (Some((Step::Element, rest)), Value::Array(elements)) => elements
            .iter()
            .any(|element| any_value(element, rest, test)),
        _ => false,
    }
}

/// What a lookup should select of `item`, by the values' own comparison.
fn selects(lookup: &Lookup, item: &Value) -> bool {
    let same = |value: &Value, scalar: &Scalar| match (value, scalar) {
        (Value::Null, Scalar::Null) => true,
        (Value::Bool(a), Scalar::Bool(b)) => a == b,
        (Value::Number(a), Scalar::Number(b)) => a.as_f64() == Some(*b),
        (Value::String(a), Scalar::String(b)) => a == b,
        _ => false,
    };
    let test: Box<dyn Fn(&Value) -> bool> = match &lookup.kind {
        LookupKind::Equal(values) => {
            Box::new(move |value| values.iter().any(|scalar| same(value, scalar)))
        }
        LookupKind::Prefix(prefix) => Box::new(move |value| {
            value
                .as_str()
                .is_some_and(|s| s.starts_with(prefix.as_str()))
        }),
        LookupKind::Range { low, high } => Box::new(move |value| {
            let compare = |bound: &Scalar| match (value, bound) {
                (Value::Number(v), Scalar::Number(b)) => v.as_f64().and_then(|v| v.partial_cmp(b)),
                (Value::String(v), Scalar::String(b)) => Some(v.as_str().cmp(b.as_str())),
                _ => None,
            };
            let above = match low {
                Bound::Unbounded => None,
                Bound::Included(b) => Some(compare(b).is_some_and(|o| o.is_ge())),
                Bound::Excluded(b) => Some(compare(b).is_some_and(|o| o.is_gt())),
            };
            let below = match high {
                Bound::Unbounded => None,
                Bound::Included(b) => Some(compare(b).is_some_and(|o| o.is_le())),
                Bound::Excluded(b) => Some(compare(b).is_some_and(|o| o.is_lt())),
            };
            // An unbounded side reaches to the end of the other side's type.
            above.unwrap_or(true) && below.unwrap_or(true) && (above.is_some() || below.is_some())
        }),
    };
    any_value(item, lookup.path.steps(), &*test)
}

fn lookups() -> Vec<Lookup> {
    vec![
        Lookup {
            path: path(&["a"]),
            kind: LookupKind::Equal(vec![Scalar::Number(1.0)]),
        },
        Lookup {
            path: path(&["a"]),
            kind: LookupKind::Equal(vec![
                Scalar::String("b".into()),
                Scalar::Null,
                Scalar::Bool(true),
            ]),
        },
        Lookup::range(
            path(&["a"]),
            Bound::Excluded(Scalar::Number(1.0)),
            Bound::Included(Scalar::Number(3.0)),
        )
        .unwrap(),
        Lookup::range(
            path(&["a"]),
            Bound::Included(Scalar::String("b".into())),
            Bound::Unbounded,
        )
        .unwrap(),
        Lookup {
            path: path(&["a"]),
            kind: LookupKind::Prefix("c".into()),
        },
        Lookup {
            path: path(&["tags", "[]"]),
            kind: LookupKind::Equal(vec![Scalar::Number(2.0)]),
        },
        Lookup {
            path: path(&["nested", "x"]),
            kind: LookupKind::Equal(vec![Scalar::Number(0.0)]),
        },
        Lookup::range(
            path(&["_ts"]),
            Bound::Included(Scalar::Number(0.0)),
            Bound::Unbounded,
        )
        .unwrap(),
    ]
}

/// One write of the random sequences.
#[derive(Clone, Debug)]
enum Op {
    Upsert {
        id: u8,
        a: Option<Value>,
        tags: Vec<u8>,
        nested: Option<i8>,
    },
    Delete {
        id: u8,
    },
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0u8..5).prop_map(|n| json!(n)),
        (0u8..4).prop_map(|n| json!(f64::from(n) + 0.5)),
        "[a-d]{0,2}".prop_map(Value::String),
        Just(json!({"a": 1})),
        Just(json!([1, "b"])),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..12, proptest::option::of(scalar()), proptest::collection::vec(0u8..4, 0..4), proptest::option::of(-1i8..2))
            .prop_map(|(id, a, tags, nested)| Op::Upsert { id, a, tags, nested }),
        1 => (0u8..12).prop_map(|id| Op::Delete { id }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// After any sequence of writes, each lookup returns exactly the live items whose values
    /// it selects, each once, for the container and for one partition key.
    #[test]
    fn lookups_return_exactly_the_items_they_select(ops in proptest::collection::vec(op(), 1..60)) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let clock = Arc::new(ManualClock::new(START_MS));
        let runtime = runtime();
        let store = open_store(dir.path(), quiet_options(&clock));
        create_container(&runtime, &store, ContainerDefinition::new(CONTAINER, "/pk"), 2);
        let mut model: BTreeMap<String, Value> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Upsert { id, a, tags, nested } => {
                    let mut item = json!({"id": format!("i{id}"), "pk": format!("p{}", id % 3), "tags": tags});
                    if let Some(a) = a {
                        item["a"] = a;
                    }
                    if let Some(x) = nested {
                        item["nested"] = json!({"x": x});
                    }
                    let written = runtime
                        .block_on(store.write_item(DATABASE, CONTAINER, ItemWrite::upsert(item)))
                        .expect("upsert")
                        .item
                        .expect("the new version");
                    model.insert(written.id.clone(), serde_json::from_str(&written.body).unwrap());
                }
                Op::Delete { id } => {
                    let id = format!("i{id}");
                    if model.remove(&id).is_some() {
                        runtime
                            .block_on(store.write_item(DATABASE, CONTAINER, ItemWrite::delete(pk(&format!("p{}", &id[1..].parse::<u8>().unwrap() % 3)), id)))
                            .expect("delete");
                    }
                }
            }
        }
        for lookup in lookups() {
            prop_assert!(store.usable_lookup(DATABASE, CONTAINER, std::slice::from_ref(&lookup)).unwrap().is_some());
            let mut found = looked_up(&store, &lookup, &FeedScope::Container);
            let mut expected: Vec<String> = model
                .iter()
                .filter(|(_, item)| selects(&lookup, item))
                .map(|(id, _)| id.clone())
                .collect();
            let n_found = found.len();
            found.sort();
            found.dedup();
            prop_assert_eq!(n_found, found.len(), "an item came twice from {:?}", lookup);
            expected.sort();
            prop_assert_eq!(&found, &expected, "lookup {:?}", lookup);
            let key_scope = FeedScope::PartitionKey(pk("p1"));
            let mut in_key = looked_up(&store, &lookup, &key_scope);
            in_key.sort();
            let expected_in_key: Vec<String> = expected
                .iter()
                .filter(|id| model[*id]["pk"] == "p1")
                .cloned()
                .collect();
            prop_assert_eq!(in_key, expected_in_key, "lookup {:?} in one key", lookup);
        }
    }
}

#[test]
fn a_changed_policy_is_built_in_the_background_before_queries_use_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let options = building_options(&clock);
    let store = open_store(dir.path(), options.clone());
    let excluding_a = ContainerDefinition {
        indexing_policy: Some(json!({
            "includedPaths": [{"path": "/*"}],
            "excludedPaths": [{"path": "/a/?"}],
        })),
        ..ContainerDefinition::new(CONTAINER, "/pk")
    };
    create_container(&runtime, &store, excluding_a.clone(), 1);
    // More items than one maintenance pass indexes.
    let n_items = 5_000;
    for chunk in (0..n_items).collect::<Vec<_>>().chunks(100) {
        let writes = chunk
            .iter()
            .map(|i| ItemWrite::create(json!({"id": format!("i{i}"), "pk": format!("p{}", i % 7), "a": i % 10, "b": i})))
            .collect();
        for outcome in runtime
            .block_on(store.write_items(DATABASE, CONTAINER, writes))
            .expect("bulk")
        {
            outcome.expect("created");
        }
    }
    let on_a = Lookup {
        path: path(&["a"]),
        kind: LookupKind::Equal(vec![Scalar::Number(3.0)]),
    };
    let on_b = Lookup::range(
        path(&["b"]),
        Bound::Unbounded,
        Bound::Excluded(Scalar::Number(10.0)),
    )
    .unwrap();
    let usable = |lookup: &Lookup| {
        store
            .usable_lookup(DATABASE, CONTAINER, std::slice::from_ref(lookup))
            .unwrap()
            .is_some()
    };
    assert!(!usable(&on_a), "an excluded path is not indexed");
    assert!(usable(&on_b));
    assert_eq!(looked_up(&store, &on_b, &FeedScope::Container).len(), 10);
    assert_eq!(
        store
            .read_container(DATABASE, CONTAINER)
            .unwrap()
            .index_progress_percent,
        100
    );

    let everything = ContainerDefinition {
        indexing_policy: None,
        ..excluding_a
    };
    runtime
        .block_on(store.replace_container(DATABASE, everything))
        .expect("replaced");
    let started = Instant::now();
    let mut progress_seen = Vec::new();
    while !usable(&on_a) {
        progress_seen.push(
            store
                .read_container(DATABASE, CONTAINER)
                .unwrap()
                .index_progress_percent,
        );
        assert!(
            started.elapsed() < BUILD_TIMEOUT,
            "the build did not finish: {progress_seen:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        progress_seen.iter().all(|&p| p < 100),
        "progress stays below 100 until built: {progress_seen:?}"
    );
    assert_eq!(
        store
            .read_container(DATABASE, CONTAINER)
            .unwrap()
            .index_progress_percent,
        100
    );
    let found = looked_up(&store, &on_a, &FeedScope::Container);
    assert_eq!(
        found.len(),
        n_items / 10,
        "every item with a = 3, found through the new index"
    );
    assert_eq!(looked_up(&store, &on_b, &FeedScope::Container).len(), 10);

    // A restart keeps the index.
    store.close();
    drop(store);
    let store = open_store(dir.path(), options);
    let mut ids = Vec::new();
    store
        .visit_indexed_items(
            DATABASE,
            CONTAINER,
            &FeedScope::Container,
            (&on_a, None),
            |_, body| {
                ids.push(serde_json::from_str::<Value>(body).unwrap()["id"].clone());
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(ids.len(), n_items / 10);
}

#[test]
fn a_read_resumes_after_the_position_it_stopped_at() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let store = open_store(dir.path(), quiet_options(&clock));
    create_container(
        &runtime,
        &store,
        ContainerDefinition::new(CONTAINER, "/pk"),
        1,
    );
    for i in 0..20 {
        runtime
            .block_on(store.write_item(
                DATABASE,
                CONTAINER,
                ItemWrite::create(json!({"id": format!("i{i}"), "pk": "p", "n": i % 4})),
            ))
            .expect("create");
    }
    let lookup = Lookup::range(
        path(&["n"]),
        Bound::Included(Scalar::Number(1.0)),
        Bound::Unbounded,
    )
    .unwrap();
    let all = looked_up(&store, &lookup, &FeedScope::Container);
    assert_eq!(all.len(), 15);
    let mut resumed = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let mut page = Vec::new();
        let mut last = None;
        store
            .visit_indexed_items(
                DATABASE,
                CONTAINER,
                &FeedScope::Container,
                (&lookup, after.as_deref()),
                |position, body| {
                    page.push(
                        serde_json::from_str::<Value>(body).unwrap()["id"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    );
                    last = Some(position.to_vec());
                    if page.len() == 4 {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )
            .unwrap();
        if page.is_empty() {
            break;
        }
        resumed.extend(page);
        after = last;
    }
    assert_eq!(
        resumed, all,
        "pages of 4 read the same items in the same order"
    );
}

#[test]
fn reads_of_one_feed_range_find_its_items_before_and_after_a_split() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let store = open_store(dir.path(), quiet_options(&clock));
    create_container(
        &runtime,
        &store,
        ContainerDefinition::new(CONTAINER, "/pk"),
        2,
    );
    let write = |i: usize| {
        runtime
            .block_on(store.write_item(
                DATABASE,
                CONTAINER,
                ItemWrite::create(
                    json!({"id": format!("i{i}"), "pk": format!("p{i}"), "n": i % 3}),
                ),
            ))
            .expect("create");
    };
    (0..60).for_each(write);
    let lookup = Lookup {
        path: path(&["n"]),
        kind: LookupKind::Equal(vec![Scalar::Number(1.0)]),
    };
    let by_range = |store: &Store| {
        let properties = store.read_container(DATABASE, CONTAINER).expect("read");
        let mut ids: Vec<String> = properties
            .feed_ranges
            .iter()
            .flat_map(|range| looked_up(store, &lookup, &FeedScope::Range(range.id)))
            .collect();
        ids.sort();
        (properties.feed_ranges.len(), ids)
    };
    let mut expected: Vec<String> = looked_up(&store, &lookup, &FeedScope::Container);
    expected.sort();
    assert_eq!(expected.len(), 20);
    assert_eq!(by_range(&store), (2, expected.clone()));
    // After the split, the children's items sit in their parent's segment, and later
    // writes in their own: each range still finds exactly its items, once.
    runtime
        .block_on(store.split_range(DATABASE, CONTAINER, 0))
        .expect("split");
    (60..90).for_each(write);
    let mut expected: Vec<String> = looked_up(&store, &lookup, &FeedScope::Container);
    expected.sort();
    assert_eq!(expected.len(), 30);
    assert_eq!(by_range(&store), (3, expected));
}

/// Rewrites a closed store as one written before the index existed: container records
/// without their `index` state, and no index keys.
fn forget_the_index(dir: &std::path::Path) {
    rewrite_container_records(dir, |record| {
        record
            .as_object_mut()
            .expect("an object")
            .remove("index")
            .expect("an index state");
    });
    let database = fjall::Database::builder(dir).open().expect("fjall opens");
    database
        .delete_keyspace(
            database
                .keyspace("index", fjall::KeyspaceCreateOptions::default)
                .expect("index keyspace"),
        )
        .expect("index keyspace deleted");
    database
        .persist(fjall::PersistMode::SyncAll)
        .expect("persisted");
}

#[test]
fn a_store_written_before_the_index_builds_it_when_opened() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let clock = Arc::new(ManualClock::new(START_MS));
    let runtime = runtime();
    let options = building_options(&clock);
    {
        let store = open_store(dir.path(), options.clone());
        create_container(
            &runtime,
            &store,
            ContainerDefinition::new(CONTAINER, "/pk"),
            2,
        );
        for i in 0..300 {
            runtime
                .block_on(store.write_item(
                    DATABASE,
                    CONTAINER,
                    ItemWrite::create(
                        json!({"id": format!("i{i}"), "pk": format!("p{i}"), "n": i % 6}),
                    ),
                ))
                .expect("create");
        }
        store.close();
    }
    forget_the_index(dir.path());
    let store = open_store(dir.path(), options);
    let lookup = Lookup {
        path: path(&["n"]),
        kind: LookupKind::Equal(vec![Scalar::Number(2.0)]),
    };
    let started = Instant::now();
    while store
        .usable_lookup(DATABASE, CONTAINER, std::slice::from_ref(&lookup))
        .expect("container")
        .is_none()
    {
        assert!(
            started.elapsed() < BUILD_TIMEOUT,
            "the index was never built"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut found = looked_up(&store, &lookup, &FeedScope::Container);
    found.sort();
    let mut expected: Vec<String> = (0..300)
        .filter(|i| i % 6 == 2)
        .map(|i| format!("i{i}"))
        .collect();
    expected.sort();
    assert_eq!(found, expected);
}
