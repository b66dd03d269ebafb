//! The shell's `--connect PATH`, `.connect PATH` and `.disconnect`: statements run in the
//! process behind an extension manager socket. The manager here is the stand-in of
//! `oxquery_extensions::testing` answering a table this file defines; its rows must come
//! out exactly as the same values computed by the local engine do, in every output mode.
//! (When our daemon serves the manager socket, these tests can point at it instead.)

mod shell_support;

use oxquery_extensions::testing::{Answer, TestManager};
use shell_support::{BIN, Run, run_in};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The remote table `fixed`, as (name, type) columns and rows of wire values.
const FIXED_COLUMNS: &[(&str, &str)] = &[
    ("name", "TEXT"),
    ("pid", "BIGINT"),
    ("ratio", "DOUBLE"),
    ("note", "TEXT"),
];
const FIXED_ROWS: &[&[&str]] = &[
    &["a,b", "42", "0.5", "say \"hi\""],
    &["zeta", "-7", "12.25", ""],
];
/// The same table computed by the local engine.
const FIXED_LOCALLY: &str = "select 'a,b' as name, 42 as pid, 0.5 as ratio, 'say \"hi\"' as note \
     union all select 'zeta', -7, 12.25, ''";

/// What the stand-in manager answers: `fixed`, a failure with a chosen code
/// (`select fail N`), a hang-up (`select hangup`), and "no such table" for the rest.
fn answer(sql: &str) -> Answer {
    let sql = sql.trim().trim_end_matches(';').trim().to_ascii_lowercase();
    if sql == "select * from fixed" {
        return Answer::rows(FIXED_COLUMNS, FIXED_ROWS);
    }
    if sql == "select hangup" {
        return Answer::Hangup;
    }
    if let Some(code) = sql.strip_prefix("select fail ") {
        return Answer::Failure {
            code: code.parse().unwrap(),
            message: format!("failure {code}"),
        };
    }
    Answer::Failure {
        code: 1,
        message: format!("no such table in: {sql}"),
    }
}

struct Setup {
    // Dropped first: the manager stops before its directory goes.
    manager: TestManager,
    socket: PathBuf,
    home: tempfile::TempDir,
}

fn setup() -> Setup {
    let home = tempfile::tempdir().unwrap();
    let socket = home.path().join("other.em");
    let manager = TestManager::start(&socket, answer).unwrap();
    Setup {
        home,
        socket,
        manager,
    }
}

impl Setup {
    /// The shell's own socket, in the temp home (never the user's).
    fn own_socket(&self) -> String {
        format!(
            "--extensions_socket={}",
            self.home.path().join("shell.em").display()
        )
    }

    fn connect_flag(&self) -> String {
        format!("--connect={}", self.socket.display())
    }

    fn run(&self, args: &[&str], stdin: &str) -> Run {
        let own = self.own_socket();
        let mut all = vec![own.as_str()];
        all.extend_from_slice(args);
        run_in(self.home.path(), &all, stdin)
    }
}

#[test]
fn one_shot_results_print_as_local_ones_in_every_mode() {
    let s = setup();
    let connect = s.connect_flag();
    let notice = format!(
        "Connected to extension socket {} for debugging\n",
        s.socket.display()
    );
    let modes: &[&[&str]] = &[
        &[],
        &["--csv"],
        &["--csv", "--header=false"],
        &["--json"],
        &["--json_pretty"],
        &["--json_typed"],
        &["--line"],
        &["--list"],
        &["--list", "--separator=;"],
    ];
    for mode in modes {
        let mut local_args = mode.to_vec();
        local_args.push(FIXED_LOCALLY);
        let local = s.run(&local_args, "");
        assert_eq!(local.code, 0, "{mode:?}: {}", local.stderr);

        let mut remote_args = vec![connect.as_str()];
        remote_args.extend_from_slice(mode);
        remote_args.push("select * from fixed");
        let remote = s.run(&remote_args, "");
        assert_eq!(remote.code, 0, "{mode:?}: {}", remote.stderr);
        // osquery's notice, then exactly what the local engine printed.
        assert_eq!(
            remote.stdout,
            format!("{notice}{}", local.stdout),
            "{mode:?}"
        );
        assert_eq!(remote.stderr, "", "{mode:?}");
    }
    // The columns come in getQueryColumns' order, not the rows' (alphabetical) one.
    let pretty = s.run(&[&connect, "select * from fixed"], "").stdout;
    assert!(
        pretty.contains("| name | pid | ratio | note     |"),
        "{pretty}"
    );
    // Each run sent the statement to `query`, then to `getQueryColumns`.
    let received = s.manager.received();
    assert_eq!(received.len(), 2 * (modes.len() + 1));
    assert!(
        received.iter().all(|sql| sql == "select * from fixed"),
        "{received:?}"
    );
}

