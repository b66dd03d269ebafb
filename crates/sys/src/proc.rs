//! Per-process readers for `/proc/<pid>`: listing, `stat`, `status`, `io`, `cgroup`,
//! `cmdline`, `environ`, `maps`, namespace links and descriptor links.
//!
//! Parsers take bytes and return `None` on anything unexpected: a process can exit (or a
//! file be truncated) between any two reads, so nothing here panics on odd input. Callers
//! read through one [`FileReader`] per scan to reuse its buffer.

use crate::fs::{FileReader, parse_i64, parse_u64};
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::OnceLock;

/// Kernel clock ticks per second (`_SC_CLK_TCK`), the unit of times in `stat`.
pub fn clock_ticks() -> u64 {
    static TICKS: OnceLock<u64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if t > 0 { t as u64 } else { 100 }
    })
}

/// Bytes per page, the unit of `rss` in `stat`.
pub fn page_size() -> u64 {
    static PAGE: OnceLock<u64> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 { p as u64 } else { 4096 }
    })
}

/// Unix time the host booted: the `btime` line of `/proc/stat`.
pub fn boot_time(reader: &mut FileReader) -> Option<i64> {
    parse_btime(reader.read("/proc/stat").ok()?)
}

/// The `btime` value of `/proc/stat` content.
pub fn parse_btime(text: &[u8]) -> Option<i64> {
    text.split(|b| *b == b'\n')
        .find_map(|line| line.strip_prefix(b"btime "))
        .and_then(|v| parse_i64(trim(v)))
}

/// Appends the pid of every process (thread-group leader) `/proc` lists to `out`.
///
/// Uses `readdir` directly: `std::fs::read_dir` allocates a path per entry, which shows
/// up on hosts with thousands of processes.
pub fn list_pids(out: &mut Vec<u32>) -> io::Result<()> {
    for_each_dir_entry(c"/proc", |name| {
        if let Some(pid) = parse_pid(name) {
            out.push(pid);
        }
    })
}

/// A positive decimal pid made only of digits (`self`, `net`, ... are not pids).
pub fn parse_pid(name: &[u8]) -> Option<u32> {
    if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    parse_u64(name)
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
}

/// Calls `f` with the name of every entry of directory `path` except `.` and `..`.
fn for_each_dir_entry(path: &CStr, mut f: impl FnMut(&[u8])) -> io::Result<()> {
    // SAFETY: path is NUL-terminated.
    let dir = unsafe { libc::opendir(path.as_ptr()) };
    if dir.is_null() {
        return Err(io::Error::last_os_error());
    }
    loop {
        // SAFETY: dir is an open directory stream owned by this function.
        let entry = unsafe { libc::readdir(dir) };
        if entry.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            f(name);
        }
    }
    // SAFETY: dir is open and not used afterwards.
    unsafe { libc::closedir(dir) };
    Ok(())
}

/// The `/proc/<pid>/` prefix of a process's files, built once per process.
#[derive(Debug, Clone)]
pub struct ProcPath {
    prefix: Vec<u8>,
}

impl ProcPath {
    pub fn new(pid: u32) -> Self {
        let mut prefix = Vec::with_capacity(24);
        prefix.extend_from_slice(b"/proc/");
        prefix.extend_from_slice(pid.to_string().as_bytes());
        prefix.push(b'/');
        ProcPath { prefix }
    }

