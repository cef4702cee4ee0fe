//! Just enough of a Cosmos DB REST client for the load generator: one keep-alive HTTP/1.1
//! connection, every request signed with the account master key as the SDKs sign it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{HeaderMap, Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tributary_wire::auth::{self, MasterKey};
use tributary_wire::headers;

use crate::error::BenchError;

/// How much of an unexpected response body an error quotes.
const MAX_QUOTED_BODY_CHARS: usize = 300;

/// A response, read whole.
pub(crate) struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// A header's value as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One HTTP/1.1 connection to the server; requests on it go one at a time.
pub(crate) struct CosmosConnection {
    sender: SendRequest<Full<Bytes>>,
    key: Arc<MasterKey>,
    authority: String,
}

impl CosmosConnection {
    /// Opens a connection to `addr`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        key: Arc<MasterKey>,
    ) -> Result<CosmosConnection, BenchError> {
        let connect_error = |source| BenchError::Connect { addr, source };
        let stream = TcpStream::connect(addr).await.map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect_error(std::io::Error::other(e)))?;
        // The connection task ends when the sender is dropped; its errors show up as failed
        // requests.
        tokio::spawn(connection);
        Ok(CosmosConnection {
            sender,
            key,
            authority: addr.to_string(),
        })
    }

    /// Sends a signed request and reads the whole response; a status outside `expected` is
    /// an error that quotes the body.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        extra_headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        expected: &[u16],
    ) -> Result<Reply, BenchError> {
        let reply = self
            .request(method.clone(), path, extra_headers, body)
            .await?;
        if !expected.contains(&reply.status) {
            let text = String::from_utf8_lossy(&reply.body);
            let mut quoted: String = text.chars().take(MAX_QUOTED_BODY_CHARS).collect();
            if text.chars().count() > MAX_QUOTED_BODY_CHARS {
                quoted.push_str("...");
            }
            return Err(BenchError::Status {
                method: method.to_string(),
                path: path.to_owned(),
                status: reply.status,
                expected: expected
                    .iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" or "),
                body: quoted,
            });
        }
        Ok(reply)
    }

    /// Sends a signed request and reads the whole response, whatever its status; only a
    /// request that cannot be sent or a response that cannot be read is an error. A body is
    /// sent as `application/json` unless `extra_headers` name another content type.
    pub(crate) async fn request(
        &mut self,
        method: Method,
        path: &str,
        extra_headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, BenchError> {
        let transport = |reason: String| BenchError::Transport {
            method: method.to_string(),
            path: path.to_owned(),
            reason,
        };
        let address = auth::resource_of_path(path)
            .map_err(|e| transport(format!("cannot sign the path: {e}")))?;
        let date = headers::format_http_date(SystemTime::now());
        let authorization = auth::authorization_header(
            &self.key,
            method.as_str(),
            &address.resource_type,
            &address.resource_link,
            &date,
        );
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, &self.authority)
            .header(headers::X_MS_DATE, &date)
            .header(headers::AUTHORIZATION, &authorization)
            .header(headers::X_MS_VERSION, headers::values::API_VERSION);
        let names_content_type = extra_headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(CONTENT_TYPE.as_str()));
        if body.is_some() && !names_content_type {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        for (name, value) in extra_headers {
            builder = builder.header(*name, *value);
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| transport(format!("cannot build the request: {e}")))?;
        self.sender
            .ready()
            .await
            .map_err(|e| transport(e.to_string()))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| transport(format!("cannot read the response body: {e}")))?
            .to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}
