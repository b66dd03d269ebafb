//! Helpers for driving the real `osqueryd`: a sandbox directory per test holding the
//! config, database, logs and pidfile; a guard that kills its daemon when dropped (also
//! when the test panics); result-log parsing and the differential replay.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_osqueryd");

pub use oxquery_test_support::wait_until;

/// One test's private directory: everything the daemon reads or writes lives here.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn config(&self) -> PathBuf {
        self.path().join("osquery.conf")
    }
    pub fn database(&self) -> PathBuf {
        self.path().join("osquery.db")
    }
    pub fn logs(&self) -> PathBuf {
        self.path().join("logs")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.path().join("osqueryd.pidfile")
    }
    /// The extension manager's socket (never the shared /var/osquery/osquery.em).
    pub fn extensions_socket(&self) -> PathBuf {
        self.path().join("osquery.em")
    }
    pub fn results_log(&self) -> PathBuf {
        self.logs().join("osqueryd.results.log")
    }
    pub fn snapshots_log(&self) -> PathBuf {
        self.logs().join("osqueryd.snapshots.log")
    }

    /// Replaces the config atomically (write + rename), so a reload never reads half
    /// a file.
    pub fn write_config(&self, text: &str) {
        let tmp = self.path().join("osquery.conf.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.config()).unwrap();
    }

    /// The flags that keep the daemon inside the sandbox.
    pub fn args(&self) -> Vec<String> {
        vec![
            format!("--config_path={}", self.config().display()),
            format!("--database_path={}", self.database().display()),
            format!("--logger_path={}", self.logs().display()),
            format!("--pidfile={}", self.pidfile().display()),
            format!("--extensions_socket={}", self.extensions_socket().display()),
            // Intervals exact, whatever the config says.
            "--schedule_splay_percent=0".to_owned(),
            // Naming a flagfile keeps the host's default one under /etc out of the test.
            "--flagfile=/dev/null".to_owned(),
        ]
    }

    /// The flags that enroll the daemon with a test fleet `server` (its hostname and CA;
    /// the enroll secret `s3cret` written in the sandbox), the watchdog off.
    #[allow(dead_code)] // Only the fleet tests include this module for it.
    pub fn enroll_args(&self, server: &oxquery_remote::testing::TestServer) -> Vec<String> {
        let secret = self.path().join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        vec![
            "--disable_watchdog".to_owned(),
            format!("--tls_hostname={}", server.hostname()),
            format!("--tls_server_certs={}", server.ca_path().display()),
            format!("--enroll_secret_path={}", secret.display()),
            "--enroll_tls_endpoint=/enroll".to_owned(),
        ]
    }

    /// Runs a one-shot mode (`--config_check`, `--database_dump`, ...) to completion.
    pub fn run(&self, extra: &[&str]) -> Output {
        Command::new(BIN)
            .args(self.args())
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("osqueryd runs")
    }

    /// Starts a daemon; its stdout and stderr go to files named after `tag`.
    pub fn spawn(&self, tag: &str, extra: &[&str]) -> Daemon {
        let out = File::create(self.path().join(format!("{tag}.stdout"))).unwrap();
        let err_path = self.path().join(format!("{tag}.stderr"));
        let err = File::create(&err_path).unwrap();
        // Its own process group: the watcher and its worker, killed together.
        let child = Command::new(BIN)
            .args(self.args())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .expect("osqueryd starts");
        Daemon {
            child,
            stderr: err_path,
        }
    }

    /// Starts a daemon and waits until it has said it is running (signal handlers are
    /// installed by then).
    pub fn start(&self, tag: &str, extra: &[&str]) -> Daemon {
        let mut d = self.spawn(tag, extra);
        let started = wait_until(Duration::from_secs(15), || {
            d.stderr_text().contains("osqueryd started") || d.exited().is_some()
        });
        assert!(
            started && d.exited().is_none(),
            "daemon did not start: {:?}\n{}",
            d.exited(),
            d.stderr_text()
        );
        d
    }

    /// Every line of a result log, parsed.
    pub fn lines(&self, path: &Path) -> Vec<Map<String, Value>> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .map(|l| match serde_json::from_str(l) {
                Ok(Value::Object(m)) => m,
                _ => panic!("not a JSON object line: {l:?}"),
            })
            .collect()
    }

    pub fn results(&self) -> Vec<Map<String, Value>> {
        self.lines(&self.results_log())
    }

    /// Result lines of query `name`.
    pub fn results_of(&self, name: &str) -> Vec<Map<String, Value>> {
        self.results()
            .into_iter()
            .filter(|l| l["name"] == name)
            .collect()
    }

    /// The distinct counters logged for `name`.
    pub fn counters_of(&self, name: &str) -> Vec<u64> {
        let mut out: Vec<u64> = Vec::new();
        for l in self.results_of(name) {
            let c = l["counter"].as_u64().unwrap();
            if out.last() != Some(&c) {
                out.push(c);
            }
        }
        out
    }

    /// `--database_dump` as domain → key → value.
    pub fn dump(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        let out = self.run(&["--database_dump"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "database_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut map: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let (head, value) = line.split_once("]: ").expect("domain[key]: value");
            let (domain, key) = head.split_once('[').expect("domain[key");
            map.entry(domain.to_owned())
                .or_default()
                .insert(key.to_owned(), value.to_owned());
        }
        map
    }

    /// The status log file the `osqueryd.<severity>` symlink points at, if any.
    pub fn status_log(&self, severity: &str) -> String {
        std::fs::read_to_string(self.logs().join(format!("osqueryd.{severity}")))
            .unwrap_or_default()
    }
}

