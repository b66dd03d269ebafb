//! Reading an SQLite database file another program owns (rpm's `rpmdb.sqlite`), read-only.
//!
//! The file may be written while we read it, so it is opened the way that program's own
//! readers do: read-only with SQLite's locking, so a write-ahead log is honoured and a
//! writer's transaction is never seen half done (a short busy timeout covers a writer
//! holding the lock). A reader without write access to the directory may be unable to
//! open the WAL index; it then reads the file as `immutable` (no locks, no log: what is
//! checkpointed). The file is not trusted: only a regular file is opened (SQLite would
//! block on a FIFO), the schema's functions and views are not trusted, and the
//! connection cannot write.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Why a query of a database file failed.
#[derive(Debug, thiserror::Error)]
pub enum SqliteFileError {
    #[error("{0} is not a regular file")]
    NotAFile(String),
    #[error("{path}: {message}")]
    Sqlite { path: String, message: String },
}

fn sqlite_error(path: &Path, e: rusqlite::Error) -> SqliteFileError {
    SqliteFileError::Sqlite {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// `path` as an SQLite URI (`file:` with the bytes percent-encoded) with `query`.
fn uri(path: &Path, query: &str) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push('?');
    out.push_str(query);
    out
}

fn open(path: &Path) -> Result<Connection, SqliteFileError> {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Err(SqliteFileError::NotAFile(path.display().to_string()));
    }
    // (A file swapped for a FIFO between this check and SQLite's open would still block;
    // that needs a race won inside the directory, which only its owner can write.)
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let prepare = |conn: Connection| -> rusqlite::Result<Connection> {
        conn.busy_timeout(Duration::from_secs(2))?;
        conn.execute_batch("PRAGMA trusted_schema = OFF; PRAGMA query_only = ON;")?;
        // Reading the schema opens the WAL index if there is one: fail here, not later.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
        Ok(conn)
    };
    let locked = Connection::open_with_flags(uri(path, "mode=ro"), flags).and_then(prepare);
    match locked {
        Ok(conn) => Ok(conn),
        Err(e) => {
            log::debug!(
                "{}: cannot read with locking ({e}); reading it as immutable",
                path.display()
            );
            Connection::open_with_flags(uri(path, "mode=ro&immutable=1"), flags)
                .and_then(prepare)
                .map_err(|e| sqlite_error(path, e))
        }
    }
}

/// Runs `sql` (with text parameters `params`) on the database at `path` and hands the
/// first column of each result row to `row` as bytes (a BLOB's or TEXT's; NULL and
/// numbers give an empty slice); `row` may stop early with `Break`.
pub fn for_each_blob(
    path: &Path,
    sql: &str,
    params: &[&str],
    mut row: impl FnMut(&[u8]) -> ControlFlow<()>,
) -> Result<(), SqliteFileError> {
    let conn = open(path)?;
    let mut stmt = conn.prepare(sql).map_err(|e| sqlite_error(path, e))?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(|e| sqlite_error(path, e))?;
    while let Some(r) = rows.next().map_err(|e| sqlite_error(path, e))? {
        let value = r.get_ref(0).map_err(|e| sqlite_error(path, e))?;
        let bytes = value.as_bytes_or_null().ok().flatten().unwrap_or_default();
        if row(bytes).is_break() {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(path: &Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE t (k TEXT, v BLOB);
             INSERT INTO t VALUES ('a', x'0102'), ('b', x'03'), ('c', NULL);",
        )
        .unwrap();
    }

    fn all(path: &Path, sql: &str, params: &[&str]) -> Result<Vec<Vec<u8>>, SqliteFileError> {
        let mut out = Vec::new();
        for_each_blob(path, sql, params, |b| {
            out.push(b.to_vec());
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    #[test]
    fn reads_rows_and_sees_a_writers_committed_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("odd name %.sqlite");
        make(&path);
        // A writer keeps its connection (and uncheckpointed WAL) open while we read.
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA wal_autocheckpoint = 0; INSERT INTO t VALUES ('d', x'04');")
            .unwrap();
        assert!(
            std::fs::metadata(dir.path().join("odd name %.sqlite-wal"))
                .unwrap()
                .len()
                > 0
        );
        let got = all(&path, "SELECT v FROM t WHERE k <> ?1 ORDER BY k", &["b"]).unwrap();
        assert_eq!(got, vec![vec![1, 2], vec![], vec![4]]);
        // Our connection cannot write.
        assert!(all(&path, "DELETE FROM t RETURNING v", &[]).is_err());
        drop(writer);
    }

    #[test]
    fn refuses_fifos_and_reports_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            all(&fifo, "SELECT 1", &[]),
            Err(SqliteFileError::NotAFile(_))
        ));
        let junk = dir.path().join("junk");
        std::fs::write(&junk, vec![0x5a; 10000]).unwrap();
        assert!(all(&junk, "SELECT v FROM t", &[]).is_err());
        // A database cut short: an error or the rows that survive, never a panic.
        let good = dir.path().join("good");
        {
            let conn = Connection::open(&good).unwrap();
            conn.execute_batch(
                "CREATE TABLE t (v BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50)
                 INSERT INTO t SELECT randomblob(3000) FROM n;",
            )
            .unwrap();
        }
        let bytes = std::fs::read(&good).unwrap();
        for len in [100, 4096, 8192, bytes.len() / 2, bytes.len() - 1] {
            let cut = dir.path().join(format!("cut{len}"));
            std::fs::write(&cut, &bytes[..len]).unwrap();
            let _ = all(&cut, "SELECT v FROM t", &[]);
        }
    }
}
