//! `yara_events`: files that `file_events`' watches see created, written or moved in,
//! scanned with the YARA signature groups the config's `yara.file_paths` maps to their
//! category (`yara.signatures`: group → rule files, relative names under
//! `/etc/osquery/yara/`). One row per such event, as osquery: a file matching nothing
//! has `count` 0. Files are read whole through `safe_read` (at most `--read_max`
//! bytes); a file that cannot be read gives a row with `count` 0 and a log line.

use crate::{EventRow, EventsConfig};
use oxquery_sys::inotify::{FileAction, FileEvent};
use oxquery_sys::safe_read::Policy;
use oxquery_sys::yara::{self, Rules, Summary};
pub use oxquery_table::scan_events as generate;
use oxquery_table::table;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

table! {
    name: "yara_events",
    description: "YARA matches in files created, written or moved in under the config's file_paths, for the categories yara.file_paths maps to signature groups (needs --enable_file_events).",
    attributes: [EVENT_BASED],
    columns: {
        target_path: Text [] "The file scanned",
        category: Text [] "The file_paths category the file belongs to",
        action: Text [] "The file event that caused the scan: CREATED, UPDATED or MOVED_TO",
        matches: Text [] "Identifiers of the matching rules, comma-separated",
        count: Integer [] "Number of matching rules",
        strings: Text [] "Matched pattern identifiers with their hexadecimal offsets ($a:1f), comma-separated",
        tags: Text [] "Tags of the matching rules, comma-separated",
        time: BigInt [] "Time the file event was read (unix seconds)",
        eid: Text [HIDDEN] "Event id",
        transaction_id: BigInt [HIDDEN] "The inotify cookie of a MOVED_TO; 0 otherwise",
    },
    examples: ["select target_path, matches, strings from yara_events where count > 0"],
}

/// The publisher feeding this table.
pub const PUBLISHER: &str = "inotify";

/// Each category's compiled signature groups.
pub struct CategoryRules {
    rules: HashMap<String, Rules>,
    read_max: u64,
}

impl CategoryRules {
    /// Compiles, for each category of `yara.file_paths`, the rule files of its groups
    /// into one rule set. A category whose rules do not compile (or name no file) is
    /// left out with a warning.
    pub fn compile(config: &EventsConfig, read_max: u64) -> CategoryRules {
        let mut rules = HashMap::new();
        let policy = Policy::user_file(read_max);
        let yara = config.yara.as_ref();
        let signatures = string_lists(yara.and_then(|y| y.get("signatures")));
        for (category, groups) in string_lists(yara.and_then(|y| y.get("file_paths"))) {
            let mut files: Vec<PathBuf> = Vec::new();
            for group in &groups {
                match signatures.get(group) {
                    Some(names) => files.extend(names.iter().map(|n| yara::rule_file(n))),
                    None => log::warn!(
                        "yara.file_paths: category {category} names the unknown signature group {group}"
                    ),
                }
            }
            if files.is_empty() {
                log::warn!("yara.file_paths: category {category} has no rule files");
                continue;
            }
            match yara::compile_files(&files, &policy) {
                Ok(compiled) => {
                    rules.insert(category.clone(), compiled);
                }
                Err(e) => log::warn!("YARA rules of category {category} do not compile: {e}"),
            }
        }
        CategoryRules { rules, read_max }
    }

