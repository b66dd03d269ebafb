//! A fleet on one machine (the TLS issue, §6): N `osqueryd` processes, each its own host
//! (its own database, `--specified_identifier`), against one fleet server speaking
//! osquery's TLS API on loopback (`oxquery_remote::testing::TestServer`). Every host
//! enrolls, takes its schedule from the config endpoint, logs results and status lines,
//! and answers one live query. Reports what the server saw (hosts enrolled, requests per
//! endpoint and per second, result lines, live answers) and each daemon's CPU and peak
//! RSS.
//!
//! Usage: `cargo build --release -p oxquery && cargo run --release -p oxquery-bench --bin
//! bench-fleet -- [--hosts 100] [--seconds 60]`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxquery_bench::{arg, cpu_ticks, find_program, spawn_osqueryd, status_kib};
use oxquery_remote::testing::{Request, Response, TestServer};
use serde_json::json;

fn main() {
    let hosts = arg("--hosts", 100);
    let seconds = arg("--seconds", 60) as u64;
    let Some(osqueryd) = find_program("osqueryd") else {
        eprintln!("build osqueryd first: cargo build --release -p oxquery");
        std::process::exit(2);
    };
    // Hosts that received the live query already.
    let asked: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let asked_by_server = Arc::clone(&asked);
    let server = TestServer::start(move |r: &Request| {
        let body = r.json();
        let key = body["node_key"].as_str().unwrap_or_default().to_owned();
        match r.path.as_str() {
            "/enroll" => match body["host_identifier"].as_str() {
                Some(host) if body["enroll_secret"] == "fleet" => {
                    Response::Json(json!({"node_key": format!("key-{host}")}))
                }
                _ => Response::Json(json!({"error": "bad secret"})),
            },
            _ if !key.starts_with("key-") => Response::Json(json!({"node_invalid": true})),
            "/config" => Response::Json(json!({
                "schedule": {
                    "uptime": {"query": "select total_seconds from uptime", "interval": 10},
                    "listening": {"query": "select pid, port from listening_ports", "interval": 30}
                }
            })),
            "/read" => {
                if asked_by_server.lock().unwrap().insert(key) {
                    Response::Json(
                        json!({"queries": {"live": "select count(*) as n from processes"}}),
                    )
                } else {
                    Response::Json(json!({"queries": {}}))
                }
            }
            _ => Response::Json(json!({})),
        }
    });

    let root = tempfile_dir();
    let secret = root.join("secret");
    std::fs::write(&secret, "fleet").expect("secret");
    let started = Instant::now();
    let mut daemons = Vec::with_capacity(hosts);
    for i in 0..hosts {
        let dir = root.join(format!("host-{i:03}"));
        std::fs::create_dir_all(&dir).expect("host dir");
        let args = vec![
            "--disable_watchdog".to_owned(),
            "--host_identifier=specified".to_owned(),
            format!("--specified_identifier=host-{i:03}"),
            format!("--tls_hostname={}", server.hostname()),
            format!("--tls_server_certs={}", server.ca_path().display()),
            format!("--enroll_secret_path={}", secret.display()),
            "--enroll_tls_endpoint=/enroll".to_owned(),
            "--config_plugin=tls".to_owned(),
            "--config_tls_endpoint=/config".to_owned(),
            "--config_refresh=30".to_owned(),
            "--logger_plugin=tls".to_owned(),
            "--logger_tls_endpoint=/log".to_owned(),
            "--logger_tls_period=5".to_owned(),
            "--disable_distributed=false".to_owned(),
            "--distributed_tls_read_endpoint=/read".to_owned(),
            "--distributed_tls_write_endpoint=/write".to_owned(),
            "--distributed_interval=10".to_owned(),
        ];
        daemons.push(spawn_osqueryd(&osqueryd, &dir, &args));
    }
    let ticks0: Vec<u64> = daemons
        .iter()
        .map(|d| cpu_ticks(d.id()).unwrap_or(0))
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    let elapsed = started.elapsed().as_secs_f64();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut cpu = Vec::with_capacity(hosts);
    let mut rss = Vec::with_capacity(hosts);
    for (d, t0) in daemons.iter().zip(&ticks0) {
        let ticks = cpu_ticks(d.id()).unwrap_or(*t0).saturating_sub(*t0);
        cpu.push(ticks as f64 / hz / elapsed * 100.0);
        rss.push(status_kib(d.id(), "VmHWM:").unwrap_or(0) as f64 / 1024.0);
    }
    let mut running = 0;
    for d in &mut daemons {
        if matches!(d.try_wait(), Ok(None)) {
            running += 1;
        }
    }
    for d in &daemons {
        // SAFETY: signals our own child.
        unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
    }
    for mut d in daemons {
        let _ = d.wait();
    }

    let requests = server.requests();
    let mut per_endpoint: BTreeMap<String, usize> = BTreeMap::new();
    for r in &requests {
        *per_endpoint.entry(r.path.clone()).or_default() += 1;
    }
    let enrolled: BTreeSet<String> = server
        .requests_to("/enroll")
        .iter()
        .filter_map(|r| r.json()["host_identifier"].as_str().map(str::to_owned))
        .collect();
    let logs = server.requests_to("/log");
    let lines = |kind: &str| -> usize {
        logs.iter()
            .map(|r| r.json())
            .filter(|b| b["log_type"] == kind)
            .map(|b| b["data"].as_array().map_or(0, Vec::len))
            .sum()
    };
    let live_answers: BTreeSet<String> = server
        .requests_to("/write")
        .iter()
        .map(|r| r.json())
        .filter(|b| b["statuses"]["live"] == 0)
        .filter_map(|b| b["node_key"].as_str().map(str::to_owned))
        .collect();
    let (cpu_avg, cpu_max) = stats(&cpu);
    let (rss_avg, rss_max) = stats(&rss);
    println!(
        "fleet of {hosts} osqueryd on loopback for {elapsed:.0} s ({}):",
        osqueryd.display()
    );
    println!("  still running at the end     {running} of {hosts}");
    println!(
        "  hosts enrolled               {} of {hosts}",
        enrolled.len()
    );
    println!(
        "  server requests              {} ({:.1}/s)",
        requests.len(),
        requests.len() as f64 / elapsed
    );
    for (endpoint, n) in &per_endpoint {
        println!("    {endpoint:<10} {n}");
    }
    println!("  result lines received        {}", lines("result"));
    println!("  status lines received        {}", lines("status"));
    println!(
        "  live query answered by       {} of {hosts}",
        live_answers.len()
    );
    println!("  daemon CPU (% of one core)   avg {cpu_avg:.2}  max {cpu_max:.2}");
    println!("  daemon RSS peak (MB)         avg {rss_avg:.1}  max {rss_max:.1}");
    let _ = std::fs::remove_dir_all(&root);
}

fn stats(values: &[f64]) -> (f64, f64) {
    let max = values.iter().copied().fold(0.0, f64::max);
    let avg = values.iter().sum::<f64>() / values.len().max(1) as f64;
    (avg, max)
}

/// A fresh directory for the hosts' databases and logs.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("oxquery-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    Path::new(&dir).to_owned()
}
