//! Helpers the table tests share, so that no table's tests copy another's.

use oxquery_table::{Generator, Host, Op, QueryContext, Rows, TableSpec, Value};
use std::path::Path;
use std::process::Command;

/// Every row `generate` gives under `ctx`, as owned cells.
pub fn rows_of(ctx: &QueryContext, generate: Generator) -> Vec<Vec<Value>> {
    let rows = Rows::collect(ctx, generate).unwrap();
    rows.iter().map(<[Value]>::to_vec).collect()
}

/// A scan with no constraints that reads every column.
pub fn scan_everything(spec: &TableSpec, generate: Generator) -> Rows<'static> {
    let host = Host::default();
    let ctx = QueryContext::everything(spec, &host);
    Rows::collect(&ctx, generate).unwrap()
}

/// The standard output of a tool a test compares with; the tool must succeed.
pub fn tool_stdout(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes the first `len` bytes of `source` to `dir/cut<i>` for each `len` of `lengths`
/// (truncated copies of a real file, for robustness tests).
pub fn write_cut_copies(dir: &Path, source: &[u8], lengths: &[usize]) {
    for (i, &len) in lengths.iter().enumerate() {
        std::fs::write(dir.join(format!("cut{i}")), &source[..len]).unwrap();
    }
}

/// Every row for the files directly in `dir`: a `path LIKE '<dir>/%'` scan of every column.
pub fn rows_in_dir(
    spec: &TableSpec,
    path: impl Into<usize>,
    dir: &Path,
    generate: Generator,
) -> Vec<Vec<Value>> {
    let host = Host::default();
    let ctx = QueryContext::everything(spec, &host).with_constraint(
        path,
        Op::Like,
        format!("{}/%", dir.display()),
    );
    rows_of(&ctx, generate)
}

/// `/bin/ls` with its links resolved: a real ELF file on every host.
pub fn real_elf() -> String {
    let path = std::fs::canonicalize("/bin/ls").unwrap();
    path.to_str().unwrap().to_owned()
}

/// `readelf <option> --wide <path>`, the independent source of the `elf_*` tests.
pub fn readelf(option: &str, path: &str) -> String {
    tool_stdout("readelf", &[option, "--wide", path])
}

/// The fields of the first line `getent <database> <key>` prints (NSS, the independent
/// source of the `etc_*` tests), or `None` when it knows no such key. getent ships with
/// the C library, so a host without it fails the test.
pub fn getent_fields(database: &str, key: &str) -> Option<Vec<String>> {
    let out = Command::new("getent")
        .args([database, key])
        .output()
        .unwrap_or_else(|e| panic!("getent {database} {key}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    Some(line.split_whitespace().map(str::to_owned).collect())
}

/// A cell that must be text.
pub fn text(v: &Value) -> String {
    match v {
        Value::Text(t) => t.clone(),
        v => panic!("not text: {v:?}"),
    }
}

/// A cell that must be text or NULL (`None`).
pub fn text_or_null(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        v => Some(text(v)),
    }
}

/// The cells of `columns` in `row`, each text or NULL: a row to compare with what an
/// independent tool printed.
pub fn texts_or_null<C: Copy + Into<usize>>(row: &[Value], columns: &[C]) -> Vec<Option<String>> {
    columns
        .iter()
        .map(|&c| text_or_null(&row[c.into()]))
        .collect()
}

/// An engine serving just `tables`, for tests that go through SQL (joins, constraints
/// as SQLite hands them over, LIMIT).
pub fn engine(tables: &[&'static oxquery_table::TableDef]) -> oxquery_engine::Engine {
    oxquery_engine::Engine::new(
        tables,
        &oxquery_engine::TableFilter::default(),
        oxquery_engine::instance::current(None),
    )
    .unwrap()
}

/// Makes one file for each of `names` (bytes, UTF-8 or not) in `dir`, the n-th holding
/// n + 1 bytes, and returns each file's full path as bytes.
pub fn files_named(dir: &Path, names: &[&[u8]]) -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let path = dir.join(std::ffi::OsStr::from_bytes(name));
            std::fs::write(&path, vec![b'x'; i + 1]).unwrap();
            path.as_os_str().as_bytes().to_vec()
        })
        .collect()
}

