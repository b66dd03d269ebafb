//! The records of rpm's NDB package database (`Packages.db`, openSUSE's default since
//! rpm 4.15), read without librpm. The layout is rpm's `lib/backend/ndb/rpmpkg.c`; every
//! number is little-endian:
//!
//! * a 32-byte file header: magic `RpmP`, version 0, generation, the number of 4096-byte
//!   slot pages at the start of the file, the next package index;
//! * after it, 16-byte slots filling the slot pages: magic `Slot`, package index, offset
//!   and length of the package's blob in 16-byte blocks (offset 0: a free slot);
//! * each blob: a 16-byte head (magic `BlbS`, package index, time stamp, length), the
//!   header bytes, zero padding to a block boundary, and a 12-byte tail (Adler-32 of all
//!   that precedes it in the blob, the length again, magic `BlbE`).
//!
//! rpm's writers hold an exclusive `flock` while they change the file; we take a shared
//! one when we can get it promptly, and check each blob's magics, lengths and checksum
//! either way, so a blob being rewritten is skipped, never misread.

use super::{MAX_HEADER_BYTES, open};
use std::fs::File;
use std::ops::ControlFlow;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

const FILE_MAGIC: &[u8; 4] = b"RpmP";
const SLOT_MAGIC: &[u8; 4] = b"Slot";
const HEAD_MAGIC: &[u8; 4] = b"BlbS";
const TAIL_MAGIC: &[u8; 4] = b"BlbE";
const HEADER_SIZE: usize = 32;
const SLOT_SIZE: usize = 16;
const BLOCK: u64 = 16;
const PAGE: usize = 4096;
const HEAD: usize = 16;
const TAIL: usize = 12;

/// Why the file cannot be read as an NDB package database.
#[derive(Debug, thiserror::Error)]
pub enum NdbError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not an rpm NDB database: {0}")]
    Invalid(&'static str),
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Adler-32 (RFC 1950).
fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in bytes.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// Holds a shared `flock` on the file while it lives (none if it could not be had).
struct SharedLock<'f>(Option<&'f File>);

