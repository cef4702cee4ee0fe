//! Master-key signing and verification.

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use tributary_wire::auth::{
    AuthError, DEFAULT_MAX_CLOCK_SKEW, EMULATOR_KEY, KeyKind, KeySet, MasterKey, ResourceAddress,
    authorization_header, resource_of_path, string_to_sign, verify, verify_keys,
};
use tributary_wire::headers::parse_http_date;

const DATE: &str = "Tue, 01 Jul 2025 12:00:00 GMT";

fn emulator_key() -> MasterKey {
    MasterKey::from_base64(EMULATOR_KEY).expect("the emulator key is valid base64")
}

fn signed_at() -> SystemTime {
    parse_http_date(DATE).expect("DATE is an RFC 1123 date")
}

fn address(resource_type: &str, resource_link: &str) -> ResourceAddress {
    ResourceAddress {
        resource_type: resource_type.to_owned(),
        resource_link: resource_link.to_owned(),
    }
}

/// Verifies with the emulator key, `x-ms-date: DATE`, and the clock at DATE.
fn verify_at_date(
    verb: &str,
    address: &ResourceAddress,
    authorization: Option<&str>,
) -> Result<(), AuthError> {
    verify(
        &emulator_key(),
        verb,
        address,
        authorization,
        Some(DATE),
        None,
        signed_at(),
        DEFAULT_MAX_CLOCK_SKEW,
    )
}

// Expected values computed once with Python's standard library:
// base64.b64encode(hmac.new(base64.b64decode(key), text.encode(), hashlib.sha256).digest())
// then urllib.parse.quote("type=master&ver=1.0&sig=" + sig, "-_.!~*'()").
#[test]
fn authorization_header_matches_python_stdlib_vectors() {
    let key = emulator_key();
    let cases = [
        (
            "GET",
            "docs",
            "dbs/db1/colls/c1/docs/a",
            "type%3Dmaster%26ver%3D1.0%26sig%3Dv7p4WHWx6aSieEz3XpI0Em6wqe94WU%2F9Jx26ojKCioA%3D",
        ),
        (
            "GET",
            "",
            "",
            "type%3Dmaster%26ver%3D1.0%26sig%3DQzSbwoV5CnTgvUKrsZ56klytA5K6dGp%2Bn27irbmPW7k%3D",
        ),
        (
            "POST",
            "docs",
            "dbs/db1/colls/c1",
            "type%3Dmaster%26ver%3D1.0%26sig%3Dm59m0dHQcLRTYTYfeQ3RZYFXWkvwYmVSXiKkMszo%2Bqw%3D",
        ),
    ];
    for (verb, resource_type, resource_link, expected) in cases {
        assert_eq!(
            authorization_header(&key, verb, resource_type, resource_link, DATE),
            expected,
            "{verb} {resource_type} {resource_link:?}"
        );
    }
}

#[test]
fn authorization_header_matches_hand_computed_vector_with_short_key() {
    // Key: the 16 ASCII bytes "0123456789abcdef". Payload:
    // "get\ndbs\ndbs/my db\nmon, 02 jan 2006 15:04:05 gmt\n\n".
    let key = MasterKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZg==").expect("valid base64");
    let date = "Mon, 02 Jan 2006 15:04:05 GMT";
    assert_eq!(
        string_to_sign("GET", "DBS", "dbs/my db", date),
        "get\ndbs\ndbs/my db\nmon, 02 jan 2006 15:04:05 gmt\n\n"
    );
    assert_eq!(
        authorization_header(&key, "GET", "dbs", "dbs/my db", date),
        "type%3Dmaster%26ver%3D1.0%26sig%3Dlzcc%2Fa3v29v287O2iGa1C22izIy3JKtvc6Mqy00JXzY%3D"
    );
}

