//! The Explorer's view of a functions host running in the server's process (`tributary serve
//! --functions APP_DIR`): its functions with their counters and lag, their dead letters, and
//! replaying one.
//!
//! - `GET /_explorer/functions`: every function, or `"hosted": false` when no host runs here.
//! - `GET /_explorer/functions/{function}/deadletters`: the function's dead letters, oldest
//!   first (at most [`MAX_DEAD_LETTERS`]).
//! - `POST /_explorer/functions/{function}/deadletters/{id}/replay`: runs the function again on
//!   that dead letter; on success its outputs are written and the dead letter deleted.
//!
//! All are signed as requests on the database account (resource type and link empty, as the
//! SDKs sign `GET /`): the two reads with any of the four keys, the replay (it writes) with a
//! read-write key only. Resource tokens are not accepted.
//!
//! The server does not depend on the functions crate: the host is reached through the
//! [`FunctionsHost`] trait, which the binary implements over the running host and hands to
//! [`crate::Server::attach_functions_host`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::Method;
use axum::http::request::Parts;
use serde::Serialize;
use serde_json::{Value, json};
use tributary_wire::auth::ResourceAddress;

use crate::AppState;
use crate::error::ApiError;
use crate::request::Reply;

/// Most dead letters one listing answers (the oldest ones).
pub(crate) const MAX_DEAD_LETTERS: usize = 1_000;

/// A boxed future, as the [`FunctionsHost`] methods answer (the trait is used as a `dyn`).
pub type HostFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A functions host the Explorer can show.
pub trait FunctionsHost: Send + Sync {
    /// Every running function with its counters and lag, and the functions skipped.
    fn report(&self) -> HostFuture<'_, FunctionsReport>;

    /// The dead letters of `function`, oldest first.
    fn dead_letters<'a>(
        &'a self,
        function: &'a str,
    ) -> HostFuture<'a, Result<Vec<Value>, HostRefusal>>;

    /// Runs `function` again on its dead letter `id`.
    fn replay<'a>(
        &'a self,
        function: &'a str,
        id: &'a str,
    ) -> HostFuture<'a, Result<ReplayOutcome, HostRefusal>>;
}

/// Why the host could not answer.
#[derive(Debug, thiserror::Error)]
pub enum HostRefusal {
    /// No such function, or no such dead letter (a 404).
    #[error("{0}")]
    NotFound(String),
    /// The host could not reach what it needed, e.g. its dead-letter container (a 503).
    #[error("{0}")]
    Unavailable(String),
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// The function processed the item: outputs written, dead letter deleted.
    Replayed,
    /// The function failed again; the dead letter stays.
    FailedAgain(String),
}

/// Every function of the host.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionsReport {
    /// The functions running.
    pub functions: Vec<FunctionReport>,
    /// The functions not run, and why.
    pub skipped: Vec<SkippedReport>,
}

/// One running function.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionReport {
    /// Its name.
    pub name: String,
    /// Its processor (lease prefix) name.
    pub processor: String,
    /// The monitored container, `database/container`.
    pub source: String,
    /// Its lease container, `database/container`.
    pub lease_container: String,
    /// Its dead-letter container, `database/container`.
    pub dead_letter_container: String,
    /// Whether outputs commit with the checkpoint.
    pub exactly_once: bool,
    /// Invocations that succeeded.
    pub succeeded: u64,
    /// Invocations that failed (timeouts included).
    pub failed: u64,
    /// Invocations stopped after their timeout.
    pub timed_out: u64,
    /// Retries of failed invocations.
    pub retries: u64,
    /// Items sent to the dead-letter container.
    pub dead_lettered: u64,
    /// Changes handed to the function.
    pub changes: u64,
    /// Changes skipped by its filter.
    pub filtered: u64,
    /// Its leases with their lag (empty if the estimate failed).
    pub leases: Vec<LeaseReport>,
}

/// One lease of a function, as its estimator sees it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseReport {
    /// The lease token.
    pub token: String,
    /// The owning host, if any.
    pub owner: Option<String>,
    /// Changes after its checkpoint.
    pub pending: u64,
    /// Whether `pending` is an exact count.
    pub exact: bool,
    /// Seconds since the oldest pending change was made.
    pub oldest_pending_age_s: Option<u64>,
    /// Consecutive failed batches.
    pub consecutive_failures: u32,
    /// The last handler error of a failing lease.
    pub last_error: Option<String>,
}

