//! `device_file`: files of an ext2/3/4 file system read straight from a block device or
//! disk image, without mounting it (for looking at a disk the kernel does not show, or
//! whose mounted view may be hiding something).
//!
//! `device` and exactly one `partition` (the slot number `device_partitions` shows) are
//! needed, as in osquery. With neither `path` nor `inode` constrained the whole file
//! system is walked and every regular file is a row (directories are entered, not listed;
//! each directory is entered once, so a damaged tree with loops ends). `path = P` gives
//! the object at that absolute path, `inode = N` the object with that inode (its path is
//! not searched for and stays empty). `ctime` is the inode's creation time (ext4 large
//! inodes; 0 when the file system keeps none), as osquery reports it. `mode` is the
//! permission bits (with setuid, setgid and sticky) as a decimal number.

use oxquery_sys::disk::Disk;
use oxquery_sys::extfs::{self, ExtFs, Inode, ROOT_INODE};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::HashSet;
use std::path::Path;

table! {
    name: "device_file",
    description: "Files of an ext2/3/4 file system inside a block device or disk image, read without mounting it.",
    columns: {
        device: Text [INDEX | REQUIRED] "Block device or image file to read",
        partition: Text [INDEX | REQUIRED] "Slot number of the partition, as device_partitions numbers them",
        path: Text [ADDITIONAL] "Absolute path of the file inside the file system",
        filename: Text [] "Last component of the path",
        inode: BigInt [INDEX] "Inode number",
        uid: BigInt [] "Owning user ID",
        gid: BigInt [] "Owning group ID",
        mode: Text [] "Permission bits (with setuid, setgid, sticky) as a decimal number",
        size: BigInt [] "Size in bytes",
        block_size: Integer [] "Block size of the file system",
        atime: BigInt [] "Last access time",
        mtime: BigInt [] "Last modification time",
        ctime: BigInt [] "Creation time recorded in the inode (0 when there is none)",
        hard_links: Integer [] "Number of hard links",
        r#type: Text [] "regular, directory, symlink, block, character, fifo, socket or unknown",
    },
    examples: [
        "select * from device_file where device = '/dev/sdb' and partition = '2'",
        "select * from device_file where device = 'disk.img' and partition = '0' and path = '/etc/passwd'",
    ],
}

/// Most rows one walk produces: a safety valve against a damaged or enormous file system.
const MAX_ROWS: usize = 1_000_000;

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let devices = ctx.eq_texts(Col::device).unwrap_or_default();
    let parts = ctx.eq_texts(Col::partition).unwrap_or_default();
    if devices.is_empty() || parts.len() != 1 {
        log::info!("device_file needs one or more devices and exactly one partition");
        return Ok(());
    }
    let Ok(address) = parts[0].trim().parse::<u32>() else {
        return Ok(());
    };
    let paths = ctx.eq_texts(Col::path).unwrap_or_default();
    let inodes = ctx.eq_integers(Col::inode).unwrap_or_default();
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
            log::info!("device_file: no ext file system in partition {address} of {device}");
            continue;
        };
        let out = Out {
            device,
            partition: &parts[0],
            fs: &fs,
        };
        if paths.is_empty() && inodes.is_empty() {
            walk(&out, rows);
        }
        for path in &paths {
            let found = fs.lookup(path.as_bytes()).and_then(|n| fs.inode(n));
            if let Ok(inode) = found {
                let name = path.rsplit('/').next().unwrap_or_default();
                out.row(rows, path, name, &inode);
            }
        }
        for &n in &inodes {
            let Ok(n) = u64::try_from(n) else { continue };
            if let Ok(inode) = fs.inode(n) {
                // An unused inode slot has no links and no mode: not a file.
                if inode.mode != 0 && inode.links != 0 {
                    out.row(rows, "", "", &inode);
                }
            }
        }
    }
    Ok(())
}

struct Out<'a> {
    device: &'a str,
    partition: &'a str,
    fs: &'a ExtFs<'a>,
}

impl Out<'_> {
    fn row(&self, rows: &mut Rows, path: &str, name: &str, inode: &Inode) {
        let mut row = rows.row();
        row.set(Col::device, self.device);
        row.set(Col::partition, self.partition);
        row.set(Col::path, path);
        row.set(Col::filename, name);
        row.set(Col::inode, inode.number as i64);
        row.set(Col::uid, i64::from(inode.uid));
        row.set(Col::gid, i64::from(inode.gid));
        row.set_with(Col::mode, || (inode.mode & 0o7777).to_string());
        row.set(Col::size, inode.size as i64);
        row.set(Col::block_size, self.fs.block_size() as i64);
        row.set(Col::atime, inode.atime);
        row.set(Col::mtime, inode.mtime);
        row.set(Col::ctime, inode.crtime.unwrap_or(0));
        row.set(Col::hard_links, i64::from(inode.links));
        row.set(Col::r#type, inode.type_name());
    }
}

