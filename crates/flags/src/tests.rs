use super::*;
use std::os::unix::ffi::OsStrExt;

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn parse(v: &[&str]) -> Result<CommandLine, FlagError> {
    parse_command_line(&args(v), None)
}

#[test]
fn table_is_sorted_unique_and_defaults_parse() {
    assert!(FLAGS.windows(2).all(|w| w[0].name < w[1].name));
    assert!(ALIASES.windows(2).all(|w| w[0].name < w[1].name));
    for f in FLAGS {
        assert!(
            checked_value(f, f.default).is_ok(),
            "default of {} is not a valid {}",
            f.name,
            f.ty.name()
        );
        assert!(!f.description.is_empty(), "{}", f.name);
        assert!(
            !f.description.ends_with('.'),
            "{}: one line, no period",
            f.name
        );
    }
    for a in ALIASES {
        assert!(find(a.name).is_none(), "alias {} shadows a flag", a.name);
        assert!(find(a.target).is_some(), "alias {} → {}", a.name, a.target);
    }
}

#[test]
fn every_osquery_flag_is_defined() {
    // flags.json lists 284 entries: 272 distinct definitions (augeas_lenses appears once
    // per platform branch), 9 aliases, and the alias header's two macro parameters.
    let osquery = FLAGS
        .iter()
        .filter(|f| f.origin == FlagOrigin::Osquery)
        .count();
    assert_eq!(osquery, 272);
    assert_eq!(ALIASES.len(), 9);
    let other_os = FLAGS.iter().filter(|f| !f.on_linux).count();
    assert_eq!(other_os, 32);
    let shell_only = FLAGS
        .iter()
        .filter(|f| f.origin == FlagOrigin::Osquery && f.kind == FlagKind::Shell)
        .count();
    assert_eq!(shell_only, 17);
    // A few rows checked field by field.
    let (_, d) = find("config_path").unwrap();
    assert_eq!(
        (d.ty, d.default, d.kind),
        (FlagType::Path, "/etc/osquery/osquery.conf", FlagKind::Cli)
    );
    let (_, d) = find("watchdog_level").unwrap();
    assert_eq!((d.ty, d.default), (FlagType::Int32, "0"));
    let (_, d) = find("logger_rotate_size").unwrap();
    assert_eq!((d.ty, d.default), (FlagType::UInt64, "26214400"));
    let (_, d) = find("hash_delay").unwrap();
    assert_eq!((d.ty, d.kind), (FlagType::UInt32, FlagKind::Hidden));
    let (_, d) = find("augeas_lenses").unwrap();
    assert_eq!(d.default, "/opt/osquery/share/osquery/lenses");
    assert!(!find("allow_handle_threads").unwrap().1.on_linux);
}

#[test]
fn aliases_set_their_target() {
    let cl = parse(&[
        "--config_tls_refresh=60",
        "--log_numerics_as_numbers",
        "--db_path",
        "/tmp/db",
        "--socket=/tmp/s.em",
    ])
    .unwrap();
    assert_eq!(cl.flags.get(flag::config_refresh), 60);
    assert!(cl.flags.get(flag::logger_numerics));
    assert_eq!(cl.flags.get(flag::database_path), Path::new("/tmp/db"));
    assert_eq!(
        cl.flags.get(flag::extensions_socket),
        Path::new("/tmp/s.em")
    );
    assert!(cl.flags.is_set(flag::config_refresh));
    // The alias named the flag it stands for.
    assert_eq!(
        resolve("config_tls_refresh").unwrap().1.name,
        "config_refresh"
    );
    let cl = parse(&["--nolog_numerics_as_numbers"]).unwrap();
    assert!(!cl.flags.get(flag::logger_numerics));
}

