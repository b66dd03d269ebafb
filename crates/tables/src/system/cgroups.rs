//! `cgroups`: every control group of every mounted hierarchy, with what it holds and
//! uses. Not an osquery table (osquery shows only `processes.cgroup_path`).
//!
//! One row per cgroup directory: the v2 unified tree and, where mounted, each v1
//! controller's tree (a hybrid host has both). The resource columns come from the files
//! the hierarchy has: on v2 from `cpu.stat`, `memory.*`, `io.stat`, `pids.*` of the
//! cgroup (a controller not enabled there leaves its columns NULL); on v1 from the
//! hierarchy carrying that controller (`cpuacct`, `cpu`, `memory`, `blkio`, `pids`), so a
//! v1 cgroup's row fills only its own controllers' columns. Limits that are "no limit"
//! (`max`, v1's page-rounded LONG_MAX) are NULL.
//!
//! Constraints: `path = '<dir>'` reads that cgroup only; `pid = N` (hidden) gives the
//! cgroups process N is in, one per hierarchy, which is how the table joins to
//! `processes`. Files are read only when their column is used.

use oxquery_sys::cgroup::{self, Hierarchy};
use oxquery_sys::fs::FileReader;
use oxquery_sys::{mounts, proc};
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

table! {
    name: "cgroups",
    description: "oxquery's own table, not in osquery. Control groups of the v2 unified hierarchy and of each mounted v1 controller hierarchy, with their processes and CPU, memory, I/O and pid usage.",
    columns: {
        path: Text [INDEX] "Directory of the cgroup in the cgroup file system",
        hierarchy: Text [] "unified for the v2 hierarchy; for v1, its controllers as /proc/<pid>/cgroup names them (cpu,cpuacct or name=systemd)",
        version: Integer [] "Hierarchy version: 1 or 2",
        cgroup: Text [] "Path of the cgroup inside its hierarchy, as /proc/<pid>/cgroup shows it (/ for the root)",
        controllers: Text [] "v2: the controllers available in this cgroup (cgroup.controllers); v1: the hierarchy's controllers",
        processes: Integer [] "Processes in the cgroup itself, not counting its descendants (cgroup.procs)",
        cpu_usage_usec: BigInt [] "CPU time used by the cgroup and its descendants, in microseconds",
        cpu_user_usec: BigInt [] "User-mode part of cpu_usage_usec",
        cpu_system_usec: BigInt [] "Kernel-mode part of cpu_usage_usec",
        cpu_periods: BigInt [] "Enforcement periods elapsed under a CPU bandwidth limit",
        cpu_throttled_periods: BigInt [] "Periods in which the cgroup was throttled",
        cpu_throttled_usec: BigInt [] "Time the cgroup was throttled, in microseconds",
        memory_current: BigInt [] "Memory in use by the cgroup and its descendants, in bytes",
        memory_peak: BigInt [] "Highest memory_current recorded, in bytes",
        memory_max: BigInt [] "Memory limit in bytes; NULL when unlimited",
        memory_oom_events: BigInt [] "Times the cgroup hit its memory limit and the OOM killer was invoked (v2 memory.events oom)",
        memory_oom_kills: BigInt [] "Processes killed by the OOM killer in this cgroup",
        io_read_bytes: BigInt [] "Bytes read from block devices, summed over devices",
        io_write_bytes: BigInt [] "Bytes written to block devices, summed over devices",
        pids_current: BigInt [] "Tasks in the cgroup and its descendants (pids controller)",
        pids_max: BigInt [] "Most tasks allowed; NULL when unlimited",
        pid: Integer [ADDITIONAL | HIDDEN] "A process the query asked about: the rows are that process's cgroups",
    },
    examples: [
        "select cgroup, processes, memory_current from cgroups where version = 2 order by memory_current desc limit 10",
        "select p.pid, p.name, c.hierarchy, c.cgroup from processes p join cgroups c on c.pid = p.pid where p.pid = 1",
    ],
}

/// Deeper trees are cut (and logged): the kernel's own default limit is far below.
const MAX_DEPTH: usize = 256;

