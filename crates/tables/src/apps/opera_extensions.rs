//! `opera_extensions`: the extensions in each user's Opera profile, as osquery 3.3.2 read
//! them (`~/.config/opera/Extensions/<id>/<version>/manifest.json`). Later osquery
//! versions list Opera's extensions in `chrome_extensions` (browser_type `opera`), which
//! this project also does; this table keeps the older schema for packs that still use it.

use super::chrome;
use crate::common;
use oxquery_sys::users::Passwd;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "opera_extensions",
    description: "Extensions of each user's Opera profile: one row per ~/.config/opera/Extensions/<id>/<version> directory with a readable manifest.json (strings as written, not localized), every user unless the query names uids. chrome_extensions has the same extensions with more columns.",
    attributes: [USER_BASED],
    columns: {
        uid: BigInt [ADDITIONAL] "The user whose home holds the profile",
        name: Text [] "Extension name from the manifest, as written",
        identifier: Text [INDEX] "Extension id: the name of its directory under Extensions",
        version: Text [] "Extension version from the manifest",
        description: Text [] "Extension description from the manifest, as written",
        locale: Text [] "The manifest's default_locale",
        update_url: Text [] "Update URL from the manifest",
        author: Text [] "Author from the manifest, if given as a string",
        persistent: Integer [] "1 if the manifest's background page is persistent (background.persistent true), else 0",
        path: Text [] "The extension's version directory",
    },
    examples: ["select * from users join opera_extensions using (uid)"],
}

/// The extensions folder of Opera's profile, relative to a home.
const EXTENSIONS: &str = ".config/opera/Extensions";

/// The id directories to look in: the ones the query names (`identifier =`/`IN`, when
/// they are plain names), else every one.
fn id_dirs(ctx: &QueryContext, extensions: &Path) -> Vec<std::path::PathBuf> {
    match ctx.eq_texts(Col::identifier) {
        Some(mut ids) => {
            ids.sort();
            ids.dedup();
            ids.iter()
                .filter(|id| !id.is_empty() && !id.contains('/') && *id != "." && *id != "..")
                .map(|id| extensions.join(id))
                .filter(|d| d.is_dir())
                .collect()
        }
        None => chrome::subdirectories(extensions),
    }
}

