//! Connection strings, endpoints, TLS, and what a broken or silent server looks like.

use std::time::{Duration, Instant};

use tributary_client::{ClientError, ClientOptions, ConnectionString, CosmosClient, Method};
use tributary_wire::auth::EMULATOR_KEY;

use crate::harness::TestServer;

#[test]
fn a_connection_string_is_read_in_any_order_with_or_without_the_trailing_semicolon() {
    let cases = [
        "AccountEndpoint=https://localhost:8081/;AccountKey=a2V5PQ==;",
        "AccountKey=a2V5PQ==;AccountEndpoint=https://localhost:8081/",
        " accountendpoint = https://localhost:8081/ ; ACCOUNTKEY=a2V5PQ== ; ",
        "AccountEndpoint=https://localhost:8081/;AccountKey=a2V5PQ==;DisableServerCertificateValidation=True;",
    ];
    for text in cases {
        let parsed = ConnectionString::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(parsed.endpoint, "https://localhost:8081/", "{text}");
        assert_eq!(
            parsed.key, "a2V5PQ==",
            "{text}: the key keeps its '=' padding"
        );
    }
}

#[test]
fn a_bad_connection_string_is_refused_with_a_message_naming_what_is_wrong() {
    let cases = [
        ("", "AccountEndpoint is missing"),
        ("AccountKey=a2V5;", "AccountEndpoint is missing"),
        (
            "AccountEndpoint=https://localhost:8081/;",
            "AccountKey is missing",
        ),
        (
            "AccountEndpoint=https://localhost:8081/;AccountKey=;",
            "AccountKey is missing",
        ),
        (
            "AccountEndpoint=https://localhost:8081/;AccountKey",
            "field 2 is not name=value",
        ),
        (
            "AccountEndpoint=https://a/;AccountEndpoint=https://b/;AccountKey=a2V5;",
            "AccountEndpoint is given twice",
        ),
    ];
    for (text, expected) in cases {
        match ConnectionString::parse(text) {
            Err(ClientError::InvalidConnectionString(message)) => assert!(
                message.contains(expected),
                "{text:?}: expected a message with {expected:?}, got {message:?}"
            ),
            other => panic!("{text:?}: expected InvalidConnectionString, got {other:?}"),
        }
    }
    let too_long = format!("AccountKey={};", "k".repeat(5000));
    assert!(matches!(
        ConnectionString::parse(&too_long),
        Err(ClientError::InvalidConnectionString(_))
    ));
}

#[test]
fn the_key_never_shows_in_debug_output_or_errors() {
    let secret = "c2VjcmV0LWtleQ==";
    let parsed = ConnectionString::parse(&format!(
        "AccountEndpoint=https://localhost:8081/;AccountKey={secret};"
    ))
    .expect("valid");
    assert!(!format!("{parsed:?}").contains(secret));
    let error = ConnectionString::parse(&format!("AccountKey={secret};")).expect_err("no endpoint");
    assert!(!error.to_string().contains(secret), "{error}");
}

#[test]
fn a_bad_endpoint_or_key_is_refused_when_the_client_is_made() {
    for endpoint in [
        "localhost:8081",
        "ftp://localhost:8081/",
        "https://",
        "https://localhost:8081/dbs",
        "not a url",
    ] {
        let connection = ConnectionString {
            endpoint: endpoint.to_owned(),
            key: EMULATOR_KEY.to_owned(),
        };
        match CosmosClient::new(&connection, ClientOptions::default()) {
            Err(ClientError::InvalidEndpoint { .. }) => {}
            other => panic!("{endpoint}: expected InvalidEndpoint, got {other:?}"),
        }
    }
    let connection = ConnectionString {
        endpoint: "https://localhost:8081/".to_owned(),
        key: "not base64!".to_owned(),
    };
    assert!(matches!(
        CosmosClient::new(&connection, ClientOptions::default()),
        Err(ClientError::InvalidKey(_))
    ));
}

#[test]
fn the_endpoint_is_reported_with_a_trailing_slash() {
    let client = CosmosClient::from_connection_string(&format!(
        "AccountEndpoint=http://localhost:8081;AccountKey={EMULATOR_KEY}"
    ))
    .expect("valid");
    assert_eq!(client.endpoint(), "http://localhost:8081/");
}

#[tokio::test]
async fn a_local_https_endpoint_accepts_the_self_signed_certificate_from_a_connection_string() {
    let server = TestServer::start_tls().await;
    assert!(
        server.endpoint.starts_with("https://localhost:"),
        "{}",
        server.endpoint
    );
    let client = CosmosClient::from_connection_string(&server.connection_string()).expect("valid");
    client
        .create_database_if_not_exists("db")
        .await
        .expect("the request goes through over TLS");
    let response = client
        .send(Method::GET, "/", &[], None)
        .await
        .expect("the account document");
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn a_strict_client_refuses_a_self_signed_certificate() {
    let server = TestServer::start_tls().await;
    let connection = ConnectionString::parse(&server.connection_string()).expect("valid");
    let strict = CosmosClient::new(&connection, ClientOptions::default()).expect("valid");
    match strict.send(Method::GET, "/", &[], None).await {
        Err(ClientError::Transport { reason, .. }) => {
            assert!(reason.contains("TLS"), "the reason names TLS: {reason}");
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_closed_port_is_a_transport_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let port = listener.local_addr().expect("bound").port();
    drop(listener);
    let client = CosmosClient::from_connection_string(&format!(
        "AccountEndpoint=http://127.0.0.1:{port}/;AccountKey={EMULATOR_KEY};"
    ))
    .expect("valid");
    match client.send(Method::GET, "/", &[], None).await {
        Err(ClientError::Transport { reason, .. }) => {
            assert!(reason.contains("cannot connect"), "{reason}");
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let port = listener.local_addr().expect("bound").port();
    // Accept connections and hold them open without a word.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let connection = ConnectionString {
        endpoint: format!("http://127.0.0.1:{port}/"),
        key: EMULATOR_KEY.to_owned(),
    };
    let timeout = Duration::from_millis(300);
    let options = ClientOptions {
        request_timeout: timeout,
        ..ClientOptions::default()
    };
    let client = CosmosClient::new(&connection, options).expect("valid");
    let started = Instant::now();
    match client.send(Method::GET, "/dbs", &[], None).await {
        Err(ClientError::Timeout {
            timeout: reported, ..
        }) => assert_eq!(reported, timeout),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    silent.abort();
}
