//! Running a helper program a table reads from (`iptables-save`, `lldpcli`, ...): the one
//! way any table starts a process.
//!
//! * The program is a bare name looked up only in [`PROGRAM_DIRS`], never in `$PATH`: we
//!   run as root, and the caller's `$PATH` (or a writable directory in it) must not pick
//!   what root executes. A name with a `/` is refused.
//! * It runs with no standard input, a fixed environment (`PATH` = the same directories,
//!   `LC_ALL=C` so output parses the same everywhere) and in a process group of its own.
//! * A timeout, a cancellation check polled while waiting, and a cap on the bytes read
//!   from stdout each end the run by killing the whole group (so a grandchild holding a
//!   pipe open cannot keep us waiting) and reaping the child. stderr is kept up to
//!   [`MAX_STDERR`] bytes and the rest is read and dropped, so a chatty child never
//!   blocks on a full pipe and never costs more memory than that.
//!
//! ```no_run
//! use oxquery_sys::exec::Helper;
//! use std::time::Duration;
//! let stdout = Helper::new("iptables-save")
//!     .arg("-c")
//!     .timeout(Duration::from_secs(5))
//!     .run()
//!     .and_then(|out| out.into_stdout())?;
//! # Ok::<(), oxquery_sys::exec::Error>(())
//! ```

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The only directories a helper program may come from.
pub const PROGRAM_DIRS: [&str; 4] = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];
/// How long a helper may run unless its caller says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How many stdout bytes are read unless the caller says otherwise.
pub const DEFAULT_MAX_OUTPUT: usize = 16 << 20;
/// stderr bytes kept (for the log line of a failed run); the rest is dropped.
pub const MAX_STDERR: usize = 64 << 10;
/// How often the cancellation check runs while the child is quiet.
const STOP_POLL: Duration = Duration::from_millis(10);

/// Why a helper produced no usable output.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{name} is not a program name (a helper is looked up by name, not path)")]
    NotAName { name: String },
    #[error("{name} is not installed in {}", PROGRAM_DIRS.join(", "))]
    NotFound { name: String },
    #[error("cannot run {}: {source}", program.display())]
    Io {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} did not finish within {} ms and was killed", program.display(), timeout.as_millis())]
    TimedOut { program: PathBuf, timeout: Duration },
    #[error("{} was killed because the query stopped", program.display())]
    Stopped { program: PathBuf },
    #[error("{} printed more than {limit} bytes and was killed", program.display())]
    TooMuchOutput { program: PathBuf, limit: usize },
    #[error("{} failed ({status}): {stderr}", program.display())]
    Failed {
        program: PathBuf,
        status: ExitStatus,
        stderr: String,
    },
}

/// The absolute path of helper program `name`: the first of [`PROGRAM_DIRS`] holding an
/// executable regular file of that name.
pub fn find_program(name: &str) -> Result<PathBuf, Error> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::NotAName {
            name: name.to_owned(),
        });
    }
    PROGRAM_DIRS
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| Error::NotFound {
            name: name.to_owned(),
        })
}

/// What a helper printed and how it ended.
#[derive(Debug)]
pub struct Output {
    pub program: PathBuf,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// At most [`MAX_STDERR`] bytes.
    pub stderr: Vec<u8>,
}

impl Output {
    /// stdout of a run that exited 0; otherwise [`Error::Failed`] with its stderr.
    pub fn into_stdout(self) -> Result<Vec<u8>, Error> {
        if self.status.success() {
            Ok(self.stdout)
        } else {
            Err(Error::Failed {
                program: self.program,
                status: self.status,
                stderr: String::from_utf8_lossy(&self.stderr).trim().to_owned(),
            })
        }
    }
}

/// One run of a helper program: its name, arguments and limits.
pub struct Helper<'a> {
    name: &'a str,
    args: Vec<OsString>,
    timeout: Duration,
    max_output: usize,
    stop: Option<&'a dyn Fn() -> bool>,
}

