//! An in-process server on a free port over a temporary store, and a small client that signs
//! requests the way the SDKs do, so each test can also send what the SDKs never would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::oneshot;
use tributary_server::{FunctionsHost, KeyRing, Server, ServerConfig};
use tributary_store::{Store, StoreOptions};
use tributary_wire::auth::{self, MasterKey};
use tributary_wire::headers;

/// Longest a single request may take before the test fails: every test stays bounded.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body the client reads.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// A running server with its own store in a temporary directory; stopped on drop.
pub struct TestServer {
    /// The store the server serves, shared so tests can act on it directly.
    pub store: Arc<Store>,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The endpoint the server reports, e.g. `http://localhost:41234/`.
    pub endpoint: String,
    /// The keys the server accepts, to swap while it runs.
    pub key_ring: KeyRing,
    /// What requests are signed with unless told otherwise: the configuration's read-write
    /// key.
    key: MasterKey,
    shutdown: Option<oneshot::Sender<()>>,
    _data_dir: tempfile::TempDir,
}

impl TestServer {
    /// Opens a fresh store and serves it over plain HTTP on a free loopback port.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// As [`TestServer::start`], with the configuration changed by `configure` first.
    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        TestServer::start_with_store(StoreOptions::relaxed(), configure).await
    }

    /// As [`TestServer::start_with`], over a store opened with `options`.
    pub async fn start_with_store(
        options: StoreOptions,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        TestServer::start_serving(options, configure, None).await
    }

    /// As [`TestServer::start_with`], with a functions host attached for the Explorer.
    pub async fn start_with_functions_host(
        host: Arc<dyn FunctionsHost>,
        configure: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        TestServer::start_serving(StoreOptions::relaxed(), configure, Some(host)).await
    }

    async fn start_serving(
        options: StoreOptions,
        configure: impl FnOnce(&mut ServerConfig),
        functions_host: Option<Arc<dyn FunctionsHost>>,
    ) -> TestServer {
        let data_dir = tempfile::tempdir().expect("a temporary directory");
        let store = Arc::new(Store::open(data_dir.path(), options).expect("the store opens"));
        let mut config = ServerConfig {
            port: 0,
            tls: None,
            data_dir: data_dir.path().to_owned(),
            ..ServerConfig::default()
        };
        configure(&mut config);
        let key = config
            .keys
            .read_write_key()
            .map(|text| MasterKey::from_base64(text).expect("the read-write key is valid"))
            .expect("the configuration has a read-write key");
        let server = Server::bind(config, Arc::clone(&store))
            .await
            .expect("the server binds a free port");
        if let Some(host) = functions_host {
            assert!(
                server.attach_functions_host(host),
                "the first host attached"
            );
        }
        let addr = server.local_addr().expect("a bound socket has an address");
        let endpoint = server.endpoint().to_owned();
        let key_ring = server.key_ring();
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            store,
            addr,
            endpoint,
            key_ring,
            key,
            shutdown: Some(shutdown),
            _data_dir: data_dir,
        }
    }

    /// A request signed with the account key and dated now.
    pub fn request(&self, method: Method, path: &str) -> TestRequest<'_> {
        TestRequest {
            server: self,
            method,
            path: path.to_owned(),
            key: self.key.clone(),
            date: Some(SystemTime::now()),
            headers: Vec::new(),
            omitted: Vec::new(),
            body: Vec::new(),
            address: None,
        }
    }

    /// Creates a database; panics unless the server answers 201.
    pub async fn create_database(&self, id: &str) {
        self.request(Method::POST, "/dbs")
            .json(&serde_json::json!({ "id": id }))
            .send()
            .await
            .expect_status(201);
    }

    /// Creates a container partitioned on `/pk`; panics unless the server answers 201.
    pub async fn create_container(&self, database: &str, id: &str) {
        self.request(Method::POST, &format!("/dbs/{database}/colls"))
            .json(&serde_json::json!({
                "id": id,
                "partitionKey": { "paths": ["/pk"], "kind": "Hash", "version": 2 },
            }))
            .send()
            .await
            .expect_status(201);
    }

    /// Creates database `db` with container `c` (partitioned on `/pk`).
    pub async fn with_container() -> TestServer {
        let server = TestServer::start().await;
        server.create_database("db").await;
        server.create_container("db", "c").await;
        server
    }

    /// Creates `item` (whose `pk` property is `pk`) in container `c` of `db`; panics unless
    /// the server answers 201.
    pub async fn create_item(&self, pk: &str, item: &Value) -> Response {
        let response = self
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .partition_key(pk)
            .json(item)
            .send()
            .await;
        response.expect_status(201);
        response
    }

    /// One change feed page of container `c` of `db` (latest version mode).
    pub async fn change_feed(&self, if_none_match: Option<&str>) -> Response {
        let mut request = self
            .request(Method::GET, "/dbs/db/colls/c/docs")
            .header(headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED);
        if let Some(etag) = if_none_match {
            request = request.header(headers::IF_NONE_MATCH, etag);
        }
        request.send().await
    }

    /// The ids of every change from the beginning of container `c`'s feed, in feed order.
    pub async fn changed_ids(&self) -> Vec<String> {
        let response = self.change_feed(None).await;
        if response.status == 304 {
            return Vec::new();
        }
        response.expect_status(200);
        document_ids(&response.json())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// The `id`s of the `Documents` of a feed or query page, in order.
pub fn document_ids(page: &Value) -> Vec<String> {
    page["Documents"]
        .as_array()
        .unwrap_or_else(|| panic!("a page has a Documents array: {page}"))
        .iter()
        .map(|document| {
            document["id"]
                .as_str()
                .unwrap_or_else(|| panic!("a document has a string id: {document}"))
                .to_owned()
        })
        .collect()
}

/// A request under construction; [`TestRequest::send`] signs it (unless told otherwise).
pub struct TestRequest<'a> {
    server: &'a TestServer,
    method: Method,
    path: String,
    key: MasterKey,
    /// The date signed and sent in `x-ms-date`; `None` sends no date at all.
    date: Option<SystemTime>,
    /// Extra headers; one named `authorization` or `x-ms-date` replaces the computed one.
    headers: Vec<(String, String)>,
    /// Computed headers to leave out.
    omitted: Vec<String>,
    body: Vec<u8>,
    /// What the request is signed for, when not what its path gives.
    address: Option<auth::ResourceAddress>,
}

