//! The engine's contract with tables, checked through real SQL: schema text, constraint
//! pushdown, projection, required columns, failure isolation and the authorizer.

use oxquery_engine::{Engine, EngineError, TableFilter, instance};
use oxquery_table::{
    Constraint, Host, Op, QueryContext, Registry, Rows, Table, TableDef, TableError, TableResult,
    TableSpec, Value,
};
use std::sync::{Arc, Mutex};

/// What the scans of an engine's recorded tables were told (the last one's details).
#[derive(Debug, Default, Clone)]
struct Seen {
    scans: usize,
    constraints: Vec<Constraint>,
    used: Vec<usize>,
}

/// A built-in test table whose scans are recorded in its engine's own `Seen`, so tests
/// share no state and run in parallel.
struct Recorded {
    def: &'static TableDef,
    seen: Arc<Mutex<Seen>>,
}

impl Table for Recorded {
    fn spec(&self) -> &TableSpec {
        self.def.spec
    }
    fn generate(&self, ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
        {
            let mut seen = self.seen.lock().unwrap();
            seen.scans += 1;
            seen.constraints = ctx.constraints().to_vec();
            seen.used = ctx.used().iter().collect();
        }
        (self.def.generate)(ctx, rows)
    }
}

mod people {
    use super::*;
    oxquery_table::table! {
        name: "people",
        description: "Test table with an index, a hidden column and aliases.",
        columns: {
            id: BigInt [INDEX] "Identifier",
            name: Text [INDEX] "Name",
            age: Integer [] "Age",
            secret: Text [HIDDEN] "Hidden column",
            version: Text [COLLATE_NOCASE] "Collated column",
            other: Integer [OTHER_PLATFORM] "Declared for another platform",
        },
        column_aliases: { years => age },
        aliases: ["folks"],
    }
    pub(super) fn generate(_: &QueryContext, rows: &mut Rows) -> TableResult {
        for (id, name, age) in [(1, "ann", 31), (2, "bob", 42), (3, "cid", 53)] {
            let mut row = rows.row();
            row.set(Col::id, id);
            row.set(Col::name, name);
            row.set(Col::age, age);
            row.set(Col::secret, format!("s{id}"));
            row.set(Col::version, "V1");
        }
        Ok(())
    }
}

mod needs_path {
    use super::*;
    oxquery_table::table! {
        name: "needs_path",
        description: "Test table with a required column.",
        columns: {
            path: Text [INDEX | REQUIRED] "Path",
            size: BigInt [] "Size",
        },
    }
    pub(super) fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
        for path in ctx.eq_texts(Col::path).unwrap_or_default() {
            let mut row = rows.row();
            row.set(Col::size, path.len() as i64);
            row.set(Col::path, path);
        }
        Ok(())
    }
}

mod additional_only {
    use super::*;
    oxquery_table::table! {
        name: "additional_only",
        description: "Test table keyed by an additional column only.",
        columns: {
            a: Text [] "A",
            b: Integer [ADDITIONAL | HIDDEN] "B",
        },
    }
    pub(super) fn generate(_: &QueryContext, _: &mut Rows) -> TableResult {
        Ok(())
    }
}

mod boom {
    use super::*;
    oxquery_table::table! {
        name: "boom",
        description: "Test table whose generator panics.",
        columns: { x: Integer [] "X" },
    }
    pub(super) fn generate(_: &QueryContext, _: &mut Rows) -> TableResult {
        panic!("deliberate test panic")
    }
}

mod broken {
    use super::*;
    oxquery_table::table! {
        name: "broken",
        description: "Test table whose generator fails.",
        columns: { x: Integer [] "X" },
    }
    pub(super) fn generate(_: &QueryContext, _: &mut Rows) -> TableResult {
        Err(TableError::msg("the device is on fire"))
    }
}

