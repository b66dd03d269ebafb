//! Shared by the crates' tests (a dev-dependency only, never linked into a program).
//!
//! - Prerequisites: a test that needs a tool ([`require_tool`]) or a capability such as a
//!   network namespace ([`require`]) fails under `CI=true`, where `.ci/run` installs every
//!   tool the tests use, so a skip there cannot hide a test that never ran. Elsewhere it
//!   prints why it skips and returns.
//! - Waiting: [`wait_until`] and [`poll`] poll under a deadline instead of sleeping a fixed
//!   time and hoping the thing waited for happened.
//! - Randomised tests take their seed from an environment variable and print it
//!   ([`seed`]), so a failure can be replayed.

pub mod docker;

use std::fmt::Display;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Whether the tests run under CI: `CI` is `true` or `1`, as CI services set it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A prerequisite described by `what` is missing: panics under CI, otherwise prints that
/// the test skips and returns `None` for the caller to `return` on.
pub fn missing<T>(what: &str) -> Option<T> {
    if in_ci() {
        panic!(
            "{what}: a failure under CI=true, where .ci/run installs every tool the tests run (as root)"
        );
    }
    eprintln!("skipping: {what} (under CI=true this fails)");
    None
}

/// The path of the program `tool`, from `PATH` or else the sbin directories (where `ip`,
/// `sysctl` and `iptables-save` live, often outside a user's `PATH`). A missing tool is
/// handled by [`missing`]: `let Some(ip) = require_tool("ip") else { return };`.
pub fn require_tool(tool: &str) -> Option<PathBuf> {
    match find_tool(tool) {
        Some(path) => Some(path),
        None => missing(&format!("{tool} is not installed")),
    }
}

/// Where `tool` is, if anywhere on `PATH` or in the sbin directories.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// A prerequisite that is not a program (a network namespace, root): its value, or the
/// error handled by [`missing`] with `what` and the error as the reason.
pub fn require<T, E: Display>(what: &str, result: Result<T, E>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => missing(&format!("{what}: {e}")),
    }
}

/// osquery's RocksDB column families (its domains), as osquery creates them.
pub const OSQUERY_DOMAINS: [&str; 8] = [
    "configurations",
    "queries",
    "events",
    "logs",
    "carves",
    "distributed",
    "distributed_running",
    "query_performance",
];

/// Builds a RocksDB database at `dir` in osquery's layout (its column families) holding
/// `pairs` of (column family, key, value), with RocksDB's own `ldb` tool: an independent
/// writer for tests of oxquery's reader. `ldb` comes from [`require_tool`].
pub fn write_osquery_rocksdb(
    ldb: &std::path::Path,
    dir: &std::path::Path,
    pairs: &[(&str, &str, &str)],
) -> Result<(), String> {
    let db = format!("--db={}", dir.display());
    let run = |args: &[&str]| -> Result<(), String> {
        let out = std::process::Command::new(ldb)
            .arg(&db)
            .args(args)
            .output()
            .map_err(|e| format!("ldb: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ldb {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    // Only `put` creates a database: a key in `default`, deleted again.
    run(&["--create_if_missing", "put", "oxquery-test", "x"])?;
    run(&["delete", "oxquery-test"])?;
    for family in OSQUERY_DOMAINS {
        run(&["create_column_family", family])?;
    }
    for (family, key, value) in pairs {
        run(&[&format!("--column_family={family}"), "put", key, value])?;
    }
    Ok(())
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    poll(timeout, || cond().then_some(())).is_some()
}

/// Polls `f` every 10 ms until it returns a value or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The `osquery` SDK version `.ci/run` installs from PyPI (with the `thrift` it pulls).
pub const OSQUERY_SDK_VERSION: &str = "3.1.1";

/// The Python of the virtualenv holding the PyPI `osquery` SDK (the real client and
/// extension library osquery users run): `$OXQUERY_SDK_VENV`, else
/// `target/osquery-sdk-venv` of the workspace, where `.ci/run` makes it. When it is
/// missing or lacks the SDK, [`missing`] decides (a failure under CI).
pub fn osquery_sdk_python() -> Option<PathBuf> {
    let venv = match std::env::var_os("OXQUERY_SDK_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/osquery-sdk-venv"),
    };
    let python = venv.join("bin/python3");
    let works = std::process::Command::new(&python)
        .args(["-c", "import osquery, thrift"])
        .output()
        .is_ok_and(|o| o.status.success());
    if works {
        Some(python)
    } else {
        missing(&format!(
            "the osquery SDK (pip install 'osquery=={OSQUERY_SDK_VERSION}' into {}; .ci/run does)",
            venv.display()
        ))
    }
}

/// A random seed from the environment variable `var` (to replay a failure) or else from
/// the clock, printed with how to replay it.
pub fn seed(var: &str) -> u64 {
    let seed = match std::env::var(var) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{var}={s:?} is not a seed: {e}")),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    };
    eprintln!("seed {seed} (replay with {var}={seed})");
    seed
}

/// A small tmpfs mounted on an existing directory, unmounted when dropped: a file system
/// a test can fill (a full disk). Mounting needs root (`CAP_SYS_ADMIN`).
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs with `options` (`size=1m,mode=0750`) on `dir`.
    pub fn mount(dir: &std::path::Path, options: &str) -> std::io::Result<Tmpfs> {
        use std::os::unix::ffi::OsStrExt;
        let c = |s: &[u8]| std::ffi::CString::new(s).expect("no NUL");
        let target = c(dir.as_os_str().as_bytes());
        let options = c(options.as_bytes());
        let tmpfs = c(b"tmpfs");
        // SAFETY: valid NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                tmpfs.as_ptr(),
                target.as_ptr(),
                tmpfs.as_ptr(),
                0,
                options.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Tmpfs(dir.to_owned()))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }

    /// Fills the file system with one file until a write fails with ENOSPC; returns it.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.0.join("filler");
        let mut f = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![b'x'; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling: {e}"),
            }
        }
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        use std::os::unix::ffi::OsStrExt;
        let target = std::ffi::CString::new(self.0.as_os_str().as_bytes()).expect("no NUL");
        // SAFETY: a valid path; MNT_DETACH so a file still open cannot keep it mounted.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A loop device attached to a file with `losetup`, detached when dropped (also when
