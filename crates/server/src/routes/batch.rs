//! `POST .../docs` with `x-ms-cosmos-is-batch-request`: transactional batches (atomic) and
//! bulk requests (each operation on its own).

use serde_json::{Value, json};
use tributary_partition_key::PartitionKey;
use tributary_store::{
    CrossDatabaseOperation, ItemWrite, OperationResult, PatchRequest, Precondition, StoreError,
    WriteKind, WriteOutcome, WriteStatus,
};
use tributary_wire::error::substatus;
use tributary_wire::headers;

use crate::AppState;
use crate::error::{ApiError, store_error_status};
use crate::request::{LSN_HEADER, Reply, RequestContext, charge_for};
use crate::routes::items::write_status_code;

/// Most operations one batch request may hold (Cosmos DB's limit).
const MAX_BATCH_OPERATIONS: usize = 100;
/// Largest batch request body, in bytes (Cosmos DB's limit).
const MAX_BATCH_BODY_BYTES: usize = 2 * 1024 * 1024;
/// What Cosmos DB answers, word for word, for a partition key that does not fit the container
/// (the SDK suite matches on it).
const PARTITION_KEY_MISMATCH: &str = "Partition key provided either doesn't correspond to definition in the collection or doesn't match partition key field values specified in the document.";

/// One operation of the request body.
struct BatchOperation {
    write: ItemWrite,
}

/// Parses one operation, taking its item body out of `value` (no copy of the item).
fn parse_operation(index: usize, value: Value) -> Result<BatchOperation, ApiError> {
    let Value::Object(mut object) = value else {
        return Err(ApiError::bad_request(format!(
            "batch operation {index} must be a JSON object"
        )));
    };
    let body = object.remove("resourceBody");
    let text = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    let kind_name = text("operationType").ok_or_else(|| {
        ApiError::bad_request(format!("batch operation {index} needs an 'operationType'"))
    })?;
    let kind = match kind_name.to_ascii_lowercase().as_str() {
        "create" => WriteKind::Create,
        "upsert" => WriteKind::Upsert,
        "replace" => WriteKind::Replace,
        "delete" => WriteKind::Delete,
        "read" => WriteKind::Read,
        "patch" => {
            let patch_body = body.as_ref().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "batch patch operation {index} needs a 'resourceBody'"
                ))
            })?;
            WriteKind::Patch(
                PatchRequest::from_json(patch_body)
                    .map_err(|e| ApiError::bad_request(format!("batch operation {index}: {e}")))?,
            )
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "batch operation {index} has an unknown operationType '{other}'"
            )));
        }
    };
    let partition_key = match object.get("partitionKey") {
        None | Some(Value::Null) => None,
        // The Node SDK sends the key as a JSON string holding the array.
        Some(Value::String(text)) => Some(PartitionKey::from_header(text)),
        Some(value) => Some(PartitionKey::from_json(value)),
    }
    .transpose()
    .map_err(|e| {
        ApiError::bad_request(format!(
            "batch operation {index}: invalid partitionKey: {e}"
        ))
    })?;
    let precondition = text("ifMatch")
        .map(Precondition::IfMatch)
        .or_else(|| text("ifNoneMatch").map(Precondition::IfNoneMatch));
    let is_patch = matches!(kind, WriteKind::Patch(_));
    Ok(BatchOperation {
        write: ItemWrite {
            kind,
            id: text("id"),
            partition_key,
            body: if is_patch { None } else { body },
            precondition,
        },
    })
}

/// One operation's result as JSON text, and whether it succeeded.
struct ResultJson {
    text: String,
    ok: bool,
}

