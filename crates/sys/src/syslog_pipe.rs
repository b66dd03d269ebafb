//! The named pipe rsyslog writes syslog lines into, read for `syslog_events`.
//!
//! osquery's `syslog` publisher creates a FIFO at `--syslog_pipe_path` (mode 0460, group
//! `syslog` when that group exists, so rsyslog may write and osquery read) and rsyslog is
//! configured, per osquery's deployment docs, to write one CSV line per message with the
//! template `%timestamp:::date-rfc3339,csv%,%hostname:::csv%,%syslogseverity:::csv%,`
//! `%syslogfacility-text:::csv%,%syslogtag:::csv%,%msg:::csv%\n`. rsyslog's `csv` option
//! wraps each value in double quotes and doubles the quotes inside it; backslashes are not
//! escaped. [`parse_line`] reads such a line into a [`SyslogEvent`]; [`SyslogPipe`] owns
//! the FIFO and hands out batches of events: [`SyslogPipe::next_batch`] waits at most its
//! timeout, and every line lost is counted in [`PipeStats`].
//!
//! Shape, and why:
//! - The path is never followed if it is a symbolic link and never used if it is anything
//!   but a FIFO (someone may have put a file or a link there to make a root process open
//!   it): the checks are `lstat`, then an `O_PATH | O_NOFOLLOW` open and `fstat` of what was
//!   opened, then a reopen of that same inode through `/proc/self/fd`, so nothing can be
//!   swapped in between. Mode and group are set on the open descriptor, not the path.
//! - The FIFO is opened read-write and non-blocking: holding a write end ourselves means a
//!   writer that closes never makes the pipe report end-of-file (which `poll` would report
//!   again at once, a busy loop), and the open itself never waits for a writer. Like
//!   osquery, an exclusive `flock` makes sure one process reads the pipe (an `osqueryi`
//!   started beside `osqueryd` gets [`PipeError::Locked`] instead of stealing lines).
//!   Opening read-write needs write permission: as root (the daemon's case) that is given;
//!   another user needs to be in the FIFO's group.
//! - [`SyslogPipe::next_batch`] waits with `ppoll` up to its timeout, then reads what is
//!   there (at most [`DRAIN_MAX`] bytes per round) into lines of at most [`MAX_LINE`] bytes.
//! - `--syslog_rate_limit`: osquery ingests at most that many lines per run of its
//!   publisher, runs being ~200 ms apart, and leaves the rest in the pipe; under a flood
//!   the pipe fills and rsyslog's writes stall. Here at most `rate_limit` lines are handed
//!   out per [`RATE_WINDOW`] (200 ms) too, but the pipe is always drained so rsyslog never
//!   stalls: lines above the limit wait in a backlog of about [`PipeConfig::backlog_max`]
//!   bytes (a burst is delivered late, not lost), and the lines read while the window's
//!   lines are all out and the backlog is full are dropped and counted as `rate_limited`.
//!   Without a limit nothing is dropped: reading pauses while the backlog is full.
//!
//! What is lost, and where it is counted ([`PipeStats`]): lines longer than [`MAX_LINE`]
//! (`overlong`, dropped whole: a cut CSV line would not parse), lines that are not six CSV
//! fields with a severity 0-7 (`malformed`; osquery stops its publisher after ten such
//! lines, here they are only counted), and lines over the rate limit that found the
//! backlog full (`rate_limited`). Each kind is also logged as a warning with its count, at
//! most once per [`REPORT_EVERY`] so a flood makes one line, not one per event. Not
//! visible from here: messages rsyslog itself drops, and a line a writer left half-written
//! when it died, which joins the next writer's first line (most likely then malformed).
//!
//! Times: [`SyslogEvent::received`] is when the line was read (osquery's `time` column is
//! the time the event was recorded); [`SyslogEvent::datetime`] is the line's own
//! timestamp text (osquery's `datetime`) and [`SyslogEvent::time`] that timestamp as unix
//! seconds, its UTC offset applied (a timestamp without one is taken as UTC).

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::{self, DirBuilder};
use std::io;
use std::num::NonZeroU64;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// osquery's default `--syslog_pipe_path`.
pub const DEFAULT_PIPE_PATH: &str = "/var/osquery/syslog_pipe";
/// The FIFO's mode as osquery makes it: the owner (root) reads, the group (rsyslog's)
/// reads and writes, nobody else.
pub const PIPE_MODE: u32 = 0o460;
/// The group a new FIFO is given when it exists (rsyslog's on Debian and Ubuntu).
pub const PIPE_GROUP: &str = "syslog";
/// osquery's default `--syslog_rate_limit`: lines per [`RATE_WINDOW`].
pub const DEFAULT_RATE_LIMIT: u64 = 100;
/// The period `--syslog_rate_limit` counts lines over (osquery's ~200 ms between runs).
pub const RATE_WINDOW: Duration = Duration::from_millis(200);
/// The longest line kept. rsyslog's default message limit is 8 KiB and its CSV quoting
/// at most doubles that; a longer line is dropped whole and counted.
pub const MAX_LINE: usize = 64 * 1024;
/// The most bytes read from the pipe in one round, so a flood cannot hold a call forever.
pub const DRAIN_MAX: usize = 1024 * 1024;
/// The default for [`PipeConfig::backlog_max`]: 1 MiB, some thousands of typical lines,
/// i.e. several seconds of osquery's default rate.
pub const DEFAULT_BACKLOG_MAX: usize = 1024 * 1024;
/// How often, at most, each kind of loss is logged.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);

/// The size of each `read` from the pipe (the kernel's default pipe buffer).
const READ_CHUNK: usize = 64 * 1024;

/// One syslog message as rsyslog wrote it into the pipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyslogEvent {
    /// When the line was read, unix seconds.
    pub received: i64,
    /// The line's timestamp as written (rsyslog's RFC 3339 text), trimmed.
    pub datetime: String,
    /// [`Self::datetime`] as unix seconds; `None` when it is not an RFC 3339 date-time.
    pub time: Option<i64>,
    pub host: String,
    /// Syslog severity, 0 (emergency) to 7 (debug).
    pub severity: u8,
    /// Facility name (`%syslogfacility-text%`: `auth`, `cron`, `local3`, ...).
    pub facility: String,
    /// The syslog tag without rsyslog's trailing `:` (`sshd[812]`).
    pub tag: String,
    pub message: String,
}

