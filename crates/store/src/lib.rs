//! The daemon's persistent state: osquery's RocksDB domains (`configurations`,
//! `queries`, `events`, `logs`, ...) as rows of one SQLite table in `--database_path`.
//!
//! SQLite is already in the build and is the most trusted embedded database; one file,
//! WAL journaling, and multi-key transactions are what the daemon needs: a differential
//! result and the log lines it produces are committed together, so a `kill -9` at any
//! moment neither loses nor duplicates a row.
//!
//! ```
//! use oxquery_store::{Domain, Store};
//! let store = Store::in_memory().unwrap();
//! store.put(Domain::Queries, "pack_main_q1counter", b"3").unwrap();
//! assert_eq!(store.get(Domain::Queries, "pack_main_q1counter").unwrap().as_deref(), Some(&b"3"[..]));
//! ```
//!
//! Invariant: all persistent daemon state lives here; nothing else writes files for state.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// osquery's column families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    Configurations,
    Queries,
    Events,
    Logs,
    Carves,
    Distributed,
    DistributedRunning,
    QueryPerformance,
}

impl Domain {
    pub const ALL: [Domain; 8] = [
        Domain::Configurations,
        Domain::Queries,
        Domain::Events,
        Domain::Logs,
        Domain::Carves,
        Domain::Distributed,
        Domain::DistributedRunning,
        Domain::QueryPerformance,
    ];

