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
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Read this process's /etc/group, inside its mount namespace (not NSS); 0 in rows read from the host's",
    },
    examples: ["select * from groups", "select * from groups where gid = 0"],
}

fn add_row(rows: &mut Rows, g: &Group, pid: i64) {
    let mut row = rows.row();
    row.set(Col::gid, i64::from(g.gid));
    row.set(Col::gid_signed, i64::from(g.gid as i32));
    row.set(Col::groupname, g.name.as_str());
    row.set(Col::pid_with_namespace, pid);
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    if ctx.is_constrained(Col::pid_with_namespace) {
        namespace_groups(ctx, rows);
        return Ok(());
    }
    if let Some(gids) = ctx.eq_integers(Col::gid) {
        for gid in gids.into_iter().filter_map(|g| u32::try_from(g).ok()) {
            if let Some(g) = sysusers::nss_group_by_gid(gid) {
                add_row(rows, &g, 0);
            }
        }
        return Ok(());
    }
    let mut seen = HashSet::new();
    for g in sysusers::nss_groups() {
        if seen.insert(g.gid) {
            add_row(rows, &g, 0);
        }
    }
    Ok(())
}

/// The groups of each process the query names: its root's `/etc/group` (our NSS modules
/// answer for the host, not for the container), read safely inside that root.
fn namespace_groups(ctx: &QueryContext, rows: &mut Rows) {
    let policy = crate::common::user_file_policy(ctx);
    let gids = ctx.eq_integers(Col::gid);
    for root in crate::common::namespace_roots(ctx, Col::pid_with_namespace) {
        let path = std::path::Path::new("/etc/group");
        let Some(text) = crate::common::read_file_in(ctx, &root, path, &policy) else {
            continue;
        };
        for g in sysusers::parse_group(&text) {
            if gids
                .as_ref()
                .is_none_or(|gids| gids.contains(&i64::from(g.gid)))
            {
                add_row(rows, &g, root.pid());
            }
        }
    }
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
    fn pid_with_namespace_reads_that_root_s_group_file() {
        use oxquery_table::Value;
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let rows = c.rows(&SPEC, Col::pid_with_namespace.into(), generate);
        let got: Vec<(Value, Value)> = rows
            .iter()
            .map(|r| {
                (
                    r[Col::gid as usize].clone(),
                    r[Col::groupname as usize].clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (Value::Integer(0), Value::from("root")),
                (Value::Integer(4343), Value::from("contained"))
            ]
        );
        let host = Host::default();
        let by_gid = c
            .query(&SPEC, &host, Col::pid_with_namespace.into())
            .with_constraint(Col::gid, Op::Eq, 4343);
        let rows = crate::testing::rows_of(&by_gid, generate);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0][Col::pid_with_namespace as usize],
            Value::Integer(c.pid())
        );
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
