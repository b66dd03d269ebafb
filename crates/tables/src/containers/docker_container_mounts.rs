//! `docker_container_mounts`: the volumes and bind mounts of the Docker daemon's containers.

use super::docker::{self, asked_ids, flag, reported_id, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_container_mounts",
    description: "Mounts of Docker containers (volumes, bind mounts, tmpfs), one row each, from the Mounts of GET /containers/json?all=1. id = becomes the API's id filter (an id may be a prefix of the full id). No daemon: no rows.",
    columns: {
        id: Text [INDEX | COLLATE_NOCASE] "Container id (64 hex digits, or the prefix the query asked for)",
        r#type: Text [] "Mount type: bind, volume, tmpfs, npipe",
        name: Text [INDEX] "Volume name ('' for a bind mount)",
        source: Text [] "Source on the host",
        destination: Text [] "Path inside the container",
        driver: Text [] "Volume driver ('' for a bind mount)",
        mode: Text [] "Mode options as given (ro, z, ...)",
        rw: Integer [] "1 if the mount is read-write",
        propagation: Text [] "Bind propagation (rprivate, shared, ...)",
    },
    examples: ["select id, source, destination from docker_container_mounts where type = 'bind'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let ids = asked_ids(ctx, Col::id);
    let Some(containers) = docker::list_containers(ctx, table, ids.as_deref(), None)? else {
        return Ok(());
    };
    for c in &containers {
        ctx.check()?;
        let id = reported_id(&text(c, "Id"), ids.as_deref());
        let mounts = c.get("Mounts").and_then(|m| m.as_array());
        for m in mounts.into_iter().flatten() {
            let mut row = rows.row();
            row.set(Col::id, id.as_str());
            row.set(Col::r#type, text(m, "Type"));
            row.set(Col::name, text(m, "Name"));
            row.set(Col::source, text(m, "Source"));
            row.set(Col::destination, text(m, "Destination"));
            row.set(Col::driver, text(m, "Driver"));
            row.set(Col::mode, text(m, "Mode"));
            row.set(Col::rw, flag(m, "RW"));
            row.set(Col::propagation, text(m, "Propagation"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::docker::testing::{daemon, host_for};
    use crate::testing::{rows_of, text};
    use oxquery_table::{Op, Value};

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
        let inspect: Vec<serde_json::Value> =
            serde_json::from_str(&d.inspect(&["--format", "{{json .Mounts}}", &d.running_id]))
                .unwrap();
        assert_eq!(rows.len(), inspect.len());
        assert_eq!(rows.len(), 2);
        for m in &inspect {
            let dest = m["Destination"].as_str().unwrap();
            let row = rows
                .iter()
                .find(|r| text(&r[Col::destination as usize]) == dest)
                .unwrap();
            assert_eq!(
                text(&row[Col::r#type as usize]),
                m["Type"].as_str().unwrap()
            );
            assert_eq!(
                text(&row[Col::source as usize]),
                m["Source"].as_str().unwrap()
            );
            assert_eq!(text(&row[Col::mode as usize]), m["Mode"].as_str().unwrap());
            assert_eq!(
                row[Col::rw as usize],
                Value::Integer(i64::from(m["RW"].as_bool().unwrap()))
            );
            assert_eq!(
                text(&row[Col::propagation as usize]),
                m["Propagation"].as_str().unwrap()
            );
            assert_eq!(
                text(&row[Col::name as usize]),
                m.get("Name").and_then(|n| n.as_str()).unwrap_or("")
            );
        }
        let bind = rows
            .iter()
            .find(|r| text(&r[Col::r#type as usize]) == "bind")
            .unwrap();
        assert_eq!(
            text(&bind[Col::source as usize]),
            d.bind_source.display().to_string()
        );
        assert_eq!(bind[Col::rw as usize], Value::Integer(0));
        let volume = rows
            .iter()
            .find(|r| text(&r[Col::r#type as usize]) == "volume")
            .unwrap();
        assert_eq!(text(&volume[Col::name as usize]), d.volume_name);
        assert_eq!(text(&volume[Col::driver as usize]), "local");
    }
}
