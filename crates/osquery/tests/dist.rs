//! What the packages ship from `dist/` (issue 16), checked against the built programs:
//! every query of our packs runs on our tables, `osquery.example.conf` passes
//! `--config_check` and names each pack where the packages install it, and `osqueryctl
//! config-check` checks the configuration the service would load.

// This binary uses a few of the daemon helpers (shell_support allows its own).
#[allow(dead_code)]
mod daemon_support;
mod shell_support;

use daemon_support::Sandbox;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the packages install the packs (osquery's Linux path, which configs name).
const INSTALLED_PACKS: &str = "/usr/share/osquery/packs/";

/// The packs, named as osquery names its own so existing configs find them.
const PACKS: [&str; 5] = [
    "hardware-monitoring",
    "incident-response",
    "it-compliance",
    "osquery-monitoring",
    "vuln-management",
];

/// The keys osquery reads in a pack and in one of its queries.
const PACK_KEYS: [&str; 5] = ["platform", "version", "shard", "discovery", "queries"];
const QUERY_KEYS: [&str; 10] = [
    "query",
    "interval",
    "description",
    "value",
    "platform",
    "version",
    "snapshot",
    "removed",
    "shard",
    "denylist",
];

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dist")
}

fn pack_path(name: &str) -> PathBuf {
    dist().join("packs").join(format!("{name}.conf"))
}

fn read_pack(name: &str) -> serde_json::Map<String, Value> {
    let path = pack_path(name);
    let text = std::fs::read_to_string(&path).unwrap();
    // Plain JSON (no comments), so that any tool can read the packs.
    match serde_json::from_str(&text) {
        Ok(Value::Object(pack)) => pack,
        other => panic!("{}: not a JSON object: {other:?}", path.display()),
    }
}

