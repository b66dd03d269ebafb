//! `osqueryi`: the table list plus the shell library; the exit code is the shell's.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(oxquery_shell::run(&oxquery_tables::all(), &args));
}
