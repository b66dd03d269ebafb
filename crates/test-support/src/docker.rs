//! A real Docker daemon of the tests' own, shared by every test of one test binary.
//!
//! [`shared`] starts `dockerd` once per process on a socket, data root, exec root and pid
//! file inside a fresh directory of the system's temp dir (never the system's
//! `/var/run/docker.sock`), and stops it at the process's exit. It runs without touching
//! the host's network configuration: `--iptables=false --ip-forward=false --ip-masq=false
//! --bridge=none`. The cost: no default `bridge` network (containers join a user network
//! the harness makes) and no outbound traffic from the containers (no NAT and no
//! forwarding), which no test needs; published ports still work through docker-proxy.
//!
//! The image comes from no registry: a tarball of Debian's static busybox (`busybox-static`)
//! plus links, loaded with `docker import`. The fixtures: a labelled user network, a
//! labelled named volume, and a running container with labels, environment, a published
//! port, a read-only bind mount, the named volume and the user network, plus a created
//! container that never ran. Tests only read them: they are made before the first test
//! gets the daemon.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The running test daemon and the objects made in it.
#[derive(Debug)]
pub struct TestDocker {
    /// The daemon's API socket.
    pub socket: PathBuf,
    /// The `docker` client the tests compare with.
    pub cli: PathBuf,
    /// The directory holding everything of this daemon.
    pub dir: PathBuf,
    /// The imported busybox image's full id (`sha256:...`) and its tag.
    pub image_id: String,
    pub image_tag: String,
    /// The user network (`bridge` driver), its id and name.
    pub network_id: String,
    pub network_name: String,
    /// The named volume.
    pub volume_name: String,
    /// The host directory bind-mounted read-only into the running container.
    pub bind_source: PathBuf,
    /// The running container's full id and name.
    pub running_id: String,
    pub running_name: String,
    /// A container created but never started.
    pub created_id: String,
    pub created_name: String,
}

/// What [`shared`] remembers for the cleanup at exit.
static DAEMON: OnceLock<Option<TestDocker>> = OnceLock::new();
/// The daemon process, for the cleanup at exit (a `Child` is not `Sync` to share).
static CHILD: Mutex<Option<Child>> = Mutex::new(None);

/// The shared daemon, started on first use. `None` (a skip; a failure under CI) when
/// `dockerd`, `docker` or busybox is missing or the daemon cannot start here; the reason
/// is printed.
pub fn shared() -> Option<&'static TestDocker> {
    DAEMON
        .get_or_init(|| {
            let dockerd = crate::require_tool("dockerd")?;
            let cli = crate::require_tool("docker")?;
            let busybox = ["/bin/busybox", "/usr/bin/busybox"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.exists());
            let Some(busybox) = busybox else {
                return crate::missing("busybox (Debian's busybox-static) is not installed");
            };
            let started = start(&dockerd, &cli, &busybox);
            crate::require("a test dockerd", started)
        })
        .as_ref()
}

