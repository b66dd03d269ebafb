//! Differential results: what a scheduled query's run has to log, computed against the
//! result set stored from its previous run.
//!
//! State per query name in the store's `queries` domain (reference §d):
//! `<name>` = the last rows as a typed JSON array, `<name>epoch`, `<name>counter`
//! (decimal text) and `query.<name>` = the SQL text; `configurations/timestamp.<name>`
//! = unix time of the last run, for [`expire_stale`].
//!
//! * First run of a name, or a `--schedule_epoch` other than the stored one: every row is
//!   added, counter 0, and the item is logged even when the result is empty (event
//!   formatters then produce no lines; batch formatters one).
//! * Otherwise the multiset difference ([`diff()`]); removed rows are logged before added
//!   ones (the formatter's job; the item carries both lists). Only when something changed
//!   is the new set stored and the counter advanced by one; an unchanged result logs
//!   nothing.
//! * `removed: false` drops removed rows from the item (state still advances); a run
//!   whose only change was a removal is then not logged, so its counter value is skipped
//!   in the log.
//! * Snapshot queries keep no state: the whole result, counter 0, every run.
//! * Differential string values are escaped ([`escape`]) before diffing, storing and
//!   logging; snapshot rows are logged as they came.
//!
//! [`compute`] only reads the store; the returned [`QueryOutcome`] carries the state to
//! write, which [`crate::outbox::record`] commits together with the log lines.
//!
//! The daemon takes the same steps without holding the store for long and without a map
//! per row: [`Stored::load`] reads the previous state (a short lock), [`changes`] diffs
//! the run's [`EncodedRows`] against it as bytes, [`Changes::lines`] formats what to log
//! a chunk of rows at a time, and only the write of the new state and lines
//! ([`crate::outbox::record_lines`]) takes the store again.

pub mod diff;
pub mod escape;
pub mod performance;
pub mod stored;

pub use diff::{Diff, EncodedDiff, diff, diff_encoded};
pub use stored::{EncodedRows, RowsBuilder};

use crate::item::{Decorations, LogLine, Payload, ResultItem, Row};
use crate::outbox::Lines;
use oxquery_store::{Domain, Result, Store, StoreError, Tx};

/// Seconds without a run after which an unscheduled query's results are deleted
/// (osquery's value: a week minus a few hours of slack).
pub const STALE_AFTER_SECS: i64 = 592_200;

/// A scheduled query as the results step needs it.
#[derive(Debug, Clone, Copy)]
pub struct ScheduledQuery<'a> {
    /// Full name (`pack_<pack>_<query>` or the bare `schedule` name).
    pub name: &'a str,
    pub sql: &'a str,
    pub snapshot: bool,
    /// `false` drops removed rows from the log (the config's `"removed": false`).
    pub removed: bool,
    /// The run read evented tables with `--events_optimize`: only new events, no diff.
    pub evented: bool,
}

impl<'a> ScheduledQuery<'a> {
    /// A differential query logging removed rows: the config's defaults.
    pub fn new(name: &'a str, sql: &'a str) -> Self {
        ScheduledQuery {
            name,
            sql,
            snapshot: false,
            removed: true,
            evented: false,
        }
    }
}

/// Facts about one run that are not rows.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub unix_time: i64,
    /// `--schedule_epoch`.
    pub epoch: u64,
    pub decorations: Decorations,
}

/// The result of one run: what to log and what to store.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutcome {
    /// `None` when there is nothing to log.
    pub item: Option<ResultItem>,
    pub state: StateUpdate,
}

impl QueryOutcome {
    /// Commits the state alone (nothing logged), e.g. under `--disable_logging`.
    pub fn commit(&self, store: &mut Store) -> Result<()> {
        store.transaction(|tx| self.state.apply(tx))
    }
}

