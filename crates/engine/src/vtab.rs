//! The one virtual-table module every osquery table is registered under.
//!
//! xBestIndex follows osquery: constraints on INDEX/REQUIRED/ADDITIONAL columns are passed
//! to the table (never `omit`ted, so SQLite re-checks and a table may return a superset);
//! range operators on TEXT columns are skipped (SQLite derives them from LIKE); IN lists
//! arrive all at once. xFilter turns the plan into a [`QueryContext`] and starts a
//! [`Scan`]: the generator runs on a coroutine of its own and hands SQLite one batch of
//! rows at a time, so memory holds one batch whatever the result's size, and a `LIMIT`
//! (the cursor closing early) stops the generator. A failing or panicking table is an SQL
//! error naming it.
//!
//! A table whose spec is writable (an extension's) also gets xUpdate: each row of an
//! `INSERT`, `UPDATE` or `DELETE` becomes a [`RowChange`] with the values checked as
//! osquery checks them, and the table's answer becomes osquery's SQLite error.

use crate::plan::{Plan, PlanArg};
use crate::scan_cache::{CacheStep, ScanCache};
use crate::{Shared, planner};
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use oxquery_table::{
    Attributes, ChangeError, Column, ColumnOptions, ColumnSet, ColumnType, Constraint, Interrupt,
    Op, QueryContext, RowChange, Rows, StopReason, Table, TableError, TableSpec, Value,
};
use rusqlite::ffi;
use rusqlite::types::{Null, ToSqlOutput, ValueRef};
use rusqlite::vtab::{
    Context, CreateVTab, Filters, IndexConstraintOp, IndexInfo, Inserts, UpdateVTab, Updates, VTab,
    VTabConnection, VTabCursor, VTabKind,
};
use rusqlite::{Error, Result};
use std::borrow::Cow;
use std::ffi::{CStr, CString};
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What each registered module carries: the table and the engine's shared state.
pub struct TableAux {
    pub table: Arc<dyn Table>,
    pub shared: Arc<Shared>,
}

#[repr(C)]
pub struct OsqueryTab {
    /// Must stay first: SQLite sees this struct as a `sqlite3_vtab`.
    base: ffi::sqlite3_vtab,
    table: Arc<dyn Table>,
    shared: Arc<Shared>,
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
        let schema = format!("CREATE TABLE x{}", aux.table.spec().column_definitions());
        let schema = CString::new(schema).map_err(|e| Error::ModuleError(e.to_string()))?;
        Ok((
            Cow::Owned(schema),
            OsqueryTab {
                base: ffi::sqlite3_vtab::default(),
                table: Arc::clone(&aux.table),
                shared: Arc::clone(&aux.shared),
            },
        ))
    }

    fn best_index(&self, info: &mut IndexInfo) -> Result<bool> {
        let spec = self.table.spec();
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
            table: Arc::clone(&self.table),
            shared: Arc::clone(&self.shared),
            scan: None,
            batch: Vec::new(),
            position: 0,
            rowid: 0,
            done: true,
        })
    }
}

impl CreateVTab<'_> for OsqueryTab {
    // Every table is eponymous: it exists in SQL as soon as its module is registered.
    const KIND: VTabKind = VTabKind::EponymousOnly;
}

/// A write's value for `column`, by osquery's rules: its SQLite type must be the
/// column's (any integer type for integers; TEXT and BLOB exactly), and a key column
/// (options exactly INDEX or exactly REQUIRED) takes no NULL.
fn written_value(column: &Column, value: ValueRef<'_>) -> Result<Value, ChangeError> {
    let fits = match value {
        ValueRef::Null => {
            let bits = column.options.osquery_bits();
            bits != ColumnOptions::INDEX.bits() && bits != ColumnOptions::REQUIRED.bits()
        }
        ValueRef::Integer(_) => column.ty.is_integer(),
        ValueRef::Real(_) => column.ty == ColumnType::Double,
        ValueRef::Text(_) => column.ty == ColumnType::Text,
        ValueRef::Blob(_) => column.ty == ColumnType::Blob,
    };
    if !fits {
        return Err(ChangeError::Mismatch);
    }
    Ok(match value {
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        other => crate::value_from_ref(other),
    })
}

