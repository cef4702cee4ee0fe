//! [`CosmosClient`]: signed requests, and the operations built on them.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HOST;
use hyper::{Method, Request};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tributary_wire::auth::{self, MasterKey};
use tributary_wire::error::substatus;
use tributary_wire::headers::{self, values};

use crate::transport::{Endpoint, Transport};
use crate::{
    ChangeFeedMode, ChangeFeedPage, ChangeFeedRequest, ChangeFeedStart, ClientError, ClientOptions,
    ConnectionString, MAX_PAGES, Response,
};

/// How much longer than the server-side wait a long-poll change feed request may take.
const LONG_POLL_GRACE: Duration = Duration::from_secs(10);

/// What a path segment (a database, container or document id) is percent-encoded with: all
/// but ASCII letters, digits and `-_.!~*'()`, as `encodeURIComponent` (the Node SDK) does. The
/// server and [`auth::resource_of_path`] decode segments before using or signing them.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// A document as stored: its body with the system properties, and its etag.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The whole body, `_rid`, `_ts`, `_etag` and the other system properties included.
    pub body: Value,
    /// The `_etag`, as given (quotes included): pass it as `if_match` to write only if the
    /// document has not changed since.
    pub etag: String,
}

/// A partition key range: one slice `[min, max)` of the effective partition key space.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PartitionKeyRange {
    /// The range id, for `x-ms-documentdb-partitionkeyrangeid`.
    pub id: String,
    /// The smallest EPK in the range (`minInclusive`, hex; `""` for the first range).
    #[serde(rename = "minInclusive")]
    pub min: String,
    /// The EPK just past the range (`maxExclusive`, hex; `"FF"` for the last range).
    #[serde(rename = "maxExclusive")]
    pub max: String,
    /// The ids of the ranges this one was split from, oldest first.
    #[serde(default)]
    pub parents: Vec<String>,
}

/// A client of one Cosmos DB account (a Tributary server, Azure Cosmos DB, or the emulator).
///
/// Cheap to clone (the clones share one connection pool) and safe to use from many tasks at
/// once. It must be used inside a Tokio runtime: connections run as spawned tasks.
#[derive(Clone)]
pub struct CosmosClient {
    inner: Arc<Inner>,
}

struct Inner {
    key: MasterKey,
    transport: Transport,
    request_timeout: Duration,
}

impl fmt::Debug for CosmosClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CosmosClient")
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

impl CosmosClient {
    /// A client of the account at `connection.endpoint`, signing with `connection.key`.
    /// Nothing is connected until the first request.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidEndpoint`] unless the endpoint is an `http://` or `https://` URL
    /// with a host and no path; [`ClientError::InvalidKey`] if the key is not base64;
    /// [`ClientError::Tls`] if the TLS configuration cannot be built.
    pub fn new(
        connection: &ConnectionString,
        options: ClientOptions,
    ) -> Result<CosmosClient, ClientError> {
        let endpoint = Endpoint::parse(&connection.endpoint)?;
        let key = MasterKey::from_base64(&connection.key)
            .map_err(|e| ClientError::InvalidKey(e.to_string()))?;
        let transport = Transport::new(
            endpoint,
            options.accept_invalid_certs,
            options.max_idle_connections,
        )?;
        Ok(CosmosClient {
            inner: Arc::new(Inner {
                key,
                transport,
                request_timeout: options.request_timeout,
            }),
        })
    }

    /// A client from a connection string (`AccountEndpoint=...;AccountKey=...;`) with the
    /// default options, except that any TLS certificate is accepted when the host is
    /// `localhost`, `127.0.0.1` or `::1` (the emulator's and `tributary serve`'s self-signed
    /// certificates), as the Python SDK does for the emulator.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidConnectionString`], and those of [`CosmosClient::new`].
    pub fn from_connection_string(text: &str) -> Result<CosmosClient, ClientError> {
        let connection = ConnectionString::parse(text)?;
        let endpoint = Endpoint::parse(&connection.endpoint)?;
        let options = ClientOptions {
            accept_invalid_certs: endpoint.is_local(),
            ..ClientOptions::default()
        };
        CosmosClient::new(&connection, options)
    }

