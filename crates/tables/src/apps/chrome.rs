//! What the Chromium-family tables share: finding every user's browser profiles, the
//! extensions in (and referenced by) each profile, and reading their `manifest.json`.
//!
//! Used by `chrome_extensions` and `chrome_extension_content_scripts` (one row per
//! extension, or per content script of one), and by `opera_extensions` for the manifest
//! reading. The walk follows osquery's (`tables/applications/chrome/utils.cpp`):
//!
//! - profile roots per browser under each home ([`BROWSERS`]); a root that holds a
//!   `Preferences` or `Secure Preferences` file is itself a profile (Opera), otherwise
//!   each such subdirectory is one (`Default`, `Profile 1`, ...);
//! - a profile's extensions are the `Extensions/<id>/<version>` directories with a
//!   readable `manifest.json` (unreferenced at first), then every path the preferences'
//!   `extensions.settings` (Opera: `extensions.opsettings`) name: one found in the
//!   listing becomes referenced, another (an unpacked extension elsewhere) is added as
//!   referenced when its manifest can be read;
//! - the profile's name is `profile.name` of the preferences; a profile without one is
//!   skipped, except Opera's, which has none.
//!
//! Where this differs from osquery, on purpose: a profile with only one of its two
//! preferences files is read (osquery drops a profile unless both can be read, which
//! loses profiles written by older browsers); Edge (stable, beta, dev) and Yandex's
//! stable channel are searched on Linux too; and a non-scalar item of a permissions
//! array (an object) is left out of the joined text instead of becoming an empty item.
//!
//! Every file here is under a user's control (a FIFO, a link to a device, a huge or
//! corrupted file): it is read through the safe opener with the account's permissions,
//! and a file that cannot be read or parsed drops its profile (the preferences) or its
//! extension (the manifest), with a log saying why; JSON nesting is bounded by the
//! parser's recursion limit.

use crate::common;
use oxquery_sys::digest::{Hasher, Wanted};
use oxquery_sys::safe_read::Policy;
use oxquery_sys::users::Passwd;
use oxquery_table::QueryContext;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

/// A Chromium-based browser's profile root, relative to a home.
#[derive(Debug, Clone, Copy)]
pub struct Browser {
    /// The `browser_type` value.
    pub name: &'static str,
    pub root: &'static str,
}

/// The profile roots searched in each home. osquery's Linux list, plus three it lacks
/// on Linux although the browsers ship there (Edge stable/beta/dev, named as osquery
/// names Edge elsewhere, and Yandex's stable channel beside its beta).
pub const BROWSERS: &[Browser] = &[
    Browser {
        name: "chrome",
        root: ".config/google-chrome",
    },
    Browser {
        name: "chrome_beta",
        root: ".config/google-chrome-beta",
    },
    Browser {
        name: "chrome_dev",
        root: ".config/google-chrome-unstable",
    },
    Browser {
        name: "brave",
        root: ".config/BraveSoftware/Brave-Browser",
    },
    Browser {
        name: "chromium",
        root: ".config/chromium",
    },
    Browser {
        name: "chromium",
        root: "snap/chromium/common/chromium",
    },
    Browser {
        name: "yandex",
        root: ".config/yandex-browser",
    },
    Browser {
        name: "yandex",
        root: ".config/yandex-browser-beta",
    },
    Browser {
        name: "opera",
        root: ".config/opera",
    },
    Browser {
        name: "vivaldi",
        root: ".config/vivaldi",
    },
    Browser {
        name: "edge",
        root: ".config/microsoft-edge",
    },
    Browser {
        name: "edge_beta",
        root: ".config/microsoft-edge-beta",
    },
    Browser {
        name: "edge_dev",
        root: ".config/microsoft-edge-dev",
    },
    Browser {
        name: "island",
        root: ".config/island",
    },
];

const PREFERENCES: [&str; 2] = ["Preferences", "Secure Preferences"];
const EXTENSIONS_DIR: &str = "Extensions";
const MANIFEST: &str = "manifest.json";
/// The prefix of a localized manifest string: `__MSG_name__`.
const MESSAGE_PREFIX: &str = "__MSG_";

