//! A container's server-side scripts as resources: stored procedures
//! (`/dbs/{db}/colls/{coll}/sprocs`), triggers (`.../triggers`) and user-defined functions
//! (`.../udfs`): create, upsert, list (paged), query, read, replace and delete, with
//! `If-Match` on replaces and deletes; and a stored procedure's execution (`POST
//! .../sprocs/{id}`), run against a [`PartitionOverlay`] of its partition and committed as
//! one transaction (run again, a bounded number of times, when a concurrent write got in
//! first).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use axum::http::Method;
use base64::Engine as _;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use tributary_scripts::{ScriptError, ScriptLimits, run_stored_procedure};
use tributary_store::{
    CrossDatabaseOperation, OperationResult, ScriptDefinition, ScriptKind, ScriptProperties,
    StoreError, WriteOutcome,
};
use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::partition_overlay::PartitionOverlay;
use crate::request::{Reply, RequestContext, X_MS_ITEM_COUNT, feed_body};
use crate::routes::{method_not_allowed, off_worker};

/// Most runs of one stored procedure execution: a run whose commit finds that a concurrent
/// write changed what it read is run again, up to this many times in all.
pub(crate) const MAX_SCRIPT_RUNS: usize = 3;

/// What `x-ms-documentdb-script-log-results` leaves unencoded: what Python's
/// `urllib.parse.quote` leaves (letters, digits, `_.-~` and `/`).
const LOG_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~')
    .remove(b'/');

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
        Method::POST if kind == ScriptKind::StoredProcedure => {
            execute_stored_procedure(state, request, database, container, id).await
        }
        Method::POST => Err(ApiError::new(
            405,
            format!(
                "a {} cannot be executed on its own: only a stored procedure can",
                kind.as_str()
            ),
        )),
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

/// A script's failure as the client sees it: 400 with the script's message (500 for the
/// engine's own failure).
pub(crate) fn script_error(kind: ScriptKind, id: &str, error: ScriptError) -> ApiError {
    let status = match error {
        ScriptError::Engine(_) => 500,
        _ => 400,
    };
    ApiError::new(
        status,
        format!(
            "Encountered exception while executing the {} '{id}'. Exception = {error}",
            kind.as_str()
        ),
    )
}

/// Commits `operations` as one transaction and returns what each did: `None` when a
/// concurrent write changed an item the run read or wrote (the run must be repeated), the
/// operation's error when it failed otherwise.
pub(crate) async fn commit_run(
    state: &AppState,
    operations: Vec<CrossDatabaseOperation>,
) -> Result<Option<Vec<WriteOutcome>>, ApiError> {
    if operations.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let outcome = state.store.transaction_across_databases(operations).await?;
    let mut done = Vec::with_capacity(outcome.results.len());
    for result in outcome.results {
        match result {
            OperationResult::Done(write) => done.push(write),
            OperationResult::Failed(
                StoreError::PreconditionFailed(_)
                | StoreError::ItemExists(_)
                | StoreError::ItemNotFound(_),
            ) => return Ok(None),
            OperationResult::Failed(other) => return Err(other.into()),
            OperationResult::NotApplied => {}
        }
    }
    if !outcome.committed {
        return Err(ApiError::new(
            500,
            "a transaction was not committed and names no failed operation",
        ));
    }
    Ok(Some(done))
}

/// The answer to a run that found its commit overtaken [`MAX_SCRIPT_RUNS`] times.
pub(crate) fn too_contended(kind: ScriptKind, id: &str) -> ApiError {
    ApiError::new(
        449,
        format!(
            "the {} '{id}' was run {MAX_SCRIPT_RUNS} times and each time a concurrent write changed a document it read or wrote; retry the request",
            kind.as_str()
        ),
    )
}

/// `POST .../sprocs/{id}`: runs the stored procedure with the body's parameters (a JSON
/// array) in the partition `x-ms-documentdb-partitionkey` names, then commits its writes.
async fn execute_stored_procedure(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    let kind = ScriptKind::StoredProcedure;
    let script = state.store.read_script(database, container, kind, id)?;
    let partition_key = request.partition_key()?.ok_or_else(|| {
        ApiError::bad_request(format!(
            "executing a stored procedure needs the '{}' header: it runs in one logical partition",
            headers::X_MS_DOCUMENTDB_PARTITIONKEY
        ))
    })?;
    let parameters = if request.body.is_empty() {
        Vec::new()
    } else {
        match request.json()? {
            Value::Array(parameters) => parameters,
            Value::Null => Vec::new(),
            other => {
                return Err(ApiError::bad_request(format!(
                    "the body of a stored procedure's execution must be a JSON array of its parameters, not {other}"
                )));
            }
        }
    };
    let logging = request.flag(headers::X_MS_DOCUMENTDB_SCRIPT_ENABLE_LOGGING)?;
    for run in 1..=MAX_SCRIPT_RUNS {
        let properties = state.store.read_container(database, container)?;
        let overlay = PartitionOverlay::new(
            Arc::clone(&state.store),
            database,
            properties,
            partition_key.clone(),
        );
        let (output, operations) = off_worker(state, || {
            let overlay = Rc::new(RefCell::new(overlay));
            let output = run_stored_procedure(
                &script.definition.body,
                parameters.clone(),
                overlay.clone(),
                ScriptLimits::default(),
            );
            let operations = overlay.borrow().commit_operations();
            (output, operations)
        })
        .await;
        let output = output.map_err(|error| script_error(kind, id, error))?;
        if commit_run(state, operations).await?.is_none() {
            tracing::debug!(
                sproc = id,
                run,
                "a concurrent write overtook the stored procedure; running it again"
            );
            continue;
        }
        let body = output
            .response_body
            .map(|body| body.to_string())
            .unwrap_or_default();
        let mut reply = Reply::json(200, body);
        if logging {
            reply = reply.header(
                headers::X_MS_DOCUMENTDB_SCRIPT_LOG_RESULTS,
                utf8_percent_encode(&output.log, LOG_ENCODE_SET).to_string(),
            );
        }
        return Ok(reply);
    }
    Err(too_contended(kind, id))
}
