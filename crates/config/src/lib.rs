//! osquery's configuration, shared by osqueryi and osqueryd: sources, `options`,
//! `schedule` and `packs`, decorators and the other top-level keys, the per-host filters,
//! interval splay, `--config_check` and `--config_dump`.
//!
//! ```text
//! --config_path + <config_path>.d/*.conf ──read──▶ [Source] (raw text + SHA1)
//!        ──strip comments, limits, JSON──▶ options (merged, later sources win)
//!        ──effective settings (flags + options)──▶ packs, decorators, views, ...  = Config
//! Config::schedule(host, store, discovery) ──▶ [ScheduledQuery] (filtered, splayed)
//! ```
//!
//! The programs' calls, in order:
//! 1. [`check_plugin`] (`--config_plugin`), then [`one_shot`] for `--config_check` /
//!    `--config_dump` (print, then exit).
//! 2. [`load_or_empty`] at start: a config that cannot be read is reported and the
//!    program runs with [`Config::empty`], as osquery does.
//! 3. [`Config::apply_options`] on its flag set, so `options` take effect.
//! 4. [`Config::schedule`] for the queries to run (re-call after each reload; the
//!    [`DiscoveryCache`] and the store keep discovery verdicts and splay stable).
//! 5. Every `--config_refresh` seconds (or on SIGHUP) [`Config::reload`].
//!
//! **Invariant:** a failed reload changes nothing. [`Config::reload`] borrows the current
//! config and returns a new one or an error; the caller keeps running on the config it
//! had when the new one cannot be read, logs the error, and retries after
//! `--config_accelerated_refresh`. Nothing here is global, so there is no half-applied
//! state to undo.
//!
//! Sources apply in name order (osquery keeps them in a sorted map): the main file, then
//! its `.d` files. Each source's `schedule` becomes a pack named `main` belonging to that
//! source; packs with the same name from different sources coexist, as in osquery. When
//! two of them define the same full query name, the later source's query replaces the
//! earlier one (with a warning), where osquery would run both under one name and let
//! their differential results overwrite each other.
//!
//! Where this is stricter than osquery: a value of the wrong type, an interval outside
//! 1..=604800, a reserved query name, a bad decorator interval or an unreadable pack file
//! is an error naming the source and the key path (osquery skips such entries, often
//! silently). Unknown `options` and command-line-only flags in `options` stay warnings,
//! as in osquery, because real configs carry retired option names. A key given twice in
//! one object is a warning naming both lines (the later value is used). Line numbers in
//! messages are the file's: stripping comments keeps every line where it was.

pub mod atc;
mod duplicates;
mod events;
mod filter;
mod instance;
mod model;
mod options;
mod parse;
mod plugin_call;
mod program_tables;
mod source;
mod splay;
mod startup;

#[cfg(test)]
mod tests;

pub use events::{events_config, hub_settings, start_events};
pub use filter::{
    BUILD_PLATFORM, DiscoveryCache, HostFacts, QueryRunner, engine_runner, machine_shard,
    platform_matches, shard_includes, version_satisfied,
};
pub use instance::{instance_info, table_settings};
pub use model::{
    AutoTable, Categories, Decorators, Events, MAIN_PACK, MAX_QUERY_INTERVAL, Pack, Query,
};
pub use options::{CUSTOM_PREFIX, apply_options, option_text};
pub use parse::{PackPlugin, check_query_name, full_query_name};
pub use plugin_call::{PluginRow, filesystem_config_call};
pub use program_tables::{ForeignTables, ProgramTables};
pub use source::{
    MAX_CONFIG_DEPTH, MAX_CONFIG_SIZE, MAX_SOURCE_FILE_SIZE, Source, combined_hash, read_sources,
    sha1_hex, strip_comments,
};
pub use splay::{restore_splay, splay_bounds, splay_key, splay_with};
pub use startup::{
    CONFIG_PLUGINS, DatabaseFile, EXIT_CATASTROPHIC, OneShot, check_plugin, check_queries,
    config_check, config_plugin_items, database_file, experiments, flag_rows, load_or_empty,
    one_shot, pack_entries,
};

use oxquery_flags::{Flags, flag};
use oxquery_store::{Store, StoreError};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The exit status of `--config_check` (and of a daemon that cannot load its config).
pub const EXIT_CONFIG_ERROR: i32 = 1;

