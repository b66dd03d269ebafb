//! The schema reference (`docs/tables.md`), rendered from the table declarations so it
//! can never disagree with what the engine serves.

use oxquery_table::TableDef;
use std::fmt::Write as _;

/// Markdown describing every table in `tables` (sorted by name).
pub fn markdown(tables: &[&'static TableDef]) -> String {
    let mut tables = tables.to_vec();
    tables.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    let mut out = String::from(
        "# Tables\n\nGenerated from the table declarations by `crates/tables/src/docs.rs`; \
         refresh with `UPDATE_DOCS=1 cargo test -p oxquery-tables docs`.\n\n",
    );
    for def in &tables {
        let _ = writeln!(out, "- [`{0}`](#{0})", def.spec.name);
    }
    for def in &tables {
        let spec = def.spec;
        let _ = write!(out, "\n## {}\n\n{}\n", spec.name, spec.description);
        let attributes = spec.attributes.names();
        if !attributes.is_empty() {
            let _ = writeln!(out, "\nAttributes: {}.", attributes.join(", "));
        }
        if !spec.aliases.is_empty() {
            let _ = writeln!(out, "\nAlso available as: {}.", spec.aliases.join(", "));
        }
        out.push_str("\n| column | type | options | description |\n|---|---|---|---|\n");
        for c in spec.columns.iter() {
            let options = c.options.names();
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                c.name,
                c.ty.sql_name(),
                options.join(", "),
                c.description.replace('|', "\\|")
            );
        }
        for a in spec.column_aliases.iter() {
            let _ = writeln!(
                out,
                "| `{}` | | hidden | Alias of `{}` |",
                a.alias, a.target
            );
        }
        if !spec.examples.is_empty() {
            out.push_str("\nExamples:\n\n```sql\n");
            for e in spec.examples {
                let _ = writeln!(out, "{e};");
            }
            out.push_str("```\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The committed document matches the declarations (`UPDATE_DOCS=1` rewrites it).
    /// It describes the default build (with `yara`); the optional tables (`magic`,
    /// `augeas`) are listed in the README, so builds with other features skip it.
    #[test]
    fn docs_tables_md_is_current() {
        if cfg!(any(
            feature = "magic",
            feature = "augeas",
            not(feature = "yara")
        )) {
            return;
        }
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/tables.md");
        let rendered = super::markdown(&crate::all());
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &rendered).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == rendered,
            "docs/tables.md is stale: run `UPDATE_DOCS=1 cargo test -p oxquery-tables docs`"
        );
    }
}
