//! `osqueryd`'s life: flags, the one-shot modes (`--config_check`, `--config_dump`,
//! `--database_dump`), start-up (pidfile, store, config, engines, loggers), the schedule
//! loop, reloads on SIGHUP or `--config_refresh`, and a graceful stop on SIGTERM/SIGINT.
//!
//! Threads: the main thread ticks the schedule once a second and handles signals; a
//! small pool of workers, each with its own engine (SQLite connections are not shared),
//! runs due queries, so one slow query delays neither the others nor the log flush; a
//! logger thread drains the outbox to the sinks. All share one store behind a mutex;
//! its transactions are short.

mod backup;
mod dump;
mod schedule;
mod worker;

use crate::config::{self, Config, DiscoveryCache, HostFacts, Reload};
use crate::item::Decorations;
use crate::logger::{self, FormatOptions, LoggerSettings, StatusLogger};
use crate::outbox::{Outbox, OutboxConfig};
use crate::pidfile::Pidfile;
use oxquery_engine::{Engine, TableFilter};
use oxquery_flags::{Flags, flag};
use oxquery_store::{Domain, Store};
use oxquery_table::{LiveState, PackEntry, TableDef};
use schedule::Schedule;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use worker::{Job, Workers};

/// osquery's exit status for a failure during start-up.
pub const EXIT_CATASTROPHIC: i32 = 78;
const DEFAULT_FLAGFILE: &str = "/etc/osquery/osquery.flags.default";
/// Query workers. Two keep a slow query from holding up the rest on a 2-core host
/// without multiplying memory (each worker has its own SQLite connection).
const WORKERS: usize = 2;
/// The store key of the persistent instance identifier.
const INSTANCE_KEY: &str = "instance_uuid_v1";

