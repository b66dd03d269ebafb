//! The start-up steps osqueryi and osqueryd share: activating the config plugin, the
//! one-shot `--config_check` / `--config_dump`, loading the config as osquery does (a
//! config that cannot be read is not fatal), and what `osquery_packs` shows.

use crate::{
    Config, ConfigError, EXIT_CONFIG_ERROR, MAIN_PACK, ProgramTables, ScheduledQuery, Settings,
    platform_matches, read_sources, source,
};
use oxquery_engine::TableFilter;
use oxquery_flags::{FlagKind, Flags, flag};
use oxquery_table::{PackEntry, RegistryItem};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// osquery's exit status for a failure during start-up (a plugin that cannot be
/// activated, a database that cannot be opened).
pub const EXIT_CATASTROPHIC: i32 = 78;

/// The config plugins both programs have. The daemon adds `tls` (it needs the node key)
/// and its extensions' plugins; naming any other fails like naming an unknown plugin.
pub const CONFIG_PLUGINS: &[&str] = &["filesystem"];

/// [`CONFIG_PLUGINS`] as `osquery_registry` lists them: active when `--config_plugin`
/// names it.
pub fn config_plugin_items(flags: &Flags) -> Vec<RegistryItem> {
    let active = flags.get(flag::config_plugin);
    CONFIG_PLUGINS
        .iter()
        .map(|name| RegistryItem::built_in("config", name, *name == active))
        .collect()
}

/// Activates `--config_plugin`: `Err` holds osquery's message for a plugin that does not
/// exist (print it and exit with [`EXIT_CATASTROPHIC`]).
pub fn check_plugin(flags: &Flags) -> Result<(), String> {
    let name = flags.get(flag::config_plugin);
    if CONFIG_PLUGINS.contains(&name) {
        return Ok(());
    }
    Err(format!(
        "Cannot activate {name} config plugin: Unknown registry plugin: {name}"
    ))
}

/// Experiments this build can turn on with `--experiment_list`. osquery's Linux build
/// lists none (its one experiment, `linuxevents`, was taken out of the loader), and
/// neither does oxquery.
const EXPERIMENTS: &[&str] = &[];

/// `--experiment_list`, as osquery's loader reads it at start in both programs: the
/// lines to log, each with its level. A list names experiments by comma; each distinct
/// name is looked up once, in name order, and one this build does not have is an
/// error line. Empty names (a stray comma) are skipped.
pub fn experiments(flags: &Flags) -> Vec<(log::Level, String)> {
    let list = flags.get(flag::experiment_list);
    let mut names: Vec<&str> = list.split(',').filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return vec![(log::Level::Debug, "No experiments selected".to_owned())];
    }
    names.sort_unstable();
    names.dedup();
    let mut lines = vec![(
        log::Level::Info,
        "Experiments are enabled. This osquery instance is not officially supported".to_owned(),
    )];
    for name in names {
        lines.push(if EXPERIMENTS.contains(&name) {
            (log::Level::Info, format!("Enabling experiment: {name}"))
        } else {
            (
                log::Level::Error,
                format!("The following experiment was not found: {name}"),
            )
        });
    }
    lines
}

/// What a one-shot config mode asks the program to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneShot {
    /// Text for stdout.
    pub stdout: String,
    /// Text for stderr.
    pub stderr: String,
    pub exit_code: i32,
}

impl OneShot {
    fn printing(stdout: String) -> OneShot {
        OneShot {
            stdout,
            stderr: String::new(),
            exit_code: 0,
        }
    }

    fn failed(e: &ConfigError) -> OneShot {
        OneShot {
            stdout: String::new(),
            stderr: format!("Error reading config: {e}\n"),
            exit_code: e.exit_code(),
        }
    }
}

