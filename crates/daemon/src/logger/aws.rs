//! The `aws_kinesis` and `aws_firehose` logger plugins: each result line becomes one
//! record as osquery makes it (the line's JSON object with `"log_type": "result"`, a
//! newline after it for Firehose; a line that is not a JSON object, or too big for the
//! service, is dropped with an error as osquery drops it), sent in requests within the
//! service's limits ([`oxquery_remote::aws::Limits`]), at most once every
//! `--aws_kinesis_period`/`--aws_firehose_period` seconds.
//!
//! Delivery rides on the outbox, like the TLS logger: `write` returns `Ok` only when AWS
//! accepted every record of the batch, so while AWS is unreachable, throttling or refusing,
//! the lines stay in the store (bounded by `--buffered_log_max`) and the batch is sent
//! again after the outbox's back-off. Within one `write`, throttling and AWS's own
//! failures are retried a few times with a growing wait (no answer at all is left to the
//! outbox's back-off at once, as the TLS logger does), and a partial failure (Kinesis'
//! `FailedRecordCount`, Firehose's `FailedPutCount`) sends again only the records that
//! failed. The sink remembers which records of a failed batch were accepted, so the
//! outbox's retry of the same batch does not send them again.
//!
//! Duplicates can still reach the stream, as with any at-least-once producer: a request
//! AWS accepted but whose answer was lost (a timeout) is sent again, and a `kill -9`
//! during a batch sends the whole batch again at the next start (the accepted records
//! are remembered in memory only).
//!
//! Status lines go to Kinesis too (`"log_type": "status"`), unless
//! `--aws_kinesis_disable_log_status`, from the same bounded queue as the TLS logger's
//! ([`crate::logger::tls::StatusQueue`]); osquery's Firehose plugin sends none.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use oxquery_remote::aws::{AwsError, Limits, RecordStream};
use oxquery_remote::enroll::sleep_unless_stopped;

use crate::item::Stream;
use crate::sink::Sink;

/// Attempts of one request within a `write` before the batch is left to the outbox.
const ATTEMPTS: u32 = 5;
/// The first wait after a throttled or failed request; it doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// The longest wait between the outbox's retries of a failed batch.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// osquery's record: the JSON object of `line` with `log_type` set, a newline after it
/// when `limits.newline`; `None` for a line osquery would discard (not a JSON object,
/// or too big), with the reason.
pub fn record_of(line: &[u8], log_type: &str, limits: &Limits) -> Result<Vec<u8>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| format!("not in JSON format ({e})"))?;
    let Some(object) = value.as_object() else {
        return Err("not a JSON object".to_owned());
    };
    let mut record = if object.contains_key("log_type") {
        // Rare (a decoration named log_type): the value is replaced, as osquery does.
        let mut object = object.clone();
        object.insert("log_type".to_owned(), log_type.into());
        serde_json::to_vec(&object).map_err(|e| e.to_string())?
    } else {
        // The line's own bytes, the key added before the closing brace: the record
        // keeps exactly the formatter's JSON.
        let end = line
            .iter()
            .rposition(|b| *b == b'}')
            .ok_or("not a JSON object")?;
        let mut record = Vec::with_capacity(line.len() + 24);
        record.extend_from_slice(&line[..end]);
        if !object.is_empty() {
            record.push(b',');
        }
        record.extend_from_slice(format!("\"log_type\":\"{log_type}\"}}").as_bytes());
        record
    };
    if limits.newline {
        record.push(b'\n');
    }
    if record.len() >= limits.record_bytes || record.len() >= limits.batch_bytes {
        return Err(format!(
            "{} bytes, over the service's record limit of {}",
            record.len(),
            limits.record_bytes
        ));
    }
    Ok(record)
}

/// Requests of at most `limits.records` records and below `limits.batch_bytes` bytes:
/// index ranges into `records`.
fn batches(sizes: &[usize], limits: &Limits) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, size) in sizes.iter().enumerate() {
        if i > start && (i - start >= limits.records || bytes + size >= limits.batch_bytes) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    out
}

