//! Sockets of every process: each network namespace's sockets joined with the
//! `socket:[inode]` links of `/proc/<pid>/fd`.
//!
//! A namespace's sockets come from the kernel's sock_diag netlink interface
//! ([`sock_diag`], what `ss` uses), with the text tables
//! (`/proc/<pid>/net/{tcp,udp,raw,...,unix,packet}`) as the fallback for any kind of
//! socket the kernel cannot dump, for namespaces this process may not join, and for ICMP
//! "ping" sockets, which have no sock_diag handler. Both give the same [`Socket`] values.
//!
//! Every socket of a namespace is listed at once, so each namespace is read once (through
//! the first process seen in it), never once per process. Socket inodes are unique
//! host-wide, so the join is a single inode map across namespaces (a process may hold a
//! socket created in another namespace).

pub mod sock_diag;

use crate::fs::{FileReader, parse_u64};
use crate::proc::{self, ProcPath};
use sock_diag::DiagSocket;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

pub const AF_UNIX: i64 = libc::AF_UNIX as i64;
pub const AF_INET: i64 = libc::AF_INET as i64;
pub const AF_INET6: i64 = libc::AF_INET6 as i64;
pub const AF_PACKET: i64 = libc::AF_PACKET as i64;

// The libc crate does not bind inet_ntop(3); it is part of every Linux libc.
unsafe extern "C" {
    fn inet_ntop(
        af: libc::c_int,
        src: *const libc::c_void,
        dst: *mut libc::c_char,
        size: libc::socklen_t,
    ) -> *const libc::c_char;
}

/// An endpoint address as the kernel table gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Addr {
    /// Not an IP socket (unix, packet) or an undecodable field.
    None,
    V4([u8; 4]),
    V6([u8; 16]),
}

impl Addr {
    /// Text as `inet_ntop(3)` writes it (`127.0.0.1`, `::1`, `::ffff:10.0.0.1`); empty for
    /// [`Addr::None`]. glibc's formatter is used so the text is byte-for-byte what
    /// osquery shows.
    pub fn to_text(&self) -> String {
        let mut buf = [0 as libc::c_char; 64];
        let (af, src): (libc::c_int, *const libc::c_void) = match self {
            Addr::None => return String::new(),
            Addr::V4(b) => (libc::AF_INET, b.as_ptr().cast()),
            Addr::V6(b) => (libc::AF_INET6, b.as_ptr().cast()),
        };
        // SAFETY: src points at 4 or 16 bytes matching af; buf holds INET6_ADDRSTRLEN.
        let out = unsafe { inet_ntop(af, src, buf.as_mut_ptr(), buf.len() as u32) };
        if out.is_null() {
            return String::new();
        }
        // SAFETY: inet_ntop wrote a NUL-terminated string into buf.
        unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }
}

/// One socket of a namespace table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub inode: u64,
    /// `AF_*` family: 1 unix, 2 inet, 10 inet6, 17 packet.
    pub family: i64,
    /// IP protocol of the table the socket came from (6 tcp, 17 udp, 136 udplite,
    /// 255 raw, 1 icmp), the unix table's protocol field (0), or a packet socket's
    /// ethertype.
    pub protocol: i64,
    pub local: Addr,
    pub local_port: u16,
    pub remote: Addr,
    pub remote_port: u16,
    /// The kernel's TCP state number (`st`), for TCP sockets only.
    pub tcp_state: Option<u8>,
    /// Bound path of a unix socket (`@name` for abstract ones); empty otherwise.
    pub path: Box<[u8]>,
}

impl Socket {
    /// The state text osquery shows: the TCP state name, empty for other protocols.
    pub fn state(&self) -> &'static str {
        self.tcp_state.map_or("", tcp_state_name)
    }
}

/// osquery's names for the kernel's TCP states (`include/net/tcp_states.h`); numbers
/// outside 1..=11 (such as `NEW_SYN_RECV`) are `UNKNOWN`.
pub fn tcp_state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSED",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "UNKNOWN",
    }
}