    /// `/proc/<pid>/` as bytes.
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Reads `/proc/<pid>/<name>` for files rendered in one piece (`stat`, `status`,
    /// `io`, `cmdline`, `environ`, `cgroup`); see [`FileReader::read_generated_parts`].
    pub fn read<'r>(&self, reader: &'r mut FileReader, name: &str) -> io::Result<&'r [u8]> {
        reader.read_generated_parts(&[&self.prefix, name.as_bytes()])
    }

    /// Reads `/proc/<pid>/<name>` to the end, for tables the kernel hands out a page at a
    /// time (`maps`, `mounts`, `net/tcp`, ...).
    pub fn read_paged<'r>(&self, reader: &'r mut FileReader, name: &str) -> io::Result<&'r [u8]> {
        reader.read_parts(&[&self.prefix, name.as_bytes()])
    }

    /// Reads the link `/proc/<pid>/<name>` (`exe`, `cwd`, `root`, `ns/net`).
    pub fn read_link<'r>(&self, reader: &'r mut FileReader, name: &str) -> io::Result<&'r [u8]> {
        reader.read_link_parts(&[&self.prefix, name.as_bytes()])
    }

    /// `stat(2)` of `/proc/<pid>/<name>`, following links.
    pub fn stat(&self, name: &str) -> io::Result<libc::stat> {
        let mut path = Vec::with_capacity(self.prefix.len() + name.len() + 1);
        path.extend_from_slice(&self.prefix);
        path.extend_from_slice(name.as_bytes());
        path.push(0);
        let cpath = CStr::from_bytes_with_nul(&path)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: an all-zero stat is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: cpath is NUL-terminated and st is writable.
        if unsafe { libc::stat(cpath.as_ptr(), &mut st) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}

/// An open `/proc/<pid>` directory. Files read through it resolve one name instead of
/// the whole path, and all belong to the process it was opened for: once that process is
/// gone, reads fail (`ESRCH`) rather than reach a newer process that reused the pid.
#[derive(Debug)]
pub struct ProcDir {
    fd: OwnedFd,
}

impl ProcDir {
    pub fn open(pid: u32) -> io::Result<ProcDir> {
        let path = std::ffi::CString::new(format!("/proc/{pid}"))
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(ProcDir {
            fd: crate::fs::open_dir_path(&path)?,
        })
    }

    /// Reads `<name>`, a file rendered in one piece (`stat`, `status`, `cmdline`...).
    pub fn read<'r>(&self, reader: &'r mut FileReader, name: &CStr) -> io::Result<&'r [u8]> {
        reader.read_generated_at(self.fd.as_fd(), name)
    }

    /// Reads the link `<name>` (`exe`, `cwd`).
    pub fn read_link<'r>(&self, reader: &'r mut FileReader, name: &CStr) -> io::Result<&'r [u8]> {
        reader.read_link_at(self.fd.as_fd(), name)
    }

    /// `statx(2)` of `<name>` with the basic fields and the creation time, following
    /// links (`exe` gives the program file's).
    pub fn statx(&self, name: &CStr) -> io::Result<libc::statx> {
        // SAFETY: an all-zero statx is a valid value to be overwritten.
        let mut st: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: name is NUL-terminated, the descriptor is open and st is writable.
        let rc = unsafe {
            libc::statx(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                0,
                libc::STATX_BASIC_STATS | libc::STATX_BTIME,
                &mut st,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}

/// The numeric fields of `/proc/<pid>/stat` the process tables use (see proc(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: u8,
    pub ppid: i64,
    pub pgrp: i64,
    /// User and system CPU time in clock ticks.
    pub utime: u64,
    pub stime: u64,
    pub nice: i64,
    pub num_threads: i64,
    /// Start time in clock ticks after boot.
    pub starttime: u64,
    /// Virtual memory size in bytes.
    pub vsize: u64,
    /// Resident set size in pages.
    pub rss: i64,
}

/// Parses a `stat` line into `comm` (the executable name, at most 15 bytes) and the
/// numeric fields. `comm` is delimited by the first `(` and the *last* `)`, since a
/// process may name itself `a) (b`.
pub fn parse_stat(text: &[u8]) -> Option<(&[u8], Stat)> {
    let open = memchr::memchr(b'(', text)?;
    let close = memchr::memrchr(b')', text)?;
    if close < open {
        return None;
    }
    let comm = &text[open + 1..close];
    // After ") ": field 3 (state) onwards, single-space separated.
    let rest = text.get(close + 2..)?;
    let mut fields = rest.split(|b| *b == b' ');
    let mut next = || fields.next();
    let state = *next()?.first()?;
    let ppid = parse_i64(next()?)?;
    let pgrp = parse_i64(next()?)?;
    // session, tty_nr, tpgid, flags, minflt, cminflt, majflt, cmajflt
    for _ in 0..8 {
        next()?;
    }
    let utime = parse_u64(next()?)?;
    let stime = parse_u64(next()?)?;
    // cutime, cstime, priority
    for _ in 0..3 {
        next()?;
    }
    let nice = parse_i64(next()?)?;
    let num_threads = parse_i64(next()?)?;
    next()?; // itrealvalue
    let starttime = parse_u64(next()?)?;
    let vsize = parse_u64(next()?)?;
    let rss = parse_i64(next()?)?;
    Some((
        comm,
        Stat {
            state,
            ppid,
            pgrp,
            utime,
            stime,
            nice,
            num_threads,
            starttime,
            vsize,
            rss,
        },
    ))
}

/// Real, effective, saved and file-system user and group ids from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ids {
    /// `[real, effective, saved, filesystem]`
    pub uid: [i64; 4],
    pub gid: [i64; 4],
}

