//! `md_personalities`: the software RAID personalities (levels) the kernel has loaded, from
//! the `Personalities :` line of `/proc/mdstat`.

use super::md;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "md_personalities",
    description: "Software RAID (md) personalities the kernel supports now, one row each, from the Personalities line of /proc/mdstat.",
    columns: {
        name: Text [] "Personality name (raid1, raid5, linear, ...)",
    },
    examples: ["select * from md_personalities"],
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    scan(ctx, rows, Path::new(md::PROC_MDSTAT))
}

/// The rows for the mdstat file at `path` (tests point it at fixtures).
fn scan(_ctx: &QueryContext, rows: &mut Rows, path: &Path) -> TableResult {
    let Some(stat) = md::read_mdstat(SPEC.name.as_ref(), path) else {
        return Ok(());
    };
    for name in stat.personalities {
        rows.row().set(Col::name, name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::text;
    use oxquery_table::{Host, Value};

    fn names(path: &Path) -> Vec<String> {
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        scan(&ctx, &mut rows, path).unwrap();
        rows.iter().map(|r| text(&r[0])).collect()
    }

    #[test]
    fn fixture_and_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mdstat");
        std::fs::write(
            &path,
            "Personalities : [raid1] [raid6] [linear] [\nunused devices: <none>\n",
        )
        .unwrap();
        assert_eq!(names(&path), ["raid1", "raid6", "linear"]);
        std::fs::write(&path, "Personalities : [rai").unwrap();
        assert!(names(&path).is_empty());
        assert!(names(&dir.path().join("missing")).is_empty());
    }

    /// The live table lists the bracketed words of /proc/mdstat's first line (none
    /// without the md driver).
    #[test]
    fn agrees_with_proc_mdstat() {
        let rows = crate::testing::scan_everything(&SPEC, generate);
        let ours: Vec<String> = rows
            .column(Col::name)
            .into_iter()
            .map(|v: &Value| text(v))
            .collect();
        let theirs: Vec<String> = match std::fs::read_to_string(md::PROC_MDSTAT) {
            Ok(t) => t
                .lines()
                .next()
                .unwrap_or("")
                .split(['[', ']'])
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect(),
            Err(_) => Vec::new(),
        };
        assert_eq!(ours, theirs);
    }
}
