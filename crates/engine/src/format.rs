//! Values as SQLite itself prints them (`sqlite3_column_text`), which is what osqueryi shows.

use rusqlite::Connection;

thread_local! {
    /// SQLite's float-to-text rules change between releases (3.54 prints up to 17
    /// significant digits and switches to exponents at 1e17), so we ask SQLite itself
    /// rather than imitate it. One small in-memory connection per thread.
    static FORMATTER: Option<Connection> = Connection::open_in_memory().ok();
}

/// Formats a double exactly as SQLite converts it to text (`1.0`, `3.14159`, `1.0e+20`).
pub fn format_real(value: f64) -> String {
    FORMATTER
        .with(|conn| {
            let conn = conn.as_ref()?;
            let mut stmt = conn.prepare_cached("SELECT CAST(?1 AS TEXT)").ok()?;
            stmt.query_row([value], |r| r.get::<_, String>(0)).ok()
        })
        .unwrap_or_else(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::format_real;

    #[test]
    fn matches_sqlite_text_of_reals() {
        assert_eq!(format_real(1.0), "1.0");
        assert_eq!(format_real(2.71), "2.71");
        assert_eq!(format_real(1e20), "1.0e+20");
        assert_eq!(format_real(-2.25), "-2.25");
        assert_eq!(format_real(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(format_real(1e16), "10000000000000000.0");
    }
}
