//! Reading an SQLite database file on the host (the config's automatic tables), so that
//! no crate but the engine and the store opens SQLite.

use crate::EngineError;
use oxquery_table::Value;
use rusqlite::{Connection, OpenFlags};
use std::ops::ControlFlow;
use std::path::Path;

/// Runs `sql` on the database at `path`, opened read-only. `columns` sees the result's
/// column names once and returns what `row` needs (a column mapping, say); then `row`
/// sees each result row (stop early with `Break`). Only a regular file is opened: SQLite
/// would block on a FIFO.
pub fn query_file<T>(
    path: &Path,
    sql: &str,
    columns: impl FnOnce(&[&str]) -> T,
    mut row: impl FnMut(&T, &[Value]) -> ControlFlow<()>,
) -> Result<(), EngineError> {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return Err(EngineError::NotAFile(path.display().to_string()));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    let prepared = columns(&names.iter().map(String::as_str).collect::<Vec<_>>());
    let mut each = |values: &[Value]| row(&prepared, values);
    crate::step_rows(&mut stmt, &mut each)?;
    Ok(())
}