/// Parses the `Uid:` and `Gid:` lines (`Uid:\t0\t0\t0\t0`); `None` unless both are whole.
pub fn parse_status_ids(text: &[u8]) -> Option<Ids> {
    let mut uid = None;
    let mut gid = None;
    for line in text.split(|b| *b == b'\n') {
        if let Some(v) = line.strip_prefix(b"Uid:") {
            uid = Some(four_ids(v)?);
        } else if let Some(v) = line.strip_prefix(b"Gid:") {
            gid = Some(four_ids(v)?);
            // Gid follows Uid; nothing after it is needed.
            break;
        }
    }
    Some(Ids {
        uid: uid?,
        gid: gid?,
    })
}

fn four_ids(v: &[u8]) -> Option<[i64; 4]> {
    let mut it = v
        .split(|b| *b == b'\t' || *b == b' ')
        .filter(|f| !f.is_empty());
    let mut out = [0i64; 4];
    for slot in &mut out {
        let f = it.next()?;
        if !f.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *slot = parse_i64(f)?;
    }
    Some(out)
}

/// Storage I/O counters of `/proc/<pid>/io`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Io {
    pub read_bytes: i64,
    pub write_bytes: i64,
    pub cancelled_write_bytes: i64,
}

impl Io {
    /// Bytes written to storage, minus those whose writeback was cancelled (truncation).
    pub fn written(&self) -> i64 {
        self.write_bytes - self.cancelled_write_bytes
    }
}

/// Parses `/proc/<pid>/io`; `None` unless the three storage counters are present.
pub fn parse_io(text: &[u8]) -> Option<Io> {
    let (mut r, mut w, mut c) = (None, None, None);
    for line in text.split(|b| *b == b'\n') {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let value = || parse_i64(trim(&line[colon + 1..]));
        match &line[..colon] {
            b"read_bytes" => r = value(),
            b"write_bytes" => w = value(),
            b"cancelled_write_bytes" => c = value(),
            _ => {}
        }
    }
    Some(Io {
        read_bytes: r?,
        write_bytes: w?,
        cancelled_write_bytes: c?,
    })
}

/// Every counter of `/proc/<pid>/io`: characters moved through read/write calls, the
/// calls themselves, and the bytes that reached (or were spared) storage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoCounters {
    pub rchar: Option<i64>,
    pub wchar: Option<i64>,
    pub syscr: Option<i64>,
    pub syscw: Option<i64>,
    pub read_bytes: Option<i64>,
    pub write_bytes: Option<i64>,
    pub cancelled_write_bytes: Option<i64>,
}

/// Parses every `name: value` line of `/proc/<pid>/io`; a line missing or unreadable
/// leaves its counter `None` (kernels without task I/O accounting list only some).
pub fn parse_io_counters(text: &[u8]) -> IoCounters {
    let mut io = IoCounters::default();
    for line in text.split(|b| *b == b'\n') {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let value = parse_i64(trim(&line[colon + 1..]));
        let slot = match &line[..colon] {
            b"rchar" => &mut io.rchar,
            b"wchar" => &mut io.wchar,
            b"syscr" => &mut io.syscr,
            b"syscw" => &mut io.syscw,
            b"read_bytes" => &mut io.read_bytes,
            b"write_bytes" => &mut io.write_bytes,
            b"cancelled_write_bytes" => &mut io.cancelled_write_bytes,
            _ => continue,
        };
        *slot = value;
    }
    io
}

/// The cgroup path of `/proc/<pid>/cgroup`: the unified (v2) `0::` entry, or, on a
/// v1-only host, the path of the first hierarchy listed.
pub fn parse_cgroup(text: &[u8]) -> Option<&[u8]> {
    let mut first = None;
    for line in text.split(|b| *b == b'\n') {
        if let Some(path) = line.strip_prefix(b"0::") {
            return Some(path);
        }
        if first.is_none() {
            // hierarchy-id:controllers:path (the path itself may contain ':')
            let mut parts = line.splitn(3, |b| *b == b':');
            if let (Some(_), Some(_), Some(path)) = (parts.next(), parts.next(), parts.next()) {
                first = Some(path);
            }
        }
    }
    first
}

