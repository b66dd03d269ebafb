//! `lldp_neighbors` (osquery 3.3.2): LLDP neighbours the lldpd daemon has heard.
//!
//! osquery linked liblldpctl, whose socket protocol is lldpd's private serialisation of
//! its C structures. oxquery asks lldpd's own client instead: `lldpcli -u <socket> -f json0
//! show neighbors details` prints the same liblldpctl atoms osquery read, in lldpd's
//! stable JSON format (`json0`: every element a list, data in `{"value": ...}`, flags as
//! booleans). `lldpcli` is found by absolute path and killed after [`LLDPCLI_TIMEOUT`].
//!
//! Without lldpcli, without an lldpd control socket, or when lldpcli fails (lldpd not
//! running, no permission on the socket), the table is empty and says why in the log.
//!
//! Column meanings follow osquery's generator: capability columns are set only for the
//! capabilities the neighbour declares available; the per-speed autoneg columns only when
//! autonegotiation is supported and enabled; power columns only when the neighbour sends
//! the dot3 power TLV; `med_device_type` and `med_policies` only for LLDP-MED neighbours,
//! while the `med_capability_*` flags are always set (0 without LLDP-MED); `vlans`,
//! `ppvids_*`, `pids` and `chassis_mgmt_ips` are comma lists, empty when there are none,
//! and `pvid` is `0` when the neighbour announces none. Two deliberate differences:
//! `port_ttl` is the TTL the neighbour announced (osquery 3.3.2 put lldpd's last-change
//! timestamp there), and `chassis_sys_description`, declared INTEGER by osquery, carries
//! the description text rather than a NULL.

use std::path::Path;
use std::time::Duration;

use oxquery_sys::exec::{self, Helper};
use oxquery_table::{QueryContext, RowMut, Rows, TableResult, table};
use serde_json::Value as Json;

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

/// Where lldpd listens, newest location first (`/run/lldpd.socket` is its default).
const SOCKETS: &[&str] = &["/run/lldpd.socket", "/var/run/lldpd.socket"];

/// How long lldpcli may take before it is killed.
const LLDPCLI_TIMEOUT: Duration = Duration::from_secs(5);

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let Some(socket) = SOCKETS.iter().find(|p| Path::new(p).exists()) else {
        log::info!(
            "lldp_neighbors: lldpd is not running (no control socket at {}); no neighbours to report",
            SOCKETS.join(" or ")
        );
        return Ok(());
    };
    generate_from(Path::new(socket), ctx, rows)
}

/// The table's rows from the lldpd listening on `socket`.
fn generate_from(socket: &Path, ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let json = query_lldpd(socket, &|| ctx.is_stopped());
    ctx.check()?;
    if let Some(json) = json {
        fill(&json, rows);
    }
    Ok(())
}

/// `lldpcli -f json0 show neighbors details` against `socket`, parsed; `None` (logged)
/// when lldpcli is missing, fails, overruns or prints something that is not JSON.
fn query_lldpd(socket: &Path, stop: &dyn Fn() -> bool) -> Option<Json> {
    let lldpcli = Helper::new("lldpcli")
        .arg("-u")
        .arg(socket)
        .args(["-f", "json0", "show", "neighbors", "details"])
        .timeout(LLDPCLI_TIMEOUT)
        .stop_when(stop);
    match lldpcli.run().and_then(exec::Output::into_stdout) {
        Ok(stdout) => parse(&stdout),
        Err(exec::Error::Stopped { .. }) => None,
        Err(e) => {
            log::info!(
                "lldp_neighbors: cannot query lldpd at {}: {e}",
                socket.display()
            );
            None
        }
    }
}

/// lldpcli's JSON; blank output (some versions print nothing without neighbours) is an
/// empty document.
fn parse(stdout: &[u8]) -> Option<Json> {
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Some(Json::Null);
    }
    match serde_json::from_slice(stdout) {
        Ok(json) => Some(json),
        Err(e) => {
            log::warn!("lldp_neighbors: lldpcli printed invalid JSON: {e}");
            None
        }
    }
}

/// The elements under `key`: json0 makes every element a list; a lone object (the plain
/// `json` format) counts as a list of one.
fn list<'a>(v: &'a Json, key: &str) -> &'a [Json] {
    match v.get(key) {
        Some(Json::Array(items)) => items,
        Some(one @ Json::Object(_)) => std::slice::from_ref(one),
        _ => &[],
    }
}