/// The IP tables of a namespace: (file name, family, protocol). ICMP "ping" sockets of
/// both families are reported with protocol 1, as osquery does.
const INET_TABLES: [(&str, i64, i64); 10] = [
    ("tcp", AF_INET, 6),
    ("tcp6", AF_INET6, 6),
    ("udp", AF_INET, 17),
    ("udp6", AF_INET6, 17),
    ("udplite", AF_INET, 136),
    ("udplite6", AF_INET6, 136),
    ("raw", AF_INET, 255),
    ("raw6", AF_INET6, 255),
    ("icmp", AF_INET, 1),
    ("icmp6", AF_INET6, 1),
];

fn fields(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    line.split(|b| *b == b' ' || *b == b'\t')
        .filter(|f| !f.is_empty())
}

fn hex_u32(h: &[u8]) -> Option<u32> {
    if h.len() != 8 {
        return None;
    }
    let mut n: u32 = 0;
    for &c in h {
        n = (n << 4) | (c as char).to_digit(16)?;
    }
    Some(n)
}

fn hex_u16(h: &[u8]) -> Option<u16> {
    if h.len() != 4 {
        return None;
    }
    let mut n: u16 = 0;
    for &c in h {
        n = (n << 4) | (c as char).to_digit(16)? as u16;
    }
    Some(n)
}

/// Decodes `ADDR:PORT` of an IP table. The kernel prints each 32-bit word of the
/// address as a native-endian integer, so the native byte order recovers the bytes.
fn endpoint(field: &[u8], family: i64) -> Option<(Addr, u16)> {
    let colon = memchr::memchr(b':', field)?;
    let (addr, port) = (&field[..colon], &field[colon + 1..]);
    let port = hex_u16(port)?;
    let addr = match (family, addr.len()) {
        (AF_INET, 8) => Addr::V4(hex_u32(addr)?.to_ne_bytes()),
        (AF_INET6, 32) => {
            let mut b = [0u8; 16];
            for (i, word) in addr.chunks_exact(8).enumerate() {
                b[i * 4..i * 4 + 4].copy_from_slice(&hex_u32(word)?.to_ne_bytes());
            }
            Addr::V6(b)
        }
        _ => return None,
    };
    Some((addr, port))
}

/// Parses a `tcp`/`udp`/`raw`/`icmp` table (v4 or v6). Lines that do not parse are
/// skipped; a table without its `sl` header yields nothing.
pub fn parse_inet(text: &[u8], family: i64, protocol: i64, out: &mut Vec<Socket>) {
    let mut lines = text.split(|b| *b == b'\n');
    match lines.next() {
        Some(h) if h.trim_ascii_start().starts_with(b"sl") => {}
        _ => return,
    }
    for line in lines {
        let mut f = fields(line);
        let parsed = (|| {
            let _sl = f.next()?;
            let (local, local_port) = endpoint(f.next()?, family)?;
            let (remote, remote_port) = endpoint(f.next()?, family)?;
            let st = f.next()?;
            // tx:rx, tr:when, retrnsmt, uid, timeout
            let inode = f.nth(5)?;
            if !inode.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let tcp_state = if protocol == 6 {
                Some(u8::from_str_radix(std::str::from_utf8(st).ok()?, 16).unwrap_or(0))
            } else {
                None
            };
            Some(Socket {
                inode: parse_u64(inode)?,
                family,
                protocol,
                local,
                local_port,
                remote,
                remote_port,
                tcp_state,
                path: Box::default(),
            })
        })();
        if let Some(s) = parsed {
            out.push(s);
        }
    }
}

/// Parses the `unix` table: `Num RefCount Protocol Flags Type St Inode [Path]`.
pub fn parse_unix(text: &[u8], out: &mut Vec<Socket>) {
    let mut lines = text.split(|b| *b == b'\n');
    match lines.next() {
        Some(h) if h.starts_with(b"Num") => {}
        _ => return,
    }
    for line in lines {
        let parsed = (|| {
            let mut rest = line;
            let mut field = || {
                let t = rest.trim_ascii_start();
                let end = t.iter().position(|b| *b == b' ').unwrap_or(t.len());
                let (f, r) = t.split_at(end);
                rest = r;
                (!f.is_empty()).then_some(f)
            };
            let _num = field()?;
            let _refs = field()?;
            let protocol = field()?;
            let _flags = field()?;
            let _type = field()?;
            let _st = field()?;
            let inode = field()?;
            if !inode.iter().all(u8::is_ascii_digit) {
                return None;
            }
            // The path is the rest of the line: it may contain spaces.
            let path = rest.strip_prefix(b" ").unwrap_or(rest);
            Some(Socket {
                inode: parse_u64(inode)?,
                family: AF_UNIX,
                protocol: i64::from(
                    u32::from_str_radix(std::str::from_utf8(protocol).ok()?, 16).ok()?,
                ),
                local: Addr::None,
                local_port: 0,
                remote: Addr::None,
                remote_port: 0,
                tcp_state: None,
                path: path.into(),
            })
        })();
        if let Some(s) = parsed {
            out.push(s);
        }
    }
}

