//! Master-key authentication: every way a request can fail to prove it holds the key is
//! refused with the status Cosmos DB uses and a JSON `{code, message}` body, before the
//! request has any effect.

use std::time::{Duration, SystemTime};

use axum::http::Method;
use serde_json::json;
use tributary_wire::auth::MasterKey;
use tributary_wire::headers;

use crate::harness::{TestRequest, TestServer};

/// A key that is valid base64 but not the server's.
const OTHER_KEY: &str = "dGhpcyBpcyBub3QgdGhlIGFjY291bnQga2V5IGF0IGFsbA==";

/// A well-formed master token whose signature is 32 zero bytes.
const ZERO_SIGNATURE: &str =
    "type%3Dmaster%26ver%3D1.0%26sig%3DAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%3D";

/// One refused request: what it is, how to make it from a valid one, the status expected,
/// and a fragment the message must contain.
struct Refusal {
    name: &'static str,
    make: fn(TestRequest<'_>) -> TestRequest<'_>,
    status: u16,
    message_fragment: &'static str,
}

fn refusals() -> Vec<Refusal> {
    vec![
        Refusal {
            name: "no authorization header",
            make: |r| r.without(headers::AUTHORIZATION),
            status: 401,
            message_fragment: "authorization",
        },
        Refusal {
            name: "a signature that is not the HMAC of the request",
            make: |r| r.header(headers::AUTHORIZATION, ZERO_SIGNATURE),
            status: 401,
            message_fragment: "payload",
        },
        Refusal {
            name: "signed with another key",
            make: |r| r.signed_with(MasterKey::from_base64(OTHER_KEY).expect("valid base64")),
            status: 401,
            message_fragment: "wrong key",
        },
        Refusal {
            name: "an authorization header that is not a master token",
            make: |r| r.header(headers::AUTHORIZATION, "not-a-token"),
            status: 401,
            message_fragment: "malformed",
        },
        Refusal {
            name: "a token without a signature",
            make: |r| r.header(headers::AUTHORIZATION, "type%3Dmaster%26ver%3D1.0"),
            status: 401,
            message_fragment: "malformed",
        },
        Refusal {
            name: "a resource token",
            make: |r| {
                r.header(
                    headers::AUTHORIZATION,
                    "type%3Dresource%26ver%3D1.0%26sig%3Dabc",
                )
            },
            status: 401,
            message_fragment: "resource",
        },
        Refusal {
            name: "dated 20 minutes ago",
            make: |r| r.dated(Some(SystemTime::now() - Duration::from_secs(20 * 60))),
            status: 403,
            message_fragment: "clock",
        },
        Refusal {
            name: "dated 20 minutes ahead",
            make: |r| r.dated(Some(SystemTime::now() + Duration::from_secs(20 * 60))),
            status: 403,
            message_fragment: "clock",
        },
        Refusal {
            name: "no date",
            make: |r| r.dated(None),
            status: 401,
            message_fragment: "x-ms-date",
        },
        Refusal {
            name: "a date that is not an HTTP date",
            make: |r| r.header(headers::X_MS_DATE, "yesterday"),
            status: 401,
            message_fragment: "RFC 1123",
        },
    ]
}

#[tokio::test]
async fn unauthenticated_reads_are_refused_with_a_json_error() {
    let server = TestServer::with_container().await;
    for refusal in refusals() {
        let request = (refusal.make)(server.request(Method::GET, "/dbs/db/colls/c"));
        let response = request.send().await;
        assert_eq!(response.status, refusal.status, "{}", refusal.name);
        let message = response.expect_error(refusal.status);
        assert!(
            message.contains(refusal.message_fragment),
            "{}: the message should mention '{}': {message}",
            refusal.name,
            refusal.message_fragment
        );
    }
}

#[tokio::test]
async fn unauthenticated_writes_are_refused_and_write_nothing() {
    let server = TestServer::with_container().await;
    for (n, refusal) in refusals().into_iter().enumerate() {
        let request = server
            .request(Method::POST, "/dbs/db/colls/c/docs")
            .partition_key("p")
            .json(&json!({ "id": format!("item-{n}"), "pk": "p" }));
        let response = (refusal.make)(request).send().await;
        assert_eq!(response.status, refusal.status, "{}", refusal.name);
        response.expect_error(refusal.status);
    }
    let response = server
        .request(Method::POST, "/dbs/xyz/colls")
        .without(headers::AUTHORIZATION)
        .json(&json!({ "id": "c2", "partitionKey": { "paths": ["/pk"], "kind": "Hash" } }))
        .send()
        .await;
    response.expect_error(401);
    assert_eq!(server.changed_ids().await, Vec::<String>::new());
    assert_eq!(server.store.list_databases().len(), 1);
}

#[tokio::test]
async fn a_signature_for_one_resource_does_not_open_another() {
    let server = TestServer::with_container().await;
    server.create_database("other").await;
    // Sign a read of database `db`, then send that token to read database `other`.
    let date = tributary_wire::headers::format_http_date(SystemTime::now());
    let key = MasterKey::from_base64(tributary_wire::auth::EMULATOR_KEY).expect("valid key");
    let token = tributary_wire::auth::authorization_header(&key, "GET", "dbs", "dbs/db", &date);
    let response = server
        .request(Method::GET, "/dbs/other")
        .header(headers::AUTHORIZATION, &token)
        .header(headers::X_MS_DATE, &date)
        .send()
        .await;
    let message = response.expect_error(401);
    assert!(message.contains("dbs/other"), "{message}");
    // The same token opens the resource it was signed for.
    server
        .request(Method::GET, "/dbs/db")
        .header(headers::AUTHORIZATION, &token)
        .header(headers::X_MS_DATE, &date)
        .send()
        .await
        .expect_status(200);
}

#[tokio::test]
async fn a_signature_for_one_verb_does_not_allow_another() {
    let server = TestServer::with_container().await;
    let date = tributary_wire::headers::format_http_date(SystemTime::now());
    let key = MasterKey::from_base64(tributary_wire::auth::EMULATOR_KEY).expect("valid key");
    let token =
        tributary_wire::auth::authorization_header(&key, "GET", "colls", "dbs/db/colls/c", &date);
    server
        .request(Method::DELETE, "/dbs/db/colls/c")
        .header(headers::AUTHORIZATION, &token)
        .header(headers::X_MS_DATE, &date)
        .send()
        .await
        .expect_error(401);
    server
        .request(Method::GET, "/dbs/db/colls/c")
        .send()
        .await
        .expect_status(200);
}

#[tokio::test]
async fn a_request_dated_only_by_the_date_header_is_accepted() {
    let server = TestServer::with_container().await;
    let date = tributary_wire::headers::format_http_date(SystemTime::now());
    let key = MasterKey::from_base64(tributary_wire::auth::EMULATOR_KEY).expect("valid key");
    let token = tributary_wire::auth::authorization_header(&key, "GET", "dbs", "dbs/db", &date);
    server
        .request(Method::GET, "/dbs/db")
        .without(headers::X_MS_DATE)
        .header(headers::DATE, &date)
        .header(headers::AUTHORIZATION, &token)
        .send()
        .await
        .expect_status(200);
}
