//! `--config_enable_backup`: every source's raw text is kept in the store
//! (`configurations/config_persistence.<source>`) after each successful load, and a
//! daemon whose config cannot be read at start-up starts from that copy instead of an
//! empty config.

use super::settings::DaemonSettings;
use crate::config::{Config, Settings, Source};
use oxquery_flags::Flags;
use oxquery_store::{Domain, Store};

/// The key prefix of a backed-up source.
pub(super) const PREFIX: &str = "config_persistence.";

/// Replaces the stored backup with `config`'s sources.
pub(super) fn save(store: &mut Store, config: &Config) {
    let saved = store.transaction(|tx| {
        for key in tx.keys(Domain::Configurations, PREFIX)? {
            tx.delete(Domain::Configurations, &key)?;
        }
        for source in &config.sources {
            tx.put(
                Domain::Configurations,
                &format!("{PREFIX}{}", source.name),
                source.content.as_bytes(),
            )?;
        }
        Ok(())
    });
    if let Err(e) = saved {
        log::warn!("Cannot back up the config: {e}");
    }
}

/// The sources kept in `store`, in name order (the order they apply in).
pub(super) fn sources(store: &Store) -> Vec<Source> {
    match store.scan(Domain::Configurations, PREFIX) {
        Ok(pairs) => pairs
            .into_iter()
            .map(|(key, value)| {
                Source::new(
                    key[PREFIX.len()..].to_owned(),
                    String::from_utf8_lossy(&value).into_owned(),
                )
            })
            .collect(),
        Err(e) => {
            log::warn!("Cannot read the config backup: {e}");
            Vec::new()
        }
    }
}

/// The config kept in the database `settings` name, if there is a usable one; `flags`
/// shape how it is read, and a config plugin in an extension (`plugin`) gives the packs
/// its sources name, as it does for a fresh load.
pub(super) fn restore(
    settings: &DaemonSettings,
    flags: &Flags,
    plugin: Option<&super::extension::ExtensionConfig>,
) -> Result<Config, String> {
    let Some(path) = &settings.database_path else {
        return Err("the database is disabled".into());
    };
    if !path.exists() {
        return Err("no database".into());
    }
    let store = Store::open(path).map_err(|e| e.to_string())?;
    let sources = sources(&store);
    if sources.is_empty() {
        return Err("no config backup in the database".into());
    }
    let settings = Settings::from_flags(flags);
    match plugin {
        Some(plugin) => plugin.config_of(sources, &settings),
        None => Config::from_sources(sources, &settings),
    }
    .map_err(|e| e.to_string())
}
