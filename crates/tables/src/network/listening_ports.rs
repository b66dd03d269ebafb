//! `listening_ports`: sockets waiting for peers, from the same scan as
//! `process_open_sockets`.
//!
//! osquery 5's rule, kept here: an IPv4/IPv6 socket qualifies when it has no remote port
//! (TCP `LISTEN`, and bound but unconnected UDP, raw and ICMP sockets); a unix socket
//! qualifies when it has a path (listening sockets, and the connections accepted on
//! them, which carry the listener's path); packet sockets always qualify. Unix rows have
//! port 0, socket 0 and no address; IP rows have no path. Sockets no process holds have
//! pid and fd -1.

use oxquery_sys::net::{AF_INET, AF_INET6, AF_UNIX, SocketScan};
use oxquery_sys::proc;
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};

table! {
    name: "listening_ports",
    description: "Sockets waiting for peers (TCP listeners, unconnected UDP and raw sockets, named unix sockets, packet sockets) and who holds them.",
    attributes: [CACHEABLE],
    columns: {
        pid: Integer [] "ID of the process holding the socket; -1 if no process holds it",
        port: Integer [] "Local port number; 0 for unix sockets",
        protocol: Integer [] "IP protocol number, e.g. 6 for TCP or 17 for UDP",
        family: Integer [] "Address family number: 2 IPv4, 10 IPv6, 1 unix, 17 packet",
        address: Text [] "Local address the socket is bound to; NULL for unix sockets",
        fd: BigInt [] "Descriptor number in the holding process; -1 if none",
        socket: BigInt [] "Inode number of the socket; 0 for unix sockets",
        path: Text [] "File system path of a unix socket; NULL for IP sockets",
        net_namespace: Text [] "Network namespace holding the socket, identified by its ns/net inode",
    },
    examples: [
        "select * from listening_ports where port = 22",
    ],
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let pids = proc::pids_or_all(None).map_err(|e| TableError::io("/proc", e))?;
    let scan = SocketScan::scan(&pids, true);
    scan.for_each(|owner, s, ns| {
        let unix = s.family == AF_UNIX;
        if unix && s.path.is_empty() {
            return;
        }
        if (s.family == AF_INET || s.family == AF_INET6) && s.remote_port != 0 {
            return;
        }
        let mut row = rows.row();
        row.set(Col::pid, owner.map_or(-1, |o| i64::from(o.pid)));
        row.set(Col::fd, owner.map_or(-1, |o| o.fd as i64));
        if unix {
            row.set(Col::port, 0);
            row.set(Col::socket, 0);
            row.set_with(Col::path, || String::from_utf8_lossy(&s.path).into_owned());
        } else {
            row.set(Col::port, s.local_port);
            row.set(Col::socket, s.inode);
            row.set_with(Col::address, || s.local.to_text());
        }
        row.set(Col::protocol, s.protocol);
        row.set(Col::family, s.family);
        row.set_with(Col::net_namespace, || ns.to_string());
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};
    use std::collections::HashSet;
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::path::Path;
    use std::process::Command;

    fn scan() -> Rows<'static> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        Rows::collect(&ctx, generate).unwrap()
    }

    fn int(v: &Value) -> i64 {
        v.as_i64()
            .unwrap_or_else(|| panic!("{v:?} is not an integer"))
    }

    #[test]
    fn our_tcp_udp_and_unix_listeners_appear() {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let tcp_port = tcp.local_addr().unwrap().port();
        let client = TcpStream::connect(("127.0.0.1", tcp_port)).unwrap();
        let client_port = client.local_addr().unwrap().port();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_port = udp.local_addr().unwrap().port();
        let connected_udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        connected_udp.connect(("127.0.0.1", udp_port)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let unix_path = dir.path().join("listen.sock");
        let unix = std::os::unix::net::UnixListener::bind(&unix_path).unwrap();

        let rows = scan();
        let me = i64::from(std::process::id());
        let mine: Vec<&[Value]> = rows
            .iter()
            .filter(|r| int(&r[Col::pid as usize]) == me)
            .collect();
        let by_fd = |fd: i32| {
            mine.iter()
                .copied()
                .find(|r| int(&r[Col::fd as usize]) == i64::from(fd))
        };

        let t = by_fd(tcp.as_raw_fd()).expect("tcp listener");
        assert_eq!(int(&t[Col::port as usize]), i64::from(tcp_port));
        assert_eq!(int(&t[Col::protocol as usize]), 6);
        assert_eq!(int(&t[Col::family as usize]), 2);
        assert_eq!(t[Col::address as usize], Value::Text("127.0.0.1".into()));
        assert!(t[Col::path as usize].is_null());
        assert!(int(&t[Col::socket as usize]) > 0);

        let u = by_fd(udp.as_raw_fd()).expect("udp socket");
        assert_eq!(int(&u[Col::port as usize]), i64::from(udp_port));
        assert_eq!(int(&u[Col::protocol as usize]), 17);

        // Connected sockets have a remote port: not listening.
        assert!(
            by_fd(client.as_raw_fd()).is_none(),
            "client port {client_port}"
        );
        assert!(by_fd(connected_udp.as_raw_fd()).is_none());

        let x = by_fd(unix.as_raw_fd()).expect("unix listener");
        assert_eq!(int(&x[Col::family as usize]), 1);
        assert_eq!(
            x[Col::path as usize],
            Value::Text(unix_path.to_str().unwrap().into())
        );
        assert_eq!(int(&x[Col::port as usize]), 0);
        assert_eq!(int(&x[Col::socket as usize]), 0);
        assert!(x[Col::address as usize].is_null());
    }

    /// `(address, port, pids)` of listening TCP sockets as `ss -Htlnp` prints them.
    fn ss_listeners(ss: &Path) -> HashSet<(String, u16, Vec<i64>)> {
        let out = Command::new(ss).arg("-Htlnp").output().expect("run ss");
        assert!(out.status.success(), "ss -Htlnp: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut set = HashSet::new();
        for line in text.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = cols.get(3) else { continue };
            let Some((addr, port)) = local.rsplit_once(':') else {
                continue;
            };
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            // `127.0.0.53%lo`: the scope is not part of the address.
            let addr = addr.split('%').next().unwrap_or(addr).to_owned();
            let pids = line
                .split("pid=")
                .skip(1)
                .filter_map(|p| p.split(',').next()?.parse().ok())
                .collect();
            let port = port
                .parse()
                .unwrap_or_else(|e| panic!("ss port {port:?}: {e}"));
            set.insert((addr, port, pids));
        }
        set
    }

    #[test]
    fn agrees_with_ss_on_listening_tcp() {
        let _tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let Some(ss) = oxquery_test_support::require_tool("ss") else {
            return;
        };
        let before = ss_listeners(&ss);
        let rows = scan();
        let after = ss_listeners(&ss);
        let ours: Vec<(String, i64, i64)> = rows
            .iter()
            .filter(|r| int(&r[Col::protocol as usize]) == 6)
            .map(|r| {
                (
                    r[Col::address as usize].to_string(),
                    int(&r[Col::port as usize]),
                    int(&r[Col::pid as usize]),
                )
            })
            .collect();
        // Only listeners present before and after our scan must be in it (other tests
        // open and close sockets concurrently).
        let stable: Vec<_> = before.intersection(&after).collect();
        assert!(!stable.is_empty());
        for (addr, port, pids) in stable {
            let matching: Vec<_> = ours
                .iter()
                .filter(|(a, p, _)| *p == i64::from(*port) && (addr == "*" || a == addr))
                .collect();
            assert!(!matching.is_empty(), "ss lists {addr}:{port}, we do not");
            for pid in pids {
                assert!(
                    matching.iter().any(|(_, _, p)| p == pid),
                    "ss says pid {pid} holds {addr}:{port}; we say {matching:?}"
                );
            }
        }
    }
}
