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
/// so do the shell and the daemon's snapshot lines; differential results, escaped first,
/// write `\xFF`.
const SQL: &str =
    r#"SELECT char(31) AS a, char(127) AS b, CAST(x'ff' AS TEXT) AS c, 'q"b\s/' AS d, x'ff' AS e"#;

/// The row as osquery's writer prints it.
const ROW: &[u8] =
    b"{\"a\":\"\\u001F\",\"b\":\"\x7f\",\"c\":\"\xff\",\"d\":\"q\\\"b\\\\s/\",\"e\":\"\xff\"}";

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

/// The bytes of the one line of `path` that contains `marker`, once there is one.
fn line_with(path: &std::path::Path, marker: &str) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    bytes
        .split(|&b| b == b'\n')
        .find(|l| l.windows(marker.len()).any(|w| w == marker.as_bytes()))
        .map(<[u8]>::to_vec)
}

/// The part of `line` between `before` and `after`.
fn between<'a>(line: &'a [u8], before: &str, after: &str) -> &'a [u8] {
    let find = |hay: &[u8], needle: &str| {
        hay.windows(needle.len())
            .position(|w| w == needle.as_bytes())
    };
    let shown = || String::from_utf8_lossy(line).into_owned();
    let start =
        find(line, before).unwrap_or_else(|| panic!("line shape: {}", shown())) + before.len();
    let len = find(&line[start..], after).unwrap_or_else(|| panic!("line shape: {}", shown()));
    &line[start..start + len]
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

    // A snapshot logs the row as the query returned it: the shell's bytes exactly.
    let snapshot = line_with(&s.snapshots_log(), "\"name\":\"snap\"").unwrap();
    assert!(snapshot.starts_with(b"{\"snapshot\":["));
    let row = between(&snapshot, "{\"snapshot\":[", "],\"action\":\"snapshot\"");
    assert_eq!(row, ROW, "{}", String::from_utf8_lossy(row));

    // A differential result first applies osquery's byte escaping (controls and invalid
    // UTF-8 as `\xHH`; the blob still has its raw byte there), then the same writer.
    let diff = line_with(&s.results_log(), "\"name\":\"diff\"").unwrap();
    let columns = between(&diff, ",\"columns\":", ",\"action\":\"added\"");
    assert_eq!(
        String::from_utf8_lossy(columns),
        "{\"a\":\"\\\\x1F\",\"b\":\"\u{7f}\",\"c\":\"\\\\xFF\",\"d\":\"q\\\"b\\\\s/\",\"e\":\"\\\\xFF\"}"
    );
}
