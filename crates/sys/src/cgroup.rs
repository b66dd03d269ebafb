//! Control groups: the mounted hierarchies (the v2 unified one and v1 per-controller
//! ones), the formats of their interface files, and pressure-stall (PSI) lines.
//!
//! Every parser takes text a kernel wrote but tolerates anything: a line it cannot read
//! is skipped, a value it cannot read is `None`.

use crate::fs::{parse_i64, parse_u64};
use crate::mounts::MountEntry;
use std::path::PathBuf;

/// `statfs(2)` type of a cgroup v2 file system.
pub const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
/// `statfs(2)` type of a cgroup v1 file system.
pub const CGROUP_SUPER_MAGIC: u64 = 0x0027_e0eb;

/// The v1 controllers a `cgroup` mount's options may name (the others are mount flags).
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "net_prio",
    "blkio",
    "perf_event",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// One mounted cgroup hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Where it is mounted.
    pub mount: PathBuf,
    /// 1 or 2.
    pub version: u8,
    /// The hierarchy's name as `/proc/<pid>/cgroup` lists it: v1 controllers joined by
    /// commas (`cpu,cpuacct`, or `name=systemd` for a named one); `unified` for v2.
    pub name: String,
}

impl Hierarchy {
    /// Whether a v1 hierarchy carries `controller` (a v2 one never matches: its
    /// controllers are per cgroup, in `cgroup.controllers`).
    pub fn has(&self, controller: &str) -> bool {
        self.version == 1 && self.name.split(',').any(|c| c == controller)
    }
}

/// The cgroup hierarchies of a mount table, each once (a hierarchy bind-mounted twice,
/// as in some containers, keeps its first mount).
pub fn hierarchies(mounts: &[MountEntry]) -> Vec<Hierarchy> {
    let mut out: Vec<Hierarchy> = Vec::new();
    for m in mounts {
        let (version, name) = match m.fstype.as_str() {
            "cgroup2" => (2, "unified".to_owned()),
            "cgroup" => {
                let names: Vec<&str> = m
                    .options
                    .split(',')
                    .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                    .collect();
                if names.is_empty() {
                    continue;
                }
                (1, names.join(","))
            }
            _ => continue,
        };
        if out.iter().any(|h| h.name == name) {
            continue;
        }
        out.push(Hierarchy {
            mount: PathBuf::from(&m.target),
            version,
            name,
        });
    }
    out
}

