//! The processor over HTTP: a `RemoteFeed` and a `RemoteLeaseContainer` against an
//! in-process `tributary_server::Server` on a free port, with the long-poll extension (pushed
//! changes) and without it (polled, as against Azure Cosmos DB).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tributary_client::CosmosClient;
use tributary_processor::remote::{RemoteFeed, RemoteLeaseContainer};
use tributary_processor::{
    ChangeFeedEstimator, ChangeFeedProcessor, ChangeFeedProcessorBuilder, LeaseEstimate, StartFrom,
};
use tributary_server::{Server, ServerConfig};
use tributary_store::Store;
use tributary_wire::auth::EMULATOR_KEY;

use crate::harness::{Seen, store_with_orders, wait_for_no_pending, wait_until, write_orders};

/// A server over plain HTTP on a free port, serving a store with `db`/`orders`; stopped on
/// drop.
struct TestServer {
    /// The served store, for writes and splits straight into it.
    store: Arc<Store>,
    port: u16,
    shutdown: Option<oneshot::Sender<()>>,
    _data_dir: tempfile::TempDir,
}

impl TestServer {
    /// A server whose `orders` container has `n_ranges` feed ranges.
    async fn start(n_ranges: u32) -> TestServer {
        let (store, data_dir) = store_with_orders(n_ranges).await;
        let config = ServerConfig {
            port: 0,
            tls: None,
            data_dir: data_dir.path().to_owned(),
            ..ServerConfig::default()
        };
        let server = Server::bind(config, Arc::clone(&store))
            .await
            .expect("the server binds a free port");
        let port = server.local_addr().expect("a bound address").port();
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            store,
            port,
            shutdown: Some(shutdown),
            _data_dir: data_dir,
        }
    }

    /// A client from the account's connection string (the emulator key).
    fn client(&self) -> CosmosClient {
        CosmosClient::from_connection_string(&format!(
            "AccountEndpoint=http://127.0.0.1:{}/;AccountKey={EMULATOR_KEY};",
            self.port
        ))
        .expect("a valid connection string")
    }

    /// The monitored feed over HTTP.
    fn feed(&self, long_poll: bool) -> Arc<RemoteFeed> {
        Arc::new(RemoteFeed::new(self.client(), "db", "orders", long_poll))
    }

    /// The lease container over HTTP (created on first open).
    async fn leases(&self) -> Arc<RemoteLeaseContainer> {
        Arc::new(
            RemoteLeaseContainer::open(self.client(), "db", "leases")
                .await
                .expect("lease container"),
        )
    }

    /// Every document of the lease container, read back over the REST API.
    async fn lease_documents(&self) -> Vec<Value> {
        self.client()
            .query_documents("db", "leases", "SELECT * FROM c", &[])
            .await
            .expect("the lease container is queried")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A builder over HTTP with the same short intervals as the embedded tests'.
async fn builder(server: &TestServer, instance: &str) -> ChangeFeedProcessorBuilder {
    builder_with(server, instance, true).await
}

async fn builder_with(
    server: &TestServer,
    instance: &str,
    long_poll: bool,
) -> ChangeFeedProcessorBuilder {
    ChangeFeedProcessorBuilder::new("view", server.feed(long_poll), server.leases().await)
        .instance_name(instance)
        .start_from(StartFrom::Beginning)
        .lease_acquire_interval(Duration::from_millis(100))
        .lease_renew_interval(Duration::from_millis(200))
        .lease_expiration_interval(Duration::from_millis(3000))
        .read_wait(Duration::from_millis(500))
        .retry_backoff(Duration::from_millis(10))
}

async fn start(builder: ChangeFeedProcessorBuilder) -> ChangeFeedProcessor {
    let mut processor = builder.build().expect("valid configuration");
    processor.start().await.expect("processor starts");
    processor
}

/// The lease documents proper (not `.info` or other bookkeeping).
fn leases_only(documents: &[Value]) -> Vec<&Value> {
    documents
        .iter()
        .filter(|d| d.get("LeaseToken").is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_delivers_every_change_over_http_and_checkpoints_dotnet_shaped_leases() {
    let server = TestServer::start(4).await;
    write_orders(&server.store, 0, 300).await;
    let seen = Seen::default();
    let mut processor = start(builder(&server, "a").await.handler(seen.handler())).await;
    wait_until("all 300 changes", || seen.n_distinct() == 300).await;
    assert_eq!(processor.owned_leases().len(), 4);
    // Changes written while it runs arrive too (long-polled, pushed by the server).
    write_orders(&server.store, 300, 310).await;
    wait_until("10 live changes", || seen.n_distinct() == 310).await;
    processor.stop().await;
    assert_eq!(seen.n_deliveries(), 310, "no duplicates without failures");

    let documents = server.lease_documents().await;
    let leases = leases_only(&documents);
    assert_eq!(leases.len(), 4, "{documents:?}");
    let mut spans = Vec::new();
    for doc in leases {
        let id = doc["id"].as_str().unwrap();
        assert!(id.starts_with("view127.0.0.1_"), "{id}");
        assert!(id.contains(".."), "{id}");
        assert_eq!(doc["version"], 1);
        assert!(doc["LeaseToken"].is_string());
        let range = &doc["FeedRange"]["Range"];
        assert!(
            range["min"].is_string() && range["max"].is_string(),
            "{doc}"
        );
        spans.push((
            range["min"].as_str().unwrap().to_owned(),
            range["max"].as_str().unwrap().to_owned(),
        ));
        assert!(
            doc["Owner"].is_null(),
            "a stopped host leaves its leases free: {doc}"
        );
        assert!(
            doc["ContinuationToken"].as_str().unwrap().starts_with('"'),
            "{doc}"
        );
        assert!(doc["timestamp"].as_str().unwrap().ends_with('Z'), "{doc}");
        assert!(doc["properties"].is_object(), "{doc}");
        assert_eq!(doc["Mode"], "Incremental Feed");
    }
    // The four spans tile the whole EPK space.
    spans.sort();
    assert_eq!(spans[0].0, "");
    assert_eq!(spans[3].1, "FF");
    for pair in spans.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "{spans:?}");
    }
    assert!(
        documents
            .iter()
            .any(|d| d["id"].as_str().unwrap().ends_with("=.info"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_the_leases_over_http_and_a_stopping_host_hands_them_over() {
    let server = TestServer::start(4).await;
    write_orders(&server.store, 0, 200).await;
    let seen = Seen::default();
    let mut a = start(builder(&server, "a").await.handler(seen.handler())).await;
    wait_until("a holds all leases", || a.owned_leases().len() == 4).await;
    let mut b = start(builder(&server, "b").await.handler(seen.handler())).await;
    wait_until("2 leases each", || {
        a.owned_leases().len() == 2 && b.owned_leases().len() == 2
    })
    .await;
    wait_until("200 changes", || seen.n_distinct() == 200).await;
    a.stop().await;
    wait_until("b takes a's leases after a graceful stop", || {
        b.owned_leases().len() == 4
    })
    .await;
    write_orders(&server.store, 200, 260).await;
    wait_until("260 changes", || seen.n_distinct() == 260).await;
    b.stop().await;
    let documents = server.lease_documents().await;
    assert!(
        leases_only(&documents).iter().all(|d| d["Owner"].is_null()),
        "{documents:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_over_http_replaces_the_lease_by_child_leases_and_loses_nothing() {
    let server = TestServer::start(1).await;
    write_orders(&server.store, 0, 200).await;
    let seen = Seen::default();
    let mut processor = start(
        builder(&server, "a")
            .await
            .max_items(10)
            .handler(seen.handler()),
    )
    .await;
    wait_until("some changes", || seen.n_distinct() >= 20).await;
    server
        .store
        .split_range("db", "orders", 0)
        .await
        .expect("split");
    write_orders(&server.store, 200, 300).await;
    wait_until("300 changes", || seen.n_distinct() == 300).await;
    wait_until("two child leases", || processor.owned_leases().len() == 2).await;
    processor.stop().await;
    let documents = server.lease_documents().await;
    let tokens: Vec<&str> = leases_only(&documents)
        .iter()
        .filter_map(|d| d["LeaseToken"].as_str())
        .collect();
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    assert!(!tokens.contains(&"-FF"), "the parent lease is gone");
    assert!(
        !tokens.contains(&"0"),
        "the parent lease is gone: {tokens:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_host_s_leases_are_taken_over_http_after_expiry() {
    let server = TestServer::start(2).await;
    write_orders(&server.store, 0, 40).await;
    let seen = Seen::default();
    let a = start(builder(&server, "a").await.handler(seen.handler())).await;
    wait_until("40 changes", || seen.n_distinct() == 40).await;
    drop(a); // a crash: nothing released
    let documents = server.lease_documents().await;
    assert!(
        leases_only(&documents).iter().all(|d| d["Owner"] == "a"),
        "a crashed host still owns its leases: {documents:?}"
    );
    let mut b = start(builder(&server, "b").await.handler(seen.handler())).await;
    write_orders(&server.store, 40, 60).await;
    wait_until("b owns both leases", || b.owned_leases().len() == 2).await;
    wait_until("60 changes", || seen.n_distinct() == 60).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_estimator_counts_pending_changes_exactly_over_http() {
    let server = TestServer::start(2).await;
    write_orders(&server.store, 0, 50).await;
    let seen = Seen::default();
    let mut processor = start(builder(&server, "a").await.handler(seen.handler())).await;
    wait_until("50 changes", || seen.n_distinct() == 50).await;
    let estimator = ChangeFeedEstimator::new(
        "view",
        server.feed(true),
        server.leases().await,
        StartFrom::Beginning,
    )
    .await
    .expect("an estimator");
    let total = |estimates: &[LeaseEstimate]| estimates.iter().map(|e| e.pending).sum::<u64>();
    // The checkpoint follows the handler: wait for it rather than for the deliveries.
    let deadline = tokio::time::Instant::now() + crate::harness::TEST_TIMEOUT;
    let estimates = loop {
        let estimates = estimator.estimate().await.expect("an estimate");
        if total(&estimates) == 0 {
            break estimates;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the checkpoints never caught up: {estimates:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(estimates.len(), 2);
    processor.stop().await;
    write_orders(&server.store, 50, 80).await;
    let estimates = estimator.estimate().await.expect("an estimate");
    assert_eq!(total(&estimates), 30, "{estimates:?}");
    assert!(estimates.iter().all(|e| e.exact), "{estimates:?}");
    assert!(estimates.iter().all(|e| e.owner.is_none()), "{estimates:?}");
    let mut processor = start(builder(&server, "a").await.handler(seen.handler())).await;
    wait_until("80 changes", || seen.n_distinct() == 80).await;
    processor.stop().await;
    assert_eq!(total(&estimator.estimate().await.expect("an estimate")), 0);
    assert_eq!(seen.n_deliveries(), 80, "nothing before a checkpoint again");
}

/// An estimator of the `view` processor over HTTP, with or without the long-poll extension.
async fn estimator(server: &TestServer, long_poll: bool) -> ChangeFeedEstimator {
    ChangeFeedEstimator::new(
        "view",
        server.feed(long_poll),
        server.leases().await,
        StartFrom::Beginning,
    )
    .await
    .expect("an estimator")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_long_poll_the_estimator_estimates_an_upper_bound_from_the_session_token() {
    let server = TestServer::start(2).await;
    write_orders(&server.store, 0, 20).await;
    let seen = Seen::default();
    let mut processor = start(builder(&server, "a").await.handler(seen.handler())).await;
    wait_until("20 changes", || seen.n_distinct() == 20).await;
    let counted = estimator(&server, true).await;
    let estimated = estimator(&server, false).await;
    let total = |estimates: &[LeaseEstimate]| estimates.iter().map(|e| e.pending).sum::<u64>();
    let deadline = tokio::time::Instant::now() + crate::harness::TEST_TIMEOUT;
    while total(&counted.estimate().await.expect("a count")) != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the checkpoints never caught up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    processor.stop().await;

    // Caught up: one empty read says so exactly.
    let caught_up = estimated.estimate().await.expect("an estimate");
    assert_eq!(caught_up.len(), 2);
    assert!(
        caught_up.iter().all(|e| e.pending == 0 && e.exact),
        "{caught_up:?}"
    );

    write_orders(&server.store, 20, 50).await;
    let truth = counted.estimate().await.expect("a count");
    let guess = estimated.estimate().await.expect("an estimate");
    assert_eq!(total(&truth), 30, "{truth:?}");
    assert_eq!(truth.len(), guess.len());
    for (truth, guess) in truth.iter().zip(&guess) {
        assert_eq!(truth.lease_token, guess.lease_token);
        assert!(truth.exact, "{truth:?}");
        // The server's session token carries the container's high LSN, not the range's:
        // the estimate may count the other range's changes too, never fewer than there are.
        assert!(
            guess.pending >= truth.pending,
            "not an upper bound: {guess:?} for {truth:?}"
        );
        if truth.pending == 0 {
            assert!(guess.pending == 0 && guess.exact, "{guess:?}");
        } else {
            assert!(!guess.exact, "an estimate is marked as one: {guess:?}");
            assert!(guess.oldest_pending_age_s.is_some(), "{guess:?}");
        }
    }
    assert!(total(&guess) >= 30, "{guess:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_long_poll_a_polling_host_still_delivers_every_change() {
    let server = TestServer::start(2).await;
    write_orders(&server.store, 0, 100).await;
    let seen = Seen::default();
    let mut processor = start(
        builder_with(&server, "a", false)
            .await
            .poll_interval(Duration::from_millis(100))
            .handler(seen.handler()),
    )
    .await;
    wait_until("100 changes", || seen.n_distinct() == 100).await;
    assert_eq!(processor.owned_leases().len(), 2);
    write_orders(&server.store, 100, 120).await;
    wait_until("20 polled changes", || seen.n_distinct() == 120).await;
    processor.stop().await;
    assert_eq!(seen.n_deliveries(), 120, "no duplicates without failures");
}

/// A processor with a feed filter over HTTP, with or without long-poll: only matching changes
/// reach the handler, and the leases still reach the end of the feed (on `tributary serve` the
/// server filters; without long-poll, as against Azure Cosmos DB, the page is filtered on
/// arrival).
async fn a_feed_filter_over_http_hands_over_only_matching_changes(long_poll: bool) {
    let server = TestServer::start(2).await;
    write_orders(&server.store, 0, 100).await;
    let seen = Seen::default();
    let n_filtered = Arc::new(AtomicU64::new(0));
    let handler = {
        let (seen, n_filtered) = (seen.clone(), Arc::clone(&n_filtered));
        move |context: tributary_processor::BatchContext,
              changes: Vec<tributary_processor::Change>| {
            assert!(!changes.is_empty(), "no handler call without changes");
            seen.record(&changes);
            n_filtered.fetch_add(context.n_filtered, Ordering::SeqCst);
            async { Ok(()) }
        }
    };
    let mut processor = start(
        builder_with(&server, "a", long_poll)
            .await
            .poll_interval(Duration::from_millis(100))
            .max_items(10)
            .feed_filter("c.n % 10 = 0 AND c.n < 200")
            .handler(handler),
    )
    .await;
    wait_until("o0, o10, ..., o90", || seen.n_distinct() == 10).await;
    assert!(
        (0..100)
            .step_by(10)
            .all(|n| seen.contains(&format!("o{n}")))
    );
    // Live changes that all fail the filter still move the leases to the end.
    write_orders(&server.store, 200, 230).await;
    wait_for_no_pending(&estimator(&server, true).await).await;
    processor.stop().await;
    assert_eq!(seen.n_deliveries(), 10, "no duplicates without failures");
    assert!(
        n_filtered.load(Ordering::SeqCst) <= 120,
        "at most the 120 changes that fail the filter are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_filter_is_evaluated_by_the_server_with_long_poll() {
    a_feed_filter_over_http_hands_over_only_matching_changes(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_filter_is_evaluated_on_arrival_without_long_poll() {
    a_feed_filter_over_http_hands_over_only_matching_changes(false).await;
}
