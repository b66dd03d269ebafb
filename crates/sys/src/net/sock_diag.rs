//! The kernel's socket diagnostics interface (`NETLINK_SOCK_DIAG`), the one `ss` uses.
//!
//! One dump request per kind of socket (`inet_diag` for TCP, and for UDP/UDP-Lite/raw
//! over IPv4 and IPv6, `unix_diag`, `packet_diag`) returns every socket of the network namespace
//! the netlink socket was created in, as fixed binary records: the kernel formats no
//! text and we parse none, which is what makes it faster than `/proc/<pid>/net/*` once
//! a namespace holds thousands of sockets.
//!
//! Each record becomes the same [`Socket`] the text parsers of [`super`] produce, field
//! for field, because both come from the same kernel fields (addresses as stored, ports
//! in host order, the TCP state number, the socket inode, a unix socket's bound name).
//! A kind the kernel cannot dump (raw sockets without `CONFIG_INET_RAW_DIAG`, say)
//! answers with an error, and the caller reads that kind's text table instead.
//!
//! The records are a handful of fixed C structs (`linux/inet_diag.h`, `unix_diag.h`,
//! `packet_diag.h`), read here with `from_ne_bytes` at their documented offsets. The
//! `netlink-packet-sock-diag` crate models inet and unix records but not packet ones or
//! raw sockets' protocol byte, and decodes every record into an attribute vector; at
//! ten thousand sockets the plain offsets are both simpler and cheaper.

