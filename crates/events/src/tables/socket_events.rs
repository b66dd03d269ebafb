//! `socket_events`: `connect`, `bind` and `accept` calls from the Linux audit subsystem,
//! fed by the audit publisher (`--audit_allow_sockets`).
//!
//! The SOCKADDR record holds the address the program passed (`connect`, `bind`) or the
//! kernel filled in (`accept`): for `connect` and `accept` it is the remote end, for
//! `bind` the local one. Only IPv4 and IPv6 are reported, and UNIX-domain sockets with
//! `--audit_allow_unix`; other families (netlink, packet) are left out. Failed calls are
//! kept with `--audit_allow_failed_socket_events` (a non-blocking `connect`'s
//! `EINPROGRESS` counts as a success, status `in_progress`); accepts with
//! `--audit_allow_accept_socket_events`, and those without an address with
//! `--audit_allow_null_accept_socket_events`. `fd` is the socket the call named (for
//! accept, the listening socket); the protocol is not in the audit records (0).

pub use oxquery_table::scan_events as generate;
use oxquery_table::table;

use crate::EventRow;
use oxquery_sys::audit::{AuditEvent, SockAddr, syscall_name};
use oxquery_table::Value;

table! {
    name: "socket_events",
    description: "Network connections and bindings from the Linux audit subsystem (with --disable_audit=false, --audit_allow_sockets and --audit_allow_config=true): one row per connect, bind or accept of an IPv4 or IPv6 socket (UNIX sockets with --audit_allow_unix).",
    attributes: [EVENT_BASED],
    columns: {
        action: Text [] "The socket action: connect, bind or accept",
        pid: BigInt [] "Process (or thread) ID",
        path: Text [] "Path of the executable making the call",
        fd: Text [] "The file descriptor of the socket the call named",
        auid: BigInt [] "Audit user ID of the process",
        family: Integer [] "The socket's address family (2 IPv4, 10 IPv6, 1 UNIX)",
        protocol: Integer [HIDDEN] "The network protocol: not in audit records, 0",
        local_address: Text [] "Local address (bind), or the UNIX socket path",
        remote_address: Text [] "Remote address (connect, accept)",
        local_port: Integer [] "Local port (bind)",
        remote_port: Integer [] "Remote port (connect, accept)",
        socket: Text [HIDDEN] "The local path of a UNIX domain socket",
        time: BigInt [ADDITIONAL] "Time of the event (unix seconds, from the audit record)",
        uptime: BigInt [] "Time of execution in system uptime",
        eid: Text [HIDDEN] "Event ID",
        success: Integer [HIDDEN] "1 when the call succeeded (or is in progress), else 0",
        status: Text [] "succeeded, failed, or in_progress (a non-blocking connect)",
    },
    examples: [
        "select action, pid, path, remote_address, remote_port from socket_events where action = 'connect'",
    ],
}

/// The publisher feeding this table.
pub const PUBLISHER: &str = crate::publishers::audit::NAME;

/// osquery's `--audit_allow_*` socket flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOptions {
    pub failed: bool,
    pub accept: bool,
    pub null_accept: bool,
    pub unix: bool,
}

const EINPROGRESS: i64 = libc::EINPROGRESS as i64;

