//! A change feed in memory for the simulation: LSN-ordered changes on two-digit hex EPKs,
//! ranges that split, reads that wait for a write, and injected read failures.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tributary_processor::{
    BoxFuture, Change, ChangeFeed, EpkSpan, FeedError, FeedMode, FeedPage, FeedPosition, FeedRead,
    FeedReadOutcome, PendingChanges, PendingOutcome, PhysicalRange, StartFrom,
};

use crate::simulation::Rng;

/// Keys are `00`..`FE`, so a span `[min, max)` of two-digit hex holds whole keys.
pub const N_KEYS: u32 = 255;

struct State {
    /// (lsn, epk, id) of every write, in LSN order.
    changes: Vec<(u64, String, String)>,
    ranges: Vec<PhysicalRange>,
    next_range_id: u32,
    /// Probability (per mille) that a read fails, while faults are on.
    read_failure_per_mille: u64,
    rng: Rng,
}

/// The simulated monitored container.
#[derive(Clone)]
pub struct MemoryFeed {
    state: Arc<Mutex<State>>,
    written: Arc<tokio::sync::Notify>,
}

fn bound(value: u32) -> String {
    match value {
        0 => String::new(),
        v if v >= N_KEYS => "FF".into(),
        v => format!("{v:02X}"),
    }
}

fn unbound(text: &str) -> u32 {
    if text.is_empty() {
        0
    } else {
        u32::from_str_radix(text, 16).unwrap_or(N_KEYS)
    }
}

impl MemoryFeed {
    /// A container with `n_ranges` equal ranges.
    pub fn new(n_ranges: u32, seed: u64) -> MemoryFeed {
        let ranges = (0..n_ranges)
            .map(|i| PhysicalRange {
                id: i.to_string(),
                span: EpkSpan::new(
                    bound(N_KEYS * i / n_ranges),
                    bound(N_KEYS * (i + 1) / n_ranges),
                ),
                parents: Vec::new(),
            })
            .collect();
        MemoryFeed {
            state: Arc::new(Mutex::new(State {
                changes: Vec::new(),
                ranges,
                next_range_id: n_ranges,
                read_failure_per_mille: 0,
                rng: Rng::new(seed ^ 0xfeed),
            })),
            written: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Writes a change to key `key` (< [`N_KEYS`]); returns its id.
    pub fn write(&self, key: u32) -> String {
        let id = {
            let mut state = self.state.lock().unwrap();
            let lsn = state.changes.len() as u64 + 1;
            let id = format!("c{lsn}");
            state.changes.push((lsn, format!("{key:02X}"), id.clone()));
            id
        };
        self.written.notify_waiters();
        id
    }

    /// Splits the range at `index` (of the current ranges) in two, if it spans two keys.
    pub fn split(&self, index: usize) -> bool {
        let mut state = self.state.lock().unwrap();
        let Some(range) = state.ranges.get(index).cloned() else {
            return false;
        };
        let (min, max) = (unbound(&range.span.min), unbound(&range.span.max));
        if max - min < 2 {
            return false;
        }
        let mid = (min + max) / 2;
        let (left, right) = (state.next_range_id, state.next_range_id + 1);
        state.next_range_id += 2;
        state.ranges.remove(index);
        for (id, span) in [
            (left, EpkSpan::new(range.span.min.clone(), bound(mid))),
            (right, EpkSpan::new(bound(mid), range.span.max.clone())),
        ] {
            state.ranges.push(PhysicalRange {
                id: id.to_string(),
                span,
                parents: vec![range.id.clone()],
            });
        }
        state.ranges.sort_by(|a, b| a.span.min.cmp(&b.span.min));
        true
    }

    /// Number of current ranges.
    pub fn n_ranges(&self) -> usize {
        self.state.lock().unwrap().ranges.len()
    }

    /// Every id written.
    pub fn ids(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .changes
            .iter()
            .map(|(_, _, id)| id.clone())
            .collect()
    }

    /// Sets the read failure probability (per mille).
    pub fn set_read_failures(&self, per_mille: u64) {
        self.state.lock().unwrap().read_failure_per_mille = per_mille;
    }

    fn read_now(&self, read: &FeedRead) -> Result<FeedReadOutcome, FeedError> {
        let mut state = self.state.lock().unwrap();
        let per_mille = state.read_failure_per_mille;
        if per_mille > 0 && state.rng.below(1000) < per_mille {
            return Err(FeedError::Source("injected read failure".into()));
        }
        if !state.ranges.iter().any(|r| r.id == read.range.id) {
            return Ok(FeedReadOutcome::Gone);
        }
        let high = state.changes.len() as u64;
        let after = match &read.position {
            FeedPosition::Start(StartFrom::Beginning) => 0,
            FeedPosition::Start(StartFrom::Now) => high,
            FeedPosition::Start(StartFrom::Time(_)) => 0,
            FeedPosition::Continuation(text) => text
                .trim_matches('"')
                .parse()
                .map_err(|_| FeedError::InvalidPosition(text.clone()))?,
        };
        let mut changes = Vec::new();
        let mut last = high;
        for (lsn, epk, id) in state.changes.iter().skip(after as usize) {
            if !read.span.holds(epk) {
                continue;
            }
            if changes.len() == read.max_items {
                last = lsn - 1;
                break;
            }
            changes.push(Change::from_json(format!(
                r#"{{"id":"{id}","epk":"{epk}","_lsn":{lsn}}}"#
            )));
        }
        let (changes, n_filtered) = match &read.filter {
            Some(filter) => filter.apply(changes, read.mode),
            None => (changes, 0),
        };
        Ok(FeedReadOutcome::Page(FeedPage {
            changes,
            continuation: format!("\"{last}\""),
            n_filtered,
        }))
    }
}

impl ChangeFeed for MemoryFeed {
    fn lease_scope(&self) -> BoxFuture<'_, Result<String, FeedError>> {
        Box::pin(async { Ok("sim_db_coll".to_owned()) })
    }

    fn partition_key_paths(&self) -> BoxFuture<'_, Result<Vec<String>, FeedError>> {
        Box::pin(async { Ok(vec!["/epk".to_owned()]) })
    }

