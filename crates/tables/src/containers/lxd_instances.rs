//! `lxd_instances`: the LXD daemon's instances (containers and virtual machines).

use super::lxd::{self, flag, int, percent_encode, text, text_in};
use oxquery_table::{QueryContext, Rows, TableResult, table};
use serde_json::Value;

table! {
    name: "lxd_instances",
    description: "Instances (containers and virtual machines) of the LXD daemon (GET /1.0/instances?recursion=1 on --lxd_socket; name = asks GET /1.0/instances/<name> for each name). os, architecture and description are the image properties the instance was made with (GET .../metadata), pid and processes its state (GET .../state); each is asked only when the query uses those columns. No daemon: no rows.",
    columns: {
        name: Text [INDEX] "Instance name",
        status: Text [] "Instance status (Running, Stopped, Frozen, Error, ...)",
        stateful: Integer [] "1 if the instance can be stopped and restored with its memory state",
        ephemeral: Integer [] "1 if the instance is deleted when it stops",
        created_at: Text [] "When the instance was created (RFC 3339, as LXD gives it)",
        base_image: Text [] "Fingerprint of the image it was made from (config volatile.base_image)",
        architecture: Text [] "Architecture of the instance's image (metadata properties.architecture)",
        os: Text [] "Operating system of the instance's image (metadata properties.os)",
        description: Text [] "Description of the instance's image (metadata properties.description)",
        pid: Integer [] "Host pid of the instance's init process (0 when not running)",
        processes: Integer [] "Number of processes in the instance",
    },
    examples: [
        "select name, status, base_image, os, pid from lxd_instances",
        "select * from lxd_instances where name = 'web'",
    ],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    let instances: Vec<Value> = match lxd::asked_instances(ctx, Col::name) {
        Some(names) => {
            let mut found = Vec::new();
            for name in names {
                found.extend(lxd::instance(ctx, table, &name)?);
            }
            found
        }
        None => lxd::list(ctx, table, "/1.0/instances")?,
    };
    let want_metadata =
        ctx.is_used(Col::architecture) || ctx.is_used(Col::os) || ctx.is_used(Col::description);
    let want_state = ctx.is_used(Col::pid) || ctx.is_used(Col::processes);
    for instance in &instances {
        ctx.check()?;
        let name = text(instance, "name");
        let base = format!("/1.0/instances/{}", percent_encode(&name));
        let metadata = match want_metadata {
            true => lxd::get(ctx, table, &format!("{base}/metadata"))?,
            false => None,
        };
        let state = match want_state {
            true => lxd::get(ctx, table, &format!("{base}/state"))?,
            false => None,
        };
        let mut row = rows.row();
        row.set(Col::name, name.as_str());
        row.set(Col::status, text(instance, "status"));
        row.set(Col::stateful, flag(instance, "stateful"));
        row.set(Col::ephemeral, flag(instance, "ephemeral"));
        row.set(Col::created_at, text(instance, "created_at"));
        row.set(
            Col::base_image,
            text_in(instance, "config", "volatile.base_image"),
        );
        if let Some(properties) = metadata.as_ref().and_then(|m| m.get("properties")) {
            row.set(Col::architecture, text(properties, "architecture"));
            row.set(Col::os, text(properties, "os"));
            row.set(Col::description, text(properties, "description"));
        }
        if let Some(state) = &state {
            row.set(Col::pid, int(state, "pid"));
            row.set(Col::processes, int(state, "processes"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::lxd::testing::{daemon, host_for, serve};
    use crate::testing::{rows_of, text};
    use oxquery_table::{Op, Value};

    #[test]
    fn matches_the_container_the_test_made() {
        let Some(d) = daemon() else { return };
        let host = d.host();
        let fp = d.image_fingerprint();
        let all = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        let names: Vec<String> = all.iter().map(|r| text(&r[Col::name as usize])).collect();
        let listed = d.lxc(&["list", "--format", "csv", "--columns", "n"]);
        assert_eq!(names, listed.lines().collect::<Vec<_>>());
        assert_eq!(names, vec![d.instance.clone()]);

        let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
            Col::name,
            Op::Eq,
            d.instance.clone(),
        );
        let rows = rows_of(&ctx, generate);
        assert_eq!(rows, all);
        let r = &rows[0];
        // Made with `lxc init`, never started.
        assert_eq!(text(&r[Col::status as usize]), "Stopped");
        assert_eq!(r[Col::stateful as usize], Value::Integer(0));
        assert_eq!(r[Col::ephemeral as usize], Value::Integer(0));
        assert_eq!(text(&r[Col::base_image as usize]), fp);
        // From the metadata.yaml the harness wrote into the image.
        assert_eq!(text(&r[Col::architecture as usize]), "x86_64");
        assert_eq!(text(&r[Col::os as usize]), "oxqos");
        assert_eq!(text(&r[Col::description as usize]), "oxquery test image");
        assert_eq!(r[Col::pid as usize], Value::Integer(0));
        assert_eq!(r[Col::processes as usize], Value::Integer(0));
        let created = text(&r[Col::created_at as usize]);
        let shown = d.lxc(&["list", "--format", "json"]);
        let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(created, shown[0]["created_at"].as_str().unwrap());

        // Only the columns used are fetched: without them, no metadata and no state.
        let ctx = QueryContext::everything(TABLE.spec, &host).using([Col::name, Col::status]);
        let rows = rows_of(&ctx, generate);
        assert_eq!(rows[0][Col::os as usize], Value::Null);
        assert_eq!(rows[0][Col::pid as usize], Value::Null);

        for other in ["no-such-instance", "../images", "a b"] {
            let ctx = QueryContext::everything(TABLE.spec, &host).with_constraint(
                Col::name,
                Op::Eq,
                other,
            );
            assert!(rows_of(&ctx, generate).is_empty(), "{other}");
        }
    }

    /// A running container's state, which the tests do not make (starting one leaves
    /// cgroups behind on the host): LXD 5.0's answers for one, as the test daemon gave
    /// them when tried by hand, served from the test's own socket.
    #[test]
    fn a_running_instance_in_lxds_shapes() {
        let envelope = |metadata: &str| {
            format!(
                r#"{{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":{metadata}}}"#
            )
        };
        let instance = r#"{"architecture":"x86_64","config":{"image.os":"oxqos","volatile.base_image":"0798b1fa4aa52a9150b063cb17394cc761d473feb6f6a420cd7463c8b7e796af","volatile.last_state.power":"RUNNING"},"devices":{},"ephemeral":true,"profiles":["default"],"stateful":false,"description":"","created_at":"2026-12-07T03:04:39.882732615Z","expanded_config":{},"expanded_devices":{"root":{"path":"/","pool":"p","type":"disk"}},"name":"c1","status":"Running","status_code":103,"last_used_at":"2026-12-07T03:04:40.1Z","location":"none","type":"container","project":"default"}"#;
        let metadata = r#"{"architecture":"x86_64","creation_date":1700000000,"expiry_date":0,"properties":{"os":"oxqos"},"templates":null}"#;
        let state = r#"{"status":"Running","status_code":103,"disk":{},"memory":{"usage":335872,"usage_peak":1110016,"swap_usage":0,"swap_usage_peak":0},"network":{"lo":{"addresses":[],"counters":{"bytes_received":0,"bytes_sent":0,"packets_received":0,"packets_sent":0},"hwaddr":"","host_name":"","mtu":65536,"state":"up","type":"loopback"}},"pid":25118,"processes":1,"cpu":{"usage":1000}}"#;
        let (_dir, socket) = serve(vec![
            (
                "/1.0/instances?recursion=1".to_owned(),
                envelope(&format!("[{instance}]")),
            ),
            ("/1.0/instances/c1".to_owned(), envelope(instance)),
            ("/1.0/instances/c1/metadata".to_owned(), envelope(metadata)),
            ("/1.0/instances/c1/state".to_owned(), envelope(state)),
        ]);
        let host = host_for(&socket);
        let all = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        let one = rows_of(
            &QueryContext::everything(TABLE.spec, &host).with_constraint(Col::name, Op::Eq, "c1"),
            generate,
        );
        assert_eq!(all, one);
        assert_eq!(
            all,
            vec![vec![
                Value::from("c1"),
                Value::from("Running"),
                Value::Integer(0),
                Value::Integer(1),
                Value::from("2026-12-07T03:04:39.882732615Z"),
                Value::from("0798b1fa4aa52a9150b063cb17394cc761d473feb6f6a420cd7463c8b7e796af"),
                // Properties without architecture or description: ''.
                Value::from(""),
                Value::from("oxqos"),
                Value::from(""),
                Value::Integer(25118),
                Value::Integer(1),
            ]]
        );
    }
}
