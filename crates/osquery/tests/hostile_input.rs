//! Bytes that are not UTF-8 and input without end, against the built binaries: an
//! argument with any bytes never panics (paths keep them end to end, SQL and other flags
//! are refused by name), and `/dev/zero`, an endless pipe or FIFO stop with an error
//! while the process stays small. Each endless-input child runs under an address-space
//! limit, so a regression fails here instead of exhausting the machine.

mod shell_support;

use shell_support::BIN;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

const DAEMON: &str = env!("CARGO_BIN_EXE_osqueryd");

/// Address space a child may map: the shell needs a few tens of MB, and the longest
/// statement it accepts is 64 MiB.
const ADDRESS_SPACE_LIMIT: u64 = 1 << 30;

/// `bytes` as one argument or path component.
fn os(bytes: &[u8]) -> &OsStr {
    OsStr::from_bytes(bytes)
}

/// `--name=` followed by `value`'s bytes.
fn flag(name: &str, value: &OsStr) -> OsString {
    let mut arg = OsString::from(format!("--{name}="));
    arg.push(value);
    arg
}

/// How a child ended, with what it printed and its peak resident set.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    peak_rss_mib: f64,
}

/// Runs `command` (stdin already chosen) to its end under [`ADDRESS_SPACE_LIMIT`],
/// with stdout and stderr in files under `dir`, and measures its peak RSS from wait4.
/// The command is dropped once started, so it holds no end of a pipe open.
// The child is reaped by wait4 itself, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_bounded(mut command: Command, dir: &Path) -> Finished {
    let out_path = dir.join("child.stdout");
    let err_path = dir.join("child.stderr");
    // SAFETY: setrlimit is async-signal-safe and touches only the child being started.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE_LIMIT,
                rlim_max: ADDRESS_SPACE_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("the binary starts");
    let pid = child.id() as i32;
    drop(child);
    drop(command);
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child we just spawned; the pointers are valid.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    Finished {
        status: ExitStatus::from_raw(status),
        stdout: fs::read_to_string(out_path).unwrap(),
        stderr: fs::read_to_string(err_path).unwrap(),
        peak_rss_mib: usage.ru_maxrss as f64 / 1024.0,
    }
}

fn shell() -> Command {
    let mut command = Command::new(BIN);
    // The host's default flagfile stays out of the test.
    command.arg("--flagfile=/dev/null");
    command
}

