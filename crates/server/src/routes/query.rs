//! `POST .../docs` with `x-ms-documentdb-isquery`: SQL queries, run fully on the server.

use serde_json::Value;
use tributary_query::{Parameters, Query};
use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{Reply, RequestContext, X_MS_ITEM_COUNT, charge_for, feed_body};
use crate::routes::feed::{decode_offset, encode_offset};

/// Page size when the client does not set `x-ms-max-item-count`.
const DEFAULT_PAGE_ITEMS: usize = 100;

/// The query text and parameters of a request body (`{"query", "parameters"}` or a string).
fn parse_body(request: &RequestContext) -> Result<(Query, Parameters), ApiError> {
    let body = request.json()?;
    let (text, parameters) = match &body {
        Value::String(text) => (text.as_str(), None),
        Value::Object(object) => (
            object
                .get("query")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad_request("the query body needs a string 'query'"))?,
            object.get("parameters"),
        ),
        _ => {
            return Err(ApiError::bad_request(
                "the query body must be {\"query\": ..., \"parameters\": [...]}",
            ));
        }
    };
    let query = Query::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let parameters = match parameters {
        None | Some(Value::Null) => Parameters::new(),
        Some(array) => {
            Parameters::from_json(array).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
    };
    Ok((query, parameters))
}

/// Runs the request's query over `values` (used for queries on offers, databases, containers).
pub(crate) fn run_over(
    request: &RequestContext,
    values: Vec<Value>,
) -> Result<Vec<Value>, ApiError> {
    let (query, parameters) = parse_body(request)?;
    tributary_query::execute(&query, &parameters, values.iter())
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Queries a container's items; results are paged with `x-ms-continuation`.
pub(crate) fn query_items(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<Reply, ApiError> {
    if request.flag(headers::X_MS_COSMOS_IS_QUERY_PLAN_REQUEST)? {
        return Err(ApiError::bad_request(
            "this server does not hand out query plans: it runs every query completely, so send the query itself",
        ));
    }
    let (query, parameters) = parse_body(request)?;
    let scope = crate::routes::feed::feed_scope(request)?;
    let items = state.store.scan_items(database, container, &scope)?;
    let n_bytes: usize = items.iter().map(String::len).sum();
    let documents: Vec<Value> = items
        .iter()
        .map(|text| serde_json::from_str(text))
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::new(500, format!("a stored item is not JSON: {e}")))?;
    let results = tributary_query::execute(&query, &parameters, documents.iter())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let page_size = request.max_item_count(DEFAULT_PAGE_ITEMS)?;
    let offset = match request.header(headers::X_MS_CONTINUATION) {
        Some(token) => decode_offset(token)?,
        None => 0,
    };
    let page: Vec<String> = results
        .iter()
        .skip(offset)
        .take(page_size)
        .map(Value::to_string)
        .collect();
    let next = offset + page.len();
    let rid = state.store.read_container(database, container)?.rid;
    let mut reply = Reply::json(200, feed_body(&rid, "Documents", &page))
        .header(X_MS_ITEM_COUNT, page.len().to_string())
        .charge(charge_for(n_bytes, false));
    if next < results.len() {
        reply = reply.header(headers::X_MS_CONTINUATION, encode_offset(next));
    }
    Ok(reply)
}