/// Writes a run leaves in the store. Applied inside the outbox's transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct StateUpdate {
    name: String,
    /// The counter stored when the outcome was computed, checked again on apply so that a
    /// concurrent or repeated commit cannot advance the same state twice.
    seen_counter: Option<u64>,
    /// New rows (stored JSON), epoch and counter, when the result set changed.
    results: Option<(String, u64, u64)>,
    /// New SQL text, when it changed.
    sql: Option<String>,
    /// Run time for expiry; `None` for snapshots, which keep no state.
    executed_at: Option<i64>,
    /// Evented tables' marks (`events` domain key, last event id read): stored with the
    /// results they produced, so each event is logged once per query.
    event_marks: Vec<(String, u64)>,
}

impl StateUpdate {
    /// Commits the state alone (nothing logged), e.g. under `--disable_logging`.
    pub fn commit(&self, store: &mut Store) -> Result<()> {
        store.transaction(|tx| self.apply(tx))
    }

    /// Whether applying writes nothing.
    pub fn is_empty(&self) -> bool {
        self.results.is_none()
            && self.sql.is_none()
            && self.executed_at.is_none()
            && self.event_marks.is_empty()
    }

    /// Adds the marks of the evented tables the run read (see `oxquery_events`).
    pub fn with_event_marks(mut self, marks: Vec<(String, u64)>) -> Self {
        self.event_marks = marks;
        self
    }

    /// Performs the writes inside `tx`. Fails with [`StoreError::Conflict`] when the stored
    /// counter is no longer the one the outcome was computed from.
    pub fn apply(&self, tx: &Tx<'_>) -> Result<()> {
        let name = &self.name;
        if let Some((rows, epoch, counter)) = &self.results {
            let stored = read_u64(tx.get(Domain::Queries, &format!("{name}counter"))?);
            if stored != self.seen_counter {
                return Err(StoreError::Conflict(format!(
                    "results of {name}: counter is {stored:?}, expected {:?}",
                    self.seen_counter
                )));
            }
            tx.put(Domain::Queries, name, rows.as_bytes())?;
            tx.put(
                Domain::Queries,
                &format!("{name}epoch"),
                epoch.to_string().as_bytes(),
            )?;
            tx.put(
                Domain::Queries,
                &format!("{name}counter"),
                counter.to_string().as_bytes(),
            )?;
        }
        if let Some(sql) = &self.sql {
            tx.put(Domain::Queries, &format!("query.{name}"), sql.as_bytes())?;
        }
        if let Some(t) = self.executed_at {
            tx.put(
                Domain::Configurations,
                &format!("timestamp.{name}"),
                t.to_string().as_bytes(),
            )?;
        }
        for (key, eid) in &self.event_marks {
            tx.put(Domain::Events, key, eid.to_string().as_bytes())?;
        }
        Ok(())
    }
}

fn read_u64(bytes: Option<Vec<u8>>) -> Option<u64> {
    std::str::from_utf8(&bytes?).ok()?.trim().parse().ok()
}

/// What the store holds about a query before its run, read in one short lock.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    sql: Option<String>,
    counter: Option<u64>,
    epoch: Option<u64>,
    rows: Option<Vec<u8>>,
}

impl Stored {
    pub fn load(store: &Store, name: &str) -> Result<Stored> {
        Ok(Stored {
            sql: store.get_text(Domain::Queries, &format!("query.{name}"))?,
            counter: read_u64(store.get(Domain::Queries, &format!("{name}counter"))?),
            epoch: read_u64(store.get(Domain::Queries, &format!("{name}epoch"))?),
            rows: store.get(Domain::Queries, name)?,
        })
    }
}

/// A differential run's result against the stored state, before formatting: the run's
/// rows, the previous rows that went, and the state to write.
#[derive(Debug)]
pub struct Changes {
    /// The item to log, its rows left out (they are formatted from the encodings).
    head: Option<ResultItem>,
    current: EncodedRows,
    /// The previous rows, kept only when some were removed and are to be logged.
    previous: EncodedRows,
    added: Vec<usize>,
    removed: Vec<usize>,
    /// Whether the state takes `current` as the new last results.
    store_rows: bool,
    state: StateUpdate,
}

/// Rows formatted per [`Changes::lines`] call of `format`: small enough that the
/// transient typed rows cost little, large enough to amortise the call.
const FORMAT_CHUNK: usize = 1024;

