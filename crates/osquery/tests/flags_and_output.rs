//! osqueryi as a process: the full flag system (osquery_flags, aliases, validation,
//! warnings for flags without effect, --help), the dot commands added with it, typed
//! JSON, and pretty output fitted to an 80-column terminal.

mod shell_support;

use shell_support::{BIN, ok, run, run_in};
use std::process::Command;

/// `value` of one flag in `osquery_flags`, as a list-mode line.
fn flag_value(args: &[&str], name: &str) -> String {
    let sql = format!("select value from osquery_flags where name = '{name}'");
    let mut all = vec!["--list", "--noheader"];
    all.extend_from_slice(args);
    all.push(&sql);
    let r = run(&all);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
}

// ---- osquery_flags ----

#[test]
fn osquery_flags_shows_command_line_values() {
    assert_eq!(flag_value(&["--csv"], "csv"), "true\n");
    assert_eq!(flag_value(&[], "csv"), "false\n");
    assert_eq!(flag_value(&["--separator", "::"], "separator"), "::\n");
    assert_eq!(flag_value(&["--read_max=1024"], "read_max"), "1024\n");
    // Aliases set their target.
    assert_eq!(
        flag_value(&["--log_numerics_as_numbers=True"], "logger_numerics"),
        "true\n"
    );
    // The shell's own settings, as osqueryi forces them.
    assert_eq!(flag_value(&[], "disable_watchdog"), "true\n");
    assert_eq!(flag_value(&[], "disable_database"), "true\n");
    assert_eq!(flag_value(&[], "disable_events"), "true\n");

    let out = ok(&[
        "--csv",
        "select name, type, default_value, value, shell_only from osquery_flags where name in ('csv', 'events_max', 'config_path', 'watchdog_level')",
    ]);
    assert_eq!(
        out,
        "name,type,default_value,value,shell_only\n\
         config_path,string,/etc/osquery/osquery.conf,/etc/osquery/osquery.conf,0\n\
         csv,bool,false,true,1\n\
         events_max,uint64,50000,50000,0\n\
         watchdog_level,int32,0,0,0\n"
    );
    // Hidden flags are rows too; other platforms' flags and aliases are not.
    let out = ok(&[
        "--list",
        "--noheader",
        "select name from osquery_flags where name in ('utc', 'allow_handle_threads', 'config_tls_refresh', 'flagfile')",
    ]);
    assert_eq!(out, "utc\n");
}

#[test]
fn osquery_flags_schema_matches_osquery() {
    assert_eq!(
        ok(&[".schema osquery_flags"]),
        "CREATE TABLE osquery_flags(`name` TEXT, `type` TEXT, `description` TEXT, `default_value` TEXT, `value` TEXT, `shell_only` INTEGER);\n"
    );
}

// ---- validation and warnings ----

#[test]
fn bad_values_name_flag_and_value() {
    let r = run(&["--events_max=abc", "select 1"]);
    assert_eq!((r.code, r.stdout.as_str()), (1, ""));
    assert_eq!(
        r.stderr,
        "ERROR: illegal value 'abc' specified for uint64 flag 'events_max'\n"
    );
    let r = run(&["--watchdog_level", "x", "select 1"]);
    assert_eq!(
        r.stderr,
        "ERROR: illegal value 'x' specified for int32 flag 'watchdog_level'\n"
    );
    let r = run(&["--pretty_expand=wide", "select 1"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "ERROR: illegal value 'wide' specified for string flag 'pretty_expand' (expected one of: auto, always, never)\n"
    );
    let r = run(&["--not_an_osquery_flag=1", "select 1"]);
    assert_eq!(
        r.stderr,
        "ERROR: unknown command line flag 'not_an_osquery_flag'\n"
    );
}

/// The messages of glog info lines about flags (`I... ] Flag --x ...`).
fn flag_notices(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with('I'))
        .map(|l| l.split_once("] ").expect("glog line").1)
        .filter(|m| m.starts_with("Flag --"))
        .collect()
}

