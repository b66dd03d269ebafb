//! `startup_items`: what starts with the system or a desktop session, following osquery's
//! Linux sources in its order:
//!
//! 1. per home directory (sorted, each once): XDG autostart entries in
//!    `~/.config/autostart/`, then scripts in `~/.config/autostart-scripts/`;
//! 2. `/etc/init.d/` scripts;
//! 3. system XDG autostart entries in `/etc/xdg/autostart/`;
//! 4. every unit systemd's manager lists over D-Bus (`type` = `systemd unit`, `status` =
//!    its active state, `path`/`source`/`username` = its FragmentPath/SourcePath/User).
//!
//! A directory contributes every non-hidden entry that is not a directory, whatever its
//! name (osquery does not filter on `.desktop`). Autostart entries are listed with status
//! `enabled` even when `Hidden=true` (osquery does not read that key); their `name` and
//! `path` come from the `Name=` and `Exec=` keys of the main group (`path` is the whole
//! `Exec=` command line, as in osquery), and a file without those keys still gives a row
//! with them NULL. `args` is never set on Linux. `/etc/rc*.d` links are not listed (they
//! point at `/etc/init.d` scripts, which are).
//!
//! Departures from osquery, each where osquery loses or mislabels data: a `Name=`/`Exec=`
//! value containing `=` is kept (osquery drops it); keys of `[Desktop Action ...]` groups
//! do not override the entry's own; `username` of a home's rows is the account's name
//! (osquery derives it from a `/home/<name>/` path, so `/root` gets none); a systemd unit
//! whose properties cannot be read keeps its row with them empty.

use std::path::{Path, PathBuf};

use oxquery_sys::safe_read;
use oxquery_sys::systemd::{Manager, Unit, UnitProperty};
use oxquery_sys::users::{self, Passwd, UserSelection};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "startup_items",
    description: "Programs and scripts started at boot or at desktop login: XDG autostart entries (system and per user), autostart scripts, /etc/init.d scripts and systemd units.",
    attributes: [CACHEABLE],
    columns: {
        name: Text [] "Name of the item: the entry's Name=, the script's file name or the unit name",
        path: Text [] "What runs: the entry's Exec= command line, the script's path or the unit file",
        args: Text [] "Arguments of the program (not reported on Linux)",
        r#type: Text [] "Startup Item for autostart entries and scripts, systemd unit for units",
        source: Text [] "Directory the item was found in, or the file a systemd unit was generated from",
        status: Text [] "enabled for autostart entries and scripts, the active state for systemd units",
        username: Text [] "Account whose home holds the item, or the user a systemd service runs as",
    },
    examples: [
        "select name, path, source from startup_items where type = 'Startup Item'",
        "select name, status, username from startup_items where type = 'systemd unit' and status = 'active'",
    ],
}

/// System directories of autostart scripts (relative to the root).
const SCRIPT_DIRS: [&str; 1] = ["etc/init.d"];
/// System directories of XDG autostart entries (relative to the root).
const ITEM_DIRS: [&str; 1] = ["etc/xdg/autostart"];
/// Per-user directories, relative to the home directory.
const HOME_ITEM_DIR: &str = ".config/autostart";
const HOME_SCRIPT_DIR: &str = ".config/autostart-scripts";

const STARTUP_ITEM: &str = "Startup Item";
const SYSTEMD_UNIT: &str = "systemd unit";

/// A home directory to look in and the account it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Home {
    dir: String,
    username: String,
}

/// Each non-empty home directory once, sorted (as osquery's set of homes), named after
/// the first account that has it.
fn homes(accounts: &[Passwd]) -> Vec<Home> {
    let mut homes: Vec<Home> = Vec::new();
    for account in accounts {
        let dir = account.dir.trim_end_matches('/');
        let dir = if dir.is_empty() && account.dir.starts_with('/') {
            "/"
        } else {
            dir
        };
        if dir.is_empty() || homes.iter().any(|h| h.dir == dir) {
            continue;
        }
        homes.push(Home {
            dir: dir.to_string(),
            username: account.name.clone(),
        });
    }
    homes.sort_by(|a, b| a.dir.cmp(&b.dir));
    homes
}

