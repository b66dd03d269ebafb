//! `npm_packages`: Node.js packages in `node_modules` trees, from each package's
//! `package.json`.
//!
//! As osquery: the `directory` is the folder *holding* `node_modules` (a project, or a
//! global prefix's `lib`). Without a `directory = '...'` constraint the global prefixes
//! are scanned: `/usr/local/lib`, `/opt/homebrew/lib`, `/usr/lib`, and each user's
//! `~/.npm-global/lib` and `~/.nvm/versions/node/*/lib` (osquery globs `/home/%` and
//! `/Users/%`; we take the homes of the local accounts, so a home elsewhere counts too).
//! In each, `node_modules/<name>/package.json` and `node_modules/@<scope>/<name>/package.json`
//! are rows of depth 0, and the `node_modules` inside each package are walked the same
//! way one level deeper, down to `max_depth` (100 unless a query sets it; -1 means no
//! limit). Each directory is entered once (by device and inode), so link loops end.
//! Files under a home are opened with that user's permissions.
//!
//! With `pid_with_namespace = <pid>` the same folders are scanned inside that process's
//! root (its mount namespace's files, resolved safely; the homes from its /etc/passwd),
//! and the rows' paths are as that process sees them.

use crate::common;
use oxquery_sys::safe_read::{Policy, Root};
use oxquery_sys::users::Passwd;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::{HashSet, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

table! {
    name: "npm_packages",
    description: "Node.js packages in node_modules trees, one row per package.json: under the global prefixes (/usr/local/lib, /usr/lib, /opt/homebrew/lib, each user's ~/.npm-global/lib and nvm versions), or under the project directories named by directory = '...', nested node_modules included down to max_depth.",
    columns: {
        name: Text [] "Package name (the name field of package.json)",
        version: Text [COLLATE_VERSION] "Package version",
        description: Text [] "Package description",
        author: Text [] "Author: the author string, or the name of an author object",
        license: Text [] "License: the license string, or the url of an old-style license object",
        homepage: Text [] "Homepage URL",
        path: Text [] "Path of the package.json",
        directory: Text [INDEX | OPTIMIZED] "The folder holding the top node_modules (a project or a global prefix's lib); = constraints name the folders to scan instead of the global ones",
        depth: Integer [] "Nesting: 0 for the top node_modules, 1 for a package's own node_modules, ...",
        max_depth: Integer [ADDITIONAL | HIDDEN] "Deepest nesting walked: 100 unless a query sets it with =; -1 for no limit",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Look inside this process's mount namespace (its root, and the homes of its /etc/passwd); 0 in rows read from the host's",
        mount_namespace_id: Text [HIDDEN] "Mount namespace the package was found in (its inode number); NULL for the host's",
    },
    examples: [
        "select name, version, path from npm_packages",
        "select name, version, depth from npm_packages where directory = '/srv/app' and max_depth = 0",
    ],
}

/// osquery's default for `max_depth`.
const DEFAULT_MAX_DEPTH: i64 = 100;

/// Global prefixes whose `node_modules` osquery scans.
const SYSTEM_PREFIXES: [&str; 3] = ["/usr/local/lib", "/opt/homebrew/lib", "/usr/lib"];

/// The package.json fields the table reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Manifest {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    author: Option<String>,
    license: Option<String>,
    homepage: Option<String>,
}

impl Manifest {
    /// Parses a package.json: `None` when it is not a JSON object. A field that is
    /// present but not a string reads as '' (osquery's rule); `author` may be an object
    /// with a `name`, and `license` an old-style object with a `url`.
    fn parse(bytes: &[u8]) -> Option<Manifest> {
        let doc: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let obj = doc.as_object()?;
        let plain = |key: &str| {
            obj.get(key)
                .map(|v| v.as_str().unwrap_or_default().to_owned())
        };
        let author = match obj.get("author") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Object(a)) => a
                .get("name")
                .map(|n| n.as_str().unwrap_or_default().to_owned()),
            _ => None,
        };
        let license = match obj.get("license") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Object(l)) => {
                l.get("url").and_then(|u| u.as_str()).map(str::to_owned)
            }
            _ => None,
        };
        Some(Manifest {
            name: plain("name"),
            version: plain("version"),
            description: plain("description"),
            author,
            license,
            homepage: plain("homepage"),
        })
    }
}