impl ResultJson {
    /// A successful operation's result. The stored body is already JSON: it is copied into
    /// the response as it is, not parsed again; with `minimal` (`Prefer: return=minimal`)
    /// only reads carry it, as on Cosmos DB.
    fn success(outcome: &WriteOutcome, minimal: bool) -> Self {
        use std::fmt::Write;
        let status = write_status_code(outcome.status);
        let text = match &outcome.item {
            Some(item) => {
                let mut text = String::with_capacity(item.body.len() + 96);
                let etag = serde_json::to_string(&item.etag).expect("a string serializes");
                // Writing to a String cannot fail.
                let _ = write!(
                    text,
                    r#"{{"statusCode":{status},"requestCharge":{},"eTag":{etag}"#,
                    json!(charge_for(item.body.len(), true))
                );
                if !minimal || outcome.status == WriteStatus::Read {
                    text.push_str(r#","resourceBody":"#);
                    text.push_str(&item.body);
                }
                text.push('}');
                text
            }
            None => format!(
                r#"{{"statusCode":{status},"requestCharge":{}}}"#,
                json!(charge_for(0, true))
            ),
        };
        ResultJson { text, ok: true }
    }

    fn failure(error: &StoreError) -> Self {
        let value = json!({
            "statusCode": store_error_status(error),
            "requestCharge": 1.0,
            "subStatusCode": match error {
                StoreError::PartitionKeyMismatch { .. } => substatus::PARTITION_KEY_MISMATCH,
                _ => 0,
            },
            "message": error.to_string(),
        });
        ResultJson {
            text: value.to_string(),
            ok: false,
        }
    }

    fn not_applied() -> Self {
        ResultJson {
            text: json!({"statusCode": 424, "requestCharge": 0.0, "message": "The operation was not applied because another operation in the batch failed."}).to_string(),
            ok: false,
        }
    }

    fn of_transaction(result: &OperationResult, minimal: bool) -> Self {
        match result {
            OperationResult::Done(outcome) => ResultJson::success(outcome, minimal),
            OperationResult::Failed(error) => ResultJson::failure(error),
            OperationResult::NotApplied => ResultJson::not_applied(),
        }
    }
}

/// The response body: the results as one JSON array, in operation order.
fn results_array(results: &[ResultJson]) -> String {
    let mut text =
        String::with_capacity(results.iter().map(|r| r.text.len() + 1).sum::<usize>() + 2);
    text.push('[');
    for (index, result) in results.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&result.text);
    }
    text.push(']');
    text
}