impl TestRequest<'_> {
    /// Adds a header (replacing the computed `authorization` or `x-ms-date` if so named).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Leaves out a header the client would otherwise compute (`authorization`, `x-ms-date`).
    pub fn without(mut self, name: &str) -> Self {
        self.omitted.push(name.to_ascii_lowercase());
        self
    }

    /// Signs the request for this resource type and link instead of those its path gives
    /// (the Explorer's feed stream is signed as its container's change feed).
    pub fn signed_as(mut self, resource_type: &str, resource_link: &str) -> Self {
        self.address = Some(auth::ResourceAddress {
            resource_type: resource_type.to_owned(),
            resource_link: resource_link.to_owned(),
        });
        self
    }

    /// Signs with another key.
    pub fn signed_with(mut self, key: MasterKey) -> Self {
        self.key = key;
        self
    }

    /// Signs and sends this date instead of now; `None` sends neither date nor a signature
    /// over one (the signature is computed over an empty date).
    pub fn dated(mut self, date: Option<SystemTime>) -> Self {
        self.date = date;
        self
    }

    /// Sets `x-ms-documentdb-partitionkey` to the single string component `pk`.
    pub fn partition_key(self, pk: &str) -> Self {
        let header = Value::Array(vec![Value::String(pk.to_owned())]).to_string();
        self.header(headers::X_MS_DOCUMENTDB_PARTITIONKEY, &header)
    }

    /// Sends `body` as JSON.
    pub fn json(self, body: &Value) -> Self {
        self.body(body.to_string().into_bytes())
            .header(headers::CONTENT_TYPE, "application/json")
    }

    /// Sends these bytes as the body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// Marks the request as a query (`POST .../docs`) with the query text `sql`, allowed to
    /// span partitions (as the Node SDK always sends it).
    pub fn query(self, sql: &str) -> Self {
        self.header(headers::X_MS_DOCUMENTDB_ISQUERY, "true")
            .header(headers::X_MS_DOCUMENTDB_QUERY_ENABLECROSSPARTITION, "true")
            .header(
                headers::CONTENT_TYPE,
                headers::values::CONTENT_TYPE_QUERY_JSON,
            )
            .body(
                serde_json::json!({ "query": sql, "parameters": [] })
                    .to_string()
                    .into_bytes(),
            )
    }

    /// Signs and sends the request on a fresh connection and reads the whole response.
    pub async fn send(self) -> Response {
        let description = format!("{} {}", self.method, self.path);
        tokio::time::timeout(REQUEST_TIMEOUT, self.send_unbounded())
            .await
            .unwrap_or_else(|_| panic!("{description} took longer than {REQUEST_TIMEOUT:?}"))
    }

    /// Signs and sends the request on a fresh connection and answers as soon as the response's
    /// headers arrive, with its body still streaming.
    pub async fn open(self) -> StreamingResponse {
        let description = format!("{} {}", self.method, self.path);
        let response = tokio::time::timeout(REQUEST_TIMEOUT, self.send_for_headers())
            .await
            .unwrap_or_else(|_| panic!("{description} took longer than {REQUEST_TIMEOUT:?}"));
        let (parts, body) = response.into_parts();
        StreamingResponse {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            buffered: String::new(),
        }
    }

    async fn send_unbounded(self) -> Response {
        let response = self.send_for_headers().await;
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(Body::new(body), MAX_RESPONSE_BYTES)
            .await
            .expect("the response body can be read");
        Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        }
    }

    async fn send_for_headers(self) -> hyper::Response<hyper::body::Incoming> {
        let date_text = self.date.map(tributary_wire::headers::format_http_date);
        // A path the server cannot parse is signed as the account: it must be refused for the
        // path before the signature is looked at.
        let address = self
            .address
            .clone()
            .or_else(|| rid_link_address(&self.path))
            .or_else(|| auth::resource_of_path(&self.path).ok())
            .unwrap_or(auth::ResourceAddress {
                resource_type: String::new(),
                resource_link: String::new(),
            });
        let authorization = auth::authorization_header(
            &self.key,
            self.method.as_str(),
            &address.resource_type,
            &address.resource_link,
            date_text.as_deref().unwrap_or(""),
        );
        let mut computed: Vec<(String, String)> = vec![
            (
                "host".to_owned(),
                format!("localhost:{}", self.server.addr.port()),
            ),
            (
                headers::X_MS_VERSION.to_owned(),
                headers::values::API_VERSION.to_owned(),
            ),
            (headers::AUTHORIZATION.to_owned(), authorization),
        ];
        if let Some(date) = date_text {
            computed.push((headers::X_MS_DATE.to_owned(), date));
        }
        let mut builder = hyper::Request::builder()
            .method(self.method.clone())
            .uri(&self.path);
        for (name, value) in &computed {
            let replaced = self.headers.iter().any(|(extra, _)| extra == name);
            if !replaced && !self.omitted.contains(name) {
                builder = builder.header(name.as_str(), value.as_str());
            }
        }
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder
            .body(Body::from(self.body))
            .expect("the test request is well formed");

        let stream = tokio::net::TcpStream::connect(self.server.addr)
            .await
            .expect("the server accepts connections");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("the HTTP/1.1 handshake succeeds");
        tokio::spawn(connection);
        sender
            .send_request(request)
            .await
            .expect("the server answers")
    }
}

