//! `os_version`: the distribution, from `/etc/os-release` (and, like osquery, the
//! `/etc/redhat-release` / `/etc/gentoo-release` files that override it).

use oxquery_sys::safe_read::{self, Policy, Root};
use oxquery_table::{QueryContext, Rows, TableResult, Value, table};
use std::path::Path;

table! {
    name: "os_version",
    description: "One row describing the installed distribution, from /etc/os-release or a redhat/gentoo release file.",
    columns: {
        name: Text [] "Distribution name: NAME of os-release, Unknown when nothing is found",
        version: Text [COLLATE_VERSION] "Human-readable VERSION, or the whole redhat/gentoo release line",
        major: Integer [] "First dot-separated part of VERSION_ID; 0 without one",
        minor: Integer [] "Second part of VERSION_ID; 0 without one",
        patch: Integer [] "Third part of VERSION_ID; 0 without one, NULL if not a number",
        build: Text [] "BUILD_ID value; empty when a redhat/gentoo release file is used",
        platform: Text [] "Distribution ID such as ubuntu or rhel; posix when unknown",
        platform_like: Text [] "ID_LIKE list of parent distributions",
        codename: Text [] "Release code name from VERSION_CODENAME or another *CODENAME key",
        arch: Text [] "Hardware architecture from uname(2), e.g. x86_64",
        extra: Text [OTHER_PLATFORM] "macOS only: supplemental version suffix",
        install_date: BigInt [OTHER_PLATFORM] "Windows only: when the system was installed",
        revision: Integer [OTHER_PLATFORM] "Windows only: update build revision number",
        pid_with_namespace: Integer [HIDDEN | ADDITIONAL] "Read the release files inside this process's mount namespace; 0 in the row read from the host's",
        mount_namespace_id: Text [HIDDEN] "Mount namespace the files came from; NULL while only the host's is read",
    },
    examples: ["select * from os_version"],
}

const OS_RELEASE: &str = "/etc/os-release";
const REDHAT_RELEASE: &str = "/etc/redhat-release";
const GENTOO_RELEASE: &str = "/etc/gentoo-release";

/// Parses os-release text (os-release(5): shell-style `KEY=value` assignments).
/// Blank lines, comments and lines that are not a valid assignment are skipped; values
/// may be double-quoted (with `\` escapes), single-quoted (literal) or bare (with `\`
/// escapes). Never fails: hostile input yields fewer pairs.
fn parse_os_release(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        if let Some(value) = unquote(raw) {
            out.push((key.to_owned(), value));
        }
    }
    out
}

/// The shell value of `raw`; `None` for an unterminated quote.
fn unquote(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        // Inside double quotes only these are escapes.
                        e @ ('"' | '\\' | '$' | '`') => out.push(e),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    },
                    other => out.push(other),
                }
            },
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    other => out.push(other),
                }
            },
            '\\' => {
                if let Some(e) = chars.next() {
                    out.push(e);
                }
            }
            // An unquoted space ends the value; what follows is not part of it.
            c if c.is_whitespace() => break,
            other => out.push(other),
        }
    }
    Some(out)
}

/// The row's values before integers are typed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OsInfo {
    name: String,
    version: Option<String>,
    major: Option<String>,
    minor: Option<String>,
    patch: Option<String>,
    build: Option<String>,
    platform: String,
    platform_like: Option<String>,
    codename: Option<String>,
}

impl Default for OsInfo {
    /// What osquery reports when nothing is known.
    fn default() -> Self {
        OsInfo {
            name: "Unknown".into(),
            version: None,
            major: Some("0".into()),
            minor: Some("0".into()),
            patch: Some("0".into()),
            build: None,
            platform: "posix".into(),
            platform_like: None,
            codename: None,
        }
    }
}

fn apply_os_release(info: &mut OsInfo, pairs: Vec<(String, String)>) {
    for (key, value) in pairs {
        match key.as_str() {
            "NAME" => info.name = value,
            "VERSION" => info.version = Some(value),
            "BUILD_ID" => info.build = Some(value),
            "ID" => info.platform = value,
            "ID_LIKE" => info.platform_like = Some(value),
            "VERSION_ID" => {
                // At most three parts: `1.2.3.4` leaves `3.4` as the (non-integer) patch.
                let mut parts = value.splitn(3, '.');
                if let Some(p) = parts.next() {
                    info.major = Some(p.to_owned());
                }
                if let Some(p) = parts.next() {
                    info.minor = Some(p.to_owned());
                }
                if let Some(p) = parts.next() {
                    info.patch = Some(p.to_owned());
                }
            }
            // Some distributions name their code name key differently
            // (UBUNTU_CODENAME, ...); osquery takes any such key.
            k if k == "VERSION_CODENAME" || k.contains("CODENAME") => info.codename = Some(value),
            _ => {}
        }
    }
}

