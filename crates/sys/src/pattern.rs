//! Path patterns as osquery's path tables (`file`, `hash`, ...) understand them.
//!
//! A query like `path LIKE '/etc/%.conf'` is answered by turning the SQL pattern into a
//! shell glob and asking the file system, instead of enumerating everything and letting
//! SQLite filter:
//!
//! * every `%` becomes `*` (`_` is left alone: SQLite re-checks the LIKE on every row);
//! * a relative pattern is made absolute against the current directory (`~` patterns are
//!   left to the glob's tilde expansion);
//! * the result is expanded by glibc's `glob(3)` with `GLOB_TILDE | GLOB_MARK | GLOB_BRACE`,
//!   so directories come back with a trailing `/` and `{a,b}` alternatives work;
//! * a pattern ending in `%%` (glob `**`) globs its prefix with a single `*` and then walks
//!   every directory found recursively, at most [`MAX_DEPTH`] levels below the prefix.
//!   Symbolic links to directories are listed (marked as folders) but not entered, as
//!   osquery's recursive traversal skips them: any local user can leave a `root -> /`
//!   link in a watched tree, which would otherwise walk the whole file system.
//!   Unreadable directories are skipped and each directory (by device and inode) is
//!   entered once, so bind-mount loops terminate too. `%%` anywhere else is the same as
//!   `%`.
//!
//! Results are streamed to a visitor. At most [`MAX_MATCHES`] are delivered per pattern
//! (a warning is logged when the cap cuts a result short), so a careless `'/%%'` cannot
//! exhaust memory in the tables that collect them.

use std::collections::HashSet;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// How many levels below the prefix directory a `%%` walk descends (as osquery).
pub const MAX_DEPTH: usize = 64;

/// Most matches one pattern delivers. A safety valve, not an expected limit: a million
/// paths already cost the `file` table on the order of a gigabyte of rows.
pub const MAX_MATCHES: usize = 1_000_000;

/// Which matches to keep: osquery's `GLOB_ALL`, `GLOB_FILES` and `GLOB_FOLDERS`.
/// A match is a folder when it ends with `/` (glob marks directories that way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    All,
    Files,
    Folders,
}

impl Select {
    fn keeps(self, is_dir: bool) -> bool {
        match self {
            Select::All => true,
            Select::Files => !is_dir,
            Select::Folders => is_dir,
        }
    }
}

/// What one expansion produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expansion {
    /// Matches handed to the visitor.
    pub matches: usize,
    /// The match cap stopped the expansion early.
    pub truncated: bool,
    /// The visitor asked to stop.
    pub stopped: bool,
}

/// Expands SQL `LIKE` patterns over paths; [`Expander::default`] uses osquery's limits
/// and oxquery's match cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expander {
    pub max_depth: usize,
    pub max_matches: usize,
}

impl Default for Expander {
    fn default() -> Self {
        Expander {
            max_depth: MAX_DEPTH,
            max_matches: MAX_MATCHES,
        }
    }
}

/// Expands `like` with the default limits; see [`Expander::expand`].
pub fn expand_like(
    like: &str,
    select: Select,
    visit: impl FnMut(&Path) -> ControlFlow<()>,
) -> Expansion {
    Expander::default().expand(like, select, visit)
}

/// Like [`expand_like`], asking `stop` before each directory entry of a walk, so that
/// a walk with few matches still ends soon after its query was cancelled.
pub fn expand_like_until(
    like: &str,
    select: Select,
    stop: &dyn Fn() -> bool,
    visit: impl FnMut(&Path) -> ControlFlow<()>,
) -> Expansion {
    Expander::default().expand_until(like, select, stop, visit)
}

