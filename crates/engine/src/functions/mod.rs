//! osquery's SQL functions, registered on every connection.
//!
//! Arguments are read the way osquery's C++ reads them through `sqlite3_value_*`
//! (numbers become text, text becomes numbers by its numeric prefix), so results
//! match osquery for mixed-type input too. Every failure is an SQL error with
//! osquery's message; nothing here panics on user input.

pub(crate) mod carve;
mod community_id;
mod container;
mod encoding;
mod filesystem;
mod math;
mod network;
mod string;
mod version;

use rusqlite::Connection;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use std::borrow::Cow;

/// Registers every function on `conn`.
pub(crate) fn register(conn: &Connection) -> rusqlite::Result<()> {
    math::register(conn)?;
    string::register(conn)?;
    encoding::register(conn)?;
    community_id::register(conn)?;
    container::register(conn)?;
    network::register(conn)?;
    version::register(conn)?;
    filesystem::register(conn)?;
    // Not deterministic: it has a side effect (time passes).
    conn.create_scalar_function("sleep", 1, FunctionFlags::SQLITE_UTF8, |ctx| sleep(ctx))?;
    Ok(())
}

/// The shape every function here has.
pub(crate) type ScalarFn = fn(&Context<'_>) -> rusqlite::Result<Out>;

/// Registers a deterministic scalar function.
pub(crate) fn add(conn: &Connection, name: &str, n_arg: i32, f: ScalarFn) -> rusqlite::Result<()> {
    conn.create_scalar_function(name, n_arg, deterministic(), move |ctx| f(ctx))
}

/// Flags for every function except `sleep`.
pub(crate) fn deterministic() -> FunctionFlags {
    FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC
}

/// A function result. Text is bytes because osquery returns whatever bytes it
/// computed (decoded base64, split pieces) without UTF-8 validation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    Null,
    Int(i64),
    Real(f64),
    Text(Vec<u8>),
}

impl Out {
    pub(crate) fn text(t: impl Into<Vec<u8>>) -> Out {
        Out::Text(t.into())
    }
}

impl ToSql for Out {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Out::Null => ValueRef::Null,
            Out::Int(i) => ValueRef::Integer(*i),
            Out::Real(f) => ValueRef::Real(*f),
            Out::Text(t) => ValueRef::Text(t),
        }))
    }
}

/// An SQL error carrying exactly `msg` as its message.
pub(crate) fn fail<T>(msg: impl Into<String>) -> rusqlite::Result<T> {
    Err(rusqlite::Error::UserFunctionError(msg.into().into()))
}

