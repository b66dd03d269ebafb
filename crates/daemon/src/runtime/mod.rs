//! `osqueryd`'s life, in three parts: `startup` (flags, the one-shot modes, pidfile,
//! store, config, loggers, engines), the schedule loop (`schedule_loop`: the
//! once-a-second tick, reloads on SIGHUP or `--config_refresh`, a graceful stop on
//! SIGTERM/SIGINT) and the logger thread (`logger_thread`: draining the outbox to the
//! sinks).
//!
//! Threads: the main thread ticks the schedule once a second and handles signals; a
//! small pool of workers, each with its own engine (SQLite connections are not shared),
//! runs due queries, so one slow query delays neither the others nor the log flush; a
//! logger thread drains the outbox to the sinks. All share one store behind a mutex;
//! its transactions are short.

mod aws;
mod backup;
mod extension;
mod logger_thread;
mod osquery_import;
mod own_plugins;
mod registry;
mod remote;
mod schedule;
mod schedule_loop;
mod settings;
mod startup;
mod ticker;
mod worker;

pub use startup::run;

use crate::config::{self, Config};
use crate::item::Decorations;
use crate::logger::HostIdentifier;
use config::{DiscoveryCache, HostFacts};
use oxquery_engine::Engine;
use oxquery_store::{Domain, Store};
use oxquery_table::LiveState;
use schedule::Schedule;
use settings::{ResultSettings, RunSettings};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// osquery's exit status for a failure during start-up.
pub const EXIT_CATASTROPHIC: i32 = config::EXIT_CATASTROPHIC;
/// Query workers. Two keep a slow query from holding up the rest on a 2-core host
/// without multiplying memory (each worker has its own SQLite connection).
const WORKERS: usize = 2;

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
    /// Resolved once at start (osquery caches it on first use).
    pub(crate) host_identifier: HostIdentifier,
    /// How results are recorded and logged; replaced when a reload changes them.
    pub(crate) results: Arc<RwLock<ResultSettings>>,
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
    /// Queries the workers are running now (a queued one is not), each also recorded in
    /// the store as `configurations/executing_query.<name>` so that a crash is pinned on
    /// every query in flight when it happened.
    pub(crate) executing: Arc<Mutex<Vec<String>>>,
    /// How queries are run (`--schedule_lognames`, caching, ...); replaced on reload.
    pub(crate) run: Arc<RwLock<RunSettings>>,
    /// `--enable_numeric_monitoring`: where the workers record each run's figures.
    pub(crate) monitor: Option<Arc<crate::monitoring::Monitor>>,
    /// Rows of cacheable tables that scheduled scans stored, shared by the workers'
    /// engines as osquery's one table cache is shared by its scheduler.
    pub(crate) scan_cache: oxquery_engine::ScanCache,
    /// Set by the watcher's SIGUSR1 ("resource limit hit") before it stops this worker:
    /// from then on a query that ends stays recorded as executing, so the next worker
    /// deny-lists it.
    pub(crate) limit_hit: Arc<AtomicBool>,
    /// Lines extensions hand the daemon's logger plugins through the extension manager,
    /// written by the logger thread.
    pub(crate) direct_lines: Arc<own_plugins::DirectLines>,
}

/// The config's `views` and `auto_table_construction` tables, with a generation that
/// changes on every (re)load.
#[derive(Debug, Default)]
pub(crate) struct Views {
    pub(crate) generation: u64,
    pub(crate) sql: BTreeMap<String, String>,
    pub(crate) tables: Vec<Arc<crate::config::atc::AutoTableDef>>,
    /// What tables act on (`--read_max`), from the flags as the last (re)load left them.
    pub(crate) table_settings: oxquery_table::TableSettings,
}

/// Attaches the config's automatic tables, then creates its views (which may use them).
pub(crate) fn apply_config_objects(engine: &Engine, views: &Views) {
    engine.set_settings(views.table_settings.clone());
    let tables = views
        .tables
        .iter()
        .map(|t| Arc::clone(t) as Arc<dyn oxquery_table::Table>)
        .collect();
    if let Err(e) = engine.set_config_tables(tables) {
        log::warn!("Cannot attach the automatic tables: {e}");
    }
    engine.set_config_views(&views.sql);
}

impl Daemon {
    pub(crate) fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The run settings now (read once per tick and per run).
    pub(crate) fn run_settings(&self) -> RunSettings {
        self.run.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The result settings now (a worker takes one copy per result it records).
    pub(crate) fn result_settings(&self) -> ResultSettings {
        self.results
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Records in the store that `name` is about to run (before the query starts), under
    /// a key of its own: every query in flight is remembered, whichever worker runs it.
    pub(crate) fn start_executing(&self, name: &str) {
        self.executing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name.to_owned());
        let key = format!("{}{name}", schedule::EXECUTING_PREFIX);
        let since = unix_now().to_string();
        if let Err(e) = self
            .lock_store()
            .put(Domain::Configurations, &key, since.as_bytes())
        {
            log::warn!("Cannot record the executing query {name}: {e}");
        }
    }

    /// Records that `name` finished (after its results and statistics are stored).
    pub(crate) fn finish_executing(&self, name: &str) {
        let key = format!("{}{name}", schedule::EXECUTING_PREFIX);
        if self.limit_hit.load(std::sync::atomic::Ordering::SeqCst) {
            log::warn!(
                "Scheduled query {name} was running when the watchdog stopped this worker; it stays recorded for deny-listing"
            );
        } else if let Err(e) = self.lock_store().delete(Domain::Configurations, &key) {
            log::warn!("Cannot clear the executing query {name}: {e}");
        }
        let mut executing = self.executing.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = executing.iter().position(|n| n == name) {
            executing.remove(i);
        }
    }

    /// Whether a worker is running `name` now (not merely queued).
    pub(crate) fn is_executing(&self, name: &str) -> bool {
        self.executing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|n| n == name)
    }

