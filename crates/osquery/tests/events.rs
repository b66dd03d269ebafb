//! Events through the real `osqueryd`: a scheduled query over an evented table logs each
//! event once, also across a restart and a `kill -9`, and `osquery_events` shows the
//! publisher at work. Each test watches only a directory of its own.

// This binary uses a part of the daemon helpers.
#[allow(dead_code)]
mod daemon_support;

use daemon_support::{Sandbox, wait_until};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(20);
const EVENTS: [&str; 2] = ["--disable_events=false", "--enable_file_events=true"];

/// The query runs every second, so a `kill -9` may land while it runs; `"denylist":
/// false` keeps the crash from deny-listing it (what this test checks is delivery).
fn file_events_config(watched: &Path) -> String {
    format!(
        r#"{{
  "file_paths": {{ "sandbox": ["{}/%%"] }},
  "schedule": {{
    "created": {{
      "query": "SELECT target_path, category FROM file_events WHERE action = 'CREATED'",
      "interval": 1,
      "denylist": false
    }}
  }}
}}"#,
        watched.display()
    )
}

/// How many times each created path was logged.
fn logged(s: &Sandbox) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for line in s.results_of("created") {
        assert_eq!(
            line["action"], "added",
            "evented results are only added: {line:?}"
        );
        let path = line["columns"]["target_path"].as_str().unwrap().to_owned();
        assert_eq!(line["columns"]["category"], "sandbox");
        *seen.entry(path).or_default() += 1;
    }
    seen
}

/// Creates probe files until one is logged: the publisher's watches are in place.
fn wait_for_watches(s: &Sandbox, watched: &Path, tag: &str) {
    let mut n = 0;
    let ready = wait_until(LONG, || {
        n += 1;
        std::fs::write(watched.join(format!("probe-{tag}-{n}")), b"").unwrap();
        std::thread::sleep(Duration::from_millis(200));
        logged(s)
            .keys()
            .any(|p| p.contains(&format!("probe-{tag}-")))
    });
    assert!(ready, "no file event was ever logged");
}

fn wait_logged(s: &Sandbox, path: &Path) {
    let key = path.display().to_string();
    assert!(
        wait_until(LONG, || logged(s).contains_key(&key)),
        "{key} was not logged: {:?}",
        logged(s)
    );
}

#[test]
fn each_file_event_is_logged_once_across_a_restart_and_a_kill_9() {
    let s = Sandbox::new();
    let watched = s.path().join("watched");
    std::fs::create_dir(&watched).unwrap();
    s.write_config(&file_events_config(&watched));

    let mut d = s.start("first", &EVENTS);
    wait_for_watches(&s, &watched, "first");
    let one = watched.join("one");
    std::fs::write(&one, b"1").unwrap();
    wait_logged(&s, &one);
    // A few more scheduled runs: nothing is logged again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(d.terminate(Duration::from_secs(10)).0.code(), Some(0));

    let mut d = s.start("second", &EVENTS);
    wait_for_watches(&s, &watched, "second");
    let nested = watched.join("new-dir");
    std::fs::create_dir(&nested).unwrap();
    let two = nested.join("two");
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(&two, b"2").unwrap();
    wait_logged(&s, &two);
    std::thread::sleep(Duration::from_secs(2));
    d.kill9();

    let mut d = s.start("third", &EVENTS);
    wait_for_watches(&s, &watched, "third");
    let three = watched.join("three");
    std::fs::write(&three, b"3").unwrap();
    wait_logged(&s, &three);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(d.terminate(Duration::from_secs(10)).0.code(), Some(0));

    let counts = logged(&s);
    for (path, n) in &counts {
        assert_eq!(*n, 1, "{path} logged {n} times: {counts:?}");
    }
}

#[test]
fn osquery_events_shows_the_publisher_and_its_subscriber() {
    let s = Sandbox::new();
    let watched = s.path().join("watched");
    std::fs::create_dir(&watched).unwrap();
    s.write_config(&format!(
        r#"{{
  "file_paths": {{ "sandbox": ["{}/%"] }},
  "schedule": {{
    "events": {{ "query": "SELECT name, type, active FROM osquery_events WHERE name IN ('inotify', 'file_events')", "interval": 1, "snapshot": true }}
  }}
}}"#,
        watched.display()
    ));
    let mut d = s.start("events", &EVENTS);
    let shown = wait_until(LONG, || {
        let lines = s.lines(&s.snapshots_log());
        lines.iter().any(|l| {
            let rows = l["snapshot"].as_array().cloned().unwrap_or_default();
            rows.iter()
                .any(|r| r["name"] == "inotify" && r["type"] == "publisher" && r["active"] == "1")
                && rows
                    .iter()
                    .any(|r| r["name"] == "file_events" && r["type"] == "subscriber")
        })
    });
    let _ = d.terminate(Duration::from_secs(10));
    assert!(shown, "{:?}", s.lines(&s.snapshots_log()));
}

/// Opens the syslog pipe for writing once a daemon reads it (as rsyslog's `ompipe`
/// would); non-blocking, so no reader means "not yet" rather than a hang.
fn syslog_writer(pipe: &Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    let mut writer = None;
    let opened = wait_until(LONG, || {
        writer = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(pipe)
            .ok();
        writer.is_some()
    });
    assert!(opened, "no daemon ever read {}", pipe.display());
    writer.unwrap()
}

/// How many times each syslog message was logged by the query `syslog`.
fn syslog_logged(s: &Sandbox) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for line in s.results_of("syslog") {
        assert_eq!(line["action"], "added", "{line:?}");
        assert_eq!(line["columns"]["tag"], "oxquery-test[7]", "{line:?}");
        let message = line["columns"]["message"].as_str().unwrap().to_owned();
        *seen.entry(message).or_default() += 1;
    }
    seen
}

#[test]
fn each_syslog_line_written_into_the_pipe_is_logged_once_across_a_restart() {
    use std::io::Write;
    let s = Sandbox::new();
    let pipe = s.path().join("syslog/pipe");
    s.write_config(
        r#"{ "schedule": { "syslog": { "query": "SELECT tag, message FROM syslog_events", "interval": 1 } } }"#,
    );
    let pipe_flag = format!("--syslog_pipe_path={}", pipe.display());
    let args = [
        "--disable_events=false",
        "--enable_syslog=true",
        pipe_flag.as_str(),
    ];
    for run in ["first", "second"] {
        let mut d = s.start(run, &args);
        let message = format!("{run} run, with \"quotes\", and commas");
        let line = format!(
            "\"2026-12-06T14:00:00.5+00:00\",\"host\",\"5\",\"user\",\"oxquery-test[7]:\",\"{}\"\n",
            message.replace('"', "\"\"")
        );
        syslog_writer(&pipe).write_all(line.as_bytes()).unwrap();
        assert!(
            wait_until(LONG, || syslog_logged(&s).contains_key(&message)),
            "{message:?} was not logged: {:?}\n{}",
            syslog_logged(&s),
            d.stderr_text()
        );
        // A few more scheduled runs: nothing is logged again.
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(d.terminate(Duration::from_secs(10)).0.code(), Some(0));
    }
    let counts = syslog_logged(&s);
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
}
