use super::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(30);

fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let until = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write_mode(path: &Path, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A shell script that records `$0`, its arguments, its pid and `OSQUERY_EXTENSION` in
/// `<record>` (atomically), then becomes `sleep` (so the recorded pid is what runs).
fn recording_extension(path: &Path, record: &Path) {
    let script = format!(
        "#!/bin/sh\n{{ printf '%s\\n' \"$0\" \"$@\"; echo \"pid=$$\"; echo \"env=$OSQUERY_EXTENSION\"; }} > '{r}.tmp' && mv '{r}.tmp' '{r}'\nexec sleep 600\n",
        r = record.display()
    );
    write_mode(path, &script, 0o755);
}

fn settings(dir: &Path) -> LaunchSettings {
    LaunchSettings {
        socket: dir.join("osquery.em"),
        timeout: "3".to_owned(),
        interval: "5".to_owned(),
        verbose: false,
        allow_unsafe: false,
        check_interval: Duration::from_millis(100),
        respawn_limit: Duration::from_millis(10),
        stop_grace: Duration::from_secs(10),
        forced_stop_grace: Duration::from_secs(1),
    }
}

fn record_lines(record: &Path) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(record).ok()?;
    Some(text.lines().map(str::to_owned).collect())
}

fn pid_of(lines: &[String]) -> u32 {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("pid="))
        .unwrap()
        .parse()
        .unwrap()
}

/// `/proc/<pid>` exists (a zombie counts: it is not reaped).
fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn an_extension_gets_osquerys_arguments_environment_and_is_stopped_and_reaped() {
    let dir = tempfile::tempdir().unwrap();
    for verbose in [false, true] {
        let exe = dir.path().join(format!("args{verbose}.ext"));
        let record = dir.path().join(format!("args{verbose}.record"));
        recording_extension(&exe, &record);
        let mut s = settings(dir.path());
        s.verbose = verbose;
        let launcher = Launcher::start(BTreeSet::from([exe.clone()]), s, None).unwrap();
        let lines = wait_for(LONG, || record_lines(&record)).expect("the extension ran");
        let socket = dir.path().join("osquery.em").display().to_string();
        let mut expected = vec![exe.display().to_string()];
        if verbose {
            expected.push("--verbose".to_owned());
        }
        expected
            .extend(["--socket", &socket, "--timeout", "3", "--interval", "5"].map(str::to_owned));
        assert_eq!(lines[..lines.len() - 2], expected[..]);
        let pid = pid_of(&lines);
        assert_eq!(lines.last().unwrap(), &format!("env={pid}"));
        assert_eq!(launcher.running(), vec![(exe.clone(), pid)]);
        assert!(exists(pid));
        // stdin is /dev/null, and the extension leads its own process group.
        let stdin = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
        assert_eq!(stdin, Path::new("/dev/null"));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let pgrp: u32 = after_name.split(' ').nth(2).unwrap().parse().unwrap();
        assert_eq!(pgrp, pid);
        launcher.stop();
        // Stopped and reaped before stop() returned: no zombie left.
        assert!(!exists(pid), "extension {pid} survived the stop");
    }
}

#[test]
fn an_extension_that_exits_is_reaped_and_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("short.ext");
    let log = dir.path().join("starts");
    write_mode(
        &exe,
        &format!("#!/bin/sh\necho $$ >> '{}'\nexit 3\n", log.display()),
        0o755,
    );
    let launcher = Launcher::start(BTreeSet::from([exe]), settings(dir.path()), None).unwrap();
    let pids = wait_for(LONG, || {
        let text = std::fs::read_to_string(&log).ok()?;
        let pids: Vec<u32> = text.lines().filter_map(|l| l.parse().ok()).collect();
        (pids.len() >= 3).then_some(pids)
    })
    .expect("restarted twice");
    // Each earlier run was reaped (a zombie keeps its /proc entry).
    assert!(
        wait_for(LONG, || (!exists(pids[0]) && !exists(pids[1]))
            .then_some(()))
        .is_some(),
        "an exited extension was left a zombie"
    );
    launcher.stop();
}

#[test]
fn an_extension_ignoring_sigterm_is_killed_at_stop_with_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("stubborn.ext");
    let record = dir.path().join("stubborn.pid");
    write_mode(
        &exe,
        &format!(
            "#!/bin/sh\ntrap '' TERM\necho $$ > '{r}.tmp' && mv '{r}.tmp' '{r}'\nwhile :; do sleep 1; done\n",
            r = record.display()
        ),
        0o755,
    );
    let mut s = settings(dir.path());
    s.stop_grace = Duration::from_millis(300);
    let launcher = Launcher::start(BTreeSet::from([exe]), s, None).unwrap();
    let pid: u32 = wait_for(LONG, || {
        std::fs::read_to_string(&record).ok()?.trim().parse().ok()
    })
    .expect("the extension ran");
    launcher.stop();
    assert!(!exists(pid), "extension {pid} survived the stop");
    // Its `sleep` went with it (killed through the group; init reaps it).
    let group_alive = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                return false;
            };
            let Some(close) = stat.rfind(')') else {
                return false;
            };
            let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
            fields.first() != Some(&"Z") && fields.get(2) == Some(&pid.to_string().as_str())
        })
    };
    assert!(wait_for(LONG, || (!group_alive()).then_some(())).is_some());
}

