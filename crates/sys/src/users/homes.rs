//! Per-user files: which accounts a per-user query covers, and the files under their homes.
//!
//! Tables that read files under home directories (`shell_history`, `authorized_keys`,
//! browser extensions, ...) declare a `uid` column and call [`users_for`] with a
//! [`UserSelection`] built from the query's `uid` (and, where a table has one, `username`)
//! equality constraints:
//!
//! * no constraint: every account of `/etc/passwd`, in file order;
//! * `uid = X` (or `IN`): the `/etc/passwd` account with that uid, else the NSS answer for
//!   it (osquery retries remote directories only for named uids, never for a full scan);
//! * `username = 'x'`: likewise by name.
//!
//! [`for_each_user_file`] then walks the chosen accounts' files (paths relative to each
//! home). Those files belong to the users, so tables open them with
//! [`crate::safe_read`], never with a plain `open`. Tests inject accounts with
//! [`parse_passwd_line`](super::parse_passwd_line) whose `dir` is a temporary directory, so table code takes a slice
//! of [`Passwd`], not a query.

use super::accounts::{PASSWD_PATH, Passwd, local_users, nss_user_by_name, nss_user_by_uid};
use std::path::Path;

/// Which accounts a per-user query covers: the `=`/`IN` values of its `uid` and
/// `username` constraints (`None` = unconstrained).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSelection {
    pub uids: Option<Vec<i64>>,
    pub usernames: Option<Vec<String>>,
}

impl UserSelection {
    /// Every account.
    pub fn all() -> Self {
        Self::default()
    }
}

/// The accounts a per-user table should read, as the module documentation describes:
/// `/etc/passwd` (all of it, or the constrained uids/names), with uids or names missing
/// there looked up through NSS. Unreadable `/etc/passwd` is logged and treated as empty.
pub fn users_for(selection: &UserSelection) -> Vec<Passwd> {
    let local = local_users().unwrap_or_else(|e| {
        log::warn!("cannot read {PASSWD_PATH}: {e}");
        Vec::new()
    });
    select_from(local, selection, nss_user_by_uid, nss_user_by_name)
}

/// [`users_for`] over a given account list and lookup functions (what tests drive).
pub fn select_from(
    local: Vec<Passwd>,
    selection: &UserSelection,
    by_uid: impl Fn(u32) -> Option<Passwd>,
    by_name: impl Fn(&str) -> Option<Passwd>,
) -> Vec<Passwd> {
    if let Some(uids) = &selection.uids {
        let mut out = Vec::new();
        for &uid in uids {
            let Ok(uid) = u32::try_from(uid) else {
                continue;
            };
            let before = out.len();
            out.extend(local.iter().filter(|p| p.uid == uid).cloned());
            if out.len() == before {
                out.extend(by_uid(uid));
            }
        }
        if let Some(names) = &selection.usernames {
            out.retain(|p| names.contains(&p.name));
        }
        return out;
    }
    if let Some(names) = &selection.usernames {
        let mut out = Vec::new();
        for name in names {
            let before = out.len();
            out.extend(local.iter().filter(|p| &p.name == name).cloned());
            if out.len() == before {
                out.extend(by_name(name));
            }
        }
        return out;
    }
    local
}

/// Calls `f(account, path)` for each of the `relative` paths under each account's home:
/// accounts in order, then paths in order. The one walk every per-user table does.
pub fn for_each_user_file(users: &[Passwd], relative: &[&str], mut f: impl FnMut(&Passwd, &Path)) {
    for user in users {
        let home = user.home();
        for rel in relative {
            f(user, &home.join(rel));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::{parse_passwd, parse_passwd_line};

    #[test]
    fn selection_prefers_local_then_nss() {
        let local = parse_passwd(b"a:x:1:1::/h/a:/bin/sh\nb:x:2:2::/h/b:/bin/sh\n");
        let remote = |uid: u32| parse_passwd_line(format!("r:x:{uid}:0::/r:/bin/sh").as_bytes());
        let by_name = |n: &str| parse_passwd_line(format!("{n}:x:77:0::/r:/bin/sh").as_bytes());
        let all = select_from(local.clone(), &UserSelection::all(), remote, by_name);
        assert_eq!(all, local);
        let sel = UserSelection {
            uids: Some(vec![2, 500, -1]),
            usernames: None,
        };
        let got = select_from(local.clone(), &sel, remote, by_name);
        assert_eq!(
            got.iter()
                .map(|p| (p.uid, p.name.as_str()))
                .collect::<Vec<_>>(),
            [(2, "b"), (500, "r")]
        );
        let sel = UserSelection {
            uids: None,
            usernames: Some(vec!["a".into(), "zz".into()]),
        };
        let got = select_from(local, &sel, remote, by_name);
        assert_eq!(
            got.iter()
                .map(|p| (p.uid, p.name.as_str()))
                .collect::<Vec<_>>(),
            [(1, "a"), (77, "zz")]
        );
    }

    #[test]
    fn user_files_in_account_then_path_order() {
        let users = parse_passwd(b"a:x:1:1::/h/a:/bin/sh\nb:x:2:2::/h/b/:/bin/sh\n");
        let mut seen = Vec::new();
        for_each_user_file(&users, &[".x", ".ssh/y"], |u, p| {
            seen.push((u.uid, p.to_str().unwrap().to_owned()))
        });
        let s = |u: u32, p: &str| (u, p.to_owned());
        assert_eq!(
            seen,
            [
                s(1, "/h/a/.x"),
                s(1, "/h/a/.ssh/y"),
                s(2, "/h/b/.x"),
                s(2, "/h/b/.ssh/y")
            ]
        );
    }
}
