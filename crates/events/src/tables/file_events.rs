//! `file_events`: file changes under the config's `file_paths`, from the `inotify`
//! publisher (`oxquery_sys::inotify` says what is watched and how losses are counted).
//! Each row is decorated as osquery's: the file's `stat` after the change when it still
//! exists, and for `CREATED`/`UPDATED` in categories that are not `file_accesses` ones,
//! its MD5/SHA-1/SHA-256 (`hashed` 1; -1 when it could not be read, for instance over
//! `--read_max`; 0 when not hashed).

use crate::EventRow;
use oxquery_sys::digest::{self, Wanted};
use oxquery_sys::inotify::{FileAction, FileEvent};
use oxquery_sys::safe_read::Policy;
pub use oxquery_table::scan_events as generate;
use oxquery_table::table;
use std::fs;
use std::os::unix::fs::MetadataExt;

table! {
    name: "file_events",
    description: "File changes under the paths the config's file_paths categories name (inotify; needs --enable_file_events): one row per change and category, with the file's stat and hashes after it.",
    attributes: [EVENT_BASED],
    columns: {
        target_path: Text [] "The path changed; a watched directory's own events end with /",
        category: Text [] "The file_paths category whose pattern matched",
        action: Text [] "CREATED, UPDATED (written or closed after writing: one row each), DELETED, MOVED_FROM, MOVED_TO, ATTRIBUTES_MODIFIED, OPENED or ACCESSED (the last two only for file_accesses categories)",
        transaction_id: BigInt [] "The inotify cookie pairing a MOVED_FROM with its MOVED_TO; 0 otherwise",
        inode: BigInt [] "Inode of the file when the event was read",
        uid: BigInt [] "Owning user id",
        gid: BigInt [] "Owning group id",
        mode: Text [] "Permission bits in octal, as the file table shows them",
        size: BigInt [] "Size in bytes",
        atime: BigInt [] "Last access time",
        mtime: BigInt [] "Last modification time",
        ctime: BigInt [] "Last status change time",
        md5: Text [COLLATE_NOCASE] "MD5 of the content after a CREATED or UPDATED (lowercase hex)",
        sha1: Text [COLLATE_NOCASE] "SHA-1 of the content after a CREATED or UPDATED",
        sha256: Text [COLLATE_NOCASE] "SHA-256 of the content after a CREATED or UPDATED",
        hashed: Integer [] "1 hashed, -1 hashing failed (unreadable, not a regular file, over --read_max), 0 not hashed",
        time: BigInt [ADDITIONAL] "Time the event was read (unix seconds)",
        eid: Text [HIDDEN] "Event id",
    },
    examples: [
        "select target_path, action, md5 from file_events where category = 'etc'",
        "select * from file_events where time > (select unix_time from time) - 60",
    ],
}

/// The publisher feeding this table.
pub const PUBLISHER: &str = "inotify";

/// How rows are decorated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoration {
    /// Hash `CREATED`/`UPDATED` files (false for `file_accesses` categories, as osquery:
    /// reading the file would be an access of its own).
    pub hash: bool,
    /// `--read_max`: larger files are not hashed (`hashed` -1).
    pub read_max: u64,
}

