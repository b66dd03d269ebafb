//! The status log: glog files and symlinks, filtering by severity, stderr/stdout copies.

use log::Log;
use oxquery_daemon::logger::{GlogFiles, StatusLogger, StatusOptions, StatusOutput, StatusRecord};
use std::fs;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn options(dir: Option<&std::path::Path>) -> StatusOptions {
    StatusOptions {
        glog_dir: dir.map(|d| d.to_owned()),
        mode: 0o640,
        stdout: false,
        syslog: false,
        stderr: true,
        min_status: 0,
        min_stderr: 1,
        verbose: false,
    }
}

fn status_logger(o: &StatusOptions, stdout: &Shared, stderr: &Shared) -> StatusLogger {
    StatusLogger::with_outputs(o.filter(), o.outputs(stdout.clone(), stderr.clone()))
}

fn rec(severity: u8, message: &str) -> StatusRecord {
    StatusRecord {
        severity,
        file: "scheduler.rs".into(),
        line: 42,
        message: message.into(),
        time: SystemTime::now(),
        tid: 777,
    }
}

fn body(path: &std::path::Path) -> Vec<String> {
    // Skip glog's three header lines.
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(3)
        .map(|l| l.split_once("] ").unwrap().1.to_owned())
        .collect()
}

#[test]
fn glog_files_symlinks_and_severity_fanout() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = Shared::default();
    let logger = status_logger(&options(Some(dir.path())), &Shared::default(), &stderr);
    logger.write_record(&rec(0, "info line"));
    logger.write_record(&rec(1, "warning line"));
    logger.write_record(&rec(2, "error line"));

    let pid = std::process::id();
    for (sev, expected) in [
        ("INFO", vec!["info line", "warning line", "error line"]),
        ("WARNING", vec!["warning line", "error line"]),
        ("ERROR", vec!["error line"]),
    ] {
        let link = dir.path().join(format!("osqueryd.{sev}"));
        let target = fs::read_link(&link).unwrap();
        let name = target.to_str().unwrap();
        assert!(!target.is_absolute(), "relative link like glog's");
        let prefix = format!("osqueryd.{sev}.");
        let stamp = name.strip_prefix(&prefix).unwrap();
        let (date_time, file_pid) = stamp.rsplit_once('.').unwrap();
        assert_eq!(file_pid, pid.to_string());
        assert_eq!(date_time.len(), 15, "{name}");
        assert_eq!(&date_time[8..9], "-");
        assert!(
            date_time
                .replace('-', "")
                .bytes()
                .all(|b| b.is_ascii_digit())
        );
        assert_eq!(body(&link), expected, "{sev}");
        let meta = fs::metadata(&link).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    }
    let header = fs::read_to_string(dir.path().join("osqueryd.INFO")).unwrap();
    let mut h = header.lines();
    assert!(h.next().unwrap().starts_with("Log file created at: "));
    assert!(h.next().unwrap().starts_with("Running on machine: "));
    assert_eq!(
        h.next().unwrap(),
        "Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg"
    );
    // --logger_min_stderr=1: only warning and error were copied to stderr.
    let err = stderr.text();
    let got: Vec<&str> = err.lines().collect();
    assert_eq!(got.len(), 2, "{err}");
    assert!(got[0].starts_with('W') && got[0].ends_with("   777 scheduler.rs:42] warning line"));
    assert!(got[1].starts_with('E') && got[1].ends_with("error line"));
}

#[test]
fn stale_symlink_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("nowhere", dir.path().join("osqueryd.INFO")).unwrap();
    let mut files = GlogFiles::new(dir.path(), "osqueryd", 0o600);
    files.write(&rec(0, "x")).unwrap();
    assert_eq!(body(&dir.path().join("osqueryd.INFO")), ["x"]);
}

#[test]
fn glog_line_and_file_name_shapes() {
    let t = UNIX_EPOCH + Duration::from_micros(1_786_052_772_000_042);
    let mut r = rec(3, "boom");
    r.time = t;
    r.tid = 5;
    let line = r.glog_line();
    // Local time: compare with libc's view of the same instant.
    let secs = 1_786_052_772 as libc::time_t;
    // SAFETY: tm is plain old data and both pointers are valid for the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    let expected = format!(
        "F{:02}{:02} {:02}:{:02}:{:02}.000042     5 scheduler.rs:42] boom",
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    );
    assert_eq!(line, expected);
    assert_eq!(
        oxquery_format::glog::file_name("osqueryd", "INFO", t, 99),
        format!(
            "osqueryd.INFO.{:04}{:02}{:02}-{:02}{:02}{:02}.99",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    );
    assert_eq!(
        r.plain_line(),
        "severity=3 location=scheduler.rs:42 message=boom"
    );
}