#[test]
fn resource_of_path_follows_odd_even_segment_rule() {
    let cases = [
        ("/", "", ""),
        ("", "", ""),
        ("/dbs", "dbs", ""),
        ("/dbs/", "dbs", ""),
        ("/dbs/db1", "dbs", "dbs/db1"),
        ("/dbs/db1/", "dbs", "dbs/db1"),
        ("/dbs/db1/colls", "colls", "dbs/db1"),
        ("/dbs/db1/colls/", "colls", "dbs/db1"),
        ("/dbs/db1/colls/c1", "colls", "dbs/db1/colls/c1"),
        ("/dbs/db1/colls/c1/docs", "docs", "dbs/db1/colls/c1"),
        ("/dbs/db1/colls/c1/docs/", "docs", "dbs/db1/colls/c1"),
        (
            "/dbs/db1/colls/c1/docs/a/",
            "docs",
            "dbs/db1/colls/c1/docs/a",
        ),
        (
            "/dbs/db1/colls/c1/docs/a",
            "docs",
            "dbs/db1/colls/c1/docs/a",
        ),
        (
            "/dbs/db1/colls/c1/pkranges/",
            "pkranges",
            "dbs/db1/colls/c1",
        ),
        ("dbs/db1/colls/c1", "colls", "dbs/db1/colls/c1"),
        ("/offers/AbCd", "offers", "AbCd"),
        (
            "/dbs/db1/colls/c1/operations/partitionkeydelete",
            "colls",
            "dbs/db1/colls/c1",
        ),
    ];
    for (path, resource_type, resource_link) in cases {
        assert_eq!(
            resource_of_path(path),
            Ok(address(resource_type, resource_link)),
            "{path}"
        );
    }
}

#[test]
fn resource_of_path_url_decodes_each_segment() {
    let decoded =
        resource_of_path("/dbs/my%20db/colls/c%2f1/docs/%C3%B1%e2%82%AC+x").expect("a valid path");
    assert_eq!(decoded, address("docs", "dbs/my db/colls/c/1/docs/ñ€+x"));
}

#[test]
fn resource_of_path_rejects_empty_segments_bad_utf8_and_long_paths() {
    for path in ["/dbs//colls", "//", "/dbs/db1//", "/dbs/%FF"] {
        let error = resource_of_path(path).expect_err(path);
        assert!(
            matches!(error, AuthError::InvalidPath { .. }),
            "{path}: {error:?}"
        );
        assert_eq!(error.http_status(), 400);
    }
    let long_path = format!("/dbs/{}", "a".repeat(10_000));
    let error = resource_of_path(&long_path).expect_err("too long");
    assert!(error.to_string().contains("the limit is 8192"), "{error}");
}

#[test]
fn sign_then_verify_round_trips_for_python_and_node_paths() {
    let key = emulator_key();
    let requests = [
        ("GET", "/", "/"),
        ("POST", "/dbs", "/dbs"),
        ("POST", "/dbs/db1/colls/", "/dbs/db1/colls"),
        ("POST", "/dbs/db1/colls/c1/docs/", "/dbs/db1/colls/c1/docs"),
        (
            "GET",
            "/dbs/db1/colls/c1/docs/a/",
            "/dbs/db1/colls/c1/docs/a",
        ),
        (
            "PATCH",
            "/dbs/db1/colls/c1/docs/a/",
            "/dbs/db1/colls/c1/docs/a",
        ),
        ("DELETE", "/dbs/my%20db/", "/dbs/my%20db"),
    ];
    for (verb, python_path, node_path) in requests {
        let signed_for = resource_of_path(node_path).expect("valid path");
        let authorization = authorization_header(
            &key,
            verb,
            &signed_for.resource_type,
            &signed_for.resource_link,
            DATE,
        );
        for path in [python_path, node_path] {
            let checked = resource_of_path(path).expect("valid path");
            assert_eq!(
                verify_at_date(verb, &checked, Some(&authorization)),
                Ok(()),
                "{verb} {path}"
            );
        }
    }
}

