//! `tributary leases ...` and `tributary estimate` on the embedded store, after a processor
//! ran in this test process and left its leases behind.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tributary_processor::embedded::{EmbeddedFeed, EmbeddedLeaseContainer};
use tributary_processor::{ChangeFeedProcessor, ChangeFeedProcessorBuilder, StartFrom};
use tributary_store::Store;

use crate::harness::{
    CONTAINER, DATABASE, DataDir, N_RANGES, Run, close, run, tributary, write_orders,
};

/// The processor name the tests' processor runs under.
const PROCESSOR: &str = "view";
/// Longest a test waits for its processor.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A started processor over the orders, keeping leases in `shop/leases`, counting changes.
async fn start_processor(store: &Arc<Store>, seen: Arc<AtomicUsize>) -> ChangeFeedProcessor {
    let feed = Arc::new(EmbeddedFeed::new(Arc::clone(store), DATABASE, CONTAINER));
    let leases = Arc::new(
        EmbeddedLeaseContainer::open(Arc::clone(store), DATABASE, "leases")
            .await
            .expect("lease container"),
    );
    let mut processor = ChangeFeedProcessorBuilder::new(PROCESSOR, feed, leases)
        .instance_name("host-1")
        .start_from(StartFrom::Beginning)
        .lease_acquire_interval(Duration::from_millis(100))
        .read_wait(Duration::from_millis(200))
        .handler(move |_context, changes| {
            let seen = Arc::clone(&seen);
            async move {
                seen.fetch_add(changes.len(), Ordering::SeqCst);
                Ok(())
            }
        })
        .build()
        .expect("valid configuration");
    processor.start().await.expect("the processor starts");
    processor
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT_TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A store whose processor handled `n_handled` orders and stopped, then `n_pending` more
/// orders were written.
async fn processed_store(n_handled: usize, n_pending: usize) -> DataDir {
    let data_dir = DataDir::with_orders(n_handled).await;
    let store = data_dir.open();
    let seen = Arc::new(AtomicUsize::new(0));
    let mut processor = start_processor(&store, Arc::clone(&seen)).await;
    wait_until("every order was handled", || {
        seen.load(Ordering::SeqCst) >= n_handled
    })
    .await;
    processor.stop().await;
    drop(processor);
    write_orders(&store, n_handled..n_handled + n_pending).await;
    close(store);
    data_dir
}

fn leases_command(data_dir: &DataDir, args: &[&str]) -> Run {
    let mut command = tributary(args);
    command.args([
        "--processor",
        PROCESSOR,
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
    ]);
    command.args(data_dir.arg());
    run(command)
}

fn list_json(data_dir: &DataDir) -> Vec<Value> {
    let listed = leases_command(data_dir, &["leases", "list", "--json"]).json();
    listed.as_array().expect("an array of leases").clone()
}

fn total_pending(data_dir: &DataDir, start_from: &str) -> u64 {
    let estimates = leases_command(
        data_dir,
        &["estimate", "--json", "--start-from", start_from],
    );
    estimates
        .json()
        .as_array()
        .expect("an array of estimates")
        .iter()
        .map(|e| e["pending"].as_u64().expect("a pending count"))
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn list_and_estimate_show_the_processors_leases_and_lag() {
    let data_dir = processed_store(20, 5).await;

    let leases = list_json(&data_dir);
    assert_eq!(leases.len(), N_RANGES as usize);
    // A range that got no order has no checkpoint yet.
    assert!(
        leases.iter().any(|l| l["continuation"].is_string()),
        "{leases:?}"
    );
    for lease in &leases {
        assert!(
            lease["owner"].is_null(),
            "a stopped processor released it: {lease}"
        );
        assert!(
            lease["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z')),
            "{lease}"
        );
        assert_eq!(lease["mode"], "Incremental Feed");
    }
    let table = leases_command(&data_dir, &["leases", "list"]);
    let lines: Vec<&str> = table.success().lines().collect();
    assert_eq!(lines.len(), 1 + N_RANGES as usize, "{table:#?}");
    assert!(lines[0].starts_with("LEASE") && lines[0].contains("CONTINUATION"));

    assert_eq!(total_pending(&data_dir, "beginning"), 5);
    let table = leases_command(&data_dir, &["estimate", "--start-from", "beginning"]);
    let last = table
        .success()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned();
    assert!(
        last.starts_with(&format!("total ({N_RANGES} leases)")),
        "{table:#?}"
    );
    assert!(
        last.split_whitespace().any(|cell| cell == "5"),
        "{table:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_moves_every_lease_back_and_import_restores_an_export() {
    let data_dir = processed_store(20, 5).await;
    let export = leases_command(&data_dir, &["leases", "export"]);
    let exported = export.json();
    let export_file = data_dir.path().with_extension("export.json");
    std::fs::write(&export_file, export.success()).expect("the export is saved");

    let reset = leases_command(&data_dir, &["leases", "reset", "--to-beginning"]);
    assert_eq!(
        reset.success().trim(),
        format!("reset {N_RANGES} leases to start from beginning")
    );
    let leases = list_json(&data_dir);
    assert_eq!(leases.len(), N_RANGES as usize);
    for lease in &leases {
        assert!(lease["continuation"].is_null(), "{lease}");
        assert_eq!(
            lease["properties"]["tributary.start"], "beginning",
            "{lease}"
        );
    }
    assert_eq!(
        total_pending(&data_dir, "now"),
        25,
        "the reset start overrides --start-from"
    );

    let reset = leases_command(
        &data_dir,
        &["leases", "reset", "--to-time", "2000-01-01T00:00:00Z"],
    );
    assert!(reset.success().contains("time:946684800000"), "{reset:#?}");

    let mut command = tributary(&["leases", "import"]);
    command.arg(&export_file);
    command.args([
        "--processor",
        PROCESSOR,
        "--database",
        DATABASE,
        "--container",
        CONTAINER,
    ]);
    command.args(data_dir.arg());
    let imported = run(command);
    let n_documents = exported.as_array().map_or(0, Vec::len);
    assert_eq!(
        imported.success().trim(),
        format!("imported {n_documents} documents")
    );
    assert_eq!(total_pending(&data_dir, "beginning"), 5);
    let again = leases_command(&data_dir, &["leases", "export"]).json();
    assert_eq!(again, exported, "an import restores the export exactly");
    let _ = std::fs::remove_file(export_file);
}

#[tokio::test(flavor = "multi_thread")]
async fn release_frees_the_leases_of_a_host_that_died() {
    let data_dir = DataDir::with_orders(3).await;
    let store = data_dir.open();
    let processor = start_processor(&store, Arc::new(AtomicUsize::new(0))).await;
    wait_until("the host owns every lease", || {
        processor.owned_leases().len() == N_RANGES as usize
    })
    .await;
    // Dropped without stop, as a crash: the leases keep their owner until they expire.
    drop(processor);
    tokio::time::sleep(Duration::from_millis(100)).await;
    close(store);
    let leases = list_json(&data_dir);
    assert!(leases.iter().all(|l| l["owner"] == "host-1"), "{leases:?}");

    let released = leases_command(&data_dir, &["leases", "release"]);
    assert_eq!(
        released.success().trim(),
        format!("released {N_RANGES} leases")
    );
    let leases = list_json(&data_dir);
    assert!(leases.iter().all(|l| l["owner"].is_null()), "{leases:?}");
}

#[tokio::test]
async fn reading_commands_need_an_existing_lease_container_and_reset_needs_a_target() {
    let data_dir = DataDir::with_orders(1).await;
    let run = leases_command(&data_dir, &["leases", "list", "--lease-container", "nope"]);
    let error = run.one_line_failure();
    assert!(
        error.contains("lease container 'nope' does not exist"),
        "{error}"
    );

    let run = leases_command(&data_dir, &["leases", "reset"]);
    assert_eq!(run.code, Some(2), "{run:#?}");
    let run = leases_command(
        &data_dir,
        &["leases", "reset", "--to-now", "--to-beginning"],
    );
    assert_eq!(run.code, Some(2), "{run:#?}");
}