/// `/proc/<pid>/cmdline` as one line: NUL separators become spaces, and the trailing
/// separator (and any surrounding ASCII whitespace) is dropped. Arguments are bytes that
/// need not be UTF-8; they are kept as they are.
pub fn cmdline_text(raw: &[u8]) -> Vec<u8> {
    // Trimmed before the copy: one allocation per process on this hot path.
    let blank = |b: &u8| *b == 0 || b.is_ascii_whitespace();
    let start = raw.iter().position(|b| !blank(b)).unwrap_or(raw.len());
    let end = raw.iter().rposition(|b| !blank(b)).map_or(start, |i| i + 1);
    raw[start..end]
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect()
}

/// `/proc/<pid>/environ` (each `NAME=value` NUL-terminated) as one line of variables
/// joined by spaces, as [`cmdline_text`] joins arguments, with the number of variables.
/// A block cut short (no final NUL) keeps its last variable.
pub fn environ_text(raw: &[u8]) -> (Vec<u8>, usize) {
    let vars: Vec<&[u8]> = raw.split(|b| *b == 0).filter(|v| !v.is_empty()).collect();
    (vars.join(&b' '), vars.len())
}

/// The kernel's marker on the `exe` link of a process whose executable was unlinked.
pub const DELETED_SUFFIX: &[u8] = b" (deleted)";

/// Parses a `kind:[inode]` link (`socket:[123]`, `net:[4026531833]`).
pub fn parse_bracket_inode<'a>(link: &'a [u8], kind: &[u8]) -> Option<u64> {
    let rest: &'a [u8] = link.strip_prefix(kind)?.strip_prefix(b":[")?;
    let digits = rest.strip_suffix(b"]")?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    parse_u64(digits)
}

/// The inode of the network namespace of a process (`/proc/<pid>/ns/net`).
pub fn net_namespace(path: &ProcPath, reader: &mut FileReader) -> Option<u64> {
    parse_bracket_inode(path.read_link(reader, "ns/net").ok()?, b"net")
}

/// Calls `f(fd, socket_inode)` for every descriptor of the process that is a socket
/// (see [`for_each_descriptor`]). A descriptor closed between listing and reading is
/// skipped.
pub fn for_each_socket_fd(path: &ProcPath, mut f: impl FnMut(u64, u64)) -> io::Result<()> {
    for_each_descriptor(path, |d| {
        if let Some(inode) = parse_bracket_inode(d.target, b"socket") {
            f(d.fd, inode);
        }
    })
}

/// The pids a scan visits: the `=`/`IN` values of a pid constraint when there is one
/// (looked up directly, never listing `/proc`; values that cannot be pids are dropped),
/// otherwise every process `/proc` lists.
pub fn pids_or_all(wanted: Option<Vec<i64>>) -> io::Result<Vec<u32>> {
    match wanted {
        Some(list) => Ok(list
            .into_iter()
            .filter_map(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0)
            .collect()),
        None => {
            let mut all = Vec::new();
            list_pids(&mut all)?;
            Ok(all)
        }
    }
}

/// Splits `/proc/<pid>/environ` (NUL-terminated `KEY=VALUE` strings) into key and value
/// at the first `=`. Empty strings are skipped; an entry without `=` is all key with an
/// empty value. A value may itself contain `=`.
pub fn environ_entries(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    raw.split(|b| *b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| match memchr::memchr(b'=', e) {
            Some(eq) => (&e[..eq], &e[eq + 1..]),
            None => (e, &b""[..]),
        })
}

/// One line of `/proc/<pid>/maps`:
/// `start-end perms offset major:minor inode    path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapsEntry<'a> {
    /// Start and end addresses as the kernel prints them (lower-case hex, no `0x`).
    pub start: &'a [u8],
    pub end: &'a [u8],
    /// Four characters: `r`/`-`, `w`/`-`, `x`/`-`, `p` (private) or `s` (shared).
    pub perms: &'a [u8],
    /// Offset into the mapped file in bytes.
    pub offset: u64,
    /// `major:minor` of the device holding the file, in hex.
    pub device: &'a [u8],
    pub inode: u64,
    /// The mapped file, a pseudo name such as `[heap]`, or empty for anonymous memory.
    /// Everything after the inode but the padding, so names with spaces (and the
    /// kernel's ` (deleted)` marker) are kept whole.
    pub path: &'a [u8],
}

