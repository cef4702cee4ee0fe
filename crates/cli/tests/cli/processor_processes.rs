//! Processor hosts as separate OS processes on one `tributary serve`, killed and restarted
//! while writes stream in: what the change feed processor promises across real crashes.
//!
//! A server process serves a fresh data directory; [`N_HOSTS`] host processes (`tributary
//! bench processor-host` with `report_documents`) share the leases of a container of
//! [`N_RANGES`] feed ranges, with short lease intervals. Each host prints every handler call
//! as a JSON line (the documents, the lease, a batch number), flushed inside the handler, so
//! before the checkpoint: whatever a host handled is on record even if it is SIGKILLed the
//! next instant. While [`N_KEYS`] writers upsert [`N_PER_KEY`] documents each (one key per
//! writer, one write at a time, each document carrying its key's sequence number), a seeded
//! schedule SIGKILLs a random host working on leases [`N_FAULTS`] times and restarts it (under the same name or
//! a new one), and once sends SIGTERM instead. Then every host stops gracefully.
//!
//! Checked, from the hosts' records:
//! - **at least once**: every written document was handled (the rest are counted duplicates);
//!   nothing else was;
//! - **order per lease**: within one ownership span (a host process from acquiring a lease
//!   to releasing it or dying) the documents of a lease arrive in strictly increasing `_lsn`,
//!   and each partition key's sequence numbers arrive with no gap and no repeat (a key lives
//!   in one lease: no splits here); a redelivery can only start a new span;
//! - **one owner at a time**: ordered by wall-clock time (one machine), the handler calls on
//!   a lease never interleave two spans;
//! - a handler call only happens while its host holds the lease; a host's batch numbers have
//!   no gap (no line lost); a gracefully stopped host releases every lease and exits 0.
//!
//! `TRIBUTARY_PROCESSES_SEED=n` replays a fault schedule (the processes' timing does not
//! replay).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead as _, BufReader};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tributary_bench::{HostEvent, ProcessorHostOptions};
use tributary_client::{ClientError, CosmosClient, Method};

use crate::harness::{DataDir, tributary};