use super::{AF_INET, AF_INET6, AF_PACKET, AF_UNIX, Addr, Socket};
use netlink_sys::{Socket as NetlinkSocket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The original inet_diag request for TCP, which dumps IPv4 and IPv6 sockets together.
const TCPDIAG_GETSOCK: u16 = 18;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;

/// TCP states 0..=12 (through `NEW_SYN_RECV`): everything `/proc/net/tcp` lists. State
/// 13 (`BOUND_INACTIVE`, Linux 6.5) would add bound sockets that never listened or
/// connected, which the text table does not have.
const INET_STATES: u32 = (1 << 13) - 1;
/// Every unix socket state.
const UNIX_STATES: u32 = !0;
/// `UDIAG_SHOW_NAME`: ask for the bound address of each unix socket.
const UDIAG_SHOW_NAME: u32 = 0x1;
/// The `UNIX_DIAG_NAME` attribute.
const UNIX_DIAG_NAME: u16 = 0;

/// Size of `struct inet_diag_msg`, `unix_diag_msg` and `packet_diag_msg`.
const INET_DIAG_MSG_LEN: usize = 72;
const UNIX_DIAG_MSG_LEN: usize = 16;
const PACKET_DIAG_MSG_LEN: usize = 16;

/// The kernel sizes each part of a dump to the reader's buffer, up to 32 KiB.
const RECV_BUF: usize = 32 * 1024;

/// A `NETLINK_SOCK_DIAG` socket, bound to the network namespace it was created in.
pub struct DiagSocket {
    socket: NetlinkSocket,
    seq: u32,
    buf: Vec<u8>,
}

impl DiagSocket {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<DiagSocket> {
        let socket = NetlinkSocket::new(NETLINK_SOCK_DIAG)?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(DiagSocket {
            socket,
            seq: 0,
            buf: Vec::with_capacity(RECV_BUF),
        })
    }

    /// One socket in each of `namespaces` (open `/proc/<pid>/ns/net` files), in order.
    ///
    /// A netlink socket belongs to the namespace of the thread that creates it, so a
    /// short-lived helper thread joins each namespace in turn (`setns`, which needs
    /// `CAP_SYS_ADMIN`) and creates one socket there. That thread runs nothing else and
    /// ends here, so no other code ever runs in a namespace it did not start in. The
    /// error of a namespace that cannot be joined is in its place in the result.
    pub fn open_in(namespaces: &[BorrowedFd<'_>]) -> io::Result<Vec<io::Result<DiagSocket>>> {
        if namespaces.is_empty() {
            return Ok(Vec::new());
        }
        std::thread::scope(|scope| {
            let helper = std::thread::Builder::new()
                .name("sock-diag-netns".into())
                .spawn_scoped(scope, || {
                    namespaces
                        .iter()
                        .map(|ns| {
                            // SAFETY: ns is an open descriptor borrowed for the whole call;
                            // setns changes only this helper thread's namespace.
                            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                                return Err(io::Error::last_os_error());
                            }
                            DiagSocket::open()
                        })
                        .collect()
                })?;
            helper
                .join()
                .map_err(|_| io::Error::other("sock_diag namespace helper panicked"))
        })
    }

    /// Every TCP socket of the namespace, IPv4 and IPv6, appended to `out`. On error
    /// `out` is left as it was.
    ///
    /// The kernel walks its whole established-connection hash for each TCP dump (about
    /// a millisecond on a large host even when it is nearly empty), and the per-family
    /// request walks it once per family; this older request, still served by every
    /// kernel, walks it once for both.
    pub fn tcp(&mut self, out: &mut Vec<Socket>) -> io::Result<()> {
        // struct inet_diag_req: family (unused: both are dumped), source and destination
        // prefix lengths, ext, a zeroed inet_diag_sockid, states, dbs.
        let mut req = [0u8; 60];
        req[52..56].copy_from_slice(&INET_STATES.to_ne_bytes());
        let start = out.len();
        let res = self.dump(TCPDIAG_GETSOCK, &req, |msg| {
            let family = msg.first().map_or(0, |f| i64::from(*f));
            if let Some(s) = inet_socket(msg, family, 6, true) {
                out.push(s);
            }
        });
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    /// Every `family` socket of IP protocol `protocol` (6 TCP, 17 UDP, 136 UDP-Lite,
    /// 255 raw) in the namespace, appended to `out`. On error `out` is left as it was.
    pub fn inet(&mut self, family: i64, protocol: i64, out: &mut Vec<Socket>) -> io::Result<()> {
        // struct inet_diag_req_v2: family, protocol, ext, raw protocol (pad), states,
        // then a zeroed inet_diag_sockid (no filter).
        let mut req = [0u8; 56];
        req[0] = family as u8;
        req[1] = protocol as u8;
        req[4..8].copy_from_slice(&INET_STATES.to_ne_bytes());
        let tcp = protocol == 6;
        let start = out.len();
        let res = self.dump(SOCK_DIAG_BY_FAMILY, &req, |msg| {
            if let Some(s) = inet_socket(msg, family, protocol, tcp) {
                out.push(s);
            }
        });
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    /// Every unix socket of the namespace, with its bound name, appended to `out`. On
    /// error `out` is left as it was.
    pub fn unix(&mut self, out: &mut Vec<Socket>) -> io::Result<()> {
        // struct unix_diag_req: family, protocol, pad, states, ino, show, cookie.
        let mut req = [0u8; 24];
        req[0] = libc::AF_UNIX as u8;
        req[4..8].copy_from_slice(&UNIX_STATES.to_ne_bytes());
        req[12..16].copy_from_slice(&UDIAG_SHOW_NAME.to_ne_bytes());
        let start = out.len();
        let res = self.dump(SOCK_DIAG_BY_FAMILY, &req, |msg| {
            if let Some(s) = unix_socket(msg) {
                out.push(s);
            }
        });
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    /// Every packet socket of the namespace, appended to `out`. On error `out` is left
    /// as it was.
    pub fn packet(&mut self, out: &mut Vec<Socket>) -> io::Result<()> {
        // struct packet_diag_req: family, protocol, pad, ino, show, cookie[2].
        let mut req = [0u8; 20];
        req[0] = libc::AF_PACKET as u8;
        let start = out.len();
        let res = self.dump(SOCK_DIAG_BY_FAMILY, &req, |msg| {
            if let Some(s) = packet_socket(msg) {
                out.push(s);
            }
        });
        if res.is_err() {
            out.truncate(start);
        }
        res
    }

    /// Sends one dump request of type `kind` with payload `req` and hands the payload of
    /// every answer to `f`, until the kernel says the dump is done.
    fn dump(&mut self, kind: u16, req: &[u8], mut f: impl FnMut(&[u8])) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut packet = Vec::with_capacity(NLMSG_HDRLEN + req.len());
        packet.extend_from_slice(&((NLMSG_HDRLEN + req.len()) as u32).to_ne_bytes());
        packet.extend_from_slice(&kind.to_ne_bytes());
        packet.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        packet.extend_from_slice(&seq.to_ne_bytes());
        packet.extend_from_slice(&0u32.to_ne_bytes());
        packet.extend_from_slice(req);
        self.socket.send(&packet, 0)?;
        loop {
            self.buf.clear();
            let size = self.socket.recv(&mut self.buf, 0)?;
            if size > self.buf.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "sock_diag: a message larger than the receive buffer",
                ));
            }
            for msg in messages(&self.buf) {
                let (msg_kind, msg_seq, payload) = msg?;
                if msg_seq != seq {
                    // Left over from an earlier request: not part of this answer.
                    continue;
                }
                match msg_kind {
                    NLMSG_DONE => return done_status(payload),
                    NLMSG_ERROR => return Err(error_status(payload)),
                    // Records come back under the request's own type.
                    k if k == kind => f(payload),
                    _ => {}
                }
            }
        }
    }
}