mod wide {
    use super::*;
    oxquery_table::table! {
        name: "wide",
        description: "Test table with more than 64 columns.",
        columns: {
            c0: Integer [] "c", c1: Integer [] "c", c2: Integer [] "c", c3: Integer [] "c",
            c4: Integer [] "c", c5: Integer [] "c", c6: Integer [] "c", c7: Integer [] "c",
            c8: Integer [] "c", c9: Integer [] "c", c10: Integer [] "c", c11: Integer [] "c",
            c12: Integer [] "c", c13: Integer [] "c", c14: Integer [] "c", c15: Integer [] "c",
            c16: Integer [] "c", c17: Integer [] "c", c18: Integer [] "c", c19: Integer [] "c",
            c20: Integer [] "c", c21: Integer [] "c", c22: Integer [] "c", c23: Integer [] "c",
            c24: Integer [] "c", c25: Integer [] "c", c26: Integer [] "c", c27: Integer [] "c",
            c28: Integer [] "c", c29: Integer [] "c", c30: Integer [] "c", c31: Integer [] "c",
            c32: Integer [] "c", c33: Integer [] "c", c34: Integer [] "c", c35: Integer [] "c",
            c36: Integer [] "c", c37: Integer [] "c", c38: Integer [] "c", c39: Integer [] "c",
            c40: Integer [] "c", c41: Integer [] "c", c42: Integer [] "c", c43: Integer [] "c",
            c44: Integer [] "c", c45: Integer [] "c", c46: Integer [] "c", c47: Integer [] "c",
            c48: Integer [] "c", c49: Integer [] "c", c50: Integer [] "c", c51: Integer [] "c",
            c52: Integer [] "c", c53: Integer [] "c", c54: Integer [] "c", c55: Integer [] "c",
            c56: Integer [] "c", c57: Integer [] "c", c58: Integer [] "c", c59: Integer [] "c",
            c60: Integer [] "c", c61: Integer [] "c", c62: Integer [] "c", c63: Integer [] "c",
            c64: Integer [] "c", c65: Integer [] "c", c66: Integer [] "c", c67: Integer [] "c",
        },
    }
    pub(super) fn generate(_: &QueryContext, rows: &mut Rows) -> TableResult {
        let mut row = rows.row();
        for c in 0..68usize {
            row.set(c, c as i64);
        }
        Ok(())
    }
}

/// An engine over the test tables, and what their scans were told.
struct Fixture {
    engine: Engine,
    seen: Arc<Mutex<Seen>>,
}

impl std::ops::Deref for Fixture {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.engine
    }
}

fn engine() -> Fixture {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let defs: [&'static TableDef; 6] = [
        &people::TABLE,
        &needs_path::TABLE,
        &additional_only::TABLE,
        &boom::TABLE,
        &broken::TABLE,
        &wide::TABLE,
    ];
    let tables = defs.into_iter().map(|def| {
        Arc::new(Recorded {
            def,
            seen: Arc::clone(&seen),
        }) as Arc<dyn Table>
    });
    let engine = Engine::open(Host {
        instance: instance::current(None),
        tables: Registry::with_tables(tables).unwrap(),
        ..Host::default()
    })
    .unwrap();
    Fixture { engine, seen }
}

