//! The filesystem logger follows an outside rotation: a results or status log renamed
//! (logrotate) or deleted with its directory (`rm -rf`) is replaced by a new file at the
//! next batch or line, the directory comes back with its mode and owner, SIGHUP reopens
//! the files, a batch caught by a deletion is written again exactly once, and a full disk
//! leaves no trail of empty status files.

mod sink_support;
use sink_support::{joined, lines, mode, read};

use oxquery_daemon::item::{Decorations, LogLine, Payload, ResultItem, Row, Stream};
use oxquery_daemon::logger::{
    FilesystemOptions, FilesystemSink, GlogFiles, StatusLogger, StatusOutput, StatusRecord,
};
use oxquery_daemon::outbox::{Outbox, OutboxConfig, record};
use oxquery_daemon::results::{Run, ScheduledQuery, compute};
use oxquery_daemon::sink::Sink;
use oxquery_store::Store;
use oxquery_table::Value;
use oxquery_test_support::require;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

/// One batch the way the outbox hands it over: checkpoint, then write.
fn batch(sink: &mut FilesystemSink, l: &[Vec<u8>]) {
    sink.checkpoint(Stream::Results).unwrap();
    sink.write(Stream::Results, l).unwrap();
}

#[test]
fn a_renamed_results_log_is_followed_at_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("osqueryd.results.log");
    let mut sink = FilesystemSink::open(FilesystemOptions::new(dir.path())).unwrap();
    batch(&mut sink, &lines(0..2));
    // What logrotate does (without copytruncate), twice.
    fs::rename(&log, dir.path().join("osqueryd.results.log.1")).unwrap();
    batch(&mut sink, &lines(2..4));
    fs::rename(
        dir.path().join("osqueryd.results.log.1"),
        dir.path().join("osqueryd.results.log.2"),
    )
    .unwrap();
    fs::rename(&log, dir.path().join("osqueryd.results.log.1")).unwrap();
    // A caller that does not take checkpoints is followed at its write.
    sink.write(Stream::Results, &lines(4..5)).unwrap();
    assert_eq!(
        read(&dir.path().join("osqueryd.results.log.2")),
        joined(&lines(0..2))
    );
    assert_eq!(
        read(&dir.path().join("osqueryd.results.log.1")),
        joined(&lines(2..4))
    );
    assert_eq!(read(&log), joined(&lines(4..5)));
    assert_eq!(mode(&log), 0o640);
}

#[test]
fn a_deleted_directory_is_created_again_with_its_mode_and_owner() {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("logs");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o751)).unwrap();
    // As root, an owner other than ours shows that the owner comes back too.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&dir, Some(1), Some(2)).unwrap();
    }
    let before = fs::metadata(&dir).unwrap();
    let mut opts = FilesystemOptions::new(&dir);
    opts.mode = 0o600;
    let mut sink = FilesystemSink::open(opts).unwrap();
    let mut glog = GlogFiles::new(&dir, "osqueryd", 0o600);
    batch(&mut sink, &lines(0..1));
    glog.write(&rec(1, "before")).unwrap();

    fs::remove_dir_all(&dir).unwrap();
    batch(&mut sink, &lines(1..3));
    let after = fs::metadata(&dir).unwrap();
    assert_eq!(after.mode() & 0o7777, 0o751);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    let log = dir.join("osqueryd.results.log");
    assert_eq!(read(&log), joined(&lines(1..3)));
    assert_eq!(mode(&log), 0o600);

    // The status files and their links come back too, in the same directory.
    glog.write(&rec(1, "after")).unwrap();
    for severity in ["INFO", "WARNING"] {
        let link = dir.join(format!("osqueryd.{severity}"));
        let target = fs::read_link(&link).unwrap();
        assert!(
            target
                .to_string_lossy()
                .starts_with(&format!("osqueryd.{severity}.")),
            "{target:?}"
        );
        let text = read(&link);
        assert!(text.starts_with("Log file created at: "), "{text}");
        assert!(
            text.contains("] after\n") && !text.contains("before"),
            "{text}"
        );
        assert_eq!(mode(&link), 0o600);
    }
    assert!(!dir.join("osqueryd.ERROR").exists());
}

fn rec(severity: u8, message: &str) -> StatusRecord {
    StatusRecord {
        severity,
        file: "logger_follow.rs".into(),
        line: 1,
        message: message.into(),
        time: SystemTime::now(),
        tid: 1,
    }
}

