//! The ISO 8601 date-time strings of the query language's date functions.
//!
//! Cosmos writes date-times as `YYYY-MM-DDThh:mm:ss.fffffffZ` (UTC, seven fractional digits,
//! 100-nanosecond ticks). This module converts between that text and ticks since the Unix epoch
//! with plain civil-calendar arithmetic; it has no time zone support because the format has none.

/// 100-nanosecond ticks in one second.
pub(crate) const TICKS_PER_SECOND: i64 = 10_000_000;
/// 100-nanosecond ticks in one millisecond.
pub(crate) const TICKS_PER_MILLISECOND: i64 = 10_000;
const TICKS_PER_MINUTE: i64 = 60 * TICKS_PER_SECOND;
const TICKS_PER_HOUR: i64 = 60 * TICKS_PER_MINUTE;
const TICKS_PER_DAY: i64 = 24 * TICKS_PER_HOUR;

/// The fields of a UTC date-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateTime {
    pub(crate) year: i64,
    pub(crate) month: i64,
    pub(crate) day: i64,
    pub(crate) hour: i64,
    pub(crate) minute: i64,
    pub(crate) second: i64,
    /// Sub-second 100-nanosecond ticks, 0..10^7.
    pub(crate) fraction_ticks: i64,
}

/// A part of a date-time named in `DateTimeAdd`, `DateTimePart` and `DateTimeDiff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DatePart {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
    Microsecond,
    Nanosecond,
}

impl DatePart {
    /// Parses a part name or its abbreviation (case-insensitive).
    pub(crate) fn parse(name: &str) -> Option<DatePart> {
        let part = match name.to_ascii_lowercase().as_str() {
            "year" | "yyyy" | "yy" => DatePart::Year,
            "month" | "mm" | "m" => DatePart::Month,
            "day" | "dd" | "d" => DatePart::Day,
            "hour" | "hh" => DatePart::Hour,
            "minute" | "mi" | "n" => DatePart::Minute,
            "second" | "ss" | "s" => DatePart::Second,
            "millisecond" | "ms" => DatePart::Millisecond,
            "microsecond" | "mcs" => DatePart::Microsecond,
            "nanosecond" | "ns" => DatePart::Nanosecond,
            _ => return None,
        };
        Some(part)
    }

