//! `apt_sources`: the binary (`deb`) package sources apt is configured with, from the
//! one-line format (`/etc/apt/sources.list`, `/etc/apt/sources.list.d/*.list`) and the
//! deb822 format (`/etc/apt/sources.list.d/*.sources`), one row per repository URI and
//! suite.
//!
//! As osquery: `deb-src` entries are left out; `name` is the URI without its scheme, a
//! space and the suite; `base_uri` the URI without trailing slashes; and `release`
//! (Codename), `version`, `maintainer` (Origin), `components` and `architectures` come
//! from the suite's Release file that `apt update` saved in `/var/lib/apt/lists`
//! (`InRelease` or `Release`). Like osquery, a source whose Release file apt has not
//! fetched gives no row (apt has not used it yet). osquery reads only the one-line
//! format; `.sources` files (the default since Debian 12 and Ubuntu 24.04) are read here
//! too, skipping paragraphs with `Enabled: no`.

use super::deb822;
use crate::common;
use oxquery_sys::safe_read::{self, Root};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::PathBuf;

table! {
    name: "apt_sources",
    description: "Binary package sources apt is configured with (sources.list, sources.list.d/*.list and *.sources), with what their fetched Release files say.",
    columns: {
        name: Text [] "Repository host and path (the URI without its scheme), a space, and the suite",
        source: Text [] "File the source is configured in",
        base_uri: Text [] "Repository base URI, without trailing slashes",
        release: Text [] "Codename of the release, from its Release file",
        version: Text [COLLATE_VERSION_DPKG] "Version of the release, from its Release file",
        maintainer: Text [] "Origin of the release (who publishes it), from its Release file",
        components: Text [] "Components the release offers, space-separated, from its Release file",
        architectures: Text [] "Architectures the release offers, space-separated, from its Release file",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Read the configuration inside this process's mount namespace; 0 in rows read from the host's",
    },
    examples: [
        "select name, base_uri, release from apt_sources",
    ],
}

/// Where apt keeps its configuration and downloaded lists, inside a root (ours, a
/// process's, a test's fixture): paths stay absolute and resolve inside it.
struct AptLayout<'r> {
    root: &'r Root,
}

impl AptLayout<'_> {
    fn path(&self, absolute: &str) -> PathBuf {
        PathBuf::from(absolute)
    }

    /// The files sources are configured in, in apt's order: sources.list, then the
    /// directory's `.list` and `.sources` files by name.
    fn source_files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.path("/etc/apt/sources.list")];
        let dir = self.path("/etc/apt/sources.list.d");
        let mut parts: Vec<PathBuf> = match self.root.read_dir_names(&dir) {
            Ok(names) => names
                .into_iter()
                .map(|n| dir.join(n))
                .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
                .collect(),
            Err(e) => {
                let dir = self.root.display(&dir);
                log::info!("apt_sources: cannot list {}: {e}", dir.display());
                Vec::new()
            }
        };
        parts.sort();
        files.extend(parts);
        files
    }
}

/// One repository and suite of a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AptSource {
    uri: String,
    suite: String,
}

impl AptSource {
    /// The URI without trailing slashes.
    fn base_uri(&self) -> &str {
        self.uri.trim_end_matches('/')
    }

    /// `host/path suite`, osquery's name.
    fn name(&self) -> Option<String> {
        let base = self.base_uri();
        let scheme_end = base.find("://")?;
        Some(format!("{} {}", &base[scheme_end + 3..], self.suite))
    }

    /// The URI of the suite's Release file (without `Release`): a suite ending in `/` is
    /// a flat repository's path; otherwise the suite lives under `dists/`.
    fn release_dir(&self) -> String {
        let base = self.base_uri();
        if self.suite.ends_with('/') {
            format!("{base}/{}", self.suite)
        } else {
            format!("{base}/dists/{}/", self.suite)
        }
    }
}

