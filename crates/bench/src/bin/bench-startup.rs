//! One-shot `osqueryi --json "select * from uptime"`: wall time and peak RSS of the whole
//! process, beside `cat /proc/uptime` measured in the same run as the floor of what any
//! process that reads that file costs. Goals: ≤ 5 ms wall, ≤ 8 MB peak RSS.
//!
//! Usage: `cargo build --release -p oxquery && cargo run --release -p oxquery-bench --bin
//! bench-startup -- [--iters 50]`.

use oxquery_bench::{arg, compare, find_program, run_measuring_rss, write_csv};

fn main() {
    let iters = arg("--iters", 50);
    let Some(osqueryi) = find_program("osqueryi") else {
        eprintln!("build osqueryi first: cargo build --release -p oxquery");
        std::process::exit(2);
    };
    let cat = find_program("cat").expect("cat on PATH");
    let query = ["--json", "select * from uptime"];
    let mut peak_ours = 0;
    let mut peak_cat = 0;
    let result = compare(
        "osqueryi --json \"select * from uptime\" vs cat /proc/uptime (whole processes)",
        ("osqueryi one-shot", || {
            peak_ours = peak_ours.max(run_measuring_rss(&osqueryi, &query));
        }),
        ("cat /proc/uptime", || {
            peak_cat = peak_cat.max(run_measuring_rss(&cat, &["/proc/uptime"]));
        }),
        5,
        iters,
        f64::INFINITY,
    );
    let (mean, sd) = oxquery_bench::stats(&result.ours);
    let (cat_mean, _) = oxquery_bench::stats(&result.base);
    println!("{} ({})", result.name, osqueryi.display());
    println!(
        "  osqueryi wall      {mean:7.2} ms ± {sd:5.2}   goal ≤ 5 ms   {}",
        verdict(mean <= 5.0)
    );
    println!(
        "  osqueryi peak RSS  {:7.2} MB           goal ≤ 8 MB   {}",
        peak_ours as f64 / 1024.0,
        verdict(peak_ours as f64 / 1024.0 <= 8.0)
    );
    println!(
        "  cat wall           {cat_mean:7.2} ms,  peak RSS {:.2} MB",
        peak_cat as f64 / 1024.0
    );
    println!(
        "  ratio to cat       {:7.2}×  (n = {iters})",
        result.ratio()
    );
    if let Ok(path) = write_csv("startup", &[result]) {
        println!("\nraw samples: {}", path.display());
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "MET" } else { "MISSED" }
}
