//! The hub: the subscribers' logs, the publisher threads, the flusher, and the
//! [`EventReader`] evented tables scan through.

use crate::buffer::{FLUSH_EVERY, Limits, Range, SubscriberLog};
use crate::publisher::{ConfigSlot, Publisher, PublisherContext, PublisherStats};
use oxquery_store::{Domain, Store};
use oxquery_table::{EventReader, EventStatus, Op, QueryContext, Rows, TableResult, TableSpec};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the hub needs from flags and the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSettings {
    /// `--events_expiry`, `--events_max`: every subscriber's bounds unless it has its own.
    pub limits: Limits,
    /// `--events_optimize`: a scheduled query reads only events newer than its last run.
    pub optimize: bool,
    /// The config's `events.disable_subscribers` (and not re-enabled by
    /// `events.enable_subscribers`).
    pub disabled: BTreeSet<String>,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            limits: Limits {
                expiry: 3600,
                max: 50_000,
            },
            optimize: true,
            disabled: BTreeSet::new(),
        }
    }
}

/// The unix time now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Receives every event as it is added: the subscriber's (table's) name and the row's
/// JSON as osquery forwards it to logger plugins that ask for events (`{"event": ...}`).
/// Called on the publisher's thread: it must only queue.
pub type EventForward = Arc<dyn Fn(&str, String) + Send + Sync>;

/// The program's [`EventForward`], once it sets one ([`EventHub::forward_events`]).
type ForwardSlot = Arc<std::sync::RwLock<Option<EventForward>>>;

/// Where a publisher hands one subscriber its events.
#[derive(Clone)]
pub struct Subscriber {
    log: Arc<SubscriberLog>,
    forward: ForwardSlot,
}

impl Subscriber {
    /// The subscriber's (the table's) name.
    pub fn name(&self) -> &str {
        &self.log.name
    }

    /// Adds one event: a row with one cell per column of the table, in declaration
    /// order (build it with [`crate::EventRow`]). An empty `time` becomes now.
    pub fn add(&self, values: Vec<oxquery_table::Value>) {
        let forward = self
            .forward
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        self.log.add(values, unix_now(), forward.as_ref());
    }
}

struct PublisherSlot {
    name: &'static str,
    subscribers: Vec<String>,
    stats: Arc<PublisherStats>,
    thread: Option<JoinHandle<()>>,
}

struct Inner {
    store: Arc<Mutex<Store>>,
    settings: HubSettings,
    logs: Mutex<Vec<Arc<SubscriberLog>>>,
    publishers: Mutex<Vec<PublisherSlot>>,
    stop: Arc<AtomicBool>,
    wake: Arc<(Mutex<bool>, Condvar)>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    config: Arc<ConfigSlot>,
    forward: ForwardSlot,
}

/// The program's event machinery. Cheap to clone; [`EventHub::stop`] ends its threads.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub").finish_non_exhaustive()
    }
}

impl EventHub {
    /// A hub keeping its events in `store` (the daemon's store; the shell's in memory).
    pub fn new(store: Arc<Mutex<Store>>, settings: HubSettings) -> EventHub {
        EventHub {
            inner: Arc::new(Inner {
                store,
                settings,
                logs: Mutex::new(Vec::new()),
                publishers: Mutex::new(Vec::new()),
                stop: Arc::new(AtomicBool::new(false)),
                wake: Arc::new((Mutex::new(false), Condvar::new())),
                flusher: Mutex::new(None),
                config: Arc::default(),
                forward: Arc::default(),
            }),
        }
    }

    /// The subscriber for the evented table `spec`, fed by `publisher`, or `None` when
    /// the config disables it. `limits` overrides the hub's (`syslog_events` has its own
    /// flags).
    pub fn subscribe(
        &self,
        spec: &TableSpec,
        publisher: &str,
        limits: Option<Limits>,
    ) -> Option<Subscriber> {
        let name = spec.name.as_ref();
        if self.inner.settings.disabled.contains(name) {
            log::info!("Event subscriber {name} is disabled by the config");
            return None;
        }
        let mut logs = lock(&self.inner.logs);
        if let Some(log) = logs.iter().find(|l| l.name == name) {
            return Some(Subscriber {
                log: Arc::clone(log),
                forward: Arc::clone(&self.inner.forward),
            });
        }
        let columns = spec.columns.iter().map(|c| c.name.to_string()).collect();
        let log = Arc::new(SubscriberLog::open(
            &self.inner.store,
            publisher,
            name,
            columns,
            limits.unwrap_or(self.inner.settings.limits),
        ));
        logs.push(Arc::clone(&log));
        Some(Subscriber {
            log,
            forward: Arc::clone(&self.inner.forward),
        })
    }

