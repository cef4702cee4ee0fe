//! `GET /_explorer/feed/dbs/{db}/colls/{coll}`: a container's change feed pushed as it
//! commits, as Server-Sent Events (`text/event-stream`).
//!
//! The request is signed exactly as a change feed read of the container (`GET`, resource type
//! `docs`, link `dbs/{db}/colls/{coll}`), with any of the account's keys, read-only ones too.
//! Query parameters, each at most once:
//!
//! * `start`: `now` (the default), `beginning`, or an RFC 3339 time such as
//!   `2026-12-03T10:00:00Z` (fractional seconds and a numeric offset allowed): the changes
//!   committed at or after it ([`FeedStart::PointInTime`]).
//! * `mode`: `latest-version` (the default) or `all-versions-and-deletes`, which the
//!   container's `changeFeedPolicy` must allow.
//! * `range`: one feed range by id (a `pkranges` id): [`FeedScope::Range`]. A range that does
//!   not exist is a 404 and one that was split a 410 before streaming; a range split while
//!   streaming ends the stream with an `error` event.
//! * `pk`: one logical partition, its key as JSON (`"customer-1"`, `42`, `null`, or an array
//!   such as `["a","b"]` for a hierarchical key, where a shorter array is a prefix):
//!   [`FeedScope::PartitionKey`], as the change feed route reads `x-ms-documentdb-partitionkey`.
//!   Its EPK span is computed from the container's partition key definition at each read, so
//!   the stream survives splits. A key that does not fit the definition is a 400.
//! * `heartbeat_ms`: how long a quiet stream waits before a heartbeat comment;
//!   [`DEFAULT_HEARTBEAT`], clamped to [`MIN_HEARTBEAT`]..=[`MAX_HEARTBEAT`].
//!
//! `range` and `pk` together are a 400; without either the stream reads the whole container
//! (every feed range: a feed position is one LSN per container).
//!
//! The stream's position is fixed before the response's headers are sent: a change committed
//! after a client has seen them is in the stream. It then reads its scope with
//! [`Store::read_feed_wait`], which a commit (or a split) wakes, and sends:
//!
//! ```text
//! event: open                       once: {"start", "mode", "range", "pk", "heartbeatMs"}
//! event: change                     one per change, its JSON as the change feed has it
//! : heartbeat                       after heartbeat_ms with no change
//! event: error                      {"code", "message"}, then the stream ends
//! ```
//!
//! In the `open` event `start` is the parameter as given (`now` by default), `range` the feed
//! range id or null, and `pk` the partition key as a JSON array or null.
//!
//! A stream ends when its client goes (its body is dropped, so the channel closes), when the
//! server stops, or after an error (the container deleted, its range split). At most
//! [`crate::ServerConfig::max_feed_streams`] run at once; past that the answer is 429. A slow client slows its stream: the channel holds
//! [`MAX_QUEUED_CHUNKS`] pages, and the next read waits for room.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::Method;
use axum::http::request::Parts;
use bytes::Bytes;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tributary_partition_key::PartitionKey;
use tributary_store::{FeedMode, FeedPage, FeedRequest, FeedScope, FeedStart, Store, StoreError};
use tributary_wire::auth::ResourceAddress;
use tributary_wire::error::ErrorBody;
use tributary_wire::headers;

use crate::AppState;
use crate::error::ApiError;
use crate::metrics::ServerMetrics;
use crate::request::Reply;

/// Most pages of events waiting for a slow client.
const MAX_QUEUED_CHUNKS: usize = 8;
/// Most changes read (and so sent in one chunk) at a time.
const PAGE_CHANGES: usize = 100;
/// How long a quiet stream waits before a heartbeat, unless told otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// The shortest heartbeat interval a client may ask for.
const MIN_HEARTBEAT: Duration = Duration::from_millis(100);
/// The longest heartbeat interval a client may ask for.
const MAX_HEARTBEAT: Duration = Duration::from_secs(60);
/// What a client past [`crate::ServerConfig::max_feed_streams`] is told to wait.
const RETRY_AFTER_MS: u32 = 5_000;

/// What the query string asks for.
struct StreamOptions {
    /// The whole container, one feed range, or one partition key.
    scope: FeedScope,
    start: FeedStart,
    /// `start` as given, for the `open` event.
    start_name: String,
    mode: FeedMode,
    mode_name: &'static str,
    heartbeat: Duration,
}

