//! `processes`: every process on the host, from `/proc/<pid>`.
//!
//! Each column says which file it needs and a file is read only when the query uses one
//! of its columns: `SELECT pid, name` reads `stat` alone; `status` (ids), `io`,
//! `cmdline`, `cgroup` and the `exe`/`cwd`/`root` links cost nothing unless selected.
//! `WHERE pid = ...` / `IN (...)` reads just those processes and never lists `/proc`.

use oxquery_sys::fs::FileReader;
use oxquery_sys::proc::{self, DELETED_SUFFIX, ProcPath};
use oxquery_table::{QueryContext, Rows, TableError, TableResult, Value, table};
use std::io;

table! {
    name: "processes",
    description: "Every process listed in /proc: identity, credentials, memory, CPU time and disk I/O.",
    attributes: [CACHEABLE],
    columns: {
        pid: BigInt [INDEX | OPTIMIZED] "Numeric ID of the process (its /proc directory name)",
        name: Text [] "Command name from /proc/<pid>/stat (comm, at most 15 bytes)",
        path: Text [] "Executable from the /proc/<pid>/exe link; empty for kernel threads, NULL if unreadable",
        cmdline: Text [] "Arguments from /proc/<pid>/cmdline joined by spaces; empty for kernel threads",
        state: Text [] "One-letter scheduler state from stat (R, S, D, Z, T, ...)",
        cwd: Text [] "Working directory from the cwd link; NULL if it cannot be read",
        root: Text [] "Root directory seen by the process (the root link; differs under chroot)",
        uid: BigInt [] "Real user ID (first Uid: field of /proc/<pid>/status)",
        gid: BigInt [] "Real group ID (first Gid: field of /proc/<pid>/status)",
        euid: BigInt [] "Effective user ID, used for permission checks (second Uid: field)",
        egid: BigInt [] "Effective group ID, used for permission checks (second Gid: field)",
        suid: BigInt [] "Saved set-user-ID (third Uid: field)",
        sgid: BigInt [] "Saved set-group-ID (third Gid: field)",
        on_disk: Integer [] "1 if the executable is still linked in the file system, 0 if it was deleted, -1 when it cannot be told",
        wired_size: BigInt [] "Always 0 on Linux, which keeps no wired-memory figure per process",
        resident_size: BigInt [] "Resident set size in bytes (stat rss times the page size)",
        total_size: BigInt [] "Size of the virtual address space in bytes (stat vsize)",
        user_time: BigInt [] "Milliseconds of CPU consumed in user mode (stat utime)",
        system_time: BigInt [] "Milliseconds of CPU consumed in kernel mode (stat stime)",
        disk_bytes_read: BigInt [] "Bytes fetched from storage (read_bytes of /proc/<pid>/io); -1 without access",
        disk_bytes_written: BigInt [] "Bytes sent to storage less cancelled writes (/proc/<pid>/io); -1 without access",
        start_time: BigInt [] "Unix time in seconds at which the process began; -1 if the boot time is unknown",
        parent: BigInt [] "ID of the parent process (stat ppid)",
        pgroup: BigInt [] "ID of the group the process belongs to (stat pgrp)",
        threads: Integer [] "Thread count (stat num_threads)",
        nice: Integer [] "Nice value, from -20 (most favoured) to 19",
        elevated_token: Integer [OTHER_PLATFORM] "Windows only: 1 when running with an elevated token",
        secure_process: Integer [OTHER_PLATFORM] "Windows only: 1 for an Isolated User Mode (secure) process",
        protection_type: Text [OTHER_PLATFORM] "Windows only: protected-process level, e.g. PPL",
        virtual_process: Integer [OTHER_PLATFORM] "Windows only: 1 for kernel-backed pseudo-processes such as System, Registry or vmmem",
        elapsed_time: BigInt [OTHER_PLATFORM] "Windows only: seconds since the process started",
        handle_count: BigInt [OTHER_PLATFORM] "Windows only: handles held open, summed over all threads",
        percent_processor_time: BigInt [OTHER_PLATFORM] "Windows only: CPU time of all threads, in 100 ns units",
        upid: BigInt [OTHER_PLATFORM] "macOS only: 64-bit process ID the system never recycles",
        uppid: BigInt [OTHER_PLATFORM] "macOS only: never-recycled 64-bit ID of the parent",
        cpu_type: Integer [OTHER_PLATFORM] "macOS only: Mach-O CPU type of the executable",
        cpu_subtype: Integer [OTHER_PLATFORM] "macOS only: Mach-O CPU subtype of the executable",
        translated: Integer [OTHER_PLATFORM] "macOS only: 1 when an x86_64 binary runs through Rosetta",
        cgroup_path: Text [] "Control group of the process: its cgroup v2 path, else the first hierarchy in /proc/<pid>/cgroup",
    },
    examples: [
        "select * from processes where pid = 1",
        "select pid, name, resident_size from processes order by resident_size desc limit 10",
    ],
}

