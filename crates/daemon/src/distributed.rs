//! The `tls` distributed plugin: live queries from a fleet server. Every
//! `--distributed_interval` seconds (every 5 s while the server asked to `accelerate`)
//! the read endpoint hands out queries; each runs on this module's own engine and its
//! result goes to the write endpoint as soon as it finished. osquery answers only after
//! the whole batch ran, so one slow query holds back the rest; here each query's answer
//! is one write request carrying only that query, which servers expecting one write per
//! batch read like any other (every member is keyed by query id).
//!
//! A query's discovery SQL (same id under `discovery`) must return a row for the query
//! to run. A query is recorded in the store while it runs; if the process dies meanwhile,
//! the next start deny-lists it for `--distributed_denylist_duration` and answers it with
//! status 1, `distributed query is denylisted`, as osquery does.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use oxquery_engine::Engine;
use oxquery_flags::{Flags, flag};
use oxquery_remote::NodeKeys;
use oxquery_remote::distributed::{QueryOutcome, QueryStats, Work, parse_work, write_request};
use oxquery_remote::enroll::sleep_unless_stopped;
use oxquery_store::{Domain, Store};

use crate::usage::{resident_bytes, thread_cpu};
use serde_json::Value;

/// While accelerated, the read endpoint is polled this often (osquery's figure).
pub const ACCELERATED_INTERVAL: Duration = Duration::from_secs(5);
/// Store keys (domain `configurations`) of queries running now and of denied ones.
const RUNNING_PREFIX: &str = "distributed_running.";
const DENIED_PREFIX: &str = "distributed_denylist.";
/// osquery's answer for a denied query.
pub const DENYLISTED_MESSAGE: &str = "distributed query is denylisted";

/// What the distributed flags say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistributedSettings {
    pub read_endpoint: String,
    pub write_endpoint: String,
    /// `--distributed_interval`, seconds.
    pub interval: u64,
    /// `--distributed_tls_max_attempts`.
    pub max_attempts: u64,
    /// `--distributed_denylist_duration`, seconds.
    pub denylist_duration: u64,
    /// `--distributed_loginfo`: log each query at INFO.
    pub loginfo: bool,
}

impl DistributedSettings {
    pub fn from_flags(flags: &Flags) -> DistributedSettings {
        DistributedSettings {
            read_endpoint: flags.get(flag::distributed_tls_read_endpoint).to_owned(),
            write_endpoint: flags.get(flag::distributed_tls_write_endpoint).to_owned(),
            interval: flags.get(flag::distributed_interval).max(1),
            max_attempts: flags.get(flag::distributed_tls_max_attempts),
            denylist_duration: flags.get(flag::distributed_denylist_duration),
            loginfo: flags.get(flag::distributed_loginfo),
        }
    }
}