/// A running daemon, SIGKILLed and reaped when dropped unless already stopped.
pub struct Daemon {
    child: Child,
    stderr: PathBuf,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// Sends `signal` to the watcher and its worker at once (SIGSTOP/SIGCONT).
    #[allow(dead_code)] // Not every test binary that includes this module uses it.
    pub fn signal_group(&self, signal: i32) {
        // SAFETY: killpg on the process group our child leads.
        assert_eq!(unsafe { libc::killpg(self.pid(), signal) }, 0);
    }

    /// The exit status if the daemon has exited (reaping it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// SIGTERM, then waits up to `timeout` for the exit; returns the status and how long
    /// the stop took.
    pub fn terminate(&mut self, timeout: Duration) -> (ExitStatus, Duration) {
        self.stop_with(libc::SIGTERM, timeout)
    }

    /// Sends `signal`, then waits up to `timeout` for the exit.
    pub fn stop_with(&mut self, signal: i32, timeout: Duration) -> (ExitStatus, Duration) {
        let asked = Instant::now();
        self.signal(signal);
        let mut status = None;
        wait_until(timeout, || {
            status = self.exited();
            status.is_some()
        });
        let status = status.unwrap_or_else(|| {
            panic!(
                "daemon still running {timeout:?} after signal {signal}\n{}",
                self.stderr_text()
            )
        });
        (status, asked.elapsed())
    }

    /// SIGKILL to the watcher and its worker (the whole process group, as a crash of
    /// the machine would), reaps the watcher and waits until no process of the group
    /// runs any more, so a restarted daemon never meets the old worker.
    pub fn kill9(&mut self) {
        // SAFETY: killpg on the process group our child leads.
        unsafe { libc::killpg(self.pid(), libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
        let pgrp = self.pid();
        let gone = wait_until(Duration::from_secs(10), || group_members(pgrp).is_empty());
        assert!(gone, "processes of group {pgrp} still running");
    }

    /// The worker the watcher started (its child marked `OSQUERY_WORKER=<its pid>`),
    /// once there is one.
    pub fn worker_pid(&self) -> Option<i32> {
        children(self.pid()).into_iter().find(|&pid| is_worker(pid))
    }

    /// Waits for a worker other than `not` (a restart), up to `timeout`.
    #[allow(dead_code)] // Not every test binary that includes this module uses it.
    pub fn wait_for_worker(&self, not: Option<i32>, timeout: Duration) -> Option<i32> {
        let mut found = None;
        wait_until(timeout, || {
            found = self.worker_pid().filter(|&w| Some(w) != not);
            found.is_some()
        });
        found
    }
}

/// Fields of `/proc/<pid>/stat` after the command name: (state, ppid, pgrp).
pub fn proc_stat(pid: i32) -> Option<(char, i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

fn live_processes() -> impl Iterator<Item = (i32, (char, i32, i32))> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, proc_stat(pid)?)))
        .filter(|(_, (state, _, _))| *state != 'Z')
}

