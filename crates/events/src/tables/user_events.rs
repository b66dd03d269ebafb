//! `user_events`: the messages user-space programs send to the audit subsystem (types
//! 1100-1199: PAM authentication and accounting, logins, sudo, `USER_CMD`...), fed by the
//! audit publisher (`--audit_allow_user_events`, on by default). `USER_AVC` (1107) goes
//! to selinux_events instead.
//!
//! The kernel prefixes each message with the sender's `pid`, `uid`, `auid` and `ses`; the
//! sender's own text is the `msg='...'` field (`message`), from which `exe` (`path`),
//! `addr` (`address`) and `terminal` are taken.

pub use oxquery_table::scan_events as generate;
use oxquery_table::table;

use crate::EventRow;
use oxquery_sys::audit::{AuditEvent, RecordClass};
use oxquery_table::Value;

table! {
    name: "user_events",
    description: "Audit messages from user-space programs (logins, PAM authentication and accounting, sudo) from the Linux audit subsystem (with --disable_audit=false).",
    attributes: [EVENT_BASED],
    columns: {
        uid: BigInt [] "User ID of the sending process",
        auid: BigInt [] "Audit user ID (the login user) of the sending process",
        pid: BigInt [] "Process (or thread) ID of the sender",
        message: Text [] "The message text (the record's msg field)",
        r#type: Integer [] "The audit record type (1100 USER_AUTH, 1101 USER_ACCT, 1112 USER_LOGIN, 1123 USER_CMD...)",
        path: Text [] "Executable path of the sender, as the message names it",
        address: Text [] "The remote address the message names (addr), or ?",
        terminal: Text [] "The terminal the message names",
        time: BigInt [ADDITIONAL] "Time of the event (unix seconds, from the audit record)",
        uptime: BigInt [] "Time of execution in system uptime",
        eid: Text [HIDDEN] "Event ID",
    },
    examples: [
        "select type, uid, auid, path, terminal, message from user_events where type = 1100",
    ],
}

/// The publisher feeding this table.
pub const PUBLISHER: &str = crate::publishers::audit::NAME;

/// The row of one audit event, or `None` when it is not a user message.
pub fn row(event: &AuditEvent, uptime: i64) -> Option<EventRow> {
    let record = event.record(RecordClass::UserMessage)?;
    let mut r = EventRow::new(&SPEC);
    let number = |key: &str| record.field(key).and_then(|v| v.decimal());
    let text = |key: &str| {
        record
            .field(key)
            .and_then(|v| v.string())
            .map(Value::from_bytes)
            .unwrap_or_else(|| Value::from(""))
    };
    r.set(Col::uid, number("uid"));
    r.set(Col::auid, number("auid"));
    r.set(Col::pid, number("pid"));
    let message = oxquery_sys::audit::record::field(&record.body, "msg")
        .map_or_else(Vec::new, |v| v.raw.to_vec());
    r.set(Col::message, Value::from_bytes(message));
    r.set(Col::r#type, record.kind);
    r.set(Col::path, text("exe"));
    // addr and terminal are written plainly (not hex-encoded) by libaudit.
    let plain = |key: &str| {
        record
            .field(key)
            .map_or_else(|| Value::from(""), |v| Value::from_bytes(v.raw.to_vec()))
    };
    r.set(Col::address, plain("addr"));
    r.set(Col::terminal, plain("terminal"));
    r.set(Col::time, event.time.secs as i64);
    r.set(Col::uptime, uptime);
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_sys::audit::Assembler;
    use std::time::{Duration, Instant};

    fn cell(row: &EventRow, col: Col) -> Value {
        row.clone().into_values()[usize::from(col)].clone()
    }

    #[test]
    fn pam_message_row() {
        let text = "audit(1700000002.100:12): pid=300 uid=0 auid=1000 ses=2 subj=unconfined msg='op=PAM:authentication grantors=pam_unix acct=\"alice\" exe=\"/usr/bin/su\" hostname=host addr=10.0.0.1 terminal=/dev/pts/1 res=success'";
        let mut a = Assembler::new(Duration::from_secs(1));
        let mut out = Vec::new();
        a.push(1100, text.as_bytes(), Instant::now(), &mut out);
        let r = row(&out[0], 7).expect("row");
        assert_eq!(cell(&r, Col::uid), Value::from(0));
        assert_eq!(cell(&r, Col::auid), Value::from(1000));
        assert_eq!(cell(&r, Col::pid), Value::from(300));
        assert_eq!(cell(&r, Col::r#type), Value::from(1100));
        assert_eq!(cell(&r, Col::path), Value::from("/usr/bin/su"));
        assert_eq!(cell(&r, Col::address), Value::from("10.0.0.1"));
        assert_eq!(cell(&r, Col::terminal), Value::from("/dev/pts/1"));
        assert_eq!(
            cell(&r, Col::message),
            Value::from(
                "op=PAM:authentication grantors=pam_unix acct=\"alice\" exe=\"/usr/bin/su\" hostname=host addr=10.0.0.1 terminal=/dev/pts/1 res=success"
            )
        );
        assert_eq!(cell(&r, Col::time), Value::from(1700000002));
    }

    #[test]
    fn other_records_make_no_row() {
        let mut a = Assembler::new(Duration::from_secs(1));
        let mut out = Vec::new();
        a.push(
            1107,
            b"audit(1.000:1): pid=1 uid=0 msg='avc: denied'",
            Instant::now(),
            &mut out,
        );
        a.push(
            1300,
            b"audit(1.000:2): arch=c000003e syscall=59 pid=1",
            Instant::now(),
            &mut out,
        );
        a.push(1320, b"audit(1.000:2): ", Instant::now(), &mut out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|e| row(e, 0).is_none()));
    }
}