#[test]
fn the_autoload_list_follows_osquerys_rules_and_refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_mode(&d.join("good.ext"), "#!/bin/sh\n", 0o755);
    write_mode(&d.join("trimmed.ext"), "#!/bin/sh\n", 0o755);
    write_mode(&d.join("no_suffix"), "#!/bin/sh\n", 0o755);
    write_mode(&d.join("world.ext"), "#!/bin/sh\n", 0o757);
    write_mode(&d.join("group.ext"), "#!/bin/sh\n", 0o775);
    write_mode(&d.join("noexec.ext"), "#!/bin/sh\n", 0o644);
    write_mode(&d.join("commented.ext"), "#!/bin/sh\n", 0o755);
    let sticky = d.join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    write_mode(&sticky.join("in_sticky.ext"), "#!/bin/sh\n", 0o755);
    let listed = d.join("listed");
    std::fs::create_dir(&listed).unwrap();
    write_mode(&listed.join("a.ext"), "#!/bin/sh\n", 0o755);
    write_mode(&listed.join("b.txt"), "#!/bin/sh\n", 0o755);
    std::fs::create_dir(listed.join("sub.ext")).unwrap();
    // We run as root in CI: a file of ours given to `nobody` is owned by someone else.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let foreign = d.join("nobody.ext");
    write_mode(&foreign, "#!/bin/sh\n", 0o755);
    if root {
        std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
    }
    let list = d.join("extensions.load");
    let p = |name: &str| d.join(name).display().to_string();
    std::fs::write(
        &list,
        [
            format!("# {}", p("commented.ext")),
            format!("; {}", p("commented.ext")),
            String::new(),
            p("good.ext"),
            format!("  {}  \r", p("trimmed.ext")),
            p("no_suffix"),
            p("world.ext"),
            p("group.ext"),
            p("noexec.ext"),
            p("sticky/in_sticky.ext"),
            p("nobody.ext"),
            p("missing.ext"),
            p("listed"),
        ]
        .join("\n"),
    )
    .unwrap();

    let found = autoload::load(&list, None, false);
    let mut accepted = vec![
        d.join("good.ext"),
        d.join("group.ext"),
        d.join("listed/a.ext"),
        d.join("trimmed.ext"),
    ];
    if !root {
        accepted.push(foreign.clone());
    }
    accepted.sort();
    assert_eq!(found.binaries.iter().cloned().collect::<Vec<_>>(), accepted);
    let reason = |name: &str| -> String {
        found
            .refused
            .iter()
            .find(|r| r.path == d.join(name))
            .unwrap_or_else(|| panic!("{name} not refused: {:?}", found.refused))
            .message
            .clone()
    };
    let unsafe_prefix = "Will not autoload extension with unsafe directory permissions: ";
    assert_eq!(
        reason("world.ext"),
        format!(
            "{unsafe_prefix}{} (it is writable by others)",
            p("world.ext")
        )
    );
    assert_eq!(
        reason("noexec.ext"),
        format!(
            "{unsafe_prefix}{} (its owner may not execute it)",
            p("noexec.ext")
        )
    );
    assert_eq!(
        reason("sticky/in_sticky.ext"),
        format!(
            "{unsafe_prefix}{} (its directory {} has the sticky bit (a /tmp-like directory))",
            p("sticky/in_sticky.ext"),
            sticky.display()
        )
    );
    if root {
        let me = 0;
        assert_eq!(
            reason("nobody.ext"),
            format!(
                "{unsafe_prefix}{} (it is owned by uid 65534, neither root nor the current user (uid {me}))",
                p("nobody.ext")
            )
        );
    }
    assert_eq!(
        reason("no_suffix"),
        format!(
            "Will not autoload extension not ending in one of '.ext': {}",
            p("no_suffix")
        )
    );
    assert_eq!(
        reason("listed/b.txt"),
        format!(
            "Will not autoload extension not ending in one of '.ext': {}",
            p("listed/b.txt")
        )
    );
    assert_eq!(
        reason("missing.ext"),
        format!("extension doesn't exist at: {}", p("missing.ext"))
    );
    assert_eq!(found.refused.len(), if root { 7 } else { 6 });

    // --allow_unsafe skips the permission checks, not the name rule nor existence.
    let found = autoload::load(&list, None, true);
    let mut accepted = vec![
        d.join("good.ext"),
        d.join("group.ext"),
        d.join("listed/a.ext"),
        d.join("nobody.ext"),
        d.join("noexec.ext"),
        sticky.join("in_sticky.ext"),
        d.join("trimmed.ext"),
        d.join("world.ext"),
    ];
    accepted.sort();
    assert_eq!(found.binaries.iter().cloned().collect::<Vec<_>>(), accepted);
    assert_eq!(found.refused.len(), 3, "{:?}", found.refused);

    // --extension is taken whatever its name; a missing list is no refusal.
    let found = autoload::load(&d.join("none.load"), Some(&d.join("no_suffix")), false);
    assert_eq!(
        found.binaries.into_iter().collect::<Vec<_>>(),
        [d.join("no_suffix")]
    );
    assert!(found.refused.is_empty());
}

