//! A small read-only reader for ext2, ext3 and ext4 file systems inside a [`Disk`].
//!
//! Enough to list a file system and read files by inode, the way a forensic tool looks at
//! an unmounted volume: superblock, group descriptors (32- and 64-bit), inodes (with the
//! high uid/gid halves and the ext4 creation time), directories (linear blocks; hashed
//! directories are read through their leaf blocks), and file data through extent trees,
//! classic direct/indirect block maps, or inline data. Holes and unwritten extents read
//! as zeros.
//!
//! Nothing on disk is trusted: every block number is checked against the file system,
//! extent trees are depth- and fan-out-bounded, directory records are bounds-checked, and
//! a damaged structure is an `InvalidData` error for that one object.

use crate::disk::Disk;
use std::io;

const SUPERBLOCK_OFFSET: u64 = 1024;
const MAGIC: u16 = 0xEF53;
const INCOMPAT_EXTENTS: u32 = 0x40;
const INCOMPAT_64BIT: u32 = 0x80;
const INCOMPAT_FLEX_BG: u32 = 0x200;
const COMPAT_HAS_JOURNAL: u32 = 0x4;
const FLAG_EXTENTS: u32 = 0x0008_0000;
const FLAG_INLINE_DATA: u32 = 0x1000_0000;
/// Largest directory read (bytes); bigger ones are cut with an error.
const MAX_DIR_BYTES: u64 = 256 * 1024 * 1024;
/// Deepest extent tree accepted (ext4 itself allows 5).
const MAX_EXTENT_DEPTH: u32 = 5;

/// The root directory's inode.
pub const ROOT_INODE: u64 = 2;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn le16(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .unwrap_or(0)
}
fn le32(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}

/// An opened ext2/3/4 file system.
#[derive(Debug)]
pub struct ExtFs<'d> {
    disk: &'d Disk,
    /// Byte offset of the file system on the disk.
    offset: u64,
    block_size: u64,
    blocks: u64,
    inodes: u64,
    inodes_per_group: u64,
    inode_size: u64,
    /// Inode table block of each group.
    inode_tables: Vec<u64>,
    kind: &'static str,
}

/// The metadata of one inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    pub number: u64,
    /// `st_mode`: type and permission bits.
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub atime: i64,
    pub mtime: i64,
    /// Inode change time.
    pub ctime: i64,
    /// Creation time (ext4 large inodes only).
    pub crtime: Option<i64>,
    pub links: u16,
    pub flags: u32,
    block: [u8; 60],
}

impl Inode {
    /// The file type as the forensic tools name it: regular, directory, symlink, block,
    /// character, fifo, socket or unknown.
    pub fn type_name(&self) -> &'static str {
        match self.mode & 0o170000 {
            0o100000 => "regular",
            0o040000 => "directory",
            0o120000 => "symlink",
            0o060000 => "block",
            0o020000 => "character",
            0o010000 => "fifo",
            0o140000 => "socket",
            _ => "unknown",
        }
    }
    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }
    pub fn is_regular(&self) -> bool {
        self.mode & 0o170000 == 0o100000
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub inode: u64,
    pub name: Vec<u8>,
}

/// A run of file blocks: `len` blocks from logical block `logical` at physical `physical`
/// (`None`: reads as zeros).
#[derive(Debug, Clone, Copy)]
struct Run {
    logical: u64,
    physical: Option<u64>,
    len: u64,
}

