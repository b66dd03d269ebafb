//! How evented tables reach their events. An evented table (`file_events`,
//! `process_events`, ...) is an ordinary declaration whose generator is
//! [`scan_events`]: the rows come from the program's event buffer, which the engine
//! holds as an [`EventReader`] in its [`crate::Host`]. This crate knows only the trait;
//! `oxquery-events` implements it.
//!
//! A scheduled query reads only the events newer than its previous run (osquery's
//! `--events_optimize`). The engine running it carries a [`QueryRun`]: the scan reads
//! the query's mark through it and records how far it read, and the daemon stores the
//! new marks in the same transaction as the results they produced, so an event is logged
//! once per query, also across a crash.

use crate::{QueryContext, Rows, TableResult};
use std::sync::{Arc, Mutex};

/// The program's event buffer as evented tables see it.
pub trait EventReader: Send + Sync + std::fmt::Debug {
    /// Appends the stored events of the subscriber `ctx.spec().name` that the query
    /// asks for (its `time` constraints; a scheduled run's mark).
    fn scan(&self, ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult;
    /// One row per publisher and subscriber (`osquery_events`).
    fn status(&self) -> Vec<EventStatus>;
}

/// One publisher or subscriber, as `osquery_events` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventStatus {
    pub name: String,
    /// For a subscriber, its publisher's name; for a publisher, its own.
    pub publisher: String,
    /// `publisher` or `subscriber`.
    pub kind: &'static str,
    /// How many subscribers a publisher feeds (0 for a subscriber).
    pub subscriptions: i64,
    /// Events published, or events a subscriber added.
    pub events: i64,
    /// Times a publisher was (re)started.
    pub refreshes: i64,
    /// 1 running, 0 stopped, -1 not available on this host.
    pub active: i64,
    /// Events lost, and why (`"inotify queue overflow: 3"`), empty when none.
    pub dropped: i64,
    pub dropped_reasons: String,
}

/// The generator of every evented table.
pub fn scan_events(ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
    match &ctx.host().events {
        Some(reader) => reader.scan(ctx, rows),
        None => {
            log::warn!(
                "Table {} is event-based but events are disabled",
                ctx.spec().name
            );
            Ok(())
        }
    }
}

/// The scheduled query an engine is running, for evented tables. Shared by the clones
/// of one engine's host; set by the daemon around each scheduled run, empty in the shell
/// and for ad hoc queries (which see every buffered event).
#[derive(Debug, Clone, Default)]
pub struct QueryRun {
    current: Arc<Mutex<Option<RunMarks>>>,
}

/// What evented scans of one scheduled run read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunMarks {
    /// The scheduled query's name.
    pub query: String,
    /// Whether the query read an evented table (its results are then not diffed).
    pub evented: bool,
    /// Per subscriber, the last event id the query has now read (to store with the
    /// results).
    pub read_through: Vec<(String, u64)>,
}

impl QueryRun {
    /// Starts recording the run of scheduled query `query`.
    pub fn begin(&self, query: &str) {
        *self.lock() = Some(RunMarks {
            query: query.to_owned(),
            ..RunMarks::default()
        });
    }

    /// Ends the run and returns what its scans read.
    pub fn end(&self) -> Option<RunMarks> {
        self.lock().take()
    }

    /// The scheduled query running now, if any.
    pub fn query(&self) -> Option<String> {
        self.lock().as_ref().map(|r| r.query.clone())
    }

    /// Records that the run read `subscriber`'s events through `eid`.
    pub fn read_through(&self, subscriber: &str, eid: u64) {
        if let Some(run) = self.lock().as_mut() {
            run.evented = true;
            match run.read_through.iter_mut().find(|(s, _)| s == subscriber) {
                Some((_, seen)) => *seen = (*seen).max(eid),
                None => run.read_through.push((subscriber.to_owned(), eid)),
            }
        }
    }

    /// Records that the run read an evented table without moving a mark (a `time`
    /// constraint, or nothing new).
    pub fn touched_events(&self) {
        if let Some(run) = self.lock().as_mut() {
            run.evented = true;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<RunMarks>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_keeps_the_highest_mark_per_subscriber_and_ends_once() {
        let run = QueryRun::default();
        run.read_through("file_events", 3);
        assert_eq!(run.end(), None, "nothing is recorded outside a run");
        run.begin("q");
        assert_eq!(run.query().as_deref(), Some("q"));
        run.read_through("file_events", 7);
        run.read_through("file_events", 5);
        run.read_through("process_events", 2);
        let marks = run.clone().end().expect("a run");
        assert!(marks.evented);
        assert_eq!(
            marks.read_through,
            vec![
                ("file_events".to_owned(), 7),
                ("process_events".to_owned(), 2)
            ]
        );
        assert_eq!(run.end(), None);
    }
}
