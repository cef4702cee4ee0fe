//! The Cosmos DB NoSQL REST API over Tributary's embedded store.
//!
//! `tributary-server` answers the requests the official Azure Cosmos DB SDKs send (Python
//! `azure-cosmos`, Node `@azure/cosmos`, and others) as if it were Azure Cosmos DB or its
//! emulator: the account, databases, containers, items, queries, transactional batches, bulk,
//! partition key ranges, offers, and the change feed in both modes, with master-key
//! authentication on every request, over HTTP/1.1 and HTTP/2, with or without TLS.
//!
//! An account has Azure's four keys ([`AccountKeys`]): primary and secondary read-write keys,
//! and primary and secondary read-only keys, whose requests may only read (anything else is
//! answered 403). The keys can be swapped while the server runs ([`KeyRing::reload_file`]).
//! A database's users hold permissions, and each permission hands out resource tokens: a
//! client holding one (and no key) reaches that permission's resource alone, in its mode and
//! partition key (`docs/decisions/` records the token design). Tokens are signed with a key
//! derived from the primary master key: regenerating it invalidates them.
//!
//! What it is not: a multi-region service (one write region, Session consistency), nor an
//! Entra ID (AAD) authority, nor a store of stored procedures, triggers or UDFs.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use tributary_server::{Server, ServerConfig};
//! use tributary_store::{Store, StoreOptions};
//! let config = ServerConfig::default();
//! let store = Arc::new(Store::open(&config.data_dir, StoreOptions::default())?);
//! let server = Server::bind(config, store).await?;
//! println!("endpoint: {}", server.endpoint());
//! server.run(async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! # Ok(()) }
//! ```

mod body_budget;
mod connection;
mod error;
mod explorer;
mod keys;
mod metrics;
mod partition_overlay;
mod request;
mod rid;
mod routes;
mod scope;
mod session;
mod tls;

use connection::{ConnectionLimits, serve_connection};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tributary_store::Store;
use tributary_wire::auth::{self, KeyKind, ResourceAddress};
use tributary_wire::headers;

pub use error::ApiError;
pub use explorer::functions::{
    FunctionReport, FunctionsHost, FunctionsReport, HostFuture, HostRefusal, LeaseReport,
    ReplayOutcome, SkippedReport,
};
pub use keys::{AccountKeys, GENERATED_KEY_BYTES, KeyRing, KeysError};
pub use tls::{CERT_FILE, KEY_FILE, TlsSource};

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The default [`ServerConfig::header_read_timeout`] (nginx's keep-alive default).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(75);
/// The default [`ServerConfig::request_timeout`]: above the longest long-poll wait
/// ([`headers::MAX_TRIBUTARY_WAIT`], 60 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(90);
/// Container scans (queries, read feeds, feed pages) run at once per core; more wait their
/// turn. Each holds a thread and what it has read, so this bounds both under load.
const SCANS_PER_CORE: usize = 2;
/// The default [`ServerConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// The default [`ServerConfig::max_request_memory`]: 256 MiB.
pub const DEFAULT_MAX_REQUEST_MEMORY: usize = 256 * 1024 * 1024;
/// The default [`ServerConfig::max_query_input`]: 256 MiB.
pub const DEFAULT_MAX_QUERY_INPUT: usize = 256 * 1024 * 1024;
/// The default [`ServerConfig::max_feed_streams`].
pub const DEFAULT_MAX_FEED_STREAMS: usize = 256;

/// Everything `tributary serve` can be told.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub addr: IpAddr,
    /// Port to listen on (`0` picks a free one).
    pub port: u16,
    /// The account's keys: at least one read-write key. The keys in force can be replaced
    /// while the server runs, through [`Server::key_ring`].
    pub keys: AccountKeys,
    /// `None` serves plain HTTP.
    pub tls: Option<TlsSource>,
    /// The store's directory (also where a generated certificate is kept).
    pub data_dir: PathBuf,
    /// The account id reported by `GET /` (must not be `localhost`: the Node SDK treats that
    /// id as the emulator and ignores the locations).
    pub account_name: String,
    /// How far a request's `x-ms-date` may be from the server's clock.
    pub max_clock_skew: Duration,
    /// How long a connection may take to send a request's headers (HTTP/1.1, counted from
    /// when the server starts waiting for them) and how long any connection may sit with no
    /// request in progress: a half-sent header is closed, and an idle HTTP/1.1 or HTTP/2
    /// connection is shut down gracefully (HTTP/2 gets a `GOAWAY`). A request in progress is
    /// never cut off by it.
    pub header_read_timeout: Duration,
    /// The longest a request may take from its headers to its answer, body upload included;
    /// past it the answer is 408 (for a write: outcome unknown). A long-poll feed read waits
    /// at most half of it.
    pub request_timeout: Duration,
    /// Most connections open at once; a connection past the limit gets one `429` (with
    /// `x-ms-retry-after-ms`) saying so and is closed.
    pub max_connections: usize,
    /// Most bytes of request bodies held at once (never less than one largest body, 4 MiB):
    /// a request reserves its body's size before it is read and keeps it until answered; past
    /// the limit the answer is `429` with `x-ms-retry-after-ms`, which the SDKs retry.
    pub max_request_memory: usize,
    /// Most bytes of stored items a query that needs its whole input (`ORDER BY`, aggregates,
    /// `GROUP BY`, `DISTINCT`, `TOP`, `OFFSET`) may read; past it the answer is a 400 saying
    /// so. Parsed, the items take a few times this in memory, and at most 2 scans per core
    /// run at once. Queries answered item by item and read feeds read a page at a time and
    /// have no such limit.
    pub max_query_input: usize,
    /// Most Explorer feed streams (`/_explorer/feed/...`, `docs/explorer.md`) open at once;
    /// one more is answered 429 with `x-ms-retry-after-ms`. A stream holds a task and its
    /// connection until its client goes.
    pub max_feed_streams: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 8081,
            keys: AccountKeys::emulator(),
            tls: Some(TlsSource::SelfSigned),
            data_dir: PathBuf::from("tributary-data"),
            account_name: "tributary".to_owned(),
            max_clock_skew: auth::DEFAULT_MAX_CLOCK_SKEW,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_request_memory: DEFAULT_MAX_REQUEST_MEMORY,
            max_query_input: DEFAULT_MAX_QUERY_INPUT,
            max_feed_streams: DEFAULT_MAX_FEED_STREAMS,
        }
    }
}

