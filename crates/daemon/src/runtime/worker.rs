//! Query workers: each thread owns an engine (SQLite connections are not shared) and
//! runs the jobs the scheduler hands it: query, diff against the store, record state and
//! log lines together, update the statistics.

use super::{Daemon, unix_now};
use crate::config::{self, ProgramTables, ScheduledQuery};
use crate::item::{Decorations, Row};
use crate::logger::format_item;
use crate::outbox::{self, Lines};
use crate::results::{self, EncodedRows, RowsBuilder, Run, performance};
use crate::usage::{peak_resident_bytes, resident_bytes, thread_cpu};
use oxquery_engine::{CancelHandle, Engine, EngineError, Limits, TableFilter};
use oxquery_table::{InstanceInfo, StopReason};
use std::cell::Cell;
use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One scheduled run.
#[derive(Debug, Clone)]
pub(super) struct Job {
    name: String,
    sql: String,
    snapshot: bool,
    removed: bool,
    query: ScheduledQuery,
    always: Vec<String>,
}

impl From<&ScheduledQuery> for Job {
    fn from(q: &ScheduledQuery) -> Job {
        Job {
            name: q.name.clone(),
            sql: q.query.clone(),
            snapshot: q.snapshot,
            removed: q.removed,
            query: q.clone(),
            always: Vec::new(),
        }
    }
}

/// The worker pool.
pub(super) struct Workers {
    sender: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// Queries queued or running: a query is never run twice at once.
    busy: Arc<Mutex<HashSet<String>>>,
    /// Each worker engine's handle to stop its running query.
    cancels: Vec<CancelHandle>,
    /// Which queries are running (rather than queued).
    daemon: Daemon,
}

impl Workers {
    pub(super) fn start(
        count: usize,
        daemon: &Daemon,
        tables: &ProgramTables,
        filter: &TableFilter,
        instance: &InstanceInfo,
    ) -> Result<Workers, oxquery_engine::EngineError> {
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let busy = Arc::new(Mutex::new(HashSet::new()));
        let mut threads = Vec::with_capacity(count);
        let mut cancels = Vec::with_capacity(count);
        for i in 0..count {
            let mut engine = tables.engine(filter, instance.clone(), Arc::clone(&daemon.live))?;
            engine.set_scan_cache(daemon.scan_cache.clone());
            cancels.push(engine.cancel_handle());
            let daemon = daemon.clone();
            let receiver = Arc::clone(&receiver);
            let busy = Arc::clone(&busy);
            let thread = std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || worker_loop(&daemon, &mut engine, &receiver, &busy))
                .expect("spawning a query worker");
            threads.push(thread);
        }
        Ok(Workers {
            sender: Some(sender),
            threads,
            busy,
            cancels,
            daemon: daemon.clone(),
        })
    }

    /// Queues `job` unless the same query is still queued or running, saying which.
    pub(super) fn submit(&self, mut job: Job, always: &[String]) {
        {
            let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
            if !busy.insert(job.name.clone()) {
                if self.daemon.is_executing(&job.name) {
                    log::info!(
                        "Scheduled query {} is still running; skipping this turn",
                        job.name
                    );
                } else {
                    log::info!(
                        "Scheduled query {} is still waiting for a free worker; skipping this turn",
                        job.name
                    );
                }
                return;
            }
        }
        job.always = always.to_vec();
        if let Some(sender) = &self.sender {
            let _ = sender.send(job);
        }
    }

    /// Stops the workers: queued jobs are dropped, running queries cancelled. Waits for
    /// them at most `within` (osquery's `--alarm_timeout`): a worker stuck where no
    /// cancellation reaches (a blocking system call) is left behind, and the process
    /// exits without it. Returns how many workers did not stop in time.
    pub(super) fn shutdown(mut self, within: Duration) -> usize {
        self.sender = None;
        for handle in &self.cancels {
            handle.cancel();
        }
        let deadline = Instant::now() + within;
        while Instant::now() < deadline && !self.threads.iter().all(|t| t.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut stuck = 0;
        for t in self.threads.drain(..) {
            if t.is_finished() {
                let _ = t.join();
            } else {
                stuck += 1;
            }
        }
        if stuck > 0 {
            log::warn!(
                "{stuck} query worker(s) did not stop within {} s (--alarm_timeout); exiting without them",
                within.as_secs()
            );
        }
        stuck
    }
}

