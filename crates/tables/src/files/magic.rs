//! `magic`: libmagic's description, MIME type and MIME encoding of each file a `path`
//! constraint names, the same three answers `file`, `file --mime-type` and
//! `file --mime-encoding` give. Built only with the `magic` feature (it links libmagic).
//!
//! The magic database is the `magic_db_files` constraint's value (several `=` values are
//! joined with `:`, libmagic's list separator) or else the first compiled database file
//! of osquery's list that exists. A database that does not load gives no rows and a
//! warning. Loading costs tens of milliseconds, so each thread keeps its loaded
//! database between queries.

use magic::cookie::{Cookie, DatabasePaths, Flags, Load};
use oxquery_sys::pattern::Select;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::cell::RefCell;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

table! {
    name: "magic",
    description: "File type descriptions and MIME types libmagic determines from file contents.",
    columns: {
        path: Text [INDEX | REQUIRED] "File to identify",
        magic_db_files: Text [ADDITIONAL] "Colon-separated magic database files used (set it to use others)",
        data: Text [] "Human-readable description of the contents, as file(1) prints it",
        mime_type: Text [] "MIME type of the contents, e.g. text/plain",
        mime_encoding: Text [] "MIME character encoding, e.g. us-ascii or binary",
    },
    examples: ["select * from magic where path = '/bin/ls'"],
}

/// Database locations osquery tries, in order, when no `magic_db_files` is given.
const DEFAULT_DATABASES: [&str; 3] = [
    "/usr/share/misc/magic.mgc",
    "/usr/share/file/magic.mgc",
    "/usr/share/misc/magic",
];

thread_local! {
    /// The last database this thread loaded, by its colon-joined path list.
    static LOADED: RefCell<Option<(String, Cookie<Load>)>> = const { RefCell::new(None) };
}

/// The database to use: the constraint's files, or the first existing default file.
fn database(ctx: &QueryContext) -> Option<String> {
    if let Some(files) = ctx.eq_texts(Col::magic_db_files) {
        return Some(files.join(":"));
    }
    DEFAULT_DATABASES
        .iter()
        .find(|p| Path::new(p).is_file())
        .map(|p| (*p).to_owned())
}

fn load(db: &str) -> Result<Cookie<Load>, String> {
    let cookie = Cookie::open(Flags::default()).map_err(|e| e.to_string())?;
    let paths = DatabasePaths::new(db.split(':')).map_err(|e| e.to_string())?;
    cookie.load(&paths).map_err(|e| e.to_string())
}