/// A response whose body is still arriving: a stream of Server-Sent Events.
pub struct StreamingResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    body: hyper::body::Incoming,
    /// Text received and not yet returned as an event.
    buffered: String,
}

/// One Server-Sent Event, or a comment (a heartbeat: `name` is empty).
#[derive(Debug)]
pub struct StreamEvent {
    /// The `event:` field; empty for a comment.
    pub name: String,
    /// The `data:` lines joined, or a comment's text.
    pub data: String,
}

impl StreamingResponse {
    /// The next event or comment, or `None` if none arrives within `wait` or the stream ends.
    pub async fn next_event(&mut self, wait: std::time::Duration) -> Option<StreamEvent> {
        use http_body_util::BodyExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffered.find("\n\n") {
                let block: String = self.buffered.drain(..end + 2).collect();
                return Some(parse_event(block.trim_end()));
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame()).await;
            match frame {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffered.push_str(
                            std::str::from_utf8(&data).expect("an event stream is UTF-8"),
                        );
                    }
                }
                Ok(Some(Err(_)) | None) | Err(_) => return None,
            }
        }
    }

    /// The next event that is not a comment, within `wait`; panics if none comes.
    pub async fn expect_event(&mut self, wait: std::time::Duration) -> StreamEvent {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self
                .next_event(remaining)
                .await
                .unwrap_or_else(|| panic!("no event within {wait:?}"));
            if !event.name.is_empty() {
                return event;
            }
        }
    }
}

