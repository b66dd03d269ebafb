//! `interface_details`: one row per network interface, from one `RTM_GETLINK` netlink
//! dump (name, hardware address and type, MTU, flags, 64-bit counters), with
//! `/sys/class/net/<if>/` for the flags the kernel keeps there and the link speed, and
//! the driver's `ETHTOOL_GDRVINFO` answer for the bus address.
//!
//! osquery's Linux conventions are kept: `type` is the low byte of the `ARPHRD_*` hardware
//! type (loopback, 772, shows as 4), `metric` is 0 (Linux has no interface metric),
//! `last_change` is -1, `link_speed` is 0 when unknown, `pci_slot` is -1 when the driver
//! does not say. Counters are the kernel's 64-bit ones (osquery's wrap at 2^32).

use oxquery_sys::fs::FileReader;
use oxquery_sys::netlink::{self, Link};
use oxquery_table::{QueryContext, RowMut, Rows, TableError, TableResult, table};

table! {
    name: "interface_details",
    description: "Link-level details and traffic counters of each network interface.",
    attributes: [CACHEABLE],
    columns: {
        interface: Text [] "Interface name",
        mac: Text [COLLATE_NOCASE] "Hardware (MAC) address; 00:00:00:00:00:00 when there is none",
        r#type: Integer [] "Low byte of the ARPHRD hardware type (1 Ethernet, 4 for loopback's 772)",
        mtu: Integer [] "Maximum transmission unit in bytes",
        metric: Integer [] "Interface metric; always 0 on Linux",
        flags: Integer [] "IFF_* flag bits",
        ipackets: BigInt [] "Packets received",
        opackets: BigInt [] "Packets sent",
        ibytes: BigInt [] "Bytes received",
        obytes: BigInt [] "Bytes sent",
        ierrors: BigInt [] "Receive errors",
        oerrors: BigInt [] "Transmit errors",
        idrops: BigInt [] "Received packets dropped",
        odrops: BigInt [] "Packets dropped on transmit",
        collisions: BigInt [] "Collisions seen on the medium",
        last_change: BigInt [] "Time of the last link change; -1 as Linux does not record it",
        link_speed: BigInt [] "Negotiated speed in Mb/s; 0 when unknown",
        pci_slot: Text [] "Bus address of the device as its driver reports it; -1 when the driver does not answer",
        friendly_name: Text [OTHER_PLATFORM] "Windows only: the adapter's friendly name",
        description: Text [OTHER_PLATFORM] "Windows only: the adapter's description",
        manufacturer: Text [OTHER_PLATFORM] "Windows only: the adapter's maker",
        connection_id: Text [OTHER_PLATFORM] "Windows only: the network connection's name",
        connection_status: Text [OTHER_PLATFORM] "Windows only: the connection state",
        enabled: Integer [OTHER_PLATFORM] "Windows only: whether the adapter is enabled",
        physical_adapter: Integer [OTHER_PLATFORM] "Windows only: whether the adapter is physical",
        speed: Integer [OTHER_PLATFORM] "Windows only: estimated bandwidth in bits per second",
        service: Text [OTHER_PLATFORM] "Windows only: the adapter's service name",
        dhcp_enabled: Integer [OTHER_PLATFORM] "Windows only: whether DHCP is on",
        dhcp_lease_expires: Text [OTHER_PLATFORM] "Windows only: when the DHCP lease ends",
        dhcp_lease_obtained: Text [OTHER_PLATFORM] "Windows only: when the DHCP lease began",
        dhcp_server: Text [OTHER_PLATFORM] "Windows only: the DHCP server",
        dns_domain: Text [OTHER_PLATFORM] "Windows only: the adapter's DNS domain",
        dns_domain_suffix_search_order: Text [OTHER_PLATFORM] "Windows only: DNS suffix search list",
        dns_host_name: Text [OTHER_PLATFORM] "Windows only: the DNS host name",
        dns_server_search_order: Text [OTHER_PLATFORM] "Windows only: DNS servers in order",
    },
    examples: [
        "select interface, mac, mtu, ibytes, obytes from interface_details",
    ],
}

