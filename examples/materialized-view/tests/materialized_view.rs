//! The example binary against an in-process `tributary serve` (plain HTTP, a free port, a
//! temporary store): the view stays equal to the totals computed from the orders when the
//! example is SIGKILLed mid-way and restarted, and when every change is delivered again.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::oneshot;
use tributary_client::CosmosClient;
use tributary_server::{Server, ServerConfig};
use tributary_store::{ContainerDefinition, Store, StoreOptions};
use tributary_wire::auth::EMULATOR_KEY;

/// Longest any wait of the test may take.
const WAIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Customers the orders are spread over.
const N_CUSTOMERS: u32 = 6;
/// Orders created before the example first starts.
const N_ORDERS: u32 = 48;
/// Replaces written while the example runs (it is killed half-way through them).
const N_REPLACES: u32 = 240;
/// Order statuses the replaces cycle through.
const STATUSES: [&str; 3] = ["placed", "shipped", "delivered"];

/// A server over plain HTTP on a free port with `shop/orders` (partition key `/customerId`,
/// four feed ranges); stopped on drop.
struct TestServer {
    endpoint: String,
    shutdown: Option<oneshot::Sender<()>>,
    _data_dir: tempfile::TempDir,
}

impl TestServer {
    async fn start() -> TestServer {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(
            Store::open(data_dir.path(), StoreOptions::relaxed()).expect("the store opens"),
        );
        store.create_database("shop").await.expect("database");
        store
            .create_container("shop", ContainerDefinition::new("orders", "/customerId"), 4)
            .await
            .expect("container");
        let config = ServerConfig {
            port: 0,
            tls: None,
            data_dir: data_dir.path().to_owned(),
            ..ServerConfig::default()
        };
        let server = Server::bind(config, store)
            .await
            .expect("the server binds a free port");
        let endpoint = server.endpoint().to_owned();
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            endpoint,
            shutdown: Some(shutdown),
            _data_dir: data_dir,
        }
    }

    fn connection_string(&self) -> String {
        format!(
            "AccountEndpoint={};AccountKey={EMULATOR_KEY};",
            self.endpoint
        )
    }

    fn client(&self) -> CosmosClient {
        CosmosClient::from_connection_string(&self.connection_string())
            .expect("a valid connection string")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A running example process and the JSON lines (one per batch) it printed.
struct Example {
    child: Child,
    batches: Arc<Mutex<Vec<Value>>>,
}

impl Example {
    fn start(server: &TestServer) -> Example {
        let mut child = Command::new(env!("CARGO_BIN_EXE_materialized-view"))
            .args(["--instance", "view-1", "--from", "beginning"])
            .env("TRIBUTARY_CONNECTION_STRING", server.connection_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .expect("the example starts");
        let stdout = child.stdout.take().expect("a piped stdout");
        let batches = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&batches);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let batch = serde_json::from_str(&line).expect("each stdout line is JSON");
                sink.lock().unwrap().push(batch);
            }
        });
        Example { child, batches }
    }

    /// Sums one numeric field over the batches printed so far.
    fn sum(&self, field: &str) -> u64 {
        let batches = self.batches.lock().unwrap();
        batches
            .iter()
            .map(|batch| batch[field].as_u64().unwrap())
            .sum()
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL is sent");
        self.child.wait().expect("the example is reaped");
    }

    /// Sends SIGTERM and waits (bounded) for the example to exit.
    async fn terminate(mut self) -> ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("the example is polled") {
                return status;
            }
            assert!(Instant::now() < deadline, "the example ignored SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Per customer: order count, sum, and per status (count, sum).
type Totals = BTreeMap<String, (u64, f64, BTreeMap<String, (u64, f64)>)>;

/// The orders as the test wrote them: order id -> (customer, total, status).
#[derive(Default)]
struct Orders(BTreeMap<String, (String, f64, String)>);

impl Orders {
    async fn write(&mut self, client: &CosmosClient, n: u32, total: f64, status: &str) {
        let id = format!("o{n}");
        let customer = format!("c{}", n % N_CUSTOMERS);
        let order = json!({"id": id, "customerId": customer, "total": total, "status": status});
        client
            .upsert_document("shop", "orders", &json!(customer), &order)
            .await
            .expect("the order is written");
        self.0.insert(id, (customer, total, status.to_owned()));
    }

    fn totals(&self) -> Totals {
        let mut totals = Totals::new();
        for (customer, total, status) in self.0.values() {
            let entry = totals.entry(customer.clone()).or_default();
            entry.0 += 1;
            entry.1 += total;
            let by_status = entry.2.entry(status.clone()).or_default();
            by_status.0 += 1;
            by_status.1 += total;
        }
        totals
    }
}

/// The view documents: id -> the whole document.
async fn view_documents(client: &CosmosClient) -> BTreeMap<String, Value> {
    match client
        .query_documents("shop", "customer-totals", "SELECT * FROM c", &[])
        .await
    {
        Ok(documents) => documents
            .into_iter()
            .map(|document| (document["id"].as_str().unwrap().to_owned(), document))
            .collect(),
        // The example has not created the view container yet.
        Err(tributary_client::ClientError::NotFound { .. }) => BTreeMap::new(),
        Err(error) => panic!("the view cannot be read: {error}"),
    }
}

fn view_totals(documents: &BTreeMap<String, Value>) -> Totals {
    let number = |value: &Value| value.as_f64().expect("a number");
    let count = |value: &Value| value.as_u64().expect("a count");
    documents
        .iter()
        .map(|(id, document)| {
            let by_status = document["byStatus"]
                .as_object()
                .expect("byStatus is an object")
                .iter()
                .map(|(status, t)| {
                    (
                        status.clone(),
                        (count(&t["orderCount"]), number(&t["total"])),
                    )
                })
                .collect();
            let totals = (
                count(&document["orderCount"]),
                number(&document["total"]),
                by_status,
            );
            (id.clone(), totals)
        })
        .collect()
}

/// Waits (bounded) until the view equals the totals of `orders`.
async fn wait_for_view(client: &CosmosClient, orders: &Orders) {
    let expected = orders.totals();
    let deadline = Instant::now() + WAIT_TIMEOUT;
    loop {
        let actual = view_totals(&view_documents(client).await);
        if actual == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the view did not reach the orders' totals in {WAIT_TIMEOUT:?}\nexpected {expected:?}\nactual   {actual:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_equals_the_orders_totals_after_a_kill_and_after_full_redelivery() {
    let server = TestServer::start().await;
    let client = server.client();
    let mut orders = Orders::default();
    for n in 0..N_ORDERS {
        orders
            .write(&client, n, f64::from(n % 7 + 1) * 10.0, "placed")
            .await;
    }

    // Orders change while the example runs; it is killed half-way and started again.
    let mut example = Example::start(&server);
    for step in 0..N_REPLACES {
        if step == N_REPLACES / 2 {
            example.kill();
            example = Example::start(&server);
        }
        let n = (step * 7) % N_ORDERS;
        let status = STATUSES[(step as usize / 3) % STATUSES.len()];
        orders
            .write(&client, n, f64::from(step % 11 + 1) * 5.0, status)
            .await;
        if step % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    wait_for_view(&client, &orders).await;
    assert!(example.terminate().await.success());

    // Every change delivered again: forget the leases and start from the beginning.
    let before = view_documents(&client).await;
    for lease in client
        .query_documents("shop", "leases", "SELECT * FROM c", &[])
        .await
        .expect("the leases are listed")
    {
        let id = lease["id"].as_str().unwrap();
        client
            .delete_document("shop", "leases", &json!(id), id, None)
            .await
            .expect("the lease is deleted");
    }
    let example = Example::start(&server);
    let deadline = Instant::now() + WAIT_TIMEOUT;
    while example.sum("changes") < u64::from(N_ORDERS) {
        assert!(
            Instant::now() < deadline,
            "the feed was not delivered again in {WAIT_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(example.sum("changes"), u64::from(N_ORDERS));
    assert_eq!(
        example.sum("applied"),
        0,
        "a redelivered change was applied again"
    );
    assert_eq!(example.sum("alreadyApplied"), u64::from(N_ORDERS));
    let after = view_documents(&client).await;
    let etags = |documents: &BTreeMap<String, Value>| -> Vec<Value> {
        documents.values().map(|d| d["_etag"].clone()).collect()
    };
    assert_eq!(
        etags(&after),
        etags(&before),
        "a view document was rewritten"
    );
    assert_eq!(view_totals(&after), orders.totals());
    assert!(example.terminate().await.success());
}
