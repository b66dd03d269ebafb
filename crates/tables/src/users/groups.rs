//! `groups`: every group the name service switch knows, one row per gid.

use oxquery_sys::users::{self as sysusers, Group};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::HashSet;

table! {
    name: "groups",
    description: "Groups known to the name service switch (getgrent), the first entry of each gid.",
    columns: {
        gid: BigInt [INDEX] "Numeric group ID",
        gid_signed: BigInt [] "Group ID read as a signed 32-bit number",
        groupname: Text [] "Group name",
        group_sid: Text [INDEX | OTHER_PLATFORM] "Windows group security identifier; NULL here",
        comment: Text [OTHER_PLATFORM] "Windows group comment; NULL here",
        is_hidden: Integer [OTHER_PLATFORM] "macOS hidden-group flag; NULL here",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Process whose namespaces to look in; not supported yet (constraining it gives no rows), 0 in rows",
    },
    examples: ["select * from groups", "select * from groups where gid = 0"],
}

fn add_row(rows: &mut Rows, g: &Group) {
    let mut row = rows.row();
    row.set(Col::gid, i64::from(g.gid));
    row.set(Col::gid_signed, i64::from(g.gid as i32));
    row.set(Col::groupname, g.name.as_str());
    row.set(Col::pid_with_namespace, 0);
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    if crate::common::namespace_unsupported(ctx, Col::pid_with_namespace) {
        return Ok(());
    }
    if let Some(gids) = ctx.eq_integers(Col::gid) {
        for gid in gids.into_iter().filter_map(|g| u32::try_from(g).ok()) {
            if let Some(g) = sysusers::nss_group_by_gid(gid) {
                add_row(rows, &g);
            }
        }
        return Ok(());
    }
    let mut seen = HashSet::new();
    for g in sysusers::nss_groups() {
        if seen.insert(g.gid) {
            add_row(rows, &g);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Op};
    use std::process::Command;

    fn getent(args: &[&str]) -> Vec<(String, String)> {
        let out = Command::new("getent")
            .args(args)
            .output()
            .expect("getent runs");
        let mut seen = HashSet::new();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .filter(|f| seen.insert(f[2].to_owned()))
            .map(|f| (f[2].to_owned(), f[0].to_owned()))
            .collect()
    }

    fn rows_of(ctx: &QueryContext) -> Vec<(String, String)> {
        let rows = Rows::collect(ctx, generate).unwrap();
        rows.iter()
            .map(|r| {
                (
                    r[Col::gid as usize].to_string(),
                    r[Col::groupname as usize].to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn matches_getent_group() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let got = rows_of(&ctx);
        assert!(!got.is_empty());
        assert_eq!(got, getent(&["group"]));
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::gid, Op::Eq, 0)
            .with_constraint(Col::gid, Op::Eq, 4_123_456_789_i64);
        assert_eq!(rows_of(&ctx), getent(&["group", "0"]));
    }
}
