//! Extensions started by the real programs: `--extensions_autoload` and `--extension`
//! in osqueryi, in osqueryd alone (`--disable_watchdog`) and in osqueryd's watcher.
//! The extensions are shell scripts that record their arguments, environment and pid,
//! then sleep: each test checks osquery's exact arguments, the refusals of unsafe
//! entries, restarts, and that no extension outlives the program.

// This binary uses a part of the shell and daemon helpers (the shell's module allows
// what it leaves unused itself).
#[allow(dead_code)]
mod daemon_support;
mod shell_support;

use daemon_support::{Sandbox, proc_stat, wait_until};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// An extension that appends one line per start to `<record>`: its pid, `$0` and its
/// arguments, then sleeps as that very process.
fn recording_extension(path: &Path, record: &Path) {
    let script = format!(
        "#!/bin/sh\necho \"$$ $OSQUERY_EXTENSION $0 $*\" >> '{}'\nexec sleep 600\n",
        record.display()
    );
    write_mode(path, &script, 0o755);
}

/// The starts recorded so far: (pid, the rest of the line).
fn starts(record: &Path) -> Vec<(i32, String)> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pid, rest) = l.split_once(' ')?;
            Some((pid.parse().ok()?, rest.to_owned()))
        })
        .collect()
}

fn wait_for_starts(record: &Path, n: usize) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    let ok = wait_until(LONG, || {
        found = starts(record);
        found.len() >= n
    });
    assert!(
        ok,
        "{} starts recorded in {}: {found:?}",
        n,
        record.display()
    );
    found
}

/// A process that is gone: no `/proc` entry, or only its zombie under another parent
/// (reaped by init, not by us).
fn gone(pid: i32) -> bool {
    proc_stat(pid).is_none()
}

/// A directory of extensions: `good.ext` listed, `world.ext` listed but writable by
/// others (refused), `single` given with `--extension` (no `.ext`: not checked by name).
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let f = Fixture { dir };
        recording_extension(&f.path("good.ext"), &f.path("good.record"));
        recording_extension(&f.path("single"), &f.path("single.record"));
        recording_extension(&f.path("world.ext"), &f.path("world.record"));
        std::fs::set_permissions(f.path("world.ext"), std::fs::Permissions::from_mode(0o757))
            .unwrap();
        std::fs::write(
            f.path("extensions.load"),
            format!(
                "# autoloaded\n{}\n{}\n",
                f.path("good.ext").display(),
                f.path("world.ext").display()
            ),
        )
        .unwrap();
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn socket(&self) -> PathBuf {
        self.path("osquery.em")
    }

    fn flags(&self) -> Vec<String> {
        vec![
            "--disable_extensions=false".to_owned(),
            format!("--extensions_socket={}", self.socket().display()),
            format!(
                "--extensions_autoload={}",
                self.path("extensions.load").display()
            ),
            format!("--extension={}", self.path("single").display()),
            "--extensions_timeout=7".to_owned(),
        ]
    }

    /// What a start of `name` must have recorded after its pid: `OSQUERY_EXTENSION` (its
    /// own pid), `$0` (the binary's path) and the arguments.
    fn expected(&self, name: &str, pid: i32) -> String {
        format!(
            "{pid} {} --socket {} --timeout 7 --interval 3",
            self.path(name).display(),
            self.socket().display()
        )
    }

    fn refusal(&self) -> String {
        format!(
            "Will not autoload extension with unsafe directory permissions: {} (it is writable by others)",
            self.path("world.ext").display()
        )
    }
}

fn parent_of(pid: i32) -> i32 {
    proc_stat(pid).expect("running").1
}

