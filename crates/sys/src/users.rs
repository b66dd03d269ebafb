//! Accounts, groups and the per-user home-directory iteration every user-data table uses.
//!
//! # Accounts and groups
//!
//! * [`parse_passwd`] / [`parse_group`]: pure parsers of passwd(5) and group(5) text, for
//!   reading `/etc/passwd` directly and for tests that invent accounts.
//! * [`local_users`]: the accounts of `/etc/passwd` only (osquery's default for `users`,
//!   which avoids asking LDAP/SSSD directories).
//! * [`nss_users`], [`nss_user_by_uid`], [`nss_user_by_name`], [`nss_groups`],
//!   [`nss_group_by_gid`]: the Name Service Switch (`getpwent_r`, `getpwuid_r`, ...), i.e.
//!   every source `nsswitch.conf` lists. Enumerations (`setpwent`/`getpwent_r`/`endpwent`
//!   and the group equivalents) share process-wide iterator state in glibc, so each runs
//!   under a global mutex.
//! * [`group_list`]: `getgrouplist(3)`, the groups an account belongs to.
//!
//! # Per-user tables
//!
//! Tables that read files under home directories (`shell_history`, `authorized_keys`,
//! browser extensions, ...) declare a `uid` column and call [`users_for`] with a
//! [`UserSelection`] built from the query's `uid` (and, where a table has one, `username`)
//! equality constraints:
//!
//! * no constraint: every account of `/etc/passwd`, in file order;
//! * `uid = X` (or `IN`): the `/etc/passwd` account with that uid, else the NSS answer for
//!   it (osquery retries remote directories only for named uids, never for a full scan);
//! * `username = 'x'`: likewise by name.
//!
//! Each account comes back as a [`Passwd`]; tables then read `home()`-relative files and
//! tag rows with `uid`. Tests inject accounts with [`parse_passwd_line`] and point
//! `dir` at a temporary directory, so table code takes a slice of `Passwd`, not a query.
//!
//! # Login records
//!
//! [`utmp`] parses the binary `struct utmp` records of `/var/run/utmp` and
//! `/var/log/wtmp` (glibc's x86-64 layout) without going through `getutxent`'s global state.

use std::ffi::{CStr, CString};
use std::io;
use std::os::raw::c_char;
use std::path::PathBuf;
use std::sync::Mutex;

/// Where local accounts live.
pub const PASSWD_PATH: &str = "/etc/passwd";

/// One account as passwd(5) lays it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub passwd: String,
    pub uid: u32,
    pub gid: u32,
    /// The GECOS (comment) field.
    pub gecos: String,
    /// Home directory.
    pub dir: String,
    pub shell: String,
}

impl Passwd {
    /// The home directory as a path.
    pub fn home(&self) -> PathBuf {
        PathBuf::from(&self.dir)
    }
}

/// One group as group(5) lays it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub passwd: String,
    pub gid: u32,
    pub members: Vec<String>,
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn parse_id(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || bytes.len() > 10 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Whether a line is a comment, blank, or an NIS compat entry (`+name`, `-name`), which
/// `fgetpwent` would not turn into a local account either.
fn skip_line(line: &[u8]) -> bool {
    let trimmed = line.trim_ascii_start();
    trimmed.is_empty() || matches!(trimmed[0], b'#' | b'+' | b'-')
}

/// Parses one `name:passwd:uid:gid:gecos:dir:shell` line; `None` for comments, NIS
/// entries and malformed lines (wrong field count, non-numeric ids, empty name).
pub fn parse_passwd_line(line: &[u8]) -> Option<Passwd> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if skip_line(line) || line.contains(&0) {
        return None;
    }
    let f: Vec<&[u8]> = line.split(|b| *b == b':').collect();
    if f.len() != 7 || f[0].is_empty() {
        return None;
    }
    Some(Passwd {
        name: text(f[0]),
        passwd: text(f[1]),
        uid: parse_id(f[2])?,
        gid: parse_id(f[3])?,
        gecos: text(f[4]),
        dir: text(f[5]),
        shell: text(f[6]),
    })
}