#[test]
fn verify_accepts_header_that_was_never_url_encoded() {
    let key = emulator_key();
    let target = address("docs", "dbs/db1/colls/c1/docs/a");
    let encoded = authorization_header(&key, "GET", "docs", "dbs/db1/colls/c1/docs/a", DATE);
    let raw = encoded
        .replace("%3D", "=")
        .replace("%26", "&")
        .replace("%2F", "/")
        .replace("%2B", "+");
    assert_eq!(
        raw,
        "type=master&ver=1.0&sig=v7p4WHWx6aSieEz3XpI0Em6wqe94WU/9Jx26ojKCioA="
    );
    assert_eq!(verify_at_date("GET", &target, Some(&raw)), Ok(()));
}

#[test]
fn verify_accepts_lowercase_percent_escapes() {
    let target = address("", "");
    let lowercase =
        "type%3dmaster%26ver%3d1.0%26sig%3dQzSbwoV5CnTgvUKrsZ56klytA5K6dGp%2bn27irbmPW7k%3d";
    assert_eq!(verify_at_date("GET", &target, Some(lowercase)), Ok(()));
}

#[test]
fn verify_accepts_plus_that_became_space_after_form_decoding() {
    let target = address("", "");
    let form_decoded = "type=master&ver=1.0&sig=QzSbwoV5CnTgvUKrsZ56klytA5K6dGp n27irbmPW7k=";
    assert_eq!(verify_at_date("GET", &target, Some(form_decoded)), Ok(()));
}

#[test]
fn verify_accepts_link_lowercased_by_python_for_rid_based_paths() {
    let key = emulator_key();
    let path_address = address("colls", "dbs/AbCdAA==/colls/AbCdAKlmnoQ=");
    let python_signed = authorization_header(
        &key,
        "GET",
        "colls",
        &path_address.resource_link.to_lowercase(),
        DATE,
    );
    assert_eq!(
        verify_at_date("GET", &path_address, Some(&python_signed)),
        Ok(())
    );
}

#[test]
fn verify_does_not_lowercase_a_name_based_link_it_was_not_signed_with() {
    // Signed with a lowercased link, checked against a path whose link really
    // is lowercase but differs: must fail, not match by folding case twice.
    let key = emulator_key();
    let signed = authorization_header(&key, "GET", "dbs", "dbs/mydb", DATE);
    let error = verify_at_date("GET", &address("dbs", "dbs/MyDb2"), Some(&signed))
        .expect_err("different link");
    assert!(matches!(error, AuthError::SignatureMismatch { .. }));
}

#[test]
fn verify_accepts_date_sent_only_in_date_header_in_either_line() {
    let key = emulator_key();
    let target = address("dbs", "");
    let check = |authorization: &str| {
        verify(
            &key,
            "GET",
            &target,
            Some(authorization),
            None,
            Some(DATE),
            signed_at(),
            DEFAULT_MAX_CLOCK_SKEW,
        )
    };
    // REST documentation form: the Date value takes the fourth line.
    let fourth_line = authorization_header(&key, "GET", "dbs", "", DATE);
    assert_eq!(check(&fourth_line), Ok(()));
    // Wire-notes form: fourth line empty, the Date value in the fifth.
    // Signature of "get\ndbs\n\n\ntue, 01 jul 2025 12:00:00 gmt\n", computed
    // with Python's standard library.
    let fifth_line = "type=master&ver=1.0&sig=hd6BpLl3WQwxK9drPnvtidRlFwHCwkI56Q8cexZaIAM=";
    assert_eq!(check(fifth_line), Ok(()));
}

#[test]
fn verify_accepts_both_dates_signed_when_both_headers_are_present() {
    let key = emulator_key();
    let target = address("dbs", "");
    let check = |authorization: &str| {
        verify(
            &key,
            "GET",
            &target,
            Some(authorization),
            Some(DATE),
            Some("Tue, 01 Jul 2025 12:00:01 GMT"),
            signed_at(),
            DEFAULT_MAX_CLOCK_SKEW,
        )
    };
    // The SDKs sign x-ms-date only, even if a proxy adds a Date header.
    let x_ms_date_only = authorization_header(&key, "GET", "dbs", "", DATE);
    assert_eq!(check(&x_ms_date_only), Ok(()));
    // Signature of "get\ndbs\n\ntue, 01 jul 2025 12:00:00 gmt\ntue, 01 jul 2025
    // 12:00:01 gmt\n", computed with Python's standard library.
    let both = "type=master&ver=1.0&sig=6EhmpT7SlDMmxp4xI4NK984tgj7ih/ReCKk6qJJ4Hg0=";
    assert_eq!(check(both), Ok(()));
}

