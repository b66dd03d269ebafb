//! Reading the RocksDB directory osquery leaves at `--database_path`, so a host that
//! switches to oxquery keeps what osquery stored (the daemon decides which keys matter).
//!
//! osquery keeps one column family per domain (`configurations`, `queries`, ...) and
//! writes plain byte keys and values. The directory is opened read-only (no lock taken,
//! nothing written: the tests check that every file of it keeps its bytes), so osquery's
//! files stay exactly as osquery left them and a rollback to osquery finds them unchanged.
//! Writes osquery made just before it stopped may be only in its write-ahead log; a
//! read-only open replays that in memory, without writing.
//!
//! Reading needs the `rocksdb` feature (the system librocksdb); without it,
//! [`read_domains`] says so and [`is_rocksdb_dir`] still recognises the directory.

use crate::Domain;
use std::path::Path;

/// Whether `dir` looks like a RocksDB database: a `CURRENT` file naming the live
/// manifest, and a `MANIFEST-*` file.
pub fn is_rocksdb_dir(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut current = false;
    let mut manifest = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        current |= name == "CURRENT";
        manifest |= name.starts_with("MANIFEST-");
    }
    current && manifest
}

/// A domain's key/value pairs, in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Why osquery's database could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// This build has no RocksDB reader (the `rocksdb` cargo feature is off).
    #[error(
        "this oxquery was built without the rocksdb feature, so it cannot read osquery's RocksDB"
    )]
    NotBuilt,
    /// RocksDB refused the directory (corrupt, unreadable, an incompatible format).
    #[error("{0}")]
    RocksDb(String),
}

/// Every key/value pair of `domains` in osquery's database at `dir`, per domain, in key
/// order. A domain osquery never created has no pairs.
pub fn read_domains(dir: &Path, domains: &[Domain]) -> Result<Vec<(Domain, Pairs)>, ReadError> {
    imp::read_domains(dir, domains)
}

#[cfg(feature = "rocksdb")]
mod imp {
    use super::{Domain, Pairs, ReadError};
    use rocksdb::{DB, IteratorMode, Options};
    use std::path::Path;

    pub(super) fn read_domains(
        dir: &Path,
        domains: &[Domain],
    ) -> Result<Vec<(Domain, Pairs)>, ReadError> {
        let rocks = |e: rocksdb::Error| ReadError::RocksDb(e.into_string());
        let mut opts = Options::default();
        opts.create_if_missing(false);
        let families = DB::list_cf(&opts, dir).map_err(rocks)?;
        let db = DB::open_cf_for_read_only(&opts, dir, &families, false).map_err(rocks)?;
        let mut out = Vec::new();
        for &domain in domains {
            let Some(cf) = db.cf_handle(domain.name()) else {
                out.push((domain, Vec::new()));
                continue;
            };
            let mut pairs = Vec::new();
            for item in db.iterator_cf(cf, IteratorMode::Start) {
                let (key, value) = item.map_err(rocks)?;
                pairs.push((key.into_vec(), value.into_vec()));
            }
            out.push((domain, pairs));
        }
        Ok(out)
    }
}

#[cfg(not(feature = "rocksdb"))]
mod imp {
    use super::{Domain, Pairs, ReadError};
    use std::path::Path;

    pub(super) fn read_domains(
        _dir: &Path,
        _domains: &[Domain],
    ) -> Result<Vec<(Domain, Pairs)>, ReadError> {
        Err(ReadError::NotBuilt)
    }
}

