//! A configuration that says what is wrong (issue 9, section 5), checked against the
//! built `osqueryd` and `osqueryi`: keys given twice, options and logger flags that do
//! nothing, queries that cannot run, config paths that are not files, line numbers after
//! comments, and an osquery RocksDB directory at `--database_path`.

// This binary uses a few of the daemon helpers (shell_support allows its own).
#[allow(dead_code)]
mod daemon_support;
mod shell_support;

use daemon_support::{BIN, Sandbox, wait_until};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

/// A one-shot run of osqueryd in `s` that must end by itself (a FIFO opened as if it
/// could be read would block it forever; the test fails instead of hanging).
fn one_shot(s: &Sandbox, extra: &[&str]) -> Output {
    let out = s.path().join("one_shot.out");
    let err = s.path().join("one_shot.err");
    let mut child = Command::new(BIN)
        .args(s.args())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("osqueryd runs");
    let mut status = None;
    wait_until(LONG, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("osqueryd {extra:?} did not end: it blocked");
    };
    Output {
        status,
        stdout: std::fs::read(out).unwrap(),
        stderr: std::fs::read(err).unwrap(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The message of every status line of `severity` (`W`, `E`, `I`) in `stderr`, without
/// glog's prefix (`W1206 08:18:07.980266 10244 source.rs:199] `).
fn status_messages(stderr: &str, severity: char) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with(severity) && l.contains("] "))
        .map(|l| l.split_once("] ").unwrap().1.to_owned())
        .collect()
}

const TWO_SCHEDULES: &str = r#"{
  // osquery configs allow comments
  "options": {"schedule_splay_percent": 0, "logger_plugin": "stdout"},
  "schedule": {"first": {"query": "SELECT 1 AS one", "interval": 1}},
  # a second schedule: only this one runs
  "schedule": {
    "second": {"query": "SELECT 2 AS two", "interval": 1},
    "second": {"query": "SELECT 3 AS three", "interval": 1}
  }
}
"#;

