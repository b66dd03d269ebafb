//! `ec2_instance_tags`: this instance's tags, as osquery gets them: the instance id and
//! region from the instance identity document (IMDS), then the EC2 API's `DescribeTags`
//! filtered on that id, signed with the AWS loggers' credential chain.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use oxquery_remote::aws::{self, AwsClient, AwsHttp, CredentialChain, ImdsClient};
use oxquery_table::{QueryContext, Rows, TableResult, table};

use super::instance::{self, Cloud, CloudSettings};

table! {
    name: "ec2_instance_tags",
    description: "Tags of this EC2 instance, one row each, from the EC2 API's DescribeTags (up to 50, as osquery asks) for the instance id and region of the instance identity document. Asked only on a machine identified as EC2 (see ec2_instance_metadata); elsewhere there are no rows. Needs AWS credentials allowed ec2:DescribeTags (the --aws_* flags, the environment, the profile files or the instance profile, as the AWS loggers find them); AWS_ENDPOINT_URL_EC2 overrides the API's address.",
    attributes: [CACHEABLE],
    columns: {
        instance_id: Text [] "EC2 instance id",
        key: Text [] "Tag key",
        value: Text [] "Tag value",
    },
    examples: ["select key, value from ec2_instance_tags"],
}

const TABLE_NAME: &str = "ec2_instance_tags";

/// The tags of a `DescribeTags` answer: each `<item>` of its `<tagSet>`, with its
/// `<key>` and `<value>` (an empty value may come as `<value/>`).
fn parse_tags(xml: &str) -> Result<Vec<(String, String)>, String> {
    if !xml.contains("<DescribeTagsResponse") {
        return Err("the answer is not a DescribeTagsResponse".to_owned());
    }
    let Some(start) = xml.find("<tagSet>") else {
        // No tags: AWS sends `<tagSet/>`.
        return Ok(Vec::new());
    };
    let set = &xml[start..];
    let set = &set[..set
        .find("</tagSet>")
        .ok_or("the answer's tagSet is not closed (truncated?)")?];
    let mut tags = Vec::new();
    for item in set.split("<item>").skip(1) {
        let item = &item[..item.find("</item>").ok_or("an item is not closed")?];
        let key = aws::credentials::xml_value(item, "key").ok_or("an item without a key")?;
        let value = aws::credentials::xml_value(item, "value").unwrap_or_default();
        tags.push((key, value));
    }
    Ok(tags)
}

/// The instance id and its tags, or why there are none.
fn fetch(
    settings: &CloudSettings,
    stop: &AtomicBool,
) -> Result<(String, Vec<(String, String)>), String> {
    let imds = ImdsClient::new(settings.aws.imds.clone());
    let token = imds.token(stop);
    if token.is_none() && !imds.v1_fallback_allowed() {
        return Err(
            "no IMDSv2 token, and the IMDSv1 fallback is disabled (--aws_disable_imdsv1_fallback)"
                .to_owned(),
        );
    }
    let doc = instance::identity_document(&imds, token.as_deref())?;
    let id = instance::member_text(&doc, "instanceId");
    let region = instance::member_text(&doc, "region");
    if id.is_empty() || region.is_empty() {
        return Err("the instance identity document names no instance id or region".to_owned());
    }
    let http = AwsHttp::new(&settings.aws, env!("CARGO_PKG_VERSION"))?;
    let credentials =
        CredentialChain::new(settings.aws.clone(), settings.env.clone(), http.clone());
    let endpoint = aws::endpoint("ec2", "", &settings.env, &region, settings.aws.fips);
    let client = AwsClient::new(http, Arc::new(credentials), endpoint, region, "ec2");
    let body = format!(
        "Action=DescribeTags&Version=2016-11-15&Filter.1.Name=resource-id&Filter.1.Value.1={}&MaxResults=50",
        aws::form_encode(&id)
    );
    let xml = client
        .call_query(&body, stop)
        .map_err(|e| format!("DescribeTags: {e}"))?;
    let tags = parse_tags(&xml).map_err(|e| format!("DescribeTags: {e}"))?;
    Ok((id, tags))
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_with(ctx, rows, &CloudSettings::from_context(ctx))
}

