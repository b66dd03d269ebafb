//! The evented tables, one file each.

pub mod file_events;
pub mod syslog_events;
#[cfg(feature = "yara")]
pub mod yara_events;

use oxquery_table::TableDef;

/// Every evented table.
pub fn all() -> Vec<&'static TableDef> {
    vec![
        &file_events::TABLE,
        &syslog_events::TABLE,
        #[cfg(feature = "yara")]
        &yara_events::TABLE,
    ]
}
