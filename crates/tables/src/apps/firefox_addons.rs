//! `firefox_addons`: the add-ons of every Firefox profile of every user, from each
//! profile's `extensions.json` (the add-on database Firefox writes). Profiles are the
//! directories in `~/.mozilla/firefox`, as osquery lists them (profiles kept elsewhere
//! through `profiles.ini` are not read, as in osquery).

use super::chrome;
use crate::common;
use oxquery_sys::users::Passwd;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use serde_json::{Map, Value};

table! {
    name: "firefox_addons",
    description: "Add-ons (extensions, themes, dictionaries, locales) of every Firefox profile of every user: one row per entry of the addons list in ~/.mozilla/firefox/<profile>/extensions.json; every user unless the query names uids.",
    attributes: [USER_BASED],
    columns: {
        uid: BigInt [ADDITIONAL | OPTIMIZED] "The user whose home holds the profile",
        name: Text [] "Add-on name (defaultLocale.name)",
        identifier: Text [INDEX] "Add-on id (such as uBlock0@raymondhill.net)",
        creator: Text [] "Add-on author (defaultLocale.creator)",
        r#type: Text [] "Add-on type: extension, theme, dictionary, locale, ...",
        version: Text [COLLATE_VERSION] "Add-on version",
        description: Text [] "Add-on description (defaultLocale.description)",
        source_url: Text [] "Where it was installed from (sourceURI)",
        visible: Integer [] "1 if the add-on is shown in the Add-ons Manager (visible), else 0",
        active: Integer [] "1 if the add-on is active, else 0",
        disabled: Integer [] "1 if it is disabled by the user, the application or a soft block (userDisabled, appDisabled, softDisabled), else 0",
        autoupdate: Integer [] "Whether background updates apply (applyBackgroundUpdates: 0 off, 1 default, 2 on)",
        location: Text [] "The install location (app-profile, app-system-defaults, ...)",
        path: Text [] "The add-on's file or directory",
    },
    examples: [
        "select * from users join firefox_addons using (uid)",
        "select name, identifier, version, active from firefox_addons where type = 'extension'",
    ],
}

/// Firefox's profiles folder, relative to a home.
const PROFILES: &str = ".mozilla/firefox";
const DATABASE: &str = "extensions.json";

/// A field as osquery renders it: booleans as 1/0, other scalars as text.
fn field(addon: &Map<String, Value>, path: &str) -> Option<String> {
    let mut parts = path.split('.');
    let mut value = addon.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    match value {
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_owned()),
        v => chrome::scalar_text(v),
    }
}

/// An integer field: booleans as 1/0, numbers (and numeric text) as they are; NULL
/// when absent or not a number.
fn integer(addon: &Map<String, Value>, key: &str) -> Option<i64> {
    field(addon, key)?.parse().ok()
}