/// The database, monitored container and lease container `bench processor-host` uses.
const DATABASE: &str = "bench";
const CONTAINER: &str = "orders";
/// Feed ranges of the monitored container (one lease each): 10,000 RU/s per range.
const N_RANGES: usize = 4;
const THROUGHPUT: &str = "40000";
/// Host processes running at any time (but during a restart).
const N_HOSTS: usize = 3;
/// Partition keys, one writer each.
const N_KEYS: u64 = 32;
/// Documents per partition key.
const N_PER_KEY: u64 = 94;
/// Time between two writes of one writer (all writers: about 200 writes/s for 15 s, longer
/// than the faults take).
const WRITE_INTERVAL: Duration = Duration::from_millis(160);
/// Most attempts of one write the server throttles.
const MAX_WRITE_ATTEMPTS: u32 = 20;
/// Most changes per handler call: small, so a kill often lands between a batch and its
/// checkpoint.
const MAX_ITEMS: usize = 25;
/// How long a handler works on a batch after recording it, before its checkpoint: the window
/// in which a kill makes the batch be delivered again.
const HANDLER_DELAY_MS: u64 = 20;
const ACQUIRE_INTERVAL_MS: u64 = 300;
const RENEW_INTERVAL_MS: u64 = 300;
const EXPIRATION_INTERVAL_MS: u64 = 2000;
/// Kills and stops of a host (one of them a SIGTERM), each followed by a restart.
const N_FAULTS: usize = 6;
/// Time before each fault, ms (seeded).
const FAULT_GAP_MS: std::ops::Range<u64> = 1200..2200;
/// Time from a fault to the restart, ms (seeded).
const RESTART_DELAY_MS: std::ops::Range<u64> = 200..800;
/// Bounds of every wait.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(20);
const LEASES_TAKEN_TIMEOUT: Duration = Duration::from_secs(20);
const WRITES_TIMEOUT: Duration = Duration::from_secs(40);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
const EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a wait looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[tokio::test(flavor = "multi_thread")]
async fn processor_processes_deliver_every_change_in_order_through_kills_and_restarts() {
    let started = Instant::now();
    let seed = std::env::var("TRIBUTARY_PROCESSES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| unix_ns() % 1_000_000);
    println!("processor processes: seed {seed} (TRIBUTARY_PROCESSES_SEED={seed} replays it)");
    let mut random = SplitMix64(seed);

    let data_dir = DataDir::new();
    let server = ServerProcess::start(&data_dir);
    let client = CosmosClient::from_connection_string(&server.connection_string)
        .expect("the server's connection string is valid");
    create_container(&client).await;

    let mut hosts = Hosts {
        connection_string: server.connection_string.clone(),
        all: Vec::new(),
        running: Vec::new(),
        n_names: 0,
    };
    for _ in 0..N_HOSTS {
        let name = hosts.new_name();
        let index = hosts.spawn(name);
        hosts.running.push(index);
    }
    wait_until("every lease taken by a host", LEASES_TAKEN_TIMEOUT, || {
        hosts.acquired_leases().len() >= N_RANGES
    })
    .await;

    // Writers and faults at once.
    let writers = tokio::spawn(write_documents(client.clone()));
    let n_sigterm_at = random.below(N_FAULTS as u64) as usize;
    let mut faults = Vec::new();
    for n in 0..N_FAULTS {
        tokio::time::sleep(Duration::from_millis(random.within(&FAULT_GAP_MS))).await;
        // A host working on leases, so the fault moves them.
        let busy: Vec<usize> = (0..N_HOSTS)
            .filter(|&slot| hosts.all[hosts.running[slot]].n_held_leases() > 0)
            .collect();
        let slot = match busy.as_slice() {
            [] => random.below(N_HOSTS as u64) as usize,
            busy => busy[random.below(busy.len() as u64) as usize],
        };
        let index = hosts.running[slot];
        let graceful = n == n_sigterm_at;
        if graceful {
            hosts.all[index].terminate();
            hosts.all[index].wait_for_exit(EXIT_TIMEOUT).await;
        } else {
            hosts.all[index].kill();
        }
        faults.push(format!(
            "{:.1}s {} {}",
            started.elapsed().as_secs_f64(),
            if graceful { "SIGTERM" } else { "SIGKILL" },
            hosts.all[index].name
        ));
        tokio::time::sleep(Duration::from_millis(random.within(&RESTART_DELAY_MS))).await;
        let name = if random.below(2) == 0 {
            hosts.all[index].name.clone()
        } else {
            hosts.new_name()
        };
        hosts.running[slot] = hosts.spawn(name);
    }
    let faults_done = started.elapsed();
    let written = tokio::time::timeout(WRITES_TIMEOUT, writers)
        .await
        .expect("the writers finish in time")
        .expect("the writers do not panic");
    let writes_done = started.elapsed();

    // Every written document handled (by now every host runs again).
    let delivery_started = Instant::now();
    wait_until("every written document handled", DELIVERY_TIMEOUT, || {
        hosts.delivered_ids().is_superset(&written)
    })
    .await;
    let delivery_wait = delivery_started.elapsed();

    // Every host stops gracefully (a host restarted last may still be starting).
    let running = hosts.running.clone();
    wait_until("every host started", LEASES_TAKEN_TIMEOUT, || {
        running.iter().all(|&index| hosts.all[index].has_started())
    })
    .await;
    for &index in &running {
        hosts.all[index].terminate();
    }
    for &index in &running {
        hosts.all[index].wait_for_exit(EXIT_TIMEOUT).await;
    }

    let records: Vec<HostRecord> = hosts.all.iter_mut().map(Host::record).collect();
    let report = check(&records, &written);
    println!(
        "processor processes: {} hosts on {} leases, {} documents over {} keys written until \
         {:.1}s; faults until {:.1}s: {}",
        N_HOSTS,
        N_RANGES,
        written.len(),
        N_KEYS,
        writes_done.as_secs_f64(),
        faults_done.as_secs_f64(),
        faults.join(", ")
    );
    println!(
        "processor processes: {} SIGKILLs, {} SIGTERM, {} host processes in all; {} handler calls \
         in {} ownership spans; {} deliveries of {} documents: {} duplicates; every document \
         handled {:.1}s after the last write; {:.1}s in all; releases {:?}",
        N_FAULTS - 1,
        1,
        records.len(),
        report.n_batches,
        report.n_spans,
        report.n_deliveries,
        written.len(),
        report.n_deliveries - written.len() as u64,
        delivery_wait.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        report.releases
    );
    if !report.errors.is_empty() {
        for record in &records {
            println!(
                "processor processes: host process {} ({}): {} lines, {}",
                record.index,
                record.name,
                record.lines.len(),
                if record.killed { "killed" } else { "stopped" }
            );
        }
    }
    assert!(
        report.errors.is_empty(),
        "seed {seed}: {} violations, the first ones:\n{}",
        report.errors.len(),
        report
            .errors
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        report.n_spans > N_RANGES,
        "the faults moved no lease ({} spans)",
        report.n_spans
    );
}

/// `bench/orders`, partitioned by `/pk`, with [`N_RANGES`] feed ranges.
async fn create_container(client: &CosmosClient) {
    client
        .create_database_if_not_exists(DATABASE)
        .await
        .expect("the database is created");
    let body = json!({
        "id": CONTAINER,
        "partitionKey": { "paths": ["/pk"], "kind": "Hash", "version": 2 },
    });
    let response = client
        .send(
            Method::POST,
            &format!("/dbs/{DATABASE}/colls"),
            &[("x-ms-offer-throughput", THROUGHPUT)],
            Some(body.to_string().into_bytes()),
        )
        .await
        .expect("the server answers");
    assert_eq!(
        response.status, 201,
        "the container is created: {response:?}"
    );
    let ranges = client
        .partition_key_ranges(DATABASE, CONTAINER)
        .await
        .expect("the ranges are listed");
    assert_eq!(ranges.len(), N_RANGES, "{ranges:?}");
}

/// One writer per key, each upserting its documents in sequence order, one at a time (so a
/// key's sequence numbers are in feed order). Returns the ids written.
async fn write_documents(client: CosmosClient) -> BTreeSet<String> {
    let mut writers = tokio::task::JoinSet::new();
    for key in 0..N_KEYS {
        let client = client.clone();
        writers.spawn(async move {
            tokio::time::sleep(WRITE_INTERVAL * key as u32 / N_KEYS as u32).await;
            let partition_key = json!(key_name(key));
            for seq in 0..N_PER_KEY {
                let document =
                    json!({"id": document_id(key, seq), "pk": key_name(key), "seq": seq});
                let mut attempt = 1;
                loop {
                    match client
                        .upsert_document(DATABASE, CONTAINER, &partition_key, &document)
                        .await
                    {
                        Ok(_) => break,
                        // Refused, not applied: a retry cannot reorder the key's writes.
                        Err(ClientError::Throttled { retry_after })
                            if attempt < MAX_WRITE_ATTEMPTS =>
                        {
                            attempt += 1;
                            let pause = retry_after.unwrap_or(Duration::from_millis(50));
                            tokio::time::sleep(pause.min(Duration::from_millis(500))).await;
                        }
                        Err(error) => panic!("writing {document} failed: {error}"),
                    }
                }
                tokio::time::sleep(WRITE_INTERVAL).await;
            }
        });
    }
    while let Some(result) = writers.join_next().await {
        result.expect("a writer does not panic");
    }
    (0..N_KEYS)
        .flat_map(|key| (0..N_PER_KEY).map(move |seq| document_id(key, seq)))
        .collect()
}

fn key_name(key: u64) -> String {
    format!("key-{key:02}")
}

fn document_id(key: u64, seq: u64) -> String {
    format!("k{key:02}-{seq:03}")
}

/// Waits until `done`, failing the test after `timeout`.
async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?}: {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A small seeded generator (SplitMix64): the fault schedule replays from its seed.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1330_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn within(&mut self, range: &std::ops::Range<u64>) -> u64 {
        range.start + self.below(range.end - range.start)
    }
}

