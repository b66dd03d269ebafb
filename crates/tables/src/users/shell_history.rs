//! `shell_history`: commands from each user's shell history files.

use crate::common;
use oxquery_sys::users::Passwd;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "shell_history",
    description: "Commands users ran, from ~/.bash_history, ~/.zsh_history, ~/.zhistory, ~/.history, ~/.sh_history, ~/.bash_sessions/*.history and fish's ~/.local/share/fish/fish_history, with the time when the file records it; every user unless the query names uids.",
    attributes: [USER_BASED],
    columns: {
        uid: BigInt [ADDITIONAL | OPTIMIZED] "Owner of the history (whose home it is in)",
        time: Integer [] "When the command ran, seconds since the Unix epoch; 0 if the file does not say",
        command: Text [] "The command line",
        history_file: Text [] "Path of the history file",
    },
    examples: ["select * from shell_history where uid = 0"],
}

/// Plain or timestamped (bash `#<epoch>`, zsh `: <epoch>:<duration>;`) history files.
const LINE_FILES: [&str; 5] = [
    ".bash_history",
    ".zsh_history",
    ".zhistory",
    ".history",
    ".sh_history",
];
const FISH_FILE: &str = ".local/share/fish/fish_history";

/// One history entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    time: i64,
    command: String,
}

/// `#<digits>` on its own line: the time of the next bash command.
fn bash_timestamp(line: &str) -> Option<i64> {
    let digits = line.strip_prefix('#')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `: <up to 10 spaces><1-11 digits>:<digits>;<command>` (zsh EXTENDED_HISTORY).
fn zsh_extended(line: &str) -> Option<(i64, &str)> {
    let rest = line.strip_prefix(':')?;
    let trimmed = rest.trim_start_matches(' ');
    if rest.len() - trimmed.len() > 10 {
        return None;
    }
    let (time, rest) = trimmed.split_once(':')?;
    if time.is_empty() || time.len() > 11 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (duration, command) = rest.split_once(';')?;
    if duration.is_empty() || !duration.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((time.parse().ok()?, command))
}

/// zsh stores bytes >= 0x83 "metafied" as 0x83 followed by the byte xor 0x20.
fn unmetafy(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut it = raw.iter();
    while let Some(&b) = it.next() {
        if b == 0x83 {
            if let Some(&n) = it.next() {
                out.push(n ^ 0x20);
            }
        } else {
            out.push(b);
        }
    }
    out
}

/// Parses a line-oriented history. A zsh extended entry whose command ends in a
/// backslash continues on the next line (zsh's multi-line commands); the pieces are
/// joined with newlines. Lines that are neither timestamps nor zsh entries are commands
/// of time 0 (or of the pending bash timestamp).
struct LineParser {
    zsh: bool,
    pending_bash_time: Option<i64>,
    open_zsh: Option<Entry>,
}

impl LineParser {
    fn new(zsh: bool) -> Self {
        LineParser {
            zsh,
            pending_bash_time: None,
            open_zsh: None,
        }
    }

    fn line(&mut self, raw: &[u8], out: &mut impl FnMut(Entry)) {
        let bytes = if self.zsh {
            unmetafy(raw)
        } else {
            raw.to_vec()
        };
        let line = String::from_utf8_lossy(&bytes);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if let Some(mut open) = self.open_zsh.take() {
            open.command.push('\n');
            if let Some(cont) = line.strip_suffix('\\') {
                open.command.push_str(cont);
                self.open_zsh = Some(open);
            } else {
                open.command.push_str(line);
                out(open);
            }
            return;
        }
        if self.pending_bash_time.is_none()
            && let Some(t) = bash_timestamp(line)
        {
            self.pending_bash_time = Some(t);
            return;
        }
        if let Some(time) = self.pending_bash_time.take() {
            out(Entry {
                time,
                command: line.to_owned(),
            });
        } else if let Some((time, command)) = zsh_extended(line) {
            match command.strip_suffix('\\') {
                Some(cont) => {
                    self.open_zsh = Some(Entry {
                        time,
                        command: cont.to_owned(),
                    })
                }
                None => out(Entry {
                    time,
                    command: command.to_owned(),
                }),
            }
        } else {
            out(Entry {
                time: 0,
                command: line.to_owned(),
            });
        }
    }

    fn finish(&mut self, out: &mut impl FnMut(Entry)) {
        if let Some(open) = self.open_zsh.take() {
            out(open);
        }
    }
}

/// Undoes fish's escaping of `\n` and `\\` in a `- cmd:` value.
fn fish_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Parses fish's YAML-like history: `- cmd: <command>` then an indented `when: <epoch>`.
struct FishParser {
    open: Option<Entry>,
}

impl FishParser {
    fn line(&mut self, raw: &[u8], out: &mut impl FnMut(Entry)) {
        let line = String::from_utf8_lossy(raw);
        if let Some(cmd) = line.strip_prefix("- cmd:") {
            if let Some(done) = self.open.take() {
                out(done);
            }
            self.open = Some(Entry {
                time: 0,
                command: fish_unescape(cmd.strip_prefix(' ').unwrap_or(cmd)),
            });
        } else if let Some(when) = line.trim_start().strip_prefix("when:")
            && let Some(open) = self.open.as_mut()
            && let Ok(t) = when.trim().parse()
        {
            open.time = t;
        }
    }

    fn finish(&mut self, out: &mut impl FnMut(Entry)) {
        if let Some(done) = self.open.take() {
            out(done);
        }
    }
}

fn emit(uid: u32, file: &str, e: Entry, rows: &mut Rows) {
    let mut row = rows.row();
    row.set(Col::uid, i64::from(uid));
    row.set(Col::time, e.time);
    row.set(Col::command, e.command);
    row.set(Col::history_file, file);
}

fn read_file(ctx: &QueryContext, user: &Passwd, path: &Path, fish: bool, rows: &mut Rows) {
    let uid = user.uid;
    let policy = common::home_file_policy(ctx, user);
    let file = path.to_string_lossy().into_owned();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let zsh = matches!(name.as_deref(), Some(".zsh_history" | ".zhistory"));
    let mut sink = |e: Entry| emit(uid, &file, e, rows);
    if fish {
        let mut p = FishParser { open: None };
        common::file_lines(ctx, path, &policy, |l| p.line(l, &mut sink));
        p.finish(&mut sink);
    } else {
        let mut p = LineParser::new(zsh);
        common::file_lines(ctx, path, &policy, |l| p.line(l, &mut sink));
        p.finish(&mut sink);
    }
}

/// The `.history` files of `~/.bash_sessions` (macOS Terminal's per-session histories),
/// sorted; none when the directory cannot be listed.
fn bash_sessions(home: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(home.join(".bash_sessions")) else {
        return Vec::new();
    };
    let mut sessions: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "history"))
        .collect();
    sessions.sort();
    sessions
}

