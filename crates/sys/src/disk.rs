//! Read-only access to disks and disk images: the partition table (MBR with extended
//! partitions, or GPT) laid out the way forensic tools list a volume.
//!
//! A [`Disk`] is a block device or a regular image file opened read-only; every read is a
//! positioned read (`pread`), so nothing about the file changes. [`Disk::volume`] returns
//! the slots of the volume in address order, as The Sleuth Kit's `mmls` shows them: the
//! partition-table structures themselves (`meta`), the partitions (`normal`), and the
//! gaps no partition covers (`unallocated`). A slot's `address` is its index in that list:
//! the number osquery's `device_*` tables call `partition`.
//!
//! Parsing never trusts the bytes: sizes and counts are bounded, sectors outside the disk
//! are skipped, and a damaged table yields fewer slots or none, never a panic.

use crate::safe_read::{FileKinds, OverLimit, Policy, SafeFile};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;

/// Most partitions taken from one table (GPT allows 128 by default; MBR chains are cut here
/// too, so a looping extended chain ends).
pub const MAX_PARTITIONS: usize = 256;

/// A block device or image file, read with positioned reads.
#[derive(Debug)]
pub struct Disk {
    file: File,
    size: u64,
    sector: u64,
}

/// What a volume slot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// A partition-table structure (MBR, GPT header, entry array, extended table).
    Meta,
    /// Space no partition covers.
    Unallocated,
    /// A partition.
    Normal,
}

impl SlotKind {
    /// The Sleuth Kit's flag bits for the slot (`TSK_VS_PART_FLAG_*`).
    pub fn flags(self) -> i64 {
        match self {
            SlotKind::Normal => 1,
            SlotKind::Unallocated => 2,
            SlotKind::Meta => 4,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            SlotKind::Normal => "normal",
            SlotKind::Unallocated => "unallocated",
            SlotKind::Meta => "meta",
        }
    }
}

/// One slot of the volume, in sectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub address: u32,
    pub kind: SlotKind,
    /// First sector.
    pub start: u64,
    /// Length in sectors.
    pub len: u64,
    pub description: String,
}

