//! Config and logger plugins that extensions provide, reached through the extension
//! manager's [`PluginCaller`]:
//!
//! * `--config_plugin=<extension's>`: the config is `{"action": "genConfig"}`'s first
//!   row, one source per key (source name → JSON text), each read as a config file is;
//!   packs given as strings are asked of the plugin (`genPack`). It is fetched again
//!   every `--config_refresh` seconds like any config; a failed call keeps the config in
//!   use (and a daemon whose first fetch fails starts from `--config_enable_backup`'s
//!   copy, as with the other plugins).
//! * `--logger_plugin=...,<extension's>`: see [`crate::logger::extension`].
//!
//! Start-up waits, as osquery does, for an extension to provide each such plugin, at
//! most `--extensions_timeout` seconds (at least 200 ms); after that the daemon stops
//! with status 78 and osquery's message for a config plugin ("Cannot activate X config
//! plugin: Unknown registry plugin: X"), or the daemon's own for a logger plugin
//! ("Cannot start the logger: unknown logger plugin: X", the words `--config_check`
//! uses too). osquery waits only while it manages autoloaded extensions and
//! fails at once otherwise; here an extension started by hand may register within the
//! timeout too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use oxquery_extensions::{PluginCaller, PluginRequest};
use oxquery_flags::{Flags, flag};

use crate::config::{self, Config, ConfigError, PackPlugin, Reload, Settings, Source};
use crate::logger::extension::ExtensionLogger;
use crate::logger::{LoggerError, LoggerSettings};

/// The registry config plugins live in.
const CONFIG_REGISTRY: &str = "config";
/// How often the start-up wait looks again (osquery's extension latency step).
const POLL: Duration = Duration::from_millis(20);
/// The shortest start-up wait (osquery: ten steps).
const MIN_WAIT: Duration = Duration::from_millis(200);

/// Whether `--config_plugin` names a plugin oxquery does not have itself, which only an
/// extension can provide.
pub(super) fn config_plugin_is_external(flags: &Flags) -> bool {
    let name = flags.get(flag::config_plugin);
    name != "tls" && !config::CONFIG_PLUGINS.contains(&name)
}

/// Whether the config plugin's check waits for the extension manager: it names no
/// built-in plugin and extensions are not disabled.
pub(super) fn config_check_waits(flags: &Flags) -> bool {
    config_plugin_is_external(flags) && !flags.get(flag::disable_extensions)
}

/// `--extensions_timeout` (seconds, read as osquery's `atoi` reads it: leading digits,
/// else 0), at least [`MIN_WAIT`].
pub(super) fn extensions_timeout(flags: &Flags) -> Duration {
    let text = flags.get(flag::extensions_timeout).trim();
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    let seconds = digits.parse::<u64>().unwrap_or(0);
    Duration::from_secs(seconds).max(MIN_WAIT)
}

/// osquery's message for a plugin that cannot be activated.
pub(super) fn activation_failure(registry: &str, active: &str, missing: &str) -> String {
    format!("Cannot activate {active} {registry} plugin: Unknown registry plugin: {missing}")
}

/// Waits until `caller` provides every plugin of `items` in `registry`, at most
/// `timeout` (or until `stop`); `Err` names the first one still missing.
pub(super) fn await_plugins(
    caller: &dyn PluginCaller,
    registry: &str,
    items: &[String],
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let missing = items.iter().find(|item| !caller.provides(registry, item));
        let Some(missing) = missing else {
            return Ok(());
        };
        if Instant::now() >= deadline || stop.load(Ordering::SeqCst) {
            return Err(missing.clone());
        }
        std::thread::sleep(POLL);
    }
}

/// The config plugin `--config_plugin` names, once an extension provides it: `None`
/// when the plugin is built in, `Err` with osquery's message when no extension
/// provides it in time (or there is no extension manager).
pub(super) fn activate_config(
    flags: &Flags,
    caller: Option<&Arc<dyn PluginCaller>>,
    stop: &AtomicBool,
) -> Result<Option<ExtensionConfig>, String> {
    if !config_plugin_is_external(flags) {
        return Ok(None);
    }
    let name = flags.get(flag::config_plugin).to_owned();
    let Some(caller) = caller else {
        return Err(activation_failure(CONFIG_REGISTRY, &name, &name));
    };
    let wanted = [name.clone()];
    await_plugins(
        caller.as_ref(),
        CONFIG_REGISTRY,
        &wanted,
        extensions_timeout(flags),
        stop,
    )
    .map_err(|missing| activation_failure(CONFIG_REGISTRY, &name, &missing))?;
    Ok(Some(ExtensionConfig::new(Arc::clone(caller), &name)))
}

