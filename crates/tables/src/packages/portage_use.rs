//! `portage_use`: the USE flags each installed Gentoo package was built with, one row per
//! package and flag, from the `USE` file of its directory in `/var/db/pkg`, as osquery
//! lists them.

use super::portage;
use oxquery_table::{QueryContext, Rows, TableResult, table};
use std::path::Path;

table! {
    name: "portage_use",
    description: "USE flags that installed Gentoo packages were built with, from the USE file of each package in /var/db/pkg.",
    columns: {
        package: Text [] "Package name, <category>/<name>",
        version: Text [COLLATE_VERSION] "Installed version",
        r#use: Text [] "A USE flag the package was built with",
    },
    examples: [
        "select package, version from portage_use where use = 'ssl'",
    ],
}

/// The rows of the portage database under `root` (`/`, a test's fixture).
fn flags_under(ctx: &QueryContext, root: &Path, rows: &mut Rows) -> TableResult {
    for package in portage::installed_packages("portage_use", root) {
        ctx.check()?;
        let Some(flags) = portage::package_file(ctx, &package.dir, "USE") else {
            continue;
        };
        let (name, version) = portage::split_package_version(&package.atom);
        for flag in flags.split_ascii_whitespace() {
            let mut row = rows.row();
            row.set(Col::package, name.as_str());
            row.set(Col::version, version.as_str());
            row.set(Col::r#use, flag);
        }
    }
    Ok(())
}

fn generate(ctx: &QueryContext, rows: &mut Rows) -> TableResult {
    flags_under(ctx, Path::new("/"), rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::portage::testing::package;
    use crate::testing::text;
    use oxquery_table::{Host, Value};

    #[test]
    fn fixture_database() {
        let root = tempfile::tempdir().unwrap();
        package(
            root.path(),
            "dev-lang/python-3.11.4-r1",
            &[("USE", "ssl  sqlite\nreadline\n")],
        );
        package(root.path(), "app-misc/nouse-1", &[("SLOT", "0")]);
        package(root.path(), "app-misc/empty-2", &[("USE", "\n")]);
        package(
            root.path(),
            "app-misc/binary-3",
            &[("USE", "a\u{0}b \u{fffd}")],
        );
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        let mut rows = Rows::for_context(&ctx);
        flags_under(&ctx, root.path(), &mut rows).unwrap();
        let got: Vec<[String; 3]> = rows
            .iter()
            .map(|r: &[Value]| [text(&r[0]), text(&r[1]), text(&r[2])])
            .collect();
        let want = [
            ["app-misc/binary", "3", "a\u{0}b"],
            ["app-misc/binary", "3", "\u{fffd}"],
            ["dev-lang/python", "3.11.4-r1", "ssl"],
            ["dev-lang/python", "3.11.4-r1", "sqlite"],
            ["dev-lang/python", "3.11.4-r1", "readline"],
        ]
        .map(|r| r.map(str::to_owned));
        assert_eq!(got, want);
    }

    #[test]
    fn no_rows_on_a_host_without_portage() {
        if Path::new("/var/db/pkg").exists() {
            return;
        }
        let host = Host::default();
        let ctx = QueryContext::everything(&SPEC, &host);
        assert!(crate::testing::rows_of(&ctx, generate).is_empty());
    }
}