/// One libmagic answer with `flags` set; NULL when libmagic reports an error.
fn identify(cookie: &Cookie<Load>, flags: Flags, path: &Path) -> Option<String> {
    cookie.set_flags(flags).ok()?;
    match cookie.file(path) {
        Ok(s) => Some(s),
        Err(e) => {
            log::debug!("magic: {}: {e}", path.display());
            None
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let paths = crate::common::constrained_paths(ctx, Col::path, Select::All);
    if paths.is_empty() {
        return Ok(());
    }
    let Some(db) = database(ctx) else {
        log::warn!("magic: no magic database found (install libmagic-mgc)");
        return Ok(());
    };
    LOADED.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(loaded, _)| *loaded != db) {
            *slot = None;
            match load(&db) {
                Ok(cookie) => *slot = Some((db.clone(), cookie)),
                Err(e) => {
                    log::warn!("magic: cannot load the magic database {db}: {e}");
                    return;
                }
            }
        }
        let Some((_, cookie)) = slot.as_ref() else {
            return;
        };
        for path in &paths {
            // libmagic takes C strings: a path with a NUL byte names no file.
            if path.as_bytes().contains(&0) {
                continue;
            }
            let p = Path::new(path);
            let mut row = rows.row();
            row.set(
                Col::path,
                String::from_utf8_lossy(path.as_bytes()).into_owned(),
            );
            row.set(Col::magic_db_files, db.as_str());
            if row.wants(Col::data) {
                row.set(Col::data, identify(cookie, Flags::default(), p));
            }
            if row.wants(Col::mime_type) {
                row.set(Col::mime_type, identify(cookie, Flags::MIME_TYPE, p));
            }
            if row.wants(Col::mime_encoding) {
                row.set(
                    Col::mime_encoding,
                    identify(cookie, Flags::MIME_ENCODING, p),
                );
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rows_of;
    use oxquery_table::Op;
    use oxquery_table::{Host, Value};
    use std::process::Command;

    fn file_cli(args: &[&str], path: &Path) -> String {
        let out = Command::new("file")
            .arg("--brief")
            .args(args)
            .arg(path)
            .output()
            .expect("file(1) runs");
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end_matches('\n')
            .to_owned()
    }

    fn fixtures(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x08\x08\x06\0\0\0".to_vec();
        png.extend([0u8; 16]);
        let files: Vec<(&str, Vec<u8>)> = vec![
            (
                "ascii.txt",
                b"plain words on a line\nand another\n".to_vec(),
            ),
            (
                "utf8.txt",
                "caf\u{e9} na\u{ef}ve \u{2713}\n".as_bytes().to_vec(),
            ),
            ("script.sh", b"#!/bin/sh\necho hello\n".to_vec()),
            ("image.png", png),
            (
                "data.gz",
                vec![
                    0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ],
            ),
            ("empty", Vec::new()),
            ("ls-copy", std::fs::read("/bin/ls").unwrap()),
            (
                "noise",
                (0..4096u32)
                    .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
                    .collect(),
            ),
        ];
        files
            .into_iter()
            .map(|(name, bytes)| {
                let p = dir.join(name);
                std::fs::write(&p, bytes).unwrap();
                p
            })
            .collect()
    }

    #[test]
    fn answers_match_file_cli() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        let files = fixtures(tmp.path());
        let mut ctx = QueryContext::everything(&SPEC, &host);
        for f in &files {
            ctx = ctx.with_constraint(Col::path, Op::Eq, f.to_str().unwrap());
        }
        let rows = rows_of(&ctx, generate);
        assert_eq!(rows.len(), files.len());
        for r in &rows {
            let path = Path::new(&*r[Col::path as usize].as_text().unwrap()).to_path_buf();
            let text = |c: Col| r[c as usize].as_text().unwrap().into_owned();
            assert_eq!(text(Col::data), file_cli(&[], &path), "{}", path.display());
            assert_eq!(
                text(Col::mime_type),
                file_cli(&["--mime-type"], &path),
                "{}",
                path.display()
            );
            assert_eq!(
                text(Col::mime_encoding),
                file_cli(&["--mime-encoding"], &path),
                "{}",
                path.display()
            );
            assert!(text(Col::magic_db_files).ends_with(".mgc"));
        }
        let mime = |name: &str| {
            rows.iter()
                .find(|r| r[Col::path as usize].as_text().unwrap().ends_with(name))
                .map(|r| r[Col::mime_type as usize].as_text().unwrap().into_owned())
                .unwrap()
        };
        assert_eq!(mime("image.png"), "image/png");
        assert_eq!(mime("data.gz"), "application/gzip");
    }

    #[test]
    fn explicit_and_broken_databases() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("t.txt");
        std::fs::write(&f, b"hello\n").unwrap();
        let db = database(&QueryContext::everything(&SPEC, &host)).unwrap();
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host)
                .with_constraint(Col::path, Op::Eq, f.to_str().unwrap())
                .with_constraint(Col::magic_db_files, Op::Eq, db.as_str()),
            generate,
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0][Col::magic_db_files as usize],
            Value::Text(db.clone())
        );
        assert_eq!(
            rows[0][Col::mime_type as usize],
            Value::Text("text/plain".into())
        );
        // A database that is not one: no rows (and a warning), never an error.
        let bogus = tmp.path().join("not-a-db");
        std::fs::write(&bogus, b"this is not magic\n\x00\x01").unwrap();
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host)
                .with_constraint(Col::path, Op::Eq, f.to_str().unwrap())
                .with_constraint(Col::magic_db_files, Op::Eq, bogus.to_str().unwrap()),
            generate,
        );
        assert!(rows.is_empty(), "{rows:?}");
        // Projection: unread answers are not computed.
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host)
                .with_constraint(Col::path, Op::Eq, f.to_str().unwrap())
                .using([Col::path, Col::mime_type]),
            generate,
        );
        assert_eq!(
            rows[0][Col::mime_type as usize],
            Value::Text("text/plain".into())
        );
        assert!(rows[0][Col::data as usize].is_null());
    }
}