    /// The categories that have rules, sorted.
    pub fn categories(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.rules.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Whether any category has rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The row of `event` when it is one to scan (a file created, written or moved in,
    /// in a category with rules).
    pub fn row(&self, event: &FileEvent) -> Option<EventRow> {
        if event.is_dir
            || !matches!(
                event.action,
                FileAction::Created | FileAction::Updated | FileAction::MovedTo
            )
        {
            return None;
        }
        let rules = self.rules.get(&*event.category)?;
        let summary = match yara::scan_file(rules, &event.path, &Policy::user_file(self.read_max)) {
            Ok(summary) => summary,
            Err(e) => {
                log::info!("yara_events: not scanned {}: {e}", event.path.display());
                Summary::default()
            }
        };
        let mut row = EventRow::new(&SPEC);
        row.set(Col::target_path, event.path.as_path());
        row.set(Col::category, &*event.category);
        row.set(Col::action, event.action.as_str());
        row.set(Col::matches, summary.matches);
        row.set(Col::count, summary.count);
        row.set(Col::strings, summary.strings);
        row.set(Col::tags, summary.tags);
        row.set(Col::time, event.time as i64);
        row.set(Col::transaction_id, i64::from(event.cookie));
        Some(row)
    }
}

/// An object of string lists (`{"key": ["a", "b"]}`) from the `yara` config; other
/// shapes are skipped with a log line.
fn string_lists(value: Option<&serde_json::Value>) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let Some(object) = value.and_then(|v| v.as_object()) else {
        return out;
    };
    for (key, list) in object {
        match list.as_array() {
            Some(items) => {
                let strings = items.iter().filter_map(|i| i.as_str()).map(String::from);
                out.insert(key.clone(), strings.collect());
            }
            None => log::warn!("yara config: {key} is not a list"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Value;
    use std::fs;
    use std::path::Path;
    use std::sync::Arc;

    fn event(path: &Path, category: &str, action: FileAction) -> FileEvent {
        FileEvent {
            path: path.to_path_buf(),
            category: Arc::from(category),
            action,
            cookie: 0,
            time: 1_700_000_000,
            is_dir: false,
            from_scan: false,
        }
    }

    fn config(rules_dir: &Path) -> EventsConfig {
        let a = rules_dir.join("a.yar");
        let b = rules_dir.join("b.yar");
        fs::write(
            &a,
            "rule evil : bad { strings: $a = \"EVIL\" condition: $a }",
        )
        .unwrap();
        fs::write(&b, "rule marker { strings: $m = \"MARK\" condition: $m }").unwrap();
        let yara = serde_json::json!({
            "signatures": {
                "g1": [a.display().to_string()],
                "g2": [b.display().to_string()],
                "broken": [rules_dir.join("missing.yar").display().to_string()],
                "odd": "not a list",
            },
            "file_paths": {
                "both": ["g1", "g2"],
                "one": ["g2"],
                "bad": ["broken"],
                "unknown": ["nope"],
            },
        });
        EventsConfig {
            yara: Some(yara),
            ..EventsConfig::default()
        }
    }

    #[test]
    fn categories_scan_with_their_groups_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let rules = CategoryRules::compile(&config(tmp.path()), 1 << 20);
        assert_eq!(rules.categories(), ["both", "one"]);
        let f = tmp.path().join("f");
        fs::write(&f, b"..EVIL..MARK").unwrap();
        let row = rules
            .row(&event(&f, "both", FileAction::Updated))
            .unwrap()
            .into_values();
        let cell = |c: Col| row[c as usize].clone();
        assert_eq!(cell(Col::matches), Value::from("evil,marker"));
        assert_eq!(cell(Col::count), Value::Integer(2));
        assert_eq!(cell(Col::strings), Value::from("$a:2,$m:8"));
        assert_eq!(cell(Col::tags), Value::from("bad"));
        assert_eq!(cell(Col::action), Value::from("UPDATED"));
        assert_eq!(cell(Col::target_path), Value::from(f.as_path()));
        let row = rules
            .row(&event(&f, "one", FileAction::MovedTo))
            .unwrap()
            .into_values();
        assert_eq!(row[Col::matches as usize], Value::from("marker"));
        // Not scanned: other actions, other categories, a category whose rules failed.
        assert!(rules.row(&event(&f, "both", FileAction::Deleted)).is_none());
        assert!(rules.row(&event(&f, "both", FileAction::Opened)).is_none());
        assert!(rules.row(&event(&f, "nope", FileAction::Created)).is_none());
        assert!(rules.row(&event(&f, "bad", FileAction::Created)).is_none());
        // A file over --read_max, or gone: a row with no match.
        let mut small = CategoryRules::compile(&config(tmp.path()), 1 << 20);
        small.read_max = 4;
        let row = small
            .row(&event(&f, "both", FileAction::Created))
            .unwrap()
            .into_values();
        assert_eq!(row[Col::count as usize], Value::Integer(0));
        fs::remove_file(&f).unwrap();
        let row = rules
            .row(&event(&f, "both", FileAction::Created))
            .unwrap()
            .into_values();
        assert_eq!(row[Col::count as usize], Value::Integer(0));
    }
}
