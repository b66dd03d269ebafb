//! The round trip of `query("select 1")` through an extension manager socket, with our
//! Thrift client, against a raw unix-socket echo of a message of the same size measured in
//! the same run (what the kernel and a thread hand-off cost alone). Two shapes:
//! calls on one open connection (what an SDK client does), and the shell's `--connect`
//! statement (connect, `query`, `getQueryColumns`) against a connect plus one echo.
//! Goal from issue 14: the round trip within 1 ms; the ratio shows our protocol's share.
//!
//! Usage: `cargo run --release -p oxquery-bench --bin bench-connect -- --socket PATH
//! [--iters 10000]`. Without `--socket` it measures against the stand-in manager of
//! `oxquery_extensions::testing` (the client and protocol alone, no SQL).

use oxquery_bench::{Comparison, arg, compare, text_arg, write_csv};
use oxquery_extensions::Client;
use oxquery_extensions::generated::TExtensionManagerSyncClient;
use oxquery_extensions::testing::{Answer, TestManager};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bytes of a `query("select 1")` call on the wire: a strict message header (4 + 4 + 5
/// for the name + 4), the string field (1 + 2 + 4 + 8) and the stop byte.
const CALL_BYTES: usize = 4 + 4 + 5 + 4 + 1 + 2 + 4 + 8 + 1;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A thread echoing every message it receives on `path`, one connection at a time.
fn start_echo(path: &Path) {
    let listener = UnixListener::bind(path).expect("bind the echo socket");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; CALL_BYTES];
                while stream.read_exact(&mut buf).is_ok() {
                    if stream.write_all(&buf).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn echo_once(stream: &mut UnixStream) {
    let mut buf = [7u8; CALL_BYTES];
    stream.write_all(&buf).expect("echo write");
    stream.read_exact(&mut buf).expect("echo read");
}

fn query_once(client: &mut Client) {
    let answer = client
        .calls()
        .query("select 1".to_owned())
        .expect("query through the socket");
    let code = answer.status.and_then(|s| s.code).unwrap_or(0);
    assert_eq!(code, 0, "select 1 failed");
    assert_eq!(answer.response.map(|rows| rows.len()), Some(1));
}

/// The `p`-th percentile of `samples`, in microseconds.
fn percentile_us(samples: &[Duration], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

fn report(c: &Comparison) {
    c.report();
    for (label, samples) in [("ours", &c.ours), ("baseline", &c.base)] {
        println!(
            "  {label:<9} median {:8.1} µs  p99 {:8.1} µs",
            percentile_us(samples, 0.5),
            percentile_us(samples, 0.99)
        );
    }
    let median = percentile_us(&c.ours, 0.5);
    println!(
        "  goal: round trip ≤ 1000 µs: {} (median {median:.1} µs)",
        if median <= 1000.0 { "MET" } else { "MISSED" }
    );
}

fn main() {
    let iters = arg("--iters", 10_000);
    let dir = std::env::temp_dir().join(format!("bench-connect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let given = text_arg("--socket", "");
    // Without a socket, the stand-in manager answers `select 1` itself.
    let _stand_in;
    let socket: PathBuf = if given.is_empty() {
        let path = dir.join("manager.em");
        _stand_in = TestManager::start(&path, |_| Answer::rows(&[("1", "INTEGER")], &[&["1"]]))
            .expect("start the stand-in manager");
        println!("no --socket: measuring against the stand-in manager (no SQL engine)\n");
        path
    } else {
        PathBuf::from(given)
    };
    let echo_path = dir.join("echo.sock");
    start_echo(&echo_path);

    let mut client = Client::connect(&socket, TIMEOUT).expect("connect to the manager socket");
    let mut echo = UnixStream::connect(&echo_path).expect("connect to the echo socket");
    let mut results = Vec::new();
    let open = compare(
        "query(\"select 1\") on an open connection vs a raw unix-socket echo",
        ("Client query", || query_once(&mut client)),
        ("echo", || echo_once(&mut echo)),
        iters / 10,
        iters,
        f64::INFINITY,
    );
    report(&open);
    results.push(open);

    let statement_iters = (iters / 10).max(10);
    let shell = compare(
        "a --connect statement (connect, query, getQueryColumns) vs connect + echo",
        ("shell statement", || {
            let mut client = Client::connect(&socket, TIMEOUT).expect("connect");
            query_once(&mut client);
            client
                .calls()
                .get_query_columns("select 1".to_owned())
                .expect("getQueryColumns");
        }),
        ("connect + echo", || {
            let mut stream = UnixStream::connect(&echo_path).expect("connect");
            echo_once(&mut stream);
        }),
        statement_iters / 10,
        statement_iters,
        f64::INFINITY,
    );
    println!();
    report(&shell);
    results.push(shell);
    let _ = std::fs::remove_dir_all(&dir);
    if let Ok(path) = write_csv("connect", &results) {
        println!("\nraw samples: {}", path.display());
    }
}
