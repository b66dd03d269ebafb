//! The one way to open files that other users control.
//!
//! Tables run as root and read files any local user can replace: `~/.bash_history`,
//! `~/.ssh/authorized_keys`, crontabs in the spool, autostart entries. Such a path may be
//! a FIFO (a plain `open` waits forever for a writer), a link to `/dev/zero` (a read that
//! never ends), a 10 GB sparse file, or a file swapped for another at any moment.
//! [`SafeFile::open`] therefore:
//!
//! 1. opens with `O_NONBLOCK | O_NOCTTY | O_CLOEXEC`: opening a FIFO returns at once,
//!    and a terminal never becomes our controlling terminal;
//! 2. `fstat`s the descriptor it opened, never the path, so a file swapped in after the
//!    open changes nothing: only a regular file is read, unless the [`Policy`] allows
//!    devices (then `O_NONBLOCK` stays set, so a device read cannot block either).
//!    Files of the kernel's pseudo file systems (`/proc`, `/sys`, debugfs, tracefs) stay
//!    non-blocking too: some wait for events (`/proc/kmsg`, `trace_pipe`), and a read
//!    that would wait fails with [`io::ErrorKind::WouldBlock`] instead. The two kinds
//!    whose reads take data away from their real reader (`/proc/kmsg`, tracefs'
//!    `trace_pipe`) are refused outright;
//! 3. counts the bytes actually read against the policy's limit (osquery's `--read_max`,
//!    50 MiB by default). `st_size` is only a hint: `/proc` files report 0 and files grow
//!    while they are read. Over the limit the read fails ([`OverLimit::Fail`], what
//!    osquery does: "Cannot read file that exceeds size limit") or stops
//!    ([`OverLimit::Truncate`]). With `Fail`, a regular file whose size is already over
//!    the limit is refused at the open, before anything is read.
//!
//! Symbolic links: osquery reads the per-user files (`forensicReadFile` in its
//! `shell_history`, `authorized_keys`, `known_hosts`, `user_ssh_keys`, `ssh_configs`)
//! through the link, so [`Policy::user_file`] follows them too. What the link may point
//! at is still limited by the checks above (a regular file, within the limit).
//! [`Policy::follow_symlinks`] `= false` adds `O_NOFOLLOW` for callers that must not.
//!
//! Permissions: a file under a home can be opened with the account's own permissions
//! ([`Policy::open_as`]): while running as root, the opening thread takes the account's
//! file-system uid and gid (`setfsuid`/`setfsgid`, which Linux keeps per thread) for the
//! `open` only. A link from `~/.bash_history` to `/etc/shadow` then fails as it would for
//! the user, which is what osquery's `DropPrivileges` achieves for `shell_history` and
//! `user_ssh_keys`, and what bash and ssh themselves see. Root's supplementary groups
//! stay in effect during that open (changing them is process-wide).
//!
//! Another process's files: a [`Root`] made by [`Root::process`] resolves paths as that
//! process's mount namespace sees them, through `/proc/<pid>/root`, with `openat2(2)` and
//! `RESOLVE_IN_ROOT`: `..` and absolute symbolic links inside stay inside that root. A
//! plain open of `/proc/<pid>/root/etc/hosts` would follow a container's
//! `/etc/hosts -> /etc/shadow` to the host's `/etc/shadow`. Without `openat2` (Linux
//! before 5.6) [`Root::process`] fails rather than read unsafely.
//!
//! On top of the opener: [`read_bounded`] (a whole file into memory) and
//! [`for_each_line`] (lines streamed in bounded memory, overlong lines skipped).

use std::ffi::{CString, OsString};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Longest line [`for_each_line`] hands out by default; longer lines are skipped.
pub const MAX_LINE: usize = 1 << 20;

/// What reading past [`Policy::limit`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverLimit {
    /// The read fails with [`io::ErrorKind::FileTooLarge`] (osquery's `--read_max`).
    Fail,
    /// The read ends after `limit` bytes, as if the file ended there.
    Truncate,
}

/// Which kinds of file may be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKinds {
    /// Regular files only: what every table reading users' files wants.
    Regular,
    /// Regular files and character or block devices (for tables about devices); reads
    /// stay non-blocking. FIFOs, sockets and directories are still refused.
    RegularOrDevice,
}

/// How a file may be opened and how much of it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Most bytes read (osquery's `--read_max`).
    pub limit: u64,
    pub over_limit: OverLimit,
    pub kinds: FileKinds,
    /// Whether a symbolic link as the last path component is followed (`O_NOFOLLOW` if not).
    pub follow_symlinks: bool,
    /// Whose permissions the open is checked against, when not ours (see the module
    /// documentation). Without root privileges this changes nothing: we can only open
    /// what our own ids allow anyway.
    pub open_as: Option<Account>,
}

