//! `POST .../docs` with `x-ms-documentdb-isquery`: SQL queries, run fully on the server, and
//! the query plans an SDK asks for to run a query across partitions itself.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use serde_json::Value;
use tributary_index::Lookup;
use tributary_partition_key::{
    Epk, EpkRange, PartitionKey, PartitionKeyComponent, PartitionKeyDefinition, PartitionKeyKind,
    PartitionKeyVersion,
};
use tributary_query::{Merge, Parameters, Prefilter, Query, QueryPlan, UserFunctions};
use tributary_scripts::{ScriptLimits, UserDefinedFunctions};
use tributary_store::{ContainerProperties, FeedScope, RangeRecord, ScriptKind};
use tributary_wire::error::substatus;
use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{Reply, RequestContext, X_MS_ITEM_COUNT, charge_for, feed_body};
use crate::routes::index_metrics::{
    INDEX_UTILIZATION, IndexUtilization, POPULATE_INDEX_METRICS, SingleIndexUse,
};
use crate::routes::paging::{PageToken, WindowProgress, read_items_page};

/// Asks for [`QUERY_METRICS`] on a query response.
const POPULATE_QUERY_METRICS: &str = "x-ms-documentdb-populatequerymetrics";
/// Measurements of one query request, `key=value;...`: the documents read from the store
/// (count and bytes), the results on this page (count and bytes), the time spent, and the
/// index utilization ratio ([`index_utilization_ratio`]). A query answered item by item
/// reports what its page read; one run whole (`ORDER BY`, aggregates, ...) runs over its
/// whole scope on every page, and reports that; an index-only `COUNT` reads no document.
const QUERY_METRICS: &str = "x-ms-documentdb-query-metrics";

/// What counting one item pointer is charged as, in item bytes read: a pointer's key (the
/// container id, the item's EPK and id) and its value are about this size.
const COUNTED_POINTER_BYTES: usize = 64;

/// Page size when the client does not set `x-ms-max-item-count`.
const DEFAULT_PAGE_ITEMS: usize = 100;

/// The query text and parameters of a request body (`{"query", "parameters"}` or a string).
fn query_text(request: &RequestContext) -> Result<(String, Parameters), ApiError> {
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
    let parameters = match parameters {
        None | Some(Value::Null) => Parameters::new(),
        Some(array) => {
            Parameters::from_json(array).map_err(|e| ApiError::bad_request(e.to_string()))?
        }
    };
    Ok((text.to_owned(), parameters))
}

