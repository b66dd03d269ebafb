//! `--database_dump`: every key of every domain, then exit.

use oxquery_flags::{Flags, flag};
use oxquery_store::{Domain, Store};
use std::io::Write as _;
use std::path::Path;

/// Prints `<domain>[<key>]: <value>` for every stored key; returns the exit code.
pub(super) fn database_dump(flags: &Flags) -> i32 {
    let path = Path::new(flags.get(flag::database_path));
    if !path.exists() {
        eprintln!(
            "Cannot open the database {}: it does not exist",
            path.display()
        );
        return 1;
    }
    let store = match Store::open(path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Cannot open the database: {e}");
            return 1;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for domain in Domain::ALL {
        let Ok(pairs) = store.scan(domain, "") else {
            continue;
        };
        for (key, value) in pairs {
            let value = String::from_utf8_lossy(&value);
            if writeln!(out, "{}[{key}]: {value}", domain.name()).is_err() {
                return 0;
            }
        }
    }
    0
}
