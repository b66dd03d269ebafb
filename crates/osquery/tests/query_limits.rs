//! Per-query limits in the running daemon: a runaway query is stopped by its own
//! timeout or memory budget, the status log says which query, which limit and the
//! figures, nothing of it is logged or stored, and the worker, the well-behaved query
//! beside it and the log flush carry on. Each test prints its figures (time to stop,
//! peak memory, the other query's delays); assertions wait generously, never time.

// This binary uses a part of the daemon helpers.
#[allow(dead_code)]
mod daemon_support;

use daemon_support::{Sandbox, wait_until};
use serde_json::Value;
use std::time::{Duration, Instant};

const LONG: Duration = Duration::from_secs(60);

/// A query that changes every second: its result lines show the daemon kept working.
const TICK: &str = r#""tick": {"query": "SELECT unix_time AS t FROM time", "interval": 1}"#;

fn config(queries: &[&str]) -> String {
    format!(
        r#"{{"options": {{"schedule_splay_percent": 0}}, "schedule": {{ {} }}}}"#,
        queries.join(",\n")
    )
}

/// `osquery_schedule`'s hidden columns for `name`, logged every second so the test reads
/// them from the results log.
fn schedule_probe(name: &str) -> String {
    format!(
        r#""probe": {{"query": "SELECT last_stop_reason, stopped_runs, timeout, memory_limit, last_peak_memory, last_rows FROM osquery_schedule WHERE name = '{name}'", "interval": 1, "snapshot": true}}"#
    )
}

/// The unix times `tick` logged, in order.
fn tick_times(s: &Sandbox) -> Vec<u64> {
    let mut times: Vec<u64> = s
        .results_of("tick")
        .iter()
        .filter(|l| l["action"] == "added")
        .filter_map(|l| l["columns"]["t"].as_str()?.parse().ok())
        .collect();
    times.sort();
    times.dedup();
    times
}

/// The largest gap between consecutive ticks, in seconds.
fn largest_gap(times: &[u64]) -> u64 {
    times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
}

/// The latest `probe` row (hidden columns of the watched query).
fn probe_row(s: &Sandbox) -> Option<serde_json::Map<String, Value>> {
    let lines = s.lines(&s.snapshots_log());
    let line = lines.iter().rev().find(|l| l["name"] == "probe")?;
    line["snapshot"].as_array()?.first()?.as_object().cloned()
}

fn field<'a>(row: &'a serde_json::Map<String, Value>, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The milliseconds the stop message of `name` reports (`after N ms`).
fn stop_after_ms(stderr: &str, name: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("Scheduled query {name} stopped")))?;
    let (_, rest) = line.split_once("after ")?;
    rest.split(' ').next()?.parse().ok()
}

/// Peak resident memory of `pid` so far, in KiB.
fn vm_hwm_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

/// Waits until `tick` has logged `more` new seconds after those in `before`.
fn ticks_continue(s: &Sandbox, before: usize, more: usize) -> bool {
    wait_until(LONG, || tick_times(s).len() >= before + more)
}

