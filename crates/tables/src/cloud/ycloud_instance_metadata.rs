//! `ycloud_instance_metadata`: what Yandex Cloud's metadata service (GCE-compatible)
//! says about this instance.

use oxquery_table::{QueryContext, Rows, TableResult, table};
use serde_json::{Map, Value};

use super::instance::{self, Cloud, CloudSettings};

table! {
    name: "ycloud_instance_metadata",
    description: "Facts Yandex Cloud's instance metadata service gives about this instance (`/computeMetadata/v1/instance/?alt=json&recursive=true` with `Metadata-Flavor: Google`, as osquery asks). Without a metadata_endpoint constraint the link-local service is asked only on a machine whose DMI vendor says Yandex, elsewhere there are no rows; an endpoint the query names is asked as named.",
    attributes: [CACHEABLE],
    columns: {
        instance_id: Text [INDEX] "Unique identifier for the VM",
        folder_id: Text [] "Folder identifier for the VM",
        cloud_id: Text [] "Cloud identifier for the VM",
        name: Text [] "Name of the VM",
        description: Text [] "Description of the VM",
        hostname: Text [] "Hostname of the VM",
        zone: Text [] "Availability zone of the VM",
        ssh_public_key: Text [] "SSH public key. Only available if supplied at instance launch time",
        serial_port_enabled: Text [] "Indicates if serial port is enabled for the VM",
        metadata_endpoint: Text [INDEX] "Endpoint used to fetch VM metadata",
    },
    // No example names an endpoint: the examples run in tests, which reach no network.
    examples: ["select instance_id, zone, metadata_endpoint from ycloud_instance_metadata"],
}

const TABLE_NAME: &str = "ycloud_instance_metadata";
const PATH_AND_QUERY: &str = "/computeMetadata/v1/instance/?alt=json&recursive=true";

/// A string member of `object`, empty when absent or not a string (osquery's reading).
fn string_member(object: &Map<String, Value>, key: &str) -> String {
    object
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A string member of the object under `parent`.
fn nested(object: &Map<String, Value>, parent: &str, key: &str) -> String {
    match object.get(parent) {
        Some(Value::Object(inner)) => string_member(inner, key),
        _ => String::new(),
    }
}

/// `projects/<id>/zones/<zone>` gives `<zone>`; anything else is empty.
fn zone_id(zone: &str) -> &str {
    let mut parts = zone.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("projects"), Some(_), Some(_), Some(id)) => id,
        _ => "",
    }
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_with(ctx, rows, &CloudSettings::from_context(ctx))
}