/// Every well-formed account of passwd(5) text, in order; bad lines are skipped.
pub fn parse_passwd(text: &[u8]) -> Vec<Passwd> {
    text.split(|b| *b == b'\n')
        .filter_map(parse_passwd_line)
        .collect()
}

/// Parses one `name:passwd:gid:member,member` line.
pub fn parse_group_line(line: &[u8]) -> Option<Group> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if skip_line(line) || line.contains(&0) {
        return None;
    }
    let f: Vec<&[u8]> = line.split(|b| *b == b':').collect();
    if f.len() != 4 || f[0].is_empty() {
        return None;
    }
    Some(Group {
        name: text(f[0]),
        passwd: text(f[1]),
        gid: parse_id(f[2])?,
        members: f[3]
            .split(|b| *b == b',')
            .filter(|m| !m.is_empty())
            .map(text)
            .collect(),
    })
}

/// Every well-formed group of group(5) text, in order.
pub fn parse_group(text: &[u8]) -> Vec<Group> {
    text.split(|b| *b == b'\n')
        .filter_map(parse_group_line)
        .collect()
}

/// The accounts of `/etc/passwd`.
pub fn local_users() -> io::Result<Vec<Passwd>> {
    Ok(parse_passwd(&std::fs::read(PASSWD_PATH)?))
}

// ---------------------------------------------------------------------------------------
// NSS

/// Serialises `setpwent`/`getpwent_r`/`endpwent` (one iterator per process in glibc).
static PWD_ENUMERATION: Mutex<()> = Mutex::new(());
/// Serialises `setgrent`/`getgrent_r`/`endgrent`.
static GRP_ENUMERATION: Mutex<()> = Mutex::new(());

const START_BUF: usize = 16 * 1024;
const MAX_BUF: usize = 4 * 1024 * 1024;

