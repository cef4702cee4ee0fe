//! The processor over the Cosmos DB REST API: a remote `tributary serve` (with the long-poll
//! extension, so changes are pushed) or Azure Cosmos DB (polled), through
//! [`tributary_client::CosmosClient`].
//!
//! A feed filter ([`crate::FeedRead::filter`]) goes to `tributary serve` in Tributary's
//! `x-tributary-feed-filter` header, so changes that fail it never leave the server; against
//! other servers (or a Tributary server that does not report a filtered count) the page is
//! filtered here as it arrives.
//!
//! Pending changes (for the estimator) are counted by reading on `tributary serve` (exact,
//! one read per thousand pending changes). Against other servers they are
//! estimated as the .NET estimator does, in one read of one item: the LSN in the
//! response's session token minus the `_lsn` of the first pending change, plus one. That
//! is an upper bound when the token's LSN is the container's (as `tributary serve` sends)
//! rather than the range's.

use std::time::Duration;

use serde_json::{Value, json};
use tributary_client::{
    ChangeFeedMode, ChangeFeedRequest, ChangeFeedStart, ClientError, CosmosClient,
};

use crate::clock::BoxFuture;
use crate::error::{FeedError, LeaseStoreError};
use crate::feed::{
    Change, ChangeFeed, EpkSpan, FeedMode, FeedPage, FeedPosition, FeedRead, FeedReadOutcome,
    PendingChanges, PendingOutcome, PhysicalRange, StartFrom, change_ts, count_by_reading,
};
use crate::lease_container::{AttachedWrite, LeaseContainer, StoredDocument, document_id};

/// Largest page the pending count reads at once.
const PENDING_PAGE_ITEMS: usize = 1000;
/// The page the pending estimate reads: the first pending change is all it needs.
const ESTIMATE_PAGE_ITEMS: usize = 1;

/// A container's change feed over the REST API.
#[derive(Clone)]
pub struct RemoteFeed {
    client: CosmosClient,
    database: String,
    container: String,
    long_poll: bool,
}

impl RemoteFeed {
    /// The feed of `database`/`container`. With `long_poll`, reads send Tributary's
    /// `x-tributary-wait-ms` so the server answers when a change commits, and pending
    /// changes are counted exactly (use it with `tributary serve`). Without it, the
    /// processor polls and pending changes are estimated from session tokens (for Azure
    /// Cosmos DB and other servers, which ignore the header).
    pub fn new(client: CosmosClient, database: &str, container: &str, long_poll: bool) -> Self {
        RemoteFeed {
            client,
            database: database.to_owned(),
            container: container.to_owned(),
            long_poll,
        }
    }

    /// The account host in the endpoint (the .NET processor's lease prefix uses it).
    fn account_host(&self) -> String {
        let endpoint = self.client.endpoint();
        let rest = endpoint
            .split_once("://")
            .map_or(endpoint, |(_, rest)| rest);
        let authority = rest.split('/').next().unwrap_or(rest);
        match authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.to_owned(),
            _ => authority.to_owned(),
        }
    }
}

impl RemoteFeed {
    /// The REST request of one read.
    fn change_feed_request(&self, read: &FeedRead) -> ChangeFeedRequest {
        ChangeFeedRequest {
            range_id: Some(read.range.id.clone()),
            epk_range: (read.span != read.range.span)
                .then(|| (read.span.min.clone(), read.span.max.clone())),
            partition_key: None,
            start: match &read.position {
                FeedPosition::Start(StartFrom::Beginning) => ChangeFeedStart::Beginning,
                FeedPosition::Start(StartFrom::Now) => ChangeFeedStart::Now,
                FeedPosition::Start(StartFrom::Time(time)) => ChangeFeedStart::Time(*time),
                FeedPosition::Continuation(etag) => ChangeFeedStart::Etag(etag.clone()),
            },
            mode: match read.mode {
                FeedMode::LatestVersion => ChangeFeedMode::LatestVersion,
                FeedMode::AllVersionsAndDeletes => ChangeFeedMode::AllVersionsAndDeletes,
            },
            max_items: read.max_items,
            wait: (self.long_poll && !read.wait.is_zero()).then_some(read.wait),
            // A Tributary server filters before the changes leave it; others are sent no
            // filter and the page is filtered here on arrival.
            filter: read
                .filter
                .as_ref()
                .filter(|_| self.long_poll)
                .map(|filter| filter.condition().to_owned()),
        }
    }

