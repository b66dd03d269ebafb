//! `deb_packages`: the packages dpkg knows as installed, read straight from its status
//! database (`<admindir>/status`, deb822 paragraphs), with no subprocess and no libdpkg.
//!
//! As osquery (which asks libdpkg): every package whose status is not `not-installed`
//! (so `config-files`, `half-installed` and the like are listed too, as `dpkg-query -W`
//! lists them), one row per package and architecture. `version` is written as dpkg
//! writes it unambiguously (an epoch of 0 dropped), `revision` is the Debian revision
//! (after the last `-`), `status` the three words `want eflag status`, and `source`,
//! `maintainer`, `section`, `priority` the fields as the database holds them (empty when
//! absent). As dpkg, the journal of an unfinished dpkg run (`<admindir>/updates/NNNN`)
//! is applied over the status file. dpkg refuses a whole database with one bad
//! paragraph; here a paragraph without a valid `Package` name or `Status` is skipped and
//! the rest listed.
//!
//! `admindir = '<dir>'` reads another dpkg database (a chroot's, a fixture's) and rows
//! carry the directory; `pid_with_namespace = N` reads it as process N sees it, through
//! `/proc/N/root`.

use super::deb822;
use crate::common;
use oxquery_sys::safe_read::{self, Root};
use oxquery_table::{QueryContext, Rows, TableResult, Value, table};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

table! {
    name: "deb_packages",
    description: "The installed DEB packages: every package in dpkg's status database whose status is not not-installed, read from <admindir>/status.",
    attributes: [CACHEABLE],
    columns: {
        name: Text [] "Package name (without the architecture qualifier)",
        version: Text [COLLATE_VERSION_DPKG] "Package version, [epoch:]upstream[-revision]; compares as dpkg does with COLLATE version_dpkg",
        source: Text [] "The Source field: the source package, with its version in parentheses when it differs; empty when the source package has the binary's name",
        size: BigInt [] "Installed-Size field: estimated disk space the package uses, in KiB as dpkg records it",
        arch: Text [] "Package architecture (amd64, all, ...)",
        revision: Text [] "Debian revision: the part of the version after its last hyphen, empty for native packages",
        status: Text [] "dpkg status as three words: wanted state, error flag, package state (e.g. install ok installed)",
        maintainer: Text [] "Maintainer field",
        section: Text [] "Section field (e.g. admin, libs)",
        priority: Text [] "Priority field (required, important, standard, optional, extra)",
        admindir: Text [ADDITIONAL | OPTIMIZED] "dpkg administrative directory the row was read from; constrain it to read another database (default /var/lib/dpkg)",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Read the database inside this process's mount namespace; 0 in rows read from the host's",
        mount_namespace_id: Text [HIDDEN] "Inode of the mount namespace the row was read in; NULL for the host's",
    },
    examples: [
        "select name, version, arch from deb_packages where name = 'libc6'",
        "select name, version from deb_packages where name = 'openssl' and version < '3.0.11' collate version_dpkg",
    ],
}

/// dpkg's default administrative directory.
pub(crate) const DEFAULT_ADMINDIR: &str = "/var/lib/dpkg";

const WANTS: [&str; 5] = ["unknown", "install", "hold", "deinstall", "purge"];
const EFLAGS: [&str; 2] = ["ok", "reinstreq"];
const STATES: [&str; 8] = [
    "not-installed",
    "config-files",
    "half-installed",
    "unpacked",
    "half-configured",
    "triggers-awaited",
    "triggers-pending",
    "installed",
];

/// One package of the status database, its fields borrowed from the file's text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DpkgRecord<'a> {
    pub name: &'a str,
    /// `want eflag state`, each checked against dpkg's names.
    pub status: [&'a str; 3],
    pub version: Option<&'a [u8]>,
    pub arch: Option<&'a [u8]>,
    pub multi_arch: Option<&'a [u8]>,
    pub source: Option<&'a [u8]>,
    pub installed_size: Option<&'a [u8]>,
    pub maintainer: Option<&'a [u8]>,
    pub section: Option<&'a [u8]>,
    pub priority: Option<&'a [u8]>,
}

