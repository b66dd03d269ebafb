//! `system_controls`: kernel parameters (sysctl), the `/proc/sys` tree, with the value
//! the boot-time configuration (`sysctl.conf`, `sysctl.d`) would set.

use oxquery_sys::fs::FileReader;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

table! {
    name: "system_controls",
    description: "Kernel parameters from /proc/sys with their current value and the value the sysctl configuration files assign.",
    columns: {
        name: Text [INDEX] "Parameter name with dots between levels, e.g. kernel.hostname",
        oid: Text [ADDITIONAL] "Numeric identifier of the parameter; Linux has none, so always NULL (constraining it gives no row)",
        subsystem: Text [ADDITIONAL] "Top-level group of the parameter: kernel, net, vm, fs, ...",
        current_value: Text [] "Value the kernel reports now; NULL when the parameter cannot be read",
        config_value: Text [] "Value the sysctl configuration files assign, if any",
        r#type: Text [] "Data type of the value; the kernel does not say, so always string",
        field_name: Text [OTHER_PLATFORM] "macOS only: name of the field in a structured value",
    },
    examples: [
        "select * from system_controls where name = 'kernel.hostname'",
        "select name, current_value from system_controls where subsystem = 'net'",
    ],
}

/// Directories of drop-in files, highest precedence first: a file name in an earlier
/// directory hides the same name in later ones (sysctl.d(5)).
const DROPIN_DIRS: [&str; 5] = [
    "etc/sysctl.d",
    "run/sysctl.d",
    "usr/local/lib/sysctl.d",
    "usr/lib/sysctl.d",
    "lib/sysctl.d",
];

/// Parses one sysctl configuration file into `config` (later assignments win). Blank
/// lines, `#`/`;` comments and lines without `=` are skipped. A leading `-` (ignore
/// errors) is dropped from the key, and a key written with `/` separators is turned
/// into the dotted form.
fn parse_sysctl_conf(text: &str, config: &mut HashMap<String, String>) {
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let key = key.strip_prefix('-').unwrap_or(key).trim();
        if key.is_empty() {
            continue;
        }
        let key = if key.contains('.') {
            key.to_owned()
        } else {
            key.replace('/', ".")
        };
        config.insert(key, value.trim().to_owned());
    }
}

/// The configuration files `sysctl --system` applies, in order: the drop-in `.conf`
/// files sorted by name (each name taken from the directory with the highest
/// precedence), then `/etc/sysctl.conf`.
fn config_files(root: &Path) -> Vec<PathBuf> {
    let mut by_name: HashMap<String, PathBuf> = HashMap::new();
    for dir in DROPIN_DIRS.iter().rev() {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") {
                by_name.insert(name, entry.path());
            }
        }
    }
    let mut names: Vec<_> = by_name.into_iter().collect();
    names.sort();
    let mut files: Vec<PathBuf> = names.into_iter().map(|(_, p)| p).collect();
    files.push(root.join("etc/sysctl.conf"));
    files
}

/// Every parameter the configuration files under `root` assign.
fn read_config(root: &Path) -> HashMap<String, String> {
    let mut config = HashMap::new();
    for path in config_files(root) {
        if let Ok(bytes) = std::fs::read(&path) {
            parse_sysctl_conf(&String::from_utf8_lossy(&bytes), &mut config);
        }
    }
    config
}

/// One parameter found under the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Control {
    name: String,
    current_value: Option<String>,
}

/// The `/proc/sys` path of a dotted name; `None` for names that cannot be one (empty
/// levels, `/`, `..`), so a constraint can never leave the tree.
fn name_to_relative(name: &str) -> Option<String> {
    if name.is_empty() || name.contains('/') || name.contains('\0') {
        return None;
    }
    let parts: Vec<&str> = name.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(parts.join("/"))
}

struct Walker<'a> {
    reader: FileReader,
    want_value: bool,
    out: &'a mut Vec<Control>,
}

impl Walker<'_> {
    /// Adds the parameter at `path` (named `name`), or every parameter below it.
    fn visit(&mut self, path: &Path, name: &str, depth: usize) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if meta.is_dir() {
            if depth > 32 {
                return;
            }
            let Ok(entries) = std::fs::read_dir(path) else {
                log::info!("system_controls: cannot list {}", path.display());
                return;
            };
            let mut children: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
            children.sort();
            for child in children {
                let child = child.to_string_lossy().into_owned();
                let child_name = if name.is_empty() {
                    child.clone()
                } else {
                    format!("{name}.{child}")
                };
                self.visit(&path.join(&child), &child_name, depth + 1);
            }
            return;
        }
        if !meta.is_file() {
            return;
        }
        let current_value = if self.want_value {
            self.reader
                .read(path)
                .ok()
                .map(|b| String::from_utf8_lossy(b).trim().to_owned())
        } else {
            None
        };
        self.out.push(Control {
            name: name.to_owned(),
            current_value,
        });
    }
}

