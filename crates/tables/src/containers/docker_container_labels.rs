//! `docker_container_labels`: the labels of the Docker daemon's containers.

use super::docker::{self, asked_ids, filters, reported_id, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_container_labels",
    description: "Labels of Docker containers, running or stopped, one row per label (GET /containers/json?all=1). id = and key = become the API's id and label filters; an id may be a prefix of the full id. No daemon: no rows.",
    columns: {
        id: Text [INDEX | COLLATE_NOCASE] "Container id (64 hex digits, or the prefix the query asked for)",
        key: Text [INDEX] "Label key",
        value: Text [] "Label value",
    },
    examples: ["select id, value from docker_container_labels where key = 'com.docker.compose.project'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let ids = asked_ids(ctx, Col::id);
    let keys = ctx.eq_texts(Col::key);
    if ids.as_ref().is_some_and(Vec::is_empty) || keys.as_ref().is_some_and(Vec::is_empty) {
        return Ok(());
    }
    // Docker's label filter with several keys wants all of them (AND); SQLite's IN wants
    // any, so only a single key is pushed down.
    let label_filter: Vec<String> = match &keys {
        Some(k) if k.len() == 1 && !k[0].contains('=') => k.clone(),
        _ => Vec::new(),
    };
    let filter = filters(&[
        ("id", ids.as_deref().unwrap_or_default()),
        ("label", &label_filter),
    ]);
    let target = if filter.is_empty() {
        "/containers/json?all=1".to_owned()
    } else {
        format!("/containers/json?all=1&{filter}")
    };
    let Some(list) = docker::get(ctx, table, &target)? else {
        return Ok(());
    };
    for c in docker::array(table, "/containers/json", &list) {
        ctx.check()?;
        let id = reported_id(&text(c, "Id"), ids.as_deref());
        let Some(labels) = c.get("Labels").and_then(|l| l.as_object()) else {
            continue;
        };
        for (key, value) in labels {
            if keys.as_ref().is_some_and(|k| !k.contains(key)) {
                continue;
            }
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
    use oxquery_table::Op;
    use std::collections::BTreeSet;

    fn labels_of(rows: &[Vec<oxquery_table::Value>], id: &str) -> BTreeSet<(String, String)> {
        rows.iter()
            .filter(|r| text(&r[0]) == id)
            .map(|r| (text(&r[1]), text(&r[2])))
            .collect()
    }

    #[test]
    fn matches_docker_inspect() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        for id in [&d.running_id, &d.created_id] {
            let inspect: serde_json::Value =
                serde_json::from_str(&d.inspect(&["--format", "{{json .Config.Labels}}", id]))
                    .unwrap();
            let want: BTreeSet<(String, String)> = inspect
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            assert!(want.contains(&("org.oxquery.image".to_owned(), "busybox".to_owned())));
            assert_eq!(labels_of(&rows, id), want);
        }
    }

    #[test]
    fn id_and_key_constraints_narrow_the_call() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::key,
            Op::Eq,
            "org.oxquery.role",
        );
        let rows = rows_of(&ctx, generate);
        let got: BTreeSet<(String, String)> =
            rows.iter().map(|r| (text(&r[0]), text(&r[2]))).collect();
        let want: BTreeSet<(String, String)> = [
            (d.running_id.clone(), "running".to_owned()),
            (d.created_id.clone(), "created".to_owned()),
        ]
        .into();
        assert_eq!(got, want);
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::id,
            Op::Eq,
            d.created_id.clone(),
        );
        let rows = rows_of(&ctx, generate);
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| text(&r[0]) == d.created_id));
    }
}
