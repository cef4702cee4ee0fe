//! Typed lease operations over a [`LeaseContainer`]: one processor's leases (by id prefix),
//! the bookkeeping documents, conditional writes, the operator's reset and release, and
//! export / import.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::clock::Clock;
use crate::error::{LeaseStoreError, ProcessorError};
use crate::feed::StartFrom;
use crate::lease::{
    HANDOFF_PROPERTY, INFO_SUFFIX, LEASE_TOKEN_SEPARATOR, LOCK_SUFFIX, Lease, START_PROPERTY,
    continuation_lsn, start_property,
};
use crate::lease_container::{AttachedWrite, LeaseContainer};
use crate::worker::{FAILURES_PROPERTY, LAST_ERROR_PROPERTY};

/// Most attempts of one conditional update before giving up (each failed attempt means
/// another writer changed the lease in between); for the processor's own updates and for
/// [`LeaseStore::update`].
const MAX_UPDATE_ATTEMPTS: usize = 8;

/// The id prefix of one processor's leases on one monitored container: `{processor
/// name}{lease scope}..` (as .NET: the scope is `{account host}_{database rid}_{container
/// rid}`).
pub fn lease_prefix(processor_name: &str, lease_scope: &str) -> String {
    format!("{processor_name}{lease_scope}{LEASE_TOKEN_SEPARATOR}")
}

/// One processor's leases in a lease container.
#[derive(Clone)]
pub struct LeaseStore {
    container: Arc<dyn LeaseContainer>,
    prefix: String,
    clock: Arc<dyn Clock>,
}

/// What a conditional update of an owned lease did.
#[derive(Debug)]
pub(crate) enum OwnedUpdate {
    /// Written; the lease is as stored now.
    Written,
    /// Another host owns the lease now, or it was deleted or reset: stop working on it.
    Lost,
}

impl LeaseStore {
    /// The leases under `prefix` (see [`lease_prefix`]) in `container`.
    pub fn new(container: Arc<dyn LeaseContainer>, prefix: String, clock: Arc<dyn Clock>) -> Self {
        LeaseStore {
            container,
            prefix,
            clock,
        }
    }

    /// The id prefix of the leases (ending in `..`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The prefix without the separator: the bookkeeping documents are `{base}.info` and
    /// `{base}.lock` (as .NET names them).
    fn base(&self) -> &str {
        self.prefix
            .strip_suffix(LEASE_TOKEN_SEPARATOR)
            .unwrap_or(&self.prefix)
    }

    /// Every lease (the bookkeeping documents excluded).
    ///
    /// # Errors
    /// The container failed, or a document under the prefix is not a lease.
    pub async fn list(&self) -> Result<Vec<Lease>, LeaseStoreError> {
        let documents = self.container.list(&self.prefix).await?;
        documents
            .iter()
            .map(|doc| Lease::from_document(&doc.body, &doc.etag))
            .collect()
    }

    /// One lease by id.
    ///
    /// # Errors
    /// As [`LeaseStore::list`].
    pub async fn read(&self, id: &str) -> Result<Option<Lease>, LeaseStoreError> {
        match self.container.read(id).await? {
            Some(doc) => Ok(Some(Lease::from_document(&doc.body, &doc.etag)?)),
            None => Ok(None),
        }
    }

