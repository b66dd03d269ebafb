//! The outbox: a query's new differential state and its formatted log lines are committed
//! in one store transaction ([`record`]); [`Outbox::drain`] then delivers the lines to
//! every configured sink following the [`Sink`] contract. Together they make logging
//! exactly-once across `kill -9` for sinks that can resume, at-least-once for the rest.
//!
//! Layout in the store's `logs` domain (`<t>` is `r` for results, `s` for snapshots):
//!
//! | key | value |
//! | --- | --- |
//! | `line.<t>.<seq>` | one formatted line. Lines live in the store queue `line.<t>` ([`oxquery_store::Queue`]) in blocks: an item holds consecutive lines joined by newlines and is numbered by its first, so a million-line result is a few thousand rows to write and delete. (A store written before kept one key per line; those are moved on the first drain.) |
//! | `next.<t>` | the next sequence number to give out (they are never reused) |
//! | `cursor.<sink>.<t>` | the last sequence number the sink has durably received |
//! | `batch.<sink>.<t>` | `{"first","last","checkpoint"}`: a batch handed to the sink and not yet marked delivered |
//!
//! Delivery of one batch: the sink's checkpoint is stored with the batch's range (commit)
//! before `write`; after `write` returns, the cursor moves past the batch and the batch
//! record goes, in one commit. A batch record found later (after a crash, or after a
//! failed write) is completed with [`Sink::resume`] over exactly the same lines before
//! anything newer is sent. A line is deleted once every configured sink's cursor has
//! passed it.
//!
//! A failing sink keeps its lines pending and is retried after a back-off (doubling from
//! [`OutboxConfig::retry_min`] to [`OutboxConfig::retry_max`]), with a warning each time;
//! other sinks carry on. Its first delivery after failures is logged once. A batch whose
//! checkpoint names a file that no longer exists ([`Sink::can_resume`] is false: the log
//! was deleted under the sink) is started again with a fresh checkpoint, since no part of
//! it can be found again. The backlog is bounded like osquery's `--buffered_log_max`:
//! when a sink has more than [`OutboxConfig::max_backlog`] undelivered lines of a stream
//! at the start of a drain, its oldest ones are skipped (lost to that sink, deleted once
//! no sink needs them) with a warning giving the count. A batch in flight is never cut,
//! so the bound can be exceeded by one batch, and by whatever is recorded between two
//! drains. Sinks are called on the draining thread; a sink whose `write` hangs holds up
//! that thread (sinks are expected to time out themselves).

use crate::item::{LogLine, ResultItem, Stream};
use crate::results::{QueryOutcome, StateUpdate};
use crate::sink::Sink;
use oxquery_store::{Domain, Queue, Result, Store, Tx};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const STREAMS: [Stream; 2] = [Stream::Results, Stream::Snapshots];

fn tag(stream: Stream) -> char {
    match stream {
        Stream::Results => 'r',
        Stream::Snapshots => 's',
    }
}

/// The store queue holding a stream's undelivered lines.
fn lines_queue(stream: Stream) -> Queue {
    Queue {
        domain: Domain::Logs,
        prefix: match stream {
            Stream::Results => "line.r",
            Stream::Snapshots => "line.s",
        },
    }
}

fn next_key(stream: Stream) -> String {
    format!("next.{}", tag(stream))
}

fn cursor_key(sink: &str, stream: Stream) -> String {
    format!("cursor.{sink}.{}", tag(stream))
}

fn batch_key(sink: &str, stream: Stream) -> String {
    format!("batch.{sink}.{}", tag(stream))
}

fn parse_u64(bytes: Option<Vec<u8>>) -> Option<u64> {
    std::str::from_utf8(&bytes?).ok()?.trim().parse().ok()
}

fn seq_of(key: &str) -> Option<u64> {
    key.rsplit('.').next()?.parse().ok()
}

/// Formatted lines of one run, as the blocks the outbox stores: consecutive lines joined
/// by newlines, a block of some size compressed (zstd). Built outside any lock, so the
/// write that follows only copies a few compressed blocks; a million JSON lines take a
/// tenth of their size here and in the store.
#[derive(Debug, Default)]
pub struct Lines {
    streams: [StreamLines; 2],
}

