//! What the cloud tables share: which cloud the machine is (from firmware facts, before
//! any traffic), their settings, and one bounded HTTP GET that the query can cancel.
//!
//! Identification reads only local files under a root (`/` in use, a fixture in tests):
//! * EC2: `/sys/hypervisor/uuid` starting with `ec2` (osquery's check, Xen instances),
//!   or the DMI product UUID starting with `ec2`, or DMI vendor `Amazon EC2` (Nitro).
//!   Unlike osquery, a machine without the hypervisor file is not probed over the network.
//! * Azure: `/var/log/waagent.log` (osquery's check) or the DMI chassis asset tag every
//!   Azure VM carries.
//! * Yandex Cloud: DMI system or board vendor `Yandex`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use oxquery_flags::{Flags, flag};
use oxquery_remote::aws::{AwsEnv, AwsSettings};
use oxquery_table::QueryContext;
use serde_json::Value;

/// The link-local address of every metadata service.
#[cfg(not(test))]
pub const LINK_LOCAL: &str = "http://169.254.169.254";
/// In this crate's tests a closed loopback port instead: no test (the every-example run
/// included) can reach a real metadata service, even on a cloud machine.
#[cfg(test)]
pub const LINK_LOCAL: &str = "http://127.0.0.1:9";
/// osquery's timeout for a metadata request (connect, send and the whole answer).
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// Metadata answers are a few KiB; this bounds a hostile one.
pub const MAX_ANSWER: u64 = 1 << 20;
/// Azure's chassis asset tag, the same on every Azure VM.
const AZURE_ASSET_TAG: &str = "7783-7084-3265-9085-8269-3286-77";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    Ec2,
    Azure,
    Yandex,
}

/// Where the tables look and whom they ask.
#[derive(Debug, Clone)]
pub struct CloudSettings {
    /// The root the identification files are read under (`/`; a fixture in tests).
    pub root: PathBuf,
    /// The `--aws_*` flags as the AWS loggers read them: the IMDS flags and endpoint
    /// (`AWS_EC2_METADATA_SERVICE_ENDPOINT`), credentials, region, proxy.
    pub aws: AwsSettings,
    /// The AWS variables of the environment (credentials, `AWS_ENDPOINT_URL_EC2`).
    pub env: AwsEnv,
    /// `--azure_metadata_endpoint` (ours).
    pub azure_endpoint: String,
    /// Yandex Cloud's service when the query names no `metadata_endpoint`.
    pub ycloud_endpoint: String,
}

impl CloudSettings {
    /// The settings the process's flags (as the scan sees them) and environment give.
    pub fn from_context(ctx: &QueryContext) -> CloudSettings {
        let host = ctx.host();
        let live = host.live().flags;
        let values = if live.is_empty() {
            &host.instance.flags
        } else {
            &live
        };
        // The typed flags again, so the AWS settings are read exactly as the loggers
        // read them; a scan without flag values (tests) keeps the defaults.
        let mut flags = Flags::new();
        for value in values {
            let _ = flags.set(&value.name, &value.value);
        }
        let env = AwsEnv::from_process();
        let mut aws = AwsSettings::from_flags(&flags, &env);
        if aws.imds.endpoint == oxquery_remote::aws::imds::DEFAULT_ENDPOINT {
            aws.imds.endpoint = LINK_LOCAL.to_owned();
        }
        CloudSettings {
            root: PathBuf::from("/"),
            aws,
            env,
            azure_endpoint: Some(flags.get(flag::azure_metadata_endpoint))
                .filter(|v| !v.is_empty() && *v != "http://169.254.169.254")
                .unwrap_or(LINK_LOCAL)
                .trim_end_matches('/')
                .to_owned(),
            ycloud_endpoint: LINK_LOCAL.to_owned(),
        }
    }
}

/// The first line of a small firmware file under `root`, trimmed; `None` when absent.
fn firmware_fact(root: &Path, relative: &str) -> Option<String> {
    // Kernel-provided files of a few bytes: a bounded plain read is enough.
    let mut text = String::new();
    std::fs::File::open(root.join(relative))
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    Some(text.lines().next().unwrap_or("").trim().to_owned())
}

fn starts_with_ignoring_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