/// Which optional files this scan needs, decided once from the used columns.
struct Needs {
    name: bool,
    state: bool,
    exe: bool,
    cmdline: bool,
    cwd: bool,
    root: bool,
    status: bool,
    io: bool,
    cgroup: bool,
}

impl Needs {
    fn of(ctx: &QueryContext) -> Self {
        let any = |cols: &[Col]| cols.iter().any(|c| ctx.is_used(*c));
        Needs {
            name: ctx.is_used(Col::name),
            state: ctx.is_used(Col::state),
            exe: any(&[Col::path, Col::on_disk]),
            cmdline: ctx.is_used(Col::cmdline),
            cwd: ctx.is_used(Col::cwd),
            root: ctx.is_used(Col::root),
            status: any(&[
                Col::uid,
                Col::gid,
                Col::euid,
                Col::egid,
                Col::suid,
                Col::sgid,
            ]),
            io: any(&[Col::disk_bytes_read, Col::disk_bytes_written]),
            cgroup: ctx.is_used(Col::cgroup_path),
        }
    }
}

/// Names, paths and arguments as the kernel gives them: bytes that need not be UTF-8,
/// kept unchanged (osquery's values are the raw bytes too).
fn bytes(raw: &[u8]) -> Value {
    Value::from_bytes(raw.to_vec())
}