/// Activates the logger plugins of `--logger_plugin` that are not built in: waits for an
/// extension to provide each, calls `init` and `features`, and takes them out of
/// `settings` so that the built-in sinks are started from what is left. `Err` names the
/// first plugin no extension provided in time. Without an extension manager, nothing changes here and
/// the built-in set-up refuses the unknown names as before.
pub(super) fn activate_loggers(
    flags: &Flags,
    settings: &mut LoggerSettings,
    caller: Option<&Arc<dyn PluginCaller>>,
    stop: &AtomicBool,
) -> Result<Vec<ExtensionLogger>, LoggerError> {
    let external = settings.external_plugins();
    let Some(caller) = caller else {
        return Ok(Vec::new());
    };
    if external.is_empty() {
        return Ok(Vec::new());
    }
    await_plugins(
        caller.as_ref(),
        crate::logger::extension::REGISTRY,
        &external,
        extensions_timeout(flags),
        stop,
    )
    // The words the daemon (and `--config_check`) use for a logger plugin nobody has.
    .map_err(LoggerError::UnknownPlugin)?;
    *settings = settings.without_plugins(&external);
    Ok(external
        .iter()
        .map(|name| ExtensionLogger::activate(name, Arc::clone(caller)))
        .collect())
}

/// A config plugin an extension provides.
#[derive(Clone)]
pub(crate) struct ExtensionConfig {
    caller: Arc<dyn PluginCaller>,
    name: String,
}

impl ExtensionConfig {
    pub(crate) fn new(caller: Arc<dyn PluginCaller>, name: &str) -> ExtensionConfig {
        ExtensionConfig {
            caller,
            name: name.to_owned(),
        }
    }

    fn failure(&self, message: String) -> ConfigError {
        ConfigError::Read {
            path: format!("the {} config plugin", self.name),
            message,
        }
    }

    /// The sources `genConfig` answers: its first row, source name → JSON text, in name
    /// order (osquery reads only the first row, and keeps sources in a sorted map).
    pub(crate) fn sources(&self) -> Result<Vec<Source>, ConfigError> {
        let request = PluginRequest::from([("action".to_owned(), "genConfig".to_owned())]);
        let rows = self
            .caller
            .call(CONFIG_REGISTRY, &self.name, &request)
            .map_err(|e| self.failure(e.to_string()))?;
        Ok(rows
            .into_iter()
            .next()
            .unwrap_or_default()
            .into_iter()
            .map(|(name, text)| Source::new(name, text))
            .collect())
    }

    /// The config at start-up.
    pub(crate) fn load(&self, settings: &Settings) -> Result<Config, ConfigError> {
        let sources = self.sources()?;
        Config::from_plugin_sources(sources, settings, &mut self.packs())
    }

    /// A refresh: an answer with no source leaves the config as it is (osquery updates
    /// nothing then), as does an unchanged one.
    pub(crate) fn reload(
        &self,
        current: &Config,
        settings: &Settings,
    ) -> Result<Reload, ConfigError> {
        let sources = self.sources()?;
        if sources.is_empty() {
            log::debug!(
                "The {} config plugin gave no source; keeping the config",
                self.name
            );
            return Ok(Reload::Unchanged);
        }
        current.reload_from_plugin(sources, settings, &mut self.packs())
    }

    /// Builds a config from sources kept before (the backup), asking the plugin for
    /// its string packs as a fresh load would.
    pub(crate) fn config_of(
        &self,
        sources: Vec<Source>,
        settings: &Settings,
    ) -> Result<Config, ConfigError> {
        Config::from_plugin_sources(sources, settings, &mut self.packs())
    }

    fn packs(&self) -> GenPack<'_> {
        GenPack { plugin: self }
    }
}

/// `genPack` calls to the config plugin.
struct GenPack<'a> {
    plugin: &'a ExtensionConfig,
}

impl PackPlugin for GenPack<'_> {
    /// `{"action": "genPack", "name", "value"}`; the pack is the first row's `name`.
    fn gen_pack(&mut self, name: &str, value: &str) -> Result<String, String> {
        let request = PluginRequest::from([
            ("action".to_owned(), "genPack".to_owned()),
            ("name".to_owned(), name.to_owned()),
            ("value".to_owned(), value.to_owned()),
        ]);
        let rows = self
            .plugin
            .caller
            .call(CONFIG_REGISTRY, &self.plugin.name, &request)
            .map_err(|e| e.to_string())?;
        rows.into_iter()
            .next()
            .and_then(|mut row| row.remove(name))
            .ok_or_else(|| "invalid plugin response".to_owned())
    }
}

#[cfg(test)]
#[path = "extension_tests.rs"]
mod tests;
