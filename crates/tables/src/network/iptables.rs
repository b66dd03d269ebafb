//! `iptables`: IPv4 packet-filter chains and rules with their counters.
//!
//! osquery links libiptc, a C library with no stable ABI that has no Rust binding; the
//! same data comes from `iptables-save -c` (every table, every chain with its policy
//! counters, every rule with its own counters), which is what we run and parse. Without
//! the program, or when it fails (no permission, no netfilter), the table is empty and
//! says why in the log.
//!
//! Rows, as osquery's: for each chain, one row per rule, then one row for the chain
//! itself (policy and policy counters; user chains have an empty policy and 0
//! counters). Rule rows repeat the chain's policy; `protocol` is the number (`!6` when
//! inverted), addresses and masks are dotted (`0.0.0.0` when absent, `!` prefix when
//! inverted), interfaces are `all` when absent, with their match mask in hex (`FF` per
//! compared byte), ports are `low:high` for TCP and UDP rules (`0:65535` unless given),
//! `match` is `yes`. Unlike osquery, whose rule rows repeat the policy counters, a rule
//! row carries the rule's own packet and byte counters.

use std::net::Ipv4Addr;
use std::time::Duration;

use oxquery_sys::exec::{self, Helper};
use oxquery_sys::lines;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "iptables",
    description: "IPv4 netfilter (iptables) chains and rules with their packet and byte counters.",
    columns: {
        filter_name: Text [] "Table the chain belongs to (filter, nat, mangle, raw, security)",
        chain: Text [] "Chain name",
        policy: Text [] "Policy of a built-in chain; empty for user chains",
        target: Text [] "Where a matching packet goes (ACCEPT, DROP, a chain, ...)",
        protocol: Integer [] "IP protocol number the rule matches; 0 for any",
        src_port: Text [] "Source port range low:high (TCP and UDP rules)",
        dst_port: Text [] "Destination port range low:high (TCP and UDP rules)",
        src_ip: Text [] "Source address",
        src_mask: Text [] "Source netmask",
        iniface: Text [] "Input interface; all for any",
        iniface_mask: Text [] "Bytes of the input interface name compared, in hex",
        dst_ip: Text [] "Destination address",
        dst_mask: Text [] "Destination netmask",
        outiface: Text [] "Output interface; all for any",
        outiface_mask: Text [] "Bytes of the output interface name compared, in hex",
        r#match: Text [] "yes for rules",
        packets: Integer [] "Packets the rule (or the chain policy) matched",
        bytes: Integer [] "Bytes the rule (or the chain policy) matched",
    },
    examples: [
        "select * from iptables where chain = 'INPUT'",
    ],
}

/// iptables-save answers in milliseconds; a minute means it is stuck on a lock.
const SAVE_TIMEOUT: Duration = Duration::from_secs(60);
/// Rule sets of large hosts (Kubernetes nodes) run to tens of megabytes; more than this
/// is not a rule set we can hold.
const MAX_SAVE_OUTPUT: usize = 128 << 20;

/// One row to emit; `None` fields are NULL.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IptRow {
    pub filter_name: String,
    pub chain: String,
    pub policy: String,
    pub target: Option<String>,
    pub protocol: Option<String>,
    pub src_port: Option<String>,
    pub dst_port: Option<String>,
    pub src_ip: Option<String>,
    pub src_mask: Option<String>,
    pub iniface: Option<String>,
    pub iniface_mask: Option<String>,
    pub dst_ip: Option<String>,
    pub dst_mask: Option<String>,
    pub outiface: Option<String>,
    pub outiface_mask: Option<String>,
    pub is_match: Option<String>,
    pub packets: i64,
    pub bytes: i64,
}

/// Splits a rule line into words, honouring `"..."` quoting with backslash escapes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_ascii_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

/// `[packets:bytes]`.
fn counters(word: &str) -> Option<(i64, i64)> {
    let inner = word.strip_prefix('[')?.strip_suffix(']')?;
    let (p, b) = inner.split_once(':')?;
    Some((p.parse().ok()?, b.parse().ok()?))
}

