//! Item create, upsert, read, replace, delete and patch.

use tributary_store::{
    Item, ItemWrite, MAX_ITEM_BYTES, PatchRequest, Precondition, WriteKind, WriteOutcome,
    WriteStatus,
};
use tributary_wire::error::substatus;
use tributary_wire::headers;

use tributary_partition_key::PartitionKey;
use tributary_store::FeedScope;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{LSN_HEADER, Reply, RequestContext, charge_for};
use crate::session::{check_request_token, with_session};

/// The `If-Match` / `If-None-Match` condition of a write, if any.
fn precondition(request: &RequestContext) -> Option<Precondition> {
    if let Some(etag) = request.header(headers::IF_MATCH) {
        return Some(Precondition::IfMatch(etag.to_owned()));
    }
    request
        .header(headers::IF_NONE_MATCH)
        .map(|etag| Precondition::IfNoneMatch(etag.to_owned()))
}

/// The container and partition key an item request is about: what its response's session
/// token names.
struct ItemScope<'a> {
    database: &'a str,
    container: &'a str,
    partition_key: Option<PartitionKey>,
}

impl ItemScope<'_> {
    /// Adds the session headers (see [`crate::session`]) at `lsn`, or at the container's
    /// highest LSN when `None` (a delete).
    fn session(&self, state: &AppState, reply: Reply, lsn: Option<u64>) -> Reply {
        let scope = match &self.partition_key {
            Some(key) => FeedScope::PartitionKey(key.clone()),
            None => FeedScope::Container,
        };
        with_session(reply, state, self.database, self.container, &scope, lsn)
    }
}

/// Headers every item response carries.
fn item_headers(reply: Reply, item: &Item) -> Reply {
    reply
        .header(headers::ETAG, &item.etag)
        .header(LSN_HEADER, item.lsn.to_string())
}

/// The status code Cosmos DB answers a successful item operation with.
pub(crate) fn write_status_code(status: WriteStatus) -> u16 {
    match status {
        WriteStatus::Created => 201,
        WriteStatus::Replaced | WriteStatus::Read => 200,
        WriteStatus::Deleted => 204,
    }
}

fn write_reply(
    state: &AppState,
    request: &RequestContext,
    scope: &ItemScope<'_>,
    outcome: WriteOutcome,
) -> Reply {
    let status = write_status_code(outcome.status);
    match outcome.item {
        Some(item) => {
            let charge = charge_for(item.body.len(), true);
            let reply = if request.prefers_minimal() {
                Reply::empty(status)
            } else {
                Reply::json(status, item.body.clone())
            };
            scope
                .session(state, item_headers(reply, &item), Some(item.lsn))
                .charge(charge)
        }
        None => scope
            .session(state, Reply::empty(status), None)
            .charge(charge_for(0, true)),
    }
}

/// Applies one write (with the triggers the request names, if any) and answers as Cosmos DB
/// does.
async fn apply(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    write: ItemWrite,
) -> Result<Reply, ApiError> {
    let scope = ItemScope {
        database,
        container,
        partition_key: write.partition_key.clone(),
    };
    let (pre, post) = crate::routes::triggers::requested(request);
    let outcome = if pre.is_empty() && post.is_empty() {
        state.store.write_item(database, container, write).await?
    } else {
        crate::routes::triggers::write_with_triggers(state, request, database, container, write)
            .await?
    };
    Ok(write_reply(state, request, &scope, outcome))
}

/// The item a create, upsert or replace sends. Cosmos DB measures an item as sent: a body
/// over [`MAX_ITEM_BYTES`] is refused even when it would be smaller stored (characters the
/// client escaped as `\uXXXX` take six bytes each).
fn item_body(request: &RequestContext) -> Result<serde_json::Value, ApiError> {
    if request.body.len() > MAX_ITEM_BYTES {
        return Err(ApiError::new(
            413,
            format!(
                "the item is {} bytes as sent, over the {MAX_ITEM_BYTES} bytes an item may have \
                 (characters sent escaped count as sent)",
                request.body.len()
            ),
        ));
    }
    request.json()
}

