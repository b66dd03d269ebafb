//! What many tables do with their query, in one place: the accounts a per-user query
//! covers, reading users' files safely and saying so when that fails, and the roots a
//! `pid_with_namespace` constraint names.
//!
//! These are about queries (a `QueryContext`, the table's name in messages), so they live
//! here, not in `oxquery-sys`; the OS work underneath is `oxquery_sys::users` and
//! `oxquery_sys::safe_read`, which `oxquery-table` does not depend on.

use oxquery_sys::elf;
use oxquery_sys::safe_read::{self, Account, Policy, Root};
use oxquery_sys::users::{self, Passwd, UserSelection};
use oxquery_table::QueryContext;
use std::io;
use std::path::Path;

/// How tables open a file a user controls outside a home (a crontab in the spool, an
/// autostart entry): see [`Policy::user_file`].
pub fn user_file_policy(ctx: &QueryContext) -> Policy {
    Policy::user_file(ctx.settings().read_max)
}

/// How tables open a file under `user`'s home: with the account's permissions, as the
/// programs that write them (bash, ssh) would; see [`Policy::home_file`].
pub fn home_file_policy(ctx: &QueryContext, user: &Passwd) -> Policy {
    let account = Account {
        uid: user.uid,
        gid: user.gid,
    };
    Policy::home_file(ctx.settings().read_max, account)
}

/// The accounts a per-user query covers, from the `=`/`IN` values of its `uid` column
/// (every local account without them); see `oxquery_sys::users::users_for`.
pub fn users_by_uid(ctx: &QueryContext, uid: impl Into<usize>) -> Vec<Passwd> {
    users::users_for(&UserSelection {
        uids: ctx.eq_integers(uid),
        usernames: None,
    })
}

/// The accounts a per-user query covers as `root` sees them: ours as
/// [`users_by_uid`] finds them, or those of the root's /etc/passwd (read safely inside
/// it; our NSS modules answer for the host) with the query's `uid` values.
pub fn users_in(ctx: &QueryContext, root: &Root, uid: impl Into<usize>) -> Vec<Passwd> {
    accounts_in(ctx, root, ctx.eq_integers(uid))
}

/// The accounts of `root` with one of `uids` (all of them with `None`): ours as
/// `oxquery_sys::users::users_for` finds them, or those of the root's /etc/passwd.
pub fn accounts_in(ctx: &QueryContext, root: &Root, uids: Option<Vec<i64>>) -> Vec<Passwd> {
    if root.pid() == 0 {
        return users::users_for(&UserSelection {
            uids,
            usernames: None,
        });
    }
    let policy = user_file_policy(ctx);
    let Some(text) = read_file_in(ctx, root, Path::new(users::PASSWD_PATH), &policy) else {
        return Vec::new();
    };
    users::parse_passwd(&text)
        .into_iter()
        .filter(|p| uids.as_ref().is_none_or(|u| u.contains(&i64::from(p.uid))))
        .collect()
}

/// Logs why a user's file gave no (or only some) rows: a missing file is normal and
/// silent; a permission denied is common (accounts whose home they cannot read) and
/// logged at info level; anything else (a FIFO, a device, over `--read_max`) is a
/// warning naming the table and the file.
pub fn report_read_error(ctx: &QueryContext, path: &Path, e: &io::Error) {
    let level = match e.kind() {
        io::ErrorKind::NotFound => return,
        io::ErrorKind::PermissionDenied => log::Level::Info,
        _ => log::Level::Warn,
    };
    log::log!(
        level,
        "Table {}: cannot read {}: {e}",
        ctx.spec().name,
        path.display()
    );
}

/// Streams the lines of a file opened under `policy` to `f` (see
/// `oxquery_sys::safe_read::for_each_line`), reporting failures and skipped overlong
/// lines in the log.
pub fn file_lines(ctx: &QueryContext, path: &Path, policy: &Policy, f: impl FnMut(&[u8])) {
    file_lines_in(ctx, &Root::host(), path, policy, f)
}

/// [`file_lines`] with `path` resolved inside `root`.
pub fn file_lines_in(
    ctx: &QueryContext,
    root: &Root,
    path: &Path,
    policy: &Policy,
    f: impl FnMut(&[u8]),
) {
    let shown = root.display(path);
    match safe_read::for_each_line_in(root, path, policy, safe_read::MAX_LINE, f) {
        Ok(0) => {}
        Ok(n) => log::info!(
            "Table {}: skipped {n} overlong lines of {}",
            ctx.spec().name,
            shown.display()
        ),
        Err(e) => report_read_error(ctx, &shown, &e),
    }
}

