//! `routes`: every IPv4 and IPv6 route in every routing table (main, local, policy
//! tables), from one `RTM_GETROUTE` netlink dump.
//!
//! osquery's Linux conventions are kept: a route without a destination is the default
//! route (`0.0.0.0` or `::`); `netmask` is the prefix length, except that host routes
//! (/32, /128) show 0; unicast routes have type `gateway`; `mtu` and `hopcount` come from
//! the route's metrics and are 0 when unset; `metric` is the route priority.

use std::collections::HashMap;

use oxquery_sys::netlink::{
    self, AF_INET, AF_INET6, AF_UNSPEC, RTN_ANYCAST, RTN_BROADCAST, RTN_LOCAL, RTN_UNICAST, Route,
};
use oxquery_table::{QueryContext, RowMut, Rows, TableError, TableResult, table};

table! {
    name: "routes",
    description: "The kernel's IPv4 and IPv6 routing tables: destination, prefix, gateway, outgoing interface and route type.",
    attributes: [CACHEABLE],
    columns: {
        destination: Text [] "Destination network address (0.0.0.0 or :: for the default route)",
        netmask: Integer [] "Prefix length of the destination; 0 for host routes and the default route",
        gateway: Text [] "Next-hop router address, if any",
        source: Text [] "Preferred source address for traffic on this route",
        flags: Integer [] "Route flags from the kernel (RTM_F_* and RTNH_F_* bits)",
        interface: Text [] "Outgoing interface name",
        mtu: Integer [] "Path MTU set on the route; 0 if none",
        metric: Integer [] "Route priority; lower wins",
        r#type: Text [ADDITIONAL] "gateway (unicast), local, broadcast, anycast or other",
        hopcount: Integer [] "Hop limit set on the route; 0 if none",
    },
    examples: [
        "select * from routes where destination = '0.0.0.0'",
    ],
}

pub(crate) fn type_name(kind: u8) -> &'static str {
    match kind {
        RTN_UNICAST => "gateway",
        RTN_LOCAL => "local",
        RTN_BROADCAST => "broadcast",
        RTN_ANYCAST => "anycast",
        _ => "other",
    }
}

/// The `netmask` column's value: osquery reports 0 for full-length prefixes.
pub(crate) fn netmask_of(r: &Route) -> u8 {
    if r.destination.is_some() && (r.dst_len == 32 || r.dst_len == 128) {
        0
    } else {
        r.dst_len
    }
}