#[test]
fn min_status_verbose_and_stdout() {
    let stdout = Shared::default();
    let stderr = Shared::default();
    let mut o = options(None);
    o.min_status = 1;
    o.min_stderr = 0;
    o.stdout = true;
    let logger = status_logger(&o, &stdout, &stderr);
    let meta = |level| log::MetadataBuilder::new().level(level).build();
    assert!(!logger.enabled(&meta(log::Level::Info)));
    assert!(logger.enabled(&meta(log::Level::Warn)));
    assert!(!logger.enabled(&meta(log::Level::Debug)));
    logger.log(
        &log::Record::builder()
            .level(log::Level::Warn)
            .file(Some("crates/daemon/src/x.rs"))
            .line(Some(9))
            .args(format_args!("careful"))
            .build(),
    );
    logger.log(
        &log::Record::builder()
            .level(log::Level::Info)
            .args(format_args!("dropped"))
            .build(),
    );
    assert_eq!(
        stdout.text(),
        "severity=1 location=x.rs:9 message=careful\n"
    );
    assert!(
        stderr.text().ends_with(" x.rs:9] careful\n"),
        "{}",
        stderr.text()
    );

    o.verbose = true;
    let verbose = status_logger(&o, &Shared::default(), &Shared::default());
    assert!(verbose.enabled(&meta(log::Level::Debug)));
    assert!(verbose.enabled(&meta(log::Level::Info)));
}

/// Collects what it is given (an output added late, as an extension's logger plugin).
struct Collect(Arc<Mutex<Vec<String>>>);

impl StatusOutput for Collect {
    fn write(&mut self, record: &StatusRecord) -> std::io::Result<()> {
        self.0.lock().unwrap().push(record.message.clone());
        Ok(())
    }
}

#[test]
fn an_output_added_late_gets_the_lines_logged_before_it_once_each() {
    let (stdout, stderr) = (Shared::default(), Shared::default());
    let logger = status_logger(&options(None), &stdout, &stderr).with_backlog();
    let control = logger.control();
    logger.write_record(&rec(1, "before the plugin"));
    logger.write_record(&rec(0, "still before"));
    let late = Arc::new(Mutex::new(Vec::new()));
    control.add_output_with_backlog(Box::new(Collect(Arc::clone(&late))));
    logger.write_record(&rec(2, "after"));
    assert_eq!(
        *late.lock().unwrap(),
        ["before the plugin", "still before", "after"]
    );

    // Once start-up is over, an output added gets only what comes next.
    control.end_backlog();
    let later = Arc::new(Mutex::new(Vec::new()));
    control.add_output_with_backlog(Box::new(Collect(Arc::clone(&later))));
    logger.write_record(&rec(0, "last"));
    assert_eq!(*later.lock().unwrap(), ["last"]);
    // A logger made without a backlog keeps nothing.
    let plain = status_logger(&options(None), &stdout, &stderr);
    plain.write_record(&rec(0, "unkept"));
    let none = Arc::new(Mutex::new(Vec::new()));
    plain
        .control()
        .add_output_with_backlog(Box::new(Collect(Arc::clone(&none))));
    assert!(none.lock().unwrap().is_empty());
}

#[test]
fn the_backlog_keeps_the_newest_lines_up_to_its_bound() {
    let (stdout, stderr) = (Shared::default(), Shared::default());
    let logger = status_logger(&options(None), &stdout, &stderr).with_backlog();
    let total = oxquery_daemon::logger::status::BACKLOG_MAX + 5;
    for i in 0..total {
        logger.write_record(&rec(0, &format!("line {i}")));
    }
    let late = Arc::new(Mutex::new(Vec::new()));
    logger
        .control()
        .add_output_with_backlog(Box::new(Collect(Arc::clone(&late))));
    let got = late.lock().unwrap();
    assert_eq!(got.len(), oxquery_daemon::logger::status::BACKLOG_MAX);
    assert_eq!(got[0], "line 5");
    assert_eq!(got.last().unwrap(), &format!("line {}", total - 1));
}
