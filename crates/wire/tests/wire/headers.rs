//! Header names and value parsers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use serde_json::json;
use tributary_wire::headers::{
    self, HeaderError, MAX_ITEM_COUNT_LIMIT, decode_feed_filter, encode_feed_filter,
    feed_filter_subject, format_http_date, parse_bool_header, parse_http_date,
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
        headers::X_TRIBUTARY_WAIT_MS,
        headers::X_TRIBUTARY_FEED_FILTER,
        headers::X_TRIBUTARY_FILTERED_COUNT,
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

#[test]
fn a_feed_filter_is_sent_as_visible_ascii_and_decodes_back() {
    let table = [
        ("c.status = 'shipped'", "c.status = 'shipped'"),
        ("c.name LIKE 'a%'", "c.name LIKE 'a%25'"),
        ("c.city = 'Zürich'", "c.city = 'Z%C3%BCrich'"),
        ("c.a = 1\nAND c.b = 2", "c.a = 1%0AAND c.b = 2"),
    ];
    for (condition, encoded) in table {
        assert_eq!(encode_feed_filter(condition), encoded);
        assert_eq!(decode_feed_filter(encoded).as_deref(), Ok(condition));
    }
    // Plain ASCII without '%' may be sent unencoded; a stray '%' stays as it is.
    assert_eq!(decode_feed_filter("c.n > 1").as_deref(), Ok("c.n > 1"));
    assert_eq!(
        decode_feed_filter("c.s = '%zz'").as_deref(),
        Ok("c.s = '%zz'")
    );
    assert!(matches!(
        decode_feed_filter("c.s = '%FF'"),
        Err(HeaderError::InvalidFeedFilter { .. })
    ));
}

#[test]
fn an_all_versions_filter_sees_the_current_image_and_lets_deletes_pass() {
    let create = json!({"current": {"id": "1", "s": "a"}, "metadata": {"operationType": "create"}});
    let replace = json!({"current": {"id": "1", "s": "b"}, "previous": {"id": "1", "s": "a"}, "metadata": {"operationType": "replace"}});
    let delete = json!({"current": {}, "previous": {"id": "1", "s": "b"}, "metadata": {"operationType": "delete", "id": "1"}});
    assert_eq!(feed_filter_subject(&create), Some(&create["current"]));
    assert_eq!(feed_filter_subject(&replace), Some(&replace["current"]));
    assert_eq!(feed_filter_subject(&delete), None);
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
        let _ = decode_feed_filter(&value);
    }

    #[test]
    fn feed_filters_round_trip_through_the_header(condition in "\\PC{0,40}") {
        let encoded = encode_feed_filter(&condition);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()));
        prop_assert_eq!(decode_feed_filter(&encoded), Ok(condition));
    }
}
