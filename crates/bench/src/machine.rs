//! What machine a benchmark ran on, and how much memory the process holds.
//!
//! Everything here is read from `/proc` (Linux); on other systems the values are `None`.

use serde::Serialize;

/// The machine a report was measured on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MachineInfo {
    /// CPUs this process may use (what `nproc` prints).
    pub nproc: usize,
    /// The CPU model name from `/proc/cpuinfo`.
    pub cpu_model: Option<String>,
    /// Total memory, MiB (`MemTotal` in `/proc/meminfo`).
    pub memory_total_mb: Option<f64>,
    /// The kernel release (what `uname -r` prints).
    pub kernel: Option<String>,
    /// The operating system family (`linux`, `macos`, ...).
    pub os: &'static str,
}

impl MachineInfo {
    /// Reads the current machine's facts.
    pub fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            });
        let memory_total_mb = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| kib_field(&text, "MemTotal:"))
            .map(kib_to_mib);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|release| release.trim().to_owned());
        MachineInfo {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
            memory_total_mb,
            kernel,
            os: std::env::consts::OS,
        }
    }

    /// One line for humans: `2 CPUs (AMD EPYC), 23.4 GiB, linux 6.18.44`.
    pub fn describe(&self) -> String {
        let mut line = format!("{} CPUs", self.nproc);
        if let Some(model) = &self.cpu_model {
            line.push_str(&format!(" ({model})"));
        }
        if let Some(memory) = self.memory_total_mb {
            line.push_str(&format!(", {:.1} GiB", memory / 1024.0));
        }
        line.push_str(&format!(", {}", self.os));
        if let Some(kernel) = &self.kernel {
            line.push_str(&format!(" {kernel}"));
        }
        line
    }
}

/// The most memory this process has held so far, MiB (`VmHWM`).
pub fn peak_rss_mb() -> Option<f64> {
    own_status_mib("VmHWM:")
}

/// The memory this process holds now, MiB (`VmRSS`).
pub fn current_rss_mb() -> Option<f64> {
    own_status_mib("VmRSS:")
}

/// File descriptors this process has open now (entries of `/proc/self/fd`, less the one
/// reading it).
pub(crate) fn open_fds() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some((entries.count() as u64).saturating_sub(1))
}

/// The machine's load averages over 1, 5 and 15 minutes (`/proc/loadavg`).
pub(crate) fn load_average() -> Option<[f64; 3]> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    parse_load_average(&text)
}

fn parse_load_average(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    Some([
        fields.next()?.ok()?,
        fields.next()?.ok()?,
        fields.next()?.ok()?,
    ])
}

fn own_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    kib_field(&status, field).map(kib_to_mib)
}

/// The value of a `Name:   1234 kB` line.
fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Bytes of all files under `path` (0 for what cannot be read).
pub(crate) fn directory_bytes(path: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => directory_bytes(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_fields_are_read_in_kib() {
        let status = "Name:\tbench\nVmHWM:\t  204800 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(kib_field(status, "VmHWM:"), Some(204_800));
        assert_eq!(kib_field(status, "VmRSS:"), Some(1024));
        assert_eq!(kib_field(status, "VmSwap:"), None);
        assert_eq!(kib_to_mib(204_800), 200.0);
    }

    #[test]
    fn load_averages_are_the_first_three_fields() {
        assert_eq!(
            parse_load_average("2.50 2.21 2.25 3/412 14137\n"),
            Some([2.5, 2.21, 2.25])
        );
        assert_eq!(parse_load_average("2.50"), None);
    }
}