/// Parses the `packet` table: `sk RefCnt Type Proto Iface R Rmem User Inode`; the
/// protocol is the ethertype (`Proto`, hex).
pub fn parse_packet(text: &[u8], out: &mut Vec<Socket>) {
    let mut lines = text.split(|b| *b == b'\n');
    match lines.next() {
        Some(h) if h.starts_with(b"sk") => {}
        _ => return,
    }
    for line in lines {
        let mut f = fields(line);
        let parsed = (|| {
            let proto = hex_u16(f.nth(3)?)?;
            let inode = f.nth(4)?;
            if !inode.iter().all(u8::is_ascii_digit) {
                return None;
            }
            Some(Socket {
                inode: parse_u64(inode)?,
                family: AF_PACKET,
                protocol: i64::from(proto),
                local: Addr::None,
                local_port: 0,
                remote: Addr::None,
                remote_port: 0,
                tcp_state: None,
                path: Box::default(),
            })
        })();
        if let Some(s) = parsed {
            out.push(s);
        }
    }
}

/// Reads every socket table of the namespace `path`'s process lives in. Returns whether
/// any table could be read.
pub fn read_tables(path: &ProcPath, reader: &mut FileReader, out: &mut Vec<Socket>) -> bool {
    read_namespace(None, Some(path), reader, out)
}

/// Reads every socket of a namespace: each kind through `diag` (a sock_diag socket in
/// that namespace) when there is one and the kernel can dump that kind, otherwise from
/// the text table of `text`, a process in that namespace. Returns whether any kind could
/// be read.
fn read_namespace(
    mut diag: Option<&mut DiagSocket>,
    text: Option<&ProcPath>,
    reader: &mut FileReader,
    out: &mut Vec<Socket>,
) -> bool {
    // Both TCP families come in one dump.
    let tcp_dumped = diag
        .as_deref_mut()
        .is_some_and(|d| dumped(d.tcp(out), "tcp"));
    let mut any = tcp_dumped;
    for (name, family, protocol) in INET_TABLES {
        if protocol == 6 && tcp_dumped {
            continue;
        }
        // ICMP "ping" sockets have no sock_diag handler.
        if protocol != 1
            && let Some(d) = diag.as_deref_mut()
            && dumped(d.inet(family, protocol, out), name)
        {
            any = true;
            continue;
        }
        if let Some(text) = read_text(text, reader, name) {
            any = true;
            parse_inet(text, family, protocol, out);
        }
    }
    if let Some(d) = diag.as_deref_mut()
        && dumped(d.unix(out), "unix")
    {
        any = true;
    } else if let Some(text) = read_text(text, reader, "unix") {
        any = true;
        parse_unix(text, out);
    }
    if let Some(d) = diag
        && dumped(d.packet(out), "packet")
    {
        any = true;
    } else if let Some(text) = read_text(text, reader, "packet") {
        any = true;
        parse_packet(text, out);
    }
    any
}

/// The text table `net/<name>` of the process `path`, if there is one.
fn read_text<'r>(
    path: Option<&ProcPath>,
    reader: &'r mut FileReader,
    name: &str,
) -> Option<&'r [u8]> {
    path?.read_paged(reader, &format!("net/{name}")).ok()
}

/// Whether a sock_diag dump worked; a failure is logged and the text table read instead.
fn dumped(result: io::Result<()>, what: &str) -> bool {
    match result {
        Ok(()) => true,
        Err(e) => {
            log::debug!("sock_diag cannot list {what} sockets ({e}); reading the text table");
            false
        }
    }
}

/// Where a scan reads a namespace's sockets from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// sock_diag dumps, each kind falling back to its text table (what tables use).
    Diag,
    /// The text tables only (to compare the two in tests and benchmarks).
    Text,
}

