//! `authorized_keys`: public keys allowed to log in, from each user's
//! `~/.ssh/authorized_keys` and `~/.ssh/authorized_keys2`.

use crate::common;
use oxquery_sys::safe_read::Root;
use oxquery_sys::users::{self as sysusers, Passwd};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "authorized_keys",
    description: "Public keys that may log in as each user, one row per key line of ~/.ssh/authorized_keys and ~/.ssh/authorized_keys2; every user unless the query names uids.",
    attributes: [USER_BASED],
    columns: {
        uid: BigInt [ADDITIONAL] "Owner of the file (whose home it is in)",
        algorithm: Text [] "Key type, such as ssh-ed25519 or ssh-rsa",
        key: Text [] "Base64 key blob",
        options: Text [] "Options before the key type (from=, command=, ...), NULL if none",
        comment: Text [] "Text after the key, NULL if none",
        key_file: Text [] "Path of the file",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Read the accounts and their keys inside this process's mount namespace (its /etc/passwd); 0 in rows read from the host's",
    },
    examples: ["select * from authorized_keys where uid = 0"],
}

const FILES: [&str; 2] = [".ssh/authorized_keys", ".ssh/authorized_keys2"];

/// Key types recognised (osquery's list plus DSA and the FIDO `sk-` types).
const KEY_TYPES: [&str; 8] = [
    "ssh-rsa",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-dss",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// One parsed key line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct KeyLine {
    algorithm: Option<String>,
    key: Option<String>,
    options: Option<String>,
    comment: Option<String>,
}

fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// End of the options field: the first blank outside double quotes (`\"` escapes).
fn options_end(line: &str) -> usize {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if is_ws(c) && !quoted => return i,
            _ => {}
        }
    }
    line.len()
}

/// Parses an authorized_keys line: `[options] keytype base64 [comment]`. Blank lines,
/// comments and lines without a recognised key type give `None`, except a line whose
/// options carry z/OS's `zos-key-ring-label=`, which is reported with options only.
fn parse_line(line: &str) -> Option<KeyLine> {
    let line = line.trim_start_matches(is_ws).trim_end_matches(['\r']);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let first_end = line.find(is_ws).unwrap_or(line.len());
    let (options, rest) = if KEY_TYPES.contains(&&line[..first_end]) {
        (None, line)
    } else {
        let end = options_end(line);
        let opts = &line[..end];
        (Some(opts), line[end..].trim_start_matches(is_ws))
    };
    let type_end = rest.find(is_ws).unwrap_or(rest.len());
    let algorithm = &rest[..type_end];
    if !KEY_TYPES.contains(&algorithm) || type_end == rest.len() {
        if options.is_some_and(|o| o.split(',').any(|x| x.starts_with("zos-key-ring-label="))) {
            return Some(KeyLine {
                options: Some(line.to_owned()),
                ..KeyLine::default()
            });
        }
        return None;
    }
    let after = rest[type_end..].trim_start_matches(is_ws);
    if after.is_empty() {
        return None;
    }
    let (key, comment) = match after.find(is_ws) {
        Some(i) => (
            &after[..i],
            Some(after[i..].trim_start_matches(is_ws).to_owned()),
        ),
        None => (after, None),
    };
    Some(KeyLine {
        algorithm: Some(algorithm.to_owned()),
        key: Some(key.to_owned()),
        options: options.map(str::to_owned),
        comment,
    })
}

