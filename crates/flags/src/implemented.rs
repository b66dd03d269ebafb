//! Which flags oxquery acts on. This is the one place to edit when a feature lands:
//! every other flag is still accepted (osquery scripts and flagfiles must keep working)
//! but setting it produces a warning that it has no effect yet.

/// Flags whose feature exists in oxquery, so setting them changes behaviour.
pub const IMPLEMENTED: &[&str] = &[
    // Shell behaviour and output.
    "A",
    "L",
    "S",
    "csv",
    "header",
    "json",
    "json_pretty",
    "json_typed",
    "line",
    "list",
    "nullvalue",
    "output",
    "planner",
    "pretty_expand",
    "profile",
    "profile_delay",
    "query",
    "query_file",
    "separator",
    // Process-wide: both programs load the config and open the database.
    "config_check",
    "config_check_strict",
    "config_dump",
    "config_path",
    "config_plugin",
    "database_dump",
    "database_path",
    "disable_database",
    "pack",
    "pack_delimiter",
    "pack_refresh_interval",
    "schedule_default_interval",
    "schedule_query_memory_limit",
    "schedule_query_timeout",
    "schedule_splay_percent",
    "disable_hash_cache",
    "disable_tables",
    "enable_foreign",
    "enable_tables",
    // Events: the hub, its bounds, and scheduled queries' marks.
    "disable_events",
    "events_expiry",
    "events_max",
    "events_optimize",
    // Events: the audit publisher and its tables (process_events, socket_events,
    // process_file_events, user_events, selinux_events, apparmor_events, seccomp_events).
    "audit_allow_accept_socket_events",
    "audit_allow_apparmor_events",
    "audit_allow_config",
    "audit_allow_failed_socket_events",
    "audit_allow_fim_events",
    "audit_allow_fork_process_events",
    "audit_allow_kill_process_events",
    "audit_allow_null_accept_socket_events",
    "audit_allow_process_events",
    "audit_allow_seccomp_events",
    "audit_allow_selinux_events",
    "audit_allow_sockets",
    "audit_allow_unix",
    "audit_allow_user_events",
    "audit_backlog_limit",
    "audit_backlog_wait_time",
    "audit_fim_show_accesses",
    "audit_force_reconfigure",
    "audit_persist",
    "audit_take_over_daemons",
    "disable_audit",
    // hardware_events (the udev publisher).
    "hardware_disabled_types",
    // The syslog publisher and syslog_events.
    "enable_syslog",
    "syslog_events_expiry",
    "syslog_events_max",
    "syslog_pipe_path",
    "syslog_rate_limit",
    "flagfile",
    "hash_cache_max",
    "help",
    "read_max",
    "verbose",
    "version",
];

/// Flags only the daemon acts on (the shell schedules nothing and logs no results).
pub const IMPLEMENTED_IN_DAEMON: &[&str] = &[
    "D",
    "alarm_timeout",
    "buffered_log_max",
    "config_accelerated_refresh",
    "config_enable_backup",
    "config_refresh",
    "decorations_top_level",
    "disable_logging",
    "ephemeral",
    "host_identifier",
    "logger_event_type",
    "logger_min_status",
    "logger_min_stderr",
    "logger_mode",
    "logger_numerics",
    "logger_path",
    "logger_plugin",
    "logger_rotate",
    "logger_rotate_max_files",
    "logger_rotate_size",
    "logger_snapshot_event_type",
    "logger_stderr",
    "logger_syslog_facility",
    "logger_syslog_prepend_cee",
    "pidfile",
    "schedule_epoch",
    "specified_identifier",
];

/// Config options (flags the config's `options` may set) that osquery reads only at
/// start-up: a reload changes the flag's value (`osquery_flags` shows it) but not what
/// the running process does. Among the options oxquery acts on:
/// * the database (`disable_database`, `ephemeral`: opened once);
/// * the logger plugins' set-up (`logger_path`, `logger_rotate*`,
///   `logger_syslog_facility`, `logger_syslog_prepend_cee`: plugins are set up once);
/// * `host_identifier` / `specified_identifier` (osquery caches the identifier on first
///   use);
/// * the event machinery (`disable_events`, `events_*`, `disable_audit`, `audit_*`,
///   `hardware_disabled_types`, `syslog_*`: publishers, their settings and bounds are
///   set up once);
/// * `disable_logging` turned off when it was on at start (no logger plugin was
///   started); turning it on stops logging at once.
///
/// Every other option oxquery acts on applies from the next reload: the schedule
/// settings (`schedule_splay_percent`, `schedule_default_interval`, `pack_delimiter`,
/// `pack_refresh_interval`) shape the new schedule, and the result settings
/// (`schedule_epoch`, `logger_event_type`, `logger_snapshot_event_type`,
/// `logger_numerics`, `decorations_top_level`, `nullvalue`, `disable_logging`) the next
/// results logged, `read_max`, `hash_cache_max` and `disable_hash_cache` the next scans, `verbose`/`logger_min_status`/
/// `logger_min_stderr` the status log at once, and `buffered_log_max` the next flush.
pub const STARTUP_ONLY: &[&str] = &[
    "audit_allow_accept_socket_events",
    "audit_allow_apparmor_events",
    "audit_allow_config",
    "audit_allow_failed_socket_events",
    "audit_allow_fim_events",
    "audit_allow_fork_process_events",
    "audit_allow_kill_process_events",
    "audit_allow_null_accept_socket_events",
    "audit_allow_process_events",
    "audit_allow_seccomp_events",
    "audit_allow_selinux_events",
    "audit_allow_sockets",
    "audit_allow_user_events",
    "audit_backlog_limit",
    "audit_backlog_wait_time",
    "audit_force_reconfigure",
    "audit_persist",
    "disable_audit",
    "disable_database",
    "disable_events",
    "events_expiry",
    "events_max",
    "events_optimize",
    "hardware_disabled_types",
    "ephemeral",
    "host_identifier",
    "logger_path",
    "logger_rotate",
    "logger_rotate_max_files",
    "logger_rotate_size",
    "logger_syslog_facility",
    "logger_syslog_prepend_cee",
    "specified_identifier",
    "enable_syslog",
    "syslog_events_expiry",
    "syslog_events_max",
    "syslog_pipe_path",
    "syslog_rate_limit",
];

/// Which program is asking: some flags only have an effect in one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Shell,
    Daemon,
}

/// Flags that oxquery rejects with an explicit error when used, because their feature
/// is missing and carrying on would do something else than asked (run no queries,
/// query the wrong process). They need no "no effect" warning.
pub const REFUSED: &[&str] = &["connect"];

/// Whether setting `name` has an effect in the shell today.
pub fn is_implemented(name: &str) -> bool {
    IMPLEMENTED.contains(&name)
}

/// Whether setting `name` has an effect in `tool` today.
pub fn is_implemented_in(name: &str, tool: Tool) -> bool {
    is_implemented(name) || (tool == Tool::Daemon && IMPLEMENTED_IN_DAEMON.contains(&name))
}

/// Whether using `name` is an error in oxquery today.
pub fn is_refused(name: &str) -> bool {
    REFUSED.contains(&name)
}
