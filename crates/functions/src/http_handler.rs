//! A function behind an HTTP endpoint (a local sidecar in any language), as a [`Handler`].
//!
//! Each invocation is one `POST` to the endpoint's URL with the invoke object of
//! `docs/functions-protocol.md` as its JSON body, without `type` and `id`; the response body
//! is the `result` object, also without them (`{"ok": true, "outputs": {...},
//! "failed_items": [...]}` or `{"ok": false, "error": "...", "traceback": "..."}`).
//!
//! Only plain `http://` is supported: the endpoint is meant to run beside the host. Up to
//! [`MAX_IDLE_CONNECTIONS`] HTTP/1.1 connections are kept alive between invocations. A
//! connection serves one request at a time and goes back to the pool only after its whole
//! response was read, so nothing half-read is reused; a request that fails or times out drops
//! its connection.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tributary_processor::BoxFuture;

use crate::handler::{Handler, Invocation, InvocationFailure, InvocationResult};
use crate::process::{invoke_object_json, result_from_object, truncate_at_char};

/// Most idle keep-alive connections kept to the endpoint.
pub const MAX_IDLE_CONNECTIONS: usize = 16;

/// Largest response body read from the endpoint.
pub const MAX_RESPONSE_BODY_BYTES: usize = 64 * 1024 * 1024;

/// How much of the body of a non-2xx response goes into the failure's message.
pub const ERROR_BODY_EXCERPT_BYTES: usize = 200;

/// The request body type.
type Body = Full<Bytes>;

/// Why an endpoint URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpHandlerError {
    /// The URL is not a usable `http://` URL.
    #[error("invalid function endpoint '{url}': {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL is `https://`.
    #[error(
        "invalid function endpoint '{url}': only plain http:// endpoints are supported (a \
         function endpoint is a sidecar on the same machine or network); use http://"
    )]
    HttpsNotSupported {
        /// The URL as given.
        url: String,
    },
}

/// Runs functions by POSTing invocations to an HTTP endpoint.
#[derive(Debug)]
pub struct HttpHandler {
    /// The URL as given, for messages.
    url: String,
    host: String,
    port: u16,
    /// The `Host` header: the URL's authority.
    authority: String,
    /// The request target: the URL's path and query.
    path_and_query: String,
    /// Idle connections, between requests.
    idle: Mutex<Vec<SendRequest<Body>>>,
}

impl HttpHandler {
    /// A handler for the endpoint at `url` (`http://host:port/path`); nothing is connected
    /// until the first invocation.
    ///
    /// # Errors
    /// - [`HttpHandlerError::HttpsNotSupported`]: the URL is `https://`.
    /// - [`HttpHandlerError::InvalidUrl`]: it is not an `http://` URL with a host, or carries
    ///   user information.
    pub fn new(url: &str) -> Result<HttpHandler, HttpHandlerError> {
        let invalid = |reason: &str| HttpHandlerError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.trim().parse().map_err(|_| invalid("it is not a URL"))?;
        match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => {}
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => {
                return Err(HttpHandlerError::HttpsNotSupported {
                    url: url.to_owned(),
                });
            }
            Some(_) => return Err(invalid("the scheme must be http")),
            None => return Err(invalid("it has no scheme (expected http://host:port/path)")),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| invalid("it has no host"))?
            .as_str()
            .to_owned();
        if authority.contains('@') {
            return Err(invalid("user information in the URL is not supported"));
        }
        let host = uri
            .host()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| invalid("it has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(80);
        let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let path_and_query = if path_and_query.is_empty() {
            "/".to_owned()
        } else {
            path_and_query
        };
        Ok(HttpHandler {
            url: url.trim().to_owned(),
            host,
            port,
            authority,
            path_and_query,
            idle: Mutex::new(Vec::with_capacity(MAX_IDLE_CONNECTIONS)),
        })
    }