fn fill(row: &mut RowMut<'_>, r: &Route, names: &HashMap<u32, String>) {
    row.set_with(Col::destination, || match r.destination {
        Some(ip) => ip.to_string(),
        None if r.family == AF_INET6 => "::".to_owned(),
        None => "0.0.0.0".to_owned(),
    });
    row.set(Col::netmask, netmask_of(r));
    if let Some(gw) = r.gateway {
        row.set_with(Col::gateway, || gw.to_string());
    }
    if let Some(src) = r.pref_source {
        row.set_with(Col::source, || src.to_string());
    }
    row.set(Col::flags, i64::from(r.flags));
    if let Some(name) = r.oif.and_then(|i| names.get(&i)) {
        row.set_with(Col::interface, || name.clone());
    }
    row.set(Col::mtu, i64::from(r.mtu.unwrap_or(0)));
    row.set(Col::metric, i64::from(r.priority.unwrap_or(0)));
    row.set(Col::r#type, type_name(r.kind));
    row.set(Col::hopcount, i64::from(r.hop_limit.unwrap_or(0)));
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let routes = netlink::routes(AF_UNSPEC)
        .map_err(|e| TableError::msg(format!("netlink route dump: {e}")))?;
    let names = if ctx.is_used(Col::interface) {
        netlink::link_names().map_err(|e| TableError::msg(format!("netlink link dump: {e}")))?
    } else {
        HashMap::new()
    };
    let wanted_types = ctx.eq_texts(Col::r#type);
    for r in &routes {
        if r.family != AF_INET && r.family != AF_INET6 {
            continue;
        }
        if let Some(types) = &wanted_types
            && !types.iter().any(|t| t == type_name(r.kind))
        {
            continue;
        }
        let mut row = rows.row();
        fill(&mut row, r, &names);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Op, Value};
    use oxquery_test_support::require_tool;
    use std::path::Path;
    use std::process::Command;

    fn scan() -> Rows<'static> {
        crate::testing::scan_everything(&SPEC, generate)
    }

    /// The routes `ip` lists with `args`.
    fn ip_json(ip: &Path, args: &[&str]) -> Vec<serde_json::Value> {
        let out = Command::new(ip).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json.as_array().expect("ip -j prints an array").clone()
    }

    fn check_family(rows: &Rows, entries: &[serde_json::Value], v6: bool) {
        for e in entries {
            // `ip` prints "default" or "addr/len" or a bare host address.
            let dst = e["dst"].as_str().unwrap();
            let (addr, len) = match dst {
                "default" => (if v6 { "::" } else { "0.0.0.0" }.to_owned(), 0),
                d => match d.split_once('/') {
                    Some((a, l)) => (a.to_owned(), l.parse::<i64>().unwrap()),
                    None => (d.to_owned(), if v6 { 128 } else { 32 }),
                },
            };
            let want_mask = if len == 32 || len == 128 { 0 } else { len };
            let kind = e["type"].as_str().unwrap_or("unicast");
            let want_type = match kind {
                "unicast" => "gateway",
                "local" | "broadcast" | "anycast" => kind,
                _ => "other",
            };
            let metric = e["metric"].as_i64().unwrap_or(0);
            let found = rows.iter().any(|r| {
                r[Col::destination as usize].to_string() == addr
                    && r[Col::netmask as usize] == Value::Integer(want_mask)
                    && r[Col::r#type as usize].to_string() == want_type
                    && r[Col::metric as usize] == Value::Integer(metric)
                    && e["dev"]
                        .as_str()
                        .is_none_or(|d| r[Col::interface as usize].to_string() == d)
                    && e["gateway"]
                        .as_str()
                        .is_none_or(|g| r[Col::gateway as usize].to_string() == g)
                    && e["prefsrc"]
                        .as_str()
                        .is_none_or(|s| r[Col::source as usize].to_string() == s)
            });
            assert!(found, "ip lists {e}; we have no such row");
        }
    }

    #[test]
    fn agrees_with_ip_route() {
        let Some(ip) = require_tool("ip") else {
            return;
        };
        let v4 = ip_json(&ip, &["-j", "-4", "route", "show", "table", "all"]);
        let v6 = ip_json(&ip, &["-j", "-6", "route", "show", "table", "all"]);
        // Table `local` always holds the loopback routes, so the comparison has rows.
        assert!(!v4.is_empty(), "ip lists no IPv4 route");
        let rows = scan();
        check_family(&rows, &v4, false);
        check_family(&rows, &v6, true);
        // Every row we produce is one ip lists (same count per family).
        let ours_v6 = rows
            .iter()
            .filter(|r| r[Col::destination as usize].to_string().contains(':'))
            .count();
        assert_eq!(ours_v6, v6.len());
        assert_eq!(rows.len() - ours_v6, v4.len());
        // The plain listings (main table) are subsets of the above.
        let main4 = ip_json(&ip, &["-j", "-4", "route"]);
        let main6 = ip_json(&ip, &["-j", "-6", "route"]);
        check_family(&rows, &main4, false);
        check_family(&rows, &main6, true);
    }

    #[test]
    fn type_constraint_filters_early() {
        let host = Host::default();
        let ctx =
            QueryContext::everything(&SPEC, &host).with_constraint(Col::r#type, Op::Eq, "local");
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert!(!rows.is_empty(), "loopback gives local routes");
        assert!(
            rows.iter()
                .all(|r| r[Col::r#type as usize].to_string() == "local")
        );
    }
}
