//! `osqueryd`: the same program as `osqueryi`, started as the daemon.

fn main() {
    std::process::exit(oxquery::main_entry());
}
