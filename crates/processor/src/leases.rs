//! Typed lease operations over a [`LeaseContainer`]: one processor's leases (by id prefix),
//! the bookkeeping documents, conditional writes, and export / import.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::clock::Clock;
use crate::error::{LeaseStoreError, ProcessorError};
use crate::lease::{INFO_SUFFIX, LEASE_TOKEN_SEPARATOR, LOCK_SUFFIX, Lease, continuation_lsn};
use crate::lease_container::LeaseContainer;

/// Most attempts of one conditional update before giving up for this round (each failed
/// attempt means another writer changed the lease in between).
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
        let doc = self
            .container
            .replace(lease.to_document(self.clock.wall_ms()), &lease.etag)
            .await?;
        Lease::from_document(&doc.body, &doc.etag)
    }

    /// Deletes a lease if it is unchanged since read.
    ///
    /// # Errors
    /// As [`LeaseStore::write`].
    pub async fn delete(&self, lease: &Lease) -> Result<(), LeaseStoreError> {
        self.container.delete(&lease.id, Some(&lease.etag)).await
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
            match self.write(&next).await {
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
