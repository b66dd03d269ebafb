//! Many statements through osqueryi: `--query_file` against the same file on stdin, in
//! the same run. Stdin was always read one statement at a time; `--query_file` used to
//! hand SQLite the whole text, which copies what remains at each statement (quadratic:
//! 200,000 statements took 10.3 s against 0.44 s on stdin, 2,000,000 did not finish in
//! 120 s). Goal: the two paths cost the same, ratio ≤ 1.2×, at every size.
//!
//! Usage: `cargo build --release -p oxquery && cargo run --release -p oxquery-bench --bin
//! bench-shell-input -- [--statements 200000] [--iters 5]`.

use oxquery_bench::{Comparison, arg, compare, find_program, write_csv};
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs osqueryi with `args` and `stdin`, checking it printed `want_lines` lines.
fn run(osqueryi: &Path, args: &[&str], stdin: Stdio, want_lines: usize) {
    let out = Command::new(osqueryi)
        .args(["--flagfile=/dev/null", "--list", "--header=false"])
        .args(args)
        .stdin(stdin)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", osqueryi.display()));
    assert!(out.status.success(), "{args:?}: {}", out.status);
    let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
    assert_eq!(lines, want_lines, "{args:?}: every statement gives its row");
}

fn main() {
    let statements = arg("--statements", 200_000);
    let iters = arg("--iters", 5);
    let Some(osqueryi) = find_program("osqueryi") else {
        eprintln!("build osqueryi first: cargo build --release -p oxquery");
        std::process::exit(2);
    };
    let dir = std::env::temp_dir().join(format!("bench-shell-input-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let mut results: Vec<Comparison> = Vec::new();
    // A tenth of the size too: a linear path keeps the same ratio at both sizes.
    for n in [statements / 10, statements] {
        let file = dir.join(format!("{n}.sql"));
        let sql: String = (0..n).map(|i| format!("select {i};\n")).collect();
        fs::write(&file, sql).expect("write the statements");
        let query_file = format!("--query_file={}", file.display());
        let result = compare(
            &format!("{n} statements: osqueryi --query_file vs the same file on stdin"),
            ("--query_file", || {
                run(&osqueryi, &[&query_file], Stdio::null(), n);
            }),
            ("stdin", || {
                let input = fs::File::open(&file).expect("open the statements");
                run(&osqueryi, &[], Stdio::from(input), n);
            }),
            1,
            iters,
            1.2,
        );
        result.report();
        results.push(result);
    }
    let _ = fs::remove_dir_all(&dir);
    if let Ok(path) = write_csv("shell_input", &results) {
        println!("\nraw samples: {}", path.display());
    }
}
