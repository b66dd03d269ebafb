//! Which flags oxquery acts on. This is the one place to edit when a feature lands:
//! every other flag is still accepted (osquery scripts and flagfiles must keep working)
//! but setting it produces a warning that it has no effect yet.

/// Flags whose feature exists in oxquery, so setting them changes behaviour.
pub const IMPLEMENTED: &[&str] = &[
    // Shell behaviour and output.
    "A",
    "L",
    "S",
    "connect",
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
    "process_events_env",
    "profile",
    "profile_delay",
    "query",
    "query_file",
    "separator",
    // The shell's `--connect` client waits this long for a read or write.
    "thrift_timeout",
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
    // The docker_* tables talk to the Docker daemon on this socket.
    "docker_socket",
    // The lxd_* tables talk to the LXD daemon on this socket.
    "lxd_socket",
    "disable_tables",
    // Engine: a pause before each repeated scan of a table within one query.
    "table_delay",
    // Engine: whether a table's failure (a panic in its generator) fails only that query
    // (true, osquery's effective default) or ends the process (false).
    "ignore_table_exceptions",
    // The yara_file and yara_process tables pause this long after each file or process.
    "yara_delay",
    // A yara `sigurl` fetch is a POST of the node key (osqueryd's, once enrolled; the
    // shell has none, so there it refuses the fetch) instead of a GET.
    "yara_sigurl_authenticate",
    "enable_foreign",
    "enable_tables",
    // Both programs look the named experiments up at start (osquery's Linux build has
    // none, so each name is reported as not found).
    "experiment_list",
    // Events: the hub, its bounds, and scheduled queries' marks.
    "disable_events",
    // The inotify publisher (file_events, yara_events) starts only with it.
    "enable_file_events",
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
    "audit_force_unconfigure",
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
    // Starting extensions (the shell's and the daemon's launcher). `alarm_timeout` also
    // bounds the daemon's own shutdown; in both programs it sets how long extensions
    // get between SIGTERM and SIGKILL at exit.
    "alarm_timeout",
    "allow_unsafe",
    "extension",
    "extensions_autoload",
    "extensions_interval",
    "extensions_require",
    "extensions_timeout",
    // The extension manager (oxquery-extensions) in both programs.
    "disable_extensions",
    "extensions_default_index",
    "extensions_socket",
    "thrift_string_size_limit",
    "thrift_timeout",
    "thrift_verbose",
    // The cloud metadata tables (ec2_*, azure_*), in both programs.
    "aws_disable_imdsv1_fallback",
    "aws_imdsv2_request_attempts",
    "aws_imdsv2_request_interval",
    "azure_metadata_endpoint",
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
    "buffered_log_max",
    // The file carver (the carves table, carve() and the uploads; the shell never carves).
    "carver_block_size",
    "carver_compression",
    "carver_continue_endpoint",
    "carver_disable_function",
    "carver_expiry",
    "carver_start_endpoint",
    "config_accelerated_refresh",
    "config_enable_backup",
    "config_refresh",
    "config_tls_endpoint",
    "config_tls_max_attempts",
    // Detach into the background (fork, setsid, chdir /, stdio to /dev/null).
    "daemonize",
    "decorations_top_level",
    "disable_caching",
    "disable_carver",
    // The config's decorators are not run, so no line carries decorations.
    "disable_decorators",
    "disable_distributed",
    "disable_enrollment",
    "disable_logging",
    "disable_reenrollment",
    "distributed_denylist_duration",
    "distributed_interval",
    "distributed_loginfo",
    "distributed_plugin",
    "distributed_tls_max_attempts",
    "distributed_tls_read_endpoint",
    "distributed_tls_write_endpoint",
    "enable_numeric_monitoring",
    "enroll_always",
    "enroll_secret_env",
    "enroll_secret_path",
    "enroll_tls_endpoint",
    "ephemeral",
    // A running osqueryd holding the pidfile is killed instead of refusing to start.
    "force",
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
    "logger_tls_backoff_max",
    "logger_tls_compress",
    "logger_tls_endpoint",
    "logger_tls_max_lines",
    "logger_tls_max_linesize",
    "logger_tls_period",
    "malloc_trim_threshold",
    "numeric_monitoring_filesystem_path",
    "numeric_monitoring_plugins",
    "numeric_monitoring_pre_aggregation_time",
    "pidfile",
    "proxy_hostname",
    "schedule_epoch",
    "schedule_lognames",
    "schedule_max_drift",
    "schedule_reload",
    "schedule_timeout",
    "specified_identifier",
    "tls_accept_gzip",
    "tls_client_cert",
    "tls_client_key",
    "tls_disable_status_log",
    "tls_dump",
    "tls_enroll_max_attempts",
    "tls_enroll_max_interval",
    "tls_enroll_override",
    "tls_hostname",
    "tls_node_api",
    "tls_secret_always",
    "tls_server_certs",
    "tls_session_reuse",
    "tls_session_timeout",
    // The watchdog: the watcher process and its limits.
    "disable_watchdog",
    "enable_extensions_watchdog",
    "enable_watchdog_debug",
    "watchdog_delay",
    "watchdog_forced_shutdown_delay",
    "watchdog_latency_limit",
    "watchdog_level",
    "watchdog_max_delay",
    "watchdog_memory_limit",
    "watchdog_utilization_limit",
    // The aws_kinesis and aws_firehose loggers and their AWS clients (credentials, STS,
    // IMDS, endpoints, proxy).
    "aws_access_key_id",
    "aws_debug",
    "aws_disable_imdsv1_fallback",
    "aws_enable_proxy",
    "aws_enforce_fips",
    "aws_firehose_endpoint",
    "aws_firehose_period",
    "aws_firehose_region",
    "aws_firehose_stream",
    "aws_imdsv2_request_attempts",
    "aws_imdsv2_request_interval",
    "aws_kinesis_disable_log_status",
    "aws_kinesis_endpoint",
    "aws_kinesis_period",
    "aws_kinesis_random_partition_key",
    "aws_kinesis_region",
    "aws_kinesis_stream",
    "aws_profile_name",
    "aws_proxy_host",
    "aws_proxy_password",
    "aws_proxy_port",
    "aws_proxy_scheme",
    "aws_proxy_username",
    "aws_region",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_sts_arn_role",
    "aws_sts_region",
    "aws_sts_session_name",
    "aws_sts_timeout",
];

