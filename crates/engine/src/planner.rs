//! `--planner`: which constraints and columns reached each table's generator
//! (switched on per engine with [`crate::Engine::set_planner_trace`]).

use oxquery_table::QueryContext;

pub(crate) fn trace(ctx: &QueryContext<'_>) {
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
    let columns: Vec<&str> = ctx.used().iter().map(|i| &*spec.columns[i].name).collect();
    eprintln!(
        "[planner] {}: constraints [{}] columns [{}]",
        spec.name,
        constraints.join(", "),
        columns.join(", ")
    );
}
