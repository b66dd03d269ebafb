//! The worker's side of the watchdog.

use super::{RESTART_REASON_ENV, WATCHER_ENV, WORKER_ENV};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// What a worker knows of its watcher.
#[derive(Debug, Clone)]
pub struct WorkerLink {
    /// The watcher's pid (`osquery_info.watcher`).
    pub watcher: i32,
    /// Why the previous worker ended, when the watcher knows.
    pub restart_reason: Option<String>,
}

impl WorkerLink {
    /// A worker is a process whose `OSQUERY_WORKER` holds its own pid: a variable
    /// inherited from elsewhere (a program the worker ran) does not count.
    pub fn from_environment() -> Option<WorkerLink> {
        // SAFETY: getpid/getppid have no preconditions.
        let (me, parent) = unsafe { (libc::getpid(), libc::getppid()) };
        let marked = std::env::var(WORKER_ENV).ok()?.parse::<i32>().ok()?;
        if marked != me {
            return None;
        }
        let watcher = std::env::var(WATCHER_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(parent);
        Some(WorkerLink {
            watcher,
            restart_reason: std::env::var(RESTART_REASON_ENV)
                .ok()
                .filter(|r| !r.is_empty()),
        })
    }

    /// Makes the kernel kill this process when the watcher dies (the watcher set this
    /// before exec too, but exec clears it for a binary with file capabilities), then
    /// checks that the watcher is still the parent: if it died before, nothing will.
    /// `false` means the watcher is gone and the worker must exit.
    pub fn bind(&self) -> bool {
        // SAFETY: prctl with PR_SET_PDEATHSIG and a valid signal; getppid has no
        // preconditions.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            libc::getppid() == self.watcher
        }
    }

    /// Tells the watcher that start-up is over (SIGUSR2): from now on an exit is not a
    /// start-up failure that would recur, so the watcher may restart the worker.
    pub fn report_started(&self) {
        // SAFETY: kill(2) on the watcher's pid, checked to be our parent at start.
        unsafe {
            libc::kill(self.watcher, libc::SIGUSR2);
        }
    }

    /// SIGUSR1 from the watcher means "resource limit hit": the flag it sets keeps the
    /// queries in flight recorded as executing through the graceful stop that follows,
    /// so the next worker deny-lists them (as osquery does).
    pub fn on_limit_hit(&self, flag: &Arc<AtomicBool>) {
        if let Err(e) = signal_hook::flag::register(libc::SIGUSR1, Arc::clone(flag)) {
            eprintln!("Cannot handle signal {}: {e}", libc::SIGUSR1);
        }
    }
}

/// Blanks the worker's arguments after `argv[0]` in place, as osquery's worker does: `ps`
/// then shows the watcher with its command line and the worker as the bare program.
/// The flags were copied out already. Call while the process has one thread.
pub fn hide_arguments() {
    let Some((start, end)) = argument_area() else {
        return;
    };
    let Ok(cmdline) = std::fs::read("/proc/self/cmdline") else {
        return;
    };
    let first = cmdline
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(cmdline.len())
        + 1;
    let from = start + first as u64;
    if from >= end {
        return;
    }
    // SAFETY: [arg_start, arg_end) is this process's argument strings, which the kernel
    // placed in writable memory at exec; the range comes from the kernel for this very
    // process, and only the bytes after argv[0]'s terminator are zeroed (every pointer
    // into them still sees a valid, now empty, C string).
    unsafe {
        std::ptr::write_bytes(from as usize as *mut u8, 0, (end - from) as usize);
    }
}

/// `arg_start` and `arg_end` of `/proc/self/stat` (fields 48 and 49).
fn argument_area() -> Option<(u64, u64)> {
    let text = std::fs::read("/proc/self/stat").ok()?;
    let close = text.iter().rposition(|&b| b == b')')?;
    let fields: Vec<&[u8]> = text.get(close + 2..)?.split(|&b| b == b' ').collect();
    // Field 3 (state) is the first after the name.
    let field = |n: usize| -> Option<u64> {
        std::str::from_utf8(fields.get(n - 3)?)
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let (start, end) = (field(48)?, field(49)?);
    (start > 0 && end > start).then_some((start, end))
}
