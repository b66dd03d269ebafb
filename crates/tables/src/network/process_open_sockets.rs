//! `process_open_sockets`: every socket of every network namespace a process lives in,
//! with the process and descriptor holding it.
//!
//! As in osquery, rows are every socket the kernel lists per namespace (through
//! sock_diag, or the `/proc/<pid>/net` tables, in `oxquery_sys::net`); a socket no
//! process holds (a `TIME_WAIT` connection, say) is listed with pid and fd -1 when the
//! query does not filter on pid. One row per descriptor: a socket shared by two processes (inherited
//! across fork) shows up for both, so `WHERE pid = X` returns exactly the rows of X the
//! unfiltered scan has. `WHERE pid = X` reads only that process's descriptors and its
//! namespace's tables; `pid = -1` among the values means "no filter", as in osquery.

use oxquery_sys::net::{Owner, SocketScan};
use oxquery_sys::proc;
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};

table! {
    name: "process_open_sockets",
    description: "Every socket in the network namespaces of running processes, with the process and descriptor holding it.",
    columns: {
        pid: Integer [ADDITIONAL] "ID of the process holding the socket; -1 for sockets no process holds",
        fd: BigInt [] "Descriptor number of the socket in that process; -1 if none",
        socket: BigInt [] "Inode number identifying the socket",
        family: Integer [] "Address family number: 2 IPv4, 10 IPv6, 1 unix",
        protocol: Integer [] "IP protocol number, e.g. 6 for TCP or 17 for UDP",
        local_address: Text [] "Address of this end; empty for unix sockets",
        remote_address: Text [] "Address of the peer; all zeros when unconnected, empty for unix sockets",
        local_port: Integer [] "Port of this end",
        remote_port: Integer [] "Port of the peer; 0 when unconnected",
        path: Text [] "Bound path of a unix socket; empty for other families",
        state: Text [] "TCP state name such as LISTEN or ESTABLISHED; empty for other protocols",
        net_namespace: Text [] "Network namespace holding the socket, identified by its ns/net inode",
    },
    examples: [
        "select * from process_open_sockets where pid = 1",
    ],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    // A -1 among the pids asks for every socket, held or not, as in osquery.
    let wanted = ctx.eq_integers(Col::pid).filter(|list| !list.contains(&-1));
    let complete = wanted.is_none();
    let pids = proc::pids_or_all(wanted).map_err(|e| TableError::io("/proc", e))?;
    let scan = SocketScan::scan(&pids, complete);
    scan.for_each(|owner, s, ns| {
        let mut row = rows.row();
        match owner {
            Some(Owner { pid, fd }) => {
                row.set(Col::pid, pid);
                row.set(Col::fd, fd);
            }
            None => {
                row.set(Col::pid, -1);
                row.set(Col::fd, -1);
            }
        }
        row.set(Col::socket, s.inode);
        row.set(Col::family, s.family);
        row.set(Col::protocol, s.protocol);
        // Like osquery, fields a family does not have are empty text, not NULL.
        row.set_with(Col::local_address, || s.local.to_text());
        row.set_with(Col::remote_address, || s.remote.to_text());
        row.set(Col::local_port, s.local_port);
        row.set(Col::remote_port, s.remote_port);
        row.set_with(Col::path, || String::from_utf8_lossy(&s.path).into_owned());
        row.set(Col::state, s.state());
        row.set_with(Col::net_namespace, || ns.to_string());
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Op, Value};
    use std::io::Write;
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;

    fn run(ctx: &QueryContext) -> Rows<'static> {
        Rows::collect(ctx, generate).unwrap()
    }

    fn ours(pid_filter: bool) -> Vec<Vec<Value>> {
        let host = Host::default();
        let me = i64::from(std::process::id());
        let mut ctx = QueryContext::everything(&SPEC, &host);
        if pid_filter {
            ctx = ctx.with_constraint(Col::pid, Op::Eq, me);
        }
        run(&ctx)
            .iter()
            .filter(|r| r[Col::pid as usize] == Value::Integer(me))
            .map(<[Value]>::to_vec)
            .collect()
    }

    fn find(rows: &[Vec<Value>], fd: i32) -> &[Value] {
        rows.iter()
            .find(|r| r[Col::fd as usize] == Value::Integer(i64::from(fd)))
            .unwrap_or_else(|| panic!("no row for fd {fd} in {rows:?}"))
    }

    fn inode(fd: i32) -> i64 {
        std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino() as i64
    }

    fn t(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
    fn i(n: impl Into<i64>) -> Value {
        Value::Integer(n.into())
    }

    #[test]
    fn tcp_listener_and_connection_of_our_process() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server, _) = listener.accept().unwrap();
        let client_port = client.local_addr().unwrap().port();
        let ns = std::fs::metadata("/proc/self/ns/net")
            .unwrap()
            .ino()
            .to_string();

        for filtered in [true, false] {
            let rows = ours(filtered);
            let l = find(&rows, listener.as_raw_fd());
            assert_eq!(l[Col::socket as usize], i(inode(listener.as_raw_fd())));
            assert_eq!(l[Col::family as usize], i(2));
            assert_eq!(l[Col::protocol as usize], i(6));
            assert_eq!(l[Col::local_address as usize], t("127.0.0.1"));
            assert_eq!(l[Col::local_port as usize], i(port));
            assert_eq!(l[Col::remote_address as usize], t("0.0.0.0"));
            assert_eq!(l[Col::remote_port as usize], i(0));
            assert_eq!(l[Col::state as usize], t("LISTEN"));
            assert_eq!(l[Col::path as usize], t(""));
            assert_eq!(l[Col::net_namespace as usize], t(&ns));

            let c = find(&rows, client.as_raw_fd());
            assert_eq!(c[Col::local_port as usize], i(client_port));
            assert_eq!(c[Col::remote_port as usize], i(port));
            assert_eq!(c[Col::remote_address as usize], t("127.0.0.1"));
            assert_eq!(c[Col::state as usize], t("ESTABLISHED"));

            let s = find(&rows, server.as_raw_fd());
            assert_eq!(s[Col::local_port as usize], i(port));
            assert_eq!(s[Col::remote_port as usize], i(client_port));
            assert_eq!(s[Col::state as usize], t("ESTABLISHED"));
        }
    }

    #[test]
    fn unix_udp_and_ipv6_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let sock_path = dir.path().join("test sock");
        let unix = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
        let mut unix_client = std::os::unix::net::UnixStream::connect(&sock_path).unwrap();
        unix_client.write_all(b"x").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let v6 = TcpListener::bind("[::1]:0").ok();

        let rows = ours(true);
        let u = find(&rows, unix.as_raw_fd());
        assert_eq!(u[Col::family as usize], i(1));
        assert_eq!(u[Col::protocol as usize], i(0));
        assert_eq!(u[Col::path as usize], t(sock_path.to_str().unwrap()));
        assert_eq!(u[Col::socket as usize], i(inode(unix.as_raw_fd())));
        assert_eq!(u[Col::state as usize], t(""));
        assert_eq!(u[Col::local_address as usize], t(""));
        let c = find(&rows, unix_client.as_raw_fd());
        assert_eq!(c[Col::family as usize], i(1));
        assert_eq!(c[Col::path as usize], t(""));

        let d = find(&rows, udp.as_raw_fd());
        assert_eq!(d[Col::protocol as usize], i(17));
        assert_eq!(d[Col::family as usize], i(2));
        assert_eq!(
            d[Col::local_port as usize],
            i(udp.local_addr().unwrap().port())
        );
        assert_eq!(d[Col::state as usize], t(""));

        if let Some(v6) = v6 {
            let r = find(&rows, v6.as_raw_fd());
            assert_eq!(r[Col::family as usize], i(10));
            assert_eq!(r[Col::local_address as usize], t("::1"));
            assert_eq!(
                r[Col::local_port as usize],
                i(v6.local_addr().unwrap().port())
            );
            assert_eq!(r[Col::state as usize], t("LISTEN"));
        }
    }

    #[test]
    fn pid_filter_returns_only_that_process() {
        let _listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = Host::default();
        let me = i64::from(std::process::id());
        let rows =
            run(&QueryContext::everything(&SPEC, &host).with_constraint(Col::pid, Op::Eq, me));
        assert!(!rows.is_empty());
        assert!(
            rows.iter()
                .all(|r| r[Col::pid as usize] == Value::Integer(me))
        );
        // A pid that does not exist has no sockets.
        let none = run(&QueryContext::everything(&SPEC, &host).with_constraint(
            Col::pid,
            Op::Eq,
            0x7fff_fff0_i64,
        ));
        assert!(none.is_empty());
    }

    #[test]
    fn projection_leaves_unused_cells_null() {
        let _listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).using([Col::pid, Col::socket]);
        let rows = run(&ctx);
        assert!(!rows.is_empty());
        for row in rows.iter() {
            assert!(!row[Col::socket as usize].is_null());
            for c in [
                Col::local_address,
                Col::path,
                Col::state,
                Col::net_namespace,
            ] {
                assert!(row[c as usize].is_null());
            }
        }
    }

    #[test]
    fn full_scan_lists_each_unheld_socket_once() {
        let host = Host::default();
        let rows = run(&QueryContext::everything(&SPEC, &host));
        let mut held = std::collections::HashSet::new();
        let mut unheld = std::collections::HashSet::new();
        for r in rows.iter() {
            let inode = r[Col::socket as usize].as_i64().unwrap();
            if r[Col::pid as usize] == i(-1) {
                assert_eq!(r[Col::fd as usize], i(-1));
                if inode == 0 {
                    // TIME_WAIT and pending connections have no inode.
                    continue;
                }
                // A namespace reachable through two processes is still one namespace.
                assert!(
                    unheld.insert(inode),
                    "socket {inode} listed twice as unheld"
                );
            } else {
                held.insert(inode);
            }
        }
        assert!(held.is_disjoint(&unheld));
    }

    #[test]
    fn time_wait_connections_are_listed_without_owner() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut client_ports = Vec::new();
        for _ in 0..3 {
            let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let (mut server, _) = listener.accept().unwrap();
            client_ports.push(client.local_addr().unwrap().port());
            // The side that closes first keeps the connection in TIME_WAIT. The server
            // closes only once it has read the client's FIN: closing before it arrives
            // (a busy machine) is a simultaneous close, and may leave the server's side
            // in TIME_WAIT instead.
            drop(client);
            let mut byte = [0u8; 1];
            assert_eq!(std::io::Read::read(&mut server, &mut byte).unwrap(), 0);
            drop(server);
        }
        let host = Host::default();
        let scan = || run(&QueryContext::everything(&SPEC, &host));
        fn connection<'a>(rows: &'a Rows, local: u16, remote: u16) -> Option<&'a [Value]> {
            rows.iter().find(|r| {
                r[Col::local_port as usize] == i(local) && r[Col::remote_port as usize] == i(remote)
            })
        }
        // The FIN/ACK exchange finishes on loopback shortly after the close: wait for
        // every connection to reach TIME_WAIT (the last scan is checked either way).
        let settled = |rows: &Rows| {
            client_ports.iter().all(|&p| {
                connection(rows, p, port).is_some_and(|r| r[Col::state as usize] == t("TIME_WAIT"))
            })
        };
        let rows = oxquery_test_support::poll(std::time::Duration::from_secs(10), || {
            Some(scan()).filter(|rows| settled(rows))
        })
        .unwrap_or_else(scan);
        for &p in &client_ports {
            let r = connection(&rows, p, port).unwrap_or_else(|| {
                let ss = std::process::Command::new("ss")
                    .args(["-tan"])
                    .output()
                    .unwrap();
                let ss = String::from_utf8_lossy(&ss.stdout);
                let near: Vec<_> = rows
                    .iter()
                    .filter(|r| {
                        r[Col::remote_port as usize] == i(port)
                            || r[Col::local_port as usize] == i(port)
                    })
                    .map(|r| r.to_vec())
                    .collect();
                panic!(
                    "no row for the closed connection from {p}; ours: {near:?}\nss: {}",
                    ss.lines()
                        .filter(|l| l.contains(&port.to_string()))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            });
            assert_eq!(r[Col::state as usize], t("TIME_WAIT"));
            assert_eq!(r[Col::pid as usize], i(-1));
            assert_eq!(r[Col::socket as usize], i(0));
        }
    }
}