/// One browser profile of one user.
#[derive(Debug)]
pub struct Profile<'u> {
    pub user: &'u Passwd,
    pub browser: &'static str,
    /// The profile directory, links resolved where they resolve.
    pub path: PathBuf,
    /// `profile.name` from the preferences (empty for Opera, which has none).
    pub name: String,
    /// The parsed `Preferences` and `Secure Preferences` (`Null` when absent).
    preferences: [Value; 2],
}

/// An extension's settings in its profile's preferences.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The key of its entry in `extensions.settings`: the id the browser uses.
    pub id: String,
    pub from_webstore: Option<String>,
    pub state: Option<String>,
    /// Microseconds since 1601-01-01 (WebKit time), as written.
    pub install_time: Option<String>,
}

/// One extension directory with its manifest.
#[derive(Debug)]
pub struct Extension {
    /// The version directory (`.../Extensions/<id>/<version>` or an unpacked one).
    pub path: PathBuf,
    /// The manifest's bytes, for `manifest_hash`.
    pub manifest_bytes: Vec<u8>,
    pub manifest: Map<String, Value>,
    /// Whether the profile's preferences name it.
    pub referenced: bool,
    /// Its settings in the preferences, when it is referenced and they were found.
    pub settings: Option<Settings>,
}

/// Resolves links where the path resolves (osquery's `fs::canonical` or the path).
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The subdirectories of `dir` (links followed), sorted; none when it cannot be listed.
pub fn subdirectories(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn is_profile(dir: &Path) -> bool {
    PREFERENCES.iter().any(|f| dir.join(f).exists())
}

/// The profile directories of `browser` under `home`.
fn profile_dirs(home: &Path, browser: &Browser) -> Vec<PathBuf> {
    let root = canonical(&home.join(browser.root));
    if is_profile(&root) {
        return vec![root];
    }
    subdirectories(&root)
        .into_iter()
        .map(|d| canonical(&d))
        .filter(|d| is_profile(d))
        .collect()
}

/// Parses a whole JSON document; `None`, with a warning naming `path`, when it is not JSON
/// (truncated, corrupted, nested past the parser's limit).
pub fn parse_json(ctx: &QueryContext, path: &Path, bytes: &[u8]) -> Option<Value> {
    serde_json::from_slice(bytes)
        .map_err(|e| {
            log::warn!(
                "Table {}: {} is not valid JSON: {e}",
                ctx.spec().name,
                path.display()
            );
        })
        .ok()
}

/// A JSON scalar as osquery's property tree renders it (`true`, `1`, the string);
/// `None` for null, objects and arrays.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The scalar at a dotted `path` (`background.persistent`) in `object`.
pub fn text_at(object: &Map<String, Value>, path: &str) -> Option<String> {
    let mut parts = path.split('.');
    let mut value = object.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    scalar_text(value)
}

/// Reads and parses a preferences file: `Null` when it does not exist, `None` (reported)
/// when it cannot be read or is not a JSON object.
fn read_preferences(ctx: &QueryContext, path: &Path, policy: &Policy) -> Option<Value> {
    let bytes = match oxquery_sys::safe_read::read_bounded(path, policy) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Some(Value::Null),
        Err(e) => {
            common::report_read_error(ctx, path, &e);
            return None;
        }
    };
    let value = parse_json(ctx, path, &bytes)?;
    if !value.is_object() {
        log::warn!(
            "Table {}: {} is not a JSON object",
            ctx.spec().name,
            path.display()
        );
        return None;
    }
    Some(value)
}

/// The `extensions.settings` (or Opera's `extensions.opsettings`) object of a parsed
/// preferences file.
fn extension_settings(preferences: &Value) -> Option<&Map<String, Value>> {
    let extensions = preferences.get("extensions")?;
    extensions
        .get("settings")
        .or_else(|| extensions.get("opsettings"))?
        .as_object()
}

