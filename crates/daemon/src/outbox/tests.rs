use super::*;
use crate::item::{Decorations, Payload, Row};
use crate::results::{Run, ScheduledQuery, compute};
use oxquery_table::Value;
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

/// An in-memory sink with exact checkpoints (the line count) and injectable failures.
#[derive(Default)]
struct MemState {
    lines: HashMap<Stream, Vec<String>>,
    /// Lines `write` accepts before failing; `None` = never fails.
    budget: Option<usize>,
    resumes: usize,
    /// The sink's own cap on retry waits.
    retry_max: Option<Duration>,
}

#[derive(Clone, Default)]
struct Mem(Arc<Mutex<MemState>>);

impl Mem {
    fn lines(&self, stream: Stream) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .lines
            .get(&stream)
            .cloned()
            .unwrap_or_default()
    }
    fn set_budget(&self, budget: Option<usize>) {
        self.0.lock().unwrap().budget = budget;
    }
    fn sink(&self, name: &'static str) -> Box<dyn Sink> {
        Box::new(MemSink {
            name,
            mem: self.clone(),
        })
    }
}

struct MemSink {
    name: &'static str,
    mem: Mem,
}

impl Sink for MemSink {
    fn name(&self) -> &'static str {
        self.name
    }
    fn retry_max(&self) -> Option<Duration> {
        self.mem.0.lock().unwrap().retry_max
    }
    fn checkpoint(&mut self, stream: Stream) -> io::Result<Option<String>> {
        Ok(Some(self.mem.lines(stream).len().to_string()))
    }
    fn write(&mut self, stream: Stream, lines: &[Vec<u8>]) -> io::Result<()> {
        let mut st = self.mem.0.lock().unwrap();
        for line in lines {
            match &mut st.budget {
                Some(0) => return Err(io::Error::other("sink down")),
                Some(n) => *n -= 1,
                None => {}
            }
            // The test's lines are UTF-8, so they are kept as text to compare easily.
            let text = String::from_utf8(line.clone()).expect("test lines are text");
            st.lines.entry(stream).or_default().push(text);
        }
        Ok(())
    }
    fn resume(&mut self, stream: Stream, checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()> {
        let at: usize = checkpoint.parse().map_err(io::Error::other)?;
        let have = {
            let mut st = self.mem.0.lock().unwrap();
            st.resumes += 1;
            let got = st.lines.entry(stream).or_default();
            let have = got.len() - at;
            assert!(
                got[at..]
                    .iter()
                    .map(String::as_bytes)
                    .eq(lines[..have].iter().map(Vec::as_slice)),
                "a resumed batch starts as it was written"
            );
            have
        };
        self.write(stream, &lines[have..])
    }
}

fn row(i: i64) -> Row {
    [("i".to_owned(), Value::Integer(i))].into_iter().collect()
}

/// One line per added/removed row: `<name> <counter> <action> <i>`.
fn format(item: &ResultItem) -> Vec<LogLine> {
    match &item.payload {
        Payload::Diff { added, removed } => {
            let each = |rows: &Vec<Row>, action: &str| -> Vec<LogLine> {
                rows.iter()
                    .map(|r| LogLine {
                        stream: Stream::Results,
                        text: format!("{} {} {action} {}", item.name, item.counter, r["i"])
                            .into_bytes(),
                    })
                    .collect()
            };
            let mut out = each(removed, "removed");
            out.extend(each(added, "added"));
            out
        }
        Payload::Snapshot(rows) => vec![LogLine {
            stream: Stream::Snapshots,
            text: format!("{} snapshot {}", item.name, rows.len()).into_bytes(),
        }],
    }
}

fn run(store: &mut Store, name: &str, rows: &[i64]) -> usize {
    let q = ScheduledQuery::new(name, "SELECT i");
    let outcome = compute(
        store,
        &q,
        rows.iter().map(|&i| row(i)).collect(),
        Run {
            unix_time: 1,
            epoch: 0,
            decorations: Decorations::new(),
        },
    )
    .unwrap();
    record(store, &outcome, format).unwrap()
}