fn seen_after(fixture: &Fixture, sql: &str) -> (Vec<Vec<Value>>, Seen) {
    *fixture.seen.lock().unwrap() = Seen::default();
    let rows = fixture
        .query(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .rows;
    (rows, fixture.seen.lock().unwrap().clone())
}

fn error_of(engine: &Engine, sql: &str) -> (String, Option<i32>) {
    match engine.query(sql) {
        Ok(r) => panic!("{sql} succeeded with {:?}", r.rows),
        Err(EngineError::Sqlite(e)) => {
            let code = e.sqlite_error().map(|f| f.extended_code);
            (e.to_string(), code)
        }
        Err(e) => (e.to_string(), None),
    }
}

#[test]
fn declared_schema_is_osquerys_text() {
    assert_eq!(
        people::SPEC.create_statement(),
        "CREATE TABLE people(`id` BIGINT, `name` TEXT, `age` INTEGER, `secret` TEXT HIDDEN, \
         `version` TEXT COLLATE NOCASE, `other` INTEGER HIDDEN, `years` INTEGER HIDDEN, \
         PRIMARY KEY (`id`, `name`)) WITHOUT ROWID"
    );
    // No INDEX column but an ADDITIONAL one: every column is the key.
    assert_eq!(
        additional_only::SPEC.create_statement(),
        "CREATE TABLE additional_only(`a` TEXT, `b` INTEGER HIDDEN, PRIMARY KEY (`a`, `b`)) WITHOUT ROWID"
    );
    assert_eq!(
        boom::SPEC.create_statement(),
        "CREATE TABLE boom(`x` INTEGER)"
    );
}

#[test]
fn table_xinfo_reports_types_and_hidden_columns() {
    let e = engine();
    let rows = e.query("PRAGMA table_xinfo(people)").unwrap().rows;
    let cols: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| (r[1].to_string(), r[2].to_string(), r[6].as_i64().unwrap()))
        .collect();
    assert_eq!(
        cols,
        [
            ("id", "BIGINT", 0),
            ("name", "TEXT", 0),
            ("age", "INTEGER", 0),
            ("secret", "TEXT", 1),
            ("version", "TEXT", 0),
            ("other", "INTEGER", 1),
            ("years", "INTEGER", 1),
        ]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c))
    );
}

#[test]
fn select_star_skips_hidden_and_values_are_typed() {
    let e = engine();
    let r = e.query("SELECT * FROM people WHERE id = 2").unwrap();
    assert_eq!(r.columns, ["id", "name", "age", "version"]);
    assert_eq!(
        r.rows,
        vec![vec![
            Value::Integer(2),
            Value::Text("bob".into()),
            Value::Integer(42),
            Value::Text("V1".into())
        ]]
    );
    let t = e
        .query("SELECT typeof(id), typeof(name), typeof(other) FROM people LIMIT 1")
        .unwrap();
    assert_eq!(
        t.rows[0],
        ["integer", "text", "null"].map(|s| Value::Text(s.into()))
    );
}

#[test]
fn equality_on_index_column_reaches_the_generator() {
    let e = engine();
    let (rows, seen) = seen_after(&e, "SELECT name FROM people WHERE id = 3");
    assert_eq!(rows, vec![vec![Value::Text("cid".into())]]);
    assert_eq!(
        seen.constraints,
        [Constraint {
            column: 0,
            op: Op::Eq,
            value: Value::Integer(3)
        }]
    );
    // A text literal compared with an integer column gets integer affinity.
    let (_, seen) = seen_after(&e, "SELECT name FROM people WHERE id = '3'");
    assert_eq!(seen.constraints[0].value, Value::Integer(3));
}

#[test]
fn in_list_arrives_all_at_once() {
    let e = engine();
    let (rows, seen) = seen_after(&e, "SELECT id FROM people WHERE id IN (1, 3, 7)");
    assert_eq!(rows.len(), 2);
    assert_eq!(seen.scans, 1);
    let mut values: Vec<i64> = seen
        .constraints
        .iter()
        .map(|c| c.value.as_i64().unwrap())
        .collect();
    values.sort();
    assert_eq!(values, [1, 3, 7]);
    assert!(
        seen.constraints
            .iter()
            .all(|c| c.op == Op::Eq && c.column == 0)
    );
}

#[test]
fn like_is_passed_but_its_derived_ranges_are_not() {
    let e = engine();
    let (rows, seen) = seen_after(&e, "SELECT id FROM people WHERE name LIKE 'b%'");
    assert_eq!(rows, vec![vec![Value::Integer(2)]]);
    assert_eq!(
        seen.constraints,
        [Constraint {
            column: 1,
            op: Op::Like,
            value: Value::Text("b%".into())
        }]
    );
}

#[test]
fn constraints_on_plain_columns_stay_in_sqlite() {
    let e = engine();
    let (rows, seen) = seen_after(&e, "SELECT id FROM people WHERE age > 40");
    assert_eq!(rows.len(), 2);
    assert!(seen.constraints.is_empty(), "{:?}", seen.constraints);
}

