//! `osqueryd` running a schedule like osquery's example config: idle resident memory and
//! CPU use over a long run (goals: ≤ 15 MB RSS, ≤ 1 % of one core over 10 minutes).
//!
//! Usage: `cargo build --release -p oxquery && cargo run --release -p oxquery-bench --bin
//! bench-daemon -- [--seconds 600]`. Everything lives in a temporary directory.

use oxquery_bench::{arg, cpu_ticks, find_program, spawn_osqueryd, status_kib, today};
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"{
  // Modelled on osquery's example config: a schedule, decorators and a pack file.
  "options": { "schedule_splay_percent": 10 },
  "schedule": {
    "system_info": { "query": "SELECT hostname, cpu_brand, physical_memory FROM system_info;", "interval": 3600 },
    "uptime": { "query": "SELECT days, hours, minutes FROM uptime;", "interval": 60, "snapshot": true },
    "listening_ports": { "query": "SELECT pid, port, protocol, address FROM listening_ports WHERE port != 0;", "interval": 300, "removed": false },
    "processes": { "query": "SELECT pid, name, path, cmdline, uid FROM processes;", "interval": 60 },
    "load": { "query": "SELECT period, average FROM load_average;", "interval": 30 }
  },
  "decorators": {
    "load": [ "SELECT uuid AS host_uuid FROM system_info;" ],
    "interval": { "3600": [ "SELECT total_seconds AS uptime FROM uptime;" ] }
  },
  "packs": { "monitoring": "PACK_PATH" }
}"#;

const PACK: &str = r#"{
  "platform": "linux",
  "queries": {
    "sockets": { "query": "SELECT pid, remote_address, remote_port FROM process_open_sockets WHERE remote_port != 0;", "interval": 120 },
    "etc_hashes": { "query": "SELECT path, sha256 FROM hash WHERE path LIKE '/etc/%';", "interval": 300 },
    "kernel": { "query": "SELECT version, arguments FROM kernel_info;", "interval": 3600 },
    "memory": { "query": "SELECT memory_total, memory_free FROM memory_info;", "interval": 60 }
  }
}"#;

fn main() {
    let seconds = arg("--seconds", 600) as u64;
    let Some(osqueryd) = find_program("osqueryd") else {
        eprintln!("build osqueryd first: cargo build --release -p oxquery");
        std::process::exit(2);
    };
    let dir = std::env::temp_dir().join(format!("oxquery-bench-daemon-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("logs")).unwrap();
    let pack = dir.join("monitoring.conf");
    fs::write(&pack, PACK).unwrap();
    fs::write(
        dir.join("osquery.conf"),
        CONFIG.replace("PACK_PATH", &pack.display().to_string()),
    )
    .unwrap();
    let mut child = spawn_osqueryd(&osqueryd, &dir, &[]);
    let pid = child.id();
    // Start-up runs the first queries; measure from a settled state.
    std::thread::sleep(Duration::from_secs(5));
    let ticks0 = cpu_ticks(pid).expect("osqueryd is running");
    let start = Instant::now();
    let mut rss = Vec::new();
    while start.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_secs(1));
        match status_kib(pid, "VmRSS:") {
            Some(kib) => rss.push(kib),
            None => break,
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ticks = cpu_ticks(pid).unwrap_or(ticks0) - ticks0;
    let peak = status_kib(pid, "VmHWM:").unwrap_or(0);
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let status = child.wait().expect("osqueryd exits");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu_percent = ticks as f64 / hz / elapsed * 100.0;
    rss.sort_unstable();
    let median = rss.get(rss.len() / 2).copied().unwrap_or(0);
    let lines = |name: &str| {
        fs::read_to_string(dir.join("logs").join(name)).map_or(0, |t| t.lines().count())
    };
    let results = lines("osqueryd.results.log");
    let snapshots = lines("osqueryd.snapshots.log");
    println!("osqueryd over {elapsed:.0} s ({})", osqueryd.display());
    println!(
        "  RSS median       {:7.2} MB   goal ≤ 15 MB   {}",
        median as f64 / 1024.0,
        if median <= 15 * 1024 { "MET" } else { "MISSED" }
    );
    println!("  RSS peak (HWM)   {:7.2} MB", peak as f64 / 1024.0);
    println!(
        "  CPU              {cpu_percent:7.3} % of one core   goal ≤ 1 %   {}",
        if cpu_percent <= 1.0 { "MET" } else { "MISSED" }
    );
    println!("  result lines {results}, snapshot lines {snapshots}, exit {status}");
    let run_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("runs")
        .join(today());
    if fs::create_dir_all(&run_dir).is_ok()
        && let Ok(mut f) = fs::File::create(run_dir.join("daemon.csv"))
    {
        let _ = writeln!(
            f,
            "seconds,rss_median_kib,rss_peak_kib,cpu_percent,result_lines,snapshot_lines"
        );
        let _ = writeln!(
            f,
            "{elapsed:.0},{median},{peak},{cpu_percent:.4},{results},{snapshots}"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}
