//! The evented tables, one file each.

use oxquery_table::TableDef;

pub mod process_events;
pub mod socket_events;
pub mod user_events;

/// Every evented table.
pub fn all() -> Vec<&'static TableDef> {
    vec![
        &process_events::TABLE,
        &socket_events::TABLE,
        &user_events::TABLE,
    ]
}
