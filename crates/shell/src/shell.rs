//! The shell's state and statement execution, shared by every input source
//! (positional SQL, `--query`, stdin, the REPL).

use crate::flags::{Flags, flag};
use crate::output::{self, Cell, Expand, Format, Printed, Table};
use crate::progress::Indicator;
use crate::remote::Connection;
use crate::statements::{self, InputError, StatementReader};
use crate::suggest;
use oxquery_engine::Engine;
use oxquery_engine::SqlFailure;
use oxquery_table::Value;
use std::io::{self, BufWriter, IsTerminal, Read, Write};
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

/// Where results go: stdout, or the `--output` file.
pub enum Output {
    Stdout,
    File(std::path::PathBuf, std::fs::File),
}

pub struct Shell {
    pub(crate) engine: Engine,
    pub(crate) flags: Flags,
    pub format: Format,
    pub(crate) out: BufWriter<Box<dyn Write>>,
    /// `--output`'s path, for `.show`; `None` for stdout.
    pub(crate) output_path: Option<std::path::PathBuf>,
    /// Results go to a terminal, so pretty mode may fit them to its width.
    pub(crate) to_terminal: bool,
    /// The "printed as blocks" note is said once per session.
    pub(crate) expand_noted: bool,
    pub(crate) echo: bool,
    pub(crate) bail: bool,
    pub(crate) timer: bool,
    /// Set by `--connect`/`.connect`: statements run in that process instead of `engine`.
    pub(crate) connected: Option<Connection>,
    /// A person reads stderr: long statements show a progress line there, and errors
    /// about an unknown table suggest the nearest name.
    pub(crate) stderr_terminal: bool,
    /// Lines said once after the banner when the interactive shell starts (a config
    /// that could not be read).
    pub(crate) start_notes: Vec<String>,
}

impl Shell {
    pub fn new(engine: Engine, flags: Flags) -> Shell {
        Shell::with_output(engine, flags, Output::Stdout)
    }

    pub fn with_output(engine: Engine, flags: Flags, output: Output) -> Shell {
        let format = format_from_flags(&flags);
        let (out, output_path, to_terminal): (Box<dyn Write>, _, _) = match output {
            Output::Stdout => (Box::new(io::stdout()), None, io::stdout().is_terminal()),
            Output::File(path, file) => (Box::new(file), Some(path), false),
        };
        Shell {
            engine,
            flags,
            format,
            out: BufWriter::new(out),
            output_path,
            to_terminal,
            expand_noted: false,
            echo: false,
            bail: false,
            timer: false,
            connected: None,
            stderr_terminal: io::stderr().is_terminal(),
            start_notes: Vec::new(),
        }
    }

