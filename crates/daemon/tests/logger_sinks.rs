//! The sinks: filesystem files, modes, checkpoints, crash resume, rotation; stdout;
//! syslog; fan-out; plugin lists.

use oxquery_daemon::item::Stream;
use oxquery_daemon::logger::{
    self, FanOut, FilesystemOptions, FilesystemSink, LoggerSettings, StatusRecord, StdoutSink,
    SyslogSink,
};
use oxquery_daemon::sink::Sink;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::SystemTime;

fn lines(range: std::ops::Range<u32>) -> Vec<String> {
    range.map(|i| format!(r#"{{"n":{i}}}"#)).collect()
}

fn joined(l: &[String]) -> String {
    l.iter().map(|s| format!("{s}\n")).collect()
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn results_file_created_at_start_with_logger_mode() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = FilesystemOptions::new(dir.path());
    opts.mode = 0o600;
    let mut sink = FilesystemSink::open(opts).unwrap();
    let results = dir.path().join("osqueryd.results.log");
    let snapshots = dir.path().join("osqueryd.snapshots.log");
    assert_eq!(read(&results), "");
    assert_eq!(mode(&results), 0o600);
    assert!(!snapshots.exists(), "snapshots file appears on first use");
    sink.write(Stream::Snapshots, &lines(0..1)).unwrap();
    assert_eq!(mode(&snapshots), 0o600);
    assert_eq!(read(&snapshots), "{\"n\":0}\n");
    assert_eq!(read(&results), "");
}

#[test]
fn default_mode_is_0640() {
    let dir = tempfile::tempdir().unwrap();
    FilesystemSink::open(FilesystemOptions::new(dir.path())).unwrap();
    assert_eq!(mode(&dir.path().join("osqueryd.results.log")), 0o640);
}

#[test]
fn missing_directory_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = LoggerSettings::from_flags(&oxquery_flags::Flags::new()).unwrap();
    s.path = dir.path().join("absent");
    let err = logger::build_sinks(&s).err().expect("must fail");
    assert!(err.to_string().contains("absent"), "{err}");
}

#[test]
fn append_checkpoint_and_resume_after_torn_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("osqueryd.results.log");
    let mut sink = FilesystemSink::open(FilesystemOptions::new(dir.path())).unwrap();
    let first = lines(0..3);
    sink.write(Stream::Results, &first).unwrap();
    let cp = sink.checkpoint(Stream::Results).unwrap().unwrap();
    let ino = fs::metadata(&path).unwrap().ino();
    assert_eq!(cp, format!("{ino}:{}", joined(&first).len()));

    // A crash in the middle of the second batch: only part of it reached the file.
    let second = lines(3..6);
    let full = format!("{}{}", joined(&first), joined(&second));
    let torn = joined(&first).len() + 10;
    fs::write(&path, &full.as_bytes()[..torn]).unwrap();
    drop(sink);

    let mut sink = FilesystemSink::open(FilesystemOptions::new(dir.path())).unwrap();
    sink.resume(Stream::Results, &cp, &second).unwrap();
    assert_eq!(read(&path), full);
    // Resuming again (a crash after the resume but before "delivered") adds nothing.
    sink.resume(Stream::Results, &cp, &second).unwrap();
    assert_eq!(read(&path), full);
    // And the sink keeps appending normally.
    sink.write(Stream::Results, &lines(6..7)).unwrap();
    assert_eq!(read(&path), format!("{full}{{\"n\":6}}\n"));
}

#[test]
fn resume_cuts_garbage_after_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("osqueryd.results.log");
    let mut sink = FilesystemSink::open(FilesystemOptions::new(dir.path())).unwrap();
    sink.write(Stream::Results, &lines(0..1)).unwrap();
    let cp = sink.checkpoint(Stream::Results).unwrap().unwrap();
    let batch = lines(1..3);
    // A torn write that left zeroed blocks after a correct prefix.
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&joined(&batch).as_bytes()[..4]);
    bytes.extend_from_slice(&[0u8; 64]);
    fs::write(&path, &bytes).unwrap();
    sink.resume(Stream::Results, &cp, &batch).unwrap();
    assert_eq!(read(&path), joined(&lines(0..3)));
}

#[test]
fn resume_with_nothing_written_writes_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("osqueryd.results.log");
    let mut sink = FilesystemSink::open(FilesystemOptions::new(dir.path())).unwrap();
    let cp = sink.checkpoint(Stream::Results).unwrap().unwrap();
    sink.resume(Stream::Results, &cp, &lines(0..2)).unwrap();
    assert_eq!(read(&path), joined(&lines(0..2)));
    assert!(
        sink.resume(Stream::Results, "garbage", &lines(0..2))
            .is_err()
    );
}