fn protocol_number(name: &str) -> Option<u8> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    Some(match name.to_ascii_lowercase().as_str() {
        "all" => 0,
        "icmp" => 1,
        "igmp" => 2,
        "ipip" => 4,
        "tcp" => 6,
        "egp" => 8,
        "udp" => 17,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" | "ipv6-icmp" => 58,
        "ospf" => 89,
        "pim" => 103,
        "vrrp" => 112,
        "l2tp" => 115,
        "sctp" => 132,
        "mh" => 135,
        "udplite" => 136,
        _ => return None,
    })
}

/// `addr[/len|/mask]` as (address, mask).
fn address_and_mask(word: &str) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let (addr, mask) = match word.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (word, None),
    };
    let addr: Ipv4Addr = addr.parse().ok()?;
    let mask = match mask {
        None => Ipv4Addr::BROADCAST,
        Some(m) => match m.parse::<u32>() {
            Ok(len) if len <= 32 => Ipv4Addr::from(u32::MAX.checked_shl(32 - len).unwrap_or(0)),
            Ok(_) => return None,
            Err(_) => m.parse().ok()?,
        },
    };
    Some((addr, mask))
}

/// The interface name as stored and the hex of its match mask (`eth+` compares 3 bytes,
/// `eth0` compares its 4 bytes and the terminating NUL).
fn interface_and_mask(name: &str) -> (String, String) {
    let compared = match name.strip_suffix('+') {
        Some(prefix) => prefix.len(),
        None => name.len() + 1,
    };
    (name.to_owned(), "FF".repeat(compared.min(16)))
}

/// `a` or `a:b` as `a:b`.
fn port_range(word: &str) -> String {
    match word.split_once(':') {
        Some((lo, hi)) => format!(
            "{}:{}",
            if lo.is_empty() { "0" } else { lo },
            if hi.is_empty() { "65535" } else { hi }
        ),
        None => format!("{word}:{word}"),
    }
}

fn parse_rule(table: &str, chain: &str, policy: &str, w: &[String], counts: (i64, i64)) -> IptRow {
    let mut row = IptRow {
        filter_name: table.to_owned(),
        chain: chain.to_owned(),
        policy: policy.to_owned(),
        target: Some(String::new()),
        protocol: Some("0".into()),
        src_ip: Some("0.0.0.0".into()),
        src_mask: Some("0.0.0.0".into()),
        dst_ip: Some("0.0.0.0".into()),
        dst_mask: Some("0.0.0.0".into()),
        iniface: Some("all".into()),
        iniface_mask: Some(String::new()),
        outiface: Some("all".into()),
        outiface_mask: Some(String::new()),
        is_match: Some("yes".into()),
        packets: counts.0,
        bytes: counts.1,
        ..IptRow::default()
    };
    let mut proto = 0u8;
    let mut sport = None;
    let mut dport = None;
    let mut negate = false;
    let mut i = 0;
    while i < w.len() {
        let word = w[i].as_str();
        let arg = w.get(i + 1).map(String::as_str);
        let bang = if negate { "!" } else { "" };
        let mut consumed = 1;
        match (word, arg) {
            ("!", _) => {
                negate = true;
                i += 1;
                continue;
            }
            ("-A" | "--append", Some(_)) => consumed = 2,
            ("-p" | "--protocol", Some(p)) => {
                proto = protocol_number(p).unwrap_or(0);
                row.protocol = Some(format!("{bang}{proto}"));
                consumed = 2;
            }
            ("-s" | "--source", Some(a)) | ("-d" | "--destination", Some(a)) => {
                if let Some((ip, mask)) = address_and_mask(a) {
                    let (ip_col, mask_col) = if word.starts_with("-s") || word == "--source" {
                        (&mut row.src_ip, &mut row.src_mask)
                    } else {
                        (&mut row.dst_ip, &mut row.dst_mask)
                    };
                    *ip_col = Some(format!("{bang}{ip}"));
                    *mask_col = Some(mask.to_string());
                }
                consumed = 2;
            }
            ("-i" | "--in-interface", Some(n)) => {
                let (name, mask) = interface_and_mask(n);
                row.iniface = Some(format!("{bang}{name}"));
                row.iniface_mask = Some(mask);
                consumed = 2;
            }
            ("-o" | "--out-interface", Some(n)) => {
                let (name, mask) = interface_and_mask(n);
                row.outiface = Some(format!("{bang}{name}"));
                row.outiface_mask = Some(mask);
                consumed = 2;
            }
            ("--sport" | "--source-port", Some(p)) => {
                sport.get_or_insert_with(|| port_range(p));
                consumed = 2;
            }
            ("--dport" | "--destination-port", Some(p)) => {
                dport.get_or_insert_with(|| port_range(p));
                consumed = 2;
            }
            ("-j" | "--jump" | "-g" | "--goto", Some(t)) => {
                row.target = Some(t.to_owned());
                // Everything after the target is the target's own options.
                break;
            }
            _ => {}
        }
        negate = false;
        i += consumed;
    }
    if proto == 6 || proto == 17 {
        row.src_port = Some(sport.unwrap_or_else(|| "0:65535".into()));
        row.dst_port = Some(dport.unwrap_or_else(|| "0:65535".into()));
    } else {
        row.src_port = Some(String::new());
        row.dst_port = Some(String::new());
    }
    row
}

