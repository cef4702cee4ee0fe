//! What a server-side script reads and writes: one logical partition of one container as
//! committed, under an overlay of the script's own pending writes.
//!
//! Reads and queries see the pending writes; nothing reaches the store while the script
//! runs. Afterwards [`PartitionOverlay::commit_operations`] turns the run into one
//! transaction: each item written, in its final state, conditional on the `_etag` it had when
//! the script first read it (or on its absence, for a create), and each item read but not
//! written checked to still have the `_etag` it was read at. A concurrent write to any of
//! them fails the transaction, and the caller runs the script again.
//!
//! Not guarded: items a query did not return whole (projections), and items found absent and
//! left absent (a concurrent create of one is not noticed).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use tributary_partition_key::PartitionKey;
use tributary_query::Parameters;
use tributary_scripts::{DocumentContext, DocumentError, DocumentWrite};
use tributary_store::{
    ContainerProperties, CrossDatabaseOperation, FeedScope, ItemWrite, Precondition, Store,
    StoreError,
};

use crate::error::ApiError;
use crate::routes::query::container_query;

/// An item as the script left it, and as the store had it when first seen.
struct Touched {
    /// The `_etag` the store had for it (`None`: absent).
    committed_etag: Option<String>,
    /// Its state for the script: `Some` document (system properties included) or `None`
    /// (absent, or deleted by the script).
    current: Option<Value>,
    /// Whether the script wrote it.
    written: bool,
}

/// One partition of one container, with a script's pending writes over it.
pub(crate) struct PartitionOverlay {
    store: Arc<Store>,
    database: String,
    container: ContainerProperties,
    partition_key: PartitionKey,
    touched: BTreeMap<String, Touched>,
    /// Numbers the pending versions' `_etag`s.
    n_pending_writes: u64,
    now_s: u64,
}

/// An error as a script sees it: the status the REST API would answer, and its message.
fn document_error(error: impl Into<ApiError>) -> DocumentError {
    let error = error.into();
    DocumentError::new(error.status, error.message)
}

impl PartitionOverlay {
    pub(crate) fn new(
        store: Arc<Store>,
        database: &str,
        container: ContainerProperties,
        partition_key: PartitionKey,
    ) -> Self {
        let now_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        PartitionOverlay {
            store,
            database: database.to_owned(),
            container,
            partition_key,
            touched: BTreeMap::new(),
            n_pending_writes: 0,
            now_s,
        }
    }

    fn container_id(&self) -> &str {
        &self.container.definition.id
    }

    /// The transaction that commits the run: one operation per item written or read (see
    /// the module's essay); empty when the script wrote nothing.
    pub(crate) fn commit_operations(&self) -> Vec<CrossDatabaseOperation> {
        if !self.touched.values().any(|touched| touched.written) {
            return Vec::new();
        }
        let operation = |write: ItemWrite| CrossDatabaseOperation {
            database: self.database.clone(),
            container: self.container_id().to_owned(),
            write: write.with_partition_key(self.partition_key.clone()),
        };
        let mut operations = Vec::new();
        for (id, touched) in &self.touched {
            let if_match = |etag: &String| Precondition::IfMatch(etag.clone());
            let write = match (&touched.committed_etag, &touched.current, touched.written) {
                (Some(etag), _, false) => ItemWrite::read(self.partition_key.clone(), id)
                    .with_precondition(if_match(etag)),
                (None, _, false) | (None, None, true) => continue,
                (None, Some(document), true) => ItemWrite::create(document.clone()),
                (Some(etag), Some(document), true) => {
                    ItemWrite::replace(id, document.clone()).with_precondition(if_match(etag))
                }
                (Some(etag), None, true) => ItemWrite::delete(self.partition_key.clone(), id)
                    .with_precondition(if_match(etag)),
            };
            operations.push(operation(write));
        }
        operations
    }

