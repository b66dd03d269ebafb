//! The `osqueryi` and `osqueryd` binaries share this entry point: like osquery, one
//! program whose role comes from its name (`osqueryd` in argv\[0\] means the daemon),
//! or from `--D` / `--S`.

/// Which program to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Shell,
    Daemon,
}

/// osquery's rule: `-S`/`--S` forces the shell, `-D`/`--D` the daemon, otherwise the
/// program name decides.
pub fn role(argv0: &str, args: &[String]) -> Role {
    let given = |name: &str| {
        args.iter().take_while(|a| a.as_str() != "--").any(|a| {
            a == &format!("-{name}") || a == &format!("--{name}") || a == &format!("--{name}=true")
        })
    };
    if given("S") {
        return Role::Shell;
    }
    if given("D") {
        return Role::Daemon;
    }
    let name = std::path::Path::new(argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains("osqueryd") {
        Role::Daemon
    } else {
        Role::Shell
    }
}

/// Runs the program chosen by [`role`] and returns its exit code.
pub fn main_entry() -> i32 {
    let mut argv = std::env::args();
    let argv0 = argv.next().unwrap_or_default();
    let args: Vec<String> = argv.collect();
    let tables = oxquery_tables::all();
    match role(&argv0, &args) {
        Role::Shell => oxquery_shell::run(&tables, &args),
        Role::Daemon => oxquery_daemon::runtime::run(&args, &tables),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_or_a_forcing_flag_picks_the_role() {
        let none: Vec<String> = Vec::new();
        assert_eq!(role("/usr/bin/osqueryd", &none), Role::Daemon);
        assert_eq!(role("osqueryi", &none), Role::Shell);
        assert_eq!(role("/opt/x/oxquery", &none), Role::Shell);
        assert_eq!(role("osqueryi", &["--D".to_owned()]), Role::Daemon);
        assert_eq!(role("osqueryd", &["-S".to_owned()]), Role::Shell);
        assert_eq!(
            role("osqueryi", &["--".to_owned(), "--D".to_owned()]),
            Role::Shell
        );
    }
}
