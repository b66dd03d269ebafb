//! osqueryd driven as a process: the one-shot modes, result and status logs, the
//! pidfile, reloads, the store across restarts, and `kill -9` at random moments. Each
//! test runs in its own temp dir; daemons are killed by a guard even when a test fails.

mod daemon_support;

use daemon_support::{Sandbox, replay, stored_counter, stored_rows, wait_until};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// Changes every second: a differential result with a new counter each run.
const MOD3: &str = "SELECT unix_time % 3 AS m FROM time";

fn config(schedule: &str, extra: &str) -> String {
    format!(
        r#"{{
  "options": {{"schedule_splay_percent": 0}},
  "schedule": {{ {schedule} }}{extra}
}}
"#
    )
}

fn query(name: &str, sql: &str) -> String {
    format!(r#""{name}": {{"query": "{sql}", "interval": 1}}"#)
}

const LONG: Duration = Duration::from_secs(15);

// ---- one-shot modes ----

#[test]
fn config_check_exit_codes_and_messages() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    let good = s.run(&["--config_check"]);
    assert_eq!(good.status.code(), Some(0), "{good:?}");
    assert!(good.stderr.is_empty(), "{good:?}");

    let missing = s.path().join("absent.conf");
    let out = s.run(&[
        "--config_check",
        &format!("--config_path={}", missing.display()),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "Error reading config: config file does not exist: {}\n",
            missing.display()
        )
    );

    s.write_config("{\"schedule\": {\"a\": ");
    let out = s.run(&["--config_check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("Error reading config: ")
            && err.contains(&s.config().display().to_string())
            && err.contains("invalid JSON"),
        "{err}"
    );

    s.write_config(r#"{"schedule": {"a": {"query": "SELECT 1", "interval": "often"}}}"#);
    let out = s.run(&["--config_check"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("Error reading config: ")
            && err.contains("schedule.a.interval")
            && err.contains("integer"),
        "{err}"
    );

    // The daemon itself starts on the same config, as osquery does: with the same
    // message as a warning, and nothing scheduled.
    let mut d = s.start("bad", &[]);
    assert!(
        d.stderr_text().contains("schedule.a.interval"),
        "{}",
        d.stderr_text()
    );
    assert!(
        d.stderr_text()
            .contains("osqueryd started: 0 scheduled queries")
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
}

#[test]
fn config_dump_prints_every_source() {
    let s = Sandbox::new();
    let main = config(&query("mod3", MOD3), "");
    s.write_config(&main);
    let dir = s.path().join("osquery.conf.d");
    std::fs::create_dir(&dir).unwrap();
    let extra =
        "// a comment stays in the dump\n{\"decorators\": {\"load\": [\"SELECT 2 AS two\"]}}\n";
    std::fs::write(dir.join("extra.conf"), extra).unwrap();
    let out = s.run(&["--config_dump"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Sources come in path order: the main file sorts before its `.d` directory.
    let expected = format!(
        "{{\"{}\": {main}}}\n{{\"{}\": {extra}}}\n",
        s.config().display(),
        dir.join("extra.conf").display()
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
}

// ---- a running daemon ----

const EVENT_KEYS: [&str; 10] = [
    "name",
    "hostIdentifier",
    "calendarTime",
    "unixTime",
    "epoch",
    "counter",
    "numerics",
    "decorations",
    "columns",
    "action",
];

const SNAPSHOT_KEYS: [&str; 10] = [
    "snapshot",
    "action",
    "name",
    "hostIdentifier",
    "calendarTime",
    "unixTime",
    "epoch",
    "counter",
    "numerics",
    "decorations",
];

#[test]
fn schedule_logs_results_snapshots_and_stops_on_sigterm() {
    let s = Sandbox::new();
    let schedule = [
        query("mod3", MOD3),
        r#""snap": {"query": "SELECT 'a' AS letter, 2 AS two", "interval": 1, "snapshot": true}"#
            .to_owned(),
        // A config view, read by a query that runs on a worker's engine.
        query("viewed", "SELECT seven FROM sevens"),
    ]
    .join(",");
    s.write_config(&config(
        &schedule,
        r#", "decorators": {"load": ["SELECT 'oxq' AS deco_source"]},
  "views": {"sevens": "SELECT 7 AS seven"}"#,
    ));
    let mut d = s.start("run", &[]);
    // The worker writes the status log (the watcher writes only to stderr).
    let worker = d.worker_pid().expect("a worker");
    assert!(
        wait_until(LONG, || s.counters_of("mod3").len() >= 3
            && s.lines(&s.snapshots_log()).len() >= 2),
        "results: {:?}\n{}",
        s.results(),
        d.stderr_text()
    );
    let (status, took) = d.terminate(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", d.stderr_text());
    assert!(took < Duration::from_secs(3), "stop took {took:?}");

    let results = s.results();
    for line in &results {
        let keys: Vec<&str> = line.keys().map(String::as_str).collect();
        assert_eq!(keys, EVENT_KEYS, "{line:?}");
        assert_eq!(
            line["decorations"],
            serde_json::json!({"deco_source": "oxq"})
        );
        assert_eq!(line["epoch"], 0);
        assert_eq!(line["numerics"], false);
        let calendar = line["calendarTime"].as_str().unwrap();
        assert!(
            calendar.ends_with(" UTC") && calendar.split_whitespace().count() == 6,
            "{calendar}"
        );
        assert!(line["unixTime"].as_i64().unwrap() > 1_600_000_000);
    }
    let mod3 = s.results_of("mod3");
    let replayed = replay(&mod3).unwrap();
    assert!(replayed.last_counter.unwrap() >= 2);
    // After the graceful stop the log holds everything the store recorded.
    let dump = s.dump();
    assert_eq!(replayed.rows, stored_rows(&dump, "mod3"));
    assert_eq!(replayed.last_counter, Some(stored_counter(&dump, "mod3")));

    let viewed = s.results_of("viewed");
    assert_eq!(viewed.len(), 1, "{viewed:?}\n{}", s.status_log("INFO"));
    assert_eq!(viewed[0]["columns"], serde_json::json!({"seven": "7"}));
    assert_eq!(viewed[0]["action"], "added");

    let snaps = s.lines(&s.snapshots_log());
    for line in &snaps {
        let keys: Vec<&str> = line.keys().map(String::as_str).collect();
        assert_eq!(keys, SNAPSHOT_KEYS, "{line:?}");
        assert_eq!(line["action"], "snapshot");
        assert_eq!(line["counter"], 0);
        assert_eq!(
            line["snapshot"],
            serde_json::json!([{"letter": "a", "two": "2"}])
        );
    }

    let mode = std::fs::metadata(s.results_log())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    let info = std::fs::read_link(s.logs().join("osqueryd.INFO")).expect("INFO symlink");
    let info = info.to_string_lossy();
    assert!(
        info.starts_with("osqueryd.INFO.") && info.ends_with(&format!(".{worker}")),
        "{info}"
    );
    assert!(s.status_log("INFO").contains("osqueryd started"));
}

#[test]
fn a_second_daemon_on_the_same_pidfile_is_refused() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    let mut first = s.start("first", &[]);
    let listing = || {
        let mut names: Vec<(String, Option<std::path::PathBuf>)> = std::fs::read_dir(s.logs())
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_link(&p).ok(),
                )
            })
            .collect();
        names.sort();
        names
    };
    let before = listing();
    assert!(
        before
            .iter()
            .any(|(n, link)| n == "osqueryd.INFO" && link.is_some())
    );

    let mut second = s.spawn("second", &[]);
    assert!(
        wait_until(LONG, || second.exited().is_some()),
        "the second daemon kept running"
    );
    assert_eq!(second.exited().unwrap().code(), Some(78));
    let err = second.stderr_text();
    assert!(
        err.contains(&s.pidfile().display().to_string()),
        "message names the pidfile: {err}"
    );
    // The refused daemon made no status log of its own and moved no symlink.
    assert_eq!(listing(), before);
    assert_eq!(
        std::fs::read_to_string(s.pidfile()).unwrap(),
        first.pid().to_string()
    );
    assert!(first.exited().is_none(), "the first daemon died");
    // SIGINT stops gracefully too.
    let (status, _) = first.stop_with(libc::SIGINT, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
}

#[test]
fn force_takes_the_pidfile_from_a_running_daemon() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    let mut first = s.start("first", &[]);
    // As osquery: the daemon holding the pidfile is killed and the new one runs.
    let mut second = s.start("second", &["--force"]);
    assert!(
        wait_until(LONG, || first.exited().is_some()),
        "the first daemon kept running"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(first.exited().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(
        std::fs::read_to_string(s.pidfile()).unwrap(),
        second.pid().to_string()
    );
    assert!(
        second.stderr_text().contains(&format!(
            "Killing the running osqueryd (pid {})",
            first.pid()
        )),
        "{}",
        second.stderr_text()
    );
    // Its worker followed its watcher out.
    let pgrp = first.pid();
    assert!(wait_until(LONG, || daemon_support::group_members(pgrp).is_empty()));
    let (status, _) = second.terminate(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{}", second.stderr_text());
}

#[test]
fn disable_decorators_leaves_every_line_undecorated() {
    let s = Sandbox::new();
    s.write_config(&config(
        &query("mod3", MOD3),
        r#", "decorators": {
    "load": ["SELECT 'oxq' AS deco_load"],
    "always": ["SELECT 'oxq' AS deco_always"],
    "interval": {"60": ["SELECT 'oxq' AS deco_interval"]}
  }"#,
    ));
    // The same config decorates every line without the flag.
    let mut d = s.start("decorated", &[]);
    assert!(wait_for_lines(&s, "mod3", 1), "{}", d.stderr_text());
    let _ = d.terminate(Duration::from_secs(5));
    let decorated = s.results_of("mod3");
    assert!(
        decorated
            .iter()
            .all(|l| l["decorations"]["deco_load"] == "oxq"
                && l["decorations"]["deco_always"] == "oxq"),
        "{decorated:?}"
    );
    let before = decorated.len();
    let mut d = s.start("undecorated", &["--disable_decorators"]);
    assert!(
        wait_for_lines(&s, "mod3", before + 1),
        "{}",
        d.stderr_text()
    );
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    let lines = s.results_of("mod3");
    for line in &lines[before..] {
        assert!(!line.contains_key("decorations"), "{line:?}");
    }
}

/// A daemon that detached: killed with its whole session if the test fails before it
/// stops it.
struct Detached(i32);

impl Drop for Detached {
    fn drop(&mut self) {
        // SAFETY: killpg on the session (and group) the detached daemon leads.
        unsafe { libc::killpg(self.0, libc::SIGKILL) };
    }
}

#[test]
fn daemonize_detaches_and_keeps_running_and_logging() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    let asked = std::time::Instant::now();
    // `output` waits for stdout and stderr to close: it returns only if the daemon let
    // go of them.
    let out = std::process::Command::new(daemon_support::BIN)
        .args(s.args())
        .arg("--daemonize")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty() && out.stdout.is_empty(), "{out:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );

    // The detached process takes the pidfile with its own pid.
    let mut pid = 0;
    assert!(
        wait_until(LONG, || {
            pid = std::fs::read_to_string(s.pidfile())
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            pid > 0
        }),
        "no pidfile"
    );
    let _guard = Detached(pid);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // It leads its own session (setsid), so no terminal's hang-up reaches it.
    assert_eq!(fields[3], pid.to_string(), "session of {pid}: {stat}");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        std::path::Path::new("/")
    );
    for fd in 0..3 {
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap(),
            std::path::Path::new("/dev/null"),
            "fd {fd}"
        );
    }
    // The watchdog still starts its worker, and the daemon keeps logging.
    assert!(
        wait_until(LONG, || daemon_support::children(pid)
            .into_iter()
            .any(daemon_support::is_worker)),
        "no worker"
    );
    assert!(wait_for_lines(&s, "mod3", 2), "{:?}", s.results());
    assert!(s.status_log("INFO").contains("osqueryd started"));

    // SIGTERM stops it as any daemon: the session empties and the pidfile is free.
    // SAFETY: kill(2) on the daemon's pid, read from its pidfile.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(
        wait_until(LONG, || daemon_support::group_members(pid).is_empty()),
        "the detached daemon did not stop"
    );
}

#[test]
fn install_and_uninstall_say_they_are_windows_only() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    for (flag, verb) in [("--install", "install"), ("--uninstall", "uninstall")] {
        let out = s.run(&[flag]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!(
                "The {flag} service flag only applies to Windows platforms\n\
                 Unable to {verb} the osqueryd service\n"
            )
        );
    }
    // Nothing was started: no pidfile, no log.
    assert!(!s.pidfile().exists());
    assert!(s.results().is_empty());
}

/// Waits until `name` has logged more than `n` lines.
fn wait_for_lines(s: &Sandbox, name: &str, n: usize) -> bool {
    wait_until(LONG, || s.results_of(name).len() > n)
}

#[test]
fn sighup_reloads_and_a_bad_config_keeps_the_old_one() {
    let s = Sandbox::new();
    let views = |v: u32| format!(r#", "views": {{"version_view": "SELECT {v} AS version"}}"#);
    let base = [
        query("mod3", MOD3),
        query("viewed", "SELECT version FROM version_view"),
    ];
    s.write_config(&config(&base.join(","), &views(1)));
    let mut d = s.start("run", &[]);
    assert!(wait_for_lines(&s, "mod3", 0));

    // A new query and a changed view.
    let mut more = base.to_vec();
    more.push(query("fresh", "SELECT 'new' AS fresh"));
    s.write_config(&config(&more.join(","), &views(2)));
    d.signal(libc::SIGHUP);
    assert!(
        wait_for_lines(&s, "fresh", 0),
        "no line of the new query\n{}",
        d.stderr_text()
    );
    assert!(
        wait_until(LONG, || s
            .results_of("viewed")
            .iter()
            .any(|l| l["columns"]["version"] == "2" && l["action"] == "added")),
        "the view change did not reach the query: {:?}\n{}",
        s.results_of("viewed"),
        d.stderr_text()
    );

    s.write_config("{\"schedule\": {");
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(LONG, || s.status_log("ERROR").contains("invalid JSON")),
        "no error logged\n{}",
        d.stderr_text()
    );
    assert!(s.status_log("WARNING").contains("invalid JSON"));
    let logged = s.results_of("mod3").len();
    assert!(
        wait_for_lines(&s, "mod3", logged + 1),
        "the old schedule stopped"
    );
    assert!(d.exited().is_none());
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    replay(&s.results_of("mod3")).unwrap();
}

#[test]
fn config_refresh_reloads_without_a_signal() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    let mut d = s.start("run", &["--config_refresh=1"]);
    assert!(wait_for_lines(&s, "mod3", 0));
    let both = [query("mod3", MOD3), query("fresh", "SELECT 'new' AS fresh")];
    s.write_config(&config(&both.join(","), ""));
    assert!(
        wait_for_lines(&s, "fresh", 0),
        "no line of the new query\n{}",
        d.stderr_text()
    );

    s.write_config("not json at all");
    assert!(
        wait_until(LONG, || s.status_log("ERROR").contains("invalid JSON")),
        "no error logged\n{}",
        d.stderr_text()
    );
    let logged = s.results_of("mod3").len();
    assert!(
        wait_for_lines(&s, "mod3", logged + 1),
        "the old schedule stopped"
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
}

#[test]
fn database_dump_and_schedule_statistics() {
    let s = Sandbox::new();
    let schedule = [
        query("mod3", MOD3),
        query(
            "stats",
            "SELECT name, executions FROM osquery_schedule WHERE name = 'mod3'",
        ),
    ];
    s.write_config(&config(&schedule.join(","), ""));
    let mut d = s.start("run", &[]);
    assert!(
        wait_until(LONG, || s.counters_of("stats").len() >= 3),
        "{:?}",
        s.results()
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));

    let out = s.run(&["--database_dump"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    let counter = stored_counter(&s.dump(), "mod3");
    for expected in [
        format!("queries[mod3counter]: {counter}\n"),
        "queries[mod3epoch]: 0\n".to_owned(),
        format!("queries[query.mod3]: {MOD3}\n"),
        "configurations[interval.mod3]: 1:1\n".to_owned(),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in\n{text}");
    }
    assert!(text.contains("queries[mod3]: [{\"m\":"), "{text}");
    assert!(text.contains("query_performance[mod3]: "), "{text}");

    // Each change of `stats` is a new execution count of mod3, so they grow.
    let executions: Vec<u64> = s
        .results_of("stats")
        .iter()
        .filter(|l| l["action"] == "added")
        .map(|l| {
            l["columns"]["executions"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(
        executions.windows(2).all(|w| w[0] < w[1]) && executions.last() >= Some(&2),
        "{executions:?}"
    );
}

#[test]
fn osquery_registry_lists_the_daemons_own_plugins_and_which_are_in_use() {
    let s = Sandbox::new();
    let sql = "SELECT registry, name, owner_uuid, internal, active FROM osquery_registry \
               WHERE registry IN ('config', 'logger', 'distributed', 'enroll', \
               'numeric_monitoring', 'sql')";
    s.write_config(&config(&query("plugins", sql), ""));
    // The stdout logger takes the status lines `start` waits for: wait for results.
    let mut d = s.spawn("run", &["--logger_plugin=filesystem,stdout"]);
    let mut expected = vec![
        ("config", "filesystem", "1"),
        ("config", "tls", "0"),
        ("distributed", "tls", "0"),
        ("enroll", "tls", "0"),
        ("logger", "aws_firehose", "0"),
        ("logger", "aws_kinesis", "0"),
        ("logger", "filesystem", "1"),
        ("logger", "stdout", "1"),
        ("logger", "syslog", "0"),
        ("logger", "tls", "0"),
        ("numeric_monitoring", "filesystem", "0"),
        ("sql", "sql", "1"),
    ];
    if cfg!(feature = "kafka") {
        expected.push(("logger", "kafka_producer", "0"));
    }
    expected.sort_unstable();
    assert!(
        wait_until(LONG, || s.results_of("plugins").len() >= expected.len()),
        "{}",
        d.stderr_text()
    );
    let _ = d.terminate(Duration::from_secs(5));
    let mut listed: Vec<(String, String, String)> = Vec::new();
    for line in s.results_of("plugins") {
        let c = &line["columns"];
        assert_eq!(c["owner_uuid"], "0", "{line:?}");
        let internal = if c["registry"] == "sql" { "1" } else { "0" };
        assert_eq!(c["internal"], internal, "{line:?}");
        let text = |k: &str| c[k].as_str().unwrap().to_owned();
        listed.push((text("registry"), text("name"), text("active")));
    }
    listed.sort_unstable();
    let listed: Vec<(&str, &str, &str)> = listed
        .iter()
        .map(|(r, n, a)| (r.as_str(), n.as_str(), a.as_str()))
        .collect();
    assert_eq!(listed, expected);
}

#[test]
fn disable_database_leaves_no_database_file() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    let mut d = s.start("run", &["--disable_database"]);
    assert!(wait_until(LONG, || s.counters_of("mod3").len() >= 2));
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    replay(&s.results_of("mod3")).unwrap();
    let leftovers: Vec<String> = std::fs::read_dir(s.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("osquery.db"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_restart_continues_the_differential() {
    let s = Sandbox::new();
    let schedule = [query("mod3", MOD3), query("constant", "SELECT 'same' AS v")];
    s.write_config(&config(&schedule.join(","), ""));
    let mut d = s.start("first", &[]);
    assert!(wait_until(LONG, || s.counters_of("mod3").len() >= 2));
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    let first_run = s.counters_of("mod3").len();

    let mut d = s.start("second", &[]);
    assert!(wait_until(LONG, || s.counters_of("mod3").len() >= first_run + 2));
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));

    let replayed = replay(&s.results_of("mod3")).unwrap();
    let dump = s.dump();
    assert_eq!(replayed.rows, stored_rows(&dump, "mod3"));
    assert_eq!(replayed.last_counter, Some(stored_counter(&dump, "mod3")));
    // An unchanged result is logged once, on its first run ever.
    let constant = s.results_of("constant");
    assert_eq!(constant.len(), 1, "{constant:?}");
    assert_eq!(constant[0]["counter"], 0);
}

#[test]
fn a_large_result_is_logged_whole_and_the_schedule_goes_on() {
    // 60,000 rows took 157 s to log before (the store rewrote one large value per run
    // under its lock, and every other query waited); now the first run is logged whole,
    // the unchanged second run logs nothing, and `mod3` beside it keeps running.
    const ROWS: usize = 60_000;
    let s = Sandbox::new();
    let big = format!(
        "WITH RECURSIVE c(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM c LIMIT {ROWS}) \
         SELECT v AS a, 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEF' AS z FROM c"
    );
    s.write_config(&config(
        &[
            query("mod3", MOD3),
            format!(r#""big": {{"query": "{big}", "interval": 2}}"#),
        ]
        .join(","),
        "",
    ));
    let mut d = s.start("run", &["--verbose"]);
    let big_lines = || {
        let text = std::fs::read_to_string(s.results_log()).unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with("{\"name\":\"big\","))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(120), || big_lines() >= ROWS),
        "{} of {ROWS} lines\n{}",
        big_lines(),
        d.stderr_text()
    );
    // Two more runs of `big` (unchanged: nothing to log) while mod3 goes on.
    let runs = |d: &daemon_support::Daemon| {
        d.stderr_text()
            .matches("Executing scheduled query big:")
            .count()
    };
    let (seen, mod3) = (runs(&d), s.counters_of("mod3").len());
    assert!(
        wait_until(Duration::from_secs(60), || runs(&d) >= seen + 2
            && s.counters_of("mod3").len() >= mod3 + 2),
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(Duration::from_secs(30)).0.code(), Some(0));
    let lines = s.results_of("big");
    assert_eq!(lines.len(), ROWS, "logged once, whole");
    let replayed = replay(&lines).unwrap();
    let dump = s.dump();
    assert_eq!(replayed.rows, stored_rows(&dump, "big"));
    assert_eq!(stored_counter(&dump, "big"), 0);
    let mut values: Vec<u64> = lines
        .iter()
        .map(|l| l["columns"]["a"].as_str().unwrap().parse().unwrap())
        .collect();
    values.sort_unstable();
    assert!(values.iter().copied().eq(1..=ROWS as u64));
}

// ---- kill -9 ----

/// The issue's proof: SIGKILL the daemon at random moments, restart it on the same
/// database and logs each time, and check that the result log replays to exactly the
/// stored state: nothing lost, nothing logged twice.
#[test]
fn kill_9_at_random_moments_loses_and_duplicates_nothing() {
    const KILLS: usize = 30;
    let s = Sandbox::new();
    let names = ["mod3", "window", "pairs", "bulk"];
    // The kills land inside runs on purpose: opt out of deny-listing the query that was
    // running, which would otherwise stop it for a day after the restart.
    let query = |name: &str, sql: &str| {
        format!(r#""{name}": {{"query": "{sql}", "interval": 1, "denylist": false}}"#)
    };
    let schedule = [
        query("mod3", MOD3),
        // Five rows sliding by one each second: one removed and one added per change.
        query(
            "window",
            "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 4) \
             SELECT (x + unix_time) % 7 AS v FROM c, time",
        ),
        query(
            "pairs",
            "SELECT unix_time % 4 AS a, unix_time % 6 AS b FROM time \
             UNION ALL SELECT 'fixed', 'row'",
        ),
        // 500 rows, all replaced every second: recording and writing them takes long
        // enough that some kills land between the two.
        query(
            "bulk",
            "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 499) \
             SELECT x, (x * 7 + unix_time) % 100000 AS v FROM c, time",
        ),
        // Snapshots go through the same outbox: none may be written twice.
        r#""clock": {"query": "SELECT unix_time AS t FROM time", "interval": 1, "snapshot": true, "denylist": false}"#
            .to_owned(),
    ];
    s.write_config(&config(&schedule.join(","), ""));

    eprint!("kill -9 ");
    let mut rng = daemon_support::Rng::new(oxquery_test_support::seed("OXQUERY_KILL_SEED"));
    let mut after_start = 0;
    // Kills that left lines recorded but not yet delivered, and that cut a delivery
    // between the file write and its bookkeeping: the windows the outbox exists for.
    let mut undelivered = 0;
    let mut in_flight = 0;
    let snapshot_lines =
        || std::fs::read_to_string(s.snapshots_log()).map_or(0, |t| t.lines().count());
    for i in 0..KILLS {
        let snapshots_before = snapshot_lines();
        let mut d = s.spawn(&format!("run{i}"), &[]);
        if i % 2 == 0 {
            // Half the runs live until they have logged a snapshot, however slow the
            // machine: every second run is sure to reach the logger.
            assert!(
                wait_until(LONG, || snapshot_lines() > snapshots_before),
                "run {i} logged no snapshot\n{}",
                d.stderr_text()
            );
        }
        // The daemon's life before the kill, on purpose a random time (the point of the
        // test): kills land in start-up, in runs and between them.
        std::thread::sleep(Duration::from_millis(100 + rng.below(1400)));
        if i % 2 == 1 {
            // Half the kills aim at the first 40 ms of a second, where the daemon
            // records its runs and the logger delivers them (measured: the 500-row
            // query's lines reach the file about 25 ms after the second starts).
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            let to_next = Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()));
            std::thread::sleep(to_next + Duration::from_millis(rng.below(40)));
        }
        if let Some(status) = d.exited() {
            panic!("run {i} exited by itself: {status}\n{}", d.stderr_text());
        }
        after_start += usize::from(d.stderr_text().contains("osqueryd started"));
        d.kill9();
        if s.database().exists() {
            let logs = s.dump().remove("logs").unwrap_or_default();
            undelivered += usize::from(logs.keys().any(|k| k.starts_with("line.")));
            in_flight += usize::from(logs.keys().any(|k| k.starts_with("batch.")));
        }
    }
    // Most kills must land in a running daemon, not in its start-up.
    assert!(
        after_start >= KILLS / 2,
        "{after_start} of {KILLS} kills after start-up"
    );
    // Counting counters by text keeps polling cheap on a large log.
    let last_counters = || {
        let text = std::fs::read_to_string(s.results_log()).unwrap_or_default();
        names.map(|n| {
            let tag = format!("{{\"name\":\"{n}\",");
            text.lines()
                .filter(|l| l.starts_with(&tag))
                .filter_map(|l| {
                    l.split("\"counter\":")
                        .nth(1)?
                        .split(',')
                        .next()?
                        .parse()
                        .ok()
                })
                .max()
                .unwrap_or(0u64)
        })
    };
    let before = last_counters();
    let mut d = s.start("final", &[]);
    assert!(
        wait_until(LONG, || last_counters()
            .iter()
            .zip(&before)
            .all(|(now, b)| *now >= b + 2)),
        "the final run logged nothing new\n{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));

    let dump = s.dump();
    let mut total = 0;
    for name in names {
        let lines = s.results_of(name);
        let replayed = replay(&lines).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(replayed.rows, stored_rows(&dump, name), "{name}");
        assert_eq!(
            replayed.last_counter,
            Some(stored_counter(&dump, name)),
            "{name}"
        );
        eprintln!(
            "{name}: {} lines, counters 0..={}",
            replayed.lines,
            replayed.last_counter.unwrap()
        );
        total += replayed.lines;
    }
    let snapshots: Vec<String> = std::fs::read_to_string(s.snapshots_log())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let distinct: std::collections::HashSet<&String> = snapshots.iter().collect();
    assert_eq!(
        distinct.len(),
        snapshots.len(),
        "a snapshot line written twice"
    );
    assert!(s.lines(&s.snapshots_log()).len() >= KILLS / 2);
    eprintln!("{} snapshot lines, none twice", snapshots.len());
    eprintln!(
        "{KILLS} kills ({after_start} after start-up; {undelivered} left lines undelivered, \
         {in_flight} a delivery in flight), {total} lines replayed, 0 lost, 0 duplicated"
    );
    // Every line is valid JSON with osquery's keys, also where a kill cut a write.
    // Without decorators there is no `decorations` key.
    let plain: Vec<&str> = EVENT_KEYS
        .into_iter()
        .filter(|k| *k != "decorations")
        .collect();
    for line in s.results() {
        let keys: Vec<&str> = line.keys().map(String::as_str).collect();
        assert_eq!(keys, plain);
    }
}

#[test]
fn a_failing_run_neither_diffs_nor_forgets_the_last_result() {
    let s = Sandbox::new();
    // Fails every odd second (`json` of bad text raises an SQL error); succeeds with
    // the same row every even one.
    let flaky =
        "SELECT CASE WHEN unix_time % 2 = 0 THEN 'kept' ELSE json('not json') END AS v FROM time";
    s.write_config(&config(
        &[query("mod3", MOD3), query("flaky", flaky)].join(","),
        "",
    ));
    let mut d = s.start("run", &[]);
    assert!(
        wait_until(LONG, || s.counters_of("mod3").len() >= 4
            && s.status_log("ERROR")
                .contains("Error executing scheduled query flaky")),
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    // An error is not an empty result: the row was added once and never removed.
    let lines = s.results_of("flaky");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["action"], "added");
    assert_eq!(lines[0]["columns"]["v"], "kept");
}

#[test]
fn sigterm_interrupts_a_long_query_without_logging_it_as_empty() {
    let s = Sandbox::new();
    let marker = s.path().join("fast");
    std::fs::write(&marker, "").unwrap();
    // One row while the marker exists; without it the query also counts to 10^9, which
    // takes far longer than the test.
    let slow = format!(
        "SELECT 'row' AS v WHERE EXISTS (SELECT 1 FROM file WHERE path = '{m}') \
         OR (WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c \
         WHERE x < 1000000000) SELECT count(*) FROM c) < 0",
        m = marker.display()
    );
    s.write_config(&config(
        &[query("mod3", MOD3), query("slow", &slow)].join(","),
        "",
    ));
    let mut d = s.start("run", &[]);
    assert!(wait_for_lines(&s, "slow", 0), "{}", d.stderr_text());
    std::fs::remove_file(&marker).unwrap();
    assert!(
        wait_until(LONG, || s
            .status_log("INFO")
            .contains("Scheduled query slow is still running")),
        "{}",
        d.stderr_text()
    );
    // The other worker keeps the schedule going meanwhile.
    let logged = s.results_of("mod3").len();
    assert!(wait_for_lines(&s, "mod3", logged));
    let (status, took) = d.terminate(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    assert!(took < Duration::from_secs(3), "stop took {took:?}");
    let lines = s.results_of("slow");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["action"], "added");
    let dump = s.dump();
    assert_eq!(stored_rows(&dump, "slow").len(), 1);
    assert_eq!(stored_counter(&dump, "slow"), 0);
}

#[test]
fn reloads_never_log_a_line_without_its_decorations() {
    let s = Sandbox::new();
    let decorated = |schedule: &[String]| {
        config(
            &schedule.join(","),
            r#", "decorators": {"load": ["SELECT 'oxq' AS deco_source"]}"#,
        )
    };
    let a = [query("mod3", MOD3)];
    let b = [query("mod3", MOD3), query("other", "SELECT 1 AS one")];
    s.write_config(&decorated(&a));
    let mut d = s.start("run", &[]);
    let reloads = || {
        s.status_log("INFO")
            .matches("Configuration changed")
            .count()
    };
    // Each reload lands on a scheduler tick, when the workers are recording results.
    for i in 0..6 {
        s.write_config(&decorated(if i % 2 == 0 { &b } else { &a }));
        d.signal(libc::SIGHUP);
        assert!(wait_until(LONG, || reloads() > i), "{}", d.stderr_text());
    }
    let logged = s.results_of("mod3").len();
    assert!(wait_for_lines(&s, "mod3", logged));
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    for line in s.results() {
        assert_eq!(
            line.get("decorations"),
            Some(&serde_json::json!({"deco_source": "oxq"})),
            "{line:?}"
        );
    }
}

/// Whether `pid` has a handler installed for `signal` (`SigCgt` in /proc).
fn catches(pid: i32, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

#[test]
fn a_sighup_during_start_up_does_not_kill_the_daemon() {
    let s = Sandbox::new();
    // A 3 MB config (an unknown top-level key is ignored) keeps the daemon parsing for
    // a while before it takes the pidfile.
    let padding = vec!["0"; 1_000_000].join(",");
    s.write_config(&config(
        &query("mod3", MOD3),
        &format!(r#", "padding": [{padding}]"#),
    ));
    // One process, and the watcher with its worker: the watcher catches the SIGHUP at
    // once and hands it on only when the worker, parsing the config meanwhile, has
    // its handlers.
    for (tag, extra) in [("alone", &["--disable_watchdog"][..]), ("watched", &[][..])] {
        let mut d = s.spawn(tag, extra);
        assert!(
            wait_until(LONG, || catches(d.pid(), libc::SIGHUP)
                || d.exited().is_some()),
            "{tag}: SIGHUP never handled"
        );
        if tag == "alone" {
            // The handlers are in place before the config is read, not only once
            // running.
            assert_ne!(
                std::fs::read_to_string(s.pidfile()).unwrap_or_default(),
                d.pid().to_string(),
                "the handler came after the pidfile"
            );
        }
        let before = s.counters_of("mod3").len();
        d.signal(libc::SIGHUP);
        assert!(
            wait_until(LONG, || s.counters_of("mod3").len() >= before + 2
                || d.exited().is_some()),
            "{tag}: {}",
            d.stderr_text()
        );
        assert!(
            d.exited().is_none(),
            "{tag}: the daemon died: {}",
            d.stderr_text()
        );
        assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    }
}

#[test]
fn auto_table_construction_reads_the_named_sqlite_files() {
    let s = Sandbox::new();
    // The database is written by Python's sqlite3 module, not by us.
    let db = s.path().join("app.db");
    let made = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1])\n\
             c.execute('CREATE TABLE downloads (target TEXT, bytes INTEGER)')\n\
             c.execute(\"INSERT INTO downloads VALUES ('/tmp/a.iso', 4096)\")\n\
             c.commit()",
            &db.display().to_string(),
        ])
        .status()
        .unwrap();
    assert!(made.success());
    let atc = format!(
        r#", "auto_table_construction": {{"app_downloads": {{
            "query": "SELECT target, bytes FROM downloads",
            "path": "{}/%.db", "columns": ["target", "bytes"], "platform": "linux"}}}}"#,
        s.path().display()
    );
    s.write_config(&config(
        &query("atc", "SELECT target, bytes, path FROM app_downloads"),
        &atc,
    ));
    let mut d = s.start("run", &[]);
    assert!(wait_until(LONG, || !s.results_of("atc").is_empty()));
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    let line = &s.results_of("atc")[0];
    let columns = line["columns"].as_object().unwrap();
    assert_eq!(columns["target"], "/tmp/a.iso");
    assert_eq!(columns["bytes"], "4096");
    assert_eq!(columns["path"], db.display().to_string().as_str());
    assert_eq!(line["action"], "added");
}

