//! The `NETLINK_AUDIT` socket, synchronous: control requests (status, rules) with their
//! replies and acknowledgements, and the raw event records the kernel sends to the audit
//! daemon's socket.
//!
//! One socket does both, because the kernel sends events to the socket that registered the
//! audit pid: records that arrive while a request waits for its answer are kept, in order,
//! for the next [`AuditSocket::recv_records`].

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use netlink_packet_audit::{AuditMessage, RuleMessage, StatusMessage};
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_AUDIT};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const HEADER_LEN: usize = 16;

/// `AUDIT_GET`/`AUDIT_SET`/rule message types (linux/audit.h).
const AUDIT_GET: u16 = 1000;
const AUDIT_SET: u16 = 1001;
const AUDIT_LIST_RULES: u16 = 1013;
const AUDIT_ADD_RULE: u16 = 1011;
const AUDIT_DEL_RULE: u16 = 1012;
/// The first record type; below it are control messages.
const FIRST_RECORD_TYPE: u16 = 1100;

/// `AUDIT_STATUS_*` bits saying which fields of an `AUDIT_SET` apply.
pub(crate) const STATUS_ENABLED: u32 = 0x1;
pub(crate) const STATUS_PID: u32 = 0x4;
pub(crate) const STATUS_BACKLOG_LIMIT: u32 = 0x10;
pub(crate) const STATUS_BACKLOG_WAIT_TIME: u32 = 0x20;

/// How long a control request waits for the kernel's answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Receive buffer asked for (root may exceed `rmem_max` with `SO_RCVBUFFORCE`): bursts of
/// records wait here while the reader is busy; overflowing it is an `ENOBUFS`.
const RECEIVE_BUFFER: libc::c_int = 8 << 20;
/// Records kept while a control request waits for its answer; beyond it they are
/// dropped and counted with the overflows.
const MAX_QUEUED: usize = 65536;
/// Large enough for the longest record (`MAX_AUDIT_MESSAGE_LENGTH`, 8970) and a rule.
const DATAGRAM_BUFFER: usize = 64 << 10;

/// The kernel's audit status (`struct audit_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuditStatus {
    /// 0 off, 1 on, 2 on and locked (rules and settings immutable until reboot).
    pub enabled: u32,
    /// What the kernel does when it cannot log (0 silent, 1 printk, 2 panic).
    pub failure: u32,
    /// The process registered as the audit daemon, 0 for none.
    pub pid: u32,
    pub rate_limit: u32,
    /// How many records may wait for the daemon before they are lost.
    pub backlog_limit: u32,
    /// Records lost since boot (backlog full, rate limit, no memory).
    pub lost: u32,
    /// Records waiting now.
    pub backlog: u32,
    /// How long (in jiffies) a task waits for room in the backlog.
    pub backlog_wait_time: u32,
    pub feature_bitmap: u32,
}

impl From<&StatusMessage> for AuditStatus {
    fn from(s: &StatusMessage) -> Self {
        AuditStatus {
            enabled: s.enabled,
            failure: s.failure,
            pid: s.pid,
            rate_limit: s.rate_limiting,
            backlog_limit: s.backlog_limit,
            lost: s.lost,
            backlog: s.backlog,
            backlog_wait_time: s.backlog_wait_time,
            feature_bitmap: s.feature_bitmap,
        }
    }
}

/// One audit record as received: its type (`AUDIT_SYSCALL` 1300...) and its text (the
/// `audit(...)` header and the fields), trailing NULs removed. Bytes, not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    pub kind: u16,
    pub text: Vec<u8>,
}

/// A message of a datagram: type, flags, sequence number, payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub kind: u16,
    pub sequence: u32,
    pub payload: &'a [u8],
}