/// The 404 for a feed stream path that does not name a container.
fn not_a_container_path(parts: &Parts) -> ApiError {
    ApiError::not_found(format!(
        "the Explorer's feed stream is at /_explorer/feed/dbs/{{database}}/colls/{{container}}, not {}",
        parts.uri.path()
    ))
}

/// Checks the signature, fixes the position with a first read (so a missing container is a
/// 404 and a mode the container does not keep a 400, before any event), and starts the
/// stream.
///
/// # Errors
/// 401 or 403 for the signature, as on every request; 404 for a path that is not a
/// container's, or a container that does not exist; 400 for a bad parameter or a mode the
/// container's change feed policy does not allow; 405 for a verb other than GET; 429 past
/// [`crate::ServerConfig::max_feed_streams`].
pub(super) async fn open(
    state: &Arc<AppState>,
    parts: &Parts,
    container_path: &str,
) -> Result<Reply, ApiError> {
    let segments = crate::decode_segments(container_path)?;
    let [dbs, database, colls, container] = segments.as_slice() else {
        return Err(not_a_container_path(parts));
    };
    if dbs != "dbs" || colls != "colls" {
        return Err(not_a_container_path(parts));
    }
    if parts.method != Method::GET {
        return Err(ApiError::new(
            405,
            format!(
                "{} is not supported on the feed stream: open it with GET",
                parts.method
            ),
        ));
    }
    let address = ResourceAddress {
        resource_type: "docs".to_owned(),
        resource_link: format!("dbs/{database}/colls/{container}"),
    };
    // Any key may read the change feed, read-only keys too.
    crate::verify_master_key(state, &parts.method, &address, &parts.headers)?;
    let options = stream_options(parts.uri.query().unwrap_or_default())?;
    let Ok(permit) = Arc::clone(&state.feed_stream_permits).try_acquire_owned() else {
        let body = ErrorBody::new(
            429,
            format!(
                "the server has {} feed streams open, its limit; close one or retry later",
                state.max_feed_streams
            ),
        );
        return Ok(
            Reply::json(429, serde_json::to_string(&body).unwrap_or_default())
                .header(headers::X_MS_RETRY_AFTER_MS, RETRY_AFTER_MS.to_string()),
        );
    };
    let mut request = FeedRequest {
        scope: options.scope.clone(),
        start: options.start.clone(),
        mode: options.mode,
        max_items: PAGE_CHANGES,
    };
    let first_page = crate::routes::off_worker(state, || {
        state.store.read_feed(database, container, &request)
    })
    .await
    .map_err(scope_error)?;
    request.start = FeedStart::AfterLsn(first_page.lsn);
    let (chunks, receiver) = mpsc::channel(MAX_QUEUED_CHUNKS);
    let opened = event(
        "open",
        &json!({
            "start": options.start_name,
            "mode": options.mode_name,
            "range": match &options.scope {
                FeedScope::Range(id) => json!(id),
                _ => serde_json::Value::Null,
            },
            "pk": match &options.scope {
                FeedScope::PartitionKey(key) => key.to_json(),
                _ => serde_json::Value::Null,
            },
            "heartbeatMs": options.heartbeat.as_millis() as u64,
        })
        .to_string(),
    );
    let stream = Stream {
        store: Arc::clone(&state.store),
        metrics: Arc::clone(&state.metrics),
        database: database.clone(),
        container: container.clone(),
        request,
        heartbeat: options.heartbeat,
        chunks,
        stopping: state.stopping.subscribe(),
    };
    tokio::spawn(async move {
        let _permit = permit;
        stream.run(opened, first_page).await;
    });
    Ok(Reply::typed(
        200,
        "text/event-stream; charset=utf-8",
        axum::body::Body::new(ChannelBody { receiver }),
    )
    .header("cache-control", "no-store")
    .header("x-content-type-options", "nosniff"))
}

/// A failed read of a stream's scope, as the client is told it: a feed range split or
/// missing says to pick a current one, and a partition key that does not fit the container
/// names the `pk` parameter. Other errors as [`ApiError::from`] has them.
fn scope_error(error: StoreError) -> ApiError {
    let message = match &error {
        StoreError::RangeGone { .. } => format!(
            "{error}: the range was split; pick a current one from the container's feed ranges (pkranges)"
        ),
        StoreError::RangeNotFound(_) => {
            format!("{error}: pick one of the container's feed ranges (pkranges)")
        }
        StoreError::PartitionKey(reason) => {
            format!("pk does not fit the container's partition key definition: {reason}")
        }
        _ => return ApiError::from(error),
    };
    ApiError {
        message,
        ..ApiError::from(error)
    }
}

