//! File changes from inotify, the reader behind osquery's `file_events` table.
//!
//! A [`FileWatcher`] is configured like osquery's `file_paths` (categories of `LIKE`
//! patterns), `exclude_paths` and `file_accesses`, and [`FileWatcher::next_batch`] hands
//! out [`FileEvent`]s: the full path, the category, osquery's action name, the inotify
//! cookie and the receive time.
//!
//! How a pattern is watched (inotify watches directories, not patterns):
//! * `/dir/%%` (a trailing `%%`): `/dir` and every directory below it (a loop-safe walk
//!   that never follows symbolic links, at most [`pattern::MAX_DEPTH`] levels). A
//!   directory created or moved in later gets its watch at once, and its entries are
//!   listed right after the watch is added and reported as `CREATED`, so a file written
//!   before the watch existed is not missed (a kernel event for the same entry that
//!   arrives later is dropped as a duplicate).
//! * `/dir/%.conf` (a wildcard in the last component): `/dir` is watched and names are
//!   filtered with fnmatch(3).
//! * `/etc/passwd` (a file): its directory is watched and only that name reported, so
//!   the file is still followed after an editor replaces it (osquery watches the file's
//!   inode, which dies with the first atomic save). A directory (`/etc` or `/etc/`) is
//!   watched itself: its entries and the directory (reported as `/etc/`).
//! * Wildcards before the last component are resolved with glob(3) when configuring.
//!
//! Actions follow osquery's table of masks, the first that matches in this order:
//! `ACCESSED`, `UPDATED` (modify), `ATTRIBUTES_MODIFIED`, `UPDATED` (close after
//! writing), `OPENED`, `MOVED_FROM`, `MOVED_TO`, `CREATED`, `DELETED`. As in osquery, a
//! write followed by `close` gives two `UPDATED` events (the kernel sends two records).
//! `OPENED`/`ACCESSED` are asked for only in `file_accesses` categories. One event is
//! reported once per category even when several patterns of that category match it.
//! `exclude_paths` are per category (patterns with `%`/`%%`); a path is excluded when
//! it or one of its parent directories matches (osquery pools every category's
//! exclusions into one set; keeping them per category is what the configuration says).
//!
//! What can be lost, and how it is counted in [`FileWatchStats`] and warned about:
//! * the kernel's queue overflowing (`IN_Q_OVERFLOW`, past `fs.inotify.max_queued_events`):
//!   counted per overflow record; afterwards the watched trees are walked again (at
//!   most once a minute) so directories created during the gap get their watches;
//! * the watch limit (`ENOSPC`, past `fs.inotify.max_user_watches`): directories not
//!   watched are counted, with one warning per configuration or batch that says which
//!   sysctl to raise;
//! * any other failure to add a watch (permissions, a configured path that is missing):
//!   counted (a directory found by walking that vanished before its watch is not).
//!
//! A watch the kernel drops (its directory deleted or unmounted: `IN_IGNORED`) leaves
//! the watch map; a watched directory moved out of its tree takes its sub-watches along.
//! Reads go through poll(2) with a timeout and a fixed buffer, and one batch does at most
//! [`MAX_READS_PER_BATCH`] reads, so a storm of events cannot grow a batch without bound
//! (what stays queued is read by the next batch, or counted by the kernel's overflow).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::ops::ControlFlow;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::inotify::{Inotify, WatchDescriptor, WatchMask};

use crate::pattern;

/// osquery's default mask: moved-to, moved-from, modify, delete, create, close-write,
/// attrib.
pub const DEFAULT_MASK: u32 = libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_MODIFY
    | libc::IN_DELETE
    | libc::IN_CREATE
    | libc::IN_CLOSE_WRITE
    | libc::IN_ATTRIB;

/// Added for the categories listed in `file_accesses`.
pub const ACCESS_MASK: u32 = libc::IN_OPEN | libc::IN_ACCESS;

/// Asked on every watch for the watch map's own sake: a watched directory that moves
/// must be followed or dropped. Never reported.
const INTERNAL_MASK: u32 = libc::IN_MOVE_SELF;

/// Size of the read buffer: room for many records (one is at most 16 + 256 bytes).
const BUFFER_SIZE: usize = 64 * 1024;

/// Most `read` calls one [`FileWatcher::next_batch`] makes.
pub const MAX_READS_PER_BATCH: usize = 64;

/// Most synthesized `CREATED` entries remembered to drop the kernel's duplicates.
const MAX_REMEMBERED_SCANS: usize = 100_000;

/// What the `file_paths`, `exclude_paths` and `file_accesses` keys of a configuration say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchConfig {
    /// Category → path patterns (`%` one path component or part of one, `%%` at the
    /// end: everything below).
    pub file_paths: BTreeMap<String, Vec<String>>,
    /// Category → patterns of paths not reported for that category.
    pub exclude_paths: BTreeMap<String, Vec<String>>,
    /// Categories that also report opens and reads.
    pub file_accesses: Vec<String>,
}

/// osquery's action names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileAction {
    Created,
    Updated,
    Deleted,
    MovedFrom,
    MovedTo,
    AttributesModified,
    Opened,
    Accessed,
}

impl FileAction {
    /// The action of an inotify mask, in osquery's order (lowest mask bit first);
    /// `None` for records that are no action (close without writing, self events).
    pub fn from_mask(mask: u32) -> Option<FileAction> {
        const ORDER: [(u32, FileAction); 9] = [
            (libc::IN_ACCESS, FileAction::Accessed),
            (libc::IN_MODIFY, FileAction::Updated),
            (libc::IN_ATTRIB, FileAction::AttributesModified),
            (libc::IN_CLOSE_WRITE, FileAction::Updated),
            (libc::IN_OPEN, FileAction::Opened),
            (libc::IN_MOVED_FROM, FileAction::MovedFrom),
            (libc::IN_MOVED_TO, FileAction::MovedTo),
            (libc::IN_CREATE, FileAction::Created),
            (libc::IN_DELETE, FileAction::Deleted),
        ];
        ORDER
            .iter()
            .find(|(bit, _)| mask & bit != 0)
            .map(|&(_, action)| action)
    }

    /// The name osquery's `action` column holds.
    pub fn as_str(self) -> &'static str {
        match self {
            FileAction::Created => "CREATED",
            FileAction::Updated => "UPDATED",
            FileAction::Deleted => "DELETED",
            FileAction::MovedFrom => "MOVED_FROM",
            FileAction::MovedTo => "MOVED_TO",
            FileAction::AttributesModified => "ATTRIBUTES_MODIFIED",
            FileAction::Opened => "OPENED",
            FileAction::Accessed => "ACCESSED",
        }
    }
}

/// One reported change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEvent {
    /// The full path; a watched directory's own events end with `/` (as osquery's).
    pub path: PathBuf,
    pub category: Arc<str>,
    pub action: FileAction,
    /// The inotify cookie pairing `MOVED_FROM` with `MOVED_TO` (osquery's
    /// `transaction_id`); 0 otherwise.
    pub cookie: u32,
    /// Receive time, unix seconds (inotify records carry no time).
    pub time: u64,
    /// The subject is a directory.
    pub is_dir: bool,
    /// Found by listing a new directory, not sent by the kernel.
    pub from_scan: bool,
}

