//! JSON written as osquery's serializer (RapidJSON's `Writer`/`PrettyWriter`) writes it.
//!
//! A general JSON library is not used because its bytes differ in details that log
//! pipelines and scripts may key on. RapidJSON, with osquery's settings:
//! * escapes `"` and `\`, writes `\b \t \n \f \r` for those controls and `\u00XX` with
//!   upper-case hex for the other bytes below 0x20 (serde_json writes `\u001f`);
//! * leaves `/`, DEL (0x7F) and all non-ASCII text as it is;
//! * writes doubles with its own shortest-digits layout ([`double`]);
//! * keeps members in the order they were added, duplicates included.
//!
//! RapidJSON copies bytes that are not valid UTF-8 through unchanged (osquery does not
//! ask it to validate), and so does [`push_bytes`]: a file name with a `\xff` byte comes
//! out with that byte. [`push_str`] writes into a `String` and so only ever sees UTF-8.

use std::fmt::Write as _;
use std::ops::Range;

/// One piece of an escaped string: a run copied as it is, or the escape for one byte.
enum Piece {
    Copy(Range<usize>),
    Short(&'static str),
    /// `\u00XX`.
    Control(u8),
}

/// Splits `s` into what RapidJSON copies and what it escapes. Every escaped byte is
/// ASCII, so each copied run of a `&str` starts and ends on a character boundary.
fn escape(s: &[u8], mut emit: impl FnMut(Piece)) {
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let piece = match b {
            b'"' => Piece::Short("\\\""),
            b'\\' => Piece::Short("\\\\"),
            0x08 => Piece::Short("\\b"),
            0x09 => Piece::Short("\\t"),
            0x0A => Piece::Short("\\n"),
            0x0C => Piece::Short("\\f"),
            0x0D => Piece::Short("\\r"),
            0x00..=0x1F => Piece::Control(b),
            _ => continue,
        };
        if start < i {
            emit(Piece::Copy(start..i));
        }
        emit(piece);
        start = i + 1;
    }
    if start < s.len() {
        emit(Piece::Copy(start..s.len()));
    }
}

/// Appends `s` as a JSON string literal, quotes included.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    escape(s.as_bytes(), |piece| match piece {
        Piece::Copy(run) => out.push_str(&s[run]),
        Piece::Short(e) => out.push_str(e),
        Piece::Control(b) => {
            let _ = write!(out, "\\u00{b:02X}");
        }
    });
    out.push('"');
}

/// Appends `s`, which may hold bytes that are not UTF-8, as a JSON string literal, quotes
/// included; such bytes are copied as they are, as osquery's writer does.
pub fn push_bytes(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    escape(s, |piece| match piece {
        Piece::Copy(run) => out.extend_from_slice(&s[run]),
        Piece::Short(e) => out.extend_from_slice(e.as_bytes()),
        Piece::Control(b) => {
            let _ = std::io::Write::write_fmt(out, format_args!("\\u00{b:02X}"));
        }
    });
    out.push(b'"');
}

/// Appends `"key":`.
pub fn push_key(out: &mut String, key: &str) {
    push_str(out, key);
    out.push(':');
}

/// A double as RapidJSON's writer prints it: the shortest digits that round-trip, laid
/// out as its `Prettify` does (`1.0`, `0.001234`, `1e30`, `1.234e-7`; decimal notation up
/// to 21 integer digits). Non-finite values have no JSON form; RapidJSON refuses them
/// and this writes `null`.
pub fn double(d: f64) -> String {
    if !d.is_finite() {
        return "null".to_owned();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // `{:e}` gives the shortest round-trip digits: `d.ddde±x`.
    let sci = format!("{:e}", d.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let length = digits.len() as i32;
    // value = digits × 10^k; 10^(kk-1) <= value < 10^kk
    let k = exp - (length - 1);
    let kk = length + k;
    let mut out = String::new();
    if d < 0.0 {
        out.push('-');
    }
    if 0 <= k && kk <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', k as usize));
        out.push_str(".0");
    } else if 0 < kk && kk <= 21 {
        out.push_str(&digits[..kk as usize]);
        out.push('.');
        out.push_str(&digits[kk as usize..]);
    } else if -6 < kk && kk <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-kk) as usize));
        out.push_str(&digits);
    } else if length == 1 {
        let _ = write!(out, "{digits}e{}", kk - 1);
    } else {
        let _ = write!(out, "{}.{}e{}", &digits[..1], &digits[1..], kk - 1);
    }
    out
}

/// One member value of a flat object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scalar<'a> {
    /// Text as SQLite holds it: usually UTF-8, but a file name may not be.
    Str(&'a [u8]),
    Int(i64),
    /// Written with [`double`].
    Real(f64),
    Null,
}

/// Appends one value.
pub fn push_scalar(out: &mut Vec<u8>, value: Scalar<'_>) {
    match value {
        Scalar::Str(s) => push_bytes(out, s),
        Scalar::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Scalar::Real(d) => out.extend_from_slice(double(d).as_bytes()),
        Scalar::Null => out.extend_from_slice(b"null"),
    }
}

