//! The free-space reserve: the committer refuses writes while the disk holding the data
//! directory has less free space than the reserve, and lets them through again as soon as it
//! has more, with no restart.
//!
//! The free space is measured at most every [`crate::StoreOptions::disk_space_check_interval`]
//! or after [`REMEASURE_AFTER_BYTES`] committed, whichever comes first; while writes are
//! refused it is measured before every group, so the first group after space is freed goes
//! through. Entering and leaving the refusing state is logged once each, not per request.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::disk_space::{DiskSpace, mib};
use crate::error::StoreError;

/// Bytes of keys and values committed after which the free space is measured again, even
/// within the check interval: a burst of large writes is not committed on a stale figure.
const REMEASURE_AFTER_BYTES: u64 = 16 * 1024 * 1024;

/// What the last measurement said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At least the reserve is free: writes go ahead.
    AboveReserve,
    /// Less than the reserve is free: writes are refused.
    BelowReserve { free_bytes: u64 },
    /// The free space could not be measured: writes go ahead (the check fails open, as a
    /// store without it would), and the storage engine's own errors still stop a full disk.
    Unknown,
}

/// The committer's view of the free space, re-measured as the module doc says.
pub(crate) struct DiskReserve {
    data_dir: PathBuf,
    reserve_bytes: u64,
    disk_space: Arc<dyn DiskSpace>,
    check_interval: Duration,
    /// When the free space was last measured (`None`: never).
    measured_at: Option<Instant>,
    /// Bytes committed since then.
    written_since_bytes: u64,
    state: State,
}

impl DiskReserve {
    /// A reserve of `reserve_bytes` on the disk holding `data_dir` (0: no reserve, never
    /// measured), measured through `disk_space` at most every `check_interval`.
    pub(crate) fn new(
        data_dir: PathBuf,
        reserve_bytes: u64,
        disk_space: Arc<dyn DiskSpace>,
        check_interval: Duration,
    ) -> Self {
        DiskReserve {
            data_dir,
            reserve_bytes,
            disk_space,
            check_interval,
            measured_at: None,
            written_since_bytes: 0,
            state: State::AboveReserve,
        }
    }

    /// The reason a commit that failed with `error`, an `ENOSPC` from the engine, poisons the
    /// store with: the disk filled although the reserve was checked before the commit.
    pub(super) fn ran_out_of_space(&self, error: &StoreError) -> String {
        format!(
            "disk full: the disk holding {} ran out of space during a commit; the free-space \
             reserve of {} MiB was too small ({error})",
            self.data_dir.display(),
            mib(self.reserve_bytes)
        )
    }

    /// `Some(free bytes)` if writes must be refused now: less than the reserve is free.
    /// Measures the free space first when the last measurement is stale.
    pub(super) fn below_reserve(&mut self) -> Option<u64> {
        if self.reserve_bytes == 0 {
            return None;
        }
        if self.is_due() {
            self.measure();
        }
        match self.state {
            State::BelowReserve { free_bytes } => Some(free_bytes),
            State::AboveReserve | State::Unknown => None,
        }
    }

    /// The error a write refused with `free_bytes` free is answered with.
    pub(super) fn disk_full(&self, free_bytes: u64) -> StoreError {
        StoreError::DiskFull {
            path: self.data_dir.clone(),
            free_bytes,
            reserve_bytes: self.reserve_bytes,
        }
    }

    /// Counts `bytes` committed since the last measurement.
    pub(super) fn wrote(&mut self, bytes: u64) {
        self.written_since_bytes = self.written_since_bytes.saturating_add(bytes);
    }

    fn is_due(&self) -> bool {
        matches!(self.state, State::BelowReserve { .. })
            || self.written_since_bytes >= REMEASURE_AFTER_BYTES
            || self
                .measured_at
                .is_none_or(|at| at.elapsed() >= self.check_interval)
    }

