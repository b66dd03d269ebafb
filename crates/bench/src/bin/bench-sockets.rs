//! `process_open_sockets` against `ss -tanp`.
//!
//! Usage: `cargo run --release -p oxquery-bench --bin bench-sockets -- [--procs 1000]
//! [--conns 100] [--iters 30]`. The harness spawns idle processes (whose descriptors
//! both sides must walk to find socket owners) and opens TCP connections to itself so
//! there is something to list. Two pairs are timed: the query in-process against `ss`
//! as a subprocess, and `osqueryi` as a subprocess against `ss`.

use oxquery_bench::{
    Sleepers, arg, compare, engine, find_program, query_rows, run_quiet, write_csv,
};
use std::hint::black_box;
use std::net::{TcpListener, TcpStream};

fn main() {
    let procs = arg("--procs", 1000);
    let conns = arg("--conns", 100);
    let iters = arg("--iters", 30);
    let Some(ss) = find_program("ss") else {
        println!("ss not found: nothing to compare against");
        return;
    };
    let sleepers = Sleepers::spawn(procs);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut open = Vec::with_capacity(conns * 2);
    for _ in 0..conns {
        let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (s, _) = listener.accept().unwrap();
        open.push(c);
        open.push(s);
    }
    let engine = engine();
    let rows = query_rows(&engine, "SELECT * FROM process_open_sockets");
    println!(
        "{} sleepers, {} TCP connections; process_open_sockets has {rows} rows; {iters} iterations each\n",
        sleepers.len(),
        conns
    );

    let mut results = vec![compare(
        "SELECT * FROM process_open_sockets (in-process) vs ss -tanp (subprocess)",
        ("engine.query, in-process", || {
            black_box(query_rows(&engine, "SELECT * FROM process_open_sockets"));
        }),
        ("ss -tanp, output discarded", || run_quiet(&ss, &["-tanp"])),
        3,
        iters,
        1.1,
    )];
    if let Some(osqueryi) = find_program("osqueryi") {
        let sql = "select * from process_open_sockets";
        results.push(compare(
            "whole commands: osqueryi --json vs ss -tanp",
            (&format!("{} --json \"{sql}\"", osqueryi.display()), || {
                run_quiet(&osqueryi, &["--json", sql])
            }),
            ("ss -tanp", || run_quiet(&ss, &["-tanp"])),
            2,
            iters,
            1.1,
        ));
    }
    for r in &results {
        r.report();
    }
    match write_csv("sockets", &results) {
        Ok(path) => println!("\nraw samples: {}", path.display()),
        Err(e) => println!("\nraw samples not written: {e}"),
    }
    drop(open);
    drop(sleepers);
}