fn generate_with(ctx: &QueryContext, rows: &mut Rows, settings: &CloudSettings) -> TableResult {
    let endpoints = match ctx.eq_texts(Col::metadata_endpoint) {
        Some(named) => named,
        None => {
            if !instance::may_ask(TABLE_NAME, &settings.root, Cloud::Yandex) {
                return Ok(());
            }
            vec![settings.ycloud_endpoint.clone()]
        }
    };
    for endpoint in endpoints {
        let url = format!("{}{PATH_AND_QUERY}", endpoint.trim_end_matches('/'));
        let answer = instance::cancellable(ctx, move |_| {
            instance::get(&instance::agent(), &url, &[("Metadata-Flavor", "Google")])
                .and_then(|text| instance::json_object(&text).map_err(|e| format!("{url}: {e}")))
        });
        let doc = match answer {
            None => return ctx.check(),
            Some(Err(e)) => {
                log::warn!("{TABLE_NAME}: no row for {endpoint}: {e}");
                continue;
            }
            Some(Ok(doc)) => doc,
        };
        let mut row = rows.row();
        row.set(Col::instance_id, string_member(&doc, "id"));
        row.set(Col::folder_id, nested(&doc, "vendor", "folderId"));
        row.set(Col::cloud_id, nested(&doc, "vendor", "cloudId"));
        row.set(Col::zone, zone_id(&string_member(&doc, "zone")));
        row.set(Col::name, string_member(&doc, "name"));
        row.set(Col::description, string_member(&doc, "description"));
        row.set(Col::hostname, string_member(&doc, "hostname"));
        row.set(Col::ssh_public_key, nested(&doc, "attributes", "ssh-keys"));
        row.set(
            Col::serial_port_enabled,
            nested(&doc, "attributes", "serial-port-enable"),
        );
        row.set(Col::metadata_endpoint, endpoint.as_str());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::instance::testing::{
        self, CLOSED, Reply, Seen, Server, collect, write_fixture,
    };
    use super::*;
    use crate::common::testing::{capture_log, within_10s};
    use crate::testing::text;
    use oxquery_table::{Host, Op};

    const INSTANCE: &str = r#"{"attributes":{"serial-port-enable":"1","ssh-keys":"admin:ssh-ed25519 AAAAC3Nza admin@host"},"description":"web front","disks":[],"hostname":"web-1.ru-central1.internal","id":"fhm1a2b3c4d5e6f7g8h9","name":"web-1","networkInterfaces":[],"serviceAccounts":{},"vendor":{"cloudId":"b1gcloud0000000000","folderId":"b1gfolder000000000","identity":{}},"zone":"projects/b1gfolder000000000/zones/ru-central1-a"}"#;

    fn ycloud(seen: &Seen) -> Reply {
        if seen.headers.get("metadata-flavor").map(String::as_str) != Some("Google") {
            return Reply::Answer(403, "Missing Metadata-Flavor header".to_owned());
        }
        if seen.target == PATH_AND_QUERY {
            Reply::Answer(200, INSTANCE.to_owned())
        } else {
            Reply::Answer(404, String::new())
        }
    }

    fn settings(root: &std::path::Path, endpoint: &str) -> CloudSettings {
        testing::settings(root, CLOSED, CLOSED, endpoint, &[])
    }

    fn root(vendor: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(dir.path(), &[("sys/class/dmi/id/sys_vendor", vendor)]);
        dir
    }

    fn scan(
        settings: CloudSettings,
        endpoint: Option<String>,
    ) -> (Vec<Vec<String>>, Vec<(log::Level, String)>) {
        within_10s(move || {
            capture_log(|| {
                let host = Host::default();
                let mut ctx = QueryContext::everything(&SPEC, &host);
                if let Some(e) = endpoint {
                    ctx = ctx.with_constraint(Col::metadata_endpoint, Op::Eq, e);
                }
                let (result, rows) = collect(&ctx, |c, r| generate_with(c, r, &settings));
                result.unwrap();
                rows.iter().map(|r| r.iter().map(text).collect()).collect()
            })
        })
    }

    #[test]
    fn a_yandex_vm_gets_its_metadata() {
        let server = Server::start(ycloud);
        let root = root("Yandex\n");
        let (rows, logged) = scan(settings(root.path(), &server.base), None);
        assert_eq!(
            rows,
            [[
                "fhm1a2b3c4d5e6f7g8h9",
                "b1gfolder000000000",
                "b1gcloud0000000000",
                "web-1",
                "web front",
                "web-1.ru-central1.internal",
                "ru-central1-a",
                "admin:ssh-ed25519 AAAAC3Nza admin@host",
                "1",
                server.base.as_str(),
            ]],
            "{logged:?}"
        );
        assert_eq!(server.seen()[0].headers["metadata-flavor"], "Google");
    }

    #[test]
    fn elsewhere_only_an_endpoint_the_query_names() {
        let server = Server::start(ycloud);
        let root = root("QEMU\n");
        let (rows, logged) = scan(settings(root.path(), &server.base), None);
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == log::Level::Info && m.contains("not asking")),
            "{logged:?}"
        );
        assert!(server.seen().is_empty());

        // Naming the endpoint in the query is asking for it.
        let named = format!("{}/", server.base);
        let (rows, _) = scan(settings(root.path(), CLOSED), Some(named.clone()));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0], "fhm1a2b3c4d5e6f7g8h9");
        assert_eq!(rows[0][9], named);
        assert_eq!(server.seen().len(), 1);
    }

    #[test]
    fn wrong_shapes_give_empty_columns_and_broken_answers_no_row() {
        // Members of the wrong type read as empty, as in osquery.
        let odd = Server::start(|_: &Seen| {
            Reply::Answer(
                200,
                r#"{"id":5,"vendor":"x","attributes":[],"zone":"zones/ru-central1-a"}"#.to_owned(),
            )
        });
        let root = root("Yandex\n");
        let (rows, _) = scan(settings(root.path(), &odd.base), None);
        assert_eq!(rows[0][..9], ["", "", "", "", "", "", "", "", ""]);

        let broken: Vec<(&str, Reply)> = vec![
            ("not JSON", Reply::Answer(200, "{".to_owned())),
            ("not an object", Reply::Answer(200, "[]".to_owned())),
            (
                "truncated",
                Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{\"id\":".to_vec()),
            ),
            ("silent", Reply::Silent),
        ];
        for (what, reply) in broken {
            let reply = std::sync::Mutex::new(Some(reply));
            let server = Server::start(move |_: &Seen| {
                reply.lock().unwrap().take().unwrap_or(Reply::Silent)
            });
            let (rows, logged) = scan(settings(root.path(), &server.base), None);
            assert!(rows.is_empty(), "{what}");
            assert!(
                logged
                    .iter()
                    .any(|(l, m)| *l == log::Level::Warn && m.contains("no row")),
                "{what}: {logged:?}"
            );
        }
    }

    #[test]
    fn zone_ids() {
        assert_eq!(
            zone_id("projects/b1g1slgali4fssudpn26/zones/ru-central1-a"),
            "ru-central1-a"
        );
        assert_eq!(
            zone_id("projects/b1g1slgali4fssudpn26/zones-ru-central1-a"),
            ""
        );
    }
}