impl Disk {
    /// Opens `path` read-only through [`crate::safe_read`] (a FIFO or a terminal named as
    /// a device cannot block the open). Block devices use their logical sector size;
    /// image files 512 bytes.
    pub fn open(path: &Path) -> io::Result<Disk> {
        let devices = Policy {
            // Reads are positioned and bounded by the volume's layout, not by a limit.
            limit: u64::MAX,
            over_limit: OverLimit::Fail,
            kinds: FileKinds::RegularOrDevice,
            follow_symlinks: true,
            open_as: None,
        };
        let file = SafeFile::open(path, &devices)?.into_file();
        let meta = file.metadata()?;
        let mut sector = 512;
        let size = if meta.file_type().is_block_device() {
            let mut ssz: libc::c_int = 0;
            // SAFETY: BLKSSZGET writes one int through the pointer we pass.
            let rc = unsafe {
                libc::ioctl(
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    libc::BLKSSZGET,
                    &mut ssz,
                )
            };
            if rc == 0 && (512..=65536).contains(&ssz) {
                sector = ssz as u64;
            }
            // A block device's size is where seeking to its end lands.
            io::Seek::seek(&mut &file, io::SeekFrom::End(0))?
        } else if meta.is_file() {
            meta.len()
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a block device or regular file",
            ));
        };
        Ok(Disk { file, size, sector })
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Sector size in bytes.
    pub fn sector_size(&self) -> u64 {
        self.sector
    }

    /// Reads exactly `buf.len()` bytes at `offset`; a short read (past the end) is an error.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn sector_bytes(&self, lba: u64) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; self.sector as usize];
        let off = lba.checked_mul(self.sector)?;
        self.read_exact_at(&mut buf, off).ok()?;
        Some(buf)
    }

    /// The volume's slots, or `None` when there is no readable MBR or GPT.
    pub fn volume(&self) -> Option<Vec<Slot>> {
        let mbr = self.sector_bytes(0)?;
        if mbr.len() < 512 || mbr[510] != 0x55 || mbr[511] != 0xAA {
            return None;
        }
        let entries = mbr_entries(&mbr);
        let sectors = self.size / self.sector;
        let mut slots = if entries.iter().any(|e| e.kind == 0xEE) {
            self.gpt()?
        } else {
            self.dos(&entries)?
        };
        fill_gaps(&mut slots, sectors);
        for (i, s) in slots.iter_mut().enumerate() {
            s.address = i as u32;
        }
        Some(slots)
    }

    fn dos(&self, entries: &[MbrEntry]) -> Option<Vec<Slot>> {
        // A boot sector of a bare FAT/NTFS volume also ends in 55 AA; require sane entries.
        let sectors = self.size / self.sector;
        let valid: Vec<&MbrEntry> = entries.iter().filter(|e| e.kind != 0).collect();
        if valid.is_empty()
            || valid
                .iter()
                .any(|e| e.start == 0 || e.len == 0 || (e.status != 0 && e.status != 0x80))
        {
            return None;
        }
        let mut slots = vec![meta(0, 1, "Primary Table (#0)".into())];
        let mut table = 0;
        for e in entries.iter() {
            if e.kind == 0 {
                continue;
            }
            if e.start >= sectors && sectors > 0 {
                continue;
            }
            slots.push(Slot {
                address: 0,
                kind: SlotKind::Meta,
                start: e.start,
                len: e.len,
                description: String::new(),
            });
            let last = slots.last_mut()?;
            if is_extended(e.kind) {
                last.description = format!("{} (0x{:02x})", dos_type_name(e.kind), e.kind);
                // Logical partitions: a chain of extended boot records, each relative to
                // the start of the outer extended partition.
                let ext_base = e.start;
                let mut ebr = e.start;
                let mut seen = 0;
                while seen < MAX_PARTITIONS {
                    seen += 1;
                    table += 1;
                    let Some(sec) = self.sector_bytes(ebr) else {
                        break;
                    };
                    if sec[510] != 0x55 || sec[511] != 0xAA {
                        break;
                    }
                    slots.push(meta(ebr, 1, format!("Extended Table (#{table})")));
                    let inner = mbr_entries(&sec);
                    let mut next = None;
                    for le in inner.iter().take(2) {
                        if le.kind == 0 || le.len == 0 {
                            continue;
                        }
                        if is_extended(le.kind) {
                            let n = ext_base.checked_add(le.start)?;
                            slots.push(Slot {
                                address: 0,
                                kind: SlotKind::Meta,
                                start: n,
                                len: le.len,
                                description: format!(
                                    "{} (0x{:02x})",
                                    dos_type_name(le.kind),
                                    le.kind
                                ),
                            });
                            next = Some(n);
                        } else {
                            slots.push(Slot {
                                address: 0,
                                kind: SlotKind::Normal,
                                start: ebr.checked_add(le.start)?,
                                len: le.len,
                                description: format!(
                                    "{} (0x{:02x})",
                                    dos_type_name(le.kind),
                                    le.kind
                                ),
                            });
                        }
                    }
                    match next {
                        Some(n) if n > ebr => ebr = n,
                        _ => break,
                    }
                }
            } else {
                last.kind = SlotKind::Normal;
                last.description = format!("{} (0x{:02x})", dos_type_name(e.kind), e.kind);
            }
        }
        sort_slots(&mut slots);
        Some(slots)
    }

    fn gpt(&self) -> Option<Vec<Slot>> {
        let hdr = self.sector_bytes(1)?;
        if &hdr[0..8] != b"EFI PART" {
            return None;
        }
        let entries_lba = u64_at(&hdr, 72);
        let count = u32_at(&hdr, 80) as usize;
        let entry_size = u32_at(&hdr, 84) as usize;
        if !(128..=4096).contains(&entry_size) || !entry_size.is_power_of_two() || count == 0 {
            return None;
        }
        let count = count.min(MAX_PARTITIONS);
        let table_bytes = (count * entry_size) as u64;
        let table_sectors = table_bytes.div_ceil(self.sector);
        let mut table = vec![0u8; table_bytes as usize];
        self.read_exact_at(&mut table, entries_lba.checked_mul(self.sector)?)
            .ok()?;
        let sectors = self.size / self.sector;
        let mut slots = vec![
            meta(0, 1, "Safety Table".into()),
            meta(1, 1, "GPT Header".into()),
            meta(entries_lba, table_sectors, "Partition Table".into()),
        ];
        for entry in table.chunks_exact(entry_size) {
            if entry[0..16].iter().all(|b| *b == 0) {
                continue;
            }
            let first = u64_at(entry, 32);
            let last = u64_at(entry, 40);
            if last < first || (sectors > 0 && first >= sectors) {
                continue;
            }
            let name: Vec<u16> = entry[56..128]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|c| *c != 0)
                .collect();
            slots.push(Slot {
                address: 0,
                kind: SlotKind::Normal,
                start: first,
                len: last - first + 1,
                description: String::from_utf16_lossy(&name),
            });
        }
        sort_slots(&mut slots);
        Some(slots)
    }
}