// ---------------------------------------------------------------------------------------
// Processes.

/// `tributary serve --http` on a free port; killed on drop.
struct ServerProcess {
    child: Child,
    connection_string: String,
}

impl ServerProcess {
    fn start(data_dir: &DataDir) -> ServerProcess {
        let mut command = tributary(&["serve", "--http", "--port", "0", "--durability", "relaxed"]);
        command
            .args(data_dir.arg())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("the server starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = std::sync::mpsc::channel();
        // Reads the banner, then drains stdout for as long as the server runs.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(text) = line.strip_prefix("connection string: ") {
                    let _ = sender.send(text.to_owned());
                }
            }
        });
        // Killed on drop from here, should the banner not come.
        let mut server = ServerProcess {
            child,
            connection_string: String::new(),
        };
        server.connection_string = receiver
            .recv_timeout(SERVER_START_TIMEOUT)
            .expect("the server prints its connection string");
        server
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One line a host printed.
#[derive(Debug)]
enum Line {
    Event(HostEvent),
    /// The end of the output of a host killed while printing.
    Partial(String),
    /// Not an event.
    Garbage(String),
}

/// The host processes of the run, dead and alive.
struct Hosts {
    connection_string: String,
    /// Every host process started, by index.
    all: Vec<Host>,
    /// The running host of each slot.
    running: Vec<usize>,
    n_names: usize,
}

