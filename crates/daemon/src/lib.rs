//! osqueryd's machinery: configuration, the schedule, differential results, loggers.
//!
//! Data flow of one scheduled query:
//!
//! ```text
//! config (packs, schedule) ──▶ scheduler ──SQL──▶ engine ──rows──▶ results (diff vs store)
//!                                                                     │ one transaction:
//!                                                                     ▼ new state + log lines
//!                                                                  store (outbox) ──▶ logger sinks
//! ```
//!
//! * [`atc`]: `auto_table_construction`, tables over SQLite files the config names.
//! * [`config`]: the configuration (the `oxquery-config` crate, shared with the shell).
//! * [`item`]: the shared vocabulary: typed rows, a query's loggable outcome.
//! * [`sink`]: what a logger destination must do for exactly-once delivery.
//! * [`logger`]: osquery-compatible result lines, the filesystem/stdout/syslog sinks, the status log.
//! * [`results`]: differential computation against the stored last results; per-query stats.
//! * [`pidfile`]: the lock that keeps a second daemon off the same pidfile.
//! * [`runtime`]: osqueryd itself: start-up, the schedule loop, signals, reloads.
//! * [`outbox`]: diff state and log lines committed together; draining them to the sinks.
//! * [`carver`]: file carving: the `carves` records and their archive and upload.
//! * [`distributed`]: live queries from a fleet server (the `tls` distributed plugin).
//! * [`watchdog`]: osquery's watcher process and the limits it holds the worker to.
//!
//! Invariant: a differential result and the log lines it produces are committed to the
//! store in one transaction (the outbox); sinks drain the outbox. A `kill -9` at any
//! moment neither loses nor duplicates a logged row.

pub use oxquery_config as config;
pub mod carver;
pub mod distributed;
pub mod item;
pub mod logger;
pub(crate) mod monitoring;
pub mod outbox;
pub mod pidfile;
pub mod results;
pub mod runtime;
pub mod sink;
mod usage;
pub mod watchdog;