/// Why a config could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Nothing exists at the main config file's path (a directory, FIFO or device there
    /// is a [`ConfigError::Read`] saying what it is).
    #[error("config file does not exist: {0}")]
    Missing(String),
    /// A file could not be read.
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    /// A source (or a pack file) is not a valid config; `message` names the problem and,
    /// for a key, its path (`schedule.q1.interval: ...`).
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl ConfigError {
    /// osquery's exit status for this failure (`--config_check`, start-up).
    pub fn exit_code(&self) -> i32 {
        EXIT_CONFIG_ERROR
    }
}

/// The flag values the config's meaning depends on, after `options` are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `--config_path`.
    pub config_path: PathBuf,
    /// `--schedule_default_interval`: a query's interval when it gives none.
    pub default_interval: u64,
    /// `--pack_delimiter`, between `pack`, the pack name and the query name.
    pub pack_delimiter: String,
    /// `--schedule_splay_percent`.
    pub splay_percent: u64,
    /// `--pack_refresh_interval`: seconds a discovery verdict is reused.
    pub pack_refresh_interval: u64,
    /// `--schedule_query_timeout`: seconds a scheduled run may take (0 = no limit) when
    /// its query gives no `"timeout"`.
    pub query_timeout: u64,
    /// `--schedule_query_memory_limit`: MiB a scheduled run may allocate (0 = no budget)
    /// when its query gives no `"memory_limit"`.
    pub query_memory_limit: u64,
}

/// The worker memory limit the watchdog holds the worker to (MB: the override, else the
/// level's: 200 normal, 100 restrictive, 10,000 off), `None` without a watchdog.
pub fn watchdog_memory_limit_mb(flags: &Flags) -> Option<u64> {
    if flags.get(flag::disable_watchdog) {
        return None;
    }
    Some(match flags.get(flag::watchdog_memory_limit) {
        0 => match flags.get(flag::watchdog_level) {
            1 => 100,
            -1 => 10_000,
            _ => 200,
        },
        limit => limit,
    })
}

/// `--schedule_query_memory_limit` (MiB). Left at its default while a watchdog runs, it
/// is at most 80 % of the watchdog's memory limit: a query over budget must be stopped
/// before the watchdog would stop the whole worker for it.
fn query_memory_limit(flags: &Flags) -> u64 {
    let given = flags.get(flag::schedule_query_memory_limit);
    if flags.is_set(flag::schedule_query_memory_limit) {
        return given;
    }
    match watchdog_memory_limit_mb(flags) {
        Some(mb) => given.min(mb * 1_000_000 * 8 / 10 / (1 << 20)),
        None => given,
    }
}

impl Settings {
    /// The settings given by `flags` alone.
    pub fn from_flags(flags: &Flags) -> Settings {
        Settings {
            config_path: PathBuf::from(flags.get(flag::config_path)),
            default_interval: flags.get(flag::schedule_default_interval),
            pack_delimiter: flags.get(flag::pack_delimiter).to_owned(),
            splay_percent: flags.get(flag::schedule_splay_percent),
            pack_refresh_interval: flags.get(flag::pack_refresh_interval),
            query_timeout: flags.get(flag::schedule_query_timeout),
            query_memory_limit: query_memory_limit(flags),
        }
    }

    /// These settings with a config's `options` applied, so a config's own options
    /// shape how the same config is read (osquery applies them only after parsing the
    /// packs of a source, so they take effect from the next refresh).
    fn with_options(&self, options: &BTreeMap<String, Json>) -> Settings {
        let mut out = self.clone();
        let number = |name: &str| {
            options
                .get(name)
                .and_then(option_text)
                .and_then(|t| t.trim().parse::<u64>().ok())
        };
        if let Some(v) = number("schedule_default_interval") {
            out.default_interval = v;
        }
        if let Some(v) = number("schedule_splay_percent") {
            out.splay_percent = v;
        }
        if let Some(v) = number("pack_refresh_interval") {
            out.pack_refresh_interval = v;
        }
        if let Some(v) = number("schedule_query_timeout") {
            out.query_timeout = v;
        }
        if let Some(v) = number("schedule_query_memory_limit") {
            out.query_memory_limit = v;
        }
        if let Some(v) = options.get("pack_delimiter").and_then(option_text) {
            out.pack_delimiter = v;
        }
        out
    }
}

