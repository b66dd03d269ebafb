//! The records of a Berkeley DB hash database (the `Packages` file of rpm before 4.16),
//! read page by page without libdb.
//!
//! Layout (Berkeley DB's `dbinc/db_page.h`): page 0 is the metadata page (magic
//! `0x061561` at byte 12, which also gives the byte order; page size at 20; last page
//! number at 32; encryption algorithm at 24). Every page starts with a 26-byte header
//! (next page at 16, entry count at 20, free-area offset at 22, page type at 25) followed
//! by the entry offsets (`u16` each). On a hash page the entries alternate key, value;
//! an entry is a type byte and either the bytes inline (`H_KEYDATA`, running to the
//! previous entry) or a reference to a chain of overflow pages (`H_OFFPAGE`: first page
//! at +4, total length at +8), each of which holds `hf_offset` bytes after its header.
//! Pages are read in file order; rpm's record order does not matter to callers.

use super::{MAX_HEADER_BYTES, open};
use std::fs::File;
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::Path;

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASH: u8 = 13;
const H_KEYDATA: u8 = 1;
const H_OFFPAGE: u8 = 3;

/// Why the file cannot be read as a hash database.
#[derive(Debug, thiserror::Error)]
pub enum BdbError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a Berkeley DB hash database")]
    NotHash,
    #[error("unsupported Berkeley DB: {0}")]
    Unsupported(&'static str),
}

struct Db {
    file: File,
    page_size: usize,
    last_page: u32,
    big_endian: bool,
}

impl Db {
    fn u16_at(&self, b: &[u8], at: usize) -> Option<u16> {
        let raw: [u8; 2] = b.get(at..at + 2)?.try_into().ok()?;
        Some(if self.big_endian {
            u16::from_be_bytes(raw)
        } else {
            u16::from_le_bytes(raw)
        })
    }

    fn u32_at(&self, b: &[u8], at: usize) -> Option<u32> {
        let raw: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
        Some(if self.big_endian {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        })
    }

    fn read_page(&self, number: u32, page: &mut [u8]) -> std::io::Result<()> {
        self.file
            .read_exact_at(page, u64::from(number) * self.page_size as u64)
    }

    /// The bytes of an overflow chain starting at `first`, `None` when the chain is
    /// broken, loops or does not add up to `total`.
    fn overflow(&self, first: u32, total: usize) -> Option<Vec<u8>> {
        if total > MAX_HEADER_BYTES {
            return None;
        }
        let mut out = Vec::with_capacity(total.min(1 << 20));
        let mut page = vec![0u8; self.page_size];
        let mut number = first;
        // A chain visits each page at most once: a page seen again is a loop.
        let mut seen = std::collections::HashSet::new();
        loop {
            if number == 0 || number > self.last_page || !seen.insert(number) {
                return None;
            }
            self.read_page(number, &mut page).ok()?;
            if page[25] != P_OVERFLOW {
                return None;
            }
            let used = usize::from(self.u16_at(&page, 22)?);
            out.extend_from_slice(page.get(PAGE_HEADER..PAGE_HEADER + used)?);
            if out.len() >= total {
                out.truncate(total);
                return Some(out);
            }
            number = self.u32_at(&page, 16)?;
        }
    }
}

