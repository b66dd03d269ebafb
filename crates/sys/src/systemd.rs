//! systemd's service manager over D-Bus: the unit list and the per-unit properties the
//! `systemd_units` and `startup_items` tables report.
//!
//! [`Manager::connect_system`] opens the system bus (the address in
//! `DBUS_SYSTEM_BUS_ADDRESS`, else `/run/dbus/system_bus_socket`); [`Manager::connect`]
//! opens any bus address, which is how tests reach a private bus. A host without a system
//! bus gives [`Error::Connect`]; a bus without systemd gives [`Error::Call`] from
//! [`Manager::list_units`]. Callers turn both into "no rows" plus a log line.
//!
//! [`Manager::list_units`] is one `ListUnits` call and returns every unit the manager
//! has loaded: there is no cap on the count. Each [`Manager::property`] is one
//! `org.freedesktop.DBus.Properties.Get` round trip, so callers ask only for what a query
//! reads.
//!
//! With the `systemd-testing` feature, [`testing`] starts a private `dbus-daemon` and
//! serves a fake manager on it.

use std::time::Duration;

use zbus::blocking::Connection;
use zbus::zvariant::{OwnedObjectPath, OwnedValue};

/// Environment variable naming the system bus address.
pub const SYSTEM_BUS_ENV: &str = "DBUS_SYSTEM_BUS_ADDRESS";
/// The system bus address when [`SYSTEM_BUS_ENV`] is unset.
pub const DEFAULT_SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
/// systemd's well-known bus name.
pub const DESTINATION: &str = "org.freedesktop.systemd1";
/// The manager object.
pub const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
pub const MANAGER_INTERFACE: &str = "org.freedesktop.systemd1.Manager";
pub const UNIT_INTERFACE: &str = "org.freedesktop.systemd1.Unit";
pub const SERVICE_INTERFACE: &str = "org.freedesktop.systemd1.Service";
const PROPERTIES_INTERFACE: &str = "org.freedesktop.DBus.Properties";

/// How long one call may wait for its reply (D-Bus's customary default).
const CALL_TIMEOUT: Duration = Duration::from_secs(25);

/// Why the manager could not be asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to D-Bus at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: Box<zbus::Error>,
    },
    #[error("D-Bus call {call} failed: {source}")]
    Call {
        call: String,
        #[source]
        source: Box<zbus::Error>,
    },
}

/// One entry of `ListUnits`, field for field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    /// The unit name, e.g. `ssh.service`.
    pub id: String,
    pub description: String,
    /// Whether the unit's configuration loaded (`loaded`, `not-found`, `masked`, ...).
    pub load_state: String,
    /// High-level state (`active`, `inactive`, `failed`, ...).
    pub active_state: String,
    /// Type-specific state (`running`, `exited`, `dead`, ...).
    pub sub_state: String,
    /// The unit this one follows in state, or empty.
    pub following: String,
    /// The unit's D-Bus object path.
    pub object_path: String,
    /// The queued job's id, 0 without one.
    pub job_id: u32,
    pub job_type: String,
    /// The job's object path (`/` without one).
    pub job_path: String,
}

/// The string properties of a unit object the tables read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitProperty {
    /// The unit file the unit was loaded from.
    FragmentPath,
    /// The file the unit was generated from (e.g. an init script or fstab), if any.
    SourcePath,
    /// Whether the unit file is enabled, disabled, static, masked, ...
    UnitFileState,
    /// The account a service runs as (service units only).
    User,
}

impl UnitProperty {
    pub fn interface(self) -> &'static str {
        match self {
            UnitProperty::User => SERVICE_INTERFACE,
            _ => UNIT_INTERFACE,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            UnitProperty::FragmentPath => "FragmentPath",
            UnitProperty::SourcePath => "SourcePath",
            UnitProperty::UnitFileState => "UnitFileState",
            UnitProperty::User => "User",
        }
    }
}

/// The wire form of one `ListUnits` entry (`(ssssssouso)`).
type WireUnit = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// A connection to a bus on which systemd's manager answers.
pub struct Manager {
    conn: Connection,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager").finish_non_exhaustive()
    }
}

impl Manager {
    /// The system bus address: `DBUS_SYSTEM_BUS_ADDRESS`, else the standard socket.
    pub fn system_bus_address() -> String {
        match std::env::var(SYSTEM_BUS_ENV) {
            Ok(address) if !address.is_empty() => address,
            _ => DEFAULT_SYSTEM_BUS.to_string(),
        }
    }