/// The `kafka_producer` logger's flags: the daemon acts on them only when built with its
/// `kafka` feature, which turns on this crate's `kafka` feature. Other builds refuse the
/// plugin, and their help and warnings say the build lacks the feature.
pub const KAFKA_FLAGS: &[&str] = &[
    "logger_kafka_acks",
    "logger_kafka_brokers",
    "logger_kafka_compression",
    "logger_kafka_topic",
];
/// [`KAFKA_FLAGS`] when this build acts on them, else nothing.
pub const IMPLEMENTED_WITH_KAFKA: &[&str] = if cfg!(feature = "kafka") {
    KAFKA_FLAGS
} else {
    &[]
};

/// The cargo feature a build needs to act on `name`, whether or not this one has it
/// (`kafka` for the `kafka_producer` flags, `augeas` for the augeas table's lens
/// directory).
pub fn needed_feature(name: &str) -> Option<&'static str> {
    if KAFKA_FLAGS.contains(&name) {
        Some("kafka")
    } else if AUGEAS_FLAGS.contains(&name) {
        Some("augeas")
    } else {
        None
    }
}

/// The `augeas` table's flag: both programs act on it only when built with the table
/// (the programs' `augeas` feature turns on this crate's).
pub const AUGEAS_FLAGS: &[&str] = &["augeas_lenses"];
/// [`AUGEAS_FLAGS`] when this build has the augeas table, else nothing.
pub const IMPLEMENTED_WITH_AUGEAS: &[&str] = if cfg!(feature = "augeas") {
    AUGEAS_FLAGS
} else {
    &[]
};

