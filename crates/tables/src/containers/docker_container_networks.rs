//! `docker_container_networks`: the networks the Docker daemon's containers are attached to.

use super::docker::{self, asked_ids, int, reported_id, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "docker_container_networks",
    description: "Networks Docker containers are attached to, one row per container and network, from NetworkSettings.Networks of GET /containers/json?all=1. id = becomes the API's id filter (an id may be a prefix of the full id). No daemon: no rows.",
    columns: {
        id: Text [INDEX | COLLATE_NOCASE] "Container id (64 hex digits, or the prefix the query asked for)",
        name: Text [INDEX] "Network name",
        network_id: Text [COLLATE_NOCASE] "Network id",
        endpoint_id: Text [COLLATE_NOCASE] "Endpoint id ('' while the container is not running)",
        gateway: Text [] "IPv4 gateway",
        ip_address: Text [] "IPv4 address of the container",
        ip_prefix_len: Integer [] "IPv4 prefix length",
        ipv6_gateway: Text [] "IPv6 gateway",
        ipv6_address: Text [] "Global IPv6 address of the container",
        ipv6_prefix_len: Integer [] "Global IPv6 prefix length",
        mac_address: Text [COLLATE_NOCASE] "MAC address of the container's interface",
    },
    examples: ["select c.name, n.name, n.ip_address from docker_containers c join docker_container_networks n using (id)"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let ids = asked_ids(ctx, Col::id);
    let names = ctx.eq_texts(Col::name);
    let Some(containers) = docker::list_containers(ctx, table, ids.as_deref(), None)? else {
        return Ok(());
    };
    for c in &containers {
        ctx.check()?;
        let id = reported_id(&text(c, "Id"), ids.as_deref());
        let networks = c
            .get("NetworkSettings")
            .and_then(|s| s.get("Networks"))
            .and_then(|n| n.as_object());
        for (name, n) in networks.into_iter().flatten() {
            if names.as_ref().is_some_and(|want| !want.contains(name)) {
                continue;
            }
            let mut row = rows.row();
            row.set(Col::id, id.as_str());
            row.set(Col::name, name.as_str());
            row.set(Col::network_id, text(n, "NetworkID"));
            row.set(Col::endpoint_id, text(n, "EndpointID"));
            row.set(Col::gateway, text(n, "Gateway"));
            row.set(Col::ip_address, text(n, "IPAddress"));
            row.set(Col::ip_prefix_len, int(n, "IPPrefixLen"));
            row.set(Col::ipv6_gateway, text(n, "IPv6Gateway"));
            row.set(Col::ipv6_address, text(n, "GlobalIPv6Address"));
            row.set(Col::ipv6_prefix_len, int(n, "GlobalIPv6PrefixLen"));
            row.set(Col::mac_address, text(n, "MacAddress"));
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
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        let n: serde_json::Value = serde_json::from_str(&d.inspect(&[
            "--format",
            &format!(
                "{{{{json (index .NetworkSettings.Networks \"{}\")}}}}",
                d.network_name
            ),
            &d.running_id,
        ]))
        .unwrap();
        assert_eq!(text(&row[Col::name as usize]), d.network_name);
        assert_eq!(text(&row[Col::network_id as usize]), d.network_id);
        assert_eq!(
            text(&row[Col::endpoint_id as usize]),
            n["EndpointID"].as_str().unwrap()
        );
        assert_eq!(
            text(&row[Col::gateway as usize]),
            n["Gateway"].as_str().unwrap()
        );
        assert_eq!(
            text(&row[Col::ip_address as usize]),
            n["IPAddress"].as_str().unwrap()
        );
        assert!(text(&row[Col::ip_address as usize]).starts_with("10.213.7."));
        assert_eq!(row[Col::ip_prefix_len as usize], Value::Integer(24));
        assert_eq!(
            text(&row[Col::mac_address as usize]),
            n["MacAddress"].as_str().unwrap()
        );
        // A name that is not the network's: no row.
        let ctx = QueryContext::everything(TABLE.spec, &host)
            .with_constraint(Col::id, Op::Eq, d.running_id.clone())
            .with_constraint(Col::name, Op::Eq, "host");
        assert!(rows_of(&ctx, generate).is_empty());
    }
}