/// Counters of everything that cost events, and the watch count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileWatchStats {
    /// `IN_Q_OVERFLOW` records: the kernel dropped events.
    pub overflows: u64,
    /// Directories not watched because `fs.inotify.max_user_watches` was reached.
    pub watch_limit_misses: u64,
    /// Directories not watched for any other reason.
    pub watch_failures: u64,
    /// Reads whose bytes did not parse (the rest of that read was dropped).
    pub malformed_reads: u64,
    /// Events handed out.
    pub events: u64,
    /// Watches held now.
    pub watches: usize,
}

/// One inotify record, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    pub wd: i32,
    pub mask: u32,
    pub cookie: u32,
    /// The entry's name in the watched directory; empty for the directory itself.
    pub name: Vec<u8>,
}

/// Parses the records one `read` of an inotify descriptor returned. Stops at the first
/// record that does not fit (a truncated or corrupt buffer) and says so.
pub fn parse_events(buf: &[u8]) -> (Vec<RawEvent>, bool) {
    const HEADER: usize = 16;
    let mut out = Vec::new();
    let mut rest = buf;
    while !rest.is_empty() {
        if rest.len() < HEADER {
            return (out, false);
        }
        let word = |i: usize| u32::from_ne_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let len = word(12) as usize;
        let Some(record) = rest.get(..HEADER + len) else {
            return (out, false);
        };
        let name = &record[HEADER..];
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        out.push(RawEvent {
            wd: word(0) as i32,
            mask: word(4),
            cookie: word(8),
            name: name.to_vec(),
        });
        rest = &rest[HEADER + len..];
    }
    (out, true)
}

/// Which events of a watched directory a rule reports.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// Everything in this directory and below (each directory below has its watch).
    Tree,
    /// The directory's entries and the directory itself.
    Dir,
    /// Entries whose name matches an fnmatch(3) pattern.
    Names(CString),
    /// The entry of exactly this name.
    Name(Vec<u8>),
}

#[derive(Debug)]
struct Rule {
    category: Arc<str>,
    scope: Scope,
    mask: u32,
}

#[derive(Debug)]
struct Watch {
    wd: WatchDescriptor,
    /// The directory, without a trailing `/` (except `/`).
    path: Vec<u8>,
    /// (device, inode) of the directory when it was watched.
    ident: (u64, u64),
    /// The path was a configured root, which may be a link to the directory.
    follow: bool,
    /// Indexes into the watcher's rules.
    rules: Vec<usize>,
    /// The mask the kernel holds for this watch, and the one the rules want.
    set_mask: u32,
    want_mask: u32,
    /// The configuration pass that last asked for this watch.
    generation: u64,
}

/// The inotify reader: a descriptor, its watches, and the rules that decide what each
/// record becomes.
pub struct FileWatcher {
    inotify: Inotify,
    config: WatchConfig,
    rules: Vec<Rule>,
    /// Category → exclusion patterns as glob patterns.
    excludes: HashMap<Arc<str>, Vec<CString>>,
    watches: HashMap<i32, Watch>,
    generation: u64,
    buffer: Box<[u8]>,
    stats: FileWatchStats,
    /// (watch, name) of entries reported from a directory listing whose kernel
    /// `CREATE` may still be queued; forgotten when the queue is empty.
    scanned: HashSet<(i32, Vec<u8>)>,
    /// Losses since the last warning, for one warning per burst.
    unwarned: Unwarned,
    /// An overflow asked for the trees to be walked again; `last_rescan` keeps that to
    /// once per [`RESCAN_INTERVAL`]: walking opens every directory, which in a
    /// `file_accesses` tree queues events of its own and could overflow again.
    rescan: bool,
    last_rescan: Option<Instant>,
}

/// Least time between two walks after overflows.
const RESCAN_INTERVAL: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Unwarned {
    overflows: u64,
    limit: u64,
    failures: u64,
    first_failure: Option<String>,
}

impl FileWatcher {
    /// Opens an inotify descriptor and watches what `config` names.
    pub fn new(config: &WatchConfig) -> io::Result<FileWatcher> {
        let mut watcher = FileWatcher {
            inotify: Inotify::init()?,
            config: WatchConfig::default(),
            rules: Vec::new(),
            excludes: HashMap::new(),
            watches: HashMap::new(),
            generation: 0,
            buffer: vec![0u8; BUFFER_SIZE].into_boxed_slice(),
            stats: FileWatchStats::default(),
            scanned: HashSet::new(),
            unwarned: Unwarned::default(),
            rescan: false,
            last_rescan: None,
        };
        watcher.reconfigure(config);
        Ok(watcher)
    }

    /// Replaces the categories (a configuration reload). A directory watched before and
    /// after keeps its watch (inotify returns the same descriptor for the same inode and
    /// only the mask changes), so its events are not interrupted; watches no rule wants
    /// any more are removed.
    pub fn reconfigure(&mut self, config: &WatchConfig) {
        self.config = config.clone();
        self.rules.clear();
        self.excludes.clear();
        for (category, patterns) in &config.exclude_paths {
            let globs = patterns
                .iter()
                .filter(|p| !p.is_empty())
                .filter_map(|p| exclusion_glob(p))
                .collect();
            self.excludes.insert(Arc::from(category.as_str()), globs);
        }
        let mut roots: Vec<(Vec<u8>, usize)> = Vec::new();
        for (category, patterns) in &config.file_paths {
            let category: Arc<str> = Arc::from(category.as_str());
            let mask = if config.file_accesses.iter().any(|c| **c == *category) {
                DEFAULT_MASK | ACCESS_MASK
            } else {
                DEFAULT_MASK
            };
            for like in patterns {
                for (dir, scope) in resolve(like) {
                    self.rules.push(Rule {
                        category: category.clone(),
                        scope,
                        mask,
                    });
                    roots.push((dir, self.rules.len() - 1));
                }
            }
        }
        self.rewatch(&roots);
    }

    /// The configuration in force.
    pub fn config(&self) -> &WatchConfig {
        &self.config
    }

    /// Loss counters and the watch count.
    pub fn stats(&self) -> FileWatchStats {
        FileWatchStats {
            watches: self.watches.len(),
            ..self.stats
        }
    }

