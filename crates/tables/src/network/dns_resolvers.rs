//! `dns_resolvers`: the stub resolver's configuration, `/etc/resolv.conf`, read the way
//! glibc's `res_init` reads it (osquery asks `res_init` and reports its state).
//!
//! Rows, as osquery's: one `nameserver` row per server (at most 3, netmask `32`), one
//! `sortlist` row per entry (at most 10, IPv4, netmask in dotted form), one `search` row
//! per search domain (at most 6). Every row carries the resolver option bits (`RES_*`,
//! starting from glibc's default 0x2c1). glibc's rules kept: keywords start the line;
//! `domain` and `search` replace each other, the last one wins; `options` words match
//! by prefix; without any nameserver the resolver uses 127.0.0.1; without `search` or
//! `domain` the search list is the domain part of the host name. The `LOCALDOMAIN` and
//! `RES_OPTIONS` environment variables of this process apply as they do for glibc.
//!
//! Differences from osquery, on purpose: each search row holds its own domain (osquery
//! repeats the first), IPv6 nameservers are shown (osquery prints an empty address),
//! and the sortlist netmask is dotted (osquery prints the raw 32-bit integer).

use std::net::{IpAddr, Ipv4Addr};

use oxquery_sys::lines;
use oxquery_sys::safe_read;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "dns_resolvers",
    description: "DNS resolver configuration: name servers, search domains, sort list and resolver options.",
    columns: {
        id: Integer [] "Position of the entry within its type",
        r#type: Text [] "nameserver, search or sortlist",
        address: Text [] "Server address, search domain or sort-list network",
        netmask: Text [] "32 for name servers, the sort-list netmask for sortlist entries",
        options: BigInt [] "Resolver option bits (RES_*) in effect",
        pid_with_namespace: Integer [ADDITIONAL | HIDDEN] "Read the configuration inside this process's mount namespace; 0 in rows read from the host's",
    },
    examples: [
        "select * from dns_resolvers where type = 'nameserver'",
    ],
}

const MAXNS: usize = 3;
const MAXDNSRCH: usize = 6;
const MAXRESOLVSORT: usize = 10;

const RES_INIT: u64 = 0x1;
const RES_DEBUG: u64 = 0x2;
const RES_USEVC: u64 = 0x8;
const RES_RECURSE: u64 = 0x40;
const RES_DEFNAMES: u64 = 0x80;
const RES_DNSRCH: u64 = 0x200;
const RES_ROTATE: u64 = 0x4000;
const RES_USE_EDNS0: u64 = 0x0010_0000;
const RES_SNGLKUP: u64 = 0x0020_0000;
const RES_SNGLKUPREOP: u64 = 0x0040_0000;
const RES_NOTLDQUERY: u64 = 0x0100_0000;
const RES_NORELOAD: u64 = 0x0200_0000;
const RES_TRUSTAD: u64 = 0x0400_0000;
const RES_NOAAAA: u64 = 0x0800_0000;

/// glibc's option words, in its matching order (prefix match, so the longer
/// `single-request-reopen` comes before `single-request`).
const OPTION_WORDS: &[(&str, u64)] = &[
    ("debug", RES_DEBUG),
    ("rotate", RES_ROTATE),
    ("edns0", RES_USE_EDNS0),
    ("single-request-reopen", RES_SNGLKUPREOP),
    ("single-request", RES_SNGLKUP),
    ("no_tld_query", RES_NOTLDQUERY),
    ("no-tld-query", RES_NOTLDQUERY),
    ("no-reload", RES_NORELOAD),
    ("use-vc", RES_USEVC),
    ("trust-ad", RES_TRUSTAD),
    ("no-aaaa", RES_NOAAAA),
];

/// What the resolver makes of its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolverConfig {
    pub nameservers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub sortlist: Vec<(Ipv4Addr, Ipv4Addr)>,
    pub options: u64,
}

/// The line's text after `keyword` when the line starts with it followed by a blank.
fn keyword<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(word)?;
    rest.starts_with([' ', '\t']).then_some(rest)
}

fn apply_options(words: &str, options: &mut u64) {
    for word in words.split_ascii_whitespace() {
        if let Some((_, bit)) = OPTION_WORDS.iter().find(|(w, _)| word.starts_with(w)) {
            *options |= bit;
        }
    }
}

/// The natural (classful) netmask glibc gives a sort-list entry without one.
fn natural_mask(a: Ipv4Addr) -> Ipv4Addr {
    let first = a.octets()[0];
    if first < 128 {
        Ipv4Addr::new(255, 0, 0, 0)
    } else if first < 192 {
        Ipv4Addr::new(255, 255, 0, 0)
    } else {
        Ipv4Addr::new(255, 255, 255, 0)
    }
}

fn parse_nameserver(word: &str) -> Option<IpAddr> {
    // An IPv6 server may carry a %scope; the address is what we report.
    let addr = word.split('%').next()?;
    addr.parse().ok()
}