/// Word characters of ECMAScript regular expressions, plus `+` and whitespace: the
/// characters osquery accepts in the name part of a release line.
fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'+' || c.is_ascii_whitespace()
}

/// Splits a line like `CentOS Linux release 7.9.2009 (Core)` into name, major, minor and
/// patch the way osquery's pattern `NAME <anything> MAJOR.MINOR[.PATCH]` does: the name
/// is a run of word characters followed by a space, the version the last
/// space-preceded `digits.digits` after that, the name as long as possible.
fn parse_release_line(line: &str) -> Option<(String, String, String, String)> {
    let b = line.as_bytes();
    let digits_end = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    // A version start: ` D+.D+` at q; returns the end of the minor digits.
    let version_at = |q: usize| -> Option<(usize, usize, usize)> {
        if b.get(q) != Some(&b' ') {
            return None;
        }
        let maj_end = digits_end(q + 1);
        if maj_end == q + 1 || b.get(maj_end) != Some(&b'.') {
            return None;
        }
        let min_end = digits_end(maj_end + 1);
        (min_end > maj_end + 1).then_some((maj_end, min_end, q))
    };
    for s in 0..b.len() {
        if !is_name_char(b[s]) {
            continue;
        }
        let mut run_end = s;
        while run_end < b.len() && is_name_char(b[run_end]) {
            run_end += 1;
        }
        // The name ends before a space e (inside the run); a version follows e + 1.
        for e in (s + 1..run_end).rev() {
            if b[e] != b' ' {
                continue;
            }
            let Some((maj_end, min_end, q)) = (e + 1..b.len()).rev().find_map(version_at) else {
                continue;
            };
            let mut p = min_end;
            if b.get(p) == Some(&b'.') {
                p += 1;
            }
            let mut patch_end = p;
            while patch_end < b.len()
                && (b[patch_end].is_ascii_alphanumeric() || b[patch_end] == b'_')
            {
                patch_end += 1;
            }
            let patch = if patch_end > p {
                &line[p..patch_end]
            } else {
                "0"
            };
            return Some((
                line[s..e].to_owned(),
                line[q + 1..maj_end].to_owned(),
                line[maj_end + 1..min_end].to_owned(),
                patch.to_owned(),
            ));
        }
    }
    None
}

/// Applies a redhat-release or gentoo-release file as osquery does: it names the
/// platform, and its whole (whitespace-collapsed) text becomes the version.
fn apply_release_file(info: &mut OsInfo, platform: &str, content: &str) {
    info.platform = platform.to_owned();
    info.platform_like = Some(platform.to_owned());
    let collapsed = content.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((name, major, minor, patch)) = parse_release_line(&collapsed) {
        info.name = name;
        info.major = Some(major);
        info.minor = Some(minor);
        info.patch = Some(patch);
    }
    info.version = Some(collapsed);
    info.build = Some(String::new());
}

/// Everything the table reports, from the file contents (`None`: file unreadable).
fn os_info(os_release: Option<&str>, redhat: Option<&str>, gentoo: Option<&str>) -> OsInfo {
    let mut info = OsInfo::default();
    if let Some(text) = os_release {
        apply_os_release(&mut info, parse_os_release(text));
    }
    if let Some(text) = redhat {
        apply_release_file(&mut info, "rhel", text);
    } else if let Some(text) = gentoo {
        apply_release_file(&mut info, "gentoo", text);
    }
    info
}

fn integer(text: Option<String>) -> Value {
    text.and_then(|t| t.parse::<i64>().ok()).into()
}