#[test]
fn keys_given_twice_and_ignored_options_are_warnings_at_start_and_in_config_check() {
    let s = Sandbox::new();
    s.write_config(TWO_SCHEDULES);
    let config = s.config().display().to_string();
    // In the order the repeats appear in the text.
    let expected = [
        format!(
            "{config}: key schedule is given twice, at lines 4 and 6; only the value at line 6 is used"
        ),
        format!(
            "{config}: key schedule.second is given twice, at lines 7 and 8; only the value at line 8 is used"
        ),
        format!(
            "The command-line-only flag --logger_plugin cannot be set from the config (in {config}); \
             it is ignored: give it on the command line or in a flagfile"
        ),
    ];
    // The daemon says so once its status log runs (before, these went nowhere), and runs
    // what serde_json kept: the last "second".
    let mut d = s.start("twice", &[]);
    let warnings = status_messages(&d.stderr_text(), 'W');
    for line in &expected {
        assert!(warnings.contains(line), "{line}\n{}", d.stderr_text());
    }
    assert!(
        wait_until(LONG, || !s.results_of("second").is_empty()),
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
    assert!(s.results_of("first").is_empty());
    let logged = &s.results_of("second")[0]["columns"];
    assert_eq!(
        logged.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["three"]
    );

    // --config_check shows the same warnings and keeps osquery's exit status ...
    let out = one_shot(&s, &["--config_check"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(status_messages(&text(&out.stderr), 'W'), expected);
    // On stderr even when --logger_plugin=stdout would take the status lines at run time
    // (no logger plugin runs during a check).
    let out = one_shot(&s, &["--config_check", "--logger_plugin=stdout"]);
    assert_eq!(status_messages(&text(&out.stderr), 'W'), expected);
    assert!(out.stdout.is_empty());
    // ... unless asked to be strict.
    let out = one_shot(&s, &["--config_check", "--config_check_strict"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).ends_with("--config_check_strict: the config loads with 3 warnings\n"),
        "{out:?}"
    );
    // The shell shows them too (its status lines go to stderr).
    let r = shell_support::run(&[
        "--flagfile=/dev/null",
        &format!("--config_path={config}"),
        "--config_check",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(status_messages(&r.stderr, 'W'), expected);
}

#[test]
fn config_check_refuses_what_the_daemon_refuses_with_its_message_and_status() {
    let s = Sandbox::new();
    s.write_config(r#"{"schedule": {"one": {"query": "SELECT 1", "interval": 1}}}"#);
    // --config_check now refuses an unknown logger plugin (it exited 0 before), and
    // writes no logs doing so.
    let check = one_shot(&s, &["--config_check", "--logger_plugin=filesystem,nope"]);
    assert_eq!(check.status.code(), Some(78), "{check:?}");
    assert_eq!(std::fs::read_dir(s.logs()).unwrap().count(), 0);
    // The daemon's own refusal: the same message and exit status.
    let daemon = one_shot(&s, &["--logger_plugin=filesystem,nope"]);
    assert_eq!(daemon.status.code(), Some(78), "{daemon:?}");
    let refusal = status_messages(&text(&daemon.stderr), 'E');
    assert_eq!(
        refusal,
        ["Cannot start the logger: unknown logger plugin: nope"]
    );
    assert_eq!(status_messages(&text(&check.stderr), 'E'), refusal);

    // A --logger_mode that is not octal: exit 1 and the same words from both.
    let daemon = one_shot(&s, &["--logger_mode=rw"]);
    let check = one_shot(&s, &["--config_check", "--logger_mode=rw"]);
    assert_eq!(daemon.status.code(), Some(1), "{daemon:?}");
    assert_eq!(check.status.code(), Some(1), "{check:?}");
    assert!(text(&daemon.stderr).contains("invalid --logger_mode \"rw\""));
    assert_eq!(text(&check.stderr), text(&daemon.stderr));

    // With --disable_logging no plugin is started, so none is refused.
    let check = one_shot(
        &s,
        &[
            "--config_check",
            "--logger_plugin=nope",
            "--disable_logging",
        ],
    );
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let mut d = s.start("quiet", &["--logger_plugin=nope", "--disable_logging"]);
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
}

#[test]
fn an_empty_logger_plugin_is_a_warning() {
    let s = Sandbox::new();
    s.write_config(r#"{"schedule": {"one": {"query": "SELECT 1", "interval": 1}}}"#);
    let warning = "--logger_plugin is empty: no logger plugin is started, so query results \
                   are logged nowhere; name one (filesystem, stdout, syslog), or none if that is intended";
    let mut d = s.start("empty", &["--logger_plugin="]);
    assert!(
        status_messages(&d.stderr_text(), 'W').contains(&warning.to_owned()),
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
    // Nothing was logged anywhere: that is what the warning is about.
    assert_eq!(std::fs::read_dir(s.logs()).unwrap().count(), 0);

    let check = one_shot(&s, &["--config_check", "--logger_plugin= , "]);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    assert_eq!(status_messages(&text(&check.stderr), 'W'), [warning]);
    let strict = one_shot(
        &s,
        &[
            "--config_check",
            "--config_check_strict",
            "--logger_plugin=",
        ],
    );
    assert_eq!(strict.status.code(), Some(1), "{strict:?}");
    assert!(
        text(&strict.stderr).ends_with("--config_check_strict: the config loads with 1 warning\n"),
        "{strict:?}"
    );
    // `none` says it on purpose: no warning.
    let none = one_shot(
        &s,
        &[
            "--config_check",
            "--config_check_strict",
            "--logger_plugin=none",
        ],
    );
    assert_eq!(
        (none.status.code(), text(&none.stderr)),
        (Some(0), String::new())
    );
    let mut d = s.start("none", &["--logger_plugin=none"]);
    assert!(
        status_messages(&d.stderr_text(), 'W').is_empty(),
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
}

#[test]
fn config_check_names_every_query_that_cannot_run() {
    let s = Sandbox::new();
    s.write_config(
        r#"{
  "schedule": {
    "fine": {"query": "SELECT path FROM file WHERE path = '/etc/hostname'", "interval": 60},
    "no_path": {"query": "SELECT * FROM file", "interval": 60},
    "typo": {"query": "SELECT * FROM proceses", "interval": 60},
    "broken": {"query": "SELEC pid FROM processes", "interval": 60}
  },
  "packs": {
    "p": {"queries": {"col": {"query": "SELECT nope FROM processes", "interval": 60}}},
    "mac": {"platform": "darwin", "queries": {"apps": {"query": "SELECT * FROM apps", "interval": 60}}}
  }
}"#,
    );
    let config = s.config().display().to_string();
    let expected = format!(
        "Query broken of the schedule of {config} cannot run: near \"SELEC\": syntax error\n\
         Query no_path of the schedule of {config} cannot run: Table file was queried without a required column in the WHERE clause\n\
         Query typo of the schedule of {config} cannot run: no such table: proceses\n\
         Query pack_p_col of pack p (in {config}) cannot run: no such column: nope\n"
    );
    let out = one_shot(&s, &["--config_check"]);
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(0), expected.clone())
    );
    let out = one_shot(&s, &["--config_check", "--config_check_strict"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("{expected}--config_check_strict: the config loads with 4 warnings\n")
    );
    let r = shell_support::run(&[
        "--flagfile=/dev/null",
        &format!("--config_path={config}"),
        "--config_check",
    ]);
    assert_eq!((r.code, r.stderr), (0, expected));
    // The check ran nothing: no state was written.
    assert!(!s.database().exists());
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn a_config_or_pack_path_that_is_not_a_file_is_named_as_what_it_is() {
    let s = Sandbox::new();
    let fifo = s.path().join("fifo.conf");
    mkfifo(&fifo);
    let dir = s.path().join("dir.conf");
    std::fs::create_dir(&dir).unwrap();
    let null = Path::new("/dev/null");
    for (path, what) in [
        (fifo.as_path(), "not a regular file: a FIFO"),
        (dir.as_path(), "is a directory"),
        (null, "not a regular file: a character device"),
    ] {
        let flag = format!("--config_path={}", path.display());
        let message = format!(
            "Error reading config: cannot read {}: {what}",
            path.display()
        );
        let out = one_shot(&s, &["--config_check", &flag]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(text(&out.stderr), format!("{message}\n"));
        // The daemon runs empty, as osquery does, and says why; a FIFO does not stall it.
        let mut d = s.start(&format!("{}", path.display()).replace('/', "_"), &[&flag]);
        let warnings = status_messages(&d.stderr_text(), 'W');
        assert!(warnings.contains(&message), "{}", d.stderr_text());
        assert_eq!(d.terminate(LONG).0.code(), Some(0));
        // As a pack file: the pack's key and the same words.
        s.write_config(&format!(r#"{{"packs": {{"p": "{}"}}}}"#, path.display()));
        let out = one_shot(&s, &["--config_check"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            text(&out.stderr).ends_with(&format!(
                ": packs.p: cannot read pack file {}: {what}\n",
                path.display()
            )),
            "{out:?}"
        );
    }
    let missing = s.path().join("missing.conf");
    let out = one_shot(
        &s,
        &[
            "--config_check",
            &format!("--config_path={}", missing.display()),
        ],
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "Error reading config: config file does not exist: {}\n",
            missing.display()
        )
    );
}

#[test]
fn json_error_lines_count_the_comment_lines() {
    let s = Sandbox::new();
    s.write_config(
        "{\n  // one\n  # two\n  \"options\": {\"verbose\": false},\n  // three\n  \"schedule\": {\"q\": }\n}\n",
    );
    let out = one_shot(&s, &["--config_check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).ends_with("invalid JSON: expected value at line 6 column 21\n"),
        "{out:?}"
    );
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (std::fs::read(e.path()).unwrap(), meta.modified().unwrap()),
            )
        })
        .collect()
}

#[test]
fn an_osquery_rocksdb_directory_at_database_path_is_left_untouched() {
    let s = Sandbox::new();
    s.write_config(r#"{"schedule": {"one": {"query": "SELECT 1 AS one", "interval": 1}}}"#);
    // What osquery leaves at --database_path: a RocksDB directory.
    let rocksdb = s.database();
    std::fs::create_dir(&rocksdb).unwrap();
    for (name, bytes) in [
        ("CURRENT", &b"MANIFEST-000005\n"[..]),
        ("IDENTITY", b"0b6e4a2c-0000-4000-8000-000000000000"),
        ("MANIFEST-000005", b"\x00\x01rocksdb manifest"),
        ("000004.log", b"\x02\x03write-ahead log"),
        ("LOCK", b""),
    ] {
        std::fs::write(rocksdb.join(name), bytes).unwrap();
    }
    let before = snapshot(&rocksdb);
    let beside = s.path().join("osquery.db.oxquery");

    let mut d = s.start("rocksdb", &[]);
    let info = format!(
        "--database_path {} is a directory (osquery's RocksDB database, left untouched); the database is {}",
        rocksdb.display(),
        beside.display()
    );
    assert!(
        status_messages(&d.stderr_text(), 'I').contains(&info),
        "{}",
        d.stderr_text()
    );
    assert!(
        wait_until(LONG, || !s.results_of("one").is_empty()),
        "{}",
        d.stderr_text()
    );
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
    assert_eq!(snapshot(&rocksdb), before, "osquery's files changed");
    assert!(beside.is_file());
    let names: Vec<String> = std::fs::read_dir(s.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains("corrupt")), "{names:?}");

    // The next start (and --database_dump) use the same store: the query's state is there.
    let dump = s.dump();
    assert!(dump["queries"].contains_key("one"), "{dump:?}");
    let instance = dump["configurations"]["instance_uuid_v1"].clone();
    let mut d = s.start("again", &[]);
    assert_eq!(d.terminate(LONG).0.code(), Some(0));
    assert_eq!(s.dump()["configurations"]["instance_uuid_v1"], instance);
    assert_eq!(snapshot(&rocksdb), before);

    // The shell, pointed at the same directory, reads our store and leaves osquery's.
    let r = shell_support::run(&[
        "--flagfile=/dev/null",
        &format!("--database_path={}", rocksdb.display()),
        "--database_dump",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("instance_uuid_v1"), "{}", r.stdout);
    assert_eq!(snapshot(&rocksdb), before);
}
