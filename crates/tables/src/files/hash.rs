//! `hash`: MD5, SHA-1 and SHA-256 digests of regular files.
//!
//! Files are chosen as in `file`: `path = X`, `path LIKE P` (files only), `directory = D`
//! or `directory LIKE P` (the regular files directly inside). Links are followed;
//! directories and other non-regular files give no row. Only the digests the query reads
//! are computed, all in one pass over the file in 1 MiB reads.
//!
//! Files are opened through the safe opener (`oxquery_sys::safe_read`). Like osquery, a
//! file larger than the read limit (`--read_max`, 50 MiB by default; see
//! [`oxquery_table::TableSettings`]) is not read: its row carries empty digests and a
//! warning is logged. The limit counts the bytes read, so a `/proc` file reporting size 0
//! (`/proc/self/pagemap`) stops there too. An unreadable file, one truncated while it was
//! read, or a kernel file that would wait for more (`/proc/kmsg`) gives empty digests and
//! a warning as well. A FIFO, socket or device named by `path` gives no row and a warning.
//!
//! Digests are cached between scans as in osquery (`--hash_cache_max` files, 500 by
//! default; `--disable_hash_cache` turns it off): a file's digests are reused while its
//! path, device, inode, size and modification time are those it had when it was read,
//! so a rewrite that keeps all of them (content changed, size and mtime restored) keeps
//! the old digests, as in osquery. Unlike osquery, the modification time is compared to
//! the nanosecond (osquery: seconds), so two same-size writes in one second are seen.
//! At the limit, the least recently used file is dropped. The cache belongs to the
//! engine (`Host::state`), not the process; failed reads are never cached.

use oxquery_sys::digest::{self, Digests, Wanted};
use oxquery_sys::pattern::{self, Select};
use oxquery_sys::safe_read::{self, Policy, Root};
use oxquery_table::{Op, QueryContext, Rows, TableResult, Value, table};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::ops::ControlFlow;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

table! {
    name: "hash",
    description: "MD5, SHA-1 and SHA-256 of regular files picked by path, LIKE pattern or containing directory.",
    columns: {
        path: Text [INDEX | REQUIRED | OPTIMIZED] "Regular file to digest; `LIKE` patterns expand, `%%` recursing into subdirectories",
        directory: Text [REQUIRED | OPTIMIZED] "Containing directory; constraining it digests each regular file directly inside",
        md5: Text [COLLATE_NOCASE] "MD5 of the content in lowercase hex; empty if unreadable or over --read_max",
        sha1: Text [COLLATE_NOCASE] "SHA-1 of the content in lowercase hex; empty if unreadable or over --read_max",
        sha256: Text [COLLATE_NOCASE] "SHA-256 of the content in lowercase hex; empty if unreadable or over --read_max",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Hash the files inside this process's mount namespace (paths named with =; LIKE patterns are not expanded there); 0 in rows from the host's",
        mount_namespace_id: Text [HIDDEN] "Mount namespace the row came from; NULL while only the host's is read",
    },
    examples: [
        "select * from hash where path = '/etc/passwd'",
        "select sha256 from hash where directory = '/usr/bin/'",
    ],
}

const CHUNK: usize = 1 << 20;

/// Where an engine keeps this table's [`DigestCache`] (in `Host::state`).
const CACHE_KEY: &str = "hash";

/// What to compute for each file of a scan.
#[derive(Clone, Copy)]
struct Job<'a> {
    wanted: Wanted,
    /// How files are opened: the safe opener, at most `--read_max` bytes.
    policy: Policy,
    /// The query's stop check, polled between reads of a file.
    stop: &'a dyn Fn() -> bool,
    /// The engine's digest cache and its size limit; `None` with `--disable_hash_cache`
    /// and inside another process's mount namespace (the cache knows our paths).
    cache: Option<(&'a Mutex<DigestCache>, usize)>,
    /// Where paths resolve: ours, or a process's root (`pid_with_namespace`).
    root: &'a Root,
}

/// What says a file's content is the one digested, without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    /// The stamp of what `path` names now (links followed, as the file is read).
    fn of(path: &Path) -> Option<Stamp> {
        let m = fs::metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        })
    }
}