    /// Pending changes as the .NET estimator estimates them, in one read of one item: none
    /// if the page is empty (exact), else the LSN of the response's session token minus the
    /// `_lsn` of the first pending change, plus one (at least one; not exact).
    async fn estimate_pending(
        &self,
        range: PhysicalRange,
        span: EpkSpan,
        position: FeedPosition,
        mode: FeedMode,
    ) -> Result<PendingOutcome, FeedError> {
        let request = self.change_feed_request(&FeedRead {
            range,
            span,
            position,
            mode,
            max_items: ESTIMATE_PAGE_ITEMS,
            wait: Duration::ZERO,
            filter: None,
        });
        let page = match self
            .client
            .change_feed(&self.database, &self.container, &request)
            .await
        {
            Ok(page) => page,
            Err(error) if error.is_split() => return Ok(PendingOutcome::Gone),
            Err(error) => return Err(feed_error(error)),
        };
        let Some(first) = page.changes.first() else {
            return Ok(PendingOutcome::Pending(PendingChanges {
                n_changes: 0,
                oldest_ts: None,
                exact: true,
            }));
        };
        let first = Change::from_json(first.get().to_owned());
        let high_lsn = page.session_token.as_deref().and_then(session_token_lsn);
        let n_changes = match (high_lsn, change_lsn(&first)) {
            (Some(high_lsn), Some(first_lsn)) => high_lsn.saturating_sub(first_lsn) + 1,
            // Without the arithmetic's inputs, only the change in hand is known.
            _ => 1,
        };
        Ok(PendingOutcome::Pending(PendingChanges {
            n_changes,
            oldest_ts: change_ts(&first),
            exact: false,
        }))
    }
}

/// The global LSN of a session token, as the .NET estimator reads it: of
/// `{range id}:{version}#{global lsn}[#{region}={lsn}...]`, the part after the first `#`
/// (or, in the old `{range id}:{lsn}` form, after the `:`). Of several tokens (comma
/// separated, one per range), the first. `None` if there is no number there.
fn session_token_lsn(header: &str) -> Option<u64> {
    let token = header.split(',').next()?.trim();
    let (_, vector) = token.split_once(':')?;
    let lsn = match vector.split_once('#') {
        Some((_, rest)) => rest.split('#').next()?,
        None => vector,
    };
    lsn.parse().ok()
}

/// The LSN of a change: its `_lsn` (latest version), or in all-versions mode its
/// `metadata.lsn`.
fn change_lsn(change: &Change) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Numbered {
        #[serde(rename = "_lsn")]
        lsn: Option<u64>,
        metadata: Option<Metadata>,
    }
    #[derive(serde::Deserialize)]
    struct Metadata {
        lsn: Option<u64>,
    }
    let numbered: Numbered = serde_json::from_str(change.json()).ok()?;
    numbered
        .lsn
        .or_else(|| numbered.metadata.and_then(|m| m.lsn))
}

fn feed_error(error: ClientError) -> FeedError {
    match error {
        ClientError::NotFound { .. } => FeedError::ContainerNotFound(error.to_string()),
        ClientError::Throttled { retry_after, .. } => FeedError::Throttled { retry_after },
        ClientError::Status { status: 400, .. } => FeedError::InvalidPosition(error.to_string()),
        other => FeedError::Source(other.to_string()),
    }
}

