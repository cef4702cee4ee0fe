//! `.../colls/{c}/conflicts`: the conflicts feed. With one write region there are never any
//! conflicts, so the feed is always empty and every conflict id is unknown.

use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{Reply, RequestContext, X_MS_ITEM_COUNT, feed_body};

/// `GET .../conflicts` (read feed) and `POST .../conflicts` (query): an empty feed.
///
/// A query is held to the same rule as item queries: without a partition key it needs
/// `x-ms-documentdb-query-enablecrosspartition: true`.
pub(crate) fn list(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<Reply, ApiError> {
    let rid = state.store.read_container(database, container)?.rid;
    let is_query = request.method == axum::http::Method::POST;
    if is_query
        && request.partition_key()?.is_none()
        && !request.flag(headers::X_MS_DOCUMENTDB_QUERY_ENABLECROSSPARTITION)?
    {
        return Err(ApiError::bad_request(format!(
            "Cross partition query is required but disabled. Please set {}: true, specify {}, or revise your query to avoid this exception.",
            headers::X_MS_DOCUMENTDB_QUERY_ENABLECROSSPARTITION,
            headers::X_MS_DOCUMENTDB_PARTITIONKEY
        )));
    }
    Ok(Reply::json(200, feed_body(&rid, "Conflicts", &[])).header(X_MS_ITEM_COUNT, "0"))
}

/// `GET` or `DELETE .../conflicts/{id}`: 404, as no conflict ever exists.
pub(crate) fn no_conflict(
    state: &AppState,
    database: &str,
    container: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    state.store.read_container(database, container)?;
    Err(ApiError::not_found(format!(
        "Entity with the specified id does not exist in the system: no conflict '{id}' (a single-region account has no conflicts)"
    )))
}
