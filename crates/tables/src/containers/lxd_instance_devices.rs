//! `lxd_instance_devices`: the devices of named LXD instances.

use super::lxd::{self, text, value_text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "lxd_instance_devices",
    description: "Devices of LXD instances, with those their profiles add (expanded_devices), one row per device setting other than its type; name is required (GET /1.0/instances/<name> on --lxd_socket for each). No daemon: no rows.",
    columns: {
        name: Text [INDEX | REQUIRED] "Instance name",
        device: Text [] "Device name",
        device_type: Text [] "Device type (disk, nic, unix-char, proxy, ...)",
        key: Text [] "Device setting (e.g. path, source, pool, nictype)",
        value: Text [] "Its value",
    },
    examples: ["select device, device_type, key, value from lxd_instance_devices where name = 'web'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    for name in lxd::asked_instances(ctx, Col::name).unwrap_or_default() {
        let Some(instance) = lxd::instance(ctx, table, &name)? else {
            continue;
        };
        let devices = instance.get("expanded_devices").and_then(|d| d.as_object());
        for (device, settings) in devices.into_iter().flatten() {
            let device_type = text(settings, "type");
            for (key, value) in settings.as_object().into_iter().flatten() {
                if key == "type" {
                    continue;
                }
                let mut row = rows.row();
                row.set(Col::name, name.as_str());
                row.set(Col::device, device.as_str());
                row.set(Col::device_type, device_type.as_str());
                row.set(Col::key, key.as_str());
                row.set(Col::value, value_text(value));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::lxd::testing::daemon;
    use crate::testing::{rows_of, text};
    use oxquery_table::Op;

    #[test]
    fn has_the_devices_the_test_added() {
        let Some(d) = daemon() else { return };
        let host = d.host();
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::name,
            Op::Eq,
            d.instance.clone(),
        );
        let mut got: Vec<[String; 5]> = rows_of(&ctx, generate)
            .iter()
            .map(|r| std::array::from_fn(|i| text(&r[i])))
            .collect();
        got.sort();
        let n = d.instance.clone();
        let row = |dev: &str, ty: &str, k: &str, v: &str| {
            [
                n.clone(),
                dev.to_owned(),
                ty.to_owned(),
                k.to_owned(),
                v.to_owned(),
            ]
        };
        // `share` was added to the instance; `root` comes from the default profile.
        let mut want = vec![
            row("root", "disk", "path", "/"),
            row("root", "disk", "pool", &d.pool),
            row("share", "disk", "path", "/mnt/share"),
            row("share", "disk", "readonly", "true"),
            row("share", "disk", "source", d.share.to_str().unwrap()),
        ];
        want.sort();
        assert_eq!(got, want);
        let ctx =
            QueryContext::everything(TABLE.spec, &host).with_constraint(Col::name, Op::Eq, "nope");
        assert!(rows_of(&ctx, generate).is_empty());
    }
}
