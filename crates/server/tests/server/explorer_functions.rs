//! The Explorer's functions endpoints (`/_explorer/functions...`) over the HTTP layer: what
//! they answer with and without a host attached, their signatures (a replay needs a
//! read-write key), and their refusals. The host here is a small in-memory one; the real
//! host behind the same trait is tested in `crates/functions` (`HostHandle`) and, through
//! `tributary serve --functions`, by the Explorer's browser tests.

use std::sync::{Arc, Mutex};

use axum::http::Method;
use serde_json::{Value, json};
use tributary_server::{
    AccountKeys, FunctionReport, FunctionsHost, FunctionsReport, HostFuture, HostRefusal,
    ReplayOutcome, SkippedReport,
};
use tributary_wire::auth::{KeyKind, MasterKey};
use tributary_wire::headers;

use crate::harness::{TestRequest, TestServer};

/// A host with one function, `copy`, whose dead letters are kept in memory; a replay of a
/// dead letter whose item has `"poison": true` fails again.
#[derive(Default)]
struct MemoryHost {
    dead_letters: Mutex<Vec<Value>>,
    n_replayed: Mutex<u64>,
}

impl MemoryHost {
    fn with_dead_letters(dead_letters: Vec<Value>) -> Arc<MemoryHost> {
        Arc::new(MemoryHost {
            dead_letters: Mutex::new(dead_letters),
            n_replayed: Mutex::new(0),
        })
    }

    fn check_function(function: &str) -> Result<(), HostRefusal> {
        if function == "copy" {
            Ok(())
        } else {
            Err(HostRefusal::NotFound(format!(
                "no function named '{function}' runs in this host"
            )))
        }
    }
}

impl FunctionsHost for MemoryHost {
    fn report(&self) -> HostFuture<'_, FunctionsReport> {
        Box::pin(async move {
            FunctionsReport {
                functions: vec![FunctionReport {
                    name: "copy".into(),
                    processor: "copy".into(),
                    source: "shop/orders".into(),
                    lease_container: "shop/leases".into(),
                    dead_letter_container: "shop/deadletter".into(),
                    exactly_once: true,
                    succeeded: 5 + *self.n_replayed.lock().expect("lock"),
                    failed: 3,
                    timed_out: 0,
                    retries: 2,
                    dead_lettered: 1,
                    changes: 6,
                    filtered: 0,
                    leases: Vec::new(),
                }],
                skipped: vec![SkippedReport {
                    name: "http_hello".into(),
                    reason: "trigger type 'httpTrigger' is not a Cosmos DB trigger".into(),
                }],
            }
        })
    }

    fn dead_letters<'a>(
        &'a self,
        function: &'a str,
    ) -> HostFuture<'a, Result<Vec<Value>, HostRefusal>> {
        Box::pin(async move {
            MemoryHost::check_function(function)?;
            Ok(self.dead_letters.lock().expect("lock").clone())
        })
    }

    fn replay<'a>(
        &'a self,
        function: &'a str,
        id: &'a str,
    ) -> HostFuture<'a, Result<ReplayOutcome, HostRefusal>> {
        Box::pin(async move {
            MemoryHost::check_function(function)?;
            let mut dead_letters = self.dead_letters.lock().expect("lock");
            let position = dead_letters
                .iter()
                .position(|dead_letter| dead_letter["id"] == id)
                .ok_or_else(|| {
                    HostRefusal::NotFound(format!("function 'copy' has no dead letter '{id}'"))
                })?;
            if dead_letters[position]["item"]["poison"] == true {
                return Ok(ReplayOutcome::FailedAgain(
                    "ValueError: still poison".into(),
                ));
            }
            dead_letters.remove(position);
            *self.n_replayed.lock().expect("lock") += 1;
            Ok(ReplayOutcome::Replayed)
        })
    }
}

fn dead_letter(id: &str, item: Value) -> Value {
    json!({"id": id, "function": "copy", "itemId": item["id"], "item": item,
        "error": "ValueError: boom", "attempts": 4})
}