fn worker_loop(
    daemon: &Daemon,
    engine: &mut Engine,
    receiver: &Mutex<Receiver<Job>>,
    busy: &Mutex<HashSet<String>>,
) {
    let mut views_seen = 0;
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(|p| p.into_inner());
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if daemon.stop.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        {
            let views = daemon.views.read().unwrap_or_else(|p| p.into_inner());
            if views.generation != views_seen {
                super::apply_config_objects(engine, &views);
                views_seen = views.generation;
            }
        }
        execute(daemon, engine, &job);
        busy.lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&job.name);
    }
}

/// `--malloc_trim_threshold`: after a query, when the process's resident memory
/// (`resident`, bytes) is over `threshold`, hands the heaps' free memory back to the
/// system (both allocators keep freed memory for reuse, so a query's peak would
/// otherwise stay resident). Returns whether it trimmed.
fn trim_heap_above(threshold: u64, resident: u64) -> bool {
    if resident <= threshold {
        return false;
    }
    // SAFETY: malloc_trim only walks glibc's own arenas (SQLite's heap); 0 keeps no
    // padding.
    unsafe { libc::malloc_trim(0) };
    // The programs' heap is mimalloc's (`oxquery::ProgramAllocator`): `force` frees this
    // thread's empty pages and purges the memory its arenas hold free (every thread's)
    // now, not after its delay.
    // A program on another allocator has an empty mimalloc, and this does nothing.
    // SAFETY: mi_collect takes no pointers and may be called from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
    log::debug!(
        "Resident memory {} MB is over --malloc_trim_threshold ({} MB): returned free \
         heap memory to the system, now {} MB",
        resident / 1_000_000,
        threshold / 1_000_000,
        resident_bytes() / 1_000_000
    );
    true
}

/// The limits a run of `job` is under (its config's, else the flags' defaults).
fn limits_of(job: &Job) -> Limits {
    Limits {
        timeout: (job.query.timeout > 0).then(|| Duration::from_secs(job.query.timeout)),
        memory: (job.query.memory_limit > 0).then(|| job.query.memory_limit.saturating_mul(MIB)),
    }
}

const MIB: u64 = 1 << 20;

/// Says which query was stopped, by which limit, and the figures. A stopped run logs
/// no results and leaves the stored state (and event marks) as they were.
fn log_stop(job: &Job, reason: StopReason, elapsed: Duration, peak: u64) {
    let name = &job.name;
    let ms = elapsed.as_millis();
    let peak_mib = peak as f64 / MIB as f64;
    match reason {
        StopReason::Deadline => log::warn!(
            "Scheduled query {name} stopped: it ran past its timeout of {} s (after {ms} ms, peak memory {peak_mib:.1} MiB); no results logged. Raise its \"timeout\" or --schedule_query_timeout if it needs longer",
            job.query.timeout
        ),
        StopReason::Memory => log::warn!(
            "Scheduled query {name} stopped: it needed more than its memory budget of {} MiB (peak {peak_mib:.1} MiB, after {ms} ms); no results logged. Raise its \"memory_limit\" or --schedule_query_memory_limit if it needs more",
            job.query.memory_limit
        ),
        StopReason::Cancelled | StopReason::Closed => log::info!(
            "Scheduled query {name} cancelled after {ms} ms (the daemon is stopping); no results logged"
        ),
    }
}

