//! Dot commands. A command may be abbreviated to any prefix of its name; where prefixes
//! collide the first command in [`COMMANDS`] order whose argument count fits wins, which
//! reproduces osquery's quirks (`.h` alone is `.help`, `.h on` is `.headers on`).

use crate::flags::{FlagType, FlagValue};
use crate::output::Mode;
use crate::shell::{MetaOutcome, Shell};
use std::io::{self, Write};

/// Which commands exist, in matching order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    All,
    Bail,
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
    Tables,
    Timer,
    Version,
    Width,
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
    spec("summary", 1, (0, 0), Command::Show),
    spec("tables", 1, (0, 1), Command::Tables),
    spec("list", 1, (0, 1), Command::Tables),
    spec("timer", 5, (1, 1), Command::Timer),
    spec("version", 1, (0, 0), Command::Version),
    spec("width", 1, (1, MANY), Command::Width),
];

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
.echo ON|OFF     Print each statement before running it
.exit [CODE]     Exit this program (a non-zero CODE exits with that status)
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
.summary         Alias for the show meta command
.tables [TABLE]  List names of tables
.version         Show osquery and SQLite versions
.width [NUM1]+   Set column widths for \"column\" mode
";

const TIMER_HELP: &str = ".timer ON|OFF    Turn the CPU timer measurement on or off\n";

impl Shell {
    /// Runs one dot-command line (with its leading `.`).
    pub fn meta(&mut self, line: &str) -> io::Result<MetaOutcome> {
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
            Command::Echo => {
                self.echo = boolean_value(arg(1));
                Ok(MetaOutcome::Ok)
            }
            Command::Exit => Ok(MetaOutcome::Exit(atoi(arg(1)))),
            Command::Quit => Ok(MetaOutcome::Exit(0)),
            Command::Features => {
                let mut text = String::new();
                for (def, value) in self.flags.iter() {
                    if def.ty == FlagType::Bool
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
                eprint!("{HELP}{TIMER_HELP}");
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
                    if !def.spec.name.starts_with(prefix) {
                        continue;
                    }
                    if command == Command::Tables {
                        text.push_str(&format!("  => {}\n", def.spec.name));
                    } else {
                        text.push_str(&format!("{};\n", def.spec.create_statement()));
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
        let f = &self.format;
        let widths: Vec<String> = f.widths.iter().map(i32::to_string).collect();
        let mut text = version_text();
        text.push_str("\nGeneral settings:\n");
        text.push_str(&format!(
            "{:>13}: {}\n",
            "Flagfile",
            self.flags.string("flagfile")
        ));
        text.push_str("\nShell settings:\n");
        let printer = match (f.mode, f.json_pretty, f.json) {
            (Mode::Pretty, true, _) => "json_pretty",
            (Mode::Pretty, false, true) => "json",
            (mode, _, _) => mode.name(),
        };
        for (name, value) in [
            ("echo", on_off(self.echo).to_owned()),
            ("headers", on_off(f.headers).to_owned()),
            ("mode", printer.to_owned()),
            ("nullvalue", quoted(&f.nullvalue)),
            ("output", "stdout".to_owned()),
            ("separator", quoted(&f.separator)),
            ("timer", on_off(self.timer).to_owned()),
            ("width", widths.join(" ")),
        ] {
            text.push_str(&format!("{name:>13}: {value}\n"));
        }
        text.push_str("\nNon-default flags/options:\n");
        for (def, value) in self.flags.non_default() {
            let shown = match value {
                FlagValue::Str(s) => quoted(s),
                other => other.to_string(),
            };
            text.push_str(&format!("  {}: {shown}\n", def.name));
        }
        text
    }
}

/// `.version`'s two lines.
pub fn version_text() -> String {
    format!(
        "osquery {}\nusing SQLite {}\n",
        oxquery_engine::instance::VERSION,
        oxquery_engine::rusqlite::version()
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