/// Reads a whole file under `policy`; `None`, with the failure reported, when it cannot
/// be read.
pub fn read_file(ctx: &QueryContext, path: &Path, policy: &Policy) -> Option<Vec<u8>> {
    read_file_in(ctx, &Root::host(), path, policy)
}

/// [`read_file`] with `path` resolved inside `root`.
pub fn read_file_in(
    ctx: &QueryContext,
    root: &Root,
    path: &Path,
    policy: &Policy,
) -> Option<Vec<u8>> {
    safe_read::read_bounded_in(root, path, policy)
        .map_err(|e| report_read_error(ctx, &root.display(path), &e))
        .ok()
}

/// The paths a query names on `column`: its `=` values as written (their bytes kept) and
/// its LIKE patterns expanded to what `select` allows, sorted by bytes and unique.
pub fn constrained_paths(
    ctx: &QueryContext,
    column: impl Into<usize> + Copy,
    select: oxquery_sys::pattern::Select,
) -> std::collections::BTreeSet<std::ffi::OsString> {
    oxquery_sys::files::path_set(
        ctx.eq_paths(column).unwrap_or_default(),
        &ctx.patterns(column, oxquery_table::Op::Like),
        select,
    )
}

/// The file-system roots a query names through a `pid_with_namespace` column: each pid
/// it asks about gives that process's root (its files as its mount namespace sees them,
/// resolved safely: see `oxquery_sys::safe_read::Root`), or ours (pid 0) when it asks
/// about none. A pid that is not positive names ours. A process whose root cannot be
/// opened (gone, or a kernel without `openat2`) gives no rows, with a warning.
pub fn namespace_roots(ctx: &QueryContext, pid_with_namespace: impl Into<usize>) -> Vec<Root> {
    let Some(pids) = ctx.eq_integers(pid_with_namespace) else {
        return vec![Root::host()];
    };
    pids.into_iter()
        .filter_map(|pid| {
            if pid <= 0 {
                return Some(Root::host());
            }
            Root::process(pid)
                .map_err(|e| {
                    log::warn!(
                        "Table {}: cannot read inside the mount namespace of pid {pid}: {e}",
                        ctx.spec().name
                    )
                })
                .ok()
        })
        .collect()
}

/// Inside another process's mount namespace, paths are named with `=` only: LIKE
/// patterns are expanded by walking our own file system. Says so (a warning) when the
/// query gives any on `columns`, whose patterns then match nothing there.
pub fn no_patterns_inside(ctx: &QueryContext, root: &Root, columns: &[usize]) {
    if columns
        .iter()
        .any(|&c| !ctx.patterns(c, oxquery_table::Op::Like).is_empty())
    {
        log::warn!(
            "Table {}: LIKE patterns are not expanded inside the mount namespace of pid {}; \
             name paths with =",
            ctx.spec().name,
            root.pid()
        );
    }
}

/// Calls `visit` with each of `paths` that is an ELF file (see
/// `oxquery_sys::elf::for_each_file`), read through the safe opener under the query's
/// `--read_max`; files that cannot be read (a FIFO, over the limit) are reported.
pub fn for_each_elf_file<'p>(
    ctx: &QueryContext,
    paths: impl IntoIterator<Item = &'p std::ffi::OsString>,
    visit: impl FnMut(&std::path::Path, &elf::ElfFile) -> Result<(), elf::ElfError>,
) {
    elf::for_each_file(
        paths,
        &user_file_policy(ctx),
        &ctx.spec().name,
        &|| ctx.is_stopped(),
        visit,
        |path, e| report_read_error(ctx, path, e),
    );
}

/// Test support: capture what this thread logs, and run a read that must not hang.
#[cfg(test)]
pub mod testing {
    use super::*;
    use oxquery_table::{ColumnSet, Host, Rows, TableSettings, TableSpec};
    use std::cell::RefCell;
    use std::sync::{Once, mpsc};
    use std::time::Duration;

    // Per thread: tests run in parallel and each captures only what its own thread logs.
    thread_local! {
        static CAPTURED: RefCell<Option<Vec<(log::Level, String)>>> = const { RefCell::new(None) };
    }

    /// Keeps records only on threads inside [`capture_log`]; tests run in parallel, so
    /// each sees only its own.
    struct ThreadLogger;

