//! State shared by the committer thread and the readers: the storage backend, the published
//! catalog, the poisoned flag, and the feed watermarks that wake waiting readers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::catalog::{Catalog, ContainerRecord};
use crate::clock::Clock;
use crate::commit_stats::CommitStats;
use crate::storage::{Backend, Durability};

/// State shared by the committer and readers.
pub(crate) struct Shared {
    pub backend: Box<dyn Backend>,
    /// The latest committed catalog.
    pub catalog: RwLock<Arc<Catalog>>,
    /// Set after a failed commit: the store accepts no more writes.
    pub poisoned: Mutex<Option<String>>,
    /// Per container: its feed's watermark, for waiting readers.
    pub watches: Mutex<HashMap<u32, watch::Sender<FeedWatermark>>>,
    pub durability: Durability,
    pub split_threshold_bytes: Option<u64>,
    pub maintenance_interval: Duration,
    pub clock: Arc<dyn Clock>,
    /// What the committer has done, for metrics.
    pub commit_stats: CommitStats,
}

/// What a waiting feed reader watches in one container: the highest committed LSN, and the
/// version of its feed ranges (a split changes the ranges without writing a change, and must
/// wake readers of the split range too). Both only grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FeedWatermark {
    /// The container's highest committed LSN.
    pub high_lsn: u64,
    /// The container's feed-ranges version (one more per split).
    pub ranges_version: u64,
}

impl FeedWatermark {
    /// The watermark of a container as committed.
    pub(crate) fn of(container: &ContainerRecord) -> Self {
        FeedWatermark {
            high_lsn: container.high_lsn(),
            ranges_version: container.feed.ranges_version,
        }
    }

    /// Whether this watermark is past `seen`: a change was committed or the ranges changed.
    pub(crate) fn is_past(&self, seen: &FeedWatermark) -> bool {
        self.high_lsn > seen.high_lsn || self.ranges_version > seen.ranges_version
    }
}

impl Shared {
    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().clone()
    }

    /// Watches a container's [`FeedWatermark`]. Every commit published after this call
    /// (a write or a split) is sent to the receiver; a new channel starts from the published
    /// catalog (commits publish the catalog before they take the watches lock, so none falls
    /// between the two).
    pub(crate) fn subscribe(&self, cid: u32) -> watch::Receiver<FeedWatermark> {
        let mut watches = self.watches.lock();
        watches
            .entry(cid)
            .or_insert_with(|| {
                let watermark = self.catalog().containers.get(&cid).map_or(
                    FeedWatermark {
                        high_lsn: 0,
                        ranges_version: 0,
                    },
                    |container| FeedWatermark::of(container),
                );
                watch::channel(watermark).0
            })
            .subscribe()
    }

    pub(crate) fn now_s(&self) -> u64 {
        self.clock.now_ms() / 1000
    }
}
