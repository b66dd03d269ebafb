//! Start-up: flags, the one-shot modes (`--config_check`, `--config_dump`,
//! `--database_dump`), then the config, pidfile, status log, store, loggers and the
//! engine, in osquery's order. Every early exit says why.

use super::settings::{DaemonSettings, ResultSettings, RunSettings};
use super::{
    Daemon, EXIT_CATASTROPHIC, aws, backup, extension, osquery_import, own_plugins, remote,
};
use crate::config::{self, Config, ForeignTables, ProgramTables};
use crate::item::Decorations;
use crate::logger::{self, HostIdentifier, LoggerSettings, StatusLogger, StatusOptions};
use crate::pidfile::Pidfile;
use crate::sink::Sink;
use crate::watchdog::{self, Role, WatchdogSettings, worker::WorkerLink};
use oxquery_engine::{Engine, TableFilter};
use oxquery_extensions::PluginCaller;
use oxquery_extensions::launch::{self, LaunchSettings, Launcher};
use oxquery_flags::{Flags, flag};
use oxquery_remote::NodeKeys;
use oxquery_store::{Domain, Store};
use oxquery_table::{InstanceInfo, TableDef};
use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, RwLock};

const DEFAULT_FLAGFILE: &str = "/etc/osquery/osquery.flags.default";
/// The store key of the persistent instance identifier.
pub(crate) const INSTANCE_KEY: &str = "instance_uuid_v1";

/// Everything the schedule loop starts from.
pub(super) struct Started<'t> {
    /// The flags with the config's `options` applied; reloads apply theirs on top, as
    /// osquery does.
    pub(super) flags: Flags,
    pub(super) settings: DaemonSettings,
    pub(super) config: Config,
    pub(super) engine: Engine,
    pub(super) tables: ProgramTables<'t>,
    pub(super) filter: TableFilter,
    pub(super) instance: InstanceInfo,
    pub(super) sinks: Vec<Box<dyn Sink>>,
    pub(super) hup: Arc<AtomicBool>,
    /// Held until the process ends: dropping it lets another daemon start.
    pub(super) pidfile: Option<Pidfile>,
    /// Changes the status log's filter when a reload changes `--verbose` or
    /// `--logger_min_status` (none if the status log could not be installed).
    pub(super) status: Option<crate::logger::StatusControl>,
    /// The event publishers and buffer (none under `--disable_events`).
    pub(super) events: Option<oxquery_events::EventHub>,
    /// The TLS plugins' node key (none without a TLS plugin).
    pub(super) remote: Option<Arc<NodeKeys>>,
    /// The watcher that started this worker (none with `--disable_watchdog`).
    pub(super) watcher: Option<WorkerLink>,
    /// The carves the engines' `carves` table and `carve()` keep.
    pub(super) carves: crate::carver::CarveBook,
    /// The extensions this process started (with `--disable_watchdog`; otherwise the
    /// watcher starts them). Dropped last when the daemon ends, which stops them.
    pub(super) launcher: Option<Launcher>,
    /// The config plugin, when an extension provides it (refreshes call it).
    pub(super) extension_config: Option<extension::ExtensionConfig>,
    /// The extension manager (none under `--disable_extensions`).
    pub(super) extensions: Option<oxquery_extensions::Manager>,
}

