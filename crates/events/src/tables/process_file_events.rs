//! `process_file_events`: file operations by path from the Linux audit subsystem, fed by
//! the audit publisher (`--audit_allow_fim_events`, which installs the file-access rule:
//! every successful open for writing or creation, truncate, rename, unlink, link,
//! symlink, mkdir, rmdir and mknod on the host).
//!
//! One row per successful call, without osquery's per-descriptor state tracking: reads
//! and writes through an already open descriptor are not reported, opens for reading only
//! with `--audit_fim_show_accesses`. `path` is the file the call named (the first PATH
//! record that is not the parent directory; for rename and link the source) and
//! `dest_path` the new name of a rename or link. A relative name is joined to the
//! process's cwd when the call resolved it from there (`AT_FDCWD`); one relative to
//! another directory descriptor stays relative and the row is `partial` = `true`.

pub use oxquery_table::scan_events as generate;
use oxquery_table::table;

use crate::EventRow;
use oxquery_sys::audit::{AuditEvent, PathRecord, syscall_name};
use oxquery_table::Value;

table! {
    name: "process_file_events",
    description: "File operations (open for writing or creation, truncate, rename, unlink, link, symlink, mkdir, rmdir, mknod) by path from the Linux audit subsystem (with --disable_audit=false, --audit_allow_fim_events and --audit_allow_config=true).",
    attributes: [EVENT_BASED],
    columns: {
        operation: Text [] "Operation type: open, truncate, rename, unlink, link, symlink, mkdir, rmdir or mknod",
        pid: BigInt [] "Process ID",
        ppid: BigInt [] "Parent process ID",
        time: BigInt [ADDITIONAL] "Time of the event (unix seconds, from the audit record)",
        executable: Text [] "The executable path",
        partial: Text [] "true when path is relative to a directory descriptor and could not be made absolute, else false",
        cwd: Text [] "The current working directory of the process",
        path: Text [] "The path the operation named (for rename and link, the source)",
        dest_path: Text [] "The new path of a rename or link",
        uid: Text [] "The uid of the process performing the action",
        gid: Text [] "The gid of the process performing the action",
        auid: Text [] "Audit user ID of the process using the file",
        euid: Text [] "Effective user ID of the process using the file",
        egid: Text [] "Effective group ID of the process using the file",
        fsuid: Text [] "Filesystem user ID of the process using the file",
        fsgid: Text [] "Filesystem group ID of the process using the file",
        suid: Text [] "Saved user ID of the process using the file",
        sgid: Text [] "Saved group ID of the process using the file",
        uptime: BigInt [] "Time of execution in system uptime",
        eid: Text [HIDDEN] "Event ID",
    },
    examples: ["select operation, pid, executable, path, dest_path from process_file_events where operation = 'rename'"],
}

/// The publisher feeding this table.
pub const PUBLISHER: &str = crate::publishers::audit::NAME;

/// osquery's `--audit_fim_show_accesses`: report opens for reading too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileOptions {
    pub show_accesses: bool,
}

/// `AT_FDCWD` as a register value.
const AT_FDCWD: u64 = (libc::AT_FDCWD as i64) as u64;

