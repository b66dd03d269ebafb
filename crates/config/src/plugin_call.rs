//! The `filesystem` config plugin answering a plugin call, as osquery's answers the
//! extension manager's `call("config", "filesystem", request)` (`ConfigPlugin::call`):
//!
//! * `{"action": "genConfig"}`: one row, each source's path → its text, read now
//!   (`<config_path>` and `<config_path>.d/*.conf`);
//! * `{"action": "genPack", "name", "value"}`: one row, the pack's name → the text of the
//!   pack file `value` names;
//! * `{"action": "option", "name"}`: one row `{"name", "value"}`, the flag's value.
//!
//! Both programs hand these answers to their extension manager.

use std::collections::BTreeMap;
use std::path::Path;

use crate::source::read_text;

/// One row of a plugin call's answer.
pub type PluginRow = BTreeMap<String, String>;

/// Answers `request` to the `filesystem` config plugin of a program reading
/// `config_path`, whose flags are `flags`: the rows, or osquery's failure message.
pub fn filesystem_config_call(
    config_path: &Path,
    flags: &[oxquery_table::FlagValue],
    request: &BTreeMap<String, String>,
) -> Result<Vec<PluginRow>, String> {
    let field = |key: &str| request.get(key).map(String::as_str);
    match field("action") {
        None => Err("Config plugins require an action".to_owned()),
        Some("genConfig") => {
            let shown = config_path.to_string_lossy();
            if !config_path.is_file() {
                return Err(format!("config file does not exist: {shown}"));
            }
            let sources = crate::read_sources(config_path).map_err(|e| e.to_string())?;
            Ok(vec![
                sources.into_iter().map(|s| (s.name, s.content)).collect(),
            ])
        }
        Some("genPack") => {
            let (Some(name), Some(value)) = (field("name"), field("value")) else {
                return Err("Missing name or value".to_owned());
            };
            let pack = read_text(Path::new(value))
                .map_err(|e| format!("Cannot read pack file: {value} ({e})"))?;
            Ok(vec![PluginRow::from([(name.to_owned(), pack)])])
        }
        Some("option") => {
            let Some(name) = field("name") else {
                return Err("Missing option name".to_owned());
            };
            let value = flags
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.value.clone())
                .unwrap_or_default();
            Ok(vec![PluginRow::from([
                ("name".to_owned(), name.to_owned()),
                ("value".to_owned(), value),
            ])])
        }
        Some(other) => Err(format!("Config plugin action unknown: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_filesystem_plugin_answers_from_the_files_as_they_are_now() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("osquery.conf");
        std::fs::write(&main, r#"{"schedule": {}}"#).unwrap();
        std::fs::create_dir(dir.path().join("osquery.conf.d")).unwrap();
        let extra = dir.path().join("osquery.conf.d/extra.conf");
        std::fs::write(&extra, r#"{"options": {}}"#).unwrap();
        let pack = dir.path().join("pack.conf");
        std::fs::write(&pack, r#"{"queries": {}}"#).unwrap();
        let flags = vec![oxquery_table::FlagValue {
            name: "verbose".to_owned(),
            ty: "bool".to_owned(),
            description: String::new(),
            default_value: "false".to_owned(),
            value: "true".to_owned(),
            shell_only: false,
        }];

        let config = filesystem_config_call(&main, &flags, &request(&[("action", "genConfig")]));
        assert_eq!(
            config.unwrap(),
            vec![PluginRow::from([
                (main.display().to_string(), r#"{"schedule": {}}"#.to_owned()),
                (extra.display().to_string(), r#"{"options": {}}"#.to_owned()),
            ])]
        );
        let packed = filesystem_config_call(
            &main,
            &flags,
            &request(&[
                ("action", "genPack"),
                ("name", "p"),
                ("value", &pack.display().to_string()),
            ]),
        );
        assert_eq!(
            packed.unwrap(),
            vec![PluginRow::from([(
                "p".to_owned(),
                r#"{"queries": {}}"#.to_owned()
            )])]
        );
        let option = filesystem_config_call(
            &main,
            &flags,
            &request(&[("action", "option"), ("name", "verbose")]),
        );
        assert_eq!(option.unwrap()[0]["value"], "true");

        // osquery's refusals.
        let none = filesystem_config_call(&main, &flags, &request(&[]));
        assert_eq!(none.unwrap_err(), "Config plugins require an action");
        let half = filesystem_config_call(&main, &flags, &request(&[("action", "genPack")]));
        assert_eq!(half.unwrap_err(), "Missing name or value");
        let odd = filesystem_config_call(&main, &flags, &request(&[("action", "shout")]));
        assert_eq!(odd.unwrap_err(), "Config plugin action unknown: shout");
        let gone = dir.path().join("gone.conf");
        let missing = filesystem_config_call(&gone, &flags, &request(&[("action", "genConfig")]));
        assert_eq!(
            missing.unwrap_err(),
            format!("config file does not exist: {}", gone.display())
        );
    }
}