fn execute(daemon: &Daemon, engine: &Engine, job: &Job) {
    let unix_time = unix_now();
    let started = Instant::now();
    let (user0, system0) = thread_cpu();
    let memory0 = resident_bytes();
    let output_size = Cell::new(0u64);
    let limits = limits_of(job);
    let mut row_count = 0u64;
    // Read right after the query: the `always` decorators run queries on this engine.
    let peak_memory;
    let run_settings = daemon.run_settings();
    daemon.start_executing(&job.name);
    // osquery's messages: the SQL at verbose, else the name with --schedule_lognames.
    if log::log_enabled!(log::Level::Debug) {
        log::debug!("Executing scheduled query {}: {}", job.name, job.sql);
    } else if run_settings.lognames {
        log::info!("Executing scheduled query {}", job.name);
    }
    // The query's scans of cacheable tables may reuse what another scheduled run stored
    // within its interval (osquery's cache step and interval), unless
    // --disable_caching; the `always` decorators that follow never do.
    engine.set_cache_step(
        (!run_settings.disable_caching).then(|| oxquery_engine::CacheStep {
            step: u64::try_from(unix_time).unwrap_or(0),
            interval: job.query.splayed_interval.max(1),
        }),
    );
    // Evented tables read only the events after this query's marks, and say how far
    // they read; the marks are stored with the results.
    let run = engine.query_run();
    run.begin(&job.name);
    let failure: Option<EngineError> = if job.snapshot {
        let result = engine.query_limited(&job.sql, limits);
        peak_memory = engine.last_peak_memory();
        engine.set_cache_step(None);
        let marks = run.end().unwrap_or_default();
        match result {
            Ok(r) => {
                row_count = r.rows.len() as u64;
                let rows = r
                    .rows
                    .into_iter()
                    .map(|values| r.columns.iter().cloned().zip(values).collect())
                    .collect();
                let events = event_marks(&job.name, marks);
                record_snapshot(daemon, engine, job, rows, unix_time, events, &output_size);
                None
            }
            Err(e) => Some(e),
        }
    } else {
        // Each row is escaped and encoded as SQLite produces it: the result exists once,
        // in its stored form, never as a map per row.
        let mut rows = RowsBuilder::new();
        let result = engine.for_each_row_limited(&job.sql, limits, |values| {
            rows.push(values);
            row_count += 1;
            ControlFlow::Continue(())
        });
        peak_memory = engine.last_peak_memory();
        engine.set_cache_step(None);
        let marks = run.end().unwrap_or_default();
        match result {
            Ok(columns) => {
                let current = rows.finish(&columns);
                let queried = started.elapsed();
                let evented = marks.evented;
                let events = event_marks(&job.name, marks);
                record_differential(
                    daemon,
                    engine,
                    (job, evented),
                    current,
                    unix_time,
                    events,
                    &output_size,
                );
                log::debug!(
                    "Scheduled query {}: ran in {} ms, recorded in {} ms",
                    job.name,
                    queried.as_millis(),
                    (started.elapsed() - queried).as_millis()
                );
                None
            }
            // As osquery: a failed run (an SQL error, or the statement interrupted at
            // shutdown) is not an empty result; diffing it would log every row removed.
            Err(e) => Some(e),
        }
    };
    let stop = failure.as_ref().and_then(EngineError::stop_reason);
    match (&failure, stop) {
        (Some(_), Some(reason)) => log_stop(job, reason, started.elapsed(), peak_memory),
        (Some(e), None) => log::error!("Error executing scheduled query {}: {e}", job.name),
        (None, _) => {}
    }
    let (user1, system1) = thread_cpu();
    let memory1 = resident_bytes();
    let execution = performance::Execution {
        unix_time,
        wall_time: started.elapsed(),
        user_time: user1.saturating_sub(user0),
        system_time: system1.saturating_sub(system0),
        memory: memory1.saturating_sub(memory0),
        output_size: output_size.get(),
        rows: row_count,
        peak_memory,
        stop,
    };
    if let Some(monitor) = &daemon.monitor {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        monitor.record_run(
            &job.query.pack,
            &job.name,
            &crate::monitoring::RunFigures {
                wall_ms: ms(execution.wall_time),
                user_ms: ms(execution.user_time),
                system_ms: ms(execution.system_time),
                memory_increase: execution.memory,
                memory_peak: peak_resident_bytes(),
                rows: row_count,
                succeeded: failure.is_none(),
            },
        );
    }
    if let Some(threshold) = run_settings.malloc_trim_above {
        trim_heap_above(threshold, memory1);
    }
    let mut store = daemon.lock_store();
    let perf = performance::record_execution(&mut store, &job.name, &execution);
    drop(store);
    match perf {
        Ok(perf) => {
            // It just ran, so it is not deny-listed.
            let entry = super::schedule::entry(&job.query, &perf, false);
            let mut live = daemon.live.write().unwrap_or_else(|p| p.into_inner());
            if let Some(slot) = live.schedule.iter_mut().find(|e| e.name == job.name) {
                *slot = entry;
            }
        }
        Err(e) => log::warn!("Cannot record statistics of {}: {e}", job.name),
    }
    daemon.finish_executing(&job.name);
}

