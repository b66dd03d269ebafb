//! `process_events`: program executions (and, when allowed, forks and kill calls) from
//! the Linux audit subsystem, fed by the audit publisher.
//!
//! A row per successful `execve`/`execveat` audit event: the SYSCALL record gives the
//! process, its parent and ids, the EXECVE records the arguments (`cmdline` is them
//! joined by spaces, as osquery does), CWD the working directory, and the first PATH
//! record (the program file) its mode and owner. The file times are a `stat` of `path`
//! when the event is published. With `--audit_allow_fork_process_events`, a
//! `fork`/`vfork`/`clone`/`clone3` row names the new process (`pid`, the syscall's return
//! value) and its parent (the caller); thread creations (`clone` with `CLONE_THREAD`) are
//! left out. With `--audit_allow_kill_process_events`, a `kill`/`tkill`/`tgkill` row names
//! the caller. The environment is not in audit records (osquery's audit path leaves `env`
//! empty); with `--process_events_env` (ours) an exec's `env` is what
//! `/proc/<pid>/environ` shows just after it, when the process still runs that program.

pub use oxquery_table::scan_events as generate;
use oxquery_table::table;

use crate::EventRow;
use oxquery_sys::audit::{AuditEvent, syscall_name};
use oxquery_sys::proc::environ_text;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

table! {
    name: "process_events",
    description: "Process executions from the Linux audit subsystem (with --disable_audit=false and --audit_allow_config=true to install the rules): one row per execve, and per fork or kill call when --audit_allow_fork_process_events or --audit_allow_kill_process_events allow them.",
    attributes: [EVENT_BASED],
    columns: {
        pid: BigInt [] "Process (or thread) ID; for a fork, the new process",
        path: Text [] "Path of the executed file (the audit record's exe)",
        mode: Text [] "File mode of the executed file, octal as audit prints it",
        cmdline: Text [] "Command line arguments joined by spaces (argv[0] included)",
        cmdline_size: BigInt [HIDDEN] "Length of cmdline in bytes",
        env: Text [HIDDEN] "Environment variables joined by spaces (only with --process_events_env, else empty)",
        env_count: BigInt [HIDDEN] "Number of environment variables (0 without --process_events_env)",
        env_size: BigInt [HIDDEN] "Size of env in bytes (0 without --process_events_env)",
        cwd: Text [] "The process's current working directory at exec time",
        auid: BigInt [] "Audit user ID (the login user) of the process",
        uid: BigInt [] "User ID at process start",
        euid: BigInt [] "Effective user ID at process start",
        gid: BigInt [] "Group ID at process start",
        egid: BigInt [] "Effective group ID at process start",
        owner_uid: BigInt [] "File owner user ID of the executed file",
        owner_gid: BigInt [] "File owner group ID of the executed file",
        atime: BigInt [] "File last access time (unix time) of the executed file, when published",
        mtime: BigInt [] "File last modification time of the executed file",
        ctime: BigInt [] "File last metadata change time of the executed file",
        btime: BigInt [] "File creation (birth) time of the executed file, 0 when the file system does not keep it",
        overflows: Text [HIDDEN] "List of structures that overflowed: always empty (truncated arguments end cmdline early)",
        parent: BigInt [] "Process ID of the parent (for a fork, the caller)",
        time: BigInt [ADDITIONAL] "Time of the event (unix seconds, from the audit record)",
        uptime: BigInt [] "Time of execution in system uptime",
        eid: Text [HIDDEN] "Event ID",
        status: BigInt [OTHER_PLATFORM | HIDDEN] "OpenBSM exit status (macOS only), always NULL here",
        fsuid: BigInt [] "Filesystem user ID at process start",
        suid: BigInt [] "Saved user ID at process start",
        fsgid: BigInt [] "Filesystem group ID at process start",
        sgid: BigInt [] "Saved group ID at process start",
        syscall: Text [] "Syscall name: execve, execveat, fork, vfork, clone, clone3, kill, tkill, tgkill",
    },
    column_aliases: {
        access_time => atime,
        modify_time => mtime,
        change_time => ctime,
        create_time => btime,
        environment => env,
        environment_count => env_count,
        environment_size => env_size,
    },
    examples: [
        "select pid, parent, path, cmdline, cwd from process_events where time > (select unix_time from time) - 60",
    ],
}

/// The publisher feeding this table.
pub const PUBLISHER: &str = crate::publishers::audit::NAME;

/// Which syscalls besides exec make rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessOptions {
    pub fork: bool,
    pub kill: bool,
    /// `--process_events_env`: fill `env` from `/proc/<pid>/environ`.
    pub env: bool,
}

