//! Live tests against the kernel's audit subsystem (root, initial namespaces). They change
//! global state (rules, the audit pid), so they hold [`lock`] and restore through
//! the session's `Drop` even when an assertion fails.

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use oxquery_test_support::wait_until;

use super::testing::{StandIn, free_session, is_stand_in, lock, settings};
use super::*;

/// Takes the free audit socket for `session` (or finds it is ours already).
fn take_free_socket(session: &mut AuditSession, policy: TakeOver) {
    match session.take_socket(policy).expect("take") {
        Ownership::Taken { .. } | Ownership::AlreadyOurs => {}
        other => panic!("could not take a free audit socket: {other:?}"),
    }
}

#[test]
fn live_execve_event_is_assembled_and_state_restored() {
    let _guard = lock();
    let Some(mut session) = free_session() else {
        return;
    };
    let status_before = session.status().expect("status");
    let rules_before = session.rules().expect("rules");

    take_free_socket(&mut session, TakeOver::NonDaemons);
    session.set_enabled(true).expect("enable");
    session
        .set_backlog_limit(status_before.backlog_limit + 1024)
        .expect("backlog limit");
    session
        .set_backlog_wait_time(status_before.backlog_wait_time + 1)
        .expect("backlog wait");
    let rule = AuditRule::syscall_exit(SyscallSet::Exec);
    assert!(
        session.add_rule(&rule).expect("add rule"),
        "our rule was there already"
    );
    assert!(session.rules().expect("rules").contains(&rule));
    let during = session.status().expect("status");
    assert_eq!(during.pid, std::process::id());
    assert_eq!(during.enabled, 1);
    assert_eq!(during.backlog_limit, status_before.backlog_limit + 1024);

    let mut reader = AuditReader::new(session);
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().canonicalize().unwrap();
    let marker = format!("oxquery-audit-{}", std::process::id());
    let mut child = Command::new("/bin/true")
        .arg(&marker)
        .current_dir(&cwd)
        .spawn()
        .expect("spawn /bin/true");
    let child_pid = child.id();
    assert!(child.wait().unwrap().success());

    let deadline = Instant::now() + Duration::from_secs(20);
    let event = loop {
        let batch = reader
            .next_batch(Duration::from_millis(200))
            .expect("next_batch");
        if let Some(e) = batch
            .into_iter()
            .find(|e| e.syscall.as_ref().is_some_and(|s| s.pid == child_pid))
        {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "no execve event for pid {child_pid}; stats {:?}",
            reader.stats()
        );
    };
    let s = event.syscall.as_ref().unwrap();
    assert_eq!(s.ppid, std::process::id());
    assert_eq!(s.syscall, libc::SYS_execve as u32);
    assert_eq!(s.arch, NATIVE_ARCH);
    assert_eq!(s.success, Some(true));
    assert_eq!(s.key.as_deref(), Some(RULE_KEY.as_bytes()));
    let real_true = std::fs::canonicalize("/bin/true").unwrap();
    assert_eq!(
        s.exe.as_deref(),
        Some(real_true.as_os_str().as_encoded_bytes())
    );
    let x = event.execve.as_ref().expect("EXECVE record");
    assert_eq!(x.argc, 2);
    assert_eq!(x.args, [b"/bin/true".to_vec(), marker.as_bytes().to_vec()]);
    assert_eq!(
        event.cwd.as_deref(),
        Some(cwd.as_os_str().as_encoded_bytes())
    );
    assert_eq!(
        event.paths.first().and_then(|p| p.name.as_deref()),
        Some(&b"/bin/true"[..])
    );
    assert_eq!(
        event.proctitle.as_ref().unwrap(),
        &[b"/bin/true".to_vec(), marker.as_bytes().to_vec()]
    );
    assert_eq!(event.ending, Ending::Eoe);
    let time_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(event.time.secs <= time_now && event.time.secs + 600 > time_now);
    let stats = reader.stats();
    assert!(stats.records >= 5 && stats.events >= 1, "{stats:?}");

    // Restore explicitly (drop would too) and compare with an independent session.
    reader.session_mut().restore().expect("restore");
    drop(reader);
    let mut after = AuditSession::open().expect("open");
    assert_eq!(settings(&after.status().unwrap()), settings(&status_before));
    assert_eq!(after.rules().unwrap(), rules_before);
    // Cross-check with auditctl when it is installed (it is an independent reader).
    if let Some(auditctl) = oxquery_test_support::find_tool("auditctl") {
        let out = Command::new(auditctl).arg("-l").output().unwrap();
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains(RULE_KEY),
            "our rule is still listed"
        );
    }
}

