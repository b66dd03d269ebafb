//! Starting one extension process as osquery does: `execve` of the binary with
//! `argv[0]` its path, the environment plus `OSQUERY_EXTENSION=<its own pid>`, and every
//! signal back to its default action. Besides, as osquery does not: stdin is
//! `/dev/null` (an extension of the shell must not read the user's typing), the
//! extension leads a process group of its own (a terminal's Ctrl-C for the shell does
//! not reach it, and stopping it reaches what it started), and it gets SIGTERM if the
//! thread that started it dies (a daemon killed with SIGKILL leaves no extension behind).

use std::ffi::{CString, OsStr};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use oxquery_sys::exec::ForkEnv;

/// osquery's variable telling a process it was started as an extension.
pub const EXTENSION_ENV: &str = "OSQUERY_EXTENSION";

/// Forks and execs `exe` with `args`; the child's pid once `execve` succeeded, or why it
/// failed (the child reports `execve`'s error through a close-on-exec pipe, as
/// `std::process::Command` does).
pub(crate) fn spawn(exe: &Path, args: &[&OsStr]) -> io::Result<libc::pid_t> {
    let c = |bytes: &[u8]| {
        CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let exe_c = c(exe.as_os_str().as_bytes())?;
    let mut argv: Vec<CString> = vec![exe_c.clone()];
    for a in args {
        argv.push(c(a.as_bytes())?);
    }
    // `OSQUERY_EXTENSION=<the child's pid>` is written by the child.
    let mut env = ForkEnv::new(&[EXTENSION_ENV], &[], EXTENSION_ENV)?;

    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());

    let null = c(b"/dev/null")?;
    // SAFETY: open and pipe2 with valid arguments; the descriptors are closed below.
    let (devnull, read_end, write_end) = unsafe {
        let devnull = libc::open(null.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if devnull < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut fds = [0; 2];
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            let e = io::Error::last_os_error();
            libc::close(devnull);
            return Err(e);
        }
        (devnull, fds[0], fds[1])
    };
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let last_signal = libc::SIGRTMAX();
    // SAFETY: fork; the child only makes async-signal-safe calls (setpgid, prctl,
    // getppid, sigaction, sigprocmask, dup2, getpid, execve, write, _exit) and writes
    // into memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = io::Error::last_os_error();
        // SAFETY: our own descriptors.
        unsafe {
            libc::close(devnull);
            libc::close(read_end);
            libc::close(write_end);
        }
        return Err(e);
    }
    if pid == 0 {
        // SAFETY: see above; `env` was built before the fork.
        unsafe {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0);
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            for signal in 1..=last_signal {
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::dup2(devnull, 0);
            env.write_own_pid();
            libc::execve(exe_c.as_ptr(), argv_ptrs.as_ptr(), env.as_ptr());
            let errno = *libc::__errno_location();
            let bytes = errno.to_ne_bytes();
            libc::write(write_end, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127);
        }
    }
    drop(env);
    // SAFETY: our own descriptors; read into a 4-byte buffer.
    let failed = unsafe {
        libc::close(devnull);
        libc::close(write_end);
        let mut buf = [0u8; 4];
        let mut got = 0usize;
        loop {
            let n = libc::read(read_end, buf.as_mut_ptr().add(got).cast(), 4 - got);
            if n > 0 {
                got += n as usize;
                if got == 4 {
                    break;
                }
            } else if n == 0 || *libc::__errno_location() != libc::EINTR {
                break;
            }
        }
        libc::close(read_end);
        (got == 4).then(|| i32::from_ne_bytes(buf))
    };
    if let Some(errno) = failed {
        // The child exits at once: reap it.
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok(pid)
}
