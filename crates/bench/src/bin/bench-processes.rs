//! `processes` against raw reads of the same /proc files, and `osqueryi` against `ps`.
//!
//! Usage: `cargo run --release -p oxquery-bench --bin bench-processes -- [--procs 1000]
//! [--iters 30]`. Build `osqueryi` first (`cargo build --release -p oxquery`) for the
//! whole-command comparison; it is skipped otherwise.

use oxquery_bench::{
    Sleepers, arg, compare, engine, find_program, query_rows, run_quiet, write_csv,
};
use std::fs;
use std::hint::black_box;
use std::path::PathBuf;

/// What a careful program using only std would do for `SELECT *`: list /proc and read
/// each process's stat, status, cmdline, io and cgroup files and its exe/cwd/root links.
fn raw_full() -> usize {
    let mut bytes = 0;
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let dir = PathBuf::from("/proc").join(pid);
        for file in ["stat", "status", "cmdline", "io", "cgroup"] {
            bytes += fs::read(dir.join(file)).map_or(0, |b| b.len());
        }
        for link in ["exe", "cwd", "root"] {
            bytes += fs::read_link(dir.join(link)).map_or(0, |p| p.as_os_str().len());
        }
    }
    bytes
}

/// Only /proc/*/stat, the data of `SELECT pid, name`.
fn raw_stat() -> usize {
    let mut bytes = 0;
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        bytes += fs::read(format!("/proc/{pid}/stat")).map_or(0, |b| b.len());
    }
    bytes
}

fn main() {
    let procs = arg("--procs", 1000);
    let iters = arg("--iters", 30);
    let sleepers = Sleepers::spawn(procs);
    let engine = engine();
    let rows = query_rows(&engine, "SELECT * FROM processes");
    println!(
        "{} sleepers spawned; processes has {rows} rows; {iters} iterations each\n",
        sleepers.len()
    );

    let mut results = vec![
        compare(
            "SELECT * FROM processes",
            ("engine.query, in-process", || {
                black_box(query_rows(&engine, "SELECT * FROM processes"));
            }),
            (
                "std::fs reads of stat,status,cmdline,io,cgroup + 3 readlinks",
                || {
                    black_box(raw_full());
                },
            ),
            3,
            iters,
            1.2,
        ),
        compare(
            "SELECT pid, name FROM processes",
            ("engine.query, in-process", || {
                black_box(query_rows(&engine, "SELECT pid, name FROM processes"));
            }),
            ("std::fs read of /proc/*/stat", || {
                black_box(raw_stat());
            }),
            3,
            iters,
            1.3,
        ),
    ];
    match (find_program("osqueryi"), find_program("ps")) {
        (Some(osqueryi), Some(ps)) => {
            let sql = "select pid, name, resident_size from processes";
            results.push(compare(
                "whole command: pid, name, resident size of every process",
                (&format!("{} --json \"{sql}\"", osqueryi.display()), || {
                    run_quiet(&osqueryi, &["--json", sql])
                }),
                ("ps -eo pid,comm,rss", || {
                    run_quiet(&ps, &["-eo", "pid,comm,rss"])
                }),
                2,
                iters,
                1.0,
            ));
        }
        (o, p) => println!(
            "whole-command comparison skipped: osqueryi {o:?}, ps {p:?} (build with `cargo build --release -p oxquery`)\n"
        ),
    }
    for r in &results {
        r.report();
    }
    match write_csv("processes", &results) {
        Ok(path) => println!("\nraw samples: {}", path.display()),
        Err(e) => println!("\nraw samples not written: {e}"),
    }
    drop(sleepers);
}
