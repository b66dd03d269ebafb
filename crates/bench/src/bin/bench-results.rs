//! `osqueryd` with a scheduled query returning 1,000,000 rows beside a one-row query
//! scheduled every second: how long the big result takes to be diffed and logged, the
//! process's resident memory meanwhile, how long its second (unchanged) run takes, and
//! whether the one-row query keeps logging on time throughout.
//!
//! Goals (issue 9, §2): first run logged in ≤ 10 s with ≤ 500 MB RSS, second unchanged
//! run in ≤ 3 s, the every-second query never skipped nor late by more than 2 s.
//!
//! Usage: `cargo build --release -p oxquery && cargo run --release -p oxquery-bench --bin
//! bench-results -- [--rows 1000000] [--seconds 120] [--osqueryd PATH] [--label after]`.
//! `--osqueryd` measures another build (the previous commit's, for a before/after
//! figure). Everything lives in a temporary directory.

use oxquery_bench::{arg, find_program, spawn_osqueryd, status_kib, today};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The big query: `rows` rows of an integer and a 42-character text.
fn big_sql(rows: usize) -> String {
    format!(
        "WITH RECURSIVE c(v) AS (SELECT 1 UNION ALL SELECT v+1 FROM c LIMIT {rows}) \
         SELECT v AS a, 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEF' AS z FROM c"
    )
}

/// Changes every second (so every run logs), and reports the big query's statistics.
const TICK_SQL: &str = "SELECT t.unix_time AS t, s.executions AS executions, \
     s.last_wall_time_ms AS last_wall_time_ms FROM time t, osquery_schedule s WHERE s.name = 'big'";

