//! Events under load (the Events issue, §4): `osqueryd` with file events on while a
//! generator changes files under the watched tree at a fixed rate, or execs `/bin/true`
//! at a fixed rate with process events on. Reports how many events the generator caused,
//! how many the daemon recorded, how many it counted as dropped, and what is left
//! unaccounted (the silent loss; goal: none), with the daemon's CPU and peak RSS.
//!
//! `--kind connector` measures the other source of `process_events`: a stand-in audit
//! daemon (this program, copied as `auditd`) holds the audit socket, so the daemon leaves
//! it and reads the kernel's process connector instead. Its count is every exec row
//! (a process that has already exited has no path left to filter on), so other programs
//! the host runs meanwhile add a few.
//!
//! Usage: `cargo build --release -p oxquery && cargo run --release -p oxquery-bench --bin
//! bench-events -- [--kind file|process|connector] [--rate 20000] [--seconds 60]
//! [--events-max N]`.
//! Run as root (process events need the audit socket or the process connector).
//! Everything lives in a temporary directory; audit rules the daemon adds are removed
//! when it stops.

use oxquery_bench::{arg, cpu_ticks, find_program, spawn_osqueryd, status_kib, text_arg, today};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Files the generator cycles through: consecutive changes hit different files, so the
/// kernel never merges two of them into one inotify event.
const FILES: usize = 256;
/// How often the daemon's scheduled queries read the new events (seconds).
const INTERVAL: u64 = 5;

/// Paces `op` at `rate` calls per second for `seconds`; returns how many ran.
fn generate(rate: u64, seconds: u64, mut op: impl FnMut(u64)) -> u64 {
    let start = Instant::now();
    let mut done = 0u64;
    while start.elapsed() < Duration::from_secs(seconds) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while done < due {
            op(done);
            done += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    done
}

/// The `n` column of every line of the scheduled query `name` in the results log.
fn sum_counts(log: &Path, name: &str) -> u64 {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["name"] == name)
        .filter_map(|v| v["columns"]["n"].as_str()?.parse::<u64>().ok())
        .sum()
}

/// The last `health` snapshot's (events, dropped, reasons) for `subscriber`.
fn health(log: &Path, subscriber: &str) -> (u64, u64, String) {
    let text = fs::read_to_string(log).unwrap_or_default();
    let mut last = (0, 0, String::new());
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        for row in v["snapshot"].as_array().into_iter().flatten() {
            if row["name"] == subscriber {
                let num = |k: &str| row[k].as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
                let reasons = row["dropped_reasons"].as_str().unwrap_or("").to_owned();
                last = (num("events"), num("dropped"), reasons);
            }
        }
    }
    last
}

/// The argument that makes this program the stand-in audit daemon.
const HOLD_AUDIT_SOCKET: &str = "--hold-audit-socket";

/// The stand-in audit daemon: holds the audit socket until stdin closes, then gives it
/// back (the session restores the audit status it found).
fn hold_audit_socket() {
    let mut session = oxquery_sys::audit::AuditSession::open().expect("audit socket (root)");
    let taken = session
        .take_socket(oxquery_sys::audit::TakeOver::Never)
        .expect("audit status");
    eprintln!("stand-in audit daemon: {taken:?}");
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut rest);
    let _ = session.restore();
}

