//! Header names, well-known header values, and parsers for header values.
//!
//! Names are lowercase, as HTTP/2 requires and as both SDKs compare them
//! (case-insensitively). Each constant says who sends or reads the header;
//! the project's wire notes (`cosmos-wire.md` §3.3, §3.4, §5.1, §8.2) give
//! the SDK source for each.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

// --- Sent by the SDKs on (almost) every request -------------------------------

/// The master-key token ([`crate::auth`]).
pub const AUTHORIZATION: &str = "authorization";
/// The request time, RFC 1123; part of the signed payload.
pub const X_MS_DATE: &str = "x-ms-date";
/// The standard HTTP date; signed only by clients that omit `x-ms-date`.
pub const DATE: &str = "date";
/// The REST API version; both SDKs send [`values::API_VERSION`].
pub const X_MS_VERSION: &str = "x-ms-version";
/// A per-request id; the server echoes it in the response.
pub const X_MS_ACTIVITY_ID: &str = "x-ms-activity-id";
/// `application/json` from both SDKs.
pub const ACCEPT: &str = "accept";
/// `application/json`, `application/query+json` (queries) or
/// `application/json-patch+json` (patch).
pub const CONTENT_TYPE: &str = "content-type";
/// `no-cache` from both SDKs.
pub const CACHE_CONTROL: &str = "cache-control";
/// The client's user agent string.
pub const USER_AGENT: &str = "user-agent";
/// `Session`, `Eventual`, ...; Python sends the literal `None` when the
/// account omits `userConsistencyPolicy`.
pub const X_MS_CONSISTENCY_LEVEL: &str = "x-ms-consistency-level";
/// Session token(s), request and response ([`crate::session`]).
pub const X_MS_SESSION_TOKEN: &str = "x-ms-session-token";
/// `1` (partition merge supported), from both SDKs.
pub const X_MS_COSMOS_SDK_SUPPORTED_CAPABILITIES: &str = "x-ms-cosmos-sdk-supportedcapabilities";
/// The container `_rid` the Python SDK expects to be talking to.
pub const X_MS_COSMOS_INTENDED_COLLECTION_RID: &str = "x-ms-cosmos-intended-collection-rid";
/// A per-client id (Python).
pub const X_MS_CLIENT_ID: &str = "x-ms-client-id";
/// Resource type hint for thin-client proxies (Python); ignorable.
pub const X_MS_THINCLIENT_PROXY_RESOURCE_TYPE: &str = "x-ms-thinclient-proxy-resource-type";
/// Operation type hint for thin-client proxies (Python); ignorable.
pub const X_MS_THINCLIENT_PROXY_OPERATION_TYPE: &str = "x-ms-thinclient-proxy-operation-type";
/// Request priority (`Low` / `High`); ignorable.
pub const X_MS_COSMOS_PRIORITY_LEVEL: &str = "x-ms-cosmos-priority-level";

// --- Items, partitioning, paging --------------------------------------------

/// The partition key as a JSON array: `["p1"]`, `[{}]` (undefined), `[]` (empty).
pub const X_MS_DOCUMENTDB_PARTITIONKEY: &str = "x-ms-documentdb-partitionkey";
/// A partition key range id (`0`), for change feed and fan-out.
pub const X_MS_DOCUMENTDB_PARTITIONKEYRANGEID: &str = "x-ms-documentdb-partitionkeyrangeid";
/// Page size; `-1` or absent means the server's default ([`parse_max_item_count`]).
pub const X_MS_MAX_ITEM_COUNT: &str = "x-ms-max-item-count";
/// Opaque paging token, request and response.
pub const X_MS_CONTINUATION: &str = "x-ms-continuation";
/// `True`/`true` on an upsert ([`parse_bool_header`]).
pub const X_MS_DOCUMENTDB_IS_UPSERT: &str = "x-ms-documentdb-is-upsert";
/// How many seconds the resource token of a permission read or written should be valid for
/// (1 to 18000; 3600 when absent).
pub const X_MS_DOCUMENTDB_EXPIRY_SECONDS: &str = "x-ms-documentdb-expiry-seconds";
/// `If-Match: <etag>` or `*`: conditional write (412 on mismatch).
pub const IF_MATCH: &str = "if-match";
/// `If-None-Match`: conditional read; for the change feed, where to start.
pub const IF_NONE_MATCH: &str = "if-none-match";
/// `If-Modified-Since`: change feed start time (RFC 1123).
pub const IF_MODIFIED_SINCE: &str = "if-modified-since";
/// `return=minimal` asks for no response body on writes.
pub const PREFER: &str = "prefer";

