//! `lxd_networks`: the networks the LXD daemon knows.

use super::lxd::{self, flag, int, percent_encode, text, text_in};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use serde_json::Value;

table! {
    name: "lxd_networks",
    description: "Networks the LXD daemon knows: those it manages and the host's own interfaces (GET /1.0/networks?recursion=1 on --lxd_socket). The counters, hwaddr, state and mtu come from GET /1.0/networks/<name>/state, asked only when the query uses them. No daemon: no rows.",
    columns: {
        name: Text [] "Network name",
        r#type: Text [] "Network type (bridge, macvlan, physical, ...)",
        managed: Integer [] "1 if LXD manages the network",
        ipv4_address: Text [] "IPv4 address and prefix of a managed network (config ipv4.address)",
        ipv6_address: Text [] "IPv6 address and prefix of a managed network (config ipv6.address)",
        used_by: Text [] "What uses the network, comma-separated (instances by name, other objects by API path)",
        bytes_received: BigInt [] "Bytes received on the network's interface",
        bytes_sent: BigInt [] "Bytes sent",
        packets_received: BigInt [] "Packets received",
        packets_sent: BigInt [] "Packets sent",
        hwaddr: Text [] "MAC address of the interface",
        state: Text [] "State of the interface (up, down)",
        mtu: Integer [] "MTU of the interface",
    },
    examples: ["select name, type, managed, ipv4_address, state, mtu from lxd_networks"],
}

const STATE_COLUMNS: [Col; 7] = [
    Col::bytes_received,
    Col::bytes_sent,
    Col::packets_received,
    Col::packets_sent,
    Col::hwaddr,
    Col::state,
    Col::mtu,
];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let want_state = STATE_COLUMNS.iter().any(|c| ctx.is_used(*c));
    for network in lxd::list(ctx, table, "/1.0/networks")? {
        ctx.check()?;
        let name = text(&network, "name");
        let state = match want_state {
            true => {
                let target = format!("/1.0/networks/{}/state", percent_encode(&name));
                lxd::get(ctx, table, &target)?
            }
            false => None,
        };
        let users: Vec<&str> = network
            .get("used_by")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|u| u.strip_prefix("/1.0/instances/").unwrap_or(u))
            .collect();
        let mut row = rows.row();
        row.set(Col::name, name.as_str());
        row.set(Col::r#type, text(&network, "type"));
        row.set(Col::managed, flag(&network, "managed"));
        row.set(
            Col::ipv4_address,
            text_in(&network, "config", "ipv4.address"),
        );
        row.set(
            Col::ipv6_address,
            text_in(&network, "config", "ipv6.address"),
        );
        row.set(Col::used_by, users.join(","));
        if let Some(state) = &state {
            let counters = state.get("counters").unwrap_or(&Value::Null);
            row.set(Col::bytes_received, int(counters, "bytes_received"));
            row.set(Col::bytes_sent, int(counters, "bytes_sent"));
            row.set(Col::packets_received, int(counters, "packets_received"));
            row.set(Col::packets_sent, int(counters, "packets_sent"));
            row.set(Col::hwaddr, text(state, "hwaddr"));
            row.set(Col::state, text(state, "state"));
            row.set(Col::mtu, int(state, "mtu"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::lxd::testing::daemon;
    use crate::testing::{rows_of, text};
    use oxquery_table::Value;

    fn sys(name: &str, file: &str) -> Option<String> {
        let text = std::fs::read_to_string(format!("/sys/class/net/{name}/{file}")).ok()?;
        Some(text.trim().to_owned())
    }

    fn sys_int(name: &str, file: &str) -> Option<i64> {
        sys(name, file)?.parse().ok()
    }

    /// The host's interfaces as LXD lists them: all but veth pairs, which it skips.
    fn interfaces() -> std::collections::BTreeSet<String> {
        std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with("veth"))
            .collect()
    }

    fn int_of(v: &Value) -> i64 {
        match v {
            Value::Integer(i) => *i,
            other => panic!("not an integer: {other:?}"),
        }
    }

    /// The test daemon manages no network, so it lists the host's interfaces (but veth
    /// pairs; `lxc network list` hides more): each as /sys/class/net describes it, with counters
    /// between two readings of the kernel's. Other tests may add or remove interfaces
    /// meanwhile (a test dockerd's bridge), so only those present throughout are compared.
    #[test]
    fn host_interfaces_match_sys_class_net() {
        let Some(d) = daemon() else { return };
        let host = d.host();
        let sys_before = interfaces();
        let rx_before: Vec<(String, Option<i64>)> = sys_before
            .iter()
            .map(|n| (n.clone(), sys_int(n, "statistics/rx_bytes")))
            .collect();
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        let sys_after = interfaces();
        let got: std::collections::BTreeSet<String> =
            rows.iter().map(|r| text(&r[Col::name as usize])).collect();
        assert_eq!(got.len(), rows.len());
        let throughout: std::collections::BTreeSet<String> =
            sys_before.intersection(&sys_after).cloned().collect();
        assert!(throughout.is_subset(&got), "{throughout:?} {got:?}");
        assert!(
            got.iter()
                .all(|n| sys_before.contains(n) || sys_after.contains(n)),
            "{got:?}"
        );
        assert!(throughout.contains("lo"));
        for r in &rows {
            let name = text(&r[Col::name as usize]);
            let Some((_, Some(before))) = rx_before.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            let (Some(after), Some(address), Some(mtu), Some(tx_packets)) = (
                sys_int(&name, "statistics/rx_bytes"),
                sys(&name, "address"),
                sys_int(&name, "mtu"),
                sys_int(&name, "statistics/tx_packets"),
            ) else {
                continue;
            };
            assert_eq!(r[Col::managed as usize], Value::Integer(0), "{name}");
            // LXD (Go's net.Interface) shows no address for one without (lo's zeros).
            let address = if address == "00:00:00:00:00:00" {
                String::new()
            } else {
                address
            };
            assert_eq!(text(&r[Col::hwaddr as usize]), address, "{name}");
            assert_eq!(int_of(&r[Col::mtu as usize]), mtu, "{name}");
            let rx = int_of(&r[Col::bytes_received as usize]);
            assert!(
                *before <= rx && rx <= after,
                "{name}: {before} <= {rx} <= {after}"
            );
            assert!(
                int_of(&r[Col::packets_sent as usize]) <= tx_packets,
                "{name}"
            );
            assert_eq!(text(&r[Col::used_by as usize]), "", "{name}");
        }
        // Without the state columns, no state is asked.
        let ctx = QueryContext::everything(TABLE.spec, &host).using([Col::name, Col::managed]);
        assert!(
            rows_of(&ctx, generate)
                .iter()
                .all(|r| r[Col::mtu as usize] == Value::Null)
        );
    }
}
