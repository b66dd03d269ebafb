//! Starting extensions and keeping them running, as osquery's watcher does.
//!
//! osquery: unless `--disable_extensions`, the binaries of `--extensions_autoload` (and
//! `--extension`) are started by the watcher process when the daemon runs with its
//! watchdog, and otherwise (`--disable_watchdog`, the shell) by a thread of the one
//! process. Every check interval (3 s) an extension that exited is started again (one
//! that lived less than the respawn limit gets a "respawning too quickly" warning, and
//! is restarted all the same); with `--enable_extensions_watchdog` one over the
//! watchdog's limits is stopped and restarted. At exit each one still running is
//! stopped: SIGTERM, then SIGKILL after a grace period, and reaped.
//!
//! * [`autoload`]: the list, the `.ext` rule and the permission checks.
//! * [`Launcher`]: the thread that starts, reaps, restarts and stops them.
//! * [`wait_for_required`]: `--extensions_require`, once the manager runs.

pub mod autoload;
mod spawn;

pub use autoload::{Autoload, Refused, check_binary};
pub use spawn::EXTENSION_ENV;

use oxquery_flags::{Flags, flag};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// osquery's hint from a watcher to its worker that it manages extensions (the worker
/// then waits for plugins they may provide).
pub const MANAGED_ENV: &str = "OSQUERY_EXTENSIONS";
/// How often a dead extension is noticed and reaped (restarts wait for the check
/// interval, as in osquery).
const REAP_POLL: Duration = Duration::from_millis(100);
/// osquery's pause between two looks while waiting for an extension or its plugin.
const REQUIRE_POLL: Duration = Duration::from_millis(20);

/// How extensions are started, from the flags.
#[derive(Debug, Clone)]
pub struct LaunchSettings {
    /// `--extensions_socket`, passed as `--socket`.
    pub socket: PathBuf,
    /// `--extensions_timeout` and `--extensions_interval`, passed verbatim as osquery
    /// passes them (`--timeout`, `--interval`).
    pub timeout: String,
    pub interval: String,
    /// `--verbose`, passed on.
    pub verbose: bool,
    /// `--allow_unsafe`: no permission check before each start.
    pub allow_unsafe: bool,
    /// How often exited extensions are started again (the watchdog's interval).
    pub check_interval: Duration,
    /// An extension that ran less than this was restarted too quickly (a warning).
    pub respawn_limit: Duration,
    /// At exit, from SIGTERM to SIGKILL (osquery: `--alarm_timeout` less 4 s).
    pub stop_grace: Duration,
    /// For an extension over a limit, from SIGTERM to SIGKILL
    /// (`--watchdog_forced_shutdown_delay`).
    pub forced_stop_grace: Duration,
}

impl LaunchSettings {
    pub fn from_flags(flags: &Flags) -> LaunchSettings {
        LaunchSettings {
            socket: flags.get(flag::extensions_socket).to_owned(),
            timeout: flags.get(flag::extensions_timeout).to_owned(),
            interval: flags.get(flag::extensions_interval).to_owned(),
            verbose: flags.get(flag::verbose),
            allow_unsafe: flags.get(flag::allow_unsafe),
            // osquery's watchdog interval is 3 s at every level; the respawn limit is
            // 4 s, 1000 s with the watchdog off (-1).
            check_interval: Duration::from_secs(3),
            respawn_limit: Duration::from_secs(if flags.get(flag::watchdog_level) == -1 {
                1000
            } else {
                4
            }),
            stop_grace: Duration::from_secs(flags.get(flag::alarm_timeout).saturating_sub(4)),
            forced_stop_grace: Duration::from_secs(flags.get(flag::watchdog_forced_shutdown_delay)),
        }
    }

    /// The arguments after the binary's path, in osquery's order:
    /// `[--verbose] --socket <path> --timeout <s> --interval <s>`.
    pub fn arguments(&self) -> Vec<&OsStr> {
        let mut args: Vec<&OsStr> = Vec::new();
        if self.verbose {
            args.push(OsStr::new("--verbose"));
        }
        args.extend([
            OsStr::new("--socket"),
            self.socket.as_os_str(),
            OsStr::new("--timeout"),
            OsStr::new(&self.timeout),
            OsStr::new("--interval"),
            OsStr::new(&self.interval),
        ]);
        args
    }
}

/// The binaries the flags ask for: none under `--disable_extensions`, else the autoload
/// list's (checked) and `--extension`'s.
pub fn binaries_from_flags(flags: &Flags) -> Autoload {
    if flags.get(flag::disable_extensions) {
        return Autoload::default();
    }
    autoload::load(
        flags.get(flag::extensions_autoload),
        Some(flags.get(flag::extension)),
        flags.get(flag::allow_unsafe),
    )
}

/// Watches one running extension's resources (`--enable_extensions_watchdog`): the
/// daemon's watchdog provides it.
pub trait ResourceWatch: Send {
    /// Called at each check while the extension runs; a reason stops it (it is then
    /// started again at the next check).
    fn check(&mut self, pid: u32) -> Option<String>;
}