/// `sqlite3_value_text` + `sqlite3_value_bytes`: the full bytes of the value as text.
pub(crate) fn text_bytes(v: ValueRef<'_>) -> Cow<'_, [u8]> {
    match v {
        ValueRef::Null => Cow::Borrowed(&[]),
        ValueRef::Integer(i) => Cow::Owned(i.to_string().into_bytes()),
        ValueRef::Real(f) => Cow::Owned(crate::format_real(f).into_bytes()),
        ValueRef::Text(t) | ValueRef::Blob(t) => Cow::Borrowed(t),
    }
}

/// The value as a C string, which is how osquery reads most arguments: text ends
/// at the first NUL byte.
pub(crate) fn c_text(v: ValueRef<'_>) -> Cow<'_, [u8]> {
    match text_bytes(v) {
        Cow::Borrowed(t) => Cow::Borrowed(until_nul(t)),
        Cow::Owned(t) => Cow::Owned(until_nul(&t).to_vec()),
    }
}

fn until_nul(t: &[u8]) -> &[u8] {
    match t.iter().position(|c| *c == 0) {
        Some(end) => &t[..end],
        None => t,
    }
}

/// C's `isspace` in the C locale.
pub(crate) fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `sqlite3_value_double`: text and blobs convert by their longest numeric prefix.
pub(crate) fn value_double(v: ValueRef<'_>) -> f64 {
    match v {
        ValueRef::Null => 0.0,
        ValueRef::Integer(i) => i as f64,
        ValueRef::Real(f) => f,
        ValueRef::Text(t) | ValueRef::Blob(t) => parse_real_prefix(t),
    }
}

/// `sqlite3_value_int64`: reals truncate (saturating), text by its integer prefix.
pub(crate) fn value_int64(v: ValueRef<'_>) -> i64 {
    match v {
        ValueRef::Null => 0,
        ValueRef::Integer(i) => i,
        ValueRef::Real(f) => f as i64,
        ValueRef::Text(t) | ValueRef::Blob(t) => parse_int_prefix(t),
    }
}

/// `sqlite3_value_int`: the low 32 bits of the 64-bit value, as SQLite does.
pub(crate) fn value_int(v: ValueRef<'_>) -> i32 {
    value_int64(v) as i32
}

/// Skips leading whitespace and returns the optional sign and the rest.
fn sign_and_rest(t: &[u8]) -> (bool, &[u8]) {
    let start = t.iter().position(|c| !is_c_space(*c)).unwrap_or(t.len());
    let t = &t[start..];
    match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    }
}

fn parse_int_prefix(t: &[u8]) -> i64 {
    let (negative, rest) = sign_and_rest(t);
    let mut value: i128 = 0;
    for c in rest.iter().take_while(|c| c.is_ascii_digit()) {
        value = (value * 10 + i128::from(c - b'0')).min(i128::from(i64::MAX) + 1);
    }
    let value = if negative { -value } else { value };
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn parse_real_prefix(t: &[u8]) -> f64 {
    let (negative, rest) = sign_and_rest(t);
    let digits =
        |s: &[u8], from: usize| from + s[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let int_end = digits(rest, 0);
    let mut end = int_end;
    let mut mantissa_digits = int_end;
    if rest.get(end) == Some(&b'.') {
        let frac_end = digits(rest, end + 1);
        mantissa_digits += frac_end - end - 1;
        end = frac_end;
    }
    if mantissa_digits == 0 {
        return 0.0;
    }
    if matches!(rest.get(end), Some(b'e' | b'E')) {
        let mut exp = end + 1;
        if matches!(rest.get(exp), Some(b'+' | b'-')) {
            exp += 1;
        }
        let exp_end = digits(rest, exp);
        if exp_end > exp {
            end = exp_end;
        }
    }
    let value = std::str::from_utf8(&rest[..end])
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    if negative { -value } else { value }
}

/// `sleep(n)`: sleeps n seconds and returns n; negative → 0 without sleeping.
fn sleep(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    let seconds = value_int(ctx.get_raw(0));
    if seconds <= 0 {
        return Ok(Out::Int(0));
    }
    std::thread::sleep(std::time::Duration::from_secs(seconds as u64));
    Ok(Out::Int(i64::from(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_prefixes_follow_sqlite() {
        assert_eq!(parse_real_prefix(b"  2.5abc"), 2.5);
        assert_eq!(parse_real_prefix(b"-1e3x"), -1000.0);
        assert_eq!(parse_real_prefix(b"1e"), 1.0);
        assert_eq!(parse_real_prefix(b".5"), 0.5);
        assert_eq!(parse_real_prefix(b"abc"), 0.0);
        assert_eq!(parse_real_prefix(b"inf"), 0.0);
        assert_eq!(parse_int_prefix(b" 42.9"), 42);
        assert_eq!(parse_int_prefix(b"-7x"), -7);
        assert_eq!(parse_int_prefix(b"99999999999999999999"), i64::MAX);
        assert_eq!(parse_int_prefix(b"-99999999999999999999"), i64::MIN);
        assert_eq!(value_int(ValueRef::Integer(1 << 32 | 5)), 5);
    }

    #[test]
    fn c_text_stops_at_nul() {
        assert_eq!(&*c_text(ValueRef::Text(b"ab\0cd")), b"ab");
        assert_eq!(&*c_text(ValueRef::Integer(-12)), b"-12");
        assert_eq!(&*c_text(ValueRef::Real(1.5)), b"1.5");
    }
}
