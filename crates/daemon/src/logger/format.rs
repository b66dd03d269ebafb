//! Result items → log lines, byte-compatible with osquery's JSON (written with
//! [`oxquery_format::json`], the writer `osqueryi --json` uses too).
//!
//! Every line starts (after the payload for batch and snapshot lines) with the same
//! fields in a fixed order: `name`, `hostIdentifier`, `calendarTime`, `unixTime`,
//! `epoch`, `counter`, `numerics`, then decorations (nested, or spread at the top level).
//!
//! Lines are bytes: a snapshot logs a value that is not UTF-8 (a file name) with its
//! bytes, as osquery does; differential results escape such bytes as `\xHH` first.

use super::host::HostIdentifier;
use crate::item::{LogLine, Payload, ResultItem, Row, Stream};
use oxquery_format::json::{double, push_bytes, push_key, push_str};
use oxquery_table::Value;
use std::fmt::Write as _;
use std::io::Write as _;

/// Appends `s` as a JSON string to a byte line.
fn push_text(out: &mut Vec<u8>, s: &str) {
    push_bytes(out, s.as_bytes());
}

/// Appends `"key":` to a byte line.
fn push_name(out: &mut Vec<u8>, key: &str) {
    push_bytes(out, key.as_bytes());
    out.push(b':');
}

/// How result items become lines (the logger_* / decoration flags).
#[derive(Debug, Clone)]
pub struct FormatOptions {
    pub host_identifier: HostIdentifier,
    /// `--logger_event_type`: one line per changed row (default) instead of one batch.
    pub event_type: bool,
    /// `--logger_snapshot_event_type`: one line per snapshot row.
    pub snapshot_event_type: bool,
    /// `--logger_numerics`: integers and doubles as JSON numbers.
    pub numerics: bool,
    /// `--decorations_top_level`.
    pub decorations_top_level: bool,
    /// `--nullvalue`: the text a NULL cell is logged as.
    pub nullvalue: String,
}

impl Default for FormatOptions {
    /// osquery's defaults.
    fn default() -> Self {
        FormatOptions {
            host_identifier: HostIdentifier::Hostname,
            event_type: true,
            snapshot_event_type: false,
            numerics: false,
            decorations_top_level: false,
            nullvalue: String::new(),
        }
    }
}

/// The lines one result item logs. Differential results go to [`Stream::Results`],
/// snapshots to [`Stream::Snapshots`]. Event formats log nothing for an empty result; the
/// batch format always logs one line (an empty differential is written in the snapshot
/// shape, `{"snapshot":[],"action":"snapshot",...}`, as osquery does).
pub fn format_item(item: &ResultItem, opts: &FormatOptions) -> Vec<LogLine> {
    let host = opts.host_identifier.current();
    let head = Header {
        item,
        host: &host,
        opts,
    };
    let (stream, texts) = match &item.payload {
        Payload::Diff { added, removed } => {
            let texts = if opts.event_type {
                let mut lines = Vec::with_capacity(added.len() + removed.len());
                for row in removed {
                    lines.push(head.event(row, "removed", true));
                }
                for row in added {
                    lines.push(head.event(row, "added", true));
                }
                lines
            } else if added.is_empty() && removed.is_empty() {
                vec![head.snapshot_batch(&[], true)]
            } else {
                vec![head.diff_batch(added, removed)]
            };
            (Stream::Results, texts)
        }
        Payload::Snapshot(rows) => {
            let texts = if opts.snapshot_event_type {
                rows.iter()
                    .map(|row| head.event(row, "snapshot", false))
                    .collect()
            } else {
                vec![head.snapshot_batch(rows, false)]
            };
            (Stream::Snapshots, texts)
        }
    };
    texts
        .into_iter()
        .map(|text| LogLine { stream, text })
        .collect()
}

struct Header<'a> {
    item: &'a ResultItem,
    host: &'a str,
    opts: &'a FormatOptions,
}

