//! osqueryi driven as a process: byte-exact output of every mode, dot commands, input
//! handling, flags and exit codes. Queries use literals or `uptime` so they do not
//! depend on the machine.

mod shell_support;

use shell_support::{BIN, ok, run, run_with_input};
use std::io::Read;
use std::process::{Command, Stdio};

/// The values of `select 1 as a, 'x' as b, NULL as c, 1.5 as d`.
const ROW: &str = "select 1 as a, 'x' as b, NULL as c, 1.5 as d";

// ---- output modes ----

#[test]
fn pretty_is_the_default() {
    assert_eq!(
        ok(&[ROW]),
        "+---+---+---+-----+\n\
         | a | b | c | d   |\n\
         +---+---+---+-----+\n\
         | 1 | x |   | 1.5 |\n\
         +---+---+---+-----+\n"
    );
    assert_eq!(ok(&["select 0"]), "+---+\n| 0 |\n+---+\n| 0 |\n+---+\n");
    // Widths count code points.
    assert_eq!(
        ok(&["select 'héé' as n union all select 'abcd'"]),
        "+------+\n| n    |\n+------+\n| héé  |\n| abcd |\n+------+\n"
    );
}

#[test]
fn json_compact() {
    assert_eq!(ok(&["--json", "select 0"]), "[\n  {\"0\":\"0\"}\n]\n");
    assert_eq!(
        ok(&["--json", ROW]),
        "[\n  {\"a\":\"1\",\"b\":\"x\",\"c\":\"\",\"d\":\"1.5\"}\n]\n"
    );
    // Keys sorted, rows separated by ",\n".
    assert_eq!(
        ok(&["--json", "select 2 as b, 1 as a union all select 4, 3"]),
        "[\n  {\"a\":\"1\",\"b\":\"2\"},\n  {\"a\":\"3\",\"b\":\"4\"}\n]\n"
    );
    assert_eq!(ok(&["--json", "select 1 where 0"]), "[\n\n]\n");
}

#[test]
fn osquery_registry_lists_the_shells_config_plugin_and_sql() {
    // The shell runs no logger, distributed or enroll plugin: only these are its own.
    let sql = "select registry, name, owner_uuid, active from osquery_registry \
               where registry != 'table' and registry not like 'event_%'";
    assert_eq!(
        ok(&["--flagfile=/dev/null", "--csv", sql]),
        "registry,name,owner_uuid,active\nconfig,filesystem,0,1\nsql,sql,0,1\n"
    );
}

#[test]
fn json_pretty() {
    assert_eq!(
        ok(&["--json_pretty", "select 0"]),
        "[\n  {\n    \"0\": \"0\"\n  }\n]\n"
    );
    assert_eq!(
        ok(&[
            "--json_pretty",
            "select 2 as b, 1 as a union all select 4, 3"
        ]),
        "[\n  {\n    \"a\": \"1\",\n    \"b\": \"2\"\n  },\n  {\n    \"a\": \"3\",\n    \"b\": \"4\"\n  }\n]\n"
    );
    assert_eq!(ok(&["--json_pretty", "select 1 where 0"]), "[]\n");
}

#[test]
fn json_escaping() {
    let sql = "select 'q\"b\\s' || char(1) || char(9) || char(10) || char(127) || 'é€😀' as k";
    assert_eq!(
        ok(&["--json", sql]),
        "[\n  {\"k\":\"q\\\"b\\\\s\\u0001\\t\\n\u{7f}é€😀\"}\n]\n"
    );
    assert_eq!(
        ok(&["--json", "select 'v' as 'a\"b'"]),
        "[\n  {\"a\\\"b\":\"v\"}\n]\n"
    );
}

