//! `deb_package_files`: the files each installed DEB package owns, from dpkg's file lists
//! `<admindir>/info/<package>.list` (`<package>:<arch>.list` for `Multi-Arch: same`
//! packages), one path per line, as `dpkg-query -L` prints them.
//!
//! Packages come from the status database as in `deb_packages` (status not
//! `not-installed`). `package = 'x'` reads the status database and then only x's list;
//! `admindir = '<dir>'` reads another dpkg database, as in `deb_packages`.

use super::deb_packages::{Database, DpkgRecord};
use crate::common;
use oxquery_sys::safe_read;
use oxquery_table::{QueryContext, Rows, TableResult, Value, table};
use std::io;
use std::path::Path;

table! {
    name: "deb_package_files",
    description: "Files installed by DEB packages that are currently installed, from dpkg's per-package file lists (<admindir>/info/<package>.list).",
    columns: {
        package: Text [INDEX | OPTIMIZED] "Package name (without the architecture qualifier)",
        path: Text [INDEX] "Path of a file or directory the package installed",
        admindir: Text [ADDITIONAL | OPTIMIZED] "dpkg administrative directory the row was read from; constrain it to read another database (default /var/lib/dpkg)",
    },
    examples: [
        "select path from deb_package_files where package = 'coreutils'",
        "select package from deb_package_files where path = '/usr/bin/ls'",
    ],
}

/// The file names dpkg may have given a package's list, most likely first: dpkg
/// qualifies the names of `Multi-Arch: same` packages with their architecture (since
/// its info database format 1); older databases and other packages use the bare name.
fn list_names(r: &DpkgRecord) -> [String; 2] {
    let arch = String::from_utf8_lossy(r.arch.unwrap_or_default());
    let qualified = format!("{}:{arch}.list", r.name);
    let bare = format!("{}.list", r.name);
    if r.multi_arch == Some(b"same") {
        [qualified, bare]
    } else {
        [bare, qualified]
    }
}