/// Parses `iptables-save -c` output into osquery's rows.
pub(crate) fn parse_save(text: &[u8]) -> Vec<IptRow> {
    struct Chain {
        name: String,
        policy: String,
        counts: (i64, i64),
        rules: Vec<IptRow>,
    }
    let mut out = Vec::new();
    let mut table: Option<String> = None;
    let mut chains: Vec<Chain> = Vec::new();
    let flush = |table: &str, chains: &mut Vec<Chain>, out: &mut Vec<IptRow>| {
        for c in chains.drain(..) {
            out.extend(c.rules);
            out.push(IptRow {
                filter_name: table.to_owned(),
                chain: c.name,
                policy: c.policy,
                packets: c.counts.0,
                bytes: c.counts.1,
                ..IptRow::default()
            });
        }
    };
    for line in lines::text_lines(text, "iptables") {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            if let Some(t) = table.take() {
                flush(&t, &mut chains, &mut out);
            }
            table = Some(name.trim().to_owned());
            continue;
        }
        let Some(tname) = table.as_deref() else {
            continue;
        };
        if line == "COMMIT" {
            flush(tname, &mut chains, &mut out);
            table = None;
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let w: Vec<&str> = decl.split_ascii_whitespace().collect();
            let Some(name) = w.first() else { continue };
            let policy = w.get(1).copied().unwrap_or("-");
            let (policy, counts) = if policy == "-" {
                (String::new(), (0, 0))
            } else {
                (
                    policy.to_owned(),
                    w.get(2).and_then(|c| counters(c)).unwrap_or((0, 0)),
                )
            };
            chains.push(Chain {
                name: (*name).to_owned(),
                policy,
                counts,
                rules: Vec::new(),
            });
            continue;
        }
        let w = words(line);
        let (counts, rest) = match w.first().and_then(|c| counters(c)) {
            Some(c) => (c, &w[1..]),
            None => ((0, 0), &w[..]),
        };
        let (Some(flag), Some(chain_name)) = (rest.first(), rest.get(1)) else {
            continue;
        };
        if flag != "-A" && flag != "--append" {
            continue;
        }
        let Some(chain) = chains.iter_mut().find(|c| &c.name == chain_name) else {
            continue;
        };
        let rule = parse_rule(tname, &chain.name, &chain.policy, rest, counts);
        chain.rules.push(rule);
    }
    if let Some(t) = table {
        flush(&t, &mut chains, &mut out);
    }
    out
}