/// `path` and `on_disk` from the `exe` link: 1 when the executable is linked in a
/// directory, 0 when it was unlinked (the kernel appends " (deleted)" and the file has
/// no links left), -1 when it cannot be told.
fn exe_and_on_disk(path: &ProcPath, reader: &mut FileReader) -> (Option<Value>, i64) {
    match path.read_link(reader, "exe") {
        Ok(link) => match link.strip_suffix(DELETED_SUFFIX) {
            None => (Some(bytes(link)), 1),
            Some(stripped) => {
                let stripped = bytes(stripped);
                // A file may really be named "... (deleted)": the link count of the
                // executable itself decides.
                match path.stat("exe") {
                    Ok(st) if st.st_nlink == 0 => (Some(stripped), 0),
                    Ok(_) => (Some(bytes(link)), 1),
                    Err(_) => (Some(stripped), -1),
                }
            }
        },
        // Kernel threads have no executable: an empty path, as osquery shows.
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Some(Value::from("")), -1),
        Err(_) => (None, -1),
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    // Constrained: only those processes, and a pid that does not exist is no row.
    let pids =
        proc::pids_or_all(ctx.eq_integers(Col::pid)).map_err(|e| TableError::io("/proc", e))?;
    let needs = Needs::of(ctx);
    let mut reader = FileReader::new();
    let boot = if ctx.is_used(Col::start_time) {
        proc::boot_time(&mut reader)
    } else {
        None
    };
    let ticks = proc::clock_ticks();
    let page = proc::page_size();

    for pid in pids {
        let path = ProcPath::new(pid);
        // `stat` is read for every row: it is also the proof the process still exists.
        let Ok(text) = path.read(&mut reader, "stat") else {
            continue;
        };
        let Some((comm, stat)) = proc::parse_stat(text) else {
            continue;
        };
        let name = needs.name.then(|| bytes(comm));
        let state = needs.state.then(|| char::from(stat.state).to_string());

        let exe = needs.exe.then(|| exe_and_on_disk(&path, &mut reader));
        let cmdline = if needs.cmdline {
            path.read(&mut reader, "cmdline")
                .ok()
                .map(|raw| Value::from_bytes(proc::cmdline_text(raw)))
        } else {
            None
        };
        let cwd = if needs.cwd {
            path.read_link(&mut reader, "cwd").ok().map(bytes)
        } else {
            None
        };
        let root = if needs.root {
            path.read_link(&mut reader, "root").ok().map(bytes)
        } else {
            None
        };
        let ids = if needs.status {
            path.read(&mut reader, "status")
                .ok()
                .and_then(proc::parse_status_ids)
        } else {
            None
        };
        let io = if needs.io {
            path.read(&mut reader, "io").ok().and_then(proc::parse_io)
        } else {
            None
        };
        let cgroup = if needs.cgroup {
            path.read(&mut reader, "cgroup")
                .ok()
                .and_then(proc::parse_cgroup)
                .map(bytes)
        } else {
            None
        };

        let mut row = rows.row();
        row.set(Col::pid, pid);
        row.set(Col::name, name);
        if let Some((exe_path, on_disk)) = exe {
            row.set(Col::path, exe_path);
            row.set(Col::on_disk, on_disk);
        }
        row.set(Col::cmdline, cmdline);
        row.set(Col::state, state);
        row.set(Col::cwd, cwd);
        row.set(Col::root, root);
        if let Some(ids) = ids {
            row.set(Col::uid, ids.uid[0]);
            row.set(Col::euid, ids.uid[1]);
            row.set(Col::suid, ids.uid[2]);
            row.set(Col::gid, ids.gid[0]);
            row.set(Col::egid, ids.gid[1]);
            row.set(Col::sgid, ids.gid[2]);
        }
        // Linux has no counter of unpageable memory per process.
        row.set(Col::wired_size, 0);
        row.set(Col::resident_size, stat.rss.max(0) as u64 * page);
        row.set(Col::total_size, stat.vsize);
        row.set(Col::user_time, stat.utime * 1000 / ticks);
        row.set(Col::system_time, stat.stime * 1000 / ticks);
        // /proc/<pid>/io needs ptrace access: unknown is -1, as osquery users expect.
        row.set(Col::disk_bytes_read, io.map_or(-1, |io| io.read_bytes));
        row.set(Col::disk_bytes_written, io.map_or(-1, |io| io.written()));
        row.set(
            Col::start_time,
            boot.map_or(-1, |b| b + (stat.starttime / ticks) as i64),
        );
        row.set(Col::parent, stat.ppid);
        row.set(Col::pgroup, stat.pgrp);
        row.set(Col::threads, stat.num_threads);
        row.set(Col::nice, stat.nice);
        row.set(Col::cgroup_path, cgroup);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Op, Value};
    use std::process::{Child, Command};

    /// A child process killed and reaped when the test ends, pass or fail.
    struct Reaped(Child);
    impl Drop for Reaped {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    fn spawn(program: &std::path::Path) -> Reaped {
        // A freshly written executable can be briefly "busy" while a concurrently
        // forked test process still holds the writer's descriptor.
        for _ in 0..50 {
            match Command::new(program).arg("600").spawn() {
                Ok(child) => {
                    // spawn returns once the exec is committed, slightly before the
                    // kernel publishes the new argv: wait for it to be visible.
                    let cmdline = format!("/proc/{}/cmdline", child.id());
                    for _ in 0..500 {
                        if std::fs::read(&cmdline).is_ok_and(|c| !c.is_empty()) {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    return Reaped(child);
                }
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(e) => panic!("spawn {}: {e}", program.display()),
            }
        }
        panic!("{} stayed busy", program.display());
    }

    fn run(ctx: &QueryContext) -> Rows<'static> {
        Rows::collect(ctx, generate).unwrap()
    }

    fn one_pid(pid: u32) -> Vec<Value> {
        let host = Host::default();
        let ctx =
            QueryContext::everything(&SPEC, &host).with_constraint(Col::pid, Op::Eq, pid as i64);
        let rows = run(&ctx);
        assert_eq!(rows.len(), 1, "pid {pid}");
        rows.get(0).unwrap().to_vec()
    }

    fn int(row: &[Value], c: Col) -> i64 {
        match &row[c as usize] {
            Value::Integer(i) => *i,
            v => panic!("{c:?} is {v:?}"),
        }
    }

    fn text(row: &[Value], c: Col) -> &str {
        match &row[c as usize] {
            Value::Text(s) => s,
            v => panic!("{c:?} is {v:?}"),
        }
    }

    #[test]
    fn deleted_executable_with_odd_name_is_not_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        // comm is cut from the file name: spaces and ") (" exercise the stat parser.
        let exe = dir.path().join("x) (y z");
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let child = spawn(&exe);
        std::fs::remove_file(&exe).unwrap();
        let pid = child.0.id();

        let row = one_pid(pid);
        assert_eq!(int(&row, Col::pid), i64::from(pid));
        assert_eq!(text(&row, Col::name), "x) (y z");
        assert_eq!(text(&row, Col::path), exe.to_str().unwrap());
        assert_eq!(int(&row, Col::on_disk), 0);
        assert_eq!(int(&row, Col::parent), i64::from(std::process::id()));
        assert_eq!(
            text(&row, Col::cmdline),
            format!("{} 600", exe.to_str().unwrap())
        );
        assert!(!matches!(text(&row, Col::state), "Z" | "X"));
        assert_eq!(int(&row, Col::threads), 1);
    }

    #[test]
    fn names_paths_and_arguments_keep_bytes_that_are_not_utf8() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join(std::ffi::OsStr::from_bytes(b"sl\xffep"));
        std::fs::copy("/bin/sleep", &exe).unwrap();
        let child = spawn(&exe);
        let row = one_pid(child.0.id());
        let exe_bytes = exe.clone().into_os_string().into_vec();
        assert_eq!(row[Col::name as usize], Value::Blob(b"sl\xffep".to_vec()));
        assert_eq!(row[Col::path as usize], Value::Blob(exe_bytes.clone()));
        let mut cmdline = exe_bytes;
        cmdline.extend_from_slice(b" 600");
        assert_eq!(row[Col::cmdline as usize], Value::Blob(cmdline));
    }

    #[test]
    fn running_executable_is_on_disk() {
        let sleep = std::fs::canonicalize("/bin/sleep").unwrap();
        let child = spawn(&sleep);
        let row = one_pid(child.0.id());
        assert_eq!(text(&row, Col::path), sleep.to_str().unwrap());
        assert_eq!(int(&row, Col::on_disk), 1);
        assert_eq!(text(&row, Col::name), "sleep");
        assert_eq!(int(&row, Col::wired_size), 0);
        assert_eq!(int(&row, Col::parent), i64::from(std::process::id()));
    }

    /// Fields after the last ')' of /proc/self/stat, split by the test itself.
    fn self_stat_field(n: usize) -> i64 {
        let text = std::fs::read_to_string("/proc/self/stat").unwrap();
        let after = &text[text.rfind(')').unwrap() + 2..];
        // Field 3 (state) is index 0 here.
        after
            .split_whitespace()
            .nth(n - 3)
            .unwrap()
            .parse()
            .unwrap()
    }

    fn self_status_kb(key: &str) -> i64 {
        let text = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = text.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn own_process_matches_proc_self_and_libc() {
        let me = std::process::id();
        let io_before = std::fs::read_to_string("/proc/self/io").unwrap();
        let row = one_pid(me);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;

        assert_eq!(int(&row, Col::parent), self_stat_field(4));
        assert_eq!(int(&row, Col::pgroup), self_stat_field(5));
        assert_eq!(int(&row, Col::nice), self_stat_field(19));
        // SAFETY: these id getters cannot fail.
        let (uid, euid, gid, egid) = unsafe {
            (
                libc::getuid(),
                libc::geteuid(),
                libc::getgid(),
                libc::getegid(),
            )
        };
        assert_eq!(int(&row, Col::uid), i64::from(uid));
        assert_eq!(int(&row, Col::euid), i64::from(euid));
        assert_eq!(int(&row, Col::gid), i64::from(gid));
        assert_eq!(int(&row, Col::egid), i64::from(egid));
        assert!(!row[Col::suid as usize].is_null() && !row[Col::sgid as usize].is_null());

        let exe = std::env::current_exe().unwrap();
        assert_eq!(text(&row, Col::path), exe.to_str().unwrap());
        assert_eq!(int(&row, Col::on_disk), 1);
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(text(&row, Col::cwd), cwd.to_str().unwrap());
        assert_eq!(text(&row, Col::root), "/");
        let args: Vec<String> = std::env::args().collect();
        assert_eq!(text(&row, Col::cmdline), args.join(" "));
        assert!(matches!(text(&row, Col::state), "R" | "S"));

        // Memory moves while tests run in parallel; a coarse bound still catches unit
        // mistakes (pages vs bytes vs kB).
        let rss = int(&row, Col::resident_size);
        let rss_status = self_status_kb("VmRSS:") * 1024;
        assert!((rss - rss_status).abs() < 64 << 20, "{rss} vs {rss_status}");
        let vsz = int(&row, Col::total_size);
        let vsz_status = self_status_kb("VmSize:") * 1024;
        assert!(
            (vsz - vsz_status).abs() < 256 << 20,
            "{vsz} vs {vsz_status}"
        );

        let start = int(&row, Col::start_time);
        assert!(
            start <= now && start > now - 3600,
            "start {start}, now {now}"
        );
        assert!(int(&row, Col::user_time) >= 0 && int(&row, Col::system_time) >= 0);

        let read_before: i64 = io_before
            .lines()
            .find_map(|l| l.strip_prefix("read_bytes: "))
            .unwrap()
            .parse()
            .unwrap();
        assert!(int(&row, Col::disk_bytes_read) >= read_before);
        assert!(int(&row, Col::disk_bytes_written) >= 0);

        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap();
        if let Some(v2) = cgroup.lines().find_map(|l| l.strip_prefix("0::")) {
            assert_eq!(text(&row, Col::cgroup_path), v2);
        }
        // Columns of other platforms stay NULL.
        for c in [Col::elevated_token, Col::upid, Col::translated] {
            assert!(row[c as usize].is_null());
        }
    }

    #[test]
    fn pid_constraint_reads_only_those_pids() {
        // A thread id has a /proc/<tid> directory but is never listed by readdir of
        // /proc: finding it proves the constrained path looks pids up directly.
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            // SAFETY: gettid cannot fail.
            tx.send(unsafe { libc::gettid() }).unwrap();
            let _ = done_rx.recv();
        });
        let tid = rx.recv().unwrap();
        let me = std::process::id() as i64;

        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::pid, Op::Eq, i64::from(tid))
            .with_constraint(Col::pid, Op::Eq, me)
            .with_constraint(Col::pid, Op::Eq, 0x7fff_fff0_i64)
            .with_constraint(Col::pid, Op::Eq, -3_i64);
        let rows = run(&ctx);
        let mut pids: Vec<i64> = rows
            .column(Col::pid)
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        pids.sort();
        let mut want = vec![me, i64::from(tid)];
        want.sort();
        assert_eq!(pids, want);

        let all = run(&QueryContext::everything(&SPEC, &host).using([Col::pid]));
        assert!(
            !all.column(Col::pid)
                .contains(&&Value::Integer(i64::from(tid)))
        );
        assert!(all.column(Col::pid).contains(&&Value::Integer(me)));
        done_tx.send(()).unwrap();
        thread.join().unwrap();
    }

    #[test]
    fn unused_columns_stay_null() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).using([Col::pid, Col::name]);
        let rows = run(&ctx);
        assert!(rows.len() > 1);
        for row in rows.iter() {
            assert!(matches!(row[Col::pid as usize], Value::Integer(p) if p > 0));
            assert!(matches!(row[Col::name as usize], Value::Text(_)));
            for (i, cell) in row.iter().enumerate() {
                if i != Col::pid as usize && i != Col::name as usize {
                    assert!(
                        cell.is_null(),
                        "column {} is {cell:?}",
                        SPEC.columns[i].name
                    );
                }
            }
        }
    }

    #[test]
    fn full_scan_includes_our_process_and_children_as_in_ps() {
        let sleep = std::fs::canonicalize("/bin/sleep").unwrap();
        let child = spawn(&sleep);
        let host = Host::default();
        let rows = run(&QueryContext::everything(&SPEC, &host));
        let pids = rows.column(Col::pid);
        for pid in [std::process::id(), child.0.id()] {
            assert!(pids.contains(&&Value::Integer(i64::from(pid))));
        }
        // `ps` (procps) is an independent reader of the same facts.
        let Some(ps) = oxquery_test_support::require_tool("ps") else {
            return;
        };
        let out = Command::new(ps)
            .args(["-o", "ppid=,comm=", "-p", &child.0.id().to_string()])
            .output()
            .expect("run ps");
        assert!(out.status.success(), "ps: {out:?}");
        let ps = String::from_utf8_lossy(&out.stdout);
        let mut it = ps.split_whitespace();
        let row = rows
            .iter()
            .find(|r| r[Col::pid as usize] == Value::Integer(i64::from(child.0.id())))
            .unwrap();
        assert_eq!(
            it.next().map(|p| p.parse::<i64>().unwrap()),
            Some(int(row, Col::parent))
        );
        assert_eq!(it.next(), Some(text(row, Col::name)));
    }
}