/// Runs osqueryi with `args` and empty stdin.
fn shell_with(args: &[&OsStr]) -> (i32, String, String) {
    let out = shell()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("osqueryi runs");
    (
        out.status.code().expect("exited, not killed"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

// ---- arguments that are not UTF-8 ----

#[test]
fn sql_on_the_command_line_that_is_not_utf8_is_an_error_not_a_panic() {
    let (code, stdout, stderr) = shell_with(&[os(b"select \xff")]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        "Error: the SQL statement given on the command line is not valid UTF-8\n"
    );
    let (code, _, stderr) = shell_with(&[os(b"--profile=1"), os(b"select \xfe")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not valid UTF-8"), "{stderr}");
    // --query wins over a positional argument, which is then not looked at.
    let (code, stdout, stderr) = shell_with(&[
        os(b"--list"),
        os(b"--query=select 5 as n"),
        os(b"select \xff"),
    ]);
    assert_eq!((code, stdout.as_str()), (0, "n\n5\n"), "{stderr}");
}

#[test]
fn a_flag_that_is_not_a_path_refuses_bytes_that_are_not_utf8_by_name() {
    for (args, name) in [
        (vec![os(b"--query=select \xff")], "query"),
        (vec![os(b"--query"), os(b"select \xff")], "query"),
        (vec![os(b"--separator=\x80"), os(b"select 1")], "separator"),
        (vec![os(b"--read_max=1\xff"), os(b"select 1")], "read_max"),
    ] {
        let (code, stdout, stderr) = shell_with(&args);
        // osquery's exit code for a bad flag value.
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert_eq!(stdout, "");
        assert!(
            stderr.starts_with("ERROR: illegal value '")
                && stderr.contains(&format!(
                    "' specified for string flag '{name}': not valid UTF-8"
                )),
            "{args:?}: {stderr}"
        );
    }
    // The bad byte is shown as what it is.
    let (_, _, stderr) = shell_with(&[os(b"--query=select \xff")]);
    assert!(stderr.contains("'select \\xff'"), "{stderr}");
}

#[test]
fn path_flags_with_bytes_that_are_not_utf8_reach_the_file_system_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    // The shell opens its database where --database_path says, byte for byte.
    let database = dir.path().join(os(b"shell\xff.db"));
    let logs = dir.path().join(os(b"logs\xfe"));
    let (code, stdout, stderr) = shell_with(&[
        &flag("database_path", database.as_os_str()),
        &flag("logger_path", logs.as_os_str()),
        os(b"--list"),
        os(b"select 1 as a"),
    ]);
    assert_eq!((code, stdout.as_str()), (0, "a\n1\n"), "{stderr}");
    assert!(database.exists(), "no database at the exact path");
    // Nothing was created under a lossy spelling of the names (U+FFFD's bytes).
    for entry in fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            !name
                .as_bytes()
                .windows(3)
                .any(|w| w == "\u{fffd}".as_bytes()),
            "{name:?}"
        );
    }

    // The same from a flagfile, whose lines are bytes too.
    let other = dir.path().join(os(b"other\xe9.db"));
    let flagfile = dir.path().join("flags");
    let mut line = b"--database_path=".to_vec();
    line.extend_from_slice(other.as_os_str().as_bytes());
    line.push(b'\n');
    fs::write(&flagfile, &line).unwrap();
    let out = Command::new(BIN)
        .arg(flag("flagfile", flagfile.as_os_str()))
        .arg("select 1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(other.exists(), "no database at the flagfile's exact path");
}

/// A daemon given only paths that are not UTF-8 runs its schedule and writes its results
/// into the directory named by those exact bytes.
#[test]
fn a_daemon_logs_into_the_exact_directory_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &[u8]| dir.path().join(os(name));
    let config = path(b"osquery\xff.conf");
    let logs = path(b"logs\xff");
    let database = path(b"osquery\xfe.db");
    let pidfile = path(b"osqueryd\xfd.pid");
    fs::create_dir(&logs).unwrap();
    fs::write(
        &config,
        r#"{"schedule": {"bytes": {"query": "select 7 as seven", "interval": 1}}}"#,
    )
    .unwrap();
    let mut daemon = Command::new(DAEMON)
        .arg(flag("config_path", config.as_os_str()))
        .arg(flag("logger_path", logs.as_os_str()))
        .arg(flag("database_path", database.as_os_str()))
        .arg(flag("pidfile", pidfile.as_os_str()))
        .arg(flag(
            "extensions_socket",
            dir.path().join("osquery.em").as_os_str(),
        ))
        .args(["--schedule_splay_percent=0", "--flagfile=/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .expect("osqueryd starts");
    let results = logs.join("osqueryd.results.log");
    let pid = daemon.id().to_string();
    let mut pidfile_named_it = false;
    let logged = oxquery_test_support::wait_until(Duration::from_secs(30), || {
        pidfile_named_it |= fs::read_to_string(&pidfile).is_ok_and(|t| t.trim() == pid);
        fs::read_to_string(&results).is_ok_and(|t| t.contains(r#""columns":{"seven":"7"}"#))
            || daemon.try_wait().unwrap().is_some()
    });
    let exited = daemon.try_wait().unwrap();
    if exited.is_none() {
        // SAFETY: SIGTERM to our own child, which has not been reaped.
        unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    }
    let status = daemon.wait().unwrap();
    let stderr = fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(logged && exited.is_none(), "{exited:?}\n{stderr}");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        fs::read_to_string(logs.join("osqueryd.INFO"))
            .is_ok_and(|t| t.contains("osqueryd started")),
        "the status log is in the same directory"
    );
    assert!(database.exists(), "no store at the exact path");
    assert!(
        pidfile_named_it,
        "the pidfile at the exact path named the daemon"
    );
}

#[test]
fn a_daemon_given_a_missing_config_path_that_is_not_utf8_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(os(b"missing\xff.conf"));
    let out = Command::new(DAEMON)
        .arg(flag("config_path", config.as_os_str()))
        .args(["--config_check", "--flagfile=/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("config file does not exist"), "{stderr}");
}

// ---- input without end ----

fn assert_stopped_small(finished: &Finished, want_error: &str, max_rss_mib: f64) {
    assert_eq!(
        finished.status.code(),
        Some(1),
        "{:?}: {}",
        finished.status,
        finished.stderr
    );
    assert!(finished.stderr.contains(want_error), "{}", finished.stderr);
    assert!(
        finished.peak_rss_mib <= max_rss_mib,
        "peak RSS {:.1} MiB > {max_rss_mib} MiB",
        finished.peak_rss_mib
    );
}

#[test]
fn dev_zero_on_stdin_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = shell();
    command
        .arg("--json")
        .stdin(fs::File::open("/dev/zero").unwrap());
    let finished = run_bounded(command, dir.path());
    assert_stopped_small(
        &finished,
        "Error: near line 1: input contains a NUL byte: it is not SQL text",
        64.0,
    );
    assert_eq!(finished.stdout, "");
}

#[test]
fn dev_zero_as_the_query_file_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = shell();
    command.arg("--query_file=/dev/zero").stdin(Stdio::null());
    let finished = run_bounded(command, dir.path());
    assert_stopped_small(
        &finished,
        "Error: query file /dev/zero: input contains a NUL byte",
        64.0,
    );
}

/// Writes `x` to `sink` until the reader goes away (EPIPE); returns the bytes written.
fn write_forever(mut sink: impl Write) -> u64 {
    let chunk = vec![b'x'; 64 << 10];
    let mut written = 0;
    while sink.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    written
}

/// The statement limit, 64 MiB.
const LIMIT: u64 = 64 << 20;

#[test]
fn an_endless_line_on_stdin_stops_at_the_statement_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = shell();
    command.arg("--json");
    // A pipe made here, so the writer thread owns its end and sees EPIPE when the
    // shell exits.
    let (reader, writer) = std::io::pipe().unwrap();
    command.stdin(reader);
    let feeder = std::thread::spawn(move || write_forever(writer));
    let finished = run_bounded(command, dir.path());
    let written = feeder.join().unwrap();
    assert_stopped_small(
        &finished,
        "Error: near line 1: statement longer than 64 MiB, the shell's limit; input not read further",
        // The statement's 64 MiB, and the rest of the shell.
        64.0 + 96.0,
    );
    // It read up to the limit, and not much further.
    assert!(
        (LIMIT..LIMIT + (8 << 20)).contains(&written),
        "{written} bytes written"
    );
}

#[test]
fn an_endless_fifo_as_the_query_file_stops_at_the_statement_limit() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("endless.sql");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let writer_path = fifo.clone();
    let feeder = std::thread::spawn(move || {
        // Blocks until the shell opens the FIFO to read it.
        write_forever(
            fs::OpenOptions::new()
                .write(true)
                .open(writer_path)
                .unwrap(),
        )
    });
    let mut command = shell();
    command
        .arg(flag("query_file", fifo.as_os_str()))
        .stdin(Stdio::null());
    let finished = run_bounded(command, dir.path());
    // Had the shell failed before opening the FIFO, opening it here releases the writer.
    drop(
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo),
    );
    let written = feeder.join().unwrap();
    assert_stopped_small(
        &finished,
        &format!(
            "Error: query file {}: statement longer than 64 MiB, the shell's limit",
            fifo.display()
        ),
        64.0 + 96.0,
    );
    assert!(
        (LIMIT..LIMIT + (8 << 20)).contains(&written),
        "{written} bytes written"
    );
}

// ---- many statements, and statements that are not UTF-8 ----

/// `select 0; select 1; ...` one per line, and what `--list --header=false` prints for it.
fn numbered_statements(n: usize) -> (String, String) {
    let mut sql = String::new();
    let mut want = String::new();
    for i in 0..n {
        sql.push_str(&format!("select {i};\n"));
        want.push_str(&format!("{i}\n"));
    }
    (sql, want)
}

#[test]
fn a_query_file_of_200000_statements_gives_200000_rows_as_stdin_does() {
    let dir = tempfile::tempdir().unwrap();
    let (sql, want) = numbered_statements(200_000);
    let file = dir.path().join("many.sql");
    fs::write(&file, &sql).unwrap();
    let out = shell()
        .args(["--list", "--header=false"])
        .arg(flag("query_file", file.as_os_str()))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout == want.as_bytes(), "query_file output differs");
    // The same statements on stdin, the path that was always linear.
    let out = shell()
        .args(["--list", "--header=false"])
        .stdin(fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout == want.as_bytes(), "stdin output differs");
}