/// The file name apt gives a downloaded URI in its lists directory (apt's
/// `URItoFileName`): the scheme and any user:password dropped, characters apt quotes
/// written as `%xx`, and `/` turned into `_`.
fn list_file_name(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let rest = match (rest.find('@'), rest.find('/')) {
        (Some(at), Some(slash)) if at < slash => &rest[at + 1..],
        (Some(at), None) => &rest[at + 1..],
        _ => rest,
    };
    let mut out = String::with_capacity(rest.len());
    for b in rest.bytes() {
        if b == b'/' {
            out.push('_');
        } else if b <= 0x20 || b >= 0x7f || b"\\|{}[]<>\"^~=!@#$%^&*".contains(&b) {
            out.push_str(&format!("%{b:02x}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// The `deb` entries of a one-line format file.
fn parse_list(text: &str) -> Vec<AptSource> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut tokens = line.split_ascii_whitespace();
        if tokens.next() != Some("deb") {
            continue;
        }
        let mut tokens = tokens.peekable();
        // Options: `[arch=amd64 signed-by=...]`, possibly over several tokens.
        if tokens.peek().is_some_and(|t| t.starts_with('[')) {
            for t in tokens.by_ref() {
                if t.contains(']') {
                    break;
                }
            }
        }
        let (Some(uri), Some(suite)) = (tokens.next(), tokens.next()) else {
            continue;
        };
        if !uri.contains("://") {
            continue;
        }
        out.push(AptSource {
            uri: uri.to_owned(),
            suite: suite.to_owned(),
        });
    }
    out
}

/// The `deb` entries of a deb822 `.sources` file: every URI with every suite of each
/// enabled paragraph whose Types include `deb`.
fn parse_sources(text: &[u8]) -> Vec<AptSource> {
    let mut out = Vec::new();
    for p in deb822::paragraphs(text) {
        let words = |name: &str| -> Vec<String> {
            p.get(name)
                .map(|v| {
                    String::from_utf8_lossy(v)
                        .split_ascii_whitespace()
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        if !words("Types").iter().any(|t| t == "deb") {
            continue;
        }
        if p.get("Enabled")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"no"))
        {
            continue;
        }
        for uri in words("URIs") {
            if !uri.contains("://") {
                continue;
            }
            for suite in words("Suites") {
                out.push(AptSource {
                    uri: uri.clone(),
                    suite,
                });
            }
        }
    }
    out
}

/// What a Release file says about its release (osquery's five fields).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ReleaseInfo {
    codename: Option<String>,
    version: Option<String>,
    origin: Option<String>,
    components: Option<String>,
    architectures: Option<String>,
}

/// The fields of a Release or InRelease file: its first paragraph of fields (an
/// InRelease file's PGP armour header is a paragraph of its own, skipped).
fn parse_release(text: &[u8]) -> ReleaseInfo {
    let mut info = ReleaseInfo::default();
    for p in deb822::paragraphs(text) {
        // An InRelease file's armour header ("-----BEGIN PGP SIGNED MESSAGE-----",
        // which is no field, and its Hash: lines) is a paragraph of its own.
        if p.fields.iter().all(|(n, _)| *n == b"Hash") {
            continue;
        }
        let get = |name| p.get(name).map(|v| String::from_utf8_lossy(v).into_owned());
        info.codename = get("Codename");
        info.version = get("Version");
        info.origin = get("Origin");
        info.components = get("Components");
        info.architectures = get("Architectures");
        break;
    }
    info
}

fn sources_under(ctx: &QueryContext, root: &Root, rows: &mut Rows) {
    let pid = root.pid();
    let layout = AptLayout { root };
    let policy = common::user_file_policy(ctx);
    let lists = layout.path("/var/lib/apt/lists");
    for file in layout.source_files() {
        let Some(text) = common::read_file_in(ctx, root, &file, &policy) else {
            continue;
        };
        let sources = if file.extension().is_some_and(|e| e == "sources") {
            parse_sources(&text)
        } else {
            parse_list(&String::from_utf8_lossy(&text))
        };
        // The path as the configuration names it, inside the root.
        let shown = &file;
        for source in sources {
            let Some(name) = source.name() else {
                continue;
            };
            let prefix = list_file_name(&source.release_dir());
            let release = ["InRelease", "Release"].iter().find_map(|suffix| {
                let path = lists.join(format!("{prefix}{suffix}"));
                safe_read::read_bounded_in(root, &path, &policy).ok()
            });
            let Some(release) = release else {
                log::debug!(
                    "apt_sources: no Release file of {name} in {} (apt update not run?)",
                    root.display(&lists).display()
                );
                continue;
            };
            let info = parse_release(&release);
            let mut row = rows.row();
            row.set(Col::name, name);
            row.set_with(Col::source, || shown.clone());
            row.set(Col::base_uri, source.base_uri());
            row.set(Col::release, info.codename);
            row.set(Col::version, info.version);
            row.set(Col::maintainer, info.origin);
            row.set(Col::components, info.components);
            row.set(Col::architectures, info.architectures);
            row.set(Col::pid_with_namespace, pid);
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
    use crate::testing::{text, tool_stdout};
    use oxquery_table::{Host, Value};
    use oxquery_test_support::require_tool;
    use std::collections::BTreeSet;
    use std::fs;
    use std::path::Path;

    fn rows_under(root: &Path) -> Vec<Vec<Value>> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        let root = Root::directory(root).unwrap();
        sources_under(&ctx, &root, &mut rows);
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    fn release(codename: &str, version: &str, signed: bool) -> String {
        let body = format!(
            "Origin: Example Org\nLabel: Example\nSuite: stable\nVersion: {version}\n\
             Codename: {codename}\nDate: Sat, 11 Jul 2026 10:16:37 UTC\n\
             Architectures: amd64 arm64\nComponents: main contrib\n\
             Description: Example {version}\nMD5Sum:\n 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 main/Contents-all\n"
        );
        if signed {
            format!(
                "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{body}\
                 -----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n"
            )
        } else {
            body
        }
    }

    #[test]
    fn list_and_sources_files_with_their_release_files() {
        let root = tempfile::tempdir().unwrap();
        let etc = root.path().join("etc/apt/sources.list.d");
        let lists = root.path().join("var/lib/apt/lists");
        fs::create_dir_all(&etc).unwrap();
        fs::create_dir_all(&lists).unwrap();
        fs::write(
            root.path().join("etc/apt/sources.list"),
            "# comment\n\
             deb http://deb.example.org/debian bookworm main # trailing\n\
             deb-src http://deb.example.org/debian bookworm main\n\
             deb [arch=amd64 signed-by=/k.gpg] https://repo.example.com/apt/ stable main\n\
             deb [ trusted=yes ] http://flat.example.net/repo ./\n\
             #deb http://commented.example.org/debian bookworm main\n\
             deb http://nofetch.example.org/debian sid main\n\
             deb incomplete\n\
             deb notauri bookworm main\n",
        )
        .unwrap();
        fs::write(
            etc.join("extra.sources"),
            "Types: deb deb-src\n\
             # a comment line\n\
             URIs: http://a.example.org/debian https://b.example.org/debian/\n\
             Suites: trixie\n trixie-updates\n\
             Components: main\n\n\
             Types: deb\nURIs: http://off.example.org/debian\nSuites: trixie\nEnabled: no\n\n\
             Types: deb-src\nURIs: http://src.example.org/debian\nSuites: trixie\n",
        )
        .unwrap();
        fs::write(
            etc.join("ignored.list.disabled"),
            "deb http://x.org/d y main\n",
        )
        .unwrap();
        let fetched = [
            (
                "deb.example.org_debian_dists_bookworm_InRelease",
                release("bookworm", "12.1", true),
            ),
            (
                "repo.example.com_apt_dists_stable_Release",
                release("stable", "1.0", false),
            ),
            (
                "flat.example.net_repo_._InRelease",
                release("flat", "", true),
            ),
            (
                "a.example.org_debian_dists_trixie_InRelease",
                release("trixie", "13", true),
            ),
            (
                "a.example.org_debian_dists_trixie-updates_InRelease",
                release("trixie", "13.1", true),
            ),
            (
                "b.example.org_debian_dists_trixie_Release",
                release("trixie", "13", false),
            ),
            (
                "b.example.org_debian_dists_trixie-updates_Release",
                release("trixie", "13.1", false),
            ),
            (
                "off.example.org_debian_dists_trixie_InRelease",
                release("trixie", "13", true),
            ),
        ];
        for (name, content) in &fetched {
            fs::write(lists.join(name), content).unwrap();
        }
        let rows = rows_under(root.path());
        let got: Vec<[String; 4]> = rows
            .iter()
            .map(|r| {
                [
                    text(&r[Col::name as usize]),
                    text(&r[Col::source as usize]),
                    text(&r[Col::base_uri as usize]),
                    text(&r[Col::release as usize]),
                ]
            })
            .collect();
        let list = "/etc/apt/sources.list";
        let sources = "/etc/apt/sources.list.d/extra.sources";
        let want = [
            [
                "deb.example.org/debian bookworm",
                list,
                "http://deb.example.org/debian",
                "bookworm",
            ],
            [
                "repo.example.com/apt stable",
                list,
                "https://repo.example.com/apt",
                "stable",
            ],
            [
                "flat.example.net/repo ./",
                list,
                "http://flat.example.net/repo",
                "flat",
            ],
            [
                "a.example.org/debian trixie",
                sources,
                "http://a.example.org/debian",
                "trixie",
            ],
            [
                "a.example.org/debian trixie-updates",
                sources,
                "http://a.example.org/debian",
                "trixie",
            ],
            [
                "b.example.org/debian trixie",
                sources,
                "https://b.example.org/debian",
                "trixie",
            ],
            [
                "b.example.org/debian trixie-updates",
                sources,
                "https://b.example.org/debian",
                "trixie",
            ],
        ]
        .map(|r| r.map(str::to_owned));
        assert_eq!(got, want);
        let first = &rows[0];
        assert_eq!(text(&first[Col::version as usize]), "12.1");
        assert_eq!(text(&first[Col::maintainer as usize]), "Example Org");
        assert_eq!(text(&first[Col::components as usize]), "main contrib");
        assert_eq!(text(&first[Col::architectures as usize]), "amd64 arm64");
        assert_eq!(first[Col::pid_with_namespace as usize], Value::Integer(0));
    }

    #[test]
    fn hostile_files_never_panic() {
        let garbage: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 256) as u8).collect();
        let _ = parse_sources(&garbage);
        let _ = parse_list(&String::from_utf8_lossy(&garbage));
        let _ = parse_release(&garbage);
        assert!(parse_list("deb [unterminated options\ndeb\ndeb [a] \n").is_empty());
        assert_eq!(
            parse_release(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n"),
            ReleaseInfo::default()
        );
        assert_eq!(
            parse_release(b"Origin: X\nCodename: tru")
                .codename
                .as_deref(),
            Some("tru")
        );
    }

    #[test]
    fn list_file_names_as_apt_writes_them() {
        assert_eq!(
            list_file_name("http://deb.debian.org/debian/dists/bookworm/"),
            "deb.debian.org_debian_dists_bookworm_"
        );
        assert_eq!(
            list_file_name("https://user:pw@host:8080/a~b/dists/x/"),
            "host:8080_a%7eb_dists_x_"
        );
    }

    /// The host's real sources against `apt-get indextargets`, which lists every index
    /// apt would fetch with the release data of its source.
    #[test]
    fn agrees_with_apt_get_indextargets_on_this_host() {
        let host = Host::default();
        let ours: BTreeSet<[String; 5]> =
            crate::testing::rows_of(&QueryContext::everything(&SPEC, &host), generate)
                .iter()
                .map(|r| {
                    let suite = text(&r[Col::name as usize])
                        .rsplit_once(' ')
                        .unwrap()
                        .1
                        .to_owned();
                    let opt = |c: Col| match &r[c as usize] {
                        Value::Null => String::new(),
                        v => text(v),
                    };
                    [
                        text(&r[Col::base_uri as usize]),
                        suite,
                        opt(Col::release),
                        opt(Col::maintainer),
                        opt(Col::version),
                    ]
                })
                .collect();
        if !Path::new("/etc/apt").exists() {
            assert!(ours.is_empty());
            return;
        }
        let Some(apt_get) = require_tool("apt-get") else {
            return;
        };
        let out = tool_stdout(
            apt_get.to_str().unwrap(),
            &[
                "indextargets",
                "--format",
                "$(TARGET_OF)\t$(REPO_URI)\t$(RELEASE)\t$(CODENAME)\t$(ORIGIN)\t$(VERSION)",
            ],
        );
        let theirs: BTreeSet<[String; 5]> = out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                // Sources whose Release file apt has fetched (it knows their origin).
                (f.len() == 6 && f[0] == "deb" && !(f[3].is_empty() && f[4].is_empty())).then(
                    || {
                        [
                            f[1].trim_end_matches('/').to_owned(),
                            f[2].to_owned(),
                            f[3].to_owned(),
                            f[4].to_owned(),
                            f[5].to_owned(),
                        ]
                    },
                )
            })
            .collect();
        assert_eq!(ours, theirs);
    }
}