/// The cargo feature `name` needs when this build lacks it (`kafka` for the
/// `kafka_producer` flags, `augeas` for the augeas table's lens directory).
pub fn missing_feature(name: &str) -> Option<&'static str> {
    needed_feature(name).filter(|feature| !built_with(feature))
}

/// Whether this build has the cargo feature `feature` (of those flags need).
fn built_with(feature: &str) -> bool {
    match feature {
        "kafka" => cfg!(feature = "kafka"),
        "augeas" => cfg!(feature = "augeas"),
        _ => false,
    }
}

/// osquery flags whose purpose oxquery meets without them, with why: setting them changes
/// nothing because what they guard against cannot happen here. `--help` says "not
/// needed" and the reason; so does the notice when one is set.
pub const NOT_NEEDED: &[(&str, &str)] = &[
    // osquery reads /dev/mem only to find SMBIOS tables the kernel does not export;
    // oxquery reads them from /sys/firmware/dmi/tables only.
    ("disable_memory", "oxquery never reads physical memory"),
    // osquery calls res_init() every N seconds so a long-running process sees a new
    // resolv.conf. oxquery's HTTP client resolves each name on a fresh thread, whose
    // resolver state glibc loads from the current resolv.conf (and glibc 2.26 and later
    // reload it whenever it changes).
    (
        "dns_resolver_refresh_interval",
        "each DNS lookup reads the current resolv.conf",
    ),
    // osquery runs a table for another process's container in a worker process that
    // enters its mount namespace, and this flag keeps that worker between queries.
    // oxquery's tables resolve paths inside /proc/<pid>/root with openat2(RESOLVE_IN_ROOT).
    (
        "keep_container_worker_open",
        "no worker: tables read through /proc/PID/root",
    ),
];

/// osquery flags that modify a feature oxquery does not have yet, with that feature:
/// `--help` names it, and so does the notice when one is set.
pub const NEEDS_FEATURE: &[(&str, &str)] = &[];

/// Why `name` needs no implementation ([`NOT_NEEDED`]).
pub fn not_needed(name: &str) -> Option<&'static str> {
    NOT_NEEDED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, why)| *why)
}

/// The missing feature `name` modifies ([`NEEDS_FEATURE`]).
pub fn needs_feature(name: &str) -> Option<&'static str> {
    NEEDS_FEATURE
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, what)| *what)
}

/// osquery's Windows service switches. osquery defines them on Linux too, where both
/// programs answer them by saying they only apply to Windows and exiting with 1;
/// oxquery does the same ([`windows_service_request`]).
pub const WINDOWS_ONLY: &[&str] = &["install", "uninstall"];

/// What `--install` / `--uninstall` make a Linux osquery do: the lines it prints and its
/// exit status (1: no service was installed or removed). `None` when neither is set.
pub fn windows_service_request(install: bool, uninstall: bool) -> Option<(Vec<String>, i32)> {
    let (name, verb) = match (install, uninstall) {
        (true, _) => ("install", "install"),
        (false, true) => ("uninstall", "uninstall"),
        (false, false) => return None,
    };
    Some((
        vec![
            format!("The --{name} service flag only applies to Windows platforms"),
            format!("Unable to {verb} the osqueryd service"),
        ],
        1,
    ))
}

