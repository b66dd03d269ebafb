//! The outbox: a query's new differential state and its formatted log lines are committed
//! in one store transaction ([`record`]); [`Outbox::drain`] then delivers the lines to
//! every configured sink following the [`Sink`] contract. Together they make logging
//! exactly-once across `kill -9` for sinks that can resume, at-least-once for the rest.
//!
//! Layout in the store's `logs` domain (`<t>` is `r` for results, `s` for snapshots):
//!
//! | key | value |
//! | --- | --- |
//! | `line.<t>.<seq>` | one formatted line; `seq` is 20 zero-padded digits, so key order is line order |
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
use crate::results::QueryOutcome;
use crate::sink::Sink;
use oxquery_store::{Domain, Result, Store, Tx};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const STREAMS: [Stream; 2] = [Stream::Results, Stream::Snapshots];

fn tag(stream: Stream) -> char {
    match stream {
        Stream::Results => 'r',
        Stream::Snapshots => 's',
    }
}

fn line_key(stream: Stream, seq: u64) -> String {
    format!("line.{}.{seq:020}", tag(stream))
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

/// Commits `outcome`'s state and the lines `format` makes of its item in one
/// transaction. Returns how many lines were queued. Fails without writing anything when
/// the outcome's state is stale ([`oxquery_store::StoreError::Conflict`]).
pub fn record(
    store: &mut Store,
    outcome: &QueryOutcome,
    format: impl Fn(&ResultItem) -> Vec<LogLine>,
) -> Result<usize> {
    let lines = outcome.item.as_ref().map(&format).unwrap_or_default();
    if lines.is_empty() && outcome.state.is_empty() {
        return Ok(0);
    }
    store.transaction(|tx| {
        outcome.state.apply(tx)?;
        let mut next: [Option<u64>; 2] = [None, None];
        for line in &lines {
            let slot = &mut next[line.stream as usize];
            let seq = match *slot {
                Some(s) => s,
                None => parse_u64(tx.get(Domain::Logs, &next_key(line.stream))?).unwrap_or(1),
            };
            tx.put(
                Domain::Logs,
                &line_key(line.stream, seq),
                line.text.as_bytes(),
            )?;
            *slot = Some(seq + 1);
        }
        for stream in STREAMS {
            if let Some(n) = next[stream as usize] {
                tx.put(Domain::Logs, &next_key(stream), n.to_string().as_bytes())?;
            }
        }
        Ok(lines.len())
    })
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
            batch_lines: 1024,
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

    /// Names of the configured sinks, in delivery order.
    pub fn sink_names(&self) -> Vec<&'static str> {
        self.slots.iter().map(|s| s.sink.name()).collect()
    }

    /// Lines of `stream` stored and not yet delivered to every sink.
    pub fn pending(&self, store: &Store, stream: Stream) -> Result<u64> {
        let next = parse_u64(store.get(Domain::Logs, &next_key(stream))?).unwrap_or(1);
        let lowest = store.scan_range(
            Domain::Logs,
            &line_key(stream, 0),
            &line_key(stream, u64::MAX),
            1,
        )?;
        Ok(match lowest.first().and_then(|(k, _)| seq_of(k)) {
            Some(first) => next.saturating_sub(first),
            None => 0,
        })
    }

    /// Delivers what is pending: first any interrupted batch of each sink (start-up
    /// recovery), then new lines in batches, in order. Sink failures are reported and
    /// retried on a later drain; only store failures are returned as errors.
    pub fn drain(&mut self, store: &mut Store) -> Result<DrainReport> {
        let mut report = DrainReport::default();
        let now = Instant::now();
        for stream in STREAMS {
            let mut cursors = self.prepare(store, stream, &mut report)?;
            for i in 0..self.slots.len() {
                if self.slots[i].retry_at.is_some_and(|t| now < t) {
                    continue;
                }
                if let Err(e) = self.deliver(store, stream, i, &mut cursors, &mut report) {
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
                            slot.retry_at = Some(now + slot.backoff);
                            slot.backoff = (slot.backoff * 2).min(self.config.retry_max);
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
            let lowest = tx
                .scan_range(
                    Domain::Logs,
                    &line_key(stream, 0),
                    &line_key(stream, u64::MAX),
                    1,
                )?
                .first()
                .and_then(|(k, _)| seq_of(k))
                .unwrap_or(next);
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
            tx.delete_range(
                Domain::Logs,
                &line_key(stream, 0),
                &line_key(stream, done + 1),
            )?;
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
        store: &mut Store,
        stream: Stream,
        i: usize,
        cursors: &mut [u64],
        report: &mut DrainReport,
    ) -> std::result::Result<(), Failure> {
        let name = self.slots[i].sink.name();
        let bkey = batch_key(name, stream);
        loop {
            let pending = store
                .get(Domain::Logs, &bkey)?
                .and_then(|v| Batch::decode(&v));
            let (batch, lines) = match pending {
                Some(batch) => {
                    let lines = read_lines(store, stream, batch.first, batch.last)?;
                    if lines.len() as u64 != batch.last - batch.first + 1 {
                        // Only outside interference can remove a batch's lines; the rest
                        // of the batch is sent fresh rather than guessing what arrived.
                        log::warn!("Logger plugin {name}: interrupted batch lost its lines");
                        store.delete(Domain::Logs, &bkey)?;
                        continue;
                    }
                    let sink = &mut self.slots[i].sink;
                    match &batch.checkpoint {
                        Some(cp) if !sink.can_resume(stream, cp)? => {
                            // Nothing of the batch can be found again (its file was
                            // deleted): it goes out again as a new batch, with a
                            // checkpoint in the sink's current file.
                            store.delete(Domain::Logs, &bkey)?;
                            continue;
                        }
                        Some(cp) => sink.resume(stream, cp, &lines)?,
                        None => sink.write(stream, &lines)?,
                    }
                    report.resumed += 1;
                    (batch, lines)
                }
                None => {
                    let (from, lines) =
                        read_lines_limited(store, stream, cursors[i] + 1, self.config.batch_lines)?;
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
                    store.put(Domain::Logs, &bkey, batch.encode().as_bytes())?;
                    sink.write(stream, &lines)?;
                    (batch, lines)
                }
            };
            cursors[i] = batch.last;
            let done = cursors.iter().copied().min().unwrap_or(batch.last);
            store.transaction(|tx| mark_delivered(tx, name, stream, batch.last, done))?;
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
    tx.delete_range(
        Domain::Logs,
        &line_key(stream, 0),
        &line_key(stream, done + 1),
    )?;
    Ok(())
}

/// The lines `first..=last`, or fewer when some are missing.
fn read_lines(store: &Store, stream: Stream, first: u64, last: u64) -> Result<Vec<String>> {
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
) -> Result<(u64, Vec<String>)> {
    let rows = store.scan_range(
        Domain::Logs,
        &line_key(stream, from),
        &line_key(stream, u64::MAX),
        limit,
    )?;
    let start = rows.first().and_then(|(k, _)| seq_of(k)).unwrap_or(from);
    // Stop at a gap: a batch is a contiguous range of sequence numbers.
    let lines = rows
        .into_iter()
        .enumerate()
        .take_while(|(k, (key, _))| seq_of(key) == Some(start + *k as u64))
        .map(|(_, (_, v))| String::from_utf8_lossy(&v).into_owned())
        .collect();
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
