//! Kills a writing process with `SIGKILL` at random moments and checks what survives.
//!
//! The parent test re-executes this test binary, filtered to
//! [`crash_child_writes_until_killed`], with [`CHILD_DIR_ENV`] naming the store directory. The
//! child opens the store with the default options (fsync before acknowledging), writes from
//! many concurrent tasks (creates, replaces of its own items, transactional batches, bulk
//! requests), and prints one line per acknowledged write. Beside them a chaos task splits the
//! container's feed ranges, writes items that the TTL sweeper (running every 20 ms) expires,
//! creates and deletes containers, and changes a database's throughput, so kills also land in
//! those. The parent kills it after a random delay, reopens
//! the directory and checks that every acknowledged write survived and that the feed is a
//! gap-free, duplicate-free prefix that agrees with point reads. The next round writes on the
//! same directory, so recovery after recovery is exercised too.
//!
//! The delays come from a seeded generator: the seed is printed, and `TRIBUTARY_CRASH_SEED`
//! replays it (process scheduling still varies between runs). `TRIBUTARY_CRASH_ROUNDS` sets
//! the number of rounds (default 20; the long campaign of `docs/crash-campaign.md` runs
//! 1,000); every [`ROUNDS_PER_DIRECTORY`] rounds start on a fresh directory, so a long run's
//! checks do not grow without bound.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tributary_store::{
    ContainerDefinition, FeedMode, FeedScope, FeedStart, ItemWrite, OperationResult, Store,
    StoreError, StoreOptions,
};

use crate::support::{
    DATABASE, change_lsn, changes, create_container, drain_feed, open_store, pk, runtime,
};

/// Set in the child's environment: the store directory it writes to.
const CHILD_DIR_ENV: &str = "TRIBUTARY_CRASH_CHILD";
/// Set in the child's environment: the round number, to make ids unique across rounds.
const CHILD_ROUND_ENV: &str = "TRIBUTARY_CRASH_ROUND";
/// Replays a run's kill delays.
const SEED_ENV: &str = "TRIBUTARY_CRASH_SEED";
/// Sets the number of rounds.
const ROUNDS_ENV: &str = "TRIBUTARY_CRASH_ROUNDS";
/// The child's test, as the test harness names it.
const CHILD_TEST: &str = "crash::crash_child_writes_until_killed";
/// Printed by the child once the store is open.
const READY_LINE: &str = "READY";
/// Prefix of the child's acknowledgement lines: `ACK\t{pk}\t{id}\t{lsn}\t{etag}`.
const ACK_PREFIX: &str = "ACK\t";

/// The signal `Child::kill` sends on Unix.
const SIGKILL: i32 = 9;

const CONTAINER: &str = "crash";
/// Items written by the chaos task expire here one second after their write.
const TTL_CONTAINER: &str = "crash-ttl";
/// A database with shared throughput that the chaos task keeps changing.
const THROUGHPUT_DATABASE: &str = "crash-throughput";
/// Rounds when [`ROUNDS_ENV`] is not set.
const DEFAULT_ROUNDS: u64 = 20;
/// Rounds on one directory before the next starts on a fresh one.
const ROUNDS_PER_DIRECTORY: u64 = 10;
/// Operations in one bulk request.
const BULK_SIZE: u64 = 40;
/// The chaos task stops splitting a container at this many current ranges.
const MAX_CHAOS_RANGES: usize = 32;
/// Concurrent writing tasks in the child.
const N_WRITERS: u64 = 8;
/// Partition key values single writes spread over.
const N_PKS: u64 = 5;
/// Operations in one transactional batch.
const BATCH_SIZE: u64 = 3;
/// Longest kill delay after the child is ready.
const MAX_KILL_DELAY_MS: u64 = 400;
/// How long the parent waits for the child to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// A child that was never killed stops writing after this long.
const CHILD_LIFETIME: Duration = Duration::from_secs(60);

/// The writer process. It does nothing unless started by
/// [`acknowledged_writes_survive_sigkill_and_the_feed_stays_a_gap_free_prefix`].
#[test]
fn crash_child_writes_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(CHILD_ROUND_ENV)
        .ok()
        .and_then(|round| round.parse().ok())
        .expect("the parent sets the round");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("a tokio runtime starts");
    runtime.block_on(write_until_killed(Path::new(&dir), round));
}

fn acknowledge(pk: &str, item: &tributary_store::Item) {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{ACK_PREFIX}{pk}\t{}\t{}\t{}",
        item.id, item.lsn, item.etag
    )
    .expect("stdout is open");
    out.flush().expect("stdout is open");
}

