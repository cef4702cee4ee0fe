//! The host on the embedded store with Rust handlers: outputs committed with the checkpoint,
//! retries, bisecting a poison item into the dead-letter container, per-item failures,
//! timeouts, filters, several functions on one container, replay (after a stop, and from a
//! running host's handle), and configuration errors.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tributary_functions::definition::{FunctionDefinition, ReadFunction, read_function};
use tributary_functions::handler::{Invocation, InvocationFailure, InvocationOutput, RustHandler};
use tributary_functions::settings::Settings;
use tributary_functions::{ConfigError, FunctionApp, FunctionHost, HostError, HostOptions};
use tributary_store::{ContainerDefinition, FeedScope, ItemWrite, Store, StoreOptions};

/// Longest any wait in a test may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection string that names the host's embedded store (it points at localhost).
const LOCAL: &str = "AccountEndpoint=https://localhost:8081/;AccountKey=C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw==;";

async fn store() -> (Arc<Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Arc::new(Store::open(dir.path(), StoreOptions::relaxed()).expect("store opens"));
    store.create_database("shop").await.expect("database");
    store
        .create_container("shop", ContainerDefinition::new("orders", "/customerId"), 2)
        .await
        .expect("container");
    (store, dir)
}

fn settings() -> Settings {
    Settings::from_pairs([("Cosmos".to_owned(), LOCAL.to_owned())])
}

/// A function on `shop/orders` with an output `view` into `shop/view`, test-speed lease
/// intervals, from the beginning, and extra trigger options.
fn definition(name: &str, extra_trigger: Value) -> FunctionDefinition {
    let mut trigger = json!({
        "type": "cosmosDBTrigger", "direction": "in", "name": "documents",
        "connection": "Cosmos", "databaseName": "shop", "containerName": "orders",
        "leaseContainerName": "leases", "createLeaseContainerIfNotExists": true,
        "startFromBeginning": true, "leaseAcquireInterval": 100, "leaseRenewInterval": 200,
        "leaseExpirationInterval": 3000,
    });
    for (key, value) in extra_trigger.as_object().expect("an object") {
        trigger[key] = value.clone();
    }
    let output = json!({
        "type": "cosmosDB", "direction": "out", "name": "view", "connection": "Cosmos",
        "databaseName": "shop", "containerName": "view", "createIfNotExists": true,
    });
    let retry =
        json!({"strategy": "fixed_delay", "max_retry_count": "2", "delay_interval": "00:00:00"});
    match read_function(name, &[trigger, output], Some(&retry)).expect("a valid function") {
        ReadFunction::Run(definition) => *definition,
        ReadFunction::Skip(skipped) => panic!("skipped: {}", skipped.reason),
    }
}

async fn write_orders(store: &Store, ids: &[&str]) {
    for (n, id) in ids.iter().enumerate() {
        store
            .write_item(
                "shop",
                "orders",
                ItemWrite::upsert(
                    json!({"id": id, "customerId": format!("c{}", n % 3), "total": n}),
                ),
            )
            .await
            .expect("write");
    }
}

