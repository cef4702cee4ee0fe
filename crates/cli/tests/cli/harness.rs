//! Runs the `tributary` binary with a deadline, and prepares stores for it: a temporary data
//! directory with a container of orders, closed before the binary opens it.

use std::io::Read as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tributary_store::{ContainerDefinition, ItemWrite, Store, StoreOptions};

/// Longest one run of the binary may take before the test fails: every test stays bounded.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// The database of the test container.
pub const DATABASE: &str = "shop";
/// The test container (partitioned by `/customer`).
pub const CONTAINER: &str = "orders";
/// Feed ranges of the test container, so a tail reads several ranges at once.
pub const N_RANGES: u32 = 4;

/// What a run of the binary left behind.
#[derive(Debug)]
pub struct Run {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts a zero exit and returns stdout.
    #[track_caller]
    pub fn success(&self) -> &str {
        assert_eq!(self.code, Some(0), "the command failed: {self:#?}");
        &self.stdout
    }

    /// Asserts a non-zero exit with exactly one line on stderr, and returns that line.
    #[track_caller]
    pub fn one_line_failure(&self) -> &str {
        assert_ne!(self.code, Some(0), "the command succeeded: {self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "not one line of error: {self:#?}");
        assert!(lines[0].starts_with("tributary: "), "{self:#?}");
        lines[0]
    }

    /// Stdout parsed as one JSON value.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.success()).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }

    /// Stdout parsed as JSON lines.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.success()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect()
    }
}

/// The binary, with no `TRIBUTARY_*` settings inherited from the environment.
pub fn tributary(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tributary"));
    command.args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("TRIBUTARY_") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

/// Runs the binary to its end (killing it after [`RUN_TIMEOUT`]).
pub fn run(mut command: Command) -> Run {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command.spawn().expect("the binary starts");
    wait(child)
}

/// Waits for a spawned binary (with piped stdout and stderr) to end.
pub fn wait(mut child: Child) -> Run {
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("the child can be waited on") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the binary ran longer than {RUN_TIMEOUT:?}; stderr: {}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code(),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

/// A temporary data directory.
pub struct DataDir {
    dir: tempfile::TempDir,
}

impl DataDir {
    /// An empty temporary directory.
    pub fn new() -> DataDir {
        DataDir {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `--data-dir <dir>` for the binary.
    pub fn arg(&self) -> [String; 2] {
        ["--data-dir".into(), self.path().display().to_string()]
    }

    /// Opens the store (the binary cannot open it until it is dropped).
    pub fn open(&self) -> Arc<Store> {
        Arc::new(Store::open(self.path(), StoreOptions::relaxed()).expect("the store opens"))
    }

    /// A store with the orders container holding `n_orders` orders; closed again.
    pub async fn with_orders(n_orders: usize) -> DataDir {
        let data_dir = DataDir::new();
        let store = data_dir.open();
        create_orders(&store).await;
        write_orders(&store, 0..n_orders).await;
        close(store);
        data_dir
    }
}

/// Closes a store that no one else holds, releasing its directory lock.
#[track_caller]
pub fn close(store: Arc<Store>) {
    store.close();
    let store = Arc::into_inner(store).expect("no one else holds the store");
    drop(store);
}

/// Creates the database and the orders container with [`N_RANGES`] feed ranges.
pub async fn create_orders(store: &Store) {
    store.create_database(DATABASE).await.expect("database");
    store
        .create_container(
            DATABASE,
            ContainerDefinition::new(CONTAINER, "/customer"),
            N_RANGES,
        )
        .await
        .expect("container");
}

/// Writes orders `order-{i}` for every `i` in `numbers`, spread over customers.
pub async fn write_orders(store: &Store, numbers: std::ops::Range<usize>) {
    for i in numbers {
        let order = json!({"id": format!("order-{i}"), "customer": format!("c{}", i % 7), "n": i});
        store
            .write_item(DATABASE, CONTAINER, ItemWrite::create(order))
            .await
            .expect("the order is written");
    }
}

/// The sorted ids of JSON documents.
pub fn ids(documents: &[Value]) -> Vec<String> {
    let mut ids: Vec<String> = documents
        .iter()
        .map(|doc| doc["id"].as_str().expect("a string id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// The sorted ids `order-{i}` for `numbers`.
pub fn order_ids(numbers: std::ops::Range<usize>) -> Vec<String> {
    let mut ids: Vec<String> = numbers.map(|i| format!("order-{i}")).collect();
    ids.sort();
    ids
}
