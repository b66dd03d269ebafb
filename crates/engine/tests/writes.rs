//! `INSERT`, `UPDATE` and `DELETE` on a writable table: each row change reaches the
//! table as a `RowChange` with the values SQLite passed (checked by osquery's type
//! rules), rows are addressed by the rowid the table gave them, a column alias writes
//! its target, and the table's refusals are osquery's SQLite errors. Tables that are
//! not writable keep SQLite's read-only error.

use oxquery_engine::{Engine, EngineError, instance};
use oxquery_table::{
    Attributes, ChangeError, Column, ColumnAlias, ColumnOptions, ColumnType, Host, QueryContext,
    Registry, RowChange, Rows, Table, TableResult, TableSpec, Value,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// A writable table kept in memory: rows by rowid, and every change it was asked for.
struct Store {
    spec: TableSpec,
    rows: Mutex<BTreeMap<i64, Vec<Value>>>,
    changes: Mutex<Vec<RowChange>>,
}

impl Store {
    fn new() -> Arc<Store> {
        let column = |name: &'static str, ty, options| Column::new(name, ty, options, name);
        let mut spec = TableSpec::new(
            "store",
            "A writable table.",
            vec![
                column("name", ColumnType::Text, ColumnOptions::empty()),
                column("n", ColumnType::BigInt, ColumnOptions::empty()),
                column("score", ColumnType::Double, ColumnOptions::HIDDEN),
                column("k", ColumnType::Text, ColumnOptions::INDEX),
            ],
            Attributes::NONE,
        )
        .with_column_aliases(vec![ColumnAlias::new("label", "name")]);
        spec.writable = true;
        Arc::new(Store {
            spec,
            rows: Mutex::default(),
            changes: Mutex::default(),
        })
    }

    fn changes(&self) -> Vec<RowChange> {
        std::mem::take(&mut *self.changes.lock().unwrap())
    }
}

impl Table for Store {
    fn spec(&self) -> &TableSpec {
        &self.spec
    }

    fn generate(&self, _ctx: &QueryContext<'_>, rows: &mut Rows<'_>) -> TableResult {
        for (rowid, values) in self.rows.lock().unwrap().iter() {
            let mut row = rows.row();
            for (i, v) in values.iter().enumerate() {
                row.set(i, v.clone());
            }
            row.set_rowid(*rowid);
        }
        Ok(())
    }

    fn change(&self, change: RowChange) -> Result<Option<i64>, ChangeError> {
        self.changes.lock().unwrap().push(change.clone());
        let mut rows = self.rows.lock().unwrap();
        let refusal = |values: &[Value]| match values[0].as_text().as_deref() {
            Some("readonly") => Err(ChangeError::ReadOnly),
            Some("taken") => Err(ChangeError::Constraint),
            Some("fail") => Err(ChangeError::Failed(Some("no thanks".into()))),
            Some("silent") => Err(ChangeError::Failed(None)),
            _ => Ok(()),
        };
        match change {
            RowChange::Insert { rowid, values } => {
                refusal(&values)?;
                let rowid = rowid.unwrap_or_else(|| rows.keys().last().map_or(100, |r| r + 1));
                rows.insert(rowid, values);
                Ok(Some(rowid))
            }
            RowChange::Update {
                rowid,
                new_rowid,
                values,
            } => {
                refusal(&values)?;
                rows.remove(&rowid);
                rows.insert(new_rowid.unwrap_or(rowid), values);
                Ok(None)
            }
            RowChange::Delete { rowid } => {
                rows.remove(&rowid);
                Ok(None)
            }
        }
    }
}

/// Reads back the table: (rowid, name, n, score, k) by rowid.
fn read(engine: &Engine) -> Vec<Vec<Value>> {
    engine
        .query("SELECT rowid, name, n, score, k FROM store ORDER BY rowid")
        .unwrap()
        .rows
}

fn engine_with(tables: Vec<Arc<dyn Table>>) -> Engine {
    Engine::open(Host {
        instance: instance::current(None),
        tables: Registry::with_tables(tables).unwrap(),
        ..Host::default()
    })
    .unwrap()
}

fn error(e: EngineError) -> (Option<i32>, String) {
    let code = match &e {
        EngineError::Sqlite(s) => s.sqlite_error().map(|f| f.extended_code),
        _ => None,
    };
    let text = match e {
        EngineError::Sqlite(rusqlite::Error::SqliteFailure(_, Some(m))) => m,
        other => other.to_string(),
    };
    (code, text)
}

fn text(s: &str) -> Value {
    Value::from(s)
}

#[test]
fn inserts_updates_and_deletes_reach_the_table_by_rowid() {
    let store = Store::new();
    let engine = engine_with(vec![store.clone()]);

    engine
        .query("INSERT INTO store (name, n, score, k) VALUES ('a', 1, 0.5, 'x'), ('b', NULL, NULL, 'y')")
        .unwrap();
    assert_eq!(
        store.changes(),
        [
            RowChange::Insert {
                rowid: None,
                values: vec![text("a"), Value::Integer(1), Value::Real(0.5), text("x")],
            },
            RowChange::Insert {
                rowid: None,
                values: vec![text("b"), Value::Null, Value::Null, text("y")],
            },
        ]
    );
    // A rowid the statement gives reaches the table.
    engine
        .query("INSERT INTO store (rowid, name, k) VALUES (7, 'c', 'z')")
        .unwrap();
    assert_eq!(
        store.changes(),
        [RowChange::Insert {
            rowid: Some(7),
            values: vec![text("c"), Value::Null, Value::Null, text("z")],
        }]
    );
    assert_eq!(
        read(&engine),
        [
            vec![
                Value::Integer(7),
                text("c"),
                Value::Null,
                Value::Null,
                text("z")
            ],
            vec![
                Value::Integer(100),
                text("a"),
                Value::Integer(1),
                Value::Real(0.5),
                text("x")
            ],
            vec![
                Value::Integer(101),
                text("b"),
                Value::Null,
                Value::Null,
                text("y")
            ],
        ]
    );

    // An UPDATE names the row by the rowid its scan gave, with every column's value.
    engine
        .query("UPDATE store SET n = 42 WHERE name = 'b'")
        .unwrap();
    assert_eq!(
        store.changes(),
        [RowChange::Update {
            rowid: 101,
            new_rowid: None,
            values: vec![text("b"), Value::Integer(42), Value::Null, text("y")],
        }]
    );
    engine
        .query("UPDATE store SET rowid = 200 WHERE rowid = 7")
        .unwrap();
    assert_eq!(
        store.changes(),
        [RowChange::Update {
            rowid: 7,
            new_rowid: Some(200),
            values: vec![text("c"), Value::Null, Value::Null, text("z")],
        }]
    );
    engine.query("DELETE FROM store WHERE n = 1").unwrap();
    assert_eq!(store.changes(), [RowChange::Delete { rowid: 100 }]);
    assert_eq!(
        read(&engine),
        [
            vec![
                Value::Integer(101),
                text("b"),
                Value::Integer(42),
                Value::Null,
                text("y")
            ],
            vec![
                Value::Integer(200),
                text("c"),
                Value::Null,
                Value::Null,
                text("z")
            ],
        ]
    );
}

#[test]
fn a_column_alias_reads_and_writes_its_target() {
    let store = Store::new();
    let engine = engine_with(vec![store.clone()]);
    engine
        .query("INSERT INTO store (label, k) VALUES ('through the alias', 'x')")
        .unwrap();
    assert_eq!(
        store.changes(),
        [RowChange::Insert {
            rowid: None,
            values: vec![
                text("through the alias"),
                Value::Null,
                Value::Null,
                text("x")
            ],
        }]
    );
    let r = engine
        .query("SELECT label, name FROM store WHERE label = 'through the alias'")
        .unwrap();
    assert_eq!(
        r.rows,
        [vec![text("through the alias"), text("through the alias")]]
    );

    // Setting the target leaves the alias out of it; setting the alias sets the target.
    engine.query("UPDATE store SET name = 'direct'").unwrap();
    engine.query("UPDATE store SET n = 3").unwrap();
    engine.query("UPDATE store SET label = 'renamed'").unwrap();
    let names: Vec<Value> = store
        .changes()
        .into_iter()
        .map(|c| match c {
            RowChange::Update { values, .. } => values[0].clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(names, [text("direct"), text("direct"), text("renamed")]);
    assert_eq!(read(&engine)[0][1], text("renamed"));
    assert_eq!(read(&engine)[0][2], Value::Integer(3));
}

#[test]
fn values_follow_osquerys_type_rules_and_refusals_are_its_errors() {
    let store = Store::new();
    let engine = engine_with(vec![store.clone()]);
    const MISMATCH: i32 = 20;
    // Text for a BIGINT, an integer for TEXT, NULL for an INDEX column: never sent.
    for sql in [
        "INSERT INTO store (name, n, k) VALUES ('a', 'five', 'x')",
        "INSERT INTO store (name, k) VALUES (5, 'x')",
        "INSERT INTO store (name, score, k) VALUES ('a', 1, 'x')",
        "INSERT INTO store (name) VALUES ('a')",
    ] {
        let (code, message) = error(engine.query(sql).unwrap_err());
        assert_eq!(code, Some(MISMATCH), "{sql}: {message}");
        assert_eq!(message, "datatype mismatch", "{sql}");
    }
    assert_eq!(store.changes(), []);

    let refused = |name: &str| {
        error(
            engine
                .query(&format!(
                    "INSERT INTO store (name, k) VALUES ('{name}', 'x')"
                ))
                .unwrap_err(),
        )
    };
    assert_eq!(
        refused("readonly"),
        (Some(8), "table store may not be modified".to_owned())
    );
    assert_eq!(refused("taken"), (Some(19), "constraint failed".to_owned()));
    assert_eq!(refused("fail"), (Some(1), "no thanks".to_owned()));
    assert_eq!(refused("silent"), (Some(1), "SQL logic error".to_owned()));
    assert!(read(&engine).is_empty());
}

#[test]
fn a_table_that_is_not_writable_keeps_sqlites_read_only_error() {
    let mut spec = Store::new().spec.clone();
    spec.writable = false;
    spec.name = "fixed".into();
    struct Fixed(TableSpec);
    impl Table for Fixed {
        fn spec(&self) -> &TableSpec {
            &self.0
        }
        fn generate(&self, _: &QueryContext<'_>, _: &mut Rows<'_>) -> TableResult {
            Ok(())
        }
    }
    let engine = engine_with(vec![Arc::new(Fixed(spec))]);
    for sql in [
        "INSERT INTO fixed (name, k) VALUES ('a', 'x')",
        "UPDATE fixed SET n = 1",
        "DELETE FROM fixed",
    ] {
        let (_, message) = error(engine.query(sql).unwrap_err());
        assert_eq!(message, "table fixed may not be modified", "{sql}");
    }
}