    /// The name osquery gives the domain (`--database_dump` prints it).
    pub fn name(self) -> &'static str {
        match self {
            Domain::Configurations => "configurations",
            Domain::Queries => "queries",
            Domain::Events => "events",
            Domain::Logs => "logs",
            Domain::Carves => "carves",
            Domain::Distributed => "distributed",
            Domain::DistributedRunning => "distributed_running",
            Domain::QueryPerformance => "query_performance",
        }
    }
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A write refused because the state it was computed from changed meanwhile.
    #[error("database: conflicting update: {0}")]
    Conflict(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The schema version osquery keeps under `configurations/results_version`.
const RESULTS_VERSION: &str = "2";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kv (
    domain TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (domain, key)
) WITHOUT ROWID;";

/// The state store. One per daemon; not shared between threads (open one per thread or
/// guard it with a mutex).
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: Option<PathBuf>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`. A file that is not a valid store
    /// is moved aside to `<path>.corrupt-<unix time>` and a new one is created, with a
    /// warning: losing old diff state is better than a daemon that cannot start.
    pub fn open(path: &Path) -> Result<Store> {
        match Self::open_checked(path) {
            Ok(store) => Ok(store),
            Err(first) => {
                let stamp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
                log::warn!(
                    "Database {} is unusable ({first}); moved aside to {} and recreated",
                    path.display(),
                    aside.display()
                );
                if std::fs::rename(path, &aside).is_err() {
                    let _ = std::fs::remove_file(path);
                }
                for suffix in ["-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                Self::open_checked(path)
            }
        }
    }

    fn open_checked(path: &Path) -> Result<Store> {
        let wrap = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let conn = Connection::open(path).map_err(wrap)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(wrap)?;
        let ok: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(wrap)?;
        if ok != "ok" {
            return Err(wrap(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(ok),
            )));
        }
        let store = Store {
            conn,
            path: Some(path.to_owned()),
        };
        store.init().map_err(|e| match e {
            StoreError::Sqlite(source) => wrap(source),
            other => other,
        })?;
        Ok(store)
    }

    /// `--database_dump`: writes `<domain>[<key>]: <value>` for every stored key, domain
    /// by domain, values as text.
    pub fn dump(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        for domain in Domain::ALL {
            let Ok(pairs) = self.scan(domain, "") else {
                continue;
            };
            for (key, value) in pairs {
                writeln!(
                    out,
                    "{}[{key}]: {}",
                    domain.name(),
                    String::from_utf8_lossy(&value)
                )?;
            }
        }
        Ok(())
    }

    /// An ephemeral store (`--disable_database`): same behaviour, gone at exit.
    pub fn in_memory() -> Result<Store> {
        let store = Store {
            conn: Connection::open_in_memory()?,
            path: None,
        };
        store.init()?;
        Ok(store)
    }

    fn init(&self) -> Result<()> {
        self.conn.execute_batch(SCHEMA)?;
        if self
            .get(Domain::Configurations, "results_version")?
            .is_none()
        {
            self.put(
                Domain::Configurations,
                "results_version",
                RESULTS_VERSION.as_bytes(),
            )?;
        }
        Ok(())
    }

    /// Where the store lives; `None` when ephemeral.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn get(&self, domain: Domain, key: &str) -> Result<Option<Vec<u8>>> {
        get(&self.conn, domain, key)
    }

    /// The value as UTF-8 text (invalid bytes replaced).
    pub fn get_text(&self, domain: Domain, key: &str) -> Result<Option<String>> {
        Ok(self
            .get(domain, key)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    pub fn put(&self, domain: Domain, key: &str, value: &[u8]) -> Result<()> {
        put(&self.conn, domain, key, value)
    }

    pub fn delete(&self, domain: Domain, key: &str) -> Result<()> {
        delete(&self.conn, domain, key)
    }

    /// Keys of `domain` starting with `prefix`, in key order.
    pub fn keys(&self, domain: Domain, prefix: &str) -> Result<Vec<String>> {
        keys(&self.conn, domain, prefix)
    }

    /// Key/value pairs of `domain` starting with `prefix`, in key order.
    pub fn scan(&self, domain: Domain, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        scan(&self.conn, domain, prefix)
    }

    /// Key/value pairs of `domain` with `from <= key < to`, in key order, at most `limit`.
    pub fn scan_range(
        &self,
        domain: Domain,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        scan_range(&self.conn, domain, from, to, limit)
    }

    /// Deletes the keys of `domain` with `from <= key < to`; returns how many.
    pub fn delete_range(&self, domain: Domain, from: &str, to: &str) -> Result<usize> {
        delete_range(&self.conn, domain, from, to)
    }

    /// Runs `f` in one transaction: every write inside commits together or not at all.
    pub fn transaction<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&Tx { tx: &tx })?;
        tx.commit()?;
        Ok(out)
    }
}

/// Writes inside [`Store::transaction`].
pub struct Tx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

impl Tx<'_> {
    pub fn get(&self, domain: Domain, key: &str) -> Result<Option<Vec<u8>>> {
        get(self.tx, domain, key)
    }
    pub fn put(&self, domain: Domain, key: &str, value: &[u8]) -> Result<()> {
        put(self.tx, domain, key, value)
    }
    pub fn delete(&self, domain: Domain, key: &str) -> Result<()> {
        delete(self.tx, domain, key)
    }
    pub fn keys(&self, domain: Domain, prefix: &str) -> Result<Vec<String>> {
        keys(self.tx, domain, prefix)
    }
    pub fn scan(&self, domain: Domain, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        scan(self.tx, domain, prefix)
    }
    pub fn scan_range(
        &self,
        domain: Domain,
        from: &str,
        to: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        scan_range(self.tx, domain, from, to, limit)
    }
    pub fn delete_range(&self, domain: Domain, from: &str, to: &str) -> Result<usize> {
        delete_range(self.tx, domain, from, to)
    }
}

fn get(conn: &Connection, domain: Domain, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached("SELECT value FROM kv WHERE domain = ?1 AND key = ?2")?
        .query_row(params![domain.name(), key], |r| r.get(0))
        .optional()?)
}

fn put(conn: &Connection, domain: Domain, key: &str, value: &[u8]) -> Result<()> {
    conn.prepare_cached("INSERT OR REPLACE INTO kv (domain, key, value) VALUES (?1, ?2, ?3)")?
        .execute(params![domain.name(), key, value])?;
    Ok(())
}

fn delete(conn: &Connection, domain: Domain, key: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM kv WHERE domain = ?1 AND key = ?2")?
        .execute(params![domain.name(), key])?;
    Ok(())
}

/// The smallest string greater than every string starting with `prefix`, for a range
/// scan on the primary key (`None` when no bound exists).
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = char::from_u32(last as u32 + 1) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn scan(conn: &Connection, domain: Domain, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    match prefix_end(prefix) {
        Some(end) => {
            let mut stmt = conn.prepare_cached(
                "SELECT key, value FROM kv WHERE domain = ?1 AND key >= ?2 AND key < ?3 ORDER BY key",
            )?;
            let rows = stmt.query_map(params![domain.name(), prefix, end], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            for row in rows {
                out.push(row?);
            }
        }
        None => {
            let mut stmt = conn.prepare_cached(
                "SELECT key, value FROM kv WHERE domain = ?1 AND key >= ?2 ORDER BY key",
            )?;
            let rows = stmt.query_map(params![domain.name(), prefix], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            for row in rows {
                out.push(row?);
            }
        }
    }
    Ok(out)
}

fn scan_range(
    conn: &Connection,
    domain: Domain,
    from: &str,
    to: &str,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, value FROM kv WHERE domain = ?1 AND key >= ?2 AND key < ?3 ORDER BY key LIMIT ?4",
    )?;
    // SQLite's LIMIT is signed; anything beyond i64::MAX means "all".
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![domain.name(), from, to, limit], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

fn delete_range(conn: &Connection, domain: Domain, from: &str, to: &str) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM kv WHERE domain = ?1 AND key >= ?2 AND key < ?3")?
        .execute(params![domain.name(), from, to])?)
}

fn keys(conn: &Connection, domain: Domain, prefix: &str) -> Result<Vec<String>> {
    Ok(scan(conn, domain, prefix)?
        .into_iter()
        .map(|(k, _)| k)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_lists_every_key_by_domain() {
        let store = Store::in_memory().unwrap();
        // A new store holds its format version.
        assert_eq!(dump_text(&store), "configurations[results_version]: 2\n");
        store.put(Domain::Queries, "q1", b"[1]").unwrap();
        store.put(Domain::Configurations, "k", b"v").unwrap();
        assert_eq!(
            dump_text(&store),
            "configurations[k]: v\nconfigurations[results_version]: 2\nqueries[q1]: [1]\n"
        );
    }

    fn dump_text(store: &Store) -> String {
        let mut out = Vec::new();
        store.dump(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osquery.db");
        {
            let store = Store::open(&path).unwrap();
            store.put(Domain::Queries, "q1", b"[1,2]").unwrap();
            store
                .put(Domain::Configurations, "q1", b"other domain")
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.get(Domain::Queries, "q1").unwrap().unwrap(), b"[1,2]");
        assert_eq!(
            store
                .get_text(Domain::Configurations, "q1")
                .unwrap()
                .unwrap(),
            "other domain"
        );
        assert_eq!(
            store
                .get_text(Domain::Configurations, "results_version")
                .unwrap()
                .unwrap(),
            "2"
        );
    }

    #[test]
    fn scans_by_prefix_in_key_order() {
        let store = Store::in_memory().unwrap();
        for k in [
            "interval.b",
            "interval.a",
            "intervam",
            "interval",
            "timestamp.a",
        ] {
            store.put(Domain::Configurations, k, k.as_bytes()).unwrap();
        }
        assert_eq!(
            store.keys(Domain::Configurations, "interval.").unwrap(),
            ["interval.a", "interval.b"]
        );
        assert_eq!(
            store.keys(Domain::Configurations, "interval").unwrap(),
            ["interval", "interval.a", "interval.b"]
        );
        assert_eq!(prefix_end("ab"), Some("ac".into()));
        store.delete(Domain::Configurations, "interval.a").unwrap();
        assert_eq!(
            store.keys(Domain::Configurations, "interval.").unwrap(),
            ["interval.b"]
        );
    }

    #[test]
    fn a_failed_transaction_writes_nothing() {
        let mut store = Store::in_memory().unwrap();
        let outcome: Result<()> = store.transaction(|tx| {
            tx.put(Domain::Queries, "a", b"1")?;
            Err(StoreError::Sqlite(rusqlite::Error::InvalidQuery))
        });
        assert!(outcome.is_err());
        assert_eq!(store.get(Domain::Queries, "a").unwrap(), None);
        store
            .transaction(|tx| {
                tx.put(Domain::Queries, "a", b"1")?;
                tx.put(Domain::Logs, "b", b"2")
            })
            .unwrap();
        assert!(store.get(Domain::Logs, "b").unwrap().is_some());
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osquery.db");
        std::fs::write(
            &path,
            b"this is not an SQLite database, just garbage bytes....",
        )
        .unwrap();
        let store = Store::open(&path).unwrap();
        store.put(Domain::Queries, "x", b"y").unwrap();
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "the corrupt file is kept for inspection");
        assert!(
            std::fs::read(aside[0].path())
                .unwrap()
                .starts_with(b"this is not"),
            "moved aside unchanged"
        );
    }

    #[test]
    fn range_scans_and_deletes_are_half_open_and_limited() {
        let mut store = Store::in_memory().unwrap();
        for i in 0..10 {
            store
                .put(Domain::Logs, &format!("line.{i:03}"), &[i])
                .unwrap();
        }
        store.put(Domain::Logs, "next", b"10").unwrap();
        let got = store
            .scan_range(Domain::Logs, "line.003", "line.008", 3)
            .unwrap();
        let keys: Vec<_> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["line.003", "line.004", "line.005"]);
        assert_eq!(got[0].1, [3]);
        let deleted = store
            .transaction(|tx| tx.delete_range(Domain::Logs, "line.", "line.005"))
            .unwrap();
        assert_eq!(deleted, 5);
        let left = store
            .scan_range(Domain::Logs, "line.", "line/", usize::MAX)
            .unwrap();
        assert_eq!(left.len(), 5);
        assert_eq!(left[0].0, "line.005");
        assert!(store.get(Domain::Logs, "next").unwrap().is_some());
    }

    #[test]
    fn binary_values_round_trip() {
        let store = Store::in_memory().unwrap();
        let bytes: Vec<u8> = (0..=255).collect();
        store.put(Domain::Events, "data.k", &bytes).unwrap();
        assert_eq!(store.get(Domain::Events, "data.k").unwrap().unwrap(), bytes);
        assert_eq!(Domain::ALL.len(), 8);
    }
}