    /// The item `id` as the script sees it, read from the store the first time.
    fn current(&mut self, id: &str) -> Result<Option<Value>, DocumentError> {
        if let Some(touched) = self.touched.get(id) {
            return Ok(touched.current.clone());
        }
        let committed =
            match self
                .store
                .read_item(&self.database, self.container_id(), &self.partition_key, id)
            {
                Ok(item) => Some(item),
                Err(StoreError::ItemNotFound(_)) => None,
                Err(error) => return Err(document_error(error)),
            };
        let touched = Touched {
            committed_etag: committed.as_ref().map(|item| item.etag.clone()),
            current: committed.map(|item| item.to_value()),
            written: false,
        };
        let current = touched.current.clone();
        self.touched.insert(id.to_owned(), touched);
        Ok(current)
    }

    /// Checks that `link` names this collection: by names or by resource ids.
    fn check_collection_link(&self, link: &str) -> Result<(), DocumentError> {
        let link = link.trim_matches('/');
        let (self_link, alt_link) = self.collection_links();
        if link == self_link.trim_matches('/') || link == alt_link {
            return Ok(());
        }
        Err(DocumentError::new(
            400,
            format!(
                "'{link}' is not this script's collection ({alt_link}): a script reaches only its own container"
            ),
        ))
    }

    /// The id of the document `link` names (`<collection link>/docs/<id or _rid>`).
    fn document_id(&self, link: &str) -> Result<String, DocumentError> {
        let trimmed = link.trim_matches('/');
        let (collection, document) = trimmed
            .rsplit_once("/docs/")
            .ok_or_else(|| DocumentError::new(400, format!("'{link}' is not a document link")))?;
        self.check_collection_link(collection)?;
        let (self_link, _) = self.collection_links();
        if collection != self_link.trim_matches('/') {
            return Ok(document.to_owned());
        }
        let scope = FeedScope::PartitionKey(self.partition_key.clone());
        if let Some(id) = self
            .store
            .item_id_by_rid(&self.database, self.container_id(), &scope, document)
            .map_err(document_error)?
        {
            return Ok(id);
        }
        Err(DocumentError::new(
            404,
            format!("no document of this partition has the resource id '{document}'"),
        ))
    }

    /// Checks a document the script writes: an object with a string id, in this partition.
    fn check_document(&self, document: &Value) -> Result<String, DocumentError> {
        let id = document
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| DocumentError::new(400, "the document needs a string 'id'"))?;
        tributary_store::validate_id("item", id).map_err(document_error)?;
        let partition_key =
            PartitionKey::extract(&self.container.definition.partition_key, document)
                .map_err(|e| DocumentError::new(400, e.to_string()))?;
        if partition_key != self.partition_key {
            return Err(DocumentError::new(
                400,
                format!(
                    "the document's partition key {} is not the script's {}: a script writes only in the partition it runs in",
                    partition_key.to_json(),
                    self.partition_key.to_json()
                ),
            ));
        }
        Ok(id.to_owned())
    }

    /// Records `document` (or its deletion) as the item's pending state.
    fn stage(&mut self, id: &str, document: Option<Value>) -> Option<Value> {
        self.n_pending_writes += 1;
        let staged = document.map(|mut document| {
            let alt_link = self.collection_links().1;
            let object = document
                .as_object_mut()
                .expect("written documents were checked to be objects");
            object.insert("_ts".into(), Value::from(self.now_s));
            object.insert(
                "_etag".into(),
                Value::from(format!("\"pending-{}\"", self.n_pending_writes)),
            );
            object
                .entry("_self")
                .or_insert_with(|| Value::from(format!("{alt_link}/docs/{id}/")));
            document
        });
        let touched = self
            .touched
            .get_mut(id)
            .expect("an item is read before it is written");
        touched.current = staged.clone();
        touched.written = true;
        staged
    }

    /// The partition's items as the script sees them.
    fn all_documents(&mut self) -> Result<Vec<Value>, DocumentError> {
        let scope = FeedScope::PartitionKey(self.partition_key.clone());
        let committed = self
            .store
            .scan_items(&self.database, self.container_id(), &scope)
            .map_err(document_error)?;
        let mut documents: BTreeMap<String, Value> = BTreeMap::new();
        for text in committed {
            let document: Value = serde_json::from_str(&text)
                .map_err(|e| DocumentError::new(500, format!("a stored item is not JSON: {e}")))?;
            // The scope is an EPK span: keys that share a hash share it.
            let key = PartitionKey::extract(&self.container.definition.partition_key, &document);
            if key.as_ref().ok() != Some(&self.partition_key) {
                continue;
            }
            let id = document["id"].as_str().unwrap_or_default().to_owned();
            documents.insert(id, document);
        }
        for (id, touched) in &self.touched {
            match &touched.current {
                Some(document) => documents.insert(id.clone(), document.clone()),
                None => documents.remove(id),
            };
        }
        Ok(documents.into_values().collect())
    }

    /// Notes the `_etag`s of whole documents a query returned, so the commit checks them.
    fn note_read(&mut self, results: &[Value]) {
        for result in results {
            let (Some(id), Some(etag)) = (
                result.get("id").and_then(Value::as_str),
                result.get("_etag").and_then(Value::as_str),
            ) else {
                continue;
            };
            self.touched
                .entry(id.to_owned())
                .or_insert_with(|| Touched {
                    committed_etag: Some(etag.to_owned()),
                    current: Some(result.clone()),
                    written: false,
                });
        }
    }
}