impl<'d> ExtFs<'d> {
    /// Opens the file system that starts `offset` bytes into `disk`, or `None` when there is
    /// no valid ext superblock there.
    pub fn open(disk: &'d Disk, offset: u64) -> Option<ExtFs<'d>> {
        let mut sb = [0u8; 1024];
        disk.read_exact_at(&mut sb, offset.checked_add(SUPERBLOCK_OFFSET)?)
            .ok()?;
        if le16(&sb, 56) != MAGIC {
            return None;
        }
        let log = le32(&sb, 24);
        if log > 6 {
            return None;
        }
        let block_size = 1024u64 << log;
        let incompat = le32(&sb, 96);
        let compat = le32(&sb, 92);
        let is64 = incompat & INCOMPAT_64BIT != 0;
        let blocks = u64::from(le32(&sb, 4))
            | if is64 {
                u64::from(le32(&sb, 0x150)) << 32
            } else {
                0
            };
        let inodes = u64::from(le32(&sb, 0));
        let first_data_block = u64::from(le32(&sb, 20));
        let blocks_per_group = u64::from(le32(&sb, 32));
        let inodes_per_group = u64::from(le32(&sb, 40));
        let inode_size = if le32(&sb, 76) == 0 {
            128
        } else {
            u64::from(le16(&sb, 88))
        };
        let desc_size = if is64 {
            u64::from(le16(&sb, 254)).max(32)
        } else {
            32
        };
        if blocks == 0
            || blocks_per_group == 0
            || inodes_per_group == 0
            || !(128..=block_size).contains(&inode_size)
            || !inode_size.is_power_of_two()
            || desc_size > block_size
            || first_data_block >= blocks
        {
            return None;
        }
        let groups = (blocks - first_data_block).div_ceil(blocks_per_group);
        if groups.checked_mul(inodes_per_group)? < inodes || groups > 1 << 24 {
            return None;
        }
        let gdt_bytes = groups.checked_mul(desc_size)?;
        let mut gdt = vec![0u8; usize::try_from(gdt_bytes).ok()?];
        let gdt_offset = (first_data_block + 1).checked_mul(block_size)?;
        disk.read_exact_at(&mut gdt, offset.checked_add(gdt_offset)?)
            .ok()?;
        let inode_tables = gdt
            .chunks_exact(desc_size as usize)
            .map(|d| {
                let lo = u64::from(le32(d, 8));
                let hi = if is64 && desc_size >= 64 {
                    u64::from(le32(d, 0x28))
                } else {
                    0
                };
                lo | hi << 32
            })
            .collect();
        let kind = if incompat & (INCOMPAT_EXTENTS | INCOMPAT_64BIT | INCOMPAT_FLEX_BG) != 0 {
            "ext4"
        } else if compat & COMPAT_HAS_JOURNAL != 0 {
            "ext3"
        } else {
            "ext2"
        };
        Some(ExtFs {
            disk,
            offset,
            block_size,
            blocks,
            inodes,
            inodes_per_group,
            inode_size,
            inode_tables,
            kind,
        })
    }

    /// `ext2`, `ext3` or `ext4`, judged by the feature flags.
    pub fn kind(&self) -> &'static str {
        self.kind
    }
    pub fn block_size(&self) -> u64 {
        self.block_size
    }
    pub fn block_count(&self) -> u64 {
        self.blocks
    }
    pub fn inode_count(&self) -> u64 {
        self.inodes
    }
    /// Byte offset of the file system on its disk.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn read_block(&self, block: u64, buf: &mut [u8]) -> io::Result<()> {
        if block == 0 || block >= self.blocks {
            return Err(bad("block number outside the file system"));
        }
        let off = block
            .checked_mul(self.block_size)
            .and_then(|b| b.checked_add(self.offset))
            .ok_or_else(|| bad("block offset overflows"))?;
        self.disk.read_exact_at(buf, off)
    }

    /// Reads inode `number`.
    pub fn inode(&self, number: u64) -> io::Result<Inode> {
        if number == 0 || number > self.inodes {
            return Err(bad("inode number out of range"));
        }
        let index = number - 1;
        let group = (index / self.inodes_per_group) as usize;
        let table = *self
            .inode_tables
            .get(group)
            .ok_or_else(|| bad("inode group out of range"))?;
        if table == 0 || table >= self.blocks {
            return Err(bad("inode table outside the file system"));
        }
        let within = (index % self.inodes_per_group) * self.inode_size;
        let off = table
            .checked_mul(self.block_size)
            .and_then(|b| b.checked_add(within))
            .and_then(|b| b.checked_add(self.offset))
            .ok_or_else(|| bad("inode offset overflows"))?;
        let mut raw = vec![0u8; self.inode_size as usize];
        self.disk.read_exact_at(&mut raw, off)?;
        let extra = if self.inode_size > 128 {
            u64::from(le16(&raw, 128))
        } else {
            0
        };
        // i_crtime sits at 144..148, inside the extra area when i_extra_isize reaches it.
        let crtime =
            (extra >= 20 && 148 <= self.inode_size).then(|| i64::from(le32(&raw, 144) as i32));
        let mut block = [0u8; 60];
        block.copy_from_slice(&raw[40..100]);
        Ok(Inode {
            number,
            mode: le16(&raw, 0),
            uid: u32::from(le16(&raw, 2)) | u32::from(le16(&raw, 120)) << 16,
            gid: u32::from(le16(&raw, 24)) | u32::from(le16(&raw, 122)) << 16,
            size: u64::from(le32(&raw, 4)) | u64::from(le32(&raw, 108)) << 32,
            atime: i64::from(le32(&raw, 8) as i32),
            ctime: i64::from(le32(&raw, 12) as i32),
            mtime: i64::from(le32(&raw, 16) as i32),
            crtime,
            links: le16(&raw, 26),
            flags: le32(&raw, 32),
            block,
        })
    }

    /// The block runs of a file, in logical order.
    fn runs(&self, inode: &Inode) -> io::Result<Vec<Run>> {
        let mut runs = Vec::new();
        let file_blocks = inode.size.div_ceil(self.block_size);
        if inode.flags & FLAG_EXTENTS != 0 {
            self.extent_node(&inode.block, 0, &mut runs, file_blocks)?;
        } else {
            self.block_map(inode, &mut runs, file_blocks)?;
        }
        runs.sort_by_key(|r| r.logical);
        Ok(runs)
    }

    fn extent_node(
        &self,
        node: &[u8],
        level: u32,
        runs: &mut Vec<Run>,
        limit: u64,
    ) -> io::Result<()> {
        if le16(node, 0) != 0xF30A {
            return Err(bad("bad extent header"));
        }
        let entries = le16(node, 2) as usize;
        let depth = u32::from(le16(node, 6));
        if depth > MAX_EXTENT_DEPTH || level > MAX_EXTENT_DEPTH || 12 + entries * 12 > node.len() {
            return Err(bad("bad extent node"));
        }
        for i in 0..entries {
            let e = &node[12 + i * 12..24 + i * 12];
            let logical = u64::from(le32(e, 0));
            if depth == 0 {
                let raw_len = u64::from(le16(e, 4));
                let (len, unwritten) = if raw_len > 32768 {
                    (raw_len - 32768, true)
                } else {
                    (raw_len, false)
                };
                let start = u64::from(le16(e, 6)) << 32 | u64::from(le32(e, 8));
                if logical >= limit || len == 0 {
                    continue;
                }
                if !unwritten && start.checked_add(len).is_none_or(|end| end > self.blocks) {
                    return Err(bad("extent outside the file system"));
                }
                runs.push(Run {
                    logical,
                    physical: (!unwritten).then_some(start),
                    len,
                });
                if runs.len() > 1 << 22 {
                    return Err(bad("too many extents"));
                }
            } else {
                let child = u64::from(le32(e, 4)) | u64::from(le16(e, 8)) << 32;
                let mut buf = vec![0u8; self.block_size as usize];
                self.read_block(child, &mut buf)?;
                if u32::from(le16(&buf, 6)) >= depth {
                    return Err(bad("extent tree depth does not decrease"));
                }
                self.extent_node(&buf, level + 1, runs, limit)?;
            }
        }
        Ok(())
    }

    fn block_map(&self, inode: &Inode, runs: &mut Vec<Run>, limit: u64) -> io::Result<()> {
        let mut push = |logical: u64, physical: u32| {
            if physical != 0 && logical < limit {
                runs.push(Run {
                    logical,
                    physical: Some(u64::from(physical)),
                    len: 1,
                });
            }
        };
        for i in 0..12 {
            push(i as u64, le32(&inode.block, i * 4));
        }
        let per = self.block_size / 4;
        let mut logical = 12u64;
        for (level, slot) in [(1u32, 12usize), (2, 13), (3, 14)] {
            let span = per.pow(level);
            let root = le32(&inode.block, slot * 4);
            if root != 0 && logical < limit {
                self.indirect(u64::from(root), level, logical, limit, &mut push)?;
            }
            logical = logical.saturating_add(span);
        }
        Ok(())
    }

    fn indirect(
        &self,
        block: u64,
        level: u32,
        first: u64,
        limit: u64,
        push: &mut impl FnMut(u64, u32),
    ) -> io::Result<()> {
        let mut buf = vec![0u8; self.block_size as usize];
        self.read_block(block, &mut buf)?;
        let per = self.block_size / 4;
        let span = per.pow(level - 1);
        for i in 0..per {
            let logical = first + i * span;
            if logical >= limit {
                break;
            }
            let child = le32(&buf, (i * 4) as usize);
            if child == 0 {
                continue;
            }
            if level == 1 {
                push(logical, child);
            } else {
                self.indirect(u64::from(child), level - 1, logical, limit, push)?;
            }
        }
        Ok(())
    }

    /// Streams the content of a file (`inode.size` bytes) to `visit`, a block at a time.
    pub fn read_file(&self, inode: &Inode, visit: impl FnMut(&[u8])) -> io::Result<()> {
        self.read_file_until(inode, &|| false, visit)
    }

    /// Like [`ExtFs::read_file`], checking `stop` before each block: a file's size (holes
    /// included) can be terabytes, so a query must be able to end the read. Stopping is
    /// an error of kind `Interrupted`.
    pub fn read_file_until(
        &self,
        inode: &Inode,
        stop: &dyn Fn() -> bool,
        mut visit: impl FnMut(&[u8]),
    ) -> io::Result<()> {
        if inode.flags & FLAG_INLINE_DATA != 0 {
            // Inline data beyond the 60 bytes of i_block lives in an extended attribute;
            // only the i_block part is read.
            let n = (inode.size as usize).min(60);
            visit(&inode.block[..n]);
            return Ok(());
        }
        if inode.mode & 0o170000 == 0o120000 && inode.size < 60 && inode.flags & FLAG_EXTENTS == 0 {
            // A fast symbolic link keeps its target inside i_block.
            visit(&inode.block[..inode.size as usize]);
            return Ok(());
        }
        let runs = self.runs(inode)?;
        let bs = self.block_size;
        let mut remaining = inode.size;
        let mut pos_block = 0u64;
        let zeros = vec![0u8; bs as usize];
        let mut buf = vec![0u8; bs as usize];
        let stopped = || io::Error::new(io::ErrorKind::Interrupted, "the read was stopped");
        let emit_zeros = |blocks: u64, remaining: &mut u64, visit: &mut dyn FnMut(&[u8])| {
            for _ in 0..blocks {
                if *remaining == 0 {
                    break;
                }
                if stop() {
                    return Err(stopped());
                }
                let n = (*remaining).min(bs);
                visit(&zeros[..n as usize]);
                *remaining -= n;
            }
            Ok(())
        };
        for run in runs {
            if remaining == 0 {
                break;
            }
            if run.logical < pos_block {
                continue; // overlapping runs: damaged map, keep the first
            }
            emit_zeros(run.logical - pos_block, &mut remaining, &mut visit)?;
            match run.physical {
                None => emit_zeros(run.len, &mut remaining, &mut visit)?,
                Some(start) => {
                    for b in 0..run.len {
                        if remaining == 0 {
                            break;
                        }
                        if stop() {
                            return Err(stopped());
                        }
                        self.read_block(start + b, &mut buf)?;
                        let n = remaining.min(bs);
                        visit(&buf[..n as usize]);
                        remaining -= n;
                    }
                }
            }
            pos_block = run.logical + run.len;
        }
        let tail = remaining.div_ceil(bs);
        emit_zeros(tail, &mut remaining, &mut visit)
    }

    /// The entries of a directory, `.` and `..` included, in on-disk order.
    pub fn read_dir(&self, dir: &Inode) -> io::Result<Vec<DirEntry>> {
        if !dir.is_dir() {
            return Err(bad("not a directory"));
        }
        if dir.size > MAX_DIR_BYTES {
            return Err(bad("directory too large"));
        }
        let mut data = Vec::with_capacity(dir.size as usize);
        self.read_file(dir, |chunk| data.extend_from_slice(chunk))?;
        let mut out = Vec::new();
        if dir.flags & FLAG_INLINE_DATA != 0 {
            // Inline directory: 4 bytes of parent inode, then entries.
            out.push(DirEntry {
                inode: dir.number,
                name: b".".to_vec(),
            });
            out.push(DirEntry {
                inode: u64::from(le32(&data, 0)),
                name: b"..".to_vec(),
            });
            parse_entries(data.get(4..).unwrap_or_default(), &mut out);
            return Ok(out);
        }
        for block in data.chunks(self.block_size as usize) {
            parse_entries(block, &mut out);
        }
        Ok(out)
    }

    /// Resolves an absolute path (`/a/b`) to an inode number, without following links.
    pub fn lookup(&self, path: &[u8]) -> io::Result<u64> {
        let mut current = ROOT_INODE;
        for part in path.split(|b| *b == b'/').filter(|p| !p.is_empty()) {
            let dir = self.inode(current)?;
            let entries = self.read_dir(&dir)?;
            current = entries
                .iter()
                .find(|e| e.name == part)
                .map(|e| e.inode)
                .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        }
        Ok(current)
    }
}

