//! `--enable_foreign` in both programs (issue 10): the other platforms' tables are there
//! with the flag, in the shell, the daemon's workers and `--config_check`, and absent
//! without it. What each table declares is tested in `oxquery_tables::foreign`.

#[allow(dead_code)]
mod daemon_support;
mod shell_support;

use daemon_support::{Sandbox, wait_until};
use shell_support::{ok, run};
use std::time::Duration;

/// How many tables the data declares, read from the data itself.
fn foreign_count() -> usize {
    let data: serde_json::Value =
        serde_json::from_str(include_str!("../../tables/data/foreign_tables.json")).unwrap();
    data["tables"].as_array().unwrap().len()
}

const COUNT_TABLES: &str = "select count(*) from osquery_registry where registry = 'table'";

#[test]
fn the_shell_serves_foreign_tables_only_with_the_flag() {
    let count = |extra: &[&str]| -> usize {
        let mut args = vec!["--flagfile=/dev/null", "--list"];
        args.extend_from_slice(extra);
        args.push(COUNT_TABLES);
        ok(&args).trim().lines().last().unwrap().parse().unwrap()
    };
    let before = count(&[]);
    let after = count(&["--enable_foreign"]);
    assert_eq!(after, before + foreign_count());

    // Windows' `programs`, its alias and macOS' `apps`: prepared, no rows.
    for sql in [
        "select * from programs",
        "select name from programs_and_features",
        "select count(*) from apps",
    ] {
        let out = ok(&["--flagfile=/dev/null", "--enable_foreign", "--list", sql]);
        let expected = if sql.contains("count") {
            "count(*)\n0\n"
        } else {
            ""
        };
        assert_eq!(out, expected, "{sql}");
        let r = run(&["--flagfile=/dev/null", sql]);
        assert_eq!(r.code, 1, "{sql}");
        assert!(r.stderr.contains("no such table"), "{sql}: {}", r.stderr);
    }
}

#[test]
fn the_daemon_schedules_and_checks_foreign_queries_with_the_flag() {
    let s = Sandbox::new();
    s.write_config(
        r#"{"schedule": {
  "windows": {"query": "SELECT name, version FROM programs", "interval": 1},
  "registered": {"query": "SELECT count(*) AS c FROM osquery_registry WHERE name IN ('programs', 'apps')", "interval": 1}
}}"#,
    );
    let check = s.run(&["--config_check"]);
    assert_eq!(check.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&check.stderr).into_owned();
    assert!(stderr.contains("no such table: programs"), "{stderr}");
    let check = s.run(&["--config_check", "--enable_foreign"]);
    assert_eq!(check.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&check.stderr), "");

    // The workers run both queries: the count says both tables are registered.
    let mut d = s.start("run", &["--enable_foreign"]);
    assert!(
        wait_until(Duration::from_secs(15), || !s
            .results_of("registered")
            .is_empty()),
        "{}",
        d.stderr_text()
    );
    let line = serde_json::Value::Object(s.results_of("registered")[0].clone()).to_string();
    assert!(line.contains(r#""c":"2""#), "{line}");
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    assert!(
        !d.stderr_text().contains("no such table"),
        "{}",
        d.stderr_text()
    );
}
