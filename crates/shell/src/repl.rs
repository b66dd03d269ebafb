//! The interactive shell: line editing ([`crate::editor`]), history in
//! `~/.osquery/.history`, TAB completion of table names and dot commands.

use crate::editor::{self, History, Input};
use crate::input::{Accumulator, Line};
use crate::meta;
use crate::shell::{MetaOutcome, Shell};
use crate::statements::InputError;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

const PROMPT: &str = "osquery> ";
const CONTINUATION: &str = "    ...> ";
const CONNECTED_MARK: &str = "[*]";
/// osquery keeps this many history entries.
const HISTORY_SIZE: usize = 100;

/// The word before `pos` and what may replace it: dot commands at the start of a line,
/// table names elsewhere.
fn complete(tables: &[String], line: &str, pos: usize) -> (usize, Vec<String>) {
    let head = &line[..pos];
    let start = head
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |i| {
            i + head[i..].chars().next().map_or(1, char::len_utf8)
        });
    let word = &head[start..];
    let candidates: Vec<String> = if start == 0 && word.starts_with('.') {
        meta::command_names()
            .map(|n| format!(".{n}"))
            .filter(|n| n.starts_with(word))
            .collect()
    } else {
        tables
            .iter()
            .filter(|t| t.starts_with(word))
            .cloned()
            .collect()
    };
    (start, candidates)
}

/// `~/.osquery`, created if missing; `None` without a home directory.
fn shell_home() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    let dir = PathBuf::from(home).join(".osquery");
    // Private: the history holds whatever the user typed.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .ok()?;
    Some(dir)
}

/// The prompt, coloured as osquery does on 256-colour xterms, with osquery's `[*]` in
/// front while connected to another process's socket; and the columns it takes.
fn styled(prompt: &'static str, connected: bool) -> (String, usize) {
    let colour = std::env::var("TERM").is_ok_and(|t| t.contains("xterm-256color"));
    let mut shown = if colour {
        format!("\x1b[38;5;147m{prompt}\x1b[0m")
    } else {
        prompt.to_owned()
    };
    let mut width = prompt.len();
    if connected {
        shown.insert_str(0, CONNECTED_MARK);
        width += CONNECTED_MARK.len();
    }
    (shown, width)
}

impl Shell {
    /// Reads commands from the terminal until EOF, `.exit` or `.quit`.
    pub fn repl(&mut self) -> io::Result<i32> {
        // Table names are read at each TAB, so tables registered while the shell runs
        // complete too.
        let host = self.engine().host();
        let complete = |line: &str, pos: usize| {
            let tables: Vec<String> = host
                .tables
                .names()
                .into_iter()
                .filter(|n| host.filter.allows(n))
                .collect();
            complete(&tables, line, pos)
        };
        let mut history = History::new(HISTORY_SIZE);
        let history_path = shell_home().map(|dir| dir.join(".history"));
        if let Some(path) = &history_path {
            // A missing history file is normal on first use.
            let _ = history.load(path);
        }
        println!("Using a \x1b[1mvirtual database\x1b[0m. Need help, type '.help'");
        for note in std::mem::take(&mut self.start_notes) {
            eprintln!("{note}");
        }
        let mut pending = Accumulator::default();
        let mut number = 0;
        let code = loop {
            let prompt = if pending.is_empty() {
                PROMPT
            } else {
                CONTINUATION
            };
            let (shown, width) = styled(prompt, self.connected.is_some());
            let line = match editor::read_line(&shown, width, &history, &complete)? {
                Input::Line(line) => line,
                // Ctrl-C abandons the statement being typed, as in sqlite3.
                Input::Interrupted => {
                    pending.clear();
                    continue;
                }
                Input::Eof => break 0,
            };
            number += 1;
            if !line.trim().is_empty() {
                history.add(&line);
                if let Some(path) = &history_path {
                    // Saved every line so a killed shell keeps its history.
                    if let Err(e) = history.save(path) {
                        log::warn!("Cannot save history to {}: {e}", path.display());
                    }
                }
            }
            match pending.push(&line, number) {
                Line::Nothing => {}
                Line::Meta(command) => match self.meta(&command)? {
                    MetaOutcome::Ok | MetaOutcome::Error => {}
                    MetaOutcome::Exit(code) => break code,
                },
                Line::Sql(sql, _) => {
                    if let Err(e) = self.run_sql(&sql)? {
                        self.sql_error_line("Error: ", &e.message)?;
                    }
                }
                Line::Types(sql, _) => {
                    self.types(&sql)?;
                }
                Line::NotUtf8(_) => {
                    self.error_line(&format!("Error: {}", InputError::NotUtf8))?;
                }
                Line::TooLong(_) => {
                    self.error_line(&format!("Error: {}", InputError::TooLong))?;
                }
            }
        };
        Ok(code)
    }
}
