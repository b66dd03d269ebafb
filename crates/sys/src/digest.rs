//! MD5, SHA-1 and SHA-256 in one pass, only the ones asked for: the digests of the
//! `hash` table (files) and the `device_hash` table (files inside a device image).
//!
//! [`hash_reader`] reads a stream to its end, at most a given number of bytes: the limit
//! applies to the bytes actually read, so a file that grows while it is read, or a link
//! to `/dev/zero`, costs no more than the limit. [`hash_file`] opens a path a user may
//! control through [`crate::safe_read`] first and notices a file truncated while it is
//! read. [`Hasher`] is the same computation fed piece by piece, for readers that hand
//! out chunks through a callback.

use crate::safe_read::{Policy, Root, SafeFile};
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::io::{self, Read};

/// Which digests to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Wanted {
    pub md5: bool,
    pub sha1: bool,
    pub sha256: bool,
}

impl Wanted {
    pub const ALL: Wanted = Wanted {
        md5: true,
        sha1: true,
        sha256: true,
    };

    pub fn any(self) -> bool {
        self.md5 || self.sha1 || self.sha256
    }
}

/// Lowercase hex digests; `None` for the ones not wanted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Digests {
    pub md5: Option<String>,
    pub sha1: Option<String>,
    pub sha256: Option<String>,
}

impl Digests {
    /// Empty strings for the wanted digests (osquery's value for a file it does not read).
    pub fn empty(wanted: Wanted) -> Digests {
        Digests {
            md5: wanted.md5.then(String::new),
            sha1: wanted.sha1.then(String::new),
            sha256: wanted.sha256.then(String::new),
        }
    }
}

/// Why a stream has no digests.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the read was stopped")]
    Stopped,
    /// A regular file ended before the size it had when it was opened: it was truncated
    /// while it was read, and a digest of the part read would describe no version of it.
    #[error("the file shrank while it was read: {read} of its {expected} bytes")]
    Shrank { expected: u64, read: u64 },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The wanted digests of a stream fed in pieces.
#[derive(Debug, Clone, Default)]
pub struct Hasher {
    md5: Option<Md5>,
    sha1: Option<Sha1>,
    sha256: Option<Sha256>,
}

impl Hasher {
    pub fn new(wanted: Wanted) -> Hasher {
        Hasher {
            md5: wanted.md5.then(Md5::new),
            sha1: wanted.sha1.then(Sha1::new),
            sha256: wanted.sha256.then(Sha256::new),
        }
    }

    pub fn update(&mut self, piece: &[u8]) {
        if let Some(h) = &mut self.md5 {
            h.update(piece);
        }
        if let Some(h) = &mut self.sha1 {
            h.update(piece);
        }
        if let Some(h) = &mut self.sha256 {
            h.update(piece);
        }
    }

    pub fn finish(self) -> Digests {
        Digests {
            md5: self.md5.map(|h| hex::encode(h.finalize())),
            sha1: self.sha1.map(|h| hex::encode(h.finalize())),
            sha256: self.sha256.map(|h| hex::encode(h.finalize())),
        }
    }
}

/// The wanted digests of everything `reader` yields, reading `buf.len()` bytes at a
/// time into `buf`; [`Error::TooLarge`] as soon as more than `limit` bytes came, and
/// [`Error::Stopped`] once `stop` (checked before each read) says so.
pub fn hash_reader(
    reader: &mut impl Read,
    wanted: Wanted,
    limit: u64,
    stop: &dyn Fn() -> bool,
    buf: &mut [u8],
) -> Result<Digests, Error> {
    hash_counting(reader, wanted, limit, stop, buf).map(|(digests, _)| digests)
}

/// The wanted digests of the file at `path`, opened through [`crate::safe_read`] under
/// `policy`: a FIFO, socket or device is an error at once (unless the policy allows
/// devices), and at most `policy.limit` bytes are read ([`Error::TooLarge`] past it, or
/// at the open when the file's size is already over it).
///
/// A regular file is read up to the size it had at the open, as osquery reads `st_size`
/// bytes: what is appended meanwhile is not part of the digest. Ending earlier is
/// [`Error::Shrank`]. A kernel file (`/proc`, size 0) is read to its end within the limit,
/// and one that would wait for more (`/proc/kmsg`) is an [`io::ErrorKind::WouldBlock`]
/// error rather than a wait.
pub fn hash_file(
    path: &std::path::Path,
    policy: &Policy,
    wanted: Wanted,
    stop: &dyn Fn() -> bool,
    buf: &mut [u8],
) -> Result<Digests, Error> {
    hash_file_in(&Root::host(), path, policy, wanted, stop, buf)
}

