//! version_compare(a, b[, flavor]): -1, 0 or 1, using the same comparison as the
//! `VERSION*` collations.

use super::{Out, add, c_text, fail};
use crate::collation::{self, Flavor};
use rusqlite::Connection;
use rusqlite::functions::Context;
use rusqlite::types::ValueRef;
use std::cmp::Ordering;

pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    add(conn, "version_compare", 2, version_compare)?;
    add(conn, "version_compare", 3, version_compare)?;
    Ok(())
}

/// NULL versions give NULL; blobs and unknown flavours are errors. Numbers are
/// read as their text (`version_compare(2, 10)` is -1).
fn version_compare(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    let flavor = if ctx.len() == 3 {
        match ctx.get_raw(2) {
            ValueRef::Text(name) => {
                match std::str::from_utf8(name).ok().and_then(Flavor::from_name) {
                    Some(flavor) => flavor,
                    None => {
                        return fail(format!(
                            "version_compare: unknown flavor '{}', expected ARCH, DPKG or RHEL",
                            String::from_utf8_lossy(name)
                        ));
                    }
                }
            }
            _ => return fail("version_compare: flavor must be text: ARCH, DPKG or RHEL"),
        }
    } else {
        Flavor::Generic
    };
    let (a, b) = (ctx.get_raw(0), ctx.get_raw(1));
    if a == ValueRef::Null || b == ValueRef::Null {
        return Ok(Out::Null);
    }
    if matches!(a, ValueRef::Blob(_)) || matches!(b, ValueRef::Blob(_)) {
        return fail("version_compare: versions must be text");
    }
    Ok(Out::Int(
        match collation::compare(flavor, &c_text(a), &c_text(b)) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        },
    ))
}
