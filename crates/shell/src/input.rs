//! Reading commands line by line, from a pipe/file or from the terminal.
//!
//! Lines accumulate until the buffer holds a complete SQL statement (SQLite decides);
//! a line starting with `.` while nothing is pending is a dot command; blank and
//! comment-only lines are skipped. `.types SQL` is the exception among dot commands: its
//! SQL accumulates like a statement and is described instead of run.

use crate::meta::types_sql;
use crate::shell::{MetaOutcome, Shell};
pub use oxquery_engine::is_complete;
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
}

/// SQL text collected over several lines.
#[derive(Debug, Default)]
pub struct Accumulator {
    sql: String,
    start_line: usize,
    /// The pending SQL came from `.types`.
    types: bool,
}

impl Accumulator {
    pub fn is_empty(&self) -> bool {
        self.sql.is_empty()
    }

    pub fn clear(&mut self) {
        self.sql.clear();
        self.types = false;
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
        self.sql.push_str(line);
        self.sql.push('\n');
        if line.contains(';') && is_complete(&self.sql) {
            let sql = std::mem::take(&mut self.sql);
            return if std::mem::take(&mut self.types) {
                Line::Types(sql, self.start_line)
            } else {
                Line::Sql(sql, self.start_line)
            };
        }
        Line::Nothing
    }

    /// At end of input: a pending statement that is not blank, even without its `;`.
    pub fn finish(&mut self) -> Option<Line> {
        let sql = std::mem::take(&mut self.sql);
        let types = std::mem::take(&mut self.types);
        if is_blank(&sql) {
            None
        } else if types {
            Some(Line::Types(sql, self.start_line))
        } else {
            Some(Line::Sql(sql, self.start_line))
        }
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
                Line::Types(sql, _) => self.types(&sql)? != MetaOutcome::Ok,
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
                    self.error_line(&format!("Error: {}", e.message))?;
                    true
                }
            },
            Some(Line::Types(sql, _)) => self.types(&sql)? != MetaOutcome::Ok,
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
