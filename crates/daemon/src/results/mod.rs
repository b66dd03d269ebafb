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

pub mod diff;
pub mod escape;
pub mod performance;
pub mod stored;

pub use diff::{Diff, diff};

use crate::item::{Decorations, Payload, ResultItem, Row};
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
}

impl<'a> ScheduledQuery<'a> {
    /// A differential query logging removed rows: the config's defaults.
    pub fn new(name: &'a str, sql: &'a str) -> Self {
        ScheduledQuery {
            name,
            sql,
            snapshot: false,
            removed: true,
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
}

impl StateUpdate {
    /// Whether applying writes nothing.
    pub fn is_empty(&self) -> bool {
        self.results.is_none() && self.sql.is_none() && self.executed_at.is_none()
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
        Ok(())
    }
}

fn read_u64(bytes: Option<Vec<u8>>) -> Option<u64> {
    std::str::from_utf8(&bytes?).ok()?.trim().parse().ok()
}

/// Computes what a run of `query` returning `rows` logs, against the stored state.
pub fn compute(
    store: &Store,
    query: &ScheduledQuery<'_>,
    rows: Vec<Row>,
    run: Run,
) -> Result<QueryOutcome> {
    let name = query.name;
    let item = |counter, payload| ResultItem {
        name: name.to_owned(),
        unix_time: run.unix_time,
        epoch: run.epoch,
        counter,
        decorations: run.decorations.clone(),
        payload,
    };
    if query.snapshot {
        return Ok(QueryOutcome {
            item: Some(item(0, Payload::Snapshot(rows))),
            state: StateUpdate {
                name: name.to_owned(),
                seen_counter: None,
                results: None,
                sql: None,
                executed_at: None,
            },
        });
    }

    let mut rows = rows;
    for row in &mut rows {
        escape::escape_row(row);
    }

    let stored_sql = store.get_text(Domain::Queries, &format!("query.{name}"))?;
    let sql = match stored_sql.as_deref() {
        Some(old) if old == query.sql => None,
        Some(_) => {
            // The diff continues against the old rows: a reworded query that returns the
            // same rows should not log them all again.
            log::info!("Scheduled query may have changed: {name}");
            Some(query.sql.to_owned())
        }
        None => Some(query.sql.to_owned()),
    };
    let seen_counter = read_u64(store.get(Domain::Queries, &format!("{name}counter"))?);
    let stored_epoch = read_u64(store.get(Domain::Queries, &format!("{name}epoch"))?);
    let previous = match store.get(Domain::Queries, name)? {
        Some(bytes) if stored_epoch == Some(run.epoch) => match stored::decode(&bytes) {
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
        seen_counter,
        results: None,
        sql,
        executed_at: Some(run.unix_time),
    };
    let Some(previous) = previous else {
        state.results = Some((stored::encode(&rows), run.epoch, 0));
        let payload = Payload::Diff {
            added: rows,
            removed: Vec::new(),
        };
        return Ok(QueryOutcome {
            item: Some(item(0, payload)),
            state,
        });
    };

    let Diff { added, removed } = diff(&previous, &rows);
    if added.is_empty() && removed.is_empty() {
        return Ok(QueryOutcome { item: None, state });
    }
    let counter = seen_counter.map_or(1, |c| c + 1);
    state.results = Some((stored::encode(&rows), run.epoch, counter));
    let removed = if query.removed { removed } else { Vec::new() };
    let item = (!added.is_empty() || !removed.is_empty())
        .then(|| item(counter, Payload::Diff { added, removed }));
    Ok(QueryOutcome { item, state })
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