/// Whether `name` is a package name dpkg accepts: an alphanumeric first character, then
/// alphanumerics and `-+.`.
fn valid_package_name(name: &[u8]) -> bool {
    name.first().is_some_and(u8::is_ascii_alphanumeric)
        && name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
}

/// The three words of a `Status` field, when each is one dpkg knows.
fn parse_status(value: &[u8]) -> Option<[&str; 3]> {
    let text = std::str::from_utf8(value).ok()?;
    let mut words = text.split_ascii_whitespace();
    let want = words.next().filter(|w| WANTS.contains(w))?;
    let eflag = words.next().filter(|w| EFLAGS.contains(w))?;
    let state = words.next().filter(|w| STATES.contains(w))?;
    if words.next().is_some() {
        return None;
    }
    Some([want, eflag, state])
}

/// A record being read from a paragraph's fields.
#[derive(Default)]
struct RecordBuilder<'a> {
    record: DpkgRecord<'a>,
    name: Option<&'a [u8]>,
    status: Option<&'a [u8]>,
}

impl<'a> RecordBuilder<'a> {
    fn field(&mut self, field: &[u8], value: &'a [u8]) {
        let r = &mut self.record;
        // Field names are case-insensitive; dispatch on length first (most fields of a
        // paragraph are ones we skip: Description, Depends, Conffiles...).
        let slot = match field.len() {
            6 if field.eq_ignore_ascii_case(b"Status") => &mut self.status,
            6 if field.eq_ignore_ascii_case(b"Source") => &mut r.source,
            7 if field.eq_ignore_ascii_case(b"Package") => &mut self.name,
            7 if field.eq_ignore_ascii_case(b"Version") => &mut r.version,
            7 if field.eq_ignore_ascii_case(b"Section") => &mut r.section,
            8 if field.eq_ignore_ascii_case(b"Priority") => &mut r.priority,
            10 if field.eq_ignore_ascii_case(b"Maintainer") => &mut r.maintainer,
            10 if field.eq_ignore_ascii_case(b"Multi-Arch") => &mut r.multi_arch,
            12 if field.eq_ignore_ascii_case(b"Architecture") => &mut r.arch,
            14 if field.eq_ignore_ascii_case(b"Installed-Size") => &mut r.installed_size,
            _ => return,
        };
        *slot = Some(value);
    }

    /// The paragraph's record; `None` when it lacks a valid `Package` name or `Status`.
    fn finish(self) -> Option<DpkgRecord<'a>> {
        let mut r = self.record;
        let name = self.name.filter(|n| valid_package_name(n))?;
        r.name = std::str::from_utf8(name).ok()?;
        r.status = parse_status(self.status?)?;
        Some(r)
    }
}

/// Calls `f` with every well-formed record of a status database text, in file order.
fn for_each_record<'a>(text: &'a [u8], mut f: impl FnMut(DpkgRecord<'a>)) {
    let mut builder = RecordBuilder::default();
    deb822::scan(text, |event| match event {
        deb822::Event::Field { name, value } => builder.field(name, value),
        deb822::Event::End => {
            if let Some(r) = std::mem::take(&mut builder).finish() {
                f(r);
            }
        }
    });
}

/// Every package of a status database that is not `not-installed`.
#[cfg(test)]
pub(crate) fn installed_records(text: &[u8]) -> Vec<DpkgRecord<'_>> {
    let mut out = Vec::new();
    for_each_installed(text, &[], |r| out.push(r));
    out
}