/// Parses `start`: `now`, `beginning` or an RFC 3339 time at or after the Unix epoch.
fn parse_start(text: &str) -> Result<FeedStart, ApiError> {
    match text {
        "now" => Ok(FeedStart::Now),
        "beginning" => Ok(FeedStart::Beginning),
        time => {
            let ms = tributary_wire::time::parse_rfc3339_ms(time).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "start must be 'now', 'beginning' or an RFC 3339 time such as 2026-12-03T10:00:00Z, not '{time}'"
                ))
            })?;
            let ms = u64::try_from(ms).map_err(|_| {
                ApiError::bad_request(format!(
                    "start '{time}' is before 1970-01-01T00:00:00Z, where the change feed's times begin"
                ))
            })?;
            Ok(FeedStart::PointInTime(ms))
        }
    }
}

/// Parses `pk`: a partition key as JSON, one value or an array of them.
fn parse_partition_key(text: &str) -> Result<PartitionKey, ApiError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|error| {
        ApiError::bad_request(format!(
            "pk must be a partition key as JSON, such as \"customer-1\", 42, null or [\"a\",\"b\"], not '{text}' ({error})"
        ))
    })?;
    PartitionKey::from_json(&value).map_err(|error| {
        ApiError::bad_request(format!("pk '{text}' is not a partition key: {error}"))
    })
}

/// Parses the query string (form-encoded: `+` is a space): `start`, `mode`, `range`, `pk`,
/// `heartbeat_ms`, each at most once, and not both `range` and `pk`.
fn stream_options(query: &str) -> Result<StreamOptions, ApiError> {
    let mut options = StreamOptions {
        scope: FeedScope::Container,
        start: FeedStart::Now,
        start_name: "now".to_owned(),
        mode: FeedMode::LatestVersion,
        mode_name: "latest-version",
        heartbeat: DEFAULT_HEARTBEAT,
    };
    let mut seen: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        // Form encoding, as a browser's URLSearchParams writes it: `+` is a space.
        let raw_value = raw_value.replace('+', " ");
        let value = percent_encoding::percent_decode_str(&raw_value)
            .decode_utf8()
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "the value of '{name}' is not percent-encoded UTF-8"
                ))
            })?;
        if seen.contains(&name) {
            return Err(ApiError::bad_request(format!(
                "the parameter '{name}' is given twice"
            )));
        }
        match name {
            "start" => {
                options.start = parse_start(&value)?;
                options.start_name = value.into_owned();
            }
            "range" | "pk" if options.scope != FeedScope::Container => {
                return Err(ApiError::bad_request(
                    "give range or pk, not both: a partition key lies in one feed range",
                ));
            }
            "range" => {
                let id = value.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "range must be a feed range id (the id of one of the container's pkranges, such as 0), not '{value}'"
                    ))
                })?;
                options.scope = FeedScope::Range(id);
            }
            "pk" => options.scope = FeedScope::PartitionKey(parse_partition_key(&value)?),
            "mode" => {
                (options.mode, options.mode_name) = match value.as_ref() {
                    "latest-version" => (FeedMode::LatestVersion, "latest-version"),
                    "all-versions-and-deletes" => {
                        (FeedMode::AllVersionsAndDeletes, "all-versions-and-deletes")
                    }
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "mode must be 'latest-version' or 'all-versions-and-deletes', not '{other}'"
                        )));
                    }
                }
            }
            "heartbeat_ms" => {
                let ms: u64 = value.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "heartbeat_ms must be a whole number of milliseconds, not '{value}'"
                    ))
                })?;
                options.heartbeat = Duration::from_millis(ms).clamp(MIN_HEARTBEAT, MAX_HEARTBEAT);
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "the feed stream takes the parameters start, mode, range, pk and heartbeat_ms, not '{other}'"
                )));
            }
        }
        seen.push(name);
    }
    Ok(options)
}