/// A network namespace's sockets.
#[derive(Debug, Default)]
pub struct Namespace {
    /// Inode of the namespace (`/proc/<pid>/ns/net`), 0 when it could not be read.
    pub inode: u64,
    pub sockets: Vec<Socket>,
}

/// A socket descriptor a process holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub fd: u64,
}

/// The result of one scan: every namespace read and which process holds which socket.
#[derive(Debug, Default)]
pub struct SocketScan {
    pub namespaces: Vec<Namespace>,
    /// Descriptors that name a socket found in a namespace table:
    /// (owner, namespace index, socket index).
    pub owned: Vec<(Owner, usize, usize)>,
    /// Whether the scan covered every process (then sockets nobody holds are reported
    /// too, without an owner).
    pub complete: bool,
    /// Where each socket inode is listed: (namespace index, socket index).
    index: HashMap<u64, (usize, usize)>,
}

/// A namespace found while walking the processes, read once the walk is over.
struct Found {
    inode: u64,
    /// The processes seen in it: any one still in it gives its text tables.
    pids: Vec<u32>,
    /// Whether it is the scanning thread's own namespace (dumped without a helper, and
    /// its text tables read through the thread itself, which cannot go away).
    own: bool,
    /// The open `/proc/<pid>/ns/net` of another namespace, to dump it from inside.
    file: Option<File>,
}

impl Found {
    /// A `/proc/<id>/` whose text tables are this namespace's: the scanning thread for
    /// its own namespace, otherwise the first process seen that is still in it (each is
    /// checked, as it may have exited and its pid been reused since the walk).
    fn text_path(&self) -> Option<ProcPath> {
        if self.own {
            // SAFETY: gettid has no preconditions. /proc/<tid>/ lists that thread's view.
            return Some(ProcPath::new(unsafe { libc::gettid() } as u32));
        }
        self.pids
            .iter()
            .map(|&pid| ProcPath::new(pid))
            .find(|p| p.stat("ns/net").is_ok_and(|st| st.st_ino == self.inode))
    }
}

/// Opens `/proc/<pid>/ns/net` and checks it is still the namespace `inode` (the process
/// may have exited and its pid been reused since the link was read).
fn open_namespace(path: &ProcPath, inode: u64) -> Option<File> {
    let mut name = path.prefix().to_vec();
    name.extend_from_slice(b"ns/net");
    let file = File::open(std::ffi::OsStr::from_bytes(&name)).ok()?;
    (file.metadata().ok()?.ino() == inode).then_some(file)
}

impl SocketScan {
    /// Scans the processes `pids`. A `complete` scan (every process) also reports the
    /// sockets no process holds.
    pub fn scan(pids: &[u32], complete: bool) -> SocketScan {
        SocketScan::scan_from(pids, complete, Source::Diag)
    }

    /// [`SocketScan::scan`] reading namespaces from `source`.
    pub fn scan_from(pids: &[u32], complete: bool, source: Source) -> SocketScan {
        let mut reader = FileReader::new();
        let mut scan = SocketScan {
            complete,
            ..SocketScan::default()
        };
        let own = proc::parse_bracket_inode(
            reader
                .read_link_parts(&[b"/proc/thread-self/ns/net"])
                .unwrap_or_default(),
            b"net",
        );
        let mut found: Vec<Found> = Vec::new();
        let mut found_at: HashMap<u64, usize> = HashMap::new();
        // Processes whose namespace link cannot be read (another user namespace,
        // hardening): settled after the others.
        let mut unknown: Vec<u32> = Vec::new();
        let mut held: Vec<(Owner, u64)> = Vec::new();
        for &pid in pids {
            let path = ProcPath::new(pid);
            let before = held.len();
            // A process that exits or hides its descriptors simply holds nothing.
            let _ = proc::for_each_socket_fd(&path, |fd, inode| {
                held.push((Owner { pid, fd }, inode));
            });
            // Every process's namespace is looked at (not only those holding sockets) so
            // sockets nobody holds, such as TIME_WAIT connections, are found too.
            if before == held.len() && !scan.complete {
                continue;
            }
            let Some(ns) = proc::net_namespace(&path, &mut reader) else {
                unknown.push(pid);
                continue;
            };
            if let Some(&at) = found_at.get(&ns) {
                found[at].pids.push(pid);
                continue;
            }
            let own = Some(ns) == own;
            // Opened now, while the process is known to be in it: the open file holds
            // the namespace itself, whatever the process does next.
            let file = (source == Source::Diag && !own)
                .then(|| open_namespace(&path, ns))
                .flatten();
            found_at.insert(ns, found.len());
            found.push(Found {
                inode: ns,
                pids: vec![pid],
                own,
                file,
            });
        }
        scan.read_found(&found, source);
        if !unknown.is_empty() {
            scan.read_unknown(&found, unknown);
        }
        scan.link(held);
        scan
    }

