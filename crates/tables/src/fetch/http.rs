//! The bounded, cancellable HTTP fetch the tables that talk to a server share (`curl`,
//! `prometheus_metrics`, the cloud metadata tables): requests run on a thread the query
//! can abandon, every answer has a time and size bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use oxquery_table::QueryContext;

/// Runs `work` (the requests) on a thread and waits for it while watching the query:
/// when the query stops, the wait ends at once (`None`), `work` is told through its flag
/// and the thread ends by itself within the requests' timeout.
pub fn cancellable<T: Send + 'static>(
    ctx: &QueryContext,
    work: impl FnOnce(&AtomicBool) -> T + Send + 'static,
) -> Option<T> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let flag = Arc::clone(&stop);
    let spawned = std::thread::Builder::new()
        .name("table-fetch".to_owned())
        .spawn(move || {
            let _ = tx.send(work(&flag));
        });
    if let Err(e) = spawned {
        log::warn!("cannot start a thread for the table's requests: {e}");
        return None;
    }
    loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(answer) => return Some(answer),
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if ctx.is_stopped() {
                    stop.store(true, Ordering::SeqCst);
                    log::info!("requests abandoned: the query stopped");
                    return None;
                }
            }
        }
    }
}

/// The bounds of one fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// To connect (name resolution included).
    pub connect: Duration,
    /// For the whole exchange: connect, send, and the answer to its last byte.
    pub total: Duration,
    /// The most bytes of body kept; a longer answer is an error.
    pub max_body: u64,
}

/// A client for URLs a query or the config names: no proxy from the environment (only
/// the named server is contacted), no redirects unless asked, statuses as answers.
pub fn agent(bounds: Bounds, follow_redirects: bool) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(bounds.connect))
        .timeout_global(Some(bounds.total))
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(if follow_redirects { 10 } else { 0 })
        .build()
        .new_agent()
}

/// One answer: its status, body and how long the exchange took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    pub round_trip: Duration,
}

/// `GET url` with `headers`, bounded by the agent's timeouts and `max_body`. A body cut
/// short (the server closed early, a broken chunked encoding), a silent server or a body
/// over the limit is an `Err` saying which.
pub fn get(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, &str)],
    max_body: u64,
) -> Result<Answer, String> {
    let mut request = agent.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let start = Instant::now();
    let mut answer = request.call().map_err(|e| e.to_string())?;
    let status = answer.status().as_u16();
    let body = oxquery_remote::client::read_body(&mut answer, max_body)?;
    Ok(Answer {
        status,
        body,
        round_trip: start.elapsed(),
    })
}