    /// Connects to the system bus.
    pub fn connect_system() -> Result<Self, Error> {
        Self::connect(&Self::system_bus_address())
    }

    /// Connects to the bus at `address` (a D-Bus address such as `unix:path=/x/bus`).
    pub fn connect(address: &str) -> Result<Self, Error> {
        let connect_error = |source| Error::Connect {
            address: address.to_string(),
            source: Box::new(source),
        };
        let conn = zbus::blocking::connection::Builder::address(address)
            .map_err(connect_error)?
            .method_timeout(CALL_TIMEOUT)
            .build()
            .map_err(connect_error)?;
        Ok(Manager { conn })
    }

    /// Every unit the manager has loaded, in the manager's order.
    pub fn list_units(&self) -> Result<Vec<Unit>, Error> {
        let call_error = |source| Error::Call {
            call: format!("{MANAGER_INTERFACE}.ListUnits"),
            source: Box::new(source),
        };
        let reply = self
            .conn
            .call_method(
                Some(DESTINATION),
                MANAGER_PATH,
                Some(MANAGER_INTERFACE),
                "ListUnits",
                &(),
            )
            .map_err(call_error)?;
        let units: Vec<WireUnit> = reply.body().deserialize().map_err(call_error)?;
        Ok(units
            .into_iter()
            .map(
                |(
                    id,
                    description,
                    load_state,
                    active_state,
                    sub_state,
                    following,
                    object_path,
                    job_id,
                    job_type,
                    job_path,
                )| Unit {
                    id,
                    description,
                    load_state,
                    active_state,
                    sub_state,
                    following,
                    object_path: object_path.as_str().to_string(),
                    job_id,
                    job_type,
                    job_path: job_path.as_str().to_string(),
                },
            )
            .collect())
    }

    /// One string property of the unit at `object_path` (one round trip).
    pub fn property(&self, object_path: &str, property: UnitProperty) -> Result<String, Error> {
        let call_error = |source| Error::Call {
            call: format!(
                "Get {}.{} on {object_path}",
                property.interface(),
                property.name()
            ),
            source: Box::new(source),
        };
        let reply = self
            .conn
            .call_method(
                Some(DESTINATION),
                object_path,
                Some(PROPERTIES_INTERFACE),
                "Get",
                &(property.interface(), property.name()),
            )
            .map_err(call_error)?;
        let value: OwnedValue = reply.body().deserialize().map_err(call_error)?;
        String::try_from(value).map_err(|e| call_error(zbus::Error::Variant(e)))
    }

    /// One string property of `unit` as the tables report it: empty when the unit lacks
    /// it or it cannot be read (logged, except a missing `User`, which most units lack).
    /// Only services have a user, so other units are not asked.
    pub fn unit_property_or_empty(&self, unit: &Unit, property: UnitProperty) -> String {
        if property == UnitProperty::User && !unit.id.ends_with(".service") {
            return String::new();
        }
        self.property(&unit.object_path, property)
            .unwrap_or_else(|e| {
                if property != UnitProperty::User {
                    log::info!("systemd: {}: {e}", unit.id);
                }
                String::new()
            })
    }
}

/// A private `dbus-daemon` and a fake systemd manager to serve on it (tests only).
#[cfg(any(test, feature = "systemd-testing"))]
pub mod testing {
    use std::io::{BufRead, BufReader};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

    use zbus::blocking::Connection;
    use zbus::zvariant::OwnedObjectPath;

    use super::{DESTINATION, MANAGER_PATH, WireUnit};

    /// A `dbus-daemon` of this test alone, listening on a socket in its own temporary
    /// directory. Dropping it kills the daemon and removes the directory, so a failing
    /// test leaves nothing running.
    #[derive(Debug)]
    pub struct PrivateBus {
        child: Child,
        dir: PathBuf,
        address: String,
    }

    impl PrivateBus {
        /// Starts the daemon and waits until it accepts connections.
        pub fn start() -> std::io::Result<Self> {
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "oxquery-dbus-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)?;
            let socket = dir.join("bus");
            let config = dir.join("bus.conf");
            std::fs::write(
                &config,
                format!(
                    "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n \
                     \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                     <busconfig>\n  <type>session</type>\n  <listen>unix:path={}</listen>\n  \
                     <auth>EXTERNAL</auth>\n  <policy context=\"default\">\n    \
                     <allow send_destination=\"*\" eavesdrop=\"true\"/>\n    \
                     <allow eavesdrop=\"true\"/>\n    <allow own=\"*\"/>\n  </policy>\n\
                     </busconfig>\n",
                    socket.display()
                ),
            )?;
            let mut child = match Command::new("dbus-daemon")
                .arg(format!("--config-file={}", config.display()))
                .arg("--nofork")
                .arg("--print-address")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
            {
                Ok(child) => child,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(e);
                }
            };
            // From here on the guard owns the child: any early return kills it.
            let stdout = child.stdout.take();
            let mut bus = PrivateBus {
                child,
                dir,
                address: String::new(),
            };
            let mut line = String::new();
            if let Some(stdout) = stdout {
                BufReader::new(stdout).read_line(&mut line)?;
            }
            let address = line.trim();
            if address.is_empty() {
                return Err(std::io::Error::other("dbus-daemon printed no address"));
            }
            bus.address = address.to_string();
            Ok(bus)
        }