#[test]
fn csv_list_line_modes() {
    assert_eq!(ok(&["--csv", ROW]), "a,b,c,d\n1,x,,1.5\n");
    assert_eq!(
        ok(&[
            "--csv",
            "select 'x,y' as 'a b', '' as e, 'q\"' as q, 'é' as u"
        ]),
        "\"a b\",e,q,u\n\"x,y\",\"\",\"q\"\"\",\"é\"\n"
    );
    assert_eq!(ok(&["--list", ROW]), "a|b|c|d\n1|x||1.5\n");
    assert_eq!(
        ok(&[
            "--line",
            "select 1 as a, 'x' as longname union all select 2, NULL"
        ]),
        "       a = 1\nlongname = x\n\n       a = 2\nlongname = \n"
    );
    assert_eq!(ok(&["--line", "select 1 as a"]), "    a = 1\n");
    // Precedence when several modes are given: list > line > csv > pretty.
    assert_eq!(
        ok(&["--csv", "--line", "--list", "select 1 as a"]),
        "a\n1\n"
    );
    assert_eq!(ok(&["--csv", "--line", "select 1 as a"]), "    a = 1\n");
}

#[test]
fn header_separator_and_nullvalue_flags() {
    assert_eq!(ok(&["--list", "--header=false", ROW]), "1|x||1.5\n");
    assert_eq!(ok(&["--list", "--noheader", ROW]), "1|x||1.5\n");
    assert_eq!(ok(&["--csv", "--header=0", ROW]), "1,x,,1.5\n");
    assert_eq!(ok(&["--list", "--header=TRUE", "select 1 as a"]), "a\n1\n");
    assert_eq!(
        ok(&["--list", "--separator", "::", "--nullvalue=NULL", ROW]),
        "a::b::c::d\n1::x::NULL::1.5\n"
    );
    assert_eq!(
        ok(&["--csv", "--separator=;", "select 'a;b' as x, 2 as y"]),
        "x;y\n\"a;b\";2\n"
    );
    assert_eq!(
        ok(&["--nullvalue", "-", "select NULL as n"]),
        "+---+\n| n |\n+---+\n| - |\n+---+\n"
    );
    assert_eq!(
        ok(&["--json", "--nullvalue=null", "select NULL as n"]),
        "[\n  {\"n\":\"null\"}\n]\n"
    );
}

#[test]
fn zero_rows_print_nothing_outside_json() {
    for mode in ["--line", "--list", "--csv"] {
        assert_eq!(ok(&[mode, "select 1 as a where 0"]), "", "{mode}");
    }
    assert_eq!(ok(&["select 1 as a where 0"]), "");
    assert_eq!(ok(&["select * from uptime where days < 0"]), "");
}

#[test]
fn values_print_as_sqlite_text() {
    assert_eq!(
        ok(&[
            "--list",
            "--header=false",
            "select 10, -3, 1.0, 0.1, 1e300, 2.5e-7, x'6869', 9223372036854775807"
        ]),
        "10|-3|1.0|0.1|1.0e+300|2.5e-07|hi|9223372036854775807\n"
    );
}

