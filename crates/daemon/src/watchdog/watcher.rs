//! The watcher process: holds the pidfile, starts the worker, checks it every
//! `interval_s` seconds, stops it when over a limit, restarts it with back-off, and
//! forwards stop and reload signals. It opens no store, no config and no logger plugin;
//! its status lines go to stderr (the next worker repeats the reason in its status log).

use super::limits::{ProcessWatch, Sample, Verdict, cpus_online};
use super::{RESTART_REASON_ENV, WATCHER_ENV, WORKER_ENV, WatchdogSettings, signal_name};
use crate::runtime::EXIT_CATASTROPHIC;
use oxquery_sys::exec::ForkEnv;
use oxquery_sys::fs::FileReader;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the watcher wakes to see signals and the worker's exit.
const POLL: Duration = Duration::from_millis(50);

/// The signals the watcher acts on, each a flag its handler sets.
struct Signals {
    term: Arc<AtomicBool>,
    int: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
    /// The worker reporting that its start-up is over.
    started: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Signals {
        let signals = Signals {
            term: Arc::default(),
            int: Arc::default(),
            hup: Arc::default(),
            started: Arc::default(),
        };
        for (signal, flag) in [
            (libc::SIGTERM, &signals.term),
            (libc::SIGINT, &signals.int),
            (libc::SIGHUP, &signals.hup),
            (libc::SIGUSR2, &signals.started),
        ] {
            if let Err(e) = signal_hook::flag::register(signal, Arc::clone(flag)) {
                eprintln!("Cannot handle signal {signal}: {e}");
            }
        }
        signals
    }

    /// The stop signal received, if any (to forward as it came).
    fn stop(&self) -> Option<i32> {
        if self.term.load(Ordering::SeqCst) {
            Some(libc::SIGTERM)
        } else if self.int.load(Ordering::SeqCst) {
            Some(libc::SIGINT)
        } else {
            None
        }
    }
}

/// How a worker's life ended.
enum End {
    /// The watcher was asked to stop; the exit code to end with.
    Stopped(i32),
    /// The watcher stopped it for being over a limit (the reason).
    OverLimit(String),
    /// It ended by itself.
    Exited { status: ExitStatus, started: bool },
    /// The watcher itself is over its memory limit.
    WatcherUnhealthy(String),
}

#[derive(Debug, Clone, Copy)]
enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    fn from_wait(status: i32) -> ExitStatus {
        if libc::WIFSIGNALED(status) {
            ExitStatus::Signal(libc::WTERMSIG(status))
        } else {
            ExitStatus::Code(libc::WEXITSTATUS(status))
        }
    }
}

/// Runs the watcher until the daemon stops; returns the exit code. `args` are the
/// arguments without `argv[0]`; `pidfile` is the pidfile the flags name, taken from a
/// running osqueryd with `force` (`--force`).
pub fn run(
    argv0: &OsStr,
    args: &[OsString],
    settings: &WatchdogSettings,
    pidfile: Option<&std::path::Path>,
    force: bool,
) -> i32 {
    // Handlers first: a SIGTERM right after start must not kill the watcher outright
    // and leave a worker behind.
    let signals = Signals::install();
    let _pidfile = match pidfile.map(|p| crate::pidfile::Pidfile::acquire_forcing(p, force)) {
        Some(Err(e)) => {
            eprintln!("{e}");
            return EXIT_CATASTROPHIC;
        }
        Some(Ok(p)) => Some(p),
        None => None,
    };
    let clock = Clock(Instant::now());
    // The watcher watches its own memory too (osquery ends it when it grows too much).
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let mut own = ProcessWatch::new(settings.limits, cpus_online(), clock.ms(Instant::now()));
    let mut reader = FileReader::new();
    let mut restarts: u64 = 0;
    let mut reason: Option<String> = None;
    loop {
        if let Some(signal) = signals.stop() {
            log::debug!("osqueryd watcher stopping on signal {signal}");
            return 0;
        }
        signals.started.store(false, Ordering::SeqCst);
        let pid = match spawn_worker(argv0, args, reason.as_deref()) {
            Ok(pid) => pid,
            Err(e) => {
                log::error!("osqueryd could not create a worker process: {e}");
                return 1;
            }
        };
        log::debug!("osqueryd watcher ({me}) executing worker ({pid})");
        let born = Instant::now();
        let end = supervise(pid, settings, &signals, &mut reader, &mut own, &clock);
        match end {
            End::Stopped(code) => return code,
            End::WatcherUnhealthy(why) => {
                log::error!("Watcher has become unhealthy: {why}");
                return EXIT_CATASTROPHIC;
            }
            End::OverLimit(why) => reason = Some(why),
            End::Exited { status, started } => match after_exit(status, started) {
                Next::Exit(code) => {
                    if code == EXIT_CATASTROPHIC && started {
                        log::error!("Worker returned exit status");
                    }
                    return code;
                }
                Next::Restart(why) => {
                    log::warn!("osqueryd worker ({pid}) ended: {why}; restarting it");
                    reason = Some(why);
                }
            },
        }
        if restarts >= settings.limits.respawn_limit {
            log::error!("Too many worker restarts");
            return 1;
        }
        if born.elapsed() < Duration::from_secs(settings.limits.respawn_limit) {
            restarts += 1;
            log::warn!("osqueryd worker respawning too quickly: {restarts} times");
            let until = Instant::now() + backoff(restarts, settings);
            while Instant::now() < until {
                if signals.stop().is_some() {
                    return 0;
                }
                std::thread::sleep(POLL);
            }
        }
    }
}