        /// The bus address clients connect to.
        pub fn address(&self) -> &str {
            &self.address
        }

        /// The daemon's process id.
        pub fn pid(&self) -> u32 {
            self.child.id()
        }
    }

    impl Drop for PrivateBus {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// One unit of the fake manager: its `ListUnits` entry and its properties.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct FakeUnit {
        pub unit: super::Unit,
        pub fragment_path: String,
        pub source_path: String,
        pub unit_file_state: String,
        /// `Some` for a unit that also has the Service interface.
        pub user: Option<String>,
    }

    struct FakeManager {
        units: Arc<Vec<FakeUnit>>,
    }

    #[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
    impl FakeManager {
        fn list_units(&self) -> zbus::fdo::Result<Vec<WireUnit>> {
            self.units
                .iter()
                .map(|f| {
                    let u = &f.unit;
                    let path = |p: &str| {
                        OwnedObjectPath::try_from(p.to_string())
                            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
                    };
                    Ok((
                        u.id.clone(),
                        u.description.clone(),
                        u.load_state.clone(),
                        u.active_state.clone(),
                        u.sub_state.clone(),
                        u.following.clone(),
                        path(&u.object_path)?,
                        u.job_id,
                        u.job_type.clone(),
                        path(&u.job_path)?,
                    ))
                })
                .collect()
        }
    }

    struct FakeUnitObject {
        fragment_path: String,
        source_path: String,
        unit_file_state: String,
        gets: Arc<AtomicUsize>,
    }

    #[zbus::interface(name = "org.freedesktop.systemd1.Unit")]
    impl FakeUnitObject {
        #[zbus(property(emits_changed_signal = "false"))]
        fn fragment_path(&self) -> String {
            self.gets.fetch_add(1, Ordering::Relaxed);
            self.fragment_path.clone()
        }
        #[zbus(property(emits_changed_signal = "false"))]
        fn source_path(&self) -> String {
            self.gets.fetch_add(1, Ordering::Relaxed);
            self.source_path.clone()
        }
        #[zbus(property(emits_changed_signal = "false"))]
        fn unit_file_state(&self) -> String {
            self.gets.fetch_add(1, Ordering::Relaxed);
            self.unit_file_state.clone()
        }
    }

    struct FakeService {
        user: String,
        gets: Arc<AtomicUsize>,
    }

    #[zbus::interface(name = "org.freedesktop.systemd1.Service")]
    impl FakeService {
        #[zbus(property(emits_changed_signal = "false"))]
        fn user(&self) -> String {
            self.gets.fetch_add(1, Ordering::Relaxed);
            self.user.clone()
        }
    }

    /// A fake manager being served; dropping it closes its connection.
    pub struct FakeSystemd {
        _conn: Connection,
        gets: Arc<AtomicUsize>,
    }

    impl FakeSystemd {
        /// How many unit properties clients have read so far.
        pub fn property_reads(&self) -> usize {
            self.gets.load(Ordering::Relaxed)
        }
    }

    /// Serves `units` as `org.freedesktop.systemd1` on the bus at `address`: the manager
    /// object answers `ListUnits`, each unit's object path answers property `Get`s. The
    /// connection's own thread serves requests until the returned value is dropped.
    pub fn serve(address: &str, units: Vec<FakeUnit>) -> zbus::Result<FakeSystemd> {
        let units = Arc::new(units);
        let gets = Arc::new(AtomicUsize::new(0));
        let conn = zbus::blocking::connection::Builder::address(address)?
            .serve_at(
                MANAGER_PATH,
                FakeManager {
                    units: Arc::clone(&units),
                },
            )?
            .build()?;
        for f in units.iter() {
            let server = conn.object_server();
            server.at(
                f.unit.object_path.as_str(),
                FakeUnitObject {
                    fragment_path: f.fragment_path.clone(),
                    source_path: f.source_path.clone(),
                    unit_file_state: f.unit_file_state.clone(),
                    gets: Arc::clone(&gets),
                },
            )?;
            if let Some(user) = &f.user {
                server.at(
                    f.unit.object_path.as_str(),
                    FakeService {
                        user: user.clone(),
                        gets: Arc::clone(&gets),
                    },
                )?;
            }
        }
        // Take the well-known name last, so a client that finds it finds every object.
        conn.request_name(DESTINATION)?;
        Ok(FakeSystemd { _conn: conn, gets })
    }

    /// `count` distinct units: every third one a service with a user, the others
    /// sockets and timers; some with a queued job, some following another unit.
    pub fn sample_units(count: usize) -> Vec<FakeUnit> {
        (0..count)
            .map(|i| {
                let kind = ["service", "socket", "timer"][i % 3];
                let id = format!("unit{i:05}.{kind}");
                let has_job = i % 7 == 0;
                FakeUnit {
                    unit: super::Unit {
                        id: id.clone(),
                        description: format!("Sample unit number {i}"),
                        load_state: ["loaded", "not-found", "masked"][i % 3].to_string(),
                        active_state: ["active", "inactive", "failed", "activating"][i % 4]
                            .to_string(),
                        sub_state: ["running", "dead", "exited", "listening", "waiting"][i % 5]
                            .to_string(),
                        following: if i % 11 == 0 {
                            format!("unit{:05}.service", i + 1)
                        } else {
                            String::new()
                        },
                        object_path: format!("/org/freedesktop/systemd1/unit/unit{i:05}_2e{kind}"),
                        job_id: if has_job { 1000 + i as u32 } else { 0 },
                        job_type: if has_job {
                            "start".into()
                        } else {
                            String::new()
                        },
                        job_path: if has_job {
                            format!("/org/freedesktop/systemd1/job/{}", 1000 + i)
                        } else {
                            "/".into()
                        },
                    },
                    fragment_path: format!("/lib/systemd/system/{id}"),
                    source_path: if i % 5 == 0 {
                        format!("/etc/init.d/unit{i:05}")
                    } else {
                        String::new()
                    },
                    unit_file_state: ["enabled", "disabled", "static", "generated"][i % 4]
                        .to_string(),
                    user: (kind == "service").then(|| format!("user{}", i % 13)),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{PrivateBus, sample_units, serve};
    use super::*;

    #[test]
    fn lists_every_unit_of_a_fake_manager_and_reads_properties() {
        let bus = PrivateBus::start().expect("start a private dbus-daemon");
        let units = sample_units(1_203);
        let _server = serve(bus.address(), units.clone()).expect("serve the fake manager");
        let manager = Manager::connect(bus.address()).expect("connect");
        let listed = manager.list_units().expect("ListUnits");
        assert_eq!(listed.len(), units.len());
        for (got, want) in listed.iter().zip(&units) {
            assert_eq!(got, &want.unit);
        }
        for want in units.iter().step_by(97) {
            let path = &want.unit.object_path;
            let get = |p| manager.property(path, p).unwrap();
            assert_eq!(get(UnitProperty::FragmentPath), want.fragment_path);
            assert_eq!(get(UnitProperty::SourcePath), want.source_path);
            assert_eq!(get(UnitProperty::UnitFileState), want.unit_file_state);
            match &want.user {
                Some(user) => assert_eq!(&get(UnitProperty::User), user),
                None => assert!(manager.property(path, UnitProperty::User).is_err()),
            }
        }
    }

    #[test]
    fn the_private_bus_dies_with_its_guard_even_when_a_test_panics() {
        let mut seen = None;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let bus = PrivateBus::start().expect("start a private dbus-daemon");
            seen = Some(bus.pid());
            panic!("a failing test");
        }));
        assert!(outcome.is_err());
        let pid = seen.expect("the bus started");
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }

    #[test]
    fn a_bus_without_systemd_fails_the_call_not_the_connection() {
        let bus = PrivateBus::start().expect("start a private dbus-daemon");
        let manager = Manager::connect(bus.address()).expect("connect");
        assert!(matches!(manager.list_units(), Err(Error::Call { .. })));
    }

    #[test]
    fn a_missing_socket_is_a_connect_error() {
        let dir = std::env::temp_dir().join(format!("oxquery-nobus-{}", std::process::id()));
        let address = format!("unix:path={}/none", dir.display());
        assert!(matches!(
            Manager::connect(&address),
            Err(Error::Connect { .. })
        ));
    }
}