/// A request on a functions path, signed as a request on the account.
fn account_request<'a>(server: &'a TestServer, method: Method, path: &str) -> TestRequest<'a> {
    server.request(method, path).signed_as("", "")
}

#[tokio::test]
async fn without_a_host_the_report_says_so_and_the_rest_is_not_found() {
    let server = TestServer::start().await;
    let report = account_request(&server, Method::GET, "/_explorer/functions")
        .send()
        .await;
    report.expect_status(200);
    assert_eq!(
        report.json(),
        json!({"hosted": false, "functions": [], "skipped": []})
    );
    let message = account_request(
        &server,
        Method::GET,
        "/_explorer/functions/copy/deadletters",
    )
    .send()
    .await
    .expect_error(404);
    assert!(message.contains("tributary serve --functions"), "{message}");
    account_request(
        &server,
        Method::POST,
        "/_explorer/functions/copy/deadletters/d1/replay",
    )
    .send()
    .await
    .expect_error(404);
}

#[tokio::test]
async fn the_report_lists_functions_with_their_counters_and_the_skipped_ones() {
    let host = MemoryHost::with_dead_letters(Vec::new());
    let server = TestServer::start_with_functions_host(host, |_| {}).await;
    let report = account_request(&server, Method::GET, "/_explorer/functions")
        .send()
        .await;
    report.expect_status(200);
    let report = report.json();
    assert_eq!(report["hosted"], true);
    let function = &report["functions"][0];
    assert_eq!(function["name"], "copy");
    assert_eq!(function["leaseContainer"], "shop/leases");
    assert_eq!(function["deadLetterContainer"], "shop/deadletter");
    assert_eq!(function["exactlyOnce"], true);
    assert_eq!(function["succeeded"], 5);
    assert_eq!(function["failed"], 3);
    assert_eq!(function["timedOut"], 0);
    assert_eq!(function["retries"], 2);
    assert_eq!(function["deadLettered"], 1);
    assert_eq!(report["skipped"][0]["name"], "http_hello");
}