#[test]
fn a_failed_status_is_the_error_and_its_code_the_exit_status() {
    let s = setup();
    let connect = s.connect_flag();
    let r = s.run(&[&connect, "select * from nope"], "");
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .ends_with("Error: no such table in: select * from nope\n"),
        "{}",
        r.stderr
    );
    assert_eq!(
        r.stdout,
        format!(
            "Connected to extension socket {} for debugging\n",
            s.socket.display()
        )
    );
    let r = s.run(&[&connect, "select fail 19"], "");
    assert_eq!(
        (r.code, r.stderr.ends_with("Error: failure 19\n")),
        (19, true),
        "{}",
        r.stderr
    );
    // A code an exit status cannot carry is a plain failure, never a success.
    let r = s.run(&[&connect, "select fail 256"], "");
    assert_eq!(r.code, 1, "{}", r.stderr);
    // `-A` is `.all`, which runs remotely too.
    let r = s.run(&[&connect, "-A", "fixed", "--csv"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let body = r.stdout.split_once('\n').unwrap().1;
    assert_eq!(
        body,
        "name,pid,ratio,note\n\"a,b\",42,0.5,\"say \"\"hi\"\"\"\nzeta,-7,12.25,\"\"\n"
    );
}

#[test]
fn a_missing_socket_fails_each_statement_clearly() {
    let home = tempfile::tempdir().unwrap();
    let missing = home.path().join("absent.em");
    let own = format!(
        "--extensions_socket={}",
        home.path().join("shell.em").display()
    );
    let connect = format!("--connect={}", missing.display());
    let r = run_in(home.path(), &[&own, &connect, "select 1"], "");
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout,
        format!(
            "Connected to extension socket {} for debugging\n",
            missing.display()
        )
    );
    assert!(
        r.stderr.ends_with(&format!(
            "Error: Extension call failed: cannot connect to {}: No such file or directory (os error 2)\n",
            missing.display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn connect_and_disconnect_from_piped_input() {
    let s = setup();
    let path = s.socket.display().to_string();
    let script = format!(
        "select 'here' as w;\n\
         .connect {path}\n\
         select * from fixed;\n\
         .connect {path}\n\
         .socket\n\
         .types select * from fixed;\n\
         select hangup;\n\
         select * from fixed where 1;\n\
         select name from fixed;\n\
         .mode line\n\
         select * from fixed;\n\
         .disconnect\n\
         .disconnect\n\
         select 'here again' as w;\n"
    );
    let r = s.run(&["--list"], &script);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let own = s.home.path().join("shell.em");
    assert_eq!(
        r.stdout,
        format!(
            "w\nhere\n\
             Connected to extension socket {path} for debugging\n\
             name|pid|ratio|note\na,b|42|0.5|say \"hi\"\nzeta|-7|12.25|\n\
             {} (connected to {path})\n\
             name|type\nname|TEXT\npid|BIGINT\nratio|DOUBLE\nnote|TEXT\n\
             \x20name = a,b\n  pid = 42\nratio = 0.5\n note = say \"hi\"\n\n\
             \x20name = zeta\n  pid = -7\nratio = 12.25\n note = \n\
             Disconnected from extension socket {path}\n\
             \x20   w = here again\n",
            own.display()
        )
    );
    let stderr: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(
        stderr[0],
        "Error: Please disconnect from the current socket"
    );
    // The manager hung up during the call: that statement fails, the next ones run.
    assert!(
        stderr[1].starts_with("Error: near line 7: Extension call failed: "),
        "{stderr:?}"
    );
    assert_eq!(
        stderr[2],
        "Error: near line 8: no such table in: select * from fixed where 1"
    );
    assert_eq!(
        stderr[3],
        "Error: near line 9: no such table in: select name from fixed"
    );
    assert_eq!(stderr[4], "Error: Not connected to a socket");
    assert_eq!(stderr.len(), 5, "{stderr:?}");
}

/// The shell in a pty, with a readable (empty) config so it says nothing about one.
fn pty(home: &Path, args: &[&str]) -> rexpect::session::PtySession {
    use rexpect::reader::Options;
    let config = home.join("osquery.conf");
    std::fs::write(&config, "{}").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg(format!("--config_path={}", config.display()))
        .env("HOME", home)
        .env("TERM", "xterm");
    rexpect::session::spawn_with_options(
        cmd,
        Options::new()
            .timeout_ms(Some(15_000))
            .strip_ansi_escape_codes(false),
    )
    .expect("spawn in a pty")
}

#[test]
fn interactive_session_survives_the_manager_dying_and_coming_back() {
    let mut s = setup();
    let own = s.own_socket();
    let connect = s.connect_flag();
    let path = s.socket.display().to_string();
    let mut p = pty(s.home.path(), &[&own, &connect]);
    // osquery's notice, each piece in bold, before the banner; then the marked prompt.
    let bold = |t: &str| format!("\x1b[1m{t}\x1b[0m");
    let before = p.exp_string("[*]osquery> ").unwrap();
    assert_eq!(
        before,
        format!(
            "{}{}{}Using a {}. Need help, type '.help'\r\n",
            bold("Connected to extension socket "),
            bold(&path),
            bold(" for debugging\n").replace('\n', "\r\n"),
            bold("virtual database"),
        )
    );
    p.send_line("select * from fixed;").unwrap();
    p.exp_string("| zeta | -7  | 12.25 |          |").unwrap();
    p.exp_string("[*]osquery> ").unwrap();

    // The manager dies: the next statement fails and the shell carries on.
    s.manager.stop();
    p.send_line("select * from fixed;").unwrap();
    p.exp_string(&format!(
        "Error: Extension call failed: cannot connect to {path}: "
    ))
    .unwrap();
    p.exp_string("[*]osquery> ").unwrap();
    p.send_line("select * from").unwrap();
    p.exp_string("[*]    ...> ").unwrap();
    p.send_line("fixed;").unwrap();
    p.exp_string("Error: Extension call failed").unwrap();
    p.exp_string("[*]osquery> ").unwrap();

    // It comes back on the same path: the next statement reaches it.
    let manager = TestManager::start(&s.socket, answer).unwrap();
    p.send_line("select * from fixed;").unwrap();
    p.exp_string("| a,b  | 42  | 0.5   | say \"hi\" |").unwrap();
    p.exp_string("[*]osquery> ").unwrap();
    assert_eq!(manager.received().len(), 2);

    // Back to the local engine, and the plain prompt.
    p.send_line(".disconnect").unwrap();
    p.exp_string(&format!("{}{}osquery> ", bold(&path), bold("\r\n")))
        .unwrap();
    p.send_line("select 6 * 7 as local;").unwrap();
    p.exp_string("| 42    |").unwrap();
    p.exp_string("osquery> ").unwrap();
    p.send_line(&format!(".connect {path}")).unwrap();
    p.exp_string("[*]osquery> ").unwrap();
    p.send_line(".quit").unwrap();
    p.exp_eof().unwrap();
}