    /// The endpoint, with a trailing `/`: `https://localhost:8081/`.
    pub fn endpoint(&self) -> &str {
        &self.inner.transport.endpoint().text
    }

    /// Sends a signed request and reads the whole response, whatever its status.
    ///
    /// `path` is the resource path with its segments percent-encoded, such as
    /// `/dbs/d/colls/c/docs`, optionally followed by a query string (not signed). The client
    /// adds `authorization`, `x-ms-date`, `x-ms-version`, `Host`, and, with a body,
    /// `Content-Type: application/json` unless `headers` has a content type.
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidRequest`] if the path cannot be signed or a header is not valid;
    /// [`ClientError::Transport`], [`ClientError::Timeout`] (after
    /// [`ClientOptions::request_timeout`]) and [`ClientError::ResponseTooLarge`]. A response
    /// of any status is `Ok`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, ClientError> {
        self.send_within(method, path, headers, body, self.inner.request_timeout)
            .await
    }

    /// [`CosmosClient::send`] with its own timeout.
    async fn send_within(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let request = self.signed_request(method.clone(), path, headers, body)?;
        match tokio::time::timeout(timeout, self.inner.transport.round_trip(request)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                method: method.to_string(),
                path: path.to_owned(),
                timeout,
            }),
        }
    }

    fn signed_request(
        &self,
        method: Method,
        path: &str,
        extra_headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let invalid =
            |reason: String| ClientError::InvalidRequest(format!("{method} {path}: {reason}"));
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let resource_path = path.split_once('?').map_or(path.as_str(), |(p, _)| p);
        let address = auth::resource_of_path(resource_path)
            .map_err(|e| invalid(format!("cannot sign the path: {e}")))?;
        let date = headers::format_http_date(SystemTime::now());
        let authorization = auth::authorization_header(
            &self.inner.key,
            method.as_str(),
            &address.resource_type,
            &address.resource_link,
            &date,
        );
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path.as_str())
            .header(HOST, &self.inner.transport.endpoint().authority)
            .header(headers::X_MS_DATE, &date)
            .header(headers::AUTHORIZATION, &authorization)
            .header(headers::X_MS_VERSION, values::API_VERSION)
            .header(headers::ACCEPT, "application/json");
        let has_content_type = extra_headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(headers::CONTENT_TYPE));
        if body.is_some() && !has_content_type {
            builder = builder.header(headers::CONTENT_TYPE, "application/json");
        }
        for (name, value) in extra_headers {
            builder = builder.header(*name, *value);
        }
        builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| invalid(format!("cannot build the request: {e}")))
    }

    // ---- databases and containers -----------------------------------------------------

    /// Creates the database `id` unless it exists.
    ///
    /// # Errors
    ///
    /// Those of [`CosmosClient::send`], and the error for any answer but 201 (created) or
    /// 409 (already there).
    pub async fn create_database_if_not_exists(&self, id: &str) -> Result<(), ClientError> {
        let body = serde_json::json!({ "id": id }).to_string().into_bytes();
        let response = self.send(Method::POST, "/dbs", &[], Some(body)).await?;
        match response.status {
            200 | 201 | 409 => Ok(()),
            _ => Err(ClientError::from_response(&response)),
        }
    }

    /// Creates the container `id` in `database`, hash-partitioned (version 2) on
    /// `partition_key_path` (such as `/id`), unless it exists. An existing container is left
    /// as it is, whatever its partition key.
    ///
    /// # Errors
    ///
    /// Those of [`CosmosClient::send`], and the error for any answer but 201 or 409
    /// ([`ClientError::NotFound`] if the database does not exist).
    pub async fn create_container_if_not_exists(
        &self,
        database: &str,
        id: &str,
        partition_key_path: &str,
    ) -> Result<(), ClientError> {
        let body = serde_json::json!({
            "id": id,
            "partitionKey": { "paths": [partition_key_path], "kind": "Hash", "version": 2 },
        });
        let path = format!("{}/colls", database_path(database));
        let response = self
            .send(
                Method::POST,
                &path,
                &[],
                Some(body.to_string().into_bytes()),
            )
            .await?;
        match response.status {
            200 | 201 | 409 => Ok(()),
            _ => Err(ClientError::from_response(&response)),
        }
    }

    /// The resource ids of a database and of one of its containers: `(database_rid,
    /// container_rid)`.
    ///
    /// # Errors
    ///
    /// Those of [`CosmosClient::send`]; [`ClientError::NotFound`] if either does not exist;
    /// [`ClientError::InvalidResponse`] if a body has no string `_rid`.
    pub async fn container_rids(
        &self,
        database: &str,
        container: &str,
    ) -> Result<(String, String), ClientError> {
        let database_rid = self.read_rid(&database_path(database)).await?;
        let container_rid = self.read_rid(&container_path(database, container)).await?;
        Ok((database_rid, container_rid))
    }

    /// A container's definition as the server returns it (`id`, `partitionKey`, `_rid`, ...).
    ///
    /// # Errors
    ///
    /// Those of [`CosmosClient::send`]; [`ClientError::NotFound`] if it does not exist.
    pub async fn read_container(
        &self,
        database: &str,
        container: &str,
    ) -> Result<Value, ClientError> {
        let response = self
            .send(Method::GET, &container_path(database, container), &[], None)
            .await?;
        json_body(&response, &[200])
    }

    async fn read_rid(&self, path: &str) -> Result<String, ClientError> {
        let response = self.send(Method::GET, path, &[], None).await?;
        let body = json_body(&response, &[200])?;
        body.get("_rid")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::InvalidResponse(format!("GET {path}: no string '_rid'")))
    }

