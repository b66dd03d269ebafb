//! `lldp_neighbors` (osquery 3.3.2): LLDP neighbours the lldpd daemon has heard.
//!
//! osquery read them through liblldpctl, which talks to lldpd over its control socket
//! (`/var/run/lldpd.socket`). That socket carries lldpd's private serialisation of its
//! own C structures (its `marshal` code): it is tied to the lldpd version, and neither
//! lldpd nor liblldpctl documents it as a protocol, so there is no specification to
//! implement or to test a parser against. What is missing to fill this table is
//! therefore a stable interface: linking liblldpctl (a C library with no Rust binding)
//! or an lldpd release that documents its wire format.
//!
//! The table exists with its exact schema. When lldpd is not running (no socket) it is
//! empty and logs so; when the socket exists it is also empty and logs that the lldpd
//! protocol is not spoken. It never invents rows.

use std::os::unix::fs::FileTypeExt;

use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "lldp_neighbors",
    description: "Link-layer neighbours (LLDP) known to the lldpd daemon: chassis, port, capabilities, power and VLAN details.",
    columns: {
        interface: Text [] "Local interface the neighbour was heard on",
        rid: Integer [] "Neighbour index lldpd assigns",
        chassis_id_type: Text [] "Kind of chassis identifier (mac, ifname, ip, local, ...)",
        chassis_id: Text [] "Chassis identifier of the neighbour",
        chassis_sysname: Text [] "System name the neighbour announces",
        chassis_sys_description: Integer [] "System description the neighbour announces (declared INTEGER, as in osquery 3.3.2)",
        chassis_bridge_capability_available: Integer [] "Neighbour can act as bridge (1/0)",
        chassis_bridge_capability_enabled: Integer [] "Neighbour acts as bridge (1/0)",
        chassis_router_capability_available: Integer [] "Neighbour can act as router (1/0)",
        chassis_router_capability_enabled: Integer [] "Neighbour acts as router (1/0)",
        chassis_repeater_capability_available: Integer [] "Neighbour can act as repeater (1/0)",
        chassis_repeater_capability_enabled: Integer [] "Neighbour acts as repeater (1/0)",
        chassis_wlan_capability_available: Integer [] "Neighbour can act as wlan (1/0)",
        chassis_wlan_capability_enabled: Integer [] "Neighbour acts as wlan (1/0)",
        chassis_tel_capability_available: Integer [] "Neighbour can act as tel (1/0)",
        chassis_tel_capability_enabled: Integer [] "Neighbour acts as tel (1/0)",
        chassis_docsis_capability_available: Integer [] "Neighbour can act as docsis (1/0)",
        chassis_docsis_capability_enabled: Integer [] "Neighbour acts as docsis (1/0)",
        chassis_station_capability_available: Integer [] "Neighbour can act as station (1/0)",
        chassis_station_capability_enabled: Integer [] "Neighbour acts as station (1/0)",
        chassis_other_capability_available: Integer [] "Neighbour can act as other (1/0)",
        chassis_other_capability_enabled: Integer [] "Neighbour acts as other (1/0)",
        chassis_mgmt_ips: Text [] "Management addresses, comma separated",
        port_id_type: Text [] "Kind of port identifier",
        port_id: Text [] "Port identifier",
        port_description: Text [] "Port description",
        port_ttl: BigInt [] "Seconds the announcement stays valid",
        port_mfs: BigInt [] "Maximum frame size of the port",
        port_aggregation_id: Text [] "Link aggregation identifier",
        port_autoneg_supported: Integer [] "LLDP port autoneg supported",
        port_autoneg_enabled: Integer [] "LLDP port autoneg enabled",
        port_mau_type: Text [] "Medium attachment unit type",
        port_autoneg_10baset_hd_enabled: Integer [] "LLDP port autoneg 10baset hd enabled",
        port_autoneg_10baset_fd_enabled: Integer [] "LLDP port autoneg 10baset fd enabled",
        port_autoneg_100basetx_hd_enabled: Integer [] "LLDP port autoneg 100basetx hd enabled",
        port_autoneg_100basetx_fd_enabled: Integer [] "LLDP port autoneg 100basetx fd enabled",
        port_autoneg_100baset2_hd_enabled: Integer [] "LLDP port autoneg 100baset2 hd enabled",
        port_autoneg_100baset2_fd_enabled: Integer [] "LLDP port autoneg 100baset2 fd enabled",
        port_autoneg_100baset4_hd_enabled: Integer [] "LLDP port autoneg 100baset4 hd enabled",
        port_autoneg_100baset4_fd_enabled: Integer [] "LLDP port autoneg 100baset4 fd enabled",
        port_autoneg_1000basex_hd_enabled: Integer [] "LLDP port autoneg 1000basex hd enabled",
        port_autoneg_1000basex_fd_enabled: Integer [] "LLDP port autoneg 1000basex fd enabled",
        port_autoneg_1000baset_hd_enabled: Integer [] "LLDP port autoneg 1000baset hd enabled",
        port_autoneg_1000baset_fd_enabled: Integer [] "LLDP port autoneg 1000baset fd enabled",
        power_device_type: Text [] "Power-over-Ethernet device type",
        power_mdi_supported: Integer [] "LLDP power mdi supported",
        power_mdi_enabled: Integer [] "LLDP power mdi enabled",
        power_paircontrol_enabled: Integer [] "LLDP power paircontrol enabled",
        power_pairs: Text [] "PoE power pairs",
        power_class: Text [] "PoE power class",
        power_8023at_enabled: Integer [] "LLDP power 8023at enabled",
        power_8023at_power_type: Text [] "LLDP power 8023at power type",
        power_8023at_power_source: Text [] "LLDP power 8023at power source",
        power_8023at_power_priority: Text [] "LLDP power 8023at power priority",
        power_8023at_power_allocated: Text [] "LLDP power 8023at power allocated",
        power_8023at_power_requested: Text [] "LLDP power 8023at power requested",
        med_device_type: Text [] "LLDP-MED device class",
        med_capability_capabilities: Integer [] "LLDP med capability capabilities",
        med_capability_policy: Integer [] "LLDP med capability policy",
        med_capability_location: Integer [] "LLDP med capability location",
        med_capability_mdi_pse: Integer [] "LLDP med capability mdi pse",
        med_capability_mdi_pd: Integer [] "LLDP med capability mdi pd",
        med_capability_inventory: Integer [] "LLDP med capability inventory",
        med_policies: Text [] "LLDP-MED network policies",
        vlans: Text [] "VLANs, comma separated",
        pvid: Text [] "Port VLAN identifier",
        ppvids_supported: Text [] "Protocol VLAN ids supported",
        ppvids_enabled: Text [] "Protocol VLAN ids enabled",
        pids: Text [] "Protocol identities",
    },
    examples: [
        "select interface, chassis_sysname, port_id from lldp_neighbors",
    ],
}

/// Where lldpd listens, newest location first.
const SOCKETS: &[&str] = &["/run/lldpd.socket", "/var/run/lldpd.socket"];

/// The control socket lldpd has open, if any.
fn lldpd_socket() -> Option<&'static str> {
    SOCKETS
        .iter()
        .copied()
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket()))
}

fn generate(_ctx: &QueryContext, _rows: &mut Rows) -> TableResult {
    match lldpd_socket() {
        None => log::info!(
            "lldp_neighbors: lldpd is not running (no control socket at {}); no neighbours to report",
            SOCKETS.join(" or ")
        ),
        Some(path) => log::info!(
            "lldp_neighbors: lldpd listens on {path}, but its control protocol is lldpd's undocumented, version-bound struct serialisation, which oxquery does not speak; no rows"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::Host;

    #[test]
    fn schema_has_the_3_3_2_columns() {
        assert_eq!(SPEC.columns.len(), 69);
        assert_eq!(SPEC.columns[0].name, "interface");
        assert_eq!(SPEC.columns[68].name, "pids");
    }

    #[test]
    fn never_invents_rows() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        assert!(rows.is_empty());
    }
}
