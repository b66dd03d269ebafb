//! The daemon's pidfile: an exclusive lock that keeps a second osqueryd off the same
//! pidfile and database.
//!
//! The lock is `flock(2)` on the open file, so it disappears with the process however it
//! dies (a `kill -9` leaves no stale lock, only a stale pid text that the next daemon
//! overwrites).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A held lock; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct Pidfile {
    _file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum PidfileError {
    #[error("Pidfile::{path} is locked by a running osqueryd (pid {pid})", path = .path.display())]
    Running { path: PathBuf, pid: String },
    #[error("Could not open pidfile {path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Pidfile {
    /// Takes the lock on `path` and writes our pid into it.
    pub fn acquire(path: &Path) -> Result<Pidfile, PidfileError> {
        let io_err = |source| PidfileError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(io_err)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(PidfileError::Running {
                    path: path.to_owned(),
                    pid: pid.trim().to_owned(),
                });
            }
            return Err(io_err(err));
        }
        file.set_len(0).map_err(io_err)?;
        file.seek(SeekFrom::Start(0)).map_err(io_err)?;
        write!(file, "{}", std::process::id()).map_err(io_err)?;
        file.sync_all().map_err(io_err)?;
        Ok(Pidfile {
            _file: file,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`Pidfile::acquire`], and with `force` (`--force`), as osquery: when a running
    /// osqueryd holds the lock, that process is killed (SIGKILL) and the lock taken once
    /// it is gone. A holder that is not an osqueryd (its executable is neither this one
    /// nor named like `osqueryd`) is never killed: the refusal stands.
    pub fn acquire_forcing(path: &Path, force: bool) -> Result<Pidfile, PidfileError> {
        let (holder, pid_text) = match Pidfile::acquire(path) {
            Err(PidfileError::Running { pid, .. }) if force => match pid.parse::<i32>() {
                Ok(holder) if holder > 0 && is_osqueryd(holder) => (holder, pid),
                _ => {
                    return Err(PidfileError::Running {
                        path: path.to_owned(),
                        pid,
                    });
                }
            },
            other => return other,
        };
        // Before the status log runs (the pidfile comes first): straight to stderr.
        eprintln!("Killing the running osqueryd (pid {holder}) that holds the pidfile (--force)");
        // SAFETY: kill(2) on a pid read from the locked pidfile, checked to be an osqueryd.
        unsafe { libc::kill(holder, libc::SIGKILL) };
        // The lock goes with the process: wait for the kernel to let go of it.
        let deadline = std::time::Instant::now() + FORCE_WAIT;
        loop {
            match Pidfile::acquire(path) {
                Err(PidfileError::Running { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(PidfileError::Running { path, .. }) => {
                    return Err(PidfileError::Running {
                        path,
                        pid: pid_text,
                    });
                }
                other => return other,
            }
        }
    }
}

/// How long `--force` waits for the killed daemon to release the pidfile.
const FORCE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether `pid` runs osqueryd: this very executable, or one whose file name says
/// osqueryd (osquery checks the process name).
fn is_osqueryd(pid: i32) -> bool {
    let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    let ours = std::env::current_exe().ok();
    ours.as_deref() == Some(exe.as_path())
        || exe
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("osqueryd"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osqueryd.pidfile");
        let first = Pidfile::acquire(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        match Pidfile::acquire(&path) {
            Err(PidfileError::Running { pid, .. }) => {
                assert_eq!(pid, std::process::id().to_string())
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        drop(first);
        Pidfile::acquire(&path).unwrap();
    }

    #[test]
    fn force_never_kills_a_holder_that_is_not_osqueryd() {
        let Some(flock) = oxquery_test_support::require_tool("flock") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osqueryd.pidfile");
        // Another program holds the lock, with its pid in the file.
        let mut holder = std::process::Command::new(flock)
            .arg(&path)
            .args(["sleep", "60"])
            .spawn()
            .unwrap();
        let held = oxquery_test_support::wait_until(std::time::Duration::from_secs(10), || {
            matches!(Pidfile::acquire(&path), Err(PidfileError::Running { .. }))
        });
        assert!(held);
        std::fs::write(&path, holder.id().to_string()).unwrap();
        match Pidfile::acquire_forcing(&path, true) {
            Err(PidfileError::Running { pid, .. }) => assert_eq!(pid, holder.id().to_string()),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(
            holder.try_wait().unwrap().is_none(),
            "the holder was killed"
        );
        holder.kill().unwrap();
        holder.wait().unwrap();
    }

    #[test]
    fn a_stale_pid_text_does_not_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osqueryd.pidfile");
        std::fs::write(&path, "999999999").unwrap();
        let _lock = Pidfile::acquire(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
    }
}