    /// Creates a lease unless one with its id exists (`None` then).
    ///
    /// # Errors
    /// The container failed.
    pub async fn create(&self, lease: &Lease) -> Result<Option<Lease>, LeaseStoreError> {
        match self
            .container
            .create(lease.to_document(self.clock.wall_ms()))
            .await
        {
            Ok(doc) => Ok(Some(Lease::from_document(&doc.body, &doc.etag)?)),
            Err(LeaseStoreError::Conflict(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Writes `lease` if the stored lease still has `lease.etag`; returns the stored state.
    ///
    /// # Errors
    /// [`LeaseStoreError::PreconditionFailed`], [`LeaseStoreError::NotFound`], or the
    /// container failed.
    pub async fn write(&self, lease: &Lease) -> Result<Lease, LeaseStoreError> {
        self.write_with(lease, None).await
    }

    /// [`LeaseStore::write`], committing `writes` in the same transaction if given
    /// ([`LeaseContainer::replace_with_writes`]; even an empty list goes through it).
    async fn write_with(
        &self,
        lease: &Lease,
        writes: Option<&[AttachedWrite]>,
    ) -> Result<Lease, LeaseStoreError> {
        let body = lease.to_document(self.clock.wall_ms());
        let doc = match writes {
            None => self.container.replace(body, &lease.etag).await?,
            Some(writes) => {
                self.container
                    .replace_with_writes(body, &lease.etag, writes.to_vec())
                    .await?
            }
        };
        Lease::from_document(&doc.body, &doc.etag)
    }

    /// Deletes a lease if it is unchanged since read.
    ///
    /// # Errors
    /// As [`LeaseStore::write`].
    pub async fn delete(&self, lease: &Lease) -> Result<(), LeaseStoreError> {
        self.container.delete(&lease.id, Some(&lease.etag)).await
    }

    /// Applies `change` to `lease` and writes it, conditional on the lease's `_etag`; on a
    /// conflict (another writer changed it in between), re-reads the lease and applies
    /// `change` to the fresh state, up to a bounded number of attempts. Returns the stored
    /// lease, or `None` if the lease was deleted (by a split, or another operator).
    ///
    /// For operator tools: it does not check who owns the lease. A write changes the etag,
    /// so a host working on the lease fails its next conditional write and re-reads it.
    ///
    /// # Errors
    /// [`LeaseStoreError::Unavailable`] if the lease kept changing for every attempt; the
    /// container failed; the stored document is not a lease.
    pub async fn update(
        &self,
        lease: &Lease,
        change: impl Fn(&mut Lease),
    ) -> Result<Option<Lease>, LeaseStoreError> {
        let mut current = lease.clone();
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let mut next = current.clone();
            change(&mut next);
            match self.write(&next).await {
                Ok(stored) => return Ok(Some(stored)),
                Err(LeaseStoreError::PreconditionFailed(_)) => {
                    match self.read(&current.id).await? {
                        Some(fresh) => current = fresh,
                        None => return Ok(None),
                    }
                }
                Err(LeaseStoreError::NotFound(_)) => return Ok(None),
                Err(error) => return Err(error),
            }
        }
        Err(LeaseStoreError::Unavailable(format!(
            "lease '{}' kept changing: {MAX_UPDATE_ATTEMPTS} conditional writes failed; try again",
            current.id
        )))
    }

    /// Applies `change` to every lease with [`LeaseStore::update`]; returns how many were
    /// written (leases deleted in between are skipped).
    async fn update_all(&self, change: impl Fn(&mut Lease)) -> Result<usize, LeaseStoreError> {
        let mut n_written = 0;
        for lease in self.list().await? {
            if self.update(&lease, &change).await?.is_some() {
                n_written += 1;
            }
        }
        Ok(n_written)
    }

    /// Moves every lease back to `start`: clears its continuation, owner, hand-off request
    /// and failure record, and records `start` in its [`START_PROPERTY`] so the host that
    /// takes it starts there. Returns how many leases were reset.
    ///
    /// Running hosts notice at their next checkpoint or renewal (the etag changed and the
    /// owner is cleared) and stop working on the lease; a batch in a handler then is
    /// delivered again.
    ///
    /// # Errors
    /// As [`LeaseStore::update`].
    pub async fn reset(&self, start: StartFrom) -> Result<usize, LeaseStoreError> {
        let start = start_property(start);
        self.update_all(|lease| {
            lease.continuation = None;
            lease.owner = None;
            lease.properties.remove(HANDOFF_PROPERTY);
            lease.properties.remove(FAILURES_PROPERTY);
            lease.properties.remove(LAST_ERROR_PROPERTY);
            lease
                .properties
                .insert(START_PROPERTY.into(), start.clone());
        })
        .await
    }

    /// Frees every lease (clears its owner and hand-off request; its position is kept), so
    /// hosts take them at their next balancing round instead of waiting for them to expire.
    /// Returns how many leases were released.
    ///
    /// # Errors
    /// As [`LeaseStore::update`].
    pub async fn release_all(&self) -> Result<usize, LeaseStoreError> {
        self.update_all(|lease| {
            lease.owner = None;
            lease.properties.remove(HANDOFF_PROPERTY);
        })
        .await
    }

    /// Applies `change` to a lease this host owns and writes it; on a conflict, re-reads
    /// and applies it again while the host still owns the lease. A checkpoint never moves
    /// backward: if the stored continuation is ahead of the one `change` sets, the lease was
    /// processed elsewhere and is reported lost.
    pub(crate) async fn update_owned(
        &self,
        current: &mut Lease,
        instance: &str,
        change: impl Fn(&mut Lease),
    ) -> Result<OwnedUpdate, LeaseStoreError> {
        self.update_owned_with_writes(current, instance, change, None)
            .await
    }

    /// [`LeaseStore::update_owned`], where every write attempt commits `writes` (if given)
    /// in the same transaction as the lease: they are written exactly when the lease is, so
    /// never when it was lost.
    pub(crate) async fn update_owned_with_writes(
        &self,
        current: &mut Lease,
        instance: &str,
        change: impl Fn(&mut Lease),
        writes: Option<&[AttachedWrite]>,
    ) -> Result<OwnedUpdate, LeaseStoreError> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            if !current.is_owned_by(instance) {
                return Ok(OwnedUpdate::Lost);
            }
            let mut next = current.clone();
            change(&mut next);
            if let (Some(old), Some(new)) = (
                current.continuation.as_deref().and_then(continuation_lsn),
                next.continuation.as_deref().and_then(continuation_lsn),
            ) && new < old
            {
                return Ok(OwnedUpdate::Lost);
            }
            match self.write_with(&next, writes).await {
                Ok(stored) => {
                    if let (Some(old), Some(new)) = (
                        current.continuation.as_deref().and_then(continuation_lsn),
                        stored.continuation.as_deref().and_then(continuation_lsn),
                    ) {
                        assert!(new >= old, "a checkpoint moved backward: {old} -> {new}");
                    }
                    *current = stored;
                    return Ok(OwnedUpdate::Written);
                }
                Err(LeaseStoreError::PreconditionFailed(_)) => {
                    match self.read(&current.id).await? {
                        Some(fresh) => *current = fresh,
                        None => return Ok(OwnedUpdate::Lost),
                    }
                }
                Err(LeaseStoreError::NotFound(_)) => return Ok(OwnedUpdate::Lost),
                Err(error) => return Err(error),
            }
        }
        Err(LeaseStoreError::Unavailable(format!(
            "lease '{}' kept changing: {MAX_UPDATE_ATTEMPTS} conditional writes failed",
            current.id
        )))
    }

    /// Whether the leases were created (the `.info` document exists).
    pub(crate) async fn is_initialized(&self) -> Result<bool, LeaseStoreError> {
        Ok(self
            .container
            .read(&format!("{}{INFO_SUFFIX}", self.base()))
            .await?
            .is_some())
    }

    /// Marks the leases as created.
    pub(crate) async fn mark_initialized(&self) -> Result<(), LeaseStoreError> {
        let doc = json!({"id": format!("{}{INFO_SUFFIX}", self.base())});
        match self.container.create(doc).await {
            Ok(_) | Err(LeaseStoreError::Conflict(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Takes the creation lock; `None` if another host holds it (its document and etag).
    pub(crate) async fn lock(
        &self,
        instance: &str,
    ) -> Result<Result<(), (String, String)>, LeaseStoreError> {
        let id = format!("{}{LOCK_SUFFIX}", self.base());
        let doc = json!({"id": id, "Owner": instance});
        match self.container.create(doc).await {
            Ok(_) => Ok(Ok(())),
            Err(LeaseStoreError::Conflict(_)) => match self.container.read(&id).await? {
                Some(held) => Ok(Err((id, held.etag))),
                // Released in between: the caller tries again next round.
                None => Ok(Err((id, String::new()))),
            },
            Err(error) => Err(error),
        }
    }

    /// Releases the creation lock, or breaks another host's lock that has not changed
    /// since it was seen with `etag`.
    pub(crate) async fn unlock(&self, etag: Option<&str>) -> Result<(), LeaseStoreError> {
        let id = format!("{}{LOCK_SUFFIX}", self.base());
        match self.container.delete(&id, etag).await {
            Ok(()) | Err(LeaseStoreError::NotFound(_)) => Ok(()),
            Err(LeaseStoreError::PreconditionFailed(_)) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Every document of this processor (leases and bookkeeping), as a JSON array without
    /// system properties: a backup, or a way to move a processor to another lease container.
    ///
    /// # Errors
    /// The container failed.
    pub async fn export(&self) -> Result<Value, ProcessorError> {
        let documents = self.container.list(self.base()).await?;
        let bodies = documents
            .into_iter()
            .map(|doc| {
                let mut body = doc.body;
                if let Some(object) = body.as_object_mut() {
                    object.retain(|key, _| !key.starts_with('_'));
                }
                body
            })
            .collect();
        Ok(Value::Array(bodies))
    }

    /// Writes an export back: each document is created, or replaces the one with its id.
    /// Every document must belong to this processor (its id starts with the prefix).
    ///
    /// # Errors
    /// [`ProcessorError::InvalidExport`] for anything else; the container failed.
    pub async fn import(&self, export: &Value) -> Result<usize, ProcessorError> {
        let documents = export.as_array().ok_or_else(|| {
            ProcessorError::InvalidExport("expected a JSON array of lease documents".into())
        })?;
        for doc in documents {
            let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
            let bookkeeping = [INFO_SUFFIX, LOCK_SUFFIX]
                .iter()
                .any(|suffix| id.strip_suffix(suffix) == Some(self.base()));
            if bookkeeping {
                continue;
            }
            if !id.starts_with(&self.prefix) {
                return Err(ProcessorError::InvalidExport(format!(
                    "document '{id}' is not a lease of this processor (ids start with '{}')",
                    self.prefix
                )));
            }
            Lease::from_document(doc, "")?;
        }
        for doc in documents {
            let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
            if id == format!("{}{LOCK_SUFFIX}", self.base()) {
                continue;
            }
            match self.container.create(doc.clone()).await {
                Ok(_) => {}
                Err(LeaseStoreError::Conflict(_)) => {
                    let stored = self
                        .container
                        .read(id)
                        .await?
                        .ok_or_else(|| LeaseStoreError::NotFound(id.to_owned()))?;
                    self.container.replace(doc.clone(), &stored.etag).await?;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(documents.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::clock::BoxFuture;
    use crate::clock::SystemClock;
    use crate::feed::{EpkSpan, FeedMode};
    use crate::lease::start_of;
    use crate::lease_container::{MemoryLeaseContainer, StoredDocument};

    const PREFIX: &str = "p..";

    fn store_over(container: Arc<dyn LeaseContainer>) -> LeaseStore {
        LeaseStore::new(container, PREFIX.into(), Arc::new(SystemClock::new()))
    }

    async fn created(store: &LeaseStore, min: &str, max: &str) -> Lease {
        let lease = Lease::new_epk(PREFIX, EpkSpan::new(min, max), FeedMode::LatestVersion);
        store.create(&lease).await.unwrap().expect("a new lease id")
    }

    #[tokio::test]
    async fn update_applies_the_change_again_over_a_concurrent_write() {
        let store = store_over(Arc::new(MemoryLeaseContainer::new()));
        let stale = created(&store, "", "FF").await;
        // A host checkpoints between the operator's read and write.
        let mut host_write = stale.clone();
        host_write.owner = Some("host-a".into());
        host_write.continuation = Some("\"42\"".into());
        let host_written = store.write(&host_write).await.unwrap();

        let n_calls = std::sync::atomic::AtomicUsize::new(0);
        let updated = store
            .update(&stale, |lease| {
                n_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                lease.owner = None;
            })
            .await
            .unwrap()
            .expect("the lease exists");

        assert_eq!(
            n_calls.into_inner(),
            2,
            "applied to the stale, then the fresh state"
        );
        assert_eq!(updated.owner, None);
        assert_eq!(
            updated.continuation.as_deref(),
            Some("\"42\""),
            "the concurrent checkpoint is kept"
        );
        assert_ne!(updated.etag, host_written.etag);
        assert_eq!(store.read(&stale.id).await.unwrap(), Some(updated));
    }

    #[tokio::test]
    async fn update_of_a_deleted_lease_is_none() {
        let store = store_over(Arc::new(MemoryLeaseContainer::new()));
        let lease = created(&store, "", "FF").await;
        // Changed, then deleted (a split), before the operator writes.
        let changed = store.write(&lease).await.unwrap();
        store.delete(&changed).await.unwrap();
        assert_eq!(
            store.update(&lease, |l| l.owner = None).await.unwrap(),
            None
        );
        assert_eq!(
            store.update(&changed, |l| l.owner = None).await.unwrap(),
            None
        );
    }

    /// A container whose every replace loses to another writer.
    struct AlwaysChanging(MemoryLeaseContainer);

    impl LeaseContainer for AlwaysChanging {
        fn list(
            &self,
            prefix: &str,
        ) -> BoxFuture<'_, Result<Vec<StoredDocument>, LeaseStoreError>> {
            self.0.list(prefix)
        }
        fn read(&self, id: &str) -> BoxFuture<'_, Result<Option<StoredDocument>, LeaseStoreError>> {
            self.0.read(id)
        }
        fn create(&self, body: Value) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
            self.0.create(body)
        }
        fn replace(
            &self,
            body: Value,
            _etag: &str,
        ) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
            let id = body["id"].as_str().unwrap_or_default().to_owned();
            Box::pin(async move { Err(LeaseStoreError::PreconditionFailed(id)) })
        }
        fn delete(
            &self,
            id: &str,
            etag: Option<&str>,
        ) -> BoxFuture<'_, Result<(), LeaseStoreError>> {
            self.0.delete(id, etag)
        }
    }

    #[tokio::test]
    async fn update_gives_up_after_a_bounded_number_of_conflicts() {
        let store = store_over(Arc::new(AlwaysChanging(MemoryLeaseContainer::new())));
        let lease = created(&store, "", "FF").await;
        let n_calls = std::sync::atomic::AtomicUsize::new(0);
        let error = store
            .update(&lease, |_| {
                n_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
            .await
            .unwrap_err();
        assert!(matches!(error, LeaseStoreError::Unavailable(_)), "{error}");
        assert!(error.to_string().contains("kept changing"), "{error}");
        assert_eq!(n_calls.into_inner(), MAX_UPDATE_ATTEMPTS);
    }

    #[tokio::test]
    async fn reset_and_release_rewrite_every_lease() {
        let store = store_over(Arc::new(MemoryLeaseContainer::new()));
        for (min, max) in [("", "7F"), ("7F", "FF")] {
            let mut lease = created(&store, min, max).await;
            lease.owner = Some("host-a".into());
            lease.continuation = Some("\"9\"".into());
            lease
                .properties
                .insert(FAILURES_PROPERTY.into(), "12".into());
            lease
                .properties
                .insert(HANDOFF_PROPERTY.into(), "host-b".into());
            store.write(&lease).await.unwrap();
        }

        assert_eq!(store.release_all().await.unwrap(), 2);
        for lease in store.list().await.unwrap() {
            assert!(lease.is_free());
            assert_eq!(lease.handoff_to(), None);
            assert_eq!(
                lease.continuation.as_deref(),
                Some("\"9\""),
                "position kept"
            );
        }

        let at = UNIX_EPOCH + Duration::from_millis(946_684_800_000);
        assert_eq!(store.reset(StartFrom::Time(at)).await.unwrap(), 2);
        for lease in store.list().await.unwrap() {
            assert!(lease.is_free());
            assert_eq!(lease.continuation, None);
            assert!(!lease.properties.contains_key(FAILURES_PROPERTY));
            assert_eq!(
                lease.properties.get(START_PROPERTY).map(String::as_str),
                Some("time:946684800000")
            );
            assert_eq!(start_of(&lease, StartFrom::Now), StartFrom::Time(at));
        }
    }
}
