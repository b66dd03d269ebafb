//! The AWS clients against stand-ins on loopback: STS AssumeRole and the record APIs
//! against moto (read back through boto3), the instance metadata service's token flow
//! against a plain-HTTP stand-in.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxquery_remote::aws::testing::{Moto, PlainServer};
use oxquery_remote::aws::{
    AwsEnv, AwsHttp, AwsSettings, CredentialChain, CredentialSettings, ImdsClient, ImdsSettings,
};
use oxquery_remote::testing::Response;

fn settings(credentials: CredentialSettings, imds: ImdsSettings) -> AwsSettings {
    AwsSettings {
        region: "us-east-1".to_owned(),
        profile_name: String::new(),
        fips: false,
        proxy: None,
        debug: true,
        credentials,
        imds,
    }
}

fn no_credentials() -> CredentialSettings {
    CredentialSettings {
        access_key_id: String::new(),
        secret_access_key: String::new(),
        session_token: String::new(),
        profile_name: String::new(),
        sts_arn_role: String::new(),
        sts_region: String::new(),
        sts_session_name: "default".to_owned(),
        sts_timeout: Duration::from_secs(3600),
    }
}

fn imds_at(url: &str, attempts: u32, disable_v1_fallback: bool) -> ImdsSettings {
    ImdsSettings {
        endpoint: url.to_owned(),
        attempts,
        interval: Duration::ZERO,
        disable_v1_fallback,
    }
}

fn moto() -> Option<Moto> {
    oxquery_test_support::require("moto_server", Moto::start())
}

#[test]
fn sts_assume_role_through_moto_gives_the_role_s_credentials() {
    let Some(moto) = moto() else { return };
    let mut credentials = no_credentials();
    credentials.access_key_id = "AKIDBASE".to_owned();
    credentials.secret_access_key = "base-secret".to_owned();
    credentials.sts_arn_role = "arn:aws:iam::123456789012:role/oxquery-logger".to_owned();
    credentials.sts_session_name = "oxquery-test".to_owned();
    credentials.sts_timeout = Duration::from_secs(900);
    let url = moto.url();
    let env = AwsEnv::from_pairs([("AWS_ENDPOINT_URL_STS", url.as_str())]);
    let s = settings(credentials, imds_at("http://127.0.0.1:9", 1, true));
    let chain = CredentialChain::new(s.clone(), env, AwsHttp::new(&s, "test").unwrap());
    let stop = AtomicBool::new(false);
    let c = chain.get(&stop).unwrap();
    assert_ne!(c.access_key_id, "AKIDBASE");
    let token = c.session_token.clone().expect("a session token");
    // Kept until near expiry: the same credentials again.
    assert_eq!(chain.get(&stop).unwrap(), c);
    // moto knows them as the assumed role's session.
    let arn = moto.boto(&["caller", &c.access_key_id, &c.secret_access_key, &token]);
    assert_eq!(
        arn.as_str(),
        Some("arn:aws:sts::123456789012:assumed-role/oxquery-logger/oxquery-test")
    );
}

/// An instance metadata service: tokens when `v2`, credentials for role `r1`.
fn metadata_service(v2: bool) -> PlainServer {
    PlainServer::start(move |r| {
        let token = r.header("x-aws-ec2-metadata-token");
        match (r.method.as_str(), r.path.as_str()) {
            ("PUT", "/latest/api/token") if v2 => {
                assert_eq!(r.header("x-aws-ec2-metadata-token-ttl-seconds"), Some("21600"));
                Response::Body(200, b"tok-123".to_vec())
            }
            ("PUT", _) => Response::Body(403, Vec::new()),
            ("GET", _) if v2 && token != Some("tok-123") => Response::Body(401, Vec::new()),
            ("GET", "/latest/meta-data/iam/security-credentials/") => {
                Response::Body(200, b"r1\n".to_vec())
            }
            ("GET", "/latest/meta-data/iam/security-credentials/r1") => Response::Body(
                200,
                br#"{"Code":"Success","AccessKeyId":"ASIAIMDS","SecretAccessKey":"imds-secret","Token":"imds-token","Expiration":"2099-01-01T00:00:00Z"}"#.to_vec(),
            ),
            _ => Response::Body(404, Vec::new()),
        }
    })
}

#[test]
fn instance_profile_credentials_through_imdsv2() {
    let server = metadata_service(true);
    let env = AwsEnv::from_pairs([("AWS_EC2_METADATA_SERVICE_ENDPOINT", server.url().as_str())]);
    let flags = oxquery_flags::Flags::new();
    let mut imds = ImdsSettings::from_flags(&flags, &env);
    assert_eq!(imds.endpoint, server.url());
    assert_eq!((imds.attempts, imds.interval), (3, Duration::from_secs(3)));
    imds.disable_v1_fallback = true;
    let s = settings(no_credentials(), imds);
    let chain = CredentialChain::new(s.clone(), env, AwsHttp::new(&s, "test").unwrap());
    let c = chain.get(&AtomicBool::new(false)).unwrap();
    assert_eq!(c.access_key_id, "ASIAIMDS");
    assert_eq!(c.session_token.as_deref(), Some("imds-token"));
    let requests = server.requests();
    assert_eq!(requests[0].method, "PUT");
    assert!(
        requests[1..]
            .iter()
            .all(|r| r.method == "GET" && r.header("x-aws-ec2-metadata-token") == Some("tok-123"))
    );
}

