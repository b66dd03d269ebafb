//! `arp_cache`: the kernel's IPv4 neighbour (ARP) table, from one `RTM_GETNEIGH` netlink
//! dump.
//!
//! The rows are the ones `/proc/net/arp` shows (which osquery reads): every IPv4 entry
//! except those of interfaces that do not use ARP; unresolved entries have the MAC
//! `00:00:00:00:00:00`; `permanent` is `1` for static entries. Proxy-ARP entries, which
//! `/proc/net/arp` appends with no hardware address, are not listed.

use std::collections::HashMap;

use oxquery_sys::netlink::{self, AF_INET, NUD_NOARP, NUD_PERMANENT};
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};

table! {
    name: "arp_cache",
    description: "IPv4 neighbours the kernel has resolved (or tried to) to hardware addresses.",
    columns: {
        address: Text [] "IPv4 address of the neighbour",
        mac: Text [COLLATE_NOCASE] "Its hardware address; 00:00:00:00:00:00 while unresolved",
        interface: Text [] "Interface the neighbour is reached through",
        permanent: Text [] "1 for a static (permanent) entry, else 0",
    },
    examples: [
        "select * from arp_cache where interface = 'eth0'",
    ],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let entries = netlink::neighbours(AF_INET)
        .map_err(|e| TableError::msg(format!("netlink neighbour dump: {e}")))?;
    let names = if ctx.is_used(Col::interface) {
        netlink::link_names().map_err(|e| TableError::msg(format!("netlink link dump: {e}")))?
    } else {
        HashMap::new()
    };
    for n in &entries {
        if n.family != AF_INET || n.state & NUD_NOARP != 0 {
            continue;
        }
        let Some(ip) = n.destination else { continue };
        let mut row = rows.row();
        row.set_with(Col::address, || ip.to_string());
        row.set_with(Col::mac, || match &n.lladdr {
            Some(l) if !l.is_empty() => netlink::mac_text(l),
            _ => "00:00:00:00:00:00".to_owned(),
        });
        row.set_with(Col::interface, || {
            names.get(&n.index).cloned().unwrap_or_default()
        });
        row.set(
            Col::permanent,
            if n.state & NUD_PERMANENT != 0 {
                "1"
            } else {
                "0"
            },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_test_support::{require, require_tool};
    use std::collections::BTreeSet;
    use std::path::Path;
    use std::process::Command;

    fn scan() -> Rows<'static> {
        crate::testing::scan_everything(&SPEC, generate)
    }

    fn ours(rows: &Rows) -> BTreeSet<(String, String, String, String)> {
        rows.iter()
            .map(|r| {
                (
                    r[Col::address as usize].to_string(),
                    r[Col::interface as usize].to_string(),
                    r[Col::mac as usize].to_string(),
                    r[Col::permanent as usize].to_string(),
                )
            })
            .collect()
    }

    /// This thread's `/proc/net/arp` read directly: (address, interface, mac, permanent).
    fn proc_arp() -> BTreeSet<(String, String, String, String)> {
        let text = std::fs::read_to_string("/proc/thread-self/net/arp").unwrap();
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 6 && f[5] != "*").then(|| {
                    let perm = i64::from_str_radix(f[2].trim_start_matches("0x"), 16).unwrap();
                    (
                        f[0].to_owned(),
                        f[5].to_owned(),
                        f[3].to_owned(),
                        if perm & 0x4 != 0 { "1" } else { "0" }.to_owned(),
                    )
                })
            })
            .collect()
    }

    fn run_ip(ip: &Path, args: &[&str]) -> Vec<u8> {
        let out = Command::new(ip).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[test]
    fn agrees_with_proc_net_arp_and_ip_neigh() {
        let Some(ip) = require_tool("ip") else {
            return;
        };
        // The host may have no neighbours at all, so the test makes two in a network
        // namespace of its own: a thread that unshares it (netlink sockets, the thread's
        // /proc view and `ip` children all see it), ended with the thread.
        let done = std::thread::scope(|s| {
            s.spawn(|| {
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                compare_in_fixture_namespace(&ip);
                Ok(())
            })
            .join()
            .expect("the comparison failed")
        });
        require("a private network namespace (needs root)", done);
    }

    fn compare_in_fixture_namespace(ip: &Path) {
        run_ip(
            ip,
            &["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        );
        run_ip(ip, &["link", "set", "v0", "up"]);
        let lladdr = |n| format!("02:00:00:00:00:0{n}");
        for (addr, n, nud) in [("192.0.2.7", 7, "permanent"), ("192.0.2.8", 8, "stale")] {
            let mac = lladdr(n);
            run_ip(
                ip,
                &[
                    "neigh", "add", addr, "lladdr", &mac, "dev", "v0", "nud", nud,
                ],
            );
        }
        // A new namespace has no other IPv4 neighbour; nothing here sends traffic.
        let want: BTreeSet<_> = [("192.0.2.7", 7, "1"), ("192.0.2.8", 8, "0")]
            .into_iter()
            .map(|(a, n, p)| (a.to_owned(), "v0".to_owned(), lladdr(n), p.to_owned()))
            .collect();
        let ours = ours(&scan());
        assert_eq!(ours, want);
        assert_eq!(proc_arp(), want);

        let json: serde_json::Value =
            serde_json::from_slice(&run_ip(ip, &["-j", "-4", "neigh"])).unwrap();
        let listed = json.as_array().unwrap();
        assert_eq!(listed.len(), want.len(), "{json}");
        for e in listed {
            let dst = e["dst"].as_str().unwrap();
            let dev = e["dev"].as_str().unwrap();
            let row = ours
                .iter()
                .find(|(a, i, _, _)| a == dst && i == dev)
                .unwrap_or_else(|| panic!("ip lists {dst} on {dev}; we do not"));
            if let Some(mac) = e["lladdr"].as_str() {
                assert_eq!(row.2, mac);
            }
            let permanent = e["state"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x == "PERMANENT"));
            assert_eq!(row.3 == "1", permanent, "{dst}");
        }
    }
}
