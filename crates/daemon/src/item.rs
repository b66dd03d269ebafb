//! The daemon's shared vocabulary: rows and what one scheduled query's run produces.

use oxquery_table::Value;
use std::collections::BTreeMap;

/// One result row: column name → typed value. Sorted by column name, which is the order
/// osquery's JSON objects use.
pub type Row = BTreeMap<String, Value>;

/// Name → value pairs added to every result line (`decorators` in the config).
pub type Decorations = BTreeMap<String, String>;

/// What one run of a scheduled query has to log.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultItem {
    /// Full query name (`pack_<pack>_<query>`, or the bare name for the `schedule`).
    pub name: String,
    /// Unix time the query ran; `calendarTime` is derived from it.
    pub unix_time: i64,
    pub epoch: u64,
    pub counter: u64,
    pub decorations: Decorations,
    pub payload: Payload,
}

/// The rows to log.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Differential results: rows that disappeared and rows that appeared.
    Diff { added: Vec<Row>, removed: Vec<Row> },
    /// A snapshot query's whole result.
    Snapshot(Vec<Row>),
}

/// Which log a line belongs to (the filesystem logger writes them to different files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    /// `osqueryd.results.log`
    Results,
    /// `osqueryd.snapshots.log`
    Snapshots,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Results => "results",
            Stream::Snapshots => "snapshots",
        }
    }
}

/// One formatted log line (without its trailing newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub stream: Stream,
    pub text: Vec<u8>,
}
