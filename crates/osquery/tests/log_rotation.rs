//! osqueryd's logs under an outside rotation, driven as a process: logrotate's renames
//! and `rm -rf` of the log directory while results flow (every run's lines exactly once
//! across the rotated and new files), SIGHUP, and a full disk.

#[allow(dead_code)]
mod daemon_support;

use daemon_support::{Sandbox, replay, stored_counter, stored_rows, wait_until};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);

fn config(schedule: &[String]) -> String {
    format!(
        r#"{{"options": {{"schedule_splay_percent": 0}}, "schedule": {{ {} }}}}"#,
        schedule.join(",")
    )
}

fn every_second(name: &str, sql: &str) -> String {
    format!(r#""{name}": {{"query": "{sql}", "interval": 1}}"#)
}

/// Differential queries that change every second, small to large.
fn differential_queries(bulk: bool) -> Vec<String> {
    let mut out = vec![
        every_second("mod3", "SELECT unix_time % 3 AS m FROM time"),
        // Five rows sliding by one each second: one removed and one added per change.
        every_second(
            "window",
            "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 4) \
             SELECT (x + unix_time) % 7 AS v FROM c, time",
        ),
        every_second(
            "pairs",
            "SELECT unix_time % 4 AS a, unix_time % 6 AS b FROM time \
             UNION ALL SELECT 'fixed', 'row'",
        ),
    ];
    if bulk {
        // 300 rows replaced every second: batches large enough to be caught mid-way.
        out.push(every_second(
            "bulk",
            "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < 299) \
             SELECT x, (x * 7 + unix_time) % 100000 AS v FROM c, time",
        ));
    }
    out
}

fn len(p: &Path) -> u64 {
    fs::metadata(p).map_or(0, |m| m.len())
}

/// Checks every differential query's lines, read from `files` in order: counters
/// consecutive from 0, no line twice, and the replayed rows equal to what the store
/// holds. Returns the number of lines checked.
fn check_exactly_once(s: &Sandbox, files: &[PathBuf], names: &[&str]) -> usize {
    let all: Vec<Map<String, Value>> = files.iter().flat_map(|f| s.lines(f)).collect();
    let dump = s.dump();
    let mut total = 0;
    for name in names {
        let lines: Vec<Map<String, Value>> =
            all.iter().filter(|l| l["name"] == *name).cloned().collect();
        let replayed = replay(&lines).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(replayed.rows, stored_rows(&dump, name), "{name}: rows");
        assert_eq!(
            replayed.last_counter,
            Some(stored_counter(&dump, name)),
            "{name}: last counter"
        );
        total += replayed.lines;
    }
    total
}

/// Moves `path` into `dir` under `name` (same filesystem: the inode, and any line the
/// daemon still writes to it, stays).
fn keep(path: &Path, dir: &Path, name: String) -> PathBuf {
    let to = dir.join(name);
    fs::rename(path, &to).unwrap();
    to
}

#[test]
fn renames_and_deletes_while_running_lose_and_duplicate_nothing() {
    const ROTATIONS: u64 = 12;
    let s = Sandbox::new();
    fs::set_permissions(s.logs(), fs::Permissions::from_mode(0o750)).unwrap();
    let mut schedule = differential_queries(true);
    schedule.push(
        r#""clock": {"query": "SELECT unix_time AS t FROM time", "interval": 1, "snapshot": true}"#
            .to_owned(),
    );
    s.write_config(&config(&schedule));
    let mut d = s.start("run", &[]);
    let kept = s.path().join("kept");
    fs::create_dir(&kept).unwrap();
    // Retired files, oldest first, wherever they are now.
    let mut results: Vec<PathBuf> = Vec::new();
    let mut snapshots: Vec<PathBuf> = Vec::new();
    let mut rng = daemon_support::Rng::new(oxquery_test_support::seed("OXQUERY_ROTATION_SEED"));
    let (mut renames, mut deletes, mut hangups) = (0, 0, 0);
    for i in 0..ROTATIONS {
        // Each rotation lands while lines flow into the file the last one left.
        assert!(
            wait_until(LONG, || len(&s.results_log()) > 0),
            "rotation {i}: no results written to a new {}\n{}",
            s.results_log().display(),
            d.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(rng.below(1500)));
        if i % 3 == 2 {
            // `rm -rf` of the directory: each file unlinked, then the directory. A hard
            // link made first keeps, for the check, what the daemon wrote to a log (and
            // still writes until it notices); a file it creates while the removal runs
            // makes `rmdir` fail and goes the same way.
            for p in results.iter_mut().chain(snapshots.iter_mut()) {
                if p.starts_with(s.logs()) {
                    let name = format!("rotated.{}", p.file_name().unwrap().to_string_lossy());
                    *p = keep(p, &kept, name);
                }
            }
            let mut n = 0;
            loop {
                let Ok(entries) = fs::read_dir(s.logs()) else {
                    break;
                };
                for entry in entries {
                    let path = entry.unwrap().path();
                    let list = if path == s.results_log() {
                        Some(&mut results)
                    } else if path == s.snapshots_log() {
                        Some(&mut snapshots)
                    } else {
                        None
                    };
                    if let Some(list) = list {
                        n += 1;
                        let link = kept.join(format!("deleted.{i}.{n}"));
                        fs::hard_link(&path, &link).unwrap();
                        list.push(link);
                    }
                    let _ = fs::remove_file(&path);
                }
                if fs::remove_dir(s.logs()).is_ok() {
                    break;
                }
            }
            deletes += 1;
        } else {
            // logrotate without copytruncate: rename, then (postrotate) maybe SIGHUP.
            for (list, current) in [
                (&mut results, s.results_log()),
                (&mut snapshots, s.snapshots_log()),
            ] {
                let mut to = current.as_os_str().to_owned();
                to.push(format!(".{i}"));
                if fs::rename(&current, &to).is_ok() {
                    list.push(PathBuf::from(to));
                }
            }
            renames += 1;
            if i % 3 == 1 {
                d.signal(libc::SIGHUP);
                hangups += 1;
            }
        }
    }
    assert!(
        wait_until(LONG, || len(&s.results_log()) > 0),
        "no results after the last rotation\n{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
    // The directory came back as it was.
    assert_eq!(fs::metadata(s.logs()).unwrap().mode() & 0o7777, 0o750);

    results.push(s.results_log());
    snapshots.push(s.snapshots_log());
    let total = check_exactly_once(&s, &results, &["mod3", "window", "pairs", "bulk"]);
    // Snapshots: every run's line once (the runs are told apart by their time).
    let mut times = HashSet::new();
    let mut snapshot_lines = 0;
    for file in &snapshots {
        for line in s.lines(file) {
            let t = line["snapshot"][0]["t"].as_str().unwrap().to_owned();
            assert!(times.insert(t.clone()), "snapshot of {t} logged twice");
            snapshot_lines += 1;
        }
    }
    assert!(snapshot_lines as u64 >= ROTATIONS);
    let non_empty = results.iter().filter(|f| len(f) > 0).count();
    eprintln!(
        "{renames} renames ({hangups} with SIGHUP), {deletes} rm -rf: {total} result lines \
         in {non_empty} files and {snapshot_lines} snapshot lines, each exactly once"
    );
}

#[test]
fn sighup_creates_the_results_log_again_at_once() {
    let s = Sandbox::new();
    // Nothing scheduled: no batch would ever recreate the file.
    s.write_config(&config(&[]));
    let mut d = s.start("run", &[]);
    assert!(s.results_log().exists(), "created at start");
    fs::rename(s.results_log(), s.logs().join("osqueryd.results.log.1")).unwrap();
    d.signal(libc::SIGHUP);
    assert!(
        wait_until(LONG, || s.results_log().exists()),
        "SIGHUP did not reopen {}\n{}",
        s.results_log().display(),
        d.stderr_text()
    );
    assert_eq!(len(&s.results_log()), 0);
    assert_eq!(
        fs::metadata(s.results_log()).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
}

#[test]
fn rm_rf_of_the_log_directory_brings_it_back_with_results_and_status_files() {
    let s = Sandbox::new();
    fs::set_permissions(s.logs(), fs::Permissions::from_mode(0o700)).unwrap();
    s.write_config(&config(&differential_queries(false)));
    let mut d = s.start("run", &[]);
    assert!(wait_until(LONG, || len(&s.results_log()) > 0));
    // Moved aside whole (what `rm -rf` leaves the daemon with, but kept for the check).
    let gone = s.path().join("gone");
    fs::rename(s.logs(), &gone).unwrap();
    assert!(
        wait_until(LONG, || len(&s.results_log()) > 0),
        "no results in a new {}\n{}",
        s.results_log().display(),
        d.stderr_text()
    );
    assert_eq!(fs::metadata(s.logs()).unwrap().mode() & 0o7777, 0o700);
    // Said in the status files of the new directory (by the status log or the results
    // logger, whichever needed the directory first).
    let said = |text: String| {
        text.starts_with("Log file created at: ")
            && text.contains("was deleted; created it again")
            && text.contains("osqueryd.results.log was renamed or deleted; logging to a new file")
    };
    assert!(
        wait_until(LONG, || said(s.status_log("INFO"))),
        "{}\n{}",
        s.status_log("INFO"),
        d.stderr_text()
    );
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
    let files = [gone.join("osqueryd.results.log"), s.results_log()];
    let total = check_exactly_once(&s, &files, &["mod3", "window", "pairs"]);
    eprintln!("{total} lines across the old and new directory, each once");
}

// ---- a full disk ----

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// Makes the daemon log an error (so a line reaches every status file): a config it
/// cannot read, loaded by SIGHUP.
fn provoke_an_error(s: &Sandbox, d: &daemon_support::Daemon) {
    s.write_config("{ not json");
    d.signal(libc::SIGHUP);
    let said = "Configuration refresh failed";
    assert!(
        wait_until(LONG, || s.status_log("WARNING").contains(said)),
        "{}",
        d.stderr_text()
    );
}

/// The `osqueryd.WARNING.*` files.
fn warning_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("osqueryd.WARNING."))
        .collect()
}

#[test]
fn a_full_disk_makes_one_warning_file_and_logs_the_recovery_once() {
    let s = Sandbox::new();
    let Some(tmpfs) = oxquery_test_support::require(
        "a 1 MiB tmpfs on the log directory (root)",
        oxquery_test_support::Tmpfs::mount(&s.logs(), "size=1m,mode=0750"),
    ) else {
        return;
    };
    let names = ["mod3", "window", "pairs"];
    s.write_config(&config(&differential_queries(false)));
    let mut d = s.start("run", &[]);
    assert!(wait_until(LONG, || len(&s.results_log()) > 0));
    let filler = tmpfs.fill();
    // Retries back off 1, 2, 4 s: wait for four failures, each with its warnings.
    let failure = "Logger plugin filesystem failed to write results lines";
    assert!(
        wait_until(Duration::from_secs(40), || count(&d.stderr_text(), failure)
            >= 4),
        "{}",
        d.stderr_text()
    );
    let during = warning_files(&s.logs());
    assert!(
        during.len() <= 1,
        "a new status file at each retry: {during:?}"
    );

    fs::remove_file(&filler).unwrap();
    // The next warning finds the WARNING file made during the outage, and says first
    // how many lines it lost.
    let stderr = recover_and_stop(&s, &mut d);
    assert_eq!(warning_files(&s.logs()).len(), 1);
    let warnings = s.status_log("WARNING");
    let body: Vec<&str> = warnings.lines().skip(3).collect();
    assert!(
        body[0].contains("status lines could not be written to")
            && body[0].contains("No space left on device"),
        "{warnings}"
    );
    assert_eq!(
        count(&warnings, "status lines could not be written to"),
        1,
        "{warnings}"
    );
    // Every file says it at most once.
    let info = s.status_log("INFO");
    assert!(
        count(&info, "status lines could not be written to") <= 1,
        "{info}"
    );
    assert_eq!(count(&s.status_log("INFO"), RECOVERED), 1);
    let total = check_exactly_once(&s, &[s.results_log()], &names);
    eprintln!(
        "{} failed writes while full, {} WARNING file, {total} lines exactly once",
        count(&stderr, failure),
        during.len()
    );
}

/// `chattr +i` on a directory (no entry can be created, renamed or removed in it; its
/// files can still be written), undone when dropped.
/// Once the cause of a logging outage is gone: the daemon says once that it writes again,
/// logs more runs, writes a status line after them (`provoke_an_error`) and stops cleanly.
/// Returns the daemon's stderr.
fn recover_and_stop(s: &Sandbox, d: &mut daemon_support::Daemon) -> String {
    let recovered = RECOVERED;
    assert!(
        wait_until(Duration::from_secs(90), || d
            .stderr_text()
            .contains(recovered)),
        "{}",
        d.stderr_text()
    );
    let at = len(&s.results_log());
    assert!(wait_until(LONG, || len(&s.results_log()) > at));
    provoke_an_error(s, d);
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
    let stderr = d.stderr_text();
    assert_eq!(count(&stderr, recovered), 1, "{stderr}");
    stderr
}

/// What the daemon says once when a sink writes again after failing.
const RECOVERED: &str = "Logger plugin filesystem writes again after";

/// Stops the daemon (SIGSTOP) and returns once every one of its threads is stopped:
/// kill(2) only queues the stop, and on a busy machine a running thread goes on for
/// a while before the thread that takes the signal stops the others.
fn pause(d: &daemon_support::Daemon) {
    // The worker does the logging; the watcher stops too, so it sees nothing odd.
    let worker = d.worker_pid().expect("a worker");
    d.signal_group(libc::SIGSTOP);
    let tasks = format!("/proc/{worker}/task");
    let stopped = |stat: String| {
        // The state follows the command name's closing parenthesis.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with(['T', 't']))
    };
    let all_stopped = || {
        std::fs::read_dir(&tasks).is_ok_and(|entries| {
            entries
                .flatten()
                .all(|task| std::fs::read_to_string(task.path().join("stat")).is_ok_and(stopped))
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), all_stopped),
        "the daemon's threads did not all stop"
    );
}

struct Immutable(PathBuf);

impl Immutable {
    fn set(dir: &Path) -> Result<Immutable, String> {
        let chattr = oxquery_test_support::find_tool("chattr").ok_or("no chattr")?;
        let out = std::process::Command::new(&chattr)
            .arg("+i")
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Immutable(dir.to_owned()))
    }

    fn clear(&self) {
        let chattr = oxquery_test_support::find_tool("chattr").unwrap();
        let status = std::process::Command::new(chattr)
            .arg("-i")
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        self.clear();
    }
}