/// Flags whose current value the kernel shows in `/sys/class/net/<if>/flags` rather than
/// in the netlink header (promiscuity and all-multicast set by other sockets).
const SYSFS_FLAGS: u32 = (libc::IFF_UP
    | libc::IFF_DEBUG
    | libc::IFF_NOTRAILERS
    | libc::IFF_NOARP
    | libc::IFF_PROMISC
    | libc::IFF_ALLMULTI
    | libc::IFF_MULTICAST
    | libc::IFF_PORTSEL
    | libc::IFF_AUTOMEDIA
    | libc::IFF_DYNAMIC) as u32;

/// The first six bytes of a hardware address, zero-padded, as `aa:bb:cc:dd:ee:ff`.
pub(crate) fn mac6(address: &[u8]) -> String {
    let mut six = [0u8; 6];
    for (d, s) in six.iter_mut().zip(address) {
        *d = *s;
    }
    netlink::mac_text(&six)
}

/// Parses `/sys/class/net/<if>/flags` (`0x1003`).
fn parse_hex_flags(text: &[u8]) -> Option<u32> {
    let t = std::str::from_utf8(text).ok()?.trim();
    u32::from_str_radix(t.strip_prefix("0x")?, 16).ok()
}

/// Parses `/sys/class/net/<if>/speed` (Mb/s; -1 or an error when unknown).
fn parse_speed(text: &[u8]) -> i64 {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .filter(|s| *s > 0 && *s != i64::from(u32::MAX))
        .unwrap_or(0)
}

