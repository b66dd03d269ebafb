//! sock_diag against the text tables and `ss`, on sockets the tests open themselves: in
//! this process's namespace, and in a private namespace made with `unshare --net`.

use super::sock_diag::DiagSocket;
use super::*;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};

/// A prerequisite is missing: fatal under CI (which installs every tool), a notice
/// elsewhere (the shared rule of `oxquery-test-support`).
fn missing(what: &str) {
    let _: Option<()> = oxquery_test_support::missing(what);
}

/// What a scan says about the descriptors `fds` of process `pid`, in fd order.
fn held(scan: &SocketScan, pid: u32, fds: &[i32]) -> Vec<(u64, Socket, u64)> {
    let mut out = Vec::new();
    scan.for_each(|owner, s, ns| {
        if let Some(o) = owner
            && o.pid == pid
            && fds.contains(&(o.fd as i32))
        {
            out.push((o.fd, s.clone(), ns));
        }
    });
    out.sort_by_key(|x| x.0);
    out
}

fn own_namespace() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
}

/// A socket made with libc for the kinds std has no type for; `None` without the
/// privilege it needs.
fn raw_socket(domain: i32, kind: i32, protocol: i32) -> Option<OwnedFd> {
    // SAFETY: plain socket(2); the descriptor is owned by the returned OwnedFd.
    let fd = unsafe { libc::socket(domain, kind | libc::SOCK_CLOEXEC, protocol) };
    // SAFETY: fd is a fresh descriptor nobody else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

#[test]
fn diag_and_text_tables_agree_on_our_sockets() {
    use std::os::linux::net::SocketAddrExt;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let v6 = TcpListener::bind("[::1]:0").ok();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_connected = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp_connected.connect(udp.local_addr().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a b.sock");
    let unix = UnixListener::bind(&path).unwrap();
    let unix_client = UnixStream::connect(&path).unwrap();
    let (unix_server, _) = unix.accept().unwrap();
    let name = format!("oxquery-test-{}", std::process::id());
    let abstract_unix = UnixListener::bind_addr(
        &std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap(),
    )
    .unwrap();
    // Raw sockets need CAP_NET_RAW; this kernel may have no raw sock_diag, which is the
    // text fallback at work. A packet socket with protocol 0 receives nothing.
    let raw = raw_socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP);
    let packet = raw_socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0);

    let mut fds = vec![
        listener.as_raw_fd(),
        client.as_raw_fd(),
        server.as_raw_fd(),
        udp.as_raw_fd(),
        udp_connected.as_raw_fd(),
        unix.as_raw_fd(),
        unix_client.as_raw_fd(),
        unix_server.as_raw_fd(),
        abstract_unix.as_raw_fd(),
    ];
    fds.extend(v6.as_ref().map(AsRawFd::as_raw_fd));
    fds.extend(raw.as_ref().map(AsRawFd::as_raw_fd));
    fds.extend(packet.as_ref().map(AsRawFd::as_raw_fd));

    let me = std::process::id();
    let diag = held(&SocketScan::scan_from(&[me], false, Source::Diag), me, &fds);
    let text = held(&SocketScan::scan_from(&[me], false, Source::Text), me, &fds);
    assert_eq!(diag.len(), fds.len(), "every socket found: {diag:?}");
    assert_eq!(diag, text);

    let by_fd = |fd: i32| &diag.iter().find(|x| x.0 == fd as u64).unwrap().1;
    assert_eq!(by_fd(listener.as_raw_fd()).state(), "LISTEN");
    assert_eq!(by_fd(server.as_raw_fd()).state(), "ESTABLISHED");
    assert_eq!(&*by_fd(unix.as_raw_fd()).path, path.as_os_str().as_bytes());
    // The accepted connection carries the listener's name, as the text table shows.
    assert_eq!(
        &*by_fd(unix_server.as_raw_fd()).path,
        path.as_os_str().as_bytes()
    );
    assert_eq!(
        &*by_fd(abstract_unix.as_raw_fd()).path,
        format!("@{name}").as_bytes()
    );
    if let Some(raw) = &raw {
        let s = by_fd(raw.as_raw_fd());
        assert_eq!((s.family, s.protocol, s.local_port), (AF_INET, 255, 1));
    }
    if let Some(packet) = &packet {
        let s = by_fd(packet.as_raw_fd());
        assert_eq!((s.family, s.protocol), (AF_PACKET, 0));
    }
    // Both scans ran on this thread: its namespace is untouched.
    assert!(diag.iter().all(|x| x.2 == own_namespace()));
}