    /// The directories watched now, sorted.
    pub fn watched_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .watches
            .values()
            .map(|w| PathBuf::from(OsStr::from_bytes(&w.path)))
            .collect();
        dirs.sort();
        dirs
    }

    /// Waits at most `timeout` for events, then reads what is queued (at most
    /// [`MAX_READS_PER_BATCH`] reads). An empty result means nothing came in time.
    pub fn next_batch(&mut self, timeout: Duration) -> io::Result<Vec<FileEvent>> {
        let mut out = Vec::new();
        if wait_readable(self.inotify.as_raw_fd(), timeout)? {
            let now = unix_now();
            for _ in 0..MAX_READS_PER_BATCH {
                // SAFETY: reads into our own buffer, at most its length.
                let n = unsafe {
                    libc::read(
                        self.inotify.as_raw_fd(),
                        self.buffer.as_mut_ptr().cast(),
                        self.buffer.len(),
                    )
                };
                if n < 0 {
                    let err = io::Error::last_os_error();
                    match err.kind() {
                        io::ErrorKind::WouldBlock => {
                            // Queue empty: any kernel duplicate of a listed entry has
                            // been read by now.
                            self.scanned.clear();
                            break;
                        }
                        io::ErrorKind::Interrupted => continue,
                        _ => return Err(err),
                    }
                }
                let (events, complete) = parse_events(&self.buffer[..n as usize]);
                if !complete {
                    self.stats.malformed_reads += 1;
                    log::warn!("inotify returned a record that does not parse; dropped the rest");
                }
                for event in events {
                    self.handle(&event, now, &mut out);
                }
            }
        }
        self.finish_batch();
        Ok(out)
    }

    /// Handles parsed records as if they had been read (the part of [`next_batch`]
    /// after the read), then does what a batch does at its end (warnings, a walk after
    /// an overflow).
    ///
    /// [`next_batch`]: FileWatcher::next_batch
    pub fn handle_events<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a RawEvent>,
        now: u64,
    ) -> Vec<FileEvent> {
        let mut out = Vec::new();
        for event in events {
            self.handle(event, now, &mut out);
        }
        self.finish_batch();
        out
    }

    fn handle(&mut self, event: &RawEvent, now: u64, out: &mut Vec<FileEvent>) {
        if event.mask & libc::IN_Q_OVERFLOW != 0 {
            self.stats.overflows += 1;
            self.unwarned.overflows += 1;
            self.rescan = true;
            return;
        }
        let Some(watch) = self.watches.get(&event.wd) else {
            // A watch removed by a reconfiguration whose records were still queued.
            return;
        };
        if event.mask & libc::IN_IGNORED != 0 {
            // The kernel dropped the watch (directory deleted, file system unmounted).
            self.watches.remove(&event.wd);
            return;
        }
        if event.mask & libc::IN_MOVE_SELF != 0 {
            self.moved_self(event.wd);
            return;
        }
        if !self.scanned.is_empty() {
            // The kernel's CREATE of an entry already reported from a listing is a
            // duplicate; once the entry is deleted or moved away, a CREATE of the same
            // name is a new file.
            let key = (event.wd, event.name.clone());
            if event.mask & libc::IN_CREATE != 0 && self.scanned.remove(&key) {
                return;
            }
            if event.mask & (libc::IN_DELETE | libc::IN_MOVED_FROM) != 0 {
                self.scanned.remove(&key);
            }
        }
        let watch_path = watch.path.clone();
        self.deliver(
            event.wd,
            &event.name,
            event.mask,
            event.cookie,
            now,
            false,
            out,
        );
        let new_dir = event.mask & libc::IN_ISDIR != 0
            && event.mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0
            && !event.name.is_empty();
        if new_dir {
            let trees = self.tree_rules(event.wd);
            if !trees.is_empty() {
                let dir = join(&watch_path, &event.name);
                self.watch_tree(&dir, &trees, Some((now, out)));
            }
        }
    }

    /// The rules of a watch that cover everything below it.
    fn tree_rules(&self, wd: i32) -> Vec<usize> {
        self.watches.get(&wd).map_or_else(Vec::new, |w| {
            w.rules
                .iter()
                .copied()
                .filter(|&r| self.rules[r].scope == Scope::Tree)
                .collect()
        })
    }

    /// Turns one record of watch `wd` into at most one event per category.
    #[allow(clippy::too_many_arguments)]
    fn deliver(
        &mut self,
        wd: i32,
        name: &[u8],
        mask: u32,
        cookie: u32,
        now: u64,
        from_scan: bool,
        out: &mut Vec<FileEvent>,
    ) {
        let Some(action) = FileAction::from_mask(mask) else {
            return;
        };
        let Some(watch) = self.watches.get(&wd) else {
            return;
        };
        let path = if name.is_empty() {
            let mut p = watch.path.clone();
            if p.last() != Some(&b'/') {
                p.push(b'/');
            }
            p
        } else {
            join(&watch.path, name)
        };
        let before = out.len();
        let mut reported: Vec<&Arc<str>> = Vec::new();
        for &r in &watch.rules {
            let rule = &self.rules[r];
            if rule.mask & mask == 0
                || !rule.scope.admits(name)
                || reported.contains(&&rule.category)
                || self.excluded(&rule.category, &path)
            {
                continue;
            }
            reported.push(&rule.category);
            out.push(FileEvent {
                path: PathBuf::from(OsStr::from_bytes(&path)),
                category: rule.category.clone(),
                action,
                cookie,
                time: now,
                is_dir: mask & libc::IN_ISDIR != 0,
                from_scan,
            });
        }
        self.stats.events += (out.len() - before) as u64;
    }

    /// Whether `path` or one of its parent directories matches an exclusion of
    /// `category`.
    fn excluded(&self, category: &Arc<str>, path: &[u8]) -> bool {
        let Some(globs) = self.excludes.get(category) else {
            return false;
        };
        if globs.is_empty() {
            return false;
        }
        let path = trim_dir(path);
        let Ok(full) = CString::new(path) else {
            return false;
        };
        // The path itself and each ancestor (cut before each `/`).
        let mut candidates = vec![full];
        for (i, &b) in path.iter().enumerate() {
            if b == b'/' && i > 0 {
                candidates.push(CString::new(&path[..i]).unwrap_or_default());
            }
        }
        globs
            .iter()
            .any(|g| candidates.iter().any(|c| fnmatch(g, c, libc::FNM_PATHNAME)))
    }

    /// The watched directory `wd` moved: keep the watch when its path (updated by a
    /// `MOVED_TO` inside a tree) names it still, else drop it and the watches below its
    /// old path that no longer name what they watch.
    fn moved_self(&mut self, wd: i32) {
        let Some(watch) = self.watches.get(&wd) else {
            return;
        };
        if identity(&watch.path, watch.follow) == Some(watch.ident) {
            return;
        }
        let mut prefix = watch.path.clone();
        prefix.push(b'/');
        let stale: Vec<i32> = self
            .watches
            .iter()
            .filter(|(w, v)| {
                **w == wd
                    || (v.path.starts_with(&prefix) && identity(&v.path, v.follow) != Some(v.ident))
            })
            .map(|(w, _)| *w)
            .collect();
        for w in stale {
            self.unwatch(w);
        }
    }

    fn unwatch(&mut self, wd: i32) {
        if let Some(watch) = self.watches.remove(&wd) {
            // Fails when the kernel dropped the watch already; nothing to do then.
            let _ = self.inotify.watches().remove(watch.wd);
        }
    }

    /// Watches every configured root anew (a new generation), then removes the watches
    /// no rule asked for and narrows masks that shrank.
    fn rewatch(&mut self, roots: &[(Vec<u8>, usize)]) {
        self.generation += 1;
        for (dir, rule) in roots {
            if self.rules[*rule].scope == Scope::Tree {
                self.watch_tree(dir, &[*rule], None);
            } else {
                self.watch_dir(dir, &[*rule], true);
            }
        }
        let generation = self.generation;
        let stale: Vec<i32> = self
            .watches
            .iter()
            .filter(|(_, w)| w.generation != generation)
            .map(|(wd, _)| *wd)
            .collect();
        for wd in stale {
            self.unwatch(wd);
        }
        let narrow: Vec<(i32, Vec<u8>, u32)> = self
            .watches
            .iter()
            .filter(|(_, w)| w.set_mask != w.want_mask)
            .map(|(wd, w)| (*wd, w.path.clone(), w.want_mask))
            .collect();
        for (wd, path, mask) in narrow {
            let flags = WatchMask::from_bits_retain(mask | libc::IN_ONLYDIR);
            if self
                .inotify
                .watches()
                .add(OsStr::from_bytes(&path), flags)
                .is_ok()
                && let Some(w) = self.watches.get_mut(&wd)
            {
                w.set_mask = mask;
            }
        }
        self.finish_batch();
    }

    /// Adds (or widens) the watch on one directory for `rules`. `follow`: a configured
    /// root may be a symbolic link to a directory; directories found by walking are
    /// never followed.
    fn watch_dir(&mut self, dir: &[u8], rules: &[usize], follow: bool) -> Option<i32> {
        let mask = rules
            .iter()
            .fold(INTERNAL_MASK, |m, &r| m | self.rules[r].mask);
        let mut flags = mask | libc::IN_ONLYDIR | libc::IN_MASK_ADD;
        if !follow {
            flags |= libc::IN_DONT_FOLLOW;
        }
        let path = Path::new(OsStr::from_bytes(dir));
        let wd = match self
            .inotify
            .watches()
            .add(path, WatchMask::from_bits_retain(flags))
        {
            Ok(wd) => wd,
            Err(e) => {
                let gone = matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR));
                if e.raw_os_error() == Some(libc::ENOSPC) {
                    self.stats.watch_limit_misses += 1;
                    self.unwarned.limit += 1;
                } else if gone && !follow {
                    // A directory found by walking that was removed (or replaced by a
                    // link) before its watch: nothing there to miss.
                    log::debug!("Not watching {}: {e}", path.display());
                } else {
                    self.stats.watch_failures += 1;
                    self.unwarned.failures += 1;
                    if self.unwarned.first_failure.is_none() {
                        self.unwarned.first_failure = Some(format!("{}: {e}", path.display()));
                    }
                }
                return None;
            }
        };
        let id = wd.get_watch_descriptor_id();
        let generation = self.generation;
        let ident = identity(dir, follow).unwrap_or_default();
        let watch = self.watches.entry(id).or_insert_with(|| Watch {
            wd,
            path: dir.to_vec(),
            ident,
            follow,
            rules: Vec::new(),
            set_mask: 0,
            want_mask: 0,
            generation,
        });
        if watch.generation != generation {
            // First request in this configuration: forget the old rules and mask wish.
            watch.generation = generation;
            watch.rules.clear();
            watch.want_mask = 0;
        }
        // A moved directory is found again under its new name.
        watch.path = dir.to_vec();
        watch.ident = ident;
        watch.follow = follow;
        for &r in rules {
            if !watch.rules.contains(&r) {
                watch.rules.push(r);
            }
        }
        watch.set_mask |= mask;
        watch.want_mask |= mask;
        Some(id)
    }

    /// Watches `root` and every directory below it for the tree rules `rules`, without
    /// following links, entering each directory once. With `report`, lists each new
    /// directory after its watch is added and reports its entries as `CREATED`.
    fn watch_tree(
        &mut self,
        root: &[u8],
        rules: &[usize],
        mut report: Option<(u64, &mut Vec<FileEvent>)>,
    ) {
        let mut visited: HashSet<(u64, u64)> = HashSet::new();
        let mut stack: Vec<(Vec<u8>, usize)> = vec![(root.to_vec(), 0)];
        while let Some((dir, depth)) = stack.pop() {
            let wanted: Vec<usize> = rules
                .iter()
                .copied()
                .filter(|&r| !self.excluded(&self.rules[r].category, &dir))
                .collect();
            if wanted.is_empty() {
                continue;
            }
            // The configured root may be a link; nothing found below it is followed.
            let follow = depth == 0 && report.is_none();
            let Some(ident) = identity(&dir, follow) else {
                continue;
            };
            if !visited.insert(ident) {
                continue;
            }
            // Below a directory that could not be watched (the limit reached) the walk
            // goes on, so every directory left unwatched is counted.
            let wd = self.watch_dir(&dir, &wanted, follow);
            let mut entries: Vec<(Vec<u8>, bool)> = Vec::new();
            let listed = pattern::children(Path::new(OsStr::from_bytes(&dir)), |p, t| {
                let is_dir = t.is_some_and(|t| t.is_dir());
                entries.push((p.as_os_str().as_bytes().to_vec(), is_dir));
                ControlFlow::Continue(())
            });
            if let Err(e) = listed {
                log::debug!("Cannot list {}: {e}", String::from_utf8_lossy(&dir));
            }
            for (path, is_dir) in entries {
                if let (Some((now, out)), Some(wd)) = (report.as_mut(), wd) {
                    let name = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
                    let mask = libc::IN_CREATE | if is_dir { libc::IN_ISDIR } else { 0 };
                    self.deliver(wd, name, mask, 0, *now, true, out);
                    if self.scanned.len() < MAX_REMEMBERED_SCANS {
                        self.scanned.insert((wd, name.to_vec()));
                    }
                }
                if is_dir && depth + 1 < pattern::MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
            }
        }
    }

    /// End of a batch or configuration: one warning per kind of loss, and after an
    /// overflow a walk of every tree for directories created in the gap.
    fn finish_batch(&mut self) {
        let unwarned = std::mem::take(&mut self.unwarned);
        if unwarned.overflows > 0 {
            log::warn!(
                "inotify queue overflowed {} time(s): file events were lost ({} overflows \
                 so far; the queue holds fs.inotify.max_queued_events = {})",
                unwarned.overflows,
                self.stats.overflows,
                read_sysctl("max_queued_events"),
            );
        }
        if unwarned.limit > 0 {
            log::warn!(
                "inotify watch limit reached: {} director{} not watched, so their file \
                 events are lost; raise fs.inotify.max_user_watches (now {})",
                unwarned.limit,
                if unwarned.limit == 1 {
                    "y is"
                } else {
                    "ies are"
                },
                read_sysctl("max_user_watches"),
            );
        }
        if unwarned.failures > 0 {
            log::warn!(
                "Could not watch {} director{} for file events (first: {})",
                unwarned.failures,
                if unwarned.failures == 1 { "y" } else { "ies" },
                unwarned.first_failure.as_deref().unwrap_or("?"),
            );
        }
        let due = self
            .last_rescan
            .is_none_or(|t| t.elapsed() >= RESCAN_INTERVAL);
        if self.rescan && due {
            self.rescan = false;
            self.last_rescan = Some(Instant::now());
            let config = self.config.clone();
            self.reconfigure(&config);
        }
    }
}

