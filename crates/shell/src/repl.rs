//! The interactive shell: line editing, history in `~/.osquery/.history`, TAB completion of
//! table names and dot commands.

use crate::input::{Accumulator, Line};
use crate::meta;
use crate::shell::{MetaOutcome, Shell};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Context, Editor, Helper, Highlighter, Hinter, Validator};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

const PROMPT: &str = "osquery> ";
const CONTINUATION: &str = "    ...> ";
/// osquery keeps this many history entries.
const HISTORY_SIZE: usize = 100;

#[derive(Helper, Hinter, Highlighter, Validator)]
struct ShellHelper {
    tables: Vec<String>,
}

impl Completer for ShellHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
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
            self.tables
                .iter()
                .filter(|t| t.starts_with(word))
                .cloned()
                .collect()
        };
        Ok((start, candidates))
    }
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

/// The prompt, coloured as osquery does on 256-colour xterms.
fn styled(prompt: &'static str) -> (&'static str, String) {
    let colour = std::env::var("TERM").is_ok_and(|t| t.contains("xterm-256color"));
    let shown = if colour {
        format!("\x1b[38;5;147m{prompt}\x1b[0m")
    } else {
        prompt.to_owned()
    };
    (prompt, shown)
}

impl Shell {
    /// Reads commands from the terminal until EOF, `.exit` or `.quit`.
    pub fn repl(&mut self) -> io::Result<i32> {
        let config = Config::builder()
            .max_history_size(HISTORY_SIZE)
            .map_err(io::Error::other)?
            .auto_add_history(false)
            .build();
        let mut editor: Editor<ShellHelper, DefaultHistory> =
            Editor::with_config(config).map_err(io::Error::other)?;
        editor.set_helper(Some(ShellHelper {
            tables: self
                .engine()
                .tables()
                .iter()
                .map(|d| d.spec().name.to_string())
                .collect(),
        }));
        let history = shell_home().map(|dir| dir.join(".history"));
        if let Some(path) = &history {
            // A missing history file is normal on first use.
            let _ = editor.load_history(path);
        }
        println!("Using a \x1b[1mvirtual database\x1b[0m. Need help, type '.help'");
        let prompts = (styled(PROMPT), styled(CONTINUATION));
        let mut pending = Accumulator::default();
        let mut number = 0;
        let code = loop {
            let prompt = if pending.is_empty() {
                &prompts.0
            } else {
                &prompts.1
            };
            let line = match editor.readline(prompt) {
                Ok(line) => line,
                // Ctrl-C abandons the statement being typed, as in sqlite3.
                Err(ReadlineError::Interrupted) => {
                    pending.clear();
                    continue;
                }
                Err(ReadlineError::Eof) => break 0,
                Err(e) => return Err(io::Error::other(e)),
            };
            number += 1;
            if !line.trim().is_empty() {
                let _ = editor.add_history_entry(line.as_str());
                if let Some(path) = &history {
                    // Saved every line so a killed shell keeps its history.
                    if let Err(e) = editor.save_history(path) {
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
                        self.error_line(&format!("Error: {}", e.message))?;
                    }
                }
                Line::Types(sql, _) => {
                    self.types(&sql)?;
                }
            }
        };
        Ok(code)
    }
}