fn generate_for(ctx: &QueryContext, users: &[Passwd], rows: &mut Rows) {
    for user in users {
        let home = user.home();
        for name in LINE_FILES {
            read_file(ctx, user, &home.join(name), false, rows);
        }
        for session in bash_sessions(&home) {
            read_file(ctx, user, &session, false, rows);
        }
        read_file(ctx, user, &home.join(FISH_FILE), true, rows);
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_for(ctx, &common::users_by_uid(ctx, Col::uid), rows);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing;
    use oxquery_table::{Host, Value};
    use std::fs;
    use std::path::PathBuf;

    fn entries(rows: &Rows, file: &str) -> Vec<(i64, String)> {
        rows.iter()
            .filter(|r| r[Col::history_file as usize].to_string().ends_with(file))
            .map(|r| {
                (
                    r[Col::time as usize].as_i64().unwrap(),
                    r[Col::command as usize].to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn every_format_of_an_injected_user() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        let mut bash =
            b"ls -la\n#1700000000\necho one\n#1700000005\n#notatime\n\xff\xfebin\n".to_vec();
        bash.extend(std::iter::repeat_n(b'y', 2 << 20));
        // A trailing timestamp with no command after it is dropped.
        bash.extend_from_slice(b"\nlast\n#123");
        fs::write(h.join(".bash_history"), bash).unwrap();
        let zsh = b": 1700000100:0;git status\n\
                    :  1700000200:3;for i in 1 2; do\\\n  echo $i\\\ndone\n\
                    plain zsh line\n\
                    : 1700000300:0;caf\xc3\xa9 \xc4\x83\xa3\n\
                    : 1700000400:0;unterminated\\";
        fs::write(h.join(".zsh_history"), zsh).unwrap();
        fs::write(h.join(".sh_history"), "pwd\n").unwrap();
        fs::create_dir_all(h.join(".local/share/fish")).unwrap();
        fs::write(
            h.join(FISH_FILE),
            "- cmd: echo fish\n  when: 1700000500\n- cmd: printf a\\\\nb\\n\n  when: 1700000600\n  paths:\n    - /tmp\n- cmd: no time\nwhen: garbage\n",
        )
        .unwrap();
        fs::create_dir(h.join(".bash_sessions")).unwrap();
        fs::write(h.join(".bash_sessions/A.history"), "session cmd\n").unwrap();
        fs::write(h.join(".bash_sessions/A.historyx"), "ignored\n").unwrap();
        let user = testing::fixture_account("hist", 7171, h);
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_for(&ctx, &[user], &mut rows);
        let e = |t: i64, c: &str| (t, c.to_owned());
        assert_eq!(
            entries(&rows, ".bash_history"),
            [
                e(0, "ls -la"),
                e(1_700_000_000, "echo one"),
                e(1_700_000_005, "#notatime"),
                e(0, "\u{fffd}\u{fffd}bin"),
                e(0, "last"),
            ]
        );
        assert_eq!(
            entries(&rows, ".zsh_history"),
            [
                e(1_700_000_100, "git status"),
                e(1_700_000_200, "for i in 1 2; do\n  echo $i\ndone"),
                e(0, "plain zsh line"),
                e(1_700_000_300, "café ă"),
                e(1_700_000_400, "unterminated"),
            ]
        );
        assert_eq!(entries(&rows, ".sh_history"), [e(0, "pwd")]);
        assert_eq!(entries(&rows, "A.history"), [e(0, "session cmd")]);
        assert_eq!(
            entries(&rows, "fish_history"),
            [
                e(1_700_000_500, "echo fish"),
                e(1_700_000_600, "printf a\\nb\n"),
                e(0, "no time")
            ]
        );
        assert!(
            rows.column(Col::uid)
                .iter()
                .all(|v| **v == Value::from(7171))
        );
    }

    /// Hostile history files (what any user can make of their own) give no rows from
    /// them, a log record naming them, and no hang; the user's other files are still read.
    fn hostile(make: impl FnOnce(&Path), level: log::Level, why: &str) {
        let home = tempfile::tempdir().unwrap();
        let bad = home.path().join(".bash_history");
        make(&bad);
        fs::write(home.path().join(".sh_history"), "pwd\n").unwrap();
        let (rows, logged) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        assert_eq!(entries(&rows, ".sh_history"), [(0, "pwd".to_owned())]);
        assert_eq!(rows.len(), 1, "rows from the hostile file");
        testing::assert_logged(&logged, level, &bad, why);
    }

    #[test]
    fn a_fifo_as_history_does_not_block() {
        hostile(testing::mkfifo, log::Level::Warn, "FIFO");
    }

    #[test]
    fn a_link_to_dev_zero_as_history_is_not_read() {
        hostile(
            |p| std::os::unix::fs::symlink("/dev/zero", p).unwrap(),
            log::Level::Warn,
            "character device",
        );
    }

    #[test]
    fn a_huge_history_is_refused_by_read_max() {
        hostile(testing::huge_sparse_file, log::Level::Warn, "read limit");
    }

    /// A file whose size says nothing of what reading it gives (here a `/proc` file:
    /// `st_size` 0, like a file its owner keeps appending to) is bounded by the bytes
    /// actually read: the complete lines within `--read_max` become rows, the rest does
    /// not, and a warning says why.
    #[test]
    fn a_history_longer_than_its_size_says_is_bounded_by_bytes_read() {
        let source = Path::new("/proc/filesystems");
        let text = fs::read(source).unwrap();
        let limit = 100;
        assert!(
            text.len() > limit,
            "{} is too short for this test",
            source.display()
        );
        let home = tempfile::tempdir().unwrap();
        let history = home.path().join(".bash_history");
        std::os::unix::fs::symlink(source, &history).unwrap();
        let (rows, logged) =
            testing::generate_for_home_reading(&SPEC, home.path(), generate_for, limit as u64);
        // Independent answer: the newline-terminated lines among the first `limit` bytes.
        let within = &text[..limit];
        let end = within.iter().rposition(|b| *b == b'\n').unwrap();
        let expected: Vec<(i64, String)> = within[..end]
            .split(|b| *b == b'\n')
            .map(|l| (0, String::from_utf8_lossy(l).into_owned()))
            .collect();
        assert!(!expected.is_empty());
        assert_eq!(entries(&rows, ".bash_history"), expected);
        testing::assert_logged(&logged, log::Level::Warn, &history, "read limit");
    }

    /// A link to a file its user may not read (`/etc/shadow`, here a mode-0 file) is
    /// opened with the user's permissions, as osquery drops privileges to read histories:
    /// nothing of it reaches the rows even though we run as root.
    #[test]
    fn a_link_to_a_file_the_user_cannot_read_is_not_read() {
        use std::os::unix::fs::PermissionsExt;
        let outside = tempfile::tempdir().unwrap();
        fs::set_permissions(outside.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let secret = outside.path().join("shadow");
        fs::write(&secret, "root:$6$secret:19000::::::\n").unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).unwrap();
        hostile(
            |p| std::os::unix::fs::symlink(&secret, p).unwrap(),
            log::Level::Info,
            "Permission denied",
        );
    }

    /// Asserts that `rows` (all of `uid`) come from exactly the history files of `home`
    /// that hold a line, at least one and at most one per line, each command's first line
    /// found in its file as read here directly (no history: no rows); returns the
    /// files looked at.
    fn assert_rows_match_home(rows: &Rows, uid: u32, home: &Path) -> Vec<PathBuf> {
        use std::collections::BTreeMap;
        let mut candidates: Vec<_> = LINE_FILES.iter().map(|f| home.join(f)).collect();
        candidates.push(home.join(FISH_FILE));
        if let Ok(dir) = std::fs::read_dir(home.join(".bash_sessions")) {
            candidates.extend(
                dir.map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|x| x == "history")),
            );
        }
        // File -> (its text, its number of lines), for the files with at least one line.
        let texts: BTreeMap<String, (String, usize)> = candidates
            .iter()
            .map(|p| (p, testing::lines_of(p)))
            .filter(|(_, lines)| !lines.is_empty())
            .map(|(p, lines)| {
                let text = String::from_utf8_lossy(&lines.join(&b'\n')).into_owned();
                (p.to_string_lossy().into_owned(), (text, lines.len()))
            })
            .collect();
        let mut per_file: BTreeMap<String, usize> = BTreeMap::new();
        for r in rows.iter() {
            assert_eq!(r[Col::uid as usize], Value::from(uid));
            let file = r[Col::history_file as usize].to_string();
            let (text, _) = texts
                .get(&file)
                .unwrap_or_else(|| panic!("a row from {file}, not a history file with lines"));
            let command = r[Col::command as usize].to_string();
            let first = command.lines().next().unwrap_or("");
            assert!(text.contains(first), "{first:?} is not in {file}");
            *per_file.entry(file).or_default() += 1;
        }
        for (file, (_, lines)) in &texts {
            let n = per_file.get(file).copied().unwrap_or(0);
            assert!((1..=*lines).contains(&n), "{n} rows from {file}");
        }
        candidates
    }

    /// The check the live test makes, on a home with bash, zsh and fish histories.
    #[test]
    fn direct_read_of_a_fixture_home_agrees() {
        let home = tempfile::tempdir().unwrap();
        fs::write(
            home.path().join(".bash_history"),
            "ls\n#1700000000\ncd /tmp\n",
        )
        .unwrap();
        fs::write(
            home.path().join(".zsh_history"),
            ": 1700000001:0;echo a \\\nb\n: 1700000002:0;make\n",
        )
        .unwrap();
        fs::create_dir_all(home.path().join(".local/share/fish")).unwrap();
        fs::write(
            home.path().join(FISH_FILE),
            "- cmd: git status\n  when: 1700000003\n",
        )
        .unwrap();
        fs::write(home.path().join(".history"), "\n\n").unwrap();
        let (rows, _) = testing::generate_for_home(&SPEC, home.path(), generate_for);
        // bash 2, zsh 2 (one continued on a second line), fish 1, blank lines 2.
        assert_eq!(rows.len(), 7);
        assert_rows_match_home(&rows, testing::FIXTURE_UID, home.path());
    }

    /// The rows for our uid (selecting exactly our account) come from exactly our
    /// history files, as read here directly (no history: no rows).
    #[test]
    fn live_uid_constraint_reads_only_that_home() {
        let (rows, me) = testing::live_rows_for_my_uid(&SPEC, Col::uid, generate);
        let files = assert_rows_match_home(&rows, me.uid, &me.home());
        testing::note_live("shell_history", rows.len(), &files);
    }
}
