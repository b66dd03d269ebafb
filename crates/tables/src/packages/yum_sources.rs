//! `yum_sources`: the repositories yum is configured with: the sections of
//! `/etc/yum.conf` other than `[main]` and of every `<reposdir>/*.repo` file (`reposdir`
//! from `[main]`, `/etc/yum.repos.d` by default), one row per section, as osquery.
//!
//! The files are INI: `[section]` headers, `key=value` options, `#` and `;` comments.
//! osquery rejects a whole file its INI parser cannot read; here a line that is not an
//! option is skipped and the rest kept. On hosts without yum (Debian) there are no rows.

use crate::common;
use oxquery_sys::safe_read::{self, Root};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::{Path, PathBuf};

table! {
    name: "yum_sources",
    description: "Repositories yum is configured with, from /etc/yum.conf and the .repo files of its reposdir (/etc/yum.repos.d).",
    columns: {
        name: Text [] "Repository name (its name option)",
        source: Text [] "File the repository is configured in",
        baseurl: Text [] "Repository base URL(s)",
        mirrorlist: Text [] "URL of a list of the repository's mirrors",
        metalink: Text [] "URL of the repository's metalink (mirrors and checksums of repomd.xml)",
        enabled: Text [] "Whether the repository is used (1 or 0, as written)",
        gpgcheck: Text [] "Whether packages' GPG signatures are checked (1 or 0, as written)",
        gpgkey: Text [] "URL(s) of the repository's GPG keys",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Read the configuration inside this process's mount namespace; 0 in rows read from the host's",
    },
    examples: [
        "select name, baseurl, enabled, gpgcheck from yum_sources",
    ],
}

const YUM_CONF: &str = "etc/yum.conf";
const DEFAULT_REPOS_DIR: &str = "/etc/yum.repos.d";

/// One `[section]` with its options in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Section {
    name: String,
    options: Vec<(String, String)>,
}

impl Section {
    fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The sections of an INI text; options before the first header are dropped.
fn parse_ini(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            if let Some(name) = header.strip_suffix(']') {
                sections.push(Section {
                    name: name.trim().to_owned(),
                    options: Vec::new(),
                });
            }
            continue;
        }
        let (Some(section), Some((key, value))) = (sections.last_mut(), line.split_once('='))
        else {
            continue;
        };
        section
            .options
            .push((key.trim().to_owned(), value.trim().to_owned()));
    }
    sections
}

/// Adds a row for each repository section of `text` (read from `shown`).
fn add_rows(text: &str, shown: &Path, pid: i64, rows: &mut Rows) -> Option<String> {
    let mut repos_dir = None;
    for section in parse_ini(text) {
        if section.name == "main" {
            repos_dir = section.get("reposdir").map(str::to_owned);
            continue;
        }
        let mut row = rows.row();
        row.set(Col::name, section.get("name"));
        row.set_with(Col::source, || shown.to_owned());
        row.set(Col::baseurl, section.get("baseurl"));
        row.set(Col::mirrorlist, section.get("mirrorlist"));
        row.set(Col::metalink, section.get("metalink"));
        row.set(Col::enabled, section.get("enabled"));
        row.set(Col::gpgcheck, section.get("gpgcheck"));
        row.set(Col::gpgkey, section.get("gpgkey"));
        row.set(Col::pid_with_namespace, pid);
    }
    repos_dir
}