/// Runs `osqueryd` with `args` (without argv\[0\]) over the built-in `tables` (and, with
/// `--enable_foreign`, the tables `foreign` builds); returns the exit code.
pub fn run(args: &[OsString], tables: &[&'static TableDef], foreign: ForeignTables) -> i32 {
    run_with_plugins(args, tables, foreign, None)
}

/// [`run`] with `plugins`: how config and logger plugins that extensions provide are
/// called (`None`: no extension can provide any).
pub(crate) fn run_with_plugins(
    args: &[OsString],
    tables: &[&'static TableDef],
    foreign: ForeignTables,
    plugins: Option<Arc<dyn PluginCaller>>,
) -> i32 {
    match start(args, tables, foreign, plugins) {
        Ok((daemon, started)) => daemon.run(started),
        Err(code) => code,
    }
}

/// Start-up up to the schedule loop; `Err` is the exit code of a process that stops
/// here (after printing why, or after a one-shot mode's output).
fn start<'t>(
    args: &[OsString],
    tables: &'t [&'static TableDef],
    foreign: ForeignTables,
    plugins: Option<Arc<dyn PluginCaller>>,
) -> Result<(Daemon, Started<'t>), i32> {
    let mut flags = match oxquery_flags::parse_command_line_with(
        daemon_defaults(),
        args,
        Some(Path::new(DEFAULT_FLAGFILE)),
    ) {
        Ok(cl) => cl.flags,
        Err(e) => {
            eprintln!("{e}");
            return Err(1);
        }
    };
    let version = oxquery_engine::instance::VERSION;
    if flags.get(flag::help) {
        print!("{}", oxquery_flags::usage("osqueryd", version));
        return Err(0);
    }
    if flags.get(flag::version) {
        println!("osqueryd version {version}");
        return Err(0);
    }
    if let Some((lines, code)) = oxquery_flags::implemented::windows_service_request(
        flags.get(flag::install),
        flags.get(flag::uninstall),
    ) {
        for line in lines {
            eprintln!("{line}");
        }
        return Err(code);
    }
    // A config plugin oxquery does not have may come from an extension: that check
    // waits for the extension manager, below. The one-shot modes run before any
    // extension could register (osquery disables extensions for them), so they check now.
    let one_shot = flags.get(flag::config_check)
        || flags.get(flag::config_dump)
        || flags.get(flag::database_dump);
    if !remote::config_over_tls(&flags)
        && (one_shot || !extension::config_check_waits(&flags))
        && let Err(message) = config::check_plugin(&flags)
    {
        eprintln!("{message}");
        return Err(EXIT_CATASTROPHIC);
    }
    // `--enable_foreign` is read once, at start-up, as osquery registers tables once.
    let mut tables = ProgramTables::from_flags(tables, foreign, &flags);
    if flags.get(flag::config_check) {
        return Err(config_check(&flags, &tables));
    }
    if let Some(done) = config::one_shot(&flags, &tables) {
        print!("{}", done.stdout);
        eprint!("{}", done.stderr);
        return Err(done.exit_code);
    }
    if flags.get(flag::database_dump) {
        return Err(database_dump(&DaemonSettings::from_flags(&flags)));
    }

    // Unless --disable_watchdog, this process is the watcher (which starts the worker
    // and returns only when the daemon stops) or the worker it started. `--daemonize`
    // detaches first, as osquery does before taking the pidfile: the worker a detached
    // watcher starts is already in the background.
    let role = Role::from_flags(&flags);
    if flags.get(flag::daemonize)
        && !matches!(role, Role::Worker(_))
        && let Err(e) = daemonize()
    {
        eprintln!("Cannot daemonize: {e}");
        return Err(1);
    }
    let watcher = match role {
        Role::Watcher => return Err(run_watcher(args, &flags)),
        Role::Worker(link) => {
            if !link.bind() {
                // The watcher died before the worker could ask to follow it.
                return Err(0);
            }
            watchdog::worker::hide_arguments();
            Some(link)
        }
        Role::Alone => None,
    };

    // Handlers before anything slow: until they are in place, a SIGHUP or SIGTERM sent
    // right after start (a reload by a config tool) would kill the daemon outright.
    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    let limit_hit = Arc::new(AtomicBool::new(false));
    if let Some(link) = &watcher {
        link.on_limit_hit(&limit_hit);
    }
    for (signal, flag) in [
        (signal_hook::consts::SIGTERM, &stop),
        (signal_hook::consts::SIGINT, &stop),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(flag)) {
            eprintln!("Cannot handle signal {signal}: {e}");
        }
    }

    // The extension manager serves its socket before the config is loaded, so an
    // extension's config or logger plugin can serve this start-up; it answers queries
    // once the engines exist (`serve_queries` below). Then the extensions this process
    // starts itself (with the watchdog, the watcher starts them and keeps them across
    // worker restarts), and `--extensions_require` is waited for.
    // What start-up has to say before the status log runs (logged once it does).
    let mut early_notes: Vec<(log::Level, String)> = Vec::new();
    let manager = match plugins {
        // In-process tests hand their own caller and run no manager.
        Some(_) => None,
        None => oxquery_extensions::Manager::start_from_flags(
            &flags,
            tables.registry(),
            config::flag_rows(&flags),
        )
        .unwrap_or_else(|warning| {
            early_notes.push((log::Level::Warn, warning));
            None
        }),
    };
    let launcher = match &watcher {
        None => start_extensions(&flags, &mut early_notes),
        Some(_) => None,
    };
    if let Some(manager) = &manager {
        let roster = manager.roster();
        let required = launch::required_names(flags.get(flag::extensions_require));
        let waited = launch::wait_for_required(
            &required,
            launch::startup_timeout(flags.get(flag::extensions_timeout)),
            |name| roster.names().iter().any(|n| n == name),
            || stop.load(std::sync::atomic::Ordering::SeqCst),
        );
        if let Err(message) = waited {
            // As osquery: the daemon carries on without them.
            let level = if launch::has_managed_extensions(launcher.as_ref()) {
                log::Level::Error
            } else {
                log::Level::Info
            };
            early_notes.push((level, format!("Cannot start extension manager: {message}")));
        }
    }
    // How plugins that extensions provide are called.
    let extension_plugins: Option<Arc<dyn PluginCaller>> =
        plugins.or_else(|| manager.as_ref().map(|m| m.caller()));
    let extension_config =
        match extension::activate_config(&flags, extension_plugins.as_ref(), &stop) {
            Ok(found) => found,
            Err(message) => {
                eprintln!("{message}");
                return Err(EXIT_CATASTROPHIC);
            }
        };

    // The config's `options` set flags, logger flags among them: load it first. A
    // config that cannot be read is a warning (logged once the status log runs), and
    // the daemon starts from the backup or with an empty config, as osquery does.
    let backup_enabled = flags.get(flag::config_enable_backup);
    // A config over TLS needs the node key, which lives in the store: open it first (its
    // path is a command-line flag, so the config cannot move it).
    let mut early: Option<(Arc<Mutex<Store>>, Arc<NodeKeys>)> = None;
    // What opening the store had to say (the import from osquery's database), logged
    // once the status log runs.
    let mut store_notes = Vec::new();
    let (config, load_error) = if remote::config_over_tls(&flags) {
        let store = match open_store(&DaemonSettings::from_flags(&flags), &flags) {
            Ok((s, notes)) => {
                store_notes = notes;
                Arc::new(Mutex::new(s))
            }
            Err(e) => {
                eprintln!("Cannot open the database: {e}");
                return Err(EXIT_CATASTROPHIC);
            }
        };
        // The tls config plugin is one of the TLS plugins, so keys are set up (or fail).
        let keys = match remote_keys(&flags, &tables, &store) {
            Ok(Some(keys)) => keys,
            Ok(None) => {
                eprintln!("Cannot activate tls config plugin: no TLS settings");
                return Err(EXIT_CATASTROPHIC);
            }
            Err(e) => {
                eprintln!("Cannot activate tls config plugin: {e}");
                return Err(EXIT_CATASTROPHIC);
            }
        };
        let loaded = remote::config_sources(&keys, &flags, &stop).and_then(|sources| {
            Config::from_sources(sources, &config::Settings::from_flags(&flags))
        });
        early = Some((store, keys));
        match loaded {
            Ok(c) => (c, None),
            Err(e) => (
                Config::empty(&config::Settings::from_flags(&flags)),
                Some(e),
            ),
        }
    } else if let Some(plugin) = &extension_config {
        let settings = config::Settings::from_flags(&flags);
        match plugin.load(&settings) {
            Ok(c) => (c, None),
            Err(e) => (Config::empty(&settings), Some(e)),
        }
    } else {
        config::load_or_empty(&flags)
    };
    let mut restored = false;
    let (config, load_warning) = match load_error {
        None => (config, None),
        Some(e) if backup_enabled => {
            match backup::restore(
                &DaemonSettings::from_flags(&flags),
                &flags,
                extension_config.as_ref(),
            ) {
                Ok(c) => {
                    restored = true;
                    (
                        c,
                        Some(format!(
                            "Error reading config: {e}; starting from the backup in the database"
                        )),
                    )
                }
                Err(why) => (
                    config,
                    Some(format!(
                        "Error reading config: {e}; cannot use the config backup: {why}"
                    )),
                ),
            }
        }
        Some(e) => (config, Some(format!("Error reading config: {e}"))),
    };
    let option_warnings = config.apply_options(&mut flags);
    let mut settings = DaemonSettings::from_flags(&flags);
    if watcher.is_some() {
        // The watcher holds it.
        settings.pidfile = None;
    }

    let pidfile = match &settings.pidfile {
        None => None,
        Some(path) => match Pidfile::acquire_forcing(path, settings.force) {
            Ok(p) => Some(p),
            Err(e) => {
                // Before the status log starts: a refused daemon must not touch the
                // running one's log files.
                eprintln!("{e}");
                return Err(EXIT_CATASTROPHIC);
            }
        },
    };
    let mut logger_settings = match LoggerSettings::from_flags(&flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return Err(1);
        }
    };
    let status = install_status_log(&logger_settings, settings.disable_logging);
    match &load_warning {
        // Running on an old config is worth an error; running on none, a warning.
        Some(message) if restored => log::error!("{message}"),
        Some(message) => log::warn!("{message}"),
        None => {}
    }
    // Loading warned before the status log existed (the config's options set the
    // logger flags, so the config comes first): say it again now that it is heard.
    for warning in config.warnings.iter().chain(&option_warnings) {
        log::warn!("{warning}");
    }
    if !settings.disable_logging
        && let Some(warning) = empty_logger_plugin(&logger_settings)
    {
        log::warn!("{warning}");
    }
    // Flags that do nothing yet are worth a line only when asked for details.
    for notice in flags.notices_for(oxquery_flags::implemented::Tool::Daemon) {
        log::debug!("{}", notice.message);
    }
    for (level, line) in oxquery_config::experiments(&flags) {
        log::log!(level, "{line}");
    }

    // Settings hold where the store goes; this says why when that is not the flag's path.
    if settings.database_path.is_some()
        && let Some(note) = config::database_file(Path::new(flags.get(flag::database_path))).note
    {
        log::info!("{note}");
    }
    for (level, line) in early_notes.into_iter().chain(store_notes) {
        log::log!(level, "{line}");
    }
    let (store, early_keys) = match early {
        Some((store, keys)) => (store, Some(keys)),
        None => match open_store(&settings, &flags) {
            Ok((s, notes)) => {
                for (level, line) in notes {
                    log::log!(level, "{line}");
                }
                (Arc::new(Mutex::new(s)), None)
            }
            Err(e) => {
                log::error!("Cannot open the database: {e}");
                return Err(EXIT_CATASTROPHIC);
            }
        },
    };
    let instance_id = instance_id(&mut store.lock().unwrap_or_else(|p| p.into_inner()));
    if backup_enabled && !restored && load_warning.is_none() {
        backup::save(
            &mut store.lock().unwrap_or_else(|p| p.into_inner()),
            &config,
        );
    }
    // The TLS plugins' node key: set up once, shared by config, logger and distributed.
    let remote = match early_keys {
        Some(keys) => Some(keys),
        None => match remote_keys(&flags, &tables, &store) {
            Ok(keys) => keys,
            Err(e) => {
                log::error!("Cannot reach the TLS server: {e}");
                return Err(EXIT_CATASTROPHIC);
            }
        },
    };
    // `--disable_logging` starts no logger plugin: nothing is opened for results.
    let extension_loggers = if settings.disable_logging {
        Vec::new()
    } else {
        match extension::activate_loggers(
            &flags,
            &mut logger_settings,
            extension_plugins.as_ref(),
            &stop,
        ) {
            Ok(loggers) => loggers,
            Err(e) => {
                log::error!("{}", logger_refusal(&e));
                return Err(EXIT_CATASTROPHIC);
            }
        }
    };
    let mut aws_loggers = None;
    let sinks = if settings.disable_logging {
        Vec::new()
    } else {
        match logger::build_sinks(&logger_settings) {
            Ok(mut s) => {
                s.extend(
                    extension_loggers
                        .iter()
                        .map(|l| Box::new(l.sink()) as Box<dyn Sink>),
                );
                if let Some(tls) = remote::logger_sink(remote.as_ref(), &flags, &stop) {
                    s.push(Box::new(tls));
                }
                match logger::kafka_sink(&logger_settings, &flags, &config.kafka_topics, &stop) {
                    Ok(kafka) => s.extend(kafka),
                    Err(e) => {
                        log::error!("{}", logger_refusal(&e));
                        return Err(EXIT_CATASTROPHIC);
                    }
                }
                let host = logger_settings.format_options(&instance_id).host_identifier;
                match aws::loggers(&flags, &host.current(), &stop) {
                    Ok(mut loggers) => {
                        s.append(&mut loggers.sinks);
                        aws_loggers = Some(loggers);
                    }
                    Err(e) => {
                        log::error!("{e}");
                        return Err(EXIT_CATASTROPHIC);
                    }
                }
                s
            }
            Err(e) => {
                log::error!("{}", logger_refusal(&e));
                return Err(EXIT_CATASTROPHIC);
            }
        }
    };

    let host_identifier = logger_settings.format_options(&instance_id).host_identifier;
    let flush = Arc::new((Mutex::new(false), Condvar::new()));
    let direct_lines = Arc::new(own_plugins::DirectLines::new(Arc::clone(&flush)));
    if let Some(manager) = &manager {
        manager.serve_plugins(Arc::new(own_plugins::OwnPlugins {
            config_path: flags.get(flag::config_path).to_owned(),
            flags: config::flag_rows(&flags),
            loggers: sinks.iter().map(|s| s.name()).collect(),
            lines: Arc::clone(&direct_lines),
        }));
    }
    let daemon = Daemon {
        store,
        live: Arc::default(),
        host_identifier: host_identifier.clone(),
        results: Arc::new(RwLock::new(ResultSettings::from_flags(
            &flags,
            host_identifier,
        ))),
        decorations: Arc::new(Mutex::new(Decorations::new())),
        flush,
        stop,
        logger_stop: Arc::new(AtomicBool::new(false)),
        views: Arc::default(),
        executing: Arc::default(),
        run: Arc::new(RwLock::new(RunSettings::from_flags(&flags))),
        monitor: crate::monitoring::Monitor::from_flags(&flags, super::unix_now()).map(Arc::new),
        scan_cache: oxquery_engine::ScanCache::default(),
        limit_hit,
        direct_lines,
    };
    remote::start_status(
        remote.as_ref(),
        &flags,
        status.as_ref(),
        daemon.host_identifier.clone(),
        Arc::clone(&daemon.decorations),
        &daemon.stop,
    );
    if let Some(control) = &status {
        for logger in &extension_loggers {
            logger.start_status(control, daemon.host_identifier.clone(), &daemon.stop);
        }
        // Every logger plugin is set up: nothing later needs the lines logged so far.
        control.end_backlog();
    }
    if let Some(loggers) = &aws_loggers {
        aws::start_status(
            loggers,
            &flags,
            status.as_ref(),
            daemon.host_identifier.clone(),
            Arc::clone(&daemon.decorations),
            &daemon.stop,
        );
    }
    let mut instance = oxquery_config::instance_info();
    instance.instance_id = instance_id;
    if let Some(link) = &watcher {
        instance.watcher = i64::from(link.watcher);
    }
    instance.flags = config::flag_rows(&flags);
    instance.plugins = super::registry::plugins(&flags);
    let filter = TableFilter::from_flags(&settings.enable_tables, &settings.disable_tables);
    // Event rows also go to the logger plugins of extensions that asked for them.
    let event_queues: Vec<_> = extension_loggers
        .iter()
        .filter_map(|logger| logger.start_events(&daemon.stop))
        .collect();
    let forward = (!event_queues.is_empty()).then(|| {
        Arc::new(move |_: &str, row: String| {
            for queue in &event_queues {
                queue.push_back(row.clone());
            }
        }) as oxquery_events::EventForward
    });
    let events = config::start_events(&flags, &config, Arc::clone(&daemon.store), forward);
    tables.set_events(
        events
            .clone()
            .map(|hub| Arc::new(hub) as Arc<dyn oxquery_table::EventReader>),
    );
    let carves = crate::carver::CarveBook::new(
        Arc::clone(&daemon.store),
        crate::carver::CarverSettings::from_flags(&flags),
    );
    tables.set_carves(Some(
        Arc::new(carves.clone()) as Arc<dyn oxquery_table::Carves>
    ));
    // The yara tables' sigurl: the TLS flags' client, and the node key once enrolled.
    match oxquery_remote::TlsClient::for_urls(oxquery_remote::TlsSettings::from_flags(
        &flags,
        oxquery_engine::instance::VERSION,
    )) {
        Ok(client) => tables.set_signatures(Some(Arc::new(oxquery_remote::SignatureFetcher::new(
            client,
            remote.clone(),
        ))
            as Arc<dyn oxquery_table::SignatureFetch>)),
        Err(e) => log::warn!("yara sigurl: cannot set up the TLS client: {e}"),
    }
    let engine = match tables.engine(&filter, instance.clone(), Arc::clone(&daemon.live)) {
        Ok(e) => e,
        Err(e) => {
            log::error!("Cannot start the SQL engine: {e}");
            return Err(EXIT_CATASTROPHIC);
        }
    };
    // Before the workers' engines are made: they report the manager too.
    if let Some(manager) = &manager {
        manager.serve_queries(&engine);
    }
    tables.set_extensions(manager.as_ref().map(|m| m.extensions()));
    let started = Started {
        flags,
        settings,
        config,
        engine,
        tables,
        filter,
        instance,
        sinks,
        hup,
        pidfile,
        status,
        events,
        remote,
        watcher,
        carves,
        extensions: manager,
        launcher,
        extension_config,
    };
    Ok((daemon, started))
}