/// A folder holding `node_modules` to scan, where its paths resolve, and how to open
/// the files below it.
struct Site<'r> {
    root: &'r Root,
    dir: PathBuf,
    policy: Policy,
}

/// Entries of `dir` inside `root` that are directories (links followed) and not hidden
/// (`.bin`, `.cache`), in name order.
fn subdirs(root: &Root, dir: &Path) -> Vec<PathBuf> {
    let names = root.read_dir_names(dir).unwrap_or_default();
    let mut out: Vec<PathBuf> = names
        .into_iter()
        .filter(|name| !name.as_encoded_bytes().starts_with(b"."))
        .map(|name| dir.join(name))
        .filter(|path| root.metadata(path).is_ok_and(|m| m.is_dir()))
        .collect();
    out.sort();
    out
}

/// The package.json files of `folder/node_modules`: `<name>/package.json`, then
/// `@<scope>/<name>/package.json`, as osquery's two patterns find them.
fn manifests(root: &Root, folder: &Path) -> Vec<PathBuf> {
    let modules = folder.join("node_modules");
    let mut plain = Vec::new();
    let mut scoped = Vec::new();
    for dir in subdirs(root, &modules) {
        let scope = dir
            .file_name()
            .is_some_and(|n| n.as_encoded_bytes().starts_with(b"@"));
        let manifest = dir.join("package.json");
        if root.symlink_metadata(&manifest).is_ok() {
            plain.push(manifest);
        }
        if scope {
            for pkg in subdirs(root, &dir) {
                let manifest = pkg.join("package.json");
                if root.symlink_metadata(&manifest).is_ok() {
                    scoped.push(manifest);
                }
            }
        }
    }
    plain.extend(scoped);
    plain
}

/// The columns whose values come from a package's `package.json`.
const MANIFEST_COLUMNS: [Col; 6] = [
    Col::name,
    Col::version,
    Col::description,
    Col::author,
    Col::license,
    Col::homepage,
];

/// Rows for every package under `site`, breadth first, down to `max_depth` (-1: all).
fn scan_site(ctx: &QueryContext, site: &Site, max_depth: i64, rows: &mut Rows) {
    let wants_manifest = MANIFEST_COLUMNS.into_iter().any(|c| ctx.is_used(c));
    let root = site.root;
    let namespace = if ctx.is_used(Col::mount_namespace_id) {
        root.mount_namespace_id()
    } else {
        None
    };
    let mut visited = HashSet::new();
    let mut queue = VecDeque::from([(site.dir.clone(), 0i64)]);
    while let Some((folder, depth)) = queue.pop_front() {
        if ctx.is_stopped() {
            return;
        }
        let Ok(meta) = root.metadata(&folder) else {
            continue;
        };
        if !visited.insert((meta.dev(), meta.ino())) {
            continue;
        }
        for manifest_path in manifests(root, &folder) {
            let manifest = if wants_manifest {
                common::read_file_in(ctx, root, &manifest_path, &site.policy)
                    .and_then(|bytes| {
                        let parsed = Manifest::parse(&bytes);
                        if parsed.is_none() {
                            log::info!(
                                "Table npm_packages: {} is not a JSON object",
                                root.display(&manifest_path).display()
                            );
                        }
                        parsed
                    })
                    .unwrap_or_default()
            } else {
                Manifest::default()
            };
            let mut row = rows.row();
            row.set(Col::name, manifest.name);
            row.set(Col::version, manifest.version);
            row.set(Col::description, manifest.description);
            row.set(Col::author, manifest.author);
            row.set(Col::license, manifest.license);
            row.set(Col::homepage, manifest.homepage);
            row.set(Col::path, manifest_path.as_path());
            row.set(Col::directory, site.dir.as_path());
            row.set(Col::depth, depth);
            row.set(Col::max_depth, max_depth);
            row.set(Col::pid_with_namespace, root.pid());
            row.set(Col::mount_namespace_id, namespace.as_deref());
            if max_depth == -1 || depth < max_depth {
                let package = manifest_path.parent().unwrap_or(Path::new("/"));
                if root
                    .metadata(&package.join("node_modules"))
                    .is_ok_and(|m| m.is_dir())
                {
                    queue.push_back((package.to_owned(), depth + 1));
                }
            }
        }
    }
}

