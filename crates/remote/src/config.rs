//! The `tls` config plugin: the whole config document from `--config_tls_endpoint`
//! (POST `{"node_key"}`, or a GET under the node with `--tls_node_api`), retried
//! `--config_tls_max_attempts` times. (A backup for outages, `--config_enable_backup`,
//! is the daemon's, whatever the plugin.)

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
/// `node_invalid` member. With `--tls_node_api` the request is a GET and the answer
/// carries the config in its `config` member (JSON text, or the object itself).
pub fn fetch_config(
    keys: &NodeKeys,
    settings: &ConfigSettings,
    stop: &AtomicBool,
) -> Result<String, String> {
    if keys.node_api() {
        let answer = keys.get_with_key(&settings.endpoint, settings.max_attempts, stop)?;
        return node_api_config(answer);
    }
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

/// The config a node API answer embeds.
fn node_api_config(answer: Value) -> Result<String, String> {
    match answer.get("config") {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(config @ Value::Object(_)) => Ok(config.to_string()),
        Some(other) => Err(format!(
            "the node API answer's config is not a JSON object or text: {other}"
        )),
        None => Err("the node API answer has no config member".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn node_api_answers_embed_the_config_as_text_or_object() {
        assert_eq!(
            node_api_config(json!({"config": "{\"schedule\":{}}"})).unwrap(),
            r#"{"schedule":{}}"#
        );
        assert_eq!(
            node_api_config(json!({"config": {"options": {"a": 1}}})).unwrap(),
            r#"{"options":{"a":1}}"#
        );
        assert!(node_api_config(json!({"schedule": {}})).is_err());
        assert!(node_api_config(json!({"config": 3})).is_err());
    }
}
