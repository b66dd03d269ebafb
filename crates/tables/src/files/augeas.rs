//! `augeas`: configuration files as Augeas parses them into a tree, one row per node.
//! Built only with the `augeas` feature (it links libaugeas).
//!
//! `node =` takes Augeas path expressions; `path = F` selects the file's node and every
//! node below it (`/files{F}` and `/files{F}//*`). Without either constraint every file
//! the lenses know is loaded and all their nodes returned, as osquery does. With only
//! `path` constraints, only those files are parsed (aug_load_file), not all of /etc.
//!
//! Lenses come from the `--augeas_lenses` directory, as in osquery, and also from
//! Augeas' standard directory (osquery turns that off because it ships its own lenses;
//! a distribution's libaugeas brings them in `augeas-lenses`). A fresh Augeas handle is
//! made per scan, so the tree always reflects the files as they are now.

use oxquery_table::{QueryContext, Rows, TableResult, table};
use raugeas::{Augeas, Flags};
use std::path::Path;

table! {
    name: "augeas",
    description: "Nodes of configuration files as parsed by Augeas lenses.",
    columns: {
        node: Text [INDEX] "Full Augeas path of the node, e.g. /files/etc/hosts/1/ipaddr",
        value: Text [] "Value stored at the node, empty when it has none",
        label: Text [] "Last component of the node's path",
        path: Text [ADDITIONAL] "Configuration file the node belongs to",
    },
    aliases: ["configurations"],
    examples: [
        "select * from augeas where path = '/etc/hosts'",
        "select * from augeas where node like '/files/etc/ssh/sshd_config/%'",
    ],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    scan_under(ctx, rows, None);
    Ok(())
}

/// The scan with the lenses of `--augeas_lenses` (as the last reload left it: it is a
/// config option), over the file-system `root` (`None`: the real `/`).
fn scan_under(ctx: &QueryContext, rows: &mut Rows, root: Option<&Path>) {
    let lenses = ctx
        .settings()
        .augeas_lenses()
        .to_string_lossy()
        .into_owned();
    scan(ctx, rows, root, &lenses);
}

