//! A deterministic simulation of many processor hosts over one seed (after TigerBeetle's
//! VOPR): virtual time, skewed clocks, crashes and restarts, graceful stops, slow, failing
//! and ambiguous lease writes, failing feed reads, splits mid-batch and failing handlers.
//!
//! Safety, checked throughout: no checkpoint moves backward; no two hosts run a handler on
//! overlapping spans at the same moment while both hold a fresh lease. Liveness, checked
//! after the faults heal: within a bound every lease is owned by a live host and every
//! change has reached a handler. A failing seed is printed; `TRIBUTARY_SIM_SEED=n` replays
//! it exactly, `TRIBUTARY_SIM_SEEDS=n` sets how many seeds run (default 2000).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tributary_processor::{
    BoxFuture, ChangeFeedProcessor, ChangeFeedProcessorBuilder, Clock, LeaseContainer,
    LeaseStoreError, MemoryLeaseContainer, StartFrom, StoredDocument, lease::continuation_lsn,
};

use crate::memory_feed::{MemoryFeed, N_KEYS};

/// A small deterministic random number generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A host's clock: runs at `rate` times virtual time; wall time is offset.
struct SimClock {
    origin: tokio::time::Instant,
    rate: f64,
    wall_offset_ms: u64,
}

impl Clock for SimClock {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed().mul_f64(self.rate)
    }

    fn wall_ms(&self) -> u64 {
        self.wall_offset_ms + self.monotonic().as_millis() as u64
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration.div_f64(self.rate)))
    }
}

/// Faults of the lease container, on while `on` is set.
struct Faults {
    on: bool,
    rng: Rng,
}

/// The lease container with injected delays, failures and ambiguous writes; it checks that
/// no checkpoint ever moves backward.
struct FaultyLeases {
    inner: MemoryLeaseContainer,
    faults: Arc<Mutex<Faults>>,
    violations: Arc<Mutex<Vec<String>>>,
}

enum Fault {
    None,
    FailBefore,
    FailAfter,
}

impl FaultyLeases {
    /// Picks a delay and a fault for one operation.
    fn draw(&self) -> (Duration, Fault) {
        let mut faults = self.faults.lock().unwrap();
        if !faults.on {
            return (Duration::from_millis(faults.rng.below(5)), Fault::None);
        }
        let delay = match faults.rng.below(100) {
            // Now and then a very slow write: a renewal that arrives late.
            0 => Duration::from_secs(20 + faults.rng.below(50)),
            1..=10 => Duration::from_millis(faults.rng.below(3000)),
            _ => Duration::from_millis(faults.rng.below(20)),
        };
        let fault = match faults.rng.below(100) {
            0..=3 => Fault::FailBefore,
            4..=5 => Fault::FailAfter,
            _ => Fault::None,
        };
        (delay, fault)
    }

    fn check_checkpoint(&self, old: Option<&StoredDocument>, new: &Value) {
        let lsn = |doc: &Value| {
            doc.get("ContinuationToken")
                .and_then(Value::as_str)
                .and_then(continuation_lsn)
        };
        if let (Some(old), Some(new_lsn)) = (old.and_then(|d| lsn(&d.body)), lsn(new))
            && new_lsn < old
        {
            self.violations.lock().unwrap().push(format!(
                "checkpoint of {} moved backward: {old} -> {new_lsn}",
                new["id"]
            ));
        }
    }
}

fn unavailable() -> LeaseStoreError {
    LeaseStoreError::Unavailable("injected failure".into())
}

impl LeaseContainer for FaultyLeases {
    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<StoredDocument>, LeaseStoreError>> {
        let prefix = prefix.to_owned();
        Box::pin(async move {
            let (delay, fault) = self.draw();
            tokio::time::sleep(delay).await;
            match fault {
                Fault::None => self.inner.list(&prefix).await,
                _ => Err(unavailable()),
            }
        })
    }