#[test]
fn several_statements_print_each_result() {
    assert_eq!(
        ok(&["--list", "select 1 as a; select 2 as b;select 3 as c"]),
        "a\n1\nb\n2\nc\n3\n"
    );
    // The first result is printed before the failure is reported.
    let r = run(&["--list", "select 1 as a; selec 2; select 3"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "a\n1\n");
    assert_eq!(r.stderr, "Error: near \"selec\": syntax error\n");
    // Only comments and whitespace: nothing to do.
    assert_eq!(ok(&["  -- nothing\n"]), "");
}

#[test]
fn uptime_table_is_queryable() {
    let out = ok(&[
        "--json",
        "select days, hours, minutes, seconds, total_seconds from uptime",
    ]);
    assert!(out.starts_with("[\n  {\"days\":\""), "{out}");
    let out = ok(&[
        "--list",
        "--header=false",
        "select total_seconds > 0 from uptime",
    ]);
    assert_eq!(out, "1\n");
}

// ---- exit codes and errors ----

#[test]
fn sql_errors_exit_with_the_sqlite_code() {
    let r = run(&["selec 1"]);
    assert_eq!((r.code, r.stdout.as_str()), (1, ""));
    assert_eq!(r.stderr, "Error: near \"selec\": syntax error\n");

    let r = run(&["select * from no_such_table"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "Error: no such table: no_such_table\n");

    let r = run(&["--query", "select * from no_such_table"]);
    assert_eq!(r.code, 1);
}

#[test]
fn missing_required_column_is_a_constraint_error() {
    let r = run(&["select * from file"]);
    assert_eq!(r.code, 19, "SQLITE_CONSTRAINT; stderr {}", r.stderr);
    assert_eq!(r.stdout, "");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        lines.last(),
        Some(&"Error: Table file was queried without a required column in the WHERE clause"),
        "{}",
        r.stderr
    );
    // The engine's warning arrives through the status logger, in glog's format.
    let warning = lines
        .iter()
        .find(|l| l.starts_with('W'))
        .unwrap_or_else(|| panic!("no warning line in {}", r.stderr));
    assert_glog(
        warning,
        "Table file was queried without a required column in the WHERE clause",
    );
}

/// `W1130 02:27:52.123456  4242 file.rs:12] message`
fn assert_glog(line: &str, message: &str) {
    let b = line.as_bytes();
    assert!(b.len() > 22, "{line}");
    assert!(b[1..5].iter().all(u8::is_ascii_digit), "{line}");
    assert_eq!(&line[5..6], " ", "{line}");
    assert!(
        b[6..8].iter().all(u8::is_ascii_digit) && b[8] == b':' && b[11] == b':' && b[14] == b'.',
        "{line}"
    );
    assert!(b[15..21].iter().all(u8::is_ascii_digit), "{line}");
    let (location, text) = line[21..].split_once("] ").expect("has '] '");
    let (tid, file) = location
        .trim_start()
        .split_once(' ')
        .expect("tid then file");
    assert!(tid.bytes().all(|c| c.is_ascii_digit()), "{line}");
    let (name, number) = file.rsplit_once(':').expect("file:line");
    assert!(name.ends_with(".rs") && !name.contains('/'), "{line}");
    assert!(number.parse::<u32>().is_ok(), "{line}");
    assert_eq!(text, message);
}

#[test]
fn verbose_adds_info_status_lines() {
    let r = run(&["--verbose", "--list", "select 1 as a"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "a\n1\n"));
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with('I') && l.contains("osquery initialized"))
        .unwrap_or_else(|| panic!("no info line in {}", r.stderr));
    let version = ok(&[".version"]);
    let version = version
        .lines()
        .next()
        .unwrap()
        .strip_prefix("osquery ")
        .unwrap();
    assert_glog(line, &format!("osquery initialized [version={version}]"));
}

#[test]
fn broken_pipe_exits_quietly() {
    let sql = "with recursive c(x) as (select 1 union all select x + 1 from c limit 200000) select x from c";
    let mut child = Command::new(BIN)
        .args(["--list", sql])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 2];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"x\n");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

// ---- flags ----

