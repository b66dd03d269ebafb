//! The audit publisher (osquery's `auditeventpublisher`): holds the kernel's audit socket,
//! installs the rules its subscribers need, and turns assembled audit events into rows of
//! process_events, socket_events, process_file_events, user_events, selinux_events,
//! apparmor_events and
//! seccomp_events (the last three need no rules: the kernel logs those records whenever
//! auditing is on).
//!
//! Coexistence (the issue's §3): the socket is taken only when nobody holds it, its holder
//! is dead, or the holder is a live process that is not an audit daemon
//! ([`TakeOver::NonDaemons`]); a live auditd, journald, go-audit, auditbeat or another
//! osquery keeps it, and this publisher says so once and checks again every
//! [`RETRY_EVERY`]. When it loses the socket later it restores the kernel state it changed
//! (so its rules do not flood the new holder) and waits the same way; with
//! `--audit_persist=false` it takes the socket back only when it is free or its holder
//! dead. [`AuditPublisher::serving`] tells whether it reads events now, for the process
//! connector's fallback to fill in while it does not.
//!
//! Kernel state: with `--audit_allow_config` it turns auditing on, sets
//! `--audit_backlog_limit` and `--audit_backlog_wait_time` (0 leaves it), and adds one
//! rule per syscall set its subscribers need; with `--audit_force_reconfigure` it first
//! removes the rules already there. Whatever it changed is put back when it
//! stops or loses the socket (the session's restore) even without
//! `--audit_force_unconfigure`: leaving rules behind for nobody is what the issue
//! forbids. That flag keeps osquery's meaning: a rule identical to one we need that was
//! there before we started is removed at stop as well.
//!
//! Losses reach `osquery_events` through [`PublisherContext::lost`]: netlink ENOBUFS, the
//! kernel's lost counter, records dropped by the assembler's limits, unreadable records.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use oxquery_flags::{Flags, flag};
use oxquery_sys::audit::{
    AuditEvent, AuditReader, AuditRule, AuditSession, AuditStats, Ownership, SyscallSet, TakeOver,
};
use oxquery_sys::fs::FileReader;
use oxquery_sys::proc_connector::read_exec_environ;

use crate::tables::{
    apparmor_events, process_events, process_file_events, seccomp_events, selinux_events,
    socket_events, user_events,
};
use crate::{EventHub, Publisher, PublisherContext, READ_TIMEOUT, Subscriber};

/// osquery's name for the publisher.
pub const NAME: &str = "auditeventpublisher";
/// How often a publisher that could not take the socket looks again.
pub const RETRY_EVERY: Duration = Duration::from_secs(30);

/// The flags the publisher acts on.
#[derive(Debug, Clone, Copy)]
pub struct AuditSettings {
    pub allow_config: bool,
    /// `--audit_force_reconfigure`: remove the rules already there (put back on
    /// restore).
    pub force_reconfigure: bool,
    /// `--audit_force_unconfigure`: a rule identical to one we need that was there
    /// already is removed at stop too (osquery's meaning), not left to its unknown owner.
    pub force_unconfigure: bool,
    pub backlog_limit: u32,
    pub backlog_wait_time: u32,
    pub persist: bool,
    /// Whom to take the socket from at start (the lead's flag may widen it to
    /// [`TakeOver::Always`], osquery's behaviour).
    pub take_over: TakeOver,
    pub process: process_events::ProcessOptions,
    pub sockets: socket_events::SocketOptions,
    pub files: process_file_events::FileOptions,
    /// How often to look again at a socket left to its holder ([`RETRY_EVERY`]).
    pub retry_every: Duration,
}

