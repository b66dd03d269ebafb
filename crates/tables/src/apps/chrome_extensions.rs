//! `chrome_extensions`: the extensions of every Chromium-family browser profile of every
//! user (Chrome, Chromium, Brave, Edge, Opera, Vivaldi, Yandex, Island), from each
//! extension's `manifest.json` and the profile's `Preferences`/`Secure Preferences`.
//! The walk is in [`super::chrome`].

use super::chrome::{self, Messages};
use crate::common;
use oxquery_sys::users::Passwd;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use serde_json::Value;

table! {
    name: "chrome_extensions",
    description: "Extensions of Chromium-based browsers (Chrome and its beta/dev channels, Chromium also as a snap, Brave, Edge, Opera, Vivaldi, Yandex, Island): one row per extension directory (Extensions/<id>/<version> with a readable manifest.json) of each profile of each user's browser, plus the extensions elsewhere that the profile's preferences reference; every user unless the query names uids. Localized manifest strings (__MSG_name__) come from the extension's _locales/<default_locale>/messages.json.",
    attributes: [USER_BASED],
    columns: {
        browser_type: Text [] "The browser: chrome, chrome_beta, chrome_dev, chromium, brave, edge, edge_beta, edge_dev, opera, vivaldi, yandex or island",
        uid: BigInt [INDEX | OPTIMIZED] "The user whose home holds the profile",
        name: Text [] "Extension display name (localized)",
        profile: Text [] "The profile's name from its preferences (profile.name; empty for Opera, which has none)",
        profile_path: Text [] "The profile directory",
        referenced_identifier: Text [] "The extension's id as the profile's preferences name it (the key of its extensions.settings entry); empty when they do not reference it",
        identifier: Text [] "The extension id computed from the manifest's key (SHA-256 of the decoded key, first 32 hex digits written a-p); empty when the manifest has no usable key",
        version: Text [COLLATE_VERSION] "Extension version from the manifest",
        description: Text [] "Extension description (localized)",
        default_locale: Text [] "The manifest's default_locale",
        current_locale: Text [] "The manifest's current_locale",
        update_url: Text [] "Update URL from the manifest",
        author: Text [] "Author from the manifest, if given as a string",
        persistent: Integer [] "1 if the manifest's background page is persistent (background.persistent true), else 0",
        path: Text [] "The extension's directory",
        permissions: Text [] "The manifest's permissions, comma and space separated",
        permissions_json: Text [HIDDEN] "The manifest's permissions as JSON ({} when there are none)",
        optional_permissions: Text [] "The manifest's optional_permissions, comma and space separated",
        optional_permissions_json: Text [HIDDEN] "The manifest's optional_permissions as JSON ({} when there are none)",
        manifest_hash: Text [COLLATE_NOCASE] "SHA-256 of manifest.json, lowercase hex",
        referenced: BigInt [] "1 if the profile's preferences reference this extension, else 0",
        from_webstore: Text [] "The preferences' from_webstore for it (true/false), empty if not referenced",
        state: Text [] "The preferences' state for it (1 enabled, 0 disabled), empty if not referenced",
        install_time: Text [] "Install time from the preferences, in WebKit time (microseconds since 1601-01-01) as written",
        install_timestamp: BigInt [] "Install time in Unix seconds; 0 when unknown",
        manifest_json: Text [HIDDEN] "The manifest, re-serialized as compact JSON",
        key: Text [HIDDEN] "The manifest's key (a base64 public key)",
    },
    column_aliases: { locale => default_locale },
    examples: [
        "select * from users join chrome_extensions using (uid)",
        "select browser_type, name, identifier, version from chrome_extensions where uid = 0",
    ],
}

/// A string array of the manifest, as osquery gives it: the scalar items joined with
/// ", ", and the array as JSON (`{}` when absent).
fn list(manifest: &serde_json::Map<String, Value>, key: &str) -> (String, String) {
    match manifest.get(key) {
        Some(node) => {
            let items: Vec<String> = node
                .as_array()
                .map(|a| a.iter().filter_map(chrome::scalar_text).collect())
                .unwrap_or_default();
            (items.join(", "), node.to_string())
        }
        None => (String::new(), "{}".to_owned()),
    }
}

/// The columns whose text may be localized.
const LOCALIZED: [Col; 7] = [
    Col::name,
    Col::description,
    Col::author,
    Col::update_url,
    Col::version,
    Col::default_locale,
    Col::current_locale,
];

