//! `lxd_cluster_members`: the members of the LXD daemon's cluster.

use super::lxd::{self, flag, text};
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "lxd_cluster_members",
    description: "Members of the LXD cluster (GET /1.0/cluster/members?recursion=1 on --lxd_socket). A daemon that is not clustered (GET /1.0/cluster: enabled false) or no daemon: no rows.",
    columns: {
        server_name: Text [] "Name of the member",
        url: Text [] "URL of the member",
        database: Integer [] "1 if the member holds a voting copy of the database",
        status: Text [] "Status of the member (Online, Offline, ...)",
        message: Text [] "Message about the member's status",
    },
    examples: ["select server_name, url, status from lxd_cluster_members"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let table = TABLE.spec.name.as_ref();
    // A standalone daemon answers the members' list with an error: ask first.
    let Some(cluster) = lxd::get(ctx, table, "/1.0/cluster")? else {
        return Ok(());
    };
    if cluster.get("enabled").and_then(|e| e.as_bool()) != Some(true) {
        log::info!("{table}: the LXD daemon is not clustered");
        return Ok(());
    }
    for m in lxd::list(ctx, table, "/1.0/cluster/members")? {
        ctx.check()?;
        let mut row = rows.row();
        row.set(Col::server_name, text(&m, "server_name"));
        row.set(Col::url, text(&m, "url"));
        row.set(Col::database, flag(&m, "database"));
        row.set(Col::status, text(&m, "status"));
        row.set(Col::message, text(&m, "message"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::lxd::testing::{clustered, daemon, host_for, serve};
    use crate::testing::{rows_of, text};
    use oxquery_table::Value;

    #[test]
    fn a_standalone_daemon_has_no_members_and_no_warning() {
        let Some(d) = daemon() else { return };
        let host = d.host();
        let (rows, logged) = crate::common::testing::capture_log(|| {
            rows_of(&QueryContext::everything(TABLE.spec, &host), generate)
        });
        assert!(rows.is_empty());
        assert!(
            logged.iter().all(|(l, _)| *l > log::Level::Warn),
            "{logged:?}"
        );
    }

    /// The one member of the clustered test daemon, as `lxc cluster list` shows it.
    #[test]
    fn matches_lxc_cluster_list() {
        let Some(c) = clustered() else { return };
        let host = host_for(&c.socket);
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        assert_eq!(rows.len(), 1, "{rows:?}");
        let r = &rows[0];
        let listed = c.lxc(&["cluster", "list", "--format", "json"]);
        let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
        let m = &listed[0];
        assert_eq!(text(&r[0]), c.member);
        assert_eq!(m["server_name"], c.member.as_str());
        assert_eq!(text(&r[1]), c.url);
        assert_eq!(m["url"], c.url.as_str());
        // The only member holds the database.
        assert_eq!(r[2], Value::Integer(1));
        assert_eq!(text(&r[3]), m["status"].as_str().unwrap());
        assert_eq!(text(&r[3]), "Online");
        assert_eq!(text(&r[4]), m["message"].as_str().unwrap());
    }

    /// A clustered daemon's answers, in the shapes of LXD's api.Cluster and
    /// api.ClusterMember (lxd/shared/api/cluster.go), served from the test's own socket:
    /// here with a second member, offline, which the one-member test cluster cannot show.
    #[test]
    fn members_of_a_cluster_in_lxds_shapes() {
        let cluster = r#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":{"server_name":"node1","enabled":true,"member_config":[]}}"#;
        let members = r#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":[
            {"server_name":"node1","url":"https://10.0.0.1:8443","database":true,"status":"Online","message":"Fully operational","roles":["database"],"architecture":"x86_64","failure_domain":"default","description":"","config":{},"groups":["default"]},
            {"server_name":"node2","url":"https://10.0.0.2:8443","database":false,"status":"Offline","message":"No heartbeat for 1m0s","roles":[],"architecture":"aarch64","failure_domain":"default","description":"","config":{},"groups":["default"]}]}"#;
        let (_dir, socket) = serve(vec![
            ("/1.0/cluster".to_owned(), cluster.to_owned()),
            (
                "/1.0/cluster/members?recursion=1".to_owned(),
                members.to_owned(),
            ),
        ]);
        let host = host_for(&socket);
        let rows = rows_of(&QueryContext::everything(TABLE.spec, &host), generate);
        let got: Vec<(String, String, Value, String, String)> = rows
            .iter()
            .map(|r| {
                (
                    text(&r[0]),
                    text(&r[1]),
                    r[2].clone(),
                    text(&r[3]),
                    text(&r[4]),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "node1".into(),
                    "https://10.0.0.1:8443".into(),
                    Value::Integer(1),
                    "Online".into(),
                    "Fully operational".into()
                ),
                (
                    "node2".into(),
                    "https://10.0.0.2:8443".into(),
                    Value::Integer(0),
                    "Offline".into(),
                    "No heartbeat for 1m0s".into()
                ),
            ]
        );
    }
}