    impl log::Log for ThreadLogger {
        fn enabled(&self, _: &log::Metadata) -> bool {
            CAPTURED.with(|c| c.borrow().is_some())
        }
        fn log(&self, record: &log::Record) {
            CAPTURED.with(|c| {
                if let Some(v) = c.borrow_mut().as_mut() {
                    v.push((record.level(), record.args().to_string()));
                }
            });
        }
        fn flush(&self) {}
    }

    /// Runs `f` and returns what it logged on this thread, with the levels.
    pub fn capture_log<T>(f: impl FnOnce() -> T) -> (T, Vec<(log::Level, String)>) {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            // A test binary has no other logger; if one were set, captures come back empty
            // and the tests asserting on them fail visibly.
            let _ = log::set_logger(&ThreadLogger);
            log::set_max_level(log::LevelFilter::Trace);
        });
        CAPTURED.with(|c| *c.borrow_mut() = Some(Vec::new()));
        let out = f();
        let logged = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
        (out, logged)
    }

    /// Runs `f` on a thread and waits for its answer: a liveness check (a hang fails the
    /// test instead of stalling it), not a timing, so the bound is generous.
    pub fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the generator did not return: a read blocks or never ends")
    }

    /// An invented account whose home is `home` (already populated). Per-user tables
    /// open home files with the account's permissions, so when the tests run as root the
    /// home is handed over to the account, as a real home would belong to its user.
    pub fn fixture_account(name: &str, uid: u32, home: &Path) -> Passwd {
        // SAFETY: plain getter.
        if unsafe { libc::geteuid() } == 0 {
            chown_tree(home, uid, uid);
        }
        let line = format!("{name}:x:{uid}:{uid}::{}:/bin/sh", home.display());
        users::parse_passwd_line(line.as_bytes()).expect("fixture account")
    }

    /// `chown -hR`: links themselves, never what they point at.
    fn chown_tree(path: &Path, uid: u32, gid: u32) {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown fixture");
        let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
        if is_dir {
            for entry in std::fs::read_dir(path).expect("list fixture") {
                chown_tree(&entry.expect("fixture entry").path(), uid, gid);
            }
        }
    }

    /// What a per-user table's `generate_for(ctx, users, rows)` looks like.
    pub type PerUser = fn(&QueryContext, &[Passwd], &mut Rows);

    /// The uid of [`generate_for_home`]'s account.
    pub const FIXTURE_UID: u32 = 4321;

    /// Runs a per-user generator over one fixture account (uid 4321) whose home is
    /// `home`, under [`within_10s`], and returns its rows and what it logged.
    pub fn generate_for_home(
        spec: &'static TableSpec,
        home: &Path,
        generate_for: PerUser,
    ) -> (Rows<'static>, Vec<(log::Level, String)>) {
        generate_for_home_reading(spec, home, generate_for, oxquery_table::DEFAULT_READ_MAX)
    }

    /// [`generate_for_home`] with `--read_max` set to `read_max`.
    pub fn generate_for_home_reading(
        spec: &'static TableSpec,
        home: &Path,
        generate_for: PerUser,
        read_max: u64,
    ) -> (Rows<'static>, Vec<(log::Level, String)>) {
        run_for_home(spec, home, generate_for, read_max, None)
    }

    /// [`generate_for_home`] for a query that uses only `columns` (the others are NULL):
    /// for tests that a generator skips the work of unused columns.
    pub fn generate_for_home_using<C: Into<usize>>(
        spec: &'static TableSpec,
        home: &Path,
        generate_for: PerUser,
        columns: impl IntoIterator<Item = C>,
    ) -> (Rows<'static>, Vec<(log::Level, String)>) {
        let used = columns.into_iter().map(Into::into).collect();
        run_for_home(
            spec,
            home,
            generate_for,
            oxquery_table::DEFAULT_READ_MAX,
            Some(used),
        )
    }

    /// Runs `generate_for` over the fixture account, using every column or only `used`.
    fn run_for_home(
        spec: &'static TableSpec,
        home: &Path,
        generate_for: PerUser,
        read_max: u64,
        used: Option<Vec<usize>>,
    ) -> (Rows<'static>, Vec<(log::Level, String)>) {
        let user = fixture_account("fixture", FIXTURE_UID, home);
        let width = spec.columns.len();
        // Rows may hold a non-Send sink, so the values cross the thread, not the buffer.
        let (values, logged) = within_10s(move || {
            capture_log(|| {
                let host = Host {
                    settings: TableSettings {
                        read_max,
                        ..TableSettings::DEFAULT
                    },
                    ..Host::default()
                };
                let mut ctx = QueryContext::everything(spec, &host);
                if let Some(used) = used {
                    ctx = ctx.using(used);
                }
                let mut rows = Rows::for_context(&ctx);
                generate_for(&ctx, &[user], &mut rows);
                rows.into_values()
            })
        });
        let mut rows = Rows::new(width, ColumnSet::all(width));
        for cells in values.chunks(width) {
            let mut row = rows.row();
            for (column, value) in cells.iter().enumerate() {
                row.set(column, value.clone());
            }
        }
        (rows, logged)
    }

    /// The values of one column, as text (NULL as ''), in row order.
    pub fn column_texts(rows: &Rows, column: impl Into<usize>) -> Vec<String> {
        rows.column(column).iter().map(|v| v.to_string()).collect()
    }

    /// Asserts that a record at `level` names `path` and says `why`.
    pub fn assert_logged(
        logged: &[(log::Level, String)],
        level: log::Level,
        path: &Path,
        why: &str,
    ) {
        let path = path.to_string_lossy();
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == level && m.contains(path.as_ref()) && m.contains(why)),
            "no {level} record about {path} saying {why:?} in {logged:?}"
        );
    }

    /// Asserts that nothing was logged at warning level or above.
    pub fn assert_no_warnings(logged: &[(log::Level, String)]) {
        assert!(
            logged.iter().all(|(l, _)| *l > log::Level::Warn),
            "{logged:?}"
        );
    }

    /// Makes a sparse file of 10 GiB at `path`: far over `--read_max`, no disk used.
    pub fn huge_sparse_file(path: &Path) {
        std::fs::File::create(path)
            .and_then(|f| f.set_len(10 << 30))
            .expect("sparse file");
    }

    /// The rows of a per-user table's `generate` for `uid = getuid()`, and the account
    /// that query selects (checked by [`current_account`]).
    pub fn live_rows_for_my_uid(
        spec: &'static TableSpec,
        uid: impl Into<usize> + Copy,
        generate: fn(&QueryContext, &mut Rows) -> oxquery_table::TableResult,
    ) -> (Rows<'static>, Passwd) {
        // SAFETY: plain getter.
        let me = i64::from(unsafe { libc::getuid() });
        let host = Host::default();
        let ctx =
            QueryContext::everything(spec, &host).with_constraint(uid, oxquery_table::Op::Eq, me);
        let rows = Rows::collect(&ctx, generate).expect("generate");
        (rows, current_account(&users_by_uid(&ctx, uid)))
    }

    /// The one account a live test's `uid = getuid()` query selects (`selected`, from
    /// `users_by_uid`), checked against the C library's `getpwuid_r`: exactly one
    /// account, ours, with the home NSS reports.
    pub fn current_account(selected: &[Passwd]) -> Passwd {
        // SAFETY: plain getter.
        let uid = unsafe { libc::getuid() };
        assert_eq!(selected.len(), 1, "uid {uid} selects {selected:?}");
        let nss = users::nss_user_by_uid(uid).expect("getpwuid_r knows the test's uid");
        assert_eq!(selected[0].uid, uid);
        assert_eq!(selected[0].home(), nss.home());
        selected[0].clone()
    }

    /// The lines of `path` (without their `\n`) read directly, for a live test's
    /// independent parse; none when the file does not exist.
    pub fn lines_of(path: &Path) -> Vec<Vec<u8>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("read {}: {e}", path.display()),
        };
        let mut lines: Vec<Vec<u8>> = bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
        if lines.last().is_some_and(Vec::is_empty) {
            lines.pop();
        }
        lines
    }

    /// Says what a live test compared, so an empty comparison is visible in the output.
    pub fn note_live(table: &str, rows: usize, sources: &[std::path::PathBuf]) {
        let sources: Vec<_> = sources.iter().map(|p| p.display().to_string()).collect();
        eprintln!("{table}: {rows} live rows, matching an independent read of {sources:?}");
    }

    /// One record as util-linux's `utmpdump` prints it: an independent reader of
    /// utmp/wtmp files.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Dumped {
        pub ut_type: i64,
        pub pid: i64,
        pub user: String,
        pub tty: String,
        pub host: String,
        /// `ut_tv.tv_sec`.
        pub time: i64,
    }

    /// The records of the utmp/wtmp file at `path` as `utmpdump` reads them; `None` when
    /// `utmpdump` is missing outside CI (a failure under CI).
    pub fn utmpdump(path: &Path) -> Option<Vec<Dumped>> {
        let tool = oxquery_test_support::require_tool("utmpdump")?;
        let out = std::process::Command::new(tool)
            .arg(path)
            .env("TZ", "UTC")
            .output()
            .expect("run utmpdump");
        assert!(out.status.success(), "utmpdump {}: {out:?}", path.display());
        let text = String::from_utf8(out.stdout).expect("utmpdump prints text");
        Some(text.lines().map(parse_dump_line).collect())
    }

    /// A utmp record as a login program writes one (the `id` is the line's last four
    /// characters), for fixture files.
    pub fn utmp_record(
        ut_type: i16,
        pid: i32,
        user: &str,
        line: &str,
        host: &str,
        tv_sec: i64,
        tv_usec: i64,
    ) -> oxquery_sys::users::utmp::Record {
        oxquery_sys::users::utmp::Record {
            ut_type,
            pid,
            line: line.into(),
            id: line.chars().rev().take(4).collect(),
            user: user.into(),
            host: host.into(),
            tv_sec,
            tv_usec,
            ..Default::default()
        }
    }

    /// `[7] [04242] [ts/3] [alice   ] [pts/3   ] [host   ] [127.0.0.1  ] [2023-11-14T22:13:20,000012+00:00]`
    fn parse_dump_line(line: &str) -> Dumped {
        let inner = line
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
            .unwrap_or_else(|| panic!("utmpdump line {line:?}"));
        let f: Vec<&str> = inner.split("] [").map(str::trim_end).collect();
        assert_eq!(f.len(), 8, "utmpdump line {line:?}");
        let num = |s: &str| -> i64 { s.trim().parse().unwrap_or_else(|e| panic!("{s:?}: {e}")) };
        // UTC (TZ=UTC above): YYYY-MM-DDTHH:MM:SS,micros+00:00.
        let t = f[7];
        assert!(t.ends_with("+00:00"), "utmpdump time {t:?}");
        let days = days_from_civil(num(&t[0..4]), num(&t[5..7]), num(&t[8..10]));
        let time = days * 86_400 + num(&t[11..13]) * 3600 + num(&t[14..16]) * 60 + num(&t[17..19]);
        Dumped {
            ut_type: num(f[0]),
            pid: num(f[1]),
            user: f[3].to_owned(),
            tty: f[4].to_owned(),
            host: f[5].to_owned(),
            time,
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The rows of `generate` for `path = <path>` (all columns) under
    /// `--read_max=read_max`, run by [`within_10s`] (a path that blocks fails the test),
    /// and what it logged.
    pub fn rows_for_path(
        spec: &'static TableSpec,
        generate: oxquery_table::Generator,
        path_column: usize,
        path: &Path,
        read_max: u64,
    ) -> (Vec<Vec<oxquery_table::Value>>, Vec<(log::Level, String)>) {
        let path = path.to_str().expect("a UTF-8 test path").to_owned();
        within_10s(move || {
            capture_log(|| {
                let host = Host {
                    settings: TableSettings {
                        read_max,
                        ..TableSettings::DEFAULT
                    },
                    ..Host::default()
                };
                let ctx = QueryContext::everything(spec, &host).with_constraint(
                    path_column,
                    oxquery_table::Op::Eq,
                    path.as_str(),
                );
                crate::testing::rows_of(&ctx, generate)
            })
        })
    }

    /// What an ELF table does with files a user can plant: a FIFO nobody writes to gives
    /// no rows and a warning naming it at once (a blocking open would wait forever), and
    /// `/proc/self/pagemap` (size 0, hundreds of gigabytes to read) is left after its first
    /// bytes, not ELF, even with no read limit at all.
    pub fn assert_no_rows_from_hostile_files(
        spec: &'static TableSpec,
        generate: oxquery_table::Generator,
        path_column: usize,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        mkfifo(&fifo);
        let read_max = oxquery_table::DEFAULT_READ_MAX;
        let (rows, logged) = rows_for_path(spec, generate, path_column, &fifo, read_max);
        assert!(rows.is_empty(), "{rows:?}");
        assert_logged(&logged, log::Level::Warn, &fifo, "a FIFO");
        let pagemap = Path::new("/proc/self/pagemap");
        let (rows, _) = rows_for_path(spec, generate, path_column, pagemap, u64::MAX);
        assert!(rows.is_empty(), "{rows:?}");
    }

    /// Makes a FIFO at `path`.
    pub fn mkfifo(path: &std::path::Path) {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    }
}