const CPU: [Col; 6] = [
    Col::cpu_usage_usec,
    Col::cpu_user_usec,
    Col::cpu_system_usec,
    Col::cpu_periods,
    Col::cpu_throttled_periods,
    Col::cpu_throttled_usec,
];
const MEMORY: [Col; 5] = [
    Col::memory_current,
    Col::memory_peak,
    Col::memory_max,
    Col::memory_oom_events,
    Col::memory_oom_kills,
];
const IO: [Col; 2] = [Col::io_read_bytes, Col::io_write_bytes];
const PIDS: [Col; 2] = [Col::pids_current, Col::pids_max];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mounted = match mounts::read_mounts(mounts::PROC_MOUNTS) {
        Ok(m) => m,
        Err(e) => {
            log::warn!("cgroups: cannot read {}: {e}", mounts::PROC_MOUNTS);
            return Ok(());
        }
    };
    let hierarchies = cgroup::hierarchies(&mounted);
    if hierarchies.is_empty() {
        log::info!("cgroups: no cgroup file system is mounted");
        return Ok(());
    }
    let mut scan = Scan {
        ctx,
        reader: FileReader::new(),
    };
    if let Some(pids) = ctx.eq_integers(Col::pid) {
        for pid in proc::pids_or_all(Some(pids)).map_err(|e| TableError::io("/proc", e))? {
            let path = proc::ProcPath::new(pid);
            let Ok(text) = path.read(&mut scan.reader, "cgroup") else {
                continue;
            };
            for (name, rel) in cgroup::process_cgroups(text) {
                if let Some(h) = hierarchies.iter().find(|h| h.name == name) {
                    scan.emit(rows, h, &rel, Some(pid))?;
                }
            }
        }
    } else if let Some(paths) = ctx.eq_paths(Col::path) {
        for path in paths {
            let path = PathBuf::from(path);
            // The hierarchy whose mount holds the path (the longest mount point, as the
            // v1 mounts sit under a tmpfs at /sys/fs/cgroup).
            let Some((h, rel)) = hierarchies
                .iter()
                .filter_map(|h| path.strip_prefix(&h.mount).ok().map(|rel| (h, rel)))
                .min_by_key(|(_, rel)| rel.as_os_str().len())
            else {
                continue;
            };
            // Only a directory of a cgroup file system: `..` in a constraint must not
            // lead the scan to files users control (a FIFO named cgroup.procs).
            let on_cgroupfs = mounts::statfs(&path).is_ok_and(|st| {
                st.magic == cgroup::CGROUP2_SUPER_MAGIC || st.magic == cgroup::CGROUP_SUPER_MAGIC
            });
            if !on_cgroupfs || !path.is_dir() || rel.components().any(|c| c.as_os_str() == "..") {
                continue;
            }
            let mut rel_bytes = b"/".to_vec();
            rel_bytes.extend_from_slice(rel.as_os_str().as_bytes());
            scan.emit(rows, h, &rel_bytes, None)?;
        }
    } else {
        for h in &hierarchies {
            scan.walk(rows, h, b"/".to_vec(), 0)?;
        }
    }
    Ok(())
}

struct Scan<'c, 'q> {
    ctx: &'c QueryContext<'q>,
    reader: FileReader,
}

