//! `kill -9` at random moments neither loses nor duplicates a differential row.
//!
//! The test binary plays two roles. As the child (env `OXQUERY_OUTBOX_CRASH_DIR` set) it
//! runs three differential queries over a result set that changes every step, through
//! `results::compute` → `outbox::record` → `Outbox::drain` into an append-only file sink
//! with exact resume, forever (or, in the final phase, until every query reached a
//! minimum counter and the outbox is empty). As the parent it starts the child, SIGKILLs
//! it after a random delay, over and over, then lets a last child finish and checks the
//! log: for each query, counters 0, 1, 2, … each exactly once, each counter's lines
//! exactly the expected multiset difference (computed here independently), removed before
//! added, and no torn or repeated line.
//!
//! Three variants: this file's append-only sink (one `write` per line and a short pause, so
//! kills often cut a batch in half) with a minimal line format, the daemon's own
//! `filesystem` logger with osquery's event-format lines, and the same logger while its
//! file is renamed now and then, as logrotate does (`osqueryd.results.log-<n>`), with
//! the child running or between a kill and the restart: the lines are then checked
//! across the renamed files and the last one, in order.

use oxquery_daemon::item::{Decorations, LogLine, Payload, ResultItem, Row, Stream};
use oxquery_daemon::logger::{FilesystemOptions, FilesystemSink, FormatOptions, format_item};
use oxquery_daemon::outbox::{Outbox, OutboxConfig, record};
use oxquery_daemon::results::{Run, ScheduledQuery, compute};
use oxquery_daemon::sink::Sink;
use oxquery_store::{Domain, Store};
use oxquery_table::Value;
use oxquery_test_support::{poll, seed};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DIR_ENV: &str = "OXQUERY_OUTBOX_CRASH_DIR";
/// The kill delays' random seed, to replay a failure (printed by every run).
const KILL_SEED_ENV: &str = "OXQUERY_KILL_SEED";
const FINAL_ENV: &str = "OXQUERY_OUTBOX_CRASH_FINAL";
/// `test` (this file's sink and line format) or `filesystem` (the daemon's logger).
const SINK_ENV: &str = "OXQUERY_OUTBOX_CRASH_SINK";
const QUERIES: [&str; 3] = ["alpha", "beta", "gamma"];
/// Counter every query reaches in the final phase, if the kills left it short.
const MIN_COUNTER: u64 = 10;
const TEST_LOG: &str = "results.log";

// ---- the changing result set, shared by child (to produce) and parent (to expect) ----

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The rows query `q` returns at `step`: slots that change at different rates, values from
/// a small range so equal rows (duplicates) are common, and a marker row so every step
/// differs from the one before.
fn rows_at(q: usize, step: u64) -> Vec<Row> {
    let mut rows = Vec::new();
    for slot in 0..24u64 {
        let period = 1 + slot % 5;
        let h = mix(((q as u64) << 40) ^ (slot << 20) ^ (step / period));
        if h.is_multiple_of(4) {
            continue;
        }
        let mut row = Row::new();
        row.insert("k".into(), Value::Integer((slot % 6) as i64));
        row.insert("v".into(), Value::Text(format!("v{}", h % 3)));
        row.insert("pad".into(), Value::Text("x".repeat(40)));
        rows.push(row);
    }
    let mut marker = Row::new();
    marker.insert("k".into(), Value::Integer(-1));
    marker.insert("v".into(), Value::Text(format!("step{step}")));
    rows.push(marker);
    rows
}

/// A row as a JSON object of strings (how event lines show columns without
/// `--logger_numerics`), for comparisons.
fn canon(row: &Row) -> String {
    let map: serde_json::Map<String, serde_json::Value> = row
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.to_string())))
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// The same for columns parsed back from a log line.
fn canon_json(columns: &serde_json::Value) -> String {
    let map: serde_json::Map<String, serde_json::Value> = columns
        .as_object()
        .expect("columns object")
        .iter()
        .map(|(k, v)| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            (k.clone(), serde_json::Value::from(text))
        })
        .collect();
    serde_json::Value::Object(map).to_string()
}

