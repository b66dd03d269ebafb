//! MD5, SHA-1 and SHA-256 in one pass, only the ones asked for: the digests of the
//! `hash` table (files) and the `device_hash` table (files inside a device image).
//!
//! [`hash_reader`] reads a stream to its end, at most a given number of bytes: the limit
//! applies to the bytes actually read, so a file that grows while it is read, or a link
//! to `/dev/zero`, costs no more than the limit. [`Hasher`] is the same computation fed
//! piece by piece, for readers that hand out chunks through a callback.

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
    Ok(hasher.finish())
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