#[test]
fn an_unwritable_log_directory_after_a_rename_delays_the_results_without_loss() {
    let s = Sandbox::new();
    let names = ["mod3", "window", "pairs"];
    s.write_config(&config(&differential_queries(false)));
    let mut d = s.start("run", &[]);
    assert!(wait_until(LONG, || len(&s.results_log()) > 0));
    // logrotate renames the file, then nothing can be created in the directory: the new
    // file cannot be made, and the daemon does not go back to the renamed one. The daemon
    // is stopped meanwhile (every thread), so that it cannot make the new file between
    // the two steps.
    let rotated = s.logs().join("osqueryd.results.log.1");
    pause(&d);
    fs::rename(s.results_log(), &rotated).unwrap();
    let immutable = Immutable::set(&s.logs());
    d.signal_group(libc::SIGCONT);
    let Some(immutable) = oxquery_test_support::require(
        "chattr +i on the log directory (root, a filesystem with the flag)",
        immutable,
    ) else {
        return;
    };
    let failure = "Logger plugin filesystem failed to write results lines";
    assert!(
        wait_until(Duration::from_secs(40), || count(&d.stderr_text(), failure)
            >= 3),
        "{}",
        d.stderr_text()
    );
    assert!(!s.results_log().exists());
    let during = warning_files(&s.logs());
    immutable.clear();
    let stderr = recover_and_stop(&s, &mut d);
    drop(immutable);
    assert!(during.is_empty(), "{during:?}");
    // The warnings the directory refused (their file could not be created) are counted
    // once, first in the file made after; the INFO file, open all along, lost none.
    let warnings = s.status_log("WARNING");
    let body: Vec<&str> = warnings.lines().skip(3).collect();
    assert!(
        body[0].contains("status lines could not be written to")
            && body[0].contains("Operation not permitted"),
        "{warnings}"
    );
    assert_eq!(
        count(&warnings, "status lines could not be written to"),
        1,
        "{warnings}"
    );
    let info = s.status_log("INFO");
    assert_eq!(count(&info, "could not be written"), 0, "{info}");
    assert!(count(&info, failure) >= 3, "{info}");
    let total = check_exactly_once(&s, &[rotated, s.results_log()], &names);
    eprintln!(
        "{} failed writes while unwritable, {total} lines exactly once across the rotated \
         and new file",
        count(&stderr, failure)
    );
}
