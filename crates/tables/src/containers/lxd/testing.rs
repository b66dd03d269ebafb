//! A real LXD daemon of the tests' own, shared by the lxd_* tests of this test binary.
//!
//! [`daemon`] starts `lxd` once per process with `LXD_DIR` a fresh directory of the system's
//! temp dir (its socket, database and storage live there, never in `/var/lib/lxd`), and
//! stops it at the process's exit (`lxd shutdown`, which also unmounts the two small tmpfs
//! it mounts inside that directory). No network is created (no bridge, no dnsmasq) and no
//! instance is started, so the host's network and cgroups are left alone.
//!
//! The fixtures, made before the first test gets the daemon and only read by the tests: a
//! `dir` storage pool, an image imported from two tarballs the harness writes (its
//! `metadata.yaml` gives the os, release, description and architecture), a stopped
//! container made from it with a user config key and a read-only disk device, and a
//! trusted client certificate made by `openssl`.
//!
//! [`clustered`] starts a second daemon the same way and makes it a one-member cluster
//! listening on a loopback port, for the cluster tables.

use oxquery_table::{Host, TableSettings};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The running test daemon and what the harness made in it.
#[derive(Debug)]
pub struct TestLxd {
    /// `LXD_DIR`: the daemon's directory.
    pub dir: PathBuf,
    /// The daemon's API socket.
    pub socket: PathBuf,
    /// The `lxc` client.
    pub lxc: PathBuf,
    /// The two tarballs of the image, as imported (metadata, rootfs).
    pub image_files: [PathBuf; 2],
    pub image_alias: String,
    /// The storage pool.
    pub pool: String,
    /// The stopped container and its disk device's host source.
    pub instance: String,
    pub share: PathBuf,
    /// The trusted client certificate (PEM file) and its name.
    pub cert_file: PathBuf,
    pub cert_name: String,
}

