//! The evented tables, one file each.

use oxquery_table::TableDef;

/// Every evented table.
pub fn all() -> Vec<&'static TableDef> {
    Vec::new()
}
