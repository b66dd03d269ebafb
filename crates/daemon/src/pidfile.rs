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