impl TestDocker {
    /// `docker -H unix://<socket> args...`: its standard output; it must succeed.
    pub fn cli(&self, args: &[&str]) -> String {
        run_cli(&self.cli, &self.socket, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The JSON `docker inspect` gives for one object.
    pub fn inspect(&self, args: &[&str]) -> String {
        let mut all = vec!["inspect"];
        all.extend_from_slice(args);
        self.cli(&all)
    }
}

fn run_cli(cli: &Path, socket: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cli)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .env("DOCKER_CONFIG", socket.with_file_name("cli-config"))
        .output()
        .map_err(|e| format!("docker {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn start(dockerd: &Path, cli: &Path, busybox: &Path) -> Result<TestDocker, String> {
    let dir = std::env::temp_dir().join(format!("oxq-dockerd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let socket = dir.join("docker.sock");
    let log = std::fs::File::create(dir.join("dockerd.log")).map_err(|e| e.to_string())?;
    let child = Command::new(dockerd)
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .arg("--data-root")
        .arg(dir.join("data"))
        .arg("--exec-root")
        .arg(dir.join("exec"))
        .arg("--pidfile")
        .arg(dir.join("dockerd.pid"))
        .args([
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--bridge=none",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", dockerd.display()))?;
    *CHILD.lock().unwrap() = Some(child);
    // SAFETY: registers a plain extern "C" function; it runs once at exit.
    unsafe { libc::atexit(stop_at_exit) };

    let ready = crate::wait_until(Duration::from_secs(60), || {
        run_cli(
            cli,
            &socket,
            &["version", "--format", "{{.Server.Version}}"],
        )
        .is_ok()
    });
    if !ready {
        let log = std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        return Err(format!(
            "dockerd did not answer within 60 s; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ));
    }
    let docker = |args: &[&str]| run_cli(cli, &socket, args);

    // The image: busybox plus the links the containers run, imported from a tarball.
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).map_err(|e| e.to_string())?;
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(|e| e.to_string())?;
    for applet in ["sh", "sleep", "ps", "cat", "echo", "mkdir"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
            .map_err(|e| e.to_string())?;
    }
    for d in ["tmp", "data"] {
        std::fs::create_dir_all(root.join(d)).map_err(|e| e.to_string())?;
    }
    let tarball = dir.join("rootfs.tar");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    if !tar.success() {
        return Err("tar failed".to_owned());
    }
    let image_tag = "oxquery-busybox:test".to_owned();
    let image_id = docker(&[
        "import",
        "--change",
        "CMD [\"/bin/sh\"]",
        "--change",
        "LABEL org.oxquery.image=busybox",
        "--message",
        "oxquery test image",
        tarball.to_str().unwrap(),
        &image_tag,
    ])?;

    let network_name = "oxq-net".to_owned();
    let network_id = docker(&[
        "network",
        "create",
        "--label",
        "org.oxquery.net=user",
        "--subnet",
        "10.213.7.0/24",
        &network_name,
    ])?;
    let volume_name = "oxq-vol".to_owned();
    docker(&[
        "volume",
        "create",
        "--label",
        "org.oxquery.vol=named",
        &volume_name,
    ])?;
    let bind_source = dir.join("bind-src");
    std::fs::create_dir_all(&bind_source).map_err(|e| e.to_string())?;

    let running_name = "oxq-running".to_owned();
    let running_id = docker(&[
        "run",
        "-d",
        "--name",
        &running_name,
        "--label",
        "org.oxquery.role=running",
        "--label",
        "org.oxquery.empty=",
        "-e",
        "OXQ_GREETING=hello=world",
        "-e",
        "OXQ_EMPTY=",
        "-p",
        "127.0.0.1::8080/tcp",
        "-p",
        "127.0.0.1::5353/udp",
        "-v",
        &format!("{}:/mnt/bind:ro", bind_source.display()),
        "-v",
        &format!("{volume_name}:/data"),
        "--network",
        &network_name,
        &image_tag,
        "sh",
        "-c",
        "echo changed > /tmp/oxq-file && mkdir -p /data/sub && exec sleep 100000",
    ])?;
    let created_name = "oxq-created".to_owned();
    let created_id = docker(&[
        "create",
        "--name",
        &created_name,
        "--label",
        "org.oxquery.role=created",
        "--network",
        &network_name,
        &image_tag,
        "sleep",
        "1",
    ])?;
    // The running container's file change exists once its shell ran.
    let changed = crate::wait_until(Duration::from_secs(30), || {
        docker(&["diff", &running_id]).is_ok_and(|d| d.contains("/tmp/oxq-file"))
    });
    if !changed {
        return Err("the running container never wrote /tmp/oxq-file".to_owned());
    }
    Ok(TestDocker {
        socket,
        cli: cli.to_owned(),
        dir,
        image_id,
        image_tag,
        network_id,
        network_name,
        volume_name,
        bind_source,
        running_id,
        running_name,
        created_id,
        created_name,
    })
}

/// Removes the containers, network and volume, stops the daemon and deletes its directory.
extern "C" fn stop_at_exit() {
    let Ok(mut child) = CHILD.lock() else { return };
    let Some(mut child) = child.take() else {
        return;
    };
    if let Some(Some(d)) = DAEMON.get() {
        let _ = run_cli(
            &d.cli,
            &d.socket,
            &["rm", "-f", "-v", &d.running_id, &d.created_id],
        );
        let _ = run_cli(&d.cli, &d.socket, &["network", "rm", &d.network_id]);
        let _ = run_cli(&d.cli, &d.socket, &["volume", "rm", &d.volume_name]);
    }
    let pid = child.id() as libc::pid_t;
    // SAFETY: signals our own child.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let stopped = crate::wait_until(Duration::from_secs(20), || {
        child.try_wait().is_ok_and(|s| s.is_some())
    });
    if !stopped {
        let _ = child.kill();
        let _ = child.wait();
    }
    let dir = std::env::temp_dir().join(format!("oxq-dockerd-{}", std::process::id()));
    // The daemon unmounts its overlay layers as it stops; anything still mounted stays.
    let _ = std::fs::remove_dir_all(&dir);
}
