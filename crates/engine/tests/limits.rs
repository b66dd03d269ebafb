//! Per-query limits: a wall-clock timeout and a memory budget that stop the query, not
//! the process, with the reason. This test binary installs the counting allocator the
//! programs use, so the generators' Rust allocations count as well as SQLite's.

use oxquery_engine::{Engine, EngineError, Limits, instance};
use oxquery_table::memory::CountingAllocator;
use oxquery_table::{
    Attributes, Column, ColumnOptions, ColumnType, Host, QueryContext, Registry, Rows, StopReason,
    Table, TableResult, TableSpec, Value,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::SYSTEM;

const MIB: u64 = 1 << 20;

/// Rows of one megabyte each, endlessly, checking for a stop before each.
struct Megabytes {
    spec: TableSpec,
}

impl Table for Megabytes {
    fn spec(&self) -> &TableSpec {
        &self.spec
    }
    fn generate(&self, ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
        loop {
            ctx.check()?;
            rows.row().set(0usize, "x".repeat(MIB as usize));
        }
    }
}

fn engine() -> Engine {
    let table = Arc::new(Megabytes {
        spec: TableSpec::new(
            "megabytes".to_owned(),
            "Endless rows of 1 MiB.",
            vec![Column::new(
                "blob",
                ColumnType::Text,
                ColumnOptions::empty(),
                "1 MiB of x",
            )],
            Attributes::NONE,
        ),
    });
    Engine::open(Host {
        instance: instance::current(None),
        tables: Registry::with_tables(vec![table as Arc<dyn Table>]).unwrap(),
        ..Host::default()
    })
    .unwrap()
}

fn budget(bytes: u64) -> Limits {
    Limits {
        timeout: None,
        memory: Some(bytes),
    }
}

/// Doubles a `group_concat` buffer up to a gigabyte: SQLite's own memory.
const SQLITE_HOG: &str = "SELECT length(group_concat(randomblob(1000000))) FROM \
     (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) \
     SELECT x FROM c)";

#[test]
fn sqlite_memory_over_the_budget_stops_the_query_before_it_is_allocated() {
    assert!(oxquery_engine::account_sqlite_memory());
    let engine = engine();
    let limit = 64 * MIB;
    let err = engine.query_limited(SQLITE_HOG, budget(limit)).unwrap_err();
    assert!(
        matches!(err, EngineError::Stopped(StopReason::Memory)),
        "{err:?}"
    );
    assert!(err.to_string().contains("memory budget"), "{err}");
    // SQLite's allocations are refused at the budget, so the peak stays under it; the
    // buffer grew by doubling, so it got past half of it.
    let peak = engine.last_peak_memory();
    assert!(peak <= limit && peak > limit / 4, "peak {peak}");
    // The engine carries on, with and without a budget.
    let ok = engine
        .query_limited("SELECT length(randomblob(1000000))", budget(limit))
        .unwrap();
    assert_eq!(ok.rows[0][0], Value::Integer(1_000_000));
    assert!(engine.last_peak_memory() >= 1_000_000);
    assert!(engine.query("SELECT 1").is_ok());
}

#[test]
fn rows_a_generator_builds_count_against_the_budget() {
    let engine = engine();
    let limit = 32 * MIB;
    let mut kept = Vec::new();
    // The rows the caller keeps are the query's memory too.
    let err = engine
        .for_each_row_limited("SELECT blob FROM megabytes", budget(limit), |row| {
            kept.push(row.to_vec());
            std::ops::ControlFlow::Continue(())
        })
        .unwrap_err();
    assert_eq!(err.stop_reason(), Some(StopReason::Memory), "{err}");
    let peak = engine.last_peak_memory();
    // Checked before each row: stopped within a few rows of the budget.
    assert!(peak > limit && peak < limit + 16 * MIB, "peak {peak}");
    assert!(!kept.is_empty());
    drop(kept);
    // Without a budget a small query reports what it used.
    engine
        .query_limited("SELECT blob FROM megabytes LIMIT 2", Limits::default())
        .unwrap();
    assert!(engine.last_peak_memory() >= 2 * MIB);
}

#[test]
fn a_timeout_stops_the_query_with_its_reason() {
    let engine = engine();
    let limits = Limits {
        timeout: Some(Duration::from_millis(200)),
        memory: None,
    };
    let start = Instant::now();
    let err = engine
        .query_limited(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
             SELECT count(*) FROM c",
            limits,
        )
        .unwrap_err();
    assert_eq!(err.stop_reason(), Some(StopReason::Deadline), "{err}");
    assert!(start.elapsed() >= Duration::from_millis(200));
    // A limit does not outlive its query.
    assert!(engine.query("SELECT length(randomblob(100000))").is_ok());
}
