//! Item create, upsert, read, replace, delete and patch.

use tributary_store::{Item, ItemWrite, PatchRequest, Precondition, WriteKind, WriteOutcome};
use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{LSN_HEADER, Reply, RequestContext, charge_for};

/// The `If-Match` / `If-None-Match` condition of a write, if any.
fn precondition(request: &RequestContext) -> Option<Precondition> {
    if let Some(etag) = request.header(headers::IF_MATCH) {
        return Some(Precondition::IfMatch(etag.to_owned()));
    }
    request
        .header(headers::IF_NONE_MATCH)
        .map(|etag| Precondition::IfNoneMatch(etag.to_owned()))
}

fn minimal_response(request: &RequestContext) -> bool {
    request
        .header(headers::PREFER)
        .is_some_and(|p| p.eq_ignore_ascii_case(headers::values::PREFER_RETURN_MINIMAL))
}

/// Headers every item response carries.
fn item_headers(reply: Reply, item: &Item) -> Reply {
    reply
        .header(headers::ETAG, &item.etag)
        .header(headers::X_MS_SESSION_TOKEN, format!("0:-1#{}", item.lsn))
        .header(LSN_HEADER, item.lsn.to_string())
}

fn write_reply(request: &RequestContext, outcome: WriteOutcome) -> Reply {
    let status = outcome.status.status_code();
    match outcome.item {
        Some(item) => {
            let charge = charge_for(item.body.len(), true);
            let reply = if minimal_response(request) {
                Reply::empty(status)
            } else {
                Reply::json(status, item.body.clone())
            };
            item_headers(reply, &item).charge(charge)
        }
        None => Reply::empty(status).charge(charge_for(0, true)),
    }
}

/// `POST .../docs`: create, or upsert with `x-ms-documentdb-is-upsert: true`.
pub(crate) async fn create(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<Reply, ApiError> {
    let body = request.json()?;
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
    let outcome = state.store.write_item(database, container, write).await?;
    Ok(write_reply(request, outcome))
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

/// `GET .../docs/{id}`; `304` when `If-None-Match` equals the item's etag.
pub(crate) fn read(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let partition_key = required_partition_key(request)?;
    let item = state
        .store
        .read_item(database, container, &partition_key, id)?;
    if request.header(headers::IF_NONE_MATCH) == Some(item.etag.as_str()) {
        return Ok(item_headers(Reply::empty(304), &item));
    }
    let charge = charge_for(item.body.len(), false);
    Ok(item_headers(Reply::json(200, item.body.clone()), &item).charge(charge))
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
        body: Some(request.json()?),
        precondition: precondition(request),
    };
    let outcome = state.store.write_item(database, container, write).await?;
    Ok(write_reply(request, outcome))
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
        partition_key: Some(required_partition_key(request)?),
        body: None,
        precondition: precondition(request),
    };
    let outcome = state.store.write_item(database, container, write).await?;
    Ok(write_reply(request, outcome))
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
        partition_key: Some(required_partition_key(request)?),
        body: None,
        precondition: precondition(request),
    };
    let outcome = state.store.write_item(database, container, write).await?;
    Ok(write_reply(request, outcome))
}
