//! Point reads see one moment: a read racing replaces of the same item always finds a
//! version (never the pointer of one version and the missing feed entry of another).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tributary_store::{ContainerDefinition, ItemWrite, Store, StoreOptions};

use crate::support::{DATABASE, create_container, open_store, pk, runtime};

const CONTAINER: &str = "hot";
/// Items replaced and read over and over.
const N_ITEMS: usize = 4;
/// How long the race runs; reads per second vary with the machine, correctness does not.
const RACE: Duration = Duration::from_secs(3);

#[test]
fn reads_racing_replaces_of_the_same_items_always_find_a_version() {
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = runtime();
    let store = Arc::new(open_store(dir.path(), StoreOptions::relaxed()));
    create_container(
        &runtime,
        &store,
        ContainerDefinition::new(CONTAINER, "/pk"),
        1,
    );
    let upsert = |store: &Store, n: usize, version: u64| {
        let write =
            ItemWrite::upsert(json!({ "id": format!("item-{n}"), "pk": "p", "version": version }));
        runtime
            .block_on(store.write_item(DATABASE, CONTAINER, write))
            .expect("upserted");
    };
    for n in 0..N_ITEMS {
        upsert(&store, n, 0);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let n_reads = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = (0..2)
        .map(|reader| {
            let (store, stop, n_reads) =
                (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&n_reads));
            std::thread::spawn(move || {
                let key = pk("p");
                let mut n = reader;
                while !stop.load(Ordering::Relaxed) {
                    let id = format!("item-{}", n % N_ITEMS);
                    if let Err(error) = store.read_item(DATABASE, CONTAINER, &key, &id) {
                        stop.store(true, Ordering::Relaxed);
                        return Err(format!("reading {id}: {error}"));
                    }
                    n_reads.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
                Ok(())
            })
        })
        .collect();
    let started = Instant::now();
    let mut version = 1;
    while started.elapsed() < RACE && !stop.load(Ordering::Relaxed) {
        for n in 0..N_ITEMS {
            upsert(&store, n, version);
        }
        version += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader
            .join()
            .expect("the reader ran")
            .expect("every read found a version");
    }
    assert!(
        n_reads.load(Ordering::Relaxed) > 0 && version > 1,
        "the race ran"
    );
}