impl AuditSettings {
    pub fn from_flags(flags: &Flags) -> AuditSettings {
        let nonneg = |v: i32| u32::try_from(v).unwrap_or(0);
        AuditSettings {
            allow_config: flags.get(flag::audit_allow_config),
            force_reconfigure: flags.get(flag::audit_force_reconfigure),
            force_unconfigure: flags.get(flag::audit_force_unconfigure),
            backlog_limit: nonneg(flags.get(flag::audit_backlog_limit)),
            backlog_wait_time: nonneg(flags.get(flag::audit_backlog_wait_time)),
            persist: flags.get(flag::audit_persist),
            take_over: if flags.get(flag::audit_take_over_daemons) {
                TakeOver::Always
            } else {
                TakeOver::NonDaemons
            },
            process: process_events::ProcessOptions {
                fork: flags.get(flag::audit_allow_fork_process_events),
                kill: flags.get(flag::audit_allow_kill_process_events),
                env: flags.get(flag::process_events_env),
            },
            sockets: socket_events::SocketOptions {
                failed: flags.get(flag::audit_allow_failed_socket_events),
                accept: flags.get(flag::audit_allow_accept_socket_events),
                null_accept: flags.get(flag::audit_allow_null_accept_socket_events),
                unix: flags.get(flag::audit_allow_unix),
            },
            files: process_file_events::FileOptions {
                show_accesses: flags.get(flag::audit_fim_show_accesses),
            },
            retry_every: RETRY_EVERY,
        }
    }
}

/// The audit publisher, when `--disable_audit=false` and a subscriber is enabled.
pub fn publisher(hub: &EventHub, flags: &Flags) -> Option<AuditPublisher> {
    if flags.get(flag::disable_audit) {
        return None;
    }
    let subscribe = |allowed: bool, spec| {
        if allowed {
            hub.subscribe(spec, NAME, None)
        } else {
            None
        }
    };
    let publisher = AuditPublisher {
        settings: AuditSettings::from_flags(flags),
        process: subscribe(
            flags.get(flag::audit_allow_process_events),
            &process_events::SPEC,
        ),
        socket: subscribe(flags.get(flag::audit_allow_sockets), &socket_events::SPEC),
        files: subscribe(
            flags.get(flag::audit_allow_fim_events),
            &process_file_events::SPEC,
        ),
        user: subscribe(flags.get(flag::audit_allow_user_events), &user_events::SPEC),
        selinux: subscribe(
            flags.get(flag::audit_allow_selinux_events),
            &selinux_events::SPEC,
        ),
        apparmor: subscribe(
            flags.get(flag::audit_allow_apparmor_events),
            &apparmor_events::SPEC,
        ),
        seccomp: subscribe(
            flags.get(flag::audit_allow_seccomp_events),
            &seccomp_events::SPEC,
        ),
        said_left_to: None,
        serving: Arc::default(),
    };
    if publisher.subscribers().is_empty() {
        return None;
    }
    Some(publisher)
}

/// See the module documentation.
pub struct AuditPublisher {
    pub settings: AuditSettings,
    pub process: Option<Subscriber>,
    pub socket: Option<Subscriber>,
    pub files: Option<Subscriber>,
    pub user: Option<Subscriber>,
    pub selinux: Option<Subscriber>,
    pub apparmor: Option<Subscriber>,
    pub seccomp: Option<Subscriber>,
    /// The holder we last said we leave the socket to, to say it once.
    said_left_to: Option<u32>,
    /// True while this publisher holds the audit socket and reads events.
    serving: Arc<AtomicBool>,
}

impl AuditPublisher {
    /// A publisher over explicit subscribers (tests, or a program wiring its own flags);
    /// add the security tables' subscribers to the public fields.
    pub fn new(
        settings: AuditSettings,
        process: Option<Subscriber>,
        socket: Option<Subscriber>,
        user: Option<Subscriber>,
    ) -> AuditPublisher {
        AuditPublisher {
            settings,
            process,
            socket,
            files: None,
            user,
            selinux: None,
            apparmor: None,
            seccomp: None,
            said_left_to: None,
            serving: Arc::default(),
        }
    }