/// The global prefixes under `users`' homes that exist: `~/.npm-global/lib` and
/// `~/.nvm/versions/node/*/lib`.
fn user_prefixes(root: &Root, user: &Passwd) -> Vec<PathBuf> {
    let home = user.home();
    let mut out = vec![home.join(".npm-global/lib")];
    for version in subdirs(root, &home.join(".nvm/versions/node")) {
        out.push(version.join("lib"));
    }
    out.retain(|p| root.metadata(p).is_ok_and(|m| m.is_dir()));
    out
}

/// A folder outside any home (a system prefix, or one the query names): its files are
/// opened as files users control.
fn scan_system_site(
    ctx: &QueryContext,
    root: &Root,
    dir: PathBuf,
    max_depth: i64,
    rows: &mut Rows,
) {
    let policy = common::user_file_policy(ctx);
    scan_site(ctx, &Site { root, dir, policy }, max_depth, rows);
}

/// The default scan inside `root`: the system prefixes, then each of `users`' own.
fn generate_for(
    ctx: &QueryContext,
    root: &Root,
    users: &[Passwd],
    max_depth: i64,
    rows: &mut Rows,
) {
    for prefix in SYSTEM_PREFIXES {
        scan_system_site(ctx, root, PathBuf::from(prefix), max_depth, rows);
    }
    scan_user_prefixes(ctx, root, users, max_depth, rows);
}