fn generate_with(ctx: &QueryContext, rows: &mut Rows, settings: &CloudSettings) -> TableResult {
    if !instance::may_ask(TABLE_NAME, &settings.root, Cloud::Ec2) {
        return Ok(());
    }
    let settings = settings.clone();
    match instance::cancellable(ctx, move |stop| fetch(&settings, stop)) {
        None => ctx.check(),
        Some(Err(e)) => {
            log::warn!("{TABLE_NAME}: no rows: {e}");
            Ok(())
        }
        Some(Ok((id, tags))) => {
            for (key, value) in tags {
                let mut row = rows.row();
                row.set(Col::instance_id, id.as_str());
                row.set(Col::key, key);
                row.set(Col::value, value);
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

    const TOKEN: &str = "AQAEAtagtoken==";
    const ID: &str = "i-0b22a22eec53b9321";
    const TAGS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeTagsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId>
    <tagSet>
        <item>
            <resourceId>i-0b22a22eec53b9321</resourceId>
            <resourceType>instance</resourceType>
            <key>Name</key>
            <value>web &amp; api</value>
        </item>
        <item>
            <resourceId>i-0b22a22eec53b9321</resourceId>
            <resourceType>instance</resourceType>
            <key>empty</key>
            <value/>
        </item>
    </tagSet>
</DescribeTagsResponse>"#;

    /// IMDSv2 for the identity document, and the EC2 API at `POST /`.
    fn ec2(api: Reply) -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
        let api = std::sync::Mutex::new(Some(api));
        move |seen: &Seen| match (seen.method.as_str(), seen.target.as_str()) {
            ("PUT", "/latest/api/token") => Reply::Answer(200, TOKEN.to_owned()),
            ("GET", "/latest/dynamic/instance-identity/document") => Reply::Answer(
                200,
                format!(
                    r#"{{"instanceId":"{ID}","region":"us-west-2","accountId":"123456789012"}}"#
                ),
            ),
            ("POST", "/") => api.lock().unwrap().take().unwrap_or(Reply::Silent),
            _ => Reply::Answer(404, String::new()),
        }
    }

    fn scan(root: &std::path::Path, base: &str) -> (Vec<Vec<Value>>, Vec<(log::Level, String)>) {
        let settings = testing::settings(
            root,
            base,
            CLOSED,
            CLOSED,
            &[
                ("AWS_ACCESS_KEY_ID", "AKIDTESTTAGS"),
                ("AWS_SECRET_ACCESS_KEY", "secret"),
                ("AWS_ENDPOINT_URL_EC2", base),
            ],
        );
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

    fn ec2_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_fixture(
            dir.path(),
            &[("sys/class/dmi/id/sys_vendor", "Amazon EC2\n")],
        );
        dir
    }

    #[test]
    fn tags_come_from_a_signed_describe_tags() {
        let server = Server::start(ec2(Reply::Answer(200, TAGS.to_owned())));
        let root = ec2_root();
        let (rows, logged) = scan(root.path(), &server.base);
        let got: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(text).collect()).collect();
        assert_eq!(
            got,
            [[ID, "Name", "web & api"], [ID, "empty", ""]],
            "{logged:?}"
        );
        let seen = server.seen();
        let call = seen.iter().find(|s| s.method == "POST").unwrap();
        assert!(call.body.contains("Action=DescribeTags"), "{}", call.body);
        assert!(
            call.body
                .contains(&format!("Filter.1.Name=resource-id&Filter.1.Value.1={ID}"))
        );
        assert!(call.body.contains("MaxResults=50"));
        let auth = &call.headers["authorization"];
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTESTTAGS/"),
            "{auth}"
        );
        assert!(auth.contains("/us-west-2/ec2/aws4_request"), "{auth}");
        // The identity document was read with the token.
        let doc = seen.iter().find(|s| s.target.contains("identity")).unwrap();
        assert_eq!(doc.headers["x-aws-ec2-metadata-token"], TOKEN);
    }

    #[test]
    fn a_machine_elsewhere_sends_nothing() {
        let server = Server::start(ec2(Reply::Answer(200, TAGS.to_owned())));
        let root = tempfile::tempdir().unwrap();
        let (rows, _) = scan(root.path(), &server.base);
        assert!(rows.is_empty());
        assert!(server.seen().is_empty());
    }

    #[test]
    fn refusals_and_broken_answers_give_no_rows_and_a_warning() {
        let root = ec2_root();
        let answers = [
            (
                "refused",
                Reply::Answer(
                    403,
                    "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>not allowed</Message></Error></Errors></Response>".to_owned(),
                ),
            ),
            ("not XML", Reply::Answer(200, "{}".to_owned())),
            (
                "cut",
                Reply::Answer(200, TAGS[..TAGS.find("</tagSet>").unwrap()].to_owned()),
            ),
        ];
        for (what, answer) in answers {
            let server = Server::start(ec2(answer));
            let (rows, logged) = scan(root.path(), &server.base);
            assert!(rows.is_empty(), "{what}");
            assert!(
                logged
                    .iter()
                    .any(|(l, m)| *l == log::Level::Warn && m.contains("no rows")),
                "{what}: {logged:?}"
            );
            if what == "refused" {
                assert!(
                    logged
                        .iter()
                        .any(|(_, m)| m.contains("UnauthorizedOperation"))
                );
            }
        }
    }

    #[test]
    fn a_silent_metadata_service_gives_no_rows_and_a_warning() {
        // (A silent EC2 API ends by the AWS clients' 16 s timeout, longer than this
        // test's liveness bound; the metadata service's 3 s one is checked here.)
        let server = Server::start(|seen: &Seen| {
            if seen.method == "PUT" {
                Reply::Answer(200, TOKEN.to_owned())
            } else {
                Reply::Silent
            }
        });
        let root = ec2_root();
        let (rows, logged) = scan(root.path(), &server.base);
        assert!(rows.is_empty());
        assert!(
            logged
                .iter()
                .any(|(l, m)| *l == log::Level::Warn && m.contains("no rows")),
            "{logged:?}"
        );
        assert!(server.seen().iter().all(|s| s.method != "POST"));
    }

    #[test]
    fn describe_tags_answers() {
        let empty =
            "<DescribeTagsResponse><requestId>x</requestId><tagSet/></DescribeTagsResponse>";
        assert_eq!(parse_tags(empty), Ok(Vec::new()));
        assert!(parse_tags("<html/>").is_err());
        assert!(
            parse_tags("<DescribeTagsResponse><tagSet><item><value>v</value></item></tagSet>")
                .is_err()
        );
    }
}