/// Calls `visit` with the value of every key/value pair in the hash database at `path`
/// (a value that cannot be read whole is skipped with a debug log).
pub fn for_each_record(
    path: &Path,
    visit: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
) -> Result<(), BdbError> {
    let file = open(path)?;
    let mut meta = [0u8; 72];
    file.read_exact_at(&mut meta, 0)
        .map_err(|_| BdbError::NotHash)?;
    let big_endian = match [
        u32::from_le_bytes(meta[12..16].try_into().unwrap()),
        u32::from_be_bytes(meta[12..16].try_into().unwrap()),
    ] {
        [HASH_MAGIC, _] => false,
        [_, HASH_MAGIC] => true,
        _ => return Err(BdbError::NotHash),
    };
    let mut db = Db {
        file,
        page_size: 0,
        last_page: 0,
        big_endian,
    };
    let page_size = db.u32_at(&meta, 20).unwrap_or(0) as usize;
    if !(512..=65536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(BdbError::NotHash);
    }
    if meta[24] != 0 {
        return Err(BdbError::Unsupported("encrypted"));
    }
    let file_pages = db.file.metadata()?.len() / page_size as u64;
    db.page_size = page_size;
    // The metadata's last page, but never past the end of the file (a truncated copy).
    db.last_page = db
        .u32_at(&meta, 32)
        .unwrap_or(0)
        .min(u32::try_from(file_pages.saturating_sub(1)).unwrap_or(u32::MAX));

    let mut page = vec![0u8; page_size];
    let mut skipped = 0usize;
    for number in 1..=db.last_page {
        if db.read_page(number, &mut page).is_err() {
            break;
        }
        if !matches!(page[25], P_HASH | P_HASH_UNSORTED) {
            continue;
        }
        let entries = usize::from(db.u16_at(&page, 20).unwrap_or(0));
        let offset = |i: usize| db.u16_at(&page, PAGE_HEADER + 2 * i).map(usize::from);
        // Values are the odd entries; an entry ends where the previous one starts.
        for i in (1..entries).step_by(2) {
            let (Some(start), Some(end)) = (offset(i), offset(i - 1)) else {
                skipped += 1;
                continue;
            };
            if start < PAGE_HEADER || start >= end || end > page_size {
                skipped += 1;
                continue;
            }
            // rpm keeps its next package number under key 0: not a package.
            let key = offset(i - 1)
                .zip(if i >= 2 {
                    offset(i - 2)
                } else {
                    Some(page_size)
                })
                .and_then(|(s, e)| page.get(s..e));
            if key == Some(&[H_KEYDATA, 0, 0, 0, 0][..]) {
                continue;
            }
            let item = &page[start..end];
            let flow = match item[0] {
                H_KEYDATA => visit(&item[1..]),
                H_OFFPAGE => {
                    let chain = db
                        .u32_at(item, 4)
                        .zip(db.u32_at(item, 8))
                        .and_then(|(first, total)| db.overflow(first, total as usize));
                    match chain {
                        Some(bytes) => visit(&bytes),
                        None => {
                            skipped += 1;
                            ControlFlow::Continue(())
                        }
                    }
                }
                _ => {
                    skipped += 1;
                    ControlFlow::Continue(())
                }
            };
            if flow.is_break() {
                return Ok(());
            }
        }
    }
    if skipped > 0 {
        log::debug!("{}: skipped {skipped} unreadable records", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_test_support::require_tool;
    use std::process::Command;

    /// A hash database written by Berkeley DB's own `db_load` (the independent writer)
    /// holding `values` under keys 1.., plus rpm's key-0 counter; `None` without the tool.
    fn db_load(dir: &Path, page_size: u32, values: &[Vec<u8>]) -> Option<std::path::PathBuf> {
        let tool = require_tool("db5.3_load")?;
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut dump = format!(
            "VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize={page_size}\nHEADER=END\n"
        );
        dump += &format!(
            " {}\n {}\n",
            hex(&0u32.to_le_bytes()),
            hex(&99u32.to_le_bytes())
        );
        for (i, v) in values.iter().enumerate() {
            dump += &format!(" {}\n {}\n", hex(&(i as u32 + 1).to_le_bytes()), hex(v));
        }
        dump += "DATA=END\n";
        let input = dir.join("dump.txt");
        std::fs::write(&input, dump).unwrap();
        let path = dir.join(format!("Packages{page_size}"));
        let out = Command::new(tool)
            .arg("-f")
            .arg(&input)
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(path)
    }

    fn values() -> Vec<Vec<u8>> {
        // Small values stay on the hash page; large ones span overflow chains.
        (0..40u32)
            .map(|i| {
                let len = [1usize, 9, 200, 700, 3000, 20000][i as usize % 6];
                (0..len).map(|j| (j as u32 * 31 + i) as u8).collect()
            })
            .collect()
    }

    fn records(path: &Path) -> Result<Vec<Vec<u8>>, BdbError> {
        super::super::all_records(for_each_record, path)
    }

    #[test]
    fn reads_every_value_db_load_wrote() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = values();
        expected.sort();
        for page_size in [512, 4096, 65536] {
            let Some(path) = db_load(dir.path(), page_size, &values()) else {
                return;
            };
            let mut got = records(&path).unwrap();
            got.sort();
            assert_eq!(got, expected, "page size {page_size}");
        }
    }

    #[test]
    fn truncated_and_corrupted_files_give_errors_or_fewer_records() {
        let dir = tempfile::tempdir().unwrap();
        let Some(path) = db_load(dir.path(), 512, &values()) else {
            return;
        };
        let good = std::fs::read(&path).unwrap();
        let bad = dir.path().join("bad");
        for len in (0..good.len()).step_by(1009) {
            std::fs::write(&bad, &good[..len]).unwrap();
            if let Ok(r) = records(&bad) {
                assert!(r.len() <= 40);
            }
        }
        // Flip bytes across the file (page headers, offsets, overflow links).
        for at in (0..good.len()).step_by(211) {
            let mut copy = good.clone();
            copy[at] ^= 0xa5;
            std::fs::write(&bad, &copy).unwrap();
            let _ = records(&bad);
        }
        // An overflow chain that points back at itself ends instead of looping.
        let mut looped = good.clone();
        for page in (512..looped.len()).step_by(512) {
            if looped[page + 25] == P_OVERFLOW {
                let own = (page / 512) as u32;
                looped[page + 16..page + 20].copy_from_slice(&own.to_le_bytes());
                looped[page + 22..page + 24].copy_from_slice(&1u16.to_le_bytes());
            }
        }
        std::fs::write(&bad, &looped).unwrap();
        // Only values kept on hash pages remain (the 20000-byte ones surely overflow).
        let r = records(&bad).unwrap();
        assert!(!r.is_empty() && r.len() < 40, "{}", r.len());
        assert!(r.iter().all(|v| v.len() < 20000 && values().contains(v)));
        std::fs::write(&bad, b"not a database").unwrap();
        assert!(matches!(records(&bad), Err(BdbError::NotHash)));
    }
}
