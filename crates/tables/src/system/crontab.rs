//! `crontab`: scheduled jobs from the system crontab, `/etc/cron.d` and the per-user
//! crontabs cron keeps in its spool.

use oxquery_sys::safe_read::Root;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::{Path, PathBuf};

table! {
    name: "crontab",
    description: "Jobs scheduled with cron: one row per job line of /etc/crontab, /etc/cron.d and the users' crontabs in the cron spool.",
    attributes: [CACHEABLE],
    columns: {
        event: Text [] "Special schedule such as @reboot or @daily, empty for a timed entry",
        minute: Text [] "Minute field of the schedule",
        hour: Text [] "Hour field of the schedule",
        day_of_month: Text [] "Day-of-month field of the schedule",
        month: Text [] "Month field of the schedule",
        day_of_week: Text [] "Day-of-week field of the schedule",
        command: Text [] "Rest of the line: the command (led by the user name in system crontabs)",
        path: Text [] "File the entry was read from",
        pid_with_namespace: Integer [HIDDEN | ADDITIONAL] "Read the crontabs inside this process's mount namespace; 0 in rows read from the host's",
    },
    examples: ["select command, path from crontab where event = '@reboot'"],
}

/// The system crontab, read first.
const SYSTEM_CRONTAB: &str = "etc/crontab";
/// Directories whose files are crontabs: system drop-ins, then the user spools of
/// Red Hat style and Debian style systems (and BSD's).
const CRON_DIRS: [&str; 4] = [
    "etc/cron.d",
    "var/at/tabs",
    "var/spool/cron",
    "var/spool/cron/crontabs",
];

/// One job line of a crontab.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct CronEntry {
    event: String,
    minute: String,
    hour: String,
    day_of_month: String,
    month: String,
    day_of_week: String,
    command: String,
}

/// Splits the leading whitespace-separated field off `rest`.
fn take_field<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let trimmed = rest.trim_start_matches([' ', '\t']);
    if trimmed.is_empty() {
        return None;
    }
    let end = trimmed.find([' ', '\t']).unwrap_or(trimmed.len());
    let (field, tail) = trimmed.split_at(end);
    *rest = tail;
    Some(field)
}

/// Whether `line` sets an environment variable (`NAME=value`, `NAME = value`) rather
/// than scheduling a job.
fn is_assignment(line: &str) -> bool {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(line.len());
    name_end > 0
        && line[name_end..]
            .trim_start_matches([' ', '\t'])
            .starts_with('=')
}

/// Parses crontab text. Blank lines, comments and variable assignments are skipped; a
/// line starting with `@` is a special schedule followed by the command; any other line
/// has five schedule fields and then the command. Lines without a command are skipped.
fn parse_crontab(text: &str) -> Vec<CronEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || is_assignment(line) {
            continue;
        }
        let mut rest = line;
        let mut entry = CronEntry::default();
        let Some(first) = take_field(&mut rest) else {
            continue;
        };
        if first.starts_with('@') {
            entry.event = first.to_owned();
        } else {
            entry.minute = first.to_owned();
            let mut fields = [""; 4];
            if fields
                .iter_mut()
                .any(|slot| take_field(&mut rest).map(|f| *slot = f).is_none())
            {
                continue;
            }
            entry.hour = fields[0].to_owned();
            entry.day_of_month = fields[1].to_owned();
            entry.month = fields[2].to_owned();
            entry.day_of_week = fields[3].to_owned();
        }
        entry.command = rest.trim().to_owned();
        if entry.command.is_empty() {
            continue;
        }
        out.push(entry);
    }
    out
}

