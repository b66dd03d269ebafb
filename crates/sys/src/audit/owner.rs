//! Who owns the audit socket: the process the kernel's status names as the audit daemon,
//! whether it still runs, and whether it is an audit daemon we must leave alone.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Executable names of programs whose job is to consume the audit socket. Another
/// program holding it (a crashed tool, a test) may be replaced; one of these is left
/// alone unless the caller insists:
/// * `auditd`: the Linux Audit daemon;
/// * `systemd-journald`: journald's audit reader (`systemd-journald-audit.socket`);
/// * `go-audit`: Slack's audit daemon;
/// * `auditbeat`, `agentbeat`: Elastic's audit shipper (standalone, and as run by
///   Elastic Agent);
/// * `osqueryd`, `osqueryi`: another osquery (or oxquery) agent; two agents taking the
///   socket from each other is the fight the issue forbids.
pub const AUDIT_DAEMONS: &[&str] = &[
    "auditd",
    "systemd-journald",
    "go-audit",
    "auditbeat",
    "agentbeat",
    "osqueryd",
    "osqueryi",
];

/// The process registered as audit daemon in the kernel status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOwner {
    pub pid: u32,
    /// The process exists and is not a zombie. (A dead owner's pid may have been reused;
    /// the kernel's own liveness probe then decides when we try to take the socket.)
    pub alive: bool,
    /// `/proc/<pid>/comm`, when readable.
    pub comm: Option<Vec<u8>>,
    /// `/proc/<pid>/exe` without a ` (deleted)` suffix, when readable.
    pub exe: Option<PathBuf>,
    /// The [`AUDIT_DAEMONS`] name the executable matches, if any.
    pub daemon: Option<&'static str>,
}

impl AuditOwner {
    /// Whether it is a live audit daemon (one we do not take the socket from).
    pub fn is_live_daemon(&self) -> bool {
        self.alive && self.daemon.is_some()
    }
}

/// Describes the process `pid` (from the status) as the audit socket's owner, reading
/// `<proc>/<pid>` (`proc` is `/proc` outside tests).
pub fn describe_owner(proc: &Path, pid: u32) -> AuditOwner {
    let dir = proc.join(pid.to_string());
    let alive = std::fs::read(dir.join("stat"))
        .ok()
        .and_then(|stat| crate::proc::parse_stat(&stat).map(|(_, s)| s.state))
        .is_some_and(|state| state != b'Z' && state != b'X');
    let comm = std::fs::read(dir.join("comm")).ok().map(|mut c| {
        while c.last() == Some(&b'\n') {
            c.pop();
        }
        c
    });
    let exe = std::fs::read_link(dir.join("exe")).ok().map(strip_deleted);
    let daemon = exe.as_deref().and_then(daemon_name);
    AuditOwner {
        pid,
        alive,
        comm,
        exe,
        daemon,
    }
}

/// The [`AUDIT_DAEMONS`] entry an executable path's file name is, if any.
pub fn daemon_name(exe: &Path) -> Option<&'static str> {
    let name = exe.file_name()?;
    AUDIT_DAEMONS
        .iter()
        .copied()
        .find(|d| name == OsStr::new(d))
}

/// An executable replaced on disk (a package upgrade) reads as `/usr/sbin/auditd (deleted)`.
fn strip_deleted(path: PathBuf) -> PathBuf {
    let bytes = path.as_os_str().as_bytes();
    match bytes.strip_suffix(b" (deleted)") {
        Some(stem) => PathBuf::from(OsStr::from_bytes(stem)),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_names_by_executable_file_name() {
        assert_eq!(daemon_name(Path::new("/usr/sbin/auditd")), Some("auditd"));
        assert_eq!(
            daemon_name(Path::new("/usr/lib/systemd/systemd-journald")),
            Some("systemd-journald")
        );
        assert_eq!(daemon_name(Path::new("/opt/go-audit")), Some("go-audit"));
        assert_eq!(daemon_name(Path::new("/usr/bin/auditd-helper")), None);
        assert_eq!(daemon_name(Path::new("/usr/bin/bash")), None);
        assert_eq!(daemon_name(Path::new("/")), None);
        assert_eq!(
            strip_deleted(PathBuf::from("/usr/sbin/auditd (deleted)")),
            PathBuf::from("/usr/sbin/auditd")
        );
    }

    #[test]
    fn describes_this_process_and_an_absent_one() {
        let me = describe_owner(Path::new("/proc"), std::process::id());
        assert!(me.alive);
        assert_eq!(me.exe, std::env::current_exe().ok());
        assert_eq!(me.daemon, None);
        assert!(!me.is_live_daemon());
        // A fake /proc entry: a zombie auditd is not alive.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("4242");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(
            p.join("stat"),
            b"4242 (auditd) Z 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0",
        )
        .unwrap();
        std::os::unix::fs::symlink("/usr/sbin/auditd (deleted)", p.join("exe")).unwrap();
        let z = describe_owner(dir.path(), 4242);
        assert!(!z.alive);
        assert_eq!(z.daemon, Some("auditd"));
        assert!(!z.is_live_daemon());
        // A pid with no entry at all.
        let gone = describe_owner(dir.path(), 1);
        assert!(!gone.alive);
        assert_eq!((gone.comm, gone.exe, gone.daemon), (None, None, None));
    }
}