/// A loaded configuration. Plain data: cloning it is cheap enough for a reload.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The sources, in the order they were applied.
    pub sources: Vec<Source>,
    /// Effective settings (flags overlaid with `options`).
    pub settings: Settings,
    /// `options`, merged over all sources (later wins): flag name → JSON value. Only
    /// names that passed validation: settable flags and `custom_` names.
    pub options: BTreeMap<String, Json>,
    /// Every pack, including each source's `schedule` as pack `main`, in source order.
    /// Not filtered: `osquery_packs` lists packs that do not apply to this host too.
    pub packs: Vec<Pack>,
    pub decorators: Decorators,
    /// `views`: name → SQL of a view to create.
    pub views: BTreeMap<String, String>,
    pub auto_table_construction: BTreeMap<String, AutoTable>,
    /// What the event publishers read (`events_config`).
    pub file_paths: Categories,
    pub file_paths_query: Categories,
    pub file_accesses: Vec<String>,
    pub exclude_paths: Categories,
    pub yara: Option<Json>,
    /// `prometheus_targets` (the last source that has one wins, as `yara`).
    pub prometheus_targets: Option<oxquery_table::PrometheusTargets>,
    pub events: Events,
    /// `kafka_topics`, merged over all sources: topic → query names the
    /// `kafka_producer` logger sends there (read at start-up, as osquery does).
    pub kafka_topics: Categories,
    /// What loading warned about (also logged): ignored options, name clashes, empty
    /// pack globs. `--config_check` may print them.
    pub warnings: Vec<String>,
}

/// The outcome of [`Config::reload`].
#[derive(Debug, Clone, PartialEq)]
pub enum Reload {
    /// Every source has the same name and SHA1 as before: keep the current config (and
    /// everything derived from it).
    Unchanged,
    /// Something changed; switch to this config.
    Changed(Box<Config>),
}

/// One query the scheduler should run, after filtering and splay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledQuery {
    /// Full name, as logged and as keyed in the store.
    pub name: String,
    pub pack: String,
    pub query: String,
    /// The configured interval.
    pub interval: u64,
    /// The interval to schedule by (splayed, remembered in the store).
    pub splayed_interval: u64,
    pub snapshot: bool,
    pub removed: bool,
    pub denylist: bool,
    pub startup_priority: Option<u64>,
    /// Seconds a run may take before it is stopped; 0 = no limit. The query's
    /// `"timeout"`, else `--schedule_query_timeout`.
    pub timeout: u64,
    /// MiB a run may allocate before it is stopped; 0 = no budget. The query's
    /// `"memory_limit"`, else `--schedule_query_memory_limit`.
    pub memory_limit: u64,
}

impl Config {
    /// Loads the filesystem plugin's sources named by `flags` (`--config_path`).
    pub fn load(flags: &Flags) -> Result<Config, ConfigError> {
        let settings = Settings::from_flags(flags);
        let sources = read_sources(&settings.config_path)?;
        Config::from_sources(sources, &settings)
    }

    /// The config of a program whose sources could not be read: nothing scheduled.
    pub fn empty(settings: &Settings) -> Config {
        Config::from_sources(Vec::new(), settings)
            .expect("a config without sources has nothing to reject")
    }

    /// Builds a config from sources already read (applied in the given order).
    pub fn from_sources(sources: Vec<Source>, settings: &Settings) -> Result<Config, ConfigError> {
        Config::build(sources, settings, None)
    }

    /// [`Config::from_sources`] for sources a config plugin other than the filesystem's
    /// gave: packs given as strings are asked of `packs` (osquery's `genPack`) instead of
    /// being read as files.
    pub fn from_plugin_sources(
        sources: Vec<Source>,
        settings: &Settings,
        packs: &mut dyn PackPlugin,
    ) -> Result<Config, ConfigError> {
        Config::build(sources, settings, Some(packs))
    }

    fn build(
        sources: Vec<Source>,
        settings: &Settings,
        mut pack_plugin: Option<&mut dyn PackPlugin>,
    ) -> Result<Config, ConfigError> {
        let mut warnings = Vec::new();
        let mut docs = Vec::with_capacity(sources.len());
        let mut merged_options = BTreeMap::new();
        for src in &sources {
            let doc = source::parse_document(&src.name, &src.content, &mut warnings)?;
            if let Some(value) = options::options_value(&doc) {
                let opts = options::parse_options(&src.name, value, &mut warnings)?;
                options::merge_options(&mut merged_options, opts);
            }
            docs.push(doc);
        }
        let effective = settings.with_options(&merged_options);
        let mut config = Config {
            settings: effective.clone(),
            options: merged_options,
            packs: Vec::new(),
            decorators: Decorators::default(),
            views: BTreeMap::new(),
            auto_table_construction: BTreeMap::new(),
            file_paths: Categories::new(),
            file_paths_query: Categories::new(),
            file_accesses: Vec::new(),
            exclude_paths: Categories::new(),
            yara: None,
            prometheus_targets: None,
            events: Events::default(),
            kafka_topics: Categories::new(),
            warnings: Vec::new(),
            sources: Vec::new(),
        };
        for (src, doc) in sources.iter().zip(&docs) {
            let mut ctx = parse::Ctx {
                origin: &src.name,
                settings: &effective,
                warnings: &mut warnings,
                pack_plugin: pack_plugin.as_deref_mut().map(|p| p as &mut dyn PackPlugin),
            };
            let parsed = parse::parse_document(&mut ctx, doc)?;
            config.merge(parsed, &mut warnings);
        }
        config.sources = sources;
        config.warnings = warnings;
        Ok(config)
    }

