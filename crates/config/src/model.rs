//! The parsed configuration: plain data the scheduler, loggers and tables read.

use serde_json::Value as Json;
use std::collections::BTreeMap;

/// Largest `interval` osquery accepts: one week.
pub const MAX_QUERY_INTERVAL: u64 = 604_800;

/// The pack the top-level `schedule` becomes.
pub const MAIN_PACK: &str = "main";

/// A pack: a named group of queries with shared restrictions. The top-level `schedule`
/// is the pack [`MAIN_PACK`].
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    pub name: String,
    /// The config source the pack came from (a pack file's packs belong to the source
    /// that named the file).
    pub source: String,
    /// Platform restriction; empty = any. See [`super::platform_matches`].
    pub platform: String,
    /// Oldest osquery version the pack needs; empty = any.
    pub version: String,
    /// 0 = every host; otherwise only hosts whose machine shard is at most this.
    pub shard: u64,
    /// SQL that must each return at least one row for the pack to be active.
    pub discovery: Vec<String>,
    /// Owner of the pack; `"unknown"` when not given (as `osquery_packs` shows).
    pub oncall: String,
    /// The pack's queries, sorted by name.
    pub queries: Vec<Query>,
}

/// One query of a pack, as written (restrictions not yet applied).
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The query's name inside its pack.
    pub name: String,
    /// The logged name: the bare name in `main`, else `pack<d><pack><d><name>`.
    pub full_name: String,
    /// The SQL.
    pub query: String,
    /// Seconds between runs, 1..=[`MAX_QUERY_INTERVAL`].
    pub interval: u64,
    /// Log the whole result each time instead of differences.
    pub snapshot: bool,
    /// Log removed rows of differential results.
    pub removed: bool,
    /// A query that crashed the worker may be deny-listed for a day.
    pub denylist: bool,
    pub platform: String,
    pub version: String,
    pub shard: u64,
    /// Run once at start-up, lowest value first, before the interval schedule begins.
    pub startup_priority: Option<u64>,
    /// `"timeout"`: seconds a run may take before it is stopped (0 = no limit); `None`
    /// takes `--schedule_query_timeout`.
    pub timeout: Option<u64>,
    /// `"memory_limit"`: MiB a run may allocate before it is stopped (0 = no budget);
    /// `None` takes `--schedule_query_memory_limit`.
    pub memory_limit: Option<u64>,
}

/// `decorators`: queries whose first row's columns are added to every log line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decorators {
    /// Run when the config is loaded.
    pub load: Vec<String>,
    /// Run before every scheduled query's results are logged.
    pub always: Vec<String>,
    /// Run when the scheduler's unix time is a multiple of the key (seconds, a positive
    /// multiple of 60).
    pub interval: BTreeMap<u64, Vec<String>>,
}

impl Decorators {
    pub fn is_empty(&self) -> bool {
        self.load.is_empty() && self.always.is_empty() && self.interval.is_empty()
    }
}

/// One `auto_table_construction` entry: a table read from SQLite files.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoTable {
    pub query: String,
    /// Path pattern of the SQLite files (osquery `%` wildcards).
    pub path: String,
    pub columns: Vec<String>,
    pub platform: String,
}

/// `events`: which event subscribers to switch on or off.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Events {
    pub enable_subscribers: Vec<String>,
    pub disable_subscribers: Vec<String>,
}

/// Category → paths (or SQL) lists as `file_paths`, `file_paths_query` and
/// `exclude_paths` use them.
pub type Categories = BTreeMap<String, Vec<String>>;

/// Everything one config document says; sources are merged into a [`super::Config`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub options: BTreeMap<String, Json>,
    pub packs: Vec<Pack>,
    pub decorators: Decorators,
    pub views: BTreeMap<String, String>,
    pub auto_table_construction: BTreeMap<String, AutoTable>,
    pub file_paths: Categories,
    pub file_paths_query: Categories,
    pub file_accesses: Vec<String>,
    pub exclude_paths: Categories,
    pub yara: Option<Json>,
    /// `prometheus_targets`: what `prometheus_metrics` scrapes.
    pub prometheus_targets: Option<oxquery_table::PrometheusTargets>,
    pub events: Events,
    /// `kafka_topics`: Kafka topic → the query names whose results go there.
    pub kafka_topics: Categories,
}
