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
    let ms = parse_rfc3339_ms(text).ok_or_else(expected)?;
    u64::try_from(ms).map_err(|_| format!("'{text}' is before 1970-01-01T00:00:00Z"))
}

/// `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)` as signed milliseconds since the epoch.
fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !text.is_ascii() {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = &text[range];
        digits
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| digits.parse().ok())
            .flatten()
    };
    let separators_ok = bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':'
        && bytes[16] == b':';
    if !separators_ok {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let n_digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n_digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..n_digits.min(3)]);
        millis = padded.parse().ok()?;
        rest = &fraction[n_digits..];
    }
    let offset_minutes = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let offset_hours: i64 = rest[1..3].parse().ok()?;
            let offset_mins: i64 = rest[4..6].parse().ok()?;
            if offset_hours > 23 || offset_mins > 59 {
                return None;
            }
            sign * (offset_hours * 60 + offset_mins)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
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