/// The real columns' values of an INSERT or UPDATE (`args` after the two rowids: the
/// columns, then the column aliases). A value given to an alias (`written(i)`) goes to
/// its target.
fn written_values<'a>(
    spec: &TableSpec,
    args: impl Iterator<Item = ValueRef<'a>>,
    written: impl Fn(usize) -> bool,
) -> Result<Vec<Value>, ChangeError> {
    let args: Vec<ValueRef<'a>> = args.skip(2).collect();
    let width = spec.columns.len();
    let mut chosen: Vec<ValueRef<'a>> = args.iter().take(width).copied().collect();
    if chosen.len() != width {
        return Err(ChangeError::Failed(Some(format!(
            "table {}: {} values for {width} columns",
            spec.name,
            chosen.len()
        ))));
    }
    for (k, value) in args.iter().enumerate().skip(width) {
        if written(k + 2)
            && let Some(target) = spec.resolve(k)
        {
            chosen[target] = *value;
        }
    }
    spec.columns
        .iter()
        .zip(chosen)
        .map(|(column, value)| written_value(column, value))
        .collect()
}

impl OsqueryTab {
    /// Hands `change` to the table; its refusal as the SQLite error osquery reports.
    fn apply(&self, change: RowChange) -> Result<Option<i64>> {
        let spec = self.table.spec();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.table.change(change))).unwrap_or_else(
            |payload| {
                Err(ChangeError::Failed(Some(format!(
                    "table {}: the change panicked: {}",
                    spec.name,
                    panic_message(&*payload)
                ))))
            },
        );
        outcome.map_err(|e| change_error(spec, e))
    }
}

/// osquery's SQLite error for a refused change: READONLY with its message, MISMATCH and
/// CONSTRAINT with SQLite's own, ERROR with the table's message if any.
fn change_error(spec: &TableSpec, error: ChangeError) -> Error {
    let (code, message) = match error {
        ChangeError::ReadOnly => (
            ffi::SQLITE_READONLY,
            Some(format!("table {} may not be modified", spec.name)),
        ),
        ChangeError::Mismatch => (ffi::SQLITE_MISMATCH, None),
        ChangeError::Constraint => (ffi::SQLITE_CONSTRAINT, None),
        ChangeError::Failed(message) => (ffi::SQLITE_ERROR, message),
    };
    Error::SqliteFailure(ffi::Error::new(code), message)
}

impl UpdateVTab<'_> for OsqueryTab {
    fn delete(&mut self, rowid: ValueRef<'_>) -> Result<()> {
        let rowid = match rowid {
            ValueRef::Integer(i) => i,
            _ => 0,
        };
        self.apply(RowChange::Delete { rowid }).map(drop)
    }

    fn insert(&mut self, args: &Inserts<'_>) -> Result<i64> {
        let spec = self.table.spec();
        let rowid = match args.iter().nth(1) {
            Some(ValueRef::Integer(i)) => Some(i),
            _ => None,
        };
        // An alias given a value (not NULL) writes its target.
        let given: Vec<bool> = args.iter().map(|v| v != ValueRef::Null).collect();
        let values =
            written_values(spec, args.iter(), |i| given[i]).map_err(|e| change_error(spec, e))?;
        let got = self.apply(RowChange::Insert { rowid, values })?;
        got.or(rowid).ok_or_else(|| {
            change_error(
                spec,
                ChangeError::Failed(Some(format!(
                    "table {}: the insert gave no rowid",
                    spec.name
                ))),
            )
        })
    }

    fn update(&mut self, args: &Updates<'_>) -> Result<()> {
        let spec = self.table.spec();
        let Some(ValueRef::Integer(rowid)) = args.iter().next() else {
            return Err(change_error(spec, ChangeError::Failed(None)));
        };
        let new_rowid = match args.iter().nth(1) {
            Some(ValueRef::Integer(i)) if i != rowid => Some(i),
            _ => None,
        };
        // An alias the statement did not SET arrives unchanged (xColumn left it so).
        let values = written_values(spec, args.iter(), |i| !args.no_change(i))
            .map_err(|e| change_error(spec, e))?;
        self.apply(RowChange::Update {
            rowid,
            new_rowid,
            values,
        })
        .map(drop)
    }
}

