//! Reading commands line by line, from a pipe/file or from the terminal.
//!
//! Lines accumulate until the buffer holds a complete SQL statement (SQLite decides);
//! a line starting with `.` while nothing is pending is a dot command; blank and
//! comment-only lines are skipped. `.types SQL` is the exception among dot commands: its
//! SQL accumulates like a statement and is described instead of run.
//!
//! Whether the pending text is complete is followed as lines arrive ([`Scanner`]), not
//! re-read from its start at each line. A pending statement longer than
//! [`MAX_STATEMENT_BYTES`] or a NUL byte stops the input (a pipe of `/dev/zero` has
//! neither line ends nor an end); a statement with bytes that are not UTF-8 is an error
//! of that statement, not silently altered.

use crate::meta::types_sql;
use crate::shell::{MetaOutcome, Shell};
use crate::statements::{
    InputError, MAX_STATEMENT_BYTES, Scanner, read_line_bounded, room_to_bound,
};
use std::io::{self, BufRead, Write};

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
    /// The complete SQL of a `.types` command.
    Types(String, usize),
    /// A complete statement (or a dot command) that held bytes that are not UTF-8, and
    /// the first line that did.
    NotUtf8(usize),
    /// The pending statement, started on the given line, grew past
    /// [`MAX_STATEMENT_BYTES`]; it was dropped.
    TooLong(usize),
}

/// SQL text collected over several lines.
#[derive(Debug, Default)]
pub struct Accumulator {
    sql: String,
    start_line: usize,
    /// The pending SQL came from `.types`.
    types: bool,
    /// Where the pending SQL's statements end, followed line by line.
    scanner: Scanner,
    /// The first pending line that was not UTF-8 (it was added with U+FFFD in place of
    /// its bad bytes, which keeps the statement's bounds where SQLite would see them).
    not_utf8: Option<usize>,
}

impl Accumulator {
    pub fn is_empty(&self) -> bool {
        self.sql.is_empty()
    }

    /// Bytes pending.
    pub fn len(&self) -> usize {
        self.sql.len()
    }

    pub fn clear(&mut self) {
        self.sql.clear();
        self.types = false;
        self.scanner = Scanner::new();
        self.not_utf8 = None;
    }

    /// Adds line number `number` (1-based), given as read.
    pub fn push_bytes(&mut self, line: &[u8], number: usize) -> Line {
        match std::str::from_utf8(line) {
            Ok(line) => self.push(line, number),
            Err(_) => {
                self.not_utf8.get_or_insert(number);
                let line = String::from_utf8_lossy(line);
                match self.push(&line, number) {
                    // A comment or blank line with odd bytes harms nothing.
                    Line::Nothing if self.sql.is_empty() => {
                        self.not_utf8 = None;
                        Line::Nothing
                    }
                    Line::Meta(_) => Line::NotUtf8(self.not_utf8.take().unwrap_or(number)),
                    other => other,
                }
            }
        }
    }

    /// Adds line number `number` (1-based).
    pub fn push(&mut self, line: &str, number: usize) -> Line {
        let mut line = line;
        if self.sql.is_empty() {
            match types_sql(line) {
                Some(sql) if !is_blank(sql) => {
                    self.types = true;
                    line = sql;
                }
                _ if line.starts_with('.') => return Line::Meta(line.to_owned()),
                _ if is_blank(line) => return Line::Nothing,
                _ => {}
            }
            self.start_line = number;
        }
        if self.sql.len() + line.len() >= MAX_STATEMENT_BYTES {
            let start = self.start_line;
            self.clear();
            return Line::TooLong(start);
        }
        let (len, capacity) = (self.sql.len(), self.sql.capacity());
        if let Some(room) = room_to_bound(len, capacity, line.len() + 1, MAX_STATEMENT_BYTES) {
            self.sql.reserve_exact(room);
        }
        self.sql.push_str(line);
        self.sql.push('\n');
        self.scanner.feed(line.as_bytes());
        self.scanner.feed(b"\n");
        // As the SQLite shell: only a line with a `;` can end the statement.
        if line.contains(';') && self.scanner.is_complete() {
            return self.take();
        }
        Line::Nothing
    }

    /// The pending statement, which is complete or at the end of the input.
    fn take(&mut self) -> Line {
        let sql = std::mem::take(&mut self.sql);
        let types = std::mem::take(&mut self.types);
        self.scanner = Scanner::new();
        if let Some(line) = self.not_utf8.take() {
            Line::NotUtf8(line)
        } else if types {
            Line::Types(sql, self.start_line)
        } else {
            Line::Sql(sql, self.start_line)
        }
    }

    /// At end of input: a pending statement that is not blank, even without its `;`.
    pub fn finish(&mut self) -> Option<Line> {
        if is_blank(&self.sql) {
            self.clear();
            None
        } else {
            Some(self.take())
        }
    }
}

