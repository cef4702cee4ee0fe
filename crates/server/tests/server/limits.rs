//! Connection limits over real sockets: a half-sent header and an idle keep-alive connection
//! are closed after the header-read timeout, an idle HTTP/2 connection gets a `GOAWAY` and is
//! closed, a request in progress is not cut off by it, and a connection past the connection
//! limit is answered 429 (with `x-ms-retry-after-ms`) and closed, while the others keep
//! working, and request bodies past the memory budget are answered 429 until the ones in
//! progress are answered.
//!
//! Timeouts here are bounds, not measurements: a test waits up to [`CLOSE_BOUND`] for what
//! should happen after a fraction of a second.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use axum::http::Method;
use tributary_wire::headers;

use crate::harness::TestServer;

/// The header-read timeout of the timeout tests.
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a test waits for the server to close a connection.
const CLOSE_BOUND: Duration = Duration::from_secs(20);

/// Reads until the server closes the connection; returns what it sent. Panics if it stays
/// open past [`CLOSE_BOUND`].
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(CLOSE_BOUND, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past {CLOSE_BOUND:?}"
    );
    String::from_utf8_lossy(&received).into_owned()
}

/// An unauthenticated `GET /` (the server answers it 401, which is enough to see it served).
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";

#[tokio::test]
async fn a_half_sent_header_is_closed_after_the_header_read_timeout() {
    let server = TestServer::start_with(|config| config.header_read_timeout = SHORT_TIMEOUT).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nx-ms-version: 2020-")
        .await
        .expect("sends half a header");
    read_until_closed(&mut stream).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    let server = TestServer::start_with(|config| config.header_read_timeout = SHORT_TIMEOUT).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    stream.write_all(REQUEST).await.expect("sends a request");
    let answered = read_until_closed(&mut stream).await;
    assert!(answered.starts_with("HTTP/1.1 401"), "{answered}");
}

