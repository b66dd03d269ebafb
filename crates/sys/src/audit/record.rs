//! Pure parsers for the text of one audit record: the `audit(TIME:SERIAL): ` header, the
//! `key=value` fields after it, the value encodings the kernel uses for untrusted strings
//! (quoted, hex or `(null)`), and the `saddr=` socket address.
//!
//! Everything works on bytes: a record's text is not guaranteed to be UTF-8 (a quoted
//! value is copied from user memory as is when it has no character that forces hex).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// When an event happened, from the record header: unix seconds and milliseconds (the
/// kernel prints exactly three fractional digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct AuditTime {
    pub secs: u64,
    pub millis: u32,
}

/// A record's header: `audit(1733490000.123:456): `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub time: AuditTime,
    /// The event serial the kernel gives every record of one event.
    pub serial: u64,
}

/// Splits `audit(SECS.MILLIS:SERIAL): BODY` into its header and body. Text before
/// `audit(` is allowed (the daemon's `type=... msg=` prefix in log lines). `None` when the
/// header is missing or malformed.
pub fn parse_header(text: &[u8]) -> Option<(RecordHeader, &[u8])> {
    let start = memchr::memmem::find(text, b"audit(")? + b"audit(".len();
    let rest = &text[start..];
    let close = memchr::memchr(b')', rest)?;
    let inner = &rest[..close];
    let colon = memchr::memchr(b':', inner)?;
    let (stamp, serial) = (&inner[..colon], &inner[colon + 1..]);
    let serial = parse_decimal(serial)?;
    let (secs, millis) = match memchr::memchr(b'.', stamp) {
        Some(dot) => {
            let frac = &stamp[dot + 1..];
            // Keep milliseconds whatever the number of digits printed.
            let mut millis = 0u32;
            let mut scale = 100u32;
            for &b in frac {
                if !b.is_ascii_digit() {
                    return None;
                }
                millis += u32::from(b - b'0') * scale;
                scale /= 10;
            }
            (parse_decimal(&stamp[..dot])?, millis)
        }
        None => (parse_decimal(stamp)?, 0),
    };
    let mut body = &rest[close + 1..];
    body = body.strip_prefix(b":").unwrap_or(body);
    Some((
        RecordHeader {
            time: AuditTime { secs, millis },
            serial,
        },
        trim(body),
    ))
}

/// One `key=value` field of a record body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    pub key: &'a [u8],
    pub value: Value<'a>,
}

/// A field's value as written in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value<'a> {
    /// The text between the quotes, or the whole unquoted value.
    pub raw: &'a [u8],
    /// `"..."` (an untrusted string without special characters) or `'...'` (the nested
    /// `msg='...'` of user messages).
    pub quoted: bool,
}

impl<'a> Value<'a> {
    /// The value of a field holding an untrusted string (`comm`, `exe`, `name`, `cwd`,
    /// `a0`, `proctitle`...): the quoted text, the decoded hex, or `None` for `(null)`.
    /// An unquoted value that is not valid hex (`?`, a terminal name) is returned as is.
    pub fn string(&self) -> Option<Vec<u8>> {
        if self.quoted {
            return Some(self.raw.to_vec());
        }
        if self.raw == b"(null)" {
            return None;
        }
        Some(decode_hex(self.raw).unwrap_or_else(|| self.raw.to_vec()))
    }

    /// A decimal number (`pid=`, `uid=`, `exit=-2`).
    pub fn decimal(&self) -> Option<i64> {
        let (neg, digits) = match self.raw.strip_prefix(b"-") {
            Some(d) => (true, d),
            None => (false, self.raw),
        };
        let n = i64::try_from(parse_decimal(digits)?).ok()?;
        Some(if neg { -n } else { n })
    }

    /// A hexadecimal number without `0x` (`arch=c000003e`, `a0=7ffd...`), or with it
    /// (`ip=0x7f...`, `code=0x7ffc0000`).
    pub fn hex(&self) -> Option<u64> {
        let digits = self.raw.strip_prefix(b"0x").unwrap_or(self.raw);
        if digits.is_empty() || digits.len() > 16 {
            return None;
        }
        let text = std::str::from_utf8(digits).ok()?;
        u64::from_str_radix(text, 16).ok()
    }

