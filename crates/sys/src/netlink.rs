//! The kernel's routing netlink interface (`NETLINK_ROUTE`), used synchronously: one
//! request, one dump, no runtime.
//!
//! [`links`], [`addresses`], [`routes`] and [`neighbours`] each open a socket, send one
//! `RTM_GET*` dump request and decode the answer into plain structs, so tables never see
//! netlink types. A message the decoder does not understand is skipped and logged; the
//! rest of the dump still counts.
//!
//! The module also holds the few per-interface facts the kernel only hands out through
//! `ioctl`s on an ordinary socket (the driver's bus address).

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteMetric};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

pub const AF_UNSPEC: u8 = libc::AF_UNSPEC as u8;
pub const AF_INET: u8 = libc::AF_INET as u8;
pub const AF_INET6: u8 = libc::AF_INET6 as u8;

/// Neighbour states (`NUD_*`).
pub const NUD_INCOMPLETE: u16 = 0x01;
pub const NUD_REACHABLE: u16 = 0x02;
pub const NUD_NOARP: u16 = 0x40;
pub const NUD_PERMANENT: u16 = 0x80;

/// Route types (`RTN_*`).
pub const RTN_UNICAST: u8 = 1;
pub const RTN_LOCAL: u8 = 2;
pub const RTN_BROADCAST: u8 = 3;
pub const RTN_ANYCAST: u8 = 4;

/// Interface counters (the kernel's 64-bit `rtnl_link_stats64`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    pub collisions: u64,
}

/// One network interface (`RTM_NEWLINK`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Hardware type (`ARPHRD_*`: 1 Ethernet, 772 loopback, ...).
    pub hw_type: u16,
    /// `IFF_*` flags as netlink reports them.
    pub flags: u32,
    pub mtu: Option<u32>,
    /// Hardware address bytes; empty when the interface has none.
    pub address: Vec<u8>,
    pub stats: Option<LinkStats>,
}

/// One interface address (`RTM_NEWADDR`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    pub family: u8,
    pub prefix_len: u8,
    pub scope: u8,
    /// `IFA_ADDRESS`: the peer on point-to-point links, else the same as `local`.
    pub address: Option<IpAddr>,
    /// `IFA_LOCAL`: the interface's own address (IPv4).
    pub local: Option<IpAddr>,
    pub broadcast: Option<IpAddr>,
    /// `IFA_LABEL` (IPv4 only): `eth0` or an alias such as `eth0:1`.
    pub label: Option<String>,
}

/// One route (`RTM_NEWROUTE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    pub family: u8,
    pub dst_len: u8,
    pub table: u32,
    /// `RTN_*`.
    pub kind: u8,
    pub protocol: u8,
    pub scope: u8,
    /// `RTM_F_*` / `RTNH_F_*` flags of the message header.
    pub flags: u32,
    pub destination: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    pub pref_source: Option<IpAddr>,
    pub oif: Option<u32>,
    pub priority: Option<u32>,
    pub mtu: Option<u32>,
    pub hop_limit: Option<u32>,
}

/// One neighbour cache entry (`RTM_NEWNEIGH`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Neighbour {
    pub family: u8,
    pub index: u32,
    /// `NUD_*` bits.
    pub state: u16,
    pub flags: u8,
    pub destination: Option<IpAddr>,
    /// Link-layer address; `None` while unresolved.
    pub lladdr: Option<Vec<u8>>,
}

/// Sends one dump request and hands every decoded answer to `f`.
fn dump(request: RouteNetlinkMessage, mut f: impl FnMut(RouteNetlinkMessage)) -> io::Result<()> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = 1;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(request));
    packet.finalize();
    let mut out = vec![0u8; packet.buffer_len()];
    packet.serialize(&mut out);
    socket.send(&out, 0)?;

    // The kernel sizes each dump part to the reader's buffer, up to 32 KiB.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        buf.clear();
        let size = socket.recv(&mut buf, 0)?;
        let mut offset = 0;
        while offset + 16 <= size {
            let bytes = &buf[offset..size];
            let len = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            if len < 16 || len > bytes.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "netlink: truncated message",
                ));
            }
            match NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..len]) {
                Ok(msg) => match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                    NetlinkPayload::InnerMessage(inner) => f(inner),
                    _ => {}
                },
                Err(e) => log::info!("netlink: skipping a message that does not decode: {e}"),
            }
            // Messages are 4-byte aligned.
            offset += (len + 3) & !3;
        }
    }
}

