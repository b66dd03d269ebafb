//! Tables of the `utility` domain.

pub mod carves;
pub mod osquery_events;
pub mod osquery_extensions;
pub mod osquery_flags;
pub mod osquery_info;
pub mod osquery_packs;
pub mod osquery_registry;
pub mod osquery_schedule;
pub mod time;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![
        &carves::TABLE,
        &osquery_events::TABLE,
        &osquery_extensions::TABLE,
        &osquery_flags::TABLE,
        &osquery_info::TABLE,
        &osquery_packs::TABLE,
        &osquery_registry::TABLE,
        &osquery_schedule::TABLE,
        &time::TABLE,
    ]
}
