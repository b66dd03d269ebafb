//! community_id_v1 / community_id_v1_strict: Corelight's Community ID flow hash,
//! version 1 (https://github.com/corelight/community-id-spec).
//!
//! `1:` + base64(SHA1(seed(2, BE) . saddr . daddr . proto(1) . 0(1) . sport(2, BE)
//! . dport(2, BE))), endpoints ordered so both directions of a flow hash alike.

use super::{Out, add, c_text, encoding, fail};
use rusqlite::Connection;
use rusqlite::functions::Context;
use rusqlite::types::ValueRef;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP6: u8 = 58;
const SCTP: u8 = 132;

pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    for n_arg in [5, 6] {
        add(conn, "community_id_v1", n_arg, lenient)?;
        add(conn, "community_id_v1_strict", n_arg, strict)?;
    }
    Ok(())
}

/// Invalid input gives NULL and a warning.
fn lenient(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    Ok(match community_id(ctx) {
        Ok(id) => Out::text(id),
        Err(msg) => {
            log::warn!("{msg}");
            Out::Null
        }
    })
}

/// Invalid input is an SQL error.
fn strict(ctx: &Context<'_>) -> rusqlite::Result<Out> {
    match community_id(ctx) {
        Ok(id) => Ok(Out::text(id)),
        Err(msg) => fail(msg),
    }
}

fn integer(v: ValueRef<'_>) -> Option<i64> {
    match v {
        ValueRef::Integer(i) => Some(i),
        _ => None,
    }
}

fn address(v: ValueRef<'_>) -> Option<IpAddr> {
    let text = c_text(v);
    let text = std::str::from_utf8(&text).ok()?;
    super::network::parse_ip(text)
}

/// Validates in osquery's order and with its messages. Ports are only required
/// for the protocols the spec hashes them for (TCP, UDP, SCTP, ICMP, ICMPv6);
/// for any other protocol they are ignored and may be NULL.
fn community_id(ctx: &Context<'_>) -> Result<String, &'static str> {
    let mut seed: u16 = 0;
    if ctx.len() == 6 {
        let s = integer(ctx.get_raw(5)).ok_or("Community ID seed must be an integer")?;
        let s = i16::try_from(s).map_err(|_| "Community ID seed must fit in 2 bytes")?;
        seed = s as u16;
    }
    let (saddr, daddr) = (ctx.get_raw(0), ctx.get_raw(1));
    if !matches!(saddr, ValueRef::Text(_)) || !matches!(daddr, ValueRef::Text(_)) {
        return Err("Community ID IPs must be strings");
    }
    let saddr = address(saddr).ok_or("Community ID saddr cannot be parsed as IP")?;
    let daddr = address(daddr).ok_or("Community ID daddr cannot be parsed as IP")?;

    let proto = integer(ctx.get_raw(4)).and_then(|p| u8::try_from(p).ok());
    let has_ports = proto.is_none_or(|p| matches!(p, ICMP | TCP | UDP | ICMP6 | SCTP));
    let mut ports = None;
    if has_ports {
        let sport = integer(ctx.get_raw(2));
        let dport = integer(ctx.get_raw(3));
        let (Some(sport), Some(dport)) = (sport, dport) else {
            return Err("Community ID ports must be integers");
        };
        let (Ok(sport), Ok(dport)) = (u16::try_from(sport), u16::try_from(dport)) else {
            return Err("Community ID ports must fit in 2 bytes");
        };
        ports = Some((sport, dport));
    }
    let proto = match integer(ctx.get_raw(4)) {
        None => return Err("Community ID protocol must be an integer"),
        Some(p) => u8::try_from(p).map_err(|_| "Community ID protocol must fit in 1 byte")?,
    };
    Ok(hash(seed, saddr, daddr, proto, ports))
}

/// ICMP type/code → port equivalents: a type with a request/reply counterpart
/// becomes (type, counterpart) and is two-way; any other is (type, code), one-way.
fn icmp_ports(proto: u8, icmp_type: u16, code: u16) -> (u16, u16, bool) {
    let counterpart = match (proto, icmp_type) {
        (ICMP, 8) => Some(0),
        (ICMP, 0) => Some(8),
        (ICMP, 13) => Some(14),
        (ICMP, 14) => Some(13),
        (ICMP, 15) => Some(16),
        (ICMP, 16) => Some(15),
        (ICMP, 10) => Some(9),
        (ICMP, 17) => Some(18),
        (ICMP, 18) => Some(17),
        (ICMP6, 128) => Some(129),
        (ICMP6, 129) => Some(128),
        (ICMP6, 133) => Some(134),
        (ICMP6, 134) => Some(133),
        (ICMP6, 135) => Some(136),
        (ICMP6, 136) => Some(135),
        (ICMP6, 130) => Some(131),
        (ICMP6, 131) => Some(130),
        (ICMP6, 139) => Some(140),
        (ICMP6, 140) => Some(139),
        (ICMP6, 144) => Some(145),
        (ICMP6, 145) => Some(144),
        _ => None,
    };
    match counterpart {
        Some(other) => (icmp_type, other, false),
        None => (icmp_type, code, true),
    }
}

/// IPv4 sorts before IPv6, then by address bytes.
fn addr_key(a: &IpAddr) -> (bool, Vec<u8>) {
    match a {
        IpAddr::V4(v4) => (false, v4.octets().to_vec()),
        IpAddr::V6(v6) => (true, v6.octets().to_vec()),
    }
}

pub(crate) fn hash(
    seed: u16,
    saddr: IpAddr,
    daddr: IpAddr,
    proto: u8,
    ports: Option<(u16, u16)>,
) -> String {
    let (mut src, mut dst) = (addr_key(&saddr), addr_key(&daddr));
    let (mut sport, mut dport, one_way) = match ports {
        Some((s, d)) if proto == ICMP || proto == ICMP6 => icmp_ports(proto, s, d),
        Some((s, d)) => (s, d, false),
        None => (0, 0, false),
    };
    let ordered = src < dst || (src == dst && sport < dport);
    if !one_way && !ordered {
        std::mem::swap(&mut src, &mut dst);
        std::mem::swap(&mut sport, &mut dport);
    }
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    h.update(&src.1);
    h.update(&dst.1);
    h.update([proto, 0]);
    if ports.is_some() {
        h.update(sport.to_be_bytes());
        h.update(dport.to_be_bytes());
    }
    format!("1:{}", encoding::encode(&h.finalize()))
}