/// The crontab files inside `root` (ours, a process's, a fixture), as absolute paths
/// there.
fn crontab_files(root: &Root) -> Vec<PathBuf> {
    let mut files = vec![Path::new("/").join(SYSTEM_CRONTAB)];
    for dir in CRON_DIRS {
        let dir = Path::new("/").join(dir);
        let Ok(names) = root.read_dir_names(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = names
            .into_iter()
            .map(|n| dir.join(n))
            .filter(|p| root.metadata(p).is_ok_and(|m| m.is_file()))
            .collect();
        paths.sort();
        files.extend(paths);
    }
    files
}

fn generate_in(root: &Root, ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for file in crontab_files(root) {
        let path = file.to_string_lossy();
        // Users write their own crontabs in the spool: read them through the safe opener.
        let policy = crate::common::user_file_policy(ctx);
        let Some(bytes) = crate::common::read_file_in(ctx, root, &file, &policy) else {
            continue;
        };
        for e in parse_crontab(&String::from_utf8_lossy(&bytes)) {
            let mut row = rows.row();
            row.set(Col::event, e.event);
            row.set(Col::minute, e.minute);
            row.set(Col::hour, e.hour);
            row.set(Col::day_of_month, e.day_of_month);
            row.set(Col::month, e.month);
            row.set(Col::day_of_week, e.day_of_week);
            row.set(Col::command, e.command);
            row.set(Col::path, path.as_ref());
            row.set(Col::pid_with_namespace, root.pid());
        }
    }
    Ok(())
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    for root in crate::common::namespace_roots(ctx, Col::pid_with_namespace) {
        generate_in(&root, ctx, rows)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    use crate::testing::text;

    #[test]
    fn parses_entries_specials_and_skips_the_rest() {
        let text = "# m h dom mon dow user command\n\
                    SHELL=/bin/sh\n\
                    MAILTO = root\n\
                    PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin\n\
                    \n\
                    17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly\n\
                    @reboot root /usr/bin/start-thing --flag  'two  spaces'\n\
                    @daily\n\
                    1 2 3\n\
                    */5 1-3 1,15 jan-mar mon-fri echo \"x=y\"\n\
                    \u{1}\u{2} garbage ### \n";
        let got = parse_crontab(text);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0].minute, "17");
        assert_eq!(got[0].hour, "*");
        assert_eq!(got[0].day_of_week, "*");
        assert_eq!(
            got[0].command,
            "root    cd / && run-parts --report /etc/cron.hourly"
        );
        assert_eq!(got[1].event, "@reboot");
        assert_eq!(got[1].minute, "");
        assert_eq!(
            got[1].command,
            "root /usr/bin/start-thing --flag  'two  spaces'"
        );
        assert_eq!(got[2].minute, "*/5");
        assert_eq!(got[2].month, "jan-mar");
        assert_eq!(got[2].command, "echo \"x=y\"");
    }

    #[test]
    fn hostile_input_never_panics() {
        let garbage: Vec<u8> = (0..100_000u32).map(|i| (i * 37 % 256) as u8).collect();
        let _ = parse_crontab(&String::from_utf8_lossy(&garbage));
        let long = format!("* * * * * {}", "y".repeat(1 << 20));
        assert_eq!(parse_crontab(&long)[0].command.len(), 1 << 20);
        assert!(parse_crontab("* * * *").is_empty());
    }

    #[test]
    fn reads_system_dropin_and_user_crontabs_under_a_root() {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        std::fs::create_dir_all(p.join("etc/cron.d")).unwrap();
        std::fs::create_dir_all(p.join("var/spool/cron/crontabs/sub")).unwrap();
        std::fs::write(
            p.join("etc/crontab"),
            "SHELL=/bin/sh\n0 0 * * * root sys-job\n",
        )
        .unwrap();
        std::fs::write(
            p.join("etc/cron.d/backup"),
            "@weekly root backup --all\n# x\n",
        )
        .unwrap();
        std::fs::write(
            p.join("var/spool/cron/crontabs/alice"),
            "30 8 * * 1 alice-job\n",
        )
        .unwrap();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_in(&Root::directory(p).unwrap(), &ctx, &mut rows).unwrap();
        let got: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    text(&r[Col::path as usize]),
                    text(&r[Col::event as usize]),
                    text(&r[Col::command as usize]),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("/etc/crontab".into(), "".into(), "root sys-job".into()),
                (
                    "/etc/cron.d/backup".into(),
                    "@weekly".into(),
                    "root backup --all".into()
                ),
                (
                    "/var/spool/cron/crontabs/alice".into(),
                    "".into(),
                    "alice-job".into()
                ),
            ]
        );
        assert_eq!(
            rows.get(0).unwrap()[Col::pid_with_namespace as usize],
            Value::Integer(0)
        );
    }

    #[test]
    fn pid_with_namespace_reads_that_root_s_crontabs_only() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let etc = c.root().join("etc");
        std::fs::write(etc.join("crontab"), "5 4 * * * root inside-job\n").unwrap();
        std::fs::create_dir(etc.join("cron.d")).unwrap();
        c.make_hostile("etc/cron.d/evil", "1 2 3 4 5 root host-secret-job\n");
        let host = Host::default();
        let ctx = c.query(&SPEC, &host, Col::pid_with_namespace.into());
        let rows = crate::testing::rows_of(&ctx, generate);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(text(&rows[0][Col::command as usize]), "root inside-job");
        assert_eq!(text(&rows[0][Col::path as usize]), "/etc/crontab");
        assert_eq!(
            rows[0][Col::pid_with_namespace as usize],
            Value::Integer(c.pid())
        );
    }

    #[test]
    fn live_rows_cover_every_job_line_of_cron_d() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let Ok(entries) = std::fs::read_dir("/etc/cron.d") else {
            // No drop-in directory here (the fixture-root test covers one): no rows from it.
            assert!(
                !rows
                    .iter()
                    .any(|r| text(&r[Col::path as usize]).starts_with("/etc/cron.d/"))
            );
            return;
        };
        for entry in entries.flatten().filter(|e| e.path().is_file()) {
            let content = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let path = entry.path().to_string_lossy().into_owned();
            // Job lines by a plain rule: not a comment, at least six words, no `=` in the first word.
            let expected = content
                .lines()
                .filter(|l| !l.trim().starts_with('#'))
                .filter(|l| l.split_whitespace().count() >= 6)
                .filter(|l| !l.split_whitespace().next().unwrap_or("").contains('='))
                .count();
            let ours = rows
                .iter()
                .filter(|r| text(&r[Col::path as usize]) == path)
                .count();
            assert_eq!(ours, expected, "{path}");
        }
    }
}