impl Hosts {
    fn new_name(&mut self) -> String {
        self.n_names += 1;
        format!("h{}", self.n_names)
    }

    fn spawn(&mut self, name: String) -> usize {
        let options = ProcessorHostOptions {
            connection_string: self.connection_string.clone(),
            instance: name.clone(),
            max_items: MAX_ITEMS,
            acquire_interval_ms: ACQUIRE_INTERVAL_MS,
            renew_interval_ms: RENEW_INTERVAL_MS,
            expiration_interval_ms: EXPIRATION_INTERVAL_MS,
            report_documents: true,
            handler_delay_ms: HANDLER_DELAY_MS,
        };
        let config = serde_json::to_string(&options).expect("the host config encodes");
        let mut command = tributary(&["bench", "processor-host", "--config", &config]);
        command
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("a host process starts");
        // Held open: a host stops when its stdin ends.
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || read_lines(stdout, &lines))
        };
        self.all.push(Host {
            index: self.all.len(),
            name,
            child,
            stdin,
            lines,
            reader: Some(reader),
            killed: false,
        });
        self.all.len() - 1
    }

    /// The leases some host has taken so far.
    fn acquired_leases(&self) -> BTreeSet<String> {
        let mut leases = BTreeSet::new();
        for host in &self.all {
            for line in lock(&host.lines).iter() {
                if let Line::Event(HostEvent::Acquired { lease, .. }) = line {
                    leases.insert(lease.clone());
                }
            }
        }
        leases
    }

    /// The ids of the documents some host has handled so far.
    fn delivered_ids(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for host in &self.all {
            for line in lock(&host.lines).iter() {
                if let Line::Event(HostEvent::Delivered { documents, .. }) = line {
                    for document in documents {
                        if let Some(id) = document["id"].as_str() {
                            ids.insert(id.to_owned());
                        }
                    }
                }
            }
        }
        ids
    }
}