impl Header<'_> {
    /// The shared fields and decorations, each preceded by a comma except the first when
    /// `leading_comma` is false.
    fn push_fields(&self, out: &mut Vec<u8>, leading_comma: bool) {
        if leading_comma {
            out.push(b',');
        }
        push_name(out, "name");
        push_text(out, &self.item.name);
        out.push(b',');
        push_name(out, "hostIdentifier");
        push_text(out, self.host);
        out.push(b',');
        push_name(out, "calendarTime");
        push_text(out, &calendar_time(self.item.unix_time));
        let _ = write!(
            out,
            ",\"unixTime\":{},\"epoch\":{},\"counter\":{},\"numerics\":{}",
            self.item.unix_time, self.item.epoch, self.item.counter, self.opts.numerics
        );
        let decorations = &self.item.decorations;
        if decorations.is_empty() {
            return;
        }
        if self.opts.decorations_top_level {
            for (k, v) in decorations {
                out.push(b',');
                push_name(out, k);
                push_text(out, v);
            }
        } else {
            out.push(b',');
            push_name(out, "decorations");
            out.push(b'{');
            for (i, (k, v)) in decorations.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                push_name(out, k);
                push_text(out, v);
            }
            out.push(b'}');
        }
    }

    fn event(&self, row: &Row, action: &str, escape: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(b'{');
        self.push_fields(&mut out, false);
        out.push(b',');
        push_name(&mut out, "columns");
        push_row(&mut out, row, self.opts, escape);
        out.push(b',');
        push_name(&mut out, "action");
        push_text(&mut out, action);
        out.push(b'}');
        out
    }

    fn diff_batch(&self, added: &[Row], removed: &[Row]) -> Vec<u8> {
        let mut out = b"{\"diffResults\":{\"removed\":".to_vec();
        push_rows(&mut out, removed, self.opts, true);
        out.extend_from_slice(b",\"added\":");
        push_rows(&mut out, added, self.opts, true);
        out.push(b'}');
        self.push_fields(&mut out, true);
        out.push(b'}');
        out
    }

    fn snapshot_batch(&self, rows: &[Row], escape: bool) -> Vec<u8> {
        let mut out = b"{\"snapshot\":".to_vec();
        push_rows(&mut out, rows, self.opts, escape);
        out.extend_from_slice(b",\"action\":\"snapshot\"");
        self.push_fields(&mut out, true);
        out.push(b'}');
        out
    }
}

fn push_rows(out: &mut Vec<u8>, rows: &[Row], opts: &FormatOptions, escape: bool) {
    out.push(b'[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_row(out, row, opts, escape);
    }
    out.push(b']');
}

/// One row as a JSON object, columns in name order. `escape` applies osquery's
/// differential-results byte escaping; snapshots are logged unescaped, bytes that are
/// not UTF-8 included.
fn push_row(out: &mut Vec<u8>, row: &Row, opts: &FormatOptions, escape: bool) {
    out.push(b'{');
    for (i, (col, value)) in row.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_name(out, col);
        match value {
            Value::Null => push_text(out, &opts.nullvalue),
            Value::Integer(n) if opts.numerics => {
                let _ = write!(out, "{n}");
            }
            Value::Integer(n) => {
                let _ = write!(out, "\"{n}\"");
            }
            Value::Real(d) if opts.numerics => out.extend_from_slice(double(*d).as_bytes()),
            Value::Real(d) => push_text(out, &double_text(*d)),
            Value::Text(s) if escape => push_text(out, &escape_nonprintable(s.as_bytes())),
            Value::Text(s) => push_text(out, s),
            Value::Blob(b) if escape => push_text(out, &escape_nonprintable(b)),
            Value::Blob(b) => push_bytes(out, b),
        }
    }
    out.push(b'}');
}