/// `--config_check` or `--config_dump`, when one is set: what to print and the exit
/// status. `None` when neither is set. `--config_check` fails (exit 1) for a config
/// that cannot be read or parsed, and prepares every query the config would run here
/// over `tables` (see [`check_queries`]): one that cannot run is a line on stderr, and
/// the exit status stays 0, as osquery's, unless `--config_check_strict` asks for 1
/// whenever the config loads with a warning. Warnings found while loading (a key given
/// twice, an ignored option) are logged, as the program's status log shows them.
/// `--config_dump` prints each source raw, as `{"<path>": <text>}`, even if it is not
/// valid JSON.
pub fn one_shot(flags: &Flags, tables: &ProgramTables) -> Option<OneShot> {
    if flags.get(flag::config_check) {
        return Some(config_check(flags, tables, &[]));
    }
    if flags.get(flag::config_dump) {
        let settings = Settings::from_flags(flags);
        return Some(match read_sources(&settings.config_path) {
            Ok(sources) => OneShot::printing(source::dump(&sources)),
            Err(e) => OneShot::failed(&e),
        });
    }
    None
}

/// `--config_check` (see [`one_shot`]), with `program_warnings`: what the program itself
/// found wrong in its flags (osqueryd: an empty `--logger_plugin`), logged here and
/// counted for `--config_check_strict` with the config's own.
pub fn config_check(flags: &Flags, tables: &ProgramTables, program_warnings: &[String]) -> OneShot {
    for warning in program_warnings {
        log::warn!("{warning}");
    }
    let config = match Config::load(flags) {
        Ok(config) => config,
        Err(e) => return OneShot::failed(&e),
    };
    let problems = check_queries(&config, flags, tables);
    let mut out = OneShot::printing(String::new());
    for problem in &problems {
        out.stderr.push_str(problem);
        out.stderr.push('\n');
    }
    let warnings = program_warnings.len() + config.warnings.len() + problems.len();
    if flags.get(flag::config_check_strict) && warnings > 0 {
        out.stderr.push_str(&strict_failure(warnings));
        out.exit_code = EXIT_CONFIG_ERROR;
    }
    out
}

/// The line `--config_check_strict` ends with when the config had `warnings`.
fn strict_failure(warnings: usize) -> String {
    let s = if warnings == 1 { "" } else { "s" };
    format!("--config_check_strict: the config loads with {warnings} warning{s}\n")
}

/// Prepares, without running them, the queries `config` would run on this host
/// (scheduled and pack queries, pack discovery queries and decorators, skipping those
/// whose platform is not this one) against `tables` as `flags` and the config's
/// `options` filter them, with the config's automatic tables and views in place.
/// Returns one line per query that cannot run (a syntax error, an unknown table or
/// column, a missing required constraint), naming it.
pub fn check_queries(config: &Config, flags: &Flags, tables: &ProgramTables) -> Vec<String> {
    let mut flags = flags.clone();
    config.apply_options(&mut flags);
    let filter = TableFilter::from_flags(
        flags.get(flag::enable_tables),
        flags.get(flag::disable_tables),
    );
    let engine = match tables.engine(&filter, crate::instance_info(), Arc::default()) {
        Ok(engine) => engine,
        Err(e) => return vec![format!("Cannot check the queries: {e}")],
    };
    let auto_tables = crate::atc::tables(&config.auto_table_construction, &[]);
    if let Err(e) = engine.set_config_tables(
        auto_tables
            .into_iter()
            .map(|t| t as Arc<dyn oxquery_table::Table>)
            .collect(),
    ) {
        return vec![format!("Cannot check the queries: {e}")];
    }
    engine.set_config_views(&config.views);

    let mut queries: Vec<(String, &str)> = Vec::new();
    for pack in config
        .packs
        .iter()
        .filter(|p| platform_matches(&p.platform))
    {
        let pack_label = if pack.name == MAIN_PACK {
            format!("the schedule of {}", pack.source)
        } else {
            format!("pack {} (in {})", pack.name, pack.source)
        };
        for (i, sql) in pack.discovery.iter().enumerate() {
            queries.push((format!("Discovery query {i} of {pack_label}"), sql));
        }
        for q in pack
            .queries
            .iter()
            .filter(|q| platform_matches(&q.platform))
        {
            queries.push((format!("Query {} of {pack_label}", q.full_name), &q.query));
        }
    }
    let d = &config.decorators;
    let interval = d.interval.iter().map(|(s, q)| (format!("interval.{s}"), q));
    for (kind, list) in [
        ("load".to_owned(), &d.load),
        ("always".to_owned(), &d.always),
    ]
    .into_iter()
    .chain(interval)
    {
        for (i, sql) in list.iter().enumerate() {
            queries.push((format!("Decorator query decorators.{kind}[{i}]"), sql));
        }
    }
    queries
        .into_iter()
        .filter_map(|(label, sql)| {
            let failure = engine.prepare(sql).err()?;
            Some(format!("{label} cannot run: {}", failure.message))
        })
        .collect()
}