/// Lists every regular file: a directory's files first, then its subdirectories in inode
/// order, each directory entered once.
fn walk(out: &Out, rows: &mut Rows) {
    let mut entered = HashSet::new();
    let mut stack: Vec<(u64, String)> = vec![(ROOT_INODE, String::new())];
    let mut produced = 0usize;
    while let Some((dir_ino, dir_path)) = stack.pop() {
        if !entered.insert(dir_ino) {
            continue;
        }
        let entries = match out.fs.inode(dir_ino).and_then(|d| out.fs.read_dir(&d)) {
            Ok(e) => e,
            Err(e) => {
                log::info!("device_file: skipping directory {dir_path}/: {e}");
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for entry in entries {
            if entry.name == b"." || entry.name == b".." {
                continue;
            }
            let Ok(inode) = out.fs.inode(entry.inode) else {
                continue;
            };
            let name = String::from_utf8_lossy(&entry.name).into_owned();
            let path = format!("{dir_path}/{name}");
            if inode.is_regular() {
                if produced >= MAX_ROWS {
                    log::warn!("device_file: stopped after {MAX_ROWS} files");
                    return;
                }
                produced += 1;
                out.row(rows, &path, &name, &inode);
            } else if inode.is_dir() {
                subdirs.push((entry.inode, path));
            }
        }
        subdirs.sort_by_key(|(ino, _)| *ino);
        // Popped in inode order.
        stack.extend(subdirs.into_iter().rev());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::test_images::{debugfs_stat, mkfs, partitioned, truncated_copy};
    use oxquery_table::{Host, Op, Value};
    use std::collections::BTreeMap;
    use std::fs;
    use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    /// A tree exercising directories, a multi-block directory, extents or indirect blocks,
    /// a sparse file, special permission bits, ownership and set times.
    fn tree(src: &Path) {
        fs::create_dir_all(src.join("sub/deeper")).unwrap();
        fs::create_dir_all(src.join("many")).unwrap();
        fs::write(src.join("hello.txt"), b"hello from the image\n").unwrap();
        fs::write(src.join("empty"), b"").unwrap();
        let mut x: u32 = 0x1234_5678;
        let big: Vec<u8> = (0..700_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        fs::write(src.join("sub/big.bin"), &big).unwrap();
        let sparse = fs::File::create(src.join("sub/deeper/sparse")).unwrap();
        sparse.write_all_at(b"head", 0).unwrap();
        sparse.write_all_at(b"tail", 300_000).unwrap();
        for i in 0..120 {
            fs::write(
                src.join(format!("many/file-with-a-longish-name-{i:03}")),
                i.to_string(),
            )
            .unwrap();
        }
        let suid = src.join("sub/tool");
        fs::write(&suid, b"#!/bin/sh\n").unwrap();
        fs::set_permissions(&suid, fs::Permissions::from_mode(0o4750)).unwrap();
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
        let f = fs::File::options()
            .write(true)
            .open(src.join("hello.txt"))
            .unwrap();
        f.set_times(
            fs::FileTimes::new()
                .set_modified(old)
                .set_accessed(old + Duration::from_secs(5)),
        )
        .unwrap();
        std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(src.join("sub/tool"), Some(1234), Some(5678)).unwrap();
        }
    }

    /// Builds `kind` (ext2 or ext4) from `src` and wraps it in a GPT image at sector 2048.
    fn image(dir: &Path, src: &Path, kind: &str) -> (PathBuf, PathBuf) {
        let fs_img = dir.join(format!("{kind}.fs"));
        mkfs(kind, src, &fs_img, "8M");
        let disk = dir.join(format!("{kind}.img"));
        partitioned(
            &fs_img,
            &disk,
            12 << 20,
            "label: gpt\nstart=2048, size=16384\n",
            2048,
        );
        (disk, fs_img)
    }

    fn scan(device: &Path, partition: &str, extra: &[(Col, Value)]) -> Vec<Vec<Value>> {
        let host = Host::default();
        let mut ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::device, Op::Eq, device.to_str().unwrap())
            .with_constraint(Col::partition, Op::Eq, partition);
        for (c, v) in extra {
            ctx = ctx.with_constraint(*c, Op::Eq, v.clone());
        }
        let rows = Rows::collect(&ctx, generate).unwrap();
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    fn int(v: &Value) -> i64 {
        match v {
            Value::Integer(i) => *i,
            other => panic!("not an integer: {other:?}"),
        }
    }

    /// Regular files under `src`: path inside the image -> metadata.
    fn source_files(src: &Path) -> BTreeMap<String, fs::Metadata> {
        let mut out = BTreeMap::new();
        let mut stack = vec![src.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let m = fs::symlink_metadata(e.path()).unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                } else if m.is_file() {
                    let rel = e
                        .path()
                        .strip_prefix(src)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_owned();
                    out.insert(format!("/{rel}"), m);
                }
            }
        }
        out
    }

    #[test]
    fn walk_matches_the_source_tree_and_debugfs() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        tree(&src);
        let want = source_files(&src);
        for kind in ["ext2", "ext4"] {
            let (disk, fs_img) = image(tmp.path(), &src, kind);
            // Slots of a one-partition GPT image: 0 safety, 1 gap, 2 header, 3 entries, 4 it.
            let rows = scan(&disk, "4", &[]);
            let got: BTreeMap<String, &Vec<Value>> = rows
                .iter()
                .map(|r| (r[Col::path as usize].to_string(), r))
                .collect();
            assert_eq!(got.len(), rows.len(), "{kind}: a path listed twice");
            assert_eq!(
                got.keys().collect::<Vec<_>>(),
                want.keys().collect::<Vec<_>>(),
                "{kind}"
            );
            for (path, m) in &want {
                let r = got[path];
                assert_eq!(int(&r[Col::size as usize]), m.len() as i64, "{kind} {path}");
                assert_eq!(
                    r[Col::mode as usize].to_string(),
                    (m.mode() & 0o7777).to_string(),
                    "{path}"
                );
                assert_eq!(int(&r[Col::uid as usize]), i64::from(m.uid()), "{path}");
                assert_eq!(int(&r[Col::gid as usize]), i64::from(m.gid()), "{path}");
                assert_eq!(int(&r[Col::mtime as usize]), m.mtime(), "{kind} {path}");
                assert_eq!(
                    int(&r[Col::hard_links as usize]),
                    m.nlink() as i64,
                    "{path}"
                );
                assert_eq!(r[Col::r#type as usize].to_string(), "regular");
                assert_eq!(
                    r[Col::filename as usize].to_string(),
                    path.rsplit('/').next().unwrap()
                );
                assert_eq!(int(&r[Col::block_size as usize]), 1024);
                assert_eq!(r[Col::partition as usize].to_string(), "4");
                let st = debugfs_stat(&fs_img, path);
                assert_eq!(int(&r[Col::inode as usize]), st.inode, "{kind} {path}");
                assert_eq!(int(&r[Col::atime as usize]), st.atime, "{kind} {path}");
                assert_eq!(
                    int(&r[Col::ctime as usize]),
                    st.crtime.unwrap_or(0),
                    "{kind} {path}"
                );
            }
            assert_eq!(int(&got["/hello.txt"][Col::mtime as usize]), 1_500_000_000);

            // path = and inode = look single objects up, directories and links included.
            let rows = scan(
                &disk,
                "4",
                &[(Col::path, Value::Text("/sub/deeper".into()))],
            );
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0][Col::r#type as usize].to_string(), "directory");
            assert_eq!(rows[0][Col::filename as usize].to_string(), "deeper");
            let rows = scan(&disk, "4", &[(Col::path, Value::Text("/link".into()))]);
            assert_eq!(rows[0][Col::r#type as usize].to_string(), "symlink");
            assert!(scan(&disk, "4", &[(Col::path, Value::Text("/nope".into()))]).is_empty());
            let ino = debugfs_stat(&fs_img, "/sub/big.bin").inode;
            let rows = scan(&disk, "4", &[(Col::inode, Value::Integer(ino))]);
            assert_eq!(rows.len(), 1);
            assert_eq!(int(&rows[0][Col::size as usize]), 700_000);
            // A partition slot without a file system, or a slot that does not exist.
            assert!(scan(&disk, "1", &[]).is_empty());
            assert!(scan(&disk, "99", &[]).is_empty());
            // The bare file system is partition 0.
            assert_eq!(scan(&fs_img, "0", &[]).len(), want.len());
        }
    }

    #[test]
    fn damaged_images_give_no_rows_and_never_panic() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        tree(&src);
        let (disk, fs_img) = image(tmp.path(), &src, "ext4");
        // Garbage superblock.
        let bad = tmp.path().join("bad-sb.img");
        fs::copy(&disk, &bad).unwrap();
        let f = fs::OpenOptions::new().write(true).open(&bad).unwrap();
        let garbage: Vec<u8> = (0..1024u32)
            .map(|i| (i.wrapping_mul(40_503) >> 3) as u8)
            .collect();
        f.write_all_at(&garbage, 2048 * 512 + 1024).unwrap();
        assert!(scan(&bad, "4", &[]).is_empty());
        // Truncated image: the superblock is there, the inode tables are not.
        let cut = tmp.path().join("cut.img");
        truncated_copy(&disk, &cut, 2048 * 512 + 8192);
        assert!(scan(&cut, "4", &[]).is_empty());
        // Random damage across the metadata area of a bare image: any outcome but a panic.
        let bytes = fs::read(&fs_img).unwrap();
        let mut x: u32 = 99;
        for round in 0..20 {
            let mut copy = bytes.clone();
            for _ in 0..400 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let at = 1024 + (x as usize % (300 * 1024));
                copy[at] = (x >> 8) as u8;
            }
            let p = tmp.path().join(format!("fuzz-{round}.img"));
            fs::write(&p, &copy).unwrap();
            let _ = scan(&p, "0", &[]);
            let _ = scan(&p, "0", &[(Col::path, Value::Text("/sub/big.bin".into()))]);
        }
        // Two partitions named at once: osquery gives no rows.
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::device, Op::Eq, disk.to_str().unwrap())
            .with_constraint(Col::partition, Op::Eq, "4")
            .with_constraint(Col::partition, Op::Eq, "3");
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert!(rows.is_empty());
    }
}
