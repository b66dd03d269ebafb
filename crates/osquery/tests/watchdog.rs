//! osqueryd's watchdog driven as processes: the watcher and its worker as `/proc` shows
//! them, the worker following a killed watcher, `--disable_watchdog`, and workers
//! stopped over a memory or CPU limit or killed by a signal: each restarted, its query
//! deny-listed with the reason (in the store, the status log and the hidden
//! `osquery_schedule.denylist_reason` column, read by a scheduled query of the daemon
//! itself), while a well-behaved query keeps logging.

// This binary uses a part of the daemon helpers.
#[allow(dead_code)]
mod daemon_support;

use daemon_support::{Sandbox, is_worker, proc_stat, wait_until};
use std::time::Duration;

/// Waits for restarts (osquery's check interval is 3 s, a quick restart backs off).
const LONG: Duration = Duration::from_secs(60);

/// Logs the process identity every second (a snapshot per run). Every query in flight
/// when a worker is stopped is deny-listed: these two say `"denylist": false`.
const ALIVE: &str = r#""alive": {"query": "SELECT pid, watcher FROM osquery_info", "interval": 1, "snapshot": true, "denylist": false}"#;
/// Logs each deny-listed query with its reason.
const WHY: &str = r#""why": {"query": "SELECT name, denylisted, denylist_reason FROM osquery_schedule WHERE denylisted = 1", "interval": 1, "denylist": false}"#;
/// Allocates 1 MB a row up to 300 MB, held until the aggregate ends; runs again each
/// second, so a check every 3 s finds it high.
const HOG: &str = r#""hog": {"query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300) SELECT length(group_concat(randomblob(1000000))) FROM c", "interval": 1}"#;
/// A differential result that changes every second (replayed after a kill).
const MOD3: &str =
    r#""mod3": {"query": "SELECT unix_time % 3 AS m FROM time", "interval": 1, "denylist": false}"#;
/// Burns CPU until stopped.
const BURN: &str = r#""burn": {"query": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "interval": 2}"#;

