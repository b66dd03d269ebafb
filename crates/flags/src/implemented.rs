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
    // Process-wide.
    "config_path",
    "pack",
    "disable_tables",
    "enable_tables",
    "flagfile",
    "help",
    "read_max",
    "verbose",
    "version",
];

/// Flags only the daemon acts on (the shell loads no config and logs no results yet).
pub const IMPLEMENTED_IN_DAEMON: &[&str] = &[
    "D",
    "alarm_timeout",
    "buffered_log_max",
    "config_accelerated_refresh",
    "config_check",
    "config_enable_backup",
    "config_dump",
    "config_refresh",
    "database_dump",
    "database_path",
    "decorations_top_level",
    "disable_database",
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
    "pack_delimiter",
    "pack_refresh_interval",
    "pidfile",
    "schedule_default_interval",
    "schedule_epoch",
    "schedule_splay_percent",
    "specified_identifier",
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