fn is_hex(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_hexdigit)
}

fn hex_u64(b: &[u8]) -> Option<u64> {
    if !is_hex(b) || b.len() > 16 {
        return None;
    }
    b.iter().try_fold(0u64, |n, c| {
        Some((n << 4) | u64::from((*c as char).to_digit(16)?))
    })
}

/// Parses one `maps` line; `None` for anything that is not a whole, well-formed entry.
pub fn parse_maps_line(line: &[u8]) -> Option<MapsEntry<'_>> {
    let mut rest = line;
    let mut field = || -> Option<&[u8]> {
        let end = memchr::memchr(b' ', rest)?;
        let f = &rest[..end];
        rest = &rest[end + 1..];
        Some(f)
    };
    let range = field()?;
    let perms = field()?;
    let offset = field()?;
    let device = field()?;
    // The inode may end the line (anonymous mappings).
    let (inode, path) = match memchr::memchr(b' ', rest) {
        Some(end) => (&rest[..end], rest[end + 1..].trim_ascii_start()),
        None => (rest, &b""[..]),
    };
    let dash = memchr::memchr(b'-', range)?;
    let (start, end) = (&range[..dash], &range[dash + 1..]);
    if !is_hex(start) || !is_hex(end) || perms.len() != 4 {
        return None;
    }
    let colon = memchr::memchr(b':', device)?;
    if !is_hex(&device[..colon]) || !is_hex(&device[colon + 1..]) {
        return None;
    }
    if inode.is_empty() || !inode.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(MapsEntry {
        start,
        end,
        perms,
        offset: hex_u64(offset)?,
        device,
        inode: parse_u64(inode)?,
        path,
    })
}

/// The inode of a process's namespace of `kind` (`net`, `mnt`, `pid`, `user`, ...)
/// from the `/proc/<pid>/ns/<kind>` link (`kind:[inode]`).
pub fn namespace_inode(path: &ProcPath, reader: &mut FileReader, kind: &str) -> Option<u64> {
    let mut name = String::with_capacity(3 + kind.len());
    name.push_str("ns/");
    name.push_str(kind);
    parse_bracket_inode(path.read_link(reader, &name).ok()?, kind.as_bytes())
}

/// One open descriptor of a process, as [`for_each_descriptor`] hands it out.
#[derive(Debug)]
pub struct Descriptor<'a> {
    pub fd: u64,
    /// Target of the `/proc/<pid>/fd/<fd>` link: a path (with ` (deleted)` when
    /// unlinked), or `kind:[inode]` / `anon_inode:...` for pipes, sockets and the like.
    pub target: &'a [u8],
    dir: libc::c_int,
    name: &'a CStr,
}