#[test]
fn sock_diag_dumps_what_it_is_asked_for() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let inode = std::fs::metadata(format!("/proc/self/fd/{}", listener.as_raw_fd()))
        .unwrap()
        .ino();
    let mut diag = DiagSocket::open().unwrap();
    let mut v4 = Vec::new();
    diag.inet(AF_INET, 6, &mut v4).unwrap();
    let s = v4.iter().find(|s| s.inode == inode).expect("our listener");
    assert_eq!(s.local_port, listener.local_addr().unwrap().port());
    assert!(v4.iter().all(|s| s.family == AF_INET && s.protocol == 6));
    // The same socket reused for another kind: IPv6 TCP holds no IPv4 socket.
    let mut v6 = Vec::new();
    diag.inet(AF_INET6, 6, &mut v6).unwrap();
    assert!(v6.iter().all(|s| s.family == AF_INET6 && s.inode != inode));
    // A protocol no sock_diag handler knows is an error, and leaves `out` as it was.
    let before = v4.len();
    assert!(diag.inet(AF_INET, 47, &mut v4).is_err());
    assert_eq!(v4.len(), before);
    // Every kind this kernel has a handler for is dumped, not left to the text fallback
    // (which would give the same rows and hide a malformed request).
    let dir = tempfile::tempdir().unwrap();
    let unix_listener = UnixListener::bind(dir.path().join("s")).unwrap();
    let unix_inode = std::fs::metadata(format!("/proc/self/fd/{}", unix_listener.as_raw_fd()))
        .unwrap()
        .ino();
    let mut unix = Vec::new();
    diag.unix(&mut unix).unwrap();
    assert!(unix.iter().all(|s| s.family == AF_UNIX));
    assert!(unix.iter().any(|s| s.inode == unix_inode));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut udp_sockets = Vec::new();
    diag.inet(AF_INET, 17, &mut udp_sockets).unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    assert!(udp_sockets.iter().any(|s| s.local_port == udp_port));
    let kernel_has = |option: &str| {
        let config = Command::new("sh")
            .args([
                "-c",
                "zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r)",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        config
            .lines()
            .any(|l| l == format!("{option}=y") || l == format!("{option}=m"))
    };
    if kernel_has("CONFIG_PACKET_DIAG")
        && let Some(packet) = raw_socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0)
    {
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", packet.as_raw_fd()))
            .unwrap()
            .ino();
        let mut packets = Vec::new();
        diag.packet(&mut packets).unwrap();
        assert!(
            packets
                .iter()
                .any(|s| s.inode == inode && s.family == AF_PACKET)
        );
    }
    // The one-pass TCP dump holds both families: exactly what the two others held (less
    // sockets opened or closed meanwhile by other tests, so only ours are compared).
    let v6_listener = TcpListener::bind("[::1]:0").ok();
    let v6_inode = v6_listener.as_ref().map(|l| {
        std::fs::metadata(format!("/proc/self/fd/{}", l.as_raw_fd()))
            .unwrap()
            .ino()
    });
    let (mut per_family, mut both) = (Vec::new(), Vec::new());
    diag.inet(AF_INET, 6, &mut per_family).unwrap();
    diag.inet(AF_INET6, 6, &mut per_family).unwrap();
    diag.tcp(&mut both).unwrap();
    for inode in std::iter::once(inode).chain(v6_inode) {
        let pick = |list: &[Socket]| list.iter().find(|s| s.inode == inode).cloned();
        assert!(pick(&both).is_some(), "socket {inode} in the one-pass dump");
        assert_eq!(pick(&both), pick(&per_family));
    }
    assert!(
        both.iter()
            .all(|s| s.protocol == 6 && s.tcp_state.is_some())
    );
}

