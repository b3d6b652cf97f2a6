//! What the server and the process say about themselves: Redis `INFO commandstats` / `INFO
//! memory` / `MEMORY USAGE`, this process's heap in use and its resident set size.

use std::collections::HashMap;

/// A synchronous connection for the probes. Open it before the first snapshot and keep it: a
/// new connection sends commands of its own (`CLIENT SETINFO`) that a delta would count.
pub fn connect(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// `INFO commandstats`: calls per command (`get`, `set`, …) since the server started.
pub fn command_calls(c: &mut redis::Connection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(c).unwrap();
    parse_commandstats(&info)
}

/// Parses `cmdstat_get:calls=12,usec=34,…` lines.
pub fn parse_commandstats(info: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for line in info.lines() {
        let Some(rest) = line.strip_prefix("cmdstat_") else { continue };
        let Some((name, fields)) = rest.split_once(':') else { continue };
        let calls = fields.split(',').find_map(|f| f.strip_prefix("calls=")).and_then(|v| v.trim().parse().ok());
        if let Some(calls) = calls {
            out.insert(name.to_owned(), calls);
        }
    }
    out
}

/// Commands the server received between two `command_calls` snapshots: `GET`s, and every
/// other command except the `INFO` of the snapshots themselves.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CommandDelta {
    pub gets: u64,
    pub others: u64,
}

pub fn command_delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> CommandDelta {
    let mut d = CommandDelta::default();
    for (name, &n) in after {
        let n = n - before.get(name).copied().unwrap_or(0);
        match name.as_str() {
            "get" => d.gets += n,
            "info" => {}
            _ => d.others += n,
        }
    }
    d
}

/// `used_memory` from `INFO memory` (bytes the server's allocator holds).
pub fn used_memory(c: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query(c).unwrap();
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// `MEMORY USAGE key SAMPLES 0` (bytes for the key, its value and their overhead).
pub fn memory_usage(c: &mut redis::Connection, key: &str) -> Option<u64> {
    redis::cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0).query(c).ok()
}

/// `DBSIZE`.
pub fn dbsize(c: &mut redis::Connection) -> u64 {
    redis::cmd("DBSIZE").query(c).unwrap()
}

/// This process's resident set size in bytes (`VmRSS` of `/proc/self/status`), 0 where unknown.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Heap bytes in use (glibc `mallinfo2()`: `uordblks` + `hblkhd`, summed over every arena;
/// malloc's per-chunk overhead included), `None` where the C library is not glibc.
///
/// Unlike the resident set size this does not depend on whether freed memory went back to the
/// system: a delta around an insert loop is what the inserted entries hold.
pub fn heap_in_use() -> Option<u64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[repr(C)]
        struct MallInfo2 {
            arena: usize,
            ordblks: usize,
            smblks: usize,
            hblks: usize,
            hblkhd: usize,
            usmblks: usize,
            fsmblks: usize,
            uordblks: usize,
            fordblks: usize,
            keepcost: usize,
        }
        extern "C" {
            fn mallinfo2() -> MallInfo2;
        }
        // SAFETY: `mallinfo2` (glibc >= 2.33) takes no argument and returns a plain struct of
        // `size_t` counters with this layout.
        let m = unsafe { mallinfo2() };
        Some((m.uordblks + m.hblkhd) as u64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commandstats() {
        let info =
            "# Commandstats\r\ncmdstat_get:calls=21,usec=40,usec_per_call=1.90,rejected_calls=0,failed_calls=0\r\n\
                    cmdstat_info:calls=3,usec=9\r\ncmdstat_set:calls=2,usec=4\r\n";
        let m = parse_commandstats(info);
        assert_eq!(m["get"], 21);
        assert_eq!(m["set"], 2);
        let before: HashMap<String, u64> = [("get".to_owned(), 1), ("info".to_owned(), 1)].into();
        assert_eq!(command_delta(&before, &m), CommandDelta { gets: 20, others: 2 });
    }

    #[test]
    fn heap_in_use_sees_an_allocation() {
        if let Some(before) = heap_in_use() {
            let v = vec![1u8; 4 << 20];
            let after = heap_in_use().unwrap();
            assert!(after >= before + (4 << 20), "{before} -> {after}");
            drop(v);
        }
    }

    #[test]
    fn reads_rss() {
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(rss_bytes() > 0);
        }
    }
}