/// The glob(3) pattern for an SQL `LIKE` pattern: `%` → `*`, made absolute against the
/// current directory unless it starts with `/` or `~`.
pub fn like_to_glob(like: &str) -> OsString {
    let converted = like.replace('%', "*");
    if converted.starts_with('/') || converted.starts_with('~') {
        return converted.into();
    }
    match std::env::current_dir() {
        Ok(cwd) => {
            let mut out = cwd.into_os_string().into_vec();
            if out.last() != Some(&b'/') {
                out.push(b'/');
            }
            out.extend_from_slice(converted.as_bytes());
            OsString::from_vec(out)
        }
        // Without a current directory the relative pattern is the best we have.
        Err(_) => converted.into(),
    }
}

impl Expander {
    /// Expands one `LIKE` pattern and calls `visit` for every match that `select` keeps,
    /// directories with a trailing `/`. Order is glob's (sorted) for each glob, then
    /// directory order during a walk.
    pub fn expand(
        &self,
        like: &str,
        select: Select,
        visit: impl FnMut(&Path) -> ControlFlow<()>,
    ) -> Expansion {
        self.expand_until(like, select, &|| false, visit)
    }

    /// [`Expander::expand`], asking `stop` before each directory entry of a walk.
    pub fn expand_until(
        &self,
        like: &str,
        select: Select,
        stop: &dyn Fn() -> bool,
        mut visit: impl FnMut(&Path) -> ControlFlow<()>,
    ) -> Expansion {
        let pattern = like_to_glob(like).into_vec();
        let mut state = State {
            limits: *self,
            select,
            out: Expansion::default(),
            visited: HashSet::new(),
            visit: &mut visit,
            stop,
        };
        if let Some(prefix) = pattern.strip_suffix(b"**") {
            let mut single = prefix.to_vec();
            single.push(b'*');
            // A link back to the directory holding the prefix (when it is a fixed
            // path) or to another top-level match must not restart the walk, so they
            // count as entered before any walking starts.
            if let Some(end) = single.iter().rposition(|&b| b == b'/') {
                let fixed = &single[..=end];
                if !fixed.iter().any(|b| b"*?[{~\\".contains(b)) {
                    state.enter(Path::new(OsStr::from_bytes(fixed)));
                }
            }
            let mut top: Vec<(PathBuf, bool)> = Vec::new();
            let _ = glob(OsStr::from_bytes(&single), |found| {
                let is_dir = found.as_os_str().as_bytes().ends_with(b"/");
                let walk = is_dir
                    && state.limits.max_depth > 1
                    && !is_symlink(found)
                    && state.enter(found);
                top.push((found.to_path_buf(), walk));
                ControlFlow::Continue(())
            });
            for (found, walk) in top {
                let is_dir = found.as_os_str().as_bytes().ends_with(b"/");
                if state.emit(&found, is_dir).is_break()
                    || (walk && state.walk(&found, 1).is_break())
                {
                    break;
                }
            }
        } else {
            let _ = glob(OsStr::from_bytes(&pattern), |found| {
                let is_dir = found.as_os_str().as_bytes().ends_with(b"/");
                state.emit(found, is_dir)
            });
        }
        if state.out.truncated {
            log::warn!(
                "Pattern {like:?} matched more than {} paths; results are incomplete",
                self.max_matches
            );
        }
        state.out
    }
}

struct State<'v> {
    limits: Expander,
    select: Select,
    out: Expansion,
    /// (device, inode) of every directory entered, so links cannot make the walk loop.
    visited: HashSet<(u64, u64)>,
    visit: &'v mut dyn FnMut(&Path) -> ControlFlow<()>,
    stop: &'v dyn Fn() -> bool,
}