/// Strips the line terminator (`\n` or `\r\n`).
fn chomp(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
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
            // The line may take what the pending statement leaves of the limit.
            let limit = MAX_STATEMENT_BYTES.saturating_sub(pending.len());
            match read_line_bounded(&mut reader, &mut raw, limit) {
                Ok(true) => {}
                Ok(false) => break,
                Err(InputError::Io(e)) => return Err(e),
                Err(e) => {
                    // Neither can be skipped: the rest of the line, or of the input, may
                    // never end.
                    let line = if pending.is_empty() {
                        number + 1
                    } else {
                        pending.start_line
                    };
                    self.error_line(&format!(
                        "Error: near line {line}: {e}; input not read further"
                    ))?;
                    return Ok(1);
                }
            }
            number += 1;
            let line = chomp(&raw);
            // `.echo on` repeats input lines as they are read, as the SQLite shell does.
            if self.echo {
                self.out.write_all(line)?;
                self.out.write_all(b"\n")?;
            }
            let failed = match pending.push_bytes(line, number) {
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
                        self.sql_error_line(&format!("Error: near line {start}: "), &e.message)?;
                        true
                    }
                },
                Line::Types(sql, _) => self.types(&sql)? != MetaOutcome::Ok,
                Line::NotUtf8(line) => {
                    self.error_line(&format!("Error: near line {line}: {}", InputError::NotUtf8))?;
                    true
                }
                Line::TooLong(start) => {
                    self.error_line(&format!(
                        "Error: near line {start}: {}",
                        InputError::TooLong
                    ))?;
                    true
                }
            };
            if failed {
                errors += 1;
                if self.bail {
                    return Ok(1);
                }
            }
        }
        let failed = match pending.finish() {
            Some(Line::Sql(sql, _)) => match self.run_sql(&sql)? {
                Ok(()) => false,
                Err(e) => {
                    self.sql_error_line("Error: ", &e.message)?;
                    true
                }
            },
            Some(Line::Types(sql, _)) => self.types(&sql)? != MetaOutcome::Ok,
            Some(Line::NotUtf8(line)) => {
                self.error_line(&format!("Error: near line {line}: {}", InputError::NotUtf8))?;
                true
            }
            _ => false,
        };
        if failed {
            errors += 1;
        }
        Ok(i32::from(errors > 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank() {
        assert!(is_blank("  -- hi\n /* x */ "));
        assert!(!is_blank(" select"));
    }

    #[test]
    fn statements_that_are_not_utf8_are_errors_of_their_own() {
        let mut a = Accumulator::default();
        assert_eq!(a.push_bytes(b"select 1, -- \xe9t\xe9", 1), Line::Nothing);
        assert_eq!(a.push_bytes(b"'\xff';", 2), Line::NotUtf8(1));
        // The next statement is not affected.
        assert_eq!(
            a.push_bytes(b"select 2;", 3),
            Line::Sql("select 2;\n".into(), 3)
        );
        // A statement's bounds are where SQLite sees them despite the odd bytes.
        assert_eq!(a.push_bytes(b"select '\xff;'", 4), Line::Nothing);
        assert_eq!(a.push_bytes(b";", 5), Line::NotUtf8(4));
        assert_eq!(a.push_bytes(b".read \xff", 6), Line::NotUtf8(6));
        // A comment line alone is harmless.
        assert_eq!(a.push_bytes(b"-- caf\xe9", 7), Line::Nothing);
        assert_eq!(
            a.push_bytes(b"select 3;", 8),
            Line::Sql("select 3;\n".into(), 8)
        );
        assert_eq!(a.push_bytes(b"select '\xff'", 9), Line::Nothing);
        assert_eq!(a.finish(), Some(Line::NotUtf8(9)));
    }

    #[test]
    fn a_statement_past_the_limit_is_dropped() {
        let mut a = Accumulator::default();
        let chunk = "x".repeat(MAX_STATEMENT_BYTES / 4);
        assert_eq!(a.push("select", 1), Line::Nothing);
        for number in 2..5 {
            assert_eq!(a.push(&chunk, number), Line::Nothing);
        }
        assert_eq!(a.push(&chunk, 5), Line::TooLong(1));
        assert!(a.is_empty());
        assert_eq!(a.push("select 1;", 6), Line::Sql("select 1;\n".into(), 6));
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
        assert_eq!(a.finish(), Some(Line::Sql("select 2\n".into(), 6)));
        assert_eq!(a.finish(), None);
    }

    #[test]
    fn types_sql_accumulates() {
        let mut a = Accumulator::default();
        assert_eq!(a.push(".types select 1", 1), Line::Nothing);
        assert_eq!(
            a.push("as a;", 2),
            Line::Types("select 1\nas a;\n".into(), 1)
        );
        assert_eq!(a.push("select 2;", 3), Line::Sql("select 2;\n".into(), 3));
        assert_eq!(a.push(".types", 4), Line::Meta(".types".into()));
        assert_eq!(a.push(".ty select 3", 5), Line::Nothing);
        assert_eq!(a.finish(), Some(Line::Types("select 3\n".into(), 5)));
    }
}
