//! The row buffer generators append to.

use crate::{ColumnSet, QueryContext, Value};

/// Rows of one scan, stored flat (`width` values per row). Cells of columns the query
/// does not use stay `Null`: [`RowMut::set`] drops them, so generators need not check
/// for cheap values, and check [`RowMut::wants`] before computing expensive ones.
#[derive(Debug)]
pub struct Rows {
    width: usize,
    used: ColumnSet,
    values: Vec<Value>,
}

impl Rows {
    pub fn new(width: usize, used: ColumnSet) -> Self {
        Rows {
            width,
            used,
            values: Vec::new(),
        }
    }

    /// An empty buffer shaped for this scan.
    pub fn for_context(ctx: &QueryContext<'_>) -> Self {
        Rows::new(ctx.spec().columns.len(), ctx.used().clone())
    }

    /// Runs `generate` for `ctx` into a fresh buffer (what the engine does per scan; tests
    /// and benchmarks call tables this way).
    pub fn collect(
        ctx: &QueryContext<'_>,
        generate: crate::Generator,
    ) -> Result<Rows, crate::TableError> {
        let mut rows = Rows::for_context(ctx);
        generate(ctx, &mut rows)?;
        Ok(rows)
    }

    /// Appends a row of NULLs and returns it for filling in.
    pub fn row(&mut self) -> RowMut<'_> {
        let start = self.values.len();
        self.values.resize(start + self.width, Value::Null);
        RowMut {
            cells: &mut self.values[start..],
            used: &self.used,
        }
    }

    /// Removes the last row (a generator that found out mid-row the row is not wanted).
    pub fn pop(&mut self) {
        let len = self.values.len().saturating_sub(self.width);
        self.values.truncate(len);
    }

    pub fn len(&self) -> usize {
        self.values.len().checked_div(self.width).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    pub fn width(&self) -> usize {
        self.width
    }

    /// The cells of row `index`.
    pub fn get(&self, index: usize) -> Option<&[Value]> {
        let start = index.checked_mul(self.width)?;
        self.values.get(start..start + self.width)
    }

    pub fn iter(&self) -> impl Iterator<Item = &[Value]> {
        self.values.chunks_exact(self.width.max(1))
    }

    /// All values of one column, in row order (handy in tests).
    pub fn column(&self, column: impl Into<usize>) -> Vec<&Value> {
        let column = column.into();
        self.iter().map(|r| &r[column]).collect()
    }
}

/// A row being filled in.
#[derive(Debug)]
pub struct RowMut<'a> {
    cells: &'a mut [Value],
    used: &'a ColumnSet,
}

impl RowMut<'_> {
    /// Whether the query reads this column: compute it only if so.
    #[inline]
    pub fn wants(&self, column: impl Into<usize>) -> bool {
        self.used.contains(column.into())
    }

    /// Sets a cell; a value for a column the query does not use is dropped.
    #[inline]
    pub fn set(&mut self, column: impl Into<usize>, value: impl Into<Value>) {
        let column = column.into();
        if self.used.contains(column) {
            self.cells[column] = value.into();
        }
    }

    /// Sets a cell from a closure that only runs when the query reads the column.
    #[inline]
    pub fn set_with<V: Into<Value>>(&mut self, column: impl Into<usize>, f: impl FnOnce() -> V) {
        let column = column.into();
        if self.used.contains(column) {
            self.cells[column] = f().into();
        }
    }

    pub fn get(&self, column: impl Into<usize>) -> &Value {
        &self.cells[column.into()]
    }
}
