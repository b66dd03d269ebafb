//! `rpm_packages`: the packages in the RPM database, one row per installed header, read
//! without librpm (`oxquery_sys::rpmdb`: rpm's SQLite `rpmdb.sqlite`, its NDB
//! `Packages.db` or the Berkeley DB `Packages` of older rpm, from `/var/lib/rpm` or
//! `/usr/lib/sysimage/rpm`).
//!
//! As osquery: every value comes from the package's header (`%{NAME}`, `%{VERSION}`,
//! `%{RELEASE}`, `%{SOURCERPM}`, `%{SIZE}`, `%{SHA1HEADER}`, `%{ARCH}`, `%{EPOCH}`,
//! `%{INSTALLTIME}`, `%{VENDOR}`, `%{GROUP}`); a text tag the header lacks is '' (a
//! `gpg-pubkey` entry has no source package), a number it lacks is NULL (most packages
//! have no epoch). A package over 4 GiB has only `LONGSIZE`, which `size` then gives.
//! `name =` reads only the named packages (rpm's name index); `pid_with_namespace = N`
//! reads the database process N sees, through `/proc/N/root`.

use oxquery_sys::rpmdb::{DEFAULT_DIRS, Database, Header, Lookup, tag};
use oxquery_sys::safe_read::{Resolved, Root};
use oxquery_table::{QueryContext, Rows, TableResult, Value, table};
use std::ops::ControlFlow;
use std::path::Path;

table! {
    name: "rpm_packages",
    description: "RPM packages installed on the host, one row per package in the RPM database (rpmdb.sqlite, the NDB Packages.db or the older Berkeley DB Packages file, under /var/lib/rpm or /usr/lib/sysimage/rpm), read without librpm. No rows, and a verbose log, where there is no RPM database.",
    attributes: [CACHEABLE],
    columns: {
        name: Text [INDEX | OPTIMIZED] "Package name; name = reads only the named packages",
        version: Text [INDEX | COLLATE_VERSION_RHEL] "Package version (compares as rpm does with COLLATE version_rhel)",
        release: Text [INDEX] "Package release",
        source: Text [] "Source RPM the package was built from; '' when the header names none",
        size: BigInt [] "Installed size of the package's files, in bytes",
        sha1: Text [COLLATE_NOCASE] "SHA-1 digest of the package header (hex)",
        arch: Text [INDEX] "Architecture the package is built for (x86_64, noarch, ...)",
        epoch: Integer [INDEX] "Package epoch; NULL when the package has none",
        install_time: Integer [] "Unix time the package was installed",
        vendor: Text [] "Vendor of the package; '' when the header names none",
        package_group: Text [] "Package group (e.g. System Environment/Base); '' when none",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Read the RPM database inside this process's mount namespace; 0 in rows read from the host's",
        mount_namespace_id: Text [HIDDEN] "Mount namespace the row came from; NULL (not filled in yet)",
    },
    examples: [
        "select name, version, release, arch from rpm_packages",
        "select * from rpm_packages where name = 'openssl'",
        "select name, version from rpm_packages where name = 'bash' and version < '5.2' collate version_rhel",
    ],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for root in crate::common::namespace_roots(ctx, Col::pid_with_namespace) {
        match find_database(&root) {
            Some((db, _held)) => generate_from(ctx, rows, &db, root.pid()),
            None => log::info!(
                "rpm_packages: no RPM database in {:?}",
                DEFAULT_DIRS.map(|d| root.display(Path::new(d)))
            ),
        }
    }
    Ok(())
}

