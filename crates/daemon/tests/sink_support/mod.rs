//! Helpers shared by the sink test binaries (`logger_sinks`, `logger_follow`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Lines `{"n":i}` for each `i` in `range`, as the outbox hands them to a sink.
pub fn lines(range: std::ops::Range<u32>) -> Vec<Vec<u8>> {
    range
        .map(|i| format!(r#"{{"n":{i}}}"#).into_bytes())
        .collect()
}

/// What a file holds after `lines` were written: each followed by a newline.
pub fn joined(lines: &[Vec<u8>]) -> String {
    lines
        .iter()
        .map(|l| format!("{}\n", String::from_utf8_lossy(l)))
        .collect()
}

pub fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

pub fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o7777
}