/// The parsed query and parameters of a request body.
fn parse_body(request: &RequestContext) -> Result<(Query, Parameters), ApiError> {
    let (text, parameters) = query_text(request)?;
    let query = Query::parse(&text).map_err(|e| ApiError::bad_request(e.to_string()))?;
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
        return query_plan(state, request, database, container);
    }
    let (text, parameters) = query_text(request)?;
    let scope = crate::routes::feed::feed_scope(request)?;
    crate::session::check_request_token(state, request, database, container)?;
    let properties = state.store.read_container(database, container)?;
    let query = container_query(&text, &properties)?;
    let functions = container_functions(state, database, container, &query)?;
    let spans_ranges = matches!(scope, FeedScope::Container) && properties.feed_ranges.len() > 1;
    let definition = &properties.definition.partition_key;
    let pinned = pinned_partition_key(&query, &parameters, &definition.paths);
    let pins_one_key = pinned
        .as_ref()
        .is_some_and(|key| !key.is_prefix_of(definition));
    if matches!(scope, FeedScope::Container)
        && !request.flag(headers::X_MS_DOCUMENTDB_QUERY_ENABLECROSSPARTITION)?
        && !pins_one_key
    {
        return Err(ApiError::bad_request(format!(
            "Cross partition query is required but disabled. Please set {}: true, specify {}, or revise your query to avoid this exception.",
            headers::X_MS_DOCUMENTDB_QUERY_ENABLECROSSPARTITION,
            headers::X_MS_DOCUMENTDB_PARTITIONKEY
        )));
    }
    if spans_ranges && query.has_aggregates() && !query.has_group_by() && !query.selects_value() {
        return Err(ApiError::bad_request(
            "Cross partition query only supports 'VALUE <AggregateFunc>' for aggregates.",
        ));
    }
    // Like the Cosmos DB gateway, hand an SDK the plan of a container-wide query whose
    // partitions' answers it must merge (it then queries each range itself), however many
    // ranges the container has; any other client gets the whole answer from the server.
    if matches!(scope, FeedScope::Container)
        && !pins_one_key
        && query.needs_full_scan()
        && !query.has_group_by()
        && request
            .header(headers::X_MS_COSMOS_SDK_SUPPORTED_CAPABILITIES)
            .is_some()
    {
        let plan =
            QueryPlan::new(&text, &parameters).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if plan.merge == Merge::Client {
            let plan = plan_json(&plan, pinned.as_ref(), definition)?;
            return Err(ApiError {
                status: 400,
                substatus: Some(substatus::CROSS_PARTITION_QUERY_NOT_SERVABLE),
                message: "The provided cross partition query can not be directly served by the \
                          gateway: its partitions' answers need a client-side merge, and \
                          additionalErrorInfo holds its query plan. Current SDKs handle this \
                          by querying each partition range themselves."
                    .to_owned(),
                additional_error_info: Some(plan.to_string()),
            });
        }
    }
    let count_pins = count_pins(&scope, pinned.as_ref(), definition);
    // A query whose filter fixes the partition key reads only that key's items; the
    // answer is the same, the checks above stay those of the scope the client asked for.
    let scan_scope = match (scope, pinned) {
        (FeedScope::Container, Some(key)) => FeedScope::PartitionKey(key),
        (scope, _) => scope,
    };
    // A filter the container's range index answers: the items it selects are read instead
    // of the whole scope (a partition key's items are already few, and read by key).
    let lookups = match scan_scope {
        FeedScope::PartitionKey(_) => Vec::new(),
        _ => query.index_lookups(&parameters),
    };
    let lookup = state
        .store
        .usable_lookup(database, container, &lookups)?
        .cloned();
    // `SELECT VALUE COUNT(1) FROM c` and its kin: the scope's item pointers counted.
    let n_counted = if query.counts_documents_only(&count_pins) {
        state.store.count_items(database, container, &scan_scope)?
    } else {
        None
    };
    let page_size = request.max_item_count(DEFAULT_PAGE_ITEMS)?;
    let token = request
        .header(headers::X_MS_CONTINUATION)
        .filter(|token| !is_other_containers_backend_token(token, &properties.rid));
    let started = Instant::now();
    // A `TOP` or `OFFSET ... LIMIT` over results that stream: each document runs without it,
    // and the pages count results against it, reading only as far as it reaches.
    let window = query.row_window(&parameters);
    let query = match window {
        Some(_) => query.without_row_window(),
        None => query,
    };
    // Items the filter rejects are told apart from their text, without parsing them whole.
    let prefilter = query.prefilter();
    let (page, next, n_read, n_read_bytes) = if let Some(n_items) = n_counted {
        // An index-only COUNT: its one result, the scope's item pointers counted.
        let offset = PageToken::offset(token)?;
        let page = std::iter::once(n_items.to_string())
            .skip(offset)
            .take(page_size)
            .collect();
        (page, None, 0, 0)
    } else if !query.answers_item_by_item() {
        let offset = PageToken::offset(token)?;
        // One clock for every run over the input, as one run over all of it would have.
        let now = std::time::SystemTime::now();
        let (documents, n_read, n_bytes) =
            match query.top_documents_query(&parameters, MAX_PICKED_DOCUMENTS) {
                Some(picker) => load_top_documents(
                    state,
                    (database, container),
                    (&scan_scope, lookup.as_ref()),
                    // Read in the query's order, it ends once its documents are found.
                    lookup
                        .as_ref()
                        .filter(|lookup| query.ordered_by_index(lookup))
                        .and_then(|_| picker.picked_documents()),
                    (&picker, &parameters, now, functions.as_ref()),
                    prefilter.as_ref(),
                )?,
                None => load_whole_input(
                    state,
                    (database, container),
                    (&scan_scope, lookup.as_ref()),
                    (prefilter.as_ref(), &parameters, now),
                )?,
            };
        let mut results = run_query(
            &query,
            &parameters,
            documents.iter(),
            now,
            functions.as_ref(),
        )?;
        if spans_ranges
            && results.is_empty()
            && query.selects_value()
            && query.has_aggregates()
            && !query.has_group_by()
        {
            // Across partitions, Cosmos DB answers each range and the SDK merges the
            // partial aggregates; over no input that merge gives one null (`[None]` in
            // Python), where one partition alone gives no row. Answer as the client would
            // see it from Cosmos DB.
            results.push(Value::Null);
        }
        let page: Vec<String> = results
            .iter()
            .skip(offset)
            .take(page_size)
            .map(Value::to_string)
            .collect();
        let next = offset + page.len();
        let next = (next < results.len()).then_some(PageToken::Offset(next));
        (page, next, n_read, n_bytes)
    } else {
        // Item by item: the page reads on from where the last ended and stops once full.
        // Across ranges it reads one range's span at a time and ends with it, as the
        // gateway's pages each hold one partition's results (an empty range included).
        let by_range = spans_ranges && matches!(scan_scope, FeedScope::Container);
        let (page_scope, after, span, seen) = if by_range {
            let (span, after, seen) = match PageToken::in_span(token)? {
                Some(resume) => resume,
                None => (range_span(&properties.feed_ranges, &Epk::min())?, None, 0),
            };
            (FeedScope::Epk(span.clone()), after, Some(span), seen)
        } else {
            let (after, seen) = PageToken::position(token)?;
            (scan_scope.clone(), after, None, seen)
        };
        let mut progress = window.map(|window| WindowProgress { window, seen });
        // One clock for the whole page, as one run over every document would have.
        let now = std::time::SystemTime::now();
        // Paging by index position needs each item met once (see `Lookup::may_repeat_items`).
        let page_lookup = lookup.as_ref().filter(|lookup| !lookup.may_repeat_items());
        let page = read_items_page(
            &state.store,
            (database, container),
            (&page_scope, after),
            page_lookup,
            page_size,
            progress.as_mut(),
            |body| {
                if !passes(prefilter.as_ref(), body, &parameters, now)? {
                    return Ok(Vec::new());
                }
                let document: Value = serde_json::from_str(body).map_err(stored_item_not_json)?;
                let results = run_query(&query, &parameters, [&document], now, functions.as_ref())?;
                Ok(results.iter().map(Value::to_string).collect())
            },
        )?;
        let seen = progress.map_or(0, |progress| progress.seen);
        let window_full = progress.is_some_and(|progress| progress.is_full());
        let next = match (span, page.next) {
            _ if window_full => None,
            (None, next) => next.map(|after| PageToken::After { after, seen }),
            (Some(span), Some(after)) => Some(PageToken::InSpan {
                span,
                after: Some(after),
                seen,
            }),
            (Some(span), None) if span.max == Epk::max() => None,
            (Some(span), None) => Some(PageToken::InSpan {
                span: range_span(&properties.feed_ranges, &span.max)?,
                after: None,
                seen,
            }),
        };
        (page.entries, next, page.n_read, page.n_read_bytes)
    };
    let executed = started.elapsed();
    let mut reply = crate::session::with_session(
        Reply::json(200, feed_body(&properties.rid, "Documents", &page)),
        state,
        database,
        container,
        &scan_scope,
        None,
    )
    .header(X_MS_ITEM_COUNT, page.len().to_string())
    .charge(charge_for(
        n_read_bytes + n_counted.map_or(0, counted_pointer_bytes),
        false,
    ));
    if let Some(next) = next {
        reply = reply.header(headers::X_MS_CONTINUATION, next.encode());
    }
    if request.flag(POPULATE_QUERY_METRICS)? {
        let output_bytes: usize = page.iter().map(String::len).sum();
        let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1000.0);
        reply = reply.header(
            QUERY_METRICS,
            format!(
                "retrievedDocumentCount={n_read};retrievedDocumentSize={n_read_bytes};outputDocumentCount={};outputDocumentSize={output_bytes};totalExecutionTimeInMs={};indexUtilizationRatio={:.2}",
                page.len(),
                ms(executed),
                index_utilization_ratio(page.len(), n_read),
            ),
        );
    }
    if request.flag(POPULATE_INDEX_METRICS)? {
        let mut utilization = IndexUtilization::of_scope(&scan_scope, definition);
        if let Some(lookup) = &lookup {
            utilization
                .utilized_single
                .push(SingleIndexUse::of_lookup(lookup));
        }
        reply = reply.header(INDEX_UTILIZATION, utilization.encode());
    }
    Ok(reply)
}

