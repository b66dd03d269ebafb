//! `azure_instance_metadata`: what the Azure instance metadata service says about this VM.

use oxquery_table::{QueryContext, Rows, TableResult, table};

use super::instance::{self, CloudSettings};

table! {
    name: "azure_instance_metadata",
    description: "Facts the Azure instance metadata service gives about this VM (its compute metadata, api-version 2018-02-01). The service is asked only on a machine that DMI (Azure's chassis asset tag) or the Azure agent's log says is an Azure VM; elsewhere there are no rows. --azure_metadata_endpoint (oxquery's) overrides the service's address.",
    attributes: [CACHEABLE],
    columns: {
        location: Text [] "Azure Region the VM is running in",
        name: Text [] "Name of the VM",
        offer: Text [] "Offer information for the VM image (Azure image gallery VMs only)",
        publisher: Text [] "Publisher of the VM image",
        sku: Text [] "Specific SKU for the VM image",
        version: Text [] "Version of the VM image",
        os_type: Text [] "Linux or Windows",
        platform_update_domain: Text [] "Update domain the VM is running in",
        platform_fault_domain: Text [] "Fault domain the VM is running in",
        vm_id: Text [INDEX] "Unique identifier for the VM",
        vm_size: Text [] "VM size",
        subscription_id: Text [] "Azure subscription for the VM",
        resource_group_name: Text [] "Resource group for the VM",
        placement_group_id: Text [] "Placement group for the VM scale set",
        vm_scale_set_name: Text [] "VM scale set name",
        zone: Text [] "Availability zone of the VM",
    },
    examples: ["select vm_id, location, vm_size from azure_instance_metadata"],
}

const TABLE_NAME: &str = "azure_instance_metadata";

/// The compute object's members and their columns.
const MEMBERS: &[(Col, &str)] = &[
    (Col::location, "location"),
    (Col::name, "name"),
    (Col::offer, "offer"),
    (Col::publisher, "publisher"),
    (Col::sku, "sku"),
    (Col::version, "version"),
    (Col::os_type, "osType"),
    (Col::platform_update_domain, "platformUpdateDomain"),
    (Col::platform_fault_domain, "platformFaultDomain"),
    (Col::vm_id, "vmId"),
    (Col::vm_size, "vmSize"),
    (Col::subscription_id, "subscriptionId"),
    (Col::resource_group_name, "resourceGroupName"),
    (Col::placement_group_id, "placementGroupId"),
    (Col::vm_scale_set_name, "vmScaleSetName"),
    (Col::zone, "zone"),
];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_with(ctx, rows, &CloudSettings::from_context(ctx))
}

