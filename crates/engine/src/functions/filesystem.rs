//! is_path_deterministic, find_file_path_in_cmd, parent_directory.
//!
//! The first two look for the prefixes of a command line that name an existing
//! file (not a directory), cutting at unquoted, unescaped whitespace: e.g. for
//! `/opt/my app/run --flag` the candidates are `/opt/my`, `/opt/my app/run`, then
//! the whole line.

use super::{Out, add, c_text, fail, is_c_space, value_int};
use rusqlite::Connection;
use rusqlite::functions::Context;
use rusqlite::types::ValueRef;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    add(conn, "is_path_deterministic", -1, is_path_deterministic)?;
    add(conn, "find_file_path_in_cmd", -1, find_file_path_in_cmd)?;
    add(conn, "parent_directory", 1, parent_directory)?;
    Ok(())
}

/// Exists (following symlinks) and is not a directory.
fn is_file_like(candidate: &[u8]) -> bool {
    !candidate.is_empty()
        && std::fs::metadata(Path::new(OsStr::from_bytes(candidate))).is_ok_and(|m| !m.is_dir())
}

/// The shortest (or, with `shortest == false`, the longest) prefix of `cmd` that
/// is an existing file; empty when none is. Quotes (if allowed) and escape
/// characters are removed from the candidate, and an escaped or quoted
/// whitespace does not end it.
fn find_path(cmd: &[u8], escape: u8, allow_quotes: bool, shortest: bool) -> Vec<u8> {
    let start = cmd
        .iter()
        .position(|c| !is_c_space(*c))
        .unwrap_or(cmd.len());
    let mut result = Vec::new();
    let mut candidate = Vec::new();
    let (mut quoted, mut escaped) = (false, false);
    for &c in &cmd[start..] {
        if escaped {
            candidate.push(c);
            escaped = false;
            continue;
        }
        if allow_quotes && c == b'"' {
            quoted = !quoted;
            continue;
        }
        if c == escape {
            escaped = true;
            continue;
        }
        if !quoted && is_c_space(c) && is_file_like(&candidate) {
            result = candidate.clone();
            if shortest {
                break;
            }
        }
        candidate.push(c);
    }
    if (result.is_empty() || !shortest) && is_file_like(&candidate) {
        result = candidate;
    }
    result
}

/// Reads `(cmd[, allow_quotes[, escape_char]])`; `None` for osquery's invalid
/// inputs: no argument, any NULL, or an escape that is not exactly one byte.
fn find_args(ctx: &Context<'_>, shortest: bool) -> Option<Vec<u8>> {
    if ctx.is_empty() || (0..ctx.len()).any(|i| ctx.get_raw(i) == ValueRef::Null) {
        return None;
    }
    let allow_quotes = ctx.len() > 1 && value_int(ctx.get_raw(1)) != 0;
    let escape = if ctx.len() > 2 {
        match &*c_text(ctx.get_raw(2)) {
            [c] => *c,
            _ => return None,
        }
    } else {
        b'\\'
    };
    Some(find_path(
        &c_text(ctx.get_raw(0)),
        escape,
        allow_quotes,
        shortest,
    ))
}

fn find_file_path_in_cmd(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    match find_args(ctx, true) {
        Some(path) => Ok(Out::Text(path)),
        // osquery's message names the function's earlier name.
        None => fail("Invalid inputs to find_binary_path_from_cmd"),
    }
}

/// 1 when at most one prefix of the command is an existing file (no prefix at
/// all, or the shortest is the whole line, or shortest == longest), else 0.
fn is_path_deterministic(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    const INVALID: &str = "Invalid inputs to is_path_deterministic";
    let Some(shortest) = find_args(ctx, true) else {
        return fail(INVALID);
    };
    let whole = c_text(ctx.get_raw(0)).len();
    if shortest.is_empty() || shortest.len() == whole {
        return Ok(Out::Int(1));
    }
    let Some(longest) = find_args(ctx, false) else {
        return fail(INVALID);
    };
    Ok(Out::Int(i64::from(shortest.len() == longest.len())))
}

/// Everything before the last `/`; NULL without one. Only text is accepted.
fn parent_directory(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    let v = ctx.get_raw(0);
    if !matches!(v, ValueRef::Text(_)) {
        return fail("Invalid inputs to parent_directory, TEXT was expected");
    }
    let path = c_text(v);
    Ok(match path.iter().rposition(|c| *c == b'/') {
        Some(slash) => Out::text(&path[..slash]),
        None => Out::Null,
    })
}
