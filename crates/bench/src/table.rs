//! The human-readable form of a report: one row per phase, aligned columns.

use crate::latency::LatencySummary;

/// One phase of a report as a table row.
pub(crate) struct Row<'a> {
    /// What was measured.
    pub phase: String,
    /// The rate, formatted (`"41,234 docs/s"`), or empty.
    pub rate: String,
    /// The per-operation latencies.
    pub latency: &'a LatencySummary,
}

/// Renders rows as an aligned table with a header.
pub(crate) fn render(rows: &[Row<'_>]) -> String {
    let phase_width = rows
        .iter()
        .map(|row| row.phase.chars().count())
        .chain(["phase".len()])
        .max()
        .unwrap_or(0);
    let rate_width = rows
        .iter()
        .map(|row| row.rate.len())
        .chain(["rate".len()])
        .max()
        .unwrap_or(0);
    let mut out = format!(
        "{:<phase_width$}  {:>rate_width$}  {:>9}  {:>9}  {:>9}  {:>9}  {:>8}\n",
        "phase", "rate", "p50 ms", "p90 ms", "p99 ms", "max ms", "n"
    );
    for row in rows {
        let padding = phase_width - row.phase.chars().count();
        out.push_str(&format!(
            "{}{}  {:>rate_width$}  {:>9.3}  {:>9.3}  {:>9.3}  {:>9.3}  {:>8}\n",
            row.phase,
            " ".repeat(padding),
            row.rate,
            row.latency.p50_ms,
            row.latency.p90_ms,
            row.latency.p99_ms,
            row.latency.max_ms,
            row.latency.n
        ));
    }
    out
}

/// `41234.7` as `41,235`.
pub(crate) fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A MiB figure, or `n/a` where it could not be read.
pub(crate) fn mebibytes(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |mb| format!("{mb:.1} MiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(41_234.7), "41,235");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn rows_align_under_the_header() {
        let latency = LatencySummary::from_samples(vec![std::time::Duration::from_millis(2)]);
        let table = render(&[Row {
            phase: "ingest".into(),
            rate: "10 docs/s".into(),
            latency: &latency,
        }]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), lines[1].len());
        assert!(lines[1].contains("2.000"));
    }
}
