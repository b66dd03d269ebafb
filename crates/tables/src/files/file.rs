//! `file`: stat(2) facts about paths named by `path` or `directory` constraints.
//!
//! `path = X` looks at X itself; `path LIKE P` expands P with osquery's pattern rules
//! (files and folders, folders marked with a trailing `/`); `directory = D` and
//! `directory LIKE P` (folders only) list the entries directly inside each directory.
//! Rows come out sorted by path within each of those two groups, as osquery's path set
//! orders them. Only the system calls the query's columns need are made: no stat when
//! no stat column is read, no readlink unless `symlink_target_path` is.

use oxquery_sys::pattern::{self, Select};
use oxquery_sys::safe_read::Root;
use oxquery_table::{QueryContext, Rows, TableResult, Value, table};
use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fs::Metadata;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

table! {
    name: "file",
    description: "stat(2) details of the files and directories a query names by path, LIKE pattern or containing directory.",
    attributes: [UTILITY],
    columns: {
        path: Text [INDEX | REQUIRED | OPTIMIZED] "Path to examine; `LIKE` patterns expand, `%%` recursing into subdirectories",
        directory: Text [REQUIRED | OPTIMIZED] "Containing directory; constraining it yields one row per entry inside",
        filename: Text [] "Final path component (base name)",
        inode: BigInt [] "Index-node number on the file's device",
        uid: BigInt [] "Numeric ID of the user who owns it",
        gid: BigInt [] "Numeric ID of the group it belongs to",
        mode: Text [] "Permission, setuid/setgid and sticky bits as four octal digits, e.g. 0644",
        device: BigInt [] "For block and character devices, the device number they stand for (st_rdev); 0 otherwise",
        size: BigInt [] "Length in bytes (st_size)",
        block_size: Integer [] "I/O block size the file system prefers (st_blksize)",
        atime: BigInt [] "Unix time the content was last read",
        mtime: BigInt [] "Unix time the content was last written",
        ctime: BigInt [] "Unix time the inode last changed (owner, mode, links or content)",
        btime: BigInt [] "Birth time; always 0 on Linux, matching osquery",
        hard_links: Integer [] "Count of names linking to the inode",
        symlink: Integer [] "Whether the named entry itself is a symbolic link, checked with lstat: 1 or 0",
        r#type: Text [] "What the path resolves to: regular, directory, symlink, block, character, fifo, socket, or unknown (e.g. a broken link)",
        symlink_target_path: Text [] "Link contents as stored, not resolved; NULL unless the path is a symbolic link",
        attributes: Text [OTHER_PLATFORM] "Windows only: attribute letters of the file",
        volume_serial: Text [OTHER_PLATFORM] "Windows only: serial of the volume holding the file",
        file_id: Text [OTHER_PLATFORM] "Windows only: identifier of the file on its volume",
        file_version: Text [OTHER_PLATFORM | COLLATE_VERSION] "Windows only: version from the version resource",
        product_version: Text [OTHER_PLATFORM | COLLATE_VERSION] "Windows only: product version from the version resource",
        original_filename: Text [OTHER_PLATFORM] "Windows only: original name recorded in an executable",
        shortcut_target_path: Text [OTHER_PLATFORM] "Windows only: what a .lnk shortcut points to",
        shortcut_target_type: Text [OTHER_PLATFORM] "Windows only: kind of item a shortcut points to",
        shortcut_target_location: Text [OTHER_PLATFORM] "Windows only: folder of a shortcut's target",
        shortcut_start_in: Text [OTHER_PLATFORM] "Windows only: working directory a shortcut starts in",
        shortcut_run: Text [OTHER_PLATFORM] "Windows only: window state a shortcut opens with",
        shortcut_comment: Text [OTHER_PLATFORM] "Windows only: comment text of a shortcut",
        bsd_flags: Text [OTHER_PLATFORM] "macOS only: chflags(2) flags set on the file",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Look up the paths inside this process's mount namespace (paths named with =; LIKE patterns are not expanded there); 0 in rows from the host's",
        mount_namespace_id: Text [HIDDEN] "Mount namespace the row came from; NULL while only the host's is read",
    },
    examples: [
        "select * from file where path = '/etc/passwd'",
        "select * from file where directory = '/etc/'",
        "select * from file where path LIKE '/etc/%'",
        "select path, size from file where path LIKE '/var/log/%%'",
    ],
}

