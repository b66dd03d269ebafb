//! One JSON writer for both programs: the same value is written with the same bytes by
//! `osqueryi --json` and in `osqueryd`'s result lines, and those bytes are RapidJSON's
//! (osquery's serializer): `\u001F` with upper-case hex, DEL and `/` unescaped, `\"` and
//! `\\` escaped.

// Each test binary uses a part of the helpers.
#[allow(dead_code)]
mod daemon_support;
mod shell_support;

use daemon_support::{Sandbox, wait_until};
use std::time::Duration;

/// A unit separator, DEL, text that is not UTF-8, a quote with a backslash and a slash,
/// and a blob that is not UTF-8. osquery's writer copies the `\xff` bytes as they are, and
/// so does the shell; differential results, escaped first, write `\xFF`. The daemon's
/// snapshot lines still show U+FFFD for them: its lines are UTF-8 strings.
const SQL: &str =
    r#"SELECT char(31) AS a, char(127) AS b, CAST(x'ff' AS TEXT) AS c, 'q"b\s/' AS d, x'ff' AS e"#;

/// The row as osquery's writer prints it.
const ROW: &[u8] =
    b"{\"a\":\"\\u001F\",\"b\":\"\x7f\",\"c\":\"\xff\",\"d\":\"q\\\"b\\\\s/\",\"e\":\"\xff\"}";

/// The row as the daemon's snapshot line shows it today.
const SNAPSHOT_ROW: &str = "{\"a\":\"\\u001F\",\"b\":\"\u{7f}\",\"c\":\"\u{fffd}\",\"d\":\"q\\\"b\\\\s/\",\"e\":\"\u{fffd}\"}";

#[test]
fn shell_json_bytes() {
    let out = shell_support::ok_bytes(&["--json", SQL]);
    assert_eq!(out, [&b"[\n  "[..], ROW, b"\n]\n"].concat());

    let pretty = shell_support::ok_bytes(&["--json_pretty", SQL]);
    assert_eq!(
        String::from_utf8_lossy(&pretty),
        String::from_utf8_lossy(
            b"[\n  {\n    \"a\": \"\\u001F\",\n    \"b\": \"\x7f\",\n    \"c\": \"\xff\",\n    \
              \"d\": \"q\\\"b\\\\s/\",\n    \"e\": \"\xff\"\n  }\n]\n"
        )
    );
    assert!(pretty.windows(2).any(|w| w == b"\"\xff"), "raw bytes");
}

/// The text of the one line of `path` that contains `marker`, once there is one.
fn line_with(path: &std::path::Path, marker: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find(|l| l.contains(marker)).map(str::to_owned)
}

#[test]
fn daemon_lines_write_the_shells_bytes() {
    let s = Sandbox::new();
    let config = serde_json::json!({
        "schedule": {
            "snap": {"query": SQL, "interval": 1, "snapshot": true},
            "diff": {"query": SQL, "interval": 1},
        }
    });
    s.write_config(&config.to_string());
    let mut d = s.start("run", &[]);
    let logged = wait_until(Duration::from_secs(15), || {
        line_with(&s.snapshots_log(), "\"name\":\"snap\"").is_some()
            && line_with(&s.results_log(), "\"name\":\"diff\"").is_some()
    });
    let (status, _) = d.terminate(Duration::from_secs(5));
    assert!(logged, "no lines logged\n{}", d.stderr_text());
    assert_eq!(status.code(), Some(0), "{}", d.stderr_text());

    // A snapshot logs the row as the query returned it: the shell's bytes, except that
    // bytes that are not UTF-8 show as U+FFFD.
    let snapshot = line_with(&s.snapshots_log(), "\"name\":\"snap\"").unwrap();
    let row = snapshot
        .strip_prefix("{\"snapshot\":[")
        .and_then(|rest| rest.split_once("],\"action\":\"snapshot\""))
        .map(|(row, _)| row)
        .unwrap_or_else(|| panic!("snapshot line shape: {snapshot}"));
    assert_eq!(row, SNAPSHOT_ROW);

    // A differential result first applies osquery's byte escaping (controls and invalid
    // UTF-8 as `\xHH`; the blob still has its raw byte there), then the same writer.
    let diff = line_with(&s.results_log(), "\"name\":\"diff\"").unwrap();
    let columns = diff
        .split_once(",\"columns\":")
        .and_then(|(_, rest)| rest.split_once(",\"action\":\"added\""))
        .map(|(columns, _)| columns)
        .unwrap_or_else(|| panic!("event line shape: {diff}"));
    assert_eq!(
        columns,
        "{\"a\":\"\\\\x1F\",\"b\":\"\u{7f}\",\"c\":\"\\\\xFF\",\"d\":\"q\\\"b\\\\s/\",\"e\":\"\\\\xFF\"}"
    );
}
