//! `docker_image_history`: the history (build steps) of the Docker daemon's images.

use super::docker::{self, asked_ids, int, text};
use super::docker_image_labels::images_with;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_image_history",
    description: "History of Docker images, one row per step that made a layer or changed the configuration (GET /images/{id}/history for each image; with id = only the images asked for). No daemon: no rows.",
    columns: {
        id: Text [INDEX | COLLATE_NOCASE] "Id of the image whose history this is, without sha256: (or the prefix the query asked for)",
        created: BigInt [] "Unix time of the step",
        size: BigInt [] "Size the step added, in bytes",
        created_by: Text [] "Command of the step ('' for an imported image)",
        tags: Text [] "Tags of the step's image, comma-separated",
        comment: Text [] "Comment of the step (docker import --message, docker commit -m)",
    },
    examples: ["select created, size, created_by from docker_image_history where id = '1a2b3c'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let ids = asked_ids(ctx, Col::id);
    // The list (or the ids asked for) names the images; each has its own history call.
    let mut images = Vec::new();
    match &ids {
        Some(ids) => images.extend(ids.iter().map(|id| (id.clone(), id.clone()))),
        None => images_with(ctx, table, None, |id, _| {
            images.push((id.clone(), id));
            Ok(())
        })?,
    }
    for (reported, id) in images {
        ctx.check()?;
        if !docker::is_id_prefix(&id) {
            continue;
        }
        let Some(history) = docker::get(ctx, table, &format!("/images/{id}/history"))? else {
            continue;
        };
        for step in docker::array(table, "/images/{id}/history", &history) {
            let mut row = rows.row();
            row.set(Col::id, reported.as_str());
            row.set(Col::created, int(step, "Created"));
            row.set(Col::size, int(step, "Size"));
            row.set(Col::created_by, text(step, "CreatedBy"));
            row.set(Col::tags, docker::joined(step, "Tags", ","));
            row.set(Col::comment, text(step, "Comment"));
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
    fn matches_docker_image_history() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let id = d.image_id.trim_start_matches("sha256:");
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(Col::id, Op::Eq, id);
        let rows = rows_of(&ctx, generate);
        // `docker image history` with machine-readable fields.
        let cli = d.cli(&[
            "image",
            "history",
            "--no-trunc",
            "--human=false",
            "--format",
            "{{.CreatedBy}}|{{.Size}}|{{.Comment}}",
            &d.image_id,
        ]);
        let got: Vec<String> = rows
            .iter()
            .map(|r| {
                let size = match r[Col::size as usize] {
                    Value::Integer(s) => s,
                    ref v => panic!("{v:?}"),
                };
                format!(
                    "{}|{size}|{}",
                    text(&r[Col::created_by as usize]),
                    text(&r[Col::comment as usize])
                )
            })
            .collect();
        assert_eq!(got, cli.lines().collect::<Vec<_>>());
        assert_eq!(rows.len(), 1);
        assert_eq!(text(&rows[0][Col::comment as usize]), "oxquery test image");
        assert_eq!(text(&rows[0][Col::tags as usize]), d.image_tag);
        assert_eq!(text(&rows[0][Col::id as usize]), id);
        // Unconstrained: every image's history, ours among them.
        let all = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        assert!(all.iter().any(|r| text(&r[Col::id as usize]) == id));
    }
}