/// What the coroutine is resumed with: an emptied batch to fill next, or `None` when the
/// cursor wants no more rows.
type Resume = Option<Vec<Value>>;

/// How a scan's generator ended.
enum ScanEnd {
    /// Returned normally; these are its last rows.
    Finished(Vec<Value>),
    Interrupted(StopReason),
    Failed(String),
}

/// A running generator, suspended between batches.
struct Scan {
    coroutine: Coroutine<Resume, Vec<Value>, ScanEnd, DefaultStack>,
    closed: Arc<AtomicBool>,
}

#[repr(C)]
pub struct OsqueryCursor {
    /// Must stay first: SQLite sees this struct as a `sqlite3_vtab_cursor`.
    base: ffi::sqlite3_vtab_cursor,
    table: Arc<dyn Table>,
    shared: Arc<Shared>,
    scan: Option<Scan>,
    /// Cells of the current batch, `width` per row.
    batch: Vec<Value>,
    /// Row within the batch.
    position: usize,
    rowid: i64,
    /// The generator has returned: `batch` holds the last rows.
    done: bool,
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

fn used_columns(spec: &TableSpec, col_used: u64) -> ColumnSet {
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

/// The SQL error for a query that was stopped (SQLITE_INTERRUPT, as `sqlite3_interrupt`).
pub(crate) fn interrupted(reason: StopReason) -> Error {
    Error::SqliteFailure(
        ffi::Error::new(ffi::SQLITE_INTERRUPT),
        Some(format!("interrupted: {reason}")),
    )
}

impl OsqueryCursor {
    fn constraints(&self, plan: &Plan, args: &Filters<'_>) -> Result<Vec<Constraint>> {
        let spec = self.table.spec();
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
                        value: with_affinity(integer, crate::value_from_ref(v.get_raw())),
                    });
                }
            } else {
                constraints.push(Constraint {
                    column: arg.column,
                    op: arg.op,
                    value: with_affinity(integer, crate::value_from_ref(args[k].get_raw())),
                });
            }
        }
        Ok(constraints)
    }

    /// `--table_delay`: waits before a further scan of a table in the same query, as
    /// osquery does, stopping early if the query is cancelled.
    fn pause(&self, delay: std::time::Duration) -> Result<()> {
        let until = std::time::Instant::now() + delay;
        loop {
            if let Some(reason) = self.shared.cancel.status() {
                return Err(interrupted(reason));
            }
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
        }
    }

    /// Cells per row in the batch (a writable table's rows end with their rowid).
    fn width(&self) -> usize {
        self.table.spec().row_width().max(1)
    }

    fn rows_in_batch(&self) -> usize {
        self.batch.len() / self.width()
    }

    /// Counts the rows of the batch just received (see `Shared::rows_read`).
    fn count_batch(&self) {
        let rows = self.rows_in_batch() as u64;
        self.shared.rows_read.fetch_add(rows, Ordering::Relaxed);
    }

    /// Starts the generator on a coroutine (its stack from the engine's pool). With
    /// `cache`, a scan that runs to its end stores its rows there.
    fn start(
        &mut self,
        constraints: Vec<Constraint>,
        used: ColumnSet,
        cache: Option<(ScanCache, CacheStep)>,
    ) {
        let table = Arc::clone(&self.table);
        let host = self.shared.host();
        let closed = Arc::new(AtomicBool::new(false));
        let interrupt = Interrupt::new(self.shared.cancel.clone(), Some(Arc::clone(&closed)));
        let trace = self.shared.planner_trace();
        let reader_left = Arc::clone(&closed);
        let body = move |yielder: &Yielder<Resume, Vec<Value>>, _first: Resume| -> ScanEnd {
            let spec = table.spec();
            let cached_columns = cache.as_ref().map(|_| used.clone());
            let ctx = QueryContext::new(spec, constraints, used, &host).with_interrupt(interrupt);
            if trace {
                planner::trace(&ctx);
            }
            // A copy of every batch, for the cache; kept only if the scan completes.
            let recorded = std::cell::RefCell::new(Vec::new());
            let refused = std::cell::Cell::new(false);
            let mut sink = |batch: Vec<Value>| {
                if cache.is_some() {
                    recorded.borrow_mut().extend_from_slice(&batch);
                }
                let emptied = yielder.suspend(batch);
                refused.set(refused.get() || emptied.is_none());
                emptied
            };
            let mut rows = Rows::streaming(spec.row_width(), ctx.used().clone(), &mut sink);
            let outcome = catch_unwind(AssertUnwindSafe(|| table.generate(&ctx, &mut rows)));
            match outcome {
                Ok(Ok(())) => {
                    let rest = rows.into_values();
                    if let (Some((cache, at)), Some(columns)) = (&cache, cached_columns)
                        && !refused.get()
                        && !reader_left.load(Ordering::Acquire)
                    {
                        let mut cells = recorded.take();
                        cells.extend_from_slice(&rest);
                        cache.store(&spec.name, *at, columns, cells);
                    }
                    ScanEnd::Finished(rest)
                }
                Ok(Err(TableError::Interrupted(reason))) => ScanEnd::Interrupted(reason),
                Ok(Err(e)) => ScanEnd::Failed(format!("Error generating table {}: {e}", spec.name)),
                Err(payload) => {
                    let message = format!(
                        "Error generating table {}: the generator panicked: {}",
                        spec.name,
                        panic_message(&*payload)
                    );
                    if !host.settings.ignore_table_exceptions {
                        // osquery rethrows a table's exception unless told to ignore
                        // them, which ends the process; so does this (the watchdog then
                        // restarts the worker and deny-lists the query, as osquery's).
                        log::error!("{message}; ending (--ignore_table_exceptions=false)");
                        log::logger().flush();
                        std::process::abort();
                    }
                    ScanEnd::Failed(message)
                }
            }
        };
        let stack = self.shared.take_stack();
        self.scan = Some(Scan {
            coroutine: Coroutine::with_stack(stack, body),
            closed,
        });
        self.done = false;
    }

    /// Replaces the current batch with the generator's next one.
    fn advance(&mut self) -> Result<()> {
        let Some(scan) = self.scan.as_mut() else {
            self.done = true;
            self.batch.clear();
            return Ok(());
        };
        let emptied = std::mem::take(&mut self.batch);
        self.position = 0;
        match scan.coroutine.resume(Some(emptied)) {
            CoroutineResult::Yield(batch) => {
                self.batch = batch;
                self.count_batch();
                Ok(())
            }
            CoroutineResult::Return(end) => {
                // Finished: stop() only hands its stack back to the pool.
                self.stop();
                match end {
                    ScanEnd::Finished(rest) => {
                        self.batch = rest;
                        self.count_batch();
                        Ok(())
                    }
                    ScanEnd::Interrupted(StopReason::Closed) => Ok(()),
                    ScanEnd::Interrupted(reason) => Err(interrupted(reason)),
                    ScanEnd::Failed(message) => Err(Error::ModuleError(message)),
                }
            }
        }
    }

    /// Ends the scan and returns its stack to the pool. A generator still suspended
    /// learns that nobody reads (its next batch is refused, `check()` fails) and runs to
    /// its end on its own stack, so its destructors run where they should.
    fn stop(&mut self) {
        let Some(mut scan) = self.scan.take() else {
            return;
        };
        scan.closed.store(true, Ordering::Release);
        while !scan.coroutine.done() {
            // A generator never suspends again once refused; the loop is for safety.
            if let CoroutineResult::Return(_) = scan.coroutine.resume(None) {
                break;
            }
        }
        self.shared.give_stack(scan.coroutine.into_stack());
        self.batch.clear();
        self.done = true;
    }
}

