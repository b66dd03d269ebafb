//! `docker_volume_labels`: the labels of the Docker daemon's volumes.

use super::docker::{asked_names, text};
use super::docker_volumes::list_volumes;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_volume_labels",
    description: "Labels of Docker volumes, one row per label (GET /volumes; name = and a single key = become the API's name and label filters). No daemon: no rows.",
    columns: {
        name: Text [INDEX] "Volume name",
        key: Text [INDEX] "Label key",
        value: Text [] "Label value",
    },
    examples: ["select name, key, value from docker_volume_labels"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let names = asked_names(ctx, Col::name);
    let keys = ctx.eq_texts(Col::key);
    if keys.as_ref().is_some_and(Vec::is_empty) {
        return Ok(());
    }
    // Several label filters must all hold in Docker, so only a single key is sent.
    let label_filter: Vec<String> = match &keys {
        Some(k) if k.len() == 1 && !k[0].contains('=') => k.clone(),
        _ => Vec::new(),
    };
    let Some(volumes) = list_volumes(
        ctx,
        TABLE.spec.name.as_ref(),
        names.as_deref(),
        &label_filter,
    )?
    else {
        return Ok(());
    };
    for v in &volumes {
        ctx.check()?;
        let name = text(v, "Name");
        let labels = v.get("Labels").and_then(|l| l.as_object());
        for (key, value) in labels.into_iter().flatten() {
            if keys.as_ref().is_some_and(|k| !k.contains(key)) {
                continue;
            }
            let mut row = rows.row();
            row.set(Col::name, name.as_str());
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

    #[test]
    fn matches_docker_volume_inspect() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let labels: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&d.cli(&[
            "volume",
            "inspect",
            "--format",
            "{{json .Labels}}",
            &d.volume_name,
        ]))
        .unwrap();
        let want: Vec<(String, String, String)> = labels
            .iter()
            .map(|(k, v)| {
                (
                    d.volume_name.clone(),
                    k.clone(),
                    v.as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(want.len(), 1);
        for ctx in [
            QueryContext::everything(TABLE.spec, &host),
            QueryContext::everything(TABLE.spec, &host).with_constraint(
                Col::name,
                Op::Eq,
                d.volume_name.clone(),
            ),
            QueryContext::everything(TABLE.spec, &host).with_constraint(
                Col::key,
                Op::Eq,
                want[0].1.clone(),
            ),
        ] {
            let got: Vec<(String, String, String)> = rows_of(&ctx, generate)
                .iter()
                .map(|r| (text(&r[0]), text(&r[1]), text(&r[2])))
                .collect();
            assert_eq!(got, want);
        }
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::key,
            Op::Eq,
            "no.such.key",
        );
        assert!(rows_of(&ctx, generate).is_empty());
    }
}