fn cstr_text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: NSS hands out NUL-terminated strings inside the caller's buffer.
    text(unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// # Safety
/// `pw` must come from a successful `get*pw*_r` call whose buffer is still alive.
unsafe fn from_passwd(pw: &libc::passwd) -> Passwd {
    Passwd {
        name: cstr_text(pw.pw_name),
        passwd: cstr_text(pw.pw_passwd),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
        gecos: cstr_text(pw.pw_gecos),
        dir: cstr_text(pw.pw_dir),
        shell: cstr_text(pw.pw_shell),
    }
}

/// # Safety
/// `gr` must come from a successful `get*gr*_r` call whose buffer is still alive.
unsafe fn from_group(gr: &libc::group) -> Group {
    let mut members = Vec::new();
    if !gr.gr_mem.is_null() {
        let mut i = 0;
        loop {
            // SAFETY: gr_mem is a NULL-terminated array of strings.
            let m = unsafe { *gr.gr_mem.add(i) };
            if m.is_null() {
                break;
            }
            members.push(cstr_text(m));
            i += 1;
        }
    }
    Group {
        name: cstr_text(gr.gr_name),
        passwd: cstr_text(gr.gr_passwd),
        gid: gr.gr_gid,
        members,
    }
}

/// Runs a reentrant lookup, growing the buffer while it answers `ERANGE`.
/// `call(buf, len, &mut result_ptr) -> errno`; returns whether an entry was found.
fn with_growing_buffer<T>(
    mut call: impl FnMut(*mut c_char, usize) -> (i32, Option<T>),
) -> Option<T> {
    let mut size = START_BUF;
    loop {
        let mut buf = vec![0 as c_char; size];
        let (rc, found) = call(buf.as_mut_ptr(), size);
        if rc == libc::ERANGE && size < MAX_BUF {
            size *= 2;
            continue;
        }
        return found;
    }
}

/// Looks a uid up through NSS (`getpwuid_r`).
pub fn nss_user_by_uid(uid: u32) -> Option<Passwd> {
    with_growing_buffer(|buf, len| {
        // SAFETY: zeroed passwd is a valid out-parameter; buf has len bytes.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf, len, &mut result) };
        // SAFETY: on success result points at pw, whose strings live in buf.
        let found = (!result.is_null()).then(|| unsafe { from_passwd(&pw) });
        (rc, found)
    })
}

/// Looks a user name up through NSS (`getpwnam_r`).
pub fn nss_user_by_name(name: &str) -> Option<Passwd> {
    let cname = CString::new(name).ok()?;
    with_growing_buffer(|buf, len| {
        // SAFETY: as in nss_user_by_uid.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe { libc::getpwnam_r(cname.as_ptr(), &mut pw, buf, len, &mut result) };
        let found = (!result.is_null()).then(|| unsafe { from_passwd(&pw) });
        (rc, found)
    })
}

/// Every account NSS enumerates (`setpwent`/`getpwent_r`/`endpwent`), duplicates included.
pub fn nss_users() -> Vec<Passwd> {
    let _guard = PWD_ENUMERATION.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    let mut size = START_BUF;
    let mut buf = vec![0 as c_char; size];
    // SAFETY: plain libc iterator calls, serialised by the mutex.
    unsafe { libc::setpwent() };
    loop {
        // SAFETY: zeroed passwd is a valid out-parameter; buf has `size` bytes.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe { libc::getpwent_r(&mut pw, buf.as_mut_ptr(), size, &mut result) };
        if rc == libc::ERANGE && size < MAX_BUF {
            // glibc keeps the entry for the retry.
            size *= 2;
            buf = vec![0 as c_char; size];
            continue;
        }
        if result.is_null() {
            break;
        }
        // SAFETY: result points at pw, whose strings live in buf.
        out.push(unsafe { from_passwd(&pw) });
    }
    // SAFETY: closes the iterator opened above.
    unsafe { libc::endpwent() };
    out
}

/// Looks a gid up through NSS (`getgrgid_r`).
pub fn nss_group_by_gid(gid: u32) -> Option<Group> {
    with_growing_buffer(|buf, len| {
        // SAFETY: zeroed group is a valid out-parameter; buf has len bytes.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe { libc::getgrgid_r(gid, &mut gr, buf, len, &mut result) };
        // SAFETY: on success result points at gr, whose strings live in buf.
        let found = (!result.is_null()).then(|| unsafe { from_group(&gr) });
        (rc, found)
    })
}

/// Every group NSS enumerates (`setgrent`/`getgrent_r`/`endgrent`), duplicates included.
pub fn nss_groups() -> Vec<Group> {
    let _guard = GRP_ENUMERATION.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = Vec::new();
    let mut size = START_BUF;
    let mut buf = vec![0 as c_char; size];
    // SAFETY: plain libc iterator calls, serialised by the mutex.
    unsafe { libc::setgrent() };
    loop {
        // SAFETY: zeroed group is a valid out-parameter; buf has `size` bytes.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe { libc::getgrent_r(&mut gr, buf.as_mut_ptr(), size, &mut result) };
        if rc == libc::ERANGE && size < MAX_BUF {
            size *= 2;
            buf = vec![0 as c_char; size];
            continue;
        }
        if result.is_null() {
            break;
        }
        // SAFETY: result points at gr, whose strings live in buf.
        out.push(unsafe { from_group(&gr) });
    }
    // SAFETY: closes the iterator opened above.
    unsafe { libc::endgrent() };
    out
}

/// The gids `name` belongs to per `getgrouplist(3)`: its primary `gid` first, then every
/// supplementary group NSS knows. Empty if the name cannot be passed to C.
pub fn group_list(name: &str, gid: u32) -> Vec<u32> {
    let Ok(cname) = CString::new(name) else {
        return Vec::new();
    };
    let mut n: libc::c_int = 64;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let mut count = n;
        // SAFETY: groups has `count` slots; getgrouplist updates count.
        let rc =
            unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return groups;
        }
        // Too small: count now holds the number needed (guard against no progress).
        n = if count > n {
            count
        } else {
            n.saturating_mul(2)
        };
        if n > 1 << 20 {
            return Vec::new();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Per-user iteration

/// Which accounts a per-user query covers: the `=`/`IN` values of its `uid` and
/// `username` constraints (`None` = unconstrained).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSelection {
    pub uids: Option<Vec<i64>>,
    pub usernames: Option<Vec<String>>,
}

impl UserSelection {
    /// Every account.
    pub fn all() -> Self {
        Self::default()
    }
}

/// The accounts a per-user table should read, as the module documentation describes:
/// `/etc/passwd` (all of it, or the constrained uids/names), with uids or names missing
/// there looked up through NSS. Unreadable `/etc/passwd` is logged and treated as empty.
pub fn users_for(selection: &UserSelection) -> Vec<Passwd> {
    let local = local_users().unwrap_or_else(|e| {
        log::warn!("cannot read {PASSWD_PATH}: {e}");
        Vec::new()
    });
    select_from(local, selection, nss_user_by_uid, nss_user_by_name)
}

/// [`users_for`] over a given account list and lookup functions (what tests drive).
pub fn select_from(
    local: Vec<Passwd>,
    selection: &UserSelection,
    by_uid: impl Fn(u32) -> Option<Passwd>,
    by_name: impl Fn(&str) -> Option<Passwd>,
) -> Vec<Passwd> {
    if let Some(uids) = &selection.uids {
        let mut out = Vec::new();
        for &uid in uids {
            let Ok(uid) = u32::try_from(uid) else {
                continue;
            };
            let before = out.len();
            out.extend(local.iter().filter(|p| p.uid == uid).cloned());
            if out.len() == before {
                out.extend(by_uid(uid));
            }
        }
        if let Some(names) = &selection.usernames {
            out.retain(|p| names.contains(&p.name));
        }
        return out;
    }
    if let Some(names) = &selection.usernames {
        let mut out = Vec::new();
        for name in names {
            let before = out.len();
            out.extend(local.iter().filter(|p| &p.name == name).cloned());
            if out.len() == before {
                out.extend(by_name(name));
            }
        }
        return out;
    }
    local
}

/// Longest line [`for_each_line`] hands out by default; longer lines are skipped.
pub const MAX_LINE: usize = 1 << 20;

/// Streams the `\n`-separated lines of a file under a home directory to `f` (without the
/// newline; a final unterminated line included) using bounded memory: a line longer than
/// `max_line` bytes is skipped whole and counted in the returned total of skipped lines.
/// History and key files are user-controlled, so tables read them with this rather than
/// loading a possibly enormous file.
pub fn for_each_line(
    path: &std::path::Path,
    max_line: usize,
    mut f: impl FnMut(&[u8]),
) -> io::Result<usize> {
    use std::io::BufRead;
    let file = std::fs::File::open(path)?;
    let mut reader = io::BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    let mut overlong = false;
    let mut skipped = 0;
    loop {
        let buf = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        let (chunk, end_of_line) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !overlong {
            if line.len() + chunk.len() > max_line {
                overlong = true;
                line.clear();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        let consumed = end_of_line.unwrap_or(chunk.len());
        reader.consume(consumed);
        if end_of_line.is_some() {
            if overlong {
                skipped += 1;
            } else {
                f(&line);
            }
            line.clear();
            overlong = false;
        }
    }
    if overlong {
        skipped += 1;
    } else if !line.is_empty() {
        f(&line);
    }
    Ok(skipped)
}

// ---------------------------------------------------------------------------------------
// utmp / wtmp

/// Login records in glibc's binary `struct utmp` layout (x86-64: 384 bytes each).
pub mod utmp {
    /// Size of one record.
    pub const RECORD_SIZE: usize = 384;
    /// The current-logins file.
    pub const UTMP_PATH: &str = "/var/run/utmp";
    /// The login history file.
    pub const WTMP_PATH: &str = "/var/log/wtmp";

    pub const EMPTY: i16 = 0;
    pub const RUN_LVL: i16 = 1;
    pub const BOOT_TIME: i16 = 2;
    pub const NEW_TIME: i16 = 3;
    pub const OLD_TIME: i16 = 4;
    pub const INIT_PROCESS: i16 = 5;
    pub const LOGIN_PROCESS: i16 = 6;
    pub const USER_PROCESS: i16 = 7;
    pub const DEAD_PROCESS: i16 = 8;
    pub const ACCOUNTING: i16 = 9;

    // Field offsets (glibc bits/utmp.h, 64-bit with 32-bit time fields).
    const OFF_TYPE: usize = 0;
    const OFF_PID: usize = 4;
    const OFF_LINE: usize = 8;
    const LEN_LINE: usize = 32;
    const OFF_ID: usize = 40;
    const LEN_ID: usize = 4;
    const OFF_USER: usize = 44;
    const LEN_USER: usize = 32;
    const OFF_HOST: usize = 76;
    const LEN_HOST: usize = 256;
    const OFF_SESSION: usize = 336;
    const OFF_TV_SEC: usize = 340;
    const OFF_TV_USEC: usize = 344;
    const OFF_ADDR: usize = 348;

    /// One decoded record. Text fields stop at the first NUL (or fill their slot).
    #[derive(Debug, Clone, PartialEq, Eq, Default)]
    pub struct Record {
        pub ut_type: i16,
        pub pid: i32,
        pub line: String,
        pub id: String,
        pub user: String,
        pub host: String,
        pub session: i32,
        pub tv_sec: i32,
        pub tv_usec: i32,
        pub addr_v6: [u8; 16],
    }

    fn field(rec: &[u8], off: usize, len: usize) -> String {
        let raw = &rec[off..off + len];
        let end = raw.iter().position(|b| *b == 0).unwrap_or(len);
        String::from_utf8_lossy(&raw[..end]).into_owned()
    }

    fn i32_at(rec: &[u8], off: usize) -> i32 {
        i32::from_ne_bytes([rec[off], rec[off + 1], rec[off + 2], rec[off + 3]])
    }

    /// Decodes one 384-byte record; `None` for any other length.
    pub fn parse_record(rec: &[u8]) -> Option<Record> {
        if rec.len() != RECORD_SIZE {
            return None;
        }
        let mut addr_v6 = [0u8; 16];
        addr_v6.copy_from_slice(&rec[OFF_ADDR..OFF_ADDR + 16]);
        Some(Record {
            ut_type: i16::from_ne_bytes([rec[OFF_TYPE], rec[OFF_TYPE + 1]]),
            pid: i32_at(rec, OFF_PID),
            line: field(rec, OFF_LINE, LEN_LINE),
            id: field(rec, OFF_ID, LEN_ID),
            user: field(rec, OFF_USER, LEN_USER),
            host: field(rec, OFF_HOST, LEN_HOST),
            session: i32_at(rec, OFF_SESSION),
            tv_sec: i32_at(rec, OFF_TV_SEC),
            tv_usec: i32_at(rec, OFF_TV_USEC),
            addr_v6,
        })
    }

    /// Every whole record of a utmp/wtmp file's bytes; a truncated tail is ignored.
    pub fn parse(bytes: &[u8]) -> Vec<Record> {
        bytes
            .chunks_exact(RECORD_SIZE)
            .filter_map(parse_record)
            .collect()
    }

    /// Encodes a record (tests write utmp files with it). Text longer than its slot is cut.
    pub fn encode(r: &Record) -> [u8; RECORD_SIZE] {
        let mut out = [0u8; RECORD_SIZE];
        out[OFF_TYPE..OFF_TYPE + 2].copy_from_slice(&r.ut_type.to_ne_bytes());
        out[OFF_PID..OFF_PID + 4].copy_from_slice(&r.pid.to_ne_bytes());
        let mut put = |off: usize, len: usize, s: &str| {
            let b = s.as_bytes();
            let n = b.len().min(len);
            out[off..off + n].copy_from_slice(&b[..n]);
        };
        put(OFF_LINE, LEN_LINE, &r.line);
        put(OFF_ID, LEN_ID, &r.id);
        put(OFF_USER, LEN_USER, &r.user);
        put(OFF_HOST, LEN_HOST, &r.host);
        out[OFF_SESSION..OFF_SESSION + 4].copy_from_slice(&r.session.to_ne_bytes());
        out[OFF_TV_SEC..OFF_TV_SEC + 4].copy_from_slice(&r.tv_sec.to_ne_bytes());
        out[OFF_TV_USEC..OFF_TV_USEC + 4].copy_from_slice(&r.tv_usec.to_ne_bytes());
        out[OFF_ADDR..OFF_ADDR + 16].copy_from_slice(&r.addr_v6);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines_and_garbage() {
        let text = b"root:x:0:0:root:/root:/bin/bash\n# comment\n+nis\n\
                     bad:x:notanumber:0::/:/bin/sh\nshort:x:1\n\
                     al:x:4294967295:5:A, L:/home/al:/bin/zsh\r\n\xff\xfe:x:9:9:::\n";
        let users = parse_passwd(text);
        assert_eq!(users.len(), 3);
        assert_eq!(users[0].name, "root");
        assert_eq!(users[1].uid, u32::MAX);
        assert_eq!(users[1].gecos, "A, L");
        assert_eq!(users[1].shell, "/bin/zsh");
        assert_eq!(users[2].uid, 9);
        assert!(parse_passwd_line(b"x:x:99999999999:0:::").is_none());
    }

    #[test]
    fn group_lines() {
        let g = parse_group(b"wheel:x:10:root,al\nempty:x:11:\nbad:x::\n");
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].members, ["root", "al"]);
        assert!(g[1].members.is_empty());
    }

    #[test]
    fn selection_prefers_local_then_nss() {
        let local = parse_passwd(b"a:x:1:1::/h/a:/bin/sh\nb:x:2:2::/h/b:/bin/sh\n");
        let remote = |uid: u32| parse_passwd_line(format!("r:x:{uid}:0::/r:/bin/sh").as_bytes());
        let by_name = |n: &str| parse_passwd_line(format!("{n}:x:77:0::/r:/bin/sh").as_bytes());
        let all = select_from(local.clone(), &UserSelection::all(), remote, by_name);
        assert_eq!(all, local);
        let sel = UserSelection {
            uids: Some(vec![2, 500, -1]),
            usernames: None,
        };
        let got = select_from(local.clone(), &sel, remote, by_name);
        assert_eq!(
            got.iter()
                .map(|p| (p.uid, p.name.as_str()))
                .collect::<Vec<_>>(),
            [(2, "b"), (500, "r")]
        );
        let sel = UserSelection {
            uids: None,
            usernames: Some(vec!["a".into(), "zz".into()]),
        };
        let got = select_from(local, &sel, remote, by_name);
        assert_eq!(
            got.iter()
                .map(|p| (p.uid, p.name.as_str()))
                .collect::<Vec<_>>(),
            [(1, "a"), (77, "zz")]
        );
    }

    #[test]
    fn nss_finds_root_and_our_groups() {
        let root = nss_user_by_uid(0).expect("uid 0 exists");
        assert_eq!(root.name, "root");
        assert_eq!(nss_user_by_name("root").unwrap().uid, 0);
        assert!(nss_users().iter().any(|p| p.uid == 0));
        assert!(nss_groups().iter().any(|g| g.gid == 0));
        assert_eq!(nss_group_by_gid(0).unwrap().gid, 0);
        assert_eq!(group_list("root", 0).first(), Some(&0));
        assert!(nss_user_by_name("no\0such").is_none());
    }

    #[test]
    fn lines_are_streamed_and_overlong_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut bytes = b"one\n\ntwo\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 300_000));
        bytes.extend_from_slice(b"\nthree");
        std::fs::write(&p, &bytes).unwrap();
        let mut got = Vec::new();
        let skipped = for_each_line(&p, 1000, |l| got.push(l.to_vec())).unwrap();
        assert_eq!(got, [&b"one"[..], b"", b"two", b"three"]);
        assert_eq!(skipped, 1);
        assert!(for_each_line(&dir.path().join("none"), 10, |_| {}).is_err());
    }

    #[test]
    fn utmp_round_trip_and_truncation() {
        let r = utmp::Record {
            ut_type: utmp::USER_PROCESS,
            pid: 4242,
            line: "pts/3".into(),
            id: "ts/3".into(),
            user: "a".repeat(32),
            host: "10.0.0.1".into(),
            session: 7,
            tv_sec: 1_700_000_000,
            tv_usec: 12,
            addr_v6: [1; 16],
        };
        let mut bytes = utmp::encode(&r).to_vec();
        bytes.extend_from_slice(&[0xff; 100]);
        let recs = utmp::parse(&bytes);
        assert_eq!(recs, [r]);
        assert!(utmp::parse_record(&[0; 10]).is_none());
    }
}