/// A container's user-defined functions, compiled for one query.
struct ContainerFunctions(UserDefinedFunctions);

impl UserFunctions for ContainerFunctions {
    fn call(&self, name: &str, arguments: &[Value]) -> Result<Option<Value>, String> {
        self.0
            .call(name, arguments)
            .map_err(|error| error.to_string())
    }
}

/// The user-defined functions `query` calls, compiled; `None` when it calls none.
///
/// # Errors
/// 404 naming a function the container does not have; 400 when one does not compile.
fn container_functions(
    state: &AppState,
    database: &str,
    container: &str,
    query: &Query,
) -> Result<Option<ContainerFunctions>, ApiError> {
    let names = query.user_function_names();
    if names.is_empty() {
        return Ok(None);
    }
    let kind = ScriptKind::UserDefinedFunction;
    let scripts = names
        .iter()
        .map(|name| state.store.read_script(database, container, kind, name))
        .collect::<Result<Vec<_>, _>>()?;
    let sources = scripts.iter().map(|script| {
        (
            script.definition.id.as_str(),
            script.definition.body.as_str(),
        )
    });
    let functions = UserDefinedFunctions::new(sources, ScriptLimits::default())
        .map_err(|error| crate::routes::scripts::script_error(kind, &names.join(", "), error))?;
    Ok(Some(ContainerFunctions(functions)))
}