/// Makes a fresh [`ResourceWatch`] for each start of an extension.
pub type WatchFactory = Box<dyn Fn() -> Box<dyn ResourceWatch> + Send>;

/// The extensions this process started, on a thread of their own. Stopping it (or
/// dropping it) stops them.
pub struct Launcher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    stop: Mutex<bool>,
    wake: Condvar,
    /// What runs now: each binary's pid, for callers and tests.
    running: Mutex<Vec<(PathBuf, u32)>>,
}

/// One binary the launcher keeps running.
struct Managed {
    path: PathBuf,
    child: Option<libc::pid_t>,
    last_start: Option<Instant>,
    watch: Option<Box<dyn ResourceWatch>>,
    /// The last reason it could not be started, so a refusal repeated every interval is
    /// logged once.
    refusal: Option<String>,
}

impl Launcher {
    /// Starts `binaries` at once and keeps them running; `None` when there are none.
    /// In the shell and the daemon, call this after the extension manager started (the
    /// extensions connect to it; they wait `--timeout` seconds for it anyway).
    pub fn start(
        binaries: BTreeSet<PathBuf>,
        settings: LaunchSettings,
        watch: Option<WatchFactory>,
    ) -> Option<Launcher> {
        if binaries.is_empty() {
            return None;
        }
        let shared = Arc::new(Shared {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            running: Mutex::new(Vec::new()),
        });
        let managed = binaries
            .into_iter()
            .map(|path| Managed {
                path,
                child: None,
                last_start: None,
                watch: None,
                refusal: None,
            })
            .collect();
        let thread_shared = Arc::clone(&shared);
        // The thread lives as long as the extensions: they get SIGTERM if it dies.
        let thread = std::thread::Builder::new()
            .name("extensions".to_owned())
            .spawn(move || supervise(managed, &settings, watch.as_ref(), &thread_shared));
        match thread {
            Ok(thread) => Some(Launcher {
                shared,
                thread: Some(thread),
            }),
            Err(e) => {
                log::error!("Cannot start the extensions' launcher: {e}");
                None
            }
        }
    }