/// The prefixes under `users`' homes; accounts sharing a home (system accounts under
/// /nonexistent or /) are scanned once.
fn scan_user_prefixes(
    ctx: &QueryContext,
    root: &Root,
    users: &[Passwd],
    max_depth: i64,
    rows: &mut Rows,
) {
    let mut homes = HashSet::new();
    for user in users {
        if !homes.insert(user.home()) {
            continue;
        }
        for dir in user_prefixes(root, user) {
            let policy = common::home_file_policy(ctx, user);
            scan_site(ctx, &Site { root, dir, policy }, max_depth, rows);
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let max_depth = ctx
        .eq_integers(Col::max_depth)
        .and_then(|v| v.first().copied())
        .unwrap_or(DEFAULT_MAX_DEPTH);
    for root in common::namespace_roots(ctx, Col::pid_with_namespace) {
        if let Some(dirs) = ctx.eq_paths(Col::directory) {
            for dir in dirs {
                scan_system_site(ctx, &root, PathBuf::from(dir), max_depth, rows);
            }
            continue;
        }
        let users = common::accounts_in(ctx, &root, None);
        generate_for(ctx, &root, &users, max_depth, rows);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing;
    use crate::testing::{text_or_null, texts_or_null};
    use oxquery_table::{Host, Op, Value};
    use std::fs;

    /// The rows of `directory = <dir>` (and `max_depth = <max_depth>`) on another thread
    /// (a hang fails the test), and what that scan logged.
    fn rows_logged(
        dir: &Path,
        max_depth: Option<i64>,
    ) -> (Vec<Vec<Value>>, Vec<(log::Level, String)>) {
        let dir = dir.to_str().unwrap().to_owned();
        testing::within_10s(move || {
            testing::capture_log(|| {
                let host = Host::default();
                let mut ctx = QueryContext::everything(&SPEC, &host).with_constraint(
                    Col::directory,
                    Op::Eq,
                    dir.as_str(),
                );
                if let Some(d) = max_depth {
                    ctx = ctx.with_constraint(Col::max_depth, Op::Eq, d);
                }
                crate::testing::rows_of(&ctx, generate)
            })
        })
    }

    fn rows_for(dir: &Path, max_depth: Option<i64>) -> Vec<Vec<Value>> {
        rows_logged(dir, max_depth).0
    }

    fn write_pkg(dir: &Path, json: &str) {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("package.json"), json).unwrap();
    }

    /// A project tree written here: plain, scoped and nested packages, author and
    /// license in both forms.
    fn project() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let nm = tmp.path().join("node_modules");
        write_pkg(
            &nm.join("alpha"),
            r#"{"name":"alpha","version":"1.0.0","description":"First","author":{"name":"Al","email":"a@x"},"license":"MIT","homepage":"https://a.example"}"#,
        );
        write_pkg(
            &nm.join("alpha/node_modules/beta"),
            r#"{"name":"beta","version":"2.1.0","author":"Bo <b@x>","license":{"type":"BSD","url":"https://l.example"}}"#,
        );
        write_pkg(
            &nm.join("alpha/node_modules/beta/node_modules/gamma"),
            r#"{"name":"gamma","version":"0.0.1"}"#,
        );
        write_pkg(
            &nm.join("@scope/delta"),
            r#"{"name":"@scope/delta","version":"3.0.0","description":"Scoped"}"#,
        );
        fs::create_dir_all(nm.join(".bin")).unwrap();
        tmp
    }

    /// Rows of `directory = <project>` agree with what `npm query '*'` (npm's own reader
    /// of the installed tree, offline) reports: package folder, name, version,
    /// description, author, license, homepage.
    #[test]
    fn a_project_agrees_with_npm_query() {
        let Some(npm) = oxquery_test_support::require_tool("npm") else {
            return;
        };
        let tmp = project();
        let cache = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(npm)
            .args(["query", "*", "--offline", "--json"])
            .current_dir(tmp.path())
            .env("npm_config_cache", cache.path())
            .env("npm_config_update_notifier", "false")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let nodes: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let field = |n: &serde_json::Value, k: &str| n[k].as_str().map(str::to_owned);
        let mut expected: Vec<Vec<Option<String>>> = nodes
            .iter()
            .filter(|n| n["location"] != "")
            .map(|n| {
                let author = match &n["author"] {
                    serde_json::Value::Object(a) => a["name"].as_str().map(str::to_owned),
                    a => a.as_str().map(str::to_owned),
                };
                let license = match &n["license"] {
                    serde_json::Value::Object(l) => l["url"].as_str().map(str::to_owned),
                    l => l.as_str().map(str::to_owned),
                };
                vec![
                    field(n, "path"),
                    field(n, "name"),
                    field(n, "version"),
                    field(n, "description"),
                    author,
                    license,
                    field(n, "homepage"),
                ]
            })
            .collect();
        expected.sort();
        let rows = rows_for(tmp.path(), None);
        let mut got: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|r| {
                let path = text_or_null(&r[Col::path as usize]).unwrap();
                let folder = path.strip_suffix("/package.json").unwrap().to_owned();
                let mut v = vec![Some(folder)];
                v.extend(texts_or_null(r, &MANIFEST_COLUMNS));
                v
            })
            .collect();
        got.sort();
        assert_eq!(got.len(), 4);
        assert_eq!(got, expected);
    }

    #[test]
    fn depth_and_max_depth_bound_the_walk() {
        let tmp = project();
        let depths = |max: Option<i64>| -> Vec<(String, i64, i64)> {
            rows_for(tmp.path(), max)
                .iter()
                .map(|r| {
                    let Value::Integer(d) = r[Col::depth as usize] else {
                        panic!()
                    };
                    let Value::Integer(m) = r[Col::max_depth as usize] else {
                        panic!()
                    };
                    (text_or_null(&r[Col::name as usize]).unwrap(), d, m)
                })
                .collect()
        };
        let all = depths(None);
        assert_eq!(
            all,
            [
                ("alpha".to_owned(), 0, 100),
                ("@scope/delta".to_owned(), 0, 100),
                ("beta".to_owned(), 1, 100),
                ("gamma".to_owned(), 2, 100),
            ]
        );
        assert_eq!(depths(Some(0)).len(), 2);
        assert_eq!(depths(Some(1)).len(), 3);
        assert_eq!(depths(Some(-1)).len(), 4);
        let r = &rows_for(tmp.path(), None)[0];
        assert_eq!(
            text_or_null(&r[Col::directory as usize]).unwrap(),
            tmp.path().to_str().unwrap()
        );
    }

    /// Hostile trees: a link loop (a package's node_modules pointing back at the project),
    /// a FIFO, a link to /dev/zero and a huge sparse file as package.json, corrupted JSON:
    /// rows without fields where the manifest cannot be read, no hang.
    #[test]
    fn hostile_trees_end_and_do_not_block() {
        let tmp = project();
        let nm = tmp.path().join("node_modules");
        // beta/node_modules/loop -> alpha, which holds beta: a cycle.
        let loop_link = nm.join("alpha/node_modules/beta/node_modules/loop");
        std::os::unix::fs::symlink(nm.join("alpha"), &loop_link).unwrap();
        fs::create_dir_all(nm.join("fifo")).unwrap();
        testing::mkfifo(&nm.join("fifo/package.json"));
        fs::create_dir_all(nm.join("zero")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", nm.join("zero/package.json")).unwrap();
        fs::create_dir_all(nm.join("huge")).unwrap();
        testing::huge_sparse_file(&nm.join("huge/package.json"));
        write_pkg(&nm.join("broken"), r#"{"name":"bro"#);
        write_pkg(&nm.join("array"), "[1,2]");
        let (rows, logged) = rows_logged(tmp.path(), Some(-1));
        let names: Vec<(String, Option<String>)> = rows
            .iter()
            .map(|r| {
                let p = text_or_null(&r[Col::path as usize]).unwrap();
                (p, text_or_null(&r[Col::name as usize]))
            })
            .filter(|(p, _)| !p.contains("/loop/"))
            .map(|(p, n)| (p.rsplit('/').nth(1).unwrap().to_owned(), n))
            .collect();
        for bad in ["fifo", "zero", "huge", "broken", "array"] {
            assert!(names.contains(&(bad.to_owned(), None)), "{bad}: {names:?}");
        }
        assert!(names.contains(&("gamma".to_owned(), Some("gamma".to_owned()))));
        testing::assert_logged(
            &logged,
            log::Level::Warn,
            &nm.join("fifo/package.json"),
            "FIFO",
        );
        // The link is a package (alpha again, seen through it), but alpha's folder was
        // entered already: nothing below the link.
        let looped: Vec<String> = rows
            .iter()
            .map(|r| text_or_null(&r[Col::path as usize]).unwrap())
            .filter(|p| p.contains("/loop/"))
            .collect();
        assert_eq!(looped, [loop_link.join("package.json").to_str().unwrap()]);
    }

    #[test]
    fn manifest_fields_follow_osquery_rules() {
        let m = Manifest::parse(
            br#"{"name":7,"version":"1","author":{"email":"x"},"license":{"type":"MIT"}}"#,
        )
        .unwrap();
        assert_eq!(m.name.as_deref(), Some(""));
        assert_eq!(m.author, None);
        assert_eq!(m.license, None);
        assert_eq!(m.description, None);
        assert!(Manifest::parse(b"\xff").is_none());
    }

    #[test]
    fn pid_with_namespace_scans_that_root_s_prefixes_and_homes() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let inside = c.root();
        write_pkg(
            &inside.join("usr/lib/node_modules/sys-tool"),
            r#"{"name":"sys-tool","version":"1.2.3"}"#,
        );
        // The container's account "contained" has /home/contained there.
        write_pkg(
            &inside.join("home/contained/.npm-global/lib/node_modules/@scope/own"),
            r#"{"name":"@scope/own","version":"0.1.0"}"#,
        );
        write_pkg(
            &inside.join("srv/app/node_modules/app-dep"),
            r#"{"name":"app-dep","version":"4.0.0"}"#,
        );
        // A package.json linking out of the root: resolved inside it, so not found there.
        fs::create_dir_all(inside.join("usr/lib/node_modules/escape")).unwrap();
        let secret = c.make_hostile(
            "usr/lib/node_modules/escape/package.json",
            r#"{"name":"host-secret","version":"6.6.6"}"#,
        );
        assert!(secret.exists());

        let rows = c.rows(&SPEC, Col::pid_with_namespace.into(), generate);
        let mut got: Vec<(Option<String>, Option<String>, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    text_or_null(&r[Col::name as usize]),
                    text_or_null(&r[Col::version as usize]),
                    text_or_null(&r[Col::path as usize]).unwrap(),
                    text_or_null(&r[Col::directory as usize]).unwrap(),
                )
            })
            .collect();
        got.sort();
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            got,
            [
                (
                    None,
                    None,
                    "/usr/lib/node_modules/escape/package.json".into(),
                    "/usr/lib".into()
                ),
                (
                    s("@scope/own"),
                    s("0.1.0"),
                    "/home/contained/.npm-global/lib/node_modules/@scope/own/package.json".into(),
                    "/home/contained/.npm-global/lib".into()
                ),
                (
                    s("sys-tool"),
                    s("1.2.3"),
                    "/usr/lib/node_modules/sys-tool/package.json".into(),
                    "/usr/lib".into()
                ),
            ]
        );
        let ns = fs::read_link(format!("/proc/{}/ns/mnt", c.pid())).unwrap();
        let ns = ns.to_str().unwrap();
        for r in &rows {
            assert_eq!(r[Col::pid_with_namespace as usize], Value::Integer(c.pid()));
            assert_eq!(
                text_or_null(&r[Col::mount_namespace_id as usize]).map(|id| format!("mnt:[{id}]")),
                Some(ns.to_owned())
            );
        }

        // `directory =` names a folder inside the root.
        let host = Host::default();
        let ctx = c
            .query(&SPEC, &host, Col::pid_with_namespace.into())
            .with_constraint(Col::directory, Op::Eq, "/srv/app");
        let rows = crate::testing::rows_of(&ctx, generate);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(text_or_null(&rows[0][Col::name as usize]), s("app-dep"));
        assert_eq!(
            text_or_null(&rows[0][Col::path as usize]),
            s("/srv/app/node_modules/app-dep/package.json")
        );
    }

    /// Global prefixes under a fixture home are scanned, with `directory` the prefix.
    #[test]
    fn user_prefixes_of_a_fixture_home() {
        let home = tempfile::tempdir().unwrap();
        write_pkg(
            &home.path().join(".npm-global/lib/node_modules/tool"),
            r#"{"name":"tool","version":"1.0.0"}"#,
        );
        write_pkg(
            &home
                .path()
                .join(".nvm/versions/node/v20.1.0/lib/node_modules/npm"),
            r#"{"name":"npm","version":"9.0.0"}"#,
        );
        // Only the users' prefixes: the host's own are not this test's.
        fn user_prefixes_only(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
            scan_user_prefixes(ctx, &Root::host(), users, DEFAULT_MAX_DEPTH, rows);
        }
        let (rows, _) = testing::generate_for_home(&SPEC, home.path(), user_prefixes_only);
        let got: Vec<(Option<String>, String)> = rows
            .iter()
            .map(|r| {
                (
                    text_or_null(&r[Col::name as usize]),
                    text_or_null(&r[Col::directory as usize]).unwrap(),
                )
            })
            .collect();
        let h = home.path().to_str().unwrap();
        assert_eq!(
            got,
            [
                (Some("tool".to_owned()), format!("{h}/.npm-global/lib")),
                (
                    Some("npm".to_owned()),
                    format!("{h}/.nvm/versions/node/v20.1.0/lib")
                ),
            ]
        );
    }
}