/// A user and group id to open a file as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

impl Policy {
    /// A file a user controls, as osquery reads it: a regular file (links followed), at
    /// most `limit` bytes, or an error.
    pub fn user_file(limit: u64) -> Self {
        Policy {
            limit,
            over_limit: OverLimit::Fail,
            kinds: FileKinds::Regular,
            follow_symlinks: true,
            open_as: None,
        }
    }

    /// A file under `account`'s home: as [`Policy::user_file`], opened with the
    /// account's permissions.
    pub fn home_file(limit: u64, account: Account) -> Self {
        Policy {
            open_as: Some(account),
            ..Policy::user_file(limit)
        }
    }
}

/// This thread's file-system uid and gid switched to an account's; the previous ones
/// come back when it is dropped.
struct FsIdentity {
    uid: u32,
    gid: u32,
}

impl FsIdentity {
    /// Takes `account`'s file-system ids when we run as root (`None` otherwise).
    fn assume(account: Account) -> io::Result<Option<FsIdentity>> {
        // SAFETY: these calls only change this thread's file-system credentials, and the
        // guard restores them.
        unsafe {
            if libc::geteuid() != 0 {
                return Ok(None);
            }
            let gid = libc::setfsgid(account.gid) as u32;
            let uid = libc::setfsuid(account.uid) as u32;
            let previous = FsIdentity { uid, gid };
            // Neither call reports failure; an invalid id (-1) changes nothing and returns
            // the current one, which reads the result back.
            if libc::setfsuid(u32::MAX) as u32 != account.uid
                || libc::setfsgid(u32::MAX) as u32 != account.gid
            {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "cannot take the file-system identity of uid {} gid {}",
                        account.uid, account.gid
                    ),
                ));
            }
            Ok(Some(previous))
        }
    }
}

impl Drop for FsIdentity {
    fn drop(&mut self) {
        // SAFETY: restores the ids this thread had before `assume`.
        unsafe {
            libc::setfsuid(self.uid);
            libc::setfsgid(self.gid);
        }
    }
}

/// Where paths are resolved: our own root, or another process's as its mount namespace
/// sees it (see the module documentation). Cloning shares the open directory.
#[derive(Debug, Clone)]
pub struct Root {
    /// The process whose root this is; 0 for ours.
    pid: i64,
    /// `/proc/<pid>/root` (or another directory), opened `O_PATH`; `None` for ours.
    dir: Option<Arc<OwnedFd>>,
    /// Where that directory is, for messages.
    base: PathBuf,
}

impl Root {
    /// Our own root: paths are opened as they are.
    pub fn host() -> Root {
        Root {
            pid: 0,
            dir: None,
            base: PathBuf::from("/"),
        }
    }

    /// Process `pid`'s root. Fails when the process is gone or not ours to look into, and
    /// with [`io::ErrorKind::Unsupported`] when the kernel lacks `openat2` with
    /// `RESOLVE_IN_ROOT` (Linux before 5.6): its files are then not read at all.
    pub fn process(pid: i64) -> io::Result<Root> {
        let mut root = Root::directory(Path::new(&format!("/proc/{pid}/root")))?;
        root.pid = pid;
        Ok(root)
    }

