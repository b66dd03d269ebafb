//! osqueryi: the shell. [`run`] parses osquery's flags, builds the engine and dispatches
//! in osquery's order: `-L`/`-A`, `--pack`, `--query`, `--query_file`, the first
//! positional argument (a dot command if it starts with `.`, else SQL), then stdin (the
//! REPL when it is a terminal).

pub use oxquery_flags as flags;

mod editor;
mod input;
pub mod logger;
mod meta;
pub mod output;
mod repl;
mod shell;

pub use shell::{MetaOutcome, Output, Shell, SqlError};

use flags::{FlagKind, Flags};
use oxquery_engine::{Engine, TableFilter};
use oxquery_table::TableDef;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

/// Read when no `--flagfile` is given, as osquery does.
pub const DEFAULT_FLAGFILE: &str = "/etc/osquery/osquery.flags.default";

/// `~/.osquery`, where the shell keeps its history, socket and database paths.
pub(crate) fn osquery_home() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".osquery"))
}

/// osquery's flags with the values osqueryi uses before the command line is read.
pub fn shell_defaults() -> Flags {
    let mut flags = Flags::new();
    flags.set_tool_default("disable_events", "true");
    flags.set_tool_default("ignore_table_exceptions", "true");
    flags.set_tool_default("ignore_registry_exceptions", "true");
    // Interactive hashing need not be throttled like the daemon's.
    flags.set_tool_default("hash_delay", "0");
    if let Some(home) = osquery_home() {
        let path = |name: &str| home.join(name).to_string_lossy().into_owned();
        flags.set_tool_default("database_path", &path("shell.db"));
        flags.set_tool_default("extensions_socket", &path("shell.em"));
    }
    flags
}

/// What osqueryi sets after parsing, whatever the command line said (as osquery does).
fn apply_shell_overrides(flags: &mut Flags, interactive: bool) {
    flags.force("disable_logging", "true");
    flags.force("disable_watchdog", "true");
    if !flags.is_set("database_path") {
        // No database was asked for: the shell's is ephemeral.
        flags.set_tool_default("disable_database", "true");
    }
    if !interactive {
        for name in ["disable_events", "disable_caching", "disable_extensions"] {
            flags.set_tool_default(name, "true");
        }
    }
}

/// The rows of `osquery_flags`.
pub fn flag_rows(flags: &Flags) -> Vec<oxquery_table::FlagValue> {
    flags
        .iter()
        .filter(|(def, _)| def.in_flags_table())
        .map(|(def, value)| oxquery_table::FlagValue {
            name: def.name.to_owned(),
            ty: def.ty.name().to_owned(),
            description: def.description.to_owned(),
            default_value: def.default.to_owned(),
            value: value.to_string(),
            shell_only: def.kind == FlagKind::Shell,
        })
        .collect()
}

