//! `known_hosts`: host keys each user has accepted, from `~/.ssh/known_hosts`.

use crate::common;
use oxquery_sys::users::{self as sysusers, Passwd};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "known_hosts",
    description: "Host keys users have accepted, one row per entry line of ~/.ssh/known_hosts (hashed host names and @cert-authority/@revoked markers kept verbatim); every user unless the query names uids.",
    attributes: [USER_BASED],
    columns: {
        uid: BigInt [INDEX | OPTIMIZED] "Owner of the file (whose home it is in)",
        key: Text [] "The whole entry line: [marker] hosts keytype key [comment]",
        key_file: Text [] "Path of the file",
    },
    examples: ["select * from known_hosts where uid = 0"],
}

const FILE: &str = ".ssh/known_hosts";

/// An entry line, or `None` for blanks and comments.
fn entry(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() || line[0] == b'#' {
        return None;
    }
    Some(String::from_utf8_lossy(line).into_owned())
}

fn generate_for(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
    sysusers::for_each_user_file(users, &[FILE], |user, path| {
        let key_file = path.to_string_lossy();
        common::file_lines(ctx, path, &common::home_file_policy(ctx, user), |raw| {
            if let Some(line) = entry(raw) {
                let mut row = rows.row();
                row.set(Col::uid, i64::from(user.uid));
                row.set(Col::key, line);
                row.set(Col::key_file, key_file.as_ref());
            }
        });
    });
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_for(ctx, &common::users_by_uid(ctx, Col::uid), rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing;
    use oxquery_table::{Host, Value};
    use std::fs;
    use std::path::{Path, PathBuf};

    #[test]
    fn hashed_entries_markers_and_garbage() {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".ssh")).unwrap();
        let mut text = b"# comment\n\
            |1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg= ssh-ed25519 AAAAC3Nz\n\
            \n\
            @cert-authority *.example.com ssh-rsa AAAAB3 ca\r\n\
            @revoked bad.example.com ssh-rsa AAAAB4\n\
            host1,10.0.0.1 ecdsa-sha2-nistp256 AAAAE2\n\xff\x00garbage\n"
            .to_vec();
        text.extend(std::iter::repeat_n(b'z', 2 << 20));
        fs::write(home.path().join(FILE), text).unwrap();
        let user = crate::common::testing::fixture_account("kh", 5151, home.path());
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_for(&ctx, &[user], &mut rows);
        let keys: Vec<String> = rows
            .column(Col::key)
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(
            keys,
            [
                "|1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg= ssh-ed25519 AAAAC3Nz",
                "@cert-authority *.example.com ssh-rsa AAAAB3 ca",
                "@revoked bad.example.com ssh-rsa AAAAB4",
                "host1,10.0.0.1 ecdsa-sha2-nistp256 AAAAE2",
                "\u{fffd}\u{0}garbage",
            ]
        );
        assert!(
            rows.column(Col::uid)
                .iter()
                .all(|v| **v == Value::from(5151))
        );
    }

    /// A FIFO planted as `~/.ssh/known_hosts`: no rows and a warning naming it, at once
    /// (a blocking open would wait forever for a writer).
    #[test]
    fn a_fifo_as_known_hosts_does_not_block() {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".ssh")).unwrap();
        let fifo = home.path().join(FILE);
        testing::mkfifo(&fifo);
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        assert_eq!(rows.len(), 0);
        testing::assert_logged(&logged, log::Level::Warn, &fifo, "FIFO");
    }

    /// Asserts that `rows` are exactly the entries of `home`'s known_hosts as read here
    /// directly (no file: no rows), all of `uid`; returns the file.
    fn assert_rows_match_home(rows: &Rows, uid: u32, home: &Path) -> PathBuf {
        let file = home.join(FILE);
        let expected: Vec<String> = testing::lines_of(&file)
            .iter()
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect();
        let got: Vec<String> = rows
            .iter()
            .map(|r| {
                assert_eq!(r[Col::uid as usize], Value::from(uid));
                assert_eq!(
                    r[Col::key_file as usize].to_string(),
                    file.to_string_lossy()
                );
                r[Col::key as usize].to_string()
            })
            .collect();
        assert_eq!(got, expected);
        file
    }

    /// The check the live test makes, on a home with entries.
    #[test]
    fn direct_read_of_a_fixture_home_agrees() {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".ssh")).unwrap();
        fs::write(
            home.path().join(FILE),
            "# c\nhost1 ssh-ed25519 AAAAC3Nz\n\n[h]:2222,10.0.0.2 ssh-rsa AAAAB3 x\r\n",
        )
        .unwrap();
        let (rows, _) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        assert_eq!(rows.len(), 2);
        assert_rows_match_home(&rows, testing::FIXTURE_UID, home.path());
    }

    /// The rows for our uid (selecting exactly our account) are exactly the entries of
    /// our `~/.ssh/known_hosts`, read here directly (no file: no rows).
    #[test]
    fn live_uid_constraint_reads_only_that_home() {
        let (rows, me) = testing::live_rows_for_my_uid(&SPEC, Col::uid, generate);
        let file = assert_rows_match_home(&rows, me.uid, &me.home());
        testing::note_live("known_hosts", rows.len(), &[file]);
    }
}
