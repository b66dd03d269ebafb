//! The event buffer: each subscriber's events, kept in the store's `events` domain under
//! osquery's keys (`data.<publisher>.<subscriber>.<eid>`, the eid a 10-digit counter),
//! so they survive a restart and a scheduled query logs each one once.
//!
//! Adding an event is cheap: it is encoded and queued in memory under the subscriber's
//! lock. A flush (every [`FLUSH_EVERY`] from the hub's thread, and before every scan so a
//! query sees what has arrived) writes the queue in one store transaction and applies the
//! bounds in the same transaction: at most `max` events per subscriber (the oldest go
//! first) and none older than `expiry` seconds. Every event that leaves otherwise than by
//! expiry is counted by reason and warned about: nothing is lost silently. The memory
//! queue itself is bounded ([`PENDING_MAX`]) for when the store cannot keep up.
//!
//! An in-memory index (eid, time) per subscriber, rebuilt from the store at start, turns
//! a `time` constraint or a scheduled query's mark into a range of keys, so a scan reads
//! only the events it returns.

use crate::hub::EventForward;
use crate::row::{decode, encode};
use oxquery_store::{Domain, Store};
use oxquery_table::Value;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often the hub writes queued events to the store.
pub const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Events queued in memory per subscriber before the oldest queued ones are dropped
/// (counted): the bound on memory when the store falls behind.
pub const PENDING_MAX: usize = 100_000;
/// Events read from the store per step of a scan.
const SCAN_CHUNK: usize = 1024;
/// How late (in seconds) an event's own time may be behind events that arrived before
/// it and still be found by a `time <=` constraint (audit records of several CPUs).
const LATE_SLACK: i64 = 60;

/// How long and how many events a subscriber keeps (`--events_expiry`, `--events_max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Seconds an event is kept; 0 keeps events until `max` pushes them out.
    pub expiry: u64,
    /// Events kept per subscriber; 0 means no cap (not recommended).
    pub max: u64,
}

/// Why events were dropped, counted per subscriber.
#[derive(Debug, Default)]
pub struct DropCounters {
    /// Pushed out by the `--events_max` cap before any query read them.
    pub cap: AtomicU64,
    /// The in-memory queue was full (the store could not keep up).
    pub queue: AtomicU64,
    /// A store write failed.
    pub store: AtomicU64,
}

/// One subscriber's events.
pub struct SubscriberLog {
    pub(crate) name: String,
    pub(crate) publisher: String,
    prefix: String,
    columns: Vec<String>,
    time_column: Option<usize>,
    eid_column: Option<usize>,
    limits: Limits,
    state: Mutex<LogState>,
    /// Events added since start.
    pub(crate) added: AtomicU64,
    /// One past the highest eid a scan has returned: events below it were read by some
    /// query, so the cap pushing them out loses nothing.
    read_up_to: AtomicU64,
    pub(crate) dropped: DropCounters,
}

#[derive(Default)]
struct LogState {
    next_eid: u64,
    pending: Vec<Pending>,
    /// Stored events in eid order: (eid, index time). The index time never decreases
    /// (an event's own time, or its predecessor's when earlier), so it can be searched.
    index: VecDeque<(u64, i64)>,
}

struct Pending {
    eid: u64,
    time: i64,
    data: Vec<u8>,
}

/// Which stored events a scan wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    /// Only events with an eid above this (a scheduled query's mark).
    pub after_eid: Option<u64>,
    /// Only events whose time is within these bounds (inclusive).
    pub from_time: Option<i64>,
    pub to_time: Option<i64>,
}

impl SubscriberLog {
    /// The log of `subscriber` (fed by `publisher`) whose rows have `columns`, loaded
    /// from `store`. Stored events of an older layout of the table are dropped, with a
    /// warning: they could not be read back.
    pub(crate) fn open(
        store: &Mutex<Store>,
        publisher: &str,
        subscriber: &str,
        columns: Vec<String>,
        limits: Limits,
    ) -> SubscriberLog {
        let prefix = format!("data.{publisher}.{subscriber}.");
        let time_column = columns.iter().position(|c| c == "time");
        let eid_column = columns.iter().position(|c| c == "eid");
        let log = SubscriberLog {
            name: subscriber.to_owned(),
            publisher: publisher.to_owned(),
            prefix,
            columns,
            time_column,
            eid_column,
            limits,
            state: Mutex::new(LogState::default()),
            added: AtomicU64::new(0),
            read_up_to: AtomicU64::new(0),
            dropped: DropCounters::default(),
        };
        let store = store.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = log.load(&store) {
            log::warn!("Cannot read the stored events of {subscriber}: {e}");
        }
        log
    }