#[test]
fn verify_reports_missing_authorization_as_401() {
    let error = verify_at_date("GET", &address("", ""), None).expect_err("no header");
    assert_eq!(error, AuthError::MissingAuthorization);
    assert_eq!(error.http_status(), 401);
}

#[test]
fn verify_reports_malformed_headers_with_the_reason() {
    let cases = [
        ("ver=1.0&sig=abc", "no type= field"),
        ("type=master&sig=abc", "no ver= field"),
        (
            "type=master&ver=2.0&sig=abc",
            "version '2.0' is not supported",
        ),
        ("type=master&ver=1.0", "no sig= field"),
        ("type=master&ver=1.0&sig=", "no sig= field"),
        ("type=master&ver=1.0&sig", "'sig' is not a name=value pair"),
        (
            "type=master&type=master&ver=1.0&sig=a",
            "'type' appears more than once",
        ),
        ("type%3Dmaster%26ver%3D1.0%26sig%3D%FF", "not valid UTF-8"),
        ("", "'' is not a name=value pair"),
    ];
    for (header, reason) in cases {
        let error = verify_at_date("GET", &address("", ""), Some(header)).expect_err(header);
        assert!(
            matches!(error, AuthError::MalformedAuthorization { .. }),
            "{header}: {error:?}"
        );
        assert!(error.to_string().contains(reason), "{header}: {error}");
        assert_eq!(error.http_status(), 401);
    }
    let too_long = format!("type=master&ver=1.0&sig={}", "A".repeat(9000));
    let error = verify_at_date("GET", &address("", ""), Some(&too_long)).expect_err("long");
    assert!(error.to_string().contains("the limit is 8192"), "{error}");
}

#[test]
fn verify_names_resource_and_aad_tokens_as_unsupported() {
    let cases = [
        (
            "type=resource&ver=1.0&sig=abc",
            "resource",
            "resource tokens",
        ),
        (
            "type%3Daad%26ver%3D1.0%26sig%3Deyj",
            "aad",
            "Microsoft Entra ID (AAD) tokens",
        ),
        ("type=SAS&ver=1.0&sig=abc", "sas", "SAS tokens"),
    ];
    for (header, token_type, description) in cases {
        let error = verify_at_date("GET", &address("", ""), Some(header)).expect_err(header);
        assert_eq!(
            error,
            AuthError::UnsupportedTokenType {
                token_type: token_type.to_owned()
            }
        );
        assert!(error.to_string().contains(description), "{error}");
        assert_eq!(error.http_status(), 401);
    }
}

#[test]
fn verify_reports_missing_and_unparseable_dates() {
    let key = emulator_key();
    let target = address("", "");
    let authorization = authorization_header(&key, "GET", "", "", DATE);
    let check = |x_ms_date: Option<&str>, date: Option<&str>| {
        verify(
            &key,
            "GET",
            &target,
            Some(&authorization),
            x_ms_date,
            date,
            signed_at(),
            DEFAULT_MAX_CLOCK_SKEW,
        )
    };
    assert_eq!(check(None, None), Err(AuthError::MissingDate));
    assert_eq!(check(Some("  "), None), Err(AuthError::MissingDate));
    // Wed is the wrong weekday for 1 July 2025.
    for bad in [
        "yesterday",
        "2025-07-01T12:00:00Z",
        "Wed, 01 Jul 2025 12:00:00 GMT",
    ] {
        let error = check(Some(bad), None).expect_err(bad);
        assert_eq!(
            error,
            AuthError::InvalidDate {
                value: bad.to_owned()
            }
        );
        assert!(error.to_string().contains("RFC 1123"), "{error}");
        assert_eq!(error.http_status(), 401);
    }
}

