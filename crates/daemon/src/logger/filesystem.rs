//! The `filesystem` logger: `osqueryd.results.log` and `osqueryd.snapshots.log`.
//!
//! Each batch is appended in one `write` and made durable with `fdatasync` before
//! [`Sink::write`] returns. A checkpoint is `<inode>:<length>` of the file the batch goes
//! to; [`Sink::resume`] finds that file again (even if it has since been rotated), keeps
//! the part of the batch that already reached it and appends only the rest.
//!
//! Rotation (`--logger_rotate`) happens right after a batch is durable, never inside
//! one, so a checkpoint always names one file. As in osquery's `LogRotate`, the newest
//! rotation `.1` stays plain and older ones are zstd frames (level 1) `.2.zst` … `.N.zst`,
//! `N` = `--logger_rotate_max_files`: at each rotation the `.N.zst` files shift up, `.1` is
//! compressed into `.2.zst`, the current file becomes `.1`, and files numbered above
//! `max_files` are deleted.
//!
//! Compression never leaves a truncated `.zst` as the only copy: `.1` is compressed into a
//! temporary file that is fsynced and renamed to `.2.zst`; only then does the current file
//! replace `.1`. A crash between those two renames leaves `.1` and an identical `.2.zst`;
//! the next rotation notices (the frame decodes to exactly `.1`) and only finishes the
//! interrupted one (the current file replaces `.1`), so no line is archived twice.
//!
//! Outside rotation (logrotate's `mv osqueryd.results.log osqueryd.results.log.1`, an
//! `rm -rf` of the directory) is followed: before each batch the path's device and inode
//! are compared with the open file's, and a file renamed or deleted since is closed and
//! the path opened anew; a directory deleted since start is created again with the mode
//! and owner it had then (`LogDir`). A batch is written whole to the file its checkpoint
//! names. If that file was deleted while the batch was written, the write fails, and the
//! outbox starts the batch again in the new file (see [`Sink::can_resume`]), so a
//! rotation neither loses nor repeats a line. [`Sink::reopen`] (SIGHUP) closes and reopens
//! the files whatever their state.
//!
//! The plugin's status log is [`GlogFiles`]: glog text files `osqueryd.INFO.<date>-<time>.
//! <pid>` (also `WARNING`, `ERROR`) in `--logger_path`, created on the first line of their
//! severity, with symlinks `osqueryd.INFO` etc. to the newest; a line goes to its
//! severity's file and every less severe one, as in glog. They follow rotation the same
//! way, checked at each line: a new file (with a new time in its name) and link replace
//! one renamed or deleted. A file, once created, is kept even when its header or a line
//! cannot be written (a full disk), so failing lines never leave a trail of empty files;
//! in each file, the first line written after failures is preceded by one line counting
//! those lost.

use super::status::{StatusOutput, StatusRecord};
use crate::item::Stream;
use crate::sink::Sink;
use oxquery_format::glog;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Settings of the filesystem logger.
#[derive(Debug, Clone)]
pub struct FilesystemOptions {
    /// `--logger_path`.
    pub dir: PathBuf,
    /// `--logger_mode`: permission bits of files this logger creates.
    pub mode: u32,
    /// `--logger_rotate`.
    pub rotate: bool,
    /// `--logger_rotate_size`: a file at least this long is rotated after a batch.
    pub rotate_size: u64,
    /// `--logger_rotate_max_files`: rotated files kept.
    pub rotate_max_files: u64,
}

impl FilesystemOptions {
    /// osquery's defaults for a given directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FilesystemOptions {
            dir: dir.into(),
            mode: 0o640,
            rotate: false,
            rotate_size: 26_214_400,
            rotate_max_files: 25,
        }
    }
}

/// The file name of a stream's log.
pub fn file_name(stream: Stream) -> &'static str {
    match stream {
        Stream::Results => "osqueryd.results.log",
        Stream::Snapshots => "osqueryd.snapshots.log",
    }
}

/// The directory logs are written to, with the mode and owner it had when the logger
/// started: if it disappears (`rm -rf`), the next file opened in it creates it again just
/// so. A directory that did not exist at start is never created.
#[derive(Debug, Clone)]
pub(crate) struct LogDir {
    path: PathBuf,
    /// Permission bits, uid and gid at start; `None` if it was not a directory then.
    attrs: Option<(u32, u32, u32)>,
}

