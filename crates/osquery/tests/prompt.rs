//! The interactive prompt as a program driving osqueryi through a pty sees it: the bare
//! prompt (as osquery's line editor writes it, no terminal mode switches or line
//! clearing before it), plain echo of typed text, and line editing, history and TAB
//! completion still working.

mod shell_support;

use shell_support::BIN;
use std::process::Command;

/// The shell in a pty, with a readable (empty) config so it has nothing to say about it.
fn spawn(home: &std::path::Path, strip_ansi: bool) -> rexpect::session::PtySession {
    let config = home.join("osquery.conf");
    std::fs::write(&config, "{}").unwrap();
    let config = format!("--config_path={}", config.display());
    spawn_args(home, &[&config], strip_ansi)
}

fn spawn_args(
    home: &std::path::Path,
    args: &[&str],
    strip_ansi: bool,
) -> rexpect::session::PtySession {
    use rexpect::reader::Options;
    let mut cmd = Command::new(BIN);
    cmd.args(args).env("HOME", home).env("TERM", "xterm");
    rexpect::session::spawn_with_options(
        cmd,
        Options::new()
            .timeout_ms(Some(15_000))
            .strip_ansi_escape_codes(strip_ansi),
    )
    .expect("spawn in a pty")
}

#[test]
fn the_prompt_is_written_bare() {
    let home = tempfile::tempdir().unwrap();
    let mut p = spawn(home.path(), false);
    // Everything before the first prompt: the banner line, then the prompt itself.
    let before = p.exp_string("osquery> ").unwrap();
    assert_eq!(
        before,
        "Using a \x1b[1mvirtual database\x1b[0m. Need help, type '.help'\r\n"
    );
    // Nothing follows the prompt until a key arrives: the next byte is the echo.
    p.send("s").unwrap();
    p.flush().unwrap();
    assert_eq!(p.exp_string("s").unwrap(), "");
    p.send_line("elect 1 as one;").unwrap();
    // The echo, the newline, the result, and the next prompt, with nothing else between.
    assert_eq!(
        p.exp_string("osquery> ").unwrap(),
        "elect 1 as one;\r\n+-----+\r\n| one |\r\n+-----+\r\n| 1   |\r\n+-----+\r\n"
    );
    p.send_line("select 'a'").unwrap();
    assert_eq!(p.exp_string("    ...> ").unwrap(), "select 'a'\r\n");
    p.send_line(";").unwrap();
    p.exp_string("osquery> ").unwrap();
    p.send_line(".quit").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn editing_history_and_completion() {
    let home = tempfile::tempdir().unwrap();
    let mut p = spawn(home.path(), true);
    p.exp_string("osquery> ").unwrap();
    p.send_line("select 'abc' as x;").unwrap();
    p.exp_string("| abc |").unwrap();
    p.exp_string("osquery> ").unwrap();

    // Up arrow brings the last line back; Enter runs it again.
    p.send("\x1b[A").unwrap();
    p.flush().unwrap();
    p.send_line("").unwrap();
    p.exp_string("| abc |").unwrap();
    p.exp_string("osquery> ").unwrap();

    // Left arrow moves into the line; typing inserts there.
    p.send("select 12 as y;").unwrap();
    p.send(&"\x1b[D".repeat(" as y;".len())).unwrap();
    p.send_line("3").unwrap();
    p.exp_string("| 123 |").unwrap();
    p.exp_string("osquery> ").unwrap();

    // TAB: a unique table name is completed; several are listed.
    p.send("select count(*) > 0 as n from osquery_inf").unwrap();
    p.flush().unwrap();
    p.send("\t").unwrap();
    p.flush().unwrap();
    p.send_line(";").unwrap();
    p.exp_string("| 1 |").unwrap();
    p.exp_string("osquery> ").unwrap();
    p.send("select * from osquery_").unwrap();
    p.flush().unwrap();
    p.send("\t").unwrap();
    p.flush().unwrap();
    p.exp_string("osquery_flags").unwrap();
    // Ctrl-U clears the line; Ctrl-C abandons a statement being continued.
    p.send("\x15").unwrap();
    p.flush().unwrap();
    p.send_line("select 'lost'").unwrap();
    p.exp_string("...> ").unwrap();
    p.send("\x03").unwrap();
    p.flush().unwrap();
    p.exp_string("osquery> ").unwrap();
    p.send_line("select 'kept' as k;").unwrap();
    p.exp_string("| kept |").unwrap();
    p.exp_string("osquery> ").unwrap();
    // Ctrl-D on an empty line ends the shell.
    p.send("\x04").unwrap();
    p.flush().unwrap();
    p.exp_eof().unwrap();

    // History is plain lines, as osquery's editor writes it.
    let history = std::fs::read_to_string(home.path().join(".osquery/.history")).unwrap();
    assert_eq!(
        history,
        "select 'abc' as x;\nselect 123 as y;\nselect count(*) > 0 as n from osquery_info;\n\
         select 'lost'\nselect 'kept' as k;\n"
    );
}

/// On a terminal, a value cannot rewrite the screen in any mode: a process name such as
/// `evil\r\e[2Khidden` shows escaped, and so do column headers. (Piped output keeps the
/// bytes; `crates/shell/src/output.rs` tests both.)
#[test]
fn a_terminal_sees_escaped_values_and_headers_in_every_mode() {
    let home = tempfile::tempdir().unwrap();
    let sql = "select 'evil' || char(13) || char(27) || '[2Khidden' || char(8238) || 'gpj.exe' \
               as \"h\x07\";";
    // Pretty is the default mode.
    for mode in ["--line", "--csv", "--list", "--header=true", "--json"] {
        let mut cmd = Command::new(BIN);
        cmd.env("HOME", home.path())
            .env("TERM", "xterm")
            .args([mode, sql]);
        let mut p = rexpect::session::spawn_with_options(
            cmd,
            rexpect::reader::Options::new().timeout_ms(Some(15_000)),
        )
        .expect("spawn in a pty");
        let out = p.exp_eof().unwrap();
        // The pty turns each "\n" into "\r\n"; no other control character may arrive.
        let bare = out.replace("\r\n", "\n");
        assert!(
            !bare
                .chars()
                .any(|c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{mode}: {out:?}"
        );
        let (value, header) = if mode == "--json" {
            (r"evil\r\u001B[2Khidden\u202Egpj.exe", r"h\u0007")
        } else {
            (r"evil\r\x1b[2Khidden\u202egpj.exe", r"h\x07")
        };
        assert!(bare.contains(value), "{mode}: {out:?}");
        assert!(bare.contains(header), "{mode}: {out:?}");
    }
}

/// A first run: the banner, one line about the config that could not be read, grouped
/// help, `.tables` and `.describe`, and the nearest name for a misspelt table.
#[test]
fn a_first_run_teaches() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("osquery.conf");
    let flag = format!("--config_path={}", missing.display());
    let mut p = spawn_args(home.path(), &[&flag], true);
    let before = p.exp_string("osquery> ").unwrap();
    assert_eq!(
        before,
        format!(
            "Using a virtual database. Need help, type '.help'\r\n\
             No config at {}: every table works; the schedule and packs are empty\r\n",
            missing.display()
        )
    );

    p.send_line(".help").unwrap();
    let help = p.exp_string("osquery> ").unwrap();
    for line in [
        "Welcome to the osquery shell. Please explore your OS!",
        "\r\nTables:\r\n.all [TABLE]     Select all from a table\r\n",
        "\r\nOutput:\r\n",
        "\r\nSettings:\r\n",
        ".describe TABLE  Show a table's columns: type, options, description\r\n",
        ".tables [TABLE]  List names of tables\r\n",
    ] {
        assert!(help.contains(line), "{line:?} in {help:?}");
    }

    p.send_line("select * from proccesses;").unwrap();
    assert_eq!(
        p.exp_string("osquery> ").unwrap(),
        "select * from proccesses;\r\n\
         Error: no such table: proccesses (did you mean processes?)\r\n"
    );
    // Far from every name: no guess.
    p.send_line("select * from zzzzzzzz;").unwrap();
    assert_eq!(
        p.exp_string("osquery> ").unwrap(),
        "select * from zzzzzzzz;\r\nError: no such table: zzzzzzzz\r\n"
    );
    p.send_line(".all uptim").unwrap();
    assert_eq!(
        p.exp_string("osquery> ").unwrap(),
        ".all uptim\r\nError querying table: uptim (did you mean uptime?)\r\n"
    );

    p.send_line(".tables uptim").unwrap();
    assert_eq!(
        p.exp_string("osquery> ").unwrap(),
        ".tables uptim\r\n  => uptime\r\n"
    );
    p.send_line(".describe uptime").unwrap();
    let described = p.exp_string("osquery> ").unwrap();
    assert!(
        described.starts_with(".describe uptime\r\nuptime: "),
        "{described:?}"
    );
    assert!(
        described.contains("| name          | type    | options | description"),
        "{described:?}"
    );
    assert!(
        described.contains("| total_seconds | BIGINT  |"),
        "{described:?}"
    );
    p.send_line(".describe uptim").unwrap();
    assert_eq!(
        p.exp_string("osquery> ").unwrap(),
        ".describe uptim\r\nError: no such table: uptim (did you mean uptime?)\r\n"
    );
    p.send_line(".quit").unwrap();
    p.exp_eof().unwrap();

    // A one-shot query typed at a terminal gets the suggestion too.
    let mut p = spawn_args(home.path(), &["select * from proccesses"], true);
    assert_eq!(
        p.exp_eof().unwrap(),
        "Error: no such table: proccesses (did you mean processes?)\r\n"
    );
}

/// A database the shell cannot open is one line, whatever the reason.
#[test]
fn an_unusable_database_is_one_line() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("file");
    std::fs::write(&file, "not a directory").unwrap();
    let db = file.join("shell.db");
    let flag = format!("--database_path={}", db.display());
    let mut p = spawn_args(home.path(), &[&flag], true);
    assert_eq!(
        p.exp_eof().unwrap(),
        format!(
            "Cannot open the database: {}: Not a directory (os error 20)\r\n",
            db.display()
        )
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

/// A statement that runs longer than a second shows a spinner on a terminal's stderr,
/// erased before the result; with stderr piped there is none. `--table_delay` makes the
/// statement slow whatever the machine: `time` is scanned once per row of `n`, waiting
/// before each scan after the first.
#[test]
fn a_long_statement_shows_progress_on_a_terminal_only() {
    let sql = "with recursive n(i) as (select 1 union all select i + 1 from n where i < 6) \
               select count(*) as c from n cross join time;";
    let home = tempfile::tempdir().unwrap();
    let mut p = spawn_args(home.path(), &["--table_delay=300", sql], false);
    let out = p.exp_eof().unwrap();
    let (progress, result) = out.split_at(out.find("+---").expect("a result"));
    assert!(progress.contains(" running "), "{out:?}");
    assert!(progress.contains(" rows read"), "{out:?}");
    assert!(progress.starts_with("\r\x1b[K"), "{out:?}");
    // Erased before the result, which follows untouched.
    assert!(progress.ends_with("\r\x1b[K"), "{out:?}");
    assert_eq!(
        result, "+---+\r\n| c |\r\n+---+\r\n| 6 |\r\n+---+\r\n",
        "{out:?}"
    );

    let piped = shell_support::run(&["--table_delay=300", sql]);
    assert_eq!((piped.code, piped.stderr.as_str()), (0, ""));
    assert_eq!(piped.stdout, "+---+\n| c |\n+---+\n| 6 |\n+---+\n");
}