    /// A directory taken as the root (a fixture of a system's files, a mounted image):
    /// paths resolve inside it as [`Root::process`]'s do; rows say pid 0.
    pub fn directory(base: &Path) -> io::Result<Root> {
        let path = CString::new(base.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"))?;
        let dir = crate::fs::open_dir_path(&path)?;
        let root = Root {
            pid: 0,
            dir: Some(Arc::new(dir)),
            base: base.to_owned(),
        };
        // Probe once: an old kernel answers ENOSYS (no openat2) or EINVAL (no flag).
        match root.open_flags(Path::new("/"), libc::O_PATH | libc::O_DIRECTORY) {
            Ok(_) => Ok(root),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOSYS | libc::EINVAL | libc::E2BIG)
                ) =>
            {
                Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "the kernel lacks openat2 with RESOLVE_IN_ROOT (Linux 5.6 or later), \
                     needed to read another mount namespace's files safely",
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// The process this root is of; 0 for ours.
    pub fn pid(&self) -> i64 {
        self.pid
    }

    /// The inode number of the process's mount namespace, as text (`None` for ours).
    pub fn mount_namespace_id(&self) -> Option<String> {
        if self.pid <= 0 {
            return None;
        }
        let link = std::fs::read_link(format!("/proc/{}/ns/mnt", self.pid)).ok()?;
        let link = link.to_str()?;
        let inode = link.strip_prefix("mnt:[")?.strip_suffix(']')?;
        Some(inode.to_owned())
    }

    /// `path` as messages show it: unchanged for our root, under `/proc/<pid>/root`
    /// (or the directory) for another.
    pub fn display(&self, path: &Path) -> PathBuf {
        self.base.join(path.strip_prefix("/").unwrap_or(path))
    }

    /// Opens `path` with `flags` (`O_CLOEXEC` is added) resolved inside this root.
    pub fn open_flags(&self, path: &Path, flags: libc::c_int) -> io::Result<File> {
        let Some(dir) = &self.dir else {
            // std adds O_CLOEXEC to every open.
            let mut options = OpenOptions::new();
            if flags & libc::O_PATH != 0 {
                options.custom_flags(flags);
                // O_PATH ignores the access mode; std insists on one.
                options.read(true);
            } else {
                options.read(true).custom_flags(flags);
            }
            return options.open(path);
        };
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL in the path"))?;
        // SAFETY: open_how is plain data.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (flags | libc::O_CLOEXEC) as u64;
        // Absolute links and `..` stay inside the root; the kernel's "magic" links
        // (`/proc/self/root`, `/proc/<pid>/fd/N` inside the container) could leave it.
        how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
        loop {
            // SAFETY: the syscall reads `c_path` and `how`, both alive for the call; it
            // returns a new descriptor or -1.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    dir.as_raw_fd(),
                    c_path.as_ptr(),
                    &how as *const libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            if fd >= 0 {
                // SAFETY: a descriptor the kernel just gave us.
                return Ok(unsafe { File::from_raw_fd(fd as libc::c_int) });
            }
            let e = io::Error::last_os_error();
            // EAGAIN: a rename raced the resolution (the kernel's own advice is to retry).
            if !matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) {
                return Err(e);
            }
        }
    }

    /// `path` resolved inside this root, for code that can only take a path (SQLite):
    /// see [`Resolved`]. Fails as the resolution does (not found, a link out of it).
    pub fn resolve(&self, path: &Path) -> io::Result<Resolved> {
        let fd = self.open_flags(path, libc::O_PATH)?;
        let path = match self.dir {
            None => path.to_owned(),
            Some(_) => PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        };
        Ok(Resolved { _fd: fd, path })
    }

    /// The followed `stat` of `path` inside this root.
    pub fn metadata(&self, path: &Path) -> io::Result<std::fs::Metadata> {
        if self.dir.is_none() {
            return std::fs::metadata(path);
        }
        self.open_flags(path, libc::O_PATH)?.metadata()
    }

    /// The `lstat` of `path` inside this root (a link's own).
    pub fn symlink_metadata(&self, path: &Path) -> io::Result<std::fs::Metadata> {
        if self.dir.is_none() {
            return std::fs::symlink_metadata(path);
        }
        self.open_flags(path, libc::O_PATH | libc::O_NOFOLLOW)?
            .metadata()
    }

    /// The target of the link `path` inside this root, as written.
    pub fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        if self.dir.is_none() {
            return std::fs::read_link(path);
        }
        let link = self.open_flags(path, libc::O_PATH | libc::O_NOFOLLOW)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: readlinkat writes at most `buf.len()` bytes; "" with an O_PATH
        // descriptor names the link itself.
        let n = unsafe {
            libc::readlinkat(
                link.as_raw_fd(),
                c"".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        buf.truncate(n as usize);
        Ok(PathBuf::from(OsString::from_vec(buf)))
    }

    /// The names in directory `path` inside this root (without `.` and `..`): at most
    /// [`crate::pattern::MAX_MATCHES`], with a warning past that (a directory someone
    /// filled to exhaust us).
    pub fn read_dir_names(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let dir = self.open_flags(path, libc::O_RDONLY | libc::O_DIRECTORY)?;
        // The directory is resolved already: listing it through its descriptor's
        // /proc/self/fd entry follows nothing else.
        let mut names: Vec<OsString> =
            std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .take(crate::pattern::MAX_MATCHES + 1)
                .collect();
        drop(dir);
        if names.len() > crate::pattern::MAX_MATCHES {
            names.truncate(crate::pattern::MAX_MATCHES);
            log::warn!(
                "Directory {} has more than {} entries; results are incomplete",
                self.display(path).display(),
                crate::pattern::MAX_MATCHES
            );
        }
        Ok(names)
    }
}

/// A path resolved inside a [`Root`]: for another process's, `/proc/self/fd/N` of an
/// `O_PATH` descriptor held here, so opening [`Resolved::path`] reaches the file found
/// inside that root and nothing a link would lead to outside it. Valid while this lives.
#[derive(Debug)]
pub struct Resolved {
    _fd: File,
    path: PathBuf,
}

impl Resolved {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// An open file that passed the [`Policy`] checks; reading it stops at the limit.
#[derive(Debug)]
pub struct SafeFile {
    file: File,
    policy: Policy,
    /// `st_size` at the open: a hint only.
    size_hint: u64,
    /// A regular file outside the kernel's pseudo file systems: `st_size` is its length.
    sized: bool,
    /// Bytes read so far, including what came past the limit (at most a page).
    read: u64,
    /// Set once a read passed the limit: later reads end (Truncate) or fail (Fail).
    done: bool,
}

/// What a file that is not a regular file or a directory is, for messages: "a FIFO",
/// "a socket", "a character device", ...
pub fn kind_name(ft: std::fs::FileType) -> &'static str {
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "of an unknown kind"
    }
}

/// Whether the file system holding `file` is one whose files the kernel generates on
/// each read (`/proc`, `/sys`, debugfs, tracefs, securityfs, configfs): their `st_size` is
/// 0 or nominal, and some of them wait for events.
fn kernel_generated(file: &File) -> bool {
    const PROC: i64 = 0x9fa0;
    const SYSFS: i64 = 0x6265_6572;
    const DEBUGFS: i64 = 0x6462_6720;
    const TRACEFS: i64 = 0x7472_6163;
    const SECURITYFS: i64 = 0x7363_6673;
    const CONFIGFS: i64 = 0x6265_6570;
    // SAFETY: statfs is plain data; fstatfs fills it for a descriptor we own.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets.
    let kind = st.f_type as i64;
    matches!(
        kind,
        PROC | SYSFS | DEBUGFS | TRACEFS | SECURITYFS | CONFIGFS
    )
}

/// Whether `file`, a kernel file, hands out data only once: `/proc/kmsg` (what syslog
/// daemons read the kernel log from) and tracefs' `trace_pipe`s. Reading them would take
/// messages from their reader, so they are never read. Named by what the descriptor
/// points at, so a link to them is caught too.
fn consumed_by_reading(file: &File) -> bool {
    let Ok(target) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) else {
        return false;
    };
    target == Path::new("/proc/kmsg")
        || target
            .file_name()
            .is_some_and(|n| n == "trace_pipe" || n == "trace_pipe_raw")
}

