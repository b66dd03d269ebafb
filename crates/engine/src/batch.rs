//! What the shell needs from SQLite without seeing it: running a batch of statements,
//! describing a statement's columns, telling whether input is a complete statement.

use crate::{Engine, EngineError, QueryResult, collect_rows};
use rusqlite::fallible_iterator::FallibleIterator as _;
use std::time::Duration;

/// Why a statement failed, as osquery reports it: SQLite's primary result code and its
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFailure {
    pub code: i32,
    pub message: String,
}

impl SqlFailure {
    fn of(e: rusqlite::Error, sql: &str) -> SqlFailure {
        match e {
            rusqlite::Error::SqliteFailure(err, message) => SqlFailure {
                // Extended codes are on in rusqlite; osquery reports the primary code.
                code: err.extended_code & 0xff,
                message: message.unwrap_or_else(|| format!("unable to process SQL \"{sql}\"")),
            },
            rusqlite::Error::SqlInputError { error, msg, .. } => SqlFailure {
                code: error.extended_code & 0xff,
                message: msg,
            },
            other => SqlFailure {
                code: 1,
                message: other.to_string(),
            },
        }
    }
}

impl From<EngineError> for SqlFailure {
    fn from(e: EngineError) -> SqlFailure {
        match e {
            EngineError::Sqlite(e) => SqlFailure::of(e, ""),
            EngineError::Stopped(reason) => SqlFailure {
                code: rusqlite::ffi::SQLITE_INTERRUPT,
                message: format!("interrupted: {reason}"),
            },
            other => SqlFailure {
                code: 1,
                message: other.to_string(),
            },
        }
    }
}

impl Engine {
    /// Runs every statement of `sql` in order and hands each one's result to `each`.
    /// Stops at the first failing statement (`Ok(Err(failure))`) or the first error
    /// `each` returns (`Err`).
    pub fn run_batch<E>(
        &self,
        sql: &str,
        mut each: impl FnMut(QueryResult) -> Result<(), E>,
    ) -> Result<Result<(), SqlFailure>, E> {
        self.begin_query(None);
        let conn = self.connection();
        let mut batch = rusqlite::Batch::new(conn, sql);
        loop {
            let mut stmt = match batch.next() {
                Ok(Some(stmt)) => stmt,
                Ok(None) => return Ok(Ok(())),
                Err(e) => return Ok(Err(SqlFailure::of(e, sql))),
            };
            let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
            let rows = match collect_rows(&mut stmt) {
                Ok(rows) => rows,
                Err(e) => return Ok(Err(SqlFailure::of(e, sql))),
            };
            each(QueryResult { columns, rows })?;
        }
    }

    /// Column names and types of `sql`'s first statement, without running it. A column
    /// read from a table has its declared type; an expression has none in SQLite, so its
    /// type is read from the instruction that fills its result register (`UNKNOWN` when
    /// that does not say).
    pub fn column_types(&self, sql: &str) -> Result<Vec<(String, String)>, SqlFailure> {
        let conn = self.connection();
        let stmt = conn.prepare(sql).map_err(|e| SqlFailure::of(e, sql))?;
        let declared: Vec<(String, Option<String>)> = stmt
            .columns()
            .map(|c| (c.name().to_owned(), c.decl_type().map(str::to_owned)))
            .collect();
        drop(stmt);
        let inferred = if declared.iter().any(|(_, t)| t.is_none()) {
            expression_types(conn, sql, declared.len()).unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(declared
            .into_iter()
            .enumerate()
            .map(|(i, (name, ty))| {
                let ty = ty
                    .map(|t| t.to_ascii_uppercase())
                    .or_else(|| inferred.get(i).cloned().flatten())
                    .unwrap_or_else(|| "UNKNOWN".to_owned());
                (name, ty)
            })
            .collect())
    }

    /// Checks that `sql` could run, without running it (`--config_check`): SQLite
    /// prepares it as a scheduled query is prepared (syntax, unknown tables and columns,
    /// what the authorizer refuses), and no table in the chosen plan lacks a constraint
    /// it requires. That last check is the one a scan makes when it starts; here it is
    /// read from the plan SQLite chose (`EXPLAIN QUERY PLAN` shows each virtual table's
    /// `idx_str`), so nothing is generated. The table is named as the query names it (its
    /// alias, if it has one).
    pub fn prepare(&self, sql: &str) -> Result<(), SqlFailure> {
        let conn = self.connection();
        conn.prepare(sql).map_err(|e| SqlFailure::of(e, sql))?;
        let mut plan = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .map_err(|e| SqlFailure::of(e, sql))?;
        let details: Vec<String> = plan
            .query_map([], |r| r.get::<_, String>(3))
            .and_then(|rows| rows.collect())
            .map_err(|e| SqlFailure::of(e, sql))?;
        for detail in details {
            // "SCAN <name> VIRTUAL TABLE INDEX <idxNum>:<idxStr>" (or SEARCH).
            let Some((head, index)) = detail.split_once(" VIRTUAL TABLE INDEX ") else {
                continue;
            };
            let name = head.rsplit(' ').next().unwrap_or(head);
            let idx_str = index.split_once(':').map_or("", |(_, s)| s);
            if crate::plan::Plan::decode(idx_str).is_some_and(|p| p.missing_required) {
                return Err(SqlFailure {
                    code: rusqlite::ffi::SQLITE_CONSTRAINT,
                    message: format!(
                        "Table {name} was queried without a required column in the WHERE clause"
                    ),
                });
            }
        }
        Ok(())
    }

    /// `.timeout`: how long a statement waits for a locked database.
    pub fn set_busy_timeout(&self, timeout: Duration) -> Result<(), SqlFailure> {
        self.conn
            .busy_timeout(timeout)
            .map_err(|e| SqlFailure::of(e, ""))
    }
}

/// Types of the `count` result columns from `EXPLAIN sql`: for each output register, the
/// kind of literal every instruction writing it loads, if they agree.
fn expression_types(
    conn: &rusqlite::Connection,
    sql: &str,
    count: usize,
) -> rusqlite::Result<Vec<Option<String>>> {
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}"))?;
    // (opcode, p1, p2)
    let program: Vec<(String, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get::<_, String>(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let Some(&(_, first, _)) = program.iter().find(|(op, _, _)| op == "ResultRow") else {
        return Ok(vec![None; count]);
    };
    let mut types = Vec::with_capacity(count);
    for reg in (first..).take(count) {
        let mut seen: Option<&str> = None;
        let mut agree = true;
        for (op, _, p2) in &program {
            if *p2 != reg {
                continue;
            }
            let ty = match op.as_str() {
                "Integer" | "Int64" => "INTEGER",
                "Real" => "DOUBLE",
                "String8" | "String" => "TEXT",
                "Blob" => "BLOB",
                _ => continue,
            };
            agree &= seen.is_none_or(|s| s == ty);
            seen = Some(ty);
        }
        types.push(seen.filter(|_| agree).map(str::to_owned));
    }
    Ok(types)
}

/// Whether `sql` ends with a complete statement (SQLite's `sqlite3_complete`): the
/// shell keeps reading lines until it does.
pub fn is_complete(sql: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(sql) else {
        // An embedded NUL ends the text for SQLite; what precedes it decides.
        let head = sql.split('\0').next().unwrap_or("");
        return is_complete(head);
    };
    // SAFETY: a valid NUL-terminated string; sqlite3_complete only reads it.
    unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 }
}

/// The SQLite library's version (`.version`).
pub fn sqlite_version() -> &'static str {
    rusqlite::version()
}