/// Why a line is not a syslog event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("{0} CSV fields, expected 6 (time, host, severity, facility, tag, message)")]
    FieldCount(usize),
    #[error("a quoted field is not closed")]
    UnclosedQuote,
    #[error("severity {0:?} is not a number from 0 to 7")]
    Severity(String),
}

/// Parses one line of osquery's rsyslog CSV template (without its newline), read at
/// `received` (unix seconds). Fields are split at commas outside double quotes, `""`
/// inside quotes is one `"`, each field is trimmed of white space (as osquery does), and
/// invalid UTF-8 is replaced.
pub fn parse_line(line: &[u8], received: i64) -> Result<SyslogEvent, LineError> {
    let fields = split_csv(line)?;
    let [datetime, host, severity, facility, tag, message]: [String; 6] = fields
        .try_into()
        .map_err(|f: Vec<String>| LineError::FieldCount(f.len()))?;
    let severity = match severity.parse::<u8>() {
        Ok(s) if s <= 7 => s,
        _ => return Err(LineError::Severity(severity)),
    };
    let tag = match tag.strip_suffix(':') {
        Some(stripped) => stripped.to_owned(),
        None => tag,
    };
    Ok(SyslogEvent {
        received,
        time: parse_datetime(&datetime),
        datetime,
        host,
        severity,
        facility,
        tag,
        message,
    })
}

/// A line's CSV fields, trimmed. Stops at an eighth field: a line with too many is only
/// counted (so a line of commas does not become thousands of strings).
fn split_csv(line: &[u8]) -> Result<Vec<String>, LineError> {
    let text = |field: &[u8]| String::from_utf8_lossy(trim(field)).into_owned();
    if line.is_empty() {
        return Ok(Vec::new());
    }
    let mut fields = Vec::with_capacity(6);
    let mut field = Vec::new();
    let mut quoted = false;
    let mut bytes = line.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b',' if !quoted => {
                if fields.len() == 6 {
                    return Err(LineError::FieldCount(count_fields(line)));
                }
                fields.push(text(&field));
                field.clear();
            }
            b'"' if !quoted => quoted = true,
            b'"' if bytes.next_if_eq(&b'"').is_some() => field.push(b'"'),
            b'"' => quoted = false,
            _ => field.push(b),
        }
    }
    if quoted {
        return Err(LineError::UnclosedQuote);
    }
    fields.push(text(&field));
    Ok(fields)
}

/// How many CSV fields `line` has (for the error of a line with too many).
fn count_fields(line: &[u8]) -> usize {
    let mut quoted = false;
    1 + line
        .iter()
        .filter(|&&b| {
            if b == b'"' {
                // A doubled quote toggles twice, which leaves the state as it was.
                quoted = !quoted;
            }
            b == b',' && !quoted
        })
        .count()
}

