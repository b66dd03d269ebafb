//! osquery's file carver. A carve is a record in the store (domain `carves`, key
//! `carves.<guid>`, osquery's JSON object: `carve_guid`, `time`, `status`, `sha256`,
//! `size`, `request_id`, `path`) written `SCHEDULED` by the `carves` table or the
//! `carve()` function through [`CarveBook`]. The carver's thread takes each scheduled
//! carve ([`Carver::run_pending`]): when woken by a new carve and on the scheduler's
//! 60-second tick, as osquery does. It
//!
//! 1. marks it `STARTING`, makes a private directory (`oxquery_carve_` and a random
//!    suffix under the temporary directory, mode 0700, created by `mkdir`, which fails
//!    on a name a local user made first: the daemon runs as root and `/tmp` is everyone's)
//!    and marks it `PENDING` (`CREATE PATHS FAILED` if it cannot);
//! 2. packs the regular files into `carve_<guid>.tar` (POSIX ustar, a GNU long-name
//!    entry for names over 100 bytes; each named by its path without the leading `/`,
//!    and a path with a `..` component is skipped), each opened only through the safe opener
//!    (`oxquery_sys::safe_read`): a FIFO, socket, device, directory or missing path is
//!    skipped with a warning; links are followed to what they point at, which must be a
//!    regular file. Bounds: a file over `--read_max` is skipped (osquery carves any
//!    size), and the files of one carve add up to at most [`MAX_CARVE_BYTES`] or
//!    `--read_max` if that is larger (files past it are skipped). A file is copied as it
//!    was at the open: the bytes its size then promised, zero-filled if it shrank while
//!    read (`ARCHIVE FAILED` if the archive cannot be written);
//! 3. with `--carver_compression`, compresses it to `carve_<guid>.tar.zst` (zstd level 1,
//!    as osquery; `COMPRESS FAILED`);
//! 4. stores the uploaded file's `size` and `sha256`, uploads it
//!    ([`oxquery_remote::carve::upload`]) and marks the carve `SUCCESS`, or
//!    `DATA POST FAILED`. A carve cut short by the daemon stopping goes back to
//!    `SCHEDULED`, to be carved again by the next start; so does one a crash left
//!    `STARTING` or `PENDING` ([`Carver::recover`], when the next carver starts), whose
//!    directory (kept in the record while the carve runs) is removed then;
//! 5. removes the directory.
//!
//! Records older than `--carver_expiry` seconds are deleted, whatever their state
//! except `SCHEDULED` (osquery keeps failed ones forever). Only `osqueryd` carves: the
//! shell has no [`CarveBook`], so its `carves` table is empty.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oxquery_flags::{Flags, flag};
use oxquery_remote::NodeKeys;
use oxquery_remote::carve::{CarveSettings, UploadError, upload};
use oxquery_store::{Domain, Store};
use oxquery_sys::safe_read::{Policy, SafeFile};
use oxquery_table::{CarveRecord, Carves};
use serde_json::{Value, json};

/// Store key prefix of a carve (osquery's).
pub const KEY_PREFIX: &str = "carves.";
/// The most bytes of files one carve packs, unless `--read_max` is larger.
pub const MAX_CARVE_BYTES: u64 = 1 << 30;
/// How often the scheduler wakes the carver (osquery's carve interval).
pub const CARVE_INTERVAL: u64 = 60;

/// How the carver's private directories start.
const WORK_DIR_PREFIX: &str = "oxquery_carve_";

pub const SCHEDULED: &str = "SCHEDULED";
pub const STARTING: &str = "STARTING";
pub const PENDING: &str = "PENDING";
pub const SUCCESS: &str = "SUCCESS";
pub const CREATE_PATHS_FAILED: &str = "CREATE PATHS FAILED";
pub const ARCHIVE_FAILED: &str = "ARCHIVE FAILED";
pub const COMPRESS_FAILED: &str = "COMPRESS FAILED";
pub const DATA_POST_FAILED: &str = "DATA POST FAILED";

/// What the carver flags say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarverSettings {
    /// `--disable_carver=false`.
    pub enabled: bool,
    /// `--carver_disable_function=false`.
    pub function_enabled: bool,
    pub upload: CarveSettings,
    /// `--carver_compression`.
    pub compression: bool,
    /// `--carver_expiry`, seconds.
    pub expiry: u64,
    /// `--read_max`: the most bytes carved from one file.
    pub read_max: u64,
    /// Where the private working directories go (the system's temporary directory).
    pub work_dir: PathBuf,
}

impl CarverSettings {
    pub fn from_flags(flags: &Flags) -> CarverSettings {
        CarverSettings {
            enabled: !flags.get(flag::disable_carver),
            function_enabled: !flags.get(flag::carver_disable_function),
            upload: CarveSettings {
                start_endpoint: flags.get(flag::carver_start_endpoint).to_owned(),
                continue_endpoint: flags.get(flag::carver_continue_endpoint).to_owned(),
                block_size: u64::from(flags.get(flag::carver_block_size)).max(1),
            },
            compression: flags.get(flag::carver_compression),
            expiry: u64::from(flags.get(flag::carver_expiry)),
            read_max: flags.get(flag::read_max),
            work_dir: std::env::temp_dir(),
        }
    }