    /// An octal number (`mode=0100755`).
    pub fn octal(&self) -> Option<u64> {
        let text = std::str::from_utf8(self.raw).ok()?;
        if text.is_empty() {
            return None;
        }
        u64::from_str_radix(text, 8).ok()
    }

    /// The raw value as text, lossily (for fields that are plain words: `success=yes`).
    pub fn text(&self) -> std::borrow::Cow<'a, str> {
        String::from_utf8_lossy(self.raw)
    }
}

/// The `key=value` fields of a record body, in order. Words without `=` (the `avc:
/// denied { read } for` of SELinux records) are skipped; a value runs to the next space,
/// or to the closing quote when it starts with `"` or `'`. An unterminated quote takes
/// the rest of the text (a truncated record still yields what it has).
pub fn fields(body: &[u8]) -> Fields<'_> {
    Fields { rest: body }
}

/// Iterator returned by [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        loop {
            let start = self.rest.iter().position(|b| !is_space(*b))?;
            let text = &self.rest[start..];
            // The word up to the next space or '='.
            let word_end = text
                .iter()
                .position(|b| is_space(*b) || *b == b'=')
                .unwrap_or(text.len());
            if word_end == text.len() || text[word_end] != b'=' || word_end == 0 {
                // A bare word (or a stray `=`): skip it.
                let skip = text.iter().position(|b| is_space(*b)).unwrap_or(text.len());
                self.rest = &text[skip..];
                continue;
            }
            let key = &text[..word_end];
            let after = &text[word_end + 1..];
            let (value, consumed) = match after.first() {
                Some(&quote @ (b'"' | b'\'')) => {
                    let inner = &after[1..];
                    match memchr::memchr(quote, inner) {
                        Some(end) => (
                            Value {
                                raw: &inner[..end],
                                quoted: true,
                            },
                            end + 2,
                        ),
                        None => (
                            Value {
                                raw: inner,
                                quoted: true,
                            },
                            after.len(),
                        ),
                    }
                }
                _ => {
                    let end = after
                        .iter()
                        .position(|b| is_space(*b))
                        .unwrap_or(after.len());
                    (
                        Value {
                            raw: &after[..end],
                            quoted: false,
                        },
                        end,
                    )
                }
            };
            self.rest = &after[consumed..];
            return Some(Field { key, value });
        }
    }
}

/// The first field named `key`.
pub fn field<'a>(body: &'a [u8], key: &str) -> Option<Value<'a>> {
    fields(body)
        .find(|f| f.key == key.as_bytes())
        .map(|f| f.value)
}

/// Decodes the kernel's hex encoding of an untrusted string (`2F62696E` → `/bin`):
/// `None` unless the text is a non-empty, even number of hex digits.
pub fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    text.chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// A socket address from a `SOCKADDR` record's `saddr=` (the hex of the `struct
/// sockaddr` the program passed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockAddr {
    /// `AF_INET` / `AF_INET6` with the port in host order.
    Inet { address: IpAddr, port: u16 },
    /// `AF_UNIX`: the path bytes up to the first NUL; an abstract name (leading NUL)
    /// keeps its leading NUL and runs to the end of the given length.
    Unix { path: Vec<u8> },
    /// Any other family (netlink, packet...): its number only.
    Other { family: u16 },
}

impl SockAddr {
    /// The address family number (`AF_INET` 2, `AF_INET6` 10, `AF_UNIX` 1...).
    pub fn family(&self) -> u16 {
        match self {
            SockAddr::Inet {
                address: IpAddr::V4(_),
                ..
            } => libc::AF_INET as u16,
            SockAddr::Inet { .. } => libc::AF_INET6 as u16,
            SockAddr::Unix { .. } => libc::AF_UNIX as u16,
            SockAddr::Other { family } => *family,
        }
    }
}

