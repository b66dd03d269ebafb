//! `pressure_stall`: the kernel's pressure-stall information (PSI), the share of time
//! tasks waited for CPU, memory, I/O or IRQ handling. Not an osquery table.
//!
//! System-wide figures come from `/proc/pressure/<resource>`; `WHERE path = '<dir>'`
//! reads a cgroup v2 directory's `<resource>.pressure` files instead. Only `/proc/pressure`
//! and directories on a cgroup2 file system are read, so a constraint cannot point the
//! agent at an arbitrary file. A kernel without PSI (or `psi=0`) gives no rows, logged.

use oxquery_sys::cgroup::{self, CGROUP2_SUPER_MAGIC};
use oxquery_sys::fs::FileReader;
use oxquery_sys::mounts;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

table! {
    name: "pressure_stall",
    description: "oxquery's own table, not in osquery. Pressure-stall information: the share of time tasks were stalled waiting for CPU, memory, I/O or IRQ handling, system-wide or for one cgroup v2.",
    columns: {
        path: Text [ADDITIONAL] "Directory the figures come from: /proc/pressure (system-wide, the default) or a cgroup v2 directory named in the query",
        resource: Text [] "cpu, memory, io or irq",
        kind: Text [] "some: at least one task stalled; full: every non-idle task stalled at once",
        avg10: Double [] "Percent of the last 10 seconds stalled",
        avg60: Double [] "Percent of the last 60 seconds stalled",
        avg300: Double [] "Percent of the last 300 seconds stalled",
        total: BigInt [] "Total time stalled since boot (or since the cgroup was made), in microseconds",
    },
    examples: [
        "select resource, kind, avg10, avg60 from pressure_stall",
        "select * from pressure_stall where path = '/sys/fs/cgroup/system.slice'",
    ],
}