/// [`hash_file`] with `path` resolved inside `root` (another process's mount namespace).
pub fn hash_file_in(
    root: &Root,
    path: &std::path::Path,
    policy: &Policy,
    wanted: Wanted,
    stop: &dyn Fn() -> bool,
    buf: &mut [u8],
) -> Result<Digests, Error> {
    let limit = policy.limit;
    let too_large = |e: io::Error| match e.kind() {
        io::ErrorKind::FileTooLarge => Error::TooLarge { limit },
        _ => Error::Io(e),
    };
    let file = SafeFile::open_in(root, path, policy).map_err(too_large)?;
    let counted = match file.size() {
        Some(expected) => {
            let (digests, read) =
                hash_counting(&mut file.take(expected), wanted, limit, stop, buf)?;
            if read < expected {
                return Err(Error::Shrank { expected, read });
            }
            Ok(digests)
        }
        None => hash_counting(&mut { file }, wanted, limit, stop, buf).map(|(d, _)| d),
    };
    counted.map_err(|e| match e {
        Error::Io(e) => too_large(e),
        e => e,
    })
}

/// [`hash_reader`], also returning how many bytes were hashed.
fn hash_counting(
    reader: &mut impl Read,
    wanted: Wanted,
    limit: u64,
    stop: &dyn Fn() -> bool,
    buf: &mut [u8],
) -> Result<(Digests, u64), Error> {
    let mut hasher = Hasher::new(wanted);
    let mut total: u64 = 0;
    loop {
        if stop() {
            return Err(Error::Stopped);
        }
        let n = match reader.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        total = total.saturating_add(n as u64);
        if total > limit {
            return Err(Error::TooLarge { limit });
        }
        hasher.update(&buf[..n]);
    }
    Ok((hasher.finish(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    #[test]
    fn known_vectors() {
        let mut buf = vec![0; 7];
        let d = hash_reader(&mut &b""[..], Wanted::ALL, u64::MAX, &never, &mut buf).unwrap();
        assert_eq!(d.md5.unwrap(), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(d.sha1.unwrap(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            d.sha256.unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let d = hash_reader(&mut &b"abc"[..], Wanted::ALL, u64::MAX, &never, &mut buf).unwrap();
        assert_eq!(d.md5.unwrap(), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(d.sha1.unwrap(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(
            d.sha256.unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // A buffer smaller than the input splits it across updates; same digest.
        let text = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        let d = hash_reader(&mut &text[..], Wanted::ALL, u64::MAX, &never, &mut buf).unwrap();
        assert_eq!(
            d.sha256.unwrap(),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(d.sha1.unwrap(), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
        // Pieces fed by hand give the same digests as the reader.
        let mut h = Hasher::new(Wanted::ALL);
        for piece in text.chunks(5) {
            h.update(piece);
        }
        let whole = hash_reader(&mut &text[..], Wanted::ALL, u64::MAX, &never, &mut buf).unwrap();
        assert_eq!(h.finish(), whole);
    }

    #[test]
    fn only_the_wanted_digests() {
        let wanted = Wanted {
            md5: false,
            sha1: true,
            sha256: false,
        };
        let d = hash_reader(&mut &b"abc"[..], wanted, 3, &never, &mut [0; 64]).unwrap();
        assert_eq!(
            d,
            Digests {
                md5: None,
                sha1: Some("a9993e364706816aba3e25717850c26c9cd0d89d".into()),
                sha256: None
            }
        );
        assert_eq!(
            Digests::empty(wanted),
            Digests {
                md5: None,
                sha1: Some(String::new()),
                sha256: None
            }
        );
        assert!(!Wanted::default().any());
    }

    #[test]
    fn the_limit_counts_bytes_read() {
        let mut buf = vec![0; 1000];
        // Exactly at the limit is fine; one byte more is not.
        assert!(hash_reader(&mut &[7u8; 4096][..], Wanted::ALL, 4096, &never, &mut buf).is_ok());
        let err =
            hash_reader(&mut &[7u8; 4097][..], Wanted::ALL, 4096, &never, &mut buf).unwrap_err();
        assert!(matches!(err, Error::TooLarge { limit: 4096 }));
        // An endless stream (what a link to /dev/zero gives) stops at the limit.
        let err =
            hash_reader(&mut io::repeat(0), Wanted::ALL, 1 << 20, &never, &mut buf).unwrap_err();
        assert!(matches!(err, Error::TooLarge { .. }));
    }

    /// The first word of a coreutils `*sum` line for `path`: an independent digest.
    fn coreutils(tool: &str, path: &std::path::Path) -> String {
        let out = std::process::Command::new(tool).arg(path).output().unwrap();
        assert!(out.status.success(), "{tool} failed");
        let text = String::from_utf8(out.stdout).unwrap();
        text.split_whitespace().next().unwrap().to_owned()
    }

    /// Runs `f` on a thread and waits for its answer: a liveness check (a hang fails the
    /// test instead of stalling it), not a timing, so the bound is generous.
    fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the hash did not return: a read blocks or never ends")
    }

    fn pseudo_random(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    const READ_MAX: u64 = 50 << 20;

    #[test]
    fn a_file_hashes_as_coreutils_does() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, pseudo_random(100_000)).unwrap();
        let d = hash_file(
            &p,
            &Policy::user_file(READ_MAX),
            Wanted::ALL,
            &never,
            &mut [0; 4096],
        )
        .unwrap();
        assert_eq!(d.md5.unwrap(), coreutils("md5sum", &p));
        assert_eq!(d.sha1.unwrap(), coreutils("sha1sum", &p));
        assert_eq!(d.sha256.unwrap(), coreutils("sha256sum", &p));
        // Over the limit by its size: refused before any read.
        let err = hash_file(
            &p,
            &Policy::user_file(99_999),
            Wanted::ALL,
            &never,
            &mut [0; 64],
        );
        assert!(
            matches!(err, Err(Error::TooLarge { limit: 99_999 })),
            "{err:?}"
        );
    }

    #[test]
    fn a_fifo_and_an_endless_proc_file_return_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(fifo.as_os_str()))
            .unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = within_10s(move || {
            hash_file(
                &fifo,
                &Policy::user_file(READ_MAX),
                Wanted::ALL,
                &never,
                &mut [0; 4096],
            )
        })
        .unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        // /proc/self/pagemap says size 0 and would give hundreds of gigabytes.
        let err = within_10s(move || {
            let pagemap = std::path::Path::new("/proc/self/pagemap");
            hash_file(
                pagemap,
                &Policy::user_file(1000),
                Wanted::ALL,
                &never,
                &mut [0; 4096],
            )
        })
        .unwrap_err();
        assert!(matches!(err, Error::TooLarge { limit: 1000 }), "{err:?}");
    }

    /// The file changes between two reads (the stop check runs before each one).
    fn hash_changed_midway(change: impl Fn(&std::path::Path)) -> (Result<Digests, Error>, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let original = pseudo_random(64 * 1024);
        std::fs::write(&p, &original).unwrap();
        let reads = std::cell::Cell::new(0);
        let stop = || {
            reads.set(reads.get() + 1);
            if reads.get() == 3 {
                change(&p);
            }
            false
        };
        let policy = Policy::user_file(READ_MAX);
        (
            hash_file(&p, &policy, Wanted::ALL, &stop, &mut [0; 4096]),
            original,
        )
    }

    #[test]
    fn a_file_truncated_while_hashed_has_no_digest() {
        let (result, _) = hash_changed_midway(|p| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .unwrap()
                .set_len(10_000)
                .unwrap()
        });
        let err = result.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Shrank {
                    expected: 65_536,
                    read: 10_000
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("shrank"), "{err}");
    }

    #[test]
    fn a_file_appended_while_hashed_hashes_as_it_was_opened() {
        let (result, original) = hash_changed_midway(|p| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(&[7; 5000]).unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let as_opened = dir.path().join("as-opened");
        std::fs::write(&as_opened, &original).unwrap();
        assert_eq!(
            result.unwrap().sha256.unwrap(),
            coreutils("sha256sum", &as_opened)
        );
    }

    #[test]
    fn a_stopped_read_ends_between_reads() {
        let reads = std::cell::Cell::new(0u32);
        let stop = || {
            reads.set(reads.get() + 1);
            reads.get() > 3
        };
        let mut buf = vec![0; 1000];
        let err =
            hash_reader(&mut io::repeat(1), Wanted::ALL, u64::MAX, &stop, &mut buf).unwrap_err();
        assert!(matches!(err, Error::Stopped));
        assert_eq!(reads.get(), 4);
    }
}