    /// Reads the namespaces the walk found: the own one through a sock_diag socket of
    /// this thread, the others through sockets a helper thread opens inside them, and
    /// whatever cannot be dumped from the text tables.
    fn read_found(&mut self, found: &[Found], source: Source) {
        let mut own = None;
        if source == Source::Diag && found.iter().any(|f| f.own) {
            own = DiagSocket::open()
                .inspect_err(|e| log::debug!("no sock_diag socket ({e}); reading text tables"))
                .ok();
        }
        let files: Vec<_> = found
            .iter()
            .filter_map(|f| f.file.as_ref().map(AsFd::as_fd))
            .collect();
        let mut joined = DiagSocket::open_in(&files)
            .unwrap_or_else(|e| {
                log::debug!("no sock_diag helper thread ({e}); reading text tables");
                Vec::new()
            })
            .into_iter();
        let mut reader = FileReader::new();
        for f in found {
            let mut foreign = None;
            if f.file.is_some() {
                foreign = joined.next().and_then(|r| {
                    r.inspect_err(|e| {
                        log::debug!("cannot join network namespace {} ({e})", f.inode)
                    })
                    .ok()
                });
            }
            let diag = if f.own {
                own.as_mut()
            } else {
                foreign.as_mut()
            };
            let mut sockets = Vec::new();
            if read_namespace(diag, f.text_path().as_ref(), &mut reader, &mut sockets) {
                self.namespaces.push(Namespace {
                    inode: f.inode,
                    sockets,
                });
            }
        }
    }

    /// Reads, from their text tables and under namespace 0, the namespaces of processes
    /// whose namespace link is unreadable, skipping those already read.
    fn read_unknown(&mut self, found: &[Found], unknown: Vec<u32>) {
        // Each namespace has its own proc entry for its tcp table, so the inode of
        // /proc/<pid>/net/tcp tells namespaces apart without the (denied) ns link.
        let mut tables_seen: Vec<u64> = found
            .iter()
            .filter_map(|f| f.text_path()?.stat("net/tcp").ok())
            .map(|st| st.st_ino)
            .collect();
        let mut blind_read = false;
        let mut reader = FileReader::new();
        for pid in unknown {
            let path = ProcPath::new(pid);
            match path.stat("net/tcp") {
                Ok(st) if tables_seen.contains(&st.st_ino) => continue,
                Ok(st) => tables_seen.push(st.st_ino),
                // Cannot tell: read once, the inode dedup in `link` drops repeats.
                Err(_) if blind_read => continue,
                Err(_) => blind_read = true,
            }
            let mut sockets = Vec::new();
            if read_tables(&path, &mut reader, &mut sockets) {
                self.namespaces.push(Namespace { inode: 0, sockets });
            }
        }
    }

    /// Joins held descriptors with the namespace tables.
    fn link(&mut self, held: Vec<(Owner, u64)>) {
        self.index
            .reserve(self.namespaces.iter().map(|ns| ns.sockets.len()).sum());
        // A process whose ns link is unreadable (another user namespace, hardening) was
        // read under namespace 0, which may well be a namespace also read under its
        // real inode. Socket inodes are unique host-wide, so a socket listed twice is
        // one socket: keep the copy with a known namespace.
        let mut order: Vec<usize> = (0..self.namespaces.len()).collect();
        order.sort_by_key(|&n| self.namespaces[n].inode == 0);
        for n in order {
            for (s, socket) in self.namespaces[n].sockets.iter().enumerate() {
                if socket.inode != 0 {
                    self.index.entry(socket.inode).or_insert((n, s));
                }
            }
        }
        self.owned = held
            .into_iter()
            .filter_map(|(owner, inode)| self.index.get(&inode).map(|&(n, s)| (owner, n, s)))
            .collect();
    }