impl Changes {
    /// Whether there is something to log.
    pub fn logs(&self) -> bool {
        self.head.is_some()
    }

    /// The log lines: `format` applied to the item. With `per_row` (event formats, one
    /// line per row) the item is formatted a chunk of rows at a time, removed rows
    /// first, so the typed rows never exist all at once; otherwise in one call.
    pub fn lines(&self, format: impl Fn(&ResultItem) -> Vec<LogLine>, per_row: bool) -> Lines {
        let mut lines = Lines::new();
        let Some(head) = &self.head else {
            return lines;
        };
        let decode = |rows: &EncodedRows, at: &[usize]| -> Vec<Row> {
            at.iter().filter_map(|&i| rows.decode_row(i)).collect()
        };
        let with = |added: Vec<Row>, removed: Vec<Row>| ResultItem {
            payload: Payload::Diff { added, removed },
            ..head.clone()
        };
        if !per_row {
            lines.extend(format(&with(
                decode(&self.current, &self.added),
                decode(&self.previous, &self.removed),
            )));
            return lines;
        }
        for chunk in self.removed.chunks(FORMAT_CHUNK) {
            lines.extend(format(&with(Vec::new(), decode(&self.previous, chunk))));
        }
        for chunk in self.added.chunks(FORMAT_CHUNK) {
            lines.extend(format(&with(decode(&self.current, chunk), Vec::new())));
        }
        lines
    }

    /// The state to write, holding the run's rows when they are the new last results.
    pub fn into_state(self) -> StateUpdate {
        let mut state = self.state;
        if self.store_rows
            && let Some(results) = &mut state.results
        {
            results.0 = self.current.into_text();
        }
        state
    }

    /// The item with its rows, and the state: what [`compute`] returns.
    fn into_outcome(self) -> QueryOutcome {
        let item = self.head.as_ref().map(|head| ResultItem {
            payload: Payload::Diff {
                added: self
                    .added
                    .iter()
                    .filter_map(|&i| self.current.decode_row(i))
                    .collect(),
                removed: self
                    .removed
                    .iter()
                    .filter_map(|&i| self.previous.decode_row(i))
                    .collect(),
            },
            ..head.clone()
        });
        QueryOutcome {
            item,
            state: self.into_state(),
        }
    }
}

/// Computes what a run of `query` returning `rows` logs, against the stored state.
pub fn compute(
    store: &Store,
    query: &ScheduledQuery<'_>,
    rows: Vec<Row>,
    run: Run,
) -> Result<QueryOutcome> {
    if query.snapshot {
        return Ok(snapshot(query, rows, run));
    }
    let mut rows = rows;
    for row in &mut rows {
        escape::escape_row(row);
    }
    let current = EncodedRows::from_rows(&rows);
    drop(rows);
    let stored = Stored::load(store, query.name)?;
    Ok(changes(query, current, stored, run).into_outcome())
}

/// A snapshot run: the whole result, counter 0, no state.
pub fn snapshot(query: &ScheduledQuery<'_>, rows: Vec<Row>, run: Run) -> QueryOutcome {
    QueryOutcome {
        item: Some(ResultItem {
            name: query.name.to_owned(),
            unix_time: run.unix_time,
            epoch: run.epoch,
            counter: 0,
            decorations: run.decorations,
            payload: Payload::Snapshot(rows),
        }),
        state: StateUpdate {
            name: query.name.to_owned(),
            seen_counter: None,
            results: None,
            sql: None,
            executed_at: None,
            event_marks: Vec::new(),
        },
    }
}