/// Runs the shell with `args` (without argv\[0\]) and returns the process exit code.
pub fn run(tables: &[&'static TableDef], args: &[String]) -> i32 {
    run_with(tables, args, &|_| {})
}

/// [`run`], calling `configure` with the parsed flags before any query runs, so the
/// binary can hand flag values to crates the shell does not know (tables).
pub fn run_with(tables: &[&'static TableDef], args: &[String], configure: &dyn Fn(&Flags)) -> i32 {
    let command_line = match flags::parse_command_line_with(
        shell_defaults(),
        args,
        Some(Path::new(DEFAULT_FLAGFILE)),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let mut flags = command_line.flags;
    let version = oxquery_engine::instance::VERSION;
    if flags.bool("help") {
        print!("{}", flags::usage("osqueryi", version));
        return 0;
    }
    if flags.bool("version") {
        println!("osqueryi version {version}");
        return 0;
    }
    let interactive = command_line.positional.is_empty()
        && ["query", "query_file", "A", "pack"]
            .iter()
            .all(|f| flags.string(f).is_empty())
        && !flags.bool("L")
        && flags.int("profile") <= 0
        && io::stdin().is_terminal();
    apply_shell_overrides(&mut flags, interactive);
    logger::init(flags.bool("verbose"));
    log::info!("osquery initialized [version={version}]");
    for notice in flags.notices() {
        log::warn!("{}", notice.message);
    }
    // Refused rather than ignored: carrying on would run no query or the wrong one.
    if !flags.string("connect").is_empty() {
        eprintln!("Error: --connect needs extension sockets, which oxquery does not support yet");
        return 1;
    }
    let output = match flags.string("output") {
        "" | "-" => Output::Stdout,
        path => match std::fs::File::create(path) {
            Ok(file) => Output::File(PathBuf::from(path), file),
            Err(e) => {
                eprintln!("Error: cannot open output file {path}: {e}");
                return 1;
            }
        },
    };
    configure(&flags);
    if flags.bool("planner") {
        oxquery_engine::planner::set_enabled(true);
    }
    let filter = TableFilter::from_flags(
        flags.string("enable_tables"),
        flags.string("disable_tables"),
    );
    let mut instance = oxquery_engine::instance::current(None);
    instance.flags = flag_rows(&flags);
    let engine = match Engine::new(tables, &filter, instance) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let mut shell = Shell::with_output(engine, flags.clone(), output);
    match dispatch(&mut shell, &flags, &command_line.positional) {
        Ok(code) => code,
        // `osqueryi ... | head` closes our stdout early; that is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            1
        }
    }
}

fn dispatch(shell: &mut Shell, flags: &Flags, positional: &[String]) -> io::Result<i32> {
    let meta_code = |outcome| match outcome {
        MetaOutcome::Ok => 0,
        MetaOutcome::Error => 1,
        MetaOutcome::Exit(code) => code,
    };
    if flags.bool("L") {
        return shell.meta(".tables").map(meta_code);
    }
    let table = flags.string("A");
    if !table.is_empty() {
        return shell.meta(&format!(".all {table}")).map(meta_code);
    }
    let pack = flags.string("pack");
    if !pack.is_empty() {
        return run_pack(shell, flags, pack);
    }
    let profile = flags.int("profile");
    if profile > 0 {
        let sql = match (flags.string("query"), positional.first()) {
            ("", Some(sql)) => sql.as_str(),
            ("", None) => {
                shell.error_line("Error: --profile needs a query (--query or an argument)")?;
                return Ok(1);
            }
            (sql, _) => sql,
        };
        let delay = flags.int("profile_delay");
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_secs(delay as u64));
        }
        return shell.profile(sql, profile);
    }
    let query = flags.string("query");
    if !query.is_empty() {
        return shell.run_query(query);
    }
    let path = flags.string("query_file");
    if !path.is_empty() {
        return match std::fs::read_to_string(path) {
            Ok(sql) => shell.run_query(&sql),
            Err(e) => {
                shell.error_line(&format!("Error: cannot read query file {path}: {e}"))?;
                Ok(1)
            }
        };
    }
    if let Some(first) = positional.first() {
        return if first.starts_with('.') {
            shell.meta(first).map(meta_code)
        } else {
            shell.run_query(first)
        };
    }
    if io::stdin().is_terminal() {
        shell.repl()
    } else {
        shell.process_input(io::stdin().lock())
    }
}

/// `--pack NAME`: runs every query of that pack from the daemon's config
/// (`--config_path`), printing each result; stops at the first failure.
fn run_pack(shell: &mut Shell, flags: &Flags, pack: &str) -> io::Result<i32> {
    let config = match oxquery_daemon::config::Config::load(flags) {
        Ok(c) => c,
        Err(e) => {
            shell.error_line(&format!("Error reading config: {e}"))?;
            return Ok(1);
        }
    };
    let queries: Vec<_> = config
        .packs_named(pack)
        .flat_map(|p| p.queries.iter())
        .collect();
    if queries.is_empty() {
        shell.error_line(&format!("Error: no pack named {pack} in the configuration"))?;
        return Ok(1);
    }
    for q in queries {
        if shell.run_sql(&q.query)?.is_err() {
            shell.error_line(&format!("Could not execute query {}: {}", q.name, q.query))?;
            return Ok(1);
        }
    }
    Ok(0)
}