impl State<'_> {
    fn emit(&mut self, path: &Path, is_dir: bool) -> ControlFlow<()> {
        if !self.select.keeps(is_dir) {
            return ControlFlow::Continue(());
        }
        if self.out.matches >= self.limits.max_matches {
            self.out.truncated = true;
            return ControlFlow::Break(());
        }
        self.out.matches += 1;
        if (self.visit)(path).is_break() {
            self.out.stopped = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// Marks a directory as entered; false when it was entered before.
    fn enter(&mut self, dir: &Path) -> bool {
        match fs::metadata(dir) {
            Ok(m) => self.visited.insert((m.dev(), m.ino())),
            Err(_) => false,
        }
    }

    /// Emits the entries of `dir` (which ends with `/` and lies `depth` levels below the
    /// prefix) and descends into its subdirectories while the depth allows.
    fn walk(&mut self, dir: &Path, depth: usize) -> ControlFlow<()> {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                // Permission errors and directories vanishing mid-walk are expected.
                log::debug!("Cannot list {}: {e}", dir.display());
                return ControlFlow::Continue(());
            }
        };
        let base = dir.as_os_str().as_bytes();
        let mut child = Vec::with_capacity(base.len() + 64);
        for entry in entries {
            if (self.stop)() {
                self.out.stopped = true;
                return ControlFlow::Break(());
            }
            let Ok(entry) = entry else { continue };
            child.clear();
            child.extend_from_slice(base);
            child.extend_from_slice(entry.file_name().as_bytes());
            // The entry's own type (lstat's, never the link target's): only a real
            // directory is entered. A link is stat'ed only to mark a link to a folder.
            let own_type = entry.file_type().or_else(|_| {
                fs::symlink_metadata(OsStr::from_bytes(&child)).map(|m| m.file_type())
            });
            let (meta, entered) = match own_type {
                Ok(t) if t.is_dir() => (entry.metadata().ok(), true),
                Ok(t) if t.is_symlink() => (fs::metadata(OsStr::from_bytes(&child)).ok(), false),
                _ => (None, false),
            };
            let meta = meta.filter(|m| m.is_dir());
            if meta.is_some() {
                child.push(b'/');
            }
            let path = Path::new(OsStr::from_bytes(&child));
            self.emit(path, meta.is_some())?;
            if let Some(m) = meta
                && entered
                && depth + 1 < self.limits.max_depth
                && self.visited.insert((m.dev(), m.ino()))
            {
                // `path` borrows `child`, which the next iteration reuses.
                let owned = path.to_path_buf();
                self.walk(&owned, depth + 1)?;
            }
        }
        ControlFlow::Continue(())
    }
}

/// Whether `path` (a glob match, `/`-terminated when it is a folder) is itself a
/// symbolic link: the trailing `/` would make `lstat` follow it, so it is left off.
fn is_symlink(path: &Path) -> bool {
    let bytes = path.as_os_str().as_bytes();
    let own = match bytes.strip_suffix(b"/") {
        Some(b) if !b.is_empty() => b,
        _ => bytes,
    };
    fs::symlink_metadata(OsStr::from_bytes(own)).is_ok_and(|m| m.file_type().is_symlink())
}

/// Runs glob(3) with `GLOB_TILDE | GLOB_MARK | GLOB_BRACE` on a ready glob pattern and
/// hands each match to `visit` (directories end with `/`). A pattern with a NUL byte or
/// no matches yields nothing.
pub fn glob(pattern: &OsStr, mut visit: impl FnMut(&Path) -> ControlFlow<()>) -> ControlFlow<()> {
    let Ok(cpattern) = CString::new(pattern.as_bytes()) else {
        return ControlFlow::Continue(());
    };
    let mut buf = GlobBuf::new();
    // SAFETY: the pattern is NUL-terminated; `buf` is zeroed as glob(3) requires for a
    // fresh call and is released by `GlobBuf`'s Drop.
    let rc = unsafe {
        libc::glob(
            cpattern.as_ptr(),
            libc::GLOB_TILDE | libc::GLOB_MARK | libc::GLOB_BRACE,
            None,
            &mut buf.0,
        )
    };
    if rc != 0 {
        if rc == libc::GLOB_NOSPACE {
            log::warn!("Out of memory expanding {}", pattern.to_string_lossy());
        }
        return ControlFlow::Continue(());
    }
    for i in 0..buf.0.gl_pathc {
        // SAFETY: glob(3) filled gl_pathv with gl_pathc valid C strings.
        let entry = unsafe { CStr::from_ptr(*buf.0.gl_pathv.add(i)) };
        visit(Path::new(OsStr::from_bytes(entry.to_bytes())))?;
    }
    ControlFlow::Continue(())
}