/// `POST .../docs`: create, or upsert with `x-ms-documentdb-is-upsert: true`.
pub(crate) async fn create(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<Reply, ApiError> {
    let body = item_body(request)?;
    let kind = if request.flag(headers::X_MS_DOCUMENTDB_IS_UPSERT)? {
        WriteKind::Upsert
    } else {
        WriteKind::Create
    };
    let write = ItemWrite {
        kind,
        id: None,
        partition_key: request.partition_key()?,
        body: Some(body),
        precondition: precondition(request),
    };
    apply(state, request, database, container, write).await
}

fn required_partition_key(
    request: &RequestContext,
) -> Result<tributary_partition_key::PartitionKey, ApiError> {
    request.partition_key()?.ok_or_else(|| {
        ApiError::bad_request(format!(
            "PartitionKey value must be supplied for this operation: send the '{}' header",
            headers::X_MS_DOCUMENTDB_PARTITIONKEY
        ))
    })
}

/// The full partition key a point operation (read, delete, patch) needs: a `MultiHash`
/// prefix names many keys, not one item, so it is a 400 with sub-status 1001 as on Cosmos DB.
fn point_partition_key(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<tributary_partition_key::PartitionKey, ApiError> {
    let partition_key = required_partition_key(request)?;
    let definition = state.store.partition_key_definition(database, container)?;
    if partition_key.is_prefix_of(&definition) && !partition_key.0.is_empty() {
        return Err(ApiError {
            status: 400,
            substatus: Some(substatus::PARTITION_KEY_MISMATCH),
            additional_error_info: None,
            message: format!(
                "Partition key provided either doesn't correspond to definition in the collection or doesn't match partition key field values specified in the document: {} has {} of the {} components",
                partition_key.to_json(),
                partition_key.0.len(),
                definition.paths.len()
            ),
        });
    }
    Ok(partition_key)
}

/// `GET .../docs/{id}`; `304` when `If-None-Match` equals the item's etag.
pub(crate) fn read(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    tributary_store::validate_id("item", id)?;
    let partition_key = point_partition_key(state, request, database, container)?;
    check_request_token(state, request, database, container)?;
    let item = state
        .store
        .read_item(database, container, &partition_key, id)?;
    let scope = ItemScope {
        database,
        container,
        partition_key: Some(partition_key),
    };
    // A read reports the container's LSN, not the item's, as Cosmos DB reports the
    // partition's: the read saw every write up to it.
    let container_lsn = state
        .store
        .container_position(database, container)?
        .1
        .max(item.lsn);
    let reply = if request.header(headers::IF_NONE_MATCH) == Some(item.etag.as_str()) {
        item_headers(Reply::empty(304), &item)
    } else {
        let charge = charge_for(item.body.len(), false);
        item_headers(Reply::json(200, item.body.clone()), &item).charge(charge)
    };
    let reply = scope.session(state, reply, Some(item.lsn));
    Ok(reply.header(LSN_HEADER, container_lsn.to_string()))
}

/// `PUT .../docs/{id}`.
pub(crate) async fn replace(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let write = ItemWrite {
        kind: WriteKind::Replace,
        id: Some(id.to_owned()),
        partition_key: request.partition_key()?,
        body: Some(item_body(request)?),
        precondition: precondition(request),
    };
    apply(state, request, database, container, write).await
}

/// `DELETE .../docs/{id}`.
pub(crate) async fn delete(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let write = ItemWrite {
        kind: WriteKind::Delete,
        id: Some(id.to_owned()),
        partition_key: Some(point_partition_key(state, request, database, container)?),
        body: None,
        precondition: precondition(request),
    };
    apply(state, request, database, container, write).await
}

/// `PATCH .../docs/{id}`: `{"operations": [...], "condition": "from c where ..."}`.
pub(crate) async fn patch(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let patch = PatchRequest::from_json(&request.json()?)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let write = ItemWrite {
        kind: WriteKind::Patch(patch),
        id: Some(id.to_owned()),
        partition_key: Some(point_partition_key(state, request, database, container)?),
        body: None,
        precondition: precondition(request),
    };
    apply(state, request, database, container, write).await
}

/// `POST .../operations/partitionkeydelete`: deletes every item of the partition key in the
/// `x-ms-documentdb-partitionkey` header (a `MultiHash` prefix deletes every key under it).
///
/// Each item is deleted through the normal write path, one commit each, so the change feed
/// and its all-versions deletes record every one. An item deleted meanwhile is skipped; a key
/// without items is not an error.
pub(crate) async fn delete_partition_key(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<Reply, ApiError> {
    let partition_key = required_partition_key(request)?;
    let definition = state.store.partition_key_definition(database, container)?;
    let scope = tributary_store::FeedScope::PartitionKey(partition_key.clone());
    let mut n_deleted = 0usize;
    let items = crate::routes::off_worker(state, || {
        state.store.scan_items(database, container, &scope)
    })
    .await?;
    for text in items {
        let document: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ApiError::new(500, format!("a stored item is not JSON: {e}")))?;
        let Some(id) = document.get("id").and_then(serde_json::Value::as_str) else {
            continue;
        };
        let item_key = tributary_partition_key::PartitionKey::extract(&definition, &document)
            .map_err(|e| ApiError::new(500, format!("a stored item has no valid key: {e}")))?;
        // The scope is an EPK range: skip items of other keys that share the hash (V1 keys
        // agree on their first 100 characters only).
        if !item_key.0.starts_with(&partition_key.0) {
            continue;
        }
        let write = ItemWrite {
            kind: WriteKind::Delete,
            id: Some(id.to_owned()),
            partition_key: Some(item_key),
            body: None,
            precondition: None,
        };
        match state.store.write_item(database, container, write).await {
            Ok(_) => n_deleted += 1,
            Err(tributary_store::StoreError::ItemNotFound(_)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    tracing::debug!(database, container, n_deleted, "partition key deleted");
    Ok(Reply::empty(200).charge(charge_for(0, true) * n_deleted.max(1) as f64))
}