impl TestLxd {
    /// `lxc args...` on this daemon: its standard output; it must succeed.
    pub fn lxc(&self, args: &[&str]) -> String {
        run(&self.lxc, &self.dir, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The fingerprint LXD gives an image made of a metadata and a rootfs tarball: the
    /// SHA-256 of the two files one after the other, by `sha256sum`.
    pub fn image_fingerprint(&self) -> String {
        let mut bytes = std::fs::read(&self.image_files[0]).unwrap();
        bytes.extend(std::fs::read(&self.image_files[1]).unwrap());
        let mut child = Command::new("sha256sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_owned()
    }

    /// A host whose tables talk to this daemon.
    pub fn host(&self) -> Host {
        host_for(&self.socket)
    }
}

/// A host whose `--lxd_socket` is `socket`.
pub fn host_for(socket: &Path) -> Host {
    Host {
        settings: TableSettings {
            lxd_socket: Some(socket.to_path_buf()),
            ..TableSettings::DEFAULT
        },
        ..Host::default()
    }
}

// One test lxd (and one clustered) per test binary: starting one takes seconds, and
// every lxd_* test reads the same objects.
static DAEMON: OnceLock<Option<TestLxd>> = OnceLock::new();
static CLUSTERED: OnceLock<Option<Clustered>> = OnceLock::new();
/// The daemons started, for the cleanup at exit: the process, `lxd`, and the directory
/// holding everything of that daemon (its `LXD_DIR` is `lxd` inside).
static CHILDREN: Mutex<Vec<(Child, PathBuf, PathBuf)>> = Mutex::new(Vec::new());

/// The shared daemon, started on first use. `None` (a skip; a failure under CI) when `lxd`,
/// `lxc` or `openssl` is missing or the daemon cannot start here; the reason is printed.
pub fn daemon() -> Option<&'static TestLxd> {
    DAEMON
        .get_or_init(|| {
            let lxd = oxquery_test_support::require_tool("lxd")?;
            let lxc = oxquery_test_support::require_tool("lxc")?;
            let openssl = oxquery_test_support::require_tool("openssl")?;
            oxquery_test_support::require("a test lxd", start(&lxd, &lxc, &openssl))
        })
        .as_ref()
}

/// A second daemon of the tests', made a one-member cluster: its API listens on a free
/// loopback port (`core.https_address`), then `lxc cluster enable`. Apart from the first,
/// since clustering moves member-specific keys (a pool's `source`) out of the objects.
#[derive(Debug)]
pub struct Clustered {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub lxc: PathBuf,
    /// The member's name and its `https://127.0.0.1:<port>` URL.
    pub member: String,
    pub url: String,
}

impl Clustered {
    /// `lxc args...` on this daemon: its standard output; it must succeed.
    pub fn lxc(&self, args: &[&str]) -> String {
        run(&self.lxc, &self.dir, args).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The clustered daemon, started on first use; `None` as for [`daemon`].
pub fn clustered() -> Option<&'static Clustered> {
    CLUSTERED
        .get_or_init(|| {
            let lxd = oxquery_test_support::require_tool("lxd")?;
            let lxc = oxquery_test_support::require_tool("lxc")?;
            oxquery_test_support::require("a clustered test lxd", start_clustered(&lxd, &lxc))
        })
        .as_ref()
}

fn start_clustered(lxd: &Path, lxc: &Path) -> Result<Clustered, String> {
    let top = std::env::temp_dir().join(format!("oxq-lxd-cluster-{}", std::process::id()));
    let dir = spawn(lxd, &top)?;
    // A port the kernel just gave out and took back: free unless someone takes it now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("a loopback port: {e}"))?
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let member = "oxq-node".to_owned();
    run(
        lxc,
        &dir,
        &["config", "set", "core.https_address", &url[8..]],
    )?;
    run(lxc, &dir, &["cluster", "enable", &member])?;
    Ok(Clustered {
        socket: dir.join("unix.socket"),
        dir,
        lxc: lxc.to_owned(),
        member,
        url,
    })
}

/// Proxy variables lxd's HTTP client honours, all pointing at a closed loopback port.
const NO_TRAFFIC_PROXY: [(&str, &str); 4] = [
    ("HTTPS_PROXY", "http://127.0.0.1:9"),
    ("HTTP_PROXY", "http://127.0.0.1:9"),
    ("https_proxy", "http://127.0.0.1:9"),
    ("http_proxy", "http://127.0.0.1:9"),
];

/// Starts `lxd` with `LXD_DIR` `top/lxd` (a fresh `top`), registers it for the cleanup at
/// exit and waits until it answers: its `LXD_DIR`.
fn spawn(lxd: &Path, top: &Path) -> Result<PathBuf, String> {
    let _ = std::fs::remove_dir_all(top);
    let dir = top.join("lxd");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log = std::fs::File::create(top.join("lxd.log")).map_err(|e| e.to_string())?;
    let child = Command::new(lxd)
        .env("LXD_DIR", &dir)
        // At start lxd refreshes its instance types from images.linuxcontainers.org. Sent
        // through a proxy on a closed loopback port, that request fails at once and no
        // name lookup leaves the machine (tests talk to loopback and their own sockets).
        .envs(NO_TRAFFIC_PROXY)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", lxd.display()))?;
    let mut children = CHILDREN.lock().unwrap();
    if children.is_empty() {
        // SAFETY: registers a plain extern "C" function; it runs once at exit.
        unsafe { libc::atexit(stop_at_exit) };
    }
    children.push((child, lxd.to_owned(), top.to_owned()));
    drop(children);
    run(lxd, &dir, &["waitready", "--timeout", "60"]).map_err(|e| {
        let log = std::fs::read_to_string(top.join("lxd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        format!(
            "{e}; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })?;
    Ok(dir)
}

fn run(tool: &Path, lxd_dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(tool)
        .args(args)
        .env("LXD_DIR", lxd_dir)
        // The client's own config (remotes, its certificate) stays in the test's directory.
        .env("LXD_CONF", lxd_dir.with_file_name("lxc-config"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{} {args:?}: {e}", tool.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {args:?}: {}",
            tool.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn tar(dir: &Path, out: &Path, what: &str) -> Result<(), String> {
    let ok = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(what)
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    if ok.success() {
        Ok(())
    } else {
        Err("tar failed".to_owned())
    }
}

fn start(lxd: &Path, lxc: &Path, openssl: &Path) -> Result<TestLxd, String> {
    let top = std::env::temp_dir().join(format!("oxq-lxd-{}", std::process::id()));
    let dir = spawn(lxd, &top)?;
    let lxc_run = |args: &[&str]| run(lxc, &dir, args);

    let pool = "oxq-pool".to_owned();
    lxc_run(&["storage", "create", &pool, "dir"])?;
    lxc_run(&[
        "profile",
        "device",
        "add",
        "default",
        "root",
        "disk",
        "path=/",
        &format!("pool={pool}"),
    ])?;

    // The image: a metadata tarball and an (almost empty) rootfs tarball.
    let img = top.join("image");
    std::fs::create_dir_all(img.join("rootfs/bin")).map_err(|e| e.to_string())?;
    write(&img.join("rootfs/bin/oxq"), "oxquery\n")?;
    write(
        &img.join("metadata.yaml"),
        "architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  architecture: x86_64\n  description: oxquery test image\n  os: oxqos\n  release: \"1.0\"\n",
    )?;
    let meta = top.join("meta.tar");
    let rootfs = top.join("rootfs.tar");
    tar(&img, &meta, "metadata.yaml")?;
    tar(&img.join("rootfs"), &rootfs, ".")?;
    let image_alias = "oxq-image".to_owned();
    lxc_run(&[
        "image",
        "import",
        meta.to_str().unwrap(),
        rootfs.to_str().unwrap(),
        "--alias",
        &image_alias,
    ])?;

    let instance = "oxq-c1".to_owned();
    lxc_run(&["init", &image_alias, &instance, "-c", "user.oxq=yes"])?;
    let share = top.join("share");
    std::fs::create_dir_all(&share).map_err(|e| e.to_string())?;
    lxc_run(&[
        "config",
        "device",
        "add",
        &instance,
        "share",
        "disk",
        &format!("source={}", share.display()),
        "path=/mnt/share",
        "readonly=true",
    ])?;

    let cert_file = top.join("client.crt");
    let key = top.join("client.key");
    let out = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=oxquery-test"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert_file)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!("openssl: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let cert_name = "oxq-client".to_owned();
    lxc_run(&[
        "config",
        "trust",
        "add",
        cert_file.to_str().unwrap(),
        "--name",
        &cert_name,
    ])?;

    Ok(TestLxd {
        socket: dir.join("unix.socket"),
        dir,
        lxc: lxc.to_owned(),
        image_files: [meta, rootfs],
        image_alias,
        pool,
        instance,
        share,
        cert_file,
        cert_name,
    })
}

/// Stops the daemons (`lxd shutdown` unmounts what each mounted) and deletes their
/// directories.
extern "C" fn stop_at_exit() {
    let Ok(mut children) = CHILDREN.lock() else {
        return;
    };
    for (mut child, lxd, top) in children.drain(..) {
        let _ = Command::new(&lxd)
            .args(["shutdown", "--timeout", "30"])
            .env("LXD_DIR", top.join("lxd"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let stopped = oxquery_test_support::wait_until(Duration::from_secs(30), || {
            child.try_wait().is_ok_and(|s| s.is_some())
        });
        if !stopped {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Anything still mounted there (a daemon that did not stop cleanly) stays.
        let _ = std::fs::remove_dir_all(&top);
    }
}

/// A server on a fresh socket in a fresh directory answering `GET target` with the body
/// paired with `target` (status 200), and any other target with LXD's 404 error envelope.
/// For answers the test daemon cannot give (a cluster).
pub fn serve(answers: Vec<(String, String)>) -> (tempfile::TempDir, PathBuf) {
    use std::io::{BufRead, Write};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unix.socket");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let target = request.split(' ').nth(1).unwrap_or("");
            let (status, body) = match answers.iter().find(|(t, _)| t == target) {
                Some((_, body)) => ("200 OK", body.clone()),
                None => (
                    "404 Not Found",
                    r#"{"type":"error","status":"","status_code":0,"operation":"","error_code":404,"error":"not found","metadata":null}"#.to_owned(),
                ),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (dir, path)
}