/// Runs `helper` (an `iptables-save -c` invocation) and parses its output; `None` (with a
/// log line) when it cannot run, fails or is stopped.
fn collect(helper: &Helper) -> Option<Vec<IptRow>> {
    match helper.run().and_then(exec::Output::into_stdout) {
        Ok(stdout) => Some(parse_save(&stdout)),
        // The query stopped: not worth a log line.
        Err(exec::Error::Stopped { .. }) => None,
        Err(e) => {
            log::info!("iptables: no rules can be read: {e}");
            None
        }
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let stop = || ctx.is_stopped();
    let save = Helper::new("iptables-save")
        .arg("-c")
        .timeout(SAVE_TIMEOUT)
        .max_output(MAX_SAVE_OUTPUT)
        .stop_when(&stop);
    let rules = collect(&save);
    ctx.check()?;
    for r in rules.unwrap_or_default() {
        let mut row = rows.row();
        row.set(Col::filter_name, r.filter_name);
        row.set(Col::chain, r.chain);
        row.set(Col::policy, r.policy);
        let text_cols = [
            (Col::target, r.target),
            (Col::src_port, r.src_port),
            (Col::dst_port, r.dst_port),
            (Col::src_ip, r.src_ip),
            (Col::src_mask, r.src_mask),
            (Col::iniface, r.iniface),
            (Col::iniface_mask, r.iniface_mask),
            (Col::dst_ip, r.dst_ip),
            (Col::dst_mask, r.dst_mask),
            (Col::outiface, r.outiface),
            (Col::outiface_mask, r.outiface_mask),
            (Col::r#match, r.is_match),
        ];
        for (col, v) in text_cols {
            if let Some(v) = v {
                row.set(col, v);
            }
        }
        if let Some(p) = r.protocol {
            match p.parse::<i64>() {
                Ok(n) => row.set(Col::protocol, n),
                Err(_) => row.set(Col::protocol, p),
            }
        }
        row.set(Col::packets, r.packets);
        row.set(Col::bytes, r.bytes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const FIXTURE: &str = "# Generated by iptables-save v1.8.9 on Thu Jan  1 00:00:00 2026
*filter
:INPUT DROP [120:9000]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [55:4400]
:oxq-chain - [0:0]
[10:600] -A INPUT -s 10.0.0.0/8 -i eth0 -p tcp -m tcp --dport 22 -j ACCEPT
[3:180] -A INPUT ! -s 192.168.1.7/32 ! -i wlan+ -p udp -m udp --sport 1000:2000 -j DROP
[0:0] -A INPUT -d 172.16.0.0/255.240.0.0 -o veth0 -p icmp -m comment --comment \"ping \\\"me\\\" here\" -j oxq-chain
[7:70] -A OUTPUT ! -p tcp -j LOG --log-prefix \"-j DROP \"
[1:1] -A oxq-chain -g INPUT
[2:2] -A oxq-chain
COMMIT
# Completed
*nat
:PREROUTING ACCEPT [1:2]
[4:5] -A PREROUTING -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 8080
COMMIT
";

    #[test]
    fn parses_fixture_like_osquery() {
        let rows = parse_save(FIXTURE.as_bytes());
        let summary: Vec<(&str, &str, Option<&str>)> = rows
            .iter()
            .map(|r| {
                (
                    r.filter_name.as_str(),
                    r.chain.as_str(),
                    r.target.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("filter", "INPUT", Some("ACCEPT")),
                ("filter", "INPUT", Some("DROP")),
                ("filter", "INPUT", Some("oxq-chain")),
                ("filter", "INPUT", None),
                ("filter", "FORWARD", None),
                ("filter", "OUTPUT", Some("LOG")),
                ("filter", "OUTPUT", None),
                ("filter", "oxq-chain", Some("INPUT")),
                ("filter", "oxq-chain", Some("")),
                ("filter", "oxq-chain", None),
                ("nat", "PREROUTING", Some("REDIRECT")),
                ("nat", "PREROUTING", None),
            ]
        );
        let ssh = &rows[0];
        assert_eq!(ssh.policy, "DROP");
        assert_eq!(ssh.protocol.as_deref(), Some("6"));
        assert_eq!(ssh.src_ip.as_deref(), Some("10.0.0.0"));
        assert_eq!(ssh.src_mask.as_deref(), Some("255.0.0.0"));
        assert_eq!(ssh.dst_ip.as_deref(), Some("0.0.0.0"));
        assert_eq!(ssh.iniface.as_deref(), Some("eth0"));
        assert_eq!(ssh.iniface_mask.as_deref(), Some("FFFFFFFFFF"));
        assert_eq!(ssh.outiface.as_deref(), Some("all"));
        assert_eq!(ssh.outiface_mask.as_deref(), Some(""));
        assert_eq!(ssh.src_port.as_deref(), Some("0:65535"));
        assert_eq!(ssh.dst_port.as_deref(), Some("22:22"));
        assert_eq!(ssh.is_match.as_deref(), Some("yes"));
        assert_eq!((ssh.packets, ssh.bytes), (10, 600));

        let udp = &rows[1];
        assert_eq!(udp.src_ip.as_deref(), Some("!192.168.1.7"));
        assert_eq!(udp.src_mask.as_deref(), Some("255.255.255.255"));
        assert_eq!(udp.iniface.as_deref(), Some("!wlan+"));
        assert_eq!(udp.iniface_mask.as_deref(), Some("FFFFFFFF"));
        assert_eq!(udp.src_port.as_deref(), Some("1000:2000"));
        assert_eq!(udp.protocol.as_deref(), Some("17"));

        let icmp = &rows[2];
        assert_eq!(icmp.dst_mask.as_deref(), Some("255.240.0.0"));
        assert_eq!(icmp.outiface.as_deref(), Some("veth0"));
        assert_eq!(icmp.src_port.as_deref(), Some(""));
        assert_eq!(icmp.protocol.as_deref(), Some("1"));

        let input_chain = &rows[3];
        assert_eq!((input_chain.packets, input_chain.bytes), (120, 9000));
        assert_eq!(input_chain.protocol, None);
        assert_eq!(rows[5].protocol.as_deref(), Some("!6"));
        let user_chain = &rows[9];
        assert_eq!(user_chain.policy, "");
        assert_eq!((user_chain.packets, user_chain.bytes), (0, 0));
    }

    #[test]
    fn quoting_and_hostile_input() {
        assert_eq!(
            words(r#"-m comment --comment "a \"b\" c" -j X"#),
            ["-m", "comment", "--comment", "a \"b\" c", "-j", "X"]
        );
        assert!(parse_save(b"").is_empty());
        // Rules before any table or for undeclared chains are ignored.
        assert!(parse_save(b"-A INPUT -j ACCEPT\n*filter\n-A NOPE -j DROP\n").is_empty());
        // Truncated output (no COMMIT) still gives what was read.
        let rows = parse_save(b"*filter\n:INPUT ACCEPT [1:2]\n[3:4] -A INPUT -p tcp -s");
        assert_eq!(rows.len(), 2);
        let mut garbage = b"*filter\n:INPUT ACCEPT [x:y]\n\xff\xfe\x00\n".to_vec();
        garbage.extend(std::iter::repeat_n(b'-', lines::MAX_LINE + 1));
        garbage.extend_from_slice(b"\n[1:1] -A INPUT -s 999.1.1.1/40 -p bogus --dport\n");
        let rows = parse_save(&garbage);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].src_ip.as_deref(), Some("0.0.0.0"));
        assert_eq!(rows[0].protocol.as_deref(), Some("0"));
    }

    /// Deletes the test's network namespace however the test ends.
    struct NetnsGuard(String);
    impl Drop for NetnsGuard {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.0])
                .status();
        }
    }

    #[test]
    fn reads_a_rule_added_in_a_private_namespace() {
        if exec::find_program("iptables-save").is_err() || exec::find_program("iptables").is_err() {
            // Under CI=true this fails: .ci/run installs iptables.
            let _: Option<()> = oxquery_test_support::missing(
                "iptables is not installed (the parser is covered by the fixture tests)",
            );
            // Without the program the table is empty, never an error.
            let host = oxquery_table::Host::default();
            let ctx = QueryContext::everything(&SPEC, &host);
            let rows = Rows::collect(&ctx, generate).unwrap();
            assert!(rows.is_empty());
            return;
        }
        let ns = format!("oxq-test-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &ns])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _: Option<()> =
                oxquery_test_support::missing("cannot create a network namespace here");
            return;
        }
        let _guard = NetnsGuard(ns.clone());
        let added = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns,
                "iptables",
                "-A",
                "INPUT",
                "-s",
                "198.51.100.0/24",
            ])
            .args(["-p", "tcp", "--dport", "2222", "-j", "ACCEPT"])
            .status()
            .unwrap();
        assert!(added.success());
        let save = Helper::new("ip").args(["netns", "exec", &ns, "iptables-save", "-c"]);
        let rows = collect(&save).expect("iptables-save in the namespace");
        let rule = rows
            .iter()
            .find(|r| r.chain == "INPUT" && r.target.as_deref() == Some("ACCEPT"))
            .expect("our rule");
        assert_eq!(rule.filter_name, "filter");
        assert_eq!(rule.src_ip.as_deref(), Some("198.51.100.0"));
        assert_eq!(rule.src_mask.as_deref(), Some("255.255.255.0"));
        assert_eq!(rule.dst_port.as_deref(), Some("2222:2222"));
        assert_eq!(rule.protocol.as_deref(), Some("6"));
        assert_eq!((rule.packets, rule.bytes), (0, 0));
        assert!(
            rows.iter()
                .any(|r| r.chain == "INPUT" && r.target.is_none())
        );
    }
}