/// The extension directory an entry's `path` names: relative ones are under the
/// profile's `Extensions` folder.
fn settings_path(profile: &Path, entry: &Value) -> Option<PathBuf> {
    let path = Path::new(entry.get("path")?.as_str()?);
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        profile.join(EXTENSIONS_DIR).join(path)
    };
    Some(canonical(&full))
}

/// Reads and parses the manifest in `dir`: `None` (reported unless it is simply absent)
/// when it cannot be read or is not a JSON object.
pub fn read_manifest(
    ctx: &QueryContext,
    dir: &Path,
    policy: &Policy,
) -> Option<(Vec<u8>, Map<String, Value>)> {
    let path = dir.join(MANIFEST);
    let bytes = common::read_file(ctx, &path, policy)?;
    match parse_json(ctx, &path, &bytes)? {
        Value::Object(manifest) => Some((bytes, manifest)),
        _ => {
            log::warn!(
                "Table {}: {} is not a JSON object",
                ctx.spec().name,
                path.display()
            );
            None
        }
    }
}

/// The `Extensions/<id>/<version>` directories under `extensions`, sorted.
pub fn version_dirs(extensions: &Path) -> Vec<PathBuf> {
    subdirectories(extensions)
        .iter()
        .flat_map(|id| subdirectories(id))
        .map(|d| canonical(&d))
        .collect()
}

impl<'u> Profile<'u> {
    /// Reads the profile in `path` (its preferences and name); `None`, reported, when a
    /// preferences file cannot be read or parsed, or a non-Opera profile has no name.
    fn open(
        ctx: &QueryContext,
        user: &'u Passwd,
        browser: &'static str,
        path: PathBuf,
    ) -> Option<Profile<'u>> {
        let policy = common::home_file_policy(ctx, user);
        let [first, second] = PREFERENCES.map(|f| read_preferences(ctx, &path.join(f), &policy));
        let preferences = [first?, second?];
        let name = preferences
            .iter()
            .find_map(|p| p.get("profile")?.get("name")?.as_str())
            .filter(|n| !n.is_empty())
            .map(str::to_owned);
        let name = match name {
            Some(n) => n,
            None if browser == "opera" => String::new(),
            None => {
                log::info!(
                    "Table {}: the profile {} has no name in its preferences; skipped",
                    ctx.spec().name,
                    path.display()
                );
                return None;
            }
        };
        Some(Profile {
            user,
            browser,
            path,
            name,
            preferences,
        })
    }

    /// The extension directories the preferences name, each with its settings: from
    /// `Preferences` first, then `Secure Preferences` (the first entry naming a
    /// directory gives its settings). One pass, so each path is resolved once.
    fn referenced(&self) -> BTreeMap<PathBuf, Settings> {
        let mut named = BTreeMap::new();
        for settings in self.preferences.iter().filter_map(extension_settings) {
            for (id, entry) in settings {
                let Some(dir) = settings_path(&self.path, entry) else {
                    continue;
                };
                named.entry(dir).or_insert_with(|| {
                    let field = |name: &str| entry.get(name).and_then(scalar_text);
                    Settings {
                        id: id.clone(),
                        from_webstore: field("from_webstore"),
                        state: field("state"),
                        install_time: field("install_time"),
                    }
                });
            }
        }
        named
    }

    /// The profile's extensions: the unreferenced ones by path, then the referenced ones
    /// by path (osquery's order), each with a readable JSON-object manifest.
    pub fn extensions(&self, ctx: &QueryContext) -> Vec<Extension> {
        let policy = common::home_file_policy(ctx, self.user);
        let mut listed: BTreeMap<PathBuf, Extension> = BTreeMap::new();
        for dir in version_dirs(&self.path.join(EXTENSIONS_DIR)) {
            if ctx.is_stopped() {
                return Vec::new();
            }
            if let Some((manifest_bytes, manifest)) = read_manifest(ctx, &dir, &policy) {
                let extension = Extension {
                    path: dir.clone(),
                    manifest_bytes,
                    manifest,
                    referenced: false,
                    settings: None,
                };
                listed.insert(dir, extension);
            }
        }
        let mut referenced: Vec<Extension> = Vec::new();
        for (dir, settings) in self.referenced() {
            if ctx.is_stopped() {
                return Vec::new();
            }
            let extension = match listed.remove(&dir) {
                Some(e) => e,
                // Outside the profile (an unpacked extension); components built into the
                // browser have no manifest on disk and are silently absent.
                None => match read_manifest(ctx, &dir, &policy) {
                    Some((manifest_bytes, manifest)) => Extension {
                        path: dir,
                        manifest_bytes,
                        manifest,
                        referenced: false,
                        settings: None,
                    },
                    None => continue,
                },
            };
            referenced.push(Extension {
                referenced: true,
                settings: Some(settings),
                ..extension
            });
        }
        listed.into_values().chain(referenced).collect()
    }
}

