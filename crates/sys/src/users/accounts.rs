//! Accounts and groups: passwd(5)/group(5) text and the Name Service Switch.
//!
//! * [`parse_passwd`] / [`parse_group`]: pure parsers of passwd(5) and group(5) text, for
//!   reading `/etc/passwd` directly and for tests that invent accounts.
//! * [`local_users`]: the accounts of `/etc/passwd` only (osquery's default for `users`,
//!   which avoids asking LDAP/SSSD directories).
//! * [`nss_users`], [`nss_user_by_uid`], [`nss_user_by_name`], [`nss_groups`],
//!   [`nss_group_by_gid`], [`nss_group_by_name`]: the Name Service Switch (`getpwent_r`,
//!   `getpwuid_r`, ...), i.e. every source `nsswitch.conf` lists. Enumerations
//!   (`setpwent`/`getpwent_r`/`endpwent` and the group equivalents) share process-wide
//!   iterator state in glibc, so each runs under a global mutex.
//! * [`group_list`]: `getgrouplist(3)`, the groups an account belongs to.

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

/// Looks a group name up through NSS (`getgrnam_r`).
pub fn nss_group_by_name(name: &str) -> Option<Group> {
    let cname = CString::new(name).ok()?;
    with_growing_buffer(|buf, len| {
        // SAFETY: as in nss_group_by_gid.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe { libc::getgrnam_r(cname.as_ptr(), &mut gr, buf, len, &mut result) };
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
    fn nss_finds_root_and_our_groups() {
        let root = nss_user_by_uid(0).expect("uid 0 exists");
        assert_eq!(root.name, "root");
        assert_eq!(nss_user_by_name("root").unwrap().uid, 0);
        assert!(nss_users().iter().any(|p| p.uid == 0));
        assert!(nss_groups().iter().any(|g| g.gid == 0));
        assert_eq!(nss_group_by_gid(0).unwrap().gid, 0);
        assert_eq!(nss_group_by_name("root").unwrap().gid, 0);
        assert!(nss_group_by_name("no\0such").is_none());
        assert_eq!(group_list("root", 0).first(), Some(&0));
        assert!(nss_user_by_name("no\0such").is_none());
    }
}
