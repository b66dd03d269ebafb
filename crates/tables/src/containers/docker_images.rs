//! `docker_images`: the Docker daemon's images.

use super::docker::{self, int, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_images",
    description: "Docker images the daemon holds (GET /images/json: top-level images, as docker images lists them). No daemon: no rows.",
    columns: {
        id: Text [COLLATE_NOCASE] "Image id, without sha256:",
        created: BigInt [] "Unix time the image was created",
        size_bytes: BigInt [] "Size of the image with its parent layers, in bytes",
        tags: Text [] "Repository tags (name:tag), comma-separated",
    },
    examples: ["select id, tags, size_bytes from docker_images order by size_bytes desc"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let Some(list) = docker::get(ctx, table, "/images/json")? else {
        return Ok(());
    };
    for image in docker::array(table, "/images/json", &list) {
        ctx.check()?;
        let mut row = rows.row();
        row.set(Col::id, docker::strip_sha256(&text(image, "Id")));
        row.set(Col::created, int(image, "Created"));
        row.set(Col::size_bytes, int(image, "Size"));
        row.set(Col::tags, docker::joined(image, "RepoTags", ","));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::docker::testing::{daemon, host_for};
    use crate::testing::{rows_of, text};
    use oxquery_table::Value;

    #[test]
    fn matches_docker_image_inspect() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        let ids = d.cli(&["images", "--all", "--no-trunc", "--quiet"]);
        let mut want: Vec<String> = ids
            .lines()
            .map(|l| l.trim_start_matches("sha256:").to_owned())
            .collect();
        want.sort();
        want.dedup();
        let mut got: Vec<String> = rows.iter().map(|r| text(&r[Col::id as usize])).collect();
        got.sort();
        assert_eq!(got, want);
        let row = rows
            .iter()
            .find(|r| text(&r[Col::id as usize]) == d.image_id.trim_start_matches("sha256:"))
            .unwrap();
        let i: serde_json::Value =
            serde_json::from_str(&d.inspect(&["--type", "image", &d.image_id])).unwrap();
        let i = &i[0];
        assert_eq!(text(&row[Col::tags as usize]), d.image_tag);
        assert_eq!(
            row[Col::size_bytes as usize],
            Value::Integer(i["Size"].as_i64().unwrap())
        );
        assert_eq!(
            row[Col::created as usize],
            Value::Integer(
                oxquery_sys::syslog_pipe::parse_datetime(i["Created"].as_str().unwrap()).unwrap()
            )
        );
    }
}
