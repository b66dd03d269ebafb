//! `users`: local accounts from `/etc/passwd`, or every NSS account with `include_remote = 1`.

use oxquery_sys::users::{self as sysusers, Passwd};
use oxquery_table::{Op, QueryContext, Rows, TableError, TableResult, table};

table! {
    name: "users",
    description: "User accounts: those of /etc/passwd by default, or everything the name service switch knows (LDAP, SSSD, systemd...) when include_remote = 1.",
    columns: {
        uid: BigInt [INDEX] "Numeric user ID",
        gid: BigInt [] "Primary group ID",
        uid_signed: BigInt [] "User ID read as a signed 32-bit number",
        gid_signed: BigInt [] "Primary group ID read as a signed 32-bit number",
        username: Text [ADDITIONAL] "Login name",
        description: Text [] "Free-form comment (GECOS) field",
        directory: Text [] "Home directory",
        shell: Text [] "Login shell",
        uuid: Text [INDEX | COLLATE_NOCASE] "Account UUID; Linux accounts have none (NULL)",
        r#type: Text [OTHER_PLATFORM] "Windows account type; NULL here",
        is_hidden: Integer [OTHER_PLATFORM] "macOS hidden-account flag; NULL here",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Read this process's /etc/passwd, inside its mount namespace (not NSS); 0 in rows read from the host's",
        include_remote: Integer [ADDITIONAL | HIDDEN] "1 to ask every name service (may query remote directories), 0 (default) for /etc/passwd only",
    },
    examples: [
        "select * from users",
        "select * from users where uid = 0",
        "select * from users where include_remote = 1",
    ],
}

fn add_row(rows: &mut Rows, p: &Passwd, remote: bool, pid: i64) {
    let mut row = rows.row();
    row.set(Col::uid, i64::from(p.uid));
    row.set(Col::gid, i64::from(p.gid));
    row.set(Col::uid_signed, i64::from(p.uid as i32));
    row.set(Col::gid_signed, i64::from(p.gid as i32));
    row.set(Col::username, p.name.as_str());
    row.set(Col::description, p.gecos.as_str());
    row.set(Col::directory, p.dir.as_str());
    row.set(Col::shell, p.shell.as_str());
    row.set(Col::pid_with_namespace, pid);
    row.set(Col::include_remote, i64::from(remote));
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    if ctx.is_constrained(Col::pid_with_namespace) {
        namespace_users(ctx, rows);
        return Ok(());
    }
    let remote = ctx
        .values(Col::include_remote, Op::Eq)
        .any(|v| v.as_i64() == Some(1));
    let uids = ctx.eq_integers(Col::uid);
    let names = ctx.eq_texts(Col::username);
    if remote {
        // Named users are looked up directly; only an unconstrained scan enumerates.
        if let Some(uids) = uids {
            for uid in uids.into_iter().filter_map(|u| u32::try_from(u).ok()) {
                if let Some(p) = sysusers::nss_user_by_uid(uid) {
                    add_row(rows, &p, true, 0);
                }
            }
        } else if let Some(names) = names {
            for name in names {
                if let Some(p) = sysusers::nss_user_by_name(&name) {
                    add_row(rows, &p, true, 0);
                }
            }
        } else {
            for p in sysusers::nss_users() {
                add_row(rows, &p, true, 0);
            }
        }
        return Ok(());
    }
    // Local accounts only (osquery avoids NSS here so a scan never reaches LDAP).
    let local = sysusers::local_users().map_err(|e| TableError::io(sysusers::PASSWD_PATH, e))?;
    add_local(ctx, rows, &local, 0);
    Ok(())
}

/// The rows of `accounts` the query's `uid`/`username` values name (all without them).
fn add_local(ctx: &QueryContext, rows: &mut Rows, accounts: &[Passwd], pid: i64) {
    let uids = ctx.eq_integers(Col::uid);
    let names = ctx.eq_texts(Col::username);
    for p in accounts {
        let keep = match (&names, &uids) {
            (Some(names), _) => names.contains(&p.name),
            (None, Some(uids)) => uids.contains(&i64::from(p.uid)),
            (None, None) => true,
        };
        if keep {
            add_row(rows, p, false, pid);
        }
    }
}