/// Runs a batch request.
pub(crate) async fn batch(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<Reply, ApiError> {
    crate::routes::triggers::refuse_on(request, "batch or bulk requests")?;
    if request.body.len() > MAX_BATCH_BODY_BYTES {
        return Err(ApiError::new(
            413,
            format!(
                "Request size is too large: the batch body has {} bytes, at most {MAX_BATCH_BODY_BYTES} are allowed.",
                request.body.len()
            ),
        ));
    }
    let Value::Array(operations) = request.json()? else {
        return Err(ApiError::bad_request(
            "a batch body must be a JSON array of operations",
        ));
    };
    if operations.is_empty() {
        return Err(ApiError::bad_request("Batch request has no operations."));
    }
    if operations.len() > MAX_BATCH_OPERATIONS {
        return Err(ApiError::bad_request(format!(
            "Batch request has more operations than what is supported. It has {}, at most {MAX_BATCH_OPERATIONS} are allowed.",
            operations.len()
        )));
    }
    let operations = operations
        .into_iter()
        .enumerate()
        .map(|(index, value)| parse_operation(index, value))
        .collect::<Result<Vec<_>, _>>()?;
    let atomic = match request.header(headers::X_MS_COSMOS_BATCH_ATOMIC) {
        None => true,
        Some(_) => request.flag(headers::X_MS_COSMOS_BATCH_ATOMIC)?,
    };
    let minimal = request.prefers_minimal();
    crate::session::check_request_token(state, request, database, container)?;
    let session_scope = match request.partition_key()? {
        Some(key) => tributary_store::FeedScope::PartitionKey(key),
        None => tributary_store::FeedScope::Container,
    };
    let mut lsn = None;
    let results: Vec<ResultJson> = if atomic {
        let partition_key = request.partition_key()?.ok_or_else(|| {
            ApiError::bad_request(format!(
                "a transactional batch needs the '{}' header",
                headers::X_MS_DOCUMENTDB_PARTITIONKEY
            ))
        })?;
        let definition = state.store.partition_key_definition(database, container)?;
        if partition_key.is_prefix_of(&definition)
            || partition_key.effective_partition_key(&definition).is_err()
        {
            return Err(ApiError::bad_request(PARTITION_KEY_MISMATCH));
        }
        let writes = operations.into_iter().map(|op| op.write).collect();
        let outcome = state
            .store
            .execute_batch(database, container, partition_key, writes)
            .await?;
        if outcome.committed {
            lsn = first_written_lsn(&outcome.results);
        }
        outcome
            .results
            .iter()
            .map(|result| ResultJson::of_transaction(result, minimal))
            .collect()
    } else {
        // A bulk request: the operations are applied in request order, in one commit, each
        // on its own (one failing does not stop the others).
        let header_key = request.partition_key()?;
        let writes = operations
            .into_iter()
            .map(|operation| {
                let mut write = operation.write;
                if write.partition_key.is_none() {
                    write.partition_key = header_key.clone();
                }
                write
            })
            .collect();
        state
            .store
            .write_items(database, container, writes)
            .await?
            .iter()
            .map(|result| match result {
                Ok(outcome) => ResultJson::success(outcome, minimal),
                Err(error) => ResultJson::failure(error),
            })
            .collect()
    };
    let all_ok = results.iter().all(|result| result.ok);
    let reply = crate::session::with_session(
        Reply::json(if all_ok { 200 } else { 207 }, results_array(&results)),
        state,
        database,
        container,
        &session_scope,
        None,
    );
    Ok(match lsn {
        Some(lsn) => reply.header(LSN_HEADER, lsn.to_string()),
        None => reply,
    })
}

/// Runs Tributary's cross-container transaction ([`headers::X_TRIBUTARY_TRANSACTION`]): the
/// operations of a batch body, each in its own `database`/`container` (default: the URL's),
/// committed together or not at all.
pub(crate) async fn cross_container_transaction(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<Reply, ApiError> {
    crate::routes::triggers::refuse_on(request, "transactions")?;
    let Value::Array(operations) = request.json()? else {
        return Err(ApiError::bad_request(
            "a transaction body must be a JSON array of operations",
        ));
    };
    if operations.is_empty() {
        return Err(ApiError::bad_request("the transaction has no operations"));
    }
    if operations.len() > headers::MAX_TRIBUTARY_TRANSACTION_OPERATIONS {
        return Err(ApiError::bad_request(format!(
            "the transaction has {} operations, at most {} are allowed",
            operations.len(),
            headers::MAX_TRIBUTARY_TRANSACTION_OPERATIONS
        )));
    }
    let mut parsed = Vec::with_capacity(operations.len());
    for (index, value) in operations.into_iter().enumerate() {
        let target = |key: &str, default: &str| -> Result<String, ApiError> {
            match value.get(key) {
                None | Some(Value::Null) => Ok(default.to_owned()),
                Some(Value::String(name)) if !name.is_empty() => Ok(name.clone()),
                Some(_) => Err(ApiError::bad_request(format!(
                    "transaction operation {index}: '{key}' must be a non-empty string"
                ))),
            }
        };
        let (database, container) = (
            target("database", database)?,
            target("container", container)?,
        );
        parsed.push(CrossDatabaseOperation {
            database,
            container,
            write: parse_operation(index, value)?.write,
        });
    }
    let outcome = state.store.transaction_across_databases(parsed).await?;
    let minimal = request.prefers_minimal();
    let results: Vec<ResultJson> = outcome
        .results
        .iter()
        .map(|result| ResultJson::of_transaction(result, minimal))
        .collect();
    Ok(Reply::json(
        if outcome.committed { 200 } else { 207 },
        results_array(&results),
    ))
}

/// The LSN a committed transactional batch reports: the first one it wrote.
///
/// The store gives each write of a transaction its own LSN, consecutive within the container
/// and committed atomically, where Cosmos DB commits the whole batch at one LSN. The first of
/// them is the one that follows the container's LSN before the batch, as on Cosmos DB: it is
/// the LSN of the first write that returns an item, minus the writes before it. A batch whose
/// writes are all deletes returns no item, so it has no LSN here.
fn first_written_lsn(results: &[OperationResult]) -> Option<u64> {
    results
        .iter()
        .filter_map(|result| match result {
            OperationResult::Done(outcome) if outcome.status != WriteStatus::Read => Some(outcome),
            _ => None,
        })
        .enumerate()
        .find_map(|(n_before, outcome)| {
            outcome
                .item
                .as_ref()
                .map(|item| item.lsn.saturating_sub(n_before as u64))
        })
}