pub(crate) fn too_large(limit: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        format!("exceeds the read limit (--read_max) of {limit} bytes"),
    )
}

impl SafeFile {
    /// Opens `path` as the module documentation describes. Errors: the open's own (not
    /// found, permission, `ELOOP` for a refused link), [`io::ErrorKind::IsADirectory`],
    /// [`io::ErrorKind::InvalidInput`] for another kind of file (the message names it),
    /// and [`io::ErrorKind::FileTooLarge`] for a regular file already over a failing limit.
    pub fn open(path: &Path, policy: &Policy) -> io::Result<SafeFile> {
        SafeFile::open_in(&Root::host(), path, policy)
    }

    /// [`SafeFile::open`] with `path` resolved inside `root`.
    pub fn open_in(root: &Root, path: &Path, policy: &Policy) -> io::Result<SafeFile> {
        let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
        if !policy.follow_symlinks {
            flags |= libc::O_NOFOLLOW;
        }
        let identity = match policy.open_as {
            Some(account) => FsIdentity::assume(account)?,
            None => None,
        };
        let file = root.open_flags(path, flags);
        // Only the open needs the account's permissions; reads go through the descriptor.
        drop(identity);
        let file = file?;
        let meta = file.metadata()?;
        let ft = meta.file_type();
        let device = ft.is_char_device() || ft.is_block_device();
        if ft.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        let allowed = ft.is_file() || (device && policy.kinds == FileKinds::RegularOrDevice);
        if !allowed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a regular file: {}", kind_name(ft)),
            ));
        }
        let generated = ft.is_file() && kernel_generated(&file);
        if generated && consumed_by_reading(&file) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a kernel stream that reading takes away from its reader (the kernel log or \
                 a trace pipe): not read",
            ));
        }
        if ft.is_file() {
            if policy.over_limit == OverLimit::Fail && meta.len() > policy.limit {
                return Err(too_large(policy.limit));
            }
            // A regular file on a disk never blocks, but some file systems (FUSE, NFS)
            // answer EAGAIN to a non-blocking read; give it ordinary reads. Kernel files
            // keep O_NONBLOCK: `/proc/kmsg` would otherwise wait for the next message.
            if !generated {
                // SAFETY: fcntl on a descriptor we own.
                unsafe {
                    let fd = file.as_raw_fd();
                    let fl = libc::fcntl(fd, libc::F_GETFL);
                    if fl >= 0 {
                        libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK);
                    }
                }
            }
        }
        Ok(SafeFile {
            file,
            policy: *policy,
            size_hint: if ft.is_file() { meta.len() } else { 0 },
            sized: ft.is_file() && !generated,
            read: 0,
            done: false,
        })
    }

    /// The file's size at the open (0 for devices): a hint for buffer sizes, never a bound.
    pub fn size_hint(&self) -> u64 {
        self.size_hint
    }

    /// The file's size at the open when it says how much there is to read: a regular
    /// file outside the kernel's pseudo file systems (whose files report 0, as most of
    /// `/proc`, or a nominal size). `None` for those and for devices.
    pub fn size(&self) -> Option<u64> {
        self.sized.then_some(self.size_hint)
    }

    /// The open descriptor, for callers that read at positions (`pread`, a disk image)
    /// and bound what they read themselves: the read limit no longer applies.
    pub fn into_file(self) -> File {
        self.file
    }
}

