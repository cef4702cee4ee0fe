//! The same commands against a server (`--connection-string`): a tail that follows live
//! writes through the long-poll, and the estimate of a processor that ran over the REST API.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::sync::oneshot;
use tributary_client::CosmosClient;
use tributary_partition_key::PartitionKey;
use tributary_processor::remote::{RemoteFeed, RemoteLeaseContainer};
use tributary_processor::{ChangeFeedProcessorBuilder, StartFrom};
use tributary_server::{Server, ServerConfig};
use tributary_store::{ContainerDefinition, ItemWrite, Store};

use crate::harness::{
    CONTAINER, DATABASE, DataDir, N_RANGES, create_orders, ids, order_ids, run, tributary, wait,
    write_orders,
};

/// A server on a free port over a temporary store; stopped on drop.
pub(crate) struct TestServer {
    /// The server's store.
    pub(crate) store: Arc<Store>,
    /// Its URL, `http://127.0.0.1:port/`.
    pub(crate) endpoint: String,
    /// Its read-write key.
    pub(crate) key: String,
    connection_string: String,
    shutdown: Option<oneshot::Sender<()>>,
    _data_dir: DataDir,
}

impl TestServer {
    /// Starts one; call it inside a tokio runtime.
    pub(crate) async fn start() -> TestServer {
        let data_dir = DataDir::new();
        let store = data_dir.open();
        let config = ServerConfig {
            port: 0,
            tls: None,
            data_dir: data_dir.path().to_owned(),
            ..ServerConfig::default()
        };
        let key = config
            .keys
            .read_write_key()
            .expect("the default keys have a read-write key")
            .to_owned();
        let server = Server::bind(config, Arc::clone(&store))
            .await
            .expect("the server binds a free port");
        let endpoint = server.endpoint().to_owned();
        let connection_string = format!("AccountEndpoint={endpoint};AccountKey={key};");
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            store,
            endpoint,
            key,
            connection_string,
            shutdown: Some(shutdown),
            _data_dir: data_dir,
        }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut command = tributary(args);
        command.env("TRIBUTARY_CONNECTION_STRING", &self.connection_string);
        command
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tail_through_a_server_prints_old_and_live_changes() {
    let server = TestServer::start().await;
    create_orders(&server.store).await;
    write_orders(&server.store, 0..10).await;

    let command = server.command(&[
        "feed",
        "tail",
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
        "--from",
        "beginning",
        "--limit",
        "10",
    ]);
    let all = tokio::task::spawn_blocking(move || run(command))
        .await
        .expect("run");
    assert_eq!(ids(&all.json_lines()), order_ids(0..10));

    // A start time after the first orders: the tail sees only the later ones, including
    // those written while it waits.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let from_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_millis()
        .to_string();
    let mut command = server.command(&[
        "feed",
        "tail",
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
        "--limit",
        "3",
    ]);
    command
        .args(["--from", &from_ms])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("the binary starts");
    let tail = tokio::task::spawn_blocking(move || wait(child));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    write_orders(&server.store, 10..13).await;
    let live = tail.await.expect("run");
    assert_eq!(ids(&live.json_lines()), order_ids(10..13));
}

#[tokio::test(flavor = "multi_thread")]
async fn estimate_and_list_through_a_server_see_a_remote_processors_leases() {
    let server = TestServer::start().await;
    create_orders(&server.store).await;
    write_orders(&server.store, 0..12).await;

    let client = CosmosClient::from_connection_string(&server.connection_string)
        .expect("a valid connection string");
    let feed = Arc::new(RemoteFeed::new(client.clone(), DATABASE, CONTAINER, true));
    let leases = Arc::new(
        RemoteLeaseContainer::open(client, DATABASE, "leases")
            .await
            .expect("lease container"),
    );
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&seen);
    let mut processor = ChangeFeedProcessorBuilder::new("remote-view", feed, leases)
        .instance_name("host-r")
        .start_from(StartFrom::Beginning)
        .lease_acquire_interval(Duration::from_millis(100))
        .read_wait(Duration::from_millis(200))
        .handler(move |_context, changes| {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(changes.len(), Ordering::SeqCst);
                Ok(())
            }
        })
        .build()
        .expect("valid configuration");
    processor.start().await.expect("the processor starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.load(Ordering::SeqCst) < 12 {
        assert!(
            Instant::now() < deadline,
            "the processor did not handle the orders"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    processor.stop().await;
    write_orders(&server.store, 12..16).await;

    let args = [
        "--processor",
        "remote-view",
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
    ];
    let mut command = server.command(&["estimate", "--json", "--start-from", "beginning"]);
    command.args(args);
    let estimates = tokio::task::spawn_blocking(move || run(command))
        .await
        .expect("run");
    let estimates = estimates.json();
    let estimates = estimates.as_array().expect("an array");
    assert_eq!(estimates.len(), N_RANGES as usize);
    let pending: u64 = estimates
        .iter()
        .map(|e| e["pending"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(pending, 4);

    let mut command = server.command(&["leases", "list", "--json"]);
    command.args(args);
    let listed = tokio::task::spawn_blocking(move || run(command))
        .await
        .expect("run");
    let listed = listed.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(N_RANGES as usize));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_all_versions_tail_prints_creates_replaces_and_deletes() {
    let server = TestServer::start().await;
    create_orders(&server.store).await;
    let mut definition = ContainerDefinition::new("events", "/customer");
    definition.change_feed_retention_minutes = Some(60);
    server
        .store
        .create_container(DATABASE, definition, 2)
        .await
        .expect("container");

    let refused = server.command(&[
        "feed",
        "tail",
        "--all-versions",
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
    ]);
    let refused = tokio::task::spawn_blocking(move || run(refused))
        .await
        .expect("run");
    let error = refused.one_line_failure();
    assert!(error.contains("retentionDuration"), "{error}");

    let mut command = server.command(&[
        "feed",
        "tail",
        "--all-versions",
        "--database",
        DATABASE,
        "--container",
        "events",
        "--from",
        "now",
        "--limit",
        "3",
    ]);
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("the binary starts");
    let tail = tokio::task::spawn_blocking(move || wait(child));
    // "now" is fixed when the tail starts: give it time to start before writing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let store = &server.store;
    let order = json!({"id": "e1", "customer": "ada", "n": 1});
    store
        .write_item(DATABASE, "events", ItemWrite::create(order))
        .await
        .expect("create");
    let order = json!({"id": "e1", "customer": "ada", "n": 2});
    store
        .write_item(DATABASE, "events", ItemWrite::replace("e1", order))
        .await
        .expect("replace");
    let key = PartitionKey::from_json(&json!(["ada"])).expect("a partition key");
    store
        .write_item(DATABASE, "events", ItemWrite::delete(key, "e1"))
        .await
        .expect("delete");
    let changes = tail.await.expect("run").json_lines();
    let operations: Vec<&str> = changes
        .iter()
        .map(|c| c["metadata"]["operationType"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(operations, ["create", "replace", "delete"], "{changes:?}");
}
