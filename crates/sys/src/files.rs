//! Files a query names: the path set behind `path =` / `path LIKE` constraints, and
//! reading a regular file whole or in part.
//!
//! Tables that look inside files (`elf_*`, `extended_attributes`, `magic`) take the
//! same constraints as `file`: every `=` value as written, plus every `LIKE` pattern
//! expanded by [`crate::pattern`]. [`path_set`] merges them into one sorted, de-duplicated
//! set, so a path named twice is read once.

use crate::pattern::{self, Select};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
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

/// Opens `path` (following symbolic links) and, when it is a regular file, reads it:
/// whole, or only its first `limit` bytes. `Ok(None)` when the path is not a regular
/// file (a directory, a device, a FIFO: reading those could block or never end).
pub fn read_regular(path: &Path, limit: Option<u64>) -> io::Result<Option<Vec<u8>>> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    let want = limit.map_or(meta.len(), |l| l.min(meta.len()));
    let mut buf = Vec::with_capacity(usize::try_from(want).unwrap_or(0));
    match limit {
        Some(l) => file.take(l).read_to_end(&mut buf)?,
        None => (&file).read_to_end(&mut buf)?,
    };
    Ok(Some(buf))
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
    }
}
