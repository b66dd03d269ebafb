//! `lxd_instance_config`: the config keys of named LXD instances.

use super::lxd::{self, value_text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "lxd_instance_config",
    description: "Config of LXD instances, one row per key of the instance's own config (not the keys its profiles add); name is required (GET /1.0/instances/<name> on --lxd_socket for each). No daemon: no rows.",
    columns: {
        name: Text [INDEX | REQUIRED] "Instance name",
        key: Text [] "Config key (e.g. limits.cpu, security.privileged, volatile.base_image)",
        value: Text [] "Its value",
    },
    examples: ["select key, value from lxd_instance_config where name = 'web'"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    for name in lxd::asked_instances(ctx, Col::name).unwrap_or_default() {
        let Some(instance) = lxd::instance(ctx, table, &name)? else {
            continue;
        };
        let config = instance.get("config").and_then(|c| c.as_object());
        for (key, value) in config.into_iter().flatten() {
            let mut row = rows.row();
            row.set(Col::name, name.as_str());
            row.set(Col::key, key.as_str());
            row.set(Col::value, value_text(value));
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
    fn matches_lxc_config_get() {
        let Some(d) = daemon() else { return };
        let host = d.host();
        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::name,
            Op::Eq,
            d.instance.clone(),
        );
        let got: Vec<(String, String, String)> = rows_of(&ctx, generate)
            .iter()
            .map(|r| (text(&r[0]), text(&r[1]), text(&r[2])))
            .collect();
        assert!(got.iter().all(|(n, _, _)| *n == d.instance));
        // The key the harness set, and the image it was made from.
        assert!(
            got.iter().any(|(_, k, v)| k == "user.oxq" && v == "yes"),
            "{got:?}"
        );
        assert!(
            got.iter()
                .any(|(_, k, v)| k == "volatile.base_image" && *v == d.image_fingerprint())
        );
        // Every key has the value `lxc config get` gives.
        for (_, key, value) in &got {
            assert_eq!(
                &d.lxc(&["config", "get", &d.instance, key]),
                value.trim(),
                "{key}"
            );
        }
        for other in ["no-such-instance", "../images"] {
            let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
                Col::name,
                Op::Eq,
                other,
            );
            assert!(rows_of(&ctx, generate).is_empty());
        }
    }
}
