//! The logger thread: drains the outbox to the sinks when a worker wakes it and at
//! least every few seconds, and once more after the workers stop. Asked to (SIGHUP), it
//! has the sinks reopen their files before the next drain.

use super::Daemon;
use crate::outbox::{Outbox, OutboxConfig};
use crate::sink::Sink;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

impl Daemon {
    /// Starts the logger thread over `sinks`; `max_backlog` is `--buffered_log_max`.
    /// Setting `reopen` (then [`Daemon::wake_logger`]) has the sinks reopen their files.
    pub(super) fn spawn_logger(
        &self,
        sinks: Vec<Box<dyn Sink>>,
        max_backlog: u64,
        reopen: Arc<AtomicBool>,
    ) -> JoinHandle<()> {
        let daemon = self.clone();
        let config = OutboxConfig {
            max_backlog,
            ..OutboxConfig::default()
        };
        std::thread::Builder::new()
            .name("logger".into())
            .spawn(move || {
                let mut outbox = Outbox::new(sinks, config);
                loop {
                    let stopping = daemon.logger_stop.load(Ordering::SeqCst);
                    if reopen.swap(false, Ordering::SeqCst) {
                        outbox.reopen();
                    }
                    outbox.set_max_backlog(daemon.result_settings().buffered_log_max);
                    // The store is locked per step of the drain, never across a sink's
                    // write: workers record results while a large backlog is delivered.
                    match outbox.drain(&*daemon.store) {
                        Ok(report) => {
                            for (sink, error) in report.failed {
                                log::warn!("Logger {sink} failed: {error}");
                            }
                        }
                        Err(e) => log::error!("Cannot read the log outbox: {e}"),
                    }
                    // Between drains: never inside a batch.
                    daemon.direct_lines.deliver(&mut outbox);
                    if stopping {
                        break;
                    }
                    let (flag, cv) = &*daemon.flush;
                    let guard = flag.lock().unwrap_or_else(|p| p.into_inner());
                    let (mut guard, _) = cv
                        .wait_timeout_while(guard, Duration::from_secs(3), |woken| {
                            !*woken && !daemon.logger_stop.load(Ordering::SeqCst)
                        })
                        .unwrap_or_else(|p| p.into_inner());
                    *guard = false;
                }
            })
            .expect("spawning the logger thread")
    }

    /// Asks the logger thread for its last drain (everything the workers recorded is in
    /// the store by now) and waits for it.
    pub(super) fn stop_logger(&self, logger: JoinHandle<()>) {
        self.logger_stop.store(true, Ordering::SeqCst);
        self.wake_logger();
        let _ = logger.join();
    }
}
