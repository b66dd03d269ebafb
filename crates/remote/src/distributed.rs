//! Distributed (live) queries: what the read endpoint hands out and what the write
//! endpoint gets back, in osquery's shapes. Answers come from a server, so every member
//! is checked: a query whose SQL is not a string is dropped with a warning, never a
//! panic or a half-read batch.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The most queries taken from one read answer: a broken or hostile server cannot make
/// the agent run without bound.
pub const MAX_QUERIES_PER_READ: usize = 1024;

/// One read answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Work {
    /// Query id → SQL, in id order.
    pub queries: BTreeMap<String, String>,
    /// Query id → discovery SQL: the query runs only if this returns a row.
    pub discovery: BTreeMap<String, String>,
    /// `accelerate`: poll every few seconds for this many seconds.
    pub accelerate: Option<u64>,
}

/// Reads a read endpoint's answer.
pub fn parse_work(answer: &Value) -> Work {
    let mut work = Work::default();
    let strings = |member: &str| -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(map) = answer.get(member).and_then(Value::as_object) else {
            return out;
        };
        for (id, sql) in map {
            if out.len() >= MAX_QUERIES_PER_READ {
                log::warn!(
                    "Distributed read: more than {MAX_QUERIES_PER_READ} {member}; the rest are ignored"
                );
                break;
            }
            match sql.as_str() {
                Some(sql) => {
                    out.insert(id.clone(), sql.to_owned());
                }
                None => log::warn!("Distributed read: {member} {id} is not a string; ignored"),
            }
        }
        out
    };
    work.queries = strings("queries");
    work.discovery = strings("discovery");
    work.accelerate = match answer.get("accelerate") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|&s| s > 0);
    work
}

/// What running one distributed query gave.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutcome {
    pub id: String,
    /// Rows as (column, value) pairs in the result's column order; values as strings.
    pub rows: Vec<Vec<(String, String)>>,
    /// 0 when the query ran, 1 when it failed.
    pub status: i32,
    /// The error, empty on success.
    pub message: String,
    pub stats: QueryStats,
}

/// Per-query figures of the write request's `stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    pub wall_time_ms: u64,
    pub user_time: u64,
    pub system_time: u64,
    pub memory: u64,
}

/// The write endpoint's request for `outcomes` (without `node_key`, which the sender
/// adds).
pub fn write_request(outcomes: &[QueryOutcome]) -> Value {
    let mut queries = Map::new();
    let mut statuses = Map::new();
    let mut messages = Map::new();
    let mut stats = Map::new();
    for o in outcomes {
        let rows: Vec<Value> = o
            .rows
            .iter()
            .map(|row| {
                Value::Object(
                    row.iter()
                        .map(|(c, v)| (c.clone(), Value::from(v.as_str())))
                        .collect(),
                )
            })
            .collect();
        queries.insert(o.id.clone(), Value::Array(rows));
        statuses.insert(o.id.clone(), Value::from(o.status));
        messages.insert(o.id.clone(), Value::from(o.message.as_str()));
        stats.insert(
            o.id.clone(),
            serde_json::json!({
                "wall_time_ms": o.stats.wall_time_ms,
                "user_time": o.stats.user_time,
                "system_time": o.stats.system_time,
                "memory": o.stats.memory,
            }),
        );
    }
    serde_json::json!({
        "queries": queries,
        "statuses": statuses,
        "messages": messages,
        "stats": stats,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_queries_discovery_and_accelerate() {
        let work = parse_work(&json!({
            "queries": {"q1": "select 1", "q2": "select 2", "bad": 5},
            "discovery": {"q2": "select 1 from os_version where name = 'Nope'"},
            "accelerate": "60",
            "node_invalid": false
        }));
        assert_eq!(work.queries.len(), 2);
        assert_eq!(work.queries["q1"], "select 1");
        assert_eq!(work.discovery.len(), 1);
        assert_eq!(work.accelerate, Some(60));
        assert_eq!(parse_work(&json!({"accelerate": 0})).accelerate, None);
        // Nothing usable in it: no work, no panic.
        for hostile in [
            json!(null),
            json!([]),
            json!({"queries": "x"}),
            json!({"queries": [1]}),
        ] {
            assert_eq!(parse_work(&hostile), Work::default());
        }
    }

    #[test]
    fn caps_the_queries_of_one_answer() {
        let many: Map<String, Value> = (0..MAX_QUERIES_PER_READ + 10)
            .map(|i| (format!("q{i:05}"), json!("select 1")))
            .collect();
        let work = parse_work(&json!({ "queries": many }));
        assert_eq!(work.queries.len(), MAX_QUERIES_PER_READ);
    }

    #[test]
    fn the_write_request_keeps_column_order_and_has_every_member() {
        let outcomes = [
            QueryOutcome {
                id: "q1".into(),
                rows: vec![vec![("z".into(), "1".into()), ("a".into(), "x".into())]],
                status: 0,
                message: String::new(),
                stats: QueryStats {
                    wall_time_ms: 3,
                    user_time: 1,
                    system_time: 2,
                    memory: 4096,
                },
            },
            QueryOutcome {
                id: "q2".into(),
                rows: vec![],
                status: 1,
                message: "no such table: nope".into(),
                stats: QueryStats::default(),
            },
        ];
        let body = write_request(&outcomes);
        assert_eq!(
            body.to_string(),
            json!({
                "queries": {"q1": [{"z": "1", "a": "x"}], "q2": []},
                "statuses": {"q1": 0, "q2": 1},
                "messages": {"q1": "", "q2": "no such table: nope"},
                "stats": {
                    "q1": {"wall_time_ms": 3, "user_time": 1, "system_time": 2, "memory": 4096},
                    "q2": {"wall_time_ms": 0, "user_time": 0, "system_time": 0, "memory": 0}
                }
            })
            .to_string()
        );
    }
}
