//! `GET /_explorer/feed/dbs/{db}/colls/{coll}`: a container's change feed pushed as it
//! commits, as Server-Sent Events (`text/event-stream`).
//!
//! The request is signed exactly as a change feed read of the container (`GET`, resource type
//! `docs`, link `dbs/{db}/colls/{coll}`), with any of the account's keys, read-only ones too.
//! Query parameters: `start` (`now`, the default, or `beginning`), `mode` (`latest-version`,
//! the default, or `all-versions-and-deletes`, which the container's `changeFeedPolicy` must
//! allow) and `heartbeat_ms` (how long a quiet stream waits before a heartbeat comment;
//! [`DEFAULT_HEARTBEAT`], clamped to [`MIN_HEARTBEAT`]..=[`MAX_HEARTBEAT`]).
//!
//! The stream's position is fixed before the response's headers are sent: a change committed
//! after a client has seen them is in the stream. It then reads the whole container (every
//! feed range: a feed position is one LSN per container) with [`Store::read_feed_wait`],
//! which a commit wakes, and sends:
//!
//! ```text
//! event: open                       once: {"start", "mode", "heartbeatMs"}
//! event: change                     one per change, its JSON as the change feed has it
//! : heartbeat                       after heartbeat_ms with no change
//! event: error                      {"code", "message"}, then the stream ends
//! ```
//!
//! A stream ends when its client goes (its body is dropped, so the channel closes), when the
//! server stops, or after an error (the container deleted). At most
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
use tributary_store::{FeedMode, FeedPage, FeedRequest, FeedScope, FeedStart, Store};
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
    start: FeedStart,
    start_name: &'static str,
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
        scope: FeedScope::Container,
        start: options.start.clone(),
        mode: options.mode,
        max_items: PAGE_CHANGES,
    };
    let first_page = crate::routes::off_worker(state, || {
        state.store.read_feed(database, container, &request)
    })
    .await?;
    request.start = FeedStart::AfterLsn(first_page.lsn);
    let (chunks, receiver) = mpsc::channel(MAX_QUEUED_CHUNKS);
    let opened = event(
        "open",
        &json!({
            "start": options.start_name,
            "mode": options.mode_name,
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

/// Parses the query string: `start`, `mode`, `heartbeat_ms`, each at most once.
fn stream_options(query: &str) -> Result<StreamOptions, ApiError> {
    let mut options = StreamOptions {
        start: FeedStart::Now,
        start_name: "now",
        mode: FeedMode::LatestVersion,
        mode_name: "latest-version",
        heartbeat: DEFAULT_HEARTBEAT,
    };
    let mut seen: Vec<&str> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_encoding::percent_decode_str(raw_value)
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
                (options.start, options.start_name) = match value.as_ref() {
                    "now" => (FeedStart::Now, "now"),
                    "beginning" => (FeedStart::Beginning, "beginning"),
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "start must be 'now' or 'beginning', not '{other}'"
                        )));
                    }
                }
            }
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
                    "the feed stream takes the parameters start, mode and heartbeat_ms, not '{other}'"
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
                    let error = ApiError::from(error);
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
            "range=0",
        ] {
            let error = stream_options(bad).err().expect(bad);
            assert_eq!(error.status, 400, "{bad}");
        }
    }
}