/// Calls `visit` with every Chromium-family profile of `users`, in user, browser and
/// directory order.
pub fn for_each_profile<'u>(
    ctx: &QueryContext,
    users: &'u [Passwd],
    mut visit: impl FnMut(&Profile<'u>),
) {
    for user in users {
        let home = user.home();
        for browser in BROWSERS {
            for dir in profile_dirs(&home, browser) {
                if ctx.is_stopped() {
                    return;
                }
                if let Some(profile) = Profile::open(ctx, user, browser.name, dir) {
                    visit(&profile);
                }
            }
        }
    }
}

/// The extension id Chrome derives from a manifest `key` (a base64 public key): the
/// first 16 bytes of the SHA-256 of the decoded key in hex, each digit `0`-`f` written as
/// `a`-`p`. `None` when the key is not base64.
pub fn identifier_from_key(key: &str) -> Option<String> {
    use base64::Engine;
    let compact: String = key.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .ok()
        .filter(|d| !d.is_empty())?;
    let hex = sha256_hex(&decoded);
    Some(
        hex.bytes()
            .take(32)
            .map(|d| {
                let v = (d as char).to_digit(16).unwrap_or(0) as u8;
                char::from(b'a' + v)
            })
            .collect(),
    )
}

/// SHA-256 of `bytes` in lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut hasher = Hasher::new(Wanted {
        sha256: true,
        ..Wanted::default()
    });
    hasher.update(bytes);
    hasher.finish().sha256.unwrap_or_default()
}

/// WebKit time (microseconds since 1601-01-01, as text) to Unix seconds; `None` when it
/// is not a number or falls before 1970.
pub fn webkit_to_unix(text: &str) -> Option<i64> {
    let micros: i64 = text.trim().parse().ok()?;
    let unix = micros / 1_000_000 - 11_644_473_600;
    (unix >= 0).then_some(unix)
}

/// The localized strings of an extension: its `_locales/<locale>/messages.json`, with
/// the locale from `default_locale`, else `current_locale`, else `en` (osquery's choice).
#[derive(Debug, Default)]
pub struct Messages {
    messages: Option<Map<String, Value>>,
}

impl Messages {
    /// Loads the messages of `extension` (none when no manifest string needs them, or
    /// the file cannot be read or parsed; that is logged).
    pub fn load(ctx: &QueryContext, extension: &Extension, policy: &Policy) -> Messages {
        let needs = extension
            .manifest
            .values()
            .any(|v| v.as_str().is_some_and(|s| s.starts_with(MESSAGE_PREFIX)));
        if !needs {
            return Messages::default();
        }
        let locale = ["default_locale", "current_locale"]
            .iter()
            .find_map(|k| text_at(&extension.manifest, k))
            .unwrap_or_else(|| "en".to_owned());
        // A locale names one directory, never a path.
        if locale.contains('/') || locale == ".." {
            return Messages::default();
        }
        let path = extension
            .path
            .join("_locales")
            .join(&locale)
            .join("messages.json");
        let messages = common::read_file(ctx, &path, policy)
            .and_then(|bytes| parse_json(ctx, &path, &bytes))
            .and_then(|v| match v {
                Value::Object(m) => Some(m),
                _ => None,
            });
        Messages { messages }
    }