/// A throwaway RPM database built by Debian's `rpm` tools, for the `rpm_*` tables' tests.
pub mod rpm {
    use oxquery_test_support::require_tool;
    use std::ops::ControlFlow;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// What `rpm --queryformat` prints for a tag the header lacks.
    pub const NONE: &str = "(none)";

    /// A package with an epoch, a vendor and a group, its files (a directory, a file
    /// with mode 0640, a link, a subdirectory, a SUID file of another owner), and a
    /// subpackage without files.
    const FULL_SPEC: &str = r#"
Name: oxq-hello
Version: 1.2.3
Release: 4.el9
Epoch: 7
Summary: oxquery test package
License: MIT
Group: Applications/Test
Vendor: oxquery tests
BuildArch: noarch
%description
A package the oxquery tests build.
%package -n oxq-tool
Summary: A tool
%description -n oxq-tool
A tool.
%package -n oxq-meta
Summary: No files
%description -n oxq-meta
No files.
%install
mkdir -p %{buildroot}/usr/share/oxq-hello/sub %{buildroot}/usr/bin
echo hello > %{buildroot}/usr/share/oxq-hello/a.txt
printf abc > %{buildroot}/usr/share/oxq-hello/sub/b.bin
ln -s a.txt %{buildroot}/usr/share/oxq-hello/link
printf '#!/bin/sh\necho tool\n' > %{buildroot}/usr/bin/oxq-tool
%files
%dir /usr/share/oxq-hello
%attr(0640,root,root) /usr/share/oxq-hello/a.txt
/usr/share/oxq-hello/sub
/usr/share/oxq-hello/link
%files -n oxq-tool
%attr(4755,nobody,nogroup) /usr/bin/oxq-tool
%files -n oxq-meta
"#;

    /// A package without epoch, vendor or group.
    const PLAIN_SPEC: &str = r#"
Name: oxq-plain
Version: 0.9~rc1
Release: 1
Summary: oxquery test package
License: MIT
BuildArch: noarch
%description
Plain.
%install
mkdir -p %{buildroot}/etc
echo x=1 > %{buildroot}/etc/oxq-plain.conf
%files
%config(noreplace) /etc/oxq-plain.conf
"#;

    /// A temp directory holding the database (`db/`) of the four test packages.
    pub struct TestDb {
        dir: tempfile::TempDir,
        rpm: PathBuf,
    }