/// `bytes` without leading and trailing white space (the C locale's `isspace` set).
fn trim(bytes: &[u8]) -> &[u8] {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = bytes.iter().position(|b| !space(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !space(b))
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// An RFC 3339 date-time (`2026-03-25T17:39:28.717070+02:00`, as rsyslog's `date-rfc3339`
/// writes it) as unix seconds: `YYYY-MM-DDTHH:MM:SS`, an optional fraction (dropped), and
/// an optional offset (`Z`, `+HH:MM` or `+HHMM`, applied; none means UTC). Anything else,
/// or a day that does not exist, is `None`.
pub fn parse_datetime(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits
            .iter()
            .try_fold(0i64, |n, d| Some(n * 10 + i64::from(d - b'0')))
    };
    let sep = |at: usize, want: u8| b.get(at) == Some(&want);
    if !(sep(4, b'-') && sep(7, b'-') && (sep(10, b'T') || sep(10, b't')))
        || !(sep(13, b':') && sep(16, b':'))
    {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let digits = after_dot.iter().take_while(|d| d.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &after_dot[digits..];
    }
    let offset = match rest {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, tail @ ..] => {
            let minutes_digits: &[u8] = match tail {
                [b':', m1, m2] | [m1, m2] => &[*m1, *m2],
                _ => return None,
            };
            let two = |pair: [u8; 2]| -> Option<i64> {
                pair.iter()
                    .all(u8::is_ascii_digit)
                    .then(|| i64::from(pair[0] - b'0') * 10 + i64::from(pair[1] - b'0'))
            };
            let (oh, om) = (
                two([*h1, *h2])?,
                two([minutes_digits[0], minutes_digits[1]])?,
            );
            if oh > 23 || om > 59 {
                return None;
            }
            let seconds = oh * 3600 + om * 60;
            if *sign == b'-' { -seconds } else { seconds }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date: count whole 400-year eras (146097
/// days each) in a calendar whose years start in March, so the leap day is a year's last.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719468: days from 0000-03-01 to 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

/// Splits a byte stream into lines of at most `max` bytes; a longer line is dropped
/// whole, its bytes skipped up to its newline.
#[derive(Debug)]
struct LineSplitter {
    max: usize,
    /// The start of a line whose newline has not arrived yet.
    partial: Vec<u8>,
    /// Inside an overlong line: skip bytes up to the next newline.
    skipping: bool,
}

impl LineSplitter {
    fn new(max: usize) -> Self {
        LineSplitter {
            max,
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// Feeds the next bytes of the stream: `line` gets each complete line (without its
    /// newline); returns how many lines were found too long in these bytes.
    fn feed(&mut self, mut bytes: &[u8], mut line: impl FnMut(&[u8])) -> u64 {
        let mut overlong = 0;
        loop {
            let Some(newline) = memchr::memchr(b'\n', bytes) else {
                if !self.skipping && !bytes.is_empty() {
                    if self.partial.len() + bytes.len() > self.max {
                        self.partial.clear();
                        self.skipping = true;
                        overlong += 1;
                    } else {
                        self.partial.extend_from_slice(bytes);
                    }
                }
                return overlong;
            };
            let head = &bytes[..newline];
            bytes = &bytes[newline + 1..];
            if self.skipping {
                self.skipping = false;
            } else if self.partial.len() + head.len() > self.max {
                self.partial.clear();
                overlong += 1;
            } else if self.partial.is_empty() {
                line(head);
            } else {
                self.partial.extend_from_slice(head);
                line(&self.partial);
                self.partial.clear();
            }
        }
    }
}

/// How a [`SyslogPipe`] is set up. [`PipeConfig::new`] gives osquery's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeConfig {
    /// Where the FIFO is (`--syslog_pipe_path`).
    pub path: PathBuf,
    /// The group a FIFO created here is given, if a group of that name exists.
    pub group: String,
    /// At most this many lines are handed out per [`RATE_WINDOW`]; `None`: no limit.
    /// `--syslog_rate_limit` maps here with [`rate_limit_from_flag`].
    pub rate_limit: Option<NonZeroU64>,
    /// Bytes of lines (and their events) waiting above the rate limit before new lines
    /// are dropped. Passed by at most the lines of one read ([`MAX_LINE`] bytes) when
    /// lines may still be handed out.
    pub backlog_max: usize,
}

impl PipeConfig {
    /// osquery's settings for a pipe at `path`: group `syslog`, 100 lines per 200 ms,
    /// and a backlog of [`DEFAULT_BACKLOG_MAX`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PipeConfig {
            path: path.into(),
            group: PIPE_GROUP.to_owned(),
            rate_limit: NonZeroU64::new(DEFAULT_RATE_LIMIT),
            backlog_max: DEFAULT_BACKLOG_MAX,
        }
    }
}

/// `--syslog_rate_limit` as [`PipeConfig::rate_limit`]. osquery takes no line at all
/// with 0; here 0 means no limit, the only useful reading of it.
pub fn rate_limit_from_flag(lines_per_window: u64) -> Option<NonZeroU64> {
    NonZeroU64::new(lines_per_window)
}

/// Why the pipe cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    #[error("{}: is a symbolic link; refusing to follow it to a syslog pipe", .0.display())]
    Symlink(PathBuf),
    #[error("{}: is a {kind}, not a FIFO; refusing to read syslog from it", .path.display())]
    NotFifo { path: PathBuf, kind: &'static str },
    #[error("{}: another process holds this syslog pipe's lock and reads it", .0.display())]
    Locked(PathBuf),
    #[error("{}: {what}: {source}", .path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
}

/// Lines read and lost so far, each kind counted once per line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipeStats {
    /// Events handed out by [`SyslogPipe::next_batch`].
    pub events: u64,
    /// Lines that are not a syslog event of osquery's template.
    pub malformed: u64,
    /// Lines longer than [`MAX_LINE`].
    pub overlong: u64,
    /// Lines above the rate limit that found the backlog full.
    pub rate_limited: u64,
}

impl PipeStats {
    /// Every line lost, whatever the reason.
    pub fn lost(&self) -> u64 {
        self.malformed + self.overlong + self.rate_limited
    }
}

/// Parsed events waiting to be handed out, bounded in bytes, and what was lost on the
/// way in.
#[derive(Debug)]
struct Intake {
    waiting: VecDeque<(usize, SyslogEvent)>,
    waiting_bytes: usize,
    max_bytes: usize,
    stats: PipeStats,
    /// The first malformed line since the last report, with why, for the warning.
    malformed_example: Option<String>,
}

impl Intake {
    fn full(&self) -> bool {
        !self.waiting.is_empty() && self.waiting_bytes >= self.max_bytes
    }

    /// Takes one line in. `over_limit`: no line may be handed out before the next rate
    /// window, so a line that finds the backlog full is dropped (rather than left in the
    /// pipe, where it would stall rsyslog).
    fn line(&mut self, line: &[u8], received: i64, over_limit: bool) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if trim(line).is_empty() {
            // Nothing was sent, so nothing is lost (osquery skips these too).
            return;
        }
        match parse_line(line, received) {
            Ok(event) => {
                let size = line.len() + std::mem::size_of::<SyslogEvent>();
                if over_limit && self.waiting_bytes + size > self.max_bytes {
                    self.stats.rate_limited += 1;
                } else {
                    self.waiting_bytes += size;
                    self.waiting.push_back((size, event));
                }
            }
            Err(e) => {
                self.stats.malformed += 1;
                if self.malformed_example.is_none() {
                    let shown: String = String::from_utf8_lossy(&line[..line.len().min(200)])
                        .escape_debug()
                        .collect();
                    self.malformed_example = Some(format!("{e}: \"{shown}\""));
                }
            }
        }
    }
}

/// The rsyslog FIFO, open for reading. See the module docs.
pub struct SyslogPipe {
    fd: OwnedFd,
    path: PathBuf,
    rate_limit: Option<NonZeroU64>,
    chunk: Box<[u8]>,
    splitter: LineSplitter,
    intake: Intake,
    /// The current rate window: when it started and how many lines it handed out.
    window_start: Instant,
    window_used: u64,
    /// What the last warning covered, and when it was logged.
    reported: PipeStats,
    reported_at: Option<Instant>,
}

impl std::fmt::Debug for SyslogPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyslogPipe")
            .field("path", &self.path)
            .field("rate_limit", &self.rate_limit)
            .field("waiting", &self.intake.waiting.len())
            .field("stats", &self.intake.stats)
            .finish_non_exhaustive()
    }
}