/// Calls `f` with every package of a status database, with the journal of a dpkg run
/// applied, that is not `not-installed`. dpkg writes each package it changes to
/// `updates/<NNNN>` (one paragraph each) and folds them into `status` only from time to
/// time; it reads them over `status` (later files win), and so does this.
pub(crate) fn for_each_installed<'a>(
    status: &'a [u8],
    updates: &'a [Vec<u8>],
    mut f: impl FnMut(DpkgRecord<'a>),
) {
    let key = |r: &DpkgRecord<'a>| (r.name, r.arch.unwrap_or_default());
    let mut journal: HashMap<(&'a str, &'a [u8]), (DpkgRecord<'a>, bool)> = HashMap::new();
    for text in updates {
        for_each_record(text, |r| {
            journal.insert(key(&r), (r, false));
        });
    }
    let mut give = |r: DpkgRecord<'a>| {
        if r.status[2] != "not-installed" {
            f(r);
        }
    };
    for_each_record(status, |r| {
        if journal.is_empty() {
            return give(r);
        }
        match journal.get_mut(&key(&r)) {
            Some((newer, used)) => {
                *used = true;
                give(newer.clone());
            }
            None => give(r),
        }
    });
    // Packages the journal adds come after those of the status file.
    let mut added: Vec<DpkgRecord<'a>> = journal
        .into_values()
        .filter(|(_, used)| !used)
        .map(|(r, _)| r)
        .collect();
    added.sort_by(|a, b| key(a).cmp(&key(b)));
    added.into_iter().for_each(give);
}

/// A version as dpkg describes it unambiguously: a zero epoch is dropped unless the
/// rest holds a colon (`0:1.2-3` is `1.2-3`); anything else as written.
pub(crate) fn describe_version(raw: &[u8]) -> &[u8] {
    let Some(colon) = memchr::memchr(b':', raw) else {
        return raw;
    };
    let (epoch, rest) = (&raw[..colon], &raw[colon + 1..]);
    if !epoch.is_empty() && epoch.iter().all(|&c| c == b'0') && !rest.contains(&b':') {
        rest
    } else {
        raw
    }
}

/// The Debian revision of a version: after the last hyphen of the part after the epoch.
pub(crate) fn revision(version: &[u8]) -> &[u8] {
    let upstream = match memchr::memchr(b':', version) {
        Some(i) if version[..i].iter().all(u8::is_ascii_digit) => &version[i + 1..],
        _ => version,
    };
    match memchr::memrchr(b'-', upstream) {
        Some(i) => &upstream[i + 1..],
        None => b"",
    }
}

/// Text from database bytes: `Text` when UTF-8, else the bytes unchanged.
pub(crate) fn text_value(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => Value::Text(s.to_owned()),
        Err(_) => Value::Blob(bytes.to_vec()),
    }
}

/// One database a query reads: the admin dir as the query named it, and the process
/// whose mount namespace it is read in (0: ours).
#[derive(Debug, Clone)]
pub(crate) struct Database {
    pub admindir: OsString,
    /// Where the admin dir is resolved: ours, or a process's root.
    pub root: Root,
}

impl Database {
    /// The databases a query names with its `admindir` and `pid_with_namespace`
    /// constraints (`/var/lib/dpkg` in our namespace without them).
    pub(crate) fn for_query(
        ctx: &QueryContext,
        admindir: impl Into<usize>,
        pid: Option<usize>,
    ) -> Vec<Database> {
        let dirs = ctx
            .eq_paths(admindir)
            .unwrap_or_else(|| vec![OsString::from(DEFAULT_ADMINDIR)]);
        let roots = match pid {
            Some(p) => common::namespace_roots(ctx, p),
            None => vec![Root::host()],
        };
        let mut out = Vec::new();
        for root in roots {
            for dir in &dirs {
                out.push(Database {
                    admindir: dir.clone(),
                    root: root.clone(),
                });
            }
        }
        out
    }

    /// A file of the admin dir, inside [`Database::root`].
    pub(crate) fn path(&self, file: impl AsRef<OsStr>) -> PathBuf {
        let mut path = PathBuf::from(&self.admindir);
        path.push(file.as_ref());
        path
    }

