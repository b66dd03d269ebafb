//! fish completion: flags with their descriptions and values, and for osqueryi the
//! statement argument: dot commands, their arguments, table names after FROM/JOIN.

use crate::dot::{self, DotArgument};
use crate::{Program, Value, flags};
use std::fmt::Write as _;

/// Helpers both programs' scripts define (identically).
const COMMON: &str = r#"
# Table names, asked of the program being completed (`-S -L` lists the tables of its
# build and config), once per shell and program.
function __oxquery_tables
    set -l program (commandline -opc)[1]
    if test "$__oxquery_tables_of" != "$program"
        set -g __oxquery_tables_of $program
        set -g __oxquery_tables_list (command $program -S -L 2>/dev/null </dev/null | string replace -rf '^  => ' '')
    end
    printf '%s\n' $__oxquery_tables_list
end

# Table names after the last comma of the flag's value being completed.
function __oxquery_table_list
    set -l value (string replace -r '^-+[^=]*=' '' -- (commandline -ct))
    set -l head (string match -r '^.*,' -- $value)
    for table in (__oxquery_tables)
        echo $head$table
    end
end
"#;

/// `text` inside a single-quoted fish word.
fn quoted(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\'', "\\'")
}

/// The completion script for `program`.
pub fn script(program: Program) -> String {
    let name = program.name();
    let mut out = crate::generated_notice("#");
    out.push_str(COMMON);
    if program == Program::Shell {
        out.push_str(&statement());
    }
    let _ = writeln!(out, "\n# Flags.\ncomplete -c {name} -f");
    for flag in flags(program) {
        let option = if flag.def.name.len() == 1 {
            format!("-o {}", flag.def.name)
        } else {
            format!("-l {}", flag.def.name)
        };
        let description = quoted(&flag.summary(program));
        let value = match flag.value {
            Value::None => String::new(),
            Value::Choice(choices) => format!(" -x -a '{}'", choices.join(" ")),
            Value::Path => " -r -F".to_owned(),
            Value::Table => " -x -a '(__oxquery_tables)'".to_owned(),
            Value::Tables => " -x -a '(__oxquery_table_list)'".to_owned(),
            Value::Free => " -x".to_owned(),
        };
        let _ = writeln!(out, "complete -c {name} {option}{value} -d '{description}'");
    }
    if program == Program::Shell {
        let _ = writeln!(
            out,
            "\n# The statement argument.\ncomplete -c {name} -n 'not string match -q -- \"-*\" (commandline -ct)' -a '(__oxquery_statement)'"
        );
    }
    out
}

/// `__oxquery_statement`: the shell's statement argument (a dot command with its
/// argument in one word, as the program takes it, or SQL).
fn statement() -> String {
    let mut commands = String::new();
    let mut arguments = String::new();
    for (name, entry) in dot::all() {
        let description = entry.as_ref().map_or("", |e| e.description.as_str());
        let _ = writeln!(
            commands,
            "            printf '%s\\t%s\\n' .{name} '{}'",
            quoted(description)
        );
        let argument = match &entry {
            Some(entry) => entry.argument(),
            None => dot::argument_of(name, ""),
        };
        let action = match argument {
            DotArgument::Table => "set values (__oxquery_tables)".to_owned(),
            DotArgument::Path => "set values (__fish_complete_path $word)".to_owned(),
            DotArgument::Choice(values) => format!("set values {}", values.join(" ")),
            DotArgument::None | DotArgument::Free => continue,
        };
        let _ = writeln!(
            arguments,
            "                case .{name}\n                    {action}"
        );
    }
    format!(
        r#"
function __oxquery_statement
    # The word as typed, without an opening quote.
    set -l cur (string replace -r '^[\'"]' '' -- (commandline -ct))
    set -l head (string match -r '^.*\s' -- $cur)
    set -l word (string replace -r '^.*\s' '' -- $cur)
    set -l values
    switch $cur
        case '.*'
            if test -z "$head"
{commands}                return
            end
            switch (string split -m1 ' ' -- $cur)[1]
{arguments}            end
        case '*'
            test -z "$head"; and return
            set -l before (string split -n ' ' -- (string trim -- $head))[-1]
            if contains -- (string lower -- $before) from join
                set values (__oxquery_tables)
            end
    end
    for value in $values
        echo $head$value
    end
end
"#
    )
}