/// A function the host does not run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedReport {
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// Answers a path under `/_explorer/functions` (`rest` is what follows it).
///
/// # Errors
/// 401/403 for the signature (a replay needs a read-write key); 404 for an unknown path,
/// function or dead letter, or for dead letters and replays when no host runs here; 405 for
/// a wrong verb; 400 for a query string; 503 when the host cannot reach its containers.
pub(super) async fn serve(
    state: &Arc<AppState>,
    parts: &Parts,
    rest: &str,
) -> Result<Reply, ApiError> {
    let segments = decode(rest)?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (verb, answer) = match segments.as_slice() {
        [] => (Method::GET, Route::Report),
        [function, "deadletters"] => (Method::GET, Route::DeadLetters { function }),
        [function, "deadletters", id, "replay"] => (Method::POST, Route::Replay { function, id }),
        _ => {
            return Err(ApiError::not_found(format!(
                "the Explorer has no functions path '{rest}': it has /_explorer/functions, /_explorer/functions/{{function}}/deadletters and /_explorer/functions/{{function}}/deadletters/{{id}}/replay"
            )));
        }
    };
    if parts.method != verb {
        return Err(ApiError::new(
            405,
            format!(
                "{} is not supported on {}: use {verb}",
                parts.method,
                parts.uri.path()
            ),
        ));
    }
    let account = ResourceAddress {
        resource_type: String::new(),
        resource_link: String::new(),
    };
    let signer = crate::verify_master_key(state, &parts.method, &account, &parts.headers)?;
    if verb == Method::POST && signer.is_read_only() {
        return Err(ApiError::new(
            403,
            format!(
                "The request was signed with the {signer} ({}), and read-only keys cannot write: a replay writes the function's outputs and deletes the dead letter. Sign it with a read-write key.",
                signer.azure_name()
            ),
        ));
    }
    if parts.uri.query().is_some_and(|query| !query.is_empty()) {
        return Err(ApiError::bad_request(
            "the functions endpoints take no parameters",
        ));
    }
    let host = state.functions_host.get();
    let body = match (answer, host) {
        (Route::Report, None) => json!({"hosted": false, "functions": [], "skipped": []}),
        (Route::Report, Some(host)) => {
            let report = host.report().await;
            json!({"hosted": true, "functions": report.functions, "skipped": report.skipped})
        }
        (_, None) => {
            return Err(ApiError::not_found(
                "no functions host runs in this server: start it with `tributary serve --functions APP_DIR`",
            ));
        }
        (Route::DeadLetters { function }, Some(host)) => {
            let mut dead_letters = host.dead_letters(function).await.map_err(refusal)?;
            let truncated = dead_letters.len() > MAX_DEAD_LETTERS;
            dead_letters.truncate(MAX_DEAD_LETTERS);
            json!({"function": function, "deadLetters": dead_letters, "truncated": truncated})
        }
        (Route::Replay { function, id }, Some(host)) => {
            match host.replay(function, id).await.map_err(refusal)? {
                ReplayOutcome::Replayed => {
                    json!({"function": function, "id": id, "replayed": true})
                }
                ReplayOutcome::FailedAgain(error) => {
                    json!({"function": function, "id": id, "replayed": false, "error": error})
                }
            }
        }
    };
    Ok(Reply::json(200, body.to_string())
        .header("cache-control", "no-store")
        .header("x-content-type-options", "nosniff"))
}

/// What a functions path asks for.
enum Route<'a> {
    Report,
    DeadLetters { function: &'a str },
    Replay { function: &'a str, id: &'a str },
}

fn refusal(refusal: HostRefusal) -> ApiError {
    match refusal {
        HostRefusal::NotFound(message) => ApiError::not_found(message),
        HostRefusal::Unavailable(message) => ApiError::new(503, message),
    }
}

/// The URL-decoded segments of `rest` (`""` or `/a/b...`).
fn decode(rest: &str) -> Result<Vec<String>, ApiError> {
    rest.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map(|decoded| decoded.into_owned())
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "the path segment '{segment}' is not percent-encoded UTF-8"
                    ))
                })
        })
        .collect()
}
