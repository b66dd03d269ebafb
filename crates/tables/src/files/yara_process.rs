//! `yara_process`: scan the memory of processes with YARA rules (yara-x engine; only in
//! builds with the `yara` feature).
//!
//! `pid = N` (or `IN (...)`) names the processes. Their readable mappings are read through
//! `/proc/<pid>/mem` (which needs ptrace access: root, or the same user under a permissive
//! Yama setting) and scanned block by block; offsets in `strings` are virtual addresses.
//! Block scanning leaves YARA modules, `filesize` and `uintNN()` undefined, so rules for
//! memory should rely on their patterns. Rules come from `sigfile`, `sigrule`, `sigurl`
//! or `sig_group` as in the `yara` table, each distinct source compiled once per query;
//! one row per process and rule source, also without a match. A process that cannot be
//! read gives no row.
//! With `pid_with_namespace = <pid>`, a `sigfile` is read inside that process's root (see
//! `yara`); the scanned processes are named by `pid` as ever.

use oxquery_sys::yara::{self, NamedRules, RuleCache};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "yara_process",
    description: "Scan results of YARA rules over the memory of processes (yara-x engine).",
    columns: {
        pid: Integer [INDEX | REQUIRED] "Process whose memory is scanned",
        matches: Text [] "Names of the matching rules, comma-separated",
        count: Integer [] "Number of matching rules",
        sig_group: Text [ADDITIONAL] "Signature group of the config's yara.signatures to compile and scan with",
        sigfile: Text [ADDITIONAL] "Rule file to compile and scan with; relative names are under /etc/osquery/yara/",
        sigrule: Text [ADDITIONAL | HIDDEN] "Rule text to compile and scan with",
        strings: Text [] "Matched patterns as `$name:hex address`, comma-separated",
        tags: Text [] "Tags of the matching rules, comma-separated",
        sigurl: Text [ADDITIONAL | HIDDEN] "URL to fetch rules from; it must match the config's yara signature_urls",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Read sigfile inside this process's mount namespace (its root); 0 in rows whose rules are the host's",
    },
    examples: [
        "select * from yara_process where pid = 1234 and sigrule = 'rule r { strings: $a = \"evil\" condition: $a }'",
    ],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut named = NamedRules::from_query(
        ctx.eq_texts(Col::sigfile).unwrap_or_default(),
        ctx.eq_texts(Col::sigrule).unwrap_or_default(),
    );
    named.extend(super::yara_sigurl::rules(
        ctx,
        "yara_process",
        ctx.eq_texts(Col::sigurl).unwrap_or_default(),
    ));
    named.extend(super::yara_groups::rules(
        ctx,
        "yara_process",
        ctx.eq_texts(Col::sig_group).unwrap_or_default(),
    ));
    if named.is_empty() {
        log::info!(
            "Table yara_process: the query must give sigfile, sigrule, sigurl or sig_group to scan with"
        );
        return Ok(());
    }
    let pids: Vec<u32> = ctx
        .eq_integers(Col::pid)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| u32::try_from(p).ok())
        .collect();

    let policy = crate::common::user_file_policy(ctx);
    for root in crate::common::namespace_roots(ctx, Col::pid_with_namespace) {
        // A sigfile is read inside the root, as osquery reads it from within the namespace.
        let mut cache = RuleCache::in_root(root.clone(), policy);
        scan_with(ctx, &mut cache, root.pid(), &named, &pids, rows)?;
    }
    Ok(())
}

