//! What a generator learns about the query: pushed-down constraints and used columns.

use crate::{Host, Interrupt, TableError, TableSettings, TableSpec, Value};

/// Constraint operators, with SQLite's (and osquery's) operator codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Eq = 2,
    Gt = 4,
    Le = 8,
    Lt = 16,
    Ge = 32,
    Match = 64,
    Like = 65,
    Glob = 66,
    Regexp = 67,
    Ne = 68,
    Is = 72,
}

impl Op {
    pub fn code(self) -> u8 {
        self as u8
    }
    pub fn from_code(code: u8) -> Option<Op> {
        Some(match code {
            2 => Op::Eq,
            4 => Op::Gt,
            8 => Op::Le,
            16 => Op::Lt,
            32 => Op::Ge,
            64 => Op::Match,
            65 => Op::Like,
            66 => Op::Glob,
            67 => Op::Regexp,
            68 => Op::Ne,
            72 => Op::Is,
            _ => return None,
        })
    }
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Match => "MATCH",
            Op::Like => "LIKE",
            Op::Glob => "GLOB",
            Op::Regexp => "REGEXP",
            Op::Ne => "<>",
            Op::Is => "IS",
        }
    }
}

/// One constraint SQLite handed to the table: `column op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// Index of a real column (aliases are resolved by the engine).
    pub column: usize,
    pub op: Op,
    pub value: Value,
}

/// The set of columns a query reads (SQLite's `colUsed`, aliases mapped to their targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSet {
    used: Box<[bool]>,
}

impl ColumnSet {
    pub fn all(width: usize) -> Self {
        ColumnSet {
            used: vec![true; width].into_boxed_slice(),
        }
    }
    pub fn none(width: usize) -> Self {
        ColumnSet {
            used: vec![false; width].into_boxed_slice(),
        }
    }
    pub fn insert(&mut self, column: usize) {
        if let Some(slot) = self.used.get_mut(column) {
            *slot = true;
        }
    }
    /// How many columns the set ranges over.
    pub fn width(&self) -> usize {
        self.used.len()
    }
    #[inline]
    pub fn contains(&self, column: usize) -> bool {
        self.used.get(column).copied().unwrap_or(false)
    }
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.used
            .iter()
            .enumerate()
            .filter(|(_, u)| **u)
            .map(|(i, _)| i)
    }
}

/// Everything a generator is told about one scan.
#[derive(Debug)]
pub struct QueryContext<'a> {
    spec: &'a TableSpec,
    constraints: Vec<Constraint>,
    used: ColumnSet,
    host: &'a Host,
    interrupt: Interrupt,
}

impl<'a> QueryContext<'a> {
    pub fn new(
        spec: &'a TableSpec,
        constraints: Vec<Constraint>,
        used: ColumnSet,
        host: &'a Host,
    ) -> Self {
        QueryContext {
            spec,
            constraints,
            used,
            host,
            interrupt: Interrupt::default(),
        }
    }

    /// A scan with no constraints that reads every column (what `SELECT *` on all
    /// columns, hidden ones too, would ask).
    pub fn everything(spec: &'a TableSpec, host: &'a Host) -> Self {
        Self::new(spec, Vec::new(), ColumnSet::all(spec.columns.len()), host)
    }

    /// Watches `interrupt` (the engine sets the query's token and the scan's flag).
    pub fn with_interrupt(mut self, interrupt: Interrupt) -> Self {
        self.interrupt = interrupt;
        self
    }

    /// Adds a constraint (for tests and for the engine).
    pub fn with_constraint(
        mut self,
        column: impl Into<usize>,
        op: Op,
        value: impl Into<Value>,
    ) -> Self {
        self.constraints.push(Constraint {
            column: column.into(),
            op,
            value: value.into(),
        });
        self
    }

    /// Restricts the used columns to `columns` (for tests).
    pub fn using<C: Into<usize>>(mut self, columns: impl IntoIterator<Item = C>) -> Self {
        let mut set = ColumnSet::none(self.spec.columns.len());
        for c in columns {
            set.insert(c.into());
        }
        self.used = set;
        self
    }