#[test]
fn verify_rejects_dates_too_far_from_now_with_403() {
    let key = emulator_key();
    let target = address("", "");
    let authorization = authorization_header(&key, "GET", "", "", DATE);
    let check_at = |now: SystemTime| {
        verify(
            &key,
            "GET",
            &target,
            Some(&authorization),
            Some(DATE),
            None,
            now,
            Duration::from_secs(900),
        )
    };
    assert_eq!(check_at(signed_at() + Duration::from_secs(900)), Ok(()));
    assert_eq!(check_at(signed_at() - Duration::from_secs(900)), Ok(()));
    for now in [
        signed_at() + Duration::from_secs(901),
        signed_at() - Duration::from_secs(901),
    ] {
        let error = check_at(now).expect_err("skewed");
        assert_eq!(
            error,
            AuthError::DateOutOfRange {
                date: DATE.to_owned(),
                skew_secs: 901,
                max_skew_secs: 900,
            }
        );
        assert_eq!(error.http_status(), 403);
    }
}

#[test]
fn verify_reports_signature_mismatch_with_the_signed_payload_as_cosmos_does() {
    let other_key = MasterKey::from_base64("MDEyMzQ1Njc4OWFiY2RlZg==").expect("valid key");
    let authorization =
        authorization_header(&other_key, "GET", "docs", "dbs/db1/colls/c1/docs/a", DATE);
    let error = verify_at_date(
        "GET",
        &address("docs", "dbs/db1/colls/c1/docs/a"),
        Some(&authorization),
    )
    .expect_err("wrong key");
    assert_eq!(
        error.to_string(),
        "The input authorization token can't serve the request. The wrong key is being used or \
         the expected payload is not built as per the protocol. Server used the following payload \
         to sign: 'get\\ndocs\\ndbs/db1/colls/c1/docs/a\\ntue, 01 jul 2025 12:00:00 gmt\\n\\n'"
    );
    assert_eq!(error.http_status(), 401);
}

#[test]
fn verify_rejects_signature_for_another_verb_type_or_link() {
    let key = emulator_key();
    let authorization = authorization_header(&key, "GET", "docs", "dbs/db1/colls/c1/docs/a", DATE);
    let cases = [
        ("DELETE", address("docs", "dbs/db1/colls/c1/docs/a")),
        ("GET", address("colls", "dbs/db1/colls/c1/docs/a")),
        ("GET", address("docs", "dbs/db1/colls/c1/docs/b")),
    ];
    for (verb, target) in cases {
        let error = verify_at_date(verb, &target, Some(&authorization)).expect_err(verb);
        assert!(
            matches!(error, AuthError::SignatureMismatch { .. }),
            "{verb} {target:?}: {error:?}"
        );
    }
    let not_base64 = "type=master&ver=1.0&sig=!!!";
    let error = verify_at_date("GET", &address("", ""), Some(not_base64)).expect_err("bad sig");
    assert!(matches!(error, AuthError::SignatureMismatch { .. }));
}

#[test]
fn master_key_rejects_non_base64_and_empty_keys() {
    for bad in ["not base64!", "", "   ", "abc"] {
        let error = MasterKey::from_base64(bad).expect_err(bad);
        assert!(
            matches!(error, AuthError::InvalidMasterKey { .. }),
            "{bad:?}: {error:?}"
        );
    }
    assert!(MasterKey::from_base64(&format!("  {EMULATOR_KEY}\n")).is_ok());
}

#[test]
fn master_key_debug_output_hides_the_key() {
    let shown = format!("{:?}", emulator_key());
    assert_eq!(shown, "MasterKey { n_key_bytes: 64, .. }");
}

/// Four distinct keys, one per kind, as 64 bytes each (the length of Azure's keys).
fn four_keys() -> Vec<(KeyKind, MasterKey)> {
    KeyKind::ALL
        .into_iter()
        .zip([b'p', b's', b'r', b'o'])
        .map(|(kind, byte)| {
            let text =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [byte; 64]);
            (kind, MasterKey::from_base64(&text).expect("valid base64"))
        })
        .collect()
}

