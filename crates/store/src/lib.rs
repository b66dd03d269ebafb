//! The daemon's persistent state: osquery's RocksDB domains (`configurations`,
//! `queries`, `events`, `logs`, ...) as rows of one SQLite table in `--database_path`,
//! and [`Queue`]s (numbered items appended in bulk: the outbox's log lines) in tables of
//! their own. A write costs time proportional to what it writes, whatever the size of a
//! value (a query's last results can be tens of megabytes).
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

pub mod osquery_rocksdb;

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

/// An append-only sequence of values numbered by the writer (the outbox's blocks of log
/// lines): one row per value in a table of its own keyed by the number, so appending is
/// a B-tree append and no index is kept. `--database_dump` shows each line of a value
/// as `<domain>[<prefix>.<number as 20 digits>]`, numbered from the item's own number
/// (the outbox numbers every line and keys a block by its first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Queue {
    pub domain: Domain,
    /// `[a-z.]` only: it also names the table.
    pub prefix: &'static str,
}

impl Queue {
    fn table(self) -> String {
        format!(
            "queue_{}_{}",
            self.domain.name(),
            self.prefix.replace('.', "_")
        )
    }

    fn check(self) {
        assert!(
            !self.prefix.is_empty()
                && self
                    .prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'.'),
            "queue prefix {:?} must be [a-z.]",
            self.prefix
        );
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

impl StoreError {
    /// The file is not a usable SQLite database (as opposed to one that could not be
    /// reached).
    fn is_corruption(&self) -> bool {
        let source = match self {
            StoreError::Open { source, .. } | StoreError::Sqlite(source) => source,
            StoreError::Conflict(_) => return false,
        };
        matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        )
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The schema version osquery keeps under `configurations/results_version`.
const RESULTS_VERSION: &str = "2";

/// One row per key. A rowid table: values can be megabytes (a query's last results),
/// which SQLite keeps in the table's own pages and overflow chains, while the
/// `(domain, key)` index holds only the keys; a WITHOUT ROWID table (the layout before)
/// holds whole rows in its B-tree, which SQLite advises against for large rows.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS kv (
    domain TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    UNIQUE (domain, key)
);";

/// Moves a store written by an earlier version (a WITHOUT ROWID `kv`) to [`SCHEMA`], in
/// one transaction: a crash half-way leaves the old table as it was.
const MIGRATE_WITHOUT_ROWID: &str = "ALTER TABLE kv RENAME TO kv_without_rowid;
    CREATE TABLE kv (
        domain TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        UNIQUE (domain, key)
    );
    INSERT INTO kv (domain, key, value) SELECT domain, key, value FROM kv_without_rowid;
    DROP TABLE kv_without_rowid;";

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
    /// warning: losing old diff state is better than a daemon that cannot start. A file
    /// that cannot be opened (permissions, a lock, an I/O error) is an error and is left
    /// alone: its content may be fine.
    pub fn open(path: &Path) -> Result<Store> {
        match Self::open_checked(path) {
            Ok(store) => Ok(store),
            Err(first) if !first.is_corruption() => Err(first),
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
        // Incremental auto-vacuum (takes effect only in a new file): free pages can then
        // be handed back to the file system by `maintain` without rewriting the file.
        conn.execute_batch(
            "PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
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
        let queues = self.queues().unwrap_or_default();
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
            for (_, prefix, table) in queues.iter().filter(|(d, _, _)| *d == domain) {
                let Ok(items) = queue_items(&self.conn, table, 0, usize::MAX) else {
                    continue;
                };
                for (first, value) in items {
                    // The outbox compresses large blocks (zstd frames).
                    let value = if value.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
                        zstd::stream::decode_all(value.as_slice()).unwrap_or(value)
                    } else {
                        value
                    };
                    let text = String::from_utf8_lossy(&value);
                    for (seq, line) in (first..).zip(text.split('\n')) {
                        writeln!(out, "{}[{prefix}.{seq:020}]: {line}", domain.name())?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The queue tables present: the domain and prefix of each, and its table.
    fn queues(&self) -> Result<Vec<(Domain, String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'queue\\_%' ESCAPE '\\'")?;
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for table in names {
            let rest = &table["queue_".len()..];
            if let Some(domain) = Domain::ALL
                .into_iter()
                .find(|d| rest.starts_with(&format!("{}_", d.name())))
            {
                let prefix = rest[domain.name().len() + 1..].replace('_', ".");
                out.push((domain, prefix, table));
            }
        }
        Ok(out)
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
        let existing: Option<String> = self
            .conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'kv'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if existing.is_some_and(|sql| sql.to_ascii_uppercase().contains("WITHOUT ROWID")) {
            self.conn
                .execute_batch(&format!("BEGIN IMMEDIATE; {MIGRATE_WITHOUT_ROWID} COMMIT;"))
                .inspect_err(|_| {
                    let _ = self.conn.execute_batch("ROLLBACK");
                })?;
            log::info!(
                "Database {}: moved to the rowid layout",
                self.path
                    .as_deref()
                    .unwrap_or(Path::new(":memory:"))
                    .display()
            );
        }
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

    /// Items of `queue` numbered `from` or more, in order, at most `limit`.
    pub fn queue_range(
        &self,
        queue: Queue,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        queue_range(&self.conn, queue, from, limit)
    }

    /// The lowest number stored in `queue`.
    pub fn queue_first(&self, queue: Queue) -> Result<Option<u64>> {
        queue_first(&self.conn, queue)
    }

    /// The item numbered `seq`, or else the one before it (the highest number below).
    pub fn queue_item_at(&self, queue: Queue, seq: u64) -> Result<Option<(u64, Vec<u8>)>> {
        queue_item_at(&self.conn, queue, seq)
    }

    /// Periodic upkeep (`--schedule_reload`; osquery reopens its RocksDB there to free
    /// memory and compact): returns the pages that deletions freed to the file system,
    /// checkpoints the write-ahead log into the database and truncates it, and releases
    /// the connection's page cache. A store that predates incremental auto-vacuum is
    /// rewritten once (`VACUUM`) when over half of its file is free pages.
    pub fn maintain(&self) -> Result<Maintenance> {
        let pages = |conn: &Connection| -> Result<(u64, u64)> {
            let count: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
            Ok((count.max(0) as u64, free.max(0) as u64))
        };
        let (pages_before, free_before) = pages(&self.conn)?;
        let wal_before = self.wal_bytes();
        let cache_before = self.cache_bytes();
        let auto_vacuum: i64 = self
            .conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        const INCREMENTAL: i64 = 2;
        if auto_vacuum == INCREMENTAL {
            // The pragma returns a row per page freed; step it to the end.
            let mut stmt = self.conn.prepare("PRAGMA incremental_vacuum")?;
            let mut rows = stmt.query([])?;
            while rows.next()?.is_some() {}
        } else if self.path.is_some() && free_before * 2 > pages_before {
            self.conn
                .execute_batch("PRAGMA auto_vacuum = INCREMENTAL; VACUUM;")?;
        }
        if self.path.is_some() {
            // (busy, log frames, checkpointed frames); busy only while another
            // connection reads, and the next maintenance catches up.
            let _: (i64, i64, i64) =
                self.conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?;
        }
        self.conn.execute_batch("PRAGMA shrink_memory")?;
        let (pages_after, free_after) = pages(&self.conn)?;
        Ok(Maintenance {
            wal_before,
            wal_after: self.wal_bytes(),
            pages_before,
            pages_after,
            free_pages_before: free_before,
            free_pages_after: free_after,
            cache_before,
            cache_after: self.cache_bytes(),
        })
    }

    /// Bytes of the write-ahead log file (0 when ephemeral or absent).
    fn wal_bytes(&self) -> u64 {
        self.path
            .as_ref()
            .and_then(|p| std::fs::metadata(format!("{}-wal", p.display())).ok())
            .map_or(0, |m| m.len())
    }

    /// Bytes of page cache the connection holds.
    fn cache_bytes(&self) -> u64 {
        let (mut current, mut high) = (0, 0);
        // SAFETY: the handle is this store's open connection; sqlite3_db_status only
        // writes the two integers it is given.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                self.conn.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_CACHE_USED,
                &mut current,
                &mut high,
                0,
            )
        };
        if rc == rusqlite::ffi::SQLITE_OK {
            u64::try_from(current).unwrap_or(0)
        } else {
            0
        }
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

/// What [`Store::maintain`] did, for the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintenance {
    /// Bytes of the write-ahead log before and after.
    pub wal_before: u64,
    pub wal_after: u64,
    /// Pages of the database file, and of them free, before and after.
    pub pages_before: u64,
    pub pages_after: u64,
    pub free_pages_before: u64,
    pub free_pages_after: u64,
    /// Bytes of page cache held before and after.
    pub cache_before: u64,
    pub cache_after: u64,
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
    /// Stores `value` as item `seq` of `queue` (replacing an item of that number).
    pub fn queue_push(&self, queue: Queue, seq: u64, value: &[u8]) -> Result<()> {
        ensure_queue(self.tx, queue)?;
        self.tx
            .prepare_cached(&format!(
                "INSERT OR REPLACE INTO {} (seq, value) VALUES (?1, ?2)",
                queue.table()
            ))?
            .execute(params![seq_param(seq), value])?;
        Ok(())
    }
    /// The item numbered `seq`, or else the one before it (the highest number below).
    pub fn queue_item_at(&self, queue: Queue, seq: u64) -> Result<Option<(u64, Vec<u8>)>> {
        queue_item_at(self.tx, queue, seq)
    }
    pub fn queue_range(
        &self,
        queue: Queue,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        queue_range(self.tx, queue, from, limit)
    }
    pub fn queue_first(&self, queue: Queue) -> Result<Option<u64>> {
        queue_first(self.tx, queue)
    }
    /// Deletes the items of `queue` numbered below `end`; returns how many.
    pub fn queue_delete_below(&self, queue: Queue, end: u64) -> Result<usize> {
        if !queue_exists(self.tx, queue)? {
            return Ok(0);
        }
        Ok(self
            .tx
            .prepare_cached(&format!("DELETE FROM {} WHERE seq < ?1", queue.table()))?
            .execute(params![seq_param(end)])?)
    }
}

/// SQLite integers are signed; sequence numbers beyond i64::MAX are clamped (never
/// reached: they count lines).
fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

fn queue_exists(conn: &Connection, queue: Queue) -> Result<bool> {
    queue.check();
    Ok(conn
        .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1")?
        .exists(params![queue.table()])?)
}

fn ensure_queue(conn: &Connection, queue: Queue) -> Result<()> {
    if !queue_exists(conn, queue)? {
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {} (seq INTEGER PRIMARY KEY, value BLOB NOT NULL)",
            queue.table()
        ))?;
    }
    Ok(())
}

fn queue_items(
    conn: &Connection,
    table: &str,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT seq, value FROM {table} WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
    ))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![seq_param(from), limit], |r| {
        Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row?);
    }
    Ok(out)
}

