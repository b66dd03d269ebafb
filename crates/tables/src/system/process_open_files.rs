//! `process_open_files`: file descriptors of each process that name a file system
//! object, from the `/proc/<pid>/fd/<n>` links.
//!
//! As in osquery, descriptors that are sockets (`socket:[n]`), pipes (`pipe:[n]`) or
//! anonymous inodes (`anon_inode:...`: eventfd, epoll, timerfd, ...) are left out; they
//! belong to `process_open_sockets` and `process_open_pipes`. An unlinked file shows the
//! kernel's ` (deleted)` suffix. `WHERE pid = ...` reads only those processes.

use oxquery_sys::proc::{self, ProcPath};
use oxquery_table::{QueryContext, Rows, TableError, TableResult, Value, table};

table! {
    name: "process_open_files",
    description: "Files held open by each process: descriptor number and target path, from /proc/<pid>/fd.",
    columns: {
        pid: BigInt [INDEX] "Process holding the descriptor",
        fd: BigInt [] "Descriptor number",
        path: Text [] "Target of the descriptor link: the file's path (with ' (deleted)' once unlinked)",
    },
    examples: [
        "select * from process_open_files where pid = 1",
        "select pid, fd, path from process_open_files where path like '%(deleted)'",
    ],
}

/// Whether a descriptor target is something other than a file: the kinds osquery leaves
/// out of this table.
fn is_not_a_file(target: &[u8]) -> bool {
    target.starts_with(b"socket:")
        || target.starts_with(b"pipe:")
        || target.starts_with(b"anon_inode:")
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let pids =
        proc::pids_or_all(ctx.eq_integers(Col::pid)).map_err(|e| TableError::io("/proc", e))?;
    let want_path = ctx.is_used(Col::path);
    for pid in pids {
        let path = ProcPath::new(pid);
        let result = proc::for_each_descriptor(&path, |d| {
            if is_not_a_file(d.target) {
                return;
            }
            let mut row = rows.row();
            row.set(Col::pid, pid);
            row.set(Col::fd, d.fd as i64);
            if want_path {
                row.set(Col::path, Value::from_bytes(d.target.to_vec()));
            }
        });
        if let Err(e) = result {
            log::debug!("process_open_files: cannot list /proc/{pid}/fd: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::test_children::{self, spawn_sleep};
    use oxquery_table::{Host, Op, Value};
    use std::collections::BTreeSet;
    use std::process::Stdio;

    fn run(ctx: &QueryContext) -> Rows<'static> {
        test_children::run(generate, ctx)
    }

    fn rows_of(rows: &Rows, pid: u32) -> BTreeSet<(i64, String)> {
        rows.iter()
            .filter(|r| r[Col::pid as usize] == Value::Integer(i64::from(pid)))
            .map(|r| {
                let Value::Text(p) = &r[Col::path as usize] else {
                    panic!("path {:?}", r[Col::path as usize]);
                };
                (r[Col::fd as usize].as_i64().unwrap(), p.to_string())
            })
            .collect()
    }

    #[test]
    fn child_with_known_descriptors() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input ✓ file.txt");
        let gone = dir.path().join("soon deleted");
        std::fs::write(&input, b"x").unwrap();
        std::fs::write(&gone, b"y").unwrap();
        let input_file = std::fs::File::open(&input).unwrap();
        // stdin: a file, stdout: a file unlinked after the start, stderr: a pipe (which
        // must not appear).
        let gone_file = std::fs::OpenOptions::new()
            .append(true)
            .open(&gone)
            .unwrap();
        let child = spawn_sleep(|cmd| {
            cmd.stdin(Stdio::from(input_file))
                .stdout(Stdio::from(gone_file))
                .stderr(Stdio::piped());
        });
        std::fs::remove_file(&gone).unwrap();
        let pid = child.pid();

        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::pid, Op::Eq, i64::from(pid))
            .with_constraint(Col::pid, Op::Eq, 0x7fff_fff0_i64);
        let rows = run(&ctx);
        let got = rows_of(&rows, pid);
        assert_eq!(rows.len(), got.len(), "only the constrained pid");
        let mut want: BTreeSet<(i64, String)> = [
            (0, input.to_str().unwrap().to_owned()),
            (1, format!("{} (deleted)", gone.to_str().unwrap())),
        ]
        .into_iter()
        .collect();
        // Descriptors above 2 are whatever the test harness let the child inherit; read
        // them with readlink here.
        for e in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap() {
            let e = e.unwrap();
            let fd: i64 = e.file_name().to_str().unwrap().parse().unwrap();
            let target = std::fs::read_link(e.path()).unwrap();
            let target = target.to_str().unwrap();
            if fd > 2 && !target.starts_with("socket:") && !target.starts_with("pipe:") {
                want.insert((fd, target.to_owned()));
            }
        }
        assert_eq!(got, want);
        // The pipe on fd 2 is really there (independently, through readlink).
        let fd2 = std::fs::read_link(format!("/proc/{pid}/fd/2")).unwrap();
        assert!(fd2.to_str().unwrap().starts_with("pipe:["));
    }

    #[test]
    fn own_descriptors_match_readlink_minus_sockets_and_pipes() {
        // Hold a socket, a pipe and a file open in this process.
        let _listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let (_r, _w) = std::io::pipe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let held = dir.path().join("held");
        let _file = std::fs::File::create(&held).unwrap();
        let me = std::process::id();
        let host = Host::default();
        let rows = run(&QueryContext::everything(&SPEC, &host).with_constraint(
            Col::pid,
            Op::Eq,
            i64::from(me),
        ));
        let got = rows_of(&rows, me);
        assert!(got.iter().any(|(_, p)| p == held.to_str().unwrap()));
        assert!(
            got.iter()
                .all(|(_, p)| !p.starts_with("socket:") && !p.starts_with("pipe:"))
        );
        // Other test threads open and close files meanwhile: every file that std sees in
        // both of two listings around our read must be in it.
        let list = || -> BTreeSet<(i64, String)> {
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| {
                    let e = e.ok()?;
                    let fd: i64 = e.file_name().to_str()?.parse().ok()?;
                    let t = std::fs::read_link(e.path()).ok()?;
                    let t = t.to_str()?.to_owned();
                    (!t.starts_with("socket:")
                        && !t.starts_with("pipe:")
                        && !t.starts_with("anon_inode:"))
                    .then_some((fd, t))
                })
                .collect()
        };
        let a = list();
        let got = rows_of(
            &run(&QueryContext::everything(&SPEC, &host).with_constraint(
                Col::pid,
                Op::Eq,
                i64::from(me),
            )),
            me,
        );
        let b = list();
        for entry in a.intersection(&b) {
            // read_dir's own descriptor on /proc/self/fd differs per listing.
            if entry.1.starts_with("/proc/") {
                continue;
            }
            assert!(got.contains(entry), "{entry:?} missing from {got:?}");
        }
    }

    #[test]
    fn full_scan_without_path_column() {
        let host = Host::default();
        let rows = run(&QueryContext::everything(&SPEC, &host).using([Col::pid, Col::fd]));
        let me = Value::Integer(i64::from(std::process::id()));
        assert!(rows.iter().any(|r| r[Col::pid as usize] == me));
        assert!(rows.iter().all(|r| r[Col::path as usize].is_null()));
    }
}