/// The row of one event. `buf` is the hashing buffer, reused across events.
pub fn row(event: &FileEvent, decoration: Decoration, buf: &mut [u8]) -> EventRow {
    let mut row = EventRow::new(&SPEC);
    let path = event.path.as_path();
    row.set(Col::target_path, path);
    row.set(Col::category, &*event.category);
    row.set(Col::action, event.action.as_str());
    row.set(Col::transaction_id, i64::from(event.cookie));
    let meta = fs::metadata(path).or_else(|_| fs::symlink_metadata(path));
    if let Ok(m) = &meta {
        row.set(Col::inode, m.ino() as i64);
        row.set(Col::uid, i64::from(m.uid()));
        row.set(Col::gid, i64::from(m.gid()));
        row.set(Col::mode, format!("{:04o}", m.mode() & 0o7777));
        row.set(Col::size, m.size() as i64);
        row.set(Col::atime, m.atime());
        row.set(Col::mtime, m.mtime());
        row.set(Col::ctime, m.ctime());
    }
    let changed = matches!(event.action, FileAction::Created | FileAction::Updated);
    let hashed = if decoration.hash && changed {
        let policy = Policy::user_file(decoration.read_max);
        match digest::hash_file(path, &policy, Wanted::ALL, &|| false, buf) {
            Ok(d) => {
                row.set(Col::md5, d.md5.unwrap_or_default());
                row.set(Col::sha1, d.sha1.unwrap_or_default());
                row.set(Col::sha256, d.sha256.unwrap_or_default());
                1
            }
            Err(e) => {
                log::debug!("Not hashing {}: {e}", event.path.display());
                row.set(Col::md5, "");
                row.set(Col::sha1, "");
                row.set(Col::sha256, "");
                -1
            }
        }
    } else {
        0
    };
    row.set(Col::hashed, hashed);
    row.set(Col::time, event.time as i64);
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Value;
    use std::path::Path;
    use std::sync::Arc;

    fn event(path: &Path, action: FileAction) -> FileEvent {
        FileEvent {
            path: path.to_path_buf(),
            category: Arc::from("c"),
            action,
            cookie: 7,
            time: 1_700_000_000,
            is_dir: false,
            from_scan: false,
        }
    }

    fn cell(row: &[Value], col: Col) -> &Value {
        &row[col as usize]
    }

    /// Stat columns from the file, hashes as `sha256sum`/`md5sum` compute them; none
    /// over `--read_max`, for a gone file or when hashing is off.
    #[test]
    fn rows_carry_stat_and_hashes_of_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        fs::write(&f, b"hello file events\n").unwrap();
        let mut buf = vec![0; 4096];
        let on = Decoration {
            hash: true,
            read_max: 1 << 20,
        };
        let row = row(&event(&f, FileAction::Updated), on, &mut buf).into_values();
        let meta = fs::metadata(&f).unwrap();
        assert_eq!(cell(&row, Col::target_path), &Value::from(f.as_path()));
        assert_eq!(cell(&row, Col::category), &Value::from("c"));
        assert_eq!(cell(&row, Col::action), &Value::from("UPDATED"));
        assert_eq!(cell(&row, Col::transaction_id), &Value::Integer(7));
        assert_eq!(cell(&row, Col::inode), &Value::Integer(meta.ino() as i64));
        assert_eq!(cell(&row, Col::size), &Value::Integer(18));
        assert_eq!(
            cell(&row, Col::mode),
            &Value::from(format!("{:04o}", meta.mode() & 0o7777))
        );
        assert_eq!(cell(&row, Col::time), &Value::Integer(1_700_000_000));
        assert_eq!(cell(&row, Col::hashed), &Value::Integer(1));
        for (tool, col) in [
            ("sha256sum", Col::sha256),
            ("md5sum", Col::md5),
            ("sha1sum", Col::sha1),
        ] {
            let out = std::process::Command::new(tool).arg(&f).output().unwrap();
            let want = String::from_utf8(out.stdout).unwrap();
            let want = want.split_whitespace().next().unwrap().to_owned();
            assert_eq!(cell(&row, col), &Value::from(want), "{tool}");
        }
        assert_eq!(cell(&row, Col::eid), &Value::Null);

        let small = Decoration {
            hash: true,
            read_max: 4,
        };
        let row = super::row(&event(&f, FileAction::Created), small, &mut buf).into_values();
        assert_eq!(cell(&row, Col::hashed), &Value::Integer(-1));
        assert_eq!(cell(&row, Col::md5), &Value::from(""));

        // Not a change, or hashing off: no hashes, stat still there.
        let row =
            super::row(&event(&f, FileAction::AttributesModified), on, &mut buf).into_values();
        assert_eq!(cell(&row, Col::hashed), &Value::Integer(0));
        assert_eq!(cell(&row, Col::md5), &Value::Null);
        let off = Decoration { hash: false, ..on };
        let row = super::row(&event(&f, FileAction::Updated), off, &mut buf).into_values();
        assert_eq!(cell(&row, Col::hashed), &Value::Integer(0));
        assert_eq!(cell(&row, Col::uid), &Value::Integer(i64::from(meta.uid())));

        // A FIFO is not read (it would block): hashing fails at once.
        let fifo = tmp.path().join("p");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let row = super::row(&event(&fifo, FileAction::Created), on, &mut buf).into_values();
        assert_eq!(cell(&row, Col::hashed), &Value::Integer(-1));

        fs::remove_file(&f).unwrap();
        let row = super::row(&event(&f, FileAction::Deleted), on, &mut buf).into_values();
        assert_eq!(cell(&row, Col::inode), &Value::Null);
        assert_eq!(cell(&row, Col::action), &Value::from("DELETED"));
    }
}
