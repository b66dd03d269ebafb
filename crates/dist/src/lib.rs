//! What the packages install besides the program: the man pages `osqueryi(1)` and
//! `osqueryd(8)` and bash, zsh and fish completions for both programs, rendered from the
//! same data `--help` and the shell read, so they cannot disagree with them:
//!
//! * flags: the flag table's `--help` groups, names, types, defaults and statuses
//!   (`oxquery_flags::help_sections`, `oxquery_flags::status`), described for the packaged
//!   build (every cargo feature, [`Build::Full`]);
//! * dot commands: the shell's command table (`oxquery_shell::command_names`) and its
//!   `.help` text ([`dot`]);
//! * table names: asked of the program at completion time (`-S -L`), so a completion
//!   offers exactly the tables the installed build and its config have.
//!
//! [`render`] returns every file with its path under the repository; the rendered files
//! are committed under `dist/`, and a test fails when they drift (`UPDATE_DIST=1 cargo
//! test -p oxquery-dist` rewrites them).

mod bash;
pub mod dot;
mod fish;
mod man;
mod roff;
mod zsh;

use oxquery_flags::implemented::Tool;
use oxquery_flags::{Build, FlagDef, FlagType, flag, help_sections, status};

/// One generated file.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Where it is committed, relative to the repository's root.
    pub path: &'static str,
    pub text: String,
}

/// Every file under `dist/man` and `dist/completions`, the man pages dated `man_date`
/// (`YYYY-MM-DD`).
pub fn render(man_date: &str) -> Vec<Generated> {
    let mut files = Vec::new();
    for program in [Program::Shell, Program::Daemon] {
        let (man_path, bash_path, zsh_path, fish_path) = match program {
            Program::Shell => (
                "dist/man/osqueryi.1",
                "dist/completions/osqueryi.bash",
                "dist/completions/_osqueryi",
                "dist/completions/osqueryi.fish",
            ),
            Program::Daemon => (
                "dist/man/osqueryd.8",
                "dist/completions/osqueryd.bash",
                "dist/completions/_osqueryd",
                "dist/completions/osqueryd.fish",
            ),
        };
        files.push(Generated {
            path: man_path,
            text: man::page(program, man_date),
        });
        files.push(Generated {
            path: bash_path,
            text: bash::script(program),
        });
        files.push(Generated {
            path: zsh_path,
            text: zsh::script(program),
        });
        files.push(Generated {
            path: fish_path,
            text: fish::script(program),
        });
    }
    files
}

/// The two programs (one binary; the name picks the role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Shell,
    Daemon,
}

impl Program {
    pub fn name(self) -> &'static str {
        match self {
            Program::Shell => "osqueryi",
            Program::Daemon => "osqueryd",
        }
    }

    fn tool(self) -> Tool {
        match self {
            Program::Shell => Tool::Shell,
            Program::Daemon => Tool::Daemon,
        }
    }
}

/// What a flag's value is, for completing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// A boolean: the flag alone says `true`.
    None,
    /// One of a fixed set.
    Choice(&'static [&'static str]),
    /// A file or directory.
    Path,
    /// One table name.
    Table,
    /// Comma-separated table names.
    Tables,
    /// Any text or number.
    Free,
}

/// A flag as the completions offer it.
struct Flag {
    def: &'static FlagDef,
    value: Value,
}

impl Flag {
    /// The name as `--help` shows it (`-A`, `--config_path`).
    fn shown(&self) -> String {
        self.def.help_name()
    }

    /// A one-line summary for the shells that show one: the description's first sentence,
    /// kept short, and the status note `--help` gives.
    fn summary(&self, program: Program) -> String {
        let description = self.def.description;
        let first = description
            .split_once(". ")
            .map_or(description, |(first, _)| first);
        let mut text = if first.chars().count() > 90 {
            let cut: String = first.chars().take(87).collect();
            let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
            format!("{cut}...")
        } else {
            first.to_owned()
        };
        if let Some(note) = status(self.def, program.tool(), Build::Full).note() {
            text.push_str(&format!(" [{note}]"));
        }
        text
    }
}

/// The flags `--help` shows for `program`, in its order, with what their values are.
fn flags(program: Program) -> Vec<Flag> {
    help_sections(program.tool())
        .iter()
        .flat_map(|section| section.flags())
        .map(|def| Flag {
            def,
            value: value_of(def),
        })
        .collect()
}

fn value_of(def: &'static FlagDef) -> Value {
    if def.name == flag::A.name() {
        Value::Table
    } else if [flag::disable_tables.name(), flag::enable_tables.name()].contains(&def.name) {
        Value::Tables
    } else if !def.choices.is_empty() {
        Value::Choice(def.choices)
    } else {
        match def.ty {
            FlagType::Bool => Value::None,
            FlagType::Path => Value::Path,
            _ => Value::Free,
        }
    }
}

/// The first line(s) of every generated file: where it comes from.
fn generated_notice(comment: &str) -> String {
    format!(
        "{comment} Generated by crates/dist from oxquery's flag table and shell commands: do not edit.\n\
         {comment} Refresh with `UPDATE_DIST=1 cargo test -p oxquery-dist`.\n"
    )
}

/// The date a man page gives in its `.TH` line: the day its text last changed.
pub fn man_date(page: &str) -> Option<&str> {
    let th = page.lines().find(|l| l.starts_with(".TH "))?;
    th.split_whitespace().nth(3)
}

/// Today (UTC) as `YYYY-MM-DD`: the date of a page whose text changes.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    civil_date(secs / 86_400)
}

/// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The program's version, as `--version` prints it.
fn version() -> &'static str {
    oxquery_engine::instance::VERSION
}

#[cfg(test)]
mod tests {
    #[test]
    fn civil_dates() {
        assert_eq!(super::civil_date(0), "1970-01-01");
        assert_eq!(super::civil_date(11_016), "2000-02-29");
        assert_eq!(super::civil_date(20_794), "2026-12-07");
    }
}