fn parse_event(block: &str) -> StreamEvent {
    let mut name = String::new();
    let mut data = Vec::new();
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            data.push(comment.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("event: ") {
            name = value.to_owned();
        } else if let Some(value) = line.strip_prefix("data: ") {
            data.push(value.to_owned());
        }
    }
    StreamEvent {
        name,
        data: data.join("\n"),
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: bytes::Bytes,
}

impl Response {
    /// A header's value, if present and text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON; panics (showing the body) if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body of a {} response is not JSON ({e}): {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Panics (showing the body) unless the status is `status`.
    pub fn expect_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self
    }

    /// Checks that this is an error response with `status` and a JSON body
    /// `{"code": <non-empty string>, "message": <non-empty string>}`, and returns the message.
    pub fn expect_error(&self, status: u16) -> String {
        self.expect_status(status);
        let body = self.json();
        let code = body["code"].as_str().unwrap_or_default();
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            !code.is_empty() && !message.is_empty(),
            "an error body needs a code and a message: {body}"
        );
        assert_eq!(
            code,
            tributary_wire::error::code_for_status(status),
            "the code names the status"
        );
        assert_eq!(
            self.header(headers::CONTENT_TYPE),
            Some("application/json"),
            "an error body is served as JSON"
        );
        message.to_owned()
    }
}

/// The address a resource-id link (`/dbs/{8-character rid}/...`) is signed with, as the SDKs
/// sign it: the resource type, and the last resource id in the path, lowercased.
fn rid_link_address(path: &str) -> Option<auth::ResourceAddress> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let is_rid = segments.len() >= 2
        && segments[0] == "dbs"
        && segments[1].len() == 8
        && segments[1].ends_with("==");
    if !is_rid {
        return None;
    }
    let n = segments.len();
    let (resource_type, rid) = if n.is_multiple_of(2) {
        (segments[n - 2], segments[n - 1])
    } else {
        (segments[n - 1], segments[n - 2])
    };
    Some(auth::ResourceAddress {
        resource_type: resource_type.to_owned(),
        resource_link: rid.to_lowercase(),
    })
}

/// The `retrievedDocumentCount` of a query's metrics: the items it read from the store.
pub fn retrieved_documents(response: &Response) -> u64 {
    let metrics = response
        .header("x-ms-documentdb-query-metrics")
        .expect("the metrics asked for");
    metrics
        .split(';')
        .find_map(|pair| pair.strip_prefix("retrievedDocumentCount="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no retrievedDocumentCount in {metrics}"))
}
