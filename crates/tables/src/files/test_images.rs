//! Disk images for the `device_*` table tests, made with the real tools: `mke2fs -d`
//! (e2fsprogs) fills a file system from a directory, `sfdisk` (util-linux) writes the
//! partition table, and `debugfs`/`dumpe2fs` read the result back as independent sources.
//! Everything lives in the caller's temporary directory.

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs a command that must succeed and returns its standard output.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Makes an ext2/ext3/ext4 (`kind`) file system image of `size` (mke2fs syntax, e.g.
/// `8M`) holding the tree under `src`.
pub fn mkfs(kind: &str, src: &Path, image: &Path, size: &str) {
    run(Command::new("mke2fs")
        .args(["-q", "-F", "-t", kind, "-d"])
        .arg(src)
        .arg(image)
        .arg(size));
}

/// Makes a `len`-byte disk image whose partition table is the sfdisk `script`, and copies
/// the file system image `fs_image` into it at sector `start`.
pub fn partitioned(fs_image: &Path, disk: &Path, len: u64, script: &str, start: u64) {
    fs::File::create(disk).unwrap().set_len(len).unwrap();
    let mut child = Command::new("sfdisk")
        .arg("-q")
        .arg(disk)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "sfdisk failed");
    let bytes = fs::read(fs_image).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .unwrap()
        .write_all_at(&bytes, start * 512)
        .unwrap();
}

/// What `debugfs -R 'stat PATH'` says about one file.
#[derive(Debug)]
pub struct DebugfsStat {
    pub inode: i64,
    pub atime: i64,
    /// Absent on file systems with small inodes (ext2 made with 128-byte inodes).
    pub crtime: Option<i64>,
}

pub fn debugfs_stat(image: &Path, path: &str) -> DebugfsStat {
    let out = run(Command::new("debugfs")
        .arg("-R")
        .arg(format!("stat {path}"))
        .arg(image)
        .stderr(Stdio::null()));
    let inode = out
        .split_whitespace()
        .skip_while(|w| *w != "Inode:")
        .nth(1)
        .unwrap_or_else(|| panic!("no inode for {path}: {out}"))
        .parse()
        .unwrap();
    // Times print as `atime: 0x6b0cec40:00000000 -- date`, or `atime: 0x6b0cec40 -- date`.
    let time = |field: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(field))
            .map(|h| i64::from_str_radix(h.split([':', ' ']).next().unwrap(), 16).unwrap())
    };
    DebugfsStat {
        inode,
        atime: time("atime: 0x").unwrap(),
        crtime: time("crtime: 0x"),
    }
}

/// A numeric field of `dumpe2fs -h` (e.g. `Block count`).
pub fn dumpe2fs(image: &Path, field: &str) -> i64 {
    let out = run(Command::new("dumpe2fs")
        .arg("-h")
        .arg(image)
        .stderr(Stdio::null()));
    out.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim_start_matches(':').trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} missing in dumpe2fs output"))
}

/// A copy of `image` at `copy`, cut to `len` bytes (a damaged image for robustness tests).
pub fn truncated_copy(image: &Path, copy: &Path, len: u64) {
    fs::copy(image, copy).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(copy)
        .unwrap()
        .set_len(len)
        .unwrap();
}