/// Config options (flags the config's `options` may set) that osquery reads only at
/// start-up: a reload changes the flag's value (`osquery_flags` shows it) but not what
/// the running process does. Among the options oxquery acts on:
/// * the database (`disable_database`, `ephemeral`: opened once);
/// * the logger plugins' set-up (`logger_path`, `logger_rotate*`,
///   `logger_syslog_facility`, `logger_syslog_prepend_cee`: plugins are set up once);
/// * `host_identifier` / `specified_identifier` (osquery caches the identifier on first
///   use);
/// * the event machinery (`disable_events`, `enable_file_events`, `events_*`,
///   `disable_audit`, `audit_*`,
///   `hardware_disabled_types`, `syslog_*`: publishers, their settings and bounds are
///   set up once);
/// * numeric monitoring (`enable_numeric_monitoring`, `numeric_monitoring_*`: the plugin
///   and its buffer are set up once) and `schedule_timeout` (the scheduler's end is
///   fixed when it starts);
/// * the AWS loggers' settings (`aws_*`: their clients and streams are set up once);
/// * `disable_logging` turned off when it was on at start (no logger plugin was
///   started); turning it on stops logging at once.
///
/// Every other option oxquery acts on applies from the next reload: the schedule
/// settings (`schedule_splay_percent`, `schedule_default_interval`, `pack_delimiter`,
/// `pack_refresh_interval`) shape the new schedule, and the result settings
/// (`schedule_epoch`, `logger_event_type`, `logger_snapshot_event_type`,
/// `logger_numerics`, `decorations_top_level`, `nullvalue`, `disable_logging`) the next
/// results logged, `disable_decorators` the next decorator run, `read_max`,
/// `hash_cache_max`, `disable_hash_cache`, `yara_delay`, `yara_sigurl_authenticate`,
/// `augeas_lenses` and
/// `ignore_table_exceptions` the next scans, `verbose`/`logger_min_status`/
/// `logger_min_stderr` the status log at once, `buffered_log_max` the next flush, and
/// the scheduler's own (`schedule_lognames`, `schedule_max_drift`, `schedule_reload`,
/// `disable_caching`, `table_delay`, `malloc_trim_threshold`) the next tick or run.
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
    "audit_force_unconfigure",
    "audit_persist",
    "disable_audit",
    "disable_database",
    "disable_events",
    "enable_file_events",
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
    "enable_numeric_monitoring",
    "numeric_monitoring_filesystem_path",
    "numeric_monitoring_plugins",
    "numeric_monitoring_pre_aggregation_time",
    "schedule_timeout",
    "specified_identifier",
    "enable_syslog",
    "syslog_events_expiry",
    "syslog_events_max",
    "syslog_pipe_path",
    "syslog_rate_limit",
    // The AWS loggers' clients and streams are set up once.
    "aws_access_key_id",
    "aws_debug",
    "aws_disable_imdsv1_fallback",
    "aws_enable_proxy",
    "aws_firehose_endpoint",
    "aws_firehose_period",
    "aws_firehose_region",
    "aws_firehose_stream",
    "aws_imdsv2_request_attempts",
    "aws_imdsv2_request_interval",
    "aws_kinesis_disable_log_status",
    "aws_kinesis_endpoint",
    "aws_kinesis_period",
    "aws_kinesis_random_partition_key",
    "aws_kinesis_region",
    "aws_kinesis_stream",
    "aws_profile_name",
    "aws_proxy_host",
    "aws_proxy_password",
    "aws_proxy_port",
    "aws_proxy_scheme",
    "aws_proxy_username",
    "aws_region",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_sts_arn_role",
    "aws_sts_region",
    "aws_sts_session_name",
    "aws_sts_timeout",
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
pub const REFUSED: &[&str] = &[];

/// Whether setting `name` has an effect in the shell today.
pub fn is_implemented(name: &str) -> bool {
    IMPLEMENTED.contains(&name)
        || IMPLEMENTED_WITH_AUGEAS.contains(&name)
        || WINDOWS_ONLY.contains(&name)
}

/// Whether setting `name` has an effect in `tool` today.
pub fn is_implemented_in(name: &str, tool: Tool) -> bool {
    is_implemented(name)
        || (tool == Tool::Daemon
            && (IMPLEMENTED_IN_DAEMON.contains(&name) || IMPLEMENTED_WITH_KAFKA.contains(&name)))
}

/// Whether only the daemon acts on `name` (the shell schedules nothing, logs no results,
/// runs no watchdog): the shell's help and notices say so instead of "no effect yet".
pub fn is_daemon_only(name: &str) -> bool {
    !is_implemented(name) && (IMPLEMENTED_IN_DAEMON.contains(&name) || KAFKA_FLAGS.contains(&name))
}

/// Whether using `name` is an error in oxquery today.
pub fn is_refused(name: &str) -> bool {
    REFUSED.contains(&name)
}
