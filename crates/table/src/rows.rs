//! The row buffer generators append to.
//!
//! A scan's rows either collect in memory ([`Rows::collect`], what tests do) or stream:
//! the engine gives the buffer a sink, and every batch of rows goes to SQLite before the
//! generator makes the next one. A generator writes the same code either way.

use crate::{ColumnSet, QueryContext, Table, TableError, Value};

/// Where a streaming buffer hands its full batches: it takes the batch's cells and
/// returns an empty vector to fill next (its allocation reused), or `None` when the
/// reader wants no more rows (a `LIMIT` was reached, the cursor closed).
pub type Sink<'s> = dyn FnMut(Vec<Value>) -> Option<Vec<Value>> + 's;

/// The first batch is small so that `LIMIT 1` answers after a few rows; batches then
/// double up to [`MAX_BATCH_ROWS`].
const FIRST_BATCH_ROWS: usize = 16;
/// Bounds the memory a scan holds at once, whatever the size of its result.
pub const MAX_BATCH_ROWS: usize = 1024;

/// Rows of one scan, stored flat (`width` values per row). Cells of columns the query
/// does not use stay `Null`: [`RowMut::set`] drops them, so generators need not check
/// for cheap values, and check [`RowMut::wants`] before computing expensive ones.
pub struct Rows<'s> {
    width: usize,
    used: ColumnSet,
    values: Vec<Value>,
    sink: Option<&'s mut Sink<'s>>,
    batch_rows: usize,
    closed: bool,
}

impl std::fmt::Debug for Rows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("width", &self.width)
            .field("rows", &self.len())
            .field("streaming", &self.sink.is_some())
            .field("closed", &self.closed)
            .finish()
    }
}

impl Rows<'static> {
    /// A buffer that keeps every row in memory.
    pub fn new(width: usize, used: ColumnSet) -> Self {
        Rows {
            width,
            used,
            values: Vec::new(),
            sink: None,
            batch_rows: usize::MAX,
            closed: false,
        }
    }

    /// An empty in-memory buffer shaped for this scan (with a rowid cell per row for a
    /// writable table).
    pub fn for_context(ctx: &QueryContext<'_>) -> Self {
        Rows::new(ctx.spec().row_width(), ctx.used().clone())
    }

    /// Runs `generate` for `ctx` into a fresh in-memory buffer (tests and benchmarks call
    /// tables this way).
    pub fn collect(
        ctx: &QueryContext<'_>,
        generate: crate::Generator,
    ) -> Result<Rows<'static>, TableError> {
        let mut rows = Rows::for_context(ctx);
        generate(ctx, &mut rows)?;
        Ok(rows)
    }

    /// Like [`Rows::collect`] for any table object.
    pub fn collect_table(
        ctx: &QueryContext<'_>,
        table: &dyn Table,
    ) -> Result<Rows<'static>, TableError> {
        let mut rows = Rows::for_context(ctx);
        table.generate(ctx, &mut rows)?;
        Ok(rows)
    }
}

impl<'s> Rows<'s> {
    /// A buffer that hands every full batch to `sink` and keeps at most one batch.
    pub fn streaming(width: usize, used: ColumnSet, sink: &'s mut Sink<'s>) -> Self {
        Rows {
            width,
            used,
            values: Vec::new(),
            sink: Some(sink),
            batch_rows: FIRST_BATCH_ROWS,
            closed: false,
        }
    }

