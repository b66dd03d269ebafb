//! The bytes osquery writes, in one place for both programs.
//!
//! * [`json`]: a JSON writer whose output matches osquery's serializer (RapidJSON) byte
//!   for byte. `osqueryi --json`/`--json_pretty` and every line the daemon logs use it,
//!   so one value is written the same way by both.
//! * [`glog`]: glog's status line, file name and file header, used by the shell's stderr
//!   log and the daemon's status log.
//!
//! Nothing here does I/O: callers append to their own buffers.

pub mod glog;
pub mod json;

/// A double as osquery's result serialization turns it into text when numerics are off
/// (result log lines, the extension manager's `query` answers):
/// 15 significant digits (C++ stream default notation, i.e. `%.15g`) with `.0` appended
/// when the text has no `.` (so `1e+20` becomes `1e+20.0`, as in osquery).
pub fn double_text(d: f64) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: the buffer is writable for its length, the format is a NUL-terminated
    // literal taking exactly one double.
    let n = unsafe {
        libc::snprintf(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%.15g".as_ptr(),
            d as libc::c_double,
        )
    };
    let n = (n.max(0) as usize).min(buf.len() - 1);
    let mut s = String::from_utf8_lossy(&buf[..n]).into_owned();
    if !s.contains('.') {
        s.push_str(".0");
    }
    s
}
