//! `docker_image_labels`: the labels of the Docker daemon's images.

use super::docker::{self, asked_ids, reported_id, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use serde_json::Value;

table! {
    name: "docker_image_labels",
    description: "Labels of Docker images, one row per label. Unconstrained: GET /images/json; with id = (an id or a prefix of one) only GET /images/{id}/json for each id asked. No daemon: no rows.",
    columns: {
        id: Text [INDEX | COLLATE_NOCASE] "Image id without sha256: (or the prefix the query asked for)",
        key: Text [] "Label key",
        value: Text [] "Label value",
    },
    examples: ["select id, key, value from docker_image_labels"],
}

/// Each image asked for (or all): its id as reported, and its labels object if any.
pub(crate) fn images_with(
    ctx: &QueryContext,
    table: &str,
    ids: Option<&[String]>,
    mut each: impl FnMut(String, &Value) -> TableResult,
) -> TableResult {
    match ids {
        Some(ids) => {
            for id in ids {
                ctx.check()?;
                if let Some(image) = docker::get(ctx, table, &format!("/images/{id}/json"))? {
                    each(id.clone(), &image)?;
                }
            }
        }
        None => {
            let Some(list) = docker::get(ctx, table, "/images/json")? else {
                return Ok(());
            };
            for image in docker::array(table, "/images/json", &list) {
                ctx.check()?;
                each(reported_id(&text(image, "Id"), None), image)?;
            }
        }
    }
    Ok(())
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let ids = asked_ids(ctx, Col::id);
    images_with(
        ctx,
        TABLE.spec.name.as_ref(),
        ids.as_deref(),
        |id, image| {
            // The list has Labels at the top; an inspected image under Config.
            let labels = image
                .get("Labels")
                .filter(|l| l.is_object())
                .or_else(|| image.get("Config").and_then(|c| c.get("Labels")))
                .and_then(Value::as_object);
            for (key, value) in labels.into_iter().flatten() {
                let mut row = rows.row();
                row.set(Col::id, id.as_str());
                row.set(Col::key, key.as_str());
                row.set(Col::value, value.as_str().unwrap_or(""));
            }
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::docker::testing::{daemon, host_for};
    use crate::testing::{rows_of, text};
    use oxquery_table::Op;

    #[test]
    fn matches_docker_image_inspect() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let want: serde_json::Map<String, Value> = serde_json::from_str(&d.inspect(&[
            "--type",
            "image",
            "--format",
            "{{json .Config.Labels}}",
            &d.image_id,
        ]))
        .unwrap();
        let id = d.image_id.trim_start_matches("sha256:");
        let as_pairs = |rows: Vec<Vec<oxquery_table::Value>>| -> Vec<(String, String, String)> {
            rows.iter()
                .map(|r| (text(&r[0]), text(&r[1]), text(&r[2])))
                .collect()
        };
        let all = as_pairs(rows_of(
            &QueryContext::everything(TABLE.spec, &host),
            generate,
        ));
        let want_rows: Vec<(String, String, String)> = want
            .iter()
            .map(|(k, v)| (id.to_owned(), k.clone(), v.as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(want_rows.len(), 1);
        assert_eq!(all, want_rows);
        // id = inspects just that image; a prefix is reported as asked.
        let prefix = &id[..10];
        let ctx =
            QueryContext::everything(TABLE.spec, &host).with_constraint(Col::id, Op::Eq, prefix);
        let one = as_pairs(rows_of(&ctx, generate));
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].0, prefix);
        assert_eq!((&one[0].1, &one[0].2), (&want_rows[0].1, &want_rows[0].2));
    }
}