fn generate_for(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
    for user in users {
        let policy = common::home_file_policy(ctx, user);
        for id_dir in id_dirs(ctx, &user.home().join(EXTENSIONS)) {
            let id = id_dir.file_name().unwrap_or_default().to_owned();
            for dir in chrome::subdirectories(&id_dir) {
                if ctx.is_stopped() {
                    return;
                }
                let Some((_, manifest)) = chrome::read_manifest(ctx, &dir, &policy) else {
                    continue;
                };
                let text = |key: &str| chrome::text_at(&manifest, key).unwrap_or_default();
                let mut row = rows.row();
                row.set(Col::uid, i64::from(user.uid));
                row.set_with(Col::name, || text("name"));
                row.set(Col::identifier, id.as_os_str());
                row.set_with(Col::version, || text("version"));
                row.set_with(Col::description, || text("description"));
                row.set_with(Col::locale, || text("default_locale"));
                row.set_with(Col::update_url, || text("update_url"));
                row.set_with(Col::author, || text("author"));
                row.set_with(Col::persistent, || {
                    i64::from(text("background.persistent") == "true")
                });
                row.set(Col::path, dir.as_path());
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
    use oxquery_table::{Host, Op, Value};
    use std::fs;

    fn opera_home() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let home = tempfile::tempdir().unwrap();
        let profile = home.path().join(".config/opera");
        let a = fixtures::extension(&profile, "aaaa", "1.2.3_0", &fixtures::localized_manifest());
        let b = fixtures::extension(&profile, "bbbb", "0.1_0", fixtures::PLAIN_MANIFEST);
        (home, a, b)
    }

    /// Every version directory with a manifest is a row, with the manifest's values as
    /// serde_json reads them from the file here.
    #[test]
    fn rows_are_the_manifests_as_written() {
        let (home, a, b) = opera_home();
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        assert_eq!(rows.len(), 2, "{logged:?}");
        for (row, dir, id) in [
            (rows.get(0).unwrap(), &a, "aaaa"),
            (rows.get(1).unwrap(), &b, "bbbb"),
        ] {
            let m: serde_json::Value =
                serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
            let s = |k: &str| m[k].as_str().unwrap_or("").to_owned();
            assert_eq!(row[Col::identifier as usize], Value::from(id));
            assert_eq!(row[Col::name as usize].to_string(), s("name"));
            assert_eq!(row[Col::version as usize].to_string(), s("version"));
            assert_eq!(row[Col::description as usize].to_string(), s("description"));
            assert_eq!(row[Col::locale as usize].to_string(), s("default_locale"));
            assert_eq!(row[Col::update_url as usize].to_string(), s("update_url"));
            assert_eq!(row[Col::author as usize].to_string(), s("author"));
            let persistent = m["background"]["persistent"].as_bool() == Some(true);
            assert_eq!(
                row[Col::persistent as usize],
                Value::from(i64::from(persistent))
            );
            assert_eq!(row[Col::path as usize].to_string(), dir.to_string_lossy());
            assert_eq!(row[Col::uid as usize], Value::from(testing::FIXTURE_UID));
        }
        // Not localized, as osquery 3.3.2 gave it.
        assert_eq!(
            rows.get(0).unwrap()[Col::name as usize],
            Value::from("__MSG_appName__")
        );
    }

    /// `identifier =` looks only in that directory (a hostile sibling is never opened).
    #[test]
    fn identifier_constraint_reads_only_that_extension() {
        let (home, _, b) = opera_home();
        let fifo_dir = home.path().join(".config/opera/Extensions/cccc/1");
        fs::create_dir_all(&fifo_dir).unwrap();
        testing::mkfifo(&fifo_dir.join("manifest.json"));
        let user = testing::fixture_account("fixture", testing::FIXTURE_UID, home.path());
        let ((ids, paths), logged) = testing::within_10s(move || {
            testing::capture_log(|| {
                let host = Host::default();
                let ctx = QueryContext::everything(&SPEC, &host)
                    .with_constraint(Col::identifier, Op::Eq, "bbbb")
                    .with_constraint(Col::identifier, Op::Eq, "../opera/Extensions/cccc");
                let mut rows = Rows::for_context(&ctx);
                generate_for(&ctx, &[user], &mut rows);
                (
                    testing::column_texts(&rows, Col::identifier),
                    testing::column_texts(&rows, Col::path),
                )
            })
        });
        assert_eq!(ids, ["bbbb"]);
        assert_eq!(paths, [b.to_string_lossy()]);
        assert!(logged.is_empty(), "{logged:?}");
    }

    /// Hostile manifests drop only their extension, with a warning, and never hang.
    #[test]
    fn hostile_manifests_are_skipped() {
        let mut cases = fixtures::hostile_files();
        cases.push((
            "not valid JSON",
            Box::new(|p: &Path| fs::write(p, "{\"name\": \"tru").unwrap()),
        ));
        for (why, make) in cases {
            let (home, a, b) = opera_home();
            let manifest = a.join("manifest.json");
            fs::remove_file(&manifest).unwrap();
            make(&manifest);
            let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
            assert_eq!(rows.column(Col::path), [&Value::from(b.as_path())], "{why}");
            testing::assert_logged(&logged, log::Level::Warn, &manifest, why);
        }
    }

    /// This host has no Opera profile: no rows for our uid unless it has one.
    #[test]
    fn live_uid_constraint_scans_only_our_home() {
        let (rows, me) = testing::live_rows_for_my_uid(&SPEC, Col::uid, generate);
        let dir = me.home().join(EXTENSIONS);
        let expected: usize = chrome::subdirectories(&dir)
            .iter()
            .flat_map(|d| chrome::subdirectories(d))
            .filter(|d| d.join("manifest.json").is_file())
            .count();
        assert!(rows.len() <= expected, "{rows:?}");
        testing::note_live("opera_extensions", rows.len(), &[dir]);
    }
}
