//! What the benchmark reads from `/proc` and the system: a process's resident memory and CPU
//! time, the file-descriptor limit in force, and a description of the machine for the report.

use std::process::Command;

use anyhow::{Context, Result};

/// Resident set size of process `pid`, in KiB (`VmRSS` in `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_rss_kib(&status).context("no VmRSS line")
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of process `pid` (all its threads), in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = parse_cpu_ticks(&stat).context("malformed /proc/PID/stat")?;
    Ok(ticks as f64 / clock_ticks_per_second() as f64)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2)
/// is in parentheses and may itself contain spaces and parentheses, so fields are counted
/// from the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The kernel's clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on).
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// Connection attempts the kernel dropped because a listen queue was full, machine-wide since
/// boot (`TcpExt: ListenDrops` in `/proc/net/netstat`; loopback only here, so the server's).
pub fn listen_drops() -> Option<u64> {
    parse_netstat(
        &std::fs::read_to_string("/proc/net/netstat").ok()?,
        "ListenDrops",
    )
}

/// A `TcpExt` counter from `/proc/net/netstat`: a line of names followed by a line of values.
fn parse_netstat(netstat: &str, name: &str) -> Option<u64> {
    let mut lines = netstat.lines();
    while let Some(names) = lines.next() {
        let values = lines.next()?;
        if !names.starts_with("TcpExt:") {
            continue;
        }
        let index = names.split_whitespace().position(|n| n == name)?;
        return values.split_whitespace().nth(index)?.parse().ok();
    }
    None
}

/// This process's soft and hard limits on open files (`Max open files` in `/proc/self/limits`).
pub fn open_files_limit() -> Option<(String, String)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut fields = line["Max open files".len()..].split_whitespace();
    Some((fields.next()?.to_owned(), fields.next()?.to_owned()))
}

/// The machine, as the report describes it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    /// Cores available (`nproc`).
    pub cores: usize,
    /// The CPU model (`model name` in `/proc/cpuinfo`).
    pub cpu: String,
    /// The kernel release (`uname -r`).
    pub kernel: String,
    /// Total memory in MiB (`MemTotal` in `/proc/meminfo`).
    pub memory_mib: u64,
    /// Versions of the runtimes involved (Node.js, rustc).
    pub node: String,
    /// The Rust compiler.
    pub rustc: String,
    /// When the run started (UTC, from `date -u`).
    pub date: String,
    /// Open-file limit of the generator (and the servers it starts): soft / hard.
    pub open_files: String,
}

/// Describes this machine.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let output = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|_| "unknown".into())
    };
    Machine {
        // Counted from /proc/cpuinfo: the generator itself is pinned to one core.
        cores: cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count(),
        cpu: cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".into(), |(_, v)| v.trim().to_owned()),
        kernel: output("uname", &["-r"]),
        memory_mib: meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024),
        node: output("node", &["--version"]),
        rustc: output("rustc", &["--version"]),
        date: output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        open_files: open_files_limit()
            .map_or_else(|| "unknown".into(), |(s, h)| format!("{s} / {h}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstat_counters_are_found_by_name() {
        let netstat = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 7 9\nIpExt: InNoRoutes ListenDrops\nIpExt: 1 2\n";
        assert_eq!(parse_netstat(netstat, "ListenDrops"), Some(9));
        assert_eq!(parse_netstat(netstat, "ListenOverflows"), Some(7));
        assert_eq!(parse_netstat(netstat, "Missing"), None);
        assert_eq!(parse_netstat("", "ListenDrops"), None);
    }

    #[test]
    fn stat_lines_parse() {
        fn check(stat: &str, expect: Option<u64>) {
            assert_eq!(parse_cpu_ticks(stat), expect, "{stat}");
        }
        check(
            "4242 (node) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 25 0 0 20 0 11 0 100 1000 100",
            Some(175),
        );
        check(
            "77 (a b) (c)) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 5 6 7",
            Some(10),
        );
        check("77 (short) R 1 2", None);
        check("no parentheses", None);
    }

    #[test]
    fn status_rss_parses() {
        fn check(status: &str, expect: Option<u64>) {
            assert_eq!(parse_rss_kib(status), expect, "{status}");
        }
        check(
            "Name:\tnode\nVmPeak:\t 999 kB\nVmRSS:\t   51234 kB\n",
            Some(51234),
        );
        check("Name:\tzombie\n", None);
        check("VmRSS:\tlots kB\n", None);
    }

    #[test]
    fn this_process_can_be_measured() {
        let pid = std::process::id();
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        assert!(open_files_limit().is_some());
    }
}
