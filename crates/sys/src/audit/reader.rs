//! The event reader: records from the session's socket, assembled into events, with every
//! loss counted.

use std::io;
use std::time::{Duration, Instant};

use super::assemble::{Assembler, AuditEvent};
use super::owner::AuditOwner;
use super::session::AuditSession;
use super::socket::{AuditSocket, RawRecord, wait_readable};

/// Groups that see no EOE are delivered this long after their first record.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the kernel status is read (its `lost` counter, and whether we still hold the
/// socket).
pub const STATUS_INTERVAL: Duration = Duration::from_secs(2);
/// Records read per [`AuditReader::next_batch`] at most (bounds one batch's memory).
pub const MAX_BATCH_RECORDS: usize = 8192;

/// Every place an audit event can be lost or damaged, counted since the reader started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records received.
    pub records: u64,
    /// Events delivered.
    pub events: u64,
    /// `ENOBUFS` on the netlink socket: the kernel dropped records because our receive
    /// buffer was full (each count is at least one record); also records beyond the
    /// bounded queue kept while a status request waited (one count each).
    pub socket_overflows: u64,
    /// Growth of the kernel's own `lost` counter while we held the socket (backlog full,
    /// rate limit). Kernel-wide, so it includes records meant for nobody else too.
    pub kernel_lost: u64,
    /// The kernel's backlog (records waiting for us) at the last status read.
    pub kernel_backlog: u32,
    /// Records without a readable header.
    pub malformed: u64,
    /// Syscall events delivered without their EOE.
    pub incomplete: u64,
    /// Groups flushed early because too many were open.
    pub evicted: u64,
    /// Records dropped by the per-event limits.
    pub records_dropped: u64,
}

/// Reads audit events from a session that holds the audit socket.
pub struct AuditReader {
    session: AuditSession,
    /// The read-only log socket ([`AuditReader::read_log`]); `None` when the records
    /// come to the session's socket as the audit daemon.
    log: Option<AuditSocket>,
    assembler: Assembler,
    stats: AuditStats,
    records: Vec<RawRecord>,
    next_status: Instant,
    last_lost: Option<u32>,
    /// Counters as last logged, to warn once per burst.
    warned: AuditStats,
    lost_socket: Option<AuditOwner>,
}

impl AuditReader {
    /// A reader over `session` (which should hold the audit socket: see
    /// [`AuditSession::take_socket`]). The session is restored when the reader drops.
    pub fn new(session: AuditSession) -> AuditReader {
        AuditReader {
            session,
            log: None,
            assembler: Assembler::new(EVENT_TIMEOUT),
            stats: AuditStats::default(),
            records: Vec::new(),
            next_status: Instant::now(),
            last_lost: None,
            warned: AuditStats::default(),
            lost_socket: None,
        }
    }

    /// A reader of the kernel's read-only copy of every record (the `AUDIT_NLGRP_READLOG`
    /// group), for when another process holds the audit socket: it sees what that
    /// daemon's rules (and user space, SELinux, AppArmor, seccomp) produce, changes
    /// nothing and takes nothing from anyone. `session` only reads the status (the
    /// kernel's `lost` counter); [`AuditReader::lost_socket_to`] stays `None`.
    pub fn read_log(session: AuditSession) -> io::Result<AuditReader> {
        let mut reader = AuditReader::new(session);
        reader.log = Some(AuditSocket::open_read_log()?);
        Ok(reader)
    }

    /// The socket records come from.
    fn source(&mut self) -> &mut AuditSocket {
        match &mut self.log {
            Some(log) => log,
            None => self.session.socket_mut(),
        }
    }