#[test]
fn without_a_token_imdsv1_is_used_unless_disabled() {
    let server = metadata_service(false);
    let stop = AtomicBool::new(false);
    let refused = ImdsClient::new(imds_at(&server.url(), 2, true));
    let err = refused.credentials(&stop).unwrap_err();
    assert!(err.contains("IMDSv1 fallback is disabled"), "{err}");
    // Two token attempts, and no request without a token.
    let methods: Vec<String> = server.requests().into_iter().map(|r| r.method).collect();
    assert_eq!(methods, ["PUT", "PUT"]);

    let fallback = ImdsClient::new(imds_at(&server.url(), 1, false));
    let c = fallback.credentials(&stop).unwrap();
    assert_eq!(c.access_key_id, "ASIAIMDS");
    let gets: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(gets.len(), 2);
    assert!(
        gets.iter()
            .all(|r| r.header("x-aws-ec2-metadata-token").is_none())
    );
}

#[test]
fn a_stopping_agent_stops_waiting_for_a_token() {
    let server = metadata_service(false);
    let mut settings = imds_at(&server.url(), 5, true);
    settings.interval = Duration::from_secs(3600);
    let client = ImdsClient::new(settings);
    let stop = Arc::new(AtomicBool::new(false));
    let result = Arc::new(Mutex::new(None));
    let thread = {
        let (stop, result) = (Arc::clone(&stop), Arc::clone(&result));
        std::thread::spawn(move || *result.lock().unwrap() = Some(client.token(&stop)))
    };
    assert!(oxquery_test_support::wait_until(
        Duration::from_secs(10),
        || { !server.requests().is_empty() }
    ));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    thread.join().unwrap();
    assert_eq!(*result.lock().unwrap(), Some(None));
    assert_eq!(server.requests().len(), 1);
}

/// `--aws_enable_proxy` with `--aws_proxy_*`: requests go through the proxy (a CONNECT
/// tunnel with the credentials), and the records still reach moto behind it.
#[test]
fn the_proxy_flags_send_requests_through_the_proxy() {
    use oxquery_remote::aws::kinesis::{Kinesis, PartitionKey};
    use oxquery_remote::aws::testing::forward;
    use oxquery_remote::aws::{AwsClient, RecordStream, proxy_url};
    let Some(moto) = moto() else { return };
    moto.boto(&["create-kinesis", "via-proxy"]);
    let url = moto.url();
    let proxy = PlainServer::start(move |r| {
        if r.method == "CONNECT" {
            return Response::Body(200, Vec::new());
        }
        forward(&url, r, &r.body)
    });
    let mut credentials = no_credentials();
    credentials.access_key_id = "AKIDPROXY".to_owned();
    credentials.secret_access_key = "s".to_owned();
    let mut s = settings(credentials, imds_at("http://127.0.0.1:9", 1, true));
    let port: u32 = proxy.url().rsplit(':').next().unwrap().parse().unwrap();
    s.proxy = Some(proxy_url("http", "127.0.0.1", port, "me", "pw"));
    let http = AwsHttp::new(&s, "test").unwrap();
    let chain = Arc::new(CredentialChain::new(s, AwsEnv::default(), http.clone()));
    let client = AwsClient::new(http, chain, moto.url(), "us-east-1".to_owned(), "kinesis");
    let stream = Kinesis::new(
        client,
        "via-proxy".to_owned(),
        PartitionKey::Fixed("h".into()),
    );
    let answer = stream
        .put(&[b"one".to_vec(), b"two".to_vec()], &AtomicBool::new(false))
        .unwrap();
    assert_eq!(answer, [None, None]);
    let requests = proxy.requests();
    let connect = &requests[0];
    assert_eq!(connect.method, "CONNECT");
    assert_eq!(connect.path, moto.url().trim_start_matches("http://"));
    assert_eq!(
        connect.header("proxy-authorization"),
        Some("Basic bWU6cHc=")
    );
    assert!(
        requests[1..]
            .iter()
            .any(|r| r.header("x-amz-target") == Some("Kinesis_20131202.PutRecords"))
    );
    let data: Vec<String> = moto
        .kinesis_records("via-proxy")
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(data, ["one", "two"]);
}

#[test]
fn assumed_role_credentials_are_fetched_again_before_they_expire() {
    let Some(moto) = moto() else { return };
    let mut credentials = no_credentials();
    credentials.access_key_id = "AKIDBASE".to_owned();
    credentials.secret_access_key = "base-secret".to_owned();
    credentials.sts_arn_role = "arn:aws:iam::123456789012:role/short".to_owned();
    // Two seconds: fetched again once a quarter of that is left.
    credentials.sts_timeout = Duration::from_secs(2);
    let url = moto.url();
    let env = AwsEnv::from_pairs([("AWS_ENDPOINT_URL_STS", url.as_str())]);
    let s = settings(credentials, imds_at("http://127.0.0.1:9", 1, true));
    let chain = CredentialChain::new(s.clone(), env, AwsHttp::new(&s, "test").unwrap());
    let stop = AtomicBool::new(false);
    let first = chain.get(&stop).unwrap();
    assert!(
        oxquery_test_support::wait_until(Duration::from_secs(30), || {
            chain.get(&stop).unwrap().access_key_id != first.access_key_id
        }),
        "the assumed role's credentials were never renewed"
    );
}
