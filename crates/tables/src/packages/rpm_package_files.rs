//! `rpm_package_files`: every file of every package in the RPM database, as the package's
//! header lists it (`rpm -ql`/`--dump`), read without librpm (`oxquery_sys::rpmdb`).
//!
//! As osquery: `path` is the directory name joined with the base name; `mode` is the
//! permission bits as four octal digits (the file type dropped); `sha256` is the digest
//! rpm recorded when the package uses SHA-256 (rpm's default since 4.14; NULL for MD5 or
//! SHA-1 packages), and all zeros for entries without content (directories, links), as
//! rpm prints them; owner names are '' where the header has none. A package without files,
//! or with more than 65536 (osquery's limit), gives no rows (logged at verbose level).
//! `package =` decodes only the named packages' file lists; `path =` alone reads only the
//! packages rpm's base-name index lists for that file name (SQLite databases; the other
//! formats have no index we read, so every package is decoded).

use oxquery_sys::rpmdb::{self, Database, Header, Lookup, tag};
use oxquery_table::{QueryContext, Rows, TableResult, Value, table};
use std::ops::ControlFlow;
use std::path::Path;

table! {
    name: "rpm_package_files",
    description: "Files of the installed RPM packages, one row per file as the package's header in the RPM database lists it (expected owner, mode, size and digest), read without librpm. No rows, and a verbose log, where there is no RPM database.",
    columns: {
        package: Text [INDEX | OPTIMIZED] "Name of the package the file belongs to; package = reads only that package",
        path: Text [INDEX] "Path of the file",
        username: Text [] "Owner the package gives the file",
        groupname: Text [] "Group the package gives the file",
        mode: Text [] "Permission bits the package gives the file, four octal digits (e.g. 0644, 4755)",
        size: BigInt [] "Expected size of the file in bytes",
        sha256: Text [COLLATE_NOCASE] "SHA-256 digest rpm recorded for the file (hex; zeros for directories and links); NULL when the package uses another digest",
    },
    examples: [
        "select * from rpm_package_files where package = 'bash'",
        "select package, path from rpm_package_files where path = '/usr/bin/ls'",
    ],
}

/// rpm's number for SHA-256 (`PGPHASHALGO_SHA256`).
const SHA256: u64 = 8;

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    match Database::find() {
        Some(db) => generate_from(ctx, rows, &db),
        None => log::info!(
            "rpm_package_files: no RPM database in {:?}",
            rpmdb::DEFAULT_DIRS
        ),
    }
    Ok(())
}

fn text(bytes: Option<&[u8]>) -> Value {
    Value::from_bytes(bytes.unwrap_or_default().to_vec())
}

/// The rows of the files of the packages in `db` (all, or those the query names).
pub(crate) fn generate_from(ctx: &QueryContext, rows: &mut Rows, db: &Database) {
    let names = ctx.eq_texts(Col::package);
    let paths = ctx.eq_paths(Col::path);
    // `path =` alone: the packages with a file of that base name (rpm's index keys are
    // text, so a path that is not UTF-8 gets a full scan).
    let basenames: Option<Vec<String>> = paths.as_ref().and_then(|ps| {
        ps.iter()
            .map(|p| Some(Path::new(p).file_name()?.to_str()?.to_owned()))
            .collect()
    });
    let lookup = match (&names, &basenames) {
        (Some(names), _) => Lookup::Names(names),
        (None, Some(basenames)) => Lookup::Basenames(basenames),
        (None, None) => Lookup::All,
    };
    let walk = db.for_each_header(lookup, |h| {
        if ctx.is_stopped() {
            return ControlFlow::Break(());
        }
        add_package(rows, h, paths.as_deref());
        ControlFlow::Continue(())
    });
    if let Err(e) = walk {
        log::warn!("rpm_package_files: cannot read {}: {e}", db.path.display());
    }
}

