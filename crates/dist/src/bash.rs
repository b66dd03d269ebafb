//! bash completion: flags (values after `=` or as the next word), and for osqueryi the
//! statement argument: dot commands, their arguments, and table names after FROM/JOIN.
//! Needs nothing from the bash-completion package.

use crate::dot::{self, DotArgument};
use crate::{Program, Value, flags};
use std::fmt::Write as _;

/// Helpers both programs' scripts define (identically, so either may be loaded first).
const COMMON: &str = r#"
# Table names, asked of the program being completed (`-S -L` lists the tables of its
# build and config), once per shell and program.
_oxquery_tables() {
    if [[ ${_oxquery_tables_of-} != "$1" ]]; then
        _oxquery_tables_list=()
        local line
        while IFS= read -r line; do
            [[ $line == "  => "* ]] && _oxquery_tables_list+=("${line#  => }")
        done < <("$1" -S -L 2>/dev/null </dev/null)
        _oxquery_tables_of=$1
    fi
}

# COMPREPLY: the words of $2 (one per line) that start with $3, each after prefix $1.
_oxquery_reply() {
    local word
    COMPREPLY=()
    while IFS= read -r word; do
        [[ -n $word && $word == "$3"* ]] && COMPREPLY+=("$1$word")
    done <<< "$2"
}

# COMPREPLY: files and directories starting with $1.
_oxquery_files() {
    compopt -o filenames 2>/dev/null
    mapfile -t COMPREPLY < <(compgen -f -- "$1")
}