impl Read for SafeFile {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return match self.policy.over_limit {
                OverLimit::Fail => Err(too_large(self.policy.limit)),
                OverLimit::Truncate => Ok(0),
            };
        }
        if buf.is_empty() {
            return Ok(0);
        }
        // Allow one byte past the limit: a file of exactly `limit` bytes reads whole, and
        // that one byte is how a longer one is noticed.
        let room = self.policy.limit.saturating_add(1) - self.read;
        // Near the limit, still ask for whole pages: some kernel files refuse reads of
        // other sizes (`/proc/<pid>/pagemap` wants multiples of 8). What comes past the
        // limit is dropped below, so at most a page more is read, never handed out.
        let want = if buf.len() as u64 <= room {
            buf.len()
        } else {
            buf.len()
                .min(usize::try_from(room.next_multiple_of(4096)).unwrap_or(usize::MAX))
        };
        let n = loop {
            match self.file.read(&mut buf[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Only a non-blocking kernel file or device gets here: it has no data
                // now and would wait for more (a log, an event stream).
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::WouldBlock,
                        "has nothing to read without waiting (a stream that never ends)",
                    ));
                }
                r => break r?,
            }
        };
        self.read += n as u64;
        if self.read > self.policy.limit {
            // Hand out the bytes up to the limit first; what follows is the end (Truncate)
            // or the error (Fail), so a line reader keeps the whole lines before the limit
            // whatever the chunk sizes.
            self.done = true;
            let within = n - (self.read - self.policy.limit) as usize;
            return match (within, self.policy.over_limit) {
                (0, OverLimit::Fail) => Err(too_large(self.policy.limit)),
                _ => Ok(within),
            };
        }
        Ok(n)
    }
}

/// Reads a whole file under `policy` (see the module documentation).
pub fn read_bounded(path: &Path, policy: &Policy) -> io::Result<Vec<u8>> {
    read_bounded_in(&Root::host(), path, policy)
}

/// [`read_bounded`] with `path` resolved inside `root`.
pub fn read_bounded_in(root: &Root, path: &Path, policy: &Policy) -> io::Result<Vec<u8>> {
    let mut file = SafeFile::open_in(root, path, policy)?;
    // Trust st_size only as far as the limit; one more byte avoids a regrowth at the end.
    let capacity = file.size_hint().min(policy.limit).saturating_add(1);
    let mut out = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    file.read_to_end(&mut out)?;
    Ok(out)
}

/// Streams the `\n`-separated lines of a file opened under `policy` to `f` (without the
/// newline; a final unterminated line included) in bounded memory: a line longer than
/// `max_line` bytes is skipped whole and counted in the returned number of skipped lines.
/// When a file passes a failing limit while it is read (it grew, or its size said
/// nothing, as in `/proc`), the whole lines within the limit have been handed out and the
/// error is returned; the line the limit cuts is not handed out.
pub fn for_each_line(
    path: &Path,
    policy: &Policy,
    max_line: usize,
    f: impl FnMut(&[u8]),
) -> io::Result<usize> {
    for_each_line_in(&Root::host(), path, policy, max_line, f)
}

