//! `suid_bin`: files with the set-user-ID or set-group-ID bit in osquery's fixed list of
//! binary directories, walked recursively.
//!
//! As in osquery: the listed directories themselves are opened through symbolic links
//! (`/bin` on a merged-/usr system lists `/usr/bin` under the name `/bin`), symbolic links
//! inside them are followed to decide whether an entry is a set-ID regular file (and
//! whose it is), but linked directories are not descended into. `/tmp` is on the list,
//! as in osquery, because attackers like to drop set-ID copies of shells there.

use oxquery_sys::users::{nss_group_by_gid, nss_user_by_uid};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

table! {
    name: "suid_bin",
    description: "Set-user-ID and set-group-ID files in the standard binary directories and /tmp.",
    attributes: [CACHEABLE],
    columns: {
        path: Text [] "Path of the set-ID file, as reached from its listed directory",
        username: Text [] "Owner of the file (the user it runs as when set-user-ID); the number if no account has it",
        groupname: Text [] "Group of the file (the group it runs as when set-group-ID); the number if no group has it",
        permissions: Text [] "S when set-user-ID, G when set-group-ID, SG when both",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Process whose mount namespace to look in; not supported yet (constraining it gives no rows), 0 in rows",
    },
    examples: ["select * from suid_bin"],
}

/// The directories osquery searches.
pub const SEARCH_DIRS: [&str; 7] = [
    "/bin",
    "/sbin",
    "/usr/bin",
    "/usr/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/tmp",
];

/// How deep below a listed directory the walk goes (a guard against pathological trees).
const MAX_DEPTH: usize = 64;

#[derive(Default)]
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn user(&mut self, uid: u32) -> &str {
        self.users
            .entry(uid)
            .or_insert_with(|| nss_user_by_uid(uid).map_or_else(|| uid.to_string(), |p| p.name))
    }
    fn group(&mut self, gid: u32) -> &str {
        self.groups
            .entry(gid)
            .or_insert_with(|| nss_group_by_gid(gid).map_or_else(|| gid.to_string(), |g| g.name))
    }
}

struct Walk<'r, 's> {
    rows: &'r mut Rows<'s>,
    stop: &'r dyn Fn() -> bool,
    names: Names,
    visited: HashSet<(u64, u64)>,
}

