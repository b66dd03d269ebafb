//! Tables of the `network` domain.

pub mod arp_cache;
pub mod dns_resolvers;
pub mod etc_hosts;
pub mod etc_protocols;
pub mod etc_services;
pub mod interface_addresses;
pub mod interface_details;
pub mod interface_ipv6;
pub mod iptables;
pub mod listening_ports;
pub mod lldp_neighbors;
pub mod process_open_sockets;
pub mod routes;

use oxquery_table::TableDef;

/// The tables of this domain.
pub fn tables() -> Vec<&'static TableDef> {
    vec![
        &process_open_sockets::TABLE,
        &listening_ports::TABLE,
        &interface_addresses::TABLE,
        &interface_details::TABLE,
        &interface_ipv6::TABLE,
        &routes::TABLE,
        &arp_cache::TABLE,
        &dns_resolvers::TABLE,
        &etc_hosts::TABLE,
        &etc_protocols::TABLE,
        &etc_services::TABLE,
        &iptables::TABLE,
        &lldp_neighbors::TABLE,
    ]
}
