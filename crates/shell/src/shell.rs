//! The shell's state and statement execution, shared by every input source
//! (positional SQL, `--query`, stdin, the REPL).

use crate::flags::Flags;
use crate::output::{self, Format, Table};
use oxquery_engine::Engine;
use oxquery_engine::rusqlite;
use oxquery_engine::rusqlite::fallible_iterator::FallibleIterator as _;
use oxquery_table::Value;
use std::io::{self, BufWriter, Stdout, Write};
use std::time::Instant;

/// A failed statement: SQLite's primary result code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlError {
    pub code: i32,
    pub message: String,
}

/// What a dot command asks the caller to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaOutcome {
    Ok,
    /// The command failed (it has already said why on stderr).
    Error,
    /// `.exit`/`.quit`: stop reading input; a non-zero code exits with it at once.
    Exit(i32),
}

pub struct Shell {
    pub(crate) engine: Engine,
    pub(crate) flags: Flags,
    pub format: Format,
    pub(crate) out: BufWriter<Stdout>,
    pub(crate) echo: bool,
    pub(crate) bail: bool,
    pub(crate) timer: bool,
}

impl Shell {
    pub fn new(engine: Engine, flags: Flags) -> Shell {
        let format = format_from_flags(&flags);
        Shell {
            engine,
            flags,
            format,
            out: BufWriter::new(io::stdout()),
            echo: false,
            bail: false,
            timer: false,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Writes a line to stderr after flushing stdout, so the two streams stay in order.
    pub fn error_line(&mut self, message: &str) -> io::Result<()> {
        self.out.flush()?;
        eprintln!("{message}");
        Ok(())
    }

    /// Runs every statement in `sql`, printing each result; honours `.timer`.
    /// The outer error is a failure to write stdout (e.g. a closed pipe).
    pub fn run_sql(&mut self, sql: &str) -> io::Result<Result<(), SqlError>> {
        let started = self.timer.then(|| (Instant::now(), cpu_times()));
        let result = self.execute(sql)?;
        if let Some((wall, (user0, sys0))) = started {
            let (user1, sys1) = cpu_times();
            writeln!(
                self.out,
                "Run Time: real {:.3} user {:.6} sys {:.6}",
                wall.elapsed().as_secs_f64(),
                user1 - user0,
                sys1 - sys0
            )?;
        }
        self.out.flush()?;
        Ok(result)
    }

    /// `run_sql` for positional/`--query` SQL: prints the error and returns the exit code.
    pub fn run_query(&mut self, sql: &str) -> io::Result<i32> {
        match self.run_sql(sql)? {
            Ok(()) => Ok(0),
            Err(e) => {
                self.error_line(&format!("Error: {}", e.message))?;
                Ok(e.code)
            }
        }
    }

    fn execute(&mut self, sql: &str) -> io::Result<Result<(), SqlError>> {
        let conn = self.engine.connection();
        let mut batch = rusqlite::Batch::new(conn, sql);
        loop {
            let mut stmt = match batch.next() {
                Ok(Some(stmt)) => stmt,
                Ok(None) => return Ok(Ok(())),
                Err(e) => return Ok(Err(sql_error(e, sql))),
            };
            let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
            let rows = match collect_rows(&mut stmt, columns.len()) {
                Ok(rows) => rows,
                Err(e) => return Ok(Err(sql_error(e, sql))),
            };
            output::print(
                &mut self.out,
                &self.format,
                &Table {
                    columns: &columns,
                    rows: &rows,
                },
            )?;
            self.out.flush()?;
        }
    }
}

fn collect_rows(
    stmt: &mut rusqlite::Statement<'_>,
    width: usize,
) -> rusqlite::Result<Vec<Vec<Option<String>>>> {
    let mut rows = Vec::new();
    let mut cursor = stmt.query([])?;
    while let Some(row) = cursor.next()? {
        let mut cells = Vec::with_capacity(width);
        for i in 0..width {
            cells.push(cell_text(oxquery_engine::value_from_ref(row.get_ref(i)?)));
        }
        rows.push(cells);
    }
    Ok(rows)
}

/// A value as SQLite's `sqlite3_column_text` renders it; `None` for NULL.
pub fn cell_text(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(f) => Some(oxquery_engine::format_real(f)),
        Value::Text(s) => Some(s),
        Value::Blob(b) => Some(String::from_utf8_lossy(&b).into_owned()),
    }
}

fn sql_error(e: rusqlite::Error, sql: &str) -> SqlError {
    match e {
        rusqlite::Error::SqliteFailure(err, message) => SqlError {
            // Extended codes are on in rusqlite; osquery reports the primary code.
            code: err.extended_code & 0xff,
            message: message.unwrap_or_else(|| format!("unable to process SQL \"{sql}\"")),
        },
        rusqlite::Error::SqlInputError { error, msg, .. } => SqlError {
            code: error.extended_code & 0xff,
            message: msg,
        },
        other => SqlError {
            code: 1,
            message: other.to_string(),
        },
    }
}

/// User and system CPU seconds of this process.
fn cpu_times() -> (f64, f64) {
    // SAFETY: a zeroed rusage is valid, and getrusage only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (0.0, 0.0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(usage.ru_utime), secs(usage.ru_stime))
}

/// The initial output format from the shell flags. When several modes are given,
/// list wins over line over csv over pretty; `--json`/`--json_pretty` keep pretty mode
/// and change its printer.
pub fn format_from_flags(flags: &Flags) -> Format {
    use output::Mode;
    let mode = if flags.bool("list") {
        Mode::List
    } else if flags.bool("line") {
        Mode::Line
    } else if flags.bool("csv") {
        Mode::Csv
    } else {
        Mode::Pretty
    };
    let separator = if mode == Mode::Csv && !flags.is_set("separator") {
        ",".to_owned()
    } else {
        flags.string("separator").to_owned()
    };
    Format {
        mode,
        json: flags.bool("json"),
        json_pretty: flags.bool("json_pretty"),
        headers: flags.bool("header"),
        separator,
        nullvalue: flags.string("nullvalue").to_owned(),
        widths: Vec::new(),
    }
}
