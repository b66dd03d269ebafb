//! osqueryi against files a local user can plant (issue 9, section 1): a FIFO that never
//! gets a writer, `/proc` files without end, a `root -> /` link in a walked tree. Each
//! query must return, read no more than `--read_max`, and say what it skipped.
//!
//! Every run is bounded by [`run_bounded`] (and the daemon by its guard): a query that
//! blocks fails its test instead of hanging the runner. The bounds are liveness checks,
//! not timings.

// Each test binary uses a part of the helpers.
#[allow(dead_code)]
mod daemon_support;

use daemon_support::{Sandbox, wait_until};
use std::ffi::CString;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_osqueryi");

/// What one bounded run of osqueryi produced, with its peak resident memory.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    max_rss_kib: i64,
}

/// Runs osqueryi with `args`; kills it and fails when it has not exited after 60 s.
// The child is reaped by `wait4` (for its resource usage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_bounded(args: &[&str]) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("osqueryi starts");
    // Drain both pipes on threads so a large output cannot stall the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        out.read_to_end(&mut s).unwrap();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        err.read_to_end(&mut s).unwrap();
        s
    });
    let pid = child.id() as libc::pid_t;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, usage) = loop {
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills; pid is our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(rc >= 0, "wait4: {}", std::io::Error::last_os_error());
        if rc == pid {
            break (std::process::ExitStatus::from_raw(status), usage);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("osqueryi {args:?} did not return: a read blocks or never ends");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap()).into_owned(),
        max_rss_kib: usage.ru_maxrss,
    }
}

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: c is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// The peak memory of a query that reads nothing: what "small" is compared with.
fn baseline_rss_kib() -> i64 {
    let r = run_bounded(&["--json", "select 1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.max_rss_kib
}

#[test]
fn a_fifo_named_by_path_returns_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo");
    mkfifo(&fifo);
    let path = fifo.to_str().unwrap();
    for (table, column) in [
        ("elf_info", "path"),
        ("elf_dynamic", "path"),
        ("elf_sections", "path"),
        ("elf_symbols", "path"),
        ("elf_segments", "path"),
        ("hash", "path"),
        ("device_partitions", "device"),
    ] {
        let query = format!("select * from {table} where {column} = '{path}'");
        let r = run_bounded(&["--json", &query]);
        assert_eq!(r.code, 0, "{table}: {}", r.stderr);
        assert_eq!(r.stdout, "[\n\n]\n", "{table}: no rows");
        assert!(
            r.stderr.contains(path) && r.stderr.contains("FIFO"),
            "{table}: no warning naming the FIFO in {:?}",
            r.stderr
        );
    }
}

/// `/proc/self/pagemap` reports size 0 and yields hundreds of gigabytes; before the
/// fix `elf_symbols` held 3.6 GB after 8 s and `hash` read on past `--read_max`.
#[test]
fn an_endless_proc_file_is_read_no_further_than_read_max() {
    let baseline = baseline_rss_kib();
    let r = run_bounded(&[
        "--json",
        "--read_max=1000",
        "select path, md5, sha256 from hash where path = '/proc/self/pagemap'",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "[\n  {\"md5\":\"\",\"path\":\"/proc/self/pagemap\",\"sha256\":\"\"}\n]\n"
    );
    assert!(r.stderr.contains("1000 bytes"), "{}", r.stderr);
    // Not ELF: left after its header, whatever the limit.
    let r = run_bounded(&[
        "--json",
        "select * from elf_symbols where path = '/proc/self/pagemap'",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "[\n\n]\n");
    // The default limit (50 MiB) bounds what hashing it may hold.
    let r = run_bounded(&[
        "--json",
        "select sha256 from hash where path = '/proc/self/pagemap'",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "[\n  {\"sha256\":\"\"}\n]\n");
    assert!(
        r.max_rss_kib < baseline + 64 * 1024,
        "peak {} KiB against {baseline} KiB for select 1",
        r.max_rss_kib
    );
}

/// A `root -> /` link in a tree walked with `%%` is listed, not entered: the rows are
/// what `find` (which does not follow links) lists.
#[test]
fn a_link_to_the_root_does_not_walk_the_file_system() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    std::fs::create_dir_all(r.join("a/b")).unwrap();
    std::fs::write(r.join("a/b/f"), b"x").unwrap();
    std::os::unix::fs::symlink("/", r.join("root")).unwrap();
    std::os::unix::fs::symlink("/", r.join("a/b/root")).unwrap();
    let query = format!(
        "select count(*) as n from file where path like '{}/%%'",
        r.display()
    );
    let run = run_bounded(&["--json", &query]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let find = Command::new("find")
        .arg(r)
        .args(["-mindepth", "1"])
        .output()
        .unwrap();
    assert!(find.status.success());
    let listed = find.stdout.iter().filter(|b| **b == b'\n').count();
    assert_eq!(listed, 5);
    assert_eq!(run.stdout, format!("[\n  {{\"n\":\"{listed}\"}}\n]\n"));
}

/// In `osqueryd`, scheduled queries over a directory holding a FIFO (and naming it as a
/// device) neither stall the schedule nor keep SIGTERM from stopping the daemon: a query
/// beside them keeps logging, the ELF file next to the FIFO is found, and the FIFO is
/// named in the status log.
#[test]
fn a_fifo_in_a_scheduled_walk_stalls_neither_the_schedule_nor_the_stop() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    mkfifo(&dir.join("fifo"));
    std::fs::copy("/bin/ls", dir.join("ls")).unwrap();
    let s = Sandbox::new();
    let d = dir.display();
    s.write_config(&format!(
        r#"{{"schedule": {{
  "elf": {{"query": "SELECT path, type FROM elf_info WHERE path LIKE '{d}/%'", "interval": 1}},
  "symbols": {{"query": "SELECT count(*) AS n FROM elf_symbols WHERE path LIKE '{d}/%'", "interval": 1}},
  "device": {{"query": "SELECT * FROM device_partitions WHERE device = '{d}/fifo'", "interval": 1}},
  "clock": {{"query": "SELECT unix_time FROM time", "interval": 1}}
}}}}"#
    ));
    let mut daemon = s.start("hostile", &[]);
    let logged = wait_until(Duration::from_secs(30), || {
        s.results_of("clock").len() >= 3 && !s.results_of("elf").is_empty()
    });
    assert!(logged, "schedule stalled:\n{}", daemon.stderr_text());
    // One line per row: only the ELF file, added once.
    let elf = s.results_of("elf");
    assert_eq!(elf.len(), 1, "{elf:?}");
    assert_eq!(elf[0]["action"], "added");
    assert_eq!(elf[0]["columns"]["path"], format!("{d}/ls"));
    let warnings = s.status_log("WARNING");
    assert!(
        warnings.contains(&format!("{d}/fifo")) && warnings.contains("FIFO"),
        "{warnings}"
    );
    let (status, _) = daemon.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
}