fn generate_with(ctx: &QueryContext, rows: &mut Rows, settings: &CloudSettings) -> TableResult {
    let Some(compute) = instance::azure_compute(TABLE_NAME, ctx, settings) else {
        return ctx.check();
    };
    let mut row = rows.row();
    for (col, key) in MEMBERS {
        row.set(*col, instance::member_text(&compute, key));
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::instance::testing::{
        self, CLOSED, Reply, Seen, Server, collect, write_fixture,
    };
    use super::super::instance::{AZURE_COMPUTE, CloudSettings};
    use super::*;
    use crate::common::testing::{capture_log, within_10s};
    use crate::testing::text;
    use oxquery_table::{Host, Value};

    /// A compute object as the 2018-02-01 api-version answers it.
    pub const COMPUTE: &str = r#"{"location":"westeurope","name":"web-1","offer":"debian-12","osType":"Linux","placementGroupId":"","plan":{"name":"","product":"","publisher":""},"platformFaultDomain":"1","platformUpdateDomain":"0","publicKeys":[],"publisher":"Debian","resourceGroupName":"rg-web","sku":"12-gen2","subscriptionId":"8d1f3b56-1111-2222-3333-444455556666","tags":"env:prod;owner:ops:team;broken;role:","version":"0.20240703.1797","vmId":"02aab8a4-74ef-476e-8182-f6d2ba4166a6","vmScaleSetName":"","vmSize":"Standard_B2s","zone":"2"}"#;

    /// An Azure metadata service: the compute object for requests that carry the header.
    pub fn azure(seen: &Seen) -> Reply {
        if seen.headers.get("metadata").map(String::as_str) != Some("true") {
            return Reply::Answer(
                400,
                r#"{"error":"Bad request. Required metadata header not specified"}"#.to_owned(),
            );
        }
        if seen.method == "GET" && seen.target == AZURE_COMPUTE {
            Reply::Answer(200, COMPUTE.to_owned())
        } else {
            Reply::Answer(404, String::new())
        }
    }

    pub fn settings(root: &std::path::Path, endpoint: &str) -> CloudSettings {
        testing::settings(root, CLOSED, endpoint, CLOSED, &[])
    }

    pub fn azure_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(
            dir.path(),
            &[(
                "sys/class/dmi/id/chassis_asset_tag",
                "7783-7084-3265-9085-8269-3286-77\n",
            )],
        );
        dir
    }

    pub fn not_azure_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(
            dir.path(),
            &[
                ("sys/class/dmi/id/sys_vendor", "Microsoft Corporation\n"),
                ("sys/class/dmi/id/chassis_asset_tag", "None\n"),
            ],
        );
        dir
    }

    /// Hostile or broken answers the azure tables must survive.
    fn hostile_answers() -> Vec<(&'static str, Reply)> {
        vec![
            ("not JSON", Reply::Answer(200, "<html>".to_owned())),
            ("not an object", Reply::Answer(200, "\"vmId\"".to_owned())),
            ("an error status", Reply::Answer(500, "{}".to_owned())),
            (
                "truncated",
                Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 900\r\nConnection: close\r\n\r\n{\"vmId\":\"02aa".to_vec()),
            ),
            ("silent", Reply::Silent),
        ]
    }

    /// What a test scan gives: the rows and what was logged.
    pub type Scanned = (Vec<Vec<Value>>, Vec<(log::Level, String)>);

    /// Each of [`hostile_answers`], served to `scan` on an Azure VM, gives no rows and a
    /// warning.
    pub fn assert_hostile_answers_warn(scan: fn(CloudSettings) -> Scanned) {
        let root = azure_root();
        for (what, reply) in hostile_answers() {
            let reply = std::sync::Mutex::new(Some(reply));
            let server = Server::start(move |_: &Seen| {
                reply.lock().unwrap().take().unwrap_or(Reply::Silent)
            });
            let (rows, logged) = scan(settings(root.path(), &server.base));
            assert!(rows.is_empty(), "{what}: {rows:?}");
            assert!(
                logged
                    .iter()
                    .any(|(l, m)| *l == log::Level::Warn && m.contains("no rows")),
                "{what}: {logged:?}"
            );
        }
    }

    fn scan(settings: CloudSettings) -> (Vec<Vec<Value>>, Vec<(log::Level, String)>) {
        within_10s(move || {
            capture_log(|| {
                let host = Host::default();
                let ctx = QueryContext::everything(&SPEC, &host);
                let (result, rows) = collect(&ctx, |c, r| generate_with(c, r, &settings));
                result.unwrap();
                rows
            })
        })
    }

    #[test]
    fn an_azure_vm_gets_its_compute_metadata() {
        let server = Server::start(azure);
        let root = azure_root();
        let (rows, logged) = scan(settings(root.path(), &server.base));
        assert_eq!(rows.len(), 1, "{logged:?}");
        let expected: serde_json::Value = serde_json::from_str(COMPUTE).unwrap();
        for (col, key) in MEMBERS {
            assert_eq!(
                text(&rows[0][*col as usize]),
                expected[key].as_str().unwrap(),
                "{key}"
            );
        }
        assert_eq!(
            text(&rows[0][Col::vm_id as usize]),
            "02aab8a4-74ef-476e-8182-f6d2ba4166a6"
        );
        let seen = server.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].headers["metadata"], "true");
    }

    #[test]
    fn a_machine_elsewhere_sends_nothing() {
        let server = Server::start(azure);
        let root = not_azure_root();
        let (rows, logged) = scan(settings(root.path(), &server.base));
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == log::Level::Info && m.contains("not asking")),
            "{logged:?}"
        );
        assert!(server.seen().is_empty());
    }

    #[test]
    fn hostile_answers_give_no_row_and_a_warning() {
        assert_hostile_answers_warn(scan);
    }
}