struct Cached {
    stamp: Stamp,
    /// The digests computed so far for this stamp (a query may want only some).
    digests: Digests,
    /// When it was last used, on the cache's own clock (the key of `by_use`).
    used: u64,
}

/// osquery's hash cache: digests by path, reused while the file's [`Stamp`] is unchanged;
/// at the limit the least recently used path goes. One per engine.
#[derive(Default)]
struct DigestCache {
    entries: HashMap<OsString, Cached>,
    /// Paths by last use, oldest first.
    by_use: BTreeMap<u64, OsString>,
    clock: u64,
    /// Files read to digest them (what the cache saves; for tests).
    computed: u64,
}

impl DigestCache {
    /// The digests kept for `path` when it still has `stamp` (some may be missing).
    fn get(&mut self, path: &OsStr, stamp: Stamp) -> Option<Digests> {
        self.clock += 1;
        let entry = self.entries.get_mut(path).filter(|e| e.stamp == stamp)?;
        self.by_use.remove(&entry.used);
        entry.used = self.clock;
        self.by_use.insert(self.clock, path.to_owned());
        Some(entry.digests.clone())
    }

    /// Keeps `digests` of `path` read at `stamp` (with those already kept for that
    /// stamp), then drops the least recently used paths beyond `max`.
    fn put(&mut self, path: &OsStr, stamp: Stamp, mut digests: Digests, max: usize) {
        self.clock += 1;
        if let Some(old) = self.entries.remove(path) {
            self.by_use.remove(&old.used);
            if old.stamp == stamp {
                digests.md5 = digests.md5.or(old.digests.md5);
                digests.sha1 = digests.sha1.or(old.digests.sha1);
                digests.sha256 = digests.sha256.or(old.digests.sha256);
            }
        }
        let cached = Cached {
            stamp,
            digests,
            used: self.clock,
        };
        self.entries.insert(path.to_owned(), cached);
        self.by_use.insert(self.clock, path.to_owned());
        while self.entries.len() > max {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
    }
}

/// The digests `job` wants of the file at `path`, from the cache when its stamp is
/// unchanged; otherwise read (see [`hash_path`]) and, when the read succeeded and the
/// file did not change meanwhile, kept.
fn cached_hash(path: &Path, job: Job, buf: &mut Vec<u8>) -> Digests {
    let Some((cache, max)) = job.cache else {
        return hash_path(path, job, buf);
    };
    let Some(stamp) = Stamp::of(path) else {
        return hash_path(path, job, buf);
    };
    let lock = || cache.lock().unwrap_or_else(|p| p.into_inner());
    let have = lock().get(path.as_os_str(), stamp).unwrap_or_default();
    let missing = Wanted {
        md5: job.wanted.md5 && have.md5.is_none(),
        sha1: job.wanted.sha1 && have.sha1.is_none(),
        sha256: job.wanted.sha256 && have.sha256.is_none(),
    };
    let mut digests = have;
    if missing.any() {
        lock().computed += 1;
        // Not holding the lock while reading: another scan of this engine may go on.
        let Some(fresh) = try_hash(
            path,
            Job {
                wanted: missing,
                ..job
            },
            buf,
        ) else {
            return Digests::empty(job.wanted);
        };
        // Changed while it was read: these digests are of neither version; not kept.
        if Stamp::of(path) == Some(stamp) {
            lock().put(path.as_os_str(), stamp, fresh.clone(), max);
        }
        digests.md5 = digests.md5.or(fresh.md5);
        digests.sha1 = digests.sha1.or(fresh.sha1);
        digests.sha256 = digests.sha256.or(fresh.sha256);
    }
    // Only what the query asked for (the cache may hold more).
    Digests {
        md5: digests.md5.filter(|_| job.wanted.md5),
        sha1: digests.sha1.filter(|_| job.wanted.sha1),
        sha256: digests.sha256.filter(|_| job.wanted.sha256),
    }
}

/// Digests of the file at `path`, or empty strings, with a warning, when it is larger
/// than the limit (by its size, or by what reading it gave), shrank while it was read,
/// cannot be read, or the query stopped.
fn hash_path(path: &Path, job: Job, buf: &mut Vec<u8>) -> Digests {
    try_hash(path, job, buf).unwrap_or_else(|| Digests::empty(job.wanted))
}

/// [`hash_path`], `None` (after the warning) when the file could not be digested.
fn try_hash(path: &Path, job: Job, buf: &mut Vec<u8>) -> Option<Digests> {
    if buf.is_empty() {
        buf.resize(CHUNK, 0);
    }
    match digest::hash_file_in(job.root, path, &job.policy, job.wanted, job.stop, buf) {
        Ok(d) => Some(d),
        // The scan ends at its next check; the row is not read.
        Err(digest::Error::Stopped) => None,
        Err(e @ digest::Error::TooLarge { .. }) => {
            log::warn!(
                "Cannot read file that exceeds size limit: {} ({e})",
                path.display()
            );
            None
        }
        Err(e) => {
            log::warn!("Failed to hash {}: {e}", path.display());
            None
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for root in crate::common::namespace_roots(ctx, Col::pid_with_namespace) {
        scan(ctx, rows, &root)?;
    }
    Ok(())
}

/// The rows of the files the query names, as seen from `root`.
fn scan(ctx: &QueryContext, rows: &mut Rows, root: &Root) -> TableResult {
    let inside = root.pid() != 0;
    let wanted = Wanted {
        md5: ctx.is_used(Col::md5),
        sha1: ctx.is_used(Col::sha1),
        sha256: ctx.is_used(Col::sha256),
    };
    let policy = crate::common::user_file_policy(ctx);
    // Allocated on the first file that is read, reused for the rest of the scan.
    let mut buf = Vec::new();

    // Byte order, as osquery's path set; `PathBuf` ordering would merge `d` and `d/`.
    let mut paths: BTreeSet<OsString> = BTreeSet::new();
    paths.extend(ctx.eq_paths(Col::path).unwrap_or_default());
    let stop = || ctx.is_stopped();
    let settings = ctx.settings();
    let cache =
        (!inside && !settings.disable_hash_cache && settings.hash_cache_max > 0).then(|| {
            ctx.host()
                .state
                .get_or_insert_with(CACHE_KEY, || Mutex::new(DigestCache::default()))
        });
    let job = Job {
        wanted,
        policy,
        stop: &stop,
        cache: cache
            .as_deref()
            .map(|c| (c, settings.hash_cache_max as usize)),
        root,
    };
    if inside {
        crate::common::no_patterns_inside(ctx, root, &[Col::path.into(), Col::directory.into()]);
    }
    for like in ctx
        .patterns(Col::path, Op::Like)
        .into_iter()
        .filter(|_| !inside)
    {
        pattern::expand_like_until(&like, Select::Files, &stop, |found| {
            paths.insert(found.as_os_str().to_owned());
            ControlFlow::Continue(())
        });
        ctx.check()?;
    }
    for path in &paths {
        ctx.check()?;
        let path = Path::new(path);
        match root.metadata(path) {
            Ok(m) if m.is_file() => {}
            // What osquery leaves out silently: nothing there, or a directory.
            Err(_) => continue,
            Ok(m) if m.is_dir() => continue,
            // A FIFO, socket or device named by the query: never opened (a FIFO would
            // block, a device never end), and said so.
            Ok(m) => {
                log::warn!(
                    "Table hash: not hashing {}: not a regular file ({})",
                    path.display(),
                    safe_read::kind_name(m.file_type())
                );
                continue;
            }
        }
        let (dir, _) = pattern::split(path.as_os_str().as_bytes());
        add_row(rows, path, dir, job, &mut buf);
    }

    let mut dirs: BTreeSet<OsString> = BTreeSet::new();
    dirs.extend(ctx.eq_paths(Col::directory).unwrap_or_default());
    for like in ctx
        .patterns(Col::directory, Op::Like)
        .into_iter()
        .filter(|_| !inside)
    {
        pattern::expand_like_until(&like, Select::Folders, &stop, |found| {
            dirs.insert(found.as_os_str().to_owned());
            ControlFlow::Continue(())
        });
        ctx.check()?;
    }
    for dir in &dirs {
        ctx.check()?;
        if inside {
            // A directory that cannot be listed contributes no rows, as in osquery.
            let names = root.read_dir_names(Path::new(dir)).unwrap_or_default();
            for name in names {
                ctx.check()?;
                let child = pattern::join(Path::new(dir), &name);
                if root.metadata(&child).is_ok_and(|m| m.is_file()) {
                    add_row(rows, &child, dir.as_bytes(), job, &mut buf);
                }
            }
            continue;
        }
        // A directory that cannot be listed contributes no rows, as in osquery.
        let _ = pattern::children(Path::new(dir), |child, kind| {
            let regular = match kind {
                Some(t) if t.is_file() => true,
                Some(t) if !t.is_symlink() => false,
                // Links (and unknown types) are judged by what they point to.
                _ => fs::metadata(child).is_ok_and(|m| m.is_file()),
            };
            if regular {
                add_row(rows, child, dir.as_bytes(), job, &mut buf);
            }
            if stop() {
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
    }
    // A file cut short by a stop has empty digests: the scan must not end as complete.
    ctx.check()
}

fn add_row(rows: &mut Rows, path: &Path, dir: &[u8], job: Job, buf: &mut Vec<u8>) {
    let digests = if job.wanted.any() {
        cached_hash(path, job, buf)
    } else {
        Digests::default()
    };
    let mut row = rows.row();
    // Values are UTF-8 text; names that are not are shown with replacement characters.
    row.set(Col::path, path);
    // Names keep their bytes (UTF-8 or not), so a row's path finds its file again.
    row.set(Col::directory, Value::from_bytes(dir.to_vec()));
    row.set(Col::md5, digests.md5);
    row.set(Col::sha1, digests.sha1);
    row.set(Col::sha256, digests.sha256);
    row.set(Col::pid_with_namespace, job.root.pid());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::rows_of;
    use oxquery_table::{Host, Value};
    use std::process::Command;

    const ALL: Wanted = Wanted::ALL;

    fn t(s: &str) -> Value {
        Value::Text(s.to_owned())
    }

    /// The first word of a coreutils `*sum` line for `path`.
    fn coreutils(tool: &str, path: &Path) -> String {
        let out = Command::new(tool).arg(path).output().unwrap();
        assert!(out.status.success(), "{tool} failed");
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn pid_with_namespace_hashes_that_process_s_files_only() {
        use oxquery_table::Op;
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        c.make_hostile("etc/hostile", "host secret\n");
        let host = Host::default();
        let q = |path: &str| {
            let ctx = c
                .query(&SPEC, &host, Col::pid_with_namespace.into())
                .with_constraint(Col::path, Op::Eq, path);
            rows_of(&ctx, generate)
        };
        let rows = q("/data/file.txt");
        assert_eq!(rows.len(), 1);
        let want = digest::hash_reader(
            &mut crate::testing::Container::DATA.as_bytes(),
            Wanted {
                md5: true,
                sha1: true,
                sha256: true,
            },
            u64::MAX,
            &|| false,
            &mut vec![0; 4096],
        )
        .unwrap();
        assert_eq!(
            rows[0][Col::sha256 as usize],
            Value::from(want.sha256.unwrap().as_str())
        );
        assert_eq!(
            rows[0][Col::md5 as usize],
            Value::from(want.md5.unwrap().as_str())
        );
        assert_eq!(
            rows[0][Col::pid_with_namespace as usize],
            Value::Integer(c.pid())
        );
        // The link to the host file resolves to nothing inside the root: no row.
        assert!(q("/etc/hostile").is_empty());
    }

    #[test]
    fn random_file_matches_coreutils_and_projection_skips_digests() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("random.bin");
        // 3 MiB + a tail, so reads cross several 1 MiB chunks and end with a partial one.
        let mut data = vec![0u8; 3 * 1024 * 1024 + 12_345];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for b in &mut data {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        fs::write(&path, &data).unwrap();
        let p = path.to_str().unwrap();

        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host).with_constraint(Col::path, Op::Eq, p),
            generate,
        );
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row[Col::path as usize], t(p));
        assert_eq!(
            row[Col::directory as usize],
            t(tmp.path().to_str().unwrap())
        );
        assert_eq!(row[Col::md5 as usize], t(&coreutils("md5sum", &path)));
        assert_eq!(row[Col::sha1 as usize], t(&coreutils("sha1sum", &path)));
        assert_eq!(row[Col::sha256 as usize], t(&coreutils("sha256sum", &path)));
        assert_eq!(row[Col::pid_with_namespace as usize], Value::Integer(0));
        assert_eq!(row[Col::mount_namespace_id as usize], Value::Null);

        let rows = rows_of(
            &QueryContext::everything(&SPEC, &host)
                .with_constraint(Col::path, Op::Eq, p)
                .using([Col::path, Col::sha256]),
            generate,
        );
        assert_eq!(
            rows[0][Col::sha256 as usize],
            t(&coreutils("sha256sum", &path))
        );
        assert_eq!(rows[0][Col::md5 as usize], Value::Null);
        assert_eq!(rows[0][Col::sha1 as usize], Value::Null);
    }

    #[test]
    fn files_only_links_followed_directories_skipped() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs::write(r.join("empty"), b"").unwrap();
        fs::write(r.join("abc"), b"abc").unwrap();
        fs::create_dir(r.join("sub")).unwrap();
        fs::write(r.join("sub/inner"), b"abc").unwrap();
        std::os::unix::fs::symlink(r.join("abc"), r.join("to-abc")).unwrap();
        std::os::unix::fs::symlink(r.join("sub"), r.join("to-sub")).unwrap();
        let dir = r.to_str().unwrap();
        let abc_sha1 = t("a9993e364706816aba3e25717850c26c9cd0d89d");
        let base =
            || QueryContext::everything(&SPEC, &host).using([Col::path, Col::directory, Col::sha1]);

        // A directory named by path gives no row.
        assert!(
            rows_of(
                &base().with_constraint(Col::path, Op::Eq, format!("{dir}/sub")),
                generate
            )
            .is_empty()
        );
        assert!(
            rows_of(
                &base().with_constraint(Col::path, Op::Eq, format!("{dir}/nope")),
                generate
            )
            .is_empty()
        );

        let rows = rows_of(
            &base().with_constraint(Col::path, Op::Like, format!("{dir}/%")),
            generate,
        );
        let got: Vec<(Value, Value)> = rows
            .iter()
            .map(|r| (r[Col::path as usize].clone(), r[Col::sha1 as usize].clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (t(&format!("{dir}/abc")), abc_sha1.clone()),
                (
                    t(&format!("{dir}/empty")),
                    t("da39a3ee5e6b4b0d3255bfef95601890afd80709")
                ),
                (t(&format!("{dir}/to-abc")), abc_sha1.clone()),
            ]
        );

        // Recursive: the file below the folder; the link to that folder is not walked again.
        let rows = rows_of(
            &base().with_constraint(Col::path, Op::Like, format!("{dir}/%%")),
            generate,
        );
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert_eq!(rows[2][Col::path as usize], t(&format!("{dir}/sub/inner")));
        assert_eq!(rows[2][Col::directory as usize], t(&format!("{dir}/sub")));

        // `directory =`: the directory column is the constraint as given.
        let rows = rows_of(
            &base().with_constraint(Col::directory, Op::Eq, format!("{dir}/")),
            generate,
        );
        let mut paths: Vec<Value> = rows.iter().map(|r| r[Col::path as usize].clone()).collect();
        paths.sort_by_key(|v| v.to_string());
        assert_eq!(
            paths,
            vec![
                t(&format!("{dir}/abc")),
                t(&format!("{dir}/empty")),
                t(&format!("{dir}/to-abc"))
            ]
        );
        assert!(
            rows.iter()
                .all(|r| r[Col::directory as usize] == t(&format!("{dir}/")))
        );
    }

    #[test]
    fn oversized_and_unreadable_files_get_empty_digests() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big");
        fs::write(&path, vec![1u8; 4096]).unwrap();
        let mut buf = Vec::new();
        let empty = Digests {
            md5: Some(String::new()),
            sha1: Some(String::new()),
            sha256: Some(String::new()),
        };
        let ours = Root::host();
        let job = |limit| Job {
            wanted: ALL,
            policy: Policy::user_file(limit),
            stop: &|| false,
            cache: None,
            root: &ours,
        };
        assert_eq!(hash_path(&path, job(4095), &mut buf), empty);
        let exact = hash_path(&path, job(4096), &mut buf);
        assert_eq!(exact.md5.unwrap().len(), 32);
        assert_eq!(
            hash_path(&tmp.path().join("gone"), job(u64::MAX), &mut buf),
            empty
        );
    }

    fn hash_of(path: &Path, read_max: u64) -> (Vec<Vec<Value>>, Vec<(log::Level, String)>) {
        crate::common::testing::rows_for_path(&SPEC, generate, Col::path as usize, path, read_max)
    }

    #[test]
    fn a_fifo_gives_no_row_and_a_warning_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        crate::common::testing::mkfifo(&fifo);
        let (rows, logged) = hash_of(&fifo, oxquery_table::DEFAULT_READ_MAX);
        assert!(rows.is_empty(), "{rows:?}");
        crate::common::testing::assert_logged(&logged, log::Level::Warn, &fifo, "a FIFO");
    }

    /// `/proc/self/pagemap` reports size 0 and reads on for hundreds of gigabytes: the
    /// limit counts the bytes read, so the row comes at once, without digests.
    #[test]
    fn an_endless_proc_file_stops_at_read_max() {
        let pagemap = Path::new("/proc/self/pagemap");
        let (rows, logged) = hash_of(pagemap, 1000);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][Col::sha256 as usize], t(""));
        assert_eq!(rows[0][Col::md5 as usize], t(""));
        crate::common::testing::assert_logged(&logged, log::Level::Warn, pagemap, "1000 bytes");
        // A small kernel file within the limit hashes whole, as sha256sum reads it.
        let tmp = tempfile::tempdir().unwrap();
        let copy = tmp.path().join("version");
        std::fs::write(&copy, std::fs::read("/proc/version").unwrap()).unwrap();
        let (rows, _) = hash_of(Path::new("/proc/version"), 1 << 20);
        assert_eq!(
            rows[0][Col::sha256 as usize],
            t(&coreutils("sha256sum", &copy))
        );
    }

    #[test]
    fn a_stopped_scan_ends_with_the_interruption() {
        let host = Host::default();
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("a"), b"abc").unwrap();
        let token = oxquery_table::Cancel::new();
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::directory, Op::Eq, tmp.path().to_str().unwrap())
            .with_interrupt(oxquery_table::Interrupt::new(token.clone(), None));
        assert_eq!(rows_of(&ctx, generate).len(), 1);
        token.cancel();
        let err = Rows::collect(&ctx, generate).unwrap_err();
        assert!(
            matches!(
                err,
                oxquery_table::TableError::Interrupted(oxquery_table::StopReason::Cancelled)
            ),
            "{err:?}"
        );
    }

    #[test]
    fn schema_text_matches_osquery() {
        assert_eq!(
            SPEC.create_statement(),
            "CREATE TABLE hash(`path` TEXT, `directory` TEXT, `md5` TEXT COLLATE NOCASE, \
             `sha1` TEXT COLLATE NOCASE, `sha256` TEXT COLLATE NOCASE, \
             `pid_with_namespace` INTEGER HIDDEN, `mount_namespace_id` TEXT HIDDEN, \
             PRIMARY KEY (`path`, `pid_with_namespace`)) WITHOUT ROWID"
        );
    }

    #[test]
    fn names_that_are_not_utf8_are_hashed_and_found_by_their_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let names: [&[u8]; 2] = [b"a\xff", b"a\xfe"];
        let paths = crate::testing::files_named(tmp.path(), &names);
        let engine = crate::testing::engine(&[&TABLE]);
        // Listed by directory, each row's path fed back as `path =` finds its own file.
        let r = engine
            .query(&format!(
                "SELECT h2.path, h2.sha256 FROM hash h1 JOIN hash h2 ON h2.path = h1.path \
                 WHERE h1.directory = '{}' ORDER BY h2.sha256",
                tmp.path().display()
            ))
            .unwrap();
        // sha256sum, given each file by its own bytes.
        let mut expected: Vec<(Value, Value)> = paths
            .iter()
            .map(|p| {
                use std::os::unix::ffi::OsStrExt;
                let out = std::process::Command::new("sha256sum")
                    .arg(std::ffi::OsStr::from_bytes(p))
                    .output()
                    .expect("run sha256sum");
                let out = String::from_utf8_lossy(&out.stdout).into_owned();
                let digest = out.split_whitespace().next().expect("a digest").to_owned();
                (Value::Blob(p.clone()), t(&digest))
            })
            .collect();
        expected.sort_by_key(|a| a.1.to_string());
        let got: Vec<(Value, Value)> = r
            .rows
            .iter()
            .map(|row| (row[0].clone(), row[1].clone()))
            .collect();
        assert_eq!(got, expected);
    }

    // ---- the digest cache ----

    /// A host whose engine has the cache with these flags.
    fn host_with(hash_cache_max: u32, disable_hash_cache: bool) -> Host {
        Host {
            settings: oxquery_table::TableSettings {
                hash_cache_max,
                disable_hash_cache,
                ..oxquery_table::TableSettings::DEFAULT
            },
            ..Host::default()
        }
    }

    /// The `sha256` the table gives for `path` on `host`'s engine.
    fn sha256_on(host: &Host, path: &Path) -> Value {
        let ctx = QueryContext::everything(&SPEC, host)
            .with_constraint(Col::path, Op::Eq, path.to_str().unwrap())
            .using([Col::path, Col::sha256]);
        let rows = rows_of(&ctx, generate);
        assert_eq!(rows.len(), 1, "{}", path.display());
        rows[0][Col::sha256 as usize].clone()
    }

    /// Files `host`'s engine has read to digest them.
    fn computed(host: &Host) -> u64 {
        let cache = host
            .state
            .get_or_insert_with(CACHE_KEY, || Mutex::new(DigestCache::default()));
        let cache = cache.lock().unwrap();
        cache.computed
    }

    /// Overwrites `path` in place (same inode) with `content`, then gives it back the
    /// modification time it had.
    fn rewrite_keeping_mtime(path: &Path, content: &[u8]) {
        let mtime = fs::metadata(path).unwrap().modified().unwrap();
        fs::write(path, content).unwrap();
        set_mtime(path, mtime);
    }

    fn set_mtime(path: &Path, mtime: std::time::SystemTime) {
        let file = fs::OpenOptions::new().write(true).open(path).unwrap();
        file.set_times(fs::FileTimes::new().set_modified(mtime))
            .unwrap();
    }

    #[test]
    fn a_digest_is_reused_while_inode_size_and_mtime_hold() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, b"first content").unwrap();
        let host = Host::default();
        let first = t(&coreutils("sha256sum", &path));
        assert_eq!(sha256_on(&host, &path), first);
        assert_eq!(computed(&host), 1);

        // New content, same size, mtime restored: osquery keeps the old digest, and so
        // does this engine without reading the file; another engine reads it.
        rewrite_keeping_mtime(&path, b"other content");
        let second = t(&coreutils("sha256sum", &path));
        assert_ne!(first, second);
        assert_eq!(sha256_on(&host, &path), first);
        assert_eq!(computed(&host), 1);
        assert_eq!(sha256_on(&Host::default(), &path), second);

        // A later mtime: read again.
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        set_mtime(&path, mtime + std::time::Duration::from_secs(1));
        assert_eq!(sha256_on(&host, &path), second);
        assert_eq!(computed(&host), 2);
        assert_eq!(sha256_on(&host, &path), second);
        assert_eq!(computed(&host), 2);

        // Another size, mtime restored: read again.
        rewrite_keeping_mtime(&path, b"longer content than before");
        assert_eq!(sha256_on(&host, &path), t(&coreutils("sha256sum", &path)));
        assert_eq!(computed(&host), 3);

        // Another inode (a new file renamed over it), same size and mtime: read again.
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        let next = tmp.path().join("f.new");
        fs::write(&next, b"LONGER CONTENT THAN BEFORE").unwrap();
        set_mtime(&next, mtime);
        fs::rename(&next, &path).unwrap();
        assert_eq!(sha256_on(&host, &path), t(&coreutils("sha256sum", &path)));
        assert_eq!(computed(&host), 4);
    }

    #[test]
    fn only_missing_digests_are_computed_and_each_matches_coreutils() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        fs::write(&path, b"some bytes").unwrap();
        let host = Host::default();
        sha256_on(&host, &path);
        assert_eq!(computed(&host), 1);
        // md5 was not computed: this query reads the file again, for md5 only.
        let everything = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::path,
            Op::Eq,
            path.to_str().unwrap(),
        );
        let row = rows_of(&everything, generate).remove(0);
        assert_eq!(computed(&host), 2);
        assert_eq!(row[Col::md5 as usize], t(&coreutils("md5sum", &path)));
        assert_eq!(row[Col::sha1 as usize], t(&coreutils("sha1sum", &path)));
        assert_eq!(row[Col::sha256 as usize], t(&coreutils("sha256sum", &path)));
        // Now all three are kept.
        assert_eq!(rows_of(&everything, generate).remove(0), row);
        assert_eq!(computed(&host), 2);
    }

    #[test]
    fn at_the_max_the_least_recently_used_file_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let [a, b, c] = ["a", "b", "c"].map(|n| tmp.path().join(n));
        for p in [&a, &b, &c] {
            fs::write(p, p.file_name().unwrap().as_bytes()).unwrap();
        }
        let host = host_with(2, false);
        let old_a = sha256_on(&host, &a);
        sha256_on(&host, &b);
        sha256_on(&host, &a); // a is now the most recently used
        assert_eq!(computed(&host), 2);
        sha256_on(&host, &c); // over the max: b goes
        assert_eq!(computed(&host), 3);
        let kept = {
            let cache = host
                .state
                .get_or_insert_with(CACHE_KEY, || Mutex::new(DigestCache::default()));
            let cache = cache.lock().unwrap();
            let mut kept: Vec<_> = cache.entries.keys().cloned().collect();
            kept.sort();
            assert_eq!(cache.by_use.len(), kept.len());
            kept
        };
        assert_eq!(
            kept,
            [a.clone().into_os_string(), c.clone().into_os_string()]
        );

        // Seen through the table: a still answers from the cache, b is read again.
        rewrite_keeping_mtime(&a, b"A");
        rewrite_keeping_mtime(&b, b"B");
        assert_eq!(sha256_on(&host, &a), old_a);
        assert_eq!(sha256_on(&host, &b), t(&coreutils("sha256sum", &b)));
        assert_eq!(computed(&host), 4);
    }

    #[test]
    fn disabled_or_zero_sized_the_cache_never_answers() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        for host in [host_with(500, true), host_with(0, false)] {
            fs::write(&path, b"version one").unwrap();
            assert_eq!(sha256_on(&host, &path), t(&coreutils("sha256sum", &path)));
            rewrite_keeping_mtime(&path, b"version two");
            assert_eq!(sha256_on(&host, &path), t(&coreutils("sha256sum", &path)));
            assert_eq!(computed(&host), 0, "nothing went through a cache");
        }
    }

    #[test]
    fn a_file_that_could_not_be_read_is_not_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("big");
        fs::write(&path, vec![7u8; 4096]).unwrap();
        let small = Host {
            settings: oxquery_table::TableSettings {
                read_max: 100,
                ..oxquery_table::TableSettings::DEFAULT
            },
            ..Host::default()
        };
        let (empty, _) = crate::common::testing::capture_log(|| sha256_on(&small, &path));
        assert_eq!(empty, t(""));
        // The same engine once the limit is raised (a reload): read, not the empty value.
        let raised = Host {
            settings: oxquery_table::TableSettings::DEFAULT,
            ..small.clone()
        };
        assert_eq!(sha256_on(&raised, &path), t(&coreutils("sha256sum", &path)));
        assert_eq!(computed(&raised), 2);
    }
}