    /// Says `note` on stderr after the banner, if the interactive shell starts.
    pub fn note_on_start(&mut self, note: String) {
        self.start_notes.push(note);
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

    /// Writes `prefix` and a failed statement's message to stderr. When a person reads
    /// stderr and the message is SQLite's `no such table: NAME`, the registered table
    /// nearest to NAME is suggested after it: `Error: no such table: proccesses (did
    /// you mean processes?)`. Scripts that capture stderr get osquery's text unchanged,
    /// so a script matching osquery's whole error line keeps working.
    pub fn sql_error_line(&mut self, prefix: &str, message: &str) -> io::Result<()> {
        let hint = suggest::missing_table(message)
            .and_then(|table| self.table_hint(table))
            .unwrap_or_default();
        self.error_line(&format!("{prefix}{message}{hint}"))
    }

    /// ` (did you mean NAME?)` for a table name that does not exist, when stderr is a
    /// terminal and a registered name is close (this process's tables: none while
    /// connected to another).
    pub(crate) fn table_hint(&self, typed: &str) -> Option<String> {
        if !self.stderr_terminal || self.connected.is_some() {
            return None;
        }
        let names = self.table_names();
        let near = suggest::nearest(typed, names.iter().map(String::as_str))?;
        Some(format!(" (did you mean {near}?)"))
    }

    /// The tables a statement can name (their aliases too), sorted.
    pub(crate) fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .engine
            .tables()
            .iter()
            .flat_map(|t| {
                let spec = t.spec();
                std::iter::once(spec.name.to_string())
                    .chain(spec.aliases.iter().map(|a| a.to_string()))
            })
            .collect();
        names.sort();
        names.dedup();
        names
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
                self.sql_error_line("Error: ", &e.message)?;
                Ok(e.code)
            }
        }
    }

    /// [`Shell::run_query`] for SQL read from `source` (`--query_file`), one statement at
    /// a time: memory holds one statement, and a NUL byte, a statement that is not UTF-8
    /// or one longer than the limit stops it with an error. `what` names the source in
    /// messages.
    pub fn run_query_stream(&mut self, source: impl Read, what: &str) -> io::Result<i32> {
        let mut reader = StatementReader::new(source);
        loop {
            let failure = match reader.next_statement() {
                Ok(Some(sql)) => match self.run_sql(&sql)? {
                    Ok(()) => continue,
                    Err(e) => {
                        self.sql_error_line("Error: ", &e.message)?;
                        return Ok(e.code);
                    }
                },
                Ok(None) => return Ok(0),
                Err(InputError::Io(e)) => format!("cannot read {what}: {e}"),
                Err(e) => format!("{what}: {e}"),
            };
            self.error_line(&format!("Error: {failure}"))?;
            return Ok(1);
        }
    }

    /// Runs the statements of `sql`, handing SQLite one at a time: given the whole
    /// text, `sqlite3_prepare` copies all that remains for each statement.
    fn execute(&mut self, sql: &str) -> io::Result<Result<(), SqlError>> {
        for statement in statements::split(sql) {
            if let Err(e) = self.execute_one(statement)? {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    fn execute_one(&mut self, sql: &str) -> io::Result<Result<(), SqlError>> {
        if let Some(connection) = &self.connected {
            if crate::input::is_blank(sql) {
                return Ok(Ok(()));
            }
            return match connection.query(sql) {
                Ok(answer) => {
                    self.print_table(&answer.columns, &answer.rows)?;
                    Ok(Ok(()))
                }
                Err(e) => Ok(Err(e)),
            };
        }
        let Shell {
            engine,
            out,
            format,
            to_terminal,
            expand_noted,
            stderr_terminal,
            ..
        } = self;
        let mut progress = stderr_terminal.then(|| Indicator::start(engine.rows_read()));
        let done = engine.run_batch(sql, |result| {
            // Erased before the result is printed.
            if let Some(progress) = &mut progress {
                progress.finish();
            }
            let rows: Vec<Vec<Cell>> = result
                .rows
                .into_iter()
                .map(|row| row.into_iter().map(cell).collect())
                .collect();
            print_result(
                out,
                format,
                *to_terminal,
                expand_noted,
                &Table {
                    columns: &result.columns,
                    rows: &rows,
                },
            )
        })?;
        drop(progress);
        Ok(done.map_err(sql_error))
    }

    /// Prints one result in the current format, fitted to the terminal when there is one.
    pub(crate) fn print_table(&mut self, columns: &[String], rows: &[Vec<Cell>]) -> io::Result<()> {
        print_result(
            &mut self.out,
            &mut self.format,
            self.to_terminal,
            &mut self.expand_noted,
            &Table { columns, rows },
        )
    }

    /// Runs the statements of `sql` `times` times, stepping through every row and printing
    /// nothing (`--profile`).
    pub fn profile(&mut self, sql: &str, times: i32) -> io::Result<i32> {
        for _ in 0..times {
            for statement in statements::split(sql) {
                if let Some(connection) = &self.connected {
                    if crate::input::is_blank(statement) {
                        continue;
                    }
                    if let Err(failure) = connection.query(statement) {
                        self.error_line(&format!("Error: {}", failure.message))?;
                        return Ok(failure.code);
                    }
                    continue;
                }
                let done: Result<_, io::Error> = self.engine.run_batch(statement, |_| Ok(()));
                if let Err(failure) = done? {
                    self.error_line(&format!("Error: {}", failure.message))?;
                    return Ok(failure.code);
                }
            }
        }
        Ok(0)
    }
}

/// [`Shell::print_table`] on the fields it needs, so it can run while a statement
/// borrows the engine.
fn print_result(
    out: &mut BufWriter<Box<dyn Write>>,
    format: &mut Format,
    to_terminal: bool,
    expand_noted: &mut bool,
    table: &Table<'_>,
) -> io::Result<()> {
    // Asked per result: the terminal may have been resized since the last one.
    format.to_terminal = to_terminal;
    format.terminal_width = if to_terminal {
        terminal_size::terminal_size_of(io::stdout()).map(|(w, _)| usize::from(w.0))
    } else {
        None
    };
    let printed = output::print(out, format, table)?;
    out.flush()?;
    if printed == Printed::Expanded && !*expand_noted {
        *expand_noted = true;
        // Itself narrower than the 80 columns it is about.
        eprintln!("Note: too wide, shown as blocks (force a mode: --pretty_expand=never|always)");
    }
    Ok(())
}

/// A value as SQLite's `sqlite3_column_text` renders it, remembering numbers.
pub fn cell(value: Value) -> Cell {
    match value {
        Value::Null => Cell::null(),
        Value::Integer(i) => Cell::number(i.to_string()),
        Value::Real(f) => Cell::number(oxquery_engine::format_real(f)),
        Value::Text(s) => Cell::text(s),
        Value::Blob(b) => Cell::text(b),
    }
}

fn sql_error(failure: SqlFailure) -> SqlError {
    SqlError {
        code: failure.code,
        message: failure.message,
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
/// list wins over line over csv over pretty; `--json`/`--json_pretty`/`--json_typed`
/// keep pretty mode and change its printer.
pub fn format_from_flags(flags: &Flags) -> Format {
    use output::Mode;
    let mode = if flags.get(flag::list) {
        Mode::List
    } else if flags.get(flag::line) {
        Mode::Line
    } else if flags.get(flag::csv) {
        Mode::Csv
    } else {
        Mode::Pretty
    };
    let separator = if mode == Mode::Csv && !flags.is_set(flag::separator) {
        ",".to_owned()
    } else {
        flags.get(flag::separator).to_owned()
    };
    Format {
        mode,
        json: flags.get(flag::json),
        json_pretty: flags.get(flag::json_pretty),
        json_typed: flags.get(flag::json_typed),
        // The flag's value was validated against the same words.
        expand: Expand::parse(flags.get(flag::pretty_expand)).unwrap_or(Expand::Auto),
        to_terminal: false,
        terminal_width: None,
        headers: flags.get(flag::header),
        separator,
        nullvalue: flags.get(flag::nullvalue).to_owned(),
        widths: Vec::new(),
    }
}
