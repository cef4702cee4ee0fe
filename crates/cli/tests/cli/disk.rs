//! `serve --min-free-disk`: with a reserve larger than any disk, the real free space of the
//! data directory's disk is below it, so a write is answered 507 naming the cause while reads
//! answer 200.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use serde_json::{Value, json};
use tributary_client::{CosmosClient, Method};
use tributary_wire::headers;

use crate::harness::{CONTAINER, DATABASE, DataDir, tributary};

/// Longest the server may take to print its banner.
const BANNER_TIMEOUT: Duration = Duration::from_secs(20);
/// A reserve in MiB (1 EiB) no disk has free.
const HUGE_RESERVE_MIB: &str = "1099511627776";

/// A `tributary serve` process, killed on drop.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The endpoint the banner of a starting server prints, once it is ready.
fn endpoint_from_banner(lines: &Receiver<String>) -> String {
    let mut endpoint = None;
    loop {
        let line = lines
            .recv_timeout(BANNER_TIMEOUT)
            .expect("the server prints its banner");
        if let Some(value) = line.strip_prefix("endpoint: ") {
            endpoint = Some(value.to_owned());
        }
        if line.starts_with("ready in ") {
            return endpoint.expect("the banner names the endpoint");
        }
    }
}

#[tokio::test]
async fn a_reserve_above_the_free_space_answers_writes_507_and_reads_200() {
    let data_dir = DataDir::with_orders(1).await;
    let mut command = tributary(&[
        "serve",
        "--http",
        "--port",
        "0",
        "--durability",
        "relaxed",
        "--min-free-disk",
        HUGE_RESERVE_MIB,
    ]);
    command
        .args(data_dir.arg())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().expect("the server starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let serving = Serving(child);
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = sender.send(line);
        }
    });
    let endpoint = endpoint_from_banner(&lines);
    let client = CosmosClient::from_connection_string(&format!(
        "AccountEndpoint={endpoint};AccountKey={};",
        tributary_wire::auth::EMULATOR_KEY
    ))
    .expect("a valid connection string");

    let path = format!("/dbs/{DATABASE}/colls/{CONTAINER}/docs");
    let customer = json!(["c0"]).to_string();
    let body = json!({"id": "refused", "customer": "c0"}).to_string();
    let refused = client
        .send(
            Method::POST,
            &path,
            &[(headers::X_MS_DOCUMENTDB_PARTITIONKEY, &customer)],
            Some(body.into_bytes()),
        )
        .await
        .expect("the server answers");
    assert_eq!(refused.status, 507, "{refused:?}");
    let message: Value = serde_json::from_slice(&refused.body).expect("a JSON error body");
    let message = message["message"].as_str().expect("a message").to_owned();
    assert!(
        message.starts_with(&format!(
            "the disk holding {} has ",
            data_dir.path().display()
        )),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(
            " MiB free, below the {HUGE_RESERVE_MIB} MiB reserve; writes resume on their own \
             when space is freed"
        )),
        "{message}"
    );
    assert_eq!(refused.header(headers::X_MS_RETRY_AFTER_MS), Some("1000"));

    let read = client
        .read_document(DATABASE, CONTAINER, &json!("c0"), "order-0")
        .await
        .expect("a point read answers");
    assert!(read.is_some(), "the order written before is there");
    drop(serving);
}
