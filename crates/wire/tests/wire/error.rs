//! Error bodies, status codes and sub-status codes.

use serde_json::json;
use tributary_wire::error::{ErrorBody, code_for_status, substatus};

#[test]
fn code_for_status_names_every_status_the_server_sends() {
    let cases = [
        (400, "BadRequest"),
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (404, "NotFound"),
        (405, "MethodNotAllowed"),
        (408, "RequestTimeout"),
        (409, "Conflict"),
        (410, "Gone"),
        (412, "PreconditionFailed"),
        (413, "RequestEntityTooLarge"),
        (424, "FailedDependency"),
        (429, "TooManyRequests"),
        (449, "RetryWith"),
        (500, "InternalServerError"),
        (503, "ServiceUnavailable"),
    ];
    for (status, code) in cases {
        assert_eq!(code_for_status(status), code, "{status}");
    }
}

#[test]
fn code_for_status_falls_back_to_the_class_name() {
    assert_eq!(code_for_status(418), "BadRequest");
    assert_eq!(code_for_status(502), "InternalServerError");
    assert_eq!(code_for_status(200), "InternalServerError");
}

#[test]
fn error_body_serializes_as_code_and_message() {
    let body = ErrorBody::new(
        409,
        "Entity with the specified id already exists in the system.",
    );
    assert_eq!(
        serde_json::to_value(&body).expect("serializable"),
        json!({
            "code": "Conflict",
            "message": "Entity with the specified id already exists in the system."
        })
    );
    let parsed: ErrorBody =
        serde_json::from_value(json!({"code": "NotFound", "message": "Resource Not Found"}))
            .expect("deserializable");
    assert_eq!(parsed, ErrorBody::new(404, "Resource Not Found"));
}

#[test]
fn substatus_codes_match_the_sdk_tables() {
    assert_eq!(substatus::PARTITION_KEY_RANGE_GONE, 1002);
    assert_eq!(substatus::READ_SESSION_NOT_AVAILABLE, 1002);
    assert_eq!(substatus::CROSS_PARTITION_QUERY_NOT_SERVABLE, 1004);
    assert_eq!(substatus::COMPLETING_SPLIT, 1007);
    assert_eq!(substatus::COMPLETING_PARTITION_MIGRATION, 1008);
    assert_eq!(substatus::COLLECTION_RID_MISMATCH, 1024);
    assert_eq!(substatus::WRITE_FORBIDDEN, 3);
}