/// Sends `records`, retrying throttling and failures a few times, and only the
/// records that failed. Marks each accepted one in `accepted` (indices into
/// `records`); `Err` when some are still not accepted.
pub fn put_all(
    stream: &dyn RecordStream,
    records: &[Vec<u8>],
    accepted: &mut [bool],
    stop: &AtomicBool,
) -> Result<(), AwsError> {
    let sizes: Vec<usize> = records.iter().map(Vec::len).collect();
    for range in batches(&sizes, &stream.limits()) {
        let mut wait = RETRY_FIRST;
        let mut attempt = 1;
        loop {
            let pending: Vec<usize> = range.clone().filter(|i| !accepted[*i]).collect();
            if pending.is_empty() {
                break;
            }
            let batch: Vec<Vec<u8>> = pending.iter().map(|i| records[*i].clone()).collect();
            let error = match stream.put(&batch, stop) {
                Ok(answer) => {
                    let mut first_error = None;
                    for (i, result) in pending.iter().zip(&answer) {
                        match result {
                            None => accepted[*i] = true,
                            Some(code) => {
                                first_error.get_or_insert_with(|| code.clone());
                            }
                        }
                    }
                    let failed = answer.iter().filter(|r| r.is_some()).count();
                    if failed == 0 {
                        log::debug!(
                            "{}: Successfully sent {} log records",
                            stream.plugin(),
                            batch.len()
                        );
                        break;
                    }
                    log::info!(
                        "{}: {failed} of {} records refused ({}); sending them again",
                        stream.plugin(),
                        batch.len(),
                        first_error.as_deref().unwrap_or("")
                    );
                    AwsError::Service {
                        status: 200,
                        code: first_error.unwrap_or_default(),
                        message: format!("{failed} of {} records refused", batch.len()),
                    }
                }
                Err(e) => e,
            };
            // A per-record refusal is worth a retry whatever its code: AWS gives only
            // throttling and internal failures per record. No answer at all (or no
            // credentials) goes back to the outbox at once: each attempt could take the
            // whole request timeout, and the logger thread serves the other sinks too.
            let answered = matches!(error, AwsError::Service { .. });
            let retry = answered
                && (error.retryable() || matches!(error, AwsError::Service { status: 200, .. }));
            if !retry || attempt >= ATTEMPTS {
                return Err(error);
            }
            if !sleep_unless_stopped(wait, stop) {
                return Err(error);
            }
            wait = (wait * 2).min(RETRY_MAX);
            attempt += 1;
        }
    }
    Ok(())
}

/// The records of a batch the last failed `write` got accepted, by the batch's hash.
struct Progress {
    fingerprint: u64,
    accepted: Vec<bool>,
}

fn fingerprint(lines: &[Vec<u8>]) -> u64 {
    let mut h = DefaultHasher::new();
    lines.hash(&mut h);
    h.finish()
}

/// A Kinesis or Firehose stream as a [`Sink`].
pub struct AwsSink {
    stream: Arc<dyn RecordStream>,
    period: Duration,
    last_sent: Option<Instant>,
    stop: Arc<AtomicBool>,
    progress: Option<Progress>,
}

impl AwsSink {
    pub fn new(stream: Arc<dyn RecordStream>, period: Duration, stop: Arc<AtomicBool>) -> AwsSink {
        AwsSink {
            stream,
            period,
            last_sent: None,
            stop,
            progress: None,
        }
    }
}