fn meta(start: u64, len: u64, description: String) -> Slot {
    Slot {
        address: 0,
        kind: SlotKind::Meta,
        start,
        len,
        description,
    }
}

fn sort_slots(slots: &mut [Slot]) {
    // Stable: slots starting at the same sector keep the order they were found in.
    slots.sort_by_key(|s| s.start);
}

/// Adds an `Unallocated` slot for every stretch of sectors no partition covers (the table
/// structures do not count as cover), placed after the slots that start at or before it.
fn fill_gaps(slots: &mut Vec<Slot>, sectors: u64) {
    let mut covered: Vec<(u64, u64)> = slots
        .iter()
        .filter(|s| s.kind == SlotKind::Normal)
        .map(|s| (s.start, s.start.saturating_add(s.len)))
        .collect();
    covered.sort_unstable();
    let mut gaps = Vec::new();
    let mut pos = 0u64;
    for (start, end) in covered {
        if start > pos {
            gaps.push((pos, start - pos));
        }
        pos = pos.max(end);
    }
    if sectors > pos {
        gaps.push((pos, sectors - pos));
    }
    for (start, len) in gaps {
        let at = slots.partition_point(|s| s.start <= start);
        slots.insert(
            at,
            Slot {
                address: 0,
                kind: SlotKind::Unallocated,
                start,
                len,
                description: "Unallocated".into(),
            },
        );
    }
}

#[derive(Debug, Clone, Copy)]
struct MbrEntry {
    status: u8,
    kind: u8,
    start: u64,
    len: u64,
}

fn mbr_entries(sector: &[u8]) -> [MbrEntry; 4] {
    std::array::from_fn(|i| {
        let e = &sector[446 + 16 * i..462 + 16 * i];
        MbrEntry {
            status: e[0],
            kind: e[4],
            start: u64::from(u32_at(e, 8)),
            len: u64::from(u32_at(e, 12)),
        }
    })
}

fn is_extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0f | 0x85)
}

