//! `interface_addresses`: every IPv4 and IPv6 address configured on an interface, from
//! one `RTM_GETADDR` netlink dump (plus one link dump for names and flags).
//!
//! Rows follow what `getifaddrs(3)` reports, which osquery uses: IPv4 rows are named by
//! the address label (`eth0:1` for an alias); the second address of an IPv4 entry (the
//! broadcast address, or the configured address itself when no broadcast is set, or a
//! point-to-point peer) goes to `broadcast` on interfaces with `IFF_BROADCAST` and to
//! `point_to_point` otherwise; link-local IPv6 addresses carry their `%interface` scope.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use oxquery_sys::netlink::{self, AF_INET, AF_INET6, AF_UNSPEC, Address, Link};
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};

table! {
    name: "interface_addresses",
    description: "IPv4 and IPv6 addresses assigned to the host's network interfaces, with netmask and broadcast or peer address.",
    attributes: [CACHEABLE],
    columns: {
        interface: Text [] "Interface name (IPv4 addresses show their label, such as eth0:1)",
        address: Text [] "The address; link-local IPv6 addresses end in %interface",
        mask: Text [] "Netmask in address notation",
        broadcast: Text [] "Broadcast address, on interfaces that support broadcast",
        point_to_point: Text [] "Peer (or own) address on interfaces without broadcast",
        r#type: Text [] "How the address was obtained; always unknown on Linux",
        friendly_name: Text [OTHER_PLATFORM] "Windows only: the adapter's friendly name",
    },
    examples: [
        "select * from interface_addresses where interface = 'eth0'",
    ],
}

const IFF_BROADCAST: u32 = libc::IFF_BROADCAST as u32;

/// The netmask of a `prefix`-bit network in `family`.
pub(crate) fn mask_of(family: u8, prefix: u8) -> Option<IpAddr> {
    match family {
        AF_INET => {
            let bits = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            Some(IpAddr::V4(Ipv4Addr::from(bits)))
        }
        AF_INET6 => {
            let bits = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            Some(IpAddr::V6(Ipv6Addr::from(bits)))
        }
        _ => None,
    }
}

/// Whether `getnameinfo` would print the address with a `%scope` suffix.
fn needs_scope(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xff0f) == 0xff02
        }
        IpAddr::V4(_) => false,
    }
}

fn text_of(ip: &IpAddr, ifname: &str) -> String {
    if needs_scope(ip) && !ifname.is_empty() {
        format!("{ip}%{ifname}")
    } else {
        ip.to_string()
    }
}

/// The address and second address `getifaddrs` derives from one netlink entry.
fn primary_and_secondary(a: &Address) -> (Option<IpAddr>, Option<IpAddr>) {
    match (a.local, a.address) {
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS (the same, or the peer)
        // becomes the second address unless a broadcast address replaces it.
        (Some(local), Some(addr)) => (Some(local), a.broadcast.or(Some(addr))),
        (Some(local), None) => (Some(local), a.broadcast),
        (None, Some(addr)) => (Some(addr), a.broadcast),
        (None, None) => (None, a.broadcast),
    }
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let links: HashMap<u32, Link> = netlink::links()
        .map_err(|e| TableError::msg(format!("netlink link dump: {e}")))?
        .into_iter()
        .map(|l| (l.index, l))
        .collect();
    let addrs = netlink::addresses(AF_UNSPEC)
        .map_err(|e| TableError::msg(format!("netlink address dump: {e}")))?;
    for a in addrs {
        if a.family != AF_INET && a.family != AF_INET6 {
            continue;
        }
        let link = links.get(&a.index);
        let ifname = link.map_or("", |l| l.name.as_str());
        let flags = link.map_or(0, |l| l.flags);
        let (primary, secondary) = primary_and_secondary(&a);
        let Some(primary) = primary else { continue };
        let mut row = rows.row();
        row.set_with(Col::interface, || match &a.label {
            Some(label) if a.family == AF_INET => label.clone(),
            _ => ifname.to_owned(),
        });
        row.set_with(Col::address, || text_of(&primary, ifname));
        if let Some(mask) = mask_of(a.family, a.prefix_len) {
            row.set_with(Col::mask, || mask.to_string());
        }
        if let Some(second) = secondary {
            let col = if flags & IFF_BROADCAST != 0 {
                Col::broadcast
            } else {
                Col::point_to_point
            };
            row.set_with(col, || text_of(&second, ifname));
        }
        row.set(Col::r#type, "unknown");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Value;
    use oxquery_test_support::require_tool;
    use std::process::Command;

    fn scan() -> Rows<'static> {
        crate::testing::scan_everything(&SPEC, generate)
    }

    fn text(v: &Value) -> String {
        v.to_string()
    }

    #[test]
    fn masks_from_prefixes() {
        assert_eq!(mask_of(AF_INET, 24).unwrap().to_string(), "255.255.255.0");
        assert_eq!(mask_of(AF_INET, 0).unwrap().to_string(), "0.0.0.0");
        assert_eq!(mask_of(AF_INET, 32).unwrap().to_string(), "255.255.255.255");
        assert_eq!(
            mask_of(AF_INET6, 64).unwrap().to_string(),
            "ffff:ffff:ffff:ffff::"
        );
        assert_eq!(mask_of(AF_INET6, 0).unwrap().to_string(), "::");
    }

    #[test]
    fn agrees_with_ip_addr() {
        let Some(ip) = require_tool("ip") else {
            return;
        };
        let out = Command::new(ip).args(["-j", "addr"]).output().unwrap();
        assert!(out.status.success(), "ip -j addr failed");
        let rows = scan();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut expected = 0;
        for link in json.as_array().unwrap() {
            let ifname = link["ifname"].as_str().unwrap();
            let broadcast_capable = link["flags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "BROADCAST");
            for info in link["addr_info"].as_array().into_iter().flatten() {
                let family = info["family"].as_str().unwrap();
                if family != "inet" && family != "inet6" {
                    continue;
                }
                expected += 1;
                let local = info["local"].as_str().unwrap();
                let name = info["label"].as_str().unwrap_or(ifname);
                let prefix = info["prefixlen"].as_u64().unwrap() as u8;
                let fam = if family == "inet" { AF_INET } else { AF_INET6 };
                let row = rows
                    .iter()
                    .find(|r| {
                        text(&r[Col::address as usize]).split('%').next() == Some(local)
                            && text(&r[Col::interface as usize]) == name
                    })
                    .unwrap_or_else(|| panic!("ip lists {local} on {name}; we do not"));
                assert_eq!(
                    text(&row[Col::mask as usize]),
                    mask_of(fam, prefix).unwrap().to_string()
                );
                let addr = text(&row[Col::address as usize]);
                if local.starts_with("fe80:") {
                    assert_eq!(addr, format!("{local}%{ifname}"));
                } else {
                    assert_eq!(addr, local);
                }
                if let Some(brd) = info["broadcast"].as_str() {
                    let col = if broadcast_capable {
                        Col::broadcast
                    } else {
                        Col::point_to_point
                    };
                    assert_eq!(text(&row[col as usize]), brd, "{local}");
                }
                if let Some(peer) = info["address"].as_str() {
                    assert_eq!(text(&row[Col::point_to_point as usize]), peer, "{local}");
                }
                assert_eq!(text(&row[Col::r#type as usize]), "unknown");
            }
        }
        assert_eq!(rows.len(), expected, "row count differs from ip -j addr");
        assert!(expected > 0, "even lo has an address");
    }
}
