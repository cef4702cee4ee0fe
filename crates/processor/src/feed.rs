//! The monitored container's change feed, as the processor sees it: a few operations that
//! the embedded store, a remote server and Azure Cosmos DB all provide.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tributary_query::{Parameters, Query, QueryError};

use crate::clock::BoxFuture;
use crate::error::FeedError;

/// A span of effective partition keys, `[min, max)`, as upper-case hex ("" is the lowest,
/// "FF" the highest). Hex EPKs order as text, so spans compare with string comparisons.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EpkSpan {
    /// Inclusive lower bound.
    pub min: String,
    /// Exclusive upper bound.
    pub max: String,
}

impl EpkSpan {
    /// The span `[min, max)`.
    pub fn new(min: impl Into<String>, max: impl Into<String>) -> Self {
        EpkSpan {
            min: min.into(),
            max: max.into(),
        }
    }

    /// The whole key space.
    pub fn full() -> Self {
        EpkSpan::new("", "FF")
    }

    /// Whether `other` lies within this span.
    pub fn contains(&self, other: &EpkSpan) -> bool {
        self.min <= other.min && other.max <= self.max
    }

    /// Whether the two spans share any key.
    pub fn overlaps(&self, other: &EpkSpan) -> bool {
        self.min < other.max && other.min < self.max
    }

    /// The keys both spans hold (meaningful when they overlap).
    pub fn intersection(&self, other: &EpkSpan) -> EpkSpan {
        EpkSpan::new(
            self.min.clone().max(other.min.clone()),
            self.max.clone().min(other.max.clone()),
        )
    }

    /// Whether this span holds the key `epk`.
    pub fn holds(&self, epk: &str) -> bool {
        self.min.as_str() <= epk && epk < self.max.as_str()
    }
}

impl std::fmt::Display for EpkSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}, {})", self.min, self.max)
    }
}

/// One of the monitored container's current physical ranges (Cosmos DB's partition key
/// ranges; Tributary's feed ranges).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhysicalRange {
    /// The range id (`"0"`, `"1"`, ...).
    pub id: String,
    /// The EPK span it covers.
    pub span: EpkSpan,
    /// The ranges it was split from (how a partition-range lease of a split range finds its
    /// children).
    pub parents: Vec<String>,
}

/// Which changes the processor reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeedMode {
    /// Each changed item once, at its latest version (`A-IM: Incremental Feed`).
    LatestVersion,
    /// Every create, replace and delete (`A-IM: Full-Fidelity Feed`).
    AllVersionsAndDeletes,
}

impl FeedMode {
    /// The value .NET records in a lease's `Mode` property.
    pub fn lease_value(self) -> &'static str {
        match self {
            FeedMode::LatestVersion => "Incremental Feed",
            FeedMode::AllVersionsAndDeletes => "Full-Fidelity Feed",
        }
    }

    /// The mode named by a lease's `Mode` property (absent means latest version, as .NET
    /// leases written before the property existed).
    pub fn from_lease_value(value: Option<&str>) -> Option<FeedMode> {
        match value {
            None | Some("") => Some(FeedMode::LatestVersion),
            Some(text) if text.eq_ignore_ascii_case("Incremental Feed") => {
                Some(FeedMode::LatestVersion)
            }
            Some(text)
                if text.eq_ignore_ascii_case("Full-Fidelity Feed")
                    || text.eq_ignore_ascii_case("AllVersionsAndDeletes") =>
            {
                Some(FeedMode::AllVersionsAndDeletes)
            }
            Some(text) if text.eq_ignore_ascii_case("LatestVersion") => {
                Some(FeedMode::LatestVersion)
            }
            Some(_) => None,
        }
    }
}

/// Where a lease without a continuation starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartFrom {
    /// From the first change still in the feed.
    Beginning,
    /// From the first change after the processor first starts (resolved to a position and
    /// stored in the lease when the lease is created, so nothing written after the start is
    /// missed and the estimator is exact at once).
    Now,
    /// From changes made at or after this time.
    Time(SystemTime),
}

/// A position in a range's feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedPosition {
    /// A start for a lease that has no continuation yet.
    Start(StartFrom),
    /// After the changes a continuation covers.
    Continuation(String),
}