/// One open stream: what it reads and where its events go.
struct Stream {
    store: Arc<Store>,
    /// Counts the changes sent.
    metrics: Arc<ServerMetrics>,
    database: String,
    container: String,
    /// The next read (its start moves past each page).
    request: FeedRequest,
    heartbeat: Duration,
    chunks: mpsc::Sender<Bytes>,
    stopping: watch::Receiver<bool>,
}

impl Stream {
    /// Sends the opening event and the first page, then each page as it commits, until the
    /// client goes, the server stops, or a read fails.
    async fn run(mut self, opened: String, first_page: FeedPage) {
        let mut chunk = opened;
        chunk.push_str(&page_events(&first_page));
        self.metrics.served_feed_items(first_page.changes.len());
        loop {
            if !self.send(chunk).await {
                return;
            }
            let read = tokio::select! {
                read = self.store.read_feed_wait(
                    &self.database,
                    &self.container,
                    &self.request,
                    self.heartbeat,
                ) => read,
                () = self.chunks.closed() => {
                    tracing::debug!(database = %self.database, container = %self.container, "feed stream ended: the client went");
                    return;
                }
                _ = self.stopping.wait_for(|stopping| *stopping) => {
                    tracing::debug!(database = %self.database, container = %self.container, "feed stream ended: the server is stopping");
                    return;
                }
            };
            chunk = match read {
                Ok(page) if page.is_empty() => ": heartbeat\n\n".to_owned(),
                Ok(page) => {
                    assert!(
                        page.lsn > lsn_of(&self.request.start),
                        "a page with changes moves the stream's position forward"
                    );
                    self.request.start = FeedStart::AfterLsn(page.lsn);
                    self.metrics.served_feed_items(page.changes.len());
                    page_events(&page)
                }
                Err(error) => {
                    let error = scope_error(error);
                    let body = ErrorBody::new(error.status, error.message);
                    let data = serde_json::to_string(&body).unwrap_or_default();
                    self.send(event("error", &data)).await;
                    return;
                }
            };
        }
    }

    /// Queues a chunk for the client; false when the client or the server is gone.
    async fn send(&mut self, chunk: String) -> bool {
        if chunk.is_empty() {
            return true;
        }
        tokio::select! {
            sent = self.chunks.send(Bytes::from(chunk)) => sent.is_ok(),
            _ = self.stopping.wait_for(|stopping| *stopping) => false,
        }
    }
}

/// The LSN a stream reads after (it always reads after one once open).
fn lsn_of(start: &FeedStart) -> u64 {
    match start {
        FeedStart::AfterLsn(lsn) => *lsn,
        _ => 0,
    }
}

/// One `change` event per change of a page.
fn page_events(page: &FeedPage) -> String {
    let mut events = String::with_capacity(page.changes.iter().map(|c| c.len() + 24).sum());
    for change in &page.changes {
        events.push_str(&event("change", change));
    }
    events
}

/// One event: its name and its data on one line. A line break in JSON text can only be
/// whitespace between tokens, so it becomes a space.
fn event(name: &str, json_text: &str) -> String {
    let data = json_text.replace(['\r', '\n'], " ");
    format!("event: {name}\ndata: {data}\n\n")
}