/// `Ok` with the fact that identified `cloud`, or `Err` saying why the machine is not it.
pub fn identify(root: &Path, cloud: Cloud) -> Result<String, String> {
    let dmi = |name: &str| firmware_fact(root, &format!("sys/class/dmi/id/{name}"));
    match cloud {
        Cloud::Ec2 => {
            if let Some(uuid) = firmware_fact(root, "sys/hypervisor/uuid")
                && starts_with_ignoring_case(&uuid, "ec2")
            {
                return Ok(format!("hypervisor uuid {uuid}"));
            }
            if let Some(uuid) = dmi("product_uuid")
                && starts_with_ignoring_case(&uuid, "ec2")
            {
                return Ok(format!("DMI product uuid {uuid}"));
            }
            match dmi("sys_vendor") {
                Some(vendor) if vendor == "Amazon EC2" => Ok(format!("DMI vendor {vendor}")),
                _ => Err(
                    "neither the hypervisor uuid nor DMI (product uuid, vendor) says EC2"
                        .to_owned(),
                ),
            }
        }
        Cloud::Azure => {
            if let Some(tag) = dmi("chassis_asset_tag")
                && tag == AZURE_ASSET_TAG
            {
                return Ok(format!("DMI chassis asset tag {tag}"));
            }
            if root.join("var/log/waagent.log").exists() {
                return Ok("the Azure agent's log /var/log/waagent.log".to_owned());
            }
            Err("no Azure chassis asset tag in DMI and no /var/log/waagent.log".to_owned())
        }
        Cloud::Yandex => {
            for name in ["sys_vendor", "board_vendor"] {
                if let Some(vendor) = dmi(name)
                    && starts_with_ignoring_case(&vendor, "yandex")
                {
                    return Ok(format!("DMI {name} {vendor}"));
                }
            }
            Err("DMI vendors do not say Yandex".to_owned())
        }
    }
}

/// Whether `table` may ask `cloud`'s service: logs at verbose level why not.
pub fn may_ask(table: &str, root: &Path, cloud: Cloud) -> bool {
    match identify(root, cloud) {
        Ok(fact) => {
            log::debug!("{table}: identified by {fact}");
            true
        }
        Err(why) => {
            log::info!("{table}: not asking the metadata service: {why}");
            false
        }
    }
}

/// A plain-HTTP client for a link-local service: no proxy, no redirects, [`TIMEOUT`].
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .proxy(None)
        .max_redirects(0)
        .build()
        .new_agent()
}

/// `GET url` with `headers`: the body of a 200 answer, at most [`MAX_ANSWER`] bytes.
pub fn get(agent: &ureq::Agent, url: &str, headers: &[(&str, &str)]) -> Result<String, String> {
    let mut request = agent.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut answer = request.call().map_err(|e| format!("{url}: {e}"))?;
    if answer.status() != 200 {
        return Err(format!("{url}: answered {}", answer.status()));
    }
    answer
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .map_err(|e| format!("{url}: {e}"))
}

/// A JSON object, or why the text is not one.
pub fn json_object(text: &str) -> Result<serde_json::Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("the answer is JSON but not an object".to_owned()),
        Err(e) => Err(format!("the answer is not JSON: {e}")),
    }
}

