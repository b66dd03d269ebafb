//! `etc_protocols`: the IP protocol number table `/etc/protocols`.
//!
//! As in osquery: a line is `name number [alias ...] [# comment]`; only the first alias
//! is reported; the comment is the text after `#`, trimmed (several `#` parts are joined
//! with ` # `). Lines starting with `#`, lines with fewer than two fields, lines whose
//! number is not a number and lines longer than 64 KiB are skipped.

use oxquery_sys::fs::FileReader;
use oxquery_sys::lines;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "etc_protocols",
    description: "IP protocol names and numbers listed in /etc/protocols.",
    attributes: [CACHEABLE],
    columns: {
        name: Text [] "Protocol name",
        number: Integer [] "IP protocol number",
        alias: Text [] "First alias of the protocol, if any",
        comment: Text [] "Comment on the line, if any",
    },
    examples: [
        "select * from etc_protocols where name = 'tcp'",
    ],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Protocol {
    pub name: String,
    pub number: i64,
    pub alias: Option<String>,
    pub comment: Option<String>,
}

pub(crate) fn parse_protocols(text: &[u8]) -> Vec<Protocol> {
    let mut out = Vec::new();
    for line in lines::text_lines(text, "etc_protocols") {
        let (fields, comment) = lines::fields_and_comment(&line);
        if fields.len() < 2 {
            continue;
        }
        let Ok(number) = fields[1].parse::<i64>() else {
            continue;
        };
        out.push(Protocol {
            name: fields[0].to_owned(),
            number,
            alias: fields.get(2).map(|s| (*s).to_owned()),
            comment,
        });
    }
    out
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    let text = match reader.read("/etc/protocols") {
        Ok(t) => t,
        Err(e) => {
            log::info!("etc_protocols: cannot read /etc/protocols: {e}");
            return Ok(());
        }
    };
    for p in parse_protocols(text) {
        let mut row = rows.row();
        row.set(Col::name, p.name);
        row.set(Col::number, p.number);
        if let Some(a) = p.alias {
            row.set(Col::alias, a);
        }
        if let Some(c) = p.comment {
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
        let mut text = b"# header\n\
            ip\t0\tIP\t\t# internet protocol, pseudo protocol number\n\
            tcp 6 TCP # transmission control # second part\n\
            hopopt 0 HOPOPT extra aliases\n\
            lonely\n\
            bad notanumber X\n\
            \x00\xff 99\n\
            udp\t17\n"
            .to_vec();
        text.extend(std::iter::repeat_n(b'a', lines::MAX_LINE + 1));
        text.extend_from_slice(b" 1\nlast 250 LAST");
        let got = parse_protocols(&text);
        let names: Vec<&str> = got.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["ip", "tcp", "hopopt", "\u{0}\u{fffd}", "udp", "last"]
        );
        assert_eq!(got[0].number, 0);
        assert_eq!(got[0].alias.as_deref(), Some("IP"));
        assert_eq!(
            got[0].comment.as_deref(),
            Some("internet protocol, pseudo protocol number")
        );
        assert_eq!(
            got[1].comment.as_deref(),
            Some("transmission control # second part")
        );
        assert_eq!(got[2].alias.as_deref(), Some("HOPOPT"));
        assert_eq!(got[4].alias, None);
        assert_eq!(got[4].comment, None);
        assert_eq!(got[5].number, 250);
    }

    #[test]
    fn agrees_with_getent_protocols() {
        let rows = crate::testing::scan_everything(&SPEC, generate);
        if !std::path::Path::new("/etc/protocols").exists() {
            assert!(rows.is_empty());
            return;
        }
        let mut compared = 0;
        for proto in ["tcp", "udp", "icmp"] {
            let Some(f) = crate::testing::getent_fields("protocols", proto) else {
                continue;
            };
            compared += 1;
            let row = rows
                .iter()
                .find(|r| r[Col::name as usize].to_string() == f[0])
                .unwrap_or_else(|| panic!("getent knows {}; we do not", f[0]));
            assert_eq!(
                row[Col::number as usize],
                Value::Integer(f[1].parse().unwrap())
            );
            if let Some(alias) = f.get(2) {
                assert_eq!(&row[Col::alias as usize].to_string(), alias);
            }
        }
        // /etc/protocols exists, and every copy of it names these protocols.
        assert!(compared > 0, "getent knows none of tcp, udp, icmp");
    }
}