/// The `(hierarchy name, path)` pairs of `/proc/<pid>/cgroup` (`id:controllers:path`;
/// the v2 line is `0::path` and is named `unified`).
pub fn process_cgroups(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    text.split(|b| *b == b'\n')
        .filter_map(|line| {
            let mut parts = line.splitn(3, |b| *b == b':');
            let (_id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            let name = if controllers.is_empty() {
                "unified".to_owned()
            } else {
                String::from_utf8_lossy(controllers).into_owned()
            };
            Some((name, path.to_vec()))
        })
        .collect()
}

/// The value of `key` in a flat-keyed file (`key value` per line: `cpu.stat`,
/// `memory.events`, `memory.oom_control`).
pub fn flat_keyed(text: &[u8], key: &str) -> Option<i64> {
    text.split(|b| *b == b'\n').find_map(|line| {
        let mut fields = line.split(|b| *b == b' ').filter(|f| !f.is_empty());
        (fields.next()? == key.as_bytes())
            .then(|| fields.next().and_then(parse_i64))
            .flatten()
    })
}

/// The sum of `key=value` over the lines of a nested-keyed file (`io.stat`:
/// `maj:min rbytes=.. wbytes=..` per device); `None` when no line has the key.
pub fn nested_keyed_sum(text: &[u8], key: &str) -> Option<i64> {
    let mut sum: Option<i64> = None;
    for line in text.split(|b| *b == b'\n') {
        for field in line.split(|b| *b == b' ').skip(1) {
            if let Some(v) = field
                .strip_prefix(key.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
                .and_then(parse_i64)
            {
                sum = Some(sum.unwrap_or(0).saturating_add(v));
            }
        }
    }
    sum
}

/// The sum of one operation's bytes over the devices of a v1
/// `blkio.throttle.io_service_bytes` file (`maj:min Read 123` per line; the last line,
/// `Total n`, has no device and is not counted).
pub fn blkio_sum(text: &[u8], operation: &str) -> Option<i64> {
    let mut sum: Option<i64> = None;
    for line in text.split(|b| *b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
        if let [device, op, value] = fields[..]
            && device.contains(&b':')
            && op == operation.as_bytes()
            && let Some(v) = parse_i64(value)
        {
            sum = Some(sum.unwrap_or(0).saturating_add(v));
        }
    }
    sum
}

/// A limit file's value: a number, or `None` for `max` (v2's "no limit") and for v1's
/// "no limit", the largest page-aligned `i64`, which is no limit a user set.
pub fn limit(text: &[u8]) -> Option<i64> {
    let text = text.trim_ascii();
    let v = parse_u64(text)?;
    // v1 reports an unlimited memory limit as LONG_MAX rounded down to a page.
    if v >= (1 << 62) {
        return None;
    }
    i64::try_from(v).ok()
}

/// A single number file (`memory.current`, `pids.current`, `cpuacct.usage`).
pub fn number(text: &[u8]) -> Option<i64> {
    parse_i64(text.trim_ascii())
}

/// How many lines (pids) a `cgroup.procs` file lists.
pub fn count_lines(text: &[u8]) -> i64 {
    text.split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count() as i64
}

/// One line of a PSI file: `some avg10=0.00 avg60=0.00 avg300=0.00 total=0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pressure {
    /// `some` (at least one task stalled) or `full` (all non-idle tasks stalled).
    pub kind: String,
    /// Percent of time stalled over the last 10, 60 and 300 seconds.
    pub avg10: Option<f64>,
    pub avg60: Option<f64>,
    pub avg300: Option<f64>,
    /// Total time stalled, in microseconds.
    pub total: Option<i64>,
}

/// The `some`/`full` lines of a PSI file.
pub fn parse_pressure(text: &[u8]) -> Vec<Pressure> {
    text.split(|b| *b == b'\n')
        .filter_map(|line| {
            let line = std::str::from_utf8(line).ok()?;
            let mut fields = line.split_ascii_whitespace();
            let kind = fields.next()?;
            if kind != "some" && kind != "full" {
                return None;
            }
            let mut p = Pressure {
                kind: kind.to_owned(),
                avg10: None,
                avg60: None,
                avg300: None,
                total: None,
            };
            for field in fields {
                let Some((k, v)) = field.split_once('=') else {
                    continue;
                };
                let real = || v.parse::<f64>().ok().filter(|f| f.is_finite());
                match k {
                    "avg10" => p.avg10 = real(),
                    "avg60" => p.avg60 = real(),
                    "avg300" => p.avg300 = real(),
                    "total" => p.total = v.parse().ok(),
                    _ => {}
                }
            }
            Some(p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mounts::parse_mounts;

    #[test]
    fn hierarchies_of_a_hybrid_host() {
        let mounts = parse_mounts(
            b"tmpfs /sys/fs/cgroup tmpfs rw 0 0\n\
              cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,cpu,cpuacct 0 0\n\
              cgroup /sys/fs/cgroup/systemd cgroup rw,xattr,name=systemd 0 0\n\
              cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nsdelegate 0 0\n\
              cgroup /container/cpu cgroup rw,cpu,cpuacct 0 0\n",
        );
        let h = hierarchies(&mounts);
        let names: Vec<&str> = h.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["cpu,cpuacct", "name=systemd", "unified"]);
        assert!(h[0].has("cpuacct") && !h[0].has("cpuset"));
        assert!(!h[2].has("cpu"));
        assert_eq!(h[2].version, 2);
    }

    #[test]
    fn process_cgroup_lines() {
        let got = process_cgroups(b"4:memory:/a:b\n0::/user.slice\n\nbad\n");
        assert_eq!(
            got,
            [
                ("memory".to_owned(), b"/a:b".to_vec()),
                ("unified".to_owned(), b"/user.slice".to_vec())
            ]
        );
    }

    #[test]
    fn keyed_files_and_limits() {
        let cpu = b"usage_usec 1234\nuser_usec 1000\nsystem_usec 234\nnr_throttled 0\n";
        assert_eq!(flat_keyed(cpu, "user_usec"), Some(1000));
        assert_eq!(flat_keyed(cpu, "user"), None);
        let io = b"8:0 rbytes=10 wbytes=20 rios=1\n253:0 rbytes=5 wbytes=x\n";
        assert_eq!(nested_keyed_sum(io, "rbytes"), Some(15));
        assert_eq!(nested_keyed_sum(io, "wbytes"), Some(20));
        assert_eq!(nested_keyed_sum(io, "dbytes"), None);
        let blkio = b"8:0 Read 100\n8:0 Write 7\n8:16 Read 1\nTotal 108\n";
        assert_eq!(blkio_sum(blkio, "Read"), Some(101));
        assert_eq!(blkio_sum(b"Total 0\n", "Read"), None);
        assert_eq!(limit(b"max\n"), None);
        assert_eq!(limit(b"9223372036854771712\n"), None);
        assert_eq!(limit(b"52428800\n"), Some(52_428_800));
        assert_eq!(count_lines(b"1\n22\n\n"), 2);
    }

    #[test]
    fn pressure_lines() {
        let got = parse_pressure(
            b"some avg10=4.52 avg60=1.56 avg300=4.26 total=7350617146\n\
              full avg10=nan avg60=0.00 avg300=x total=0\nother avg10=1\n",
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].avg10, Some(4.52));
        assert_eq!(got[0].total, Some(7_350_617_146));
        assert_eq!(got[1].kind, "full");
        assert_eq!(got[1].avg10, None);
        assert_eq!(got[1].avg300, None);
        let garbage: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let _ = parse_pressure(&garbage);
        let _ = nested_keyed_sum(&garbage, "rbytes");
        let _ = blkio_sum(&garbage, "Read");
        let _ = process_cgroups(&garbage);
    }
}
