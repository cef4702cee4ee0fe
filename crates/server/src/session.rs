//! Session tokens: what a response tells the SDK to remember, and what a request's token
//! must hold.
//!
//! A response about items carries `x-ms-session-token` with one `{range}:-1#{lsn}` token per
//! feed range it touched, plus the headers the SDKs file tokens under: `x-ms-alt-content-path`
//! (`dbs/{db}/colls/{container}`), `x-ms-content-path` (the container's resource id) and, for
//! one range, `x-ms-documentdb-partitionkeyrangeid`. The Python SDK then sends a read the
//! token of the range the read's partition key maps to (and a single-range query that range's
//! only). LSNs are per container here, so one LSN is a valid position in every range.
//!
//! A request's token is checked: it must parse (else 400, as Cosmos DB answers), and no
//! range's LSN may be ahead of the container's highest committed LSN (else 404 with
//! sub-status 1002, "read session not available", which the SDKs retry): on one node every
//! committed write is visible, so a token ahead can only come from another incarnation of the
//! container or be forged.

use tributary_store::{FeedScope, SessionScope};
use tributary_wire::error::substatus;
use tributary_wire::headers;
use tributary_wire::session::{SessionToken, format_session_token_header};

use crate::AppState;
use crate::error::ApiError;
use crate::request::{Reply, RequestContext};

/// Adds the session headers of a response about `scope` of a container: tokens at `lsn`, or
/// at the container's highest LSN when `None`. A container gone meanwhile gets none.
pub(crate) fn with_session(
    reply: Reply,
    state: &AppState,
    database: &str,
    container: &str,
    scope: &FeedScope,
    lsn: Option<u64>,
) -> Reply {
    match state.store.session_scope(database, container, scope) {
        Ok(session) => session_headers(reply, database, container, &session, lsn),
        Err(_) => reply,
    }
}

/// The session headers for `session` (see [`with_session`]).
pub(crate) fn session_headers(
    reply: Reply,
    database: &str,
    container: &str,
    session: &SessionScope,
    lsn: Option<u64>,
) -> Reply {
    let lsn = lsn.unwrap_or(session.high_lsn);
    let tokens: Vec<SessionToken> = session
        .range_ids
        .iter()
        .map(|range| SessionToken::new(range.to_string(), lsn))
        .collect();
    let mut reply = reply
        .header(
            headers::X_MS_SESSION_TOKEN,
            format_session_token_header(&tokens),
        )
        .header(
            headers::X_MS_ALT_CONTENT_PATH,
            format!("dbs/{database}/colls/{container}"),
        )
        .header(headers::X_MS_CONTENT_PATH, &session.container_rid);
    if let [range] = session.range_ids.as_slice() {
        reply = reply.header(
            headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID,
            range.to_string(),
        );
    }
    reply
}

/// Checks a request's `x-ms-session-token` against the container (see the module docs).
///
/// # Errors
/// 400 for a token that does not parse; 404 with sub-status 1002 for one ahead of the
/// container.
pub(crate) fn check_request_token(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<(), ApiError> {
    let Some(value) = request.header(headers::X_MS_SESSION_TOKEN) else {
        return Ok(());
    };
    let tokens = tributary_wire::session::parse_session_token_header(value).map_err(|error| {
        ApiError::bad_request(format!("The session token provided is invalid: {error}"))
    })?;
    let high_lsn = state.store.container_position(database, container)?.1;
    if let Some(ahead) = tokens.iter().find(|token| token.global_lsn > high_lsn) {
        return Err(ApiError {
            status: 404,
            substatus: Some(substatus::READ_SESSION_NOT_AVAILABLE),
            additional_error_info: None,
            message: format!(
                "The read session is not available for the input session token: range {} is \
                 at LSN {} in the token, but container '{container}' has committed up to LSN \
                 {high_lsn} (a token of a deleted container of the same name?)",
                ahead.partition_key_range_id, ahead.global_lsn
            ),
        });
    }
    Ok(())
}