impl Scope {
    fn admits(&self, name: &[u8]) -> bool {
        match self {
            Scope::Tree | Scope::Dir => true,
            Scope::Name(want) => name == want.as_slice(),
            Scope::Names(pattern) => {
                !name.is_empty() && CString::new(name).is_ok_and(|n| fnmatch(pattern, &n, 0))
            }
        }
    }
}

/// The directories a `file_paths` pattern watches, each with what it reports.
fn resolve(like: &str) -> Vec<(Vec<u8>, Scope)> {
    let glob = pattern::like_to_glob(like).as_bytes().to_vec();
    let has_wildcard = |b: &[u8]| b.iter().any(|c| b"*?[".contains(c));
    let mut out = Vec::new();
    if let Some(at) = glob.windows(2).position(|w| w == b"**") {
        // Everything below the part before `**`; `/dir%%` also takes `/dir*/`, as the
        // `file` table's LIKE does.
        let mut base = glob[..at].to_vec();
        if !base.ends_with(b"/") {
            base.push(b'*');
        }
        for dir in glob_dirs(&base) {
            out.push((dir, Scope::Tree));
        }
        return out;
    }
    let trimmed = glob.strip_suffix(b"/").filter(|t| !t.is_empty());
    if let Some(dir) = trimmed {
        // `/etc/` names the directory.
        if has_wildcard(dir) {
            out.extend(glob_dirs(&glob).into_iter().map(|d| (d, Scope::Dir)));
        } else {
            out.push((trim_dir(dir).to_vec(), Scope::Dir));
        }
        return out;
    }
    let (parent, last) = match glob.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/".to_vec(), glob[1..].to_vec()),
        Some(i) => (glob[..i].to_vec(), glob[i + 1..].to_vec()),
        None => return out,
    };
    let parents = if has_wildcard(&parent) {
        let mut with_slash = parent.clone();
        with_slash.push(b'/');
        glob_dirs(&with_slash)
    } else {
        vec![parent]
    };
    for parent in parents {
        if has_wildcard(&last) {
            if let Ok(p) = CString::new(last.clone()) {
                out.push((parent, Scope::Names(p)));
            }
        } else {
            let full = join(&parent, &last);
            if fs::metadata(OsStr::from_bytes(&full)).is_ok_and(|m| m.is_dir()) {
                out.push((full, Scope::Dir));
            } else {
                out.push((parent, Scope::Name(last.clone())));
            }
        }
    }
    out
}