/// Lines left in the store, of both streams.
fn stored_lines(store: &Store) -> usize {
    STREAMS
        .iter()
        .map(|&s| read_lines_limited(store, s, 0, usize::MAX).unwrap().1.len())
        .sum()
}

fn quick() -> OutboxConfig {
    OutboxConfig {
        batch_lines: 3,
        retry_min: Duration::ZERO,
        retry_max: Duration::ZERO,
        ..OutboxConfig::default()
    }
}

#[test]
fn state_and_lines_commit_together_or_not_at_all() {
    let mut store = Store::in_memory().unwrap();
    assert_eq!(run(&mut store, "q", &[1, 2]), 2);
    let q = ScheduledQuery::new("q", "SELECT i");
    let outcome = compute(&store, &q, vec![row(3)], Run::default()).unwrap();
    record(&mut store, &outcome, format).unwrap();
    // The same outcome again is stale: neither its state nor its lines are written twice.
    assert!(record(&mut store, &outcome, format).is_err());
    let (first, lines) = read_lines_limited(&store, Stream::Results, 1, usize::MAX).unwrap();
    assert_eq!((first, lines.len()), (1, 5));
    assert_eq!(lines[2], b"q 1 removed 1");
    assert_eq!(
        store.get_text(Domain::Logs, "next.r").unwrap().unwrap(),
        "6"
    );
}

#[test]
fn every_sink_gets_every_line_in_order_then_lines_are_deleted() {
    let mut store = Store::in_memory().unwrap();
    let (a, b) = (Mem::default(), Mem::default());
    let mut outbox = Outbox::new(vec![a.sink("a"), b.sink("b")], quick());
    run(&mut store, "q", &[1, 2, 3, 4]);
    run(&mut store, "q", &[2, 3, 4, 5]);
    let report = outbox.drain(&mut store).unwrap();
    assert_eq!(report.delivered, 12);
    let expected = [
        "q 0 added 1",
        "q 0 added 2",
        "q 0 added 3",
        "q 0 added 4",
        "q 1 removed 1",
        "q 1 added 5",
    ];
    assert_eq!(a.lines(Stream::Results), expected);
    assert_eq!(b.lines(Stream::Results), expected);
    assert_eq!(stored_lines(&store), 0);
    assert!(store.scan(Domain::Logs, "batch.").unwrap().is_empty());
    assert_eq!(outbox.pending(&store, Stream::Results).unwrap(), 0);
    // Sequence numbers are not reused after the lines are gone.
    run(&mut store, "q", &[9]);
    assert!(
        store
            .queue_range(lines_queue(Stream::Results), 7, 1)
            .unwrap()
            .first()
            .is_some_and(|(seq, _)| *seq == 7)
    );
}

#[test]
fn snapshots_go_to_their_own_stream() {
    let mut store = Store::in_memory().unwrap();
    let a = Mem::default();
    let mut outbox = Outbox::new(vec![a.sink("a")], quick());
    let q = ScheduledQuery {
        snapshot: true,
        ..ScheduledQuery::new("s", "SELECT i")
    };
    let outcome = compute(&store, &q, vec![row(1), row(1)], Run::default()).unwrap();
    record(&mut store, &outcome, format).unwrap();
    outbox.drain(&mut store).unwrap();
    assert_eq!(a.lines(Stream::Snapshots), ["s snapshot 2"]);
    assert!(a.lines(Stream::Results).is_empty());
}

#[test]
fn a_failing_sink_neither_blocks_the_others_nor_loses_or_repeats_lines() {
    let mut store = Store::in_memory().unwrap();
    let (good, flaky) = (Mem::default(), Mem::default());
    let mut outbox = Outbox::new(vec![flaky.sink("flaky"), good.sink("good")], quick());
    run(&mut store, "q", &[1, 2, 3, 4, 5]);
    // Two lines of the first batch get through, then the write fails.
    flaky.set_budget(Some(2));
    let report = outbox.drain(&mut store).unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(good.lines(Stream::Results).len(), 5);
    assert_eq!(flaky.lines(Stream::Results).len(), 2);
    assert_eq!(
        outbox.pending(&store, Stream::Results).unwrap(),
        5,
        "kept for flaky"
    );
    // Still down: retried, still pending, no partial repeats.
    run(&mut store, "q", &[1, 2, 3, 4]);
    outbox.drain(&mut store).unwrap();
    flaky.set_budget(None);
    let report = outbox.drain(&mut store).unwrap();
    assert!(report.failed.is_empty());
    assert_eq!(report.resumed, 1);
    assert_eq!(flaky.lines(Stream::Results), good.lines(Stream::Results));
    assert_eq!(flaky.lines(Stream::Results).len(), 6);
    assert_eq!(outbox.pending(&store, Stream::Results).unwrap(), 0);
}