    /// Waits up to `timeout` for events and returns those ready (possibly none). Never
    /// blocks longer; reads everything available (up to [`MAX_BATCH_RECORDS`]).
    pub fn next_batch(&mut self, timeout: Duration) -> io::Result<Vec<AuditEvent>> {
        let deadline = Instant::now() + timeout;
        let mut events = Vec::new();
        loop {
            self.records.clear();
            let mut records = std::mem::take(&mut self.records);
            let received = self.source().recv_records(MAX_BATCH_RECORDS, &mut records);
            self.records = records;
            let overflows = received?;
            self.stats.socket_overflows += overflows;
            let now = Instant::now();
            for r in &self.records {
                self.stats.records += 1;
                self.assembler.push(r.kind, &r.text, now, &mut events);
            }
            self.assembler.flush_expired(now, &mut events);
            if now >= self.next_status {
                self.read_status()?;
                self.next_status = now + STATUS_INTERVAL;
            }
            if !events.is_empty() || now >= deadline {
                break;
            }
            if self.source().has_queued() {
                continue;
            }
            let mut wake = deadline.min(self.next_status);
            if let Some(expiry) = self.assembler.next_expiry() {
                wake = wake.min(expiry);
            }
            let fd = self.source().fd();
            wait_readable(fd, wake.saturating_duration_since(now))?;
        }
        self.stats.events += events.len() as u64;
        self.sync_assembler_stats();
        Ok(events)
    }

    /// Delivers the events still being assembled (call before stopping).
    pub fn flush(&mut self) -> Vec<AuditEvent> {
        let mut events = Vec::new();
        self.assembler.flush_all(&mut events);
        self.stats.events += events.len() as u64;
        self.sync_assembler_stats();
        events
    }

    pub fn stats(&self) -> AuditStats {
        self.stats
    }

    /// The process that took the audit socket from us, once a status read saw another pid
    /// registered (an audit daemon started). Events stop; the caller decides what next.
    pub fn lost_socket_to(&self) -> Option<&AuditOwner> {
        self.lost_socket.as_ref()
    }

    /// The session (rules, status), e.g. to restore it before dropping the reader.
    pub fn session_mut(&mut self) -> &mut AuditSession {
        &mut self.session
    }

    fn read_status(&mut self) -> io::Result<()> {
        let status = self.session.status()?;
        if status.pid == self.session.our_pid() || self.log.is_some() {
            if let Some(last) = self.last_lost {
                // The counter is a u32 that wraps.
                self.stats.kernel_lost += u64::from(status.lost.wrapping_sub(last));
            }
            self.last_lost = Some(status.lost);
        } else if self.lost_socket.is_none() {
            let owner = self.session.owner()?;
            match &owner {
                Some(o) => log::warn!(
                    "audit: the audit socket now belongs to pid {} ({}); audit events stop here",
                    o.pid,
                    o.exe
                        .as_deref()
                        .map_or_else(|| "?".into(), |p| p.display().to_string())
                ),
                None => log::warn!("audit: the audit socket was released; audit events stop here"),
            }
            self.lost_socket = owner.or(Some(AuditOwner {
                pid: 0,
                alive: false,
                comm: None,
                exe: None,
                daemon: None,
            }));
        }
        self.stats.kernel_backlog = status.backlog;
        self.warn_losses();
        Ok(())
    }

    fn sync_assembler_stats(&mut self) {
        let a = self.assembler.stats();
        self.stats.malformed = a.malformed;
        self.stats.incomplete = a.incomplete;
        self.stats.evicted = a.evicted;
        self.stats.records_dropped = a.records_dropped;
    }

    /// One warning per counter per status interval in which it grew.
    fn warn_losses(&mut self) {
        self.sync_assembler_stats();
        let (now, was) = (self.stats, self.warned);
        let grew = [
            (
                "netlink receive buffer overflows (ENOBUFS)",
                now.socket_overflows,
                was.socket_overflows,
            ),
            (
                "records lost in the kernel (backlog or rate limit)",
                now.kernel_lost,
                was.kernel_lost,
            ),
            (
                "events without their end record",
                now.incomplete,
                was.incomplete,
            ),
            (
                "events flushed early (too many open)",
                now.evicted,
                was.evicted,
            ),
            (
                "records dropped (event too large)",
                now.records_dropped,
                was.records_dropped,
            ),
            ("unreadable records", now.malformed, was.malformed),
        ];
        for (what, total, before) in grew {
            if total > before {
                log::warn!("audit: {} {what} ({total} in all)", total - before);
            }
        }
        self.warned = now;
    }
}