/// The row of one audit event, or `None` when it is not a (wanted) file operation.
pub fn row(event: &AuditEvent, options: FileOptions, uptime: i64) -> Option<EventRow> {
    let s = event.syscall.as_ref()?;
    if s.success != Some(true) {
        return None;
    }
    let name = syscall_name(s.syscall)?;
    // (operation, whether the first argument is a directory descriptor, open flags)
    let (operation, at, flags) = match name {
        "open" => ("open", false, Some(s.args[1])),
        "creat" => ("open", false, None),
        "openat" => ("open", true, Some(s.args[2])),
        // The flags of openat2 and open_by_handle_at are not in registers: count them
        // as writes.
        "openat2" => ("open", true, None),
        "open_by_handle_at" => ("open", false, None),
        "truncate" => ("truncate", false, None),
        "rename" => ("rename", false, None),
        "renameat" | "renameat2" => ("rename", true, None),
        "unlink" => ("unlink", false, None),
        "unlinkat" => ("unlink", true, None),
        "link" => ("link", false, None),
        "linkat" => ("link", true, None),
        "symlink" => ("symlink", false, None),
        "symlinkat" => ("symlink", false, None),
        "mkdir" => ("mkdir", false, None),
        "mkdirat" => ("mkdir", true, None),
        "rmdir" => ("rmdir", false, None),
        "mknod" => ("mknod", false, None),
        "mknodat" => ("mknod", true, None),
        _ => return None,
    };
    if let Some(flags) = flags
        && !options.show_accesses
    {
        let flags = flags as i32;
        let writes = flags & libc::O_ACCMODE != libc::O_RDONLY
            || flags & (libc::O_CREAT | libc::O_TRUNC) != 0;
        if !writes {
            return None;
        }
    }
    let resolved_from_cwd = !at || s.args[0] == AT_FDCWD || s.args[0] as u32 == AT_FDCWD as u32;
    let named = |p: &PathRecord| p.nametype.as_deref() != Some(b"PARENT");
    let (source, dest) = if operation == "rename" || operation == "link" {
        let source = event
            .paths
            .iter()
            .find(|p| matches!(p.nametype.as_deref(), Some(b"NORMAL" | b"DELETE")));
        let dest = event
            .paths
            .iter()
            .find(|p| p.nametype.as_deref() == Some(b"CREATE"));
        (source, dest)
    } else {
        (event.paths.iter().find(|p| named(p)), None)
    };
    let cwd = event.cwd.clone().unwrap_or_default();
    let mut partial = false;
    let mut absolute = |p: Option<&PathRecord>| -> Value {
        let Some(name) = p.and_then(|p| p.name.clone()) else {
            return Value::from("");
        };
        if name.starts_with(b"/") {
            return Value::from_bytes(name);
        }
        if resolved_from_cwd && !cwd.is_empty() {
            let mut full = cwd.clone();
            if !full.ends_with(b"/") {
                full.push(b'/');
            }
            full.extend_from_slice(&name);
            return Value::from_bytes(full);
        }
        partial = true;
        Value::from_bytes(name)
    };
    let path = absolute(source);
    let dest_path = absolute(dest);
    let mut r = EventRow::new(&SPEC);
    r.set(Col::operation, operation);
    r.set(Col::pid, s.pid);
    r.set(Col::ppid, s.ppid);
    r.set(Col::time, event.time.secs as i64);
    r.set(Col::uptime, uptime);
    r.set(
        Col::executable,
        Value::from_bytes(s.exe.clone().unwrap_or_default()),
    );
    r.set(Col::cwd, Value::from_bytes(cwd));
    r.set(Col::path, path);
    r.set(Col::dest_path, dest_path);
    r.set(Col::partial, if partial { "true" } else { "false" });
    for (col, id) in [
        (Col::uid, s.uid),
        (Col::gid, s.gid),
        (Col::auid, s.auid),
        (Col::euid, s.euid),
        (Col::egid, s.egid),
        (Col::fsuid, s.fsuid),
        (Col::fsgid, s.fsgid),
        (Col::suid, s.suid),
        (Col::sgid, s.sgid),
    ] {
        r.set(col, id.to_string());
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::assemble;

    /// A file syscall event with `args`, cwd `/work` and PATH records (name, nametype).
    fn event(syscall: i64, args: &str, paths: &[(&str, &str)]) -> AuditEvent {
        let h = "audit(1700000006.000:50):";
        let mut records = vec![
            (
                1300,
                format!(
                    "{h} arch=c000003e syscall={syscall} success=yes exit=3 {args} items={} ppid=1 pid=42 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 comm=\"mv\" exe=\"/usr/bin/mv\"",
                    paths.len()
                ),
            ),
            (1307, format!("{h} cwd=\"/work\"")),
        ];
        for (i, (name, nametype)) in paths.iter().enumerate() {
            records.push((1302, format!("{h} item={i} name=\"{name}\" inode=1 dev=fd:00 mode=0100644 ouid=0 ogid=0 rdev=00:00 nametype={nametype}")));
        }
        records.push((1320, format!("{h} ")));
        assemble(&records)
    }

    fn cell(row: &EventRow, col: Col) -> Value {
        row.clone().into_values()[usize::from(col)].clone()
    }

    #[test]
    fn rename_names_source_and_destination() {
        let e = event(
            libc::SYS_rename,
            "a0=1 a1=2 a2=0 a3=0",
            &[
                ("/tmp/", "PARENT"),
                ("/tmp/", "PARENT"),
                ("a.txt", "DELETE"),
                ("/tmp/b.txt", "CREATE"),
            ],
        );
        let r = row(&e, FileOptions::default(), 1).unwrap();
        assert_eq!(cell(&r, Col::operation), Value::from("rename"));
        assert_eq!(cell(&r, Col::path), Value::from("/work/a.txt"));
        assert_eq!(cell(&r, Col::dest_path), Value::from("/tmp/b.txt"));
        assert_eq!(cell(&r, Col::partial), Value::from("false"));
        assert_eq!(cell(&r, Col::executable), Value::from("/usr/bin/mv"));
        assert_eq!(cell(&r, Col::uid), Value::from("1000"));
        assert_eq!(cell(&r, Col::pid), Value::from(42));
    }

    #[test]
    fn opens_for_reading_only_with_show_accesses() {
        // openat(AT_FDCWD, "notes", O_RDONLY)
        let read = event(
            libc::SYS_openat,
            "a0=ffffffffffffff9c a1=1 a2=0 a3=0",
            &[("notes", "NORMAL")],
        );
        assert!(row(&read, FileOptions::default(), 0).is_none());
        let r = row(
            &read,
            FileOptions {
                show_accesses: true,
            },
            0,
        )
        .unwrap();
        assert_eq!(cell(&r, Col::path), Value::from("/work/notes"));
        // openat(AT_FDCWD, "new", O_WRONLY|O_CREAT): parent and created file.
        let create = event(
            libc::SYS_openat,
            "a0=ffffffffffffff9c a1=1 a2=41 a3=1a4",
            &[("/work/", "PARENT"), ("new", "CREATE")],
        );
        let r = row(&create, FileOptions::default(), 0).unwrap();
        assert_eq!(cell(&r, Col::operation), Value::from("open"));
        assert_eq!(cell(&r, Col::path), Value::from("/work/new"));
        assert_eq!(cell(&r, Col::dest_path), Value::from(""));
    }

    #[test]
    fn relative_to_a_directory_descriptor_is_partial() {
        let e = event(
            libc::SYS_unlinkat,
            "a0=5 a1=1 a2=0 a3=0",
            &[("dir/", "PARENT"), ("x", "DELETE")],
        );
        let r = row(&e, FileOptions::default(), 0).unwrap();
        assert_eq!(cell(&r, Col::operation), Value::from("unlink"));
        assert_eq!(cell(&r, Col::path), Value::from("x"));
        assert_eq!(cell(&r, Col::partial), Value::from("true"));
    }

    #[test]
    fn failures_and_other_syscalls_make_no_row() {
        let mut e = event(libc::SYS_unlink, "a0=1 a1=0 a2=0 a3=0", &[("/x", "DELETE")]);
        e.syscall.as_mut().unwrap().success = Some(false);
        assert!(row(&e, FileOptions::default(), 0).is_none());
        let e = event(
            libc::SYS_execve,
            "a0=1 a1=0 a2=0 a3=0",
            &[("/bin/true", "NORMAL")],
        );
        assert!(row(&e, FileOptions::default(), 0).is_none());
    }
}