#[test]
fn range_on_integer_index_column_is_passed() {
    let e = engine();
    let (rows, seen) = seen_after(&e, "SELECT id FROM people WHERE id > 1");
    assert_eq!(rows.len(), 2);
    assert_eq!(
        seen.constraints,
        [Constraint {
            column: 0,
            op: Op::Gt,
            value: Value::Integer(1)
        }]
    );
}

#[test]
fn generator_learns_only_the_used_columns() {
    let e = engine();
    // SQLite always reports a WITHOUT ROWID table's key columns (`id`, `name`) as used.
    let (_, seen) = seen_after(&e, "SELECT age FROM people");
    assert_eq!(seen.used, [0, 1, 2]);
    let (_, seen) = seen_after(&e, "SELECT name FROM people WHERE age = 42");
    assert_eq!(seen.used, [0, 1, 2]);

    // The alias is read through its target.
    let (rows, seen) = seen_after(&e, "SELECT years FROM people WHERE id = 1");
    assert_eq!(rows, vec![vec![Value::Integer(31)]]);
    assert_eq!(seen.used, [0, 1, 2]);
    assert!(!seen.used.contains(&3), "the hidden column is not computed");
}

#[test]
fn columns_beyond_64_are_readable_and_marked_used() {
    let e = engine();
    let (rows, seen) = seen_after(&e, "SELECT c2, c66 FROM wide");
    assert_eq!(rows, vec![vec![Value::Integer(2), Value::Integer(66)]]);
    assert!(seen.used.contains(&2) && seen.used.contains(&66));
    assert!(!seen.used.contains(&1));
}

#[test]
fn missing_required_column_is_a_clear_error() {
    let e = engine();
    let (message, code) = error_of(&e, "SELECT * FROM needs_path");
    assert_eq!(
        message,
        "Table needs_path was queried without a required column in the WHERE clause"
    );
    assert_eq!(code, Some(19), "SQLITE_CONSTRAINT, as osquery");
    let (rows, _) = seen_after(&e, "SELECT size FROM needs_path WHERE path = '/abc'");
    assert_eq!(rows, vec![vec![Value::Integer(4)]]);
}

#[test]
fn prepare_finds_what_would_stop_a_query_without_running_it() {
    let e = engine();
    *e.seen.lock().unwrap() = Seen::default();
    let failure = |sql: &str| e.prepare(sql).unwrap_err();
    let missing = failure("SELECT * FROM needs_path");
    assert_eq!(
        (missing.code, missing.message.as_str()),
        (
            19,
            "Table needs_path was queried without a required column in the WHERE clause"
        )
    );
    // Named as the query names it, also inside a subquery.
    let aliased = failure("SELECT * FROM people p WHERE p.id IN (SELECT size FROM needs_path n)");
    assert!(
        aliased.message.starts_with("Table n was queried"),
        "{aliased:?}"
    );
    assert!(
        failure("SELECT * FROM nope")
            .message
            .contains("no such table: nope")
    );
    assert!(failure("SELEC 1").message.contains("syntax error"));
    assert!(
        failure("SELECT nope FROM people")
            .message
            .contains("no such column: nope")
    );
    // The authorizer refuses what it refuses at run time.
    assert!(failure("ATTACH ':memory:' AS other").code != 0);
    for ok in [
        "SELECT size FROM needs_path WHERE path = '/abc'",
        "SELECT p.name, n.size FROM people p JOIN needs_path n ON n.path = '/' || p.name",
        "SELECT 1",
    ] {
        assert_eq!(e.prepare(ok), Ok(()), "{ok}");
    }
    // Nothing was generated: preparing reads no table.
    assert_eq!(e.seen.lock().unwrap().scans, 0);
}

#[test]
fn joins_push_values_into_required_columns() {
    let e = engine();
    let (rows, _) = seen_after(
        &e,
        "SELECT p.name, n.size FROM people p JOIN needs_path n ON n.path = '/' || p.name ORDER BY p.id",
    );
    assert_eq!(
        rows,
        vec![
            vec![Value::Text("ann".into()), Value::Integer(4)],
            vec![Value::Text("bob".into()), Value::Integer(4)],
            vec![Value::Text("cid".into()), Value::Integer(4)],
        ]
    );
}