/// The `osqueryd.<severity>.*` files in `dir`.
fn status_files(dir: &Path, severity: &str) -> Vec<PathBuf> {
    let prefix = format!("osqueryd.{severity}.");
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_renamed_status_log_gets_a_new_file_and_link() {
    let dir = tempfile::tempdir().unwrap();
    let mut glog = GlogFiles::new(dir.path(), "osqueryd", 0o640);
    glog.write(&rec(0, "one")).unwrap();
    let first = status_files(dir.path(), "INFO");
    assert_eq!(first.len(), 1);
    let rotated = dir.path().join("osqueryd.INFO.rotated");
    fs::rename(&first[0], &rotated).unwrap();
    glog.write(&rec(0, "two")).unwrap();
    let now = status_files(dir.path(), "INFO");
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(read(&rotated).ends_with("] one\n"));
    let text = read(&dir.path().join("osqueryd.INFO"));
    assert!(text.starts_with("Log file created at: ") && text.ends_with("] two\n"));
    assert!(!text.contains("] one"), "{text}");
}

#[test]
fn reopen_creates_the_results_log_again_and_status_files_at_their_next_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("osqueryd.results.log");
    let mut sink = FilesystemSink::open(FilesystemOptions::new(dir.path())).unwrap();
    let logger = StatusLogger::with_outputs(
        oxquery_daemon::logger::StatusFilter {
            min_status: 0,
            verbose: false,
        },
        vec![Box::new(GlogFiles::new(dir.path(), "osqueryd", 0o640))],
    );
    let control = logger.control();
    logger.write_record(&rec(0, "one"));
    batch(&mut sink, &lines(0..1));
    fs::rename(&log, dir.path().join("osqueryd.results.log.1")).unwrap();
    let info = status_files(dir.path(), "INFO").remove(0);
    fs::remove_file(&info).unwrap();

    // What SIGHUP does: the results log exists again at once (as at start-up), empty.
    sink.reopen().unwrap();
    assert_eq!(read(&log), "");
    control.reopen();
    logger.write_record(&rec(0, "two"));
    let text = read(&dir.path().join("osqueryd.INFO"));
    assert!(
        text.ends_with("] two\n") && !text.contains("] one"),
        "{text}"
    );
    // Reopening files that are still in place changes nothing.
    sink.reopen().unwrap();
    control.reopen();
    batch(&mut sink, &lines(1..2));
    logger.write_record(&rec(0, "three"));
    assert_eq!(read(&log), joined(&lines(1..2)));
    let text = read(&dir.path().join("osqueryd.INFO"));
    assert!(
        text.contains("] two\n") && text.ends_with("] three\n"),
        "{text}"
    );
    assert_eq!(status_files(dir.path(), "INFO").len(), 1);
}

// ---- a deletion in the middle of a batch, through the outbox ----

/// The daemon's filesystem sink, with the results file deleted between the checkpoint
/// and the write of a batch when armed (an `rm` racing the logger).
struct DeletedMidBatch {
    inner: FilesystemSink,
    path: PathBuf,
    armed: Arc<AtomicBool>,
}

impl Sink for DeletedMidBatch {
    fn name(&self) -> &'static str {
        "filesystem"
    }
    fn checkpoint(&mut self, stream: Stream) -> io::Result<Option<String>> {
        self.inner.checkpoint(stream)
    }
    fn write(&mut self, stream: Stream, lines: &[Vec<u8>]) -> io::Result<()> {
        if self.armed.swap(false, Ordering::SeqCst) {
            fs::remove_file(&self.path)?;
        }
        self.inner.write(stream, lines)
    }
    fn resume(&mut self, stream: Stream, checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()> {
        self.inner.resume(stream, checkpoint, lines)
    }
    fn can_resume(&mut self, stream: Stream, checkpoint: &str) -> io::Result<bool> {
        self.inner.can_resume(stream, checkpoint)
    }
}

/// `<name> <counter> <i>` per added row.
fn item_lines(item: &ResultItem) -> Vec<LogLine> {
    let Payload::Diff { added, .. } = &item.payload else {
        return Vec::new();
    };
    added
        .iter()
        .map(|r| LogLine {
            stream: Stream::Results,
            text: format!("{} {} {}", item.name, item.counter, r["i"]).into_bytes(),
        })
        .collect()
}

