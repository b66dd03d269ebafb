//! The daemon's settings: plain values read from the flags once at start, and the part
//! a config reload may change, rebuilt from the flags after the new config's `options`
//! are applied (see `oxquery_flags::implemented::STARTUP_ONLY` for what osquery reads
//! only at start).

use crate::logger::{FormatOptions, HostIdentifier};
use oxquery_flags::{Flags, flag};
use std::path::PathBuf;

/// What start-up reads.
#[derive(Debug, Clone)]
pub(crate) struct DaemonSettings {
    pub(crate) pidfile: Option<PathBuf>,
    /// `--force`: a running osqueryd holding the pidfile is killed rather than refusing
    /// to start.
    pub(crate) force: bool,
    /// `None` with `--disable_database`.
    pub(crate) database_path: Option<PathBuf>,
    pub(crate) config_enable_backup: bool,
    /// `--config_refresh` and the retry delay after a failed refresh (seconds; 0 = never).
    pub(crate) config_refresh: u64,
    pub(crate) config_accelerated_refresh: u64,
    pub(crate) buffered_log_max: u64,
    /// `--disable_logging` at start: no logger plugin is started at all.
    pub(crate) disable_logging: bool,
    pub(crate) enable_tables: String,
    pub(crate) disable_tables: String,
    /// How long a shutdown waits for the query workers: `--alarm_timeout`, at least 10 s
    /// as in osquery.
    pub(crate) alarm_timeout: std::time::Duration,
    /// `--schedule_timeout`: seconds after which the scheduler, and the daemon, stop;
    /// 0 = never.
    pub(crate) schedule_timeout: u64,
}

impl DaemonSettings {
    pub(crate) fn from_flags(flags: &Flags) -> DaemonSettings {
        DaemonSettings {
            pidfile: (!flags.get(flag::ephemeral)).then(|| PathBuf::from(flags.get(flag::pidfile))),
            force: flags.get(flag::force),
            database_path: (!flags.get(flag::disable_database)).then(|| {
                // osquery's RocksDB directory there is left alone: see database_file.
                crate::config::database_file(std::path::Path::new(flags.get(flag::database_path)))
                    .path
            }),
            config_enable_backup: flags.get(flag::config_enable_backup),
            config_refresh: flags.get(flag::config_refresh),
            config_accelerated_refresh: flags.get(flag::config_accelerated_refresh),
            buffered_log_max: flags.get(flag::buffered_log_max),
            disable_logging: flags.get(flag::disable_logging),
            enable_tables: flags.get(flag::enable_tables).to_owned(),
            disable_tables: flags.get(flag::disable_tables).to_owned(),
            alarm_timeout: std::time::Duration::from_secs(flags.get(flag::alarm_timeout).max(10)),
            schedule_timeout: flags.get(flag::schedule_timeout),
        }
    }
}

/// How results are recorded and logged: osquery reads these flags each time it logs, so
/// a reload that changes them through `options` applies to the next results.
#[derive(Debug, Clone)]
pub(crate) struct ResultSettings {
    /// `--schedule_epoch`: a new epoch starts every query's differential results over.
    pub(crate) epoch: u64,
    /// `--disable_logging`: results are still diffed and stored, but not logged.
    pub(crate) disable_logging: bool,
    pub(crate) format: FormatOptions,
    /// `--buffered_log_max`: undelivered lines kept per sink (osquery reads it at each
    /// flush).
    pub(crate) buffered_log_max: u64,
}

impl ResultSettings {
    /// The settings `flags` give. `host_identifier` is resolved once at start, as
    /// osquery caches it on first use.
    pub(crate) fn from_flags(flags: &Flags, host_identifier: HostIdentifier) -> ResultSettings {
        ResultSettings {
            epoch: flags.get(flag::schedule_epoch),
            disable_logging: flags.get(flag::disable_logging),
            format: FormatOptions {
                host_identifier,
                event_type: flags.get(flag::logger_event_type),
                snapshot_event_type: flags.get(flag::logger_snapshot_event_type),
                numerics: flags.get(flag::logger_numerics),
                decorations_top_level: flags.get(flag::decorations_top_level),
                nullvalue: flags.get(flag::nullvalue).to_owned(),
            },
            buffered_log_max: flags.get(flag::buffered_log_max),
        }
    }
}

/// How the scheduler and the workers run each query: flags osquery reads at every tick
/// or run, so a reload that changes them through `options` applies at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunSettings {
    /// `--schedule_lognames`: "Executing scheduled query <name>" at INFO.
    pub(crate) lognames: bool,
    /// `--schedule_max_drift` (seconds).
    pub(crate) max_drift: u64,
    /// `--schedule_reload`: seconds between store maintenance runs; 0 = never.
    pub(crate) store_maintenance: u64,
    /// `--disable_caching`: scheduled scans of cacheable tables never reuse rows.
    pub(crate) disable_caching: bool,
    /// Resident bytes above which a worker calls `malloc_trim` after a query; `None`
    /// with `--malloc_trim_threshold=0`.
    pub(crate) malloc_trim_above: Option<u64>,
    /// `--disable_decorators`: the config's decorators do not run, so result and status
    /// lines carry no decorations.
    pub(crate) disable_decorators: bool,
}

impl RunSettings {
    pub(crate) fn from_flags(flags: &Flags) -> RunSettings {
        RunSettings {
            lognames: flags.get(flag::schedule_lognames),
            max_drift: flags.get(flag::schedule_max_drift),
            store_maintenance: flags.get(flag::schedule_reload),
            disable_caching: flags.get(flag::disable_caching),
            malloc_trim_above: malloc_trim_above(flags),
            disable_decorators: flags.get(flag::disable_decorators),
        }
    }
}

/// osquery's rule for `--malloc_trim_threshold` (MB): a value given is used as is (0
/// turns trimming off); left at its default with the watchdog on, the threshold is 80 %
/// of the watchdog's memory limit, so memory is handed back before the watchdog acts.
fn malloc_trim_above(flags: &Flags) -> Option<u64> {
    const MB: u64 = 1000 * 1000;
    let threshold_mb = if flags.is_set(flag::malloc_trim_threshold) {
        flags.get(flag::malloc_trim_threshold)
    } else if let Some(limit) = crate::config::watchdog_memory_limit_mb(flags) {
        limit * 80 / 100
    } else {
        flags.get(flag::malloc_trim_threshold)
    };
    (threshold_mb > 0).then(|| threshold_mb.saturating_mul(MB))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        let mut f = Flags::new();
        for a in args {
            let (name, value) = a.split_once('=').unwrap();
            f.set(name, value).unwrap();
        }
        f
    }

    #[test]
    fn malloc_trim_threshold_follows_osquery_rule() {
        const MB: u64 = 1000 * 1000;
        // Default with the watchdog on: 80 % of its memory limit.
        assert_eq!(malloc_trim_above(&flags(&[])), Some(160 * MB));
        assert_eq!(
            malloc_trim_above(&flags(&["watchdog_level=1"])),
            Some(80 * MB)
        );
        assert_eq!(
            malloc_trim_above(&flags(&["watchdog_memory_limit=500"])),
            Some(400 * MB)
        );
        // Default without the watchdog: the flag's own 200 MB.
        assert_eq!(
            malloc_trim_above(&flags(&["disable_watchdog=true"])),
            Some(200 * MB)
        );
        // Given: used as is, 0 turns it off.
        assert_eq!(
            malloc_trim_above(&flags(&["malloc_trim_threshold=50"])),
            Some(50 * MB)
        );
        assert_eq!(
            malloc_trim_above(&flags(&["malloc_trim_threshold=0"])),
            None
        );
    }
}