/// The database of the first of the default directories that has one, as `root` sees
/// it; the [`Resolved`] keeps the database's path valid (inside another process's root
/// it is a descriptor's `/proc/self/fd` entry: links there cannot lead out of it).
pub(crate) fn find_database(root: &Root) -> Option<(Database, Option<Resolved>)> {
    if root.pid() == 0 {
        return Database::find().map(|db| (db, None));
    }
    for dir in DEFAULT_DIRS {
        let Ok(resolved) = root.resolve(Path::new(dir)) else {
            continue;
        };
        if let Some(db) = Database::in_dir(resolved.path()) {
            // The file itself resolved inside the root too, not just its directory.
            let name = db.path.file_name()?.to_owned();
            let file = root.resolve(&Path::new(dir).join(name)).ok()?;
            let db = Database {
                path: file.path().to_owned(),
                ..db
            };
            return Some((db, Some(file)));
        }
    }
    None
}

/// A text tag as osquery gives it: the header's bytes, '' when absent.
fn text(h: &Header<'_>, t: u32) -> Value {
    Value::from_bytes(h.string(t).unwrap_or_default().to_vec())
}

/// The rows of the packages in `db` (all, or those the query names), tagged with `pid`.
pub(crate) fn generate_from(ctx: &QueryContext, rows: &mut Rows, db: &Database, pid: i64) {
    let names = ctx.eq_texts(Col::name);
    let lookup = names.as_deref().map_or(Lookup::All, Lookup::Names);
    let walk = db.for_each_header(lookup, |h| {
        if ctx.is_stopped() {
            return ControlFlow::Break(());
        }
        let mut row = rows.row();
        for (col, t) in [
            (Col::name, tag::NAME),
            (Col::version, tag::VERSION),
            (Col::release, tag::RELEASE),
            (Col::source, tag::SOURCERPM),
            (Col::sha1, tag::SHA1HEADER),
            (Col::arch, tag::ARCH),
            (Col::vendor, tag::VENDOR),
            (Col::package_group, tag::GROUP),
        ] {
            if row.wants(col) {
                row.set(col, text(h, t));
            }
        }
        let size = h.integer(tag::SIZE).or_else(|| h.integer(tag::LONGSIZE));
        for (col, value) in [
            (Col::size, size),
            (Col::epoch, h.integer(tag::EPOCH)),
            (Col::install_time, h.integer(tag::INSTALLTIME)),
        ] {
            if let Some(v) = value {
                row.set(col, v);
            }
        }
        row.set(Col::pid_with_namespace, pid);
        ControlFlow::Continue(())
    });
    if let Err(e) = walk {
        log::warn!("rpm_packages: cannot read {}: {e}", db.path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rpm::{NONE, TestDb, rpm_query};
    use oxquery_table::{Host, Op};

    /// Our rows in rpm's `--queryformat` spelling (an absent tag is `(none)`), sorted.
    fn as_rpm_prints(rows: &Rows) -> Vec<String> {
        let cols = [
            Col::name,
            Col::version,
            Col::release,
            Col::source,
            Col::size,
            Col::sha1,
            Col::arch,
            Col::epoch,
            Col::install_time,
            Col::vendor,
            Col::package_group,
        ];
        let mut out: Vec<String> = rows
            .iter()
            .map(|r| {
                cols.iter()
                    .map(|&c| match &r[c as usize] {
                        Value::Null => NONE.to_owned(),
                        v if v.to_string().is_empty() => NONE.to_owned(),
                        v => v.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join("\t")
            })
            .collect();
        out.sort();
        out
    }

    const FORMAT: &str = "%{NAME}\t%{VERSION}\t%{RELEASE}\t%{SOURCERPM}\t%{SIZE}\t%{SHA1HEADER}\t%{ARCH}\t%{EPOCH}\t%{INSTALLTIME}\t%{VENDOR}\t%{GROUP}\n";

    fn scan(db: &Database, ctx: &QueryContext) -> Rows<'static> {
        let mut rows = Rows::for_context(ctx);
        generate_from(ctx, &mut rows, db, 0);
        rows
    }

    #[test]
    fn agrees_with_rpm_qa_on_sqlite_and_berkeley_db() {
        let Some(test_db) = TestDb::build() else {
            return;
        };
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut expected: Vec<String> =
            rpm_query(&test_db.dir(), None, &["-qa", "--queryformat", FORMAT])
                .lines()
                .map(str::to_owned)
                .collect();
        expected.sort();
        assert_eq!(expected.len(), 4, "{expected:?}");
        let db = test_db.database();
        assert_eq!(db.backend, oxquery_sys::rpmdb::Backend::Sqlite);
        assert_eq!(as_rpm_prints(&scan(&db, &ctx)), expected);

        // The same headers in a Berkeley DB hash file, which rpm reads with bdb_ro.
        let Some(bdb_dir) = test_db.berkeley_db_copy() else {
            return;
        };
        let mut from_bdb: Vec<String> =
            rpm_query(&bdb_dir, Some("bdb_ro"), &["-qa", "--queryformat", FORMAT])
                .lines()
                .map(str::to_owned)
                .collect();
        from_bdb.sort();
        assert_eq!(
            from_bdb, expected,
            "rpm reads the copy as it reads the original"
        );
        let db = Database::in_dir(&bdb_dir).unwrap();
        assert_eq!(db.backend, oxquery_sys::rpmdb::Backend::BerkeleyDb);
        assert_eq!(as_rpm_prints(&scan(&db, &ctx)), expected);
    }

    #[test]
    fn name_constraint_reads_only_the_named_packages() {
        let Some(test_db) = TestDb::build() else {
            return;
        };
        let db = test_db.database();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::name, Op::Eq, "oxq-tool")
            .with_constraint(Col::name, Op::Eq, "no-such-package");
        let rows = scan(&db, &ctx);
        let expected = rpm_query(
            &test_db.dir(),
            None,
            &["-q", "--queryformat", FORMAT, "oxq-tool"],
        );
        assert_eq!(as_rpm_prints(&rows), vec![expected.trim_end().to_owned()]);
        // The name index, not a scan, found it: with the index emptied, nothing is found,
        // while a database without the index table at all falls back to a scan.
        test_db.sql("DELETE FROM Name");
        assert!(scan(&db, &ctx).is_empty());
        test_db.sql("DROP TABLE Name");
        assert_eq!(scan(&db, &ctx).len(), 1);
    }

    #[test]
    fn corrupted_headers_are_skipped_and_a_missing_database_gives_no_rows() {
        let Some(test_db) = TestDb::build() else {
            return;
        };
        let db = test_db.database();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        // Cut one header short and fill another with garbage: the other two still read.
        test_db.sql("UPDATE Packages SET blob = substr(blob, 1, 100) WHERE hnum = 1");
        test_db.sql("UPDATE Packages SET blob = randomblob(5000) WHERE hnum = 2");
        let rows = scan(&db, &ctx);
        assert_eq!(rows.len(), 2);
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(Database::in_dir(empty.path()), None);
    }

    #[test]
    fn pid_with_namespace_reads_that_root_s_database_and_no_link_out_of_it() {
        let Some(test_db) = TestDb::build() else {
            return;
        };
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let db_file = test_db.database().path;
        let inside = c.root().join("var/lib/rpm");
        std::fs::create_dir_all(&inside).unwrap();
        std::fs::copy(&db_file, inside.join("rpmdb.sqlite")).unwrap();
        let host = Host::default();
        let ctx = c.query(&SPEC, &host, Col::pid_with_namespace.into());
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert_eq!(rows.len(), 4);
        assert!(
            rows.column(Col::pid_with_namespace)
                .iter()
                .all(|v| **v == Value::Integer(c.pid()))
        );
        // The same database reached by an absolute link to the host's copy: not read.
        std::fs::remove_file(inside.join("rpmdb.sqlite")).unwrap();
        std::os::unix::fs::symlink(&db_file, inside.join("rpmdb.sqlite")).unwrap();
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert_eq!(rows.len(), 0);
    }
}
