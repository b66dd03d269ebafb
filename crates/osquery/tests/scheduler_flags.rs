//! osqueryd's own scheduler flags, driven as a process: `--schedule_timeout`,
//! `--schedule_lognames`, `--schedule_max_drift` (a real stall: the daemon stopped with
//! SIGSTOP), `--schedule_reload` (store maintenance), the table cache of cacheable tables
//! and `--disable_caching`, `--malloc_trim_threshold`, and numeric monitoring's file.
//! Each daemon runs without the watchdog process, in its own sandbox.

#[allow(dead_code)]
mod daemon_support;

use daemon_support::{Sandbox, wait_until};
use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LONG: Duration = Duration::from_secs(60);

fn config(schedule: &str) -> String {
    format!(
        r#"{{
  "options": {{"schedule_splay_percent": 0}},
  "schedule": {{ {schedule} }}
}}
"#
    )
}

fn query(name: &str, sql: &str, interval: u64) -> String {
    format!(r#""{name}": {{"query": "{sql}", "interval": {interval}}}"#)
}

/// The daemon's flags for these tests: one process, results in the sandbox.
fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["--disable_watchdog"];
    all.extend_from_slice(extra);
    all
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[test]
fn schedule_timeout_stops_the_scheduler_and_the_daemon() {
    let s = Sandbox::new();
    s.write_config(&config(&query("one", "SELECT 1 AS one", 1)));
    let mut d = s.start("run", &args(&["--schedule_timeout=2"]));
    assert!(
        wait_until(LONG, || d.exited().is_some()),
        "still running\n{}",
        d.stderr_text()
    );
    assert_eq!(d.exited().unwrap().code(), Some(0), "{}", d.stderr_text());
    let err = d.stderr_text();
    assert!(err.contains("The scheduler ended after 2 seconds"), "{err}");
    // It ran while it lasted.
    assert!(!s.results_of("one").is_empty(), "{err}");
}

#[test]
fn schedule_lognames_logs_each_run_by_name() {
    let s = Sandbox::new();
    s.write_config(&config(&query("named", "SELECT 1 AS one", 1)));
    let mut d = s.start("names", &args(&["--schedule_lognames"]));
    assert!(
        wait_until(LONG, || count(
            &d.stderr_text(),
            "Executing scheduled query named\n"
        ) >= 2),
        "{}",
        d.stderr_text()
    );
    // Without --verbose the SQL is not logged.
    assert!(!d.stderr_text().contains("Executing scheduled query named:"));
    d.terminate(LONG);

    // Without the flag: the query runs, and its name is not logged.
    let s = Sandbox::new();
    s.write_config(&config(&query("quiet", "SELECT unix_time FROM time", 1)));
    let mut d = s.start("quiet", &args(&[]));
    assert!(
        wait_until(LONG, || s.counters_of("quiet").len() >= 2),
        "{}",
        d.stderr_text()
    );
    assert!(
        !d.stderr_text().contains("Executing scheduled query"),
        "{}",
        d.stderr_text()
    );
    d.terminate(LONG);
}

/// Stops the daemon (SIGSTOP) for `stall`, then lets it go on.
fn stall(d: &daemon_support::Daemon, stall: Duration) {
    d.signal(libc::SIGSTOP);
    std::thread::sleep(stall);
    d.signal(libc::SIGCONT);
}

#[test]
fn a_stall_beyond_schedule_max_drift_is_skipped_and_within_it_caught_up() {
    let s = Sandbox::new();
    s.write_config(&config(&query("tick", "SELECT unix_time FROM time", 1)));
    let mut d = s.start("skip", &args(&["--verbose", "--schedule_max_drift=2"]));
    assert!(wait_until(LONG, || s.counters_of("tick").len() >= 2));
    stall(&d, Duration::from_secs(6));
    assert!(
        wait_until(LONG, || d.stderr_text().contains(
            "more than --schedule_max_drift (2 s): skipping the missed seconds"
        )),
        "{}",
        d.stderr_text()
    );
    // The schedule goes on after it.
    let runs = s.counters_of("tick").len();
    assert!(wait_until(LONG, || s.counters_of("tick").len() >= runs + 2));
    d.terminate(LONG);

    let s = Sandbox::new();
    s.write_config(&config(&query("tick", "SELECT unix_time FROM time", 1)));
    let mut d = s.start("catch", &args(&["--verbose"]));
    assert!(wait_until(LONG, || s.counters_of("tick").len() >= 2));
    stall(&d, Duration::from_secs(4));
    assert!(
        wait_until(LONG, || d.stderr_text().contains("behind: catching up")),
        "{}",
        d.stderr_text()
    );
    assert!(!d.stderr_text().contains("skipping the missed seconds"));
    d.terminate(LONG);
}

/// `(wal before, wal after)` of every maintenance line.
fn maintenance_lines(stderr: &str) -> Vec<(u64, u64)> {
    stderr
        .lines()
        .filter_map(|l| {
            let rest = l.split_once("write-ahead log ")?.1;
            let (before, rest) = rest.split_once(" -> ")?;
            let after = rest.split_once(" bytes")?.0;
            Some((before.parse().ok()?, after.parse().ok()?))
        })
        .collect()
}

#[test]
fn schedule_reload_maintains_the_store_and_the_daemon_goes_on() {
    let s = Sandbox::new();
    // A result that changes each run keeps the store writing.
    s.write_config(&config(&query("tick", "SELECT unix_time FROM time", 1)));
    let mut d = s.start("maint", &args(&["--verbose", "--schedule_reload=2"]));
    assert!(
        wait_until(LONG, || maintenance_lines(&d.stderr_text()).len() >= 3),
        "{}",
        d.stderr_text()
    );
    let done = maintenance_lines(&d.stderr_text());
    // The figures for the record.
    for line in d
        .stderr_text()
        .lines()
        .filter(|l| l.contains("Database maintenance"))
        .take(3)
    {
        println!("{line}");
    }
    // Runs wrote to the log between maintenances, and each one emptied it.
    assert!(done.iter().any(|(before, _)| *before > 0), "{done:?}");
    assert!(done.iter().all(|(_, after)| *after == 0), "{done:?}");
    let wal = std::fs::metadata(format!("{}-wal", s.database().display()));
    let runs = s.counters_of("tick").len();
    assert!(wait_until(LONG, || s.counters_of("tick").len() >= runs + 2));
    d.terminate(LONG);
    // The store is intact after maintenance: the daemon's state reads back.
    assert!(s.dump()["queries"].contains_key("tick"), "{wal:?}");

    // --schedule_reload=0: never.
    let s = Sandbox::new();
    s.write_config(&config(&query("tick", "SELECT unix_time FROM time", 1)));
    let mut d = s.start("never", &args(&["--verbose", "--schedule_reload=0"]));
    assert!(wait_until(LONG, || s.counters_of("tick").len() >= 4));
    assert!(maintenance_lines(&d.stderr_text()).is_empty());
    d.terminate(LONG);
}

/// A `sleep` child whose command line is unique to this test, killed when dropped.
struct Marker {
    child: Child,
    text: String,
}

impl Marker {
    fn start() -> Marker {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let text = format!("{}.{nanos:09}", 900 + std::process::id() % 90);
        let child = Command::new("sleep")
            .arg(&text)
            .stdin(Stdio::null())
            .spawn()
            .expect("sleep starts");
        Marker { child, text }
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the cache scenario: `store` (interval 3600) scans `processes` at start; then a
/// marker process starts and a reload adds `find`, which looks for it every second.
/// Returns the daemon's stderr and whether `find` ever logged the marker.
fn cache_scenario(extra: &[&str]) -> (String, bool) {
    let s = Sandbox::new();
    let store = r#""store": {"query": "SELECT pid, cmdline FROM processes", "interval": 3600, "startup_priority": 1}"#;
    s.write_config(&config(store));
    let mut flags = vec!["--verbose"];
    flags.extend_from_slice(extra);
    let mut d = s.start("cache", &args(&flags));
    assert!(
        wait_until(LONG, || !s.results_of("store").is_empty()),
        "{}",
        d.stderr_text()
    );
    let marker = Marker::start();
    let find = query(
        "find",
        &format!(
            "SELECT pid FROM processes WHERE cmdline LIKE '%{}%'",
            marker.text
        ),
        1,
    );
    s.write_config(&config(&format!("{store}, {find}")));
    d.signal(libc::SIGHUP);
    let runs =
        |d: &daemon_support::Daemon| count(&d.stderr_text(), "Executing scheduled query find:");
    assert!(wait_until(LONG, || runs(&d) >= 4), "{}", d.stderr_text());
    let found = s
        .results_of("find")
        .iter()
        .any(|l| l["columns"]["pid"] == marker.child.id().to_string().as_str());
    let err = d.stderr_text();
    d.terminate(LONG);
    (err, found)
}

#[test]
fn a_scheduled_query_reuses_a_cacheable_tables_rows_unless_caching_is_disabled() {
    // Cached: `find` reads the rows `store` kept (valid for store's hour), which predate
    // the marker process, so it never sees it.
    let (err, found) = cache_scenario(&[]);
    assert!(
        count(&err, "Retrieving results from cache for table: processes") >= 4,
        "{err}"
    );
    assert!(!found, "find saw the live process list\n{err}");

    // --disable_caching: every run scans /proc and finds the marker.
    let (err, found) = cache_scenario(&["--disable_caching"]);
    assert!(found, "{err}");
    assert!(!err.contains("Retrieving results from cache"), "{err}");
}

#[test]
fn malloc_trim_threshold_trims_after_a_query_over_it() {
    const TRIMMED: &str = "over --malloc_trim_threshold (1 MB): returned free heap memory";
    // A query that allocates a few MB in SQLite's sorter and frees it.
    let sql = "SELECT count(*) AS n FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) SELECT x, randomblob(500) AS b FROM c ORDER BY b)";
    let s = Sandbox::new();
    s.write_config(&config(&query("sort", sql, 1)));
    let mut d = s.start("trim", &args(&["--verbose", "--malloc_trim_threshold=1"]));
    assert!(
        wait_until(LONG, || count(&d.stderr_text(), TRIMMED) >= 2),
        "{}",
        d.stderr_text()
    );
    // The figures for the record: resident memory before and after the trim.
    for line in d
        .stderr_text()
        .lines()
        .filter(|l| l.contains(TRIMMED))
        .take(3)
    {
        println!("{line}");
    }
    d.terminate(LONG);

    // 0 turns it off.
    let s = Sandbox::new();
    s.write_config(&config(&query("sort", sql, 1)));
    let mut d = s.start("off", &args(&["--verbose", "--malloc_trim_threshold=0"]));
    assert!(wait_until(LONG, || count(
        &d.stderr_text(),
        "Executing scheduled query sort:"
    ) >= 3));
    assert!(!d.stderr_text().contains("returned free heap memory"));
    d.terminate(LONG);
}

#[test]
fn malloc_trim_threshold_returns_the_programs_freed_memory_too() {
    // 200,000 rows built, diffed and logged by the daemon itself: its own heap (mimalloc),
    // which glibc's malloc_trim alone never touched.
    let sql = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200000) SELECT x, hex(randomblob(64)) AS b FROM c";
    let s = Sandbox::new();
    s.write_config(&config(&query("rows", sql, 1)));
    let mut d = s.start("trim", &args(&["--verbose", "--malloc_trim_threshold=1"]));
    let figures = |text: &str| -> Option<(u64, u64)> {
        let line = text
            .lines()
            .find(|l| l.contains("returned free heap memory"))?;
        let mb_after = |key: &str| -> Option<u64> {
            let rest = &line[line.find(key)? + key.len()..];
            rest.split_whitespace().next()?.parse().ok()
        };
        Some((mb_after("Resident memory ")?, mb_after(", now ")?))
    };
    assert!(
        wait_until(LONG, || figures(&d.stderr_text()).is_some()),
        "{}",
        d.stderr_text()
    );
    let (before, after) = figures(&d.stderr_text()).unwrap();
    println!("resident memory {before} MB, after the trim {after} MB");
    d.terminate(LONG);
    // Measured: 306 MB to 116 MB; without mimalloc's collect it stayed where it was.
    assert!(
        before >= 100,
        "{before} MB: the query no longer makes a peak to trim"
    );
    assert!(
        after * 4 < before * 3,
        "{before} MB before the trim, {after} MB after"
    );
}

/// `path → values` of every line, checking osquery's line format as it goes.
fn monitoring_records(text: &str, since_ns: u128, until_ns: u128) -> HashMap<String, Vec<i64>> {
    let mut out: HashMap<String, Vec<i64>> = HashMap::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 4, "path, value, timestamp, sync: {line:?}");
        let stamp: u128 = fields[2].parse().expect("a timestamp in ns");
        assert!(
            (since_ns..=until_ns).contains(&stamp),
            "{stamp} outside the run: {line:?}"
        );
        assert_eq!(fields[3], "false", "{line:?}");
        let value: i64 = fields[1].parse().expect("an integer value");
        out.entry(fields[0].to_owned()).or_default().push(value);
    }
    out
}

