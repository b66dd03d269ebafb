//! zsh completion (`_arguments`): flags with their descriptions and values, and for
//! osqueryi the statement argument: dot commands, their arguments, table names after
//! FROM/JOIN.

use crate::dot::{self, DotArgument};
use crate::{Program, Value, flags};
use std::fmt::Write as _;

/// Helpers both programs' scripts define (once per shell).
const COMMON: &str = r#"
# Table names, asked of the program being completed (`-S -L` lists the tables of its
# build and config), once per shell and program.
(( $+functions[_oxquery_tables] )) ||
_oxquery_tables() {
  local program=${~words[1]}
  if [[ ${_oxquery_tables_of-} != $program ]]; then
    typeset -g _oxquery_tables_of=$program
    typeset -ga _oxquery_tables_list
    _oxquery_tables_list=(${${(M)${(f)"$($program -S -L 2>/dev/null </dev/null)"}:#  => *}#  => })
  fi
  local expl
  _wanted tables expl 'table' compadd -a _oxquery_tables_list
}
"#;

/// `text` inside a single-quoted zsh word.
fn quoted(text: &str) -> String {
    text.replace('\'', "'\\''")
}

/// `text` as an `_arguments` description (inside `[...]`).
fn described(text: &str) -> String {
    quoted(
        &text
            .replace('\\', "\\\\")
            .replace('[', "\\[")
            .replace(']', "\\]")
            .replace(':', "\\:"),
    )
}

/// The completion function for `program` (the file `_osqueryi`/`_osqueryd`).
pub fn script(program: Program) -> String {
    let name = program.name();
    let mut out = format!("#compdef {name}\n");
    out.push_str(&crate::generated_notice("#"));
    out.push_str(COMMON);
    if program == Program::Shell {
        out.push_str(&statement());
    }
    let mut specs = Vec::new();
    for flag in flags(program) {
        let shown = flag.shown();
        let summary = described(&flag.summary(program));
        let spec = match flag.value {
            Value::None => format!("'{shown}[{summary}]'"),
            Value::Choice(choices) => {
                format!("'{shown}=[{summary}]:value:({})'", choices.join(" "))
            }
            Value::Path => format!("'{shown}=[{summary}]:path:_files'"),
            Value::Table => format!("'{shown}=[{summary}]:table:_oxquery_tables'"),
            Value::Tables => {
                format!("'{shown}=[{summary}]:tables:_sequence _oxquery_tables'")
            }
            Value::Free => {
                let what = flag.def.help_argument().trim().to_lowercase();
                format!("'{shown}=[{summary}]:{what}: '")
            }
        };
        specs.push(spec);
    }
    if program == Program::Shell {
        specs.push("'1::SQL statement or dot command:_oxquery_statement'".to_owned());
    }
    let _ = writeln!(out, "\n_arguments \\\n  {}", specs.join(" \\\n  "));
    out
}

/// `_oxquery_statement`: the shell's statement argument (a dot command with its argument
/// in one word, as the program takes it, or SQL).
fn statement() -> String {
    let mut described_commands = String::new();
    let mut arguments = String::new();
    for (name, entry) in dot::all() {
        let description = entry.as_ref().map_or("", |e| e.description.as_str());
        let _ = writeln!(
            described_commands,
            "    '.{}:{}'",
            name,
            quoted(&description.replace(':', "\\:"))
        );
        let argument = match &entry {
            Some(entry) => entry.argument(),
            None => dot::argument_of(name, ""),
        };
        let action = match argument {
            DotArgument::Table => "_oxquery_tables".to_owned(),
            DotArgument::Path => "_files".to_owned(),
            DotArgument::Choice(values) => format!("compadd -- {}", values.join(" ")),
            DotArgument::None | DotArgument::Free => continue,
        };
        let _ = writeln!(arguments, "      (.{name}) {action} ;;");
    }
    format!(
        r#"
(( $+functions[_oxquery_statement] )) ||
_oxquery_statement() {{
  local -a commands
  commands=(
{described_commands}  )
  if [[ $PREFIX == .*[[:space:]]* ]]; then
    local command=${{PREFIX%%[[:space:]]*}}
    compset -P '*[[:space:]]'
    case $command in
{arguments}    esac
  elif [[ $PREFIX == .* ]]; then
    _describe -t commands 'dot command' commands
  elif [[ $PREFIX == *[[:space:]]* ]]; then
    local head=${{PREFIX%[[:space:]]*}}
    local -a before
    before=(${{=head}})
    if [[ ${{(L)before[-1]}} == (from|join) ]]; then
      compset -P '*[[:space:]]'
      _oxquery_tables
    fi
  fi
}}
"#
    )
}