#[tokio::test]
async fn dead_letters_are_listed_and_replayed_and_a_new_failure_keeps_one() {
    let host = MemoryHost::with_dead_letters(vec![
        dead_letter("d1", json!({"id": "o1"})),
        dead_letter("d2", json!({"id": "o2", "poison": true})),
    ]);
    let server = TestServer::start_with_functions_host(host, |_| {}).await;
    let listed = account_request(
        &server,
        Method::GET,
        "/_explorer/functions/copy/deadletters",
    )
    .send()
    .await;
    listed.expect_status(200);
    let listed = listed.json();
    assert_eq!(listed["function"], "copy");
    assert_eq!(listed["truncated"], false);
    assert_eq!(listed["deadLetters"].as_array().map(Vec::len), Some(2));
    assert_eq!(listed["deadLetters"][0]["error"], "ValueError: boom");

    let replayed = account_request(
        &server,
        Method::POST,
        "/_explorer/functions/copy/deadletters/d1/replay",
    )
    .send()
    .await;
    replayed.expect_status(200);
    assert_eq!(
        replayed.json(),
        json!({"function": "copy", "id": "d1", "replayed": true})
    );
    let failed_again = account_request(
        &server,
        Method::POST,
        "/_explorer/functions/copy/deadletters/d2/replay",
    )
    .send()
    .await;
    failed_again.expect_status(200);
    assert_eq!(
        failed_again.json(),
        json!({"function": "copy", "id": "d2", "replayed": false, "error": "ValueError: still poison"})
    );
    let listed = account_request(
        &server,
        Method::GET,
        "/_explorer/functions/copy/deadletters",
    )
    .send()
    .await
    .json();
    assert_eq!(listed["deadLetters"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed["deadLetters"][0]["id"], "d2");
    let report = account_request(&server, Method::GET, "/_explorer/functions")
        .send()
        .await
        .json();
    assert_eq!(report["functions"][0]["succeeded"], 6);
}

#[tokio::test]
async fn unknown_functions_and_dead_letters_and_paths_are_not_found() {
    let host = MemoryHost::with_dead_letters(vec![dead_letter("d1", json!({"id": "o1"}))]);
    let server = TestServer::start_with_functions_host(host, |_| {}).await;
    let message = account_request(
        &server,
        Method::GET,
        "/_explorer/functions/nope/deadletters",
    )
    .send()
    .await
    .expect_error(404);
    assert!(message.contains("'nope'"), "{message}");
    let message = account_request(
        &server,
        Method::POST,
        "/_explorer/functions/copy/deadletters/d9/replay",
    )
    .send()
    .await
    .expect_error(404);
    assert!(message.contains("'d9'"), "{message}");
    let message = account_request(&server, Method::GET, "/_explorer/functions/copy/leases")
        .send()
        .await
        .expect_error(404);
    assert!(
        message.contains("/_explorer/functions/{function}/deadletters"),
        "{message}"
    );
    // `/_explorer/functionsX` is not a functions path but a (missing) file of the page.
    server
        .request(Method::GET, "/_explorer/functionsX")
        .send()
        .await
        .expect_error(404);
}

#[tokio::test]
async fn verbs_parameters_and_percent_encoded_names_are_checked() {
    let host = MemoryHost::with_dead_letters(vec![dead_letter("d 1/x", json!({"id": "o1"}))]);
    let server = TestServer::start_with_functions_host(host, |_| {}).await;
    account_request(&server, Method::POST, "/_explorer/functions")
        .send()
        .await
        .expect_error(405);
    account_request(
        &server,
        Method::GET,
        "/_explorer/functions/copy/deadletters/d1/replay",
    )
    .send()
    .await
    .expect_error(405);
    let message = account_request(&server, Method::GET, "/_explorer/functions?x=1")
        .send()
        .await
        .expect_error(400);
    assert!(message.contains("no parameters"), "{message}");
    // An id with a space and a slash, percent-encoded in its one segment.
    account_request(
        &server,
        Method::POST,
        "/_explorer/functions/copy/deadletters/d%201%2Fx/replay",
    )
    .send()
    .await
    .expect_status(200);
}

#[tokio::test]
async fn every_functions_path_needs_the_accounts_signature_and_a_replay_a_read_write_key() {
    let keys = AccountKeys::generate().expect("the OS has random bytes");
    let read_only = MasterKey::from_base64(
        keys.get(KeyKind::PrimaryReadOnly)
            .expect("generated keys have a read-only key"),
    )
    .expect("a generated key is valid base64");
    let host = MemoryHost::with_dead_letters(vec![dead_letter("d1", json!({"id": "o1"}))]);
    let server = TestServer::start_with_functions_host(host, |config| config.keys = keys).await;
    for path in [
        "/_explorer/functions",
        "/_explorer/functions/copy/deadletters",
    ] {
        let unsigned = server
            .request(Method::GET, path)
            .without(headers::AUTHORIZATION)
            .send()
            .await;
        let message = unsigned.expect_error(401);
        assert!(!message.is_empty());
        assert!(
            !String::from_utf8_lossy(&unsigned.body).contains("ValueError"),
            "no dead letter in a refusal"
        );
        account_request(&server, Method::GET, path)
            .signed_as("docs", "dbs/shop/colls/deadletter")
            .send()
            .await
            .expect_error(401);
        account_request(&server, Method::GET, path)
            .signed_with(read_only.clone())
            .send()
            .await
            .expect_status(200);
    }
    let replay = "/_explorer/functions/copy/deadletters/d1/replay";
    let message = account_request(&server, Method::POST, replay)
        .signed_with(read_only)
        .send()
        .await
        .expect_error(403);
    assert!(message.contains("read-only"), "{message}");
    account_request(&server, Method::POST, replay)
        .send()
        .await
        .expect_status(200);
}