#[test]
fn gflags_syntax() {
    let cl = parse(&["--json", "select 1", "--separator", ",", "-header=FALSE"]).unwrap();
    assert!(cl.flags.get(flag::json));
    assert!(!cl.flags.get(flag::header));
    assert_eq!(cl.flags.get(flag::separator), ",");
    assert_eq!(cl.positional, vec![OsString::from("select 1")]);
    let cl = parse(&["--noheader", "--", "--json"]).unwrap();
    assert!(!cl.flags.get(flag::header));
    assert!(!cl.flags.get(flag::json));
    assert_eq!(cl.positional, vec![OsString::from("--json")]);
    assert!(parse(&["-h"]).unwrap().flags.get(flag::help));
    assert_eq!(
        parse(&["-A", "uptime"]).unwrap().flags.get(flag::A),
        "uptime"
    );
    assert!(parse(&["-L"]).unwrap().flags.get(flag::L));
    for (text, want) in [
        ("True", true),
        ("TRUE", true),
        ("yes", true),
        ("Y", true),
        ("1", true),
        ("false", false),
        ("False", false),
        ("NO", false),
        ("0", false),
    ] {
        let cl = parse(&[&format!("--verbose={text}")]).unwrap();
        assert_eq!(cl.flags.get(flag::verbose), want, "{text}");
    }
    let cl = parse(&["--watchdog_level", "-1", "--read_max=0x100"]).unwrap();
    assert_eq!(cl.flags.get(flag::watchdog_level), -1);
    assert_eq!(cl.flags.get(flag::read_max), 256);
}

#[test]
fn errors_name_the_flag_and_value() {
    assert_eq!(
        parse(&["--bogus"]).unwrap_err().to_string(),
        "ERROR: unknown command line flag 'bogus'"
    );
    assert_eq!(
        parse(&["--nobogus"]).unwrap_err().to_string(),
        "ERROR: unknown command line flag 'nobogus'"
    );
    assert_eq!(
        parse(&["--header=maybe"]).unwrap_err().to_string(),
        "ERROR: illegal value 'maybe' specified for bool flag 'header'"
    );
    assert_eq!(
        parse(&["--events_max=abc"]).unwrap_err().to_string(),
        "ERROR: illegal value 'abc' specified for uint64 flag 'events_max'"
    );
    assert_eq!(
        parse(&["--watchdog_level", "1.5"]).unwrap_err().to_string(),
        "ERROR: illegal value '1.5' specified for int32 flag 'watchdog_level'"
    );
    assert_eq!(
        parse(&["--pretty_expand=sometimes"])
            .unwrap_err()
            .to_string(),
        "ERROR: illegal value 'sometimes' specified for string flag 'pretty_expand' (expected one of: auto, always, never)"
    );
    assert_eq!(
        parse(&["--query"]).unwrap_err(),
        FlagError::MissingArgument("query".into())
    );
    assert_eq!(
        parse(&["--noseparator"]).unwrap_err(),
        FlagError::NegatedNonBool("separator".into())
    );
    assert_eq!(
        parse(&["--noconfig_tls_refresh"]).unwrap_err(),
        FlagError::NegatedNonBool("config_refresh".into())
    );
}

#[test]
fn integer_values() {
    assert_eq!(parse_value(FlagType::Int32, "-5"), Some(FlagValue::Int(-5)));
    assert_eq!(
        parse_value(FlagType::UInt32, "0x10"),
        Some(FlagValue::UInt(16))
    );
    assert_eq!(parse_value(FlagType::UInt32, "-1"), None);
    assert_eq!(parse_value(FlagType::Int32, "3000000000"), None);
    assert_eq!(parse_value(FlagType::UInt64, "12abc"), None);
    assert_eq!(parse_value(FlagType::UInt64, ""), None);
}

#[test]
fn flagfiles_and_the_default_flagfile() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags");
    std::fs::write(
        &file,
        "# comment\n--separator=;\n\n  --csv  \n--nullvalue=a b\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let cl = parse(&["--flagfile", path, "--nocsv"]).unwrap();
    assert_eq!(cl.flags.get(flag::separator), ";");
    assert_eq!(cl.flags.get(flag::nullvalue), "a b");
    assert!(!cl.flags.get(flag::csv));
    assert_eq!(cl.flags.get(flag::flagfile), file);

    let cl = parse_command_line(&args(&["--separator=x"]), Some(&file)).unwrap();
    assert_eq!(cl.flags.get(flag::separator), "x");
    assert!(cl.flags.get(flag::csv));
    assert_eq!(cl.flags.get(flag::flagfile), file);
    // An explicit --flagfile replaces the default one.
    let other = dir.path().join("other");
    std::fs::write(&other, "--list\n").unwrap();
    let cl =
        parse_command_line(&args(&["--flagfile", other.to_str().unwrap()]), Some(&file)).unwrap();
    assert!(cl.flags.get(flag::list) && !cl.flags.get(flag::csv));

    let missing = dir.path().join("missing");
    let cl = parse_command_line::<&str>(&[], Some(&missing)).unwrap();
    assert_eq!(cl.flags.get(flag::flagfile), Path::new(""));
    assert!(matches!(
        parse(&["--flagfile", missing.to_str().unwrap()]),
        Err(FlagError::Flagfile { .. })
    ));
    // Errors inside a flagfile are the same as on the command line.
    std::fs::write(&other, "--events_max=lots\n").unwrap();
    assert_eq!(
        parse(&["--flagfile", other.to_str().unwrap()])
            .unwrap_err()
            .to_string(),
        "ERROR: illegal value 'lots' specified for uint64 flag 'events_max'"
    );
    // A flagfile including itself stops instead of looping.
    std::fs::write(&other, format!("--flagfile={}\n", other.display())).unwrap();
    assert!(matches!(
        parse(&["--flagfile", other.to_str().unwrap()]),
        Err(FlagError::Flagfile { .. })
    ));
}

