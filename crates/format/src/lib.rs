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