#[test]
fn flags_without_effect_are_accepted_and_mentioned_at_verbose_level() {
    let args = [
        "--daemonize",
        "--config_tls_refresh=30",
        "--allow_handle_threads=false",
        "--logger_path=/var/log/osquery/",
        "--list",
        "select 1 as a",
    ];
    let r = run(&args);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "a\n1\n", "")
    );
    let mut verbose = args.to_vec();
    verbose.insert(0, "--verbose");
    let r = run(&verbose);
    assert_eq!((r.code, r.stdout.as_str()), (0, "a\n1\n"), "{}", r.stderr);
    assert_eq!(
        flag_notices(&r.stderr),
        [
            "Flag --allow_handle_threads only applies to osquery on other platforms; it has no effect on Linux",
            "Flag --config_refresh only applies to osqueryd; osqueryi does not act on it",
            "Flag --daemonize only applies to osqueryd; osqueryi does not act on it",
        ]
    );
    // Implemented flags, and flags set to what the shell uses anyway, say nothing.
    ok(&["--disable_events", "--csv", "--verbose=false", "select 1"]);
}

#[test]
fn experiment_list_names_each_experiment_it_cannot_find() {
    let r = run(&[
        "--experiment_list=linuxevents,bogus",
        "--list",
        "select 1 as a",
    ]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "a\n1\n"), "{}", r.stderr);
    let errors: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with('E'))
        .map(|l| l.split_once("] ").expect("glog line").1)
        .collect();
    assert_eq!(
        errors,
        [
            "The following experiment was not found: bogus",
            "The following experiment was not found: linuxevents",
        ],
        "{}",
        r.stderr
    );
}

#[test]
fn install_and_uninstall_say_they_are_windows_only() {
    for (flag, verb) in [("--install", "install"), ("--uninstall", "uninstall")] {
        let r = run(&[flag, "select 1"]);
        assert_eq!(
            (r.code, r.stdout.as_str(), r.stderr.as_str()),
            (
                1,
                "",
                format!(
                    "The {flag} service flag only applies to Windows platforms\n\
                     Unable to {verb} the osqueryd service\n"
                )
                .as_str()
            )
        );
    }
}

#[test]
fn flagfile_values_reach_osquery_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags");
    std::fs::write(&path, "# daemon settings\n--utc=true\n--separator=;\n").unwrap();
    let path = path.to_str().unwrap();
    assert_eq!(
        flag_value(&["--flagfile", path], "separator"),
        ";\n",
        "flagfile"
    );
    // gflags' own --flagfile is not an osquery flag, but .show names it.
    assert_eq!(flag_value(&["--flagfile", path], "flagfile"), "");
    assert!(ok(&["--flagfile", path, ".show"]).contains(&format!("     Flagfile: {path}\n")));
    std::fs::write(dir.path().join("bad"), "--events_max=many\n").unwrap();
    let r = run(&[
        "--flagfile",
        dir.path().join("bad").to_str().unwrap(),
        "select 1",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "ERROR: illegal value 'many' specified for uint64 flag 'events_max'\n"
    );
}

#[test]
fn help_lists_every_visible_flag_with_default_and_meaning() {
    let out = ok(&["--help"]);
    for line in [
        "osquery command line flags:",
        "osquery configuration options (set by config or CLI flags):",
        "osquery shell-only CLI flags:",
    ] {
        assert!(out.contains(&format!("{line}\n")), "{line}");
    }
    let has = |flag: &str, rest: &str| {
        out.lines()
            .any(|l| l.trim_start().starts_with(flag) && l.contains(rest))
    };
    // The shell says which flags only the daemon acts on, and which none acts on yet.
    assert!(has(
        "--tls_hostname VALUE",
        "(type: string, default: \"\") [osqueryd only]"
    ));
    assert!(has("--daemonize ", "[osqueryd only]"));
    // Every osquery Linux flag is acted on or says why not: none "has no effect yet".
    assert!(!out.contains("[no effect yet]"), "{out}");
    assert!(has("--install ", "[Windows only]"));
    assert!(has("--uninstall ", "[Windows only]"));
    // Acted on in both programs: no status at all.
    assert!(out.lines().any(|l| {
        l.trim_start().starts_with("--enable_file_events ")
            && l.ends_with("(type: bool, default: false)")
    }));
    assert!(has("--events_max N", "(type: uint64, default: 50000)"));
    assert!(has("--planner ", "constraints and columns"));
    assert!(has(
        "--json_typed ",
        "integers and doubles as numbers and NULL as null"
    ));
    assert!(has(
        "--pretty_expand=auto|always|never",
        "default: \"auto\""
    ));
    assert!(has("--flagfile VALUE", "one per line"));
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("--pack VALUE")
                && l.ends_with("(type: string, default: \"\")"))
    );
    assert!(
        !out.contains("--watchdog_max_delay"),
        "hidden flags are not listed"
    );
    assert!(
        !out.contains("--allow_handle_threads"),
        "nor other platforms'"
    );
    // Every visible flag of osquery is there: 6 sample kinds is not proof, so count.
    let listed = out.lines().filter(|l| l.starts_with("    -")).count();
    assert!(listed > 200, "{listed} flags listed");
}

