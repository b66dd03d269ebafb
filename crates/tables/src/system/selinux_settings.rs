//! `selinux_settings`: the state of SELinux as its file system (selinuxfs) shows it.

use oxquery_sys::mounts;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::{Path, PathBuf};

table! {
    name: "selinux_settings",
    description: "SELinux settings read from selinuxfs: top-level switches, booleans, policy capabilities, initial contexts and the permissions of each object class. No rows without SELinux.",
    columns: {
        scope: Text [] "Where the key lives: empty for top-level settings, booleans, policy_capabilities, initial_contexts or class",
        key: Text [] "Setting name (for classes: the class and permission directory)",
        value: Text [] "Setting value; on/off for booleans, the permission name for classes",
    },
    examples: ["select * from selinux_settings where scope = 'booleans'"],
}

/// Top-level files of selinuxfs reported with an empty scope.
const ROOT_KEYS: [&str; 6] = [
    "checkreqprot",
    "deny_unknown",
    "enforce",
    "mls",
    "policyvers",
    "reject_unknown",
];
/// Directories whose files are one setting each.
const SCOPES: [&str; 3] = ["booleans", "policy_capabilities", "initial_contexts"];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Setting {
    scope: String,
    key: String,
    value: String,
}

/// A file's content without the trailing NUL/newline the kernel may add.
fn read_value(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(
        String::from_utf8_lossy(&bytes)
            .trim_end_matches(['\0', '\n'])
            .to_owned(),
    )
}

/// A boolean file holds `current pending`; osquery shows a settled value as on/off.
fn boolean_value(raw: &str) -> Option<&'static str> {
    match raw.trim() {
        "0 0" => Some("off"),
        "1 1" => Some("on"),
        _ => None,
    }
}

fn sorted_entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

/// Every setting of the selinuxfs mounted at `fs`.
fn read_settings(fs: &Path) -> Vec<Setting> {
    let mut out = Vec::new();
    for key in ROOT_KEYS {
        match read_value(&fs.join(key)) {
            Some(value) => out.push(Setting {
                scope: String::new(),
                key: key.to_owned(),
                value,
            }),
            None => log::info!("selinux_settings: cannot read {}", fs.join(key).display()),
        }
    }
    for scope in SCOPES {
        for (key, path) in sorted_entries(&fs.join(scope)) {
            if path.is_dir() {
                continue;
            }
            let Some(raw) = read_value(&path) else {
                log::info!("selinux_settings: cannot read {}", path.display());
                continue;
            };
            let value = if scope == "booleans" {
                match boolean_value(&raw) {
                    Some(v) => v.to_owned(),
                    None => {
                        log::info!(
                            "selinux_settings: {} holds {raw:?}, not a settled boolean",
                            path.display()
                        );
                        continue;
                    }
                }
            } else {
                raw
            };
            out.push(Setting {
                scope: scope.to_owned(),
                key,
                value,
            });
        }
    }
    // class/<name>/perms/<perm>: one row per permission file (the index files are skipped).
    let class_root = fs.join("class");
    let mut stack = vec![class_root.clone()];
    while let Some(dir) = stack.pop() {
        let mut subdirs = Vec::new();
        for (name, path) in sorted_entries(&dir) {
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if path.components().count() < class_root.components().count() + 8 {
                    subdirs.push(path);
                }
                continue;
            }
            if name == "index" {
                continue;
            }
            let key = dir
                .strip_prefix(&class_root)
                .map(|k| k.to_string_lossy().into_owned())
                .unwrap_or_default();
            if key.is_empty() {
                continue;
            }
            out.push(Setting {
                scope: "class".to_owned(),
                key,
                value: name,
            });
        }
        stack.extend(subdirs.into_iter().rev());
    }
    out
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = match mounts::read_mounts(mounts::PROC_MOUNTS) {
        Ok(t) => t,
        Err(e) => {
            log::warn!("selinux_settings: cannot read {}: {e}", mounts::PROC_MOUNTS);
            return Ok(());
        }
    };
    let Some(fs) = table.iter().find(|m| m.fstype == "selinuxfs") else {
        log::info!("selinux_settings: no selinuxfs is mounted (SELinux is not enabled)");
        return Ok(());
    };
    for s in read_settings(Path::new(&fs.target)) {
        let mut row = rows.row();
        row.set(Col::scope, s.scope);
        row.set(Col::key, s.key);
        row.set(Col::value, s.value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Host;

    #[test]
    fn reads_a_fixture_selinuxfs() {
        let fs = tempfile::tempdir().unwrap();
        let p = fs.path();
        std::fs::write(p.join("enforce"), "1").unwrap();
        std::fs::write(p.join("mls"), "0").unwrap();
        std::fs::write(p.join("policyvers"), "33\n").unwrap();
        std::fs::create_dir_all(p.join("booleans")).unwrap();
        std::fs::write(p.join("booleans/httpd_can_network_connect"), "1 1").unwrap();
        std::fs::write(p.join("booleans/ftpd_anon_write"), "0 0").unwrap();
        std::fs::write(p.join("booleans/pending"), "0 1").unwrap();
        std::fs::create_dir_all(p.join("initial_contexts")).unwrap();
        std::fs::write(
            p.join("initial_contexts/kernel"),
            "system_u:system_r:kernel_t:s0\0",
        )
        .unwrap();
        std::fs::create_dir_all(p.join("class/file/perms")).unwrap();
        std::fs::write(p.join("class/file/index"), "7").unwrap();
        std::fs::write(p.join("class/file/perms/read"), "2").unwrap();
        std::fs::write(p.join("class/file/perms/write"), "3").unwrap();
        let got: Vec<(String, String, String)> = read_settings(p)
            .into_iter()
            .map(|s| (s.scope, s.key, s.value))
            .collect();
        let t = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(
            got,
            vec![
                t("", "enforce", "1"),
                t("", "mls", "0"),
                t("", "policyvers", "33"),
                t("booleans", "ftpd_anon_write", "off"),
                t("booleans", "httpd_can_network_connect", "on"),
                t(
                    "initial_contexts",
                    "kernel",
                    "system_u:system_r:kernel_t:s0"
                ),
                t("class", "file/perms", "read"),
                t("class", "file/perms", "write"),
            ]
        );
    }

    #[test]
    fn live_rows_exist_exactly_when_selinuxfs_is_mounted() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let mounted = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| {
                l.split(" - ")
                    .nth(1)
                    .is_some_and(|t| t.starts_with("selinuxfs "))
            });
        assert_eq!(!rows.is_empty(), mounted);
    }
}