    /// A flag that is true while the publisher holds the audit socket and reads events,
    /// false while it leaves the socket to another holder or is stopped: what a fallback
    /// source of process events (the process connector) looks at to fill in, and stop,
    /// without duplicating.
    pub fn serving(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.serving)
    }

    /// The syscall sets the subscribers need.
    fn rule_sets(&self) -> Vec<SyscallSet> {
        let mut sets = Vec::new();
        if self.process.is_some() {
            sets.push(SyscallSet::Exec);
            if self.settings.process.fork {
                sets.push(SyscallSet::Fork);
            }
            if self.settings.process.kill {
                sets.push(SyscallSet::Kill);
            }
        }
        if self.socket.is_some() {
            sets.push(SyscallSet::Socket);
        }
        if self.files.is_some() {
            sets.push(SyscallSet::FileAccess);
        }
        sets
    }

    /// Takes the socket under `policy`; `None` (said once) when it is left to its holder.
    fn acquire(&mut self, policy: TakeOver) -> Result<Option<AuditSession>, String> {
        let mut session = AuditSession::open().map_err(|e| format!("audit socket: {e}"))?;
        let left_to = match session
            .take_socket(policy)
            .map_err(|e| format!("taking the audit socket: {e}"))?
        {
            Ownership::Taken { previous } => {
                if let Some(p) = previous {
                    log::info!(
                        "Audit: took the audit socket from pid {} (no longer running)",
                        p.pid
                    );
                }
                self.said_left_to = None;
                return Ok(Some(session));
            }
            Ownership::AlreadyOurs => return Ok(Some(session)),
            Ownership::LeftTo(owner) => owner,
            Ownership::Refused { owner, error } => {
                log::debug!("Audit: the kernel refused the socket: {error}");
                owner
            }
        };
        if self.said_left_to != Some(left_to.pid) {
            log::warn!(
                "Audit: the audit socket belongs to pid {} ({}{}); leaving it, so the audit event tables get no events while it runs",
                left_to.pid,
                left_to
                    .exe
                    .as_deref()
                    .map_or_else(|| "?".into(), |p| p.display().to_string()),
                if left_to.is_live_daemon() {
                    ", an audit daemon"
                } else {
                    ""
                }
            );
            self.said_left_to = Some(left_to.pid);
        }
        Ok(None)
    }

    /// Turns auditing on and installs the rules, when allowed to.
    fn configure(&self, session: &mut AuditSession) -> Result<(), String> {
        if !self.settings.allow_config {
            log::info!(
                "Audit: --audit_allow_config is off: no rules installed, events come from the rules already there"
            );
            return Ok(());
        }
        let status = session.status().map_err(|e| e.to_string())?;
        if status.enabled == 2 {
            log::warn!("Audit: the audit configuration is locked (enabled=2): rules unchanged");
            return Ok(());
        }
        if status.enabled == 0 {
            session
                .set_enabled(true)
                .map_err(|e| format!("enabling audit: {e}"))?;
        }
        if self.settings.backlog_limit > 0 && status.backlog_limit != self.settings.backlog_limit {
            session
                .set_backlog_limit(self.settings.backlog_limit)
                .map_err(|e| format!("setting the audit backlog limit: {e}"))?;
        }
        if self.settings.backlog_wait_time > 0
            && status.backlog_wait_time != self.settings.backlog_wait_time
        {
            session
                .set_backlog_wait_time(self.settings.backlog_wait_time)
                .map_err(|e| format!("setting the audit backlog wait time: {e}"))?;
        }
        if self.settings.force_reconfigure {
            let removed = session
                .remove_existing_rules()
                .map_err(|e| format!("removing the existing audit rules: {e}"))?;
            log::info!("Audit: removed {removed} existing rule(s); they are put back at stop");
        }
        for set in self.rule_sets() {
            let rule = AuditRule::syscall_exit(set);
            let added = if self.settings.force_unconfigure {
                session.claim_rule(&rule)
            } else {
                session.add_rule(&rule)
            };
            added.map_err(|e| format!("adding the audit rule for {set:?}: {e}"))?;
        }
        Ok(())
    }

    fn publish(&self, events: &[AuditEvent], ctx: &PublisherContext) {
        if events.is_empty() {
            return;
        }
        ctx.published(events.len() as u64);
        let uptime = uptime();
        // Only `--process_events_env` reads /proc here.
        let mut files = self.settings.process.env.then(FileReader::new);
        for event in events {
            if let Some(s) = &self.process
                && let Some(mut row) = process_events::row(event, self.settings.process, uptime)
            {
                if let Some(files) = files.as_mut()
                    && event.execve.is_some()
                    && let Some(sc) = &event.syscall
                    && let Some(exe) = &sc.exe
                    && let Some(environ) = read_exec_environ(sc.pid, exe, files)
                {
                    process_events::set_env(&mut row, &environ);
                }
                s.add(row.into_values());
            }
            if let Some(s) = &self.socket
                && let Some(row) = socket_events::row(event, self.settings.sockets, uptime)
            {
                s.add(row.into_values());
            }
            if let Some(s) = &self.files
                && let Some(row) = process_file_events::row(event, self.settings.files, uptime)
            {
                s.add(row.into_values());
            }
            if let Some(s) = &self.user
                && let Some(row) = user_events::row(event, uptime)
            {
                s.add(row.into_values());
            }
            let security = [
                (
                    &self.selinux,
                    selinux_events::rows as fn(&AuditEvent, i64) -> _,
                ),
                (&self.apparmor, apparmor_events::rows),
                (&self.seccomp, seccomp_events::rows),
            ];
            for (subscriber, rows) in security {
                if let Some(s) = subscriber {
                    for row in rows(event, uptime) {
                        s.add(row.into_values());
                    }
                }
            }
        }
    }

    /// Reads until stopping (Ok(true)) or the socket is lost (Ok(false)).
    fn read(&self, reader: &mut AuditReader, ctx: &PublisherContext) -> Result<bool, String> {
        let mut seen = reader.stats();
        loop {
            if ctx.stopping() {
                self.publish(&reader.flush(), ctx);
                report_losses(ctx, &seen, &reader.stats());
                return Ok(true);
            }
            let events = reader
                .next_batch(READ_TIMEOUT)
                .map_err(|e| format!("reading audit events: {e}"))?;
            self.publish(&events, ctx);
            let now = reader.stats();
            report_losses(ctx, &seen, &now);
            seen = now;
            if let Some(owner) = reader.lost_socket_to() {
                log::warn!(
                    "Audit: lost the audit socket to pid {}; restoring the audit settings and waiting",
                    owner.pid
                );
                self.publish(&reader.flush(), ctx);
                return Ok(false);
            }
        }
    }
}