/// The scan, with Augeas' file-system root (`None`: the real `/`) and lens directory.
fn scan(ctx: &QueryContext, rows: &mut Rows, root: Option<&Path>, lenses: &str) {
    let nodes = ctx.eq_texts(Col::node).unwrap_or_default();
    let paths = ctx.eq_texts(Col::path).unwrap_or_default();
    let mut aug = match Augeas::init(root, lenses, Flags::NO_LOAD | Flags::SAVE_NOOP) {
        Ok(aug) => aug,
        Err(e) => {
            log::error!("augeas: cannot initialise Augeas: {e}");
            return;
        }
    };
    if nodes.is_empty() && !paths.is_empty() {
        for p in &paths {
            // A file no lens handles, or that does not exist, simply has no nodes.
            if let Err(e) = aug.load_file(p) {
                log::debug!("augeas: {p}: {e}");
            }
        }
    } else if let Err(e) = aug.load() {
        // Files that failed to parse are recorded under /augeas; the rest still loaded.
        log::debug!("augeas: load reported: {e}");
    }

    let mut patterns: Vec<String> = nodes;
    for p in &paths {
        patterns.push(format!("/files{p}"));
        patterns.push(format!("/files{p}//*"));
    }
    patterns.sort();
    patterns.dedup();
    let expr = if patterns.is_empty() {
        "/files//*".to_owned()
    } else {
        patterns.join("|")
    };
    if let Err(e) = aug.defvar("matches", &expr) {
        log::error!("augeas: bad path expression {expr:?}: {e}");
        return;
    }
    let matches = match aug.matches("$matches") {
        Ok(m) => m,
        Err(e) => {
            log::error!("augeas: matching {expr:?} failed: {e}");
            return;
        }
    };
    for (i, node) in matches.iter().enumerate() {
        let attr = match aug.ns_attr("matches", i as u32) {
            Ok(a) => a,
            Err(e) => {
                log::error!("augeas: reading {node}: {e}");
                return;
            }
        };
        // The owning file's node is /files<path>; a node outside any file (a folder
        // such as /files/etc) names itself.
        let owner = attr.file_path.as_deref().unwrap_or(node);
        let file = owner.strip_prefix("/files").unwrap_or(owner);
        let mut row = rows.row();
        row.set(Col::node, node.as_str());
        row.set(Col::value, attr.value.unwrap_or_default());
        row.set(Col::label, attr.label.unwrap_or_default());
        row.set(Col::path, file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Op, Value};
    use std::collections::BTreeMap;
    use std::process::Command;

    const HOSTS: &str = "127.0.0.1 localhost\n# a comment\n10.1.2.3 build.example build\n::1 ip6-localhost ip6-loopback\n";
    const RESOLV: &str = "nameserver 192.0.2.53\nsearch example.org\noptions ndots:2\n";

    fn fixture() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/hosts"), HOSTS).unwrap();
        std::fs::write(root.path().join("etc/resolv.conf"), RESOLV).unwrap();
        root
    }

    fn rows_for(ctx: &QueryContext, root: &Path) -> Vec<Vec<Value>> {
        let mut rows = Rows::for_context(ctx);
        scan(ctx, &mut rows, Some(root), "/nonexistent-osquery-lenses");
        rows.iter().map(<[Value]>::to_vec).collect()
    }

    /// `augtool -r ROOT match EXPR`: node -> value ("(none)" when it has none).
    fn augtool_match(root: &Path, expr: &str) -> BTreeMap<String, String> {
        let out = Command::new("augtool")
            .arg("-r")
            .arg(root)
            .args(["match", expr])
            .output()
            .expect("augtool (package augeas-tools) runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect()
    }

    fn as_map(rows: &[Vec<Value>]) -> BTreeMap<String, String> {
        rows.iter()
            .map(|r| {
                let v = r[Col::value as usize].as_text().unwrap().into_owned();
                let v = if v.is_empty() { "(none)".to_owned() } else { v };
                (r[Col::node as usize].as_text().unwrap().into_owned(), v)
            })
            .collect()
    }

    #[test]
    fn path_constraint_matches_augtool() {
        let host = Host::default();
        let root = fixture();
        let ctx =
            QueryContext::everything(&SPEC, &host).with_constraint(Col::path, Op::Eq, "/etc/hosts");
        let rows = rows_for(&ctx, root.path());
        let mut want = augtool_match(root.path(), "/files/etc/hosts//*");
        want.extend(augtool_match(root.path(), "/files/etc/hosts"));
        assert_eq!(as_map(&rows), want);
        assert!(
            want.get("/files/etc/hosts/2/canonical")
                .is_some_and(|v| v == "build.example")
        );
        for r in &rows {
            assert_eq!(r[Col::path as usize], Value::Text("/etc/hosts".into()));
            let node = r[Col::node as usize].as_text().unwrap().into_owned();
            let label = node.rsplit('/').next().unwrap();
            // Labels are the last path step without any [n] position.
            assert_eq!(
                r[Col::label as usize].as_text().unwrap(),
                label.split('[').next().unwrap()
            );
        }
    }

    #[test]
    fn everything_and_node_expressions_match_augtool() {
        let host = Host::default();
        let root = fixture();
        let rows = rows_for(&QueryContext::everything(&SPEC, &host), root.path());
        let want = augtool_match(root.path(), "/files//*");
        assert_eq!(as_map(&rows), want);
        assert!(want.contains_key("/files/etc/resolv.conf/nameserver"));
        assert!(want.contains_key("/files/etc/hosts/1/ipaddr"));
        // The folder node /files/etc belongs to no file: its path is the node's.
        let etc = rows
            .iter()
            .find(|r| r[Col::node as usize] == Value::Text("/files/etc".into()))
            .unwrap();
        assert_eq!(etc[Col::path as usize], Value::Text("/etc".into()));

        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::node,
            Op::Eq,
            "/files/etc/resolv.conf/*",
        );
        let rows = rows_for(&ctx, root.path());
        assert_eq!(
            as_map(&rows),
            augtool_match(root.path(), "/files/etc/resolv.conf/*")
        );
        for r in &rows {
            assert_eq!(
                r[Col::path as usize],
                Value::Text("/etc/resolv.conf".into())
            );
        }
    }

    #[test]
    fn lenses_come_from_the_augeas_lenses_flag() {
        // A lens of our own for a file no distribution lens knows: only a scan that loads
        // the flag's directory parses it.
        let lenses = tempfile::tempdir().unwrap();
        std::fs::write(
            lenses.path().join("oxqflagtest.aug"),
            "module Oxqflagtest =\n  autoload xfm\n  let lns = Simplevars.lns\n  \
             let xfm = transform lns (incl \"/etc/oxqflagtest.conf\")\n",
        )
        .unwrap();
        let root = fixture();
        std::fs::write(root.path().join("etc/oxqflagtest.conf"), "colour = blue\n").unwrap();
        let rows_with = |settings: oxquery_table::TableSettings| {
            let host = Host {
                settings,
                ..Host::default()
            };
            let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
                Col::path,
                Op::Eq,
                "/etc/oxqflagtest.conf",
            );
            let mut rows = Rows::for_context(&ctx);
            scan_under(&ctx, &mut rows, Some(root.path()));
            as_map(&rows.iter().map(<[Value]>::to_vec).collect::<Vec<_>>())
        };
        let ours = rows_with(oxquery_table::TableSettings {
            augeas_lenses: Some(lenses.path().to_owned()),
            ..oxquery_table::TableSettings::DEFAULT
        });
        assert_eq!(
            ours.get("/files/etc/oxqflagtest.conf/colour")
                .map(String::as_str),
            Some("blue"),
            "{ours:?}"
        );
        // osquery's default directory does not exist here: the file stays unparsed.
        assert_eq!(
            rows_with(oxquery_table::TableSettings::DEFAULT),
            BTreeMap::new()
        );
    }

    #[test]
    fn bad_expressions_and_unknown_files_give_no_rows() {
        let host = Host::default();
        let root = fixture();
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::node,
            Op::Eq,
            "/files/etc/[[[",
        );
        assert!(rows_for(&ctx, root.path()).is_empty());
        let ctx = QueryContext::everything(&SPEC, &host).with_constraint(
            Col::path,
            Op::Eq,
            "/etc/no-such-file",
        );
        assert!(rows_for(&ctx, root.path()).is_empty());
    }
}
