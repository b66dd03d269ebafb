//! `user_groups`: which groups each account belongs to, per getgrouplist(3).

use oxquery_sys::users::{self as sysusers, Passwd};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::HashSet;

table! {
    name: "user_groups",
    description: "Account-to-group memberships: the primary group and every supplementary group of each account, as getgrouplist reports them.",
    columns: {
        uid: BigInt [INDEX | OPTIMIZED] "User ID",
        gid: BigInt [INDEX] "ID of a group the user belongs to",
    },
    examples: ["select * from user_groups where uid = 0"],
}

fn add_user(rows: &mut Rows, p: &Passwd) {
    for gid in sysusers::group_list(&p.name, p.gid) {
        let mut row = rows.row();
        row.set(Col::uid, i64::from(p.uid));
        row.set(Col::gid, i64::from(gid));
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    if let Some(uids) = ctx.eq_integers(Col::uid) {
        for uid in uids.into_iter().filter_map(|u| u32::try_from(u).ok()) {
            if let Some(p) = sysusers::nss_user_by_uid(uid) {
                add_user(rows, &p);
            }
        }
        return Ok(());
    }
    let mut seen = HashSet::new();
    for p in sysusers::nss_users() {
        if seen.insert(p.uid) {
            add_user(rows, &p);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Op};
    use std::collections::BTreeSet;
    use std::process::Command;

    fn id_groups(user: &str) -> BTreeSet<i64> {
        let out = Command::new("id")
            .args(["-G", user])
            .output()
            .expect("id runs");
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .map(|g| g.parse().unwrap())
            .collect()
    }

    #[test]
    fn matches_id_for_every_user() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let mut checked = 0;
        for p in sysusers::nss_users() {
            let mine: BTreeSet<i64> = rows
                .iter()
                .filter(|r| r[Col::uid as usize].as_i64() == Some(i64::from(p.uid)))
                .map(|r| r[Col::gid as usize].as_i64().unwrap())
                .collect();
            assert_eq!(mine, id_groups(&p.name), "user {}", p.name);
            checked += 1;
        }
        assert!(checked > 0);
    }

    #[test]
    fn uid_constraint_reads_one_user() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(Col::uid, Op::Eq, 0);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let gids: BTreeSet<i64> = rows
            .column(Col::gid)
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert!(rows.column(Col::uid).iter().all(|v| v.as_i64() == Some(0)));
        assert_eq!(gids, id_groups("root"));
    }
}
