//! What the committer has done, counted cheaply for a metrics snapshot: commits, item changes
//! committed, and the latency of each recent commit's durable write.
//!
//! Only the thread that holds the committer writes here (one at a time: the committer's
//! lock); any thread reads. Every field is an atomic, so a reader never blocks a commit. The
//! recent latencies are a ring of [`RECENT_COMMITS`] slots, each one `u64` packing when the
//! commit ended (seconds since the store opened, high 32 bits) and how long its write took
//! (microseconds, low 32 bits, saturating): a slot is never torn, and a reader keeps the slots
//! inside its window. A reader racing the writer may see one slot of the next lap early;
//! percentiles over thousands of samples do not notice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Latencies kept: the last this many commits (older ones are overwritten).
pub const RECENT_COMMITS: usize = 4096;

/// Counters of the committer; see the module documentation.
pub(crate) struct CommitStats {
    opened: Instant,
    n_commits: AtomicU64,
    n_item_changes: AtomicU64,
    /// Slots written so far (the next slot is this modulo [`RECENT_COMMITS`]).
    n_recorded: AtomicU64,
    recent: Box<[AtomicU64]>,
}

/// A reading of [`CommitStats`] (see [`crate::Store::commit_stats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitStatsSnapshot {
    /// Groups committed since the store opened (each one durable write).
    pub n_commits: u64,
    /// Item changes committed since the store opened: the LSNs assigned (creates, replaces,
    /// upserts, patches, deletes, expiries).
    pub n_item_changes: u64,
    /// Commits that ended within the window asked for (at most [`RECENT_COMMITS`]).
    pub n_recent: usize,
    /// Median durable-write latency of those commits, in microseconds.
    pub p50_us: Option<u64>,
    /// 99th percentile (nearest rank) of the same.
    pub p99_us: Option<u64>,
    /// The slowest of the same.
    pub max_us: Option<u64>,
}

impl CommitStats {
    pub(crate) fn new() -> CommitStats {
        CommitStats {
            opened: Instant::now(),
            n_commits: AtomicU64::new(0),
            n_item_changes: AtomicU64::new(0),
            n_recorded: AtomicU64::new(0),
            recent: (0..RECENT_COMMITS).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Records a committed group: how long its durable write took and how many item changes
    /// (LSNs) it committed.
    pub(crate) fn committed(&self, write_time: Duration, n_item_changes: u64) {
        self.n_commits.fetch_add(1, Ordering::Relaxed);
        self.n_item_changes
            .fetch_add(n_item_changes, Ordering::Relaxed);
        let ended_s = u32::try_from(self.opened.elapsed().as_secs()).unwrap_or(u32::MAX);
        let write_us = u32::try_from(write_time.as_micros()).unwrap_or(u32::MAX);
        let slot = self.n_recorded.fetch_add(1, Ordering::AcqRel) as usize % RECENT_COMMITS;
        self.recent[slot].store(pack(ended_s, write_us), Ordering::Release);
    }

    /// The counters, and the latencies of the commits that ended in the last `window`.
    pub(crate) fn snapshot(&self, window: Duration) -> CommitStatsSnapshot {
        let n_recorded = self.n_recorded.load(Ordering::Acquire) as usize;
        let now_s = self.opened.elapsed().as_secs();
        let oldest_s = now_s.saturating_sub(window.as_secs());
        let mut recent: Vec<u64> = self.recent[..n_recorded.min(RECENT_COMMITS)]
            .iter()
            .map(|slot| unpack(slot.load(Ordering::Acquire)))
            .filter(|(ended_s, _)| u64::from(*ended_s) >= oldest_s)
            .map(|(_, write_us)| u64::from(write_us))
            .collect();
        recent.sort_unstable();
        CommitStatsSnapshot {
            n_commits: self.n_commits.load(Ordering::Relaxed),
            n_item_changes: self.n_item_changes.load(Ordering::Relaxed),
            n_recent: recent.len(),
            p50_us: nearest_rank(&recent, 50),
            p99_us: nearest_rank(&recent, 99),
            max_us: recent.last().copied(),
        }
    }
}

fn pack(ended_s: u32, write_us: u32) -> u64 {
    (u64::from(ended_s) << 32) | u64::from(write_us)
}

fn unpack(slot: u64) -> (u32, u32) {
    ((slot >> 32) as u32, slot as u32)
}

/// The `percent`th percentile of sorted `values` by nearest rank (p99 of 200 values is the
/// 198th smallest); `None` for no values.
fn nearest_rank(sorted: &[u64], percent: usize) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (percent * sorted.len())
        .div_ceil(100)
        .clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<u64> = (1..=200).collect();
        assert_eq!(nearest_rank(&values, 50), Some(100));
        assert_eq!(nearest_rank(&values, 99), Some(198));
        assert_eq!(nearest_rank(&[7], 99), Some(7));
        assert_eq!(nearest_rank(&[], 50), None);
    }

    #[test]
    fn commits_are_counted_and_their_latencies_summarized() {
        let stats = CommitStats::new();
        assert_eq!(stats.snapshot(Duration::from_secs(10)).p50_us, None);
        for us in 1..=100 {
            stats.committed(Duration::from_micros(us), 2);
        }
        let snapshot = stats.snapshot(Duration::from_secs(10));
        assert_eq!(snapshot.n_commits, 100);
        assert_eq!(snapshot.n_item_changes, 200);
        assert_eq!(snapshot.n_recent, 100);
        assert_eq!(snapshot.p50_us, Some(50));
        assert_eq!(snapshot.p99_us, Some(99));
        assert_eq!(snapshot.max_us, Some(100));
    }

    #[test]
    fn the_ring_keeps_only_the_latest_commits() {
        let stats = CommitStats::new();
        for _ in 0..RECENT_COMMITS {
            stats.committed(Duration::from_secs(1), 1);
        }
        for _ in 0..RECENT_COMMITS {
            stats.committed(Duration::from_micros(3), 1);
        }
        let snapshot = stats.snapshot(Duration::from_secs(60));
        assert_eq!(snapshot.n_recent, RECENT_COMMITS);
        assert_eq!(snapshot.max_us, Some(3));
        assert_eq!(snapshot.n_commits, 2 * RECENT_COMMITS as u64);
    }

    #[test]
    fn a_slot_packs_its_time_and_latency() {
        assert_eq!(unpack(pack(7, u32::MAX)), (7, u32::MAX));
        assert_eq!(unpack(pack(u32::MAX, 0)), (u32::MAX, 0));
    }
}