// ---- deny-listing a query that was running when the process died ----

/// One row; sleeps 30 s first while `marker` exists (far longer than the test).
fn slow_while(marker: &std::path::Path) -> String {
    format!(
        "SELECT 'ran' AS v, sleep(CASE WHEN EXISTS (SELECT 1 FROM file WHERE path = '{m}') \
         THEN 30 ELSE 0 END) AS s",
        m = marker.display()
    )
}

/// Waits until the daemon says (at `--verbose`) that a worker has started `name`: by
/// then the store records it as executing. Which worker takes which query, and when, is
/// up to the daemon and the machine's load; this is the one sure sign.
fn wait_until_executing(d: &daemon_support::Daemon, name: &str) {
    let said = format!("Executing scheduled query {name}:");
    assert!(
        wait_until(LONG, || d.stderr_text().contains(&said)),
        "{name} never started\n{}",
        d.stderr_text()
    );
}

/// A query that is not deny-listed after a crash: the ones beside `slow` may be in
/// flight at the kill, and every query in flight is remembered.
fn query_kept_after_crash(name: &str, sql: &str) -> String {
    format!(r#""{name}": {{"query": "{sql}", "interval": 1, "denylist": false}}"#)
}

/// Starts a daemon running `slow` (with `slow_options` added to its entry), SIGKILLs it
/// while `slow` runs, and starts it again with the marker gone.
fn crash_during_slow(s: &Sandbox, slow_options: &str) -> daemon_support::Daemon {
    let marker = s.path().join("hold");
    std::fs::write(&marker, "").unwrap();
    let slow = format!(
        r#""slow": {{"query": "{}", "interval": 1{slow_options}}}"#,
        slow_while(&marker)
    );
    let sched = "SELECT name, denylisted, executions FROM osquery_schedule WHERE name = 'slow'";
    s.write_config(&config(
        &[
            query_kept_after_crash("mod3", MOD3),
            query_kept_after_crash("sched", sched),
            slow,
        ]
        .join(","),
        "",
    ));
    let mut d = s.start("first", &["--verbose"]);
    wait_until_executing(&d, "slow");
    assert!(s.results_of("slow").is_empty());
    d.kill9();
    std::fs::remove_file(&marker).unwrap();
    s.start("second", &[])
}

#[test]
fn a_query_running_at_a_crash_is_denylisted_after_restart() {
    let s = Sandbox::new();
    let mut d = crash_during_slow(&s, "");
    assert!(
        wait_until(LONG, || s.status_log("WARNING").contains(
            "Scheduled query may have failed: slow; deny-listed until"
        )),
        "{}",
        d.stderr_text()
    );
    let denylisted_row = |s: &Sandbox| {
        s.results_of("sched").iter().any(|l| {
            l["action"] == "added"
                && l["columns"]["denylisted"] == "1"
                && l["columns"]["executions"] == "0"
        })
    };
    assert!(
        wait_until(LONG, || denylisted_row(&s)),
        "{}",
        d.stderr_text()
    );
    // Three more seconds of schedule: `slow` (quick now) is still not run.
    let seen = s.counters_of("mod3").len();
    assert!(wait_until(LONG, || s.counters_of("mod3").len() >= seen + 3));
    assert!(
        s.results_of("slow").is_empty(),
        "{:?}",
        s.results_of("slow")
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));

    let dump = s.dump();
    let conf = &dump["configurations"];
    assert!(
        !conf.keys().any(|k| k.starts_with("executing_query")),
        "{conf:?}"
    );
    let failed = &conf["failed_queries"];
    let (name, expiry) = failed.split_once(':').expect("name:expiry");
    assert_eq!(name, "slow");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expiry: i64 = expiry.parse().unwrap();
    assert!(
        (now + 86400 - 60..=now + 86400).contains(&expiry),
        "{expiry} vs {now}"
    );
}

