//! The evented tables, one file each.

pub mod apparmor_events;
pub mod file_events;
pub mod hardware_events;
pub mod process_events;
pub mod process_file_events;
pub mod seccomp_events;
pub mod selinux_events;
pub mod socket_events;
pub mod syslog_events;
pub mod user_events;
#[cfg(feature = "yara")]
pub mod yara_events;

use oxquery_table::TableDef;

/// Every evented table.
pub fn all() -> Vec<&'static TableDef> {
    vec![
        &apparmor_events::TABLE,
        &file_events::TABLE,
        &hardware_events::TABLE,
        &process_events::TABLE,
        &process_file_events::TABLE,
        &seccomp_events::TABLE,
        &selinux_events::TABLE,
        &socket_events::TABLE,
        &syslog_events::TABLE,
        &user_events::TABLE,
        #[cfg(feature = "yara")]
        &yara_events::TABLE,
    ]
}

/// The last audit event that `records` (record type, text) complete, for the audit
/// tables' tests.
#[cfg(test)]
pub(crate) fn assemble(records: &[(u16, impl AsRef<[u8]>)]) -> oxquery_sys::audit::AuditEvent {
    let mut a = oxquery_sys::audit::Assembler::new(std::time::Duration::from_secs(1));
    let mut out = Vec::new();
    for (kind, text) in records {
        a.push(*kind, text.as_ref(), std::time::Instant::now(), &mut out);
    }
    out.pop().expect("an event")
}
