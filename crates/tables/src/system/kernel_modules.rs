//! `kernel_modules`: the loaded kernel modules, from `/proc/modules`.

use oxquery_sys::fs::FileReader;
use oxquery_table::{QueryContext, Rows, TableResult, table};

table! {
    name: "kernel_modules",
    description: "Kernel modules currently loaded, one row each, as /proc/modules lists them.",
    columns: {
        name: Text [] "Name of the module",
        size: BigInt [] "Memory the module occupies, in bytes",
        used_by: Text [] "Comma-separated modules that depend on this one, - for none",
        status: Text [] "Load state: Live, Loading or Unloading",
        address: Text [] "Kernel address where the module is loaded (zero without privilege)",
    },
    examples: ["select name, used_by from kernel_modules where status = 'Live'"],
}

const PROC_MODULES: &str = "/proc/modules";

/// One line of `/proc/modules`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Module {
    name: String,
    size: Option<i64>,
    used_by: String,
    status: String,
    address: String,
}

/// Parses `/proc/modules` text: `name size refcount used_by state address [taints]`.
/// Lines with fewer than six fields are skipped; a trailing comma is dropped from each
/// field (the kernel ends the dependents list with one).
fn parse_modules(text: &[u8]) -> Vec<Module> {
    let text = String::from_utf8_lossy(text);
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line
                .split(' ')
                .filter(|f| !f.is_empty())
                .map(|f| f.trim().strip_suffix(',').unwrap_or(f.trim()))
                .collect();
            if fields.len() < 6 {
                return None;
            }
            Some(Module {
                name: fields[0].to_owned(),
                size: fields[1].parse().ok(),
                used_by: fields[3].to_owned(),
                status: fields[4].to_owned(),
                address: fields[5].to_owned(),
            })
        })
        .collect()
}

fn generate(_ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    let mut reader = FileReader::new();
    let text = match reader.read(PROC_MODULES) {
        Ok(text) => text,
        Err(e) => {
            log::info!(
                "kernel_modules: cannot read {PROC_MODULES} ({e}): kernel without loadable modules?"
            );
            return Ok(());
        }
    };
    for m in parse_modules(text) {
        let mut row = rows.row();
        row.set(Col::name, m.name);
        row.set(Col::size, m.size);
        row.set(Col::used_by, m.used_by);
        row.set(Col::status, m.status);
        row.set(Col::address, m.address);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oxquery_table::{Host, Value};
    use oxquery_test_support::require_tool;
    use std::path::Path;

    #[test]
    fn parses_module_lines() {
        let text = b"nf_tables 331776 5 nft_chain_nat,nft_compat, Live 0xffffffffc0a00000\n\
                     loop 40960 0 - Live 0x0000000000000000 (E)\n\
                     truncated 4096 0\n\
                     \n";
        let got = parse_modules(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name, "nf_tables");
        assert_eq!(got[0].size, Some(331_776));
        assert_eq!(got[0].used_by, "nft_chain_nat,nft_compat");
        assert_eq!(got[0].status, "Live");
        assert_eq!(got[0].address, "0xffffffffc0a00000");
        assert_eq!(got[1].used_by, "-");
    }

    #[test]
    fn hostile_input_is_skipped() {
        let garbage: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 256) as u8).collect();
        let _ = parse_modules(&garbage);
        assert!(parse_modules(&vec![b'a'; 1 << 20]).is_empty());
        assert!(parse_modules(b",,,,,,\n").is_empty());
    }

    /// Module names as `lsmod` lists them; `None` when the test skips (no lsmod outside
    /// CI).
    fn lsmod_names() -> Option<Vec<String>> {
        let lsmod = require_tool("lsmod")?;
        let out = std::process::Command::new(lsmod).output().unwrap();
        assert!(
            out.status.success(),
            "lsmod: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        Some(
            text.lines()
                .skip(1)
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect(),
        )
    }

    #[test]
    fn agrees_with_lsmod_or_proc_modules() {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let rows = Rows::collect(&ctx, generate).unwrap();
        let mut ours: Vec<String> = rows
            .column(Col::name)
            .into_iter()
            .map(|v| match v {
                Value::Text(t) => t.to_string(),
                v => panic!("name is {v:?}"),
            })
            .collect();
        ours.sort();
        // No module list at all (a kernel built without modules, some sandboxes): no rows.
        if !Path::new(PROC_MODULES).exists() {
            assert!(ours.is_empty());
            return;
        }
        let Some(mut theirs) = lsmod_names() else {
            return;
        };
        theirs.sort();
        assert_eq!(ours, theirs);
    }
}
