//! The `hash` table's digest cache (`--hash_cache_max`): a repeated
//! `select sha256 from hash where directory = '/usr/bin'` in one osqueryi process
//! against `sha256sum` over the same files, for the first run and for the runs after it.
//!
//! Usage: `cargo build --release -p oxquery -p oxquery-bench && target/release/bench-hash-cache
//! [--iters 5] [--repeats 10]`.
//!
//! Per iteration, alternating: osqueryi running the query once (start-up + first run),
//! `sha256sum` over the regular files in `/usr/bin` (links followed, as the table does),
//! and osqueryi running it `1 + repeats` times in one process; a repeated run costs
//! (the second time - the first) / repeats. Repeated runs are measured with a cache
//! that holds every file (`--hash_cache_max` = twice the file count), with osquery's
//! default of 500 (under the ~1,100 files of `/usr/bin`, a scan in a fixed order evicts
//! each file before it comes round again: every run reads everything, as in osquery,
//! whose cache evicts the same way), and with `--disable_hash_cache`. `--read_max` is
//! raised so that no file is skipped (osquery's 50 MiB default would leave large
//! binaries undigested, unlike `sha256sum`). Before timing, every digest the table gives
//! is checked against `sha256sum`'s. Goals: the first run ≤ 1.25× `sha256sum` (both read
//! every byte from the page cache), a repeated run with a cache that holds the directory
//! ≤ 0.1× (a `stat` per file instead of a read); the other two are for comparison.

use oxquery_bench::{Comparison, arg, find_program, write_csv};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const DIR: &str = "/usr/bin";
const QUERY: &str = "select path, sha256 from hash where directory = '/usr/bin';\n";
const READ_MAX: &str = "--read_max=4294967296";

/// Runs osqueryi with the query `times` times on stdin; returns its output.
fn osqueryi(bin: &Path, times: usize, extra: &[&str]) -> String {
    let mut child = Command::new(bin)
        .args(["--flagfile=/dev/null", "--list", "--header=false", READ_MAX])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let input = QUERY.repeat(times);
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || {
        use std::io::Write as _;
        stdin
            .write_all(input.as_bytes())
            .expect("write the queries");
    });
    let out = child.wait_with_output().expect("osqueryi runs");
    writer.join().expect("stdin written");
    assert!(out.status.success(), "osqueryi: {}", out.status);
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `sha256sum` over `files`; its output.
fn sha256sum(files: &[PathBuf]) -> String {
    let out = Command::new("sha256sum")
        .args(files)
        .stderr(Stdio::null())
        .output()
        .expect("sha256sum runs");
    assert!(out.status.success(), "sha256sum: {}", out.status);
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn main() {
    let iters = arg("--iters", 5);
    let repeats = arg("--repeats", 10).max(1);
    let Some(bin) = find_program("osqueryi") else {
        eprintln!("build osqueryi first: cargo build --release -p oxquery");
        std::process::exit(2);
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(DIR)
        .expect("list /usr/bin")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        .collect();
    files.sort();
    let bytes: u64 = files
        .iter()
        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
        .sum();

    // The same digests on both sides (this also warms the page cache).
    let base: BTreeMap<String, String> = sha256sum(&files)
        .lines()
        .map(|l| {
            let (digest, path) = l.split_once("  ").expect("sha256sum line");
            (path.to_owned(), digest.to_owned())
        })
        .collect();
    let ours: BTreeMap<String, String> = osqueryi(&bin, 1, &[])
        .lines()
        .map(|l| {
            let (path, digest) = l.rsplit_once('|').expect("path|sha256");
            (path.to_owned(), digest.to_owned())
        })
        .collect();
    assert_eq!(ours, base, "hash table and sha256sum disagree");
    println!(
        "{} regular files in {DIR}, {:.1} MB; {iters} iterations, {repeats} repeats\n",
        files.len(),
        bytes as f64 / 1e6
    );

    let mut first = Vec::new();
    let mut repeated = Vec::new();
    let mut repeated_default = Vec::new();
    let mut repeated_uncached = Vec::new();
    let holds_all = format!("--hash_cache_max={}", 2 * files.len());
    let mut baseline = Vec::new();
    for i in 0..iters {
        let once = || timed(|| drop(osqueryi(&bin, 1, &[&holds_all])));
        let base = || timed(|| drop(sha256sum(&files)));
        // Alternate which goes first so neither always follows the other.
        let (t1, tb) = if i % 2 == 0 {
            let t1 = once();
            (t1, base())
        } else {
            let tb = base();
            (once(), tb)
        };
        let many = timed(|| drop(osqueryi(&bin, 1 + repeats, &[&holds_all])));
        let default_once = timed(|| drop(osqueryi(&bin, 1, &[])));
        let default_many = timed(|| drop(osqueryi(&bin, 1 + repeats, &[])));
        let uncached_once = timed(|| drop(osqueryi(&bin, 1, &["--disable_hash_cache"])));
        let uncached_many = timed(|| {
            drop(osqueryi(&bin, 1 + repeats, &["--disable_hash_cache"]));
        });
        first.push(t1);
        baseline.push(tb);
        repeated.push(many.saturating_sub(t1) / repeats as u32);
        repeated_default.push(default_many.saturating_sub(default_once) / repeats as u32);
        repeated_uncached.push(uncached_many.saturating_sub(uncached_once) / repeats as u32);
    }
    let pair = |name: &str, label: &str, ours: Vec<Duration>, goal: f64| Comparison {
        name: name.to_owned(),
        ours_label: label.to_owned(),
        base_label: format!("sha256sum over the {} files", files.len()),
        ours,
        base: baseline.clone(),
        goal,
    };
    let results = [
        pair(
            "first run in a process (start-up included)",
            QUERY.trim(),
            first,
            1.25,
        ),
        pair(
            "each repeated run in the same process, a cache that holds every file",
            &format!("the same query again, {holds_all}"),
            repeated,
            0.1,
        ),
        pair(
            "each repeated run in the same process, osquery's default --hash_cache_max=500",
            "the same query again",
            repeated_default,
            1.25,
        ),
        pair(
            "each repeated run in the same process, --disable_hash_cache",
            "the same query again",
            repeated_uncached,
            1.25,
        ),
    ];
    for r in &results {
        r.report();
        println!();
    }
    if let Ok(path) = write_csv("hash_cache", &results) {
        println!("raw samples: {}", path.display());
    }
}