impl LogDir {
    /// Notes `path`'s mode and owner now.
    pub fn new(path: impl Into<PathBuf>) -> LogDir {
        let path = path.into();
        let attrs = std::fs::metadata(&path)
            .ok()
            .filter(std::fs::Metadata::is_dir)
            .map(|m| (m.mode() & 0o7777, m.uid(), m.gid()));
        LogDir { path, attrs }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the log `name` for appending (see [`open_log`]), creating the directory
    /// again if it was deleted. Returns the file and whether the directory was created.
    fn open(&self, name: &Path, mode: u32) -> io::Result<(File, bool)> {
        let path = self.path.join(name);
        match (open_log(&path, mode), self.attrs) {
            (Err(e), Some(attrs)) if e.kind() == io::ErrorKind::NotFound => {
                let created = self.recreate(attrs)?;
                Ok((open_log(&path, mode)?, created))
            }
            (other, _) => other.map(|f| (f, false)),
        }
    }

    /// Creates the directory with its start-up mode and owner; `false` if it exists.
    fn recreate(&self, (mode, uid, gid): (u32, u32, u32)) -> io::Result<bool> {
        match DirBuilder::new().mode(mode).create(&self.path) {
            Ok(()) => {
                // The umask applied to `mode`. The owner matters when the directory was
                // not root's (a log shipper reading it as its own user); a daemon that is
                // not root may not be able to give it back, which is no reason to stop.
                std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode))?;
                let _ = std::os::unix::fs::chown(&self.path, Some(uid), Some(gid));
                if let Some(parent) = self.path.parent() {
                    sync_dir(parent)?;
                }
                Ok(true)
            }
            // Another logger (the status log) recreated it first.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Whether `path` names the open `file` (same device and inode). A missing path does not.
fn names(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.dev() == open.dev() && m.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The `filesystem` sink.
pub struct FilesystemSink {
    opts: FilesystemOptions,
    dir: LogDir,
    results: Option<File>,
    snapshots: Option<File>,
    /// Per stream: a checkpoint was taken (and the path followed) since the last write,
    /// so the next write goes to the file that checkpoint names.
    checkpointed: [bool; 2],
}

impl FilesystemSink {
    /// Opens the sink, creating `osqueryd.results.log` (empty, with `--logger_mode`) as
    /// osquery does at start-up. The snapshots file is created on first use, also as
    /// osquery does. A missing `--logger_path` is an error.
    pub fn open(opts: FilesystemOptions) -> io::Result<FilesystemSink> {
        let mut sink = FilesystemSink {
            dir: LogDir::new(&opts.dir),
            opts,
            results: None,
            snapshots: None,
            checkpointed: [false; 2],
        };
        sink.file(Stream::Results)?;
        Ok(sink)
    }

    /// The path of a stream's current file.
    pub fn path(&self, stream: Stream) -> PathBuf {
        self.opts.dir.join(file_name(stream))
    }

    fn slot(&mut self, stream: Stream) -> &mut Option<File> {
        match stream {
            Stream::Results => &mut self.results,
            Stream::Snapshots => &mut self.snapshots,
        }
    }

    /// The open file of a stream, opening (and creating) it when needed.
    fn file(&mut self, stream: Stream) -> io::Result<&mut File> {
        if self.slot(stream).is_none() {
            let (file, recreated) = self
                .dir
                .open(Path::new(file_name(stream)), self.opts.mode)?;
            if recreated {
                log::warn!(
                    "The log directory {} was deleted; created it again",
                    self.dir.path().display()
                );
            }
            *self.slot(stream) = Some(file);
        }
        Ok(self.slot(stream).as_mut().expect("opened above"))
    }

    /// Makes the stream's open file the one its path names: a file renamed or deleted
    /// since it was opened (an outside rotation) is closed and the path opened anew.
    fn follow(&mut self, stream: Stream) -> io::Result<()> {
        let path = self.path(stream);
        if let Some(file) = self.slot(stream).as_ref() {
            if names(file, &path)? {
                return Ok(());
            }
            *self.slot(stream) = None;
            // Opened first, so a line about a recreated directory comes before this one.
            self.file(stream)?;
            log::info!(
                "{} was renamed or deleted; logging to a new file",
                path.display()
            );
            return Ok(());
        }
        self.file(stream).map(drop)
    }

    /// Fails when the stream's open file has no name left (deleted while a batch was
    /// written to it): the batch's bytes went with it. The file is closed.
    fn check_linked(&mut self, stream: Stream) -> io::Result<()> {
        let linked = match self.slot(stream) {
            Some(file) => file.metadata()?.nlink() > 0,
            None => true,
        };
        if linked {
            return Ok(());
        }
        *self.slot(stream) = None;
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} was deleted while a batch was written to it",
                self.path(stream).display()
            ),
        ))
    }

    /// Moves `name` to `name.1`, compressing the previous `.1` into `.2.zst`, shifting
    /// older rotations up and dropping those numbered above `max_files`.
    fn rotate(&mut self, stream: Stream) -> io::Result<()> {
        let base = self.path(stream);
        let max = self.opts.rotate_max_files;
        let dir = self.opts.dir.clone();
        if max == 0 {
            remove_if_exists(&base)?;
        } else {
            let first = rotated(&base, 1);
            // An earlier rotation that stopped after compressing `.1` into `.2.zst` had
            // already shifted and dropped the older files: only its last step is left.
            let interrupted = max >= 2 && zst_holds(&rotated(&base, 2), &first)?;
            if !interrupted {
                // Drop `.max` and any rotations above it (from a larger max_files before).
                let mut i = max;
                loop {
                    let path = rotated(&base, i);
                    if i > max && !path.exists() {
                        break;
                    }
                    remove_if_exists(&path)?;
                    i += 1;
                }
                for i in (2..max).rev() {
                    rename_if_exists(&rotated(&base, i), &rotated(&base, i + 1))?;
                }
                if max >= 2 && first.exists() {
                    compress_file(&first, &rotated(&base, 2), self.opts.mode)?;
                    sync_dir(&dir)?;
                }
            }
            // Replaces the plain `.1`, now safely in `.2.zst`.
            rename_if_exists(&base, &first)?;
        }
        *self.slot(stream) = None;
        self.file(stream)?;
        sync_dir(&dir)
    }

    /// Finds the file holding inode `ino`: the file at the stream's path, or one renamed
    /// from it in the same directory (`--logger_rotate`'s `.1`, logrotate's `.1` or
    /// `-<date>`). Compressed rotations are new files and never match.
    ///
    /// An inode number freed by a deletion can be given to a new file. That file cannot
    /// hold a line after the checkpoint that is not the batch's: the outbox writes nothing
    /// newer before the batch is complete, and other loggers' files (the status log) have
    /// other names, which are not searched.
    fn find_inode(&mut self, stream: Stream, ino: u64) -> io::Result<Option<File>> {
        self.follow(stream)?;
        let current = self.file(stream)?;
        let meta = current.metadata()?;
        if meta.ino() == ino {
            return Ok(Some(current.try_clone()?));
        }
        let dev = meta.dev();
        let prefix = file_name(stream);
        for entry in std::fs::read_dir(&self.opts.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            if !name.to_string_lossy().starts_with(prefix) {
                continue;
            }
            // Not followed: a symlink is nothing this logger wrote.
            let Ok(m) = entry.metadata() else { continue };
            if m.is_file() && m.ino() == ino && m.dev() == dev {
                return OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(entry.path())
                    .map(Some);
            }
        }
        Ok(None)
    }
}