/// The rows of the yum configuration inside `root` (ours, a process's, a fixture).
fn sources_under(ctx: &QueryContext, root: &Root, rows: &mut Rows) {
    let pid = root.pid();
    let policy = common::user_file_policy(ctx);
    let conf = Path::new("/").join(YUM_CONF);
    let mut repos_dir = None;
    match safe_read::read_bounded_in(root, &conf, &policy) {
        Ok(text) => {
            let shown = Path::new("/").join(YUM_CONF);
            repos_dir = add_rows(&String::from_utf8_lossy(&text), &shown, pid, rows);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let conf = root.display(&conf);
            log::info!("yum_sources: no {} (not a yum system?)", conf.display());
        }
        Err(e) => common::report_read_error(ctx, &root.display(&conf), &e),
    }
    // reposdir may list several directories; the first is the one yum writes to.
    let repos_dir = repos_dir
        .as_deref()
        .and_then(|d| d.split([' ', ',']).find(|s| !s.is_empty()))
        .unwrap_or(DEFAULT_REPOS_DIR)
        .to_owned();
    let dir = Path::new("/").join(repos_dir.trim_start_matches('/'));
    let mut files: Vec<PathBuf> = match root.read_dir_names(&dir) {
        Ok(names) => names
            .into_iter()
            .map(|n| dir.join(n))
            .filter(|p| p.extension().is_some_and(|e| e == "repo"))
            .collect(),
        Err(e) => {
            let dir = root.display(&dir);
            log::debug!("yum_sources: cannot list {}: {e}", dir.display());
            return;
        }
    };
    files.sort();
    for file in files {
        if let Some(text) = common::read_file_in(ctx, root, &file, &policy) {
            add_rows(&String::from_utf8_lossy(&text), &file, pid, rows);
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for root in common::namespace_roots(ctx, Col::pid_with_namespace) {
        sources_under(ctx, &root, rows);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::text;
    use oxquery_table::{Host, Value};
    use std::fs;

    fn rows_under(root: &Path) -> Vec<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        let root = Root::directory(root).unwrap();
        sources_under(&ctx, &root, &mut rows);
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    #[test]
    fn yum_conf_and_repo_files_of_a_fixture() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc/repos")).unwrap();
        fs::write(
            root.path().join("etc/yum.conf"),
            "[main]\ngpgcheck=1\nreposdir=/etc/repos\n\n[local]\nname=Local\nbaseurl=file:///srv/repo\nenabled=0\n",
        )
        .unwrap();
        fs::write(
            root.path().join("etc/repos/b.repo"),
            "# Fedora\n[fedora]\nname = Fedora $releasever\n\
             metalink=https://mirrors.example.org/metalink?repo=fedora-$releasever\n\
             enabled=1\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY\n\
             garbage line without equals\n\n; comment\n[updates]\nname=Updates\n\
             mirrorlist=https://mirrors.example.org/list\n",
        )
        .unwrap();
        fs::write(
            root.path().join("etc/repos/a.repo"),
            "[a]\nbaseurl=http://a.example.org/\n",
        )
        .unwrap();
        fs::write(
            root.path().join("etc/repos/c.repo.rpmsave"),
            "[c]\nname=C\n",
        )
        .unwrap();
        let rows = rows_under(root.path());
        let cell = |r: &Vec<Value>, c: Col| match &r[c as usize] {
            Value::Null => None,
            v => Some(text(v)),
        };
        let summary: Vec<(Option<String>, String)> = rows
            .iter()
            .map(|r| (cell(r, Col::name), cell(r, Col::source).unwrap()))
            .collect();
        let s = |n: Option<&str>, f: &str| (n.map(str::to_owned), f.to_owned());
        assert_eq!(
            summary,
            [
                s(Some("Local"), "/etc/yum.conf"),
                s(None, "/etc/repos/a.repo"),
                s(Some("Fedora $releasever"), "/etc/repos/b.repo"),
                s(Some("Updates"), "/etc/repos/b.repo"),
            ]
        );
        assert_eq!(
            cell(&rows[0], Col::baseurl).as_deref(),
            Some("file:///srv/repo")
        );
        assert_eq!(cell(&rows[0], Col::enabled).as_deref(), Some("0"));
        assert_eq!(
            cell(&rows[2], Col::metalink).as_deref(),
            Some("https://mirrors.example.org/metalink?repo=fedora-$releasever")
        );
        assert_eq!(cell(&rows[2], Col::gpgcheck).as_deref(), Some("1"));
        assert_eq!(
            cell(&rows[2], Col::gpgkey).as_deref(),
            Some("file:///etc/pki/rpm-gpg/RPM-GPG-KEY")
        );
        assert_eq!(
            cell(&rows[3], Col::mirrorlist).as_deref(),
            Some("https://mirrors.example.org/list")
        );
        assert_eq!(rows[3][Col::pid_with_namespace as usize], Value::Integer(0));
    }

    #[test]
    fn default_repos_dir_and_hostile_files() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("etc/yum.repos.d");
        fs::create_dir_all(&dir).unwrap();
        let garbage: Vec<u8> = (0..50_000u32).map(|i| (i * 7919 % 256) as u8).collect();
        fs::write(dir.join("garbage.repo"), &garbage).unwrap();
        fs::write(
            dir.join("cut.repo"),
            "[ok]\nname=OK\n[cut\nbaseurl=http://x",
        )
        .unwrap();
        crate::common::testing::mkfifo(&dir.join("fifo.repo"));
        let rows = rows_under(root.path());
        let names: Vec<String> = rows
            .iter()
            .filter_map(|r| match &r[Col::name as usize] {
                Value::Null => None,
                v => Some(text(v)),
            })
            .collect();
        assert!(names.contains(&"OK".to_owned()), "{names:?}");
    }

    #[test]
    fn no_rows_on_a_host_without_yum() {
        if Path::new("/etc/yum.conf").exists() || Path::new(DEFAULT_REPOS_DIR).exists() {
            return;
        }
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        assert!(crate::testing::rows_of(&ctx, generate).is_empty());
    }
}