    /// Appends a row of NULLs and returns it for filling in. Once the reader wants no
    /// more rows ([`Rows::is_closed`]) the row is scratch space that nobody reads.
    pub fn row(&mut self) -> RowMut<'_> {
        if self.sink.is_some() && self.len() >= self.batch_rows {
            self.flush();
        }
        if self.closed {
            self.values.clear();
        }
        let start = self.values.len();
        self.values.resize(start + self.width, Value::Null);
        RowMut {
            cells: &mut self.values[start..],
            used: &self.used,
        }
    }

    fn flush(&mut self) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if self.closed {
            return;
        }
        let full = std::mem::take(&mut self.values);
        match sink(full) {
            Some(mut empty) => {
                empty.clear();
                self.values = empty;
                self.batch_rows = (self.batch_rows * 2).min(MAX_BATCH_ROWS);
            }
            None => self.closed = true,
        }
    }

    /// An empty in-memory buffer of the same shape (width, used columns), for rows a
    /// generator must finish making before any of them is handed over; [`Rows::extend`]
    /// moves them here afterwards.
    pub fn detached(&self) -> Rows<'static> {
        Rows::new(self.width, self.used.clone())
    }

    /// Makes room for `rows` more rows (at most a batch's when streaming), for a
    /// generator that knows how many it will make.
    pub fn reserve(&mut self, rows: usize) {
        let rows = rows.min(self.batch_rows.saturating_sub(self.len()));
        self.values.reserve(rows.saturating_mul(self.width));
    }

    /// Appends whole rows (`values` holds rows of this buffer's width, as
    /// [`Rows::into_values`] gives them), handing full batches over as [`Rows::row`] does.
    /// Into an empty buffer they go whole, as one batch: they are all made already, so
    /// cutting them up would bound no memory, only copy every cell.
    pub fn extend(&mut self, mut values: Vec<Value>) {
        if self.values.is_empty() && !self.closed && self.width > 0 {
            values.truncate(values.len() - values.len() % self.width);
            self.values = values;
            if self.sink.is_some() && !self.values.is_empty() {
                self.flush();
            }
            return;
        }
        let mut cells = values.into_iter();
        while cells.len() >= self.width && self.width > 0 {
            let row = self.row();
            for (cell, value) in row.cells.iter_mut().zip(cells.by_ref()) {
                *cell = value;
            }
        }
    }

    /// Whether the reader has stopped reading (a streaming scan whose `LIMIT` was
    /// reached). A generator may stop early; [`QueryContext::check`] says so too.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Hands the remaining rows over (what the engine does when the generator returns).
    pub fn into_values(self) -> Vec<Value> {
        if self.closed { Vec::new() } else { self.values }
    }

    /// Removes the last row (a generator that found out mid-row the row is not wanted).
    pub fn pop(&mut self) {
        let len = self.values.len().saturating_sub(self.width);
        self.values.truncate(len);
    }

    /// Rows held now: all of them in memory, the current batch when streaming.
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

    /// Gives the row the rowid a writable table's rows are addressed by (an integer, or
    /// text that is not one: reading that rowid is an error). Without it a row's rowid
    /// is its position in the scan; rows of other tables have no rowid cell.
    pub fn set_rowid(&mut self, rowid: impl Into<Value>) {
        if let Some(cell) = self.cells.get_mut(self.used.width()) {
            *cell = rowid.into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_hands_batches_and_keeps_at_most_one() {
        let mut seen = Vec::new();
        let mut largest = 0;
        let mut sink = |batch: Vec<Value>| {
            largest = largest.max(batch.len());
            seen.extend(batch.iter().filter_map(Value::as_i64));
            Some(Vec::with_capacity(batch.len()))
        };
        let mut rows = Rows::streaming(1, ColumnSet::all(1), &mut sink);
        for i in 0..5000_i64 {
            rows.row().set(0usize, i);
        }
        let rest = rows.into_values();
        seen.extend(rest.iter().filter_map(Value::as_i64));
        assert_eq!(seen, (0..5000).collect::<Vec<_>>());
        assert_eq!(largest, MAX_BATCH_ROWS);
    }

    #[test]
    fn rows_made_detached_are_handed_over_in_order_whole_into_an_empty_buffer() {
        let mut seen = Vec::new();
        let mut batches = Vec::new();
        let mut sink = |batch: Vec<Value>| {
            batches.push(batch.len());
            seen.extend(batch.iter().filter_map(Value::as_i64));
            Some(Vec::with_capacity(batch.len()))
        };
        let mut rows = Rows::streaming(2, ColumnSet::all(2), &mut sink);
        let detached = |from: i64, to: i64| {
            let mut detached = rows_detached_like(2);
            for i in from..to {
                let mut row = detached.row();
                row.set(0usize, i);
                row.set(1usize, -i);
            }
            detached
        };
        // Into an empty buffer: one batch, every cell moved once.
        let first = detached(0, 3000);
        assert_eq!(first.len(), 3000);
        rows.extend(first.into_values());
        // Behind a row made in place: in batches, as rows made one by one are.
        rows.row().set(0usize, 3000_i64);
        rows.extend(detached(3001, 5000).into_values());
        let rest = rows.into_values();
        seen.extend(rest.iter().filter_map(Value::as_i64));
        let expected: Vec<i64> = (0..5000_i64)
            .flat_map(|i| if i == 3000 { vec![i] } else { vec![i, -i] })
            .collect();
        assert_eq!(seen, expected);
        assert_eq!(batches[0], 6000);
        assert!(
            batches[1..].iter().all(|&b| b <= 2 * MAX_BATCH_ROWS),
            "{batches:?}"
        );
    }

    fn rows_detached_like(width: usize) -> Rows<'static> {
        Rows::new(width, ColumnSet::all(width))
    }

    #[test]
    fn a_closed_stream_drops_later_rows() {
        let mut batches = 0;
        let mut sink = |_batch: Vec<Value>| {
            batches += 1;
            None
        };
        let mut rows = Rows::streaming(2, ColumnSet::all(2), &mut sink);
        for i in 0..100_i64 {
            let mut row = rows.row();
            row.set(0usize, i);
        }
        assert!(rows.is_closed());
        assert!(rows.into_values().is_empty());
        assert_eq!(batches, 1);
    }

    #[test]
    fn unused_columns_stay_null() {
        let mut used = ColumnSet::none(2);
        used.insert(1);
        let mut rows = Rows::new(2, used);
        let mut row = rows.row();
        assert!(!row.wants(0usize));
        row.set(0usize, 1_i64);
        row.set(1usize, 2_i64);
        row.set_with(0usize, || -> i64 { panic!("not computed") });
        assert_eq!(rows.get(0).unwrap(), &[Value::Null, Value::Integer(2)]);
        rows.pop();
        assert!(rows.is_empty());
    }
}
