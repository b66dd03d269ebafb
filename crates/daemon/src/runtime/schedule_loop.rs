//! The schedule loop: runs the start-up queries, then ticks once a second, submitting due
//! queries to the workers and running interval decorators, reloads the config on SIGHUP
//! or every `--config_refresh` seconds, and stops on SIGTERM/SIGINT. A SIGHUP also has
//! the log files reopened (after an outside rotation).
//!
//! A reload applies the new config's `options` to the flags as osquery does (on top of
//! the current values) and takes up the settings that osquery reads while running
//! ([`ResultSettings`]); settings osquery reads only at start-up
//! (`oxquery_flags::implemented::STARTUP_ONLY`) keep their start-up value.

use super::settings::{ResultSettings, RunSettings};
use super::startup::Started;
use super::ticker::Ticker;
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
            remote,
            watcher,
            carves,
            // Dropped as `run` returns, after the manager's stop: stops the extensions.
            launcher: _launcher,
            extension_config,
            extensions,
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
        // Live queries from the fleet server, on an engine of their own.
        let distributed = match tables.engine(&filter, instance.clone(), Arc::clone(&self.live)) {
            Ok(engine) => {
                let cancel = engine.cancel_handle();
                super::remote::start_distributed(
                    remote.as_ref(),
                    &flags,
                    &self.store,
                    engine,
                    &self.stop,
                )
                .map(|thread| (thread, cancel))
            }
            Err(e) => {
                log::error!("Cannot start the distributed plugin's engine: {e}");
                None
            }
        };
        // Its own stop flag, set whichever way the loop ends (a signal or
        // --schedule_timeout); set from a signal, the loop ends within a second.
        let carver_stop = Arc::new(AtomicBool::new(false));
        let carver = crate::carver::Carver::new(carves.clone(), remote.clone())
            .spawn(Arc::clone(&carver_stop))
            .map_err(|e| log::error!("Cannot start the carver: {e}"))
            .ok();
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
        let mut ticker = Ticker::new(started_at);
        // osquery's --schedule_timeout: the scheduler, and the daemon with it, ends this
        // many seconds after it started.
        let ends_at = (settings.schedule_timeout > 0)
            .then(|| started_at.saturating_add(settings.schedule_timeout as i64));
        while !self.stop.load(Ordering::SeqCst) {
            sleep_to_next_second(&self.stop);
            let now = unix_now();
            if let Some(end) = ends_at
                && now > end
            {
                log::info!(
                    "The scheduler ended after {} seconds",
                    settings.schedule_timeout
                );
                break;
            }
            let run = self.run_settings();
            let steps = ticker.advance(now, run.max_drift);
            if steps.skipped {
                log::warn!(
                    "The scheduler fell {} s behind, more than --schedule_max_drift ({} s): \
                     skipping the missed seconds",
                    steps.behind,
                    run.max_drift
                );
            } else if steps.behind > 0 {
                log::debug!("The scheduler fell {} s behind: catching up", steps.behind);
            }
            if let Some(seconds) = steps.seconds {
                // A catch-up runs each query due in the missed seconds once, not once per
                // missed turn.
                for q in schedule.due_within(seconds.clone()) {
                    workers.submit(Job::from(q), &config.decorators.always);
                }
                for (interval, queries) in &config.decorators.interval {
                    if *interval > 0 && due_within(*interval, &seconds) {
                        self.run_decorators(&engine, queries);
                    }
                }
                // osquery looks for scheduled carves once a minute.
                if due_within(crate::carver::CARVE_INTERVAL, &seconds) {
                    carves.wake();
                }
                if run.store_maintenance > 0 && due_within(run.store_maintenance, &seconds) {
                    self.maintain_store();
                }
            }
            if let Some(monitor) = &self.monitor {
                monitor.flush_if_due(now);
            }
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
            let reloaded = match (&extension_config, &remote) {
                (Some(plugin), _) => plugin.reload(&config, &config::Settings::from_flags(&flags)),
                (None, Some(keys)) if super::remote::config_over_tls(&flags) => {
                    super::remote::config_sources(keys, &flags, &self.stop).and_then(|sources| {
                        config.reload_from(sources, &config::Settings::from_flags(&flags))
                    })
                }
                _ => config.reload(&flags),
            };
            match reloaded {
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
                    *self.run.write().unwrap_or_else(|p| p.into_inner()) =
                        RunSettings::from_flags(&flags);
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
        // No new query or registration from the socket while the rest stops.
        if let Some(manager) = extensions {
            manager.stop();
        }
        if let Some((thread, cancel)) = distributed {
            cancel.cancel();
            let _ = thread.join();
        }
        carver_stop.store(true, Ordering::SeqCst);
        if let Some(thread) = carver {
            let _ = thread.join();
        }
        workers.shutdown(settings.alarm_timeout);
        if let Some(hub) = events {
            hub.stop();
        }
        if let Some(monitor) = &self.monitor {
            monitor.flush();
        }
        // One last drain, after the workers, so everything they recorded reaches the
        // sinks.
        self.stop_logger(logger);
        0
    }
}

/// Whether some second of `seconds` is a multiple of `interval`.
fn due_within(interval: u64, seconds: &std::ops::RangeInclusive<i64>) -> bool {
    let interval = interval.max(1) as i64;
    let (first, last) = (*seconds.start(), *seconds.end());
    first <= last && first + (interval - first.rem_euclid(interval)) % interval <= last
}

impl Daemon {
    /// `--schedule_reload`: the store's upkeep, with what it did at verbose.
    fn maintain_store(&self) {
        let started = std::time::Instant::now();
        let done = self.lock_store().maintain();
        match done {
            Ok(m) => log::debug!(
                "Database maintenance in {} ms: write-ahead log {} -> {} bytes, \
                 {} -> {} pages ({} -> {} free), page cache {} -> {} bytes",
                started.elapsed().as_millis(),
                m.wal_before,
                m.wal_after,
                m.pages_before,
                m.pages_after,
                m.free_pages_before,
                m.free_pages_after,
                m.cache_before,
                m.cache_after
            ),
            Err(e) => log::warn!("Database maintenance failed: {e}"),
        }
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

#[cfg(test)]
mod tests {
    #[test]
    fn an_interval_is_due_within_a_range_holding_one_of_its_multiples() {
        assert!(super::due_within(60, &(60..=60)));
        assert!(super::due_within(60, &(1..=120)));
        assert!(!super::due_within(60, &(61..=119)));
        assert!(super::due_within(60, &(61..=120)));
        assert!(!super::due_within(60, &std::ops::RangeInclusive::new(5, 4)));
    }
}
