//! The processor on the embedded store: the monitored feed read by direct calls (a read
//! waits on the store's waiting readers, so a commit wakes it), and leases kept in a
//! container of the same store, whose writes can carry other writes to that store in one
//! transaction ([`LeaseContainer::replace_with_writes`]).

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use serde_json::Value;
use tributary_partition_key::{Epk, EpkRange, PartitionKey};
use tributary_store::{
    ContainerDefinition, CrossDatabaseOperation, FeedRequest, FeedScope, FeedStart, ItemWrite,
    MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS, MAX_PAGE_ITEMS, OperationResult, Precondition,
    Store, StoreError, WriteKind, WriteOutcome,
};

use crate::clock::BoxFuture;
use crate::error::{FeedError, LeaseStoreError};
use crate::feed::{
    Change, ChangeFeed, EpkSpan, FeedMode, FeedPage, FeedPosition, FeedRead, FeedReadOutcome,
    PendingOutcome, PhysicalRange, StartFrom, count_by_reading,
};
use crate::lease_container::{AttachedWrite, LeaseContainer, StoredDocument, document_id};

/// The account part of lease ids for the embedded store (a server uses its host name).
pub const EMBEDDED_ACCOUNT: &str = "embedded";
/// The most changes one filtered read that waits reads before it answers with what it has
/// (a long run of changes that fail the filter costs bounded work per read).
pub const MAX_FILTER_SCAN_CHANGES: usize = 10_000;

/// A container of the embedded store, as a change feed.
#[derive(Clone)]
pub struct EmbeddedFeed {
    store: Arc<Store>,
    database: String,
    container: String,
}

impl EmbeddedFeed {
    /// The feed of `database`/`container` in `store`.
    pub fn new(store: Arc<Store>, database: &str, container: &str) -> Self {
        EmbeddedFeed {
            store,
            database: database.to_owned(),
            container: container.to_owned(),
        }
    }

    fn request(read: &FeedRead) -> Result<FeedRequest, FeedError> {
        let range_id: u32 = read
            .range
            .id
            .parse()
            .map_err(|_| FeedError::Source(format!("'{}' is not a range id", read.range.id)))?;
        let scope = if read.span == read.range.span {
            FeedScope::Range(range_id)
        } else {
            let epk = |hex: &str| {
                Epk::parse(hex).map_err(|e| FeedError::Source(format!("bad EPK '{hex}': {e}")))
            };
            FeedScope::RangePart {
                range: range_id,
                epk: EpkRange::new(epk(&read.span.min)?, epk(&read.span.max)?)
                    .map_err(|e| FeedError::Source(e.to_string()))?,
            }
        };
        let start = match &read.position {
            FeedPosition::Start(StartFrom::Beginning) => FeedStart::Beginning,
            FeedPosition::Start(StartFrom::Now) => FeedStart::Now,
            FeedPosition::Start(StartFrom::Time(time)) => FeedStart::PointInTime(
                time.duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
            ),
            FeedPosition::Continuation(etag) => {
                FeedStart::AfterLsn(crate::lease::continuation_lsn(etag).ok_or_else(|| {
                    FeedError::InvalidPosition(format!(
                        "'{etag}' is not a Tributary change feed position (a quoted LSN)"
                    ))
                })?)
            }
        };
        Ok(FeedRequest {
            scope,
            start,
            mode: match read.mode {
                FeedMode::LatestVersion => tributary_store::FeedMode::LatestVersion,
                FeedMode::AllVersionsAndDeletes => tributary_store::FeedMode::AllVersionsAndDeletes,
            },
            max_items: read.max_items.min(MAX_PAGE_ITEMS),
        })
    }
}

fn feed_error(error: StoreError) -> FeedError {
    match error {
        StoreError::DatabaseNotFound(_) | StoreError::ContainerNotFound { .. } => {
            FeedError::ContainerNotFound(error.to_string())
        }
        StoreError::InvalidContinuation(_) | StoreError::OutsideRetention(_) => {
            FeedError::InvalidPosition(error.to_string())
        }
        StoreError::Overloaded(_) => FeedError::Throttled { retry_after: None },
        other => FeedError::Source(other.to_string()),
    }
}