fn string_arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn unix_now_f64() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Reads what was appended to a log file since the last call, whole lines only.
struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    fn new(path: PathBuf) -> Tail {
        Tail {
            path,
            offset: 0,
            partial: Vec::new(),
        }
    }

    fn lines(&mut self) -> Vec<String> {
        let Ok(mut f) = fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(last) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.partial.split_off(last + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        String::from_utf8_lossy(&done)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// What one run of the benchmark saw.
#[derive(Default)]
struct Observed {
    /// Seconds from the daemon's start to the last of the big query's first-run lines.
    first_run_logged: Option<f64>,
    big_lines: usize,
    rss_peak_kib: u64,
    /// The big query's second run (unchanged): its wall time as `osquery_schedule` shows.
    second_run_ms: Option<u64>,
    /// The every-second query: seconds that ran, and the worst delay from the second a
    /// run was due to its line reaching the log.
    tick_seconds: Vec<i64>,
    tick_worst_delay: f64,
    skipped_turns: usize,
}

fn main() {
    let rows = arg("--rows", 1_000_000);
    let seconds = arg("--seconds", 120) as u64;
    let label = string_arg("--label").unwrap_or_else(|| "after".into());
    let osqueryd = match string_arg("--osqueryd") {
        Some(p) => PathBuf::from(p),
        None => find_program("osqueryd").unwrap_or_else(|| {
            eprintln!("build osqueryd first: cargo build --release -p oxquery");
            std::process::exit(2);
        }),
    };
    let dir = std::env::temp_dir().join(format!("oxquery-bench-results-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("logs")).unwrap();
    // `big` runs at start-up, then every 20 s; `tick` every second.
    let config = format!(
        r#"{{
  "schedule": {{
    "big": {{ "query": "{big}", "interval": 20, "startup_priority": 1 }},
    "tick": {{ "query": "{TICK_SQL}", "interval": 1 }}
  }}
}}"#,
        big = big_sql(rows)
    );
    fs::write(dir.join("osquery.conf"), config).unwrap();
    let started = Instant::now();
    let mut child = spawn_osqueryd(&osqueryd, &dir, &["--schedule_splay_percent=0".into()]);
    let pid = child.id();
    let mut results = Tail::new(dir.join("logs").join("osqueryd.results.log"));
    let mut info = Tail::new(dir.join("logs").join("osqueryd.INFO"));
    let mut seen = Observed::default();
    let mut ticks: BTreeMap<i64, f64> = BTreeMap::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(50));
        match status_kib(pid, "VmRSS:") {
            Some(kib) => seen.rss_peak_kib = seen.rss_peak_kib.max(kib),
            None => break,
        }
        let now = unix_now_f64();
        for line in results.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            match v["name"].as_str() {
                Some("big") => {
                    seen.big_lines += 1;
                    if seen.big_lines == rows {
                        seen.first_run_logged = Some(started.elapsed().as_secs_f64());
                    }
                }
                Some("tick") if v["action"] == "added" => {
                    let due = v["unixTime"].as_i64().unwrap_or(0);
                    ticks.entry(due).or_insert(now);
                    let column = |c: &str| v["columns"][c].as_str()?.parse::<u64>().ok();
                    if column("executions") == Some(2) {
                        seen.second_run_ms = column("last_wall_time_ms");
                    }
                }
                _ => {}
            }
        }
        for line in info.lines() {
            if line.contains("skipping this turn") && line.contains(" tick ") {
                seen.skipped_turns += 1;
            }
        }
        if seen.first_run_logged.is_some() && seen.second_run_ms.is_some() && ticks.len() >= 5 {
            break;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let _ = child.wait();
    seen.tick_seconds = ticks.keys().copied().collect();
    seen.tick_worst_delay = ticks
        .iter()
        .map(|(due, arrived)| arrived - *due as f64)
        .fold(0.0, f64::max);
    let missing = match (seen.tick_seconds.first(), seen.tick_seconds.last()) {
        (Some(a), Some(b)) => (b - a + 1) as usize - seen.tick_seconds.len(),
        _ => 0,
    };

    let verdict = |ok: bool| if ok { "MET" } else { "MISSED" };
    println!(
        "osqueryd ({label}, {}), {rows} rows, watched {elapsed:.0} s",
        osqueryd.display()
    );
    match seen.first_run_logged {
        Some(t) => println!(
            "  first run logged     {t:7.2} s from start   goal ≤ 10 s   {}",
            verdict(t <= 10.0)
        ),
        None => println!(
            "  first run logged     not within {elapsed:.0} s ({} of {rows} lines)   MISSED",
            seen.big_lines
        ),
    }
    let rss_mb = seen.rss_peak_kib as f64 / 1024.0;
    println!(
        "  RSS peak             {rss_mb:7.1} MB            goal ≤ 500 MB {}",
        verdict(rss_mb <= 500.0)
    );
    match seen.second_run_ms {
        Some(ms) => println!(
            "  second run (same)    {:7.2} s               goal ≤ 3 s    {}",
            ms as f64 / 1000.0,
            verdict(ms <= 3000)
        ),
        None => println!("  second run (same)    not seen   MISSED"),
    }
    println!(
        "  every-second query   {} runs logged, {missing} seconds missing, {} turns skipped, worst delay {:.2} s   {}",
        seen.tick_seconds.len(),
        seen.skipped_turns,
        seen.tick_worst_delay,
        verdict(missing == 0 && seen.skipped_turns == 0 && seen.tick_worst_delay <= 2.0)
    );
    let run_dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("runs")
        .join(today());
    let csv = run_dir.join("results.csv");
    let new = !csv.exists();
    if fs::create_dir_all(&run_dir).is_ok()
        && let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(&csv)
    {
        if new {
            let _ = writeln!(
                f,
                "label,rows,first_run_logged_s,big_lines,rss_peak_kib,second_run_ms,tick_runs,tick_missing,tick_skipped,tick_worst_delay_s"
            );
        }
        let opt = |v: Option<String>| v.unwrap_or_default();
        let _ = writeln!(
            f,
            "{label},{rows},{},{},{},{},{},{missing},{},{:.2}",
            opt(seen.first_run_logged.map(|t| format!("{t:.2}"))),
            seen.big_lines,
            seen.rss_peak_kib,
            opt(seen.second_run_ms.map(|m| m.to_string())),
            seen.tick_seconds.len(),
            seen.skipped_turns,
            seen.tick_worst_delay
        );
    }
    let _ = fs::remove_dir_all(&dir);
}
