//! CPU time and memory of a process, from `/proc` (docs/experiments.md#cost).

use std::sync::OnceLock;

use anyhow::Context as _;

/// What a process has used so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Resident memory now (`VmRSS`).
    pub rss_bytes: u64,
    /// The largest resident memory since it started (`VmHWM`).
    pub peak_rss_bytes: u64,
    /// User plus system CPU time since it started.
    pub cpu_seconds: f64,
}

impl Usage {
    /// Reads the usage of process `pid` (Linux only).
    pub fn of_pid(pid: u32) -> anyhow::Result<Self> {
        let status_path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&status_path)
            .with_context(|| format!("cannot read {status_path}"))?;
        let stat_path = format!("/proc/{pid}/stat");
        let stat = std::fs::read_to_string(&stat_path)
            .with_context(|| format!("cannot read {stat_path}"))?;
        Self::parse(&status, &stat, clock_ticks_per_second())
            .with_context(|| format!("cannot parse {status_path} and {stat_path}"))
    }

    /// The usage from the text of `/proc/<pid>/status` and `/proc/<pid>/stat`, with CPU times
    /// counted in `ticks_per_second`.
    pub(crate) fn parse(status: &str, stat: &str, ticks_per_second: u64) -> anyhow::Result<Self> {
        let ticks = stat_cpu_ticks(stat).context("no utime and stime in the stat line")?;
        Ok(Self {
            rss_bytes: proc_status_bytes(status, "VmRSS").context("no VmRSS")?,
            peak_rss_bytes: proc_status_bytes(status, "VmHWM").context("no VmHWM")?,
            cpu_seconds: ticks_to_seconds(ticks, ticks_per_second),
        })
    }
}

/// A field such as `VmRSS:    12345 kB` of `/proc/<pid>/status`, in bytes.
fn proc_status_bytes(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        let kib = value
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?;
        kib.checked_mul(1024)
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line, in clock ticks.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    // Field 2, the command name, is in parentheses and may itself hold spaces and
    // parentheses: the fields after it start after the last `)`, with field 3.
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(14 - 3);
    let utime = fields.next()?.parse::<u64>().ok()?;
    let stime = fields.next()?.parse::<u64>().ok()?;
    utime.checked_add(stime)
}

/// `sysconf(_SC_CLK_TCK)`, read once (100 on Linux in practice).
fn clock_ticks_per_second() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(rustix::param::clock_ticks_per_second)
}

#[allow(
    clippy::cast_precision_loss,
    reason = "CPU ticks of a test process stay far below 2^52"
)]
fn ticks_to_seconds(ticks: u64, ticks_per_second: u64) -> f64 {
    ticks as f64 / ticks_per_second.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str =
        "Name:\tsharder\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\nVmRSSX:\t1 kB\n";

    #[test]
    fn proc_status_fields_are_read_in_bytes() {
        assert_eq!(proc_status_bytes(STATUS, "VmRSS"), Some(20480 * 1024));
        assert_eq!(proc_status_bytes(STATUS, "VmHWM"), Some(40960 * 1024));
        assert_eq!(proc_status_bytes(STATUS, "VmSwap"), None);
        assert_eq!(proc_status_bytes("VmRSS:\tlots", "VmRSS"), None);
    }

    #[test]
    fn cpu_time_is_user_plus_system_ticks() {
        // A command name with spaces and parentheses must not shift the fields.
        let stat = "4242 (web (op) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 7 0 \
                    12345 104857600 2560 18446744073709551615";
        assert_eq!(stat_cpu_ticks(stat), Some(300));
        assert_eq!(stat_cpu_ticks("4242 (short) S 1 2"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn usage_combines_status_and_stat() {
        let stat = "1 (sharder) S 0 1 1 0 -1 0 0 0 0 0 150 100 0 0 20 0 1 0 1 1 1";
        let usage = Usage::parse(STATUS, stat, 100).unwrap();
        assert_eq!(
            usage,
            Usage {
                rss_bytes: 20480 * 1024,
                peak_rss_bytes: 40960 * 1024,
                cpu_seconds: 2.5,
            }
        );
        let error = Usage::parse("Name:\tx\n", stat, 100).unwrap_err();
        assert!(error.to_string().contains("VmRSS"), "{error}");
    }

    #[test]
    fn the_usage_of_this_process_is_readable() {
        let usage = Usage::of_pid(std::process::id()).unwrap();
        assert!(usage.rss_bytes > 0);
        assert!(usage.peak_rss_bytes >= usage.rss_bytes);
        assert!(usage.cpu_seconds >= 0.0);
    }
}