#[test]
fn planner_shows_constraints_and_columns() {
    let r = run(&["--planner", "select days from uptime where days >= 0"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stderr,
        "[planner] uptime: constraints [] columns [days]\n"
    );
    let r = run(&["--planner", "select pid from processes where pid = 1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("[planner] processes: constraints [pid = \"1\"] columns [pid]"),
        "{}",
        r.stderr
    );
}

// ---- refused features ----

#[test]
fn pack_runs_every_query_of_a_config_pack() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("osquery.conf");
    std::fs::write(
        &config,
        r#"{"packs": {"incident": {"queries": {
            "a": {"query": "select 1 as one", "interval": 60},
            "b": {"query": "select 'x' as two", "interval": 60}}}}}"#,
    )
    .unwrap();
    let config_flag = format!("--config_path={}", config.display());
    let r = run(&["--list", "--noheader", &config_flag, "--pack", "incident"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "1\nx\n"), "{}", r.stderr);
    let r = run(&[&config_flag, "--pack", "nope"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .ends_with("Error: no pack named nope in the configuration\n"),
        "{}",
        r.stderr
    );
    std::fs::write(
        &config,
        r#"{"packs": {"bad": {"queries": {"q": {"query": "select * from no_such_table", "interval": 60}}}}}"#,
    )
    .unwrap();
    let r = run(&[&config_flag, "--pack", "bad"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .ends_with("Could not execute query q: select * from no_such_table\n"),
        "{}",
        r.stderr
    );
}

// ---- dot commands ----

#[test]
fn features_lists_disable_and_enable_flags() {
    let out = ok(&[".features"]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"disable_events: true"), "{out}");
    assert!(lines.contains(&"enable_file_events: false"), "{out}");
    assert!(lines.contains(&"disable_audit: true"), "{out}");
    for line in &lines {
        let (name, value) = line.split_once(": ").unwrap();
        assert!(
            name.starts_with("disable_") || name.starts_with("enable_"),
            "{line}"
        );
        assert!(value == "true" || value == "false", "{line}");
    }
    assert!(
        !out.contains("disable_endpointsecurity"),
        "not a Linux flag"
    );
    // Reported as set, with a note at verbose level that only the daemon acts on it.
    let r = run(&["--verbose", "--enable_numeric_monitoring", ".features"]);
    assert!(
        r.stdout.contains("enable_numeric_monitoring: true\n"),
        "{}",
        r.stdout
    );
    assert_eq!(
        flag_notices(&r.stderr),
        ["Flag --enable_numeric_monitoring only applies to osqueryd; osqueryi does not act on it"]
    );
}

