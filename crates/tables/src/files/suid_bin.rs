//! `suid_bin`: files with the set-user-ID or set-group-ID bit in osquery's fixed list of
//! binary directories, walked recursively.
//!
//! As in osquery: the listed directories themselves are opened through symbolic links
//! (`/bin` on a merged-/usr system lists `/usr/bin` under the name `/bin`), symbolic links
//! inside them are followed to decide whether an entry is a set-ID regular file (and
//! whose it is), but linked directories are not descended into. `/tmp` is on the list,
//! as in osquery, because attackers like to drop set-ID copies of shells there.

use oxquery_sys::safe_read::Root;
use oxquery_sys::users::{self, nss_group_by_gid, nss_user_by_uid};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::{HashMap, HashSet};
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
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Walk the directories inside this process's mount namespace (names from its /etc/passwd and /etc/group); 0 in rows from the host's",
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
    /// Inside another process's mount namespace, the names come from its root's
    /// /etc/passwd and /etc/group only (our NSS modules answer for the host): the maps
    /// are filled up front and NSS is never asked.
    local_only: bool,
}

impl Names {
    /// The names of `root`'s /etc/passwd and /etc/group (read safely inside it).
    fn of_root(ctx: &QueryContext, root: &Root) -> Names {
        let policy = crate::common::user_file_policy(ctx);
        let read = |p: &str| crate::common::read_file_in(ctx, root, Path::new(p), &policy);
        let users = read("/etc/passwd")
            .map(|t| {
                users::parse_passwd(&t)
                    .into_iter()
                    .map(|p| (p.uid, p.name))
                    .collect()
            })
            .unwrap_or_default();
        let groups = read("/etc/group")
            .map(|t| {
                users::parse_group(&t)
                    .into_iter()
                    .map(|g| (g.gid, g.name))
                    .collect()
            })
            .unwrap_or_default();
        Names {
            users,
            groups,
            local_only: true,
        }
    }

    fn user(&mut self, uid: u32) -> &str {
        let local_only = self.local_only;
        self.users.entry(uid).or_insert_with(|| {
            let found = (!local_only).then(|| nss_user_by_uid(uid)).flatten();
            found.map_or_else(|| uid.to_string(), |p| p.name)
        })
    }
    fn group(&mut self, gid: u32) -> &str {
        let local_only = self.local_only;
        self.groups.entry(gid).or_insert_with(|| {
            let found = (!local_only).then(|| nss_group_by_gid(gid)).flatten();
            found.map_or_else(|| gid.to_string(), |g| g.name)
        })
    }
}

struct Walk<'r, 's> {
    rows: &'r mut Rows<'s>,
    stop: &'r dyn Fn() -> bool,
    names: Names,
    visited: HashSet<(u64, u64)>,
    /// Where paths resolve: ours, or a process's root.
    root: &'r Root,
}

impl Walk<'_, '_> {
    fn dir(&mut self, dir: &Path, depth: usize) {
        let names = match self.root.read_dir_names(dir) {
            Ok(e) => e,
            Err(e) => {
                log::debug!("suid_bin: cannot list {}: {e}", dir.display());
                return;
            }
        };
        for name in names {
            if (self.stop)() {
                return;
            }
            let path = dir.join(name);
            let Ok(own) = self.root.symlink_metadata(&path) else {
                continue;
            };
            if own.is_dir() {
                if depth < MAX_DEPTH && self.visited.insert((own.dev(), own.ino())) {
                    self.dir(&path, depth + 1);
                }
                continue;
            }
            // Regular files and links to them; the followed stat decides.
            let Ok(meta) = self.root.metadata(&path) else {
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
            row.set(Col::pid_with_namespace, self.root.pid());
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for root in crate::common::namespace_roots(ctx, Col::pid_with_namespace) {
        scan(ctx, rows, &root)?;
    }
    Ok(())
}

/// The set-id files of the search directories, as seen from `root`.
fn scan(ctx: &QueryContext, rows: &mut Rows, root: &Root) -> TableResult {
    let stop = || ctx.is_stopped();
    let mut walk = Walk {
        rows,
        stop: &stop,
        names: match root.pid() {
            0 => Names::default(),
            _ => Names::of_root(ctx, root),
        },
        visited: HashSet::new(),
        root,
    };
    for dir in SEARCH_DIRS {
        // Each listed directory is walked in full, even when it is the same directory as
        // another one (merged /usr): osquery reports the file under both names.
        walk.visited.clear();
        if let Ok(m) = root.metadata(Path::new(dir)) {
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
    use std::fs;
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
    fn pid_with_namespace_walks_that_root_with_its_names() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let bin = c.root().join("usr/bin");
        fs::create_dir_all(&bin).unwrap();
        let tool = bin.join("tool");
        fs::write(&tool, b"x").unwrap();
        std::os::unix::fs::chown(&tool, Some(4242), Some(4343)).unwrap();
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o4755)).unwrap();
        // A set-uid file of the host's, reached by an absolute link: not inside.
        let host_file = c.make_hostile("usr/bin/evil", "x");
        fs::set_permissions(&host_file, fs::Permissions::from_mode(0o4755)).unwrap();
        let host = Host::default();
        let ctx = c.query(&SPEC, &host, Col::pid_with_namespace.into());
        let rows = Rows::collect(&ctx, generate).unwrap();
        let got: Vec<Vec<Value>> = rows.iter().map(<[Value]>::to_vec).collect();
        assert_eq!(
            got,
            [vec![
                Value::from("/usr/bin/tool"),
                Value::from("contained"),
                Value::from("contained"),
                Value::from("S"),
                Value::Integer(c.pid()),
            ]]
        );
    }
}