fn generate_for(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
    let localizing = LOCALIZED.iter().any(|c| ctx.is_used(*c));
    chrome::for_each_profile(ctx, users, |profile| {
        let policy = common::home_file_policy(ctx, profile.user);
        for ext in profile.extensions(ctx) {
            let manifest = &ext.manifest;
            let messages = if localizing {
                Messages::load(ctx, &ext, &policy)
            } else {
                Messages::default()
            };
            let text = |path: &str| chrome::property(manifest, &messages, path).unwrap_or_default();
            let settings = ext.settings.clone().unwrap_or_default();
            let mut row = rows.row();
            row.set(Col::browser_type, profile.browser);
            row.set(Col::uid, i64::from(profile.user.uid));
            row.set_with(Col::name, || text("name"));
            row.set(Col::profile, profile.name.as_str());
            row.set(Col::profile_path, profile.path.as_path());
            row.set(Col::referenced_identifier, settings.id.as_str());
            row.set_with(Col::identifier, || {
                chrome::text_at(manifest, "key")
                    .and_then(|k| chrome::identifier_from_key(&k))
                    .unwrap_or_default()
            });
            row.set_with(Col::version, || text("version"));
            row.set_with(Col::description, || text("description"));
            row.set_with(Col::default_locale, || text("default_locale"));
            row.set_with(Col::current_locale, || text("current_locale"));
            row.set_with(Col::update_url, || text("update_url"));
            row.set_with(Col::author, || text("author"));
            row.set_with(Col::persistent, || {
                let persistent = chrome::text_at(manifest, "background.persistent");
                i64::from(persistent.is_some_and(|p| p.eq_ignore_ascii_case("true")))
            });
            row.set(Col::path, ext.path.as_path());
            if row.wants(Col::permissions) || row.wants(Col::permissions_json) {
                let (text, json) = list(manifest, "permissions");
                row.set(Col::permissions, text);
                row.set(Col::permissions_json, json);
            }
            if row.wants(Col::optional_permissions) || row.wants(Col::optional_permissions_json) {
                let (text, json) = list(manifest, "optional_permissions");
                row.set(Col::optional_permissions, text);
                row.set(Col::optional_permissions_json, json);
            }
            row.set_with(Col::manifest_hash, || {
                chrome::sha256_hex(&ext.manifest_bytes)
            });
            row.set(Col::referenced, i64::from(ext.referenced));
            row.set(
                Col::from_webstore,
                settings.from_webstore.unwrap_or_default(),
            );
            row.set(Col::state, settings.state.unwrap_or_default());
            let install_time = settings.install_time.unwrap_or_default();
            row.set(
                Col::install_timestamp,
                chrome::webkit_to_unix(&install_time).unwrap_or(0),
            );
            row.set(Col::install_time, install_time);
            row.set_with(Col::manifest_json, || {
                Value::Object(manifest.clone()).to_string()
            });
            row.set_with(Col::key, || text("key"));
        }
    });
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_for(ctx, &common::users_by_uid(ctx, Col::uid), rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::chrome::fixtures;
    use super::*;
    use crate::common::testing;
    use oxquery_table::Value as V;
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A home with a Chrome profile (a Web Store extension with a key and French
    /// strings, an extension the preferences do not name, and an unpacked extension
    /// outside the profile named by Secure Preferences), an Opera profile (no name,
    /// `opsettings`), and a Chromium profile without a name (skipped, as osquery does).
    struct Home {
        dir: tempfile::TempDir,
        store: PathBuf,
        plain: PathBuf,
        unpacked: PathBuf,
        opera: PathBuf,
    }

    const STORE_ID: &str = "abcdefghijklmnopabcdefghijklmnop";

    fn chrome_home() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let profile = home.join(".config/google-chrome/Default");
        let store = fixtures::extension(
            &profile,
            STORE_ID,
            "1.2.3_0",
            &fixtures::localized_manifest(),
        );
        fixtures::messages(
            &store,
            "fr",
            r#"{"appName": {"message": "Mon extension"}, "APPDESC": {"message": "Elle fait tout"}}"#,
        );
        let plain = fixtures::extension(
            &profile,
            "ponmlkjihgfedcbaponmlkjihgfedcba",
            "0.1_0",
            fixtures::PLAIN_MANIFEST,
        );
        let unpacked = home.join("dev/unpacked");
        fs::create_dir_all(&unpacked).unwrap();
        fs::write(
            unpacked.join("manifest.json"),
            r#"{"name": "Dev build", "version": "9", "optional_permissions": [], "author": {"email": "x@y"}}"#,
        )
        .unwrap();
        fs::write(
            profile.join("Preferences"),
            format!(
                r#"{{"profile": {{"name": "Person 1"}}, "extensions": {{"settings": {{
                    "{STORE_ID}": {{"path": "{STORE_ID}/1.2.3_0", "from_webstore": true, "state": 1, "install_time": "13300000000000000"}},
                    "componentid": {{"path": "/nonexistent/resources/pdf", "state": 1}}
                }}}}}}"#
            ),
        )
        .unwrap();
        fs::write(
            profile.join("Secure Preferences"),
            format!(
                r#"{{"extensions": {{"settings": {{"unpackedid": {{"path": "{}", "state": 0, "from_webstore": false}}}}}}}}"#,
                unpacked.display()
            ),
        )
        .unwrap();
        let opera = home.join(".config/opera");
        let opera_ext = fixtures::extension(
            &opera,
            "operaid",
            "2.0_0",
            r#"{"name": "Opera thing", "version": "2.0"}"#,
        );
        fs::write(
            opera.join("Preferences"),
            r#"{"extensions": {"opsettings": {"operaid": {"path": "operaid/2.0_0", "state": 1}}}}"#,
        )
        .unwrap();
        let nameless = home.join(".config/chromium/Default");
        fixtures::extension(&nameless, "nameless", "1", fixtures::PLAIN_MANIFEST);
        fs::write(nameless.join("Preferences"), r#"{"profile": {}}"#).unwrap();
        Home {
            store: store.canonicalize().unwrap(),
            plain: plain.canonicalize().unwrap(),
            unpacked: unpacked.canonicalize().unwrap(),
            opera: opera_ext.canonicalize().unwrap(),
            dir,
        }
    }

    fn text(row: &[V], col: Col) -> String {
        row[col as usize].to_string()
    }

    fn row_at<'r>(rows: &'r Rows, path: &Path) -> &'r [V] {
        let path = path.to_string_lossy();
        rows.iter()
            .find(|r| text(r, Col::path) == path)
            .unwrap_or_else(|| panic!("no row for {path}"))
    }

    /// `sh -c`'s standard output: coreutils and openssl as the independent source.
    fn sh(script: &str) -> String {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[test]
    fn fixture_profiles_give_their_extensions_with_settings_and_locales() {
        let home = chrome_home();
        let (rows, logged) = testing::generate_for_home(&SPEC, home.dir.path(), generate_for);
        // Chrome: the unreferenced one, then the two referenced (by path); Opera's one.
        // The nameless Chromium profile and the component without a manifest give none.
        let paths = testing::column_texts(&rows, Col::path);
        let mut referenced = [home.store.clone(), home.unpacked.clone()];
        referenced.sort();
        let want: Vec<String> = [&home.plain, &referenced[0], &referenced[1], &home.opera]
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(paths, want, "{logged:?}");

        let store = row_at(&rows, &home.store);
        assert_eq!(text(store, Col::browser_type), "chrome");
        assert_eq!(store[Col::uid as usize], V::from(testing::FIXTURE_UID));
        assert_eq!(text(store, Col::name), "Mon extension");
        assert_eq!(text(store, Col::description), "Elle fait tout");
        assert_eq!(text(store, Col::profile), "Person 1");
        assert_eq!(text(store, Col::referenced_identifier), STORE_ID);
        assert_eq!(text(store, Col::version), "1.2.3");
        assert_eq!(text(store, Col::default_locale), "fr");
        assert_eq!(text(store, Col::author), "Jane Doe");
        assert_eq!(store[Col::persistent as usize], V::from(1));
        assert_eq!(text(store, Col::permissions), "tabs, storage, https://*/*");
        assert_eq!(
            text(store, Col::permissions_json),
            r#"["tabs","storage","https://*/*"]"#
        );
        assert_eq!(text(store, Col::optional_permissions), "downloads");
        assert_eq!(store[Col::referenced as usize], V::from(1));
        assert_eq!(text(store, Col::from_webstore), "true");
        assert_eq!(text(store, Col::state), "1");
        assert_eq!(text(store, Col::install_time), "13300000000000000");
        assert_eq!(
            store[Col::install_timestamp as usize],
            V::from(1_655_526_400)
        );
        assert_eq!(text(store, Col::key), fixtures::KEY);
        let manifest_json: serde_json::Value =
            serde_json::from_str(&text(store, Col::manifest_json)).unwrap();
        let written: serde_json::Value =
            serde_json::from_str(&fixtures::localized_manifest()).unwrap();
        assert_eq!(manifest_json, written);
        assert_eq!(
            text(store, Col::profile_path),
            home.dir
                .path()
                .join(".config/google-chrome/Default")
                .canonicalize()
                .unwrap()
                .to_string_lossy()
        );

        // Independent: coreutils' sha256sum of the file, and the id from the key
        // through base64, sha256sum and tr.
        let manifest = home.store.join("manifest.json");
        let sum = sh(&format!(
            "sha256sum '{}' | cut -d' ' -f1",
            manifest.display()
        ));
        assert_eq!(text(store, Col::manifest_hash), sum);
        let id = sh(&format!(
            "printf %s '{}' | base64 -d | sha256sum | cut -c1-32 | tr 0-9a-f a-p",
            fixtures::KEY
        ));
        assert_eq!(text(store, Col::identifier), id);

        let plain = row_at(&rows, &home.plain);
        assert_eq!(text(plain, Col::name), "Plain");
        assert_eq!(text(plain, Col::identifier), "");
        assert_eq!(text(plain, Col::referenced_identifier), "");
        assert_eq!(plain[Col::referenced as usize], V::from(0));
        assert_eq!(plain[Col::persistent as usize], V::from(0));
        assert_eq!(text(plain, Col::state), "");
        assert_eq!(plain[Col::install_timestamp as usize], V::from(0));
        assert_eq!(text(plain, Col::permissions_json), "{}");

        let unpacked = row_at(&rows, &home.unpacked);
        assert_eq!(text(unpacked, Col::referenced_identifier), "unpackedid");
        assert_eq!(text(unpacked, Col::state), "0");
        assert_eq!(text(unpacked, Col::from_webstore), "false");
        assert_eq!(text(unpacked, Col::author), "");
        assert_eq!(text(unpacked, Col::optional_permissions_json), "[]");

        let opera = row_at(&rows, &home.opera);
        assert_eq!(text(opera, Col::browser_type), "opera");
        assert_eq!(text(opera, Col::profile), "");
        assert_eq!(text(opera, Col::referenced_identifier), "operaid");
        assert_eq!(text(opera, Col::state), "1");
    }

    /// The locale file is read only for the columns that show localized text: with a
    /// FIFO as messages.json, a query of `path` says nothing about it, one of `name`
    /// reports it (and keeps the unlocalized name).
    #[test]
    fn locale_files_are_read_only_when_a_localized_column_is_used() {
        let home = chrome_home();
        let messages = home.store.join("_locales/fr/messages.json");
        fs::remove_file(&messages).unwrap();
        testing::mkfifo(&messages);
        let (rows, logged) =
            testing::generate_for_home_using(&SPEC, home.dir.path(), generate_for, [Col::path]);
        assert_eq!(rows.len(), 4);
        assert!(
            !logged.iter().any(|(_, m)| m.contains("messages.json")),
            "{logged:?}"
        );
        let (rows, logged) = testing::generate_for_home_using(
            &SPEC,
            home.dir.path(),
            generate_for,
            [Col::path, Col::name],
        );
        testing::assert_logged(&logged, log::Level::Warn, &messages, "FIFO");
        assert_eq!(
            text(row_at(&rows, &home.store), Col::name),
            "__MSG_appName__"
        );
    }

    /// Hostile manifests (what any user can make in their own profile) drop only their
    /// extension, with a warning, and never hang or panic.
    fn hostile_manifest(make: impl FnOnce(&Path), why: &str) {
        let home = chrome_home();
        let manifest = home.plain.join("manifest.json");
        fs::remove_file(&manifest).unwrap();
        make(&manifest);
        let (rows, logged) = testing::generate_for_home(&SPEC, home.dir.path(), generate_for);
        let paths = testing::column_texts(&rows, Col::path);
        assert_eq!(paths.len(), 3, "{paths:?}");
        assert!(!paths.contains(&home.plain.to_string_lossy().into_owned()));
        testing::assert_logged(&logged, log::Level::Warn, &manifest, why);
    }

    #[test]
    fn a_fifo_as_manifest_is_skipped() {
        hostile_manifest(testing::mkfifo, "FIFO");
    }

    #[test]
    fn a_link_to_dev_zero_as_manifest_is_skipped() {
        hostile_manifest(
            |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
            "character device",
        );
    }

    #[test]
    fn a_huge_manifest_is_skipped() {
        hostile_manifest(testing::huge_sparse_file, "read limit");
    }

    #[test]
    fn truncated_and_deeply_nested_manifests_are_skipped() {
        let whole = fixtures::localized_manifest();
        for cut in [1, 40, whole.len() / 2, whole.len() - 2] {
            let part = whole[..cut].to_owned();
            hostile_manifest(move |p| fs::write(p, part).unwrap(), "not valid JSON");
        }
        let deep = "[".repeat(100_000) + &"]".repeat(100_000);
        hostile_manifest(move |p| fs::write(p, deep).unwrap(), "recursion limit");
        hostile_manifest(
            |p| fs::write(p, b"\xff\xfe{\"name\": 1}").unwrap(),
            "not valid JSON",
        );
        hostile_manifest(|p| fs::write(p, "[1, 2]").unwrap(), "not a JSON object");
    }

    /// Link loops among the extension directories (a user's own to make) and a version
    /// linked to `/` end the walk normally: no hang, the other extensions stay.
    #[test]
    fn link_loops_in_the_extensions_folder_end() {
        let home = chrome_home();
        let extensions = home
            .dir
            .path()
            .join(".config/google-chrome/Default/Extensions");
        std::os::unix::fs::symlink("loop", extensions.join("loop")).unwrap();
        fs::create_dir(extensions.join("deep")).unwrap();
        std::os::unix::fs::symlink("..", extensions.join("deep/up")).unwrap();
        std::os::unix::fs::symlink("/", extensions.join("deep/root")).unwrap();
        let (rows, logged) = testing::generate_for_home(&SPEC, home.dir.path(), generate_for);
        assert_eq!(rows.len(), 4, "{logged:?}");
    }

    /// A preferences file that cannot be read or parsed drops its profile (osquery's
    /// choice: its references and settings are unknown); the other profiles stay.
    #[test]
    fn hostile_preferences_drop_only_their_profile() {
        let mut cases = fixtures::hostile_files();
        cases.push((
            "not valid JSON",
            Box::new(|p: &Path| fs::write(p, "{\"profile\": {\"na").unwrap()),
        ));
        cases.push((
            "recursion limit",
            Box::new(|p: &Path| fs::write(p, "{\"a\":".repeat(5000)).unwrap()),
        ));
        for (why, make) in cases {
            let home = chrome_home();
            let prefs = home
                .dir
                .path()
                .canonicalize()
                .unwrap()
                .join(".config/google-chrome/Default/Secure Preferences");
            fs::remove_file(&prefs).unwrap();
            make(&prefs);
            let (rows, logged) = testing::generate_for_home(&SPEC, home.dir.path(), generate_for);
            let types = testing::column_texts(&rows, Col::browser_type);
            assert_eq!(types, ["opera"], "{why}");
            testing::assert_logged(&logged, log::Level::Warn, &prefs, why);
        }
    }

    /// Both preferences files are optional one at a time; a directory with neither is
    /// not a profile.
    #[test]
    fn a_profile_needs_one_preferences_file() {
        let home = chrome_home();
        let profile = home.dir.path().join(".config/google-chrome/Default");
        fs::remove_file(profile.join("Secure Preferences")).unwrap();
        let (rows, _) = testing::generate_for_home(&SPEC, home.dir.path(), generate_for);
        // The unpacked extension was named only by Secure Preferences: now absent.
        assert_eq!(rows.len(), 3);
        fs::remove_file(profile.join("Preferences")).unwrap();
        let (rows, _) = testing::generate_for_home(&SPEC, home.dir.path(), generate_for);
        assert_eq!(rows.column(Col::browser_type), [&V::from("opera")]);
    }

    /// This host has no browser profiles (the rows for our uid are what a direct look
    /// at our home finds: none unless a profile root exists).
    #[test]
    fn live_uid_constraint_scans_only_our_home() {
        let (rows, me) = testing::live_rows_for_my_uid(&SPEC, Col::uid, generate);
        let roots: Vec<PathBuf> = chrome::BROWSERS
            .iter()
            .map(|b| me.home().join(b.root))
            .collect();
        if roots.iter().all(|r| !r.exists()) {
            assert!(rows.is_empty(), "{rows:?}");
        }
        assert!(rows.column(Col::uid).iter().all(|u| **u == V::from(me.uid)));
        testing::note_live("chrome_extensions", rows.len(), &roots);
    }
}
