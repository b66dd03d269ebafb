//! `process_envs`: one row per environment variable of each process, from
//! `/proc/<pid>/environ` (the environment the process was started with).
//!
//! `WHERE pid = ...` / `IN (...)` reads only those processes' files and never lists
//! `/proc`. Reading another user's environment needs ptrace access: such processes give
//! no rows.

use oxquery_sys::fs::FileReader;
use oxquery_sys::proc::{self, ProcPath};
use oxquery_table::{QueryContext, Rows, TableError, TableResult, Value, table};

table! {
    name: "process_envs",
    description: "Environment variables each process was started with, one row per variable, from /proc/<pid>/environ.",
    columns: {
        pid: Integer [INDEX | OPTIMIZED] "Process whose environment this is",
        key: Text [] "Variable name: the entry up to its first '='",
        value: Text [] "Variable value: everything after the first '=' (may itself contain '=')",
    },
    examples: [
        "select * from process_envs where pid = 1",
        "select pid, value from process_envs where key = 'LD_PRELOAD'",
    ],
}

/// Names and values as the process holds them: bytes that need not be UTF-8, unchanged.
fn bytes(raw: &[u8]) -> Value {
    Value::from_bytes(raw.to_vec())
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let pids =
        proc::pids_or_all(ctx.eq_integers(Col::pid)).map_err(|e| TableError::io("/proc", e))?;
    let mut reader = FileReader::new();
    let (want_key, want_value) = (ctx.is_used(Col::key), ctx.is_used(Col::value));
    for pid in pids {
        let path = ProcPath::new(pid);
        let raw = match path.read(&mut reader, "environ") {
            Ok(raw) => raw,
            Err(e) => {
                log::debug!("process_envs: cannot read /proc/{pid}/environ: {e}");
                continue;
            }
        };
        for (key, value) in proc::environ_entries(raw) {
            let mut row = rows.row();
            row.set(Col::pid, pid);
            if want_key {
                row.set(Col::key, bytes(key));
            }
            if want_value {
                row.set(Col::value, bytes(value));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::test_children::{self, Reaped, spawn_sleep};
    use oxquery_table::{Host, Op, Value};

    /// `sleep 600` with exactly `vars` as its environment, once its exec is visible.
    fn spawn_with_env(vars: &[(&str, &str)]) -> Reaped {
        spawn_sleep(|cmd| {
            cmd.env_clear();
            for (k, v) in vars {
                cmd.env(k, v);
            }
        })
    }

    fn run(ctx: &QueryContext) -> Rows<'static> {
        test_children::run(generate, ctx)
    }

    use crate::testing::text;

    const VARS: [(&str, &str); 5] = [
        ("OXQ_FIRST", "plain"),
        ("OXQ_EQUALS", "a=b==c="),
        ("OXQ_UNICODE", "héllo ✓ 日本語 🚀"),
        ("OXQ_EMPTY", ""),
        ("OXQ_SPACES", "  two  spaces\tand tab "),
    ];

    #[test]
    fn constrained_pid_gives_exactly_the_childs_environment() {
        let child = spawn_with_env(&VARS);
        let pid = i64::from(child.pid());
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(Col::pid, Op::Eq, pid);
        let rows = run(&ctx);
        let mut got: Vec<(i64, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r[Col::pid as usize].as_i64().unwrap(),
                    text(&r[Col::key as usize]),
                    text(&r[Col::value as usize]),
                )
            })
            .collect();
        got.sort();
        let mut want: Vec<(i64, String, String)> = VARS
            .iter()
            .map(|(k, v)| (pid, k.to_string(), v.to_string()))
            .collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn full_scan_includes_the_child_and_unknown_pids_give_nothing() {
        let child = spawn_with_env(&VARS);
        let pid = i64::from(child.pid());
        let host = Host::default();
        let all = run(&QueryContext::everything(&SPEC, &host).using([Col::pid, Col::key]));
        let keys: Vec<String> = all
            .iter()
            .filter(|r| r[Col::pid as usize] == Value::Integer(pid))
            .map(|r| text(&r[Col::key as usize]))
            .collect();
        assert_eq!(keys.len(), VARS.len());
        for row in all.iter() {
            assert!(row[Col::value as usize].is_null(), "unused column computed");
        }
        let none = run(&QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::pid, Op::Eq, 0x7fff_fff0_i64)
            .with_constraint(Col::pid, Op::Eq, -1_i64));
        assert!(none.is_empty());
    }

    #[test]
    fn own_environment_matches_std_env() {
        // Our own environ is what we were started with; std::env reads the live copy,
        // which nothing in this test binary changes.
        let me = std::process::id();
        let host = Host::default();
        let ctx =
            QueryContext::everything(&SPEC, &host).with_constraint(Col::pid, Op::Eq, i64::from(me));
        let rows = run(&ctx);
        let mut got: Vec<(String, String)> = rows
            .iter()
            .map(|r| (text(&r[Col::key as usize]), text(&r[Col::value as usize])))
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn hostile_environ_bytes_never_panic() {
        let cases: [&[u8]; 7] = [
            b"",
            b"\0\0\0",
            b"NOEQUALS\0",
            b"=startswithequals\0",
            b"A=1\0\0B=2\0",
            b"TRUNC=no terminating nul",
            &[0xff, b'=', 0xfe, 0, 0x80],
        ];
        for raw in cases {
            let _: Vec<_> = proc::environ_entries(raw).collect();
        }
        let e: Vec<_> = proc::environ_entries(b"A=1\0\0NOEQ\0=x\0B=c=d").collect();
        assert_eq!(
            e,
            vec![
                (&b"A"[..], &b"1"[..]),
                (&b"NOEQ"[..], &b""[..]),
                (&b""[..], &b"x"[..]),
                (&b"B"[..], &b"c=d"[..])
            ]
        );
        let huge = vec![b'x'; 1 << 20];
        assert_eq!(proc::environ_entries(&huge).count(), 1);
    }
}