fn config(queries: &[&str]) -> String {
    format!(r#"{{"schedule": {{{}}}}}"#, queries.join(","))
}

fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// The `(pid, watcher)` of every `alive` snapshot so far.
fn alive(s: &Sandbox) -> Vec<(String, String)> {
    s.lines(&s.snapshots_log())
        .iter()
        .filter(|l| l["name"] == "alive")
        .map(|l| {
            let row = &l["snapshot"][0];
            (
                row["pid"].as_str().unwrap().to_owned(),
                row["watcher"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The reason the `why` query logged for `name`, once it has.
fn logged_reason(s: &Sandbox, name: &str) -> Option<String> {
    s.results_of("why").iter().find_map(|l| {
        let c = &l["columns"];
        (l["action"] == "added" && c["name"] == name && c["denylisted"] == "1")
            .then(|| c["denylist_reason"].as_str().unwrap().to_owned())
    })
}

/// Every glog status file the workers wrote (each worker writes its own).
fn status_files_text(s: &Sandbox) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(s.logs()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("osqueryd.WARNING.") {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
    }
    text
}

#[test]
fn the_watcher_starts_a_worker_that_dies_with_it() {
    let s = Sandbox::new();
    s.write_config(&config(&[ALIVE]));
    let d = s.start("run", &[]);
    let watcher = d.pid();
    let worker = d
        .wait_for_worker(None, LONG)
        .unwrap_or_else(|| panic!("no worker\n{}", d.stderr_text()));
    // As `ps` shows them: the worker is the watcher's child, marked as osquery marks
    // it, with its arguments blanked; the watcher keeps its command line and the
    // pidfile.
    assert_eq!(proc_stat(worker).unwrap().1, watcher);
    assert!(is_worker(worker));
    assert!(!is_worker(watcher));
    assert_eq!(cmdline(worker), [daemon_support::BIN]);
    let args = cmdline(watcher);
    assert_eq!(args[0], daemon_support::BIN);
    assert!(
        args.iter().any(|a| a.starts_with("--config_path=")),
        "{args:?}"
    );
    assert_eq!(
        std::fs::read_to_string(s.pidfile()).unwrap().trim(),
        watcher.to_string()
    );
    // osquery_info in the worker names both.
    assert!(
        wait_until(LONG, || !alive(&s).is_empty()),
        "{}",
        d.stderr_text()
    );
    assert_eq!(alive(&s)[0], (worker.to_string(), watcher.to_string()));

    // kill -9 of the watcher alone: the worker follows.
    d.signal(libc::SIGKILL);
    assert!(
        wait_until(LONG, || proc_stat(worker)
            .is_none_or(|(state, _, _)| state == 'Z')),
        "the worker outlived its watcher"
    );
}

#[test]
fn disable_watchdog_runs_one_process() {
    let s = Sandbox::new();
    s.write_config(&config(&[ALIVE]));
    let mut d = s.start("run", &["--disable_watchdog"]);
    assert!(
        wait_until(LONG, || alive(&s).len() >= 2),
        "{}",
        d.stderr_text()
    );
    assert_eq!(alive(&s)[0], (d.pid().to_string(), "-1".to_owned()));
    assert!(!is_worker(d.pid()));
    assert_eq!(daemon_support::children(d.pid()), Vec::<i32>::new());
    assert_eq!(d.terminate(Duration::from_secs(10)).0.code(), Some(0));
}

/// Checks what a stop over a limit must leave: a new worker, `name` deny-listed with a
/// reason containing `expected` in the store, the status log, the watcher's stderr and
/// `osquery_schedule`, and the well-behaved `alive` query logging from the new worker.
fn assert_restarted_and_denylisted(
    s: &Sandbox,
    d: &daemon_support::Daemon,
    first: i32,
    name: &str,
    expected: &str,
) -> String {
    let second = d
        .wait_for_worker(Some(first), LONG)
        .unwrap_or_else(|| panic!("no new worker\n{}", d.stderr_text()));
    assert!(
        wait_until(LONG, || logged_reason(s, name).is_some()),
        "{}",
        d.stderr_text()
    );
    let reason = logged_reason(s, name).unwrap();
    assert!(reason.contains(expected), "{reason}");
    let stderr = d.stderr_text();
    assert!(
        stderr.contains(&format!("osqueryd worker ({first}) stopping: {reason}"))
            || stderr.contains(&format!("osqueryd worker ({first}) ended: {reason}")),
        "{stderr}"
    );
    // Said once in the new worker's status log, with the reason.
    let status = status_files_text(s);
    let said = format!("Scheduled query may have failed: {name}; deny-listed until");
    assert_eq!(status.matches(&said).count(), 1, "{status}");
    assert!(status.contains(&format!(": {reason}\n")), "{status}");
    // In the store, beside osquery's deny-list.
    let dump = s.dump();
    let configurations = &dump["configurations"];
    assert!(
        configurations["failed_queries"].starts_with(&format!("{name}:"))
            || configurations["failed_queries"].contains(&format!(":{name}:")),
        "{configurations:?}"
    );
    assert_eq!(configurations[&format!("denylist_reason.{name}")], reason);
    // The well-behaved query goes on in the new worker.
    let pid = second.to_string();
    assert!(
        wait_until(LONG, || alive(s).iter().filter(|(p, _)| *p == pid).count()
            >= 3),
        "{}",
        d.stderr_text()
    );
    reason
}

#[test]
fn a_worker_over_its_memory_limit_is_restarted_and_its_query_denylisted() {
    let s = Sandbox::new();
    s.write_config(&config(&[ALIVE, WHY]));
    let d = s.start(
        "run",
        &[
            "--watchdog_level=-1",
            "--watchdog_memory_limit=50",
            "--watchdog_delay=1",
            "--enable_watchdog_debug",
            // Per-query limits off: the worker-level watchdog is what acts here.
            "--schedule_query_memory_limit=0",
        ],
    );
    let first = d.wait_for_worker(None, LONG).expect("a worker");
    // The limit is on growth above the first check: let it happen, then bring the hog.
    let checked = format!("osqueryd worker ({first}): CPU");
    assert!(
        wait_until(LONG, || d.stderr_text().contains(&checked)),
        "{}",
        d.stderr_text()
    );
    s.write_config(&config(&[ALIVE, WHY, HOG]));
    d.signal(libc::SIGHUP);
    let reason = assert_restarted_and_denylisted(&s, &d, first, "hog", "memory ");
    assert!(reason.ends_with(" MB over limit 50 MB"), "{reason}");
    let grown: u64 = reason
        .trim_start_matches("memory ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(grown > 50, "{reason}");
}

#[test]
fn a_worker_burning_cpu_is_restarted_and_its_query_denylisted() {
    let s = Sandbox::new();
    s.write_config(&config(&[ALIVE, WHY, BURN]));
    // 1% of the machine: a burning thread is far over it even on a loaded machine, an
    // idle worker far under; two intervals over it (4 s) so that a start-up spike
    // alone is not enough.
    let d = s.start(
        "run",
        &[
            "--watchdog_level=-1",
            "--watchdog_utilization_limit=1",
            "--watchdog_latency_limit=4",
            "--watchdog_delay=1",
        ],
    );
    let first = d.wait_for_worker(None, LONG).expect("a worker");
    let reason = assert_restarted_and_denylisted(&s, &d, first, "burn", "CPU ");
    assert!(reason.contains("% over 1% for "), "{reason}");
}

#[test]
fn a_worker_killed_by_a_signal_is_restarted_and_its_query_denylisted() {
    let s = Sandbox::new();
    s.write_config(&config(&[ALIVE, WHY, BURN, MOD3]));
    // Default limits: the watchdog itself stops nothing within the test.
    let mut d = s.start("run", &["--verbose"]);
    let first = d.wait_for_worker(None, LONG).expect("a worker");
    assert!(
        wait_until(LONG, || d
            .stderr_text()
            .contains("Executing scheduled query burn:")),
        "{}",
        d.stderr_text()
    );
    // As the kernel's OOM killer would (a SIGSEGV sent from outside is swallowed once
    // by Rust's stack-overflow handler).
    // SAFETY: kill(2) on the worker our daemon started.
    assert_eq!(unsafe { libc::kill(first, libc::SIGKILL) }, 0);
    let reason = assert_restarted_and_denylisted(&s, &d, first, "burn", "");
    assert_eq!(reason, "worker killed by SIGKILL (9)");
    // kill -9 of the worker lost and duplicated nothing: the differential lines replay
    // to what the store holds after a graceful stop.
    let (status, _) = d.terminate(LONG);
    assert_eq!(status.code(), Some(0), "{}", d.stderr_text());
    let replayed = daemon_support::replay(&s.results_of("mod3")).unwrap();
    let dump = s.dump();
    assert_eq!(replayed.rows, daemon_support::stored_rows(&dump, "mod3"));
    assert_eq!(
        replayed.last_counter,
        Some(daemon_support::stored_counter(&dump, "mod3"))
    );
}
