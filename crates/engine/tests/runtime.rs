//! The engine while it runs: rows stream to SQLite (a `LIMIT` stops the generator),
//! tables come and go through the registry, and queries stop at their deadline or when
//! cancelled from another thread.

use oxquery_engine::{Engine, EngineError, instance};
use oxquery_table::{
    Attributes, Column, ColumnOptions, ColumnType, Host, QueryContext, Registry, Rows, StopReason,
    Table, TableError, TableResult, TableSpec, Value,
};
use oxquery_test_support::wait_until;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts 0..limit, checking for a stop before every row; records how far it got.
struct Counter {
    spec: TableSpec,
    limit: u64,
    produced: AtomicUsize,
    saw_stop: AtomicBool,
}

impl Counter {
    fn new(name: &str, limit: u64) -> Arc<Counter> {
        Arc::new(Counter {
            spec: TableSpec::new(
                name.to_owned(),
                "Counts.",
                vec![Column::new(
                    "n",
                    ColumnType::BigInt,
                    ColumnOptions::empty(),
                    "n",
                )],
                Attributes::NONE,
            ),
            limit,
            produced: AtomicUsize::new(0),
            saw_stop: AtomicBool::new(false),
        })
    }
}

impl Table for Counter {
    fn spec(&self) -> &TableSpec {
        &self.spec
    }
    fn generate(&self, ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
        for n in 0..self.limit {
            if let Err(e) = ctx.check() {
                self.saw_stop.store(true, Ordering::SeqCst);
                return Err(e);
            }
            rows.row().set(0usize, n as i64);
            self.produced.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

fn engine_with(tables: Vec<Arc<dyn Table>>) -> (Engine, Registry) {
    let registry = Registry::with_tables(tables).unwrap();
    let engine = Engine::open(Host {
        instance: instance::current(None),
        tables: registry.clone(),
        ..Host::default()
    })
    .unwrap();
    (engine, registry)
}

fn error_code(e: &EngineError) -> Option<i32> {
    match e {
        EngineError::Sqlite(e) => e.sqlite_error().map(|f| f.extended_code),
        // What SQLite reported as SQLITE_INTERRUPT (or NOMEM, for a budget), with why.
        EngineError::Stopped(_) => Some(9),
        _ => None,
    }
}

#[test]
fn a_limit_stops_the_generator_after_its_first_batch() {
    let counter = Counter::new("counter", 10_000_000);
    let (engine, _) = engine_with(vec![counter.clone()]);
    let r = engine.query("SELECT n FROM counter LIMIT 3").unwrap();
    assert_eq!(r.rows, [0, 1, 2].map(|n| vec![Value::Integer(n)]).to_vec());
    let produced = counter.produced.load(Ordering::SeqCst);
    assert!(produced <= 17, "made {produced} rows for LIMIT 3");
    assert!(counter.saw_stop.load(Ordering::SeqCst));
}

#[test]
fn a_long_result_streams_through_every_batch() {
    let counter = Counter::new("counter", 100_000);
    let (engine, _) = engine_with(vec![counter.clone()]);
    let r = engine
        .query("SELECT count(*), sum(n), min(n), max(n) FROM counter")
        .unwrap();
    assert_eq!(
        r.rows[0],
        [
            Value::Integer(100_000),
            Value::Integer(4_999_950_000),
            Value::Integer(0),
            Value::Integer(99_999)
        ]
    );
    assert!(!counter.saw_stop.load(Ordering::SeqCst));
    // Nested scans (a join runs the inner scan once per outer row) each stream too.
    let small = Counter::new("small", 40);
    let (engine, _) = engine_with(vec![small.clone(), Counter::new("other", 50)]);
    let r = engine
        .query("SELECT count(*) FROM small a JOIN other b ON b.n = a.n")
        .unwrap();
    assert_eq!(r.rows[0][0], Value::Integer(40));
}

#[test]
fn tables_registered_and_removed_at_run_time_follow_at_once() {
    let (engine, registry) = engine_with(vec![Counter::new("first", 2)]);
    assert_eq!(
        engine.query("SELECT count(*) FROM first").unwrap().rows[0][0],
        Value::Integer(2)
    );
    let err = engine.query("SELECT * FROM later").unwrap_err();
    assert!(err.to_string().contains("no such table: later"), "{err}");

    registry
        .add(Counter::new("later", 5), Default::default())
        .unwrap();
    assert_eq!(
        engine.query("SELECT count(*) FROM later").unwrap().rows[0][0],
        Value::Integer(5)
    );
    let info = engine.query("PRAGMA table_xinfo(later)").unwrap();
    assert_eq!(info.rows[0][1], Value::from("n"));
    assert_eq!(info.rows[0][2], Value::from("BIGINT"));
    let names: Vec<String> = engine
        .tables()
        .iter()
        .map(|t| t.spec().name.to_string())
        .collect();
    assert_eq!(names, ["first", "later"]);

    // Replaced with a different schema: the new one is what SQLite sees.
    let replacement = Arc::new(Counter {
        spec: TableSpec::new(
            "later",
            "Counts, with another column name.",
            vec![Column::new(
                "m",
                ColumnType::Integer,
                ColumnOptions::empty(),
                "m",
            )],
            Attributes::NONE,
        ),
        limit: 7,
        produced: AtomicUsize::new(0),
        saw_stop: AtomicBool::new(false),
    });
    registry.replace(replacement, Default::default());
    assert_eq!(
        engine.query("SELECT count(m) FROM later").unwrap().rows[0][0],
        Value::Integer(7)
    );

    assert!(registry.remove("later").is_some());
    let err = engine.query("SELECT count(*) FROM later").unwrap_err();
    assert!(err.to_string().contains("no such table: later"), "{err}");
    assert!(
        engine
            .query("PRAGMA table_xinfo(later)")
            .unwrap()
            .rows
            .is_empty()
    );
}

#[test]
fn removing_a_table_while_a_statement_reads_it_is_safe() {
    let counter = Counter::new("busy", 1000);
    let (engine, registry) = engine_with(vec![counter.clone()]);
    let mut read = 0_i64;
    engine
        .for_each_row("SELECT n FROM busy", |row| {
            assert_eq!(row[0], Value::Integer(read));
            read += 1;
            if read == 10 {
                // The registry drops the table mid-scan; the engine defers its own change
                // until no statement runs, and the scan keeps its table.
                registry.remove("busy");
                assert!(
                    engine.table("busy").is_some(),
                    "still attached while a statement runs"
                );
            }
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(read, 1000);
    assert!(engine.table("busy").is_none());
    assert!(engine.query("SELECT * FROM busy").is_err());
}

/// Generates nothing, forever, until stopped; sets its flag when it starts.
struct Spinner(TableSpec, Arc<AtomicBool>);

impl Table for Spinner {
    fn spec(&self) -> &TableSpec {
        &self.0
    }
    fn generate(&self, ctx: &QueryContext<'_>, _: &mut Rows<'_>) -> TableResult {
        self.1.store(true, Ordering::SeqCst);
        loop {
            ctx.check()?;
            std::hint::spin_loop();
        }
    }
}

/// The spinner table and the flag it sets once a query runs it.
fn spinner() -> (Arc<dyn Table>, Arc<AtomicBool>) {
    let started = Arc::new(AtomicBool::new(false));
    let table = Arc::new(Spinner(
        TableSpec::new(
            "spinner",
            "Never ends.",
            vec![Column::new(
                "x",
                ColumnType::Integer,
                ColumnOptions::empty(),
                "x",
            )],
            Attributes::NONE,
        ),
        started.clone(),
    ));
    (table, started)
}

/// The bound: a query stops within 100 ms of its deadline.
const SLACK: Duration = Duration::from_millis(100);

#[test]
fn a_recursive_query_stops_at_its_deadline() {
    let (engine, _) = engine_with(vec![]);
    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    let err = engine
        .query_until(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
             SELECT count(*) FROM c",
            Some(start + timeout),
        )
        .unwrap_err();
    let elapsed = start.elapsed();
    assert_eq!(error_code(&err), Some(9), "SQLITE_INTERRUPT: {err}");
    assert!(elapsed >= timeout, "stopped early: {elapsed:?}");
    assert!(elapsed < timeout + SLACK, "stopped {elapsed:?} after start");
    // The next query runs normally.
    assert_eq!(
        engine.query("SELECT 1").unwrap().rows[0][0],
        Value::Integer(1)
    );
}

#[test]
fn a_generator_stops_at_its_deadline() {
    let (engine, _) = engine_with(vec![spinner().0]);
    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    let err = engine
        .query_until("SELECT count(*) FROM spinner", Some(start + timeout))
        .unwrap_err();
    let elapsed = start.elapsed();
    assert_eq!(error_code(&err), Some(9), "{err}");
    assert!(
        err.to_string().contains(&StopReason::Deadline.to_string()),
        "{err}"
    );
    assert!(
        elapsed >= timeout && elapsed < timeout + SLACK,
        "{elapsed:?}"
    );
}

#[test]
fn another_thread_cancels_a_running_query() {
    let (spinner, started) = spinner();
    let (engine, _) = engine_with(vec![spinner]);
    let handle = engine.cancel_handle();
    let canceller = std::thread::spawn(move || {
        // Cancel once the generator runs: a cancel before the query begins is cleared by
        // the query's start.
        let began = wait_until(Duration::from_secs(30), || started.load(Ordering::SeqCst));
        let at = Instant::now();
        handle.cancel();
        assert!(began, "the spinner did not start within 30 s");
        at
    });
    let err = engine.query("SELECT count(*) FROM spinner").unwrap_err();
    let stopped = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    assert!(err.to_string().contains("cancelled"), "{err}");
    assert!(stopped.duration_since(cancelled_at) < SLACK);
    // And SQLite's own loops stop too. Nothing tells when this query has begun, so the
    // other thread cancels every 10 ms until it is over (a cancel that lands before the
    // query begins is cleared by its start).
    let handle = engine.cancel_handle();
    let over = Arc::new(AtomicBool::new(false));
    let canceller = std::thread::spawn({
        let over = over.clone();
        move || {
            while !over.load(Ordering::SeqCst) {
                handle.cancel();
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    });
    let err = engine
        .query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
        .unwrap_err();
    over.store(true, Ordering::SeqCst);
    canceller.join().unwrap();
    assert_eq!(error_code(&err), Some(9), "{err}");
}

#[test]
fn a_stop_is_not_a_table_failure() {
    // A generator returning Interrupted(Closed) after its reader left is not an error.
    let counter = Counter::new("counter", 1_000_000);
    let (engine, _) = engine_with(vec![counter]);
    for _ in 0..50 {
        engine.query("SELECT n FROM counter LIMIT 20").unwrap();
    }
    let e = TableError::Interrupted(StopReason::Closed);
    assert_eq!(e.to_string(), "the query stopped reading");
}