impl Descriptor<'_> {
    /// `lstat` of the link itself: its permission bits tell the open mode (`S_IRUSR` when
    /// open for reading, `S_IWUSR` when open for writing).
    pub fn link_stat(&self) -> io::Result<libc::stat> {
        self.fstatat(libc::AT_SYMLINK_NOFOLLOW)
    }

    /// `stat` of the open file itself (through the link, so it works for files in other
    /// mount namespaces and for unlinked files).
    pub fn target_stat(&self) -> io::Result<libc::stat> {
        self.fstatat(0)
    }

    /// Whether the descriptor is open for reading and for writing, from
    /// [`Descriptor::link_stat`].
    pub fn open_mode(&self) -> io::Result<(bool, bool)> {
        let st = self.link_stat()?;
        let read = st.st_mode & (libc::S_IRUSR | libc::S_IRGRP | libc::S_IROTH) != 0;
        let write = st.st_mode & (libc::S_IWUSR | libc::S_IWGRP | libc::S_IWOTH) != 0;
        Ok((read, write))
    }

    fn fstatat(&self, flags: libc::c_int) -> io::Result<libc::stat> {
        // SAFETY: an all-zero stat is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: dir is the open fd directory for the duration of the callback; name is
        // NUL-terminated; st is writable.
        if unsafe { libc::fstatat(self.dir, self.name.as_ptr(), &mut st, flags) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}

/// Calls `f` for every open descriptor of the process, with its link target read by
/// `readlinkat` relative to the opened `fd` directory. A descriptor closed between
/// listing and reading is skipped. Targets longer than `PATH_MAX` are skipped too.
pub fn for_each_descriptor(path: &ProcPath, mut f: impl FnMut(&Descriptor<'_>)) -> io::Result<()> {
    let mut dir_path = Vec::with_capacity(path.prefix.len() + 3);
    dir_path.extend_from_slice(&path.prefix);
    dir_path.extend_from_slice(b"fd\0");
    let cpath = CStr::from_bytes_with_nul(&dir_path)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: cpath is NUL-terminated.
    let dir = unsafe { libc::opendir(cpath.as_ptr()) };
    if dir.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: dir is an open directory stream.
    let dfd = unsafe { libc::dirfd(dir) };
    let mut link = [0u8; libc::PATH_MAX as usize];
    loop {
        // SAFETY: dir is an open directory stream owned by this function.
        let entry = unsafe { libc::readdir(dir) };
        if entry.is_null() {
            break;
        }
        // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated.
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
            continue;
        }
        let Some(fd) = parse_u64(bytes) else {
            continue;
        };
        // SAFETY: name is NUL-terminated; link is writable for its length.
        let n =
            unsafe { libc::readlinkat(dfd, name.as_ptr(), link.as_mut_ptr().cast(), link.len()) };
        if n <= 0 || n as usize >= link.len() {
            continue;
        }
        f(&Descriptor {
            fd,
            target: &link[..n as usize],
            dir: dfd,
            name,
        });
    }
    // SAFETY: dir is open and not used afterwards.
    unsafe { libc::closedir(dir) };
    Ok(())
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &[u8] = b"1234 (a) (b c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
        7 3 0 0 20 -5 2 0 4567 123456789 321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";

    #[test]
    fn stat_comm_with_parens_and_spaces() {
        let (comm, s) = parse_stat(STAT).unwrap();
        assert_eq!(comm, b"a) (b c)");
        assert_eq!(s.state, b'S');
        assert_eq!((s.ppid, s.pgrp), (1, 1234));
        assert_eq!((s.utime, s.stime), (7, 3));
        assert_eq!((s.nice, s.num_threads), (-5, 2));
        assert_eq!(s.starttime, 4567);
        assert_eq!(s.vsize, 123_456_789);
        assert_eq!(s.rss, 321);
    }

    #[test]
    fn stat_truncated_or_garbage_is_none() {
        let rss_at = STAT.windows(5).position(|w| w == b" 321 ").unwrap() + 1;
        for cut in 0..=rss_at {
            // Every prefix that ends before the rss field must be rejected, never panic.
            assert_eq!(parse_stat(&STAT[..cut]), None, "cut at {cut}");
        }
        assert_eq!(parse_stat(b""), None);
        assert_eq!(parse_stat(b")("), None);
        assert_eq!(parse_stat(b"1 (x)"), None);
        assert_eq!(parse_stat(b"1 (x) S a b c"), None);
        assert_eq!(parse_stat(&[0xff; 300]), None);
    }

    #[test]
    fn stat_of_self_matches_our_pid_and_parent() {
        let text = std::fs::read("/proc/self/stat").unwrap();
        let (_, s) = parse_stat(&text).unwrap();
        assert_eq!(s.ppid, i64::from(std::os::unix::process::parent_id()));
        assert!(s.num_threads >= 1);
    }

    #[test]
    fn status_ids() {
        let text = b"Name:\tx\nUid:\t1000\t1001\t1002\t1003\nGid:\t10\t11\t12\t13\nGroups:\t\n";
        assert_eq!(
            parse_status_ids(text),
            Some(Ids {
                uid: [1000, 1001, 1002, 1003],
                gid: [10, 11, 12, 13]
            })
        );
        assert_eq!(parse_status_ids(b"Uid:\t1\t2\t3\n"), None);
        assert_eq!(parse_status_ids(b"Uid:\t1\t2\t3\t4\n"), None);
        assert_eq!(
            parse_status_ids(b"Uid:\tx\ty\tz\t0\nGid:\t1\t1\t1\t1\n"),
            None
        );
        assert_eq!(parse_status_ids(b""), None);
    }

    #[test]
    fn status_ids_of_self_match_libc() {
        let text = std::fs::read("/proc/self/status").unwrap();
        let ids = parse_status_ids(&text).unwrap();
        // SAFETY: getuid/geteuid/getgid/getegid cannot fail.
        let (uid, euid, gid, egid) = unsafe {
            (
                libc::getuid(),
                libc::geteuid(),
                libc::getgid(),
                libc::getegid(),
            )
        };
        assert_eq!((ids.uid[0], ids.uid[1]), (i64::from(uid), i64::from(euid)));
        assert_eq!((ids.gid[0], ids.gid[1]), (i64::from(gid), i64::from(egid)));
    }

    #[test]
    fn io_counters() {
        let text = b"rchar: 1\nwchar: 2\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 4096\n";
        let io = parse_io(text).unwrap();
        assert_eq!(io.read_bytes, 4096);
        assert_eq!(io.written(), 4096);
        assert_eq!(parse_io(b"rchar: 1\n"), None);
        assert_eq!(
            parse_io(b"read_bytes: x\nwrite_bytes: 1\ncancelled_write_bytes: 0"),
            None
        );
    }

    #[test]
    fn cgroup_prefers_unified_entry() {
        assert_eq!(
            parse_cgroup(b"9:name=systemd:/a\n4:memory:/b\n0::/user.slice/x\n"),
            Some(&b"/user.slice/x"[..])
        );
        assert_eq!(parse_cgroup(b"0::/\n"), Some(&b"/"[..]));
        assert_eq!(parse_cgroup(b"4:memory:/b:c\n"), Some(&b"/b:c"[..]));
        assert_eq!(parse_cgroup(b"garbage"), None);
        assert_eq!(parse_cgroup(b""), None);
    }

    #[test]
    fn cmdline_joins_arguments() {
        assert_eq!(cmdline_text(b"sleep\x00600\x00"), b"sleep 600");
        assert_eq!(cmdline_text(b""), b"");
        assert_eq!(cmdline_text(b"a b\x00\xffc\x00"), b"a b \xffc");
    }

    #[test]
    fn environ_joins_variables() {
        assert_eq!(
            environ_text(b"A=1\0PATH=/bin:/usr/bin\0E=\0"),
            (b"A=1 PATH=/bin:/usr/bin E=".to_vec(), 3)
        );
        assert_eq!(environ_text(b""), (Vec::new(), 0));
        assert_eq!(environ_text(b"A=1\0B"), (b"A=1 B".to_vec(), 2));
    }

    #[test]
    fn bracket_inodes() {
        assert_eq!(parse_bracket_inode(b"socket:[42]", b"socket"), Some(42));
        assert_eq!(
            parse_bracket_inode(b"net:[4026531833]", b"net"),
            Some(4_026_531_833)
        );
        assert_eq!(parse_bracket_inode(b"pipe:[42]", b"socket"), None);
        assert_eq!(parse_bracket_inode(b"socket:[]", b"socket"), None);
        assert_eq!(parse_bracket_inode(b"socket:[4x]", b"socket"), None);
        assert_eq!(parse_bracket_inode(b"/dev/null", b"socket"), None);
    }

    #[test]
    fn btime_and_pid_names() {
        assert_eq!(
            parse_btime(b"cpu 1 2\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_btime(b"cpu 1 2\n"), None);
        assert_eq!(parse_pid(b"123"), Some(123));
        for bad in [&b"self"[..], b"0", b"", b"12a", b"99999999999"] {
            assert_eq!(parse_pid(bad), None);
        }
    }

    #[test]
    fn lists_our_own_pid() {
        let mut pids = Vec::new();
        list_pids(&mut pids).unwrap();
        assert!(pids.contains(&std::process::id()));
    }

    #[test]
    fn finds_our_socket_descriptor() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = listener.as_raw_fd() as u64;
        // The socket's inode, from fstat through /proc/self/fd (an independent path).
        let inode = std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .unwrap()
            .ino();
        let mut found = Vec::new();
        for_each_socket_fd(&ProcPath::new(std::process::id()), |f, i| {
            found.push((f, i))
        })
        .unwrap();
        assert!(
            found.contains(&(fd, inode)),
            "{found:?} lacks ({fd}, {inode})"
        );
        let mut r = FileReader::new();
        let ns = net_namespace(&ProcPath::new(std::process::id()), &mut r).unwrap();
        let want = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
        assert_eq!(ns, want);
    }
}
