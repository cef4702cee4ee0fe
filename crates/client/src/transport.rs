//! Connections to the endpoint: plain TCP or TLS (rustls with the ring provider), HTTP/1.1,
//! kept alive in a bounded pool of idle connections.
//!
//! A connection serves one request at a time. It is taken from the pool (or opened) for a
//! request and put back only after the whole response body has been read, so a connection in
//! the pool is always between requests. A request that fails or times out drops its
//! connection: hyper closes it, and nothing half-read is ever reused.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::{ClientError, MAX_RESPONSE_BODY_BYTES, Response};

/// The request body type every connection carries.
type Body = Full<Bytes>;

/// Where requests go, from the endpoint URL.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The endpoint as given, with a trailing `/` added if it had none.
    pub text: String,
    /// Whether the scheme is `https`.
    pub is_https: bool,
    /// The host to connect to, without IPv6 brackets.
    pub host: String,
    /// The port to connect to (the scheme's default if the URL names none).
    pub port: u16,
    /// The `Host` header value: the URL's authority.
    pub authority: String,
}

impl Endpoint {
    /// Parses an `http://` or `https://` URL with a host and an empty or `/` path.
    pub(crate) fn parse(text: &str) -> Result<Endpoint, ClientError> {
        let invalid = |reason: &str| ClientError::InvalidEndpoint {
            endpoint: crate::error::quoted(text),
            reason: reason.to_owned(),
        };
        let uri: Uri = text
            .trim()
            .parse()
            .map_err(|_| invalid("it is not a URL"))?;
        let is_https = match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("https") => true,
            Some(scheme) if scheme.eq_ignore_ascii_case("http") => false,
            Some(_) => return Err(invalid("the scheme must be http or https")),
            None => return Err(invalid("it has no scheme (expected https://host:port/)")),
        };
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
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("it has no host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid(
                "an endpoint is the account root: no path or query after the host",
            ));
        }
        let port = uri.port_u16().unwrap_or(if is_https { 443 } else { 80 });
        let mut text = text.trim().to_owned();
        if !text.ends_with('/') {
            text.push('/');
        }
        Ok(Endpoint {
            text,
            is_https,
            host,
            port,
            authority,
        })
    }

    /// Whether the host is this machine (`localhost`, `127.0.0.1`, `::1`), as for the
    /// emulator and a local `tributary serve`.
    pub(crate) fn is_local(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host == "127.0.0.1"
            || self.host == "::1"
    }
}

/// A pool of keep-alive HTTP/1.1 connections to one endpoint.
pub(crate) struct Transport {
    endpoint: Endpoint,
    /// `Some` for `https` endpoints: the connector and the name the certificate must carry.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Idle connections, between requests; at most `max_idle`.
    idle: Mutex<Vec<SendRequest<Body>>>,
    max_idle: usize,
}

impl Transport {
    /// A pool for `endpoint` (nothing is connected until the first request).
    pub(crate) fn new(
        endpoint: Endpoint,
        accept_invalid_certs: bool,
        max_idle: usize,
    ) -> Result<Transport, ClientError> {
        let tls = if endpoint.is_https {
            let name = ServerName::try_from(endpoint.host.clone()).map_err(|e| {
                ClientError::InvalidEndpoint {
                    endpoint: endpoint.text.clone(),
                    reason: format!("the host is not a valid TLS server name: {e}"),
                }
            })?;
            Some((tls_connector(accept_invalid_certs)?, name))
        } else {
            None
        };
        Ok(Transport {
            endpoint,
            tls,
            idle: Mutex::new(Vec::with_capacity(max_idle)),
            max_idle,
        })
    }

    /// The endpoint requests go to.
    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `request` and reads the whole response (at most [`MAX_RESPONSE_BODY_BYTES`]).
    ///
    /// A pooled connection the server has closed in the meantime hands the request back
    /// unsent; it is then sent once more on a fresh connection.
    pub(crate) async fn round_trip(&self, request: Request<Body>) -> Result<Response, ClientError> {
        let method = request.method().to_string();
        let path = request.uri().path().to_owned();
        let transport = |reason: String| ClientError::Transport {
            method: method.clone(),
            path: path.clone(),
            reason,
        };
        let mut request = request;
        let mut fresh_only = false;
        loop {
            let (mut sender, reused) = match self.take_idle(fresh_only).await {
                Some(sender) => (sender, true),
                None => (self.connect().await.map_err(&transport)?, false),
            };
            let response = match sender.try_send_request(request).await {
                Ok(response) => response,
                Err(mut error) => match error.take_message() {
                    Some(unsent) if reused => {
                        request = unsent;
                        fresh_only = true;
                        continue;
                    }
                    _ => return Err(transport(error.into_error().to_string())),
                },
            };
            let (parts, body) = response.into_parts();
            let body = match Limited::new(body, MAX_RESPONSE_BODY_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                    return Err(ClientError::ResponseTooLarge {
                        method,
                        path,
                        limit_bytes: MAX_RESPONSE_BODY_BYTES,
                    });
                }
                Err(error) => {
                    return Err(transport(format!("cannot read the response body: {error}")));
                }
            };
            self.put_idle(sender);
            return Ok(Response {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            });
        }
    }

    /// An idle connection ready for a request, if the pool has one (never when `fresh_only`).
    async fn take_idle(&self, fresh_only: bool) -> Option<SendRequest<Body>> {
        if fresh_only {
            return None;
        }
        loop {
            let mut sender = self.idle.lock().pop()?;
            // A connection the server closed reports an error here and is dropped.
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
        let mut idle = self.idle.lock();
        if idle.len() < self.max_idle {
            idle.push(sender);
        }
    }

    /// Opens a connection: TCP, then TLS for `https`, then the HTTP/1.1 handshake.
    async fn connect(&self) -> Result<SendRequest<Body>, String> {
        let Endpoint { host, port, .. } = &self.endpoint;
        let stream = TcpStream::connect((host.as_str(), *port))
            .await
            .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
        stream
            .set_nodelay(true)
            .map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;
        let handshake_error = |e: hyper::Error| format!("HTTP/1.1 handshake failed: {e}");
        match &self.tls {
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| format!("TLS handshake with {host}:{port} failed: {e}"))?;
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(handshake_error)?;
                // The connection task ends when its sender is dropped; its errors show up as
                // failed requests.
                tokio::spawn(connection);
                Ok(sender)
            }
            None => {
                let (sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream))
                        .await
                        .map_err(handshake_error)?;
                tokio::spawn(connection);
                Ok(sender)
            }
        }
    }
}

/// The TLS client configuration: the Mozilla roots (`webpki-roots`), or any certificate at
/// all when `accept_invalid_certs`; HTTP/1.1 offered by ALPN.
fn tls_connector(accept_invalid_certs: bool) -> Result<TlsConnector, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?;
    let mut config = if accept_invalid_certs {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth()
    } else {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Accepts whatever certificate the server shows (for the emulator's and `tributary serve`'s
/// self-signed ones); the handshake signatures are still checked, so the server does hold the
/// key of the certificate it showed.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