/// The directories a glob pattern matches, without their trailing `/`.
fn glob_dirs(pattern: &[u8]) -> Vec<Vec<u8>> {
    let mut dirs = Vec::new();
    let _ = pattern::glob(OsStr::from_bytes(pattern), |found| {
        let bytes = found.as_os_str().as_bytes();
        if bytes.ends_with(b"/") {
            dirs.push(trim_dir(bytes).to_vec());
        }
        ControlFlow::Continue(())
    });
    dirs
}

/// An `exclude_paths` pattern as an fnmatch pattern over whole paths (`%` → `*`, a
/// trailing `/` dropped). Matched against a path and each of its parents, so an
/// excluded directory excludes what is below it and `/dir/%%` everything below `/dir`.
fn exclusion_glob(like: &str) -> Option<CString> {
    let glob = pattern::like_to_glob(like);
    CString::new(trim_dir(glob.as_bytes())).ok()
}

/// `dir/name`, without a doubled `/` under the root.
fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(dir.len() + 1 + name.len());
    out.extend_from_slice(dir);
    if !dir.ends_with(b"/") {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// A path without trailing `/`, except the root.
fn trim_dir(path: &[u8]) -> &[u8] {
    let end = path.iter().rposition(|&b| b != b'/').map_or(0, |i| i + 1);
    if end == 0 && !path.is_empty() {
        &path[..1]
    } else {
        &path[..end]
    }
}

fn fnmatch(pattern: &CString, name: &CString, flags: libc::c_int) -> bool {
    // SAFETY: both are NUL-terminated strings that outlive the call.
    unsafe { libc::fnmatch(pattern.as_ptr(), name.as_ptr(), flags) == 0 }
}

/// (device, inode) of a directory; `follow` decides whether a link is followed.
fn identity(path: &[u8], follow: bool) -> Option<(u64, u64)> {
    let path = OsStr::from_bytes(path);
    let meta = if follow {
        fs::metadata(path)
    } else {
        fs::symlink_metadata(path)
    };
    meta.ok().filter(|m| m.is_dir()).map(|m| (m.dev(), m.ino()))
}

fn wait_readable(fd: libc::c_int, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    // SAFETY: one valid pollfd for the duration of the call.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(err);
    }
    Ok(rc > 0 && pfd.revents & libc::POLLIN != 0)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn read_sysctl(name: &str) -> String {
    fs::read_to_string(format!("/proc/sys/fs/inotify/{name}"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::{Read, Write};
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn config(paths: Vec<(&str, Vec<String>)>) -> WatchConfig {
        WatchConfig {
            file_paths: paths.into_iter().map(|(c, p)| (c.to_string(), p)).collect(),
            ..WatchConfig::default()
        }
    }

    fn like(root: &Path, rest: &str) -> String {
        format!("{}/{rest}", root.display())
    }

    /// Reads batches until `done` holds for everything read so far (10 s at most).
    fn read_until(w: &mut FileWatcher, done: impl Fn(&[FileEvent]) -> bool) -> Vec<FileEvent> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut all = Vec::new();
        while !done(&all) && Instant::now() < deadline {
            all.extend(w.next_batch(Duration::from_millis(50)).unwrap());
        }
        all
    }

    fn seen(events: &[FileEvent], path: &Path, action: FileAction) -> bool {
        events.iter().any(|e| e.path == path && e.action == action)
    }

    fn actions_of(events: &[FileEvent], path: &Path) -> Vec<FileAction> {
        events
            .iter()
            .filter(|e| e.path == path)
            .map(|e| e.action)
            .collect()
    }

    #[test]
    fn action_names_follow_osquerys_mask_order() {
        use FileAction::*;
        let cases = [
            (libc::IN_CREATE, Some(Created)),
            (libc::IN_CREATE | libc::IN_ISDIR, Some(Created)),
            (libc::IN_MODIFY, Some(Updated)),
            (libc::IN_CLOSE_WRITE, Some(Updated)),
            (libc::IN_DELETE, Some(Deleted)),
            (libc::IN_MOVED_FROM, Some(MovedFrom)),
            (libc::IN_MOVED_TO, Some(MovedTo)),
            (libc::IN_ATTRIB, Some(AttributesModified)),
            (libc::IN_OPEN, Some(Opened)),
            (libc::IN_ACCESS, Some(Accessed)),
            // Several bits: the lowest of osquery's table wins.
            (
                libc::IN_ATTRIB | libc::IN_CLOSE_WRITE,
                Some(AttributesModified),
            ),
            (libc::IN_CLOSE_NOWRITE, None),
            (libc::IN_DELETE_SELF, None),
            (libc::IN_MOVE_SELF, None),
        ];
        for (mask, want) in cases {
            assert_eq!(FileAction::from_mask(mask), want, "mask {mask:#x}");
        }
        assert_eq!(Created.as_str(), "CREATED");
        assert_eq!(AttributesModified.as_str(), "ATTRIBUTES_MODIFIED");
    }

    fn record(wd: i32, mask: u32, cookie: u32, name: &[u8], pad: usize) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&wd.to_ne_bytes());
        out.extend_from_slice(&mask.to_ne_bytes());
        out.extend_from_slice(&cookie.to_ne_bytes());
        let len = if name.is_empty() { 0 } else { name.len() + pad };
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        if len > 0 {
            out.extend_from_slice(name);
            out.resize(out.len() + pad, 0);
        }
        out
    }

    #[test]
    fn records_parse_and_truncated_or_hostile_buffers_stop_cleanly() {
        let mut buf = record(3, libc::IN_CREATE, 0, b"a.txt", 11);
        buf.extend(record(3, libc::IN_MOVED_FROM, 77, b"b\xff", 2));
        buf.extend(record(4, libc::IN_ATTRIB, 0, b"", 0));
        let (events, complete) = parse_events(&buf);
        assert!(complete);
        assert_eq!(
            events,
            vec![
                RawEvent {
                    wd: 3,
                    mask: libc::IN_CREATE,
                    cookie: 0,
                    name: b"a.txt".to_vec()
                },
                RawEvent {
                    wd: 3,
                    mask: libc::IN_MOVED_FROM,
                    cookie: 77,
                    name: b"b\xff".to_vec()
                },
                RawEvent {
                    wd: 4,
                    mask: libc::IN_ATTRIB,
                    cookie: 0,
                    name: Vec::new()
                },
            ]
        );
        // Cut anywhere: the whole records before the cut, and "incomplete".
        for cut in 1..buf.len() {
            let (events, complete) = parse_events(&buf[..cut]);
            let whole = [32usize, 32 + 20, 32 + 20 + 16];
            assert_eq!(events.len(), whole.iter().filter(|&&w| w <= cut).count());
            assert_eq!(complete, whole.contains(&cut), "cut at {cut}");
        }
        // A length far past the buffer, and random bytes: no panic.
        let mut huge = record(1, libc::IN_CREATE, 0, b"x", 3);
        huge[12..16].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(parse_events(&huge), (Vec::new(), false));
        let mut seed = 0x9e37_79b9_u32;
        for _ in 0..200 {
            let junk: Vec<u8> = (0..97)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let _ = parse_events(&junk);
        }
    }

    /// Create, write, chmod, rename and delete a file in a watched directory: osquery's
    /// actions in the kernel's order, with the paths this test used.
    #[test]
    fn a_files_life_in_a_watched_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut w = FileWatcher::new(&config(vec![("t", vec![like(root, "")])])).unwrap();
        assert_eq!(w.watched_dirs(), vec![root.to_path_buf()]);
        let a = root.join("a.txt");
        let b = root.join("b.txt");
        {
            let mut f = File::create(&a).unwrap();
            f.write_all(b"hello").unwrap();
        }
        fs::set_permissions(&a, fs::Permissions::from_mode(0o600)).unwrap();
        let mut content = String::new();
        File::open(&a)
            .unwrap()
            .read_to_string(&mut content)
            .unwrap();
        fs::rename(&a, &b).unwrap();
        fs::remove_file(&b).unwrap();
        let events = read_until(&mut w, |e| seen(e, &b, FileAction::Deleted));
        use FileAction::*;
        // A write and its close are two records, so two UPDATED (as osquery reports).
        assert_eq!(
            actions_of(&events, &a),
            [Created, Updated, Updated, AttributesModified, MovedFrom]
        );
        assert_eq!(actions_of(&events, &b), [MovedTo, Deleted]);
        let cookie = |p: &Path, act| {
            events
                .iter()
                .find(|e| e.path == p && e.action == act)
                .unwrap()
                .cookie
        };
        assert_ne!(cookie(&a, MovedFrom), 0);
        assert_eq!(cookie(&a, MovedFrom), cookie(&b, MovedTo));
        assert!(events.iter().all(|e| &*e.category == "t" && !e.from_scan));
        // Not a file_accesses category: the read above gave no OPENED/ACCESSED.
        assert!(
            events
                .iter()
                .all(|e| e.action != Opened && e.action != Accessed)
        );
        let now = unix_now();
        assert!(events.iter().all(|e| e.time <= now && e.time + 60 > now));
        assert_eq!(w.stats().events, events.len() as u64);
    }

    #[test]
    fn file_accesses_add_opened_and_accessed_for_listed_categories_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let f = root.join("secret");
        fs::write(&f, b"data").unwrap();
        let marker = root.join("marker");
        let mut cfg = config(vec![
            ("acc", vec![like(root, "%")]),
            ("plain", vec![like(root, "%")]),
        ]);
        cfg.file_accesses = vec!["acc".into()];
        let mut w = FileWatcher::new(&cfg).unwrap();
        let mut buf = Vec::new();
        File::open(&f).unwrap().read_to_end(&mut buf).unwrap();
        assert_eq!(buf, b"data");
        // Both categories see the marker; by then the read's records are in.
        fs::write(&marker, b"").unwrap();
        let events = read_until(&mut w, |e| {
            e.iter()
                .filter(|e| e.path == marker && e.action == FileAction::Created)
                .count()
                == 2
        });
        let of = |cat: &str| -> Vec<FileAction> {
            events
                .iter()
                .filter(|e| e.path == f && &*e.category == cat)
                .map(|e| e.action)
                .collect()
        };
        assert_eq!(of("acc"), [FileAction::Opened, FileAction::Accessed]);
        assert_eq!(of("plain"), []);
    }

    /// A directory made under a `%%` tree, with a file written in it before the reader
    /// had a chance to add the watch: the file is reported (from the listing), once, and
    /// later changes deeper down come from the kernel.
    #[test]
    fn recursive_tree_follows_new_directories_without_missing_early_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut w = FileWatcher::new(&config(vec![("tree", vec![like(root, "%%")])])).unwrap();
        let early = root.join("new/early");
        let deep = root.join("new/deep/er");
        fs::create_dir(root.join("new")).unwrap();
        fs::write(&early, b"x").unwrap();
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("f"), b"x").unwrap();
        let events = read_until(&mut w, |e| {
            seen(e, &early, FileAction::Created) && seen(e, &deep.join("f"), FileAction::Created)
        });
        assert!(seen(&events, &root.join("new"), FileAction::Created));
        assert!(seen(&events, &deep, FileAction::Created));
        let early_created = events
            .iter()
            .filter(|e| e.path == early && e.action == FileAction::Created)
            .count();
        assert_eq!(early_created, 1, "{events:#?}");
        let dirs = w.watched_dirs();
        for d in [root.join("new"), root.join("new/deep"), deep.clone()] {
            assert!(dirs.contains(&d), "{} not watched: {dirs:?}", d.display());
        }
        // The watch on the deepest directory reports a later change.
        let late = deep.join("late");
        fs::write(&late, b"y").unwrap();
        let events = read_until(&mut w, |e| seen(e, &late, FileAction::Updated));
        assert!(seen(&events, &late, FileAction::Created));
        assert!(
            events
                .iter()
                .filter(|e| e.path == late)
                .all(|e| !e.from_scan)
        );
    }

    #[test]
    fn wildcard_in_the_last_component_filters_names() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut w = FileWatcher::new(&config(vec![("logs", vec![like(root, "%.log")])])).unwrap();
        fs::write(root.join("b.txt"), b"").unwrap();
        fs::write(root.join("a.log"), b"").unwrap();
        fs::write(root.join(".hidden.log"), b"").unwrap();
        let last = root.join("z.log");
        fs::write(&last, b"").unwrap();
        let events = read_until(&mut w, |e| seen(e, &last, FileAction::Created));
        let mut paths: Vec<PathBuf> = events.iter().map(|e| e.path.clone()).collect();
        paths.dedup();
        assert_eq!(
            paths,
            [root.join("a.log"), root.join(".hidden.log"), last.clone()]
        );
    }

    #[test]
    fn wildcards_before_the_last_component_are_resolved_when_configuring() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for d in ["x", "y"] {
            fs::create_dir(root.join(d)).unwrap();
        }
        fs::write(root.join("not-a-dir"), b"").unwrap();
        let mut w = FileWatcher::new(&config(vec![("c", vec![like(root, "%/conf")])])).unwrap();
        assert_eq!(w.watched_dirs(), [root.join("x"), root.join("y")]);
        fs::write(root.join("x/other"), b"").unwrap();
        fs::write(root.join("x/conf"), b"").unwrap();
        fs::write(root.join("y/conf"), b"").unwrap();
        let events = read_until(&mut w, |e| {
            seen(e, &root.join("y/conf"), FileAction::Created)
        });
        assert!(seen(&events, &root.join("x/conf"), FileAction::Created));
        assert!(events.iter().all(|e| e.path != root.join("x/other")));
    }

    /// A file watched by name keeps being watched after an editor replaces it.
    #[test]
    fn a_named_file_survives_being_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let file = root.join("passwd");
        fs::write(&file, b"one").unwrap();
        let mut w = FileWatcher::new(&config(vec![("f", vec![like(root, "passwd")])])).unwrap();
        let tmpfile = root.join("passwd.tmp");
        fs::write(&tmpfile, b"two").unwrap();
        fs::rename(&tmpfile, &file).unwrap();
        fs::write(&file, b"three").unwrap();
        let events = read_until(&mut w, |e| seen(e, &file, FileAction::Updated));
        assert_eq!(actions_of(&events, &file)[0], FileAction::MovedTo);
        assert!(events.iter().all(|e| e.path == file), "{events:#?}");
    }

    #[test]
    fn excluded_paths_are_not_reported_for_their_category() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir(root.join("skip")).unwrap();
        let mut cfg = config(vec![
            ("ex", vec![like(root, "%%")]),
            ("all", vec![like(root, "%%")]),
        ]);
        cfg.exclude_paths.insert(
            "ex".into(),
            vec![like(root, "skip/"), like(root, "%.tmp"), String::new()],
        );
        let mut w = FileWatcher::new(&cfg).unwrap();
        fs::write(root.join("skip/f"), b"").unwrap();
        fs::create_dir(root.join("skip/sub")).unwrap();
        fs::write(root.join("a.tmp"), b"").unwrap();
        let keep = root.join("keep");
        fs::write(&keep, b"").unwrap();
        let events = read_until(&mut w, |e| {
            e.iter()
                .filter(|e| e.path == keep && e.action == FileAction::Updated)
                .count()
                == 2
        });
        let paths = |cat: &str| -> BTreeMap<PathBuf, ()> {
            events
                .iter()
                .filter(|e| &*e.category == cat)
                .map(|e| (e.path.clone(), ()))
                .collect()
        };
        assert_eq!(
            paths("ex").into_keys().collect::<Vec<_>>(),
            vec![keep.clone()]
        );
        let all: Vec<PathBuf> = paths("all").into_keys().collect();
        for p in [
            root.join("skip/f"),
            root.join("skip/sub"),
            root.join("a.tmp"),
            keep,
        ] {
            assert!(all.contains(&p), "{} missing: {all:?}", p.display());
        }
    }

    /// An overflow record is counted and makes the reader walk its trees again, so a
    /// directory whose CREATE was lost gets its watch.
    #[test]
    fn overflow_is_counted_and_trees_are_walked_again() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut w = FileWatcher::new(&config(vec![("t", vec![like(root, "%%")])])).unwrap();
        let gap = root.join("gap");
        fs::create_dir(&gap).unwrap();
        // Lose the kernel's records of the gap, as an overflow does.
        let mut lost = vec![0u8; BUFFER_SIZE];
        assert!(wait_readable(w.inotify.as_raw_fd(), Duration::from_secs(10)).unwrap());
        // SAFETY: reads into a local buffer, at most its length.
        let n = unsafe { libc::read(w.inotify.as_raw_fd(), lost.as_mut_ptr().cast(), lost.len()) };
        assert!(n > 0);
        assert!(!w.watched_dirs().contains(&gap));
        let overflow = RawEvent {
            wd: -1,
            mask: libc::IN_Q_OVERFLOW,
            cookie: 0,
            name: Vec::new(),
        };
        let out = w.handle_events([&overflow, &overflow], unix_now());
        assert!(out.is_empty());
        assert_eq!(w.stats().overflows, 2);
        assert!(w.watched_dirs().contains(&gap));
        let f = gap.join("f");
        fs::write(&f, b"").unwrap();
        let events = read_until(&mut w, |e| seen(e, &f, FileAction::Created));
        assert!(seen(&events, &f, FileAction::Created));
        // Records for a watch this reader does not hold are ignored.
        let stray = RawEvent {
            wd: 99_999,
            mask: libc::IN_CREATE,
            cookie: 0,
            name: b"x".to_vec(),
        };
        assert!(w.handle_events([&stray], 0).is_empty());
    }

    /// A FIFO, a link loop and a link to `/` in a watched tree: configuring and listing
    /// a new directory finish, nothing is opened, no link is entered.
    #[test]
    fn fifos_and_link_loops_neither_hang_nor_recurse() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir(root.join("d")).unwrap();
        let fifo = |p: &Path| {
            let c = CString::new(p.as_os_str().as_bytes()).unwrap();
            // SAFETY: a NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        };
        fifo(&root.join("d/pipe"));
        symlink(root, root.join("d/loop")).unwrap();
        symlink("/", root.join("d/slash")).unwrap();
        let mut w = FileWatcher::new(&config(vec![("t", vec![like(root, "%%")])])).unwrap();
        assert_eq!(w.watched_dirs(), [root.to_path_buf(), root.join("d")]);
        // The same inside a directory that appears later.
        fs::create_dir(root.join("n")).unwrap();
        fifo(&root.join("n/pipe"));
        symlink(root.join("n"), root.join("n/self")).unwrap();
        let events = read_until(&mut w, |e| {
            seen(e, &root.join("n/pipe"), FileAction::Created)
                && seen(e, &root.join("n/self"), FileAction::Created)
        });
        assert!(seen(&events, &root.join("n/self"), FileAction::Created));
        assert_eq!(
            w.watched_dirs(),
            [root.to_path_buf(), root.join("d"), root.join("n")]
        );
    }

    /// Reloading: a directory in both configurations keeps its watch (a change made
    /// before the reload is still read after it), one no longer named loses it.
    #[test]
    fn reconfigure_adds_and_removes_watches_without_losing_shared_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for d in ["one", "two"] {
            fs::create_dir(root.join(d)).unwrap();
        }
        let one = like(root, "one/");
        let two = like(root, "two/");
        let mut w = FileWatcher::new(&config(vec![("a", vec![one.clone()])])).unwrap();
        assert_eq!(w.watched_dirs(), [root.join("one")]);
        w.reconfigure(&config(vec![
            ("a", vec![one.clone()]),
            ("b", vec![two.clone()]),
        ]));
        assert_eq!(w.watched_dirs(), [root.join("one"), root.join("two")]);
        let kept = root.join("two/kept");
        fs::write(&kept, b"").unwrap();
        fs::write(root.join("one/dropped"), b"").unwrap();
        // Written before the reload, read after it.
        w.reconfigure(&config(vec![("b", vec![two.clone()])]));
        assert_eq!(w.watched_dirs(), [root.join("two")]);
        let after = root.join("two/after");
        fs::write(&after, b"").unwrap();
        fs::write(root.join("one/ignored"), b"").unwrap();
        let events = read_until(&mut w, |e| seen(e, &after, FileAction::Updated));
        assert!(seen(&events, &kept, FileAction::Created), "{events:#?}");
        assert!(events.iter().all(|e| &*e.category == "b"));
        assert!(events.iter().all(|e| e.path.starts_with(root.join("two"))));
        // Adding file_accesses widens the mask of the same watch.
        let mut cfg = config(vec![("b", vec![two])]);
        cfg.file_accesses = vec!["b".into()];
        w.reconfigure(&cfg);
        File::open(&after).unwrap();
        let events = read_until(&mut w, |e| seen(e, &after, FileAction::Opened));
        assert!(seen(&events, &after, FileAction::Opened));
    }

    #[test]
    fn deleted_and_moved_directories_leave_the_watch_map() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("gone")).unwrap();
        fs::create_dir_all(root.join("a/sub")).unwrap();
        fs::create_dir_all(root.join("leaving/sub")).unwrap();
        let mut w = FileWatcher::new(&config(vec![("t", vec![like(root, "%%")])])).unwrap();
        assert_eq!(w.stats().watches, 6);
        fs::remove_dir(root.join("gone")).unwrap();
        // Renamed inside the tree: the watches follow the new names.
        fs::rename(root.join("a"), root.join("b")).unwrap();
        // Moved out of the tree: its watches go.
        fs::rename(root.join("leaving"), outside.path().join("left")).unwrap();
        let marker = root.join("b/sub/marker");
        fs::write(&marker, b"").unwrap();
        let events = read_until(&mut w, |e| seen(e, &marker, FileAction::Updated));
        assert!(seen(&events, &root.join("gone"), FileAction::Deleted));
        assert!(seen(&events, &root.join("leaving"), FileAction::MovedFrom));
        // Records come in order: the deletion's IN_IGNORED and the moves' MOVE_SELF
        // were read before the marker's.
        assert_eq!(
            w.watched_dirs(),
            [root.to_path_buf(), root.join("b"), root.join("b/sub")]
        );
        // Nothing is reported under the old name or from outside.
        fs::write(outside.path().join("left/sub/x"), b"").unwrap();
        let last = root.join("b/last");
        fs::write(&last, b"").unwrap();
        let events = read_until(&mut w, |e| seen(e, &last, FileAction::Updated));
        assert!(
            events.iter().all(|e| e.path.starts_with(root.join("b"))),
            "{events:#?}"
        );
    }

    /// The watch limit, lowered in a private user namespace (inotify's limits are per
    /// user namespace since Linux 5.11), so the host's limit is untouched: the
    /// directories past it are counted and the warning names the sysctl.
    #[test]
    fn watch_limit_exhaustion_is_counted_and_named() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        for d in ["a/b", "c/d", "e"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let cfg = config(vec![("t", vec![like(root, "%%")])]);
        // SAFETY: the child runs only this code and leaves with _exit; glibc's malloc
        // stays usable after fork.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let code = limit_child(&cfg);
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "child died: {status:#x}");
        let code = libc::WEXITSTATUS(status);
        let why = [
            "ok",
            "unshare(CLONE_NEWUSER) failed",
            "cannot set user.max_inotify_watches",
            "watches or misses differ from the limit",
            "no warning naming fs.inotify.max_user_watches",
        ];
        assert_eq!(code, 0, "{}", why.get(code as usize).unwrap_or(&"?"));
    }

    // The forked child's log lines: a logger must be a static, and only that
    // single-threaded child installs it.
    static CHILD_LOG: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    struct ChildLogger;

    impl log::Log for ChildLogger {
        fn enabled(&self, _: &log::Metadata) -> bool {
            true
        }
        fn log(&self, record: &log::Record) {
            if let Ok(mut lines) = CHILD_LOG.lock() {
                lines.push(record.args().to_string());
            }
        }
        fn flush(&self) {}
    }

    /// In the forked child: a user namespace whose watch limit is 3, then a tree of six
    /// directories.
    fn limit_child(cfg: &WatchConfig) -> i32 {
        // SAFETY: the child is single-threaded, as unshare(CLONE_NEWUSER) requires.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            return 1;
        }
        if fs::write("/proc/sys/user/max_inotify_watches", "3").is_err() {
            return 2;
        }
        let _ = log::set_logger(&ChildLogger);
        log::set_max_level(log::LevelFilter::Warn);
        let Ok(w) = FileWatcher::new(cfg) else {
            return 3;
        };
        let stats = w.stats();
        if stats.watches != 3 || stats.watch_limit_misses != 3 || stats.watch_failures != 0 {
            return 3;
        }
        let lines = CHILD_LOG.lock().map(|l| l.clone()).unwrap_or_default();
        let named = lines.iter().any(|l| {
            l.contains("fs.inotify.max_user_watches") && l.contains("3 directories are not watched")
        });
        if named { 0 } else { 4 }
    }

    /// The duplicate filter after a listing, fed records by hand: the kernel's CREATE of
    /// a listed entry is dropped once; after a DELETE of it, a new CREATE is reported.
    #[test]
    fn listed_entries_are_not_reported_twice_but_recreated_ones_are() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut w = FileWatcher::new(&config(vec![("t", vec![like(root, "%%")])])).unwrap();
        let root_wd = *w.watches.keys().next().unwrap();
        fs::create_dir(root.join("n")).unwrap();
        fs::write(root.join("n/f"), b"").unwrap();
        fs::write(root.join("n/g"), b"").unwrap();
        let record = |wd, mask, name: &str| RawEvent {
            wd,
            mask,
            cookie: 0,
            name: name.as_bytes().to_vec(),
        };
        let out = w.handle_events([&record(root_wd, libc::IN_CREATE | libc::IN_ISDIR, "n")], 5);
        let listed: Vec<&Path> = out
            .iter()
            .filter(|e| e.from_scan)
            .map(|e| e.path.as_path())
            .collect();
        let (f, g) = (root.join("n/f"), root.join("n/g"));
        assert_eq!(listed.len(), 2, "{out:#?}");
        assert!(listed.contains(&f.as_path()) && listed.contains(&g.as_path()));
        let n_wd = *w
            .watches
            .iter()
            .find(|(_, v)| v.path == root.join("n").as_os_str().as_bytes())
            .unwrap()
            .0;
        let out = w.handle_events(
            [
                &record(n_wd, libc::IN_CREATE, "f"),
                &record(n_wd, libc::IN_DELETE, "g"),
                &record(n_wd, libc::IN_CREATE, "g"),
                &record(n_wd, libc::IN_CREATE, "f"),
            ],
            6,
        );
        let got: Vec<(&Path, FileAction)> =
            out.iter().map(|e| (e.path.as_path(), e.action)).collect();
        assert_eq!(
            got,
            [
                (g.as_path(), FileAction::Deleted),
                (g.as_path(), FileAction::Created),
                (f.as_path(), FileAction::Created),
            ]
        );
    }
}
