//! Dot commands. A command may be abbreviated to any prefix of its name; where prefixes
//! collide the first command in [`COMMANDS`] order whose argument count fits wins, which
//! reproduces osquery's quirks (`.h` alone is `.help`, `.h on` is `.headers on`).

use crate::flags::{FlagType, FlagValue, Key, flag};
use crate::output::{Cell, Expand, Mode};
use crate::remote::Connection;
use crate::shell::{MetaOutcome, Shell, SqlError};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which commands exist, in matching order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    All,
    Bail,
    Connect,
    Disconnect,
    Echo,
    Exit,
    Features,
    Headers,
    Help,
    Mode,
    Nullvalue,
    Print,
    Quit,
    Schema,
    Separator,
    Show,
    Socket,
    Tables,
    Timeout,
    Timer,
    Types,
    Version,
    Width,
    Expand,
}

/// (name, minimum abbreviation length, accepted argument counts excluding the command).
struct Spec {
    name: &'static str,
    min_len: usize,
    args: (usize, usize),
    command: Command,
}

const fn spec(name: &'static str, min_len: usize, args: (usize, usize), command: Command) -> Spec {
    Spec {
        name,
        min_len,
        args,
        command,
    }
}

const MANY: usize = usize::MAX;

const COMMANDS: &[Spec] = &[
    spec("all", 1, (1, 1), Command::All),
    spec("bail", 3, (1, 1), Command::Bail),
    spec("connect", 1, (1, 1), Command::Connect),
    spec("disconnect", 1, (0, 0), Command::Disconnect),
    spec("echo", 1, (1, 1), Command::Echo),
    spec("exit", 1, (0, 1), Command::Exit),
    spec("features", 1, (0, 0), Command::Features),
    spec("headers", 1, (1, 1), Command::Headers),
    spec("help", 1, (0, MANY), Command::Help),
    spec("mode", 1, (1, 1), Command::Mode),
    spec("nullvalue", 1, (1, 1), Command::Nullvalue),
    spec("print", 3, (0, MANY), Command::Print),
    spec("quit", 1, (0, MANY), Command::Quit),
    spec("schema", 1, (0, 1), Command::Schema),
    spec("separator", 1, (1, 1), Command::Separator),
    spec("show", 1, (0, 0), Command::Show),
    spec("socket", 2, (0, 0), Command::Socket),
    spec("summary", 1, (0, 0), Command::Show),
    spec("tables", 1, (0, 1), Command::Tables),
    spec("list", 1, (0, 1), Command::Tables),
    spec("timeout", 5, (1, 1), Command::Timeout),
    spec("timer", 5, (1, 1), Command::Timer),
    spec("types", 2, (1, MANY), Command::Types),
    spec("version", 1, (0, 0), Command::Version),
    spec("width", 1, (1, MANY), Command::Width),
    // oxquery's addition; last so no osquery abbreviation changes meaning.
    spec("expand", 3, (1, 1), Command::Expand),
];

/// If `line` is a `.types` command, the SQL after the command word.
pub fn types_sql(line: &str) -> Option<&str> {
    let body = line.strip_prefix('.')?;
    let (word, rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
    (word.len() >= 2 && "types".starts_with(word)).then_some(rest)
}

/// Names for TAB completion.
pub fn command_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|c| c.name)
}

fn lookup(word: &str, nargs: usize) -> Option<Command> {
    if word.is_empty() {
        return None;
    }
    COMMANDS
        .iter()
        .find(|c| {
            word.len() >= c.min_len
                && c.name.starts_with(word)
                && nargs >= c.args.0
                && nargs <= c.args.1
        })
        .map(|c| c.command)
}

/// Splits a dot-command line (leading `.` included) into words. `'…'` and `"…"` group
/// words; backslash escapes are resolved everywhere except inside single quotes.
pub fn split_args(line: &str) -> Vec<String> {
    let body = line.strip_prefix('.').unwrap_or(line);
    let chars: Vec<char> = body.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let mut word = String::new();
        if chars[i] == '\'' || chars[i] == '"' {
            let quote = chars[i];
            i += 1;
            while i < chars.len() && chars[i] != quote {
                if chars[i] == '\\' && quote == '"' && i + 1 < chars.len() {
                    word.push(chars[i]);
                    i += 1;
                }
                word.push(chars[i]);
                i += 1;
            }
            i += 1; // closing quote
            words.push(if quote == '"' {
                resolve_backslashes(&word)
            } else {
                word
            });
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                word.push(chars[i]);
                i += 1;
            }
            words.push(resolve_backslashes(&word));
        }
    }
    words
}

