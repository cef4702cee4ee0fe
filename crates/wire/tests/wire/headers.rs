//! Header names and value parsers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use tributary_wire::headers::{
    self, HeaderError, MAX_ITEM_COUNT_LIMIT, format_http_date, parse_bool_header, parse_http_date,
    parse_max_item_count,
};

#[test]
fn header_names_are_lowercase() {
    let names = [
        headers::AUTHORIZATION,
        headers::X_MS_DATE,
        headers::X_MS_DOCUMENTDB_PARTITIONKEY,
        headers::X_MS_DOCUMENTDB_PARTITIONKEYRANGEID,
        headers::A_IM,
        headers::IF_NONE_MATCH,
        headers::IF_MODIFIED_SINCE,
        headers::X_MS_COSMOS_BATCH_CONTINUE_ON_ERROR,
        headers::X_MS_SESSION_TOKEN,
        headers::X_MS_ALT_CONTENT_PATH,
        headers::ETAG,
    ];
    for name in names {
        assert_eq!(name, name.to_ascii_lowercase());
    }
}

#[test]
fn parse_bool_header_accepts_python_and_node_spellings() {
    let cases = [
        ("True", Some(true)),
        ("true", Some(true)),
        ("TRUE", Some(true)),
        (" true ", Some(true)),
        ("False", Some(false)),
        ("false", Some(false)),
        ("", None),
        ("1", None),
        ("yes", None),
        ("truee", None),
    ];
    for (value, expected) in cases {
        assert_eq!(parse_bool_header(value), expected, "{value:?}");
    }
}

#[test]
fn parse_max_item_count_maps_minus_one_to_default() {
    let cases = [
        ("-1", Ok(None)),
        (" -1 ", Ok(None)),
        ("1", Ok(Some(1))),
        ("10", Ok(Some(10))),
        ("1000000", Ok(Some(MAX_ITEM_COUNT_LIMIT))),
    ];
    for (value, expected) in cases {
        assert_eq!(parse_max_item_count(value), expected, "{value:?}");
    }
}

#[test]
fn parse_max_item_count_rejects_zero_negatives_garbage_and_huge_counts() {
    for value in [
        "0",
        "-2",
        "",
        "ten",
        "1.5",
        "1000001",
        "99999999999999999999",
    ] {
        let error = parse_max_item_count(value).expect_err(value);
        assert_eq!(
            error,
            HeaderError::InvalidMaxItemCount {
                value: value.to_owned()
            }
        );
        assert!(error.to_string().contains("-1 (server default)"), "{error}");
    }
}

#[test]
fn format_http_date_writes_rfc_1123_as_the_sdks_do() {
    // 1751371200 s after the epoch is Tuesday 1 July 2025, 12:00:00 UTC.
    let time = UNIX_EPOCH + Duration::from_secs(1_751_371_200) + Duration::from_millis(999);
    assert_eq!(format_http_date(time), "Tue, 01 Jul 2025 12:00:00 GMT");
}

#[test]
fn format_http_date_clamps_instead_of_panicking_outside_the_format() {
    let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
    assert_eq!(
        format_http_date(before_epoch),
        "Thu, 01 Jan 1970 00:00:00 GMT"
    );
    let far_future = UNIX_EPOCH + Duration::from_secs(300_000_000_000);
    assert_eq!(
        format_http_date(far_future),
        "Fri, 31 Dec 9999 23:59:59 GMT"
    );
}

#[test]
fn parse_http_date_reads_all_three_http_forms() {
    let expected = UNIX_EPOCH + Duration::from_secs(1_751_371_200);
    for value in [
        "Tue, 01 Jul 2025 12:00:00 GMT",
        " Tue, 01 Jul 2025 12:00:00 GMT ",
        "Tuesday, 01-Jul-25 12:00:00 GMT",
        "Tue Jul  1 12:00:00 2025",
    ] {
        assert_eq!(parse_http_date(value), Ok(expected), "{value:?}");
    }
}

#[test]
fn parse_http_date_rejects_wrong_weekday_and_garbage() {
    for value in [
        "Wed, 01 Jul 2025 12:00:00 GMT",
        "Tue, 32 Jul 2025 12:00:00 GMT",
        "2025-07-01T12:00:00Z",
        "",
        "Tue, 01 Jul 2025 12:00:00 GMT\u{e9}",
    ] {
        assert!(
            matches!(
                parse_http_date(value),
                Err(HeaderError::InvalidHttpDate { .. })
            ),
            "{value:?}"
        );
    }
}

proptest! {
    #[test]
    fn http_date_round_trips_to_the_second(secs in 0u64..253_402_300_800) {
        let time = UNIX_EPOCH + Duration::from_secs(secs);
        prop_assert_eq!(parse_http_date(&format_http_date(time)), Ok(time));
    }

    #[test]
    fn header_parsers_never_panic(value in ".{0,60}") {
        let _ = parse_bool_header(&value);
        let _ = parse_max_item_count(&value);
        let _: Result<SystemTime, _> = parse_http_date(&value);
    }
}