struct GlobBuf(libc::glob_t);

impl GlobBuf {
    fn new() -> Self {
        // SAFETY: glob_t is plain data; all-zero is its documented initial state.
        GlobBuf(unsafe { std::mem::zeroed() })
    }
}

impl Drop for GlobBuf {
    fn drop(&mut self) {
        // SAFETY: globfree accepts a zeroed or glob-filled glob_t.
        unsafe { libc::globfree(&mut self.0) };
    }
}

/// Joins a directory and a name the way boost's `path /` does: a separator is added
/// only when the directory does not already end with one.
pub fn join(dir: &Path, name: &OsStr) -> PathBuf {
    let base = dir.as_os_str().as_bytes();
    let mut out = Vec::with_capacity(base.len() + name.len() + 1);
    out.extend_from_slice(base);
    if !base.is_empty() && !base.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(name.as_bytes());
    PathBuf::from(OsString::from_vec(out))
}

/// Calls `visit` with the path (joined as [`join`] does) and the not-link-following file
/// type of every entry directly in `dir`, `.` and `..` excluded. Stops after
/// [`MAX_MATCHES`] entries with a warning. Fails when `dir` cannot be listed.
pub fn children(
    dir: &Path,
    mut visit: impl FnMut(&Path, Option<fs::FileType>) -> ControlFlow<()>,
) -> io::Result<()> {
    let mut delivered = 0usize;
    for entry in fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        if delivered >= MAX_MATCHES {
            log::warn!(
                "Directory {} has more than {MAX_MATCHES} entries; results are incomplete",
                dir.display()
            );
            break;
        }
        delivered += 1;
        let path = join(dir, &entry.file_name());
        if visit(&path, entry.file_type().ok()).is_break() {
            break;
        }
    }
    Ok(())
}

/// Splits a path into (directory, file name) with boost filesystem v3 semantics, which
/// osquery's rows carry: `/a/b` → (`/a`, `b`); `/a/b/` → (`/a/b`, `.`); `/a` → (`/`, `a`);
/// `/` → (``, `/`); `b` → (``, `b`).
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    if path.is_empty() {
        return (b"", b"");
    }
    if path.iter().all(|&b| b == b'/') {
        return (b"", b"/");
    }
    if path.ends_with(b"/") {
        return (trim_separators(&path[..path.len() - 1]), b".");
    }
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (trim_separators(&path[..i + 1]), &path[i + 1..]),
        None => (b"", path),
    }
}