/// Splits one received datagram into its netlink messages. The kernel stamps audit
/// records with `nlmsg_len` = payload length (the header left out) and sends one record
/// per datagram, so a record message whose length falls short of the datagram by at most
/// a header takes the whole datagram. A length that cannot be right (shorter than a
/// header, longer than the data) ends the walk: the rest is unreadable.
pub(crate) fn split_datagram(datagram: &[u8]) -> Vec<Message<'_>> {
    let mut out = Vec::new();
    let mut rest = datagram;
    while rest.len() >= HEADER_LEN {
        let word = |at: usize| u32::from_ne_bytes(rest[at..at + 4].try_into().expect("4 bytes"));
        let declared = word(0) as usize;
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        let sequence = word(8);
        let len = if kind >= FIRST_RECORD_TYPE
            && declared <= rest.len()
            && rest.len() - declared <= HEADER_LEN
        {
            rest.len()
        } else {
            declared
        };
        if len < HEADER_LEN || len > rest.len() {
            log::debug!("audit: netlink message with impossible length {declared} skipped");
            break;
        }
        out.push(Message {
            kind,
            sequence,
            payload: &rest[HEADER_LEN..len],
        });
        // Messages are aligned to 4 bytes.
        let next = (len + 3) & !3;
        rest = rest.get(next..).unwrap_or_default();
    }
    out
}

/// The text of a record payload without trailing NULs.
fn record_text(payload: &[u8]) -> &[u8] {
    let end = payload
        .iter()
        .rposition(|b| *b != 0)
        .map_or(0, |last| last + 1);
    &payload[..end]
}

/// A synchronous `NETLINK_AUDIT` socket connected to the kernel.
pub struct AuditSocket {
    socket: Socket,
    sequence: u32,
    /// Records received while waiting for a reply, oldest first.
    queued: VecDeque<RawRecord>,
    /// Receive errors seen while waiting for a reply (`ENOBUFS`), for the reader's count.
    queued_overflows: u64,
    buf: Vec<u8>,
}