    pub fn spec(&self) -> &'a TableSpec {
        self.spec
    }
    pub fn host(&self) -> &'a Host {
        self.host
    }
    /// The settings tables act on (`--read_max`, ...).
    pub fn settings(&self) -> &'a TableSettings {
        &self.host.settings
    }
    pub fn used(&self) -> &ColumnSet {
        &self.used
    }
    pub fn constraints(&self) -> &[Constraint] {
        &self.constraints
    }

    /// `Err` when the scan should stop: its reader went away (a `LIMIT` was reached), the
    /// query was cancelled or ran past its deadline. Long generators call it in their
    /// loops (per file, per process, per batch of work) and return the error with `?`;
    /// the engine knows it is not a failure of the table.
    #[inline]
    pub fn check(&self) -> Result<(), TableError> {
        match self.interrupt.status() {
            None => Ok(()),
            Some(reason) => Err(TableError::Interrupted(reason)),
        }
    }

    /// Waits `delay` (a pacing flag such as `--yara_delay`), returning early with the
    /// error of [`QueryContext::check`] when the scan should stop meanwhile.
    pub fn pause(&self, delay: std::time::Duration) -> Result<(), TableError> {
        let until = std::time::Instant::now() + delay;
        loop {
            self.check()?;
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            // Short steps, so a cancelled query is not held for the whole delay.
            std::thread::sleep(left.min(std::time::Duration::from_millis(50)));
        }
    }

    /// Whether the scan should stop (see [`QueryContext::check`]).
    #[inline]
    pub fn is_stopped(&self) -> bool {
        self.interrupt.status().is_some()
    }

    /// Whether the query reads this column.
    #[inline]
    pub fn is_used(&self, column: impl Into<usize>) -> bool {
        self.used.contains(column.into())
    }

    /// Whether any constraint on `column` reached the table.
    pub fn is_constrained(&self, column: impl Into<usize>) -> bool {
        let column = column.into();
        self.constraints.iter().any(|c| c.column == column)
    }

    /// The values of every `op` constraint on `column`.
    pub fn values(&self, column: impl Into<usize>, op: Op) -> impl Iterator<Item = &Value> {
        let column = column.into();
        self.constraints
            .iter()
            .filter(move |c| c.column == column && c.op == op)
            .map(|c| &c.value)
    }

    /// The `=` (and `IN`) values on `column` as integers, sorted and unique, or `None`
    /// when the column has no equality constraint. A value that is not an integer can
    /// match no row and is dropped.
    pub fn eq_integers(&self, column: impl Into<usize>) -> Option<Vec<i64>> {
        let column = column.into();
        if !self.values(column, Op::Eq).any(|_| true) {
            return None;
        }
        let mut out: Vec<i64> = self
            .values(column, Op::Eq)
            .filter_map(Value::as_i64)
            .collect();
        out.sort_unstable();
        out.dedup();
        Some(out)
    }

    /// The `=` (and `IN`) values on `column` as text, unique, or `None` when the column
    /// has no equality constraint.
    pub fn eq_texts(&self, column: impl Into<usize>) -> Option<Vec<String>> {
        let column = column.into();
        if !self.values(column, Op::Eq).any(|_| true) {
            return None;
        }
        let mut out: Vec<String> = self
            .values(column, Op::Eq)
            .filter_map(|v| v.as_text().map(|t| t.into_owned()))
            .collect();
        out.sort();
        out.dedup();
        Some(out)
    }

    /// The `=` (and `IN`) values on `column` as paths, with their bytes as the query
    /// wrote them (a file name need not be UTF-8), unique, or `None` when the column has
    /// no equality constraint.
    pub fn eq_paths(&self, column: impl Into<usize>) -> Option<Vec<std::ffi::OsString>> {
        use std::os::unix::ffi::OsStringExt;
        let column = column.into();
        if !self.values(column, Op::Eq).any(|_| true) {
            return None;
        }
        let mut out: Vec<std::ffi::OsString> = self
            .values(column, Op::Eq)
            .filter_map(|v| v.as_bytes())
            .map(|b| std::ffi::OsString::from_vec(b.into_owned()))
            .collect();
        out.sort();
        out.dedup();
        Some(out)
    }

    /// The text patterns of every `op` constraint on `column` (for LIKE and GLOB).
    pub fn patterns(&self, column: impl Into<usize>, op: Op) -> Vec<String> {
        self.values(column, op)
            .filter_map(|v| v.as_text().map(|t| t.into_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cancel, Column, ColumnOptions, ColumnType, StopReason};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    const A: usize = 0;
    const B: usize = 1;

    fn spec() -> TableSpec {
        TableSpec::new(
            "t",
            "A test table.",
            vec![
                Column::new("a", ColumnType::BigInt, ColumnOptions::INDEX, "a"),
                Column::new("b", ColumnType::Text, ColumnOptions::INDEX, "b"),
                Column::new("c", ColumnType::Text, ColumnOptions::empty(), "c"),
            ],
            crate::Attributes::NONE,
        )
    }

    #[test]
    fn eq_integers_sorts_dedups_and_drops_what_is_no_integer() {
        let spec = spec();
        let host = Host::default();
        let ctx = QueryContext::everything(&spec, &host);
        assert_eq!(ctx.eq_integers(A), None);
        let ctx = ctx
            .with_constraint(A, Op::Eq, 9_i64)
            .with_constraint(A, Op::Eq, 3_i64)
            .with_constraint(A, Op::Eq, 9_i64)
            .with_constraint(A, Op::Eq, " 7 ")
            .with_constraint(A, Op::Eq, "seven")
            .with_constraint(A, Op::Eq, Value::Real(2.0))
            .with_constraint(A, Op::Eq, Value::Real(2.5))
            .with_constraint(A, Op::Eq, Value::Null)
            .with_constraint(A, Op::Gt, 100_i64)
            .with_constraint(B, Op::Eq, 1_i64);
        assert_eq!(ctx.eq_integers(A), Some(vec![2, 3, 7, 9]));
        // Only values that match no integer: an empty list, not "unconstrained".
        let spec = self::spec();
        let ctx = QueryContext::everything(&spec, &host).with_constraint(A, Op::Eq, "x");
        assert_eq!(ctx.eq_integers(A), Some(vec![]));
        // Range operators are no equality.
        let ctx = QueryContext::everything(&spec, &host).with_constraint(A, Op::Ge, 1_i64);
        assert_eq!(ctx.eq_integers(A), None);
    }

    #[test]
    fn eq_texts_patterns_and_is_constrained() {
        let spec = spec();
        let host = Host::default();
        let ctx = QueryContext::everything(&spec, &host)
            .with_constraint(B, Op::Eq, "zeta")
            .with_constraint(B, Op::Eq, "alpha")
            .with_constraint(B, Op::Eq, "zeta")
            .with_constraint(B, Op::Eq, 12_i64)
            .with_constraint(B, Op::Like, "/etc/%")
            .with_constraint(B, Op::Like, "/usr/%%")
            .with_constraint(B, Op::Glob, "*.conf")
            .with_constraint(A, Op::Like, "not b");
        assert_eq!(
            ctx.eq_texts(B),
            Some(vec!["12".to_owned(), "alpha".to_owned(), "zeta".to_owned()])
        );
        assert_eq!(ctx.eq_texts(A), None);
        // Patterns keep their order and stay per operator and column.
        assert_eq!(ctx.patterns(B, Op::Like), ["/etc/%", "/usr/%%"]);
        assert_eq!(ctx.patterns(B, Op::Glob), ["*.conf"]);
        assert!(ctx.patterns(B, Op::Regexp).is_empty());
        assert!(ctx.is_constrained(A));
        assert!(ctx.is_constrained(B));
        assert!(!ctx.is_constrained(2usize));
    }

    #[test]
    fn used_columns() {
        let spec = spec();
        let host = Host::default();
        let ctx = QueryContext::everything(&spec, &host);
        assert!((0..3usize).all(|c| ctx.is_used(c)));
        let ctx = ctx.using([B]);
        assert!(ctx.is_used(B) && !ctx.is_used(A));
        assert_eq!(ctx.used().iter().collect::<Vec<_>>(), [B]);
        assert!(!ctx.is_used(99usize));
    }

    #[test]
    fn check_reports_why_the_scan_must_stop() {
        let spec = spec();
        let host = Host::default();
        let token = Cancel::new();
        let closed = Arc::new(AtomicBool::new(false));
        let ctx = QueryContext::everything(&spec, &host)
            .with_interrupt(Interrupt::new(token.clone(), Some(Arc::clone(&closed))));
        assert!(ctx.check().is_ok());
        assert!(!ctx.is_stopped());

        token.cancel();
        assert!(matches!(
            ctx.check(),
            Err(TableError::Interrupted(StopReason::Cancelled))
        ));
        assert!(ctx.is_stopped());

        token.reset();
        assert!(ctx.check().is_ok());
        token.set_deadline(Some(std::time::Instant::now()));
        assert!(matches!(
            ctx.check(),
            Err(TableError::Interrupted(StopReason::Deadline))
        ));

        token.reset();
        closed.store(true, Ordering::Release);
        assert!(matches!(
            ctx.check(),
            Err(TableError::Interrupted(StopReason::Closed))
        ));
        // A context built without an interrupt never stops.
        let free = QueryContext::everything(&spec, &host);
        assert!(free.check().is_ok());
    }
}
