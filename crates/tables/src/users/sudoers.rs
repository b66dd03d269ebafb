//! `sudoers`: the rules of `/etc/sudoers` and the files it includes.

use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::{Path, PathBuf};

table! {
    name: "sudoers",
    description: "Lines of /etc/sudoers and of every file it pulls in with #include, @include, #includedir or @includedir, split into the leading keyword and the rest.",
    columns: {
        source: Text [] "File the line comes from",
        header: Text [] "First word of the line (Defaults, a user or alias, #include...)",
        rule_details: Text [] "The rest of the line, continuation lines joined",
    },
    examples: ["select * from sudoers"],
}

const SUDOERS_PATH: &str = "/etc/sudoers";
/// sudoers(5) allows at most this many levels of nested includes.
const MAX_NEST: usize = 128;
const WS: &[char] = &[' ', '\t', '\x0b'];

#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    source: String,
    header: String,
    rule_details: String,
}

/// Resolves an include target relative to the including file's directory.
fn resolve(including: &Path, target: &str) -> PathBuf {
    if target.starts_with('/') {
        PathBuf::from(target)
    } else {
        including.parent().unwrap_or(Path::new("")).join(target)
    }
}

/// Files an `#includedir` reads: regular names without a `.` and not ending in `~`,
/// in lexical order (as sudo reads them).
fn dir_files(dir: &Path) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            log::info!(
                "Table sudoers: cannot list includedir {}: {e}",
                dir.display()
            );
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| !t.is_dir()))
        .filter(|e| {
            let name = e.file_name();
            let name = name.as_encoded_bytes();
            !name.is_empty() && !name.contains(&b'.') && !name.ends_with(b"~")
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

fn parse_file(path: &Path, level: usize, out: &mut Vec<Line>) {
    if level > MAX_NEST {
        log::warn!(
            "Table sudoers: include nesting deeper than {MAX_NEST} at {}",
            path.display()
        );
        return;
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            log::info!("Table sudoers: cannot read {}: {e}", path.display());
            return;
        }
    };
    let source = path.to_string_lossy().into_owned();
    let text = String::from_utf8_lossy(&bytes);
    // Index in `out` of a line whose trailing backslash continues onto the next line.
    let mut continued: Option<usize> = None;
    for raw in text.split('\n') {
        let line = raw.trim_matches(WS);
        if line.is_empty() {
            continue;
        }
        if let Some(i) = continued {
            let last = &mut out[i];
            if last.rule_details.is_empty() {
                last.header.pop();
            } else {
                last.rule_details.pop();
            }
            last.rule_details.push_str(line);
            continued = line.ends_with('\\').then_some(i);
            continue;
        }
        let header_end = line.find(WS).unwrap_or(line.len());
        let header = &line[..header_end];
        let is_include = header == "#include" || header == "@include";
        let is_includedir = header == "#includedir" || header == "@includedir";
        if line.starts_with('#') && !is_include && !is_includedir {
            continue;
        }
        let details = line[header_end..].trim_matches(WS);
        if details.is_empty() && (is_include || is_includedir) {
            continue;
        }
        out.push(Line {
            source: source.clone(),
            header: header.to_owned(),
            rule_details: details.to_owned(),
        });
        if !is_include && !is_includedir && line.ends_with('\\') {
            continued = Some(out.len() - 1);
        }
        if is_includedir {
            for f in dir_files(&resolve(path, details)) {
                parse_file(&f, level + 1, out);
            }
        } else if is_include {
            parse_file(&resolve(path, details), level + 1, out);
        }
    }
}

fn emit(lines: Vec<Line>, rows: &mut Rows) {
    for l in lines {
        let mut row = rows.row();
        row.set(Col::source, l.source);
        row.set(Col::header, l.header);
        row.set(Col::rule_details, l.rule_details);
    }
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    if let Err(e) = std::fs::File::open(SUDOERS_PATH) {
        log::info!("Table sudoers: cannot read {SUDOERS_PATH} ({e}); no rows");
        return Ok(());
    }
    let mut lines = Vec::new();
    parse_file(Path::new(SUDOERS_PATH), 1, &mut lines);
    emit(lines, rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn triples(lines: &[Line], root: &Path) -> Vec<(String, String, String)> {
        let root = root.to_string_lossy();
        lines
            .iter()
            .map(|l| {
                (
                    l.source.replace(&*root, "R"),
                    l.header.clone(),
                    l.rule_details.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn includes_includedirs_and_continuations() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        fs::create_dir(r.join("d")).unwrap();
        fs::write(
            r.join("sudoers"),
            "# a comment\n\
             Defaults\tenv_reset\n\
             \n\
             root ALL=(ALL:ALL) ALL\n\
             Cmnd_Alias X = /bin/a, \\\n   /bin/b\n\
             #include inc\n\
             @includedir d\n\
             #includedir\n\
             %admin ALL=(ALL) ALL\n",
        )
        .unwrap();
        fs::write(
            r.join("inc"),
            "@include sudoers\nalice ALL = NOPASSWD: ALL\n",
        )
        .unwrap();
        fs::write(r.join("d/10-b"), "bob ALL=(ALL) ALL\n").unwrap();
        fs::write(r.join("d/01-a"), "carol ALL=ALL\n").unwrap();
        fs::write(r.join("d/ignored.conf"), "eve ALL=ALL\n").unwrap();
        fs::write(r.join("d/backup~"), "mallory ALL=ALL\n").unwrap();
        let mut lines = Vec::new();
        parse_file(&r.join("sudoers"), 1, &mut lines);
        let got = triples(&lines, r);
        let s = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        // The cycle sudoers -> inc -> sudoers repeats until the nesting limit.
        assert_eq!(got[0], s("R/sudoers", "Defaults", "env_reset"));
        assert_eq!(got[1], s("R/sudoers", "root", "ALL=(ALL:ALL) ALL"));
        assert_eq!(got[2], s("R/sudoers", "Cmnd_Alias", "X = /bin/a, /bin/b"));
        assert_eq!(got[3], s("R/sudoers", "#include", "inc"));
        assert_eq!(got[4], s("R/inc", "@include", "sudoers"));
        assert_eq!(got[5], s("R/sudoers", "Defaults", "env_reset"));
        let tail: Vec<_> = got.iter().rev().take(5).rev().cloned().collect();
        assert_eq!(
            tail,
            [
                s("R/inc", "alice", "ALL = NOPASSWD: ALL"),
                s("R/sudoers", "@includedir", "d"),
                s("R/d/01-a", "carol", "ALL=ALL"),
                s("R/d/10-b", "bob", "ALL=(ALL) ALL"),
                s("R/sudoers", "%admin", "ALL=(ALL) ALL"),
            ]
        );
        let depth = got.iter().filter(|t| t.1 == "@include").count();
        assert_eq!(depth, MAX_NEST / 2);
        assert!(!got.iter().any(|t| t.1 == "eve" || t.1 == "mallory"));
    }

    #[test]
    fn hostile_input_is_skipped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        let mut bytes = vec![0xff, 0x00, b'\n', b'\\', b'\n'];
        bytes.extend(std::iter::repeat_n(b'x', 2 << 20));
        bytes.extend_from_slice(b" y\n#include /nonexistent/zz\n#includedir /nonexistent\n\\");
        fs::write(&p, bytes).unwrap();
        let mut lines = Vec::new();
        parse_file(&p, 1, &mut lines);
        assert!(lines.iter().any(|l| l.header == "#include"));
    }
}
