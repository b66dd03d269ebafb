//! The `osqueryi` and `osqueryd` binaries share this entry point: like osquery, one
//! program whose role comes from its name (`osqueryd` in argv\[0\] means the daemon),
//! or from `--D` / `--S`.
//!
//! Arguments are read as the bytes the kernel passed (`args_os`): a path may hold any,
//! and the flag parser and the shell say which other arguments must be UTF-8.

pub use oxquery_table::memory::CountingAllocator;

/// The programs' global allocator: mimalloc, which makes and frees the many small
/// values a scan produces far faster than the C library's malloc (see
/// `bench-extensions`), under the counting allocator that per-query memory budgets and
/// `osquery_schedule`'s peak memory read (see `oxquery_table::memory`).
pub type ProgramAllocator = CountingAllocator<mimalloc::MiMalloc>;

/// The one value of [`ProgramAllocator`]: `#[global_allocator] static ALLOC:
/// ProgramAllocator = PROGRAM_ALLOCATOR;`.
pub const PROGRAM_ALLOCATOR: ProgramAllocator = CountingAllocator::new(mimalloc::MiMalloc);

use std::ffi::{OsStr, OsString};
use std::path::Path;

/// Which program to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Shell,
    Daemon,
}

/// osquery's rule: `-S`/`--S` forces the shell, `-D`/`--D` the daemon, otherwise the
/// program name decides.
pub fn role(argv0: &OsStr, args: &[OsString]) -> Role {
    let given = |name: &str| {
        args.iter().take_while(|a| *a != "--").any(|a| {
            *a == *format!("-{name}")
                || *a == *format!("--{name}")
                || *a == *format!("--{name}=true")
        })
    };
    if given("S") {
        return Role::Shell;
    }
    if given("D") {
        return Role::Daemon;
    }
    let name = Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    if name.contains("osqueryd") {
        Role::Daemon
    } else {
        Role::Shell
    }
}

/// Runs the program chosen by [`role`] and returns its exit code.
pub fn main_entry() -> i32 {
    // Before anything opens SQLite (the store, a host database): SQLite's allocator can
    // only be replaced before it initialises.
    oxquery_engine::account_sqlite_memory();
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_default();
    let args: Vec<OsString> = argv.collect();
    let tables = oxquery_tables::all();
    match role(&argv0, &args) {
        Role::Shell => oxquery_shell::run(&tables, oxquery_tables::foreign::tables, &args),
        Role::Daemon => {
            oxquery_daemon::runtime::run(&args, &tables, oxquery_tables::foreign::tables)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::unix::ffi::OsStrExt;

    fn role_of(argv0: &[u8], args: &[&[u8]]) -> Role {
        let args: Vec<OsString> = args
            .iter()
            .map(|a| OsStr::from_bytes(a).to_os_string())
            .collect();
        role(OsStr::from_bytes(argv0), &args)
    }

    #[test]
    fn the_name_or_a_forcing_flag_picks_the_role() {
        assert_eq!(role_of(b"/usr/bin/osqueryd", &[]), Role::Daemon);
        assert_eq!(role_of(b"osqueryi", &[]), Role::Shell);
        assert_eq!(role_of(b"/opt/x/oxquery", &[]), Role::Shell);
        assert_eq!(role_of(b"osqueryi", &[b"--D"]), Role::Daemon);
        assert_eq!(role_of(b"osqueryd", &[b"-S"]), Role::Shell);
        assert_eq!(role_of(b"osqueryi", &[b"--", b"--D"]), Role::Shell);
        // Bytes that are not UTF-8, in the name or the arguments, decide nothing.
        assert_eq!(role_of(b"/opt/\xff/osqueryd", &[b"\xfe"]), Role::Daemon);
        assert_eq!(
            role_of(b"osqueryd\xff", &[b"select \xff", b"--S"]),
            Role::Shell
        );
    }
}