    /// The endpoint's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn idle(&self) -> MutexGuard<'_, Vec<SendRequest<Body>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Posts the invocation and turns the response into its result.
    async fn call(&self, invocation: &Invocation) -> InvocationResult {
        let body = Bytes::from(invoke_object_json(invocation));
        let (status, body) = self.round_trip(body).await?;
        if !status.is_success() {
            let excerpt = String::from_utf8_lossy(&body);
            return Err(InvocationFailure::new(format!(
                "the function endpoint {} answered {status}: {}",
                self.url,
                truncate_at_char(&excerpt, ERROR_BODY_EXCERPT_BYTES)
            )));
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(mut result)) => {
                result.remove("type");
                result.remove("id");
                result_from_object(result)
            }
            _ => {
                let excerpt = String::from_utf8_lossy(&body);
                Err(InvocationFailure::new(format!(
                    "the function endpoint {} answered {status} with a body that is not a JSON \
                     result object: {}",
                    self.url,
                    truncate_at_char(&excerpt, ERROR_BODY_EXCERPT_BYTES)
                )))
            }
        }
    }

    /// Sends one POST and reads the whole response. A pooled connection the endpoint closed
    /// meanwhile hands the request back unsent; it is then sent once more on a new connection.
    async fn round_trip(&self, body: Bytes) -> Result<(StatusCode, Bytes), InvocationFailure> {
        let failure = |reason: String| {
            InvocationFailure::new(format!(
                "the function endpoint {} could not be called: {reason}",
                self.url
            ))
        };
        let request = Request::post(self.path_and_query.as_str())
            .header(hyper::header::HOST, self.authority.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| failure(format!("cannot build the request: {e}")))?;
        let mut request = request;
        let mut fresh_only = false;
        loop {
            let (mut sender, reused) = match self.take_idle(fresh_only).await {
                Some(sender) => (sender, true),
                None => (self.connect().await.map_err(&failure)?, false),
            };
            let response = match sender.try_send_request(request).await {
                Ok(response) => response,
                Err(mut error) => match error.take_message() {
                    Some(unsent) if reused => {
                        request = unsent;
                        fresh_only = true;
                        continue;
                    }
                    _ => return Err(failure(error.into_error().to_string())),
                },
            };
            let (parts, body) = response.into_parts();
            let body = match Limited::new(body, MAX_RESPONSE_BODY_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    return Err(failure(format!(
                        "its response body is larger than {MAX_RESPONSE_BODY_BYTES} bytes"
                    )));
                }
                Err(error) => {
                    return Err(failure(format!("cannot read the response body: {error}")));
                }
            };
            self.put_idle(sender);
            return Ok((parts.status, body));
        }
    }

    /// An idle connection ready for a request, if the pool has one (never when `fresh_only`).
    async fn take_idle(&self, fresh_only: bool) -> Option<SendRequest<Body>> {
        if fresh_only {
            return None;
        }
        loop {
            let mut sender = self.idle().pop()?;
            // A connection the endpoint closed reports an error here and is dropped.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    /// Puts a connection back after a complete response, unless the pool is full or the
    /// connection is closing.
    fn put_idle(&self, sender: SendRequest<Body>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(sender);
        }
    }

    /// Opens a connection: TCP, then the HTTP/1.1 handshake.
    async fn connect(&self) -> Result<SendRequest<Body>, String> {
        let stream = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect to {}:{}: {e}", self.host, self.port))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP/1.1 handshake failed: {e}"))?;
        // The connection task ends when its sender is dropped; its errors show up as failed
        // requests.
        tokio::spawn(connection);
        Ok(sender)
    }
}

impl Handler for HttpHandler {
    fn invoke(&self, invocation: Invocation, timeout: Duration) -> BoxFuture<'_, InvocationResult> {
        Box::pin(async move {
            match tokio::time::timeout(timeout, self.call(&invocation)).await {
                Ok(result) => result,
                Err(_) => Err(InvocationFailure::timed_out(&invocation.function, timeout)),
            }
        })
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // Dropping the senders closes the idle connections.
            self.idle().clear();
        })
    }
}
