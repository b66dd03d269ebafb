//! What the three Gentoo tables share: the installed-package database
//! `/var/db/pkg/<category>/<package>-<version>/` (one directory per package, one small file
//! per property), the configuration under `/etc/portage` (each of `package.keywords`,
//! `package.use`, ... a file or a directory of files), and splitting an atom such as
//! `>=dev-lang/python-3.11.4-r1` into package and version as osquery does.

use crate::common;
use oxquery_sys::safe_read;
use oxquery_table::QueryContext;
use std::path::{Path, PathBuf};

/// The installed-package database, under a root.
pub(crate) const PACKAGE_DB: &str = "var/db/pkg";

/// One installed package: its directory and `<category>/<package>-<version>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstalledPackage {
    pub dir: PathBuf,
    pub atom: String,
}

/// The entries of `dir` that are directories, sorted by name (none when it cannot be
/// read: no such directory is the normal case on a host without portage).
fn subdirs(dir: &Path) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(PathBuf, String)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.path(), e.file_name().into_string().ok()?)))
        .filter(|(_, name)| !name.starts_with('.'))
        .collect();
    out.sort();
    out
}

/// Every package of the database under `root` (the `*/*` directories of `/var/db/pkg`).
pub(crate) fn installed_packages(table: &str, root: &Path) -> Vec<InstalledPackage> {
    let db = root.join(PACKAGE_DB);
    if !db.is_dir() {
        log::info!("{table}: no {} (not a Gentoo system?)", db.display());
        return Vec::new();
    }
    let mut out = Vec::new();
    for (category_dir, category) in subdirs(&db) {
        for (dir, package) in subdirs(&category_dir) {
            out.push(InstalledPackage {
                dir,
                atom: format!("{category}/{package}"),
            });
        }
    }
    out
}

/// A small file of a package's directory, trimmed; `None` when absent or unreadable.
pub(crate) fn package_file(ctx: &QueryContext, dir: &Path, name: &str) -> Option<String> {
    let path = dir.join(name);
    let bytes = safe_read::read_bounded(&path, &common::user_file_policy(ctx))
        .map_err(|e| common::report_read_error(ctx, &path, &e))
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).trim().to_owned())
}

/// The lines of a portage configuration entry under `root` (`etc/portage/package.use`,
/// ...): the file's, or those of every file in it when it is a directory (sorted by
/// name, hidden files and editor backups `*~` left out, as portage does).
pub(crate) fn config_lines(ctx: &QueryContext, root: &Path, entry: &str) -> Vec<String> {
    let path = root.join(entry);
    let mut files = Vec::new();
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(&path) {
            files = entries
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    !name.starts_with('.') && !name.ends_with('~')
                })
                .map(|e| e.path())
                .collect();
            files.sort();
        }
    } else {
        files.push(path);
    }
    let mut lines = Vec::new();
    let policy = common::user_file_policy(ctx);
    for file in files {
        common::file_lines(ctx, &file, &policy, |line| {
            lines.push(String::from_utf8_lossy(line).into_owned());
        });
    }
    lines
}

/// The first whitespace-separated field of a configuration line and the rest up to a
/// comment, or `None` for blank and comment lines.
pub(crate) fn config_fields(line: &str) -> Option<(&str, Vec<&str>)> {
    let mut fields = line
        .split_ascii_whitespace()
        .take_while(|f| !f.starts_with('#'));
    let first = fields.next()?;
    Some((first, fields.collect()))
}

/// Splits an atom into package and version as osquery does: leading `>`, `<`, `=`
/// operators go with the version (a lone leading `=` is dropped); the version starts
/// after the last `-` followed by a digit, or the one before it (so `-r1` revisions stay
/// with their version). `dev-lang/python-3.11.4-r1` is `dev-lang/python` and
/// `3.11.4-r1`; `>=app-misc/foo-1.0` is `app-misc/foo` and `>=1.0`.
pub(crate) fn split_package_version(atom: &str) -> (String, String) {
    let mut rest = atom.strip_suffix('/').unwrap_or(atom);
    let mut version = String::new();
    while let Some(op) = rest.chars().next().filter(|c| matches!(c, '>' | '<' | '=')) {
        if !(version.is_empty() && op == '=') {
            version.push(op);
        }
        rest = &rest[1..];
    }
    let divider = rest.find('/');
    let starts_version = |i: usize| {
        divider.is_none_or(|d| i > d) && rest.as_bytes().get(i + 1).is_some_and(u8::is_ascii_digit)
    };
    let last = rest.rfind('-');
    let split_at = match last {
        Some(i) if starts_version(i) => Some(i),
        Some(i) => rest[..i].rfind('-').filter(|&j| starts_version(j)),
        None => None,
    };
    match split_at {
        Some(i) => {
            version.push_str(&rest[i + 1..]);
            (rest[..i].to_owned(), version)
        }
        None => (rest.to_owned(), version),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use std::fs;
    use std::path::Path;

    /// Writes an installed package `atom` (`cat/name-version`) with `files` into the
    /// package database under `root`.
    pub fn package(root: &Path, atom: &str, files: &[(&str, &str)]) {
        let dir = root.join(super::PACKAGE_DB).join(atom);
        fs::create_dir_all(&dir).unwrap();
        for (name, content) in files {
            fs::write(dir.join(name), content).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_atoms_as_osquery() {
        let s = |a: &str| split_package_version(a);
        let p = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            s("dev-lang/python-3.11.4-r1"),
            p("dev-lang/python", "3.11.4-r1")
        );
        assert_eq!(
            s("sys-apps/portage-3.0.49"),
            p("sys-apps/portage", "3.0.49")
        );
        assert_eq!(s(">=app-misc/foo-1.0"), p("app-misc/foo", ">=1.0"));
        assert_eq!(s("=app-misc/foo-1.0"), p("app-misc/foo", "1.0"));
        assert_eq!(s("<app-misc/foo-2"), p("app-misc/foo", "<2"));
        assert_eq!(s("app-misc/foo"), p("app-misc/foo", ""));
        assert_eq!(s("app-misc/foo-bar"), p("app-misc/foo-bar", ""));
        assert_eq!(s("x11-libs/gtk+-3.24.38/"), p("x11-libs/gtk+", "3.24.38"));
        assert_eq!(s("media-libs/lib-3d-1.0"), p("media-libs/lib-3d", "1.0"));
        for hostile in ["", "-", "/-1", ">>>", "=", "a-", "-1-", "é-1"] {
            let _ = s(hostile);
        }
    }
}