    /// Ticks in one unit of a fixed-length part; `None` for years and months.
    fn fixed_ticks(self) -> Option<i64> {
        match self {
            DatePart::Year | DatePart::Month => None,
            DatePart::Day => Some(TICKS_PER_DAY),
            DatePart::Hour => Some(TICKS_PER_HOUR),
            DatePart::Minute => Some(TICKS_PER_MINUTE),
            DatePart::Second => Some(TICKS_PER_SECOND),
            DatePart::Millisecond => Some(TICKS_PER_MILLISECOND),
            DatePart::Microsecond => Some(10),
            // Ticks are the finest unit; nanoseconds are handled by the callers.
            DatePart::Nanosecond => Some(1),
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

impl DateTime {
    /// Ticks since 1970-01-01T00:00:00Z.
    pub(crate) fn to_ticks(self) -> Option<i64> {
        let days = days_from_civil(self.year, self.month, self.day);
        days.checked_mul(TICKS_PER_DAY)?
            .checked_add(self.hour * TICKS_PER_HOUR)?
            .checked_add(self.minute * TICKS_PER_MINUTE)?
            .checked_add(self.second * TICKS_PER_SECOND)?
            .checked_add(self.fraction_ticks)
    }

    /// The date-time `ticks` after 1970-01-01T00:00:00Z; `None` outside years 1..=9999.
    pub(crate) fn from_ticks(ticks: i64) -> Option<DateTime> {
        let days = ticks.div_euclid(TICKS_PER_DAY);
        let within_day = ticks.rem_euclid(TICKS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        if !(1..=9999).contains(&year) {
            return None;
        }
        Some(DateTime {
            year,
            month,
            day,
            hour: within_day / TICKS_PER_HOUR,
            minute: within_day % TICKS_PER_HOUR / TICKS_PER_MINUTE,
            second: within_day % TICKS_PER_MINUTE / TICKS_PER_SECOND,
            fraction_ticks: within_day % TICKS_PER_SECOND,
        })
    }

    /// Parses a date-time by the rules `IS_DATETIME` documents: `YYYY-MM-DD`, then either an
    /// optional `Z`, or `T` (or a space) and `hh:mm:ss`, an optional fraction of one to seven
    /// digits, and an optional `Z`. Every form is read as UTC.
    pub(crate) fn parse(text: &str) -> Option<DateTime> {
        let bytes = text.as_bytes();
        let number = |range: std::ops::Range<usize>| -> Option<i64> {
            let digits = bytes.get(range)?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(digits).ok()?.parse().ok()
        };
        if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
            return None;
        }
        let year = number(0..4)?;
        let month = number(5..7)?;
        let day = number(8..10)?;
        if year < 1 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        let mut parsed = DateTime {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            fraction_ticks: 0,
        };
        let rest = &bytes[10..];
        if rest.is_empty() || rest == b"Z" {
            return Some(parsed);
        }
        if bytes.len() < 19
            || !matches!(bytes[10], b'T' | b' ')
            || bytes[13] != b':'
            || bytes[16] != b':'
        {
            return None;
        }
        parsed.hour = number(11..13)?;
        parsed.minute = number(14..16)?;
        parsed.second = number(17..19)?;
        if parsed.hour > 23 || parsed.minute > 59 || parsed.second > 59 {
            return None;
        }
        let mut at = 19;
        if bytes.get(at) == Some(&b'.') {
            let digits_start = at + 1;
            let mut digits_end = digits_start;
            while bytes.get(digits_end).is_some_and(u8::is_ascii_digit) {
                digits_end += 1;
            }
            let n_digits = digits_end - digits_start;
            if !(1..=7).contains(&n_digits) {
                return None;
            }
            let fraction = number(digits_start..digits_end)?;
            let scale = 10i64.pow(u32::try_from(7 - n_digits).ok()?);
            parsed.fraction_ticks = fraction * scale;
            at = digits_end;
        }
        matches!(bytes.get(at..), Some(b"" | b"Z")).then_some(parsed)
    }

    /// The date-time of `DateTimeFromParts`; `None` when a part is out of its range.
    pub(crate) fn from_parts(parts: [i64; 7]) -> Option<DateTime> {
        let [year, month, day, hour, minute, second, fraction_ticks] = parts;
        let valid = (1..=9999).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && (0..24).contains(&hour)
            && (0..60).contains(&minute)
            && (0..60).contains(&second)
            && (0..TICKS_PER_SECOND).contains(&fraction_ticks);
        valid.then_some(DateTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
            fraction_ticks,
        })
    }

    /// Formats as `YYYY-MM-DDThh:mm:ss.fffffffZ`.
    pub(crate) fn format(self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.fraction_ticks
        )
    }

    /// The value of one part, as `DateTimePart` reports it.
    pub(crate) fn part(self, part: DatePart) -> i64 {
        match part {
            DatePart::Year => self.year,
            DatePart::Month => self.month,
            DatePart::Day => self.day,
            DatePart::Hour => self.hour,
            DatePart::Minute => self.minute,
            DatePart::Second => self.second,
            DatePart::Millisecond => self.fraction_ticks / TICKS_PER_MILLISECOND,
            DatePart::Microsecond => self.fraction_ticks / 10,
            DatePart::Nanosecond => self.fraction_ticks * 100,
        }
    }

    /// Adds `amount` units of `part`; months and years clamp the day to the month's length.
    pub(crate) fn add(self, part: DatePart, amount: i64) -> Option<DateTime> {
        match part {
            DatePart::Year | DatePart::Month => {
                let months = if part == DatePart::Year {
                    amount.checked_mul(12)?
                } else {
                    amount
                };
                let index = (self.year * 12 + self.month - 1).checked_add(months)?;
                let year = index.div_euclid(12);
                let month = index.rem_euclid(12) + 1;
                if !(1..=9999).contains(&year) {
                    return None;
                }
                let day = self.day.min(days_in_month(year, month));
                Some(DateTime {
                    year,
                    month,
                    day,
                    ..self
                })
            }
            DatePart::Nanosecond => {
                DateTime::from_ticks(self.to_ticks()?.checked_add(amount / 100)?)
            }
            _ => {
                let unit = part.fixed_ticks()?;
                DateTime::from_ticks(self.to_ticks()?.checked_add(amount.checked_mul(unit)?)?)
            }
        }
    }

    /// `DateTimeBin`: the start of the `size`-`part` bin, counted from `origin`, that holds
    /// `self`. Only fixed-length parts (days down to nanoseconds) can be binned.
    pub(crate) fn bin(self, part: DatePart, size: i64, origin: DateTime) -> Option<DateTime> {
        const NANOS_PER_TICK: i128 = 100;
        let unit_nanos = match part {
            DatePart::Nanosecond => 1,
            _ => i128::from(part.fixed_ticks()?) * NANOS_PER_TICK,
        };
        if size <= 0 {
            return None;
        }
        let bin_nanos = unit_nanos * i128::from(size);
        let origin_nanos = i128::from(origin.to_ticks()?) * NANOS_PER_TICK;
        let offset_nanos = i128::from(self.to_ticks()?) * NANOS_PER_TICK - origin_nanos;
        let start_nanos = origin_nanos + offset_nanos.div_euclid(bin_nanos) * bin_nanos;
        let ticks = i64::try_from(start_nanos.div_euclid(NANOS_PER_TICK)).ok()?;
        DateTime::from_ticks(ticks)
    }

    /// The number of `part` boundaries crossed from `self` to `end`, as `DateTimeDiff` counts.
    pub(crate) fn diff(self, part: DatePart, end: DateTime) -> Option<i64> {
        match part {
            DatePart::Year => Some(end.year - self.year),
            DatePart::Month => Some((end.year - self.year) * 12 + end.month - self.month),
            DatePart::Nanosecond => end
                .to_ticks()?
                .checked_sub(self.to_ticks()?)?
                .checked_mul(100),
            _ => {
                let unit = part.fixed_ticks()?;
                let start = self.to_ticks()?.div_euclid(unit);
                let finish = end.to_ticks()?.div_euclid(unit);
                finish.checked_sub(start)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        let text = "2024-02-29T23:59:58.1234567Z";
        let parsed = DateTime::parse(text).unwrap();
        assert_eq!(parsed.format(), text);
        let ticks = parsed.to_ticks().unwrap();
        assert_eq!(DateTime::from_ticks(ticks), Some(parsed));
    }

    #[test]
    fn unix_epoch_is_tick_zero() {
        let epoch = DateTime::parse("1970-01-01T00:00:00Z").unwrap();
        assert_eq!(epoch.to_ticks(), Some(0));
        let known = DateTime::parse("2021-01-01T00:00:00.000Z").unwrap();
        assert_eq!(
            known.to_ticks(),
            Some(1_609_459_200_000 * TICKS_PER_MILLISECOND)
        );
    }

    #[test]
    fn rejects_malformed_date_times() {
        for text in [
            "2021-02-30T00:00:00Z",
            "2021-13-01T00:00:00Z",
            "2021-01-01T24:00:00Z",
            "2021-01-01T12",
            "2021-01-01X00:00:00",
            "2021-01-01T00:00:00.",
            "2021-01-01T00:00:00.12345678Z",
            "20210101",
            "",
        ] {
            assert_eq!(DateTime::parse(text), None, "{text}");
        }
    }

    #[test]
    fn accepts_the_forms_is_datetime_documents() {
        for text in [
            "2024-12-12",
            "2024-12-12Z",
            "2024-12-12 20:21:25",
            "2024-12-12T20:21:25.123",
        ] {
            assert!(DateTime::parse(text).is_some(), "{text}");
        }
    }

    #[test]
    fn bins_count_from_the_origin() {
        let moment = DateTime::parse("2021-01-08T18:35:00Z").unwrap();
        let epoch = DateTime::parse("1970-01-01").unwrap();
        let binned = moment.bin(DatePart::Hour, 5, epoch).unwrap();
        assert_eq!(binned.format(), "2021-01-08T15:00:00.0000000Z");
        assert_eq!(moment.bin(DatePart::Month, 1, epoch), None);
        assert_eq!(moment.bin(DatePart::Day, 0, epoch), None);
    }

    #[test]
    fn adding_months_clamps_the_day() {
        let start = DateTime::parse("2021-01-31T10:00:00Z").unwrap();
        let next = start.add(DatePart::Month, 1).unwrap();
        assert_eq!(next.format(), "2021-02-28T10:00:00.0000000Z");
        let back = start.add(DatePart::Day, -31).unwrap();
        assert_eq!(back.format(), "2020-12-31T10:00:00.0000000Z");
    }

    #[test]
    fn diff_counts_boundaries_crossed() {
        let start = DateTime::parse("2020-12-31T23:59:59Z").unwrap();
        let end = DateTime::parse("2021-01-01T00:00:01Z").unwrap();
        assert_eq!(start.diff(DatePart::Year, end), Some(1));
        assert_eq!(start.diff(DatePart::Day, end), Some(1));
        assert_eq!(start.diff(DatePart::Second, end), Some(2));
    }
}
