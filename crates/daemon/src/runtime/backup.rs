//! `--config_enable_backup`: every source's raw text is kept in the store
//! (`configurations/config_persistence.<source>`) after each successful load, and a
//! daemon whose config cannot be read at start-up starts from that copy instead of
//! exiting.

use crate::config::{Config, Settings, Source};
use oxquery_flags::{Flags, flag};
use oxquery_store::{Domain, Store};
use std::path::Path;

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

/// The config kept in the database named by `flags`, if there is a usable one.
pub(super) fn restore(flags: &Flags) -> Result<Config, String> {
    if flags.get(flag::disable_database) {
        return Err("the database is disabled".into());
    }
    let path = Path::new(flags.get(flag::database_path));
    if !path.exists() {
        return Err("no database".into());
    }
    let store = Store::open(path).map_err(|e| e.to_string())?;
    let sources = sources(&store);
    if sources.is_empty() {
        return Err("no config backup in the database".into());
    }
    Config::from_sources(sources, &Settings::from_flags(flags)).map_err(|e| e.to_string())
}