/// Parses the records of one directory block, skipping deleted (inode 0) ones.
fn parse_entries(block: &[u8], out: &mut Vec<DirEntry>) {
    let mut pos = 0usize;
    while pos + 8 <= block.len() {
        let inode = le32(block, pos);
        let rec_len = le16(block, pos + 4) as usize;
        let name_len = block[pos + 6] as usize;
        if rec_len < 8 || pos + rec_len > block.len() || 8 + name_len > rec_len {
            break;
        }
        // A tail record carrying the block checksum has inode 0 and is skipped like
        // deleted entries.
        if inode != 0 && name_len > 0 {
            out.push(DirEntry {
                inode: u64::from(inode),
                name: block[pos + 8..pos + 8 + name_len].to_vec(),
            });
        }
        pos += rec_len;
    }
}

/// The slots of `disk`: its partition table's, or, when it has none but holds an ext file
/// system from its first byte (a partition device such as `/dev/sda1`, or a bare image),
/// one `Normal` slot with address 0 covering the whole disk.
pub fn slots(disk: &Disk) -> Vec<crate::disk::Slot> {
    if let Some(v) = disk.volume() {
        return v;
    }
    if ExtFs::open(disk, 0).is_some() {
        return vec![crate::disk::Slot {
            address: 0,
            kind: crate::disk::SlotKind::Normal,
            start: 0,
            len: disk.size() / disk.sector_size(),
            description: String::new(),
        }];
    }
    Vec::new()
}