#[test]
fn a_panicking_table_is_an_error_not_a_crash() {
    let e = engine();
    let (message, _) = error_of(&e, "SELECT * FROM boom");
    assert!(
        message.contains("boom") && message.contains("deliberate test panic"),
        "{message}"
    );
    // The connection still works.
    assert_eq!(
        e.query("SELECT 1").unwrap().rows,
        vec![vec![Value::Integer(1)]]
    );
}

/// Set in the child process [`a_panicking_table_ends_the_process_unless_exceptions_are_ignored`]
/// starts: that child runs the query and is expected to die.
const ABORT_CHILD: &str = "OXQUERY_TEST_TABLE_PANIC_ABORTS";

#[test]
fn a_panicking_table_ends_the_process_unless_exceptions_are_ignored() {
    if std::env::var_os(ABORT_CHILD).is_some() {
        let e = engine();
        e.set_settings(oxquery_table::TableSettings {
            ignore_table_exceptions: false,
            ..oxquery_table::TableSettings::DEFAULT
        });
        let _ = e.query("SELECT * FROM boom");
        // Reached only if the panic was turned into an error after all.
        std::process::exit(0);
    }
    // This very test, alone, in a child process: `--ignore_table_exceptions=false` must
    // end it with SIGABRT, as an uncaught exception ends osquery.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_panicking_table_ends_the_process_unless_exceptions_are_ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ABORT_CHILD, "1")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_failing_table_names_itself() {
    let e = engine();
    let (message, _) = error_of(&e, "SELECT * FROM broken");
    assert_eq!(
        message,
        "Error generating table broken: the device is on fire"
    );
}

#[test]
fn table_alias_is_a_view() {
    let e = engine();
    assert_eq!(
        e.query("SELECT count(*) FROM folks").unwrap().rows,
        vec![vec![Value::Integer(3)]]
    );
}

#[test]
fn authorizer_allows_reading_and_refuses_the_rest() {
    let e = engine();
    for sql in [
        "ATTACH DATABASE '/tmp/oxquery-attach-test.db' AS x",
        "PRAGMA writable_schema = 1",
        "PRAGMA database_list",
        "SELECT load_extension('/nonexistent.so')",
    ] {
        let (message, _) = error_of(&e, sql);
        assert!(message.contains("not authorized"), "{sql}: {message}");
    }
    assert!(!std::path::Path::new("/tmp/oxquery-attach-test.db").exists());
    for sql in [
        "PRAGMA table_info(people)",
        "PRAGMA function_list",
        "SELECT * FROM pragma_table_xinfo('people')",
    ] {
        e.query(sql).unwrap_or_else(|err| panic!("{sql}: {err}"));
    }
    // Temporary tables and views for analysis stay allowed.
    let done: Result<_, ()> = e.run_batch(
        "CREATE TEMP TABLE t AS SELECT * FROM people; DROP TABLE t;",
        |_| Ok(()),
    );
    assert_eq!(done, Ok(Ok(())));
}

#[test]
fn table_filter_controls_what_is_attached() {
    let filter = TableFilter::from_flags("people,boom", "boom");
    let e = Engine::new(
        &[&people::TABLE, &boom::TABLE, &broken::TABLE],
        &filter,
        instance::current(None),
    )
    .unwrap();
    let names: Vec<String> = e
        .tables()
        .iter()
        .map(|t| t.spec().name.to_string())
        .collect();
    assert_eq!(names, ["people"]);
    let (message, _) = error_of(&e, "SELECT * FROM broken");
    assert_eq!(message, "no such table: broken");
}

#[test]
fn double_quoted_strings_still_work() {
    let e = engine();
    let (rows, _) = seen_after(&e, r#"SELECT id FROM people WHERE name = "ann""#);
    assert_eq!(rows, vec![vec![Value::Integer(1)]]);
}