    /// Calls `f(owner, socket, namespace inode)` for each held descriptor and, for a
    /// complete scan, once for each socket no process holds (owner `None`).
    pub fn for_each(&self, mut f: impl FnMut(Option<Owner>, &Socket, u64)) {
        let mut seen: Vec<Vec<bool>> = self
            .namespaces
            .iter()
            .map(|ns| vec![false; ns.sockets.len()])
            .collect();
        for &(owner, n, s) in &self.owned {
            seen[n][s] = true;
            let ns = &self.namespaces[n];
            f(Some(owner), &ns.sockets[s], ns.inode);
        }
        if !self.complete {
            return;
        }
        // Sockets without an inode (TIME_WAIT, pending connections) cannot be matched by
        // inode: a namespace read under 0 drops those a known namespace also lists.
        let key = |s: &Socket| {
            (
                s.family,
                s.protocol,
                s.local,
                s.local_port,
                s.remote,
                s.remote_port,
            )
        };
        let known_inodeless: std::collections::HashSet<_> = self
            .namespaces
            .iter()
            .filter(|ns| ns.inode != 0)
            .flat_map(|ns| ns.sockets.iter().filter(|s| s.inode == 0).map(key))
            .collect();
        for (n, ns) in self.namespaces.iter().enumerate() {
            for (s, socket) in ns.sockets.iter().enumerate() {
                let first = if socket.inode != 0 {
                    self.index.get(&socket.inode) == Some(&(n, s))
                } else {
                    ns.inode != 0 || !known_inodeless.contains(&key(socket))
                };
                if !seen[n][s] && first {
                    f(None, socket, ns.inode);
                }
            }
        }
    }
}

