//! osqueryi: the shell. [`run`] parses osquery's flags, builds the engine and dispatches
//! in osquery's order: `-L`/`-A`, `--pack`, `--query`, `--query_file`, the first
//! positional argument (a dot command if it starts with `.`, else SQL), then stdin (the
//! REPL when it is a terminal).

pub use oxquery_flags as flags;

mod editor;
mod input;
pub mod logger;
mod meta;
pub mod output;
mod progress;
mod remote;
mod repl;
mod shell;
pub mod statements;
mod suggest;

pub use meta::{COMMANDS, DotCommand, Group, command_names, help_text};
pub use shell::{MetaOutcome, Output, Shell, SqlError};

use flags::{Flags, flag};
use oxquery_config::{Config, ConfigError, DiscoveryCache, HostFacts};
use oxquery_engine::{Engine, TableFilter};
use oxquery_store::Store;
use oxquery_table::{LiveState, ScheduleEntry, TableDef};
use std::ffi::OsString;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Read when no `--flagfile` is given, as osquery does.
pub const DEFAULT_FLAGFILE: &str = "/etc/osquery/osquery.flags.default";

/// `~/.osquery`, where the shell keeps its history, socket and database paths.
pub(crate) fn osquery_home() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".osquery"))
}

/// osquery's flags with the values osqueryi uses before the command line is read.
pub fn shell_defaults() -> Flags {
    let mut flags = Flags::new();
    flags.set_tool_default(flag::disable_events, true);
    flags.set_tool_default(flag::ignore_table_exceptions, true);
    flags.set_tool_default(flag::ignore_registry_exceptions, true);
    // Interactive hashing need not be throttled like the daemon's.
    flags.set_tool_default(flag::hash_delay, 0);
    if let Some(home) = osquery_home() {
        flags.set_tool_default(flag::database_path, home.join("shell.db"));
        flags.set_tool_default(flag::extensions_socket, home.join("shell.em"));
    }
    flags
}

/// What osqueryi sets after parsing, whatever the command line said (as osquery does).
fn apply_shell_overrides(flags: &mut Flags, interactive: bool) {
    flags.force(flag::disable_logging, true);
    flags.force(flag::disable_watchdog, true);
    if !flags.is_set(flag::database_path) {
        // No database was asked for: the shell's is ephemeral.
        flags.set_tool_default(flag::disable_database, true);
    }
    if !interactive {
        for key in [
            flag::disable_events,
            flag::disable_caching,
            flag::disable_extensions,
        ] {
            flags.set_tool_default(key, true);
        }
    }
}