/// One read of the feed.
#[derive(Clone, Debug)]
pub struct FeedRead {
    /// The physical range the read goes to.
    pub range: PhysicalRange,
    /// The part of that range to read (the whole range, or a lease's part of it).
    pub span: EpkSpan,
    /// Where to start.
    pub position: FeedPosition,
    /// Which changes.
    pub mode: FeedMode,
    /// Most changes in the page.
    pub max_items: usize,
    /// How long the source may wait for a change before answering "nothing new" (sources
    /// that cannot wait answer at once; the processor then sleeps its poll interval).
    pub wait: Duration,
    /// Only changes that pass this filter go on the page; the page's continuation still moves
    /// past every change read ([`FeedPage::n_filtered`] counts those left out). A source
    /// applies it where it reads: the embedded store right after the store returns the page,
    /// a Tributary server before the changes leave it, any other source on arrival.
    pub filter: Option<Arc<FeedFilter>>,
}

/// A feed filter: a SQL condition over `c` (`c.status = 'shipped'`) that a change must meet
/// to be handed to the handler ([`crate::ChangeFeedProcessorBuilder::feed_filter`]).
///
/// In latest-version mode the condition sees the document. In all-versions mode it sees the
/// `current` image of a create or replace, and a delete (TTL expirations included) always
/// passes: it has no current image, and a consumer that kept the item needs to see it go. A
/// change the condition cannot be evaluated on passes, so no change is dropped by an error.
#[derive(Clone, Debug)]
pub struct FeedFilter {
    condition: String,
    query: Query,
}

impl FeedFilter {
    /// Parses a condition: bare (`c.status = 'shipped'`), with its `WHERE`, or a whole
    /// `FROM c WHERE ...`, as [`Query::parse_filter`] takes it.
    ///
    /// # Errors
    /// The condition does not parse, or it uses a `@parameter`.
    pub fn parse(condition: &str) -> Result<FeedFilter, QueryError> {
        Ok(FeedFilter {
            condition: condition.to_owned(),
            query: Query::parse_filter(condition)?,
        })
    }

    /// The condition's text, as given.
    pub fn condition(&self) -> &str {
        &self.condition
    }

    /// Whether `change`, read in `mode`, passes.
    pub fn passes(&self, change: &Change, mode: FeedMode) -> bool {
        let Ok(document) = change.value() else {
            return true;
        };
        let subject = match mode {
            FeedMode::LatestVersion => Some(&document),
            FeedMode::AllVersionsAndDeletes => {
                tributary_wire::headers::feed_filter_subject(&document)
            }
        };
        subject.is_none_or(|subject| {
            tributary_query::matches(&self.query, &Parameters::new(), subject).unwrap_or_else(
                |error| {
                    tracing::debug!(%error, "the feed filter failed on a change; it passes");
                    true
                },
            )
        })
    }

    /// The changes that pass, in order, and how many did not.
    pub fn apply(&self, changes: Vec<Change>, mode: FeedMode) -> (Vec<Change>, u64) {
        let n_read = changes.len();
        let kept: Vec<Change> = changes
            .into_iter()
            .filter(|change| self.passes(change, mode))
            .collect();
        let n_filtered = (n_read - kept.len()) as u64;
        (kept, n_filtered)
    }
}

/// One change, as JSON text (system properties included; in all-versions mode, the
/// `current`/`previous`/`metadata` envelope).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    json: String,
}

impl Change {
    /// Wraps JSON text (the caller guarantees it is one JSON object).
    pub fn from_json(json: String) -> Self {
        Change { json }
    }

    /// The change as JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Parses the change into any deserializable type.
    ///
    /// # Errors
    /// The JSON does not fit `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.json)
    }

    /// Parses the change into a JSON value.
    ///
    /// # Errors
    /// Never for changes read from a source (they are JSON objects).
    pub fn value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.json)
    }
}

/// A page of changes.
#[derive(Clone, Debug)]
pub struct FeedPage {
    /// The changes, in feed order; empty with `n_filtered` 0 means "nothing new".
    pub changes: Vec<Change>,
    /// The position after this page (past the changes filtered out too).
    pub continuation: String,
    /// How many changes the read's [`FeedRead::filter`] left out of the page. A page with no
    /// changes but some filtered out moved the position on: read on at once.
    pub n_filtered: u64,
}

/// What a read returned.
#[derive(Clone, Debug)]
pub enum FeedReadOutcome {
    /// A page (possibly empty).
    Page(FeedPage),
    /// The range was split (or merged): read the ranges that replaced it.
    Gone,
}

/// How many changes wait after a position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingChanges {
    /// Changes after the position (exact where the source can count them).
    pub n_changes: u64,
    /// `_ts` (seconds since the epoch) of the oldest of them, if any.
    pub oldest_ts: Option<u64>,
    /// Whether `n_changes` is an exact count (`false`: an estimate from LSN arithmetic).
    pub exact: bool,
}

