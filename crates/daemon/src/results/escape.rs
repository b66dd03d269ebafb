//! osquery's escaping of differential string values: control bytes and bytes that are
//! not valid UTF-8 become `\xHH`, so every logged and stored value is printable UTF-8.

use crate::item::Row;
use oxquery_table::Value;
use std::fmt::Write as _;

fn push_escaped(out: &mut String, byte: u8) {
    // Uppercase hex digits, as osquery writes them.
    let _ = write!(out, "\\x{byte:02X}");
}

fn escape_str_into(out: &mut String, s: &str) {
    for c in s.chars() {
        if (c as u32) < 0x20 {
            push_escaped(out, c as u8);
        } else {
            out.push(c);
        }
    }
}

/// Escapes raw bytes (a BLOB, or text from a source that is not UTF-8).
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        escape_str_into(&mut out, chunk.valid());
        for &b in chunk.invalid() {
            push_escaped(&mut out, b);
        }
    }
    out
}

/// Escapes one value; BLOBs become escaped text (osquery has no binary column values).
pub fn escape_value(value: Value) -> Value {
    match value {
        Value::Text(s) if s.bytes().any(|b| b < 0x20) => {
            let mut out = String::with_capacity(s.len() + 8);
            escape_str_into(&mut out, &s);
            Value::Text(out)
        }
        Value::Blob(b) => Value::Text(escape_bytes(&b)),
        other => other,
    }
}

/// Escapes every value of a row in place.
pub fn escape_row(row: &mut Row) {
    for value in row.values_mut() {
        if matches!(value, Value::Text(_) | Value::Blob(_)) {
            *value = escape_value(std::mem::take(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_and_invalid_utf8_are_escaped() {
        assert_eq!(
            escape_value(Value::Text("a\tb\n\u{1f}é\u{7f}".into())),
            Value::Text("a\\x09b\\x0A\\x1Fé\u{7f}".into())
        );
        assert_eq!(
            escape_value(Value::Blob(vec![b'o', 0xff, b'k', 0xc3, 0xa9, 0xc3, 0])),
            Value::Text("o\\xFFké\\xC3\\x00".into())
        );
        assert_eq!(escape_value(Value::Integer(7)), Value::Integer(7));
        assert_eq!(
            escape_value(Value::Text("plain \\x41".into())),
            Value::Text("plain \\x41".into())
        );
    }
}