// --- Server-side scripts ----------------------------------------------------

/// `true` asks for a stored procedure's `console.log` output in the response.
pub const X_MS_DOCUMENTDB_SCRIPT_ENABLE_LOGGING: &str = "x-ms-documentdb-script-enable-logging";
/// A stored procedure's `console.log` output, URL-encoded (response).
pub const X_MS_DOCUMENTDB_SCRIPT_LOG_RESULTS: &str = "x-ms-documentdb-script-log-results";
/// The pre-triggers to run on an item write, by id, comma-separated.
pub const X_MS_DOCUMENTDB_PRE_TRIGGER_INCLUDE: &str = "x-ms-documentdb-pre-trigger-include";
/// The post-triggers to run on an item write, by id, comma-separated.
pub const X_MS_DOCUMENTDB_POST_TRIGGER_INCLUDE: &str = "x-ms-documentdb-post-trigger-include";

// --- Queries --------------------------------------------------------------------

/// `True`/`true` on a query `POST`.
pub const X_MS_DOCUMENTDB_ISQUERY: &str = "x-ms-documentdb-isquery";
/// `true` on every Node request.
pub const X_MS_DOCUMENTDB_QUERY_ENABLECROSSPARTITION: &str =
    "x-ms-documentdb-query-enablecrosspartition";
/// `False` in Python's default headers.
pub const X_MS_DOCUMENTDB_QUERY_ISCONTINUATIONEXPECTED: &str =
    "x-ms-documentdb-query-iscontinuationexpected";
/// `1` on every Node request.
pub const X_MS_DOCUMENTDB_RESPONSECONTINUATIONTOKENLIMITINKB: &str =
    "x-ms-documentdb-responsecontinuationtokenlimitinkb";
/// `True` on a query-plan request.
pub const X_MS_COSMOS_IS_QUERY_PLAN_REQUEST: &str = "x-ms-cosmos-is-query-plan-request";
/// `1.0` (Python) or `1.4` (Node) on query-plan requests.
pub const X_MS_COSMOS_QUERY_VERSION: &str = "x-ms-cosmos-query-version";
/// Comma-separated query features the client can finish itself.
pub const X_MS_COSMOS_SUPPORTED_QUERY_FEATURES: &str = "x-ms-cosmos-supported-query-features";
/// Activity id shared by the pages of one query.
pub const X_MS_COSMOS_CORRELATED_ACTIVITYID: &str = "x-ms-cosmos-correlated-activityid";

// --- Change feed ------------------------------------------------------------------

/// [`values::A_IM_INCREMENTAL_FEED`] or [`values::A_IM_FULL_FIDELITY_FEED`].
pub const A_IM: &str = "a-im";
/// [`values::CHANGE_FEED_WIRE_FORMAT_VERSION`], all-versions-and-deletes only.
pub const X_MS_COSMOS_CHANGEFEED_WIRE_FORMAT_VERSION: &str =
    "x-ms-cosmos-changefeed-wire-format-version";
