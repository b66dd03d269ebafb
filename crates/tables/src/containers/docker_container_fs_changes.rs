//! `docker_container_fs_changes`: what changed in a Docker container's filesystem.

use super::docker::{self, asked_ids, int, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_container_fs_changes",
    description: "Files added, changed or deleted in the Docker containers the query names (id is required), relative to their image (GET /containers/{id}/changes, as docker diff shows). No daemon or no such container: no rows.",
    columns: {
        id: Text [INDEX | REQUIRED | COLLATE_NOCASE] "Container id (or a unique prefix), as asked",
        path: Text [] "Path inside the container",
        change_type: Text [] "A (added), C (changed) or D (deleted)",
    },
    examples: ["select path, change_type from docker_container_fs_changes where id = '9a1f'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let Some(ids) = asked_ids(ctx, Col::id) else {
        return Ok(());
    };
    for id in &ids {
        ctx.check()?;
        let Some(changes) = docker::get(ctx, table, &format!("/containers/{id}/changes"))? else {
            continue;
        };
        // No change at all comes as `null`.
        if changes.is_null() {
            continue;
        }
        for change in docker::array(table, "/containers/{id}/changes", &changes) {
            let kind = match int(change, "Kind") {
                0 => "C",
                1 => "A",
                2 => "D",
                _ => "",
            };
            let mut row = rows.row();
            row.set(Col::id, id.as_str());
            row.set(Col::path, text(change, "Path"));
            row.set(Col::change_type, kind);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::docker::testing::{daemon, host_for};
    use crate::testing::{rows_of, text};
    use oxquery_table::Op;
    use std::collections::BTreeSet;

    #[test]
    fn matches_docker_diff() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::id,
            Op::Eq,
            d.running_id.clone(),
        );
        let got: BTreeSet<String> = rows_of(&ctx, generate)
            .iter()
            .map(|r| format!("{} {}", text(&r[2]), text(&r[1])))
            .collect();
        // docker diff prints `A /tmp/oxq-file`.
        let want: BTreeSet<String> = d
            .cli(&["diff", &d.running_id])
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(got, want);
        assert!(got.contains("A /tmp/oxq-file"), "{got:?}");
        // Without an id: nothing (the engine refuses such a query before).
        assert!(rows_of(&QueryContext::everything(TABLE.spec, &host), generate).is_empty());
    }
}