# The word being completed and, for a flag's value, the flag: bash splits `--name=value`
# at `=`, so the pieces are put back together.
_oxquery_word() {
    local cword=$COMP_CWORD
    _oxquery_cur=$2 _oxquery_flag=
    if [[ ${COMP_WORDS[cword]} == = ]] && ((cword > 0)); then
        _oxquery_flag=${COMP_WORDS[cword-1]} _oxquery_cur=
    elif ((cword > 1)) && [[ ${COMP_WORDS[cword-1]} == = ]]; then
        _oxquery_flag=${COMP_WORDS[cword-2]}
    elif [[ $_oxquery_cur == -*=* ]]; then
        _oxquery_flag=${_oxquery_cur%%=*} _oxquery_cur=${_oxquery_cur#*=}
    elif ((cword > 0)) && [[ ${COMP_WORDS[cword-1]} == -?* ]]; then
        # `--name value`: a flag that is not a boolean takes the next word.
        _oxquery_flag=${COMP_WORDS[cword-1]}:next
    fi
    # After `--`, every word is an argument.
    local i
    for ((i = 1; i < cword; i++)); do
        [[ ${COMP_WORDS[i]} == -- ]] && _oxquery_flag=--
    done
    return 0
}
"#;

/// The completion script for `program`.
pub fn script(program: Program) -> String {
    let name = program.name();
    let mut out = format!(
        "# bash completion for {name}{:>50}\n",
        "-*- shell-script -*-"
    );
    out.push_str(&crate::generated_notice("#"));
    out.push_str(COMMON);
    let function = format!("_{name}");

    // The value of a flag: 0 when the flag takes one (COMPREPLY filled), 1 for a boolean
    // or an unknown word.
    let _ = writeln!(
        out,
        "\n# Completes the value of flag $2 (no dashes) of program $1 for word $3.\n{function}_value() {{\n    case $2 in"
    );
    let mut free = Vec::new();
    for flag in flags(program) {
        let pattern = flag.def.name;
        let action = match flag.value {
            Value::None => continue,
            Value::Free => {
                free.push(pattern);
                continue;
            }
            Value::Choice(choices) => {
                format!("_oxquery_reply '' $'{}' \"$3\"", choices.join("\\n"))
            }
            Value::Path => "_oxquery_files \"$3\"".to_owned(),
            Value::Table => {
                "_oxquery_tables \"$1\"; _oxquery_reply '' \"$(printf '%s\\n' \"${_oxquery_tables_list[@]}\")\" \"$3\"".to_owned()
            }
            Value::Tables => "_oxquery_tables \"$1\"\n            local head=\n            [[ $3 == *,* ]] && head=${3%,*},\n            _oxquery_reply \"$head\" \"$(printf '%s\\n' \"${_oxquery_tables_list[@]}\")\" \"${3##*,}\"\n            compopt -o nospace 2>/dev/null".to_owned(),
        };
        let _ = writeln!(out, "        {pattern})\n            {action} ;;");
    }
    if !free.is_empty() {
        // Text and numbers: nothing to offer, but the flag takes the word.
        let _ = writeln!(
            out,
            "        {})\n            COMPREPLY=() ;;",
            free.join("|")
        );
    }
    let _ = writeln!(out, "        *) return 1 ;;\n    esac\n}}");

    let names: Vec<String> = flags(program).iter().map(|f| f.shown()).collect();
    let _ = writeln!(
        out,
        "\n{function}() {{\n    local flags='{}'\n    _oxquery_word \"$@\"\n    local cur=$_oxquery_cur flag=$_oxquery_flag\n    COMPREPLY=()",
        names.join(" ")
    );
    out.push_str(
        r#"    if [[ -n $flag && $flag != -- ]]; then
        local next=
        [[ $flag == *:next ]] && next=1 flag=${flag%:next}
        flag=${flag#-}
        flag=${flag#-}
        if FUNCTION_value "$1" "$flag" "$cur"; then
            return 0
        fi
        # A boolean before this word: the word is not its value.
        [[ -z $next ]] && return 0
    fi
    if [[ $flag != -- && $cur == -* ]]; then
        _oxquery_reply '' "${flags// /$'\n'}" "$cur"
        return 0
    fi
"#
        .replace("FUNCTION", &function)
        .as_str(),
    );
    if program == Program::Shell {
        out.push_str(&statement(&function));
    }
    let _ = writeln!(out, "}}\ncomplete -F {function} {name}");
    if program == Program::Shell {
        let _ = writeln!(out, "{}", statement_helper());
    }
    out
}

/// The shell's statement argument: a dot command, or SQL.
fn statement(function: &str) -> String {
    let commands: Vec<String> = dot::all()
        .iter()
        .map(|(name, _)| format!(".{name}"))
        .collect();
    format!(
        "    {function}_statement \"$1\" \"$cur\" '{}'\n",
        commands.join(" ")
    )
}

/// `_osqueryi_statement PROGRAM WORD COMMANDS`: completes a statement argument.
fn statement_helper() -> String {
    let mut arguments = String::new();
    for (name, entry) in dot::all() {
        let argument = match &entry {
            Some(entry) => entry.argument(),
            None => dot::argument_of(name, ""),
        };
        let action = match argument {
            DotArgument::Table => "_oxquery_tables \"$1\"\n                _oxquery_reply \"$head\" \"$(printf '%s\\n' \"${_oxquery_tables_list[@]}\")\" \"$word\"".to_owned(),
            DotArgument::Path => "compopt -o filenames 2>/dev/null\n                _oxquery_reply \"$head\" \"$(compgen -f -- \"$word\")\" \"$word\"".to_owned(),
            DotArgument::Choice(values) => {
                format!("_oxquery_reply \"$head\" $'{}' \"$word\"", values.join("\\n"))
            }
            DotArgument::None | DotArgument::Free => continue,
        };
        let _ = writeln!(
            arguments,
            "            .{name})\n                {action} ;;"
        );
    }
    format!(
        r#"
# Completes the statement argument $2 of program $1 (commands $3): a dot command and its
# argument (in one quoted word, as the program takes it), or a table name after FROM or
# JOIN in SQL.
_osqueryi_statement() {{
    local cur=$2 head word
    case $cur in
    .*[[:space:]]*)
        head=${{cur%"${{cur##*[[:space:]]}}"}} word=${{cur##*[[:space:]]}}
        local command=${{cur%%[[:space:]]*}}
        case $command in
{arguments}        esac
        ;;
    .*)
        _oxquery_reply '' "${{3// /$'\n'}}" "$cur"
        ;;
    *[[:space:]]*)
        head=${{cur%"${{cur##*[[:space:]]}}"}} word=${{cur##*[[:space:]]}}
        local before=${{head%"${{head##*[![:space:]]}}"}}
        before=${{before##*[[:space:]]}}
        case ${{before,,}} in
        from | join)
            _oxquery_tables "$1"
            _oxquery_reply "$head" "$(printf '%s\n' "${{_oxquery_tables_list[@]}}")" "$word"
            ;;
        esac
        ;;
    esac
}}"#
    )
}