#[test]
fn the_binary_check_refuses_a_directory_and_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub.ext");
    std::fs::create_dir(&sub).unwrap();
    assert_eq!(
        check_binary(&sub, false),
        Err("it is a directory".to_owned())
    );
    let fifo = dir.path().join("fifo.ext");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o755) }, 0);
    assert_eq!(
        check_binary(&fifo, false),
        Err("it is not a regular file".to_owned())
    );
    assert!(check_binary(&fifo, true).is_ok());
    assert!(check_binary(&dir.path().join("missing"), true).is_err());
}

#[test]
fn an_unsafe_binary_runs_only_with_allow_unsafe() {
    let dir = tempfile::tempdir().unwrap();
    let sticky = dir.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let exe = sticky.join("dev.ext");
    let record = dir.path().join("dev.record");
    recording_extension(&exe, &record);
    assert!(
        check_binary(&exe, false)
            .unwrap_err()
            .contains("sticky bit")
    );
    let mut s = settings(dir.path());
    s.allow_unsafe = true;
    let launcher = Launcher::start(BTreeSet::from([exe]), s, None).unwrap();
    let lines = wait_for(LONG, || record_lines(&record)).expect("started with --allow_unsafe");
    launcher.stop();
    assert!(!exists(pid_of(&lines)));
}

struct AlwaysOver;
impl ResourceWatch for AlwaysOver {
    fn check(&mut self, _pid: u32) -> Option<String> {
        Some("memory 300 MB over limit 200 MB".to_owned())
    }
}

#[test]
fn an_extension_over_a_limit_is_stopped_and_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("hog.ext");
    let log = dir.path().join("starts");
    write_mode(
        &exe,
        &format!(
            "#!/bin/sh\necho $$ >> '{}'\nexec sleep 600\n",
            log.display()
        ),
        0o755,
    );
    let watch: WatchFactory = Box::new(|| Box::new(AlwaysOver) as Box<dyn ResourceWatch>);
    let launcher =
        Launcher::start(BTreeSet::from([exe]), settings(dir.path()), Some(watch)).unwrap();
    let pids = wait_for(LONG, || {
        let text = std::fs::read_to_string(&log).ok()?;
        let pids: Vec<u32> = text.lines().filter_map(|l| l.parse().ok()).collect();
        (pids.len() >= 2).then_some(pids)
    })
    .expect("stopped and started again");
    assert!(!exists(pids[0]), "the stopped extension was not reaped");
    launcher.stop();
    for pid in pids {
        assert!(!exists(pid));
    }
}

#[test]
fn the_require_wait_times_out_with_osquerys_message_or_returns_once_registered() {
    let timeout = startup_timeout("0");
    assert_eq!(timeout, Duration::from_millis(200));
    assert_eq!(startup_timeout("7"), Duration::from_secs(7));
    assert_eq!(startup_timeout("2s"), Duration::from_secs(2));
    assert_eq!(startup_timeout("x"), Duration::from_millis(200));
    assert_eq!(
        required_names(" a, b ,,c"),
        ["a", "b", "c"].map(str::to_owned)
    );

    let names = required_names("first,second");
    assert_eq!(
        wait_for_required(&names, timeout, |_| false, || false),
        Err("Required extension not found or not loaded: first".to_owned())
    );
    assert_eq!(
        wait_for_required(&names, timeout, |n| n == "first", || false),
        Err("Required extension not found or not loaded: second".to_owned())
    );
    // Registered on the third look: returns then, long before the (generous) timeout.
    let looks = std::cell::Cell::new(0);
    let result = wait_for_required(
        &names,
        Duration::from_secs(3600),
        |_| {
            looks.set(looks.get() + 1);
            looks.get() >= 3
        },
        || false,
    );
    assert_eq!(result, Ok(()));
    // Two failed looks, then one for each name.
    assert_eq!(looks.get(), 4);
    // A stopping process stops waiting.
    assert!(wait_for_required(&names, Duration::from_secs(3600), |_| false, || true).is_err());
    assert_eq!(wait_for_required(&[], timeout, |_| false, || false), Ok(()));
}

#[test]
fn alarm_timeout_sets_the_grace_extensions_get_at_exit() {
    // osquery gives extensions `--alarm_timeout` less 4 s between SIGTERM and SIGKILL
    // when the shell or the daemon exits.
    let mut flags = Flags::new();
    assert_eq!(
        LaunchSettings::from_flags(&flags).stop_grace,
        Duration::from_secs(11)
    );
    flags.set("alarm_timeout", "30").unwrap();
    assert_eq!(
        LaunchSettings::from_flags(&flags).stop_grace,
        Duration::from_secs(26)
    );
}