impl Drop for OsqueryCursor {
    fn drop(&mut self) {
        self.stop();
    }
}

unsafe impl VTabCursor for OsqueryCursor {
    fn filter(&mut self, _idx_num: c_int, idx_str: Option<&str>, args: &Filters<'_>) -> Result<()> {
        self.stop();
        self.rowid = 0;
        self.position = 0;
        let spec = self.table.spec();
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
        if let Some(reason) = self.shared.cancel.status() {
            return Err(interrupted(reason));
        }
        let delay = self.shared.host().settings.table_delay_ms;
        if delay > 0 && self.shared.scanned_before(&spec.name) {
            self.pause(std::time::Duration::from_millis(delay))?;
        }
        let constraints = self.constraints(&plan, args)?;
        let used = used_columns(spec, plan.col_used);
        // osquery's rule: only a scheduled run's unconstrained scans use the cache.
        let cache = (spec.attributes.contains(Attributes::CACHEABLE) && constraints.is_empty())
            .then(|| self.shared.cache())
            .flatten();
        if let Some((cache, at)) = &cache
            && let Some(cells) = cache.lookup(&spec.name, *at, &used)
        {
            log::debug!("Retrieving results from cache for table: {}", spec.name);
            self.batch = Vec::clone(&cells);
            self.count_batch();
            self.done = true;
            return Ok(());
        }
        self.start(constraints, used, cache);
        self.advance()
    }

