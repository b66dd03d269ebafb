//! `ec2_instance_metadata`: what the EC2 instance metadata service says about this
//! instance, read with an IMDSv2 token (the AWS loggers' client and flags).

use std::sync::atomic::AtomicBool;

use oxquery_remote::aws::ImdsClient;
use oxquery_table::{QueryContext, Rows, TableResult, table};

use super::instance::{self, Cloud, CloudSettings};

table! {
    name: "ec2_instance_metadata",
    description: "Facts the EC2 instance metadata service (IMDS) gives about this instance. The service is asked only on a machine whose hypervisor or DMI data says EC2; elsewhere there are no rows. Requests take an IMDSv2 token first (--aws_imdsv2_request_attempts, --aws_imdsv2_request_interval) and go without one only if --aws_disable_imdsv1_fallback is off; AWS_EC2_METADATA_SERVICE_ENDPOINT overrides the service's address.",
    attributes: [CACHEABLE],
    columns: {
        instance_id: Text [] "EC2 instance ID",
        instance_type: Text [] "EC2 instance type",
        architecture: Text [] "Hardware architecture of this EC2 instance",
        region: Text [] "AWS region in which this instance launched",
        availability_zone: Text [] "Availability zone in which this instance launched",
        local_hostname: Text [] "Private IPv4 DNS hostname of the first interface of this instance",
        local_ipv4: Text [] "Private IPv4 address of the first interface of this instance",
        mac: Text [COLLATE_NOCASE] "MAC address for the first network interface of this EC2 instance",
        security_groups: Text [] "Comma separated list of security group names",
        iam_arn: Text [] "If there is an IAM role associated with the instance",
        ami_id: Text [] "AMI ID used to launch this EC2 instance",
        reservation_id: Text [] "ID of the reservation",
        account_id: Text [] "AWS account ID which owns this EC2 instance",
        ssh_public_key: Text [] "SSH public key. Only available if supplied at instance launch time",
    },
    examples: ["select instance_id, region, availability_zone from ec2_instance_metadata"],
}

const TABLE_NAME: &str = "ec2_instance_metadata";

/// The instance identity document's members and their columns.
const IDENTITY: &[(Col, &str)] = &[
    (Col::instance_id, "instanceId"),
    (Col::instance_type, "instanceType"),
    (Col::local_ipv4, "privateIp"),
    (Col::availability_zone, "availabilityZone"),
    (Col::region, "region"),
    (Col::account_id, "accountId"),
    (Col::architecture, "architecture"),
    (Col::ami_id, "imageId"),
];

/// Plain-text paths under `meta-data/` and their columns.
const TEXTS: &[(Col, &str)] = &[
    (Col::mac, "meta-data/mac"),
    (Col::local_hostname, "meta-data/local-hostname"),
    (Col::ssh_public_key, "meta-data/public-keys/0/openssh-key"),
    (Col::reservation_id, "meta-data/reservation-id"),
    (Col::security_groups, "meta-data/security-groups"),
];

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_with(ctx, rows, &CloudSettings::from_context(ctx))
}

/// A text answer as a value: lines joined by commas (the security groups come one a
/// line), the trailing newline dropped.
fn text_value(answer: &str) -> String {
    answer.lines().collect::<Vec<_>>().join(",")
}

/// What the service answered for the columns used, or why there is no row.
type Answers = Result<Vec<(Col, String)>, String>;

