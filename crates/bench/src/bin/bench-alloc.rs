//! The cost of per-query memory accounting: the same queries with the programs' counting
//! allocator and SQLite's counting wrapper, against the plain system allocator and
//! SQLite's default one.
//!
//! SQLite's allocator can be chosen only once per process, so each side runs in a child
//! process of this binary (`--child counting|plain`); the parent alternates the two for
//! `--rounds` rounds and reports the ratio of the means per query. Both children run
//! the same code; only the plain one leaves the counters alone.
//!
//! Usage: `cargo run --release -p oxquery-bench --bin bench-alloc -- [--rounds 10]
//! [--iters 20]`.

use oxquery_bench::{arg, stats};
use oxquery_engine::Limits;
use oxquery_table::memory::CountingAllocator;
use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

// Which side this process is: set once at start, before the workload runs; both sides
// pay the same load of this flag, so the difference is the counting itself.
static COUNTING: AtomicBool = AtomicBool::new(false);

struct Switch;

// SAFETY: both sides forward to the system allocator; the counting side only moves
// this thread's counters as well.
unsafe impl GlobalAlloc for Switch {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if COUNTING.load(Ordering::Relaxed) {
                CountingAllocator::SYSTEM.alloc(layout)
            } else {
                System.alloc(layout)
            }
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if COUNTING.load(Ordering::Relaxed) {
                CountingAllocator::SYSTEM.dealloc(ptr, layout)
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe {
            if COUNTING.load(Ordering::Relaxed) {
                CountingAllocator::SYSTEM.realloc(ptr, layout, new_size)
            } else {
                System.realloc(ptr, layout, new_size)
            }
        }
    }
}

#[global_allocator]
static ALLOC: Switch = Switch;

/// The workloads: a generator that allocates per row (Rust), and SQLite sorting and
/// building strings (SQLite's allocator).
const QUERIES: [(&str, &str); 3] = [
    ("processes", "SELECT * FROM processes"),
    (
        "sqlite sort",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 200000) \
         SELECT x, printf('%08d-row', x * 7919 % 200000) AS s FROM c ORDER BY s",
    ),
    (
        "sqlite group_concat",
        "SELECT length(group_concat(hex(randomblob(64)))) FROM \
         (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 100000) SELECT x FROM c)",
    ),
];

fn child(counting: bool, iters: usize) {
    COUNTING.store(counting, Ordering::SeqCst);
    if counting {
        assert!(oxquery_engine::account_sqlite_memory());
    }
    let engine = oxquery_bench::engine();
    // A budget far above what these use: the checks run, nothing stops.
    let limits = Limits {
        timeout: None,
        memory: Some(4 << 30),
    };
    for (name, sql) in QUERIES {
        engine.query_limited(sql, limits).expect("warm-up");
        let start = Instant::now();
        for _ in 0..iters {
            std::hint::black_box(engine.query_limited(sql, limits).expect("query runs"));
        }
        let per = start.elapsed() / iters as u32;
        println!("{name}\t{}\t{}", per.as_nanos(), engine.last_peak_memory());
    }
}

/// Nanoseconds per allocation and free of 64 bytes through `alloc`, over `n` pairs.
fn pair_cost(alloc: &dyn GlobalAlloc, n: usize) -> f64 {
    let layout = Layout::from_size_align(64, 8).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        // SAFETY: a non-zero layout, freed with the same layout right away.
        unsafe {
            let p = alloc.alloc(std::hint::black_box(layout));
            std::hint::black_box(p);
            alloc.dealloc(p, layout);
        }
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// The allocator call itself, in this process: the counting wrapper against the
/// system allocator, alternated.
fn per_call(rounds: usize) {
    let counting = CountingAllocator::SYSTEM;
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let n = 2_000_000;
        if round % 2 == 0 {
            ours.push(pair_cost(&counting, n));
            base.push(pair_cost(&System, n));
        } else {
            base.push(pair_cost(&System, n));
            ours.push(pair_cost(&counting, n));
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let min = |v: &[f64]| v.iter().cloned().fold(f64::MAX, f64::min);
    println!("one malloc+free of 64 bytes ({rounds} rounds of 2,000,000)");
    println!(
        "  counting  {:7.2} ns mean, {:7.2} ns best",
        mean(&ours),
        min(&ours)
    );
    println!(
        "  system    {:7.2} ns mean, {:7.2} ns best",
        mean(&base),
        min(&base)
    );
    println!("  ratio     {:7.3}× (means)\n", mean(&ours) / mean(&base));
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iters = arg("--iters", 20);
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(
            args.get(i + 1).map(String::as_str) == Some("counting"),
            iters,
        );
        return;
    }
    let rounds = arg("--rounds", 10);
    per_call(rounds);
    let exe = std::env::current_exe().expect("own path");
    let mut samples: Vec<(Vec<Duration>, Vec<Duration>)> = vec![Default::default(); QUERIES.len()];
    let mut peaks = vec![0u64; QUERIES.len()];
    for round in 0..rounds {
        // Alternate which side goes first.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for counting in order {
            let out = Command::new(&exe)
                .args(["--child", if counting { "counting" } else { "plain" }])
                .args(["--iters", &iters.to_string()])
                .output()
                .expect("child runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            for (k, line) in String::from_utf8(out.stdout).unwrap().lines().enumerate() {
                let fields: Vec<&str> = line.split('\t').collect();
                let per = Duration::from_nanos(fields[1].parse().unwrap());
                if counting {
                    samples[k].0.push(per);
                    peaks[k] = fields[2].parse().unwrap();
                } else {
                    samples[k].1.push(per);
                }
            }
        }
    }
    println!("per-query memory accounting: {rounds} rounds of {iters} runs per query and side\n");
    for (k, (name, _)) in QUERIES.iter().enumerate() {
        let (om, os) = stats(&samples[k].0);
        let (bm, bs) = stats(&samples[k].1);
        println!("{name}");
        println!(
            "  counting  {om:9.3} ms ± {os:6.3}  (peak {} KiB)",
            peaks[k] / 1024
        );
        println!("  plain     {bm:9.3} ms ± {bs:6.3}");
        println!("  ratio     {:9.3}×", om / bm);
    }
}