fn ip_of_route(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(a) => Some(IpAddr::V4(*a)),
        RouteAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    }
}

/// Every interface with its counters.
pub fn links() -> io::Result<Vec<Link>> {
    let mut out = Vec::new();
    dump(
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        |msg| {
            let RouteNetlinkMessage::NewLink(m) = msg else {
                return;
            };
            let mut link = Link {
                index: m.header.index,
                hw_type: m.header.link_layer_type.into(),
                flags: m.header.flags.bits(),
                ..Link::default()
            };
            let mut stats32 = None;
            for attr in m.attributes {
                match attr {
                    LinkAttribute::IfName(name) => link.name = name,
                    LinkAttribute::Mtu(mtu) => link.mtu = Some(mtu),
                    LinkAttribute::Address(a) => link.address = a,
                    LinkAttribute::Stats64(s) => {
                        link.stats = Some(LinkStats {
                            rx_packets: s.rx_packets,
                            tx_packets: s.tx_packets,
                            rx_bytes: s.rx_bytes,
                            tx_bytes: s.tx_bytes,
                            rx_errors: s.rx_errors,
                            tx_errors: s.tx_errors,
                            rx_dropped: s.rx_dropped,
                            tx_dropped: s.tx_dropped,
                            collisions: s.collisions,
                        })
                    }
                    LinkAttribute::Stats(s) => {
                        stats32 = Some(LinkStats {
                            rx_packets: s.rx_packets.into(),
                            tx_packets: s.tx_packets.into(),
                            rx_bytes: s.rx_bytes.into(),
                            tx_bytes: s.tx_bytes.into(),
                            rx_errors: s.rx_errors.into(),
                            tx_errors: s.tx_errors.into(),
                            rx_dropped: s.rx_dropped.into(),
                            tx_dropped: s.tx_dropped.into(),
                            collisions: s.collisions.into(),
                        })
                    }
                    _ => {}
                }
            }
            if link.stats.is_none() {
                link.stats = stats32;
            }
            out.push(link);
        },
    )?;
    Ok(out)
}

/// Interface index → name, from one link dump.
pub fn link_names() -> io::Result<std::collections::HashMap<u32, String>> {
    Ok(links()?.into_iter().map(|l| (l.index, l.name)).collect())
}

/// Every address of `family` (`AF_UNSPEC` for all).
pub fn addresses(family: u8) -> io::Result<Vec<Address>> {
    let mut req = AddressMessage::default();
    req.header.family = AddressFamily::from(family);
    let mut out = Vec::new();
    dump(RouteNetlinkMessage::GetAddress(req), |msg| {
        let RouteNetlinkMessage::NewAddress(m) = msg else {
            return;
        };
        let mut a = Address {
            index: m.header.index,
            family: m.header.family.into(),
            prefix_len: m.header.prefix_len,
            scope: m.header.scope.into(),
            ..Address::default()
        };
        for attr in m.attributes {
            match attr {
                AddressAttribute::Address(ip) => a.address = Some(ip),
                AddressAttribute::Local(ip) => a.local = Some(ip),
                AddressAttribute::Broadcast(ip) => a.broadcast = Some(IpAddr::V4(ip)),
                AddressAttribute::Label(l) => a.label = Some(l),
                _ => {}
            }
        }
        out.push(a);
    })?;
    Ok(out)
}

