//! Progress lines on stderr for long phases, once a second, so stdout stays clean.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

/// How often a phase reports.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Counts a phase's finished operations and, if shown, prints
/// `phase: done/total unit` to stderr every [`PROGRESS_INTERVAL`] until dropped.
pub(crate) struct PhaseProgress {
    done: Arc<AtomicU64>,
    ticker: Option<JoinHandle<()>>,
}

impl PhaseProgress {
    /// Starts counting; must be called inside a tokio runtime when `show` is set.
    pub(crate) fn start(phase: &'static str, total: u64, unit: &'static str, show: bool) -> Self {
        let done = Arc::new(AtomicU64::new(0));
        let ticker = show.then(|| {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(PROGRESS_INTERVAL);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    let n_done = done.load(Ordering::Relaxed);
                    emit(phase, format_args!("{n_done}/{total} {unit}"));
                }
            })
        });
        PhaseProgress { done, ticker }
    }

    /// The shared counter, for tasks and threads that do the work.
    pub(crate) fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.done)
    }
}

impl Drop for PhaseProgress {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
    }
}

/// Prints one progress line, `phase: message`, to stderr.
pub(crate) fn emit(phase: &str, message: std::fmt::Arguments<'_>) {
    eprintln!("{phase}: {message}");
}
