//! `--planner`: which constraints and columns reached each table's generator.

use oxquery_table::QueryContext;
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the trace on or off for the whole process.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub(crate) fn trace(ctx: &QueryContext<'_>) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let spec = ctx.spec();
    let constraints: Vec<String> = ctx
        .constraints()
        .iter()
        .map(|c| {
            format!(
                "{} {} {:?}",
                spec.columns[c.column].name,
                c.op.symbol(),
                c.value.as_text().unwrap_or_default()
            )
        })
        .collect();
    let columns: Vec<&str> = ctx.used().iter().map(|i| spec.columns[i].name).collect();
    eprintln!(
        "[planner] {}: constraints [{}] columns [{}]",
        spec.name,
        constraints.join(", "),
        columns.join(", ")
    );
}
