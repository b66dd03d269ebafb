//! Status log for the shell: warnings and errors (and info with `--verbose`) on stderr, in
//! glog's text format, which is what osquery users recognise and grep for:
//! `W1130 02:27:52.123456  4242 vtab.rs:250] message`.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

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

/// glog has no debug/trace severities; osquery's VLOG lines print as `I`.
fn severity(level: Level) -> char {
    match level {
        Level::Error => 'E',
        Level::Warn => 'W',
        Level::Info | Level::Debug | Level::Trace => 'I',
    }
}

/// `MMDD HH:MM:SS.uuuuuu` in local time, as glog prints it.
fn timestamp(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as libc::time_t;
    // SAFETY: localtime_r only writes the tm we pass; a zeroed tm is a valid value.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    let ok = !unsafe { libc::localtime_r(&secs, &mut tm) }.is_null();
    if !ok {
        return format!("0000 00:00:00.{:06}", since.subsec_micros());
    }
    format!(
        "{:02}{:02} {:02}:{:02}:{:02}.{:06}",
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        since.subsec_micros()
    )
}

/// The glog line for a record, without the trailing newline.
pub fn format_line(
    level: Level,
    now: SystemTime,
    tid: i64,
    file: &str,
    line: u32,
    msg: &str,
) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    format!(
        "{}{} {tid:>5} {base}:{line}] {msg}",
        severity(level),
        timestamp(now)
    )
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
        let text = format_line(
            record.level(),
            SystemTime::now(),
            tid,
            record.file().unwrap_or("unknown"),
            record.line().unwrap_or(0),
            &record.args().to_string(),
        );
        // Whole line in one write so concurrent threads do not interleave.
        let _ = std::io::stderr().write_all(format!("{text}\n").as_bytes());
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glog_shape() {
        let line = format_line(
            Level::Warn,
            SystemTime::now(),
            42,
            "crates/engine/src/vtab.rs",
            250,
            "hello",
        );
        let (prefix, rest) = line.split_at(1);
        assert_eq!(prefix, "W");
        let bytes = rest.as_bytes();
        assert!(bytes[..4].iter().all(u8::is_ascii_digit), "{line}");
        assert_eq!(&rest[4..5], " ");
        assert_eq!(&rest[7..8], ":");
        assert_eq!(&rest[13..14], ".");
        assert!(rest.ends_with("    42 vtab.rs:250] hello"), "{line}");
    }
}