#[test]
fn show_lists_settings_and_flags_changed_from_the_shell_defaults() {
    let home = tempfile::tempdir().unwrap();
    let r = run_in(
        home.path(),
        &["--json_typed", "--events_max=7", ".show"],
        "",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let socket = home.path().join(".osquery/shell.em");
    for part in [
        "\nGeneral settings:\n     Flagfile: \n       Config: filesystem (/etc/osquery/osquery.conf)\n       Logger: filesystem (/var/log/osquery/)\n  Distributed: tls\n     Database: ephemeral\n   Extensions: core\n",
        &format!("       Socket: {}\n", socket.display()),
        "         mode: json\n",
        "       expand: auto\n",
        "\nNon-default flags/options:\n  events_max: 7\n  json_typed: true\n",
    ] {
        assert!(r.stdout.contains(part), "{part:?} in {}", r.stdout);
    }
    assert!(r.stdout.ends_with("  json_typed: true\n"), "{}", r.stdout);
}

#[test]
fn socket_and_timeout() {
    let home = tempfile::tempdir().unwrap();
    let r = run_in(
        home.path(),
        &[],
        ".socket\n.timeout 250\n.timeo 0\n.time 5\n",
    );
    assert_eq!(r.code, 1, "`.time` is too short to mean .timeout or .timer");
    assert_eq!(
        r.stdout,
        format!("{}\n", home.path().join(".osquery/shell.em").display())
    );
    assert_eq!(
        r.stderr,
        "Error: unknown command or invalid arguments:  \"time\". Enter \".help\" for help\n"
    );
    let r = run_in(
        home.path(),
        &["--extensions_socket=/tmp/o.em", ".socket"],
        "",
    );
    assert_eq!(r.stdout, "/tmp/o.em\n");
}

#[test]
fn types_describes_columns_without_running() {
    assert_eq!(
        ok(&[".types select 1 as a, 'x' as b, 2.5 as c, x'00' as d, days, null as n from uptime"]),
        "+------+---------+\n\
         | name | type    |\n\
         +------+---------+\n\
         | a    | INTEGER |\n\
         | b    | TEXT    |\n\
         | c    | DOUBLE  |\n\
         | d    | BLOB    |\n\
         | days | INTEGER |\n\
         | n    | UNKNOWN |\n\
         +------+---------+\n"
    );
    // From stdin the SQL accumulates over lines like a statement; the mode applies.
    let home = tempfile::tempdir().unwrap();
    let r = run_in(
        home.path(),
        &["--list"],
        ".types select total_seconds,\n  'it''s;' as quoted\n  from uptime;\nselect 1 as after;\n.ty select bogus from uptime;\n",
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "name|type\ntotal_seconds|BIGINT\nquoted|TEXT\nafter\n1\n"
    );
    assert_eq!(r.stderr, "Error: no such column: bogus\n");
}

#[test]
fn output_writes_results_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.txt");
    let p = path.to_str().unwrap();
    assert_eq!(ok(&["--output", p, "--csv", "select 1 as a"]), "");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\n1\n");
    // `-` is stdout.
    assert_eq!(ok(&["--output=-", "--csv", "select 1 as a"]), "a\n1\n");
    let r = run(&["--output", "/nonexistent/dir/out", "select 1"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("Error: cannot open output file /nonexistent/dir/out: "),
        "{}",
        r.stderr
    );
}

#[test]
fn profile_runs_silently() {
    assert_eq!(ok(&["--profile", "3", "select * from uptime"]), "");
    assert_eq!(ok(&["--profile=2", "--query", "select 1"]), "");
    let r = run(&["--profile", "2", "select * from nope"]);
    assert_eq!((r.code, r.stdout.as_str()), (1, ""));
    assert_eq!(r.stderr, "Error: no such table: nope\n");
}

// ---- typed JSON ----

const ROW: &str = "select 1 as a, 'x' as b, NULL as c, 1.5 as d, -7 as e, '12' as f, 1e300 as g";

#[test]
fn json_stays_all_strings() {
    assert_eq!(
        ok(&["--json", ROW]),
        "[\n  {\"a\":\"1\",\"b\":\"x\",\"c\":\"\",\"d\":\"1.5\",\"e\":\"-7\",\"f\":\"12\",\"g\":\"1.0e+300\"}\n]\n"
    );
}

#[test]
fn json_typed_keeps_numbers_and_null() {
    // Doubles are written as osquery's writer writes them (as with --logger_numerics).
    assert_eq!(
        ok(&["--json_typed", ROW]),
        "[\n  {\"a\":1,\"b\":\"x\",\"c\":null,\"d\":1.5,\"e\":-7,\"f\":\"12\",\"g\":1e300}\n]\n"
    );
    // Same with --json given too, and the nullvalue does not replace null.
    assert_eq!(
        ok(&[
            "--json",
            "--json_typed",
            "--nullvalue=N",
            "select NULL as n, 9223372036854775807 as m"
        ]),
        "[\n  {\"m\":9223372036854775807,\"n\":null}\n]\n"
    );
    assert_eq!(
        ok(&[
            "--json_pretty",
            "--json_typed",
            "select 2 as b, 0.25 as a union all select NULL, 'z'"
        ]),
        "[\n  {\n    \"a\": 0.25,\n    \"b\": 2\n  },\n  {\n    \"a\": \"z\",\n    \"b\": null\n  }\n]\n"
    );
    assert_eq!(ok(&["--json_typed", "select 1 where 0"]), "[\n\n]\n");
    // Values from a table keep their column's type.
    let out = ok(&["--json_typed", "select days, total_seconds from uptime"]);
    assert!(out.starts_with("[\n  {\"days\":"), "{out}");
    assert!(!out.contains("\"days\":\""), "{out}");
}

// ---- pretty output and terminals ----

#[test]
fn piped_pretty_output_is_osquerys_even_when_wide() {
    let wide = format!(
        "select '{}' as w, 'a' || char(10) || 'b' as nl",
        "x".repeat(150)
    );
    let out = ok(&[&wide]);
    // osquery counts the newline as one character of the cell.
    let rule = format!("+{}+-----+\n", "-".repeat(152));
    assert_eq!(
        out,
        format!(
            "{rule}| w{} | nl  |\n{rule}| {} | a\nb |\n{rule}",
            " ".repeat(149),
            "x".repeat(150)
        )
    );
    assert_eq!(ok(&["--pretty_expand=never", &wide]), out);
}

#[test]
fn expanded_blocks_when_forced() {
    assert_eq!(
        ok(&[
            "--pretty_expand=always",
            "select 1 as a, 'x' || char(9) || 'y' as longer union all select 2, NULL"
        ]),
        "-[ RECORD 1 ]\n\
         a      | 1\n\
         longer | x\\ty\n\
         -[ RECORD 2 ]\n\
         a      | 2\n\
         longer | \n"
    );
    // Modes other than pretty are untouched.
    assert_eq!(
        ok(&["--pretty_expand=always", "--csv", "select 1 as a"]),
        "a\n1\n"
    );
    let home = tempfile::tempdir().unwrap();
    let r = run_in(
        home.path(),
        &[],
        ".expand always\nselect 1 as a;\n.expand never\nselect 2 as b;\n.expand sideways\n",
    );
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        "-[ RECORD 1 ]\na | 1\n+---+\n| b |\n+---+\n| 2 |\n+---+\n"
    );
    assert_eq!(
        r.stderr,
        "Error: expand should be one of: auto always never\n"
    );
}

