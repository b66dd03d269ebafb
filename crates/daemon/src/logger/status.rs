//! The daemon's status log: a `log` crate logger that writes osquery's status outputs.
//!
//! * `filesystem` plugin: glog text files `osqueryd.INFO.<YYYYMMDD-HHMMSS>.<pid>` (also
//!   `WARNING`, `ERROR`) in `--logger_path`, created on the first line of their severity,
//!   with symlinks `osqueryd.INFO` etc. to the newest; a line goes to its severity's file
//!   and every less severe one, as in glog.
//! * `stdout` plugin: `severity=N location=file:line message=...` on stdout.
//! * `syslog` plugin: the same text through syslog at the severity's priority.
//! * stderr (`--logger_stderr`): glog lines at or above `--logger_min_stderr`, or all
//!   with `--verbose`.
//!
//! Severities are osquery's: 0 info, 1 warning, 2 error, 3 fatal. `--logger_min_status`
//! drops less severe lines everywhere; `debug!`/`trace!` (osquery's VLOG) appear only
//! with `--verbose`, as info.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

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
        let letter = ['I', 'W', 'E', 'F'][usize::from(self.severity.min(3))];
        let t = local_tm(self.time);
        format!(
            "{letter}{:02}{:02} {:02}:{:02}:{:02}.{:06} {:>5} {}:{}] {}",
            t.tm_mon + 1,
            t.tm_mday,
            t.tm_hour,
            t.tm_min,
            t.tm_sec,
            micros(self.time),
            self.tid,
            self.file,
            self.line,
            self.message
        )
    }
}

/// osquery's severity of a `log` level.
pub fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 2,
        Level::Warn => 1,
        Level::Info | Level::Debug | Level::Trace => 0,
    }
}

fn micros(t: SystemTime) -> u32 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_micros()
}

fn local_tm(t: SystemTime) -> libc::tm {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as libc::time_t;
    // SAFETY: tm is plain old data; zeroed is a valid value that localtime_r overwrites.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; on failure tm stays zeroed.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    tm
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

    /// The file name glog gives a severity's log created at `t`.
    pub fn file_name(program: &str, severity_name: &str, t: SystemTime, pid: u32) -> String {
        let tm = local_tm(t);
        format!(
            "{program}.{severity_name}.{:04}{:02}{:02}-{:02}{:02}{:02}.{pid}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        )
    }

    fn open(&mut self, idx: usize, now: SystemTime) -> io::Result<&mut File> {
        if self.files[idx].is_none() {
            let name = Self::file_name(&self.program, SEVERITY_NAMES[idx], now, self.pid);
            let path = self.dir.join(&name);
            let mut file = super::filesystem::open_log(&path, self.mode)?;
            file.write_all(glog_header(now).as_bytes())?;
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

    /// Appends a line to its severity's file and every less severe one.
    pub fn write(&mut self, record: &StatusRecord) -> io::Result<()> {
        let line = format!("{}\n", record.glog_line());
        for idx in 0..=usize::from(record.severity.min(2)) {
            self.open(idx, record.time)?.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The header glog writes at the top of each file.
fn glog_header(t: SystemTime) -> String {
    let tm = local_tm(t);
    format!(
        "Log file created at: {:04}/{:02}/{:02} {:02}:{:02}:{:02}\n\
         Running on machine: {}\n\
         Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg\n",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        oxquery_sys::host::hostname().unwrap_or_default()
    )
}

/// What the status logger does (from `--logger_plugin`, `--logger_path`, `--logger_mode`,
/// `--logger_min_status`, `--logger_min_stderr`, `--logger_stderr`, `--verbose`).
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// Directory for glog files (the `filesystem` plugin is active).
    pub glog_dir: Option<PathBuf>,
    pub mode: u32,
    /// The `stdout` plugin is active.
    pub stdout: bool,
    /// The `syslog` plugin is active (it must have been opened by [`super::SyslogSink`]).
    pub syslog: bool,
    pub stderr: bool,
    pub min_status: i32,
    pub min_stderr: i32,
    pub verbose: bool,
}

struct Outputs {
    glog: Option<GlogFiles>,
    stdout: Option<Box<dyn Write + Send>>,
    stderr: Box<dyn Write + Send>,
}

/// The daemon's `log` crate logger.
pub struct StatusLogger {
    opts: StatusOptions,
    outputs: Mutex<Outputs>,
}

impl StatusLogger {
    /// A logger writing to the process's stdout and stderr.
    pub fn new(opts: StatusOptions) -> StatusLogger {
        let stdout: Option<Box<dyn Write + Send>> = if opts.stdout {
            Some(Box::new(io::stdout()))
        } else {
            None
        };
        Self::with_writers(opts, stdout, Box::new(io::stderr()))
    }

    /// A logger with explicit stdout/stderr writers (tests capture them).
    pub fn with_writers(
        opts: StatusOptions,
        stdout: Option<Box<dyn Write + Send>>,
        stderr: Box<dyn Write + Send>,
    ) -> StatusLogger {
        let glog = opts
            .glog_dir
            .as_ref()
            .map(|d| GlogFiles::new(d, "osqueryd", opts.mode));
        StatusLogger {
            outputs: Mutex::new(Outputs {
                glog,
                stdout: if opts.stdout { stdout } else { None },
                stderr,
            }),
            opts,
        }
    }

    /// Installs this logger for the process. Fails if a logger is already installed.
    pub fn install(self) -> Result<(), log::SetLoggerError> {
        let level = self.max_level();
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(level);
        Ok(())
    }

    fn max_level(&self) -> LevelFilter {
        if self.opts.verbose {
            LevelFilter::Debug
        } else {
            match self.opts.min_status {
                i32::MIN..=0 => LevelFilter::Info,
                1 => LevelFilter::Warn,
                _ => LevelFilter::Error,
            }
        }
    }

    fn wants(&self, level: Level) -> bool {
        match level {
            Level::Debug | Level::Trace => self.opts.verbose,
            _ => self.opts.verbose || i32::from(severity(level)) >= self.opts.min_status,
        }
    }

    /// Writes one record to every configured output. Write failures are ignored: the
    /// status log has nowhere to report its own failure.
    pub fn write_record(&self, record: &StatusRecord) {
        let mut out = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(glog) = out.glog.as_mut() {
            let _ = glog.write(record);
        }
        if let Some(stdout) = out.stdout.as_mut() {
            let _ = stdout.write_all(format!("{}\n", record.plain_line()).as_bytes());
            let _ = stdout.flush();
        }
        if self.opts.syslog {
            super::syslog::send_statuses(std::slice::from_ref(record));
        }
        let to_stderr = self.opts.stderr
            && (self.opts.verbose || i32::from(record.severity) >= self.opts.min_stderr);
        if to_stderr {
            // Whole line in one write so concurrent threads do not interleave.
            let _ = out
                .stderr
                .write_all(format!("{}\n", record.glog_line()).as_bytes());
        }
    }
}

impl Log for StatusLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.wants(metadata.level())
    }

    fn log(&self, record: &Record<'_>) {
        if self.wants(record.level()) {
            self.write_record(&StatusRecord::from_log(record));
        }
    }

    fn flush(&self) {
        let mut out = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(glog) = out.glog.as_mut() {
            for f in glog.files.iter_mut().flatten() {
                let _ = f.sync_data();
            }
        }
        let _ = out.stderr.flush();
    }
}
