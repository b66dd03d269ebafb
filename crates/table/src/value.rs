//! Typed cell values.

use std::borrow::Cow;
use std::fmt;

/// `std::str::from_utf8`, quicker on the short ASCII text most cells hold: the standard
/// check goes byte by byte below 16 bytes, `is_ascii` a word at a time. For the paths
/// every cell of a result passes through.
#[inline]
pub fn str_from_utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    if bytes.is_ascii() {
        // SAFETY: ASCII text is valid UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}

/// One cell. Tables produce integers as integers and text as text; unknown is `Null`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    /// Bytes: a BLOB, or text that is not UTF-8 (a file name may hold any bytes). In a
    /// table's TEXT column the engine hands them to SQLite as TEXT, unchanged.
    Blob(Vec<u8>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as text, as a constraint expression is compared (integers in decimal).
    pub fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Null => None,
            Value::Integer(i) => Some(Cow::Owned(i.to_string())),
            Value::Real(f) => Some(Cow::Owned(f.to_string())),
            Value::Text(s) => Some(Cow::Borrowed(s)),
            Value::Blob(b) => Some(String::from_utf8_lossy(b)),
        }
    }

    /// The value's bytes as a constraint holds them: text as it is (UTF-8 or not),
    /// numbers in decimal. What a path constraint needs: `a\xff` and `a\xfe` stay apart.
    pub fn as_bytes(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            Value::Text(s) => Some(Cow::Borrowed(s.as_bytes())),
            Value::Blob(b) => Some(Cow::Borrowed(b)),
            other => other
                .as_text()
                .map(|t| Cow::Owned(t.into_owned().into_bytes())),
        }
    }

    /// Text from bytes that may not be UTF-8: `Text` when they are, else `Blob` with the
    /// bytes unchanged (never U+FFFD).
    pub fn from_bytes(bytes: Vec<u8>) -> Value {
        match String::from_utf8(bytes) {
            Ok(text) => Value::Text(text),
            Err(e) => Value::Blob(e.into_bytes()),
        }
    }

    /// The value as an integer, parsing text the way SQLite's integer affinity would.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            Value::Real(f) if f.fract() == 0.0 => Some(*f as i64),
            Value::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Real(r) => write!(f, "{r}"),
            Value::Text(s) => f.write_str(s),
            Value::Blob(b) => f.write_str(&String::from_utf8_lossy(b)),
        }
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Integer(v as i64) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, isize);

impl From<u64> for Value {
    /// Values beyond `i64::MAX` wrap to negative, as SQLite stores UNSIGNED BIGINT.
    fn from(v: u64) -> Self {
        Value::Integer(v as i64)
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Integer(v as i64)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(v as i64)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<Cow<'_, str>> for Value {
    fn from(v: Cow<'_, str>) -> Self {
        Value::Text(v.into_owned())
    }
}
/// A path keeps its bytes ([`Value::from_bytes`]).
impl From<&std::path::Path> for Value {
    fn from(v: &std::path::Path) -> Self {
        Value::from_bytes(std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec())
    }
}
impl From<std::path::PathBuf> for Value {
    fn from(v: std::path::PathBuf) -> Self {
        Value::from_bytes(std::os::unix::ffi::OsStringExt::into_vec(
            v.into_os_string(),
        ))
    }
}
impl From<&std::ffi::OsStr> for Value {
    fn from(v: &std::ffi::OsStr) -> Self {
        Value::from(std::path::Path::new(v))
    }
}
impl From<std::ffi::OsString> for Value {
    fn from(v: std::ffi::OsString) -> Self {
        Value::from(std::path::PathBuf::from(v))
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
