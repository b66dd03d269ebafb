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
//! ask it to validate). Text reaches these functions as `&str`, so such bytes have
//! already become U+FFFD where the value was read; callers that escape them first (the
//! daemon's differential results) do so before writing.

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal, quotes included.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x09 => "\\t",
            0x0A => "\\n",
            0x0C => "\\f",
            0x0D => "\\r",
            0x00..=0x1F => "",
            _ => continue,
        };
        // Every byte handled here is ASCII, so `i` is a character boundary.
        out.push_str(&s[start..i]);
        if short.is_empty() {
            let _ = write!(out, "\\u00{b:02X}");
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
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
    Str(&'a str),
    Int(i64),
    /// Written with [`double`].
    Real(f64),
    Null,
}

/// Appends one value.
pub fn push_scalar(out: &mut String, value: Scalar<'_>) {
    match value {
        Scalar::Str(s) => push_str(out, s),
        Scalar::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Scalar::Real(d) => out.push_str(&double(d)),
        Scalar::Null => out.push_str("null"),
    }
}

/// Appends a flat object, compact: `{"a":"1","b":2}`.
pub fn push_object<'a>(out: &mut String, members: impl IntoIterator<Item = (&'a str, Scalar<'a>)>) {
    out.push('{');
    for (i, (key, value)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_key(out, key);
        push_scalar(out, value);
    }
    out.push('}');
}

/// Appends an array of flat objects as RapidJSON's `PrettyWriter` with an indent of two
/// spaces writes it (osquery's `--json_pretty`): one member per line, `": "` between key
/// and value, and `[]`/`{}` for an empty array or object.
pub fn push_objects_pretty<'a, O, M>(out: &mut String, objects: O)
where
    O: IntoIterator<Item = M>,
    M: IntoIterator<Item = (&'a str, Scalar<'a>)>,
{
    out.push('[');
    let mut any_object = false;
    for object in objects {
        out.push_str(if any_object { ",\n  " } else { "\n  " });
        any_object = true;
        out.push('{');
        let mut any_member = false;
        for (key, value) in object {
            out.push_str(if any_member { ",\n    " } else { "\n    " });
            any_member = true;
            push_str(out, key);
            out.push_str(": ");
            push_scalar(out, value);
        }
        if any_member {
            out.push_str("\n  ");
        }
        out.push('}');
    }
    if any_object {
        out.push('\n');
    }
    out.push(']');
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
        // DEL, non-ASCII and U+FFFD (what invalid UTF-8 became) pass through.
        assert_eq!(js("\u{7f}é😀\u{fffd}"), "\"\u{7f}é😀\u{fffd}\"");
        assert_eq!(js(""), "\"\"");
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
        let mut out = String::new();
        push_object(
            &mut out,
            [
                ("s", Scalar::Str("x\u{1f}")),
                ("i", Scalar::Int(-7)),
                ("r", Scalar::Real(1.5)),
                ("n", Scalar::Null),
                ("s", Scalar::Str("dup")),
            ],
        );
        assert_eq!(out, r#"{"s":"x\u001F","i":-7,"r":1.5,"n":null,"s":"dup"}"#);
        out.clear();
        push_object(&mut out, []);
        assert_eq!(out, "{}");
    }

    #[test]
    fn pretty_arrays() {
        let mut out = String::new();
        let rows = [
            vec![("a", Scalar::Str("1")), ("b", Scalar::Int(2))],
            vec![],
            vec![("q\"", Scalar::Null)],
        ];
        push_objects_pretty(&mut out, rows.iter().map(|r| r.iter().copied()));
        assert_eq!(
            out,
            "[\n  {\n    \"a\": \"1\",\n    \"b\": 2\n  },\n  {},\n  {\n    \"q\\\"\": null\n  }\n]"
        );
        out.clear();
        push_objects_pretty(&mut out, std::iter::empty::<[(&str, Scalar<'_>); 0]>());
        assert_eq!(out, "[]");
    }
}