/// Runs `osqueryd` with `args` (without argv\[0\]) over `tables`; returns the exit code.
/// `configure_tables` applies flags that tables act on (`--read_max`).
pub fn run(
    args: &[String],
    tables: &[&'static TableDef],
    configure_tables: &dyn Fn(&Flags),
) -> i32 {
    let mut flags = match oxquery_flags::parse_command_line(args, Some(Path::new(DEFAULT_FLAGFILE)))
    {
        Ok(cl) => cl.flags,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    if flags.get(flag::help) {
        print!(
            "{}",
            oxquery_flags::usage("osqueryd", oxquery_engine::instance::VERSION)
        );
        return 0;
    }
    if flags.get(flag::version) {
        println!("osqueryd version {}", oxquery_engine::instance::VERSION);
        return 0;
    }
    if flags.get(flag::config_check) {
        return match config::config_check(&flags) {
            Ok(_) => 0,
            Err(failure) => {
                eprintln!("{}", failure.message);
                failure.exit_code
            }
        };
    }
    if flags.get(flag::config_dump) {
        return match config::config_dump(&flags) {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(e) => {
                eprintln!("Error reading config: {e}");
                config::EXIT_CONFIG_ERROR
            }
        };
    }
    if flags.get(flag::database_dump) {
        return dump::database_dump(&flags);
    }

    // Handlers before anything slow: until they are in place, a SIGHUP or SIGTERM sent
    // right after start (a reload by a config tool) would kill the daemon outright.
    let stop = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    for (signal, flag) in [
        (signal_hook::consts::SIGTERM, &stop),
        (signal_hook::consts::SIGINT, &stop),
        (signal_hook::consts::SIGHUP, &hup),
    ] {
        if let Err(e) = signal_hook::flag::register(signal, Arc::clone(flag)) {
            eprintln!("Cannot handle signal {signal}: {e}");
        }
    }

    // The config's `options` set flags, logger flags among them: load it first.
    let backup_enabled = flags.get(flag::config_enable_backup);
    // Set when the daemon starts from the stored copy: the error to log once the
    // status log runs.
    let mut restored_because = None;
    let config = match Config::load(&flags) {
        Ok(c) => c,
        Err(e) if backup_enabled => match backup::restore(&flags) {
            Ok(c) => {
                restored_because = Some(format!(
                    "Error reading config: {e}; starting from the backup in the database"
                ));
                c
            }
            Err(why) => {
                eprintln!("Error reading config: {e}");
                eprintln!("Cannot use the config backup: {why}");
                return e.exit_code();
            }
        },
        Err(e) => {
            eprintln!("Error reading config: {e}");
            return e.exit_code();
        }
    };
    for warning in config.apply_options(&mut flags) {
        eprintln!("Warning: {warning}");
    }
    let _pidfile = if flags.get(flag::ephemeral) {
        None
    } else {
        match Pidfile::acquire(Path::new(flags.get(flag::pidfile))) {
            Ok(p) => Some(p),
            Err(e) => {
                // Before the status log starts: a refused daemon must not touch the
                // running one's log files.
                eprintln!("{e}");
                return EXIT_CATASTROPHIC;
            }
        }
    };
    let logger_settings = match LoggerSettings::from_flags(&flags) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    if !flags.get(flag::disable_logging)
        && let Err(e) = StatusLogger::new(logger_settings.status_options()).install()
    {
        eprintln!("Could not start the status log: {e}");
    }
    if let Some(message) = &restored_because {
        if flags.get(flag::disable_logging) {
            eprintln!("{message}");
        } else {
            log::error!("{message}");
        }
    }
    for notice in flags.notices_for(oxquery_flags::implemented::Tool::Daemon) {
        log::warn!("{}", notice.message);
    }
    configure_tables(&flags);

    let store = if flags.get(flag::disable_database) {
        Store::in_memory()
    } else {
        Store::open(Path::new(flags.get(flag::database_path)))
    };
    let mut store = match store {
        Ok(s) => s,
        Err(e) => {
            log::error!("Cannot open the database: {e}");
            return EXIT_CATASTROPHIC;
        }
    };
    let instance_id = instance_id(&mut store);
    if backup_enabled && restored_because.is_none() {
        backup::save(&mut store, &config);
    }
    let sinks = match logger::build_sinks(&logger_settings) {
        Ok(s) => s,
        Err(e) => {
            log::error!("{e}");
            return EXIT_CATASTROPHIC;
        }
    };

    let daemon = Daemon {
        store: Arc::new(Mutex::new(store)),
        live: Arc::default(),
        format: logger_settings.format_options(&instance_id),
        epoch: flags.get(flag::schedule_epoch),
        disable_logging: flags.get(flag::disable_logging),
        decorations: Arc::new(Mutex::new(Decorations::new())),
        flush: Arc::new((Mutex::new(false), Condvar::new())),
        stop,
        logger_stop: Arc::new(AtomicBool::new(false)),
        views: Arc::default(),
        executing: Arc::default(),
    };
    let mut instance = oxquery_engine::instance::current(None);
    instance.instance_id = instance_id;
    instance.flags = oxquery_shared_flag_values(&flags);
    let filter = TableFilter::from_flags(
        flags.get(flag::enable_tables),
        flags.get(flag::disable_tables),
    );
    let engine =
        match Engine::with_live(tables, &filter, instance.clone(), Arc::clone(&daemon.live)) {
            Ok(e) => e,
            Err(e) => {
                log::error!("Cannot start the SQL engine: {e}");
                return EXIT_CATASTROPHIC;
            }
        };
    daemon.run(flags, config, engine, tables, &filter, instance, sinks, hup)
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

/// Every flag with its value, for `osquery_flags`.
fn oxquery_shared_flag_values(flags: &Flags) -> Vec<oxquery_table::FlagValue> {
    flags
        .iter()
        .filter(|(def, _)| def.in_flags_table())
        .map(|(def, value)| oxquery_table::FlagValue {
            name: def.name.to_owned(),
            ty: def.ty.name().to_owned(),
            description: def.description.to_owned(),
            default_value: def.default.to_owned(),
            value: value.to_string(),
            shell_only: matches!(def.kind, oxquery_flags::FlagKind::Shell),
        })
        .collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// State shared by the scheduler, the workers and the logger thread.
#[derive(Clone)]
pub(crate) struct Daemon {
    pub(crate) store: Arc<Mutex<Store>>,
    pub(crate) live: Arc<RwLock<LiveState>>,
    pub(crate) format: FormatOptions,
    pub(crate) epoch: u64,
    pub(crate) disable_logging: bool,
    /// Results of `load` and `interval` decorators.
    pub(crate) decorations: Arc<Mutex<Decorations>>,
    /// Set and notified when lines were queued, to wake the logger thread.
    pub(crate) flush: Arc<(Mutex<bool>, Condvar)>,
    pub(crate) stop: Arc<AtomicBool>,
    /// Set once the workers have stopped: only then can the logger's last drain see
    /// every line they recorded.
    pub(crate) logger_stop: Arc<AtomicBool>,
    /// The config's views. TEMP views live in one SQLite connection, so each worker
    /// engine re-creates them when the generation moves.
    pub(crate) views: Arc<RwLock<Views>>,
    /// Queries the workers are running, oldest first. `configurations/executing_query`
    /// names one of them (osquery runs one query at a time and keeps one name), so a
    /// crash is pinned on a query that was running when it happened.
    pub(crate) executing: Arc<Mutex<Vec<String>>>,
}

/// The config's `views` and `auto_table_construction` tables, with a generation that
/// changes on every (re)load.
#[derive(Debug, Default)]
pub(crate) struct Views {
    pub(crate) generation: u64,
    pub(crate) sql: BTreeMap<String, String>,
    pub(crate) tables: Vec<&'static TableDef>,
}

/// Attaches the config's automatic tables, then creates its views (which may use them).
pub(crate) fn apply_config_objects(
    engine: &mut Engine,
    views: &Views,
    created: &mut BTreeSet<String>,
) {
    for def in &views.tables {
        if let Err(e) = engine.attach(def) {
            log::warn!("Cannot attach automatic table {}: {e}", def.spec.name);
        }
    }
    create_views(engine, &views.sql, created);
}

impl Daemon {
    pub(crate) fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records in the store that `name` is about to run (before the query starts).
    pub(crate) fn start_executing(&self, name: &str) {
        let mut executing = self.executing.lock().unwrap_or_else(|p| p.into_inner());
        executing.push(name.to_owned());
        let store = self.lock_store();
        if let Err(e) = store.put(
            Domain::Configurations,
            schedule::EXECUTING_QUERY,
            name.as_bytes(),
        ) {
            log::warn!("Cannot record the executing query {name}: {e}");
        }
    }

    /// Records that `name` finished (after its results and statistics are stored): the
    /// key then names another running query, or is removed.
    pub(crate) fn finish_executing(&self, name: &str) {
        let mut executing = self.executing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = executing.iter().position(|n| n == name) {
            executing.remove(i);
        }
        let store = self.lock_store();
        let done = match executing.first() {
            Some(other) => store.put(
                Domain::Configurations,
                schedule::EXECUTING_QUERY,
                other.as_bytes(),
            ),
            None => store.delete(Domain::Configurations, schedule::EXECUTING_QUERY),
        };
        if let Err(e) = done {
            log::warn!("Cannot clear the executing query {name}: {e}");
        }
    }

    /// At start: a query still named in `executing_query` was running when the previous
    /// process died. Deny-lists it for a day unless its config says `"denylist": false`.
    fn denylist_crashed_query(&self, config: &Config) {
        let store = self.lock_store();
        let name = match store.get_text(Domain::Configurations, schedule::EXECUTING_QUERY) {
            Ok(Some(name)) if !name.is_empty() => name,
            Ok(_) => return,
            Err(e) => {
                log::warn!("Cannot read the executing query: {e}");
                return;
            }
        };
        if let Err(e) = store.delete(Domain::Configurations, schedule::EXECUTING_QUERY) {
            log::warn!("Cannot clear the executing query: {e}");
        }
        let allows = config
            .packs
            .iter()
            .flat_map(|p| &p.queries)
            .find(|q| q.full_name == name)
            .map(|q| q.denylist);
        match allows {
            Some(true) => {
                let expiry = unix_now() + schedule::DENYLIST_SECONDS;
                let mut denylist = schedule::load_denylist(&store);
                denylist.insert(name.clone(), expiry);
                schedule::save_denylist(&store, &denylist);
                log::warn!("Scheduled query may have failed: {name}; deny-listed until {expiry}");
            }
            Some(false) => log::warn!(
                "Scheduled query may have failed: {name}; not deny-listed (\"denylist\": false)"
            ),
            None => log::warn!("Scheduled query may have failed: {name} (no longer scheduled)"),
        }
    }

    pub(crate) fn wake_logger(&self) {
        let (flag, cv) = &*self.flush;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_one();
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        self,
        flags: Flags,
        mut config: Config,
        mut engine: Engine,
        tables: &[&'static TableDef],
        filter: &TableFilter,
        instance: oxquery_table::InstanceInfo,
        sinks: Vec<Box<dyn crate::sink::Sink>>,
        hup: Arc<AtomicBool>,
    ) -> i32 {
        // Deliver what a previous run left in the outbox before anything new.
        let logger = self.spawn_logger(sinks, &flags);

        let host = HostFacts::current();
        let mut discovery = DiscoveryCache::new();
        self.denylist_crashed_query(&config);
        let mut views_created = BTreeSet::new();
        self.publish_views(&mut engine, &config, &mut views_created);
        let mut schedule = self.load_schedule(&config, &engine, &host, &mut discovery);
        self.run_decorators(&engine, &config.decorators.load);

        let workers = match Workers::start(WORKERS, &self, tables, filter, &instance) {
            Ok(w) => w,
            Err(e) => {
                log::error!("Cannot start query workers: {e}");
                self.stop.store(true, Ordering::SeqCst);
                self.logger_stop.store(true, Ordering::SeqCst);
                self.wake_logger();
                let _ = logger.join();
                return EXIT_CATASTROPHIC;
            }
        };
        let started = unix_now();
        for q in config::startup_order(schedule.queries())
            .into_iter()
            .filter(|q| !schedule.is_denylisted(q, started))
        {
            workers.submit(Job::from(q), &config.decorators.always);
        }
        log::info!(
            "osqueryd started: {} scheduled queries, pid {}",
            schedule.queries().len(),
            std::process::id()
        );

        let refresh = flags.get(flag::config_refresh);
        let accelerated = flags.get(flag::config_accelerated_refresh);
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
            if schedule.expire(now) {
                let store = self.lock_store();
                schedule::save_denylist(&store, schedule.denylist());
                self.live
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .schedule = schedule.entries(&store);
            }

            let reload_now =
                hup.swap(false, Ordering::SeqCst) || next_refresh.is_some_and(|t| now >= t);
            if reload_now {
                match config.reload(&flags) {
                    Ok(Reload::Unchanged) => {
                        next_refresh = (refresh > 0).then(|| now + refresh as i64);
                    }
                    Ok(Reload::Changed(new)) => {
                        log::info!("Configuration changed; reloading the schedule");
                        config = *new;
                        if flags.get(flag::config_enable_backup) {
                            backup::save(&mut self.lock_store(), &config);
                        }
                        let mut flags_now = flags.clone();
                        for w in config.apply_options(&mut flags_now) {
                            log::warn!("{w}");
                        }
                        self.publish_views(&mut engine, &config, &mut views_created);
                        discovery = DiscoveryCache::new();
                        schedule = self.load_schedule(&config, &engine, &host, &mut discovery);
                        self.reload_decorators(&engine, &config.decorators.load);
                        next_refresh = (refresh > 0).then(|| now + refresh as i64);
                    }
                    Err(e) => {
                        log::error!(
                            "Configuration refresh failed, keeping the current config: {e}"
                        );
                        next_refresh = Some(now + accelerated.max(1) as i64);
                    }
                }
            }
        }
        log::info!("osqueryd stopping");
        workers.shutdown();
        // One last drain, after the workers, so everything they recorded reaches the
        // sinks.
        self.logger_stop.store(true, Ordering::SeqCst);
        self.wake_logger();
        let _ = logger.join();
        0
    }

    /// Attaches the config's automatic tables and creates its views on the scheduler's
    /// engine (decorators and discovery use it), and hands both to the workers' engines.
    fn publish_views(&self, engine: &mut Engine, config: &Config, created: &mut BTreeSet<String>) {
        let mut views = self.views.write().unwrap_or_else(|p| p.into_inner());
        views.generation += 1;
        views.sql = config.views.clone();
        views.tables = crate::atc::definitions(&config.auto_table_construction);
        apply_config_objects(engine, &views, created);
    }

    fn lock_decorations(&self) -> std::sync::MutexGuard<'_, Decorations> {
        self.decorations.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run_decorators(&self, engine: &Engine, queries: &[String]) {
        if queries.is_empty() {
            return;
        }
        let found = query_decorators(engine, queries);
        self.lock_decorations().extend(found);
    }

    /// Replaces the decorations with the new config's `load` results in one step, so a
    /// worker recording meanwhile sees the old set or the new one, never an empty one.
    fn reload_decorators(&self, engine: &Engine, load: &[String]) {
        let found = query_decorators(engine, load);
        *self.lock_decorations() = found;
    }

    /// Computes the schedule and publishes it (and the packs) for the utility tables.
    fn load_schedule(
        &self,
        config: &Config,
        engine: &Engine,
        host: &HostFacts,
        discovery: &mut DiscoveryCache,
    ) -> Schedule {
        let now = u64::try_from(unix_now()).unwrap_or(0);
        let mut runner = config::engine_runner(engine);
        let queries = {
            let store = self.lock_store();
            match config.schedule_with_discovery(host, &store, discovery, now, &mut runner) {
                Ok(q) => q,
                Err(e) => {
                    log::error!("Cannot compute the schedule: {e}");
                    Vec::new()
                }
            }
        };
        let packs = config
            .packs
            .iter()
            .map(|p| {
                let active = queries.iter().any(|q| q.pack == p.name);
                PackEntry {
                    name: p.name.clone(),
                    platform: p.platform.clone(),
                    version: p.version.clone(),
                    shard: i64::try_from(p.shard).unwrap_or(0),
                    discovery_cache_hits: 0,
                    discovery_executions: 0,
                    active,
                }
            })
            .collect();
        let store = self.lock_store();
        let schedule = Schedule::new(queries, schedule::load_denylist(&store));
        {
            let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
            live.config_hash = config.hash();
            live.config_valid = true;
            live.packs = packs;
            live.schedule = schedule.entries(&store);
        }
        schedule
    }

    /// The logger thread: drains the outbox when woken and at least every few seconds.
    fn spawn_logger(
        &self,
        sinks: Vec<Box<dyn crate::sink::Sink>>,
        flags: &Flags,
    ) -> std::thread::JoinHandle<()> {
        let daemon = self.clone();
        let config = OutboxConfig {
            max_backlog: flags.get(flag::buffered_log_max),
            ..OutboxConfig::default()
        };
        std::thread::Builder::new()
            .name("logger".into())
            .spawn(move || {
                let mut outbox = Outbox::new(sinks, config);
                loop {
                    let stopping = daemon.logger_stop.load(Ordering::SeqCst);
                    {
                        let mut store = daemon.lock_store();
                        match outbox.drain(&mut store) {
                            Ok(report) => {
                                for (sink, error) in report.failed {
                                    log::warn!("Logger {sink} failed: {error}");
                                }
                            }
                            Err(e) => log::error!("Cannot read the log outbox: {e}"),
                        }
                    }
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
}

fn query_decorators(engine: &Engine, queries: &[String]) -> Decorations {
    let mut found = Decorations::new();
    config::run_decorators(
        queries,
        &mut |sql| engine.query(sql).map_err(|e| e.to_string()),
        &mut found,
    );
    found
}

/// Creates `views` (replacing ones of the same name) and drops the config views this
/// engine made before that `views` no longer has. `created` is this engine's record of
/// the config views it made (TEMP views live in one connection; the engine's own alias
/// views are never in it).
pub(crate) fn create_views(
    engine: &Engine,
    views: &BTreeMap<String, String>,
    created: &mut BTreeSet<String>,
) {
    for name in created.iter().filter(|n| !views.contains_key(*n)) {
        let statement = format!("DROP VIEW IF EXISTS temp.\"{}\"", name.replace('"', "\"\""));
        if let Err(e) = engine.connection().execute_batch(&statement) {
            log::warn!("Cannot drop view {name}: {e}");
        }
    }
    created.clear();
    for (name, sql) in views {
        let statement =
            format!("DROP VIEW IF EXISTS temp.\"{name}\"; CREATE TEMP VIEW \"{name}\" AS {sql}");
        match engine.connection().execute_batch(&statement) {
            Ok(()) => {
                created.insert(name.clone());
            }
            Err(e) => log::warn!("Cannot create view {name}: {e}"),
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
