//! `python_packages`: Python distributions installed in site directories, from their
//! `*.dist-info/METADATA` (wheels, pip) and `*.egg-info/PKG-INFO` (setuptools) files.
//!
//! Where osquery looks: the system site directories (`/usr/lib/python*/dist-packages`,
//! `/usr/local/lib/python*/site-packages`, ...; uid 0), each user's
//! `~/.local/lib/python*/site-packages` (`pip install --user`) and
//! `~/.pyenv/versions/*/lib/python*/site-packages` (uid of that user), or only the
//! directories a query names with `directory = '...'` (a virtualenv's site-packages, say;
//! uid 0, the system and user directories are then not scanned, as in osquery).
//!
//! Differences from osquery, on purpose: osquery's user path `~/.local/lib/python%` stops
//! one level above `site-packages` and so finds nothing there; we look in `site-packages`.
//! osquery splits header lines on every `:` and drops a value that contains one (a
//! `Summary: Tools: the sequel`); we split at the first, as Python's own `email` parser
//! (and so `importlib.metadata`) does. Folded continuation lines are not joined: a value
//! is its first line. `/usr/lib64/python*/site-packages` (Fedora's platform-specific
//! packages) is scanned too.
//!
//! With `pid_with_namespace = <pid>` the same directories are scanned inside that
//! process's root (its mount namespace's files, resolved safely; the homes and uids from
//! its /etc/passwd), and the rows' paths are as that process sees them.

use crate::common;
use oxquery_sys::safe_read::{Policy, Root, SafeFile};
use oxquery_sys::users::Passwd;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

table! {
    name: "python_packages",
    description: "Python packages installed in site directories, one row per *.dist-info or *.egg-info directory: the system's site-packages and dist-packages (uid 0), each user's ~/.local/lib/python*/site-packages and pyenv versions (that user's uid), or only the directories named by directory = '...' (a virtualenv's site-packages, for instance).",
    attributes: [USER_BASED],
    columns: {
        name: Text [] "Distribution name (the Name header of METADATA or PKG-INFO)",
        uid: BigInt [INDEX] "Owner of the site directory: the user whose home it is in, 0 for system directories and directories named by a directory constraint",
        version: Text [COLLATE_VERSION] "Version header",
        summary: Text [] "Summary header: a one-line description",
        author: Text [] "Author header, NULL when absent (newer packages often give only Author-email)",
        license: Text [] "License header (its first line), NULL when absent",
        path: Text [] "Path of the .dist-info or .egg-info directory",
        directory: Text [INDEX | OPTIMIZED] "The site directory the package is in; = constraints name the directories to scan instead of the default ones",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Look inside this process's mount namespace (its root, and the homes of its /etc/passwd); 0 in rows read from the host's",
    },
    examples: [
        "select name, version, directory from python_packages",
        "select name, version from python_packages where directory = '/opt/venv/lib/python3.11/site-packages'",
    ],
}

/// Library directories whose `python*/<site>` children osquery scans for system packages,
/// with the site directory name.
const SYSTEM_LIBS: [(&str, &str); 8] = [
    ("/usr/local/lib", "dist-packages"),
    ("/usr/local/lib", "site-packages"),
    ("/usr/local/lib64", "site-packages"),
    ("/opt/homebrew/lib", "dist-packages"),
    ("/opt/homebrew/lib", "site-packages"),
    ("/usr/lib", "dist-packages"),
    ("/usr/lib", "site-packages"),
    ("/usr/lib64", "site-packages"),
];

/// The header fields the table reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Metadata {
    name: Option<String>,
    version: Option<String>,
    summary: Option<String>,
    author: Option<String>,
    license: Option<String>,
}

impl Metadata {
    /// Takes one header line; `false` once the headers have ended (a blank line).
    fn take_line(&mut self, line: &[u8]) -> bool {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return false;
        }
        // Continuation lines of a folded value start with a blank.
        if line[0] == b' ' || line[0] == b'\t' {
            return true;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return true;
        };
        let key = &line[..colon];
        let slot = match key.to_ascii_lowercase().as_slice() {
            b"name" => &mut self.name,
            b"version" => &mut self.version,
            b"summary" => &mut self.summary,
            b"author" => &mut self.author,
            b"license" => &mut self.license,
            _ => return true,
        };
        // The first occurrence wins, as `email.message.Message[...]` answers.
        if slot.is_none() {
            let value = String::from_utf8_lossy(&line[colon + 1..]);
            *slot = Some(value.trim().to_owned());
        }
        true
    }

    /// Parses the header block of a METADATA/PKG-INFO text (the body, a long
    /// description, is not looked at).
    #[cfg(test)]
    fn parse(text: &[u8]) -> Metadata {
        let mut m = Metadata::default();
        for line in text.split(|&b| b == b'\n') {
            if !m.take_line(line) {
                break;
            }
        }
        m
    }
}