/// One event-format-like line per row, removed rows first.
fn format(item: &ResultItem) -> Vec<LogLine> {
    let Payload::Diff { added, removed } = &item.payload else {
        return Vec::new();
    };
    let line = |row: &Row, action: &str| LogLine {
        stream: Stream::Results,
        text: format!(
            r#"{{"name":"{}","counter":{},"action":"{action}","columns":{}}}"#,
            item.name,
            item.counter,
            canon(row)
        )
        .into_bytes(),
    };
    let mut out: Vec<LogLine> = removed.iter().map(|r| line(r, "removed")).collect();
    out.extend(added.iter().map(|r| line(r, "added")));
    out
}

// ---- the child ----

/// Append-only file sink: checkpoint = file length; every line is its own `write` (so a
/// kill can land mid-batch) and the batch is fsynced before `write` returns.
struct FileSink {
    path: PathBuf,
    log: File,
}

impl FileSink {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        for line in bytes.split_inclusive(|&b| b == b'\n') {
            f.write_all(line)?;
            // A slow destination: widens the window in which a kill cuts a batch.
            std::thread::sleep(Duration::from_micros(300));
        }
        f.sync_data()
    }
}

fn joined(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.push(b'\n');
    }
    out
}

impl Sink for FileSink {
    fn name(&self) -> &'static str {
        "testfile"
    }
    fn checkpoint(&mut self, _: Stream) -> io::Result<Option<String>> {
        let len = fs::metadata(&self.path).map_or(0, |m| m.len());
        Ok(Some(len.to_string()))
    }
    fn write(&mut self, _: Stream, lines: &[Vec<u8>]) -> io::Result<()> {
        self.append(&joined(lines))
    }
    fn resume(&mut self, _: Stream, checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()> {
        let at: u64 = checkpoint.parse().map_err(io::Error::other)?;
        let expected = joined(lines);
        let mut present = Vec::new();
        if let Ok(mut f) = File::open(&self.path) {
            f.seek(SeekFrom::Start(at))?;
            f.read_to_end(&mut present)?;
        }
        if !expected.starts_with(&present) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "bytes after the checkpoint are not a prefix of the batch",
            ));
        }
        writeln!(
            self.log,
            "resume {} of {} bytes present",
            present.len(),
            expected.len()
        )?;
        self.append(&expected[present.len()..])
    }
}

fn stored_counter(store: &Store, name: &str) -> Option<u64> {
    store
        .get_text(Domain::Queries, &format!("{name}counter"))
        .unwrap()
        .and_then(|t| t.parse().ok())
}

fn child(dir: &Path) {
    let finish = std::env::var_os(FINAL_ENV).is_some();
    let mut store = Store::open(&dir.join("osquery.db")).unwrap();
    let real = std::env::var(SINK_ENV).is_ok_and(|v| v == "filesystem");
    let sink: Box<dyn Sink> = if real {
        Box::new(FilesystemSink::open(FilesystemOptions::new(dir)).unwrap())
    } else {
        Box::new(FileSink {
            path: dir.join(TEST_LOG),
            log: OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("child.log"))
                .unwrap(),
        })
    };
    let options = FormatOptions::default();
    let format = |item: &ResultItem| {
        if real {
            format_item(item, &options)
        } else {
            format(item)
        }
    };
    let config = OutboxConfig {
        batch_lines: 8,
        retry_min: Duration::ZERO,
        retry_max: Duration::ZERO,
        ..OutboxConfig::default()
    };
    let mut outbox = Outbox::new(vec![sink], config);
    loop {
        let report = outbox.drain(&mut store).unwrap();
        if report.resumed > 0 {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("drain.log"))
                .unwrap();
            writeln!(f, "resumed {}", report.resumed).unwrap();
        }
        if let Some((_, e)) = report.failed.first() {
            eprintln!("sink failed: {e}");
            std::process::exit(3);
        }
        // The query furthest behind runs next; its step follows from its stored counter.
        let (q, counter) = (0..QUERIES.len())
            .map(|q| (q, stored_counter(&store, QUERIES[q])))
            .min_by_key(|&(_, c)| c.map_or(0, |c| c + 1))
            .unwrap();
        if finish && counter.is_some_and(|c| c >= MIN_COUNTER) {
            std::process::exit(0);
        }
        let step = counter.map_or(0, |c| c + 1);
        let query = ScheduledQuery::new(QUERIES[q], "SELECT k, v, pad FROM t");
        let run = Run {
            unix_time: 1_700_000_000 + step as i64,
            epoch: 0,
            decorations: Decorations::new(),
        };
        let outcome = compute(&store, &query, rows_at(q, step), run).unwrap();
        record(&mut store, &outcome, format).unwrap();
    }
}

