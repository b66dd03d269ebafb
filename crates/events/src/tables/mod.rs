//! The evented tables, one file each.

use oxquery_table::TableDef;

pub mod hardware_events;

/// Every evented table.
pub fn all() -> Vec<&'static TableDef> {
    vec![&hardware_events::TABLE]
}