/// Appends a flat object, compact: `{"a":"1","b":2}`.
pub fn push_object<'a>(
    out: &mut Vec<u8>,
    members: impl IntoIterator<Item = (&'a str, Scalar<'a>)>,
) {
    out.push(b'{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_bytes(out, key.as_bytes());
        out.push(b':');
        push_scalar(out, value);
    }
    out.push(b'}');
}

/// Appends an array of flat objects as RapidJSON's `PrettyWriter` with an indent of two
/// spaces writes it (osquery's `--json_pretty`): one member per line, `": "` between key
/// and value, and `[]`/`{}` for an empty array or object.
pub fn push_objects_pretty<'a, O, M>(out: &mut Vec<u8>, objects: O)
where
    O: IntoIterator<Item = M>,
    M: IntoIterator<Item = (&'a str, Scalar<'a>)>,
{
    out.push(b'[');
    let mut any_object = false;
    for object in objects {
        out.extend_from_slice(if any_object { b",\n  " } else { b"\n  " });
        any_object = true;
        out.push(b'{');
        let mut any_member = false;
        for (key, value) in object {
            out.extend_from_slice(if any_member { b",\n    " } else { b"\n    " });
            any_member = true;
            push_bytes(out, key.as_bytes());
            out.extend_from_slice(b": ");
            push_scalar(out, value);
        }
        if any_member {
            out.extend_from_slice(b"\n  ");
        }
        out.push(b'}');
    }
    if any_object {
        out.push(b'\n');
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn js(s: &str) -> String {
        let mut out = String::new();
        push_str(&mut out, s);
        out
    }

    #[test]
    fn string_escapes_match_rapidjson() {
        // Quote and backslash escaped; `/` is not.
        assert_eq!(js("a\"b\\c/d"), r#""a\"b\\c/d""#);
        assert_eq!(js("\u{8}\t\n\u{c}\r"), r#""\b\t\n\f\r""#);
        // Other controls: \u00XX, upper-case hex.
        assert_eq!(
            js("\u{0}\u{1f}\u{b}\u{1b}"),
            r#""\u0000\u001F\u000B\u001B""#
        );
        // DEL, non-ASCII and U+FFFD pass through.
        assert_eq!(js("\u{7f}é😀\u{fffd}"), "\"\u{7f}é😀\u{fffd}\"");
        assert_eq!(js(""), "\"\"");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_copied() {
        let mut out = Vec::new();
        push_bytes(&mut out, b"a\xff\x1f\"\xfe\\z");
        assert_eq!(out, b"\"a\xff\\u001F\\\"\xfe\\\\z\"");
        // The same escapes as for text.
        for text in ["a\"b\\c/d", "\u{8}\t\n\u{c}\r", "\u{0}\u{1f}", "é😀", ""] {
            let mut bytes = Vec::new();
            push_bytes(&mut bytes, text.as_bytes());
            assert_eq!(bytes, js(text).into_bytes());
        }
    }

    #[test]
    fn doubles_as_rapidjson_writes_them() {
        assert_eq!(double(1.0), "1.0");
        assert_eq!(double(-2.5), "-2.5");
        assert_eq!(double(0.0), "0.0");
        assert_eq!(double(-0.0), "-0.0");
        assert_eq!(double(0.1), "0.1");
        assert_eq!(double(0.001234), "0.001234");
        assert_eq!(double(1.5e-7), "1.5e-7");
        assert_eq!(double(1e-7), "1e-7");
        assert_eq!(double(123456789012.0), "123456789012.0");
        assert_eq!(double(1e21), "1e21");
        assert_eq!(double(1.234e33), "1.234e33");
        assert_eq!(double(1e20), "100000000000000000000.0");
        assert_eq!(double(1e300), "1e300");
        assert_eq!(double(f64::INFINITY), "null");
        assert_eq!(double(f64::NAN), "null");
    }

    #[test]
    fn compact_objects() {
        let mut out = Vec::new();
        push_object(
            &mut out,
            [
                ("s", Scalar::Str(b"x\x1f")),
                ("i", Scalar::Int(-7)),
                ("r", Scalar::Real(1.5)),
                ("n", Scalar::Null),
                ("s", Scalar::Str(b"dup\xff")),
            ],
        );
        assert_eq!(
            out,
            b"{\"s\":\"x\\u001F\",\"i\":-7,\"r\":1.5,\"n\":null,\"s\":\"dup\xff\"}"
        );
        out.clear();
        push_object(&mut out, []);
        assert_eq!(out, b"{}");
    }

    #[test]
    fn pretty_arrays() {
        let mut out = Vec::new();
        let rows = [
            vec![("a", Scalar::Str(b"1")), ("b", Scalar::Int(2))],
            vec![],
            vec![("q\"", Scalar::Null)],
        ];
        push_objects_pretty(&mut out, rows.iter().map(|r| r.iter().copied()));
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "[\n  {\n    \"a\": \"1\",\n    \"b\": 2\n  },\n  {},\n  {\n    \"q\\\"\": null\n  }\n]"
        );
        out.clear();
        push_objects_pretty(&mut out, std::iter::empty::<[(&str, Scalar<'_>); 0]>());
        assert_eq!(out, b"[]");
    }
}