#[test]
fn tool_defaults_and_non_default() {
    let mut base = Flags::new();
    base.set_tool_default(flag::disable_events, true);
    let cl = parse_command_line_with(base, &args(&["--json", "--header=true"]), None).unwrap();
    let names: Vec<_> = cl.flags.non_default().map(|(d, _)| d.name).collect();
    assert_eq!(names, vec!["json"]);
    assert!(cl.flags.is_set(flag::header));
    assert!(cl.flags.get(flag::disable_events));

    let mut base = Flags::new();
    base.set_tool_default(flag::disable_events, true);
    let mut cl = parse_command_line_with(base, &args(&["--disable_events=false"]), None).unwrap();
    assert!(
        !cl.flags.get(flag::disable_events),
        "the user wins over a tool default"
    );
    cl.flags.force(flag::disable_logging, true);
    assert!(cl.flags.get(flag::disable_logging));
    let names: Vec<_> = cl.flags.non_default().map(|(d, _)| d.name).collect();
    assert_eq!(names, vec!["disable_events"]);
}

#[test]
fn notices_for_flags_without_effect() {
    let cl = parse(&[
        "--daemonize",
        "--csv",
        "--allow_handle_threads=false",
        "--pack=x",
        "--logger_path=/var/log/osquery/",
        "--config_tls_refresh=5",
    ])
    .unwrap();
    let notices = cl.flags.notices();
    let flags: Vec<&str> = notices.iter().map(|n| n.flag).collect();
    // csv works, pack is refused elsewhere, logger_path is set to its default.
    assert_eq!(
        flags,
        vec!["allow_handle_threads", "config_refresh", "daemonize"]
    );
    assert_eq!(
        notices[2].message,
        "Flag --daemonize only applies to osqueryd; osqueryi does not act on it"
    );
    // The daemon detaches: nothing to say.
    assert!(
        cl.flags
            .notices_for(implemented::Tool::Daemon)
            .iter()
            .all(|n| n.flag != "daemonize")
    );
    assert_eq!(
        notices[0].message,
        "Flag --allow_handle_threads only applies to osquery on other platforms; it has no effect on Linux"
    );
    for name in implemented::IMPLEMENTED
        .iter()
        .chain(implemented::IMPLEMENTED_IN_DAEMON)
        .chain(implemented::KAFKA_FLAGS)
        .chain(implemented::REFUSED)
    {
        assert!(find(name).is_some(), "{name} is not a flag");
    }
}

