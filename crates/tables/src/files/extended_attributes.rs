//! `extended_attributes`: the extended attributes (xattrs) of files named by `path` or
//! found in a `directory`, one row per attribute.
//!
//! Constraints work as osquery's: `path =` / `path LIKE` name files or directories
//! (links are followed; anything else is skipped); `directory =` / `directory LIKE`
//! (folders only) list the directory the way osquery's `dir/*` glob does, so hidden
//! (dot) entries and subdirectories are not included. A value made only of printable
//! ASCII (0x20..=0x7e) is shown as is with `base64` = 0; any other value is shown
//! base64-encoded (standard alphabet, padded) with `base64` = 1.

use base64::Engine as _;
use oxquery_sys::pattern::{self, Select};
use oxquery_sys::xattr;
use oxquery_table::{QueryContext, Rows, TableResult, Value, table};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

table! {
    name: "extended_attributes",
    description: "Extended attributes (name and value) of the files a query names by path or directory.",
    columns: {
        path: Text [REQUIRED | OPTIMIZED] "File or directory whose attributes are listed; LIKE patterns expand",
        directory: Text [REQUIRED | OPTIMIZED] "Directory holding the file; constraining it lists the files inside",
        key: Text [] "Attribute name including its namespace, e.g. user.comment",
        value: Text [] "Attribute value: as stored when printable, otherwise base64",
        base64: Integer [] "1 if value is base64-encoded, 0 if it is the stored text",
    },
    examples: [
        "select * from extended_attributes where path = '/etc/passwd'",
        "select * from extended_attributes where directory = '/usr/bin'",
    ],
}

/// Whether osquery shows a value as text: every byte printable ASCII.
fn printable(value: &[u8]) -> bool {
    value.iter().all(|b| (0x20..0x7f).contains(b))
}

/// Names and values as the file system holds them: bytes, UTF-8 or not, unchanged.
fn text(bytes: &[u8]) -> Value {
    Value::from_bytes(bytes.to_vec())
}