fn first<'a>(v: &'a Json, key: &str) -> Option<&'a Json> {
    list(v, key).first()
}

/// A scalar as text (strings as they are, numbers and booleans printed).
fn scalar(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The data of the element `key`: `{"key": [{"value": data}]}` in json0, `{"key": data}`
/// or `{"key": {"value": data}}` otherwise.
fn text(v: &Json, key: &str) -> Option<String> {
    match v.get(key)? {
        Json::Array(items) => items.first().and_then(|i| i.get("value")).and_then(scalar),
        Json::Object(o) => o.get("value").and_then(scalar),
        other => scalar(other),
    }
}

/// Every data of the repeated element `key`, comma separated.
fn texts(v: &Json, key: &str) -> String {
    list(v, key)
        .iter()
        .filter_map(|i| i.get("value").and_then(scalar))
        .collect::<Vec<_>>()
        .join(",")
}

/// A yes/no attribute: json0 booleans, or the words lldpcli prints in other formats.
fn flag(v: &Json, key: &str) -> Option<bool> {
    match v.get(key)? {
        Json::Bool(b) => Some(*b),
        Json::String(s) => match s.as_str() {
            "yes" | "on" | "true" => Some(true),
            "no" | "off" | "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn int(s: Option<String>) -> Option<i64> {
    s?.trim().parse().ok()
}

/// The neighbour entries: `lldp[].interface[]`, one per (local interface, neighbour).
fn neighbours(json: &Json) -> impl Iterator<Item = &Json> {
    list(json, "lldp")
        .iter()
        .flat_map(|lldp| list(lldp, "interface"))
}

fn fill(json: &Json, rows: &mut Rows) {
    for entry in neighbours(json) {
        let mut row = rows.row();
        fill_row(entry, &mut row);
    }
}

/// lldpcli's capability names and the table's column pairs (available, enabled).
const CAPABILITIES: &[(&str, Col, Col)] = &[
    (
        "Bridge",
        Col::chassis_bridge_capability_available,
        Col::chassis_bridge_capability_enabled,
    ),
    (
        "Router",
        Col::chassis_router_capability_available,
        Col::chassis_router_capability_enabled,
    ),
    (
        "Repeater",
        Col::chassis_repeater_capability_available,
        Col::chassis_repeater_capability_enabled,
    ),
    (
        "Wlan",
        Col::chassis_wlan_capability_available,
        Col::chassis_wlan_capability_enabled,
    ),
    (
        "Tel",
        Col::chassis_tel_capability_available,
        Col::chassis_tel_capability_enabled,
    ),
    (
        "Docsis",
        Col::chassis_docsis_capability_available,
        Col::chassis_docsis_capability_enabled,
    ),
    (
        "Station",
        Col::chassis_station_capability_available,
        Col::chassis_station_capability_enabled,
    ),
    (
        "Other",
        Col::chassis_other_capability_available,
        Col::chassis_other_capability_enabled,
    ),
];

/// lldpcli's advertised-mode names and the (half duplex, full duplex) columns.
const AUTONEG: &[(&str, Col, Col)] = &[
    (
        "10Base-T",
        Col::port_autoneg_10baset_hd_enabled,
        Col::port_autoneg_10baset_fd_enabled,
    ),
    (
        "100Base-TX",
        Col::port_autoneg_100basetx_hd_enabled,
        Col::port_autoneg_100basetx_fd_enabled,
    ),
    (
        "100Base-T2",
        Col::port_autoneg_100baset2_hd_enabled,
        Col::port_autoneg_100baset2_fd_enabled,
    ),
    (
        "100Base-T4",
        Col::port_autoneg_100baset4_hd_enabled,
        Col::port_autoneg_100baset4_fd_enabled,
    ),
    (
        "1000Base-X",
        Col::port_autoneg_1000basex_hd_enabled,
        Col::port_autoneg_1000basex_fd_enabled,
    ),
    (
        "1000Base-T",
        Col::port_autoneg_1000baset_hd_enabled,
        Col::port_autoneg_1000baset_fd_enabled,
    ),
];

/// lldpcli's LLDP-MED capability names and the table's columns.
const MED_CAPABILITIES: &[(&str, Col)] = &[
    ("Capabilities", Col::med_capability_capabilities),
    ("Policy", Col::med_capability_policy),
    ("Location", Col::med_capability_location),
    ("MDI/PSE", Col::med_capability_mdi_pse),
    ("MDI/PD", Col::med_capability_mdi_pd),
    ("Inventory", Col::med_capability_inventory),
];

fn set_text(row: &mut RowMut<'_>, col: Col, value: Option<String>) {
    if let Some(v) = value {
        row.set(col, v);
    }
}

fn fill_row(entry: &Json, row: &mut RowMut<'_>) {
    set_text(row, Col::interface, text(entry, "name"));
    if let Some(rid) = int(text(entry, "rid")) {
        row.set(Col::rid, rid);
    }
    let null = Json::Null;
    let chassis = first(entry, "chassis").unwrap_or(&null);
    let port = first(entry, "port").unwrap_or(&null);

    // Chassis.
    if let Some(id) = first(chassis, "id") {
        set_text(row, Col::chassis_id_type, id.get("type").and_then(scalar));
        set_text(row, Col::chassis_id, id.get("value").and_then(scalar));
    }
    set_text(row, Col::chassis_sysname, text(chassis, "name"));
    set_text(row, Col::chassis_sys_description, text(chassis, "descr"));
    for cap in list(chassis, "capability") {
        let Some(kind) = cap.get("type").and_then(Json::as_str) else {
            continue;
        };
        if let Some(&(_, available, enabled)) = CAPABILITIES.iter().find(|c| c.0 == kind) {
            row.set(available, 1);
            row.set(enabled, i64::from(flag(cap, "enabled").unwrap_or(false)));
        }
    }
    row.set_with(Col::chassis_mgmt_ips, || texts(chassis, "mgmt-ip"));

    // Port.
    if let Some(id) = first(port, "id") {
        set_text(row, Col::port_id_type, id.get("type").and_then(scalar));
        set_text(row, Col::port_id, id.get("value").and_then(scalar));
    }
    set_text(row, Col::port_description, text(port, "descr"));
    // lldpd 1.0 reports the TTL with the port; older releases with the chassis.
    if let Some(ttl) = int(text(port, "ttl").or_else(|| text(chassis, "ttl"))) {
        row.set(Col::port_ttl, ttl);
    }
    if let Some(mfs) = int(text(port, "mfs")) {
        row.set(Col::port_mfs, mfs);
    }
    set_text(row, Col::port_aggregation_id, text(port, "aggregation"));
    fill_autoneg(port, row);
    if let Some(power) = first(port, "power") {
        fill_power(power, row);
    }

    // VLANs, protocol VLANs and protocol identities (siblings of the port in lldpcli's
    // output).
    fill_vlans(entry, row);
    let (mut supported, mut enabled) = (Vec::new(), Vec::new());
    for ppvid in list(entry, "ppvid") {
        let Some(id) = ppvid.get("value").and_then(scalar) else {
            continue;
        };
        if flag(ppvid, "supported") == Some(true) {
            supported.push(id.clone());
        }
        if flag(ppvid, "enabled") == Some(true) {
            enabled.push(id);
        }
    }
    row.set(Col::ppvids_supported, supported.join(","));
    row.set(Col::ppvids_enabled, enabled.join(","));
    row.set_with(Col::pids, || texts(entry, "pi"));

    // LLDP-MED: beside the port in lldpd 1.0, inside the chassis in older releases.
    let med = first(entry, "lldp-med").or_else(|| first(chassis, "lldp-med"));
    fill_med(med, row);
}

fn fill_autoneg(port: &Json, row: &mut RowMut<'_>) {
    // lldpcli omits the element when autonegotiation is neither supported nor enabled.
    let autoneg = first(port, "auto-negotiation");
    let supported = autoneg.and_then(|a| flag(a, "supported")).unwrap_or(false);
    let enabled = autoneg.and_then(|a| flag(a, "enabled")).unwrap_or(false);
    row.set(Col::port_autoneg_supported, i64::from(supported));
    row.set(Col::port_autoneg_enabled, i64::from(enabled));
    let Some(autoneg) = autoneg else {
        return;
    };
    set_text(row, Col::port_mau_type, text(autoneg, "current"));
    if !(supported && enabled) {
        return;
    }
    let advertised = list(autoneg, "advertised");
    for &(mode, hd_col, fd_col) in AUTONEG {
        let entry = advertised
            .iter()
            .find(|a| a.get("type").and_then(Json::as_str) == Some(mode));
        // A mode with one bit for both duplexes (100Base-T4) is listed without hd/fd.
        let (hd, fd) = match entry {
            None => (false, false),
            Some(a) => match (flag(a, "hd"), flag(a, "fd")) {
                (None, None) => (true, true),
                (hd, fd) => (hd.unwrap_or(false), fd.unwrap_or(false)),
            },
        };
        row.set(hd_col, i64::from(hd));
        row.set(fd_col, i64::from(fd));
    }
}

fn fill_power(power: &Json, row: &mut RowMut<'_>) {
    set_text(row, Col::power_device_type, text(power, "device-type"));
    for (key, col) in [
        ("supported", Col::power_mdi_supported),
        ("enabled", Col::power_mdi_enabled),
        ("paircontrol", Col::power_paircontrol_enabled),
    ] {
        row.set(col, i64::from(flag(power, key).unwrap_or(false)));
    }
    set_text(row, Col::power_pairs, text(power, "pairs"));
    set_text(row, Col::power_class, text(power, "class"));
    // The 802.3at fields are printed only when the neighbour sends them.
    let at_type = text(power, "power-type");
    row.set(Col::power_8023at_enabled, i64::from(at_type.is_some()));
    if at_type.is_some() {
        set_text(row, Col::power_8023at_power_type, at_type);
        set_text(row, Col::power_8023at_power_source, text(power, "source"));
        set_text(
            row,
            Col::power_8023at_power_priority,
            text(power, "priority"),
        );
        set_text(
            row,
            Col::power_8023at_power_requested,
            text(power, "requested"),
        );
        set_text(
            row,
            Col::power_8023at_power_allocated,
            text(power, "allocated"),
        );
    }
}

fn fill_vlans(entry: &Json, row: &mut RowMut<'_>) {
    let mut vlans = Vec::new();
    let mut pvid = None;
    for vlan in list(entry, "vlan") {
        let Some(id) = vlan.get("vlan-id").and_then(scalar) else {
            continue;
        };
        if flag(vlan, "pvid") == Some(true) {
            pvid = Some(id.clone());
        }
        // lldpcli adds a name-less entry for a PVID that is not among the VLANs.
        if vlan.get("value").is_some() {
            vlans.push(id);
        }
    }
    row.set(Col::vlans, vlans.join(","));
    row.set(Col::pvid, pvid.unwrap_or_else(|| "0".to_owned()));
}

fn fill_med(med: Option<&Json>, row: &mut RowMut<'_>) {
    for &(_, col) in MED_CAPABILITIES {
        row.set(col, 0);
    }
    let Some(med) = med else {
        return;
    };
    set_text(row, Col::med_device_type, text(med, "device-type"));
    for cap in list(med, "capability") {
        let kind = cap.get("type").and_then(Json::as_str);
        if let Some(&(_, col)) = MED_CAPABILITIES.iter().find(|c| Some(c.0) == kind) {
            // Listed only when available; newer lldpcli also says `"available": true`.
            row.set(col, i64::from(flag(cap, "available").unwrap_or(true)));
        }
    }
    let policies: Vec<String> = list(med, "policy")
        .iter()
        .filter_map(|p| p.get("apptype").and_then(scalar))
        .collect();
    row.set(Col::med_policies, policies.join(","));
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_sys::exec::find_program;
    use oxquery_table::{Host, Value};
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    fn cell(row: &[Value], col: Col) -> &Value {
        &row[usize::from(col)]
    }

    fn all_rows(json: &Json) -> Rows<'static> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        fill(json, &mut rows);
        rows
    }

    fn rows_from(socket: &Path, ctx: &QueryContext) -> Rows<'static> {
        let mut rows = Rows::for_context(ctx);
        generate_from(socket, ctx, &mut rows).unwrap();
        rows
    }

    #[test]
    fn schema_has_the_3_3_2_columns() {
        assert_eq!(SPEC.columns.len(), 69);
        assert_eq!(SPEC.columns[0].name, "interface");
        assert_eq!(SPEC.columns[68].name, "pids");
    }

    /// Real output of `lldpcli -u a.socket -f json0 show neighbors details` (lldpd 1.0.16,
    /// Debian 12), captured while writing this table from the same two-namespace set-up as
    /// `reads_a_real_lldpd_neighbour` below: lldpd `-M 1` in namespace A, lldpd `-M 4 -m
    /// 192.0.2.7` in namespace B with hostname oxq-b, a port description, dot3 PSE power
    /// and a voice MED policy configured through lldpcli.
    const CAPTURED: &str = r#"
{
  "lldp": [
    {
      "interface": [
        {
          "name": "oxqta",
          "via": "LLDP",
          "rid": "1",
          "age": "0 day, 00:00:04",
          "chassis": [
            {
              "id": [
                {
                  "type": "mac",
                  "value": "be:b3:84:0f:9f:ef"
                }
              ],
              "name": [
                {
                  "value": "oxq-b"
                }
              ],
              "descr": [
                {
                  "value": "Debian GNU/Linux 12 (bookworm) Linux 6.18.44-fc-v595 #1 SMP PREEMPT_DYNAMIC @0 x86_64"
                }
              ],
              "mgmt-ip": [
                {
                  "value": "192.0.2.7"
                }
              ],
              "mgmt-iface": [
                {
                  "value": "5"
                }
              ],
              "capability": [
                {
                  "type": "Bridge",
                  "enabled": false
                },
                {
                  "type": "Router",
                  "enabled": false
                },
                {
                  "type": "Wlan",
                  "enabled": false
                },
                {
                  "type": "Station",
                  "enabled": true
                }
              ]
            }
          ],
          "port": [
            {
              "id": [
                {
                  "type": "mac",
                  "value": "be:b3:84:0f:9f:ef"
                }
              ],
              "descr": [
                {
                  "value": "uplink to A"
                }
              ],
              "ttl": [
                {
                  "value": "4"
                }
              ],
              "auto-negotiation": [
                {
                  "supported": false,
                  "enabled": false,
                  "current": [
                    {
                      "value": "10GbaseT - Four-pair Category 6A or better, full duplex mode only"
                    }
                  ]
                }
              ],
              "power": [
                {
                  "supported": true,
                  "enabled": true,
                  "paircontrol": true,
                  "device-type": [
                    {
                      "value": "PSE"
                    }
                  ],
                  "pairs": [
                    {
                      "value": "spare"
                    }
                  ],
                  "class": [
                    {
                      "value": "class 3"
                    }
                  ],
                  "power-type": [
                    {
                      "value": "2"
                    }
                  ],
                  "source": [
                    {
                      "value": "PSE"
                    }
                  ],
                  "priority": [
                    {
                      "value": "high"
                    }
                  ],
                  "requested": [
                    {
                      "value": "10000"
                    }
                  ],
                  "allocated": [
                    {
                      "value": "5000"
                    }
                  ]
                }
              ]
            }
          ],
          "lldp-med": [
            {
              "device-type": [
                {
                  "value": "Network Connectivity Device"
                }
              ],
              "capability": [
                {
                  "type": "Capabilities",
                  "available": true
                },
                {
                  "type": "Policy",
                  "available": true
                },
                {
                  "type": "Location",
                  "available": true
                },
                {
                  "type": "MDI/PSE",
                  "available": true
                },
                {
                  "type": "MDI/PD",
                  "available": true
                },
                {
                  "type": "Inventory",
                  "available": true
                }
              ],
              "policy": [
                {
                  "apptype": "Voice",
                  "defined": true,
                  "priority": [
                    {
                      "value": "Voice"
                    }
                  ],
                  "pcp": [
                    {
                      "value": "5"
                    }
                  ],
                  "dscp": [
                    {
                      "value": "46"
                    }
                  ]
                }
              ],
              "inventory": [
                {
                  "software": [
                    {
                      "value": "6.18.44-fc-v595"
                    }
                  ]
                }
              ]
            }
          ]
        }
      ]
    }
  ]
}

"#;

    #[test]
    fn maps_captured_lldpcli_output() {
        let json = parse(CAPTURED.as_bytes()).unwrap();
        let rows = all_rows(&json);
        assert_eq!(rows.len(), 1);
        let r = rows.get(0).unwrap();
        let t = |c: Col| cell(r, c).as_text().map(|s| s.into_owned());
        let i = |c: Col| cell(r, c).as_i64();
        assert_eq!(t(Col::interface).as_deref(), Some("oxqta"));
        assert_eq!(i(Col::rid), Some(1));
        assert_eq!(t(Col::chassis_id_type).as_deref(), Some("mac"));
        assert_eq!(t(Col::chassis_id).as_deref(), Some("be:b3:84:0f:9f:ef"));
        assert_eq!(t(Col::chassis_sysname).as_deref(), Some("oxq-b"));
        assert!(
            t(Col::chassis_sys_description)
                .unwrap()
                .starts_with("Debian GNU/Linux 12")
        );
        assert_eq!(t(Col::chassis_mgmt_ips).as_deref(), Some("192.0.2.7"));
        assert_eq!(i(Col::chassis_bridge_capability_available), Some(1));
        assert_eq!(i(Col::chassis_bridge_capability_enabled), Some(0));
        assert_eq!(i(Col::chassis_station_capability_available), Some(1));
        assert_eq!(i(Col::chassis_station_capability_enabled), Some(1));
        // Not declared by the neighbour: unknown, as in osquery.
        assert!(cell(r, Col::chassis_tel_capability_available).is_null());
        assert_eq!(t(Col::port_id_type).as_deref(), Some("mac"));
        assert_eq!(t(Col::port_id).as_deref(), Some("be:b3:84:0f:9f:ef"));
        assert_eq!(t(Col::port_description).as_deref(), Some("uplink to A"));
        assert_eq!(i(Col::port_ttl), Some(4));
        assert!(cell(r, Col::port_mfs).is_null());
        assert_eq!(i(Col::port_autoneg_supported), Some(0));
        assert_eq!(i(Col::port_autoneg_enabled), Some(0));
        assert!(cell(r, Col::port_autoneg_1000baset_fd_enabled).is_null());
        assert_eq!(
            t(Col::port_mau_type).as_deref(),
            Some("10GbaseT - Four-pair Category 6A or better, full duplex mode only")
        );
        assert_eq!(t(Col::power_device_type).as_deref(), Some("PSE"));
        assert_eq!(i(Col::power_mdi_supported), Some(1));
        assert_eq!(i(Col::power_mdi_enabled), Some(1));
        assert_eq!(i(Col::power_paircontrol_enabled), Some(1));
        assert_eq!(t(Col::power_pairs).as_deref(), Some("spare"));
        assert_eq!(t(Col::power_class).as_deref(), Some("class 3"));
        assert_eq!(i(Col::power_8023at_enabled), Some(1));
        assert_eq!(t(Col::power_8023at_power_type).as_deref(), Some("2"));
        assert_eq!(t(Col::power_8023at_power_source).as_deref(), Some("PSE"));
        assert_eq!(t(Col::power_8023at_power_priority).as_deref(), Some("high"));
        assert_eq!(
            t(Col::power_8023at_power_requested).as_deref(),
            Some("10000")
        );
        assert_eq!(
            t(Col::power_8023at_power_allocated).as_deref(),
            Some("5000")
        );
        assert_eq!(
            t(Col::med_device_type).as_deref(),
            Some("Network Connectivity Device")
        );
        for c in [
            Col::med_capability_capabilities,
            Col::med_capability_policy,
            Col::med_capability_location,
            Col::med_capability_mdi_pse,
            Col::med_capability_mdi_pd,
            Col::med_capability_inventory,
        ] {
            assert_eq!(i(c), Some(1));
        }
        assert_eq!(t(Col::med_policies).as_deref(), Some("Voice"));
        assert_eq!(t(Col::vlans).as_deref(), Some(""));
        assert_eq!(t(Col::pvid).as_deref(), Some("0"));
        assert_eq!(t(Col::ppvids_supported).as_deref(), Some(""));
        assert_eq!(t(Col::pids).as_deref(), Some(""));
    }

    #[test]
    fn odd_documents_give_no_rows_and_no_panic() {
        assert!(parse(b"").unwrap().is_null());
        assert!(parse(b"{not json").is_none());
        for doc in [
            "null",
            "{}",
            r#"{"lldp":[{}]}"#,
            r#"{"lldp":{"interface":{"name":"x"}}}"#,
            r#"{"lldp":[{"interface":[{"chassis":7,"port":[1],"vlan":[{}]}]}]}"#,
        ] {
            let json: Json = serde_json::from_str(doc).unwrap();
            let rows = all_rows(&json);
            assert!(rows.len() <= 1, "{doc}");
        }
    }

    #[test]
    fn no_lldpd_means_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let socket = dir.path().join("absent.socket");
        let rows = rows_from(&socket, &ctx);
        assert!(rows.is_empty());
        // The live table never fails either, whatever this machine runs.
        Rows::collect(&ctx, generate).unwrap();
    }

    /// Two network namespaces joined by a veth pair, one lldpd in each, stopped and
    /// deleted however the test ends.
    struct Lab {
        namespaces: Vec<String>,
        daemons: Vec<Child>,
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            for child in &mut self.daemons {
                let pid = child.id() as libc::pid_t;
                // SAFETY: signalling a child this test spawned and has not yet reaped.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                let deadline = Instant::now() + Duration::from_secs(5);
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
            for ns in &self.namespaces {
                let _ = Command::new("ip").args(["netns", "delete", ns]).status();
            }
        }
    }

    fn run(program: &str, args: &[&str]) -> Result<String, String> {
        Helper::new(program)
            .args(args)
            .timeout(Duration::from_secs(10))
            .run()
            .and_then(exec::Output::into_stdout)
            .map(|out| String::from_utf8_lossy(&out).into_owned())
            .map_err(|e| format!("{program} {args:?}: {e}"))
    }

    fn must(program: &str, args: &[&str]) -> String {
        run(program, args).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn reads_a_real_lldpd_neighbour() {
        let (Ok(lldpd), Ok(_)) = (find_program("lldpd"), find_program("lldpcli")) else {
            let _: Option<()> = oxquery_test_support::missing(
                "lldpd is not installed (.ci/run installs it; captured output is tested)",
            );
            return;
        };
        let pid = std::process::id();
        let (ns_a, ns_b) = (format!("oxq-lldp-a-{pid}"), format!("oxq-lldp-b-{pid}"));
        let mut lab = Lab {
            namespaces: Vec::new(),
            daemons: Vec::new(),
        };
        for ns in [&ns_a, &ns_b] {
            if let Err(e) = run("ip", &["netns", "add", ns]) {
                let _: Option<()> = oxquery_test_support::missing(&format!(
                    "cannot create a network namespace here ({e})"
                ));
                return;
            }
            lab.namespaces.push(ns.clone());
        }
        must(
            "ip",
            &[
                "link", "add", "lldp-a", "netns", &ns_a, "type", "veth", "peer", "name", "lldp-b",
                "netns", &ns_b,
            ],
        );
        for (ns, dev) in [(&ns_a, "lldp-a"), (&ns_b, "lldp-b")] {
            must("ip", &["-n", ns, "link", "set", "lo", "up"]);
            must("ip", &["-n", ns, "link", "set", dev, "up"]);
        }
        must(
            "ip",
            &["-n", &ns_b, "addr", "add", "192.0.2.7/24", "dev", "lldp-b"],
        );
        let link: Json =
            serde_json::from_str(&must("ip", &["-n", &ns_b, "-j", "link", "show", "lldp-b"]))
                .unwrap();
        let mac_b = link[0]["address"].as_str().unwrap().to_owned();

        let dir = tempfile::tempdir().unwrap();
        let socket_a = dir.path().join("a.socket");
        let socket_b = dir.path().join("b.socket");
        // Each lldpd reads its settings from its own -O file: lldpd starts paused and its
        // start-up lldpcli applies the file and then resumes it. Settings given with lldpcli
        // after the socket appears race that resume: lldpcli sends back the whole
        // configuration it fetched, paused flag included, and a daemon that is paused again
        // neither sends nor records frames (lldpd 1.0's _lldpctl_atom_set_int_config).
        let config_a = "configure lldp tx-interval 1\n";
        let config_b = "configure system hostname oxq-b
configure lldp tx-interval 1
configure ports lldp-b lldp portdescription oxq-uplink
configure ports lldp-b dot3 power pse supported enabled paircontrol powerpairs spare class class-3 type 2 source primary priority high requested 10000 allocated 5000
configure ports lldp-b med policy application voice vlan 500 priority voice dscp 46
";
        let lldpd = lldpd.to_str().unwrap();
        for (ns, dev, socket, config, extra) in [
            (&ns_a, "lldp-a", &socket_a, config_a, vec!["-M", "1"]),
            (
                &ns_b,
                "lldp-b",
                &socket_b,
                config_b,
                vec!["-M", "4", "-m", "192.0.2.7"],
            ),
        ] {
            let config_file = socket.with_extension("conf");
            std::fs::write(&config_file, config).unwrap();
            let log = std::fs::File::create(socket.with_extension("log")).unwrap();
            let child = Command::new(find_program("ip").unwrap())
                .args(["netns", "exec", ns, lldpd, "-d", "-I", dev, "-u"])
                .arg(socket)
                .arg("-O")
                .arg(&config_file)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start lldpd");
            lab.daemons.push(child);
        }
        let log_of = |socket: &Path| {
            std::fs::read_to_string(socket.with_extension("log")).unwrap_or_default()
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !(socket_a.exists() && socket_b.exists()) {
            for child in &mut lab.daemons {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "lldpd exited ({status}):\n{}\n{}",
                        log_of(&socket_a),
                        log_of(&socket_b)
                    );
                }
            }
            assert!(Instant::now() < deadline, "lldpd made no control socket");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Wait until A has heard B's configured announcement, through the table itself.
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let deadline = Instant::now() + Duration::from_secs(60);
        let rows = loop {
            let rows = rows_from(&socket_a, &ctx);
            let complete = rows.iter().any(|r| {
                cell(r, Col::chassis_sysname).as_text().as_deref() == Some("oxq-b")
                    && cell(r, Col::port_description).as_text().as_deref() == Some("oxq-uplink")
                    && cell(r, Col::med_policies).as_text().as_deref() == Some("Voice")
                    && !cell(r, Col::power_8023at_power_allocated).is_null()
            });
            if complete {
                break rows;
            }
            assert!(
                Instant::now() < deadline,
                "A never heard B's full announcement; last rows: {:?}\n{}\n{}",
                rows.iter().collect::<Vec<_>>(),
                log_of(&socket_a),
                log_of(&socket_b)
            );
            std::thread::sleep(Duration::from_millis(250));
        };
        assert_eq!(rows.len(), 1, "one veth, one neighbour");
        let r = rows.get(0).unwrap();
        let t = |c: Col| cell(r, c).as_text().map(|s| s.into_owned());
        let i = |c: Col| cell(r, c).as_i64();
        assert_eq!(t(Col::interface).as_deref(), Some("lldp-a"));
        assert!(i(Col::rid).is_some_and(|rid| rid > 0));
        // lldpd identifies B's chassis and port by the MAC of B's only interface.
        assert_eq!(t(Col::chassis_id_type).as_deref(), Some("mac"));
        assert_eq!(t(Col::chassis_id), Some(mac_b.clone()));
        assert_eq!(t(Col::port_id_type).as_deref(), Some("mac"));
        assert_eq!(t(Col::port_id), Some(mac_b));
        // tx-interval 1 s times lldpd's default hold multiplier 4.
        assert_eq!(i(Col::port_ttl), Some(4));
        assert!(
            t(Col::chassis_mgmt_ips)
                .unwrap()
                .split(',')
                .any(|ip| ip == "192.0.2.7")
        );
        assert!(t(Col::chassis_sys_description).is_some_and(|d| !d.is_empty()));
        assert_eq!(i(Col::chassis_station_capability_available), Some(1));
        assert_eq!(t(Col::power_device_type).as_deref(), Some("PSE"));
        assert_eq!(t(Col::power_pairs).as_deref(), Some("spare"));
        assert_eq!(t(Col::power_class).as_deref(), Some("class 3"));
        assert_eq!(i(Col::power_8023at_enabled), Some(1));
        assert_eq!(t(Col::power_8023at_power_priority).as_deref(), Some("high"));
        assert_eq!(
            t(Col::power_8023at_power_requested).as_deref(),
            Some("10000")
        );
        assert_eq!(
            t(Col::power_8023at_power_allocated).as_deref(),
            Some("5000")
        );
        assert_eq!(
            t(Col::med_device_type).as_deref(),
            Some("Network Connectivity Device")
        );
        assert_eq!(i(Col::med_capability_policy), Some(1));
        assert_eq!(t(Col::pvid).as_deref(), Some("0"));
    }
}