/// Verifies against `keys` with `x-ms-date: DATE` and the clock at `now`.
fn verify_keys_at(
    keys: &KeySet,
    authorization: &str,
    now: SystemTime,
) -> Result<KeyKind, AuthError> {
    verify_keys(
        keys,
        "POST",
        &address("docs", "dbs/db1/colls/c1"),
        Some(authorization),
        Some(DATE),
        None,
        now,
        DEFAULT_MAX_CLOCK_SKEW,
    )
}

#[test]
fn verify_keys_names_the_key_that_signed() {
    let keys = KeySet::new(four_keys()).expect("a read-write key is among them");
    for (kind, key) in four_keys() {
        let token = authorization_header(&key, "POST", "docs", "dbs/db1/colls/c1", DATE);
        assert_eq!(verify_keys_at(&keys, &token, signed_at()), Ok(kind));
        assert_eq!(
            kind.is_read_only(),
            matches!(kind, KeyKind::PrimaryReadOnly | KeyKind::SecondaryReadOnly)
        );
    }
}

#[test]
fn verify_keys_refuses_keys_not_in_the_set_and_still_checks_the_date() {
    let all = four_keys();
    // The set without the secondary read-write key: a request it signed no longer passes.
    let keys = KeySet::new(
        all.iter()
            .filter(|(kind, _)| *kind != KeyKind::Secondary)
            .cloned(),
    )
    .expect("the primary is a read-write key");
    let secondary = &all[1].1;
    let token = authorization_header(secondary, "POST", "docs", "dbs/db1/colls/c1", DATE);
    let error = verify_keys_at(&keys, &token, signed_at()).expect_err("not in the set");
    assert!(
        matches!(&error, AuthError::SignatureMismatch { payload } if payload.starts_with("post\ndocs\ndbs/db1/colls/c1\n")),
        "{error:?}"
    );
    assert_eq!(error.http_status(), 401);
    // A read-only key's signature on a stale date is refused for the date, as any other.
    let read_only = &all[2].1;
    let token = authorization_header(read_only, "POST", "docs", "dbs/db1/colls/c1", DATE);
    let error = verify_keys_at(&keys, &token, signed_at() + Duration::from_secs(3600))
        .expect_err("an hour late");
    assert_eq!(error.http_status(), 403, "{error}");
}

#[test]
fn a_key_set_needs_a_read_write_key() {
    let all = four_keys();
    let read_only: Vec<_> = all
        .iter()
        .filter(|(kind, _)| kind.is_read_only())
        .cloned()
        .collect();
    assert_eq!(
        KeySet::new(read_only.clone()).unwrap_err(),
        AuthError::NoReadWriteKey
    );
    assert_eq!(KeySet::new([]).unwrap_err(), AuthError::NoReadWriteKey);
    // The secondary alone is enough (the primary may be mid-rotation).
    let secondary_only = KeySet::new([all[1].clone()]).expect("a read-write key");
    assert_eq!(
        secondary_only.kinds().collect::<Vec<_>>(),
        [KeyKind::Secondary]
    );
    let from_one_key = KeySet::from(emulator_key());
    assert_eq!(from_one_key.kinds().collect::<Vec<_>>(), [KeyKind::Primary]);
}

#[test]
fn key_set_debug_output_names_kinds_and_hides_the_keys() {
    let keys = KeySet::new(four_keys()).expect("valid");
    assert_eq!(
        format!("{keys:?}"),
        "KeySet { kinds: [Primary, Secondary, PrimaryReadOnly, SecondaryReadOnly], .. }"
    );
    assert_eq!(
        KeyKind::PrimaryReadOnly.to_string(),
        "primary read-only key"
    );
    assert_eq!(
        KeyKind::SecondaryReadOnly.azure_name(),
        "secondaryReadonlyMasterKey"
    );
}

