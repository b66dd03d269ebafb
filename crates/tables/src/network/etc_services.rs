//! `etc_services`: the network service table `/etc/services`.
//!
//! As in osquery: a line is `name port/protocol [alias ...] [# comment]`; aliases are
//! joined with spaces (empty text when there are none); the comment is the trimmed text
//! after `#` (several `#` parts joined with ` # `). Lines starting with `#`, lines
//! without a `port/protocol` field, lines whose port is not a number and lines longer
//! than 64 KiB are skipped.

use oxquery_sys::fs::FileReader;
use oxquery_sys::lines;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "etc_services",
    description: "Network service names with their ports and transport protocols, from /etc/services.",
    attributes: [CACHEABLE],
    columns: {
        name: Text [] "Service name",
        port: Integer [] "Port number",
        protocol: Text [] "Transport protocol (tcp, udp, ...)",
        aliases: Text [] "Other names of the service, separated by spaces",
        comment: Text [] "Comment on the line, if any",
    },
    examples: [
        "select * from etc_services where port = 22",
    ],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Service {
    pub name: String,
    pub port: i64,
    pub protocol: String,
    pub aliases: String,
    pub comment: Option<String>,
}

pub(crate) fn parse_services(text: &[u8]) -> Vec<Service> {
    let mut out = Vec::new();
    for line in lines::text_lines(text, "etc_services") {
        let (fields, comment) = lines::fields_and_comment(&line);
        if fields.len() < 2 {
            continue;
        }
        let Some((port, protocol)) = fields[1].split_once('/') else {
            continue;
        };
        if protocol.is_empty() || protocol.contains('/') {
            continue;
        }
        let Ok(port) = port.parse::<i64>() else {
            continue;
        };
        out.push(Service {
            name: fields[0].to_owned(),
            port,
            protocol: protocol.to_owned(),
            aliases: fields[2..].join(" "),
            comment,
        });
    }
    out
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    let text = match reader.read("/etc/services") {
        Ok(t) => t,
        Err(e) => {
            log::info!("etc_services: cannot read /etc/services: {e}");
            return Ok(());
        }
    };
    for s in parse_services(text) {
        let mut row = rows.row();
        row.set(Col::name, s.name);
        row.set(Col::port, s.port);
        row.set(Col::protocol, s.protocol);
        row.set(Col::aliases, s.aliases);
        if let Some(c) = s.comment {
            row.set(Col::comment, c);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Value;

    #[test]
    fn parses_fixture() {
        let mut text = b"# Network services\n\
            tcpmux\t\t1/tcp\t\t\t\t# TCP port service multiplexer\n\
            echo 7/udp\n\
            smtp\t\t25/tcp\t\tmail\tsmtp-mail # two # comments\n\
            broken 80\n\
            alsobroken 80/tcp/udp\n\
            noport abc/tcp\n\
            \xff\xfe 9/tcp\n"
            .to_vec();
        text.extend_from_slice(b"huge 1/tcp ");
        text.extend(std::iter::repeat_n(b'a', lines::MAX_LINE));
        text.extend_from_slice(b"\nlast\t65535/sctp");
        let got = parse_services(&text);
        let names: Vec<&str> = got.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["tcpmux", "echo", "smtp", "\u{fffd}\u{fffd}", "last"]
        );
        assert_eq!(got[0].port, 1);
        assert_eq!(got[0].protocol, "tcp");
        assert_eq!(got[0].aliases, "");
        assert_eq!(
            got[0].comment.as_deref(),
            Some("TCP port service multiplexer")
        );
        assert_eq!(got[1].protocol, "udp");
        assert_eq!(got[1].comment, None);
        assert_eq!(got[2].aliases, "mail smtp-mail");
        assert_eq!(got[2].comment.as_deref(), Some("two # comments"));
        assert_eq!(got[4].port, 65535);
        assert_eq!(got[4].protocol, "sctp");
    }

    #[test]
    fn agrees_with_getent_services() {
        let rows = crate::testing::scan_everything(&SPEC, generate);
        if !std::path::Path::new("/etc/services").exists() {
            assert!(rows.is_empty());
            return;
        }
        let mut compared = 0;
        for service in ["ssh", "http", "domain"] {
            let Some(f) = crate::testing::getent_fields("services", service) else {
                continue;
            };
            compared += 1;
            let (port, proto) = f[1].split_once('/').unwrap();
            let row = rows
                .iter()
                .find(|r| {
                    r[Col::name as usize].to_string() == f[0]
                        && r[Col::protocol as usize].to_string() == proto
                })
                .unwrap_or_else(|| panic!("getent knows {f:?}; we do not"));
            assert_eq!(
                row[Col::port as usize],
                Value::Integer(port.parse().unwrap())
            );
            assert_eq!(row[Col::aliases as usize].to_string(), f[2..].join(" "));
        }
        // /etc/services exists, and every copy of it names these well-known services.
        assert!(compared > 0, "getent knows none of ssh, http, domain");
    }
}