/// The accounts of each process the query names: its root's `/etc/passwd` (our NSS
/// modules answer for the host, not for the container), read safely inside that root.
fn namespace_users(ctx: &QueryContext, rows: &mut Rows) {
    let policy = crate::common::user_file_policy(ctx);
    for root in crate::common::namespace_roots(ctx, Col::pid_with_namespace) {
        let path = std::path::Path::new(sysusers::PASSWD_PATH);
        if let Some(text) = crate::common::read_file_in(ctx, &root, path, &policy) {
            add_local(ctx, rows, &sysusers::parse_passwd(&text), root.pid());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Host;
    use std::process::Command;

    fn getent(args: &[&str]) -> Vec<Vec<String>> {
        let out = Command::new("getent")
            .args(args)
            .output()
            .expect("getent runs");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split(':').map(str::to_owned).collect())
            .collect()
    }

    fn table_rows(ctx: &QueryContext) -> Vec<Vec<String>> {
        let rows = Rows::collect(ctx, generate).unwrap();
        rows.iter()
            .map(|r| {
                [
                    Col::username,
                    Col::uid,
                    Col::gid,
                    Col::description,
                    Col::directory,
                    Col::shell,
                ]
                .iter()
                .map(|c| r[*c as usize].to_string())
                .collect()
            })
            .collect()
    }

    fn expected(lines: Vec<Vec<String>>) -> Vec<Vec<String>> {
        lines
            .into_iter()
            .map(|f| {
                vec![
                    f[0].clone(),
                    f[2].clone(),
                    f[3].clone(),
                    f[4].clone(),
                    f[5].clone(),
                    f[6].clone(),
                ]
            })
            .collect()
    }

    #[test]
    fn pid_with_namespace_reads_that_root_s_passwd() {
        use oxquery_table::{Op, Value};
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let rows = c.rows(&SPEC, Col::pid_with_namespace.into(), generate);
        let names: Vec<&Value> = rows.iter().map(|r| &r[Col::username as usize]).collect();
        assert_eq!(names, [&Value::from("root"), &Value::from("contained")]);
        let contained = &rows[1];
        assert_eq!(contained[Col::uid as usize], Value::Integer(4242));
        assert_eq!(contained[Col::gid as usize], Value::Integer(4343));
        assert_eq!(
            contained[Col::directory as usize],
            Value::from("/home/contained")
        );
        assert!(
            rows.iter()
                .all(|r| r[Col::pid_with_namespace as usize] == Value::Integer(c.pid()))
        );
        // The other constraints still select inside the namespace.
        let host = Host::default();
        let by_uid = c
            .query(&SPEC, &host, Col::pid_with_namespace.into())
            .with_constraint(Col::uid, Op::Eq, 4242);
        let rows = crate::testing::rows_of(&by_uid, generate);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][Col::username as usize], Value::from("contained"));
    }

    #[test]
    fn local_scan_matches_getent_files() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        assert_eq!(
            table_rows(&ctx),
            expected(getent(&["-s", "files", "passwd"]))
        );
    }

    #[test]
    fn include_remote_matches_getent_passwd() {
        let host = Host::default();
        let ctx =
            QueryContext::everything(&SPEC, &host).with_constraint(Col::include_remote, Op::Eq, 1);
        assert_eq!(table_rows(&ctx), expected(getent(&["passwd"])));
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::include_remote, Op::Eq, 1)
            .with_constraint(Col::uid, Op::Eq, 0);
        assert_eq!(table_rows(&ctx), expected(getent(&["passwd", "0"])));
    }

    #[test]
    fn uid_and_username_constraints_pick_rows() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(Col::uid, Op::Eq, 0);
        assert_eq!(
            table_rows(&ctx),
            expected(getent(&["-s", "files", "passwd", "0"]))
        );
        let ctx = QueryContext::everything(&SPEC, &host)
            .with_constraint(Col::username, Op::Eq, "root")
            .with_constraint(Col::username, Op::Eq, "no-such-user-xyz");
        assert_eq!(
            table_rows(&ctx),
            expected(getent(&["-s", "files", "passwd", "root"]))
        );
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::uid,
            Op::Eq,
            4_000_000_001_i64,
        );
        assert!(table_rows(&ctx).is_empty());
    }
}