#[test]
fn statements_on_one_line_and_a_trailing_statement_without_semicolon() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("q.sql");
    fs::write(
        &file,
        "select 1; select ';' as s; /* ; */ select 2 -- ;\n; select\n3",
    )
    .unwrap();
    let (code, stdout, stderr) = shell_with(&[
        os(b"--list"),
        os(b"--header=false"),
        &flag("query_file", file.as_os_str()),
    ]);
    assert_eq!((code, stdout.as_str()), (0, "1\n;\n2\n3\n"), "{stderr}");
    // The first failing statement stops the file, with SQLite's code, as before.
    fs::write(&file, "select 1; select nope; select 2;").unwrap();
    let (code, stdout, stderr) = shell_with(&[
        os(b"--list"),
        os(b"--header=false"),
        &flag("query_file", file.as_os_str()),
    ]);
    assert_eq!((code, stdout.as_str()), (1, "1\n"));
    assert_eq!(stderr, "Error: no such column: nope\n");
}

#[test]
fn a_statement_that_is_not_utf8_is_an_error_and_the_others_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = shell()
        .args(["--list", "--header=false"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"select 1;\nselect '\xff'\n as x;\nselect 2;\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "1\n2\n");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "Error: near line 2: statement is not valid UTF-8\n"
    );
    // In a query file it stops the file, like any failing statement there.
    let file = dir.path().join("q.sql");
    fs::write(&file, b"select 1; select '\xff'; select 2;").unwrap();
    let (code, stdout, stderr) = shell_with(&[
        os(b"--list"),
        os(b"--header=false"),
        &flag("query_file", file.as_os_str()),
    ]);
    assert_eq!((code, stdout.as_str()), (1, "1\n"));
    assert_eq!(
        stderr,
        format!(
            "Error: query file {}: statement is not valid UTF-8\n",
            file.display()
        )
    );
}