/// Rows for every attribute of one file or directory.
fn add_rows(rows: &mut Rows, path: &Path) {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) => {
            log::debug!("extended_attributes: cannot list {}: {e}", path.display());
            return;
        }
    };
    let bytes = path.as_os_str().as_bytes();
    let (dir, _) = pattern::split(bytes);
    for name in names {
        // An attribute removed between the listing and the read is skipped.
        let Ok(value) = xattr::get(path, &name) else {
            continue;
        };
        let mut row = rows.row();
        row.set(Col::path, text(bytes));
        row.set(Col::directory, text(dir));
        row.set(Col::key, text(&name));
        let plain = printable(&value);
        if row.wants(Col::value) {
            let shown = if plain {
                text(&value)
            } else {
                Value::from(base64::engine::general_purpose::STANDARD.encode(&value))
            };
            row.set(Col::value, shown);
        }
        row.set(Col::base64, i64::from(!plain));
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let paths = crate::common::constrained_paths(ctx, Col::path, Select::All);
    for path in &paths {
        let path = Path::new(path);
        // Files and folders (after following links) have attributes worth listing.
        match fs::metadata(path) {
            Ok(m) if m.is_file() || m.is_dir() => add_rows(rows, path),
            _ => continue,
        }
    }

    let dirs = crate::common::constrained_paths(ctx, Col::directory, Select::Folders);
    for dir in &dirs {
        if !fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        // osquery globs `dir/*`: files only, dot files excluded, sorted.
        let mut files: BTreeSet<OsString> = BTreeSet::new();
        let _ = pattern::children(Path::new(dir), |child, kind| {
            let name = child.file_name().map_or(&[][..], |n| n.as_bytes());
            let is_dir = match kind {
                Some(k) if !k.is_symlink() => k.is_dir(),
                _ => fs::metadata(child).is_ok_and(|m| m.is_dir()),
            };
            if !name.starts_with(b".") && !is_dir {
                files.insert(child.as_os_str().to_owned());
            }
            std::ops::ControlFlow::Continue(())
        });
        for file in &files {
            add_rows(rows, Path::new(file));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rows_of;
    use oxquery_table::Op;
    use oxquery_table::{Host, Value};
    use std::collections::BTreeMap;
    use std::process::Command;

    fn setfattr(path: &Path, name: &str, value: &str) {
        let status = Command::new("setfattr")
            .args(["-n", name, "-v", value])
            .arg(path)
            .status()
            .expect("setfattr (package attr) runs");
        assert!(status.success(), "setfattr {name} {value}");
    }

    /// `getfattr -d -m - -e base64`: every attribute as (path, name) -> raw bytes.
    fn getfattr(paths: &[&Path]) -> BTreeMap<(String, String), Vec<u8>> {
        let out = Command::new("getfattr")
            .args(["--absolute-names", "-d", "-m", "-", "-e", "base64"])
            .args(paths)
            .output()
            .expect("getfattr runs");
        let mut file = String::new();
        let mut out_map = BTreeMap::new();
        for line in String::from_utf8(out.stdout).unwrap().lines() {
            if let Some(f) = line.strip_prefix("# file: ") {
                file = f.to_owned();
            } else if let Some((name, value)) = line.split_once('=') {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(value.strip_prefix("0s").unwrap())
                    .unwrap();
                out_map.insert((file.clone(), name.to_owned()), raw);
            }
        }
        out_map
    }

    fn as_map(rows: &[Vec<Value>]) -> BTreeMap<(String, String), (String, i64)> {
        rows.iter()
            .map(|r| {
                let t = |c: Col| r[c as usize].as_text().unwrap().into_owned();
                (
                    (t(Col::path), t(Col::key)),
                    (t(Col::value), r[Col::base64 as usize].as_i64().unwrap()),
                )
            })
            .collect()
    }

    /// What osquery shows for raw bytes.
    fn shown(raw: &[u8]) -> (String, i64) {
        if raw.iter().all(|b| (0x20..0x7f).contains(b)) {
            (String::from_utf8(raw.to_vec()).unwrap(), 0)
        } else {
            (base64::engine::general_purpose::STANDARD.encode(raw), 1)
        }
    }

    #[test]
    fn attributes_match_getfattr() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        let a = r.join("a.txt");
        let b = r.join("b.bin");
        fs::write(&a, b"x").unwrap();
        fs::write(&b, b"y").unwrap();
        fs::write(r.join(".hidden"), b"z").unwrap();
        fs::create_dir(r.join("sub")).unwrap();
        setfattr(&a, "user.comment", "hello world");
        setfattr(&a, "user.empty", "");
        setfattr(&b, "user.binary", "0x00ff0a41");
        setfattr(&b, "user.tab", "0x0941");
        setfattr(&r.join(".hidden"), "user.h", "1");
        setfattr(&r.join("sub"), "user.d", "folder");

        let want: BTreeMap<(String, String), (String, i64)> = getfattr(&[&a, &b])
            .into_iter()
            .map(|(k, v)| (k, shown(&v)))
            .collect();
        assert_eq!(
            want.get(&(a.to_str().unwrap().into(), "user.comment".into())),
            Some(&("hello world".to_owned(), 0))
        );
        assert_eq!(
            want.get(&(b.to_str().unwrap().into(), "user.binary".into())),
            Some(&("AP8KQQ==".to_owned(), 1))
        );

        // By path, = and LIKE.
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host)
                .with_constraint(Col::path, Op::Eq, a.to_str().unwrap())
                .with_constraint(Col::path, Op::Like, format!("{}/b.%", r.display())),
            generate,
        );
        assert_eq!(as_map(&rows), want);
        for row in &rows {
            assert_eq!(
                row[Col::directory as usize],
                Value::Text(r.to_str().unwrap().into())
            );
        }

        // By directory: files only, dot files left out, as osquery's glob does.
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host).with_constraint(
                Col::directory,
                Op::Eq,
                r.to_str().unwrap(),
            ),
            generate,
        );
        assert_eq!(as_map(&rows), want);

        // A directory named by path lists its own attributes.
        let sub = r.join("sub");
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host).with_constraint(
                Col::path,
                Op::Eq,
                sub.to_str().unwrap(),
            ),
            generate,
        );
        let want_sub: BTreeMap<_, _> = getfattr(&[&sub])
            .into_iter()
            .map(|(k, v)| (k, shown(&v)))
            .collect();
        assert_eq!(as_map(&rows), want_sub);
        assert!(want_sub.contains_key(&(sub.to_str().unwrap().into(), "user.d".into())));

        // Missing paths and special files give nothing.
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host)
                .with_constraint(Col::path, Op::Eq, r.join("nope").to_str().unwrap())
                .with_constraint(Col::path, Op::Eq, "/dev/null"),
            generate,
        );
        assert!(rows.is_empty());
    }

    #[test]
    fn printable_is_ascii_without_controls() {
        assert!(printable(b"abc ~"));
        assert!(printable(b""));
        assert!(!printable(b"a\tb"));
        assert!(!printable("é".as_bytes()));
        assert!(!printable(b"\x7f"));
    }
}
