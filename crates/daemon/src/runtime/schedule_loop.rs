//! The schedule loop: runs the start-up queries, then ticks once a second, submitting due
//! queries to the workers and running interval decorators, reloads the config on SIGHUP
//! or every `--config_refresh` seconds, and stops on SIGTERM/SIGINT. A SIGHUP also has
//! the log files reopened (after an outside rotation).
//!
//! A reload applies the new config's `options` to the flags as osquery does (on top of
//! the current values) and takes up the settings that osquery reads while running
//! ([`ResultSettings`]); settings osquery reads only at start-up
//! (`oxquery_flags::implemented::STARTUP_ONLY`) keep their start-up value.

use super::settings::ResultSettings;
use super::startup::Started;
use super::worker::{Job, Workers};
use super::{Daemon, EXIT_CATASTROPHIC, WORKERS, backup, schedule, unix_now};
use crate::config::{self, DiscoveryCache, HostFacts, Reload};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

impl Daemon {
    /// Runs the daemon until a stop is requested; returns the exit code.
    pub(super) fn run(self, started: Started<'_>) -> i32 {
        let Started {
            mut flags,
            settings,
            mut config,
            engine,
            tables,
            filter,
            instance,
            sinks,
            hup,
            pidfile: _pidfile,
            status,
            events,
            watcher,
        } = started;
        // Deliver what a previous run left in the outbox before anything new.
        let reopen_logs = Arc::new(AtomicBool::new(false));
        let logger = self.spawn_logger(sinks, settings.buffered_log_max, Arc::clone(&reopen_logs));

        let host = HostFacts::current();
        let mut discovery = DiscoveryCache::new();
        let restart_reason = watcher.as_ref().and_then(|w| w.restart_reason.as_deref());
        if let Some(reason) = restart_reason {
            log::warn!(
                "osqueryd worker restarted by its watcher; the previous one ended: {reason}"
            );
        }
        self.denylist_crashed_queries(&config, restart_reason);
        self.publish_views(&engine, &config, &flags);
        let mut schedule = self.load_schedule(&config, &engine, &host, &mut discovery);
        self.run_decorators(&engine, &config.decorators.load);

        let workers = match Workers::start(WORKERS, &self, &tables, &filter, &instance) {
            Ok(w) => w,
            Err(e) => {
                log::error!("Cannot start query workers: {e}");
                self.stop.store(true, Ordering::SeqCst);
                self.stop_logger(logger);
                return EXIT_CATASTROPHIC;
            }
        };
        let started_at = unix_now();
        for q in config::startup_order(schedule.queries())
            .into_iter()
            .filter(|q| !schedule.is_denylisted(q, started_at))
        {
            workers.submit(Job::from(q), &config.decorators.always);
        }
        log::info!(
            "osqueryd started: {} scheduled queries, pid {}",
            schedule.queries().len(),
            std::process::id()
        );
        if let Some(link) = &watcher {
            link.report_started();
        }

        let refresh = settings.config_refresh;
        let accelerated = settings.config_accelerated_refresh;
        let mut next_refresh = (refresh > 0).then(|| unix_now() + refresh as i64);
        let mut last_tick = unix_now();
        while !self.stop.load(Ordering::SeqCst) {
            sleep_to_next_second(&self.stop);
            let now = unix_now();
            // Every second between the last tick and now gets its turn, so a busy or
            // suspended moment does not skip a query's slot.
            for second in (last_tick + 1)..=now.max(last_tick + 1).min(last_tick + 60) {
                for q in schedule.due(second) {
                    workers.submit(Job::from(q), &config.decorators.always);
                }
                for (interval, queries) in &config.decorators.interval {
                    if *interval > 0 && second % (*interval as i64) == 0 {
                        self.run_decorators(&engine, queries);
                    }
                }
            }
            last_tick = now;
            let released = schedule.expire(now);
            if !released.is_empty() {
                let store = self.lock_store();
                schedule::save_denylist(&store, schedule.denylist());
                for (name, reason) in released {
                    schedule::delete_denylist_reason(&store, &name);
                    log::warn!(
                        "Scheduled query {name} is no longer deny-listed (it was for: {})",
                        reason.as_deref().unwrap_or(schedule::UNKNOWN_STOP)
                    );
                }
                self.live
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .schedule = schedule.entries(&store);
            }

            let hangup = hup.swap(false, Ordering::SeqCst);
            if hangup {
                if let Some(status) = &status {
                    status.reopen();
                }
                reopen_logs.store(true, Ordering::SeqCst);
                self.wake_logger();
            }
            let reload_now = hangup || next_refresh.is_some_and(|t| now >= t);
            if !reload_now {
                continue;
            }
            match config.reload(&flags) {
                Ok(Reload::Unchanged) => {
                    next_refresh = (refresh > 0).then(|| now + refresh as i64);
                }
                Ok(Reload::Changed(new)) => {
                    log::info!("Configuration changed; reloading the schedule");
                    config = *new;
                    if let Some(hub) = &events {
                        hub.update_config(config::events_config(&config));
                    }
                    if settings.config_enable_backup {
                        backup::save(&mut self.lock_store(), &config);
                    }
                    for w in config.apply_options(&mut flags) {
                        log::warn!("{w}");
                    }
                    // osquery re-reads these with the options; osquery_flags shows the
                    // values now in effect.
                    if let Some(status) = &status {
                        status.set_filter(crate::logger::StatusFilter {
                            min_status: flags.get(oxquery_flags::flag::logger_min_status),
                            verbose: flags.get(oxquery_flags::flag::verbose),
                        });
                        status.set_min_stderr(flags.get(oxquery_flags::flag::logger_min_stderr));
                    }
                    self.live.write().unwrap_or_else(|p| p.into_inner()).flags =
                        config::flag_rows(&flags);
                    let mut results =
                        ResultSettings::from_flags(&flags, self.host_identifier.clone());
                    // No logger plugin was started: there is nowhere to log to.
                    results.disable_logging |= settings.disable_logging;
                    *self.results.write().unwrap_or_else(|p| p.into_inner()) = results;
                    self.publish_views(&engine, &config, &flags);
                    discovery = DiscoveryCache::new();
                    schedule = self.load_schedule(&config, &engine, &host, &mut discovery);
                    self.reload_decorators(&engine, &config.decorators.load);
                    next_refresh = (refresh > 0).then(|| now + refresh as i64);
                }
                Err(e) => {
                    log::error!("Configuration refresh failed, keeping the current config: {e}");
                    next_refresh = Some(now + accelerated.max(1) as i64);
                }
            }
        }
        log::info!("osqueryd stopping");
        workers.shutdown(settings.alarm_timeout);
        if let Some(hub) = events {
            hub.stop();
        }
        // One last drain, after the workers, so everything they recorded reaches the
        // sinks.
        self.stop_logger(logger);
        0
    }
}

/// Sleeps until just after the next whole second (or until a stop is requested).
fn sleep_to_next_second(stop: &AtomicBool) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let remaining = Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()))
        + Duration::from_millis(5);
    // Wake in short steps so a stop is seen promptly.
    let mut left = remaining;
    while !left.is_zero() && !stop.load(Ordering::SeqCst) {
        let step = left.min(Duration::from_millis(100));
        std::thread::sleep(step);
        left -= step;
    }
}