/// Reads the headers of the metadata file `path` through the safe opener, stopping at
/// the blank line that ends them; `None`, with the failure logged, when it cannot be read.
fn read_metadata(
    ctx: &QueryContext,
    root: &Root,
    path: &Path,
    policy: &Policy,
) -> Option<Metadata> {
    let fail = |e: std::io::Error| common::report_read_error(ctx, &root.display(path), &e);
    let file = SafeFile::open_in(root, path, policy).map_err(fail).ok()?;
    let mut reader = BufReader::new(file);
    let mut meta = Metadata::default();
    let mut line = Vec::new();
    loop {
        line.clear();
        // A bounded line: a file of one endless line stops at the bound.
        let n = (&mut reader)
            .take(oxquery_sys::safe_read::MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .map_err(fail)
            .ok()?;
        if n == 0 {
            break;
        }
        let Some(text) = line.strip_suffix(b"\n") else {
            // The end of the file, or a line cut at the bound: its value is kept cut, and
            // the rest is not read (what follows the cut is no header line).
            meta.take_line(&line);
            break;
        };
        if !meta.take_line(text) {
            break;
        }
    }
    Some(meta)
}

/// Which metadata file a directory entry of a site directory names: `METADATA` of a
/// `*.dist-info`, `PKG-INFO` of a `*.egg-info`, nothing for anything else.
fn metadata_file(entry: &Path) -> Option<&'static str> {
    let name = entry.file_name()?.as_encoded_bytes();
    if name.ends_with(b".dist-info") {
        Some("METADATA")
    } else if name.ends_with(b".egg-info") {
        Some("PKG-INFO")
    } else {
        None
    }
}

/// A site directory to scan, where its paths resolve, and whose rows it gives.
struct Site<'r> {
    root: &'r Root,
    dir: PathBuf,
    uid: i64,
    policy: Policy,
}

/// One row per `*.dist-info`/`*.egg-info` directory directly in `site.dir` (links to
/// directories included, as osquery's directory listing follows them), in name order.
fn scan_site(ctx: &QueryContext, site: &Site, rows: &mut Rows) {
    let root = site.root;
    let names = match root.read_dir_names(&site.dir) {
        Ok(names) => names,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                let shown = root.display(&site.dir);
                log::debug!("python_packages: cannot list {}: {e}", shown.display());
            }
            return;
        }
    };
    let mut entries: Vec<PathBuf> = names
        .into_iter()
        .map(|name| site.dir.join(name))
        .filter(|path| metadata_file(path).is_some())
        .collect();
    entries.sort();
    let wants_metadata = [
        Col::name,
        Col::version,
        Col::summary,
        Col::author,
        Col::license,
    ]
    .into_iter()
    .any(|c| ctx.is_used(c));
    for entry in entries {
        if ctx.is_stopped() {
            return;
        }
        if !root.metadata(&entry).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let meta = match metadata_file(&entry) {
            Some(file) if wants_metadata => {
                read_metadata(ctx, root, &entry.join(file), &site.policy).unwrap_or_default()
            }
            _ => Metadata::default(),
        };
        let mut row = rows.row();
        row.set(Col::name, meta.name);
        row.set(Col::uid, site.uid);
        row.set(Col::version, meta.version);
        row.set(Col::summary, meta.summary);
        row.set(Col::author, meta.author);
        row.set(Col::license, meta.license);
        row.set(Col::path, entry.as_path());
        row.set(Col::directory, site.dir.as_path());
        row.set(Col::pid_with_namespace, root.pid());
    }
}

/// The `<lib>/python*/<site>` directories inside `root` that exist, in name order.
fn python_sites(root: &Root, lib: &Path, site: &str) -> Vec<PathBuf> {
    let names = root.read_dir_names(lib).unwrap_or_default();
    let mut found: Vec<PathBuf> = names
        .into_iter()
        .filter(|name| name.as_encoded_bytes().starts_with(b"python"))
        .map(|name| lib.join(name).join(site))
        .filter(|dir| root.metadata(dir).is_ok_and(|m| m.is_dir()))
        .collect();
    found.sort();
    found
}