/// Records run `counter` of query `q`: rows `counter*10 .. counter*10+3`.
fn run(store: &mut Store, counter: i64) {
    let rows: Vec<Row> = (0..3)
        .map(|k| {
            [("i".to_owned(), Value::Integer(counter * 10 + k))]
                .into_iter()
                .collect()
        })
        .collect();
    let q = ScheduledQuery::new("q", "SELECT i");
    let run = Run {
        unix_time: counter,
        epoch: 0,
        decorations: Decorations::new(),
    };
    let outcome = compute(store, &q, rows, run).unwrap();
    record(store, &outcome, item_lines).unwrap();
}

#[test]
fn a_batch_written_into_a_deleted_file_goes_again_whole_into_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("osqueryd.results.log");
    let mut store = Store::in_memory().unwrap();
    let armed = Arc::new(AtomicBool::new(false));
    let sink = DeletedMidBatch {
        inner: FilesystemSink::open(FilesystemOptions::new(dir.path())).unwrap(),
        path: path.clone(),
        armed: Arc::clone(&armed),
    };
    let config = OutboxConfig {
        retry_min: Duration::ZERO,
        retry_max: Duration::ZERO,
        ..OutboxConfig::default()
    };
    let mut outbox = Outbox::new(vec![Box::new(sink)], config);
    run(&mut store, 0);
    assert!(outbox.drain(&mut store).unwrap().failed.is_empty());
    assert_eq!(read(&path), "q 0 0\nq 0 1\nq 0 2\n");

    // The next batch's file is deleted under it: the write fails (its bytes went with
    // the file), and the retry writes the whole batch into a new file, once.
    run(&mut store, 1);
    armed.store(true, Ordering::SeqCst);
    let report = outbox.drain(&mut store).unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].1.contains("deleted"), "{report:?}");
    assert!(!path.exists(), "nothing written yet");
    let report = outbox.drain(&mut store).unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.delivered, 3, "{report:?}");
    run(&mut store, 2);
    outbox.drain(&mut store).unwrap();
    assert_eq!(
        read(&path),
        "q 1 10\nq 1 11\nq 1 12\nq 2 20\nq 2 21\nq 2 22\n"
    );
    assert_eq!(outbox.pending(&store, Stream::Results).unwrap(), 0);
}

// ---- a full disk ----

#[test]
fn a_full_disk_leaves_one_status_file_and_one_line_counting_the_lost() {
    let mount_point = tempfile::tempdir().unwrap();
    let Some(fs_) = require(
        "a 1 MiB tmpfs (root)",
        oxquery_test_support::Tmpfs::mount(mount_point.path(), "size=1m,mode=0755"),
    ) else {
        return;
    };
    let dir = fs_.path().join("logs");
    fs::create_dir(&dir).unwrap();
    let mut glog = GlogFiles::new(&dir, "osqueryd", 0o640);
    let t0 = SystemTime::now();
    let at = |secs: u64, severity: u8, message: &str| StatusRecord {
        time: t0 + Duration::from_secs(secs),
        ..rec(severity, message)
    };
    glog.write(&at(0, 0, "started")).unwrap();
    let filler = fs_.fill();

    // Retries a second apart, as the outbox's warnings come: each would name a new file.
    let mut failed = 0;
    for i in 1..=5 {
        failed += usize::from(glog.write(&at(i, 1, &format!("retry {i}"))).is_err());
    }
    assert_eq!(failed, 5, "the disk is full");
    let warnings = status_files(&dir, "WARNING");
    assert!(
        warnings.len() <= 1,
        "one WARNING file at most: {warnings:?}"
    );

    fs::remove_file(&filler).unwrap();
    glog.write(&at(6, 1, "space again")).unwrap();
    glog.write(&at(7, 1, "and more")).unwrap();
    let warnings = status_files(&dir, "WARNING");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let text = read(&warnings[0]);
    let body: Vec<&str> = text.lines().skip(3).collect();
    assert_eq!(body.len(), 3, "{text}");
    assert!(
        body[0].contains("] 5 status lines could not be written to ")
            && body[0].contains("No space left on device")
            && body[0].ends_with("; writing again"),
        "{text}"
    );
    assert!(body[1].ends_with("] space again") && body[2].ends_with("] and more"));
    assert!(text.starts_with("Log file created at: "), "{text}");
    // No torn line: the INFO file holds only whole lines.
    for line in read(&dir.join("osqueryd.INFO")).lines().skip(3) {
        assert!(
            line.starts_with(['I', 'W']) && line.contains("] "),
            "{line:?}"
        );
    }
}
