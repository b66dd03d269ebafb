//! An RPM header as the package database stores it: the index entry count and data length
//! (two big-endian `u32`), the index (16 bytes per entry: tag, type, offset, count, all
//! big-endian) and the data store the offsets point into. Only the header's own layout is
//! read here; what a tag means is the caller's business.
//!
//! Every access is bounds-checked against the data store: a truncated or corrupted blob
//! gives [`HeaderError`] at parse time or `None` for the tag, never a panic.

/// The tags the package tables read (rpm's `rpmtag.h` numbers).
pub mod tag {
    pub const SHA1HEADER: u32 = 269;
    pub const NAME: u32 = 1000;
    pub const VERSION: u32 = 1001;
    pub const RELEASE: u32 = 1002;
    pub const EPOCH: u32 = 1003;
    pub const INSTALLTIME: u32 = 1008;
    pub const SIZE: u32 = 1009;
    pub const VENDOR: u32 = 1011;
    pub const GROUP: u32 = 1016;
    pub const ARCH: u32 = 1022;
    pub const OLDFILENAMES: u32 = 1027;
    pub const FILESIZES: u32 = 1028;
    pub const FILEMODES: u32 = 1030;
    pub const FILEDIGESTS: u32 = 1035;
    pub const FILEUSERNAME: u32 = 1039;
    pub const FILEGROUPNAME: u32 = 1040;
    pub const SOURCERPM: u32 = 1044;
    pub const DIRINDEXES: u32 = 1116;
    pub const BASENAMES: u32 = 1117;
    pub const DIRNAMES: u32 = 1118;
    pub const LONGFILESIZES: u32 = 5008;
    pub const LONGSIZE: u32 = 5009;
    pub const FILEDIGESTALGO: u32 = 5011;
}

/// rpm's limits on a header (`hdrchkTags`, `hdrchkData`): larger counts are corruption.
const MAX_ENTRIES: u32 = 0xffff;
const MAX_DATA: u32 = 0x1000_0000;

const TYPE_CHAR: u32 = 1;
const TYPE_INT8: u32 = 2;
const TYPE_INT16: u32 = 3;
const TYPE_INT32: u32 = 4;
const TYPE_INT64: u32 = 5;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// Why a blob is not a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header shorter than its {0}")]
    Truncated(&'static str),
    #[error("header claims {entries} index entries and {data} data bytes, over rpm's limits")]
    TooLarge { entries: u32, data: u32 },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: u32,
    count: u32,
}