/// The netlink messages of one datagram as (type, sequence number, payload).
fn messages(buf: &[u8]) -> impl Iterator<Item = io::Result<(u16, u32, &[u8])>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32_at(rest, 0) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            rest = &[];
            return Some(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "sock_diag: truncated netlink message",
            )));
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let seq = u32_at(rest, 8);
        let payload = &rest[NLMSG_HDRLEN..len];
        // Messages are 4-byte aligned.
        rest = rest.get((len + 3) & !3..).unwrap_or(&[]);
        Some(Ok((kind, seq, payload)))
    })
}

/// `NLMSG_DONE` carries an `int`: 0, or a negative errno when the dump failed midway.
fn done_status(payload: &[u8]) -> io::Result<()> {
    match payload.get(..4) {
        Some(b) if i32::from_ne_bytes([b[0], b[1], b[2], b[3]]) < 0 => {
            Err(io::Error::from_raw_os_error(-i32::from_ne_bytes([
                b[0], b[1], b[2], b[3],
            ])))
        }
        _ => Ok(()),
    }
}

/// `NLMSG_ERROR` carries a negative errno (`ENOENT` for a kind the kernel cannot dump).
fn error_status(payload: &[u8]) -> io::Error {
    match payload.get(..4) {
        Some(b) => {
            let code = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
            if code < 0 {
                io::Error::from_raw_os_error(-code)
            } else {
                io::Error::other("sock_diag: unexpected acknowledgement")
            }
        }
        None => io::Error::new(io::ErrorKind::InvalidData, "sock_diag: short error message"),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decodes a `struct inet_diag_msg`: family, state, timer, retrans, then the socket id
/// (source and destination ports and addresses in network order), expires, queues,
/// uid and inode.
fn inet_socket(msg: &[u8], family: i64, protocol: i64, tcp: bool) -> Option<Socket> {
    if msg.len() < INET_DIAG_MSG_LEN
        || i64::from(msg[0]) != family
        || !(family == AF_INET || family == AF_INET6)
    {
        return None;
    }
    let addr = |at: usize| match family {
        AF_INET => Addr::V4([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]),
        AF_INET6 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&msg[at..at + 16]);
            Addr::V6(b)
        }
        _ => Addr::None,
    };
    Some(Socket {
        inode: u64::from(u32_at(msg, 68)),
        family,
        protocol,
        local: addr(8),
        local_port: u16::from_be_bytes([msg[4], msg[5]]),
        remote: addr(24),
        remote_port: u16::from_be_bytes([msg[6], msg[7]]),
        tcp_state: tcp.then_some(msg[1]),
        path: Box::default(),
    })
}

/// Decodes a `struct unix_diag_msg` (family, type, state, pad, inode, cookie) and its
/// `UNIX_DIAG_NAME` attribute.
fn unix_socket(msg: &[u8]) -> Option<Socket> {
    if msg.len() < UNIX_DIAG_MSG_LEN || i64::from(msg[0]) != AF_UNIX {
        return None;
    }
    let mut path: Box<[u8]> = Box::default();
    let mut attrs = &msg[UNIX_DIAG_MSG_LEN..];
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            break;
        }
        if kind == UNIX_DIAG_NAME {
            path = unix_path_text(&attrs[4..len]);
        }
        attrs = attrs.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Some(Socket {
        inode: u64::from(u32_at(msg, 4)),
        family: AF_UNIX,
        // `/proc/net/unix` prints 0 in its protocol column for every socket.
        protocol: 0,
        local: Addr::None,
        local_port: 0,
        remote: Addr::None,
        remote_port: 0,
        tcp_state: None,
        path,
    })
}

/// A unix socket's bound name (the `sun_path` bytes the kernel keeps) as `/proc/net/unix`
/// prints it: a path without its terminating NUL, an abstract name as `@` and the rest,
/// and every NUL inside as `@`.
fn unix_path_text(name: &[u8]) -> Box<[u8]> {
    let text = match name.first() {
        None => return Box::default(),
        Some(0) => {
            let mut t = Vec::with_capacity(name.len());
            t.push(b'@');
            t.extend_from_slice(&name[1..]);
            t
        }
        Some(_) => name[..name.len() - 1].to_vec(),
    };
    text.into_iter()
        .map(|b| if b == 0 { b'@' } else { b })
        .collect()
}