/// The site directories of `user`'s own installs: `~/.local/lib/python*/site-packages`
/// and, for each pyenv version that is not a link to another, its
/// `lib/python*/site-packages`.
fn user_sites(root: &Root, user: &Passwd) -> Vec<PathBuf> {
    let home = user.home();
    let mut sites = python_sites(root, &home.join(".local/lib"), "site-packages");
    let pyenv = home.join(".pyenv/versions");
    let mut versions: Vec<PathBuf> = root
        .read_dir_names(&pyenv)
        .unwrap_or_default()
        .into_iter()
        .map(|name| pyenv.join(name))
        // osquery skips links (pyenv aliases such as `3.11 -> 3.11.7`): no duplicates.
        .filter(|path| root.symlink_metadata(path).is_ok_and(|m| m.is_dir()))
        .collect();
    versions.sort();
    for version in versions {
        sites.extend(python_sites(root, &version.join("lib"), "site-packages"));
    }
    sites
}

/// A site directory outside any home (a system one, or one the query names): its rows
/// have uid 0 and its files are opened as files users control.
fn scan_system_site(ctx: &QueryContext, root: &Root, dir: PathBuf, rows: &mut Rows) {
    let policy = common::user_file_policy(ctx);
    scan_site(
        ctx,
        &Site {
            root,
            dir,
            uid: 0,
            policy,
        },
        rows,
    );
}