#[test]
fn a_namespace_that_cannot_be_joined_is_an_error_in_its_place() {
    // A regular file is no namespace: setns refuses it, and the helper goes on to the
    // next one (this thread's own namespace, which it may always join).
    let not_a_namespace = tempfile::tempfile().unwrap();
    let own = File::open("/proc/thread-self/ns/net").unwrap();
    let before = own_namespace();
    let mut opened = DiagSocket::open_in(&[not_a_namespace.as_fd(), own.as_fd()]).unwrap();
    assert_eq!(opened.len(), 2);
    let mut own_socket = opened
        .pop()
        .unwrap()
        .expect("a socket in our own namespace");
    assert!(opened.pop().unwrap().is_err());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut tcp = Vec::new();
    own_socket.tcp(&mut tcp).unwrap();
    let port = listener.local_addr().unwrap().port();
    assert!(
        tcp.iter()
            .any(|s| s.local_port == port && s.state() == "LISTEN")
    );
    assert_eq!(own_namespace(), before);
}

/// A `python3` in a fresh network namespace (made by `unshare --net`, loopback up)
/// holding a TCP listener with one connection, a closed connection in TIME_WAIT, a UDP
/// socket and a unix listener at `path`. It exits when its stdin closes; the drop also
/// kills it, which ends the namespace.
struct NamespaceChild {
    child: Child,
    /// listener, client and UDP ports.
    ports: [u16; 3],
}

const CHILD: &str = r#"
import socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname()); s, _ = l.accept()
t = socket.create_connection(l.getsockname()); ts, _ = l.accept()
t.close(); ts.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
x = socket.socket(socket.AF_UNIX); x.bind(sys.argv[1]); x.listen()
print(l.getsockname()[1], c.getsockname()[1], u.getsockname()[1], flush=True)
sys.stdin.read()
"#;