/// Decodes a `struct packet_diag_msg`: family, type, protocol number (host order),
/// inode, cookie.
fn packet_socket(msg: &[u8]) -> Option<Socket> {
    if msg.len() < PACKET_DIAG_MSG_LEN || i64::from(msg[0]) != AF_PACKET {
        return None;
    }
    Some(Socket {
        inode: u64::from(u32_at(msg, 4)),
        family: AF_PACKET,
        protocol: i64::from(u16::from_ne_bytes([msg[2], msg[3]])),
        local: Addr::None,
        local_port: 0,
        remote: Addr::None,
        remote_port: 0,
        tcp_state: None,
        path: Box::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_names_print_as_the_text_table_does() {
        assert_eq!(&*unix_path_text(b"/run/a b.sock\0"), b"/run/a b.sock");
        assert_eq!(&*unix_path_text(b"\0abstract"), b"@abstract");
        assert_eq!(&*unix_path_text(b"\0a\0b"), b"@a@b");
        assert_eq!(&*unix_path_text(b""), b"");
    }

    fn inet_msg(family: u8, state: u8, sport: u16, dport: u16, src: &[u8], dst: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; INET_DIAG_MSG_LEN];
        m[0] = family;
        m[1] = state;
        m[4..6].copy_from_slice(&sport.to_be_bytes());
        m[6..8].copy_from_slice(&dport.to_be_bytes());
        m[8..8 + src.len()].copy_from_slice(src);
        m[24..24 + dst.len()].copy_from_slice(dst);
        m[68..72].copy_from_slice(&4242u32.to_ne_bytes());
        m
    }

    #[test]
    fn inet_records_decode_like_the_text_table() {
        let m = inet_msg(2, 10, 631, 0, &[127, 0, 0, 1], &[0; 4]);
        let s = inet_socket(&m, AF_INET, 6, true).unwrap();
        assert_eq!(s.local.to_text(), "127.0.0.1");
        assert_eq!(s.remote.to_text(), "0.0.0.0");
        assert_eq!((s.local_port, s.remote_port), (631, 0));
        assert_eq!((s.inode, s.state()), (4242, "LISTEN"));

        let mut v6 = [0u8; 16];
        v6[15] = 1;
        let m = inet_msg(10, 7, 53, 0, &v6, &[0; 16]);
        let s = inet_socket(&m, AF_INET6, 17, false).unwrap();
        assert_eq!(s.local.to_text(), "::1");
        assert_eq!(s.state(), "");
        // A record of the other family or a short record is not misread.
        assert!(inet_socket(&m, AF_INET, 17, false).is_none());
        assert!(inet_socket(&m[..40], AF_INET6, 17, false).is_none());
    }

    #[test]
    fn unix_records_carry_their_name_attribute() {
        let mut m = vec![0u8; UNIX_DIAG_MSG_LEN];
        m[0] = 1;
        m[4..8].copy_from_slice(&77u32.to_ne_bytes());
        // An attribute of another kind first (UNIX_DIAG_PEER, 4 bytes), then the name.
        m.extend_from_slice(&8u16.to_ne_bytes());
        m.extend_from_slice(&2u16.to_ne_bytes());
        m.extend_from_slice(&5u32.to_ne_bytes());
        let name = b"/tmp/x\0";
        m.extend_from_slice(&((4 + name.len()) as u16).to_ne_bytes());
        m.extend_from_slice(&UNIX_DIAG_NAME.to_ne_bytes());
        m.extend_from_slice(name);
        let s = unix_socket(&m).unwrap();
        assert_eq!((s.inode, &*s.path), (77, &b"/tmp/x"[..]));
        // A truncated attribute is ignored, not read past.
        let s = unix_socket(&m[..m.len() - 3]).unwrap();
        assert!(s.path.is_empty());
    }

    #[test]
    fn netlink_messages_split_and_reject_bad_lengths() {
        let mut buf = Vec::new();
        for (kind, payload) in [(20u16, &b"abcde"[..]), (3, &0i32.to_ne_bytes()[..])] {
            buf.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
            buf.extend_from_slice(&kind.to_ne_bytes());
            buf.extend_from_slice(&[0, 0]);
            buf.extend_from_slice(&9u32.to_ne_bytes());
            buf.extend_from_slice(&0u32.to_ne_bytes());
            buf.extend_from_slice(payload);
            buf.resize((buf.len() + 3) & !3, 0);
        }
        let got: Vec<_> = messages(&buf).map(Result::unwrap).collect();
        assert_eq!(got, vec![(20, 9, &b"abcde"[..]), (3, 9, &[0u8; 4][..])]);
        buf[0] = 200;
        assert!(messages(&buf).next().unwrap().is_err());
        assert_eq!(
            error_status(&(-libc::ENOENT).to_ne_bytes()).raw_os_error(),
            Some(libc::ENOENT)
        );
    }
}
