//! The daemon's status log: a `log` crate logger that hands each kept record to a list of
//! [`StatusOutput`]s. The outputs live with the plugin they belong to and this module
//! knows none of them:
//!
//! * `filesystem` plugin: glog text files ([`super::filesystem::GlogFiles`]);
//! * `stdout` plugin: `severity=N location=file:line message=...` on stdout
//!   ([`super::StdoutSink`]);
//! * `syslog` plugin: the same text through syslog ([`super::syslog::SyslogStatus`]);
//! * stderr (`--logger_stderr`): glog lines at or above `--logger_min_stderr`, or all
//!   with `--verbose` ([`GlogStream`]).
//!
//! [`super::StatusOptions`] picks the outputs from the flags. Severities are osquery's:
//! 0 info, 1 warning, 2 error, 3 fatal. `--logger_min_status` drops less severe lines
//! everywhere; `debug!`/`trace!` (osquery's VLOG) appear only with `--verbose`, as info.

use log::{Level, LevelFilter, Log, Metadata, Record};
pub use oxquery_format::glog::severity;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One status line's content.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRecord {
    /// 0 info, 1 warning, 2 error, 3 fatal.
    pub severity: u8,
    /// Source file name (base name only).
    pub file: String,
    pub line: u32,
    pub message: String,
    pub time: SystemTime,
    /// Kernel thread id of the logging thread.
    pub tid: i64,
}

impl StatusRecord {
    /// A record from a `log` record, stamped now on the calling thread.
    pub fn from_log(record: &Record<'_>) -> StatusRecord {
        let file = record.file().unwrap_or("unknown");
        StatusRecord {
            severity: severity(record.level()),
            file: file.rsplit('/').next().unwrap_or(file).to_owned(),
            line: record.line().unwrap_or(0),
            message: record.args().to_string(),
            time: SystemTime::now(),
            // SAFETY: gettid has no preconditions.
            tid: i64::from(unsafe { libc::gettid() }),
        }
    }

    /// `severity=N location=file:line message=...` (stdout and syslog loggers).
    pub fn plain_line(&self) -> String {
        format!(
            "severity={} location={}:{} message={}",
            self.severity, self.file, self.line, self.message
        )
    }

    /// glog's text line: `W0806 21:46:12.123456  4242 file.rs:10] message` (local time).
    pub fn glog_line(&self) -> String {
        oxquery_format::glog::line(
            self.severity,
            self.time,
            self.tid,
            &self.file,
            self.line,
            &self.message,
        )
    }
}

/// Somewhere status records go.
pub trait StatusOutput: Send {
    /// Writes one record the logger keeps. An output may drop records it does not want
    /// (the stderr copy keeps only the severe ones).
    fn write(&mut self, record: &StatusRecord) -> io::Result<()>;

    /// Makes written records durable, where that means something.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Closes and reopens the output's files (SIGHUP), where it has any.
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// glog lines on a stream (stderr) for records at or above a severity.
pub struct GlogStream<W: Write + Send> {
    out: W,
    min_severity: i32,
    /// When set, the threshold follows the installed logger's `--logger_min_stderr` and
    /// `--verbose` (a reload changes them).
    live: Option<Arc<LiveFilter>>,
}

impl<W: Write + Send> GlogStream<W> {
    /// Keeps records of severity `min_severity` and above (`i32::MIN` keeps all).
    pub fn new(out: W, min_severity: i32) -> Self {
        GlogStream {
            out,
            min_severity,
            live: None,
        }
    }