proptest! {
    #[test]
    fn verify_never_panics_on_arbitrary_headers(
        authorization in ".{0,200}",
        x_ms_date in proptest::option::of(".{0,40}"),
        date in proptest::option::of(".{0,40}"),
        verb in "[A-Za-z]{0,8}",
    ) {
        let key = emulator_key();
        let result = verify(
            &key,
            &verb,
            &address("docs", "dbs/a/colls/b"),
            Some(&authorization),
            x_ms_date.as_deref(),
            date.as_deref(),
            signed_at(),
            DEFAULT_MAX_CLOCK_SKEW,
        );
        prop_assert!(result.is_err());
    }

    #[test]
    fn verify_never_panics_on_structured_garbage(
        fields in proptest::collection::vec(
            ("(type|ver|sig|TYPE|x)?", "(=|%3D|%3d)?", "[A-Za-z0-9+/= %]{0,20}"),
            0..6,
        ),
    ) {
        let header = fields
            .iter()
            .map(|(name, equals, value)| format!("{name}{equals}{value}"))
            .collect::<Vec<_>>()
            .join("&");
        let result = verify_at_date("GET", &address("", ""), Some(&header));
        prop_assert!(result.is_err());
    }

    #[test]
    fn resource_of_path_never_panics(path in ".{0,100}") {
        let _ = resource_of_path(&path);
    }

    #[test]
    fn signing_decoded_link_verifies_against_encoded_path(
        ids in proptest::collection::vec("[^/]{1,12}", 1..4),
        trailing_slash in any::<bool>(),
    ) {
        let key = emulator_key();
        let kinds = ["dbs", "colls", "docs"];
        let mut path = String::new();
        let mut link = Vec::new();
        for (kind, id) in kinds.iter().zip(&ids) {
            let encoded: String = percent_encoding::utf8_percent_encode(
                id,
                percent_encoding::NON_ALPHANUMERIC,
            )
            .to_string();
            path.push_str(&format!("/{kind}/{encoded}"));
            link.push(format!("{kind}/{id}"));
        }
        if trailing_slash {
            path.push('/');
        }
        let link = link.join("/");
        let resource_type = kinds[ids.len() - 1];
        let authorization = authorization_header(&key, "PUT", resource_type, &link, DATE);
        let checked = resource_of_path(&path).expect("an encoded path is valid");
        prop_assert_eq!(&checked, &address(resource_type, &link));
        prop_assert_eq!(verify_at_date("PUT", &checked, Some(&authorization)), Ok(()));
    }
}

/// The `sig=` value of a header as `verify` reads it (URL-decoded, trimmed, spaces back to
/// `+`), if the header decodes and has one.
fn signature_in(header: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(header.trim())
        .decode_utf8()
        .ok()?;
    decoded.split('&').find_map(|field| {
        let (name, value) = field.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("sig")
            .then(|| value.trim().replace(' ', "+"))
    })
}