impl Scan<'_, '_> {
    /// Emits the cgroup at `rel` and, depth first, every cgroup below it.
    fn walk(&mut self, rows: &mut Rows, h: &Hierarchy, rel: Vec<u8>, depth: usize) -> TableResult {
        self.emit(rows, h, &rel, None)?;
        if depth >= MAX_DEPTH {
            log::warn!(
                "cgroups: {} is deeper than {MAX_DEPTH} levels; not descending",
                dir_of(h, &rel).display()
            );
            return Ok(());
        }
        let Ok(entries) = std::fs::read_dir(dir_of(h, &rel)) else {
            // Removed since it was listed.
            return Ok(());
        };
        let mut children: Vec<Vec<u8>> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().into_vec())
            .collect();
        children.sort();
        for name in children {
            let mut child = rel.clone();
            if child != b"/" {
                child.push(b'/');
            }
            child.extend_from_slice(&name);
            self.walk(rows, h, child, depth + 1)?;
        }
        Ok(())
    }

    /// One row: the cgroup at `rel` in hierarchy `h`, with the used columns read.
    fn emit(
        &mut self,
        rows: &mut Rows,
        h: &Hierarchy,
        rel: &[u8],
        pid: Option<u32>,
    ) -> TableResult {
        self.ctx.check()?;
        let ctx = self.ctx;
        let dir = dir_of(h, rel);
        let dir_bytes = dir.as_os_str().as_bytes();
        let mut row = rows.row();
        row.set(Col::path, dir.as_path());
        row.set(Col::hierarchy, h.name.as_str());
        row.set(Col::version, i64::from(h.version));
        row.set(Col::cgroup, oxquery_table::Value::from_bytes(rel.to_vec()));
        row.set(Col::pid, pid);
        let mut read = |name: &str| -> Option<Vec<u8>> {
            self.reader
                .read_parts(&[dir_bytes, b"/", name.as_bytes()])
                .ok()
                .map(<[u8]>::to_vec)
        };
        if row.wants(Col::controllers) {
            let controllers = match h.version {
                2 => read("cgroup.controllers")
                    .map(|t| String::from_utf8_lossy(t.trim_ascii()).into_owned()),
                _ => Some(h.name.clone()),
            };
            row.set(Col::controllers, controllers);
        }
        if row.wants(Col::processes) {
            row.set(
                Col::processes,
                read("cgroup.procs").map(|t| cgroup::count_lines(&t)),
            );
        }
        let any = |cols: &[Col]| cols.iter().any(|c| ctx.is_used(*c));
        if h.version == 2 {
            if any(&CPU)
                && let Some(stat) = read("cpu.stat")
            {
                let key = |k| cgroup::flat_keyed(&stat, k);
                row.set(Col::cpu_usage_usec, key("usage_usec"));
                row.set(Col::cpu_user_usec, key("user_usec"));
                row.set(Col::cpu_system_usec, key("system_usec"));
                row.set(Col::cpu_periods, key("nr_periods"));
                row.set(Col::cpu_throttled_periods, key("nr_throttled"));
                row.set(Col::cpu_throttled_usec, key("throttled_usec"));
            }
            if any(&MEMORY) {
                row.set(
                    Col::memory_current,
                    read("memory.current").and_then(|t| cgroup::number(&t)),
                );
                row.set(
                    Col::memory_peak,
                    read("memory.peak").and_then(|t| cgroup::number(&t)),
                );
                row.set(
                    Col::memory_max,
                    read("memory.max").and_then(|t| cgroup::limit(&t)),
                );
                if let Some(events) = read("memory.events") {
                    row.set(Col::memory_oom_events, cgroup::flat_keyed(&events, "oom"));
                    row.set(
                        Col::memory_oom_kills,
                        cgroup::flat_keyed(&events, "oom_kill"),
                    );
                }
            }
            if any(&IO)
                && let Some(stat) = read("io.stat")
            {
                row.set(
                    Col::io_read_bytes,
                    cgroup::nested_keyed_sum(&stat, "rbytes"),
                );
                row.set(
                    Col::io_write_bytes,
                    cgroup::nested_keyed_sum(&stat, "wbytes"),
                );
            }
        } else {
            if h.has("cpuacct") && any(&CPU[..3]) {
                row.set(
                    Col::cpu_usage_usec,
                    read("cpuacct.usage")
                        .and_then(|t| cgroup::number(&t))
                        .map(|ns| ns / 1000),
                );
                if let Some(stat) = read("cpuacct.stat") {
                    // USER_HZ ticks to microseconds.
                    let ticks = i64::try_from(proc::clock_ticks()).unwrap_or(100).max(1);
                    let usec = |k| {
                        cgroup::flat_keyed(&stat, k).map(|t| t.saturating_mul(1_000_000) / ticks)
                    };
                    row.set(Col::cpu_user_usec, usec("user"));
                    row.set(Col::cpu_system_usec, usec("system"));
                }
            }
            if h.has("cpu")
                && any(&CPU[3..])
                && let Some(stat) = read("cpu.stat")
            {
                row.set(Col::cpu_periods, cgroup::flat_keyed(&stat, "nr_periods"));
                row.set(
                    Col::cpu_throttled_periods,
                    cgroup::flat_keyed(&stat, "nr_throttled"),
                );
                row.set(
                    Col::cpu_throttled_usec,
                    cgroup::flat_keyed(&stat, "throttled_time").map(|ns| ns / 1000),
                );
            }
            if h.has("memory") && any(&MEMORY) {
                row.set(
                    Col::memory_current,
                    read("memory.usage_in_bytes").and_then(|t| cgroup::number(&t)),
                );
                row.set(
                    Col::memory_peak,
                    read("memory.max_usage_in_bytes").and_then(|t| cgroup::number(&t)),
                );
                row.set(
                    Col::memory_max,
                    read("memory.limit_in_bytes").and_then(|t| cgroup::limit(&t)),
                );
                if let Some(oom) = read("memory.oom_control") {
                    row.set(Col::memory_oom_kills, cgroup::flat_keyed(&oom, "oom_kill"));
                }
            }
            if h.has("blkio")
                && any(&IO)
                && let Some(stat) = read("blkio.throttle.io_service_bytes")
            {
                row.set(Col::io_read_bytes, cgroup::blkio_sum(&stat, "Read"));
                row.set(Col::io_write_bytes, cgroup::blkio_sum(&stat, "Write"));
            }
        }
        // pids.current/pids.max have the same names and formats in both versions.
        if (h.version == 2 || h.has("pids")) && any(&PIDS) {
            row.set(
                Col::pids_current,
                read("pids.current").and_then(|t| cgroup::number(&t)),
            );
            row.set(
                Col::pids_max,
                read("pids.max").and_then(|t| cgroup::limit(&t)),
            );
        }
        Ok(())
    }
}

