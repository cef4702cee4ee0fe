//! RFC 3339 times (`2026-12-01T10:00:00Z`), as the command line and the Explorer's feed stream
//! take a change feed start time. (HTTP's RFC 1123 dates are in [`crate::headers`].)

/// Parses an RFC 3339 time, `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)` (`T` may be `t` or a space,
/// `Z` may be `z`), into signed milliseconds since the Unix epoch (negative before 1970).
/// Digits of the fraction past milliseconds are dropped.
///
/// `None` when the text is not such a time, or names a date or time of day that does not
/// exist (`2025-02-29`, `24:00:00`).
///
/// ```
/// use tributary_wire::time::parse_rfc3339_ms;
///
/// assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:01.5Z"), Some(1_500));
/// assert_eq!(parse_rfc3339_ms("1970-01-01T02:00:00+02:00"), Some(0));
/// assert_eq!(parse_rfc3339_ms("yesterday"), None);
/// ```
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
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
    fn times_with_fractions_and_offsets_parse() {
        let cases = [
            ("1970-01-01T00:00:00Z", 0),
            ("1969-12-31T23:59:59Z", -1_000),
            ("2026-12-01T10:00:00Z", 1_796_119_200_000),
            ("2026-12-01T10:00:00.5Z", 1_796_119_200_500),
            ("2026-12-01T10:00:00.123456Z", 1_796_119_200_123),
            ("2026-12-01T12:00:00+02:00", 1_796_119_200_000),
            ("2026-12-01 09:30:00-00:30", 1_796_119_200_000),
            ("2024-02-29t23:59:59z", 1_709_251_199_000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_rfc3339_ms(text), Some(ms), "{text}");
        }
    }

    #[test]
    fn malformed_or_impossible_times_are_refused() {
        for text in [
            "",
            "1796119200000",
            "2026-12-01",
            "2026-12-01T10:00:00",
            "2026-13-01T10:00:00Z",
            "2025-02-29T10:00:00Z",
            "2026-12-01T24:00:00Z",
            "2026-12-01T10:00:00.Z",
            "2026-12-01T10:00:00+2:00",
            "2026-12-01T10:00:00+24:00",
        ] {
            assert_eq!(parse_rfc3339_ms(text), None, "{text}");
        }
    }
}