impl std::fmt::Debug for Helper<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Helper")
            .field("name", &self.name)
            .field("args", &self.args)
            .field("timeout", &self.timeout)
            .field("max_output", &self.max_output)
            .field("stop", &self.stop.is_some())
            .finish()
    }
}

impl<'a> Helper<'a> {
    /// The program `name` (a bare name, see [`find_program`]) with no arguments,
    /// [`DEFAULT_TIMEOUT`] and [`DEFAULT_MAX_OUTPUT`].
    pub fn new(name: &'a str) -> Self {
        Helper {
            name,
            args: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
            stop: None,
        }
    }
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }
    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }
    /// After `timeout` the child is killed and the run fails with [`Error::TimedOut`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Once stdout passes `bytes` the child is killed and the run fails with
    /// [`Error::TooMuchOutput`]: a partial listing would read as a wrong one.
    pub fn max_output(mut self, bytes: usize) -> Self {
        self.max_output = bytes;
        self
    }
    /// Polled while the child runs (every few milliseconds): `true` kills it and the run
    /// fails with [`Error::Stopped`]. Tables pass `&|| ctx.is_stopped()`.
    pub fn stop_when(mut self, stop: &'a dyn Fn() -> bool) -> Self {
        self.stop = Some(stop);
        self
    }

    /// Runs the program to its end or to the first limit it hits.
    pub fn run(&self) -> Result<Output, Error> {
        let program = find_program(self.name)?;
        let io_error = |source| Error::Io {
            program: program.clone(),
            source,
        };
        let child = Command::new(&program)
            .args(&self.args)
            .env_clear()
            .env("PATH", PROGRAM_DIRS.join(":"))
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so that killing it reaches whatever it started.
            .process_group(0)
            .spawn()
            .map_err(io_error)?;
        let mut running = Running {
            child,
            reaped: false,
        };
        let end = running.collect(self).map_err(|e| match e {
            Ended::Io(source) => io_error(source),
            Ended::TimedOut => Error::TimedOut {
                program: program.clone(),
                timeout: self.timeout,
            },
            Ended::Stopped => Error::Stopped {
                program: program.clone(),
            },
            Ended::TooMuchOutput => Error::TooMuchOutput {
                program: program.clone(),
                limit: self.max_output,
            },
        })?;
        Ok(Output {
            program,
            status: end.0,
            stdout: end.1,
            stderr: end.2,
        })
    }
}

/// Why [`Running::collect`] ended early.
enum Ended {
    Io(io::Error),
    TimedOut,
    Stopped,
    TooMuchOutput,
}

/// A spawned child that is killed (group and all) and reaped however the run ends.
struct Running {
    child: Child,
    reaped: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill_group();
            let _ = self.child.wait();
        }
    }
}

impl Running {
    fn kill_group(&mut self) {
        let Ok(pgid) = libc::pid_t::try_from(self.child.id()) else {
            return;
        };
        // SAFETY: kill(2) on the process group this run created; the child is not yet
        // reaped, so its pid (= the group id) still names that group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        // The child itself, should the group not have formed.
        let _ = self.child.kill();
    }

