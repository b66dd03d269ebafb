//! `vscode_extensions`: Visual Studio Code extensions installed for each user, from the
//! `extensions.json` index VS Code keeps beside them.
//!
//! As osquery: per user, `~/.vscode/extensions/extensions.json` and
//! `~/.vscode-server/extensions/extensions.json` (remote development) are edition
//! `vscode`; `~/.vscode-insiders/...` and `~/.vscode-server-insiders/...` are
//! `vscode_insiders`. Each entry of the JSON array that has `identifier`, `metadata` and
//! `location` objects is a row. osquery reads no other editions (VSCodium's
//! `~/.vscode-oss`), so neither do we.

use crate::common;
use oxquery_sys::users::Passwd;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use serde_json::Value as Json;
use std::path::Path;

table! {
    name: "vscode_extensions",
    description: "Visual Studio Code extensions of every user (or of the uids a query names), one row per entry of ~/.vscode/extensions/extensions.json, ~/.vscode-server/..., ~/.vscode-insiders/... and ~/.vscode-server-insiders/....",
    attributes: [USER_BASED],
    columns: {
        name: Text [] "Extension identifier, publisher.name (identifier.id)",
        uuid: Text [COLLATE_NOCASE] "Marketplace UUID of the extension (identifier.uuid)",
        version: Text [COLLATE_VERSION] "Installed version",
        path: Text [] "Folder the extension is installed in (location.path)",
        publisher: Text [] "Publisher's display name (metadata.publisherDisplayName)",
        publisher_id: Text [] "Publisher's marketplace UUID (metadata.publisherId)",
        installed_at: BigInt [] "When it was installed, in milliseconds since the epoch (metadata.installedTimestamp)",
        prerelease: Integer [] "1 for a pre-release version, 0 if not (metadata.isPreReleaseVersion); NULL when not recorded",
        uid: BigInt [ADDITIONAL | OPTIMIZED] "Owner of the home the extension is installed in",
        vscode_edition: Text [] "vscode or vscode_insiders",
    },
    examples: [
        "select name, version, publisher, vscode_edition from vscode_extensions",
        "select name, version from vscode_extensions where uid = 1000",
    ],
}

/// The index files under a home and the edition each belongs to, in osquery's order.
const INDEXES: [(&str, &str); 4] = [
    (".vscode/extensions/extensions.json", "vscode"),
    (
        ".vscode-insiders/extensions/extensions.json",
        "vscode_insiders",
    ),
    (".vscode-server/extensions/extensions.json", "vscode"),
    (
        ".vscode-server-insiders/extensions/extensions.json",
        "vscode_insiders",
    ),
];

/// One extension entry as the table reports it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Extension {
    name: Option<String>,
    uuid: Option<String>,
    version: Option<String>,
    path: Option<String>,
    publisher: Option<String>,
    publisher_id: Option<String>,
    installed_at: Option<i64>,
    prerelease: Option<bool>,
}

/// The entries of an extensions.json: `Err` when it is not a JSON array; entries
/// without the three objects are skipped (and counted).
fn parse_index(bytes: &[u8]) -> Result<(Vec<Extension>, usize), String> {
    let doc: Json = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let Json::Array(entries) = doc else {
        return Err("not a JSON array".to_owned());
    };
    let mut out = Vec::new();
    let mut skipped = 0;
    for entry in &entries {
        let (Some(identifier), Some(metadata), Some(location)) = (
            entry.get("identifier").filter(|v| v.is_object()),
            entry.get("metadata").filter(|v| v.is_object()),
            entry.get("location").filter(|v| v.is_object()),
        ) else {
            skipped += 1;
            continue;
        };
        let text = |v: &Json, key: &str| v.get(key).and_then(Json::as_str).map(str::to_owned);
        out.push(Extension {
            name: text(identifier, "id"),
            uuid: text(identifier, "uuid"),
            version: text(entry, "version"),
            path: text(location, "path"),
            publisher: text(metadata, "publisherDisplayName"),
            publisher_id: text(metadata, "publisherId"),
            installed_at: metadata.get("installedTimestamp").and_then(Json::as_i64),
            prerelease: metadata.get("isPreReleaseVersion").and_then(Json::as_bool),
        });
    }
    Ok((out, skipped))
}