    fn read(&self, id: &str) -> BoxFuture<'_, Result<Option<StoredDocument>, LeaseStoreError>> {
        let id = id.to_owned();
        Box::pin(async move {
            let (delay, fault) = self.draw();
            tokio::time::sleep(delay).await;
            match fault {
                Fault::None => self.inner.read(&id).await,
                _ => Err(unavailable()),
            }
        })
    }

    fn create(&self, body: Value) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
        Box::pin(async move {
            let (delay, fault) = self.draw();
            tokio::time::sleep(delay).await;
            match fault {
                Fault::FailBefore => Err(unavailable()),
                Fault::FailAfter => self.inner.create(body).await.and(Err(unavailable())),
                Fault::None => self.inner.create(body).await,
            }
        })
    }

    fn replace(
        &self,
        body: Value,
        etag: &str,
    ) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
        let etag = etag.to_owned();
        Box::pin(async move {
            let (delay, fault) = self.draw();
            tokio::time::sleep(delay).await;
            if matches!(fault, Fault::FailBefore) {
                return Err(unavailable());
            }
            let id = body["id"].as_str().unwrap_or_default().to_owned();
            let old = self.inner.read(&id).await?;
            let result = self.inner.replace(body.clone(), &etag).await;
            if result.is_ok() {
                self.check_checkpoint(old.as_ref(), &body);
            }
            match fault {
                Fault::FailAfter => result.and(Err(unavailable())),
                _ => result,
            }
        })
    }

    fn delete(&self, id: &str, etag: Option<&str>) -> BoxFuture<'_, Result<(), LeaseStoreError>> {
        let (id, etag) = (id.to_owned(), etag.map(str::to_owned));
        Box::pin(async move {
            let (delay, fault) = self.draw();
            tokio::time::sleep(delay).await;
            match fault {
                Fault::FailBefore => Err(unavailable()),
                Fault::FailAfter => self
                    .inner
                    .delete(&id, etag.as_deref())
                    .await
                    .and(Err(unavailable())),
                Fault::None => self.inner.delete(&id, etag.as_deref()).await,
            }
        })
    }
}

/// Marks a host as inside a handler on a span until dropped.
struct InHandler {
    observed: Arc<Mutex<Observed>>,
    host: String,
    span: (u32, u32),
}

impl Drop for InHandler {
    fn drop(&mut self) {
        let mut observed = self.observed.lock().unwrap();
        if let Some(spans) = observed.in_handler.get_mut(&self.host)
            && let Some(i) = spans.iter().position(|s| *s == self.span)
        {
            spans.remove(i);
        }
    }
}

/// What the handlers saw, and who is inside a handler now.
#[derive(Default)]
struct Observed {
    delivered: BTreeMap<String, u32>,
    /// host -> spans it is handling now.
    in_handler: BTreeMap<String, Vec<(u32, u32)>>,
    violations: Vec<String>,
}

const EXPIRATION: Duration = Duration::from_secs(60);
const ACQUIRE: Duration = Duration::from_secs(13);
const RENEW: Duration = Duration::from_secs(17);
/// Virtual time with faults on.
const FAULT_PHASE: Duration = Duration::from_secs(600);
/// After the faults heal, every lease must be owned and every change handled within this.
const LIVENESS_BOUND: Duration = Duration::from_secs(300);

fn span_keys(min: &str, max: &str) -> (u32, u32) {
    let parse = |t: &str, default: u32| {
        if t.is_empty() {
            default
        } else {
            u32::from_str_radix(t, 16).unwrap_or(N_KEYS)
        }
    };
    (parse(min, 0), parse(max, N_KEYS))
}

struct Sim {
    feed: MemoryFeed,
    leases: Arc<FaultyLeases>,
    observed: Arc<Mutex<Observed>>,
    handler_faults: Arc<Mutex<Faults>>,
}