impl Sink for AwsSink {
    fn name(&self) -> &'static str {
        self.stream.plugin()
    }

    fn checkpoint(&mut self, _stream: Stream) -> io::Result<Option<String>> {
        Ok(None)
    }

    fn write(&mut self, _stream: Stream, lines: &[Vec<u8>]) -> io::Result<()> {
        let limits = self.stream.limits();
        let print = fingerprint(lines);
        let mut accepted = match self.progress.take() {
            Some(p) if p.fingerprint == print && p.accepted.len() == lines.len() => p.accepted,
            _ => vec![false; lines.len()],
        };
        // Records of the lines not accepted yet; a line osquery would drop counts as done.
        let mut records = Vec::new();
        let mut owners = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if accepted[i] {
                continue;
            }
            match record_of(line, "result", &limits) {
                Ok(record) => {
                    records.push(record);
                    owners.push(i);
                }
                Err(why) => {
                    log::error!(
                        "{}: The following log record has been discarded: {why}: {}",
                        self.stream.plugin(),
                        String::from_utf8_lossy(&line[..line.len().min(512)])
                    );
                    accepted[i] = true;
                }
            }
        }
        let mut done = vec![false; records.len()];
        let sent = put_all(&*self.stream, &records, &mut done, &self.stop);
        for (j, ok) in done.iter().enumerate() {
            if *ok {
                accepted[owners[j]] = true;
            }
        }
        self.last_sent = Some(Instant::now());
        match sent {
            Ok(()) => Ok(()),
            Err(e) => {
                let left = accepted.iter().filter(|a| !**a).count();
                self.progress = Some(Progress {
                    fingerprint: print,
                    accepted,
                });
                Err(io::Error::other(format!(
                    "{left} of {} records not accepted by {} {:?}: {e}",
                    lines.len(),
                    self.stream.plugin(),
                    self.stream.stream_name()
                )))
            }
        }
    }

    fn resume(&mut self, stream: Stream, _checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()> {
        self.write(stream, lines)
    }

    fn retry_max(&self) -> Option<Duration> {
        Some(BACKOFF_MAX.max(self.period))
    }

    fn due(&self, now: Instant) -> bool {
        // Stopping: the last drain sends what is left.
        self.stop.load(Ordering::SeqCst)
            || self
                .last_sent
                .is_none_or(|t| now.duration_since(t) >= self.period)
    }
}

