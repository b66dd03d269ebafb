//! What the scheduler's flags change in the engine: osquery's table cache for scheduled
//! runs (`cacheable` tables, `--disable_caching` by never setting a step) and
//! `--table_delay` between repeated scans of a table in one query.

use oxquery_engine::{CacheStep, Engine, ScanCache, instance};
use oxquery_table::{
    Attributes, Column, ColumnOptions, ColumnType, Host, QueryContext, Registry, Rows, Table,
    TableResult, TableSettings, TableSpec, Value,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rows `(id, generation)`: `generation` counts calls, so a reused row shows an old one.
struct Generations {
    spec: TableSpec,
    calls: AtomicUsize,
    started: Mutex<Vec<Instant>>,
    rows: i64,
}

impl Generations {
    fn new(name: &str, attributes: Attributes) -> Arc<Generations> {
        Arc::new(Generations {
            spec: TableSpec::new(
                name.to_owned(),
                "Counts its generations.",
                vec![
                    Column::new("id", ColumnType::BigInt, ColumnOptions::INDEX, "id"),
                    Column::new(
                        "generation",
                        ColumnType::BigInt,
                        ColumnOptions::empty(),
                        "g",
                    ),
                    Column::new("extra", ColumnType::Text, ColumnOptions::empty(), "x"),
                ],
                attributes,
            ),
            calls: AtomicUsize::new(0),
            started: Mutex::new(Vec::new()),
            rows: 3,
        })
    }
    fn with_rows(name: &str, rows: i64) -> Arc<Generations> {
        let mut t = Arc::into_inner(Generations::new(name, Attributes::CACHEABLE)).unwrap();
        t.rows = rows;
        Arc::new(t)
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Table for Generations {
    fn spec(&self) -> &TableSpec {
        &self.spec
    }
    fn generate(&self, ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
        self.started.lock().unwrap().push(Instant::now());
        let generation = self.calls.fetch_add(1, Ordering::SeqCst) as i64 + 1;
        for id in 0..self.rows {
            ctx.check()?;
            let mut row = rows.row();
            row.set(0usize, id);
            row.set(1usize, generation);
            row.set(2usize, format!("x{id}"));
        }
        Ok(())
    }
}

fn engine_with(tables: Vec<Arc<dyn Table>>) -> Engine {
    let registry = Registry::with_tables(tables).unwrap();
    Engine::open(Host {
        instance: instance::current(None),
        tables: registry,
        ..Host::default()
    })
    .unwrap()
}

fn generations(engine: &Engine, sql: &str) -> Vec<i64> {
    engine
        .query(sql)
        .unwrap()
        .rows
        .into_iter()
        .map(|r| match r[0] {
            Value::Integer(g) => g,
            ref other => panic!("{other:?}"),
        })
        .collect()
}

const ALL: &str = "SELECT generation FROM t";

#[test]
fn a_scheduled_run_reuses_a_cacheable_tables_rows_within_the_storing_interval() {
    let t = Generations::new("t", Attributes::CACHEABLE);
    let engine = engine_with(vec![t.clone()]);
    // Not a scheduled run (the shell, decorators): never cached.
    assert_eq!(generations(&engine, ALL), [1, 1, 1]);
    assert_eq!(generations(&engine, ALL), [2, 2, 2]);

    engine.set_cache_step(Some(CacheStep {
        step: 1000,
        interval: 60,
    }));
    assert_eq!(generations(&engine, ALL), [3, 3, 3], "stored");
    engine.set_cache_step(Some(CacheStep {
        step: 1059,
        interval: 10,
    }));
    assert_eq!(generations(&engine, ALL), [3, 3, 3], "reused");
    assert_eq!(
        generations(&engine, "SELECT generation FROM t WHERE generation > 2"),
        [3, 3, 3],
        "a constraint SQLite checks itself still reuses"
    );
    assert_eq!(t.calls(), 3);
    // A constraint the generator sees (an INDEX column) always generates.
    assert_eq!(
        generations(&engine, "SELECT generation FROM t WHERE id = 1"),
        [4]
    );
    // Past the storing run's step + interval: generated (and stored) again.
    engine.set_cache_step(Some(CacheStep {
        step: 1060,
        interval: 60,
    }));
    assert_eq!(generations(&engine, ALL), [5, 5, 5]);
    engine.set_cache_step(Some(CacheStep {
        step: 1061,
        interval: 60,
    }));
    assert_eq!(generations(&engine, ALL), [5, 5, 5]);
    // Back to ordinary queries.
    engine.set_cache_step(None);
    assert_eq!(generations(&engine, ALL), [6, 6, 6]);
}

#[test]
fn only_cacheable_tables_and_complete_scans_with_the_columns_needed_are_cached() {
    let plain = Generations::new("t", Attributes::NONE);
    let engine = engine_with(vec![plain.clone()]);
    engine.set_cache_step(Some(CacheStep {
        step: 1,
        interval: 3600,
    }));
    assert_eq!(generations(&engine, ALL), [1, 1, 1]);
    assert_eq!(generations(&engine, ALL), [2, 2, 2], "not cacheable");

    let t = Generations::new("t", Attributes::CACHEABLE);
    let engine = engine_with(vec![t.clone()]);
    engine.set_cache_step(Some(CacheStep {
        step: 1,
        interval: 3600,
    }));
    // A LIMIT that leaves the generator done (its rows fit one batch) still stores.
    assert_eq!(
        generations(&engine, "SELECT generation FROM t LIMIT 1"),
        [1]
    );
    assert_eq!(generations(&engine, ALL), [1, 1, 1]);
    // The stored scan computed `generation` only; `extra` needs a new scan.
    let r = engine.query("SELECT generation, extra FROM t").unwrap();
    assert_eq!(r.rows[0], [Value::Integer(2), Value::Text("x0".into())]);
    assert_eq!(generations(&engine, ALL), [2, 2, 2]);

    // A scan cut short by a LIMIT (the generator stopped between batches): not stored.
    let long = Generations::with_rows("t", 10_000);
    let engine = engine_with(vec![long.clone()]);
    engine.set_cache_step(Some(CacheStep {
        step: 1,
        interval: 3600,
    }));
    assert_eq!(
        generations(&engine, "SELECT generation FROM t LIMIT 1"),
        [1]
    );
    let all = generations(&engine, ALL);
    assert_eq!((all.len(), all[0]), (10_000, 2), "generated again, in full");
    let again = generations(&engine, ALL);
    assert_eq!((again.len(), again[9_999]), (10_000, 2), "and reused");
    assert_eq!(long.calls(), 2);
}

#[test]
fn engines_given_one_cache_share_it() {
    let t = Generations::new("t", Attributes::CACHEABLE);
    let a = engine_with(vec![t.clone()]);
    let b = engine_with(vec![t.clone()]);
    let cache = ScanCache::default();
    a.set_scan_cache(cache.clone());
    b.set_scan_cache(cache.clone());
    let at = Some(CacheStep {
        step: 50,
        interval: 60,
    });
    a.set_cache_step(at);
    b.set_cache_step(at);
    assert_eq!(generations(&a, ALL), [1, 1, 1]);
    assert_eq!(generations(&b, ALL), [1, 1, 1]);
    assert_eq!(cache.len(), 1);
    // An engine with a cache of its own does not see it.
    let c = engine_with(vec![t.clone()]);
    c.set_cache_step(at);
    assert_eq!(generations(&c, ALL), [2, 2, 2]);
}

#[test]
fn table_delay_waits_before_each_further_scan_of_a_table_in_one_query() {
    let t = Generations::new("t", Attributes::NONE);
    let engine = engine_with(vec![t.clone()]);
    let delay = Duration::from_millis(150);
    engine.set_settings(TableSettings {
        table_delay_ms: delay.as_millis() as u64,
        ..TableSettings::DEFAULT
    });
    // The inner side of this join is scanned once per outer row (an INDEX constraint).
    let r = engine
        .query("SELECT a.id, b.id FROM t AS a JOIN t AS b ON b.id = a.id")
        .unwrap();
    assert_eq!(r.rows.len(), 3);
    let started = t.started.lock().unwrap().clone();
    assert_eq!(started.len(), 4, "one outer scan, three inner ones");
    // A sleep never ends early: each further scan started at least `delay` after the
    // one before it.
    for pair in started.windows(2) {
        assert!(pair[1] - pair[0] >= delay, "{:?}", pair[1] - pair[0]);
    }
    // A new query starts with no table scanned.
    t.started.lock().unwrap().clear();
    engine.query("SELECT id FROM t").unwrap();
    engine.query("SELECT id FROM t").unwrap();
    assert_eq!(t.started.lock().unwrap().len(), 2);
}