#[test]
fn a_cpu_bound_runaway_is_stopped_by_its_timeout_and_the_rest_carries_on() {
    let s = Sandbox::new();
    let runaway = r#""runaway": {"query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "interval": 1, "timeout": 2}"#;
    s.write_config(&config(&[runaway, TICK, &schedule_probe("runaway")]));
    let started = Instant::now();
    let mut d = s.start("limits", &["--disable_watchdog"]);
    let stopped = wait_until(LONG, || {
        d.stderr_text()
            .contains("Scheduled query runaway stopped: it ran past its timeout of 2 s")
    });
    assert!(stopped, "no timeout logged:\n{}", d.stderr_text());
    let first_stop = started.elapsed();
    let before = tick_times(&s).len();
    // Stopped again (it is due every second), the ticks keep coming meanwhile.
    assert!(
        wait_until(LONG, || d.stderr_text().matches("runaway stopped").count()
            >= 3),
        "{}",
        d.stderr_text()
    );
    assert!(ticks_continue(&s, before, 3), "tick stopped logging");
    // osquery_schedule's hidden columns say so.
    let row = wait_until(LONG, || {
        probe_row(&s).is_some_and(|r| field(&r, "stopped_runs").parse::<u64>().unwrap_or(0) >= 2)
    });
    let probe = probe_row(&s).unwrap_or_default();
    assert!(row, "{probe:?}");
    assert_eq!(field(&probe, "last_stop_reason"), "timeout", "{probe:?}");
    assert_eq!(field(&probe, "timeout"), "2", "{probe:?}");
    let stderr = d.stderr_text();
    let (status, _) = d.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{stderr}");

    // Nothing of the runaway was logged or stored.
    assert!(s.results_of("runaway").is_empty());
    let dump = s.dump();
    assert!(
        !dump
            .get("queries")
            .is_some_and(|q| q.contains_key("runaway")),
        "{:?}",
        dump.get("queries")
    );
    let times = tick_times(&s);
    eprintln!(
        "figures: first stop logged {:.1} s after start; stop after {:?} ms (timeout 2000 ms); \
         tick logged {} seconds, largest gap {} s",
        first_stop.as_secs_f64(),
        stop_after_ms(&stderr, "runaway"),
        times.len(),
        largest_gap(&times)
    );
}

#[test]
fn an_allocating_runaway_is_stopped_by_its_memory_budget() {
    let s = Sandbox::new();
    let hog = r#""hog": {"query": "select length(group_concat(randomblob(1000000))) from (with recursive c(x) as (select 1 union all select x+1 from c where x < 100000) select x from c)", "interval": 1, "memory_limit": 64, "timeout": 0}"#;
    s.write_config(&config(&[hog, TICK, &schedule_probe("hog")]));
    let mut d = s.start("limits", &["--disable_watchdog"]);
    let stopped = wait_until(LONG, || {
        d.stderr_text().contains(
            "Scheduled query hog stopped: it needed more than its memory budget of 64 MiB",
        )
    });
    assert!(stopped, "no memory stop logged:\n{}", d.stderr_text());
    let before = tick_times(&s).len();
    assert!(
        wait_until(LONG, || d.stderr_text().matches("hog stopped").count() >= 3),
        "{}",
        d.stderr_text()
    );
    assert!(ticks_continue(&s, before, 3), "tick stopped logging");
    let row = wait_until(LONG, || {
        probe_row(&s).is_some_and(|r| field(&r, "last_stop_reason") == "memory")
    });
    let probe = probe_row(&s).unwrap_or_default();
    assert!(row, "{probe:?}");
    assert_eq!(field(&probe, "memory_limit"), "64");
    let peak: u64 = field(&probe, "last_peak_memory").parse().unwrap();
    // SQLite's allocations are refused at the budget: the query never held more.
    assert!(peak > 16 << 20 && peak <= 64 << 20, "peak {peak}");
    // The process's peak resident memory: without the budget this query grows to
    // about a gigabyte (SQLite's 1e9-byte string limit) before failing.
    let hwm = vm_hwm_kib(d.pid());
    assert!(hwm < 400 * 1024, "VmHWM {hwm} KiB");
    let stderr = d.stderr_text();
    let (status, _) = d.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(s.results_of("hog").is_empty());
    let times = tick_times(&s);
    eprintln!(
        "figures: stop after {:?} ms; query peak {:.1} MiB (budget 64 MiB); daemon VmHWM {:.1} MiB; \
         tick logged {} seconds, largest gap {} s",
        stop_after_ms(&stderr, "hog"),
        peak as f64 / (1 << 20) as f64,
        hwm as f64 / 1024.0,
        times.len(),
        largest_gap(&times)
    );
}