/// Runs the shell with `args` (without argv\[0\]) over the built-in `tables` (and, with
/// `--enable_foreign`, the tables `foreign` builds); returns the process exit code.
pub fn run(
    tables: &[&'static TableDef],
    foreign: oxquery_config::ForeignTables,
    args: &[OsString],
) -> i32 {
    let command_line = match flags::parse_command_line_with(
        shell_defaults(),
        args,
        Some(Path::new(DEFAULT_FLAGFILE)),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let mut flags = command_line.flags;
    let version = oxquery_engine::instance::VERSION;
    if flags.get(flag::help) {
        print!("{}", flags::usage("osqueryi", version));
        return 0;
    }
    if flags.get(flag::version) {
        println!("osqueryi version {version}");
        return 0;
    }
    // osquery answers its Windows service switches in both programs.
    if let Some((lines, code)) = flags::implemented::windows_service_request(
        flags.get(flag::install),
        flags.get(flag::uninstall),
    ) {
        for line in lines {
            eprintln!("{line}");
        }
        return code;
    }
    let interactive = command_line.positional.is_empty()
        && [flag::query, flag::A, flag::pack]
            .into_iter()
            .all(|key| flags.get(key).is_empty())
        && flags.get(flag::query_file).as_os_str().is_empty()
        && !flags.get(flag::L)
        && flags.get(flag::profile) <= 0
        && io::stdin().is_terminal();
    apply_shell_overrides(&mut flags, interactive);
    logger::init(flags.get(flag::verbose));
    log::info!("osquery initialized [version={version}]");
    // Flags that do nothing yet are worth a line only when asked for details.
    for notice in flags.notices() {
        log::debug!("{}", notice.message);
    }
    for (level, line) in oxquery_config::experiments(&flags) {
        log::log!(level, "{line}");
    }
    // The config, as osqueryd loads it: `osquery_schedule`, `osquery_packs` and `--pack`
    // read it, and its `options` set flags.
    if let Err(message) = oxquery_config::check_plugin(&flags) {
        eprintln!("{message}");
        return oxquery_config::EXIT_CATASTROPHIC;
    }
    // `--enable_foreign` is read once, at start-up, as osquery registers tables once.
    let mut tables = oxquery_config::ProgramTables::from_flags(tables, foreign, &flags);
    if let Some(done) = oxquery_config::one_shot(&flags, &tables) {
        print!("{}", done.stdout);
        eprint!("{}", done.stderr);
        return done.exit_code;
    }
    let (config, load_error) = oxquery_config::load_or_empty(&flags);
    // What the interactive shell says after its banner, one line each, instead of
    // warnings: the config it could not read, the extension socket it could not serve.
    let mut start_notes: Vec<String> = load_error.iter().map(config_note).collect();
    if let Some(e) = &load_error {
        // osqueryi mentions it only at verbose level: most shells run without a config.
        // The interactive shell says it in one line after its banner (below).
        log::debug!("Error reading config: {e}");
    }
    for warning in config.apply_options(&mut flags) {
        log::warn!("{warning}");
    }
    let store = if flags.get(flag::disable_database) {
        Store::in_memory().map_err(|e| e.to_string())
    } else {
        let file = oxquery_config::database_file(Path::new(flags.get(flag::database_path)));
        if let Some(note) = &file.note {
            log::info!("{note}");
        }
        Store::open(&file.path).map_err(|e| match database_access_error(&file.path) {
            // SQLite says only "unable to open database file"; the system says why.
            Some(why) => why,
            None => e.to_string(),
        })
    };
    let store = match store {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Cannot open the database: {e}");
            return oxquery_config::EXIT_CATASTROPHIC;
        }
    };
    if flags.get(flag::database_dump) {
        return match store.dump(&mut io::stdout().lock()) {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                eprintln!("Error: {e}");
                1
            }
            _ => 0,
        };
    }
    let store = Arc::new(std::sync::Mutex::new(store));
    // With `--disable_events=false` the shell runs publishers too, as osquery's does.
    let events = oxquery_config::start_events(&flags, &config, Arc::clone(&store), None);
    tables.set_events(
        events
            .clone()
            .map(|hub| Arc::new(hub) as Arc<dyn oxquery_table::EventReader>),
    );
    // The yara tables' sigurl fetches over the TLS flags' client; the shell never enrolls,
    // so it has no node key for --yara_sigurl_authenticate.
    match oxquery_remote::TlsClient::for_urls(oxquery_remote::TlsSettings::from_flags(
        &flags,
        oxquery_engine::instance::VERSION,
    )) {
        Ok(client) => tables.set_signatures(Some(Arc::new(oxquery_remote::SignatureFetcher::new(
            client, None,
        ))
            as Arc<dyn oxquery_table::SignatureFetch>)),
        Err(e) => log::warn!("yara sigurl: cannot set up the TLS client: {e}"),
    }
    let output = match flags.get(flag::output) {
        path if path.as_os_str().is_empty() || path == Path::new("-") => Output::Stdout,
        path => match std::fs::File::create(path) {
            Ok(file) => Output::File(path.to_owned(), file),
            Err(e) => {
                eprintln!("Error: cannot open output file {}: {e}", path.display());
                return 1;
            }
        },
    };
    let filter = TableFilter::from_flags(
        flags.get(flag::enable_tables),
        flags.get(flag::disable_tables),
    );
    let mut instance = oxquery_config::instance_info();
    instance.flags = oxquery_config::flag_rows(&flags);
    instance.plugins = oxquery_config::config_plugin_items(&flags);
    let live = Arc::new(RwLock::new(LiveState::default()));
    let engine = match tables.engine(&filter, instance, Arc::clone(&live)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    engine.set_settings(oxquery_config::table_settings(&flags));
    engine.set_planner_trace(flags.get(flag::planner));
    // The config's automatic tables and views exist in the shell too, as in osquery.
    let auto_tables = oxquery_config::atc::tables(&config.auto_table_construction, &[]);
    if let Err(e) = engine.set_config_tables(
        auto_tables
            .into_iter()
            .map(|t| t as Arc<dyn oxquery_table::Table>)
            .collect(),
    ) {
        eprintln!("Error: cannot attach the automatic tables: {e}");
    }
    engine.set_config_views(&config.views);
    publish_config(
        &config,
        load_error.is_none(),
        &engine,
        &store.lock().unwrap_or_else(|p| p.into_inner()),
        &live,
    );
    let loaded = match &load_error {
        None => Ok(&config),
        Some(e) => Err(e),
    };
    // Interactive shells serve `--extensions_socket` (others default to
    // `--disable_extensions`, as osquery's do), then start the extensions
    // `--extension`/`--extensions_autoload` name and wait for `--extensions_require`.
    let manager = oxquery_extensions::Manager::start_from_flags(
        &flags,
        tables.registry(),
        oxquery_config::flag_rows(&flags),
    )
    .unwrap_or_else(|warning| {
        if interactive {
            // Said once after the banner, a line like the config's.
            start_notes.push(warning.to_string());
        } else {
            log::warn!("{warning}");
        }
        None
    });
    if let Some(manager) = &manager {
        manager.serve_queries(&engine);
        manager.serve_plugins(Arc::new(ShellPlugins {
            config_path: flags.get(flag::config_path).to_owned(),
            flags: oxquery_config::flag_rows(&flags),
        }));
    }
    let launcher = start_extensions(&flags);
    if let Some(manager) = &manager {
        wait_for_required_extensions(&flags, manager, launcher.as_ref());
    }
    let mut shell = Shell::with_output(engine, flags.clone(), output);
    for note in start_notes {
        shell.note_on_start(note);
    }
    let connect = flags.get(flag::connect);
    if !connect.as_os_str().is_empty()
        && let Err(e) = shell.connect(connect)
    {
        eprintln!("Error: {e}");
        return 1;
    }
    let outcome = dispatch(&mut shell, &flags, loaded, &command_line.positional);
    // The manager first: it asks each extension to shut down; the launcher then stops
    // and reaps what is left.
    if let Some(manager) = manager {
        manager.stop();
    }
    if let Some(launcher) = launcher {
        launcher.stop();
    }
    if let Some(hub) = events {
        hub.stop();
    }
    match outcome {
        Ok(code) => code,
        // `osqueryi ... | head` closes our stdout early; that is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

/// Why this user cannot open or create the database file at `path`, when the system
/// says so (`PATH: Permission denied`); asked without opening anything.
fn database_access_error(path: &Path) -> Option<String> {
    use std::os::unix::ffi::OsStrExt;
    let denied = |target: &Path, mode: libc::c_int| -> Option<String> {
        let c = std::ffi::CString::new(target.as_os_str().as_bytes()).ok()?;
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        let failed = unsafe { libc::access(c.as_ptr(), mode) } != 0;
        failed.then(|| format!("{}: {}", target.display(), io::Error::last_os_error()))
    };
    match std::fs::symlink_metadata(path) {
        Ok(_) => denied(path, libc::R_OK | libc::W_OK),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // The file is created: its directory must let us.
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            denied(dir, libc::W_OK | libc::X_OK)
        }
        Err(e) => Some(format!("{}: {e}", path.display())),
    }
}

/// The line the interactive shell says, after its banner, about a config it could not
/// load: what happened and what it means here, instead of osqueryd's warnings.
fn config_note(e: &ConfigError) -> String {
    match e {
        ConfigError::Missing(path) => {
            format!("No config at {path}: every table works; the schedule and packs are empty")
        }
        ConfigError::Read { path, message } => {
            format!("Cannot read the config {path} ({message}): the schedule and packs are empty")
        }
        ConfigError::Invalid { .. } => format!("Config not loaded: {e}"),
    }
}

/// The shell's own plugins the extension manager's `call` reaches: its `filesystem`
/// config plugin (`genConfig`, `genPack`, `option`, from the files as they are when
/// asked). The shell logs no results, so it offers no logger plugin.
struct ShellPlugins {
    config_path: PathBuf,
    flags: Vec<oxquery_table::FlagValue>,
}

impl oxquery_extensions::LocalPlugins for ShellPlugins {
    fn holds(&self, registry: &str, item: &str) -> bool {
        (registry, item) == ("config", "filesystem")
    }

    fn call(
        &self,
        _: &str,
        _: &str,
        request: &oxquery_extensions::PluginRequest,
    ) -> Result<oxquery_extensions::PluginResponse, oxquery_extensions::CallError> {
        oxquery_config::filesystem_config_call(&self.config_path, &self.flags, request)
            .map_err(|message| oxquery_extensions::CallError::Failed { code: 1, message })
    }
}

/// Starts the extensions `--extension` and `--extensions_autoload` name (none under
/// `--disable_extensions`, the default when the shell is not interactive), on a thread
/// of the shell, as osquery's shell does; they are stopped when the shell ends.
fn start_extensions(flags: &Flags) -> Option<oxquery_extensions::launch::Launcher> {
    use oxquery_extensions::launch::{LaunchSettings, Launcher, binaries_from_flags};
    Launcher::start(
        binaries_from_flags(flags).binaries,
        LaunchSettings::from_flags(flags),
        None,
    )
}

/// Waits up to `--extensions_timeout` for the extensions `--extensions_require` names to
/// register; as in osquery, the shell carries on without them, with a message.
fn wait_for_required_extensions(
    flags: &Flags,
    manager: &oxquery_extensions::Manager,
    launcher: Option<&oxquery_extensions::launch::Launcher>,
) {
    use oxquery_extensions::launch;
    let roster = manager.roster();
    let waited = launch::wait_for_required(
        &launch::required_names(flags.get(flag::extensions_require)),
        launch::startup_timeout(flags.get(flag::extensions_timeout)),
        |name| roster.names().iter().any(|n| n == name),
        || false,
    );
    if let Err(message) = waited {
        if launch::has_managed_extensions(launcher) {
            log::error!("Cannot start extension manager: {message}");
        } else {
            log::info!("Cannot start extension manager: {message}");
        }
    }
}

/// Puts the config's packs and the queries it schedules on this host where
/// `osquery_packs`, `osquery_schedule` and `osquery_info` read them. The shell runs no
/// query on a schedule, so every run count is zero.
fn publish_config(
    config: &Config,
    valid: bool,
    engine: &Engine,
    store: &Store,
    live: &RwLock<LiveState>,
) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut runner = oxquery_config::engine_runner(engine);
    let scheduled = config
        .schedule_with_discovery(
            &HostFacts::current(),
            store,
            &mut DiscoveryCache::new(),
            now,
            &mut runner,
        )
        .unwrap_or_else(|e| {
            log::warn!("Cannot compute the schedule: {e}");
            Vec::new()
        });
    let mut state = live.write().unwrap_or_else(|p| p.into_inner());
    state.config_hash = config.hash();
    state.config_valid = valid;
    state.prometheus_targets = config.prometheus_targets.clone();
    state.yara_signature_urls = config.yara_signature_urls();
    state.yara_signature_groups = config.yara_signature_groups();
    state.packs = oxquery_config::pack_entries(config, &scheduled);
    state.schedule = scheduled
        .iter()
        .map(|q| ScheduleEntry {
            name: q.name.clone(),
            query: q.query.clone(),
            interval: i64::try_from(q.interval).unwrap_or(i64::MAX),
            ..ScheduleEntry::default()
        })
        .collect();
}

fn dispatch(
    shell: &mut Shell,
    flags: &Flags,
    config: Result<&Config, &ConfigError>,
    positional: &[OsString],
) -> io::Result<i32> {
    let meta_code = |outcome| match outcome {
        MetaOutcome::Ok => 0,
        MetaOutcome::Error => 1,
        MetaOutcome::Exit(code) => code,
    };
    if flags.get(flag::L) {
        return shell.meta(".tables").map(meta_code);
    }
    let table = flags.get(flag::A);
    if !table.is_empty() {
        return shell.meta(&format!(".all {table}")).map(meta_code);
    }
    let pack = flags.get(flag::pack);
    if !pack.is_empty() {
        return run_pack(shell, config, pack);
    }
    // SQLite reads SQL as UTF-8; other bytes would be altered, not run as given. Checked
    // where the argument is used: `--query` wins over it.
    let first = positional.first().map(|arg| arg.to_str());
    let not_utf8 = |shell: &mut Shell| -> io::Result<i32> {
        shell
            .error_line("Error: the SQL statement given on the command line is not valid UTF-8")?;
        Ok(1)
    };
    let profile = flags.get(flag::profile);
    if profile > 0 {
        let sql = match (flags.get(flag::query), first) {
            ("", Some(Some(sql))) => sql,
            ("", Some(None)) => return not_utf8(shell),
            ("", None) => {
                shell.error_line("Error: --profile needs a query (--query or an argument)")?;
                return Ok(1);
            }
            (sql, _) => sql,
        };
        let delay = flags.get(flag::profile_delay);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_secs(delay as u64));
        }
        return shell.profile(sql, profile);
    }
    let query = flags.get(flag::query);
    if !query.is_empty() {
        return shell.run_query(query);
    }
    let path = flags.get(flag::query_file);
    if !path.as_os_str().is_empty() {
        let what = format!("query file {}", path.display());
        return match std::fs::File::open(path) {
            Ok(file) => shell.run_query_stream(file, &what),
            Err(e) => {
                shell.error_line(&format!("Error: cannot read {what}: {e}"))?;
                Ok(1)
            }
        };
    }
    if let Some(first) = first {
        let Some(first) = first else {
            return not_utf8(shell);
        };
        return if first.starts_with('.') {
            shell.meta(first).map(meta_code)
        } else {
            shell.run_query(first)
        };
    }
    if io::stdin().is_terminal() {
        shell.repl()
    } else {
        shell.process_input(io::stdin().lock())
    }
}

/// `--pack NAME`: runs every query of that pack from the config, printing each result;
/// stops at the first failure.
fn run_pack(
    shell: &mut Shell,
    config: Result<&Config, &ConfigError>,
    pack: &str,
) -> io::Result<i32> {
    let config = match config {
        Ok(c) => c,
        Err(e) => {
            shell.error_line(&format!("Error reading config: {e}"))?;
            return Ok(1);
        }
    };
    let queries: Vec<_> = config
        .packs_named(pack)
        .flat_map(|p| p.queries.iter())
        .collect();
    if queries.is_empty() {
        shell.error_line(&format!("Error: no pack named {pack} in the configuration"))?;
        return Ok(1);
    }
    for q in queries {
        if shell.run_sql(&q.query)?.is_err() {
            shell.error_line(&format!("Could not execute query {}: {}", q.name, q.query))?;
            return Ok(1);
        }
    }
    Ok(0)
}