fn read_index(ctx: &QueryContext, user: &Passwd, path: &Path, edition: &str, rows: &mut Rows) {
    let Some(bytes) = common::read_file(ctx, path, &common::home_file_policy(ctx, user)) else {
        return;
    };
    let entries = match parse_index(&bytes) {
        Ok((entries, 0)) => entries,
        Ok((entries, skipped)) => {
            log::warn!(
                "Table vscode_extensions: {skipped} entries of {} lack identifier, metadata or location",
                path.display()
            );
            entries
        }
        Err(e) => {
            log::warn!(
                "Table vscode_extensions: cannot parse {}: {e}",
                path.display()
            );
            return;
        }
    };
    for ext in entries {
        let mut row = rows.row();
        row.set(Col::name, ext.name);
        row.set(Col::uuid, ext.uuid);
        row.set(Col::version, ext.version);
        row.set(Col::path, ext.path);
        row.set(Col::publisher, ext.publisher);
        row.set(Col::publisher_id, ext.publisher_id);
        row.set(Col::installed_at, ext.installed_at);
        row.set(Col::prerelease, ext.prerelease);
        row.set(Col::uid, i64::from(user.uid));
        row.set(Col::vscode_edition, edition);
    }
}

fn generate_for(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
    for user in users {
        let home = user.home();
        for (relative, edition) in INDEXES {
            read_index(ctx, user, &home.join(relative), edition, rows);
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_for(ctx, &common::users_by_uid(ctx, Col::uid), rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing;
    use oxquery_table::Value;
    use serde_json::json;
    use std::fs;

    /// What an entry written by VS Code looks like (the fields osquery reads and a few
    /// it does not).
    fn entry(id: &str, version: &str, installed: i64, pre: bool) -> Json {
        json!({
            "identifier": {"id": id, "uuid": format!("uuid-{id}")},
            "version": version,
            "location": {"$mid": 1, "path": format!("/home/u/.vscode/extensions/{id}-{version}"), "scheme": "file"},
            "relativeLocation": format!("{id}-{version}"),
            "metadata": {
                "id": format!("uuid-{id}"),
                "publisherId": format!("pub-{id}"),
                "publisherDisplayName": "Publisher Inc.",
                "targetPlatform": "undefined",
                "isApplicationScoped": false,
                "isPreReleaseVersion": pre,
                "installedTimestamp": installed,
            }
        })
    }

    /// The row the table should give for `entry` (read back from the JSON the test
    /// wrote), as strings.
    fn expected_row(e: &Json, edition: &str) -> Vec<Value> {
        let s = |v: &Json| Value::from(v.as_str().unwrap());
        vec![
            s(&e["identifier"]["id"]),
            s(&e["identifier"]["uuid"]),
            s(&e["version"]),
            s(&e["location"]["path"]),
            s(&e["metadata"]["publisherDisplayName"]),
            s(&e["metadata"]["publisherId"]),
            Value::from(e["metadata"]["installedTimestamp"].as_i64().unwrap()),
            Value::from(e["metadata"]["isPreReleaseVersion"].as_bool().unwrap()),
            Value::from(testing::FIXTURE_UID),
            Value::from(edition),
        ]
    }

    fn write(home: &Path, relative: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = home.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn every_edition_of_a_fixture_home() {
        let home = tempfile::tempdir().unwrap();
        let stable = vec![
            entry("ms-python.python", "2024.2.1", 1_708_000_000_123, false),
            entry(
                "rust-lang.rust-analyzer",
                "0.4.1850",
                1_709_000_000_000,
                true,
            ),
        ];
        let insiders = vec![entry("github.copilot", "1.170.0", 1_710_000_000_000, false)];
        let server = vec![entry("golang.go", "0.41.0", 1_700_000_000_000, false)];
        write(
            home.path(),
            INDEXES[0].0,
            &serde_json::to_vec(&stable).unwrap(),
        );
        write(
            home.path(),
            INDEXES[1].0,
            &serde_json::to_vec(&insiders).unwrap(),
        );
        write(
            home.path(),
            INDEXES[2].0,
            &serde_json::to_vec(&server).unwrap(),
        );
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        let mut expected = Vec::new();
        expected.extend(stable.iter().map(|e| expected_row(e, "vscode")));
        expected.extend(insiders.iter().map(|e| expected_row(e, "vscode_insiders")));
        expected.extend(server.iter().map(|e| expected_row(e, "vscode")));
        let got: Vec<Vec<Value>> = rows.iter().map(<[Value]>::to_vec).collect();
        assert_eq!(got, expected);
        testing::assert_no_warnings(&logged);
    }

    /// Entries missing pieces: skipped when an object is missing, NULL cells when a
    /// field is; a wrong type reads as NULL.
    #[test]
    fn incomplete_entries() {
        let index = json!([
            {"identifier": {"id": "a.b"}, "metadata": {}, "location": {}},
            {"identifier": {"id": "no.metadata"}, "location": {}},
            {"identifier": "x", "metadata": {}, "location": {}},
            {"identifier": {"id": 5}, "version": 1, "metadata": {"installedTimestamp": 1.5, "isPreReleaseVersion": "yes"}, "location": {"path": null}},
            7,
        ]);
        let (entries, skipped) = parse_index(&serde_json::to_vec(&index).unwrap()).unwrap();
        assert_eq!(skipped, 3);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name.as_deref(), Some("a.b"));
        assert_eq!(entries[1], Extension::default());
        assert!(parse_index(b"{\"a\":1}").is_err());
        assert!(parse_index(b"[{\"identifier\":").is_err());
    }

    /// Hostile index files give no rows from them, a warning naming them, and no hang;
    /// the user's other editions are still read.
    fn hostile(make: impl FnOnce(&Path), why: &str) {
        let home = tempfile::tempdir().unwrap();
        let bad = home.path().join(INDEXES[0].0);
        fs::create_dir_all(bad.parent().unwrap()).unwrap();
        make(&bad);
        let good = vec![entry("good.one", "1.0.0", 1, false)];
        write(
            home.path(),
            INDEXES[1].0,
            &serde_json::to_vec(&good).unwrap(),
        );
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        assert_eq!(rows.column(Col::name), [&Value::from("good.one")]);
        testing::assert_logged(&logged, log::Level::Warn, &bad, why);
    }

    #[test]
    fn a_fifo_as_extensions_json_does_not_block() {
        hostile(testing::mkfifo, "FIFO");
    }

    #[test]
    fn a_link_to_dev_zero_is_not_read() {
        hostile(
            |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
            "character device",
        );
    }

    #[test]
    fn a_huge_extensions_json_is_refused() {
        hostile(testing::huge_sparse_file, "read limit");
    }

    #[test]
    fn a_corrupted_extensions_json_is_reported() {
        let full = serde_json::to_vec(&vec![entry("cut.off", "1.0.0", 1, false)]).unwrap();
        hostile(
            |p| fs::write(p, &full[..full.len() / 2]).unwrap(),
            "cannot parse",
        );
    }

    /// The rows for our uid are the entries of our own extensions.json files as
    /// Python's json module reads them (no files: no rows).
    #[test]
    fn live_uid_constraint_agrees_with_python_json() {
        let Some(python) = oxquery_test_support::require_tool("python3") else {
            return;
        };
        let (rows, me) = testing::live_rows_for_my_uid(&SPEC, Col::uid, generate);
        let files: Vec<std::path::PathBuf> =
            INDEXES.iter().map(|(rel, _)| me.home().join(rel)).collect();
        let probe = r#"
import json, sys
out = []
for path, edition in zip(sys.argv[1::2], sys.argv[2::2]):
    try:
        doc = json.load(open(path))
    except (FileNotFoundError, NotADirectoryError):
        continue
    for e in doc:
        if not all(isinstance(e.get(k), dict) for k in ("identifier", "metadata", "location")):
            continue
        s = lambda d, k: d.get(k) if isinstance(d.get(k), str) else None
        m = e["metadata"]
        ts = m.get("installedTimestamp")
        pre = m.get("isPreReleaseVersion")
        out.append([s(e["identifier"], "id"), s(e["identifier"], "uuid"), s(e, "version"),
                    s(e["location"], "path"), s(m, "publisherDisplayName"), s(m, "publisherId"),
                    ts if type(ts) is int else None, int(pre) if type(pre) is bool else None,
                    edition])
print(json.dumps(out))
"#;
        let mut args = vec!["-c".to_owned(), probe.to_owned()];
        for (file, (_, edition)) in files.iter().zip(INDEXES) {
            args.push(file.to_str().unwrap().to_owned());
            args.push(edition.to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = crate::testing::tool_stdout(python.to_str().unwrap(), &args);
        let expected: Vec<Vec<serde_json::Value>> = serde_json::from_str(&out).unwrap();
        let got: Vec<Vec<serde_json::Value>> = rows
            .iter()
            .map(|r| {
                assert_eq!(r[Col::uid as usize], Value::from(me.uid));
                [
                    Col::name,
                    Col::uuid,
                    Col::version,
                    Col::path,
                    Col::publisher,
                    Col::publisher_id,
                    Col::installed_at,
                    Col::prerelease,
                    Col::vscode_edition,
                ]
                .iter()
                .map(|&c| match &r[c as usize] {
                    Value::Null => serde_json::Value::Null,
                    Value::Integer(i) => serde_json::Value::from(*i),
                    v => serde_json::Value::from(crate::testing::text(v)),
                })
                .collect()
            })
            .collect();
        assert_eq!(got, expected);
        testing::note_live("vscode_extensions", rows.len(), &files);
    }
}
