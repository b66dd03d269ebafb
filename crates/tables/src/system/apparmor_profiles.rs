//! `apparmor_profiles`: the AppArmor profiles loaded in the kernel, from securityfs.

use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::{Path, PathBuf};

table! {
    name: "apparmor_profiles",
    description: "AppArmor profiles loaded in the kernel, child profiles included, from /sys/kernel/security/apparmor. No rows without AppArmor.",
    columns: {
        path: Text [INDEX] "Full profile name: a child profile is its parent's name, //, and its own",
        name: Text [] "Profile name",
        attach: Text [] "Which executables the profile attaches to",
        mode: Text [] "Profile mode: enforce, complain, kill or unconfined",
        sha1: Text [COLLATE_NOCASE] "SHA-1 hash of the loaded policy, when the kernel publishes one",
        sha256: Text [COLLATE_NOCASE] "SHA-256 hash of the loaded policy, when the kernel publishes one",
    },
    examples: ["select path, mode from apparmor_profiles where mode = 'complain'"],
}

const PROFILES_DIR: &str = "/sys/kernel/security/apparmor/policy/profiles";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Profile {
    path: String,
    name: String,
    attach: String,
    mode: String,
    sha1: Option<String>,
    sha256: Option<String>,
}

fn read_trimmed(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    Some(String::from_utf8_lossy(&bytes).trim().to_owned())
}

/// The profiles below `dir` (a `profiles` directory), children after their parent.
fn read_profiles(dir: &Path) -> std::io::Result<Vec<Profile>> {
    let mut out = Vec::new();
    let mut queue: Vec<(String, PathBuf, usize)> = Vec::new();
    let list = |dir: &Path| -> std::io::Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        v.reverse();
        Ok(v)
    };
    queue.extend(list(dir)?.into_iter().map(|p| (String::new(), p, 0)));
    while let Some((parent, profile_dir, depth)) = queue.pop() {
        let (Some(name), Some(attach), Some(mode)) = (
            read_trimmed(&profile_dir.join("name")),
            read_trimmed(&profile_dir.join("attach")),
            read_trimmed(&profile_dir.join("mode")),
        ) else {
            log::info!(
                "apparmor_profiles: cannot read profile {}",
                profile_dir.display()
            );
            continue;
        };
        let path = if parent.is_empty() {
            name.clone()
        } else {
            format!("{parent}//{name}")
        };
        let children = profile_dir.join("profiles");
        if depth < 16
            && let Ok(kids) = list(&children)
        {
            queue.extend(kids.into_iter().map(|p| (path.clone(), p, depth + 1)));
        }
        out.push(Profile {
            path,
            name,
            attach,
            mode,
            sha1: read_trimmed(&profile_dir.join("sha1")),
            sha256: read_trimmed(&profile_dir.join("sha256")),
        });
    }
    Ok(out)
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let profiles = match read_profiles(Path::new(PROFILES_DIR)) {
        Ok(p) => p,
        Err(e) => {
            log::info!(
                "apparmor_profiles: cannot list {PROFILES_DIR} ({e}): AppArmor is not enabled or securityfs is not mounted"
            );
            return Ok(());
        }
    };
    let wanted = ctx.eq_texts(Col::path);
    for p in profiles {
        if wanted.as_ref().is_some_and(|w| !w.contains(&p.path)) {
            continue;
        }
        let mut row = rows.row();
        row.set(Col::path, p.path);
        row.set(Col::name, p.name);
        row.set(Col::attach, p.attach);
        row.set(Col::mode, p.mode);
        row.set(Col::sha1, p.sha1);
        row.set(Col::sha256, p.sha256);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Host;

    fn profile(dir: &Path, name: &str, mode: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
        std::fs::write(dir.join("attach"), "/usr/bin/x\n").unwrap();
        std::fs::write(dir.join("mode"), format!("{mode}\n")).unwrap();
    }

    #[test]
    fn reads_profiles_and_children_from_a_fixture() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        profile(&p.join("usr.bin.x.1"), "/usr/bin/x", "enforce");
        std::fs::write(p.join("usr.bin.x.1/sha256"), "ABCDEF\n").unwrap();
        profile(&p.join("usr.bin.x.1/profiles/child.2"), "child", "complain");
        std::fs::create_dir_all(p.join("broken.3")).unwrap();
        std::fs::write(p.join("not-a-dir"), "x").unwrap();
        let got = read_profiles(p).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].path, "/usr/bin/x");
        assert_eq!(got[0].mode, "enforce");
        assert_eq!(got[0].sha256.as_deref(), Some("ABCDEF"));
        assert_eq!(got[0].sha1, None);
        assert_eq!(got[1].path, "/usr/bin/x//child");
        assert_eq!(got[1].mode, "complain");
        assert!(read_profiles(&p.join("missing")).is_err());
    }

    #[test]
    fn live_rows_match_the_profile_directories() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        // Top-level profiles are the directories the kernel lists; children add more.
        let top = std::fs::read_dir(PROFILES_DIR)
            .map(|d| d.count())
            .unwrap_or(0);
        assert!(rows.len() >= top);
        if top == 0 {
            assert!(rows.is_empty());
        }
    }
}