/// `\n`, `\t`, `\\`, octal `\NNN` and friends, as the SQLite shell resolves them.
fn resolve_backslashes(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '\\' || i >= chars.len() {
            out.push(c);
            continue;
        }
        let e = chars[i];
        i += 1;
        match e {
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'v' => out.push('\x0b'),
            'f' => out.push('\x0c'),
            'r' => out.push('\r'),
            '0'..='7' => {
                let mut value = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.get(i).and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(value).unwrap_or('\u{fffd}'));
            }
            other => out.push(other),
        }
    }
    out
}

/// `ON`/`OFF` arguments: numbers, on/yes/true, off/no/false (anything else is "no").
fn boolean_value(arg: &str) -> bool {
    if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
        return !arg.trim_start_matches('0').is_empty();
    }
    match arg.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" => true,
        "off" | "no" | "false" => false,
        _ => {
            eprintln!("ERROR: Not a boolean value: \"{arg}\". Assuming \"no\".");
            false
        }
    }
}

/// The leading integer of `s`, 0 if none (C's `atoi`).
fn atoi(s: &str) -> i32 {
    let t = s.trim_start();
    let (sign, digits) = match t.strip_prefix('-') {
        Some(rest) => (-1i64, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    let mut value: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        value = (value * 10 + i64::from(b - b'0')).min(i64::from(i32::MAX) + 1);
    }
    (sign * value).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

const HELP: &str = "\
Welcome to the osquery shell. Please explore your OS!
You are connected to a transient 'in-memory' virtual database.

.all [TABLE]     Select all from a table
.bail ON|OFF     Stop after the first error when reading input
.connect PATH    Query another osquery through its extension socket
.disconnect      Go back to querying this process
.echo ON|OFF     Print each statement before running it
.exit [CODE]     Exit this program (a non-zero CODE exits with that status)
.expand MODE     Wide pretty tables: auto (blocks when wider than the terminal),
                   always (blocks) or never (the table)
.features        List osquery's features and their statuses
.headers ON|OFF  Turn display of headers on or off
.help            Show this message
.mode MODE       Set output mode where MODE is one of:
                   csv      Comma-separated values
                   column   Left-aligned columns see .width
                   line     One value per line
                   list     Values delimited by .separator string
                   pretty   Pretty printed SQL results (default)
.nullvalue STR   Use STRING in place of NULL values
.print STR...    Print literal STRING
.quit            Exit this program
.schema [TABLE]  Show the CREATE statements
.separator STR   Change separator used by output mode
.show            Show the current values for various settings
.socket          Show the extensions socket path
.summary         Alias for the show meta command
.tables [TABLE]  List names of tables
.timeout MS      Wait up to MS milliseconds for a locked database
.types SQL       Show the names and types of the columns SQL returns
.version         Show osquery and SQLite versions
.width [NUM1]+   Set column widths for \"column\" mode
";

const TIMER_HELP: &str = ".timer ON|OFF    Turn the CPU timer measurement on or off\n";

/// What `.help` prints: the man page's list of commands is rendered from it.
pub fn help_text() -> String {
    format!("{HELP}{TIMER_HELP}")
}

impl Shell {
    /// Runs one dot-command line (with its leading `.`).
    pub fn meta(&mut self, line: &str) -> io::Result<MetaOutcome> {
        // `.types` takes SQL, which word splitting and escapes would mangle.
        if let Some(sql) = types_sql(line)
            && !sql.trim().is_empty()
        {
            return self.types(sql);
        }
        let args = split_args(line);
        let Some(word) = args.first() else {
            return self.unknown("");
        };
        let Some(command) = lookup(word, args.len() - 1) else {
            return self.unknown(word);
        };
        let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
        match command {
            Command::All => {
                let table = arg(1).to_owned();
                match self.run_sql(&format!("SELECT * FROM {table}"))? {
                    Ok(()) => Ok(MetaOutcome::Ok),
                    Err(_) => {
                        self.error_line(&format!("Error querying table: {table}"))?;
                        Ok(MetaOutcome::Error)
                    }
                }
            }
            Command::Bail => {
                self.bail = boolean_value(arg(1));
                Ok(MetaOutcome::Ok)
            }
            Command::Connect => self.connect(std::path::Path::new(arg(1))),
            Command::Disconnect => self.disconnect(),
            Command::Expand => match Expand::parse(arg(1)) {
                Some(expand) => {
                    self.format.expand = expand;
                    Ok(MetaOutcome::Ok)
                }
                None => {
                    self.error_line("Error: expand should be one of: auto always never")?;
                    Ok(MetaOutcome::Error)
                }
            },
            Command::Socket => {
                let mut text = self
                    .flags
                    .get(flag::extensions_socket)
                    .display()
                    .to_string();
                if let Some(connection) = &self.connected {
                    text.push_str(&format!(" (connected to {})", connection.path().display()));
                }
                text.push('\n');
                self.write(&text)
            }
            Command::Timeout => {
                let ms = u64::try_from(atoi(arg(1))).unwrap_or(0);
                match self.engine.set_busy_timeout(Duration::from_millis(ms)) {
                    Ok(()) => Ok(MetaOutcome::Ok),
                    Err(e) => {
                        self.error_line(&format!("Error: {}", e.message))?;
                        Ok(MetaOutcome::Error)
                    }
                }
            }
            // Only reached with nothing after `.types`.
            Command::Types => self.unknown(word),
            Command::Echo => {
                self.echo = boolean_value(arg(1));
                Ok(MetaOutcome::Ok)
            }
            Command::Exit => Ok(MetaOutcome::Exit(atoi(arg(1)))),
            Command::Quit => Ok(MetaOutcome::Exit(0)),
            Command::Features => {
                let mut text = String::new();
                for (def, value) in self.flags.iter() {
                    // The flags `osquery_flags` lists, which is where osquery reads them.
                    if def.ty == FlagType::Bool
                        && def.in_flags_table()
                        && (def.name.starts_with("disable_") || def.name.starts_with("enable_"))
                    {
                        text.push_str(&format!("{}: {value}\n", def.name));
                    }
                }
                self.write(&text)
            }
            Command::Headers => {
                self.format.headers = boolean_value(arg(1));
                Ok(MetaOutcome::Ok)
            }
            Command::Help => {
                self.out.flush()?;
                eprint!("{}", help_text());
                Ok(MetaOutcome::Ok)
            }
            Command::Mode => match Mode::parse(arg(1)) {
                Some(mode) => {
                    self.format.mode = mode;
                    if mode == Mode::Csv {
                        self.format.separator = ",".to_owned();
                    }
                    Ok(MetaOutcome::Ok)
                }
                None => {
                    self.error_line("Error: mode should be one of: column csv line list pretty")?;
                    Ok(MetaOutcome::Error)
                }
            },
            Command::Nullvalue => {
                self.format.nullvalue = arg(1).to_owned();
                Ok(MetaOutcome::Ok)
            }
            Command::Print => {
                let text = format!("{}\n", args[1..].join(" "));
                self.write(&text)
            }
            Command::Schema | Command::Tables => {
                let prefix = arg(1);
                let mut text = String::new();
                for def in self.engine.tables() {
                    if !def.spec().name.starts_with(prefix) {
                        continue;
                    }
                    if command == Command::Tables {
                        text.push_str(&format!("  => {}\n", def.spec().name));
                    } else {
                        text.push_str(&format!("{};\n", def.spec().create_statement()));
                    }
                }
                self.write(&text)
            }
            Command::Separator => {
                self.format.separator = arg(1).to_owned();
                Ok(MetaOutcome::Ok)
            }
            Command::Show => {
                let text = self.show_text();
                self.write(&text)
            }
            Command::Timer => {
                self.timer = boolean_value(arg(1));
                Ok(MetaOutcome::Ok)
            }
            Command::Version => {
                let text = version_text();
                self.write(&text)
            }
            Command::Width => {
                self.format.widths = args[1..].iter().map(|a| atoi(a)).collect();
                Ok(MetaOutcome::Ok)
            }
        }
    }

    fn write(&mut self, text: &str) -> io::Result<MetaOutcome> {
        self.out.write_all(text.as_bytes())?;
        self.out.flush()?;
        Ok(MetaOutcome::Ok)
    }

    fn unknown(&mut self, word: &str) -> io::Result<MetaOutcome> {
        self.error_line(&format!(
            "Error: unknown command or invalid arguments:  \"{word}\". Enter \".help\" for help"
        ))?;
        Ok(MetaOutcome::Error)
    }

    fn show_text(&self) -> String {
        let on_off = |b: bool| if b { "on" } else { "off" };
        let quoted = |s: &str| format!("\"{}\"", s.escape_default());
        let value = |key: Key<String>| self.flags.get(key).to_owned();
        let path = |key: Key<PathBuf>| self.flags.get(key).display().to_string();
        let f = &self.format;
        let widths: Vec<String> = f.widths.iter().map(i32::to_string).collect();
        let mut text = version_text();
        text.push_str("\nGeneral settings:\n");
        let config = match self.flags.get(flag::config_plugin) {
            "filesystem" => format!("filesystem ({})", path(flag::config_path)),
            "tls" => format!(
                "tls (https://{}{})",
                value(flag::tls_hostname),
                value(flag::config_tls_endpoint)
            ),
            other => other.to_owned(),
        };
        let logger = match self.flags.get(flag::logger_plugin) {
            "filesystem" => format!("filesystem ({})", path(flag::logger_path)),
            "tls" => format!(
                "tls (https://{}{})",
                value(flag::tls_hostname),
                value(flag::logger_tls_endpoint)
            ),
            other => other.to_owned(),
        };
        let database = if self.flags.get(flag::disable_database) {
            "ephemeral".to_owned()
        } else {
            format!("rocksdb ({})", path(flag::database_path))
        };
        for (name, value) in [
            ("Flagfile", path(flag::flagfile)),
            ("Config", config),
            ("Logger", logger),
            ("Distributed", value(flag::distributed_plugin)),
            ("Database", database),
            // No extension can be loaded yet: only the core is there.
            ("Extensions", "core".to_owned()),
            ("Socket", path(flag::extensions_socket)),
        ] {
            text.push_str(&format!("{name:>13}: {value}\n"));
        }
        text.push_str("\nShell settings:\n");
        let printer = match (f.mode, f.json_pretty, f.json, f.json_typed) {
            (Mode::Pretty, true, _, _) => "json_pretty",
            (Mode::Pretty, false, true, _) | (Mode::Pretty, false, false, true) => "json",
            (mode, _, _, _) => mode.name(),
        };
        let output = self
            .output_path
            .as_ref()
            .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
        for (name, value) in [
            ("echo", on_off(self.echo).to_owned()),
            ("headers", on_off(f.headers).to_owned()),
            ("mode", printer.to_owned()),
            ("nullvalue", quoted(&f.nullvalue)),
            ("output", output),
            ("separator", quoted(&f.separator)),
            ("timer", on_off(self.timer).to_owned()),
            ("width", widths.join(" ")),
            ("expand", f.expand.name().to_owned()),
        ] {
            text.push_str(&format!("{name:>13}: {value}\n"));
        }
        text.push_str("\nNon-default flags/options:\n");
        for (def, value) in self.flags.non_default() {
            let shown = match value {
                FlagValue::Str(s) => quoted(s),
                FlagValue::Path(p) => quoted(&p.to_string_lossy()),
                other => other.to_string(),
            };
            text.push_str(&format!("  {}: {shown}\n", def.name));
        }
        text
    }

    /// `--connect PATH`/`.connect PATH`: from now on statements (and `.all`, `.types`)
    /// run in the process serving the extension manager socket at `path`. Nothing is
    /// sent yet: each statement connects, as in osquery, so a missing socket is the
    /// first statement's error.
    pub fn connect(&mut self, path: &Path) -> io::Result<MetaOutcome> {
        if self.connected.is_some() {
            self.error_line("Error: Please disconnect from the current socket")?;
            return Ok(MetaOutcome::Error);
        }
        let timeout = Duration::from_secs(u64::from(self.flags.get(flag::thrift_timeout)));
        self.connected = Some(Connection::new(path, timeout));
        let path = path.display().to_string();
        self.notice(&["Connected to extension socket ", &path, " for debugging\n"])
    }

    /// `.disconnect`: statements run in this process again.
    fn disconnect(&mut self) -> io::Result<MetaOutcome> {
        let Some(connection) = self.connected.take() else {
            self.error_line("Error: Not connected to a socket")?;
            return Ok(MetaOutcome::Error);
        };
        let path = connection.path().display().to_string();
        self.notice(&["Disconnected from extension socket ", &path, "\n"])
    }

    /// A connection notice, as osquery writes it: on stdout (not the `--output` file),
    /// each piece in bold when stdin is a terminal. It comes before the results of a
    /// one-shot `--connect` query, as in osquery.
    fn notice(&mut self, pieces: &[&str]) -> io::Result<MetaOutcome> {
        self.out.flush()?;
        let bold = io::stdin().is_terminal();
        let mut stdout = io::stdout().lock();
        for piece in pieces {
            if bold {
                write!(stdout, "\x1b[1m{piece}\x1b[0m")?;
            } else {
                stdout.write_all(piece.as_bytes())?;
            }
        }
        stdout.flush()?;
        Ok(MetaOutcome::Ok)
    }

    /// `.types SQL`: the name and type of every column the first statement of `sql`
    /// returns, without running it (connected: as the other process's `getQueryColumns`
    /// says).
    pub(crate) fn types(&mut self, sql: &str) -> io::Result<MetaOutcome> {
        let columns = match &self.connected {
            Some(connection) => connection.column_types(sql),
            None => self.engine.column_types(sql).map_err(|failure| SqlError {
                code: failure.code,
                message: failure.message,
            }),
        };
        let columns = match columns {
            Ok(columns) => columns,
            Err(SqlError { message, .. }) => {
                self.error_line(&format!("Error: {message}"))?;
                return Ok(MetaOutcome::Error);
            }
        };
        let rows: Vec<Vec<Cell>> = columns
            .into_iter()
            .map(|(name, ty)| vec![Cell::text(name), Cell::text(ty)])
            .collect();
        self.print_table(&["name".to_owned(), "type".to_owned()], &rows)?;
        Ok(MetaOutcome::Ok)
    }
}

/// `.version`'s two lines.
pub fn version_text() -> String {
    format!(
        "osquery {}\nusing SQLite {}\n",
        oxquery_engine::instance::VERSION,
        oxquery_engine::sqlite_version()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviations_follow_the_table_order() {
        assert_eq!(lookup("h", 0), Some(Command::Help));
        assert_eq!(lookup("h", 1), Some(Command::Headers));
        assert_eq!(lookup("header", 1), Some(Command::Headers));
        assert_eq!(lookup("s", 0), Some(Command::Schema));
        assert_eq!(lookup("se", 1), Some(Command::Separator));
        assert_eq!(lookup("sh", 0), Some(Command::Show));
        assert_eq!(lookup("ti", 1), None);
        assert_eq!(lookup("timer", 1), Some(Command::Timer));
        assert_eq!(lookup("pr", 1), None);
        assert_eq!(lookup("pri", 1), Some(Command::Print));
        assert_eq!(lookup("mode", 0), None);
        assert_eq!(lookup("l", 0), Some(Command::Tables));
        assert_eq!(lookup("", 0), None);
        assert_eq!(lookup("tablesx", 0), None);
        assert_eq!(lookup("timeo", 1), Some(Command::Timeout));
        assert_eq!(lookup("time", 1), None);
        assert_eq!(lookup("ty", 1), Some(Command::Types));
        assert_eq!(lookup("so", 0), Some(Command::Socket));
        assert_eq!(lookup("c", 1), Some(Command::Connect));
        assert_eq!(lookup("d", 0), Some(Command::Disconnect));
        assert_eq!(lookup("e", 1), Some(Command::Echo));
        assert_eq!(lookup("ex", 1), Some(Command::Exit));
        assert_eq!(lookup("exp", 1), Some(Command::Expand));
    }

    #[test]
    fn types_takes_the_raw_sql() {
        assert_eq!(
            types_sql(".types select 'a b' as x;"),
            Some("select 'a b' as x;")
        );
        assert_eq!(types_sql(".ty select 1"), Some("select 1"));
        assert_eq!(types_sql(".types"), Some(""));
        assert_eq!(types_sql(".t select 1"), None);
        assert_eq!(types_sql(".tables"), None);
    }

    #[test]
    fn argument_splitting() {
        assert_eq!(split_args(".mode csv"), vec!["mode", "csv"]);
        assert_eq!(
            split_args(".separator \"\\t\" 'a\\tb'  x\\n"),
            vec!["separator", "\t", "a\\tb", "x\n"]
        );
        assert_eq!(split_args(".print \"\\101\""), vec!["print", "A"]);
        assert_eq!(split_args("."), Vec::<String>::new());
    }

    #[test]
    fn booleans_and_atoi() {
        assert!(boolean_value("ON"));
        assert!(boolean_value("1"));
        assert!(!boolean_value("00"));
        assert!(!boolean_value("off"));
        assert_eq!(atoi("3"), 3);
        assert_eq!(atoi("-2x"), -2);
        assert_eq!(atoi("x"), 0);
    }
}