/// The monitored container's feed: what the processor needs of a source.
pub trait ChangeFeed: Send + Sync + 'static {
    /// Names the monitored container for lease ids: `{account host}_{database rid}_{container
    /// rid}` (the .NET processor's lease prefix after the processor name).
    fn lease_scope(&self) -> BoxFuture<'_, Result<String, FeedError>>;

    /// The container's partition key paths (e.g. `["/customerId"]`).
    fn partition_key_paths(&self) -> BoxFuture<'_, Result<Vec<String>, FeedError>>;

    /// The container's current physical ranges, tiling the key space.
    fn ranges(&self) -> BoxFuture<'_, Result<Vec<PhysicalRange>, FeedError>>;

    /// Reads one page, keeping only the changes that pass [`FeedRead::filter`] (if any) and
    /// counting the others in [`FeedPage::n_filtered`].
    fn read(&self, read: FeedRead) -> BoxFuture<'_, Result<FeedReadOutcome, FeedError>>;

    /// The position right now (what a read from "now" would continue from), for a span of
    /// one range: a read from "now" that does not wait.
    fn current_position(
        &self,
        range: PhysicalRange,
        span: EpkSpan,
        mode: FeedMode,
    ) -> BoxFuture<'_, Result<FeedReadOutcome, FeedError>> {
        self.read(FeedRead {
            range,
            span,
            position: FeedPosition::Start(StartFrom::Now),
            mode,
            max_items: 1,
            wait: Duration::ZERO,
            filter: None,
        })
    }

    /// How many changes wait after `position` in `span` of `range`: every change, whatever
    /// filter the processor reads with (lag counts the changes a filter will leave out too).
    fn pending(
        &self,
        range: PhysicalRange,
        span: EpkSpan,
        position: FeedPosition,
        mode: FeedMode,
    ) -> BoxFuture<'_, Result<PendingOutcome, FeedError>>;

    /// Whether reads honour [`FeedRead::wait`] (push): if not, the processor sleeps its poll
    /// interval after an empty page.
    fn waits_for_changes(&self) -> bool;
}

/// What a pending count returned.
#[derive(Clone, Debug)]
pub enum PendingOutcome {
    /// The count.
    Pending(PendingChanges),
    /// The range was split: count the ranges that replaced it.
    Gone,
}

/// Counts pending changes by reading pages after `position` (exact; costs one read per
/// `page_items` pending changes). Sources without a cheaper way use this. It reads without a
/// filter: lag counts every change, filtered out or not.
pub(crate) async fn count_by_reading<F: ChangeFeed + ?Sized>(
    feed: &F,
    range: PhysicalRange,
    span: EpkSpan,
    mut position: FeedPosition,
    mode: FeedMode,
    page_items: usize,
) -> Result<PendingOutcome, FeedError> {
    let mut n_changes = 0u64;
    let mut oldest_ts = None;
    loop {
        let outcome = feed
            .read(FeedRead {
                range: range.clone(),
                span: span.clone(),
                position: position.clone(),
                mode,
                max_items: page_items,
                wait: Duration::ZERO,
                filter: None,
            })
            .await?;
        let page = match outcome {
            FeedReadOutcome::Gone => return Ok(PendingOutcome::Gone),
            FeedReadOutcome::Page(page) => page,
        };
        if page.changes.is_empty() {
            return Ok(PendingOutcome::Pending(PendingChanges {
                n_changes,
                oldest_ts,
                exact: true,
            }));
        }
        if oldest_ts.is_none() {
            oldest_ts = page.changes.first().and_then(change_ts);
        }
        n_changes += page.changes.len() as u64;
        position = FeedPosition::Continuation(page.continuation);
    }
}

/// The `_ts` of a change (in all-versions mode, of its `metadata.crts` or `current._ts`).
pub(crate) fn change_ts(change: &Change) -> Option<u64> {
    #[derive(Deserialize)]
    struct Stamped {
        #[serde(rename = "_ts")]
        ts: Option<u64>,
        metadata: Option<Metadata>,
        current: Option<Box<Stamped>>,
    }
    #[derive(Deserialize)]
    struct Metadata {
        crts: Option<u64>,
    }
    let stamped: Stamped = serde_json::from_str(change.json()).ok()?;
    stamped
        .ts
        .or_else(|| stamped.metadata.and_then(|m| m.crts))
        .or_else(|| stamped.current.and_then(|c| c.ts))
}
