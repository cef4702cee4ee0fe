//! The change feed request and page: `GET .../docs` with `A-IM`, where to start, which part of
//! the container, and the page that comes back.

use std::time::{Duration, SystemTime};

use serde_json::value::RawValue;

/// Which changes the feed shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeFeedMode {
    /// The latest version of each changed item, no deletes (`A-IM: Incremental Feed`).
    LatestVersion,
    /// Every create, replace and delete, each with its metadata (`A-IM: Full-Fidelity Feed`,
    /// wire format `2021-09-15`). The container needs a change feed retention policy.
    AllVersionsAndDeletes,
}

/// Where a change feed read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeFeedStart {
    /// From the first change the feed still holds (no condition header).
    Beginning,
    /// From changes made after this request (`If-None-Match: *`); the first page is usually
    /// empty and its etag is the position to continue from.
    Now,
    /// From changes made at or after this time (`If-Modified-Since`, second precision).
    Time(SystemTime),
    /// After the position a previous page returned as its [`ChangeFeedPage::etag`]
    /// (`If-None-Match: <etag>`, sent as given, quotes included).
    Etag(String),
}

/// One change feed read: the scope, the start, the mode and the page size.
///
/// The scope is the whole container unless a range id, an EPK range or a partition key is
/// set. Azure Cosmos DB needs the range id whenever an EPK range is sent (the EPK range then
/// narrows the range); a Tributary server accepts either alone.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeFeedRequest {
    /// A partition key range id (`x-ms-documentdb-partitionkeyrangeid`).
    pub range_id: Option<String>,
    /// An effective partition key span `[min, max)` (`x-ms-start-epk` / `x-ms-end-epk`, with
    /// `x-ms-read-key-type: EffectivePartitionKeyRange`), as hex EPK strings; `("", "FF")` is
    /// the whole container.
    pub epk_range: Option<(String, String)>,
    /// One logical partition's changes (`x-ms-documentdb-partitionkey`): a single key value,
    /// or an array of components for a hierarchical key.
    pub partition_key: Option<serde_json::Value>,
    /// Where to start.
    pub start: ChangeFeedStart,
    /// Which changes to show.
    pub mode: ChangeFeedMode,
    /// The most changes on one page (`x-ms-max-item-count`), at least 1.
    pub max_items: usize,
    /// With nothing new, how long a Tributary server may wait for a change before answering
    /// 304 (`x-tributary-wait-ms`, at most
    /// [`MAX_TRIBUTARY_WAIT`](tributary_wire::headers::MAX_TRIBUTARY_WAIT)); `None` sends no
    /// header and gets the standard immediate answer. Azure Cosmos DB ignores it.
    pub wait: Option<Duration>,
    /// A SQL condition over `c` (`c.status = 'shipped'`) that a Tributary server evaluates on
    /// each change before it leaves the server (`x-tributary-feed-filter`, percent-encoded):
    /// only matching changes are on the page, and its etag still moves past every change read.
    /// Azure Cosmos DB ignores it: [`ChangeFeedPage::n_filtered`] is `None` then, and the
    /// caller must filter the page itself.
    pub filter: Option<String>,
}

impl ChangeFeedRequest {
    /// The latest-version feed of the whole container from `start`, up to `max_items` a page,
    /// without waiting.
    pub fn new(start: ChangeFeedStart, max_items: usize) -> ChangeFeedRequest {
        ChangeFeedRequest {
            range_id: None,
            epk_range: None,
            partition_key: None,
            start,
            mode: ChangeFeedMode::LatestVersion,
            max_items,
            wait: None,
            filter: None,
        }
    }
}

/// One page of the change feed.
#[derive(Debug, Clone)]
pub struct ChangeFeedPage {
    /// The changes, oldest first: the items of the response's `Documents` array, exactly as
    /// the server sent them.
    pub changes: Vec<Box<RawValue>>,
    /// The position after this page (the response `etag`): send it back as
    /// [`ChangeFeedStart::Etag`] to continue.
    pub etag: String,
    /// The response's `x-ms-session-token`, if any.
    pub session_token: Option<String>,
    /// Whether the server answered 304 Not Modified: nothing new (then `changes` is empty), or,
    /// with a filter, nothing new that matched.
    pub not_modified: bool,
    /// With [`ChangeFeedRequest::filter`], how many changes the server read and left out
    /// (`x-tributary-filtered-count`; `etag` is past them). A 304 with a count above zero
    /// means more may follow at once. `None` when the server did not report a count: no
    /// filter was sent, or the server does not filter (Azure Cosmos DB).
    pub n_filtered: Option<u64>,
}
