//! The `tls` config plugin: the whole config document from `--config_tls_endpoint`
//! (POST `{"node_key"}`), retried `--config_tls_max_attempts` times. (A backup for
//! outages, `--config_enable_backup`, is the daemon's, whatever the plugin.)

use std::sync::atomic::AtomicBool;

use serde_json::Value;

use crate::enroll::NodeKeys;

/// The name the fetched document goes by as a config source.
pub const SOURCE_NAME: &str = "tls";

/// What the config plugin flags say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSettings {
    /// `--config_tls_endpoint`.
    pub endpoint: String,
    /// `--config_tls_max_attempts`.
    pub max_attempts: u64,
}

/// Fetches the config text: the server's answer without the protocol's own
/// `node_invalid` member.
pub fn fetch_config(
    keys: &NodeKeys,
    settings: &ConfigSettings,
    stop: &AtomicBool,
) -> Result<String, String> {
    let mut answer = keys.post_with_key(
        &settings.endpoint,
        Value::Object(serde_json::Map::new()),
        false,
        settings.max_attempts,
        stop,
    )?;
    if let Some(map) = answer.as_object_mut() {
        map.remove("node_invalid");
    }
    Ok(answer.to_string())
}