/// The flags osqueryd starts from: osquery's defaults, with the two it changes at start
/// in both programs (a failing table fails its query, not the process).
fn daemon_defaults() -> Flags {
    let mut flags = Flags::new();
    flags.set_tool_default(flag::ignore_table_exceptions, true);
    flags.set_tool_default(flag::ignore_registry_exceptions, true);
    flags
}

/// `--daemonize`: detaches as osquery does with daemon(3): the parent exits 0 at once;
/// the child leads a new session (no controlling terminal), works from `/` (so relative
/// paths in flags no longer name what they did) and has stdin, stdout and stderr on
/// `/dev/null` (status lines go to the logger plugins' files only). Called while the
/// process has one thread, before the pidfile is taken, so the pidfile holds the
/// daemon's own pid.
fn daemonize() -> std::io::Result<()> {
    // A thread started before this point would not exist in the child.
    debug_assert_eq!(
        std::fs::read_dir("/proc/self/task").map_or(1, |tasks| tasks.count()),
        1,
        "--daemonize must fork a single-threaded process"
    );
    // SAFETY: daemon(3) forks; the process is single-threaded here, and the parent
    // leaves with _exit without running anything else.
    if unsafe { libc::daemon(0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The watcher: status lines to stderr only (it starts no logger plugin and writes no
/// glog file, so the `osqueryd.INFO`-style links stay the worker's), the pidfile from
/// the command line (osquery's watcher takes it before any config is read), then the
/// watch loop.
fn run_watcher(args: &[OsString], flags: &Flags) -> i32 {
    // A logger flag the worker would refuse: the worker says so and exits, and the
    // watcher ends with its status.
    if let Ok(logger_settings) = LoggerSettings::from_flags(flags) {
        let stderr_only = StatusOptions {
            glog_dir: None,
            stdout: false,
            syslog: false,
            ..logger_settings.status_options()
        };
        if let Err(e) = StatusLogger::new(stderr_only).install() {
            eprintln!("Could not start the status log: {e}");
        }
    }
    let DaemonSettings { pidfile, force, .. } = DaemonSettings::from_flags(flags);
    let argv0 = std::env::args_os().next().unwrap_or_default();
    // As osquery's watcher: it starts the extensions and keeps them running while
    // workers come and go; they are stopped once the watcher is done.
    // Its status log runs already: refusals are logged as they are found.
    let extensions = start_extensions(flags, &mut Vec::new());
    let code = watchdog::watcher::run(
        &argv0,
        args,
        &WatchdogSettings::from_flags(flags),
        pidfile.as_deref(),
        force,
    );
    drop(extensions);
    code
}

/// Starts the extensions `--extensions_autoload` and `--extension` name (none under
/// `--disable_extensions`), watched with the worker's limits under
/// `--enable_extensions_watchdog`; `None` when there are none. In the watcher this also
/// tells the workers it will start that extensions are managed (osquery's
/// `OSQUERY_EXTENSIONS`), so they wait for plugins extensions provide.
fn start_extensions(flags: &Flags, notes: &mut Vec<(log::Level, String)>) -> Option<Launcher> {
    let autoload = launch::binaries_from_flags(flags);
    // The worker starts them before its status log runs (extensions' config and logger
    // plugins serve its start-up): the refusals are kept for it to log then.
    notes.extend(
        autoload
            .refused
            .into_iter()
            .map(|refused| (log::Level::Warn, refused.message)),
    );
    let binaries = autoload.binaries;
    if binaries.is_empty() {
        return None;
    }
    if matches!(Role::from_flags(flags), Role::Watcher) {
        // SAFETY: the watcher has a single thread here (the launcher starts below and
        // the worker after), so nothing reads the environment meanwhile.
        unsafe { std::env::set_var(launch::MANAGED_ENV, "true") };
    }
    Launcher::start(
        binaries,
        LaunchSettings::from_flags(flags),
        watchdog::extensions::watch_factory(&WatchdogSettings::from_flags(flags)),
    )
}

/// `--config_check` in the daemon: the config's own check ([`config::config_check`],
/// with an empty `--logger_plugin` as one more warning), then what start-up would refuse
/// about the logger flags, with the daemon's message and exit status (a plugin that does
/// not exist: 78), since a config that checks fine must not give a daemon that stops at
/// once. Warnings go to stderr as status lines, as osquery's status log shows them
/// during a check.
fn config_check(flags: &Flags, tables: &ProgramTables) -> i32 {
    let logger_settings = match LoggerSettings::from_flags(flags) {
        Ok(s) => s,
        // The daemon refuses a bad --logger_mode this way, before its status log starts.
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    // No logger plugin runs during a check (osquery starts them after it), so status
    // lines go to stderr whatever --logger_plugin says.
    let stderr_only = StatusOptions {
        glog_dir: None,
        stdout: false,
        syslog: false,
        stderr: true,
        ..logger_settings.status_options()
    };
    if let Err(e) = StatusLogger::new(stderr_only).install() {
        eprintln!("Could not start the status log: {e}");
    }
    let logging = !flags.get(flag::disable_logging);
    let refusal = logging
        .then(|| logger_settings.plugin_names().err())
        .flatten();
    let warnings: Vec<String> = logging
        .then(|| empty_logger_plugin(&logger_settings))
        .flatten()
        .into_iter()
        .collect();
    let done = config::config_check(flags, tables, &warnings);
    print!("{}", done.stdout);
    eprint!("{}", done.stderr);
    match refusal {
        Some(e) => {
            log::error!("{}", logger_refusal(&e));
            EXIT_CATASTROPHIC
        }
        None => done.exit_code,
    }
}

/// The line a daemon that cannot start its logger plugins stops with.
fn logger_refusal(e: &logger::LoggerError) -> String {
    format!("Cannot start the logger: {e}")
}

/// A warning when `--logger_plugin` names no plugin at all (`--logger_plugin=`): osquery
/// then runs with no logger and says nothing, so results go nowhere. `none` is the way to
/// mean it.
fn empty_logger_plugin(settings: &LoggerSettings) -> Option<String> {
    settings
        .plugins
        .split(',')
        .all(|p| p.trim().is_empty())
        .then(|| {
            "--logger_plugin is empty: no logger plugin is started, so query results are \
         logged nowhere; name one (filesystem, stdout, syslog), or none if that is intended"
                .to_owned()
        })
}

/// The status log: glog files and the logger plugins' status lines, stderr. With
/// `--disable_logging` no plugin receives them, but errors still reach stderr, so an
/// exit for a reason of ours is never silent.
fn install_status_log(
    settings: &LoggerSettings,
    disable_logging: bool,
) -> Option<crate::logger::StatusControl> {
    let options = if disable_logging {
        StatusOptions {
            glog_dir: None,
            stdout: false,
            syslog: false,
            ..settings.status_options()
        }
    } else {
        settings.status_options()
    };
    // Kept until the logger plugins are set up: those of extensions get the lines
    // start-up logged before them.
    match StatusLogger::new(options).with_backlog().install() {
        Ok(control) => Some(control),
        Err(e) => {
            eprintln!("Could not start the status log: {e}");
            None
        }
    }
}

/// `--database_dump`: prints every stored key, then exits 0. A database that does not
/// exist yet is created (as RocksDB does); with `--disable_database` there is nothing to
/// print.
fn database_dump(settings: &DaemonSettings) -> i32 {
    let store = match &settings.database_path {
        None => Store::in_memory(),
        Some(path) => Store::open(path),
    };
    let store = match store {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Cannot open the database: {e}");
            return EXIT_CATASTROPHIC;
        }
    };
    // A closed stdout (`| head`) ends the dump; that is not a failure.
    let _ = store.dump(&mut std::io::stdout().lock());
    0
}

/// The store, and the lines to log about taking over osquery's database when
/// `--database_path` is the RocksDB directory osquery left (see `osquery_import`).
fn open_store(
    settings: &DaemonSettings,
    flags: &Flags,
) -> oxquery_store::Result<(Store, Vec<osquery_import::Note>)> {
    let Some(path) = &settings.database_path else {
        return Ok((Store::in_memory()?, Vec::new()));
    };
    let mut store = Store::open(path)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let notes =
        osquery_import::import_once(&mut store, Path::new(flags.get(flag::database_path)), now);
    Ok((store, notes))
}

/// The TLS plugins' node keys (`None` when no TLS plugin is active). Enrollment sends
/// the host's details, read once here through an engine of the program's tables.
fn remote_keys(
    flags: &Flags,
    tables: &ProgramTables,
    store: &Arc<Mutex<Store>>,
) -> Result<Option<Arc<NodeKeys>>, String> {
    if !remote::wanted(flags) {
        return Ok(None);
    }
    let engine = tables
        .engine(
            &TableFilter::default(),
            oxquery_config::instance_info(),
            Arc::default(),
        )
        .map_err(|e| e.to_string())?;
    let details = remote::host_details(&engine);
    let instance = instance_id(&mut store.lock().unwrap_or_else(|p| p.into_inner()));
    let identifier = HostIdentifier::resolve(
        flags.get(flag::host_identifier),
        flags.get(flag::specified_identifier),
        &instance,
    )
    .current();
    remote::setup(flags, store, &identifier, details)
}

/// The instance identifier kept in the store, made on first start.
fn instance_id(store: &mut Store) -> String {
    if let Ok(Some(id)) = store.get_text(Domain::Configurations, INSTANCE_KEY)
        && !id.is_empty()
    {
        return id;
    }
    let id = oxquery_sys::host::random_uuid().unwrap_or_default();
    if let Err(e) = store.put(Domain::Configurations, INSTANCE_KEY, id.as_bytes()) {
        log::warn!("Could not store the instance identifier: {e}");
    }
    id
}