    /// `text` with a `__MSG_name__` reference replaced by its message (names compare
    /// without case, as Chrome's do); other text, or a name without a message, as is.
    pub fn localize(&self, text: String) -> String {
        let Some(rest) = text.strip_prefix(MESSAGE_PREFIX) else {
            return text;
        };
        let name = rest.strip_suffix("__").unwrap_or(rest);
        let Some(messages) = &self.messages else {
            return text;
        };
        messages
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.get("message")?.as_str())
            .map(str::to_owned)
            .unwrap_or(text)
    }
}

/// A manifest property as text, localized: `None` when the manifest does not have it.
pub fn property(manifest: &Map<String, Value>, messages: &Messages, path: &str) -> Option<String> {
    text_at(manifest, path).map(|t| messages.localize(t))
}

/// One content script of an extension: a `content_scripts` entry's match pattern and
/// script, one pair per match and script of entries that have both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentScript {
    pub script: String,
    pub matches: String,
}

/// The content scripts the manifest declares (osquery's pairs: every `matches` pattern
/// with every `js` file of the same entry).
pub fn content_scripts(manifest: &Map<String, Value>) -> Vec<ContentScript> {
    let Some(entries) = manifest.get("content_scripts").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries {
        let list = |k: &str| entry.get(k).and_then(Value::as_array);
        let (Some(matches), Some(scripts)) = (list("matches"), list("js")) else {
            continue;
        };
        for m in matches.iter().filter_map(scalar_text) {
            for s in scripts.iter().filter_map(scalar_text) {
                out.push(ContentScript {
                    script: s,
                    matches: m.clone(),
                });
            }
        }
    }
    out
}

/// Test support shared by the Chromium-family tables: realistic profiles in a home.
#[cfg(test)]
pub mod fixtures {
    use std::fs;
    use std::path::{Path, PathBuf};

    /// A DER-encoded RSA public key in base64 (made with `openssl genpkey`/`openssl pkey
    /// -pubout -outform DER`): what a manifest `key` holds.
    pub const KEY: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAqeVinlPc6/49wXWJV7jGdLdj9bOhJg+Z8CG5sS6D6gzWXi9BCwDvOs6gRY2JHPffpjJcyUheXx4563B5KEoclFlftwOkDuY04Y5gsTk1IUWIc8TpYisx5bNmDiFjunMKZIxi0xQNwHu7phy2T98jT68iKJBY4u3s6B7Xj+WoRJ9LKuPhSkycLN51hQeCtO57tC/2wFqyPQtb5NMqStTtCADZGYT/lb+UuItWZ6eiyYI1FdnJmHh0A+x8/WRMlUce6/Oc1nA/iOWfKdA1gfXxH7jGSOSyjAKojOdrUGTPBaIJytW4RfLkUQFPX41bDr+PiJkpBZIJYaGP6Pci6rKAZwIDAQAB";

