//! Streaming scans: `osqueryi "select count(*) from file where path like '/usr/%%'"`
//! beside `find /usr` measured in the same run (the walk's floor), with the peak RSS of
//! each; and the same walk with `LIMIT 1` beside `osqueryi "select 1"` (start-up alone).
//! Goals (issue 8): ≤ 50 MB peak RSS for the count; `LIMIT 1` in a few milliseconds.
//!
//! Usage: `cargo build --release -p oxquery && cargo run --release -p oxquery-bench --bin
//! bench-walk -- [--iters 10]`.

use oxquery_bench::{arg, compare, find_program, run_measuring_rss, stats, write_csv};

fn main() {
    let iters = arg("--iters", 10);
    let Some(osqueryi) = find_program("osqueryi") else {
        eprintln!("build osqueryi first: cargo build --release -p oxquery");
        std::process::exit(2);
    };
    let find = find_program("find").expect("find on PATH");
    let count = [
        "--json",
        "select count(*) from file where path like '/usr/%%'",
    ];
    let (mut peak_ours, mut peak_find) = (0, 0);
    let walk = compare(
        "count(*) of file LIKE '/usr/%%' vs find /usr (whole processes)",
        ("osqueryi count(*)", || {
            peak_ours = peak_ours.max(run_measuring_rss(&osqueryi, &count));
        }),
        ("find /usr", || {
            peak_find = peak_find.max(run_measuring_rss(&find, &["/usr"]));
        }),
        1,
        iters,
        f64::INFINITY,
    );
    walk.report();
    println!(
        "  peak RSS: osqueryi {:.1} MB (goal ≤ 50 MB), find {:.1} MB",
        peak_ours as f64 / 1024.0,
        peak_find as f64 / 1024.0
    );

    let limit = [
        "--json",
        "select path from file where path like '/usr/%%' limit 1",
    ];
    let mut peak_limit = 0;
    let first = compare(
        "LIMIT 1 of file LIKE '/usr/%%' vs osqueryi \"select 1\" (whole processes)",
        ("osqueryi ... LIMIT 1", || {
            peak_limit = peak_limit.max(run_measuring_rss(&osqueryi, &limit));
        }),
        ("osqueryi select 1", || {
            run_measuring_rss(&osqueryi, &["--json", "select 1"]);
        }),
        3,
        iters * 5,
        f64::INFINITY,
    );
    first.report();
    let (ours, _) = stats(&first.ours);
    let (base, _) = stats(&first.base);
    println!(
        "  LIMIT 1: {ours:.2} ms wall, {:.2} ms beyond start-up; peak RSS {:.1} MB",
        ours - base,
        peak_limit as f64 / 1024.0
    );
    if let Ok(path) = write_csv("walk", &[walk, first]) {
        println!("\nraw samples: {}", path.display());
    }
}