/// What the watcher does once a worker ended by itself.
#[derive(Debug, PartialEq)]
enum Next {
    /// End the watcher with this status.
    Exit(i32),
    /// Start a new worker; the reason goes to it.
    Restart(String),
}

/// osquery's rules: a worker that exits 0 (a normal stop) or 78 (catastrophic) ends the
/// watcher with that status; so does any exit during the worker's start-up, which would
/// recur (a refused flag, an unusable logger). Another status, or a signal, is a crash:
/// restart.
fn after_exit(status: ExitStatus, started: bool) -> Next {
    match status {
        ExitStatus::Code(code) if !started => Next::Exit(code),
        ExitStatus::Code(code @ (0 | EXIT_CATASTROPHIC)) => Next::Exit(code),
        ExitStatus::Code(code) => Next::Restart(format!("worker exited with status {code}")),
        ExitStatus::Signal(signal) => Next::Restart(format!(
            "worker killed by {} ({signal})",
            signal_name(signal)
        )),
    }
}

/// The wait before the `restarts`-th quick restart: the level's respawn delay plus
/// 2^restarts seconds, at most `--watchdog_max_delay`.
fn backoff(restarts: u64, settings: &WatchdogSettings) -> Duration {
    let seconds = settings
        .limits
        .respawn_delay_s
        .saturating_add(1u64 << restarts.min(32));
    Duration::from_secs(seconds).min(settings.max_delay)
}

/// Milliseconds since the watcher started, the time base of its samples.
struct Clock(Instant);

impl Clock {
    fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.duration_since(self.0).as_millis()).unwrap_or(u64::MAX)
    }
}

/// Watches worker `pid` until it ends, the watcher is told to stop, or it is over a
/// limit. `own` watches the watcher itself at each interval (memory only).
fn supervise(
    pid: libc::pid_t,
    settings: &WatchdogSettings,
    signals: &Signals,
    reader: &mut FileReader,
    own: &mut ProcessWatch,
    clock: &Clock,
) -> End {
    let born = Instant::now();
    let interval = Duration::from_secs(settings.limits.interval_s.max(1));
    let mut watch = ProcessWatch::new(settings.limits, cpus_online(), clock.ms(born));
    let mut next_check = born + interval;
    // SAFETY: getpid has no preconditions.
    let me = i64::from(unsafe { libc::getpid() });
    loop {
        std::thread::sleep(POLL);
        if let Some(signal) = signals.stop() {
            return End::Stopped(stop_worker(pid, signal, settings.stop_timeout));
        }
        // A SIGHUP waits until the worker has its handlers (before, it would kill it);
        // a worker still starting reads the config and opens the logs anyway.
        if signals.started.load(Ordering::SeqCst) && signals.hup.swap(false, Ordering::SeqCst) {
            // SAFETY: kill(2) on our own, not yet reaped, child.
            unsafe { libc::kill(pid, libc::SIGHUP) };
        }
        if let Some(status) = reap(pid, false) {
            return End::Exited {
                status,
                started: signals.started.load(Ordering::SeqCst),
            };
        }
        let now = Instant::now();
        if now < next_check {
            continue;
        }
        next_check = now + interval;
        let own_verdict =
            Sample::read(reader, me as u32, clock.ms(now)).map(|s| own.observe(s).verdict);
        if let Some(Verdict::OverMemory { grown_mb, limit_mb }) = own_verdict {
            stop_worker(pid, libc::SIGTERM, settings.stop_timeout);
            return End::WatcherUnhealthy(format!(
                "Memory limits exceeded: {grown_mb} MB over limit {limit_mb} MB"
            ));
        }
        let Some(sample) = Sample::read(reader, pid as u32, clock.ms(now)) else {
            continue;
        };
        if sample.parent != me {
            continue;
        }
        let check = watch.observe(sample);
        if settings.debug {
            log::info!(
                "osqueryd worker ({pid}): CPU {}% (limit {}%, over it for {} ms), memory {} MB ({} MB above the first check, limit {} MB)",
                check.cpu_percent,
                settings.limits.utilization_percent,
                check.over_cpu_ms,
                check.rss_mb,
                check.grown_mb,
                settings.limits.memory_mb
            );
        }
        let Some(why) = check.verdict.reason() else {
            continue;
        };
        if now.duration_since(born) < settings.delay {
            continue;
        }
        log::warn!("osqueryd worker ({pid}) stopping: {why}");
        // "Resource limit hit" first, so the worker keeps its queries in flight recorded
        // through the graceful stop.
        // SAFETY: kill(2) on our own, not yet reaped, child.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
        std::thread::sleep(Duration::from_millis(10));
        stop_worker(pid, libc::SIGTERM, settings.forced_shutdown_delay);
        return End::OverLimit(why);
    }
}