#[derive(Debug, Default)]
struct StreamLines {
    /// Finished blocks: their line count and stored bytes.
    blocks: Vec<(usize, Vec<u8>)>,
    open: Vec<u8>,
    open_count: usize,
    count: usize,
    /// Bytes in a log file: every line with its newline.
    size: u64,
}

/// Lines per stored block at most, and uncompressed bytes.
const BLOCK_LINES: usize = 4096;
const BLOCK_BYTES: usize = 256 * 1024;
/// Blocks smaller than this are stored as text: compressing a line or two gains nothing.
const COMPRESS_FROM: usize = 4096;
/// zstd's frame magic, little-endian: no JSON text starts with these bytes.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// A block's stored bytes.
fn seal(text: &[u8]) -> Vec<u8> {
    if text.len() >= COMPRESS_FROM
        && let Ok(packed) = zstd::bulk::compress(text, 1)
    {
        return packed;
    }
    text.to_vec()
}

/// A stored block's text.
fn unseal(value: Vec<u8>) -> Vec<u8> {
    if value.starts_with(&ZSTD_MAGIC) {
        // A frame that does not decompress is kept as it is: the lines are then
        // delivered garbled rather than lost, and the count checks below notice.
        zstd::stream::decode_all(value.as_slice()).unwrap_or(value)
    } else {
        value
    }
}

impl StreamLines {
    fn close(&mut self) {
        if self.open_count > 0 {
            self.blocks.push((self.open_count, seal(&self.open)));
            self.open.clear();
            self.open_count = 0;
        }
    }
}

impl Lines {
    pub fn new() -> Lines {
        Lines::default()
    }

    pub fn push(&mut self, stream: Stream, line: &[u8]) {
        let s = &mut self.streams[stream as usize];
        if s.open_count > 0
            && (s.open_count == BLOCK_LINES || s.open.len() + line.len() >= BLOCK_BYTES)
        {
            s.close();
        }
        if s.open_count > 0 {
            s.open.push(b'\n');
        }
        // A line is one JSON text, which has no raw newline; should one have, it must not
        // become two lines here.
        for &b in line {
            if b == b'\n' {
                s.open.extend_from_slice(b"\\n");
            } else {
                s.open.push(b);
            }
        }
        s.open_count += 1;
        s.count += 1;
        s.size += line.len() as u64 + 1;
    }

    pub fn extend(&mut self, lines: impl IntoIterator<Item = LogLine>) {
        for line in lines {
            self.push(line.stream, &line.text);
        }
    }

