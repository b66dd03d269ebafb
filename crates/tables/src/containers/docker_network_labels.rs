//! `docker_network_labels`: the labels of the Docker daemon's networks.

use super::docker::{asked_ids, reported_id, text};
use super::docker_networks::list_networks;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_network_labels",
    description: "Labels of Docker networks, one row per label (GET /networks; id = becomes the API's id filter, and an id may be a prefix of the full id). No daemon: no rows.",
    columns: {
        id: Text [INDEX | COLLATE_NOCASE] "Network id (or the prefix the query asked for)",
        key: Text [] "Label key",
        value: Text [] "Label value",
    },
    examples: ["select n.name, l.key, l.value from docker_networks n join docker_network_labels l using (id)"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let ids = asked_ids(ctx, Col::id);
    let Some(networks) = list_networks(ctx, TABLE.spec.name.as_ref(), ids.as_deref())? else {
        return Ok(());
    };
    for n in &networks {
        ctx.check()?;
        let id = reported_id(&text(n, "Id"), ids.as_deref());
        let labels = n.get("Labels").and_then(|l| l.as_object());
        for (key, value) in labels.into_iter().flatten() {
            let mut row = rows.row();
            row.set(Col::id, id.as_str());
            row.set(Col::key, key.as_str());
            row.set(Col::value, value.as_str().unwrap_or(""));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::docker::testing::{daemon, host_for};
    use crate::testing::{rows_of, text};

    #[test]
    fn matches_docker_network_inspect() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        let got: Vec<(String, String, String)> = rows
            .iter()
            .map(|r| (text(&r[0]), text(&r[1]), text(&r[2])))
            .collect();
        let labels: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&d.cli(&[
            "network",
            "inspect",
            "--format",
            "{{json .Labels}}",
            &d.network_id,
        ]))
        .unwrap();
        let want: Vec<(String, String, String)> = labels
            .iter()
            .map(|(k, v)| {
                (
                    d.network_id.clone(),
                    k.clone(),
                    v.as_str().unwrap().to_owned(),
                )
            })
            .collect();
        // Only the test's network has labels (host and none have none).
        assert_eq!(got, want);
        assert_eq!(got.len(), 1);
    }
}