    fn measure(&mut self) {
        self.measured_at = Some(Instant::now());
        self.written_since_bytes = 0;
        let data_dir = self.data_dir.display();
        let reserve_mib = mib(self.reserve_bytes);
        let next = match self.disk_space.free_bytes(&self.data_dir) {
            Ok(free_bytes) if free_bytes < self.reserve_bytes => {
                if !matches!(self.state, State::BelowReserve { .. }) {
                    tracing::warn!(
                        %data_dir,
                        free_mib = mib(free_bytes),
                        reserve_mib,
                        "free disk space is below the reserve: writes are refused until space is freed"
                    );
                }
                State::BelowReserve { free_bytes }
            }
            Ok(free_bytes) => {
                if self.state != State::AboveReserve {
                    tracing::info!(
                        %data_dir,
                        free_mib = mib(free_bytes),
                        reserve_mib,
                        "free disk space is above the reserve: writes resume"
                    );
                }
                State::AboveReserve
            }
            Err(error) => {
                if self.state != State::Unknown {
                    tracing::warn!(
                        %data_dir,
                        %error,
                        "cannot measure the free disk space: writes go ahead without the reserve"
                    );
                }
                State::Unknown
            }
        };
        self.state = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk_space::ManualDiskSpace;

    const MIB: u64 = 1024 * 1024;

    fn reserve(disk: &Arc<ManualDiskSpace>, interval: Duration) -> DiskReserve {
        DiskReserve::new(
            PathBuf::from("/data"),
            100 * MIB,
            Arc::clone(disk) as Arc<dyn DiskSpace>,
            interval,
        )
    }

    #[test]
    fn below_the_reserve_every_check_measures_so_writes_resume_at_once() {
        let disk = Arc::new(ManualDiskSpace::new(10 * MIB));
        let mut reserve = reserve(&disk, Duration::from_secs(3600));
        let free_bytes = reserve
            .below_reserve()
            .expect("10 MiB free is below 100 MiB");
        assert_eq!(
            reserve.disk_full(free_bytes).to_string(),
            "the disk holding /data has 10 MiB free, below the 100 MiB reserve; writes resume \
             on their own when space is freed"
        );
        assert!(reserve.below_reserve().is_some());
        disk.set_free_bytes(200 * MIB);
        assert!(
            reserve.below_reserve().is_none(),
            "space back: the next check lets writes through"
        );
        assert_eq!(disk.n_measurements(), 3);
    }

    #[test]
    fn above_the_reserve_a_fresh_measurement_is_reused_until_enough_is_written() {
        let disk = Arc::new(ManualDiskSpace::new(200 * MIB));
        let mut reserve = reserve(&disk, Duration::from_secs(3600));
        assert!(reserve.below_reserve().is_none());
        disk.set_free_bytes(MIB);
        assert!(
            reserve.below_reserve().is_none(),
            "within the interval and few bytes written: not measured again"
        );
        assert_eq!(disk.n_measurements(), 1);
        reserve.wrote(REMEASURE_AFTER_BYTES);
        assert!(
            reserve.below_reserve().is_some(),
            "measured again after enough bytes"
        );
        assert_eq!(disk.n_measurements(), 2);
    }

    #[test]
    fn a_zero_interval_measures_before_every_group() {
        let disk = Arc::new(ManualDiskSpace::new(200 * MIB));
        let mut reserve = reserve(&disk, Duration::ZERO);
        assert!(reserve.below_reserve().is_none());
        disk.set_free_bytes(MIB);
        assert!(reserve.below_reserve().is_some());
    }

    #[test]
    fn a_zero_reserve_never_measures() {
        let disk = Arc::new(ManualDiskSpace::new(0));
        let mut reserve = DiskReserve::new(
            PathBuf::from("/data"),
            0,
            Arc::clone(&disk) as Arc<dyn DiskSpace>,
            Duration::ZERO,
        );
        assert!(reserve.below_reserve().is_none());
        assert_eq!(disk.n_measurements(), 0);
    }
}