    /// Each running extension's binary and pid.
    pub fn running(&self) -> Vec<(PathBuf, u32)> {
        self.shared
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops every extension (SIGTERM, SIGKILL after the grace period) and reaps them.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        *self.shared.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The launcher thread: starts what is not running at each check, reaps exits as they
/// come, and stops everything when told.
fn supervise(
    mut managed: Vec<Managed>,
    settings: &LaunchSettings,
    watch: Option<&WatchFactory>,
    shared: &Shared,
) {
    let args = settings.arguments();
    let mut next_check = Instant::now();
    loop {
        for m in &mut managed {
            if let Some(pid) = m.child
                && let Some(how) = reaped(pid, false)
            {
                log::info!("Extension {} ({pid}) {how}", m.path.display());
                m.child = None;
            }
        }
        let now = Instant::now();
        if now >= next_check {
            for m in &mut managed {
                check(m, settings, &args, watch);
            }
            next_check = now + settings.check_interval;
        }
        *shared.running.lock().unwrap_or_else(|p| p.into_inner()) = managed
            .iter()
            .filter_map(|m| m.child.map(|pid| (m.path.clone(), pid as u32)))
            .collect();
        let stop = shared.stop.lock().unwrap_or_else(|p| p.into_inner());
        if *stop {
            break;
        }
        let wait = next_check
            .saturating_duration_since(Instant::now())
            .min(REAP_POLL);
        let (stop, _) = shared
            .wake
            .wait_timeout(stop, wait)
            .unwrap_or_else(|p| p.into_inner());
        if *stop {
            break;
        }
    }
    let running: Vec<(libc::pid_t, &Path)> = managed
        .iter()
        .filter_map(|m| m.child.map(|pid| (pid, m.path.as_path())))
        .collect();
    terminate(&running, settings.stop_grace);
    shared
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
}

/// One extension at a check: started if it is not running, stopped if over a limit.
fn check(
    m: &mut Managed,
    settings: &LaunchSettings,
    args: &[&OsStr],
    watch: Option<&WatchFactory>,
) {
    if let Some(pid) = m.child {
        let Some(w) = m.watch.as_mut() else {
            return;
        };
        if let Some(reason) = w.check(pid as u32) {
            log::warn!(
                "osquery extension {} ({pid}) stopping: {reason}",
                m.path.display()
            );
            terminate(&[(pid, &m.path)], settings.forced_stop_grace);
            m.child = None;
        }
        return;
    }
    if let Some(last) = m.last_start
        && last.elapsed() < settings.respawn_limit
    {
        log::warn!("Extension respawning too quickly: {}", m.path.display());
    }
    // osquery checks the binary again before each start: it may have changed.
    let refusal = if m.path.exists() {
        check_binary(&m.path, settings.allow_unsafe)
            .err()
            .map(|why| {
                format!(
                    "Extension binary has unsafe permissions: {} ({why})",
                    m.path.display()
                )
            })
    } else {
        Some(format!(
            "Extension binary doesn't exist in: {}",
            m.path.display()
        ))
    };
    if let Some(message) = refusal {
        if m.refusal.as_ref() != Some(&message) {
            log::warn!("{message}");
            m.refusal = Some(message);
        }
        return;
    }
    m.refusal = None;
    m.last_start = Some(Instant::now());
    match spawn::spawn(&m.path, args) {
        Ok(pid) => {
            log::debug!(
                "Created and monitoring extension child ({pid}): {}",
                m.path.display()
            );
            m.child = Some(pid);
            m.watch = watch.map(|make| make());
        }
        Err(e) => log::warn!(
            "Could not start extension process: {}: {e}",
            m.path.display()
        ),
    }
}

/// Stops `children`: SIGTERM to each one's process group, up to `grace` for them to
/// exit, then SIGKILL; every one is reaped before this returns.
fn terminate(children: &[(libc::pid_t, &Path)], grace: Duration) {
    let signal_all = |signal: i32, pids: &[libc::pid_t]| {
        for &pid in pids {
            // SAFETY: kill(2) on our own, not yet reaped, child and the group it leads
            // (the group is tried first: the child may not have made it yet).
            unsafe {
                libc::kill(-pid, signal);
                libc::kill(pid, signal);
            }
        }
    };
    let mut left: Vec<libc::pid_t> = children.iter().map(|(pid, _)| *pid).collect();
    signal_all(libc::SIGTERM, &left);
    let until = Instant::now() + grace;
    loop {
        left.retain(|&pid| reaped(pid, false).is_none());
        if left.is_empty() || Instant::now() >= until {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in &left {
        if let Some((_, path)) = children.iter().find(|(p, _)| *p == pid) {
            log::warn!(
                "Extension {} ({pid}) could not be stopped. Sending kill signal.",
                path.display()
            );
        }
    }
    signal_all(libc::SIGKILL, &left);
    for pid in left {
        reaped(pid, true);
    }
}

/// How `pid` ended once it has (`block`: wait for it); `None` while it runs.
fn reaped(pid: libc::pid_t, block: bool) -> Option<String> {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
        if r == pid {
            return Some(if libc::WIFSIGNALED(status) {
                format!("was killed by signal {}", libc::WTERMSIG(status))
            } else {
                format!("exited with status {}", libc::WEXITSTATUS(status))
            });
        }
        if r == 0 {
            return None;
        }
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        // ECHILD: reaped elsewhere (SIGCHLD ignored); it is gone all the same.
        return Some("is gone".to_owned());
    }
}

/// `--extensions_require`'s names: comma-separated, trimmed, empty ones skipped.
pub fn required_names(flag_value: &str) -> Vec<String> {
    flag_value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect()
}

/// How long start-up waits for extensions: `--extensions_timeout` seconds, read as C's
/// `atoi` reads it (leading digits; anything else is 0), at least 200 ms, as osquery.
pub fn startup_timeout(flag_value: &str) -> Duration {
    let digits: String = flag_value
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let seconds: u64 = digits.parse().unwrap_or(0);
    Duration::from_millis(seconds.saturating_mul(1000).max(200))
}

/// `--extensions_require`: waits until every name in `required` is registered
/// (`is_registered`, from the manager), polling every 20 ms for at most `timeout`
/// ([`startup_timeout`]) or until `stopping` says the process is stopping. On failure
/// the warning `Required extension not found or not loaded: <name>` is logged and
/// returned; osquery then logs that the extension manager could not start (an error
/// when it manages extensions, else at verbose level) and carries on.
///
/// osquery gives the first name the whole timeout and later names a single look once
/// the first is found; here all names share the one deadline, which accepts everything
/// osquery accepts and also extensions that register in another order.
pub fn wait_for_required(
    required: &[String],
    timeout: Duration,
    is_registered: impl Fn(&str) -> bool,
    stopping: impl Fn() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    for name in required {
        let left = deadline.saturating_duration_since(Instant::now());
        if !wait_until_ready(left, || is_registered(name), &stopping) {
            let message = format!("Required extension not found or not loaded: {name}");
            log::warn!("{message}");
            return Err(message);
        }
    }
    Ok(())
}

/// osquery's `applyExtensionDelay`: looks at `ready` every 20 ms until it holds, for at
/// most `timeout` ([`startup_timeout`]), or until `stopping`; whether it held. osquery
/// waits this way for a config, logger or distributed plugin an extension provides when
/// extensions are managed ([`has_managed_extensions`]), and for a required extension.
pub fn wait_until_ready(
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
    stopping: impl Fn() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline || stopping() {
            return false;
        }
        std::thread::sleep(REQUIRE_POLL);
    }
}

/// Whether this process has extensions to wait for: it started some, or it is a worker
/// whose watcher did (osquery's `OSQUERY_EXTENSIONS` hint).
pub fn has_managed_extensions(launcher: Option<&Launcher>) -> bool {
    launcher.is_some() || std::env::var_os(MANAGED_ENV).is_some()
}

#[cfg(test)]
mod tests;