#[test]
fn numeric_monitoring_writes_each_runs_figures_aggregated_over_the_window() {
    let s = Sandbox::new();
    let path = s.path().join("numeric_monitoring.log");
    let path_flag = format!("--numeric_monitoring_filesystem_path={}", path.display());
    s.write_config(&config(&query(
        "two",
        "SELECT 1 AS n UNION ALL SELECT 2",
        1,
    )));
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mut d = s.start(
        "nm",
        &args(&[
            "--enable_numeric_monitoring",
            "--numeric_monitoring_plugins=filesystem",
            &path_flag,
            "--numeric_monitoring_pre_aggregation_time=3",
        ]),
    );
    let successes = || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines()
            .filter(|l| l.starts_with("scheduler.query.main.two.status.success\t"))
            .map(|l| l.split('\t').nth(1).unwrap().parse::<i64>().unwrap())
            .sum::<i64>()
    };
    assert!(wait_until(LONG, || successes() >= 8), "{}", d.stderr_text());
    // SIGTERM flushes the last window.
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
    let until = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let text = std::fs::read_to_string(&path).unwrap();
    let records = monitoring_records(&text, since, until);
    let sum = |p: &str| records.get(p).map_or(0, |v| v.iter().sum::<i64>());
    let runs = sum("scheduler.query.main.two.status.success");
    // Every run logged its two rows, under both names.
    assert_eq!(
        sum("scheduler.global.query.main.two.rows"),
        2 * runs,
        "{text}"
    );
    assert_eq!(sum("scheduler.pack.main.rows"), 2 * runs, "{text}");
    // The window summed several runs into one line.
    let rows = &records["scheduler.global.query.main.two.rows"];
    assert!(rows.len() < runs as usize, "{rows:?} for {runs} runs");
    assert!(rows.iter().any(|v| *v >= 4), "{rows:?}");
    for figure in [
        "time.wall.millis",
        "time.user.millis",
        "time.system.millis",
        "time.total.millis",
        "rss.increase.kb",
        "rss.max.kb",
    ] {
        let key = format!("scheduler.global.query.main.two.{figure}");
        assert!(records.contains_key(&key), "{key}\n{text}");
    }
    assert!(
        records["scheduler.global.query.main.two.rss.max.kb"]
            .iter()
            .all(|kb| *kb > 0)
    );

    // Off (the default): no file.
    let s = Sandbox::new();
    let off = s.path().join("off.log");
    let off_flag = format!("--numeric_monitoring_filesystem_path={}", off.display());
    s.write_config(&config(&query("two", "SELECT 1 AS n", 1)));
    let mut d = s.start("nm-off", &args(&[&off_flag]));
    assert!(wait_until(LONG, || !s.results_of("two").is_empty()));
    d.terminate(LONG);
    assert!(!off.exists());
}
