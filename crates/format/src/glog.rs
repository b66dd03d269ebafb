//! glog's text formats, as osquery's status log writes them (local time throughout):
//!
//! * a line: `W0806 21:46:12.123456  4242 file.rs:10] message` ([`line()`]);
//! * a log file's name: `osqueryd.INFO.20260806-214612.4242` ([`file_name`]);
//! * the three header lines at the top of each file ([`header`]).
//!
//! Severities are osquery's: 0 info, 1 warning, 2 error, 3 fatal.

use log::Level;
use std::time::{SystemTime, UNIX_EPOCH};

/// osquery's severity of a `log` level. glog has no debug or trace severity: osquery's
/// VLOG lines are info.
pub fn severity(level: Level) -> u8 {
    match level {
        Level::Error => 2,
        Level::Warn => 1,
        Level::Info | Level::Debug | Level::Trace => 0,
    }
}

/// The glog status line, without a newline. `file` may be a path: only its base name is
/// printed. Severities above 3 print as fatal.
pub fn line(
    severity: u8,
    time: SystemTime,
    tid: i64,
    file: &str,
    line: u32,
    message: &str,
) -> String {
    let letter = ['I', 'W', 'E', 'F'][usize::from(severity.min(3))];
    let base = file.rsplit('/').next().unwrap_or(file);
    let t = local_tm(time);
    format!(
        "{letter}{:02}{:02} {:02}:{:02}:{:02}.{:06} {tid:>5} {base}:{line}] {message}",
        t.tm_mon + 1,
        t.tm_mday,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
        time.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_micros(),
    )
}

/// The name glog gives `program`'s log of one severity (`INFO`, `WARNING`, ...) created
/// at `time` by process `pid`.
pub fn file_name(program: &str, severity_name: &str, time: SystemTime, pid: u32) -> String {
    let tm = local_tm(time);
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

/// The header glog writes at the top of each file, newline-terminated.
pub fn header(time: SystemTime, hostname: &str) -> String {
    let tm = local_tm(time);
    format!(
        "Log file created at: {:04}/{:02}/{:02} {:02}:{:02}:{:02}\n\
         Running on machine: {hostname}\n\
         Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg\n",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
    )
}

/// The local broken-down time of `t` (all zero if the C library cannot convert it).
fn local_tm(t: SystemTime) -> libc::tm {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as libc::time_t;
    // SAFETY: tm is plain old data; zeroed is a valid value that localtime_r overwrites.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; on failure tm stays zeroed.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    tm
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// libc's own view of the same instant, the independent source for the fields.
    fn tm_of(secs: i64) -> libc::tm {
        let secs = secs as libc::time_t;
        // SAFETY: tm is plain old data and both pointers are valid for the call.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::localtime_r(&secs, &mut tm) };
        tm
    }

    #[test]
    fn line_shape() {
        let t = UNIX_EPOCH + Duration::from_micros(1_786_052_772_000_042);
        let tm = tm_of(1_786_052_772);
        let expected = |letter: char, tid: &str| {
            format!(
                "{letter}{:02}{:02} {:02}:{:02}:{:02}.000042 {tid} vtab.rs:250] hello",
                tm.tm_mon + 1,
                tm.tm_mday,
                tm.tm_hour,
                tm.tm_min,
                tm.tm_sec
            )
        };
        let l = line(1, t, 42, "crates/engine/src/vtab.rs", 250, "hello");
        assert_eq!(l, expected('W', "   42"));
        assert_eq!(
            line(0, t, 123456, "vtab.rs", 250, "hello"),
            expected('I', "123456")
        );
        assert_eq!(
            line(2, t, 1, "vtab.rs", 250, "hello"),
            expected('E', "    1")
        );
        assert_eq!(
            line(9, t, 1, "vtab.rs", 250, "hello"),
            expected('F', "    1")
        );
    }

    #[test]
    fn file_name_and_header() {
        let t = UNIX_EPOCH + Duration::from_secs(1_786_052_772);
        let tm = tm_of(1_786_052_772);
        let stamp = format!(
            "{:04}{:02}{:02}-{:02}{:02}{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        );
        assert_eq!(
            file_name("osqueryd", "INFO", t, 99),
            format!("osqueryd.INFO.{stamp}.99")
        );
        let h = header(t, "box");
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("Log file created at: "), "{h}");
        assert_eq!(lines[1], "Running on machine: box");
        assert!(h.ends_with("threadid file:line] msg\n"));
    }

    #[test]
    fn severities() {
        assert_eq!(severity(Level::Error), 2);
        assert_eq!(severity(Level::Warn), 1);
        assert_eq!(severity(Level::Info), 0);
        assert_eq!(severity(Level::Debug), 0);
        assert_eq!(severity(Level::Trace), 0);
    }
}