/// the test fails): a block device a test can make the kernel announce (a uevent).
pub struct LoopDevice {
    losetup: PathBuf,
    dev: String,
}

impl LoopDevice {
    /// Attaches the first free loop device to `file` with the `losetup` at `losetup`.
    pub fn attach(losetup: &std::path::Path, file: &std::path::Path) -> Result<LoopDevice, String> {
        let out = std::process::Command::new(losetup)
            .arg("--find")
            .arg("--show")
            .arg(file)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        Ok(LoopDevice {
            losetup: losetup.to_owned(),
            dev,
        })
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> &str {
        &self.dev
    }

    /// `loopN`, the kernel's name (a uevent's `DEVNAME`).
    pub fn name(&self) -> &str {
        self.dev.strip_prefix("/dev/").unwrap_or(&self.dev)
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        let status = std::process::Command::new(&self.losetup)
            .args(["--detach", &self.dev])
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("could not detach {}", self.dev);
        }
    }
}

/// A process of the test's own whose root is a directory the test filled (its own
/// `/etc/hosts`, `/etc/passwd`): `unshare --mount --root DIR` running Debian's static
/// busybox (`busybox-static`, copied to `DIR/bin/busybox`) asleep, in a mount namespace
/// of its own. Killed when dropped. Tables asked `pid_with_namespace = pid()` must see
/// that directory's files. Needs root (`CAP_SYS_ADMIN`); `None` (see [`missing`]) when a
/// tool is missing or we are not root.
pub struct RootedProcess {
    child: std::process::Child,
}

impl RootedProcess {
    /// Starts the process with `dir` as its root; the test writes the files first or
    /// after (the directory stays shared).
    pub fn start(dir: &std::path::Path) -> Option<RootedProcess> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return missing("root, to start a process in a mount namespace of its own");
        }
        let unshare = require_tool("unshare")?;
        let busybox = require_tool("busybox")?;
        std::fs::create_dir_all(dir.join("bin")).expect("create bin/");
        std::fs::copy(&busybox, dir.join("bin/busybox")).expect("copy busybox");
        let child = std::process::Command::new(unshare)
            .arg("--mount")
            .arg("--root")
            .arg(dir)
            .args(["/bin/busybox", "sleep", "3600"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("start unshare");
        let process = RootedProcess { child };
        // unshare execs busybox in place: the pid stays, its root changes when it chroots.
        let link = format!("/proc/{}/root", process.pid());
        let canonical = dir.canonicalize().expect("canonical root");
        let ready = wait_until(Duration::from_secs(10), || {
            std::fs::read_link(&link).is_ok_and(|t| t == canonical)
        });
        assert!(
            ready,
            "the process never took {} as its root",
            dir.display()
        );
        Some(process)
    }

    pub fn pid(&self) -> i64 {
        i64::from(self.child.id())
    }
}

impl Drop for RootedProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Set in the child runs of `a_missing_tool_fails_only_under_ci`.
    const CHILD_ENV: &str = "OXQUERY_TEST_SUPPORT_CHILD";

    #[test]
    fn child_role_needs_a_tool_nobody_has() {
        if std::env::var_os(CHILD_ENV).is_some() {
            assert!(require_tool("oxquery-no-such-tool").is_none());
        }
    }

    #[test]
    fn a_missing_tool_fails_only_under_ci() {
        let run = |ci: &str| {
            let out = Command::new(std::env::current_exe().unwrap())
                .args(["tests::child_role_needs_a_tool_nobody_has", "--exact"])
                .args(["--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, "1")
                .env("CI", ci)
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (passed, stderr) = run("false");
        assert!(passed, "{stderr}");
        assert!(
            stderr.contains("skipping: oxquery-no-such-tool is not installed"),
            "{stderr}"
        );
        let (passed, stderr) = run("true");
        assert!(!passed, "{stderr}");
        assert!(stderr.contains("a failure under CI=true"), "{stderr}");
    }

    #[test]
    fn finds_a_tool_every_system_has_and_not_a_made_up_one() {
        assert!(find_tool("sh").is_some_and(|p| p.is_absolute()));
        assert_eq!(find_tool("oxquery-no-such-tool"), None);
    }

    #[test]
    fn poll_returns_the_first_value_and_gives_up_at_the_deadline() {
        let mut n = 0;
        assert_eq!(
            poll(Duration::from_secs(10), || {
                n += 1;
                (n == 3).then_some(n)
            }),
            Some(3)
        );
        let start = Instant::now();
        assert!(!wait_until(Duration::from_millis(30), || false));
        assert!(start.elapsed() >= Duration::from_millis(30));
    }
}
