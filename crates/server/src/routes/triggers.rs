//! Item writes that name triggers (`x-ms-documentdb-pre-trigger-include`,
//! `x-ms-documentdb-post-trigger-include`): the pre-triggers run first and may change the
//! item, then the write, then the post-triggers, all against one [`PartitionOverlay`] of the
//! item's partition; the write and whatever the triggers wrote are committed as one
//! transaction, and a trigger that throws leaves nothing written.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use serde_json::Value;
use tributary_partition_key::PartitionKey;
use tributary_scripts::{
    DocumentContext, DocumentError, DocumentWrite, ScriptLimits, TriggerInput, run_trigger,
};
use tributary_store::{
    ItemWrite, Precondition, ScriptKind, ScriptProperties, TriggerOperation, TriggerType,
    WriteKind, WriteOutcome, WriteStatus,
};
use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::partition_overlay::PartitionOverlay;
use crate::request::RequestContext;
use crate::routes::off_worker;
use crate::routes::scripts::{MAX_SCRIPT_RUNS, commit_run, script_error, too_contended};

/// The trigger ids a header names (comma-separated), if it is there.
fn named(request: &RequestContext, header: &str) -> Vec<String> {
    request
        .header(header)
        .map(|value| {
            value
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The pre- and post-triggers a request names; both empty when it names none.
pub(crate) fn requested(request: &RequestContext) -> (Vec<String>, Vec<String>) {
    (
        named(request, headers::X_MS_DOCUMENTDB_PRE_TRIGGER_INCLUDE),
        named(request, headers::X_MS_DOCUMENTDB_POST_TRIGGER_INCLUDE),
    )
}

/// A 400 when a request whose writes run no triggers (`what`: a batch, a transaction)
/// names some, rather than writing without them.
pub(crate) fn refuse_on(request: &RequestContext, what: &str) -> Result<(), ApiError> {
    let (pre, post) = requested(request);
    if pre.is_empty() && post.is_empty() {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "triggers do not run on {what}: send the writes one at a time to run the triggers named in {} or {}",
        headers::X_MS_DOCUMENTDB_PRE_TRIGGER_INCLUDE,
        headers::X_MS_DOCUMENTDB_POST_TRIGGER_INCLUDE
    )))
}

/// What the write is, for the triggers: its operation type as they see it
/// (`getOperationType()`), and the trigger operations that run on it. The kind of document
/// write is `None` for a delete.
fn operation_of(
    kind: &WriteKind,
) -> Result<(Option<DocumentWrite>, &'static str, Vec<TriggerOperation>), ApiError> {
    use TriggerOperation::{All, Create, Replace, Update};
    Ok(match kind {
        WriteKind::Create => (Some(DocumentWrite::Create), "Create", vec![All, Create]),
        WriteKind::Replace => (
            Some(DocumentWrite::Replace),
            "Replace",
            vec![All, Replace, Update],
        ),
        WriteKind::Upsert => (
            Some(DocumentWrite::Upsert),
            "Upsert",
            vec![All, Create, Replace, Update],
        ),
        WriteKind::Delete => (None, "Delete", vec![All, TriggerOperation::Delete]),
        WriteKind::Patch(_) | WriteKind::Read => {
            return Err(ApiError::bad_request(
                "triggers run on creates, upserts, replaces and deletes, not on a patch",
            ));
        }
    })
}

/// Reads the triggers `ids` and checks each is of `trigger_type` and runs on the write.
fn resolve(
    state: &AppState,
    database: &str,
    container: &str,
    ids: &[String],
    trigger_type: TriggerType,
    operation_type: &str,
    runs_on: &[TriggerOperation],
) -> Result<Vec<ScriptProperties>, ApiError> {
    ids.iter()
        .map(|id| {
            let trigger = state
                .store
                .read_script(database, container, ScriptKind::Trigger, id)?;
            let settings = trigger
                .definition
                .trigger
                .as_ref()
                .expect("a stored trigger has its settings");
            if settings.trigger_type != trigger_type {
                return Err(ApiError::bad_request(format!(
                    "trigger '{id}' is a {} trigger, but the request names it as a {} trigger",
                    settings.trigger_type.as_str(),
                    trigger_type.as_str()
                )));
            }
            if !runs_on.contains(&settings.operation) {
                return Err(ApiError::bad_request(format!(
                    "trigger '{id}' runs on {} operations, and this request is a {operation_type}",
                    settings.operation.as_str()
                )));
            }
            Ok(trigger)
        })
        .collect()
}

fn api_error(error: DocumentError) -> ApiError {
    ApiError::new(error.status, error.message)
}

/// Applies `write` with the triggers the request names (see the module's essay).
pub(crate) async fn write_with_triggers(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
    write: ItemWrite,
) -> Result<WriteOutcome, ApiError> {
    let (pre_ids, post_ids) = requested(request);
    let (kind, operation_type, runs_on) = operation_of(&write.kind)?;
    let pre = resolve(
        state,
        database,
        container,
        &pre_ids,
        TriggerType::Pre,
        operation_type,
        &runs_on,
    )?;
    let post = resolve(
        state,
        database,
        container,
        &post_ids,
        TriggerType::Post,
        operation_type,
        &runs_on,
    )?;
    let if_match = match &write.precondition {
        None => None,
        Some(Precondition::IfMatch(etag)) => Some(etag.clone()),
        Some(Precondition::IfNoneMatch(_)) => {
            return Err(ApiError::bad_request(
                "If-None-Match is not supported on a write that names triggers",
            ));
        }
    };
    let properties = state.store.read_container(database, container)?;
    let partition_key = match (&write.partition_key, &write.body) {
        (Some(key), _) => key.clone(),
        (None, Some(body)) => PartitionKey::extract(&properties.definition.partition_key, body)
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        (None, None) => {
            return Err(ApiError::bad_request(
                "the write names no partition key and has no body to take one from",
            ));
        }
    };
    let is_delete = kind.is_none();
    for run in 1..=MAX_SCRIPT_RUNS {
        let overlay = PartitionOverlay::new(
            Arc::clone(&state.store),
            database,
            state.store.read_container(database, container)?,
            partition_key.clone(),
        );
        let (written, operations) = off_worker(state, || {
            let overlay = Rc::new(RefCell::new(overlay));
            let written = run_write(
                &overlay,
                &pre,
                &post,
                kind.as_ref(),
                operation_type,
                &write,
                if_match.as_deref(),
            );
            let operations = overlay.borrow().commit_operations();
            (written, operations)
        })
        .await;
        let written_id = written?;
        let Some(outcomes) = commit_run(state, operations).await? else {
            tracing::debug!(
                run,
                "a concurrent write overtook a write's triggers; running them again"
            );
            continue;
        };
        if is_delete {
            return Ok(WriteOutcome {
                status: WriteStatus::Deleted,
                item: None,
            });
        }
        return outcomes
            .into_iter()
            .find(|outcome| {
                outcome
                    .item
                    .as_ref()
                    .is_some_and(|item| item.id == written_id)
            })
            .ok_or_else(|| {
                ApiError::new(500, "the write's own item is missing from its transaction")
            });
    }
    Err(too_contended(
        ScriptKind::Trigger,
        &pre_ids
            .iter()
            .chain(&post_ids)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
    ))
}

/// One run: pre-triggers, the write, post-triggers, all against `overlay`. Returns the id of
/// the item written.
fn run_write(
    overlay: &Rc<RefCell<PartitionOverlay>>,
    pre: &[ScriptProperties],
    post: &[ScriptProperties],
    kind: Option<&DocumentWrite>,
    operation_type: &str,
    write: &ItemWrite,
    if_match: Option<&str>,
) -> Result<String, ApiError> {
    let limits = ScriptLimits::default();
    let run = |trigger: &ScriptProperties, input: TriggerInput| {
        run_trigger(
            &trigger.definition.body,
            operation_type,
            input,
            overlay.clone(),
            limits,
        )
        .map_err(|error| script_error(ScriptKind::Trigger, &trigger.definition.id, error))
    };
    let mut body = write.body.clone();
    for trigger in pre {
        body = run(trigger, TriggerInput::Pre { request_body: body })?.request_body;
    }
    let alt_link = overlay.borrow().collection_links().1;
    let id = match (&write.id, &body) {
        (Some(id), _) if matches!(kind, None | Some(DocumentWrite::Replace)) => id.clone(),
        (_, Some(Value::Object(object))) => match object.get("id") {
            Some(Value::String(id)) => id.clone(),
            _ => {
                return Err(ApiError::bad_request(
                    "the item has no string 'id' property",
                ));
            }
        },
        _ => return Err(ApiError::bad_request("the item must be a JSON object")),
    };
    let document_link = format!("{alt_link}/docs/{id}");
    let response_body = match kind {
        None => {
            overlay
                .borrow_mut()
                .delete(&document_link, if_match)
                .map_err(api_error)?;
            None
        }
        Some(kind) => {
            let link = match kind {
                DocumentWrite::Replace => &document_link,
                DocumentWrite::Create | DocumentWrite::Upsert => &alt_link,
            };
            let document = body.clone().unwrap_or(Value::Null);
            let written = overlay
                .borrow_mut()
                .write(kind.clone(), link, document, if_match)
                .map_err(api_error)?;
            Some(written)
        }
    };
    let written_id = response_body
        .as_ref()
        .and_then(|document| document["id"].as_str())
        .map_or(id, str::to_owned);
    for trigger in post {
        run(
            trigger,
            TriggerInput::Post {
                request_body: body.clone(),
                response_body: response_body.clone(),
            },
        )?;
    }
    Ok(written_id)
}
