//! osqueryi: the shell. [`run`] parses osquery's flags, builds the engine and dispatches
//! in osquery's order: `-L`/`-A`, `--query`, `--query_file`, the first positional
//! argument (a dot command if it starts with `.`, else SQL), then stdin (the REPL when it
//! is a terminal).

pub mod flags;
mod input;
pub mod logger;
mod meta;
pub mod output;
mod repl;
mod shell;

pub use shell::{MetaOutcome, Shell, SqlError};

use oxquery_engine::{Engine, TableFilter};
use oxquery_table::TableDef;
use std::io::{self, IsTerminal};
use std::path::Path;

/// Read when no `--flagfile` is given, as osquery does.
pub const DEFAULT_FLAGFILE: &str = "/etc/osquery/osquery.flags.default";

/// Runs the shell with `args` (without argv\[0\]) and returns the process exit code.
pub fn run(tables: &[&'static TableDef], args: &[String]) -> i32 {
    let command_line = match flags::parse_command_line(args, Some(Path::new(DEFAULT_FLAGFILE))) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let flags = command_line.flags;
    let version = oxquery_engine::instance::VERSION;
    if flags.bool("help") {
        print!("{}", flags::usage("osqueryi", version));
        return 0;
    }
    if flags.bool("version") {
        println!("osqueryi version {version}");
        return 0;
    }
    logger::init(flags.bool("verbose"));
    log::info!("osquery initialized [version={version}]");
    if flags.bool("planner") {
        oxquery_engine::planner::set_enabled(true);
    }
    let filter = TableFilter::from_flags(
        flags.string("enable_tables"),
        flags.string("disable_tables"),
    );
    let engine = match Engine::new(tables, &filter, oxquery_engine::instance::current(None)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let mut shell = Shell::new(engine, flags.clone());
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

fn dispatch(shell: &mut Shell, flags: &flags::Flags, positional: &[String]) -> io::Result<i32> {
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