/// Where the system-wide PSI files are.
pub const PROC_PRESSURE: &str = "/proc/pressure";
const RESOURCES: [&str; 4] = ["cpu", "memory", "io", "irq"];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let dirs: Vec<PathBuf> = match ctx.eq_paths(Col::path) {
        Some(paths) => paths.into_iter().map(PathBuf::from).collect(),
        None => vec![PathBuf::from(PROC_PRESSURE)],
    };
    let mut reader = FileReader::new();
    for dir in dirs {
        let file_of: fn(&str) -> String = if dir == Path::new(PROC_PRESSURE) {
            |resource| resource.to_owned()
        } else {
            match mounts::statfs(&dir) {
                Ok(st) if st.magic == CGROUP2_SUPER_MAGIC => {}
                Ok(_) => {
                    log::info!(
                        "pressure_stall: {} is neither {PROC_PRESSURE} nor a cgroup v2 directory",
                        dir.display()
                    );
                    continue;
                }
                Err(e) => {
                    log::info!("pressure_stall: {}: {e}", dir.display());
                    continue;
                }
            }
            |resource| format!("{resource}.pressure")
        };
        let mut found = false;
        for resource in RESOURCES {
            ctx.check()?;
            let text = match reader.read_parts(&[
                dir.as_os_str().as_bytes(),
                b"/",
                file_of(resource).as_bytes(),
            ]) {
                Ok(text) => text,
                // irq pressure is newer (5.17) and optional; the others go with PSI itself.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                // PSI built in but off (psi=0): the files exist and refuse reads.
                Err(e) => {
                    log::info!("pressure_stall: {}/{resource}: {e}", dir.display());
                    continue;
                }
            };
            found = true;
            for p in cgroup::parse_pressure(text) {
                let mut row = rows.row();
                row.set(Col::path, dir.as_path());
                row.set(Col::resource, resource);
                row.set(Col::kind, p.kind);
                row.set(Col::avg10, p.avg10);
                row.set(Col::avg60, p.avg60);
                row.set(Col::avg300, p.avg300);
                row.set(Col::total, p.total);
            }
        }
        if !found {
            log::info!(
                "pressure_stall: no pressure files in {} (kernel without PSI, or booted with psi=0)",
                dir.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rows_of;
    use oxquery_table::{Host, Op, Value};

    fn text(v: &Value) -> String {
        match v {
            Value::Text(t) => t.to_string(),
            Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
            v => panic!("not text: {v:?}"),
        }
    }

    fn int(v: &Value) -> i64 {
        match v {
            Value::Integer(i) => *i,
            v => panic!("not an integer: {v:?}"),
        }
    }

    /// The `(kind, total)` pairs of a PSI file, as the test reads them itself.
    fn totals(path: &Path) -> Vec<(String, i64)> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let kind = l.split(' ').next().unwrap().to_owned();
                let total = l.rsplit_once("total=").unwrap().1.parse().unwrap();
                (kind, total)
            })
            .collect()
    }

    /// The scan of one directory agrees with its files read just before and just after
    /// it: the same resources and kinds, each total between the two readings (totals only
    /// grow), averages within 0..=100.
    fn check_dir(
        dir: &Path,
        file_name: fn(&str) -> String,
        scan: impl FnOnce() -> Vec<Vec<Value>>,
    ) {
        let files: Vec<(&str, PathBuf)> = RESOURCES
            .iter()
            .map(|r| (*r, dir.join(file_name(r))))
            .filter(|(_, f)| f.exists())
            .collect();
        let before: Vec<Vec<(String, i64)>> = files.iter().map(|(_, f)| totals(f)).collect();
        let rows = scan();
        let after: Vec<Vec<(String, i64)>> = files.iter().map(|(_, f)| totals(f)).collect();
        let mut expected = 0;
        for (((resource, _), before), after) in files.iter().zip(before).zip(after) {
            expected += before.len();
            for ((kind, low), (_, high)) in before.into_iter().zip(after) {
                let row = rows
                    .iter()
                    .find(|r| {
                        text(&r[Col::resource as usize]) == *resource
                            && text(&r[Col::kind as usize]) == kind
                    })
                    .unwrap_or_else(|| panic!("no row for {resource} {kind}"));
                assert_eq!(text(&row[Col::path as usize]), dir.to_str().unwrap());
                let total = int(&row[Col::total as usize]);
                assert!(
                    (low..=high).contains(&total),
                    "{resource} {kind}: {total} not in {low}..={high}"
                );
                for avg in [Col::avg10, Col::avg60, Col::avg300] {
                    match &row[avg as usize] {
                        Value::Real(f) => assert!((0.0..=100.0).contains(f), "{f}"),
                        v => panic!("{resource} {kind} avg: {v:?}"),
                    }
                }
            }
        }
        assert_eq!(rows.len(), expected);
    }

    #[test]
    fn system_wide_rows_agree_with_proc_pressure() {
        let host = Host::default();
        let scan = || rows_of(&QueryContext::everything(&SPEC, &host), generate);
        if !Path::new(PROC_PRESSURE).join("cpu").exists() {
            let rows = scan();
            assert!(rows.is_empty(), "no PSI, yet rows: {rows:?}");
            return;
        }
        check_dir(Path::new(PROC_PRESSURE), |r| r.to_owned(), scan);
    }

    /// The cgroup v2 mount point, as the test finds it in the mount table itself.
    fn cgroup2_mount() -> Option<PathBuf> {
        std::fs::read_to_string("/proc/self/mounts")
            .unwrap()
            .lines()
            .find(|l| l.split(' ').nth(2) == Some("cgroup2"))
            .map(|l| PathBuf::from(l.split(' ').nth(1).unwrap()))
    }

    #[test]
    fn a_cgroup_directory_reads_its_pressure_files() {
        let Some(root) = cgroup2_mount() else {
            return;
        };
        if !root.join("cpu.pressure").exists() {
            return;
        }
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::path,
            Op::Eq,
            root.to_str().unwrap(),
        );
        check_dir(
            &root,
            |r| format!("{r}.pressure"),
            || rows_of(&ctx, generate),
        );
    }

    #[test]
    fn a_path_outside_cgroup2_is_never_read() {
        // A directory holding files that look like PSI files is still not read.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cpu.pressure"),
            "some avg10=1.00 avg60=1.00 avg300=1.00 total=1\n",
        )
        .unwrap();
        let host = Host::default();
        for path in [dir.path().to_str().unwrap(), "/nonexistent/x", "/dev"] {
            let ctx =
                QueryContext::everything(&SPEC, &host).with_constraint(Col::path, Op::Eq, path);
            assert!(rows_of(&ctx, generate).is_empty(), "{path}");
        }
    }
}
