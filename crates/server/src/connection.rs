//! One client connection, HTTP/1.1 or HTTP/2: its limits (header-read and idle timeouts, the
//! connection limit) and its part in a graceful shutdown.
//!
//! A request is in progress from its headers until its response body has been sent (or
//! dropped): a streamed response (the Explorer's feed stream) keeps its connection busy.
//! A connection with no request in progress for the idle timeout is shut down gracefully:
//! HTTP/2 gets a `GOAWAY` and HTTP/1.1 a close, and a request in progress is never cut off
//! (a long-poll feed read or a slow query keeps its connection for as long as it runs). A
//! connection that has not closed one more idle timeout after being asked to, with no
//! request in progress, is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::sync::watch;
use tokio::time::Instant;
use tributary_wire::headers;

use crate::ApiError;

/// Largest request header section accepted (bytes), for HTTP/1.1.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// What a connection past the connection limit is told to wait before retrying.
const CONNECTION_LIMIT_RETRY_AFTER_MS: u32 = 1_000;

/// The per-connection limits of a server.
#[derive(Clone, Copy)]
pub(crate) struct ConnectionLimits {
    /// How long a request's headers may take to arrive, and how long a connection may sit
    /// with no request in progress.
    pub(crate) idle_timeout: Duration,
    /// The server's connection limit, for the message past it.
    pub(crate) max_connections: usize,
}

/// Serves one connection. Without a `permit` (the server is at its connection limit) every
/// request on it is answered `429` and the connection closes after the first answer
/// (HTTP/1.1) or after the idle timeout at most. When `shutdown` changes (or its sender is
/// dropped) the connection finishes the requests in progress and closes.
pub(crate) async fn serve_connection<S>(
    stream: S,
    service: TowerToHyperService<axum::Router>,
    mut shutdown: watch::Receiver<()>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    limits: ConnectionLimits,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .max_buf_size(MAX_HEADER_BYTES.max(8192) * 4);
    builder
        .http2()
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let io = TokioIo::new(stream);
    let Some(permit) = permit else {
        tracing::warn!(
            max_connections = limits.max_connections,
            "connection refused: the server is at its connection limit"
        );
        builder.http1().keep_alive(false);
        let refuse = hyper::service::service_fn(move |_request| async move {
            Ok::<_, std::convert::Infallible>(over_connection_limit(limits.max_connections))
        });
        return tokio::time::timeout(limits.idle_timeout, builder.serve_connection(io, refuse))
            .await
            .unwrap_or(Ok(()));
    };
    let activity = Arc::new(Activity::new());
    let tracked = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |request| {
            let in_progress = activity.begin();
            let answer = hyper::service::Service::call(&service, request);
            async move {
                let answer = answer.await;
                // The request stays in progress until its body has been sent.
                answer.map(|response| {
                    response.map(|body| {
                        axum::body::Body::new(UntilSent {
                            body,
                            _in_progress: in_progress,
                        })
                    })
                })
            }
        })
    };
    let connection = builder.serve_connection(io, tracked);
    tokio::pin!(connection);
    // Once asked to close, the connection gets another idle timeout to do so (an HTTP/2
    // client must acknowledge the GOAWAY's PING) and is then dropped.
    let mut closing_since: Option<Instant> = None;
    let result = loop {
        let idle_until = activity.idle_deadline(limits.idle_timeout);
        let wake_at = closing_since.map_or(idle_until, |since| {
            idle_until.max(since + limits.idle_timeout)
        });
        tokio::select! {
            result = connection.as_mut() => break result,
            _ = shutdown.changed(), if closing_since.is_none() => {
                connection.as_mut().graceful_shutdown();
                closing_since = Some(Instant::now());
            }
            () = tokio::time::sleep_until(wake_at) => {
                if activity.idle_deadline(limits.idle_timeout) > Instant::now() {
                    continue;
                }
                if closing_since.is_some() {
                    tracing::debug!("dropping a connection that did not close when asked");
                    break Ok(());
                }
                tracing::debug!(timeout = ?limits.idle_timeout, "closing an idle connection");
                connection.as_mut().graceful_shutdown();
                closing_since = Some(Instant::now());
            }
        }
    };
    drop(permit);
    result
}

/// When a connection last had a request in progress, and how many it has now.
struct Activity {
    opened: Instant,
    in_progress: AtomicUsize,
    /// Microseconds from `opened` to the end of the last request.
    last_active_us: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            in_progress: AtomicUsize::new(0),
            last_active_us: AtomicU64::new(0),
        }
    }

    /// Marks a request in progress until the returned guard drops.
    fn begin(self: &Arc<Self>) -> InProgress {
        self.in_progress.fetch_add(1, Ordering::SeqCst);
        InProgress(Arc::clone(self))
    }

    /// When the connection becomes idle for `timeout` if nothing else happens: a timeout
    /// from now while a request is in progress.
    fn idle_deadline(&self, timeout: Duration) -> Instant {
        if self.in_progress.load(Ordering::SeqCst) > 0 {
            Instant::now() + timeout
        } else {
            self.opened
                + Duration::from_micros(self.last_active_us.load(Ordering::SeqCst))
                + timeout
        }
    }
}

/// A request in progress on a connection.
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        let since_opened = self.0.opened.elapsed().as_micros();
        self.0.last_active_us.store(
            u64::try_from(since_opened).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
        self.0.in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that holds its request's [`InProgress`] until the body is done with:
/// sent to its end, or dropped when the connection closes.
struct UntilSent {
    body: axum::body::Body,
    _in_progress: InProgress,
}

impl hyper::body::Body for UntilSent {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The answer on a connection past the limit: `429` with the SDKs' retry-after header.
fn over_connection_limit(max_connections: usize) -> Response {
    let mut response = ApiError::new(
        429,
        format!(
            "the server has reached its limit of {max_connections} open connections; retry shortly"
        ),
    )
    .into_response();
    response.headers_mut().insert(
        headers::X_MS_RETRY_AFTER_MS,
        HeaderValue::from(CONNECTION_LIMIT_RETRY_AFTER_MS),
    );
    response.headers_mut().insert(
        axum::http::header::CONNECTION,
        HeaderValue::from_static("close"),
    );
    response
}