async fn write_until_killed(dir: &Path, round: u64) {
    let options = StoreOptions {
        maintenance_interval: Duration::from_millis(20),
        ..StoreOptions::default()
    };
    let store = Arc::new(open_store(dir, options));
    {
        let mut out = std::io::stdout().lock();
        // The test harness has printed "test <name> ... " without a line end; start a new line.
        writeln!(out, "\n{READY_LINE}").expect("stdout is open");
        out.flush().expect("stdout is open");
    }
    let started = Instant::now();
    let mut writers = Vec::new();
    for task in 0..N_WRITERS {
        let store = Arc::clone(&store);
        writers.push(tokio::spawn(async move {
            // This task's items: (pk, id, v).
            let mut own: Vec<(String, String, u64)> = Vec::new();
            let mut n = 0u64;
            while started.elapsed() < CHILD_LIFETIME {
                n += 1;
                match n % 4 {
                    0 if !own.is_empty() => {
                        let index = (n as usize / 4) % own.len();
                        let (pk_value, id, v) = own[index].clone();
                        let body = json!({"id": id, "pk": pk_value, "v": v + 1, "task": task});
                        let outcome = store
                            .write_item(DATABASE, CONTAINER, ItemWrite::replace(id.clone(), body))
                            .await
                            .expect("replacing an own item succeeds");
                        acknowledge(
                            &pk_value,
                            outcome.item.as_ref().expect("a replace returns the item"),
                        );
                        own[index].2 = v + 1;
                    }
                    3 => {
                        let pk_value = format!("batch-{round}-{task}");
                        let writes = (0..BATCH_SIZE)
                            .map(|k| {
                                ItemWrite::create(json!({
                                    "id": format!("r{round}-t{task}-n{n}-b{k}"),
                                    "pk": pk_value,
                                    "v": 0,
                                }))
                            })
                            .collect();
                        let outcome = store
                            .execute_batch(DATABASE, CONTAINER, pk(&pk_value), writes)
                            .await
                            .expect("a batch of fresh creates runs");
                        assert!(outcome.committed, "a batch of fresh creates commits");
                        for result in &outcome.results {
                            let OperationResult::Done(done) = result else {
                                panic!("a committed batch has only done operations");
                            };
                            acknowledge(
                                &pk_value,
                                done.item.as_ref().expect("a create returns the item"),
                            );
                        }
                    }
                    _ => {
                        let pk_value = format!("p{}", n % N_PKS);
                        let id = format!("r{round}-t{task}-n{n}");
                        let body = json!({"id": id, "pk": pk_value, "v": 0, "task": task});
                        let outcome = store
                            .write_item(DATABASE, CONTAINER, ItemWrite::create(body))
                            .await
                            .expect("creating a fresh item succeeds");
                        acknowledge(
                            &pk_value,
                            outcome.item.as_ref().expect("a create returns the item"),
                        );
                        own.push((pk_value, id, 0));
                    }
                }
            }
        }));
    }
    writers.push(tokio::spawn(bulk_until(Arc::clone(&store), round, started)));
    writers.push(tokio::spawn(chaos_until(
        Arc::clone(&store),
        round,
        started,
    )));
    for writer in writers {
        writer.await.expect("writers do not panic");
    }
}

/// Bulk requests of fresh creates over several partition keys, each operation acknowledged.
async fn bulk_until(store: Arc<Store>, round: u64, started: Instant) {
    let mut n = 0u64;
    while started.elapsed() < CHILD_LIFETIME {
        n += 1;
        let bodies: Vec<Value> = (0..BULK_SIZE)
            .map(|k| json!({"id": format!("r{round}-bulk{n}-{k}"), "pk": format!("bulk-{}", k % 7), "v": 0}))
            .collect();
        let writes = bodies.iter().cloned().map(ItemWrite::create).collect();
        let results = store
            .write_items(DATABASE, CONTAINER, writes)
            .await
            .expect("a bulk request is taken");
        for (body, result) in bodies.iter().zip(results) {
            let outcome = result.expect("a fresh create in a bulk succeeds");
            acknowledge(
                body["pk"].as_str().expect("pk"),
                outcome.item.as_ref().expect("a create returns the item"),
            );
        }
    }
}