/// Drops trailing `/` but keeps a root of only separators as `/`.
fn trim_separators(dir: &[u8]) -> &[u8] {
    let end = dir.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    if end == 0 && !dir.is_empty() {
        &dir[..1]
    } else {
        &dir[..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn collect(like: &str, select: Select) -> (BTreeSet<Vec<u8>>, Expansion) {
        let mut found = BTreeSet::new();
        let out = expand_like(like, select, |p| {
            assert!(
                found.insert(p.as_os_str().as_bytes().to_vec()),
                "{} delivered twice",
                p.display()
            );
            ControlFlow::Continue(())
        });
        (found, out)
    }

    fn set(root: &Path, rel: &[&[u8]]) -> BTreeSet<Vec<u8>> {
        rel.iter()
            .map(|r| {
                let mut v = root.as_os_str().as_bytes().to_vec();
                v.push(b'/');
                v.extend_from_slice(r);
                v
            })
            .collect()
    }

    /// root/
    ///   a.txt, b.log, "with space.txt", "new\nline", <non-UTF-8 name>, .hidden
    ///   d1/ x.txt  d2/ y.txt  d2/loop -> root (symlink to an ancestor)
    ///   e/
    fn tree() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        for name in [
            &b"a.txt"[..],
            b"b.log",
            b"with space.txt",
            b"new\nline",
            b"bad\xff\xfe",
            b".hidden",
        ] {
            fs::write(r.join(OsStr::from_bytes(name)), b"x").unwrap();
        }
        fs::create_dir_all(r.join("d1/d2")).unwrap();
        fs::create_dir(r.join("e")).unwrap();
        fs::write(r.join("d1/x.txt"), b"x").unwrap();
        fs::write(r.join("d1/d2/y.txt"), b"x").unwrap();
        symlink(r, r.join("d1/d2/loop")).unwrap();
        tmp
    }

    #[test]
    fn like_becomes_glob_and_relative_becomes_absolute() {
        assert_eq!(like_to_glob("/etc/%.conf"), OsString::from("/etc/*.conf"));
        assert_eq!(like_to_glob("~/%%"), OsString::from("~/**"));
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(PathBuf::from(like_to_glob("rel/%_x")), cwd.join("rel/*_x"));
    }

    #[test]
    fn single_percent_is_one_level_with_marked_directories() {
        let tmp = tree();
        let r = tmp.path();
        let (found, out) = collect(&format!("{}/%", r.display()), Select::All);
        let expected = set(
            r,
            &[
                b"a.txt",
                b"b.log",
                b"with space.txt",
                b"new\nline",
                b"bad\xff\xfe",
                b"d1/",
                b"e/",
            ],
        );
        assert_eq!(
            found, expected,
            "glob's * skips dot files and marks folders"
        );
        assert_eq!(out.matches, expected.len());
        assert!(!out.truncated);

        let (files, _) = collect(&format!("{}/%", r.display()), Select::Files);
        let (folders, _) = collect(&format!("{}/%", r.display()), Select::Folders);
        assert_eq!(folders, set(r, &[b"d1/", b"e/"]));
        assert_eq!(files.len() + folders.len(), expected.len());
        assert!(files.iter().all(|f| !f.ends_with(b"/")));
    }

    #[test]
    fn percent_inside_a_name_and_braces() {
        let tmp = tree();
        let r = tmp.path();
        let (found, _) = collect(&format!("{}/%.txt", r.display()), Select::All);
        assert_eq!(found, set(r, &[b"a.txt", b"with space.txt"]));
        let (found, _) = collect(&format!("{}/{{a,b}}.%", r.display()), Select::All);
        assert_eq!(found, set(r, &[b"a.txt", b"b.log"]));
        // `%%` in the middle is the same as `%`.
        let (found, _) = collect(&format!("{}/%%/x.txt", r.display()), Select::All);
        assert_eq!(found, set(r, &[b"d1/x.txt"]));
    }

    #[test]
    fn trailing_slash_rules() {
        let tmp = tree();
        let r = tmp.path();
        // No wildcard: the path itself, marked when it is a folder.
        let (found, _) = collect(&format!("{}/d1", r.display()), Select::All);
        assert_eq!(found, set(r, &[b"d1/"]));
        let (found, _) = collect(&format!("{}/a.txt", r.display()), Select::All);
        assert_eq!(found, set(r, &[b"a.txt"]));
        // A pattern ending with `/` matches folders only.
        let (found, _) = collect(&format!("{}/%/", r.display()), Select::All);
        assert_eq!(found, set(r, &[b"d1/", b"e/"]));
        // A missing path matches nothing.
        let (found, out) = collect(&format!("{}/nope", r.display()), Select::All);
        assert!(found.is_empty());
        assert_eq!(out.matches, 0);
    }

    #[test]
    fn double_percent_walks_everything_and_survives_a_loop() {
        let tmp = tree();
        let r = tmp.path();
        let (found, out) = collect(&format!("{}/%%", r.display()), Select::All);
        // The walk below the first level lists dot files too; the loop link is reported
        // once (as a folder) but not entered again.
        let expected = set(
            r,
            &[
                b"a.txt",
                b"b.log",
                b"with space.txt",
                b"new\nline",
                b"bad\xff\xfe",
                b"d1/",
                b"e/",
                b"d1/x.txt",
                b"d1/d2/",
                b"d1/d2/y.txt",
                b"d1/d2/loop/",
            ],
        );
        assert_eq!(found, expected);
        assert!(!out.truncated);

        let (folders, _) = collect(&format!("{}/%%", r.display()), Select::Folders);
        assert_eq!(folders, set(r, &[b"d1/", b"e/", b"d1/d2/", b"d1/d2/loop/"]));
        // Without the separator the prefix glob also matches the root itself.
        let (found, _) = collect(&format!("{}%%", r.display()), Select::Files);
        assert!(found.contains(&set(r, &[b"d1/d2/y.txt"]).pop_first().unwrap()));
        assert!(found.contains(&set(r, &[b".hidden"]).pop_first().unwrap()));
    }

    /// A `root -> /` link left in a walked tree, at the top and deeper down: listed as a
    /// folder, never entered. What is listed is what `find` (which does not follow links
    /// either) lists under the tree.
    #[test]
    fn links_to_directories_are_listed_not_entered() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs::create_dir_all(r.join("d/e")).unwrap();
        fs::write(r.join("d/f"), b"x").unwrap();
        fs::write(r.join("d/e/g"), b"x").unwrap();
        symlink("/", r.join("root")).unwrap();
        symlink("/", r.join("d/e/root")).unwrap();
        symlink(r.join("d/f"), r.join("d/to-f")).unwrap();
        let (found, out) = collect(&format!("{}/%%", r.display()), Select::All);
        assert!(!out.truncated);
        let find = std::process::Command::new("find")
            .arg(r)
            .args(["-mindepth", "1", "-printf", "%p\\t%Y\\n"])
            .output()
            .unwrap();
        assert!(find.status.success());
        let listed: BTreeSet<Vec<u8>> = find
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| {
                let tab = l.iter().rposition(|b| *b == b'\t').unwrap();
                let mut p = l[..tab].to_vec();
                // %Y is the type of what a link points to: links to folders are marked.
                if &l[tab + 1..] == b"d" {
                    p.push(b'/');
                }
                p
            })
            .collect();
        assert_eq!(found, listed);
        assert!(found.contains(&set(r, &[b"root/"]).pop_first().unwrap()));
        assert!(found.contains(&set(r, &[b"d/e/root/"]).pop_first().unwrap()));
        assert_eq!(found.len(), 7, "{found:?}");
    }

    #[test]
    fn loop_to_the_prefix_directory_itself_is_entered_once() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs::create_dir(r.join("top")).unwrap();
        fs::write(r.join("top/f"), b"").unwrap();
        symlink(r.join("top"), r.join("top/self")).unwrap();
        let (found, _) = collect(&format!("{}/%%", r.display()), Select::All);
        assert_eq!(found, set(r, &[b"top/", b"top/f", b"top/self/"]));
    }

    #[test]
    fn depth_is_limited_to_64_levels_below_the_prefix() {
        let tmp = tempfile::tempdir().unwrap();
        let mut deep = tmp.path().to_path_buf();
        for _ in 0..70 {
            deep.push("d");
        }
        fs::create_dir_all(&deep).unwrap();
        let (found, _) = collect(&format!("{}/%%", tmp.path().display()), Select::All);
        let base = tmp.path().as_os_str().len();
        let deepest = found.iter().map(|p| (p.len() - base) / 2).max().unwrap();
        assert_eq!(found.len(), MAX_DEPTH);
        assert_eq!(deepest, MAX_DEPTH);

        let shallow = Expander {
            max_depth: 3,
            ..Expander::default()
        };
        let mut n = 0;
        shallow.expand(&format!("{}/%%", tmp.path().display()), Select::All, |_| {
            n += 1;
            ControlFlow::Continue(())
        });
        assert_eq!(n, 3);
    }

    #[test]
    fn unreadable_directories_are_skipped() {
        let tmp = tree();
        let r = tmp.path();
        let locked = r.join("e");
        fs::write(locked.join("secret"), b"").unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let like = format!("{}/%%", r.display());
        // Root reads the locked directory anyway, so as root (CI) the expansion runs on a
        // thread whose file-system uid is nobody's: setfsuid is per thread, and leaving
        // fsuid 0 drops that thread's DAC-override capabilities. The rest of the tree
        // stays readable to others (0755).
        // SAFETY: geteuid has no preconditions.
        let (found, _) = if unsafe { libc::geteuid() } == 0 {
            fs::set_permissions(r, fs::Permissions::from_mode(0o755)).unwrap();
            std::thread::scope(|s| {
                s.spawn(|| {
                    // SAFETY: changes only this thread's file-system uid.
                    unsafe { libc::setfsuid(65534) };
                    // SAFETY: as above; the call returns the uid now in force.
                    assert_eq!(unsafe { libc::setfsuid(65534) }, 65534);
                    assert!(
                        fs::read_dir(&locked).is_err(),
                        "nobody reads a 000 directory"
                    );
                    collect(&like, Select::All)
                })
                .join()
                .unwrap()
            })
        } else {
            collect(&like, Select::All)
        };
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(found.contains(&set(r, &[b"e/"]).pop_first().unwrap()));
        assert!(found.contains(&set(r, &[b"d1/d2/y.txt"]).pop_first().unwrap()));
        // The file inside the unreadable directory is not seen.
        assert!(!found.contains(&set(r, &[b"e/secret"]).pop_first().unwrap()));
    }

    #[test]
    fn cap_and_visitor_stop_the_expansion() {
        let tmp = tree();
        let capped = Expander {
            max_matches: 4,
            ..Expander::default()
        };
        let mut n = 0;
        let out = capped.expand(&format!("{}/%%", tmp.path().display()), Select::All, |_| {
            n += 1;
            ControlFlow::Continue(())
        });
        assert_eq!((n, out.matches, out.truncated), (4, 4, true));

        let mut n = 0;
        let out = expand_like(&format!("{}/%%", tmp.path().display()), Select::All, |_| {
            n += 1;
            if n == 2 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!((n, out.stopped, out.truncated), (2, true, false));
    }

    #[test]
    fn children_lists_direct_entries_joined_like_boost() {
        let tmp = tree();
        let r = tmp.path();
        let mut with_slash = BTreeSet::new();
        let dir = format!("{}/d1/", r.display());
        children(Path::new(&dir), |p, t| {
            with_slash.insert((p.as_os_str().as_bytes().to_vec(), t.unwrap().is_dir()));
            ControlFlow::Continue(())
        })
        .unwrap();
        let mut without = BTreeSet::new();
        children(&r.join("d1"), |p, t| {
            without.insert((p.as_os_str().as_bytes().to_vec(), t.unwrap().is_dir()));
            ControlFlow::Continue(())
        })
        .unwrap();
        let d2 = set(r, &[b"d1/d2"]).pop_first().unwrap();
        let x = set(r, &[b"d1/x.txt"]).pop_first().unwrap();
        assert_eq!(with_slash, BTreeSet::from([(d2, true), (x, false)]));
        assert_eq!(with_slash, without);
        assert!(children(&r.join("a.txt"), |_, _| ControlFlow::Continue(())).is_err());
    }

    #[test]
    fn split_follows_boost_v3() {
        let s = |p: &str| {
            let (d, f) = split(p.as_bytes());
            (
                String::from_utf8(d.to_vec()).unwrap(),
                String::from_utf8(f.to_vec()).unwrap(),
            )
        };
        let pair = |d: &str, f: &str| (d.to_owned(), f.to_owned());
        assert_eq!(s("/a/b"), pair("/a", "b"));
        assert_eq!(s("/a/b/"), pair("/a/b", "."));
        assert_eq!(s("/a"), pair("/", "a"));
        assert_eq!(s("/"), pair("", "/"));
        assert_eq!(s("b"), pair("", "b"));
        assert_eq!(s("a//b"), pair("a", "b"));
    }
}