/// osqueryi in a pty of 80 columns, sized by `stty` before it starts.
fn spawn_80_columns(home: &std::path::Path, args: &str) -> rexpect::session::PtySession {
    use rexpect::reader::Options;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("stty cols 80 rows 24 && exec {BIN} {args}"))
        .env("HOME", home)
        .env("TERM", "xterm");
    rexpect::session::spawn_with_options(
        cmd,
        Options::new()
            .timeout_ms(Some(15_000))
            .strip_ansi_escape_codes(true),
    )
    .expect("spawn in a pty")
}

#[test]
fn wide_tables_fit_an_80_column_terminal() {
    let home = tempfile::tempdir().unwrap();
    let mut p = spawn_80_columns(home.path(), "");
    p.exp_string("osquery> ").unwrap();
    // Narrow: the usual box, with control characters escaped.
    p.send_line("select 1 as n, 'a' || char(9) || 'b' || char(10) || 'c' as v;")
        .unwrap();
    p.exp_string("| 1 | a\\tb\\nc |").unwrap();
    p.exp_string("osquery> ").unwrap();
    // Wide: one block per row, long values folded under the value column, and a note.
    let long = "y".repeat(100);
    p.send_line(&format!(
        "select 1 as id, '{long}' as long_value, 'tail' as t;"
    ))
    .unwrap();
    p.exp_string("-[ RECORD 1 ]").unwrap();
    p.exp_string(&format!(
        "id         | 1\r\nlong_value | {}\r\n           | {}\r\nt          | tail",
        "y".repeat(67),
        "y".repeat(33)
    ))
    .unwrap();
    p.exp_string(
        "Note: too wide, shown as blocks (force a mode: --pretty_expand=never|always)\r\n",
    )
    .unwrap();
    p.exp_string("osquery> ").unwrap();
    // Forced back to the box.
    p.send_line(".expand never").unwrap();
    p.exp_string("osquery> ").unwrap();
    p.send_line(&format!("select '{long}' as w;")).unwrap();
    p.exp_string(&format!("| {long} |")).unwrap();
    p.exp_string("osquery> ").unwrap();
    p.send_line(".quit").unwrap();
    p.exp_eof().unwrap();
}