#[test]
fn a_failing_sink_waits_out_its_backoff() {
    let mut store = Store::in_memory().unwrap();
    let flaky = Mem::default();
    let config = OutboxConfig {
        retry_min: Duration::from_secs(3600),
        ..quick()
    };
    let mut outbox = Outbox::new(vec![flaky.sink("flaky")], config);
    run(&mut store, "q", &[1]);
    flaky.set_budget(Some(0));
    assert_eq!(outbox.drain(&mut store).unwrap().failed.len(), 1);
    flaky.set_budget(None);
    let report = outbox.drain(&mut store).unwrap();
    assert!(
        report.failed.is_empty() && report.delivered == 0,
        "not retried yet"
    );
}

#[test]
fn a_sink_with_its_own_backoff_cap_is_retried_sooner() {
    let mut store = Store::in_memory().unwrap();
    let tls = Mem::default();
    tls.0.lock().unwrap().retry_max = Some(Duration::ZERO);
    let config = OutboxConfig {
        retry_min: Duration::from_secs(3600),
        ..quick()
    };
    let mut outbox = Outbox::new(vec![tls.sink("tls")], config);
    run(&mut store, "q", &[1]);
    tls.set_budget(Some(0));
    assert_eq!(outbox.drain(&mut store).unwrap().failed.len(), 1);
    tls.set_budget(None);
    // The outbox's hour does not apply: the sink's cap of zero lets the next drain retry.
    outbox.drain(&mut store).unwrap();
    assert_eq!(tls.lines(Stream::Results).len(), 1);
}

#[test]
fn an_interrupted_batch_is_resumed_by_the_next_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("osquery.db");
    let mem = Mem::default();
    {
        let mut store = Store::open(&path).unwrap();
        let mut outbox = Outbox::new(vec![mem.sink("file")], quick());
        run(&mut store, "q", &[1, 2, 3, 4, 5, 6, 7]);
        mem.set_budget(Some(4));
        outbox.drain(&mut store).unwrap();
    }
    mem.set_budget(None);
    let mut store = Store::open(&path).unwrap();
    assert!(store.get(Domain::Logs, "batch.file.r").unwrap().is_some());
    let mut outbox = Outbox::new(vec![mem.sink("file")], quick());
    let report = outbox.drain(&mut store).unwrap();
    assert_eq!(report.resumed, 1);
    let got = mem.lines(Stream::Results);
    assert_eq!(got.len(), 7);
    assert_eq!(got[6], "q 0 added 7");
    assert_eq!(mem.0.lock().unwrap().resumes, 1);
}

#[test]
fn the_backlog_bound_drops_the_oldest_lines_with_a_count() {
    let mut store = Store::in_memory().unwrap();
    let a = Mem::default();
    let config = OutboxConfig {
        max_backlog: 5,
        ..quick()
    };
    let mut outbox = Outbox::new(vec![a.sink("a")], config);
    run(&mut store, "q", &(1..=12).collect::<Vec<_>>());
    let report = outbox.drain(&mut store).unwrap();
    assert_eq!(report.dropped, 7);
    assert_eq!(report.delivered, 5);
    assert_eq!(a.lines(Stream::Results)[0], "q 0 added 8");
}