impl Sim {
    fn host(&self, instance: &str, rng: &mut Rng) -> ChangeFeedProcessor {
        let clock = Arc::new(SimClock {
            origin: tokio::time::Instant::now(),
            rate: 0.98 + rng.below(41) as f64 / 1000.0,
            wall_offset_ms: rng.below(10_000_000_000),
        });
        let observed = Arc::clone(&self.observed);
        let faults = Arc::clone(&self.handler_faults);
        let me = instance.to_owned();
        ChangeFeedProcessorBuilder::new("sim", Arc::new(self.feed.clone()), self.leases.clone())
            .instance_name(instance)
            .start_from(StartFrom::Beginning)
            .max_items(1 + rng.below(20) as usize)
            .lease_acquire_interval(ACQUIRE)
            .lease_renew_interval(RENEW)
            .lease_expiration_interval(EXPIRATION)
            .leases_per_cycle(1 + rng.below(4) as usize)
            .parallelism(1 + rng.below(3) as usize)
            .retry_backoff(Duration::from_millis(500))
            .clock(clock)
            .handler(move |context, changes| {
                let observed = Arc::clone(&observed);
                let faults = Arc::clone(&faults);
                let me = me.clone();
                async move {
                    let span = span_keys(&context.span.min, &context.span.max);
                    let (delay, fail) = {
                        let mut faults = faults.lock().unwrap();
                        let delay = Duration::from_millis(faults.rng.below(300));
                        (delay, faults.on && faults.rng.below(100) < 10)
                    };
                    {
                        let mut observed = observed.lock().unwrap();
                        let overlapping: Vec<String> = observed
                            .in_handler
                            .iter()
                            .filter(|(host, spans)| {
                                **host != me
                                    && spans.iter().any(|(a, b)| *a < span.1 && span.0 < *b)
                            })
                            .map(|(host, _)| host.clone())
                            .collect();
                        if !overlapping.is_empty() {
                            observed.violations.push(format!(
                                "{me} handles {span:?} while {overlapping:?} handle an overlapping span"
                            ));
                        }
                        observed.in_handler.entry(me.clone()).or_default().push(span);
                    }
                    // Leaves the handler when dropped: also when a crash drops the call.
                    let guard = InHandler {
                        observed: Arc::clone(&observed),
                        host: me.clone(),
                        span,
                    };
                    tokio::time::sleep(delay).await;
                    drop(guard);
                    let mut observed = observed.lock().unwrap();
                    if fail {
                        return Err("injected handler failure".into());
                    }
                    for change in &changes {
                        let value: Value = change.value()?;
                        let id = value["id"].as_str().unwrap_or_default().to_owned();
                        *observed.delivered.entry(id).or_default() += 1;
                    }
                    Ok(())
                }
            })
            .build()
            .expect("valid settings")
    }
}

/// Runs one seed; returns the violations found.
fn run_seed(seed: u64) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(simulate(seed))
}

