//! For the tests that use the kernel's audit subsystem (root, initial namespaces): this
//! crate's live tests and, with the `audit-testing` feature, oxquery-events'. They change
//! global state, so a test binary's audit tests hold [`lock`]; and a stand-in audit
//! daemon ([`StandIn`]) lets them see what happens when a daemon holds the socket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use oxquery_test_support::{missing, require, wait_until};

use super::{AuditSession, AuditStatus};

/// Serialises the tests of one test binary that touch the kernel's audit state.
static AUDIT_STATE: Mutex<()> = Mutex::new(());

/// Set in the environment of the stand-in audit daemon.
const STAND_IN_ENV: &str = "OXQUERY_AUDIT_STAND_IN";

/// Held while a test touches the kernel's audit state.
pub fn lock() -> MutexGuard<'static, ()> {
    AUDIT_STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A session, when this machine lets us use audit and nobody live holds the socket.
pub fn free_session() -> Option<AuditSession> {
    let mut session = require(
        "audit netlink socket (root, initial namespaces)",
        AuditSession::open(),
    )?;
    if let Some(owner) = session.owner().expect("owner")
        && owner.alive
        && owner.pid != session.our_pid()
    {
        return missing(&format!(
            "the audit socket is held by live pid {} ({:?})",
            owner.pid, owner.exe
        ));
    }
    Some(session)
}

/// The settings audit sessions may change, to compare before and after.
pub fn settings(s: &AuditStatus) -> (u32, u32, u32, u32) {
    (s.enabled, s.pid, s.backlog_limit, s.backlog_wait_time)
}

/// `program` (this test binary, or a link to it) set to run the one test `test` with
/// `env` set, its output discarded: a child that plays a role for that test.
pub fn rerun_test(program: &Path, test: &str, env: &str) -> Command {
    let mut command = Command::new(program);
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, "1")
        .stdout(Stdio::null());
    command
}

/// Whether this process is a [`StandIn`]: the test it runs then plays the daemon.
pub fn is_stand_in() -> bool {
    std::env::var_os(STAND_IN_ENV).is_some()
}

/// A stand-in audit daemon: this test binary re-executed as `<dir>/auditd` to run one
/// test, which sees [`is_stand_in`] and holds the audit socket until its stdin closes.
pub struct StandIn {
    child: Child,
    dir: PathBuf,
}

impl StandIn {
    /// Starts the stand-in running `test` (its full name in this binary).
    pub fn start(test: &str) -> StandIn {
        let exe = std::env::current_exe().unwrap();
        let dir = exe
            .parent()
            .unwrap()
            .join(format!("audit-stand-in-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let link = dir.join("auditd");
        if std::fs::hard_link(&exe, &link).is_err() {
            std::fs::copy(&exe, &link).unwrap();
        }
        let child = rerun_test(&link, test, STAND_IN_ENV)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        StandIn { child, dir }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The program it runs as.
    pub fn exe(&self) -> PathBuf {
        self.dir.join("auditd")
    }

    /// Closes its stdin and waits for it to release the socket and exit.
    pub fn stop(&mut self) {
        drop(self.child.stdin.take());
        let exited = wait_until(Duration::from_secs(10), || {
            matches!(self.child.try_wait(), Ok(Some(_)))
        });
        if !exited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