const STAT_COLUMNS: [Col; 12] = [
    Col::inode,
    Col::uid,
    Col::gid,
    Col::mode,
    Col::device,
    Col::size,
    Col::block_size,
    Col::atime,
    Col::mtime,
    Col::ctime,
    Col::hard_links,
    Col::r#type,
];

/// Which system calls the query's columns need.
#[derive(Debug, Clone, Copy)]
struct Needs {
    /// A link-following stat.
    stat: bool,
    /// An lstat (the link itself).
    lstat: bool,
    readlink: bool,
}

impl Needs {
    fn of(ctx: &QueryContext) -> Self {
        Needs {
            stat: STAT_COLUMNS.iter().any(|&c| ctx.is_used(c)),
            lstat: ctx.is_used(Col::symlink) || ctx.is_used(Col::symlink_target_path),
            readlink: ctx.is_used(Col::symlink_target_path),
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for root in crate::common::namespace_roots(ctx, Col::pid_with_namespace) {
        scan(ctx, rows, &root)?;
    }
    Ok(())
}

/// The rows of the paths the query names, as seen from `root`.
fn scan(ctx: &QueryContext, rows: &mut Rows, root: &Root) -> TableResult {
    let inside = root.pid() != 0;
    if inside {
        crate::common::no_patterns_inside(ctx, root, &[Col::path.into(), Col::directory.into()]);
    }
    let needs = Needs::of(ctx);
    let stop = || ctx.is_stopped();

    // Rows stream as paths are found. Only when several `=`/LIKE values could name one
    // path twice are the paths remembered, to list each once. Keyed by bytes, not
    // `PathBuf`, whose comparison would merge `d` and `d/`.
    let equal = ctx.eq_paths(Col::path).unwrap_or_default();
    let likes = match inside {
        false => ctx.patterns(Col::path, oxquery_table::Op::Like),
        true => Vec::new(),
    };
    let mut seen: Option<HashSet<OsString>> = (equal.len() + likes.len() > 1).then(HashSet::new);
    let mut first_time = |path: &Path| match seen.as_mut() {
        Some(seen) => seen.insert(path.as_os_str().to_owned()),
        None => true,
    };
    for p in &equal {
        ctx.check()?;
        let path = Path::new(p);
        if first_time(path) {
            let (dir, name) = pattern::split(p.as_bytes());
            add_row(rows, root, needs, path, dir, name, false);
        }
    }
    for like in &likes {
        pattern::expand_like_until(like, Select::All, &stop, |found| {
            if stop() {
                return ControlFlow::Break(());
            }
            if first_time(found) {
                let (dir, name) = pattern::split(found.as_os_str().as_bytes());
                add_row(rows, root, needs, found, dir, name, true);
            }
            ControlFlow::Continue(())
        });
        ctx.check()?;
    }

    let mut dirs: BTreeSet<OsString> = BTreeSet::new();
    dirs.extend(ctx.eq_paths(Col::directory).unwrap_or_default());
    for like in ctx
        .patterns(Col::directory, oxquery_table::Op::Like)
        .into_iter()
        .filter(|_| !inside)
    {
        pattern::expand_like(&like, Select::Folders, |found| {
            dirs.insert(found.as_os_str().to_owned());
            ControlFlow::Continue(())
        });
    }
    for dir in &dirs {
        ctx.check()?;
        let dir_bytes = dir.as_bytes();
        if inside {
            // A directory that cannot be listed simply contributes no rows.
            for name in root.read_dir_names(Path::new(dir)).unwrap_or_default() {
                let child = pattern::join(Path::new(dir), &name);
                add_row(rows, root, needs, &child, dir_bytes, name.as_bytes(), true);
            }
            continue;
        }
        // A directory that cannot be listed simply contributes no rows, as in osquery.
        let _ = pattern::children(Path::new(dir), |child, _| {
            let (_, name) = pattern::split(child.as_os_str().as_bytes());
            add_row(rows, root, needs, child, dir_bytes, name, true);
            ControlFlow::Continue(())
        });
    }
    Ok(())
}

/// A name as the file system holds it: bytes that need not be UTF-8, kept unchanged so
/// the row's `path` finds the file again.
fn text(bytes: &[u8]) -> Value {
    Value::from_bytes(bytes.to_vec())
}

/// One row for `path`; nothing when the path does not exist (an lstat fails).
fn add_row(
    rows: &mut Rows,
    root: &Root,
    needs: Needs,
    path: &Path,
    dir: &[u8],
    name: &[u8],
    exists: bool,
) {
    let link_meta = if needs.lstat || (!exists && !needs.stat) {
        match root.symlink_metadata(path) {
            Ok(m) => Some(m),
            Err(_) => return,
        }
    } else {
        None
    };
    let is_link = link_meta.as_ref().map(|m| m.file_type().is_symlink());
    // The followed stat, or None when the path is a broken link; the second value is
    // what the stat columns show (osquery falls back to the link's own lstat).
    let (followed, shown): (Option<Metadata>, Option<Metadata>) = if !needs.stat {
        (None, None)
    } else if is_link == Some(false) {
        // Not a link: the lstat already is the followed stat.
        (link_meta.clone(), link_meta.clone())
    } else {
        match root.metadata(path) {
            Ok(m) => (Some(m.clone()), Some(m)),
            Err(_) => match link_meta
                .clone()
                .or_else(|| root.symlink_metadata(path).ok())
            {
                Some(l) => (None, Some(l)),
                None => return,
            },
        }
    };

    let mut row = rows.row();
    row.set(Col::path, text(path.as_os_str().as_bytes()));
    row.set(Col::directory, text(dir));
    row.set(Col::filename, text(name));
    if let Some(m) = &shown {
        row.set(Col::inode, m.ino());
        row.set(Col::uid, m.uid());
        row.set(Col::gid, m.gid());
        row.set(Col::mode, format!("{:04o}", m.mode() & 0o7777));
        row.set(Col::device, m.rdev());
        row.set(Col::size, m.size());
        row.set(Col::block_size, m.blksize());
        row.set(Col::atime, m.atime());
        row.set(Col::mtime, m.mtime());
        row.set(Col::ctime, m.ctime());
        row.set(Col::hard_links, m.nlink());
        row.set(Col::r#type, followed.as_ref().map_or("unknown", kind));
    }
    row.set(Col::btime, 0);
    if let Some(link) = is_link {
        row.set(Col::symlink, link);
        if link
            && needs.readlink
            && let Ok(target) = root.read_link(path)
        {
            row.set(
                Col::symlink_target_path,
                text(target.as_os_str().as_bytes()),
            );
        }
    }
    row.set(Col::pid_with_namespace, root.pid());
    if let Some(ns) = root.mount_namespace_id() {
        row.set(Col::mount_namespace_id, ns);
    }
}

fn kind(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_file() {
        "regular"
    } else if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_block_device() {
        "block"
    } else if t.is_char_device() {
        "character"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else {
        "unknown"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rows_of;
    use oxquery_table::{Host, Op, Value};
    use std::ffi::CString;
    use std::fs;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn by_path(host: &Host, path: &str) -> Vec<Vec<Value>> {
        rows_of(
            &QueryContext::everything(&SPEC, host).with_constraint(Col::path, Op::Eq, path),
            generate,
        )
    }

    fn one(host: &Host, path: &Path) -> Vec<Value> {
        let mut rows = by_path(host, path.to_str().unwrap());
        assert_eq!(rows.len(), 1, "{}", path.display());
        rows.pop().unwrap()
    }

    fn t(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
    fn i(v: impl TryInto<i64>) -> Value {
        Value::Integer(v.try_into().ok().unwrap())
    }

    /// Checks the stat columns of `row` against `m` (what std reports for the same path).
    fn assert_stat(row: &[Value], m: &Metadata) {
        assert_eq!(row[Col::inode as usize], i(m.ino()));
        assert_eq!(row[Col::uid as usize], i(m.uid()));
        assert_eq!(row[Col::gid as usize], i(m.gid()));
        assert_eq!(
            row[Col::mode as usize],
            t(&format!("{:04o}", m.permissions().mode() & 0o7777))
        );
        assert_eq!(row[Col::device as usize], i(m.rdev()));
        assert_eq!(row[Col::size as usize], i(m.len()));
        assert_eq!(row[Col::block_size as usize], i(m.blksize()));
        assert_eq!(row[Col::atime as usize], i(m.atime()));
        assert_eq!(row[Col::mtime as usize], i(m.mtime()));
        assert_eq!(row[Col::ctime as usize], i(m.ctime()));
        assert_eq!(row[Col::hard_links as usize], i(m.nlink()));
        assert_eq!(row[Col::btime as usize], i(0));
        assert_eq!(row[Col::pid_with_namespace as usize], i(0));
        let other_platform = &row[Col::attributes as usize..=Col::bsd_flags as usize];
        assert!(other_platform.iter().all(Value::is_null));
        assert_eq!(row[Col::mount_namespace_id as usize], Value::Null);
    }

    #[test]
    fn pid_with_namespace_stats_that_process_s_files() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let host_file = c.make_hostile("etc/hostile", "host secret\n");
        let host = Host::default();
        let q = |column: Col, value: &str| {
            let ctx = c
                .query(&SPEC, &host, Col::pid_with_namespace.into())
                .with_constraint(column, Op::Eq, value);
            rows_of(&ctx, generate)
        };
        // /data/file.txt exists only inside the container's root.
        let rows = q(Col::path, "/data/file.txt");
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        let inside = fs::metadata(c.root().join("data/file.txt")).unwrap();
        assert_eq!(
            row[Col::size as usize],
            Value::Integer(crate::testing::Container::DATA.len() as i64)
        );
        assert_eq!(
            row[Col::inode as usize],
            Value::Integer(inside.ino() as i64)
        );
        assert_eq!(
            row[Col::pid_with_namespace as usize],
            Value::Integer(c.pid())
        );
        let ns = fs::read_link(format!("/proc/{}/ns/mnt", c.pid())).unwrap();
        let ns = ns
            .to_str()
            .unwrap()
            .trim_start_matches("mnt:[")
            .trim_end_matches(']');
        assert_eq!(row[Col::mount_namespace_id as usize], Value::from(ns));
        // directory = lists it there.
        let names: Vec<Value> = q(Col::directory, "/data")
            .iter()
            .map(|r| r[Col::filename as usize].clone())
            .collect();
        assert_eq!(names, [Value::from("file.txt")]);
        // The absolute link to a host file is a link there, pointing nowhere inside.
        let rows = q(Col::path, "/etc/hostile");
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row[Col::symlink as usize], Value::Integer(1));
        assert_eq!(
            row[Col::symlink_target_path as usize],
            Value::from(host_file.to_str().unwrap())
        );
        let link = fs::symlink_metadata(c.root().join("etc/hostile")).unwrap();
        assert_eq!(row[Col::inode as usize], Value::Integer(link.ino() as i64));
        assert_eq!(row[Col::r#type as usize], Value::from("unknown"));
    }

    #[test]
    fn stat_values_match_std_for_every_kind_of_file() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        let file = r.join("f");
        fs::write(&file, vec![7u8; 1234]).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o4640)).unwrap();
        fs::hard_link(&file, r.join("f2")).unwrap();
        symlink(&file, r.join("link")).unwrap();
        symlink("missing-target", r.join("broken")).unwrap();
        let fifo = CString::new(r.join("pipe").as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        fs::create_dir(r.join("d")).unwrap();
        let dir = r.to_str().unwrap();

        let row = one(&host, &file);
        let m = fs::symlink_metadata(&file).unwrap();
        assert_stat(&row, &m);
        assert_eq!(row[Col::mode as usize], t("4640"));
        assert_eq!(row[Col::size as usize], i(1234));
        assert_eq!(row[Col::hard_links as usize], i(2));
        assert_eq!(row[Col::path as usize], t(file.to_str().unwrap()));
        assert_eq!(row[Col::directory as usize], t(dir));
        assert_eq!(row[Col::filename as usize], t("f"));
        assert_eq!(row[Col::symlink as usize], i(0));
        assert_eq!(row[Col::r#type as usize], t("regular"));
        assert_eq!(row[Col::symlink_target_path as usize], Value::Null);

        // A link shows its target's stat, flags itself and names the target.
        let row = one(&host, &r.join("link"));
        assert_stat(&row, &fs::metadata(r.join("link")).unwrap());
        assert_eq!(row[Col::inode as usize], i(m.ino()));
        assert_eq!(row[Col::symlink as usize], i(1));
        assert_eq!(row[Col::r#type as usize], t("regular"));
        assert_eq!(
            row[Col::symlink_target_path as usize],
            t(file.to_str().unwrap())
        );

        // A broken link falls back to the link's own lstat and has type unknown.
        let row = one(&host, &r.join("broken"));
        let lm = fs::symlink_metadata(r.join("broken")).unwrap();
        assert_stat(&row, &lm);
        assert_eq!(row[Col::size as usize], i("missing-target".len()));
        assert_eq!(row[Col::symlink as usize], i(1));
        assert_eq!(row[Col::r#type as usize], t("unknown"));
        assert_eq!(row[Col::symlink_target_path as usize], t("missing-target"));

        let row = one(&host, &r.join("pipe"));
        assert_stat(&row, &fs::metadata(r.join("pipe")).unwrap());
        assert_eq!(row[Col::r#type as usize], t("fifo"));

        let row = one(&host, &r.join("d"));
        assert_stat(&row, &fs::metadata(r.join("d")).unwrap());
        assert_eq!(row[Col::r#type as usize], t("directory"));
        assert_eq!(row[Col::filename as usize], t("d"));

        let row = one(&host, Path::new("/dev/null"));
        assert_eq!(row[Col::r#type as usize], t("character"));
        assert_eq!(
            row[Col::device as usize],
            i(fs::metadata("/dev/null").unwrap().rdev())
        );
        assert_ne!(row[Col::device as usize], i(0));

        assert!(by_path(&host, &format!("{dir}/does-not-exist")).is_empty());
    }

    #[test]
    fn nonexistent_path_gives_no_row_even_without_stat_columns() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("here"), b"").unwrap();
        let ctx = |name: &str| {
            QueryContext::everything(&SPEC, &host)
                .with_constraint(Col::path, Op::Eq, tmp.path().join(name).to_str().unwrap())
                .using([Col::path])
        };
        assert!(rows_of(&ctx("gone"), generate).is_empty());
        let rows = rows_of(&ctx("here"), generate);
        assert_eq!(rows.len(), 1);
        // Projection: unread columns stay NULL.
        assert!(rows[0][1..].iter().all(Value::is_null));
    }

    #[test]
    fn recursive_like_finds_everything_and_terminates_on_a_loop() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs::create_dir_all(r.join("a/b/c")).unwrap();
        fs::write(r.join("top.txt"), b"1").unwrap();
        fs::write(r.join("a/b/c/deep.txt"), b"2").unwrap();
        fs::write(r.join("a/b/.dot"), b"3").unwrap();
        symlink(r, r.join("a/b/up")).unwrap();
        let dir = r.to_str().unwrap();
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host).with_constraint(
                Col::path,
                Op::Like,
                format!("{dir}/%%"),
            ),
            generate,
        );
        // Rows stream in walk order; compare as a sorted list.
        let mut paths: Vec<String> = rows
            .iter()
            .map(|r| r[Col::path as usize].as_text().unwrap().into_owned())
            .collect();
        paths.sort();
        let want: Vec<String> = [
            "a/",
            "a/b/",
            "a/b/.dot",
            "a/b/c/",
            "a/b/c/deep.txt",
            "a/b/up/",
            "top.txt",
        ]
        .iter()
        .map(|p| format!("{dir}/{p}"))
        .collect();
        assert_eq!(paths, want);
        // A folder found by LIKE: trailing `/`, directory without it, filename `.`.
        let row_of = |rel: &str| {
            let want = t(&format!("{dir}/{rel}"));
            rows.iter()
                .find(|r| r[Col::path as usize] == want)
                .unwrap_or_else(|| panic!("no row for {rel}"))
        };
        let a = row_of("a/");
        assert_eq!(a[Col::directory as usize], t(&format!("{dir}/a")));
        assert_eq!(a[Col::filename as usize], t("."));
        assert_eq!(a[Col::r#type as usize], t("directory"));
        let deep = row_of("a/b/c/deep.txt");
        assert_eq!(deep[Col::directory as usize], t(&format!("{dir}/a/b/c")));
        assert_eq!(deep[Col::filename as usize], t("deep.txt"));
        assert_eq!(deep[Col::size as usize], i(1));
        // The trailing `/` makes lstat(2) resolve the link, so it reads as a folder
        // (osquery stats the same string).
        let up = row_of("a/b/up/");
        assert_eq!(up[Col::symlink as usize], i(0));
        assert_eq!(up[Col::r#type as usize], t("directory"));
        assert_eq!(up[Col::inode as usize], i(fs::metadata(r).unwrap().ino()));
    }

    #[test]
    fn directory_lists_direct_children() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs::create_dir(r.join("sub")).unwrap();
        fs::write(r.join("sub/inner"), b"").unwrap();
        fs::write(r.join("x y"), b"").unwrap();
        fs::write(r.join(".hid"), b"").unwrap();
        let dir = r.to_str().unwrap();
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host)
                .with_constraint(Col::directory, Op::Eq, dir)
                .using([Col::path, Col::directory, Col::filename, Col::r#type]),
            generate,
        );
        let mut got: Vec<(String, String, String, String)> = rows
            .iter()
            .map(|r| {
                let s = |c: Col| r[c as usize].as_text().unwrap().into_owned();
                (
                    s(Col::path),
                    s(Col::directory),
                    s(Col::filename),
                    s(Col::r#type),
                )
            })
            .collect();
        got.sort();
        let e = |n: &str, k: &str| {
            (
                format!("{dir}/{n}"),
                dir.to_owned(),
                n.to_owned(),
                k.to_owned(),
            )
        };
        assert_eq!(
            got,
            vec![
                e(".hid", "regular"),
                e("sub", "directory"),
                e("x y", "regular")
            ]
        );

        // `directory LIKE` keeps folders only and lists each.
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host).with_constraint(
                Col::directory,
                Op::Like,
                format!("{dir}/s%"),
            ),
            generate,
        );
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][Col::path as usize], t(&format!("{dir}/sub/inner")));
        assert_eq!(rows[0][Col::directory as usize], t(&format!("{dir}/sub/")));

        // A file named as a directory lists nothing.
        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host).with_constraint(
                Col::directory,
                Op::Eq,
                format!("{dir}/x y"),
            ),
            generate,
        );
        assert!(rows.is_empty());
    }

    #[test]
    fn the_root_is_a_row_of_its_own() {
        let host = Host::default();
        let rows = by_path(&host, "/");
        assert_eq!(rows[0][Col::filename as usize], t("/"));
        assert_eq!(rows[0][Col::directory as usize], t(""));
    }

    #[test]
    fn schema_text_matches_osquery() {
        assert_eq!(SPEC.columns.len(), 33);
        let sql = SPEC.create_statement();
        assert!(sql.starts_with(
            "CREATE TABLE file(`path` TEXT, `directory` TEXT, `filename` TEXT, `inode` BIGINT"
        ));
        assert!(sql.contains("`type` TEXT, `symlink_target_path` TEXT, `attributes` TEXT HIDDEN"));
        assert!(sql.contains("`file_version` TEXT HIDDEN COLLATE VERSION"));
        assert!(sql.ends_with(
            "`pid_with_namespace` INTEGER HIDDEN, `mount_namespace_id` TEXT HIDDEN, \
             PRIMARY KEY (`path`, `pid_with_namespace`)) WITHOUT ROWID"
        ));
    }

    fn engine() -> oxquery_engine::Engine {
        crate::testing::engine(&[&TABLE])
    }

    #[test]
    fn a_walk_of_the_whole_filesystem_stops_at_its_deadline() {
        use std::time::{Duration, Instant};
        let engine = engine();
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let err = engine
            .query_until(
                "SELECT count(*) FROM file WHERE path LIKE '/%%'",
                Some(start + timeout),
            )
            .unwrap_err();
        let elapsed = start.elapsed();
        // SQLITE_INTERRUPT: from the generator's check ("interrupted: the query ran past
        // its deadline") or SQLite's progress handler ("interrupted"), whichever is first.
        assert!(err.to_string().starts_with("interrupted"), "{err}");
        // The bound: within 100 ms of the deadline.
        assert!(
            elapsed >= timeout && elapsed < timeout + Duration::from_millis(100),
            "{elapsed:?}"
        );
    }

    #[test]
    fn limit_stops_a_walk_early() {
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..200 {
            fs::write(tmp.path().join(format!("f{i}")), b"x").unwrap();
        }
        let engine = engine();
        let sql = format!(
            "SELECT path FROM file WHERE path LIKE '{}/%%' LIMIT 2",
            tmp.path().display()
        );
        let r = engine.query(&sql).unwrap();
        assert_eq!(r.rows.len(), 2);
        let all = engine
            .query(&format!(
                "SELECT count(*) FROM file WHERE path LIKE '{}/%%'",
                tmp.path().display()
            ))
            .unwrap();
        assert_eq!(all.rows[0][0], Value::Integer(200));
    }

    #[test]
    fn names_that_are_not_utf8_keep_their_bytes_and_find_their_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_str().unwrap();
        let names: [&[u8]; 2] = [b"a\xff", b"a\xfe"];
        let paths = crate::testing::files_named(tmp.path(), &names);
        let engine = engine();
        // Each row's path, fed back as a constraint, finds that file and no other.
        let r = engine
            .query(&format!(
                "SELECT f1.filename, f2.path, f2.size FROM file f1 \
                 JOIN file f2 ON f2.path = f1.path WHERE f1.directory = '{dir}' \
                 ORDER BY f2.size"
            ))
            .unwrap();
        assert_eq!(r.rows.len(), 2, "{:?}", r.rows);
        for (i, row) in r.rows.iter().enumerate() {
            assert_eq!(row[0], Value::Blob(names[i].to_vec()));
            assert_eq!(row[1], Value::Blob(paths[i].clone()));
            assert_eq!(row[2], Value::Integer(i as i64 + 1));
        }
        // SQLite sees TEXT, so the bytes compare with a text literal's.
        let r = engine
            .query(&format!(
                "SELECT typeof(path), size FROM file WHERE path = '{dir}/' || CAST(x'61ff' AS TEXT)"
            ))
            .unwrap();
        assert_eq!(
            r.rows,
            [vec![Value::Text("text".into()), Value::Integer(1)]]
        );
    }
}
