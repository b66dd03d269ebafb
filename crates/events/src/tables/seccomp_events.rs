//! `seccomp_events`: the decisions seccomp filters log (`SECCOMP`, 1326: a filter's
//! `SECCOMP_RET_LOG`, and kills, traps and errors when the kernel's
//! `seccomp/actions_logged` includes them), fed by the audit publisher
//! (`--audit_allow_seccomp_events`). One row per record. `syscall` is the syscall
//! number as text (osquery prints a name from its own table); `arch` is the name of the
//! audit architecture (`x86_64`, `i386`, `aarch64`), else its hex code.

pub use oxquery_table::scan_events as generate;
use oxquery_table::table;

use crate::EventRow;
use oxquery_sys::audit::{AuditEvent, Record, RecordClass};
use oxquery_table::Value;

table! {
    name: "seccomp_events",
    description: "Seccomp filter decisions the kernel logs (SECCOMP_RET_LOG, and kills/traps/errors per kernel.seccomp.actions_logged), from the Linux audit subsystem (with --disable_audit=false and --audit_allow_seccomp_events).",
    attributes: [EVENT_BASED],
    columns: {
        time: BigInt [ADDITIONAL] "Time of the event (unix seconds, from the audit record)",
        uptime: BigInt [] "Time of execution in system uptime",
        auid: UnsignedBigInt [] "Audit user ID (loginuid) of the user who started the analyzed process",
        uid: UnsignedBigInt [] "User ID of the user who started the analyzed process",
        gid: UnsignedBigInt [] "Group ID of the user who started the analyzed process",
        ses: UnsignedBigInt [] "Session ID of the session from which the analyzed process was invoked",
        pid: UnsignedBigInt [] "Process ID",
        comm: Text [] "Command-line name of the command that was used to invoke the analyzed process",
        exe: Text [] "The path to the executable that was used to invoke the analyzed process",
        sig: BigInt [] "Signal value sent to process by seccomp",
        arch: Text [] "Information about the CPU architecture (x86_64, i386, aarch64, else the audit code in hex)",
        syscall: Text [] "The syscall number the filter decided on",
        compat: BigInt [] "1 when the syscall came through a compatibility (32-bit) entry, else 0",
        ip: Text [] "Instruction pointer value",
        code: Text [] "The seccomp action (SECCOMP_RET_* code)",
    },
    examples: ["select pid, comm, syscall, code from seccomp_events"],
}

/// The publisher feeding this table.
pub const PUBLISHER: &str = crate::publishers::audit::NAME;

/// One row per SECCOMP record of the event.
pub fn rows(event: &AuditEvent, uptime: i64) -> Vec<EventRow> {
    event
        .records
        .iter()
        .filter(|r| r.class() == RecordClass::Seccomp)
        .map(|record| row(event, record, uptime))
        .collect()
}

fn arch_name(code: u64) -> String {
    match code {
        0xc000_003e => "x86_64".into(),
        0x4000_0003 => "i386".into(),
        0xc000_00b7 => "aarch64".into(),
        0x4000_0028 => "arm".into(),
        other => format!("{other:x}"),
    }
}

fn row(event: &AuditEvent, record: &Record, uptime: i64) -> EventRow {
    let mut r = EventRow::new(&SPEC);
    r.set(Col::time, event.time.secs as i64);
    r.set(Col::uptime, uptime);
    for (col, key) in [
        (Col::auid, "auid"),
        (Col::uid, "uid"),
        (Col::gid, "gid"),
        (Col::ses, "ses"),
        (Col::pid, "pid"),
        (Col::sig, "sig"),
        (Col::compat, "compat"),
    ] {
        if let Some(n) = record.field(key).and_then(|v| v.decimal()) {
            r.set(col, n);
        }
    }
    for (col, key) in [(Col::comm, "comm"), (Col::exe, "exe")] {
        if let Some(v) = record.field(key).and_then(|v| v.string()) {
            r.set(col, Value::from_bytes(v));
        }
    }
    if let Some(a) = record.field("arch").and_then(|v| v.hex()) {
        r.set(Col::arch, arch_name(a));
    }
    for (col, key) in [
        (Col::syscall, "syscall"),
        (Col::ip, "ip"),
        (Col::code, "code"),
    ] {
        if let Some(v) = record.field(key) {
            r.set(col, v.text());
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
    fn seccomp_record_fields() {
        let text = b"audit(1700000005.000:40): auid=4294967295 uid=0 gid=0 ses=4294967295 subj=unconfined pid=99 comm=\"sh\" exe=\"/usr/bin/dash\" sig=0 arch=c000003e syscall=110 compat=0 ip=0x7f1c2d3e code=0x7ffc0000";
        let mut a = Assembler::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let mut out = Vec::new();
        a.push(1326, text, t0, &mut out);
        a.flush_expired(t0 + Duration::from_secs(1), &mut out);
        let rows = rows(&out[0], 6);
        assert_eq!(rows.len(), 1);
        let v = rows[0].clone().into_values();
        let cell = |c: Col| v[usize::from(c)].clone();
        assert_eq!(cell(Col::pid), Value::from(99));
        assert_eq!(cell(Col::auid), Value::from(4294967295u32));
        assert_eq!(cell(Col::comm), Value::from("sh"));
        assert_eq!(cell(Col::exe), Value::from("/usr/bin/dash"));
        assert_eq!(cell(Col::arch), Value::from("x86_64"));
        assert_eq!(cell(Col::syscall), Value::from("110"));
        assert_eq!(cell(Col::code), Value::from("0x7ffc0000"));
        assert_eq!(cell(Col::ip), Value::from("0x7f1c2d3e"));
        assert_eq!(cell(Col::sig), Value::from(0));
        assert_eq!(cell(Col::time), Value::from(1700000005));
    }
}