fn generate_for(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
    let wanted_ids = ctx.eq_texts(Col::identifier);
    for user in users {
        let policy = common::home_file_policy(ctx, user);
        for profile in chrome::subdirectories(&user.home().join(PROFILES)) {
            if ctx.is_stopped() {
                return;
            }
            let path = profile.join(DATABASE);
            let Some(bytes) = common::read_file(ctx, &path, &policy) else {
                continue;
            };
            let Some(database) = chrome::parse_json(ctx, &path, &bytes) else {
                continue;
            };
            let Some(addons) = database.get("addons").and_then(Value::as_array) else {
                log::warn!(
                    "Table {}: {} has no addons list",
                    ctx.spec().name,
                    path.display()
                );
                continue;
            };
            for addon in addons.iter().filter_map(Value::as_object) {
                let text = |key: &str| field(addon, key).unwrap_or_default();
                let identifier = text("id");
                if wanted_ids
                    .as_ref()
                    .is_some_and(|ids| !ids.contains(&identifier))
                {
                    continue;
                }
                let mut row = rows.row();
                row.set(Col::uid, i64::from(user.uid));
                row.set_with(Col::name, || text("defaultLocale.name"));
                row.set(Col::identifier, identifier);
                row.set_with(Col::creator, || text("defaultLocale.creator"));
                row.set_with(Col::r#type, || text("type"));
                row.set_with(Col::version, || text("version"));
                row.set_with(Col::description, || text("defaultLocale.description"));
                row.set_with(Col::source_url, || text("sourceURI"));
                row.set(Col::visible, integer(addon, "visible"));
                row.set(Col::active, integer(addon, "active"));
                let disabled = ["softDisabled", "appDisabled", "userDisabled"]
                    .iter()
                    .any(|k| addon.get(*k) == Some(&Value::Bool(true)));
                row.set(Col::disabled, i64::from(disabled));
                row.set(Col::autoupdate, integer(addon, "applyBackgroundUpdates"));
                row.set_with(Col::location, || text("location"));
                row.set_with(Col::path, || text("path"));
            }
        }
    }
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
    use oxquery_table::{Host, Op, Value as V};
    use std::fs;
    use std::path::Path;

    /// An extensions.json as Firefox writes it (trimmed to the fields osquery reads and
    /// a few it does not).
    const DATABASE_JSON: &str = r#"{"schemaVersion": 36, "addons": [
      {"id": "uBlock0@raymondhill.net", "syncGUID": "{x}", "version": "1.57.2", "type": "extension",
       "loader": null, "updateURL": null, "installOrigins": null, "manifestVersion": 2,
       "optionsURL": "dashboard.html", "defaultLocale": {"name": "uBlock Origin", "description": "Finally, an efficient blocker.",
       "creator": "Raymond Hill", "developers": null, "translators": null, "contributors": null},
       "visible": true, "active": true, "userDisabled": false, "appDisabled": false, "embedderDisabled": false,
       "installDate": 1700000000000, "updateDate": 1700000000000, "applyBackgroundUpdates": 1,
       "path": "/home/u/.mozilla/firefox/abcd.default-release/extensions/uBlock0@raymondhill.net.xpi",
       "skinnable": false, "sourceURI": "https://addons.mozilla.org/firefox/downloads/file/1/ublock.xpi",
       "releaseNotesURI": null, "softDisabled": false, "foreignInstall": false, "strictCompatibility": true,
       "locales": [], "targetApplications": [{"id": "toolkit@mozilla.org", "minVersion": "57.0", "maxVersion": null}],
       "targetPlatforms": [], "signedState": 2, "seen": true, "dependencies": [], "incognito": "spanning",
       "userPermissions": {"permissions": ["tabs"], "origins": ["<all_urls>"]}, "location": "app-profile"},
      {"id": "default-theme@mozilla.org", "version": "1.3", "type": "theme",
       "defaultLocale": {"name": "System theme — auto", "creator": "Mozilla"},
       "visible": true, "active": false, "userDisabled": true, "appDisabled": false, "softDisabled": false,
       "applyBackgroundUpdates": 2, "path": null, "location": "app-builtin"},
      "not an object",
      {"id": "blocked@example.com", "version": "0.1", "type": "extension", "softDisabled": true,
       "visible": false, "location": "app-profile"}
    ]}"#;

    fn firefox_home() -> (tempfile::TempDir, std::path::PathBuf) {
        let home = tempfile::tempdir().unwrap();
        let profile = home.path().join(".mozilla/firefox/abcd.default-release");
        fs::create_dir_all(&profile).unwrap();
        fs::write(profile.join(DATABASE), DATABASE_JSON).unwrap();
        // A profile Firefox never started: no database, no rows, nothing logged.
        fs::create_dir_all(home.path().join(".mozilla/firefox/efgh.unused")).unwrap();
        fs::write(
            home.path().join(".mozilla/firefox/profiles.ini"),
            "[General]\n",
        )
        .unwrap();
        (home, profile)
    }

    /// The rows are the add-ons of the file, as serde_json reads them here directly.
    #[test]
    fn rows_are_the_addons_of_extensions_json() {
        let (home, profile) = firefox_home();
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        testing::assert_no_warnings(&logged);
        let db: serde_json::Value =
            serde_json::from_slice(&fs::read(profile.join(DATABASE)).unwrap()).unwrap();
        let addons: Vec<&serde_json::Value> = db["addons"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a.is_object())
            .collect();
        assert_eq!(rows.len(), addons.len());
        for (row, a) in rows.iter().zip(addons) {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
            let b = |v: &serde_json::Value| v.as_bool().map(i64::from);
            assert_eq!(row[Col::uid as usize], V::from(testing::FIXTURE_UID));
            assert_eq!(row[Col::identifier as usize].to_string(), s(&a["id"]));
            assert_eq!(
                row[Col::name as usize].to_string(),
                s(&a["defaultLocale"]["name"])
            );
            assert_eq!(
                row[Col::creator as usize].to_string(),
                s(&a["defaultLocale"]["creator"])
            );
            assert_eq!(
                row[Col::description as usize].to_string(),
                s(&a["defaultLocale"]["description"])
            );
            assert_eq!(row[Col::r#type as usize].to_string(), s(&a["type"]));
            assert_eq!(row[Col::version as usize].to_string(), s(&a["version"]));
            assert_eq!(
                row[Col::source_url as usize].to_string(),
                s(&a["sourceURI"])
            );
            assert_eq!(row[Col::location as usize].to_string(), s(&a["location"]));
            assert_eq!(row[Col::path as usize].to_string(), s(&a["path"]));
            assert_eq!(
                row[Col::visible as usize],
                b(&a["visible"]).map_or(V::Null, V::from)
            );
            assert_eq!(
                row[Col::active as usize],
                b(&a["active"]).map_or(V::Null, V::from)
            );
            assert_eq!(
                row[Col::autoupdate as usize],
                a["applyBackgroundUpdates"]
                    .as_i64()
                    .map_or(V::Null, V::from)
            );
            let disabled = ["softDisabled", "appDisabled", "userDisabled"]
                .iter()
                .any(|k| a[*k] == serde_json::Value::Bool(true));
            assert_eq!(row[Col::disabled as usize], V::from(i64::from(disabled)));
        }
        let disabled: Vec<&V> = rows.column(Col::disabled);
        assert_eq!(disabled, [&V::from(0), &V::from(1), &V::from(1)]);
    }

    /// `identifier =` keeps only that add-on.
    #[test]
    fn identifier_constraint_filters() {
        let (home, _) = firefox_home();
        let user = testing::fixture_account("fixture", testing::FIXTURE_UID, home.path());
        let ids = testing::within_10s(move || {
            let host = Host::default();
            let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
                Col::identifier,
                Op::Eq,
                "blocked@example.com",
            );
            let mut rows = Rows::for_context(&ctx);
            generate_for(&ctx, &[user], &mut rows);
            testing::column_texts(&rows, Col::identifier)
        });
        assert_eq!(ids, ["blocked@example.com"]);
    }

    /// A hostile database (what any user can put in their own profile) gives no rows
    /// from that profile, a warning, and no hang; another profile is still read.
    #[test]
    fn hostile_databases_are_skipped() {
        let whole = DATABASE_JSON.to_owned();
        let mut cases = fixtures::hostile_files();
        cases.push((
            "not valid JSON",
            Box::new(move |p: &Path| fs::write(p, &whole.as_bytes()[..whole.len() / 2]).unwrap()),
        ));
        cases.push((
            "recursion limit",
            Box::new(|p: &Path| {
                fs::write(p, "{\"addons\":".to_owned() + &"[".repeat(50_000)).unwrap()
            }),
        ));
        cases.push((
            "no addons list",
            Box::new(|p: &Path| fs::write(p, "{\"addons\": 3}").unwrap()),
        ));
        for (why, make) in cases {
            let (home, _) = firefox_home();
            let bad = home.path().join(".mozilla/firefox/bad.profile");
            fs::create_dir_all(&bad).unwrap();
            make(&bad.join(DATABASE));
            let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
            assert_eq!(rows.len(), 3, "{why}");
            testing::assert_logged(&logged, log::Level::Warn, &bad.join(DATABASE), why);
        }
    }

    /// This host has no Firefox profiles: the rows for our uid are the add-ons of our
    /// own databases, counted here directly (none without profiles).
    #[test]
    fn live_uid_constraint_scans_only_our_home() {
        let (rows, me) = testing::live_rows_for_my_uid(&SPEC, Col::uid, generate);
        let dir = me.home().join(PROFILES);
        let expected: usize = chrome::subdirectories(&dir)
            .iter()
            .filter_map(|p| fs::read(p.join(DATABASE)).ok())
            .filter_map(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|db| {
                db["addons"]
                    .as_array()
                    .map_or(0, |a| a.iter().filter(|x| x.is_object()).count())
            })
            .sum();
        assert_eq!(rows.len(), expected);
        testing::note_live("firefox_addons", rows.len(), &[dir]);
    }
}
