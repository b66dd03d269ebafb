//! The evented tables, one file each.

pub mod syslog_events;

use oxquery_table::TableDef;

/// Every evented table.
pub fn all() -> Vec<&'static TableDef> {
    vec![&syslog_events::TABLE]
}
