//! osquery's event framework for Linux: publishers read OS event sources on threads of
//! their own, subscribers (one per evented table) turn events into rows, and the rows are
//! kept in the store, bounded, until queries read them.
//!
//! ```text
//! oxquery-sys reader ──▶ Publisher thread ──rows──▶ Subscriber ──▶ SubscriberLog (store, bounded)
//!  (inotify, audit,       (publishers/*.rs)                              ▲
//!   netlink, pipe)                                  evented table scan ──┘ (EventHub as EventReader)
//! ```
//!
//! **An evented table** is a file in `tables/`: its `table!` declaration (attribute
//! `EVENT_BASED`, a `time` column marked ADDITIONAL and a hidden `eid`), `use
//! oxquery_table::scan_events as generate;` (rows come from the buffer), the constant
//! `PUBLISHER` naming its publisher, and the function that turns a publisher's event into
//! the table's row ([`EventRow`]), with its tests. List it in [`tables`].
//!
//! **A publisher** is a file in `publishers/`: a constructor that asks the hub for its
//! subscribers ([`EventHub::subscribe`]; `None` when the config disables one) and
//! returns no publisher when it has none or its flags turn it off, and a [`Publisher`]
//! whose `run` loops on its reader with a [`READ_TIMEOUT`], calling
//! [`PublisherContext::published`] and [`PublisherContext::lost`] so `osquery_events` shows
//! every event read and every one lost. List it in [`publishers`].
//!
//! **Queries.** A `time` constraint selects by event time. A scheduled query (the daemon
//! marks its engine's [`oxquery_table::QueryRun`]) reads only the events after its
//! mark, and the daemon stores the new mark with the results ([`EventHub::mark_key`]),
//! so each event is logged once per query, also across restarts.

mod buffer;
mod hub;
mod publisher;
pub mod publishers;
mod row;
pub mod tables;

pub use tables::all as tables;

pub use buffer::{Limits, PENDING_MAX};
pub use hub::{EventForward, EventHub, HubSettings, Subscriber, unix_now};
pub use publisher::{Publisher, PublisherContext, READ_TIMEOUT};

use oxquery_table::{TableSpec, Value};
use std::collections::BTreeMap;

/// One event's row under construction: a cell per column of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow(Vec<Value>);

impl EventRow {
    /// An empty row of `spec`'s table.
    pub fn new(spec: &TableSpec) -> EventRow {
        EventRow(vec![Value::Null; spec.columns.len()])
    }

    pub fn set(&mut self, column: impl Into<usize>, value: impl Into<Value>) {
        self.0[column.into()] = value.into();
    }

    pub fn into_values(self) -> Vec<Value> {
        self.0
    }
}

/// What publishers read from the config (the programs convert theirs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventsConfig {
    /// `file_paths`: category → path patterns (osquery's `%`, `%%`).
    pub file_paths: BTreeMap<String, Vec<String>>,
    /// `exclude_paths`: category → paths not reported.
    pub exclude_paths: BTreeMap<String, Vec<String>>,
    /// `file_accesses`: categories that also report opens and reads.
    pub file_accesses: Vec<String>,
    /// `yara`: signature groups and the file categories they scan (`yara_events`).
    pub yara: Option<serde_json::Value>,
}

/// Builds every publisher that has an enabled subscriber under these flags and config.
pub fn publishers(
    hub: &EventHub,
    flags: &oxquery_flags::Flags,
    config: &EventsConfig,
) -> Vec<Box<dyn Publisher>> {
    let mut out: Vec<Box<dyn Publisher>> = Vec::new();
    if let Some(audit) = publishers::audit::publisher(hub, flags) {
        // While another audit daemon keeps the audit socket (or audit fails), the
        // process-events connector serves process_events instead (never both at once).
        if audit.process.is_some() {
            let gate = publishers::proc_connector::ConnectorGate::unless(audit.serving());
            if let Some(connector) = publishers::proc_connector::ConnectorPublisher::new(
                hub,
                &tables::process_events::SPEC,
                flags,
                gate,
            ) {
                out.push(Box::new(connector));
            }
        }
        out.push(Box::new(audit));
    }
    out.extend(publishers::syslog::new(hub, flags));
    out.extend(publishers::inotify::new(hub, flags, config));
    if let Some(p) = publishers::udev::UdevPublisher::new(hub, flags) {
        out.push(Box::new(p));
    }
    out
}
