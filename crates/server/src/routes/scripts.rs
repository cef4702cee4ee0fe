//! A container's server-side scripts as resources: stored procedures
//! (`/dbs/{db}/colls/{coll}/sprocs`), triggers (`.../triggers`) and user-defined functions
//! (`.../udfs`): create, upsert, list (paged), query, read, replace and delete, with
//! `If-Match` on replaces and deletes.

use axum::http::Method;
use base64::Engine as _;
use serde_json::{Value, json};
use tributary_store::{ScriptDefinition, ScriptKind, ScriptProperties};
use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{Reply, RequestContext, X_MS_ITEM_COUNT, feed_body};
use crate::routes::method_not_allowed;

/// Page size of a script list when the client does not set `x-ms-max-item-count`.
const DEFAULT_PAGE_SCRIPTS: usize = 100;

/// The script kind a path segment names (`sprocs`, `triggers`, `udfs`).
pub(crate) fn kind_of_segment(segment: &str) -> Option<ScriptKind> {
    match segment {
        "sprocs" => Some(ScriptKind::StoredProcedure),
        "triggers" => Some(ScriptKind::Trigger),
        "udfs" => Some(ScriptKind::UserDefinedFunction),
        _ => None,
    }
}

/// The kind named by `segment`, which routing checked with [`kind_of_segment`].
fn routed_kind(segment: &str) -> Result<ScriptKind, ApiError> {
    kind_of_segment(segment)
        .ok_or_else(|| ApiError::not_found(format!("'{segment}' is not a kind of script")))
}

/// Serves `.../{sprocs,triggers,udfs}`: create or upsert (POST), query (POST with a query
/// body), list (GET).
pub(crate) async fn serve_feed(
    state: &AppState,
    request: &RequestContext,
    is_query: bool,
    database: &str,
    container: &str,
    segment: &str,
) -> Result<Reply, ApiError> {
    let kind = routed_kind(segment)?;
    match request.method {
        Method::POST if is_query => query(state, request, database, container, kind),
        Method::POST => create(state, request, database, container, kind).await,
        Method::GET => list(state, request, database, container, kind),
        _ => Err(method_not_allowed(request)),
    }
}

/// Serves `.../{sprocs,triggers,udfs}/{id}`: read, replace, delete.
pub(crate) async fn serve_one(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    segment: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let kind = routed_kind(segment)?;
    match request.method {
        Method::GET => read(state, database, container, kind, id),
        Method::PUT => replace(state, request, database, container, kind, id).await,
        Method::DELETE => delete(state, request, database, container, kind, id).await,
        _ => Err(method_not_allowed(request)),
    }
}

/// The path segment of a script kind.
fn segment_of(kind: ScriptKind) -> &'static str {
    match kind {
        ScriptKind::StoredProcedure => "sprocs",
        ScriptKind::Trigger => "triggers",
        ScriptKind::UserDefinedFunction => "udfs",
    }
}

/// The key of a list or query response holding scripts of `kind`.
fn feed_key(kind: ScriptKind) -> &'static str {
    match kind {
        ScriptKind::StoredProcedure => "StoredProcedures",
        ScriptKind::Trigger => "Triggers",
        ScriptKind::UserDefinedFunction => "UserDefinedFunctions",
    }
}

/// The JSON of a script: its definition and system properties.
pub(crate) fn script_json(script: &ScriptProperties) -> Value {
    let definition = &script.definition;
    let mut object = json!({
        "id": definition.id,
        "body": definition.body,
        "_rid": script.rid,
        "_self": format!(
            "dbs/{}/colls/{}/{}/{}/",
            script.database_rid,
            script.container_rid,
            segment_of(script.kind),
            script.rid
        ),
        "_etag": script.etag,
        "_ts": script.ts,
    });
    if let Some(trigger) = &definition.trigger {
        let (trigger_type, operation) = &trigger.spelled_as_sent;
        object["triggerType"] = Value::from(trigger_type.as_str());
        object["triggerOperation"] = Value::from(operation.as_str());
    }
    object
}

fn script_reply(status: u16, script: &ScriptProperties) -> Reply {
    Reply::json(status, script_json(script).to_string()).header(headers::ETAG, &script.etag)
}

