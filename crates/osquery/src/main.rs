//! `osqueryi` (or `osqueryd`, when named so or given `--D`).

fn main() {
    std::process::exit(oxquery::main_entry());
}
