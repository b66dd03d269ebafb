//! `--enable_extensions_watchdog`: the worker's limits applied to each extension the
//! daemon started, through the same [`ProcessWatch`]. As for the worker, nothing is
//! enforced during the first `--watchdog_delay` seconds (counted from the extension's
//! own start), and a verdict has the launcher stop it (SIGTERM, SIGKILL after
//! `--watchdog_forced_shutdown_delay`) and start it again.

use super::WatchdogSettings;
use super::limits::{ProcessWatch, Sample, cpus_online};
use oxquery_extensions::launch::{ResourceWatch, WatchFactory};
use oxquery_sys::fs::FileReader;
use std::time::{Duration, Instant};

/// Watches one run of one extension.
struct ExtensionWatch {
    watch: ProcessWatch,
    reader: FileReader,
    started: Instant,
    delay: Duration,
}

impl ResourceWatch for ExtensionWatch {
    fn check(&mut self, pid: u32) -> Option<String> {
        let at_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let sample = Sample::read(&mut self.reader, pid, at_ms)?;
        // SAFETY: getpid has no preconditions.
        if sample.parent != i64::from(unsafe { libc::getpid() }) {
            // Not our child any more (its pid was reused): not ours to judge.
            return None;
        }
        let reason = self.watch.observe(sample).verdict.reason()?;
        (self.started.elapsed() >= self.delay).then_some(reason)
    }
}

/// The launcher's watch factory when `--enable_extensions_watchdog` is set.
pub fn watch_factory(settings: &WatchdogSettings) -> Option<WatchFactory> {
    if !settings.extensions {
        return None;
    }
    let limits = settings.limits;
    let delay = settings.delay;
    Some(Box::new(move || {
        Box::new(ExtensionWatch {
            watch: ProcessWatch::new(limits, cpus_online(), 0),
            reader: FileReader::new(),
            started: Instant::now(),
            delay,
        }) as Box<dyn ResourceWatch>
    }))
}