fn definition(request: &RequestContext, kind: ScriptKind) -> Result<ScriptDefinition, ApiError> {
    Ok(ScriptDefinition::from_json(kind, &request.json()?)?)
}

/// A container's scripts of `kind` as JSON (for lists and queries).
pub(crate) fn scripts_json(
    state: &AppState,
    database: &str,
    container: &str,
    kind: ScriptKind,
) -> Result<Vec<Value>, ApiError> {
    Ok(state
        .store
        .list_scripts(database, container, kind)?
        .iter()
        .map(script_json)
        .collect())
}

/// `POST .../{sprocs,triggers,udfs}`: create, or upsert with `x-ms-documentdb-is-upsert`.
async fn create(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    kind: ScriptKind,
) -> Result<Reply, ApiError> {
    let definition = definition(request, kind)?;
    if request.flag(headers::X_MS_DOCUMENTDB_IS_UPSERT)? {
        let (script, created) = state
            .store
            .upsert_script(
                database,
                container,
                kind,
                definition,
                request.header(headers::IF_MATCH),
            )
            .await?;
        return Ok(script_reply(if created { 201 } else { 200 }, &script));
    }
    let script = state
        .store
        .create_script(database, container, kind, definition)
        .await?;
    Ok(script_reply(201, &script))
}

/// `GET .../{sprocs,triggers,udfs}`: the scripts by id, `x-ms-max-item-count` at a time; the
/// continuation names the last id served (base64 of its UTF-8).
fn list(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    kind: ScriptKind,
) -> Result<Reply, ApiError> {
    let container_rid = state.store.read_container(database, container)?.rid;
    let page_size = request.max_item_count(DEFAULT_PAGE_SCRIPTS)?;
    let after = match request.header(headers::X_MS_CONTINUATION) {
        None => None,
        Some(token) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "'{token}' is not a continuation of a {} list",
                        kind.as_str()
                    ))
                })?,
        ),
    };
    let scripts = state.store.list_scripts(database, container, kind)?;
    let remaining: Vec<&ScriptProperties> = scripts
        .iter()
        .filter(|script| {
            after
                .as_ref()
                .is_none_or(|after| script.definition.id > *after)
        })
        .collect();
    let page: Vec<String> = remaining
        .iter()
        .take(page_size)
        .map(|script| script_json(script).to_string())
        .collect();
    let mut reply = Reply::json(200, feed_body(&container_rid, feed_key(kind), &page))
        .header(X_MS_ITEM_COUNT, page.len().to_string());
    if remaining.len() > page_size {
        let last = &remaining[page_size - 1].definition.id;
        reply = reply.header(
            headers::X_MS_CONTINUATION,
            base64::engine::general_purpose::STANDARD.encode(last),
        );
    }
    Ok(reply)
}

/// `POST .../{sprocs,triggers,udfs}` with a query body.
fn query(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    kind: ScriptKind,
) -> Result<Reply, ApiError> {
    let container_rid = state.store.read_container(database, container)?.rid;
    let scripts = scripts_json(state, database, container, kind)?;
    super::query_reply(request, feed_key(kind), &container_rid, scripts)
}

fn read(
    state: &AppState,
    database: &str,
    container: &str,
    kind: ScriptKind,
    id: &str,
) -> Result<Reply, ApiError> {
    let script = state.store.read_script(database, container, kind, id)?;
    Ok(script_reply(200, &script))
}

/// `PUT .../{kind}/{id}`: replace, possibly under the body's new id, if `If-Match` holds.
async fn replace(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    kind: ScriptKind,
    id: &str,
) -> Result<Reply, ApiError> {
    let definition = definition(request, kind)?;
    let script = state
        .store
        .replace_script(
            database,
            container,
            kind,
            id,
            definition,
            request.header(headers::IF_MATCH),
        )
        .await?;
    Ok(script_reply(200, &script))
}

/// `DELETE .../{kind}/{id}`, if `If-Match` holds.
async fn delete(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    kind: ScriptKind,
    id: &str,
) -> Result<Reply, ApiError> {
    state
        .store
        .delete_script(
            database,
            container,
            kind,
            id,
            request.header(headers::IF_MATCH),
        )
        .await?;
    Ok(Reply::empty(204))
}
