//! osqueryi loads the config as osqueryd does: `osquery_schedule` and `osquery_packs`
//! show its queries, and `--config_check`, `--config_dump`, `--database_dump` and
//! `--config_plugin` behave as in the daemon.

mod shell_support;

use shell_support::run;
use std::path::Path;

const CONFIG: &str = r#"{
  "options": {"schedule_splay_percent": 0},
  "schedule": {"uptime_now": {"query": "SELECT total_seconds FROM uptime", "interval": 60}},
  "packs": {
    "inline": {"queries": {"one": {"query": "SELECT 1 AS one", "interval": 30}}},
    "elsewhere": {"platform": "windows", "queries": {"two": {"query": "SELECT 2", "interval": 5}}}
  }
}
"#;

/// A temp dir holding `osquery.conf` with `text`.
fn config_dir(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("osquery.conf");
    std::fs::write(&path, text).unwrap();
    let flag = format!("--config_path={}", path.display());
    (dir, flag)
}

fn args<'a>(config: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    // An empty flagfile keeps the host's default one out of the test.
    let mut all = vec!["--flagfile=/dev/null", config];
    all.extend_from_slice(more);
    all
}

#[test]
fn the_shell_shows_the_configured_schedule_and_packs() {
    let (_dir, config) = config_dir(CONFIG);
    let r = run(&args(
        &config,
        &[
            "--list",
            "select name, query, interval, executions from osquery_schedule order by name",
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The Windows pack does not apply here, so its query is not scheduled.
    assert_eq!(
        r.stdout,
        "name|query|interval|executions\n\
         pack_inline_one|SELECT 1 AS one|30|0\n\
         uptime_now|SELECT total_seconds FROM uptime|60|0\n"
    );
    let r = run(&args(
        &config,
        &[
            "--list",
            "select name, platform, active from osquery_packs order by name",
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "name|platform|active\nelsewhere|windows|0\ninline||1\nmain||1\n"
    );
    // Without a config there is nothing, and nothing to say about it.
    let r = run(&[
        "--flagfile=/dev/null",
        "--config_path=/nonexistent/osquery.conf",
        "select count(*) from osquery_schedule",
    ]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert!(r.stdout.contains("| 0 "), "{}", r.stdout);
}

#[test]
fn config_check_and_config_dump_work_in_the_shell() {
    let (dir, config) = config_dump_fixture();
    let r = run(&args(&config, &["--config_check"]));
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    let r = run(&args(&config, &["--config_dump"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        format!(
            "{{\"{}\": {CONFIG}}}\n",
            dir.path().join("osquery.conf").display()
        )
    );
    let r = run(&[
        "--flagfile=/dev/null",
        "--config_path=/nonexistent/osquery.conf",
        "--config_check",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Error reading config: config file does not exist: /nonexistent/osquery.conf\n"
    );
}

fn config_dump_fixture() -> (tempfile::TempDir, String) {
    config_dir(CONFIG)
}

#[test]
fn an_unknown_config_plugin_stops_the_shell() {
    let r = run(&["--flagfile=/dev/null", "--config_plugin=nope", "select 1"]);
    assert_eq!(r.code, 78);
    assert!(r.stdout.is_empty());
    assert!(
        r.stderr.contains("Cannot activate nope config plugin"),
        "{}",
        r.stderr
    );
}

#[test]
fn database_dump_in_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    // The shell's default database is ephemeral: nothing stored, exit 0.
    let r = run(&["--flagfile=/dev/null", "--database_dump"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("queries["), "{}", r.stdout);
    // A database path given on the command line is opened (created if new) and dumped.
    let db = dir.path().join("new").join("shell.db");
    let r = run(&[
        "--flagfile=/dev/null",
        &format!("--database_path={}", db.display()),
        "--database_dump",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(Path::new(&db).exists());
    assert_eq!(r.stdout, "configurations[results_version]: 2\n");
}

#[test]
fn the_configs_automatic_tables_and_views_exist_in_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("numbers.db");
    // An SQLite file written by another program (Python's sqlite3 module).
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); \
             c.executescript('CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (7), (11);'); \
             c.commit()",
        )
        .arg(&db)
        .status()
        .expect("python3 runs (CI installs it)");
    assert!(status.success());
    let text = format!(
        r#"{{
  "auto_table_construction": {{
    "test_atc": {{"query": "SELECT n AS a_number FROM t", "path": "{}", "columns": ["a_number"], "platform": "linux"}}
  }},
  "views": {{"big_numbers": "SELECT a_number FROM test_atc WHERE CAST(a_number AS INTEGER) > 8"}}
}}"#,
        db.display()
    );
    let (_conf_dir, config) = config_dir(&text);
    let r = run(&args(
        &config,
        &["--list", "select a_number from test_atc order by a_number"],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "a_number\n11\n7\n");
    let r = run(&args(&config, &["--list", "select * from big_numbers"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "a_number\n11\n");
    let r = run(&args(&config, &[".tables test_"]));
    assert_eq!(r.stdout, "  => test_atc\n");
}

#[test]
fn yara_sig_group_scans_with_the_configs_signature_group() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("group.yar");
    std::fs::write(
        &rules,
        r#"rule grouped_rule { strings: $g = "grouped-5c1e" condition: $g }"#,
    )
    .unwrap();
    let target = dir.path().join("target.txt");
    std::fs::write(&target, "xx grouped-5c1e xx").unwrap();
    let text = format!(
        r#"{{"yara": {{"signatures": {{"sig_group_1": ["{}"]}}}}}}"#,
        rules.display()
    );
    let (_conf_dir, config) = config_dir(&text);
    let sql = format!(
        "select sig_group, sigfile, matches, count from yara \
         where path = '{}' and sig_group = 'sig_group_1'",
        target.display()
    );
    let r = run(&args(&config, &["--list", &sql]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "sig_group|sigfile|matches|count\nsig_group_1||grouped_rule|1\n"
    );
}