pub struct Distributed {
    keys: Arc<NodeKeys>,
    settings: DistributedSettings,
    store: Arc<Mutex<Store>>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Distributed {
    /// The plugin; queries recorded as running by a process that died are deny-listed now.
    pub fn new(
        keys: Arc<NodeKeys>,
        settings: DistributedSettings,
        store: Arc<Mutex<Store>>,
    ) -> Distributed {
        let d = Distributed {
            keys,
            settings,
            store,
        };
        d.denylist_crashed();
        d
    }

    fn lock_store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn denylist_crashed(&self) {
        let store = self.lock_store();
        let crashed = store
            .keys(Domain::Configurations, RUNNING_PREFIX)
            .unwrap_or_default();
        let until = unix_now() + self.settings.denylist_duration;
        for key in crashed {
            let id = &key[RUNNING_PREFIX.len()..];
            log::warn!(
                "Distributed query {id} was running when the daemon stopped; deny-listed for {} s",
                self.settings.denylist_duration
            );
            let denied = format!("{DENIED_PREFIX}{id}");
            if let Err(e) = store
                .put(
                    Domain::Configurations,
                    &denied,
                    until.to_string().as_bytes(),
                )
                .and_then(|()| store.delete(Domain::Configurations, &key))
            {
                log::warn!("Cannot deny-list distributed query {id}: {e}");
            }
        }
    }

    fn is_denied(&self, id: &str) -> bool {
        let key = format!("{DENIED_PREFIX}{id}");
        let store = self.lock_store();
        match store.get_text(Domain::Configurations, &key) {
            Ok(Some(until)) => {
                if until.parse::<u64>().is_ok_and(|u| u > unix_now()) {
                    return true;
                }
                let _ = store.delete(Domain::Configurations, &key);
                false
            }
            _ => false,
        }
    }

    /// Polls until `stop`: the interval between reads, 5 s while accelerated.
    pub fn run(&self, engine: &Engine, stop: &AtomicBool) {
        let mut accelerated_until: Option<Instant> = None;
        loop {
            match self.poll_once(engine, stop) {
                Ok(Some(seconds)) => {
                    accelerated_until = Some(Instant::now() + Duration::from_secs(seconds));
                }
                Ok(None) => {}
                Err(e) => log::warn!("Distributed query read failed: {e}"),
            }
            let wait = match accelerated_until {
                Some(until) if until > Instant::now() => ACCELERATED_INTERVAL,
                _ => Duration::from_secs(self.settings.interval),
            };
            if !sleep_unless_stopped(wait, stop) {
                return;
            }
        }
    }

    /// One read, the queries it gave run and answered. Returns the `accelerate` seconds
    /// the server asked for.
    pub fn poll_once(&self, engine: &Engine, stop: &AtomicBool) -> Result<Option<u64>, String> {
        let answer = self.keys.post_with_key(
            &self.settings.read_endpoint,
            Value::Object(serde_json::Map::new()),
            false,
            self.settings.max_attempts,
            stop,
        )?;
        let work = parse_work(&answer);
        self.run_work(&work, engine, stop);
        Ok(work.accelerate)
    }

    fn run_work(&self, work: &Work, engine: &Engine, stop: &AtomicBool) {
        for (id, sql) in &work.queries {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let outcome = if self.is_denied(id) {
                failed(id, DENYLISTED_MESSAGE.to_owned())
            } else if let Some(discovery) = work.discovery.get(id)
                && !discovered(engine, discovery)
            {
                log::info!("Distributed query {id} skipped: its discovery query returned no row");
                continue;
            } else {
                self.run_query(id, sql, engine)
            };
            // A query cut short by the daemon stopping is not answered.
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let body = write_request(std::slice::from_ref(&outcome));
            if let Err(e) = self.keys.post_with_key(
                &self.settings.write_endpoint,
                body,
                false,
                self.settings.max_attempts,
                stop,
            ) {
                log::warn!("Distributed query {id}: the result could not be sent: {e}");
            }
        }
    }

    fn run_query(&self, id: &str, sql: &str, engine: &Engine) -> QueryOutcome {
        if self.settings.loginfo {
            log::info!("Executing distributed query: {id}: {sql}");
        }
        let running = format!("{RUNNING_PREFIX}{id}");
        if let Err(e) = self
            .lock_store()
            .put(Domain::Configurations, &running, sql.as_bytes())
        {
            log::warn!("Cannot record distributed query {id}: {e}");
        }
        let before = Usage::now();
        // A carve this query starts records its id (`request_id`).
        let request = engine.distributed_request();
        request.begin(id);
        let result = engine.query(sql);
        request.end();
        let stats = before.since();
        let _ = self.lock_store().delete(Domain::Configurations, &running);
        match result {
            Ok(result) => QueryOutcome {
                id: id.to_owned(),
                rows: result
                    .rows
                    .into_iter()
                    .map(|row| {
                        result
                            .columns
                            .iter()
                            .cloned()
                            .zip(
                                row.iter()
                                    .map(|v| v.as_text().unwrap_or_default().into_owned()),
                            )
                            .collect()
                    })
                    .collect(),
                status: 0,
                message: String::new(),
                stats,
            },
            Err(e) => QueryOutcome {
                stats,
                ..failed(id, e.to_string())
            },
        }
    }
}

fn failed(id: &str, message: String) -> QueryOutcome {
    QueryOutcome {
        id: id.to_owned(),
        rows: Vec::new(),
        status: 1,
        message,
        stats: QueryStats::default(),
    }
}

fn discovered(engine: &Engine, sql: &str) -> bool {
    match engine.query(sql) {
        Ok(r) => !r.rows.is_empty(),
        Err(e) => {
            log::warn!("Distributed discovery query failed: {e}");
            false
        }
    }
}

/// Wall clock, this thread's CPU and the process's resident memory at one moment.
struct Usage {
    wall: Instant,
    cpu: (Duration, Duration),
    resident: u64,
}

impl Usage {
    fn now() -> Usage {
        Usage {
            wall: Instant::now(),
            cpu: thread_cpu(),
            resident: resident_bytes(),
        }
    }