/// osquery's escaping of differential-result text: control bytes (< 0x20) and bytes that
/// are not part of a valid UTF-8 sequence become `\xHH` (upper-case hex); valid UTF-8
/// passes through. The output is printable, so applying it twice changes nothing (the
/// diff stage may already have applied it).
pub fn escape_nonprintable(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_escaping_controls(&mut out, valid);
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                // SAFETY-free: `valid_up_to` guarantees this prefix is UTF-8.
                push_escaping_controls(&mut out, std::str::from_utf8(valid).unwrap_or(""));
                // One bad byte is escaped and scanning resumes after it, so the valid
                // sequence that may follow a truncated one is kept.
                let _ = write!(out, "\\x{:02X}", after[0]);
                rest = &after[1..];
            }
        }
    }
    out
}

fn push_escaping_controls(out: &mut String, s: &str) {
    for c in s.chars() {
        if (c as u32) < 0x20 {
            let _ = write!(out, "\\x{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

pub use oxquery_format::double_text;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// C `asctime` of the UTC time, trimmed, plus ` UTC`: `Tue Aug  6 21:46:12 2026 UTC`
/// (the day of the month is space-padded to two characters).
pub fn calendar_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{} {}{:>3} {:02}:{:02}:{:02} {} UTC",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        y
    )
}

/// Proleptic Gregorian (year, month 1-12, day 1-31) of a count of days since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One status record as the buffered (TLS-style) loggers send it:
/// `{"hostIdentifier":..,"calendarTime":..,"unixTime":..,"severity":N,"filename":..,
/// "line":N,"message":..,"version":..,"decorations":{..}}`.
#[allow(clippy::too_many_arguments)]
pub fn status_json_line(
    host: &str,
    unix_time: i64,
    severity: u8,
    filename: &str,
    line: u32,
    message: &str,
    version: &str,
    decorations: &crate::item::Decorations,
) -> String {
    let mut out = String::from("{");
    push_key(&mut out, "hostIdentifier");
    push_str(&mut out, host);
    out.push(',');
    push_key(&mut out, "calendarTime");
    push_str(&mut out, &calendar_time(unix_time));
    let _ = write!(out, ",\"unixTime\":{unix_time},\"severity\":{severity},");
    push_key(&mut out, "filename");
    push_str(&mut out, filename);
    let _ = write!(out, ",\"line\":{line},");
    push_key(&mut out, "message");
    push_str(&mut out, message);
    out.push(',');
    push_key(&mut out, "version");
    push_str(&mut out, version);
    out.push(',');
    push_key(&mut out, "decorations");
    out.push('{');
    for (i, (k, v)) in decorations.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_key(&mut out, k);
        push_str(&mut out, v);
    }
    out.push_str("}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_days_and_padding() {
        assert_eq!(calendar_time(0), "Thu Jan  1 00:00:00 1970 UTC");
        assert_eq!(calendar_time(1_786_052_772), "Thu Aug  6 21:46:12 2026 UTC");
        assert_eq!(calendar_time(951_782_400), "Tue Feb 29 00:00:00 2000 UTC");
        assert_eq!(calendar_time(-1), "Wed Dec 31 23:59:59 1969 UTC");
    }

    #[test]
    fn doubles_as_text() {
        assert_eq!(double_text(1.0), "1.0");
        assert_eq!(double_text(0.1), "0.1");
        assert_eq!(double_text(1234.5678), "1234.5678");
        assert_eq!(double_text(1.0 / 3.0), "0.333333333333333");
        assert_eq!(double_text(1e20), "1e+20.0");
        assert_eq!(double_text(123456789012345678.0), "1.23456789012346e+17");
        assert_eq!(double_text(-0.5), "-0.5");
    }

    #[test]
    fn escaping_bytes() {
        assert_eq!(escape_nonprintable(b"a\tb\n"), "a\\x09b\\x0A");
        assert_eq!(escape_nonprintable("é😀".as_bytes()), "é😀");
        assert_eq!(escape_nonprintable(b"\xff\xc3"), "\\xFF\\xC3");
        assert_eq!(escape_nonprintable(b"\xe2\x82x"), "\\xE2\\x82x");
        assert_eq!(escape_nonprintable(b"\xed\xa0\x80"), "\\xED\\xA0\\x80");
        let once = escape_nonprintable(b"\x01\xfe");
        assert_eq!(escape_nonprintable(once.as_bytes()), once);
    }
}