/// The default scan inside `root`: system site directories when uid 0 is wanted, then
/// `users`' own.
fn generate_in(ctx: &QueryContext, root: &Root, users: &[Passwd], rows: &mut Rows) {
    let wants_system = ctx
        .eq_integers(Col::uid)
        .is_none_or(|uids| uids.contains(&0));
    if wants_system {
        let mut seen = std::collections::HashSet::new();
        for (lib, site) in SYSTEM_LIBS {
            for dir in python_sites(root, Path::new(lib), site) {
                // /usr/lib64 is a link to /usr/lib on some systems: each directory once.
                let id = root.metadata(&dir).map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    (m.dev(), m.ino())
                });
                if id.is_ok_and(|id| !seen.insert(id)) {
                    continue;
                }
                scan_system_site(ctx, root, dir, rows);
            }
        }
    }
    for user in users {
        let policy = common::home_file_policy(ctx, user);
        for dir in user_sites(root, user) {
            let uid = i64::from(user.uid);
            let site = Site {
                root,
                dir,
                uid,
                policy,
            };
            scan_site(ctx, &site, rows);
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for root in common::namespace_roots(ctx, Col::pid_with_namespace) {
        if let Some(dirs) = ctx.eq_paths(Col::directory) {
            for dir in dirs {
                scan_system_site(ctx, &root, PathBuf::from(dir), rows);
            }
            continue;
        }
        generate_in(ctx, &root, &common::users_in(ctx, &root, Col::uid), rows);
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
    use std::process::Command;

    /// The host's scan for `users`, as the shared home-fixture helpers call it.
    fn generate_for(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
        generate_in(ctx, &Root::host(), users, rows)
    }

    #[test]
    fn pid_with_namespace_scans_that_root_s_sites_and_homes() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let inside = c.root();
        let dist = |site: &str, dir: &str, file: &str, text: &str| {
            let d = inside.join(site).join(dir);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join(file), text).unwrap();
        };
        dist(
            "usr/lib/python3.11/dist-packages",
            "sysdist-2.0.dist-info",
            "METADATA",
            "Name: sysdist\nVersion: 2.0\n",
        );
        // The container's account "contained" (uid 4242) has /home/contained there.
        dist(
            "home/contained/.local/lib/python3.11/site-packages",
            "mine-0.3.egg-info",
            "PKG-INFO",
            "Name: mine\nVersion: 0.3\n",
        );
        dist(
            "opt/venv/lib/python3.11/site-packages",
            "venvdist-1.0.dist-info",
            "METADATA",
            "Name: venvdist\nVersion: 1.0\n",
        );
        // A METADATA linking out of the root: resolved inside it, so not found there.
        fs::create_dir_all(inside.join("usr/lib/python3.11/dist-packages/escape-1.dist-info"))
            .unwrap();
        c.make_hostile(
            "usr/lib/python3.11/dist-packages/escape-1.dist-info/METADATA",
            "Name: host-secret\nVersion: 6.6.6\n",
        );

        let rows = c.rows(&SPEC, Col::pid_with_namespace.into(), generate);
        let got: Vec<(Vec<Option<String>>, &Value)> = rows
            .iter()
            .map(|r| {
                (
                    texts_or_null(r, &[Col::path, Col::name, Col::version]),
                    &r[Col::uid as usize],
                )
            })
            .collect();
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            got,
            [
                (
                    vec![
                        s("/usr/lib/python3.11/dist-packages/escape-1.dist-info"),
                        None,
                        None
                    ],
                    &Value::Integer(0)
                ),
                (
                    vec![
                        s("/usr/lib/python3.11/dist-packages/sysdist-2.0.dist-info"),
                        s("sysdist"),
                        s("2.0")
                    ],
                    &Value::Integer(0)
                ),
                (
                    vec![
                        s("/home/contained/.local/lib/python3.11/site-packages/mine-0.3.egg-info"),
                        s("mine"),
                        s("0.3")
                    ],
                    &Value::Integer(4242)
                ),
            ]
        );
        for r in &rows {
            assert_eq!(r[Col::pid_with_namespace as usize], Value::Integer(c.pid()));
        }

        // `directory =` names a site directory inside the root.
        let host = Host::default();
        let ctx = c
            .query(&SPEC, &host, Col::pid_with_namespace.into())
            .with_constraint(
                Col::directory,
                Op::Eq,
                "/opt/venv/lib/python3.11/site-packages",
            );
        let rows = crate::testing::rows_of(&ctx, generate);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(text_or_null(&rows[0][Col::name as usize]), s("venvdist"));
    }

    /// The rows of `directory = <dir>`, as (path, name, version, summary, author, license).
    fn rows_for_directory(dir: &Path) -> Vec<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::directory,
            Op::Eq,
            dir.to_str().unwrap(),
        );
        crate::testing::rows_of(&ctx, generate)
    }

    #[test]
    fn headers_end_at_the_first_blank_line_and_keep_colons() {
        let m = Metadata::parse(
            b"Metadata-Version: 2.1\r\nName: demo\nVersion: 1.0\nSummary: Tools: the sequel\n\
              License: MIT\n  continued\nname: second\n\nAuthor: in the body\n",
        );
        assert_eq!(m.name.as_deref(), Some("demo"));
        assert_eq!(m.version.as_deref(), Some("1.0"));
        assert_eq!(m.summary.as_deref(), Some("Tools: the sequel"));
        assert_eq!(m.license.as_deref(), Some("MIT"));
        assert_eq!(m.author, None);
        assert_eq!(Metadata::parse(b"\xff\xfe:\x00\nName"), Metadata::default());
    }

    /// A wheel built here (a zip with a dist-info, made by Python's zipfile) and installed
    /// by a real `pip install --no-index` into a real virtualenv, plus a hand-written
    /// egg-info: the rows of `directory = <site-packages>` are what `pip list` and
    /// `importlib.metadata` report for that directory.
    #[test]
    fn a_virtualenv_agrees_with_pip_and_importlib_metadata() {
        let Some(python) = oxquery_test_support::require_tool("python3") else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let venv = tmp.path().join("venv");
        let script = r#"
import sys, zipfile, venv, subprocess, os
tmp, env = sys.argv[1], sys.argv[2]
venv.EnvBuilder(with_pip=True).create(env)
whl = os.path.join(tmp, "oxq_demo-1.2.3-py3-none-any.whl")
meta = ("Metadata-Version: 2.1\nName: oxq-demo\nVersion: 1.2.3\n"
        "Summary: A demo: with a colon\nAuthor: Ox Query\nLicense: MIT\n\nLong text.\n")
with zipfile.ZipFile(whl, "w") as z:
    z.writestr("oxq_demo/__init__.py", "")
    z.writestr("oxq_demo-1.2.3.dist-info/METADATA", meta)
    z.writestr("oxq_demo-1.2.3.dist-info/WHEEL",
               "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    z.writestr("oxq_demo-1.2.3.dist-info/RECORD", "")
py = os.path.join(env, "bin", "python")
subprocess.run([py, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                "--disable-pip-version-check", whl], check=True)
site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                      check=True, capture_output=True, text=True).stdout.strip()
egg = os.path.join(site, "legacy_thing-0.9-py3.egg-info")
os.mkdir(egg)
with open(os.path.join(egg, "PKG-INFO"), "w") as f:
    f.write("Metadata-Version: 1.0\nName: legacy-thing\nVersion: 0.9\nSummary: old\n"
            "Author: Someone\nLicense: BSD\n")
print(site)
"#;
        let out = Command::new(&python)
            .args(["-c", script])
            .arg(tmp.path())
            .arg(&venv)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let site = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());

        // What pip itself lists for the venv (names and versions).
        let pip = crate::testing::tool_stdout(
            venv.join("bin/python").to_str().unwrap(),
            &[
                "-m",
                "pip",
                "list",
                "--format=json",
                "--disable-pip-version-check",
            ],
        );
        let pip: Vec<serde_json::Value> = serde_json::from_str(&pip).unwrap();
        let mut pip_list: Vec<(String, String)> = pip
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_owned(),
                    p["version"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        pip_list.sort();

        // What importlib.metadata reads from that directory, every header we report.
        let probe = r#"
import sys, json, importlib.metadata as md
out = []
for d in md.distributions(path=[sys.argv[1]]):
    m = d.metadata
    out.append([str(d._path), m["Name"], m["Version"], m["Summary"], m["Author"], m["License"]])
print(json.dumps(out))
"#;
        let out = crate::testing::tool_stdout(
            python.to_str().unwrap(),
            &["-c", probe, site.to_str().unwrap()],
        );
        let mut expected: Vec<Vec<Option<String>>> = serde_json::from_str(&out).unwrap();
        expected.sort();

        let rows = rows_for_directory(&site);
        let mut got: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|r| {
                assert_eq!(r[Col::uid as usize], Value::from(0));
                assert_eq!(
                    text_or_null(&r[Col::directory as usize]).unwrap(),
                    site.to_str().unwrap()
                );
                texts_or_null(
                    r,
                    &[
                        Col::path,
                        Col::name,
                        Col::version,
                        Col::summary,
                        Col::author,
                        Col::license,
                    ],
                )
            })
            .collect();
        got.sort();
        assert_eq!(got, expected);
        assert!(got.iter().any(|r| r[1].as_deref() == Some("oxq-demo")));
        assert!(got.iter().any(|r| r[1].as_deref() == Some("legacy-thing")));

        let mut got_names: Vec<(String, String)> = got
            .iter()
            .map(|r| (r[1].clone().unwrap(), r[2].clone().unwrap()))
            .collect();
        got_names.sort();
        assert_eq!(got_names, pip_list);
    }

    fn write_dist(site: &Path, dir: &str, metadata: &[u8]) {
        let d = site.join(dir);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("METADATA"), metadata).unwrap();
    }

    /// A user's `~/.local` and pyenv site directories give rows with that user's uid; a
    /// pyenv alias link is not scanned twice; hostile metadata files give a row without
    /// headers (as osquery) and a warning, never a hang.
    #[test]
    fn user_sites_of_a_fixture_home_with_hostile_files() {
        let home = tempfile::tempdir().unwrap();
        let local = home.path().join(".local/lib/python3.11/site-packages");
        write_dist(&local, "good-1.0.dist-info", b"Name: good\nVersion: 1.0\n");
        write_dist(&local, "fifo-1.0.dist-info", b"");
        let fifo = local.join("fifo-1.0.dist-info/METADATA");
        fs::remove_file(&fifo).unwrap();
        testing::mkfifo(&fifo);
        fs::create_dir(local.join("zero-1.0.dist-info")).unwrap();
        let zero = local.join("zero-1.0.dist-info/METADATA");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        fs::create_dir(local.join("huge-1.0.egg-info")).unwrap();
        let huge = local.join("huge-1.0.egg-info/PKG-INFO");
        testing::huge_sparse_file(&huge);
        // A file named like a dist-info directory is not a package.
        fs::write(local.join("stray.dist-info"), "Name: stray\n").unwrap();
        let pyenv = home
            .path()
            .join(".pyenv/versions/3.12.1/lib/python3.12/site-packages");
        write_dist(
            &pyenv,
            "pyenvpkg-2.0.dist-info",
            b"Name: pyenvpkg\nVersion: 2.0\n",
        );
        std::os::unix::fs::symlink("3.12.1", home.path().join(".pyenv/versions/3.12")).unwrap();

        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        let mine: Vec<(String, Option<String>)> = rows
            .iter()
            .filter(|r| r[Col::uid as usize] == Value::from(testing::FIXTURE_UID))
            .map(|r| {
                let path = text_or_null(&r[Col::path as usize]).unwrap();
                let name = path.rsplit('/').next().unwrap().to_owned();
                (name, text_or_null(&r[Col::name as usize]))
            })
            .collect();
        assert_eq!(
            mine,
            [
                ("fifo-1.0.dist-info".to_owned(), None),
                ("good-1.0.dist-info".to_owned(), Some("good".to_owned())),
                ("huge-1.0.egg-info".to_owned(), None),
                ("zero-1.0.dist-info".to_owned(), None),
                (
                    "pyenvpkg-2.0.dist-info".to_owned(),
                    Some("pyenvpkg".to_owned())
                ),
            ]
        );
        testing::assert_logged(&logged, log::Level::Warn, &fifo, "FIFO");
        testing::assert_logged(&logged, log::Level::Warn, &zero, "character device");
        testing::assert_logged(&logged, log::Level::Warn, &huge, "read limit");
    }

    /// `uid = <fixture uid>` scans that user's directories only: no system directory
    /// (uid 0) is listed, though this host has some.
    #[test]
    fn a_uid_constraint_skips_the_system_directories() {
        let home = tempfile::tempdir().unwrap();
        let local = home.path().join(".local/lib/python3.12/site-packages");
        write_dist(&local, "mine-1.0.dist-info", b"Name: mine\nVersion: 1.0\n");
        let user = testing::fixture_account("fixture", testing::FIXTURE_UID, home.path());
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::uid,
            Op::Eq,
            i64::from(testing::FIXTURE_UID),
        );
        let mut rows = Rows::for_context(&ctx);
        generate_for(&ctx, &[user], &mut rows);
        assert_eq!(rows.column(Col::name), [&Value::from("mine")]);
        assert_eq!(
            rows.column(Col::directory),
            [&Value::from(local.to_str().unwrap())]
        );
    }

    /// A METADATA whose header line runs for megabytes is read up to the line bound and
    /// no further (text past the cut is not taken for headers): a row, no hang.
    #[test]
    fn an_overlong_header_line_is_cut_and_ends_the_headers() {
        let site = tempfile::tempdir().unwrap();
        let mut long = b"Name: long\nSummary: ".to_vec();
        long.extend(std::iter::repeat_n(b'x', 3 << 20));
        // Past the cut, text that looks like a header must not be taken for one.
        long.extend_from_slice(b"\nAuthor: not a header\n");
        write_dist(site.path(), "long-1.dist-info", &long);
        let rows = testing::within_10s({
            let dir = site.path().to_owned();
            move || rows_for_directory(&dir)
        });
        assert_eq!(rows.len(), 1);
        assert_eq!(
            text_or_null(&rows[0][Col::name as usize]).as_deref(),
            Some("long")
        );
        assert_eq!(rows[0][Col::author as usize], Value::Null);
        let summary = text_or_null(&rows[0][Col::summary as usize]).unwrap();
        assert!(
            summary.len() < oxquery_sys::safe_read::MAX_LINE,
            "{}",
            summary.len()
        );
    }

    /// The rows of `uid = getuid()` (the system directories when that is root, and our
    /// own user site directories) agree with `importlib.metadata` over the same
    /// directories, found here by listing them.
    #[test]
    fn live_rows_for_my_uid_agree_with_importlib_metadata() {
        let Some(python) = oxquery_test_support::require_tool("python3") else {
            return;
        };
        let (rows, me) = testing::live_rows_for_my_uid(&SPEC, Col::uid, generate);
        let mut sites = Vec::new();
        if me.uid == 0 {
            for (lib, site) in SYSTEM_LIBS {
                sites.extend(python_sites(&Root::host(), Path::new(lib), site));
            }
        }
        sites.extend(user_sites(&Root::host(), &me));
        sites.dedup();
        let probe = r#"
import sys, json, os, importlib.metadata as md
out = []
for site in sys.argv[1:]:
    for d in md.distributions(path=[site]):
        p = str(d._path)
        if os.path.isdir(p) and os.path.dirname(p) == site:
            out.append([p, d.metadata["Name"], d.metadata["Version"]])
print(json.dumps(out))
"#;
        let mut args = vec!["-c", probe];
        args.extend(sites.iter().map(|s| s.to_str().unwrap()));
        let out = crate::testing::tool_stdout(python.to_str().unwrap(), &args);
        let mut expected: Vec<Vec<Option<String>>> = serde_json::from_str(&out).unwrap();
        expected.sort();
        let mut got: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|r| texts_or_null(r, &[Col::path, Col::name, Col::version]))
            .collect();
        got.sort();
        assert_eq!(got, expected);
        testing::note_live("python_packages", got.len(), &sites);
    }
}
