//! Status log for the shell: warnings and errors (and info with `--verbose`) on stderr, in
//! glog's text format, which is what osquery users recognise and grep for:
//! `W1130 02:27:52.123456  4242 vtab.rs:250] message`. The line is
//! [`oxquery_format::glog::line`], the daemon's status line too.

use log::{LevelFilter, Log, Metadata, Record};
use oxquery_format::glog;
use std::io::Write;
use std::time::SystemTime;

struct GlogStderr;

static LOGGER: GlogStderr = GlogStderr;

/// Installs the logger. A second call (tests, embedding) keeps the first logger but
/// still applies the level.
pub fn init(verbose: bool) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if verbose {
        LevelFilter::Debug
    } else {
        LevelFilter::Warn
    });
}

impl Log for GlogStderr {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // SAFETY: gettid has no preconditions.
        let tid = i64::from(unsafe { libc::gettid() });
        let mut text = glog::line(
            glog::severity(record.level()),
            SystemTime::now(),
            tid,
            record.file().unwrap_or("unknown"),
            record.line().unwrap_or(0),
            &record.args().to_string(),
        );
        text.push('\n');
        // Whole line in one write so concurrent threads do not interleave.
        let _ = std::io::stderr().write_all(text.as_bytes());
    }

    fn flush(&self) {}
}