    /// The container's current partition key ranges, in the order the server lists them:
    /// every page of `GET .../pkranges`, without the ranges that other listed ranges were
    /// split from.
    ///
    /// # Errors
    ///
    /// Those of [`CosmosClient::send`]; [`ClientError::NotFound`] if the container does not
    /// exist; [`ClientError::InvalidResponse`] if a page is not a `PartitionKeyRanges` list;
    /// [`ClientError::TooManyPages`] past [`MAX_PAGES`].
    pub async fn partition_key_ranges(
        &self,
        database: &str,
        container: &str,
    ) -> Result<Vec<PartitionKeyRange>, ClientError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(rename = "PartitionKeyRanges")]
            ranges: Vec<PartitionKeyRange>,
        }
        let path = format!("{}/pkranges", container_path(database, container));
        let mut ranges = Vec::new();
        let mut continuation: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut request_headers = Vec::new();
            if let Some(token) = &continuation {
                request_headers.push((headers::X_MS_CONTINUATION, token.as_str()));
            }
            let response = self
                .send(Method::GET, &path, &request_headers, None)
                .await?;
            if response.status != 200 {
                return Err(ClientError::from_response(&response));
            }
            let page: Page = parse_body(&response, &path)?;
            ranges.extend(page.ranges);
            continuation = response
                .header(headers::X_MS_CONTINUATION)
                .filter(|token| !token.is_empty())
                .map(str::to_owned);
            if continuation.is_none() {
                let all = ranges.clone();
                ranges.retain(|range| !all.iter().any(|other| other.parents.contains(&range.id)));
                return Ok(ranges);
            }
        }
        Err(ClientError::TooManyPages {
            path,
            limit: MAX_PAGES,
        })
    }

    // ---- change feed --------------------------------------------------------------------

    /// Reads one page of the container's change feed.
    ///
    /// A page with nothing new is `Ok` with `not_modified` set and the position to continue
    /// from in `etag`. A request with [`ChangeFeedRequest::wait`] may take that long plus up
    /// to 10 s, even past [`ClientOptions::request_timeout`].
    ///
    /// # Errors
    ///
    /// [`ClientError::InvalidRequest`] if `max_items` is 0; those of [`CosmosClient::send`];
    /// [`ClientError::Gone`] (with [`ClientError::is_split`] true) if `range_id` names a range
    /// that was split; [`ClientError::NotFound`] if the container does not exist;
    /// [`ClientError::InvalidResponse`] if a page has no `etag` or no `Documents` list.
    pub async fn change_feed(
        &self,
        database: &str,
        container: &str,
        request: &ChangeFeedRequest,
    ) -> Result<ChangeFeedPage, ClientError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(rename = "Documents")]
            documents: Vec<Box<RawValue>>,
        }
        if request.max_items == 0 {
            return Err(ClientError::InvalidRequest(
                "a change feed page needs max_items of at least 1".to_owned(),
            ));
        }
        let path = documents_path(database, container);
        let max_items = request.max_items.to_string();
        let partition_key = request.partition_key.as_ref().map(partition_key_header);
        let modified_since = match &request.start {
            ChangeFeedStart::Time(time) => Some(headers::format_http_date(*time)),
            _ => None,
        };
        let wait_ms = request.wait.map(|wait| wait.as_millis().to_string());
        let filter = request.filter.as_deref().map(headers::encode_feed_filter);
        let mut request_headers: Vec<(&str, &str)> =
            vec![(headers::X_MS_MAX_ITEM_COUNT, &max_items)];
        match request.mode {
            ChangeFeedMode::LatestVersion => {
                request_headers.push((headers::A_IM, values::A_IM_INCREMENTAL_FEED));
            }
            ChangeFeedMode::AllVersionsAndDeletes => {
                request_headers.push((headers::A_IM, values::A_IM_FULL_FIDELITY_FEED));
                request_headers.push((
                    headers::X_MS_COSMOS_CHANGEFEED_WIRE_FORMAT_VERSION,
                    values::CHANGE_FEED_WIRE_FORMAT_VERSION,
                ));
            }
        }
        match &request.start {
            ChangeFeedStart::Beginning => {}
            ChangeFeedStart::Now => request_headers.push((headers::IF_NONE_MATCH, "*")),
            ChangeFeedStart::Etag(etag) => request_headers.push((headers::IF_NONE_MATCH, etag)),
            ChangeFeedStart::Time(_) => {
                if let Some(date) = &modified_since {
                    request_headers.push((headers::IF_MODIFIED_SINCE, date));
                }
            }
        }
        if let Some(range_id) = &request.range_id {
            request_headers.push((headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID, range_id));
        }
        if let Some((min, max)) = &request.epk_range {
            request_headers.push((headers::X_MS_START_EPK, min));
            request_headers.push((headers::X_MS_END_EPK, max));
            request_headers.push((headers::X_MS_READ_KEY_TYPE, values::READ_KEY_TYPE_EPK_RANGE));
        }
        if let Some(key) = &partition_key {
            request_headers.push((headers::X_MS_DOCUMENTDB_PARTITIONKEY, key));
        }
        if let Some(ms) = &wait_ms {
            request_headers.push((headers::X_TRIBUTARY_WAIT_MS, ms));
        }
        if let Some(filter) = &filter {
            request_headers.push((headers::X_TRIBUTARY_FEED_FILTER, filter));
        }
        let timeout = match request.wait {
            Some(wait) => self
                .inner
                .request_timeout
                .max(wait.saturating_add(LONG_POLL_GRACE)),
            None => self.inner.request_timeout,
        };
        let response = self
            .send_within(Method::GET, &path, &request_headers, None, timeout)
            .await?;
        let not_modified = match response.status {
            200 => false,
            304 => true,
            _ => return Err(ClientError::from_response(&response)),
        };
        let etag = match (response.header(headers::ETAG), &request.start) {
            (Some(etag), _) => etag.to_owned(),
            // Nothing new and no etag: the position has not moved.
            (None, ChangeFeedStart::Etag(etag)) if not_modified => etag.clone(),
            (None, _) => {
                return Err(ClientError::InvalidResponse(format!(
                    "GET {path}: a change feed answer ({}) without an etag",
                    response.status
                )));
            }
        };
        let changes = if not_modified {
            Vec::new()
        } else {
            parse_body::<Page>(&response, &path)?.documents
        };
        Ok(ChangeFeedPage {
            changes,
            etag,
            session_token: response
                .header(headers::X_MS_SESSION_TOKEN)
                .map(str::to_owned),
            not_modified,
            n_filtered: response
                .header(headers::X_TRIBUTARY_FILTERED_COUNT)
                .and_then(|count| count.trim().parse().ok()),
        })
    }

    // ---- documents ----------------------------------------------------------------------

    /// Reads the document `id` in the logical partition `partition_key`; `None` if there is
    /// none.
    ///
    /// `partition_key` is the key's value (`"ada"`, `42`, `null`, `{}` for undefined), or an
    /// array of the components of a hierarchical key.
    ///
    /// # Errors
    ///
    /// Those of [`CosmosClient::send`]; [`ClientError::InvalidResponse`] if the body is not
    /// a document with an `_etag`; [`ClientError::NotFound`] for a 404 with sub-status 1003
    /// (Azure Cosmos DB's answer when the container does not exist; a Tributary server
    /// answers a plain 404 then, which reads as `None`); the error for any other answer but
    /// 200.
    pub async fn read_document(
        &self,
        database: &str,
        container: &str,
        partition_key: &Value,
        id: &str,
    ) -> Result<Option<Document>, ClientError> {
        let path = document_path(database, container, id);
        let key = partition_key_header(partition_key);
        let response = self
            .send(
                Method::GET,
                &path,
                &[(headers::X_MS_DOCUMENTDB_PARTITIONKEY, &key)],
                None,
            )
            .await?;
        match response.status {
            200 => document(&response, &path).map(Some),
            404 if response.substatus() != Some(substatus::OWNER_RESOURCE_NOT_FOUND) => Ok(None),
            _ => Err(ClientError::from_response(&response)),
        }
    }

    /// Creates a document; its `id` and partition key are in `body`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Conflict`] if a document with that id exists in the partition; those of
    /// [`CosmosClient::send`]; the error for any other answer but 201.
    pub async fn create_document(
        &self,
        database: &str,
        container: &str,
        partition_key: &Value,
        body: &Value,
    ) -> Result<Document, ClientError> {
        self.write_document(database, container, partition_key, body, false)
            .await
    }

    /// Creates a document, or replaces the one with the same id in the partition.
    ///
    /// # Errors
    ///
    /// Those of [`CosmosClient::send`]; the error for any answer but 200 or 201.
    pub async fn upsert_document(
        &self,
        database: &str,
        container: &str,
        partition_key: &Value,
        body: &Value,
    ) -> Result<Document, ClientError> {
        self.write_document(database, container, partition_key, body, true)
            .await
    }

    async fn write_document(
        &self,
        database: &str,
        container: &str,
        partition_key: &Value,
        body: &Value,
        upsert: bool,
    ) -> Result<Document, ClientError> {
        let path = documents_path(database, container);
        let key = partition_key_header(partition_key);
        let mut request_headers = vec![(headers::X_MS_DOCUMENTDB_PARTITIONKEY, key.as_str())];
        if upsert {
            request_headers.push((headers::X_MS_DOCUMENTDB_IS_UPSERT, "True"));
        }
        let response = self
            .send(
                Method::POST,
                &path,
                &request_headers,
                Some(body.to_string().into_bytes()),
            )
            .await?;
        match response.status {
            200 | 201 => document(&response, &path),
            _ => Err(ClientError::from_response(&response)),
        }
    }

    /// Replaces the document `id` with `body`; with `if_match`, only if its etag is still
    /// that one.
    ///
    /// # Errors
    ///
    /// [`ClientError::PreconditionFailed`] if the etag no longer matches;
    /// [`ClientError::NotFound`] if there is no such document; those of
    /// [`CosmosClient::send`]; the error for any other answer but 200.
    pub async fn replace_document(
        &self,
        database: &str,
        container: &str,
        partition_key: &Value,
        id: &str,
        body: &Value,
        if_match: Option<&str>,
    ) -> Result<Document, ClientError> {
        let path = document_path(database, container, id);
        let key = partition_key_header(partition_key);
        let mut request_headers = vec![(headers::X_MS_DOCUMENTDB_PARTITIONKEY, key.as_str())];
        if let Some(etag) = if_match {
            request_headers.push((headers::IF_MATCH, etag));
        }
        let response = self
            .send(
                Method::PUT,
                &path,
                &request_headers,
                Some(body.to_string().into_bytes()),
            )
            .await?;
        match response.status {
            200 | 201 => document(&response, &path),
            _ => Err(ClientError::from_response(&response)),
        }
    }

    /// Deletes the document `id`; with `if_match`, only if its etag is still that one.
    ///
    /// # Errors
    ///
    /// [`ClientError::NotFound`] if there is no such document;
    /// [`ClientError::PreconditionFailed`] if the etag no longer matches; those of
    /// [`CosmosClient::send`]; the error for any other answer but 204.
    pub async fn delete_document(
        &self,
        database: &str,
        container: &str,
        partition_key: &Value,
        id: &str,
        if_match: Option<&str>,
    ) -> Result<(), ClientError> {
        let path = document_path(database, container, id);
        let key = partition_key_header(partition_key);
        let mut request_headers = vec![(headers::X_MS_DOCUMENTDB_PARTITIONKEY, key.as_str())];
        if let Some(etag) = if_match {
            request_headers.push((headers::IF_MATCH, etag));
        }
        let response = self
            .send(Method::DELETE, &path, &request_headers, None)
            .await?;
        match response.status {
            200 | 204 => Ok(()),
            _ => Err(ClientError::from_response(&response)),
        }
    }

    /// Commits `operations` (a transactional batch's operation objects, each optionally naming
    /// its own `database` and `container`) all together or not at all, with Tributary's
    /// cross-container transaction extension ([`headers::X_TRIBUTARY_TRANSACTION`]; a
    /// Tributary server only). Returns whether they committed and each operation's result
    /// object (`statusCode`, `eTag`, `resourceBody`, `message`).
    ///
    /// # Errors
    ///
    /// Those of [`CosmosClient::send`]; the error for any answer but 200 or 207 (a 400 for a
    /// malformed or oversized transaction, 413 for a body over the server's limit);
    /// [`ClientError::InvalidResponse`] if the body is not a list of results.
    pub async fn transaction(
        &self,
        database: &str,
        container: &str,
        operations: &[Value],
    ) -> Result<(bool, Vec<Value>), ClientError> {
        let path = documents_path(database, container);
        let body = serde_json::to_vec(operations)
            .map_err(|e| ClientError::InvalidRequest(format!("POST {path}: {e}")))?;
        let response = self
            .send(
                Method::POST,
                &path,
                &[(headers::X_TRIBUTARY_TRANSACTION, "true")],
                Some(body),
            )
            .await?;
        let results: Vec<Value> = match json_body(&response, &[200, 207])? {
            Value::Array(results) => results,
            _ => {
                return Err(ClientError::InvalidResponse(format!(
                    "the response to the transaction POST {path} is not a list of results"
                )));
            }
        };
        Ok((response.status == 200, results))
    }

    /// Runs a query over the whole container (across partitions) and returns every result,
    /// following `x-ms-continuation` over all pages. `parameters` are `("@name", value)`.
    ///
    /// # Errors
    ///
    /// Those of [`CosmosClient::send`]; [`ClientError::Status`] with 400 for a query the
    /// server refuses; [`ClientError::InvalidResponse`] if a page is not a `Documents` list;
    /// [`ClientError::TooManyPages`] past [`MAX_PAGES`].
    pub async fn query_documents(
        &self,
        database: &str,
        container: &str,
        query: &str,
        parameters: &[(&str, Value)],
    ) -> Result<Vec<Value>, ClientError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(rename = "Documents")]
            documents: Vec<Value>,
        }
        let path = documents_path(database, container);
        let parameters: Vec<Value> = parameters
            .iter()
            .map(|(name, value)| serde_json::json!({ "name": name, "value": value }))
            .collect();
        let body = serde_json::json!({ "query": query, "parameters": parameters }).to_string();
        let mut results = Vec::new();
        let mut continuation: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut request_headers = vec![
                (headers::X_MS_DOCUMENTDB_ISQUERY, "True"),
                (headers::X_MS_DOCUMENTDB_QUERY_ENABLECROSSPARTITION, "True"),
                (headers::CONTENT_TYPE, values::CONTENT_TYPE_QUERY_JSON),
            ];
            if let Some(token) = &continuation {
                request_headers.push((headers::X_MS_CONTINUATION, token.as_str()));
            }
            let response = self
                .send(
                    Method::POST,
                    &path,
                    &request_headers,
                    Some(body.clone().into_bytes()),
                )
                .await?;
            if response.status != 200 {
                return Err(ClientError::from_response(&response));
            }
            results.extend(parse_body::<Page>(&response, &path)?.documents);
            continuation = response
                .header(headers::X_MS_CONTINUATION)
                .filter(|token| !token.is_empty())
                .map(str::to_owned);
            if continuation.is_none() {
                return Ok(results);
            }
        }
        Err(ClientError::TooManyPages {
            path,
            limit: MAX_PAGES,
        })
    }
}

