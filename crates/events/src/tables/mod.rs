//! The evented tables, one file each.

pub mod hardware_events;
pub mod syslog_events;

use oxquery_table::TableDef;

/// Every evented table.
pub fn all() -> Vec<&'static TableDef> {
    vec![&hardware_events::TABLE, &syslog_events::TABLE]
}