#[test]
fn unknown_and_bad_flags_are_errors() {
    let r = run(&["--bogus", "select 1"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert_eq!(r.stderr, "ERROR: unknown command line flag 'bogus'\n");

    let r = run(&["--header=maybe", "select 1"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "ERROR: illegal value 'maybe' specified for bool flag 'header'\n"
    );

    let r = run(&["--json=2", "select 1"]);
    assert_eq!(r.code, 1);

    let r = run(&["--query"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "ERROR: flag 'query' is missing its argument\n");
}

#[test]
fn flagfile_sets_flags_and_the_command_line_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("osquery.flags");
    std::fs::write(
        &path,
        "# shell settings\n--csv\n\n--separator=;\n  --nullvalue=none\n",
    )
    .unwrap();
    let path = path.to_str().unwrap();
    assert_eq!(ok(&["--flagfile", path, ROW]), "a;b;c;d\n1;x;none;1.5\n");
    assert_eq!(
        ok(&[
            &format!("--flagfile={path}"),
            "--separator=,",
            "--noheader",
            ROW
        ]),
        "1,x,none,1.5\n"
    );
    let r = run(&["--flagfile", "/nonexistent/flags", "select 1"]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .starts_with("ERROR: cannot read flagfile '/nonexistent/flags'"),
        "{}",
        r.stderr
    );

    std::fs::write(dir.path().join("bad"), "--nope=1\n").unwrap();
    let r = run(&[
        "--flagfile",
        dir.path().join("bad").to_str().unwrap(),
        "select 1",
    ]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "ERROR: unknown command line flag 'nope'\n");
}

#[test]
fn help_and_version() {
    for flag in ["--help", "-h"] {
        let out = ok(&[flag]);
        assert!(
            out.contains("Usage: osqueryi [OPTION]... [SQL STATEMENT]"),
            "{out}"
        );
        assert!(out.contains("--separator VALUE"), "{out}");
        assert!(out.contains("default: \"|\""), "{out}");
        assert!(out.contains("--header"), "{out}");
    }
    let out = ok(&["--version"]);
    assert!(out.starts_with("osqueryi version "), "{out}");
}

#[test]
fn query_and_query_file() {
    assert_eq!(ok(&["--list", "--query", "select 7 as q"]), "q\n7\n");
    // --query wins over a positional argument.
    assert_eq!(
        ok(&["--list", "--query=select 7 as q", "select 8 as p"]),
        "q\n7\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("q.sql");
    std::fs::write(&file, "select 1 as a;\nselect 2 as b;\n").unwrap();
    assert_eq!(
        ok(&["--list", "--query_file", file.to_str().unwrap()]),
        "a\n1\nb\n2\n"
    );
    let r = run(&["--query_file", "/nonexistent.sql"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("Error: "), "{}", r.stderr);
}

#[test]
fn table_filters_planner_and_listing_flags() {
    let r = run(&["--disable_tables=uptime,time", "select * from uptime"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "Error: no such table: uptime\n");
    assert_eq!(ok(&["--enable_tables", "uptime", "-L"]), "  => uptime\n");
    assert!(ok(&["-L"]).contains("  => uptime\n"));

    let out = ok(&["--list", "-A", "uptime"]);
    assert!(
        out.starts_with("days|hours|minutes|seconds|total_seconds\n"),
        "{out}"
    );
    let r = run(&["-A", "no_such_table"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "Error querying table: no_such_table\n");

    let r = run(&["--planner", "select days from uptime"]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("[planner] uptime"), "{}", r.stderr);
}

// ---- dot commands ----

#[test]
fn positional_dot_commands() {
    let tables = ok(&[".tables"]);
    assert!(tables.contains("  => uptime\n"), "{tables}");
    assert!(tables.lines().all(|l| l.starts_with("  => ")), "{tables}");
    let mut sorted: Vec<&str> = tables.lines().collect();
    sorted.sort();
    assert_eq!(sorted, tables.lines().collect::<Vec<_>>());
    assert_eq!(ok(&[".tables upti"]), "  => uptime\n");
    assert_eq!(ok(&[".list upti"]), "  => uptime\n");
    assert_eq!(
        ok(&[".schema uptime"]),
        "CREATE TABLE uptime(`days` INTEGER, `hours` INTEGER, `minutes` INTEGER, `seconds` INTEGER, `total_seconds` BIGINT);\n"
    );
    assert!(
        ok(&[".schema"])
            .lines()
            .all(|l| l.starts_with("CREATE TABLE ") && l.ends_with(';'))
    );

    let version = ok(&[".version"]);
    let lines: Vec<&str> = version.lines().collect();
    assert_eq!(lines.len(), 2, "{version}");
    assert!(lines[0].starts_with("osquery "), "{version}");
    assert!(lines[1].starts_with("using SQLite 3."), "{version}");

    assert_eq!(run(&[".exit"]).code, 0);
    assert_eq!(run(&[".quit"]).code, 0);
    assert_eq!(run(&[".exit 3"]).code, 3);

    let r = run(&[".bogus"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Error: unknown command or invalid arguments:  \"bogus\". Enter \".help\" for help\n"
    );
    let r = run(&[".help"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert!(r.stderr.contains(".tables"), "{}", r.stderr);
    assert!(r.stderr.contains(".timer ON|OFF"), "{}", r.stderr);
}

/// `.tables WORD`: osquery's prefix matches, then the other names containing WORD.
#[test]
fn tables_filter_by_prefix_then_by_substring() {
    let all = ok(&[".tables"]);
    let names: Vec<&str> = all.lines().map(|l| &l[5..]).collect();
    let out = ok(&[".tables proc"]);
    let listed: Vec<&str> = out
        .lines()
        .map(|l| l.strip_prefix("  => ").unwrap())
        .collect();
    let starting: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("proc"))
        .collect();
    let containing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.contains("proc") && !n.starts_with("proc"))
        .collect();
    assert!(starting.contains(&"processes"), "{all}");
    assert!(!containing.is_empty(), "{all}");
    assert_eq!(listed, [starting, containing].concat());
    assert_eq!(ok(&[".tables no_table_has_this"]), "");
}

/// `.describe` and `.schema --verbose`: the table's description above its columns, in the
/// current mode; machine-readable modes get the rows alone.
#[test]
fn describe_shows_column_types_options_and_descriptions() {
    let out = ok(&[".describe uptime"]);
    let mut lines = out.lines();
    let head = lines.next().unwrap();
    assert!(
        head.starts_with("uptime: ") && head.len() > "uptime: ".len(),
        "{out}"
    );
    let cells = |line: &str| -> Vec<String> {
        line.trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect()
    };
    let rest: Vec<&str> = lines.collect();
    assert_eq!(
        cells(rest[1]),
        ["name", "type", "options", "description"],
        "{out}"
    );
    let total = cells(rest.iter().find(|l| l.contains("total_seconds")).unwrap());
    assert_eq!(total[..3], ["total_seconds", "BIGINT", ""], "{out}");
    assert!(!total[3].is_empty(), "{out}");
    // Options and hidden columns are listed.
    let file = ok(&["--csv", ".describe file"]);
    assert!(
        file.starts_with("name,type,options,description\n"),
        "{file}"
    );
    assert!(
        file.contains("\npath,TEXT,\"index, required, optimized\","),
        "{file}"
    );
    let processes = ok(&["--list", ".describe processes"]);
    assert!(
        processes.contains("\npid|BIGINT|index, optimized|"),
        "{processes}"
    );
    assert!(
        processes
            .lines()
            .any(|l| l.split('|').nth(2).is_some_and(|o| o.starts_with("hidden"))),
        "{processes}"
    );
    let json = ok(&["--json", ".describe uptime"]);
    assert!(json.starts_with("[\n  {\"description\":"), "{json}");

    assert_eq!(ok(&[".schema --verbose uptime"]), out);
    assert_eq!(ok(&[".schema -v uptime"]), out);
    let r = run(&[".schema uptime extra"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Error: unknown command or invalid arguments:  \"schema\". Enter \".help\" for help\n"
    );
    // Piped stderr: osquery's message, no suggestion.
    let r = run(&[".describe uptim"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "Error: no such table: uptim\n")
    );
}

/// A script reading stderr sees osquery's error text exactly: the suggestion is for
/// people at a terminal (`prompt.rs` checks it there).
#[test]
fn piped_errors_keep_osquery_text() {
    let r = run(&["select * from proccesses"]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (1, "Error: no such table: proccesses\n")
    );
    let r = run_with_input(&[], "select * from proccesses;\n");
    assert_eq!(r.stderr, "Error: near line 1: no such table: proccesses\n");
}

/// `.help` groups the commands, each line in osquery's words.
#[test]
fn help_is_grouped() {
    let r = run(&[".help"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    let help = r.stderr;
    assert!(
        help.starts_with(
            "Welcome to the osquery shell. Please explore your OS!\n\
             You are connected to a transient 'in-memory' virtual database.\n\nTables:\n"
        ),
        "{help}"
    );
    for group in ["Tables", "Output", "Settings", "Extensions", "Other"] {
        assert_eq!(help.matches(&format!("\n{group}:\n")).count(), 1, "{help}");
    }
    for line in [
        ".bail ON|OFF     Stop after hitting an error\n",
        ".headers ON|OFF  Turn display of headers on or off\n",
        ".mode MODE       Set output mode where MODE is one of:\n\
         \x20                  csv      Comma-separated values\n",
        ".schema [TABLE]  Show the CREATE statements\n",
        ".timer ON|OFF    Turn the CPU timer measurement on or off\n",
        ".width [NUM1]+   Set column widths for \"column\" mode\n",
    ] {
        assert!(help.contains(line), "{line:?} in {help}");
    }
    assert!(
        !help.contains(".list"),
        "an undocumented synonym, as in osquery"
    );
}

#[test]
fn show_reports_settings_and_non_default_flags() {
    let out = ok(&["--csv", "--nullvalue=nil", ".show"]);
    assert!(out.starts_with("osquery "), "{out}");
    assert!(out.contains("\nusing SQLite 3."), "{out}");
    assert!(out.contains("      headers: on\n"), "{out}");
    assert!(out.contains("         mode: csv\n"), "{out}");
    assert!(out.contains("    nullvalue: \"nil\"\n"), "{out}");
    assert!(out.contains("    separator: \",\"\n"), "{out}");
    assert!(
        out.contains("Non-default flags/options:\n  csv: true\n  nullvalue: \"nil\"\n"),
        "{out}"
    );
    assert_eq!(ok(&[".summary"]), ok(&[".show"]));
}

#[test]
fn dot_commands_from_stdin() {
    let input = "\
.mode list
select 1 as a, NULL as b;
.headers off
.nullvalue N
.separator ,
select 1 as a, NULL as b;
.header on
.mode csv
select 'x y' as c;
.mode line
select 5 as five;
.mode column
.width 3 -4
select 'abcdef' as w, 'z' as v;
.mode pretty
select 2 as p;
.print hello   \"big world\"
.echo on
select 3 as e;
";
    let r = run_with_input(&[], input);
    assert_eq!(r.stderr, "");
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout,
        "a|b\n1|\n\
         1,N\n\
         c\n\"x y\"\n\
         \x20five = 5\n\
         w       v\n---  ----\nabc     z\n\
         +---+\n| p |\n+---+\n| 2 |\n+---+\n\
         hello big world\n\
         select 3 as e;\n+---+\n| e |\n+---+\n| 3 |\n+---+\n"
    );
}

#[test]
fn bad_mode_and_abbreviations() {
    let r = run_with_input(&[], ".mode json\n.mo list\n.h off\nselect 1 as a;\n");
    assert_eq!(r.code, 1, "a failed dot command counts as an error");
    assert_eq!(
        r.stderr,
        "Error: mode should be one of: column csv line list pretty\n"
    );
    assert_eq!(r.stdout, "1\n");
    let r = run_with_input(&[], ".mode\n");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Error: unknown command or invalid arguments:  \"mode\". Enter \".help\" for help\n"
    );
}

#[test]
fn timer_prints_run_time() {
    let r = run_with_input(
        &["--list"],
        ".timer on\nselect 1 as a;\n.timer off\nselect 2 as b;\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 5, "{}", r.stdout);
    assert_eq!(&lines[..2], ["a", "1"]);
    let timing = lines[2]
        .strip_prefix("Run Time: real ")
        .unwrap_or_else(|| panic!("{}", lines[2]));
    let parts: Vec<&str> = timing.split(' ').collect();
    assert_eq!(parts.len(), 5, "{timing}");
    assert_eq!((parts[1], parts[3]), ("user", "sys"));
    assert_eq!(parts[0].split_once('.').unwrap().1.len(), 3, "{timing}");
    assert_eq!(parts[2].split_once('.').unwrap().1.len(), 6, "{timing}");
    assert_eq!(parts[4].split_once('.').unwrap().1.len(), 6, "{timing}");
    assert_eq!(&lines[3..], ["b", "2"]);
}

#[test]
fn all_and_exit_from_stdin() {
    let r = run_with_input(&["--list"], ".all uptime\n.exit\nselect 9;\n");
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .starts_with("days|hours|minutes|seconds|total_seconds\n"),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout.lines().count(),
        2,
        "nothing runs after .exit: {}",
        r.stdout
    );
    let r = run_with_input(&["--list"], "select 1 as a;\n.exit 4\nselect 2 as b;\n");
    assert_eq!((r.code, r.stdout.as_str()), (4, "a\n1\n"));
    let r = run_with_input(&["--list"], "select 1 as a;\n.quit\nselect 2 as b;\n");
    assert_eq!((r.code, r.stdout.as_str()), (0, "a\n1\n"));
}

// ---- stdin input processing ----

#[test]
fn stdin_statements_errors_and_line_numbers() {
    let input = "select 1 as a;\n\n-- a comment\nselect\n  2 as b;\nselec 3;\nselect 4 as c; selec 5;\n  \nselect * from\n  no_such;\nselect 6 as d\n";
    let r = run_with_input(&["--list"], input);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "a\n1\nb\n2\nc\n4\nd\n6\n");
    assert_eq!(
        r.stderr,
        "Error: near line 6: near \"selec\": syntax error\n\
         Error: near line 7: near \"selec\": syntax error\n\
         Error: near line 9: no such table: no_such\n"
    );
}

#[test]
fn stdin_success_and_unterminated_last_statement() {
    let r = run_with_input(&["--list"], "select 1 as a;\nselect 'x;' as b");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(r.stdout, "a\n1\nb\nx;\n");
    let r = run_with_input(&[], "selec");
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "Error: near \"selec\": syntax error\n");
    let r = run_with_input(&[], "");
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    // CRLF line endings and a dot command after Windows-style lines.
    let r = run_with_input(&[], ".mode list\r\nselect 1 as a;\r\n");
    assert_eq!((r.code, r.stdout.as_str()), (0, "a\n1\n"), "{}", r.stderr);
}

#[test]
fn bail_stops_at_the_first_error() {
    let r = run_with_input(&["--list"], ".bail on\nselec 1;\nselect 2 as b;\n");
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout, "");
    assert_eq!(
        r.stderr,
        "Error: near line 2: near \"selec\": syntax error\n"
    );
}

// ---- the interactive shell ----

#[test]
fn repl_through_a_pty() {
    use rexpect::reader::Options;
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env("HOME", home.path()).env("TERM", "xterm");
    let mut p = rexpect::session::spawn_with_options(
        cmd,
        Options::new()
            .timeout_ms(Some(15_000))
            .strip_ansi_escape_codes(true),
    )
    .expect("spawn in a pty");
    p.exp_string("Using a virtual database. Need help, type '.help'")
        .unwrap();
    p.exp_string("osquery> ").unwrap();
    p.send_line("select 40 + 2 as answer;").unwrap();
    p.exp_string("| answer |").unwrap();
    p.exp_string("| 42     |").unwrap();
    p.exp_string("osquery> ").unwrap();

    p.send_line("select 'multi'").unwrap();
    p.exp_string("    ...> ").unwrap();
    p.send_line("as m;").unwrap();
    p.exp_string("| multi |").unwrap();
    p.exp_string("osquery> ").unwrap();

    // TAB completes a table name.
    p.send("select total_seconds > 0 as up from upti").unwrap();
    p.send("\t").unwrap();
    p.send_line(";").unwrap();
    p.exp_string("| 1  |").unwrap();
    p.exp_string("osquery> ").unwrap();

    p.send_line("selec 1;").unwrap();
    p.exp_string("Error: near \"selec\": syntax error").unwrap();
    p.exp_string("osquery> ").unwrap();

    p.send_line(".quit").unwrap();
    p.exp_eof().unwrap();

    let history = std::fs::read_to_string(home.path().join(".osquery/.history"))
        .expect("history file written");
    assert!(history.contains("select 40 + 2 as answer;"), "{history}");
    assert!(history.contains("as m;"), "{history}");
    assert!(history.contains(".quit"), "{history}");
}