    fn layout_key(&self) -> String {
        format!(
            "layout.{}",
            &self.prefix["data.".len()..self.prefix.len() - 1]
        )
    }

    fn key(&self, eid: u64) -> String {
        format!("{}{eid:010}", self.prefix)
    }

    fn load(&self, store: &Store) -> oxquery_store::Result<()> {
        let layout = self.columns.join(",");
        let stored_layout = store.get_text(Domain::Events, &self.layout_key())?;
        if stored_layout.as_deref() != Some(layout.as_str()) {
            if stored_layout.is_some() {
                let end = format!("{}~", self.prefix);
                let gone = store.delete_range(Domain::Events, &self.prefix, &end)?;
                log::warn!(
                    "The stored events of {} were written for other columns: {gone} dropped",
                    self.name
                );
            }
            store.put(Domain::Events, &self.layout_key(), layout.as_bytes())?;
            return Ok(());
        }
        let mut state = self.lock();
        let end = format!("{}~", self.prefix);
        let mut from = self.prefix.clone();
        let mut last_time = i64::MIN;
        loop {
            let chunk = store.scan_range(Domain::Events, &from, &end, SCAN_CHUNK)?;
            let Some((last_key, _)) = chunk.last() else {
                break;
            };
            from = format!("{last_key}\0");
            for (key, value) in &chunk {
                let Some(eid) = key[self.prefix.len()..].parse::<u64>().ok() else {
                    continue;
                };
                let time = decode(&value[..], self.columns.len()).map_or(0, |(t, _)| t);
                last_time = last_time.max(time);
                state.index.push_back((eid, last_time));
                state.next_eid = state.next_eid.max(eid + 1);
            }
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues one event. `values` has one cell per column; the `time` cell is filled
    /// with `now` when the publisher left it empty. `forward`, when given, receives the
    /// event's row as osquery forwards it to logger plugins ([`SubscriberLog::row_json`]).
    pub(crate) fn add(&self, mut values: Vec<Value>, now: i64, forward: Option<&EventForward>) {
        values.resize(self.columns.len(), Value::Null);
        let time = match self.time_column.map(|c| &values[c]) {
            Some(v) if !v.is_null() => v.as_i64().unwrap_or(now),
            _ => now,
        };
        if let Some(c) = self.time_column {
            values[c] = Value::Integer(time);
        }
        if let Some(c) = self.eid_column {
            values[c] = Value::Null;
        }
        let data = encode(time, &values);
        let mut state = self.lock();
        if state.pending.len() >= PENDING_MAX {
            let excess = state.pending.len() + 1 - PENDING_MAX;
            state.pending.drain(..excess);
            let total = self
                .dropped
                .queue
                .fetch_add(excess as u64, Ordering::Relaxed);
            if total == 0 || (total + excess as u64).is_power_of_two() {
                log::warn!(
                    "Events of {} arrive faster than the store takes them: {} dropped so far",
                    self.name,
                    total + excess as u64
                );
            }
        }
        let eid = state.next_eid;
        state.next_eid += 1;
        state.pending.push(Pending { eid, time, data });
        drop(state);
        self.added.fetch_add(1, Ordering::Relaxed);
        if let Some(forward) = forward {
            forward(&self.name, self.row_json(&values, eid));
        }
    }

    /// An event's row as osquery serialises it for a logger plugin (`serializeRowJSON`):
    /// a JSON object of the row's non-NULL cells as strings, keys in name order, with
    /// `time` and the 10-digit `eid`.
    pub(crate) fn row_json(&self, values: &[Value], eid: u64) -> String {
        let mut row: std::collections::BTreeMap<&str, String> = Default::default();
        for (name, value) in self.columns.iter().zip(values) {
            let text = match value {
                Value::Null => continue,
                Value::Integer(i) => i.to_string(),
                Value::Real(r) => r.to_string(),
                Value::Text(t) => t.clone(),
                Value::Blob(b) => String::from_utf8_lossy(b).into_owned(),
            };
            row.insert(name, text);
        }
        if self.eid_column.is_some() {
            row.insert("eid", format!("{eid:010}"));
        }
        serde_json::to_string(&row).unwrap_or_default()
    }

    /// Writes the queued events and applies the bounds, in one transaction.
    pub(crate) fn flush(&self, store: &Mutex<Store>, now: i64) {
        let pending = std::mem::take(&mut self.lock().pending);
        let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
        // The index changes only under the store lock, so it stays in step with the
        // stored keys; `add` meanwhile only needs the queue.
        let mut index = std::mem::take(&mut self.lock().index);
        let stored_before = index.len();
        let mut last_time = index.back().map_or(i64::MIN, |&(_, t)| t);
        for p in &pending {
            last_time = last_time.max(p.time);
            index.push_back((p.eid, last_time));
        }
        let mut cut = 0;
        if self.limits.max > 0 && index.len() as u64 > self.limits.max {
            cut = index.len() - self.limits.max as usize;
        }
        // Pushed out by the cap before any query read them: those are lost.
        let read_up_to = self.read_up_to.load(Ordering::Relaxed);
        let capped = index
            .iter()
            .take(cut)
            .filter(|&&(eid, _)| eid >= read_up_to)
            .count();
        if self.limits.expiry > 0 {
            let oldest = now.saturating_sub(self.limits.expiry as i64);
            // The newest event stays, as osquery keeps its newest time bucket.
            while cut + 1 < index.len() && index[cut].1 < oldest {
                cut += 1;
            }
        }
        if pending.is_empty() && cut == 0 {
            self.lock().index = index;
            return;
        }
        let keep_from = index.get(cut).map(|&(eid, _)| eid);
        let result = store.transaction(|tx| {
            for p in &pending {
                if keep_from.is_some_and(|first| p.eid >= first) {
                    tx.put(Domain::Events, &self.key(p.eid), &p.data)?;
                }
            }
            if let Some(first) = keep_from {
                tx.delete_range(Domain::Events, &self.prefix, &self.key(first))?;
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                index.drain(..cut);
                if capped > 0 {
                    let total = self.dropped.cap.fetch_add(capped as u64, Ordering::Relaxed)
                        + capped as u64;
                    log::warn!(
                        "{}: {capped} events dropped by --events_max={} before a query read them ({total} so far)",
                        self.name,
                        self.limits.max
                    );
                }
            }
            Err(e) => {
                index.truncate(stored_before);
                let n = pending.len() as u64;
                self.dropped.store.fetch_add(n, Ordering::Relaxed);
                log::warn!("Cannot store {n} events of {}: {e}", self.name);
            }
        }
        self.lock().index = index;
    }

    /// Calls `each(eid, values)` for the stored events in `range`, in eid order, until it
    /// returns false. Returns the highest eid seen.
    pub(crate) fn scan(
        &self,
        store: &Mutex<Store>,
        range: Range,
        now: i64,
        mut each: impl FnMut(u64, Vec<Value>) -> bool,
    ) -> oxquery_store::Result<Option<u64>> {
        self.flush(store, now);
        let (first, last) = {
            let store = store.lock().unwrap_or_else(|p| p.into_inner());
            let state = self.lock();
            let index = &state.index;
            let mut lo = 0;
            if let Some(after) = range.after_eid {
                lo = lo.max(index.partition_point(|&(eid, _)| eid <= after));
            }
            if let Some(from) = range.from_time {
                lo = lo.max(index.partition_point(|&(_, t)| t < from));
            }
            let mut hi = index.len();
            if let Some(to) = range.to_time {
                hi = hi.min(index.partition_point(|&(_, t)| t <= to.saturating_add(LATE_SLACK)));
            }
            drop(store);
            if lo >= hi {
                return Ok(None);
            }
            (index[lo].0, index[hi - 1].0)
        };
        let end = self.key(last + 1);
        let mut from = self.key(first);
        let mut seen = None;
        loop {
            let chunk = {
                let store = store.lock().unwrap_or_else(|p| p.into_inner());
                store.scan_range(Domain::Events, &from, &end, SCAN_CHUNK)?
            };
            let Some((last_key, _)) = chunk.last() else {
                break;
            };
            from = format!("{last_key}\0");
            for (key, value) in chunk {
                let Ok(eid) = key[self.prefix.len()..].parse::<u64>() else {
                    continue;
                };
                let Some((time, mut values)) = decode(&value, self.columns.len()) else {
                    log::debug!("Skipping an unreadable stored event {key}");
                    continue;
                };
                seen = Some(eid);
                if range.from_time.is_some_and(|t| time < t)
                    || range.to_time.is_some_and(|t| time > t)
                {
                    continue;
                }
                if let Some(c) = self.eid_column {
                    values[c] = Value::Text(format!("{eid:010}"));
                }
                if !each(eid, values) {
                    self.read_up_to.fetch_max(eid + 1, Ordering::Relaxed);
                    return Ok(seen);
                }
            }
        }
        if let Some(eid) = seen {
            self.read_up_to.fetch_max(eid + 1, Ordering::Relaxed);
        }
        Ok(seen)
    }

    /// Events stored now.
    #[cfg(test)]
    pub(crate) fn stored(&self) -> usize {
        self.lock().index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn columns() -> Vec<String> {
        ["path", "time", "eid"].map(String::from).to_vec()
    }

    fn open(store: &Mutex<Store>, limits: Limits) -> SubscriberLog {
        SubscriberLog::open(store, "pub", "sub_events", columns(), limits)
    }

    fn paths(log: &SubscriberLog, store: &Mutex<Store>, range: Range) -> Vec<(String, i64)> {
        let mut out = Vec::new();
        log.scan(store, range, 1_000, |_, v| {
            out.push((v[0].as_text().unwrap().into_owned(), v[1].as_i64().unwrap()));
            true
        })
        .unwrap();
        out
    }

    const NO_LIMITS: Limits = Limits { expiry: 0, max: 0 };

    #[test]
    fn a_forwarded_event_is_the_row_the_table_gives_as_osquery_serialises_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Mutex::new(Store::open(&dir.path().join("db")).unwrap());
        let log = open(&store, NO_LIMITS);
        let sent: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let forward: EventForward = {
            let sent = Arc::clone(&sent);
            Arc::new(move |name: &str, row: String| {
                sent.lock().unwrap().push((name.to_owned(), row));
            })
        };
        // A publisher's own time is kept, an empty one becomes now; NULL cells are left
        // out.
        log.add(
            vec![Value::from("/tmp/a"), Value::Integer(100)],
            1_000,
            Some(&forward),
        );
        log.add(vec![Value::Null], 1_000, Some(&forward));
        log.add(vec![Value::from("/tmp/quiet")], 1_000, None);
        let mut stored = Vec::new();
        log.scan(&store, Range::default(), 1_000, |_, v| {
            stored.push(v);
            true
        })
        .unwrap();
        assert_eq!(stored.len(), 3);
        assert_eq!(stored[0][2], Value::Text("0000000000".to_owned()));
        assert_eq!(
            *sent.lock().unwrap(),
            [
                (
                    "sub_events".to_owned(),
                    r#"{"eid":"0000000000","path":"/tmp/a","time":"100"}"#.to_owned()
                ),
                (
                    "sub_events".to_owned(),
                    r#"{"eid":"0000000001","time":"1000"}"#.to_owned()
                ),
            ]
        );
    }

    #[test]
    fn events_come_back_in_order_with_their_eid_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = Mutex::new(Store::open(&path).unwrap());
        let log = open(&store, NO_LIMITS);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            log.add(
                vec![Value::from(*name), Value::Integer(100 + i as i64)],
                1_000,
                None,
            );
        }
        let mut eids = Vec::new();
        log.scan(&store, Range::default(), 1_000, |eid, v| {
            assert_eq!(v[2], Value::Text(format!("{eid:010}")));
            eids.push(eid);
            true
        })
        .unwrap();
        assert_eq!(eids, [0, 1, 2]);
        drop(log);
        drop(store);

        let store = Mutex::new(Store::open(&path).unwrap());
        let log = open(&store, NO_LIMITS);
        log.add(vec![Value::from("d")], 1_000, None);
        assert_eq!(
            paths(&log, &store, Range::default()),
            [
                ("a".into(), 100),
                ("b".into(), 101),
                ("c".into(), 102),
                ("d".into(), 1_000)
            ]
        );
        assert_eq!(
            paths(
                &log,
                &store,
                Range {
                    after_eid: Some(2),
                    ..Range::default()
                }
            ),
            [("d".into(), 1_000)],
            "the eid counter continues after a restart"
        );
    }

    #[test]
    fn time_bounds_select_by_the_event_time() {
        let store = Mutex::new(Store::in_memory().unwrap());
        let log = open(&store, NO_LIMITS);
        for t in [10, 20, 30, 25, 40] {
            log.add(
                vec![Value::from(format!("t{t}")), Value::Integer(t)],
                1_000,
                None,
            );
        }
        let got = paths(
            &log,
            &store,
            Range {
                from_time: Some(20),
                to_time: Some(30),
                ..Range::default()
            },
        );
        assert_eq!(
            got,
            [("t20".into(), 20), ("t30".into(), 30), ("t25".into(), 25)]
        );
        assert!(
            paths(
                &log,
                &store,
                Range {
                    from_time: Some(41),
                    ..Range::default()
                }
            )
            .is_empty()
        );
    }

    #[test]
    fn the_cap_drops_the_oldest_and_counts_them_and_expiry_keeps_the_newest() {
        let store = Mutex::new(Store::in_memory().unwrap());
        let log = open(&store, Limits { expiry: 0, max: 3 });
        for t in 0..5 {
            log.add(
                vec![Value::from(format!("e{t}")), Value::Integer(t)],
                1_000,
                None,
            );
        }
        log.flush(&store, 1_000);
        let got: Vec<String> = paths(&log, &store, Range::default())
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(got, ["e2", "e3", "e4"]);
        assert_eq!(log.dropped.cap.load(Ordering::Relaxed), 2);
        // Events a query has read are not lost when the cap pushes them out...
        for t in 5..8 {
            log.add(
                vec![Value::from(format!("e{t}")), Value::Integer(t)],
                1_000,
                None,
            );
        }
        log.flush(&store, 1_000);
        assert_eq!(log.dropped.cap.load(Ordering::Relaxed), 2);
        // ...unread ones are.
        log.add(vec![Value::from("e8"), Value::Integer(8)], 1_000, None);
        log.flush(&store, 1_000);
        assert_eq!(log.dropped.cap.load(Ordering::Relaxed), 3);
        let keys = store.lock().unwrap().keys(Domain::Events, "data.").unwrap();
        assert_eq!(
            keys.len(),
            3,
            "dropped events leave the store too: {keys:?}"
        );

        let log = SubscriberLog::open(
            &store,
            "pub",
            "old_events",
            columns(),
            Limits {
                expiry: 100,
                max: 0,
            },
        );
        for t in [500, 950, 960] {
            log.add(
                vec![Value::from(format!("e{t}")), Value::Integer(t)],
                1_000,
                None,
            );
        }
        log.flush(&store, 1_000);
        let got: Vec<String> = paths(&log, &store, Range::default())
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(got, ["e950", "e960"]);
        log.flush(&store, 5_000);
        assert_eq!(log.stored(), 1, "the newest event is kept past its expiry");
        assert_eq!(
            log.dropped.cap.load(Ordering::Relaxed),
            0,
            "expiry is not a drop"
        );
    }

    #[test]
    fn a_full_queue_drops_its_oldest_events_and_counts_them() {
        let store = Mutex::new(Store::in_memory().unwrap());
        let log = open(&store, NO_LIMITS);
        for i in 0..PENDING_MAX + 5 {
            log.add(vec![Value::Integer(i as i64)], 1_000, None);
        }
        assert_eq!(log.dropped.queue.load(Ordering::Relaxed), 5);
        let mut first = None;
        log.scan(&store, Range::default(), 1_000, |_, v| {
            first = v[0].as_i64();
            false
        })
        .unwrap();
        assert_eq!(first, Some(5));
    }

    #[test]
    fn a_changed_layout_drops_the_old_events_instead_of_misreading_them() {
        let store = Mutex::new(Store::in_memory().unwrap());
        let log = open(&store, NO_LIMITS);
        log.add(vec![Value::from("a")], 1_000, None);
        log.flush(&store, 1_000);
        let wider = SubscriberLog::open(
            &store,
            "pub",
            "sub_events",
            ["path", "size", "time", "eid"].map(String::from).to_vec(),
            NO_LIMITS,
        );
        assert_eq!(wider.stored(), 0);
        assert!(
            store
                .lock()
                .unwrap()
                .keys(Domain::Events, "data.")
                .unwrap()
                .is_empty()
        );
    }
}