/// Decodes a `struct sockaddr` as the kernel copied it (family in host byte order, port
/// and addresses in network order). `None` when it is too short for its family.
pub fn parse_sockaddr(bytes: &[u8]) -> Option<SockAddr> {
    let family = u16::from_ne_bytes([*bytes.first()?, *bytes.get(1)?]);
    let port = || Some(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]));
    match i32::from(family) {
        libc::AF_INET => {
            let a: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
            Some(SockAddr::Inet {
                address: IpAddr::V4(Ipv4Addr::from(a)),
                port: port()?,
            })
        }
        libc::AF_INET6 => {
            // sin6_flowinfo (4 bytes) sits between the port and the address.
            let a: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
            Some(SockAddr::Inet {
                address: IpAddr::V6(Ipv6Addr::from(a)),
                port: port()?,
            })
        }
        libc::AF_UNIX => {
            let path = bytes.get(2..).unwrap_or_default();
            let path = match path.first() {
                // Abstract socket: the name is every byte given.
                Some(0) => path.to_vec(),
                _ => path[..memchr::memchr(0, path).unwrap_or(path.len())].to_vec(),
            };
            Some(SockAddr::Unix { path })
        }
        _ => Some(SockAddr::Other { family }),
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn trim(mut text: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = text {
        if is_space(*first) {
            text = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = text {
        if is_space(*last) || *last == 0 {
            text = rest;
        } else {
            break;
        }
    }
    text
}

fn parse_decimal(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 20 {
        return None;
    }
    let mut n = 0u64;
    for &b in text {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_time_serial_and_body() {
        let (h, body) = parse_header(b"audit(1733490000.123:4567): arch=c000003e syscall=59\0")
            .expect("header");
        assert_eq!(
            h,
            RecordHeader {
                time: AuditTime {
                    secs: 1733490000,
                    millis: 123
                },
                serial: 4567
            }
        );
        assert_eq!(body, b"arch=c000003e syscall=59");
        // The daemon's log-line prefix is tolerated; fewer fraction digits still mean ms.
        let (h, _) = parse_header(b"type=SYSCALL msg=audit(5.1:2): x=1").expect("prefix");
        assert_eq!(
            h.time,
            AuditTime {
                secs: 5,
                millis: 100
            }
        );
        assert_eq!(h.serial, 2);
    }

    #[test]
    fn malformed_headers_are_rejected_not_panics() {
        for bad in [
            &b""[..],
            b"audit(",
            b"audit(1.2",
            b"audit(1.2)",
            b"audit(x.1:2): a=b",
            b"audit(1.1:)",
            b"audit(1.1:99999999999999999999999): a",
            b"audit(1.1a:2): a",
            b"audit(:2): a",
        ] {
            assert_eq!(
                parse_header(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn fields_quoted_hex_null_and_bare_words() {
        let body = br#"avc:  denied  { read } for  pid=12 comm="cat" name=2F746D702F612062 key=(null) exe="/usr/bin/cat" exit=-13 msg='op=PAM:auth acct="root" res=success'"#;
        let got: Vec<(String, String, bool)> = fields(body)
            .map(|f| {
                (
                    String::from_utf8_lossy(f.key).into_owned(),
                    String::from_utf8_lossy(f.value.raw).into_owned(),
                    f.value.quoted,
                )
            })
            .collect();
        let want = [
            ("pid", "12", false),
            ("comm", "cat", true),
            ("name", "2F746D702F612062", false),
            ("key", "(null)", false),
            ("exe", "/usr/bin/cat", true),
            ("exit", "-13", false),
            ("msg", r#"op=PAM:auth acct="root" res=success"#, true),
        ];
        assert_eq!(got, want.map(|(k, v, q)| (k.to_string(), v.to_string(), q)));
        assert_eq!(field(body, "name").unwrap().string().unwrap(), b"/tmp/a b");
        assert_eq!(field(body, "key").unwrap().string(), None);
        assert_eq!(field(body, "exit").unwrap().decimal(), Some(-13));
        assert_eq!(field(body, "comm").unwrap().string().unwrap(), b"cat");
        assert_eq!(field(body, "missing"), None);
    }

    #[test]
    fn number_forms() {
        let v = |raw: &'static [u8]| Value { raw, quoted: false };
        assert_eq!(v(b"c000003e").hex(), Some(0xc000_003e));
        assert_eq!(v(b"0x7ffc0000").hex(), Some(0x7ffc_0000));
        assert_eq!(v(b"0100755").octal(), Some(0o100755));
        assert_eq!(v(b"4294967295").decimal(), Some(4294967295));
        assert_eq!(v(b"12x").decimal(), None);
        assert_eq!(v(b"").hex(), None);
        assert_eq!(v(b"11112222333344445").hex(), None);
        assert_eq!(v(b"-").decimal(), None);
        // `?` is not hex: kept as is.
        assert_eq!(v(b"?").string().unwrap(), b"?");
    }

    #[test]
    fn hostile_field_text_never_panics() {
        for body in [
            &b"="[..],
            b"a=",
            b"a=\"",
            b"a='unterminated",
            b"==== ===",
            b"key=\"v\"x=1",
            b"\xff\xfe=\xff",
            b"   ",
        ] {
            for f in fields(body) {
                let _ = (f.value.string(), f.value.hex(), f.value.decimal());
            }
        }
        // An unterminated quote yields the rest of the text.
        let f: Vec<_> = fields(b"a=1 b=\"trunc").collect();
        assert_eq!(f[1].value.raw, b"trunc");
        // A value directly after a closing quote is still found.
        let keys: Vec<_> = fields(b"key=\"v\"x=1").map(|f| f.key.to_vec()).collect();
        assert_eq!(keys, [b"key".to_vec(), b"x".to_vec()]);
    }

    #[test]
    fn hex_decoding() {
        assert_eq!(decode_hex(b"2F62696E00").unwrap(), b"/bin\0");
        assert_eq!(decode_hex(b"2f62"), Some(b"/b".to_vec()));
        assert_eq!(decode_hex(b"2F6"), None);
        assert_eq!(decode_hex(b"zz"), None);
        assert_eq!(decode_hex(b""), None);
    }

    #[test]
    fn sockaddrs() {
        // 127.0.0.1:8080
        let v4 = decode_hex(b"02001F907F0000010000000000000000").unwrap();
        assert_eq!(
            parse_sockaddr(&v4),
            Some(SockAddr::Inet {
                address: "127.0.0.1".parse().unwrap(),
                port: 8080
            })
        );
        // [::1]:443
        let v6 = decode_hex(b"0A0001BB000000000000000000000000000000000000000100000000").unwrap();
        let got = parse_sockaddr(&v6).unwrap();
        assert_eq!(
            got,
            SockAddr::Inet {
                address: "::1".parse().unwrap(),
                port: 443
            }
        );
        assert_eq!(got.family(), libc::AF_INET6 as u16);
        // /run/x.sock, NUL padded.
        let unix = decode_hex(b"01002F72756E2F782E736F636B000000").unwrap();
        assert_eq!(
            parse_sockaddr(&unix),
            Some(SockAddr::Unix {
                path: b"/run/x.sock".to_vec()
            })
        );
        // Abstract name keeps its leading NUL.
        let abs = decode_hex(b"0100006162").unwrap();
        assert_eq!(
            parse_sockaddr(&abs),
            Some(SockAddr::Unix {
                path: b"\0ab".to_vec()
            })
        );
        // Netlink (16).
        assert_eq!(
            parse_sockaddr(&decode_hex(b"1000000000000000").unwrap()),
            Some(SockAddr::Other { family: 16 })
        );
        // Truncated addresses are rejected.
        assert_eq!(parse_sockaddr(&decode_hex(b"02001F907F00").unwrap()), None);
        assert_eq!(parse_sockaddr(&decode_hex(b"0A0001BB").unwrap()), None);
        assert_eq!(parse_sockaddr(b"\x02"), None);
        assert_eq!(parse_sockaddr(b""), None);
    }
}