/// The ext file system in the `Normal` slot with address `address`, if there is one.
pub fn open_partition(disk: &Disk, address: u32) -> Option<ExtFs<'_>> {
    let slot = slots(disk)
        .into_iter()
        .find(|s| s.address == address && s.kind == crate::disk::SlotKind::Normal)?;
    ExtFs::open(disk, slot.start.checked_mul(disk.sector_size())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncated_superblocks_are_rejected() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut data: Vec<u8> = (0..65536u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(tmp.path(), &data).unwrap();
        let disk = Disk::open(tmp.path()).unwrap();
        assert!(ExtFs::open(&disk, 0).is_none());
        // A magic number alone, with nonsense geometry.
        data[1024 + 56] = 0x53;
        data[1024 + 57] = 0xEF;
        std::fs::write(tmp.path(), &data).unwrap();
        let disk = Disk::open(tmp.path()).unwrap();
        if let Some(fs) = ExtFs::open(&disk, 0) {
            // If the random geometry happens to pass the checks, reads still must not panic.
            let _ = fs.inode(ROOT_INODE).and_then(|i| fs.read_dir(&i));
        }
        std::fs::write(tmp.path(), &data[..1100]).unwrap();
        let disk = Disk::open(tmp.path()).unwrap();
        assert!(ExtFs::open(&disk, 0).is_none());
        assert!(ExtFs::open(&disk, u64::MAX - 10).is_none());
    }

    #[test]
    fn directory_records_are_bounds_checked() {
        let mut out = Vec::new();
        // rec_len pointing past the block, then a name longer than the record.
        let mut b = vec![0u8; 64];
        b[0] = 5;
        b[4] = 200;
        b[6] = 3;
        parse_entries(&b, &mut out);
        b[4] = 12;
        b[6] = 250;
        parse_entries(&b, &mut out);
        assert!(out.is_empty());
    }
}