/// A response body fed by a stream's channel; dropping it (the client went) closes the
/// channel, which ends the stream.
struct ChannelBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        self.receiver
            .poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_keeps_its_data_on_one_line() {
        assert_eq!(
            event("change", "{\n  \"id\": \"a\"\r\n}"),
            "event: change\ndata: {   \"id\": \"a\"  }\n\n"
        );
    }

    #[test]
    fn options_are_parsed_and_checked() {
        let options =
            stream_options("start=beginning&mode=all-versions-and-deletes&heartbeat_ms=5")
                .expect("valid options");
        assert_eq!(options.start, FeedStart::Beginning);
        assert_eq!(options.mode, FeedMode::AllVersionsAndDeletes);
        assert_eq!(options.heartbeat, MIN_HEARTBEAT);
        let defaults = stream_options("").expect("no options");
        assert_eq!(defaults.start, FeedStart::Now);
        assert_eq!(defaults.heartbeat, DEFAULT_HEARTBEAT);
        for bad in [
            "start=yesterday",
            "mode=full",
            "heartbeat_ms=soon",
            "start=now&start=now",
            "colour=blue",
        ] {
            let error = stream_options(bad).err().expect(bad);
            assert_eq!(error.status, 400, "{bad}");
        }
    }

    /// The 400 message of a query string that must be refused.
    fn refusal(query: &str) -> String {
        let error = stream_options(query).err().expect(query);
        assert_eq!(error.status, 400, "{query}: {}", error.message);
        error.message
    }

    #[test]
    fn a_start_time_is_rfc_3339_and_reported_as_given() {
        let options = stream_options("start=2026-12-03T10:00:00Z").expect("a time");
        assert_eq!(options.start, FeedStart::PointInTime(1_796_292_000_000));
        assert_eq!(options.start_name, "2026-12-03T10:00:00Z");
        let fraction = stream_options("start=2026-12-03T10%3A00%3A00.250Z").expect("encoded");
        assert_eq!(fraction.start, FeedStart::PointInTime(1_796_292_000_250));
        let offset = stream_options("start=2026-12-03T11:00:00%2B01:00").expect("an offset");
        assert_eq!(offset.start, FeedStart::PointInTime(1_796_292_000_000));
        for bad in [
            "start=2026-12-03",
            "start=2026-12-03T10:00:00",
            "start=1796292000000",
            "start=2026-02-30T10:00:00Z",
        ] {
            assert!(refusal(bad).contains("RFC 3339 time such as"), "{bad}");
        }
        assert!(refusal("start=1969-12-31T23:59:59Z").contains("before 1970"));
    }

    #[test]
    fn a_range_is_a_feed_range_id() {
        let options = stream_options("range=3").expect("a range");
        assert_eq!(options.scope, FeedScope::Range(3));
        assert_eq!(
            stream_options("").expect("none").scope,
            FeedScope::Container
        );
        for bad in ["range=", "range=-1", "range=one", "range=4294967296"] {
            assert!(refusal(bad).contains("feed range id"), "{bad}");
        }
        assert!(refusal("range=1&range=2").contains("given twice"));
    }

    #[test]
    fn a_partition_key_is_json_one_value_or_an_array() {
        let cases = [
            ("pk=%22customer-1%22", json!(["customer-1"])),
            ("pk=42", json!([42])),
            ("pk=null", json!([null])),
            ("pk=true", json!([true])),
            ("pk=%5B%22a%22%2C%22b%22%5D", json!(["a", "b"])),
            ("pk=[\"a\"]", json!(["a"])),
            ("pk=%22a+b%22", json!(["a b"])),
        ];
        for (query, key) in cases {
            let options = stream_options(query).expect(query);
            let FeedScope::PartitionKey(parsed) = options.scope else {
                panic!("{query}: a partition key scope");
            };
            assert_eq!(parsed.to_json(), key, "{query}");
        }
        assert!(refusal("pk=customer-1").contains("must be a partition key as JSON"));
        assert!(refusal("pk=").contains("must be a partition key as JSON"));
        assert!(refusal("pk=[[1]]").contains("is not a partition key"));
        assert!(refusal("pk=%7B%22a%22%3A1%7D").contains("is not a partition key"));
    }

    #[test]
    fn range_and_pk_together_are_refused() {
        for query in ["range=0&pk=1", "pk=1&range=0"] {
            assert!(
                refusal(query).contains("give range or pk, not both"),
                "{query}"
            );
        }
    }

    #[test]
    fn a_split_or_missing_range_and_a_key_that_does_not_fit_say_what_to_do() {
        let gone = scope_error(StoreError::RangeGone {
            range_id: "0".into(),
            replaced_by: vec!["1".into(), "2".into()],
        });
        assert_eq!(gone.status, 410);
        assert!(gone.message.contains("split"), "{}", gone.message);
        assert!(
            gone.message.contains("pick a current one"),
            "{}",
            gone.message
        );
        let missing = scope_error(StoreError::RangeNotFound("9".into()));
        assert_eq!(missing.status, 404);
        assert!(missing.message.contains("pkranges"), "{}", missing.message);
        let key = PartitionKey::from_json(&json!(["a", "b"])).expect("a key");
        let definition = tributary_partition_key::PartitionKeyDefinition::single("/pk");
        let mismatch = key
            .effective_partition_key(&definition)
            .expect_err("two components for one path");
        let error = scope_error(StoreError::PartitionKey(mismatch));
        assert_eq!(error.status, 400);
        assert!(
            error.message.starts_with("pk does not fit"),
            "{}",
            error.message
        );
    }
}
