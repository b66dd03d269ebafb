//! The sinks: filesystem files, modes, checkpoints, crash resume, rotation; stdout;
//! syslog; fan-out; plugin lists.

mod sink_support;
use sink_support::{joined, lines, mode, read};

use oxquery_daemon::item::Stream;
use oxquery_daemon::logger::{
    self, FanOut, FilesystemOptions, FilesystemSink, LoggerSettings, StatusRecord, StdoutSink,
    SyslogSink,
};
use oxquery_daemon::sink::Sink;
use oxquery_test_support::require_tool;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

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
    let batch = |i: u32| {
        vec![
            format!("{i:0>10}").into_bytes(),
            format!("{i:0>12}").into_bytes(),
        ]
    };
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
    assert_eq!(unzstd(&base.with_extension("log.2.zst")), joined(&batch(1)));
    assert!(!base.with_extension("log.2").exists());
    assert!(
        !base.with_extension("log.3.zst").exists(),
        "only max_files kept"
    );
    assert_eq!(mode(&base), 0o640);
    // Below the size nothing rotates.
    sink.write(Stream::Results, &[b"x".to_vec()]).unwrap();
    assert_eq!(read(&base), "x\n");
}

/// Decodes a `.zst` file with the crate's decoder and, when installed, the `zstd` CLI
/// (both must agree); `.ci/run` installs the CLI.
fn unzstd(p: &Path) -> String {
    let raw = fs::read(p).unwrap();
    assert_eq!(
        &raw[..4],
        &[0x28, 0xb5, 0x2f, 0xfd],
        "zstd frame magic in {p:?}"
    );
    let ours = String::from_utf8(zstd::decode_all(&raw[..]).unwrap()).unwrap();
    if let Some(zstd) = require_tool("zstd") {
        let out = Command::new(zstd).arg("-dc").arg(p).output().unwrap();
        assert!(out.status.success(), "zstd -dc {p:?}: {out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), ours, "{p:?}");
    }
    ours
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn rotating(dir: &Path, size: u64, max: u64) -> FilesystemSink {
    let mut opts = FilesystemOptions::new(dir);
    opts.rotate = true;
    opts.rotate_size = size;
    opts.rotate_max_files = max;
    FilesystemSink::open(opts).unwrap()
}

#[test]
fn rotation_compresses_older_files_with_zstd() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("osqueryd.results.log");
    let rot = |i: u32| -> PathBuf {
        let suffix = if i == 1 {
            "1".to_owned()
        } else {
            format!("{i}.zst")
        };
        dir.path().join(format!("osqueryd.results.log.{suffix}"))
    };
    let mut sink = rotating(dir.path(), 80, 4);
    // Batches of 10 lines (>= 80 bytes): every batch ends with a rotation.
    let batch = |i: u32| lines(i * 10..i * 10 + 10);
    assert!(joined(&batch(0)).len() >= 80);
    for i in 0..7 {
        sink.write(Stream::Results, &batch(i)).unwrap();
        let kept = (i + 1).min(4);
        let mut expected = vec!["osqueryd.results.log".to_owned()];
        expected
            .extend((1..=kept).map(|k| rot(k).file_name().unwrap().to_str().unwrap().to_owned()));
        expected.sort();
        assert_eq!(names(dir.path()), expected, "after batch {i}");
        // .1 is the batch just written, plain; .k.zst holds batch i+1-k.
        assert_eq!(read(&rot(1)), joined(&batch(i)));
        for k in 2..=kept {
            assert_eq!(
                unzstd(&rot(k)),
                joined(&batch(i + 1 - k)),
                "after batch {i}"
            );
            assert_eq!(mode(&rot(k)), 0o640);
        }
    }
    assert_eq!(read(&base), "");
    // A smaller max_files later drops everything above it.
    drop(sink);
    let mut sink = rotating(dir.path(), 80, 2);
    sink.write(Stream::Results, &batch(7)).unwrap();
    assert_eq!(
        names(dir.path()),
        [
            "osqueryd.results.log",
            "osqueryd.results.log.1",
            "osqueryd.results.log.2.zst"
        ]
    );
    assert_eq!(unzstd(&rot(2)), joined(&batch(6)));
    // max_files = 1 keeps only the plain .1 and compresses nothing.
    drop(sink);
    let mut sink = rotating(dir.path(), 80, 1);
    sink.write(Stream::Results, &batch(8)).unwrap();
    assert_eq!(
        names(dir.path()),
        ["osqueryd.results.log", "osqueryd.results.log.1"]
    );
    assert_eq!(read(&rot(1)), joined(&batch(8)));
}

#[test]
fn rotation_after_crash_during_compression() {
    let dir = tempfile::tempdir().unwrap();
    let p = |s: &str| dir.path().join(format!("osqueryd.results.log{s}"));
    let batch = |i: u32| lines(i * 10..i * 10 + 10);
    let mut sink = rotating(dir.path(), 80, 3);
    sink.write(Stream::Results, &batch(0)).unwrap();
    sink.write(Stream::Results, &batch(1)).unwrap();
    drop(sink);
    // Crash while compressing .1: a truncated temporary file next to the intact .1.
    let full = zstd::encode_all(joined(&batch(1)).as_bytes(), 1).unwrap();
    fs::write(p(".2.zst.tmp"), &full[..full.len() / 2]).unwrap();
    let mut sink = rotating(dir.path(), 80, 3);
    sink.write(Stream::Results, &batch(2)).unwrap();
    assert_eq!(read(&p(".1")), joined(&batch(2)));
    assert_eq!(unzstd(&p(".2.zst")), joined(&batch(1)));
    assert_eq!(unzstd(&p(".3.zst")), joined(&batch(0)));
    assert!(!p(".2.zst.tmp").exists());
    drop(sink);

    // Crash after .2.zst was renamed into place but before the current file replaced
    // .1: both hold batch 2. The next rotation archives it once, not twice.
    fs::remove_file(p(".3.zst")).unwrap();
    fs::rename(p(".2.zst"), p(".3.zst")).unwrap();
    fs::write(
        p(".2.zst"),
        zstd::encode_all(joined(&batch(2)).as_bytes(), 1).unwrap(),
    )
    .unwrap();
    let mut sink = rotating(dir.path(), 80, 3);
    sink.write(Stream::Results, &batch(3)).unwrap();
    assert_eq!(read(&p(".1")), joined(&batch(3)));
    assert_eq!(unzstd(&p(".2.zst")), joined(&batch(2)));
    assert_eq!(unzstd(&p(".3.zst")), joined(&batch(1)));
    assert!(!p(".4.zst").exists());
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
    s.plugins = "filesystem,scribe".into();
    let err = logger::build_sinks(&s).err().unwrap();
    assert_eq!(err.to_string(), "unknown logger plugin: scribe");
}