    fn next(&mut self) -> Result<()> {
        self.position += 1;
        self.rowid += 1;
        if self.position >= self.rows_in_batch() && !self.done {
            self.advance()?;
        }
        Ok(())
    }

    fn eof(&self) -> bool {
        self.done && self.position >= self.rows_in_batch()
    }

    fn column(&self, ctx: &mut Context, i: c_int) -> Result<()> {
        let spec = self.table.spec();
        if spec.writable && i as usize >= spec.columns.len() && ctx.no_change() {
            // An UPDATE reads a column alias it does not SET: leaving it unchanged tells
            // xUpdate the statement wrote nothing through it.
            return Ok(());
        }
        let width = self.width();
        let cell = spec
            .resolve(i as usize)
            .and_then(|c| self.batch.get(self.position * width + c));
        match cell {
            None | Some(Value::Null) => ctx.set_result(Null),
            Some(Value::Integer(v)) => ctx.set_result(v),
            Some(Value::Real(v)) => ctx.set_result(v),
            Some(Value::Text(v)) => ctx.set_result(v.as_str()),
            // Every osquery column is TEXT or a number: bytes (a file name that is not
            // UTF-8) go to SQLite as TEXT holding them unchanged, so the value compares
            // equal to the same bytes in a query and a row can be looked up by its path.
            Some(Value::Blob(v)) => ctx.set_result(ToSqlOutput::Borrowed(ValueRef::Text(v))),
        }
    }

    fn rowid(&self) -> Result<i64> {
        let spec = self.table.spec();
        if !spec.writable {
            return Ok(self.rowid);
        }
        // A writable table's row may name its rowid (osquery reads an extension's
        // `rowid` field); otherwise it is the row's position.
        let cell = self.position * self.width() + spec.columns.len();
        match self.batch.get(cell) {
            Some(Value::Integer(rowid)) => Ok(*rowid),
            None | Some(Value::Null) => Ok(self.rowid),
            Some(other) => Err(Error::ModuleError(format!(
                "Table {}: invalid rowid {other:?}",
                spec.name
            ))),
        }
    }
}
