//! The `stdout` logger: result lines as they are, status lines as
//! `severity=N location=file:line message=...`.

use super::status::{StatusOutput, StatusRecord};
use crate::item::Stream;
use crate::sink::Sink;
use std::io::{self, Write};

/// Writes to any writer (the process's stdout in the daemon, a buffer in tests).
pub struct StdoutSink<W: Write + Send> {
    out: W,
}

impl StdoutSink<io::Stdout> {
    pub fn stdout() -> Self {
        StdoutSink { out: io::stdout() }
    }
}

impl<W: Write + Send> StdoutSink<W> {
    pub fn new(out: W) -> Self {
        StdoutSink { out }
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes status records in the stdout/syslog text form.
    pub fn write_statuses(&mut self, records: &[StatusRecord]) -> io::Result<()> {
        let mut buf = String::new();
        for r in records {
            buf.push_str(&r.plain_line());
            buf.push('\n');
        }
        self.out.write_all(buf.as_bytes())?;
        self.out.flush()
    }
}

/// The status output of the `stdout` plugin.
impl<W: Write + Send> StatusOutput for StdoutSink<W> {
    fn write(&mut self, record: &StatusRecord) -> io::Result<()> {
        self.write_statuses(std::slice::from_ref(record))
    }
}

impl<W: Write + Send> Sink for StdoutSink<W> {
    fn name(&self) -> &'static str {
        "stdout"
    }

    /// A pipe cannot be re-read, so delivery is at-least-once.
    fn checkpoint(&mut self, _stream: Stream) -> io::Result<Option<String>> {
        Ok(None)
    }

    /// Both streams go to the same output, as osquery's stdout logger does.
    fn write(&mut self, _stream: Stream, lines: &[Vec<u8>]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for line in lines {
            buf.extend_from_slice(line);
            buf.push(b'\n');
        }
        self.out.write_all(&buf)?;
        self.out.flush()
    }

    fn resume(&mut self, stream: Stream, _checkpoint: &str, lines: &[Vec<u8>]) -> io::Result<()> {
        Sink::write(self, stream, lines)
    }
}
