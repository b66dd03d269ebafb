//! `yara_file` (alias `yara`): scan files with YARA rules (yara-x engine; only in builds
//! with the `yara` feature).
//!
//! Files come from `path = X` or `path LIKE P` (`%`, and `%%` recursing, through
//! `oxquery_sys::pattern`); only regular files are scanned, links followed. Rules come
//! from the query: `sigfile = F` compiles the rule file F (a relative name is looked up in
//! osquery's `/etc/osquery/yara/`), `sigrule = R` compiles the rule text R, `sigurl = U`
//! fetches rules from U when the config's `yara.signature_urls` allows it (see
//! `yara_sigurl`). Every distinct rule source is compiled once per query. Each file is
//! scanned once per rule source and gives one row, also when nothing matched (`count` 0).
//!
//! `sig_group = G` compiles the rule files the config's `yara.signatures` lists for group G
//! as one rule set (`yara_groups`); its rows carry the group in `sig_group`.
//!
//! With `pid_with_namespace = <pid>` the files are scanned inside that process's root (its
//! mount namespace's files, resolved safely), named with `=` only, and a `sigfile` is
//! read there too, as osquery reads it from within the namespace; config groups stay the
//! host's.

use crate::common;
use oxquery_sys::pattern::{self, Select};
use oxquery_sys::safe_read::Root;
use oxquery_sys::yara::{self, NamedRules, RuleCache};
use oxquery_table::{Op, QueryContext, Rows, TableResult, table};
use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::path::PathBuf;

table! {
    name: "yara_file",
    description: "Scan results of YARA rules over files chosen by path or LIKE pattern (yara-x engine).",
    columns: {
        path: Text [INDEX | REQUIRED] "File to scan; LIKE patterns expand, `%%` recursing",
        matches: Text [] "Names of the matching rules, comma-separated",
        count: Integer [] "Number of matching rules",
        sig_group: Text [ADDITIONAL] "Signature group of the config's yara.signatures to compile and scan with",
        sigfile: Text [ADDITIONAL] "Rule file to compile and scan with; relative names are under /etc/osquery/yara/",
        sigrule: Text [ADDITIONAL | HIDDEN] "Rule text to compile and scan with",
        strings: Text [] "Matched patterns as `$name:hex offset`, comma-separated",
        tags: Text [] "Tags of the matching rules, comma-separated",
        sigurl: Text [ADDITIONAL | HIDDEN] "URL to fetch rules from; it must match the config's yara signature_urls",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Scan inside this process's mount namespace: paths (named with =) and sigfile resolve in its root; 0 in rows scanned on the host",
    },
    aliases: ["yara"],
    examples: [
        "select * from yara where path = '/bin/ls' and sigfile = '/etc/osquery/yara/rules.yar'",
        "select * from yara_file where path LIKE '/home/%/Downloads/%' and sigrule = 'rule r { strings: $a = \"evil\" condition: $a }'",
    ],
}

/// The pause after each scan (`--yara_delay`).
pub(crate) fn yara_delay(ctx: &QueryContext) -> std::time::Duration {
    std::time::Duration::from_millis(ctx.settings().yara_delay_ms)
}

pub(crate) fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut named = NamedRules::from_query(
        ctx.eq_texts(Col::sigfile).unwrap_or_default(),
        ctx.eq_texts(Col::sigrule).unwrap_or_default(),
    );
    named.extend(super::yara_sigurl::rules(
        ctx,
        "yara",
        ctx.eq_texts(Col::sigurl).unwrap_or_default(),
    ));
    named.extend(super::yara_groups::rules(
        ctx,
        "yara",
        ctx.eq_texts(Col::sig_group).unwrap_or_default(),
    ));
    if named.is_empty() {
        log::info!(
            "Table yara: the query must give sigfile, sigrule, sigurl or sig_group to scan with"
        );
        return Ok(());
    }

    for root in common::namespace_roots(ctx, Col::pid_with_namespace) {
        scan_in(ctx, &root, &named, rows)?;
    }
    Ok(())
}

