//! Fast reads of small kernel-generated files.
//!
//! `/proc` files report a size of 0, so `std::fs::read` grows its buffer and issues extra
//! `read`/`statx` calls. Reading straight into a reused buffer measured 10-25 % faster on
//! a full process scan.
//!
//! Most kernel files are `seq_file`s that hand out at most about a page per `read`, so a
//! short read does not mean the end: [`FileReader::read`] reads until `read` returns 0.
//! Per-process files the kernel renders in one piece (`stat`, `status`, `io`,
//! `cmdline`, `cgroup`) are complete after the first short read, and
//! [`FileReader::read_generated_parts`] saves that last empty `read` on the hot path.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// An `O_PATH` descriptor of the directory `path`, to open files relative to it (a
/// process's `/proc` directory, a root that paths resolve inside).
pub fn open_dir_path(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated path; the descriptor returned is ours to own.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A reusable buffer for reading kernel files. One per scan; not shared across threads.
#[derive(Debug)]
pub struct FileReader {
    buf: Vec<u8>,
    path: Vec<u8>,
}

impl Default for FileReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FileReader {
    pub fn new() -> Self {
        FileReader {
            buf: Vec::with_capacity(16 * 1024),
            path: Vec::with_capacity(256),
        }
    }

    /// Reads the whole file at `path` and returns its bytes (valid until the next call).
    pub fn read(&mut self, path: impl AsRef<Path>) -> io::Result<&[u8]> {
        self.set_path(path.as_ref().as_os_str().as_bytes());
        self.read_current(false)
    }

    /// Reads the file whose path is the concatenation of `parts` (avoids a `PathBuf`).
    pub fn read_parts(&mut self, parts: &[&[u8]]) -> io::Result<&[u8]> {
        self.set_path_parts(parts);
        self.read_current(false)
    }

    /// Like [`FileReader::read_parts`], for files the kernel renders in one piece on the
    /// first `read` (per-process `stat`, `status`, `io`, `cmdline`, `cgroup`): a read
    /// shorter than the buffer is taken as the end. Never use it for tables such as
    /// `/proc/net/tcp` or `/proc/<pid>/maps`, which come a page at a time.
    pub fn read_generated_parts(&mut self, parts: &[&[u8]]) -> io::Result<&[u8]> {
        self.set_path_parts(parts);
        self.read_current(true)
    }

    fn set_path_parts(&mut self, parts: &[&[u8]]) {
        self.path.clear();
        for p in parts {
            self.path.extend_from_slice(p);
        }
        self.path.push(0);
    }

    /// Reads a symbolic link's target; `None` if it cannot be read.
    pub fn read_link_parts(&mut self, parts: &[&[u8]]) -> io::Result<&[u8]> {
        self.path.clear();
        for p in parts {
            self.path.extend_from_slice(p);
        }
        self.path.push(0);
        let cpath = CStr::from_bytes_with_nul(&self.path)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        read_link_into(&mut self.buf, libc::AT_FDCWD, cpath)?;
        Ok(&self.buf)
    }

    fn set_path(&mut self, bytes: &[u8]) {
        self.path.clear();
        self.path.extend_from_slice(bytes);
        self.path.push(0);
    }

    /// Reads `name` in the directory `dir` (a file rendered in one piece, as
    /// [`FileReader::read_generated_parts`]); resolving only the last component saves
    /// the walk of the directory's path on every read.
    pub fn read_generated_at(&mut self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<&[u8]> {
        // SAFETY: name is NUL-terminated and dir is an open descriptor.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        self.read_fd(fd, true)
    }

    /// Reads the symbolic link `name` in the directory `dir`.
    pub fn read_link_at(&mut self, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<&[u8]> {
        read_link_into(&mut self.buf, dir.as_raw_fd(), name)?;
        Ok(&self.buf)
    }

    fn read_current(&mut self, short_read_is_end: bool) -> io::Result<&[u8]> {
        let cpath = CStr::from_bytes_with_nul(&self.path)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: cpath is a valid NUL-terminated string.
        let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        self.read_fd(fd, short_read_is_end)
    }

    /// Reads the open `fd` to its end (or its first short read) and closes it.
    fn read_fd(&mut self, fd: libc::c_int, short_read_is_end: bool) -> io::Result<&[u8]> {
        self.buf.clear();
        let result = loop {
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(self.buf.capacity().max(4096));
            }
            let spare = self.buf.capacity() - self.buf.len();
            // SAFETY: writes at most `spare` bytes into the buffer's spare capacity.
            let n =
                unsafe { libc::read(fd, self.buf.as_mut_ptr().add(self.buf.len()).cast(), spare) };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break Err(err);
            }
            if n == 0 {
                break Ok(());
            }
            // SAFETY: the kernel initialised n more bytes.
            unsafe { self.buf.set_len(self.buf.len() + n as usize) };
            if short_read_is_end && (n as usize) < spare {
                break Ok(());
            }
        };
        // SAFETY: fd is ours and open.
        unsafe { libc::close(fd) };
        result.map(|()| &self.buf[..])
    }
}

/// `readlinkat(dir, name)` into `buf` (`AT_FDCWD` for a path).
fn read_link_into(buf: &mut Vec<u8>, dir: libc::c_int, name: &CStr) -> io::Result<()> {
    buf.clear();
    buf.reserve(libc::PATH_MAX as usize);
    // SAFETY: name is NUL-terminated; buf has PATH_MAX bytes of spare capacity.
    let n =
        unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.capacity()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel wrote n bytes.
    unsafe { buf.set_len(n as usize) };
    Ok(())
}

/// Parses an unsigned decimal integer prefix of `bytes` (`None` if there is none).
pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let mut n: u64 = 0;
    let mut seen = false;
    for &b in bytes {
        if !b.is_ascii_digit() {
            break;
        }
        seen = true;
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    seen.then_some(n)
}

/// Parses a signed decimal integer (`-` allowed).
pub fn parse_i64(bytes: &[u8]) -> Option<i64> {
    match bytes.split_first() {
        Some((b'-', rest)) => parse_u64(rest).map(|n| -(n as i64)),
        _ => parse_u64(bytes).map(|n| n as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_whole_regular_file_larger_than_a_page() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&content).unwrap();
        let mut r = FileReader::new();
        assert_eq!(r.read(f.path()).unwrap(), &content[..]);
        // The buffer is reused for a second, smaller file.
        assert_eq!(
            r.read("/proc/self/stat")
                .unwrap()
                .split(|b| *b == b' ')
                .next()
                .unwrap(),
            std::process::id().to_string().as_bytes()
        );
    }

    #[test]
    fn reads_large_proc_file_completely() {
        let mut r = FileReader::new();
        let ours = r.read("/proc/self/maps").unwrap().to_vec();
        let std = std::fs::read("/proc/self/maps").unwrap();
        // Both list the same mappings (the heap may grow between the reads).
        assert_eq!(
            ours.split(|b| *b == b'\n').next(),
            std.split(|b| *b == b'\n').next()
        );
    }

    #[test]
    fn reads_seq_files_that_come_a_page_at_a_time() {
        // Enough listeners that /proc/net/tcp spans several pages.
        let listeners: Vec<_> = (0..120)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let mut r = FileReader::new();
        let ours = r.read("/proc/self/net/tcp").unwrap().to_vec();
        assert!(ours.len() > 3 * 4096, "only {} bytes", ours.len());
        let lines = ours
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        assert!(
            lines > listeners.len(),
            "{lines} lines for {} listeners",
            listeners.len()
        );
    }

    #[test]
    fn generated_files_read_in_one_piece() {
        let mut r = FileReader::new();
        let ours = r
            .read_generated_parts(&[b"/proc/self/", b"status"])
            .unwrap()
            .to_vec();
        let std = std::fs::read("/proc/self/status").unwrap();
        assert_eq!(
            ours.split(|b| *b == b'\n').next(),
            std.split(|b| *b == b'\n').next()
        );
        assert!(ours.ends_with(b"\n"));
    }

    #[test]
    fn missing_file_is_an_error() {
        let mut r = FileReader::new();
        assert!(r.read("/proc/does/not/exist").is_err());
    }

    #[test]
    fn parses_integers() {
        assert_eq!(parse_u64(b"123 rest"), Some(123));
        assert_eq!(parse_u64(b"x"), None);
        assert_eq!(parse_i64(b"-5"), Some(-5));
        assert_eq!(parse_u64(b"99999999999999999999999"), None);
    }
}