fn precondition_failed(id: &str, etag: &str) -> DocumentError {
    DocumentError::new(
        412,
        format!("the document '{id}' does not have the etag {etag}"),
    )
}

impl DocumentContext for PartitionOverlay {
    fn collection_links(&self) -> (String, String) {
        (
            format!(
                "dbs/{}/colls/{}/",
                self.container.database_rid, self.container.rid
            ),
            format!("dbs/{}/colls/{}", self.database, self.container_id()),
        )
    }

    fn write(
        &mut self,
        kind: DocumentWrite,
        link: &str,
        document: Value,
        if_match: Option<&str>,
    ) -> Result<Value, DocumentError> {
        let id = self.check_document(&document)?;
        if kind == DocumentWrite::Replace {
            let target = self.document_id(link)?;
            if target != id {
                return Err(DocumentError::new(
                    400,
                    format!("a replace of '{target}' must not change its id to '{id}'"),
                ));
            }
        } else {
            self.check_collection_link(link)?;
        }
        let current = self.current(&id)?;
        match (&kind, &current) {
            (DocumentWrite::Create, Some(_)) => {
                return Err(DocumentError::new(
                    409,
                    format!("a document with id '{id}' already exists"),
                ));
            }
            (DocumentWrite::Replace, None) => {
                return Err(DocumentError::new(
                    404,
                    format!("the document '{id}' does not exist"),
                ));
            }
            _ => {}
        }
        if let (Some(etag), Some(existing)) = (if_match, &current)
            && existing["_etag"] != etag
        {
            return Err(precondition_failed(&id, etag));
        }
        Ok(self
            .stage(&id, Some(document))
            .expect("a staged document is returned"))
    }

    fn read(&mut self, link: &str) -> Result<Value, DocumentError> {
        let id = self.document_id(link)?;
        self.current(&id)?
            .ok_or_else(|| DocumentError::new(404, format!("the document '{id}' does not exist")))
    }

    fn delete(&mut self, link: &str, if_match: Option<&str>) -> Result<(), DocumentError> {
        let id = self.document_id(link)?;
        let current = self.current(&id)?.ok_or_else(|| {
            DocumentError::new(404, format!("the document '{id}' does not exist"))
        })?;
        if let Some(etag) = if_match
            && current["_etag"] != etag
        {
            return Err(precondition_failed(&id, etag));
        }
        self.stage(&id, None);
        Ok(())
    }

    fn query(
        &mut self,
        link: &str,
        query: &str,
        parameters: &Value,
    ) -> Result<Vec<Value>, DocumentError> {
        self.check_collection_link(link)?;
        let parsed = container_query(query, &self.container).map_err(document_error)?;
        let parameters = Parameters::from_json(parameters)
            .map_err(|e| DocumentError::new(400, e.to_string()))?;
        let documents = self.all_documents()?;
        let results = tributary_query::execute(&parsed, &parameters, documents.iter())
            .map_err(|e| DocumentError::new(400, e.to_string()))?;
        self.note_read(&results);
        Ok(results)
    }

    fn read_all(&mut self, link: &str) -> Result<Vec<Value>, DocumentError> {
        self.check_collection_link(link)?;
        let documents = self.all_documents()?;
        self.note_read(&documents);
        Ok(documents)
    }
}
