//! SHA-256 throughput of the `hash` table against coreutils `sha256sum`.
//!
//! Usage: `cargo run --release -p oxquery-bench --bin bench-hash -- [--mib 256] [--iters 6]`.
//!
//! Writes a pseudo-random file of `--mib` MiB into a fresh temporary directory and reads
//! it once, so both sides hash from the page cache. Then, alternating: one in-process
//! `SELECT sha256 FROM hash WHERE path = '<file>'` through the engine, and one
//! `sha256sum <file>` subprocess. The digests must agree. Throughput is reported in
//! MB/s (10^6 bytes per second); the goal is ours ≥ 0.9 × sha256sum.

use oxquery_bench::{arg, compare, engine, stats, write_csv};
use oxquery_table::Value;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A directory removed on drop, also when the benchmark panics.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("oxquery-bench-hash-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Incompressible content generated quickly (xorshift), so setup stays short.
fn write_pseudo_random(path: &Path, bytes: usize) {
    let mut file = File::create(path).expect("create bench file");
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut left = bytes;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes());
        }
        let n = left.min(block.len());
        file.write_all(&block[..n]).expect("write bench file");
        left -= n;
    }
}

/// Reads the file once so every timed run hashes from the page cache.
fn warm(path: &Path) {
    let mut file = File::open(path).expect("open bench file");
    let mut buf = vec![0u8; 1 << 20];
    while file.read(&mut buf).expect("read bench file") > 0 {}
}

fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum failed");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn main() {
    let mib = arg("--mib", 256);
    let iters = arg("--iters", 6);
    let bytes = mib * 1024 * 1024;

    let tmp = TempDir::new();
    let path = tmp.0.join("bench.bin");
    write_pseudo_random(&path, bytes);
    warm(&path);

    // osquery's default --read_max (50 MiB) would refuse this file; lift it as the flag can.
    // The digest cache would answer every run after the first: this measures digesting.
    let engine = engine();
    engine.set_settings(oxquery_table::TableSettings {
        read_max: u64::MAX,
        disable_hash_cache: true,
        ..oxquery_table::TableSettings::DEFAULT
    });
    let sql = format!(
        "SELECT sha256 FROM hash WHERE path = '{}'",
        path.to_str().expect("UTF-8 temp path")
    );
    let ours = || match engine.query(&sql).expect("query runs").rows.as_slice() {
        [row] => match &row[0] {
            Value::Text(d) => d.clone(),
            other => panic!("no digest: {other:?}"),
        },
        rows => panic!("expected one row, got {}", rows.len()),
    };
    let expected = sha256sum(&path);
    assert_eq!(ours(), expected, "hash table and sha256sum disagree");
    println!("{mib} MiB file, sha256 {expected}; {iters} alternating iterations\n");

    // Time ratio goal: 0.9× the throughput is 1/0.9 the time.
    let result = compare(
        &format!("sha256 of a {mib} MiB page-cached file"),
        (&sql, || assert_eq!(ours(), expected)),
        ("sha256sum <file> (subprocess)", || {
            assert_eq!(sha256sum(&path), expected)
        }),
        1,
        iters,
        1.0 / 0.9,
    );
    result.report();

    let rate = |ms: f64| bytes as f64 / (ms / 1e3) / 1e6;
    let (ours_ms, _) = stats(&result.ours);
    let (base_ms, _) = stats(&result.base);
    println!("\nper iteration (MB/s): ours / sha256sum");
    for (o, b) in result.ours.iter().zip(&result.base) {
        let (o, b) = (rate(o.as_secs_f64() * 1e3), rate(b.as_secs_f64() * 1e3));
        println!("  {o:8.1} / {b:8.1}  ratio {:.3}", o / b);
    }
    let (o, b) = (rate(ours_ms), rate(base_ms));
    println!(
        "throughput (from mean times): hash table {o:.1} MB/s, sha256sum {b:.1} MB/s, \
         ratio {:.3} (goal ≥ 0.90) {}",
        o / b,
        if o / b >= 0.9 { "MET" } else { "MISSED" }
    );
    match write_csv("hash", &[result]) {
        Ok(path) => println!("\nraw samples: {}", path.display()),
        Err(e) => println!("\nraw samples not written: {e}"),
    }
}
