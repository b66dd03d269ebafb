//! Shared harness of the benchmark binaries.
//!
//! Absolute times mean little on a shared 2-core machine, so every benchmark is a pair
//! (ours, baseline) measured in the same run: warm-up, then the two alternate for N
//! iterations so drift (other builds, page cache) hits both alike. The figure that
//! matters is the ratio of the means. Raw samples go to `crates/bench/runs/<date>/`.

use oxquery_engine::{Engine, TableFilter};
use oxquery_table::InstanceInfo;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// An engine with every table, as `osqueryi` builds it.
pub fn engine() -> Engine {
    Engine::new(
        &oxquery_tables::all(),
        &TableFilter::default(),
        InstanceInfo::default(),
    )
    .expect("engine starts")
}

/// Runs `sql` and returns its row count (rows are fully materialised, as a client would).
pub fn query_rows(engine: &Engine, sql: &str) -> usize {
    engine.query(sql).expect("query runs").rows.len()
}

/// Idle `sleep 600` children, killed and reaped on drop (also when a benchmark panics).
pub struct Sleepers(Vec<Child>);

impl Sleepers {
    pub fn spawn(n: usize) -> Sleepers {
        let mut children = Sleepers(Vec::with_capacity(n));
        for _ in 0..n {
            match Command::new("sleep")
                .arg("600")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            {
                Ok(c) => children.0.push(c),
                Err(e) => {
                    eprintln!("spawned {} sleepers, then: {e}", children.0.len());
                    break;
                }
            }
        }
        children
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Sleepers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

/// Mean and sample standard deviation in milliseconds.
pub fn stats(samples: &[Duration]) -> (f64, f64) {
    let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    let n = ms.len().max(1) as f64;
    let mean = ms.iter().sum::<f64>() / n;
    let var = if ms.len() > 1 {
        ms.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// One benchmark pair's result.
pub struct Comparison {
    pub name: String,
    pub ours_label: String,
    pub base_label: String,
    pub ours: Vec<Duration>,
    pub base: Vec<Duration>,
    pub goal: f64,
}

impl Comparison {
    pub fn ratio(&self) -> f64 {
        stats(&self.ours).0 / stats(&self.base).0
    }

    pub fn report(&self) {
        let (om, os) = stats(&self.ours);
        let (bm, bs) = stats(&self.base);
        let ratio = self.ratio();
        println!("{}", self.name);
        println!("  ours      {om:9.2} ms ± {os:6.2}  ({})", self.ours_label);
        println!("  baseline  {bm:9.2} ms ± {bs:6.2}  ({})", self.base_label);
        println!(
            "  ratio     {ratio:9.3}×  goal ≤ {:.2}×  {}  (n = {})",
            self.goal,
            if ratio <= self.goal { "MET" } else { "MISSED" },
            self.ours.len()
        );
    }
}

/// Times `ours` and `base` alternately: `warmup` untimed rounds, then `n` timed ones.
pub fn compare(
    name: &str,
    (ours_label, mut ours): (&str, impl FnMut()),
    (base_label, mut base): (&str, impl FnMut()),
    warmup: usize,
    n: usize,
    goal: f64,
) -> Comparison {
    for _ in 0..warmup {
        ours();
        base();
    }
    let mut c = Comparison {
        name: name.to_owned(),
        ours_label: ours_label.to_owned(),
        base_label: base_label.to_owned(),
        ours: Vec::with_capacity(n),
        base: Vec::with_capacity(n),
        goal,
    };
    for i in 0..n {
        // Alternate which side goes first so neither always runs on a warmer cache.
        let mut time_ours = || {
            let t = Instant::now();
            ours();
            c.ours.push(t.elapsed());
        };
        if i % 2 == 0 {
            time_ours();
            let t = Instant::now();
            base();
            c.base.push(t.elapsed());
        } else {
            let t = Instant::now();
            base();
            let elapsed = t.elapsed();
            time_ours();
            c.base.push(elapsed);
        }
    }
    c
}

/// Runs a command to completion with its output discarded; panics if it fails.
pub fn run_quiet(program: &Path, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    assert!(status.success(), "{} {args:?}: {status}", program.display());
}

/// Finds `name` next to the running binary (the same `target/<profile>`) or on `PATH`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let sibling = std::env::current_exe().ok()?.with_file_name(name);
    if sibling.is_file() {
        return Some(sibling);
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

/// Today's date (UTC) as `YYYY-MM-DD`, for the run directory.
pub fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Writes every sample of `results` to `crates/bench/runs/<date>/<file>.csv`.
pub fn write_csv(file: &str, results: &[Comparison]) -> std::io::Result<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("runs")
        .join(today());
    fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{file}.csv"));
    let mut out = fs::File::create(&path)?;
    writeln!(out, "benchmark,side,label,iteration,ms")?;
    for c in results {
        for (side, label, samples) in [
            ("ours", &c.ours_label, &c.ours),
            ("baseline", &c.base_label, &c.base),
        ] {
            for (i, d) in samples.iter().enumerate() {
                writeln!(
                    out,
                    "\"{}\",{side},\"{label}\",{i},{:.4}",
                    c.name,
                    d.as_secs_f64() * 1e3
                )?;
            }
        }
    }
    Ok(path)
}

/// `--name value` from the command line, or `default`.
pub fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `--name value` from the command line as text, or `default`.
pub fn text_arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

/// utime + stime of a process in clock ticks, while it lives.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Starts `osqueryd` with everything it writes under `dir` (config `dir/osquery.conf`,
/// database, `dir/logs`, pidfile), no flagfile of the host's, and `extra` flags; its
/// output is discarded.
pub fn spawn_osqueryd(osqueryd: &Path, dir: &Path, extra: &[String]) -> std::process::Child {
    let arg_of = |name: &str, p: &Path| format!("--{name}={}", p.display());
    Command::new(osqueryd)
        .args([
            arg_of("config_path", &dir.join("osquery.conf")),
            arg_of("database_path", &dir.join("osquery.db")),
            arg_of("logger_path", &dir.join("logs")),
            arg_of("pidfile", &dir.join("osqueryd.pid")),
            arg_of("extensions_socket", &dir.join("osquery.em")),
            "--flagfile=/dev/null".to_owned(),
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", osqueryd.display()))
}

/// Runs the command to its end and returns its peak resident set size in KiB (from
/// wait4's rusage of that one child).
// The child is reaped by wait4 itself, which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub fn run_measuring_rss(program: &Path, args: &[&str]) -> i64 {
    use std::os::unix::process::ExitStatusExt;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child we just spawned; pointers are valid.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    let status = std::process::ExitStatus::from_raw(status);
    assert!(status.success(), "{} {args:?}: {status}", program.display());
    usage.ru_maxrss
}

/// A `kB` field of `/proc/<pid>/status` (`VmHWM:`, `VmRSS:`), in KiB, while the process
/// lives.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_of_known_samples() {
        let s = [2, 4, 4, 4, 5, 5, 7, 9].map(Duration::from_millis);
        let (mean, sd) = stats(&s);
        assert!((mean - 5.0).abs() < 1e-9);
        // Sample standard deviation of that set is sqrt(32/7).
        assert!((sd - (32.0f64 / 7.0).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn today_matches_date_command() {
        let Ok(out) = Command::new("date").args(["-u", "+%F"]).output() else {
            return;
        };
        let before = today();
        let date = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        // Around midnight the two may straddle the day change.
        assert!(date == before || date == today(), "{date} vs {before}");
    }
}