fn queue_range(
    conn: &Connection,
    queue: Queue,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>> {
    if !queue_exists(conn, queue)? {
        return Ok(Vec::new());
    }
    queue_items(conn, &queue.table(), from, limit)
}

fn queue_item_at(conn: &Connection, queue: Queue, seq: u64) -> Result<Option<(u64, Vec<u8>)>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    Ok(conn
        .prepare_cached(&format!(
            "SELECT seq, value FROM {} WHERE seq <= ?1 ORDER BY seq DESC LIMIT 1",
            queue.table()
        ))?
        .query_row(params![seq_param(seq)], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })
        .optional()?)
}

fn queue_first(conn: &Connection, queue: Queue) -> Result<Option<u64>> {
    if !queue_exists(conn, queue)? {
        return Ok(None);
    }
    Ok(conn
        .prepare_cached(&format!("SELECT min(seq) FROM {}", queue.table()))?
        .query_row([], |r| r.get::<_, Option<i64>>(0))?
        .map(|s| s as u64))
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

    /// A database that cannot be opened (here a directory, as a file without permission
    /// would be for another user) is an error, and nothing is moved or created.
    #[test]
    fn a_file_that_cannot_be_opened_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osquery.db");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"x").unwrap();
        let e = Store::open(&path).unwrap_err();
        assert!(!e.is_corruption(), "{e}");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["osquery.db"]);
        assert_eq!(std::fs::read(path.join("keep")).unwrap(), b"x");
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
    fn a_store_of_the_previous_layout_is_migrated_with_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osquery.db");
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        {
            // Exactly what the previous version created.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE kv (domain TEXT NOT NULL, key TEXT NOT NULL,
                     value BLOB NOT NULL, PRIMARY KEY (domain, key)) WITHOUT ROWID;",
            )
            .unwrap();
            for (domain, key, value) in [
                ("configurations", "results_version", &b"2"[..]),
                ("queries", "q1", &big[..]),
                ("queries", "q1counter", b"7"),
                ("logs", "line.r.00000000000000000001", b"{}"),
            ] {
                conn.execute(
                    "INSERT INTO kv (domain, key, value) VALUES (?1, ?2, ?3)",
                    params![domain, key, value],
                )
                .unwrap();
            }
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.get(Domain::Queries, "q1").unwrap().unwrap(), big);
        assert_eq!(
            store
                .get_text(Domain::Queries, "q1counter")
                .unwrap()
                .unwrap(),
            "7"
        );
        assert_eq!(
            store.keys(Domain::Logs, "line.").unwrap(),
            ["line.r.00000000000000000001"]
        );
        // Migrated in place, not moved aside as corrupt.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".corrupt-")), "{names:?}");
        let sql: String = store
            .conn
            .query_row("SELECT sql FROM sqlite_master WHERE name = 'kv'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert!(!sql.to_ascii_uppercase().contains("WITHOUT ROWID"), "{sql}");
        // Writes after the migration replace values as before.
        store.put(Domain::Queries, "q1", b"[]").unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.get(Domain::Queries, "q1").unwrap().unwrap(), b"[]");
        assert_eq!(
            store.keys(Domain::Queries, "q1").unwrap(),
            ["q1", "q1counter"]
        );
    }

    #[test]
    fn maintenance_returns_freed_pages_and_truncates_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osquery.db");
        let store = Store::open(&path).unwrap();
        let value = vec![0x5a_u8; 64 * 1024];
        for i in 0..100 {
            store
                .put(Domain::Events, &format!("data.{i}"), &value)
                .unwrap();
        }
        let first = store.maintain().unwrap();
        let full = std::fs::metadata(&path).unwrap().len();
        assert!(full > 100 * 64 * 1024, "{full}");
        assert_eq!(first.wal_after, 0, "{first:?}");
        store
            .delete_range(Domain::Events, "data.", "data/")
            .unwrap();
        let m = store.maintain().unwrap();
        assert!(m.wal_before > 0, "the deletion went to the log: {m:?}");
        assert_eq!(m.wal_after, 0, "{m:?}");
        assert!(m.free_pages_before > 1000, "{m:?}");
        assert_eq!(m.free_pages_after, 0, "{m:?}");
        assert!(m.pages_after * 10 < m.pages_before, "{m:?}");
        let shrunk = std::fs::metadata(&path).unwrap().len();
        assert!(shrunk * 10 < full, "{shrunk} vs {full}");
        // The data left is intact, and an ephemeral store maintains too.
        assert!(
            store
                .get(Domain::Configurations, "results_version")
                .unwrap()
                .is_some()
        );
        Store::in_memory().unwrap().maintain().unwrap();
    }

    #[test]
    fn a_store_without_auto_vacuum_is_rewritten_once_mostly_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osquery.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch("PRAGMA journal_mode = WAL;").unwrap();
        }
        let store = Store::open(&path).unwrap();
        let mode: i64 = store
            .conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 0, "a file made before keeps its mode");
        let value = vec![1_u8; 64 * 1024];
        for i in 0..50 {
            store
                .put(Domain::Queries, &format!("q{i}"), &value)
                .unwrap();
        }
        store.delete_range(Domain::Queries, "q", "r").unwrap();
        let m = store.maintain().unwrap();
        assert_eq!(m.free_pages_after, 0, "{m:?}");
        assert!(m.pages_after * 10 < m.pages_before, "{m:?}");
        let mode: i64 = store
            .conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, 2, "incremental from now on");
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
