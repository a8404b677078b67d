//! CPU time and memory of a process (or of some of its threads) from /proc: the proxy under test when it is
//! a child or an external process, the proxy's reactor threads when it runs in-process, and the load
//! generator itself.

use std::fs;

/// Which CPU time and memory to read.
#[derive(Clone, Debug)]
pub enum Scope {
    /// A whole process.
    Pid(u32),
    /// The threads of this process whose name starts with the prefix (an in-process proxy's reactors).
    OwnThreads(&'static str),
}

/// Memory figures of a process, in KiB.
#[derive(Clone, Copy, Debug, Default)]
pub struct Mem {
    pub rss_kib: u64,
    /// Peak resident set (VmHWM).
    pub hwm_kib: u64,
}

/// CPU nanoseconds used so far by the tasks of `scope`: the sum of each thread's /proc/.../schedstat run
/// time (nanosecond resolution), or of utime+stime from .../stat (clock ticks) where schedstat is missing.
pub fn cpu_ns(scope: &Scope) -> Option<u64> {
    let (dir, prefix) = match scope {
        Scope::Pid(p) => (format!("/proc/{p}/task"), None),
        Scope::OwnThreads(pre) => ("/proc/self/task".to_string(), Some(*pre)),
    };
    let mut total = 0u64;
    let mut any = false;
    for entry in fs::read_dir(&dir).ok()?.flatten() {
        let path = entry.path();
        if let Some(pre) = prefix {
            let comm = fs::read_to_string(path.join("comm")).unwrap_or_default();
            if !comm.starts_with(pre) {
                continue;
            }
        }
        if let Some(ns) = task_cpu_ns(&path) {
            total += ns;
            any = true;
        }
    }
    any.then_some(total)
}

fn task_cpu_ns(task: &std::path::Path) -> Option<u64> {
    if let Ok(s) = fs::read_to_string(task.join("schedstat")) {
        if let Some(ns) = s.split_whitespace().next().and_then(|v| v.parse().ok()) {
            return Some(ns);
        }
    }
    let stat = fs::read_to_string(task.join("stat")).ok()?;
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000) // USER_HZ is 100 on Linux
}

/// VmRSS and VmHWM of a process (`None`: this process).
pub fn mem(pid: Option<u32>) -> Option<Mem> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = fs::read_to_string(path).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(Mem {
        rss_kib: kib("VmRSS:")?,
        hwm_kib: kib("VmHWM:")?,
    })
}

/// CPU nanoseconds all CPUs spent busy (not idle or waiting for I/O) since boot, from /proc/stat.
pub fn system_busy_ns() -> Option<u64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let busy: u64 = f.iter().take(8).sum::<u64>() - f.get(3)? - f.get(4)?;
    Some(busy * 10_000_000)
}

/// The 1-minute load average.
pub fn loadavg() -> Option<f64> {
    fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The CPU model and the number of CPUs this process may use.
pub fn machine() -> (String, usize) {
    let model = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    (model, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_ns(&Scope::Pid(pid)).unwrap() > 0);
        let m = mem(None).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        assert!(cpu_ns(&Scope::OwnThreads("no-such-thread-name")).is_none());
        assert!(system_busy_ns().unwrap() > 0 && loadavg().is_some());
    }
}
