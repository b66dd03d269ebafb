//! `osqueryi`: the table list plus the shell library; the exit code is the shell's.

use oxquery_flags::Flags;

/// Flags that tables act on; the shell does not know the tables crate.
fn configure_tables(flags: &Flags) {
    let read_max = u64::try_from(flags.int("read_max")).unwrap_or(u64::MAX);
    oxquery_tables::files::hash::set_read_max(read_max);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(oxquery_shell::run_with(
        &oxquery_tables::all(),
        &args,
        &configure_tables,
    ));
}
