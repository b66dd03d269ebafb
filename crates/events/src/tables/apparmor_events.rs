//! `apparmor_events`: AppArmor records from the Linux audit subsystem (the `AVC` records
//! with an `apparmor=` field current kernels write, and the 1500-1599 types), fed by the
//! audit publisher (`--audit_allow_apparmor_events`). One row per record: the record's
//! fields by name, and its text as `message`.

pub use oxquery_table::scan_events as generate;
use oxquery_table::table;

use crate::EventRow;
use oxquery_sys::audit::{AuditEvent, Record, RecordClass, record_type_name};
use oxquery_table::Value;

table! {
    name: "apparmor_events",
    description: "AppArmor records (denials, audits, profile loads) from the Linux audit subsystem (with --disable_audit=false and --audit_allow_apparmor_events).",
    attributes: [EVENT_BASED],
    columns: {
        r#type: Text [] "Event type: the audit record type's name (AVC, APPARMOR_DENIED...)",
        message: Text [] "Raw audit message: the record's text after its header",
        time: BigInt [ADDITIONAL] "Time of the event (unix seconds, from the audit record)",
        uptime: BigInt [] "Time of execution in system uptime",
        eid: Text [HIDDEN] "Event ID",
        apparmor: Text [] "Apparmor status like ALLOWED, DENIED etc.",
        operation: Text [] "Permission requested by the process",
        parent: UnsignedBigInt [] "Parent process PID",
        profile: Text [] "Apparmor profile name",
        name: Text [] "Process name",
        pid: UnsignedBigInt [] "Process ID",
        comm: Text [] "Command-line name of the command that was used to invoke the analyzed process",
        denied_mask: Text [] "Denied permissions for the process",
        capname: Text [] "Capability requested by the process",
        fsuid: UnsignedBigInt [] "Filesystem user ID",
        ouid: UnsignedBigInt [] "Object owner's user ID",
        capability: BigInt [] "Capability number",
        requested_mask: Text [] "Requested access mask",
        info: Text [] "Additional information",
        error: Text [] "Error information",
        namespace: Text [] "AppArmor namespace",
        label: Text [] "AppArmor label",
    },
    examples: ["select apparmor, operation, profile, name, pid from apparmor_events where apparmor = 'DENIED'"],
}

/// The publisher feeding this table.
pub const PUBLISHER: &str = crate::publishers::audit::NAME;

/// One row per AppArmor record of the event.
pub fn rows(event: &AuditEvent, uptime: i64) -> Vec<EventRow> {
    event
        .records
        .iter()
        .filter(|r| r.class() == RecordClass::AppArmor)
        .map(|record| row(event, record, uptime))
        .collect()
}

fn row(event: &AuditEvent, record: &Record, uptime: i64) -> EventRow {
    let mut r = EventRow::new(&SPEC);
    let name = record_type_name(record.kind).map_or_else(|| record.kind.to_string(), str::to_owned);
    r.set(Col::r#type, name);
    r.set(Col::message, Value::from_bytes(record.body.clone()));
    r.set(Col::time, event.time.secs as i64);
    r.set(Col::uptime, uptime);
    for (col, key) in [
        (Col::apparmor, "apparmor"),
        (Col::operation, "operation"),
        (Col::profile, "profile"),
        (Col::name, "name"),
        (Col::comm, "comm"),
        (Col::denied_mask, "denied_mask"),
        (Col::capname, "capname"),
        (Col::requested_mask, "requested_mask"),
        (Col::info, "info"),
        (Col::error, "error"),
        (Col::namespace, "namespace"),
        (Col::label, "label"),
    ] {
        if let Some(v) = record.field(key).and_then(|v| v.string()) {
            r.set(col, Value::from_bytes(v));
        }
    }
    for (col, key) in [
        (Col::parent, "parent"),
        (Col::pid, "pid"),
        (Col::fsuid, "fsuid"),
        (Col::ouid, "ouid"),
        (Col::capability, "capability"),
    ] {
        if let Some(n) = record.field(key).and_then(|v| v.decimal()) {
            r.set(col, n);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_sys::audit::Assembler;
    use std::time::{Duration, Instant};

    #[test]
    fn apparmor_denial_fields() {
        let text = b"audit(1700000004.000:30): apparmor=\"DENIED\" operation=\"open\" class=\"file\" profile=\"/usr/sbin/cupsd\" name=\"/etc/shadow\" pid=812 comm=\"cupsd\" requested_mask=\"r\" denied_mask=\"r\" fsuid=0 ouid=0";
        let mut a = Assembler::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let mut out = Vec::new();
        a.push(1400, text, t0, &mut out);
        // Outside a syscall context no EOE comes: delivered after the timeout.
        a.flush_expired(t0 + Duration::from_secs(1), &mut out);
        let rows = rows(&out[0], 4);
        assert_eq!(rows.len(), 1);
        let v = rows[0].clone().into_values();
        let cell = |c: Col| v[usize::from(c)].clone();
        assert_eq!(cell(Col::r#type), Value::from("AVC"));
        assert_eq!(cell(Col::apparmor), Value::from("DENIED"));
        assert_eq!(cell(Col::operation), Value::from("open"));
        assert_eq!(cell(Col::profile), Value::from("/usr/sbin/cupsd"));
        assert_eq!(cell(Col::name), Value::from("/etc/shadow"));
        assert_eq!(cell(Col::pid), Value::from(812));
        assert_eq!(cell(Col::comm), Value::from("cupsd"));
        assert_eq!(cell(Col::denied_mask), Value::from("r"));
        assert_eq!(cell(Col::fsuid), Value::from(0));
        assert_eq!(cell(Col::capability), Value::Null);
        assert_eq!(cell(Col::time), Value::from(1700000004));
    }

    #[test]
    fn selinux_avc_is_not_apparmor() {
        let mut a = Assembler::new(Duration::from_secs(1));
        let mut out = Vec::new();
        a.push(
            1107,
            b"audit(1.000:1): pid=1 uid=0 msg='avc:  denied  { start } for auid=0'",
            Instant::now(),
            &mut out,
        );
        assert!(rows(&out[0], 0).is_empty());
    }
}
