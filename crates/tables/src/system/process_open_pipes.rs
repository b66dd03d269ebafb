//! `process_open_pipes`: pipe descriptors of every process, each paired with the
//! descriptors at the other end of the same pipe.
//!
//! Anonymous pipes are the `pipe:[inode]` descriptor links; named pipes (FIFOs) are
//! descriptors whose open file is a FIFO. A descriptor's mode (`r`, `w` or `rw`) comes
//! from the permission bits of its `/proc/<pid>/fd/<n>` link, which the kernel sets from
//! the open mode. Pairing follows osquery: a pipe end held by one descriptor only gives
//! one row with NULL partner columns; otherwise each descriptor gets a row per other
//! descriptor of the same pipe with a different mode (or when it is open `rw`), so two
//! readers with no writer give no rows. Unlike osquery, which compares inode numbers only,
//! two ends belong to the same pipe when their device and inode both match.
//!
//! Every process is read (pairs cross processes), so there is no pid pushdown.

use oxquery_sys::proc::{self, ProcPath};
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};
use std::collections::HashMap;

table! {
    name: "process_open_pipes",
    description: "Pipes and FIFOs held open by processes, with the process and descriptor at the other end.",
    columns: {
        pid: BigInt [] "Process holding this end of the pipe",
        fd: BigInt [] "Descriptor number of this end",
        mode: Text [] "How this end is open: r, w or rw",
        inode: BigInt [] "Inode of the pipe (pipefs for anonymous pipes, the file system's for FIFOs)",
        r#type: Text [] "anonymous for pipe(2) pipes, named for FIFOs in the file system",
        partner_pid: BigInt [] "Process holding a descriptor of the same pipe; NULL when no one else holds it",
        partner_fd: BigInt [] "That partner's descriptor number",
        partner_mode: Text [] "How the partner's descriptor is open: r, w or rw",
    },
    examples: [
        "select * from process_open_pipes",
        "select pid, fd, partner_pid from process_open_pipes where mode = 'w' and partner_mode = 'r'",
    ],
}

/// One pipe descriptor of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
struct End {
    pid: u32,
    fd: u64,
    mode: &'static str,
    inode: u64,
    /// Device of a FIFO's file system; 0 for anonymous pipes (all live in pipefs).
    dev: u64,
    named: bool,
}

fn mode_text(mode: std::io::Result<(bool, bool)>) -> &'static str {
    match mode {
        Ok((true, true)) => "rw",
        Ok((true, false)) => "r",
        Ok((false, true)) => "w",
        Ok((false, false)) => "",
        // The descriptor closed while being read: osquery's marker for an unknown mode.
        Err(_) => "-",
    }
}

/// Appends the pipe descriptors of one process.
fn collect_ends(pid: u32, out: &mut Vec<End>) {
    let path = ProcPath::new(pid);
    let result = proc::for_each_descriptor(&path, |d| {
        if let Some(inode) = proc::parse_bracket_inode(d.target, b"pipe") {
            out.push(End {
                pid,
                fd: d.fd,
                mode: mode_text(d.open_mode()),
                inode,
                dev: 0,
                named: false,
            });
        } else if d.target.starts_with(b"/") {
            // Only paths can be FIFOs; sockets, anon_inode:... and the like cannot.
            let Ok(st) = d.target_stat() else {
                return;
            };
            if st.st_mode & libc::S_IFMT == libc::S_IFIFO {
                out.push(End {
                    pid,
                    fd: d.fd,
                    mode: mode_text(d.open_mode()),
                    inode: st.st_ino,
                    dev: st.st_dev,
                    named: true,
                });
            }
        }
    });
    if let Err(e) = result {
        log::debug!("process_open_pipes: cannot list /proc/{pid}/fd: {e}");
    }
}

