//! The mount table: `/proc/self/mounts` parsed, and `statfs(2)` for a mount point.
//!
//! Each line of the mount table is `source target fstype options dump pass`; the kernel
//! escapes space, tab, newline and backslash in the first four fields as three-digit
//! octal (`\040`, `\011`, `\012`, `\134`). [`parse_mounts`] undoes that and skips lines
//! that do not have the four fields, so truncated or hostile text yields fewer entries,
//! never a panic.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The mount table of the reading process (its mount namespace).
pub const PROC_MOUNTS: &str = "/proc/self/mounts";

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// What is mounted: a device path, or a name such as `proc` or `tmpfs`.
    pub source: String,
    /// Where it is mounted.
    pub target: String,
    pub fstype: String,
    /// The comma-separated mount options.
    pub options: String,
}

/// Decodes the kernel's `\ooo` octal escapes; anything else is kept as it is.
pub fn unescape_octal(field: &[u8]) -> String {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && i + 3 < field.len()
            && field[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = u32::from(field[i + 1] - b'0') * 64
                + u32::from(field[i + 2] - b'0') * 8
                + u32::from(field[i + 3] - b'0');
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mount-table text (`/proc/mounts` format). Lines with fewer than four
/// whitespace-separated fields are skipped.
pub fn parse_mounts(text: &[u8]) -> Vec<MountEntry> {
    text.split(|b| *b == b'\n')
        .filter_map(|line| {
            let mut fields = line
                .split(|b| *b == b' ' || *b == b'\t')
                .filter(|f| !f.is_empty());
            let source = fields.next()?;
            let target = fields.next()?;
            let fstype = fields.next()?;
            let options = fields.next()?;
            Some(MountEntry {
                source: unescape_octal(source),
                target: unescape_octal(target),
                fstype: unescape_octal(fstype),
                options: unescape_octal(options),
            })
        })
        .collect()
}

/// Reads and parses the mount table at `path` (normally [`PROC_MOUNTS`]).
pub fn read_mounts(path: impl AsRef<Path>) -> io::Result<Vec<MountEntry>> {
    let mut reader = crate::fs::FileReader::new();
    Ok(parse_mounts(reader.read(path)?))
}

/// What `statfs(2)` reports about a mounted file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsStats {
    pub block_size: u64,
    pub blocks: u64,
    pub blocks_free: u64,
    /// Free blocks an unprivileged user may use.
    pub blocks_available: u64,
    pub inodes: u64,
    pub inodes_free: u64,
    /// The file system's type number (`f_type`: `CGROUP2_SUPER_MAGIC`, ...).
    pub magic: u64,
}

/// `statfs(2)` of the file system holding `path`.
pub fn statfs(path: impl AsRef<Path>) -> io::Result<FsStats> {
    let cpath = CString::new(path.as_ref().as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: statfs is plain old data, filled in by the call on success.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: cpath is NUL-terminated and st is a valid, writable statfs.
    if unsafe { libc::statfs(cpath.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(FsStats {
        block_size: st.f_bsize as u64,
        blocks: st.f_blocks,
        blocks_free: st.f_bfree,
        blocks_available: st.f_bavail,
        inodes: st.f_files,
        inodes_free: st.f_ffree,
        // f_type is signed on some targets; type numbers are 32-bit magic values.
        magic: st.f_type as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_octal_escapes() {
        let text = b"/dev/sda1 /mnt/my\\040disk ext4 rw,relatime 0 0\n\
                     tmpfs /tmp/tab\\011and\\134slash tmpfs rw 0 0\n\
                     short line\n\n";
        let got = parse_mounts(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].source, "/dev/sda1");
        assert_eq!(got[0].target, "/mnt/my disk");
        assert_eq!(got[0].fstype, "ext4");
        assert_eq!(got[0].options, "rw,relatime");
        assert_eq!(got[1].target, "/tmp/tab\tand\\slash");
    }

    #[test]
    fn hostile_input_never_panics() {
        assert!(parse_mounts(b"").is_empty());
        assert_eq!(unescape_octal(b"\\"), "\\");
        assert_eq!(unescape_octal(b"a\\04"), "a\\04");
        assert_eq!(unescape_octal(b"\\777"), "\\777");
        let garbage: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let _ = parse_mounts(&garbage);
        let long = vec![b'x'; 1 << 20];
        assert!(parse_mounts(&long).is_empty());
    }

    #[test]
    fn statfs_of_root_has_blocks() {
        let st = statfs("/").unwrap();
        assert!(st.block_size > 0);
        assert!(statfs("/does/not/exist").is_err());
    }
}