/// The parameters under `<root>/proc/sys` the constraints ask for: the named ones, or
/// those of the named subsystems, or all.
fn collect(
    root: &Path,
    names: Option<&[String]>,
    subsystems: Option<&[String]>,
    want_value: bool,
) -> Vec<Control> {
    let proc_sys = root.join("proc/sys");
    let mut out = Vec::new();
    let mut walker = Walker {
        reader: FileReader::new(),
        want_value,
        out: &mut out,
    };
    match (names, subsystems) {
        (Some(names), _) => {
            for name in names {
                if let Some(rel) = name_to_relative(name) {
                    walker.visit(&proc_sys.join(rel), name, 0);
                }
            }
        }
        (None, Some(subsystems)) => {
            for sub in subsystems {
                if let Some(rel) = name_to_relative(sub).filter(|r| !r.contains('/')) {
                    walker.visit(&proc_sys.join(rel), sub, 0);
                }
            }
        }
        (None, None) => walker.visit(&proc_sys, "", 0),
    }
    out
}

fn generate_at(root: &Path, ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    if ctx.eq_texts(Col::name).is_none() && ctx.eq_texts(Col::oid).is_some() {
        log::info!("system_controls: Linux parameters have no numeric identifier (oid)");
        return Ok(());
    }
    let names = ctx.eq_texts(Col::name);
    let subsystems = ctx.eq_texts(Col::subsystem);
    let controls = collect(
        root,
        names.as_deref(),
        subsystems.as_deref(),
        ctx.is_used(Col::current_value),
    );
    let config = if ctx.is_used(Col::config_value) {
        read_config(root)
    } else {
        HashMap::new()
    };
    for c in controls {
        let mut row = rows.row();
        if row.wants(Col::subsystem) {
            row.set(Col::subsystem, c.name.split('.').next().unwrap_or_default());
        }
        row.set(Col::current_value, c.current_value);
        row.set(Col::config_value, config.get(&c.name).cloned());
        row.set(Col::r#type, "string");
        row.set(Col::name, c.name);
    }
    Ok(())
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    generate_at(Path::new("/"), ctx, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Op, Value};
    use oxquery_test_support::require_tool;

    fn text(v: &Value) -> Option<String> {
        match v {
            Value::Text(t) => Some(t.clone()),
            Value::Null => None,
            v => panic!("not text: {v:?}"),
        }
    }

    fn fixture() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        for d in [
            "proc/sys/kernel",
            "proc/sys/net/ipv4",
            "etc/sysctl.d",
            "usr/lib/sysctl.d",
        ] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        std::fs::write(p.join("proc/sys/kernel/hostname"), "box\n").unwrap();
        std::fs::write(p.join("proc/sys/kernel/printk"), "4\t4\t1\t7\n").unwrap();
        std::fs::write(p.join("proc/sys/net/ipv4/ip_forward"), "0\n").unwrap();
        std::fs::write(
            p.join("etc/sysctl.conf"),
            "# comment = ignored\n; also a comment\n\n  kernel.hostname = from-conf  \n\
             garbage line\n=nokey\n-net/ipv4/ip_forward=1\n",
        )
        .unwrap();
        // The /etc drop-in hides the /usr/lib one of the same name; sysctl.conf comes last.
        std::fs::write(
            p.join("usr/lib/sysctl.d/10-a.conf"),
            "kernel.printk = 1 1 1 1\nvm.x = lib\n",
        )
        .unwrap();
        std::fs::write(
            p.join("etc/sysctl.d/10-a.conf"),
            "kernel.printk = 3 4 1 3\n",
        )
        .unwrap();
        std::fs::write(
            p.join("etc/sysctl.d/20-b.conf"),
            "kernel.hostname = dropin\n",
        )
        .unwrap();
        std::fs::write(
            p.join("etc/sysctl.d/README"),
            "kernel.hostname = not-a-conf\n",
        )
        .unwrap();
        root
    }

    /// name, subsystem, current_value, config_value of each row.
    type Got = Vec<(String, Option<String>, Option<String>, Option<String>)>;

    fn run(root: &Path, ctx: QueryContext) -> Got {
        let mut rows = Rows::for_context(&ctx);
        generate_at(root, &ctx, &mut rows).unwrap();
        rows.iter()
            .map(|r| {
                (
                    text(&r[Col::name as usize]).unwrap(),
                    text(&r[Col::subsystem as usize]),
                    text(&r[Col::current_value as usize]),
                    text(&r[Col::config_value as usize]),
                )
            })
            .collect()
    }

    #[test]
    fn walks_a_fixture_tree_with_configuration_precedence() {
        let root = fixture();
        let host = Host::default();
        let got = run(root.path(), QueryContext::everything(&SPEC, &host));
        let s = |v: &str| Some(v.to_owned());
        assert_eq!(
            got,
            vec![
                (
                    "kernel.hostname".into(),
                    s("kernel"),
                    s("box"),
                    s("from-conf")
                ),
                (
                    "kernel.printk".into(),
                    s("kernel"),
                    s("4\t4\t1\t7"),
                    s("3 4 1 3")
                ),
                ("net.ipv4.ip_forward".into(), s("net"), s("0"), s("1")),
            ]
        );
    }

    #[test]
    fn name_subsystem_and_oid_constraints() {
        let root = fixture();
        let host = Host::default();
        let got = run(
            root.path(),
            QueryContext::everything(&SPEC, &host).with_constraint(
                Col::name,
                Op::Eq,
                "net.ipv4.ip_forward",
            ),
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].2.as_deref(), Some("0"));
        for hostile in [
            "../../etc/passwd",
            "/etc/passwd",
            "kernel..hostname",
            "",
            "kernel",
        ] {
            let got = run(
                root.path(),
                QueryContext::everything(&SPEC, &host).with_constraint(Col::name, Op::Eq, hostile),
            );
            // A directory name lists what is below it (SQLite then drops those rows).
            assert!(
                got.iter().all(|r| r.0.starts_with("kernel.")),
                "{hostile}: {got:?}"
            );
        }
        let got = run(
            root.path(),
            QueryContext::everything(&SPEC, &host).with_constraint(Col::subsystem, Op::Eq, "net"),
        );
        assert_eq!(got.len(), 1);
        let got = run(
            root.path(),
            QueryContext::everything(&SPEC, &host).with_constraint(Col::oid, Op::Eq, "1.1"),
        );
        assert!(got.is_empty());
    }

    #[test]
    fn hostile_config_text_never_panics() {
        let mut config = HashMap::new();
        let garbage: String = (0..50_000u32)
            .map(|i| char::from((i * 7 % 128) as u8))
            .collect();
        parse_sysctl_conf(&garbage, &mut config);
        parse_sysctl_conf(&"a".repeat(1 << 20), &mut config);
        parse_sysctl_conf("=\n-=\n - = x\n", &mut config);
        assert!(!config.contains_key(""));
    }

    /// `sysctl -n name`, `None` when the kernel has no such key.
    fn sysctl_n(sysctl: &Path, name: &str) -> Option<String> {
        let out = std::process::Command::new(sysctl)
            .args(["-n", name])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    #[test]
    fn live_values_agree_with_sysctl() {
        let Some(sysctl) = require_tool("sysctl") else {
            return;
        };
        let host = Host::default();
        let names = [
            "kernel.hostname",
            "kernel.ostype",
            "kernel.pid_max",
            "vm.swappiness",
            "fs.file-max",
        ];
        let mut compared = 0;
        for name in names {
            let Some(expected) = sysctl_n(&sysctl, name) else {
                continue;
            };
            compared += 1;
            let ctx =
                QueryContext::everything(&SPEC, &host).with_constraint(Col::name, Op::Eq, name);
            let got = run(Path::new("/"), ctx);
            assert_eq!(got.len(), 1, "{name}");
            assert_eq!(got[0].2.as_deref(), Some(expected.as_str()), "{name}");
        }
        // Every Linux kernel has kernel.ostype.
        assert!(compared > 0, "sysctl knows none of {names:?}");
        // A full scan lists what `sysctl -a -N` names (ours may include write-only ones).
        let out = std::process::Command::new(&sysctl)
            .args(["-a", "-N"])
            .output()
            .unwrap();
        assert!(out.status.success(), "sysctl -a -N failed");
        let all = run(
            Path::new("/"),
            QueryContext::everything(&SPEC, &host).using([Col::name]),
        );
        let ours: std::collections::HashSet<String> = all.into_iter().map(|r| r.0).collect();
        let theirs = String::from_utf8_lossy(&out.stdout).into_owned();
        let theirs: Vec<&str> = theirs.lines().filter(|l| !l.contains('/')).collect();
        assert!(!theirs.is_empty());
        let missing: Vec<&&str> = theirs.iter().filter(|n| !ours.contains(**n)).collect();
        assert!(missing.len() * 100 <= theirs.len(), "missing {missing:?}");
    }
}