/// The stand-in's role: register as the audit daemon, wait for stdin to close, release.
fn stand_in_main() {
    let mut socket = AuditSocket::open().expect("stand-in socket");
    let mut status = socket.status().expect("stand-in status");
    status.pid = std::process::id();
    socket
        .set_status(socket::STATUS_PID, &status)
        .expect("stand-in registers as audit pid");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    status.pid = 0;
    let _ = socket.set_status(socket::STATUS_PID, &status);
}

#[test]
fn live_ownership_with_a_stand_in_daemon() {
    if is_stand_in() {
        stand_in_main();
        return;
    }
    let _guard = lock();
    let Some(mut session) = free_session() else {
        return;
    };
    let before = session.status().expect("status");

    // We hold the socket, then give it up and a daemon takes it: the reader notices.
    take_free_socket(&mut session, TakeOver::Never);
    let mut reader = AuditReader::new(session);
    reader
        .next_batch(Duration::ZERO)
        .expect("first status read");
    assert!(reader.lost_socket_to().is_none());
    reader.session_mut().release_socket().expect("release");

    let stand_in = StandIn::start("audit::live_tests::live_ownership_with_a_stand_in_daemon");
    let stand_in_pid = stand_in.pid();
    let mut observer = AuditSession::open().expect("observer session");
    assert!(
        wait_until(Duration::from_secs(20), || observer
            .status()
            .is_ok_and(|s| s.pid == stand_in_pid)),
        "the stand-in never registered"
    );

    let deadline = Instant::now() + STATUS_INTERVAL * 5;
    while reader.lost_socket_to().is_none() && Instant::now() < deadline {
        reader
            .next_batch(Duration::from_millis(200))
            .expect("next_batch");
    }
    let lost_to = reader
        .lost_socket_to()
        .expect("loss of the socket not noticed");
    assert_eq!(lost_to.pid, stand_in_pid);
    assert_eq!(lost_to.daemon, Some("auditd"));

    // The observer sees a live audit daemon and leaves it alone.
    let owner = observer.owner().unwrap().expect("an owner");
    assert_eq!(owner.pid, stand_in_pid);
    assert!(owner.alive && owner.is_live_daemon());
    assert_eq!(owner.exe.as_deref(), Some(stand_in.exe().as_path()));
    assert_eq!(owner.comm.as_deref(), Some(&b"auditd"[..]));
    for policy in [TakeOver::Never, TakeOver::NonDaemons] {
        match observer.take_socket(policy).expect("take") {
            Ownership::LeftTo(o) => assert_eq!(o.pid, stand_in_pid),
            other => panic!("{policy:?}: {other:?}"),
        }
    }
    // Told to take it anyway, the kernel refuses to replace a healthy daemon.
    match observer.take_socket(TakeOver::Always).expect("take") {
        Ownership::Refused { owner, error } => {
            assert_eq!(owner.pid, stand_in_pid);
            assert_eq!(error.raw_os_error(), Some(libc::EEXIST), "{error}");
        }
        other => panic!("took the socket from a live daemon: {other:?}"),
    }
    assert_eq!(observer.status().unwrap().pid, stand_in_pid);

    // Beside the daemon, the read-only log group still sees records: a user message.
    let mut log_session = AuditSession::open().unwrap();
    log_session.set_enabled(true).expect("enable");
    let mut log = AuditReader::read_log(log_session).expect("read-only log socket");
    let marker = format!("oxquery-read-log-{}", std::process::id());
    AuditSocket::open()
        .unwrap()
        .send_user_message(1100, &format!("op=test acct=\"{marker}\" res=success"))
        .expect("user message");
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        let batch = log
            .next_batch(Duration::from_millis(200))
            .expect("read log");
        if let Some(r) = batch.iter().find_map(|e| {
            e.record(RecordClass::UserMessage)
                .filter(|r| {
                    r.field("acct").and_then(|v| v.string()) == Some(marker.clone().into_bytes())
                })
                .cloned()
        }) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the read-only log saw no user message"
        );
    };
    assert_eq!(seen.kind, 1100);
    assert_eq!(
        seen.field("pid").and_then(|v| v.decimal()),
        Some(i64::from(std::process::id()))
    );
    // Reading the log took nothing from the daemon.
    assert!(log.lost_socket_to().is_none());
    assert_eq!(observer.status().unwrap().pid, stand_in_pid);
    drop(log);

    // The stand-in releases and exits; everything is as before.
    drop(stand_in);
    drop(reader);
    drop(observer);
    let mut after = AuditSession::open().expect("open");
    assert_eq!(settings(&after.status().unwrap()), settings(&before));
}

