//! The start-up steps osqueryi and osqueryd share: activating the config plugin, the
//! one-shot `--config_check` / `--config_dump`, loading the config as osquery does (a
//! config that cannot be read is not fatal), and what `osquery_packs` shows.

use crate::{Config, ConfigError, ScheduledQuery, Settings, read_sources, source};
use oxquery_flags::{FlagKind, Flags, flag};
use oxquery_table::PackEntry;

/// osquery's exit status for a failure during start-up (a plugin that cannot be
/// activated, a database that cannot be opened).
pub const EXIT_CATASTROPHIC: i32 = 78;

/// The config plugins oxquery has. osquery's `tls` plugin and extension plugins are not
/// built yet, so naming them fails like naming an unknown plugin.
pub const CONFIG_PLUGINS: &[&str] = &["filesystem"];

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
/// that cannot be read or parsed; `--config_dump` prints each source raw, as
/// `{"<path>": <text>}`, even if it is not valid JSON.
pub fn one_shot(flags: &Flags) -> Option<OneShot> {
    if flags.get(flag::config_check) {
        return Some(match Config::load(flags) {
            Ok(_) => OneShot::printing(String::new()),
            Err(e) => OneShot::failed(&e),
        });
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