/// [`for_each_line`] with `path` resolved inside `root`.
pub fn for_each_line_in(
    root: &Root,
    path: &Path,
    policy: &Policy,
    max_line: usize,
    mut f: impl FnMut(&[u8]),
) -> io::Result<usize> {
    let file = SafeFile::open_in(root, path, policy)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::fs;
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::sync::mpsc;
    use std::time::Duration;

    /// osquery's default `--read_max` (the setting itself lives in `oxquery-table`).
    const DEFAULT_READ_MAX: u64 = 50 * 1024 * 1024;

    /// Runs `f` on a thread and waits for its answer. A liveness check (a hang fails the
    /// test instead of stalling it), not a timing: the bound is generous on purpose.
    fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the read did not return: it blocks or never ends")
    }

    fn mkfifo(path: &Path) {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }

    fn truncating(limit: u64) -> Policy {
        Policy {
            over_limit: OverLimit::Truncate,
            ..Policy::user_file(limit)
        }
    }

    #[test]
    fn regular_files_read_whole_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"0123456789").unwrap();
        assert_eq!(
            read_bounded(&p, &Policy::user_file(10)).unwrap(),
            b"0123456789"
        );
        let err = read_bounded(&p, &Policy::user_file(9)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(read_bounded(&p, &truncating(4)).unwrap(), b"0123");
        assert_eq!(read_bounded(&p, &truncating(0)).unwrap(), b"");
        let missing = read_bounded(&dir.path().join("none"), &Policy::user_file(9));
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
        let d = read_bounded(dir.path(), &Policy::user_file(9));
        assert_eq!(d.unwrap_err().kind(), io::ErrorKind::IsADirectory);
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        // No writer ever opens it: a blocking open would wait forever.
        let err = within_10s(move || read_bounded(&fifo, &Policy::user_file(DEFAULT_READ_MAX)))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("FIFO"), "{err}");
    }

    #[test]
    fn a_link_to_dev_zero_is_refused_or_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("history");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let l = link.clone();
        let err = within_10s(move || read_bounded(&l, &Policy::user_file(1 << 20))).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        // A table about devices may read it, still bounded: to an error or to the limit.
        let devices = Policy {
            kinds: FileKinds::RegularOrDevice,
            ..Policy::user_file(1 << 20)
        };
        let l = link.clone();
        let err = within_10s(move || read_bounded(&l, &devices)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        let truncate = Policy {
            over_limit: OverLimit::Truncate,
            ..devices
        };
        let l = link.clone();
        let bytes = within_10s(move || read_bounded(&l, &truncate)).unwrap();
        assert_eq!(bytes.len(), 1 << 20);
        assert!(bytes.iter().all(|b| *b == 0));
        let l = link.clone();
        let lines = within_10s(move || for_each_line(&l, &devices, MAX_LINE, |_| {}));
        assert_eq!(lines.unwrap_err().kind(), io::ErrorKind::FileTooLarge);
        // And a caller that must not follow links sees the link itself refused.
        let nofollow = Policy {
            follow_symlinks: false,
            ..Policy::user_file(1 << 20)
        };
        let err = read_bounded(&link, &nofollow).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn a_huge_sparse_file_is_bounded_by_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("huge");
        let f = File::create(&p).unwrap();
        f.set_len(10 << 30).unwrap();
        drop(f);
        // Refused at the open from its size: nothing read, nothing allocated.
        let q = p.clone();
        let err =
            within_10s(move || read_bounded(&q, &Policy::user_file(DEFAULT_READ_MAX))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        let q = p.clone();
        let err = within_10s(move || {
            for_each_line(&q, &Policy::user_file(DEFAULT_READ_MAX), MAX_LINE, |_| {
                panic!("no line of a refused file")
            })
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        // Truncating: exactly the limit, and a buffer the size of the limit, not of st_size.
        let q = p.clone();
        let bytes = within_10s(move || read_bounded(&q, &truncating(1 << 20))).unwrap();
        assert_eq!(bytes.len(), 1 << 20);
        assert!(
            bytes.capacity() <= (1 << 20) + 1 + 4096,
            "{}",
            bytes.capacity()
        );
    }

    #[test]
    fn a_file_replaced_after_the_open_is_read_as_opened() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("authorized_keys");
        fs::write(&p, b"original\n").unwrap();
        let mut file = SafeFile::open(&p, &Policy::user_file(100)).unwrap();
        // Swap a FIFO, then a huge file, in under the same name.
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        fs::rename(&fifo, &p).unwrap();
        let mut got = Vec::new();
        file.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"original\n");
        let huge = dir.path().join("huge");
        File::create(&huge).unwrap().set_len(1 << 30).unwrap();
        fs::rename(&huge, &p).unwrap();
        let err = read_bounded(&p, &Policy::user_file(100)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
    }

    #[test]
    fn a_file_growing_while_read_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("grows");
        fs::write(&p, b"line one\n").unwrap();
        let mut file = SafeFile::open(&p, &Policy::user_file(20)).unwrap();
        let mut first = [0u8; 5];
        file.read_exact(&mut first).unwrap();
        // The owner appends far past the limit after our size check.
        let mut w = fs::OpenOptions::new().append(true).open(&p).unwrap();
        w.write_all(&[b'x'; 4096]).unwrap();
        let mut rest = Vec::new();
        let err = file.read_to_end(&mut rest).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(5 + rest.len(), 20, "read up to the limit, not past it");

        // Truncating instead: exactly the limit, the start of the file as it was.
        let mut file = SafeFile::open(&p, &truncating(20)).unwrap();
        w.write_all(b"more\n").unwrap();
        let mut all = Vec::new();
        file.read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), 20);
        assert!(all.starts_with(b"line one\nxxx"));

        // Lines past a failing limit: the whole ones within it are handed out, the cut
        // one is not. A /proc file (st_size 0) passes the open's size check as a file that
        // grows after the open does.
        let source = Path::new("/proc/filesystems");
        let text = fs::read(source).unwrap();
        assert!(text.len() > 100);
        let whole = &text[..=text[..100].iter().rposition(|b| *b == b'\n').unwrap()];
        let mut lines = Vec::new();
        let r = for_each_line(source, &Policy::user_file(100), MAX_LINE, |l| {
            lines.push(l.to_vec())
        });
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::FileTooLarge);
        let expected: Vec<Vec<u8>> = whole[..whole.len() - 1]
            .split(|b| *b == b'\n')
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(lines, expected);
        let mut lines = Vec::new();
        let r = for_each_line(&p, &truncating(12), MAX_LINE, |l| lines.push(l.to_vec()));
        assert_eq!(r.unwrap(), 0);
        assert_eq!(lines, [b"line one".to_vec(), b"xxx".to_vec()]);
    }

    /// A link in a user's home to a file the user may not read (the `/etc/shadow` case)
    /// is not read for them: the open is checked against the account, not against root.
    #[test]
    fn opening_as_an_account_uses_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m));
        // Directories anyone may search, so only the files' own modes decide.
        let dir = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        mode(dir.path(), 0o755).unwrap();
        mode(home.path(), 0o755).unwrap();
        // Mode 0: only privilege (root's DAC override) could open it.
        let secret = dir.path().join("secret");
        fs::write(&secret, b"hash\n").unwrap();
        mode(&secret, 0o000).unwrap();
        let link = home.path().join(".bash_history");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let account = Account {
            uid: 4321,
            gid: 4321,
        };
        let err = read_bounded(&link, &Policy::home_file(100, account)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        // SAFETY: plain getter.
        if unsafe { libc::geteuid() } == 0 {
            // This thread got its identity back: root reads the secret again.
            assert_eq!(
                read_bounded(&link, &Policy::user_file(100)).unwrap(),
                b"hash\n"
            );
        }
        // The account reads what it may: a world-readable file behind the same kind of link.
        mode(&secret, 0o644).unwrap();
        assert_eq!(
            read_bounded(&link, &Policy::home_file(100, account)).unwrap(),
            b"hash\n"
        );
    }

    #[test]
    fn lines_are_streamed_and_overlong_ones_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut bytes = b"one\n\ntwo\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 300_000));
        bytes.extend_from_slice(b"\nthree");
        fs::write(&p, &bytes).unwrap();
        let mut got = Vec::new();
        let policy = Policy::user_file(DEFAULT_READ_MAX);
        let skipped = for_each_line(&p, &policy, 1000, |l| got.push(l.to_vec())).unwrap();
        assert_eq!(got, [&b"one"[..], b"", b"two", b"three"]);
        assert_eq!(skipped, 1);
        assert!(for_each_line(&dir.path().join("none"), &policy, 10, |_| {}).is_err());
    }

    /// A stream with nothing to read yet (what `/proc/kmsg` is between kernel messages)
    /// ends the read with an error instead of waiting. A new pseudo-terminal's master
    /// side stands in for it: it is ours, and nothing is ever written to it.
    #[test]
    fn a_stream_with_nothing_to_read_fails_instead_of_waiting() {
        let devices = Policy {
            kinds: FileKinds::RegularOrDevice,
            ..Policy::user_file(DEFAULT_READ_MAX)
        };
        let err = within_10s(move || read_bounded(Path::new("/dev/ptmx"), &devices)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert!(err.to_string().contains("never ends"), "{err}");
    }

    /// `/proc/kmsg` hands each kernel message out once (to the syslog daemon): it is
    /// refused before any read, under root; anyone else may not open it at all.
    #[test]
    fn the_kernel_log_stream_is_never_read() {
        let err = within_10s(|| {
            SafeFile::open(Path::new("/proc/kmsg"), &Policy::user_file(1 << 20)).map(|_| ())
        })
        .unwrap_err();
        // SAFETY: plain getter.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(err.to_string().contains("kernel log"), "{err}");
        } else {
            assert_eq!(err.kind(), io::ErrorKind::PermissionDenied, "{err}");
        }
    }

    /// Kernel files keep O_NONBLOCK (a read that would wait fails, see above) and have no
    /// meaningful size; files on a disk are read blocking, with their size known.
    #[test]
    fn kernel_files_stay_non_blocking_and_have_no_size() {
        let nonblocking = |f: SafeFile| {
            let file = f.into_file();
            // SAFETY: F_GETFL on a descriptor we own.
            let fl = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
            assert!(fl >= 0);
            fl & libc::O_NONBLOCK != 0
        };
        let policy = Policy::user_file(DEFAULT_READ_MAX);
        for kernel in [
            "/proc/self/status",
            "/proc/self/pagemap",
            "/sys/kernel/uevent_seqnum",
        ] {
            let f = SafeFile::open(Path::new(kernel), &policy).unwrap();
            assert_eq!(f.size(), None, "{kernel}");
            assert!(nonblocking(f), "{kernel}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"12345").unwrap();
        let f = SafeFile::open(&p, &policy).unwrap();
        assert_eq!(f.size(), Some(5));
        assert!(!nonblocking(f));
        fs::write(&p, b"").unwrap();
        assert_eq!(SafeFile::open(&p, &policy).unwrap().size(), Some(0));
    }

    /// `/proc/self/pagemap` reports size 0 and would yield hundreds of gigabytes: the
    /// limit counts the bytes read, so it ends there.
    #[test]
    fn an_endless_proc_file_stops_at_the_limit() {
        let err = within_10s(|| {
            read_bounded(Path::new("/proc/self/pagemap"), &Policy::user_file(1 << 20))
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        let bytes =
            within_10s(|| read_bounded(Path::new("/proc/self/pagemap"), &truncating(1 << 20)))
                .unwrap();
        assert_eq!(bytes.len(), 1 << 20);
    }

    #[test]
    fn proc_files_reporting_size_zero_read_whole() {
        // /proc/self/status has st_size 0: the limit counts bytes read, not st_size.
        let bytes =
            read_bounded(Path::new("/proc/self/status"), &Policy::user_file(1 << 20)).unwrap();
        assert!(bytes.starts_with(b"Name:"));
        assert!(bytes.ends_with(b"\n"));
        let err = read_bounded(Path::new("/proc/self/status"), &Policy::user_file(10));
        assert_eq!(err.unwrap_err().kind(), io::ErrorKind::FileTooLarge);
    }

    /// A root whose `/etc/hosts` is an absolute link to a host file the test wrote
    /// outside it, and whose `/etc/up` climbs out with `..`: neither reaches the host
    /// file, while the root's own files read.
    fn hostile_root(dir: &Path) -> PathBuf {
        let root = dir.join("root");
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(dir.join("secret"), "host secret\n").unwrap();
        fs::write(root.join("etc/hostname"), "inside\n").unwrap();
        std::os::unix::fs::symlink(dir.join("secret"), root.join("etc/hosts")).unwrap();
        std::os::unix::fs::symlink("../../secret", root.join("etc/up")).unwrap();
        // A link whose absolute target exists inside the root reads that file.
        std::os::unix::fs::symlink("/etc/hostname", root.join("etc/name")).unwrap();
        root
    }

    fn check_hostile(root: &Root) {
        let policy = Policy::user_file(DEFAULT_READ_MAX);
        let read = |p: &str| read_bounded_in(root, Path::new(p), &policy);
        assert_eq!(read("/etc/hostname").unwrap(), b"inside\n");
        assert_eq!(read("etc/name").unwrap(), b"inside\n");
        for hostile in ["/etc/hosts", "/etc/up"] {
            let e = read(hostile).expect_err("a link out of the root was followed");
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "{hostile}: {e}");
        }
        assert!(
            root.symlink_metadata(Path::new("/etc/hosts"))
                .unwrap()
                .is_symlink()
        );
        assert!(root.metadata(Path::new("/etc/hosts")).is_err());
        assert!(root.metadata(Path::new("/etc/name")).unwrap().is_file());
        let mut names = root.read_dir_names(Path::new("/etc")).unwrap();
        names.sort();
        assert_eq!(names, ["hostname", "hosts", "name", "up"]);
    }

    #[test]
    fn a_directory_root_keeps_links_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::directory(&hostile_root(dir.path())).unwrap();
        check_hostile(&root);
        assert_eq!(
            root.read_link(Path::new("/etc/hosts")).unwrap(),
            dir.path().join("secret")
        );
        assert_eq!(
            root.display(Path::new("/etc/hosts")),
            dir.path().join("root/etc/hosts")
        );
    }

    #[test]
    fn a_process_root_is_what_that_process_sees() {
        let dir = tempfile::tempdir().unwrap();
        let root_dir = hostile_root(dir.path());
        let Some(process) = oxquery_test_support::RootedProcess::start(&root_dir) else {
            return;
        };
        let root = Root::process(process.pid()).unwrap();
        assert_eq!(root.pid(), process.pid());
        check_hostile(&root);
        // The busybox the process runs is inside its root, where we find it too.
        assert!(root.metadata(Path::new("/bin/busybox")).unwrap().is_file());
        // A plain open through /proc/<pid>/root follows the link to the host file: what
        // the resolution inside the root prevents.
        let naive = format!("/proc/{}/root/etc/hosts", process.pid());
        assert_eq!(fs::read(naive).unwrap(), b"host secret\n");
    }
}
