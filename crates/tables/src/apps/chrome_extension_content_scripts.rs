//! `chrome_extension_content_scripts`: the content scripts the extensions of every
//! Chromium-family browser profile declare (`content_scripts` of `manifest.json`), one
//! row per match pattern and script. The walk is in [`super::chrome`], shared with
//! `chrome_extensions`.

use super::chrome;
use crate::common;
use oxquery_sys::users::Passwd;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "chrome_extension_content_scripts",
    description: "Content scripts of the extensions of Chromium-based browsers (the profiles chrome_extensions reads): one row per match pattern and JavaScript file of each content_scripts entry that has both, for every user unless the query names uids.",
    attributes: [USER_BASED],
    columns: {
        browser_type: Text [] "The browser: chrome, chrome_beta, chrome_dev, chromium, brave, edge, edge_beta, edge_dev, opera, vivaldi, yandex or island",
        uid: BigInt [INDEX | OPTIMIZED] "The user whose home holds the profile",
        identifier: Text [] "The extension id computed from the manifest's key, as in chrome_extensions (osquery leaves this empty); empty when the manifest has no usable key",
        version: Text [COLLATE_VERSION] "Extension version from the manifest",
        script: Text [] "The script file (a js entry)",
        r#match: Text [] "The URL pattern the script is injected into (a matches entry)",
        profile_path: Text [] "The profile directory",
        path: Text [] "The extension's directory",
        referenced: BigInt [] "1 if the profile's preferences reference this extension, else 0",
    },
    examples: [
        "select chrome_extension_content_scripts.* from users join chrome_extension_content_scripts using (uid) group by identifier, match",
    ],
}

fn generate_for(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
    chrome::for_each_profile(ctx, users, |profile| {
        for ext in profile.extensions(ctx) {
            let scripts = chrome::content_scripts(&ext.manifest);
            if scripts.is_empty() {
                continue;
            }
            let identifier = ctx
                .is_used(Col::identifier)
                .then(|| {
                    chrome::text_at(&ext.manifest, "key")
                        .and_then(|k| chrome::identifier_from_key(&k))
                })
                .flatten()
                .unwrap_or_default();
            let version = chrome::text_at(&ext.manifest, "version").unwrap_or_default();
            for script in scripts {
                let mut row = rows.row();
                row.set(Col::browser_type, profile.browser);
                row.set(Col::uid, i64::from(profile.user.uid));
                row.set(Col::identifier, identifier.as_str());
                row.set(Col::version, version.as_str());
                row.set(Col::script, script.script);
                row.set(Col::r#match, script.matches);
                row.set(Col::profile_path, profile.path.as_path());
                row.set(Col::path, ext.path.as_path());
                row.set(Col::referenced, i64::from(ext.referenced));
            }
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
    use oxquery_table::Value;
    use std::fs;

    /// The rows of a Brave profile holding the fixture manifest (three usable entries,
    /// one css-only) and an extension without content scripts, checked against the
    /// pairs read from the file here with serde_json directly.
    #[test]
    fn pairs_of_each_entry_with_both_matches_and_js() {
        let home = tempfile::tempdir().unwrap();
        let profile = home
            .path()
            .join(".config/BraveSoftware/Brave-Browser/Profile 1");
        let ext = fixtures::extension(
            &profile,
            "someid",
            "1.2.3_0",
            &fixtures::localized_manifest(),
        );
        fixtures::extension(&profile, "other", "1", fixtures::PLAIN_MANIFEST);
        fs::write(
            profile.join("Preferences"),
            r#"{"profile": {"name": "Work"}, "extensions": {"settings": {"someid": {"path": "someid/1.2.3_0"}}}}"#,
        )
        .unwrap();
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);

        let manifest: serde_json::Value =
            serde_json::from_slice(&fs::read(ext.join("manifest.json")).unwrap()).unwrap();
        let mut want = Vec::new();
        for entry in manifest["content_scripts"].as_array().unwrap() {
            let (Some(m), Some(j)) = (entry["matches"].as_array(), entry["js"].as_array()) else {
                continue;
            };
            for m in m {
                for j in j {
                    want.push((
                        m.as_str().unwrap().to_owned(),
                        j.as_str().unwrap().to_owned(),
                    ));
                }
            }
        }
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r[Col::r#match as usize].to_string(),
                    r[Col::script as usize].to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "{logged:?}");
        assert_eq!(got.len(), 5);
        let ext = ext.canonicalize().unwrap();
        let id = chrome::identifier_from_key(fixtures::KEY).unwrap();
        for r in rows.iter() {
            assert_eq!(r[Col::browser_type as usize], Value::from("brave"));
            assert_eq!(r[Col::uid as usize], Value::from(testing::FIXTURE_UID));
            assert_eq!(r[Col::version as usize], Value::from("1.2.3"));
            assert_eq!(r[Col::identifier as usize], Value::from(id.as_str()));
            assert_eq!(r[Col::path as usize].to_string(), ext.to_string_lossy());
            assert_eq!(r[Col::referenced as usize], Value::from(1));
            assert_eq!(
                r[Col::profile_path as usize].to_string(),
                profile.canonicalize().unwrap().to_string_lossy()
            );
        }
    }

    /// A manifest that is not JSON gives no rows, with a warning, and no hang.
    #[test]
    fn a_corrupted_manifest_gives_no_rows() {
        let home = tempfile::tempdir().unwrap();
        let profile = home.path().join(".config/vivaldi/Default");
        let ext = fixtures::extension(&profile, "x", "1", &fixtures::localized_manifest()[..200]);
        fs::write(profile.join("Preferences"), r#"{"profile": {"name": "P"}}"#).unwrap();
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        assert!(rows.is_empty());
        let manifest = ext.canonicalize().unwrap().join("manifest.json");
        testing::assert_logged(&logged, log::Level::Warn, &manifest, "not valid JSON");
    }

    /// This host has no browser profiles: no rows for our uid unless a root exists.
    #[test]
    fn live_uid_constraint_scans_only_our_home() {
        let (rows, me) = testing::live_rows_for_my_uid(&SPEC, Col::uid, generate);
        let roots: Vec<_> = chrome::BROWSERS
            .iter()
            .map(|b| me.home().join(b.root))
            .collect();
        if roots.iter().all(|r| !r.exists()) {
            assert!(rows.is_empty(), "{rows:?}");
        }
        testing::note_live("chrome_extension_content_scripts", rows.len(), &roots);
    }
}
