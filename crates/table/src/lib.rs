//! The table framework: how an oxquery table is declared and how it produces rows.
//!
//! A table is a [`Table`] object: a [`TableSpec`] (name, typed columns with osquery's
//! option bits, attributes, aliases) plus a generator. The generator receives a
//! [`QueryContext`] (the constraints SQLite pushed down, the set of columns the query
//! uses, the settings, and a way to learn the query was stopped) and appends typed rows
//! to [`Rows`], which the engine streams to SQLite batch by batch. Built-in tables are
//! declared with the [`table!`] macro as a static [`TableDef`]; it also produces a `Col`
//! enum so generators name columns, not indexes. Tables made at run time implement
//! [`Table`] themselves and go into a [`Registry`], which engines follow while running.
//!
//! ```
//! use oxquery_table::{table, QueryContext, Rows, TableResult};
//!
//! table! {
//!     name: "example",
//!     description: "An example table.",
//!     columns: {
//!         id: BigInt [INDEX] "Row identifier",
//!         label: Text [] "A label",
//!     },
//! }
//!
//! fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
//!     for id in 0..3_i64 {
//!         let mut row = rows.row();
//!         row.set(Col::id, id);
//!         if row.wants(Col::label) {
//!             row.set(Col::label, format!("row {id}"));
//!         }
//!     }
//!     Ok(())
//! }
//! # let _ = &TABLE;
//! ```
//!
//! This crate deliberately knows nothing of SQLite: the engine translates SQLite's planner
//! calls into a `QueryContext`, and tables stay plain Rust that unit tests can call directly.

mod cancel;
mod carves;
mod context;
mod error;
mod events;
mod extensions;
mod host;
mod macros;
pub mod memory;
mod registry;
mod rows;
mod settings;
mod spec;
mod state;
mod value;

pub use cancel::{Cancel, Interrupt, StopReason};
pub use carves::{CarveRecord, Carves, DistributedRequest};
pub use context::{ColumnSet, Constraint, Op, QueryContext};
pub use error::{TableError, TableResult};
pub use events::{EventReader, EventStatus, QueryRun, RunMarks, scan_events};
pub use extensions::{ExtensionRecord, Extensions};
pub use host::{
    Fetched, FlagValue, Host, InstanceInfo, LiveState, PackEntry, PrometheusTargets, RegistryItem,
    ScheduleEntry, SignatureFetch,
};
pub use macros::column_name;
pub use registry::{DuplicateTable, OwnedTable, Owner, Registry, TableFilter};
pub use rows::{MAX_BATCH_ROWS, RowMut, Rows, Sink};
pub use settings::{
    DEFAULT_AUGEAS_LENSES, DEFAULT_DOCKER_SOCKET, DEFAULT_HASH_CACHE_MAX, DEFAULT_LXD_SOCKET,
    DEFAULT_READ_MAX, DEFAULT_YARA_DELAY_MS, TableSettings,
};
pub use spec::{
    Attributes, ChangeError, Collation, Column, ColumnAlias, ColumnOptions, ColumnType, Generator,
    RowChange, Table, TableDef, TableSpec,
};
pub use state::TableState;
pub use value::{Value, str_from_utf8};
