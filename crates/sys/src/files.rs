//! Files a query names: the path set behind `path =` / `path LIKE` constraints, and
//! reading a regular file whole or in part.
//!
//! Tables that look inside files (`elf_*`, `extended_attributes`, `magic`) take the
//! same constraints as `file`: every `=` value as written, plus every `LIKE` pattern
//! expanded by [`crate::pattern`]. [`path_set`] merges them into one sorted, de-duplicated
//! set, so a path named twice is read once.

use crate::pattern::{self, Select};
use crate::safe_read::{self, FileKinds, OverLimit, Policy};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::ops::ControlFlow;
use std::path::Path;

/// The paths named by `equals` values and `likes` patterns (expanded with `select`),
/// sorted by their bytes and unique. `=` values are kept even when they do not exist:
/// the caller finds out when it opens them.
pub fn path_set(
    equals: impl IntoIterator<Item = String>,
    likes: &[String],
    select: Select,
) -> BTreeSet<OsString> {
    let mut out: BTreeSet<OsString> = equals.into_iter().map(OsString::from).collect();
    for like in likes {
        pattern::expand_like(like, select, |found| {
            out.insert(found.as_os_str().to_owned());
            ControlFlow::Continue(())
        });
    }
    out
}

/// Opens `path` (following symbolic links) through [`crate::safe_read`] and, when it is
/// a regular file, reads it: whole, or only its first `limit` bytes. `Ok(None)` when the
/// path is not a regular file (a directory, a device, a FIFO: reading those could block
/// or never end).
pub fn read_regular(path: &Path, limit: Option<u64>) -> io::Result<Option<Vec<u8>>> {
    let policy = Policy {
        limit: limit.unwrap_or(u64::MAX),
        over_limit: OverLimit::Truncate,
        kinds: FileKinds::Regular,
        follow_symlinks: true,
        open_as: None,
    };
    match safe_read::read_bounded(path, &policy) {
        Ok(bytes) => Ok(Some(bytes)),
        // What SafeFile::open answers for anything but a regular file.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::IsADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn merges_equals_and_patterns_sorted_and_unique() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_str().unwrap().to_owned();
        fs::write(tmp.path().join("b.txt"), b"").unwrap();
        fs::write(tmp.path().join("a.txt"), b"").unwrap();
        fs::create_dir(tmp.path().join("sub")).unwrap();
        let set = path_set(
            [format!("{dir}/b.txt"), format!("{dir}/missing")],
            &[format!("{dir}/%")],
            Select::Files,
        );
        let got: Vec<String> = set
            .iter()
            .map(|p| String::from_utf8(p.as_bytes().to_vec()).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                format!("{dir}/a.txt"),
                format!("{dir}/b.txt"),
                format!("{dir}/missing")
            ]
        );
    }

    #[test]
    fn reads_regular_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read_regular(&f, None).unwrap().unwrap(), b"0123456789");
        assert_eq!(read_regular(&f, Some(4)).unwrap().unwrap(), b"0123");
        assert_eq!(read_regular(&f, Some(100)).unwrap().unwrap(), b"0123456789");
        assert!(read_regular(tmp.path(), None).unwrap().is_none());
        assert!(
            read_regular(Path::new("/dev/null"), None)
                .unwrap()
                .is_none()
        );
        assert!(read_regular(&tmp.path().join("nope"), None).is_err());
        // A FIFO nobody writes to: refused at once instead of an open that waits forever.
        let fifo = tmp.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(read_regular(&fifo, None).unwrap().is_none());
    }
}