/// Why the server could not start or stopped.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A key is not valid base64, or there is no read-write key.
    #[error("invalid account keys: {0}")]
    Keys(#[from] KeysError),
    /// The certificate could not be made or loaded.
    #[error("TLS: {0}")]
    Tls(String),
}

/// What every request handler can reach.
pub(crate) struct AppState {
    store: Arc<Store>,
    keys: KeyRing,
    scheme: &'static str,
    account_name: String,
    max_clock_skew: Duration,
    request_timeout: Duration,
    /// Scans (queries, read feeds, feed pages, partition-key deletes) that may run at once:
    /// [`SCANS_PER_CORE`] per core.
    scan_permits: tokio::sync::Semaphore,
    /// Request bodies in memory: [`ServerConfig::max_request_memory`].
    body_budget: body_budget::BodyBudget,
    /// [`ServerConfig::max_query_input`].
    max_query_input: usize,
    /// Becomes `true` when the server stops taking connections: what ends the Explorer's
    /// feed streams, which would otherwise run until their clients leave.
    stopping: tokio::sync::watch::Sender<bool>,
    /// The Explorer's feed streams that may be open at once
    /// ([`ServerConfig::max_feed_streams`]).
    feed_stream_permits: Arc<tokio::sync::Semaphore>,
    /// [`ServerConfig::max_feed_streams`].
    max_feed_streams: usize,
    /// Requests, feed items served, connections: for the Explorer's metrics snapshot.
    metrics: Arc<metrics::ServerMetrics>,
    /// When the server was bound.
    started: std::time::Instant,
    /// The functions host running in this process, once attached.
    functions_host: std::sync::OnceLock<Arc<dyn explorer::functions::FunctionsHost>>,
}

/// A bound server, ready to run.
pub struct Server {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<AppState>,
    endpoint: String,
    header_read_timeout: Duration,
    max_connections: usize,
}