    fn run(cmd: &mut Command) {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    impl TestDb {
        /// Builds the packages with `rpmbuild` and installs them (`--justdb`) into a fresh
        /// SQLite database; `None` (a failure under CI) without the rpm tools.
        pub fn build() -> Option<TestDb> {
            let rpmbuild = require_tool("rpmbuild")?;
            let rpm = require_tool("rpm")?;
            let dir = tempfile::tempdir().unwrap();
            let top = dir.path().join("top");
            let db = dir.path().join("db");
            std::fs::create_dir_all(&db).unwrap();
            let mut packages = Vec::new();
            for (name, spec) in [("full", FULL_SPEC), ("plain", PLAIN_SPEC)] {
                let spec_path = dir.path().join(format!("{name}.spec"));
                std::fs::write(&spec_path, spec).unwrap();
                run(Command::new(&rpmbuild)
                    .env("HOME", dir.path())
                    .arg("--define")
                    .arg(format!("_topdir {}", top.display()))
                    .args(["--quiet", "-bb"])
                    .arg(&spec_path));
            }
            for entry in std::fs::read_dir(top.join("RPMS/noarch")).unwrap() {
                packages.push(entry.unwrap().path());
            }
            assert_eq!(packages.len(), 4, "{packages:?}");
            let test_db = TestDb { dir, rpm };
            run(test_db.rpm_command(&db, None).arg("--initdb"));
            run(test_db
                .rpm_command(&db, None)
                .args(["-i", "--justdb", "--nodeps", "--noscripts"])
                .args(&packages));
            Some(test_db)
        }

        /// The database directory.
        pub fn dir(&self) -> PathBuf {
            self.dir.path().join("db")
        }

        /// The database rpm made in [`TestDb::dir`], as the tables find it.
        pub fn database(&self) -> oxquery_sys::rpmdb::Database {
            oxquery_sys::rpmdb::Database::in_dir(&self.dir()).expect("rpm made no database")
        }

        fn rpm_command(&self, dbpath: &Path, backend: Option<&str>) -> Command {
            let mut cmd = Command::new(&self.rpm);
            cmd.env("HOME", self.dir.path())
                .arg("--dbpath")
                .arg(dbpath)
                .arg("--define")
                .arg(format!("_db_backend {}", backend.unwrap_or("sqlite")));
            cmd
        }

        /// Runs SQL statements on the SQLite database (python3's sqlite3: the tests
        /// damage the database with it).
        pub fn sql(&self, statements: &str) {
            let python = require_tool("python3").expect("python3");
            run(Command::new(python)
                .args([
                    "-c",
                    "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.commit()",
                ])
                .arg(self.dir().join("rpmdb.sqlite"))
                .arg(statements));
        }

        /// The header blob of package `name`.
        pub fn blob(&self, name: &str) -> Vec<u8> {
            let mut blob = Vec::new();
            oxquery_sys::sqlite_file::for_each_blob(
                &self.dir().join("rpmdb.sqlite"),
                "SELECT blob FROM Packages WHERE hnum IN (SELECT hnum FROM Name WHERE key = ?1)",
                &[name],
                |b| {
                    blob = b.to_vec();
                    ControlFlow::Break(())
                },
            )
            .unwrap();
            assert!(!blob.is_empty(), "no package {name}");
            blob
        }

        /// Replaces the header blob of package `name`.
        pub fn set_blob(&self, name: &str, blob: &[u8]) {
            let hex: String = blob.iter().map(|b| format!("{b:02x}")).collect();
            self.sql(&format!(
                "UPDATE Packages SET blob = x'{hex}' \
                 WHERE hnum IN (SELECT hnum FROM Name WHERE key = '{name}')"
            ));
        }

        /// The same headers in a Berkeley DB hash `Packages` file (as rpm < 4.16 kept
        /// them: key = package number, little-endian here; key 0 = the next number), made
        /// by Berkeley DB's own `db_load` with small pages so that headers span overflow
        /// pages. `None` (a failure under CI) without `db5.3_load`.
        pub fn berkeley_db_copy(&self) -> Option<PathBuf> {
            let db_load = require_tool("db5.3_load")?;
            let mut blobs = Vec::new();
            oxquery_sys::sqlite_file::for_each_blob(
                &self.dir().join("rpmdb.sqlite"),
                "SELECT blob FROM Packages ORDER BY hnum",
                &[],
                |b| {
                    blobs.push(b.to_vec());
                    ControlFlow::Continue(())
                },
            )
            .unwrap();
            let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
            let mut dump = String::from(
                "VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize=1024\nHEADER=END\n",
            );
            let next = blobs.len() as u32 + 1;
            dump += &format!(
                " {}\n {}\n",
                hex(&0u32.to_le_bytes()),
                hex(&next.to_le_bytes())
            );
            for (i, blob) in blobs.iter().enumerate() {
                let key = (i as u32 + 1).to_le_bytes();
                dump += &format!(" {}\n {}\n", hex(&key), hex(blob));
            }
            dump += "DATA=END\n";
            let out = self.dir.path().join("bdb");
            std::fs::create_dir_all(&out).unwrap();
            let input = self.dir.path().join("dump.txt");
            std::fs::write(&input, dump).unwrap();
            run(Command::new(db_load)
                .arg("-f")
                .arg(&input)
                .arg(out.join("Packages")));
            Some(out)
        }
    }

    /// `rpm --dbpath <dbpath> <args>` (with `backend`, default sqlite); its output.
    pub fn rpm_query(dbpath: &Path, backend: Option<&str>, args: &[&str]) -> String {
        let rpm = require_tool("rpm").expect("rpm");
        let out = Command::new(rpm)
            .arg("--dbpath")
            .arg(dbpath)
            .arg("--define")
            .arg(format!("_db_backend {}", backend.unwrap_or("sqlite")))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rpm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// An event hub stand-in that reports `statuses` and has no events
/// (`osquery_events`, `osquery_registry`).
#[derive(Debug)]
pub struct EventStatuses(pub Vec<oxquery_table::EventStatus>);

impl oxquery_table::EventReader for EventStatuses {
    fn scan(&self, _: &QueryContext<'_>, _: &mut Rows<'_>) -> oxquery_table::TableResult {
        Ok(())
    }
    fn status(&self) -> Vec<oxquery_table::EventStatus> {
        self.0.clone()
    }
}

/// A process in a mount namespace of its own whose root is a fixture of a small system
/// (see [`Container::start`]), for the `pid_with_namespace` tests.
pub struct Container {
    /// The fixture directory: the process's `/` is `dir.path().join("root")`.
    pub dir: tempfile::TempDir,
    pub process: oxquery_test_support::RootedProcess,
}

impl Container {
    /// What the fixture's files say, for the tests to compare with.
    pub const HOSTS: &str = "10.1.2.3 inside-the-container alias\n";
    pub const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\ncontained:x:4242:4343:Contained:/home/contained:/bin/sh\n";
    pub const GROUP: &str = "root:x:0:\ncontained:x:4343:\n";
    pub const OS_RELEASE: &str = "NAME=\"Contained Linux\"\nID=contained\nVERSION_ID=\"7.8.9\"\nVERSION=\"7.8.9 (Boxed)\"\nVERSION_CODENAME=boxed\n";
    pub const RESOLV_CONF: &str = "nameserver 192.0.2.53\nsearch contained.example\n";
    pub const DATA: &str = "data only the container has\n";

    /// Starts the process with its root filled: `/etc/{hosts,passwd,group,os-release,
    /// resolv.conf}` and `/data/file.txt`. `None` when the test cannot run here (not
    /// root, no busybox: see `RootedProcess::start`).
    pub fn start() -> Option<Container> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        for (name, text) in [
            ("etc/hosts", Self::HOSTS),
            ("etc/passwd", Self::PASSWD),
            ("etc/group", Self::GROUP),
            ("etc/os-release", Self::OS_RELEASE),
            ("etc/resolv.conf", Self::RESOLV_CONF),
            ("data/file.txt", Self::DATA),
        ] {
            std::fs::write(root.join(name), text).unwrap();
        }
        let process = oxquery_test_support::RootedProcess::start(&root)?;
        Some(Container { dir, process })
    }

    pub fn pid(&self) -> i64 {
        self.process.pid()
    }

    /// The process's root as we see it.
    pub fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("root")
    }

    /// Replaces the fixture's `name` (`etc/hosts`) with an absolute link to a host file
    /// holding `secret`, written outside the root: a table must not read it.
    pub fn make_hostile(&self, name: &str, secret: &str) -> std::path::PathBuf {
        let host_file = self.dir.path().join("host-secret");
        std::fs::write(&host_file, secret).unwrap();
        let link = self.root().join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&host_file, &link).unwrap();
        host_file
    }

    /// A query of `spec` constrained to `pid_with_namespace = ` this process.
    pub fn query<'h>(
        &self,
        spec: &'static TableSpec,
        host: &'h Host,
        pid_with_namespace: usize,
    ) -> QueryContext<'h> {
        QueryContext::everything(spec, host).with_constraint(pid_with_namespace, Op::Eq, self.pid())
    }

    /// Every row `generate` makes for [`Container::query`], every column read.
    pub fn rows(
        &self,
        spec: &'static TableSpec,
        pid_with_namespace: usize,
        generate: Generator,
    ) -> Vec<Vec<Value>> {
        let host = Host::default();
        rows_of(&self.query(spec, &host, pid_with_namespace), generate)
    }
}