impl Publisher for AuditPublisher {
    fn name(&self) -> &'static str {
        NAME
    }

    fn subscribers(&self) -> Vec<String> {
        [
            &self.process,
            &self.socket,
            &self.files,
            &self.user,
            &self.selinux,
            &self.apparmor,
            &self.seccomp,
        ]
        .into_iter()
        .flatten()
        .map(|s| s.name().to_owned())
        .collect()
    }

    fn run(&mut self, ctx: &PublisherContext) -> Result<(), String> {
        let mut policy = self.settings.take_over;
        while !ctx.stopping() {
            let Some(mut session) = self.acquire(policy)? else {
                if !ctx.sleep(self.settings.retry_every) {
                    return Ok(());
                }
                continue;
            };
            // On failure the session's drop undoes what was done.
            self.configure(&mut session)?;
            let mut reader = AuditReader::new(session);
            self.serving.store(true, Ordering::SeqCst);
            let outcome = self.read(&mut reader, ctx);
            self.serving.store(false, Ordering::SeqCst);
            let stopped = outcome?;
            reader
                .session_mut()
                .restore()
                .map_err(|e| format!("restoring the audit settings: {e}"))?;
            if stopped {
                return Ok(());
            }
            if !self.settings.persist {
                policy = TakeOver::Never;
            }
            if !ctx.sleep(self.settings.retry_every) {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// The growth of each loss counter, reported by reason.
fn report_losses(ctx: &PublisherContext, before: &AuditStats, now: &AuditStats) {
    ctx.lost(
        "netlink ENOBUFS",
        now.socket_overflows - before.socket_overflows,
    );
    ctx.lost(
        "kernel audit backlog (lost records)",
        now.kernel_lost - before.kernel_lost,
    );
    ctx.lost(
        "audit records over the event size limit",
        now.records_dropped - before.records_dropped,
    );
    ctx.lost("unreadable audit records", now.malformed - before.malformed);
}

/// Seconds since boot, from `/proc/uptime`.
fn uptime() -> i64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| {
            t.split(['.', ' '])
                .next()
                .and_then(|s| s.parse::<i64>().ok())
        })
        .unwrap_or(0)
}