/// One row per process and rule set of `named` (compiled through `cache`).
fn scan_with(
    ctx: &QueryContext,
    cache: &mut RuleCache,
    pid_with_namespace: i64,
    named: &[NamedRules],
    pids: &[u32],
    rows: &mut Rows,
) -> TableResult {
    for rules_named in named {
        let Some(rules) = cache.get(&rules_named.source()) else {
            continue;
        };
        for &pid in pids {
            ctx.check()?;
            let summary = match yara::scan_process(rules, pid) {
                Ok(s) => s,
                Err(e) => {
                    log::info!("Table yara_process: cannot scan {pid}: {e}");
                    continue;
                }
            };
            let mut row = rows.row();
            row.set(Col::pid, i64::from(pid));
            row.set(Col::matches, summary.matches);
            row.set(Col::count, summary.count);
            row.set(Col::sig_group, rules_named.sig_group());
            row.set(Col::sigfile, rules_named.sigfile());
            row.set(Col::sigrule, rules_named.sigrule());
            row.set(Col::strings, summary.strings);
            row.set(Col::tags, summary.tags);
            row.set(Col::sigurl, rules_named.sigurl());
            row.set(Col::pid_with_namespace, pid_with_namespace);
            // `--yara_delay`, after each process as after each file in `yara`.
            ctx.pause(crate::files::yara_file::yara_delay(ctx))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Op, Value};
    use std::os::unix::fs::FileExt;
    use std::process::{Child, Command};

    fn scan(pid: u32, rule: &str) -> Vec<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::pid, Op::Eq, i64::from(pid))
            .with_constraint(Col::sigrule, Op::Eq, rule);
        let rows = Rows::collect(&ctx, generate).unwrap();
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn finds_a_marker_in_a_child_process_memory() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        // Built from pieces so that this test's own binary does not hold it whole.
        let marker = format!("oxq-{}-{nanos:x}-{}", "yara-marker", std::process::id());
        let child = Kill(
            Command::new("sh")
                .arg("-c")
                .arg("sleep 60")
                .arg(&marker)
                .env("OXQ_MARKER", &marker)
                .spawn()
                .unwrap(),
        );
        let pid = child.0.id();
        // Wait until the child has exec'd the shell with its arguments in place.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| memchr::memmem::find(&c, marker.as_bytes()).is_some())
        {
            assert!(std::time::Instant::now() < deadline, "child did not start");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let rule = format!("rule in_memory : mem {{ strings: $m = \"{marker}\" condition: $m }}");
        let rows = scan(pid, &rule);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row[Col::pid as usize], Value::Integer(i64::from(pid)));
        assert_eq!(row[Col::matches as usize], Value::Text("in_memory".into()));
        assert_eq!(row[Col::count as usize], Value::Integer(1));
        assert_eq!(row[Col::tags as usize], Value::Text("mem".into()));
        // The reported address really holds the marker in the child (read independently).
        let strings = row[Col::strings as usize].to_string();
        let addr = u64::from_str_radix(strings.strip_prefix("$m:").unwrap(), 16).unwrap();
        let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
        let mut buf = vec![0u8; marker.len()];
        mem.read_exact_at(&mut buf, addr).unwrap();
        assert_eq!(buf, marker.as_bytes());

        // A rule that does not match still gives its row; a vanished process none.
        let rows = scan(
            pid,
            "rule nope { strings: $a = \"no-such-bytes-4b1d-00\" condition: $a }",
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][Col::count as usize], Value::Integer(0));
        drop(child);
        assert!(scan(pid, &rule).is_empty());
        assert!(scan(u32::MAX, &rule).is_empty());
    }

    #[test]
    fn pid_with_namespace_reads_sigfile_inside_that_root() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        // The container's process runs `/bin/busybox sleep 3600`: its arguments are in
        // its memory.
        let rule = "rule argv_busybox { strings: $b = \"busybox\" condition: $b }";
        std::fs::write(c.root().join("etc/mem.yar"), rule).unwrap();
        let pid = c.pid();
        let host = Host::default();
        let ctx = c
            .query(&SPEC, &host, Col::pid_with_namespace.into())
            .with_constraint(Col::pid, Op::Eq, pid)
            .with_constraint(Col::sigfile, Op::Eq, "/etc/mem.yar");
        let rows = Rows::collect(&ctx, generate).unwrap();
        let rows: Vec<&[Value]> = rows.iter().collect();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            rows[0][Col::matches as usize],
            Value::Text("argv_busybox".into())
        );
        assert_eq!(
            rows[0][Col::pid_with_namespace as usize],
            Value::Integer(pid)
        );
        // The host has no /etc/mem.yar: the same query without the namespace has no rows.
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::pid, Op::Eq, pid)
            .with_constraint(Col::sigfile, Op::Eq, "/etc/mem.yar");
        assert_eq!(Rows::collect(&ctx, generate).unwrap().len(), 0);
    }
}
