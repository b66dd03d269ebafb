//! `selinux_events`: SELinux records from the Linux audit subsystem (`AVC` decisions
//! without an `apparmor=` field, `USER_AVC` from user-space object managers, and the
//! other 1400-1499 records: `SELINUX_ERR`, `MAC_POLICY_LOAD`, `MAC_STATUS`...), fed by
//! the audit publisher (`--audit_allow_selinux_events`). One row per record; `message`
//! is the record's text after its header.

pub use oxquery_table::scan_events as generate;
use oxquery_table::table;

use crate::EventRow;
use oxquery_sys::audit::{AuditEvent, RecordClass, record_type_name};
use oxquery_table::Value;

table! {
    name: "selinux_events",
    description: "SELinux records (AVC decisions, policy loads, status changes) from the Linux audit subsystem (with --disable_audit=false and --audit_allow_selinux_events).",
    attributes: [EVENT_BASED],
    columns: {
        r#type: Text [] "Event type: the audit record type's name (AVC, USER_AVC, MAC_STATUS...)",
        message: Text [] "Message: the record's text after its audit(...) header",
        time: BigInt [ADDITIONAL] "Time of the event (unix seconds, from the audit record)",
        uptime: BigInt [] "Time of execution in system uptime",
        eid: Text [HIDDEN] "Event ID",
    },
    examples: ["select type, message from selinux_events where type = 'AVC'"],
}

/// The publisher feeding this table.
pub const PUBLISHER: &str = crate::publishers::audit::NAME;

/// One row per SELinux record of the event.
pub fn rows(event: &AuditEvent, uptime: i64) -> Vec<EventRow> {
    event
        .records
        .iter()
        .filter(|r| r.class() == RecordClass::Selinux)
        .map(|record| {
            let mut r = EventRow::new(&SPEC);
            let name = record_type_name(record.kind)
                .map_or_else(|| record.kind.to_string(), str::to_owned);
            r.set(Col::r#type, name);
            r.set(Col::message, Value::from_bytes(record.body.clone()));
            r.set(Col::time, event.time.secs as i64);
            r.set(Col::uptime, uptime);
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_sys::audit::Assembler;
    use std::time::{Duration, Instant};

    #[test]
    fn avc_records_of_a_syscall_event_become_rows() {
        let records: &[(u16, &[u8])] = &[
            (1400, b"audit(1700000003.000:20): avc:  denied  { read } for  pid=5 comm=\"cat\" name=\"shadow\" scontext=u:r:t:s0 tcontext=u:r:s:s0 tclass=file permissive=0"),
            (1300, b"audit(1700000003.000:20): arch=c000003e syscall=257 success=no exit=-13 pid=5"),
            (1400, b"audit(1700000003.000:20): apparmor=\"DENIED\" operation=\"open\" profile=\"p\""),
            (1320, b"audit(1700000003.000:20): "),
        ];
        let mut a = Assembler::new(Duration::from_secs(1));
        let mut out = Vec::new();
        for (kind, text) in records {
            a.push(*kind, text, Instant::now(), &mut out);
        }
        let rows = rows(&out[0], 3);
        // The AppArmor AVC belongs to apparmor_events.
        assert_eq!(rows.len(), 1);
        let values = rows[0].clone().into_values();
        assert_eq!(values[usize::from(Col::r#type)], Value::from("AVC"));
        assert!(
            values[usize::from(Col::message)]
                .as_text()
                .unwrap()
                .starts_with("avc:  denied  { read } for  pid=5")
        );
        assert_eq!(values[usize::from(Col::time)], Value::from(1700000003));
    }
}