impl Server {
    /// Opens the listening socket and prepares TLS.
    ///
    /// # Errors
    /// [`ServeError::Bind`], [`ServeError::Keys`], [`ServeError::Tls`].
    pub async fn bind(config: ServerConfig, store: Arc<Store>) -> Result<Server, ServeError> {
        let keys = KeyRing::new(config.keys.key_set()?);
        let tls = match &config.tls {
            Some(source) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
                source,
                &config.data_dir,
            )?)),
            None => None,
        };
        let addr = SocketAddr::new(config.addr, config.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServeError::Bind { addr, source })?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let host = if local.ip().is_loopback() {
            "localhost".to_owned()
        } else {
            local.ip().to_string()
        };
        let endpoint = format!("{scheme}://{host}:{}/", local.port());
        let state = Arc::new(AppState {
            store,
            keys,
            scheme,
            account_name: config.account_name,
            max_clock_skew: config.max_clock_skew,
            request_timeout: config.request_timeout,
            scan_permits: tokio::sync::Semaphore::new(
                SCANS_PER_CORE
                    * std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            ),
            body_budget: body_budget::BodyBudget::new(config.max_request_memory),
            max_query_input: config.max_query_input,
            stopping: tokio::sync::watch::Sender::new(false),
            feed_stream_permits: Arc::new(tokio::sync::Semaphore::new(config.max_feed_streams)),
            max_feed_streams: config.max_feed_streams,
            metrics: Arc::default(),
            started: std::time::Instant::now(),
            functions_host: std::sync::OnceLock::new(),
        });
        Ok(Server {
            listener,
            tls,
            state,
            endpoint,
            header_read_timeout: config.header_read_timeout,
            max_connections: config.max_connections.max(1),
        })
    }

    /// The keys the server accepts, to replace while it runs.
    pub fn key_ring(&self) -> KeyRing {
        self.state.keys.clone()
    }

    /// Shows a functions host running in this process in the Explorer
    /// (`/_explorer/functions`). Only the first host attached is kept; `false` if one was
    /// already.
    pub fn attach_functions_host(&self, host: Arc<dyn FunctionsHost>) -> bool {
        self.state.functions_host.set(host).is_ok()
    }

    /// The URL clients connect to, e.g. `https://localhost:8081/`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The socket address actually bound.
    ///
    /// # Errors
    /// If the socket has no local address (never for a bound TCP socket).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (up to 10 s).
    ///
    /// # Errors
    /// None after a successful bind; failed connections are logged, not returned.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&self.state));
        // Every connection holds a receiver: a send asks them to finish, and the sender's
        // `closed` tells when the last one has.
        let (shutting_down, shutdown_signal) = tokio::sync::watch::channel(());
        let connections = Arc::new(tokio::sync::Semaphore::new(self.max_connections));
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(router.clone());
            let signal = shutdown_signal.clone();
            let tls = self.tls.clone();
            // Taken before the connection's task starts, so a burst cannot overshoot.
            let permit = Arc::clone(&connections).try_acquire_owned().ok();
            let limits = ConnectionLimits {
                idle_timeout: self.header_read_timeout,
                max_connections: self.max_connections,
            };
            let open_connection = self.state.metrics.connection_opened();
            tokio::spawn(async move {
                let _open_connection = open_connection;
                let result = match tls {
                    Some(acceptor) => {
                        // The handshake is bounded like a request's headers.
                        match tokio::time::timeout(limits.idle_timeout, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(stream)) => {
                                serve_connection(stream, service, signal, permit, limits).await
                            }
                            Ok(Err(error)) => {
                                tracing::debug!(%peer, %error, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        }
                    }
                    None => serve_connection(stream, service, signal, permit, limits).await,
                };
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
            });
        }
        drop(self.listener);
        self.state.stopping.send_replace(true);
        drop(shutdown_signal);
        shutting_down.send_replace(());
        if tokio::time::timeout(SHUTDOWN_GRACE, shutting_down.closed())
            .await
            .is_err()
        {
            tracing::warn!("some connections did not finish within {SHUTDOWN_GRACE:?}");
        }
        Ok(())
    }
}

/// The 408 for a request past [`ServerConfig::request_timeout`].
fn request_timed_out(limit: Duration, method: &axum::http::Method) -> ApiError {
    let outcome = if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        ""
    } else {
        " If it was a write that had reached the store, it may have been applied: read before retrying."
    };
    ApiError::new(
        408,
        format!(
            "the request did not complete within the server's request timeout of {} s (a request body sent too slowly, or work that took too long).{outcome}",
            limit.as_secs_f64()
        ),
    )
}

/// Every request: read the body (bounded), check the signature, route, add common headers.
/// The Explorer's page and its feed streams are told apart first ([`explorer`]).
async fn handle(State(state): State<Arc<AppState>>, request: axum::extract::Request) -> Response {
    let activity_id = request
        .headers()
        .get(headers::X_MS_ACTIVITY_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let mut response =
        match tokio::time::timeout(state.request_timeout, serve(&state, request)).await {
            Ok(Ok(reply)) => reply.into_response(),
            Ok(Err(error)) => error.into_response(),
            Err(_) => request_timed_out(state.request_timeout, &method).into_response(),
        };
    let status = response.status().as_u16();
    state.metrics.responded(status);
    tracing::debug!(%method, %path, status, elapsed_us = started.elapsed().as_micros() as u64, "request");
    let response_headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&activity_id) {
        response_headers.insert(headers::X_MS_ACTIVITY_ID, value);
    }
    response_headers.insert(
        "x-ms-gatewayversion",
        HeaderValue::from_static("version=2.14.0"),
    );
    response_headers.insert(
        "x-ms-serviceversion",
        HeaderValue::from_static("version=2.14.0.0"),
    );
    response
}

