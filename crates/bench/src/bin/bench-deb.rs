//! `deb_packages` against `dpkg-query -W` printing the same four fields (name, version,
//! architecture, status), measured in the same run. The Tables II issue asks for a table
//! that is faster than `dpkg-query` and at most 0.5× its time in the harness, where the
//! table's query runs in process (one file parsed, no subprocess: what the daemon pays
//! per scheduled run). The whole `osqueryi --json` command, start-up included, is
//! compared too, with the goal of beating `dpkg-query`.
//!
//! Usage: `cargo build --release -p oxquery -p oxquery-bench && cargo run --release -p
//! oxquery-bench --bin bench-deb -- [--iters 50]`.

use oxquery_bench::{arg, compare, engine, find_program, query_rows, run_quiet, write_csv};
use std::hint::black_box;
use std::process::Command;

const SQL: &str = "select name, version, arch, status from deb_packages";
const FORMAT: &str = "${Package} ${Version} ${Architecture} ${Status}\n";

fn main() {
    let iters = arg("--iters", 50);
    let Some(dpkg_query) = find_program("dpkg-query") else {
        eprintln!("dpkg-query not found: this benchmark needs a dpkg system");
        std::process::exit(2);
    };
    let listed = Command::new(&dpkg_query)
        .args(["-W", "-f", FORMAT])
        .output()
        .expect("dpkg-query runs");
    let theirs = String::from_utf8_lossy(&listed.stdout).lines().count();
    let engine = engine();
    let ours = query_rows(&engine, SQL);
    println!("deb_packages: {ours} rows; dpkg-query -W: {theirs} lines; {iters} iterations each\n");
    assert_eq!(
        ours, theirs,
        "deb_packages and dpkg-query disagree on the count"
    );

    let dpkg_args = ["-W", "-f", FORMAT];
    let mut results = vec![compare(
        "in-process query vs the dpkg-query command",
        ("engine.query, in-process", || {
            black_box(query_rows(&engine, SQL));
        }),
        (
            "dpkg-query -W -f '${Package} ${Version} ${Architecture} ${Status}\\n'",
            || run_quiet(&dpkg_query, &dpkg_args),
        ),
        3,
        iters,
        0.5,
    )];
    match find_program("osqueryi") {
        Some(osqueryi) => results.push(compare(
            "whole command: name, version, arch, status of every package",
            (&format!("{} --json \"{SQL}\"", osqueryi.display()), || {
                run_quiet(&osqueryi, &["--json", SQL])
            }),
            (
                "dpkg-query -W -f '${Package} ${Version} ${Architecture} ${Status}\\n'",
                || run_quiet(&dpkg_query, &dpkg_args),
            ),
            3,
            iters,
            1.0,
        )),
        None => println!(
            "whole-command comparison skipped: no osqueryi (build with `cargo build --release -p oxquery`)\n"
        ),
    }
    for r in &results {
        r.report();
    }
    match write_csv("deb", &results) {
        Ok(path) => println!("\nraw samples: {}", path.display()),
        Err(e) => println!("\nraw samples not written: {e}"),
    }
}
