//! The table framework: how an oxquery table is declared and how it produces rows.
//!
//! A table is one [`TableDef`]: a static [`TableSpec`] (name, typed columns with osquery's
//! option bits, attributes, aliases) plus a generator function. The generator receives a
//! [`QueryContext`] (the constraints SQLite pushed down and the set of columns the query
//! uses) and appends typed rows to [`Rows`]. Declarations are written with the [`table!`]
//! macro, which also produces a `Col` enum so generators name columns, not indexes:
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

mod context;
mod error;
mod host;
mod macros;
mod rows;
mod spec;
mod value;

pub use context::{ColumnSet, Constraint, Op, QueryContext};
pub use error::{TableError, TableResult};
pub use host::{FlagValue, Host, InstanceInfo, LiveState, PackEntry, RegistryItem, ScheduleEntry};
pub use macros::column_name;
pub use rows::{RowMut, Rows};
pub use spec::{
    Attributes, Collation, Column, ColumnAlias, ColumnOptions, ColumnType, Generator, TableDef,
    TableSpec,
};
pub use value::Value;
