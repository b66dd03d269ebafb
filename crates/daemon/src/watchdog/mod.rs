//! osquery's watchdog: unless `--disable_watchdog`, the first `osqueryd` process is the
//! **watcher**. It holds the pidfile, starts the **worker** (the same executable with the
//! same arguments, marked by osquery's `OSQUERY_WORKER=<worker pid>` environment
//! variable), checks the worker's CPU and memory every 3 s against the
//! `--watchdog_level` limits, stops and restarts it when it is over them or when it
//! dies, and forwards SIGTERM/SIGINT/SIGHUP to it. The worker does everything else
//! (store, config, schedule, loggers) and dies with the watcher.
//!
//! Besides osquery's marker the watcher hands the worker two variables of ours:
//! `OXQUERY_WATCHER` (its pid, so the worker can tell it was not orphaned before it
//! started) and `OXQUERY_RESTART_REASON` (why the previous worker ended, e.g. `memory
//! 312 MB over limit 200 MB`), which the worker stores beside the deny-list entry of
//! every query that was running then. An environment variable rather than a file: it
//! reaches exactly the worker it was meant for, cannot be left stale by a crash of the
//! watcher, and works with `--disable_database`.
//!
//! * [`limits`]: the limits per level and [`ProcessWatch`], a process's samples to a
//!   verdict (for the worker and, with `--enable_extensions_watchdog`, extensions).
//! * [`extensions`]: that watch for the extensions the daemon starts.
//! * [`watcher`]: the watcher process.
//! * [`worker`]: the worker's side: staying bound to the watcher, the "resource limit
//!   hit" signal, reporting that start-up is over.

pub mod extensions;
pub mod limits;
pub mod watcher;
pub mod worker;

pub use limits::{Limits, ProcessWatch, Sample, Verdict};

use oxquery_flags::{Flags, flag};
use std::time::Duration;

/// osquery's marker of a worker process: its own pid.
pub const WORKER_ENV: &str = "OSQUERY_WORKER";
/// The watcher's pid, for the worker to check its parent against.
pub const WATCHER_ENV: &str = "OXQUERY_WATCHER";
/// Why the previous worker ended.
pub const RESTART_REASON_ENV: &str = "OXQUERY_RESTART_REASON";

/// What this `osqueryd` process is.
#[derive(Debug)]
pub enum Role {
    /// `--disable_watchdog`: one process does everything.
    Alone,
    /// Starts and watches the worker.
    Watcher,
    /// Started by a watcher.
    Worker(worker::WorkerLink),
}

impl Role {
    pub fn from_flags(flags: &Flags) -> Role {
        if flags.get(flag::disable_watchdog) {
            return Role::Alone;
        }
        match worker::WorkerLink::from_environment() {
            Some(link) => Role::Worker(link),
            None => Role::Watcher,
        }
    }
}

/// The watchdog flags as plain settings.
#[derive(Debug, Clone)]
pub struct WatchdogSettings {
    pub limits: Limits,
    /// `--watchdog_delay`: no limit is enforced this long after a worker starts.
    pub delay: Duration,
    /// `--watchdog_forced_shutdown_delay`: from SIGTERM to SIGKILL for a worker over a
    /// limit.
    pub forced_shutdown_delay: Duration,
    /// `--watchdog_max_delay`: the longest back-off between restarts.
    pub max_delay: Duration,
    /// `--enable_watchdog_debug`: log every check's figures.
    pub debug: bool,
    /// `--enable_extensions_watchdog`: watch the extensions the daemon starts too, with
    /// [`ProcessWatch`] (see [`extensions`]).
    pub extensions: bool,
    /// How long a stop forwarded to the worker may take before it is killed: the
    /// worker's own shutdown bound (`--alarm_timeout`, at least 10 s) plus time to flush.
    pub stop_timeout: Duration,
}

impl WatchdogSettings {
    pub fn from_flags(flags: &Flags) -> WatchdogSettings {
        WatchdogSettings {
            limits: Limits::for_level(flags.get(flag::watchdog_level)).with_overrides(
                flags.get(flag::watchdog_memory_limit),
                flags.get(flag::watchdog_utilization_limit),
                flags.get(flag::watchdog_latency_limit),
            ),
            delay: Duration::from_secs(flags.get(flag::watchdog_delay)),
            forced_shutdown_delay: Duration::from_secs(
                flags.get(flag::watchdog_forced_shutdown_delay),
            ),
            max_delay: Duration::from_secs(flags.get(flag::watchdog_max_delay)),
            debug: flags.get(flag::enable_watchdog_debug),
            extensions: flags.get(flag::enable_extensions_watchdog),
            stop_timeout: Duration::from_secs(flags.get(flag::alarm_timeout).max(10) + 5),
        }
    }
}

/// A signal's name for a reason text (`SIGSEGV`), or its number.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {signal}"),
    };
    name.to_owned()
}