fn fetch(client: &ImdsClient, used: &[bool], stop: &AtomicBool) -> Answers {
    let token = client.token(stop);
    if token.is_none() && !client.v1_fallback_allowed() {
        return Err(
            "no IMDSv2 token, and the IMDSv1 fallback is disabled (--aws_disable_imdsv1_fallback)"
                .to_owned(),
        );
    }
    let token = token.as_deref();
    let mut out = Vec::new();
    if IDENTITY.iter().any(|(c, _)| used[*c as usize]) {
        // The document names the instance: without it there is no row.
        let doc = instance::identity_document(client, token)?;
        for (col, key) in IDENTITY {
            out.push((*col, instance::member_text(&doc, key)));
        }
    }
    if used[Col::iam_arn as usize] {
        // Instances without a role answer 404: the column stays empty, as in osquery.
        match client.get_with("meta-data/iam/info", token) {
            Ok(text) => match instance::json_object(&text) {
                Ok(info) => out.push((
                    Col::iam_arn,
                    instance::member_text(&info, "InstanceProfileArn"),
                )),
                Err(e) => log::warn!("{TABLE_NAME}: meta-data/iam/info: {e}"),
            },
            Err(e) => log::info!("{TABLE_NAME}: {e}"),
        }
    }
    for (col, path) in TEXTS {
        if used[*col as usize] {
            match client.get_with(path, token) {
                Ok(text) => out.push((*col, text_value(&text))),
                Err(e) => log::info!("{TABLE_NAME}: {e}"),
            }
        }
    }
    Ok(out)
}