fn read_lines(stdout: std::process::ChildStdout, lines: &Mutex<Vec<Line>>) {
    let mut reader = BufReader::new(stdout);
    let mut text = String::new();
    loop {
        text.clear();
        match reader.read_line(&mut text) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = match text.strip_suffix('\n') {
            None => Line::Partial(text.clone()),
            Some(whole) => match serde_json::from_str::<HostEvent>(whole) {
                Ok(event) => Line::Event(event),
                Err(_) => Line::Garbage(whole.chars().take(300).collect()),
            },
        };
        lock(lines).push(line);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One host process; killed on drop if still running.
struct Host {
    index: usize,
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Arc<Mutex<Vec<Line>>>,
    reader: Option<JoinHandle<()>>,
    killed: bool,
}

impl Host {
    fn kill(&mut self) {
        self.killed = true;
        self.child.kill().expect("SIGKILL is sent");
        self.child.wait().expect("the killed host is reaped");
    }

    fn terminate(&mut self) {
        rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        )
        .expect("SIGTERM is sent");
    }

    /// The leases the host is working on, as far as it has said.
    fn n_held_leases(&self) -> usize {
        let mut held = BTreeSet::new();
        for line in lock(&self.lines).iter() {
            match line {
                Line::Event(HostEvent::Acquired { lease, .. }) => {
                    held.insert(lease.clone());
                }
                Line::Event(HostEvent::Released { lease, .. }) => {
                    held.remove(lease);
                }
                _ => {}
            }
        }
        held.len()
    }

    /// Whether the host's processor has started.
    fn has_started(&self) -> bool {
        lock(&self.lines)
            .iter()
            .any(|line| matches!(line, Line::Event(HostEvent::Started { .. })))
    }

    /// Waits for a host told to stop; it must exit 0.
    async fn wait_for_exit(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the host can be waited on") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "host {} did not stop within {timeout:?}",
                self.name
            );
            tokio::time::sleep(POLL_INTERVAL).await;
        };
        assert!(status.success(), "host {} stopped with {status}", self.name);
    }

    /// What the (exited) host printed.
    fn record(&mut self) -> HostRecord {
        drop(self.stdin.take());
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the output reader does not panic");
        }
        HostRecord {
            index: self.index,
            name: self.name.clone(),
            killed: self.killed,
            lines: std::mem::take(&mut *lock(&self.lines)),
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The checks.

/// What one host process printed.
struct HostRecord {
    index: usize,
    name: String,
    killed: bool,
    lines: Vec<Line>,
}

/// What the records show.
#[derive(Debug, Default)]
struct Report {
    n_batches: u64,
    n_spans: usize,
    n_deliveries: u64,
    /// Leases released, by reason.
    releases: BTreeMap<String, u32>,
    errors: Vec<String>,
}

/// One host process's work on one lease, from acquiring it to releasing it or dying.
struct Span {
    host: usize,
    last_lsn: Option<u64>,
    last_seq_by_key: HashMap<String, u64>,
}

fn check(records: &[HostRecord], written: &BTreeSet<String>) -> Report {
    let mut report = Report::default();
    let mut errors = Vec::new();
    let mut spans: Vec<Span> = Vec::new();
    let mut deliveries: BTreeMap<String, u32> = BTreeMap::new();
    let mut lease_of_key: HashMap<String, String> = HashMap::new();
    // Per lease, its handler calls: (wall-clock ns, span).
    let mut calls_by_lease: BTreeMap<String, Vec<(u64, usize)>> = BTreeMap::new();
    for record in records {
        let host = format!("host process {} ({})", record.index, record.name);
        let mut open: HashMap<String, usize> = HashMap::new();
        let mut n_batches = 0u64;
        let mut stopped = false;
        for (n_line, line) in record.lines.iter().enumerate() {
            let event = match line {
                Line::Event(event) => event,
                Line::Partial(_) if record.killed && n_line + 1 == record.lines.len() => continue,
                Line::Partial(text) | Line::Garbage(text) => {
                    errors.push(format!("{host} printed something not an event: {text}"));
                    continue;
                }
            };
            match event {
                HostEvent::Acquired { lease, .. } => {
                    if let Some(&span) = open.get(lease) {
                        errors.push(format!(
                            "{host} acquired {lease} again while still working on it (span {span})"
                        ));
                    }
                    open.insert(lease.clone(), spans.len());
                    spans.push(Span {
                        host: record.index,
                        last_lsn: None,
                        last_seq_by_key: HashMap::new(),
                    });
                }
                HostEvent::Released { lease, reason, .. } => {
                    if open.remove(lease).is_none() {
                        errors.push(format!("{host} released {lease}, which it did not hold"));
                    }
                    *report.releases.entry(reason.clone()).or_default() += 1;
                }
                HostEvent::Stopped { .. } => stopped = true,
                HostEvent::Error { lease, message, .. } => {
                    // Failures are allowed (a server busy with dying clients), but shown.
                    println!("processor processes: {host} reported on {lease:?}: {message}");
                }
                HostEvent::Started { .. } | HostEvent::Batch { .. } => {}
                HostEvent::Delivered {
                    batch,
                    lease,
                    at_ns,
                    documents,
                    instance,
                    ..
                } => {
                    report.n_batches += 1;
                    if *batch != n_batches {
                        errors.push(format!(
                            "{host} printed batch {batch} after {n_batches} batches (a line lost?)"
                        ));
                    }
                    n_batches = batch + 1;
                    if *instance != record.name {
                        errors.push(format!("{host} calls itself {instance}"));
                    }
                    let Some(&span_index) = open.get(lease) else {
                        errors.push(format!(
                            "{host} handled a batch of {lease} without holding it"
                        ));
                        continue;
                    };
                    calls_by_lease
                        .entry(lease.clone())
                        .or_default()
                        .push((*at_ns, span_index));
                    let span = &mut spans[span_index];
                    for document in documents {
                        let (Some(id), Some(key), Some(seq), Some(lsn)) = (
                            document["id"].as_str(),
                            document["pk"].as_str(),
                            document["seq"].as_u64(),
                            document["_lsn"].as_u64(),
                        ) else {
                            errors.push(format!("{host} handled a foreign document: {document}"));
                            continue;
                        };
                        report.n_deliveries += 1;
                        *deliveries.entry(id.to_owned()).or_default() += 1;
                        if !written.contains(id) {
                            errors.push(format!("{host} handled {id}, which was never written"));
                        }
                        if let Some(last) = span.last_lsn
                            && lsn <= last
                        {
                            errors.push(format!(
                                "{host} handled {id} at _lsn {lsn} after _lsn {last} on {lease} \
                                 in one span (batch {batch})"
                            ));
                        }
                        span.last_lsn = Some(lsn);
                        if let Some(&last) = span.last_seq_by_key.get(key)
                            && seq != last + 1
                        {
                            errors.push(format!(
                                "{host} handled {key} #{seq} right after #{last} on {lease} in one \
                                 span (batch {batch})"
                            ));
                        }
                        span.last_seq_by_key.insert(key.to_owned(), seq);
                        let first_lease = lease_of_key
                            .entry(key.to_owned())
                            .or_insert_with(|| lease.clone());
                        if first_lease != lease {
                            errors.push(format!(
                                "{key} was handled on {first_lease} and on {lease} (no split ran)"
                            ));
                        }
                    }
                }
            }
        }
        if !record.killed {
            if !stopped {
                errors.push(format!("{host} exited without stopping its processor"));
            }
            for (lease, _) in open {
                errors.push(format!(
                    "{host} stopped gracefully but never released {lease}"
                ));
            }
        }
    }
    for id in written {
        if !deliveries.contains_key(id) {
            errors.push(format!("{id} was written but never handled"));
        }
    }
    // One owner at a time: by time, each span's calls on a lease form one run.
    for (lease, mut calls) in calls_by_lease {
        calls.sort();
        let mut finished: BTreeSet<usize> = BTreeSet::new();
        let mut current: Option<usize> = None;
        for (at_ns, span) in calls {
            if current == Some(span) {
                continue;
            }
            if finished.contains(&span) {
                errors.push(format!(
                    "{lease}: host process {} handled a batch at {at_ns} ns after another span \
                     had started handling it (two owners at once)",
                    spans[span].host
                ));
            }
            if let Some(previous) = current {
                finished.insert(previous);
            }
            current = Some(span);
        }
    }
    report.n_spans = spans.len();
    report.errors = errors;
    report
}

/// The checks themselves, on made-up records: each violation is caught.
#[test]
fn the_checks_catch_skips_repeats_disorder_and_two_owners() {
    let acquired = |lease: &str| {
        Line::Event(HostEvent::Acquired {
            lease: lease.into(),
            at_ns: 0,
        })
    };
    let delivered = |name: &str, batch: u64, lease: &str, at_ns: u64, docs: &[(u64, u64)]| {
        Line::Event(HostEvent::Delivered {
            instance: name.into(),
            batch,
            lease: lease.into(),
            from: None,
            to: String::new(),
            at_ns,
            documents: docs
                .iter()
                .map(|&(seq, lsn)| {
                    json!({"id": document_id(0, seq), "pk": key_name(0), "seq": seq, "_lsn": lsn})
                })
                .collect(),
        })
    };
    let record = |index: usize, name: &str, lines: Vec<Line>| HostRecord {
        index,
        name: name.into(),
        killed: true,
        lines,
    };
    let written: BTreeSet<String> = (0..4).map(|seq| document_id(0, seq)).collect();
    let errors = |records: Vec<HostRecord>| check(&records, &written).errors;

    // In order, with a redelivery in a new span after a crash: fine.
    let good = vec![
        record(
            0,
            "a",
            vec![
                acquired("L"),
                delivered("a", 0, "L", 1, &[(0, 10), (1, 11)]),
                delivered("a", 1, "L", 2, &[(2, 12)]),
            ],
        ),
        record(
            1,
            "b",
            vec![
                acquired("L"),
                delivered("b", 0, "L", 3, &[(2, 12), (3, 13)]),
                Line::Partial("{\"event\":".into()),
            ],
        ),
    ];
    assert_eq!(errors(good), Vec::<String>::new());

    let skip = vec![record(
        0,
        "a",
        vec![
            acquired("L"),
            delivered("a", 0, "L", 1, &[(0, 10), (2, 12), (3, 13)]),
        ],
    )];
    let found = errors(skip);
    assert!(
        found.iter().any(|e| e.contains("#2 right after #0")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|e| e.contains("k00-001 was written but never handled")),
        "{found:?}"
    );

    let repeat_in_a_span = vec![record(
        0,
        "a",
        vec![
            acquired("L"),
            delivered("a", 0, "L", 1, &[(0, 10), (1, 11), (2, 12), (3, 13)]),
            delivered("a", 1, "L", 2, &[(3, 13)]),
        ],
    )];
    let found = errors(repeat_in_a_span);
    assert!(
        found.iter().any(|e| e.contains("at _lsn 13 after _lsn 13")),
        "{found:?}"
    );

    let without_the_lease = vec![record(
        0,
        "a",
        vec![delivered(
            "a",
            0,
            "L",
            1,
            &[(0, 10), (1, 11), (2, 12), (3, 13)],
        )],
    )];
    let found = errors(without_the_lease);
    assert!(
        found.iter().any(|e| e.contains("without holding it")),
        "{found:?}"
    );

    let two_owners = vec![
        record(
            0,
            "a",
            vec![
                acquired("L"),
                delivered("a", 0, "L", 1, &[(0, 10), (1, 11)]),
                delivered("a", 1, "L", 5, &[(2, 12), (3, 13)]),
            ],
        ),
        record(
            1,
            "b",
            vec![acquired("L"), delivered("b", 0, "L", 3, &[(0, 10)])],
        ),
    ];
    let found = errors(two_owners);
    assert!(
        found.iter().any(|e| e.contains("two owners at once")),
        "{found:?}"
    );

    let lost_line = vec![record(
        0,
        "a",
        vec![
            acquired("L"),
            delivered("a", 0, "L", 1, &[(0, 10), (1, 11)]),
            delivered("a", 2, "L", 2, &[(2, 12), (3, 13)]),
        ],
    )];
    let found = errors(lost_line);
    assert!(found.iter().any(|e| e.contains("a line lost")), "{found:?}");
}
