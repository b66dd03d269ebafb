//! `process_io`: each process's I/O counters from `/proc/<pid>/io`. Not an osquery table:
//! `processes` has only the storage bytes (`disk_bytes_read`/`disk_bytes_written`); this
//! adds the characters moved through read/write calls and the calls themselves, which
//! tell a process that churns the page cache from one that waits on the disk.
//!
//! `WHERE pid = ...` reads only those processes. Another user's counters need
//! `CAP_SYS_PTRACE` (root has it); a file we may not read gives a row with NULL counters,
//! as `processes` does for the columns it cannot read.

use oxquery_sys::fs::FileReader;
use oxquery_sys::proc::{self, ProcPath};
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};

table! {
    name: "process_io",
    description: "oxquery's own table, not in osquery. I/O counters of each process from /proc/<pid>/io: bytes through read and write calls, the calls, and bytes that reached storage.",
    columns: {
        pid: Integer [INDEX | OPTIMIZED] "Process identifier",
        rchar: BigInt [] "Bytes the process read through read-like system calls, from any source (page cache, pipes, terminals)",
        wchar: BigInt [] "Bytes the process wrote through write-like system calls",
        syscr: BigInt [] "Read-like system calls made",
        syscw: BigInt [] "Write-like system calls made",
        read_bytes: BigInt [] "Bytes the process caused to be fetched from storage",
        write_bytes: BigInt [] "Bytes the process caused to be sent to storage (dirtied pages)",
        cancelled_write_bytes: BigInt [] "Bytes of write_bytes whose writeback was cancelled (a file truncated before it was written out)",
    },
    examples: [
        "select pid, rchar, wchar, read_bytes, write_bytes from process_io where pid = 1",
        "select p.name, i.write_bytes from process_io i join processes p using (pid) order by i.write_bytes desc limit 5",
    ],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let constrained = ctx.eq_integers(Col::pid);
    let listed = constrained.is_none();
    let pids = proc::pids_or_all(constrained).map_err(|e| TableError::io("/proc", e))?;
    let counters_used = [
        Col::rchar,
        Col::wchar,
        Col::syscr,
        Col::syscw,
        Col::read_bytes,
        Col::write_bytes,
        Col::cancelled_write_bytes,
    ]
    .into_iter()
    .any(|c| ctx.is_used(c));
    let mut reader = FileReader::new();
    for pid in pids {
        ctx.check()?;
        let path = ProcPath::new(pid);
        let io = if counters_used {
            match path.read(&mut reader, "io") {
                Ok(text) => proc::parse_io_counters(text),
                // A process that exited since it was listed, or a pid that does not exist.
                Err(_) if !listed || path.stat("").is_err() => continue,
                Err(_) => proc::IoCounters::default(),
            }
        } else {
            // Only `pid` is read: a listed pid needs nothing more; a named one must exist.
            if !listed && path.stat("").is_err() {
                continue;
            }
            proc::IoCounters::default()
        };
        let mut row = rows.row();
        row.set(Col::pid, pid);
        row.set(Col::rchar, io.rchar);
        row.set(Col::wchar, io.wchar);
        row.set(Col::syscr, io.syscr);
        row.set(Col::syscw, io.syscw);
        row.set(Col::read_bytes, io.read_bytes);
        row.set(Col::write_bytes, io.write_bytes);
        row.set(Col::cancelled_write_bytes, io.cancelled_write_bytes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::test_children::{Reaped, wait_for_comm};
    use oxquery_table::{Host, Op, Value};
    use std::process::{Command, Stdio};

    fn run(ctx: &QueryContext) -> Rows<'static> {
        Rows::collect(ctx, generate).unwrap()
    }

    /// The counters as the test reads them itself: `name: value` pairs, split on
    /// whitespace.
    fn counters_of(pid: u32) -> Vec<(String, i64)> {
        std::fs::read_to_string(format!("/proc/{pid}/io"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut it = l.split_whitespace();
                let name = it.next().unwrap().trim_end_matches(':').to_owned();
                (name, it.next().unwrap().parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn a_child_that_copied_50_kb_then_slept_agrees_with_its_proc_io() {
        // dd moves 50 blocks of 1000 bytes, then the shell becomes an idle sleep, so the
        // counters no longer change while the test compares them.
        let child = Reaped(
            Command::new("/bin/sh")
                .args([
                    "-c",
                    "dd if=/dev/zero of=/dev/null bs=1000 count=50 2>/dev/null; exec /bin/sleep 600",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
        );
        assert!(wait_for_comm(child.pid(), "sleep"));
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::pid,
            Op::Eq,
            i64::from(child.pid()),
        );
        let rows = run(&ctx);
        assert_eq!(rows.len(), 1);
        let expected = counters_of(child.pid());
        assert_eq!(expected.len(), 7, "{expected:?}");
        for (name, value) in expected {
            let col = SPEC.column_index(&name).unwrap();
            assert_eq!(&rows.get(0).unwrap()[col], &Value::Integer(value), "{name}");
        }
        // The copy went through the counters: 50 reads of 1000 bytes at least.
        assert!(
            matches!(&rows.get(0).unwrap()[Col::rchar as usize], Value::Integer(n) if *n >= 50_000)
        );
        assert!(
            matches!(&rows.get(0).unwrap()[Col::syscr as usize], Value::Integer(n) if *n >= 50)
        );
    }

    #[test]
    fn a_full_scan_lists_every_process_and_a_missing_pid_none() {
        let host = Host::default();
        let all = run(&QueryContext::everything(&SPEC, &host));
        let me = i64::from(std::process::id());
        assert!(all.column(Col::pid).contains(&&Value::Integer(me)));
        assert!(all.len() > 1);
        // pid_max is at most 2^22: this pid cannot exist.
        let ctx =
            QueryContext::everything(&SPEC, &host).with_constraint(Col::pid, Op::Eq, 1i64 << 23);
        assert_eq!(run(&ctx).len(), 0);
    }

    #[test]
    fn a_pid_only_query_finds_the_named_pid_with_null_counters() {
        let host = Host::default();
        let me = i64::from(std::process::id());
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::pid, Op::Eq, me)
            .using([Col::pid]);
        let rows = run(&ctx);
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows.get(0).unwrap()[Col::rchar as usize], &Value::Null);
    }

    #[test]
    fn partial_or_garbled_files_leave_counters_null() {
        let io = proc::parse_io_counters(b"rchar: 12\nwchar: x\nsyscr 5\n\xff\xfe: 1\n");
        assert_eq!(io.rchar, Some(12));
        assert_eq!(io.wchar, None);
        assert_eq!(io.syscr, None);
        assert_eq!(proc::parse_io_counters(&[b':'; 4096]), Default::default());
    }
}
