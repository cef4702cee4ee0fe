//! `GET .../docs`: the change feed (with `A-IM`) and the plain read feed (without).

use std::time::{Duration, UNIX_EPOCH};

use tributary_partition_key::{Epk, EpkRange};
use tributary_query::{Parameters, Query};
use tributary_store::{FeedMode, FeedPage, FeedRequest, FeedScope, FeedStart};
use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::request::{Reply, RequestContext, X_MS_ITEM_COUNT, charge_for, feed_body};
use crate::routes::paging::{PageToken, read_items_page};

/// Page size when the client does not set `x-ms-max-item-count`.
const DEFAULT_PAGE_ITEMS: usize = 100;

pub(crate) fn feed_scope(request: &RequestContext) -> Result<FeedScope, ApiError> {
    let range = match request.header(headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID) {
        Some(id) => Some(id.parse::<u32>().map_err(|_| {
            ApiError::bad_request(format!(
                "header '{}' must be a partition key range id, not '{id}'",
                headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID
            ))
        })?),
        None => None,
    };
    let epk = match (
        request.header(headers::X_MS_START_EPK),
        request.header(headers::X_MS_END_EPK),
    ) {
        (Some(start), Some(end)) => {
            let parse = |text: &str| {
                Epk::parse(text).map_err(|e| {
                    ApiError::bad_request(format!("invalid effective partition key '{text}': {e}"))
                })
            };
            Some(
                EpkRange::new(parse(start)?, parse(end)?)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?,
            )
        }
        (None, None) => None,
        _ => {
            return Err(ApiError::bad_request(format!(
                "'{}' and '{}' must be sent together",
                headers::X_MS_START_EPK,
                headers::X_MS_END_EPK
            )));
        }
    };
    Ok(match (range, epk, request.partition_key()?) {
        (Some(range), Some(epk), _) => FeedScope::RangePart { range, epk },
        (Some(range), None, _) => FeedScope::Range(range),
        (None, _, Some(key)) => FeedScope::PartitionKey(key),
        (None, Some(epk), None) => FeedScope::Epk(epk),
        (None, None, None) => FeedScope::Container,
    })
}

fn feed_start(request: &RequestContext) -> Result<FeedStart, ApiError> {
    match request.header(headers::IF_NONE_MATCH) {
        Some("*") => Ok(FeedStart::Now),
        Some(etag) => {
            let lsn = etag.trim_matches('"');
            lsn.parse::<u64>().map(FeedStart::AfterLsn).map_err(|_| {
                ApiError::bad_request(format!(
                    "If-None-Match must be '*' or a change feed etag (a quoted LSN such as \"42\"), not '{etag}'"
                ))
            })
        }
        None => match request.header(headers::IF_MODIFIED_SINCE) {
            Some(date) => {
                let time = tributary_wire::headers::parse_http_date(date)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                let ms = time
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64);
                Ok(FeedStart::PointInTime(ms))
            }
            None => Ok(FeedStart::Beginning),
        },
    }
}

/// The change feed: `A-IM: Incremental Feed` or `Full-Fidelity Feed`.
pub(crate) async fn change_feed(
    state: &AppState,
    request: &RequestContext,
    a_im: &str,
    database: &str,
    container: &str,
) -> Result<Reply, ApiError> {
    let mode = if a_im.eq_ignore_ascii_case(headers::values::A_IM_INCREMENTAL_FEED) {
        FeedMode::LatestVersion
    } else if a_im.eq_ignore_ascii_case(headers::values::A_IM_FULL_FIDELITY_FEED) {
        FeedMode::AllVersionsAndDeletes
    } else {
        return Err(ApiError::bad_request(format!(
            "A-IM must be '{}' or '{}', not '{a_im}'",
            headers::values::A_IM_INCREMENTAL_FEED,
            headers::values::A_IM_FULL_FIDELITY_FEED
        )));
    };
    crate::session::check_request_token(state, request, database, container)?;
    let feed_request = FeedRequest {
        scope: feed_scope(request)?,
        start: feed_start(request)?,
        mode,
        max_items: request.max_item_count(DEFAULT_PAGE_ITEMS)?,
    };
    // Tributary's long-poll extension: wait for a change before answering 304. Plain SDK
    // requests do not send it and get the standard immediate answer.
    let wait = match request.header(headers::X_TRIBUTARY_WAIT_MS) {
        Some(ms) => Duration::from_millis(ms.trim().parse().map_err(|_| {
            ApiError::bad_request(format!(
                "header '{}' must be a whole number of milliseconds (waits longer than {} ms are cut to that)",
                headers::X_TRIBUTARY_WAIT_MS,
                headers::MAX_TRIBUTARY_WAIT.as_millis()
            ))
        })?)
        .min(headers::MAX_TRIBUTARY_WAIT)
        .min(state.request_timeout / 2),
        None => Duration::ZERO,
    };
    let filter = feed_filter(request)?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut page = read_page(state, database, container, &feed_request, wait).await?;
    // Tributary's filter extension: keep the changes that match. The etag still moves past
    // every change read, so changes filtered out are passed over for good. A waiting read
    // whose new changes all failed the filter reads (and waits) on from past them, within
    // its wait and a bounded number of changes read.
    let mut n_filtered = 0;
    if let Some(filter) = &filter {
        let mut n_read = 0;
        loop {
            let n_page = page.changes.len();
            n_read += n_page;
            page.changes.retain(|change| passes(filter, mode, change));
            n_filtered += n_page - page.changes.len();
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if !page.changes.is_empty()
                || n_page == 0
                || remaining.is_zero()
                || n_read >= headers::MAX_TRIBUTARY_FILTER_SCAN
            {
                break;
            }
            let next = FeedRequest {
                start: FeedStart::AfterLsn(page.lsn),
                ..feed_request.clone()
            };
            page = read_page(state, database, container, &next, remaining).await?;
        }
    }
    let etag = format!("\"{}\"", page.lsn);
    let mut reply = if page.is_empty() {
        Reply::empty(304)
            .header(headers::ETAG, &etag)
            .header(X_MS_ITEM_COUNT, "0")
    } else {
        let rid = state.store.container_position(database, container)?.0;
        let n_bytes: usize = page.changes.iter().map(String::len).sum();
        state.metrics.served_feed_items(page.changes.len());
        Reply::json(200, feed_body(&rid, "Documents", &page.changes))
            .header(headers::ETAG, &etag)
            .header(X_MS_ITEM_COUNT, page.changes.len().to_string())
            .charge(charge_for(n_bytes, false))
    };
    reply = crate::session::with_session(
        reply,
        state,
        database,
        container,
        &feed_request.scope,
        Some(page.high_lsn),
    );
    if filter.is_some() {
        reply = reply.header(headers::X_TRIBUTARY_FILTERED_COUNT, n_filtered.to_string());
    }
    Ok(reply)
}