    /// Starts each publisher on a thread of its own, and the flusher. A publisher whose
    /// `run` fails is started again with a growing pause (1 s up to a minute), each
    /// start counted in `osquery_events.refreshes`.
    pub fn start(&self, publishers: Vec<Box<dyn Publisher>>) {
        let mut slots = lock(&self.inner.publishers);
        for mut publisher in publishers {
            let name = publisher.name();
            let stats = Arc::new(PublisherStats::default());
            let subscribers = publisher.subscribers();
            let ctx = PublisherContext::new(
                name,
                Arc::clone(&self.inner.stop),
                Arc::clone(&stats),
                Arc::clone(&self.inner.config),
            );
            let thread = std::thread::Builder::new()
                .name(format!("events-{name}"))
                .spawn(move || run_publisher(publisher.as_mut(), &ctx))
                .map_err(|e| log::warn!("Cannot start the {name} event publisher: {e}"))
                .ok();
            slots.push(PublisherSlot {
                name,
                subscribers,
                stats,
                thread,
            });
        }
        drop(slots);
        let mut flusher = lock(&self.inner.flusher);
        if flusher.is_none() {
            let inner = Arc::clone(&self.inner);
            *flusher = std::thread::Builder::new()
                .name("events-flush".into())
                .spawn(move || flush_loop(&inner))
                .map_err(|e| log::warn!("Cannot start the event flusher: {e}"))
                .ok();
        }
    }

