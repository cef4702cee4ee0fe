//! The server's own counters, for the Explorer's dashboard (`GET /_explorer/metrics`):
//! requests answered by status class, change-feed items served, connections open.
//!
//! Each is an atomic bumped where the thing happens (the request handler, the change feed
//! route and the feed stream, the accept loop): no lock, no allocation, nothing a request
//! waits on. The store counts its commits itself ([`tributary_store::Store::commit_stats`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one running server.
#[derive(Debug, Default)]
pub(crate) struct ServerMetrics {
    /// Responses by status class: index 0 is 1xx, ..., 4 is 5xx.
    n_responses_by_class: [AtomicU64; 5],
    /// Changes sent by change feed reads and by the Explorer's feed streams.
    n_feed_items_served: AtomicU64,
    /// Connections accepted and not yet closed.
    n_open_connections: AtomicU64,
}

/// A reading of [`ServerMetrics`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ServerMetricsSnapshot {
    /// Responses of status 1xx, 2xx, 3xx, 4xx, 5xx.
    pub n_responses_by_class: [u64; 5],
    pub n_feed_items_served: u64,
    pub n_open_connections: u64,
}

impl ServerMetrics {
    /// Counts a response of `status` (a status outside 100..=599 is not counted).
    pub(crate) fn responded(&self, status: u16) {
        if let Some(counter) = usize::from(status / 100)
            .checked_sub(1)
            .and_then(|class| self.n_responses_by_class.get(class))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts changes sent to a client.
    pub(crate) fn served_feed_items(&self, n_items: usize) {
        self.n_feed_items_served
            .fetch_add(n_items as u64, Ordering::Relaxed);
    }

    /// Counts a connection as open until the returned guard is dropped.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> OpenConnection {
        self.n_open_connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection {
            metrics: Arc::clone(self),
        }
    }

    pub(crate) fn snapshot(&self) -> ServerMetricsSnapshot {
        ServerMetricsSnapshot {
            n_responses_by_class: std::array::from_fn(|class| {
                self.n_responses_by_class[class].load(Ordering::Relaxed)
            }),
            n_feed_items_served: self.n_feed_items_served.load(Ordering::Relaxed),
            n_open_connections: self.n_open_connections.load(Ordering::Relaxed),
        }
    }
}

/// One open connection; dropping it uncounts it.
pub(crate) struct OpenConnection {
    metrics: Arc<ServerMetrics>,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        let before = self
            .metrics
            .n_open_connections
            .fetch_sub(1, Ordering::Relaxed);
        assert!(before > 0, "a connection is uncounted only once");
    }
}

/// The resident set size of this process, in bytes, from `/proc/self/status` (`VmRSS`);
/// `None` where there is no such file (not Linux) or it cannot be read.
pub(crate) fn process_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    rss_of_status(&status)
}

/// The `VmRSS:   1234 kB` line of a `/proc/{pid}/status` text, in bytes.
fn rss_of_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_whitespace();
    let n: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => n.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_counted_by_status_class() {
        let metrics = ServerMetrics::default();
        for status in [100, 200, 201, 304, 404, 412, 503, 99, 600, 0] {
            metrics.responded(status);
        }
        assert_eq!(metrics.snapshot().n_responses_by_class, [1, 2, 1, 2, 1]);
    }

    #[test]
    fn a_connection_counts_while_its_guard_lives() {
        let metrics = Arc::new(ServerMetrics::default());
        let first = metrics.connection_opened();
        let second = metrics.connection_opened();
        assert_eq!(metrics.snapshot().n_open_connections, 2);
        drop(first);
        assert_eq!(metrics.snapshot().n_open_connections, 1);
        drop(second);
        assert_eq!(metrics.snapshot().n_open_connections, 0);
    }

    #[test]
    fn the_rss_is_read_from_the_status_file() {
        let status = "Name:\ttributary\nVmPeak:\t  9000 kB\nVmRSS:\t   1234 kB\nThreads:\t9\n";
        assert_eq!(rss_of_status(status), Some(1234 * 1024));
        assert_eq!(rss_of_status("Name:\tx\n"), None);
        assert_eq!(rss_of_status("VmRSS:\t12 pages\n"), None);
        if cfg!(target_os = "linux") {
            assert!(process_rss_bytes().is_some_and(|bytes| bytes > 0));
        }
    }
}