async fn simulate(seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    let n_hosts = 2 + rng.below(4) as usize;
    let sim = Sim {
        feed: MemoryFeed::new(1 + rng.below(4) as u32, seed),
        leases: Arc::new(FaultyLeases {
            inner: MemoryLeaseContainer::new(),
            faults: Arc::new(Mutex::new(Faults {
                on: true,
                rng: Rng::new(seed ^ 0x1ea5e),
            })),
            violations: Arc::new(Mutex::new(Vec::new())),
        }),
        observed: Arc::new(Mutex::new(Observed::default())),
        handler_faults: Arc::new(Mutex::new(Faults {
            on: true,
            rng: Rng::new(seed ^ 0x4a4d),
        })),
    };
    sim.feed.set_read_failures(20);
    let mut hosts: Vec<Option<ChangeFeedProcessor>> = Vec::new();
    let mut generation = vec![0u32; n_hosts];
    for i in 0..n_hosts {
        let mut host = sim.host(&format!("h{i}"), &mut rng);
        // A start can fail on an injected lease store error; the event loop retries.
        hosts.push(host.start().await.is_ok().then_some(host));
    }
    // The fault phase: a random event every few virtual seconds.
    let start = tokio::time::Instant::now();
    while start.elapsed() < FAULT_PHASE {
        tokio::time::sleep(Duration::from_millis(rng.below(4000))).await;
        match rng.below(100) {
            0..=59 => {
                for _ in 0..1 + rng.below(5) {
                    sim.feed.write(rng.below(u64::from(N_KEYS)) as u32);
                }
            }
            60..=64 => {
                if sim.feed.n_ranges() < 8 {
                    let index = rng.below(sim.feed.n_ranges() as u64) as usize;
                    sim.feed.split(index);
                }
            }
            65..=72 => {
                // Crash a host (nothing released).
                let i = rng.below(n_hosts as u64) as usize;
                hosts[i] = None;
            }
            73..=78 => {
                let i = rng.below(n_hosts as u64) as usize;
                if let Some(mut host) = hosts[i].take() {
                    host.stop().await;
                }
            }
            _ => {
                // Restart a stopped host, sometimes under a new name.
                let i = rng.below(n_hosts as u64) as usize;
                if hosts[i].is_none() {
                    if rng.below(2) == 0 {
                        generation[i] += 1;
                    }
                    let mut host = sim.host(&format!("h{i}g{}", generation[i]), &mut rng);
                    hosts[i] = host.start().await.is_ok().then_some(host);
                }
            }
        }
    }
    // Heal: no more faults; every host runs.
    sim.leases.faults.lock().unwrap().on = false;
    sim.handler_faults.lock().unwrap().on = false;
    sim.feed.set_read_failures(0);
    for (i, slot) in hosts.iter_mut().enumerate() {
        if slot.is_none() {
            let mut host = sim.host(&format!("h{i}g{}", generation[i] + 100), &mut rng);
            host.start().await.expect("starts without faults");
            *slot = Some(host);
        }
    }
    let healed_at = tokio::time::Instant::now();
    let ids = sim.feed.ids();
    let all_delivered = || {
        let observed = sim.observed.lock().unwrap();
        ids.iter().all(|id| observed.delivered.contains_key(id))
    };
    let n_leases = || async {
        let documents = sim.leases.inner.list("sim").await.unwrap_or_default();
        documents
            .iter()
            .filter(|d| d.body.get("LeaseToken").is_some())
            .count()
    };
    let n_owned = |hosts: &[Option<ChangeFeedProcessor>]| -> usize {
        hosts.iter().flatten().map(|h| h.owned_leases().len()).sum()
    };
    while healed_at.elapsed() < LIVENESS_BOUND
        && !(all_delivered() && n_owned(&hosts) == n_leases().await)
    {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut violations = Vec::new();
    {
        let observed = sim.observed.lock().unwrap();
        let missing: Vec<&String> = ids
            .iter()
            .filter(|id| !observed.delivered.contains_key(*id))
            .collect();
        if !missing.is_empty() {
            violations.push(format!(
                "liveness: {} of {} changes not handled {LIVENESS_BOUND:?} after healing (e.g. {:?})",
                missing.len(),
                ids.len(),
                &missing[..missing.len().min(5)]
            ));
        }
        violations.extend(observed.violations.iter().cloned());
    }
    // Every lease owned by a live host.
    let (owned, n_leases) = (n_owned(&hosts), n_leases().await);
    if owned != n_leases {
        violations.push(format!(
            "liveness: {owned} leases worked on by live hosts, {n_leases} leases exist"
        ));
    }
    violations.extend(sim.leases.violations.lock().unwrap().iter().cloned());
    for host in hosts.iter_mut().flatten() {
        host.stop().await;
    }
    violations
}

#[test]
fn many_hosts_with_faults_process_every_change_and_never_regress() {
    if let Ok(seed) = std::env::var("TRIBUTARY_SIM_SEED") {
        let seed: u64 = seed.parse().expect("TRIBUTARY_SIM_SEED is a number");
        let violations = run_seed(seed);
        assert!(violations.is_empty(), "seed {seed}: {violations:#?}");
        return;
    }
    let n_seeds: u64 = std::env::var("TRIBUTARY_SIM_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let mut failures = Vec::new();
    for seed in 0..n_seeds {
        let violations = run_seed(seed);
        if !violations.is_empty() {
            failures.push(format!(
                "seed {seed} (replay: TRIBUTARY_SIM_SEED={seed}): {violations:#?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n_seeds} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn a_seed_replays_exactly() {
    let first = run_seed(7);
    let second = run_seed(7);
    assert_eq!(first, second);
}