impl ChangeFeed for EmbeddedFeed {
    fn lease_scope(&self) -> BoxFuture<'_, Result<String, FeedError>> {
        Box::pin(async move {
            let container = self
                .store
                .read_container(&self.database, &self.container)
                .map_err(feed_error)?;
            Ok(format!(
                "{EMBEDDED_ACCOUNT}_{}_{}",
                container.database_rid, container.rid
            ))
        })
    }

    fn partition_key_paths(&self) -> BoxFuture<'_, Result<Vec<String>, FeedError>> {
        Box::pin(async move {
            let container = self
                .store
                .read_container(&self.database, &self.container)
                .map_err(feed_error)?;
            Ok(container.definition.partition_key.paths.clone())
        })
    }

    fn ranges(&self) -> BoxFuture<'_, Result<Vec<PhysicalRange>, FeedError>> {
        Box::pin(async move {
            let container = self
                .store
                .read_container(&self.database, &self.container)
                .map_err(feed_error)?;
            Ok(container
                .feed_ranges
                .iter()
                .filter(|r| r.is_current())
                .map(|r| PhysicalRange {
                    id: r.id.to_string(),
                    span: EpkSpan::new(r.min.clone(), r.max.clone()),
                    parents: r.parents.iter().map(u32::to_string).collect(),
                })
                .collect())
        })
    }

    /// Reads a page and applies the read's filter to it before anything leaves this call. A
    /// read that waits and finds only changes that fail the filter reads (and waits) on from
    /// past them until one matches, the wait runs out, or [`MAX_FILTER_SCAN_CHANGES`] were
    /// read; the page then has the position after everything read.
    fn read(&self, read: FeedRead) -> BoxFuture<'_, Result<FeedReadOutcome, FeedError>> {
        Box::pin(async move {
            let mut request = EmbeddedFeed::request(&read)?;
            let deadline = tokio::time::Instant::now() + read.wait;
            let mut wait = read.wait;
            let mut n_read = 0;
            let mut n_filtered = 0;
            loop {
                let page = if wait.is_zero() {
                    self.store
                        .read_feed(&self.database, &self.container, &request)
                } else {
                    self.store
                        .read_feed_wait(&self.database, &self.container, &request, wait)
                        .await
                };
                let page = match page {
                    Ok(page) => page,
                    Err(StoreError::RangeGone { .. }) => return Ok(FeedReadOutcome::Gone),
                    Err(error) => return Err(feed_error(error)),
                };
                let n_page = page.changes.len();
                n_read += n_page;
                let changes: Vec<Change> =
                    page.changes.into_iter().map(Change::from_json).collect();
                let changes = match &read.filter {
                    Some(filter) => {
                        let (kept, n_out) = filter.apply(changes, read.mode);
                        n_filtered += n_out;
                        kept
                    }
                    None => changes,
                };
                wait = deadline.saturating_duration_since(tokio::time::Instant::now());
                if !changes.is_empty()
                    || n_page == 0
                    || wait.is_zero()
                    || n_read >= MAX_FILTER_SCAN_CHANGES
                {
                    return Ok(FeedReadOutcome::Page(FeedPage {
                        changes,
                        continuation: format!("\"{}\"", page.lsn),
                        n_filtered,
                    }));
                }
                request.start = FeedStart::AfterLsn(page.lsn);
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
        Box::pin(count_by_reading(
            self,
            range,
            span,
            position,
            mode,
            MAX_PAGE_ITEMS,
        ))
    }

    fn waits_for_changes(&self) -> bool {
        true
    }
}

/// A lease container in the embedded store (partitioned by `/id`).
#[derive(Clone)]
pub struct EmbeddedLeaseContainer {
    store: Arc<Store>,
    database: String,
    container: String,
}

impl EmbeddedLeaseContainer {
    /// The lease container `database`/`container`, created (partition key `/id`) if it does
    /// not exist; the database must exist.
    ///
    /// # Errors
    /// The store failed, or the container exists with another partition key.
    pub async fn open(
        store: Arc<Store>,
        database: &str,
        container: &str,
    ) -> Result<Self, LeaseStoreError> {
        match store.read_container(database, container) {
            Ok(existing) => {
                let paths = &existing.definition.partition_key.paths;
                if paths.len() != 1 || paths[0] != "/id" {
                    return Err(LeaseStoreError::Unavailable(format!(
                        "lease container '{container}' must be partitioned by /id, not {paths:?}"
                    )));
                }
            }
            Err(StoreError::ContainerNotFound { .. }) => {
                let definition = ContainerDefinition::new(container, "/id");
                match store.create_container(database, definition, 1).await {
                    Ok(_) | Err(StoreError::ContainerExists(_)) => {}
                    Err(error) => return Err(LeaseStoreError::Unavailable(error.to_string())),
                }
            }
            Err(error) => return Err(LeaseStoreError::Unavailable(error.to_string())),
        }
        Ok(EmbeddedLeaseContainer {
            store,
            database: database.to_owned(),
            container: container.to_owned(),
        })
    }

    fn key(id: &str) -> PartitionKey {
        PartitionKey::from_json(&Value::Array(vec![Value::String(id.to_owned())]))
            .unwrap_or_else(|_| PartitionKey(Vec::new()))
    }

    /// A write of lease document `id`, conditional on `etag` if given.
    fn lease_write(
        id: &str,
        kind: WriteKind,
        body: Option<Value>,
        etag: Option<&str>,
    ) -> ItemWrite {
        ItemWrite {
            kind,
            partition_key: Some(Self::key(id)),
            id: Some(id.to_owned()),
            body,
            precondition: etag.map(|etag| Precondition::IfMatch(etag.to_owned())),
        }
    }

    async fn write(
        &self,
        id: String,
        kind: WriteKind,
        body: Option<Value>,
        etag: Option<&str>,
    ) -> Result<Option<StoredDocument>, LeaseStoreError> {
        let write = Self::lease_write(&id, kind, body, etag);
        match self
            .store
            .write_item(&self.database, &self.container, write)
            .await
        {
            Ok(outcome) => match outcome.item {
                Some(item) => Ok(Some(stored(&item.body, &item.etag)?)),
                None => Ok(None),
            },
            Err(error) => Err(lease_write_error(id, error)),
        }
    }
}

/// What a failed write of lease document `id` means to the processor.
fn lease_write_error(id: String, error: StoreError) -> LeaseStoreError {
    match error {
        StoreError::ItemExists(_) => LeaseStoreError::Conflict(id),
        StoreError::ItemNotFound(_) => LeaseStoreError::NotFound(id),
        StoreError::PreconditionFailed(_) => LeaseStoreError::PreconditionFailed(id),
        error => LeaseStoreError::Unavailable(error.to_string()),
    }
}

fn stored(body: &str, etag: &str) -> Result<StoredDocument, LeaseStoreError> {
    let body: Value = serde_json::from_str(body)
        .map_err(|e| LeaseStoreError::Unavailable(format!("a stored lease is not JSON: {e}")))?;
    Ok(StoredDocument {
        body,
        etag: etag.to_owned(),
    })
}

impl LeaseContainer for EmbeddedLeaseContainer {
    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<StoredDocument>, LeaseStoreError>> {
        let prefix = prefix.to_owned();
        Box::pin(async move {
            let items = self
                .store
                .scan_items(&self.database, &self.container, &FeedScope::Container)
                .map_err(|e| LeaseStoreError::Unavailable(e.to_string()))?;
            let mut found = Vec::new();
            for text in items {
                let body: Value = serde_json::from_str(&text).map_err(|e| {
                    LeaseStoreError::Unavailable(format!("a stored lease is not JSON: {e}"))
                })?;
                let matches = body
                    .get("id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.starts_with(&prefix));
                if matches {
                    let etag = body
                        .get("_etag")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    found.push(StoredDocument { body, etag });
                }
            }
            Ok(found)
        })
    }

    fn read(&self, id: &str) -> BoxFuture<'_, Result<Option<StoredDocument>, LeaseStoreError>> {
        let id = id.to_owned();
        Box::pin(async move {
            match self
                .store
                .read_item(&self.database, &self.container, &Self::key(&id), &id)
            {
                Ok(item) => Ok(Some(stored(&item.body, &item.etag)?)),
                Err(StoreError::ItemNotFound(_)) => Ok(None),
                Err(error) => Err(LeaseStoreError::Unavailable(error.to_string())),
            }
        })
    }

    fn create(&self, body: Value) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
        Box::pin(async move {
            let id = document_id(&body)?;
            self.write(id.clone(), WriteKind::Create, Some(body), None)
                .await?
                .ok_or(LeaseStoreError::NotFound(id))
        })
    }

    fn replace(
        &self,
        body: Value,
        etag: &str,
    ) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
        let etag = etag.to_owned();
        Box::pin(async move {
            let id = document_id(&body)?;
            self.write(id.clone(), WriteKind::Replace, Some(body), Some(&etag))
                .await?
                .ok_or(LeaseStoreError::NotFound(id))
        })
    }

    fn delete(&self, id: &str, etag: Option<&str>) -> BoxFuture<'_, Result<(), LeaseStoreError>> {
        let id = id.to_owned();
        let etag = etag.map(str::to_owned);
        Box::pin(async move {
            self.write(id, WriteKind::Delete, None, etag.as_deref())
                .await
                .map(|_| ())
        })
    }

    fn supports_attached_writes(&self) -> bool {
        true
    }

    /// One store transaction ([`Store::transaction_across_databases`]): the lease replace
    /// conditional on `etag`, then an upsert per write, in any database and container of
    /// this store. At most [`MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS`] − 1 writes.
    fn replace_with_writes(
        &self,
        body: Value,
        etag: &str,
        writes: Vec<AttachedWrite>,
    ) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
        let etag = etag.to_owned();
        Box::pin(async move {
            let id = document_id(&body)?;
            let max_writes = MAX_CROSS_CONTAINER_TRANSACTION_OPERATIONS - 1;
            if writes.len() > max_writes {
                return Err(LeaseStoreError::Unsupported(format!(
                    "the embedded store commits at most {max_writes} writes with a lease, not {}",
                    writes.len()
                )));
            }
            let mut targets = Vec::with_capacity(writes.len());
            let mut operations = Vec::with_capacity(writes.len() + 1);
            operations.push(CrossDatabaseOperation {
                database: self.database.clone(),
                container: self.container.clone(),
                write: Self::lease_write(&id, WriteKind::Replace, Some(body), Some(&etag)),
            });
            for write in writes {
                targets.push((write.database.clone(), write.container.clone()));
                operations.push(CrossDatabaseOperation {
                    database: write.database,
                    container: write.container,
                    write: ItemWrite::upsert(write.document),
                });
            }
            let outcome = match self.store.transaction_across_databases(operations).await {
                Ok(outcome) => outcome,
                Err(error @ StoreError::BadRequest(_)) => {
                    return Err(LeaseStoreError::Unsupported(format!(
                        "the embedded store cannot commit these writes with a lease: {error}"
                    )));
                }
                Err(error) => return Err(LeaseStoreError::Unavailable(error.to_string())),
            };
            let mut results = outcome.results.into_iter().enumerate();
            if outcome.committed {
                return match results.next() {
                    Some((
                        _,
                        OperationResult::Done(WriteOutcome {
                            item: Some(item), ..
                        }),
                    )) => stored(&item.body, &item.etag),
                    _ => Err(LeaseStoreError::Unavailable(format!(
                        "the store committed lease '{id}' but did not return it"
                    ))),
                };
            }
            let failure = results.find_map(|(index, result)| match result {
                OperationResult::Failed(error) => Some((index, error)),
                OperationResult::Done(_) | OperationResult::NotApplied => None,
            });
            match failure {
                Some((0, error)) => Err(lease_write_error(id, error)),
                Some((index, error)) => {
                    // One result per operation: the write is `targets[index - 1]`.
                    let (database, container) = targets.get(index - 1).cloned().unwrap_or_default();
                    Err(LeaseStoreError::AttachedWriteFailed {
                        database,
                        container,
                        reason: error.to_string(),
                    })
                }
                None => Err(LeaseStoreError::Unavailable(format!(
                    "the store refused the write of lease '{id}' without naming a failed operation"
                ))),
            }
        })
    }
}