/// Calls `f` with each path of the list file at `path`; `Err` (NotFound) when there is
/// no such file.
fn list_paths(ctx: &QueryContext, path: &Path, mut f: impl FnMut(&[u8])) -> io::Result<()> {
    let policy = common::user_file_policy(ctx);
    let skipped = safe_read::for_each_line(path, &policy, safe_read::MAX_LINE, |line| {
        if !line.is_empty() {
            f(line);
        }
    })?;
    if skipped > 0 {
        log::info!(
            "Table {}: skipped {skipped} overlong lines of {}",
            ctx.spec().name,
            path.display()
        );
    }
    Ok(())
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let wanted = ctx.eq_texts(Col::package);
    for db in Database::for_query(ctx, Col::admindir, None) {
        let Some(database) = db.read(ctx) else {
            continue;
        };
        let mut packages = Vec::new();
        database.for_each_installed(|r| {
            let listed = wanted
                .as_ref()
                .is_none_or(|w| w.binary_search_by(|p| p.as_str().cmp(r.name)).is_ok());
            if listed {
                packages.push(r);
            }
        });
        for r in packages {
            ctx.check()?;
            let mut found = false;
            for name in list_names(&r) {
                let path = db.path(format!("info/{name}"));
                let read = list_paths(ctx, &path, |line| {
                    let mut row = rows.row();
                    row.set(Col::package, r.name);
                    row.set_with(Col::path, || Value::from_bytes(line.to_vec()));
                    row.set_with(Col::admindir, || db.admindir.clone());
                });
                match read {
                    Ok(()) => {
                        found = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        common::report_read_error(ctx, &path, &e);
                        found = true;
                        break;
                    }
                }
            }
            if !found {
                log::debug!(
                    "Table {}: no file list for package {}",
                    ctx.spec().name,
                    r.name
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::deb_packages::installed_records;
    use crate::packages::deb_packages::testing::{admindir, paragraph};
    use crate::testing::{rows_of, text, tool_stdout};
    use oxquery_table::{Host, Op};
    use oxquery_test_support::require_tool;

    fn paths(ctx: &QueryContext) -> Vec<(String, String)> {
        rows_of(ctx, generate)
            .iter()
            .map(|r| {
                (
                    text(&r[Col::package as usize]),
                    text(&r[Col::path as usize]),
                )
            })
            .collect()
    }

    /// The paths `dpkg-query -L` lists for `package` (its notes on diversions left out).
    fn dpkg_query_list(tool: &Path, admindir: &str, package: &str) -> Vec<String> {
        let out = tool_stdout(
            tool.to_str().unwrap(),
            &[&format!("--admindir={admindir}"), "-L", package],
        );
        out.lines()
            .filter(|l| l.starts_with('/'))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn agrees_with_dpkg_query_for_some_host_packages() {
        let status = std::path::Path::new("/var/lib/dpkg/status");
        if !status.exists() {
            let host = Host::default();
            assert!(paths(&QueryContext::everything(&SPEC, &host)).is_empty());
            return;
        }
        let Some(tool) = require_tool("dpkg-query") else {
            return;
        };
        let text = std::fs::read(status).unwrap();
        // A few packages every Debian system has, plus one multi-arch library when there is one.
        let mut packages: Vec<String> = ["base-files", "dpkg", "coreutils", "libc6"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        if let Some(r) = installed_records(&text)
            .into_iter()
            .find(|r| r.multi_arch == Some(b"same"))
        {
            packages.push(r.name.to_owned());
        }
        let host = Host::default();
        for package in &packages {
            let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
                Col::package,
                Op::Eq,
                package.as_str(),
            );
            let ours: Vec<String> = paths(&ctx)
                .into_iter()
                .map(|(p, path)| {
                    assert_eq!(&p, package);
                    path
                })
                .collect();
            let theirs = dpkg_query_list(&tool, "/var/lib/dpkg", package);
            assert!(!theirs.is_empty(), "{package}");
            assert_eq!(ours, theirs, "{package}");
        }
    }

    #[test]
    fn fixture_lists_and_the_package_constraint() {
        let dir = tempfile::tempdir().unwrap();
        let mut status = String::new();
        status += &paragraph("alpha", "amd64", "1.0-1", "install ok installed");
        status += &paragraph("libm", "amd64", "1.1-2", "install ok installed").replacen(
            "\nStatus",
            "\nMulti-Arch: same\nStatus",
            1,
        );
        status += &paragraph("gone", "amd64", "1", "purge ok not-installed");
        status += &paragraph("nolist", "amd64", "1", "install ok installed");
        admindir(dir.path(), status.as_bytes());
        let info = dir.path().join("info");
        std::fs::write(info.join("alpha.list"), "/.\n/usr\n/usr/bin/alpha\n").unwrap();
        std::fs::write(info.join("libm:amd64.list"), "/.\n/usr/lib/libm.so.1\n").unwrap();
        // A stale list of a purged package is not listed.
        std::fs::write(info.join("gone.list"), "/usr/bin/gone\n").unwrap();
        let admin = dir.path().to_str().unwrap();
        let host = Host::default();
        let all =
            QueryContext::everything(&SPEC, &host).with_constraint(Col::admindir, Op::Eq, admin);
        let rows = rows_of(&all, generate);
        assert!(
            rows.iter()
                .all(|r| text(&r[Col::admindir as usize]) == admin)
        );
        let got = paths(&all);
        let want: Vec<(String, String)> = [
            ("alpha", "/."),
            ("alpha", "/usr"),
            ("alpha", "/usr/bin/alpha"),
            ("libm", "/."),
            ("libm", "/usr/lib/libm.so.1"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(got, want);
        let one = all.with_constraint(Col::package, Op::Eq, "libm");
        assert_eq!(paths(&one), want[3..]);
        if let Some(tool) = require_tool("dpkg-query") {
            for package in ["alpha", "libm"] {
                let theirs = dpkg_query_list(&tool, admin, package);
                let ours: Vec<String> = got
                    .iter()
                    .filter(|(p, _)| p == package)
                    .map(|(_, path)| path.clone())
                    .collect();
                assert_eq!(ours, theirs);
            }
        }
    }

    #[test]
    fn package_constraint_reads_only_that_list() {
        let dir = tempfile::tempdir().unwrap();
        let mut status = String::new();
        status += &paragraph("alpha", "amd64", "1", "install ok installed");
        status += &paragraph("beta", "amd64", "1", "install ok installed");
        admindir(dir.path(), status.as_bytes());
        let info = dir.path().join("info");
        std::fs::write(info.join("alpha.list"), "/a\n").unwrap();
        // beta's list is a FIFO: opening it for reading would block a reader that opened
        // it (the safe opener refuses it instead), so it must not even be tried here.
        crate::common::testing::mkfifo(&info.join("beta.list"));
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::admindir, Op::Eq, dir.path().to_str().unwrap())
            .with_constraint(Col::package, Op::Eq, "alpha");
        let (got, log) = crate::common::testing::capture_log(|| paths(&ctx));
        assert_eq!(got, [("alpha".to_string(), "/a".to_string())]);
        assert!(log.iter().all(|(_, m)| !m.contains("beta")), "{log:?}");
        // Without the constraint beta's list is tried, refused and reported.
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::admindir,
            Op::Eq,
            dir.path().to_str().unwrap(),
        );
        let (got, log) = crate::common::testing::capture_log(|| paths(&ctx));
        assert_eq!(got.len(), 1);
        assert!(log.iter().any(|(_, m)| m.contains("beta.list")), "{log:?}");
    }

    #[test]
    fn truncated_and_binary_lists_never_panic() {
        let dir = tempfile::tempdir().unwrap();
        let status = paragraph("alpha", "amd64", "1", "install ok installed");
        admindir(dir.path(), status.as_bytes());
        let mut list = b"/usr\n/usr/bin/\xff\xfe\n/usr/bin/partial".to_vec();
        list.extend((0..5000u32).map(|i| (i * 31 % 256) as u8));
        std::fs::write(dir.path().join("info/alpha.list"), &list).unwrap();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::admindir,
            Op::Eq,
            dir.path().to_str().unwrap(),
        );
        let rows = rows_of(&ctx, generate);
        assert_eq!(text(&rows[0][Col::path as usize]), "/usr");
        assert_eq!(
            rows[1][Col::path as usize],
            Value::Blob(b"/usr/bin/\xff\xfe".to_vec())
        );
        assert!(rows.len() > 2);
    }
}