#[test]
fn a_query_with_denylist_false_runs_again_after_a_crash() {
    let s = Sandbox::new();
    let mut d = crash_during_slow(&s, r#", "denylist": false"#);
    assert!(
        wait_until(LONG, || !s.results_of("slow").is_empty()),
        "{}",
        d.stderr_text()
    );
    assert_eq!(s.results_of("slow")[0]["columns"]["v"], "ran");
    assert!(
        s.status_log("WARNING")
            .contains("Scheduled query may have failed: slow; not deny-listed"),
        "{}",
        s.status_log("WARNING")
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    assert!(!s.dump()["configurations"].contains_key("failed_queries"));
}

#[test]
fn every_query_in_flight_at_a_crash_is_remembered() {
    // Both workers busy with a slow query each when the process dies: both are blamed,
    // each as its own "denylist" setting says.
    let s = Sandbox::new();
    let marker = s.path().join("hold");
    std::fs::write(&marker, "").unwrap();
    let slow = slow_while(&marker);
    s.write_config(&config(
        &[
            format!(r#""slow_a": {{"query": "{slow}", "interval": 1}}"#),
            format!(r#""slow_b": {{"query": "{slow}", "interval": 1, "denylist": false}}"#),
        ]
        .join(","),
        "",
    ));
    let mut d = s.start("first", &["--verbose"]);
    wait_until_executing(&d, "slow_a");
    wait_until_executing(&d, "slow_b");
    d.kill9();
    std::fs::remove_file(&marker).unwrap();
    let mut d = s.start("second", &[]);
    // slow_b runs again (quick now); slow_a is deny-listed.
    assert!(
        wait_until(LONG, || !s.results_of("slow_b").is_empty()),
        "{}",
        d.stderr_text()
    );
    let warnings = s.status_log("WARNING");
    assert!(
        warnings.contains("Scheduled query may have failed: slow_a; deny-listed until"),
        "{warnings}"
    );
    assert!(
        warnings.contains("Scheduled query may have failed: slow_b; not deny-listed"),
        "{warnings}"
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    assert!(s.results_of("slow_a").is_empty());
    let dump = s.dump();
    let conf = &dump["configurations"];
    assert_eq!(conf["failed_queries"].split(':').next(), Some("slow_a"));
    assert!(
        !conf.keys().any(|k| k.starts_with("executing_query")),
        "{conf:?}"
    );
}

#[test]
fn a_crashed_query_named_by_the_previous_layout_is_denylisted() {
    // A store written by an earlier version names the one query it was running under
    // osquery's single `executing_query` key.
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    let mut d = s.start("first", &[]);
    assert!(wait_for_lines(&s, "mod3", 0), "{}", d.stderr_text());
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    {
        let store = oxquery_store::Store::open(&s.database()).unwrap();
        store
            .put(
                oxquery_store::Domain::Configurations,
                "executing_query",
                b"mod3",
            )
            .unwrap();
    }
    let mut d = s.start("second", &[]);
    assert!(
        wait_until(LONG, || s.status_log("WARNING").contains(
            "Scheduled query may have failed: mod3; deny-listed until"
        )),
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    let dump = s.dump();
    assert!(!dump["configurations"].contains_key("executing_query"));
    assert!(dump["configurations"]["failed_queries"].starts_with("mod3:"));
}

#[test]
fn a_queued_query_is_not_said_to_be_running() {
    // Two slow queries hold both workers; `quick` waits in the queue, and the log says
    // so rather than calling it running.
    let s = Sandbox::new();
    let marker = s.path().join("hold");
    std::fs::write(&marker, "").unwrap();
    let slow = slow_while(&marker);
    s.write_config(&config(
        &[
            query("slow_a", &slow),
            query("slow_b", &slow),
            query("quick", "SELECT 1 AS one"),
        ]
        .join(","),
        "",
    ));
    let mut d = s.start("run", &["--verbose"]);
    wait_until_executing(&d, "slow_a");
    wait_until_executing(&d, "slow_b");
    assert!(
        wait_until(LONG, || s.status_log("INFO").contains(
            "Scheduled query quick is still waiting for a free worker; skipping this turn"
        )),
        "{}",
        d.stderr_text()
    );
    assert!(
        wait_until(LONG, || s.status_log("INFO").contains(
            "Scheduled query slow_a is still running; skipping this turn"
        )),
        "{}",
        d.stderr_text()
    );
    // The slow queries sleep where no cancellation reaches; this test is about the log.
    d.kill9();
    let info = s.status_log("INFO");
    assert!(
        !info.contains("Scheduled query quick is still running"),
        "{info}"
    );
}

// ---- --config_enable_backup ----

#[test]
fn config_backup_starts_a_daemon_whose_config_is_broken() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    let mut d = s.start("good", &["--config_enable_backup"]);
    assert!(wait_for_lines(&s, "mod3", 0), "{}", d.stderr_text());
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    // The stored text is the raw file, newlines included, so read the dump as text.
    let dump = s.run(&["--database_dump"]);
    let dump = String::from_utf8_lossy(&dump.stdout);
    let key = format!(
        "configurations[config_persistence.{}]: {{",
        s.config().display()
    );
    let stored = &dump[dump.find(&key).expect("the config is backed up")..];
    assert!(stored.contains("unix_time % 3"), "{dump}");

    for (tag, broken) in [("bad_json", true), ("missing", false)] {
        if broken {
            s.write_config("{\"schedule\": {\"a\": ");
        } else {
            std::fs::remove_file(s.config()).unwrap();
        }
        // Without the flag: a warning, and nothing scheduled.
        let mut plain = s.start(&format!("{tag}_plain"), &[]);
        assert!(
            plain.stderr_text().contains("Error reading config: ")
                && plain
                    .stderr_text()
                    .contains("osqueryd started: 0 scheduled queries"),
            "{}",
            plain.stderr_text()
        );
        assert_eq!(plain.terminate(Duration::from_secs(5)).0.code(), Some(0));
        // With it: the old schedule runs, and the failure is logged.
        let logged = s.results_of("mod3").len();
        let mut d = s.start(tag, &["--config_enable_backup"]);
        assert!(wait_for_lines(&s, "mod3", logged), "{}", d.stderr_text());
        assert!(
            s.status_log("ERROR")
                .contains("starting from the backup in the database"),
            "{}",
            d.stderr_text()
        );
        assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    }
}

// ---- views on reload ----

#[test]
fn a_view_removed_from_the_config_is_dropped_on_reload() {
    let s = Sandbox::new();
    let schedule = [query("mod3", MOD3), query("useview", "SELECT m FROM v")].join(",");
    s.write_config(&config(
        &schedule,
        &format!(r#", "views": {{"v": "{MOD3}"}}"#),
    ));
    let mut d = s.start("run", &[]);
    assert!(
        wait_until(LONG, || s.counters_of("useview").len() >= 2),
        "{}",
        d.stderr_text()
    );
    s.write_config(&config(&schedule, ""));
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(LONG, || s
            .status_log("ERROR")
            .contains("Error executing scheduled query useview")),
        "{}",
        d.stderr_text()
    );
    assert!(s.status_log("ERROR").contains("no such table: v"));
    // A run already going at the reload may still log; after that none does, on
    // either worker.
    let seen = s.counters_of("mod3").len();
    assert!(wait_until(LONG, || s.counters_of("mod3").len() > seen));
    let logged = s.results_of("useview").len();
    assert!(wait_until(LONG, || s.counters_of("mod3").len() >= seen + 4));
    assert_eq!(s.results_of("useview").len(), logged);
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
}

// ---- shutdown while queries run ----

/// Starts a daemon whose schedule holds `busy` next to `mod3`, and waits until `busy`
/// has started.
fn daemon_running(s: &Sandbox, busy: &str) -> daemon_support::Daemon {
    s.write_config(&config(
        &[query("mod3", MOD3), query("busy", busy)].join(","),
        "",
    ));
    let d = s.start("busy", &["--alarm_timeout=10", "--verbose"]);
    wait_until_executing(&d, "busy");
    assert!(s.results_of("busy").is_empty());
    d
}

#[test]
fn sigterm_cancels_a_long_running_query() {
    let s = Sandbox::new();
    // A walk of the whole filesystem: it checks for cancellation as it goes.
    let mut d = daemon_running(&s, "SELECT count(*) AS n FROM file WHERE path LIKE '/%%'");
    let (status, took) = d.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", d.stderr_text());
    assert!(took < Duration::from_secs(5), "stopping took {took:?}");
}

#[test]
fn sigterm_stops_the_daemon_while_a_query_reads_a_fifo() {
    let s = Sandbox::new();
    // Opening a FIFO nobody writes would block in the kernel, where no cancellation
    // reaches: files are opened non-blocking, and the shutdown waits for a worker at most
    // --alarm_timeout seconds anyway.
    let fifo = s.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let sql = format!("SELECT * FROM elf_info WHERE path = '{}'", fifo.display());
    let mut d = daemon_running(&s, &sql);
    let (status, took) = d.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", d.stderr_text());
    assert!(took < Duration::from_secs(15), "stopping took {took:?}");
}

// ---- start-up behaviour ----

#[test]
fn an_unreadable_config_is_a_warning_and_the_daemon_runs_empty() {
    let s = Sandbox::new();
    let dir = s.path().join("a_directory");
    std::fs::create_dir(&dir).unwrap();
    let missing = s.path().join("missing.conf");
    for (tag, path, why) in [
        (
            "null",
            std::path::Path::new("/dev/null"),
            "cannot read /dev/null: not a regular file: a character device".to_owned(),
        ),
        (
            "missing",
            missing.as_path(),
            format!("config file does not exist: {}", missing.display()),
        ),
        (
            "dir",
            dir.as_path(),
            format!("cannot read {}: is a directory", dir.display()),
        ),
    ] {
        let config_path = format!("--config_path={}", path.display());
        let mut d = s.start(tag, &[&config_path]);
        let stderr = d.stderr_text();
        assert!(
            stderr.contains(&format!("Error reading config: {why}"))
                && stderr.contains("osqueryd started: 0 scheduled queries"),
            "{tag}: {stderr}"
        );
        assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
        // --config_check still fails for it.
        let out = s.run(&["--config_check", &config_path]);
        assert_eq!(out.status.code(), Some(1), "{tag}: {out:?}");
    }
}

#[test]
fn an_unknown_config_plugin_cannot_be_activated() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    // With extensions enabled the worker would first wait --extensions_timeout for an
    // extension to provide the plugin; disabled, the check refuses it before anything.
    let out = s.run(&["--config_plugin=nope", "--disable_extensions"]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Cannot activate nope config plugin"),
        "{out:?}"
    );
    assert!(!s.pidfile().exists());
    assert_eq!(std::fs::read_dir(s.logs()).unwrap().count(), 0);
}

#[test]
fn disable_logging_starts_no_logger_plugin() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    // A logger directory that cannot be created: no logger may try.
    let blocker = s.path().join("a_file");
    std::fs::write(&blocker, "").unwrap();
    let logger_path = format!("--logger_path={}", blocker.join("logs").display());
    let mut d = s.start("quiet", &["--disable_logging=true", &logger_path]);
    // The query still runs: its differential state reaches the store.
    assert!(
        wait_until(LONG, || s
            .dump()
            .get("queries")
            .is_some_and(|q| q.contains_key("mod3"))),
        "{}",
        d.stderr_text()
    );
    assert!(d.exited().is_none(), "{}", d.stderr_text());
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    assert_eq!(std::fs::read_dir(s.logs()).unwrap().count(), 0);

    // Logging on: the same directory is an error that says why, exit 78.
    let out = s.run(&[&logger_path]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Cannot start the logger"), "{stderr}");
}

#[test]
fn database_dump_creates_a_new_database_and_ignores_a_disabled_one() {
    let s = Sandbox::new();
    // Something to dump, were the database not disabled.
    s.write_config(&config(&query("mod3", MOD3), ""));
    let mut d = s.start("run", &[]);
    assert!(wait_for_lines(&s, "mod3", 0), "{}", d.stderr_text());
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    assert!(s.dump()["queries"].contains_key("mod3"));
    let out = s.run(&["--database_dump", "--disable_database"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("mod3"),
        "{out:?}"
    );
    let fresh = s.path().join("new_dir").join("osquery.db");
    let out = s.run(&[
        "--database_dump",
        &format!("--database_path={}", fresh.display()),
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(fresh.exists());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "configurations[results_version]: 2\n"
    );
}

#[test]
fn flags_without_effect_are_mentioned_only_at_verbose_level() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    let notice = "Flag --allow_handle_threads only applies to osquery on other platforms";
    let flag = "--allow_handle_threads=false";
    let mut d = s.start("plain", &[flag]);
    assert!(!d.stderr_text().contains(notice), "{}", d.stderr_text());
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
    let mut d = s.start("verbose", &[flag, "--verbose"]);
    assert_eq!(
        d.stderr_text().matches(notice).count(),
        1,
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
}

#[test]
fn a_reload_applies_runtime_options_but_not_start_up_ones() {
    let s = Sandbox::new();
    s.write_config(&config(&query("mod3", MOD3), ""));
    let mut d = s.start("run", &[]);
    assert!(wait_for_lines(&s, "mod3", 0), "{}", d.stderr_text());
    let before = s.results_of("mod3")[0]["hostIdentifier"].clone();
    assert_eq!(s.results_of("mod3")[0]["epoch"], 0);

    // schedule_epoch is read at each result; host_identifier only at start.
    let options = r#"{"options": {"schedule_splay_percent": 0, "schedule_epoch": 7,
        "host_identifier": "specified", "specified_identifier": "reloaded"},
        "schedule": {"mod3": {"query": "SELECT unix_time % 3 AS m FROM time", "interval": 1}}}"#;
    s.write_config(options);
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(LONG, || s
            .results_of("mod3")
            .iter()
            .any(|l| l["epoch"] == 7)),
        "the new epoch never reached the log\n{}",
        d.stderr_text()
    );
    let after: Vec<_> = s
        .results_of("mod3")
        .into_iter()
        .filter(|l| l["epoch"] == 7)
        .collect();
    assert!(
        after.iter().all(|l| l["hostIdentifier"] == before),
        "{after:?}"
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
}

#[test]
fn a_reload_hands_the_new_read_max_to_the_tables() {
    let s = Sandbox::new();
    let file = s.path().join("two_kib");
    std::fs::write(&file, vec![b'x'; 2048]).unwrap();
    let config_with = |read_max: u64| {
        format!(
            r#"{{"options": {{"schedule_splay_percent": 0, "read_max": {read_max}}},
            "schedule": {{"digest": {{"query": "SELECT sha256 FROM hash WHERE path = '{}'", "interval": 1}}}}}}"#,
            file.display()
        )
    };
    // Over the limit, osquery hashes nothing and the digest is empty.
    s.write_config(&config_with(1000));
    let mut d = s.start("run", &[]);
    assert!(wait_for_lines(&s, "digest", 0), "{}", d.stderr_text());
    assert_eq!(s.results_of("digest")[0]["columns"]["sha256"], "");
    s.write_config(&config_with(100_000));
    d.signal(libc::SIGHUP);
    // The digest sha256sum gives (an independent implementation).
    let out = std::process::Command::new("sha256sum")
        .arg(&file)
        .output()
        .unwrap();
    let expected = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(
        wait_until(LONG, || s
            .results_of("digest")
            .iter()
            .any(|l| l["columns"]["sha256"] == expected.as_str())),
        "the digest never appeared after the reload\n{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
}

#[test]
fn a_reload_applies_the_status_log_options_and_osquery_flags_shows_them() {
    let s = Sandbox::new();
    let schedule = |extra: &str| {
        format!(
            r#"{{"options": {{"schedule_splay_percent": 0{extra}}},
            "schedule": {{"flags": {{"query": "SELECT value FROM osquery_flags WHERE name = 'logger_min_status'", "interval": 1}}}}}}"#
        )
    };
    s.write_config(&schedule(""));
    let mut d = s.start("run", &[]);
    assert!(wait_for_lines(&s, "flags", 0), "{}", d.stderr_text());
    assert_eq!(s.results_of("flags")[0]["columns"]["value"], "0");
    let changed = "Configuration changed; reloading the schedule";
    // Errors only from now on: the next reload's INFO line is not kept.
    s.write_config(&schedule(
        r#", "logger_min_status": 2, "logger_min_stderr": 2"#,
    ));
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(LONG, || s
            .results_of("flags")
            .iter()
            .any(|l| l["columns"]["value"] == "2")),
        "osquery_flags never showed the reloaded value\n{}",
        d.stderr_text()
    );
    assert_eq!(s.status_log("INFO").matches(changed).count(), 1);
    s.write_config(&schedule(
        r#", "logger_min_status": 2, "logger_min_stderr": 2, "schedule_epoch": 3"#,
    ));
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(LONG, || s
            .results_of("flags")
            .iter()
            .any(|l| l["epoch"] == 3)),
        "the second reload never took effect\n{}",
        d.stderr_text()
    );
    assert_eq!(
        s.status_log("INFO").matches(changed).count(),
        1,
        "an INFO line was kept after logger_min_status=2"
    );
    // INFO again in the files, but the stderr copy keeps errors only: the next reload's
    // line reaches the INFO file and not stderr.
    s.write_config(&schedule(
        r#", "logger_min_status": 0, "logger_min_stderr": 2, "schedule_epoch": 4"#,
    ));
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(LONG, || s
            .results_of("flags")
            .iter()
            .any(|l| l["epoch"] == 4)),
        "the third reload never took effect\n{}",
        d.stderr_text()
    );
    s.write_config(&schedule(
        r#", "logger_min_status": 0, "logger_min_stderr": 2, "schedule_epoch": 5"#,
    ));
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(LONG, || s.status_log("INFO").matches(changed).count() == 2),
        "the fourth reload's INFO line never reached the file\n{}",
        s.status_log("INFO")
    );
    assert_eq!(
        d.stderr_text().matches(changed).count(),
        1,
        "stderr kept an INFO line after logger_min_stderr=2:\n{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(Duration::from_secs(5)).0.code(), Some(0));
}