/// The row of one audit event, or `None` when it is not a (wanted) socket event.
pub fn row(event: &AuditEvent, options: SocketOptions, uptime: i64) -> Option<EventRow> {
    let s = event.syscall.as_ref()?;
    let action = match syscall_name(s.syscall)? {
        "connect" => "connect",
        "bind" => "bind",
        "accept" | "accept4" if options.accept => "accept",
        _ => return None,
    };
    let exit = s.exit.unwrap_or(-1);
    let (status, success) = match (s.success, exit) {
        (Some(true), _) => ("succeeded", true),
        (_, e) if e == -EINPROGRESS => ("in_progress", true),
        _ => ("failed", false),
    };
    if !success && !options.failed {
        return None;
    }
    let mut r = EventRow::new(&SPEC);
    match &event.sockaddr {
        Some(SockAddr::Inet { address, port }) => {
            let (addr_col, port_col) = if action == "bind" {
                (Col::local_address, Col::local_port)
            } else {
                (Col::remote_address, Col::remote_port)
            };
            r.set(addr_col, address.to_string());
            r.set(port_col, *port);
            r.set(
                Col::family,
                event.sockaddr.as_ref().map_or(0, SockAddr::family),
            );
        }
        Some(SockAddr::Unix { path }) if options.unix => {
            r.set(Col::family, libc::AF_UNIX);
            r.set(Col::local_address, Value::from_bytes(path.clone()));
            r.set(Col::socket, Value::from_bytes(path.clone()));
        }
        None if action == "accept" && options.null_accept => r.set(Col::family, 0),
        _ => return None,
    }
    r.set(Col::action, action);
    r.set(Col::pid, s.pid);
    r.set(
        Col::path,
        Value::from_bytes(s.exe.clone().unwrap_or_default()),
    );
    r.set(Col::fd, s.args[0].to_string());
    r.set(Col::auid, s.auid);
    r.set(Col::protocol, 0);
    r.set(Col::time, event.time.secs as i64);
    r.set(Col::uptime, uptime);
    r.set(Col::success, success);
    r.set(Col::status, status);
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::assemble;

    /// A socket syscall event: `syscall` number, result, `saddr` hex.
    fn event(syscall: i64, success: &str, exit: i64, saddr: Option<&str>) -> AuditEvent {
        let mut records = vec![(
            1300,
            format!(
                "audit(1700000001.000:9): arch=c000003e syscall={syscall} success={success} exit={exit} a0=3 a1=7ffd a2=10 a3=0 items=0 ppid=1 pid=77 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 comm=\"curl\" exe=\"/usr/bin/curl\""
            ),
        )];
        if let Some(saddr) = saddr {
            records.push((1306, format!("audit(1700000001.000:9): saddr={saddr}")));
        }
        records.push((1320, "audit(1700000001.000:9): ".to_string()));
        assemble(&records)
    }

    fn cell(row: &EventRow, col: Col) -> Value {
        row.clone().into_values()[usize::from(col)].clone()
    }

    const DEFAULTS: SocketOptions = SocketOptions {
        failed: false,
        accept: true,
        null_accept: false,
        unix: false,
    };
    /// 127.0.0.1:8080.
    const V4: &str = "02001F907F0000010000000000000000";

    #[test]
    fn connect_and_bind_rows() {
        let connect = event(libc::SYS_connect, "yes", 0, Some(V4));
        let r = row(&connect, DEFAULTS, 5).expect("row");
        assert_eq!(cell(&r, Col::action), Value::from("connect"));
        assert_eq!(cell(&r, Col::remote_address), Value::from("127.0.0.1"));
        assert_eq!(cell(&r, Col::remote_port), Value::from(8080));
        assert_eq!(cell(&r, Col::local_address), Value::Null);
        assert_eq!(cell(&r, Col::family), Value::from(2));
        assert_eq!(cell(&r, Col::fd), Value::from("3"));
        assert_eq!(cell(&r, Col::pid), Value::from(77));
        assert_eq!(cell(&r, Col::path), Value::from("/usr/bin/curl"));
        assert_eq!(cell(&r, Col::status), Value::from("succeeded"));
        assert_eq!(cell(&r, Col::time), Value::from(1700000001));
        let bind = event(
            libc::SYS_bind,
            "yes",
            0,
            Some("0A0001BB000000000000000000000000000000000000000100000000"),
        );
        let r = row(&bind, DEFAULTS, 5).expect("row");
        assert_eq!(cell(&r, Col::local_address), Value::from("::1"));
        assert_eq!(cell(&r, Col::local_port), Value::from(443));
        assert_eq!(cell(&r, Col::family), Value::from(10));
    }

    #[test]
    fn failures_accepts_and_families_follow_the_flags() {
        let failed = event(libc::SYS_connect, "no", -111, Some(V4));
        assert!(row(&failed, DEFAULTS, 0).is_none());
        let all = SocketOptions {
            failed: true,
            accept: true,
            null_accept: true,
            unix: true,
        };
        let r = row(&failed, all, 0).unwrap();
        assert_eq!(cell(&r, Col::status), Value::from("failed"));
        assert_eq!(cell(&r, Col::success), Value::from(0));
        // A non-blocking connect in progress is kept by default.
        let pending = event(
            libc::SYS_connect,
            "no",
            -(libc::EINPROGRESS as i64),
            Some(V4),
        );
        let r = row(&pending, DEFAULTS, 0).unwrap();
        assert_eq!(cell(&r, Col::status), Value::from("in_progress"));
        // accept4 is reported as accept; without an address only when allowed.
        let accept = event(libc::SYS_accept4, "yes", 5, Some(V4));
        assert_eq!(
            cell(&row(&accept, DEFAULTS, 0).unwrap(), Col::action),
            Value::from("accept")
        );
        let no_accept = SocketOptions {
            accept: false,
            ..DEFAULTS
        };
        assert!(row(&accept, no_accept, 0).is_none());
        let null_accept = event(libc::SYS_accept, "yes", 5, None);
        assert!(row(&null_accept, DEFAULTS, 0).is_none());
        assert!(row(&null_accept, all, 0).is_some());
        // UNIX sockets only when allowed; netlink never.
        let unix = event(
            libc::SYS_connect,
            "yes",
            0,
            Some("01002F72756E2F782E736F636B00"),
        );
        assert!(row(&unix, DEFAULTS, 0).is_none());
        let r = row(&unix, all, 0).unwrap();
        assert_eq!(cell(&r, Col::socket), Value::from("/run/x.sock"));
        assert_eq!(cell(&r, Col::family), Value::from(1));
        let netlink = event(libc::SYS_bind, "yes", 0, Some("1000000000000000"));
        assert!(row(&netlink, all, 0).is_none());
        // Not a socket syscall.
        assert!(row(&event(libc::SYS_execve, "yes", 0, Some(V4)), all, 0).is_none());
    }
}