    fn ranges(&self) -> BoxFuture<'_, Result<Vec<PhysicalRange>, FeedError>> {
        let ranges = self.state.lock().unwrap().ranges.clone();
        Box::pin(async move { Ok(ranges) })
    }

    fn read(&self, read: FeedRead) -> BoxFuture<'_, Result<FeedReadOutcome, FeedError>> {
        Box::pin(async move {
            let written = self.written.notified();
            let outcome = self.read_now(&read)?;
            match &outcome {
                FeedReadOutcome::Page(page)
                    if page.changes.is_empty() && page.n_filtered == 0 && !read.wait.is_zero() =>
                {
                    let _ = tokio::time::timeout(read.wait, written).await;
                    self.read_now(&read)
                }
                _ => Ok(outcome),
            }
        })
    }

    fn pending(
        &self,
        range: PhysicalRange,
        span: EpkSpan,
        position: FeedPosition,
        mode: FeedMode,
    ) -> BoxFuture<'_, Result<PendingOutcome, FeedError>> {
        Box::pin(async move {
            let read = FeedRead {
                range,
                span,
                position,
                mode,
                max_items: usize::MAX,
                wait: Duration::ZERO,
                filter: None,
            };
            Ok(match self.read_now(&read)? {
                FeedReadOutcome::Gone => PendingOutcome::Gone,
                FeedReadOutcome::Page(page) => PendingOutcome::Pending(PendingChanges {
                    n_changes: page.changes.len() as u64,
                    oldest_ts: None,
                    exact: true,
                }),
            })
        })
    }

    fn waits_for_changes(&self) -> bool {
        true
    }
}