/// `/dbs/{database}`, the id percent-encoded.
fn database_path(database: &str) -> String {
    format!("/dbs/{}", utf8_percent_encode(database, PATH_SEGMENT))
}

/// `/dbs/{database}/colls/{container}`.
fn container_path(database: &str, container: &str) -> String {
    format!(
        "{}/colls/{}",
        database_path(database),
        utf8_percent_encode(container, PATH_SEGMENT)
    )
}

/// `/dbs/{database}/colls/{container}/docs`.
fn documents_path(database: &str, container: &str) -> String {
    format!("{}/docs", container_path(database, container))
}

/// `/dbs/{database}/colls/{container}/docs/{id}`.
fn document_path(database: &str, container: &str, id: &str) -> String {
    format!(
        "{}/{}",
        documents_path(database, container),
        utf8_percent_encode(id, PATH_SEGMENT)
    )
}

/// The `x-ms-documentdb-partitionkey` value: the key as a JSON array of its components (a
/// single value is wrapped: `"ada"` becomes `["ada"]`), with every non-ASCII character
/// written as a `\u` escape, since a header value must be ASCII.
fn partition_key_header(partition_key: &Value) -> String {
    let components = match partition_key {
        Value::Array(_) => partition_key.to_string(),
        single => Value::Array(vec![single.clone()]).to_string(),
    };
    let mut ascii = String::with_capacity(components.len());
    for c in components.chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            // Outside of strings JSON text is ASCII, so every such character is in a string,
            // where a \u escape (a surrogate pair above the BMP) means the same.
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    ascii
}

