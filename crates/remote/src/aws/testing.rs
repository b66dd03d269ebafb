//! AWS stand-ins for tests, all on loopback: [`Moto`] runs `moto_server` (the PyPI
//! `moto[server]` package, from the virtualenv `.ci/run` makes) and reads back what it
//! received through boto3, independently of this crate's clients; [`PlainServer`] is a
//! plain-HTTP server answering with the test's handler (the instance metadata service,
//! a throttling Kinesis in front of moto).

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::testing::{Request, Response, answer, read_request};

/// The moto version `.ci/run` installs.
pub const MOTO_VERSION: &str = "5.2.6";

/// boto3 commands the tests read moto's state with (JSON on stdout).
const PEER: &str = r#"
import base64, json, os, sys, time
import boto3
url = os.environ["MOTO_URL"]
def client(name, **kw):
    args = dict(endpoint_url=url, region_name="us-east-1",
                aws_access_key_id="testing", aws_secret_access_key="testing")
    args.update(kw)
    return boto3.client(name, **args)
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "create-kinesis":
    k = client("kinesis")
    k.create_stream(StreamName=args[0], ShardCount=int(args[1]) if len(args) > 1 else 1)
    k.get_waiter("stream_exists").wait(StreamName=args[0])
    print(json.dumps("ok"))
elif cmd == "kinesis-records":
    k = client("kinesis")
    out = []
    shards = k.list_shards(StreamName=args[0])["Shards"]
    for shard in shards:
        it = k.get_shard_iterator(StreamName=args[0], ShardId=shard["ShardId"],
                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            r = k.get_records(ShardIterator=it, Limit=10000)
            for rec in r["Records"]:
                out.append({"data": rec["Data"].decode("utf-8"), "key": rec["PartitionKey"],
                            "shard": shard["ShardId"], "seq": rec["SequenceNumber"]})
            if not r["Records"]:
                break
            it = r.get("NextShardIterator")
    print(json.dumps(out))
elif cmd == "create-firehose":
    s3 = client("s3")
    s3.create_bucket(Bucket=args[1])
    f = client("firehose")
    f.create_delivery_stream(
        DeliveryStreamName=args[0], DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": "arn:aws:s3:::" + args[1]})
    print(json.dumps("ok"))
elif cmd == "s3-text":
    s3 = client("s3")
    objs = s3.list_objects_v2(Bucket=args[0]).get("Contents", [])
    objs.sort(key=lambda o: (o["LastModified"], o["Key"]))
    text = "".join(s3.get_object(Bucket=args[0], Key=o["Key"])["Body"].read().decode("utf-8")
                   for o in objs)
    print(json.dumps(text))
elif cmd == "caller":
    sts = client("sts", aws_access_key_id=args[0], aws_secret_access_key=args[1],
                 aws_session_token=args[2])
    print(json.dumps(sts.get_caller_identity()["Arn"]))
else:
    sys.exit("unknown command " + cmd)
"#;

/// A `moto_server` child on a loopback port; killed when dropped.
pub struct Moto {
    child: Child,
    port: u16,
    python: PathBuf,
}

impl Moto {
    /// The virtualenv holding moto: `$OXQUERY_MOTO_VENV`, else `target/moto-venv` of
    /// this workspace (where `.ci/run` makes it).
    pub fn venv() -> PathBuf {
        match std::env::var_os("OXQUERY_MOTO_VENV") {
            Some(v) => PathBuf::from(v),
            None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/moto-venv"),
        }
    }

    /// Starts moto; `Err` says what is missing (the caller skips or, under CI, fails).
    pub fn start() -> Result<Moto, String> {
        Moto::start_on(free_port())
    }

    /// Starts moto on `port` (a test that has a client wait for AWS picks it first).
    pub fn start_on(port: u16) -> Result<Moto, String> {
        let venv = Moto::venv();
        let server = venv.join("bin/moto_server");
        let python = venv.join("bin/python3");
        if !server.exists() || !python.exists() {
            return Err(format!(
                "moto_server (pip install 'moto[server]=={MOTO_VERSION}' into {}; .ci/run does)",
                venv.display()
            ));
        }
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("moto_server: {e}"))?;
        let moto = Moto {
            child,
            port,
            python,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("moto_server did not listen within 60 s".to_owned());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(moto)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs one boto3 command (see `PEER`) and returns its JSON answer.
    pub fn boto(&self, args: &[&str]) -> Value {
        let run = || {
            Command::new(&self.python)
                .arg("-c")
                .arg(PEER)
                .args(args)
                .env("MOTO_URL", self.url())
                // boto3 must reach moto directly, whatever the machine's proxy settings.
                .env("NO_PROXY", "127.0.0.1")
                .env_remove("HTTP_PROXY")
                .env_remove("HTTPS_PROXY")
                .output()
                .expect("running the venv's python")
        };
        let mut out = run();
        // On a loaded machine moto has been seen refusing a connection just after it
        // first accepted one (CI under load): a refused connection is tried again a few
        // times, anything else fails at once.
        for _ in 0..5 {
            if out.status.success()
                || !String::from_utf8_lossy(&out.stderr).contains("Connection refused")
            {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
            out = run();
        }
        assert!(
            out.status.success(),
            "boto3 {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("boto3 answer is JSON")
    }

    /// The data of every record of a Kinesis stream, in shard and sequence order.
    pub fn kinesis_records(&self, stream: &str) -> Vec<(String, String)> {
        self.boto(&["kinesis-records", stream])
            .as_array()
            .expect("a list")
            .iter()
            .map(|r| {
                (
                    r["data"].as_str().unwrap_or_default().to_owned(),
                    r["key"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on loopback now (the kernel's pick for a socket closed right away).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a loopback port")
}

type Handler = dyn Fn(&Request) -> Response + Send + Sync;

/// A plain-HTTP server on loopback; every request is recorded. Stops when dropped.
pub struct PlainServer {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
}

impl PlainServer {
    pub fn start(handler: impl Fn(&Request) -> Response + Send + Sync + 'static) -> PlainServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let (requests, stop) = (Arc::clone(&requests), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (handler, requests) = (Arc::clone(&handler), Arc::clone(&requests));
                            std::thread::spawn(move || serve(stream, &*handler, &requests));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        PlainServer {
            addr,
            requests,
            stop,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl Drop for PlainServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(mut stream: TcpStream, handler: &Handler, requests: &Mutex<Vec<Request>>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    loop {
        let Some(request) = read_request(&mut stream) else {
            return;
        };
        requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request.clone());
        if !answer(&mut stream, handler(&request)) {
            return;
        }
    }
}

/// Sends `request` on to `base` (moto) as it came, and returns moto's answer.
pub fn forward(base: &str, request: &Request, body: &[u8]) -> Response {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .new_agent();
    let mut out = agent.post(format!("{base}{}", request.path));
    for (name, value) in &request.headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "accept-encoding"
        ) {
            out = out.header(name.as_str(), value.as_str());
        }
    }
    match out.send(body) {
        Ok(mut answer) => {
            let status = answer.status().as_u16();
            let body = answer.body_mut().read_to_vec().unwrap_or_default();
            Response::Body(status, body)
        }
        Err(_) => Response::Close,
    }
}
