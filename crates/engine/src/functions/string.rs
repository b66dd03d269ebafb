//! split, regex_split, regex_match, inet_aton, concat, concat_ws.

use super::{Out, add, c_text, fail, is_c_space, value_int};
use regex::bytes::{Regex, RegexBuilder};
use rusqlite::Connection;
use rusqlite::functions::Context;
use rusqlite::types::ValueRef;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// osquery's hidden `--regex_max_size` default: longer patterns are refused
/// before compiling, to bound the cost of hostile queries.
const REGEX_MAX_SIZE: usize = 256;

pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    add(conn, "split", 3, split)?;
    add(conn, "regex_split", 3, regex_split)?;
    add(conn, "regex_match", 3, regex_match)?;
    add(conn, "inet_aton", 1, inet_aton)?;
    add(conn, "concat", -1, concat)?;
    add(conn, "concat_ws", -1, concat_ws)?;
    Ok(())
}

fn any_null(ctx: &Context<'_>) -> bool {
    (0..ctx.len()).any(|i| ctx.get_raw(i) == ValueRef::Null)
}

/// A piece index as osquery computes it: `(size_t)sqlite3_value_int(..)`, so a
/// negative index is simply out of range.
fn index(ctx: &Context<'_>) -> Option<usize> {
    usize::try_from(value_int(ctx.get_raw(2))).ok()
}

fn pick(pieces: &[&[u8]], index: Option<usize>) -> Out {
    match index.and_then(|i| pieces.get(i)) {
        Some(piece) => Out::text(*piece),
        None => Out::Null,
    }
}

/// Splits on any byte of `tokens`; empty pieces are dropped *before* trimming, so
/// a whitespace-only piece survives as an empty string (as in osquery).
fn split(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    if any_null(ctx) {
        return Ok(Out::Null);
    }
    let input = c_text(ctx.get_raw(0));
    let tokens = c_text(ctx.get_raw(1));
    if tokens.is_empty() {
        return fail("Invalid input to split function");
    }
    let pieces: Vec<&[u8]> = input
        .split(|c| tokens.contains(c))
        .filter(|p| !p.is_empty())
        .map(trim_c_space)
        .collect();
    Ok(pick(&pieces, index(ctx)))
}

/// boost::trim with the C locale (`trim_ascii` would miss vertical tab).
fn trim_c_space(p: &[u8]) -> &[u8] {
    let start = p.iter().position(|c| !is_c_space(*c)).unwrap_or(p.len());
    let end = p
        .iter()
        .rposition(|c| !is_c_space(*c))
        .map_or(start, |e| e + 1);
    &p[start..end.max(start)]
}

/// Compiles argument 1 as a regex once per statement (SQLite keeps the auxiliary
/// data while the argument is constant).
fn cached_regex(ctx: &Context<'_>) -> rusqlite::Result<Arc<Regex>> {
    ctx.get_or_create_aux(1, |v| compile(&c_text(v)).ok_or("Invalid regex"))
}

/// Byte-oriented and ASCII-only classes, like `std::regex` over `char`.
fn compile(pattern: &[u8]) -> Option<Regex> {
    let pattern = std::str::from_utf8(pattern).ok()?;
    RegexBuilder::new(pattern).unicode(false).build().ok()
}

/// The pieces between matches. Like `std::sregex_token_iterator` with -1, a
/// trailing empty piece after the last match is not produced.
fn regex_split(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    if any_null(ctx) {
        return Ok(Out::Null);
    }
    let input = c_text(ctx.get_raw(0));
    let pattern = c_text(ctx.get_raw(1));
    if pattern.is_empty() {
        return fail("Invalid input to split function");
    }
    if pattern.len() > REGEX_MAX_SIZE {
        return fail("Invalid regex");
    }
    let re = cached_regex(ctx)?;
    let mut pieces: Vec<&[u8]> = re.split(&input).collect();
    if pieces.len() > 1 && pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    Ok(pick(&pieces, index(ctx)))
}

/// First match of the regex; returns capture group `index` (0 = whole match). A
/// group that exists but did not take part yields '' (as `std::smatch` does).
fn regex_match(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    if any_null(ctx) {
        return Ok(Out::Null);
    }
    let pattern = c_text(ctx.get_raw(1));
    if pattern.len() > REGEX_MAX_SIZE {
        return fail(format!(
            "Invalid regex: too big, max size is {REGEX_MAX_SIZE} bytes"
        ));
    }
    let re = cached_regex(ctx)?;
    let input = c_text(ctx.get_raw(0));
    let Some(caps) = re.captures(&input) else {
        return Ok(Out::Null);
    };
    Ok(match index(ctx) {
        Some(i) if i < caps.len() => Out::text(caps.get(i).map_or(&b""[..], |m| m.as_bytes())),
        _ => Out::Null,
    })
}

/// Dotted quad → its value in host order; IPv6 or anything invalid → NULL.
fn inet_aton(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    let v = ctx.get_raw(0);
    if v == ValueRef::Null {
        return Ok(Out::Null);
    }
    let address = c_text(v);
    if address.contains(&b':') {
        return Ok(Out::Null);
    }
    Ok(std::str::from_utf8(&address)
        .ok()
        .and_then(|s| s.parse::<Ipv4Addr>().ok())
        .map_or(Out::Null, |ip| Out::Int(i64::from(u32::from(ip)))))
}

/// Joins the non-NULL arguments from `start`. osquery's quirk: the separator
/// follows every non-NULL argument that is not the last argument, so a trailing
/// NULL leaves a trailing separator.
fn join(ctx: &Context<'_>, sep: &[u8], start: usize) -> Out {
    let argc = ctx.len();
    if argc == start {
        return Out::Null;
    }
    let mut out = Vec::new();
    for i in start..argc {
        let v = ctx.get_raw(i);
        if v == ValueRef::Null {
            continue;
        }
        out.extend_from_slice(&c_text(v));
        if i + 1 < argc {
            out.extend_from_slice(sep);
        }
    }
    Out::Text(out)
}

fn concat(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    Ok(join(ctx, b"", 0))
}

fn concat_ws(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    if ctx.is_empty() {
        return fail("Missing separator to concat_ws");
    }
    let sep = c_text(ctx.get_raw(0));
    Ok(join(ctx, &sep, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_c_whitespace() {
        assert_eq!(trim_c_space(b" \x0b a b\t"), b"a b");
        assert_eq!(trim_c_space(b"   "), b"");
    }

    #[test]
    fn regex_is_byte_oriented() {
        let re = compile(br"\d+").unwrap();
        assert!(re.is_match(b"x42"));
        assert!(!re.is_match("\u{0663}".as_bytes()));
        assert!(compile(b"(").is_none());
    }
}
