//! `docker_volumes`: the Docker daemon's volumes.

use super::docker::{self, asked_names, filters, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_volumes",
    description: "Docker volumes (GET /volumes; name = becomes the API's name filter). No daemon: no rows.",
    columns: {
        name: Text [INDEX] "Volume name",
        driver: Text [] "Volume driver (local, ...)",
        mount_point: Text [] "Where the volume is on the host",
        r#type: Text [] "Filesystem type option of the volume (Options.type; '' for a plain local volume)",
    },
    examples: ["select name, driver, mount_point from docker_volumes"],
}

/// `GET /volumes`, narrowed by the names asked for (and a single label key, when given).
pub(crate) fn list_volumes(
    ctx: &QueryContext,
    table: &str,
    names: Option<&[String]>,
    label_keys: &[String],
) -> Result<Option<Vec<serde_json::Value>>, oxquery_table::TableError> {
    if names.is_some_and(<[String]>::is_empty) {
        return Ok(None);
    }
    let filter = filters(&[("name", names.unwrap_or_default()), ("label", label_keys)]);
    let target = if filter.is_empty() {
        "/volumes".to_owned()
    } else {
        format!("/volumes?{filter}")
    };
    let Some(answer) = docker::get(ctx, table, &target)? else {
        return Ok(None);
    };
    let volumes = answer.get("Volumes").unwrap_or(&serde_json::Value::Null);
    // No volumes at all comes as `null`.
    if volumes.is_null() {
        return Ok(Some(Vec::new()));
    }
    Ok(Some(
        docker::array(table, "/volumes Volumes", volumes).to_vec(),
    ))
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let names = asked_names(ctx, Col::name);
    let Some(volumes) = list_volumes(ctx, TABLE.spec.name.as_ref(), names.as_deref(), &[])? else {
        return Ok(());
    };
    for v in &volumes {
        ctx.check()?;
        let mut row = rows.row();
        row.set(Col::name, text(v, "Name"));
        row.set(Col::driver, text(v, "Driver"));
        row.set(Col::mount_point, text(v, "Mountpoint"));
        let options = v.get("Options").unwrap_or(&serde_json::Value::Null);
        row.set(Col::r#type, text(options, "type"));
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
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        let mut got: Vec<String> = rows.iter().map(|r| text(&r[Col::name as usize])).collect();
        let listed = d.cli(&["volume", "ls", "--quiet"]);
        let mut want: Vec<&str> = listed.lines().collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);

        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::name,
            Op::Eq,
            d.volume_name.clone(),
        );
        let rows = rows_of(&ctx, generate);
        assert_eq!(rows.len(), 1);
        let i: serde_json::Value =
            serde_json::from_str(&d.cli(&["volume", "inspect", &d.volume_name])).unwrap();
        let r = &rows[0];
        assert_eq!(
            text(&r[Col::driver as usize]),
            i[0]["Driver"].as_str().unwrap()
        );
        assert_eq!(
            text(&r[Col::mount_point as usize]),
            i[0]["Mountpoint"].as_str().unwrap()
        );
        assert!(
            std::path::Path::new(&text(&r[Col::mount_point as usize]))
                .join("sub")
                .is_dir()
        );
        assert_eq!(text(&r[Col::r#type as usize]), "");
    }
}