    /// Writes `<profile>/Extensions/<id>/<version>/manifest.json` and returns the
    /// version directory.
    pub fn extension(profile: &Path, id: &str, version: &str, manifest: &str) -> PathBuf {
        let dir = profile.join("Extensions").join(id).join(version);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("manifest.json"), manifest).unwrap();
        dir
    }

    /// A way to make a hostile file at a path, and what the warning about it says.
    pub type Hostile = (&'static str, Box<dyn Fn(&Path)>);

    /// What any user can put where a table reads: a FIFO, a link to `/dev/zero`, a
    /// 10 GiB sparse file.
    pub fn hostile_files() -> Vec<Hostile> {
        vec![
            ("FIFO", Box::new(crate::common::testing::mkfifo)),
            (
                "character device",
                Box::new(|p: &Path| std::os::unix::fs::symlink("/dev/zero", p).unwrap()),
            ),
            (
                "read limit",
                Box::new(crate::common::testing::huge_sparse_file),
            ),
        ]
    }

    /// Writes `_locales/<locale>/messages.json` in an extension directory.
    pub fn messages(dir: &Path, locale: &str, json: &str) {
        let d = dir.join("_locales").join(locale);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("messages.json"), json).unwrap();
    }

    /// The manifest of an extension with a key, localized strings, permissions and
    /// content scripts (as the Web Store installs them).
    pub fn localized_manifest() -> String {
        format!(
            r#"{{
  "manifest_version": 2,
  "name": "__MSG_appName__",
  "description": "__MSG_appDesc__",
  "default_locale": "fr",
  "version": "1.2.3",
  "author": "Jane Doe",
  "update_url": "https://clients2.google.com/service/update2/crx",
  "background": {{"persistent": true, "scripts": ["bg.js"]}},
  "permissions": ["tabs", "storage", "https://*/*"],
  "optional_permissions": ["downloads"],
  "content_scripts": [
    {{"matches": ["https://*.example.com/*", "http://a.test/*"], "js": ["a.js", "b.js"]}},
    {{"matches": ["<all_urls>"], "css": ["only.css"]}},
    {{"matches": ["file:///*"], "js": ["c.js"]}}
  ],
  "key": "{KEY}"
}}"#
        )
    }

    /// A plain manifest: no key, no locale, no background.
    pub const PLAIN_MANIFEST: &str = r#"{"manifest_version": 3, "name": "Plain", "version": "0.1", "description": "Nothing localized"}"#;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifier_of_a_known_key_is_chromes_mapping() {
        // The mapping on a digest computed here: 0-f become a-p.
        let id = identifier_from_key(fixtures::KEY).unwrap();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| (b'a'..=b'p').contains(&b)), "{id}");
        assert_eq!(identifier_from_key("not base64 !!"), None);
        assert_eq!(identifier_from_key(""), None);
    }

    #[test]
    fn webkit_time_converts_and_rejects_garbage() {
        assert_eq!(webkit_to_unix("13300000000000000"), Some(1_655_526_400));
        assert_eq!(webkit_to_unix("11644473600000000"), Some(0));
        assert_eq!(webkit_to_unix("1"), None);
        assert_eq!(webkit_to_unix("abc"), None);
        assert_eq!(webkit_to_unix(""), None);
    }

    #[test]
    fn content_scripts_pair_every_match_with_every_script() {
        let manifest: Value = serde_json::from_str(&fixtures::localized_manifest()).unwrap();
        let got = content_scripts(manifest.as_object().unwrap());
        let pairs: Vec<(&str, &str)> = got
            .iter()
            .map(|c| (c.matches.as_str(), c.script.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("https://*.example.com/*", "a.js"),
                ("https://*.example.com/*", "b.js"),
                ("http://a.test/*", "a.js"),
                ("http://a.test/*", "b.js"),
                ("file:///*", "c.js"),
            ]
        );
        let odd: Value = serde_json::from_str(r#"{"content_scripts": {"js": 1}}"#).unwrap();
        assert!(content_scripts(odd.as_object().unwrap()).is_empty());
    }

    #[test]
    fn localize_finds_names_without_case_and_keeps_the_rest() {
        let messages = Messages {
            messages: serde_json::from_str(r#"{"AppName": {"message": "Nom"}, "bad": 3}"#).ok(),
        };
        assert_eq!(messages.localize("__MSG_appname__".into()), "Nom");
        assert_eq!(
            messages.localize("__MSG_missing__".into()),
            "__MSG_missing__"
        );
        assert_eq!(messages.localize("__MSG_bad__".into()), "__MSG_bad__");
        assert_eq!(messages.localize("plain".into()), "plain");
        assert_eq!(
            Messages::default().localize("__MSG_x__".into()),
            "__MSG_x__"
        );
    }

    #[test]
    fn text_at_reads_dotted_scalars_only() {
        let v: Value =
            serde_json::from_str(r#"{"a": {"b": false, "c": [1]}, "n": 5, "z": null}"#).unwrap();
        let m = v.as_object().unwrap();
        assert_eq!(text_at(m, "a.b").as_deref(), Some("false"));
        assert_eq!(text_at(m, "n").as_deref(), Some("5"));
        assert_eq!(text_at(m, "a.c"), None);
        assert_eq!(text_at(m, "z"), None);
        assert_eq!(text_at(m, "a.b.c"), None);
    }
}