impl NamespaceChild {
    fn start(path: &std::path::Path) -> Option<NamespaceChild> {
        for tool in ["unshare", "ip", "python3", "nsenter", "ss"] {
            oxquery_test_support::require_tool(tool)?;
        }
        let mut child = Command::new("unshare")
            .args([
                "--net",
                "--",
                "sh",
                "-c",
                r#"ip link set lo up && exec python3 -c "$0" "$1""#,
                CHILD,
            ])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ports: Vec<u16> = line
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let Ok(ports) = <[u16; 3]>::try_from(ports) else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            missing(&format!(
                "no socket-holding child in a new network namespace: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return None;
        };
        Some(NamespaceChild { child, ports })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn namespace(&self) -> u64 {
        std::fs::metadata(format!("/proc/{}/ns/net", self.pid()))
            .unwrap()
            .ino()
    }

    /// `ss <args>` run inside the child's namespace, without its header line.
    fn ss(&self, args: &str) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-n", "ss", "-H", args])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for NamespaceChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every socket of namespace `ns` in a scan, with its holder, sorted.
fn namespace_sockets(scan: &SocketScan, ns: u64) -> Vec<(Option<(u32, u64)>, Socket)> {
    let mut out = Vec::new();
    scan.for_each(|owner, s, n| {
        if n == ns {
            out.push((owner.map(|o| (o.pid, o.fd)), s.clone()));
        }
    });
    out.sort_by(|a, b| {
        (
            a.0,
            a.1.inode,
            a.1.family,
            a.1.protocol,
            a.1.local_port,
            a.1.remote_port,
        )
            .cmp(&(
                b.0,
                b.1.inode,
                b.1.family,
                b.1.protocol,
                b.1.local_port,
                b.1.remote_port,
            ))
    });
    out
}

/// ss's state names as osquery spells them.
fn ss_state(s: &str) -> &str {
    match s {
        "ESTAB" => "ESTABLISHED",
        "TIME-WAIT" => "TIME_WAIT",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        "FIN-WAIT-1" => "FIN_WAIT1",
        "FIN-WAIT-2" => "FIN_WAIT2",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "LAST-ACK" => "LAST_ACK",
        "UNCONN" => "",
        other => other,
    }
}

/// `addr:port` as ss prints it (`[v6]:port`, `*` for port 0).
fn ss_endpoint(field: &str) -> (String, u16) {
    let (addr, port) = field.rsplit_once(':').unwrap();
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    (addr.to_owned(), port.parse().unwrap_or(0))
}

/// `pid=N,fd=M` pairs of an ss `users:((...))` column.
fn ss_users(line: &str) -> Holders {
    line.split("pid=")
        .skip(1)
        .filter_map(|p| {
            let (pid, rest) = p.split_once(",fd=")?;
            let fd: String = rest.chars().take_while(char::is_ascii_digit).collect();
            Some((pid.parse().ok()?, fd.parse().ok()?))
        })
        .collect()
}

/// The (pid, fd) pairs holding a socket.
type Holders = BTreeSet<(u32, u64)>;
/// An IP socket as both sides describe it: state, local and remote endpoints, holders.
type Endpoint = (String, (String, u16), (String, u16), Holders);
/// A unix socket as both sides describe it: bound name, inode, holders.
type UnixEndpoint = (String, u64, Holders);

/// The IP sockets of protocol `protocol` in `sockets`, one entry per socket with
/// all its holders, as ss lists them.
fn ours_as_ss(sockets: &[(Option<(u32, u64)>, Socket)], protocol: i64) -> BTreeSet<Endpoint> {
    // Sockets without an inode (TIME_WAIT) differ in their ports.
    let mut by_socket: HashMap<(u64, u16, u16), Endpoint> = HashMap::new();
    for (owner, s) in sockets.iter().filter(|(_, s)| s.protocol == protocol) {
        let entry = by_socket
            .entry((s.inode, s.local_port, s.remote_port))
            .or_insert_with(|| {
                (
                    s.state().to_owned(),
                    (s.local.to_text(), s.local_port),
                    (s.remote.to_text(), s.remote_port),
                    Holders::new(),
                )
            });
        entry.3.extend(*owner);
    }
    by_socket.into_values().collect()
}

fn ss_ip(text: &str) -> BTreeSet<Endpoint> {
    text.lines()
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (
                ss_state(cols[0]).to_owned(),
                ss_endpoint(cols[3]),
                ss_endpoint(cols[4]),
                ss_users(line),
            )
        })
        .collect()
}

#[test]
fn a_namespace_of_another_process_agrees_with_text_tables_and_ss() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ns.sock");
    let Some(child) = NamespaceChild::start(&path) else {
        return;
    };
    let ns = child.namespace();
    assert_ne!(ns, own_namespace());
    let before = own_namespace();

    // The helper thread's socket sees the child's namespace, not ours.
    let file = File::open(format!("/proc/{}/ns/net", child.pid())).unwrap();
    let mut joined = DiagSocket::open_in(&[file.as_fd()]).unwrap();
    let mut sockets = Vec::new();
    let mut diag = joined
        .pop()
        .unwrap()
        .expect("a sock_diag socket inside the namespace");
    diag.inet(AF_INET, 6, &mut sockets).unwrap();
    assert!(
        sockets
            .iter()
            .any(|s| s.local_port == child.ports[0] && s.state() == "LISTEN")
    );
    assert!(
        sockets.iter().all(|s| s.local.to_text() == "127.0.0.1"),
        "{sockets:?}"
    );

    // A complete scan (as the tables run it) lists the namespace, TIME_WAIT included,
    // identically from sock_diag and from the text tables.
    let mut pids = Vec::new();
    proc::list_pids(&mut pids).unwrap();
    let scan = SocketScan::scan(&pids, true);
    let ours = namespace_sockets(&scan, ns);
    let text = namespace_sockets(&SocketScan::scan_from(&pids, true, Source::Text), ns);
    assert_eq!(ours, text);
    assert_eq!(
        own_namespace(),
        before,
        "the scanning thread stayed in its namespace"
    );
    // Scanning the child alone finds its sockets in that namespace too.
    let alone = namespace_sockets(&SocketScan::scan(&[child.pid()], false), ns);
    let held: Vec<_> = ours.iter().filter(|(o, _)| o.is_some()).cloned().collect();
    assert_eq!(alone, held);