    /// Reads both pipes until they close and the child exits, within the helper's limits.
    fn collect(&mut self, helper: &Helper) -> Result<(ExitStatus, Vec<u8>, Vec<u8>), Ended> {
        let deadline = Instant::now() + helper.timeout;
        let mut stdout = self.child.stdout.take().map(Pipe::new).transpose()?;
        let mut stderr = self.child.stderr.take().map(Pipe::new).transpose()?;
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut chunk = vec![0u8; 64 << 10];
        loop {
            if helper.stop.is_some_and(|stop| stop()) {
                return Err(Ended::Stopped);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Ended::TimedOut);
            }
            let mut wait = deadline - now;
            if helper.stop.is_some() {
                wait = wait.min(STOP_POLL);
            }
            if stdout.is_none() && stderr.is_none() {
                // Both pipes closed: the child is exiting or has exited.
                if let Some(status) = self.child.try_wait().map_err(Ended::Io)? {
                    self.reaped = true;
                    return Ok((status, out, err));
                }
                std::thread::sleep(wait.min(Duration::from_millis(5)));
                continue;
            }
            poll_readable([stdout.as_ref(), stderr.as_ref()], wait).map_err(Ended::Io)?;
            if let Some(pipe) = &mut stdout {
                if pipe.drain(&mut chunk, &mut out, helper.max_output.saturating_add(1))? {
                    stdout = None;
                }
                if out.len() > helper.max_output {
                    return Err(Ended::TooMuchOutput);
                }
            }
            if let Some(pipe) = &mut stderr
                && pipe.drain(&mut chunk, &mut err, MAX_STDERR)?
            {
                stderr = None;
            }
        }
    }
}

/// A child's pipe in non-blocking mode.
struct Pipe(Box<dyn ReadFd>);

trait ReadFd: Read + AsRawFd {}
impl<T: Read + AsRawFd> ReadFd for T {}

impl Pipe {
    fn new(pipe: impl Read + AsRawFd + 'static) -> Result<Pipe, Ended> {
        let fd = pipe.as_raw_fd();
        // SAFETY: fcntl on a descriptor `pipe` owns and keeps open.
        let ok = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        };
        if !ok {
            return Err(Ended::Io(io::Error::last_os_error()));
        }
        Ok(Pipe(Box::new(pipe)))
    }

    /// Reads what is available, keeping up to `keep` bytes in `into` and dropping the
    /// rest; `true` at end of file.
    fn drain(&mut self, chunk: &mut [u8], into: &mut Vec<u8>, keep: usize) -> Result<bool, Ended> {
        loop {
            match self.0.read(chunk) {
                Ok(0) => return Ok(true),
                Ok(n) => {
                    let room = keep.saturating_sub(into.len()).min(n);
                    into.extend_from_slice(&chunk[..room]);
                    if into.len() >= keep && room < n {
                        // Over the cap: the caller decides; stop reading for now.
                        return Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Ended::Io(e)),
            }
        }
    }
}