/// Starts the stand-in as `<dir>/auditd` and waits until it holds the audit socket.
fn start_stand_in(dir: &Path) -> std::process::Child {
    let exe = dir.join("auditd");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let child = Command::new(&exe)
        .arg(HOLD_AUDIT_SOCKET)
        .stdin(Stdio::piped())
        .spawn()
        .expect("the stand-in audit daemon starts");
    let mut observer = oxquery_sys::audit::AuditSession::open().expect("audit socket (root)");
    let start = Instant::now();
    while observer.status().ok().map(|s| s.pid) != Some(child.id()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the stand-in never took the socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some(HOLD_AUDIT_SOCKET) {
        hold_audit_socket();
        return;
    }
    let kind = text_arg("--kind", "file");
    let rate = arg("--rate", if kind == "file" { 20_000 } else { 2_000 }) as u64;
    let seconds = arg("--seconds", 60) as u64;
    let events_max = arg("--events-max", 0);
    let Some(osqueryd) = find_program("osqueryd") else {
        eprintln!("build osqueryd first: cargo build --release -p oxquery");
        std::process::exit(2);
    };
    let dir = std::env::temp_dir().join(format!("oxquery-bench-events-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let watched = dir.join("watched");
    fs::create_dir_all(dir.join("logs")).unwrap();
    fs::create_dir_all(&watched).unwrap();
    let files: Vec<PathBuf> = (0..FILES).map(|i| watched.join(format!("f{i}"))).collect();
    for f in &files {
        fs::write(f, b"x").unwrap();
    }
    let (table, subscriber, counted): (&str, &str, &str) = match kind.as_str() {
        "file" => (
            "file_events",
            "file_events",
            "select count(*) as n from file_events where action = 'ATTRIBUTES_MODIFIED'",
        ),
        "process" => (
            "process_events",
            "process_events",
            "select count(*) as n from process_events where path in ('/bin/true', '/usr/bin/true')",
        ),
        "connector" => (
            "process_events (process connector)",
            "process_events",
            "select count(*) as n from process_events where syscall = 'execve'",
        ),
        other => {
            eprintln!("--kind is file, process or connector, not {other}");
            std::process::exit(2);
        }
    };
    let config = serde_json::json!({
        "file_paths": { "bench": [format!("{}/%%", watched.display())] },
        "schedule": {
            "count": { "query": counted, "interval": INTERVAL },
            "health": {
                "query": "select name, events, dropped, dropped_reasons from osquery_events",
                "interval": INTERVAL,
                "snapshot": true
            }
        }
    });
    fs::write(dir.join("osquery.conf"), config.to_string()).unwrap();
    let mut args = vec![
        "--disable_events=false".to_owned(),
        "--schedule_splay_percent=0".to_owned(),
    ];
    match kind.as_str() {
        "file" => args.push("--enable_file_events=true".into()),
        _ => args.extend([
            "--disable_audit=false".into(),
            "--audit_allow_config=true".into(),
        ]),
    }
    if events_max > 0 {
        args.push(format!("--events_max={events_max}"));
    }
    let stand_in = (kind == "connector").then(|| start_stand_in(&dir));
    let mut child = spawn_osqueryd(&osqueryd, &dir, &args);
    let pid = child.id();
    // Publishers start and watches are placed before the load begins.
    std::thread::sleep(Duration::from_secs(3));
    let ticks0 = cpu_ticks(pid).expect("osqueryd is running");
    let start = Instant::now();
    let caused = match kind.as_str() {
        "file" => generate(rate, seconds, |i| {
            let mode = if (i / FILES as u64).is_multiple_of(2) {
                0o600
            } else {
                0o644
            };
            let _ =
                fs::set_permissions(&files[i as usize % FILES], fs::Permissions::from_mode(mode));
        }),
        _ => {
            // Two spawning threads, each with up to 64 children running side by side: one
            // thread waiting for each exec in turn topped out near 1,200/s, one with
            // children side by side near 1,400/s.
            let spawners: Vec<_> = (0..2)
                .map(|_| {
                    std::thread::spawn(move || {
                        let truth = Path::new("/bin/true");
                        let mut running: Vec<std::process::Child> = Vec::new();
                        let caused = generate(rate / 2, seconds, |_| {
                            if running.len() >= 64 {
                                running.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
                                if running.len() >= 64 {
                                    let _ = running.remove(0).wait();
                                }
                            }
                            if let Ok(child) = Command::new(truth).stdout(Stdio::null()).spawn() {
                                running.push(child);
                            }
                        });
                        for mut child in running {
                            let _ = child.wait();
                        }
                        caused
                    })
                })
                .collect();
            spawners.into_iter().map(|t| t.join().unwrap_or(0)).sum()
        }
    };
    let elapsed = start.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid).unwrap_or(ticks0) - ticks0;
    // Two more scheduled runs read what is still queued.
    std::thread::sleep(Duration::from_secs(2 * INTERVAL + 1));
    let peak = status_kib(pid, "VmHWM:").unwrap_or(0);
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait().expect("osqueryd exits");
    if let Some(mut stand_in) = stand_in {
        drop(stand_in.stdin.take());
        let _ = stand_in.wait();
    }
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu_percent = ticks as f64 / hz / elapsed * 100.0;
    let log = dir.join("logs").join("osqueryd.results.log");
    let snapshots = dir.join("logs").join("osqueryd.snapshots.log");
    let recorded = sum_counts(&log, "count");
    let (published, dropped, reasons) = health(&snapshots, subscriber);
    let unaccounted = caused.saturating_sub(recorded + dropped);
    println!(
        "{table} under load: {caused} events caused in {elapsed:.1} s ({:.0}/s) by {}",
        caused as f64 / elapsed,
        osqueryd.display()
    );
    println!("  recorded by the scheduled query   {recorded}");
    println!("  added by the subscriber           {published}");
    println!("  counted as dropped                {dropped}  {reasons}");
    println!(
        "  unaccounted (silent loss)         {unaccounted}   goal 0   {}",
        if unaccounted == 0 { "MET" } else { "MISSED" }
    );
    println!(
        "  daemon CPU                        {cpu_percent:.1} % of one core ({:.2} % per 1,000 events/s)",
        cpu_percent / (caused as f64 / elapsed / 1000.0)
    );
    println!(
        "  daemon RSS peak (HWM)             {:.1} MB   goal ≤ 40 MB   {}",
        peak as f64 / 1024.0,
        if peak <= 40 * 1024 { "MET" } else { "MISSED" }
    );
    println!("  exit {status}");
    let run_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("runs")
        .join(today());
    if fs::create_dir_all(&run_dir).is_ok()
        && let Ok(mut f) = fs::File::create(run_dir.join(format!("events-{kind}.csv")))
    {
        let _ = writeln!(
            f,
            "kind,rate,seconds,caused,recorded,dropped,unaccounted,cpu_percent,rss_peak_kib"
        );
        let _ = writeln!(
            f,
            "{kind},{rate},{elapsed:.1},{caused},{recorded},{dropped},{unaccounted},{cpu_percent:.2},{peak}"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}