fn add_package(rows: &mut Rows, h: &Header<'_>, paths: Option<&[std::ffi::OsString]>) {
    use std::os::unix::ffi::OsStrExt;
    let package = h.string(tag::NAME).unwrap_or_default();
    let files = match rpmdb::package_files(h) {
        Ok(files) => files,
        Err(e) => {
            log::info!(
                "rpm_package_files: package {}: {e}",
                String::from_utf8_lossy(package)
            );
            return;
        }
    };
    if files.is_empty() || files.len() > rpmdb::MAX_FILES {
        log::debug!(
            "rpm_package_files: package {} has {} files; skipped",
            String::from_utf8_lossy(package),
            files.len()
        );
        return;
    }
    for file in files {
        let path = file.path();
        // `path =` (SQLite checks again): only the named files become rows.
        if paths.is_some_and(|ps| !ps.iter().any(|p| p.as_bytes() == path)) {
            continue;
        }
        let mut row = rows.row();
        row.set(Col::package, text(Some(package)));
        row.set(Col::path, Value::from_bytes(path));
        row.set(Col::username, text(file.user));
        row.set(Col::groupname, text(file.group));
        if let Some(mode) = file.mode {
            row.set(Col::mode, format!("{:04o}", mode & 0o7777));
        }
        if let Some(size) = file.size {
            row.set(Col::size, size);
        }
        if let Some((hex, SHA256)) = file.digest {
            row.set(Col::sha256, hex);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::capture_log;
    use crate::testing::rpm::{TestDb, rpm_query};
    use oxquery_table::{Host, Op};

    fn scan(db: &Database, ctx: &QueryContext) -> Rows<'static> {
        let mut rows = Rows::for_context(ctx);
        generate_from(ctx, &mut rows, db);
        rows
    }

    /// Our rows of `package` (every package: `None`) as `rpm -q --dump` fields: path size
    /// digest mode-bits user group, sorted.
    fn ours(rows: &Rows, package: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = rows
            .iter()
            .filter(|r| package.is_none_or(|p| r[Col::package as usize].to_string() == p))
            .map(|r| {
                [
                    Col::path,
                    Col::size,
                    Col::sha256,
                    Col::mode,
                    Col::username,
                    Col::groupname,
                ]
                .iter()
                .map(|&c| r[c as usize].to_string())
                .collect::<Vec<_>>()
                .join(" ")
            })
            .collect();
        out.sort();
        out
    }

    /// `rpm -q --dump <package>` (every package: `None`) in the same fields (its mode with
    /// the file type dropped).
    fn dumped(
        dbpath: &std::path::Path,
        backend: Option<&str>,
        package: Option<&str>,
    ) -> Vec<String> {
        let text = match package {
            Some(p) => rpm_query(dbpath, backend, &["-q", "--dump", p]),
            None => rpm_query(dbpath, backend, &["-qa", "--dump"]),
        };
        // A package without files prints "(contains no files)".
        let mut out: Vec<String> = text
            .lines()
            .filter(|l| l.starts_with('/'))
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let mode = u32::from_str_radix(f[4], 8).unwrap() & 0o7777;
                format!("{} {} {} {mode:04o} {} {}", f[0], f[1], f[3], f[5], f[6])
            })
            .collect();
        out.sort();
        out
    }

    /// `blob` with the count of `tag`'s index entry (bytes 12..16 of the entry,
    /// big-endian) raised by one.
    fn bump_count(mut blob: Vec<u8>, tag: u32) -> Vec<u8> {
        let entries = u32::from_be_bytes(blob[..4].try_into().unwrap()) as usize;
        let at = (0..entries)
            .map(|i| 8 + 16 * i)
            .find(|&e| blob[e..e + 4] == tag.to_be_bytes())
            .unwrap();
        let count = u32::from_be_bytes(blob[at + 12..at + 16].try_into().unwrap());
        blob[at + 12..at + 16].copy_from_slice(&(count + 1).to_be_bytes());
        blob
    }

    const PACKAGES: [&str; 4] = ["oxq-hello", "oxq-tool", "oxq-meta", "oxq-plain"];

    #[test]
    fn agrees_with_rpm_dump_on_sqlite_and_berkeley_db() {
        let Some(test_db) = TestDb::build() else {
            return;
        };
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let db = test_db.database();
        let rows = scan(&db, &ctx);
        let mut total = 0;
        for package in PACKAGES {
            let expected = dumped(&test_db.dir(), None, Some(package));
            total += expected.len();
            assert_eq!(ours(&rows, Some(package)), expected, "{package}");
        }
        assert_eq!(rows.len(), total);
        assert_eq!(
            total, 7,
            "hello: dir, a.txt, link, sub, sub/b.bin; tool: 1; meta: 0; plain: 1"
        );
        // Spot checks of what the comparison covers: the SUID owner, a link's zeros.
        assert!(ours(&rows, Some("oxq-tool"))[0].ends_with(" 4755 nobody nogroup"));
        assert!(
            ours(&rows, Some("oxq-hello"))
                .iter()
                .any(|l| l.starts_with(&format!(
                    "/usr/share/oxq-hello/link 5 {} 0777",
                    "0".repeat(64)
                )))
        );

        let Some(bdb_dir) = test_db.berkeley_db_copy() else {
            return;
        };
        // rpm's bdb_ro has no name index here: compare every file at once.
        let from_bdb = scan(&Database::in_dir(&bdb_dir).unwrap(), &ctx);
        assert_eq!(
            ours(&from_bdb, None),
            dumped(&bdb_dir, Some("bdb_ro"), None)
        );
        assert_eq!(ours(&from_bdb, None), ours(&rows, None));
    }

    #[test]
    fn package_and_path_constraints_read_only_what_they_name() {
        let Some(test_db) = TestDb::build() else {
            return;
        };
        let db = test_db.database();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::package,
            Op::Eq,
            "oxq-hello",
        );
        let rows = scan(&db, &ctx);
        assert_eq!(
            ours(&rows, Some("oxq-hello")),
            dumped(&test_db.dir(), None, Some("oxq-hello"))
        );
        assert_eq!(rows.len(), 5);
        // Only the named package's file list is decoded: give oxq-plain's header one file
        // mode too many (its name still reads), and only a scan that decodes its file
        // list reports it.
        test_db.set_blob(
            "oxq-plain",
            &bump_count(test_db.blob("oxq-plain"), tag::FILEMODES),
        );
        let complaint = |log: &[(log::Level, String)]| {
            log.iter().any(|(_, m)| {
                m.contains("package oxq-plain: file tag 1030 has 2 values for 1 files")
            })
        };
        let (rows, log) = capture_log(|| scan(&db, &ctx));
        assert_eq!(rows.len(), 5);
        assert!(!complaint(&log), "{log:?}");
        let everything = QueryContext::everything(&SPEC, &host);
        let (rows, log) = capture_log(|| scan(&db, &everything));
        assert_eq!(rows.len(), 6, "oxq-plain's file is left out");
        assert!(complaint(&log), "{log:?}");
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::path,
            Op::Eq,
            "/usr/bin/oxq-tool",
        );
        let rows = scan(&db, &ctx);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows.column(Col::package)[0].to_string(), "oxq-tool");
        // `path =` went through rpm's base-name index: emptied, it finds nothing; gone,
        // a full scan finds the file again.
        test_db.sql("DELETE FROM Basenames");
        assert!(scan(&db, &ctx).is_empty());
        test_db.sql("DROP TABLE Basenames");
        assert_eq!(scan(&db, &ctx).len(), 1);
    }

    #[test]
    fn damaged_file_lists_are_skipped_never_a_panic() {
        let Some(test_db) = TestDb::build() else {
            return;
        };
        let db = test_db.database();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let good = scan(&db, &ctx).len();
        // Flip bytes all through oxq-hello's header, one database per round.
        let blob = test_db.blob("oxq-hello");
        let step = (blob.len() / 40).max(1);
        for at in (0..blob.len()).step_by(step) {
            let mut bad = blob.clone();
            bad[at] ^= 0xff;
            test_db.set_blob("oxq-hello", &bad);
            let rows = scan(&db, &ctx);
            assert!(rows.len() <= good + 64, "at {at}: {} rows", rows.len());
        }
        test_db.set_blob("oxq-hello", &blob);
        assert_eq!(scan(&db, &ctx).len(), good);
    }
}
