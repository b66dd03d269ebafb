//! `osqueryi(1)` and `osqueryd(8)` in roff with man(7) macros. The OPTIONS section is
//! `--help`'s groups and facts (type, default, status) for the packaged build; the shell
//! page lists `.help`'s commands. The prose is oxquery's.

use crate::Program;
use crate::dot::{self, DotCommand};
use crate::roff::{argument, bold, italic, text};
use oxquery_flags::implemented::{self, needed_feature};
use oxquery_flags::{ALIASES, Build, FlagDef, Status, flag, help_sections, status};
use std::fmt::Write as _;

/// The page for `program`, dated `date` (`YYYY-MM-DD`, the day its text last changed).
pub fn page(program: Program, date: &str) -> String {
    let mut out = crate::generated_notice(".\\\"");
    let (section, title, summary) = match program {
        Program::Shell => (
            "1",
            "User Commands",
            "query this host with SQL, interactively or once (osquery's shell)",
        ),
        Program::Daemon => (
            "8",
            "System Administration",
            "run scheduled SQL queries about this host and log their results (osquery's daemon)",
        ),
    };
    let name = program.name();
    let _ = writeln!(
        out,
        ".TH {} {section} {date} {} {}",
        name.to_uppercase(),
        argument(&format!("oxquery {}", crate::version())),
        argument(title)
    );
    // Left-aligned and unhyphenated: flag and table names must print whole.
    out.push_str(".ad l\n.nh\n");
    let _ = writeln!(out, ".SH NAME\n{name} \\- {}", text(summary));
    out.push_str(".SH SYNOPSIS\n");
    match program {
        Program::Shell => {
            let _ = writeln!(
                out,
                ".B {name}\n.RI [ OPTION ]...\n.RI [ \"SQL STATEMENT\" ]\n.br\n.B {name}\n.RI [ OPTION ]...\n.RI \\(dq. COMMAND\n.RI [ ARGUMENT ]\\(dq"
            );
        }
        Program::Daemon => {
            let _ = writeln!(out, ".B {name}\n.RI [ OPTION ]...");
        }
    }
    out.push_str(".SH DESCRIPTION\n");
    out.push_str(&description(program));
    out.push_str(".SH OPTIONS\n");
    out.push_str(&options(program));
    if program == Program::Shell {
        out.push_str(".SH \"SHELL COMMANDS\"\n");
        out.push_str(&dot_commands());
    }
    if program == Program::Daemon {
        out.push_str(&signals());
    }
    out.push_str(".SH FILES\n");
    out.push_str(&files(program));
    out.push_str(".SH \"EXIT STATUS\"\n");
    out.push_str(&exit_status(program));
    out.push_str(".SH EXAMPLES\n");
    out.push_str(&examples(program));
    out.push_str(".SH NOTES\n");
    out.push_str(&notes());
    out.push_str(".SH \"SEE ALSO\"\n");
    let other = match program {
        Program::Shell => "osqueryd (8)",
        Program::Daemon => "osqueryi (1)",
    };
    let _ = writeln!(
        out,
        ".BR {other} ,\n.BR systemctl (1),\n.BR sqlite3 (1)\n.PP\nThe table reference: \\fBosqueryi \\-\\-L\\fR lists the tables, \\fB.schema\\fR \\fITABLE\\fR shows one."
    );
    without_paragraph_after_heading(&out)
}

