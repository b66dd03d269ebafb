//! The one virtual-table module every osquery table is registered under.
//!
//! xBestIndex follows osquery: constraints on INDEX/REQUIRED/ADDITIONAL columns are passed
//! to the table (never `omit`ted, so SQLite re-checks and a table may return a superset);
//! range operators on TEXT columns are skipped (SQLite derives them from LIKE); IN lists
//! arrive all at once. xFilter turns the plan into a [`QueryContext`] and runs the
//! generator under `catch_unwind`: a failing or panicking table is an SQL error naming it.

use crate::plan::{Plan, PlanArg};
use crate::planner;
use oxquery_table::{
    ColumnOptions, ColumnSet, Constraint, Host, Op, QueryContext, Rows, TableDef, Value,
};
use rusqlite::ffi;
use rusqlite::types::{Null, ValueRef};
use rusqlite::vtab::{
    Context, Filters, IndexConstraintOp, IndexInfo, VTab, VTabConnection, VTabCursor,
};
use rusqlite::{Error, Result};
use std::borrow::Cow;
use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// What each registered module carries: the table and the engine's host facts.
pub struct TableAux {
    pub def: &'static TableDef,
    pub host: Arc<Host>,
}

#[repr(C)]
pub struct OsqueryTab {
    /// Must stay first: SQLite sees this struct as a `sqlite3_vtab`.
    base: ffi::sqlite3_vtab,
    def: &'static TableDef,
    host: Arc<Host>,
}

const COST_UNCONSTRAINED: f64 = 1_000_000.0;
/// Without a required constraint the plan cannot run; make SQLite prefer any other.
const COST_MISSING_REQUIRED: f64 = 1e10;

fn op_of(op: IndexConstraintOp) -> Option<Op> {
    use IndexConstraintOp::*;
    Some(match op {
        SQLITE_INDEX_CONSTRAINT_EQ => Op::Eq,
        SQLITE_INDEX_CONSTRAINT_GT => Op::Gt,
        SQLITE_INDEX_CONSTRAINT_LE => Op::Le,
        SQLITE_INDEX_CONSTRAINT_LT => Op::Lt,
        SQLITE_INDEX_CONSTRAINT_GE => Op::Ge,
        SQLITE_INDEX_CONSTRAINT_MATCH => Op::Match,
        SQLITE_INDEX_CONSTRAINT_LIKE => Op::Like,
        SQLITE_INDEX_CONSTRAINT_GLOB => Op::Glob,
        SQLITE_INDEX_CONSTRAINT_REGEXP => Op::Regexp,
        SQLITE_INDEX_CONSTRAINT_NE => Op::Ne,
        SQLITE_INDEX_CONSTRAINT_IS => Op::Is,
        _ => return None,
    })
}

unsafe impl<'vtab> VTab<'vtab> for OsqueryTab {
    type Aux = TableAux;
    type Cursor = OsqueryCursor;

