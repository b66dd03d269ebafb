//! Tables of the `system` domain.

pub mod uptime;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![&uptime::TABLE]
}
