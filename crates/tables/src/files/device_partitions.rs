//! `device_partitions`: the partition table of a block device or disk image.
//!
//! The volume is listed as forensic tools list it (`oxquery_sys::disk`): table structures
//! (`meta`), partitions, and unallocated gaps, numbered in address order; that number is
//! the `partition` the `device_file` and `device_hash` tables take. A partition holding an
//! ext2/3/4 file system is described by the file system (its type, block size and
//! counts); any other slot by its sectors. A device without a partition table that holds
//! an ext file system from its first byte (a partition device, a bare image) is shown as
//! one partition numbered 0. Devices are only read, never written.

use oxquery_sys::disk::{Disk, SlotKind};
use oxquery_sys::extfs::{self, ExtFs};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "device_partitions",
    description: "Partitions of a block device or disk image (MBR or GPT), with the file system found in each.",
    columns: {
        device: Text [REQUIRED] "Block device or image file to read, e.g. /dev/sda",
        partition: Integer [] "Slot number in the volume listing (tables, partitions and gaps in address order)",
        label: Text [] "Description: the MBR type name or the GPT partition name",
        r#type: Text [] "File system type when one is recognised (ext2, ext3, ext4), else normal, meta or unallocated",
        offset: BigInt [] "Byte offset of the slot on the device",
        blocks_size: BigInt [] "File system block size, or the sector size when there is no file system",
        blocks: BigInt [] "File system blocks, or sectors when there is no file system",
        inodes: BigInt [] "Inodes of the file system; -1 without one",
        flags: Integer [] "0 for a file system; otherwise 1 partition, 2 unallocated, 4 table structure",
    },
    examples: ["select * from device_partitions where device = '/dev/sda'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for device in ctx.eq_texts(Col::device).unwrap_or_default() {
        let disk = match Disk::open(Path::new(&device)) {
            Ok(d) => d,
            Err(e) => {
                // A FIFO or a terminal is refused without blocking, and said so.
                crate::common::report_read_error(ctx, Path::new(&device), &e);
                continue;
            }
        };
        let slots = extfs::slots(&disk);
        if slots.is_empty() {
            log::info!("device_partitions: no partition table or file system on {device}");
        }
        for slot in slots {
            let mut row = rows.row();
            row.set(Col::device, device.clone());
            row.set(Col::partition, i64::from(slot.address));
            row.set(Col::label, slot.description.clone());
            let offset = slot.start.saturating_mul(disk.sector_size());
            let fs = (slot.kind == SlotKind::Normal)
                .then(|| ExtFs::open(&disk, offset))
                .flatten();
            match fs {
                Some(fs) => {
                    row.set(Col::r#type, fs.kind());
                    row.set(Col::offset, fs.offset() as i64);
                    row.set(Col::blocks_size, fs.block_size() as i64);
                    row.set(Col::blocks, fs.block_count() as i64);
                    row.set(Col::inodes, fs.inode_count() as i64);
                    row.set(Col::flags, 0);
                }
                None => {
                    row.set(Col::r#type, slot.kind.name());
                    row.set(Col::offset, offset as i64);
                    row.set(Col::blocks_size, disk.sector_size() as i64);
                    row.set(Col::blocks, slot.len as i64);
                    row.set(Col::inodes, -1);
                    row.set(Col::flags, slot.kind.flags());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_images::{dumpe2fs, mkfs, partitioned, run, truncated_copy};
    use oxquery_table::{Host, Op, Value};
    use std::fs;
    use std::os::unix::fs::FileExt;
    use std::process::Command;

    /// A 10 MiB image with one partition at sector 2048 (`label` is sfdisk's `gpt` or
    /// `dos`) holding an ext4 file system made by mke2fs from a small tree.
    fn image(dir: &Path, label: &str) -> std::path::PathBuf {
        let src = dir.join("src");
        fs::create_dir_all(src.join("sub")).unwrap();
        fs::write(src.join("sub/a.txt"), b"partition test\n").unwrap();
        let fs_img = dir.join("fs.img");
        mkfs("ext4", &src, &fs_img, "6M");
        let disk = dir.join(format!("{label}.img"));
        let script = match label {
            "gpt" => "label: gpt\nstart=2048, size=12288, name=\"oxroot\"\n",
            _ => "label: dos\nstart=2048, size=12288, type=83\n",
        };
        partitioned(&fs_img, &disk, 10 << 20, script, 2048);
        disk
    }

    fn scan(device: &Path) -> Vec<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::device,
            Op::Eq,
            device.to_str().unwrap(),
        );
        let rows = Rows::collect(&ctx, generate).unwrap();
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    /// A FIFO named as the device: no rows and a warning at once (a blocking open would
    /// wait forever for a writer).
    #[test]
    fn a_fifo_as_the_device_gives_no_rows_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        crate::common::testing::mkfifo(&fifo);
        let (rows, logged) = crate::common::testing::rows_for_path(
            &SPEC,
            generate,
            Col::device as usize,
            &fifo,
            oxquery_table::DEFAULT_READ_MAX,
        );
        assert!(rows.is_empty(), "{rows:?}");
        crate::common::testing::assert_logged(&logged, log::Level::Warn, &fifo, "a FIFO");
    }

    #[test]
    fn gpt_and_dos_images_match_sfdisk_and_dumpe2fs() {
        let tmp = tempfile::tempdir().unwrap();
        for label in ["gpt", "dos"] {
            let disk = image(tmp.path(), label);
            // sfdisk's own reading of the table: start and size of the one partition.
            let dump = run(Command::new("sfdisk").arg("-d").arg(&disk));
            let line = dump.lines().find(|l| l.contains("start=")).unwrap();
            let field = |k: &str| -> i64 {
                line.split(',')
                    .find_map(|f| {
                        f.trim()
                            .split_once('=')
                            .filter(|(n, _)| n.trim().ends_with(k))
                    })
                    .map(|(_, v)| v.trim().parse().unwrap())
                    .unwrap()
            };
            let (start, size) = (field("start"), field("size"));
            let rows = scan(&disk);
            let fs_rows: Vec<&Vec<Value>> = rows
                .iter()
                .filter(|r| r[Col::r#type as usize] == t("ext4"))
                .collect();
            assert_eq!(fs_rows.len(), 1, "{label}: {rows:?}");
            let r = fs_rows[0];
            let fs_img = tmp.path().join("fs.img");
            assert_eq!(r[Col::offset as usize], Value::Integer(start * 512));
            assert_eq!(
                r[Col::blocks_size as usize],
                Value::Integer(dumpe2fs(&fs_img, "Block size"))
            );
            assert_eq!(
                r[Col::blocks as usize],
                Value::Integer(dumpe2fs(&fs_img, "Block count"))
            );
            assert_eq!(
                r[Col::inodes as usize],
                Value::Integer(dumpe2fs(&fs_img, "Inode count"))
            );
            assert_eq!(r[Col::flags as usize], Value::Integer(0));
            let want_label = if label == "gpt" {
                "oxroot"
            } else {
                "Linux (0x83)"
            };
            assert_eq!(r[Col::label as usize], t(want_label));
            // Slot numbers are row order; the trailing gap covers the rest of the image.
            for (i, row) in rows.iter().enumerate() {
                assert_eq!(row[Col::partition as usize], Value::Integer(i as i64));
                assert_eq!(row[Col::device as usize], t(disk.to_str().unwrap()));
            }
            let last = rows.last().unwrap();
            assert_eq!(last[Col::r#type as usize], t("unallocated"));
            assert_eq!(
                last[Col::offset as usize],
                Value::Integer((start + size) * 512)
            );
            assert_eq!(
                last[Col::blocks as usize],
                Value::Integer((10 << 20) / 512 - start - size)
            );
            assert_eq!(last[Col::inodes as usize], Value::Integer(-1));
            assert_eq!(last[Col::flags as usize], Value::Integer(2));
            let metas = rows
                .iter()
                .filter(|r| r[Col::r#type as usize] == t("meta"))
                .count();
            assert_eq!(metas, if label == "gpt" { 3 } else { 1 }, "{rows:?}");
        }
    }

    #[test]
    fn bare_file_system_is_partition_zero_and_hostile_images_give_no_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let disk = image(tmp.path(), "gpt");
        let fs_img = tmp.path().join("fs.img");
        let rows = scan(&fs_img);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][Col::partition as usize], Value::Integer(0));
        assert_eq!(rows[0][Col::r#type as usize], t("ext4"));
        assert_eq!(rows[0][Col::offset as usize], Value::Integer(0));

        // Corrupt GPT header signature: no table, and no file system at offset 0.
        let bad = tmp.path().join("bad.img");
        fs::copy(&disk, &bad).unwrap();
        let f = fs::OpenOptions::new().write(true).open(&bad).unwrap();
        f.write_all_at(b"NOT PART", 512).unwrap();
        assert!(scan(&bad).is_empty());
        // Garbage everywhere, an empty file, a directory, a missing file.
        let junk = tmp.path().join("junk.img");
        let bytes: Vec<u8> = (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        fs::write(&junk, bytes).unwrap();
        assert!(scan(&junk).is_empty());
        let empty = tmp.path().join("empty.img");
        fs::write(&empty, b"").unwrap();
        assert!(scan(&empty).is_empty());
        assert!(scan(tmp.path()).is_empty());
        assert!(scan(&tmp.path().join("missing")).is_empty());
        // Truncated inside the partition: the table is still read; the file system, whose
        // group descriptors are cut off, is not recognised.
        let cut = tmp.path().join("cut.img");
        truncated_copy(&disk, &cut, 2048 * 512 + 1500);
        let rows = scan(&cut);
        assert!(
            rows.iter().all(|r| r[Col::r#type as usize] != t("ext4")),
            "{rows:?}"
        );
    }
}
