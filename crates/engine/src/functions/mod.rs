//! osquery's SQL functions, registered on every connection.

use rusqlite::Connection;

/// Registers every function on `conn`.
pub(crate) fn register(_conn: &Connection) -> rusqlite::Result<()> {
    Ok(())
}
