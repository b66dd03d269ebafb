//! `docker_container_envs`: the environment variables of the Docker daemon's containers.

use super::docker::{self, asked_ids, reported_id, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_container_envs",
    description: "Environment variables Docker containers were configured with (Config.Env of GET /containers/{id}/json), one row each. id = lists only those containers (an id may be a prefix of the full id). No daemon: no rows.",
    columns: {
        id: Text [INDEX | COLLATE_NOCASE] "Container id (64 hex digits, or the prefix the query asked for)",
        key: Text [] "Variable name (up to the first =)",
        value: Text [] "Variable value (after the first =; '' when the entry has no =)",
    },
    examples: ["select key, value from docker_container_envs where id = '9a1f'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let ids = asked_ids(ctx, Col::id);
    let Some(containers) = docker::list_containers(ctx, table, ids.as_deref(), None)? else {
        return Ok(());
    };
    for c in &containers {
        ctx.check()?;
        let full_id = text(c, "Id");
        if !docker::is_id_prefix(&full_id) {
            continue;
        }
        let Some(details) = docker::get(ctx, table, &format!("/containers/{full_id}/json"))? else {
            continue;
        };
        let id = reported_id(&full_id, ids.as_deref());
        let env = details
            .get("Config")
            .and_then(|c| c.get("Env"))
            .and_then(|e| e.as_array());
        for entry in env.into_iter().flatten().filter_map(|e| e.as_str()) {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            let mut row = rows.row();
            row.set(Col::id, id.as_str());
            row.set(Col::key, key);
            row.set(Col::value, value);
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

    #[test]
    fn matches_docker_inspect() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::id,
            Op::Eq,
            d.running_id.clone(),
        );
        let rows = rows_of(&ctx, generate);
        let got: Vec<String> = rows
            .iter()
            .map(|r| format!("{}={}", text(&r[1]), text(&r[2])))
            .collect();
        let want: Vec<String> = serde_json::from_str::<Vec<String>>(&d.inspect(&[
            "--format",
            "{{json .Config.Env}}",
            &d.running_id,
        ]))
        .unwrap();
        assert_eq!(got, want);
        // The value keeps its own = signs; an empty value is ''.
        assert!(
            rows.iter()
                .any(|r| text(&r[1]) == "OXQ_GREETING" && text(&r[2]) == "hello=world")
        );
        assert!(
            rows.iter()
                .any(|r| text(&r[1]) == "OXQ_EMPTY" && text(&r[2]).is_empty())
        );
        assert!(rows.iter().all(|r| text(&r[0]) == d.running_id));
        // Unconstrained: every container's variables; the created container has none
        // (its Config.Env is null), as docker inspect says.
        let all = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        assert_eq!(
            d.inspect(&["--format", "{{json .Config.Env}}", &d.created_id]),
            "null"
        );
        assert!(all.iter().any(|r| text(&r[0]) == d.running_id));
        assert!(!all.iter().any(|r| text(&r[0]) == d.created_id));
    }
}
