//! The evented tables, one file each.

use oxquery_table::TableDef;

pub mod apparmor_events;
pub mod process_events;
pub mod process_file_events;
pub mod seccomp_events;
pub mod selinux_events;
pub mod socket_events;
pub mod user_events;

/// Every evented table.
pub fn all() -> Vec<&'static TableDef> {
    vec![
        &apparmor_events::TABLE,
        &process_events::TABLE,
        &process_file_events::TABLE,
        &seccomp_events::TABLE,
        &selinux_events::TABLE,
        &socket_events::TABLE,
        &user_events::TABLE,
    ]
}
