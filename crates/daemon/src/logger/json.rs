//! Hand-written JSON output matching osquery's serializer (RapidJSON) byte for byte.
//!
//! A general JSON library is not used because the bytes differ in details log pipelines
//! may key on: RapidJSON escapes control characters as `\u001F` (upper-case hex), leaves
//! `/`, DEL and non-ASCII text unescaped, writes doubles with its own shortest-digits
//! layout, and keeps duplicate keys (which `--decorations_top_level` can produce).

use std::fmt::Write as _;

/// Appends `s` as a JSON string literal, quotes included.
pub fn push_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            0x08 => Some("\\b"),
            0x09 => Some("\\t"),
            0x0A => Some("\\n"),
            0x0C => Some("\\f"),
            0x0D => Some("\\r"),
            0x00..=0x1F => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u00{b:02X}");
            }
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

/// A double as RapidJSON's writer prints it (used for `--logger_numerics`): the shortest
/// digits that round-trip, laid out as RapidJSON's `Prettify` does (`1.0`, `0.001234`,
/// `1e30`, `1.234e-7`; decimal notation up to 21 integer digits). Non-finite values have
/// no JSON form; RapidJSON refuses them and we write `null`.
pub fn double_json(d: f64) -> String {
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

/// A double as osquery's result serialization turns it into text when numerics are off:
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
        assert_eq!(js("a\"b\\c/d"), r#""a\"b\\c/d""#);
        assert_eq!(js("\u{8}\t\n\u{c}\r"), r#""\b\t\n\f\r""#);
        assert_eq!(js("\u{0}\u{1f}\u{b}"), r#""\u0000\u001F\u000B""#);
        assert_eq!(js("\u{7f}é😀"), "\"\u{7f}é😀\"");
    }

    #[test]
    fn doubles_as_json_numbers() {
        assert_eq!(double_json(1.0), "1.0");
        assert_eq!(double_json(-2.5), "-2.5");
        assert_eq!(double_json(0.0), "0.0");
        assert_eq!(double_json(0.1), "0.1");
        assert_eq!(double_json(0.001234), "0.001234");
        assert_eq!(double_json(1.5e-7), "1.5e-7");
        assert_eq!(double_json(1e-7), "1e-7");
        assert_eq!(double_json(123456789012.0), "123456789012.0");
        assert_eq!(double_json(1e21), "1e21");
        assert_eq!(double_json(1.234e33), "1.234e33");
        assert_eq!(double_json(1e20), "100000000000000000000.0");
        assert_eq!(double_json(f64::INFINITY), "null");
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
}