#[test]
fn usage_lists_visible_flags() {
    let text = usage("osqueryi", "5.0.0");
    assert!(text.starts_with("osquery 5.0.0, your OS as a high-performance relational database\nUsage: osqueryi [OPTION]... [SQL STATEMENT]\n"));
    for def in FLAGS {
        let dash = if def.name.len() == 1 { "-" } else { "--" };
        let shown = text.lines().any(|l| {
            l.trim_start().starts_with(&format!("{dash}{} ", def.name))
                || l.trim_start().starts_with(&format!("{dash}{}=", def.name))
        });
        assert_eq!(shown, def.in_help(), "{}", def.name);
    }
    assert!(text.contains("--flagfile VALUE"));
    assert!(text.contains("--events_max N"));
    assert!(text.contains("--pretty_expand=auto|always|never"));
    // Every osquery Linux flag is acted on, or its status says why not.
    for tool in ["osqueryi", "osqueryd"] {
        let help = usage(tool, "5.0.0");
        assert!(!help.contains("[no effect yet]"), "{tool}: {help}");
        let line = |name: &str| {
            help.lines()
                .find(|l| l.trim_start().starts_with(&format!("--{name} ")))
                .unwrap_or_else(|| panic!("--{name} not in the help"))
                .to_owned()
        };
        assert!(line("install").ends_with("[Windows only]"));
        assert!(line("uninstall").ends_with("[Windows only]"));
        assert_eq!(
            line("augeas_lenses").ends_with("[not in this build: augeas feature]"),
            !cfg!(feature = "augeas"),
            "{tool}"
        );
    }
    // Flags only the daemon acts on say so in the shell's help, and the extension and
    // Thrift families are acted on everywhere else.
    let shell_line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(&format!("--{name} ")))
            .unwrap_or_else(|| panic!("--{name} not in the help"))
            .to_owned()
    };
    assert!(shell_line("config_refresh").ends_with("[osqueryd only]"));
    assert!(shell_line("enable_extensions_watchdog").ends_with("[osqueryd only]"));
    let daemon_help = usage("osqueryd", "5.0.0");
    for help in [&text, &daemon_help] {
        for line in help.lines().map(str::trim_start) {
            if line.starts_with("--extension") || line.starts_with("--thrift_") {
                assert!(!line.ends_with("[no effect yet]"), "{line}");
            }
        }
    }
    // In the daemon's help, flags of a feature the build lacks say so instead.
    let daemon = usage("osqueryd", "5.0.0");
    let kafka = daemon
        .lines()
        .find(|l| l.trim_start().starts_with("--logger_kafka_topic "))
        .unwrap();
    assert_eq!(
        kafka.ends_with("[not in this build: kafka feature]"),
        !cfg!(feature = "kafka"),
        "{kafka}"
    );
    assert!(!text.contains("--watchdog_max_delay"), "hidden");
    assert!(!text.contains("--allow_handle_threads"), "other platforms");
}

#[test]
fn daemon_usage_leaves_out_the_shell_flags_as_osquery_does() {
    let daemon = usage("osqueryd", "5.0.0");
    assert!(
        daemon.contains("\nUsage: osqueryd [OPTION]... \n"),
        "{daemon}"
    );
    assert!(!daemon.contains("shell-only"));
    assert!(!daemon.contains("--csv"));
    assert!(daemon.contains("--config_path VALUE"));
    let shell = usage("osqueryi", "5.0.0");
    assert!(shell.contains("\nosquery shell-only CLI flags:\n"));
    assert!(shell.contains("\n    --csv "));
}

#[test]
fn a_full_build_acts_on_the_flags_of_its_features() {
    use implemented::Tool::{Daemon, Shell};
    let topic = find("logger_kafka_topic").unwrap().1;
    assert_eq!(status(topic, Daemon, Build::Full), Status::Acted);
    // The kafka logger is the daemon's: the shell's page says so in any build.
    assert_eq!(status(topic, Shell, Build::Full), Status::DaemonOnly);
    assert_eq!(status(topic, Shell, Build::This), Status::DaemonOnly);
    assert_eq!(
        status(topic, Daemon, Build::This),
        if cfg!(feature = "kafka") {
            Status::Acted
        } else {
            Status::MissingFeature("kafka")
        }
    );
    // Flags without a feature read the same whichever build is described.
    for def in FLAGS
        .iter()
        .filter(|f| implemented::needed_feature(f.name).is_none())
    {
        for tool in [Shell, Daemon] {
            assert_eq!(
                status(def, tool, Build::Full),
                status(def, tool, Build::This),
                "{}",
                def.name
            );
        }
    }
    assert_eq!(
        Status::MissingFeature("kafka").note().as_deref(),
        Some("not in this build: kafka feature")
    );
    assert_eq!(Status::Acted.note(), None);
}