fn fill(row: &mut RowMut<'_>, link: &Link, reader: &mut FileReader) {
    row.set_with(Col::interface, || link.name.clone());
    row.set_with(Col::mac, || mac6(&link.address));
    row.set(Col::r#type, i64::from(link.hw_type & 0xff));
    row.set(Col::mtu, i64::from(link.mtu.unwrap_or(0)));
    row.set(Col::metric, 0);
    if row.wants(Col::flags) {
        let mut flags = link.flags & !SYSFS_FLAGS;
        if let Ok(text) = reader.read_parts(&[b"/sys/class/net/", link.name.as_bytes(), b"/flags"])
            && let Some(sys) = parse_hex_flags(text)
        {
            flags |= sys & SYSFS_FLAGS;
        } else {
            flags |= link.flags & SYSFS_FLAGS;
        }
        row.set(Col::flags, i64::from(flags));
    }
    let s = link.stats.unwrap_or_default();
    row.set(Col::ipackets, s.rx_packets);
    row.set(Col::opackets, s.tx_packets);
    row.set(Col::ibytes, s.rx_bytes);
    row.set(Col::obytes, s.tx_bytes);
    row.set(Col::ierrors, s.rx_errors);
    row.set(Col::oerrors, s.tx_errors);
    row.set(Col::idrops, s.rx_dropped);
    row.set(Col::odrops, s.tx_dropped);
    row.set(Col::collisions, s.collisions);
    row.set(Col::last_change, -1);
    if row.wants(Col::link_speed) {
        let speed = reader
            .read_parts(&[b"/sys/class/net/", link.name.as_bytes(), b"/speed"])
            .map(parse_speed)
            .unwrap_or(0);
        row.set(Col::link_speed, speed);
    }
    row.set_with(Col::pci_slot, || {
        netlink::ethtool_bus_info(&link.name).unwrap_or_else(|| "-1".to_owned())
    });
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let links = netlink::links().map_err(|e| TableError::msg(format!("netlink link dump: {e}")))?;
    let mut reader = FileReader::new();
    for link in &links {
        let mut row = rows.row();
        fill(&mut row, link, &mut reader);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};
    use oxquery_test_support::require_tool;
    use std::process::Command;

    fn scan() -> Rows<'static> {
        crate::testing::scan_everything(&SPEC, generate)
    }

    fn int(v: &Value) -> i64 {
        v.as_i64()
            .unwrap_or_else(|| panic!("{v:?} is not an integer"))
    }

    fn sysfs_u64(ifname: &str, file: &str) -> u64 {
        std::fs::read_to_string(format!("/sys/class/net/{ifname}/statistics/{file}"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[test]
    fn parsers() {
        assert_eq!(mac6(&[1, 2, 3, 4, 5, 6, 7, 8]), "01:02:03:04:05:06");
        assert_eq!(mac6(&[0xc0, 0xa8, 1, 1]), "c0:a8:01:01:00:00");
        assert_eq!(mac6(&[]), "00:00:00:00:00:00");
        assert_eq!(parse_hex_flags(b"0x1003\n"), Some(0x1003));
        assert_eq!(parse_hex_flags(b"garbage"), None);
        assert_eq!(parse_speed(b"1000\n"), 1000);
        assert_eq!(parse_speed(b"-1\n"), 0);
        assert_eq!(parse_speed(b"\xff\xfe"), 0);
    }

    #[test]
    fn agrees_with_ip_link_and_sysfs() {
        let Some(ip) = require_tool("ip") else {
            return;
        };
        let out = Command::new(ip).args(["-j", "link"]).output().unwrap();
        assert!(out.status.success(), "ip -j link failed");
        let before = scan();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let links = json.as_array().unwrap();
        assert_eq!(before.len(), links.len(), "one row per interface");
        for link in links {
            let name = link["ifname"].as_str().unwrap();
            let row = before
                .iter()
                .find(|r| r[Col::interface as usize].to_string() == name)
                .unwrap_or_else(|| panic!("ip lists {name}; we do not"));
            assert_eq!(
                int(&row[Col::mtu as usize]),
                link["mtu"].as_i64().unwrap(),
                "{name}"
            );
            if let Some(mac) = link["address"].as_str().filter(|m| m.len() == 17) {
                assert_eq!(row[Col::mac as usize].to_string(), mac, "{name}");
            }
            let flags = int(&row[Col::flags as usize]);
            let ip_flags: Vec<&str> = link["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            for (bit, word) in [
                (libc::IFF_UP, "UP"),
                (libc::IFF_LOOPBACK, "LOOPBACK"),
                (libc::IFF_BROADCAST, "BROADCAST"),
                (libc::IFF_NOARP, "NOARP"),
                (libc::IFF_MULTICAST, "MULTICAST"),
            ] {
                assert_eq!(
                    flags & i64::from(bit) != 0,
                    ip_flags.contains(&word),
                    "{name} flag {word}"
                );
            }
            if link["link_type"] == "loopback" {
                assert_eq!(int(&row[Col::r#type as usize]), 772 & 0xff);
            }
            if link["link_type"] == "ether" {
                assert_eq!(int(&row[Col::r#type as usize]), 1);
            }
            assert_eq!(int(&row[Col::last_change as usize]), -1);
            assert_eq!(int(&row[Col::metric as usize]), 0);
            // Counters only grow: sysfs read after our scan is at least what we saw.
            for (col, file) in [
                (Col::ibytes, "rx_bytes"),
                (Col::obytes, "tx_bytes"),
                (Col::ipackets, "rx_packets"),
                (Col::opackets, "tx_packets"),
                (Col::ierrors, "rx_errors"),
                (Col::idrops, "rx_dropped"),
                (Col::collisions, "collisions"),
            ] {
                let ours = int(&row[col as usize]) as u64;
                let sys = sysfs_u64(name, file);
                assert!(ours <= sys, "{name} {file}: ours {ours} > sysfs {sys}");
            }
        }
        // lo's counters move only with our own traffic: send some and see them grow.
        let lo_before = int(&before
            .iter()
            .find(|r| r[Col::interface as usize].to_string() == "lo")
            .unwrap()[Col::opackets as usize]);
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..10 {
            sock.send_to(b"x", sock.local_addr().unwrap()).unwrap();
        }
        let after = scan();
        let lo_after = int(&after
            .iter()
            .find(|r| r[Col::interface as usize].to_string() == "lo")
            .unwrap()[Col::opackets as usize]);
        assert!(lo_after >= lo_before + 10, "{lo_before} -> {lo_after}");
    }

    #[test]
    fn projection_skips_sysfs_and_ethtool() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).using([Col::interface]);
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert!(!rows.is_empty());
        assert!(rows.iter().all(|r| r[Col::pci_slot as usize].is_null()));
    }
}
