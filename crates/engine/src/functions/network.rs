//! in_cidr_block(cidr, ip).
//!
//! osquery asks boost.asio whether `ip` is among `network.hosts()`, which gives
//! these (deliberately reproduced) results:
//! - IPv4 /0../30: the network and broadcast addresses are not hosts;
//!   /31: no address at all; /32: only the address itself (never 255.255.255.255).
//! - IPv6: every address of the prefix is a host, except that the range end wraps
//!   for a prefix reaching ffff:..:ffff (e.g. `::/0`), which then holds nothing.
//!
//! Host bits set in the CIDR's address are ignored (`10.1.2.3/8` is `10.0.0.0/8`).

use super::{Out, add, c_text, fail};
use rusqlite::Connection;
use rusqlite::functions::Context;
use rusqlite::types::ValueRef;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    add(conn, "in_cidr_block", 2, in_cidr_block)
}

/// An IPv4 dotted quad or an IPv6 address (an IPv6 `%scope` suffix is accepted
/// and ignored).
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(v4) = s.parse::<Ipv4Addr>() {
        return Some(IpAddr::V4(v4));
    }
    parse_v6(s).map(IpAddr::V6)
}

fn parse_v6(s: &str) -> Option<Ipv6Addr> {
    let addr = match s.split_once('%') {
        Some((addr, scope)) if !scope.is_empty() => addr,
        Some(_) => return None,
        None => s,
    };
    addr.parse().ok()
}

/// `addr/len` with a decimal length of at most `max` (boost's make_network_*).
fn split_cidr(cidr: &str, max: u32) -> Option<(&str, u32)> {
    let (addr, len) = cidr.split_once('/')?;
    if len.is_empty() || !len.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let len = len.trim_start_matches('0');
    let len: u32 = if len.is_empty() { 0 } else { len.parse().ok()? };
    (len <= max).then_some((addr, len))
}

pub(crate) fn v4_in_hosts(net: Ipv4Addr, prefix: u32, ip: Ipv4Addr) -> bool {
    let (net, ip) = (u32::from(net), u32::from(ip));
    let (begin, end) = if prefix == 32 {
        (net, net.wrapping_add(1))
    } else {
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        ((net & mask).wrapping_add(1), net | !mask)
    };
    begin <= ip && ip < end
}

pub(crate) fn v6_in_hosts(net: Ipv6Addr, prefix: u32, ip: Ipv6Addr) -> bool {
    let net = u128::from(net);
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    };
    let begin = net & mask;
    let end = (net | !mask).wrapping_add(1);
    let ip = u128::from(ip);
    begin <= ip && ip < end
}

fn in_cidr_block(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    if !matches!(ctx.get_raw(0), ValueRef::Text(_)) {
        return fail("CIDR must be a string");
    }
    if !matches!(ctx.get_raw(1), ValueRef::Text(_)) {
        return fail("IP address must be a string");
    }
    let cidr = c_text(ctx.get_raw(0));
    let ip = c_text(ctx.get_raw(1));
    let cidr = std::str::from_utf8(&cidr).unwrap_or("");
    let Some(ip) = std::str::from_utf8(&ip).ok().and_then(parse_ip) else {
        return fail("IP address cannot be parsed");
    };
    let inside = match ip {
        IpAddr::V4(ip) => {
            let net = split_cidr(cidr, 32)
                .and_then(|(addr, len)| Some((addr.parse::<Ipv4Addr>().ok()?, len)));
            let Some((net, len)) = net else {
                return fail("CIDR for IP address v4 cannot be parsed");
            };
            v4_in_hosts(net, len, ip)
        }
        IpAddr::V6(ip) => {
            let net = split_cidr(cidr, 128).and_then(|(addr, len)| Some((parse_v6(addr)?, len)));
            let Some((net, len)) = net else {
                return fail("CIDR for IP address v6 cannot be parsed");
            };
            v6_in_hosts(net, len, ip)
        }
    };
    Ok(Out::Int(i64::from(inside)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_hosts_edges() {
        assert!(!v4_in_hosts(v4("10.0.0.0"), 31, v4("10.0.0.0")));
        assert!(!v4_in_hosts(v4("10.0.0.0"), 31, v4("10.0.0.1")));
        assert!(v4_in_hosts(v4("10.0.0.7"), 32, v4("10.0.0.7")));
        assert!(!v4_in_hosts(
            v4("255.255.255.255"),
            32,
            v4("255.255.255.255")
        ));
        assert!(v4_in_hosts(v4("0.0.0.0"), 0, v4("8.8.8.8")));
        assert!(!v4_in_hosts(v4("0.0.0.0"), 0, v4("0.0.0.0")));
        assert!(!v4_in_hosts(v4("0.0.0.0"), 0, v4("255.255.255.255")));
        assert!(v4_in_hosts(v4("10.0.0.0"), 30, v4("10.0.0.2")));
        assert!(!v4_in_hosts(v4("10.0.0.0"), 30, v4("10.0.0.3")));
    }

    #[test]
    fn cidr_syntax() {
        assert_eq!(split_cidr("1.2.3.4/024", 32), Some(("1.2.3.4", 24)));
        assert_eq!(split_cidr("1.2.3.4/33", 32), None);
        assert_eq!(split_cidr("1.2.3.4/", 32), None);
        assert_eq!(split_cidr("1.2.3.4/+8", 32), None);
        assert_eq!(split_cidr("1.2.3.4", 32), None);
    }
}