/// osquery's level (`ZSTD_initCStream(cstream, 1)`).
const ZSTD_LEVEL: i32 = 1;

/// The name of rotation `i`: `.1` stays plain, older ones are `.i.zst`.
pub fn rotated(base: &Path, i: u64) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".{i}"));
    if i > 1 {
        s.push(".zst");
    }
    PathBuf::from(s)
}

/// Compresses `src` into the zstd file `dest` (created with `mode`): written under a
/// temporary name, fsynced, then renamed, so `dest` is either absent or complete.
/// `src` is left in place; the caller syncs the directory.
fn compress_file(src: &Path, dest: &Path, mode: u32) -> io::Result<()> {
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    out.set_permissions(std::fs::Permissions::from_mode(mode))?;
    let mut input = File::open(src)?;
    let mut encoder = zstd::stream::Encoder::new(out, ZSTD_LEVEL)?;
    encoder.set_pledged_src_size(Some(input.metadata()?.len()))?;
    io::copy(&mut input, &mut encoder)?;
    let out = encoder.finish()?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, dest)
}

/// Whether the zstd file `zst` exists and decodes to exactly the contents of `plain`
/// (which must exist too). Stops at the first difference, so the usual "no" is cheap.
fn zst_holds(zst: &Path, plain: &Path) -> io::Result<bool> {
    let (zst_file, plain_file) = match (File::open(zst), File::open(plain)) {
        (Ok(z), Ok(p)) => (z, p),
        (Err(e), _) | (_, Err(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let Ok(mut decoded) = zstd::stream::read::Decoder::new(zst_file) else {
        return Ok(false);
    };
    let mut plain_file = BufReader::new(plain_file);
    let mut a = vec![0u8; 64 * 1024];
    let mut b = vec![0u8; 64 * 1024];
    loop {
        let n = match read_full(&mut decoded, &mut a) {
            Ok(n) => n,
            Err(_) => return Ok(false),
        };
        let m = read_full(&mut plain_file, &mut b[..n.max(1)])?;
        if n != m || a[..n] != b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Reads until `buf` is full or the end of `r`.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn remove_if_exists(p: &Path) -> io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_exists(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Makes a created or renamed directory entry durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Opens a log for appending. A file this call creates gets exactly `mode` (the umask is
/// not applied, so `--logger_mode` means what it says); an existing file keeps its mode.
fn open_log(path: &Path, mode: u32) -> io::Result<File> {
    let created = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .mode(mode)
        .open(path);
    match created {
        Ok(file) => {
            file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            if let Some(dir) = path.parent() {
                sync_dir(dir)?;
            }
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().read(true).append(true).open(path)
        }
        Err(e) => Err(e),
    }
}

const SEVERITY_NAMES: [&str; 3] = ["INFO", "WARNING", "ERROR"];

/// glog-style status files in one directory.
pub struct GlogFiles {
    dir: LogDir,
    program: String,
    mode: u32,
    pid: u32,
    files: [Option<GlogFile>; 3],
    /// Per severity file: lines not written to it since the last one that was, with the
    /// first failure's reason.
    unwritten: [(u64, String); 3],
}

/// One severity's open file.
struct GlogFile {
    path: PathBuf,
    file: File,
    /// glog's three header lines are in the file.
    header: bool,
    /// The `<program>.<SEVERITY>` link names this file.
    linked: bool,
    /// Opening it created the log directory again: said in the file after its header
    /// (the status log cannot log about itself through the `log` crate).
    recreated_dir: bool,
}

impl GlogFiles {
    /// Files named `<program>.<SEVERITY>.<date>-<time>.<pid>` in `dir`, created lazily
    /// with `mode`.
    pub fn new(dir: impl Into<PathBuf>, program: &str, mode: u32) -> GlogFiles {
        GlogFiles {
            dir: LogDir::new(dir),
            program: program.to_owned(),
            mode,
            pid: std::process::id(),
            files: [None, None, None],
            unwritten: Default::default(),
        }
    }

    /// The open file of severity `idx`, following an outside rotation: a file renamed or
    /// deleted since is replaced by a new one named after `now`. Its header and link are
    /// completed here if an earlier attempt could not (a full disk).
    fn current(&mut self, idx: usize, now: SystemTime) -> io::Result<&mut GlogFile> {
        if let Some(open) = &self.files[idx]
            && !names(&open.file, &open.path)?
        {
            self.files[idx] = None;
        }
        if self.files[idx].is_none() {
            let name = glog::file_name(&self.program, SEVERITY_NAMES[idx], now, self.pid);
            let (file, recreated_dir) = self.dir.open(Path::new(&name), self.mode)?;
            // Kept from here on, even if nothing can be written to it yet: a failing
            // write must not create another file at each attempt.
            self.files[idx] = Some(GlogFile {
                path: self.dir.path().join(&name),
                file,
                header: false,
                linked: false,
                recreated_dir,
            });
        }
        let open = self.files[idx].as_mut().expect("opened above");
        if !open.header {
            let host = oxquery_sys::host::hostname().unwrap_or_default();
            append_whole(&mut open.file, glog::header(now, &host).as_bytes())?;
            open.header = true;
        }
        if std::mem::take(&mut open.recreated_dir) {
            let note = own_warning(
                now,
                format!(
                    "The log directory {} was deleted; created it again",
                    self.dir.path().display()
                ),
            );
            append_whole(&mut open.file, note.as_bytes())?;
        }
        if !open.linked {
            let link = self
                .dir
                .path()
                .join(format!("{}.{}", self.program, SEVERITY_NAMES[idx]));
            // A stale link from an earlier run is replaced; a relative target keeps the
            // link valid if the directory moves, as glog's does. A link that cannot be
            // made now is tried again at the next line.
            let _ = std::fs::remove_file(&link);
            let target = open.path.file_name().unwrap_or_default();
            open.linked = std::os::unix::fs::symlink(target, &link).is_ok();
        }
        Ok(open)
    }

    /// Appends `line` to the file of severity `idx`. After lines that could not be
    /// written there, the first one that can is preceded by a warning counting them (once
    /// per outage and file).
    fn append(&mut self, idx: usize, time: SystemTime, line: &str) -> io::Result<()> {
        let (unwritten, first_failure) = &self.unwritten[idx];
        let note = (*unwritten > 0).then(|| {
            own_warning(
                time,
                format!(
                    "{unwritten} status lines could not be written to {} ({first_failure}); \
                     writing again",
                    self.dir.path().display(),
                ),
            )
        });
        let result = self.current(idx, time).and_then(|open| {
            if let Some(note) = note {
                append_whole(&mut open.file, note.as_bytes())?;
            }
            append_whole(&mut open.file, line.as_bytes())
        });
        let (unwritten, first_failure) = &mut self.unwritten[idx];
        match &result {
            Ok(()) => *unwritten = 0,
            Err(e) => {
                if *unwritten == 0 {
                    *first_failure = e.to_string();
                }
                *unwritten += 1;
            }
        }
        result
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A warning line (with its newline) the status files write about themselves.
fn own_warning(time: SystemTime, message: String) -> String {
    let mut line = StatusRecord {
        severity: 1,
        file: "filesystem.rs".to_owned(),
        line: line!(),
        message,
        time,
        // SAFETY: gettid has no preconditions.
        tid: i64::from(unsafe { libc::gettid() }),
    }
    .glog_line();
    line.push('\n');
    line
}

/// Appends `bytes` in one write, or nothing: a write cut short (a full disk) is taken
/// back, so the file holds no torn line for the next one to be glued to.
fn append_whole(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    let before = file.metadata()?.len();
    file.write_all(bytes).inspect_err(|_| {
        let _ = file.set_len(before);
    })
}

impl StatusOutput for GlogFiles {
    /// Appends a line to its severity's file and every less severe one; each file that
    /// can be written gets it even if another cannot.
    fn write(&mut self, record: &StatusRecord) -> io::Result<()> {
        let mut line = record.glog_line();
        line.push('\n');
        let mut result = Ok(());
        for idx in 0..=usize::from(record.severity.min(2)) {
            if let Err(e) = self.append(idx, record.time, &line) {
                result = Err(e);
            }
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        for f in self.files.iter_mut().flatten() {
            f.file.sync_data()?;
        }
        Ok(())
    }

    /// Opens each file again by its name; one that no longer has it is replaced at its
    /// next line.
    fn reopen(&mut self) -> io::Result<()> {
        for slot in &mut self.files {
            if let Some(open) = slot {
                match OpenOptions::new().read(true).append(true).open(&open.path) {
                    Ok(file) => open.file = file,
                    Err(_) => *slot = None,
                }
            }
        }
        Ok(())
    }
}

fn batch_bytes(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        buf.extend_from_slice(line);
        buf.push(b'\n');
    }
    buf
}

fn parse_checkpoint(cp: &str) -> io::Result<(u64, u64)> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad checkpoint {cp:?}"),
        )
    };
    let (ino, len) = cp.split_once(':').ok_or_else(bad)?;
    Ok((
        ino.parse().map_err(|_| bad())?,
        len.parse().map_err(|_| bad())?,
    ))
}

impl Sink for FilesystemSink {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    /// Follows an outside rotation first: the checkpoint names the file the path names
    /// now, which the next [`Sink::write`] uses.
    fn checkpoint(&mut self, stream: Stream) -> io::Result<Option<String>> {
        self.follow(stream)?;
        self.checkpointed[stream as usize] = true;
        let meta = self.file(stream)?.metadata()?;
        Ok(Some(format!("{}:{}", meta.ino(), meta.len())))
    }

    fn write(&mut self, stream: Stream, lines: &[Vec<u8>]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        // Without a checkpoint just before (a caller that does not resume), the path is
        // followed here.
        if !std::mem::take(&mut self.checkpointed[stream as usize]) {
            self.follow(stream)?;
        }
        let buf = batch_bytes(lines);
        let file = self.file(stream)?;
        file.write_all(&buf)?;
        file.sync_data()?;
        self.check_linked(stream)?;
        let file = self.file(stream)?;
        let len = file.metadata()?.len();
        if self.opts.rotate && len >= self.opts.rotate_size {
            self.rotate(stream)?;
        }
        Ok(())
    }

    fn resume(&mut self, stream: Stream, checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()> {
        let (ino, offset) = parse_checkpoint(checkpoint)?;
        let expected = batch_bytes(lines);
        let Some(mut file) = self.find_inode(stream, ino)? else {
            // The file the batch was meant for is gone (removed by someone else); whether
            // any of it arrived cannot be known, so the batch is written whole.
            return self.write(stream, lines);
        };
        let len = file.metadata()?.len();
        if len < offset {
            // Truncated below the checkpoint by someone else: nothing of ours is there.
            return self.write(stream, lines);
        }
        let mut present = Vec::new();
        file.seek(SeekFrom::Start(offset))?;
        file.read_to_end(&mut present)?;
        let common = present
            .iter()
            .zip(&expected)
            .take_while(|(a, b)| a == b)
            .count();
        if common < present.len() {
            // Bytes after the checkpoint that are not our batch (a torn write's garbage)
            // are cut off so the file ends with exactly the batch.
            file.set_len(offset + common as u64)?;
        }
        file.seek(SeekFrom::End(0))?;
        file.write_all(&expected[common..])?;
        file.sync_data()?;
        if file.metadata()?.nlink() == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the log file was deleted while a batch was completed in it",
            ));
        }
        if self.opts.rotate {
            let current = self.file(stream)?.metadata()?;
            if current.ino() == ino && current.len() >= self.opts.rotate_size {
                self.rotate(stream)?;
            }
        }
        Ok(())
    }

    fn can_resume(&mut self, stream: Stream, checkpoint: &str) -> io::Result<bool> {
        let (ino, _) = parse_checkpoint(checkpoint)?;
        Ok(self.find_inode(stream, ino)?.is_some())
    }

    /// Closes both files and opens the results file again (creating it, as at start);
    /// the snapshots file is opened again at its next line.
    fn reopen(&mut self) -> io::Result<()> {
        self.results = None;
        self.snapshots = None;
        self.checkpointed = [false; 2];
        self.file(Stream::Results).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_format() {
        assert_eq!(parse_checkpoint("12:34").unwrap(), (12, 34));
        assert!(parse_checkpoint("12").is_err());
        assert!(parse_checkpoint("a:1").is_err());
    }

    #[test]
    fn rotated_names() {
        assert_eq!(
            rotated(Path::new("/x/osqueryd.results.log"), 1),
            PathBuf::from("/x/osqueryd.results.log.1")
        );
        assert_eq!(
            rotated(Path::new("/x/osqueryd.results.log"), 3),
            PathBuf::from("/x/osqueryd.results.log.3.zst")
        );
    }

    #[test]
    fn created_mode_ignores_umask() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.log");
        let f = open_log(&p, 0o600).unwrap();
        assert_eq!(f.metadata().unwrap().permissions().mode() & 0o7777, 0o600);
        drop(f);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        open_log(&p, 0o600).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644, "existing files keep their mode");
    }
}