impl Walk<'_, '_> {
    fn dir(&mut self, dir: &Path, depth: usize) {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                log::debug!("suid_bin: cannot list {}: {e}", dir.display());
                return;
            }
        };
        for entry in entries.flatten() {
            if (self.stop)() {
                return;
            }
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if depth < MAX_DEPTH
                    && let Ok(m) = entry.metadata()
                    && self.visited.insert((m.dev(), m.ino()))
                {
                    self.dir(&path, depth + 1);
                }
                continue;
            }
            // Regular files and links to them; the followed stat decides.
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            let mode = meta.mode();
            let (setuid, setgid) = (mode & 0o4000 != 0, mode & 0o2000 != 0);
            if !setuid && !setgid {
                continue;
            }
            let mut row = self.rows.row();
            // The name's bytes, UTF-8 or not: the row's path finds the file again.
            row.set(Col::path, path);
            if row.wants(Col::username) {
                row.set(Col::username, self.names.user(meta.uid()));
            }
            if row.wants(Col::groupname) {
                row.set(Col::groupname, self.names.group(meta.gid()));
            }
            let perms = match (setuid, setgid) {
                (true, true) => "SG",
                (true, false) => "S",
                _ => "G",
            };
            row.set(Col::permissions, perms);
            row.set(Col::pid_with_namespace, 0);
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    if crate::common::namespace_unsupported(ctx, Col::pid_with_namespace) {
        return Ok(());
    }
    let stop = || ctx.is_stopped();
    let mut walk = Walk {
        rows,
        stop: &stop,
        names: Names::default(),
        visited: HashSet::new(),
    };
    for dir in SEARCH_DIRS {
        // Each listed directory is walked in full, even when it is the same directory as
        // another one (merged /usr): osquery reports the file under both names.
        walk.visited.clear();
        if let Ok(m) = fs::metadata(dir) {
            walk.visited.insert((m.dev(), m.ino()));
        }
        walk.dir(Path::new(dir), 1);
        ctx.check()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};
    use std::collections::BTreeSet;
    use std::os::unix::fs::{PermissionsExt, symlink};
    use std::process::Command;

    type Row = (String, String, String, String);

    fn scan(host: &Host) -> BTreeSet<Row> {
        let ctx = QueryContext::everything(&SPEC, host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        rows.iter()
            .map(|r| {
                assert_eq!(r[Col::pid_with_namespace as usize], Value::Integer(0));
                let t = |c: Col| r[c as usize].as_text().unwrap().into_owned();
                (
                    t(Col::path),
                    t(Col::username),
                    t(Col::groupname),
                    t(Col::permissions),
                )
            })
            .collect()
    }

    /// What find(1) and stat(1) report for the non-/tmp directories: every entry that is
    /// (or links to) a regular file with a set-ID bit.
    fn find_and_stat() -> BTreeSet<Row> {
        let mut cmd = Command::new("find");
        cmd.arg("-H");
        cmd.args(&SEARCH_DIRS[..6]);
        cmd.args([
            "(",
            "-type",
            "f",
            "-o",
            "-type",
            "l",
            ")",
            "-exec",
            "stat",
            "-L",
            "-c",
            "%F|%A|%U|%G|%n",
            "{}",
            "+",
        ]);
        let out = cmd.output().expect("find runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut want = BTreeSet::new();
        for line in text.lines() {
            let f: Vec<&str> = line.splitn(5, '|').collect();
            if f.len() != 5 || f[0] != "regular file" {
                continue;
            }
            let a = f[1].as_bytes();
            let setuid = matches!(a[3], b's' | b'S');
            let setgid = matches!(a[6], b's' | b'S');
            let perms = match (setuid, setgid) {
                (true, true) => "SG",
                (true, false) => "S",
                (false, true) => "G",
                _ => continue,
            };
            want.insert((
                f[4].to_owned(),
                f[2].to_owned(),
                f[3].to_owned(),
                perms.to_owned(),
            ));
        }
        want
    }

    #[test]
    fn system_directories_match_find() {
        let host = Host::default();
        let got: BTreeSet<Row> = scan(&host)
            .into_iter()
            .filter(|r| !r.0.starts_with("/tmp/"))
            .collect();
        let want = find_and_stat();
        assert_eq!(got, want);
        // A Debian base system always has a set-user-ID passwd or su.
        assert!(
            got.iter()
                .any(|r| r.0.ends_with("/passwd") || r.0.ends_with("/su"))
        );
    }

    #[test]
    fn set_id_files_in_tmp_are_found() {
        let host = Host::default();
        let tmp = tempfile::Builder::new()
            .prefix("oxq-suid")
            .tempdir_in("/tmp")
            .unwrap();
        let r = tmp.path();
        fs::create_dir_all(r.join("deep/er")).unwrap();
        let make = |name: &str, mode: u32| {
            let p = r.join(name);
            fs::write(&p, b"#!/bin/sh\n").unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            p.to_str().unwrap().to_owned()
        };
        let u = make("u", 0o4755);
        let g = make("deep/g", 0o2755);
        let ug = make("deep/er/ug", 0o6711);
        let plain = make("plain", 0o755);
        symlink(&u, r.join("link-to-u")).unwrap();
        // A linked directory is not descended into.
        symlink(r.join("deep"), r.join("linked-dir")).unwrap();
        let uid = fs::metadata(&u).unwrap().uid();
        let gid = fs::metadata(&u).unwrap().gid();
        let user = Command::new("id").arg("-un").output().unwrap();
        let user = String::from_utf8(user.stdout).unwrap().trim().to_owned();
        assert_eq!(uid, unsafe { libc::geteuid() });
        let group = Command::new("getent")
            .args(["group", &gid.to_string()])
            .output()
            .unwrap();
        let group = String::from_utf8(group.stdout).unwrap();
        let group = group.split(':').next().unwrap().to_owned();

        let prefix = format!("{}/", r.display());
        let got: BTreeSet<Row> = scan(&host)
            .into_iter()
            .filter(|row| row.0.starts_with(&prefix))
            .collect();
        let row = |p: String, perms: &str| (p, user.clone(), group.clone(), perms.to_owned());
        let want: BTreeSet<Row> = [
            row(u, "S"),
            row(g, "G"),
            row(ug, "SG"),
            row(format!("{prefix}link-to-u"), "S"),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
        assert!(!got.iter().any(|r| r.0 == plain));
    }

    #[test]
    fn namespace_constraint_gives_no_rows() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::pid_with_namespace,
            oxquery_table::Op::Eq,
            1,
        );
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert!(rows.is_empty());
    }
}
