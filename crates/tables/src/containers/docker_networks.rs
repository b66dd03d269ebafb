//! `docker_networks`: the Docker daemon's networks.

use super::docker::{self, asked_ids, filters, flag, reported_id, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_networks",
    description: "Docker networks (GET /networks; id = becomes the API's id filter, and an id may be a prefix of the full id). Subnet and gateway are those of the first IPAM configuration. No daemon: no rows.",
    columns: {
        id: Text [INDEX | COLLATE_NOCASE] "Network id (or the prefix the query asked for)",
        name: Text [] "Network name",
        driver: Text [] "Network driver (bridge, host, null, overlay, macvlan, ...)",
        created: BigInt [] "Unix time the network was created",
        enable_ipv6: Integer [] "1 if IPv6 is enabled",
        subnet: Text [] "Subnet of the first IPAM configuration (CIDR)",
        gateway: Text [] "Gateway of the first IPAM configuration",
    },
    examples: ["select name, driver, subnet from docker_networks"],
}

/// `GET /networks`, narrowed by the ids asked for: the networks and those ids.
pub(crate) fn list_networks(
    ctx: &QueryContext,
    table: &str,
    ids: Option<&[String]>,
) -> Result<Option<Vec<serde_json::Value>>, oxquery_table::TableError> {
    if ids.is_some_and(<[String]>::is_empty) {
        return Ok(None);
    }
    let filter = filters(&[("id", ids.unwrap_or_default())]);
    let target = if filter.is_empty() {
        "/networks".to_owned()
    } else {
        format!("/networks?{filter}")
    };
    let Some(list) = docker::get(ctx, table, &target)? else {
        return Ok(None);
    };
    Ok(Some(docker::array(table, "/networks", &list).to_vec()))
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let ids = asked_ids(ctx, Col::id);
    let Some(networks) = list_networks(ctx, TABLE.spec.name.as_ref(), ids.as_deref())? else {
        return Ok(());
    };
    for n in &networks {
        ctx.check()?;
        let mut row = rows.row();
        row.set(Col::id, reported_id(&text(n, "Id"), ids.as_deref()));
        row.set(Col::name, text(n, "Name"));
        row.set(Col::driver, text(n, "Driver"));
        row.set(
            Col::created,
            oxquery_sys::syslog_pipe::parse_datetime(&text(n, "Created")),
        );
        row.set(Col::enable_ipv6, flag(n, "EnableIPv6"));
        let first = n
            .get("IPAM")
            .and_then(|i| i.get("Config"))
            .and_then(|c| c.get(0));
        if let Some(config) = first {
            row.set(Col::subnet, text(config, "Subnet"));
            row.set(Col::gateway, text(config, "Gateway"));
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
    fn matches_docker_network_inspect() {
        let Some(d) = daemon() else { return };
        let host = host_for(&d.socket);
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        let mut got: Vec<String> = rows.iter().map(|r| text(&r[Col::id as usize])).collect();
        let listed = d.cli(&["network", "ls", "--no-trunc", "--quiet"]);
        let mut want: Vec<&str> = listed.lines().collect();
        got.sort();
        want.sort();
        assert_eq!(got, want);

        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::id,
            Op::Eq,
            d.network_id.clone(),
        );
        let rows = rows_of(&ctx, generate);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        let i: serde_json::Value =
            serde_json::from_str(&d.cli(&["network", "inspect", &d.network_id])).unwrap();
        let i = &i[0];
        assert_eq!(text(&r[Col::name as usize]), d.network_name);
        assert_eq!(text(&r[Col::driver as usize]), "bridge");
        assert_eq!(text(&r[Col::subnet as usize]), "10.213.7.0/24");
        assert_eq!(
            text(&r[Col::gateway as usize]),
            i["IPAM"]["Config"][0]["Gateway"].as_str().unwrap_or("")
        );
        assert_eq!(r[Col::enable_ipv6 as usize], Value::Integer(0));
        assert_eq!(
            r[Col::created as usize],
            Value::Integer(
                oxquery_sys::syslog_pipe::parse_datetime(i["Created"].as_str().unwrap()).unwrap()
            )
        );
    }
}