#[test]
fn outbox_crash_child_role() {
    // Only does something when the parent test started this binary as its child.
    if let Some(dir) = std::env::var_os(DIR_ENV) {
        child(Path::new(&dir));
    }
}

// ---- the parent ----

/// Naive multiset difference, independent of the daemon's hash-based one.
fn expected_lines(q: usize, counter: u64) -> (Vec<String>, Vec<String>) {
    let now: Vec<String> = rows_at(q, counter).iter().map(canon).collect();
    if counter == 0 {
        return (now, Vec::new());
    }
    let mut before: Vec<String> = rows_at(q, counter - 1).iter().map(canon).collect();
    let mut added = Vec::new();
    for row in now {
        match before.iter().position(|b| *b == row) {
            Some(i) => {
                before.remove(i);
            }
            None => added.push(row),
        }
    }
    (added, before)
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = mix(self.0.wrapping_add(0x9e37_79b9_7f4a_7c15));
        self.0 % n
    }
}

fn spawn(dir: &Path, sink: &str, last: bool) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "outbox_crash_child_role",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(DIR_ENV, dir)
    .env(SINK_ENV, sink)
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    if last {
        cmd.env(FINAL_ENV, "1");
    }
    cmd.spawn().expect("start the child")
}

#[test]
fn outbox_kill_9_loses_and_duplicates_nothing() {
    if std::env::var_os(DIR_ENV).is_none() {
        kill_again_and_again("test", TEST_LOG, 60, false);
    }
}

#[test]
fn outbox_kill_9_with_the_filesystem_logger() {
    if std::env::var_os(DIR_ENV).is_none() {
        kill_again_and_again("filesystem", "osqueryd.results.log", 50, false);
    }
}

#[test]
fn outbox_kill_9_with_the_filesystem_logger_rotated_by_renames() {
    if std::env::var_os(DIR_ENV).is_none() {
        kill_again_and_again("filesystem", "osqueryd.results.log", 50, true);
    }
}