#[test]
fn a_generator_in_a_long_read_is_stopped_by_its_timeout() {
    let s = Sandbox::new();
    // 256 GiB of holes: the `hash` table reads (zeros) and digests it far longer than
    // the timeout, checking for a stop before each read.
    let big = s.path().join("sparse.img");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(256 << 30)
        .unwrap();
    let slow = format!(
        r#""slow": {{"query": "SELECT sha256 FROM hash WHERE path = '{}'", "interval": 1, "timeout": 3}}"#,
        big.display()
    );
    s.write_config(&config(&[&slow, TICK, &schedule_probe("slow")]));
    // Let `hash` read files that large (the default --read_max skips them at once).
    let mut d = s.start(
        "limits",
        &["--disable_watchdog", "--read_max=1099511627776"],
    );
    let stopped = wait_until(LONG, || {
        d.stderr_text()
            .contains("Scheduled query slow stopped: it ran past its timeout of 3 s")
    });
    assert!(stopped, "no timeout logged:\n{}", d.stderr_text());
    let before = tick_times(&s).len();
    assert!(
        wait_until(LONG, || d.stderr_text().matches("slow stopped").count()
            >= 2),
        "{}",
        d.stderr_text()
    );
    assert!(ticks_continue(&s, before, 3), "tick stopped logging");
    let row = wait_until(LONG, || {
        probe_row(&s).is_some_and(|r| field(&r, "last_stop_reason") == "timeout")
    });
    assert!(row, "{:?}", probe_row(&s));
    let stderr = d.stderr_text();
    let (status, took) = d.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(s.results_of("slow").is_empty());
    let times = tick_times(&s);
    eprintln!(
        "figures: stop after {:?} ms (timeout 3000 ms); tick logged {} seconds, largest gap {} s; \
         SIGTERM to exit {} ms",
        stop_after_ms(&stderr, "slow"),
        times.len(),
        largest_gap(&times),
        took.as_millis()
    );
}

#[test]
fn a_stopped_evented_query_does_not_move_its_event_marks() {
    let s = Sandbox::new();
    let watched = s.path().join("watched");
    std::fs::create_dir(&watched).unwrap();
    // `created` logs the events (and shows the watches work); `stuck` reads the same
    // events, then spins on each row (the subquery runs only once a row exists) until
    // its timeout.
    s.write_config(&format!(
        r#"{{
  "options": {{"schedule_splay_percent": 0}},
  "file_paths": {{ "sandbox": ["{}/%%"] }},
  "schedule": {{
    "created": {{"query": "SELECT target_path FROM file_events WHERE action = 'CREATED'", "interval": 1}},
    "stuck": {{"query": "SELECT target_path, (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c) AS n FROM file_events WHERE action = 'CREATED'", "interval": 1, "timeout": 1}}
  }}
}}"#,
        watched.display()
    ));
    let mut d = s.start(
        "events",
        &[
            "--disable_watchdog",
            "--disable_events=false",
            "--enable_file_events=true",
        ],
    );
    let mut n = 0;
    let logged = wait_until(LONG, || {
        n += 1;
        std::fs::write(watched.join(format!("probe-{n}")), b"").unwrap();
        std::thread::sleep(Duration::from_millis(500));
        !s.results_of("created").is_empty()
    });
    assert!(logged, "no file event logged:\n{}", d.stderr_text());
    // Fewer events than a first batch (16 rows): `stuck`'s scan reads them all, and so
    // records how far it read, before its first row starts the spin.
    assert!(n < 16, "{n} probe files before the first was logged");
    assert!(
        wait_until(LONG, || d.stderr_text().matches("stuck stopped").count()
            >= 2),
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(Duration::from_secs(30)).0.code(), Some(0));
    assert!(s.results_of("stuck").is_empty());
    let dump = s.dump();
    let events = dump.get("events").cloned().unwrap_or_default();
    assert!(
        events.contains_key("optimize_eid.created.file_events"),
        "the query that completed keeps its mark: {:?}",
        events
            .keys()
            .filter(|k| k.starts_with("optimize"))
            .collect::<Vec<_>>()
    );
    assert!(
        !events.keys().any(|k| k.starts_with("optimize_eid.stuck.")),
        "a stopped run moved its mark: {:?}",
        events
            .keys()
            .filter(|k| k.starts_with("optimize"))
            .collect::<Vec<_>>()
    );
}
