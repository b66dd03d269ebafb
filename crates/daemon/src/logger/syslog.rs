//! The `syslog` logger: results at `LOG_INFO` (optionally prefixed `@cee:`), status lines
//! at a priority mapped from their severity, under `--logger_syslog_facility`.

use super::status::{StatusOutput, StatusRecord};
use crate::item::Stream;
use crate::sink::Sink;
use std::ffi::CString;
use std::io;
use std::sync::OnceLock;

/// `LOG_LOCAL3`, osquery's default facility number.
pub const DEFAULT_FACILITY: i32 = 19;

/// The facility code for `openlog`: numbers outside 0..=23 fall back to LOCAL3, as in
/// osquery.
pub fn facility_code(facility: i32) -> libc::c_int {
    let f = if (0..=23).contains(&facility) {
        facility
    } else {
        DEFAULT_FACILITY
    };
    f << 3
}

/// The syslog priority of a status severity (0 info, 1 warning, 2 error, 3 fatal): info
/// is logged as `LOG_NOTICE`, as osquery does.
pub fn status_priority(severity: u8) -> libc::c_int {
    match severity {
        1 => libc::LOG_WARNING,
        2 => libc::LOG_ERR,
        3 => libc::LOG_CRIT,
        _ => libc::LOG_NOTICE,
    }
}

/// The `syslog` sink. `openlog` is process-wide; the ident must outlive every later
/// `syslog` call, so it lives in a static.
pub struct SyslogSink {
    prepend_cee: bool,
}

// openlog(3) keeps the ident pointer for the life of the process: it must never move.
static IDENT: OnceLock<CString> = OnceLock::new();

impl SyslogSink {
    /// Calls `openlog(ident, LOG_PID | LOG_CONS, facility)`. The first ident wins for the
    /// life of the process.
    pub fn open(ident: &str, facility: i32, prepend_cee: bool) -> SyslogSink {
        let ident = IDENT.get_or_init(|| to_cstring(ident));
        // SAFETY: the ident is a NUL-terminated string kept alive in a static.
        unsafe {
            libc::openlog(
                ident.as_ptr(),
                libc::LOG_PID | libc::LOG_CONS,
                facility_code(facility),
            )
        };
        SyslogSink { prepend_cee }
    }
}

/// The status output of the `syslog` plugin: `severity=N location=... message=...` at the
/// severity's priority, through the process's syslog connection (opened by
/// [`SyslogSink::open`]; before that, glibc opens one with default settings).
pub struct SyslogStatus;

impl StatusOutput for SyslogStatus {
    fn write(&mut self, record: &StatusRecord) -> io::Result<()> {
        send(status_priority(record.severity), record.plain_line());
        Ok(())
    }
}

/// A C string of `s` (bytes, UTF-8 or not, as syslog takes them); interior NULs (which
/// would cut the message) become spaces.
fn to_cstring(s: impl AsRef<[u8]>) -> CString {
    let bytes: Vec<u8> = s
        .as_ref()
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    CString::new(bytes).expect("NULs replaced")
}

fn send(priority: libc::c_int, msg: impl AsRef<[u8]>) {
    let msg = to_cstring(msg);
    // SAFETY: a constant "%s" format with one NUL-terminated string argument.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), msg.as_ptr()) };
}

impl Sink for SyslogSink {
    fn name(&self) -> &'static str {
        "syslog"
    }

    /// syslog cannot be read back, so delivery is at-least-once.
    fn checkpoint(&mut self, _stream: Stream) -> io::Result<Option<String>> {
        Ok(None)
    }

    fn write(&mut self, _stream: Stream, lines: &[Vec<u8>]) -> io::Result<()> {
        for line in lines {
            if self.prepend_cee {
                send(libc::LOG_INFO, [&b"@cee:"[..], line].concat());
            } else {
                send(libc::LOG_INFO, line);
            }
        }
        Ok(())
    }

    fn resume(&mut self, stream: Stream, _checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()> {
        self.write(stream, lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_and_facilities() {
        assert_eq!(status_priority(0), libc::LOG_NOTICE);
        assert_eq!(status_priority(1), libc::LOG_WARNING);
        assert_eq!(status_priority(2), libc::LOG_ERR);
        assert_eq!(status_priority(3), libc::LOG_CRIT);
        assert_eq!(facility_code(19), libc::LOG_LOCAL3);
        assert_eq!(facility_code(0), libc::LOG_KERN);
        assert_eq!(facility_code(23), libc::LOG_LOCAL7);
        assert_eq!(facility_code(24), libc::LOG_LOCAL3);
        assert_eq!(facility_code(-1), libc::LOG_LOCAL3);
    }

    #[test]
    fn cstring_without_nul() {
        assert_eq!(to_cstring("a\0b").as_bytes(), b"a b");
    }
}