    /// The status database's text and its journal; `None`, logged, when the status
    /// file cannot be read.
    pub(crate) fn read(&self, ctx: &QueryContext) -> Option<StatusDb> {
        let path = self.path("status");
        let policy = common::user_file_policy(ctx);
        let status = match safe_read::read_bounded_in(&self.root, &path, &policy) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                log::info!(
                    "Table {}: no dpkg database at {} (not a dpkg system?)",
                    ctx.spec().name,
                    self.root.display(&path).display()
                );
                return None;
            }
            Err(e) => {
                common::report_read_error(ctx, &self.root.display(&path), &e);
                return None;
            }
        };
        // The journal's files are named by number (0000, 0001...); dpkg's temporary
        // files there (tmp.i) are not part of it.
        let mut names: Vec<OsString> = self
            .root
            .read_dir_names(&self.path("updates"))
            .map(|entries| {
                entries
                    .into_iter()
                    .filter(|n| !n.is_empty() && n.as_bytes().iter().all(u8::is_ascii_digit))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        let updates = names
            .iter()
            .filter_map(|n| {
                let path = self.path("updates").join(n);
                common::read_file_in(ctx, &self.root, &path, &policy)
            })
            .collect();
        Some(StatusDb { status, updates })
    }
}

/// A dpkg database as read: the status file and the journal files of a dpkg run.
pub(crate) struct StatusDb {
    pub status: Vec<u8>,
    pub updates: Vec<Vec<u8>>,
}

impl StatusDb {
    /// Calls `f` with each package that is not `not-installed` (see
    /// [`for_each_installed`]).
    pub(crate) fn for_each_installed<'a>(&'a self, f: impl FnMut(DpkgRecord<'a>)) {
        for_each_installed(&self.status, &self.updates, f);
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for db in Database::for_query(ctx, Col::admindir, Some(Col::pid_with_namespace.into())) {
        ctx.check()?;
        let Some(database) = db.read(ctx) else {
            continue;
        };
        let namespace = if db.root.pid() > 0 && ctx.is_used(Col::mount_namespace_id) {
            db.root.mount_namespace_id()
        } else {
            None
        };
        database.for_each_installed(|r| {
            let mut row = rows.row();
            row.set(Col::name, r.name);
            let version = r.version.unwrap_or_default();
            row.set_with(Col::version, || text_value(describe_version(version)));
            row.set_with(Col::source, || text_value(r.source.unwrap_or_default()));
            row.set_with(Col::size, || {
                r.installed_size
                    .and_then(|s| std::str::from_utf8(s).ok()?.parse::<i64>().ok())
            });
            row.set_with(Col::arch, || text_value(r.arch.unwrap_or_default()));
            row.set_with(Col::revision, || text_value(revision(version)));
            row.set_with(Col::status, || r.status.join(" "));
            row.set_with(Col::maintainer, || {
                text_value(r.maintainer.unwrap_or_default())
            });
            row.set_with(Col::section, || text_value(r.section.unwrap_or_default()));
            row.set_with(Col::priority, || text_value(r.priority.unwrap_or_default()));
            row.set_with(Col::admindir, || db.admindir.clone());
            row.set(Col::pid_with_namespace, db.root.pid());
            if let Some(ns) = &namespace {
                row.set(Col::mount_namespace_id, ns.as_str());
            }
        });
    }
    Ok(())
}

/// Test support shared with the other dpkg tables' tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::path::Path;

    /// A status paragraph as dpkg writes one.
    pub fn paragraph(name: &str, arch: &str, version: &str, status: &str) -> String {
        format!(
            "Package: {name}\nStatus: {status}\nPriority: optional\nSection: misc\n\
             Installed-Size: 42\nMaintainer: Test <t@example.org>\nArchitecture: {arch}\n\
             Version: {version}\nDescription: test package {name}\n a longer description\n .\n more\n\n"
        )
    }