/// Where the store lives for a `--database_path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseFile {
    pub path: PathBuf,
    /// When `path` is not `--database_path` itself: why, as an INFO status line.
    pub note: Option<String>,
}

/// The store file for `--database_path`. Normally the path itself. When it is a
/// directory, it is osquery's RocksDB database, left by osquery on a host that switched
/// to oxquery: the store goes beside it, in `<database_path>.oxquery`, and the directory
/// is never opened, renamed or written. Beside rather than inside, so that osquery's
/// directory stays exactly as osquery left it (a rollback to osquery, or a backup of it,
/// finds nothing foreign there) and removing either database leaves the other alone.
pub fn database_file(database_path: &Path) -> DatabaseFile {
    if !database_path.is_dir() {
        return DatabaseFile {
            path: database_path.to_owned(),
            note: None,
        };
    }
    // Without a trailing `/`, which would put `.oxquery` inside.
    let dir: PathBuf = database_path.components().collect();
    let mut beside = dir.into_os_string();
    beside.push(".oxquery");
    let path = PathBuf::from(beside);
    let note = format!(
        "--database_path {} is a directory (osquery's RocksDB database, left untouched); \
         the database is {}",
        database_path.display(),
        path.display()
    );
    DatabaseFile {
        path,
        note: Some(note),
    }
}

/// Loads the config at start-up. A config that cannot be read or parsed does not stop
/// the program, as in osquery: the error comes back beside an empty config, for the
/// caller to report (osqueryd as a warning, osqueryi at verbose level).
pub fn load_or_empty(flags: &Flags) -> (Config, Option<ConfigError>) {
    match Config::load(flags) {
        Ok(config) => (config, None),
        Err(e) => (Config::empty(&Settings::from_flags(flags)), Some(e)),
    }
}

/// The rows of `osquery_packs`: every pack of `config`, active when one of `scheduled`
/// (the queries that apply to this host) belongs to it.
pub fn pack_entries(config: &Config, scheduled: &[ScheduledQuery]) -> Vec<PackEntry> {
    config
        .packs
        .iter()
        .map(|p| PackEntry {
            name: p.name.clone(),
            platform: p.platform.clone(),
            version: p.version.clone(),
            shard: i64::try_from(p.shard).unwrap_or(0),
            discovery_cache_hits: 0,
            discovery_executions: 0,
            active: scheduled.iter().any(|q| q.pack == p.name),
        })
        .collect()
}

/// The rows of `osquery_flags`: osquery's own Linux flags and oxquery's, with their
/// current values.
pub fn flag_rows(flags: &Flags) -> Vec<oxquery_table::FlagValue> {
    flags
        .iter()
        .filter(|(def, _)| def.in_flags_table())
        .map(|(def, value)| oxquery_table::FlagValue {
            name: def.name.to_owned(),
            ty: def.ty.name().to_owned(),
            description: def.description.to_owned(),
            default_value: def.default.to_owned(),
            value: value.to_string(),
            shell_only: def.kind == FlagKind::Shell,
        })
        .collect()
}