/// One page of the feed, waiting up to `wait` for a change when there is nothing new.
async fn read_page(
    state: &AppState,
    database: &str,
    container: &str,
    request: &FeedRequest,
    wait: Duration,
) -> Result<FeedPage, ApiError> {
    Ok(if wait.is_zero() {
        crate::routes::off_worker(state, || {
            state.store.read_feed(database, container, request)
        })
        .await?
    } else {
        state
            .store
            .read_feed_wait(database, container, request, wait)
            .await?
    })
}

/// Most characters of a filter quoted in an error message.
const MAX_QUOTED_FILTER_CHARS: usize = 200;

/// The request's `x-tributary-feed-filter`, decoded and parsed once.
fn feed_filter(request: &RequestContext) -> Result<Option<Query>, ApiError> {
    let Some(value) = request.headers.get(headers::X_TRIBUTARY_FEED_FILTER) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| {
        ApiError::bad_request(format!(
            "header '{}' must be ASCII: percent-encode the condition's UTF-8 text",
            headers::X_TRIBUTARY_FEED_FILTER
        ))
    })?;
    let condition = headers::decode_feed_filter(value.trim())
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    Query::parse_filter(&condition).map(Some).map_err(|error| {
        let mut quoted: String = condition.chars().take(MAX_QUOTED_FILTER_CHARS).collect();
        if quoted.len() < condition.len() {
            quoted.push_str("...");
        }
        ApiError::bad_request(format!(
            "the change feed filter '{quoted}' (header '{}') is not a valid SQL condition: {error}",
            headers::X_TRIBUTARY_FEED_FILTER
        ))
    })
}

/// Whether a change (JSON text) passes the filter: the document in latest-version mode; in
/// all-versions mode the `current` image, with deletes always passing
/// ([`headers::feed_filter_subject`]). A change the filter cannot be evaluated on passes, so
/// no change is dropped by an evaluation error.
fn passes(filter: &Query, mode: FeedMode, change: &str) -> bool {
    let Ok(document) = serde_json::from_str::<serde_json::Value>(change) else {
        return true;
    };
    let subject = match mode {
        FeedMode::LatestVersion => Some(&document),
        FeedMode::AllVersionsAndDeletes => headers::feed_filter_subject(&document),
    };
    subject.is_none_or(|subject| {
        tributary_query::matches(filter, &Parameters::new(), subject).unwrap_or_else(|error| {
            tracing::debug!(%error, "a change feed filter failed on a change; the change passes");
            true
        })
    })
}

/// The read feed: every live item of the scope, paged with `x-ms-continuation` (each page
/// reads on from where the last ended).
pub(crate) fn read_feed(
    state: &AppState,
    request: &RequestContext,
    database: &str,
    container: &str,
) -> Result<Reply, ApiError> {
    let scope = feed_scope(request)?;
    let page_size = request.max_item_count(DEFAULT_PAGE_ITEMS)?;
    let (after, _) = PageToken::position(request.header(headers::X_MS_CONTINUATION))?;
    let page = read_items_page(
        &state.store,
        (database, container),
        (&scope, after),
        None,
        page_size,
        None,
        |body| Ok(vec![body.to_owned()]),
    )?;
    let rid = state.store.container_position(database, container)?.0;
    let mut reply = Reply::json(200, feed_body(&rid, "Documents", &page.entries))
        .header(X_MS_ITEM_COUNT, page.entries.len().to_string());
    if let Some(next) = page.next {
        let token = PageToken::After {
            after: next,
            seen: 0,
        };
        reply = reply.header(headers::X_MS_CONTINUATION, token.encode());
    }
    Ok(reply)
}