/// Inclusive lower bound of an EPK sub-range.
pub const X_MS_START_EPK: &str = "x-ms-start-epk";
/// Exclusive upper bound of an EPK sub-range.
pub const X_MS_END_EPK: &str = "x-ms-end-epk";
/// [`values::READ_KEY_TYPE_EPK_RANGE`] when the EPK headers are sent.
pub const X_MS_READ_KEY_TYPE: &str = "x-ms-read-key-type";
/// Tributary's long-poll extension to the change feed: a number of milliseconds to wait for a
/// change before answering `304 Not Modified`. A Tributary server answers as soon as a commit
/// lands in the requested scope, waits at most [`MAX_TRIBUTARY_WAIT`] whatever is asked, and
/// answers `400` if the value is not a whole number. Azure Cosmos DB and the SDKs ignore it,
/// so a client that sends it still works (polling) against them.
pub const X_TRIBUTARY_WAIT_MS: &str = "x-tributary-wait-ms";
/// Tributary's cross-container transaction extension: `true` on a `POST .../docs` whose body
/// is a JSON array of operations in the shape of a transactional batch's, each of which may
/// name another `database` and `container` (default: the URL's). All of them commit or none,
/// in one store transaction, at most [`MAX_TRIBUTARY_TRANSACTION_OPERATIONS`]; the answer is a
/// batch's (200 with every result, or 207 with the failing operation's status and 424 for the
/// others). The functions host commits a batch's outputs with its lease checkpoint this way.
/// Azure Cosmos DB does not know it: never send it there.
pub const X_TRIBUTARY_TRANSACTION: &str = "x-tributary-transaction";
/// Most operations of one [`X_TRIBUTARY_TRANSACTION`] request.
pub const MAX_TRIBUTARY_TRANSACTION_OPERATIONS: usize = 10_000;
/// The longest [`X_TRIBUTARY_WAIT_MS`] wait a Tributary server honours; longer asks are cut to it.
pub const MAX_TRIBUTARY_WAIT: Duration = Duration::from_secs(60);
/// Tributary's change feed filter extension: a SQL condition over `c` (`c.status = 'shipped'`,
/// `WHERE c.total > 100`, or a whole `FROM c WHERE ...`) that a change must meet to be on the
/// page. The value is the condition's UTF-8 text, percent-encoded ([`encode_feed_filter`]:
/// `%`, control characters and every non-ASCII byte as `%XX`, so a plain-ASCII condition
/// without `%` may be sent as is); the server decodes it with [`decode_feed_filter`].
///
/// In latest-version mode the condition is evaluated on the document; in all-versions mode on
/// the `current` image of a create or replace, and a delete (TTL expirations included) always
/// passes ([`feed_filter_subject`]). A change the condition cannot be evaluated on passes, so
/// nothing is dropped by an evaluation error. The page's etag advances past every change
/// read, matching or not, and the answer carries [`X_TRIBUTARY_FILTERED_COUNT`]; a page where
/// nothing matched is a `304` with the advanced etag and a count above zero, which means
/// "read on at once". With [`X_TRIBUTARY_WAIT_MS`], a read whose new changes were all
/// filtered out waits on from past them until a matching change commits, the wait runs out,
/// or [`MAX_TRIBUTARY_FILTER_SCAN`] changes were read. A condition that does not parse is
/// answered `400` naming the filter. Azure Cosmos DB ignores the header: a client that sent it
/// and finds no [`X_TRIBUTARY_FILTERED_COUNT`] in the answer must filter the page itself.
pub const X_TRIBUTARY_FEED_FILTER: &str = "x-tributary-feed-filter";
/// In a change feed answer to a request with [`X_TRIBUTARY_FEED_FILTER`]: how many of the
/// changes read were left out by the filter (a whole number, `0` when all matched).
pub const X_TRIBUTARY_FILTERED_COUNT: &str = "x-tributary-filtered-count";
/// The most changes a Tributary server reads for one filtered change feed request that waits
/// ([`X_TRIBUTARY_WAIT_MS`]) before it answers with what it has (so a long backlog of
/// non-matching changes costs bounded work per request).
pub const MAX_TRIBUTARY_FILTER_SCAN: usize = 10_000;

// --- Transactional batch and bulk ------------------------------------------------

/// `True`/`true` on a batch or bulk `POST`.
pub const X_MS_COSMOS_IS_BATCH_REQUEST: &str = "x-ms-cosmos-is-batch-request";
/// `True` for a transactional batch, `false` for bulk.
pub const X_MS_COSMOS_BATCH_ATOMIC: &str = "x-ms-cosmos-batch-atomic";
/// `False` for a transactional batch, `true` for bulk.
pub const X_MS_COSMOS_BATCH_CONTINUE_ON_ERROR: &str = "x-ms-cosmos-batch-continue-on-error";