    /// The most bytes of files one carve packs.
    pub fn carve_max(&self) -> u64 {
        MAX_CARVE_BYTES.max(self.read_max)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The carves in the store, as SQL reaches them; wakes the carver when one is added.
#[derive(Debug, Clone)]
pub struct CarveBook {
    store: Arc<Mutex<Store>>,
    settings: Arc<CarverSettings>,
    wake: Arc<(Mutex<bool>, Condvar)>,
}

/// A stored carve: the record plus the exact list of paths (`path` joins them with `,`
/// for display, which a name holding a comma would break).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCarve {
    pub record: CarveRecord,
    pub paths: Vec<String>,
    /// The carve's private directory while it runs, so a carver starting after a crash
    /// can remove it.
    pub work_dir: Option<PathBuf>,
}

impl StoredCarve {
    fn to_json(&self) -> Vec<u8> {
        let r = &self.record;
        json!({
            "carve_guid": r.carve_guid,
            "time": r.time,
            "status": r.status,
            "sha256": r.sha256,
            "size": r.size,
            "request_id": r.request_id,
            "path": r.path,
            "paths": self.paths,
            "work_dir": self.work_dir,
        })
        .to_string()
        .into_bytes()
    }

    /// Reads a stored record; osquery writes `size` and `time` as numbers or strings.
    fn from_json(bytes: &[u8]) -> Option<StoredCarve> {
        let v: Value = serde_json::from_slice(bytes).ok()?;
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let number = |k: &str, default: i64| match v.get(k) {
            Some(Value::Number(n)) => n.as_i64().unwrap_or(default),
            Some(Value::String(s)) => s.parse().unwrap_or(default),
            _ => default,
        };
        let guid = text("carve_guid");
        let status = text("status");
        if guid.is_empty() || status.is_empty() {
            return None;
        }
        let path = text("path");
        let paths = match v.get("paths").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            None => path.split(',').map(str::to_owned).collect(),
        };
        Some(StoredCarve {
            record: CarveRecord {
                carve_guid: guid,
                time: number("time", 0),
                status,
                sha256: text("sha256"),
                size: number("size", -1),
                path,
                request_id: text("request_id"),
            },
            paths,
            work_dir: v.get("work_dir").and_then(Value::as_str).map(PathBuf::from),
        })
    }
}

impl CarveBook {
    pub fn new(store: Arc<Mutex<Store>>, settings: CarverSettings) -> CarveBook {
        CarveBook {
            store,
            settings: Arc::new(settings),
            wake: Arc::default(),
        }
    }

    pub fn settings(&self) -> &CarverSettings {
        &self.settings
    }

    fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every stored carve, oldest first; a record that cannot be read is deleted, as
    /// osquery deletes it.
    pub fn stored(&self) -> Result<Vec<StoredCarve>, String> {
        let store = self.lock_store();
        let entries = store
            .scan(Domain::Carves, KEY_PREFIX)
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for (key, value) in entries {
            match StoredCarve::from_json(&value) {
                Some(carve) => out.push(carve),
                None => {
                    log::warn!("Deleting the unreadable carve record {key}");
                    let _ = store.delete(Domain::Carves, &key);
                }
            }
        }
        out.sort_by(|a, b| {
            (a.record.time, &a.record.carve_guid).cmp(&(b.record.time, &b.record.carve_guid))
        });
        Ok(out)
    }

    fn save(&self, carve: &StoredCarve) {
        let key = format!("{KEY_PREFIX}{}", carve.record.carve_guid);
        if let Err(e) = self
            .lock_store()
            .put(Domain::Carves, &key, &carve.to_json())
        {
            log::warn!("Cannot store carve {}: {e}", carve.record.carve_guid);
        }
    }

    /// Has the carver look at the store now (a new carve, or the scheduler's tick).
    pub fn wake(&self) {
        let (flag, cv) = &*self.wake;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_one();
    }

