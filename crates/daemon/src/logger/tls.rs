//! The `tls` logger plugin: result lines POSTed to `--logger_tls_endpoint` as osquery
//! sends them (`{"node_key", "log_type": "result", "data": [<each line as JSON>]}`), at
//! most `--logger_tls_max_lines` per request, gzip-compressed with
//! `--logger_tls_compress`. A line longer than `--logger_tls_max_linesize` is dropped with
//! a warning, as osquery drops it.
//!
//! Status lines (`log_type: "status"`, osquery's JSON status shape) wait in a bounded
//! queue in memory and go every `--logger_tls_period` seconds, unless
//! `--tls_disable_status_log`; when the queue is full the oldest go, counted in a warning.
//! Unlike results they are not kept in the store: a crash loses the few seconds queued.
//!
//! Delivery of results rides on the outbox: a batch stays in the store until the server accepted
//! every request of it, so an outage loses nothing below `--buffered_log_max`, and a
//! failed batch is sent again at the next drain. The server cannot tell a repeated
//! request from a new one, so a batch interrupted by a crash after the server accepted
//! part of it is sent whole again (at-least-once, like the stdout and syslog sinks).

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxquery_remote::NodeKeys;
use serde_json::Value;

use crate::item::{Decorations, Stream};
use crate::logger::format::status_json_line;
use crate::logger::{HostIdentifier, StatusOutput, StatusRecord};
use crate::sink::Sink;

/// What the TLS logger flags say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsLoggerSettings {
    /// `--logger_tls_endpoint`.
    pub endpoint: String,
    /// `--logger_tls_max_lines` (at least 1).
    pub max_lines: usize,
    /// `--logger_tls_max_linesize` in bytes.
    pub max_linesize: usize,
    /// `--logger_tls_compress`.
    pub compress: bool,
    /// `--logger_tls_backoff_max`: the longest wait between retries of a failed batch.
    pub backoff_max: Duration,
}

pub struct TlsSink {
    keys: Arc<NodeKeys>,
    settings: TlsLoggerSettings,
    stop: Arc<AtomicBool>,
}

impl TlsSink {
    pub fn new(keys: Arc<NodeKeys>, settings: TlsLoggerSettings, stop: Arc<AtomicBool>) -> TlsSink {
        TlsSink {
            keys,
            settings,
            stop,
        }
    }

    /// The request's `data`: each line parsed as JSON (bytes that are not UTF-8 are
    /// replaced, as a JSON body must be UTF-8), oversized lines left out.
    fn data(&self, lines: &[Vec<u8>]) -> Vec<Value> {
        let mut data = Vec::with_capacity(lines.len());
        for line in lines {
            if line.len() > self.settings.max_linesize {
                log::warn!(
                    "Linesize exceeds TLS logger maximum: {} bytes (--logger_tls_max_linesize {}); the line is dropped",
                    line.len(),
                    self.settings.max_linesize
                );
                continue;
            }
            let text = String::from_utf8_lossy(line);
            match serde_json::from_str::<Value>(&text) {
                Ok(v) => data.push(v),
                // Every line the formatter makes is JSON; anything else goes as text.
                Err(_) => data.push(Value::from(text.into_owned())),
            }
        }
        data
    }
}

impl Sink for TlsSink {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn checkpoint(&mut self, _stream: Stream) -> io::Result<Option<String>> {
        Ok(None)
    }

    fn write(&mut self, _stream: Stream, lines: &[Vec<u8>]) -> io::Result<()> {
        for chunk in lines.chunks(self.settings.max_lines.max(1)) {
            let data = self.data(chunk);
            if data.is_empty() {
                continue;
            }
            let body = serde_json::json!({"log_type": "result", "data": data});
            // One attempt per drain: the outbox sends the batch again at the next one,
            // and meanwhile the logger thread stays free to stop.
            self.keys
                .post_with_key(
                    &self.settings.endpoint,
                    body,
                    self.settings.compress,
                    1,
                    &self.stop,
                )
                .map_err(io::Error::other)?;
        }
        Ok(())
    }