// --- Response headers read by the SDKs -------------------------------------------

/// Resource etag; for the change feed, the quoted LSN to resume after.
pub const ETAG: &str = "etag";
/// Integer sub-status of an error ([`crate::error::substatus`]).
pub const X_MS_SUBSTATUS: &str = "x-ms-substatus";
/// Back-off in milliseconds on a 429.
pub const X_MS_RETRY_AFTER_MS: &str = "x-ms-retry-after-ms";
/// `dbs/{db}/colls/{coll}`; Python needs it to record session tokens.
pub const X_MS_ALT_CONTENT_PATH: &str = "x-ms-alt-content-path";
/// The container `_rid`; Node needs it to record session tokens.
pub const X_MS_CONTENT_PATH: &str = "x-ms-content-path";
/// Request units charged; optional.
pub const X_MS_REQUEST_CHARGE: &str = "x-ms-request-charge";
/// Account storage quota, read by Python from `GET /`; optional.
pub const X_MS_MAX_MEDIA_STORAGE_USAGE_MB: &str = "x-ms-max-media-storage-usage-mb";
/// Account storage usage, read by Python from `GET /`; optional.
pub const X_MS_MEDIA_STORAGE_USAGE_MB: &str = "x-ms-media-storage-usage-mb";

/// Well-known header values.
pub mod values {
    /// The REST API version both SDKs send in `x-ms-version`.
    pub const API_VERSION: &str = "2020-07-15";
    /// `A-IM` for the latest-version change feed.
    pub const A_IM_INCREMENTAL_FEED: &str = "Incremental Feed";
    /// `A-IM` for the all-versions-and-deletes change feed.
    pub const A_IM_FULL_FIDELITY_FEED: &str = "Full-Fidelity Feed";
    /// `x-ms-cosmos-changefeed-wire-format-version` for all versions and deletes.
    pub const CHANGE_FEED_WIRE_FORMAT_VERSION: &str = "2021-09-15";
    /// `x-ms-read-key-type` when `x-ms-start-epk` / `x-ms-end-epk` are sent.
    pub const READ_KEY_TYPE_EPK_RANGE: &str = "EffectivePartitionKeyRange";
    /// `Prefer` value asking for no response body.
    pub const PREFER_RETURN_MINIMAL: &str = "return=minimal";
    /// `Content-Type` of a patch request.
    pub const CONTENT_TYPE_JSON_PATCH: &str = "application/json-patch+json";
    /// `Content-Type` of a query request.
    pub const CONTENT_TYPE_QUERY_JSON: &str = "application/query+json";
}

/// The largest page size [`parse_max_item_count`] accepts.
pub const MAX_ITEM_COUNT_LIMIT: usize = 1_000_000;

/// The latest instant an HTTP date can express: 9999-12-31 23:59:59 UTC.
const LAST_HTTP_DATE_SECS: u64 = 253_402_300_799;

