//! Caller-side preparation of item operations: the JSON is parsed and validated and the
//! partition key hashed on the caller's thread, so the committer only applies the result.

use serde_json::Value;
use tributary_partition_key::PartitionKey;
use tributary_patch::PatchRequest;
use tributary_query::Query;

use crate::catalog::{ContainerRecord, validate_id};
use crate::document::{PreparedItem, prepare_item};
use crate::error::{Result, StoreError};
use crate::item::Precondition;
use crate::shared::Shared;

/// A validated item operation, ready to apply.
#[derive(Debug)]
pub(crate) struct PreparedOp {
    pub kind: PreparedKind,
    pub id: String,
    pub epk: String,
    pub partition_key: PartitionKey,
    pub precondition: Option<Precondition>,
}

/// The operation-specific part of a [`PreparedOp`].
#[derive(Debug)]
pub(crate) enum PreparedKind {
    Create(PreparedItem),
    Upsert(PreparedItem),
    Replace(PreparedItem),
    Delete,
    Patch(PatchRequest, Option<Box<Query>>),
    Read,
}

impl PreparedOp {
    /// Bytes of the item body the operation was given (0 without one).
    pub(crate) fn body_bytes(&self) -> usize {
        match &self.kind {
            PreparedKind::Create(item)
            | PreparedKind::Upsert(item)
            | PreparedKind::Replace(item) => item.user_json.len(),
            PreparedKind::Delete | PreparedKind::Patch(..) | PreparedKind::Read => 0,
        }
    }
}

impl Shared {
    /// Validates and prepares an item operation against the container's partition key.
    pub(crate) fn prepare(
        &self,
        container: &ContainerRecord,
        write: crate::item::ItemWrite,
    ) -> Result<PreparedOp> {
        use crate::item::WriteKind;
        let definition = &container.definition.partition_key;
        let with_body = |body: Option<Value>, id: Option<String>, key: Option<PartitionKey>| {
            let body = body.ok_or_else(|| {
                StoreError::BadRequest("this operation needs an item body".into())
            })?;
            let index = (
                container.indexing_policy().as_ref(),
                container.index.generation,
            );
            let item = prepare_item(definition, body, key.as_ref(), Some(index))?;
            if let Some(id) = id
                && id != item.id
            {
                return Err(StoreError::BadRequest(format!(
                    "the id in the request ('{id}') differs from the item's id ('{}')",
                    item.id
                )));
            }
            Ok(item)
        };
        let keyed = |id: Option<String>,
                     key: Option<PartitionKey>|
         -> Result<(String, PartitionKey, String)> {
            let id =
                id.ok_or_else(|| StoreError::BadRequest("this operation needs an item id".into()))?;
            validate_id("item", &id)?;
            let key = key.ok_or_else(|| {
                StoreError::BadRequest("this operation needs the item's partition key".into())
            })?;
            let epk = key.effective_partition_key(definition)?;
            Ok((id, key, epk.as_str().to_owned()))
        };
        let precondition = write.precondition;
        let (kind, id, partition_key, epk) = match write.kind {
            WriteKind::Create | WriteKind::Upsert | WriteKind::Replace => {
                // A replace names the item it replaces in its path; a body with another id
                // renames it (as on Cosmos DB).
                let (path_id, id_to_match) = match write.kind {
                    WriteKind::Replace => (write.id, None),
                    _ => (None, write.id),
                };
                let item = with_body(write.body, id_to_match, write.partition_key)?;
                let id = match path_id {
                    Some(id) => {
                        validate_id("item", &id)?;
                        id
                    }
                    None => item.id.clone(),
                };
                let (key, epk) = (item.partition_key.clone(), item.epk.clone());
                let kind = match write.kind {
                    WriteKind::Create => PreparedKind::Create(item),
                    WriteKind::Upsert => PreparedKind::Upsert(item),
                    _ => PreparedKind::Replace(item),
                };
                (kind, id, key, epk)
            }
            WriteKind::Delete => {
                let (id, key, epk) = keyed(write.id, write.partition_key)?;
                (PreparedKind::Delete, id, key, epk)
            }
            WriteKind::Read => {
                let (id, key, epk) = keyed(write.id, write.partition_key)?;
                (PreparedKind::Read, id, key, epk)
            }
            WriteKind::Patch(patch) => {
                let (id, key, epk) = keyed(write.id, write.partition_key)?;
                let condition = match &patch.condition {
                    Some(text) => Some(Box::new(Query::parse_condition(text).map_err(|e| {
                        StoreError::BadRequest(format!("invalid patch condition: {e}"))
                    })?)),
                    None => None,
                };
                (PreparedKind::Patch(patch, condition), id, key, epk)
            }
        };
        if key_is_prefix(&partition_key, container) {
            return Err(StoreError::BadRequest(
                "an item operation needs the full hierarchical partition key, not a prefix".into(),
            ));
        }
        Ok(PreparedOp {
            kind,
            id,
            epk,
            partition_key,
            precondition,
        })
    }
}

fn key_is_prefix(key: &PartitionKey, container: &ContainerRecord) -> bool {
    key.0.len() < container.definition.partition_key.paths.len() && !key.0.is_empty()
}
