//! An audit control session: every change made through it (the audit pid, `enabled`, the
//! backlog settings, the rules added) is remembered, and [`AuditSession::restore`] (also
//! run on drop) undoes exactly those changes: osquery's `--audit_force_unconfigure`, plus
//! settings put back as they were before.

use std::io;
use std::path::Path;

use super::owner::{AuditOwner, describe_owner};
use super::rules::AuditRule;
use super::socket::{
    AuditSocket, AuditStatus, STATUS_BACKLOG_LIMIT, STATUS_BACKLOG_WAIT_TIME, STATUS_ENABLED,
    STATUS_PID,
};

/// When to take the audit socket from a live owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakeOver {
    /// Only when no process holds it or its holder is dead.
    Never,
    /// Also from a live process that is not an audit daemon (osquery's `--audit_persist`
    /// restricted to non-daemons: the default).
    NonDaemons,
    /// From anyone, audit daemons included (osquery's own behaviour).
    Always,
}

/// What [`AuditSession::take_socket`] found and did.
#[derive(Debug)]
pub enum Ownership {
    /// We hold the socket now; `previous` is who held it before (absent, or dead).
    Taken { previous: Option<AuditOwner> },
    /// We held it already.
    AlreadyOurs,
    /// A live owner that the policy tells us to leave.
    LeftTo(AuditOwner),
    /// The policy allowed taking it but the kernel refused (it does not let a healthy
    /// daemon be replaced: `EEXIST`).
    Refused { owner: AuditOwner, error: io::Error },
}

/// A control session on the audit socket that undoes its changes when restored or dropped.
pub struct AuditSession {
    socket: AuditSocket,
    before: AuditStatus,
    our_pid: u32,
    took_pid: bool,
    changed_enabled: bool,
    changed_backlog_limit: bool,
    changed_backlog_wait_time: bool,
    /// Rules this session added, in order.
    added: Vec<AuditRule>,
    /// Others' rules this session removed ([`AuditSession::remove_existing_rules`]), put
    /// back on restore.
    removed: Vec<AuditRule>,
}

impl AuditSession {
    /// Opens the socket and records the status as it is before any change.
    pub fn open() -> io::Result<AuditSession> {
        let mut socket = AuditSocket::open()?;
        let before = socket.status()?;
        Ok(AuditSession {
            socket,
            before,
            our_pid: std::process::id(),
            took_pid: false,
            changed_enabled: false,
            changed_backlog_limit: false,
            changed_backlog_wait_time: false,
            added: Vec::new(),
            removed: Vec::new(),
        })
    }

    /// The status when the session opened.
    pub fn before(&self) -> &AuditStatus {
        &self.before
    }

    /// The status now.
    pub fn status(&mut self) -> io::Result<AuditStatus> {
        self.socket.status()
    }

    /// The kernel's rules now.
    pub fn rules(&mut self) -> io::Result<Vec<AuditRule>> {
        Ok(self
            .socket
            .rules()?
            .into_iter()
            .map(AuditRule::from_message)
            .collect())
    }

    /// The process holding the audit socket now (`None` when nobody does), from a fresh
    /// status.
    pub fn owner(&mut self) -> io::Result<Option<AuditOwner>> {
        let status = self.socket.status()?;
        Ok(owner_of(&status))
    }

    /// Whether we hold the socket: the status names our pid. When it names another
    /// process after we took it, we lost it (an audit daemon started); the caller decides.
    pub fn holds_socket(&mut self) -> io::Result<bool> {
        Ok(self.socket.status()?.pid == self.our_pid)
    }

    /// Our pid, as the status names the holder.
    pub fn our_pid(&self) -> u32 {
        self.our_pid
    }

    /// Registers us as the audit daemon (events come to this session's socket) when
    /// `policy` allows it given the current holder.
    pub fn take_socket(&mut self, policy: TakeOver) -> io::Result<Ownership> {
        let status = self.socket.status()?;
        if status.pid == self.our_pid {
            return Ok(Ownership::AlreadyOurs);
        }
        let owner = owner_of(&status);
        if let Some(o) = &owner
            && o.alive
        {
            let allowed = match policy {
                TakeOver::Never => false,
                TakeOver::NonDaemons => o.daemon.is_none(),
                TakeOver::Always => true,
            };
            if !allowed {
                return Ok(Ownership::LeftTo(o.clone()));
            }
        }
        let mut set = status;
        set.pid = self.our_pid;
        match self.socket.set_status(STATUS_PID, &set) {
            Ok(()) => {
                self.took_pid = true;
                Ok(Ownership::Taken { previous: owner })
            }
            Err(error) => match owner {
                Some(owner) => Ok(Ownership::Refused { owner, error }),
                None => Err(error),
            },
        }
    }

    /// Gives up the audit pid if we hold it (events stop coming to this session); the
    /// rules and settings stay until [`AuditSession::restore`].
    pub fn release_socket(&mut self) -> io::Result<()> {
        if self.socket.status()?.pid == self.our_pid {
            let release = AuditStatus {
                pid: 0,
                ..AuditStatus::default()
            };
            self.socket.set_status(STATUS_PID, &release)?;
        }
        self.took_pid = false;
        Ok(())
    }

