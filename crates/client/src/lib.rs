//! A thin client for the Cosmos DB NoSQL REST API: what the change feed processor needs to talk
//! to a remote `tributary serve`, and to Azure Cosmos DB or its emulator over the same API.
//!
//! [`CosmosClient`] holds the endpoint, the account master key and a pool of keep-alive
//! HTTP/1.1 connections (plain, or TLS with rustls). Every request is signed as the SDKs sign
//! it ([`tributary_wire::auth`]), dated, and sent with the API version the SDKs send; a
//! response is read whole, up to [`MAX_RESPONSE_BODY_BYTES`]. On top of [`CosmosClient::send`],
//! which sends any signed request and returns whatever comes back, sit the few operations a
//! change feed consumer needs: create a database or container if missing, read the container's
//! resource ids and partition key ranges, read change feed pages (both modes, by range, EPK
//! span or partition key, with Tributary's long-poll extension), point reads and conditional
//! writes of documents (for leases), and parameterized queries.
//!
//! Errors are typed by what a caller does about them ([`ClientError`]): a 404 read is `None`,
//! a 409 is [`ClientError::Conflict`], a 412 is [`ClientError::PreconditionFailed`], a split
//! partition key range is a 410 for which [`ClientError::is_split`] is true, a 429 carries the
//! server's back-off. The client itself never retries an answered request and never sleeps:
//! retry policy belongs to the caller. The one exception is a request handed back unsent by a
//! pooled connection the server had closed, which is sent again on a fresh connection.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let dir = tempfile::tempdir().unwrap();
//! # let store = std::sync::Arc::new(tributary_store::Store::open(dir.path(), tributary_store::StoreOptions::relaxed()).unwrap());
//! # let config = tributary_server::ServerConfig { port: 0, tls: None, data_dir: dir.path().to_owned(), ..Default::default() };
//! # let server = tributary_server::Server::bind(config, store).await.unwrap();
//! # let endpoint = server.endpoint().to_owned();
//! # tokio::spawn(server.run(std::future::pending()));
//! use serde_json::json;
//! use tributary_client::{ChangeFeedRequest, ChangeFeedStart, CosmosClient};
//!
//! // `endpoint` is e.g. "http://localhost:8081/"; the key is the emulator's well-known one.
//! let key = tributary_wire::auth::EMULATOR_KEY;
//! let client = CosmosClient::from_connection_string(&format!("AccountEndpoint={endpoint};AccountKey={key};"))?;
//! client.create_database_if_not_exists("shop").await?;
//! client.create_container_if_not_exists("shop", "orders", "/customer").await?;
//! client.create_document("shop", "orders", &json!("ada"), &json!({"id": "1", "customer": "ada"})).await?;
//!
//! let page = client
//!     .change_feed("shop", "orders", &ChangeFeedRequest::new(ChangeFeedStart::Beginning, 100))
//!     .await?;
//! assert_eq!(page.changes.len(), 1);
//! // Continue after this page: nothing new yet, so 304.
//! let next = ChangeFeedRequest::new(ChangeFeedStart::Etag(page.etag), 100);
//! assert!(client.change_feed("shop", "orders", &next).await?.not_modified);
//! # Ok::<(), tributary_client::ClientError>(())
//! # }).unwrap();
//! ```
//!
//! # What it is not
//!
//! Not an SDK: no retries or back-off, no session consistency bookkeeping, no region
//! discovery or failover, no query plans (cross-partition queries that Azure Cosmos DB cannot
//! serve without one, such as `ORDER BY` over several ranges, fail there with a 400; a
//! Tributary server runs every query whole), no HTTP/2, no resource tokens or Entra ID. TLS
//! certificates are checked against the Mozilla roots (`webpki-roots`), or not at all when
//! [`ClientOptions::accept_invalid_certs`] is set, as for the emulator's and `tributary
//! serve`'s self-signed certificates; the system's own certificate store is not read.

mod change_feed;
mod client;
mod connection_string;
mod error;
mod response;
mod transport;

use std::time::Duration;

pub use change_feed::{ChangeFeedMode, ChangeFeedPage, ChangeFeedRequest, ChangeFeedStart};
pub use client::{CosmosClient, Document, PartitionKeyRange};
pub use connection_string::{ConnectionString, MAX_CONNECTION_STRING_LEN};
pub use error::{ClientError, MAX_QUOTED_MESSAGE_CHARS};
pub use hyper::{HeaderMap, Method};
pub use response::Response;

/// The largest response body the client reads, in bytes; a longer one fails the request with
/// [`ClientError::ResponseTooLarge`].
pub const MAX_RESPONSE_BODY_BYTES: usize = 64 * 1024 * 1024;

/// The most pages one call follows with `x-ms-continuation` (queries, partition key ranges);
/// more fails the call with [`ClientError::TooManyPages`].
pub const MAX_PAGES: usize = 10_000;

/// [`ClientOptions::request_timeout`] by default: longer than the longest long-poll wait a
/// Tributary server honours (60 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(70);

/// [`ClientOptions::max_idle_connections`] by default.
pub const DEFAULT_MAX_IDLE_CONNECTIONS: usize = 16;

/// How a [`CosmosClient`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Accept any TLS certificate (self-signed, expired, for another name). Only for local
    /// servers and the emulator.
    pub accept_invalid_certs: bool,
    /// The longest one request may take, connecting and reading the whole response included.
    /// A change feed request that asks the server to wait gets at least that wait plus 10 s.
    pub request_timeout: Duration,
    /// How many idle keep-alive connections the client keeps; more requests at once open more
    /// connections, which are closed after use once this many are idle.
    pub max_idle_connections: usize,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            accept_invalid_certs: false,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_idle_connections: DEFAULT_MAX_IDLE_CONNECTIONS,
        }
    }
}