/// Reads resolv.conf text. `host_domain` is the domain part of the host name (the
/// default search list); `local_domain` and `res_options` are the environment overrides.
pub(crate) fn parse_resolv_conf(
    text: &[u8],
    host_domain: Option<&str>,
    local_domain: Option<&str>,
    res_options: Option<&str>,
) -> ResolverConfig {
    let mut cfg = ResolverConfig {
        nameservers: Vec::new(),
        search: Vec::new(),
        sortlist: Vec::new(),
        options: RES_INIT | RES_RECURSE | RES_DEFNAMES | RES_DNSRCH,
    };
    let mut have_search = false;
    for line in lines::text_lines(text, "dns_resolvers") {
        let line = line.trim_end_matches('\r');
        if line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(rest) = keyword(line, "domain") {
            if let Some(d) = rest.split_ascii_whitespace().next() {
                cfg.search = vec![d.to_owned()];
                have_search = true;
            }
        } else if let Some(rest) = keyword(line, "search") {
            let domains: Vec<String> = rest
                .split_ascii_whitespace()
                .take(MAXDNSRCH)
                .map(str::to_owned)
                .collect();
            if !domains.is_empty() {
                cfg.search = domains;
                have_search = true;
            }
        } else if let Some(rest) = keyword(line, "nameserver") {
            if cfg.nameservers.len() < MAXNS
                && let Some(ip) = rest
                    .split_ascii_whitespace()
                    .next()
                    .and_then(parse_nameserver)
            {
                cfg.nameservers.push(ip);
            }
        } else if let Some(rest) = keyword(line, "sortlist") {
            for word in rest.split_ascii_whitespace() {
                if cfg.sortlist.len() >= MAXRESOLVSORT {
                    break;
                }
                let (net, mask) = match word.split_once(['/', '&']) {
                    Some((n, m)) => (n, Some(m)),
                    None => (word, None),
                };
                let Ok(net) = net.parse::<Ipv4Addr>() else {
                    continue;
                };
                let mask = mask
                    .and_then(|m| m.parse::<Ipv4Addr>().ok())
                    .unwrap_or_else(|| natural_mask(net));
                cfg.sortlist.push((net, mask));
            }
        } else if let Some(rest) = keyword(line, "options") {
            apply_options(rest, &mut cfg.options);
        }
    }
    if let Some(ld) = local_domain {
        let domains: Vec<String> = ld
            .split_ascii_whitespace()
            .take(MAXDNSRCH)
            .map(str::to_owned)
            .collect();
        if !domains.is_empty() {
            cfg.search = domains;
            have_search = true;
        }
    }
    if !have_search && let Some(d) = host_domain.filter(|d| !d.is_empty()) {
        cfg.search = vec![d.to_owned()];
    }
    if let Some(env) = res_options {
        apply_options(env, &mut cfg.options);
    }
    if cfg.nameservers.is_empty() {
        cfg.nameservers.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    cfg
}

fn host_domain() -> Option<String> {
    let name = oxquery_sys::host::hostname()?;
    name.split_once('.').map(|(_, d)| d.to_owned())
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let policy = crate::common::user_file_policy(ctx);
    let domain = host_domain();
    let local_domain = std::env::var("LOCALDOMAIN").ok();
    let res_options = std::env::var("RES_OPTIONS").ok();
    for root in crate::common::namespace_roots(ctx, Col::pid_with_namespace) {
        let pid = root.pid();
        let path = Path::new("/etc/resolv.conf");
        let text = match safe_read::read_bounded_in(&root, path, &policy) {
            Ok(t) => t,
            Err(e) => {
                // glibc runs on its defaults without the file; so do we.
                log::info!(
                    "dns_resolvers: cannot read {} ({e}); using resolver defaults",
                    root.display(path).display()
                );
                Vec::new()
            }
        };
        let cfg = parse_resolv_conf(
            &text,
            domain.as_deref(),
            local_domain.as_deref(),
            res_options.as_deref(),
        );
        let options = cfg.options as i64;
        for (i, ns) in cfg.nameservers.iter().enumerate() {
            let mut row = rows.row();
            row.set(Col::id, i);
            row.set(Col::r#type, "nameserver");
            row.set_with(Col::address, || ns.to_string());
            row.set(Col::netmask, "32");
            row.set(Col::options, options);
            row.set(Col::pid_with_namespace, pid);
        }
        for (i, (net, mask)) in cfg.sortlist.iter().enumerate() {
            let mut row = rows.row();
            row.set(Col::id, i);
            row.set(Col::r#type, "sortlist");
            row.set_with(Col::address, || net.to_string());
            row.set_with(Col::netmask, || mask.to_string());
            row.set(Col::options, options);
            row.set(Col::pid_with_namespace, pid);
        }
        for (i, domain) in cfg.search.iter().enumerate() {
            let mut row = rows.row();
            row.set(Col::id, i);
            row.set(Col::r#type, "search");
            row.set_with(Col::address, || domain.clone());
            row.set(Col::options, options);
            row.set(Col::pid_with_namespace, pid);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};

    const DEFAULT: u64 = RES_INIT | RES_RECURSE | RES_DEFNAMES | RES_DNSRCH;

    #[test]
    fn pid_with_namespace_reads_that_root_s_resolv_conf() {
        let Some(c) = crate::testing::Container::start() else {
            return;
        };
        let rows = c.rows(&SPEC, Col::pid_with_namespace.into(), generate);
        let got: Vec<(Value, Value)> = rows
            .iter()
            .map(|r| {
                (
                    r[Col::r#type as usize].clone(),
                    r[Col::address as usize].clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (Value::from("nameserver"), Value::from("192.0.2.53")),
                (Value::from("search"), Value::from("contained.example"))
            ]
        );
        assert!(
            rows.iter()
                .all(|r| r[Col::pid_with_namespace as usize] == Value::Integer(c.pid()))
        );
    }

    #[test]
    fn default_options_match_glibc() {
        assert_eq!(DEFAULT, 0x2c1);
    }

    #[test]
    fn parses_fixture() {
        let mut text = b"# generated\n\
            ; also a comment\n\
            nameserver 10.0.0.1\n\
            nameserver\t2001:db8::53\n\
            nameserver fe80::1%eth0\n\
            nameserver 10.0.0.4\n\
            nameserver not-an-address\n\
            domain first.example\n\
            search a.example b.example\tc.example d e f g h\n\
            sortlist 130.155.160.0/255.255.240.0 130.155.0.0 10.1.0.0&255.255.0.0 bogus\n\
            options ndots:2 rotate edns0 single-request-reopen trust-ad timeout:1\n\
            nameservers 10.9.9.9\n\
            \x00\xff garbage\n\
              nameserver 10.8.8.8\n"
            .to_vec();
        text.extend_from_slice(b"nameserver ");
        text.extend(std::iter::repeat_n(b'1', lines::MAX_LINE));
        text.push(b'\n');
        let cfg = parse_resolv_conf(&text, Some("host.example"), None, None);
        assert_eq!(
            cfg.nameservers,
            vec![
                "10.0.0.1".parse::<IpAddr>().unwrap(),
                "2001:db8::53".parse().unwrap(),
                "fe80::1".parse().unwrap(),
            ]
        );
        assert_eq!(
            cfg.search,
            ["a.example", "b.example", "c.example", "d", "e", "f"]
        );
        assert_eq!(
            cfg.sortlist,
            vec![
                (
                    "130.155.160.0".parse().unwrap(),
                    "255.255.240.0".parse().unwrap()
                ),
                (
                    "130.155.0.0".parse().unwrap(),
                    "255.255.0.0".parse().unwrap()
                ),
                ("10.1.0.0".parse().unwrap(), "255.255.0.0".parse().unwrap()),
            ]
        );
        assert_eq!(
            cfg.options,
            DEFAULT | RES_ROTATE | RES_USE_EDNS0 | RES_SNGLKUPREOP | RES_TRUSTAD
        );
    }

    #[test]
    fn defaults_and_overrides() {
        let cfg = parse_resolv_conf(b"", Some("corp.example"), None, None);
        assert_eq!(cfg.nameservers, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        assert_eq!(cfg.search, ["corp.example"]);
        assert_eq!(cfg.options, DEFAULT);
        // The last of domain/search wins.
        let cfg = parse_resolv_conf(b"search a b\ndomain c\n", None, None, None);
        assert_eq!(cfg.search, ["c"]);
        let cfg = parse_resolv_conf(
            b"search a b\n",
            None,
            Some("env.example"),
            Some("debug no-aaaa"),
        );
        assert_eq!(cfg.search, ["env.example"]);
        assert_eq!(cfg.options, DEFAULT | RES_DEBUG | RES_NOAAAA);
        // Truncated and binary input: no panic.
        let cfg = parse_resolv_conf(b"nameserver 10.0.0", None, None, None);
        assert_eq!(cfg.nameservers, vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        let _ = parse_resolv_conf(&[0xff; 4096], None, None, None);
    }

    #[test]
    fn live_rows_follow_etc_resolv_conf() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        // The nameserver lines read independently (valid addresses, first three).
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let mut want: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver"))
            .filter_map(|r| r.split_whitespace().next())
            .filter_map(|a| a.split('%').next()?.parse::<IpAddr>().ok())
            .map(|a| a.to_string())
            .take(3)
            .collect();
        if want.is_empty() {
            want.push("127.0.0.1".into());
        }
        let got: Vec<String> = rows
            .iter()
            .filter(|r| r[Col::r#type as usize].to_string() == "nameserver")
            .map(|r| r[Col::address as usize].to_string())
            .collect();
        assert_eq!(got, want);
        for r in rows.iter() {
            assert_eq!(r[Col::pid_with_namespace as usize], Value::Integer(0));
            assert!(r[Col::options as usize].as_i64().unwrap() & 0x1 != 0);
        }
    }
}