#[cfg(all(test, feature = "rocksdb"))]
mod tests {
    use super::*;
    use oxquery_test_support::{OSQUERY_DOMAINS, require_tool};
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    /// Every file under `dir` with its bytes.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let bytes = std::fs::read(&path).unwrap();
                (path, bytes)
            })
            .collect()
    }

    /// A database as osquery leaves it: its column families, written through RocksDB
    /// and never flushed, so the latest writes are only in the write-ahead log.
    fn write_osquery_db(dir: &Path, pairs: &[(&str, &str, &str)]) {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&opts, dir, OSQUERY_DOMAINS).unwrap();
        for (family, key, value) in pairs {
            let cf = db.cf_handle(family).unwrap();
            db.put_cf(cf, key, value).unwrap();
        }
    }

    const PAIRS: [(&str, &str, &str); 6] = [
        ("configurations", "nodeKey", "key-\"42\""),
        (
            "configurations",
            "instance_uuid_v1",
            "0d3f6c1e-5b52-4f4b-9a55-5d6f0e1a2b3c",
        ),
        ("queries", "pack_p_q", r#"[{"a":1,"b":"x"}]"#),
        ("queries", "pack_p_qcounter", "7"),
        ("queries", "pack_p_qepoch", "0"),
        ("events", "data.x.y.0000000001", "{}"),
    ];

    #[test]
    fn reads_the_domains_osquery_wrote_and_changes_no_file_of_its_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("osquery.db");
        write_osquery_db(&dir, &PAIRS);
        assert!(is_rocksdb_dir(&dir));

        // RocksDB's own tool reads what the test wrote (on a copy: ldb writes as it opens).
        if let Some(ldb) = require_tool("ldb") {
            let copy = tmp.path().join("copy");
            std::fs::create_dir(&copy).unwrap();
            for (path, bytes) in snapshot(&dir) {
                std::fs::write(copy.join(path.file_name().unwrap()), bytes).unwrap();
            }
            let out = std::process::Command::new(ldb)
                .arg(format!("--db={}", copy.display()))
                .args(["--column_family=configurations", "get", "nodeKey"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "key-\"42\"");
        }

        let before = snapshot(&dir);
        let read = read_domains(
            &dir,
            &[Domain::Configurations, Domain::Queries, Domain::Logs],
        )
        .unwrap();
        assert_eq!(snapshot(&dir), before, "osquery's files changed");
        let text = |pairs: &Vec<(Vec<u8>, Vec<u8>)>| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8(k.clone()).unwrap(),
                        String::from_utf8(v.clone()).unwrap(),
                    )
                })
                .collect()
        };
        let expected = |family: &str| -> Vec<(String, String)> {
            let mut pairs: Vec<_> = PAIRS
                .iter()
                .filter(|(f, _, _)| *f == family)
                .map(|(_, k, v)| (k.to_string(), v.to_string()))
                .collect();
            pairs.sort();
            pairs
        };
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].0, Domain::Configurations);
        assert_eq!(text(&read[0].1), expected("configurations"));
        assert_eq!(read[1].0, Domain::Queries);
        assert_eq!(text(&read[1].1), expected("queries"));
        assert_eq!(read[2], (Domain::Logs, Vec::new()));
    }

    /// As with osquery still running: the database is open for writing (its `LOCK`
    /// held; a second writable open would fail), and a read-only open, which takes no
    /// lock, still reads what was written.
    #[test]
    fn a_database_held_open_for_writing_is_still_read() {
        let tmp = tempfile::tempdir().unwrap();
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&opts, tmp.path(), OSQUERY_DOMAINS).unwrap();
        db.put_cf(db.cf_handle("configurations").unwrap(), "nodeKey", "k")
            .unwrap();
        let read = read_domains(tmp.path(), &[Domain::Configurations]).unwrap();
        assert_eq!(read[0].1, vec![(b"nodeKey".to_vec(), b"k".to_vec())]);
        drop(db);
    }

    #[test]
    fn a_missing_column_family_reads_as_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&opts, tmp.path(), ["configurations"]).unwrap();
        db.put_cf(db.cf_handle("configurations").unwrap(), "nodeKey", "k")
            .unwrap();
        drop(db);
        let read = read_domains(tmp.path(), &[Domain::Configurations, Domain::Queries]).unwrap();
        assert_eq!(read[0].1, vec![(b"nodeKey".to_vec(), b"k".to_vec())]);
        assert_eq!(read[1], (Domain::Queries, Vec::new()));
    }

    #[test]
    fn a_corrupt_or_absent_database_is_an_error_not_a_crash() {
        let tmp = tempfile::tempdir().unwrap();
        // Not a database at all.
        assert!(!is_rocksdb_dir(tmp.path()));
        assert!(matches!(
            read_domains(tmp.path(), &[Domain::Configurations]),
            Err(ReadError::RocksDb(_))
        ));
        // A database whose manifest is garbage, and then one whose CURRENT names nothing.
        let dir = tmp.path().join("db");
        write_osquery_db(&dir, &PAIRS);
        let manifest = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("MANIFEST-")
            })
            .unwrap();
        let len = std::fs::metadata(&manifest).unwrap().len() as usize;
        std::fs::write(&manifest, vec![0xA5; len]).unwrap();
        assert!(is_rocksdb_dir(&dir));
        let err = read_domains(&dir, &[Domain::Configurations]).unwrap_err();
        assert!(matches!(err, ReadError::RocksDb(_)), "{err}");
        std::fs::write(dir.join("CURRENT"), "MANIFEST-999999\n").unwrap();
        assert!(read_domains(&dir, &[Domain::Configurations]).is_err());
    }
}
