//! The shell's dot commands as the man page and the completions show them: names from
//! the shell's command table, usage and meaning from its `.help` text (read, not
//! repeated, so the two cannot drift apart).

use oxquery_flags::flag;
use oxquery_shell::output::Mode;

/// One command as `.help` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DotCommand {
    /// The name without its dot (`schema`).
    pub name: String,
    /// The argument part of the usage (`[TABLE]`), possibly empty.
    pub arguments: String,
    /// What it does, continuation lines joined.
    pub description: String,
    /// Lines that list the argument's values (`.mode`'s modes): value and meaning.
    pub values: Vec<(String, String)>,
    /// The heading of its group, when `.help` groups commands.
    pub group: Option<String>,
}

/// What a command's argument is, for completing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DotArgument {
    None,
    Table,
    Path,
    Choice(Vec<String>),
    Free,
}

impl DotCommand {
    pub fn argument(&self) -> DotArgument {
        argument_of(&self.name, &self.arguments)
    }
}

/// The argument of command `name` whose usage says `arguments`: `TABLE` and `PATH` by
/// their placeholder, `ON|OFF` as such; `.mode` takes the output modes and `.expand`
/// `--pretty_expand`'s values, which their usage only names.
pub fn argument_of(name: &str, arguments: &str) -> DotArgument {
    if arguments.contains("TABLE") {
        DotArgument::Table
    } else if arguments.contains("PATH") {
        DotArgument::Path
    } else if arguments.contains("ON|OFF") {
        DotArgument::Choice(vec!["on".to_owned(), "off".to_owned()])
    } else if name == "mode" {
        DotArgument::Choice(Mode::ALL.iter().map(|m| m.name().to_owned()).collect())
    } else if name == "expand" {
        DotArgument::Choice(
            flag::pretty_expand
                .def()
                .choices
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
        )
    } else if arguments.is_empty() {
        DotArgument::None
    } else {
        DotArgument::Free
    }
}

/// Every command `.help` describes, in its order.
pub fn documented() -> Vec<DotCommand> {
    parse_help(&oxquery_shell::help_text())
}

/// Every name the shell accepts (aliases too), in its matching order, with the
/// `.help` entry of the command when it has one.
pub fn all() -> Vec<(&'static str, Option<DotCommand>)> {
    let documented = documented();
    oxquery_shell::command_names()
        .map(|name| {
            let entry = documented.iter().find(|c| c.name == name).cloned();
            (name, entry)
        })
        .collect()
}

/// Reads `.help`'s layout: a line starting with `.` is a command (usage, then its meaning
/// after a gap of two or more spaces); a more indented line continues it, as a listed
/// value (`csv   Comma-separated values`) or as more words; a line ending in `:` heads
/// a group; other lines (the greeting) are skipped.
pub fn parse_help(help: &str) -> Vec<DotCommand> {
    let mut commands: Vec<DotCommand> = Vec::new();
    let mut group = None;
    for line in help.lines() {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if let Some(body) = text.strip_prefix('.') {
            let (usage, description) = split_gap(body);
            let (name, arguments) = usage.split_once(' ').unwrap_or((usage, ""));
            commands.push(DotCommand {
                name: name.to_owned(),
                arguments: arguments.trim().to_owned(),
                description: description.to_owned(),
                values: Vec::new(),
                group: group.clone(),
            });
        } else if indent > 0
            && let Some(last) = commands.last_mut()
            && !text.ends_with(':')
        {
            match split_gap_opt(text) {
                Some((value, meaning)) => last.values.push((value.to_owned(), meaning.to_owned())),
                None => {
                    last.description.push(' ');
                    last.description.push_str(text);
                }
            }
        } else if let Some(heading) = text.strip_suffix(':') {
            group = Some(heading.to_owned());
        }
    }
    commands
}

/// `usage  meaning` split at the first run of two or more spaces (no meaning: empty).
fn split_gap(text: &str) -> (&str, &str) {
    split_gap_opt(text).unwrap_or((text.trim(), ""))
}

fn split_gap_opt(text: &str) -> Option<(&str, &str)> {
    let at = text.find("  ")?;
    Some((text[..at].trim(), text[at..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_help_layout() {
        let help = "Welcome.\nYou are here.\n\nTables:\n.all [TABLE]     Select all\n.mode MODE       Set mode:\n                   csv      Comma values\n                   line     One per line\n.expand MODE     Wide tables: auto\n                   or never\nOther:\n  .quit          Exit\n";
        let parsed = parse_help(help);
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[0].name, "all");
        assert_eq!(parsed[0].arguments, "[TABLE]");
        assert_eq!(parsed[0].group.as_deref(), Some("Tables"));
        assert_eq!(parsed[0].argument(), DotArgument::Table);
        assert_eq!(parsed[1].values.len(), 2);
        assert_eq!(
            parsed[1].values[0],
            ("csv".to_owned(), "Comma values".to_owned())
        );
        assert_eq!(parsed[2].description, "Wide tables: auto or never");
        assert_eq!(parsed[3].name, "quit");
        assert_eq!(parsed[3].group.as_deref(), Some("Other"));
        assert_eq!(parsed[3].argument(), DotArgument::None);
    }

    #[test]
    fn the_shells_help_describes_its_commands() {
        let documented = documented();
        let names: Vec<&str> = oxquery_shell::command_names().collect();
        for command in &documented {
            assert!(
                names.contains(&command.name.as_str()),
                ".{} is in .help but not a command",
                command.name
            );
            assert!(!command.description.is_empty(), ".{}", command.name);
        }
        let find = |name: &str| documented.iter().find(|c| c.name == name).unwrap();
        assert_eq!(find("schema").argument(), DotArgument::Table);
        assert_eq!(find("tables").argument(), DotArgument::Table);
        assert_eq!(find("connect").argument(), DotArgument::Path);
        assert_eq!(
            find("headers").argument(),
            DotArgument::Choice(vec!["on".into(), "off".into()])
        );
        let modes = find("mode");
        assert_eq!(modes.values.len(), Mode::ALL.len());
        let DotArgument::Choice(choices) = modes.argument() else {
            panic!("{modes:?}")
        };
        for (value, _) in &modes.values {
            assert!(choices.contains(value), "{value}");
        }
    }
}
