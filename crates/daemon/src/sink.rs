//! Logger destinations and the contract that makes delivery exactly-once.
//!
//! The outbox hands a sink batches of lines of one [`Stream`]. Before writing a batch it
//! asks the sink for a [`Sink::checkpoint`] and stores it with the batch; after the sink's
//! `write` returns (the lines are durable) the batch is marked delivered. If the daemon
//! dies in between, on restart the outbox calls [`Sink::resume`] with the stored
//! checkpoint and the same lines, and the sink completes the batch without repeating what
//! already reached it (a file sink compares the bytes after the checkpoint offset).
//! Sinks that cannot tell (stdout, syslog) return `None` checkpoints and are at-least-once.

use crate::item::Stream;
use std::io;

/// A destination for result lines.
pub trait Sink: Send {
    /// The logger plugin name (`filesystem`, `stdout`, `syslog`).
    fn name(&self) -> &'static str;

    /// An opaque position to resume an interrupted write from, or `None` if the sink
    /// cannot resume exactly.
    fn checkpoint(&mut self, stream: Stream) -> io::Result<Option<String>>;

    /// Writes every line followed by a newline; durable when it returns `Ok`. Lines are
    /// bytes: a snapshot may log a value that is not UTF-8 as it is.
    fn write(&mut self, stream: Stream, lines: &[Vec<u8>]) -> io::Result<()>;

    /// Completes a batch whose write may have been interrupted after `checkpoint`: lines
    /// already present are not written again.
    fn resume(&mut self, stream: Stream, checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()>;

    /// Whether what `checkpoint` names can still be found. `false` (its log file was
    /// deleted) means no part of the batch can be found again: the outbox then sends the
    /// batch afresh, with a new checkpoint, instead of calling [`Sink::resume`].
    fn can_resume(&mut self, _stream: Stream, _checkpoint: &str) -> io::Result<bool> {
        Ok(true)
    }

    /// The longest wait between retries after failures, when the sink has its own
    /// (the TLS logger's `--logger_tls_backoff_max`); `None` takes the outbox's.
    fn retry_max(&self) -> Option<std::time::Duration> {
        None
    }

    /// Whether the sink takes a batch now (the AWS loggers send at most once per
    /// `--aws_*_period`); a sink not due is skipped by this drain and keeps its lines.
    fn due(&self, _now: std::time::Instant) -> bool {
        true
    }

    /// Closes and reopens what the sink writes to (SIGHUP, after an outside log rotation).
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
}