    /// At start: the queries still recorded as executing were running when the previous
    /// process died. Each is deny-listed for a day unless its config says
    /// `"denylist": false`, with `reason` (from the watcher: which limit, or how the
    /// worker died) stored beside it and logged once. osquery's single `executing_query`
    /// key (a store from an earlier version) counts as one more.
    fn denylist_crashed_queries(&self, config: &Config, reason: Option<&str>) {
        let store = self.lock_store();
        let mut crashed: Vec<String> = Vec::new();
        let found = (|| -> oxquery_store::Result<()> {
            if let Some(name) = store.get_text(Domain::Configurations, schedule::EXECUTING_QUERY)? {
                crashed.push(name);
            }
            for key in store.keys(Domain::Configurations, schedule::EXECUTING_PREFIX)? {
                crashed.push(key[schedule::EXECUTING_PREFIX.len()..].to_owned());
            }
            Ok(())
        })();
        if let Err(e) = found {
            log::warn!("Cannot read the executing queries: {e}");
        }
        crashed.retain(|n| !n.is_empty());
        crashed.sort();
        crashed.dedup();
        let cleared = store
            .delete(Domain::Configurations, schedule::EXECUTING_QUERY)
            .and_then(|()| {
                store
                    .keys(Domain::Configurations, schedule::EXECUTING_PREFIX)?
                    .iter()
                    .try_for_each(|k| store.delete(Domain::Configurations, k))
            });
        if let Err(e) = cleared {
            log::warn!("Cannot clear the executing queries: {e}");
        }
        if crashed.is_empty() {
            return;
        }
        let mut denylist = schedule::load_denylist(&store);
        let expiry = unix_now() + schedule::DENYLIST_SECONDS;
        let reason = reason.unwrap_or(schedule::UNKNOWN_STOP);
        for name in &crashed {
            let allows = config
                .packs
                .iter()
                .flat_map(|p| &p.queries)
                .find(|q| &q.full_name == name)
                .map(|q| q.denylist);
            match allows {
                Some(true) => {
                    denylist.insert(name.clone(), expiry);
                    schedule::save_denylist_reason(&store, name, reason);
                    log::warn!(
                        "Scheduled query may have failed: {name}; deny-listed until {expiry}: {reason}"
                    );
                }
                Some(false) => log::warn!(
                    "Scheduled query may have failed: {name}; not deny-listed (\"denylist\": false): {reason}"
                ),
                None => {
                    log::warn!(
                        "Scheduled query may have failed: {name} (no longer scheduled): {reason}"
                    )
                }
            }
        }
        schedule::save_denylist(&store, &denylist);
    }

    pub(crate) fn wake_logger(&self) {
        let (flag, cv) = &*self.flush;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_one();
    }

    /// Attaches the config's automatic tables and creates its views on the scheduler's
    /// engine (decorators and discovery use it), and hands both to the workers' engines.
    fn publish_views(&self, engine: &Engine, config: &Config, flags: &oxquery_flags::Flags) {
        let mut views = self.views.write().unwrap_or_else(|p| p.into_inner());
        views.generation += 1;
        views.sql = config.views.clone();
        views.tables = crate::config::atc::tables(&config.auto_table_construction, &views.tables);
        views.table_settings = crate::config::table_settings(flags);
        apply_config_objects(engine, &views);
    }

    fn lock_decorations(&self) -> std::sync::MutexGuard<'_, Decorations> {
        self.decorations.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run_decorators(&self, engine: &Engine, queries: &[String]) {
        if queries.is_empty() || self.run_settings().disable_decorators {
            return;
        }
        let found = query_decorators(engine, queries);
        self.lock_decorations().extend(found);
    }

    /// Replaces the decorations with the new config's `load` results in one step, so a
    /// worker recording meanwhile sees the old set or the new one, never an empty one.
    fn reload_decorators(&self, engine: &Engine, load: &[String]) {
        // A reload that turns `--disable_decorators` on drops the decorations at once.
        let found = if self.run_settings().disable_decorators {
            Decorations::default()
        } else {
            query_decorators(engine, load)
        };
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
        let packs = config::pack_entries(config, &queries);
        let store = self.lock_store();
        let schedule = Schedule::new(
            queries,
            schedule::load_denylist(&store),
            schedule::load_denylist_reasons(&store),
        );
        {
            let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
            live.config_hash = config.hash();
            live.config_valid = true;
            live.prometheus_targets = config.prometheus_targets.clone();
            live.yara_signature_urls = config.yara_signature_urls();
            live.yara_signature_groups = config.yara_signature_groups();
            live.packs = packs;
            live.schedule = schedule.entries(&store);
        }
        schedule
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
