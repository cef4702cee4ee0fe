//! Header names, well-known header values, and parsers for header values.
//!
//! Names are lowercase, as HTTP/2 requires and as both SDKs compare them
//! (case-insensitively). Each constant says who sends or reads the header;
//! the project's wire notes (`cosmos-wire.md` §3.3, §3.4, §5.1, §8.2) give
//! the SDK source for each.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
/// `If-Match: <etag>` or `*`: conditional write (412 on mismatch).
pub const IF_MATCH: &str = "if-match";
/// `If-None-Match`: conditional read; for the change feed, where to start.
pub const IF_NONE_MATCH: &str = "if-none-match";
/// `If-Modified-Since`: change feed start time (RFC 1123).
pub const IF_MODIFIED_SINCE: &str = "if-modified-since";
/// `return=minimal` asks for no response body on writes.
pub const PREFER: &str = "prefer";

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
/// The longest [`X_TRIBUTARY_WAIT_MS`] wait a Tributary server honours; longer asks are cut to it.
pub const MAX_TRIBUTARY_WAIT: Duration = Duration::from_secs(60);

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
    /// A date header is not an HTTP date.
    #[error(
        "invalid HTTP date '{value}': expected RFC 1123 format, e.g. 'Tue, 01 Jul 2025 12:00:00 GMT'"
    )]
    InvalidHttpDate {
        /// The header value (at most 64 characters of it).
        value: String,
    },
}
