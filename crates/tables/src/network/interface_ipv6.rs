//! `interface_ipv6`: per-interface IPv6 settings from `/proc/sys/net/ipv6/conf/<if>/`,
//! for every interface the link dump lists.
//!
//! As in osquery, `redirect_accept` and `rtadv_accept` are the effective values, which
//! combine the interface's own setting with the global one and with forwarding: a
//! forwarding interface takes redirects only when both the interface and `all` allow
//! them, and accepts router advertisements only when `accept_ra` is 2. A setting that
//! cannot be read shows as -1.

use oxquery_sys::fs::{FileReader, parse_i64};
use oxquery_sys::netlink;
use oxquery_table::{QueryContext, Rows, TableError, TableResult, table};

table! {
    name: "interface_ipv6",
    description: "IPv6 configuration of each network interface: hop limit, forwarding, and whether redirects and router advertisements are accepted.",
    columns: {
        interface: Text [] "Interface name",
        hop_limit: Integer [] "Default hop limit of outgoing packets",
        forwarding_enabled: Integer [] "1 if the interface forwards IPv6 packets",
        redirect_accept: Integer [] "1 if ICMPv6 redirects are honoured (interface and global settings combined)",
        rtadv_accept: Integer [] "1 if router advertisements are honoured (taking forwarding into account)",
    },
    examples: [
        "select * from interface_ipv6 where forwarding_enabled = 1",
    ],
}

/// Reads one integer setting; -1 when missing or unreadable.
fn setting(reader: &mut FileReader, interface: &str, file: &str) -> i64 {
    reader
        .read_parts(&[
            b"/proc/sys/net/ipv6/conf/",
            interface.as_bytes(),
            b"/",
            file.as_bytes(),
        ])
        .ok()
        .and_then(|t| parse_i64(t.trim_ascii()))
        .unwrap_or(-1)
}

/// The effective values, from the interface's `forwarding`, `accept_redirects` (its own
/// and the global one) and `accept_ra`.
pub(crate) fn effective(
    forwarding: i64,
    redirects_all: i64,
    redirects_if: i64,
    accept_ra: i64,
) -> (i64, i64) {
    let redirect = if forwarding != 0 {
        redirects_all != 0 && redirects_if != 0
    } else {
        redirects_all != 0 || redirects_if != 0
    };
    let rtadv = if accept_ra == 2 {
        true
    } else {
        accept_ra != 0 && forwarding == 0
    };
    (i64::from(redirect), i64::from(rtadv))
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let links = netlink::links().map_err(|e| TableError::msg(format!("netlink link dump: {e}")))?;
    let mut reader = FileReader::new();
    let redirects_all = setting(&mut reader, "all", "accept_redirects");
    for link in &links {
        let name = link.name.as_str();
        let forwarding = setting(&mut reader, name, "forwarding");
        let (redirect, rtadv) = effective(
            forwarding,
            redirects_all,
            setting(&mut reader, name, "accept_redirects"),
            setting(&mut reader, name, "accept_ra"),
        );
        let hop_limit = setting(&mut reader, name, "hop_limit");
        let mut row = rows.row();
        row.set_with(Col::interface, || name.to_owned());
        row.set(Col::hop_limit, hop_limit);
        row.set(Col::forwarding_enabled, forwarding);
        row.set(Col::redirect_accept, redirect);
        row.set(Col::rtadv_accept, rtadv);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    fn read(interface: &str, file: &str) -> i64 {
        std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{interface}/{file}"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(-1)
    }

    #[test]
    fn combination_rules() {
        // Not forwarding: either setting allows redirects.
        assert_eq!(effective(0, 0, 1, 1), (1, 1));
        assert_eq!(effective(0, 1, 0, 0), (1, 0));
        // Forwarding: both must allow redirects; RAs only with accept_ra = 2.
        assert_eq!(effective(1, 1, 0, 1), (0, 0));
        assert_eq!(effective(1, 1, 1, 2), (1, 1));
        // Unreadable (-1) values count as set, as osquery's C truth test does.
        assert_eq!(effective(-1, 0, 0, -1), (0, 0));
    }

    #[test]
    fn agrees_with_proc_sys() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut ours: Vec<String> = rows
            .column(Col::interface)
            .iter()
            .map(|v| v.to_string())
            .collect();
        ours.sort();
        assert_eq!(ours, names);
        let all_redirects = read("all", "accept_redirects");
        for r in rows.iter() {
            let name = r[Col::interface as usize].to_string();
            let fwd = read(&name, "forwarding");
            assert_eq!(
                r[Col::hop_limit as usize],
                Value::Integer(read(&name, "hop_limit"))
            );
            assert_eq!(r[Col::forwarding_enabled as usize], Value::Integer(fwd));
            let own = read(&name, "accept_redirects");
            let want_redirect = if fwd == 1 {
                all_redirects == 1 && own == 1
            } else {
                all_redirects == 1 || own == 1
            };
            if own >= 0 && all_redirects >= 0 {
                assert_eq!(
                    r[Col::redirect_accept as usize],
                    Value::Integer(want_redirect.into()),
                    "{name}"
                );
            }
            let ra = read(&name, "accept_ra");
            if ra >= 0 && fwd >= 0 {
                let want = ra == 2 || (ra == 1 && fwd == 0);
                assert_eq!(
                    r[Col::rtadv_accept as usize],
                    Value::Integer(want.into()),
                    "{name}"
                );
            }
        }
    }
}