#[test]
fn live_kernel_losses_are_counted() {
    let _guard = lock();
    let Some(mut session) = free_session() else {
        return;
    };
    let before = session.status().expect("status");
    take_free_socket(&mut session, TakeOver::Never);
    session.set_enabled(true).expect("enable");
    // A backlog of one record, and no waiting for room: the records of an exec burst
    // beyond it are lost in the kernel (counted in its `lost`).
    session.set_backlog_limit(1).expect("backlog limit");
    session.set_backlog_wait_time(0).expect("backlog wait");
    assert!(
        session
            .add_rule(&AuditRule::syscall_exit(SyscallSet::Exec))
            .expect("rule")
    );
    let mut reader = AuditReader::new(session);
    // The window the reader counts in lies inside [lost_before, lost_after]: its first
    // batch reads its baseline after this.
    let lost_before = reader.session_mut().status().unwrap().lost;
    reader.next_batch(Duration::ZERO).expect("baseline");
    for _ in 0..20 {
        assert!(Command::new("/bin/true").status().unwrap().success());
    }
    let deadline = Instant::now() + STATUS_INTERVAL * 10;
    while reader.stats().kernel_lost == 0 && Instant::now() < deadline {
        reader
            .next_batch(Duration::from_millis(200))
            .expect("next_batch");
    }
    let lost_after = reader.session_mut().status().unwrap().lost;
    let stats = reader.stats();
    assert!(stats.kernel_lost > 0, "no loss counted: {stats:?}");
    // The count is the kernel's own counter's growth (kernel-wide, so other processes'
    // records count too), never more than it grew while we watched.
    assert!(
        stats.kernel_lost <= u64::from(lost_after.wrapping_sub(lost_before)),
        "{stats:?}, kernel lost {lost_before} -> {lost_after}"
    );
    drop(reader);
    let mut after = AuditSession::open().expect("open");
    assert_eq!(settings(&after.status().unwrap()), settings(&before));
}

/// A rule added behind any session's back (as `auditctl -a` would), deleted on drop.
struct ForeignRule(AuditRule);

impl ForeignRule {
    fn add(rule: AuditRule) -> ForeignRule {
        AuditSocket::open()
            .unwrap()
            .add_rule(rule.message())
            .expect("add the foreign rule");
        ForeignRule(rule)
    }
}

impl Drop for ForeignRule {
    fn drop(&mut self) {
        if let Ok(mut s) = AuditSocket::open() {
            let _ = s.delete_rule(self.0.message());
        }
    }
}

#[test]
fn live_force_reconfigure_removes_foreign_rules_and_restore_puts_them_back() {
    let _guard = lock();
    let Some(mut observer) = free_session() else {
        return;
    };
    let rules_before = observer.rules().unwrap();
    let foreign = ForeignRule::add(AuditRule::syscall_exit_numbers(
        &[libc::SYS_getppid as u32],
        "oxquery-foreign-test",
    ));
    let with_foreign = observer.rules().unwrap();
    assert_eq!(with_foreign.len(), rules_before.len() + 1);
    assert!(with_foreign.contains(&foreign.0));

    let mut session = AuditSession::open().unwrap();
    let ours = AuditRule::syscall_exit(SyscallSet::Exec);
    assert!(session.add_rule(&ours).unwrap());
    assert_eq!(
        session.remove_existing_rules().unwrap(),
        rules_before.len() + 1
    );
    assert_eq!(observer.rules().unwrap(), [ours]);
    session.restore().unwrap();
    // Everything back, in the order it was in.
    assert_eq!(observer.rules().unwrap(), with_foreign);
    drop(session);
    drop(foreign);
    assert_eq!(observer.rules().unwrap(), rules_before);
}

#[test]
fn live_a_claimed_rule_that_was_there_already_is_removed_on_restore() {
    let _guard = lock();
    let Some(mut observer) = free_session() else {
        return;
    };
    let rules_before = observer.rules().unwrap();
    let rule = AuditRule::syscall_exit_numbers(&[libc::SYS_getppid as u32], "oxquery-claim-test");
    // Someone else's identical rule: a plain add leaves it to them.
    let foreign = ForeignRule::add(rule.clone());
    let mut session = AuditSession::open().unwrap();
    assert!(!session.add_rule(&rule).unwrap());
    session.restore().unwrap();
    assert!(observer.rules().unwrap().contains(&rule));
    // Claimed (--audit_force_unconfigure), it goes with our restore.
    let mut session = AuditSession::open().unwrap();
    assert!(!session.claim_rule(&rule).unwrap());
    assert_eq!(session.added_rules(), std::slice::from_ref(&rule));
    session.restore().unwrap();
    assert!(!observer.rules().unwrap().contains(&rule));
    assert_eq!(observer.rules().unwrap(), rules_before);
    drop(foreign);
}