#[test]
fn the_shell_starts_its_extensions_with_osquerys_arguments_and_stops_them_at_exit() {
    let f = Fixture::new();
    let mut child = Command::new(shell_support::BIN)
        .args(f.flags())
        .env("HOME", f.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let good = wait_for_starts(&f.path("good.record"), 1);
    let single = wait_for_starts(&f.path("single.record"), 1);
    let (good_pid, single_pid) = (good[0].0, single[0].0);
    assert_eq!(good[0].1, f.expected("good.ext", good_pid));
    assert_eq!(single[0].1, f.expected("single", single_pid));
    assert_eq!(parent_of(good_pid), child.id() as i32);
    assert!(starts(&f.path("world.record")).is_empty());
    // End the shell: its input closes after one query.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"select 1 as one;\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&f.refusal()), "{stderr}");
    assert!(
        gone(good_pid) && gone(single_pid),
        "an extension outlived the shell"
    );
}

#[test]
fn the_daemon_without_watchdog_starts_its_extensions_and_stops_them_at_exit() {
    let f = Fixture::new();
    let sandbox = Sandbox::new();
    sandbox.write_config(r#"{"schedule": {}}"#);
    let mut args = f.flags();
    args.push("--disable_watchdog".to_owned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut daemon = sandbox.start("alone", &args);
    let good = wait_for_starts(&f.path("good.record"), 1);
    let single = wait_for_starts(&f.path("single.record"), 1);
    let (good_pid, single_pid) = (good[0].0, single[0].0);
    assert_eq!(good[0].1, f.expected("good.ext", good_pid));
    assert_eq!(single[0].1, f.expected("single", single_pid));
    assert_eq!(parent_of(good_pid), daemon.pid());
    assert_eq!(parent_of(single_pid), daemon.pid());
    let (status, _) = daemon.terminate(LONG);
    assert!(status.success(), "{}", daemon.stderr_text());
    assert!(daemon.stderr_text().contains(&f.refusal()));
    assert!(
        gone(good_pid) && gone(single_pid),
        "an extension outlived the daemon"
    );
}

#[test]
fn the_watcher_starts_extensions_restarts_them_and_stops_them_with_the_daemon() {
    let f = Fixture::new();
    let sandbox = Sandbox::new();
    sandbox.write_config(r#"{"schedule": {}}"#);
    let args = f.flags();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut daemon = sandbox.start("watched", &args);
    let good = wait_for_starts(&f.path("good.record"), 1);
    let first = good[0].0;
    // The watcher is the parent, as in osquery, and tells its worker extensions exist.
    assert_eq!(parent_of(first), daemon.pid());
    let worker = daemon.worker_pid().expect("a worker");
    let environ = std::fs::read(format!("/proc/{worker}/environ")).unwrap();
    assert!(
        environ
            .split(|&b| b == 0)
            .any(|v| v == b"OSQUERY_EXTENSIONS=true"),
        "the worker lacks OSQUERY_EXTENSIONS"
    );
    // An extension that dies is reaped and started again at the next check.
    // SAFETY: kill(2) on the extension this test's daemon started.
    unsafe { libc::kill(first, libc::SIGKILL) };
    let again = wait_for_starts(&f.path("good.record"), 2);
    let second = again[1].0;
    assert_ne!(second, first);
    assert!(
        wait_until(LONG, || gone(first)),
        "the killed extension was not reaped"
    );
    let (status, _) = daemon.terminate(LONG);
    assert!(status.success(), "{}", daemon.stderr_text());
    let single = starts(&f.path("single.record"));
    assert!(gone(second), "an extension outlived the daemon");
    for (pid, _) in single {
        assert!(gone(pid), "an extension outlived the daemon");
    }
}

#[test]
fn an_extension_over_the_memory_limit_is_stopped_and_restarted() {
    let f = Fixture::new();
    let hog = f.path("hog.ext");
    let record = f.path("hog.record");
    // Grows by about 60 MB a few seconds after its start, after the watcher's first
    // sample, then keeps it.
    write_mode(
        &hog,
        &format!(
            "#!/bin/sh\necho \"$$ hog\" >> '{}'\nsleep 4\nx=$(head -c 60000000 /dev/zero | tr '\\000' a)\nwhile :; do sleep 1; done\n",
            record.display()
        ),
        0o755,
    );
    std::fs::write(f.path("hog.load"), format!("{}\n", hog.display())).unwrap();
    let sandbox = Sandbox::new();
    sandbox.write_config(r#"{"schedule": {}}"#);
    let args = [
        "--disable_extensions=false".to_owned(),
        format!("--extensions_socket={}", f.socket().display()),
        format!("--extensions_autoload={}", f.path("hog.load").display()),
        "--enable_extensions_watchdog".to_owned(),
        // In osquery the limits apply without a watcher too; here no worker shares
        // them.
        "--disable_watchdog".to_owned(),
        "--watchdog_memory_limit=20".to_owned(),
        "--watchdog_delay=0".to_owned(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut daemon = sandbox.start("hog", &args);
    let runs = wait_for_starts(&record, 2);
    let first = runs[0].0;
    assert!(wait_until(LONG, || gone(first)));
    let stderr = daemon.stderr_text();
    let stopping = format!(
        "osquery extension {} ({first}) stopping: memory ",
        hog.display()
    );
    assert!(stderr.contains(&stopping), "{stderr}");
    daemon.terminate(LONG);
    for (pid, _) in starts(&record) {
        assert!(gone(pid), "an extension outlived the daemon");
    }
}
