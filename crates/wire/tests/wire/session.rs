//! Session token values.

use proptest::prelude::*;
use tributary_wire::session::{
    MAX_TOKENS_PER_HEADER, SessionToken, SessionTokenError, format_session_token_header,
    parse_session_token_header,
};

#[test]
fn session_token_formats_as_the_sdks_expect() {
    assert_eq!(SessionToken::new("0", 12).to_string(), "0:-1#12");
    let multi_region = SessionToken {
        partition_key_range_id: "3".to_owned(),
        version: 2,
        global_lsn: 40,
        regional_lsns: vec![(1, 38), (2, 39)],
    };
    assert_eq!(multi_region.to_string(), "3:2#40#1=38#2=39");
}

#[test]
fn session_token_header_parses_one_or_many_tokens() {
    assert_eq!(
        parse_session_token_header("0:-1#12"),
        Ok(vec![SessionToken::new("0", 12)])
    );
    let parsed = parse_session_token_header("0:-1#12, 1:5#7#0=6").expect("valid header");
    assert_eq!(
        parsed,
        vec![
            SessionToken::new("0", 12),
            SessionToken {
                partition_key_range_id: "1".to_owned(),
                version: 5,
                global_lsn: 7,
                regional_lsns: vec![(0, 6)],
            },
        ]
    );
    assert_eq!(format_session_token_header(&parsed), "0:-1#12,1:5#7#0=6");
}

#[test]
fn session_token_rejects_malformed_values_with_the_reason() {
    let cases = [
        ("12", "no ':'"),
        (":-1#12", "range id is empty"),
        ("0:x#12", "version is not an integer"),
        ("0:-1", "no '#' before the global LSN"),
        ("0:-1#-5", "global LSN is not a non-negative integer"),
        ("0:-1#12#3", "not of the form region=lsn"),
        ("0:-1#12#a=3", "region id"),
        ("0:-1#12#1=b", "regional LSN is not"),
    ];
    for (value, reason) in cases {
        let error = parse_session_token_header(value).expect_err(value);
        assert!(
            matches!(error, SessionTokenError::Invalid { .. }),
            "{value}: {error:?}"
        );
        assert!(error.to_string().contains(reason), "{value}: {error}");
    }
    assert_eq!(
        parse_session_token_header("  "),
        Err(SessionTokenError::Empty)
    );
    let too_many = vec!["0:-1#1"; MAX_TOKENS_PER_HEADER + 1].join(",");
    assert_eq!(
        parse_session_token_header(&too_many),
        Err(SessionTokenError::TooManyTokens)
    );
}

proptest! {
    #[test]
    fn session_token_round_trips(
        partition_key_range_id in "[0-9a-z]{1,6}",
        version in any::<i64>(),
        global_lsn in any::<u64>(),
        regional_lsns in proptest::collection::vec((any::<u32>(), any::<u64>()), 0..4),
    ) {
        let token = SessionToken { partition_key_range_id, version, global_lsn, regional_lsns };
        prop_assert_eq!(token.to_string().parse::<SessionToken>(), Ok(token));
    }

    #[test]
    fn session_token_parser_never_panics(value in ".{0,80}") {
        let _ = parse_session_token_header(&value);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Edits of a valid header give tokens that format back to a header parsing to the same
    /// tokens, or a typed error.
    #[test]
    fn edited_session_headers_parse_to_tokens_that_round_trip_or_fail(
        edits in tributary_mutate::edits(),
    ) {
        let valid = "0:-1#12,1:3#4#1=7#2=9,7:0#18446744073709551615";
        let edited = tributary_mutate::apply_to_text(valid, &edits, &[valid, "#=,:-"]);
        if let Ok(tokens) = parse_session_token_header(&edited) {
            prop_assert_eq!(
                parse_session_token_header(&format_session_token_header(&tokens)),
                Ok(tokens)
            );
        }
    }
}
