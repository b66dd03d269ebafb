//! `process_namespaces`: the namespaces each process lives in, as the inode numbers of
//! the `/proc/<pid>/ns/*` links. Two processes share a namespace exactly when the numbers
//! match.
//!
//! Only the links of used columns are read; `WHERE pid = ...` reads only those processes.
//! A namespace kind the kernel lacks (or a link we may not read) leaves its column NULL,
//! as in osquery. osquery's schema has no column for the `time` namespace.

use oxquery_sys::fs::FileReader;
use oxquery_sys::proc::{self, ProcPath};
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};

table! {
    name: "process_namespaces",
    description: "Linux namespaces of each process, identified by the inode of its /proc/<pid>/ns link.",
    columns: {
        pid: Integer [INDEX | OPTIMIZED] "Process identifier",
        cgroup_namespace: Text [] "Inode of the cgroup namespace (ns/cgroup)",
        ipc_namespace: Text [] "Inode of the System V IPC and POSIX message queue namespace (ns/ipc)",
        mnt_namespace: Text [] "Inode of the mount namespace (ns/mnt)",
        net_namespace: Text [] "Inode of the network namespace (ns/net)",
        pid_namespace: Text [] "Inode of the process ID namespace (ns/pid)",
        user_namespace: Text [] "Inode of the user namespace (ns/user)",
        uts_namespace: Text [] "Inode of the host and domain name namespace (ns/uts)",
    },
    examples: [
        "select * from process_namespaces where pid = 1",
        "select net_namespace, count(*) from process_namespaces group by net_namespace",
    ],
}

/// Each namespace column and the link it reads.
const KINDS: [(Col, &str); 7] = [
    (Col::cgroup_namespace, "cgroup"),
    (Col::ipc_namespace, "ipc"),
    (Col::mnt_namespace, "mnt"),
    (Col::net_namespace, "net"),
    (Col::pid_namespace, "pid"),
    (Col::user_namespace, "user"),
    (Col::uts_namespace, "uts"),
];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let constrained = ctx.eq_integers(Col::pid);
    let listed = constrained.is_none();
    let pids = proc::pids_or_all(constrained).map_err(|e| TableError::io("/proc", e))?;
    let used: Vec<(Col, &str)> = KINDS
        .iter()
        .copied()
        .filter(|(c, _)| ctx.is_used(*c))
        .collect();
    let mut reader = FileReader::new();
    for pid in pids {
        let path = ProcPath::new(pid);
        // A named pid must exist (osquery checks its /proc directory); a listed one did.
        if !listed && path.stat("").is_err() {
            continue;
        }
        let mut values = [None; KINDS.len()];
        for (slot, (_, kind)) in values.iter_mut().zip(&used) {
            *slot = proc::namespace_inode(&path, &mut reader, kind);
        }
        let mut row = rows.row();
        row.set(Col::pid, pid);
        for (value, (col, _)) in values.iter().zip(&used) {
            if let Some(inode) = value {
                row.set(*col, inode.to_string());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::test_children::{self, Reaped, spawn_sleep, wait_for_comm};
    use oxquery_table::{Host, Op, Value};
    use oxquery_test_support::{missing, require_tool};
    use std::process::{Command, Stdio};

    fn run(ctx: &QueryContext) -> Rows<'static> {
        test_children::run(generate, ctx)
    }

    /// The inode of `/proc/<pid>/ns/<kind>` by the test's own readlink and parsing.
    fn readlink_ns(pid: u32, kind: &str) -> Option<String> {
        let target = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()?;
        let target = target.to_str()?.to_owned();
        let inner = target
            .strip_prefix(&format!("{kind}:["))?
            .strip_suffix(']')?;
        Some(inner.to_owned())
    }

    fn check_against_readlink(pid: u32) -> Vec<Value> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::pid,
            Op::Eq,
            i64::from(pid),
        );
        let rows = run(&ctx);
        assert_eq!(rows.len(), 1);
        let row = rows.get(0).unwrap().to_vec();
        assert_eq!(row[Col::pid as usize], Value::Integer(i64::from(pid)));
        for (col, kind) in KINDS {
            let want = readlink_ns(pid, kind).map(Value::Text);
            assert_eq!(
                Some(row[col as usize].clone()).filter(|v| !v.is_null()),
                want,
                "{kind}"
            );
        }
        row
    }

    #[test]
    fn own_process_matches_readlink() {
        let row = check_against_readlink(std::process::id());
        // This kernel has all seven kinds.
        assert!(row.iter().all(|v| !v.is_null()));
    }

    #[test]
    fn child_in_new_uts_and_ipc_namespaces_differs_only_there() {
        // unshare(1) execs sleep in fresh UTS and IPC namespaces (needs CAP_SYS_ADMIN);
        // without it the plain child must match our namespaces everywhere.
        let Some(unshare) = require_tool("unshare") else {
            return;
        };
        let unshared = Command::new(unshare)
            .args(["--uts", "--ipc", "/bin/sleep", "600"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .map(Reaped);
        let me = std::process::id();
        if let Some(child) = &unshared {
            let pid = child.pid();
            // Wait until unshare has exec'd sleep (or failed and exited).
            let ready = wait_for_comm(pid, "sleep");
            if ready {
                let row = check_against_readlink(pid);
                let ours = check_against_readlink(me);
                for (col, kind) in KINDS {
                    let same = row[col as usize] == ours[col as usize];
                    assert_eq!(same, !matches!(kind, "uts" | "ipc"), "{kind}");
                }
                return;
            }
        }
        let plain = spawn_sleep(|_| {});
        let row = check_against_readlink(plain.pid());
        assert_eq!(&row[1..], &check_against_readlink(me)[1..]);
        missing::<()>("new UTS and IPC namespaces (unshare needs CAP_SYS_ADMIN)");
    }

    #[test]
    fn full_scan_reads_only_used_links_and_skips_missing_pids() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).using([Col::pid, Col::net_namespace]);
        let rows = run(&ctx);
        let me = Value::Integer(i64::from(std::process::id()));
        let mine = rows
            .iter()
            .find(|r| r[Col::pid as usize] == me)
            .expect("our pid");
        assert_eq!(
            mine[Col::net_namespace as usize],
            Value::Text(readlink_ns(std::process::id(), "net").unwrap())
        );
        for r in rows.iter() {
            assert!(r[Col::mnt_namespace as usize].is_null());
        }
        let none = run(&QueryContext::everything(&SPEC, &host).with_constraint(
            Col::pid,
            Op::Eq,
            0x7fff_fff0_i64,
        ));
        assert!(none.is_empty());
    }
}
