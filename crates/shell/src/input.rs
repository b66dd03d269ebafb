//! Reading commands line by line, from a pipe/file or from the terminal.
//!
//! Lines accumulate until the buffer holds a complete SQL statement (SQLite decides);
//! a line starting with `.` while nothing is pending is a dot command; blank and
//! comment-only lines are skipped.

use crate::shell::{MetaOutcome, Shell};
use oxquery_engine::rusqlite::ffi;
use std::ffi::CString;
use std::io::{self, BufRead, Write};

/// Whether SQLite considers `sql` one or more complete statements.
pub fn is_complete(sql: &str) -> bool {
    let Ok(c) = CString::new(sql) else {
        // An embedded NUL ends the text for SQLite; what precedes it decides.
        let head = sql.split('\0').next().unwrap_or("");
        return is_complete(head);
    };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    unsafe { ffi::sqlite3_complete(c.as_ptr()) != 0 }
}

/// True if `text` holds only whitespace and SQL comments.
pub fn is_blank(text: &str) -> bool {
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, tail)| tail);
        } else if let Some(after) = rest.strip_prefix("/*") {
            match after.split_once("*/") {
                Some((_, tail)) => rest = tail,
                None => return true,
            }
        } else {
            return false;
        }
        rest = rest.trim_start();
    }
    true
}

/// What one more line of input amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Nothing to do (blank line, or more SQL is needed).
    Nothing,
    Meta(String),
    /// A complete statement and the line it started on.
    Sql(String, usize),
}

/// SQL text collected over several lines.
#[derive(Debug, Default)]
pub struct Accumulator {
    sql: String,
    start_line: usize,
}

impl Accumulator {
    pub fn is_empty(&self) -> bool {
        self.sql.is_empty()
    }

    pub fn clear(&mut self) {
        self.sql.clear();
    }

    /// Adds line number `number` (1-based).
    pub fn push(&mut self, line: &str, number: usize) -> Line {
        if self.sql.is_empty() {
            if line.starts_with('.') {
                return Line::Meta(line.to_owned());
            }
            if is_blank(line) {
                return Line::Nothing;
            }
            self.start_line = number;
        }
        self.sql.push_str(line);
        self.sql.push('\n');
        if line.contains(';') && is_complete(&self.sql) {
            return Line::Sql(std::mem::take(&mut self.sql), self.start_line);
        }
        Line::Nothing
    }

    /// At end of input: a pending statement that is not blank, even without its `;`.
    pub fn finish(&mut self) -> Option<String> {
        let sql = std::mem::take(&mut self.sql);
        (!is_blank(&sql)).then_some(sql)
    }
}

/// Strips the line terminator (`\n` or `\r\n`).
fn chomp(mut line: String) -> String {
    if line.ends_with('\n') {
        line.pop();
        if line.ends_with('\r') {
            line.pop();
        }
    }
    line
}

impl Shell {
    /// Runs commands from a non-interactive source. Returns 1 if any command failed,
    /// or the code of `.exit CODE`.
    pub fn process_input(&mut self, mut reader: impl BufRead) -> io::Result<i32> {
        let mut pending = Accumulator::default();
        let mut errors = 0;
        let mut number = 0;
        let mut raw = Vec::new();
        loop {
            raw.clear();
            if reader.read_until(b'\n', &mut raw)? == 0 {
                break;
            }
            number += 1;
            let line = chomp(String::from_utf8_lossy(&raw).into_owned());
            // `.echo on` repeats input lines as they are read, as the SQLite shell does.
            if self.echo {
                writeln!(self.out, "{line}")?;
            }
            let failed = match pending.push(&line, number) {
                Line::Nothing => false,
                Line::Meta(command) => match self.meta(&command)? {
                    MetaOutcome::Ok => false,
                    MetaOutcome::Error => true,
                    MetaOutcome::Exit(0) => break,
                    MetaOutcome::Exit(code) => return Ok(code),
                },
                Line::Sql(sql, start) => match self.run_sql(&sql)? {
                    Ok(()) => false,
                    Err(e) => {
                        self.error_line(&format!("Error: near line {start}: {}", e.message))?;
                        true
                    }
                },
            };
            if failed {
                errors += 1;
                if self.bail {
                    return Ok(1);
                }
            }
        }
        if let Some(sql) = pending.finish()
            && let Err(e) = self.run_sql(&sql)?
        {
            self.error_line(&format!("Error: {}", e.message))?;
            errors += 1;
        }
        Ok(i32::from(errors > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_complete() {
        assert!(is_blank("  -- hi\n /* x */ "));
        assert!(!is_blank(" select"));
        assert!(is_complete("select 1;"));
        assert!(!is_complete("select ';"));
        assert!(!is_complete("select 1"));
    }

    #[test]
    fn accumulates_until_complete() {
        let mut a = Accumulator::default();
        assert_eq!(a.push("", 1), Line::Nothing);
        assert_eq!(a.push(".tables", 2), Line::Meta(".tables".into()));
        assert_eq!(a.push("select", 3), Line::Nothing);
        assert_eq!(a.push(".x", 4), Line::Nothing);
        assert_eq!(a.push("1;", 5), Line::Sql("select\n.x\n1;\n".into(), 3));
        assert_eq!(a.push("select 2", 6), Line::Nothing);
        assert_eq!(a.finish(), Some("select 2\n".into()));
        assert_eq!(a.finish(), None);
    }
}