    fn since(&self) -> QueryStats {
        let now = Usage::now();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        QueryStats {
            wall_time_ms: ms(now.wall.duration_since(self.wall)),
            user_time: ms(now.cpu.0.saturating_sub(self.cpu.0)),
            system_time: ms(now.cpu.1.saturating_sub(self.cpu.1)),
            memory: now.resident.saturating_sub(self.resident),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_remote::testing::{Response, TestServer};
    use serde_json::json;

    fn plugin(server: &TestServer, store: Arc<Mutex<Store>>) -> Distributed {
        let keys = server.node_keys(Arc::clone(&store));
        let settings = DistributedSettings {
            read_endpoint: "/read".to_owned(),
            write_endpoint: "/write".to_owned(),
            interval: 60,
            max_attempts: 1,
            denylist_duration: 86400,
            loginfo: false,
        };
        Distributed::new(Arc::new(keys), settings, store)
    }

    fn engine() -> Engine {
        Engine::new(
            &[],
            &oxquery_engine::TableFilter::default(),
            oxquery_table::InstanceInfo::default(),
        )
        .unwrap()
    }

    #[test]
    fn each_query_is_answered_on_its_own_with_rows_in_column_order() {
        let server = TestServer::start(|r| match r.path.as_str() {
            "/enroll" => Response::Json(json!({"node_key": "k"})),
            "/read" => Response::Json(json!({
                "queries": {
                    "a": "select 2 as z, 'x' as a, null as n",
                    "b": "select * from no_such_table",
                    "c": "select 1",
                    "d": "select 1"
                },
                "discovery": {"c": "select 1 where 0", "d": "select 1"},
                "accelerate": 30
            })),
            _ => Response::Json(json!({})),
        });
        let store = Arc::new(Mutex::new(Store::in_memory().unwrap()));
        let d = plugin(&server, Arc::clone(&store));
        let accelerate = d.poll_once(&engine(), &AtomicBool::new(false)).unwrap();
        assert_eq!(accelerate, Some(30));
        let writes: Vec<Value> = server
            .requests_to("/write")
            .iter()
            .map(|r| r.json())
            .collect();
        // a, b and d (c's discovery found nothing), one request each, in id order.
        assert_eq!(writes.len(), 3);
        assert_eq!(
            writes[0]["queries"],
            json!({"a": [{"z": "2", "a": "x", "n": ""}]})
        );
        assert_eq!(writes[0]["statuses"], json!({"a": 0}));
        assert_eq!(writes[0]["node_key"], "k");
        assert_eq!(writes[1]["statuses"], json!({"b": 1}));
        assert!(
            writes[1]["messages"]["b"]
                .as_str()
                .unwrap()
                .contains("no_such_table")
        );
        assert_eq!(writes[2]["queries"], json!({"d": [{"1": "1"}]}));
        assert!(writes[0]["stats"]["a"]["wall_time_ms"].is_u64());
        // Nothing is left recorded as running.
        assert!(
            store
                .lock()
                .unwrap()
                .keys(Domain::Configurations, RUNNING_PREFIX)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_query_running_when_the_process_died_is_denied() {
        let server = TestServer::start(|r| match r.path.as_str() {
            "/enroll" => Response::Json(json!({"node_key": "k"})),
            "/read" => Response::Json(json!({"queries": {"boom": "select 1", "ok": "select 1"}})),
            _ => Response::Json(json!({})),
        });
        let store = Arc::new(Mutex::new(Store::in_memory().unwrap()));
        store
            .lock()
            .unwrap()
            .put(
                Domain::Configurations,
                &format!("{RUNNING_PREFIX}boom"),
                b"select 1",
            )
            .unwrap();
        let d = plugin(&server, Arc::clone(&store));
        d.poll_once(&engine(), &AtomicBool::new(false)).unwrap();
        let writes: Vec<Value> = server
            .requests_to("/write")
            .iter()
            .map(|r| r.json())
            .collect();
        assert_eq!(writes[0]["statuses"], json!({"boom": 1}));
        assert_eq!(writes[0]["messages"], json!({"boom": DENYLISTED_MESSAGE}));
        assert_eq!(writes[1]["statuses"], json!({"ok": 0}));
    }
}