#[test]
fn dist_ships_exactly_the_five_packs() {
    let mut found: Vec<String> = std::fs::read_dir(dist().join("packs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let want: Vec<String> = PACKS.iter().map(|p| format!("{p}.conf")).collect();
    assert_eq!(found, want);
}

/// Each query of each pack is well formed and runs through `osqueryi --json` without an
/// SQL error (an unknown table or column, a missing required constraint, bad syntax).
#[test]
fn every_pack_query_runs_on_our_tables() {
    let mut failures = Vec::new();
    let mut ran = 0;
    for name in PACKS {
        let pack = read_pack(name);
        for key in pack.keys() {
            assert!(
                PACK_KEYS.contains(&key.as_str()),
                "{name}: unknown key {key}"
            );
        }
        if let Some(platform) = pack.get("platform") {
            assert_eq!(platform, "linux", "{name}: platform");
        }
        let queries = pack["queries"].as_object().expect("queries is an object");
        assert!(queries.len() >= 5, "{name}: only {} queries", queries.len());
        for (query_name, q) in queries {
            let q = q.as_object().expect("a query is an object");
            for key in q.keys() {
                assert!(
                    QUERY_KEYS.contains(&key.as_str()),
                    "{name}/{query_name}: unknown key {key}"
                );
            }
            let interval = q["interval"].as_u64().unwrap_or(0);
            assert!(interval > 0, "{name}/{query_name}: interval {interval}");
            let description = q["description"].as_str().unwrap_or("");
            assert!(
                !description.is_empty(),
                "{name}/{query_name}: no description"
            );
            let sql = q["query"].as_str().expect("query is a string");
            let out = Command::new(shell_support::BIN)
                .args(["--flagfile=/dev/null", "--json", sql])
                .output()
                .unwrap();
            ran += 1;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let rows = serde_json::from_str::<Value>(&stdout);
            if !out.status.success() || !matches!(rows, Ok(Value::Array(_))) {
                failures.push(format!(
                    "{name}/{query_name}: {} {}\n  {sql}",
                    out.status,
                    stderr.trim()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(ran >= 60, "only {ran} queries");
}

/// The pack lines of the example config: (pack name, path, enabled).
fn example_pack_lines(text: &str) -> Vec<(String, String, bool)> {
    text.lines()
        .filter(|l| l.contains(INSTALLED_PACKS))
        .map(|l| {
            let parts: Vec<&str> = l.split('"').collect();
            assert_eq!(parts.len(), 5, "a pack line is \"name\": \"path\": {l}");
            let enabled = !l.trim_start().starts_with("//");
            (parts[1].to_owned(), parts[3].to_owned(), enabled)
        })
        .collect()
}

fn example() -> String {
    std::fs::read_to_string(dist().join("osquery.example.conf")).unwrap()
}

/// The example with the packs read from `dist/packs`, and with every pack enabled when
/// `all` (its commented pack lines are meant to be enabled by removing the `//`).
fn example_here(all: bool) -> String {
    let text = example();
    let text = if all {
        text.lines()
            .map(|l| match l.trim_start().strip_prefix("// ,") {
                Some(rest) if l.contains(INSTALLED_PACKS) => format!(",{rest}"),
                _ => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        text
    };
    let here = format!("{}/", dist().join("packs").display());
    text.replace(INSTALLED_PACKS, &here)
}

#[test]
fn the_example_config_names_every_shipped_pack_at_its_installed_path() {
    let lines = example_pack_lines(&example());
    let names: BTreeSet<&str> = lines.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, PACKS.into_iter().collect(), "{lines:?}");
    for (name, path, _) in &lines {
        assert_eq!(*path, format!("{INSTALLED_PACKS}{name}.conf"));
        assert!(pack_path(name).is_file(), "{name}");
    }
    // The daemon's own health is on as shipped; the rest are the administrator's choice.
    let enabled: Vec<&str> = lines.iter().filter(|l| l.2).map(|l| l.0.as_str()).collect();
    assert_eq!(enabled, ["osquery-monitoring"]);
}

/// `osqueryd --config_check --config_check_strict` accepts the example as shipped and
/// with every pack enabled: it parses, every query it would run prepares, and nothing
/// in it is ignored or given twice.
#[test]
fn the_example_config_passes_the_strict_config_check() {
    for all in [false, true] {
        let s = Sandbox::new();
        s.write_config(&example_here(all));
        let out = s.run(&["--config_check", "--config_check_strict"]);
        assert!(
            out.status.success(),
            "all packs: {all}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// With every pack enabled, the schedule holds the example's query and each pack query
/// (`pack_<pack>_<query>`): the packs load, none is skipped as another platform's.
#[test]
fn the_example_config_schedules_every_pack_query() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("osquery.conf");
    std::fs::write(&config, example_here(true)).unwrap();
    let config_flag = format!("--config_path={}", config.display());
    let scheduled = shell_support::ok(&[
        "--flagfile=/dev/null",
        &config_flag,
        "--list",
        "--header=false",
        "select name from osquery_schedule order by name",
    ]);
    let scheduled: BTreeSet<&str> = scheduled.lines().collect();
    let mut want = BTreeSet::from(["system_inventory".to_owned()]);
    for name in PACKS {
        for query in read_pack(name)["queries"].as_object().unwrap().keys() {
            want.insert(format!("pack_{name}_{query}"));
        }
    }
    let want: BTreeSet<&str> = want.iter().map(String::as_str).collect();
    assert_eq!(scheduled, want);
}

/// An install root holding what `osqueryctl config-check` reads: the program (a link
/// to the built one), the package's environment file and, when given, the config.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new(config: Option<&str>) -> Root {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for sub in ["usr/bin", "etc/default", "etc/osquery", "usr/share/osquery"] {
            std::fs::create_dir_all(p.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(daemon_support::BIN, p.join("usr/bin/osqueryd")).unwrap();
        std::fs::copy(
            dist().join("osqueryd.default"),
            p.join("etc/default/osqueryd"),
        )
        .unwrap();
        if let Some(text) = config {
            std::fs::write(p.join("etc/osquery/osquery.conf"), text).unwrap();
        }
        Root { dir }
    }

    /// Runs `osqueryctl ARGS` against this root; (exit code, stdout + stderr).
    fn osqueryctl(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new("sh")
            .arg(dist().join("osqueryctl"))
            .args(args)
            .env("OSQUERYCTL_ROOT", self.dir.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    fn flags_file(&self) -> PathBuf {
        self.dir.path().join("etc/osquery/osquery.flags")
    }
}

#[test]
fn osqueryctl_config_check_loads_the_services_config_and_flags() {
    // The example as an administrator would copy it: it loads.
    let root = Root::new(Some(&example_here(false)));
    let (code, text) = root.osqueryctl(&["config-check"]);
    assert_eq!(code, 0, "{text}");

    // The flags file is read too: a flag it sets that makes the config fail to load
    // (a config plugin that does not exist) fails the check.
    std::fs::write(root.flags_file(), "--config_plugin=nonesuch\n").unwrap();
    let (code, text) = root.osqueryctl(&["config-check"]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("nonesuch"), "{text}");

    // A config that does not parse: osqueryd's exit status and message come through.
    let root = Root::new(Some("{\"schedule\": "));
    let (code, text) = root.osqueryctl(&["config-check"]);
    assert_eq!(code, 1, "{text}");
    assert!(!text.is_empty());
}

#[test]
fn osqueryctl_without_a_config_points_at_the_example() {
    let root = Root::new(None);
    let (code, text) = root.osqueryctl(&["config-check"]);
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains("No osquery config file found at")
            && text.contains("/usr/share/osquery/osquery.example.conf"),
        "{text}"
    );
    // A flags file alone is enough: it may name a config plugin that needs no file.
    std::fs::write(root.flags_file(), "").unwrap();
    let (code, text) = root.osqueryctl(&["config-check"]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn osqueryctl_usage_and_a_missing_service() {
    let root = Root::new(None);
    let (code, text) = root.osqueryctl(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("{start|stop|restart|status|config-check|clean}"),
        "{text}"
    );
    let (code, _) = root.osqueryctl(&["frobnicate"]);
    assert_eq!(code, 2);
    // No unit file in this root: status says the service is not installed (LSB 6).
    let (code, text) = root.osqueryctl(&["status"]);
    assert_eq!(code, 6, "{text}");
    assert!(text.contains("not installed"), "{text}");
}