#[tokio::test]
async fn a_connection_past_the_limit_is_answered_429_and_the_others_keep_working() {
    let server = TestServer::start_with(|config| config.max_connections = 2).await;
    let mut first = TcpStream::connect(server.addr).await.expect("connects");
    let mut second = TcpStream::connect(server.addr).await.expect("connects");
    // Both hold a slot: each has been served a request.
    for stream in [&mut first, &mut second] {
        stream.write_all(REQUEST).await.expect("sends a request");
        let mut buffer = [0u8; 1024];
        let n = stream.read(&mut buffer).await.expect("an answer");
        assert!(
            buffer[..n].starts_with(b"HTTP/1.1 401"),
            "{}",
            String::from_utf8_lossy(&buffer[..n])
        );
    }
    let mut third = TcpStream::connect(server.addr).await.expect("connects");
    third.write_all(REQUEST).await.expect("sends a request");
    let refused = read_until_closed(&mut third).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    let lower = refused.to_ascii_lowercase();
    assert!(lower.contains("x-ms-retry-after-ms: 1000"), "{refused}");
    assert!(refused.contains("limit of 2 open connections"), "{refused}");
    // The connections within the limit still work.
    first.write_all(REQUEST).await.expect("sends a request");
    let mut buffer = [0u8; 1024];
    let n = first.read(&mut buffer).await.expect("an answer");
    assert!(buffer[..n].starts_with(b"HTTP/1.1 401"));
    // A slot freed is a slot taken again.
    drop(second);
    let served_again = tokio::time::timeout(CLOSE_BOUND, async {
        loop {
            let mut stream = TcpStream::connect(server.addr).await.expect("connects");
            stream.write_all(REQUEST).await.expect("sends a request");
            let mut buffer = [0u8; 1024];
            let n = stream.read(&mut buffer).await.unwrap_or(0);
            if buffer[..n].starts_with(b"HTTP/1.1 401") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        served_again.is_ok(),
        "a freed slot was not given to a new connection"
    );
}

/// A signed `POST` that announces a 1,000-byte body and sends 10 bytes of it.
fn slow_body_request(server: &TestServer) -> Vec<u8> {
    partial_create_database(server, 1_000)
}

/// A signed `POST /dbs` that announces a body of `length` bytes and sends 10 bytes of it.
fn partial_create_database(server: &TestServer, length: usize) -> Vec<u8> {
    let key = tributary_wire::auth::MasterKey::from_base64(tributary_wire::auth::EMULATOR_KEY)
        .expect("the emulator key");
    let date = tributary_wire::headers::format_http_date(std::time::SystemTime::now());
    let authorization = tributary_wire::auth::authorization_header(&key, "POST", "dbs", "", &date);
    let mut request = format!(
        "POST /dbs HTTP/1.1\r\nHost: localhost:{}\r\nx-ms-version: 2020-07-15\r\nx-ms-date: {date}\r\nauthorization: {authorization}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n",
        server.addr.port()
    )
    .into_bytes();
    request.extend_from_slice(b"{\"id\": \"sl");
    request
}

#[tokio::test]
async fn a_request_body_sent_too_slowly_is_answered_408_after_the_request_timeout() {
    let server = TestServer::start_with(|config| {
        config.request_timeout = SHORT_TIMEOUT;
        // Only the request timeout is under test.
        config.header_read_timeout = CLOSE_BOUND * 2;
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    stream
        .write_all(&slow_body_request(&server))
        .await
        .expect("sends the headers and a tenth of the body");
    let mut received = Vec::new();
    let answered = tokio::time::timeout(CLOSE_BOUND, async {
        let mut buffer = [0u8; 4096];
        while !String::from_utf8_lossy(&received).contains("request timeout") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    })
    .await;
    assert!(answered.is_ok(), "no answer within {CLOSE_BOUND:?}");
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("may have been applied"), "{text}");
    // The database was not created: the request never reached the store.
    let read = server
        .request(axum::http::Method::GET, "/dbs/sl")
        .send()
        .await;
    assert_eq!(read.status, 404);
}

/// The HTTP/2 connection preface and an empty SETTINGS frame: what a prior-knowledge (h2c)
/// client sends first.
const HTTP2_PREFACE: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[tokio::test]
async fn an_idle_http2_connection_gets_a_goaway_and_is_closed() {
    const PING: u8 = 0x6;
    const GOAWAY: u8 = 0x7;
    const ACK: u8 = 0x1;
    let server = TestServer::start_with(|config| config.header_read_timeout = SHORT_TIMEOUT).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    stream
        .write_all(HTTP2_PREFACE)
        .await
        .expect("sends the preface");
    // Read frames until the server closes, acknowledging its PINGs as a client must.
    let mut frame_types = Vec::new();
    let read = tokio::time::timeout(CLOSE_BOUND, async {
        let mut header = [0u8; 9];
        while stream.read_exact(&mut header).await.is_ok() {
            let length =
                usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
            let mut payload = vec![0u8; length];
            if stream.read_exact(&mut payload).await.is_err() {
                break;
            }
            frame_types.push(header[3]);
            if header[3] == PING && header[4] & ACK == 0 {
                let mut ack = vec![0, 0, 8, PING, ACK, 0, 0, 0, 0];
                ack.extend_from_slice(&payload);
                let _ = stream.write_all(&ack).await;
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept an idle HTTP/2 connection open past {CLOSE_BOUND:?}"
    );
    assert!(
        frame_types.contains(&GOAWAY),
        "frame types sent: {frame_types:?}"
    );
}

#[tokio::test]
async fn a_request_in_progress_outlives_the_idle_timeout() {
    let server = TestServer::start_with(|config| config.header_read_timeout = SHORT_TIMEOUT).await;
    server.create_database("db").await;
    server.create_container("db", "c").await;
    let etag = server
        .change_feed(Some("*"))
        .await
        .header(headers::ETAG)
        .expect("an etag")
        .to_owned();
    // A long-poll feed read that waits four idle timeouts for a change that never comes.
    let wait = SHORT_TIMEOUT * 4;
    let started = std::time::Instant::now();
    let response = server
        .request(Method::GET, "/dbs/db/colls/c/docs")
        .header(headers::A_IM, headers::values::A_IM_INCREMENTAL_FEED)
        .header(headers::IF_NONE_MATCH, &etag)
        .header(headers::X_TRIBUTARY_WAIT_MS, &wait.as_millis().to_string())
        .send()
        .await;
    response.expect_status(304);
    assert!(
        started.elapsed() >= wait - Duration::from_millis(50),
        "answered after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn bodies_past_the_memory_budget_are_answered_429_until_the_ones_in_progress_end() {
    // The least budget there is: one largest body (4 MiB).
    let budget = 4 * 1024 * 1024;
    let server = TestServer::start_with(|config| {
        config.max_request_memory = budget;
        config.request_timeout = CLOSE_BOUND * 2;
        config.header_read_timeout = CLOSE_BOUND * 2;
    })
    .await;
    // A client announces the largest body and sends a little of it: the whole budget is
    // reserved for it while it uploads.
    let mut uploading = TcpStream::connect(server.addr).await.expect("connects");
    uploading
        .write_all(&partial_create_database(&server, budget))
        .await
        .expect("sends the headers and the start of the body");
    let refused = tokio::time::timeout(CLOSE_BOUND, async {
        loop {
            let response = server
                .request(Method::POST, "/dbs")
                .json(&serde_json::json!({"id": "meanwhile"}))
                .send()
                .await;
            if response.status == 429 {
                break response;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let refused = match refused {
        Ok(response) => response,
        Err(_) => panic!("no 429 within {CLOSE_BOUND:?}"),
    };
    assert!(
        refused.header(headers::X_MS_RETRY_AFTER_MS).is_some(),
        "the SDKs wait as long as the 429 says"
    );
    assert!(
        refused
            .expect_error(429)
            .contains("request bodies in progress"),
        "the message names the cause"
    );
    // A read carries no body and is served meanwhile.
    server
        .request(Method::GET, "/dbs")
        .send()
        .await
        .expect_status(200);
    // The upload ends (its client goes away): the budget is free again.
    drop(uploading);
    let created = tokio::time::timeout(CLOSE_BOUND, async {
        loop {
            let response = server
                .request(Method::POST, "/dbs")
                .json(&serde_json::json!({"id": "after"}))
                .send()
                .await;
            if response.status != 429 {
                break response.status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        created.ok(),
        Some(201),
        "the freed budget serves the next write"
    );
}
