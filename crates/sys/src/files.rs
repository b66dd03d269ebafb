//! Files a query names: the path set behind `path =` / `path LIKE` constraints (reading
//! them is [`crate::safe_read`]'s job).
//!
//! Tables that look inside files (`elf_*`, `extended_attributes`, `magic`) take the
//! same constraints as `file`: every `=` value as written, plus every `LIKE` pattern
//! expanded by [`crate::pattern`]. [`path_set`] merges them into one sorted, de-duplicated
//! set, so a path named twice is read once.

use crate::pattern::{self, Select};
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::ops::ControlFlow;

/// The paths named by `equals` values and `likes` patterns (expanded with `select`),
/// sorted by their bytes and unique. `=` values are kept even when they do not exist:
/// the caller finds out when it opens them.
pub fn path_set(
    equals: impl IntoIterator<Item = OsString>,
    likes: &[String],
    select: Select,
) -> BTreeSet<OsString> {
    let mut out: BTreeSet<OsString> = equals.into_iter().collect();
    for like in likes {
        pattern::expand_like(like, select, |found| {
            out.insert(found.as_os_str().to_owned());
            ControlFlow::Continue(())
        });
    }
    out
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
            [
                format!("{dir}/b.txt").into(),
                format!("{dir}/missing").into(),
            ],
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
}
