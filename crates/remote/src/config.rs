//! The `tls` config plugin: the whole config document from `--config_tls_endpoint`
//! (POST `{"node_key"}`), retried `--config_tls_max_attempts` times. With
//! `--config_enable_backup` the last config that was fetched is kept in the store, and
//! used when the server cannot be reached, so a restart during an outage still runs the
//! schedule it had.

use std::sync::atomic::AtomicBool;

use oxquery_store::Domain;
use serde_json::Value;

use crate::enroll::NodeKeys;

/// The store key of the backup (domain `configurations`).
pub const CONFIG_BACKUP: &str = "config_backup.tls";

/// What the config plugin flags say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSettings {
    /// `--config_tls_endpoint`.
    pub endpoint: String,
    /// `--config_tls_max_attempts`.
    pub max_attempts: u64,
    /// `--config_enable_backup`.
    pub backup: bool,
}

/// Where a fetched config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Server(String),
    /// The server failed (its error is the second member); this is the backup.
    Backup(String, String),
}

/// Fetches the config text: the server's answer without the protocol's own
/// `node_invalid` member, or, when that fails and backups are on, the last one fetched.
pub fn fetch_config(
    keys: &NodeKeys,
    settings: &ConfigSettings,
    stop: &AtomicBool,
) -> Result<Fetched, String> {
    let fetched = keys.post_with_key(
        &settings.endpoint,
        Value::Object(serde_json::Map::new()),
        false,
        settings.max_attempts,
        stop,
    );
    match fetched {
        Ok(mut answer) => {
            if let Some(map) = answer.as_object_mut() {
                map.remove("node_invalid");
            }
            let text = answer.to_string();
            if settings.backup {
                let store = keys.store();
                if let Err(e) = store.put(Domain::Configurations, CONFIG_BACKUP, text.as_bytes()) {
                    log::warn!("Cannot back up the config: {e}");
                }
            }
            Ok(Fetched::Server(text))
        }
        Err(e) if settings.backup => {
            let backup = keys
                .store()
                .get_text(Domain::Configurations, CONFIG_BACKUP)
                .ok()
                .flatten();
            match backup {
                Some(text) => Ok(Fetched::Backup(text, e)),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}