    fn connect(
        _db: &mut VTabConnection,
        aux: Option<&TableAux>,
        _module_name: &[u8],
        _database_name: &[u8],
        _table_name: &[u8],
        _args: &[&[u8]],
    ) -> Result<(Cow<'static, CStr>, Self)> {
        let aux = aux
            .ok_or_else(|| Error::ModuleError("table registered without its definition".into()))?;
        let schema = format!("CREATE TABLE x{}", aux.def.spec.column_definitions());
        let schema = CString::new(schema).map_err(|e| Error::ModuleError(e.to_string()))?;
        Ok((
            Cow::Owned(schema),
            OsqueryTab {
                base: ffi::sqlite3_vtab::default(),
                def: aux.def,
                host: Arc::clone(&aux.host),
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> Result<bool> {
        let spec = self.def.spec;
        let seen: Vec<(c_int, IndexConstraintOp, bool)> = info
            .constraints()
            .map(|c| (c.column(), c.operator(), c.is_usable()))
            .collect();
        let mut plan = Plan {
            col_used: info.col_used(),
            ..Plan::default()
        };
        let mut cost = COST_UNCONSTRAINED;
        let mut required_present = false;
        for (i, (column, op, usable)) in seen.into_iter().enumerate() {
            if !usable || column < 0 {
                continue;
            }
            let Some(real) = spec.resolve(column as usize) else {
                continue;
            };
            let Some(op) = op_of(op) else { continue };
            let col = &spec.columns[real];
            if !col.options.forwards_constraints() {
                continue;
            }
            if !col.ty.is_integer() && matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) {
                // SQLite derives these from LIKE on text; the LIKE itself is passed.
                cost += 10.0;
                continue;
            }
            if col.options.contains(ColumnOptions::REQUIRED) {
                required_present = true;
            }
            cost = 1.0;
            let in_list = op == Op::Eq && info.is_in_constraint(i).unwrap_or(false);
            if in_list {
                info.set_in_constraint(i, true)?;
            }
            plan.args.push(PlanArg {
                column: real,
                op,
                in_list,
            });
            info.constraint_usage(i)
                .set_argv_index(plan.args.len() as c_int);
        }
        if spec.has_required() && !required_present {
            plan.missing_required = true;
            cost = COST_MISSING_REQUIRED;
        }
        info.set_estimated_cost(cost);
        info.set_idx_str(&plan.encode());
        Ok(true)
    }

    fn open(&'vtab mut self) -> Result<OsqueryCursor> {
        Ok(OsqueryCursor {
            base: ffi::sqlite3_vtab_cursor::default(),
            def: self.def,
            host: Arc::clone(&self.host),
            rows: None,
            position: 0,
        })
    }
}

#[repr(C)]
pub struct OsqueryCursor {
    /// Must stay first: SQLite sees this struct as a `sqlite3_vtab_cursor`.
    base: ffi::sqlite3_vtab_cursor,
    def: &'static TableDef,
    host: Arc<Host>,
    rows: Option<Rows>,
    position: usize,
}

fn value_of(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Gives a constraint value the column's affinity, as SQLite compares it.
fn with_affinity(integer_column: bool, value: Value) -> Value {
    match value {
        Value::Text(ref s) if integer_column => {
            s.trim().parse::<i64>().map_or(value, Value::Integer)
        }
        other => other,
    }
}

fn used_columns(def: &TableDef, col_used: u64) -> ColumnSet {
    let spec = def.spec;
    let positions = spec.columns.len() + spec.column_aliases.len();
    let mut used = ColumnSet::none(spec.columns.len());
    for position in 0..positions {
        // Bit 63 stands for every column from 63 on.
        if col_used & (1u64 << position.min(63)) != 0
            && let Some(real) = spec.resolve(position)
        {
            used.insert(real);
        }
    }
    used
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

impl OsqueryCursor {
    fn context(&self, plan: &Plan, args: &Filters<'_>) -> Result<Vec<Constraint>> {
        let spec = self.def.spec;
        let mut constraints = Vec::with_capacity(plan.args.len());
        for (k, arg) in plan.args.iter().enumerate() {
            let integer = spec.columns[arg.column].ty.is_integer();
            if arg.in_list {
                let mut values = args.in_values(k)?;
                while let Some(v) =
                    rusqlite::fallible_streaming_iterator::FallibleStreamingIterator::next(
                        &mut values,
                    )?
                {
                    constraints.push(Constraint {
                        column: arg.column,
                        op: Op::Eq,
                        value: with_affinity(integer, value_of(v.get_raw())),
                    });
                }
            } else {
                constraints.push(Constraint {
                    column: arg.column,
                    op: arg.op,
                    value: with_affinity(integer, value_of(args[k].get_raw())),
                });
            }
        }
        Ok(constraints)
    }
}

unsafe impl VTabCursor for OsqueryCursor {
    fn filter(&mut self, _idx_num: c_int, idx_str: Option<&str>, args: &Filters<'_>) -> Result<()> {
        let spec = self.def.spec;
        let plan = idx_str.and_then(Plan::decode).ok_or_else(|| {
            Error::ModuleError(format!("Table {}: lost its query plan", spec.name))
        })?;
        if plan.missing_required {
            let message = format!(
                "Table {} was queried without a required column in the WHERE clause",
                spec.name
            );
            log::warn!("{message}");
            return Err(Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_CONSTRAINT),
                Some(message),
            ));
        }
        let constraints = self.context(&plan, args)?;
        let used = used_columns(self.def, plan.col_used);
        let ctx = QueryContext::new(spec, constraints, used, &self.host);
        planner::trace(&ctx);
        let mut rows = Rows::for_context(&ctx);
        let generate = self.def.generate;
        let outcome = catch_unwind(AssertUnwindSafe(|| generate(&ctx, &mut rows)));
        self.position = 0;
        match outcome {
            Ok(Ok(())) => {
                self.rows = Some(rows);
                Ok(())
            }
            Ok(Err(e)) => {
                self.rows = None;
                Err(Error::ModuleError(format!(
                    "Error generating table {}: {e}",
                    spec.name
                )))
            }
            Err(payload) => {
                self.rows = None;
                Err(Error::ModuleError(format!(
                    "Error generating table {}: the generator panicked: {}",
                    spec.name,
                    panic_message(&*payload)
                )))
            }
        }
    }

    fn next(&mut self) -> Result<()> {
        self.position += 1;
        Ok(())
    }

    fn eof(&self) -> bool {
        self.rows.as_ref().is_none_or(|r| self.position >= r.len())
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> Result<()> {
        let cell = self
            .rows
            .as_ref()
            .and_then(|rows| rows.get(self.position))
            .and_then(|row| row.get(self.def.spec.resolve(i as usize)?));
        match cell {
            None | Some(Value::Null) => ctx.set_result(Null),
            Some(Value::Integer(v)) => ctx.set_result(v),
            Some(Value::Real(v)) => ctx.set_result(v),
            Some(Value::Text(v)) => ctx.set_result(v.as_str()),
            Some(Value::Blob(v)) => ctx.set_result(v.as_slice()),
        }
    }

    fn rowid(&self) -> Result<i64> {
        Ok(self.position as i64)
    }
}