    /// Stops the publishers and the flusher and writes what is queued. Publishers see
    /// the stop within their read timeout.
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        {
            let (lock_, cvar) = &*self.inner.wake;
            *lock(lock_) = true;
            cvar.notify_all();
        }
        let threads: Vec<JoinHandle<()>> = lock(&self.inner.publishers)
            .iter_mut()
            .filter_map(|p| p.thread.take())
            .collect();
        for t in threads {
            let _ = t.join();
        }
        if let Some(t) = lock(&self.inner.flusher).take() {
            let _ = t.join();
        }
        self.flush();
    }

    /// Hands running publishers a reloaded config; each picks it up within its read
    /// timeout ([`PublisherContext::config_update`]).
    pub fn update_config(&self, config: crate::EventsConfig) {
        let slot = &self.inner.config;
        *lock(&slot.config) = config;
        slot.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Hands every event added from now on to `forward` too (osquery's
    /// `EventFactory::forwardEvent`, for logger plugins whose features ask for events).
    pub fn forward_events(&self, forward: EventForward) {
        *self
            .inner
            .forward
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(forward);
    }

    /// Writes every subscriber's queued events.
    pub fn flush(&self) {
        flush_all(&self.inner);
    }

    /// The store key under which a scheduled query's mark for a subscriber is kept.
    pub fn mark_key(query: &str, subscriber: &str) -> String {
        format!("optimize_eid.{query}.{subscriber}")
    }

    fn log_of(&self, name: &str) -> Option<Arc<SubscriberLog>> {
        lock(&self.inner.logs)
            .iter()
            .find(|l| l.name == name)
            .cloned()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn run_publisher(publisher: &mut dyn Publisher, ctx: &PublisherContext) {
    let mut pause = Duration::from_secs(1);
    while !ctx.stopping() {
        ctx.stats.refreshes.fetch_add(1, Ordering::Relaxed);
        ctx.stats.active.store(1, Ordering::Relaxed);
        let outcome = publisher.run(ctx);
        ctx.stats.active.store(0, Ordering::Relaxed);
        match outcome {
            Ok(()) => return,
            Err(e) if ctx.stopping() => {
                log::debug!("Event publisher {} stopped: {e}", publisher.name());
                return;
            }
            Err(e) => {
                log::warn!(
                    "Event publisher {} failed: {e}; restarting in {} s",
                    publisher.name(),
                    pause.as_secs()
                );
                if !ctx.sleep(pause) {
                    return;
                }
                pause = (pause * 2).min(Duration::from_secs(60));
            }
        }
    }
}

fn flush_all(inner: &Inner) {
    let logs: Vec<Arc<SubscriberLog>> = lock(&inner.logs).clone();
    let now = unix_now();
    for log in logs {
        log.flush(&inner.store, now);
    }
}

fn flush_loop(inner: &Inner) {
    let (stopped, cvar) = &*inner.wake;
    loop {
        let guard = lock(stopped);
        // A stop that came before this wait ends it at once (the flag is looked at first).
        let (guard, _) = cvar
            .wait_timeout_while(guard, FLUSH_EVERY, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        let stop = *guard;
        drop(guard);
        flush_all(inner);
        if stop {
            return;
        }
    }
}

/// The bounds of the `time` constraints of a scan (inclusive).
fn time_range(ctx: &QueryContext<'_>) -> (Option<i64>, Option<i64>) {
    let Some(column) = ctx.spec().column_index("time") else {
        return (None, None);
    };
    let (mut from, mut to): (Option<i64>, Option<i64>) = (None, None);
    for c in ctx.constraints().iter().filter(|c| c.column == column) {
        let Some(v) = c.value.as_i64() else { continue };
        let (low, high) = match c.op {
            Op::Eq => (Some(v), Some(v)),
            Op::Gt => (Some(v.saturating_add(1)), None),
            Op::Ge => (Some(v), None),
            Op::Lt => (None, Some(v.saturating_sub(1))),
            Op::Le => (None, Some(v)),
            _ => (None, None),
        };
        if let Some(low) = low {
            from = Some(from.map_or(low, |f| f.max(low)));
        }
        if let Some(high) = high {
            to = Some(to.map_or(high, |t| t.min(high)));
        }
    }
    (from, to)
}

impl EventReader for EventHub {
    fn scan(&self, ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
        let name = ctx.spec().name.as_ref();
        let Some(log) = self.log_of(name) else {
            log::info!("Event subscriber {name} is not running: no events");
            return Ok(());
        };
        let (from_time, to_time) = time_range(ctx);
        let run = &ctx.host().run;
        // osquery: a time constraint turns the scheduled query's optimization off.
        let query = match (from_time, to_time, self.inner.settings.optimize) {
            (None, None, true) => run.query(),
            _ => None,
        };
        if self.inner.settings.optimize {
            run.touched_events();
        }
        let after_eid = match &query {
            Some(q) => {
                let store = lock(&self.inner.store);
                store
                    .get_text(Domain::Events, &EventHub::mark_key(q, name))
                    .ok()
                    .flatten()
                    .and_then(|m| m.parse().ok())
            }
            None => None,
        };
        let range = Range {
            after_eid,
            from_time,
            to_time,
        };
        let mut stopped = Ok(());
        let seen = log
            .scan(&self.inner.store, range, unix_now(), |_, values| {
                if let Err(e) = ctx.check() {
                    stopped = Err(e);
                    return false;
                }
                let mut row = rows.row();
                for (i, v) in values.into_iter().enumerate() {
                    if row.wants(i) {
                        row.set(i, v);
                    }
                }
                !rows.is_closed()
            })
            .map_err(|e| oxquery_table::TableError::msg(format!("reading stored events: {e}")))?;
        stopped?;
        if let (Some(_), Some(eid)) = (&query, seen) {
            run.read_through(name, eid);
        }
        Ok(())
    }

    fn status(&self) -> Vec<EventStatus> {
        let mut out = Vec::new();
        let logs: Vec<Arc<SubscriberLog>> = lock(&self.inner.logs).clone();
        for p in lock(&self.inner.publishers).iter() {
            let (dropped, reasons) = p.stats.losses();
            out.push(EventStatus {
                name: p.name.to_owned(),
                publisher: p.name.to_owned(),
                kind: "publisher",
                subscriptions: p.subscribers.len() as i64,
                events: p.stats.events.load(Ordering::Relaxed) as i64,
                refreshes: p.stats.refreshes.load(Ordering::Relaxed) as i64,
                active: p.stats.active.load(Ordering::Relaxed),
                dropped,
                dropped_reasons: reasons,
            });
        }
        for log in logs {
            let counters = [
                ("events_max", log.dropped.cap.load(Ordering::Relaxed)),
                ("queue full", log.dropped.queue.load(Ordering::Relaxed)),
                ("store error", log.dropped.store.load(Ordering::Relaxed)),
            ];
            let running = lock(&self.inner.publishers)
                .iter()
                .any(|p| p.name == log.publisher && p.stats.active.load(Ordering::Relaxed) == 1);
            out.push(EventStatus {
                name: log.name.clone(),
                publisher: log.publisher.clone(),
                kind: "subscriber",
                subscriptions: 0,
                events: log.added.load(Ordering::Relaxed) as i64,
                refreshes: 0,
                active: i64::from(running),
                dropped: counters.iter().map(|(_, n)| *n as i64).sum(),
                dropped_reasons: crate::publisher::reasons(&counters),
            });
        }
        out
    }
}