/// Every route of `family` (`AF_UNSPEC` for all) in every routing table.
pub fn routes(family: u8) -> io::Result<Vec<Route>> {
    let mut req = RouteMessage::default();
    req.header.address_family = AddressFamily::from(family);
    let mut out = Vec::new();
    dump(RouteNetlinkMessage::GetRoute(req), |msg| {
        let RouteNetlinkMessage::NewRoute(m) = msg else {
            return;
        };
        let mut r = Route {
            family: m.header.address_family.into(),
            dst_len: m.header.destination_prefix_length,
            table: m.header.table.into(),
            kind: m.header.kind.into(),
            protocol: m.header.protocol.into(),
            scope: m.header.scope.into(),
            flags: m.header.flags.bits(),
            ..Route::default()
        };
        for attr in m.attributes {
            match attr {
                RouteAttribute::Destination(a) => r.destination = ip_of_route(&a),
                RouteAttribute::Gateway(a) => r.gateway = ip_of_route(&a),
                RouteAttribute::PrefSource(a) => r.pref_source = ip_of_route(&a),
                RouteAttribute::Oif(i) => r.oif = Some(i),
                RouteAttribute::Priority(p) => r.priority = Some(p),
                RouteAttribute::Table(t) => r.table = t,
                RouteAttribute::Metrics(metrics) => {
                    for metric in metrics {
                        match metric {
                            RouteMetric::Mtu(v) => r.mtu = Some(v),
                            RouteMetric::Hoplimit(v) => r.hop_limit = Some(v),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        out.push(r);
    })?;
    Ok(out)
}

/// Every neighbour cache entry of `family` (`AF_INET` is the ARP cache).
pub fn neighbours(family: u8) -> io::Result<Vec<Neighbour>> {
    let mut req = NeighbourMessage::default();
    req.header.family = AddressFamily::from(family);
    let mut out = Vec::new();
    dump(RouteNetlinkMessage::GetNeighbour(req), |msg| {
        let RouteNetlinkMessage::NewNeighbour(m) = msg else {
            return;
        };
        let mut n = Neighbour {
            family: m.header.family.into(),
            index: m.header.ifindex,
            state: m.header.state.into(),
            flags: m.header.flags.bits(),
            ..Neighbour::default()
        };
        for attr in m.attributes {
            match attr {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => {
                    n.destination = Some(IpAddr::V4(a))
                }
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => {
                    n.destination = Some(IpAddr::V6(a))
                }
                NeighbourAttribute::LinkLayerAddress(l) => n.lladdr = Some(l),
                _ => {}
            }
        }
        out.push(n);
    })?;
    Ok(out)
}

/// Colon-separated lowercase hex, as `ip` and `/proc/net/arp` print hardware addresses.
pub fn mac_text(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// The driver's bus address of interface `name` (`ETHTOOL_GDRVINFO`'s `bus_info`, e.g. a
/// PCI slot), or `None` when the driver does not answer.
pub fn ethtool_bus_info(name: &str) -> Option<String> {
    const SIOCETHTOOL: libc::c_ulong = 0x8946;
    const ETHTOOL_GDRVINFO: u32 = 0x3;
    #[repr(C)]
    struct DrvInfo {
        cmd: u32,
        driver: [u8; 32],
        version: [u8; 32],
        fw_version: [u8; 32],
        bus_info: [u8; 32],
        erom_version: [u8; 32],
        reserved2: [u8; 12],
        n_priv_flags: u32,
        n_stats: u32,
        testinfo_len: u32,
        eedump_len: u32,
        regdump_len: u32,
    }
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: all-zero bytes are valid for both plain C structs.
    let mut info: DrvInfo = unsafe { std::mem::zeroed() };
    info.cmd = ETHTOOL_GDRVINFO;
    // SAFETY: as above.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = (&mut info as *mut DrvInfo).cast();
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: ifr names the interface and points at `info`, which outlives the call.
    let rc = unsafe { libc::ioctl(fd, SIOCETHTOOL as _, &mut ifr) };
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return None;
    }
    let end = info.bus_info.iter().position(|b| *b == 0).unwrap_or(32);
    Some(String::from_utf8_lossy(&info.bus_info[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_with_its_addresses() {
        let links = links().unwrap();
        let lo = links.iter().find(|l| l.name == "lo").expect("lo");
        assert_eq!(lo.hw_type, 772);
        assert_eq!(
            lo.flags & libc::IFF_LOOPBACK as u32,
            libc::IFF_LOOPBACK as u32
        );
        assert!(lo.stats.is_some());
        let addrs = addresses(AF_INET).unwrap();
        assert!(addrs.iter().all(|a| a.family == AF_INET));
        if lo.flags & libc::IFF_UP as u32 != 0 {
            assert!(addrs.iter().any(|a| a.index == lo.index
                && a.local == Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))));
        }
    }

    #[test]
    fn route_and_neighbour_dumps_decode() {
        let v4 = routes(AF_INET).unwrap();
        assert!(v4.iter().all(|r| r.family == AF_INET));
        // The local table always holds the loopback routes.
        assert!(v4.iter().any(|r| r.kind == RTN_LOCAL));
        let _ = neighbours(AF_INET).unwrap();
    }

    #[test]
    fn mac_text_formats_bytes() {
        assert_eq!(mac_text(&[0x02, 0xfc, 0, 0, 0, 5]), "02:fc:00:00:00:05");
        assert_eq!(mac_text(&[]), "");
    }
}