impl SyslogPipe {
    /// Opens the FIFO at `config.path`, creating it (and its parent directories, mode
    /// 0755) when missing: mode [`PIPE_MODE`], group `config.group` if it exists. A path
    /// that is a symbolic link or not a FIFO is refused, never followed or changed.
    pub fn open(config: PipeConfig) -> Result<SyslogPipe, PipeError> {
        let path = config.path;
        let io_error = |what: &'static str| {
            let path = path.clone();
            move |source| PipeError::Io { path, what, source }
        };
        if let Some(parent) = path.parent() {
            create_parents(parent).map_err(io_error("creating the parent directory"))?;
        }
        let created = match fs::symlink_metadata(&path) {
            Ok(meta) => {
                check_fifo(&path, meta.mode())?;
                false
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                make_fifo(&path).map_err(io_error("creating the FIFO"))?
            }
            Err(e) => return Err(io_error("checking the path")(e)),
        };
        let fd = open_fifo(&path)?;
        // SAFETY: plain flock on a descriptor we own.
        if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            return Err(if e.kind() == io::ErrorKind::WouldBlock {
                PipeError::Locked(path)
            } else {
                io_error("locking the FIFO")(e)
            });
        }
        if created {
            set_mode_and_group(&fd, &path, &config.group);
        } else {
            warn_if_others_can_write(&fd, &path);
        }
        log::debug!("{}: reading syslog lines from this FIFO", path.display());
        Ok(SyslogPipe {
            fd,
            path,
            rate_limit: config.rate_limit,
            chunk: vec![0; READ_CHUNK].into_boxed_slice(),
            splitter: LineSplitter::new(MAX_LINE),
            intake: Intake {
                waiting: VecDeque::new(),
                waiting_bytes: 0,
                max_bytes: config.backlog_max,
                stats: PipeStats::default(),
                malformed_example: None,
            },
            window_start: Instant::now(),
            window_used: 0,
            reported: PipeStats::default(),
            reported_at: None,
        })
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What was read and lost so far.
    pub fn stats(&self) -> PipeStats {
        self.intake.stats
    }

    /// The next events: returns as soon as there is at least one the rate limit lets
    /// through, or after `timeout` with none. Never blocks longer, never spins: it sleeps
    /// in `ppoll` until the pipe has data or the rate window turns.
    pub fn next_batch(&mut self, timeout: Duration) -> io::Result<Vec<SyslogEvent>> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            self.drain(now)?;
            let batch = self.take_allowed(now);
            if !batch.is_empty() || now >= deadline {
                self.report_losses(now);
                return Ok(batch);
            }
            let mut wait = deadline - now;
            if !self.intake.waiting.is_empty() {
                // Waiting only for the next rate window.
                wait = wait.min((self.window_start + RATE_WINDOW).saturating_duration_since(now));
            }
            wait_readable(self.fd.as_raw_fd(), wait)?;
        }
    }

    /// Reads what the pipe holds now (up to [`DRAIN_MAX`] bytes) into the backlog.
    ///
    /// While lines may still be handed out in this rate window, reading stops once the
    /// backlog is full (they are handed out first; the backlog's bound is passed by at
    /// most the lines of one read). Once the window's lines are all out, what is read
    /// fills the backlog and the rest is dropped.
    fn drain(&mut self, now: Instant) -> io::Result<()> {
        let received = unix_now();
        let over_limit = self.window_left(now) == 0;
        let mut total = 0;
        while total < DRAIN_MAX {
            if !over_limit && self.intake.full() {
                return Ok(());
            }
            // SAFETY: reads into our own buffer of chunk.len() bytes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    self.chunk.as_mut_ptr().cast(),
                    self.chunk.len(),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock => return Ok(()),
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(e),
                }
            }
            if n == 0 {
                // End of file cannot happen while we hold a write end; stop the round anyway.
                return Ok(());
            }
            let n = n as usize;
            total += n;
            let intake = &mut self.intake;
            intake.stats.overlong += self.splitter.feed(&self.chunk[..n], |line| {
                intake.line(line, received, over_limit)
            });
        }
        Ok(())
    }

    /// How many more lines the rate limit lets out now (`u64::MAX`: no limit). Starts
    /// a new rate window when the last one is over.
    fn window_left(&mut self, now: Instant) -> u64 {
        let Some(limit) = self.rate_limit else {
            return u64::MAX;
        };
        if now.duration_since(self.window_start) >= RATE_WINDOW {
            self.window_start = now;
            self.window_used = 0;
        }
        limit.get() - self.window_used
    }

    /// The waiting events the rate limit lets out now.
    fn take_allowed(&mut self, now: Instant) -> Vec<SyslogEvent> {
        let waiting = self.intake.waiting.len();
        let count =
            usize::try_from(self.window_left(now)).map_or(waiting, |left| left.min(waiting));
        self.window_used += count as u64;
        self.intake.stats.events += count as u64;
        self.intake
            .waiting
            .drain(..count)
            .map(|(size, event)| {
                self.intake.waiting_bytes -= size;
                event
            })
            .collect()
    }

    /// Logs the lines lost since the last warning, at most once per [`REPORT_EVERY`].
    fn report_losses(&mut self, now: Instant) {
        if self
            .reported_at
            .is_some_and(|at| now.duration_since(at) < REPORT_EVERY)
        {
            return;
        }
        let stats = self.intake.stats;
        let new = PipeStats {
            events: stats.events - self.reported.events,
            malformed: stats.malformed - self.reported.malformed,
            overlong: stats.overlong - self.reported.overlong,
            rate_limited: stats.rate_limited - self.reported.rate_limited,
        };
        if new.lost() == 0 {
            return;
        }
        let mut parts = Vec::new();
        if new.malformed > 0 {
            let example = self.intake.malformed_example.take().unwrap_or_default();
            parts.push(format!(
                "{} not in osquery's rsyslog CSV format (first: {example})",
                new.malformed
            ));
        }
        if new.overlong > 0 {
            parts.push(format!("{} longer than {MAX_LINE} bytes", new.overlong));
        }
        if new.rate_limited > 0 {
            parts.push(format!(
                "{} over --syslog_rate_limit with the backlog full",
                new.rate_limited
            ));
        }
        log::warn!(
            "{}: dropped syslog lines: {}; {} lost since start",
            self.path.display(),
            parts.join(", "),
            stats.lost()
        );
        self.reported = stats;
        self.reported_at = Some(now);
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Creates `dir` and its missing ancestors, each mode 0755 whatever the umask, so rsyslog
/// (often running as its own user) can reach the FIFO.
fn create_parents(dir: &Path) -> io::Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err())
        .collect();
    for d in missing.into_iter().rev() {
        match DirBuilder::new().mode(0o755).create(d) {
            Ok(()) => fs::set_permissions(d, fs::Permissions::from_mode(0o755))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `Ok` if `mode` (`st_mode`) is a FIFO's, else the error naming what it is.
fn check_fifo(path: &Path, mode: u32) -> Result<(), PipeError> {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFIFO => return Ok(()),
        libc::S_IFLNK => return Err(PipeError::Symlink(path.to_owned())),
        libc::S_IFREG => "regular file",
        libc::S_IFDIR => "directory",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "character device",
        libc::S_IFBLK => "block device",
        _ => "file of unknown type",
    };
    Err(PipeError::NotFifo {
        path: path.to_owned(),
        kind,
    })
}

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput.into())
}