/// The run's facts besides its rows: time, epoch and decorations (the `always`
/// decorators run now, on this worker's engine).
fn run_facts(daemon: &Daemon, engine: &Engine, job: &Job, unix_time: i64, epoch: u64) -> Run {
    let mut decorations: Decorations = daemon
        .decorations
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if !job.always.is_empty() && !daemon.run_settings().disable_decorators {
        config::run_decorators(
            &job.always,
            &mut |sql| engine.query(sql).map_err(|e| e.to_string()),
            &mut decorations,
        );
    }
    Run {
        unix_time,
        epoch,
        decorations,
    }
}

fn query_of(job: &Job, evented: bool) -> results::ScheduledQuery<'_> {
    results::ScheduledQuery {
        name: &job.name,
        sql: &job.sql,
        snapshot: job.snapshot,
        removed: job.removed,
        evented,
    }
}

/// The store keys and event ids of what a run's evented scans read.
fn event_marks(query: &str, marks: oxquery_table::RunMarks) -> Vec<(String, u64)> {
    marks
        .read_through
        .into_iter()
        .map(|(subscriber, eid)| (oxquery_events::EventHub::mark_key(query, &subscriber), eid))
        .collect()
}

/// Diffs `current` against the stored rows and records the new state with its log
/// lines. The store is locked twice, briefly: to read the previous state and to write the
/// new one; the diff and the formatting happen in between, without it. A run of the same
/// query cannot overlap (the scheduler's busy set), and the write re-checks the counter.
fn record_differential(
    daemon: &Daemon,
    engine: &Engine,
    (job, evented): (&Job, bool),
    current: EncodedRows,
    unix_time: i64,
    event_marks: Vec<(String, u64)>,
    output_size: &Cell<u64>,
) {
    let settings = daemon.result_settings();
    let run = run_facts(daemon, engine, job, unix_time, settings.epoch);
    let stored = results::Stored::load(&daemon.lock_store(), &job.name);
    let stored = match stored {
        Ok(stored) => stored,
        Err(e) => {
            log::error!("Cannot read the results of {}: {e}", job.name);
            return;
        }
    };
    let loaded = Instant::now();
    let changes = results::changes(&query_of(job, evented), current, stored, run);
    let diffed = Instant::now();
    let mut lines = if settings.disable_logging {
        Lines::new()
    } else {
        changes.lines(
            |item| format_item(item, &settings.format),
            settings.format.event_type,
        )
    };
    lines.finish();
    output_size.set(lines.output_size());
    let state = changes.into_state().with_event_marks(event_marks);
    let formatted = Instant::now();
    write(daemon, job, &state, &lines);
    log::debug!(
        "Results of {}: diff {} ms, {} lines formatted in {} ms, written in {} ms",
        job.name,
        (diffed - loaded).as_millis(),
        lines.len(),
        (formatted - diffed).as_millis(),
        formatted.elapsed().as_millis()
    );
}

/// Formats a snapshot's lines, then records them.
fn record_snapshot(
    daemon: &Daemon,
    engine: &Engine,
    job: &Job,
    rows: Vec<Row>,
    unix_time: i64,
    event_marks: Vec<(String, u64)>,
    output_size: &Cell<u64>,
) {
    let settings = daemon.result_settings();
    let run = run_facts(daemon, engine, job, unix_time, settings.epoch);
    let outcome = results::snapshot(&query_of(job, false), rows, run);
    let mut lines = Lines::new();
    if !settings.disable_logging
        && let Some(item) = &outcome.item
    {
        lines.extend(format_item(item, &settings.format));
    }
    lines.finish();
    output_size.set(lines.output_size());
    let state = outcome.state.with_event_marks(event_marks);
    write(daemon, job, &state, &lines);
}

/// The one write of a run: new state and lines in one transaction.
fn write(daemon: &Daemon, job: &Job, state: &results::StateUpdate, lines: &Lines) {
    let recorded = outbox::record_lines(&mut daemon.lock_store(), state, lines);
    match recorded {
        Ok(n) if n > 0 => daemon.wake_logger(),
        Ok(_) => {}
        Err(e) => log::error!("Cannot record the results of {}: {e}", job.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heap_is_trimmed_only_over_the_threshold() {
        let resident = resident_bytes();
        assert!(resident > 0);
        assert!(!trim_heap_above(resident, resident));
        assert!(!trim_heap_above(u64::MAX, resident));
        assert!(trim_heap_above(resident - 1, resident));
        assert!(peak_resident_bytes() >= resident / 2);
    }
}
