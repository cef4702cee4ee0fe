//! Start positions and points in time as given on the command line: `beginning`, `now`, an
//! RFC 3339 UTC time (`2026-12-01T10:00:00Z`, with optional fraction of a second or a
//! numeric offset such as `+02:00`) or milliseconds since the Unix epoch.

use std::time::{Duration, UNIX_EPOCH};

use tributary_processor::StartFrom;

/// Parses `beginning`, `now` or a time (see [`parse_time_ms`]).
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_start_from(text: &str) -> Result<StartFrom, String> {
    match text.trim() {
        "beginning" => Ok(StartFrom::Beginning),
        "now" => Ok(StartFrom::Now),
        other => parse_time_ms(other)
            .map(|ms| StartFrom::Time(UNIX_EPOCH + Duration::from_millis(ms)))
            .map_err(|reason| format!("{reason}; or give 'beginning' or 'now'")),
    }
}

/// Parses a time into milliseconds since the Unix epoch: all digits are milliseconds;
/// anything else must be RFC 3339, `YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM)`.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_time_ms(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let expected = || {
        format!(
            "'{text}' is not a time: expected RFC 3339 such as 2026-12-01T10:00:00Z, or milliseconds since the Unix epoch"
        )
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| expected());
    }
    let ms = tributary_wire::time::parse_rfc3339_ms(text).ok_or_else(expected)?;
    u64::try_from(ms).map_err(|_| format!("'{text}' is before 1970-01-01T00:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_and_unix_milliseconds_parse() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("2026-12-01T10:00:00Z", 1_796_119_200_000),
            ("2026-12-01T10:00:00.5Z", 1_796_119_200_500),
            ("2026-12-01T10:00:00.123456Z", 1_796_119_200_123),
            ("2026-12-01T12:00:00+02:00", 1_796_119_200_000),
            ("2026-12-01T09:30:00-00:30", 1_796_119_200_000),
            ("2024-02-29t23:59:59z", 1_709_251_199_000),
            ("1796119200000", 1_796_119_200_000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_time_ms(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn malformed_times_are_refused_with_the_accepted_forms() {
        for text in [
            "",
            "yesterday",
            "2026-12-01",
            "2026-12-01T10:00:00",
            "2026-13-01T10:00:00Z",
            "2025-02-29T10:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T10:00:00.Z",
            "2026-12-01T10:00:00+2:00",
            "-5",
        ] {
            let error = parse_time_ms(text).unwrap_err();
            assert!(error.contains("RFC 3339"), "{text}: {error}");
        }
        assert!(
            parse_time_ms("1969-12-31T23:59:59Z")
                .unwrap_err()
                .contains("before 1970")
        );
    }

    #[test]
    fn start_positions_parse() {
        assert_eq!(parse_start_from("beginning"), Ok(StartFrom::Beginning));
        assert_eq!(parse_start_from("now"), Ok(StartFrom::Now));
        assert_eq!(
            parse_start_from("1000"),
            Ok(StartFrom::Time(UNIX_EPOCH + Duration::from_secs(1)))
        );
        assert!(
            parse_start_from("later")
                .unwrap_err()
                .contains("'beginning' or 'now'")
        );
    }
}
