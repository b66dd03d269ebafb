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
//! The plugin's status log is [`GlogFiles`]: glog text files `osqueryd.INFO.<date>-<time>.
//! <pid>` (also `WARNING`, `ERROR`) in `--logger_path`, created on the first line of their
//! severity, with symlinks `osqueryd.INFO` etc. to the newest; a line goes to its
//! severity's file and every less severe one, as in glog.

use super::status::{StatusOutput, StatusRecord};
use crate::item::Stream;
use crate::sink::Sink;
use oxquery_format::glog;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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

/// The `filesystem` sink.
pub struct FilesystemSink {
    opts: FilesystemOptions,
    results: Option<File>,
    snapshots: Option<File>,
}

impl FilesystemSink {
    /// Opens the sink, creating `osqueryd.results.log` (empty, with `--logger_mode`) as
    /// osquery does at start-up. The snapshots file is created on first use, also as
    /// osquery does. A missing `--logger_path` is an error.
    pub fn open(opts: FilesystemOptions) -> io::Result<FilesystemSink> {
        let mut sink = FilesystemSink {
            opts,
            results: None,
            snapshots: None,
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
            let file = open_log(&self.path(stream), self.opts.mode)?;
            *self.slot(stream) = Some(file);
        }
        Ok(self.slot(stream).as_mut().expect("opened above"))
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

    /// Finds the file holding inode `ino`: the current file or its newest rotation.
    fn find_inode(&mut self, stream: Stream, ino: u64) -> io::Result<Option<File>> {
        let base = self.path(stream);
        let current = self.file(stream)?;
        if current.metadata()?.ino() == ino {
            return Ok(Some(current.try_clone()?));
        }
        // Rotation follows a durable batch, and the next batch is written only after this
        // one was delivered, so a batch's file is at most one rotation old: `.1`, which
        // stays plain. Compressed rotations never hold an undelivered batch.
        let path = rotated(&base, 1);
        match std::fs::metadata(&path) {
            Ok(m) if m.ino() == ino => OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map(Some),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
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
    dir: PathBuf,
    program: String,
    mode: u32,
    pid: u32,
    files: [Option<File>; 3],
}

impl GlogFiles {
    /// Files named `<program>.<SEVERITY>.<date>-<time>.<pid>` in `dir`, created lazily
    /// with `mode`.
    pub fn new(dir: impl Into<PathBuf>, program: &str, mode: u32) -> GlogFiles {
        GlogFiles {
            dir: dir.into(),
            program: program.to_owned(),
            mode,
            pid: std::process::id(),
            files: [None, None, None],
        }
    }

    fn open(&mut self, idx: usize, now: SystemTime) -> io::Result<&mut File> {
        if self.files[idx].is_none() {
            let name = glog::file_name(&self.program, SEVERITY_NAMES[idx], now, self.pid);
            let path = self.dir.join(&name);
            let mut file = open_log(&path, self.mode)?;
            let host = oxquery_sys::host::hostname().unwrap_or_default();
            file.write_all(glog::header(now, &host).as_bytes())?;
            let link = self
                .dir
                .join(format!("{}.{}", self.program, SEVERITY_NAMES[idx]));
            // A stale link from an earlier run is replaced; a relative target keeps the
            // link valid if the directory moves, as glog's does.
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&name, &link)?;
            self.files[idx] = Some(file);
        }
        Ok(self.files[idx].as_mut().expect("opened above"))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl StatusOutput for GlogFiles {
    /// Appends a line to its severity's file and every less severe one.
    fn write(&mut self, record: &StatusRecord) -> io::Result<()> {
        let mut line = record.glog_line();
        line.push('\n');
        for idx in 0..=usize::from(record.severity.min(2)) {
            self.open(idx, record.time)?.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        for f in self.files.iter_mut().flatten() {
            f.sync_data()?;
        }
        Ok(())
    }
}

fn batch_bytes(lines: &[String]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        buf.extend_from_slice(line.as_bytes());
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

    fn checkpoint(&mut self, stream: Stream) -> io::Result<Option<String>> {
        let meta = self.file(stream)?.metadata()?;
        Ok(Some(format!("{}:{}", meta.ino(), meta.len())))
    }

    fn write(&mut self, stream: Stream, lines: &[String]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let buf = batch_bytes(lines);
        let file = self.file(stream)?;
        file.write_all(&buf)?;
        file.sync_data()?;
        let len = file.metadata()?.len();
        if self.opts.rotate && len >= self.opts.rotate_size {
            self.rotate(stream)?;
        }
        Ok(())
    }

    fn resume(&mut self, stream: Stream, checkpoint: &str, lines: &[String]) -> io::Result<()> {
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
        if self.opts.rotate {
            let current = self.file(stream)?.metadata()?;
            if current.ino() == ino && current.len() >= self.opts.rotate_size {
                self.rotate(stream)?;
            }
        }
        Ok(())
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
