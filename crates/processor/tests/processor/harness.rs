//! Shared pieces: a store with a monitored container, a recording handler, waiting helpers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tributary_processor::{BatchContext, Change, ChangeFeedEstimator, HandlerError};
use tributary_store::{ContainerDefinition, ItemWrite, Store, StoreOptions};

/// Longest any wait in a test may take: every test stays bounded.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A store in a temporary directory with database `db`, container `orders` (partition key
/// `/pk`, `n_ranges` feed ranges) and nothing else.
pub async fn store_with_orders(n_ranges: u32) -> (Arc<Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(Store::open(dir.path(), StoreOptions::relaxed()).expect("store opens"));
    store.create_database("db").await.expect("database");
    let mut definition = ContainerDefinition::new("orders", "/pk");
    definition.change_feed_retention_minutes = Some(60);
    store
        .create_container("db", definition, n_ranges)
        .await
        .expect("container");
    (store, dir)
}

/// Writes items `from..to` (ids `o{n}`, 16 partition keys).
pub async fn write_orders(store: &Store, from: u32, to: u32) {
    for n in from..to {
        store
            .write_item(
                "db",
                "orders",
                ItemWrite::upsert(
                    json!({"id": format!("o{n}"), "pk": format!("k{}", n % 16), "n": n}),
                ),
            )
            .await
            .expect("write");
    }
}

/// What handlers saw: change id -> times delivered, and per-lease batches.
#[derive(Clone, Default)]
pub struct Seen {
    inner: Arc<Mutex<SeenState>>,
}

#[derive(Default)]
struct SeenState {
    deliveries: BTreeMap<String, u32>,
    n_batches: u64,
}

impl Seen {
    /// Records a batch.
    pub fn record(&self, changes: &[Change]) {
        let mut state = self.inner.lock().unwrap();
        state.n_batches += 1;
        for change in changes {
            let value = change.value().expect("a change is JSON");
            let id = value
                .get("id")
                .or_else(|| value.get("current").and_then(|c| c.get("id")))
                .or_else(|| value.get("previous").and_then(|c| c.get("id")))
                .and_then(|id| id.as_str())
                .unwrap_or("?")
                .to_owned();
            *state.deliveries.entry(id).or_default() += 1;
        }
    }

    /// Distinct ids seen.
    pub fn n_distinct(&self) -> usize {
        self.inner.lock().unwrap().deliveries.len()
    }

    /// Total deliveries.
    pub fn n_deliveries(&self) -> u64 {
        self.inner
            .lock()
            .unwrap()
            .deliveries
            .values()
            .map(|n| u64::from(*n))
            .sum()
    }

    /// Whether `id` was delivered.
    pub fn contains(&self, id: &str) -> bool {
        self.inner.lock().unwrap().deliveries.contains_key(id)
    }

    /// A handler that records and succeeds.
    pub fn handler(
        &self,
    ) -> impl Fn(BatchContext, Vec<Change>) -> std::future::Ready<Result<(), HandlerError>>
    + Send
    + Sync
    + 'static {
        let seen = self.clone();
        move |_context, changes| {
            seen.record(&changes);
            std::future::ready(Ok(()))
        }
    }
}

/// Waits until `condition` holds, or fails the test after [`TEST_TIMEOUT`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TEST_TIMEOUT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the estimator finds no pending change on any lease (every checkpoint at the
/// end of its feed), or fails the test after [`TEST_TIMEOUT`].
pub async fn wait_for_no_pending(estimator: &ChangeFeedEstimator) {
    let deadline = tokio::time::Instant::now() + TEST_TIMEOUT;
    loop {
        let estimates = estimator.estimate().await.expect("an estimate");
        if estimates.iter().all(|estimate| estimate.pending == 0) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the checkpoints never reached the end: {estimates:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