    fn threshold(&self) -> i32 {
        match &self.live {
            Some(live) if live.verbose.load(Ordering::Relaxed) => i32::MIN,
            Some(live) => live.min_stderr.load(Ordering::Relaxed),
            None => self.min_severity,
        }
    }
}

impl<W: Write + Send> StatusOutput for GlogStream<W> {
    fn write(&mut self, record: &StatusRecord) -> io::Result<()> {
        if i32::from(record.severity) < self.threshold() {
            return Ok(());
        }
        let mut line = record.glog_line();
        line.push('\n');
        // Whole line in one write so concurrent processes do not interleave.
        self.out.write_all(line.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Which records the logger keeps at all (`--logger_min_status`, `--verbose`).
#[derive(Debug, Clone, Copy)]
pub struct StatusFilter {
    pub min_status: i32,
    pub verbose: bool,
}

impl StatusFilter {
    fn max_level(self) -> LevelFilter {
        if self.verbose {
            LevelFilter::Debug
        } else {
            match self.min_status {
                i32::MIN..=0 => LevelFilter::Info,
                1 => LevelFilter::Warn,
                _ => LevelFilter::Error,
            }
        }
    }

    fn wants(self, level: Level) -> bool {
        match level {
            Level::Debug | Level::Trace => self.verbose,
            _ => self.verbose || i32::from(severity(level)) >= self.min_status,
        }
    }
}

/// The filter of an installed logger, changed by a reload (osquery re-reads `--verbose`,
/// `--logger_min_status` and `--logger_min_stderr` when the config's options change).
#[derive(Debug, Default)]
struct LiveFilter {
    min_status: AtomicI32,
    min_stderr: AtomicI32,
    verbose: AtomicBool,
}

impl LiveFilter {
    fn get(&self) -> StatusFilter {
        StatusFilter {
            min_status: self.min_status.load(Ordering::Relaxed),
            verbose: self.verbose.load(Ordering::Relaxed),
        }
    }
    fn set(&self, filter: StatusFilter) {
        self.min_status.store(filter.min_status, Ordering::Relaxed);
        self.verbose.store(filter.verbose, Ordering::Relaxed);
    }
}

type Outputs = Arc<Mutex<Vec<Box<dyn StatusOutput>>>>;

/// The most records kept for outputs added after start-up (the newest are kept).
pub const BACKLOG_MAX: usize = 10_000;

/// The records written since [`StatusLogger::with_backlog`], until [`StatusControl::end_backlog`]:
/// an output added later ([`StatusControl::add_output_with_backlog`]) gets them first,
/// as osquery's log sink buffers status lines and relays them to a logger plugin once
/// the plugin is set up. Only written under the outputs' lock, so an output added
/// misses no record and gets none twice.
type Backlog = Arc<Mutex<Option<std::collections::VecDeque<StatusRecord>>>>;

/// Changes what an installed [`StatusLogger`] keeps, and reopens its files.
#[derive(Clone)]
pub struct StatusControl {
    filter: Arc<LiveFilter>,
    outputs: Outputs,
    backlog: Backlog,
}

impl std::fmt::Debug for StatusControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusControl")
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl StatusControl {
    pub fn set_filter(&self, filter: StatusFilter) {
        self.filter.set(filter);
        log::set_max_level(filter.max_level());
    }

    /// `--logger_min_stderr`: what the stderr copy keeps (all of it with `--verbose`).
    pub fn set_min_stderr(&self, min: i32) {
        self.filter.min_stderr.store(min, Ordering::Relaxed);
    }

    /// Adds an output to the installed logger (one set up after it, such as the TLS
    /// logger's, which needs the node key from the store).
    pub fn add_output(&self, output: Box<dyn StatusOutput>) {
        self.outputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(output);
    }

    /// Adds an output that first receives the records written so far (those kept in the
    /// backlog), then every new one: a logger plugin started after start-up logged, which
    /// asked for the status log (an extension's).
    pub fn add_output_with_backlog(&self, mut output: Box<dyn StatusOutput>) {
        let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(backlog) = &*self.backlog.lock().unwrap_or_else(|e| e.into_inner()) {
            for record in backlog {
                let _ = output.write(record);
            }
        }
        outputs.push(output);
    }

    /// Stops keeping records for outputs added later (start-up is over: every logger
    /// plugin is set up) and frees those kept.
    pub fn end_backlog(&self) {
        *self.backlog.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Closes and reopens every output's files (SIGHUP). Failures are logged once the
    /// outputs are free again.
    pub fn reopen(&self) {
        let failures: Vec<String> = {
            let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
            outputs
                .iter_mut()
                .filter_map(|o| o.reopen().err().map(|e| e.to_string()))
                .collect()
        };
        for failure in failures {
            log::warn!("Cannot reopen a status log: {failure}");
        }
    }
}

/// The daemon's `log` crate logger.
pub struct StatusLogger {
    filter: Arc<LiveFilter>,
    outputs: Outputs,
    backlog: Backlog,
}

impl StatusLogger {
    /// A logger keeping what `filter` admits and writing it to every output in turn.
    pub fn with_outputs(filter: StatusFilter, outputs: Vec<Box<dyn StatusOutput>>) -> Self {
        let live = Arc::new(LiveFilter::default());
        live.set(filter);
        StatusLogger {
            filter: live,
            outputs: Arc::new(Mutex::new(outputs)),
            backlog: Arc::default(),
        }
    }

    /// Adds `out` as a stderr-style copy whose threshold is `--logger_min_stderr` now and
    /// follows [`StatusControl::set_min_stderr`] later.
    pub fn with_stderr_copy(self, out: impl Write + Send + 'static, min_stderr: i32) -> Self {
        self.filter.min_stderr.store(min_stderr, Ordering::Relaxed);
        let stream = GlogStream {
            out,
            min_severity: min_stderr,
            live: Some(Arc::clone(&self.filter)),
        };
        self.outputs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(stream));
        self
    }

    /// Keeps the records written from now on for outputs added later, until
    /// [`StatusControl::end_backlog`] (at most [`BACKLOG_MAX`], the newest).
    pub fn with_backlog(self) -> Self {
        *self.backlog.lock().unwrap_or_else(|e| e.into_inner()) = Some(Default::default());
        self
    }

    /// Installs this logger for the process (the `log` crate has one per process) and
    /// returns the handle that changes its filter. Fails if a logger is already installed.
    pub fn install(self) -> Result<StatusControl, log::SetLoggerError> {
        let level = self.filter.get().max_level();
        let control = self.control();
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(level);
        Ok(control)
    }

    /// The handle that changes this logger's filter and reopens its files (also
    /// returned by [`StatusLogger::install`]).
    pub fn control(&self) -> StatusControl {
        StatusControl {
            filter: Arc::clone(&self.filter),
            outputs: Arc::clone(&self.outputs),
            backlog: Arc::clone(&self.backlog),
        }
    }

    /// Writes one record to every output. Write failures are ignored: the status log
    /// has nowhere to report its own failure.
    pub fn write_record(&self, record: &StatusRecord) {
        let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(backlog) = &mut *self.backlog.lock().unwrap_or_else(|e| e.into_inner()) {
            if backlog.len() >= BACKLOG_MAX {
                backlog.pop_front();
            }
            backlog.push_back(record.clone());
        }
        for output in outputs.iter_mut() {
            let _ = output.write(record);
        }
    }
}

impl Log for StatusLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.filter.get().wants(metadata.level())
    }

    fn log(&self, record: &Record<'_>) {
        if self.filter.get().wants(record.level()) {
            self.write_record(&StatusRecord::from_log(record));
        }
    }

    fn flush(&self) {
        let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        for output in outputs.iter_mut() {
            let _ = output.flush();
        }
    }
}