impl ChangeFeed for RemoteFeed {
    fn lease_scope(&self) -> BoxFuture<'_, Result<String, FeedError>> {
        Box::pin(async move {
            let (database_rid, container_rid) = self
                .client
                .container_rids(&self.database, &self.container)
                .await
                .map_err(feed_error)?;
            Ok(format!(
                "{}_{database_rid}_{container_rid}",
                self.account_host()
            ))
        })
    }

    fn partition_key_paths(&self) -> BoxFuture<'_, Result<Vec<String>, FeedError>> {
        Box::pin(async move {
            let definition = self
                .client
                .read_container(&self.database, &self.container)
                .await
                .map_err(feed_error)?;
            let paths = definition
                .get("partitionKey")
                .and_then(|key| key.get("paths"))
                .and_then(Value::as_array)
                .map(|paths| {
                    paths
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                })
                .filter(|paths| !paths.is_empty())
                .ok_or_else(|| {
                    FeedError::Source(
                        "the container definition names no partition key paths".into(),
                    )
                })?;
            Ok(paths)
        })
    }

    fn ranges(&self) -> BoxFuture<'_, Result<Vec<PhysicalRange>, FeedError>> {
        Box::pin(async move {
            let ranges = self
                .client
                .partition_key_ranges(&self.database, &self.container)
                .await
                .map_err(feed_error)?;
            Ok(ranges
                .into_iter()
                .map(|r| PhysicalRange {
                    id: r.id,
                    span: EpkSpan::new(r.min, r.max),
                    parents: r.parents,
                })
                .collect())
        })
    }

    fn read(&self, read: FeedRead) -> BoxFuture<'_, Result<FeedReadOutcome, FeedError>> {
        Box::pin(async move {
            let request = self.change_feed_request(&read);
            match self
                .client
                .change_feed(&self.database, &self.container, &request)
                .await
            {
                Ok(page) => {
                    let changes: Vec<Change> = page
                        .changes
                        .into_iter()
                        .map(|raw| Change::from_json(String::from(Box::<str>::from(raw))))
                        .collect();
                    let (changes, n_filtered) = match (&read.filter, page.n_filtered) {
                        // The server filtered (it reports how many it left out).
                        (Some(_), Some(n_filtered)) => (changes, n_filtered),
                        // Azure Cosmos DB, or a server that does not know the filter header.
                        (Some(filter), None) => filter.apply(changes, read.mode),
                        (None, _) => (changes, 0),
                    };
                    Ok(FeedReadOutcome::Page(FeedPage {
                        continuation: page.etag,
                        changes,
                        n_filtered,
                    }))
                }
                Err(error) if error.is_split() => Ok(FeedReadOutcome::Gone),
                Err(error) => Err(feed_error(error)),
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
        if self.long_poll {
            Box::pin(count_by_reading(
                self,
                range,
                span,
                position,
                mode,
                PENDING_PAGE_ITEMS,
            ))
        } else {
            Box::pin(self.estimate_pending(range, span, position, mode))
        }
    }

    fn waits_for_changes(&self) -> bool {
        self.long_poll
    }
}

/// A lease container over the REST API (partitioned by `/id`).
#[derive(Clone)]
pub struct RemoteLeaseContainer {
    client: CosmosClient,
    database: String,
    container: String,
    /// The server is a Tributary server: lease writes can carry attached writes.
    attached_writes: bool,
}

impl RemoteLeaseContainer {
    /// The lease container `database`/`container`, created (partition key `/id`, and the
    /// database) if missing.
    ///
    /// # Errors
    /// The server refused or could not be reached.
    pub async fn open(
        client: CosmosClient,
        database: &str,
        container: &str,
    ) -> Result<Self, LeaseStoreError> {
        client
            .create_database_if_not_exists(database)
            .await
            .map_err(store_error)?;
        client
            .create_container_if_not_exists(database, container, "/id")
            .await
            .map_err(store_error)?;
        Ok(RemoteLeaseContainer {
            client,
            database: database.to_owned(),
            container: container.to_owned(),
            attached_writes: false,
        })
    }

    /// Commits [`AttachedWrite`]s with a lease write in one transaction, through Tributary's
    /// cross-container transaction extension: only for a `tributary serve` (Azure Cosmos DB
    /// does not have it).
    pub fn with_attached_writes(mut self) -> Self {
        self.attached_writes = true;
        self
    }
}

fn store_error(error: ClientError) -> LeaseStoreError {
    LeaseStoreError::Unavailable(error.to_string())
}

fn document_error(id: &str, error: ClientError) -> LeaseStoreError {
    match error {
        ClientError::Conflict { .. } => LeaseStoreError::Conflict(id.to_owned()),
        ClientError::PreconditionFailed { .. } => {
            LeaseStoreError::PreconditionFailed(id.to_owned())
        }
        ClientError::NotFound { .. } => LeaseStoreError::NotFound(id.to_owned()),
        other => store_error(other),
    }
}

fn stored(body: Value, etag: String) -> StoredDocument {
    StoredDocument { body, etag }
}

impl LeaseContainer for RemoteLeaseContainer {
    fn supports_attached_writes(&self) -> bool {
        self.attached_writes
    }

    /// One request with Tributary's transaction extension: the lease replace conditional on
    /// `etag`, then an upsert per write. A transaction the server refuses as too large (400,
    /// 413) is [`LeaseStoreError::Unsupported`], so the caller can write one at a time.
    fn replace_with_writes(
        &self,
        body: Value,
        etag: &str,
        writes: Vec<AttachedWrite>,
    ) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
        let etag = etag.to_owned();
        Box::pin(async move {
            if !self.attached_writes {
                return Err(LeaseStoreError::Unsupported(
                    "this lease container cannot commit other writes with a lease".into(),
                ));
            }
            let id = document_id(&body)?;
            let mut targets = Vec::with_capacity(writes.len());
            let mut operations = Vec::with_capacity(writes.len() + 1);
            operations.push(json!({
                "operationType": "Replace", "id": id, "partitionKey": [id],
                "ifMatch": etag, "resourceBody": body,
            }));
            for write in writes {
                operations.push(json!({
                    "operationType": "Upsert", "database": write.database,
                    "container": write.container, "resourceBody": write.document,
                }));
                targets.push((write.database, write.container));
            }
            let (committed, results) = match self
                .client
                .transaction(&self.database, &self.container, &operations)
                .await
            {
                Ok(reply) => reply,
                Err(ClientError::Status {
                    status: 400 | 413,
                    message,
                    ..
                }) => {
                    return Err(LeaseStoreError::Unsupported(format!(
                        "the server refused the writes with the lease: {message}"
                    )));
                }
                Err(error) => return Err(store_error(error)),
            };
            let status = |result: &Value| result.get("statusCode").and_then(Value::as_u64);
            if committed {
                let lease = results.first().ok_or_else(|| {
                    LeaseStoreError::Unavailable("the transaction answered no results".into())
                })?;
                let body = lease.get("resourceBody").cloned().unwrap_or(Value::Null);
                let etag = lease
                    .get("eTag")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                return Ok(stored(body, etag));
            }
            let failed = results
                .iter()
                .enumerate()
                .find(|(_, result)| status(result).is_some_and(|code| code >= 400 && code != 424));
            let message = |result: &Value| {
                result
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Err(match failed {
                Some((0, result)) => match status(result) {
                    Some(412) => LeaseStoreError::PreconditionFailed(id),
                    Some(404) => LeaseStoreError::NotFound(id),
                    _ => LeaseStoreError::Unavailable(message(result)),
                },
                Some((index, result)) => {
                    let (database, container) = targets[index - 1].clone();
                    LeaseStoreError::AttachedWriteFailed {
                        database,
                        container,
                        reason: message(result),
                    }
                }
                None => LeaseStoreError::Unavailable(
                    "the transaction was not committed and no operation says why".into(),
                ),
            })
        })
    }

    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<StoredDocument>, LeaseStoreError>> {
        let prefix = prefix.to_owned();
        Box::pin(async move {
            let documents = self
                .client
                .query_documents(
                    &self.database,
                    &self.container,
                    "SELECT * FROM c WHERE STARTSWITH(c.id, @prefix)",
                    &[("@prefix", json!(prefix))],
                )
                .await
                .map_err(store_error)?;
            Ok(documents
                .into_iter()
                .map(|body| {
                    let etag = body
                        .get("_etag")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    stored(body, etag)
                })
                .collect())
        })
    }

    fn read(&self, id: &str) -> BoxFuture<'_, Result<Option<StoredDocument>, LeaseStoreError>> {
        let id = id.to_owned();
        Box::pin(async move {
            let found = self
                .client
                .read_document(&self.database, &self.container, &json!(id), &id)
                .await
                .map_err(|e| document_error(&id, e))?;
            Ok(found.map(|doc| stored(doc.body, doc.etag)))
        })
    }

    fn create(&self, body: Value) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
        Box::pin(async move {
            let id = document_id(&body)?;
            let doc = self
                .client
                .create_document(&self.database, &self.container, &json!(id), &body)
                .await
                .map_err(|e| document_error(&id, e))?;
            Ok(stored(doc.body, doc.etag))
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
            let doc = self
                .client
                .replace_document(
                    &self.database,
                    &self.container,
                    &json!(id),
                    &id,
                    &body,
                    Some(&etag),
                )
                .await
                .map_err(|e| document_error(&id, e))?;
            Ok(stored(doc.body, doc.etag))
        })
    }

    fn delete(&self, id: &str, etag: Option<&str>) -> BoxFuture<'_, Result<(), LeaseStoreError>> {
        let id = id.to_owned();
        let etag = etag.map(str::to_owned);
        Box::pin(async move {
            self.client
                .delete_document(
                    &self.database,
                    &self.container,
                    &json!(id),
                    &id,
                    etag.as_deref(),
                )
                .await
                .map_err(|e| document_error(&id, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_token_lsn_is_the_global_lsn() {
        for (header, lsn) in [
            ("0:-1#12", Some(12)),
            ("3:2#40#1=38#2=39", Some(40)),
            (" 0:-1#7 , 1:-1#9", Some(7)),
            ("0:12", Some(12)),
            ("0:-1#", None),
            ("0:-1#x", None),
            ("12", None),
            ("", None),
        ] {
            assert_eq!(session_token_lsn(header), lsn, "{header:?}");
        }
    }

    #[test]
    fn a_change_s_lsn_is_read_in_both_modes() {
        let latest = Change::from_json(r#"{"id": "a", "_lsn": 42, "_ts": 1}"#.into());
        assert_eq!(change_lsn(&latest), Some(42));
        let all_versions = Change::from_json(
            r#"{"current": {"id": "a"}, "metadata": {"lsn": 43, "operationType": "create"}}"#
                .into(),
        );
        assert_eq!(change_lsn(&all_versions), Some(43));
        assert_eq!(change_lsn(&Change::from_json("{}".into())), None);
    }
}