/// Sends `signal`, waits up to `grace` for the worker to exit, then kills it. Returns
/// the worker's exit code (0 if it had to be killed).
fn stop_worker(pid: libc::pid_t, signal: i32, grace: Duration) -> i32 {
    // SAFETY: kill(2) on our own, not yet reaped, child.
    unsafe { libc::kill(pid, signal) };
    let until = Instant::now() + grace;
    while Instant::now() < until {
        match reap(pid, false) {
            Some(ExitStatus::Code(code)) => return code,
            Some(ExitStatus::Signal(_)) => return 0,
            None => std::thread::sleep(POLL),
        }
    }
    log::warn!("osqueryd worker ({pid}) could not be stopped. Sending kill signal.");
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap(pid, true);
    0
}

/// The worker's exit status once it has exited (`block`: wait for it).
fn reap(pid: libc::pid_t, block: bool) -> Option<ExitStatus> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
        if r == pid {
            return Some(ExitStatus::from_wait(status));
        }
        if r == 0 {
            return None;
        }
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // ECHILD: it is gone without a status we can read.
        return Some(ExitStatus::Code(-1));
    }
}

/// Forks and execs the worker: `/proc/self/exe` (this very binary, even if its file was
/// replaced since) with the same `argv`, the environment plus osquery's
/// `OSQUERY_WORKER=<its pid>`, our `OXQUERY_WATCHER=<our pid>` and, when known, the
/// reason the previous worker ended. Between fork and exec the child only makes
/// async-signal-safe calls: it asks to be killed when the watcher dies, checks that the
/// watcher did not die already, and writes its pid into a buffer prepared beforehand.
fn spawn_worker(
    argv0: &OsStr,
    args: &[OsString],
    reason: Option<&str>,
) -> std::io::Result<libc::pid_t> {
    let c = |bytes: &[u8]| {
        CString::new(bytes).map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let argv: Vec<CString> = std::iter::once(argv0)
        .chain(args.iter().map(OsString::as_os_str))
        .map(|a| c(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    // SAFETY: getpid has no preconditions.
    let watcher = unsafe { libc::getpid() };
    let watcher_pid = watcher.to_string();
    let mut extra = vec![(WATCHER_ENV, watcher_pid.as_str())];
    if let Some(reason) = reason {
        extra.push((RESTART_REASON_ENV, reason));
    }
    // `OSQUERY_WORKER=<the worker's pid>` is written by the child.
    let mut env = ForkEnv::new(
        &[WORKER_ENV, WATCHER_ENV, RESTART_REASON_ENV],
        &extra,
        WORKER_ENV,
    )?;

    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let exe = c"/proc/self/exe";

    // SAFETY: fork; the child below only calls async-signal-safe functions (prctl,
    // getppid, getpid, execve, _exit) and writes into memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see above; `env` was built before the fork.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            if libc::getppid() != watcher {
                libc::_exit(0);
            }
            env.write_own_pid();
            libc::execve(exe.as_ptr(), argv_ptrs.as_ptr(), env.as_ptr());
            libc::_exit(127);
        }
    }
    drop(env);
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_ending_by_itself_ends_the_watcher_or_is_restarted_as_in_osquery() {
        use ExitStatus::{Code, Signal};
        assert_eq!(after_exit(Code(0), true), Next::Exit(0));
        assert_eq!(after_exit(Code(78), true), Next::Exit(78));
        // A start-up failure would recur: no restart loop, the worker's own status.
        assert_eq!(after_exit(Code(1), false), Next::Exit(1));
        assert_eq!(
            after_exit(Code(101), true),
            Next::Restart("worker exited with status 101".into())
        );
        assert_eq!(
            after_exit(Signal(libc::SIGSEGV), true),
            Next::Restart("worker killed by SIGSEGV (11)".into())
        );
        // A crash during start-up is still a crash (the respawn limit ends a loop).
        assert_eq!(
            after_exit(Signal(libc::SIGKILL), false),
            Next::Restart("worker killed by SIGKILL (9)".into())
        );
    }

    #[test]
    fn quick_restarts_back_off_exponentially_up_to_the_maximum() {
        let mut settings = WatchdogSettings::from_flags(&oxquery_flags::Flags::new());
        // Level 0: 5 s plus 2^n.
        let waits: Vec<u64> = (1..=4).map(|n| backoff(n, &settings).as_secs()).collect();
        assert_eq!(waits, [7, 9, 13, 21]);
        assert_eq!(backoff(20, &settings), Duration::from_secs(600));
        assert_eq!(backoff(u64::MAX, &settings), Duration::from_secs(600));
        settings.max_delay = Duration::from_secs(10);
        assert_eq!(backoff(4, &settings), Duration::from_secs(10));
    }
}