/// A heading already starts a paragraph: a `.PP` right after it is dropped (mandoc says so).
fn without_paragraph_after_heading(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    let mut after_heading = false;
    for line in page.lines() {
        if after_heading && line == ".PP" {
            continue;
        }
        after_heading = line.starts_with(".SH") || line.starts_with(".SS");
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn paragraph(out: &mut String, words: &str) {
    out.push_str(".PP\n");
    out.push_str(&text(words));
    out.push('\n');
}

fn description(program: Program) -> String {
    let mut out = String::new();
    let common = "oxquery is osquery rebuilt for Linux: it presents the operating system as a \
                  relational database, each aspect of it (processes, users, packages, sockets, \
                  files, hardware, containers, events) a virtual table that is read when a query \
                  uses it. Queries are SQLite's SQL: tables can be filtered, joined and \
                  aggregated.";
    match program {
        Program::Shell => {
            let _ = writeln!(
                out,
                ".B osqueryi\n{}",
                text(&format!("is the interactive shell. {common}"))
            );
            paragraph(
                &mut out,
                "With a statement as its argument (or --query, --query_file, -A or -L), osqueryi \
                 runs it, prints the result and exits; an argument that starts with a dot is a \
                 shell command. Otherwise it reads statements from standard input: on a \
                 terminal with line editing, history and TAB completion of table names and \
                 commands, else as a script. Statements end with a semicolon; a line that \
                 starts with a dot is a shell command (see SHELL COMMANDS).",
            );
            paragraph(
                &mut out,
                "The shell uses no persistent database unless --database_path is given, starts \
                 no event publishers (--disable_events) and logs no results. It reads the \
                 configuration as the daemon does, so osquery_schedule, osquery_packs and \
                 --pack see the configured queries.",
            );
        }
        Program::Daemon => {
            let _ = writeln!(
                out,
                ".B osqueryd\n{}",
                text(&format!(
                    "is the host-monitoring daemon. {common} The daemon runs the queries its \
                     configuration schedules, alone or in packs, and logs what changed between \
                     runs (differential results) or whole snapshots, with status lines, to its \
                     logger plugins."
                ))
            );
            paragraph(
                &mut out,
                "Unless --disable_watchdog is given, osqueryd starts as a watcher process that \
                 runs the worker doing the work, checks its memory and CPU use against the \
                 --watchdog_level limits, and restarts it when it goes over them or dies. The \
                 worker keeps its state (differential results, events, the node key) in the \
                 database at --database_path; --pidfile keeps a second daemon away from it.",
            );
            paragraph(
                &mut out,
                "The configuration (--config_path, a JSON file and its .d directory) holds the \
                 schedule, packs, options (flags a config may set), decorators, file paths \
                 for file events and automatic tables. It is read at start-up, on SIGHUP and \
                 every --config_refresh seconds.",
            );
            paragraph(
                &mut out,
                "Installed from the packages, osqueryd runs as the systemd service \
                 osqueryd.service, started with --flagfile /etc/osquery/osquery.flags.",
            );
        }
    }
    paragraph(
        &mut out,
        "osqueryi and osqueryd are one program: its name picks the role, and -S or -D \
         forces the shell or the daemon whatever the name.",
    );
    out
}

fn options(program: Program) -> String {
    let mut out = String::new();
    paragraph(
        &mut out,
        "Flags are osquery's, parsed as gflags does: --name=value or --name value \
         (-name works too), --name or --name=true|false for a boolean and --noname to turn \
         it off, and -- to end the flags. --flagfile PATH reads more flags from a file, \
         one per line (# starts a comment); with no --flagfile, \
         /etc/osquery/osquery.flags.default is read if it exists. Configuration options may \
         also be set in the configuration's \"options\" object.",
    );
    paragraph(
        &mut out,
        "Each flag is shown with its value's type and default. Flags osquery defines only \
         on other platforms, and hidden ones, are accepted but not listed.",
    );
    out.push_str(&notes_explained(program));
    for section in help_sections(program.tool()) {
        let title = section.title.trim_end_matches(':');
        let _ = writeln!(out, ".SS {}", argument(title));
        for def in section.flags() {
            out.push_str(&flag_entry(def, program));
        }
    }
    out
}

/// What each bracketed note on this page means (only the notes the page has).
fn notes_explained(program: Program) -> String {
    let mut seen = Vec::new();
    for section in help_sections(program.tool()) {
        for def in section.flags() {
            let status = status(def, program.tool(), Build::Full);
            if status != Status::Acted && !seen.contains(&status) {
                seen.push(status);
            }
        }
    }
    if seen.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    paragraph(
        &mut out,
        "A note in brackets after a flag says what this program does not do with it:",
    );
    for status in seen {
        let meaning = match status {
            Status::Acted => continue,
            Status::Refused => "Using it is an error: oxquery does not have its feature yet.",
            Status::MissingFeature(_) => "Only a build with that cargo feature acts on it.",
            Status::DaemonOnly => {
                "Only osqueryd acts on it; the shell accepts it and does nothing."
            }
            Status::NoEffectYet => {
                "Accepted, but oxquery does not implement its feature yet: setting it changes nothing."
            }
        };
        if let Some(note) = status.note() {
            let _ = writeln!(
                out,
                ".TP
{}
{}",
                bold(&format!("[{note}]")),
                text(meaning)
            );
        }
    }
    out
}

fn flag_entry(def: &FlagDef, program: Program) -> String {
    let mut out = String::from(".TP\n");
    let argument = def.help_argument();
    let shown = match argument.strip_prefix('=') {
        // A choice: each value in bold, as typed.
        Some(choices) => format!(
            "{}={}",
            bold(&def.help_name()),
            choices.split('|').map(bold).collect::<Vec<_>>().join("|")
        ),
        None if argument.is_empty() => bold(&def.help_name()),
        None => format!("{} {}", bold(&def.help_name()), italic(argument.trim())),
    };
    out.push_str(&shown);
    out.push('\n');
    let mut body = def.description.to_owned();
    if !body.ends_with('.') {
        body.push('.');
    }
    let _ = write!(
        body,
        " Type: {}, default: {}.",
        def.ty.name(),
        def.help_default()
    );
    let aliases: Vec<String> = ALIASES
        .iter()
        .filter(|a| a.target == def.name)
        .map(|a| format!("--{}", a.name))
        .collect();
    if !aliases.is_empty() {
        let _ = write!(body, " Also accepted as {}.", aliases.join(", "));
    }
    if let Some(feature) = needed_feature(def.name) {
        let _ = write!(
            body,
            " Acted on only by a build with the {feature} feature, which the packages have."
        );
    }
    if program == Program::Daemon && implemented::STARTUP_ONLY.contains(&def.name) {
        body.push_str(" Read at start-up only: a config reload does not change it.");
    }
    out.push_str(&text(&body));
    out.push('\n');
    if let Some(note) = status(def, program.tool(), Build::Full).note() {
        let _ = writeln!(out, "\\fB[{}]\\fR", text(&note));
    }
    out
}

fn dot_commands() -> String {
    let mut out = String::new();
    paragraph(
        &mut out,
        "A line that starts with a dot is a command to the shell rather than SQL. A command \
         may be shortened to any prefix that names it unambiguously (.sch for .schema).",
    );
    let mut group: Option<String> = None;
    for command in dot::documented() {
        if command.group != group {
            if let Some(heading) = &command.group {
                let _ = writeln!(out, ".SS {}", argument(heading));
            }
            group = command.group.clone();
        }
        out.push_str(&dot_entry(&command));
    }
    let undocumented: Vec<String> = dot::all()
        .into_iter()
        .filter(|(_, entry)| entry.is_none())
        .map(|(name, _)| format!(".{name}"))
        .collect();
    if !undocumented.is_empty() {
        paragraph(
            &mut out,
            &format!(
                "Also accepted, as osquery's shell does: {}.",
                undocumented.join(", ")
            ),
        );
    }
    out
}

fn dot_entry(command: &DotCommand) -> String {
    let mut out = String::from(".TP\n");
    let _ = write!(out, "{}", bold(&format!(".{}", command.name)));
    if !command.arguments.is_empty() {
        let _ = write!(out, " {}", italic(&command.arguments));
    }
    out.push('\n');
    let mut description = command.description.clone();
    if !description.ends_with('.') && !description.ends_with(':') {
        description.push('.');
    }
    out.push_str(&text(&description));
    out.push('\n');
    if !command.values.is_empty() {
        out.push_str(".RS\n");
        for (value, meaning) in &command.values {
            let _ = writeln!(out, ".TP 10\n{}\n{}", bold(value), text(meaning));
        }
        out.push_str(".RE\n");
    }
    out
}

fn signals() -> String {
    let mut out = String::from(".SH SIGNALS\n");
    for (signal, meaning) in [
        (
            "SIGTERM, SIGINT",
            "Stop: running queries are cancelled, the logs flushed and the pidfile's lock \
             released; the watcher stops its worker first. A stop that takes longer than \
             --alarm_timeout seconds is cut short.",
        ),
        (
            "SIGHUP",
            "Reload the configuration and reopen the log files (after an outside rotation).",
        ),
    ] {
        let _ = writeln!(out, ".TP\n{}\n{}", bold(signal), text(meaning));
    }
    out
}

fn file_entry(out: &mut String, path: &str, meaning: &str) {
    let _ = writeln!(out, ".TP\n{}\n{}", bold(path), text(meaning));
}

fn files(program: Program) -> String {
    let mut out = String::new();
    let config = flag::config_path.def().default;
    file_entry(
        &mut out,
        config,
        &format!(
            "The configuration (--config_path). The files named *.conf in {config}.d are \
             read after it, in name order; a later file's options and queries win."
        ),
    );
    file_entry(
        &mut out,
        "/etc/osquery/osquery.flags",
        "Flags for the service: osqueryd.service starts the daemon with --flagfile naming it.",
    );
    file_entry(
        &mut out,
        oxquery_shell::DEFAULT_FLAGFILE,
        "Flags read when none is given with --flagfile.",
    );
    file_entry(
        &mut out,
        "/etc/osquery/osquery.example.conf",
        "An example configuration, installed by the packages: copy it to osquery.conf to start.",
    );
    file_entry(
        &mut out,
        "/usr/share/osquery/packs/",
        "Query packs installed by the packages (incident response, compliance, hardware, \
         vulnerability management, the daemon's own health), for a configuration's \"packs\".",
    );
    let database = flag::database_path.def().default;
    match program {
        Program::Daemon => {
            file_entry(
                &mut out,
                database,
                "The daemon's state (--database_path): differential results, buffered events, \
                 the node key and instance identity. When osquery's RocksDB directory is there, \
                 it is read once and left unchanged, and the state goes beside it with the \
                 suffix .oxquery.",
            );
            let logs = flag::logger_path.def().default;
            file_entry(
                &mut out,
                logs,
                "The filesystem logger's directory (--logger_path): osqueryd.results.log and \
                 osqueryd.snapshots.log, one JSON object per line, and their rotations with \
                 --logger_rotate.",
            );
            file_entry(
                &mut out,
                flag::pidfile.def().default,
                "The daemon's pid (--pidfile); a second daemon with the same pidfile refuses to \
                 start.",
            );
        }
        Program::Shell => {
            file_entry(
                &mut out,
                "~/.osquery/",
                "The shell's own directory: .history (the statements typed), shell.db (its \
                 database, used only with --database_path naming it) and shell.em (its \
                 extension socket).",
            );
            file_entry(
                &mut out,
                database,
                "The daemon's state database; the shell opens it only when --database_path \
                 names it.",
            );
            file_entry(
                &mut out,
                flag::logger_path.def().default,
                "The daemon's logs (the shell writes none).",
            );
        }
    }
    out
}

fn exit_status(program: Program) -> String {
    let mut out = String::new();
    let mut entries: Vec<(String, &str)> = Vec::new();
    match program {
        Program::Shell => {
            entries.push(("0".into(), "Every statement and command succeeded."));
            entries.push((
                "1".into(),
                "A flag was wrong, a statement failed, or a file named by a flag could not be \
                 read.",
            ));
            entries.push(("N".into(), "The code given to .exit N."));
        }
        Program::Daemon => {
            entries.push((
                "0".into(),
                "A clean stop (SIGTERM, SIGINT or --schedule_timeout), or a one-shot mode \
                 (--config_check, --config_dump, --database_dump) that succeeded.",
            ));
            entries.push((
                oxquery_config::EXIT_CONFIG_ERROR.to_string(),
                "The configuration could not be read or parsed (--config_check), or a flag was \
                 wrong.",
            ));
        }
    }
    entries.push((
        oxquery_config::EXIT_CATASTROPHIC.to_string(),
        "Start-up failed: a plugin that does not exist was named, the database could not be \
         opened, or another daemon holds the pidfile.",
    ));
    for (code, meaning) in entries {
        let _ = writeln!(out, ".TP\n{}\n{}", bold(&code), text(meaning));
    }
    out
}

fn example(out: &mut String, what: &str, command: &str) {
    paragraph(out, what);
    let _ = writeln!(out, ".PP\n.RS\n.EX\n{}\n.EE\n.RE", text(command));
}

fn examples(program: Program) -> String {
    let mut out = String::new();
    match program {
        Program::Shell => {
            example(
                &mut out,
                "The processes using the most memory:",
                "osqueryi 'SELECT pid, name, resident_size FROM processes ORDER BY resident_size DESC LIMIT 5;'",
            );
            example(
                &mut out,
                "Listening sockets with their programs, as JSON:",
                "osqueryi --json 'SELECT p.name, l.port, l.address FROM listening_ports l JOIN processes p USING (pid);'",
            );
            example(
                &mut out,
                "The columns of a table, then every table whose name starts with a word:",
                "osqueryi '.schema users'\nosqueryi '.tables deb'",
            );
            example(
                &mut out,
                "Run the queries of a pack from the configuration once:",
                "osqueryi --config_path /etc/osquery/osquery.conf --pack incident_response",
            );
        }
        Program::Daemon => {
            example(
                &mut out,
                "Check a configuration before installing it:",
                "osqueryd --config_check --config_path ./osquery.conf",
            );
            example(
                &mut out,
                "Run in the foreground without the service, state and logs in a scratch \
                 directory, status lines on the terminal:",
                "osqueryd --disable_watchdog --verbose --config_path ./osquery.conf \\\n    --database_path /tmp/osq/osquery.db --logger_path /tmp/osq \\\n    --pidfile /tmp/osq/osqueryd.pid",
            );
            example(
                &mut out,
                "Start the service now and at every boot:",
                "systemctl enable --now osqueryd",
            );
        }
    }
    out
}

fn notes() -> String {
    let mut out = String::new();
    paragraph(
        &mut out,
        "This page describes the packaged build, which has every optional cargo feature: \
         the magic and augeas tables, the yara tables, the kafka_producer logger and reading \
         osquery's RocksDB. A build without one of them says so in its --help.",
    );
    paragraph(
        &mut out,
        "Table names, columns and flags follow osquery's, so osquery's queries, \
         configurations, packs and flagfiles work unchanged; oxquery adds a few flags of its \
         own, such as --json_typed, --pretty_expand and --config_check_strict.",
    );
    out
}