    let pid = child.pid();
    let [listen_port, client_port, udp_port] = child.ports;
    let find = |protocol: i64, local_port: u16, remote_port: u16| {
        ours.iter()
            .find(|(_, s)| {
                s.protocol == protocol && s.local_port == local_port && s.remote_port == remote_port
            })
            .unwrap_or_else(|| panic!("{protocol} {local_port}->{remote_port} in {ours:?}"))
    };
    let (owner, listener) = find(6, listen_port, 0);
    assert_eq!((owner.unwrap().0, listener.state()), (pid, "LISTEN"));
    assert_eq!(find(6, client_port, listen_port).1.state(), "ESTABLISHED");
    assert_eq!(find(6, listen_port, client_port).1.state(), "ESTABLISHED");
    assert_eq!(find(17, udp_port, 0).0.unwrap().0, pid);
    assert!(
        ours.iter()
            .any(|(o, s)| o.is_none() && s.inode == 0 && s.state() == "TIME_WAIT"),
        "the closed connection: {ours:?}"
    );
    let unix = ours
        .iter()
        .find(|(_, s)| s.family == AF_UNIX)
        .expect("the unix listener");
    assert_eq!(&*unix.1.path, path.as_os_str().as_bytes());

    // ss, run inside the namespace, lists the same TCP and UDP sockets with the same
    // holders, and the same unix socket.
    assert_eq!(ours_as_ss(&ours, 6), ss_ip(&child.ss("-tanp")));
    assert_eq!(ours_as_ss(&ours, 17), ss_ip(&child.ss("-uanp")));
    let ss_unix: BTreeSet<UnixEndpoint> = child
        .ss("-xap")
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local = if cols[4] == "*" { "" } else { cols[4] };
            (local.to_owned(), cols[5].parse().unwrap(), ss_users(line))
        })
        .collect();
    let mut unix_ours: BTreeSet<UnixEndpoint> = BTreeSet::new();
    for (owner, s) in ours.iter().filter(|(_, s)| s.family == AF_UNIX) {
        unix_ours.insert((
            String::from_utf8_lossy(&s.path).into_owned(),
            s.inode,
            owner.iter().copied().collect(),
        ));
    }
    assert_eq!(unix_ours, ss_unix);
    drop(child);
}

#[test]
fn our_tcp_and_udp_sockets_agree_with_ss() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (server, _) = listener.accept().unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let fds = [
        listener.as_raw_fd(),
        client.as_raw_fd(),
        server.as_raw_fd(),
        udp.as_raw_fd(),
    ];
    let me = std::process::id();
    let scan = SocketScan::scan(&[me], false);
    let ours: Vec<(Option<(u32, u64)>, Socket)> = held(&scan, me, &fds)
        .into_iter()
        .map(|(fd, s, _)| (Some((me, fd)), s))
        .collect();
    assert_eq!(ours.len(), fds.len());
    for (args, protocol) in [("-Htanp", 6), ("-Huanp", 17)] {
        let out = match Command::new("ss").arg(args).output() {
            Ok(out) if out.status.success() => out,
            other => return missing(&format!("ss {args}: {other:?}")),
        };
        // Only the lines of our descriptors: other tests open sockets meanwhile.
        let theirs: BTreeSet<Endpoint> = ss_ip(&String::from_utf8_lossy(&out.stdout))
            .into_iter()
            .filter_map(|(state, local, remote, users)| {
                let users: BTreeSet<_> = users
                    .into_iter()
                    .filter(|&(pid, fd)| pid == me && fds.contains(&(fd as i32)))
                    .collect();
                (!users.is_empty()).then_some((state, local, remote, users))
            })
            .collect();
        assert_eq!(ours_as_ss(&ours, protocol), theirs, "ss {args}");
    }
}