/// The body as JSON, if the status is one of `expected`; otherwise the error for the status.
fn json_body(response: &Response, expected: &[u16]) -> Result<Value, ClientError> {
    if !expected.contains(&response.status) {
        return Err(ClientError::from_response(response));
    }
    serde_json::from_slice(&response.body).map_err(|e| {
        ClientError::InvalidResponse(format!("a {} response is not JSON: {e}", response.status))
    })
}

/// The body parsed as `T`.
fn parse_body<'a, T: Deserialize<'a>>(
    response: &'a Response,
    path: &str,
) -> Result<T, ClientError> {
    serde_json::from_slice(&response.body).map_err(|e| {
        ClientError::InvalidResponse(format!(
            "the {} response to {path} does not have the expected shape: {e}",
            response.status
        ))
    })
}

/// A document response: the body, and its `_etag` (or the `etag` header).
fn document(response: &Response, path: &str) -> Result<Document, ClientError> {
    let body: Value = parse_body(response, path)?;
    let etag = body
        .get("_etag")
        .and_then(Value::as_str)
        .or_else(|| response.header(headers::ETAG))
        .map(str::to_owned)
        .ok_or_else(|| {
            ClientError::InvalidResponse(format!("the document at {path} has no '_etag'"))
        })?;
    Ok(Document { body, etag })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_key_header_is_an_ascii_json_array() {
        let cases = [
            (serde_json::json!("ada"), r#"["ada"]"#),
            (serde_json::json!(42), "[42]"),
            (serde_json::json!(null), "[null]"),
            (serde_json::json!({}), "[{}]"),
            (serde_json::json!(["a", 1]), r#"["a",1]"#),
            (serde_json::json!("é😀"), r#"["\u00e9\ud83d\ude00"]"#),
        ];
        for (key, expected) in cases {
            assert_eq!(partition_key_header(&key), expected, "key {key}");
        }
    }

    #[test]
    fn ids_are_percent_encoded_in_paths() {
        assert_eq!(
            document_path("d b", "c/1", "a?#%é"),
            "/dbs/d%20b/colls/c%2F1/docs/a%3F%23%25%C3%A9"
        );
    }
}