    fn resume(&mut self, stream: Stream, _checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()> {
        self.write(stream, lines)
    }

    fn retry_max(&self) -> Option<Duration> {
        Some(self.settings.backoff_max)
    }
}

/// The most status lines a remote logger keeps while its server is away.
pub const STATUS_QUEUE_MAX: usize = 10_000;

/// A queue of [`STATUS_QUEUE_MAX`] lines that receives the status log from now on, as
/// osquery's status JSON, for a sender thread to drain.
pub fn attach_status_queue(
    control: &crate::logger::StatusControl,
    host: HostIdentifier,
    decorations: Arc<Mutex<Decorations>>,
) -> Arc<StatusQueue> {
    let queue = StatusQueue::new(STATUS_QUEUE_MAX);
    control.add_output(Box::new(TlsStatusOutput::new(
        Arc::clone(&queue),
        host,
        decorations,
    )));
    queue
}

/// Status lines waiting for the server, at most `max` (the oldest go first).
pub struct StatusQueue {
    lines: Mutex<VecDeque<String>>,
    max: usize,
    dropped: AtomicU64,
}

impl StatusQueue {
    pub fn new(max: usize) -> Arc<StatusQueue> {
        Arc::new(StatusQueue {
            lines: Mutex::new(VecDeque::new()),
            max: max.max(1),
            dropped: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn push_back(&self, line: String) {
        let mut lines = self.lock();
        lines.push_back(line);
        while lines.len() > self.max {
            lines.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes up to `n` of the oldest lines.
    fn take(&self, n: usize) -> Vec<String> {
        let mut lines = self.lock();
        let n = n.min(lines.len());
        lines.drain(..n).collect()
    }

    /// Puts lines a failed request carried back in front, as far as room allows.
    fn put_back(&self, taken: Vec<String>) {
        let mut lines = self.lock();
        for line in taken.into_iter().rev() {
            if lines.len() >= self.max {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            lines.push_front(line);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The status log's output into a [`StatusQueue`].
pub struct TlsStatusOutput {
    queue: Arc<StatusQueue>,
    host: HostIdentifier,
    decorations: Arc<Mutex<Decorations>>,
}

impl TlsStatusOutput {
    pub fn new(
        queue: Arc<StatusQueue>,
        host: HostIdentifier,
        decorations: Arc<Mutex<Decorations>>,
    ) -> TlsStatusOutput {
        TlsStatusOutput {
            queue,
            host,
            decorations,
        }
    }
}

impl StatusOutput for TlsStatusOutput {
    fn write(&mut self, record: &StatusRecord) -> io::Result<()> {
        let unix_time = record
            .time
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let decorations = self
            .decorations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.queue.push_back(status_json_line(
            &self.host.current(),
            unix_time,
            record.severity,
            &record.file,
            record.line,
            &record.message,
            oxquery_engine::instance::VERSION,
            &decorations,
        ));
        Ok(())
    }
}

/// Sends the queued status lines every `period` until `stop`, at most `batch` per
/// `send` (the TLS logger's request, the Kinesis logger's records); lines of a failed
/// `send` go back to the queue for the next period. `name` names the thread and the
/// plugin in the drop warning.
pub fn spawn_status_sender(
    name: &'static str,
    period: Duration,
    batch: usize,
    queue: Arc<StatusQueue>,
    stop: Arc<AtomicBool>,
    mut send: impl FnMut(&[String]) -> Result<(), String> + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("{name}-status"))
        .spawn(move || {
            let mut reported = 0;
            while oxquery_remote::enroll::sleep_unless_stopped(period, &stop) {
                // Never log while holding the queue: the status log writes into it.
                let dropped = queue.dropped.load(Ordering::Relaxed);
                if dropped > reported {
                    log::warn!("{name} logger: {} status line(s) dropped while the server was away; {dropped} so far", dropped - reported);
                    reported = dropped;
                }
                while !queue.is_empty() && !stop.load(Ordering::SeqCst) {
                    let lines = queue.take(batch.max(1));
                    if send(&lines).is_err() {
                        queue.put_back(lines);
                        break;
                    }
                }
            }
        })
}

/// The TLS logger's status request: `{"log_type": "status", "data": [...]}`.
pub fn post_status(
    keys: &NodeKeys,
    settings: &TlsLoggerSettings,
    lines: &[String],
    stop: &AtomicBool,
) -> Result<(), String> {
    let data: Vec<Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let body = serde_json::json!({"log_type": "status", "data": data});
    keys.post_with_key(&settings.endpoint, body, settings.compress, 1, stop)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_remote::testing::{Response, TestServer};
    use oxquery_store::Store;
    use serde_json::json;

    fn sink(server: &TestServer, settings: TlsLoggerSettings) -> TlsSink {
        let store = Arc::new(Mutex::new(Store::in_memory().unwrap()));
        let keys = server.node_keys(store);
        TlsSink::new(Arc::new(keys), settings, Arc::new(AtomicBool::new(false)))
    }

    fn settings() -> TlsLoggerSettings {
        TlsLoggerSettings {
            endpoint: "/log".to_owned(),
            max_lines: 2,
            max_linesize: 40,
            compress: true,
            backoff_max: Duration::from_secs(3600),
        }
    }

    #[test]
    fn lines_go_in_requests_of_max_lines_and_oversized_ones_are_dropped() {
        let server = TestServer::start(|r| match r.path.as_str() {
            "/enroll" => Response::Json(json!({"node_key": "k"})),
            _ => Response::Json(json!({})),
        });
        let mut sink = sink(&server, settings());
        let lines: Vec<Vec<u8>> = vec![
            br#"{"name":"a","n":1}"#.to_vec(),
            br#"{"name":"b","n":2}"#.to_vec(),
            br#"{"name":"c","n":3}"#.to_vec(),
            format!(r#"{{"name":"{}"}}"#, "x".repeat(100)).into_bytes(),
        ];
        sink.write(Stream::Results, &lines).unwrap();
        let sent: Vec<Value> = server
            .requests_to("/log")
            .iter()
            .map(|r| r.json())
            .collect();
        assert_eq!(
            sent,
            [
                json!({"log_type": "result", "data": [{"name":"a","n":1}, {"name":"b","n":2}], "node_key": "k"}),
                json!({"log_type": "result", "data": [{"name":"c","n":3}], "node_key": "k"}),
            ]
        );
        assert!(
            server
                .requests_to("/log")
                .iter()
                .all(|r| r.header("content-encoding") == Some("gzip"))
        );
    }

    #[test]
    fn a_server_error_fails_the_batch_for_the_outbox_to_retry() {
        let up = Arc::new(AtomicBool::new(false));
        let state = Arc::clone(&up);
        let server = TestServer::start(move |r| match r.path.as_str() {
            "/enroll" => Response::Json(json!({"node_key": "k"})),
            _ if state.load(Ordering::SeqCst) => Response::Json(json!({})),
            _ => Response::Body(503, b"<html>down</html>".to_vec()),
        });
        let mut sink = sink(&server, settings());
        let lines = vec![br#"{"n":1}"#.to_vec()];
        assert!(sink.write(Stream::Results, &lines).is_err());
        up.store(true, Ordering::SeqCst);
        sink.resume(Stream::Results, "", &lines).unwrap();
        let accepted = server.requests_to("/log").len();
        assert_eq!(accepted, 2);
    }

    #[test]
    fn the_status_queue_keeps_the_newest_and_counts_what_it_drops() {
        let q = StatusQueue::new(3);
        for i in 0..5 {
            q.push_back(format!("{i}"));
        }
        assert_eq!(q.dropped.load(Ordering::Relaxed), 2);
        let taken = q.take(2);
        assert_eq!(taken, ["2", "3"]);
        // A failed request's lines go back in front, in order, while there is room.
        q.put_back(taken);
        assert_eq!(q.take(10), ["2", "3", "4"]);
        // Without room, they are dropped and counted.
        for i in 5..8 {
            q.push_back(format!("{i}"));
        }
        q.put_back(vec!["x".into()]);
        assert_eq!(q.take(10), ["5", "6", "7"]);
        assert_eq!(q.dropped.load(Ordering::Relaxed), 3);
    }
}