impl AuditSocket {
    /// Opens and connects a socket. Only the initial user and pid namespaces may use
    /// audit, and control needs `CAP_AUDIT_CONTROL`; reading needs `CAP_AUDIT_READ`.
    pub fn open() -> io::Result<AuditSocket> {
        let mut socket = Socket::new(NETLINK_AUDIT)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Self::with_buffer(socket))
    }

    /// Opens a socket in the kernel's read-only log group (`AUDIT_NLGRP_READLOG`, needs
    /// `CAP_AUDIT_READ`): a copy of every record, whoever holds the audit socket, without
    /// registering as its holder.
    pub fn open_read_log() -> io::Result<AuditSocket> {
        const AUDIT_NLGRP_READLOG: u32 = 1;
        let mut socket = Socket::new(NETLINK_AUDIT)?;
        socket.bind(&SocketAddr::new(0, 1 << (AUDIT_NLGRP_READLOG - 1)))?;
        Ok(Self::with_buffer(socket))
    }

    fn with_buffer(socket: Socket) -> AuditSocket {
        // Best effort: the larger buffer needs CAP_NET_ADMIN; the default still works.
        let fd = socket.as_raw_fd();
        let size = RECEIVE_BUFFER;
        // SAFETY: setsockopt with a valid fd and a pointer to an int of the stated size.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            let _ = socket.set_rx_buf_sz(size);
        }
        AuditSocket {
            socket,
            sequence: 0,
            queued: VecDeque::new(),
            queued_overflows: 0,
            buf: vec![0; DATAGRAM_BUFFER],
        }
    }

    /// The socket's descriptor, for poll(2).
    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// The kernel's audit status.
    pub fn status(&mut self) -> io::Result<AuditStatus> {
        let replies = self.request(AuditMessage::GetStatus(None), Expect::OneReply)?;
        replies
            .iter()
            .find_map(|m| match m {
                AuditMessage::GetStatus(Some(s)) => Some(AuditStatus::from(s)),
                _ => None,
            })
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "audit: no status reply"))
    }

    /// Sets the status fields named by `mask` (`STATUS_*`) to the values in `status`.
    pub(crate) fn set_status(&mut self, mask: u32, status: &AuditStatus) -> io::Result<()> {
        let mut message = StatusMessage::new();
        message.mask = mask;
        message.enabled = status.enabled;
        message.pid = status.pid;
        message.backlog_limit = status.backlog_limit;
        message.backlog_wait_time = status.backlog_wait_time;
        self.request(AuditMessage::SetStatus(message), Expect::AckOnly)
            .map(drop)
    }

    /// The kernel's rules, in its order ([`super::AuditSession::rules`] is the public
    /// form, without netlink types).
    pub(crate) fn rules(&mut self) -> io::Result<Vec<RuleMessage>> {
        let replies = self.request(AuditMessage::ListRules(None), Expect::UntilDone)?;
        Ok(replies
            .into_iter()
            .filter_map(|m| match m {
                AuditMessage::ListRules(Some(rule)) => Some(rule),
                _ => None,
            })
            .collect())
    }

    /// Adds a rule; `EEXIST` when an identical rule is there already.
    pub(crate) fn add_rule(&mut self, rule: &RuleMessage) -> io::Result<()> {
        self.request(AuditMessage::AddRule(rule.clone()), Expect::AckOnly)
            .map(drop)
    }

    /// Deletes the rule identical to `rule`; `ENOENT` when there is none.
    pub(crate) fn delete_rule(&mut self, rule: &RuleMessage) -> io::Result<()> {
        self.request(AuditMessage::DelRule(rule.clone()), Expect::AckOnly)
            .map(drop)
    }

    /// Sends a user-space audit message (`kind` 1100-1199 such as `AUDIT_USER_AUTH`, or
    /// 2100-2999), as libaudit's `audit_log_user_message` does: the kernel prefixes
    /// the sender's pid, uids and session and passes it to the audit daemon.
    pub fn send_user_message(&mut self, kind: u16, text: &str) -> io::Result<()> {
        if !(1100..=1199).contains(&kind) && !(2100..=2999).contains(&kind) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "audit: not a user message type",
            ));
        }
        self.request(
            AuditMessage::Other((kind, text.to_owned())),
            Expect::AckOnly,
        )
        .map(drop)
    }

    /// Takes the records queued while a request waited, then reads every datagram
    /// available now without blocking (at most `max` records). `ENOBUFS` (the kernel
    /// dropped datagrams because the receive buffer was full) is counted in the returned
    /// number, not an error.
    pub fn recv_records(&mut self, max: usize, out: &mut Vec<RawRecord>) -> io::Result<u64> {
        let mut overflows = std::mem::take(&mut self.queued_overflows);
        while out.len() < max {
            match self.queued.pop_front() {
                Some(r) => out.push(r),
                None => break,
            }
        }
        while out.len() < max {
            match self.recv_datagram(libc::MSG_DONTWAIT) {
                Ok(len) => {
                    let buf = std::mem::take(&mut self.buf);
                    for m in split_datagram(&buf[..len]) {
                        if let Some(record) = as_record(&m) {
                            out.push(record);
                        }
                    }
                    self.buf = buf;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => overflows += 1,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(overflows)
    }

    /// Whether records are queued (from a request) so a poll(2) must not wait.
    pub fn has_queued(&self) -> bool {
        !self.queued.is_empty()
    }

    fn recv_datagram(&mut self, flags: libc::c_int) -> io::Result<usize> {
        // SAFETY: recv into our own buffer of the given length.
        let n = unsafe {
            libc::recv(
                self.socket.as_raw_fd(),
                self.buf.as_mut_ptr().cast(),
                self.buf.len(),
                flags,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((n as usize).min(self.buf.len()))
    }

    /// Sends `message` and collects its replies. Replies and acks may come in any order
    /// (the kernel sends rule lists from a separate thread), so it waits for both what
    /// `expect` names and the ack.
    fn request(&mut self, message: AuditMessage, expect: Expect) -> io::Result<Vec<AuditMessage>> {
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let sequence = self.sequence;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK;
        header.sequence_number = sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut bytes = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut bytes);
        self.socket.send(&bytes, 0)?;

        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut replies = Vec::new();
        let mut acked = false;
        let mut answered = expect == Expect::AckOnly;
        while !(acked && answered) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !wait_readable(self.fd(), left)? {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "audit: no answer from the kernel",
                ));
            }
            let len = match self.recv_datagram(libc::MSG_DONTWAIT) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    self.queued_overflows += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let buf = std::mem::take(&mut self.buf);
            let result = self.take_reply(&buf[..len], sequence, expect, &mut replies);
            self.buf = buf;
            let (ack, answer) = result?;
            acked |= ack;
            answered |= answer;
        }
        Ok(replies)
    }

    /// Sorts the messages of one datagram: records are queued, stale replies dropped,
    /// replies to `sequence` collected. Returns (ack seen, answer complete).
    fn take_reply(
        &mut self,
        datagram: &[u8],
        sequence: u32,
        expect: Expect,
        replies: &mut Vec<AuditMessage>,
    ) -> io::Result<(bool, bool)> {
        let (mut acked, mut answered) = (false, false);
        for m in split_datagram(datagram) {
            if let Some(record) = as_record(&m) {
                if self.queued.len() < MAX_QUEUED {
                    self.queued.push_back(record);
                } else {
                    self.queued_overflows += 1;
                }
                continue;
            }
            if m.sequence != sequence {
                continue;
            }
            match m.kind {
                NLMSG_ERROR => {
                    let code = m
                        .payload
                        .get(..4)
                        .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                    if code < 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                    acked = true;
                }
                NLMSG_DONE => answered |= expect == Expect::UntilDone,
                NLMSG_OVERRUN => {
                    return Err(io::Error::other("audit: netlink overrun"));
                }
                AUDIT_GET | AUDIT_SET | AUDIT_LIST_RULES | AUDIT_ADD_RULE | AUDIT_DEL_RULE => {
                    let mut header = NetlinkHeader::default();
                    header.message_type = m.kind;
                    match AuditMessage::deserialize(&header, m.payload) {
                        Ok(reply) => {
                            replies.push(reply);
                            answered |= expect == Expect::OneReply;
                        }
                        Err(e) => log::debug!("audit: undecodable reply {}: {e}", m.kind),
                    }
                }
                other => log::debug!("audit: unexpected reply type {other}"),
            }
        }
        Ok((acked, answered))
    }
}

