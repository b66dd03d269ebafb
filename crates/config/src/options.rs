//! The `options` key: flag values set by the config.

use super::ConfigError;
use super::source::kind;
use oxquery_flags::{FlagKind, Flags};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// Names the config may set without them being flags (read by extensions and
/// `osquery_flags`-style tooling).
pub const CUSTOM_PREFIX: &str = "custom_";

/// Reads one source's `options`. Kept: flags that may be set from a config, and
/// `custom_` names. Unknown names and command-line-only flags are dropped with a warning,
/// as osquery does (old configs carry retired option names; refusing them would stop a
/// daemon that osquery runs). A value of the wrong type for its flag is an error.
pub(crate) fn parse_options(
    origin: &str,
    value: &Json,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Json>, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        message,
    };
    let Some(map) = value.as_object() else {
        return Err(invalid(format!(
            "options: must be an object, not {}",
            kind(value)
        )));
    };
    let mut kept = BTreeMap::new();
    for (name, value) in map {
        let mut warn = |message: String| {
            log::warn!("{message}");
            warnings.push(message);
        };
        let Some(text) = option_text(value) else {
            warn(format!(
                "Cannot use the value of option {name} ({})",
                kind(value)
            ));
            continue;
        };
        // osquery skips empty values rather than clearing the flag.
        if text.is_empty() || name.is_empty() {
            continue;
        }
        if name.starts_with(CUSTOM_PREFIX) {
            kept.insert(name.clone(), value.clone());
            continue;
        }
        let Some((_, def)) = oxquery_flags::resolve(name) else {
            warn(format!(
                "Cannot set unknown or invalid flag: {name} (in {origin})"
            ));
            continue;
        };
        if def.kind == FlagKind::Cli {
            warn(format!(
                "The command-line-only flag --{name} cannot be set from the config (in {origin}); \
                 it is ignored: give it on the command line or in a flagfile"
            ));
            continue;
        }
        let legal = oxquery_flags::parse_value(def.ty, &text).is_some()
            && (def.choices.is_empty() || def.choices.contains(&text.as_str()));
        if !legal {
            return Err(invalid(format!(
                "options.{name}: {text:?} is not a valid {} value for this flag",
                def.ty.name()
            )));
        }
        kept.insert(name.clone(), value.clone());
    }
    Ok(kept)
}

/// The flag text of an option value: strings as they are, booleans and numbers as
/// written, arrays and objects as compact JSON. `None` for `null`.
pub fn option_text(value: &Json) -> Option<String> {
    match value {
        Json::Null => None,
        Json::String(s) => Some(s.clone()),
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(n) => Some(n.to_string()),
        Json::Array(_) | Json::Object(_) => Some(value.to_string()),
    }
}

/// Sets every option on `flags` (the config overrides the command line, as in osquery).
/// `custom_` options are not flags and are skipped. Returns warnings for values the flag
/// set refused (cannot happen for options that passed parsing).
pub fn apply_options(options: &BTreeMap<String, Json>, flags: &mut Flags) -> Vec<String> {
    let mut warnings = Vec::new();
    for (name, value) in options {
        if name.starts_with(CUSTOM_PREFIX) {
            continue;
        }
        let Some(text) = option_text(value) else {
            continue;
        };
        if let Err(e) = flags.set(name, &text) {
            warnings.push(format!("Config option {name}: {e}"));
        }
    }
    warnings
}

/// Merges one source's options over the earlier ones (later sources win).
pub(crate) fn merge_options(into: &mut BTreeMap<String, Json>, from: BTreeMap<String, Json>) {
    into.extend(from);
}

/// The options object of a document, if any (absent or `null` → none).
pub(crate) fn options_value(doc: &Map<String, Json>) -> Option<&Json> {
    doc.get("options").filter(|v| !v.is_null())
}