#[cfg(test)]
mod live_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &[u8] = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1516 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:A2C4 0100007F:0277 01 00000000:00000000 00:00000000 00000000  1000        0 2222 1 0000000000000000 20 4 30 10 -1\n\
   2: garbage\n\
   3: 0100007F:0277 00000000:0000 0C 00000000:00000000 00:00000000 00000000     0        0 3333 1\n";

    #[test]
    fn parses_tcp_v4() {
        let mut out = Vec::new();
        parse_inet(TCP, AF_INET, 6, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].inode, 1516);
        assert_eq!(out[0].local, Addr::V4([127, 0, 0, 1]));
        assert_eq!(out[0].local_port, 631);
        assert_eq!(out[0].remote.to_text(), "0.0.0.0");
        assert_eq!(out[0].state(), "LISTEN");
        assert_eq!(out[1].state(), "ESTABLISHED");
        assert_eq!((out[1].local_port, out[1].remote_port), (41668, 631));
        assert_eq!(out[2].state(), "UNKNOWN");
    }

    #[test]
    fn udp_has_no_state() {
        let text = b"   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
 1234: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 0\n";
        let mut out = Vec::new();
        parse_inet(text, AF_INET, 17, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].state(), "");
        assert_eq!(out[0].local_port, 68);
    }

    #[test]
    fn parses_v6_addresses_like_inet_ntop() {
        let text = b"  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1\n\
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 78 1\n";
        let mut out = Vec::new();
        parse_inet(text, AF_INET6, 6, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].local.to_text(), "::1");
        assert_eq!(out[0].remote.to_text(), "::");
        assert_eq!(out[1].local.to_text(), "::ffff:127.0.0.1");
        assert_eq!(out[1].local_port, 8080);
    }

    #[test]
    fn bad_headers_and_garbage_yield_nothing() {
        let mut out = Vec::new();
        parse_inet(b"", AF_INET, 6, &mut out);
        parse_inet(b"nonsense\n 0: 0100007F:0277", AF_INET, 6, &mut out);
        parse_unix(b"", &mut out);
        parse_unix(&[0xff; 100], &mut out);
        parse_packet(b"sk\n1 2 3", &mut out);
        // A v6-length address in a v4 table is rejected, not misread.
        parse_inet(
            b"sl\n 0: 00000000000000000000000001000000:0016 00000000:0000 0A 0:0 0:0 0 0 0 5 1\n",
            AF_INET,
            6,
            &mut out,
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn parses_unix_paths_with_spaces() {
        let text = b"Num       RefCount Protocol Flags    Type St Inode Path\n\
0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/a b.sock\n\
0000000000000000: 00000003 00000000 00000000 0001 03   179\n\
0000000000000000: 00000002 00000000 00010000 0001 01 555 @abstract\n";
        let mut out = Vec::new();
        parse_unix(text, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(&*out[0].path, b"/run/a b.sock");
        assert_eq!(out[0].inode, 12345);
        assert_eq!(out[1].inode, 179);
        assert!(out[1].path.is_empty());
        assert_eq!(&*out[2].path, b"@abstract");
        assert!(out.iter().all(|s| s.family == 1 && s.protocol == 0));
    }

    #[test]
    fn parses_packet_sockets() {
        let text = b"sk               RefCnt Type Proto  Iface R Rmem   User   Inode\n\
0000000000000000 3      3    0003   2     1 0      0      4321\n";
        let mut out = Vec::new();
        parse_packet(text, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            (out[0].family, out[0].protocol, out[0].inode),
            (17, 3, 4321)
        );
    }

    #[test]
    fn scan_finds_our_listener_and_its_namespace() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let me = std::process::id();
        let scan = SocketScan::scan(&[me], false);
        assert!(!scan.complete);
        let mut hits = Vec::new();
        scan.for_each(|owner, s, ns| {
            if s.protocol == 6 && s.local_port == port {
                hits.push((owner, s.clone(), ns));
            }
        });
        assert_eq!(hits.len(), 1, "{hits:?}");
        let (owner, s, ns) = &hits[0];
        assert_eq!(
            *owner,
            Some(Owner {
                pid: me,
                fd: listener.as_raw_fd() as u64
            })
        );
        assert_eq!(s.state(), "LISTEN");
        assert_eq!(s.local.to_text(), "127.0.0.1");
        let want_ns = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        assert_eq!(*ns, want_ns);
    }

    fn sock(inode: u64) -> Socket {
        Socket {
            inode,
            family: AF_INET,
            protocol: 6,
            local: Addr::V4([0; 4]),
            local_port: 1,
            remote: Addr::V4([0; 4]),
            remote_port: 0,
            tcp_state: Some(10),
            path: Box::default(),
        }
    }

    #[test]
    fn a_namespace_read_twice_lists_each_socket_once() {
        // Namespace 0 (link unreadable) is really namespace 77: socket 1 is in both.
        // TIME_WAIT sockets have no inode: told apart by their endpoints.
        let time_wait = |port| Socket {
            inode: 0,
            remote_port: port,
            tcp_state: Some(6),
            ..sock(0)
        };
        let mut scan = SocketScan {
            namespaces: vec![
                Namespace {
                    inode: 0,
                    sockets: vec![sock(1), sock(2), time_wait(5), time_wait(6)],
                },
                Namespace {
                    inode: 77,
                    sockets: vec![sock(1), time_wait(5), time_wait(7)],
                },
            ],
            complete: true,
            ..SocketScan::default()
        };
        let owner = Owner { pid: 9, fd: 3 };
        scan.link(vec![(owner, 2), (Owner { pid: 9, fd: 4 }, 999)]);
        let mut seen = Vec::new();
        scan.for_each(|o, s, ns| seen.push((o, s.inode, s.remote_port, ns)));
        seen.sort_by_key(|x| (x.1, x.2));
        assert_eq!(
            seen,
            vec![
                (None, 0, 5, 77),
                (None, 0, 6, 0),
                (None, 0, 7, 77),
                (None, 1, 0, 77),
                (Some(owner), 2, 0, 0)
            ]
        );
    }

    #[test]
    fn tables_larger_than_a_page_are_read_whole() {
        // 60 listeners make /proc/net/tcp well over 4 KiB (150 bytes per socket).
        let listeners: Vec<_> = (0..60)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let scan = SocketScan::scan(&[std::process::id()], false);
        let mut found = Vec::new();
        scan.for_each(|owner, s, _| {
            if owner.is_some() && s.protocol == 6 && s.state() == "LISTEN" {
                found.push(s.local_port);
            }
        });
        for p in ports {
            assert!(found.contains(&p), "listener on {p} missing");
        }
    }
}