/// A release file inside `root` (the host's, or a process's mount namespace's).
fn read_text(root: &Root, path: &str, policy: &Policy) -> Option<String> {
    let bytes = safe_read::read_bounded_in(root, Path::new(path), policy).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let policy = crate::common::user_file_policy(ctx);
    // The kernel is shared: a container's machine is the host's.
    let arch = oxquery_sys::host::uname().map(|u| u.machine);
    for root in crate::common::namespace_roots(ctx, Col::pid_with_namespace) {
        add_row(rows, &root, &policy, arch.clone());
    }
    Ok(())
}

fn add_row(rows: &mut Rows, root: &Root, policy: &Policy, arch: Option<String>) {
    let os_release = read_text(root, OS_RELEASE, policy);
    if os_release.is_none() {
        log::warn!(
            "os_version: cannot read {}",
            root.display(Path::new(OS_RELEASE)).display()
        );
    }
    let info = os_info(
        os_release.as_deref(),
        read_text(root, REDHAT_RELEASE, policy).as_deref(),
        read_text(root, GENTOO_RELEASE, policy).as_deref(),
    );
    let mut row = rows.row();
    row.set(Col::name, info.name);
    row.set(Col::version, info.version);
    row.set(Col::major, integer(info.major));
    row.set(Col::minor, integer(info.minor));
    row.set(Col::patch, integer(info.patch));
    row.set(Col::build, info.build);
    row.set(Col::platform, info.platform);
    row.set(Col::platform_like, info.platform_like);
    row.set(Col::codename, info.codename);
    row.set(Col::arch, arch);
    row.set(Col::pid_with_namespace, root.pid());
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Op};

    #[test]
    fn pid_with_namespace_reads_that_root_s_os_release() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let rows = c.rows(&SPEC, Col::pid_with_namespace.into(), generate);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row[Col::name as usize], Value::from("Contained Linux"));
        assert_eq!(row[Col::platform as usize], Value::from("contained"));
        assert_eq!(row[Col::major as usize], Value::Integer(7));
        assert_eq!(row[Col::minor as usize], Value::Integer(8));
        assert_eq!(row[Col::patch as usize], Value::Integer(9));
        assert_eq!(row[Col::codename as usize], Value::from("boxed"));
        assert_eq!(
            row[Col::pid_with_namespace as usize],
            Value::Integer(c.pid())
        );
    }

    #[test]
    fn parses_quotes_escapes_and_comments() {
        let text = "# comment\n\n NAME=\"Debian GNU/Linux\"\nID=debian\n\
                    VERSION='12 (bookworm)'\nPRETTY=\"a \\\"quoted\\\" \\$x \\n\"\n\
                    BARE=a\\ b c\nnot an assignment\n=novalue\nBAD KEY=1\n\
                    OPEN=\"unterminated\nEMPTY=\n";
        let got = parse_os_release(text);
        let get = |k: &str| {
            got.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("NAME"), Some("Debian GNU/Linux"));
        assert_eq!(get("ID"), Some("debian"));
        assert_eq!(get("VERSION"), Some("12 (bookworm)"));
        assert_eq!(get("PRETTY"), Some("a \"quoted\" $x \\n"));
        assert_eq!(get("BARE"), Some("a b"));
        assert_eq!(get("EMPTY"), Some(""));
        assert_eq!(get("OPEN"), None);
        assert_eq!(got.len(), 6);
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for text in [
            "",
            "=",
            "\"",
            "A=\"\\",
            "A='",
            "\u{0}=\u{0}",
            "A=\\",
            "é=ü\n\r\n",
        ] {
            let _ = os_info(Some(text), None, None);
            let _ = parse_release_line(text);
        }
        // Missing file: osquery's defaults.
        let info = os_info(None, None, None);
        assert_eq!(info, OsInfo::default());
        assert_eq!(info.name, "Unknown");
        assert_eq!(info.platform, "posix");
    }

    #[test]
    fn maps_keys_and_version_parts() {
        let info = os_info(
            Some(
                "NAME=\"Ubuntu\"\nVERSION=\"22.04.3 LTS (Jammy Jellyfish)\"\nID=ubuntu\n\
                 ID_LIKE=debian\nVERSION_ID=\"22.04\"\nUBUNTU_CODENAME=jammy\n",
            ),
            None,
            None,
        );
        assert_eq!(info.name, "Ubuntu");
        assert_eq!(info.platform, "ubuntu");
        assert_eq!(info.platform_like.as_deref(), Some("debian"));
        assert_eq!(info.codename.as_deref(), Some("jammy"));
        assert_eq!(integer(info.major), Value::Integer(22));
        assert_eq!(integer(info.minor), Value::Integer(4));
        assert_eq!(integer(info.patch), Value::Integer(0));
        let info = os_info(Some("VERSION_ID=1.2.3.4\n"), None, None);
        assert_eq!(info.patch.as_deref(), Some("3.4"));
        assert_eq!(integer(info.patch), Value::Null);
    }

    #[test]
    fn redhat_release_overrides_like_osquery() {
        let info = os_info(
            Some("NAME=\"CentOS Linux\"\nID=\"centos\"\nVERSION_ID=\"7\"\n"),
            Some("CentOS Linux release 7.9.2009 (Core)\n"),
            None,
        );
        assert_eq!(info.platform, "rhel");
        assert_eq!(info.platform_like.as_deref(), Some("rhel"));
        assert_eq!(info.name, "CentOS Linux");
        assert_eq!(
            (
                info.major.as_deref(),
                info.minor.as_deref(),
                info.patch.as_deref()
            ),
            (Some("7"), Some("9"), Some("2009"))
        );
        assert_eq!(
            info.version.as_deref(),
            Some("CentOS Linux release 7.9.2009 (Core)")
        );
        assert_eq!(info.build.as_deref(), Some(""));
        assert_eq!(
            parse_release_line("Red Hat Enterprise Linux Server release 6.10 (Santiago)"),
            Some((
                "Red Hat Enterprise Linux Server".into(),
                "6".into(),
                "10".into(),
                "0".into()
            ))
        );
        // No dotted version: the os-release values stay.
        let info = os_info(
            Some("NAME=Fedora\nVERSION_ID=39\n"),
            Some("Fedora release 39 (Thirty Nine)"),
            None,
        );
        assert_eq!(info.name, "Fedora");
        assert_eq!(info.major.as_deref(), Some("39"));
        assert_eq!(info.platform, "rhel");
    }

    fn run(ctx: &QueryContext) -> Rows<'static> {
        Rows::collect(ctx, generate).unwrap()
    }

    #[test]
    fn agrees_with_etc_os_release_and_uname() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = run(&ctx);
        assert_eq!(rows.len(), 1);
        let row = rows.get(0).unwrap();
        let uname = std::process::Command::new("uname")
            .arg("-m")
            .output()
            .unwrap();
        let machine = String::from_utf8(uname.stdout).unwrap();
        assert_eq!(row[Col::arch as usize], Value::from(machine.trim()));
        assert_eq!(row[Col::pid_with_namespace as usize], Value::Integer(0));
        for c in [
            Col::extra,
            Col::install_date,
            Col::revision,
            Col::mount_namespace_id,
        ] {
            assert_eq!(row[c as usize], Value::Null);
        }
        // Independent reading of the file: plain `KEY=value` lines, quotes stripped.
        let Ok(text) = std::fs::read_to_string(OS_RELEASE) else {
            assert_eq!(row[Col::name as usize], Value::from("Unknown"));
            return;
        };
        if std::path::Path::new(REDHAT_RELEASE).exists()
            || std::path::Path::new(GENTOO_RELEASE).exists()
        {
            return;
        }
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(|v| Value::from(v.trim_matches('"')))
        };
        assert_eq!(Some(row[Col::name as usize].clone()), field("NAME"));
        assert_eq!(Some(row[Col::platform as usize].clone()), field("ID"));
        if let Some(v) = field("VERSION") {
            assert_eq!(row[Col::version as usize], v);
        }
        if let Some(c) = field("VERSION_CODENAME") {
            assert_eq!(row[Col::codename as usize], c);
        }
        if let Some(Value::Text(id)) = field("VERSION_ID") {
            let major: i64 = id.split('.').next().unwrap().parse().unwrap();
            assert_eq!(row[Col::major as usize], Value::Integer(major));
        }
    }

    #[test]
    fn a_process_that_is_gone_gives_no_row_and_a_warning() {
        let host = Host::default();
        // Above the kernel's pid_max limit (4194304): never a process.
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::pid_with_namespace,
            Op::Eq,
            i64::from(i32::MAX),
        );
        let (rows, logged) = crate::common::testing::capture_log(|| run(&ctx));
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(_, m)| m.contains("mount namespace of pid")),
            "{logged:?}"
        );
    }
}