fn verb() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Edits of a valid header (bytes changed, cut, repeated, spliced from another valid
    /// header) give a typed 401, or are accepted only if they still carry the same signature:
    /// no edit makes `verify` accept a signature it did not compute.
    #[test]
    fn edited_valid_headers_are_refused_or_carry_the_same_signature(
        verb in verb(),
        link in "dbs/[a-z0-9]{1,8}(/colls/[a-z0-9]{1,8})?",
        edits in tributary_mutate::edits(),
        raw in any::<bool>(),
    ) {
        let key = emulator_key();
        let target = address("colls", &link);
        let mut header = authorization_header(&key, verb, "colls", &link, DATE);
        if raw {
            header = percent_encoding::percent_decode_str(&header)
                .decode_utf8()
                .expect("a signed header is URL-encoded UTF-8")
                .into_owned();
        }
        let other = authorization_header(&key, "GET", "docs", "dbs/x", DATE);
        let edited = tributary_mutate::apply_to_text(&header, &edits, &[&header, &other]);
        match verify_at_date(verb, &target, Some(&edited)) {
            Ok(()) => prop_assert_eq!(signature_in(&edited), signature_in(&header)),
            Err(error) => prop_assert_eq!(error.http_status(), 401, "{:?}", error),
        }
    }

    /// Edits of a minted resource token (bytes changed, cut, repeated, spliced from another
    /// token) verify only as one of the two tokens' claims: no edit makes a token say
    /// something its key did not sign.
    #[test]
    fn edited_resource_tokens_are_refused_or_say_the_same(
        user in "[a-z ]{1,12}",
        expires_in_s in 1u64..20_000,
        edits in tributary_mutate::edits(),
    ) {
        use tributary_wire::resource_token::{ResourceTokenClaims, ResourceTokenKey};
        let token_key = ResourceTokenKey::derive(&emulator_key());
        let now = signed_at();
        let claims = ResourceTokenClaims {
            database: "db".into(),
            user,
            permission: "p".into(),
            permission_rid: "AAAAAQAAAAEAAAAAAAAAAQ==".into(),
            permission_etag: "\"1\"".into(),
            expires_at_s: ResourceTokenClaims::expiry_from(now, Duration::from_secs(expires_in_s)),
        };
        let token = token_key.mint(&claims);
        let other_claims = ResourceTokenClaims { permission: "q".into(), ..claims.clone() };
        let other = token_key.mint(&other_claims);
        let edited = tributary_mutate::apply_to_text(&token, &edits, &[&token, &other]);
        match token_key.verify(&edited, now) {
            Ok(verified) => prop_assert!(verified == claims || verified == other_claims, "{:?}", verified),
            Err(error) => prop_assert_eq!(error.http_status(), 401, "{:?}", error),
        }
        // Any token the header carries is found as one, or the header is refused as malformed.
        let header = percent_encoding::utf8_percent_encode(&edited, percent_encoding::NON_ALPHANUMERIC).to_string();
        if let Err(error) = tributary_wire::auth::resource_token_of(Some(&header)) {
            prop_assert_eq!(error.http_status(), 401, "{:?}", error);
        }
    }

    /// Edits of the signed `x-ms-date` are refused unless only letter case changed (the
    /// string to sign is lowercased): 401 for a date that no longer parses or no longer
    /// matches the signature, 403 for one that parses to another time far from the clock.
    #[test]
    fn edited_dates_of_a_signed_request_are_refused(edits in tributary_mutate::edits()) {
        let key = emulator_key();
        let target = address("docs", "dbs/a/colls/b/docs/c");
        let header = authorization_header(&key, "GET", "docs", "dbs/a/colls/b/docs/c", DATE);
        let edited = tributary_mutate::apply_to_text(DATE, &edits, &[DATE]);
        let result = verify(
            &key, "GET", &target, Some(&header), Some(&edited), None, signed_at(),
            DEFAULT_MAX_CLOCK_SKEW,
        );
        match result {
            Ok(()) => prop_assert_eq!(edited.trim().to_lowercase(), DATE.to_lowercase()),
            Err(error) => prop_assert!(matches!(error.http_status(), 401 | 403), "{:?}", error),
        }
    }

    /// Edits of a valid path give an address or the typed 400; an accepted path gives the
    /// same address with a trailing slash (the Python SDK adds one).
    #[test]
    fn edited_paths_give_an_address_or_invalid_path(
        ids in proptest::collection::vec("[a-zA-Z0-9 %]{1,8}", 1..4),
        edits in tributary_mutate::edits(),
    ) {
        let kinds = ["dbs", "colls", "docs"];
        let path: String = kinds.iter().zip(&ids).map(|(kind, id)| format!("/{kind}/{id}")).collect();
        let edited = tributary_mutate::apply_to_text(&path, &edits, &[&path, "/offers/AbCd/%2F%C3%B1"]);
        match resource_of_path(&edited) {
            Ok(found) => {
                if !edited.ends_with('/') && edited.len() < 8192 {
                    prop_assert_eq!(resource_of_path(&format!("{edited}/")), Ok(found));
                }
            }
            Err(error) => {
                prop_assert!(matches!(error, AuthError::InvalidPath { .. }), "{:?}", error);
                prop_assert_eq!(error.http_status(), 400);
            }
        }
    }
}