fn generate_with(ctx: &QueryContext, rows: &mut Rows, settings: &CloudSettings) -> TableResult {
    if !instance::may_ask(TABLE_NAME, &settings.root, Cloud::Ec2) {
        return Ok(());
    }
    let used: Vec<bool> = (0..SPEC.columns.len()).map(|i| ctx.is_used(i)).collect();
    let client = ImdsClient::new(settings.aws.imds.clone());
    let answers = instance::cancellable(ctx, move |stop| fetch(&client, &used, stop));
    match answers {
        None => ctx.check(),
        Some(Err(e)) => {
            log::warn!("{TABLE_NAME}: no row: {e}");
            Ok(())
        }
        Some(Ok(values)) => {
            let mut row = rows.row();
            for (col, value) in values {
                row.set(col, value);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::instance::testing::{
        self, CLOSED, Reply, Seen, Server, collect, write_fixture,
    };
    use super::*;
    use crate::common::testing::{capture_log, within_10s};
    use crate::testing::text;
    use oxquery_table::{Host, Value};

    const TOKEN: &str = "AQAEAHoken==";
    const IDENTITY_DOC: &str = r#"{
  "accountId" : "123456789012",
  "architecture" : "x86_64",
  "availabilityZone" : "us-west-2b",
  "imageId" : "ami-0123456789abcdef0",
  "instanceId" : "i-0b22a22eec53b9321",
  "instanceType" : "t3.micro",
  "pendingTime" : "2026-11-30T12:00:00Z",
  "privateIp" : "10.0.1.17",
  "region" : "us-west-2",
  "version" : "2017-09-30"
}"#;

    /// An IMDSv2 service: tokens from PUT, metadata only for requests carrying one.
    fn imds(seen: &Seen) -> Reply {
        match (seen.method.as_str(), seen.target.as_str()) {
            ("PUT", "/latest/api/token") => {
                if !seen.headers.contains_key("x-aws-ec2-metadata-token-ttl-seconds") {
                    return Reply::Answer(400, String::new());
                }
                Reply::Answer(200, TOKEN.to_owned())
            }
            (_, target) if seen.headers.get("x-aws-ec2-metadata-token").map(String::as_str) != Some(TOKEN) => {
                Reply::Answer(401, format!("no token for {target}"))
            }
            ("GET", "/latest/dynamic/instance-identity/document") => Reply::Answer(200, IDENTITY_DOC.to_owned()),
            ("GET", "/latest/meta-data/iam/info") => Reply::Answer(
                200,
                r#"{"Code":"Success","InstanceProfileArn":"arn:aws:iam::123456789012:instance-profile/web","InstanceProfileId":"AIPAX"}"#.to_owned(),
            ),
            ("GET", "/latest/meta-data/mac") => Reply::Answer(200, "0a:1b:2c:3d:4e:5f".to_owned()),
            ("GET", "/latest/meta-data/local-hostname") => Reply::Answer(200, "ip-10-0-1-17.us-west-2.compute.internal".to_owned()),
            ("GET", "/latest/meta-data/security-groups") => Reply::Answer(200, "web\nssh\n".to_owned()),
            ("GET", "/latest/meta-data/reservation-id") => Reply::Answer(200, "r-0fedcba9876543210".to_owned()),
            _ => Reply::Answer(404, String::new()),
        }
    }

    fn settings(
        root: &std::path::Path,
        endpoint: &str,
        disable_v1_fallback: bool,
    ) -> CloudSettings {
        let mut settings = testing::settings(root, endpoint, CLOSED, CLOSED, &[]);
        settings.aws.imds.disable_v1_fallback = disable_v1_fallback;
        settings
    }

    fn ec2_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(
            dir.path(),
            &[(
                "sys/hypervisor/uuid",
                "ec2e1916-9099-7caf-fd21-012345abcdef\n",
            )],
        );
        dir
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
    fn an_ec2_machine_reads_every_column_with_one_token() {
        let server = Server::start(imds);
        let root = ec2_root();
        let (rows, logged) = scan(settings(root.path(), &server.base, true));
        assert_eq!(rows.len(), 1, "{logged:?}");
        let row = &rows[0];
        let col = |c: Col| text(&row[c as usize]);
        assert_eq!(col(Col::instance_id), "i-0b22a22eec53b9321");
        assert_eq!(col(Col::instance_type), "t3.micro");
        assert_eq!(col(Col::architecture), "x86_64");
        assert_eq!(col(Col::region), "us-west-2");
        assert_eq!(col(Col::availability_zone), "us-west-2b");
        assert_eq!(col(Col::local_ipv4), "10.0.1.17");
        assert_eq!(col(Col::account_id), "123456789012");
        assert_eq!(col(Col::ami_id), "ami-0123456789abcdef0");
        assert_eq!(
            col(Col::iam_arn),
            "arn:aws:iam::123456789012:instance-profile/web"
        );
        assert_eq!(col(Col::mac), "0a:1b:2c:3d:4e:5f");
        assert_eq!(
            col(Col::local_hostname),
            "ip-10-0-1-17.us-west-2.compute.internal"
        );
        assert_eq!(col(Col::security_groups), "web,ssh");
        assert_eq!(col(Col::reservation_id), "r-0fedcba9876543210");
        // No key was given at launch: 404, the column stays NULL.
        assert_eq!(row[Col::ssh_public_key as usize], Value::Null);
        let seen = server.seen();
        let puts: Vec<&Seen> = seen.iter().filter(|s| s.method == "PUT").collect();
        assert_eq!(puts.len(), 1, "one token for the whole scan: {seen:?}");
        assert_eq!(
            puts[0].headers["x-aws-ec2-metadata-token-ttl-seconds"],
            "21600"
        );
        assert!(seen.iter().filter(|s| s.method == "GET").all(|s| {
            s.headers
                .get("x-aws-ec2-metadata-token")
                .map(String::as_str)
                == Some(TOKEN)
        }));
        assert_eq!(seen.iter().filter(|s| s.method == "GET").count(), 7);
    }

    #[test]
    fn only_the_requests_the_used_columns_need() {
        let server = Server::start(imds);
        let root = ec2_root();
        let settings = settings(root.path(), &server.base, true);
        let rows = within_10s(move || {
            let host = Host::default();
            let ctx = QueryContext::new(
                &SPEC,
                Vec::new(),
                oxquery_table::ColumnSet::none(SPEC.columns.len()),
                &host,
            )
            .using([Col::mac]);
            let (result, rows) = collect(&ctx, |c, r| generate_with(c, r, &settings));
            result.unwrap();
            rows
        });
        assert_eq!(text(&rows[0][Col::mac as usize]), "0a:1b:2c:3d:4e:5f");
        let targets: Vec<String> = server.seen().into_iter().map(|s| s.target).collect();
        assert_eq!(targets, ["/latest/api/token", "/latest/meta-data/mac"]);
    }

    #[test]
    fn a_machine_elsewhere_sends_nothing() {
        let server = Server::start(imds);
        let root = tempfile::tempdir().unwrap();
        write_fixture(
            root.path(),
            &[
                ("sys/class/dmi/id/sys_vendor", "QEMU\n"),
                ("sys/hypervisor/uuid", "4f1e4b2a\n"),
            ],
        );
        let (rows, logged) = scan(settings(root.path(), &server.base, false));
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == log::Level::Info && m.contains("not asking")),
            "{logged:?}"
        );
        assert!(server.seen().is_empty(), "{:?}", server.seen());
    }

    #[test]
    fn without_a_token_v1_only_when_allowed() {
        // An IMDSv1-only service: no token endpoint, metadata for anyone.
        let v1 = |seen: &Seen| match (seen.method.as_str(), seen.target.as_str()) {
            ("GET", "/latest/dynamic/instance-identity/document") => {
                Reply::Answer(200, IDENTITY_DOC.to_owned())
            }
            _ => Reply::Answer(404, String::new()),
        };
        let server = Server::start(v1);
        let root = ec2_root();
        let (rows, _) = scan(settings(root.path(), &server.base, false));
        assert_eq!(
            text(&rows[0][Col::instance_id as usize]),
            "i-0b22a22eec53b9321"
        );
        assert!(
            server
                .seen()
                .iter()
                .all(|s| !s.headers.contains_key("x-aws-ec2-metadata-token"))
        );

        let server = Server::start(v1);
        let (rows, logged) = scan(settings(root.path(), &server.base, true));
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == log::Level::Warn && m.contains("imdsv1_fallback")),
            "{logged:?}"
        );
        let seen = server.seen();
        assert!(
            seen.iter().all(|s| s.method == "PUT"),
            "no GET without a token: {seen:?}"
        );
    }

    #[test]
    fn hostile_answers_give_no_row_and_a_warning() {
        let root = ec2_root();
        let answers: Vec<(&str, Reply)> = vec![
            ("not JSON", Reply::Answer(200, "<html>oops</html>".to_owned())),
            ("not an object", Reply::Answer(200, "[\"i-1\"]".to_owned())),
            (
                "truncated",
                Reply::Raw(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\nConnection: close\r\n\r\n{\"instanceId\":"
                        .to_vec(),
                ),
            ),
            (
                "oversized",
                Reply::Answer(200, format!("{{\"x\":\"{}\"}}", "a".repeat(2 << 20))),
            ),
            ("silent", Reply::Silent),
        ];
        for (what, answer) in answers {
            // The token is given; the identity document's answer is the broken one.
            let answer = std::sync::Mutex::new(Some(answer));
            let server = Server::start(move |seen: &Seen| {
                if seen.method == "PUT" {
                    Reply::Answer(200, TOKEN.to_owned())
                } else {
                    answer.lock().unwrap().take().unwrap_or(Reply::Silent)
                }
            });
            let (rows, logged) = scan(settings(root.path(), &server.base, true));
            assert!(rows.is_empty(), "{what}: {rows:?}");
            assert!(
                logged
                    .iter()
                    .any(|(l, m)| *l == log::Level::Warn && m.contains("no row")),
                "{what}: {logged:?}"
            );
        }
    }

    #[test]
    fn a_stopped_query_stops_waiting() {
        let server = Server::start(|seen: &Seen| {
            if seen.method == "PUT" {
                Reply::Answer(200, TOKEN.to_owned())
            } else {
                Reply::Silent
            }
        });
        let root = ec2_root();
        let settings = settings(root.path(), &server.base, true);
        let result = within_10s(move || {
            let host = Host::default();
            let cancel = oxquery_table::Cancel::default();
            cancel.cancel();
            let ctx = QueryContext::everything(&SPEC, &host)
                .with_interrupt(oxquery_table::Interrupt::new(cancel, None));
            let (result, rows) = collect(&ctx, |c, r| generate_with(c, r, &settings));
            (result.is_err(), rows.len())
        });
        assert_eq!(result, (true, 0));
    }

    #[test]
    fn text_answers() {
        assert_eq!(text_value("sg-1\nsg-2\n"), "sg-1,sg-2");
        assert_eq!(text_value("ssh-ed25519 AAAA me\n"), "ssh-ed25519 AAAA me");
        assert_eq!(text_value(""), "");
    }
}
