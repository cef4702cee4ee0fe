//! Where lease documents live: a small document interface with `_etag` conditions, and an
//! in-memory implementation for tests and single-process use.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::Value;

use crate::clock::BoxFuture;
use crate::error::LeaseStoreError;

/// A stored document and its `_etag`.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDocument {
    /// The document.
    pub body: Value,
    /// Its `_etag`, as the container gives it.
    pub etag: String,
}

/// An upsert of one document, committed together with a lease write
/// ([`LeaseContainer::replace_with_writes`]): how a handler's outputs are stored exactly when
/// its checkpoint is.
#[derive(Clone, Debug, PartialEq)]
pub struct AttachedWrite {
    /// The database of the target container.
    pub database: String,
    /// The target container; the document carries its own `id` and partition key.
    pub container: String,
    /// The document to create or replace.
    pub document: Value,
}

/// A container of lease documents, partitioned by `/id`.
pub trait LeaseContainer: Send + Sync + 'static {
    /// Every document whose id starts with `prefix`.
    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<StoredDocument>, LeaseStoreError>>;

    /// One document, or `None`.
    fn read(&self, id: &str) -> BoxFuture<'_, Result<Option<StoredDocument>, LeaseStoreError>>;

    /// Creates a document; [`LeaseStoreError::Conflict`] if the id exists.
    fn create(&self, body: Value) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>>;

    /// Replaces a document if its `_etag` is still `etag`
    /// ([`LeaseStoreError::PreconditionFailed`] otherwise, [`LeaseStoreError::NotFound`] if
    /// it is gone).
    fn replace(
        &self,
        body: Value,
        etag: &str,
    ) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>>;

    /// Deletes a document, if `etag` is given only while its `_etag` is still that.
    fn delete(&self, id: &str, etag: Option<&str>) -> BoxFuture<'_, Result<(), LeaseStoreError>>;

    /// Whether [`LeaseContainer::replace_with_writes`] works here, so callers can decide
    /// before they rely on it. Provided: `false`.
    fn supports_attached_writes(&self) -> bool {
        false
    }

    /// Like [`LeaseContainer::replace`], but commits the upserts in `writes` in the same
    /// atomic transaction: all of them and the lease, or none.
    ///
    /// Provided: refuses with [`LeaseStoreError::Unsupported`], writing nothing. Only a
    /// container that shares a transactional store with the writes' containers can do it
    /// (the embedded store's).
    ///
    /// # Errors
    /// As [`LeaseContainer::replace`] for the lease; [`LeaseStoreError::AttachedWriteFailed`]
    /// if a write is refused; [`LeaseStoreError::Unsupported`] if the container cannot
    /// commit these writes with a lease. In each case nothing was written.
    fn replace_with_writes(
        &self,
        body: Value,
        etag: &str,
        writes: Vec<AttachedWrite>,
    ) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
        let _ = (body, etag, writes);
        Box::pin(async {
            Err(LeaseStoreError::Unsupported(
                "this lease container cannot commit other writes with a lease".into(),
            ))
        })
    }
}

/// Lease documents in this process's memory: for tests, and for a single process that does
/// not need its position to survive a restart (export the leases to keep it).
#[derive(Debug, Default)]
pub struct MemoryLeaseContainer {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    documents: BTreeMap<String, StoredDocument>,
    n_writes: u64,
}

impl MemoryLeaseContainer {
    /// An empty container.
    pub fn new() -> Self {
        MemoryLeaseContainer::default()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut MemoryState) -> T) -> T {
        // A panic while holding the lock leaves only whole documents behind.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }
}

impl MemoryState {
    fn stamp(&mut self, mut body: Value) -> StoredDocument {
        self.n_writes += 1;
        let etag = format!("\"m{}\"", self.n_writes);
        if let Some(object) = body.as_object_mut() {
            object.insert("_etag".into(), Value::String(etag.clone()));
        }
        StoredDocument { body, etag }
    }
}

/// The `id` of a lease document.
pub(crate) fn document_id(body: &Value) -> Result<String, LeaseStoreError> {
    body.get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| LeaseStoreError::Malformed {
            id: String::new(),
            reason: "a lease document needs a string 'id'".into(),
        })
}

impl LeaseContainer for MemoryLeaseContainer {
    fn list(&self, prefix: &str) -> BoxFuture<'_, Result<Vec<StoredDocument>, LeaseStoreError>> {
        let found = self.with_state(|state| {
            state
                .documents
                .range(prefix.to_owned()..)
                .take_while(|(id, _)| id.starts_with(prefix))
                .map(|(_, doc)| doc.clone())
                .collect()
        });
        Box::pin(async move { Ok(found) })
    }

    fn read(&self, id: &str) -> BoxFuture<'_, Result<Option<StoredDocument>, LeaseStoreError>> {
        let found = self.with_state(|state| state.documents.get(id).cloned());
        Box::pin(async move { Ok(found) })
    }

    fn create(&self, body: Value) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
        let result = document_id(&body).and_then(|id| {
            self.with_state(|state| {
                if state.documents.contains_key(&id) {
                    return Err(LeaseStoreError::Conflict(id));
                }
                let stored = state.stamp(body);
                state.documents.insert(id, stored.clone());
                Ok(stored)
            })
        });
        Box::pin(async move { result })
    }

    fn replace(
        &self,
        body: Value,
        etag: &str,
    ) -> BoxFuture<'_, Result<StoredDocument, LeaseStoreError>> {
        let result = document_id(&body).and_then(|id| {
            self.with_state(|state| match state.documents.get(&id) {
                None => Err(LeaseStoreError::NotFound(id)),
                Some(current) if current.etag != etag => {
                    Err(LeaseStoreError::PreconditionFailed(id))
                }
                Some(_) => {
                    let stored = state.stamp(body);
                    state.documents.insert(id, stored.clone());
                    Ok(stored)
                }
            })
        });
        Box::pin(async move { result })
    }

    fn delete(&self, id: &str, etag: Option<&str>) -> BoxFuture<'_, Result<(), LeaseStoreError>> {
        let result = self.with_state(|state| match state.documents.get(id) {
            None => Err(LeaseStoreError::NotFound(id.to_owned())),
            Some(current) if etag.is_some_and(|etag| etag != current.etag) => {
                Err(LeaseStoreError::PreconditionFailed(id.to_owned()))
            }
            Some(_) => {
                state.documents.remove(id);
                Ok(())
            }
        });
        Box::pin(async move { result })
    }
}
