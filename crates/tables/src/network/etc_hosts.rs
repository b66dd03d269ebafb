//! `etc_hosts` (alias `hosts`): the static host table `/etc/hosts`, one row per entry.
//!
//! Parsing follows osquery: whitespace separates fields, a line whose first field starts
//! with `#` is a comment, a field starting with `#` ends the line, and the names after
//! the address are joined with single spaces. A line longer than [`lines::MAX_LINE`] bytes is
//! skipped with a log message rather than stored.
//!
//! `pid_with_namespace = N` reads the file as process N sees it (through
//! `/proc/N/root`), and rows then carry N.

use oxquery_sys::lines;
use oxquery_sys::safe_read;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "etc_hosts",
    description: "Entries of the static host-name table /etc/hosts.",
    attributes: [CACHEABLE],
    columns: {
        address: Text [] "IP address of the entry",
        hostnames: Text [] "Names (canonical name first, then aliases) separated by spaces",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Read the file inside this process's mount namespace; 0 in rows read from the host's",
    },
    aliases: ["hosts"],
    examples: [
        "select * from etc_hosts where address = '127.0.0.1'",
    ],
}

/// One parsed entry: the address and the space-joined names (`None` when a line holds
/// only an address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostEntry {
    pub address: String,
    pub hostnames: Option<String>,
}

pub(crate) fn parse_hosts(text: &[u8]) -> Vec<HostEntry> {
    let mut out = Vec::new();
    for line in lines::text_lines(text, "etc_hosts") {
        let mut fields = line.split_ascii_whitespace();
        let Some(address) = fields.next() else {
            continue;
        };
        if address.starts_with('#') {
            continue;
        }
        let rest: Vec<&str> = fields.take_while(|f| !f.starts_with('#')).collect();
        out.push(HostEntry {
            address: address.to_owned(),
            hostnames: (!rest.is_empty()).then(|| rest.join(" ")),
        });
    }
    out
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let policy = crate::common::user_file_policy(ctx);
    for root in crate::common::namespace_roots(ctx, Col::pid_with_namespace) {
        let pid = root.pid();
        let path = Path::new("/etc/hosts");
        let text = match safe_read::read_bounded_in(&root, path, &policy) {
            Ok(t) => t,
            Err(e) => {
                log::warn!(
                    "etc_hosts: cannot read {}: {e}",
                    root.display(path).display()
                );
                continue;
            }
        };
        for entry in parse_hosts(&text) {
            let mut row = rows.row();
            row.set(Col::address, entry.address);
            if let Some(names) = entry.hostnames {
                row.set(Col::hostnames, names);
            }
            row.set(Col::pid_with_namespace, pid);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Op, Value};
    use oxquery_test_support::{missing, require_tool};
    use std::process::Command;

    fn entry(a: &str, h: Option<&str>) -> HostEntry {
        HostEntry {
            address: a.into(),
            hostnames: h.map(Into::into),
        }
    }

    #[test]
    fn pid_with_namespace_reads_that_process_s_hosts() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let rows = c.rows(&SPEC, Col::pid_with_namespace.into(), generate);
        let want = vec![vec![
            Value::from("10.1.2.3"),
            Value::from("inside-the-container alias"),
            Value::Integer(c.pid()),
        ]];
        assert_eq!(rows, want);
    }

    #[test]
    fn an_absolute_link_in_the_container_does_not_reach_the_host() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        c.make_hostile("etc/hosts", "10.66.66.66 host-secret\n");
        let host = Host::default();
        let ctx = c.query(&SPEC, &host, Col::pid_with_namespace.into());
        let (rows, logged) =
            crate::common::testing::capture_log(|| crate::testing::rows_of(&ctx, generate));
        assert!(rows.is_empty(), "read through the link: {rows:?}");
        assert!(
            logged.iter().any(|(_, m)| m.contains("cannot read")),
            "{logged:?}"
        );
    }

    #[test]
    fn parses_fixture_with_comments_tabs_and_garbage() {
        let mut text = Vec::new();
        text.extend_from_slice(
            b"# The host table\n\
              127.0.0.1\tlocalhost\n\
              ::1     localhost ip6-localhost\tip6-loopback   # IPv6\n\
              \n   \t \n\
              #10.0.0.1 commented.out\n\
              10.1.2.3 alpha.example alpha # trailing comment\n\
              192.0.2.9\n\
              10.9.9.9 bad\xff\xfename\r\n",
        );
        text.extend_from_slice(b"10.0.0.5 ");
        text.extend(std::iter::repeat_n(b'x', lines::MAX_LINE + 10));
        text.extend_from_slice(b"\n10.0.0.6 after.huge\n\x00\x01\x02 binary\n");
        let got = parse_hosts(&text);
        assert_eq!(
            got,
            vec![
                entry("127.0.0.1", Some("localhost")),
                entry("::1", Some("localhost ip6-localhost ip6-loopback")),
                entry("10.1.2.3", Some("alpha.example alpha")),
                entry("192.0.2.9", None),
                entry("10.9.9.9", Some("bad\u{fffd}\u{fffd}name")),
                entry("10.0.0.6", Some("after.huge")),
                entry("\u{0}\u{1}\u{2}", Some("binary")),
            ]
        );
        // Truncated input: no panic, the partial line counts.
        assert_eq!(
            parse_hosts(b"10.0.0.1 par"),
            vec![entry("10.0.0.1", Some("par"))]
        );
        assert!(parse_hosts(b"").is_empty());
    }

    #[test]
    fn pid_with_namespace_reads_through_proc_root() {
        let me = i64::from(std::process::id());
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::pid_with_namespace,
            Op::Eq,
            me,
        );
        let rows = Rows::collect(&ctx, generate).unwrap();
        let direct = parse_hosts(&std::fs::read("/etc/hosts").unwrap());
        assert_eq!(rows.len(), direct.len());
        assert!(
            rows.column(Col::pid_with_namespace)
                .iter()
                .all(|v| **v == Value::Integer(me))
        );
    }

    #[test]
    fn agrees_with_getent_hosts_localhost() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let Some(getent) = require_tool("getent") else {
            return;
        };
        let out = Command::new(getent)
            .args(["hosts", "localhost"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().next().expect("getent resolves no localhost");
        let mut fields = line.split_whitespace();
        let address = fields.next().unwrap();
        let names: Vec<&str> = fields.collect();
        // getent answers from the first source that knows the name; if that is
        // /etc/hosts, our table has the same entry.
        let ours = rows.iter().find(|r| {
            r[Col::address as usize].to_string() == address
                && r[Col::hostnames as usize]
                    .to_string()
                    .split(' ')
                    .any(|n| n == "localhost")
        });
        let in_file = std::fs::read_to_string("/etc/hosts")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().next() == Some(address) && l.contains("localhost"));
        if !in_file {
            // getent found localhost elsewhere (nss-myhostname, DNS): nothing to compare.
            missing::<()>("/etc/hosts has no line for getent's localhost address");
            return;
        }
        let ours = ours.expect("getent's localhost entry is missing");
        let our_names = ours[Col::hostnames as usize].to_string();
        for n in names {
            assert!(
                our_names.split(' ').any(|o| o == n),
                "{n} not in {our_names}"
            );
        }
    }
}