/// The entries of a directory osquery's `*` glob lists as files: names not starting
/// with `.`, and not directories (symlinks followed; a dangling link counts as a file),
/// sorted by name. A missing directory has none.
fn listed_files(dir: &Path) -> Vec<String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                log::info!("startup_items: cannot list {}: {e}", dir.display());
            }
            return Vec::new();
        }
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
        .filter(|e| !e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The keys of an autostart entry this table reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DesktopEntry {
    name: Option<String>,
    exec: Option<String>,
}

/// Reads `Name=` and `Exec=` of the main group (or of lines before any group) from the
/// lines of a desktop entry file. Garbage lines are ignored; an empty value is no value;
/// a repeated key keeps its last value.
fn parse_desktop_entry<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> DesktopEntry {
    let mut entry = DesktopEntry::default();
    let mut in_main_group = true;
    for raw in lines {
        let line = raw.trim_ascii();
        if line.first() == Some(&b'[') {
            in_main_group = line == b"[Desktop Entry]";
            continue;
        }
        if !in_main_group {
            continue;
        }
        let slot = if let Some(value) = line.strip_prefix(b"Name=") {
            Some((&mut entry.name, value))
        } else {
            line.strip_prefix(b"Exec=")
                .map(|value| (&mut entry.exec, value))
        };
        if let Some((slot, value)) = slot {
            let value = value.trim_ascii();
            if !value.is_empty() {
                *slot = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    entry
}

/// Reads an autostart entry file (users control theirs, so through the safe opener) with
/// bounded memory (overlong lines are skipped).
fn read_desktop_entry(ctx: &QueryContext, path: &Path) -> DesktopEntry {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut entry = DesktopEntry::default();
    let policy = crate::common::user_file_policy(ctx);
    let read = safe_read::for_each_line(path, &policy, safe_read::MAX_LINE, |line| {
        let trimmed = line.trim_ascii_start();
        // Only group headers and the two keys matter; keep nothing else.
        if trimmed.starts_with(b"[")
            || trimmed.starts_with(b"Name=")
            || trimmed.starts_with(b"Exec=")
        {
            lines.push(line.to_vec());
        }
    });
    match read {
        Ok(skipped) => {
            if skipped > 0 {
                log::info!(
                    "startup_items: {}: skipped {skipped} overlong line(s)",
                    path.display()
                );
            }
            entry = parse_desktop_entry(lines.iter().map(Vec::as_slice));
        }
        Err(e) => crate::common::report_read_error(ctx, path, &e),
    }
    entry
}

/// Where the table looks for files: the filesystem root and the home directories.
struct Sources<'a> {
    root: &'a Path,
    homes: &'a [Home],
}

/// A directory to list: where it is on disk, how it is reported, whose it is.
struct Dir {
    on_disk: PathBuf,
    /// The directory as the `source` column shows it (with a trailing `/`).
    source: String,
    username: Option<String>,
}

fn set_common(row: &mut oxquery_table::RowMut<'_>, dir: &Dir) {
    row.set(Col::r#type, STARTUP_ITEM);
    row.set(Col::status, "enabled");
    row.set(Col::source, dir.source.as_str());
    if let Some(user) = &dir.username {
        row.set(Col::username, user.as_str());
    }
}

/// One row per autostart entry file of `dir`.
fn item_rows(dir: &Dir, ctx: &QueryContext, rows: &mut Rows) {
    let read = ctx.is_used(Col::name) || ctx.is_used(Col::path);
    for file in listed_files(&dir.on_disk) {
        let entry = if read {
            read_desktop_entry(ctx, &dir.on_disk.join(&file))
        } else {
            DesktopEntry::default()
        };
        let mut row = rows.row();
        if let Some(name) = entry.name {
            row.set(Col::name, name);
        }
        if let Some(exec) = entry.exec {
            row.set(Col::path, exec);
        }
        set_common(&mut row, dir);
    }
}

/// One row per script of `dir`.
fn script_rows(dir: &Dir, rows: &mut Rows) {
    for file in listed_files(&dir.on_disk) {
        let mut row = rows.row();
        row.set_with(Col::path, || format!("{}{file}", dir.source));
        row.set(Col::name, file);
        set_common(&mut row, dir);
    }
}

/// The rows of autostart files and scripts, homes first.
fn file_rows(sources: &Sources, ctx: &QueryContext, rows: &mut Rows) {
    for home in sources.homes {
        let base = home.dir.trim_end_matches('/');
        let dir = |rel: &str| Dir {
            on_disk: Path::new(&home.dir).join(rel),
            source: format!("{base}/{rel}/"),
            username: Some(home.username.clone()),
        };
        item_rows(&dir(HOME_ITEM_DIR), ctx, rows);
        script_rows(&dir(HOME_SCRIPT_DIR), rows);
    }
    let system_dir = |rel: &str| Dir {
        on_disk: sources.root.join(rel),
        source: format!("/{rel}/"),
        username: None,
    };
    for rel in SCRIPT_DIRS {
        script_rows(&system_dir(rel), rows);
    }
    for rel in ITEM_DIRS {
        item_rows(&system_dir(rel), ctx, rows);
    }
}

/// One row per unit the manager lists; properties only for the columns the query reads.
fn systemd_rows(manager: &Manager, ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let units = match manager.list_units() {
        Ok(units) => units,
        Err(e) => {
            log::info!("startup_items: no systemd units: {e}");
            return Ok(());
        }
    };
    let property = |unit: &Unit, property| manager.unit_property_or_empty(unit, property);
    for unit in units {
        ctx.check()?;
        let mut row = rows.row();
        row.set_with(Col::path, || property(&unit, UnitProperty::FragmentPath));
        row.set_with(Col::source, || property(&unit, UnitProperty::SourcePath));
        row.set_with(Col::username, || property(&unit, UnitProperty::User));
        row.set(Col::r#type, SYSTEMD_UNIT);
        row.set(Col::status, unit.active_state);
        row.set(Col::name, unit.id);
    }
    Ok(())
}

fn generate_from(
    sources: &Sources,
    manager: Option<&Manager>,
    ctx: &QueryContext,
    rows: &mut Rows,
) -> TableResult {
    file_rows(sources, ctx, rows);
    match manager {
        Some(manager) => systemd_rows(manager, ctx, rows),
        None => Ok(()),
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let homes = homes(&users::users_for(&UserSelection::all()));
    let sources = Sources {
        root: Path::new("/"),
        homes: &homes,
    };
    let manager = Manager::connect_system()
        .map_err(|e| log::info!("startup_items: no systemd units: {e}"))
        .ok();
    generate_from(&sources, manager.as_ref(), ctx, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_sys::systemd::testing::{PrivateBus, sample_units, serve};
    use oxquery_table::{Host, Value};
    use std::fs;
    use std::os::unix::fs::symlink;

    fn cell(v: &Value) -> Option<String> {
        match v {
            Value::Null => None,
            Value::Text(t) => Some(t.clone()),
            v => panic!("not text: {v:?}"),
        }
    }

    type Row = [Option<String>; 7];

    fn all_rows(rows: &Rows) -> Vec<Row> {
        rows.iter()
            .map(|r| std::array::from_fn(|i| cell(&r[i])))
            .collect()
    }

    fn row(
        name: Option<&str>,
        path: Option<&str>,
        ty: &str,
        source: &str,
        status: &str,
        user: Option<&str>,
    ) -> Row {
        [
            name.map(String::from),
            path.map(String::from),
            None,
            Some(ty.into()),
            Some(source.into()),
            Some(status.into()),
            user.map(String::from),
        ]
    }

    fn write(path: &Path, content: impl AsRef<[u8]>) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    /// A root with init scripts, rc links, system and user autostart entries.
    fn fixture() -> (tempfile::TempDir, Vec<Home>) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        write(&root.join("etc/init.d/ssh"), "#!/bin/sh\n");
        write(&root.join("etc/init.d/cron"), "#!/bin/sh\n");
        write(&root.join("etc/init.d/.hidden"), "#!/bin/sh\n");
        fs::create_dir_all(root.join("etc/init.d/subdir")).unwrap();
        fs::create_dir_all(root.join("etc/rc2.d")).unwrap();
        symlink("../init.d/ssh", root.join("etc/rc2.d/S01ssh")).unwrap();
        write(
            &root.join("etc/xdg/autostart/agent.desktop"),
            "[Desktop Entry]\nType=Application\nName=Key Agent\nName[de]=Schluesselagent\n\
             Exec=/usr/bin/agent --daemonize --socket=/run/agent\n\
             [Desktop Action Stop]\nName=Stop agent\nExec=/usr/bin/agent --stop\n",
        );
        write(
            &root.join("etc/xdg/autostart/hidden.desktop"),
            "[Desktop Entry]\n  Name = ignored (space before =)\nName=  Disabled Thing  \nExec=/usr/bin/thing -q\nHidden=true\n",
        );
        let alice = tmp.path().join("home/alice");
        write(
            &alice.join(".config/autostart/notes.desktop"),
            "[Desktop Entry]\nName=Notes\nExec=notes --minimized %U\n",
        );
        write(
            &alice.join(".config/autostart-scripts/mount-share.sh"),
            "#!/bin/sh\n",
        );
        // Garbage and enormous lines: the file still counts, its keys are what is readable.
        let mut garbage: Vec<u8> = (0..50_000u32).map(|i| (i * 131 % 251) as u8).collect();
        garbage.extend_from_slice(b"\n[Desktop Entry]\n");
        garbage.extend(std::iter::repeat_n(b'x', 3 << 20));
        garbage.extend_from_slice(b"\nExec=");
        garbage.extend(std::iter::repeat_n(b'y', 2 << 20));
        garbage.extend_from_slice(b"\nName=Survivor\n");
        write(&alice.join(".config/autostart/garbage.desktop"), &garbage);
        let nobody = tmp.path().join("home/nobody-home");
        let homes = vec![
            Home {
                dir: alice.to_string_lossy().into_owned(),
                username: "alice".into(),
            },
            Home {
                dir: nobody.to_string_lossy().into_owned(),
                username: "nobody".into(),
            },
        ];
        (tmp, homes)
    }

    #[test]
    fn files_of_a_fixture_root_and_homes() {
        let (tmp, homes) = fixture();
        let root = tmp.path().join("root");
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        let sources = Sources {
            root: &root,
            homes: &homes,
        };
        generate_from(&sources, None, &ctx, &mut rows).unwrap();
        let alice = &homes[0].dir;
        let item = format!("{alice}/.config/autostart/");
        let script = format!("{alice}/.config/autostart-scripts/");
        let expected = vec![
            row(
                Some("Survivor"),
                None,
                STARTUP_ITEM,
                &item,
                "enabled",
                Some("alice"),
            ),
            row(
                Some("Notes"),
                Some("notes --minimized %U"),
                STARTUP_ITEM,
                &item,
                "enabled",
                Some("alice"),
            ),
            row(
                Some("mount-share.sh"),
                Some(&format!("{script}mount-share.sh")),
                STARTUP_ITEM,
                &script,
                "enabled",
                Some("alice"),
            ),
            row(
                Some("cron"),
                Some("/etc/init.d/cron"),
                STARTUP_ITEM,
                "/etc/init.d/",
                "enabled",
                None,
            ),
            row(
                Some("ssh"),
                Some("/etc/init.d/ssh"),
                STARTUP_ITEM,
                "/etc/init.d/",
                "enabled",
                None,
            ),
            row(
                Some("Key Agent"),
                Some("/usr/bin/agent --daemonize --socket=/run/agent"),
                STARTUP_ITEM,
                "/etc/xdg/autostart/",
                "enabled",
                None,
            ),
            row(
                Some("Disabled Thing"),
                Some("/usr/bin/thing -q"),
                STARTUP_ITEM,
                "/etc/xdg/autostart/",
                "enabled",
                None,
            ),
        ];
        assert_eq!(all_rows(&rows), expected);
    }

    #[test]
    fn desktop_parser_on_hostile_input() {
        let lines: Vec<&[u8]> = vec![
            b"\xff\xfe\x00Name=",
            b"=",
            b"Exec",
            b"Name=a=b",
            b"[",
            b"Name=after a broken header",
        ];
        assert_eq!(
            parse_desktop_entry(lines),
            DesktopEntry {
                name: Some("a=b".into()),
                exec: None
            }
        );
        let garbage: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 256) as u8).collect();
        let _ = parse_desktop_entry(garbage.split(|b| *b == b'\n'));
        let tmp = tempfile::tempdir().unwrap();
        let huge = tmp.path().join("huge.desktop");
        write(&huge, vec![b'N'; 5 << 20]);
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        assert_eq!(read_desktop_entry(&ctx, &huge), DesktopEntry::default());
        assert_eq!(
            read_desktop_entry(&ctx, &tmp.path().join("missing")),
            DesktopEntry::default()
        );
    }

    #[test]
    fn homes_are_unique_sorted_and_named_by_their_first_account() {
        let accounts = users::parse_passwd(
            b"zed:x:1002:1002::/home/zed:/bin/sh\nroot:x:0:0:root:/root/:/bin/bash\n\
              nohome:x:5:5:::/bin/false\nalias:x:0:0::/root:/bin/sh\namy:x:1000:1000::/home/amy:/bin/sh\n",
        );
        let got: Vec<(String, String)> = homes(&accounts)
            .into_iter()
            .map(|h| (h.dir, h.username))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/home/amy".into(), "amy".into()),
                ("/home/zed".into(), "zed".into()),
                ("/root".into(), "root".into()),
            ]
        );
    }

    #[test]
    fn systemd_units_of_a_fake_manager_follow_the_files() {
        let (tmp, homes) = fixture();
        let root = tmp.path().join("root");
        let bus = PrivateBus::start().expect("start a private dbus-daemon");
        let units = sample_units(1_050);
        let server = serve(bus.address(), units.clone()).expect("serve the fake manager");
        let manager = Manager::connect(bus.address()).expect("connect");
        let host = Host::default();
        let sources = Sources {
            root: &root,
            homes: &homes,
        };
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        generate_from(&sources, Some(&manager), &ctx, &mut rows).unwrap();
        let got = all_rows(&rows);
        assert_eq!(got.len(), 7 + units.len());
        for (r, f) in got[7..].iter().zip(&units) {
            let want = row(
                Some(&f.unit.id),
                Some(&f.fragment_path),
                SYSTEMD_UNIT,
                &f.source_path,
                &f.unit.active_state,
                Some(f.user.as_deref().unwrap_or("")),
            );
            assert_eq!(r, &want);
        }
        // name, type and status come from the unit list alone: no property round trips.
        let before = server.property_reads();
        let ctx =
            QueryContext::everything(&SPEC, &host).using([Col::name, Col::r#type, Col::status]);
        let mut rows = Rows::for_context(&ctx);
        generate_from(&sources, Some(&manager), &ctx, &mut rows).unwrap();
        assert_eq!(rows.len(), 7 + units.len());
        assert_eq!(server.property_reads(), before);
    }

    /// The live host: init scripts and system autostart entries match a plain listing;
    /// the query succeeds without a system bus.
    #[test]
    fn live_rows_match_a_listing_of_init_d() {
        let engine = oxquery_engine::Engine::new(
            &[&TABLE],
            &oxquery_engine::TableFilter::default(),
            oxquery_table::InstanceInfo::default(),
        )
        .expect("engine");
        let got = engine
            .query("select path from startup_items where source = '/etc/init.d/'")
            .expect("query")
            .rows;
        let mut want: Vec<String> = fs::read_dir("/etc/init.d")
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                    .filter(|e| !e.path().is_dir())
                    .map(|e| e.path().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        want.sort();
        let got: Vec<String> = got.iter().filter_map(|r| cell(&r[0])).collect();
        assert_eq!(got, want);
        if Manager::connect_system().is_err() {
            let units = engine
                .query("select count(*) from startup_items where type = 'systemd unit'")
                .expect("no bus must not fail the query")
                .rows;
            assert_eq!(units[0][0], Value::Integer(0));
        }
    }
}