#[test]
fn each_typed_key_reads_the_row_of_the_same_name() {
    // The keys are generated from the rows; spot-check the first, the last and each type.
    assert_eq!(flag::A.name(), FLAGS[0].name);
    assert_eq!(
        flag::yara_sigurl_authenticate.name(),
        FLAGS[FLAGS.len() - 1].name
    );
    assert_eq!(flag::read_max.def().ty, FlagType::UInt64);
    assert_eq!(flag::watchdog_level.def().ty, FlagType::Int32);
    assert_eq!(flag::thrift_timeout.def().ty, FlagType::UInt32);
    assert_eq!(flag::config_path.def().ty, FlagType::Path);
    assert_eq!(flag::config_path.def().ty.name(), "string");
    assert_eq!(flag::separator.def().ty, FlagType::String);
    assert_eq!(flag::verbose.def().ty, FlagType::Bool);
    let flags = Flags::new();
    assert_eq!(flags.get(flag::read_max), 52_428_800u64);
    assert_eq!(
        flags.get(flag::config_path),
        Path::new("/etc/osquery/osquery.conf")
    );
    assert_eq!(flags.get(flag::logger_syslog_facility), 19i32);
    assert!(flags.get(flag::tls_session_reuse));
}

#[test]
fn startup_only_options_are_config_options_the_daemon_acts_on() {
    for name in implemented::STARTUP_ONLY {
        let (_, def) = find(name).unwrap_or_else(|| panic!("{name} is not a flag"));
        assert_eq!(
            def.kind,
            FlagKind::Config,
            "{name} cannot come from a config"
        );
        assert!(
            implemented::is_implemented_in(name, implemented::Tool::Daemon),
            "{name}"
        );
    }
}

/// `bytes` as one argument, as the kernel hands it over.
fn os(bytes: &[u8]) -> OsString {
    OsStr::from_bytes(bytes).to_os_string()
}