/// A member as osquery's JSON readers give it: strings as they are, numbers and booleans
/// in their text form, anything else (absent, null, arrays, objects) empty.
pub fn member_text(object: &serde_json::Map<String, Value>, key: &str) -> String {
    match object.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// The path and query of Azure's compute metadata, with the api-version osquery sends.
pub const AZURE_COMPUTE: &str = "/metadata/instance/compute?api-version=2018-02-01";

/// Azure's compute metadata object, for the two azure tables: `Ok(None)` when the machine
/// is not an Azure VM (nothing asked), `Err` (already warned about) on a failed or
/// malformed answer, or when the query stopped (then the caller returns `ctx.check()`).
pub fn azure_compute(
    table: &str,
    ctx: &QueryContext,
    settings: &CloudSettings,
) -> Option<serde_json::Map<String, Value>> {
    if !may_ask(table, &settings.root, Cloud::Azure) {
        return None;
    }
    let url = format!("{}{AZURE_COMPUTE}", settings.azure_endpoint);
    let answer = cancellable(ctx, move |_| {
        get(&agent(), &url, &[("Metadata", "true")])
            .and_then(|text| json_object(&text).map_err(|e| format!("{url}: {e}")))
    })?;
    match answer {
        Ok(object) => Some(object),
        Err(e) => {
            log::warn!("{table}: no rows: {e}");
            None
        }
    }
}

/// The EC2 instance identity document (`dynamic/instance-identity/document`): the
/// instance's id, region, account... Without it there is no row.
pub fn identity_document(
    client: &oxquery_remote::aws::ImdsClient,
    token: Option<&str>,
) -> Result<serde_json::Map<String, Value>, String> {
    let text = client.get_with("dynamic/instance-identity/document", token)?;
    json_object(&text).map_err(|e| format!("instance identity document: {e}"))
}

pub use crate::fetch::http::cancellable;

#[cfg(test)]
pub mod testing {
    //! A loopback HTTP server speaking whatever the test scripts, recording requests.

    use std::collections::HashMap;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::Duration;

    /// One request as the server read it (header names lower-cased).
    #[derive(Debug, Clone)]
    pub struct Seen {
        pub method: String,
        pub target: String,
        pub headers: HashMap<String, String>,
        pub body: String,
    }

    /// What the server does with a request.
    pub enum Reply {
        /// A complete answer with this status and body.
        Answer(u16, String),
        /// These bytes as they are, then close (truncated or garbled answers).
        Raw(Vec<u8>),
        /// Accept, read the request, never answer (until the server is dropped).
        Silent,
    }

    type Handler = Box<dyn Fn(&Seen) -> Reply + Send + Sync>;

    pub struct Server {
        pub base: String,
        seen: Arc<Mutex<Vec<Seen>>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Server {
        pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let seen = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let handler: Handler = Box::new(handler);
            let thread = {
                let (seen, stop) = (Arc::clone(&seen), Arc::clone(&stop));
                std::thread::spawn(move || serve(&listener, &handler, &seen, &stop))
            };
            Server {
                base,
                seen,
                stop,
                thread: Some(thread),
            }
        }

        pub fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }

    fn serve(
        listener: &TcpListener,
        handler: &Handler,
        seen: &Mutex<Vec<Seen>>,
        stop: &AtomicBool,
    ) {
        // Silent connections stay open until the server stops.
        let mut held = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let Some((request, mut stream)) = read_request(stream) else {
                continue;
            };
            seen.lock().unwrap().push(request.clone());
            match handler(&request) {
                Reply::Answer(status, body) => {
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(body.as_bytes());
                }
                Reply::Raw(bytes) => {
                    let _ = stream.write_all(&bytes);
                }
                Reply::Silent => held.push(stream),
            }
        }
    }

    fn read_request(mut stream: TcpStream) -> Option<(Seen, TcpStream)> {
        let mut data = Vec::new();
        let mut buf = [0u8; 4096];
        while !data.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).ok()?;
            if n == 0 || data.len() > 65536 {
                return None;
            }
            data.extend_from_slice(&buf[..n]);
        }
        let head_end = data.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let text = String::from_utf8_lossy(&data[..head_end]).into_owned();
        let mut lines = text.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_owned();
        let target = first.next()?.to_owned();
        let headers = lines
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let headers: HashMap<String, String> = headers;
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = data[head_end..].to_vec();
        while body.len() < length.min(1 << 20) {
            let n = stream.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&buf[..n]);
        }
        Some((
            Seen {
                method,
                target,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            },
            stream,
        ))
    }

    /// A closed loopback port: the address of services a test does not serve.
    pub const CLOSED: &str = "http://127.0.0.1:9";

    /// Settings for a fixture `root` with these service addresses, one IMDSv2 attempt
    /// and these AWS variables.
    pub fn settings(
        root: &Path,
        imds: &str,
        azure: &str,
        ycloud: &str,
        env: &[(&str, &str)],
    ) -> super::CloudSettings {
        use oxquery_remote::aws::{AwsEnv, AwsSettings, CredentialSettings, ImdsSettings};
        super::CloudSettings {
            root: root.to_owned(),
            aws: AwsSettings {
                region: String::new(),
                profile_name: String::new(),
                fips: false,
                proxy: None,
                debug: false,
                credentials: CredentialSettings {
                    access_key_id: String::new(),
                    secret_access_key: String::new(),
                    session_token: String::new(),
                    profile_name: String::new(),
                    sts_arn_role: String::new(),
                    sts_region: String::new(),
                    sts_session_name: String::new(),
                    sts_timeout: Duration::from_secs(3600),
                },
                imds: ImdsSettings {
                    endpoint: imds.to_owned(),
                    attempts: 1,
                    interval: Duration::ZERO,
                    disable_v1_fallback: true,
                },
            },
            env: AwsEnv::from_pairs(env.iter().copied()),
            azure_endpoint: azure.to_owned(),
            ycloud_endpoint: ycloud.to_owned(),
        }
    }

    /// The result and rows of `generate` under `ctx`.
    pub fn collect(
        ctx: &oxquery_table::QueryContext,
        generate: impl FnOnce(
            &oxquery_table::QueryContext,
            &mut oxquery_table::Rows,
        ) -> oxquery_table::TableResult,
    ) -> (oxquery_table::TableResult, Vec<Vec<oxquery_table::Value>>) {
        let mut rows = oxquery_table::Rows::new(ctx.spec().columns.len(), ctx.used().clone());
        let result = generate(ctx, &mut rows);
        let rows = rows.iter().map(<[oxquery_table::Value]>::to_vec).collect();
        (result, rows)
    }

    /// Writes `files` (relative path, content) under `root`, making directories.
    pub fn write_fixture(root: &Path, files: &[(&str, &str)]) {
        for (relative, content) in files {
            let path = root.join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::write_fixture;
    use super::*;

    #[test]
    fn identification_from_fixture_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // An empty root (no sysfs): no cloud at all.
        for cloud in [Cloud::Ec2, Cloud::Azure, Cloud::Yandex] {
            assert!(identify(root, cloud).is_err(), "{cloud:?}");
        }
        // A plain KVM guest is none of them.
        write_fixture(
            root,
            &[
                ("sys/class/dmi/id/sys_vendor", "QEMU\n"),
                (
                    "sys/class/dmi/id/product_uuid",
                    "3f1e4b2a-0000-4000-8000-000000000000\n",
                ),
                ("sys/class/dmi/id/chassis_asset_tag", "\n"),
            ],
        );
        for cloud in [Cloud::Ec2, Cloud::Azure, Cloud::Yandex] {
            assert!(identify(root, cloud).is_err(), "{cloud:?}");
        }

        let xen = tempfile::tempdir().unwrap();
        write_fixture(
            xen.path(),
            &[(
                "sys/hypervisor/uuid",
                "ec2e1916-9099-7caf-fd21-012345abcdef\n",
            )],
        );
        assert!(
            identify(xen.path(), Cloud::Ec2)
                .unwrap()
                .contains("hypervisor")
        );
        let nitro = tempfile::tempdir().unwrap();
        write_fixture(
            nitro.path(),
            &[("sys/class/dmi/id/sys_vendor", "Amazon EC2\n")],
        );
        assert!(identify(nitro.path(), Cloud::Ec2).is_ok());
        assert!(identify(nitro.path(), Cloud::Azure).is_err());
        let upper = tempfile::tempdir().unwrap();
        write_fixture(
            upper.path(),
            &[("sys/class/dmi/id/product_uuid", "EC2E1916-9099-7CAF\n")],
        );
        assert!(identify(upper.path(), Cloud::Ec2).is_ok());
        // A Xen guest elsewhere: the hypervisor file exists but does not say ec2.
        let other_xen = tempfile::tempdir().unwrap();
        write_fixture(
            other_xen.path(),
            &[("sys/hypervisor/uuid", "4f1e4b2a-1111\n")],
        );
        assert!(identify(other_xen.path(), Cloud::Ec2).is_err());

        let azure = tempfile::tempdir().unwrap();
        write_fixture(
            azure.path(),
            &[(
                "sys/class/dmi/id/chassis_asset_tag",
                "7783-7084-3265-9085-8269-3286-77\n",
            )],
        );
        assert!(identify(azure.path(), Cloud::Azure).is_ok());
        assert!(identify(azure.path(), Cloud::Ec2).is_err());
        let agent = tempfile::tempdir().unwrap();
        write_fixture(agent.path(), &[("var/log/waagent.log", "")]);
        assert!(identify(agent.path(), Cloud::Azure).is_ok());

        let yandex = tempfile::tempdir().unwrap();
        write_fixture(
            yandex.path(),
            &[("sys/class/dmi/id/sys_vendor", "Yandex\n")],
        );
        assert!(identify(yandex.path(), Cloud::Yandex).is_ok());
        assert!(identify(yandex.path(), Cloud::Ec2).is_err());
    }

    #[test]
    fn members_as_osquery_reads_them() {
        let o = json_object(r#"{"s":"x","n":2,"b":true,"a":[1],"o":{},"z":null}"#).unwrap();
        let got: Vec<String> = ["s", "n", "b", "a", "o", "z", "missing"]
            .iter()
            .map(|k| member_text(&o, k))
            .collect();
        assert_eq!(got, ["x", "2", "true", "", "", "", ""]);
        assert!(json_object("[1,2]").is_err());
        assert!(json_object("{\"a\":").is_err());
    }
}