    /// Adds one source's content over what earlier sources gave.
    fn merge(&mut self, parsed: model::Parsed, warnings: &mut Vec<String>) {
        for pack in parsed.packs {
            for query in &pack.queries {
                for earlier in &mut self.packs {
                    let before = earlier.queries.len();
                    earlier.queries.retain(|q| q.full_name != query.full_name);
                    if earlier.queries.len() != before {
                        let message = format!(
                            "Scheduled query {} from {} replaces the one from {}",
                            query.full_name, pack.source, earlier.source
                        );
                        log::warn!("{message}");
                        warnings.push(message);
                    }
                }
            }
            self.packs.push(pack);
        }
        let d = parsed.decorators;
        self.decorators.load.extend(d.load);
        self.decorators.always.extend(d.always);
        for (seconds, queries) in d.interval {
            self.decorators
                .interval
                .entry(seconds)
                .or_default()
                .extend(queries);
        }
        self.views.extend(parsed.views);
        self.auto_table_construction
            .extend(parsed.auto_table_construction);
        for (into, from) in [
            (&mut self.file_paths, parsed.file_paths),
            (&mut self.file_paths_query, parsed.file_paths_query),
            (&mut self.exclude_paths, parsed.exclude_paths),
            (&mut self.kafka_topics, parsed.kafka_topics),
        ] {
            for (category, paths) in from {
                into.entry(category).or_default().extend(paths);
            }
        }
        for category in parsed.file_accesses {
            if !self.file_accesses.contains(&category) {
                self.file_accesses.push(category);
            }
        }
        if parsed.yara.is_some() {
            self.yara = parsed.yara;
        }
        if parsed.prometheus_targets.is_some() {
            self.prometheus_targets = parsed.prometheus_targets;
        }
        self.events
            .enable_subscribers
            .extend(parsed.events.enable_subscribers);
        self.events
            .disable_subscribers
            .extend(parsed.events.disable_subscribers);
    }

    /// Re-reads the sources. [`Reload::Unchanged`] when every source has the same name
    /// and SHA1 (nothing is parsed, as osquery skips unchanged sources); otherwise the
    /// new config, or an error — in which case the caller keeps `self`.
    pub fn reload(&self, flags: &Flags) -> Result<Reload, ConfigError> {
        let settings = Settings::from_flags(flags);
        let sources = read_sources(&settings.config_path)?;
        self.reload_from(sources, &settings)
    }

    /// [`Config::reload`] with sources read by the caller.
    pub fn reload_from(
        &self,
        sources: Vec<Source>,
        settings: &Settings,
    ) -> Result<Reload, ConfigError> {
        if self.same_sources(&sources) {
            return Ok(Reload::Unchanged);
        }
        Config::from_sources(sources, settings).map(|c| Reload::Changed(Box::new(c)))
    }

    /// [`Config::reload_from`] for a config plugin that resolves string packs (see
    /// [`Config::from_plugin_sources`]).
    pub fn reload_from_plugin(
        &self,
        sources: Vec<Source>,
        settings: &Settings,
        packs: &mut dyn PackPlugin,
    ) -> Result<Reload, ConfigError> {
        if self.same_sources(&sources) {
            return Ok(Reload::Unchanged);
        }
        Config::from_plugin_sources(sources, settings, packs).map(|c| Reload::Changed(Box::new(c)))
    }

    fn same_sources(&self, sources: &[Source]) -> bool {
        sources.len() == self.sources.len()
            && sources
                .iter()
                .zip(&self.sources)
                .all(|(a, b)| a.name == b.name && a.sha1 == b.sha1)
    }