#[test]
fn path_flags_keep_bytes_that_are_not_utf8() {
    let cl = parse_command_line(
        &[
            os(b"--logger_path=/tmp/\xff"),
            os(b"--config_path"),
            os(b"/tmp/a\xfe.conf"),
            os(b"--pidfile=/run/\xc3\xa9"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(
        cl.flags.get(flag::logger_path).as_os_str().as_bytes(),
        b"/tmp/\xff"
    );
    assert_eq!(
        cl.flags.get(flag::config_path).as_os_str().as_bytes(),
        b"/tmp/a\xfe.conf"
    );
    assert_eq!(cl.flags.get(flag::pidfile), Path::new("/run/é"));
    // Listings show the replacement character; the value keeps the byte.
    assert_eq!(
        cl.flags.value(flag::logger_path).to_string(),
        "/tmp/\u{fffd}"
    );
    // A positional argument keeps its bytes too: the shell decides what it accepts.
    let cl = parse_command_line(&[os(b"--json"), os(b"select \xff")], None).unwrap();
    assert_eq!(cl.positional, vec![os(b"select \xff")]);
}

#[test]
fn other_flags_refuse_bytes_that_are_not_utf8_by_name() {
    let err = parse_command_line(&[os(b"--query=select \xff")], None).unwrap_err();
    assert_eq!(
        err,
        FlagError::NotUtf8 {
            name: "query".into(),
            value: "select \\xff".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "ERROR: illegal value 'select \\xff' specified for string flag 'query': not valid UTF-8"
    );
    // The same through the next argument, for a number, and for an alias.
    assert!(matches!(
        parse_command_line(&[os(b"--separator"), os(b"\x80")], None),
        Err(FlagError::NotUtf8 { name, .. }) if name == "separator"
    ));
    assert!(matches!(
        parse_command_line(&[os(b"--read_max=1\xff")], None),
        Err(FlagError::NotUtf8 { name, .. }) if name == "read_max"
    ));
    // A flag name that is not UTF-8 is an unknown flag, shown escaped.
    assert_eq!(
        parse_command_line(&[os(b"--\xffx=1")], None)
            .unwrap_err()
            .to_string(),
        "ERROR: unknown command line flag '\\xffx'"
    );
}

#[test]
fn flagfiles_are_read_as_bytes_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags");
    std::fs::write(&file, b"--logger_path=/var/\xfflog\r\n--csv\n".as_slice()).unwrap();
    let cl =
        parse_command_line(&[OsString::from("--flagfile"), file.clone().into()], None).unwrap();
    assert_eq!(
        cl.flags.get(flag::logger_path).as_os_str().as_bytes(),
        b"/var/\xfflog"
    );
    assert!(cl.flags.get(flag::csv));
    std::fs::write(&file, b"--nullvalue=\xff\n".as_slice()).unwrap();
    assert!(matches!(
        parse_command_line(&[OsString::from("--flagfile"), file.clone().into()], None),
        Err(FlagError::NotUtf8 { name, .. }) if name == "nullvalue"
    ));
    // A flagfile path that is not UTF-8 is opened by its bytes.
    let odd = dir.path().join(OsStr::from_bytes(b"fl\xe9gs"));
    std::fs::write(&odd, "--list\n").unwrap();
    let cl = parse_command_line(&[OsString::from("--flagfile"), odd.clone().into()], None).unwrap();
    assert!(cl.flags.get(flag::list));
    assert_eq!(cl.flags.get(flag::flagfile), odd);
    // /dev/zero is not a flagfile: refused once the bound is passed, not read forever.
    let err = parse(&["--flagfile=/dev/zero"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ERROR: cannot read flagfile '/dev/zero': larger than 1024 KiB, which no flagfile is"
    );
}

#[test]
fn tool_defaults_take_paths_and_check_choices() {
    let mut flags = Flags::new();
    let odd = PathBuf::from(OsStr::from_bytes(b"/home/\xff/.osquery/shell.db"));
    flags.set_tool_default(flag::database_path, odd.clone());
    assert_eq!(flags.get(flag::database_path), odd);
    assert!(!flags.is_set(flag::database_path));
    flags.set_tool_default(flag::pretty_expand, "never".to_owned());
    assert_eq!(flags.get(flag::pretty_expand), "never");
    let refused = std::panic::catch_unwind(|| {
        Flags::new().force(flag::pretty_expand, "sometimes".to_owned());
    });
    assert!(
        refused.is_err(),
        "a forced value outside the choices is a bug"
    );
}

#[test]
fn flags_that_cannot_act_say_why_in_help_and_notices() {
    let cl = parse(&[
        "--disable_memory",
        "--keep_container_worker_open",
        "--dns_resolver_refresh_interval=5",
    ])
    .unwrap();
    let notices = cl.flags.notices_for(implemented::Tool::Daemon);
    let messages: Vec<&str> = notices.iter().map(|n| n.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Flag --disable_memory is not needed in oxquery: oxquery never reads physical memory",
            "Flag --dns_resolver_refresh_interval is not needed in oxquery: each DNS lookup reads the current resolv.conf",
            "Flag --keep_container_worker_open is not needed in oxquery: no worker: tables read through /proc/PID/root",
        ]
    );
    for tool in [implemented::Tool::Shell, implemented::Tool::Daemon] {
        assert_eq!(
            help_status("disable_memory", tool).as_deref(),
            Some("[not needed: oxquery never reads physical memory]")
        );
        // Acted on since the yara tables fetch sigurl rules.
        assert_eq!(help_status("yara_sigurl_authenticate", tool), None);
        assert_eq!(
            help_status("install", tool).as_deref(),
            Some("[Windows only]")
        );
        assert_eq!(help_status("yara_delay", tool), None);
    }
    assert_eq!(
        help_status("daemonize", implemented::Tool::Shell).as_deref(),
        Some("[osqueryd only]")
    );
    assert_eq!(help_status("daemonize", implemented::Tool::Daemon), None);
    // Every table of reasons names real flags, each in one table only.
    let explained: Vec<&str> = implemented::NOT_NEEDED
        .iter()
        .chain(implemented::NEEDS_FEATURE)
        .map(|(n, _)| *n)
        .chain(implemented::WINDOWS_ONLY.iter().copied())
        .chain(implemented::AUGEAS_FLAGS.iter().copied())
        .collect();
    for name in &explained {
        assert!(find(name).is_some(), "{name} is not a flag");
        assert!(
            !implemented::IMPLEMENTED.contains(name)
                && !implemented::IMPLEMENTED_IN_DAEMON.contains(name),
            "{name} is both acted on and explained"
        );
    }
}

#[test]
fn windows_service_switches_answer_as_osquery_on_linux() {
    assert_eq!(implemented::windows_service_request(false, false), None);
    assert_eq!(
        implemented::windows_service_request(true, false),
        Some((
            vec![
                "The --install service flag only applies to Windows platforms".to_owned(),
                "Unable to install the osqueryd service".to_owned()
            ],
            1
        ))
    );
    let (lines, code) = implemented::windows_service_request(false, true).unwrap();
    assert_eq!(code, 1);
    assert_eq!(lines[1], "Unable to uninstall the osqueryd service");
}