impl<'f> SharedLock<'f> {
    /// Tries for up to a second: a writer's transaction may be short; if it is not, the
    /// blob checks still keep torn records out.
    fn take(file: &'f File) -> SharedLock<'f> {
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            // SAFETY: flock on a descriptor this function's caller keeps open.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
                return SharedLock(Some(file));
            }
            if Instant::now() >= deadline {
                log::debug!("rpm NDB database is locked by a writer; reading without the lock");
                return SharedLock(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SharedLock<'_> {
    fn drop(&mut self) {
        if let Some(file) = self.0 {
            // SAFETY: as in `take`.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        }
    }
}

/// The blob at `offset`/`blocks` (in 16-byte blocks) of package `index`, checked;
/// `None` when anything does not match.
fn read_blob(file: &File, index: u32, offset: u64, blocks: u64) -> Option<Vec<u8>> {
    let len = blocks.checked_mul(BLOCK)?;
    if len < (HEAD + TAIL) as u64 || len > MAX_HEADER_BYTES as u64 {
        return None;
    }
    let mut raw = vec![0u8; len as usize];
    file.read_exact_at(&mut raw, offset.checked_mul(BLOCK)?)
        .ok()?;
    let body_len = le32(&raw, 12) as usize;
    let expected_blocks = (HEAD + body_len + TAIL).div_ceil(BLOCK as usize);
    let tail = raw.len() - TAIL;
    let ok = &raw[..4] == HEAD_MAGIC
        && le32(&raw, 4) == index
        && expected_blocks as u64 == blocks
        && le32(&raw, tail + 4) as usize == body_len
        && &raw[tail + 8..] == TAIL_MAGIC
        && le32(&raw, tail) == adler32(&raw[..tail]);
    ok.then(|| raw[HEAD..HEAD + body_len].to_vec())
}

/// Calls `visit` with every package blob of the NDB database at `path`, in slot order
/// (a blob that fails its checks is skipped with a debug log).
pub fn for_each_record(
    path: &Path,
    visit: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
) -> Result<(), NdbError> {
    let file = open(path)?;
    let _lock = SharedLock::take(&file);
    let mut header = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut header, 0)
        .map_err(|_| NdbError::Invalid("no file header"))?;
    if &header[..4] != FILE_MAGIC {
        return Err(NdbError::Invalid("bad magic"));
    }
    if le32(&header, 4) != 0 {
        return Err(NdbError::Invalid("unknown version"));
    }
    let file_len = file.metadata()?.len();
    let slot_pages = u64::from(le32(&header, 12));
    if slot_pages == 0 || slot_pages * PAGE as u64 > file_len {
        return Err(NdbError::Invalid("slot pages beyond the file"));
    }
    // Blobs live after the slot pages and inside the file.
    let first_block = slot_pages * PAGE as u64 / BLOCK;
    let file_blocks = file_len / BLOCK;
    let mut page = vec![0u8; PAGE];
    let mut skipped = 0usize;
    for number in 0..slot_pages {
        file.read_exact_at(&mut page, number * PAGE as u64)?;
        let start = if number == 0 { HEADER_SIZE } else { 0 };
        for slot in page[start..].chunks_exact(SLOT_SIZE) {
            if &slot[..4] != SLOT_MAGIC {
                return Err(NdbError::Invalid("bad slot"));
            }
            let (index, offset, blocks) = (
                le32(slot, 4),
                u64::from(le32(slot, 8)),
                u64::from(le32(slot, 12)),
            );
            if offset == 0 {
                continue;
            }
            let blob = (index != 0 && offset >= first_block && offset + blocks <= file_blocks)
                .then(|| read_blob(&file, index, offset, blocks))
                .flatten();
            match blob {
                Some(blob) => {
                    if visit(&blob).is_break() {
                        return Ok(());
                    }
                }
                None => skipped += 1,
            }
        }
    }
    if skipped > 0 {
        log::debug!(
            "{}: skipped {skipped} unreadable package blobs",
            path.display()
        );
    }
    Ok(())
}

/// Test support: an NDB file laid out as rpm's `rpmpkg.c` writes one.
#[cfg(test)]
pub(crate) fn build(blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut slots = vec![0u8; PAGE];
    let mut data = Vec::new();
    let mut next_block = (PAGE as u64) / BLOCK;
    slots[..4].copy_from_slice(FILE_MAGIC);
    slots[12..16].copy_from_slice(&1u32.to_le_bytes());
    slots[16..20].copy_from_slice(&(blobs.len() as u32 + 1).to_le_bytes());
    for (i, s) in slots[HEADER_SIZE..].chunks_exact_mut(SLOT_SIZE).enumerate() {
        s[..4].copy_from_slice(SLOT_MAGIC);
        let Some(blob) = blobs.get(i) else { continue };
        let index = i as u32 + 1;
        let mut raw = Vec::new();
        raw.extend_from_slice(HEAD_MAGIC);
        raw.extend_from_slice(&index.to_le_bytes());
        raw.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        raw.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        raw.extend_from_slice(blob);
        while !(raw.len() + TAIL).is_multiple_of(BLOCK as usize) {
            raw.push(0);
        }
        let sum = adler32(&raw);
        raw.extend_from_slice(&sum.to_le_bytes());
        raw.extend_from_slice(&(blob.len() as u32).to_le_bytes());
        raw.extend_from_slice(TAIL_MAGIC);
        let blocks = raw.len() as u64 / BLOCK;
        s[4..8].copy_from_slice(&index.to_le_bytes());
        s[8..12].copy_from_slice(&(next_block as u32).to_le_bytes());
        s[12..16].copy_from_slice(&(blocks as u32).to_le_bytes());
        next_block += blocks;
        data.extend_from_slice(&raw);
    }
    [slots, data].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(path: &Path) -> Result<Vec<Vec<u8>>, NdbError> {
        super::super::all_records(for_each_record, path)
    }

    #[test]
    fn adler32_matches_rfc_1950_examples() {
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(&vec![0xff; 100_000]), {
            let (mut a, mut b) = (1u64, 0u64);
            for _ in 0..100_000 {
                a = (a + 0xff) % 65521;
                b = (b + a) % 65521;
            }
            ((b << 16) | a) as u32
        });
    }

    #[test]
    fn reads_blobs_and_skips_damaged_ones() {
        let blobs: Vec<Vec<u8>> = (0..5u8)
            .map(|i| vec![i; 100 * usize::from(i) + 3])
            .collect();
        let good = build(&blobs);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Packages.db");
        std::fs::write(&path, &good).unwrap();
        assert_eq!(records(&path).unwrap(), blobs);
        // One flipped byte inside blob 2: its checksum fails, the others read.
        let mut bad = good.clone();
        let at = PAGE + HEAD + 3 + TAIL + 5 + HEAD + 10 + 3;
        bad[at] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert_eq!(records(&path).unwrap().len(), 4);
        // Cuts and flips anywhere: an error or fewer records, never a panic.
        for len in (0..good.len()).step_by(61) {
            std::fs::write(&path, &good[..len]).unwrap();
            if let Ok(r) = records(&path) {
                assert!(r.len() < blobs.len());
            }
        }
        for at in (0..good.len()).step_by(7) {
            let mut copy = good.clone();
            copy[at] ^= 0x5a;
            std::fs::write(&path, &copy).unwrap();
            if let Ok(r) = records(&path) {
                assert!(r.iter().all(|b| blobs.contains(b)), "flip at {at}");
            }
        }
    }
}