/// The files the query names, scanned inside `root` with each of `named`.
fn scan_in(ctx: &QueryContext, root: &Root, named: &[NamedRules], rows: &mut Rows) -> TableResult {
    let mut paths: BTreeSet<PathBuf> = BTreeSet::new();
    paths.extend(
        ctx.eq_paths(Col::path)
            .unwrap_or_default()
            .into_iter()
            .map(PathBuf::from),
    );
    if root.pid() == 0 {
        let stop = || ctx.is_stopped();
        for like in ctx.patterns(Col::path, Op::Like) {
            pattern::expand_like_until(&like, Select::Files, &stop, |found| {
                paths.insert(found.to_path_buf());
                ControlFlow::Continue(())
            });
            ctx.check()?;
        }
    } else {
        common::no_patterns_inside(ctx, root, &[Col::path.into()]);
    }
    paths.retain(|p| root.metadata(p).is_ok_and(|m| m.is_file()));

    let policy = common::user_file_policy(ctx);
    // A sigfile is read inside the root, as osquery reads it from within the namespace.
    let mut cache = RuleCache::in_root(root.clone(), policy);
    for rules_named in named {
        let Some(rules) = cache.get(&rules_named.source()) else {
            continue;
        };
        for path in &paths {
            ctx.check()?;
            let summary = match yara::scan_file_in(rules, root, path, &policy) {
                Ok(s) => s,
                Err(e) => {
                    let shown = root.display(path);
                    log::info!("Table yara: cannot scan {}: {e}", shown.display());
                    continue;
                }
            };
            let mut row = rows.row();
            row.set(Col::path, path.as_path());
            row.set(Col::matches, summary.matches);
            row.set(Col::count, summary.count);
            row.set(Col::sig_group, rules_named.sig_group());
            row.set(Col::sigfile, rules_named.sigfile());
            row.set(Col::sigrule, rules_named.sigrule());
            row.set(Col::strings, summary.strings);
            row.set(Col::tags, summary.tags);
            row.set(Col::sigurl, rules_named.sigurl());
            row.set(Col::pid_with_namespace, root.pid());
            // `--yara_delay`: osquery pauses after each file it scans, so a sweep of many
            // files spreads its reads and memory peaks out.
            ctx.pause(yara_delay(ctx))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};
    use std::fs;

    fn scan(constraints: &[(Col, Op, &str)]) -> Vec<Vec<Value>> {
        let host = Host::default();
        let mut ctx = QueryContext::everything(&SPEC, &host);
        for (c, op, v) in constraints {
            ctx = ctx.with_constraint(*c, *op, *v);
        }
        let rows = Rows::collect(&ctx, generate).unwrap();
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn each_file_scan_is_followed_by_the_yara_delay() {
        let tmp = tempfile::tempdir().unwrap();
        for name in ["a", "b", "c"] {
            fs::write(tmp.path().join(name), b"needle-7f3a").unwrap();
        }
        let like = format!("{}/%", tmp.path().to_str().unwrap());
        let timed = |delay_ms: u64| {
            let host = Host {
                settings: oxquery_table::TableSettings {
                    yara_delay_ms: delay_ms,
                    ..oxquery_table::TableSettings::DEFAULT
                },
                ..Host::default()
            };
            let ctx = QueryContext::everything(&SPEC, &host)
                .with_constraint(Col::path, Op::Like, like.as_str())
                .with_constraint(Col::sigrule, Op::Eq, RULE);
            let started = std::time::Instant::now();
            let rows = Rows::collect(&ctx, generate).unwrap();
            assert_eq!(rows.len(), 3);
            started.elapsed()
        };
        // Three files, a pause after each: at least three delays (a lower bound, so a
        // slow machine cannot fail it).
        let paced = timed(400);
        assert!(paced >= std::time::Duration::from_millis(1200), "{paced:?}");
    }

    const RULE: &str = r#"rule needle_rule : red blue { strings: $n = "needle-7f3a" $unused = "absent-pattern" condition: $n or $unused }"#;

    #[test]
    fn inline_rule_matches_known_content_and_not_others() {
        let tmp = tempfile::tempdir().unwrap();
        let hit = tmp.path().join("hit.txt");
        let miss = tmp.path().join("miss.txt");
        fs::write(&hit, b"0123456789needle-7f3a tail").unwrap();
        fs::write(&miss, b"nothing to see").unwrap();
        fs::create_dir(tmp.path().join("dir")).unwrap();
        let (h, m) = (hit.to_str().unwrap(), miss.to_str().unwrap());

        let rows = scan(&[
            (Col::path, Op::Eq, h),
            (Col::path, Op::Eq, m),
            (Col::sigrule, Op::Eq, RULE),
        ]);
        assert_eq!(rows.len(), 2);
        let row = rows.iter().find(|r| r[Col::path as usize] == t(h)).unwrap();
        assert_eq!(row[Col::matches as usize], t("needle_rule"));
        assert_eq!(row[Col::count as usize], Value::Integer(1));
        // The pattern starts at byte 10 of the file: `a` in hex.
        assert_eq!(row[Col::strings as usize], t("$n:a"));
        assert_eq!(row[Col::tags as usize], t("red,blue"));
        assert_eq!(row[Col::sigrule as usize], t(RULE));
        assert_eq!(row[Col::sigfile as usize], t(""));
        let row = rows.iter().find(|r| r[Col::path as usize] == t(m)).unwrap();
        assert_eq!(row[Col::count as usize], Value::Integer(0));
        assert_eq!(row[Col::matches as usize], t(""));
        assert_eq!(row[Col::strings as usize], t(""));

        // LIKE: the regular files of the directory, the subdirectory skipped.
        let like = format!("{}/%", tmp.path().to_str().unwrap());
        let rows = scan(&[(Col::path, Op::Like, &like), (Col::sigrule, Op::Eq, RULE)]);
        assert_eq!(rows.len(), 2);
        // A directory, a missing file, a broken rule, no rule at all: no rows, no panic.
        let d = tmp.path().join("dir");
        assert!(
            scan(&[
                (Col::path, Op::Eq, d.to_str().unwrap()),
                (Col::sigrule, Op::Eq, RULE)
            ])
            .is_empty()
        );
        assert!(
            scan(&[
                (Col::path, Op::Eq, "/nonexistent/x"),
                (Col::sigrule, Op::Eq, RULE)
            ])
            .is_empty()
        );
        assert!(
            scan(&[
                (Col::path, Op::Eq, h),
                (Col::sigrule, Op::Eq, "rule { broken")
            ])
            .is_empty()
        );
        assert!(scan(&[(Col::path, Op::Eq, h)]).is_empty());
        assert!(scan(&[(Col::path, Op::Eq, h), (Col::sig_group, Op::Eq, "g")]).is_empty());
    }

    #[test]
    fn sig_group_compiles_the_config_group_s_files_as_one_rule_set() {
        let tmp = tempfile::tempdir().unwrap();
        let first = tmp.path().join("first.yar");
        let second = tmp.path().join("second.yar");
        fs::write(
            &first,
            r#"rule first_rule { strings: $a = "alpha-91" condition: $a }"#,
        )
        .unwrap();
        fs::write(
            &second,
            r#"rule second_rule { strings: $b = "beta-37" condition: $b }"#,
        )
        .unwrap();
        let target = tmp.path().join("target.bin");
        fs::write(&target, b"..alpha-91..beta-37..").unwrap();
        let file = |p: &std::path::Path| p.to_str().unwrap().to_owned();
        let host = Host::default();
        {
            let mut live = host.live.write().unwrap();
            live.yara_signature_groups = [
                ("both".to_owned(), vec![file(&first), file(&second)]),
                ("only_first".to_owned(), vec![file(&first)]),
                ("empty".to_owned(), vec![]),
            ]
            .into();
        }
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::path, Op::Eq, file(&target).as_str())
            .with_constraint(Col::sig_group, Op::Eq, "both")
            .with_constraint(Col::sig_group, Op::Eq, "only_first")
            .with_constraint(Col::sig_group, Op::Eq, "empty")
            .with_constraint(Col::sig_group, Op::Eq, "not_configured");
        let rows = Rows::collect(&ctx, generate).unwrap();
        let got: Vec<(Value, Value, Value, Value)> = rows
            .iter()
            .map(|r| {
                (
                    r[Col::sig_group as usize].clone(),
                    r[Col::matches as usize].clone(),
                    r[Col::count as usize].clone(),
                    r[Col::sigfile as usize].clone(),
                )
            })
            .collect();
        // Groups without files, or not in the config, give no rows.
        assert_eq!(
            got,
            [
                (
                    t("both"),
                    t("first_rule,second_rule"),
                    Value::Integer(2),
                    t("")
                ),
                (t("only_first"), t("first_rule"), Value::Integer(1), t("")),
            ]
        );
    }

    #[test]
    fn pid_with_namespace_scans_files_and_reads_sigfile_inside_that_root() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let inside = c.root();
        fs::write(inside.join("data/hit.bin"), b"..needle-7f3a..").unwrap();
        fs::write(inside.join("etc/rules.yar"), RULE).unwrap();
        // A link to a host file with the pattern: resolved inside the root, not followed out.
        c.make_hostile("data/escape.bin", "needle-7f3a");
        let host = Host::default();
        let ctx = c
            .query(&SPEC, &host, Col::pid_with_namespace.into())
            .with_constraint(Col::path, Op::Eq, "/data/hit.bin")
            .with_constraint(Col::path, Op::Eq, "/data/file.txt")
            .with_constraint(Col::path, Op::Eq, "/data/escape.bin")
            .with_constraint(Col::sigfile, Op::Eq, "/etc/rules.yar");
        let rows = Rows::collect(&ctx, generate).unwrap();
        let got: Vec<(Value, Value, Value)> = rows
            .iter()
            .map(|r| {
                (
                    r[Col::path as usize].clone(),
                    r[Col::count as usize].clone(),
                    r[Col::pid_with_namespace as usize].clone(),
                )
            })
            .collect();
        let pid = Value::Integer(c.pid());
        assert_eq!(
            got,
            [
                (t("/data/file.txt"), Value::Integer(0), pid.clone()),
                (t("/data/hit.bin"), Value::Integer(1), pid),
            ]
        );
        // The rule file exists only inside the root: on the host the same query has none.
        let host_rows = scan(&[
            (Col::path, Op::Eq, "/data/hit.bin"),
            (Col::sigfile, Op::Eq, "/etc/rules.yar"),
        ]);
        assert!(host_rows.is_empty(), "{host_rows:?}");
    }

    #[test]
    fn rule_file_with_several_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let rules = tmp.path().join("rules.yar");
        fs::write(
            &rules,
            r#"
rule elf_magic { condition: uint32(0) == 0x464c457f }
rule has_marker : found { strings: $m = "marker-e91" $h = { 6D 61 72 6B } condition: $m and $h }
rule never { strings: $z = "zzzz-never-there" condition: $z }
"#,
        )
        .unwrap();
        let data = tmp.path().join("data.bin");
        let mut content = b"\x7fELF".to_vec();
        content.extend_from_slice(b"....marker-e91");
        fs::write(&data, &content).unwrap();
        let (r, d) = (rules.to_str().unwrap(), data.to_str().unwrap());
        let rows = scan(&[(Col::path, Op::Eq, d), (Col::sigfile, Op::Eq, r)]);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row[Col::matches as usize], t("elf_magic,has_marker"));
        assert_eq!(row[Col::count as usize], Value::Integer(2));
        assert_eq!(row[Col::strings as usize], t("$m:8,$h:8"));
        assert_eq!(row[Col::tags as usize], t("found"));
        assert_eq!(row[Col::sigfile as usize], t(r));
        // Both sources at once: one row per source; a missing rule file adds none.
        let rows = scan(&[
            (Col::path, Op::Eq, d),
            (Col::sigfile, Op::Eq, r),
            (Col::sigfile, Op::Eq, "/nonexistent/rules.yar"),
            (Col::sigrule, Op::Eq, RULE),
        ]);
        assert_eq!(rows.len(), 2);
    }

    #[test]
    fn through_sqlite_with_the_alias() {
        use oxquery_engine::{Engine, TableFilter};
        use oxquery_table::InstanceInfo;
        let engine =
            Engine::new(&[&TABLE], &TableFilter::default(), InstanceInfo::default()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let hit = tmp.path().join("hit");
        fs::write(&hit, b"needle-7f3a").unwrap();
        let rules = tmp.path().join("r.yar");
        fs::write(&rules, RULE).unwrap();
        // The alias is a view of the visible columns: sigfile works through it.
        let out = engine
            .query(&format!(
                "SELECT matches, count FROM yara WHERE path = '{}' AND sigfile = '{}'",
                hit.display(),
                rules.display()
            ))
            .unwrap();
        assert_eq!(out.rows, vec![vec![t("needle_rule"), Value::Integer(1)]]);
        // sigrule is hidden, so it is given to yara_file itself.
        let out = engine
            .query(&format!(
                "SELECT matches, strings FROM yara_file WHERE path = '{}' AND sigrule = '{}'",
                hit.display(),
                RULE.replace('\'', "''")
            ))
            .unwrap();
        assert_eq!(out.rows, vec![vec![t("needle_rule"), t("$n:0")]]);
        let err = engine
            .query("SELECT * FROM yara_file")
            .unwrap_err()
            .to_string();
        assert!(err.contains("required"), "{err}");
    }
}