    /// Waits until woken or `stop`; true when woken.
    fn wait(&self, stop: &AtomicBool) -> bool {
        let (flag, cv) = &*self.wake;
        let mut woken = flag.lock().unwrap_or_else(|p| p.into_inner());
        // Short waits, so a stop is seen promptly.
        while !*woken && !stop.load(Ordering::SeqCst) {
            woken = cv
                .wait_timeout(woken, Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        std::mem::replace(&mut *woken, false)
    }
}

impl Carves for CarveBook {
    fn list(&self) -> Result<Vec<CarveRecord>, String> {
        Ok(self.stored()?.into_iter().map(|c| c.record).collect())
    }

    fn schedule(&self, paths: &[String], request_id: &str) -> Result<CarveRecord, String> {
        if !self.settings.enabled {
            return Err("carving is disabled (--disable_carver)".to_owned());
        }
        let guid = oxquery_sys::host::random_uuid().ok_or("no random carve id")?;
        let carve = StoredCarve {
            record: CarveRecord {
                carve_guid: guid,
                time: unix_now(),
                status: SCHEDULED.to_owned(),
                sha256: String::new(),
                size: -1,
                path: paths.join(","),
                request_id: request_id.to_owned(),
            },
            paths: paths.to_vec(),
            work_dir: None,
        };
        let key = format!("{KEY_PREFIX}{}", carve.record.carve_guid);
        self.lock_store()
            .put(Domain::Carves, &key, &carve.to_json())
            .map_err(|e| format!("cannot store the carve: {e}"))?;
        self.wake();
        Ok(carve.record)
    }

    fn function_enabled(&self) -> bool {
        self.settings.enabled && self.settings.function_enabled
    }
}

/// Takes scheduled carves through archive and upload.
pub struct Carver {
    book: CarveBook,
    /// The TLS plugins' node key and client; `None` without a TLS server.
    keys: Option<Arc<NodeKeys>>,
}

impl Carver {
    pub fn new(book: CarveBook, keys: Option<Arc<NodeKeys>>) -> Carver {
        Carver { book, keys }
    }

    /// Runs on a thread of its own until `stop`: the carves left scheduled by a previous
    /// run first, then each time the book is woken.
    pub fn spawn(self, stop: Arc<AtomicBool>) -> io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("carver".into())
            .spawn(move || {
                self.recover();
                loop {
                    self.run_pending(&stop);
                    if !self.book.wait(&stop) {
                        return;
                    }
                }
            })
    }

    /// Schedules again the carves a previous process left `STARTING` or `PENDING` (it
    /// died mid-carve: only one carver uses a store) and removes their directories.
    pub fn recover(&self) {
        let stored = match self.book.stored() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("Cannot read the stored carves: {e}");
                return;
            }
        };
        for mut carve in stored {
            let status = carve.record.status.as_str();
            if status != STARTING && status != PENDING {
                continue;
            }
            log::info!(
                "Carve {} was interrupted ({status}); it runs again",
                carve.record.carve_guid
            );
            if let Some(dir) = carve.work_dir.take() {
                self.remove_work_dir(&dir);
            }
            carve.record.status = SCHEDULED.to_owned();
            carve.record.sha256.clear();
            carve.record.size = -1;
            self.book.save(&carve);
        }
    }

    /// Removes a dead carve's directory: only one of ours (a directory, not a link, named
    /// as the carver names them, directly in the work directory, owned by this user),
    /// whatever the stored record says.
    fn remove_work_dir(&self, dir: &Path) {
        let ours = dir.parent() == Some(self.book.settings.work_dir.as_path())
            && dir
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(WORK_DIR_PREFIX))
            && std::fs::symlink_metadata(dir).is_ok_and(|m| {
                // SAFETY: geteuid has no preconditions and cannot fail.
                m.is_dir() && m.uid() == unsafe { libc::geteuid() }
            });
        if !ours {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(dir) {
            log::warn!("Cannot remove {}: {e}", dir.display());
        }
    }

    /// Expires old records, then carves every scheduled one, oldest first.
    pub fn run_pending(&self, stop: &AtomicBool) {
        let stored = match self.book.stored() {
            Ok(s) => s,
            Err(e) => {
                log::warn!("Cannot read the stored carves: {e}");
                return;
            }
        };
        let now = unix_now();
        let expiry = i64::try_from(self.book.settings.expiry).unwrap_or(i64::MAX);
        for carve in stored {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let r = &carve.record;
            if r.status != SCHEDULED {
                if now.saturating_sub(r.time) > expiry {
                    log::info!(
                        "Expiring the record of carve {} ({})",
                        r.carve_guid,
                        r.status
                    );
                    let key = format!("{KEY_PREFIX}{}", r.carve_guid);
                    if let Err(e) = self.book.lock_store().delete(Domain::Carves, &key) {
                        log::warn!("Cannot delete carve {}: {e}", r.carve_guid);
                    }
                }
                continue;
            }
            self.carve(carve, stop);
        }
    }

    /// One carve, from `STARTING` to its final state.
    fn carve(&self, mut carve: StoredCarve, stop: &AtomicBool) {
        let guid = carve.record.carve_guid.clone();
        let set_status = |carve: &mut StoredCarve, status: &str| {
            carve.record.status = status.to_owned();
            if status != PENDING {
                carve.work_dir = None;
            }
            self.book.save(carve);
        };
        set_status(&mut carve, STARTING);
        let Some(keys) = &self.keys else {
            log::warn!(
                "Carve {guid} failed: there is no TLS server to upload to (--tls_hostname and \
                 --carver_start_endpoint)"
            );
            set_status(&mut carve, DATA_POST_FAILED);
            return;
        };
        let settings = &self.book.settings;
        let dir = match tempfile::Builder::new()
            .prefix(WORK_DIR_PREFIX)
            .tempdir_in(&settings.work_dir)
        {
            Ok(dir) => dir,
            Err(e) => {
                log::warn!(
                    "Carve {guid} failed: cannot make its directory in {}: {e}",
                    settings.work_dir.display()
                );
                set_status(&mut carve, CREATE_PATHS_FAILED);
                return;
            }
        };
        carve.work_dir = Some(dir.path().to_owned());
        set_status(&mut carve, PENDING);
        let tar_path = dir.path().join(format!("carve_{guid}.tar"));
        let packed = match archive(&carve.paths, &tar_path, settings, stop) {
            Ok(packed) => packed,
            Err(e) => {
                log::warn!("Carve {guid} failed: cannot write its archive: {e}");
                set_status(&mut carve, ARCHIVE_FAILED);
                return;
            }
        };
        if stop.load(Ordering::SeqCst) {
            log::info!(
                "Carve {guid} interrupted by the daemon stopping; it runs again at the next start"
            );
            set_status(&mut carve, SCHEDULED);
            return;
        }
        let upload_path = if settings.compression {
            let zst_path = dir.path().join(format!("carve_{guid}.tar.zst"));
            if let Err(e) = compress(&tar_path, &zst_path) {
                log::warn!("Carve {guid} failed: cannot compress its archive: {e}");
                set_status(&mut carve, COMPRESS_FAILED);
                return;
            }
            zst_path
        } else {
            tar_path
        };
        let (size, sha256) = match size_and_sha256(&upload_path) {
            Ok(found) => found,
            Err(e) => {
                log::warn!("Carve {guid} failed: cannot read its archive: {e}");
                set_status(&mut carve, ARCHIVE_FAILED);
                return;
            }
        };
        carve.record.size = i64::try_from(size).unwrap_or(i64::MAX);
        carve.record.sha256 = sha256;
        self.book.save(&carve);
        let sent = File::open(&upload_path)
            .map_err(|e| UploadError::Failed(format!("cannot open the archive: {e}")))
            .and_then(|file| {
                upload(
                    keys,
                    &settings.upload,
                    &guid,
                    &carve.record.request_id,
                    &mut BufReader::new(file),
                    size,
                    stop,
                )
            });
        match sent {
            Ok(()) => {
                log::info!(
                    "Carve {guid} uploaded: {packed} files, {size} bytes, sha256 {}",
                    carve.record.sha256
                );
                set_status(&mut carve, SUCCESS);
            }
            Err(UploadError::Stopped) => {
                log::info!(
                    "Carve {guid} interrupted by the daemon stopping; it runs again at the next start"
                );
                carve.record.sha256.clear();
                carve.record.size = -1;
                set_status(&mut carve, SCHEDULED);
            }
            Err(UploadError::Failed(e)) => {
                log::warn!("Carve {guid} failed: {e}");
                set_status(&mut carve, DATA_POST_FAILED);
            }
        }
    }
}