/// Sets the environment columns of an exec row.
pub fn set_env(row: &mut EventRow, environ: &[u8]) {
    let (text, count) = environ_text(environ);
    row.set(Col::env_size, text.len());
    row.set(Col::env, oxquery_table::Value::from_bytes(text));
    row.set(Col::env_count, count);
}

const CLONE_THREAD: u64 = 0x0001_0000;

/// The row of one audit event, or `None` when it is not a (wanted) process event.
pub fn row(event: &AuditEvent, options: ProcessOptions, uptime: i64) -> Option<EventRow> {
    let s = event.syscall.as_ref()?;
    let name = syscall_name(s.syscall)?;
    let (pid, parent) = match name {
        "execve" | "execveat" => {
            if s.success != Some(true) {
                return None;
            }
            (i64::from(s.pid), i64::from(s.ppid))
        }
        "fork" | "vfork" | "clone" | "clone3" if options.fork => {
            if name == "clone" && s.args[0] & CLONE_THREAD != 0 {
                return None;
            }
            // The new process's pid is the return value.
            let child = s.exit.filter(|e| *e > 0)?;
            (child, i64::from(s.pid))
        }
        "kill" | "tkill" | "tgkill" if options.kill => (i64::from(s.pid), i64::from(s.ppid)),
        _ => return None,
    };
    let mut r = EventRow::new(&SPEC);
    r.set(Col::pid, pid);
    r.set(Col::parent, parent);
    r.set(Col::syscall, name);
    r.set(Col::time, event.time.secs as i64);
    r.set(Col::uptime, uptime);
    for (col, id) in [
        (Col::auid, s.auid),
        (Col::uid, s.uid),
        (Col::euid, s.euid),
        (Col::gid, s.gid),
        (Col::egid, s.egid),
        (Col::fsuid, s.fsuid),
        (Col::suid, s.suid),
        (Col::fsgid, s.fsgid),
        (Col::sgid, s.sgid),
    ] {
        r.set(col, id);
    }
    let path = s.exe.clone().unwrap_or_default();
    // Exec events carry the arguments; the others the caller's command line.
    let args = match &event.execve {
        Some(x) => x.args.clone(),
        None => event.proctitle.clone().unwrap_or_default(),
    };
    let cmdline = args.join(&b' ');
    r.set(Col::cmdline_size, cmdline.len());
    r.set(Col::cmdline, oxquery_table::Value::from_bytes(cmdline));
    r.set(
        Col::cwd,
        oxquery_table::Value::from_bytes(event.cwd.clone().unwrap_or_default()),
    );
    if let Some(file) = event.paths.first().filter(|_| event.execve.is_some()) {
        r.set(
            Col::mode,
            file.mode.map(|m| format!("{m:07o}")).unwrap_or_default(),
        );
        r.set(Col::owner_uid, file.ouid.unwrap_or(0));
        r.set(Col::owner_gid, file.ogid.unwrap_or(0));
    } else {
        r.set(Col::mode, "");
        r.set(Col::owner_uid, 0);
        r.set(Col::owner_gid, 0);
    }
    let meta = std::fs::metadata(Path::new(std::ffi::OsStr::from_bytes(&path))).ok();
    r.set(Col::atime, meta.as_ref().map_or(0, |m| m.atime()));
    r.set(Col::mtime, meta.as_ref().map_or(0, |m| m.mtime()));
    r.set(Col::ctime, meta.as_ref().map_or(0, |m| m.ctime()));
    let btime = meta
        .as_ref()
        .and_then(|m| m.created().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    r.set(Col::btime, btime);
    r.set(Col::path, oxquery_table::Value::from_bytes(path));
    r.set(Col::env, "");
    r.set(Col::env_count, 0);
    r.set(Col::env_size, 0);
    r.set(Col::overflows, "");
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::assemble;
    use oxquery_table::Value;

    fn cell(row: &EventRow, col: Col) -> Value {
        row.clone().into_values()[usize::from(col)].clone()
    }

    const EXEC: &[(u16, &str)] = &[
        (
            1300,
            "audit(1700000000.500:6): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=6882 pid=7841 auid=1000 uid=1000 gid=1001 euid=1002 suid=1003 fsuid=1004 egid=1005 sgid=1006 fsgid=1007 tty=pts1 ses=2 comm=\"sh\" exe=\"/bin/sh\" key=(null)",
        ),
        (
            1309,
            "audit(1700000000.500:6): argc=3 a0=\"sh\" a1=\"-c\" a2=6563686F206869",
        ),
        (1307, "audit(1700000000.500:6): cwd=\"/home/a b\""),
        (
            1302,
            "audit(1700000000.500:6): item=0 name=\"/usr/bin/sh\" inode=18867 dev=fd:00 mode=0100755 ouid=0 ogid=7 rdev=00:00 nametype=NORMAL",
        ),
        (1320, "audit(1700000000.500:6): "),
    ];

    #[test]
    fn exec_row_from_the_records() {
        let row = row(&assemble(EXEC), ProcessOptions::default(), 99).expect("a row");
        let want: &[(Col, Value)] = &[
            (Col::pid, 7841.into()),
            (Col::parent, 6882.into()),
            (Col::path, "/bin/sh".into()),
            (Col::cmdline, "sh -c echo hi".into()),
            (Col::cmdline_size, 13.into()),
            (Col::cwd, "/home/a b".into()),
            (Col::mode, "0100755".into()),
            (Col::owner_uid, 0.into()),
            (Col::owner_gid, 7.into()),
            (Col::auid, 1000.into()),
            (Col::uid, 1000.into()),
            (Col::gid, 1001.into()),
            (Col::euid, 1002.into()),
            (Col::suid, 1003.into()),
            (Col::fsuid, 1004.into()),
            (Col::egid, 1005.into()),
            (Col::sgid, 1006.into()),
            (Col::fsgid, 1007.into()),
            (Col::time, 1700000000.into()),
            (Col::uptime, 99.into()),
            (Col::syscall, "execve".into()),
            (Col::env, "".into()),
        ];
        for (col, value) in want {
            assert_eq!(&cell(&row, *col), value, "{col:?}");
        }
        // The file times are the executable's, read now.
        let meta = std::fs::metadata("/bin/sh").unwrap();
        assert_eq!(cell(&row, Col::mtime), Value::from(meta.mtime()));
        assert_eq!(cell(&row, Col::status), Value::Null);
    }

    #[test]
    fn failed_execs_and_unwanted_syscalls_make_no_row() {
        let failed: Vec<(u16, String)> = EXEC
            .iter()
            .map(|(k, t)| (*k, t.replace("success=yes exit=0", "success=no exit=-2")))
            .collect();
        let failed: Vec<(u16, &str)> = failed.iter().map(|(k, t)| (*k, t.as_str())).collect();
        assert!(row(&assemble(&failed), ProcessOptions::default(), 0).is_none());
        let fork = [
            (
                1300,
                "audit(1.000:7): arch=c000003e syscall=57 success=yes exit=4242 a0=0 items=0 ppid=1 pid=10 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 comm=\"sh\" exe=\"/bin/sh\"",
            ),
            (1327, "audit(1.000:7): proctitle=2F62696E2F7368002D63"),
            (1320, "audit(1.000:7): "),
        ];
        let event = assemble(&fork);
        assert!(row(&event, ProcessOptions::default(), 0).is_none());
        let r = row(
            &event,
            ProcessOptions {
                fork: true,
                ..Default::default()
            },
            0,
        )
        .expect("fork row");
        assert_eq!(cell(&r, Col::pid), Value::from(4242));
        assert_eq!(cell(&r, Col::parent), Value::from(10));
        assert_eq!(cell(&r, Col::syscall), Value::from("fork"));
        assert_eq!(cell(&r, Col::cmdline), Value::from("/bin/sh -c"));
        // A thread (clone with CLONE_THREAD) is not a process.
        let thread: Vec<(u16, String)> = fork
            .iter()
            .map(|(k, t)| {
                (
                    *k,
                    t.replace("syscall=57", "syscall=56")
                        .replace("a0=0 ", "a0=3d0f00 "),
                )
            })
            .collect();
        let thread: Vec<(u16, &str)> = thread.iter().map(|(k, t)| (*k, t.as_str())).collect();
        let all = ProcessOptions {
            fork: true,
            kill: true,
            env: true,
        };
        assert!(row(&assemble(&thread), all, 0).is_none());
    }

    #[test]
    fn non_utf8_arguments_are_kept_as_bytes() {
        let records = [
            (
                1300,
                "audit(1.000:8): arch=c000003e syscall=59 success=yes exit=0 pid=3 ppid=2 exe=2F746D702FFF",
            ),
            (1309, "audit(1.000:8): argc=1 a0=FF00"),
            (1320, "audit(1.000:8): "),
        ];
        let r = row(&assemble(&records), ProcessOptions::default(), 0).unwrap();
        assert_eq!(cell(&r, Col::path), Value::Blob(b"/tmp/\xff".to_vec()));
        assert_eq!(cell(&r, Col::cmdline), Value::Blob(b"\xff\0".to_vec()));
    }
}
