//! Time to diff a 10,000-row result against the previous run's, beside merely cloning
//! and sorting the same rows (the least any comparison-based approach would do).
//!
//! Usage: `cargo run --release -p oxquery-bench --bin bench-diff -- [--rows 10000] [--iters 30]`.
//!
//! Rows look like a `processes` result (eight typed columns). Two cases: unchanged, and
//! 1 % of rows changed. Each is measured twice: the multiset diff alone
//! (`results::diff`), and the whole `results::compute` step the scheduler runs
//! (escaping, reading the stored previous rows as JSON from an in-memory store, the diff,
//! encoding the new rows), both against the same baseline.

use oxquery_bench::{arg, compare, write_csv};
use oxquery_daemon::item::Row;
use oxquery_daemon::results::{Run, ScheduledQuery, compute, diff};
use oxquery_store::Store;
use oxquery_table::Value;
use std::hint::black_box;

fn process_row(i: usize, generation: u64) -> Row {
    let mut r = Row::new();
    r.insert("pid".into(), Value::Integer(i as i64 + 1));
    r.insert("name".into(), Value::Text(format!("worker-{}", i % 97)));
    r.insert(
        "path".into(),
        Value::Text(format!("/usr/lib/service/bin/worker-{}", i % 97)),
    );
    r.insert(
        "cmdline".into(),
        Value::Text(format!(
            "worker-{} --config /etc/service/{i}.conf --verbose",
            i % 97
        )),
    );
    r.insert("uid".into(), Value::Integer((i % 5 * 1000) as i64));
    r.insert("state".into(), Value::Text("S".into()));
    r.insert(
        "resident_size".into(),
        Value::Integer((4096 * (i + 1)) as i64 + generation as i64),
    );
    r.insert(
        "start_time".into(),
        Value::Integer(1_700_000_000 + i as i64),
    );
    r
}

/// The baseline: an owned copy of the rows, sorted by (pid, name).
fn clone_and_sort(rows: &[Row]) -> Vec<Row> {
    let mut v = rows.to_vec();
    let key = |r: &Row| match (&r["pid"], &r["name"]) {
        (Value::Integer(p), Value::Text(n)) => (*p, n.clone()),
        _ => (0, String::new()),
    };
    v.sort_by_cached_key(key);
    v
}

fn main() {
    let n = arg("--rows", 10_000);
    let iters = arg("--iters", 30);
    let previous: Vec<Row> = (0..n).map(|i| process_row(i, 0)).collect();
    let unchanged = previous.clone();
    // 1 % of rows change one column: each shows up once removed and once added.
    let changed: Vec<Row> = (0..n)
        .map(|i| process_row(i, u64::from(i % 100 == 0)))
        .collect();
    let d = diff(&previous, &changed);
    assert_eq!((d.added.len(), d.removed.len()), (n / 100, n / 100));
    assert!(diff(&previous, &unchanged).is_empty());

    // A store holding `previous` as the last results of "q".
    let mut store = Store::in_memory().expect("store");
    let query = ScheduledQuery::new("q", "SELECT * FROM processes");
    compute(&store, &query, previous.clone(), Run::default())
        .expect("first run")
        .commit(&mut store)
        .expect("commit");
    let compute_run = |rows: &[Row]| {
        let outcome = compute(&store, &query, rows.to_vec(), Run::default()).expect("compute");
        black_box(outcome);
    };
    println!("{n} rows of 8 columns; {iters} alternating iterations\n");

    let base_label = "clone + sort the current rows";
    let mut results = Vec::new();
    for (case, current) in [("unchanged", &unchanged), ("1 % changed", &changed)] {
        results.push(compare(
            &format!("results::diff, {case}"),
            ("diff(previous, current)", || {
                black_box(diff(&previous, current));
            }),
            (base_label, || {
                black_box(clone_and_sort(current));
            }),
            3,
            iters,
            2.0,
        ));
        results.push(compare(
            &format!("results::compute (escape, load stored JSON, diff, encode), {case}"),
            ("compute(store, query, current)", || compute_run(current)),
            (base_label, || {
                black_box(clone_and_sort(current));
            }),
            3,
            iters,
            10.0,
        ));
    }
    for r in &results {
        r.report();
        println!();
    }
    match write_csv("diff", &results) {
        Ok(path) => println!("raw samples: {}", path.display()),
        Err(e) => println!("raw samples not written: {e}"),
    }
}