/// Running (not zombie) children of `parent`.
pub fn children(parent: i32) -> Vec<i32> {
    live_processes()
        .filter(|(_, (_, ppid, _))| *ppid == parent)
        .map(|(pid, _)| pid)
        .collect()
}

/// Running (not zombie) members of process group `pgrp`.
pub fn group_members(pgrp: i32) -> Vec<i32> {
    live_processes()
        .filter(|(_, (_, _, group))| *group == pgrp)
        .map(|(pid, _)| pid)
        .collect()
}

/// Whether `pid` carries osquery's worker marker with its own pid.
pub fn is_worker(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .any(|entry| entry == format!("OSQUERY_WORKER={pid}").as_bytes())
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.kill9();
        }
    }
}

/// A row as logged: every value a string (the default, `--logger_numerics=false`).
pub type LoggedRow = BTreeMap<String, String>;

fn logged_row(columns: &Value) -> LoggedRow {
    columns
        .as_object()
        .expect("columns is an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
        .collect()
}

/// A stored row (typed JSON) in the logged form.
pub fn stored_row(row: &Value) -> LoggedRow {
    row.as_object()
        .expect("stored row is an object")
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// What replaying one query's event-format lines found.
#[derive(Debug, Default)]
pub struct Replay {
    /// The multiset of rows after the last line, sorted.
    pub rows: Vec<LoggedRow>,
    pub lines: usize,
    pub last_counter: Option<u64>,
}

/// Replays the event-format lines of one query from an empty multiset and checks the
/// differential contract on the way: counters consecutive from 0 (a counter may span
/// several lines, and never comes back), removed lines before added ones within a
/// counter, every removed row present, no line twice.
pub fn replay(lines: &[Map<String, Value>]) -> Result<Replay, String> {
    let mut set: BTreeMap<LoggedRow, usize> = BTreeMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut counter: Option<u64> = None;
    let mut adding = false;
    for (i, line) in lines.iter().enumerate() {
        let text = Value::Object(line.clone()).to_string();
        if !seen.insert(text.clone()) {
            return Err(format!("line {i} logged twice: {text}"));
        }
        let c = line["counter"].as_u64().ok_or("counter is a number")?;
        match counter {
            Some(prev) if prev == c => {}
            prev => {
                let expected = prev.map_or(0, |p| p + 1);
                if c != expected {
                    return Err(format!("line {i}: counter {c} after {prev:?}: {text}"));
                }
                counter = Some(c);
                adding = false;
            }
        }
        let row = logged_row(&line["columns"]);
        match line["action"].as_str() {
            Some("removed") => {
                if adding {
                    return Err(format!("line {i}: removed after added in one counter"));
                }
                match set.get_mut(&row) {
                    Some(n) if *n > 1 => *n -= 1,
                    Some(_) => {
                        set.remove(&row);
                    }
                    None => return Err(format!("line {i}: removed a row not present: {text}")),
                }
            }
            Some("added") => {
                adding = true;
                *set.entry(row).or_default() += 1;
            }
            other => return Err(format!("line {i}: action {other:?}")),
        }
    }
    let rows = set
        .into_iter()
        .flat_map(|(row, n)| std::iter::repeat_n(row, n))
        .collect();
    Ok(Replay {
        rows,
        lines: lines.len(),
        last_counter: counter,
    })
}

/// The stored last result of `name` (`queries[<name>]`) in the logged form, sorted.
pub fn stored_rows(
    dump: &BTreeMap<String, BTreeMap<String, String>>,
    name: &str,
) -> Vec<LoggedRow> {
    let text = dump
        .get("queries")
        .and_then(|q| q.get(name))
        .unwrap_or_else(|| panic!("no queries[{name}] in the dump"));
    let value: Value = serde_json::from_str(text).expect("stored rows are JSON");
    let mut rows: Vec<LoggedRow> = value
        .as_array()
        .expect("stored rows are an array")
        .iter()
        .map(stored_row)
        .collect();
    rows.sort();
    rows
}

/// The stored counter of `name`.
pub fn stored_counter(dump: &BTreeMap<String, BTreeMap<String, String>>, name: &str) -> u64 {
    dump["queries"][&format!("{name}counter")].parse().unwrap()
}

/// A small deterministic generator (xorshift), seeded so a failure can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}
