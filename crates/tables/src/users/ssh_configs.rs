//! `ssh_configs`: options of each user's `~/.ssh/config` and of `/etc/ssh/ssh_config`.

use crate::common;
use oxquery_sys::safe_read::Policy;
use oxquery_sys::users::{self as sysusers, Passwd};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "ssh_configs",
    description: "OpenSSH client options, one row per option line of each user's ~/.ssh/config and of the system-wide /etc/ssh/ssh_config (reported as uid 0), with the Host or Match block it sits in; lines are lowercased.",
    attributes: [USER_BASED],
    columns: {
        uid: BigInt [ADDITIONAL | OPTIMIZED] "Owner of the file; 0 for the system-wide file",
        block: Text [] "The enclosing Host or Match line, empty before the first block",
        option: Text [] "The option line",
        ssh_config_file: Text [] "Path of the file",
    },
    examples: ["select * from ssh_configs where uid = 0"],
}

const USER_FILE: &str = ".ssh/config";
const SYSTEM_FILE: &str = "/etc/ssh/ssh_config";

/// Whether a (lowercased, trimmed) line opens a block.
fn opens_block(line: &str) -> bool {
    ["host", "match"].iter().any(|k| {
        line.strip_prefix(k)
            .is_some_and(|rest| rest.starts_with([' ', '\t']))
    })
}

fn read_config(ctx: &QueryContext, uid: u32, path: &Path, policy: &Policy, rows: &mut Rows) {
    let file = path.to_string_lossy();
    let mut block = String::new();
    common::file_lines(ctx, path, policy, |raw| {
        let line = String::from_utf8_lossy(raw).trim().to_lowercase();
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        if opens_block(&line) {
            block = line;
            return;
        }
        let mut row = rows.row();
        row.set(Col::uid, i64::from(uid));
        row.set(Col::block, block.as_str());
        row.set(Col::option, line);
        row.set(Col::ssh_config_file, file.as_ref());
    });
}

fn generate_for(ctx: &QueryContext, users: &[Passwd], system: Option<&Path>, rows: &mut Rows) {
    sysusers::for_each_user_file(users, &[USER_FILE], |user, path| {
        read_config(
            ctx,
            user.uid,
            path,
            &common::home_file_policy(ctx, user),
            rows,
        )
    });
    if let Some(system) = system {
        read_config(ctx, 0, system, &common::user_file_policy(ctx), rows);
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    // The system-wide file counts as uid 0: skip it when the query excludes uid 0.
    let system = ctx
        .eq_integers(Col::uid)
        .is_none_or(|u| u.contains(&0))
        .then_some(Path::new(SYSTEM_FILE));
    generate_for(ctx, &common::users_by_uid(ctx, Col::uid), system, rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing;
    use oxquery_table::{Host, Value};
    use std::fs;
    use std::path::PathBuf;

    #[test]
    fn host_and_match_blocks() {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".ssh")).unwrap();
        fs::write(
            home.path().join(USER_FILE),
            b"  Compression yes\n# c\nHost *.Example.com bastion\n  User Alice\n\tIdentityFile ~/.ssh/id\n\
             Hostname-ish notablock\nMatch host x exec \"true\"\n  ForwardAgent no\nHOST\tTabbed\nPort 2222\n\xff\n",
        )
        .unwrap();
        let system = home.path().join("system_config");
        fs::write(&system, "Host *\n    SendEnv LANG\n").unwrap();
        let user = crate::common::testing::fixture_account("cfg", 6161, home.path());
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_for(&ctx, &[user], Some(&system), &mut rows);
        let got: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| (r[0].to_string(), r[1].to_string(), r[2].to_string()))
            .collect();
        let t = |u: &str, b: &str, o: &str| (u.to_owned(), b.to_owned(), o.to_owned());
        assert_eq!(
            got,
            [
                t("6161", "", "compression yes"),
                t("6161", "host *.example.com bastion", "user alice"),
                t(
                    "6161",
                    "host *.example.com bastion",
                    "identityfile ~/.ssh/id"
                ),
                t(
                    "6161",
                    "host *.example.com bastion",
                    "hostname-ish notablock"
                ),
                t("6161", "match host x exec \"true\"", "forwardagent no"),
                t("6161", "host\ttabbed", "port 2222"),
                t("6161", "host\ttabbed", "\u{fffd}"),
                t("0", "host *", "sendenv lang"),
            ]
        );
        assert_eq!(
            rows.get(7).unwrap()[Col::ssh_config_file as usize],
            Value::from(system.to_string_lossy().into_owned())
        );
    }

    /// Asserts that `rows` are exactly the option lines of `files` (each with its
    /// owner's uid) as read here directly: lines neither blank, comments nor `Host`/
    /// `Match` lines, lowercased (no file: no rows).
    fn assert_rows_match_files(rows: &Rows, files: &[(PathBuf, u32)]) {
        let mut expected = Vec::new();
        for (file, owner) in files {
            for line in testing::lines_of(file) {
                let line = String::from_utf8_lossy(&line).trim().to_lowercase();
                let keyword = line.split([' ', '\t']).next().unwrap_or("");
                let is_block = matches!(keyword, "host" | "match") && keyword != line;
                if !line.is_empty() && !line.starts_with('#') && !is_block {
                    expected.push((owner.to_string(), file.to_string_lossy().into_owned(), line));
                }
            }
        }
        let got: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r[Col::uid as usize].to_string(),
                    r[Col::ssh_config_file as usize].to_string(),
                    r[Col::option as usize].to_string(),
                )
            })
            .collect();
        assert_eq!(got, expected);
    }

    /// The check the live test makes, on a home with a config.
    #[test]
    fn direct_read_of_a_fixture_home_agrees() {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".ssh")).unwrap();
        fs::write(
            home.path().join(USER_FILE),
            "User Me\n# c\nHost a\n  Port 22\n\nMatch all\n  ForwardX11 no\n",
        )
        .unwrap();
        let (rows, _) = testing::generate_for_home(&SPEC, home.path(), |ctx, users, rows| {
            generate_for(ctx, users, None, rows)
        });
        assert_eq!(rows.len(), 3);
        let file = home.path().join(USER_FILE);
        assert_rows_match_files(&rows, &[(file, testing::FIXTURE_UID)]);
    }

    /// The rows for our uid (selecting exactly our account) are exactly the option lines
    /// of our `~/.ssh/config` and, for root, of the system file, read here directly.
    #[test]
    fn live_uid_constraint_reads_only_that_home_and_system_file() {
        let (rows, me) = testing::live_rows_for_my_uid(&SPEC, Col::uid, generate);
        let mut files = vec![(me.home().join(USER_FILE), me.uid)];
        if me.uid == 0 {
            files.push((PathBuf::from(SYSTEM_FILE), 0));
        }
        assert_rows_match_files(&rows, &files);
        let files: Vec<_> = files.into_iter().map(|(f, _)| f).collect();
        testing::note_live("ssh_configs", rows.len(), &files);
    }
}