    /// Makes `dir` a dpkg admin dir holding `status` (and the empty files and
    /// directories dpkg-query expects).
    pub fn admindir(dir: &Path, status: &[u8]) {
        std::fs::create_dir_all(dir.join("info")).unwrap();
        std::fs::create_dir_all(dir.join("updates")).unwrap();
        std::fs::write(dir.join("status"), status).unwrap();
        std::fs::write(dir.join("available"), b"").unwrap();
        // The info database's format: 1 names Multi-Arch: same lists <name>:<arch>.list.
        std::fs::write(dir.join("info/format"), b"1\n").unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::testing::{rows_of, text};
    use oxquery_table::{Host, Op};
    use oxquery_test_support::require_tool;
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::process::Command;

    /// `name arch -> (version, status)` as `dpkg-query -W` prints them for `admindir`;
    /// `None` when the test skips (no dpkg-query outside CI).
    fn dpkg_query(admindir: &Path) -> Option<BTreeMap<(String, String), (String, String)>> {
        let tool = require_tool("dpkg-query")?;
        let out = Command::new(tool)
            .arg(format!("--admindir={}", admindir.display()))
            .args([
                "-W",
                "-f",
                "${Package} ${Version} ${Architecture} ${Status}\\n",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dpkg-query: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut map = BTreeMap::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f.len(), 6, "{line:?}");
            let old = map.insert(
                (f[0].to_owned(), f[2].to_owned()),
                (f[1].to_owned(), f[3..].join(" ")),
            );
            assert!(old.is_none(), "{line:?} twice");
        }
        Some(map)
    }

    /// Our rows for `admindir`, keyed as [`dpkg_query`] keys them.
    fn ours(admindir: Option<&Path>) -> BTreeMap<(String, String), (String, String)> {
        let host = Host::default();
        let mut ctx = QueryContext::everything(&SPEC, &host);
        if let Some(dir) = admindir {
            ctx = ctx.with_constraint(Col::admindir, Op::Eq, dir.to_str().unwrap());
        }
        let mut map = BTreeMap::new();
        for row in rows_of(&ctx, generate) {
            let key = (
                text(&row[Col::name as usize]),
                text(&row[Col::arch as usize]),
            );
            let value = (
                text(&row[Col::version as usize]),
                text(&row[Col::status as usize]),
            );
            assert_eq!(
                text(&row[Col::admindir as usize]),
                admindir.map_or(DEFAULT_ADMINDIR.into(), |d| d.display().to_string())
            );
            assert!(map.insert(key.clone(), value).is_none(), "{key:?} twice");
        }
        map
    }

    #[test]
    fn agrees_with_dpkg_query_on_this_host() {
        let ours = ours(None);
        if !Path::new(DEFAULT_ADMINDIR).join("status").exists() {
            assert!(ours.is_empty());
            return;
        }
        let Some(theirs) = dpkg_query(Path::new(DEFAULT_ADMINDIR)) else {
            return;
        };
        assert!(!theirs.is_empty());
        assert_eq!(ours, theirs);
    }

    #[test]
    fn fixture_database_agrees_with_dpkg_query() {
        let dir = tempfile::tempdir().unwrap();
        let mut status = String::new();
        status += &paragraph("alpha", "amd64", "1.0-1", "install ok installed");
        status += &paragraph("beta", "all", "2:3.4~rc1-0ubuntu2", "hold ok installed");
        status += &paragraph("gamma", "amd64", "5.0", "deinstall ok config-files");
        status += &paragraph("delta", "amd64", "1.0", "purge ok not-installed");
        // A library installed for two architectures (Multi-Arch: same).
        for arch in ["amd64", "i386"] {
            status += &paragraph("libm", arch, "1.1-2", "install ok installed").replacen(
                "\nStatus",
                "\nMulti-Arch: same\nStatus",
                1,
            );
        }
        status += &paragraph("half", "amd64", "0.1-1", "install reinstreq half-installed");
        admindir(dir.path(), status.as_bytes());
        let ours = ours(Some(dir.path()));
        assert_eq!(ours.len(), 6, "{ours:?}");
        assert!(!ours.contains_key(&("delta".into(), "amd64".into())));
        assert_eq!(
            ours[&("beta".into(), "all".into())],
            ("2:3.4~rc1-0ubuntu2".into(), "hold ok installed".into())
        );
        if let Some(theirs) = dpkg_query(dir.path()) {
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn journal_of_a_dpkg_run_is_applied_as_dpkg_query_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut status = String::new();
        status += &paragraph("alpha", "amd64", "1.0-1", "install ok installed");
        status += &paragraph("beta", "amd64", "1.0-1", "install ok installed");
        status += &paragraph("gamma", "amd64", "1.0-1", "install ok installed");
        admindir(dir.path(), status.as_bytes());
        let updates = dir.path().join("updates");
        // An upgrade of alpha in two steps, beta purged, a new package; a temporary file
        // that is not part of the journal.
        let write = |name: &str, text: String| std::fs::write(updates.join(name), text).unwrap();
        write(
            "0000",
            paragraph("alpha", "amd64", "2.0-1", "install ok unpacked"),
        );
        write(
            "0001",
            paragraph("beta", "amd64", "1.0-1", "purge ok not-installed"),
        );
        write(
            "0002",
            paragraph("alpha", "amd64", "2.0-1", "install ok installed"),
        );
        write(
            "0003",
            paragraph("new", "all", "0.1", "install ok installed"),
        );
        write(
            "tmp.i",
            paragraph("gamma", "amd64", "9", "install ok installed"),
        );
        let got = ours(Some(dir.path()));
        let want: BTreeMap<(String, String), (String, String)> = [
            ("alpha", "amd64", "2.0-1"),
            ("gamma", "amd64", "1.0-1"),
            ("new", "all", "0.1"),
        ]
        .iter()
        .map(|(n, a, v)| {
            (
                (n.to_string(), a.to_string()),
                (v.to_string(), "install ok installed".to_string()),
            )
        })
        .collect();
        assert_eq!(got, want);
        if let Some(theirs) = dpkg_query(dir.path()) {
            assert_eq!(got, theirs);
        }
    }

    #[test]
    fn every_column_of_a_fixture() {
        let dir = tempfile::tempdir().unwrap();
        let status = "Package: libfoo2\nStatus: install ok installed\nPriority: important\n\
                      Section: libs\nInstalled-Size: 1234\nMaintainer: Foo Team <foo@example.org>\n\
                      Architecture: amd64\nMulti-Arch: same\nSource: foo (2.0-3)\n\
                      Version: 0:2.0-3+b1\nDepends: libc6 (>= 2.34)\nDescription: foo\n\n\
                      Package: native\nStatus: install ok unpacked\nArchitecture: all\nVersion: 7\n";
        admindir(dir.path(), status.as_bytes());
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::admindir,
            Op::Eq,
            dir.path().to_str().unwrap(),
        );
        let rows = rows_of(&ctx, generate);
        assert_eq!(rows.len(), 2);
        let r = &rows[0];
        let t = |c: Col| text(&r[c as usize]);
        assert_eq!(t(Col::name), "libfoo2");
        assert_eq!(t(Col::version), "2.0-3+b1");
        assert_eq!(t(Col::revision), "3+b1");
        assert_eq!(t(Col::source), "foo (2.0-3)");
        assert_eq!(r[Col::size as usize], Value::Integer(1234));
        assert_eq!(t(Col::arch), "amd64");
        assert_eq!(t(Col::status), "install ok installed");
        assert_eq!(t(Col::maintainer), "Foo Team <foo@example.org>");
        assert_eq!(t(Col::section), "libs");
        assert_eq!(t(Col::priority), "important");
        assert_eq!(r[Col::pid_with_namespace as usize], Value::Integer(0));
        assert_eq!(r[Col::mount_namespace_id as usize], Value::Null);
        let n = &rows[1];
        assert_eq!(text(&n[Col::revision as usize]), "");
        assert_eq!(text(&n[Col::source as usize]), "");
        assert_eq!(n[Col::size as usize], Value::Null);
        assert_eq!(text(&n[Col::status as usize]), "install ok unpacked");
    }

    #[test]
    fn truncated_and_corrupted_databases_skip_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut good = String::new();
        for i in 0..20 {
            good += &paragraph(&format!("pkg{i}"), "amd64", "1.0-1", "install ok installed");
        }
        // Every truncation: never a panic, never a record that was not in the file, and
        // each record whose paragraph is complete is listed.
        for len in (0..good.len()).step_by(7) {
            let cut = &good.as_bytes()[..len];
            let got: Vec<_> = installed_records(cut)
                .into_iter()
                .map(|r| r.name.to_owned())
                .collect();
            let complete = cut.windows(2).filter(|w| w == b"\n\n").count();
            assert!(got.len() >= complete && got.len() <= complete + 1, "{len}");
            for (i, name) in got.iter().enumerate() {
                assert_eq!(name, &format!("pkg{i}"));
            }
        }
        // Corrupted paragraphs are skipped, their neighbours kept.
        let corrupted = format!(
            "{}Package: bad status\nStatus: install ok\n\n\
             Package: -illegal\nStatus: install ok installed\n\n\
             Status: install ok installed\nVersion: 1\n\n\
             Package: unknownwant\nStatus: want ok installed\n\n\
             \u{0}\u{1}\u{2}:::\n\n\
             Package: bin\u{e9}\nStatus: install ok installed\n\n{}",
            paragraph("first", "amd64", "1", "install ok installed"),
            paragraph("last", "amd64", "1", "install ok installed"),
        );
        admindir(dir.path(), corrupted.as_bytes());
        let got = ours(Some(dir.path()));
        let names: Vec<&str> = got.keys().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["first", "last"]);
        // Binary garbage.
        let garbage: Vec<u8> = (0..300_000u32).map(|i| (i * 7919 % 253) as u8).collect();
        assert_eq!(installed_records(&garbage).len(), 0);
    }

    #[test]
    fn missing_database_gives_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ours(Some(&dir.path().join("absent"))).is_empty());
    }

    #[test]
    fn versions_and_revisions() {
        assert_eq!(describe_version(b"1:2.3-4"), b"1:2.3-4");
        assert_eq!(describe_version(b"0:2.3-4"), b"2.3-4");
        assert_eq!(describe_version(b"0:2:3"), b"0:2:3");
        assert_eq!(describe_version(b"2.3"), b"2.3");
        assert_eq!(revision(b"1:2.3-4-5ubuntu1"), b"5ubuntu1");
        assert_eq!(revision(b"2.3"), b"");
        assert_eq!(revision(b""), b"");
    }

    #[test]
    fn version_collates_as_dpkg() {
        let dir = tempfile::tempdir().unwrap();
        let mut status = String::new();
        status += &paragraph("old", "amd64", "1.0~rc1-1", "install ok installed");
        status += &paragraph("new", "amd64", "1.0-1", "install ok installed");
        status += &paragraph("epoch", "amd64", "1:0.1-1", "install ok installed");
        admindir(dir.path(), status.as_bytes());
        let engine = crate::testing::engine(&[&TABLE]);
        let sql = format!(
            "select name from deb_packages where admindir = '{}' and version < '1.0' \
             collate version_dpkg",
            dir.path().display()
        );
        let result = engine.query(&sql).unwrap();
        let names: Vec<String> = result.rows.iter().map(|r| text(&r[0])).collect();
        assert_eq!(names, ["old"]);
        let sql = format!(
            "select name from deb_packages where admindir = '{}' order by version",
            dir.path().display()
        );
        let result = engine.query(&sql).unwrap();
        let names: Vec<String> = result.rows.iter().map(|r| text(&r[0])).collect();
        assert_eq!(names, ["old", "new", "epoch"]);
    }

    #[test]
    fn pid_with_namespace_reads_through_proc_root() {
        let host = Host::default();
        let me = i64::from(std::process::id() as i32);
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::pid_with_namespace,
            Op::Eq,
            me,
        );
        let rows = rows_of(&ctx, generate);
        let host_rows = ours(None);
        assert_eq!(rows.len(), host_rows.len());
        if let Some(r) = rows.first() {
            assert_eq!(r[Col::pid_with_namespace as usize], Value::Integer(me));
            assert!(!text(&r[Col::mount_namespace_id as usize]).is_empty());
        }
    }
}