fn generate_in(ctx: &QueryContext, root: &Root, users: &[Passwd], rows: &mut Rows) {
    sysusers::for_each_user_file(users, &FILES, |user, path| {
        let key_file = path.to_string_lossy();
        let policy = common::home_file_policy(ctx, user);
        common::file_lines_in(ctx, root, path, &policy, |raw| {
            let Some(k) = parse_line(&String::from_utf8_lossy(raw)) else {
                return;
            };
            let mut row = rows.row();
            row.set(Col::uid, i64::from(user.uid));
            if let Some(a) = k.algorithm {
                row.set(Col::algorithm, a);
            }
            if let Some(v) = k.key {
                row.set(Col::key, v);
            }
            if let Some(o) = k.options {
                row.set(Col::options, o);
            }
            if let Some(c) = k.comment {
                row.set(Col::comment, c);
            }
            row.set(Col::key_file, key_file.as_ref());
            row.set(Col::pid_with_namespace, root.pid());
        });
    });
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for root in common::namespace_roots(ctx, Col::pid_with_namespace) {
        generate_in(ctx, &root, &common::users_in(ctx, &root, Col::uid), rows);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing;
    use oxquery_table::{Host, Value};
    use std::fs;
    use std::path::{Path, PathBuf};

    /// The host's accounts' files, as the shared home-fixture helpers call it.
    fn generate_for(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
        generate_in(ctx, &Root::host(), users, rows)
    }

    #[test]
    fn parses_options_with_quoted_commas_and_comments() {
        let k = parse_line(r#"from="10.0.0.1,host.example",command="echo a, b \"c d\"" ssh-ed25519 AAAAC3 me@host extra"#).unwrap();
        assert_eq!(k.algorithm.as_deref(), Some("ssh-ed25519"));
        assert_eq!(k.key.as_deref(), Some("AAAAC3"));
        assert_eq!(
            k.options.as_deref(),
            Some(r#"from="10.0.0.1,host.example",command="echo a, b \"c d\"""#)
        );
        assert_eq!(k.comment.as_deref(), Some("me@host extra"));
        let k = parse_line("ssh-rsa AAAAB3").unwrap();
        assert_eq!((k.options, k.comment), (None, None));
        let k = parse_line("command=\"ssh-rsa trap\" ecdsa-sha2-nistp256 AAAAE2 c").unwrap();
        assert_eq!(k.algorithm.as_deref(), Some("ecdsa-sha2-nistp256"));
        assert_eq!(k.options.as_deref(), Some("command=\"ssh-rsa trap\""));
        assert!(parse_line("# ssh-rsa AAAA").is_none());
        assert!(parse_line("ssh-rsa").is_none());
        assert!(parse_line("unknown-type AAAA").is_none());
        assert!(parse_line("\u{fffd}\u{fffd}\"unterminated ssh-rsa").is_none());
        let z = parse_line("zos-key-ring-label=\"KeyRing label\"").unwrap();
        assert_eq!(
            z.options.as_deref(),
            Some("zos-key-ring-label=\"KeyRing label\"")
        );
        assert!(z.algorithm.is_none());
    }

    #[test]
    fn pid_with_namespace_reads_that_root_s_accounts_and_keys() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        // The container's account "contained" (uid 4242) has /home/contained there.
        let ssh = c.root().join("home/contained/.ssh");
        fs::create_dir_all(&ssh).unwrap();
        fs::write(ssh.join("authorized_keys"), "ssh-ed25519 INSIDE in@box\n").unwrap();
        c.make_hostile(
            "home/contained/.ssh/authorized_keys2",
            "ssh-rsa HOSTSECRET host\n",
        );
        let host = Host::default();
        let ctx = c.query(&SPEC, &host, Col::pid_with_namespace.into());
        let rows = crate::testing::rows_of(&ctx, generate);
        assert_eq!(rows.len(), 1, "{rows:?}");
        let row = &rows[0];
        assert_eq!(row[Col::uid as usize], Value::Integer(4242));
        assert_eq!(row[Col::key as usize], Value::from("INSIDE"));
        assert_eq!(
            row[Col::key_file as usize],
            Value::from("/home/contained/.ssh/authorized_keys")
        );
        assert_eq!(
            row[Col::pid_with_namespace as usize],
            Value::Integer(c.pid())
        );
    }

    #[test]
    fn reads_both_files_of_an_injected_user() {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".ssh")).unwrap();
        let mut garbage = b"ssh-rsa AAAA first\n\xff\xfe\x00\n".to_vec();
        garbage.extend(std::iter::repeat_n(b'A', 3 << 20));
        garbage.extend_from_slice(b"\nno-pty ssh-ed25519 BBBB\n");
        fs::write(home.path().join(".ssh/authorized_keys"), garbage).unwrap();
        fs::write(
            home.path().join(".ssh/authorized_keys2"),
            "ssh-dss CCCC old",
        )
        .unwrap();
        let user = testing::fixture_account("tester", 4242, home.path());
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_for(&ctx, &[user], &mut rows);
        let keys: Vec<String> = rows
            .column(Col::key)
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(keys, ["AAAA", "BBBB", "CCCC"]);
        assert!(
            rows.column(Col::uid)
                .iter()
                .all(|v| **v == Value::from(4242))
        );
        let r1 = rows.get(1).unwrap();
        assert_eq!(r1[Col::options as usize], Value::from("no-pty"));
        assert_eq!(r1[Col::comment as usize], Value::Null);
        let kf = rows.get(2).unwrap()[Col::key_file as usize].to_string();
        assert_eq!(
            kf,
            home.path().join(".ssh/authorized_keys2").to_string_lossy()
        );
    }

    /// Hostile key files (what any user can make of their own) give no rows from them,
    /// a warning naming them, and no hang; the user's other key file is still read.
    fn hostile(make: impl FnOnce(&std::path::Path), why: &str) {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".ssh")).unwrap();
        let bad = home.path().join(FILES[0]);
        make(&bad);
        fs::write(home.path().join(FILES[1]), "ssh-ed25519 GOOD me\n").unwrap();
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        let keys: Vec<String> = rows
            .column(Col::key)
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(keys, ["GOOD"]);
        testing::assert_logged(&logged, log::Level::Warn, &bad, why);
    }

    #[test]
    fn a_fifo_as_authorized_keys_does_not_block() {
        hostile(testing::mkfifo, "FIFO");
    }

    #[test]
    fn a_link_to_dev_zero_as_authorized_keys_is_not_read() {
        hostile(
            |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
            "character device",
        );
    }

    #[test]
    fn huge_authorized_keys_are_refused_by_read_max() {
        hostile(testing::huge_sparse_file, "read limit");
    }

    /// Keys past `--read_max` in a file that grows while it is read (its size at the open
    /// was within the limit) are not read: the rows stop at the limit, with a warning.
    #[test]
    fn keys_past_read_max_in_a_file_longer_than_its_size_are_not_read() {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".ssh")).unwrap();
        // A /proc file stands for the growing file: st_size 0, then whatever is read.
        let keys = home.path().join(FILES[0]);
        std::os::unix::fs::symlink("/proc/filesystems", &keys).unwrap();
        fs::write(home.path().join(FILES[1]), "ssh-ed25519 GOOD me\n").unwrap();
        let (rows, logged) =
            testing::generate_for_home_reading(&SPEC, home.path(), generate_for, 64);
        assert_eq!(rows.column(Col::key), [&Value::from("GOOD")]);
        testing::assert_logged(&logged, log::Level::Warn, &keys, "read limit");
    }

    /// osquery reads the file a link points at; so do we (a regular file, within limits).
    #[test]
    fn a_link_to_a_regular_file_is_followed() {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".ssh")).unwrap();
        let elsewhere = home.path().join("keys.txt");
        fs::write(&elsewhere, "ssh-rsa LINKED x\n").unwrap();
        std::os::unix::fs::symlink(&elsewhere, home.path().join(FILES[0])).unwrap();
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        assert_eq!(rows.column(Col::key), [&Value::from("LINKED")]);
        assert!(
            logged.iter().all(|(l, _)| *l > log::Level::Warn),
            "{logged:?}"
        );
    }

    /// Asserts that `rows` are exactly the keys of `home`'s authorized_keys files as
    /// found here directly (the word after a key type on a non-comment line), all of
    /// `uid` (no files: no rows); returns the files.
    fn assert_rows_match_home(rows: &Rows, uid: u32, home: &Path) -> Vec<PathBuf> {
        let files: Vec<_> = FILES.iter().map(|f| home.join(f)).collect();
        let mut expected = Vec::new();
        for file in &files {
            for line in testing::lines_of(file) {
                let line = String::from_utf8_lossy(&line).into_owned();
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.first().is_none_or(|w| w.starts_with('#')) {
                    continue;
                }
                let at = words.iter().position(|w| KEY_TYPES.contains(w));
                if let Some(key) = at.and_then(|at| words.get(at + 1)) {
                    expected.push((file.to_string_lossy().into_owned(), key.to_string()));
                }
            }
        }
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                assert_eq!(r[Col::uid as usize], Value::from(uid));
                (
                    r[Col::key_file as usize].to_string(),
                    r[Col::key as usize].to_string(),
                )
            })
            .collect();
        assert_eq!(got, expected);
        files
    }

    /// The check the live test makes, on a home with keys in both files.
    #[test]
    fn direct_read_of_a_fixture_home_agrees() {
        let home = tempfile::tempdir().unwrap();
        fs::create_dir(home.path().join(".ssh")).unwrap();
        fs::write(
            home.path().join(FILES[0]),
            "# c\nssh-ed25519 AAAAC3Nz me@h\nfrom=\"10.0.0.0/8\",no-pty ssh-rsa AAAAB3 x\n\n",
        )
        .unwrap();
        fs::write(home.path().join(FILES[1]), "ecdsa-sha2-nistp256 AAAAE2\n").unwrap();
        let (rows, _) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        assert_eq!(rows.len(), 3);
        assert_rows_match_home(&rows, testing::FIXTURE_UID, home.path());
    }

    /// The rows for our uid (selecting exactly our account) are exactly the keys of our
    /// `~/.ssh/authorized_keys{,2}`, read here directly (no files: no rows).
    #[test]
    fn live_uid_constraint_reads_only_that_home() {
        let (rows, me) = testing::live_rows_for_my_uid(&SPEC, Col::uid, generate);
        let files = assert_rows_match_home(&rows, me.uid, &me.home());
        testing::note_live("authorized_keys", rows.len(), &files);
    }
}