fn documents(store: &Store, container: &str) -> Vec<Value> {
    match store.scan_items("shop", container, &FeedScope::Container) {
        Ok(texts) => texts
            .iter()
            .map(|text| serde_json::from_str(text).expect("stored JSON"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TEST_TIMEOUT;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ids(invocation: &Invocation) -> Vec<String> {
    invocation
        .changes
        .iter()
        .map(|change| {
            change.value().expect("JSON")["id"]
                .as_str()
                .expect("an id")
                .to_owned()
        })
        .collect()
}

/// A handler that copies each change to the view as `{id: "view-<id>"}`, failing every
/// batch that holds one of `poison` and counting its invocations.
fn copying_handler(poison: &'static [&'static str], calls: Arc<AtomicU32>) -> Arc<RustHandler> {
    Arc::new(RustHandler::new(move |invocation: Invocation| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let ids = ids(&invocation);
            if let Some(bad) = ids.iter().find(|id| poison.contains(&id.as_str())) {
                return Err(InvocationFailure {
                    error: format!("ValueError: cannot process {bad}"),
                    traceback: Some("Traceback: in handler".into()),
                    timed_out: false,
                });
            }
            let view = ids
                .iter()
                .map(|id| json!({"id": format!("view-{id}")}))
                .collect();
            Ok(InvocationOutput {
                outputs: BTreeMap::from([("view".to_owned(), view)]),
                failed_items: Vec::new(),
            })
        }
    }))
}

async fn start(store: &Arc<Store>, app: FunctionApp) -> FunctionHost {
    FunctionHost::start(
        app,
        HostOptions {
            embedded: Some(Arc::clone(store)),
            embedded_port: None,
            instance_name: "test-host".into(),
        },
    )
    .await
    .expect("the host starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_commit_with_the_checkpoint_on_the_embedded_store() {
    let (store, _dir) = store().await;
    write_orders(&store, &["o1", "o2", "o3"]).await;
    let calls = Arc::new(AtomicU32::new(0));
    let app = FunctionApp::new(settings()).function(
        definition("copy", json!({})),
        copying_handler(&[], Arc::clone(&calls)),
    );
    let host = start(&store, app).await;
    wait_until("three view documents", || {
        documents(&store, "view").len() == 3
    })
    .await;
    let status = host.status().await;
    assert!(status[0].exactly_once, "outputs and leases share the store");
    assert_eq!(status[0].stats.n_changes.load(Ordering::SeqCst), 3);
    host.stop().await;
    let leases = documents(&store, "leases");
    assert!(
        leases
            .iter()
            .filter(|lease| lease.get("LeaseToken").is_some())
            .all(|lease| lease["ContinuationToken"].is_string()),
        "every lease is checkpointed: {leases:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_item_is_bisected_into_the_dead_letter_container_and_the_rest_processed() {
    let (store, _dir) = store().await;
    // One partition key range holds them all, so they come as one batch.
    let ids: Vec<String> = (0..8).map(|n| format!("o{n}")).collect();
    for id in &ids {
        store
            .write_item(
                "shop",
                "orders",
                ItemWrite::upsert(json!({"id": id, "customerId": "c1"})),
            )
            .await
            .expect("write");
    }
    let calls = Arc::new(AtomicU32::new(0));
    let app = FunctionApp::new(settings()).function(
        definition("copy", json!({})),
        copying_handler(&["o5"], Arc::clone(&calls)),
    );
    let host = start(&store, app).await;
    wait_until("seven view documents and a dead letter", || {
        documents(&store, "view").len() == 7 && documents(&store, "deadletter").len() == 1
    })
    .await;
    let dead_letter = &documents(&store, "deadletter")[0];
    assert_eq!(dead_letter["function"], "copy");
    assert_eq!(dead_letter["itemId"], "o5");
    assert_eq!(dead_letter["item"]["id"], "o5");
    assert_eq!(dead_letter["error"], "ValueError: cannot process o5");
    assert_eq!(dead_letter["traceback"], "Traceback: in handler");
    assert_eq!(
        dead_letter["source"],
        json!({"database": "shop", "container": "orders"})
    );
    assert!(dead_letter["attempts"].as_u64().expect("attempts") >= 3);
    let status = host.status().await;
    assert_eq!(status[0].stats.n_dead_lettered.load(Ordering::SeqCst), 1);
    assert_eq!(
        status[0].stats.n_retries.load(Ordering::SeqCst),
        2,
        "max_retry_count 2"
    );
    // 3 attempts of the batch of 8, then 8 → 4+4 → 2+2 → 1+1: 3 + 2 + 2 + 2 calls.
    assert_eq!(calls.load(Ordering::SeqCst), 9);
    assert!(
        status[0]
            .leases
            .iter()
            .all(|lease| lease.pending == 0 && !lease.is_stuck()),
        "the lease moved on: {:?}",
        status[0].leases
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_the_function_reports_as_failed_are_retried_alone_then_dead_lettered() {
    let (store, _dir) = store().await;
    write_orders(&store, &["a", "b", "c"]).await;
    let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let recorded = Arc::clone(&seen);
    let handler = Arc::new(RustHandler::new(move |invocation: Invocation| {
        let ids = ids(&invocation);
        recorded.lock().expect("lock").push(ids.clone());
        async move {
            Ok(InvocationOutput {
                outputs: BTreeMap::from([(
                    "view".to_owned(),
                    ids.iter()
                        .filter(|id| *id != "b")
                        .map(|id| json!({"id": id}))
                        .collect(),
                )]),
                failed_items: ids.into_iter().filter(|id| id == "b").collect(),
            })
        }
    }));
    let app = FunctionApp::new(settings()).function(definition("partial", json!({})), handler);
    let host = start(&store, app).await;
    wait_until("a dead letter for b", || {
        documents(&store, "deadletter").len() == 1
    })
    .await;
    host.stop().await;
    let dead_letter = &documents(&store, "deadletter")[0];
    assert_eq!(dead_letter["itemId"], "b");
    let calls = seen.lock().expect("lock").clone();
    let n_calls_with = |id: &str| {
        calls
            .iter()
            .filter(|ids| ids.iter().any(|seen| seen == id))
            .count()
    };
    assert_eq!(n_calls_with("a"), 1, "{calls:?}");
    assert_eq!(n_calls_with("c"), 1, "{calls:?}");
    let alone = calls.iter().filter(|ids| *ids == &["b".to_owned()]).count();
    assert_eq!(
        alone, 2,
        "b is retried alone, twice (max_retry_count 2): {calls:?}"
    );
    let mut view: Vec<String> = documents(&store, "view")
        .iter()
        .map(|doc| doc["id"].as_str().expect("id").to_owned())
        .collect();
    view.sort();
    assert_eq!(view, ["a", "c"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_handler_is_stopped_at_its_timeout_and_dead_lettered() {
    let (store, _dir) = store().await;
    write_orders(&store, &["slow"]).await;
    let handler = Arc::new(RustHandler::new(|_invocation: Invocation| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(InvocationOutput::default())
    }));
    let mut hanging = definition("hang", json!({}));
    hanging.timeout = Duration::from_millis(100);
    let app = FunctionApp::new(settings()).function(hanging, handler);
    let host = start(&store, app).await;
    wait_until("the dead letter", || {
        documents(&store, "deadletter").len() == 1
    })
    .await;
    let dead_letter = &documents(&store, "deadletter")[0];
    assert_eq!(dead_letter["timedOut"], true);
    assert!(
        dead_letter["error"]
            .as_str()
            .expect("error")
            .contains("timeout of 100 ms"),
        "{dead_letter}"
    );
    let status = host.status().await;
    assert_eq!(status[0].stats.n_timed_out.load(Ordering::SeqCst), 3);
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_skips_changes_and_still_advances_the_lease() {
    let (store, _dir) = store().await;
    for (id, status) in [
        ("o1", "new"),
        ("o2", "shipped"),
        ("o3", "new"),
        ("o4", "shipped"),
    ] {
        store
            .write_item(
                "shop",
                "orders",
                ItemWrite::upsert(json!({"id": id, "customerId": "c", "status": status})),
            )
            .await
            .expect("write");
    }
    let calls = Arc::new(AtomicU32::new(0));
    let mut shipped = definition("shipped", json!({}));
    shipped.filter = Some("c.status = 'shipped'".into());
    let app = FunctionApp::new(settings()).function(shipped, copying_handler(&[], calls));
    let host = start(&store, app).await;
    wait_until("two view documents", || {
        documents(&store, "view").len() == 2
    })
    .await;
    let status = host.status().await;
    assert_eq!(status[0].stats.n_filtered.load(Ordering::SeqCst), 2);
    assert!(status[0].leases.iter().all(|lease| lease.pending == 0));
    host.stop().await;
    let mut view: Vec<String> = documents(&store, "view")
        .iter()
        .map(|doc| doc["id"].as_str().expect("id").to_owned())
        .collect();
    view.sort();
    assert_eq!(view, ["view-o2", "view-o4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_functions_on_one_container_each_see_every_change() {
    let (store, _dir) = store().await;
    write_orders(&store, &["o1", "o2", "o3", "o4"]).await;
    let first = Arc::new(AtomicU32::new(0));
    let second: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = Arc::clone(&second);
    let counting = Arc::new(RustHandler::new(move |invocation: Invocation| {
        recorded.lock().expect("lock").extend(ids(&invocation));
        async { Ok(InvocationOutput::default()) }
    }));
    let mut other = definition("count", json!({}));
    other.outputs.clear();
    let app = FunctionApp::new(settings())
        .function(definition("copy", json!({})), copying_handler(&[], first))
        .function(other, counting);
    let host = start(&store, app).await;
    wait_until("both functions done", || {
        documents(&store, "view").len() == 4 && second.lock().expect("lock").len() == 4
    })
    .await;
    host.stop().await;
    let leases = documents(&store, "leases");
    for prefix in ["copy", "count"] {
        assert!(
            leases.iter().any(|lease| lease["id"]
                .as_str()
                .is_some_and(|id| id.starts_with(prefix))),
            "{prefix} has its own leases"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_dead_letter_is_processed_and_removed() {
    let (store, _dir) = store().await;
    write_orders(&store, &["x"]).await;
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let failing = Arc::clone(&fail);
    let handler = Arc::new(RustHandler::new(move |invocation: Invocation| {
        let failing = failing.load(Ordering::SeqCst);
        async move {
            if failing {
                return Err(InvocationFailure::new("RuntimeError: downstream is down"));
            }
            let view = ids(&invocation)
                .iter()
                .map(|id| json!({"id": id}))
                .collect();
            Ok(InvocationOutput {
                outputs: BTreeMap::from([("view".to_owned(), view)]),
                failed_items: Vec::new(),
            })
        }
    }));
    let options = HostOptions {
        embedded: Some(Arc::clone(&store)),
        embedded_port: None,
        instance_name: "test-host".into(),
    };
    let app = FunctionApp::new(settings()).function(definition("copy", json!({})), handler.clone());
    let host = start(&store, app).await;
    wait_until("the dead letter", || {
        documents(&store, "deadletter").len() == 1
    })
    .await;
    host.stop().await;
    fail.store(false, Ordering::SeqCst);
    let app = FunctionApp::new(settings()).function(definition("copy", json!({})), handler);
    let report = tributary_functions::replay_dead_letters(&app, &options, Some("copy"), None)
        .await
        .expect("replay runs");
    assert_eq!(report.n_replayed, 1);
    assert!(report.failures.is_empty());
    assert!(documents(&store, "deadletter").is_empty());
    assert_eq!(documents(&store, "view").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_hosts_handle_lists_and_replays_its_dead_letters() {
    let (store, _dir) = store().await;
    write_orders(&store, &["x", "y"]).await;
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let failing = Arc::clone(&fail);
    let handler = Arc::new(RustHandler::new(move |invocation: Invocation| {
        let failing = failing.load(Ordering::SeqCst);
        async move {
            let ids = ids(&invocation);
            if failing && ids.iter().any(|id| id == "x") {
                return Err(InvocationFailure::new("RuntimeError: downstream is down"));
            }
            let view = ids.iter().map(|id| json!({"id": id})).collect();
            Ok(InvocationOutput {
                outputs: BTreeMap::from([("view".to_owned(), view)]),
                failed_items: Vec::new(),
            })
        }
    }));
    let app = FunctionApp::new(settings()).function(definition("copy", json!({})), handler);
    let host = start(&store, app).await;
    let handle = host.handle();
    wait_until("the dead letter of x and y's view", || {
        documents(&store, "deadletter").len() == 1 && documents(&store, "view").len() == 1
    })
    .await;
    let status = handle.status().await;
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].lease_container, "shop/leases");
    assert_eq!(status[0].dead_letter_container, "shop/deadletter");
    assert_eq!(status[0].stats.n_dead_lettered.load(Ordering::SeqCst), 1);
    let dead_letters = handle.dead_letters("copy").await.expect("listed");
    assert_eq!(dead_letters.len(), 1);
    assert_eq!(dead_letters[0]["itemId"], "x");
    assert_eq!(dead_letters[0]["error"], "RuntimeError: downstream is down");
    let id = dead_letters[0]["id"].as_str().expect("an id").to_owned();

    // Still failing: the dead letter stays and the error is told.
    let outcome = handle
        .replay_dead_letter("copy", &id)
        .await
        .expect("replayed");
    assert_eq!(outcome, Err("RuntimeError: downstream is down".to_owned()));
    assert_eq!(documents(&store, "deadletter").len(), 1);

    fail.store(false, Ordering::SeqCst);
    let outcome = handle
        .replay_dead_letter("copy", &id)
        .await
        .expect("replayed");
    assert_eq!(outcome, Ok(()));
    assert!(documents(&store, "deadletter").is_empty());
    let mut view: Vec<String> = documents(&store, "view")
        .iter()
        .map(|document| document["id"].as_str().expect("an id").to_owned())
        .collect();
    view.sort();
    assert_eq!(view, ["x", "y"]);

    // Gone now; and other functions' names are refused.
    let again = handle.replay_dead_letter("copy", &id).await;
    assert!(
        matches!(again, Err(HostError::UnknownDeadLetter { .. })),
        "{again:?}"
    );
    assert_eq!(
        handle
            .dead_letters("nope")
            .await
            .expect_err("unknown")
            .to_string(),
        "no function named 'nope' runs in this host"
    );
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_names_the_function_and_the_setting_and_starts_nothing() {
    let (store, _dir) = store().await;
    let handler = copying_handler(&[], Arc::default());
    let options = HostOptions {
        embedded: Some(Arc::clone(&store)),
        embedded_port: None,
        instance_name: "test-host".into(),
    };
    let start = |app: FunctionApp| FunctionHost::start(app, options.clone());

    let missing = definition("f", json!({"connection": "Nowhere"}));
    let error = start(FunctionApp::new(settings()).function(missing, handler.clone()))
        .await
        .err()
        .expect("a missing setting is refused");
    assert!(
        matches!(&error, ConfigError::Setting { function, setting, .. } if function == "f" && setting == "Nowhere"),
        "{error}"
    );

    let bad = Settings::from_pairs([("Cosmos".to_owned(), "not a connection string".to_owned())]);
    let error = start(FunctionApp::new(bad).function(definition("f", json!({})), handler.clone()))
        .await
        .err()
        .expect("a bad connection string is refused");
    assert!(
        error.to_string().contains("not a valid connection string"),
        "{error}"
    );

    let no_create = definition(
        "f",
        json!({"createLeaseContainerIfNotExists": false, "leaseContainerName": "absent"}),
    );
    let error = start(FunctionApp::new(settings()).function(no_create, handler.clone()))
        .await
        .err()
        .expect("a missing lease container is refused");
    assert!(
        error
            .to_string()
            .contains("lease container 'absent' does not exist"),
        "{error}"
    );

    let wrong_container = definition("f", json!({"containerName": "nope"}));
    let error = start(FunctionApp::new(settings()).function(wrong_container, handler.clone()))
        .await
        .err()
        .expect("a missing monitored container is refused");
    assert!(error.to_string().starts_with("function 'f':"), "{error}");

    // The first function is fine, the second is not: nothing runs, nothing was processed.
    write_orders(&store, &["o1"]).await;
    let error = start(
        FunctionApp::new(settings())
            .function(definition("good", json!({})), handler.clone())
            .function(definition("bad", json!({"connection": "Nowhere"})), handler),
    )
    .await
    .err()
    .expect("refused");
    assert!(error.to_string().contains("'bad'"), "{error}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        documents(&store, "view").is_empty(),
        "the good function did not start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bisected_read_modify_write_function_sees_each_parts_writes() {
    let (store, _dir) = store().await;
    for id in ["a", "b", "c", "d"] {
        store
            .write_item(
                "shop",
                "orders",
                ItemWrite::upsert(json!({"id": id, "customerId": "one", "poison": id == "c"})),
            )
            .await
            .expect("write");
    }
    // Appends the ids it sees to the one document of the view, which it reads with an input
    // binding: every part of a bisected batch must read what the part before it wrote.
    let handler = Arc::new(RustHandler::new(|invocation: Invocation| async move {
        let changes: Vec<Value> = invocation
            .changes
            .iter()
            .map(|change| change.value().expect("JSON"))
            .collect();
        if changes.iter().any(|change| change["poison"] == true) {
            return Err(InvocationFailure::new("ValueError: poison"));
        }
        let mut seen: Vec<Value> = invocation.inputs["seen"]
            .first()
            .and_then(|doc| doc["ids"].as_array().cloned())
            .unwrap_or_default();
        seen.extend(changes.iter().map(|change| change["id"].clone()));
        Ok(InvocationOutput {
            outputs: BTreeMap::from([(
                "view".to_owned(),
                vec![json!({"id": "seen", "ids": seen})],
            )]),
            failed_items: Vec::new(),
        })
    }));
    let mut function = definition("append", json!({}));
    let input = json!({
        "type": "cosmosDB", "direction": "in", "name": "seen", "connection": "Cosmos",
        "databaseName": "shop", "containerName": "view", "sqlQuery": "SELECT * FROM c",
    });
    let ReadFunction::Run(with_input) = read_function(
        "append",
        &[
            json!({"type": "cosmosDBTrigger", "direction": "in", "name": "documents", "connection": "Cosmos", "databaseName": "shop", "containerName": "orders"}),
            input,
        ],
        None,
    )
    .expect("valid") else {
        panic!("not skipped");
    };
    function.inputs = with_input.inputs;
    let app = FunctionApp::new(settings()).function(function, handler);
    let host = start(&store, app).await;
    wait_until("the dead letter", || {
        documents(&store, "deadletter").len() == 1
    })
    .await;
    host.stop().await;
    let view = documents(&store, "view");
    assert_eq!(view.len(), 1);
    assert_eq!(
        view[0]["ids"],
        json!(["a", "b", "d"]),
        "no part's update was lost"
    );
}
