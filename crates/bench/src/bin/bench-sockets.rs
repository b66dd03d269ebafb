//! `process_open_sockets` against `ss -tanp`, `listening_ports` against `ss -tlnp`, at
//! about 200 sockets and at 10,000.
//!
//! Usage: `cargo run --release -p oxquery-bench --bin bench-sockets -- [--procs 1000]
//! [--conns 100] [--many 5000] [--iters 30]`. The harness spawns idle processes (whose
//! descriptors both sides must walk to find socket owners) and opens loopback TCP
//! connections to itself so there is something to list: `--conns` connections (two
//! sockets each) for the small case, then more up to `--many` connections for the large
//! one (its descriptor limit is raised for them, within the hard limit). Each query runs
//! in-process against `ss` as a subprocess; `osqueryi` as a subprocess against `ss` when
//! it is built (`cargo build --release -p oxquery`). The sock_diag reader is also timed
//! against the text tables it replaced, on the same sockets.

use oxquery_bench::{
    Comparison, Sleepers, arg, compare, engine, find_program, query_rows, run_quiet, write_csv,
};
use oxquery_engine::Engine;
use oxquery_sys::net::{SocketScan, Source};
use oxquery_sys::proc;
use std::hint::black_box;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;

/// Connections to `to` until `open` holds `conns` of them (two sockets each).
fn connect(listener: &TcpListener, to: SocketAddr, open: &mut Vec<TcpStream>, conns: usize) {
    while open.len() < conns * 2 {
        let c = TcpStream::connect(to).unwrap();
        let (s, _) = listener.accept().unwrap();
        open.push(c);
        open.push(s);
    }
}

/// Raises the soft descriptor limit to `want` (bounded by the hard limit); returns the
/// limit now in force.
fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid rlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    if lim.rlim_cur < want {
        let raised = libc::rlimit {
            rlim_cur: want.min(lim.rlim_max),
            rlim_max: lim.rlim_max,
        };
        // SAFETY: raised is a valid rlimit within the hard limit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    lim.rlim_cur
}

/// The pairs timed at one socket count.
fn case(
    engine: &Engine,
    ss: &Path,
    sockets: usize,
    iters: usize,
    pos_goal: f64,
) -> Vec<Comparison> {
    let pos = "SELECT * FROM process_open_sockets";
    let lp = "SELECT * FROM listening_ports";
    println!(
        "{sockets} sockets: process_open_sockets has {} rows, listening_ports {}",
        query_rows(engine, pos),
        query_rows(engine, lp)
    );
    let mut pids = Vec::new();
    proc::list_pids(&mut pids).unwrap();
    let mut results = vec![
        compare(
            &format!("{sockets} sockets: {pos} (in-process) vs ss -tanp (subprocess)"),
            ("engine.query, in-process", || {
                black_box(query_rows(engine, pos));
            }),
            ("ss -tanp, output discarded", || run_quiet(ss, &["-tanp"])),
            3,
            iters,
            pos_goal,
        ),
        compare(
            &format!("{sockets} sockets: {lp} (in-process) vs ss -tlnp (subprocess)"),
            ("engine.query, in-process", || {
                black_box(query_rows(engine, lp));
            }),
            ("ss -tlnp, output discarded", || run_quiet(ss, &["-tlnp"])),
            3,
            iters,
            1.0,
        ),
        // What sock_diag bought: the same scan from the text tables (every process, every
        // namespace, both in-process).
        compare(
            &format!("{sockets} sockets: socket scan, sock_diag vs text tables"),
            ("SocketScan from sock_diag", || {
                black_box(SocketScan::scan_from(&pids, true, Source::Diag));
            }),
            ("SocketScan from /proc/<pid>/net/*", || {
                black_box(SocketScan::scan_from(&pids, true, Source::Text));
            }),
            2,
            iters,
            1.0,
        ),
    ];
    if let Some(osqueryi) = find_program("osqueryi") {
        let sql = "select * from process_open_sockets";
        results.push(compare(
            &format!("{sockets} sockets: whole commands: osqueryi --json vs ss -tanp"),
            (&format!("{} --json \"{sql}\"", osqueryi.display()), || {
                run_quiet(&osqueryi, &["--json", sql])
            }),
            ("ss -tanp", || run_quiet(ss, &["-tanp"])),
            2,
            iters,
            pos_goal,
        ));
    }
    results
}

fn main() {
    let procs = arg("--procs", 1000);
    let conns = arg("--conns", 100);
    let many = arg("--many", 5000);
    let iters = arg("--iters", 30);
    let Some(ss) = find_program("ss") else {
        println!("ss not found: nothing to compare against");
        return;
    };
    // Two descriptors per connection, plus the harness's own and some slack.
    let limit = raise_nofile((many.max(conns) * 2 + 256) as u64) as usize;
    let many = many.min(limit.saturating_sub(256) / 2);
    let sleepers = Sleepers::spawn(procs);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let to = listener.local_addr().unwrap();
    let mut open = Vec::with_capacity(many.max(conns) * 2);
    connect(&listener, to, &mut open, conns);
    let engine = engine();
    println!(
        "{} sleepers; descriptor limit {limit}; {iters} iterations each\n",
        sleepers.len()
    );

    let mut results = case(&engine, &ss, open.len(), iters, 1.0);
    connect(&listener, to, &mut open, many);
    results.extend(case(&engine, &ss, open.len(), iters, 0.8));
    println!();
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