/// Splits, TTL expiries, container churn and throughput changes, so kills land in them too.
async fn chaos_until(store: Arc<Store>, round: u64, started: Instant) {
    let mut m = 0u64;
    while started.elapsed() < CHILD_LIFETIME {
        m += 1;
        match m % 4 {
            0 => {
                let container = store
                    .read_container(DATABASE, CONTAINER)
                    .expect("the container is there");
                let current: Vec<u32> = container
                    .feed_ranges
                    .iter()
                    .filter(|range| range.children.is_empty())
                    .map(|range| range.id)
                    .collect();
                if current.len() < MAX_CHAOS_RANGES {
                    let range = current[(m as usize / 4) % current.len()];
                    match store.split_range(DATABASE, CONTAINER, range).await {
                        // A range too small to split at a median is refused.
                        Ok(_) | Err(StoreError::BadRequest(_)) => {}
                        Err(error) => panic!("splitting range {range}: {error}"),
                    }
                }
            }
            1 => {
                for k in 0..5 {
                    let body = json!({"id": format!("r{round}-ttl{m}-{k}"), "pk": format!("t{k}")});
                    store
                        .write_item(DATABASE, TTL_CONTAINER, ItemWrite::upsert(body))
                        .await
                        .expect("an upsert into the TTL container succeeds");
                }
            }
            2 => {
                let id = format!("churn-{round}-{m}");
                store
                    .create_container(DATABASE, ContainerDefinition::new(&id, "/pk"), 2)
                    .await
                    .expect("a fresh container is created");
                for k in 0..3 {
                    let body = json!({"id": format!("i{k}"), "pk": "p"});
                    store
                        .write_item(DATABASE, &id, ItemWrite::create(body))
                        .await
                        .expect("a create in a fresh container succeeds");
                }
                store
                    .delete_container(DATABASE, &id)
                    .await
                    .expect("the container is deleted");
            }
            _ => {
                store
                    .replace_database_throughput(THROUGHPUT_DATABASE, 400 + (m % 10) * 100, None)
                    .await
                    .expect("the throughput changes");
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Kills the child when the parent's test fails half-way, so no writer outlives it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A small deterministic generator (SplitMix64) for kill delays.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// One acknowledged version: `(lsn, etag)`, keyed by `(pk, id)`.
type Acknowledged = BTreeMap<(String, String), (u64, String)>;

#[test]
fn acknowledged_writes_survive_sigkill_and_the_feed_stays_a_gap_free_prefix() {
    if std::env::var_os(CHILD_DIR_ENV).is_some() {
        // This process is a crash child; only its own test runs.
        return;
    }
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x7269_6275_7461_7279);
    eprintln!("crash test seed {seed} (set {SEED_ENV}={seed} to replay)");
    let mut random = SplitMix(seed);
    let rounds = std::env::var(ROUNDS_ENV)
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(DEFAULT_ROUNDS);
    let mut total_acknowledged = 0;
    let mut round = 0;
    while round < rounds {
        let last = rounds.min(round + ROUNDS_PER_DIRECTORY);
        total_acknowledged += crash_rounds_on_a_fresh_directory(&mut random, round..last);
        round = last;
    }
    assert!(
        total_acknowledged as u64 >= rounds,
        "the children acknowledged too few writes ({total_acknowledged}) for the test to mean anything"
    );
}

/// Runs `rounds` on one fresh directory; returns how many items were acknowledged.
fn crash_rounds_on_a_fresh_directory(random: &mut SplitMix, rounds: std::ops::Range<u64>) -> usize {
    let dir = tempfile::tempdir().expect("a temporary directory");
    {
        let store = open_store(dir.path(), StoreOptions::default());
        let definition = ContainerDefinition {
            change_feed_retention_minutes: Some(60),
            ..ContainerDefinition::new(CONTAINER, "/pk")
        };
        let runtime = runtime();
        create_container(&runtime, &store, definition, 2);
        let ttl = ContainerDefinition {
            default_ttl: Some(1),
            change_feed_retention_minutes: Some(60),
            ..ContainerDefinition::new(TTL_CONTAINER, "/pk")
        };
        runtime
            .block_on(store.create_container(DATABASE, ttl, 1))
            .expect("TTL container");
        runtime
            .block_on(store.create_database_with_throughput(THROUGHPUT_DATABASE, Some(400), None))
            .expect("throughput database");
    }
    let mut acknowledged = Acknowledged::new();
    let mut high_lsn = 0;
    for round in rounds {
        // One round in five is killed without waiting for the store to open, so that some
        // kills land in recovery.
        let during_startup = random.below(5) == 0;
        let delay = Duration::from_millis(random.below(MAX_KILL_DELAY_MS));
        let lines = run_child_and_kill(dir.path(), round, during_startup, delay);
        let mut n_acks = 0;
        for line in &lines {
            let Some(ack) = line.strip_prefix(ACK_PREFIX) else {
                continue;
            };
            let fields: Vec<&str> = ack.split('\t').collect();
            let [pk_value, id, lsn, etag] = fields[..] else {
                panic!("round {round}: malformed acknowledgement {line:?}");
            };
            let lsn: u64 = lsn.parse().expect("acknowledged LSNs are numbers");
            let entry = acknowledged
                .entry((pk_value.to_owned(), id.to_owned()))
                .or_insert((0, String::new()));
            if lsn > entry.0 {
                *entry = (lsn, etag.to_owned());
            }
            n_acks += 1;
        }
        eprintln!(
            "round {round}: killed after {delay:?}{}, {n_acks} acknowledged writes",
            if during_startup {
                " from spawn"
            } else {
                " from ready"
            }
        );
        // No background maintenance while checking: the TTL sweeper would add changes
        // between the reads the checks compare.
        let options = StoreOptions {
            maintenance_interval: Duration::from_secs(3600),
            ..StoreOptions::default()
        };
        let store = open_store(dir.path(), options);
        high_lsn = check_recovered(&store, &acknowledged, high_lsn, round);
        check_chaos_survivors(&store, round);
    }
    acknowledged.len()
}

/// After the chaos task: the TTL container's all-versions feed (writes and expiries) is one
/// change per LSN, every container left (a churn container whose delete the kill cut off)
/// reads, and the throughput database holds one of the values the task set.
fn check_chaos_survivors(store: &Store, round: u64) {
    let ttl = store
        .read_container(DATABASE, TTL_CONTAINER)
        .expect("the TTL container survives");
    let pages = drain_feed(
        store,
        TTL_CONTAINER,
        &FeedScope::Container,
        FeedStart::Beginning,
        FeedMode::AllVersionsAndDeletes,
        500,
    )
    .expect("the TTL container's all-versions feed reads");
    for (expected_lsn, change) in (1..).zip(changes(&pages)) {
        assert_eq!(
            change_lsn(FeedMode::AllVersionsAndDeletes, &change),
            expected_lsn,
            "round {round}: TTL container LSN gap or reorder"
        );
    }
    assert_eq!(
        changes(&pages).len() as u64,
        ttl.high_lsn,
        "round {round}: one TTL container change per LSN"
    );
    let containers = store.list_containers(DATABASE).expect("containers list");
    let ranges = store
        .read_container(DATABASE, CONTAINER)
        .expect("the container survives")
        .feed_ranges
        .iter()
        .filter(|range| range.children.is_empty())
        .count();
    eprintln!(
        "round {round}: recovered with {ranges} feed ranges, {} containers, {} TTL container changes",
        containers.len(),
        ttl.high_lsn
    );
    for container in containers {
        let id = &container.definition.id;
        drain_feed(
            store,
            id,
            &FeedScope::Container,
            FeedStart::Beginning,
            FeedMode::LatestVersion,
            500,
        )
        .unwrap_or_else(|e| panic!("round {round}: container {id} does not read: {e}"));
    }
    let throughput = store
        .read_database(THROUGHPUT_DATABASE)
        .expect("the throughput database survives")
        .throughput;
    assert!(
        matches!(throughput, Some(t) if (400..=1300).contains(&t) && t % 100 == 0),
        "round {round}: throughput {throughput:?} is not one the task set"
    );
}

/// Starts a child on `dir`, kills it after `delay` (from spawn, or from its ready line), and
/// returns every line it printed.
fn run_child_and_kill(
    dir: &Path,
    round: u64,
    during_startup: bool,
    delay: Duration,
) -> Vec<String> {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    let child = Command::new(exe)
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_ROUND_ENV, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the test binary can be re-executed");
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().expect("stdout is piped");
    let (sender, receiver) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            // A line cut by the kill is not an acknowledgement; stop there.
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    if !during_startup {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(line) => {
                    let ready = line == READY_LINE;
                    lines.push(line);
                    if ready {
                        break;
                    }
                }
                Err(_) => panic!(
                    "round {round}: the child did not open the store within {READY_TIMEOUT:?}"
                ),
            }
        }
    }
    std::thread::sleep(delay);
    // `Child::kill` sends SIGKILL on Unix: no destructor, no flush, no journal sync runs.
    child.0.kill().expect("the child can be killed");
    let status = child.0.wait().expect("the child can be reaped");
    // A child that failed on its own (a panic exits with 101) would hide a bug as a "crash".
    assert_eq!(
        status.signal(),
        Some(SIGKILL),
        "round {round}: the child must die by SIGKILL, not {status}"
    );
    reader.join().expect("the reader thread ends at EOF");
    lines.extend(receiver.try_iter());
    lines
}

/// Checks a recovered store against everything acknowledged so far; returns its high LSN.
fn check_recovered(
    store: &Store,
    acknowledged: &Acknowledged,
    previous_high_lsn: u64,
    round: u64,
) -> u64 {
    let high_lsn = store
        .read_container(DATABASE, CONTAINER)
        .expect("the container survives")
        .high_lsn;
    assert!(
        high_lsn >= previous_high_lsn,
        "round {round}: the high LSN went back from {previous_high_lsn} to {high_lsn}"
    );
    // Every acknowledged write is there, at its version or a newer one.
    for ((pk_value, id), (lsn, etag)) in acknowledged {
        let item = store
            .read_item(DATABASE, CONTAINER, &pk(pk_value), id)
            .unwrap_or_else(|e| {
                panic!("round {round}: acknowledged item {pk_value}/{id} (LSN {lsn}) is lost: {e}")
            });
        assert!(
            item.lsn >= *lsn,
            "round {round}: {pk_value}/{id} went back from LSN {lsn} to {}",
            item.lsn
        );
        if item.lsn == *lsn {
            assert_eq!(
                item.etag, *etag,
                "round {round}: {pk_value}/{id} etag at LSN {lsn}"
            );
        }
        assert!(
            *lsn <= high_lsn,
            "round {round}: acknowledged LSN {lsn} above the high LSN {high_lsn}"
        );
    }
    // The latest-version feed: increasing LSNs, each item once, agreeing with point reads.
    let pages = drain_feed(
        store,
        CONTAINER,
        &FeedScope::Container,
        FeedStart::Beginning,
        FeedMode::LatestVersion,
        500,
    )
    .expect("the recovered feed reads");
    let mut seen = HashSet::new();
    let mut latest = BTreeMap::new();
    let mut previous_lsn = 0;
    for change in changes(&pages) {
        let value: Value = serde_json::from_str(&change).expect("feed changes are JSON");
        let lsn = change_lsn(FeedMode::LatestVersion, &change);
        assert!(
            lsn > previous_lsn,
            "round {round}: feed LSN {lsn} after {previous_lsn}"
        );
        previous_lsn = lsn;
        let pk_value = value["pk"]
            .as_str()
            .expect("every item has a string pk")
            .to_owned();
        let id = value["id"]
            .as_str()
            .expect("every item has an id")
            .to_owned();
        assert!(
            seen.insert((pk_value.clone(), id.clone())),
            "round {round}: {pk_value}/{id} twice in the feed"
        );
        let item = store
            .read_item(DATABASE, CONTAINER, &pk(&pk_value), &id)
            .unwrap_or_else(|e| {
                panic!("round {round}: {pk_value}/{id} is in the feed but not readable: {e}")
            });
        assert_eq!(
            item.body, change,
            "round {round}: point read and feed disagree on {pk_value}/{id}"
        );
        assert_eq!(item.lsn, lsn);
        latest.insert(lsn, (pk_value, id));
    }
    assert!(previous_lsn <= high_lsn);
    for key in acknowledged.keys() {
        assert!(
            seen.contains(key),
            "round {round}: acknowledged {key:?} is missing from the feed"
        );
    }
    // The all-versions feed holds every LSN from 1 to the high LSN exactly once: no gap, no
    // duplicate, and `_lsn` of each version is the LSN the feed files it under.
    let pages = drain_feed(
        store,
        CONTAINER,
        &FeedScope::Container,
        FeedStart::Beginning,
        FeedMode::AllVersionsAndDeletes,
        500,
    )
    .expect("the recovered all-versions feed reads");
    let mut last_version = BTreeMap::new();
    let versions = changes(&pages);
    assert_eq!(
        versions.len() as u64,
        high_lsn,
        "round {round}: one change per LSN up to {high_lsn}"
    );
    for (expected_lsn, change) in (1..).zip(&versions) {
        let value: Value = serde_json::from_str(change).expect("feed changes are JSON");
        assert_eq!(
            value["metadata"]["lsn"],
            json!(expected_lsn),
            "round {round}: LSN gap or reorder"
        );
        assert_eq!(
            value["current"]["_lsn"],
            json!(expected_lsn),
            "round {round}: _lsn of change {expected_lsn}"
        );
        let key = (
            value["current"]["pk"].as_str().expect("pk").to_owned(),
            value["current"]["id"].as_str().expect("id").to_owned(),
        );
        last_version.insert(key, expected_lsn);
    }
    let latest_by_key: BTreeMap<(String, String), u64> =
        latest.into_iter().map(|(lsn, key)| (key, lsn)).collect();
    assert_eq!(
        last_version, latest_by_key,
        "round {round}: the latest-version feed is the last of all versions"
    );
    high_lsn
}