    pub fn len(&self) -> usize {
        self.streams.iter().map(|s| s.count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the lines take in a log file (each with its newline).
    pub fn output_size(&self) -> u64 {
        self.streams.iter().map(|s| s.size).sum()
    }

    /// Ends the last blocks (done before the store is locked).
    pub fn finish(&mut self) {
        for s in &mut self.streams {
            s.close();
        }
    }
}

/// Commits `outcome`'s state and the lines `format` makes of its item in one
/// transaction. Returns how many lines were queued. Fails without writing anything when
/// the outcome's state is stale ([`oxquery_store::StoreError::Conflict`]).
pub fn record(
    store: &mut Store,
    outcome: &QueryOutcome,
    format: impl Fn(&ResultItem) -> Vec<LogLine>,
) -> Result<usize> {
    let mut lines = Lines::new();
    if let Some(item) = &outcome.item {
        lines.extend(format(item));
    }
    lines.finish();
    record_lines(store, &outcome.state, &lines)
}

/// Commits `state` and `lines` (formatted and [`Lines::finish`]ed beforehand, outside
/// any lock) in one transaction; returns how many lines were queued. Writing costs time
/// proportional to the stored blocks' size.
pub fn record_lines(store: &mut Store, state: &StateUpdate, lines: &Lines) -> Result<usize> {
    if lines.is_empty() && state.is_empty() {
        return Ok(0);
    }
    store.transaction(|tx| {
        state.apply(tx)?;
        for stream in STREAMS {
            let s = &lines.streams[stream as usize];
            if s.count == 0 {
                continue;
            }
            debug_assert_eq!(s.open_count, 0, "Lines::finish before recording");
            let mut seq = parse_u64(tx.get(Domain::Logs, &next_key(stream))?).unwrap_or(1);
            let open = (s.open_count > 0).then(|| (s.open_count, seal(&s.open)));
            for (count, data) in s.blocks.iter().chain(open.as_ref()) {
                tx.queue_push(lines_queue(stream), seq, data)?;
                seq += *count as u64;
            }
            tx.put(Domain::Logs, &next_key(stream), seq.to_string().as_bytes())?;
        }
        Ok(lines.len())
    })
}

/// How the outbox reaches the store: directly (`&mut Store`), or through the daemon's
/// mutex (`&Mutex<Store>`), which a drain then holds for each store step only, never
/// across a sink's write, so workers can record results meanwhile.
pub trait StoreAccess {
    fn with<T>(&mut self, f: impl FnOnce(&mut Store) -> T) -> T;
}

impl StoreAccess for &mut Store {
    fn with<T>(&mut self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(self)
    }
}

impl StoreAccess for &Mutex<Store> {
    fn with<T>(&mut self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// The lines of one stored block's text.
fn block_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n')
}

/// Deletes the blocks whose every line is below `end` (a block holding line `end` stays).
fn delete_lines_below(tx: &Tx<'_>, stream: Stream, end: u64) -> Result<()> {
    let queue = lines_queue(stream);
    let keep_from = match tx.queue_item_at(queue, end)? {
        Some((first, value))
            if first + block_lines(&unseal(value.clone())).count() as u64 > end =>
        {
            first
        }
        _ => end,
    };
    tx.queue_delete_below(queue, keep_from)?;
    Ok(())
}

/// Moves lines a store of the previous layout kept as `logs/line.<t>.<seq>` keys into the
/// stream's queue (same numbers), inside the caller's transaction.
fn move_legacy_lines(tx: &Tx<'_>, stream: Stream) -> Result<()> {
    let queue = lines_queue(stream);
    let (from, to) = (format!("{}.", queue.prefix), format!("{}/", queue.prefix));
    let legacy = tx.scan_range(Domain::Logs, &from, &to, usize::MAX)?;
    if legacy.is_empty() {
        return Ok(());
    }
    for (key, value) in &legacy {
        if let Some(seq) = seq_of(key) {
            tx.queue_push(queue, seq, value)?;
        }
    }
    tx.delete_range(Domain::Logs, &from, &to)?;
    log::info!(
        "Moved {} undelivered {} lines to the outbox queue",
        legacy.len(),
        stream.name()
    );
    Ok(())
}

/// Tuning of [`Outbox`].
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Lines handed to a sink per `write`.
    pub batch_lines: usize,
    /// Undelivered lines per sink and stream beyond which the oldest are dropped; 0 means
    /// no bound. osquery's `--buffered_log_max` default.
    pub max_backlog: u64,
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            // Each batch costs a few fsyncs (the batch record, the sink, the cursor): a
            // million-line result should take tens of batches, not a thousand.
            batch_lines: 65_536,
            max_backlog: 1_000_000,
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// What one [`Outbox::drain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Lines delivered, summed over sinks.
    pub delivered: u64,
    /// Interrupted batches completed with `Sink::resume` (or rewritten, for sinks without
    /// checkpoints).
    pub resumed: u64,
    /// Lines dropped because of the backlog bound, summed over sinks.
    pub dropped: u64,
    /// Sinks that failed, with the error.
    pub failed: Vec<(&'static str, String)>,
}

/// A batch handed to a sink and not yet marked delivered.
#[derive(Debug, Clone, PartialEq)]
struct Batch {
    first: u64,
    last: u64,
    checkpoint: Option<String>,
}

impl Batch {
    fn encode(&self) -> String {
        serde_json::json!({
            "first": self.first,
            "last": self.last,
            "checkpoint": self.checkpoint,
        })
        .to_string()
    }

    fn decode(bytes: &[u8]) -> Option<Batch> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        Some(Batch {
            first: v.get("first")?.as_u64()?,
            last: v.get("last")?.as_u64()?,
            checkpoint: v.get("checkpoint")?.as_str().map(str::to_owned),
        })
    }
}

struct Slot {
    sink: Box<dyn Sink>,
    backoff: Duration,
    retry_at: Option<Instant>,
    /// Failed attempts since the last delivery (for the one line saying it recovered).
    failures: u32,
}

/// The configured sinks and their delivery state.
pub struct Outbox {
    slots: Vec<Slot>,
    config: OutboxConfig,
}

impl Outbox {
    /// Sinks are told apart by [`Sink::name`]; a second sink with a name already present
    /// is dropped with a warning, since its progress could not be kept apart.
    /// Changes the backlog bound (`--buffered_log_max` after a reload).
    pub fn set_max_backlog(&mut self, max_backlog: u64) {
        self.config.max_backlog = max_backlog;
    }

    pub fn new(sinks: Vec<Box<dyn Sink>>, config: OutboxConfig) -> Outbox {
        let mut seen = HashSet::new();
        let slots = sinks
            .into_iter()
            .filter(|s| {
                let fresh = seen.insert(s.name());
                if !fresh {
                    log::warn!("Logger plugin {} configured twice; using it once", s.name());
                }
                fresh
            })
            .map(|sink| Slot {
                sink,
                backoff: config.retry_min,
                retry_at: None,
                failures: 0,
            })
            .collect();
        Outbox { slots, config }
    }

    /// Asks every sink to close and reopen its files (SIGHUP). A sink that cannot is
    /// reported; its next write tries again.
    pub fn reopen(&mut self) {
        for slot in &mut self.slots {
            if let Err(e) = slot.sink.reopen() {
                log::warn!(
                    "Logger plugin {} cannot reopen its log: {e}",
                    slot.sink.name()
                );
            }
        }
    }

    /// Writes `lines` straight to the sink named `name`, outside any batch: lines an
    /// extension hands one of the daemon's logger plugins through the extension manager
    /// (osquery's `logString` to that plugin). Call it between drains: a sink that is
    /// failing now (it may have a batch left to complete) is not written, so the lines
    /// never land inside a batch. `None`: no such sink, or it is failing now.
    pub fn write_direct(
        &mut self,
        name: &str,
        stream: Stream,
        lines: &[Vec<u8>],
    ) -> Option<std::io::Result<()>> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.sink.name() == name && s.retry_at.is_none())?;
        Some(slot.sink.write(stream, lines))
    }