/// Parses a boolean header: `true` or `false` in any case (Python sends
/// `True`, Node `true`), with surrounding whitespace ignored. Anything else
/// is `None`.
pub fn parse_bool_header(value: &str) -> Option<bool> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Parses `x-ms-max-item-count`. `-1` means "the server's default" and gives
/// `None`, as an absent header does; a count from 1 to
/// [`MAX_ITEM_COUNT_LIMIT`] gives `Some(count)`.
///
/// # Errors
///
/// [`HeaderError::InvalidMaxItemCount`] for anything else: not an integer,
/// `0`, a negative number other than `-1`, or more than the limit.
pub fn parse_max_item_count(value: &str) -> Result<Option<usize>, HeaderError> {
    let invalid = || HeaderError::InvalidMaxItemCount {
        value: crate::quoted_excerpt(value),
    };
    let count: i64 = value.trim().parse().map_err(|_| invalid())?;
    match count {
        -1 => Ok(None),
        1.. => match usize::try_from(count) {
            Ok(count) if count <= MAX_ITEM_COUNT_LIMIT => Ok(Some(count)),
            _ => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

/// Formats a time as an RFC 1123 HTTP date, `Tue, 01 Jul 2025 12:00:00 GMT`,
/// the form both SDKs send and read. Sub-second precision is dropped; times
/// outside what the format can express (before 1970, after the year 9999)
/// are clamped to its ends.
pub fn format_http_date(time: SystemTime) -> String {
    let clamped = match time.duration_since(UNIX_EPOCH) {
        Ok(since_epoch) if since_epoch.as_secs() <= LAST_HTTP_DATE_SECS => time,
        Ok(_) => UNIX_EPOCH + Duration::from_secs(LAST_HTTP_DATE_SECS),
        Err(_) => UNIX_EPOCH,
    };
    httpdate::fmt_http_date(clamped)
}

/// Parses an HTTP date: RFC 1123 (what the SDKs send), or the obsolete
/// RFC 850 and asctime forms HTTP also allows.
///
/// # Errors
///
/// [`HeaderError::InvalidHttpDate`] if the text is none of those forms, or
/// names an impossible date.
pub fn parse_http_date(value: &str) -> Result<SystemTime, HeaderError> {
    httpdate::parse_http_date(value.trim()).map_err(|_| HeaderError::InvalidHttpDate {
        value: crate::quoted_excerpt(value),
    })
}

/// The bytes [`encode_feed_filter`] percent-encodes besides every non-ASCII byte: control
/// characters (not allowed in a header value) and `%` itself.
const FEED_FILTER_ENCODED: &AsciiSet = &CONTROLS.add(b'%');

/// Encodes a change feed filter condition as an [`X_TRIBUTARY_FEED_FILTER`] value: `%`,
/// control characters and every non-ASCII byte of its UTF-8 text become `%XX`.
pub fn encode_feed_filter(condition: &str) -> String {
    utf8_percent_encode(condition, FEED_FILTER_ENCODED).to_string()
}

/// Decodes an [`X_TRIBUTARY_FEED_FILTER`] value into the condition's text (`%XX` sequences
/// become bytes; a `%` not followed by two hex digits stays as it is).
///
/// # Errors
///
/// [`HeaderError::InvalidFeedFilter`] if the decoded bytes are not UTF-8.
pub fn decode_feed_filter(value: &str) -> Result<String, HeaderError> {
    percent_decode_str(value)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| HeaderError::InvalidFeedFilter {
            value: crate::quoted_excerpt(value),
        })
}

/// What an [`X_TRIBUTARY_FEED_FILTER`] condition is evaluated on for one change of the
/// all-versions-and-deletes feed (wire format `2021-09-15`): the `current` image of a create
/// or replace; `None` for a delete (its `current` is empty), which always passes the filter.
/// In latest-version mode the change itself is the document the condition sees.
pub fn feed_filter_subject(change: &serde_json::Value) -> Option<&serde_json::Value> {
    let is_delete = change
        .pointer("/metadata/operationType")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|operation| operation.eq_ignore_ascii_case("delete"));
    if is_delete {
        return None;
    }
    change
        .get("current")
        .filter(|current| current.as_object().is_some_and(|fields| !fields.is_empty()))
}

/// A header value that does not parse.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// `x-ms-max-item-count` is not `-1` or a positive count within the limit.
    #[error(
        "invalid x-ms-max-item-count '{value}': expected -1 (server default) or an integer from 1 to {MAX_ITEM_COUNT_LIMIT}"
    )]
    InvalidMaxItemCount {
        /// The header value (at most 64 characters of it).
        value: String,
    },
    /// An `x-tributary-feed-filter` value does not decode to UTF-8 text.
    #[error(
        "invalid x-tributary-feed-filter '{value}': expected a SQL condition, percent-encoded UTF-8"
    )]
    InvalidFeedFilter {
        /// The header value (at most 64 characters of it).
        value: String,
    },
    /// A date header is not an HTTP date.
    #[error(
        "invalid HTTP date '{value}': expected RFC 1123 format, e.g. 'Tue, 01 Jul 2025 12:00:00 GMT'"
    )]
    InvalidHttpDate {
        /// The header value (at most 64 characters of it).
        value: String,
    },
}