/// Packs the regular files among `paths` into a tar archive at `out`; returns how many
/// it packed. Only writing the archive can fail it: a path that cannot be carved is
/// skipped with a warning.
fn archive(
    paths: &[String],
    out: &Path,
    settings: &CarverSettings,
    stop: &AtomicBool,
) -> io::Result<usize> {
    let mut builder = tar::Builder::new(BufWriter::new(File::create(out)?));
    let policy = Policy::user_file(settings.read_max);
    let mut total: u64 = 0;
    let mut packed = 0;
    for path in paths {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let name = path.trim_start_matches('/');
        if Path::new(name)
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            // A `..` in an archive name would unpack outside the server's directory.
            log::warn!("Not carving {path}: the path has a .. component");
            continue;
        }
        let file = match SafeFile::open(Path::new(path), &policy) {
            Ok(f) => f,
            Err(e) => {
                log::warn!("Not carving {path}: {e}");
                continue;
            }
        };
        let Some(size) = file.size() else {
            // A kernel file (/proc, /sys): its size says nothing about its length.
            log::warn!("Not carving {path}: a kernel-generated file has no fixed size");
            continue;
        };
        if total.saturating_add(size) > settings.carve_max() {
            log::warn!(
                "Not carving {path}: the carve would pass {} bytes",
                settings.carve_max()
            );
            continue;
        }
        let file = file.into_file();
        let meta = file.metadata()?;
        let mut header = tar::Header::new_ustar();
        header.set_size(size);
        header.set_mode(meta.mode() & 0o7777);
        header.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        header.set_uid(u64::from(meta.uid()));
        header.set_gid(u64::from(meta.gid()));
        header.set_entry_type(tar::EntryType::Regular);
        let mut content = Exactly::new(file, size, path);
        builder.append_data(&mut header, name, &mut content)?;
        total += size;
        packed += 1;
    }
    builder.into_inner()?.flush()?;
    Ok(packed)
}