    /// Names of the configured sinks, in delivery order.
    pub fn sink_names(&self) -> Vec<&'static str> {
        self.slots.iter().map(|s| s.sink.name()).collect()
    }

    /// Lines of `stream` stored and not yet delivered to every sink.
    pub fn pending(&self, store: &Store, stream: Stream) -> Result<u64> {
        let next = parse_u64(store.get(Domain::Logs, &next_key(stream))?).unwrap_or(1);
        let Some(lowest) = store.queue_first(lines_queue(stream))? else {
            return Ok(0);
        };
        // A block partly delivered to every sink is still stored: count from the
        // slowest sink's cursor (a sink without one gets everything stored).
        let mut done = None;
        for name in self.sink_names() {
            let cursor = parse_u64(store.get(Domain::Logs, &cursor_key(name, stream))?)
                .unwrap_or(lowest - 1);
            done = Some(done.map_or(cursor, |d: u64| d.min(cursor)));
        }
        let done = done.unwrap_or(lowest - 1).max(lowest - 1);
        Ok((next - 1).saturating_sub(done))
    }

    /// Delivers what is pending: first any interrupted batch of each sink (start-up
    /// recovery), then new lines in batches, in order. Sink failures are reported and
    /// retried on a later drain; only store failures are returned as errors.
    pub fn drain(&mut self, mut store: impl StoreAccess) -> Result<DrainReport> {
        let mut report = DrainReport::default();
        let now = Instant::now();
        for stream in STREAMS {
            let mut cursors = store.with(|s| self.prepare(s, stream, &mut report))?;
            for i in 0..self.slots.len() {
                if self.slots[i].retry_at.is_some_and(|t| now < t) || !self.slots[i].sink.due(now) {
                    continue;
                }
                if let Err(e) = self.deliver(&mut store, stream, i, &mut cursors, &mut report) {
                    let slot = &mut self.slots[i];
                    match e {
                        Failure::Store(e) => return Err(e),
                        Failure::Sink(e) => {
                            log::warn!(
                                "Logger plugin {} failed to write {} lines (retrying in {:?}): {e}",
                                slot.sink.name(),
                                stream.name(),
                                slot.backoff
                            );
                            report.failed.push((slot.sink.name(), e.to_string()));
                            // A sink's own cap bounds even the first wait.
                            let own = slot.sink.retry_max();
                            slot.retry_at =
                                Some(now + own.map_or(slot.backoff, |m| slot.backoff.min(m)));
                            slot.backoff =
                                (slot.backoff * 2).min(own.unwrap_or(self.config.retry_max));
                            slot.failures = slot.failures.saturating_add(1);
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Loads (or starts) every sink's cursor for `stream`, forgets sinks no longer
    /// configured, applies the backlog bound and deletes what every sink has.
    fn prepare(
        &self,
        store: &mut Store,
        stream: Stream,
        report: &mut DrainReport,
    ) -> Result<Vec<u64>> {
        let names = self.sink_names();
        let max = self.config.max_backlog;
        let (cursors, dropped) = store.transaction(|tx| {
            move_legacy_lines(tx, stream)?;
            let next = parse_u64(tx.get(Domain::Logs, &next_key(stream))?).unwrap_or(1);
            let suffix = format!(".{}", tag(stream));
            for prefix in ["cursor.", "batch."] {
                for key in tx.keys(Domain::Logs, prefix)? {
                    let sink = key[prefix.len()..].strip_suffix(&suffix);
                    if sink.is_some_and(|s| !names.contains(&s)) {
                        tx.delete(Domain::Logs, &key)?;
                    }
                }
            }
            let lowest = tx.queue_first(lines_queue(stream))?.unwrap_or(next);
            let mut cursors = Vec::with_capacity(names.len());
            let mut dropped = Vec::new();
            for name in &names {
                let key = cursor_key(name, stream);
                let mut cursor = match parse_u64(tx.get(Domain::Logs, &key)?) {
                    Some(c) => c,
                    // A new sink gets whatever is still stored.
                    None => {
                        let c = lowest - 1;
                        tx.put(Domain::Logs, &key, c.to_string().as_bytes())?;
                        c
                    }
                };
                let backlog = (next - 1).saturating_sub(cursor);
                if max > 0 && backlog > max {
                    let mut floor = next - 1 - max;
                    if let Some(b) = tx
                        .get(Domain::Logs, &batch_key(name, stream))?
                        .and_then(|v| Batch::decode(&v))
                    {
                        floor = floor.min(b.first - 1);
                    }
                    if floor > cursor {
                        dropped.push((*name, floor - cursor));
                        cursor = floor;
                        tx.put(Domain::Logs, &key, cursor.to_string().as_bytes())?;
                    }
                }
                cursors.push(cursor);
            }
            let done = cursors.iter().copied().min().unwrap_or(next - 1);
            delete_lines_below(tx, stream, done + 1)?;
            Ok((cursors, dropped))
        })?;
        for (name, n) in dropped {
            log::warn!(
                "Logger plugin {name}: {n} undelivered {} lines dropped (backlog over {max})",
                stream.name()
            );
            report.dropped += n;
        }
        Ok(cursors)
    }

    /// Sends slot `i` everything pending of `stream`, batch by batch.
    fn deliver(
        &mut self,
        store: &mut impl StoreAccess,
        stream: Stream,
        i: usize,
        cursors: &mut [u64],
        report: &mut DrainReport,
    ) -> std::result::Result<(), Failure> {
        let name = self.slots[i].sink.name();
        let bkey = batch_key(name, stream);
        loop {
            let pending = store.with(|s| -> Result<_> {
                let Some(batch) = s.get(Domain::Logs, &bkey)?.and_then(|v| Batch::decode(&v))
                else {
                    return Ok(None);
                };
                let lines = read_lines(s, stream, batch.first, batch.last)?;
                Ok(Some((batch, lines)))
            })?;
            let (batch, lines) = match pending {
                Some((batch, lines)) => {
                    if lines.len() as u64 != batch.last - batch.first + 1 {
                        // Only outside interference can remove a batch's lines; the rest
                        // of the batch is sent fresh rather than guessing what arrived.
                        log::warn!("Logger plugin {name}: interrupted batch lost its lines");
                        store.with(|s| s.delete(Domain::Logs, &bkey))?;
                        continue;
                    }
                    let sink = &mut self.slots[i].sink;
                    match &batch.checkpoint {
                        Some(cp) if !sink.can_resume(stream, cp)? => {
                            // Nothing of the batch can be found again (its file was
                            // deleted): it goes out again as a new batch, with a
                            // checkpoint in the sink's current file.
                            store.with(|s| s.delete(Domain::Logs, &bkey))?;
                            continue;
                        }
                        Some(cp) => sink.resume(stream, cp, &lines)?,
                        None => sink.write(stream, &lines)?,
                    }
                    report.resumed += 1;
                    (batch, lines)
                }
                None => {
                    let limit = self.config.batch_lines;
                    let (from, lines) =
                        store.with(|s| read_lines_limited(s, stream, cursors[i] + 1, limit))?;
                    if lines.is_empty() {
                        self.slots[i].backoff = self.config.retry_min;
                        self.slots[i].retry_at = None;
                        return Ok(());
                    }
                    let sink = &mut self.slots[i].sink;
                    let batch = Batch {
                        first: from,
                        last: from + lines.len() as u64 - 1,
                        checkpoint: sink.checkpoint(stream)?,
                    };
                    store.with(|s| s.put(Domain::Logs, &bkey, batch.encode().as_bytes()))?;
                    sink.write(stream, &lines)?;
                    (batch, lines)
                }
            };
            cursors[i] = batch.last;
            let done = cursors.iter().copied().min().unwrap_or(batch.last);
            store
                .with(|s| s.transaction(|tx| mark_delivered(tx, name, stream, batch.last, done)))?;
            report.delivered += lines.len() as u64;
            let slot = &mut self.slots[i];
            if slot.failures > 0 {
                log::info!(
                    "Logger plugin {name} writes again after {} failed attempts",
                    slot.failures
                );
                slot.failures = 0;
            }
        }
    }
}

fn mark_delivered(tx: &Tx<'_>, sink: &str, stream: Stream, last: u64, done: u64) -> Result<()> {
    tx.put(
        Domain::Logs,
        &cursor_key(sink, stream),
        last.to_string().as_bytes(),
    )?;
    tx.delete(Domain::Logs, &batch_key(sink, stream))?;
    delete_lines_below(tx, stream, done + 1)?;
    Ok(())
}

/// The lines `first..=last`, or fewer when some are missing.
fn read_lines(store: &Store, stream: Stream, first: u64, last: u64) -> Result<Vec<Vec<u8>>> {
    let n = usize::try_from(last - first + 1).unwrap_or(usize::MAX);
    let (start, lines) = read_lines_limited(store, stream, first, n)?;
    Ok(if start == first { lines } else { Vec::new() })
}

/// Up to `limit` consecutive lines from the first stored one at or after `from`, with the
/// sequence number of the first.
fn read_lines_limited(
    store: &Store,
    stream: Stream,
    from: u64,
    limit: usize,
) -> Result<(u64, Vec<Vec<u8>>)> {
    let queue = lines_queue(stream);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    // The block holding `from`, when there is one.
    let mut start = from;
    let mut expect = None;
    if let Some((first, value)) = store.queue_item_at(queue, from)? {
        let value = unseal(value);
        let count = block_lines(&value).count() as u64;
        if first + count > from {
            for line in block_lines(&value)
                .skip((from - first) as usize)
                .take(limit)
            {
                lines.push(line.to_vec());
            }
            expect = Some(first + count);
        }
    }
    // Then the blocks after it, a page at a time, stopping at a gap: a batch is a
    // contiguous range of sequence numbers.
    let mut after = expect.unwrap_or(from);
    'pages: while lines.len() < limit {
        let page = store.queue_range(queue, after, 16)?;
        if page.is_empty() {
            break;
        }
        for (first, value) in page {
            let value = unseal(value);
            match expect {
                Some(e) if first != e => break 'pages,
                Some(_) => {}
                None => start = first,
            }
            let mut count = 0;
            for line in block_lines(&value) {
                if lines.len() < limit {
                    lines.push(line.to_vec());
                }
                count += 1;
            }
            expect = Some(first + count);
            after = first + count;
            if lines.len() >= limit {
                break 'pages;
            }
        }
    }
    Ok((start, lines))
}

enum Failure {
    Store(oxquery_store::StoreError),
    Sink(std::io::Error),
}

impl From<oxquery_store::StoreError> for Failure {
    fn from(e: oxquery_store::StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Sink(e)
    }
}

#[cfg(test)]
mod tests;