/// For each end, the partners osquery reports: `None` alone for a pipe held by a single
/// descriptor, else every other end of the same pipe with a different mode (all others
/// when the end is open `rw`).
fn pair(ends: &[End]) -> Vec<(usize, Option<usize>)> {
    let mut by_pipe: HashMap<(bool, u64, u64), Vec<usize>> = HashMap::new();
    for (i, e) in ends.iter().enumerate() {
        by_pipe
            .entry((e.named, e.dev, e.inode))
            .or_default()
            .push(i);
    }
    let mut out = Vec::new();
    for (i, e) in ends.iter().enumerate() {
        let group = &by_pipe[&(e.named, e.dev, e.inode)];
        if group.len() == 1 {
            out.push((i, None));
            continue;
        }
        for &j in group {
            if j != i && (e.mode != ends[j].mode || e.mode == "rw") {
                out.push((i, Some(j)));
            }
        }
    }
    out
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut pids = Vec::new();
    proc::list_pids(&mut pids).map_err(|e| TableError::io("/proc", e))?;
    let mut ends = Vec::new();
    for pid in pids {
        collect_ends(pid, &mut ends);
    }
    for (i, partner) in pair(&ends) {
        let e = &ends[i];
        let mut row = rows.row();
        row.set(Col::pid, e.pid);
        row.set(Col::fd, e.fd as i64);
        row.set(Col::mode, e.mode);
        row.set(Col::inode, e.inode as i64);
        row.set(Col::r#type, if e.named { "named" } else { "anonymous" });
        if let Some(j) = partner {
            let p = &ends[j];
            row.set(Col::partner_pid, p.pid);
            row.set(Col::partner_fd, p.fd as i64);
            row.set(Col::partner_mode, p.mode);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::test_children::{self, Reaped, spawn_sleep};
    use oxquery_table::{Host, Value};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::fs::MetadataExt;
    use std::process::Stdio;

    fn run() -> Rows<'static> {
        let host = Host::default();
        test_children::run(generate, &QueryContext::everything(&SPEC, &host))
    }

    /// `sleep 600` with the given stdin and stdout, once it runs sleep.
    fn sleeper(stdin: Stdio, stdout: Stdio) -> Reaped {
        spawn_sleep(|cmd| {
            cmd.stdin(stdin).stdout(stdout);
        })
    }

    type Row = (i64, i64, String, String, Option<(i64, i64, String)>);

    fn rows_for_inode(rows: &Rows, inode: u64) -> Vec<Row> {
        let t = |v: &Value| match v {
            Value::Text(s) => s.to_string(),
            v => panic!("not text: {v:?}"),
        };
        let mut out: Vec<Row> = rows
            .iter()
            .filter(|r| r[Col::inode as usize] == Value::Integer(inode as i64))
            .map(|r| {
                let partner = (!r[Col::partner_pid as usize].is_null()).then(|| {
                    (
                        r[Col::partner_pid as usize].as_i64().unwrap(),
                        r[Col::partner_fd as usize].as_i64().unwrap(),
                        t(&r[Col::partner_mode as usize]),
                    )
                });
                (
                    r[Col::pid as usize].as_i64().unwrap(),
                    r[Col::fd as usize].as_i64().unwrap(),
                    t(&r[Col::mode as usize]),
                    t(&r[Col::r#type as usize]),
                    partner,
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn anonymous_pipe_between_two_children() {
        let (reader, writer) = std::io::pipe().unwrap();
        // The pipe's inode, by fstat in this process.
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", reader.as_raw_fd()))
            .unwrap()
            .ino();
        let w = sleeper(Stdio::null(), Stdio::from(writer));
        let r = sleeper(Stdio::from(reader), Stdio::null());
        let (wp, rp) = (i64::from(w.pid()), i64::from(r.pid()));
        let got = rows_for_inode(&run(), inode);
        let mut want: Vec<Row> = vec![
            (
                wp,
                1,
                "w".into(),
                "anonymous".into(),
                Some((rp, 0, "r".into())),
            ),
            (
                rp,
                0,
                "r".into(),
                "anonymous".into(),
                Some((wp, 1, "w".into())),
            ),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn named_pipe_between_two_children() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("the fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: c is a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Open the read end without blocking, then the write end (a reader now exists).
        // SAFETY: c is a NUL-terminated path; the returned descriptors are owned below.
        let rfd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        assert!(rfd >= 0);
        // SAFETY: rfd was just opened and is owned by nothing else.
        let rfd = unsafe { OwnedFd::from_raw_fd(rfd) };
        // SAFETY: as above.
        let wfd = unsafe { libc::open(c.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
        assert!(wfd >= 0);
        // SAFETY: wfd was just opened and is owned by nothing else.
        let wfd = unsafe { OwnedFd::from_raw_fd(wfd) };
        let inode = std::fs::metadata(&fifo).unwrap().ino();
        let w = sleeper(Stdio::null(), Stdio::from(wfd));
        let r = sleeper(Stdio::from(rfd), Stdio::null());
        let (wp, rp) = (i64::from(w.pid()), i64::from(r.pid()));
        // Only our two children: a process another test forks at this moment holds
        // copies of the FIFO's descriptors until it execs.
        let ours = |pid: i64| pid == wp || pid == rp;
        let got: Vec<Row> = rows_for_inode(&run(), inode)
            .into_iter()
            .filter(|row| row.3 == "named" && ours(row.0))
            .filter(|row| row.4.as_ref().is_none_or(|partner| ours(partner.0)))
            .collect();
        let mut want: Vec<Row> = vec![
            (wp, 1, "w".into(), "named".into(), Some((rp, 0, "r".into()))),
            (rp, 0, "r".into(), "named".into(), Some((wp, 1, "w".into()))),
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn pipe_with_one_open_end_has_no_partner() {
        let (reader, writer) = std::io::pipe().unwrap();
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", reader.as_raw_fd()))
            .unwrap()
            .ino();
        drop(writer);
        let r = sleeper(Stdio::from(reader), Stdio::null());
        let rp = i64::from(r.pid());
        assert_eq!(
            rows_for_inode(&run(), inode),
            vec![(rp, 0, "r".to_string(), "anonymous".to_string(), None)]
        );
    }

    fn end(pid: u32, fd: u64, mode: &'static str, inode: u64) -> End {
        End {
            pid,
            fd,
            mode,
            inode,
            dev: 0,
            named: false,
        }
    }

    #[test]
    fn pairing_rules() {
        let ends = vec![
            // Two readers, no writer: no rows at all.
            end(1, 3, "r", 10),
            end(2, 3, "r", 10),
            // A writer shared by two processes (after fork) and one reader.
            end(3, 1, "w", 20),
            end(4, 1, "w", 20),
            end(5, 0, "r", 20),
            // An rw end pairs with everything else, even another rw end.
            end(6, 7, "rw", 30),
            end(7, 7, "rw", 30),
            // Same inode number in a FIFO and a pipe: different pipes.
            End {
                named: true,
                dev: 5,
                ..end(8, 4, "r", 40)
            },
            end(9, 4, "w", 40),
        ];
        let mut got = pair(&ends);
        got.sort();
        let want = vec![
            (2, Some(4)),
            (3, Some(4)),
            (4, Some(2)),
            (4, Some(3)),
            (5, Some(6)),
            (6, Some(5)),
            (7, None),
            (8, None),
        ];
        assert_eq!(got, want);
    }
}