/// Names of common MBR partition types, worded like the forensic tools show them.
pub fn dos_type_name(kind: u8) -> &'static str {
    match kind {
        0x01 => "DOS FAT12",
        0x04 | 0x06 => "DOS FAT16",
        0x05 => "DOS Extended",
        0x07 => "NTFS / exFAT",
        0x0b => "Win95 FAT32",
        0x0c => "Win95 FAT32 (LBA)",
        0x0e => "Win95 FAT16 (LBA)",
        0x0f => "Win95 Extended",
        0x82 => "Linux Swap / Solaris x86",
        0x83 => "Linux",
        0x85 => "Linux Extended",
        0x8e => "Linux Logical Volume Manager",
        0xa5 => "FreeBSD",
        0xa6 => "OpenBSD",
        0xa9 => "NetBSD",
        0xaf => "Mac OS X HFS",
        0xee => "GPT Safety Partition",
        0xef => "EFI File System",
        0xfd => "Linux raid autodetect",
        _ => "Unknown Type",
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .map(|s| u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn image(bytes: &[(u64, &[u8])], size: u64) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(size).unwrap();
        for (off, data) in bytes {
            f.as_file().write_all_at(data, *off).unwrap();
        }
        f.flush().unwrap();
        f
    }

    fn mbr(entries: &[(u8, u32, u32)]) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        for (i, (kind, start, len)) in entries.iter().enumerate() {
            let e = &mut s[446 + 16 * i..462 + 16 * i];
            e[4] = *kind;
            e[8..12].copy_from_slice(&start.to_le_bytes());
            e[12..16].copy_from_slice(&len.to_le_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xAA;
        s
    }

    #[test]
    fn dos_with_logical_partitions() {
        // Primary at 2048 (2048 sectors), extended at 4096 holding one logical partition.
        let outer = mbr(&[(0x83, 2048, 2048), (0x05, 4096, 4096)]);
        let ebr = mbr(&[(0x83, 2048, 1024)]);
        let img = image(&[(0, &outer), (4096 * 512, &ebr)], 8192 * 512);
        let disk = Disk::open(img.path()).unwrap();
        let v = disk.volume().unwrap();
        let got: Vec<(SlotKind, u64, u64, &str)> = v
            .iter()
            .map(|s| (s.kind, s.start, s.len, s.description.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (SlotKind::Meta, 0, 1, "Primary Table (#0)"),
                (SlotKind::Unallocated, 0, 2048, "Unallocated"),
                (SlotKind::Normal, 2048, 2048, "Linux (0x83)"),
                (SlotKind::Meta, 4096, 4096, "DOS Extended (0x05)"),
                (SlotKind::Meta, 4096, 1, "Extended Table (#1)"),
                (SlotKind::Unallocated, 4096, 2048, "Unallocated"),
                (SlotKind::Normal, 6144, 1024, "Linux (0x83)"),
                (SlotKind::Unallocated, 7168, 1024, "Unallocated"),
            ]
        );
        assert!(v.iter().enumerate().all(|(i, s)| s.address as usize == i));
    }

    #[test]
    fn hostile_tables_give_none_or_bounded_lists() {
        // No signature, garbage, a truncated file, an extended chain pointing at itself.
        let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
        for (bytes, size) in [
            (vec![0u8; 512], 4096u64),
            (garbage.clone(), 4096),
            (mbr(&[(0x83, 2048, 2048)])[..300].to_vec(), 300),
        ] {
            let img = image(&[(0, &bytes)], size);
            assert_eq!(Disk::open(img.path()).unwrap().volume(), None);
        }
        let loop_ebr = mbr(&[(0x83, 1, 1), (0x05, 0, 10)]);
        let img = image(
            &[(0, &mbr(&[(0x05, 100, 100)])), (100 * 512, &loop_ebr)],
            300 * 512,
        );
        let v = Disk::open(img.path()).unwrap().volume().unwrap();
        assert!(v.len() < 20, "{v:?}");
        // A protective MBR whose GPT header is missing.
        let img = image(&[(0, &mbr(&[(0xee, 1, 100)]))], 200 * 512);
        assert_eq!(Disk::open(img.path()).unwrap().volume(), None);
        // A GPT header with an absurd entry table location.
        let mut hdr = vec![0u8; 512];
        hdr[..8].copy_from_slice(b"EFI PART");
        hdr[72..80].copy_from_slice(&u64::MAX.to_le_bytes());
        hdr[80..84].copy_from_slice(&128u32.to_le_bytes());
        hdr[84..88].copy_from_slice(&128u32.to_le_bytes());
        let img = image(&[(0, &mbr(&[(0xee, 1, 100)])), (512, &hdr)], 200 * 512);
        assert_eq!(Disk::open(img.path()).unwrap().volume(), None);
    }
}