#[test]
fn rotation_numbering_and_resume_into_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("osqueryd.results.log");
    let mut opts = FilesystemOptions::new(dir.path());
    opts.rotate = true;
    opts.rotate_size = 20;
    opts.rotate_max_files = 2;
    let mut sink = FilesystemSink::open(opts).unwrap();
    // Each batch is 24 bytes: every batch fills the file and triggers a rotation after it.
    let batch = |i: u32| vec![format!("{i:0>10}"), format!("{i:0>12}")];
    for i in 0..3 {
        let cp = sink.checkpoint(Stream::Results).unwrap().unwrap();
        sink.write(Stream::Results, &batch(i)).unwrap();
        if i == 2 {
            // The batch is durable and was rotated to .1 before "delivered" was
            // recorded; resuming finds it there and adds nothing.
            sink.resume(Stream::Results, &cp, &batch(i)).unwrap();
        }
    }
    assert_eq!(read(&base), "");
    assert_eq!(read(&base.with_extension("log.1")), joined(&batch(2)));
    assert_eq!(read(&base.with_extension("log.2")), joined(&batch(1)));
    assert!(
        !base.with_extension("log.3").exists(),
        "only max_files kept"
    );
    assert_eq!(mode(&base), 0o640);
    // Below the size nothing rotates.
    sink.write(Stream::Results, &["x".to_owned()]).unwrap();
    assert_eq!(read(&base), "x\n");
}

#[test]
fn stdout_sink_writes_lines_and_statuses() {
    let mut sink = StdoutSink::new(Vec::new());
    assert_eq!(sink.checkpoint(Stream::Results).unwrap(), None);
    sink.write(Stream::Results, &lines(0..2)).unwrap();
    sink.write(Stream::Snapshots, &lines(2..3)).unwrap();
    sink.write_statuses(&[StatusRecord {
        severity: 1,
        file: "scheduler.rs".into(),
        line: 12,
        message: "slow query".into(),
        time: SystemTime::now(),
        tid: 1,
    }])
    .unwrap();
    let out = String::from_utf8(sink.into_inner()).unwrap();
    assert_eq!(
        out,
        "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\nseverity=1 location=scheduler.rs:12 message=slow query\n"
    );
}

#[test]
fn syslog_sink_smoke() {
    // Only talk to a real syslog daemon when one listens; the priority mapping is unit
    // tested in the module either way.
    if !Path::new("/dev/log").exists() {
        assert_eq!(logger::syslog::status_priority(2), libc::LOG_ERR);
        return;
    }
    let mut sink = SyslogSink::open("oxquery-test", 19, false);
    assert_eq!(sink.name(), "syslog");
    assert_eq!(sink.checkpoint(Stream::Results).unwrap(), None);
    sink.write(
        Stream::Results,
        &["{\"oxquery\":\"syslog smoke test\"}".into()],
    )
    .unwrap();
}

#[test]
fn fan_out_checkpoints_and_resume() {
    let d1 = tempfile::tempdir().unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let sinks: Vec<Box<dyn Sink>> = vec![
        Box::new(FilesystemSink::open(FilesystemOptions::new(d1.path())).unwrap()),
        Box::new(StdoutSink::new(std::io::sink())),
        Box::new(FilesystemSink::open(FilesystemOptions::new(d2.path())).unwrap()),
    ];
    let mut fan = FanOut::new(sinks);
    fan.write(Stream::Results, &lines(0..1)).unwrap();
    let cp = fan.checkpoint(Stream::Results).unwrap().unwrap();
    let parts: Vec<Option<String>> = serde_json::from_str(&cp).unwrap();
    assert_eq!(parts.len(), 3);
    assert!(parts[1].is_none());
    // The first file got the batch, the second did not: resume completes both exactly.
    let batch = lines(1..3);
    fs::write(d1.path().join("osqueryd.results.log"), joined(&lines(0..3))).unwrap();
    fan.resume(Stream::Results, &cp, &batch).unwrap();
    for d in [&d1, &d2] {
        assert_eq!(
            read(&d.path().join("osqueryd.results.log")),
            joined(&lines(0..3))
        );
    }
    assert!(fan.resume(Stream::Results, "[null]", &batch).is_err());
}

#[test]
fn build_sinks_from_plugin_list() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = LoggerSettings::from_flags(&oxquery_flags::Flags::new()).unwrap();
    s.path = dir.path().to_owned();
    s.plugins = "filesystem,none".into();
    let sinks = logger::build_sinks(&s).unwrap();
    let names: Vec<_> = sinks.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["filesystem"]);
    s.plugins = "filesystem,kafka_producer".into();
    let err = logger::build_sinks(&s).err().unwrap();
    assert_eq!(err.to_string(), "unknown logger plugin: kafka_producer");
}