    /// `yara.signature_urls`: the URLs the yara tables' `sigurl` may fetch rules from
    /// (strings only, as osquery reads them).
    pub fn yara_signature_urls(&self) -> Vec<String> {
        self.yara
            .as_ref()
            .and_then(|y| y.get("signature_urls"))
            .and_then(|u| u.as_array())
            .map(|urls| {
                urls.iter()
                    .filter_map(|u| u.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `yara.signatures`: each signature group's rule files as written (the yara tables'
    /// `sig_group`); strings only, as osquery reads them.
    pub fn yara_signature_groups(&self) -> BTreeMap<String, Vec<String>> {
        let groups = self
            .yara
            .as_ref()
            .and_then(|y| y.get("signatures"))
            .and_then(|g| g.as_object());
        groups
            .into_iter()
            .flatten()
            .filter_map(|(group, files)| {
                let files = files.as_array()?;
                let files = files.iter().filter_map(|f| f.as_str().map(str::to_owned));
                Some((group.clone(), files.collect()))
            })
            .collect()
    }

    /// The combined hash of the sources (`osquery_info.config_hash`); changes exactly
    /// when some source's content (or the set of sources) changes.
    pub fn hash(&self) -> String {
        combined_hash(&self.sources)
    }

    /// Sets the config's `options` on `flags`; returns warnings to log.
    pub fn apply_options(&self, flags: &mut Flags) -> Vec<String> {
        apply_options(&self.options, flags)
    }

    /// Packs named `name` (several sources may each have one), for `--pack NAME`.
    pub fn packs_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Pack> + 'a {
        self.packs.iter().filter(move |p| p.name == name)
    }

    /// The queries to schedule on this host: packs whose platform, version and shard
    /// apply and that `active` accepts (discovery), then queries whose own restrictions
    /// apply. Each gets its splayed interval from (or into) `store`. Pack order, then
    /// query name order.
    pub fn schedule(
        &self,
        host: &HostFacts,
        store: &Store,
        active: &mut dyn FnMut(&Pack) -> bool,
    ) -> Result<Vec<ScheduledQuery>, StoreError> {
        let mut out = Vec::new();
        for pack in &self.packs {
            if !pack.applies_to(host) || !active(pack) {
                continue;
            }
            for q in pack.queries.iter().filter(|q| q.applies_to(host)) {
                let splayed =
                    restore_splay(store, &q.full_name, q.interval, self.settings.splay_percent)?;
                out.push(ScheduledQuery {
                    name: q.full_name.clone(),
                    pack: pack.name.clone(),
                    query: q.query.clone(),
                    interval: q.interval,
                    splayed_interval: splayed,
                    snapshot: q.snapshot,
                    removed: q.removed,
                    denylist: q.denylist,
                    startup_priority: q.startup_priority,
                    timeout: q.timeout.unwrap_or(self.settings.query_timeout),
                    memory_limit: q.memory_limit.unwrap_or(self.settings.query_memory_limit),
                });
            }
        }
        Ok(out)
    }

    /// [`Config::schedule`] with discovery decided by `cache` and `runner` at unix time
    /// `now`, using `--pack_refresh_interval`.
    pub fn schedule_with_discovery(
        &self,
        host: &HostFacts,
        store: &Store,
        cache: &mut DiscoveryCache,
        now: u64,
        runner: &mut dyn QueryRunner,
    ) -> Result<Vec<ScheduledQuery>, StoreError> {
        let refresh = self.settings.pack_refresh_interval;
        self.schedule(host, store, &mut |pack| {
            cache.is_active(pack, now, refresh, runner)
        })
    }
}

/// The queries with a `startup_priority`, in the order to run them at start: lowest
/// value first, ties by name.
pub fn startup_order(schedule: &[ScheduledQuery]) -> Vec<&ScheduledQuery> {
    let mut out: Vec<_> = schedule
        .iter()
        .filter(|q| q.startup_priority.is_some())
        .collect();
    out.sort_by(|a, b| (a.startup_priority, &a.name).cmp(&(b.startup_priority, &b.name)));
    out
}

/// Decorator results: column name → value.
pub type Decorations = BTreeMap<String, String>;

/// Runs decorator queries and adds the first row of each to `into` (later queries
/// overwrite earlier columns of the same name). A failing query adds nothing; extra
/// rows are ignored with a warning, as in osquery.
pub fn run_decorators(
    queries: &[String],
    run: &mut dyn FnMut(&str) -> Result<oxquery_engine::QueryResult, String>,
    into: &mut Decorations,
) {
    for sql in queries {
        let result = match run(sql) {
            Ok(r) => r,
            Err(e) => {
                log::warn!("Decorator query failed ({sql}): {e}");
                continue;
            }
        };
        if let Some(first) = result.rows.first() {
            for (column, value) in result.columns.iter().zip(first) {
                into.insert(column.clone(), value.to_string());
            }
        }
        if result.rows.len() > 1 {
            log::warn!("Multiple rows returned for decorator query: {sql}");
        }
    }
}