    /// Turns auditing on or off (`enabled` 1 or 0); remembered for restore.
    pub fn set_enabled(&mut self, enabled: bool) -> io::Result<()> {
        let status = AuditStatus {
            enabled: u32::from(enabled),
            ..AuditStatus::default()
        };
        self.socket.set_status(STATUS_ENABLED, &status)?;
        self.changed_enabled = true;
        Ok(())
    }

    /// Sets how many records may wait in the kernel; remembered for restore.
    pub fn set_backlog_limit(&mut self, limit: u32) -> io::Result<()> {
        let status = AuditStatus {
            backlog_limit: limit,
            ..AuditStatus::default()
        };
        self.socket.set_status(STATUS_BACKLOG_LIMIT, &status)?;
        self.changed_backlog_limit = true;
        Ok(())
    }

    /// Sets how long (jiffies) a task waits for backlog room; remembered for restore.
    pub fn set_backlog_wait_time(&mut self, wait: u32) -> io::Result<()> {
        let status = AuditStatus {
            backlog_wait_time: wait,
            ..AuditStatus::default()
        };
        self.socket.set_status(STATUS_BACKLOG_WAIT_TIME, &status)?;
        self.changed_backlog_wait_time = true;
        Ok(())
    }

    /// Adds `rule`. Returns `false` (and does not remember it) when an identical rule was
    /// there already: it is someone else's and stays when we restore.
    pub fn add_rule(&mut self, rule: &AuditRule) -> io::Result<bool> {
        match self.socket.add_rule(rule.message()) {
            Ok(()) => {
                self.added.push(rule.clone());
                Ok(true)
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Adds `rule` like [`AuditSession::add_rule`], but an identical rule already there is
    /// taken as this session's too, so [`AuditSession::restore`] deletes it: osquery's
    /// `--audit_force_unconfigure`, for hosts where a crashed agent left its rules behind.
    pub fn claim_rule(&mut self, rule: &AuditRule) -> io::Result<bool> {
        let added = self.add_rule(rule)?;
        if !added && !self.added.contains(rule) {
            self.added.push(rule.clone());
        }
        Ok(added)
    }

    /// Deletes a rule this session added (no-op for others).
    pub fn delete_rule(&mut self, rule: &AuditRule) -> io::Result<()> {
        if let Some(i) = self.added.iter().position(|r| r == rule) {
            delete_tolerating_absence(&mut self.socket, rule)?;
            self.added.remove(i);
        }
        Ok(())
    }

    /// Deletes every rule in the kernel that this session did not add (osquery's
    /// `--audit_force_reconfigure`), remembering them so [`AuditSession::restore`] puts
    /// them back. Returns how many it removed.
    pub fn remove_existing_rules(&mut self) -> io::Result<usize> {
        let mut count = 0;
        for rule in self.rules()? {
            if self.added.contains(&rule) {
                continue;
            }
            delete_tolerating_absence(&mut self.socket, &rule)?;
            self.removed.push(rule);
            count += 1;
        }
        Ok(count)
    }

    /// The rules this session added and has not deleted.
    pub fn added_rules(&self) -> &[AuditRule] {
        &self.added
    }

    /// Undoes this session's changes: deletes the rules it added, puts back the rules it
    /// removed, puts back the backlog
    /// settings and `enabled`, and gives up the audit pid if we still hold it (the kernel
    /// only lets a process register itself, so a previous holder, dead by the time we
    /// took over, cannot be put back). Runs every step even when one fails; returns the
    /// first error. Idempotent.
    pub fn restore(&mut self) -> io::Result<()> {
        let mut first_error = None;
        let mut note = |r: io::Result<()>| {
            if let Err(e) = r {
                log::warn!("audit: restoring the audit settings: {e}");
                first_error.get_or_insert(e);
            }
        };
        while let Some(rule) = self.added.pop() {
            note(delete_tolerating_absence(&mut self.socket, &rule));
        }
        // Others' rules back, in their original order.
        for rule in std::mem::take(&mut self.removed) {
            match self.socket.add_rule(rule.message()) {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                other => note(other),
            }
        }
        if self.changed_backlog_limit {
            note(self.socket.set_status(STATUS_BACKLOG_LIMIT, &self.before));
            self.changed_backlog_limit = false;
        }
        if self.changed_backlog_wait_time {
            note(
                self.socket
                    .set_status(STATUS_BACKLOG_WAIT_TIME, &self.before),
            );
            self.changed_backlog_wait_time = false;
        }
        if self.changed_enabled {
            note(self.socket.set_status(STATUS_ENABLED, &self.before));
            self.changed_enabled = false;
        }
        if self.took_pid {
            // Someone else may hold it by now: then it is not ours to release.
            note(self.release_socket());
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The socket, for the reader (events arrive on it once we hold the audit pid).
    pub(crate) fn socket_mut(&mut self) -> &mut AuditSocket {
        &mut self.socket
    }
}

impl Drop for AuditSession {
    fn drop(&mut self) {
        // restore() logs each failure itself.
        let _ = self.restore();
    }
}

/// A rule already gone (deleted by `auditctl -D`) counts as deleted.
fn delete_tolerating_absence(socket: &mut AuditSocket, rule: &AuditRule) -> io::Result<()> {
    match socket.delete_rule(rule.message()) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => other,
    }
}

fn owner_of(status: &AuditStatus) -> Option<AuditOwner> {
    (status.pid != 0).then(|| describe_owner(Path::new("/proc"), status.pid))
}