fn kill_again_and_again(sink: &str, log_file: &str, kills_wanted: usize, renames: bool) {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    eprint!("{sink}: ");
    let mut rng = Rng(seed(KILL_SEED_ENV));

    let mut kills = 0;
    // Files renamed away from `log_file`, oldest first.
    let mut rotated: Vec<PathBuf> = Vec::new();
    let mut rotate = |kills: usize| {
        let to = dir.join(format!("{log_file}-{kills}"));
        if fs::rename(dir.join(log_file), &to).is_ok() {
            rotated.push(to);
        }
    };
    while kills < kills_wanted {
        let mut child = spawn(dir, sink, false);
        // The child's life before the kill, on purpose a random time: mostly short so kills
        // land in start-up and recovery too, some long so the state moves on.
        let delay = if rng.below(4) == 0 {
            20 + rng.below(120)
        } else {
            rng.below(40)
        };
        std::thread::sleep(Duration::from_millis(delay));
        if let Some(status) = child.try_wait().unwrap() {
            panic!("child exited by itself during the kill phase: {status}");
        }
        // A third of the kills come with a rename: half while the child writes, half
        // between its death and the next start (which then resumes the cut batch).
        let rename = renames && rng.below(3) == 0;
        let before_kill = rng.below(2) == 0;
        if rename && before_kill {
            rotate(kills);
            std::thread::sleep(Duration::from_millis(rng.below(20)));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if rename && !before_kill {
            rotate(kills);
        }
        kills += 1;
    }
    let mut last = spawn(dir, sink, true);
    let Some(status) = poll(Duration::from_secs(60), || last.try_wait().unwrap()) else {
        let _ = last.kill();
        panic!("the final child did not finish");
    };
    assert!(status.success(), "final child: {status}");

    // Every line whole, and per query: counters consecutive from 0, each counter's lines
    // exactly the expected difference, removed before added.
    let rotations = rotated.len();
    rotated.push(dir.join(log_file));
    let text: String = rotated
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    let mut per_query: BTreeMap<String, Vec<(u64, String, String)>> = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("torn line {line:?}: {e}"));
        per_query
            .entry(v["name"].as_str().unwrap().to_owned())
            .or_default()
            .push((
                v["counter"].as_u64().unwrap(),
                v["action"].as_str().unwrap().to_owned(),
                canon_json(&v["columns"]),
            ));
    }
    let store = Store::open(&dir.join("osquery.db")).unwrap();
    let mut total = 0;
    for (q, name) in QUERIES.iter().enumerate() {
        let lines = per_query.remove(*name).unwrap_or_default();
        let last_counter = stored_counter(&store, name).expect("query ran");
        assert!(last_counter >= MIN_COUNTER);
        let mut at = 0;
        for counter in 0..=last_counter {
            let (added, removed) = expected_lines(q, counter);
            let n = added.len() + removed.len();
            let got = &lines[at..(at + n).min(lines.len())];
            assert!(
                got.len() == n && got.iter().all(|(c, _, _)| *c == counter),
                "{name}: counter {counter} expected {n} lines at line {at}, got {got:?}"
            );
            let mut got_removed: Vec<&str> = Vec::new();
            let mut got_added: Vec<&str> = Vec::new();
            for (i, (_, action, cols)) in got.iter().enumerate() {
                match action.as_str() {
                    "removed" => {
                        assert!(i < removed.len(), "{name} {counter}: removed after added");
                        got_removed.push(cols);
                    }
                    "added" => got_added.push(cols),
                    other => panic!("action {other}"),
                }
            }
            let sorted = |mut v: Vec<String>| {
                v.sort();
                v
            };
            let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
            assert_eq!(
                sorted(owned(got_removed)),
                sorted(removed),
                "{name} {counter} removed"
            );
            assert_eq!(
                sorted(owned(got_added)),
                sorted(added),
                "{name} {counter} added"
            );
            at += n;
        }
        assert_eq!(
            at,
            lines.len(),
            "{name}: lines beyond counter {last_counter}"
        );
        total += at;
    }
    assert!(
        per_query.is_empty(),
        "unknown queries {:?}",
        per_query.keys()
    );
    for prefix in ["line.r", "line.s"] {
        let queue = oxquery_store::Queue {
            domain: Domain::Logs,
            prefix,
        };
        assert_eq!(store.queue_first(queue).unwrap(), None, "outbox drained");
    }
    // What the interrupted batches looked like when resumed: none, part or all written.
    let resumes = fs::read_to_string(dir.join("child.log")).unwrap_or_default();
    let (mut none, mut part, mut whole) = (0, 0, 0);
    for l in resumes.lines() {
        let w: Vec<&str> = l.split(' ').collect();
        match (w[1], w[3]) {
            ("0", _) => none += 1,
            (a, b) if a == b => whole += 1,
            _ => part += 1,
        }
    }
    let resumed = fs::read_to_string(dir.join("drain.log")).unwrap_or_default();
    let resumed: u64 = resumed
        .lines()
        .filter_map(|l| l.strip_prefix("resumed ")?.parse::<u64>().ok())
        .sum();
    let detail = if sink == "test" {
        format!(" ({none} with nothing written, {part} cut mid-batch, {whole} fully written)")
    } else {
        String::new()
    };
    eprintln!(
        "{sink}: {kills} kills, {rotations} renames, {total} lines checked, 0 duplicates, \
         0 lost; {resumed} interrupted batches resumed{detail}; {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