/// The directory of the cgroup at `rel` (`/` is the hierarchy's mount point).
fn dir_of(h: &Hierarchy, rel: &[u8]) -> PathBuf {
    let rel = rel.strip_prefix(b"/").unwrap_or(rel);
    if rel.is_empty() {
        h.mount.clone()
    } else {
        h.mount.join(std::ffi::OsStr::from_bytes(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::test_children::spawn_sleep;
    use crate::testing::rows_of;
    use oxquery_table::{Host, Op, Value};
    use std::path::Path;

    fn text(v: &Value) -> String {
        match v {
            Value::Text(t) => t.to_string(),
            Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
            v => panic!("not text: {v:?}"),
        }
    }

    /// `(hierarchy, cgroup)` of each row.
    fn names(rows: &[Vec<Value>]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    text(&r[Col::hierarchy as usize]),
                    text(&r[Col::cgroup as usize]),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// `/proc/<pid>/cgroup` as the test reads it: `(hierarchy, path)`, the v2 line named
    /// `unified`.
    fn proc_cgroups(pid: u32) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut f = l.splitn(3, ':');
                let (_, c, p) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
                let c = if c.is_empty() { "unified" } else { c };
                (c.to_owned(), p.to_owned())
            })
            .collect();
        v.sort();
        v
    }

    fn by_pid(pid: u32) -> Vec<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::pid,
            Op::Eq,
            i64::from(pid),
        );
        rows_of(&ctx, generate)
    }

    #[test]
    fn a_process_is_in_the_cgroups_its_proc_file_lists() {
        let me = std::process::id();
        let rows = by_pid(me);
        // Every hierarchy of /proc/self/cgroup is mounted here (the test runs in the
        // host's or its container's mount namespace, which mounts what it lists).
        assert_eq!(names(&rows), proc_cgroups(me));
        for r in &rows {
            assert_eq!(r[Col::pid as usize], Value::Integer(i64::from(me)));
            let dir = PathBuf::from(text(&r[Col::path as usize]));
            assert!(dir.join("cgroup.procs").exists(), "{}", dir.display());
        }
    }

    #[test]
    fn a_full_scan_holds_every_hierarchy_root_and_our_own_cgroups() {
        let host = Host::default();
        let rows = rows_of(&QueryContext::everything(&SPEC, &host), generate);
        let all = names(&rows);
        for (hierarchy, path) in proc_cgroups(std::process::id()) {
            assert!(
                all.contains(&(hierarchy.clone(), "/".to_owned())),
                "{hierarchy} root"
            );
            assert!(
                all.contains(&(hierarchy.clone(), path.clone())),
                "{hierarchy} {path}"
            );
        }
        // Each row's directory is where its hierarchy and cgroup say.
        for r in &rows {
            let version = &r[Col::version as usize];
            assert!(matches!(version, Value::Integer(1 | 2)), "{version:?}");
            let path = text(&r[Col::path as usize]);
            let cgroup = text(&r[Col::cgroup as usize]);
            assert!(
                cgroup == "/" || path.ends_with(&cgroup),
                "{path} vs {cgroup}"
            );
        }
    }

    /// A cgroup the test makes in the v1 `pids` hierarchy (or the v2 tree where `pids` is
    /// delegated to children), holding one child process; removed at the end.
    struct MadeCgroup {
        dir: PathBuf,
        child: Option<crate::system::test_children::Reaped>,
    }

    impl Drop for MadeCgroup {
        fn drop(&mut self) {
            drop(self.child.take());
            // The cgroup is removable once its last process is reaped.
            for _ in 0..100 {
                if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
    }

    /// A hierarchy where a cgroup with a pids limit can be made, found in the mount table
    /// by the test itself.
    fn pids_parent() -> Option<PathBuf> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let (target, fstype, options) = (f[1], f[2], f[3]);
            let ok = match fstype {
                "cgroup" => options.split(',').any(|o| o == "pids"),
                "cgroup2" => {
                    std::fs::read_to_string(Path::new(target).join("cgroup.subtree_control"))
                        .is_ok_and(|s| s.split_whitespace().any(|c| c == "pids"))
                }
                _ => false,
            };
            ok.then(|| PathBuf::from(target))
        })
    }

    #[test]
    fn a_cgroup_the_test_made_shows_its_process_and_pid_limit() {
        // Making a cgroup needs root and a pids hierarchy we may write to.
        let Some(parent) = pids_parent() else { return };
        let dir = parent.join(format!("oxquery-test-{}", std::process::id()));
        if let Err(e) = std::fs::create_dir(&dir) {
            // SAFETY: geteuid has no preconditions.
            assert!(
                unsafe { libc::geteuid() } != 0,
                "root cannot make {}: {e}",
                dir.display()
            );
            return;
        }
        let mut made = MadeCgroup {
            dir: dir.clone(),
            child: None,
        };
        std::fs::write(dir.join("pids.max"), "7").unwrap();
        let child = spawn_sleep(|_| {});
        let child_pid = child.pid();
        made.child = Some(child);
        std::fs::write(dir.join("cgroup.procs"), child_pid.to_string()).unwrap();

        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::path,
            Op::Eq,
            dir.to_str().unwrap(),
        );
        let rows = rows_of(&ctx, generate);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        let rel = format!("/oxquery-test-{}", std::process::id());
        assert_eq!(text(&r[Col::cgroup as usize]), rel);
        assert_eq!(r[Col::processes as usize], Value::Integer(1));
        assert_eq!(r[Col::pids_current as usize], Value::Integer(1));
        assert_eq!(r[Col::pids_max as usize], Value::Integer(7));

        // The child's cgroups, asked by pid, include this one.
        let mine = by_pid(child_pid);
        assert!(
            mine.iter()
                .any(|r| text(&r[Col::path as usize]) == dir.to_str().unwrap()
                    && text(&r[Col::cgroup as usize]) == rel)
        );
        assert_eq!(names(&mine), proc_cgroups(child_pid));
    }

    #[test]
    fn paths_outside_every_hierarchy_give_no_rows() {
        let host = Host::default();
        // A FIFO named like a cgroup file, reached through `..`, is never opened.
        let dir = tempfile::tempdir().unwrap();
        crate::common::testing::mkfifo(&dir.path().join("cgroup.procs"));
        let mount = cgroup::hierarchies(&mounts::read_mounts(mounts::PROC_MOUNTS).unwrap())
            .first()
            .map(|h| h.mount.clone())
            .unwrap_or_else(|| PathBuf::from("/sys/fs/cgroup"));
        let mut escape = mount.clone();
        for _ in mount.components().skip(1) {
            escape.push("..");
        }
        let escape = escape.join(dir.path().strip_prefix("/").unwrap());
        for path in ["/tmp", "/nonexistent", escape.to_str().unwrap()] {
            let ctx =
                QueryContext::everything(&SPEC, &host).with_constraint(Col::path, Op::Eq, path);
            let rows = rows_of(&ctx, generate);
            assert!(rows.is_empty(), "{path}: {rows:?}");
        }
    }
}
