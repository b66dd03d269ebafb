//! `device_hash`: MD5, SHA-1 and SHA-256 of a file inside an ext2/3/4 file system on a
//! block device or disk image, found by inode (see `device_file` for the inode numbers).
//!
//! `device`, `partition` (one value) and `inode` are required. The content is read straight
//! from the device, holes and unwritten extents as zeros, and only the digests the query
//! reads are computed. As in osquery, an empty file gets empty digests, and a file that
//! cannot be read completely gets no row.

use oxquery_sys::digest::{Digests, Hasher, Wanted};
use oxquery_sys::disk::Disk;
use oxquery_sys::extfs;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "device_hash",
    description: "Digests of a file inside an ext2/3/4 file system on a block device or disk image, by inode.",
    columns: {
        device: Text [REQUIRED] "Block device or image file to read",
        partition: Text [REQUIRED] "Slot number of the partition, as device_partitions numbers them",
        inode: BigInt [REQUIRED] "Inode of the file to digest",
        md5: Text [COLLATE_NOCASE] "MD5 of the content in lowercase hex (empty for an empty file)",
        sha1: Text [COLLATE_NOCASE] "SHA-1 of the content in lowercase hex (empty for an empty file)",
        sha256: Text [COLLATE_NOCASE] "SHA-256 of the content in lowercase hex (empty for an empty file)",
    },
    examples: ["select * from device_hash where device = '/dev/sdb' and partition = '2' and inode = 12"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let devices = ctx.eq_texts(Col::device).unwrap_or_default();
    let parts = ctx.eq_texts(Col::partition).unwrap_or_default();
    let inodes = ctx.eq_integers(Col::inode).unwrap_or_default();
    if parts.len() != 1 {
        log::info!("device_hash needs exactly one partition");
        return Ok(());
    }
    let Ok(address) = parts[0].trim().parse::<u32>() else {
        return Ok(());
    };
    let wanted = Wanted {
        md5: ctx.is_used(Col::md5),
        sha1: ctx.is_used(Col::sha1),
        sha256: ctx.is_used(Col::sha256),
    };
    let stop = || ctx.is_stopped();
    for device in &devices {
        let disk = match Disk::open(Path::new(device)) {
            Ok(d) => d,
            Err(e) => {
                // A FIFO or a terminal is refused without blocking, and said so.
                crate::common::report_read_error(ctx, Path::new(device), &e);
                continue;
            }
        };
        let Some(fs) = extfs::open_partition(&disk, address) else {
            log::info!("device_hash: no ext file system in partition {address} of {device}");
            continue;
        };
        for &n in &inodes {
            let Ok(n) = u64::try_from(n) else { continue };
            let Ok(inode) = fs.inode(n) else { continue };
            if inode.mode == 0 || inode.links == 0 {
                continue;
            }
            ctx.check()?;
            // As in osquery, an empty file has empty digests.
            let digests = if inode.size == 0 {
                Digests::empty(wanted)
            } else {
                let mut hasher = Hasher::new(wanted);
                if wanted.any()
                    && let Err(e) = fs.read_file_until(&inode, &stop, |chunk| hasher.update(chunk))
                {
                    ctx.check()?;
                    log::info!("device_hash: cannot read inode {n} on {device}: {e}");
                    continue;
                }
                hasher.finish()
            };
            let mut row = rows.row();
            row.set(Col::device, device.as_str());
            row.set(Col::partition, parts[0].as_str());
            row.set(Col::inode, n as i64);
            row.set(Col::md5, digests.md5);
            row.set(Col::sha1, digests.sha1);
            row.set(Col::sha256, digests.sha256);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_images::{debugfs_stat, mkfs, run, truncated_copy};
    use oxquery_table::{Host, Op, Value};
    use std::fs;
    use std::os::unix::fs::FileExt;
    use std::process::Command;

    /// The first word of a coreutils `*sum` line.
    fn coreutils(tool: &str, path: &Path) -> String {
        run(Command::new(tool).arg(path))
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }

    fn scan(
        device: &Path,
        partition: &str,
        inodes: &[i64],
        cols: Option<&[Col]>,
    ) -> Vec<Vec<Value>> {
        let host = Host::default();
        let mut ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::device, Op::Eq, device.to_str().unwrap())
            .with_constraint(Col::partition, Op::Eq, partition);
        for i in inodes {
            ctx = ctx.with_constraint(Col::inode, Op::Eq, *i);
        }
        if let Some(cols) = cols {
            ctx = ctx.using(cols.iter().copied());
        }
        let rows = Rows::collect(&ctx, generate).unwrap();
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    #[test]
    fn digests_match_coreutils_on_the_source_files() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(src.join("d")).unwrap();
        let mut x: u64 = 7;
        let big: Vec<u8> = (0..1_500_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        fs::write(src.join("d/big.bin"), &big).unwrap();
        fs::write(src.join("small"), b"abc").unwrap();
        fs::write(src.join("empty"), b"").unwrap();
        let sparse = fs::File::create(src.join("sparse")).unwrap();
        sparse.write_all_at(b"start", 0).unwrap();
        sparse.write_all_at(b"end", 2_000_000).unwrap();
        for kind in ["ext2", "ext4"] {
            // A bare file system image: partition 0.
            let img = tmp.path().join(format!("{kind}.img"));
            mkfs(kind, &src, &img, "8M");
            let files = ["/d/big.bin", "/small", "/sparse"];
            let inodes: Vec<i64> = files.iter().map(|f| debugfs_stat(&img, f).inode).collect();
            let rows = scan(&img, "0", &inodes, None);
            assert_eq!(rows.len(), 3, "{kind}");
            for (file, ino) in files.iter().zip(&inodes) {
                let row = rows
                    .iter()
                    .find(|r| r[Col::inode as usize] == Value::Integer(*ino))
                    .unwrap();
                let source = src.join(&file[1..]);
                assert_eq!(
                    row[Col::md5 as usize].to_string(),
                    coreutils("md5sum", &source),
                    "{kind} {file}"
                );
                assert_eq!(
                    row[Col::sha1 as usize].to_string(),
                    coreutils("sha1sum", &source)
                );
                assert_eq!(
                    row[Col::sha256 as usize].to_string(),
                    coreutils("sha256sum", &source)
                );
                assert_eq!(row[Col::device as usize].to_string(), img.to_str().unwrap());
                assert_eq!(row[Col::partition as usize].to_string(), "0");
            }
            // Projection: only the digest asked for is computed.
            let rows = scan(&img, "0", &inodes[1..2], Some(&[Col::inode, Col::sha1]));
            assert_eq!(
                rows[0][Col::sha1 as usize].to_string(),
                "a9993e364706816aba3e25717850c26c9cd0d89d"
            );
            assert_eq!(rows[0][Col::md5 as usize], Value::Null);
            // An empty file has empty digests, as in osquery; unused or absurd inodes no row.
            let rows = scan(&img, "0", &[debugfs_stat(&img, "/empty").inode], None);
            assert_eq!(rows[0][Col::sha256 as usize], Value::Text(String::new()));
            assert!(scan(&img, "0", &[0, -3, 1_000_000, 1500], None).is_empty());
            assert!(scan(&img, "1", &inodes, None).is_empty());

            // Truncated images: whatever rows come carry the right digests (a file whose
            // blocks are cut off gets no row); with the inode tables gone, no rows.
            let before = scan(&img, "0", &inodes, None);
            for (len, must_be_empty) in [(3 << 20, false), (64 << 10, true)] {
                let cut = tmp.path().join(format!("{kind}-cut.img"));
                truncated_copy(&img, &cut, len);
                let rows = scan(&cut, "0", &inodes, None);
                assert!(!must_be_empty || rows.is_empty(), "{kind}: {rows:?}");
                for r in rows {
                    let same = before
                        .iter()
                        .find(|b| b[Col::inode as usize] == r[Col::inode as usize])
                        .unwrap();
                    assert_eq!(r[Col::sha256 as usize], same[Col::sha256 as usize]);
                }
            }
        }
    }

    #[test]
    fn a_huge_sparse_file_is_read_only_until_the_query_stops() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        fs::create_dir_all(&src).unwrap();
        // 1 GiB of holes: a read that cannot stop would visit a million blocks.
        let sparse = fs::File::create(src.join("huge")).unwrap();
        sparse.set_len(1 << 30).unwrap();
        let img = tmp.path().join("sparse.img");
        mkfs("ext4", &src, &img, "8M");
        let ino = debugfs_stat(&img, "/huge").inode as u64;
        let disk = Disk::open(&img).unwrap();
        let fs = extfs::open_partition(&disk, 0).unwrap();
        let inode = fs.inode(ino).unwrap();
        assert_eq!(inode.size, 1 << 30);
        let checks = std::cell::Cell::new(0u32);
        let stop = || {
            checks.set(checks.get() + 1);
            checks.get() > 10
        };
        let mut chunks = 0;
        let err = fs
            .read_file_until(&inode, &stop, |_| chunks += 1)
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted);
        assert_eq!(chunks, 10);
        // Unstopped, the same read covers the whole size.
        let mut bytes = 0u64;
        fs.read_file(&inode, |chunk| bytes += chunk.len() as u64)
            .unwrap();
        assert_eq!(bytes, 1 << 30);
    }
}