#[test]
fn a_sink_removed_from_the_config_no_longer_holds_lines() {
    let mut store = Store::in_memory().unwrap();
    let (a, b) = (Mem::default(), Mem::default());
    b.set_budget(Some(0));
    let mut outbox = Outbox::new(vec![a.sink("a"), b.sink("b")], quick());
    run(&mut store, "q", &[1, 2]);
    outbox.drain(&mut store).unwrap();
    assert_eq!(outbox.pending(&store, Stream::Results).unwrap(), 2);
    let mut outbox = Outbox::new(vec![a.sink("a"), a.sink("a")], quick());
    assert_eq!(outbox.sink_names(), ["a"]);
    outbox.drain(&mut store).unwrap();
    assert_eq!(outbox.pending(&store, Stream::Results).unwrap(), 0);
    assert!(store.scan(Domain::Logs, "cursor.b.").unwrap().is_empty());
    assert!(store.scan(Domain::Logs, "batch.b.").unwrap().is_empty());
}

#[test]
fn without_sinks_lines_are_discarded() {
    let mut store = Store::in_memory().unwrap();
    run(&mut store, "q", &[1, 2]);
    let mut outbox = Outbox::new(Vec::new(), quick());
    outbox.drain(&mut store).unwrap();
    assert_eq!(stored_lines(&store), 0);
}

#[test]
fn a_large_result_is_stored_in_blocks_and_delivered_once_across_their_edges() {
    let mut store = Store::in_memory().unwrap();
    let (a, flaky) = (Mem::default(), Mem::default());
    // Batches of 700 lines cut through blocks of 4096.
    let config = OutboxConfig {
        batch_lines: 700,
        ..quick()
    };
    let mut outbox = Outbox::new(vec![a.sink("a"), flaky.sink("flaky")], config);
    let n = 2 * BLOCK_LINES + 452;
    // Short lines: blocks are bounded by their line count here.
    assert!(n * 16 < BLOCK_BYTES);
    assert_eq!(run(&mut store, "q", &(1..=n as i64).collect::<Vec<_>>()), n);
    let blocks = store
        .queue_range(lines_queue(Stream::Results), 0, usize::MAX)
        .unwrap();
    assert_eq!(
        blocks.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        [1, 1 + BLOCK_LINES as u64, 1 + 2 * BLOCK_LINES as u64]
    );
    // The second sink takes 4,500 lines (six batches and part of the next), then fails.
    flaky.set_budget(Some(4500));
    outbox.drain(&mut store).unwrap();
    assert_eq!(a.lines(Stream::Results).len(), n);
    assert_eq!(
        outbox.pending(&store, Stream::Results).unwrap(),
        (n - 4200) as u64
    );
    // Block 1 (lines 1..=4096) went once both sinks had it; block 2 (4097..=8192) stays,
    // as `flaky` still lacks lines 4201 on.
    let kept: Vec<u64> = store
        .queue_range(lines_queue(Stream::Results), 0, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(kept, [1 + BLOCK_LINES as u64, 1 + 2 * BLOCK_LINES as u64]);
    flaky.set_budget(None);
    let report = outbox.drain(&mut store).unwrap();
    assert_eq!(report.resumed, 1);
    let expected: Vec<String> = (1..=n).map(|i| format!("q 0 added {i}")).collect();
    assert_eq!(flaky.lines(Stream::Results), expected);
    assert_eq!(a.lines(Stream::Results), expected);
    assert_eq!(outbox.pending(&store, Stream::Results).unwrap(), 0);
    assert_eq!(stored_lines(&store), 0);
}

#[test]
fn lines_a_previous_version_stored_as_keys_are_delivered_in_order() {
    let mut store = Store::in_memory().unwrap();
    // The previous layout: one `logs/line.r.<seq>` key per line, `next.r` after them.
    for seq in 4..=6u64 {
        store
            .put(
                Domain::Logs,
                &format!("line.r.{seq:020}"),
                format!("old {seq}").as_bytes(),
            )
            .unwrap();
    }
    store.put(Domain::Logs, "next.r", b"7").unwrap();
    store.put(Domain::Logs, "cursor.a.r", b"3").unwrap();
    run(&mut store, "q", &[1]);
    let a = Mem::default();
    let mut outbox = Outbox::new(vec![a.sink("a")], quick());
    outbox.drain(&mut store).unwrap();
    assert_eq!(
        a.lines(Stream::Results),
        ["old 4", "old 5", "old 6", "q 0 added 1"]
    );
    assert!(store.scan(Domain::Logs, "line.").unwrap().is_empty());
    assert_eq!(stored_lines(&store), 0);
}