/// Sends status lines (`log_type: "status"`) to `stream`: the status sender's delivery.
pub fn send_status(
    stream: &dyn RecordStream,
    lines: &[String],
    stop: &AtomicBool,
) -> Result<(), String> {
    let limits = stream.limits();
    let records: Vec<Vec<u8>> = lines
        .iter()
        .filter_map(|l| record_of(l.as_bytes(), "status", &limits).ok())
        .collect();
    let mut accepted = vec![false; records.len()];
    put_all(stream, &records, &mut accepted, stop).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_remote::aws::{PutAnswer, firehose, kinesis};
    use std::sync::Mutex;

    #[test]
    fn records_are_osquery_s() {
        let l = kinesis::LIMITS;
        assert_eq!(
            record_of(br#"{"name":"q","n":1}"#, "result", &l).unwrap(),
            br#"{"name":"q","n":1,"log_type":"result"}"#
        );
        assert_eq!(
            record_of(b"{}", "status", &l).unwrap(),
            br#"{"log_type":"status"}"#
        );
        assert_eq!(
            record_of(br#"{"a":1}"#, "result", &firehose::LIMITS).unwrap(),
            b"{\"a\":1,\"log_type\":\"result\"}\n"
        );
        // An existing log_type is replaced.
        assert_eq!(
            record_of(br#"{"log_type":"x","a":1}"#, "result", &l).unwrap(),
            br#"{"log_type":"result","a":1}"#
        );
        assert!(record_of(b"not json", "result", &l).is_err());
        assert!(record_of(b"[1,2]", "result", &l).is_err());
        let big = format!(r#"{{"v":"{}"}}"#, "x".repeat(l.record_bytes));
        assert!(record_of(big.as_bytes(), "result", &l).is_err());
    }

    #[test]
    fn batches_keep_to_the_limits() {
        let limits = Limits {
            records: 3,
            record_bytes: 100,
            batch_bytes: 25,
            newline: false,
        };
        assert_eq!(batches(&[10; 7], &limits), [0..2, 2..4, 4..6, 6..7]);
        assert_eq!(batches(&[1; 7], &limits), [0..3, 3..6, 6..7]);
        assert!(batches(&[], &limits).is_empty());
    }

    /// A stream that refuses by script: each put takes the next answer.
    struct Scripted {
        answers: Mutex<Vec<Result<Vec<bool>, AwsError>>>,
        received: Mutex<Vec<Vec<Vec<u8>>>>,
    }

    impl RecordStream for Scripted {
        fn plugin(&self) -> &'static str {
            "aws_kinesis"
        }
        fn stream_name(&self) -> &str {
            "s"
        }
        fn limits(&self) -> Limits {
            Limits {
                records: 2,
                ..kinesis::LIMITS
            }
        }
        fn put(&self, records: &[Vec<u8>], _stop: &AtomicBool) -> Result<PutAnswer, AwsError> {
            self.received.lock().unwrap().push(records.to_vec());
            let mut answers = self.answers.lock().unwrap();
            let next = if answers.is_empty() {
                Ok(vec![true; records.len()])
            } else {
                answers.remove(0)
            };
            next.map(|oks| {
                (0..records.len())
                    .map(|i| {
                        (!oks.get(i).copied().unwrap_or(true))
                            .then(|| "ProvisionedThroughputExceededException".to_owned())
                    })
                    .collect()
            })
        }
        fn check(&self, _stop: &AtomicBool) -> Result<String, AwsError> {
            Ok("ACTIVE".into())
        }
    }

    fn lines(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!(r#"{{"n":{i}}}"#).into_bytes())
            .collect()
    }

    fn received_numbers(stream: &Scripted) -> Vec<Vec<u64>> {
        stream
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|batch| {
                batch
                    .iter()
                    .map(|r| {
                        serde_json::from_slice::<serde_json::Value>(r).unwrap()["n"]
                            .as_u64()
                            .unwrap()
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn partial_failures_resend_only_the_failed_records() {
        let stream = Arc::new(Scripted {
            answers: Mutex::new(vec![Ok(vec![true, false]), Ok(vec![false])]),
            received: Mutex::default(),
        });
        let mut sink = AwsSink::new(stream.clone(), Duration::ZERO, Arc::default());
        sink.write(Stream::Results, &lines(3)).unwrap();
        assert_eq!(
            received_numbers(&stream),
            [vec![0, 1], vec![1], vec![1], vec![2]]
        );
    }

    #[test]
    fn a_batch_failed_after_the_retries_keeps_what_was_accepted_for_the_next_write() {
        let throttled = || {
            Err(AwsError::Service {
                status: 400,
                code: "ProvisionedThroughputExceededException".into(),
                message: "slow down".into(),
            })
        };
        let mut answers = vec![Ok(vec![true, true])];
        answers.extend((0..ATTEMPTS).map(|_| throttled()));
        let stream = Arc::new(Scripted {
            answers: Mutex::new(answers),
            received: Mutex::default(),
        });
        let mut sink = AwsSink::new(stream.clone(), Duration::ZERO, Arc::default());
        let batch = lines(4);
        let err = sink.write(Stream::Results, &batch).unwrap_err();
        assert!(
            err.to_string().starts_with("2 of 4 records not accepted"),
            "{err}"
        );
        // The outbox's retry of the same batch sends only records 2 and 3.
        stream.received.lock().unwrap().clear();
        sink.resume(Stream::Results, "", &batch).unwrap();
        assert_eq!(received_numbers(&stream), [vec![2, 3]]);
        // A different batch starts afresh.
        stream.received.lock().unwrap().clear();
        sink.write(Stream::Results, &lines(1)).unwrap();
        assert_eq!(received_numbers(&stream), [vec![0]]);
    }

    #[test]
    fn a_refusal_that_cannot_pass_is_not_retried_within_the_write() {
        let stream = Arc::new(Scripted {
            answers: Mutex::new(vec![Err(AwsError::Service {
                status: 400,
                code: "ResourceNotFoundException".into(),
                message: "Stream s not found".into(),
            })]),
            received: Mutex::default(),
        });
        let mut sink = AwsSink::new(stream.clone(), Duration::ZERO, Arc::default());
        assert!(sink.write(Stream::Results, &lines(1)).is_err());
        assert_eq!(stream.received.lock().unwrap().len(), 1);
    }

    #[test]
    fn the_period_spaces_writes_unless_stopping() {
        let stream = Arc::new(Scripted {
            answers: Mutex::default(),
            received: Mutex::default(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut sink = AwsSink::new(stream, Duration::from_secs(3600), Arc::clone(&stop));
        let now = Instant::now();
        assert!(sink.due(now));
        sink.write(Stream::Results, &lines(1)).unwrap();
        assert!(!sink.due(Instant::now()));
        stop.store(true, Ordering::SeqCst);
        assert!(sink.due(Instant::now()));
    }
}