/// Waits up to `wait` for either pipe to have data or close.
fn poll_readable(pipes: [Option<&Pipe>; 2], wait: Duration) -> io::Result<()> {
    let mut fds: Vec<libc::pollfd> = pipes
        .iter()
        .flatten()
        .map(|p| libc::pollfd {
            fd: p.0.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Round up so a sub-millisecond remainder does not spin.
    let ms = wait.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// The environment of a child started by `fork` + `execve`, made before the fork: this
/// process's variables except the ones the caller sets itself, the caller's own entries,
/// and one `KEY=<the child's pid>` entry whose digits the child writes after the fork
/// (osquery's `OSQUERY_WORKER` and `OSQUERY_EXTENSION`). Between fork and exec only
/// async-signal-safe work is allowed, so nothing here allocates once it is built.
pub struct ForkEnv {
    entries: Vec<std::ffi::CString>,
    /// `KEY=` followed by room for a pid's digits and the terminator.
    own_pid: Vec<u8>,
    digits_at: usize,
    pointers: Vec<*const libc::c_char>,
}

impl ForkEnv {
    /// This process's environment without the variables named in `without`, then
    /// `extra` (`KEY=value` pairs), then `own_pid_key=<the child's pid>`. A variable that
    /// holds a NUL byte cannot be passed and is left out; an `extra` one is an error.
    pub fn new(without: &[&str], extra: &[(&str, &str)], own_pid_key: &str) -> io::Result<Self> {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let mut entries: Vec<CString> = Vec::new();
        for (key, value) in std::env::vars_os() {
            if without.iter().any(|k| key == *k) {
                continue;
            }
            let mut entry = key.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(value.as_bytes());
            if let Ok(entry) = CString::new(entry) {
                entries.push(entry);
            }
        }
        for (key, value) in extra {
            let entry = CString::new(format!("{key}={value}"))
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            entries.push(entry);
        }
        let mut own_pid = format!("{own_pid_key}=").into_bytes();
        let digits_at = own_pid.len();
        // A pid has at most 10 digits; the rest stays 0, the terminator.
        own_pid.resize(digits_at + 16, 0);
        let mut pointers: Vec<*const libc::c_char> = entries.iter().map(|e| e.as_ptr()).collect();
        pointers.push(own_pid.as_ptr().cast());
        pointers.push(std::ptr::null());
        Ok(ForkEnv {
            entries,
            own_pid,
            digits_at,
            pointers,
        })
    }

    /// The `envp` array for `execve`, valid while `self` lives.
    pub fn as_ptr(&self) -> *const *const libc::c_char {
        debug_assert_eq!(self.pointers.len(), self.entries.len() + 2);
        self.pointers.as_ptr()
    }

    /// Fills in the child's pid. Allocation-free, for the child between fork and exec.
    ///
    /// # Safety
    /// Call only in the forked child, before `execve`.
    pub unsafe fn write_own_pid(&mut self) {
        // SAFETY: getpid has no preconditions; `own_pid` has 16 writable bytes after
        // `digits_at`, and the pointer `as_ptr` handed out points at the same buffer,
        // which never moves.
        unsafe {
            let at = self.own_pid.as_mut_ptr().add(self.digits_at);
            write_decimal(at, libc::getpid() as u32);
        }
    }
}

/// Writes `n` in decimal at `at` (no allocation, so it may run between `fork` and `exec`,
/// where a child writes its own pid into its environment).
///
/// # Safety
/// `at` must be valid for writing 10 bytes.
unsafe fn write_decimal(at: *mut u8, n: u32) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    let mut rest = n;
    loop {
        digits[len] = b'0' + (rest % 10) as u8;
        len += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    for i in 0..len {
        // SAFETY: the caller guarantees 10 writable bytes; len <= 10.
        unsafe { *at.add(i) = digits[len - 1 - i] };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_fork_env_passes_ours_minus_the_excluded_plus_the_extra_and_the_pid() {
        let mut env = ForkEnv::new(
            &["PATH"],
            &[("OXQUERY_FORK_ENV_TEST_EXTRA", "y")],
            "OXQUERY_FORK_ENV_TEST_PID",
        )
        .unwrap();
        // SAFETY: not a forked child, but write_own_pid only writes our own pid into the
        // buffer, which is what the test checks.
        unsafe { env.write_own_pid() };
        let mut seen = Vec::new();
        let mut at = env.as_ptr();
        // SAFETY: a NULL-terminated array of C strings owned by `env`.
        unsafe {
            while !(*at).is_null() {
                seen.push(std::ffi::CStr::from_ptr(*at).to_string_lossy().into_owned());
                at = at.add(1);
            }
        }
        assert!(!seen.iter().any(|e| e.starts_with("PATH=")));
        let kept = std::env::vars_os().filter(|(k, _)| k != "PATH").count();
        assert_eq!(seen.len(), kept + 2);
        assert!(seen.contains(&"OXQUERY_FORK_ENV_TEST_EXTRA=y".to_owned()));
        assert_eq!(
            seen.last().unwrap(),
            &format!("OXQUERY_FORK_ENV_TEST_PID={}", std::process::id())
        );
    }

    #[test]
    fn decimal_digits_are_written_in_place() {
        for n in [0u32, 7, 42, 1_000_000, u32::MAX] {
            let mut buf = [0u8; 12];
            // SAFETY: 12 writable bytes.
            unsafe { write_decimal(buf.as_mut_ptr(), n) };
            let end = buf.iter().position(|&b| b == 0).unwrap();
            assert_eq!(std::str::from_utf8(&buf[..end]).unwrap(), n.to_string());
        }
    }

    /// Whether process `pid` still exists (a zombie counts: it is not reaped yet).
    fn exists(pid: &str) -> bool {
        Path::new("/proc").join(pid.trim()).exists()
    }

    #[test]
    fn captures_output_and_status() {
        let out = Helper::new("sh")
            .args([
                "-c",
                "echo out; echo err >&2; echo \"$PATH $LC_ALL\"; exit 3",
            ])
            .run()
            .unwrap();
        assert!(out.program.is_absolute());
        assert_eq!(out.stdout, b"out\n/usr/sbin:/usr/bin:/sbin:/bin C\n");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status.code(), Some(3));
        match out.into_stdout() {
            Err(Error::Failed { stderr, .. }) => assert_eq!(stderr, "err"),
            other => panic!("{other:?}"),
        }
        let ok = Helper::new("sh").args(["-c", "printf x"]).run().unwrap();
        assert_eq!(ok.into_stdout().unwrap(), b"x");
    }

    /// Runs `sh -c script` with `PIDFILE` in it replaced by a temporary file, limited by
    /// `configure`; the run's result and the pid the script wrote there.
    fn run_sh(
        script: &str,
        configure: impl FnOnce(Helper) -> Helper,
    ) -> (Result<Output, Error>, String) {
        let tmp = tempfile::tempdir().unwrap();
        let pidfile = tmp.path().join("pid");
        let script = script.replace("PIDFILE", pidfile.to_str().unwrap());
        let result = configure(Helper::new("sh").args(["-c", &script])).run();
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        (result, pid.trim().to_owned())
    }

    #[test]
    fn a_child_past_its_timeout_is_killed_and_reaped() {
        let start = Instant::now();
        let (result, pid) = run_sh("echo $$ > PIDFILE; exec sleep 600", |h| {
            h.timeout(Duration::from_millis(300))
        });
        let err = result.unwrap_err();
        assert!(matches!(err, Error::TimedOut { .. }), "{err}");
        // Far below the child's 600 s: it was killed, not waited for.
        assert!(start.elapsed() < Duration::from_secs(120));
        assert!(!exists(&pid), "child {pid} still exists");
    }

    #[test]
    fn a_grandchild_holding_the_pipe_is_killed_too() {
        // The shell exits at once; its background child keeps stdout open.
        let (result, pid) = run_sh("sleep 600 & echo $! > PIDFILE; echo started", |h| {
            h.timeout(Duration::from_millis(300))
        });
        let err = result.unwrap_err();
        assert!(matches!(err, Error::TimedOut { .. }), "{err}");
        // Killed; once reaped by init it disappears. Poll (not time) until it is gone
        // or only a zombie of ours is left, whichever the host's init gives.
        let stat = Path::new("/proc").join(pid.trim()).join("stat");
        for _ in 0..2000 {
            match std::fs::read_to_string(&stat) {
                Err(_) => return,
                Ok(s) if s.contains(") Z ") => return,
                Ok(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        panic!("grandchild {pid} survived");
    }

    #[test]
    fn endless_output_is_cut_at_the_cap() {
        let (result, pid) = run_sh("echo $$ > PIDFILE; exec yes oxquery", |h| {
            h.max_output(1 << 20)
        });
        let err = result.unwrap_err();
        assert!(
            matches!(err, Error::TooMuchOutput { limit, .. } if limit == 1 << 20),
            "{err}"
        );
        assert!(!exists(&pid), "child {pid} still exists");
        // Endless stderr is read and dropped: the run ends normally with a bounded copy.
        let out = Helper::new("sh")
            .args(["-c", "head -c 5000000 /dev/zero >&2; echo done"])
            .run()
            .unwrap();
        assert_eq!(out.stdout, b"done\n");
        assert_eq!(out.stderr.len(), MAX_STDERR);
        // Output exactly at the cap is not cut.
        let out = Helper::new("sh")
            .args(["-c", "head -c 4096 /dev/zero"])
            .max_output(4096)
            .run()
            .unwrap();
        assert_eq!(out.stdout.len(), 4096);
    }

    #[test]
    fn programs_outside_the_fixed_directories_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let own = tmp.path().join("oxq-own-helper");
        std::fs::write(&own, "#!/bin/sh\necho ran\n").unwrap();
        std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o755)).unwrap();
        let own = own.to_str().unwrap();
        assert!(matches!(
            Helper::new(own).run(),
            Err(Error::NotAName { .. })
        ));
        assert!(matches!(
            find_program("../../bin/sh"),
            Err(Error::NotAName { .. })
        ));
        assert!(matches!(find_program(""), Err(Error::NotAName { .. })));
        assert!(matches!(
            Helper::new("oxq-own-helper").run(),
            Err(Error::NotFound { .. })
        ));
        let sh = find_program("sh").unwrap();
        assert!(
            PROGRAM_DIRS
                .iter()
                .any(|d| sh.parent() == Some(Path::new(d)))
        );
    }

    #[test]
    fn the_stop_hook_kills_the_child() {
        let tmp = tempfile::tempdir().unwrap();
        let pidfile = tmp.path().join("pid");
        let script = format!("echo $$ > {}; exec sleep 600", pidfile.display());
        // Stop once the child has shown it is running (its pid file exists).
        let polls = Cell::new(0u32);
        let stop = || {
            polls.set(polls.get() + 1);
            std::fs::metadata(&pidfile).is_ok_and(|m| m.len() > 0)
        };
        let err = Helper::new("sh")
            .args(["-c", &script])
            .timeout(Duration::from_secs(600))
            .stop_when(&stop)
            .run()
            .unwrap_err();
        assert!(matches!(err, Error::Stopped { .. }), "{err}");
        assert!(polls.get() >= 1);
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        assert!(!exists(&pid), "child {pid} still exists");
    }

    /// The invariant this module exists for: outside test code, nothing in `sys` or the
    /// tables starts a process except [`Helper`].
    #[test]
    fn no_other_code_spawns_a_process() {
        let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut offenders = Vec::new();
        let mut dirs = vec![crates.join("sys/src"), crates.join("tables/src")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("sys/src/exec.rs") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // Test-only modules are declared `#[cfg(test)] mod x;` in their parent;
                // test code sits after `#[cfg(test)]` or `#[cfg(any(test, ...))]`.
                if is_test_only_file(&path) {
                    continue;
                }
                let production = text
                    .split("#[cfg(test)]")
                    .next()
                    .unwrap()
                    .split("#[cfg(any(test")
                    .next()
                    .unwrap();
                if production.contains("Command::new") || production.contains(".spawn()") {
                    offenders.push(path.display().to_string());
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "spawn through exec::Helper: {offenders:?}"
        );
    }

    /// Whether the parent module declares `path` under `#[cfg(test)]` or
    /// `#[cfg(any(test, ...))]` (a feature that lends test code to other crates' tests).
    fn is_test_only_file(path: &Path) -> bool {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let dir = path.parent().unwrap();
        // The parent module is `dir/mod.rs`, `dir/lib.rs`, or `dir.rs` beside the folder.
        let parents = [
            dir.join("mod.rs"),
            dir.join("lib.rs"),
            dir.with_extension("rs"),
        ];
        parents.iter().any(|parent| {
            std::fs::read_to_string(parent).is_ok_and(|t| {
                t.lines().zip(t.lines().skip(1)).any(|(attr, decl)| {
                    (attr == "#[cfg(test)]" || attr.starts_with("#[cfg(any(test, "))
                        && ["mod", "pub(crate) mod", "pub mod"]
                            .iter()
                            .any(|m| decl == format!("{m} {stem};"))
                })
            })
        })
    }
}
