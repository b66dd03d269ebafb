//! The evented tables, one file each.

use oxquery_table::TableDef;

pub mod file_events;
#[cfg(feature = "yara")]
pub mod yara_events;

/// Every evented table.
pub fn all() -> Vec<&'static TableDef> {
    vec![
        &file_events::TABLE,
        #[cfg(feature = "yara")]
        &yara_events::TABLE,
    ]
}
