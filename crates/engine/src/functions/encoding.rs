//! to_base64, from_base64, conditional_to_base64, md5, sha1, sha256.

use super::{Out, add, c_text, text_bytes};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use md5::Md5;
use rusqlite::Connection;
use rusqlite::functions::Context;
use rusqlite::types::ValueRef;
use sha1::Sha1;
use sha2::{Digest, Sha256};

pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    add(conn, "to_base64", 1, |c| {
        with_bytes(c, |b| encode(b).into_bytes())
    })?;
    add(conn, "from_base64", 1, |c| with_bytes(c, decode))?;
    add(conn, "conditional_to_base64", 1, |c| {
        with_bytes(c, |b| {
            if b.iter().all(|c| (0x20..=0x7e).contains(c)) {
                b.to_vec()
            } else {
                encode(b).into_bytes()
            }
        })
    })?;
    add(conn, "md5", 1, digest::<Md5>)?;
    add(conn, "sha1", 1, digest::<Sha1>)?;
    add(conn, "sha256", 1, digest::<Sha256>)?;
    Ok(())
}

/// NULL → NULL; otherwise `f` over the whole value (embedded NULs included, as
/// osquery passes `sqlite3_value_bytes`).
fn with_bytes(ctx: &Context<'_>, f: fn(&[u8]) -> Vec<u8>) -> rusqlite::Result<Out> {
    let v = ctx.get_raw(0);
    if v == ValueRef::Null {
        return Ok(Out::Null);
    }
    Ok(Out::Text(f(&text_bytes(v))))
}

/// Standard alphabet with `=` padding; empty in, empty out.
pub(super) fn encode(b: &[u8]) -> String {
    STANDARD.encode(b)
}

/// osquery's boost-based decoder: drop line breaks and trailing `=`, then decode
/// 6 bits per character, keeping whole bytes only. boost reads an inner `=` as
/// the value 0; any other character outside the alphabet makes the result empty.
fn decode(input: &[u8]) -> Vec<u8> {
    let mut chars: Vec<u8> = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'\n' => {}
            b'\r' if input.get(i + 1) == Some(&b'\n') => {}
            c => chars.push(c),
        }
        i += 1;
    }
    while chars.last() == Some(&b'=') {
        chars.pop();
    }
    let mut out = Vec::with_capacity(chars.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in chars {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => 0,
            _ => return Vec::new(),
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Lowercase hex digest of the text up to its first NUL.
fn digest<D: Digest>(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    let v = ctx.get_raw(0);
    if v == ValueRef::Null {
        return Ok(Out::Null);
    }
    Ok(Out::text(hex::encode(D::digest(&*c_text(v)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_osquery() {
        assert_eq!(decode(b"aGVsbG8="), b"hello");
        assert_eq!(decode(b"aGVsbG8"), b"hello");
        assert_eq!(decode(b"aGVs\nbG8=\r\n"), b"hello");
        assert_eq!(decode(b"aGVs bG8="), b"");
        assert_eq!(decode(b"===="), b"");
        assert_eq!(decode(b""), b"");
        for len in 0..20u8 {
            let data: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(encode(&data).as_bytes()), data);
        }
    }
}
