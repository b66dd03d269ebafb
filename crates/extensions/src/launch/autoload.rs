//! Which extension binaries to start: `--extensions_autoload`'s list and `--extension`,
//! with osquery's safety checks on each binary.
//!
//! The list has one path per line; blank lines and lines starting with `#` or `;` are
//! skipped, surrounding white space is trimmed, and a directory stands for the files
//! directly in it. On Linux only names ending in `.ext` are started. A binary must pass
//! [`check_binary`] (unless `--allow_unsafe`). osquery checks neither the list file's
//! own permissions nor the `--extension` path's name; it checks every binary's
//! permissions again each time it starts it, and so do we (see the launcher).

use std::collections::BTreeSet;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The only file name ending osquery autoloads on Linux.
pub const EXTENSION_SUFFIX: &str = ".ext";
/// The list is a short text file; anything bigger is not one.
const LIST_MAX_BYTES: u64 = 1 << 20;

/// The binaries to start and what was refused.
#[derive(Debug, Default)]
pub struct Autoload {
    /// Absolute paths, in osquery's order (sorted, each once).
    pub binaries: BTreeSet<PathBuf>,
    /// Each refused entry with the warning logged for it.
    pub refused: Vec<Refused>,
}

/// One entry of the list that will not be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The path as the list (or the directory listing) gave it.
    pub path: PathBuf,
    /// The warning, as logged.
    pub message: String,
}

/// Reads the autoload list `list` and adds `single` (`--extension`, unchecked by name
/// as in osquery). A missing list is not an error (most hosts have none) and is
/// logged only at verbose level, as osquery does; every refused entry is a warning
/// naming the path and the reason.
pub fn load(list: &Path, single: Option<&Path>, allow_unsafe: bool) -> Autoload {
    let mut found = Autoload::default();
    if let Some(single) = single.filter(|p| !p.as_os_str().is_empty()) {
        found.binaries.insert(absolute(single));
    }
    if list.as_os_str().is_empty() {
        return found;
    }
    let policy = oxquery_sys::safe_read::Policy::user_file(LIST_MAX_BYTES);
    let text = match oxquery_sys::safe_read::read_bounded(list, &policy) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            log::debug!(
                "Could not autoload extensions: Failed reading: {}",
                list.display()
            );
            return found;
        }
        Err(e) => {
            log::warn!(
                "Could not autoload extensions: cannot read {}: {e}",
                list.display()
            );
            return found;
        }
    };
    for line in text.split(|&b| b == b'\n') {
        let line = line.trim_ascii();
        if line.is_empty() || line[0] == b'#' || line[0] == b';' {
            continue;
        }
        let path = Path::new(std::ffi::OsStr::from_bytes(line));
        if path.is_dir() {
            for entry in directory_files(path) {
                consider(&entry, allow_unsafe, &mut found);
            }
        } else {
            consider(path, allow_unsafe, &mut found);
        }
    }
    found
}

/// The entries directly in `dir`, sorted (subdirectories are skipped with a verbose
/// line, as osquery's check does for a directory).
fn directory_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            log::warn!(
                "Could not autoload extensions from directory {}: {e}",
                dir.display()
            );
            return Vec::new();
        }
    };
    paths.sort();
    paths.retain(|p| {
        let is_dir = p.is_dir();
        if is_dir {
            log::debug!("Cannot autoload extension from directory: {}", p.display());
        }
        !is_dir
    });
    paths
}

/// osquery's order of checks for one listed file: it exists, its permissions are safe,
/// its name ends in `.ext`.
fn consider(path: &Path, allow_unsafe: bool, found: &mut Autoload) {
    let mut refuse = |message: String| {
        log::warn!("{message}");
        found.refused.push(Refused {
            path: path.to_owned(),
            message,
        });
    };
    if std::fs::metadata(path).is_err() {
        refuse(format!("extension doesn't exist at: {}", path.display()));
        return;
    }
    if let Err(reason) = check_binary(path, allow_unsafe) {
        refuse(format!(
            "Will not autoload extension with unsafe directory permissions: {} ({reason})",
            path.display()
        ));
        return;
    }
    if !path
        .as_os_str()
        .as_bytes()
        .ends_with(EXTENSION_SUFFIX.as_bytes())
    {
        refuse(format!(
            "Will not autoload extension not ending in one of '{EXTENSION_SUFFIX}': {}",
            path.display()
        ));
        return;
    }
    log::debug!("Found autoloadable extension: {}", path.display());
    found.binaries.insert(absolute(path));
}

/// `path` made absolute against the current directory (osquery's `system_complete`),
/// so a later `chdir` cannot change which file is started.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// osquery's `safePermissions` for an executable, the reason when it fails: the file
/// can be reached; then, unless `allow_unsafe`, its directory is not sticky (a
/// `/tmp`-like directory where others may swap files), it can be opened, it is a
/// regular file (osquery refuses only directories; a FIFO or a device is no binary
/// either), it is owned by root or by us, its owner may execute it, and others may not
/// write it (osquery allows group write: its concern is other users).
///
/// The file's own properties are read from the opened descriptor, so they all describe
/// the same file.
pub fn check_binary(path: &Path, allow_unsafe: bool) -> Result<(), String> {
    std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if allow_unsafe {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let dir_stat = stat(&dir).map_err(|e| format!("cannot read its directory: {e}"))?;
    if dir_stat.st_mode & libc::S_ISVTX != 0 {
        return Err(format!(
            "its directory {} has the sticky bit (a /tmp-like directory)",
            dir.display()
        ));
    }
    let file = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("cannot open it: {e}"))?;
    let st = fstat(&file).map_err(|e| format!("cannot read its status: {e}"))?;
    let kind = st.st_mode & libc::S_IFMT;
    if kind == libc::S_IFDIR {
        return Err("it is a directory".to_owned());
    }
    if kind != libc::S_IFREG {
        return Err("it is not a regular file".to_owned());
    }
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    if st.st_uid != 0 && st.st_uid != me {
        return Err(format!(
            "it is owned by uid {}, neither root nor the current user (uid {me})",
            st.st_uid
        ));
    }
    if st.st_mode & libc::S_IXUSR == 0 {
        return Err("its owner may not execute it".to_owned());
    }
    if st.st_mode & libc::S_IWOTH != 0 {
        return Err("it is writable by others".to_owned());
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

fn stat(path: &Path) -> io::Result<libc::stat> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a zeroed stat is a valid out-parameter; `c` is a valid C string.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::stat(c.as_ptr(), &mut st) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}

fn fstat(file: &std::fs::File) -> io::Result<libc::stat> {
    use std::os::fd::AsRawFd;
    // SAFETY: a zeroed stat is a valid out-parameter; the descriptor is open.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(file.as_raw_fd(), &mut st) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(st)
    }
}
