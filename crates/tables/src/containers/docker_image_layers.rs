//! `docker_image_layers`: the filesystem layers of the Docker daemon's images.

use super::docker::{self, asked_ids};
use super::docker_image_labels::images_with;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_image_layers",
    description: "Filesystem layers of Docker images, bottom first (RootFS.Layers of GET /images/{id}/json for each image; with id = only the images asked for). No daemon: no rows.",
    columns: {
        id: Text [INDEX | COLLATE_NOCASE] "Image id without sha256: (or the prefix the query asked for)",
        layer_id: Text [COLLATE_NOCASE] "Layer digest (diff id), without sha256:",
        layer_order: Integer [] "Position of the layer, 1 for the bottom one",
    },
    examples: ["select id, layer_order, layer_id from docker_image_layers"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let ids = asked_ids(ctx, Col::id);
    // With ids asked for, each image was inspected already; the list's entries carry no
    // layers, so each listed image is inspected.
    let mut images = Vec::new();
    images_with(ctx, table, ids.as_deref(), |id, image| {
        images.push((id, image.get("RootFS").is_some().then(|| image.clone())));
        Ok(())
    })?;
    for (id, inspected) in images {
        ctx.check()?;
        let image = match inspected {
            Some(image) => image,
            None => match docker::get(ctx, table, &format!("/images/{id}/json"))? {
                Some(image) => image,
                None => continue,
            },
        };
        let layers = image
            .get("RootFS")
            .and_then(|r| r.get("Layers"))
            .and_then(|l| l.as_array());
        for (i, layer) in layers.into_iter().flatten().enumerate() {
            let mut row = rows.row();
            row.set(Col::id, id.as_str());
            row.set(
                Col::layer_id,
                docker::strip_sha256(layer.as_str().unwrap_or("")),
            );
            row.set(Col::layer_order, i as i64 + 1);
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
    fn matches_docker_image_inspect() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let id = d.image_id.trim_start_matches("sha256:");
        let want: Vec<String> = serde_json::from_str(&d.inspect(&[
            "--type",
            "image",
            "--format",
            "{{json .RootFS.Layers}}",
            &d.image_id,
        ]))
        .unwrap();
        for ctx in [
            QueryContext::everything(TABLE.spec, &host),
            QueryContext::everything(TABLE.spec, &host).with_constraint(Col::id, Op::Eq, id),
        ] {
            let rows: Vec<_> = rows_of(&ctx, generate)
                .into_iter()
                .filter(|r| text(&r[Col::id as usize]) == id)
                .collect();
            let got: Vec<String> = rows
                .iter()
                .map(|r| format!("sha256:{}", text(&r[Col::layer_id as usize])))
                .collect();
            assert_eq!(got, want);
            assert_eq!(rows[0][Col::layer_order as usize], Value::Integer(1));
        }
    }
}