async fn serve(
    state: &Arc<AppState>,
    request: axum::extract::Request,
) -> Result<request::Reply, ApiError> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if explorer::is_explorer_path(path) {
        return explorer::serve(state, &parts).await;
    }
    if explorer::is_browser_visit(&parts) {
        return Ok(explorer::redirect_to_page());
    }
    let mut segments = decode_segments(path)?;
    let is_rid_path = rid::is_rid_path(&segments);
    let address = if is_rid_path {
        rid::signed_address(&segments)
    } else {
        auth::resource_of_path(path)?
    };
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    // A resource token is checked here and its permission applied once the path is resolved
    // to names; a master key's signature is checked here in full.
    let grant = match auth::resource_token_of(header(headers::AUTHORIZATION))? {
        Some(token) => Some(scope::Grant::of_token(state, &token)?),
        None => {
            let signer = verify_master_key(state, &parts.method, &address, &parts.headers)?;
            if signer.is_read_only() {
                check_read_only_key(signer, &parts.method, &segments, &parts.headers)?;
            }
            None
        }
    };
    // Held until the request is answered: its body is in memory until then.
    let _body_memory = state.body_budget.reserve(&body)?;
    let body = axum::body::to_bytes(body, request::MAX_REQUEST_BODY_BYTES)
        .await
        .map_err(|_| body_budget::body_too_large())?;
    let host = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_owned());
    let mut context = request::RequestContext {
        method: parts.method,
        segments: Vec::new(),
        headers: parts.headers,
        body,
        scheme: state.scheme,
        host,
    };
    if is_rid_path {
        rid::resolve(
            &state.store,
            &mut segments,
            context.partition_key()?.as_ref(),
        )?;
    }
    context.segments = segments;
    if let Some(grant) = grant {
        grant.authorize(&state.store, &context)?;
    }
    routes::dispatch(state, &context).await
}

/// Checks that a request is signed, for `address`, with one of the account's keys, and
/// dated within the allowed clock skew; answers which key signed it.
fn verify_master_key(
    state: &AppState,
    method: &axum::http::Method,
    address: &ResourceAddress,
    request_headers: &axum::http::HeaderMap,
) -> Result<KeyKind, ApiError> {
    let header = |name: &str| request_headers.get(name).and_then(|v| v.to_str().ok());
    Ok(auth::verify_keys(
        &state.keys.current(),
        method.as_str(),
        address,
        header(headers::AUTHORIZATION),
        header(headers::X_MS_DATE),
        header(headers::DATE),
        SystemTime::now(),
        state.max_clock_skew,
    )?)
}

/// What a read-only key may not do: write (403), or read permissions, whose resource tokens
/// may grant writes (403).
fn check_read_only_key(
    signer: KeyKind,
    method: &axum::http::Method,
    segments: &[String],
    request_headers: &axum::http::HeaderMap,
) -> Result<(), ApiError> {
    if !routes::is_read(method, segments, request_headers)? {
        return Err(read_only_key_refusal(signer, method, segments));
    }
    if segments.get(2).is_some_and(|s| s == "users") && segments.get(4).is_some() {
        return Err(ApiError::new(
            403,
            format!(
                "The request was signed with the {signer} ({}), and read-only keys cannot read permissions: a permission carries a resource token that may allow writes. Sign this request with a read-write key (primaryMasterKey or secondaryMasterKey).",
                signer.azure_name()
            ),
        ));
    }
    Ok(())
}

/// The 403 for a write signed with a read-only key.
fn read_only_key_refusal(
    signer: KeyKind,
    method: &axum::http::Method,
    segments: &[String],
) -> ApiError {
    ApiError::new(
        403,
        format!(
            "The request was signed with the {signer} ({}), and read-only keys cannot write: {method} /{} changes data or settings. A read-only key may read resources (GET), run queries and read the change feed; sign this request with a read-write key (primaryMasterKey or secondaryMasterKey).",
            signer.azure_name(),
            segments.join("/"),
        ),
    )
}

/// Splits a path into URL-decoded segments, ignoring leading and trailing slashes.
fn decode_segments(path: &str) -> Result<Vec<String>, ApiError> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "the path segment '{segment}' is not valid percent-encoded UTF-8"
                    ))
                })
        })
        .collect()
}