/// Makes the FIFO; `Ok(false)` if something appeared there first (it is checked next).
fn make_fifo(path: &Path) -> io::Result<bool> {
    let cpath = c_path(path)?;
    // SAFETY: mkfifo with a NUL-terminated path.
    if unsafe { libc::mkfifo(cpath.as_ptr(), PIPE_MODE as libc::mode_t) } == 0 {
        log::debug!("{}: created the syslog FIFO", path.display());
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::AlreadyExists {
        return Ok(false);
    }
    Err(e)
}

/// Opens the FIFO at `path` read-write and non-blocking, having checked with `fstat` that
/// the inode opened (without following a link) is a FIFO.
fn open_fifo(path: &Path) -> Result<OwnedFd, PipeError> {
    let io_error = |what| {
        move |source| PipeError::Io {
            path: path.to_owned(),
            what,
            source,
        }
    };
    let cpath = c_path(path).map_err(io_error("opening the FIFO"))?;
    // SAFETY: open with a NUL-terminated path; an O_PATH descriptor reads and writes nothing.
    let raw = unsafe {
        libc::open(
            cpath.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io_error("opening the FIFO")(io::Error::last_os_error()));
    }
    // SAFETY: raw is a descriptor we just opened and own.
    let located = unsafe { OwnedFd::from_raw_fd(raw) };
    let mode = fstat_mode(located.as_raw_fd()).map_err(io_error("checking the FIFO"))?;
    check_fifo(path, mode)?;
    // The same inode, now for reading: O_RDWR keeps a write end of our own open.
    let proc_path =
        CString::new(format!("/proc/self/fd/{}", located.as_raw_fd())).expect("no NUL in a number");
    // SAFETY: open with a NUL-terminated path.
    let raw = unsafe {
        libc::open(
            proc_path.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(io_error("opening the FIFO for reading (and writing)")(
            io::Error::last_os_error(),
        ));
    }
    // SAFETY: as above.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn fstat_mode(fd: RawFd) -> io::Result<u32> {
    // SAFETY: a zeroed stat is a valid out-parameter for fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; st is writable.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.st_mode)
}

/// Sets the new FIFO's mode (mkfifo's was cut by the umask) and group, on the open
/// descriptor. Failures are warned about, as osquery does: the pipe still works for us,
/// but rsyslog may not be allowed to write into it.
fn set_mode_and_group(fd: &OwnedFd, path: &Path, group: &str) {
    // SAFETY: fchmod on a descriptor we own.
    if unsafe { libc::fchmod(fd.as_raw_fd(), PIPE_MODE as libc::mode_t) } != 0 {
        log::warn!(
            "{}: cannot set the syslog FIFO's mode to {PIPE_MODE:o}: {}",
            path.display(),
            io::Error::last_os_error()
        );
    }
    let Some(group) = crate::users::nss_group_by_name(group) else {
        log::debug!(
            "{}: no group {group:?}, so the syslog FIFO keeps its group",
            path.display()
        );
        return;
    };
    // SAFETY: fchown on a descriptor we own; uid -1 leaves the owner as it is.
    if unsafe { libc::fchown(fd.as_raw_fd(), u32::MAX, group.gid) } != 0 {
        log::warn!(
            "{}: cannot give the syslog FIFO to group {}: {}",
            path.display(),
            group.name,
            io::Error::last_os_error()
        );
    }
}

/// An existing FIFO that someone else owns, or that every user may write into, lets them
/// forge syslog events: say so (it is still used, as osquery would).
fn warn_if_others_can_write(fd: &OwnedFd, path: &Path) {
    // SAFETY: a zeroed stat is a valid out-parameter for fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; st is writable.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return;
    }
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if st.st_mode & 0o002 != 0 || (st.st_uid != 0 && st.st_uid != euid) {
        log::warn!(
            "{}: the syslog FIFO is owned by uid {} with mode {:o}: others than root and \
             rsyslog can write syslog events into it",
            path.display(),
            st.st_uid,
            st.st_mode & 0o7777
        );
    }
}

/// Sleeps until `fd` is readable or `wait` passes (a signal ends it early, which the
/// caller's loop absorbs).
fn wait_readable(fd: RawFd, wait: Duration) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: wait.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: wait.subsec_nanos() as libc::c_long,
    };
    // SAFETY: one valid pollfd, a valid timespec, no signal mask change.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(())
        } else {
            Err(e)
        };
    }
    if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
        return Err(io::Error::other(
            "poll reported an error on the syslog FIFO",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::thread;

    /// A value as rsyslog's `csv` property option writes it: quoted, quotes doubled.
    fn csv(value: &str) -> String {
        format!("\"{}\"", value.replace('"', "\"\""))
    }

    /// A line of osquery's rsyslog template, newline included.
    fn rsyslog_line(
        datetime: &str,
        host: &str,
        severity: u8,
        facility: &str,
        tag: &str,
        msg: &str,
    ) -> String {
        format!(
            "{},{},{},{},{},{}\n",
            csv(datetime),
            csv(host),
            csv(&severity.to_string()),
            csv(facility),
            csv(tag),
            csv(msg)
        )
    }

    fn config(dir: &Path) -> PipeConfig {
        PipeConfig::new(dir.join("syslog_pipe"))
    }

    /// A writer end of the FIFO, as rsyslog's `ompipe` opens it.
    fn writer(path: &Path) -> fs::File {
        fs::OpenOptions::new().write(true).open(path).unwrap()
    }

    /// Reads batches until `want` events arrived (or 10 s passed, failing the test).
    fn read_events(pipe: &mut SyslogPipe, want: usize) -> Vec<SyslogEvent> {
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while events.len() < want {
            assert!(
                Instant::now() < deadline,
                "only {} of {want} events arrived",
                events.len()
            );
            events.extend(pipe.next_batch(Duration::from_millis(100)).unwrap());
        }
        events
    }

    #[test]
    fn parses_a_line_of_the_rsyslog_template() {
        let line = rsyslog_line(
            "2016-03-22T21:17:01.701882+00:00",
            "web-1",
            6,
            "cron",
            "CRON[16538]:",
            "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)",
        );
        let event = parse_line(line.trim_end().as_bytes(), 77).unwrap();
        assert_eq!(
            event,
            SyslogEvent {
                received: 77,
                datetime: "2016-03-22T21:17:01.701882+00:00".into(),
                time: Some(1_458_681_421),
                host: "web-1".into(),
                severity: 6,
                facility: "cron".into(),
                tag: "CRON[16538]".into(),
                message: "(root) CMD (   cd / && run-parts --report /etc/cron.hourly)".into(),
            }
        );
    }

    #[test]
    fn csv_quoting_commas_and_white_space() {
        // Quotes doubled, commas and backslashes inside quotes, fields trimmed.
        let line =
            br#""2016-03-22T21:17:01Z", " host " ,"3","auth","su:","say ""hi"", then \, go ""","#;
        let e = parse_line(&line[..line.len() - 1], 0).unwrap();
        assert_eq!(e.host, "host");
        assert_eq!(e.severity, 3);
        assert_eq!(e.tag, "su");
        assert_eq!(e.message, r#"say "hi", then \, go ""#);
        // Unquoted fields and an empty last field after a trailing comma.
        let e = parse_line(b"2016-03-22T21:17:01Z,h,0,kern,kernel:,", 0).unwrap();
        assert_eq!((e.message.as_str(), e.tag.as_str()), ("", "kernel"));
        // A tag's trailing colon only once, and only a colon.
        let e = parse_line(b"x,h,7,user,a::,m", 0).unwrap();
        assert_eq!(e.tag, "a:");
        assert_eq!(e.time, None);
        // Invalid UTF-8 is replaced, not refused.
        let e = parse_line(b"x,h,7,user,t,\xff\xfe ok", 0).unwrap();
        assert_eq!(e.message, "\u{fffd}\u{fffd} ok");
    }

    #[test]
    fn malformed_lines_are_errors() {
        let cases: &[(&[u8], LineError)] = &[
            (b"", LineError::FieldCount(0)),
            (
                br#""2016-03-22T21:17:01.701882+00:00","vagrant","6","cron","#,
                LineError::FieldCount(5),
            ),
            (br#""t","","6","","","","""#, LineError::FieldCount(7)),
            (b"a,b,1,c,d,e,f,g,h,i,j", LineError::FieldCount(11)),
            (
                br#"t,h,6,f,t,"message never closed"#,
                LineError::UnclosedQuote,
            ),
            (b"t,h,info,f,t,m", LineError::Severity("info".into())),
            (b"t,h,8,f,t,m", LineError::Severity("8".into())),
            (b"t,h,-1,f,t,m", LineError::Severity("-1".into())),
            (b"t,h,,f,t,m", LineError::Severity(String::new())),
        ];
        let commas = vec![b','; 60_000];
        assert_eq!(parse_line(&commas, 0), Err(LineError::FieldCount(60_001)));
        for (line, want) in cases {
            assert_eq!(
                parse_line(line, 0).as_ref(),
                Err(want),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn datetimes_as_rsyslog_writes_them() {
        let cases = [
            ("1970-01-01T00:00:00.000000+00:00", Some(0)),
            ("2016-03-25T17:39:28.717070+00:00", Some(1_458_927_568)),
            ("2016-03-25T17:39:28+02:00", Some(1_458_927_568 - 7200)),
            ("2016-03-25T17:39:28-0530", Some(1_458_927_568 + 19_800)),
            ("2016-03-25T17:39:28Z", Some(1_458_927_568)),
            ("2016-03-25T17:39:28", Some(1_458_927_568)),
            ("2016-12-31T23:59:59.999000+00:00", Some(1_483_228_799)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800)),
            ("1969-12-31T23:59:59Z", Some(-1)),
            ("2023-02-29T00:00:00Z", None),
            ("2016-13-01T00:00:00Z", None),
            ("2016-03-25 17:39:28", None),
            ("2016-03-25T17:39:28.+00:00", None),
            ("2016-03-25T17:39:28+2:00", None),
            ("2016-03-25T17:39:28+02:00x", None),
            ("2016-03-25T24:00:00Z", None),
            ("Mar 25 17:39:28", None),
            ("", None),
            ("2016-03-25T17:39:2", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_datetime(text), want, "{text}");
        }
    }

    #[test]
    fn datetimes_agree_with_gnu_date() {
        let Some(date) = oxquery_test_support::require_tool("date") else {
            return;
        };
        let mut state = oxquery_test_support::seed("SYSLOG_PIPE_SEED") | 1;
        let mut next = |n: u64| {
            // xorshift64: any spread of values will do.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut texts = Vec::new();
        for _ in 0..300 {
            let (year, month) = (1971 + next(160) as i64, 1 + next(12) as i64);
            let day = 1 + next(days_in_month(year, month) as u64) as i64;
            let mut text = format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
                next(24),
                next(60),
                next(60)
            );
            if next(2) == 0 {
                text += &format!(".{}", next(1_000_000));
            }
            match next(4) {
                0 => {}
                1 => text += "Z",
                _ => {
                    let sign = if next(2) == 0 { '+' } else { '-' };
                    text += &format!("{sign}{:02}:{:02}", next(15), next(4) * 15);
                }
            }
            texts.push(text);
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dates");
        fs::write(&file, texts.join("\n") + "\n").unwrap();
        let out = std::process::Command::new(date)
            .env("TZ", "UTC")
            .args(["-u", "+%s", "-f"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let theirs: Vec<i64> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.parse().unwrap())
            .collect();
        let ours: Vec<i64> = texts.iter().map(|t| parse_datetime(t).unwrap()).collect();
        assert_eq!(ours, theirs, "{texts:?}");
    }

    #[test]
    fn splitter_bounds_lines_across_chunks() {
        let mut text = b"one\r\ntwo\n\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 20));
        text.extend_from_slice(b"\nexactly-10\n");
        text.extend(std::iter::repeat_n(b'y', 11));
        text.extend_from_slice(b"\nlast\npartial");
        let run = |chunk: usize| {
            let mut splitter = LineSplitter::new(10);
            let mut lines = Vec::new();
            let mut overlong = 0;
            for piece in text.chunks(chunk) {
                overlong += splitter.feed(piece, |l| lines.push(l.to_vec()));
            }
            (lines, overlong, splitter.partial.clone())
        };
        let whole = run(text.len());
        let want: Vec<Vec<u8>> = vec![
            b"one\r".to_vec(),
            b"two".to_vec(),
            b"".to_vec(),
            b"exactly-10".to_vec(),
            b"last".to_vec(),
        ];
        assert_eq!(whole, (want, 2, b"partial".to_vec()));
        for chunk in [1, 2, 3, 7, 11] {
            assert_eq!(run(chunk), whole, "chunks of {chunk}");
        }
    }

    #[test]
    fn creates_the_fifo_mode_0460_with_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/osquery/syslog_pipe");
        let mut cfg = PipeConfig::new(&path);
        cfg.group = "no-such-group-oxquery".into();
        let pipe = SyslogPipe::open(cfg).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&meta.file_type()));
        assert_eq!(meta.permissions().mode() & 0o7777, PIPE_MODE);
        // SAFETY: getegid cannot fail.
        assert_eq!(meta.gid(), unsafe { libc::getegid() });
        for created in ["var", "var/osquery"] {
            let meta = fs::metadata(dir.path().join(created)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o7777, 0o755, "{created}");
            // SAFETY: geteuid cannot fail.
            assert_eq!(meta.uid(), unsafe { libc::geteuid() }, "{created}");
        }
        assert_eq!(pipe.path(), path);
    }

    #[test]
    fn gives_a_new_fifo_to_the_named_group() {
        // Any group but our own shows the change; the host has no `syslog` group here.
        let egid = unsafe { libc::getegid() };
        let group = crate::users::nss_groups()
            .into_iter()
            .find(|g| g.gid != egid)
            .expect("a group other than ours");
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.group = group.name.clone();
        let _pipe = SyslogPipe::open(cfg.clone()).unwrap();
        let meta = fs::metadata(&cfg.path).unwrap();
        assert_eq!(meta.gid(), group.gid, "group {}", group.name);
        assert_eq!(meta.permissions().mode() & 0o7777, PIPE_MODE);
    }

    #[test]
    fn an_existing_fifo_is_used_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let cpath = c_path(&cfg.path).unwrap();
        assert_eq!(unsafe { libc::mkfifo(cpath.as_ptr(), 0o600) }, 0);
        fs::set_permissions(&cfg.path, fs::Permissions::from_mode(0o620)).unwrap();
        let mut pipe = SyslogPipe::open(cfg.clone()).unwrap();
        let meta = fs::metadata(&cfg.path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o620);
        writer(&cfg.path)
            .write_all(rsyslog_line("2026-01-02T03:04:05Z", "h", 1, "daemon", "x:", "y").as_bytes())
            .unwrap();
        let events = read_events(&mut pipe, 1);
        assert_eq!(events[0].time, Some(1_767_323_045));
    }

    #[test]
    fn refuses_a_regular_file_at_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        fs::write(&cfg.path, b"not a pipe\n").unwrap();
        fs::set_permissions(&cfg.path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = SyslogPipe::open(cfg.clone()).unwrap_err();
        assert!(
            matches!(
                err,
                PipeError::NotFifo {
                    kind: "regular file",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("not a FIFO"), "{err}");
        assert_eq!(fs::read(&cfg.path).unwrap(), b"not a pipe\n");
        assert_eq!(
            fs::metadata(&cfg.path).unwrap().permissions().mode() & 0o7777,
            0o644
        );
        fs::remove_file(&cfg.path).unwrap();
        fs::create_dir(&cfg.path).unwrap();
        let err = SyslogPipe::open(cfg).unwrap_err();
        assert!(
            matches!(
                err,
                PipeError::NotFifo {
                    kind: "directory",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn never_follows_a_symlink_at_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        // A link to a real FIFO: still refused, and the FIFO is left alone.
        let target = dir.path().join("elsewhere");
        let ctarget = c_path(&target).unwrap();
        assert_eq!(unsafe { libc::mkfifo(ctarget.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink(&target, &cfg.path).unwrap();
        let err = SyslogPipe::open(cfg.clone()).unwrap_err();
        assert!(matches!(err, PipeError::Symlink(_)), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        // A dangling link: nothing is created where it points.
        fs::remove_file(&cfg.path).unwrap();
        let missing = dir.path().join("would-be-created");
        std::os::unix::fs::symlink(&missing, &cfg.path).unwrap();
        let err = SyslogPipe::open(cfg).unwrap_err();
        assert!(matches!(err, PipeError::Symlink(_)), "{err}");
        assert!(fs::symlink_metadata(&missing).is_err());
    }

    #[test]
    fn a_second_reader_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let first = SyslogPipe::open(config(dir.path())).unwrap();
        let err = SyslogPipe::open(config(dir.path())).unwrap_err();
        assert!(matches!(err, PipeError::Locked(_)), "{err}");
        drop(first);
        SyslogPipe::open(config(dir.path())).unwrap();
    }

    #[test]
    fn reads_lines_a_writer_thread_sends() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let mut pipe = SyslogPipe::open(cfg.clone()).unwrap();
        let before = unix_now();
        let path = cfg.path.clone();
        let sender = thread::spawn(move || {
            let mut w = writer(&path);
            for i in 0..50 {
                let line = rsyslog_line(
                    "2026-12-06T13:35:10.123456+01:00",
                    "host-a",
                    (i % 8) as u8,
                    "local3",
                    &format!("app[{i}]:"),
                    &format!("message {i}, with \"quotes\" and a comma"),
                );
                w.write_all(line.as_bytes()).unwrap();
            }
        });
        let events = read_events(&mut pipe, 50);
        sender.join().unwrap();
        let after = unix_now();
        assert_eq!(events.len(), 50);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(
                e.message,
                format!("message {i}, with \"quotes\" and a comma")
            );
            assert_eq!(e.tag, format!("app[{i}]"));
            assert_eq!(e.severity, (i % 8) as u8);
            assert_eq!((e.host.as_str(), e.facility.as_str()), ("host-a", "local3"));
            assert_eq!(e.datetime, "2026-12-06T13:35:10.123456+01:00");
            // 12:35:10 UTC, as `date -u -d 2026-12-06T13:35:10+01:00 +%s` says.
            assert_eq!(e.time, Some(1_796_560_510));
            assert!((before..=after).contains(&e.received));
        }
        assert_eq!(
            pipe.stats(),
            PipeStats {
                events: 50,
                ..PipeStats::default()
            }
        );
    }

    #[test]
    fn with_no_writer_a_read_returns_empty_after_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let mut pipe = SyslogPipe::open(config(dir.path())).unwrap();
        let timeout = Duration::from_millis(150);
        let start = Instant::now();
        assert!(pipe.next_batch(timeout).unwrap().is_empty());
        // Returning early would mean it did not wait (the busy loop this guards against).
        assert!(start.elapsed() >= timeout);
        assert_eq!(pipe.stats(), PipeStats::default());
    }

    #[test]
    fn a_writer_that_closes_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let mut pipe = SyslogPipe::open(cfg.clone()).unwrap();
        for round in 0..3 {
            let mut w = writer(&cfg.path);
            let msg = format!("round {round}");
            w.write_all(
                rsyslog_line("2026-01-01T00:00:00Z", "h", 5, "user", "t:", &msg).as_bytes(),
            )
            .unwrap();
            drop(w);
            let events = read_events(&mut pipe, 1);
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].message, msg);
            // The writer is gone: no end-of-file, no error, just nothing until the timeout.
            let start = Instant::now();
            let timeout = Duration::from_millis(50);
            assert!(pipe.next_batch(timeout).unwrap().is_empty());
            assert!(start.elapsed() >= timeout);
        }
        assert_eq!(pipe.stats().events, 3);
        assert_eq!(pipe.stats().lost(), 0);
    }

    #[test]
    fn a_line_of_ten_megabytes_is_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let mut pipe = SyslogPipe::open(cfg.clone()).unwrap();
        let path = cfg.path.clone();
        let sender = thread::spawn(move || {
            let mut w = writer(&path);
            let mut huge = rsyslog_line("2026-01-01T00:00:00Z", "h", 5, "user", "t:", "")
                .trim_end()
                .to_owned()
                .into_bytes();
            huge.pop();
            huge.extend(std::iter::repeat_n(b'A', 10 * 1024 * 1024));
            huge.extend_from_slice(b"\"\n");
            w.write_all(&huge).unwrap();
            w.write_all(
                rsyslog_line("2026-01-01T00:00:00Z", "h", 5, "user", "t:", "after").as_bytes(),
            )
            .unwrap();
        });
        let events = read_events(&mut pipe, 1);
        sender.join().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].message, "after");
        assert_eq!(
            pipe.stats(),
            PipeStats {
                events: 1,
                overlong: 1,
                ..PipeStats::default()
            }
        );
    }

    #[test]
    fn binary_garbage_is_counted_and_the_next_line_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let mut pipe = SyslogPipe::open(cfg.clone()).unwrap();
        let mut state = oxquery_test_support::seed("SYSLOG_PIPE_SEED") | 1;
        let garbage: Vec<u8> = (0..200_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let garbage_lines = garbage
            .split(|b| *b == b'\n')
            .filter(|l| !trim(l.strip_suffix(b"\r").unwrap_or(l)).is_empty())
            .count() as u64;
        let path = cfg.path.clone();
        let sender = thread::spawn(move || {
            let mut w = writer(&path);
            w.write_all(&garbage).unwrap();
            // End the garbage's last line, then a good one.
            w.write_all(b"\n").unwrap();
            w.write_all(
                rsyslog_line("2026-01-01T00:00:00Z", "h", 2, "kern", "k:", "good").as_bytes(),
            )
            .unwrap();
        });
        let events = read_events(&mut pipe, 1);
        sender.join().unwrap();
        assert_eq!(events.last().unwrap().message, "good");
        let stats = pipe.stats();
        // Random bytes make no valid line (a valid one needs six fields and a severity digit
        // between commas); every one of them is counted.
        assert_eq!(stats.events, 1);
        assert_eq!(stats.malformed + stats.overlong, garbage_lines);
        assert!(stats.malformed > 0);
    }

    #[test]
    fn the_rate_limit_delays_a_burst_and_counts_what_the_backlog_cannot_hold() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.rate_limit = NonZeroU64::new(5);
        let line = |i: usize| {
            rsyslog_line(
                "2026-01-01T00:00:00Z",
                "h",
                6,
                "user",
                "t:",
                &format!("{i:04}"),
            )
        };
        // Room for twelve lines waiting.
        cfg.backlog_max = 12 * (line(0).len() - 1 + std::mem::size_of::<SyslogEvent>());
        let mut pipe = SyslogPipe::open(cfg.clone()).unwrap();
        let mut w = writer(&cfg.path);
        // 40 short lines fit in the pipe's buffer, so one read takes them all, and lines
        // may be handed out then: all 40 wait (one read may pass the bound).
        for i in 0..40 {
            w.write_all(line(i).as_bytes()).unwrap();
        }
        let first = pipe.next_batch(Duration::from_secs(5)).unwrap();
        assert_eq!(first.len(), 5);
        // 35 wait, over the room for 12: lines read while the window's five are out and
        // the backlog is full are dropped, so these 40 are lost (the backlog stays full
        // for the next five windows, and every read in that time drops).
        for i in 40..80 {
            w.write_all(line(i).as_bytes()).unwrap();
        }
        let mut delivered: Vec<String> = first.into_iter().map(|e| e.message).collect();
        loop {
            let batch = pipe.next_batch(Duration::from_millis(500)).unwrap();
            if batch.is_empty() {
                break;
            }
            assert!(
                batch.len() <= 5,
                "a batch of {} over a limit of 5",
                batch.len()
            );
            delivered.extend(batch.into_iter().map(|e| e.message));
        }
        let want: Vec<String> = (0..40).map(|i| format!("{i:04}")).collect();
        assert_eq!(delivered, want);
        assert_eq!(
            pipe.stats(),
            PipeStats {
                events: 40,
                rate_limited: 40,
                ..PipeStats::default()
            }
        );
    }

    #[test]
    fn without_a_rate_limit_a_full_backlog_pauses_reading_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.rate_limit = None;
        cfg.backlog_max = 1;
        let mut pipe = SyslogPipe::open(cfg.clone()).unwrap();
        let path = cfg.path.clone();
        let n = 20_000;
        // More than the pipe holds, so the writer blocks whenever the reader pauses.
        let sender = thread::spawn(move || {
            let mut w = std::io::BufWriter::new(writer(&path));
            for i in 0..n {
                let msg = format!("line {i}");
                w.write_all(
                    rsyslog_line("2026-01-01T00:00:00Z", "h", 6, "user", "t:", &msg).as_bytes(),
                )
                .unwrap();
            }
        });
        let events = read_events(&mut pipe, n);
        sender.join().unwrap();
        assert!(
            events
                .iter()
                .enumerate()
                .all(|(i, e)| e.message == format!("line {i}"))
        );
        assert_eq!(pipe.stats().lost(), 0);
    }

    #[test]
    fn without_a_rate_limit_a_burst_comes_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.rate_limit = rate_limit_from_flag(0);
        let mut pipe = SyslogPipe::open(cfg.clone()).unwrap();
        let mut w = writer(&cfg.path);
        for i in 0..300 {
            w.write_all(
                rsyslog_line("2026-01-01T00:00:00Z", "h", 6, "user", "t:", &i.to_string())
                    .as_bytes(),
            )
            .unwrap();
        }
        // 300 short lines fit in the pipe's 64 KiB: one read takes them all.
        let batch = pipe.next_batch(Duration::from_secs(5)).unwrap();
        assert_eq!(batch.len(), 300);
        assert_eq!(batch[299].message, "299");
        assert_eq!(pipe.stats().lost(), 0);
    }
}