/// Diffs a differential run's rows (escaped, encoded) against what was stored. Needs no
/// store: the caller reads [`Stored`] first and writes the state afterwards.
pub fn changes(
    query: &ScheduledQuery<'_>,
    current: EncodedRows,
    stored: Stored,
    run: Run,
) -> Changes {
    let name = query.name;
    let head = |counter| ResultItem {
        name: name.to_owned(),
        unix_time: run.unix_time,
        epoch: run.epoch,
        counter,
        decorations: run.decorations.clone(),
        payload: Payload::Diff {
            added: Vec::new(),
            removed: Vec::new(),
        },
    };
    let sql = match stored.sql.as_deref() {
        Some(old) if old == query.sql => None,
        Some(_) => {
            // The diff continues against the old rows: a reworded query that returns the
            // same rows should not log them all again.
            log::info!("Scheduled query may have changed: {name}");
            Some(query.sql.to_owned())
        }
        None => Some(query.sql.to_owned()),
    };
    let previous = match stored.rows {
        Some(bytes) if stored.epoch == Some(run.epoch) => match EncodedRows::parse(bytes) {
            Some(rows) => Some(rows),
            None => {
                log::warn!("Stored results of {name} are unreadable; starting it afresh");
                None
            }
        },
        _ => None,
    };
    let mut state = StateUpdate {
        name: name.to_owned(),
        seen_counter: stored.counter,
        results: None,
        sql,
        executed_at: Some(run.unix_time),
        event_marks: Vec::new(),
    };
    if query.evented {
        // osquery: a query over evented tables reads only new events, so its rows are
        // all added and nothing is diffed or kept; the counter counts runs with rows.
        let counter = match (stored.counter, stored.epoch == Some(run.epoch)) {
            (None, _) => 0,
            (Some(_), false) => 1,
            (Some(c), true) => c + 1,
        };
        let logs = !current.is_empty();
        if logs {
            state.results = Some((EncodedRows::default().into_text(), run.epoch, counter));
        }
        return Changes {
            head: logs.then(|| head(counter)),
            added: (0..current.len()).collect(),
            current,
            previous: EncodedRows::default(),
            removed: Vec::new(),
            store_rows: false,
            state,
        };
    }
    let Some(previous) = previous else {
        state.results = Some((String::new(), run.epoch, 0));
        return Changes {
            head: Some(head(0)),
            added: (0..current.len()).collect(),
            current,
            previous: EncodedRows::default(),
            removed: Vec::new(),
            store_rows: true,
            state,
        };
    };
    let EncodedDiff { added, removed } = diff_encoded(&previous, &current);
    if added.is_empty() && removed.is_empty() {
        return Changes {
            head: None,
            current,
            previous: EncodedRows::default(),
            added,
            removed,
            store_rows: false,
            state,
        };
    }
    let counter = stored.counter.map_or(1, |c| c + 1);
    state.results = Some((String::new(), run.epoch, counter));
    let removed = if query.removed { removed } else { Vec::new() };
    let logs = !added.is_empty() || !removed.is_empty();
    Changes {
        head: logs.then(|| head(counter)),
        current,
        // Only the rows to log as removed need the previous set.
        previous: if removed.is_empty() {
            EncodedRows::default()
        } else {
            previous
        },
        added,
        removed,
        store_rows: true,
        state,
    }
}

/// Deletes the stored results (and performance figures) of names for which
/// `is_scheduled` is false and that have not run for [`STALE_AFTER_SECS`]. Returns the
/// names deleted.
pub fn expire_stale(
    store: &mut Store,
    is_scheduled: impl Fn(&str) -> bool,
    now: i64,
) -> Result<Vec<String>> {
    store.transaction(|tx| {
        let mut gone = Vec::new();
        for (key, value) in tx.scan(Domain::Configurations, "timestamp.")? {
            let name = &key["timestamp.".len()..];
            let last = std::str::from_utf8(&value)
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
                .unwrap_or(0);
            if is_scheduled(name) || now - last <= STALE_AFTER_SECS {
                continue;
            }
            for k in [
                name.to_owned(),
                format!("{name}epoch"),
                format!("{name}counter"),
                format!("query.{name}"),
            ] {
                tx.delete(Domain::Queries, &k)?;
            }
            tx.delete(Domain::QueryPerformance, name)?;
            tx.delete(Domain::Configurations, &key)?;
            gone.push(name.to_owned());
        }
        Ok(gone)
    })
}

#[cfg(test)]
mod tests;
