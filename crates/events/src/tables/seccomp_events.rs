//! `seccomp_events`: the decisions seccomp filters log (`SECCOMP`, 1326: a filter's
//! `SECCOMP_RET_LOG`, and kills, traps and errors when the kernel's
//! `seccomp/actions_logged` includes them), fed by the audit publisher
//! (`--audit_allow_seccomp_events`). One row per record, decoded as osquery does:
//! `arch` is the audit architecture's name (`X86_64`, `AARCH64`...), `syscall` the call's
//! name on x86_64 and its number elsewhere, `code` the filter's action (`LOG`,
//! `KILL_PROCESS`...), each `<number>(unknown)` when it has no name; `ip` is decimal.
//! Like osquery, an action carrying data (an `ERRNO` with its errno) is not named. Unlike
//! osquery, x86_64 calls added after `rseq` (334) are named too (`clone3`, not
//! `435(unknown)`).

pub use oxquery_table::scan_events as generate;
use oxquery_table::table;

use crate::EventRow;
use oxquery_sys::audit::{AuditEvent, Record, RecordClass, x86_64_syscall_name};
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
        arch: Text [] "Information about the CPU architecture (X86_64, I386, AARCH64..., else the audit code and (unknown))",
        syscall: Text [] "Type of the system call: its name on x86_64, else its number",
        compat: BigInt [] "1 when the syscall came through a compatibility (32-bit) entry, else 0",
        ip: Text [] "Instruction pointer value",
        code: Text [] "The seccomp action: KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, TRACE, LOG or ALLOW",
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

/// `AUDIT_ARCH_X86_64`, the one architecture whose calls are named.
const ARCH_X86_64: u64 = 0xc000_003e;

/// The names osquery gives the audit architectures (`AUDIT_ARCH_*` of `linux/audit.h`).
fn arch_name(code: u64) -> Option<&'static str> {
    const NAMES: [(u64, &str); 35] = [
        (ARCH_X86_64, "X86_64"),
        (0xc000_00b7, "AARCH64"),
        (0xc000_9026, "ALPHA"),
        (0x4000_0028, "ARM"),
        (0x0000_0028, "ARMEB"),
        (0x4000_004c, "CRIS"),
        (0x0000_5441, "FRV"),
        (0x4000_0003, "I386"),
        (0xc000_0032, "IA64"),
        (0x0000_0058, "M32R"),
        (0x0000_0004, "M68K"),
        (0x0000_00bd, "MICROBLAZE"),
        (0x0000_0008, "MIPS"),
        (0x4000_0008, "MIPSEL"),
        (0x8000_0008, "MIPS64"),
        (0xa000_0008, "MIPS64N32"),
        (0xc000_0008, "MIPSEL64"),
        (0xe000_0008, "MIPSEL64N32"),
        (0x0000_005c, "OPENRISC"),
        (0x0000_000f, "PARISC"),
        (0x8000_000f, "PARISC64"),
        (0x0000_0014, "PPC"),
        (0x8000_0015, "PPC64"),
        (0xc000_0015, "PPC64LE"),
        (0x0000_0016, "S390"),
        (0x8000_0016, "S390X"),
        (0x0000_002a, "SH"),
        (0x4000_002a, "SHEL"),
        (0x8000_002a, "SH64"),
        (0xc000_002a, "SHEL64"),
        (0x0000_0002, "SPARC"),
        (0x8000_002b, "SPARC64"),
        (0xc000_00bf, "TILEGX"),
        (0x4000_00bf, "TILEGX32"),
        (0x4000_00bc, "TILEPRO"),
    ];
    NAMES.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
}

/// The name of a filter's return value (`SECCOMP_RET_*` of `linux/seccomp.h`).
fn action_name(code: u64) -> Option<&'static str> {
    Some(match code {
        0x8000_0000 => "KILL_PROCESS",
        0 => "KILL_THREAD",
        0x0003_0000 => "TRAP",
        0x0005_0000 => "ERRNO",
        0x7ff0_0000 => "TRACE",
        0x7ffc_0000 => "LOG",
        0x7fff_0000 => "ALLOW",
        _ => return None,
    })
}

fn named(name: Option<&str>, number: u64) -> String {
    name.map_or_else(|| format!("{number}(unknown)"), str::to_owned)
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
    let arch = record.field("arch").and_then(|v| v.hex());
    if let Some(a) = arch {
        r.set(Col::arch, named(arch_name(a), a));
    }
    if let Some(n) = record
        .field("syscall")
        .and_then(|v| v.decimal())
        .and_then(|n| u64::try_from(n).ok())
    {
        let name = if arch == Some(ARCH_X86_64) {
            named(x86_64_syscall_name(n), n)
        } else {
            n.to_string()
        };
        r.set(Col::syscall, name);
    }
    if let Some(code) = record.field("code").and_then(|v| v.hex()) {
        r.set(Col::code, named(action_name(code), code));
    }
    if let Some(ip) = record.field("ip").and_then(|v| v.hex()) {
        r.set(Col::ip, ip.to_string());
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
        assert_eq!(cell(Col::arch), Value::from("X86_64"));
        assert_eq!(cell(Col::syscall), Value::from("getppid"));
        assert_eq!(cell(Col::code), Value::from("LOG"));
        assert_eq!(cell(Col::ip), Value::from("2132553022"));
        assert_eq!(cell(Col::sig), Value::from(0));
        assert_eq!(cell(Col::time), Value::from(1700000005));
    }

    fn decoded(arch: &str, syscall: u64, code: &str) -> (Value, Value, Value) {
        let text = format!(
            "audit(1700000005.000:41): auid=1 uid=0 gid=0 ses=2 pid=7 comm=\"x\" exe=\"/x\" sig=31 arch={arch} syscall={syscall} compat=0 ip=0x10 code={code}"
        );
        let mut a = Assembler::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let mut out = Vec::new();
        a.push(1326, text.as_bytes(), t0, &mut out);
        a.flush_expired(t0 + Duration::from_secs(1), &mut out);
        let v = rows(&out[0], 6).remove(0).into_values();
        let cell = |c: Col| v[usize::from(c)].clone();
        (cell(Col::arch), cell(Col::syscall), cell(Col::code))
    }

    /// The cases osquery's own tests pin down, and the unknown ones.
    #[test]
    fn names_as_osquery_gives_them() {
        let v = |s: &str| Value::from(s);
        assert_eq!(
            decoded("c000003e", 0, "0x7ffc0000"),
            (v("X86_64"), v("read"), v("LOG"))
        );
        assert_eq!(
            decoded("c000003e", 88, "0x80000000"),
            (v("X86_64"), v("symlink"), v("KILL_PROCESS"))
        );
        assert_eq!(
            decoded("c000003e", 1337, "0x0"),
            (v("X86_64"), v("1337(unknown)"), v("KILL_THREAD"))
        );
        // Other architectures' calls stay numbers.
        assert_eq!(
            decoded("80000008", 13, "0x50000"),
            (v("MIPS64"), v("13"), v("ERRNO"))
        );
        // An errno in the action's data, an unknown architecture.
        assert_eq!(
            decoded("12345", 1, "0x50001"),
            (v("74565(unknown)"), v("1"), v("327681(unknown)"))
        );
    }
}