/// Runs `query` over `documents`, calling `functions` for its `udf.name(...)` calls.
fn run_query<'a>(
    query: &Query,
    parameters: &Parameters,
    documents: impl IntoIterator<Item = &'a Value>,
    now: std::time::SystemTime,
    functions: Option<&ContainerFunctions>,
) -> Result<Vec<Value>, ApiError> {
    let results = match functions {
        Some(functions) => {
            tributary_query::execute_with_functions(query, parameters, documents, now, functions)
        }
        None => tributary_query::execute_at(query, parameters, documents, now),
    };
    results.map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A query of a container's items, parsed, with reads of the container's computed
/// properties turned into their expressions before anything looks at it (a computed property
/// named like the partition key path must not pin it).
pub(crate) fn container_query(
    text: &str,
    properties: &ContainerProperties,
) -> Result<Query, ApiError> {
    let query = Query::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(if properties.definition.computed_properties.is_empty() {
        query
    } else {
        query.with_computed_properties(&properties.definition.computed()?)
    })
}

/// `POST .../docs` with `x-ms-cosmos-is-query-plan-request`: the query's plan, as the
/// gateway hands it to an SDK that runs the query across partitions itself.
fn query_plan(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<Reply, ApiError> {
    let (text, parameters) = query_text(request)?;
    let plan =
        QueryPlan::new(&text, &parameters).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if plan.merge == Merge::ServerOnly {
        return Err(ApiError::bad_request(
            "this server hands out no plan for a query with GROUP BY, or with a SELECT VALUE \
             that is more than one aggregate: send the query itself and the server runs it \
             whole across partitions",
        ));
    }
    let properties = state.store.read_container(database, container)?;
    let query = container_query(&text, &properties)?;
    let definition = &properties.definition.partition_key;
    let pinned = pinned_partition_key(&query, &parameters, &definition.paths);
    Ok(Reply::json(
        200,
        plan_json(&plan, pinned.as_ref(), definition)?.to_string(),
    ))
}

/// A plan as the gateway writes it: `queryInfo` and the `queryRanges` (effective partition
/// key ranges) the query can reach: the pinned key's, or all.
fn plan_json(
    plan: &QueryPlan,
    pinned: Option<&PartitionKey>,
    definition: &PartitionKeyDefinition,
) -> Result<Value, ApiError> {
    let range = match pinned {
        Some(key) => key
            .epk_range(definition)
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => EpkRange::full(),
    };
    Ok(serde_json::json!({
        "partitionedQueryExecutionInfoVersion": 2,
        "queryInfo": plan.query_info(),
        "queryRanges": [{
            "min": range.min.as_str(),
            "max": range.max.as_str(),
            "isMinInclusive": true,
            "isMaxInclusive": false,
        }],
    }))
}

/// True for a continuation in Cosmos DB's backend format (`-RID:<container rid>#RT:...`)
/// that names another container. Cosmos DB ignores such a token and starts the query from the
/// beginning (the SDK suite's `test_query_with_static_continuation` sends one); a token in
/// that format naming this container was never minted here and stays a 400.
fn is_other_containers_backend_token(token: &str, container_rid: &str) -> bool {
    let Some(rest) = token.trim().trim_matches('"').strip_prefix("-RID:") else {
        return false;
    };
    let rid = rest.split('#').next().unwrap_or_default();
    let rid = rid.strip_prefix('~').unwrap_or(rid);
    rid.replace('/', "-") != container_rid
}

/// The span from `start` to the end of the current feed range that holds it. Spans cut this
/// way tile the key space in order whatever splits happen between pages, so a query paged
/// by them reads every item once.
fn range_span(ranges: &[RangeRecord], start: &Epk) -> Result<EpkRange, ApiError> {
    let bound = |hex: &str| {
        Epk::parse(hex)
            .map_err(|e| ApiError::new(500, format!("a stored range bound is not an EPK: {e}")))
    };
    for range in ranges {
        let (min, max) = (bound(&range.min)?, bound(&range.max)?);
        if min <= *start && *start < max {
            return EpkRange::new(start.clone(), max)
                .map_err(|e| ApiError::new(500, e.to_string()));
        }
    }
    Err(ApiError::new(
        500,
        format!(
            "no feed range holds the effective partition key '{}'",
            start.as_str()
        ),
    ))
}

/// Most rows an `ORDER BY` query's `TOP` or `OFFSET ... LIMIT` may keep for its documents
/// to be picked as the scope is read ([`load_top_documents`]); a larger window loads the
/// whole input.
const MAX_PICKED_DOCUMENTS: u64 = 10_000;

/// Reads the items of a scope for an `ORDER BY` query with a window, keeping only the
/// documents its rows can come from: every chunk of items read (a quarter of
/// [`crate::ServerConfig::max_query_input`]) is run with the candidates so far through
/// `picker` ([`tributary_query::Query::top_documents_query`]), so memory holds the candidates
/// and one chunk, not the scope. With `ordered_rows` (the items come in the query's order,
/// [`tributary_query::Query::ordered_by_index`], and it keeps that many), it picks every
/// `ordered_rows` items and stops reading once that many are picked. Returns the candidates
/// in order, and the items and bytes read.
///
/// # Errors
/// 400 when the candidates and a chunk together pass the limit, as for
/// [`load_whole_input`]; the picker's errors as 400s.
fn load_top_documents(
    state: &AppState,
    (database, container): (&str, &str),
    (scope, lookup): (&FeedScope, Option<&Lookup>),
    ordered_rows: Option<u64>,
    (picker, parameters, now, functions): (
        &Query,
        &Parameters,
        std::time::SystemTime,
        Option<&ContainerFunctions>,
    ),
    prefilter: Option<&Prefilter<'_>>,
) -> Result<(Vec<Value>, usize, usize), ApiError> {
    let chunk_limit = (state.max_query_input / 4).max(1);
    let mut candidates: Vec<Value> = Vec::new();
    let mut candidate_bytes = 0usize;
    let mut chunk: Vec<Value> = Vec::new();
    let mut chunk_bytes = 0usize;
    let pick = |candidates: &mut Vec<Value>, chunk: &mut Vec<Value>| {
        let input = candidates.iter().chain(chunk.iter());
        let picked = run_query(picker, parameters, input, now, functions)?;
        chunk.clear();
        *candidates = picked;
        Ok::<usize, ApiError>(candidates.iter().map(|c| c.to_string().len()).sum())
    };
    let (n_read, n_bytes) = visit_documents(
        state,
        (database, container),
        (scope, lookup),
        (prefilter, parameters, now),
        |document, size| {
            chunk_bytes += size;
            if candidate_bytes + chunk_bytes > state.max_query_input {
                return Err(whole_input_too_large(state));
            }
            chunk.push(document);
            let ordered_chunk_full =
                ordered_rows.is_some_and(|rows| chunk.len() as u64 >= rows.max(1));
            if chunk_bytes >= chunk_limit || ordered_chunk_full {
                (candidate_bytes, chunk_bytes) = (pick(&mut candidates, &mut chunk)?, 0);
                // Read in the query's order: no later document comes before the picked ones.
                if ordered_rows.is_some_and(|rows| candidates.len() as u64 >= rows) {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Ok(ControlFlow::Continue(()))
        },
    )?;
    pick(&mut candidates, &mut chunk)?;
    Ok((candidates, n_read, n_bytes))
}

/// Reads every item of a scope for a query that needs its whole input, up to
/// [`crate::ServerConfig::max_query_input`] bytes of stored JSON (counting the items its
/// prefilter, if any, lets through); returns them, the items read and their bytes.
///
/// # Errors
/// 400 past the limit, naming it and how to stay under it.
fn load_whole_input(
    state: &AppState,
    (database, container): (&str, &str),
    (scope, lookup): (&FeedScope, Option<&Lookup>),
    (prefilter, parameters, now): (Option<&Prefilter<'_>>, &Parameters, std::time::SystemTime),
) -> Result<(Vec<Value>, usize, usize), ApiError> {
    let mut documents = Vec::new();
    let mut n_kept_bytes = 0usize;
    let (n_read, n_bytes) = visit_documents(
        state,
        (database, container),
        (scope, lookup),
        (prefilter, parameters, now),
        |document, size| {
            n_kept_bytes += size;
            if n_kept_bytes > state.max_query_input {
                return Err(whole_input_too_large(state));
            }
            documents.push(document);
            Ok(ControlFlow::Continue(()))
        },
    )?;
    Ok((documents, n_read, n_bytes))
}

/// Visits the documents a query that needs its whole input reads: the items of `scope`
/// (those `lookup` selects through the container's range index, or every one) that pass the
/// prefilter, parsed, each with its stored size, until `visit` breaks or fails. Returns the
/// items read and their bytes.
///
/// # Errors
/// The store's errors, the prefilter's as 400s, and `visit`'s first error.
fn visit_documents(
    state: &AppState,
    (database, container): (&str, &str),
    (scope, lookup): (&FeedScope, Option<&Lookup>),
    (prefilter, parameters, now): (Option<&Prefilter<'_>>, &Parameters, std::time::SystemTime),
    mut visit: impl FnMut(Value, usize) -> Result<ControlFlow<()>, ApiError>,
) -> Result<(usize, usize), ApiError> {
    let (mut n_read, mut n_bytes) = (0usize, 0usize);
    let mut failure = None;
    let mut on_item = |body: &str| {
        n_read += 1;
        n_bytes += body.len();
        let step = passes(prefilter, body, parameters, now).and_then(|passed| {
            if !passed {
                return Ok(ControlFlow::Continue(()));
            }
            let document = serde_json::from_str(body).map_err(stored_item_not_json)?;
            visit(document, body.len())
        });
        step.unwrap_or_else(|error| {
            failure = Some(error);
            ControlFlow::Break(())
        })
    };
    match lookup {
        Some(lookup) => state.store.visit_indexed_items(
            database,
            container,
            scope,
            (lookup, None),
            |_, body| on_item(body),
        )?,
        None => state
            .store
            .visit_items(database, container, scope, None, |_, body| on_item(body))?,
    }
    match failure {
        Some(error) => Err(error),
        None => Ok((n_read, n_bytes)),
    }
}

/// Whether an item's text passes the query's prefilter (every item does without one).
fn passes(
    prefilter: Option<&Prefilter<'_>>,
    body: &str,
    parameters: &Parameters,
    now: std::time::SystemTime,
) -> Result<bool, ApiError> {
    match prefilter {
        Some(prefilter) => prefilter
            .matches_text(body, parameters, now)
            .map_err(|e| ApiError::bad_request(e.to_string())),
        None => Ok(true),
    }
}

/// The 400 for a query whose input passes [`crate::ServerConfig::max_query_input`].
fn whole_input_too_large(state: &AppState) -> ApiError {
    ApiError::bad_request(format!(
        "this query needs its whole input before it can answer (ORDER BY, an aggregate, \
         GROUP BY or DISTINCT), and its scope holds more than the {} MiB of items a query may \
         hold at once (--max-query-input-mib): narrow it to a partition key or a feed range, \
         add a TOP, or drop the clause and page through the results",
        state.max_query_input / (1024 * 1024)
    ))
}

fn stored_item_not_json(error: serde_json::Error) -> ApiError {
    ApiError::new(500, format!("a stored item is not JSON: {error}"))
}

/// The paths of the partition key a query's filter pinned, for
/// [`Query::counts_documents_only`]: when the filter narrowed a container-wide request to a
/// key, the items stored under that key are exactly those its pinning terms keep, so
/// counting them answers. Empty (no filter term may remain) when the request names its
/// scope, whose items the filter's terms would narrow further, and when the key's items
/// may include some its terms reject: under a V1 hash, which cuts strings to 100
/// characters (keys that differ after that share an EPK), and for an empty object, which
/// pins an undefined component that no `=` matches.
fn count_pins(
    scope: &FeedScope,
    pinned: Option<&PartitionKey>,
    definition: &PartitionKeyDefinition,
) -> Vec<Vec<String>> {
    let Some(key) = pinned else {
        return Vec::new();
    };
    let truncating_hash =
        definition.kind == PartitionKeyKind::Hash && definition.version == PartitionKeyVersion::V1;
    let exact = !truncating_hash && !key.0.contains(&PartitionKeyComponent::Undefined);
    if !matches!(scope, FeedScope::Container) || !exact {
        return Vec::new();
    }
    definition
        .paths
        .iter()
        .take(key.0.len())
        .filter_map(|path| tributary_partition_key::parse_path(path).ok())
        .collect()
}

/// `COUNTED_POINTER_BYTES` for each of `n_items` pointers counted.
fn counted_pointer_bytes(n_items: u64) -> usize {
    usize::try_from(n_items)
        .unwrap_or(usize::MAX)
        .saturating_mul(COUNTED_POINTER_BYTES)
}

/// `indexUtilizationRatio` in the query metrics: the share of the documents read that the
/// query kept, `n_output / n_retrieved` (at most 1: a `JOIN` gives a document several
/// results), and 1 when it read none (an index-only `COUNT`, or an empty scope).
fn index_utilization_ratio(n_output: usize, n_retrieved: usize) -> f64 {
    if n_retrieved == 0 {
        return 1.0;
    }
    (n_output as f64 / n_retrieved as f64).min(1.0)
}

/// The partition key (or hierarchical prefix) the query's filter fixes: the pinned values of
/// the key's paths in order, up to the first path it leaves free. `None` when it fixes none,
/// or a value no partition key can have.
fn pinned_partition_key(
    query: &Query,
    parameters: &Parameters,
    paths: &[String],
) -> Option<PartitionKey> {
    let components: Vec<Value> = paths
        .iter()
        .map_while(|path| {
            let segments = tributary_partition_key::parse_path(path).ok()?;
            query.pinned_value(&segments, parameters)
        })
        .collect();
    if components.is_empty() {
        return None;
    }
    PartitionKey::from_json(&Value::Array(components)).ok()
}