/// What a request waits for besides its ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    AckOnly,
    OneReply,
    UntilDone,
}

/// AUDIT_REPLACE: the kernel's probe of whether the daemon's socket still works; its
/// payload is a binary pid, not a record.
const AUDIT_REPLACE: u16 = 1329;

fn as_record(m: &Message<'_>) -> Option<RawRecord> {
    if m.kind < FIRST_RECORD_TYPE || m.kind == AUDIT_REPLACE {
        return None;
    }
    Some(RawRecord {
        kind: m.kind,
        text: record_text(m.payload).to_vec(),
    })
}

/// poll(2) for input on `fd` for at most `timeout`; whether it is readable.
pub(crate) fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // Round up so a sub-millisecond wait does not become a busy loop.
    let ms = timeout
        .as_micros()
        .div_ceil(1000)
        .min(libc::c_int::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(rc > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, declared: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&declared.to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&0u16.to_ne_bytes());
        out.extend_from_slice(&7u32.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn record_length_stamped_without_header_takes_the_datagram() {
        let text = b"audit(1.000:5): cwd=\"/root\"";
        // The kernel's quirk: nlmsg_len is the payload length.
        let d = message(1307, text.len() as u32, text);
        let m = split_datagram(&d);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].payload, text);
        assert_eq!(as_record(&m[0]).unwrap().text, text);
        // A correct length works the same.
        let d = message(1307, (16 + text.len()) as u32, text);
        assert_eq!(split_datagram(&d)[0].payload, text);
    }

    #[test]
    fn several_control_messages_in_one_datagram() {
        let mut d = message(NLMSG_ERROR, 20, &0i32.to_ne_bytes());
        d.extend(message(NLMSG_DONE, 16, b""));
        let m = split_datagram(&d);
        assert_eq!(m.iter().map(|m| m.kind).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(m[0].sequence, 7);
    }

    #[test]
    fn hostile_datagrams_are_cut_not_panics() {
        assert!(split_datagram(b"").is_empty());
        assert!(split_datagram(&[0u8; 15]).is_empty());
        // Declared length below a header, or beyond the data.
        assert!(split_datagram(&message(2, 3, b"")).is_empty());
        assert!(split_datagram(&message(2, 4000, b"abc")).is_empty());
        // A record with a huge declared length is cut, not read out of bounds.
        assert!(split_datagram(&message(1300, u32::MAX, b"audit(1.1:1): a=b")).is_empty());
        // AUDIT_REPLACE's binary pid is not a record.
        let d = message(AUDIT_REPLACE, 4, &1234u32.to_ne_bytes());
        assert!(split_datagram(&d).iter().all(|m| as_record(m).is_none()));
        // Trailing NULs are stripped, a record of NULs is empty text.
        let d = message(1300, 4, b"\0\0\0\0");
        assert_eq!(as_record(&split_datagram(&d)[0]).unwrap().text, b"");
    }
}