/// Reads `size` bytes of a file opened for carving: what it holds up to the size it had
/// at the open, zeros after its end if it shrank since (a tar entry must be as long as
/// its header says).
struct Exactly<'a> {
    file: io::Take<File>,
    left: u64,
    path: &'a str,
    shrank: bool,
}

impl<'a> Exactly<'a> {
    fn new(file: File, size: u64, path: &'a str) -> Exactly<'a> {
        Exactly {
            file: file.take(size),
            left: size,
            path,
            shrank: false,
        }
    }
}

impl Read for Exactly<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = if self.shrank {
            0
        } else {
            self.file.read(&mut buf[..want])?
        };
        let n = if n == 0 {
            if !self.shrank {
                self.shrank = true;
                log::warn!(
                    "{} shrank while it was carved: {} bytes zero-filled",
                    self.path,
                    self.left
                );
            }
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// zstd level 1, as osquery compresses carves.
fn compress(from: &Path, to: &Path) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(to)?);
    zstd::stream::copy_encode(BufReader::new(File::open(from)?), &mut out, 1)?;
    out.flush()
}

fn size_and_sha256(path: &Path) -> io::Result<(u64, String)> {
    use oxquery_sys::digest::{Hasher, Wanted};
    let mut file = File::open(path)?;
    let mut hasher = Hasher::new(Wanted {
        sha256: true,
        ..Wanted::default()
    });
    let mut buf = vec![0; 1 << 20];
    let mut size = 0;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finish().sha256.unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_remote::testing::{CarveServer, Response, TestServer};
    use oxquery_test_support::require_tool;
    use std::os::unix::ffi::OsStrExt;
    use std::process::Command;

    /// A fleet server with carve endpoints, a store, and the carver's pieces over them.
    struct Fixture {
        carves: Arc<CarveServer>,
        server: TestServer,
        store: Arc<Mutex<Store>>,
        work: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            let carves = Arc::new(CarveServer::default());
            let answer = Arc::clone(&carves);
            let server = TestServer::start(move |r| {
                if r.path == "/enroll" {
                    return Response::Json(json!({"node_key": "nk"}));
                }
                answer
                    .answer(r)
                    .unwrap_or(Response::Json(json!({"error": "unexpected"})))
            });
            Fixture {
                carves,
                server,
                store: Arc::new(Mutex::new(Store::in_memory().unwrap())),
                work: tempfile::tempdir().unwrap(),
            }
        }

        fn settings(&self, compression: bool, read_max: u64) -> CarverSettings {
            CarverSettings {
                enabled: true,
                function_enabled: true,
                upload: CarveSettings {
                    start_endpoint: CarveServer::START.to_owned(),
                    continue_endpoint: CarveServer::CONTINUE.to_owned(),
                    block_size: 1000,
                },
                compression,
                expiry: 86400,
                read_max,
                work_dir: self.work.path().to_owned(),
            }
        }

        fn carver(&self, book: &CarveBook) -> Carver {
            Carver::new(
                book.clone(),
                Some(Arc::new(self.server.node_keys(Arc::clone(&self.store)))),
            )
        }

        /// An engine whose `carve()` keeps carves in `book`.
        fn engine(book: &CarveBook) -> oxquery_engine::Engine {
            let engine = oxquery_engine::Engine::new(
                &[],
                &oxquery_engine::TableFilter::default(),
                oxquery_table::InstanceInfo::default(),
            )
            .unwrap();
            engine.set_carves(Some(Arc::new(book.clone()) as Arc<dyn Carves>));
            engine
        }
    }

    /// Runs the carver, failing rather than hanging if a hostile file held it.
    fn run_carver(carver: Carver) {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            carver.run_pending(&AtomicBool::new(false));
            let _ = done.send(());
        });
        finished
            .recv_timeout(Duration::from_secs(120))
            .expect("the carver finished");
    }

    fn carve_sql(paths: &[&Path]) -> String {
        let values: Vec<String> = paths
            .iter()
            .map(|p| format!("('{}')", p.display()))
            .collect();
        format!(
            "with f(path) as (values {}) select carve(path) as r from f",
            values.join(",")
        )
    }

    fn first_text(engine: &oxquery_engine::Engine, sql: &str) -> String {
        let result = engine.query(sql).unwrap();
        result.rows[0][0].as_text().unwrap().into_owned()
    }

    /// Bytes that differ from block to block and file to file.
    fn content(seed: u32, len: u32) -> Vec<u8> {
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % 253) as u8)
            .collect()
    }

    /// Unpacks `archive` with the system's tar (and zstd), independently of the code
    /// that made it; returns the directory.
    fn untar(archive: &[u8], compressed: bool) -> tempfile::TempDir {
        let tar = require_tool("tar").expect("tar");
        let dir = tempfile::tempdir().unwrap();
        let file = dir
            .path()
            .join(if compressed { "a.tar.zst" } else { "a.tar" });
        std::fs::write(&file, archive).unwrap();
        let tar_file = if compressed {
            let zstd = require_tool("zstd").expect("zstd");
            let out = dir.path().join("a.tar");
            let status = Command::new(zstd)
                .arg("-q")
                .arg("-d")
                .arg(&file)
                .arg("-o")
                .arg(&out)
                .status()
                .unwrap();
            assert!(status.success(), "zstd -d");
            out
        } else {
            file
        };
        let into = dir.path().join("x");
        std::fs::create_dir(&into).unwrap();
        let status = Command::new(tar)
            .arg("-xf")
            .arg(&tar_file)
            .arg("-C")
            .arg(&into)
            .status()
            .unwrap();
        assert!(status.success(), "tar -xf");
        dir
    }

    fn sha256sum(bytes: &[u8]) -> String {
        let tool = require_tool("sha256sum").expect("sha256sum");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, bytes).unwrap();
        let out = Command::new(tool).arg(&file).output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_owned()
    }

    /// Every regular file under `dir`, as paths relative to it.
    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_owned()];
        while let Some(d) = todo.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    todo.push(path);
                } else {
                    out.push(path.strip_prefix(dir).unwrap().to_owned());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn carve_function_schedules_and_the_upload_unpacks_to_the_files_written() {
        if require_tool("tar").is_none() || require_tool("sha256sum").is_none() {
            return;
        }
        let fx = Fixture::new();
        let src = tempfile::tempdir().unwrap();
        let a = src.path().join("a.bin");
        let b = src.path().join("sub dir/b, with comma.txt");
        std::fs::create_dir(src.path().join("sub dir")).unwrap();
        std::fs::write(&a, content(1, 4321)).unwrap();
        std::fs::write(&b, content(2, 10)).unwrap();
        let book = CarveBook::new(Arc::clone(&fx.store), fx.settings(false, 1 << 20));
        let engine = Fixture::engine(&book);
        assert_eq!(first_text(&engine, &carve_sql(&[&a, &b])), "Carve Started");
        let scheduled = book.list().unwrap();
        assert_eq!(scheduled.len(), 1);
        assert_eq!(scheduled[0].status, SCHEDULED);
        assert_eq!(scheduled[0].request_id, "");

        run_carver(fx.carver(&book));

        let record = &book.list().unwrap()[0];
        assert_eq!(record.status, SUCCESS, "{record:?}");
        let sessions = fx.carves.sessions();
        assert_eq!(sessions.len(), 1);
        let session = &sessions[0];
        assert!(session.complete());
        let uploaded = session.data();
        assert_eq!(session.start["carve_id"], record.carve_guid.as_str());
        assert_eq!(session.start["carve_size"], uploaded.len());
        assert_eq!(record.size, uploaded.len() as i64);
        assert_eq!(record.sha256, sha256sum(&uploaded));
        let unpacked = untar(&uploaded, false);
        let root = unpacked.path().join("x");
        let inside = |p: &Path| root.join(p.strip_prefix("/").unwrap());
        assert_eq!(std::fs::read(inside(&a)).unwrap(), content(1, 4321));
        assert_eq!(std::fs::read(inside(&b)).unwrap(), content(2, 10));
        assert_eq!(files_under(&root).len(), 2);
        // The working directory is gone.
        assert_eq!(std::fs::read_dir(fx.work.path()).unwrap().count(), 0);
    }

    #[test]
    fn hostile_paths_are_skipped_and_the_compressed_carve_still_completes() {
        if require_tool("tar").is_none()
            || require_tool("zstd").is_none()
            || require_tool("sha256sum").is_none()
        {
            return;
        }
        let fx = Fixture::new();
        let src = tempfile::tempdir().unwrap();
        let good = src.path().join("good");
        std::fs::write(&good, content(3, 2500)).unwrap();
        let fifo = src.path().join("fifo");
        let c_fifo = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path the test owns.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o600) }, 0);
        let zero = src.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let big = src.path().join("big");
        std::fs::write(&big, content(4, 20_000)).unwrap();
        let missing = src.path().join("missing");
        std::fs::create_dir(src.path().join("sub")).unwrap();
        let dotdot = src.path().join("sub/../good");
        let book = CarveBook::new(Arc::clone(&fx.store), fx.settings(true, 10_000));
        let paths: Vec<String> = [
            &good,
            &fifo,
            &zero,
            &big,
            &missing,
            &dotdot,
            &src.path().to_owned(),
        ]
        .iter()
        .map(|p| p.to_str().unwrap().to_owned())
        .collect();
        book.schedule(&paths, "r1").unwrap();

        run_carver(fx.carver(&book));

        let record = &book.list().unwrap()[0];
        assert_eq!(record.status, SUCCESS, "{record:?}");
        let session = &fx.carves.sessions()[0];
        assert!(session.complete());
        let uploaded = session.data();
        // zstd's magic number: the upload is the compressed archive.
        assert_eq!(&uploaded[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(record.sha256, sha256sum(&uploaded));
        assert_eq!(record.size, uploaded.len() as i64);
        let unpacked = untar(&uploaded, true);
        let root = unpacked.path().join("x");
        // Only the regular file within --read_max is there.
        assert_eq!(
            files_under(&root),
            vec![good.strip_prefix("/").unwrap().to_owned()]
        );
        assert_eq!(
            std::fs::read(root.join(good.strip_prefix("/").unwrap())).unwrap(),
            content(3, 2500)
        );
        assert!(session.block_request_ids.iter().all(|id| id == "r1"));
        assert_eq!(session.start["request_id"], "r1");
    }

    #[test]
    fn a_distributed_query_carve_carries_its_request_id() {
        let fx = Fixture::new();
        let src = tempfile::tempdir().unwrap();
        let f = src.path().join("f");
        std::fs::write(&f, content(5, 3000)).unwrap();
        let sql = carve_sql(&[&f]);
        let read_sql = sql.clone();
        let carves = Arc::clone(&fx.carves);
        let server = TestServer::start(move |r| match r.path.as_str() {
            "/enroll" => Response::Json(json!({"node_key": "nk"})),
            "/read" => Response::Json(json!({"queries": {"carve-q-1": read_sql.clone()}})),
            "/write" => Response::Json(json!({})),
            _ => carves
                .answer(r)
                .unwrap_or(Response::Json(json!({"error": "unexpected"}))),
        });
        let book = CarveBook::new(Arc::clone(&fx.store), fx.settings(false, 1 << 20));
        let engine = Fixture::engine(&book);
        let keys = Arc::new(server.node_keys(Arc::clone(&fx.store)));
        let distributed = crate::distributed::Distributed::new(
            Arc::clone(&keys),
            crate::distributed::DistributedSettings {
                read_endpoint: "/read".to_owned(),
                write_endpoint: "/write".to_owned(),
                interval: 60,
                max_attempts: 1,
                denylist_duration: 60,
                loginfo: false,
            },
            Arc::clone(&fx.store),
        );
        distributed
            .poll_once(&engine, &AtomicBool::new(false))
            .unwrap();
        let written = server.requests_to("/write")[0].json();
        assert_eq!(
            written["queries"]["carve-q-1"],
            json!([{"r": "Carve Started"}])
        );
        assert_eq!(book.list().unwrap()[0].request_id, "carve-q-1");
        // Outside the distributed query, no request id is left behind.
        assert_eq!(engine.distributed_request().id(), None);

        run_carver(Carver::new(book.clone(), Some(keys)));
        let session = &fx.carves.sessions()[0];
        assert_eq!(session.start["request_id"], "carve-q-1");
        assert!(!session.block_request_ids.is_empty());
        assert!(session.block_request_ids.iter().all(|id| id == "carve-q-1"));
        assert_eq!(book.list().unwrap()[0].status, SUCCESS);
    }

    #[test]
    fn disabled_carving_refuses_and_the_function_fails() {
        let fx = Fixture::new();
        let book = CarveBook::new(
            Arc::clone(&fx.store),
            CarverSettings {
                function_enabled: false,
                ..fx.settings(false, 1 << 20)
            },
        );
        let engine = Fixture::engine(&book);
        assert_eq!(
            first_text(&engine, &carve_sql(&[Path::new("/etc/hostname")])),
            "Carve Failed:"
        );
        assert!(book.list().unwrap().is_empty());
        let off = CarveBook::new(
            Arc::clone(&fx.store),
            CarverSettings {
                enabled: false,
                ..fx.settings(false, 1 << 20)
            },
        );
        assert!(
            off.schedule(&["/etc/hostname".to_owned()], "")
                .unwrap_err()
                .contains("--disable_carver")
        );
        assert!(!off.function_enabled());
        // No carver at all (the shell): the function fails too.
        let shell = oxquery_engine::Engine::new(
            &[],
            &oxquery_engine::TableFilter::default(),
            oxquery_table::InstanceInfo::default(),
        )
        .unwrap();
        assert_eq!(
            first_text(&shell, &carve_sql(&[Path::new("/etc/hostname")])),
            "Carve Failed:"
        );
    }

    #[test]
    fn finished_records_expire_and_failures_are_recorded() {
        let fx = Fixture::new();
        let book = CarveBook::new(Arc::clone(&fx.store), fx.settings(false, 1 << 20));
        let old = |guid: &str, status: &str, age: i64| StoredCarve {
            record: CarveRecord {
                carve_guid: guid.to_owned(),
                time: unix_now() - age,
                status: status.to_owned(),
                size: -1,
                ..CarveRecord::default()
            },
            paths: Vec::new(),
            work_dir: None,
        };
        book.save(&old("old-success", SUCCESS, 90_000));
        book.save(&old("old-failure", DATA_POST_FAILED, 90_000));
        book.save(&old("new-success", SUCCESS, 10));
        // Without a TLS server the carve fails at once, and says so.
        let carver = Carver::new(book.clone(), None);
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("f"), b"x").unwrap();
        let guid = book
            .schedule(&[src.path().join("f").to_str().unwrap().to_owned()], "")
            .unwrap()
            .carve_guid;
        run_carver(carver);
        let mut left: Vec<(String, String)> = book
            .list()
            .unwrap()
            .into_iter()
            .map(|r| (r.carve_guid, r.status))
            .collect();
        left.sort();
        let mut expected = vec![
            ("new-success".to_owned(), SUCCESS.to_owned()),
            (guid, DATA_POST_FAILED.to_owned()),
        ];
        expected.sort();
        assert_eq!(left, expected);
    }

    #[test]
    fn a_carve_cut_short_by_a_stop_is_scheduled_again() {
        let carves = Arc::new(CarveServer::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (answer, stop_at_first_block) = (Arc::clone(&carves), Arc::clone(&stop));
        let server = TestServer::start(move |r| {
            if r.path == "/enroll" {
                return Response::Json(json!({"node_key": "nk"}));
            }
            // The daemon is asked to stop while its first block is being sent.
            if r.path == CarveServer::CONTINUE {
                stop_at_first_block.store(true, Ordering::SeqCst);
            }
            answer
                .answer(r)
                .unwrap_or(Response::Json(json!({"error": "unexpected"})))
        });
        let fx = Fixture::new();
        let src = tempfile::tempdir().unwrap();
        let f = src.path().join("f");
        std::fs::write(&f, content(6, 5000)).unwrap();
        let book = CarveBook::new(Arc::clone(&fx.store), fx.settings(false, 1 << 20));
        book.schedule(&[f.to_str().unwrap().to_owned()], "")
            .unwrap();
        let keys = Arc::new(server.node_keys(Arc::clone(&fx.store)));
        Carver::new(book.clone(), Some(keys)).run_pending(&stop);
        let record = &book.list().unwrap()[0];
        assert_eq!(record.status, SCHEDULED, "{record:?}");
        assert_eq!((record.size, record.sha256.as_str()), (-1, ""));
        // One block went out, then the upload stopped; the directory is gone.
        assert_eq!(carves.sessions()[0].blocks.len(), 1);
        assert!(!carves.sessions()[0].complete());
        assert_eq!(std::fs::read_dir(fx.work.path()).unwrap().count(), 0);
    }

    #[test]
    fn records_read_back_including_osquery_string_numbers() {
        let osquery = br#"{"carve_guid":"g","time":"1700000000","status":"SUCCESS","sha256":"ab","size":"42","path":"/a,/b","request_id":"r"}"#;
        let carve = StoredCarve::from_json(osquery).unwrap();
        assert_eq!(carve.record.time, 1_700_000_000);
        assert_eq!(carve.record.size, 42);
        assert_eq!(carve.paths, ["/a", "/b"]);
        let again = StoredCarve::from_json(&carve.to_json()).unwrap();
        assert_eq!(again, carve);
        assert!(StoredCarve::from_json(b"[1]").is_none());
        assert!(StoredCarve::from_json(b"{\"status\":\"SUCCESS\"}").is_none());
    }

    #[test]
    fn a_carve_a_crash_left_running_is_scheduled_again_and_its_directory_removed() {
        let fx = Fixture::new();
        let src = tempfile::tempdir().unwrap();
        let f = src.path().join("f");
        std::fs::write(&f, content(7, 3000)).unwrap();
        let book = CarveBook::new(Arc::clone(&fx.store), fx.settings(false, 1 << 20));
        let mut carve = StoredCarve::from_json(
            &json!({"carve_guid": "dead", "time": unix_now(), "status": PENDING,
                    "sha256": "", "size": -1, "request_id": "", "path": ""})
            .to_string()
            .into_bytes(),
        )
        .unwrap();
        carve.paths = vec![f.to_str().unwrap().to_owned()];
        // What the dead carver left: its directory with a partial archive, and a
        // directory of the same shape it did not make (named elsewhere in the record).
        let left = fx.work.path().join("oxquery_carve_dead");
        std::fs::create_dir(&left).unwrap();
        std::fs::write(left.join("carve_dead.tar"), b"partial").unwrap();
        carve.work_dir = Some(left.clone());
        book.save(&carve);
        let elsewhere = tempfile::tempdir().unwrap();
        let foreign = elsewhere.path().join("oxquery_carve_other");
        std::fs::create_dir(&foreign).unwrap();
        let mut other = carve.clone();
        other.record.carve_guid = "other".to_owned();
        other.record.status = STARTING.to_owned();
        other.work_dir = Some(foreign.clone());
        book.save(&other);

        let carver = fx.carver(&book);
        carver.recover();
        assert!(!left.exists());
        assert!(
            foreign.exists(),
            "a directory outside the work directory is left"
        );
        for record in book.list().unwrap() {
            assert_eq!(record.status, SCHEDULED, "{record:?}");
        }
        run_carver(carver);
        for record in book.list().unwrap() {
            assert_eq!(record.status, SUCCESS, "{record:?}");
        }
        assert_eq!(fx.carves.sessions().len(), 2);
        assert_eq!(std::fs::read_dir(fx.work.path()).unwrap().count(), 0);
    }
}