/// A parsed header borrowing its blob.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl<'a> Header<'a> {
    /// Checks the blob's sizes; the entries themselves are checked when a tag is read.
    /// Bytes after the data store (none in a database record) are ignored.
    pub fn parse(blob: &'a [u8]) -> Result<Header<'a>, HeaderError> {
        if blob.len() < 8 {
            return Err(HeaderError::Truncated("preamble"));
        }
        let (entries, data) = (be32(blob, 0), be32(blob, 4));
        if entries > MAX_ENTRIES || data > MAX_DATA {
            return Err(HeaderError::TooLarge { entries, data });
        }
        let index_end = 8 + entries as usize * 16;
        let index = blob
            .get(8..index_end)
            .ok_or(HeaderError::Truncated("index"))?;
        let data = blob
            .get(index_end..index_end + data as usize)
            .ok_or(HeaderError::Truncated("data store"))?;
        Ok(Header { index, data })
    }

    fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.index.chunks_exact(16).map(|e| Entry {
            tag: be32(e, 0),
            kind: be32(e, 4),
            offset: be32(e, 8),
            count: be32(e, 12),
        })
    }

    /// The entry of `tag`. An installed header may hold a tag twice (inside its immutable
    /// region and again after it); as in rpm, the later entry wins.
    fn entry(&self, tag: u32) -> Option<Entry> {
        self.entries().filter(|e| e.tag == tag).last()
    }

    /// Whether the header has an entry for `tag`.
    pub fn has(&self, tag: u32) -> bool {
        self.entries().any(|e| e.tag == tag)
    }

    fn data_from(&self, e: &Entry) -> Option<&'a [u8]> {
        self.data.get(e.offset as usize..)
    }

    /// The string of `tag`: a STRING, or the first (untranslated) value of an
    /// I18NSTRING or STRING_ARRAY. `None` when absent, of another type or unterminated.
    pub fn string(&self, tag: u32) -> Option<&'a [u8]> {
        let e = self.entry(tag)?;
        if !matches!(e.kind, TYPE_STRING | TYPE_I18NSTRING | TYPE_STRING_ARRAY) || e.count == 0 {
            return None;
        }
        let rest = self.data_from(&e)?;
        let end = memchr::memchr(0, rest)?;
        Some(&rest[..end])
    }

    /// Every string of a STRING_ARRAY or I18NSTRING `tag` (a STRING gives one).
    /// `None` when absent, of another type, or running past the data store.
    pub fn strings(&self, tag: u32) -> Option<Vec<&'a [u8]>> {
        let e = self.entry(tag)?;
        if !matches!(e.kind, TYPE_STRING | TYPE_I18NSTRING | TYPE_STRING_ARRAY) {
            return None;
        }
        let count = if e.kind == TYPE_STRING {
            1
        } else {
            e.count as usize
        };
        let mut rest = self.data_from(&e)?;
        // Each string takes at least its NUL: a larger count cannot fit.
        if count > rest.len() {
            return None;
        }
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let end = memchr::memchr(0, rest)?;
            out.push(&rest[..end]);
            rest = &rest[end + 1..];
        }
        Some(out)
    }

    /// Every value of an integer `tag` (CHAR, INT8, INT16, INT32 or INT64), unsigned as
    /// rpm stores them. `None` when absent, of another type, or running past the store.
    pub fn integers(&self, tag: u32) -> Option<Vec<u64>> {
        let e = self.entry(tag)?;
        let width = match e.kind {
            TYPE_CHAR | TYPE_INT8 => 1,
            TYPE_INT16 => 2,
            TYPE_INT32 => 4,
            TYPE_INT64 => 8,
            _ => return None,
        };
        let bytes = (e.count as usize).checked_mul(width)?;
        let raw = self.data_from(&e)?.get(..bytes)?;
        Some(
            raw.chunks_exact(width)
                .map(|c| c.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
                .collect(),
        )
    }

    /// The first value of an integer `tag` (see [`Header::integers`]).
    pub fn integer(&self, tag: u32) -> Option<u64> {
        let e = self.entry(tag)?;
        if e.count == 0 {
            return None;
        }
        let one = Entry { count: 1, ..e };
        let width = match one.kind {
            TYPE_CHAR | TYPE_INT8 => 1,
            TYPE_INT16 => 2,
            TYPE_INT32 => 4,
            TYPE_INT64 => 8,
            _ => return None,
        };
        let raw = self.data_from(&one)?.get(..width)?;
        Some(raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }
}

/// Test support: building header fixtures.
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    /// A value to store under a tag.
    pub enum Data<'a> {
        String(&'a str),
        I18n(&'a str),
        Strings(Vec<&'a [u8]>),
        Int16(Vec<u16>),
        Int32(Vec<u32>),
        Int64(Vec<u64>),
    }

    /// A header blob holding `entries` in order (rpm's alignment of integers kept).
    pub fn header(entries: &[(u32, Data<'_>)]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data: Vec<u8> = Vec::new();
        for (tag, value) in entries {
            let (kind, align, count, bytes): (u32, usize, usize, Vec<u8>) = match value {
                Data::String(s) => (TYPE_STRING, 1, 1, [s.as_bytes(), b"\0"].concat()),
                Data::I18n(s) => (TYPE_I18NSTRING, 1, 1, [s.as_bytes(), b"\0"].concat()),
                Data::Strings(v) => (
                    TYPE_STRING_ARRAY,
                    1,
                    v.len(),
                    v.iter()
                        .flat_map(|s| s.iter().copied().chain([0]))
                        .collect(),
                ),
                Data::Int16(v) => (
                    TYPE_INT16,
                    2,
                    v.len(),
                    v.iter().flat_map(|x| x.to_be_bytes()).collect(),
                ),
                Data::Int32(v) => (
                    TYPE_INT32,
                    4,
                    v.len(),
                    v.iter().flat_map(|x| x.to_be_bytes()).collect(),
                ),
                Data::Int64(v) => (
                    TYPE_INT64,
                    8,
                    v.len(),
                    v.iter().flat_map(|x| x.to_be_bytes()).collect(),
                ),
            };
            while !data.len().is_multiple_of(align) {
                data.push(0);
            }
            for field in [*tag, kind, data.len() as u32, count as u32] {
                index.extend_from_slice(&field.to_be_bytes());
            }
            data.extend_from_slice(&bytes);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&((index.len() / 16) as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend_from_slice(&index);
        blob.extend_from_slice(&data);
        blob
    }
}

#[cfg(test)]
mod tests {
    use super::build::{Data, header};
    use super::*;

    fn sample() -> Vec<u8> {
        header(&[
            (tag::NAME, Data::String("pkg")),
            (tag::EPOCH, Data::Int32(vec![3])),
            (tag::GROUP, Data::I18n("System/Base")),
            (tag::FILEMODES, Data::Int16(vec![0o100644, 0o40755])),
            (tag::BASENAMES, Data::Strings(vec![b"a", b"b\xff"])),
            (tag::LONGFILESIZES, Data::Int64(vec![1 << 40, 0])),
            (tag::NAME, Data::String("later")),
        ])
    }

    #[test]
    fn reads_each_type_and_the_later_duplicate() {
        let blob = sample();
        let h = Header::parse(&blob).unwrap();
        assert_eq!(h.string(tag::NAME), Some(&b"later"[..]));
        assert_eq!(h.integer(tag::EPOCH), Some(3));
        assert_eq!(h.string(tag::GROUP), Some(&b"System/Base"[..]));
        assert_eq!(h.integers(tag::FILEMODES), Some(vec![0o100644, 0o40755]));
        assert_eq!(h.strings(tag::BASENAMES), Some(vec![&b"a"[..], b"b\xff"]));
        assert_eq!(h.integers(tag::LONGFILESIZES), Some(vec![1 << 40, 0]));
        assert_eq!(h.string(tag::VENDOR), None);
        assert_eq!(h.integer(tag::NAME), None, "a string is not a number");
        assert_eq!(h.string(tag::EPOCH), None, "a number is not a string");
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_or_none_never_a_panic() {
        let blob = sample();
        for len in 0..blob.len() {
            if let Ok(h) = Header::parse(&blob[..len]) {
                panic!("a header cut at {len} of {} parsed: {h:?}", blob.len());
            }
        }
        // Corrupt each byte in turn (offsets, counts, types, NULs) and read every tag.
        for i in 0..blob.len() {
            for flip in [0xff, 0x80, 0x01] {
                let mut bad = blob.clone();
                bad[i] ^= flip;
                if let Ok(h) = Header::parse(&bad) {
                    for t in [
                        tag::NAME,
                        tag::EPOCH,
                        tag::GROUP,
                        tag::FILEMODES,
                        tag::BASENAMES,
                        tag::LONGFILESIZES,
                    ] {
                        let _ = (h.string(t), h.strings(t), h.integer(t), h.integers(t));
                    }
                }
            }
        }
        assert!(matches!(
            Header::parse(&[0, 1, 0, 0, 0, 0, 0, 0]),
            Err(HeaderError::TooLarge { .. })
        ));
        // A count far beyond the store is refused without allocating for it.
        let mut huge = header(&[(tag::BASENAMES, Data::Strings(vec![b"x"]))]);
        huge[8 + 12..8 + 16].copy_from_slice(&u32::MAX.to_be_bytes());
        let h = Header::parse(&huge).unwrap();
        assert_eq!(h.strings(tag::BASENAMES), None);
    }
}
